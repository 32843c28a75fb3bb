"""The pure book core, driven over real sockets against the local exchange, faults included.

A minimal driver stands in for the asyncio layer: it feeds every stream frame to ``DepthBooks``
and answers each ``SnapshotRequest`` with a real REST ``/api/v3/depth`` call. Truth comes from
``/_fake/book``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.sansio.book_sync import (
    AuditPassed,
    BookSync,
    DriftDetected,
    Reset,
    ResetReason,
    SnapshotRequest,
    SyncEvent,
)
from streamer.sansio.books import DepthBooks
from streamer.sansio.wire import Malformed
from streamer.testing import FakeExchange

T = 10.0  # the one bound on every wait in this module
SYMBOLS = ["BTCUSDT", "ETHBTC"]


class Driver:
    """Stream frames into the core; fetch the snapshots it asks for."""

    def __init__(self, ex: FakeExchange, session: aiohttp.ClientSession) -> None:
        self.ex = ex
        self.session = session
        self.books = DepthBooks(symbols=SYMBOLS)
        self.events: list[SyncEvent | Malformed] = []
        self.changed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def _drain(self) -> None:
        for event in self.books.events():
            self.events.append(event)
            if isinstance(event, SnapshotRequest):
                task = asyncio.create_task(self._fetch(event))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        self.changed.set()

    async def _fetch(self, request: SnapshotRequest) -> None:
        url = f"{self.ex.endpoints.rest}/api/v3/depth"
        params = {"symbol": request.symbol, "limit": str(request.limit)}
        async with self.session.get(url, params=params) as response:
            body = await response.read()
        self.books.receive_snapshot(request.symbol, body, request.token, limit=request.limit)
        self._drain()

    async def read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            self.books.receive_frame(frame, "test")
            self._drain()

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), T)

    def sync(self, symbol: str) -> BookSync:
        return self.books.books[symbol]

    async def caught_up(self, symbol: str) -> dict[str, Any]:
        """With the market paused, wait until the book reaches the true book's id; the truth."""
        truth = await self.ex.book(symbol)
        sync = self.sync(symbol)
        await self.until(lambda: sync.synced and sync.last_update_id == truth["lastUpdateId"])
        return truth


def exact(levels: Any) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}


def as_exact(sync: BookSync) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    return (
        {v: Decimal(q) for v, _, q in sync.book.bids.levels()},
        {v: Decimal(q) for v, _, q in sync.book.asks.levels()},
    )


@pytest.fixture
async def driver() -> AsyncIterator[Driver]:
    async with (
        FakeExchange(symbols=SYMBOLS, seed=11, rate=400) as ex,
        aiohttp.ClientSession() as session,
    ):
        run = Driver(ex, session)
        streams = "/".join(f"{s.lower()}@depth@100ms" for s in SYMBOLS)
        async with connect(f"{ex.endpoints.ws}/stream?streams={streams}", proxy=None) as ws:
            reader = asyncio.create_task(run.read(ws))
            try:
                yield run
            finally:
                reader.cancel()
                for task in list(run.tasks):
                    task.cancel()
                await asyncio.gather(reader, *run.tasks, return_exceptions=True)


async def test_books_sync_and_equal_the_true_books(driver: Driver) -> None:
    """Both symbols sync from the live stream and equal /_fake/book level for level."""
    await driver.until(lambda: all(driver.sync(s).synced for s in SYMBOLS))
    await driver.ex.pause()
    for symbol in SYMBOLS:
        truth = await driver.caught_up(symbol)
        assert as_exact(driver.sync(symbol)) == (exact(truth["bids"]), exact(truth["asks"]))
    assert not [e for e in driver.events if isinstance(e, (Reset, Malformed))]


async def test_dropped_diff_resyncs_that_symbol_only(driver: Driver) -> None:
    """A dropped BTCUSDT diff is a gap: BTCUSDT resyncs, ETHBTC never resets; both end exact."""
    await driver.until(lambda: all(driver.sync(s).synced for s in SYMBOLS))
    driver.ex.faults.drop_diffs("BTCUSDT")

    def resynced() -> bool:
        gaps = [e for e in driver.events if isinstance(e, Reset) and e.reason is ResetReason.GAP]
        return bool(gaps) and driver.sync("BTCUSDT").synced

    await driver.until(resynced)
    assert all(e.symbol == "BTCUSDT" for e in driver.events if isinstance(e, Reset))
    assert driver.sync("ETHBTC").counters.resets == 0
    await driver.ex.pause()
    for symbol in SYMBOLS:
        truth = await driver.caught_up(symbol)
        assert as_exact(driver.sync(symbol)) == (exact(truth["bids"]), exact(truth["asks"]))


async def test_corrupted_level_is_caught_by_an_audit_and_repaired(driver: Driver) -> None:
    """A level the stream got wrong is found by the audit, located exactly, and resynced away."""
    sync = driver.sync("BTCUSDT")
    await driver.until(lambda: sync.synced)
    wrong: set[Decimal] = set()
    for _ in range(5):  # a later diff may overwrite the corrupted level before we look: retry
        driver.ex.faults.corrupt_level("BTCUSDT")
        await driver.until(lambda: not driver.ex.faults.pending())
        await driver.ex.pause()
        truth = await driver.caught_up("BTCUSDT")
        bids, asks = as_exact(sync)
        true_bids, true_asks = exact(truth["bids"]), exact(truth["asks"])
        wrong = {p for p in bids.keys() | true_bids.keys() if bids.get(p) != true_bids.get(p)}
        wrong |= {p for p in asks.keys() | true_asks.keys() if asks.get(p) != true_asks.get(p)}
        if wrong:
            break
        await driver.ex.resume()
    assert wrong, "the corrupted level never survived until the audit"
    assert sync.request_audit(limit=1000) is not None
    driver._drain()
    await driver.until(lambda: any(isinstance(e, DriftDetected) for e in driver.events))
    (drift,) = [e for e in driver.events if isinstance(e, DriftDetected)]
    assert {Decimal(m.price) for m in drift.mismatches} == wrong
    assert not any(isinstance(e, AuditPassed) for e in driver.events)
    await driver.ex.resume()
    await driver.until(lambda: sync.synced)
    await driver.ex.pause()
    truth = await driver.caught_up("BTCUSDT")
    assert as_exact(sync) == (exact(truth["bids"]), exact(truth["asks"]))
