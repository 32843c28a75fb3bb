"""The local exchange's REST API over real sockets: endpoints, signing, limits, faults, controls."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from streamer.sansio.signing import (
    ed25519_sign,
    encode_params,
    hmac_sign,
    rest_payload,
    wsapi_payload,
)
from streamer.testing.exchange import cli
from streamer.testing.exchange.firehose import generate_series
from streamer.testing.exchange.server import FakeExchange
from streamer.testing.exchange.symbols import load_exchange_info
from tests.helpers import ed25519_pems

T0 = 1_767_225_630_000  # 2026-01-01T00:00:30Z: half a minute before the weight window resets
SYMBOL = "BTCUSDT"


class Clock:
    """A clock the test moves by hand, so time-dependent answers are exact."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Resp:
    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def weight(self) -> int:
        return int(self.headers["X-MBX-USED-WEIGHT-1M"])


class Api:
    """A minimal signing client: sends exactly the encoded string it signed."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ex: FakeExchange,
        api_key: str = "",
        secret: str | None = None,
        private_pem: str | None = None,
    ) -> None:
        self.session = session
        self.ex = ex
        self.api_key = api_key
        self.secret = secret
        self.private_pem = private_pem

    def sign(self, payload: str) -> str:
        if self.private_pem is not None:
            return quote(ed25519_sign(self.private_pem, payload), safe="")
        assert self.secret is not None
        return hmac_sign(self.secret, payload)

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        signed: bool = False,
        where: str = "query",
        signature: str | None = None,
        wait: float | None = None,
    ) -> Resp:
        params = dict(params or {})
        if signed:
            params.setdefault("timestamp", self.ex.clock())
        items = list(params.items())
        if where == "query":
            query, body = encode_params(items), ""
        elif where == "body":
            query, body = "", encode_params(items)
        else:  # both: the first half in the query string, the rest in the body
            half = len(items) // 2
            query, body = encode_params(items[:half]), encode_params(items[half:])
        if signed:
            sig = signature if signature is not None else self.sign(rest_payload(query, body))
            if where == "query":
                query = f"{query}&signature={sig}"
            else:
                body = f"{body}&signature={sig}"
        # encoded=True: send the query byte for byte as signed (yarl would requote "%21" to "!").
        url = URL(self.ex.endpoints.rest + path + (f"?{query}" if query else ""), encoded=True)
        headers = {"X-MBX-APIKEY": self.api_key} if self.api_key else {}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        client_timeout = aiohttp.ClientTimeout(total=wait) if wait else None
        async with self.session.request(
            method, url, data=body.encode() if body else None, headers=headers,
            timeout=client_timeout,
        ) as r:  # fmt: skip
            text = await r.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return Resp(r.status, r.headers, parsed)


@pytest.fixture
async def ex() -> AsyncIterator[FakeExchange]:
    """A still market (rate 0) on a hand-moved clock."""
    async with FakeExchange(symbols=[SYMBOL, "ETHBTC"], rate=0, clock=Clock(T0)) as exchange:
        yield exchange
        assert exchange.rest.internal_errors == []


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def api(ex: FakeExchange, session: aiohttp.ClientSession) -> Api:
    keys = await ex.create_account()
    return Api(session, ex, keys["apiKey"], keys["secretKey"])


async def resting_buy(ex: FakeExchange, depth: int = 10, **extra: Any) -> dict[str, Any]:
    """Parameters of a LIMIT BUY that rests ``depth`` levels below the best bid."""
    book = await ex.book(SYMBOL)
    info = ex.engine.symbols[SYMBOL]
    price = Decimal(book["bids"][depth][0])
    qty = (info.min_notional * 2 / price / info.step_size).to_integral_value(ROUND_CEILING)
    qty = max(qty * info.step_size, info.min_qty)
    return {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": format(qty.normalize(), "f"),
        "price": format(price.normalize(), "f"),
        **extra,
    }


# -- public endpoints ---------------------------------------------------------------------------


async def test_ping_time_and_headers(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    """ping is {}, time is the server clock; both carry weight headers and a Date."""
    api = Api(session, ex)
    ping = await api.call("GET", "/api/v3/ping")
    assert (ping.status, ping.body, ping.weight) == (200, {}, 1)
    assert ping.headers["X-MBX-USED-WEIGHT"] == "1"
    assert ping.headers["Date"].endswith("GMT")
    assert ping.headers["Content-Type"].startswith("application/json")
    clock = await api.call("GET", "/api/v3/time")
    assert clock.body == {"serverTime": T0}
    assert clock.weight == 2


async def test_exchange_info(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    """exchangeInfo lists the served symbols verbatim (filters in order), weight 20."""
    api = Api(session, ex)
    full = await api.call("GET", "/api/v3/exchangeInfo")
    assert full.weight == 20
    assert [s["symbol"] for s in full.body["symbols"]] == [SYMBOL, "ETHBTC"]
    entry = full.body["symbols"][0]
    assert entry == ex.engine.symbols[SYMBOL].raw
    assert entry["filters"][0]["filterType"] == "PRICE_FILTER"
    limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in full.body["rateLimits"]}
    assert limits[("REQUEST_WEIGHT", "MINUTE")] == 6000
    assert full.body["serverTime"] == T0
    one = await api.call("GET", "/api/v3/exchangeInfo", {"symbol": "ETHBTC"})
    assert [s["symbol"] for s in one.body["symbols"]] == ["ETHBTC"]
    listed = await api.call("GET", "/api/v3/exchangeInfo", {"symbols": '["ETHBTC","BTCUSDT"]'})
    assert [s["symbol"] for s in listed.body["symbols"]] == ["ETHBTC", SYMBOL]
    bad = await api.call("GET", "/api/v3/exchangeInfo", {"symbol": "NOPE"})
    assert (bad.status, bad.body["code"]) == (400, -1121)
    dup = await api.call("GET", "/api/v3/exchangeInfo", {"symbols": '["ETHBTC","ETHBTC"]'})
    assert dup.body["code"] == -1151


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(None, 5), (5, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50), (1001, 250),
     (5000, 250), (6000, 250)],
)  # fmt: skip
async def test_depth_limit_and_weight(
    ex: FakeExchange, session: aiohttp.ClientSession, limit: int | None, weight: int
) -> None:
    """depth weighs 5/25/50/250 by limit, truncates above 5000 and matches the true book."""
    params = {"symbol": SYMBOL} | ({"limit": limit} if limit is not None else {})
    resp = await Api(session, ex).call("GET", "/api/v3/depth", params)
    assert resp.status == 200
    assert resp.weight == weight
    book = await ex.book(SYMBOL)
    assert resp.body["lastUpdateId"] == book["lastUpdateId"]
    levels = min(limit or 100, 5000)
    assert resp.body["bids"] == book["bids"][:levels]
    assert resp.body["asks"] == book["asks"][:levels]
    bids = [Decimal(p) for p, _ in resp.body["bids"]]
    assert bids == sorted(bids, reverse=True)


async def test_depth_rejects_bad_limit_and_symbol(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """limit 0 is -1130, a non-number -1100, a missing symbol -1102, an unknown one -1121."""
    api = Api(session, ex)
    cases = [
        ({"symbol": SYMBOL, "limit": 0}, -1130),
        ({"symbol": SYMBOL, "limit": "ten"}, -1100),
        ({"symbol": SYMBOL, "limit": -5}, -1100),
        ({}, -1102),
        ({"symbol": "NOPE"}, -1121),
    ]
    for params, code in cases:
        resp = await api.call("GET", "/api/v3/depth", params)
        assert (resp.status, resp.body["code"]) == (400, code), params


async def test_ticker_price(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    """ticker/price answers one symbol (weight 2), a list, or every symbol (weight 4)."""
    api = Api(session, ex)
    one = await api.call("GET", "/api/v3/ticker/price", {"symbol": SYMBOL})
    assert one.body == {"symbol": SYMBOL, "price": ex.engine.last_price(SYMBOL)}
    assert one.weight == 2
    every = await api.call("GET", "/api/v3/ticker/price")
    assert [t["symbol"] for t in every.body] == [SYMBOL, "ETHBTC"]
    assert every.weight == 6
    listed = await api.call("GET", "/api/v3/ticker/price", {"symbols": '["ETHBTC"]'})
    assert [t["symbol"] for t in listed.body] == ["ETHBTC"]


async def test_user_data_stream_is_gone(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    """Every method on /api/v3/userDataStream answers 410 Gone (listenKeys were retired)."""
    api = Api(session, ex)
    for method in ("POST", "PUT", "DELETE", "GET"):
        resp = await api.call(method, "/api/v3/userDataStream")
        assert resp.status == 410, method
        assert "410 Gone" in resp.body


async def test_unknown_endpoint_is_json_404(
    ex: FakeExchange, session: aiohttp.ClientSession
) -> None:
    """An unknown path is a JSON 404, a wrong method a JSON 405."""
    api = Api(session, ex)
    missing = await api.call("GET", "/api/v3/nothing")
    assert missing.status == 404 and isinstance(missing.body["code"], int)
    wrong = await api.call("PUT", "/api/v3/order")
    assert wrong.status == 405 and isinstance(wrong.body["code"], int)


# -- signing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["query", "body", "both"])
async def test_hmac_order_lifecycle(ex: FakeExchange, api: Api, where: str) -> None:
    """Place, query and cancel with the signature over query, body or both, as sent."""
    params = await resting_buy(ex, newClientOrderId=f"lifecycle-{where}")
    placed = await api.call("POST", "/api/v3/order", params, signed=True, where=where)
    assert placed.status == 200, placed.body
    assert placed.body["status"] == "NEW"
    assert placed.body["clientOrderId"] == f"lifecycle-{where}"
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert placed.headers["X-MBX-ORDER-COUNT-1D"] == "1"
    assert placed.weight == 0  # a successful order costs nothing
    query = {"symbol": SYMBOL, "origClientOrderId": f"lifecycle-{where}"}
    got = await api.call("GET", "/api/v3/order", query, signed=True, where=where)
    assert got.body["orderId"] == placed.body["orderId"]
    assert got.weight == 4
    cancel = {"symbol": SYMBOL, "orderId": placed.body["orderId"]}
    cancelled = await api.call("DELETE", "/api/v3/order", cancel, signed=True, where=where)
    assert cancelled.body["status"] == "CANCELED"
    assert cancelled.body["origClientOrderId"] == f"lifecycle-{where}"
    again = await api.call("DELETE", "/api/v3/order", cancel, signed=True, where=where)
    assert (again.status, again.body["code"]) == (400, -2011)
    assert again.weight == 5  # the failed cancel costs 1


@pytest.mark.parametrize("where", ["query", "body"])
async def test_ed25519_signed_requests(
    ex: FakeExchange, session: aiohttp.ClientSession, where: str
) -> None:
    """An Ed25519 key registered over /_fake/accounts signs requests (base64, URL-encoded)."""
    private, public = ed25519_pems()
    async with session.post(
        ex.endpoints.rest + "/_fake/accounts", json={"ed25519PublicKey": public}
    ) as created:
        keys = await created.json()
    assert set(keys) == {"apiKey"}
    api = Api(session, ex, keys["apiKey"], private_pem=private)
    account = await api.call("GET", "/api/v3/account", signed=True, where=where)
    assert account.status == 200, account.body
    assert {b["asset"] for b in account.body["balances"]} == {"BTC", "USDT", "ETH"}
    forged = Api(session, ex, keys["apiKey"], private_pem=ed25519_pems()[0])
    refused = await forged.call("GET", "/api/v3/account", signed=True, where=where)
    assert (refused.status, refused.body["code"]) == (400, -1022)


async def test_signature_and_key_errors(ex: FakeExchange, api: Api) -> None:
    """A wrong signature is -1022, an unknown key -2015 (401), no key -2014, no signature -1102."""
    bad = await api.call("GET", "/api/v3/account", signed=True, signature="00" * 32)
    assert (bad.status, bad.body["code"]) == (400, -1022)
    upper = await api.call(
        "GET", "/api/v3/account", {"timestamp": T0}, signed=True,
        signature=api.sign(encode_params({"timestamp": T0})).upper(),
    )  # fmt: skip
    assert upper.status == 200  # hex signatures are case-insensitive
    stranger = Api(api.session, ex, "A" * 64, "secret")
    unknown = await stranger.call("GET", "/api/v3/account", signed=True)
    assert (unknown.status, unknown.body["code"]) == (401, -2015)
    anonymous = Api(api.session, ex, "", "secret")
    no_key = await anonymous.call("GET", "/api/v3/account", signed=True)
    assert (no_key.status, no_key.body["code"]) == (401, -2014)
    unsigned = await api.call("GET", "/api/v3/account", {"timestamp": T0})
    assert (unsigned.status, unsigned.body["code"]) == (400, -1102)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"timestamp": T0 - 5001}, -1021),  # older than the default recvWindow
        ({"timestamp": T0 - 9000, "recvWindow": 10000}, None),
        ({"timestamp": T0 + 999}, None),
        ({"timestamp": T0 + 1000}, -1021),  # 1000 ms ahead of the server
        ({"timestamp": T0, "recvWindow": 60001}, -1131),
        ({"timestamp": T0 - 6000, "recvWindow": "6000.346"}, None),  # µs precision window
        ({"timestamp": (T0 - 1) * 1000}, None),  # a µs timestamp
        ({"timestamp": "soon"}, -1100),
        ({"timestamp": 1_400_000_000_000, "recvWindow": 60000}, -1021),  # before 2017
    ],
)
async def test_timestamp_and_recv_window(
    api: Api, params: dict[str, Any], code: int | None
) -> None:
    """timestamp must satisfy ts < server + 1000 and server - ts <= recvWindow (max 60000)."""
    resp = await api.call("GET", "/api/v3/account", params, signed=True)
    if code is None:
        assert resp.status == 200, resp.body
    else:
        assert (resp.status, resp.body["code"]) == (400, code)


async def test_missing_timestamp(api: Api) -> None:
    """A signed request without timestamp is -1102."""
    payload = encode_params({"omitZeroBalances": "true"})
    url = f"{api.ex.endpoints.rest}/api/v3/account?{payload}&signature={api.sign(payload)}"
    async with api.session.get(url, headers={"X-MBX-APIKEY": api.api_key}) as r:
        assert r.status == 400
        assert (await r.json())["code"] == -1102


# -- orders -------------------------------------------------------------------------------------


async def test_order_validation_errors(ex: FakeExchange, api: Api) -> None:
    """Precision -1111, filter -1013, notation -1100, symbol -1121 and duplicates -2010."""
    base = await resting_buy(ex)
    dotted = base["price"] if "." in base["price"] else base["price"] + "."
    tick_off = format(Decimal(base["price"]) + Decimal("0.001"), "f")
    cases = [
        (base | {"price": dotted + "000000001"}, -1111, "too much precision"),
        (base | {"price": tick_off}, -1013, "Filter failure: PRICE_FILTER"),
        (base | {"quantity": "1e-3"}, -1100, "quantity"),
        (base | {"symbol": "NOPE"}, -1121, "Invalid symbol."),
        (base | {"side": "SIDEWAYS"}, -1117, ""),
        (base | {"newClientOrderId": "bad id!"}, -1100, "newClientOrderId"),
        (base | {"stopPrice": "1"}, -1106, "stopPrice"),
    ]
    for used, (params, code, text) in enumerate(cases, start=1):
        resp = await api.call("POST", "/api/v3/order", params, signed=True)
        assert (resp.status, resp.body["code"]) == (400, code), params
        assert text in resp.body["msg"]
        assert resp.weight == used  # each failed placement costs 1
    first = await api.call(
        "POST", "/api/v3/order", base | {"newClientOrderId": "twice"}, signed=True
    )
    assert first.status == 200
    dup = await api.call("POST", "/api/v3/order", base | {"newClientOrderId": "twice"}, signed=True)
    assert (dup.status, dup.body) == (400, {"code": -2010, "msg": "Duplicate order sent."})


@pytest.mark.parametrize("spelling", ["{p}", "{p}0", "{p}000"])
async def test_decimals_in_any_plain_notation(ex: FakeExchange, api: Api, spelling: str) -> None:
    """Prices are accepted with or without trailing zeros."""
    params = await resting_buy(ex)
    price = params["price"] if "." in params["price"] else params["price"] + "."
    params["price"] = spelling.format(p=price).rstrip(".")
    resp = await api.call("POST", "/api/v3/order", params, signed=True)
    assert resp.status == 200, resp.body
    assert Decimal(resp.body["price"]) == Decimal(params["price"])


async def test_order_test_endpoint(ex: FakeExchange, api: Api) -> None:
    """order/test validates without placing; weight 1, or 20 with commission rates."""
    params = await resting_buy(ex)
    ok = await api.call("POST", "/api/v3/order/test", params, signed=True)
    assert (ok.status, ok.body, ok.weight) == (200, {}, 1)
    rates = await api.call(
        "POST", "/api/v3/order/test", params | {"computeCommissionRates": "true"}, signed=True
    )
    assert "standardCommissionForOrder" in rates.body
    assert rates.weight == 21
    bad = await api.call("POST", "/api/v3/order/test", params | {"price": "0.001"}, signed=True)
    assert bad.body["code"] == -1013
    assert await ex.orders(api.api_key) == []


async def test_trades_account_and_order_lists(ex: FakeExchange, api: Api) -> None:
    """A taking order fills; myTrades, account, openOrders and allOrders agree with it."""
    book = await ex.book(SYMBOL)
    info = ex.engine.symbols[SYMBOL]
    ask_price, ask_qty = (Decimal(x) for x in book["asks"][0])
    qty = min(ask_qty, (info.min_notional * 2 / ask_price / info.step_size).to_integral_value(
        ROUND_CEILING) * info.step_size)  # fmt: skip
    take = {
        "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
        "quantity": format(qty, "f"), "price": format(ask_price, "f"),
        "newOrderRespType": "FULL",
    }  # fmt: skip
    filled = await api.call("POST", "/api/v3/order", take, signed=True)
    assert filled.body["status"] == "FILLED", filled.body
    assert len(filled.body["fills"]) == 1
    rest_order = await api.call("POST", "/api/v3/order", await resting_buy(ex), signed=True)
    trades = await api.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL}, signed=True)
    assert [t["orderId"] for t in trades.body] == [filled.body["orderId"]]
    assert trades.weight == 20
    by_order = {"symbol": SYMBOL, "orderId": filled.body["orderId"]}
    assert (await api.call("GET", "/api/v3/myTrades", by_order, signed=True)).weight == 25
    bad_combo = by_order | {"startTime": T0 - 1000}
    combo = await api.call("GET", "/api/v3/myTrades", bad_combo, signed=True)
    assert combo.body["code"] == -1128
    window = {"symbol": SYMBOL, "startTime": T0 - 1000, "endTime": T0 + 1000}
    timed = await api.call("GET", "/api/v3/myTrades", window, signed=True)
    assert [t["id"] for t in timed.body] == [t["id"] for t in trades.body]
    account = await api.call("GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True)
    balances = {b["asset"]: b for b in account.body["balances"]}
    # The default account pays Binance's 0.1% taker commission in the BTC it receives.
    fee = (qty * Decimal("0.001")).quantize(Decimal("1E-8"), rounding=ROUND_HALF_UP)
    assert filled.body["fills"][0]["commission"] == f"{fee:.8f}"
    assert Decimal(balances["BTC"]["free"]) == 1_000_000 + qty - fee
    assert account.body["takerCommission"] == 10
    assert Decimal(balances["USDT"]["locked"]) > 0  # the resting order's lock
    assert "ETH" in balances
    opened = await api.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL}, signed=True)
    assert [o["orderId"] for o in opened.body] == [rest_order.body["orderId"]]
    assert opened.weight - account.weight == 6
    every = await api.call("GET", "/api/v3/openOrders", signed=True)
    assert every.weight - opened.weight == 80
    history = await api.call("GET", "/api/v3/allOrders", {"symbol": SYMBOL}, signed=True)
    assert [o["status"] for o in history.body] == ["FILLED", "NEW"]
    windowed = await api.call("GET", "/api/v3/allOrders", window, signed=True)
    assert len(windowed.body) == 2
    too_wide = {"symbol": SYMBOL, "startTime": T0 - 2 * 86_400_000, "endTime": T0}
    assert (await api.call("GET", "/api/v3/allOrders", too_wide, signed=True)).body["code"] == -1127
    cancel_all = await api.call("DELETE", "/api/v3/openOrders", {"symbol": SYMBOL}, signed=True)
    assert [o["status"] for o in cancel_all.body] == ["CANCELED"]


async def test_cancel_restrictions(ex: FakeExchange, api: Api) -> None:
    """ONLY_PARTIALLY_FILLED refuses to cancel a NEW order; a bad value is -1145."""
    placed = await api.call("POST", "/api/v3/order", await resting_buy(ex), signed=True)
    target = {"symbol": SYMBOL, "orderId": placed.body["orderId"]}
    refused = await api.call(
        "DELETE", "/api/v3/order", target | {"cancelRestrictions": "ONLY_PARTIALLY_FILLED"},
        signed=True,
    )  # fmt: skip
    assert refused.body == {
        "code": -2011,
        "msg": "Order was not canceled due to cancel restrictions.",
    }
    bad = await api.call(
        "DELETE", "/api/v3/order", target | {"cancelRestrictions": "X"}, signed=True
    )
    assert bad.body["code"] == -1145
    done = await api.call(
        "DELETE", "/api/v3/order", target | {"cancelRestrictions": "ONLY_NEW"}, signed=True
    )
    assert done.body["status"] == "CANCELED"


# -- limits -------------------------------------------------------------------------------------


async def test_429_then_418_with_retry_after(session: aiohttp.ClientSession) -> None:
    """Over the weight limit: 429 until the minute ends; ignoring it: a 2-minute 418 ban."""
    clock = Clock(T0)
    async with FakeExchange(symbols=[SYMBOL], rate=0, clock=clock, weight_limit=30) as ex:
        api = Api(session, ex)
        assert (await api.call("GET", "/api/v3/exchangeInfo")).status == 200
        over = await api.call("GET", "/api/v3/exchangeInfo")
        assert (over.status, over.body["code"]) == (429, -1003)
        assert over.headers["Retry-After"] == "30"  # seconds to the minute boundary
        assert over.weight == 40
        clock.now += 10_000
        ignored = await api.call("GET", "/api/v3/ping")
        assert (ignored.status, ignored.headers["Retry-After"]) == (429, "20")
        banned = await api.call("GET", "/api/v3/ping")
        assert (banned.status, banned.body["code"]) == (418, -1003)
        assert banned.headers["Retry-After"] == "120"
        assert "banned until" in banned.body["msg"]
        clock.now += 60_000
        still = await api.call("GET", "/api/v3/ping")
        assert (still.status, still.headers["Retry-After"]) == (418, "60")
        clock.now += 60_000
        assert (await api.call("GET", "/api/v3/ping")).status == 200


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_fault(
    ex: FakeExchange, session: aiohttp.ClientSession, status: int
) -> None:
    """A rate_limit fault answers the next N requests with its status and Retry-After."""
    ex.faults.rate_limit(count=2, status=status, retry_after=7)
    api = Api(session, ex)
    for _ in range(2):
        resp = await api.call("GET", "/api/v3/ping")
        assert (resp.status, resp.body["code"], resp.headers["Retry-After"]) == (status, -1003, "7")
    assert (await api.call("GET", "/api/v3/ping")).status == 200


async def test_order_count_limit(ex: FakeExchange, api: Api) -> None:
    """The 51st order in 10 s is refused with 429 and -1015."""
    ex.weights.orders_10s = 2
    params = await resting_buy(ex)
    for _ in range(2):
        assert (await api.call("POST", "/api/v3/order", params, signed=True)).status == 200
    refused = await api.call("POST", "/api/v3/order", params, signed=True)
    assert (refused.status, refused.body["code"]) == (429, -1015)
    assert int(refused.headers["Retry-After"]) >= 1


# -- order-placement faults --------------------------------------------------------------------


async def _order_exists(api: Api, client_id: str) -> bool:
    query = {"symbol": SYMBOL, "origClientOrderId": client_id}
    resp = await api.call("GET", "/api/v3/order", query, signed=True)
    if resp.status == 200:
        return True
    assert resp.body["code"] == -2013
    return False


@pytest.mark.parametrize(
    ("placed", "kind", "status", "code"),
    [
        (True, "5xx", 500, -1001),
        (False, "5xx", 500, -1001),
        (True, "1007", 408, -1007),
        (False, "1007", 408, -1007),
    ],
)
async def test_unknown_outcome_faults(
    ex: FakeExchange, api: Api, placed: bool, kind: str, status: int, code: int
) -> None:
    """5xx and -1007 answers, with the order placed or not placed behind them."""
    if kind == "5xx":
        ex.faults.order_5xx(placed=placed, symbol=SYMBOL)
    else:
        ex.faults.order_1007(placed=placed)
    params = await resting_buy(ex, newClientOrderId=f"unknown-{kind}-{placed}")
    resp = await api.call("POST", "/api/v3/order", params, signed=True)
    assert (resp.status, resp.body["code"]) == (status, code)
    assert await _order_exists(api, params["newClientOrderId"]) is placed
    again = await api.call("POST", "/api/v3/order", params, signed=True)  # the fault is spent
    assert again.status == (400 if placed else 200)


async def test_order_timeout_fault_answers_late(ex: FakeExchange, api: Api) -> None:
    """The order is placed at once; its answer comes after the client's timeout."""
    ex.faults.order_timeout(400)
    params = await resting_buy(ex, newClientOrderId="late")
    with pytest.raises(asyncio.TimeoutError):
        await api.call("POST", "/api/v3/order", params, signed=True, wait=0.1)
    assert await _order_exists(api, "late")
    patient = await resting_buy(ex, depth=12, newClientOrderId="late-but-waited")
    ex.faults.order_timeout(100)
    resp = await api.call("POST", "/api/v3/order", patient, signed=True, wait=5)
    assert resp.status == 200 and resp.body["clientOrderId"] == "late-but-waited"


async def test_order_timeout_fault_drops_connection(ex: FakeExchange, api: Api) -> None:
    """With drop, the connection closes without an answer, yet the order exists."""
    ex.faults.order_timeout(50, drop=True)
    params = await resting_buy(ex, newClientOrderId="dropped")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "/api/v3/order", params, signed=True)
    assert await _order_exists(api, "dropped")


async def _subscribe(session: aiohttp.ClientSession, ex: FakeExchange, api: Api) -> Any:
    ws = await session.ws_connect(ex.endpoints.ws_api)
    params: dict[str, Any] = {"apiKey": api.api_key, "timestamp": ex.clock()}
    assert api.secret is not None
    params["signature"] = hmac_sign(api.secret, wsapi_payload(params))
    await ws.send_json({"id": 1, "method": "userDataStream.subscribe.signature", "params": params})
    reply = await ws.receive_json(timeout=5)
    assert reply["status"] == 200, reply
    return ws


async def _next_execution_report(ws: Any) -> dict[str, Any]:
    while True:
        message = await ws.receive_json(timeout=5)
        if message.get("event", {}).get("e") == "executionReport":
            return dict(message["event"])


async def test_user_events_before_and_after_response(
    ex: FakeExchange, api: Api, session: aiohttp.ClientSession
) -> None:
    """By default the executionReport is sent before the answer; the fault sends it after."""
    ws = await _subscribe(session, ex, api)
    try:
        params = await resting_buy(ex, newClientOrderId="events-first")
        placed = await api.call("POST", "/api/v3/order", params, signed=True)
        report = await _next_execution_report(ws)
        assert (report["c"], report["X"]) == ("events-first", placed.body["status"])

        ex.faults.user_events_after_response(delay_ms=300)
        params = await resting_buy(ex, depth=12, newClientOrderId="answer-first")
        placed = await api.call("POST", "/api/v3/order", params, signed=True)
        answered = time.monotonic()
        report = await _next_execution_report(ws)
        assert report["c"] == "answer-first"
        assert time.monotonic() - answered >= 0.25  # held until after the HTTP answer
    finally:
        await ws.close()


async def test_stale_snapshot_fault(ex: FakeExchange, api: Api) -> None:
    """The stale_snapshot fault serves once the book as it was when added, then the current one."""
    before = ex.engine.last_update_id(SYMBOL)
    assert not ex.faults.history.active  # no such fault pending: no book is recorded
    ex.faults.stale_snapshot(SYMBOL)
    unchanged = await api.call("GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5})
    assert unchanged.body["lastUpdateId"] == before  # nothing older yet: current, fault kept
    assert len(ex.faults.pending()) == 1
    placed = await api.call("POST", "/api/v3/order", await resting_buy(ex), signed=True)
    assert placed.status == 200
    now = ex.engine.last_update_id(SYMBOL)
    assert now > before
    stale = await api.call("GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5})
    assert stale.body["lastUpdateId"] == before
    assert len(stale.body["bids"]) == 5
    fresh = await api.call("GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5})
    assert fresh.body["lastUpdateId"] == now
    assert not ex.faults.history.active and ex.faults.pending() == []


# -- /_fake/ controls ---------------------------------------------------------------------------


async def test_fake_control_endpoints(ex: FakeExchange, session: aiohttp.ClientSession) -> None:
    """pause/resume, book, accounts, orders, balances and faults over HTTP."""
    base = ex.endpoints.rest + "/_fake"

    async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with session.request(method, base + path, **kw) as r:
            return r.status, await r.json()

    assert await call("POST", "/pause") == (200, {})
    assert ex.control.paused
    assert await call("POST", "/resume") == (200, {})
    assert not ex.control.paused
    status, book = await call("GET", "/book", params={"symbol": SYMBOL})
    assert book["lastUpdateId"] == ex.engine.last_update_id(SYMBOL) and len(book["bids"]) > 10
    assert (await call("GET", "/book", params={"symbol": "NOPE"}))[0] == 400

    status, keys = await call("POST", "/accounts", json={"balances": {"USDT": "250.5"}})
    assert status == 200 and set(keys) == {"apiKey", "secretKey"}
    status, balances = await call("GET", "/balances", params={"apiKey": keys["apiKey"]})
    assert balances == {"USDT": {"free": "250.50000000", "locked": "0.00000000"}}
    status, default = await call("POST", "/accounts")
    assert (await call("GET", "/balances", params={"apiKey": default["apiKey"]}))[1]["BTC"][
        "free"
    ] == "1000000.00000000"
    assert (await call("POST", "/accounts", json={"ed25519PublicKey": "nope"}))[0] == 400
    assert (await call("POST", "/accounts", json={"balances": {"BTC": "lots"}}))[0] == 400
    assert (await call("GET", "/balances", params={"apiKey": "unknown"}))[0] == 400

    api = Api(session, ex, keys["apiKey"], keys["secretKey"])
    await api.call(
        "POST", "/api/v3/order", await resting_buy(ex, newClientOrderId="x1"), signed=True
    )
    status, orders = await call("GET", "/orders", params={"apiKey": keys["apiKey"]})
    assert status == 200 and [o["clientOrderId"] for o in orders] == ["x1"]
    assert (await ex.orders(keys["apiKey"])) == orders

    status, faults = await call(
        "POST", "/faults", json=[{"kind": "drop_diff", "symbol": SYMBOL, "count": 2},
                                 {"kind": "user_stream_silent", "apiKey": keys["apiKey"]}],
    )  # fmt: skip
    assert status == 200
    assert [f["kind"] for f in faults["faults"]] == ["drop_diff", "user_stream_silent"]
    assert faults["faults"][1]["accountId"] == ex.auth.account_of(keys["apiKey"])
    assert (await call("GET", "/faults"))[1] == faults
    assert (await call("POST", "/faults", json={"kind": "nope"}))[0] == 400
    assert (await call("POST", "/faults", json={"kind": "drop_diff", "count": "x"}))[0] == 400
    assert await call("POST", "/faults", json={"clear": "drop_diff"}) == (
        200,
        {"faults": faults["faults"][1:]},
    )
    assert await call("POST", "/faults", json={"clear": True}) == (200, {"faults": []})


async def test_python_controls(ex: FakeExchange) -> None:
    """The FakeExchange methods mirror /_fake/ and expose the endpoints."""
    assert ex.endpoints.rest == f"http://127.0.0.1:{ex.port}"
    assert ex.endpoints.ws_api.endswith("/ws-api/v3")
    await ex.pause()
    assert ex.control.paused
    await ex.resume()
    keys = await ex.create_account({"BTC": Decimal("2")})
    assert await ex.balances(keys["apiKey"]) == {
        "BTC": {"free": "2.00000000", "locked": "0.00000000"}
    }
    assert (await ex.book("ETHBTC"))["symbol"] == "ETHBTC"


async def test_market_moves_pauses_and_closes_cleanly(session: aiohttp.ClientSession) -> None:
    """The engine loop feeds the streams; pause stops the book; close shuts sockets down."""
    async with FakeExchange(symbols=[SYMBOL], rate=2000) as ex:
        market = await session.ws_connect(ex.endpoints.ws + "/ws/btcusdt@depth@100ms")
        first = await market.receive_json(timeout=10)
        assert first["e"] == "depthUpdate" and first["s"] == SYMBOL
        await ex.pause()
        paused_at = ex.engine.last_update_id(SYMBOL)
        await asyncio.sleep(0.1)  # nothing to await: we check that nothing happens
        assert ex.engine.last_update_id(SYMBOL) == paused_at
        await ex.resume()
        wsapi = await session.ws_connect(ex.endpoints.ws_api)
    seen = []
    async with asyncio.timeout(10):
        async for message in market:
            if message.type == aiohttp.WSMsgType.TEXT:
                seen.append(json.loads(message.data).get("e"))
        closing = await wsapi.receive()
        while closing.type == aiohttp.WSMsgType.TEXT:
            closing = await wsapi.receive()
    assert "serverShutdown" in seen
    assert market.closed
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await wsapi.close()


def test_unknown_symbol_is_a_value_error() -> None:
    """FakeExchange refuses symbols it does not know."""
    with pytest.raises(ValueError):
        FakeExchange(symbols=["NOTASYMBOL"])


# -- robustness ---------------------------------------------------------------------------------


async def test_garbage_never_breaks_the_server(
    ex: FakeExchange, api: Api, session: aiohttp.ClientSession
) -> None:
    """Malformed requests get JSON errors and the server keeps answering."""
    rest = ex.endpoints.rest
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": api.api_key}
    cases: list[tuple[str, str, bytes | None, int]] = [
        ("POST", "/api/v3/order", b"\xff\xfe\x00garbage", -1100),
        ("GET", "/api/v3/depth?symbol=%FF%FE", None, -1100),
        ("GET", "/api/v3/depth?symbol=BTCUSDT&symbol=ETHBTC", None, -1101),
        ("GET", "/api/v3/depth?" + "&".join(f"p{i}=1" for i in range(300)), None, -1101),
        ("GET", "/api/v3/exchangeInfo?symbols=%5Bnot-json", None, -1100),
        ("POST", "/api/v3/order", b"symbol=BTCUSDT&&&===&signature=%%%", -1102),
        ("GET", "/api/v3/account?timestamp=1&signature=" + "z" * 5000, None, -1021),
    ]
    for method, path, body, code in cases:
        async with session.request(method, rest + path, data=body, headers=form) as r:
            assert r.status in (400, 401), (path, r.status)
            parsed = await r.json()
            assert parsed["code"] == code, (path, parsed)
    async with session.post(rest + "/_fake/faults", data=b"{not json") as r:
        assert r.status == 400 and "error" in await r.json()
    reader, writer = await asyncio.open_connection("127.0.0.1", ex.port)
    writer.write(b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    ping = await api.call("GET", "/api/v3/ping")
    assert ping.status == 200


async def test_many_books_are_frozen_from_the_collector_until_the_last_close() -> None:
    """With >= 64 seeded books the exchange gc.freeze()s; the last frozen one to close thaws."""
    names = [s["symbol"] for s in load_exchange_info()["symbols"][:70]]
    assert gc.get_freeze_count() == 0
    async with FakeExchange(names, rate=0) as first, FakeExchange(names, rate=0) as second:
        for name in names[:63]:
            first.engine.snapshot(name, 1)
        first._maybe_freeze()
        assert gc.get_freeze_count() == 0  # a few books: not worth it
        for exchange in (first, second):
            for name in names:
                exchange.engine.snapshot(name, 1)
            exchange._maybe_freeze()
        frozen = gc.get_freeze_count()
        assert frozen > 70 * 100
        await second.close()
        assert gc.get_freeze_count() > 0  # the first one's books stay frozen
    assert gc.get_freeze_count() == 0


# -- the command line ---------------------------------------------------------------------------


async def test_cli_json_line_and_sigint(session: aiohttp.ClientSession) -> None:
    """`streamer exchange --json` prints one JSON line, serves, and exits 0 on SIGINT."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer", "exchange", "--json",
        "--symbols", "BTCUSDT,ETHBTC", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        info = json.loads(line)
        assert set(info) == {
            "venue", "rest", "ws", "ws_api", "sbe", "api_key", "api_secret",
            "ed25519_api_key", "ed25519_private_key",
        }  # fmt: skip
        assert info["venue"] == "spot"
        assert info["sbe"].startswith("ws://127.0.0.1:") and info["sbe"] != info["ws"]
        assert info["ws_api"] == info["ws"] + "/ws-api/v3"
        async with session.get(info["rest"] + "/api/v3/exchangeInfo") as r:
            body = await r.json()
            assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHBTC"]
        api_ts = int(time.time() * 1000)
        query = encode_params({"timestamp": api_ts})
        query += "&signature=" + hmac_sign(info["api_secret"], query)
        async with session.get(
            f"{info['rest']}/api/v3/account?{query}", headers={"X-MBX-APIKEY": info["api_key"]}
        ) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_cli_firehose_serves_streams_and_their_snapshots(
    session: aiohttp.ClientSession,
) -> None:
    """`streamer exchange --firehose` serves firehose diffs and the snapshot that fits them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer", "exchange", "--json", "--symbols", "BTCUSDT",
        "--seed", "3", "--firehose", "--firehose-rate", "200",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    series = generate_series("BTCUSDT", seed=3)
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        async with session.get(info["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
            snap = await r.json()
        assert snap["lastUpdateId"] == series.snapshot_id and len(snap["bids"]) == 5
        async with session.ws_connect(info["ws"] + "/ws/btcusdt@depth@100ms") as ws:
            first = await ws.receive_json(timeout=30)
        assert (first["U"], first["u"]) == series.ids(0)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()


def test_cli_firehose_rate_needs_firehose(capsys: pytest.CaptureFixture[str]) -> None:
    """`--firehose-rate` without `--firehose` (or not positive) is a usage error, status 2."""
    assert cli.main(["--firehose-rate", "5"]) == 2
    assert cli.main(["--firehose", "--firehose-rate", "0"]) == 2
    assert "--firehose-rate" in capsys.readouterr().err
