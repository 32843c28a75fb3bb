"""TradingRest against the local exchange over real sockets: signing (HMAC, Ed25519), the clock
offset and its -1021 retry, order counts, Retry-After, and every error class from a real answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

import aiohttp
import pytest

from streamer.aio.rest import RestClient
from streamer.aio.trading_rest import TradingRest
from streamer.config import Credentials
from streamer.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    InvalidRequest,
    InvalidTimestamp,
    IPBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    UnknownOrderStatus,
    UnknownSymbol,
)
from streamer.sansio.filters import prepare_order, quantize_qty
from streamer.sansio.ratelimit import WeightBudget
from streamer.testing import FakeExchange
from tests.helpers import ed25519_pems

SYMBOL = "BTCUSDT"
T = 10.0  # bound on every wait


@dataclass
class Sent:
    """Every HTTP request the session starts: (monotonic time, method, path), from aiohttp's
    own trace hooks, so "nothing was sent" is observed, not assumed."""

    requests: list[tuple[float, str, str]] = field(default_factory=list)

    def config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def started(
            session: aiohttp.ClientSession,
            ctx: Any,
            params: aiohttp.TraceRequestStartParams,
        ) -> None:
            self.requests.append((time.monotonic(), params.method, params.url.path))

        trace.on_request_start.append(started)
        return trace

    def paths(self) -> list[str]:
        return [path for _, _, path in self.requests]


@dataclass
class Env:
    ex: FakeExchange
    session: aiohttp.ClientSession
    sent: Sent
    budget: WeightBudget

    def client(self, credentials: Credentials | None, **kw: Any) -> TradingRest:
        rest = RestClient(self.ex.endpoints, self.budget, self.session)
        return TradingRest(rest, credentials, **kw)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sent = Sent()
    async with (
        FakeExchange(symbols=[SYMBOL, "ETHBTC"], rate=0) as ex,
        aiohttp.ClientSession(trace_configs=[sent.config()]) as session,
    ):
        yield Env(ex, session, sent, WeightBudget(6000))
        assert ex.rest.internal_errors == []


async def hmac_credentials(ex: FakeExchange, **balances: str) -> Credentials:
    keys = await ex.create_account(balances or None)
    return Credentials(keys["apiKey"], keys["secretKey"])


async def ed25519_credentials(ex: FakeExchange) -> Credentials:
    private, public = ed25519_pems()
    keys = await ex.create_account(ed25519_public_key_pem=public)
    return Credentials.ed25519(keys["apiKey"], private)


async def resting_buy(api: TradingRest, ex: FakeExchange, cid: str) -> dict[str, str]:
    """Parameters of a LIMIT BUY ten levels under the best bid, worth twice the minimum."""
    filters = await api.symbol_filters(SYMBOL)
    book = await ex.book(SYMBOL)
    price = Decimal(book["bids"][10][0])
    qty = quantize_qty(filters, Decimal(20) / price, ROUND_CEILING)
    return prepare_order(
        filters, side="BUY", type="LIMIT", quantity=qty, price=price, time_in_force="GTC",
        client_order_id=cid,
    )  # fmt: skip


def secret_free(exc: BaseException, credentials: Credentials) -> None:
    """Neither the exception nor anything it chains to quotes the secret."""
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen), repr(getattr(seen, "args", ()))):
            assert credentials.secret not in text
            for line in credentials.secret.splitlines()[1:-1]:  # a PEM's body lines
                assert line not in text
        seen = seen.__cause__ or seen.__context__


# -- public data ----------------------------------------------------------------------------------


async def test_public_market_data(env: Env) -> None:
    """exchange_info adopts the weight limit and caches filters; ticker, depth are exact."""
    api = env.client(None)
    env.budget.limit = 1000
    info = await api.exchange_info()
    assert [s["symbol"] for s in info["symbols"]] == [SYMBOL, "ETHBTC"]
    assert env.budget.limit == 6000  # from rateLimits
    sent = len(env.sent.requests)
    filters = await api.symbol_filters(SYMBOL)
    assert filters.symbol == SYMBOL and filters.price_filter is not None
    assert len(env.sent.requests) == sent  # cached by exchange_info: nothing sent
    await api.symbol_filters(SYMBOL, refresh=True)
    assert env.sent.paths()[-1] == "/api/v3/exchangeInfo"
    price = await api.ticker_price(SYMBOL)
    assert price == Decimal(env.ex.engine.last_price(SYMBOL))
    depth = await api.depth(SYMBOL, limit=5)
    book = await env.ex.book(SYMBOL)
    assert depth["bids"] == book["bids"][:5] and depth["lastUpdateId"] == book["lastUpdateId"]


async def test_unknown_symbol(env: Env) -> None:
    """An unlisted symbol is UnknownSymbol for market data and filters."""
    api = env.client(None)
    with pytest.raises(UnknownSymbol) as info:
        await api.symbol_filters("NOPE")
    assert (info.value.code, info.value.status) == (-1121, 400)
    with pytest.raises(UnknownSymbol):
        await api.ticker_price("NOPE")


async def test_bad_request_is_invalid_request(env: Env) -> None:
    """A parameter the exchange refuses (myTrades limit 0: -1130) is InvalidRequest."""
    api = env.client(await hmac_credentials(env.ex))
    with pytest.raises(InvalidRequest) as info:
        await api.my_trades(SYMBOL, limit=0)
    assert (info.value.code, info.value.status) == (-1130, 400)


async def test_signed_request_needs_credentials(env: Env) -> None:
    """A signed call without credentials is a ConfigurationError, nothing sent."""
    with pytest.raises(ConfigurationError):
        await env.client(None).account()
    assert env.sent.requests == []


# -- signing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["HMAC", "ED25519"])
async def test_signed_get_post_delete(env: Env, key_type: str) -> None:
    """Account, place, query, open orders, trades and cancel, signed with either key type;
    the order counts of the placement are recorded."""
    ex = env.ex
    creds = await (hmac_credentials(ex) if key_type == "HMAC" else ed25519_credentials(ex))
    api = env.client(creds)
    assert creds.secret not in repr(api)
    account = await api.account()
    assert {b["asset"] for b in account["balances"]} == {"BTC", "USDT", "ETH"}
    assert env.sent.paths()[:2] == ["/api/v3/time", "/api/v3/account"]  # offset measured first
    assert api.offset_ms is not None and api.counters["time_syncs"] == 1
    params = await resting_buy(api, ex, f"signed-{key_type}")
    placed = await api.place_order(params)
    assert (placed["status"], placed["clientOrderId"]) == ("NEW", f"signed-{key_type}")
    assert placed["fills"] == []  # newOrderRespType=FULL
    assert api.order_counts == {"10S": 1, "1D": 1}
    got = await api.query_order(SYMBOL, client_order_id=f"signed-{key_type}")
    assert got["orderId"] == placed["orderId"]
    assert [o["orderId"] for o in await api.open_orders(SYMBOL)] == [placed["orderId"]]
    assert [o["orderId"] for o in await api.open_orders()] == [placed["orderId"]]
    assert await api.my_trades(SYMBOL) == []
    assert await api.my_trades(SYMBOL, order_id=placed["orderId"]) == []
    cancelled = await api.cancel_order(SYMBOL, order_id=placed["orderId"])
    assert cancelled["status"] == "CANCELED"
    assert cancelled["origClientOrderId"] == f"signed-{key_type}"
    (truth,) = await ex.orders(creds.api_key)
    assert truth["status"] == "CANCELED"
    second = await api.place_order(await resting_buy(api, ex, "second"))
    assert api.order_counts == {"10S": 2, "1D": 2}
    await api.cancel_order(SYMBOL, client_order_id="second", new_client_order_id="cancel-2")
    assert second["status"] == "NEW"
    assert api.counters["time_syncs"] == 1  # measured once


async def test_fill_and_trades(env: Env) -> None:
    """A MARKET order fills (FULL answer with fills); myTrades from its first trade id has it."""
    creds = await hmac_credentials(env.ex)
    api = env.client(creds)
    filters = await api.symbol_filters(SYMBOL)
    last = await api.ticker_price(SYMBOL)
    qty = quantize_qty(filters, Decimal(20) / last, ROUND_CEILING)
    params = prepare_order(
        filters, side="BUY", type="MARKET", quantity=qty, client_order_id="taker-1",
        reference_price=last,
    )  # fmt: skip
    placed = await api.place_order(params)
    assert placed["status"] == "FILLED" and placed["fills"]
    first = placed["fills"][0]["tradeId"]
    trades = await api.my_trades(SYMBOL, from_id=first)
    assert [t["id"] for t in trades] == [f["tradeId"] for f in placed["fills"]]


async def test_order_test_endpoint(env: Env) -> None:
    """/order/test validates without placing: {} or the commission rates; a refusal is
    OrderRejected."""
    creds = await hmac_credentials(env.ex)
    api = env.client(creds)
    params = await resting_buy(api, env.ex, "tested")
    assert await api.test_order(params) == {}
    rates = await api.test_order(params, compute_commission_rates=True)
    assert set(rates) >= {"standardCommissionForOrder", "taxCommissionForOrder", "discount"}
    assert await env.ex.orders(creds.api_key) == []
    with pytest.raises(OrderRejected) as info:
        await api.test_order({**params, "price": "1.001"})
    assert info.value.code == -1013


async def test_bad_signature_and_unknown_key(env: Env) -> None:
    """A wrong secret is -1022, an unknown key -2015 (401): AuthenticationError, secret-free."""
    creds = await hmac_credentials(env.ex)
    forged = Credentials(creds.api_key, "not-the-secret-at-all")
    with pytest.raises(AuthenticationError) as info:
        await env.client(forged).account()
    assert (info.value.code, info.value.status) == (-1022, 400)
    secret_free(info.value, forged)
    stranger = Credentials("A" * 64, "whatever-secret")
    with pytest.raises(AuthenticationError) as info:
        await env.client(stranger).place_order({"symbol": SYMBOL, "side": "BUY"})
    assert (info.value.code, info.value.status) == (-2015, 401)
    private, _ = ed25519_pems()  # a key the exchange does not know for this account
    wrong = Credentials.ed25519((await ed25519_credentials(env.ex)).api_key, private)
    with pytest.raises(AuthenticationError) as info:
        await env.client(wrong).account()
    assert info.value.code == -1022
    secret_free(info.value, wrong)


async def test_ed25519_secret_that_is_no_key(env: Env) -> None:
    """Ed25519 credentials whose secret is no PEM key are refused before anything is sent."""
    with pytest.raises(ConfigurationError) as info:
        env.client(Credentials("KEY12345", "not a pem", "ED25519"))
    assert "not a pem" not in str(info.value)
    assert env.sent.requests == []


# -- the clock ------------------------------------------------------------------------------------


class Skewed:
    """A wall clock ``skew`` seconds off the real one; the test moves it."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def __call__(self) -> float:
        return time.time() + self.skew


async def test_offset_measured_and_remeasured_on_1021(env: Env) -> None:
    """A clock 30 s slow is corrected by the first measurement; when it then slips a further
    60 s the exchange answers -1021, the offset is measured again and the request sent once
    more, successfully."""
    creds = await hmac_credentials(env.ex)
    wall = Skewed(-30)
    api = env.client(creds, wall=wall)
    await api.account()
    assert api.offset_ms is not None and abs(api.offset_ms - 30_000) < 2_000
    assert api.counters == {"time_syncs": 1, "timestamp_retries": 0}
    wall.skew = -90
    account = await api.account()
    assert "balances" in account
    assert api.counters == {"time_syncs": 2, "timestamp_retries": 1}
    assert abs(api.offset_ms - 90_000) < 2_000
    assert env.sent.paths()[-3:] == ["/api/v3/account", "/api/v3/time", "/api/v3/account"]
    params = await resting_buy(api, env.ex, "after-resync")
    wall.skew = +30  # now 120 s ahead of the measured offset: the placement is refused, retried
    placed = await api.place_order(params)
    assert placed["status"] == "NEW"
    assert api.counters == {"time_syncs": 3, "timestamp_retries": 2}
    assert len(await env.ex.orders(creds.api_key)) == 1  # placed once


class Scripted:
    """A wall clock whose skew follows a script, one entry per reading (then the last)."""

    def __init__(self, skews: list[float]) -> None:
        self.skews = skews
        self.calls = 0

    def __call__(self) -> float:
        skew = self.skews[min(self.calls, len(self.skews) - 1)]
        self.calls += 1
        return time.time() + skew


async def test_second_1021_is_raised(env: Env) -> None:
    """If the request is refused again after the new measurement, InvalidTimestamp is raised:
    one retry, not a loop."""
    creds = await hmac_credentials(env.ex)
    # readings: sync (sent, received), timestamp, sync again (sent, received), timestamp
    wall = Scripted([0, 0, -60, 0, 0, -60])
    api = env.client(creds, wall=wall)
    with pytest.raises(InvalidTimestamp) as info:
        await api.account()
    assert info.value.code == -1021
    assert env.sent.paths() == ["/api/v3/time", "/api/v3/account"] * 2
    assert api.counters == {"time_syncs": 2, "timestamp_retries": 1}


async def test_recv_window_sent(env: Env) -> None:
    """recvWindow goes with every signed request: a timestamp 20 s old passes a 30 s window
    and is refused (twice: once more after measuring again) by the default 5 s one."""
    creds = await hmac_credentials(env.ex)
    wall = Scripted([0, 0, -20])  # measured right, then 20 s slow for good
    lenient = env.client(creds, wall=wall, recv_window=30_000)
    assert "balances" in await lenient.account()
    assert lenient.counters["timestamp_retries"] == 0
    strict = env.client(creds, wall=Scripted([0, 0, -20, 0, 0, -20]))
    with pytest.raises(InvalidTimestamp):
        await strict.account()
    with pytest.raises(ConfigurationError):
        env.client(creds, recv_window=60_001)


# -- errors from the exchange ---------------------------------------------------------------------


async def test_order_rejections(env: Env) -> None:
    """Unknown symbol, a filter failure (-1013) and insufficient balance (-2010) are
    OrderRejected, naming the symbol and client id, secret-free; nothing is placed."""
    creds = await hmac_credentials(env.ex, USDT="5", BTC="0")
    api = env.client(creds)
    base = await resting_buy(api, env.ex, "reject-1")
    cases = [
        ({**base, "symbol": "NOPE"}, -1121, "Invalid symbol."),
        ({**base, "price": base["price"] + "1"}, -1013, "Filter failure: PRICE_FILTER"),
        (base, -2010, "Account has insufficient balance for requested action."),
    ]
    for params, code, msg in cases:
        with pytest.raises(OrderRejected) as info:
            await api.place_order(params)
        err = info.value
        assert (err.code, err.msg, err.status) == (code, msg, 400)
        assert (err.symbol, err.client_order_id) == (params["symbol"], "reject-1")
        secret_free(err, creds)
    assert await env.ex.orders(creds.api_key) == []


async def test_cancel_and_query_unknown(env: Env) -> None:
    """Cancelling an unknown order is -2011, querying one -2013: both OrderNotFound."""
    api = env.client(await hmac_credentials(env.ex))
    with pytest.raises(OrderNotFound) as info:
        await api.cancel_order(SYMBOL, client_order_id="never-placed")
    assert (info.value.code, info.value.msg) == (-2011, "Unknown order sent.")
    assert info.value.client_order_id == "never-placed"
    with pytest.raises(OrderNotFound) as info:
        await api.query_order(SYMBOL, order_id=123456)
    assert (info.value.code, info.value.msg) == (-2013, "Order does not exist.")
    with pytest.raises(ValueError, match="client_order_id or order_id"):
        await api.query_order(SYMBOL)


@pytest.mark.parametrize(("status", "kind"), [(429, RateLimited), (418, IPBanned)])
async def test_retry_after_holds_every_request(env: Env, status: int, kind: type) -> None:
    """A 429/418 raises with its Retry-After; until it passes nothing at all is sent: a caller
    with max_wait 0 gets the same class at once (signed or not), one with a larger max_wait
    waits it out."""
    creds = await hmac_credentials(env.ex)
    impatient = env.client(creds, max_wait=0)
    await impatient.sync_time()
    env.ex.faults.rate_limit(status=status, retry_after=1)
    with pytest.raises(kind) as info:
        await impatient.account()
    assert (info.value.status, info.value.code, info.value.retry_after) == (status, -1003, 1)
    blocked_until = env.budget.blocked_until
    assert env.budget.banned == (status == 418)
    count = len(env.sent.requests)
    for call in (impatient.account(), impatient.ticker_price(SYMBOL)):
        with pytest.raises(kind) as local:
            await call
        assert local.value.status is None  # refused here
    assert len(env.sent.requests) == count
    patient = env.client(creds, max_wait=5)
    assert "balances" in await asyncio.wait_for(patient.account(), T)
    after = env.sent.requests[count:]
    assert [path for _, _, path in after] == ["/api/v3/time", "/api/v3/account"]
    assert all(at >= blocked_until for at, _, _ in after)


async def test_rate_limited_placement_waits_or_raises(env: Env) -> None:
    """Placement during Retry-After: RateLimited without sending (max_wait 0), or sent only once
    the block has passed; either way placed at most once."""
    creds = await hmac_credentials(env.ex)
    impatient = env.client(creds, max_wait=0)
    patient = env.client(creds, max_wait=5)
    params = await resting_buy(impatient, env.ex, "after-429")
    await impatient.sync_time()
    await patient.sync_time()
    env.ex.faults.rate_limit(status=429, retry_after=1)
    with pytest.raises(RateLimited) as first:
        await impatient.place_order(params)
    assert first.value.retry_after == 1
    blocked_until = env.budget.blocked_until
    count = len(env.sent.requests)
    with pytest.raises(RateLimited) as local:
        await impatient.place_order(params)
    assert local.value.status is None and 0 < (local.value.retry_after or 0) <= 1
    assert len(env.sent.requests) == count  # refused here, nothing sent
    placed = await asyncio.wait_for(patient.place_order(params), T)
    assert placed["status"] == "NEW"
    after = env.sent.requests[count:]
    assert [path for _, _, path in after] == ["/api/v3/order"]
    assert all(at >= blocked_until for at, _, _ in after)
    assert len(await env.ex.orders(creds.api_key)) == 1


# -- unknown outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "placed", "status", "code"),
    [
        ("order_5xx_placed", True, 500, -1001),
        ("order_5xx_not_placed", False, 500, -1001),
        ("order_1007_placed", True, 408, -1007),
        ("order_1007_not_placed", False, 408, -1007),
    ],
)
async def test_unknown_outcome_answers(
    env: Env, fault: str, placed: bool, status: int, code: int
) -> None:
    """5xx and -1007 answers are UnknownOrderStatus whether or not the order was placed; the
    query by client id then tells which."""
    creds = await hmac_credentials(env.ex)
    api = env.client(creds)
    params = await resting_buy(api, env.ex, f"unknown-{fault}")
    env.ex.faults.add_json({"kind": fault})
    with pytest.raises(UnknownOrderStatus) as info:
        await api.place_order(params)
    err = info.value
    assert (err.status, err.code) == (status, code)
    assert (err.symbol, err.client_order_id) == (SYMBOL, f"unknown-{fault}")
    secret_free(err, creds)
    if placed:
        found = await api.query_order(SYMBOL, client_order_id=f"unknown-{fault}")
        assert found["status"] == "NEW"
    else:
        with pytest.raises(OrderNotFound):
            await api.query_order(SYMBOL, client_order_id=f"unknown-{fault}")
    assert len(await env.ex.orders(creds.api_key)) == (1 if placed else 0)


@pytest.mark.parametrize("drop", [False, True])
async def test_timeout_after_sending(env: Env, drop: bool) -> None:
    """An answer held past the request timeout, or a connection dropped after the order was
    placed, is UnknownOrderStatus with the transport error as its cause; the order exists."""
    creds = await hmac_credentials(env.ex)
    api = env.client(creds)
    params = await resting_buy(api, env.ex, f"held-{drop}")
    await api.sync_time()
    env.ex.faults.order_timeout(2000 if not drop else 0, drop=drop)
    with pytest.raises(UnknownOrderStatus) as info:
        await api.place_order(params, timeout=0.5)
    cause = info.value.__cause__
    if drop:
        assert isinstance(cause, aiohttp.ClientError)
    else:
        assert isinstance(cause, TimeoutError)
    assert info.value.client_order_id == f"held-{drop}"
    found = await api.query_order(SYMBOL, client_order_id=f"held-{drop}")
    assert found["status"] == "NEW"


async def test_connection_refused_is_connect_error() -> None:
    """Nothing listening any more: ConnectError (the order was never sent), not
    UnknownOrderStatus."""
    creds = Credentials("KEY12345", "SECRET12345")
    connector = aiohttp.TCPConnector(force_close=True)  # no pooled connection to reuse
    async with aiohttp.ClientSession(connector=connector) as session:
        async with FakeExchange(symbols=[SYMBOL], rate=0) as ex:
            api = TradingRest(RestClient(ex.endpoints, WeightBudget(), session), creds)
            await api.sync_time()
        with pytest.raises(ConnectError) as info:
            await api.place_order({"symbol": SYMBOL, "newClientOrderId": "refused"})
        assert info.value.client_order_id == "refused"
        assert not isinstance(info.value, UnknownOrderStatus)
        secret_free(info.value, creds)
