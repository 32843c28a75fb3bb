"""Replay a capture through the same sync core the live connector uses (``streamer replay``).

Records are fed in their recorded order. A REST depth body is delivered at its recorded position,
as the answer to the symbol's pending snapshot request when there is one, otherwise as an
unrequested snapshot (which a synced book audits). The result is what ``capture-format.md``
specifies for ``streamer replay``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from streamer.sansio.books import DepthBooks
from streamer.sansio.capture import CaptureRecord
from streamer.sansio.wire import Malformed, Venue, venue_from_url

__all__ = ["Replay", "replay"]


class Replay:
    """Feeds capture records into one :class:`DepthBooks` per venue."""

    def __init__(self, symbols: Iterable[str] | None = None) -> None:
        self._symbols = [s.upper() for s in symbols] if symbols is not None else None
        self.venues: dict[Venue, DepthBooks] = {}
        self.malformed: list[Malformed] = []

    def _books(self, venue: Venue) -> DepthBooks:
        books = self.venues.get(venue)
        if books is None:
            books = self.venues[venue] = DepthBooks(venue, self._symbols)
        return books

    def feed(self, record: CaptureRecord) -> None:
        books = self._books(_venue(record))
        if record.kind == "ws":
            books.receive_frame(record.data, record.url)
        else:
            self._feed_rest(books, record)

    def _feed_rest(self, books: DepthBooks, record: CaptureRecord) -> None:
        parts = urlsplit(record.url)
        if not parts.path.endswith("/depth"):
            return
        query = parse_qs(parts.query)
        symbol = query.get("symbol", [""])[0].upper()
        sync = books.books.get(symbol)
        if sync is None:
            return
        token = sync.pending_token
        if record.status != 200:
            if token is not None:
                sync.snapshot_failed(token)
            return
        limit_text = query.get("limit", [""])[0]
        limit = int(limit_text) if limit_text.isdigit() else None
        books.receive_snapshot(symbol, record.data, token, limit=limit)

    def result(self, depth: int = 10) -> dict[str, Any]:
        """The replay output: ``{"books": {symbol: {...}}, "malformed": n}``
        (capture-format.md); ``malformed`` counts the frames and snapshots rejected."""
        out: dict[str, Any] = {}
        for venue, books in self.venues.items():
            for event in books.events():
                if isinstance(event, Malformed):
                    self.malformed.append(event)
            for symbol, sync in sorted(books.books.items()):
                book = sync.book
                c = sync.counters
                out[symbol] = {
                    "venue": venue.value,
                    "state": sync.state.value,
                    "last_update_id": sync.last_update_id if sync.synced else None,
                    "bids": [list(level) for level in book.bids.top(depth)],
                    "asks": [list(level) for level in book.asks.top(depth)],
                    "bid_levels": len(book.bids),
                    "ask_levels": len(book.asks),
                    "applied": c.applied,
                    "dropped": c.dropped,
                    "resyncs": c.resets,
                    "audits_passed": c.audits_passed,
                    "drifts": c.drifts,
                }
        rejected = sum(books.counters.malformed for books in self.venues.values())
        return {"books": out, "malformed": rejected}


def _venue(record: CaptureRecord) -> Venue:
    """The header's venue when it names one, else the URL's (capture-format.md)."""
    if record.venue in ("spot", "usdm", "coinm"):
        return Venue(record.venue)
    return venue_from_url(record.url)


def replay(
    records: Iterable[CaptureRecord], *, depth: int = 10, symbols: Iterable[str] | None = None
) -> dict[str, Any]:
    """Replay ``records`` and return the books (see :meth:`Replay.result`)."""
    run = Replay(symbols)
    for record in records:
        run.feed(record)
    return run.result(depth)
