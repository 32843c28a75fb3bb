"""The local exchange as a futures venue (USD-M, COIN-M), over real sockets (protocol §2.2, §7.8).

REST market data under ``/fapi/v1`` (``/dapi/v1``), futures streams with ``pu`` and update ids
that skip between events, the futures limits, faults on futures streams, and the pure book core
(``DepthBooks(Venue.USDM)``) synced against it and compared with ``/_fake/book``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from itertools import pairwise
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamer.sansio.book_sync import BookSync, Reset, ResetReason, SnapshotRequest, SyncEvent
from streamer.sansio.books import DepthBooks
from streamer.sansio.wire import Malformed, Venue
from streamer.testing import FakeExchange
from streamer.testing.exchange.firehose import Firehose, generate_series
from streamer.testing.exchange.futures_rest import DEPTH_WEIGHTS
from streamer.testing.exchange.symbols import load_exchange_info

T = 10.0  # the one bound on every wait in this module
T0 = 1_767_225_630_000  # 2026-01-01T00:00:30Z, for a clock the test holds still
SYMBOLS = ["BTCUSDT", "ETHBTC"]
Json = dict[str, Any]
DIFF_KEYS = {"e", "E", "T", "s", "U", "u", "pu", "b", "a"}


def still_clock() -> int:
    """A clock that never moves: no market actions, one weight window."""
    return T0


@pytest.fixture
async def usdm() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", seed=5, rate=2000) as ex:
        yield ex


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def open_ws(url: str) -> Any:
    return connect(url, proxy=None, compression=None, max_size=None, max_queue=None)


async def recv(ws: ClientConnection) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), T))


async def until(ws: ClientConnection, pred: Callable[[Any], bool]) -> Any:
    async def scan() -> Any:
        while True:
            msg = orjson.loads(await ws.recv())
            if pred(msg):
                return msg

    return await asyncio.wait_for(scan(), T)


def is_reply(msg: Any) -> bool:
    return isinstance(msg, dict) and ("id" in msg or "code" in msg or "error" in msg)


async def ask(ws: ClientConnection, request: Json) -> Any:
    await ws.send(orjson.dumps(request).decode())
    return await until(ws, is_reply)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    async with http.get(url) as resp:
        return resp.status, resp.headers, await resp.json(content_type=None)


async def diffs(ws: ClientConnection, stream: str, n: int) -> list[Json]:
    """The next ``n`` events of ``stream`` on a combined connection."""
    out: list[Json] = []
    while len(out) < n:
        msg = await until(ws, lambda m: m.get("stream") == stream)
        out.append(msg["data"])
    return out


# ---------------------------------------------------------------------- venue and endpoints


async def test_endpoints_follow_the_venue() -> None:
    """ex.venue and ex.endpoints: /public streams on USD-M, the bare base on COIN-M."""
    async with (
        FakeExchange(symbols=SYMBOLS, venue="usdm", rate=0) as usdm,
        FakeExchange(symbols=SYMBOLS, venue="coinm", rate=0) as coinm,
    ):
        assert usdm.venue == "usdm" and usdm.endpoints.venue == "usdm"
        assert usdm.endpoints.ws == f"ws://127.0.0.1:{usdm.port}/public"
        assert usdm.endpoints.depth_path == "/fapi/v1/depth"
        assert coinm.endpoints.ws == f"ws://127.0.0.1:{coinm.port}"
        assert coinm.endpoints.depth_path == "/dapi/v1/depth"


def test_an_unknown_venue_or_a_mismatched_firehose_is_refused() -> None:
    """venue='margin' is a ValueError, and so is a spot firehose on a futures exchange."""
    with pytest.raises(ValueError, match="unknown venue"):
        FakeExchange(symbols=SYMBOLS, venue="margin")
    with pytest.raises(ValueError, match="firehose"):
        FakeExchange(symbols=SYMBOLS, venue="usdm", firehose=Firehose(["BTCUSDT"], messages=10))


# ---------------------------------------------------------------------- REST


async def test_depth_shape_limits_and_weights(session: aiohttp.ClientSession) -> None:
    """/fapi/v1/depth: {lastUpdateId,E,T,bids,asks}, default 500, weights 2..20 per limit."""
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", rate=0, clock=still_clock) as ex:
        base = f"{ex.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT"
        status, headers, body = await get(session, base)
        assert status == 200 and list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
        assert body["lastUpdateId"] == ex.engine.last_update_id("BTCUSDT")
        assert body["E"] == T0 and body["T"] <= body["E"]
        full = ex.engine.full_book("BTCUSDT")
        assert (len(body["bids"]), len(body["asks"])) == (len(full.bids), len(full.asks))
        assert len(full.bids) < 500  # so the default of 500 returned the whole book
        used = int(headers["X-MBX-USED-WEIGHT-1M"])
        assert used == DEPTH_WEIGHTS[500] == 10
        for limit, weight in DEPTH_WEIGHTS.items():
            status, headers, body = await get(session, f"{base}&limit={limit}")
            assert status == 200 and len(body["bids"]) == min(limit, len(full.bids))
            assert len(body["asks"]) == min(limit, len(full.asks))
            assert int(headers["X-MBX-USED-WEIGHT-1M"]) == used + weight
            assert headers["X-MBX-USED-WEIGHT"] == headers["X-MBX-USED-WEIGHT-1M"]
            used += weight
        _, _, five = await get(session, f"{base}&limit=5")
        assert [five["bids"], five["asks"]] == [
            [list(level) for level in full.bids[:5]],
            [list(level) for level in full.asks[:5]],
        ]


@pytest.mark.parametrize("limit", ["7", "0", "5000", "1001", "abc", "-5", "100.0"])
async def test_depth_refuses_limits_outside_the_futures_set(
    session: aiohttp.ClientSession, usdm: FakeExchange, limit: str
) -> None:
    """A limit outside {5,10,20,50,100,500,1000} is 400 / -1100 naming the legal values."""
    url = f"{usdm.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT&limit={limit}"
    status, _, body = await get(session, url)
    assert (status, body["code"]) == (400, -1100)
    assert "5, 10, 20, 50, 100, 500, 1000" in body["msg"]


async def test_depth_needs_a_known_symbol(
    session: aiohttp.ClientSession, usdm: FakeExchange
) -> None:
    """No symbol is -1102; a symbol the exchange does not list is -1121."""
    status, _, body = await get(session, f"{usdm.endpoints.rest}/fapi/v1/depth")
    assert (status, body["code"]) == (400, -1102)
    status, _, body = await get(session, f"{usdm.endpoints.rest}/fapi/v1/depth?symbol=XRPUSDT")
    assert (status, body["code"]) == (400, -1121)


async def test_ping_time_and_exchange_info(
    session: aiohttp.ClientSession, usdm: FakeExchange
) -> None:
    """ping {}, time, and exchangeInfo with futures rate limits over the spot symbol entries."""
    rest = usdm.endpoints.rest
    assert (await get(session, f"{rest}/fapi/v1/ping"))[::2] == (200, {})
    status, _, body = await get(session, f"{rest}/fapi/v1/time")
    assert status == 200 and isinstance(body["serverTime"], int)
    status, headers, info = await get(session, f"{rest}/fapi/v1/exchangeInfo")
    assert status == 200 and info["futuresType"] == "U_MARGINED"
    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
            "limit": 2400} in info["rateLimits"]  # fmt: skip
    spot = {s["symbol"]: s for s in load_exchange_info()["symbols"]}
    assert info["symbols"] == [spot[s] for s in SYMBOLS]
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 1


async def test_spot_paths_are_not_served_on_a_futures_exchange(
    session: aiohttp.ClientSession, usdm: FakeExchange
) -> None:
    """/api/v3/..., /dapi/v1/... and the spot WS-API answer 404 on a USD-M exchange."""
    rest = usdm.endpoints.rest
    for path in ("/api/v3/depth?symbol=BTCUSDT", "/api/v3/ping", "/dapi/v1/depth?symbol=BTCUSDT"):
        status, _, body = await get(session, rest + path)
        assert (status, body["code"]) == (404, -1020), path
    async with session.post(f"{rest}/api/v3/order") as resp:
        assert resp.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await session.ws_connect(rest.replace("http", "ws") + "/ws-api/v3")


async def test_the_weight_limit_is_2400_with_429_then_418(session: aiohttp.ClientSession) -> None:
    """120 depth calls of weight 20 fill the futures minute; the next is 429, then 418."""
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", rate=0, clock=still_clock) as ex:
        url = f"{ex.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
        for _ in range(120):
            status, headers, _ = await get(session, url)
            assert status == 200
        assert headers["X-MBX-USED-WEIGHT-1M"] == "2400"
        status, headers, body = await get(session, url)
        assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "30")
        assert "2400" in body["msg"]
        statuses = [(await get(session, url))[0] for _ in range(2)]
        assert statuses == [429, 418]


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_fault_applies_to_futures_depth(
    session: aiohttp.ClientSession, usdm: FakeExchange, status: int
) -> None:
    """A scripted rate_limit fault answers /fapi/v1/depth with its status and Retry-After."""
    usdm.faults.rate_limit(status=status, retry_after=9)
    url = f"{usdm.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT"
    got, headers, body = await get(session, url)
    assert (got, body["code"], headers["Retry-After"]) == (status, -1003, "9")
    assert (await get(session, url))[0] == 200


async def test_stale_snapshot_fault_applies_to_futures_depth(
    session: aiohttp.ClientSession,
) -> None:
    """stale_snapshot serves the book as it was when added, once, then the current one."""
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", rate=0, clock=still_clock) as ex:
        url = f"{ex.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT&limit=5"
        before = ex.engine.last_update_id("BTCUSDT")
        ex.faults.stale_snapshot("BTCUSDT")
        while ex.engine.last_update_id("BTCUSDT") == before:  # the market acts (no I/O here)
            ex.engine.step(T0, 20)
        now = ex.engine.last_update_id("BTCUSDT")
        stale = (await get(session, url))[2]
        assert stale["lastUpdateId"] == before and len(stale["bids"]) == 5
        assert set(stale) == {"lastUpdateId", "E", "T", "bids", "asks"}
        assert (await get(session, url))[2]["lastUpdateId"] == now


# ---------------------------------------------------------------------- streams


async def test_diffs_carry_pu_chain_exactly_and_ids_skip(usdm: FakeExchange) -> None:
    """Every diff has e/E/T/s/U/u/pu/b/a; pu == previous u, yet U == previous u + 1 fails."""
    stream = "btcusdt@depth@100ms"
    async with open_ws(f"{usdm.endpoints.ws}/stream?streams={stream}") as ws:
        events = await diffs(ws, stream, 15)
    for event in events:
        assert set(event) == DIFF_KEYS and event["e"] == "depthUpdate"
        assert event["s"] == "BTCUSDT" and event["U"] <= event["u"]
        assert event["T"] <= event["E"] and event["pu"] < event["U"]
        assert all(len(p.split(".")[1]) == 8 for p, _ in event["b"] + event["a"])
    pairs = list(pairwise(events))
    assert all(later["pu"] == earlier["u"] for earlier, later in pairs)
    assert any(later["U"] != earlier["u"] + 1 for earlier, later in pairs)


async def test_every_path_and_speed_serves_futures_depth(usdm: FakeExchange) -> None:
    """/public/ws, /public/stream and the unrouted /ws, /stream serve @depth, @500ms, @100ms."""
    base = usdm.endpoints.ws.removesuffix("/public")
    urls = [
        f"{base}/public/ws/btcusdt@depth",
        f"{base}/ws/btcusdt@depth@500ms",
        f"{base}/public/stream?streams=btcusdt@depth@100ms",
        f"{base}/stream?streams=ethbtc@depth",
    ]
    for url in urls:
        async with open_ws(url) as ws:
            msg = await until(ws, lambda m: "stream" in m or m.get("e") == "depthUpdate")
            event = msg.get("data", msg)
            assert set(event) == DIFF_KEYS, url
    async with open_ws(f"{base}/public/ws") as ws:
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@depth@500ms"], "id": 1})
        assert reply == {"result": None, "id": 1}
        assert set(await until(ws, lambda m: m.get("e") == "depthUpdate")) == DIFF_KEYS
        for spot_only in ("btcusdt@depth@1000ms", "btcusdt@trade", "btcusdt@depth5@1000ms"):
            refused = await ask(ws, {"method": "SUBSCRIBE", "params": [spot_only], "id": 2})
            assert refused == {"error": {"code": 2, "msg": "Invalid request: invalid stream"},
                               "id": 2}  # fmt: skip


async def test_partial_books_and_book_ticker_have_the_futures_shape(usdm: FakeExchange) -> None:
    """@depth5/10/20 are depthUpdate with pu == previous u of that stream; bookTicker has e/E/T."""
    names = ["btcusdt@depth5@100ms", "btcusdt@depth10", "btcusdt@depth20@500ms"]
    names.append("btcusdt@bookTicker")
    async with open_ws(f"{usdm.endpoints.ws}/stream?streams=" + "/".join(names)) as ws:
        fives = await diffs(ws, names[0], 4)
        ten = (await diffs(ws, names[1], 1))[0]
        twenty = (await diffs(ws, names[2], 1))[0]
        ticker = (await diffs(ws, names[3], 1))[0]
    for event, levels in ((fives[0], 5), (ten, 10), (twenty, 20)):
        assert set(event) == DIFF_KEYS and event["e"] == "depthUpdate"
        assert len(event["b"]) == len(event["a"]) == levels
        assert Decimal(event["b"][0][0]) < Decimal(event["a"][0][0])
    assert all(b["pu"] == a["u"] for a, b in pairwise(fives))
    assert set(ticker) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"}
    assert ticker["e"] == "bookTicker" and Decimal(ticker["b"]) < Decimal(ticker["a"])


async def test_control_messages_need_an_unsigned_integer_id(usdm: FakeExchange) -> None:
    """Futures refuse string, null, negative and boolean ids; an unsigned integer is echoed."""
    error = {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
    async with open_ws(f"{usdm.endpoints.ws}/ws") as ws:
        for rid in ("42", None, -1, True):
            assert await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": rid}) == error
        assert await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2**63}) == {
            "result": [],
            "id": 2**63,
        }


async def test_ten_incoming_messages_per_second_and_1024_streams(usdm: FakeExchange) -> None:
    """The eleventh frame within a second disconnects; 1025 streams are refused, 1024 taken."""
    names = [f"sym{i}usdt@bookTicker" for i in range(1025)]
    async with open_ws(f"{usdm.endpoints.ws}/ws") as ws:
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": names, "id": 1})
        assert reply["id"] == 1 and reply["error"]["code"] == 2
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": names[:1024], "id": 2})
        assert reply == {"result": None, "id": 2}
    replies = 0
    async with open_ws(f"{usdm.endpoints.ws}/ws") as ws:
        for i in range(11):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(ws)
                replies += 1
        assert ws.close_code == 1008
    assert replies == 10
    assert (usdm.hub.ping_interval, usdm.hub.pong_timeout) == (180.0, 600.0)


async def test_depth_faults_on_futures_streams(usdm: FakeExchange) -> None:
    """drop breaks the pu chain, duplicate repeats, delay reorders, corrupt is applied."""
    stream = "btcusdt@depth@100ms"
    async with open_ws(f"{usdm.endpoints.ws}/stream?streams={stream}") as ws:
        (prev,) = await diffs(ws, stream, 1)
        usdm.faults.drop_diffs("BTCUSDT")
        (event,) = await diffs(ws, stream, 1)
        assert event["pu"] != prev["u"] and event["pu"] > prev["u"], "a dropped diff is a gap"
        usdm.faults.duplicate_diffs("BTCUSDT")
        first, second = await diffs(ws, stream, 2)
        assert first == second
        usdm.faults.delay_diffs("BTCUSDT", delay_ms=300)
        starts = [e["U"] for e in await diffs(ws, stream, 5)]
        assert starts != sorted(starts), "the delayed diff arrives after later ones"
        usdm.faults.corrupt_level("BTCUSDT")
        await diffs(ws, stream, 1)
    assert usdm.hub.stats.faults_applied == {
        "drop_diff": 1,
        "duplicate_diff": 1,
        "delay_diff": 1,
        "corrupt_level": 1,
    }


async def test_connection_faults_on_futures_streams(usdm: FakeExchange) -> None:
    """serverShutdown (combined envelope) then a 1001 close; disconnect drops silently."""
    async with open_ws(f"{usdm.endpoints.ws}/stream") as ws:
        usdm.faults.server_shutdown(delay_ms=50, channel="market")
        msg = await recv(ws)
        assert msg["stream"] == "!serverShutdown" and msg["data"]["e"] == "serverShutdown"
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001
    async with open_ws(f"{usdm.endpoints.ws}/ws") as ws:
        usdm.faults.disconnect(channel="market")
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code != 1000


async def test_the_last_u_sent_is_the_true_books_id(usdm: FakeExchange) -> None:
    """Paused, the stream catches up: its last u equals /_fake/book's lastUpdateId (§9.12)."""
    stream = "ethbtc@depth@100ms"
    async with open_ws(f"{usdm.endpoints.ws}/stream?streams={stream}") as ws:
        (last,) = await diffs(ws, stream, 1)
        await usdm.pause()
        truth = await usdm.book("ETHBTC")
        if last["u"] < truth["lastUpdateId"]:  # else nothing changed since that diff
            last = (await until(ws, lambda m: m["data"]["u"] >= truth["lastUpdateId"]))["data"]
    assert last["u"] == truth["lastUpdateId"]


# ---------------------------------------------------------------------- the core against it


class Driver:
    """Stream frames into the futures core; fetch its snapshots from the venue's depth path."""

    def __init__(self, ex: FakeExchange, session: aiohttp.ClientSession) -> None:
        self.ex = ex
        self.session = session
        self.books = DepthBooks(Venue.USDM, SYMBOLS)
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
        url = self.ex.endpoints.rest + self.ex.endpoints.depth_path
        params = {"symbol": request.symbol, "limit": str(request.limit)}
        async with self.session.get(url, params=params) as response:
            assert response.status == 200, await response.text()
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
async def driver(session: aiohttp.ClientSession) -> AsyncIterator[Driver]:
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", seed=11, rate=400) as ex:
        run = Driver(ex, session)
        streams = "/".join(f"{s.lower()}@depth@100ms" for s in SYMBOLS)
        # Partial books on the same connection: the core must tell them from diffs by name.
        streams += "/btcusdt@depth5@100ms"
        async with connect(f"{ex.endpoints.ws}/stream?streams={streams}", proxy=None) as ws:
            reader = asyncio.create_task(run.read(ws))
            try:
                yield run
            finally:
                reader.cancel()
                for task in list(run.tasks):
                    task.cancel()
                await asyncio.gather(reader, *run.tasks, return_exceptions=True)


async def test_the_futures_core_syncs_and_equals_the_true_books(driver: Driver) -> None:
    """DepthBooks(Venue.USDM) on /public/stream + /fapi/v1/depth equals /_fake/book exactly."""
    await driver.until(lambda: all(driver.sync(s).synced for s in SYMBOLS))
    await driver.ex.pause()
    for symbol in SYMBOLS:
        truth = await driver.caught_up(symbol)
        assert as_exact(driver.sync(symbol)) == (exact(truth["bids"]), exact(truth["asks"]))
        assert driver.sync(symbol).counters.resets == 0
    assert not [e for e in driver.events if isinstance(e, (Reset, Malformed))]


async def test_a_dropped_futures_diff_resyncs_that_symbol_only(driver: Driver) -> None:
    """A dropped BTCUSDT diff breaks the pu chain: BTCUSDT resyncs, ETHBTC never resets."""
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


async def test_the_spot_rules_fail_against_a_futures_exchange(
    session: aiohttp.ClientSession,
) -> None:
    """The spot core (U == previous u + 1) keeps finding gaps where the futures core finds none."""
    async with FakeExchange(symbols=SYMBOLS, venue="usdm", seed=11, rate=400) as ex:
        run = Driver(ex, session)
        run.books = DepthBooks(Venue.SPOT, ["BTCUSDT"], snapshot_limit=1000)
        url = f"{ex.endpoints.ws}/stream?streams=btcusdt@depth@100ms"
        async with connect(url, proxy=None) as ws:
            reader = asyncio.create_task(run.read(ws))
            try:
                await run.until(
                    lambda: any(
                        isinstance(e, Reset) and e.reason is ResetReason.GAP for e in run.events
                    )
                )
            finally:
                reader.cancel()
                for task in list(run.tasks):
                    task.cancel()
                await asyncio.gather(reader, *run.tasks, return_exceptions=True)


# ---------------------------------------------------------------------- COIN-M, firehose, CLI


async def test_coinm_smoke(session: aiohttp.ClientSession) -> None:
    """COIN-M: /dapi/v1 depth and info, diffs with pu on /stream; /fapi and /public are 404."""
    async with FakeExchange(symbols=SYMBOLS, venue="coinm", seed=2, rate=2000) as ex:
        rest = ex.endpoints.rest
        status, _, body = await get(session, f"{rest}/dapi/v1/depth?symbol=BTCUSDT&limit=10")
        assert status == 200 and set(body) == {"lastUpdateId", "E", "T", "bids", "asks"}
        assert len(body["bids"]) == 10
        status, _, info = await get(session, f"{rest}/dapi/v1/exchangeInfo")
        assert status == 200 and "futuresType" not in info
        assert (await get(session, f"{rest}/fapi/v1/depth?symbol=BTCUSDT"))[0] == 404
        stream = "btcusdt@depth@100ms"
        async with open_ws(f"{ex.endpoints.ws}/stream?streams={stream}") as ws:
            events = await diffs(ws, stream, 6)
        assert all(set(e) == DIFF_KEYS for e in events)
        assert all(b["pu"] == a["u"] for a, b in pairwise(events))
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(f"{ex.endpoints.ws}/public/stream?streams={stream}")


async def test_a_futures_firehose_keeps_the_pu_chain_and_bridges_its_snapshot(
    session: aiohttp.ClientSession,
) -> None:
    """A usdm firehose sends pu-chained diffs with skipping ids; its snapshot fits message 0."""
    firehose = Firehose(["BTCUSDT"], seed=4, messages=50, rate=2000, venue="usdm")
    async with FakeExchange(["BTCUSDT"], venue="usdm", rate=0, firehose=firehose) as ex:
        status, _, snap = await get(session, f"{ex.endpoints.rest}/fapi/v1/depth?symbol=BTCUSDT")
        assert status == 200 and list(snap) == ["lastUpdateId", "E", "T", "bids", "asks"]
        assert len(snap["bids"]) == 500  # the futures default limit
        stream = "btcusdt@depth@500ms"
        async with open_ws(f"{ex.endpoints.ws}/stream?streams={stream}") as ws:
            events = await diffs(ws, stream, 120)  # more than two cycles
    series = firehose.series["BTCUSDT"]
    assert (events[0]["U"], events[0]["u"]) == series.ids(0)
    assert events[0]["U"] <= snap["lastUpdateId"] <= events[0]["u"]
    assert all(set(e) == DIFF_KEYS for e in events)
    for earlier, later in pairwise(events):
        assert later["pu"] == earlier["u"] and later["U"] == earlier["u"] + 2


async def test_cli_serves_a_futures_venue_with_a_futures_firehose(
    session: aiohttp.ClientSession,
) -> None:
    """`streamer exchange --venue usdm --firehose --json`: venue, /public ws, futures diffs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer", "exchange", "--json", "--venue", "usdm",
        "--symbols", "BTCUSDT", "--seed", "3", "--firehose", "--firehose-rate", "200",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    series = generate_series("BTCUSDT", seed=3, skip_ids=True)
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert info["venue"] == "usdm"
        assert info["ws"] == info["rest"].replace("http", "ws") + "/public"
        url = info["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5"
        status, _, snap = await get(session, url)
        assert status == 200 and snap["lastUpdateId"] == series.snapshot_id
        async with session.ws_connect(info["ws"] + "/ws/btcusdt@depth") as ws:
            first = await ws.receive_json(timeout=30)
        assert set(first) == DIFF_KEYS and (first["U"], first["u"]) == series.ids(0)
        assert first["pu"] == series.prev_id(0)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
