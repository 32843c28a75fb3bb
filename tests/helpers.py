"""Builders shared by the unit tests: diffs, snapshots and a started sync machine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from streamer.sansio.book_sync import BookSync, SnapshotRequest
from streamer.sansio.wire import DepthDiff, DepthSnapshot, Venue

Levels = Iterable[Sequence[str]]


def diff(
    first: int,
    last: int,
    bids: Levels = (),
    asks: Levels = (),
    *,
    pu: int | None = None,
    symbol: str = "BTCUSDT",
) -> DepthDiff:
    return DepthDiff(symbol, first, last, pu, [list(b) for b in bids], [list(a) for a in asks], 0)


def snap(last: int, bids: Levels = (), asks: Levels = ()) -> DepthSnapshot:
    return DepthSnapshot(last, [list(b) for b in bids], [list(a) for a in asks])


def requests(sync: BookSync) -> list[SnapshotRequest]:
    return [e for e in sync.events() if isinstance(e, SnapshotRequest)]


def started(first: DepthDiff, venue: Venue = Venue.SPOT) -> tuple[BookSync, int]:
    """A machine fed its first diff, and the token of the snapshot it asked for."""
    sync = BookSync(first.symbol, venue)
    sync.receive_diff(first)
    (request,) = requests(sync)
    return sync, request.token


def book_of(sync: BookSync) -> tuple[dict[str, str], dict[str, str]]:
    bids = {p: q for _, p, q in sync.book.bids.levels()}
    asks = {p: q for _, p, q in sync.book.asks.levels()}
    return bids, asks
