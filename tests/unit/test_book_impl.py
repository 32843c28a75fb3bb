"""Which book implementation runs: the C twin wherever it can be built, unless disabled."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streamer import _impl
from streamer.sansio import book
from streamer.sansio.book_sync import BookSync


def test_the_c_book_is_built_and_selected_unless_disabled() -> None:
    """CI fails here when the extension did not build: `make test` must build it."""
    if _impl.NO_EXTENSIONS:
        assert book.implementation() == "python" and _impl.describe() == "pure Python"
    else:
        assert "c" in book.available(), "streamer/sansio/_book.c was not built"
        assert book.implementation() == "c" and _impl.describe() == "C"
        assert type(BookSync("BTCUSDT").book).__module__ == "streamer.sansio._book"


def test_version_names_the_implementation_and_the_switch_forces_python() -> None:
    """`streamer --version` says which book runs; STREAMER_NO_EXTENSIONS=1 picks pure Python."""
    command = [sys.executable, "-m", "streamer", "--version"]
    env = {k: v for k, v in os.environ.items() if k != "STREAMER_NO_EXTENSIONS"}
    forced = subprocess.run(
        command, env={**env, "STREAMER_NO_EXTENSIONS": "1"}, capture_output=True, text=True
    )
    assert forced.returncode == 0 and forced.stdout.strip().endswith("(book: pure Python)")
    default = subprocess.run(command, env=env, capture_output=True, text=True)
    expected = "C" if "c" in book.available() else "pure Python"
    assert default.stdout.strip().endswith(f"(book: {expected})")


def test_unknown_implementation_is_refused() -> None:
    """book.use() only accepts an implementation this installation has."""
    with pytest.raises(ValueError, match="fortran"):
        book.use("fortran")
