"""Conformance: the real mainnet order flow of tests/data, replayed against the local exchange.

``spot-user-order-flow-2021-10-23.jsonl`` holds a maker and a taker LIMIT order on LTCUSDT: the
REST request, Binance's REST response and the user-stream events it sent. We send the same
requests (prices moved into the local book, which has its own made-up prices) and check that every
field Binance sent is there with the same JSON type and the same meaning. Fields Binance added
since 2021 may be extra.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.sansio.signing import encode_params, hmac_sign, wsapi_payload
from streamer.testing import FakeExchange
from tests.conftest import DATA

T = 10.0  # the one bound on every wait in this module
Json = dict[str, Any]


def recorded() -> dict[str, list[Json]]:
    """Per scenario, the records in file order."""
    out: dict[str, list[Json]] = {}
    for line in (DATA / "spot-user-order-flow-2021-10-23.jsonl").read_text().splitlines():
        record = json.loads(line)
        out.setdefault(record["scenario"], []).append(record)
    return out


def types_of(obj: Json) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in obj.items()}


def conforms(ours: Json, theirs: Json) -> None:
    """Every key Binance sent is present in ours with the same JSON type."""
    missing = theirs.keys() - ours.keys()
    assert not missing, f"missing fields {sorted(missing)}"
    mine = types_of(ours)
    wrong = {k: (t, mine[k]) for k, t in types_of(theirs).items() if mine[k] != t}
    assert not wrong, f"fields of another JSON type (theirs, ours): {wrong}"


class UserStream:
    """A WS-API session subscribed with userDataStream.subscribe.signature (HMAC)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[Json] = []
        self.arrived = asyncio.Event()

    async def subscribe(self, api_key: str, secret: str) -> None:
        params: Json = {"apiKey": api_key, "timestamp": time.time_ns() // 1_000_000}
        params["signature"] = hmac_sign(secret, wsapi_payload(params))
        request = {"id": "sub", "method": "userDataStream.subscribe.signature", "params": params}
        await self.ws.send(orjson.dumps(request).decode())
        reply = orjson.loads(await asyncio.wait_for(self.ws.recv(), T))
        assert reply["status"] == 200 and isinstance(reply["result"]["subscriptionId"], int)

    async def read(self) -> None:
        async for frame in self.ws:
            msg = orjson.loads(frame)
            if "event" in msg:
                self.events.append(msg["event"])
                self.arrived.set()

    async def until(self, kind: str, status: str | None = None) -> Json:
        async def scan() -> Json:
            while True:
                for event in self.events:
                    if event["e"] == kind and (status is None or event.get("X") == status):
                        return event
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(scan(), T)


@pytest.fixture
async def exchange() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=["LTCUSDT"], seed=5, rate=0) as ex:
        yield ex


async def place(
    session: aiohttp.ClientSession, ex: FakeExchange, keys: Json, body: str
) -> tuple[int, Json]:
    """POST /api/v3/order with ``body`` (recorded params) plus timestamp and signature."""
    params = [*parse_qsl(body), ("timestamp", str(time.time_ns() // 1_000_000))]
    payload = encode_params(params)
    signed = f"{payload}&signature={hmac_sign(keys['secretKey'], payload)}"
    headers = {
        "X-MBX-APIKEY": keys["apiKey"],
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with session.post(f"{ex.endpoints.rest}/api/v3/order", data=signed, headers=headers) as r:
        return r.status, await r.json()


def with_params(body: str, **changes: str) -> str:
    params = dict(parse_qsl(body))
    params.update(changes)
    return encode_params(params)


async def test_real_maker_and_taker_flow_conforms(exchange: FakeExchange) -> None:
    """Binance's recorded REST answers and user events for a maker and a taker order, field by
    field: our answers carry every field with the same JSON type and the same outcome."""
    flows = recorded()
    maker_keys = await exchange.create_account()
    taker_keys = await exchange.create_account()
    book = await exchange.book("LTCUSDT")
    best_bid = Decimal(book["bids"][0][0])
    resting = sum(Decimal(q) for p, q in book["bids"] if Decimal(p) >= best_bid)
    price = f"{best_bid:f}"  # the maker joins the best bid, behind the orders already there
    async with (
        aiohttp.ClientSession() as session,
        connect(exchange.endpoints.ws_api, proxy=None) as maker_ws,
        connect(exchange.endpoints.ws_api, proxy=None) as taker_ws,
    ):
        maker, taker = UserStream(maker_ws), UserStream(taker_ws)
        await maker.subscribe(maker_keys["apiKey"], maker_keys["secretKey"])
        await taker.subscribe(taker_keys["apiKey"], taker_keys["secretKey"])
        readers = [asyncio.create_task(s.read()) for s in (maker, taker)]
        try:
            # MAKER: the recorded BUY, at a price that rests in our book.
            request, response, new, position, trade, _ = flows["MAKER"]
            body = with_params(request["body"], price=price)
            status, answer = await place(session, exchange, maker_keys, body)
            assert status == response["status"] == 200
            conforms(answer, response["json"])
            assert (answer["status"], answer["fills"]) == ("NEW", [])
            assert answer["clientOrderId"] == dict(parse_qsl(body))["newClientOrderId"]
            report = await maker.until("executionReport", "NEW")
            conforms(report, new["json"]["data"])
            account = await maker.until("outboundAccountPosition")
            conforms(account, position["json"]["data"])
            conforms(account["B"][0], position["json"]["data"]["B"][0])

            # TAKER: the recorded SELL, sized to take everything down to the maker's order.
            request, response, t_new, t_trade, t_position = flows["TAKER"]
            quantity = f"{resting + Decimal('0.1'):f}"
            body = with_params(request["body"], price=price, quantity=quantity)
            status, answer = await place(session, exchange, taker_keys, body)
            assert status == 200
            conforms(answer, response["json"])
            assert answer["status"] == "FILLED" and answer["fills"]
            conforms(answer["fills"][0], {"price": "", "qty": "", "commission": "", "tradeId": 1})
            conforms(await taker.until("executionReport", "NEW"), t_new["json"]["data"])
            taken = await taker.until("executionReport", "FILLED")
            conforms(taken, t_trade["json"]["data"])
            assert (taken["x"], taken["m"]) == ("TRADE", False)
            conforms(await taker.until("outboundAccountPosition"), t_position["json"]["data"])

            filled = await maker.until("executionReport", "FILLED")
            conforms(filled, trade["json"]["data"])
            assert (filled["x"], filled["m"], filled["z"]) == ("TRADE", True, "0.10000000")
            assert filled["t"] >= 0 and filled["i"] == report["i"]
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
