"""The local exchange's WebSocket API over real sockets (protocol §3.1, §3.3, §6, §9.6-§9.10)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_UP, Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamer.sansio.signing import ed25519_sign, hmac_sign, wsapi_payload
from streamer.testing.exchange.server import FakeExchange
from tests.helpers import ed25519_pems

T = 5.0  # the one bound on every wait in this module
Json = dict[str, Any]

# protocol §3.3: every field of an executionReport, and §9.10: their JSON types
REPORT_INTS = {"E", "i", "g", "T", "t", "I", "O", "W"}
REPORT_STRINGS = {"e", "s", "c", "S", "o", "f", "q", "p", "P", "F", "C", "x", "X", "r", "l"}
REPORT_STRINGS |= {"z", "L", "n", "Z", "Y", "Q", "V"}
REPORT_BOOLS = {"w", "m", "M"}


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=["BTCUSDT", "ETHUSDT"], seed=4, rate=0) as ex:
        yield ex


@pytest.fixture
def ed25519() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PEM, public PEM)."""
    return ed25519_pems()


FUNDS = {"USDT": "1000000", "BTC": "10", "ETH": "100"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def open_api(ex: FakeExchange, query: str = "") -> Any:
    return connect(ex.endpoints.ws_api + query, proxy=None, compression=None, max_queue=None)


class Client:
    """A test-side WS-API client: requests by id, events kept in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[Json] = []
        self._next = 0

    async def call(self, method: str, params: Json | None = None, rid: Any = None) -> Json:
        if rid is None:
            self._next += 1
            rid = self._next
        request: Json = {"id": rid, "method": method}
        if params is not None:
            request["params"] = params
        await self.ws.send(orjson.dumps(request).decode())
        return await self.reply(rid)

    async def reply(self, rid: Any) -> Json:
        async def scan() -> Json:
            while True:
                msg = orjson.loads(await self.ws.recv())
                if "event" in msg:
                    self.events.append(msg)
                elif msg.get("id") == rid and type(msg.get("id")) is type(rid):
                    return dict(msg)

        return await asyncio.wait_for(scan(), T)

    async def event(self, pred: Callable[[Json], bool]) -> Json:
        async def scan() -> Json:
            while True:
                for i, msg in enumerate(self.events):
                    if pred(msg["event"]):
                        return self.events.pop(i)
                msg = orjson.loads(await self.ws.recv())
                if "event" in msg:
                    self.events.append(msg)

        return await asyncio.wait_for(scan(), T)


def signed_ed25519(private_pem: str, params: Json) -> Json:
    params = {**params, "timestamp": now_ms()}
    return {**params, "signature": ed25519_sign(private_pem, wsapi_payload(params))}


def signed_hmac(secret: str, params: Json) -> Json:
    params = {**params, "timestamp": now_ms()}
    return {**params, "signature": hmac_sign(secret, wsapi_payload(params))}


async def marketable_buy(ex: FakeExchange) -> Json:
    """LIMIT BUY params at the best ask for about 20 USDT: it trades at once."""
    book = await ex.book("BTCUSDT")
    price = Decimal(book["asks"][0][0])
    qty = (Decimal(20) / price).quantize(Decimal("0.00001"), rounding=ROUND_UP)
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "price": format(price, "f"),
        "quantity": format(qty, "f"),
    }


async def resting_buy(ex: FakeExchange, client_id: str) -> Json:
    """LIMIT BUY params 5% under the best bid for about 50 USDT: it rests on the book."""
    book = await ex.book("BTCUSDT")
    price = (Decimal(book["bids"][0][0]) * Decimal("0.95")).quantize(Decimal("0.01"))
    qty = (Decimal(50) / price).quantize(Decimal("0.00001"), rounding=ROUND_UP)
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "price": format(price, "f"),
        "quantity": format(qty, "f"),
        "newClientOrderId": client_id,
    }


def assert_full_report(event: Json) -> None:
    assert event["e"] == "executionReport"
    for key in REPORT_INTS:
        assert type(event[key]) is int, key
    for key in REPORT_STRINGS:
        assert type(event[key]) is str, key
    for key in REPORT_BOOLS:
        assert type(event[key]) is bool, key
    assert event["N"] is None or type(event["N"]) is str


# ---------------------------------------------------------------------- sessions and user data


async def test_ed25519_logon_subscribe_and_order_place_deliver_typed_execution_reports(
    exchange: FakeExchange, ed25519: tuple[str, str]
) -> None:
    """Ed25519 logon, subscribe, order.place: executionReports with §3.3 fields and §9.10 types."""
    private, public = ed25519
    keys = await exchange.create_account(FUNDS, ed25519_public_key_pem=public)
    async with open_api(exchange) as ws:
        api = Client(ws)
        logon = await api.call("session.logon", signed_ed25519(private, {"apiKey": keys["apiKey"]}))
        assert logon["status"] == 200 and "error" not in logon
        result = logon["result"]
        assert result["apiKey"] == keys["apiKey"] and result["userDataStream"] is False
        assert isinstance(result["authorizedSince"], int)
        assert isinstance(result["connectedSince"], int)
        assert logon["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        sub = await api.call("userDataStream.subscribe")
        assert sub["result"] == {"subscriptionId": 0}
        status = await api.call("session.status")
        assert status["result"]["userDataStream"] is True
        # logged on: the order needs a timestamp, but no apiKey and no signature
        order = await marketable_buy(exchange)
        placed = await api.call("order.place", {**order, "timestamp": now_ms()})
        assert placed["status"] == 200, placed
        assert placed["result"]["symbol"] == "BTCUSDT"
        assert any(r["rateLimitType"] == "ORDERS" for r in placed["rateLimits"])
        order_id = placed["result"]["orderId"]
        new = await api.event(lambda e: e.get("x") == "NEW" and e.get("i") == order_id)
        trade = await api.event(lambda e: e.get("x") == "TRADE" and e.get("i") == order_id)
        position = await api.event(lambda e: e["e"] == "outboundAccountPosition")
    assert new["subscriptionId"] == 0 and trade["subscriptionId"] == 0
    assert_full_report(new["event"])
    assert_full_report(trade["event"])
    assert trade["event"]["t"] >= 0 and Decimal(trade["event"]["l"]) > 0
    assert {b["a"] for b in position["event"]["B"]} <= {"BTC", "USDT"}


async def test_hmac_subscribe_signature_then_signed_place_and_cancel(
    exchange: FakeExchange,
) -> None:
    """subscribe.signature works with an HMAC key; cancel reports CANCELED with C = original id."""
    keys = await exchange.create_account(FUNDS)
    secret = keys["secretKey"]
    async with open_api(exchange) as ws:
        api = Client(ws)
        params = signed_hmac(secret, {"apiKey": keys["apiKey"]})
        sub = await api.call("userDataStream.subscribe.signature", params, rid="sub-1")
        assert sub["id"] == "sub-1" and sub["result"] == {"subscriptionId": 0}
        order = await resting_buy(exchange, "my-order-1")
        placed = await api.call(
            "v3/order.place", signed_hmac(secret, {**order, "apiKey": keys["apiKey"]})
        )
        assert placed["status"] == 200 and placed["result"]["status"] == "NEW"
        new = await api.event(lambda e: e.get("c") == "my-order-1")
        assert_full_report(new["event"])
        assert new["event"]["w"] is True
        cancel = {"symbol": "BTCUSDT", "origClientOrderId": "my-order-1", "apiKey": keys["apiKey"]}
        cancelled = await api.call("order.cancel", signed_hmac(secret, cancel))
        assert cancelled["result"]["status"] == "CANCELED"
        report = await api.event(lambda e: e.get("x") == "CANCELED")
        assert report["event"]["C"] == "my-order-1"
        query = {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"]}
        status = await api.call("order.status", signed_hmac(secret, {**query, **keys_only(keys)}))
        assert status["result"]["status"] == "CANCELED"


def keys_only(keys: dict[str, str]) -> Json:
    return {"apiKey": keys["apiKey"]}


async def test_unsubscribe_answers_empty_and_terminates_the_stream(exchange: FakeExchange) -> None:
    """userDataStream.unsubscribe returns {} and sends eventStreamTerminated (§9.9, §3.3)."""
    keys = await exchange.create_account(FUNDS)
    async with open_api(exchange) as ws:
        api = Client(ws)
        params = signed_hmac(keys["secretKey"], keys_only(keys))
        await api.call("userDataStream.subscribe.signature", params)
        listed = await api.call("session.subscriptions")
        assert listed["result"] == [{"subscriptionId": 0}]
        gone = await api.call("userDataStream.unsubscribe", {"subscriptionId": 0})
        assert gone["status"] == 200 and gone["result"] == {}
        ended = await api.event(lambda e: e["e"] == "eventStreamTerminated")
        assert ended["subscriptionId"] == 0 and isinstance(ended["event"]["E"], int)
        assert (await api.call("session.subscriptions"))["result"] == []
        again = await api.call("userDataStream.unsubscribe", {"subscriptionId": 0})
        assert again["status"] == 400 and again["error"]["code"] == -2036


async def test_logout_ends_the_logon_subscription(
    exchange: FakeExchange, ed25519: tuple[str, str]
) -> None:
    """session.logout terminates the logon subscription; the socket stays usable."""
    private, public = ed25519
    keys = await exchange.create_account(FUNDS, ed25519_public_key_pem=public)
    async with open_api(exchange) as ws:
        api = Client(ws)
        await api.call("session.logon", signed_ed25519(private, keys_only(keys)))
        await api.call("userDataStream.subscribe")
        out = await api.call("session.logout")
        assert out["result"]["apiKey"] is None
        ended = await api.event(lambda e: e["e"] == "eventStreamTerminated")
        assert ended["subscriptionId"] == 0
        assert (await api.call("ping"))["result"] == {}
        refused = await api.call("userDataStream.subscribe")
        assert refused["status"] != 200 and "result" not in refused


async def test_user_stream_faults_silence_and_terminate(exchange: FakeExchange) -> None:
    """user_stream_silent swallows the next event; user_stream_terminated ends the stream."""
    keys = await exchange.create_account(FUNDS)
    secret = keys["secretKey"]
    async with open_api(exchange) as ws:
        api = Client(ws)
        await api.call("userDataStream.subscribe.signature", signed_hmac(secret, keys_only(keys)))
        exchange.faults.silence_user_stream(count=1)
        order = await resting_buy(exchange, "quiet-1")
        await api.call("order.place", signed_hmac(secret, {**order, **keys_only(keys)}))
        first = await api.event(lambda e: True)
        assert first["event"]["e"] == "outboundAccountPosition", "the NEW report was swallowed"
        exchange.faults.terminate_user_stream()
        order = await resting_buy(exchange, "quiet-2")
        await api.call("order.place", signed_hmac(secret, {**order, **keys_only(keys)}))
        ended = await api.event(lambda e: True)
        assert ended["event"]["e"] == "eventStreamTerminated"
        assert (await api.call("session.subscriptions"))["result"] == []


async def test_an_order_5xx_fault_answers_500_yet_places_the_order(exchange: FakeExchange) -> None:
    """order_5xx(placed=True): status 500 with -1001, and order.status then finds the order."""
    keys = await exchange.create_account(FUNDS)
    secret = keys["secretKey"]
    async with open_api(exchange) as ws:
        api = Client(ws)
        exchange.faults.order_5xx(placed=True)
        order = await resting_buy(exchange, "unknown-1")
        answer = await api.call("order.place", signed_hmac(secret, {**order, **keys_only(keys)}))
        assert answer["status"] == 500 and answer["error"]["code"] == -1001
        query = {"symbol": "BTCUSDT", "origClientOrderId": "unknown-1", **keys_only(keys)}
        found = await api.call("order.status", signed_hmac(secret, query))
        assert found["result"]["status"] == "NEW"


# ---------------------------------------------------------------------- market data and errors


async def test_depth_time_and_ping_and_rate_limit_reporting(exchange: FakeExchange) -> None:
    """depth/time/ping answer; returnRateLimits=false (URL or request) drops rateLimits."""
    async with open_api(exchange) as ws:
        api = Client(ws)
        depth = await api.call("depth", {"symbol": "BTCUSDT", "limit": 5}, rid="d")
        assert set(depth["result"]) == {"lastUpdateId", "bids", "asks"}
        assert len(depth["result"]["bids"]) == 5
        assert depth["rateLimits"][0]["count"] >= 5
        assert (await api.call("time"))["result"]["serverTime"] > 0
        quiet = await api.call("ping", {"returnRateLimits": False})
        assert quiet["result"] == {} and "rateLimits" not in quiet
    async with open_api(exchange, "?returnRateLimits=false") as ws:
        api = Client(ws)
        assert "rateLimits" not in await api.call("ping")


async def test_bad_requests_get_binance_errors_and_the_session_survives(
    exchange: FakeExchange, ed25519: tuple[str, str]
) -> None:
    """Bad JSON, unknown method, missing params, bad signature, stale timestamp, HMAC logon."""
    hmac_keys = await exchange.create_account(FUNDS)
    async with open_api(exchange) as ws:
        api = Client(ws)
        await ws.send("{oops")
        bad_json = await api.reply(None)
        assert bad_json["status"] == 400 and bad_json["error"]["code"] == -1135
        unknown = await api.call("order.teleport", {}, rid="x-1")
        assert unknown["id"] == "x-1" and unknown["status"] == 400 and "result" not in unknown
        missing = await api.call("depth", {}, rid=2**40)
        assert missing["id"] == 2**40 and missing["error"]["code"] == -1102
        params = signed_hmac(hmac_keys["secretKey"], keys_only(hmac_keys))
        params["signature"] = "0" * 64
        bad_sig = await api.call("userDataStream.subscribe.signature", params)
        assert bad_sig["error"] == {
            "code": -1022,
            "msg": "Signature for this request is not valid.",
        }
        stale = {"apiKey": hmac_keys["apiKey"], "timestamp": now_ms() - 60_000}
        stale["signature"] = hmac_sign(hmac_keys["secretKey"], wsapi_payload(stale))
        late = await api.call("userDataStream.subscribe.signature", stale)
        assert late["error"]["code"] == -1021
        logon = await api.call(
            "session.logon", signed_hmac(hmac_keys["secretKey"], keys_only(hmac_keys))
        )
        assert logon["error"]["code"] == -4056
        await ws.send('{"id":"p","method":"depth","params":[1]}')
        not_object = await api.reply("p")
        assert not_object["error"]["code"] == -1135
        assert (await api.call("ping", rid="still-here"))["status"] == 200


async def test_an_oversized_frame_closes_only_its_own_connection(exchange: FakeExchange) -> None:
    """A frame over the size limit closes that socket with 1009; other sessions carry on."""
    async with open_api(exchange) as other, open_api(exchange) as ws:
        await ws.send('{"id":1,"method":"ping","params":{"x":"' + "a" * (200 << 10) + '"}}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 1009
        assert (await Client(other).call("ping"))["status"] == 200


async def test_the_ws_api_pings_and_drops_a_client_that_never_pongs() -> None:
    """Server pings every ping_interval; without pongs the session ends after pong_timeout."""
    ex = FakeExchange(symbols=["BTCUSDT"], rate=0)
    ex.wsapi.ping_interval = 0.05
    ex.wsapi.pong_timeout = 0.3
    async with (
        ex,
        aiohttp.ClientSession() as http,
        http.ws_connect(ex.endpoints.ws_api, autoping=False) as ws,
    ):
        msg = await ws.receive(timeout=T)
        assert msg.type is aiohttp.WSMsgType.PING
        # never answering: the server drops the connection (a timeout here fails the test)
        while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            msg = await ws.receive(timeout=T)
