"""Helpers for tests of a running ``Streamer`` against the local exchange (real sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from streamer import Streamer
from streamer.aio.fanout import EventConsumer
from streamer.models import StreamerEvent
from streamer.testing import FakeExchange

T = 20.0  # the one bound on every wait of the live tests

E = TypeVar("E")


class EventLog:
    """Every event of a Streamer, kept, with a way to await the next one that matches."""

    def __init__(self, events: EventConsumer) -> None:
        self.seen: list[StreamerEvent] = []
        self._events = events

    async def wait(self, kind: type[E], where: Callable[[E], bool] = lambda e: True) -> E:
        """The first event (already seen or coming) of ``kind`` matching ``where``."""
        for event in self.seen:
            if isinstance(event, kind) and where(event):
                return event
        async with asyncio.timeout(T):
            async for event in self._events:
                self.seen.append(event)
                if isinstance(event, kind) and where(event):
                    return event
        raise AssertionError(f"the events ended before a {kind.__name__}")

    def drain(self) -> list[StreamerEvent]:
        """Take in every event queued so far, without waiting."""
        self.seen.extend(self._events.take_all())
        return self.seen

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.drain() if isinstance(e, kind)]


def exact(levels: Any) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}


async def synced(s: Streamer, *symbols: str) -> None:
    """Wait until every one of ``symbols`` is synced and live."""
    async with asyncio.timeout(T):
        for symbol in symbols:
            async for _ in s.book(symbol):
                if s.view(symbol).synced:
                    break


async def equal_to_truth(s: Streamer, ex: FakeExchange, *symbols: str) -> None:
    """With the market paused: each book reaches the true book's update id and equals it at
    every level."""
    await ex.pause()
    for symbol in symbols:
        truth = await ex.book(symbol)
        target = truth["lastUpdateId"]
        async with asyncio.timeout(T):
            async for _ in s.book(symbol):
                view = s.view(symbol)
                if view.synced and view.last_update_id >= target:
                    break
        view = s.view(symbol)
        assert view.last_update_id == target, (symbol, view.last_update_id, target)
        assert exact(view.bids(10**6)) == exact(truth["bids"]), symbol
        assert exact(view.asks(10**6)) == exact(truth["asks"]), symbol
