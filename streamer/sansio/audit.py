"""Drift audit: prove a synced book exact against a REST snapshot (design §4.2).

Peers "check" a book by replacing it with a fresh snapshot, which hides bugs and tears the book
under its readers. We compare instead. Given a snapshot taken at update id ``L`` and a book that
has applied every diff up to some id ``>= L``:

* a level whose price was touched by a diff that ended after ``L`` is skipped: the snapshot cannot
  know its current value;
* every other level inside the snapshot's price window must equal the snapshot exactly: same
  quantity (by value, any spelling), present in both or absent from both.

Which prices were touched after ``L`` comes from the sync core's journal of applied diffs (see
:mod:`streamer.sansio.book_sync`): it is the per-level "last touched id" of the design, kept per
message instead of per level so that the hot path pays one ``deque.append`` per message instead of
one dict store per level, and it covers deleted levels (tombstones) for free.

The price window of a side is everything at or better than the snapshot's worst level on that side,
or the whole side when the snapshot returned fewer levels than requested (nothing was cut off).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from streamer.sansio.book import BookModel, SideModel

__all__ = ["LevelMismatch", "audit_book"]


@dataclass(frozen=True, slots=True)
class LevelMismatch:
    """One level where the book and the snapshot disagree; None means "absent"."""

    side: str  # "bid" or "ask"
    price: str
    expected: str | None  # the snapshot's quantity
    actual: str | None  # the book's quantity


def _window_edge(levels: Sequence[Sequence[str]], limit: int | None) -> Decimal | None:
    """The worst price the snapshot vouches for, or None when it vouches for the whole side."""
    if not levels or (limit is not None and len(levels) < limit):
        return None
    return Decimal(levels[-1][0])


def _audit_side(
    name: str,
    side: SideModel,
    levels: Sequence[Sequence[str]],
    touched: set[Decimal],
    limit: int | None,
) -> tuple[list[LevelMismatch], int]:
    expected: dict[Decimal, tuple[str, str]] = {}
    for price, qty in levels:
        key = Decimal(price)
        if Decimal(qty) != 0:
            expected[key] = (price, qty)
    edge = _window_edge(levels, limit)
    mismatches: list[LevelMismatch] = []
    checked = 0
    for key, price, qty in side.levels():
        if edge is not None and (key < edge if side.descending else key > edge):
            break  # levels() is best first: everything further is outside the window
        if key in touched:
            continue
        checked += 1
        want = expected.pop(key, None)
        if want is None:
            mismatches.append(LevelMismatch(name, price, None, qty))
        elif Decimal(want[1]) != Decimal(qty):
            mismatches.append(LevelMismatch(name, price, want[1], qty))
    for key, (price, qty) in expected.items():
        if key not in touched:
            checked += 1
            mismatches.append(LevelMismatch(name, price, qty, None))
    return mismatches, checked


def audit_book(
    book: BookModel,
    bids: Sequence[Sequence[str]],
    asks: Sequence[Sequence[str]],
    touched_bids: Iterable[str | Decimal],
    touched_asks: Iterable[str | Decimal],
    *,
    limit: int | None = None,
) -> tuple[list[LevelMismatch], int]:
    """Compare ``book`` with a snapshot; return the mismatches and how many levels were checked.

    ``touched_*`` are the prices changed by diffs that ended after the snapshot's id; ``limit`` is
    the depth that was requested (None when unknown: the window then always ends at the snapshot's
    last level).
    """
    bid_touched = {Decimal(p) for p in touched_bids}
    ask_touched = {Decimal(p) for p in touched_asks}
    bad_bids, n_bids = _audit_side("bid", book.bids, bids, bid_touched, limit)
    bad_asks, n_asks = _audit_side("ask", book.asks, asks, ask_touched, limit)
    return bad_bids + bad_asks, n_bids + n_asks
