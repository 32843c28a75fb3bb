"""The pure stream helpers against the local exchange over real sockets: names, URLs, replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.sansio.ratelimit import MessagePacer
from streamer.sansio.streams import (
    ControlReply,
    combined_url,
    depth_stream,
    parse_control_reply,
    subscribe_message,
    symbol_of,
)
from streamer.sansio.wire import Venue
from streamer.testing.exchange.server import FakeExchange

T = 5.0  # the one bound on every wait in this module


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=["BTCUSDT", "ETHUSDT"], seed=5, rate=2000) as ex:
        yield ex


def open_ws(url: str) -> Any:
    return connect(url, proxy=None, compression=None, max_size=None, max_queue=None)


async def next_reply(ws: ClientConnection) -> ControlReply:
    """The next control reply on ``ws``, skipping data frames."""

    async def scan() -> ControlReply:
        while True:
            reply = parse_control_reply(orjson.loads(await ws.recv()))
            if reply is not None:
                return reply

    return await asyncio.wait_for(scan(), T)


async def test_replies_of_the_exchange_parse_in_both_error_forms(exchange: FakeExchange) -> None:
    """The exchange's success, wrapped-error and flat-error replies all parse to ControlReply."""
    async with open_ws(combined_url(exchange.endpoints.ws, [])) as ws:
        await ws.send(subscribe_message("SUBSCRIBE", [depth_stream("BTCUSDT")], 1).decode())
        assert await next_reply(ws) == ControlReply(1, True, None, "")
        await ws.send(subscribe_message("SUBSCRIBE", ["btcusdt@nope"], 2).decode())
        wrapped = await next_reply(ws)
        assert (wrapped.id, wrapped.ok, wrapped.code) == (2, False, 2)
        await ws.send(
            orjson.dumps({"method": "GET_PROPERTY", "params": ["nope"], "id": 3}).decode()
        )
        assert await next_reply(ws) == ControlReply(3, False, 0, "Unknown property")
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}).decode())
        listed = await next_reply(ws)
        assert listed.ok and listed.result == ["btcusdt@depth@100ms"]


async def test_a_combined_url_delivers_exactly_its_streams(exchange: FakeExchange) -> None:
    """Data arrives on the named streams only, each routed to its symbol by symbol_of."""
    streams = [depth_stream("BTCUSDT"), depth_stream("ETHUSDT")]
    seen: set[str] = set()
    async with open_ws(combined_url(exchange.endpoints.ws, streams)) as ws:

        async def collect() -> None:
            while len(seen) < 2:
                msg = orjson.loads(await ws.recv())
                assert parse_control_reply(msg) is None
                assert msg["stream"] in streams
                assert symbol_of(msg["stream"]) == msg["data"]["s"]
                seen.add(msg["stream"])

        await asyncio.wait_for(collect(), T)
    assert seen == set(streams)


async def test_paced_control_messages_keep_the_connection_open(exchange: FakeExchange) -> None:
    """Messages spaced by MessagePacer stay under the 5/s rule that disconnects a burst."""
    pacer = MessagePacer.for_venue(Venue.SPOT)
    loop = asyncio.get_running_loop()
    count = 8  # a burst of 6 would be disconnected (tests/integration/test_exchange_streams.py)
    async with open_ws(combined_url(exchange.endpoints.ws, [])) as ws:
        for i in range(count):
            # Waiting out the pacer's delay is the behaviour under test, not a wait for a state.
            await asyncio.sleep(pacer.delay(loop.time()))
            method = "SUBSCRIBE" if i % 2 == 0 else "UNSUBSCRIBE"
            await ws.send(subscribe_message(method, ["btcusdt@trade"], i).decode())
            pacer.sent(loop.time())
        replies = [await next_reply(ws) for _ in range(count)]
    assert [(r.id, r.ok) for r in replies] == [(i, True) for i in range(count)]
    assert exchange.hub.stats.rate_limit_disconnects == 0
