"""Replay of the real mainnet order flow through the tracker (issue 7, "Bad input and faults").

``tests/data/spot-user-order-flow-2021-10-23.jsonl``: two LTCUSDT LIMIT orders, a maker BUY that
rests then fills and a taker SELL that fills on arrival, with their REST requests and answers and
the user-stream frames (the legacy listenKey envelope ``{"stream", "data"}``: ``data`` is the
event). Replayed as recorded (each REST answer before its order's events) and with every answer
moved after its order's events; both must end in the same orders, fills and balances.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest

from streamer.order_models import Balance, Fill, Order, OrderStatus, OrderUpdate
from streamer.sansio.orders import OrderTracker
from tests.conftest import DATA

FLOW = DATA / "spot-user-order-flow-2021-10-23.jsonl"
MAKER, TAKER = "JQAC6QMAAQAAv957tzEX", "swAC6QMAAQAAiLvZ0TEX"


def _records(events_first: bool) -> list[dict[str, Any]]:
    """The capture's records; with ``events_first`` each REST answer follows its ws frames."""
    records = [json.loads(line) for line in FLOW.read_text().splitlines()]
    if not events_first:
        return records
    out: list[dict[str, Any]] = []
    held: dict[str, Any] | None = None
    for record in records:
        if record["kind"] == "rest_response":
            held = record
            continue
        if record["kind"] == "rest_request" and held is not None:
            out.append(held)  # the previous scenario's answer, after all its frames
            held = None
        out.append(record)
    assert held is not None
    out.append(held)
    return out


def _replay(events_first: bool) -> OrderTracker:
    tracker = OrderTracker()
    for record in _records(events_first):
        if record["kind"] == "rest_request":
            assert (record["method"], record["path"]) == ("POST", "/api/v3/order")
            params = dict(parse_qsl(record["body"]))
            tracker.create(
                symbol=params["symbol"],
                side=params["side"],
                type=params["type"],
                quantity=Decimal(params["quantity"]),
                price=Decimal(params["price"]),
                time_in_force=params["timeInForce"],
                client_order_id=params["newClientOrderId"],
            )
        elif record["kind"] == "rest_response":
            assert record["status"] == 200
            tracker.receive_rest_order(record["json"])
        else:
            assert json.loads(record["raw"]) == record["json"]
            tracker.receive_event(record["json"]["data"])
    return tracker


def _order(cid: str, side: str, order_id: int, price: str, quote: str, time: int) -> Order:
    return Order(
        symbol="LTCUSDT",
        client_order_id=cid,
        side=side,
        type="LIMIT",
        status=OrderStatus.FILLED,
        quantity=Decimal("0.1"),
        price=Decimal(price),
        time_in_force="GTC",
        order_id=order_id,
        executed_qty=Decimal("0.1"),
        cumulative_quote_qty=Decimal(quote),
        update_time=time,
        working=False,
    )


MAKER_ORDER = _order(MAKER, "BUY", 2428636529, "193.4", "19.34", 1634961663038)
TAKER_ORDER = _order(TAKER, "SELL", 2428648201, "193.8", "19.38", 1634961941676)


@pytest.mark.parametrize("events_first", [False, True], ids=["rest-first", "events-first"])
def test_the_real_flow_ends_in_the_same_orders_fills_and_balances(events_first: bool) -> None:
    """Both orders FILLED as the exchange said, each fill once with its real BNB commission, and
    the last balances, whichever of answer and events came first."""
    tracker = _replay(events_first)
    assert tracker.orders() == [MAKER_ORDER, TAKER_ORDER]
    assert tracker.open_orders() == []
    taker_source = "stream" if events_first else "rest"
    assert tracker.fills(MAKER) == [
        Fill("LTCUSDT", MAKER, 2428636529, 207223058, Decimal("193.4"), Decimal("0.1"),
             Decimal("0.00003014"), "BNB", 1634961663038, True, "stream"),
    ]  # fmt: skip
    assert tracker.fills(TAKER) == [
        Fill("LTCUSDT", TAKER, 2428648201, 207223511, Decimal("193.8"), Decimal("0.1"),
             Decimal("0.00003016"), "BNB", 1634961941676, False, taker_source),
    ]  # fmt: skip
    last = 1634961941676
    assert tracker.balances() == {
        "LTC": Balance("LTC", Decimal(0), Decimal(0), last, "stream"),
        "BNB": Balance("BNB", Decimal("0.00017113"), Decimal(0), last, "stream"),
        "USDT": Balance("USDT", Decimal("21.18364261"), Decimal(0), last, "stream"),
    }
    assert tracker.last_trade_id("LTCUSDT") == 207223511
    counters = tracker.counters
    assert (counters.malformed, counters.unknown_events, counters.corrections) == (0, 0, 0)
    # one duplicate fill (the taker trade, in the FULL answer and its report) and one stale
    # fact (the answer or report saying NEW after FILLED was known)
    assert (counters.duplicate_fills, counters.stale_ignored) == (1, 1)


@pytest.mark.parametrize(
    ("events_first", "expected"),
    [
        (
            False,
            [
                (MAKER, None, "SENT", "local"),
                (MAKER, "SENT", "NEW", "rest"),
                (MAKER, "NEW", "FILLED", "stream"),
                (TAKER, None, "SENT", "local"),
                (TAKER, "SENT", "FILLED", "rest"),
            ],
        ),
        (
            True,
            [
                (MAKER, None, "SENT", "local"),
                (MAKER, "SENT", "NEW", "stream"),
                (MAKER, "NEW", "FILLED", "stream"),
                (TAKER, None, "SENT", "local"),
                (TAKER, "SENT", "NEW", "stream"),
                (TAKER, "NEW", "FILLED", "stream"),
            ],
        ),
    ],
    ids=["rest-first", "events-first"],
)
def test_the_real_flow_emits_each_change_once_and_never_backwards(
    events_first: bool, expected: list[tuple[str, str | None, str, str]]
) -> None:
    """The OrderUpdates are exactly the forward changes, each from the source that told first;
    each trade's Fill comes before the update that its fact caused."""
    events = _replay(events_first).events()
    got = [
        (e.order.client_order_id, e.previous, e.order.status, e.source)
        for e in events
        if isinstance(e, OrderUpdate)
    ]
    assert got == expected
    kinds = [
        (type(e).__name__, e.order.status if isinstance(e, OrderUpdate) else None)
        for e in events
        if not isinstance(e, Balance)
    ]
    assert kinds.index(("Fill", None)) == kinds.index(("OrderUpdate", OrderStatus.FILLED)) - 1
    assert sum(isinstance(e, Balance) for e in events) == 9  # 3 positions, 3 assets changed each
