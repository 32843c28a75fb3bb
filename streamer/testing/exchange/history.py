"""Older full books, recorded only for the symbols a pending stale-snapshot fault needs.

The engine only answers snapshots of its *current* book; the ``stale_snapshot`` fault needs an
older one. Copying a full book is what costs: with all 1,695 real symbols, copying every changed
book every 100 ms took a whole core and made the 100 ms diff batches late. So nothing is
recorded unless the fault plan *watches* a symbol (:meth:`SnapshotHistory.watch`): while a
``stale_snapshot`` fault is pending, its symbol (every symbol, for a fault without one) is
recorded when the fault is added (``FakeExchange`` does that) and then after every drain in
which its book changed, at most once per ``every_ms``, keeping the last ``keep``. When no pending
fault needs a symbol any more, its books are forgotten: with no such fault the history costs
nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamer.testing.exchange.engine import Engine, Snapshot

__all__ = ["SnapshotHistory", "truncate"]


def truncate(snapshot: Snapshot, limit: int) -> Snapshot:
    """The same snapshot cut to ``limit`` levels per side."""
    return type(snapshot)(
        symbol=snapshot.symbol,
        last_update_id=snapshot.last_update_id,
        bids=snapshot.bids[:limit],
        asks=snapshot.asks[:limit],
        time_ms=snapshot.time_ms,
    )


class SnapshotHistory:
    """The last ``keep`` recorded full books of each watched symbol, oldest first."""

    def __init__(self, keep: int = 20, every_ms: int = 100) -> None:
        self.keep = keep
        self.every_ms = every_ms
        self._books: dict[str, deque[Snapshot]] = {}
        self._last_ms: dict[str, int] = {}
        self._watched: frozenset[str] = frozenset()
        self._all = False

    @property
    def active(self) -> bool:
        """Whether any symbol is watched (else :meth:`record` does nothing)."""
        return self._all or bool(self._watched)

    def watching(self, symbol: str) -> bool:
        """Whether ``symbol``'s books are recorded."""
        return self._all or symbol in self._watched

    def watch(self, symbols: Iterable[str | None]) -> None:
        """Record exactly ``symbols`` from now on (``None`` among them: every symbol).

        The books of symbols no longer watched are forgotten.
        """
        wanted = set(symbols)
        self._all = None in wanted
        self._watched = frozenset(s for s in wanted if s is not None)
        if not self._all:
            for symbol in [s for s in self._books if s not in self._watched]:
                del self._books[symbol]
                self._last_ms.pop(symbol, None)

    def record(self, engine: Engine, symbols: Iterable[str], now_ms: int) -> None:
        """Record the full book of each watched one of ``symbols``, unless recorded less than
        ``every_ms`` ago or unchanged since."""
        if not self._all:
            if not self._watched:
                return
            symbols = self._watched.intersection(symbols)
        for symbol in symbols:
            last = self._last_ms.get(symbol)
            if last is not None and now_ms - last < self.every_ms:
                continue
            book = self._books.setdefault(symbol, deque(maxlen=self.keep))
            if book and book[-1].last_update_id == engine.last_update_id(symbol):
                continue
            book.append(engine.full_book(symbol))
            self._last_ms[symbol] = now_ms

    def older(self, symbol: str, current_id: int, behind: int = 1) -> Snapshot | None:
        """The ``behind``-th newest recorded book older than ``current_id`` (or the oldest one)."""
        candidates = [s for s in self._books.get(symbol, ()) if s.last_update_id < current_id]
        if not candidates:
            return None
        return candidates[-min(max(behind, 1), len(candidates))]
