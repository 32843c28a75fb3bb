"""Market streams of the local exchange, over real sockets (protocol §1, §2.1, §9.4-§9.6)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamer.testing.exchange.firehose import Firehose, generate_series
from streamer.testing.exchange.server import FakeExchange
from streamer.testing.exchange.symbols import load_exchange_info

T = 5.0  # the one bound on every wait in this module
Json = dict[str, Any]


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=["BTCUSDT", "ETHUSDT"], seed=3, rate=2000) as ex:
        yield ex


def ws_url(ex: FakeExchange, path: str) -> str:
    return ex.endpoints.ws + path


def open_ws(url: str) -> Any:
    # An unbounded queue: a bounded one stops reading when full, so a close frame queued behind
    # data the test no longer reads would never be seen and closing would wait for its timeout.
    return connect(url, proxy=None, compression=None, max_size=None, max_queue=None)


async def recv(ws: ClientConnection) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), T))


def is_reply(msg: Any) -> bool:
    return isinstance(msg, dict) and ("id" in msg or "code" in msg or "error" in msg)


async def until(ws: ClientConnection, pred: Callable[[Any], bool]) -> Any:
    async def scan() -> Any:
        while True:
            msg = orjson.loads(await ws.recv())
            if pred(msg):
                return msg

    return await asyncio.wait_for(scan(), T)


async def ask(ws: ClientConnection, request: Json | str) -> Any:
    await ws.send(request if isinstance(request, str) else orjson.dumps(request).decode())
    return await until(ws, is_reply)


def apply(book: dict[str, dict[str, str]], event: Json) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, qty in event[key]:
            if Decimal(qty) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty


# ---------------------------------------------------------------------- stream kinds


async def test_every_stream_kind_delivers_its_documented_payload(exchange: FakeExchange) -> None:
    """Diffs, partial books, bookTicker, trade and aggTrade arrive with protocol §1.5 shapes."""
    names = [
        "btcusdt@depth@100ms",
        "btcusdt@depth",
        "btcusdt@depth5",
        "btcusdt@depth10@100ms",
        "btcusdt@depth20@100ms",
        "btcusdt@bookTicker",
        "btcusdt@trade",
        "btcusdt@aggTrade",
    ]
    seen: dict[str, Json] = {}
    async with open_ws(ws_url(exchange, "/stream?streams=" + "/".join(names))) as ws:

        async def collect() -> None:
            while len(seen) < len(names):
                msg = orjson.loads(await ws.recv())
                seen.setdefault(msg["stream"], msg["data"])

        await asyncio.wait_for(collect(), 3 * T)
    diff = seen["btcusdt@depth@100ms"]
    assert set(diff) == {"e", "E", "s", "U", "u", "b", "a"}
    assert diff["e"] == "depthUpdate" and diff["s"] == "BTCUSDT"
    assert isinstance(diff["U"], int) and diff["u"] >= diff["U"]
    assert all(len(p.split(".")[1]) == 8 for p, _ in diff["b"] + diff["a"])
    assert seen["btcusdt@depth"]["e"] == "depthUpdate"
    for name, levels in (("depth5", 5), ("depth10@100ms", 10), ("depth20@100ms", 20)):
        part = seen["btcusdt@" + name]
        assert set(part) == {"lastUpdateId", "bids", "asks"}
        assert len(part["bids"]) == levels and len(part["asks"]) == levels
        assert Decimal(part["bids"][0][0]) < Decimal(part["asks"][0][0])
    ticker = seen["btcusdt@bookTicker"]
    assert set(ticker) == {"u", "s", "b", "B", "a", "A"}
    assert Decimal(ticker["b"]) < Decimal(ticker["a"])
    trade = seen["btcusdt@trade"]
    assert set(trade) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
    assert isinstance(trade["t"], int) and isinstance(trade["m"], bool)
    agg = seen["btcusdt@aggTrade"]
    assert set(agg) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}
    assert agg["l"] >= agg["f"]


async def test_a_protocol_client_syncs_with_rest_depth_and_matches_the_true_book(
    exchange: FakeExchange,
) -> None:
    """Following protocol §2.1 with REST /depth ends synced and equal to /_fake/book."""
    rest = exchange.endpoints.rest
    async with (
        open_ws(ws_url(exchange, "/ws/btcusdt@depth@100ms")) as ws,
        aiohttp.ClientSession() as http,
    ):
        buffered = [await recv(ws)]
        while True:
            params = {"symbol": "BTCUSDT", "limit": "5000"}
            async with http.get(rest + "/api/v3/depth", params=params) as resp:
                snap = await resp.json()
            if snap["lastUpdateId"] >= buffered[0]["U"]:
                break
        last_id = snap["lastUpdateId"]
        while buffered[-1]["u"] <= last_id:
            buffered.append(await recv(ws))
        book = {
            "bids": {p: q for p, q in snap["bids"]},
            "asks": {p: q for p, q in snap["asks"]},
        }
        pending = [e for e in buffered if e["u"] > last_id]
        assert pending[0]["U"] <= last_id + 1 <= pending[0]["u"]
        local = last_id
        for event in pending:
            assert event["U"] == local + 1 or event is pending[0]
            apply(book, event)
            local = event["u"]
        await exchange.pause()
        truth = await exchange.book("BTCUSDT")
        while local < truth["lastUpdateId"]:
            event = await recv(ws)
            assert event["U"] == local + 1, "diffs must be contiguous"
            apply(book, event)
            local = event["u"]
    assert local == truth["lastUpdateId"]
    assert book["bids"] == {p: q for p, q in truth["bids"]}
    assert book["asks"] == {p: q for p, q in truth["asks"]}


async def test_raw_and_combined_connections_carry_the_same_event(exchange: FakeExchange) -> None:
    """/ws sends the bare payload, /stream wraps the same bytes as {"stream","data"}."""
    async with (
        open_ws(ws_url(exchange, "/ws/btcusdt@trade")) as raw,
        open_ws(ws_url(exchange, "/stream?streams=btcusdt@trade")) as combined,
    ):
        wrapped = await recv(combined)
        assert set(wrapped) == {"stream", "data"} and wrapped["stream"] == "btcusdt@trade"
        trade_id = wrapped["data"]["t"]
        bare = await until(raw, lambda m: m.get("t", -1) >= trade_id)
        if bare["t"] == trade_id:
            assert bare == wrapped["data"]
        assert "stream" not in bare


async def test_time_unit_microsecond_scales_event_and_trade_times(exchange: FakeExchange) -> None:
    """timeUnit=MICROSECOND in the URL gives E and T in microseconds (protocol §1.2)."""
    async with (
        open_ws(ws_url(exchange, "/ws/btcusdt@trade")) as millis,
        open_ws(ws_url(exchange, "/ws/btcusdt@trade?timeUnit=MICROSECOND")) as micros,
    ):
        fine = await recv(micros)
        coarse = await until(millis, lambda m: m["t"] >= fine["t"])
    assert fine["E"] > 10**15 and fine["T"] > 10**15
    assert coarse["E"] < 10**14
    if coarse["t"] == fine["t"]:
        assert fine["T"] == coarse["T"] * 1000


# ---------------------------------------------------------------------- control messages


async def test_control_messages_answer_with_the_request_id_in_its_json_type(
    exchange: FakeExchange,
) -> None:
    """SUBSCRIBE/UNSUBSCRIBE/LIST/GET_PROPERTY echo integer, string and null ids verbatim."""
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1})
        assert reply == {"result": None, "id": 1}
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": "42"})
        assert reply == {"result": None, "id": "42"}
        reply = await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None})
        assert reply == {"result": ["btcusdt@depth", "ethusdt@trade"], "id": None}
        request = {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": "a-b_c"}
        assert await ask(ws, request) == {"result": None, "id": "a-b_c"}
        reply = await ask(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 7})
        assert reply == {"result": False, "id": 7}


async def test_set_property_combined_switches_the_envelope(exchange: FakeExchange) -> None:
    """SET_PROPERTY combined=true on /ws wraps later events; GET_PROPERTY then reports true."""
    async with open_ws(ws_url(exchange, "/ws/btcusdt@depth@100ms")) as ws:
        first = await recv(ws)
        assert "stream" not in first and first["e"] == "depthUpdate"
        request = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}
        assert await ask(ws, request) == {"result": None, "id": 5}
        wrapped = await until(ws, lambda m: "stream" in m)
        assert wrapped["stream"] == "btcusdt@depth@100ms"
        reply = await ask(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 6})
        assert reply == {"result": True, "id": 6}


async def test_subscribe_is_acknowledged_before_data_and_never_delivers_twice(
    exchange: FakeExchange,
) -> None:
    """No trade precedes the SUBSCRIBE ack, and a second SUBSCRIBE does not duplicate events."""
    async with open_ws(ws_url(exchange, "/stream")) as ws:
        await ws.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}).decode()
        )
        first = await recv(ws)
        assert first == {"result": None, "id": 1}
        assert await ask(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}) == {
            "result": None,
            "id": 2,
        }
        trade_ids: list[int] = []
        while len(trade_ids) < 20:
            msg = await recv(ws)
            if "stream" in msg:
                trade_ids.append(msg["data"]["t"])
    assert len(trade_ids) == len(set(trade_ids))


async def test_malformed_control_messages_get_the_documented_error_payloads(
    exchange: FakeExchange,
) -> None:
    """Bad JSON, missing/unknown method, bad id, bad property: protocol §1.4 payloads."""
    url = ws_url(exchange, "/ws")
    async with open_ws(url) as ws:
        reply = await ask(ws, "{not json")
        assert reply["code"] == 3 and reply["msg"].startswith(
            "Invalid JSON: expected value at line"
        )
        reply = await ask(ws, '{"params":[],"id":1}')
        assert reply["code"] == 2 and "missing field `method`" in reply["msg"]
        reply = await ask(ws, {"method": "FOO", "id": 1})
        assert reply["code"] == 2
        assert reply["msg"].startswith("Invalid request: unknown variant FOO, expected one of")
        reply = await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": True})
        assert reply == {
            "code": 2,
            "msg": "Invalid request: request ID must be an unsigned integer",
        }
    async with open_ws(url) as ws:
        request = {"method": "SET_PROPERTY", "params": ["colour", True], "id": 9}
        assert await ask(ws, request) == {"code": 0, "msg": "Unknown property", "id": 9}
        request = {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 9}
        assert await ask(ws, request) == {"code": 1, "msg": "Invalid value type: expected Boolean"}
        request = {"method": "GET_PROPERTY", "params": [1], "id": 9}
        assert await ask(ws, request) == {
            "code": 2,
            "msg": "Invalid request: property name must be a string",
        }
        request = {"method": "SET_PROPERTY", "params": ["combined", True, 1], "id": 9}
        assert await ask(ws, request) == {"code": 2, "msg": "Invalid request: too many parameters"}


async def test_an_invalid_stream_is_refused_in_the_wrapped_form(exchange: FakeExchange) -> None:
    """SUBSCRIBE to a name that is no stream answers {"error":{"code":2,..},"id":..}."""
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        request = {"method": "SUBSCRIBE", "params": ["btcusdt@depth", "BTCUSDT@nope"], "id": 3}
        reply = await ask(ws, request)
        assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3}
        listed = await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert listed == {"result": [], "id": 4}


async def test_more_than_five_incoming_messages_per_second_disconnects(
    exchange: FakeExchange,
) -> None:
    """The sixth frame within a second closes the connection (protocol §1.3)."""
    replies = 0
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        for i in range(6):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(ws)
                replies += 1
        assert ws.close_code == 1008
    assert replies == 5
    assert exchange.hub.stats.rate_limit_disconnects == 1


async def test_at_most_1024_streams_per_connection(exchange: FakeExchange) -> None:
    """A SUBSCRIBE that would pass 1024 streams is refused whole; 1024 are accepted."""
    names = [f"sym{i}usdt@trade" for i in range(1025)]
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        reply = await ask(ws, {"method": "SUBSCRIBE", "params": names, "id": 1})
        assert reply["id"] == 1 and reply["error"]["code"] == 2
        assert await ask(ws, {"method": "SUBSCRIBE", "params": names[:1024], "id": 2}) == {
            "result": None,
            "id": 2,
        }


async def test_a_path_that_is_no_stream_still_opens(exchange: FakeExchange) -> None:
    """/ws/<not a stream> opens with no subscription (protocol §9.4)."""
    async with open_ws(ws_url(exchange, "/ws/notastream")) as ws:
        assert await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}


# ---------------------------------------------------------------------- pings, shutdown, faults


async def test_server_pings_and_answers_client_pings() -> None:
    """The server pings on its interval, answers a client ping, and drops a silent client."""
    ex = FakeExchange(symbols=["BTCUSDT"], rate=0)
    ex.hub.ping_interval = 0.05
    ex.hub.pong_timeout = 0.3
    async with ex, aiohttp.ClientSession() as http:
        url = ws_url(ex, "/ws")
        async with http.ws_connect(url, autoping=False) as ws:
            msg = await ws.receive(timeout=T)
            assert msg.type is aiohttp.WSMsgType.PING
            await ws.ping(b"hello")
            while msg.type is not aiohttp.WSMsgType.PONG:
                msg = await ws.receive(timeout=T)
            assert msg.data == b"hello"
            # Never answering the pings: disconnected once the pong timeout passes.
            while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                msg = await ws.receive(timeout=T)
        assert ex.hub.stats.pong_timeouts == 1


async def test_closing_sends_server_shutdown_in_both_envelopes() -> None:
    """Closing the exchange sends serverShutdown raw and combined, then closes with 1001."""
    ex = FakeExchange(symbols=["BTCUSDT"], rate=0)
    await ex.start()
    try:
        raw = await open_ws(ws_url(ex, "/ws"))
        combined = await open_ws(ws_url(ex, "/stream"))
    finally:
        await ex.close()
    event = await recv(raw)
    assert set(event) == {"e", "E"} and event["e"] == "serverShutdown"
    wrapped = await recv(combined)
    assert wrapped["stream"] == "!serverShutdown" and wrapped["data"]["e"] == "serverShutdown"
    for ws in (raw, combined):
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001


async def test_server_shutdown_and_disconnect_faults(exchange: FakeExchange) -> None:
    """serverShutdown then a close after delayMs; a disconnect fault drops without a word."""
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        exchange.faults.server_shutdown(delay_ms=50, channel="market")
        assert (await recv(ws))["e"] == "serverShutdown"
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001
    async with open_ws(ws_url(exchange, "/ws")) as ws:
        exchange.faults.disconnect(channel="market")
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code != 1000


async def test_depth_faults_drop_duplicate_and_delay_diff_messages(
    exchange: FakeExchange,
) -> None:
    """drop_diff leaves a gap, duplicate_diff repeats a message, delay_diff reorders."""
    async with open_ws(ws_url(exchange, "/ws/btcusdt@depth@100ms")) as ws:
        prev = await recv(ws)
        exchange.faults.drop_diffs("BTCUSDT")
        event = await recv(ws)
        assert event["U"] > prev["u"] + 1, "a dropped message is a gap"
        exchange.faults.duplicate_diffs("BTCUSDT")
        first = await recv(ws)
        second = await recv(ws)
        assert first == second
        exchange.faults.delay_diffs("BTCUSDT", delay_ms=250)
        seen = [await recv(ws) for _ in range(4)]
        starts = [e["U"] for e in seen]
        assert starts != sorted(starts), "the delayed message arrives after later ones"
        exchange.faults.corrupt_level("BTCUSDT")
        await recv(ws)
    assert exchange.hub.stats.faults_applied == {
        "drop_diff": 1,
        "duplicate_diff": 1,
        "delay_diff": 1,
        "corrupt_level": 1,
    }


async def test_a_slow_consumer_is_disconnected_without_stalling_others() -> None:
    """A client that never reads is cut off at the send limit; a reading client carries on."""
    symbols = [s["symbol"] for s in load_exchange_info()["symbols"][:200]]
    ex = FakeExchange(symbols=symbols, rate=0)
    ex.hub.send_buffer_limit = 64 << 10
    async with ex:
        path = "/stream?streams=" + "/".join(f"{s.lower()}@depth20@100ms" for s in symbols)
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", ex.port))
        handshake = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        slow.sendall(handshake.encode())  # ...and never reads a byte
        try:
            async with open_ws(ws_url(ex, path)) as good, asyncio.timeout(3 * T):
                while ex.hub.stats.slow_consumer_disconnects == 0:
                    await recv(good)
                assert (await recv(good))["stream"].endswith("@depth20@100ms")
        finally:
            slow.close()


# ---------------------------------------------------------------------- firehose


def test_a_firehose_cycle_restores_the_book_it_started_from() -> None:
    """Applying a whole cycle to the snapshot, then half of message 0 again, gives it back."""
    series = generate_series("BTCUSDT", seed=5, messages=300)
    start = {"bids": dict(series.bids), "asks": dict(series.asks)}
    book = {"bids": dict(series.bids), "asks": dict(series.asks)}
    for k in range(len(series.messages)):
        bids, asks = series.levels(k)
        assert len(bids) + len(asks) == 20
        apply(book, {"b": bids, "a": asks})
    bids, asks = series.levels(0)
    apply(book, {"b": bids, "a": []})  # message 0's first half: its 10 bids
    assert book == start
    first, last = series.ids(0)
    assert first <= series.snapshot_id <= last


async def test_a_client_syncs_against_the_firehose_and_its_snapshot() -> None:
    """Firehose diffs (URL or SUBSCRIBE) are contiguous 20-level messages bridging the snapshot."""
    firehose = Firehose(["BTCUSDT", "ETHUSDT"], seed=2, messages=200, rate=4000)
    async with FakeExchange(["BTCUSDT", "ETHBTC"], seed=2, rate=0, firehose=firehose) as ex:
        lingering = await open_ws(ws_url(ex, "/ws/ethusdt@depth"))
        url = ws_url(ex, "/stream?streams=btcusdt@depth@100ms")
        async with open_ws(url) as ws, aiohttp.ClientSession() as http:
            depth = f"{ex.endpoints.rest}/api/v3/depth?symbol=BTCUSDT&limit=5000"
            async with http.get(depth) as resp:
                snap = await resp.json()
            assert snap == firehose.depth("BTCUSDT", 5000)  # the firehose's book, not the engine's
            assert snap["lastUpdateId"] == firehose.series["BTCUSDT"].snapshot_id
            # ETHUSDT is no engine symbol: its snapshot comes from the firehose all the same,
            # while the engine's own symbols are still answered by the engine.
            async with http.get(f"{ex.endpoints.rest}/api/v3/depth?symbol=ETHUSDT") as resp:
                eth_snap = await resp.json()
            assert eth_snap["lastUpdateId"] == firehose.series["ETHUSDT"].snapshot_id
            async with http.get(f"{ex.endpoints.rest}/api/v3/depth?symbol=ETHBTC") as resp:
                engine_snap = await resp.json()
            assert engine_snap["lastUpdateId"] == ex.engine.last_update_id("ETHBTC")
            book = {"bids": dict(snap["bids"]), "asks": dict(snap["asks"])}
            local = snap["lastUpdateId"]
            subscribe = {"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": 1}
            await ws.send(orjson.dumps(subscribe).decode())
            replies: list[Json] = []
            eth: list[Json] = []
            applied = 0
            while applied < 450 or not eth:  # more than two cycles of BTCUSDT
                msg = await recv(ws)
                if "stream" not in msg:
                    replies.append(msg)
                    continue
                event = msg["data"]
                if msg["stream"] == "ethusdt@depth@100ms":
                    assert replies, "the acknowledgement comes first"
                    eth.append(event)
                    continue
                assert len(event["b"]) + len(event["a"]) == 20
                if event["u"] <= local:
                    continue
                assert event["U"] <= local + 1 <= event["u"]
                apply(book, event)
                local = event["u"]
                applied += 1
        assert replies == [{"result": None, "id": 1}]
        assert eth[0]["U"] == firehose.series["ETHUSDT"].first_update_id
        series = firehose.series["BTCUSDT"]
        model = {"bids": dict(series.bids), "asks": dict(series.asks)}
        for k in range(applied):
            bids, asks = series.levels(k)
            apply(model, {"b": bids, "a": asks})
        assert book == model
    # The exchange closed the firehose, and with it the connection still open.
    await asyncio.wait_for(lingering.wait_closed(), T)
    assert lingering.close_code == 1001


async def test_a_firehose_stamps_event_times_in_microseconds_on_request() -> None:
    """timeUnit=MICROSECOND on a firehose connection: E is the send time in µs (16 digits),
    so a client can measure latency below a millisecond; ids stay contiguous."""
    firehose = Firehose(["BTCUSDT"], messages=50)
    async with FakeExchange(symbols=["BTCUSDT"], rate=0, firehose=firehose) as ex:
        url = f"{ex.endpoints.ws}/stream?streams=btcusdt@depth@100ms&timeUnit=MICROSECOND"
        async with connect(url, proxy=None) as ws:
            before = time.time_ns() // 1000
            events = [orjson.loads(await ws.recv())["data"] for _ in range(120)]
            after = time.time_ns() // 1000
    assert all(before - 1_000_000 <= e["E"] <= after for e in events)
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(events))
