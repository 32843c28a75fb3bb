"""A short history of full-book snapshots per symbol, to serve stale snapshots on demand.

The engine only answers snapshots of its *current* book. The stale-snapshot fault needs an older
one, so the server loop records the full book of each symbol whose book changed, at most once per
``every_ms`` per symbol, keeping the last ``keep``.
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
    )


class SnapshotHistory:
    """The last ``keep`` recorded full books of each symbol, oldest first."""

    def __init__(self, keep: int = 20, every_ms: int = 100) -> None:
        self.keep = keep
        self.every_ms = every_ms
        self._books: dict[str, deque[Snapshot]] = {}
        self._last_ms: dict[str, int] = {}

    def record(self, engine: Engine, symbols: Iterable[str], now_ms: int) -> None:
        """Record the full book of each of ``symbols``, unless recorded less than every_ms ago."""
        for symbol in symbols:
            last = self._last_ms.get(symbol)
            if last is not None and now_ms - last < self.every_ms:
                continue
            book = self._books.setdefault(symbol, deque(maxlen=self.keep))
            snapshot = engine.full_book(symbol)
            if book and book[-1].last_update_id == snapshot.last_update_id:
                continue
            book.append(snapshot)
            self._last_ms[symbol] = now_ms

    def older(self, symbol: str, current_id: int, behind: int = 1) -> Snapshot | None:
        """The ``behind``-th newest recorded book older than ``current_id`` (or the oldest one)."""
        candidates = [s for s in self._books.get(symbol, ()) if s.last_update_id < current_id]
        if not candidates:
            return None
        return candidates[-min(max(behind, 1), len(candidates))]
