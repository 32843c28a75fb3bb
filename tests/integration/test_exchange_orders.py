"""Stop orders, LIMIT_MAKER, commissions, klines and the order of user events against the local
exchange, over real sockets (protocol §3.3, §4.3, §4.4, §6).

REST requests are signed here with the project's signing helpers; user events are read from a
WS-API connection subscribed with ``userDataStream.subscribe.signature``, frame by frame in
arrival order. "Already there" is checked with a marker: a WS-API ``ping`` sent on the event
connection after the REST answer was received is answered after every frame the server wrote
before it, so the frames read before its answer are exactly those already on their way.

Which of two sockets received its bytes first is read from the client's own ``data_received``
calls, numbered by one counter: the event loop hands sockets their data in the order the
kernel made them readable (epoll's ready list is first come, first served), which on loopback
is the order the server wrote them. That tells the order of two writes apart even when the
server makes both within one step of the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.sansio.signing import encode_params, hmac_sign, wsapi_payload
from streamer.testing.exchange.server import FakeExchange

T = 10.0  # the one bound on every wait in this module
SYMBOL = "BTCUSDT"
TICK = Decimal("0.01")
EIGHT = Decimal("1E-8")
FREE = {"maker": "0", "taker": "0"}
Json = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def ex() -> AsyncIterator[FakeExchange]:
    """A still market: every trade is one a test made."""
    async with FakeExchange(symbols=[SYMBOL, "ETHBTC"], seed=2, rate=0) as exchange:
        yield exchange
        assert exchange.rest.internal_errors == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class Rest:
    """Signed and public REST calls for one account."""

    def __init__(self, session: aiohttp.ClientSession, ex: FakeExchange, keys: dict[str, str]):
        self.session, self.ex, self.keys = session, ex, keys

    async def call(
        self, method: str, path: str, params: Json | None = None, *, signed: bool = True
    ) -> tuple[int, Any, int]:
        """(status, body, used weight)."""
        items = list((params or {}).items())
        if signed:
            items.append(("timestamp", self.ex.clock()))
        query = encode_params(items)
        if signed:
            query += "&signature=" + hmac_sign(self.keys["secretKey"], query)
        headers = {"X-MBX-APIKEY": self.keys["apiKey"]} if signed else {}
        url = f"{self.ex.endpoints.rest}{path}?{query}"
        async with self.session.request(method, url, headers=headers) as r:
            return r.status, await r.json(), int(r.headers["X-MBX-USED-WEIGHT-1M"])

    async def order(self, **params: Any) -> tuple[int, Json]:
        status, body, _ = await self.call("POST", "/api/v3/order", {"symbol": SYMBOL, **params})
        return status, body


_ARRIVALS = itertools.count()  # numbers every data_received call of the recording sockets


class Arrivals:
    """The chunks a socket received, each with its arrival number (see the module docstring)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []

    def record(self, data: bytes) -> None:
        self.chunks.append((next(_ARRIVALS), bytes(data)))

    def first(self, needle: bytes = b"") -> int:
        """The arrival number of the first chunk containing ``needle``."""
        return next(seq for seq, data in self.chunks if needle in data)


class RecordingConnection(ClientConnection):
    """websockets' client connection, recording its arrivals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals = Arrivals()

    def data_received(self, data: bytes) -> None:
        self.arrivals.record(data)
        super().data_received(data)


class _HttpRecorder(asyncio.Protocol):
    def __init__(self, arrivals: Arrivals, done: asyncio.Future[bytes]) -> None:
        self.arrivals, self.done, self.received = arrivals, done, b""

    def data_received(self, data: bytes) -> None:
        self.arrivals.record(data)
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.received)


async def raw_post(ex: FakeExchange, keys: dict[str, str], params: Json) -> tuple[Arrivals, Json]:
    """A signed POST /api/v3/order over a plain socket recording its arrivals; (arrivals, body)."""
    query = encode_params([*params.items(), ("timestamp", ex.clock())])
    query += "&signature=" + hmac_sign(keys["secretKey"], query)
    request = (
        f"POST /api/v3/order?{query} HTTP/1.1\r\nHost: {ex.host}:{ex.port}\r\n"
        f"X-MBX-APIKEY: {keys['apiKey']}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    arrivals, done = Arrivals(), loop.create_future()
    transport, _ = await loop.create_connection(
        lambda: _HttpRecorder(arrivals, done), ex.host, ex.port
    )
    transport.write(request.encode())
    response = await asyncio.wait_for(done, T)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return arrivals, orjson.loads(body)


class Stream:
    """A WS-API connection subscribed to one account's user events; frames in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[Json] = []  # events read but not yet consumed
        self._ids = 0

    @classmethod
    async def open(cls, ex: FakeExchange, keys: dict[str, str]) -> Stream:
        ws = await connect(
            ex.endpoints.ws_api,
            proxy=None,
            max_queue=None,
            compression=None,
            create_connection=RecordingConnection,
        )
        stream = cls(ws)
        params: Json = {"apiKey": keys["apiKey"], "timestamp": ex.clock()}
        params["signature"] = hmac_sign(keys["secretKey"], wsapi_payload(params))
        reply = await stream.request("userDataStream.subscribe.signature", params)
        assert reply["status"] == 200, reply
        return stream

    async def request(self, method: str, params: Json | None = None) -> Json:
        """Send a request; its answer (events read meanwhile are kept)."""
        return (await self.until_answer(await self.send(method, params)))[1]

    async def send(self, method: str, params: Json | None = None) -> str:
        self._ids += 1
        rid = f"r{self._ids}"
        message: Json = {"id": rid, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(orjson.dumps(message).decode())
        return rid

    async def until_answer(self, rid: str) -> tuple[list[Json], Json]:
        """(the events that arrived before the answer to ``rid``, that answer)."""

        async def read() -> tuple[list[Json], Json]:
            before: list[Json] = []
            while True:
                frame = orjson.loads(await self.ws.recv())
                if frame.get("id") == rid:
                    return before, frame
                if "event" in frame:
                    before.append(frame["event"])
                    self.events.append(frame["event"])

        return await asyncio.wait_for(read(), T)

    async def already_here(self) -> list[Json]:
        """Every event written before now, by the ``ping`` marker of the module docstring."""
        return (await self.until_answer(await self.send("ping")))[0]

    async def event(self, kind: str, **fields: Any) -> Json:
        """The first unconsumed event of ``kind`` with those fields (waiting at most T)."""

        def match(ev: Json) -> bool:
            return ev["e"] == kind and all(ev.get(k) == v for k, v in fields.items())

        async def scan() -> Json:
            while True:
                for i, ev in enumerate(self.events):
                    if match(ev):
                        return self.events.pop(i)
                frame = orjson.loads(await self.ws.recv())
                if "event" in frame:
                    self.events.append(frame["event"])

        return await asyncio.wait_for(scan(), T)

    async def close(self) -> None:
        await self.ws.close()


async def last_price(rest: Rest) -> Decimal:
    _, body, _ = await rest.call("GET", "/api/v3/ticker/price", {"symbol": SYMBOL}, signed=False)
    return Decimal(body["price"])


async def sweep(rest: Rest, *, down: bool, ticks: int) -> Json:
    """Take every level up to ``ticks`` from the last price (an IOC of another account)."""
    price = await last_price(rest) + (-ticks if down else ticks) * TICK
    status, body = await rest.order(
        side="SELL" if down else "BUY", type="LIMIT", timeInForce="IOC", quantity="50",
        price=f"{price:f}", newOrderRespType="FULL",
    )  # fmt: skip
    assert status == 200, body
    return body


# --- stop orders ----------------------------------------------------------------------------


async def test_a_stop_limit_order_waits_then_triggers_and_fills(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """A SELL STOP_LOSS_LIMIT over REST: NEW and not working (RESULT with stopPrice and
    workingTime -1, a report w=false with P, the queries show isWorking false and stopPrice);
    another account's trade through the stop triggers it: a NEW report w=true with W, then
    TRADE reports; the queries show it working and filled, myTrades its commission."""
    owner = Rest(session, ex, await ex.create_account(commission={"maker": "0", "taker": "0.0005"}))
    other = Rest(session, ex, await ex.create_account(commission=FREE))
    stream = await Stream.open(ex, owner.keys)
    try:
        stop = await last_price(owner) - 3 * TICK
        status, placed = await owner.order(
            side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.1",
            stopPrice=f"{stop:f}", price=f"{stop - 5 * TICK:f}", newClientOrderId="stop-rest",
            newOrderRespType="RESULT",
        )  # fmt: skip
        assert status == 200, placed
        assert (placed["status"], placed["type"], placed["stopPrice"], placed["workingTime"]) == (
            "NEW",
            "STOP_LOSS_LIMIT",
            f"{stop:.8f}",
            -1,
        )
        new = await stream.event("executionReport", c="stop-rest")
        assert (new["x"], new["w"], new["P"], new["o"]) == (
            "NEW",
            False,
            f"{stop:.8f}",
            "STOP_LOSS_LIMIT",
        )
        assert "W" not in new
        query = {"symbol": SYMBOL, "origClientOrderId": "stop-rest"}
        _, order, _ = await owner.call("GET", "/api/v3/order", query)
        assert (order["isWorking"], order["stopPrice"], order["workingTime"]) == (
            False,
            f"{stop:.8f}",
            -1,
        )
        _, opened, _ = await owner.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL})
        assert [o["stopPrice"] for o in opened] == [f"{stop:.8f}"]

        await sweep(other, down=True, ticks=4)
        trigger = await stream.event("executionReport", c="stop-rest")
        assert (trigger["x"], trigger["X"], trigger["w"], trigger["i"]) == (
            "NEW",
            "NEW",
            True,
            placed["orderId"],
        )
        assert isinstance(trigger["W"], int) and trigger["W"] >= placed["transactTime"]
        fill = await stream.event("executionReport", c="stop-rest", x="TRADE")
        _, order, _ = await owner.call("GET", "/api/v3/order", query)
        assert order["isWorking"] and order["workingTime"] == trigger["W"]
        assert (
            order["status"] in ("FILLED", "PARTIALLY_FILLED")
            and order["stopPrice"] == f"{stop:.8f}"
        )
        _, rows, _ = await owner.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
        fee = (Decimal(rows[0]["quoteQty"]) * Decimal("0.0005")).quantize(EIGHT, ROUND_HALF_UP)
        assert (rows[0]["commission"], rows[0]["commissionAsset"]) == (f"{fee:.8f}", "USDT")
        assert fill["n"] == rows[0]["commission"] and fill["t"] == rows[0]["id"]
        _, history, _ = await owner.call("GET", "/api/v3/allOrders", {"symbol": SYMBOL})
        assert [(o["type"], o["stopPrice"]) for o in history] == [
            ("STOP_LOSS_LIMIT", f"{stop:.8f}")
        ]
    finally:
        await stream.close()


async def test_stop_orders_over_the_websocket_api(ex: FakeExchange) -> None:
    """order.place takes a STOP_LOSS (market variant) with stopPrice; order.test validates
    stop orders and answers computeCommissionRates with the account's rates (weight 20)."""
    keys = await ex.create_account(commission={"maker": "0.0001", "taker": "0.0003"})
    stream = await Stream.open(ex, keys)
    try:
        stop = Decimal(ex.engine.last_price(SYMBOL)) + 4 * TICK

        def signed(**params: Any) -> Json:
            params = {"apiKey": keys["apiKey"], "symbol": SYMBOL, **params, "timestamp": now_ms()}
            return {**params, "signature": hmac_sign(keys["secretKey"], wsapi_payload(params))}

        order = dict(side="BUY", type="STOP_LOSS", quantity="0.1", stopPrice=f"{stop:f}")
        placed = await stream.request("order.place", signed(**order, newOrderRespType="FULL"))
        assert placed["status"] == 200, placed
        result = placed["result"]
        assert (result["status"], result["stopPrice"], result["workingTime"], result["fills"]) == (
            "NEW",
            f"{stop:.8f}",
            -1,
            [],
        )
        report = await stream.event("executionReport", i=result["orderId"])
        assert (report["w"], report["P"], report["o"]) == (False, f"{stop:.8f}", "STOP_LOSS")
        rates = await stream.request("order.test", signed(**order, computeCommissionRates=True))
        assert rates["result"]["standardCommissionForOrder"] == {
            "maker": "0.00010000",
            "taker": "0.00030000",
        }
        assert rates["rateLimits"][0]["count"] >= 20
        bad = await stream.request("order.test", signed(**order, trailingDelta=100))
        assert (bad["status"], bad["error"]["code"]) == (400, -1013)
        assert bad["error"]["msg"] == "Trailing stop orders are not supported for this symbol."
    finally:
        await stream.close()


async def test_the_live_market_triggers_a_stop_order() -> None:
    """With the simulated market running, its trades trigger a stop one tick beyond the touch:
    the trigger report arrives on the user stream with no order of ours in between."""
    async with (
        FakeExchange(symbols=[SYMBOL], seed=3, rate=3000) as ex,
        aiohttp.ClientSession() as s,
    ):
        rest = Rest(s, ex, await ex.create_account())
        stream = await Stream.open(ex, rest.keys)
        try:
            await ex.pause()
            _, book, _ = await rest.call(
                "GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5}, signed=False
            )
            stop = Decimal(book["bids"][0][0]) - TICK
            status, placed = await rest.order(
                side="SELL", type="STOP_LOSS", quantity="0.1", stopPrice=f"{stop:f}"
            )
            assert status == 200, placed
            await stream.event("executionReport", i=placed["orderId"], x="NEW")
            await ex.resume()
            trigger = await stream.event("executionReport", i=placed["orderId"], x="NEW")
            assert trigger["w"] is False and "W" in trigger  # a market variant: not on the book
            done = await stream.event("executionReport", i=placed["orderId"], x="TRADE")
            assert Decimal(done["L"]) <= stop + 5 * TICK
        finally:
            await stream.close()


async def test_stop_order_rejections_over_rest(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """Would trigger immediately: 400 -2010; trailingDelta: 400 -1013 (no trailing stops);
    stopPrice on a LIMIT: -1106; a stop off the tick: -1013 PRICE_FILTER; /order/test too."""
    rest = Rest(session, ex, await ex.create_account())
    price = await last_price(rest)
    status, body = await rest.order(
        side="SELL", type="STOP_LOSS", quantity="0.1", stopPrice=f"{price + TICK:f}"
    )
    assert (status, body) == (400, {"code": -2010, "msg": "Order would trigger immediately."})
    status, body = await rest.order(
        side="SELL", type="STOP_LOSS", quantity="0.1", trailingDelta="100"
    )
    assert (status, body["code"]) == (400, -1013) and "Trailing stop" in body["msg"]
    status, body = await rest.order(
        side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="100", stopPrice="90"
    )
    assert (status, body["code"], body["msg"]) == (
        400,
        -1106,
        "Parameter 'stopPrice' sent when not required.",
    )
    params = {"symbol": SYMBOL, "side": "BUY", "type": "TAKE_PROFIT", "quantity": "0.1"}
    status, body, _ = await rest.call(
        "POST", "/api/v3/order/test", params | {"stopPrice": "100.001"}
    )
    assert (status, body["msg"]) == (400, "Filter failure: PRICE_FILTER")
    status, body, _ = await rest.call("POST", "/api/v3/order/test", params | {"stopPrice": "100"})
    assert (status, body) == (200, {})
    assert await ex.orders(rest.keys["apiKey"]) == []


async def test_exchange_info_lists_the_stop_order_types(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """exchangeInfo serves the seven order types of today's Binance and allowTrailingStop false."""
    rest = Rest(session, ex, {})
    _, info, _ = await rest.call("GET", "/api/v3/exchangeInfo", {"symbol": SYMBOL}, signed=False)
    entry = info["symbols"][0]
    assert {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"} <= set(
        entry["orderTypes"]
    )
    assert entry["allowTrailingStop"] is False


# --- LIMIT_MAKER ----------------------------------------------------------------------------


async def test_a_limit_maker_that_would_take_is_refused_without_an_event(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """400 -2010 "Order would immediately match and take.", and nothing on the user stream:
    the ping marker finds no event before its answer; balances unchanged."""
    rest = Rest(session, ex, await ex.create_account())
    stream = await Stream.open(ex, rest.keys)
    try:
        before = await ex.balances(rest.keys["apiKey"])
        _, book, _ = await rest.call(
            "GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5}, signed=False
        )
        status, body = await rest.order(
            side="BUY", type="LIMIT_MAKER", quantity="0.1", price=book["asks"][0][0]
        )
        assert (status, body) == (
            400,
            {"code": -2010, "msg": "Order would immediately match and take."},
        )
        assert await stream.already_here() == []
        assert await ex.balances(rest.keys["apiKey"]) == before
        status, body = await rest.order(
            side="BUY", type="LIMIT_MAKER", quantity="0.1", price=book["bids"][0][0]
        )
        assert status == 200 and set(body) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }
        new = await stream.event("executionReport", i=body["orderId"])
        assert (new["o"], new["f"], new["w"]) == ("LIMIT_MAKER", "GTC", True)
    finally:
        await stream.close()


# --- commissions ----------------------------------------------------------------------------


async def test_commissions_in_every_output(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """An account made over /_fake/accounts with its own rates, and a default one (Binance's
    0.1%): GET /api/v3/account shows the rates; a maker and a taker fill pay them in the asset
    received, in the FULL fills, the executionReports (n, N), myTrades, and the balances the
    outboundAccountPosition reports (equal to the true ones); the fee account holds them."""
    base = ex.endpoints.rest + "/_fake/accounts"
    async with session.post(base, json={"commission": {"maker": "0.0002", "taker": "0.0007"}}) as r:
        assert r.status == 200
        maker = Rest(session, ex, await r.json())
    for bad in ({"maker": "1"}, {"maker": "0.000000001"}, {"taker": "cheap"}, {"fee": "0"}, "0"):
        async with session.post(base, json={"commission": bad}) as r:
            assert r.status == 400, bad
    taker = Rest(session, ex, await ex.create_account())
    _, account, _ = await maker.call("GET", "/api/v3/account", {"omitZeroBalances": "true"})
    assert (account["makerCommission"], account["takerCommission"]) == (2, 7)
    assert account["commissionRates"] == {
        "maker": "0.00020000",
        "taker": "0.00070000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    _, account, _ = await taker.call("GET", "/api/v3/account")
    assert account["commissionRates"]["taker"] == "0.00100000" and account["takerCommission"] == 10

    stream = await Stream.open(ex, taker.keys)
    maker_stream = await Stream.open(ex, maker.keys)
    try:
        _, book, _ = await maker.call(
            "GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5}, signed=False
        )
        price = Decimal(book["asks"][0][0]) - TICK
        status, resting = await maker.order(
            side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2", price=f"{price:f}"
        )
        assert status == 200
        status, taken = await taker.order(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.12345", price=f"{price:f}",
            newOrderRespType="FULL",
        )  # fmt: skip
        assert status == 200 and taken["status"] == "FILLED"
        qty = Decimal("0.12345")
        quote = (price * qty).quantize(EIGHT, ROUND_FLOOR)
        taker_fee = (qty * Decimal("0.001")).quantize(EIGHT, ROUND_HALF_UP)
        maker_fee = (quote * Decimal("0.0002")).quantize(EIGHT, ROUND_HALF_UP)
        assert [(f["commission"], f["commissionAsset"]) for f in taken["fills"]] == [
            (f"{taker_fee:.8f}", "BTC")
        ]
        report = await stream.event("executionReport", x="TRADE")
        assert (report["n"], report["N"]) == (f"{taker_fee:.8f}", "BTC")
        made = await maker_stream.event("executionReport", x="TRADE")
        assert (made["n"], made["N"], made["m"]) == (f"{maker_fee:.8f}", "USDT", True)
        _, rows, _ = await maker.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
        assert [(r["commission"], r["commissionAsset"]) for r in rows] == [
            (f"{maker_fee:.8f}", "USDT")
        ]
        truth = await ex.balances(taker.keys["apiKey"])
        position = await stream.event("outboundAccountPosition")
        while "BTC" not in {b["a"] for b in position["B"]}:  # the one after the fill
            position = await stream.event("outboundAccountPosition")
        reported = {b["a"]: b["f"] for b in position["B"]}
        assert (
            reported["BTC"] == truth["BTC"]["free"] == f"{Decimal(1_000_000) + qty - taker_fee:.8f}"
        )
        fees = ex.engine.balances(ex.engine.fee_account)
        assert fees == {"BTC": (taker_fee, 0), "USDT": (maker_fee, 0)}
        assert resting["orderId"] > 0
    finally:
        await stream.close()
        await maker_stream.close()


# --- klines and ticker ----------------------------------------------------------------------


async def test_klines_over_rest_and_the_websocket_api(session: aiohttp.ClientSession) -> None:
    """GET /api/v3/klines (weight 2): Binance's array shape, the volume and count of the trades
    we made; bad interval -1120, missing interval -1102, unknown symbol -1121; the WS-API
    klines method answers the same rows."""
    async with FakeExchange(symbols=[SYMBOL], rate=0, clock=lambda: HALF_PAST) as ex:
        await _klines(ex, session)


HALF_PAST = 1_767_227_400_000  # 2026-01-01T00:30:00Z: the exchange's clock stands still there


async def _klines(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    rest = Rest(session, ex, await ex.create_account(commission=FREE))
    for _ in range(3):
        await sweep(rest, down=False, ticks=1)
    _, mine, _ = await rest.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
    status, rows, weight = await rest.call(
        "GET", "/api/v3/klines", {"symbol": SYMBOL, "interval": "1h"}, signed=False
    )
    assert status == 200 and len(rows) == 1
    (row,) = rows
    assert [type(x) for x in row] == [int, str, str, str, str, str, int, str, int, str, str, str]
    assert (row[0], row[6], row[8]) == (HALF_PAST - 1_800_000, HALF_PAST + 1_799_999, len(mine))
    assert Decimal(row[5]) == sum(Decimal(t["qty"]) for t in mine) == Decimal(row[9])  # we bought
    assert Decimal(row[7]) == sum(Decimal(t["quoteQty"]) for t in mine)
    assert row[4] == mine[-1]["price"] == (await rest.call(
        "GET", "/api/v3/ticker/price", {"symbol": SYMBOL}, signed=False))[1]["price"]  # fmt: skip
    _, _, before = await rest.call(
        "GET", "/api/v3/klines", {"symbol": SYMBOL, "interval": "1m"}, signed=False
    )
    _, _, weight = await rest.call(
        "GET", "/api/v3/klines", {"symbol": SYMBOL, "interval": "1m"}, signed=False
    )
    assert weight - before == 2
    for params, code in (
        ({"symbol": SYMBOL, "interval": "7m"}, -1120),
        ({"symbol": SYMBOL}, -1102),
        ({"symbol": "NOPE", "interval": "1m"}, -1121),
        ({"symbol": SYMBOL, "interval": "1m", "limit": "0"}, -1130),
    ):
        status, body, _ = await rest.call("GET", "/api/v3/klines", params, signed=False)
        assert (status, body["code"]) == (400, code), params
    stream = await Stream.open(ex, rest.keys)
    try:
        answer = await stream.request("klines", {"symbol": SYMBOL, "interval": "1h"})
        assert answer["status"] == 200 and answer["result"] == rows
    finally:
        await stream.close()


async def test_ticker_price_follows_the_last_trade(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """ticker/price is the last trade price, for one symbol or a list (both at once: -1128)."""
    rest = Rest(session, ex, await ex.create_account())
    taken = await sweep(rest, down=True, ticks=2)
    price = taken["fills"][-1]["price"]
    status, body, _ = await rest.call(
        "GET", "/api/v3/ticker/price", {"symbol": SYMBOL}, signed=False
    )
    assert (status, body) == (200, {"symbol": SYMBOL, "price": price})
    _, listed, _ = await rest.call(
        "GET", "/api/v3/ticker/price", {"symbols": '["BTCUSDT","ETHBTC"]'}, signed=False
    )
    assert [t["symbol"] for t in listed] == [SYMBOL, "ETHBTC"] and listed[0]["price"] == price
    both = {"symbol": SYMBOL, "symbols": '["ETHBTC"]'}
    status, body, _ = await rest.call("GET", "/api/v3/ticker/price", both, signed=False)
    assert (status, body["code"]) == (400, -1128)


# --- the default order of user events and answers -------------------------------------------


@pytest.mark.parametrize("flipped", [False, True])
async def test_the_execution_report_reaches_the_client_before_the_rest_answer(
    ex: FakeExchange, flipped: bool
) -> None:
    """By default the executionReport's bytes reach the client before the REST answer's first
    byte (arrival numbers, see the module docstring); the user_events_after_response fault,
    even with no delay, flips that, and the same comparison says so."""
    keys = await ex.create_account()
    stream = await Stream.open(ex, keys)
    try:
        price = ex.engine.snapshot(SYMBOL, 20).bids[10][0]
        order = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        order |= {"quantity": "0.1", "price": price, "newClientOrderId": "pinned"}
        if flipped:
            ex.faults.user_events_after_response(delay_ms=0)
        ws_arrivals = stream.ws.arrivals  # type: ignore[attr-defined]
        ws_arrivals.chunks.clear()
        http, body = await raw_post(ex, keys, order)
        report = await stream.event("executionReport", c="pinned")
        assert report["i"] == body["orderId"]
        report_first = ws_arrivals.first(b'"executionReport"') < http.first()
        assert report_first is not flipped
    finally:
        await stream.close()


async def test_execution_reports_are_sent_before_the_rest_answer(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """By default an order's executionReport is on the user stream before its REST answer is
    written: right after the answer, the ping marker finds it already there. The
    user_events_after_response fault flips that order, and the same check sees no report."""
    rest = Rest(session, ex, await ex.create_account())
    stream = await Stream.open(ex, rest.keys)
    try:
        _, book, _ = await rest.call(
            "GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 20}, signed=False
        )
        order = dict(
            side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price=book["bids"][10][0]
        )
        status, placed = await rest.order(**order, newClientOrderId="first")
        assert status == 200
        here = await stream.already_here()
        assert [(e["e"], e.get("c")) for e in here][:1] == [("executionReport", "first")]
        assert here[0]["i"] == placed["orderId"]

        ex.faults.user_events_after_response(delay_ms=1_000)
        status, placed = await rest.order(**order, newClientOrderId="after")
        assert status == 200
        assert await stream.already_here() == []  # the flipped order fails the check above
        late = await stream.event("executionReport", c="after")  # it comes, later
        assert late["i"] == placed["orderId"]
    finally:
        await stream.close()


async def test_execution_reports_come_before_the_websocket_api_answer(ex: FakeExchange) -> None:
    """order.place on the connection that carries the user stream: the executionReport frame
    comes before the answer's frame; with the fault (channel wsapi) the answer comes first."""
    keys = await ex.create_account()
    stream = await Stream.open(ex, keys)
    try:
        price = ex.engine.snapshot(SYMBOL, 20).bids[10][0]

        def signed(cid: str) -> Json:
            params = {
                "apiKey": keys["apiKey"], "symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                "timeInForce": "GTC", "quantity": "0.1", "price": price,
                "newClientOrderId": cid, "timestamp": now_ms(),
            }  # fmt: skip
            return {**params, "signature": hmac_sign(keys["secretKey"], wsapi_payload(params))}

        before, answer = await stream.until_answer(await stream.send("order.place", signed("ws-1")))
        assert answer["status"] == 200
        assert [(e["e"], e["c"]) for e in before if e["e"] == "executionReport"] == [
            ("executionReport", "ws-1")
        ]
        ex.faults.add_json(
            {"kind": "user_events_after_response", "channel": "wsapi", "delayMs": 50}
        )
        before, answer = await stream.until_answer(await stream.send("order.place", signed("ws-2")))
        assert answer["status"] == 200 and before == []
        assert (await stream.event("executionReport", c="ws-2"))["i"] == answer["result"]["orderId"]
    finally:
        await stream.close()
