"""Shared pytest configuration: where the real recorded data lives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer import _impl
from streamer.sansio import book

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
BUNDLED = ROOT / "streamer" / "data"

#: Real captures (capture format v1) and the venue each one records.
CAPTURES = {
    BUNDLED / "spot-4sym-2021-10-12.jsonl": "spot",
    DATA / "spot-us-4sym-2021-10-12.jsonl": "spot",
    DATA / "usdm-4sym-2021-07-22.jsonl": "usdm",
}


#: Book implementations to run the book tests against: both, unless STREAMER_NO_EXTENSIONS is set
#: (then only the pure Python one). Whether the C one is built is asserted in test_book_impl.py.
BOOK_IMPLEMENTATIONS = ["python"] if _impl.NO_EXTENSIONS else ["python", "c"]


@pytest.fixture(params=BOOK_IMPLEMENTATIONS, scope="module")
def book_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test module once per book implementation (multidict's fixture pattern).

    Module scope, so hypothesis tests can use it; new books (BookSync, DepthBooks) use the
    selected implementation until the module's tests are done.
    """
    name: str = request.param
    if name not in book.available():
        pytest.skip("the C book is not built (test_book_impl.py fails for that)")
    previous = book.implementation()
    book.use(name)
    yield name
    book.use(previous)
