"""Builds the optional C twin of the book (streamer/sansio/_book.c); metadata is in pyproject.toml.

``optional=True``: without a compiler the install still succeeds and the pure-Python book runs
(as aiohttp, multidict and yarl do). ``.ci/run`` then fails on purpose: tests/unit/test_book_impl.py
requires the C book wherever STREAMER_NO_EXTENSIONS is not set.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streamer.sansio._book",
            ["streamer/sansio/_book.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
