"""The local exchange's SBE market streams, over real sockets (protocol §7.6).

Books are built by the pure core from the binary diffs (``DepthBooks.receive_sbe``) plus REST
snapshots, as Binance documents, and compared with the exchange's true book.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from itertools import pairwise
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamer.sansio.book_sync import DriftDetected, Reset, ResetReason, SnapshotRequest
from streamer.sansio.books import DepthBooks
from streamer.sansio.sbe import SbeBestBidAsk, SbeDepthSnapshot, SbeTrades, decode_sbe
from streamer.sansio.wire import DepthDiff, Malformed
from streamer.testing import FakeExchange
from streamer.testing.exchange.faults import Fault, FaultKind
from streamer.testing.exchange.firehose import Firehose, generate_series
from streamer.testing.exchange.sbe_streams import _message_size, _SbeTemplate, ed25519_key_pair
from tests.integration.test_core_against_exchange import Driver, as_exact, exact

T = 10.0  # the one bound on every wait in this module
SYMBOLS = ["BTCUSDT", "ETHBTC"]


async def ed25519_key(ex: FakeExchange) -> str:
    _private, public = ed25519_key_pair()
    return (await ex.create_account(ed25519_public_key_pem=public))["apiKey"]


def open_sbe(ex: FakeExchange, path: str, key: str | None) -> Any:
    headers = {"X-MBX-APIKEY": key} if key is not None else None
    return connect(
        ex.sbe_url + path, proxy=None, additional_headers=headers, max_size=None, max_queue=None
    )


async def next_binary(ws: ClientConnection) -> Any:
    """The next data frame, decoded (text frames are skipped)."""

    async def scan() -> Any:
        while True:
            frame = await ws.recv()
            if isinstance(frame, bytes):
                return decode_sbe(frame)

    return await asyncio.wait_for(scan(), T)


class SbeDriver(Driver):
    """The JSON driver's snapshot fetching and waiting, fed binary SBE frames instead."""

    def __init__(self, ex: FakeExchange, session: aiohttp.ClientSession) -> None:
        super().__init__(ex, session)
        self.texts: list[Any] = []
        self.diffs: list[DepthDiff] = []

    async def read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            if isinstance(frame, bytes):
                self.books.receive_sbe(frame, "sbe")
                msg = decode_sbe(frame)
                if isinstance(msg, DepthDiff):
                    self.diffs.append(msg)
            else:  # control replies and serverShutdown stay JSON text
                self.texts.append(orjson.loads(frame))
                self.books.receive_frame(frame, "sbe")
            self._drain()
        self.changed.set()


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=SYMBOLS, seed=11, rate=400) as ex:
        yield ex


@pytest.fixture
async def driver(exchange: FakeExchange) -> AsyncIterator[SbeDriver]:
    key = await ed25519_key(exchange)
    async with aiohttp.ClientSession() as session:
        run = SbeDriver(exchange, session)
        streams = "/".join(f"{s.lower()}@depth" for s in SYMBOLS)
        async with open_sbe(exchange, f"/stream?streams={streams}", key) as ws:
            reader = asyncio.create_task(run.read(ws))
            try:
                yield run
            finally:
                reader.cancel()
                for task in list(run.tasks):
                    task.cancel()
                await asyncio.gather(reader, *run.tasks, return_exceptions=True)


async def assert_exact(driver: SbeDriver, symbols: list[str] = SYMBOLS) -> None:
    await driver.ex.pause()
    for symbol in symbols:
        truth = await driver.caught_up(symbol)
        assert as_exact(driver.sync(symbol)) == (exact(truth["bids"]), exact(truth["asks"]))


# -- the handshake ------------------------------------------------------------------------------


async def refusal(ex: FakeExchange, key: str | None) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        async with open_sbe(ex, "/ws/btcusdt@depth", key):
            pass
    response = info.value.response
    return response.status_code, bytes(response.body or b"")


async def test_handshake_needs_an_ed25519_key_of_an_existing_account(
    exchange: FakeExchange,
) -> None:
    """No key: 400; a malformed, unknown or HMAC key: 401 with Binance's codes; Ed25519: open."""
    assert await refusal(exchange, None) == (400, b"No X-MBX-APIKEY header")
    status, body = await refusal(exchange, "not a key!")
    assert (status, orjson.loads(body)["code"]) == (401, -2014)
    status, body = await refusal(exchange, "A" * 64)
    assert (status, orjson.loads(body)["code"]) == (401, -2015)
    hmac_key = (await exchange.create_account())["apiKey"]
    status, body = await refusal(exchange, hmac_key)
    assert (status, orjson.loads(body)["code"]) == (401, -2015)
    async with open_sbe(exchange, "/ws/btcusdt@depth", await ed25519_key(exchange)) as ws:
        assert isinstance(await next_binary(ws), DepthDiff)


async def test_the_json_streams_need_no_key_and_stay_json(exchange: FakeExchange) -> None:
    """The JSON port is untouched: no key needed, text frames; SBE has a port of its own."""
    assert exchange.sbe_url != exchange.endpoints.ws
    async with connect(exchange.endpoints.ws + "/ws/btcusdt@depth@100ms", proxy=None) as ws:
        frame = await asyncio.wait_for(ws.recv(), T)
    assert isinstance(frame, str) and orjson.loads(frame)["e"] == "depthUpdate"


async def test_sbe_can_be_turned_off() -> None:
    """FakeExchange(sbe=False) serves no SBE port."""
    async with FakeExchange(symbols=["BTCUSDT"], rate=0, sbe=False) as ex:
        with pytest.raises(RuntimeError):
            _ = ex.sbe_url
        assert ex.sbe_hub is None


# -- streams ------------------------------------------------------------------------------------


async def test_sbe_books_sync_and_equal_the_true_books(driver: SbeDriver) -> None:
    """Both symbols sync from binary diffs and a JSON REST snapshot, and equal /_fake/book."""
    await driver.until(lambda: all(driver.sync(s).synced for s in SYMBOLS))
    await assert_exact(driver)
    assert not [e for e in driver.events if isinstance(e, Reset | Malformed)]
    assert driver.books.counters.malformed == 0 and driver.books.counters.frames > 0
    for symbol in SYMBOLS:  # every diff of a symbol continues the previous one
        ids = [(d.first_id, d.last_id) for d in driver.diffs if d.symbol == symbol]
        assert all(u + 1 == nxt for (_, u), (nxt, _) in pairwise(ids))
        assert all(d.event_time > 10**15 for d in driver.diffs)  # µs since the epoch


async def test_control_messages_are_json_text_and_data_is_binary(exchange: FakeExchange) -> None:
    """SUBSCRIBE & co answer in JSON text frames; names the SBE schema lacks are refused."""
    async with open_sbe(exchange, "/ws", await ed25519_key(exchange)) as ws:
        streams = ["btcusdt@depth", "btcusdt@depth20", "btcusdt@bestBidAsk", "btcusdt@trade"]
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}).decode())
        first = await asyncio.wait_for(ws.recv(), T)
        assert isinstance(first, str) and orjson.loads(first) == {"result": None, "id": 1}
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":"two"}')
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":3}')
        replies: list[Any] = []
        kinds: set[type] = set()

        async def collect() -> None:
            while len(replies) < 2 or len(kinds) < 4:
                frame = await ws.recv()
                if isinstance(frame, str):
                    replies.append(orjson.loads(frame))
                else:
                    kinds.add(type(decode_sbe(frame)))

        await asyncio.wait_for(collect(), T)
    assert replies == [
        {"result": streams, "id": "two"},
        {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3},
    ]
    assert kinds == {DepthDiff, SbeDepthSnapshot, SbeBestBidAsk, SbeTrades}


async def test_depth20_best_bid_ask_and_trades_match_the_book(driver: SbeDriver) -> None:
    """With the market paused and caught up, depth20 and the last bestBidAsk equal the book."""
    key = await ed25519_key(driver.ex)
    streams = "btcusdt@depth/btcusdt@bestBidAsk/btcusdt@trade"
    tickers: list[SbeBestBidAsk] = []
    trades: list[SbeTrades] = []
    last_u = [0]
    seen = asyncio.Event()

    async def watch(ws: ClientConnection) -> None:
        async for frame in ws:
            assert isinstance(frame, bytes)
            msg = decode_sbe(frame)
            if isinstance(msg, SbeBestBidAsk):
                tickers.append(msg)
            elif isinstance(msg, SbeTrades):
                trades.append(msg)
            elif isinstance(msg, DepthDiff):
                last_u[0] = msg.last_id
            seen.set()

    async def until(condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                seen.clear()
                await seen.wait()

        await asyncio.wait_for(wait(), T)

    async with open_sbe(driver.ex, f"/stream?streams={streams}", key) as ws:
        watcher = asyncio.create_task(watch(ws))
        try:
            await until(lambda: bool(tickers and trades))
            await driver.ex.pause()
            truth = await driver.ex.book("BTCUSDT")
            # Diffs and tickers share one ordered connection: once a diff that ends at the
            # true id is in, every ticker published before it is in too.
            await until(lambda: last_u[0] == truth["lastUpdateId"])
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    best = tickers[-1]
    assert (best.bid_price, best.bid_qty) == tuple(truth["bids"][0])
    assert (best.ask_price, best.ask_qty) == tuple(truth["asks"][0])
    ids = [t.trade_id for batch in trades for t in batch.trades]
    assert ids == sorted(set(ids)) and all(batch.symbol == "BTCUSDT" for batch in trades)
    assert all(Decimal(t.qty) > 0 for batch in trades for t in batch.trades)
    async with open_sbe(driver.ex, "/ws/btcusdt@depth20", key) as snaps:
        depth20 = await next_binary(snaps)
    assert isinstance(depth20, SbeDepthSnapshot)
    assert depth20.last_update_id == truth["lastUpdateId"]
    assert depth20.bids == truth["bids"][:20] and depth20.asks == truth["asks"][:20]


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [FaultKind.DROP_DIFF, FaultKind.DELAY_DIFF])
async def test_a_dropped_or_late_sbe_diff_resyncs_that_symbol_only(
    driver: SbeDriver, kind: FaultKind
) -> None:
    """A lost or late BTCUSDT diff on SBE is a gap: BTCUSDT resyncs, ETHBTC does not; exact."""
    await driver.until(lambda: all(driver.sync(s).synced for s in SYMBOLS))
    driver.ex.faults.add(Fault(kind, symbol="BTCUSDT", channel="sbe", delay_ms=300))

    def resynced() -> bool:
        gaps = [e for e in driver.events if isinstance(e, Reset) and e.reason is ResetReason.GAP]
        return bool(gaps) and driver.sync("BTCUSDT").synced

    await driver.until(resynced)
    assert driver.ex.sbe_hub is not None and driver.ex.sbe_hub.stats.faults_applied == {kind: 1}
    assert driver.sync("ETHBTC").counters.resets == 0
    await assert_exact(driver)


async def test_an_sbe_fault_spares_the_json_streams(driver: SbeDriver) -> None:
    """A drop aimed at the sbe channel never touches the JSON stream of the same symbol."""
    async with connect(driver.ex.endpoints.ws + "/ws/btcusdt@depth@100ms", proxy=None) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), T))
        driver.ex.faults.add(Fault(FaultKind.DROP_DIFF, symbol="BTCUSDT", channel="sbe"))
        await driver.until(lambda: not driver.ex.faults.pending())
        last = first["u"]
        for _ in range(3):
            event = orjson.loads(await asyncio.wait_for(ws.recv(), T))
            assert event["U"] == last + 1
            last = event["u"]
    assert driver.ex.hub.stats.faults_applied == {}


async def test_a_duplicated_sbe_diff_is_dropped_without_a_reset(driver: SbeDriver) -> None:
    """A diff sent twice is stale the second time: counted as dropped, the book stays exact."""
    sync = driver.sync("BTCUSDT")
    await driver.until(lambda: sync.synced)
    driver.ex.faults.duplicate_diffs("BTCUSDT")
    await driver.until(lambda: sync.counters.dropped >= 1)
    assert sync.counters.resets == 0
    await assert_exact(driver)


async def test_a_corrupted_sbe_level_is_found_by_an_audit(driver: SbeDriver) -> None:
    """A wrong quantity sent over SBE is drift: the audit locates it, and a resync repairs it."""
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
    await driver.ex.resume()
    await driver.until(lambda: sync.synced)
    await assert_exact(driver, ["BTCUSDT"])


@pytest.mark.parametrize("payload", [None, "not sbe {U}"])
async def test_a_malformed_sbe_diff_arrives_as_a_malformed_binary_frame(
    exchange: FakeExchange, payload: str | None
) -> None:
    """malformed_diff on the sbe channel sends a binary frame decode_sbe reports Malformed."""
    key = await ed25519_key(exchange)
    async with open_sbe(exchange, "/ws/btcusdt@depth", key) as ws:
        assert isinstance(await next_binary(ws), DepthDiff)
        fault = Fault(FaultKind.MALFORMED_DIFF, symbol="BTCUSDT", channel="sbe", payload=payload)
        exchange.faults.add(fault)

        async def first_malformed() -> Malformed:
            while True:
                msg = await next_binary(ws)
                if isinstance(msg, Malformed):
                    return msg
                assert isinstance(msg, DepthDiff)  # the diffs before the fault is taken

        await asyncio.wait_for(first_malformed(), T)
    assert exchange.sbe_hub is not None
    assert exchange.sbe_hub.stats.faults_applied == {FaultKind.MALFORMED_DIFF: 1}
    assert exchange.hub.stats.faults_applied == {}


async def test_disconnect_and_server_shutdown_on_sbe(exchange: FakeExchange) -> None:
    """disconnect drops SBE connections; serverShutdown arrives as JSON text, then a close."""
    key = await ed25519_key(exchange)
    async with open_sbe(exchange, "/ws/btcusdt@depth", key) as ws:
        await next_binary(ws)
        exchange.faults.disconnect(channel="sbe", count=None)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)  # data may still be queued: drain until closed
            while True:
                await asyncio.wait_for(ws.recv(), T)
    async with open_sbe(exchange, "/stream?streams=btcusdt@depth", key) as ws:
        await next_binary(ws)
        exchange.faults.server_shutdown(channel="sbe", delay_ms=50)
        texts: list[Any] = []

        async def until_closed() -> None:
            try:
                while True:
                    frame = await ws.recv()
                    if isinstance(frame, str):
                        texts.append(orjson.loads(frame))
            except ConnectionClosed:
                return

        await asyncio.wait_for(until_closed(), T)
        assert ws.close_code == 1001
    assert [t["stream"] for t in texts] == ["!serverShutdown"]
    assert texts[0]["data"]["e"] == "serverShutdown"


# -- firehose -----------------------------------------------------------------------------------


async def test_the_sbe_firehose_serves_the_json_firehose_cycle_in_binary() -> None:
    """SBE firehose diffs are the JSON firehose's, contiguous, and sync from its snapshot."""
    firehose = Firehose(["BTCUSDT"], seed=2, messages=100, rate=4000)
    async with FakeExchange(["BTCUSDT"], seed=2, rate=0, firehose=firehose) as ex:
        key = await ed25519_key(ex)
        series = firehose.series["BTCUSDT"]
        async with open_sbe(ex, "/ws/btcusdt@depth", key) as ws, aiohttp.ClientSession() as http:
            url = f"{ex.endpoints.rest}/api/v3/depth?symbol=BTCUSDT&limit=5000"
            async with http.get(url) as resp:
                snapshot = await resp.read()
            books = DepthBooks(symbols=["BTCUSDT"])
            count = 2 * len(series.messages) + 10  # more than two cycles
            for k in range(count):
                frame = await asyncio.wait_for(ws.recv(), T)
                assert isinstance(frame, bytes)
                msg = decode_sbe(frame)
                assert isinstance(msg, DepthDiff)
                assert (msg.first_id, msg.last_id) == series.ids(k)
                bids, asks = series.levels(k)
                assert (msg.bids, msg.asks) == ([list(b) for b in bids], [list(a) for a in asks])
                books.receive_sbe(frame)
                if k == 0:
                    (request,) = books.events()
                    assert isinstance(request, SnapshotRequest)
                    books.receive_snapshot("BTCUSDT", snapshot, request.token)
        sync = books.books["BTCUSDT"]
        assert sync.synced and sync.counters.resets == 0 and sync.counters.applied == count
        assert (await refusal(ex, None))[0] == 400  # the firehose wants a key too


async def test_the_sbe_firehose_stamps_microseconds_whatever_time_unit_is_asked() -> None:
    """timeUnit=MICROSECOND or not, SBE firehose event times are µs of the wall clock."""
    firehose = Firehose(["BTCUSDT"], seed=2, messages=20, rate=2000)
    async with FakeExchange(["BTCUSDT"], seed=2, rate=0, firehose=firehose) as ex:
        key = await ed25519_key(ex)
        for query in ("", "?timeUnit=MICROSECOND", "?timeUnit=MILLISECOND"):
            before_us = time.time_ns() // 1000
            async with open_sbe(ex, "/ws/btcusdt@depth" + query, key) as ws:
                msg = await next_binary(ws)
                after_us = time.time_ns() // 1000
            assert isinstance(msg, DepthDiff)
            assert before_us <= msg.event_time <= after_us, query


def test_sbe_firehose_frames_carry_the_series_ids_on_a_skipping_series() -> None:
    """The SBE template numbers messages as the series does, also when ids skip (futures)."""
    series = generate_series("BTCUSDT", seed=3, messages=10, skip_ids=True)
    template = _SbeTemplate(series)
    size = len(series.messages)
    for k in (0, 1, size - 1, size, 3 * size + 2):
        framed, n = template.render(k, 1, 1_700_000_000_123_456_789)
        msg = decode_sbe(framed[len(framed) - _message_size(framed) :])
        assert n == 1 and isinstance(msg, DepthDiff)
        assert (msg.first_id, msg.last_id) == series.ids(k)
        assert msg.event_time == 1_700_000_000_123_456
