"""The recording points the metrics need, as one protocol (``streamer.metrics`` implements it).

Most metrics are read from the Streamer's own counters at scrape time; these few calls carry
what no counter holds (a latency, a frame's size, an event's reason). Every caller holds a
``MetricsSink | None`` that is None unless metrics are on, so without metrics each point costs
one ``is not None`` test. Implementations must never raise and never await: they are called
from the read loops.
"""

from __future__ import annotations

from typing import Protocol

from streamer.models import StreamerEvent
from streamer.order_models import OrderEvent
from streamer.sansio.sbe import SbeDepthDiff
from streamer.sansio.wire import DepthDiff, Malformed, OtherEvent

__all__ = ["MetricsSink"]


class MetricsSink(Protocol):
    def frame(self, msg: DepthDiff | SbeDepthDiff | OtherEvent | Malformed, data: bytes) -> None:
        """A market frame was received (before it is applied)."""

    def event(self, event: StreamerEvent) -> None:
        """A Streamer event was emitted (resets with their reason, audits, connections...)."""

    def rest(self, method: str, path: str, status: str, seconds: float) -> None:
        """A REST request ended: ``status`` is the HTTP status, or ``"no_answer"``."""

    def order_round_trip(self, order_type: str, seconds: float) -> None:
        """A placement request was answered (accepted or refused) after ``seconds``."""

    def order_events(self, events: list[OrderEvent]) -> None:
        """The order tracker published ``events`` (just before consumers get them)."""
