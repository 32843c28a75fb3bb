"""python-binance, unmodified, against the local exchange (design §4.6): only base URLs change.

Driven through python-binance (``AsyncClient`` and ``BinanceSocketManager`` subclassed to set
``API_URL``, ``WS_API_URL`` and ``STREAM_URL``, nothing else):

* ``AsyncClient.create``: ``GET /api/v3/ping`` and ``GET /api/v3/time``;
* ``DepthCacheManager``: its REST snapshots (``GET /api/v3/depth``) and its diff socket
  (``/ws/btcusdt@depth@100ms``, through ``BinanceSocketManager.depth_socket``), read with
  ``recv()`` until its cache equals the exchange's true book once the market is paused;
* orders over REST, HMAC-signed by python-binance: ``create_order``, ``get_order``,
  ``cancel_order``; and over the WebSocket API: ``ws_create_order``, ``ws_get_order``,
  ``ws_cancel_order``;
* the user stream: ``BinanceSocketManager.user_socket()``, which since python-binance 1.0.30
  subscribes with ``userDataStream.subscribe.signature`` on its own WebSocket API connection
  (protocol §3.1); the executionReports are read with its ``recv()``;
* the retired listenKey endpoint: ``stream_get_listen_key()`` fails with HTTP 410, as on
  Binance since 2026-02-20 (protocol §3.2).

Not through python-binance: pausing the market and reading the truth (``ex.pause()``,
``ex.book()``, ``ex.orders()``, ``ex.balances()``); a wrapper around the client's
``get_order_book`` that counts the snapshots the depth cache takes; and one class constant:
``ReconnectingWebsocket.TIMEOUT`` is lowered from 10 s, because python-binance's read loop
notices ``close()`` only when a frame arrives or its receive times out, so closing a quiet
socket would otherwise take 10 s. (The same constant bounds a WS-API request's wait.)
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from streamer.config import Endpoints
from streamer.testing.exchange.server import FakeExchange

# python-binance imports the legacy websockets API at import time; these two warnings are its
# own, raised while this module is collected (where no filterwarnings mark applies).
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", "websockets.WebSocketClientProtocol is deprecated", DeprecationWarning
    )
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager, DepthCacheManager
    from binance.exceptions import BinanceAPIException
    from binance.ws.depthcache import DepthCache
    from binance.ws.keepalive_websocket import KeepAliveWebsocket
    from binance.ws.reconnecting_websocket import ReconnectingWebsocket

T = 5.0  # the one bound on every wait in this module
SYMBOL = "BTCUSDT"
TOP = 20  # levels compared on each side
Json = dict[str, Any]


@pytest.fixture(autouse=True)
def prompt_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-binance's read loops wake (and so notice a close) at least every T / 2 seconds."""
    monkeypatch.setattr(ReconnectingWebsocket, "TIMEOUT", T / 2)


def local_classes(
    endpoints: Endpoints,
) -> tuple[type[AsyncClient], type[BinanceSocketManager]]:
    """python-binance's client and socket manager with only their base URLs changed."""

    class LocalClient(AsyncClient):
        API_URL = f"{endpoints.rest}/api"
        WS_API_URL = endpoints.ws_api

    class LocalSockets(BinanceSocketManager):
        STREAM_URL = f"{endpoints.ws}/"

    return LocalClient, LocalSockets


@asynccontextmanager
async def python_binance(
    ex: FakeExchange, keys: Json
) -> AsyncIterator[tuple[AsyncClient, BinanceSocketManager]]:
    """A connected python-binance client (it pings and reads the time) and its socket manager."""
    client_class, sockets_class = local_classes(ex.endpoints)
    async with asyncio.timeout(T):
        client = await client_class.create(keys["apiKey"], keys["secretKey"])
    try:
        yield client, sockets_class(client)
    finally:
        async with asyncio.timeout(T):
            await client.close_connection()


def top(levels: list[list[Any]]) -> list[list[Decimal]]:
    """The first TOP levels as exact numbers."""
    return [[Decimal(price), Decimal(qty)] for price, qty in levels[:TOP]]


async def applied(dcm: DepthCacheManager) -> DepthCache:
    """The cache after python-binance applied its next diff (an error event fails the test)."""
    cache = await dcm.recv()
    assert isinstance(cache, DepthCache), cache
    return cache


async def report(user: KeepAliveWebsocket, order_id: int, status: str) -> Json:
    """The next executionReport of ``order_id`` with ``status``, read through python-binance."""
    async with asyncio.timeout(T):
        while True:
            event = await user.recv()
            assert event.get("e") != "error", event
            if event.get("e") == "executionReport" and (event["i"], event["X"]) == (
                order_id,
                status,
            ):
                return event


async def limit_price(ex: FakeExchange) -> str:
    """A BUY price well below the book, that rests and passes PERCENT_PRICE."""
    best_bid = Decimal((await ex.book(SYMBOL))["bids"][0][0])
    return str((best_bid * Decimal("0.8")).quantize(Decimal("0.01")))


async def test_depth_cache_converges_to_the_true_book() -> None:
    """DepthCacheManager, synced from REST and diffs, equals /_fake/book once paused."""
    async with FakeExchange(symbols=[SYMBOL, "ETHUSDT"], seed=11) as ex:
        keys = await ex.create_account()
        async with python_binance(ex, keys) as (client, sockets):
            snapshots: list[int] = []
            fetch = client.get_order_book

            async def counted_fetch(**params: Any) -> Json:
                answer: Json = await fetch(**params)
                snapshots.append(answer["lastUpdateId"])
                return answer

            client.get_order_book = counted_fetch
            dcm = DepthCacheManager(client, SYMBOL, bm=sockets, ws_interval=100, conv_type=Decimal)
            async with dcm:
                async with asyncio.timeout(T):
                    await applied(dcm)  # a snapshot and the first diff that follows it
                    # Apply diffs until the market has moved past python-binance's snapshot.
                    while (await ex.book(SYMBOL))["lastUpdateId"] <= snapshots[-1]:
                        await applied(dcm)
                await ex.pause()
                book = await ex.book(SYMBOL)
                truth = top(book["bids"]), top(book["asks"])
                # The stream catches up with the paused book (protocol §9.12).
                cache = dcm.get_depth_cache()
                async with asyncio.timeout(T):
                    while (top(cache.get_bids()), top(cache.get_asks())) != truth:
                        cache = await applied(dcm)
                # Diffs keep python-binance's read loop awake, so the close is prompt.
                await ex.resume()
        assert cache.get_bids()[0] == [Decimal(x) for x in book["bids"][0]]
        assert cache.get_asks()[0] == [Decimal(x) for x in book["asks"][0]]
        # python-binance snapshots once, and again only if its first diff does not follow on;
        # a later gap in the diff stream would show as one more snapshot, hiding the gap.
        assert 1 <= len(snapshots) <= 2, snapshots
        assert book["lastUpdateId"] > snapshots[-1], "the cache is more than a snapshot"


async def test_listen_key_endpoint_is_gone() -> None:
    """python-binance's listenKey call fails with HTTP 410, as the retired endpoint does."""
    async with FakeExchange(symbols=[SYMBOL], seed=12, rate=0) as ex:
        keys = await ex.create_account()
        async with python_binance(ex, keys) as (client, _):
            with pytest.raises(BinanceAPIException) as failure:
                await client.stream_get_listen_key()
    assert failure.value.status_code == 410


async def test_rest_order_lifecycle_seen_on_the_user_stream() -> None:
    """REST create/get/cancel via python-binance; its user socket gets NEW then CANCELED."""
    async with FakeExchange(symbols=[SYMBOL, "ETHUSDT"], seed=13, rate=0) as ex:
        keys = await ex.create_account()
        price = await limit_price(ex)
        async with python_binance(ex, keys) as (client, sockets):
            user = sockets.user_socket()
            async with user:  # userDataStream.subscribe.signature over python-binance's WS-API
                placed = await client.create_order(
                    symbol=SYMBOL,
                    side="BUY",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.5",
                    price=price,
                )
                order_id = placed["orderId"]
                assert placed["status"] == "NEW"
                new = await report(user, order_id, "NEW")
                assert (new["c"], new["p"], new["q"]) == (
                    placed["clientOrderId"],
                    placed["price"],
                    "0.50000000",
                )
                queried = await client.get_order(symbol=SYMBOL, orderId=order_id)
                assert queried["status"] == "NEW"
                locked = (await ex.balances(keys["apiKey"]))["USDT"]["locked"]
                assert Decimal(locked) == Decimal(price) / 2
                canceled = await client.cancel_order(symbol=SYMBOL, orderId=order_id)
                assert canceled["status"] == "CANCELED"
                gone = await report(user, order_id, "CANCELED")
                assert gone["C"] == placed["clientOrderId"]
    (order,) = await ex.orders(keys["apiKey"])
    assert (order["orderId"], order["status"]) == (order_id, "CANCELED")
    assert order["clientOrderId"] == placed["clientOrderId"]


async def test_ws_api_order_lifecycle_seen_on_the_user_stream() -> None:
    """WS-API place/status/cancel via python-binance; its user socket gets NEW then CANCELED."""
    async with FakeExchange(symbols=[SYMBOL, "ETHUSDT"], seed=14, rate=0) as ex:
        keys = await ex.create_account()
        price = await limit_price(ex)
        async with python_binance(ex, keys) as (client, sockets):
            user = sockets.user_socket()
            async with user:  # python-binance bounds each WS-API request by its TIMEOUT
                placed = await client.ws_create_order(
                    symbol=SYMBOL,
                    side="BUY",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.25",
                    price=price,
                )
                order_id = placed["orderId"]
                assert placed["status"] == "NEW"
                await report(user, order_id, "NEW")
                queried = await client.ws_get_order(symbol=SYMBOL, orderId=order_id)
                assert queried["status"] == "NEW"
                canceled = await client.ws_cancel_order(symbol=SYMBOL, orderId=order_id)
                assert canceled["status"] == "CANCELED"
                await report(user, order_id, "CANCELED")
    (order,) = await ex.orders(keys["apiKey"])
    assert (order["orderId"], order["status"]) == (order_id, "CANCELED")
