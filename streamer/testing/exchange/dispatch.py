"""Where the engine's output goes: drain it, then hand it to the streams and the WebSocket API.

One :class:`Dispatcher` is shared by the server loop (after every engine step) and the REST order
handlers (right after placing or cancelling, so that user events are not delayed by a tick). It
also records, for the symbols that pending stale_snapshot faults watch (``history.py``), the
history of books that stale snapshots are served from.

User events can be *held*: while any hold is open, every user event is queued instead of sent,
and releasing the last hold sends the queue in engine order. The ``user_events_after_response``
fault holds the events of an order until its HTTP answer is written; holding everything (not just
that order's events) keeps each account's events in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from streamer.testing.exchange.history import SnapshotHistory

if TYPE_CHECKING:
    from streamer.testing.exchange.engine import Engine, EngineOutput, UserEvent

__all__ = ["Dispatcher", "MarketSink", "UserSink"]


class MarketSink(Protocol):
    """The market-stream hub, as far as the dispatcher is concerned."""

    def publish(self, out: EngineOutput, now_ms: int) -> None:
        """Take one drained engine output."""


class UserSink(Protocol):
    """The WebSocket API, as far as the dispatcher is concerned."""

    def publish(self, events: list[UserEvent]) -> None:
        """Take user events, in engine order."""


class Dispatcher:
    """Drains the engine and publishes its output, in order, to the hub and the WS-API."""

    def __init__(
        self, engine: Engine, hub: MarketSink, users: UserSink, history: SnapshotHistory
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._users = users
        self._history = history
        self._holds = 0
        self._held: list[UserEvent] = []

    def flush(self, now_ms: int) -> None:
        """Drain the engine and publish everything it produced since the last drain."""
        out = self._engine.drain()
        if out.diffs and self._history.active:
            self._history.record(self._engine, {d.symbol for d in out.diffs}, now_ms)
        self._hub.publish(out, now_ms)
        if out.user_events:
            if self._holds:
                self._held.extend(out.user_events)
            else:
                self._users.publish(out.user_events)

    def hold(self) -> None:
        """Queue user events until the matching :meth:`release`."""
        self._holds += 1

    def release(self) -> None:
        """Close one hold; the last one sends every queued user event."""
        if self._holds == 0:
            raise RuntimeError("release() without hold()")
        self._holds -= 1
        if self._holds == 0 and self._held:
            held, self._held = self._held, []
            self._users.publish(held)
