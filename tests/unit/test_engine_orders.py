"""The engine's stop orders, LIMIT_MAKER rejections and commissions (protocol §3.3, §4.3, §4.4)."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from streamer.testing.exchange.engine import (
    NO_FEES,
    Commission,
    Engine,
    EngineError,
    EngineOutput,
    SymbolInfo,
    fmt,
)
from streamer.testing.exchange.symbols import load_exchange_info, symbol_infos
from tests.engine_events import positions, reports

D = Decimal
SYMBOLS = ["BTCUSDT", "ETHBTC", "BNBUSDT"]
INFOS = symbol_infos(load_exchange_info(), SYMBOLS)
TICK = D("0.01")  # BTCUSDT
RICH = {"BTC": D("100"), "USDT": D("1000000"), "ETH": D("1000"), "BNB": D("10000")}
EIGHT = D("1E-8")
QTY = D("0.1")
STOPS = ["STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
# Every stop type on both sides.
CASES = [(kind, side) for kind in STOPS for side in ("BUY", "SELL")]


def new_engine(seed: int = 1, levels: int = 10) -> Engine:
    return Engine(INFOS, seed=seed, levels=levels)


def place(engine: Engine, account: int, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": QTY,
        "price": None,
        "time_in_force": "GTC",
        "client_order_id": None,
        "now_ms": 1_000,
    }
    args.update(kw)
    return engine.place_order(account, **args)


def last(engine: Engine) -> Decimal:
    return D(engine.last_price("BTCUSDT"))


def falls(kind: str, side: str) -> bool:
    """SELL STOP_LOSS and BUY TAKE_PROFIT trigger when the price falls to the stop."""
    return kind.startswith("STOP_LOSS") == (side == "SELL")


def stop_args(engine: Engine, kind: str, side: str, ticks: int = 3) -> dict[str, Any]:
    """A stop ``ticks`` away from the last price on the side it waits for; marketable limit."""
    stop = last(engine) + (-ticks if falls(kind, side) else ticks) * TICK
    args: dict[str, Any] = {"order_type": kind, "side": side, "stop_price": stop}
    if kind.endswith("_LIMIT"):
        args["price"] = stop + (5 if side == "BUY" else -5) * TICK
    else:
        args["time_in_force"] = None
    return args


def sweep(engine: Engine, account: int, *, down: bool, ticks: int, now_ms: int) -> None:
    """Another user takes every level up to ``ticks`` from the last price (an IOC)."""
    price = last(engine) + (-ticks if down else ticks) * TICK
    place(
        engine,
        account,
        side="SELL" if down else "BUY",
        price=price,
        quantity=D("90"),
        time_in_force="IOC",
        now_ms=now_ms,
    )


def query(engine: Engine, account: int, order_id: int) -> dict[str, Any]:
    return engine.get_order(account, symbol="BTCUSDT", order_id=order_id, orig_client_order_id=None)


def totals(engine: Engine) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for account in engine.account_ids():
        for asset, (free, locked) in engine.balances(account).items():
            out[asset] += free + locked
    return {asset: total for asset, total in out.items() if total}


# --- stop orders: placement ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "side"), CASES)
def test_a_stop_order_waits_not_working_with_its_stop_price(kind: str, side: str) -> None:
    """Placed NEW and not working: RESULT has stopPrice and workingTime -1, the report w=false
    with P and no W, the query isWorking false; the book does not change; funds are locked."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    update_id = e.last_update_id("BTCUSDT")
    e.drain()
    args = stop_args(e, kind, side)
    resp = place(e, owner, resp_type="RESULT", client_order_id="stop-1", now_ms=5_000, **args)
    assert (resp["status"], resp["type"], resp["side"]) == ("NEW", kind, side)
    assert (resp["stopPrice"], resp["workingTime"]) == (fmt(args["stop_price"]), -1)
    assert list(resp)[-3:] == ["stopPrice", "workingTime", "selfTradePreventionMode"]
    out = e.drain()
    assert out.diffs == [] and out.trades == [] and e.last_update_id("BTCUSDT") == update_id
    (report,) = reports(out, owner)
    assert (report["x"], report["X"], report["o"], report["w"]) == ("NEW", "NEW", kind, False)
    assert report["P"] == fmt(args["stop_price"])
    assert report["f"] == (args.get("time_in_force") or "GTC")
    assert "W" not in report and report["p"] == fmt(args.get("price") or D(0))
    order = query(e, owner, resp["orderId"])
    assert (order["isWorking"], order["workingTime"], order["stopPrice"]) == (
        False,
        -1,
        fmt(args["stop_price"]),
    )
    assert e.open_orders(owner, "BTCUSDT") == [order]
    # Locked: a SELL its quantity; a BUY its cost at its limit price (market variants: stop).
    if side == "SELL":
        assert e.balances(owner)["BTC"] == (RICH["BTC"] - QTY, QTY)
    else:
        cost = ((args.get("price") or args["stop_price"]) * QTY).quantize(EIGHT, ROUND_CEILING)
        assert e.balances(owner)["USDT"] == (RICH["USDT"] - cost, cost)


@pytest.mark.parametrize(("kind", "side"), CASES)
@pytest.mark.parametrize("at", ["beyond", "equal"])
def test_a_stop_that_would_trigger_at_once_is_rejected(kind: str, side: str, at: str) -> None:
    """A stop already reached by the last price (or equal to it) is -2010 "Order would trigger
    immediately." (r = STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY): no event, no lock, no change."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    e.drain()
    args = stop_args(e, kind, side)
    ticks = 0 if at == "equal" else 2
    args["stop_price"] = last(e) + (ticks if falls(kind, side) else -ticks) * TICK
    if kind.endswith("_LIMIT"):
        args["price"] = args["stop_price"]
    with pytest.raises(EngineError) as err:
        place(e, owner, **args)
    assert (err.value.code, err.value.msg) == (-2010, "Order would trigger immediately.")
    assert e.drain() == EngineOutput([], [], [])
    assert e.balances(owner)["USDT"] == (RICH["USDT"], D(0))
    assert e.balances(owner)["BTC"] == (RICH["BTC"], D(0))
    assert e.open_orders(owner, None) == []


# --- stop orders: triggering -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "side"), CASES)
def test_a_user_trade_through_the_stop_triggers_it(kind: str, side: str) -> None:
    """Another user's order trading at or through the stop triggers it in the same operation
    (one update id): a NEW report with w (false for the market variants) and W, then fills."""
    e = new_engine()
    owner, other = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    args = stop_args(e, kind, side)
    placed = place(e, owner, client_order_id="stop-2", now_ms=5_000, **args)
    e.drain()
    update_id = e.last_update_id("BTCUSDT")
    sweep(e, other, down=falls(kind, side), ticks=4, now_ms=9_000)
    assert e.last_update_id("BTCUSDT") == update_id + 1
    out = e.drain()
    got = reports(out, owner)
    market = not kind.endswith("_LIMIT")
    trigger = got[0]
    assert (trigger["x"], trigger["X"], trigger["o"], trigger["i"]) == (
        "NEW",
        "NEW",
        kind,
        placed["orderId"],
    )
    assert (trigger["w"], trigger["W"], trigger["E"], trigger["O"]) == (
        not market,
        9_000,
        9_000,
        5_000,
    )
    assert trigger["P"] == fmt(args["stop_price"]) and trigger["c"] == "stop-2"
    trades = [r for r in got[1:] if r["x"] == "TRADE"]
    assert trades and all(not r["m"] for r in trades)  # it takes liquidity once triggered
    assert D(trades[-1]["z"]) == sum(D(r["l"]) for r in trades)
    mine = {
        t.trade_id for t in out.trades if placed["orderId"] in (t.buyer_order_id, t.seller_order_id)
    }
    assert {r["t"] for r in trades} == mine
    order = query(e, owner, placed["orderId"])
    assert (order["isWorking"], order["workingTime"], order["updateTime"]) == (True, 9_000, 9_000)
    assert order["status"] in ("FILLED", "PARTIALLY_FILLED") and order["stopPrice"] == trigger["P"]
    if market:  # a MARKET order: fills or expires, never rests
        assert order["status"] == "FILLED"


@pytest.mark.parametrize(("kind", "side"), CASES)
def test_the_simulated_market_triggers_stops_inside_its_steps(kind: str, side: str) -> None:
    """Market flow alone (Engine.step) triggers a stop two ticks beyond the touch; the trigger
    report comes out of a step's drain."""
    e = new_engine(seed=3)
    owner = e.create_account(RICH, NO_FEES)
    args = stop_args(e, kind, side, ticks=2)
    placed = place(e, owner, **args)
    e.drain()
    now = 10_000
    triggered = None
    for _ in range(3_000):
        now += 10
        e.step(now, 10)
        got = reports(e.drain(), owner)
        if got:
            triggered = got[0]
            break
    assert triggered is not None, "the market never reached the stop"
    assert (triggered["x"], triggered["i"], triggered["W"]) == ("NEW", placed["orderId"], now)
    assert query(e, owner, placed["orderId"])["isWorking"]


def test_a_sweep_triggers_every_stop_it_passed_even_if_the_price_came_back() -> None:
    """A stop triggers when any trade of the operation reached it: a BUY sweep up to +4 ticks
    triggers a TAKE_PROFIT SELL at +2 whose market sell brings the price back down, and a
    STOP_LOSS BUY at +3 still triggers (cascade inside one operation)."""
    e = new_engine()
    a, b, other = (e.create_account(RICH, NO_FEES) for _ in range(3))
    start = last(e)
    sell = place(
        e, a, order_type="TAKE_PROFIT", side="SELL", quantity=D("2"), time_in_force=None,
        stop_price=start + 2 * TICK,
    )  # fmt: skip
    buy = place(
        e, b, order_type="STOP_LOSS", side="BUY", time_in_force=None, stop_price=start + 3 * TICK
    )
    e.drain()
    sweep(e, other, down=False, ticks=4, now_ms=2_000)
    out = e.drain()
    events = [(u.account_id, u.event) for u in out.user_events if u.event["e"] == "executionReport"]
    sold = [i for i, (who, r) in enumerate(events) if who == a and r["x"] == "TRADE"]
    assert sold and all(D(events[i][1]["L"]) < start for i in sold)  # the price came back down
    bought = [i for i, (who, r) in enumerate(events) if who == b]
    assert events[bought[0]][1]["x"] == "NEW" and bought[0] > sold[-1]  # b triggered after that
    assert query(e, a, sell["orderId"])["isWorking"] and query(e, b, buy["orderId"])["isWorking"]


def test_a_triggered_stop_can_trigger_another() -> None:
    """The fills of a triggered stop trigger further stops in the same operation."""
    e = new_engine(levels=20)
    a, b, other = (e.create_account(RICH, NO_FEES) for _ in range(3))
    start = last(e)
    # a sells exactly what rests from 4 to 8 ticks below: its fills reach b's stop at -8.
    bids = e.snapshot("BTCUSDT", 20).bids
    qty = sum(D(q) for p, q in bids if start - 8 * TICK <= D(p) <= start - 4 * TICK)
    place(
        e, a, order_type="STOP_LOSS", side="SELL", quantity=qty, time_in_force=None,
        stop_price=start - 2 * TICK,
    )  # fmt: skip
    deep = place(
        e, b, order_type="STOP_LOSS", side="SELL", time_in_force=None, stop_price=start - 8 * TICK
    )
    e.drain()
    update_id = e.last_update_id("BTCUSDT")
    sweep(e, other, down=True, ticks=3, now_ms=2_000)  # reaches a's stop, not b's
    assert e.last_update_id("BTCUSDT") == update_id + 1
    assert query(e, b, deep["orderId"])["status"] == "FILLED"


def test_pending_stop_orders_trigger_in_price_then_time_order() -> None:
    """The stop nearest to the market triggers first; at one stop price, the older first."""
    e = new_engine()
    owner, other = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    start = last(e)
    ids = []
    for ticks, cid in ((3, "far"), (2, "near-old"), (2, "near-new")):
        ids.append(
            place(
                e, owner, order_type="STOP_LOSS", side="SELL", time_in_force=None,
                stop_price=start - ticks * TICK, client_order_id=cid,
            )["orderId"]
        )  # fmt: skip
    e.drain()
    sweep(e, other, down=True, ticks=4, now_ms=2_000)
    triggered = [r["c"] for r in reports(e.drain(), owner) if r["x"] == "NEW"]
    assert triggered == ["near-old", "near-new", "far"]


def test_cancelling_a_waiting_stop_releases_its_lock_and_leaves_the_book() -> None:
    """A waiting stop is cancelled like any open order (CANCELED, C/c) with no book change."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    placed = place(e, owner, **stop_args(e, "STOP_LOSS_LIMIT", "BUY"), client_order_id="s-1")
    e.drain()
    update_id = e.last_update_id("BTCUSDT")
    resp = e.cancel_order(
        owner, symbol="BTCUSDT", order_id=placed["orderId"], orig_client_order_id=None,
        new_client_order_id="cxl", now_ms=3_000,
    )  # fmt: skip
    assert resp["status"] == "CANCELED" and e.last_update_id("BTCUSDT") == update_id
    assert list(resp)[-2:] == ["stopPrice", "selfTradePreventionMode"]
    out = e.drain()
    (report,) = reports(out, owner)
    assert (report["x"], report["c"], report["C"], report["w"]) == ("CANCELED", "cxl", "s-1", False)
    assert "W" not in report and out.diffs == []
    assert e.balances(owner)["USDT"] == (RICH["USDT"], D(0))
    assert query(e, owner, placed["orderId"])["isWorking"] is False
    other = e.create_account(RICH, NO_FEES)
    sweep(e, other, down=False, ticks=9, now_ms=4_000)  # well through its stop: nothing happens
    assert reports(e.drain(), owner) == []


def test_a_triggered_market_buy_the_account_cannot_pay_expires_unfilled() -> None:
    """A BUY STOP_LOSS locks its cost at the stop price; at the trigger it spends free balance
    like a MARKET order, and when that does not cover the book's prices it expires (eR
    REJECTED) with no trade and its funds back."""
    e = new_engine()
    stop = last(e) + TICK
    cost = (stop * QTY).quantize(EIGHT, ROUND_CEILING)
    owner = e.create_account({"USDT": cost}, NO_FEES)
    other = e.create_account(RICH, NO_FEES)
    placed = place(
        e, owner, order_type="STOP_LOSS", time_in_force=None, stop_price=stop, resp_type="RESULT"
    )
    assert e.balances(owner)["USDT"] == (D(0), cost)
    e.drain()
    sweep(e, other, down=False, ticks=3, now_ms=2_000)  # the asks left are above the stop
    got = reports(e.drain(), owner)
    assert [(r["x"], r["X"]) for r in got] == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]
    assert got[1]["eR"] == "REJECTED" and got[1]["z"] == "0.00000000"
    assert query(e, owner, placed["orderId"])["status"] == "EXPIRED"
    assert e.balances(owner)["USDT"] == (cost, D(0))


def test_a_triggered_fok_stop_limit_that_cannot_fill_expires() -> None:
    """A FOK STOP_LOSS_LIMIT whose limit cannot fill it all at the trigger expires unfilled."""
    e = new_engine()
    owner, other = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    stop = last(e) + 2 * TICK
    place(
        e, owner, order_type="STOP_LOSS_LIMIT", time_in_force="FOK", quantity=D("50"),
        stop_price=stop, price=stop,
    )  # fmt: skip
    e.drain()
    sweep(e, other, down=False, ticks=3, now_ms=2_000)
    got = reports(e.drain(), owner)
    assert [r["x"] for r in got] == ["NEW", "EXPIRED"] and got[1][
        "eR"
    ] == "UNFILLED_FOK_ORDER_EXPIRED"
    assert e.balances(owner)["USDT"] == (RICH["USDT"], D(0))


# --- stop orders: parameters and filters -----------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "code", "msg"),
    [
        (
            {"order_type": "STOP_LOSS", "time_in_force": None},
            -1102,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        ),
        ({"order_type": "STOP_LOSS_LIMIT", "stop_price": D("200")}, -1102, None),
        (
            {"order_type": "STOP_LOSS_LIMIT", "price": D("200"), "time_in_force": None,
             "stop_price": D("200")},
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            {"order_type": "STOP_LOSS", "stop_price": D("200")},
            -1106,
            "Parameter 'timeInForce' sent when not required.",
        ),
        (
            {"order_type": "TAKE_PROFIT", "time_in_force": None, "stop_price": D("300"),
             "price": D("300")},
            -1106,
            "Parameter 'price' sent when not required.",
        ),
        (
            {"price": D("200"), "stop_price": D("200")},
            -1106,
            "Parameter 'stopPrice' sent when not required.",
        ),
        (
            {"price": D("200"), "trailing_delta": 100},
            -1106,
            "Parameter 'trailingDelta' sent when not required.",
        ),
        (
            {"order_type": "STOP_LOSS", "time_in_force": None, "trailing_delta": 100},
            -1013,
            "Trailing stop orders are not supported for this symbol.",
        ),
        (
            {"order_type": "TAKE_PROFIT", "time_in_force": None, "stop_price": D("300.001")},
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            {"order_type": "TAKE_PROFIT_LIMIT", "stop_price": D("2000000"), "price": D("300")},
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            {"order_type": "STOP_LOSS", "time_in_force": None, "stop_price": D("0")},
            -1013,
            "Invalid stopPrice.",
        ),
        (
            {"order_type": "STOP_LOSS", "time_in_force": None, "stop_price": D("300"),
             "quantity": D("0.00001")},
            -1013,
            "Filter failure: MIN_NOTIONAL",
        ),
        (
            {"order_type": "TAKE_PROFIT", "time_in_force": None, "stop_price": D("300"),
             "quantity": D("101")},
            -1013,
            "Filter failure: MARKET_LOT_SIZE",
        ),
        (
            {"order_type": "STOP_LOSS", "time_in_force": None, "stop_price": D("300"),
             "quote_order_qty": D("10")},
            -1106,
            "Parameter 'quoteOrderQty' sent when not required.",
        ),
    ],
)  # fmt: skip
def test_stop_order_parameters_and_filters(kw: dict[str, Any], code: int, msg: str | None) -> None:
    """Mandatory and unwanted parameters per protocol §4.3, stopPrice through PRICE_FILTER, the
    market variants through MARKET_LOT_SIZE and the notional at the stop; trailingDelta is a
    clear -1013 (every symbol serves allowTrailingStop false). Nothing changes."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    e.drain()
    with pytest.raises(EngineError) as err:
        place(e, owner, **kw)
    assert err.value.code == code
    if msg is not None:
        assert err.value.msg == msg
    assert e.drain() == EngineOutput([], [], []) and e.open_orders(owner, None) == []


def test_test_orders_validate_stop_orders_without_placing_them() -> None:
    """test=True checks a stop order's parameters and filters and places nothing."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    e.drain()
    assert place(e, owner, **stop_args(e, "STOP_LOSS", "SELL"), test=True) == {}
    with pytest.raises(EngineError):
        place(e, owner, **stop_args(e, "STOP_LOSS", "SELL"), quantity=D("0.00001"), test=True)
    assert e.drain() == EngineOutput([], [], []) and e.open_orders(owner, None) == []


def test_exchange_info_lists_every_order_type_and_no_trailing_stops() -> None:
    """Served exchangeInfo: the seven order types of today's Binance, allowTrailingStop false."""
    entry = INFOS[0].raw
    assert entry["orderTypes"] == [
        *["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT"],
        "TAKE_PROFIT_LIMIT",
    ]
    keys = list(entry)
    assert entry["allowTrailingStop"] is False
    assert keys.index("allowTrailingStop") == keys.index("quoteOrderQtyMarketAllowed") + 1


def test_an_order_type_the_symbol_does_not_list_is_refused() -> None:
    """A type missing from the symbol's orderTypes: -1013 "<Type> orders are not supported for
    this symbol." (Binance's answer before it enabled the market stop variants)."""
    raw = {**INFOS[0].raw, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"]}
    info = SymbolInfo(**{**INFOS[0].__dict__, "raw": raw})
    e = Engine([info], seed=1, levels=10)
    owner = e.create_account(RICH, NO_FEES)
    with pytest.raises(EngineError) as err:
        place(e, owner, **stop_args(e, "STOP_LOSS", "SELL"))
    assert (err.value.code, err.value.msg) == (
        -1013,
        "Stop loss orders are not supported for this symbol.",
    )
    with pytest.raises(EngineError) as err:
        place(e, owner, **stop_args(e, "TAKE_PROFIT_LIMIT", "SELL"))
    assert err.value.msg == "Take profit limit orders are not supported for this symbol."
    assert place(e, owner, **stop_args(e, "STOP_LOSS_LIMIT", "SELL"))["orderId"] > 0


def test_max_num_algo_orders_caps_open_stop_orders_per_symbol() -> None:
    """BTCUSDT allows 5 open stop orders per account (MAX_NUM_ALGO_ORDERS); the 6th is -1013."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    for i in range(5):
        place(e, owner, **stop_args(e, "STOP_LOSS", "SELL", ticks=3 + i))
    with pytest.raises(EngineError) as err:
        place(e, owner, **stop_args(e, "TAKE_PROFIT", "SELL"))
    assert (err.value.code, err.value.msg) == (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
    place(e, owner, price=D("200"))  # other orders are not capped by it
    place(
        e, owner, symbol="ETHBTC", **{**stop_args(e, "STOP_LOSS", "SELL"), "stop_price": D("0.03")}
    )


# --- LIMIT_MAKER --------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "through"), [("BUY", 0), ("BUY", 3), ("SELL", 0), ("SELL", 3)])
def test_limit_maker_that_would_take_is_rejected_without_a_trace(side: str, through: int) -> None:
    """A LIMIT_MAKER at or through the opposite touch is -2010 "Order would immediately match
    and take.": no executionReport (Binance sends none for a rejected placement), no lock,
    no book change."""
    e = new_engine()
    owner = e.create_account(RICH, NO_FEES)
    snap = e.snapshot("BTCUSDT", 1)
    touch = D(snap.asks[0][0]) if side == "BUY" else D(snap.bids[0][0])
    price = touch + (through if side == "BUY" else -through) * TICK
    update_id = e.last_update_id("BTCUSDT")
    e.drain()
    with pytest.raises(EngineError) as err:
        place(e, owner, order_type="LIMIT_MAKER", side=side, price=price, time_in_force=None)
    assert (err.value.code, err.value.msg) == (-2010, "Order would immediately match and take.")
    assert e.drain() == EngineOutput([], [], []) and e.last_update_id("BTCUSDT") == update_id
    assert e.balances(owner)["USDT"] == (RICH["USDT"], D(0))
    assert e.balances(owner)["BTC"] == (RICH["BTC"], D(0))


def test_a_passive_limit_maker_rests_and_fills_as_maker() -> None:
    """A LIMIT_MAKER that does not cross: ACK, a NEW report (o LIMIT_MAKER, f GTC, w true), and
    its fill is a maker fill (m true) charged the maker rate."""
    e = new_engine()
    rates = Commission(maker=D("0.0002"), taker=D("0.001"))
    owner, taker = e.create_account(RICH, rates), e.create_account(RICH, NO_FEES)
    ask = D(e.snapshot("BTCUSDT", 1).asks[0][0])
    price = ask - TICK  # inside the spread
    resp = place(e, owner, order_type="LIMIT_MAKER", side="SELL", price=price, time_in_force=None)
    assert list(resp) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
    (new,) = reports(e.drain(), owner)
    assert (new["o"], new["f"], new["w"], new["x"]) == ("LIMIT_MAKER", "GTC", True, "NEW")
    place(e, taker, price=price, quantity=QTY, now_ms=2_000)
    (trade,) = reports(e.drain(), owner)
    fee = (price * QTY * rates.maker).quantize(EIGHT, ROUND_HALF_UP)
    assert (trade["x"], trade["m"], trade["n"], trade["N"]) == ("TRADE", True, fmt(fee), "USDT")


# --- commissions ----------------------------------------------------------------------------


def test_maker_and_taker_pay_their_rates_in_the_asset_they_receive() -> None:
    """Maker SELL at 0.02%, taker BUY at Binance's default 0.1%: each pays its rate of what it
    receives (the buyer BTC, the seller USDT), in the reports (n, N), the FULL fills, myTrades
    and the balances and positions; the fee account holds both; every total is conserved."""
    e = new_engine()
    maker_rates = Commission(maker=D("0.0002"), taker=D("0.0009"))
    maker, taker = e.create_account(RICH, maker_rates), e.create_account(RICH)
    assert e.commission(taker) == Commission(D("0.001"), D("0.001"))
    before = totals(e)
    ask = D(e.snapshot("BTCUSDT", 1).asks[0][0])
    price = ask - TICK
    place(e, maker, side="SELL", price=price, quantity=D("0.3"))
    e.drain()
    qty = D("0.12345")
    resp = place(e, taker, price=price, quantity=qty, now_ms=2_000)
    quote = (price * qty).quantize(EIGHT, rounding="ROUND_FLOOR")
    taker_fee = (qty * D("0.001")).quantize(EIGHT, ROUND_HALF_UP)
    maker_fee = (quote * D("0.0002")).quantize(EIGHT, ROUND_HALF_UP)
    (fill,) = resp["fills"]
    assert (fill["commission"], fill["commissionAsset"]) == (fmt(taker_fee), "BTC")
    out = e.drain()
    taker_trade = reports(out, taker)[-1]
    maker_trade = reports(out, maker)[-1]
    assert (taker_trade["n"], taker_trade["N"], taker_trade["m"]) == (fmt(taker_fee), "BTC", False)
    assert (maker_trade["n"], maker_trade["N"], maker_trade["m"]) == (fmt(maker_fee), "USDT", True)
    rows = {who: e.my_trades(who, symbol="BTCUSDT")[-1] for who in (maker, taker)}
    assert (rows[taker]["commission"], rows[taker]["commissionAsset"]) == (fmt(taker_fee), "BTC")
    assert (rows[maker]["commission"], rows[maker]["commissionAsset"]) == (fmt(maker_fee), "USDT")
    assert e.balances(taker)["BTC"] == (RICH["BTC"] + qty - taker_fee, D(0))
    assert e.balances(maker)["USDT"] == (RICH["USDT"] + quote - maker_fee, D(0))
    position = {b["a"]: b for b in positions(out, taker)[-1]["B"]}
    assert position["BTC"]["f"] == fmt(RICH["BTC"] + qty - taker_fee)
    assert e.balances(e.fee_account) == {"BTC": (taker_fee, D(0)), "USDT": (maker_fee, D(0))}
    assert totals(e) == before


@pytest.mark.parametrize(
    ("rate", "fee"), [("0.00000005", "0.00000001"), ("0.00000004", "0.00000000")]
)
def test_commission_rounds_half_up_to_eight_decimals(rate: str, fee: str) -> None:
    """0.1 BTC at 0.00000005 is exactly half a unit: it rounds up; just below half rounds down
    (Binance's commission FAQ rounds 0.040229875 to 0.04022988 and 0.000154730 to 0.00015473,
    so neither floor nor ceiling)."""
    e = new_engine()
    buyer = e.create_account(RICH, Commission(maker=D(0), taker=D(rate)))
    seller = e.create_account(RICH, NO_FEES)
    ask = D(e.snapshot("BTCUSDT", 1).asks[0][0])
    place(e, seller, side="SELL", price=ask - TICK, quantity=QTY)
    resp = place(e, buyer, price=ask - TICK, quantity=QTY)
    assert resp["fills"][0]["commission"] == fee


def test_accounts_without_fees_and_bad_rates() -> None:
    """NO_FEES accounts pay "0.00000000" (the asset still named); a rate outside [0, 1) or with
    more than 8 decimals is refused."""
    e = new_engine()
    free_rider = e.create_account(RICH, NO_FEES)
    _, ask = (D(p) for p, _ in (e.snapshot("BTCUSDT", 1).bids[0], e.snapshot("BTCUSDT", 1).asks[0]))
    resp = place(e, free_rider, price=ask, quantity=D("0.05"))
    assert [(f["commission"], f["commissionAsset"]) for f in resp["fills"]] == [
        ("0.00000000", "BTC")
    ]
    for bad in (D("1"), D("-0.001"), D("0.000000001")):
        with pytest.raises(ValueError):
            e.create_account(RICH, Commission(maker=bad, taker=D(0)))
    rates = e.commission_rates_for_order(
        e.create_account(RICH, Commission(D("0.0002"), D("0.0004")))
    )
    assert rates == {
        "standardCommissionForOrder": {"maker": "0.00020000", "taker": "0.00040000"},
        "specialCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
        "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.00000000",
        },
    }


def test_the_simulated_market_pays_no_commission() -> None:
    """The agents trade fee-free: market flow alone leaves the fee account empty."""
    e = new_engine()
    e.step(1_000, 2_000)
    assert e.drain().trades and e.balances(e.fee_account) == {}
