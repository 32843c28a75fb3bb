"""Make-before-break handover of a connection's symbols to its replacement (design §4.4).

Before the 24-hour limit, on ``serverShutdown`` or after a drop, a market connection is replaced.
The replacement subscribes to the same streams, but its first diff of a symbol may be *ahead* of
what the old connection has delivered so far (the old one still has frames in flight). Fed
straight into the sync machine, that diff would look like a gap and reset a perfectly good book.

So, per symbol, exactly one connection feeds the machine at a time:

=====================  =========================================================================
before handover        the old connection feeds; the new one's diffs are held, in order
handover               as soon as the first held diff continues what the machine has seen
                       (spot ``U <= seen + 1``, futures ``pu <= seen``; nothing seen yet: at
                       once), the held diffs are fed (those already seen drop as stale) and the
                       new connection feeds from then on
after handover         the old connection's diffs of that symbol are ignored: the new stream
                       alone is contiguous from there
finish                 the old connection closed, or the caller gave up waiting: every held diff
                       is fed as is; a real hole then shows up as a gap and resets that symbol
=====================  =========================================================================

A reconnect after a drop is the same with no old connection: ``finish()`` at once, so a symbol
whose new stream continues its book resumes without a snapshot, and only symbols that really
missed updates resync. Pure: the caller reads ``seen`` from the machine (``BookSync.seen_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from streamer.sansio.sbe import AnyDepthDiff

__all__ = ["Handover"]

T = TypeVar("T")

#: Diffs held per symbol before handing over regardless (the old connection is far behind).
MAX_HELD = 1000


class Handover(Generic[T]):
    """Routes the diffs of two connections carrying the same symbols during a replacement.

    ``T`` is whatever the caller feeds to the machine for a diff (the raw frame and its decoded
    message, say); held items come back in arrival order.
    """

    def __init__(self, symbols: Iterable[str], *, futures: bool) -> None:
        self._futures = futures
        self._held: dict[str, list[tuple[AnyDepthDiff, T]]] = {s: [] for s in symbols}
        self.ignored = 0  # old-connection diffs of symbols already handed over

    @property
    def pending(self) -> int:
        """Symbols still fed by the old connection."""
        return len(self._held)

    @property
    def waiting(self) -> int:
        """Pending symbols with held diffs: the new stream is ahead, the old one must catch up."""
        return sum(1 for held in self._held.values() if held)

    def old(self, diff: AnyDepthDiff) -> bool:
        """A diff from the old connection: feed it (True) or ignore it (handed over)?"""
        if diff.symbol in self._held:
            return True
        self.ignored += 1
        return False

    def new(self, diff: AnyDepthDiff, item: T, seen: int | None) -> list[T]:
        """A diff from the new connection; returns the items to feed now, in order."""
        held = self._held.get(diff.symbol)
        if held is None:
            return [item]
        held.append((diff, item))
        return self.poll(diff.symbol, seen)

    def poll(self, symbol: str, seen: int | None) -> list[T]:
        """Hand ``symbol`` over if its held diffs now continue ``seen`` (call after the old
        connection fed it); returns the items to feed."""
        held = self._held.get(symbol)
        if not held:
            return []
        if len(held) < MAX_HELD and not self._bridges(held[0][0], seen):
            return []
        del self._held[symbol]
        return [item for _, item in held]

    def finish(self) -> list[T]:
        """Hand every remaining symbol over; returns all held items, symbol by symbol."""
        out = [item for held in self._held.values() for _, item in held]
        self._held.clear()
        return out

    def _bridges(self, first: AnyDepthDiff, seen: int | None) -> bool:
        if seen is None:
            return True
        if self._futures:
            return first.prev_last_id is not None and first.prev_last_id <= seen
        return first.first_id <= seen + 1
