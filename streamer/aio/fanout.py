"""Per-consumer bounded queues: a slow consumer never blocks the reader (design §3 rule 3).

The reader calls :meth:`BookConsumer.push` / :meth:`EventConsumer.push`, which never await. A
book consumer whose queue is full gets its pending updates merged into one (final quantity per
price, ``lag`` counting the diffs it stands for), so it catches up in one step and loses no
change; an event consumer that falls behind loses its oldest events and is told how many.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from streamer.models import BookUpdate, EventsLost, Level, StreamerEvent

__all__ = ["BookConsumer", "EventConsumer", "EventQueue", "merge_updates"]

T = TypeVar("T")


class _Queue(Generic[T]):
    """A deque with one waiter; ``close(error)`` ends the iteration (raising ``error``)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None

    def close(self, error: BaseException | None = None) -> None:
        if not self._closed:
            self._closed = True
            self._error = error
            self._wake.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def take_all(self) -> list[T]:
        """Every queued item, without waiting."""
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        items = self._items
        while not items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return items.popleft()


class BookConsumer(_Queue[BookUpdate]):
    """The queue behind one ``Streamer.book()`` iterator."""

    def __init__(self, symbol: str, depth: int, maxsize: int = 256) -> None:
        super().__init__(maxsize)
        self.symbol = symbol
        self.depth = depth
        self.coalesced = 0  # times this consumer was behind and got a merged update

    def push(self, update: BookUpdate) -> None:
        items = self._items
        if len(items) >= self.maxsize:
            items.append(update)
            merged = merge_updates(items)
            items.clear()
            items.append(merged)
            self.coalesced += 1
        else:
            items.append(update)
        self._wake.set()


def merge_updates(updates: deque[BookUpdate] | list[BookUpdate]) -> BookUpdate:
    """One update standing for ``updates`` (in order): levels merged, last quantity wins; a
    reload discards the changes before it."""
    start = 0
    for i, update in enumerate(updates):
        if update.reloaded:
            start = i
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    lag = 0
    for i, update in enumerate(updates):
        lag += update.lag + 1
        if i >= start:
            bids.update(update.bids)
            asks.update(update.asks)
    last = updates[-1]
    first = updates[start]
    return BookUpdate(
        last.symbol,
        last.update_id,
        _levels(bids),
        _levels(asks),
        last.view,
        lag - 1,
        first.reloaded,
        last.event_time,
    )


def _levels(merged: dict[str, str]) -> tuple[Level, ...]:
    return tuple(merged.items())


class EventConsumer(_Queue[StreamerEvent]):
    """The queue behind one ``Streamer.events()`` iterator; drops its oldest when full."""

    def __init__(self, maxsize: int = 1024) -> None:
        super().__init__(maxsize)
        self.lost = 0

    def push(self, event: StreamerEvent) -> None:
        items = self._items
        if len(items) >= self.maxsize:
            # Drop the oldest real event; one marker at the front counts every drop since the
            # consumer last read a marker (so the queue holds at most maxsize + 1 items).
            lost = 1
            front = items[0]
            if isinstance(front, EventsLost):
                lost += front.count
                items.popleft()
            if items:
                items.popleft()
            items.appendleft(EventsLost(lost))
            self.lost += 1
        items.append(event)
        self._wake.set()


class EventQueue(_Queue[T]):
    """An unbounded queue: every item is kept until read (order events are few and none may
    be lost or merged). A consumer that stops reading without closing holds them all; the
    owner forgets it when its iterator ends."""

    def __init__(self) -> None:
        super().__init__(1)

    def push(self, item: T) -> None:
        self._items.append(item)
        self._wake.set()
