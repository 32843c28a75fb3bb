"""Many symbols of one venue: decode frames once, route each diff to its symbol's sync machine.

A malformed frame becomes a counted :class:`~streamer.sansio.wire.Malformed` event; frames of
other kinds (bookTicker, trades, ...) are counted and skipped. Each symbol resyncs on its own.

SBE frames (protocol §7.6) take the fast path: :func:`~streamer.sansio.sbe.decode_sbe_message`
then :meth:`DepthBooks.receive_message` (or both in :meth:`DepthBooks.receive_sbe`), the diff's
levels going to the integer book packed as on the wire, without a string. A change of a symbol's
SBE exponents mid-stream needs nothing special: a level means mantissa x 10^exponent whatever the
exponent, and the book rescales exactly to hold it (or, past int64 or 18 decimals, the diff is a
counted Malformed and the next one resyncs the symbol on the gap), as for JSON with more decimals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamer.sansio.book_sync import BookSync, Outcome, SyncEvent
from streamer.sansio.sbe import DepthDiffInts, SbeDepthDiff, decode_sbe_message
from streamer.sansio.wire import (
    DEFAULT_MAX_FRAME,
    DepthDiff,
    Malformed,
    OtherEvent,
    Venue,
    decode_frame,
    decode_snapshot,
    excerpt,
)

__all__ = ["DepthBooks", "FrameCounters"]


@dataclass(slots=True)
class FrameCounters:
    frames: int = 0
    malformed: int = 0
    other: int = 0
    unsubscribed: int = 0  # diffs of symbols this object does not track


class DepthBooks:
    """The sync machines of every tracked symbol of one venue.

    With ``symbols=None`` a machine is created for each symbol the first time one of its diffs
    arrives (replay); otherwise diffs of other symbols are counted and ignored.
    """

    def __init__(
        self,
        venue: Venue = Venue.SPOT,
        symbols: Iterable[str] | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        snapshot_limit: int | None = None,
        max_buffer: int = 2000,
    ) -> None:
        self.venue = venue
        self.max_frame = max_frame
        self._auto = symbols is None
        self._options = {"snapshot_limit": snapshot_limit, "max_buffer": max_buffer}
        self.books: dict[str, BookSync] = {}
        for symbol in symbols or ():
            self.add(symbol)
        self.counters = FrameCounters()
        self._malformed: list[Malformed] = []

    def add(self, symbol: str) -> BookSync:
        symbol = symbol.upper()
        sync = self.books.get(symbol)
        if sync is None:
            sync = BookSync(
                symbol,
                self.venue,
                snapshot_limit=self._options["snapshot_limit"],
                max_buffer=self._options["max_buffer"] or 2000,
            )
            self.books[symbol] = sync
        return sync

    def receive_frame(self, data: bytes | str, stream: str = "") -> Outcome | None:
        """Feed one stream frame; return what its symbol's machine did, if it was a diff."""
        msg = decode_frame(data, stream, max_size=self.max_frame)
        return self.receive_message(msg, data, stream)

    def receive_message(
        self,
        msg: DepthDiff | SbeDepthDiff | DepthDiffInts | OtherEvent | Malformed,
        data: bytes | str,
        stream: str = "",
    ) -> Outcome | None:
        """Feed a frame already decoded (``data`` is the raw frame): by :func:`decode_frame`
        (JSON) or :func:`~streamer.sansio.sbe.decode_sbe_message` (SBE)."""
        counters = self.counters
        counters.frames += 1
        if type(msg) is DepthDiff or type(msg) is SbeDepthDiff or type(msg) is DepthDiffInts:
            sync = self.books.get(msg.symbol)
            if sync is None:
                if not self._auto:
                    counters.unsubscribed += 1
                    return None
                sync = self.add(msg.symbol)
            outcome = sync.receive_diff(msg)
            if outcome is Outcome.MALFORMED:
                counters.malformed += 1
                if type(msg) is DepthDiff:
                    reason, text = f"{msg.symbol} depthUpdate with a bad price level", excerpt(data)
                else:
                    reason = f"{msg.symbol} DepthDiffStreamEvent with a bad price level"
                    text = data[:60].hex() if isinstance(data, bytes) else excerpt(data)
                self._malformed.append(Malformed(stream, reason, text))
            return outcome
        if type(msg) is Malformed:
            counters.malformed += 1
            self._malformed.append(msg)
        else:
            counters.other += 1
        return None

    def receive_sbe(self, data: bytes, stream: str = "") -> Outcome | None:
        """Feed one binary SBE frame (protocol §7.6); like :meth:`receive_frame` for JSON.

        Diffs go to the same sync machines as JSON diffs, their integer levels straight into the
        book (module docstring; exponent changes included).
        """
        msg = decode_sbe_message(data, stream, max_size=self.max_frame)
        return self.receive_message(msg, data, stream)

    def receive_snapshot(
        self, symbol: str, body: bytes | str, token: int | None, *, limit: int | None = None
    ) -> None:
        """Feed a REST depth body for ``symbol`` (``token=None``: unrequested)."""
        sync = self.books.get(symbol.upper())
        if sync is None:
            return
        snapshot = decode_snapshot(body, f"depth {symbol}")
        if isinstance(snapshot, Malformed):
            self.counters.malformed += 1
            self._malformed.append(snapshot)
            if token is not None:
                sync.snapshot_failed(token)
            return
        sync.receive_snapshot(snapshot, token, limit=limit)

    def remove(self, symbol: str) -> None:
        """Stop tracking ``symbol``; its later diffs count as ``unsubscribed``."""
        self.books.pop(symbol.upper(), None)

    def events_of(self, sync: BookSync) -> Sequence[SyncEvent | Malformed]:
        """Malformed frames, then ``sync``'s events: the hot path's drain after one frame,
        which does not visit every symbol as :meth:`events` does."""
        events = sync.events()
        if not self._malformed:
            return events
        out: list[SyncEvent | Malformed] = [*self._malformed, *events]
        self._malformed.clear()
        return out

    def malformed(self) -> list[Malformed]:
        """Malformed frames since the last call (also part of :meth:`events`)."""
        out, self._malformed = self._malformed, []
        return out

    def events(self) -> list[SyncEvent | Malformed]:
        """Every event since the last call: malformed frames first, then each symbol's."""
        out: list[SyncEvent | Malformed] = list(self._malformed)
        self._malformed.clear()
        for sync in self.books.values():
            out.extend(sync.events())
        return out
