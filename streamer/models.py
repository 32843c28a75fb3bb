"""Public value types of the live connector: book views and updates, connection events.

Prices and quantities are the exact decimal strings Binance sent (``"0.35130000"``), never floats.
The sync events of the core (``Synced``, ``Reset``, ``DriftDetected``, ``AuditPassed``,
``AuditInconclusive``) and ``Malformed`` are public too; :data:`StreamerEvent` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamer.errors import BookNotReady, BookOutOfSync
from streamer.sansio.book_sync import (
    AuditInconclusive,
    AuditPassed,
    DriftDetected,
    Reset,
    SnapshotIgnored,
    Synced,
)
from streamer.sansio.wire import Malformed

if TYPE_CHECKING:
    from streamer.sansio.book_sync import BookSync

__all__ = [
    "BookUpdate",
    "BookView",
    "ConnectionClosed",
    "ConnectionOpened",
    "ConnectionRotated",
    "EventsLost",
    "Level",
    "SnapshotError",
    "StreamerEvent",
]

Level = tuple[str, str]  # (price, quantity), exact strings


class BookView:
    """A live, read-only window on one symbol's book; every read is of the current book.

    Reading levels or the update id of a book that is not synced raises :class:`BookNotReady`
    (never synced yet) or :class:`BookOutOfSync` (it lost sync, or its connection is down, and is
    being rebuilt): a view never answers with a book it cannot vouch for.
    """

    __slots__ = ("_depth", "_stale", "_sync", "symbol")

    def __init__(self, sync: BookSync, stale: set[str], depth: int = 20) -> None:
        self.symbol = sync.symbol
        self._sync = sync
        self._stale = stale  # the owner's synced symbols whose connection is down
        self._depth = depth

    @property
    def synced(self) -> bool:
        """True when the book is synced at a known update id and its stream is live."""
        return self._sync.synced and self.symbol not in self._stale

    def _check(self) -> None:
        if not self.synced:
            sync = self._sync
            if sync.counters.resets or sync.counters.applied:
                raise BookOutOfSync(f"{self.symbol} is resyncing", symbol=self.symbol)
            raise BookNotReady(f"{self.symbol} is not synced yet", symbol=self.symbol)

    @property
    def last_update_id(self) -> int:
        self._check()
        return self._sync.last_update_id

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids (default: the view's depth), best first."""
        self._check()
        return self._sync.book.bids.top(self._depth if n is None else n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks (default: the view's depth), best first."""
        self._check()
        return self._sync.book.asks.top(self._depth if n is None else n)

    @property
    def best_bid(self) -> Level | None:
        self._check()
        return self._sync.book.bids.best()

    @property
    def best_ask(self) -> Level | None:
        self._check()
        return self._sync.book.asks.best()

    def __repr__(self) -> str:
        state = f"synced at {self._sync.last_update_id}" if self.synced else "not synced"
        return f"<BookView {self.symbol} {state}>"


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """One change of a live book, as delivered to a ``Streamer.book()`` iterator.

    ``bids``/``asks`` are the levels this update changed (quantity ``"0..."`` removes the level),
    or, when ``reloaded`` is true, the whole book as (re)loaded from a snapshot, top ``depth``
    levels. ``lag`` > 0 says the consumer fell behind: this one update stands for ``lag + 1``
    diffs, its levels merged (final quantity per price). ``view`` reads the current book.
    ``event_time`` is the exchange's ``E`` of the (last) diff: ms, or µs with
    ``Streamer(microseconds=True)``; 0 for a reload.
    """

    symbol: str
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    view: BookView
    lag: int = 0
    reloaded: bool = False
    event_time: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """A market connection is up and subscribed (``reconnect``: it replaced a dropped one)."""

    connection: int
    url: str
    symbols: int
    reconnect: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A market connection went down; its books are not live until the next one delivers."""

    connection: int
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class ConnectionRotated:
    """A connection was replaced make-before-break (``reason``: lifetime, serverShutdown)."""

    connection: int
    reason: str
    handed_over: int  # symbols handed over by the handover rule; the rest at the end
    ignored: int  # old-connection diffs dropped after their symbol moved


@dataclass(frozen=True, slots=True)
class SnapshotError:
    """A depth snapshot request failed; the symbol retries after ``retry_in`` seconds."""

    symbol: str
    purpose: str
    error: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class EventsLost:
    """This ``events()`` iterator fell behind and ``count`` events were dropped for it."""

    count: int


StreamerEvent = (
    Synced
    | Reset
    | DriftDetected
    | AuditPassed
    | AuditInconclusive
    | SnapshotIgnored
    | Malformed
    | ConnectionOpened
    | ConnectionClosed
    | ConnectionRotated
    | SnapshotError
    | EventsLost
)
