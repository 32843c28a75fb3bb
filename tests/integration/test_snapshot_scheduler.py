"""The snapshot scheduler against the local exchange's REST API: order, budget, supersession."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import pytest

from streamer.aio.rest import RestClient, RestResponse
from streamer.aio.snapshots import SnapshotScheduler
from streamer.errors import StreamerError
from streamer.sansio.book_sync import SnapshotRequest
from streamer.sansio.ratelimit import WeightBudget
from streamer.sansio.wire import Venue
from streamer.testing import FakeExchange

SYMBOLS = [
    "BTCUSDT",
    "ETHBTC",
    "ETHUSDT",
    "BNBUSDT",
    "LTCUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "BNBBTC",
    "LTCBTC",
    "XRPBTC",
]
SYMBOLS += ["ADABTC", "DOGEUSDT"]
#: The budget's wall clock stands still mid-minute, so its minute never rolls over in a test.
MID_MINUTE = 1_796_000_030.0


class Harness:
    """A scheduler over a real RestClient; records what it delivers, in order."""

    def __init__(self, rest: RestClient, tg: asyncio.TaskGroup, share: float) -> None:
        self.delivered: list[tuple[str, int, int | None]] = []  # symbol, token, status
        self.current: dict[str, int] = {}  # symbol -> the token its book waits for
        self.done = asyncio.Event()
        self.scheduler = SnapshotScheduler(
            rest,
            Venue.SPOT,
            is_current=lambda r: self.current.get(r.symbol) == r.token,
            deliver=self._deliver,
            spawn=self._spawn(tg),
            rng=random.Random(1).random,
            share=share,
            max_in_flight=1,  # one at a time: delivery order is sending order
        )

    @staticmethod
    def _spawn(tg: asyncio.TaskGroup) -> Any:
        def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
            return tg.create_task(coro)

        return spawn

    def _deliver(
        self,
        request: SnapshotRequest,
        response: RestResponse | None,
        error: StreamerError | None,
        retry_in: float,
    ) -> None:
        status = response.status if response is not None else (error.status if error else None)
        self.delivered.append((request.symbol, request.token, status))
        self.done.set()

    def submit(self, symbol: str, token: int, purpose: str = "sync") -> None:
        self.current[symbol] = token
        self.scheduler.submit(SnapshotRequest(symbol, token, 100, purpose))

    async def delivered_count(self, n: int) -> None:
        async with asyncio.timeout(10):
            while len(self.delivered) < n:
                self.done.clear()
                await self.done.wait()


@pytest.fixture
async def rest() -> AsyncIterator[tuple[FakeExchange, RestClient]]:
    async with (
        FakeExchange(symbols=SYMBOLS, rate=0, weight_limit=100) as ex,
        aiohttp.ClientSession() as session,
    ):
        yield ex, RestClient(ex.endpoints, WeightBudget(100), session, wall=lambda: MID_MINUTE)


async def run(harness: Harness, body: Coroutine[Any, Any, None], tg: asyncio.TaskGroup) -> None:
    task = tg.create_task(harness.scheduler.run())
    try:
        await body
    finally:
        task.cancel()


async def test_books_to_sync_go_before_audits_and_a_newer_request_keeps_its_place(
    rest: tuple[FakeExchange, RestClient],
) -> None:
    """Queued before the scheduler runs: syncs first (in order), then audits; a request that
    replaces a queued one of its symbol takes its place; a superseded one is never sent."""
    _, client = rest
    async with asyncio.TaskGroup() as tg:
        h = Harness(client, tg, share=1.0)
        h.submit("BTCUSDT", 1, "audit")
        h.submit("ETHBTC", 2)
        h.submit("ETHUSDT", 3)
        h.submit("ETHBTC", 4)  # ETHBTC reset meanwhile: token 4 replaces 2, first in line
        h.submit("BNBUSDT", 5)
        h.current["BNBUSDT"] = 6  # superseded before it was sent: skipped
        await run(h, h.delivered_count(3), tg)
    assert h.delivered == [("ETHBTC", 4, 200), ("ETHUSDT", 3, 200), ("BTCUSDT", 1, 200)]
    assert h.scheduler.skipped == 1 and h.scheduler.sent == 3


async def test_requests_past_the_budget_share_wait_and_none_is_refused(
    rest: tuple[FakeExchange, RestClient],
) -> None:
    """With 50 of 100 weight/min for snapshots (5 each), twelve books needing one: ten go out,
    two wait in the queue for the next minute. No storm, no 429."""
    _, client = rest
    async with asyncio.TaskGroup() as tg:
        h = Harness(client, tg, share=0.5)
        for token, symbol in enumerate(SYMBOLS, start=1):
            h.submit(symbol, token)
        await run(h, h.delivered_count(10), tg)
    assert [symbol for symbol, *_ in h.delivered] == SYMBOLS[:10]
    assert all(status == 200 for *_, status in h.delivered)
    assert h.scheduler.queued == 2 and h.scheduler.sent == 10
    assert client.budget.used(MID_MINUTE) == 50
