"""Which book implementation runs, decided once at ``import streamer``.

The C twin of the book (``streamer/sansio/_book.c``) runs whenever it was built;
``STREAMER_NO_EXTENSIONS=1`` forces the pure-Python book (as ``MULTIDICT_NO_EXTENSIONS`` does for
multidict). This module lives outside ``streamer/sansio`` because the pure cores read no
environment: they only offer ``book.use()``, and this is the one place that calls it.
"""

from __future__ import annotations

import os
from typing import Final

from streamer.sansio import book

__all__ = ["NO_EXTENSIONS", "describe"]

#: True when STREAMER_NO_EXTENSIONS is set to anything but "" or "0".
NO_EXTENSIONS: Final = os.environ.get("STREAMER_NO_EXTENSIONS", "") not in ("", "0")

if NO_EXTENSIONS:
    book.use("python")

_NAMES: Final = {"c": "C", "python": "pure Python"}


def describe() -> str:
    """The book implementation new books use, for people: "C" or "pure Python"."""
    return _NAMES[book.implementation()]
