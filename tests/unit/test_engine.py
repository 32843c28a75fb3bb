"""The local exchange's matching engine: symbols, filters, order semantics, events, shapes."""

from __future__ import annotations

import re
from decimal import Decimal
from importlib import resources
from random import Random
from typing import Any

import pytest

from streamer.testing.exchange.engine import NO_FEES, Engine, EngineError, EngineOutput, fmt
from streamer.testing.exchange.market import plan_symbol
from streamer.testing.exchange.symbols import (
    SymbolRules,
    fmt_units,
    load_exchange_info,
    symbol_infos,
    to_units,
)
from tests.engine_events import positions, reports

D = Decimal
SYMBOLS = ["BTCUSDT", "ETHBTC", "BNBUSDT"]
INFOS = symbol_infos(load_exchange_info(), SYMBOLS)
TICK = D("0.01")  # BTCUSDT
RICH = {"BTC": D("100"), "USDT": D("1000000"), "ETH": D("1000"), "BNB": D("10000")}
ALNUM22 = re.compile(r"[A-Za-z0-9]{22}")

ACK_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
RESULT_KEYS = [
    *ACK_KEYS,
    *["price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status"],
    *["timeInForce", "type", "side", "workingTime", "selfTradePreventionMode"],
]
QUERY_KEYS = [
    *["symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty"],
    *["cummulativeQuoteQty", "status", "timeInForce", "type", "side", "stopPrice", "icebergQty"],
    *["time", "updateTime", "isWorking", "workingTime", "origQuoteOrderQty"],
    "selfTradePreventionMode",
]
CANCEL_KEYS = [
    *["symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId", "transactTime"],
    *["price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status"],
    *["timeInForce", "type", "side", "selfTradePreventionMode"],
]
REPORT_KEYS = list("eEscSofqpPFgCxXrilzLnNTtIwmMOZYQWV")


def new_engine(seed: int = 1, levels: int = 10) -> Engine:
    return Engine(INFOS, seed=seed, levels=levels)


def touch(engine: Engine, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    snap = engine.snapshot(symbol, 1)
    return D(snap.bids[0][0]), D(snap.asks[0][0])


def place(engine: Engine, account: int, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": D("0.1"),
        "price": None,
        "time_in_force": "GTC",
        "client_order_id": None,
        "now_ms": 1_000,
    }
    args.update(kw)
    return engine.place_order(account, **args)


def mid_price(engine: Engine) -> Decimal:
    """The free tick between the opening best bid and best ask of BTCUSDT."""
    bid, ask = touch(engine)
    assert ask - bid == 2 * TICK
    return bid + TICK


# --- symbols, numbers, filters ---------------------------------------------------------------


def test_shipped_exchange_info_is_the_full_real_body() -> None:
    """The packaged exchangeInfo has all 1,695 real symbols, each starting with PRICE_FILTER."""
    info = load_exchange_info()
    names = [s["symbol"] for s in info["symbols"]]
    assert len(names) == 1695 and set(SYMBOLS) <= set(names)
    assert all(s["filters"][0]["filterType"] == "PRICE_FILTER" for s in info["symbols"])
    assert info["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"


def test_shipped_data_keeps_its_attribution() -> None:
    """data/README.md beside the file names its source and keeps cryptofeed's acknowledgment."""
    readme = resources.files("streamer.testing.exchange").joinpath("data", "README.md")
    text = readme.read_text(encoding="utf-8")
    assert "bmoscon/cryptofeed" in text and "exchangeInfo.json.gz" in text
    assert (
        "This product includes software developed by Bryant Moscon (http://www.bryantmoscon.com/)"
        in text
    )


def test_load_exchange_info_returns_an_independent_copy() -> None:
    """Changing one loaded body does not change the next one."""
    first = load_exchange_info()
    first["serverTime"] = 1
    first["symbols"].clear()
    again = load_exchange_info()
    assert again["serverTime"] != 1 and len(again["symbols"]) == 1695


def test_symbol_info_takes_the_real_filters() -> None:
    """BTCUSDT's SymbolInfo carries its PRICE_FILTER, LOT_SIZE and MIN_NOTIONAL values."""
    btc = INFOS[0]
    assert (btc.symbol, btc.base_asset, btc.quote_asset) == ("BTCUSDT", "BTC", "USDT")
    assert (btc.tick_size, btc.min_price, btc.max_price) == (D("0.01"), D("0.01"), D("1000000"))
    assert (btc.step_size, btc.min_qty, btc.max_qty) == (D("0.00001"), D("0.00001"), D("9000"))
    assert btc.min_notional == D("10")
    assert btc.raw["symbol"] == "BTCUSDT" and btc.raw["filters"][0]["tickSize"] == "0.01000000"
    assert [i.symbol for i in INFOS] == SYMBOLS


def test_unknown_symbol_is_rejected_when_loading() -> None:
    """Asking for a symbol that is not in exchangeInfo is -1121."""
    with pytest.raises(EngineError) as err:
        symbol_infos(load_exchange_info(), ["BTCUSDT", "NOPE"])
    assert err.value.code == -1121


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("0.35270000"), "0.35270000"),
        (D("6195"), "6195.00000000"),
        (D("1E-7"), "0.00000010"),
        (D("0"), "0.00000000"),
        (D("-0"), "0.00000000"),
        (D("123456789012.5"), "123456789012.50000000"),
    ],
)
def test_fmt_spells_eight_decimals(value: Decimal, text: str) -> None:
    """Every number is spelled with 8 decimals and never in scientific notation."""
    assert fmt(value) == text
    assert fmt_units(to_units(value, "x")) == text


def test_more_than_eight_decimals_is_bad_precision() -> None:
    """A value with a 9th significant decimal is -1111 naming the parameter."""
    assert to_units(D("0.100000000000"), "price") == 10_000_000
    with pytest.raises(EngineError) as err:
        to_units(D("0.000000001"), "price")
    assert (err.value.code, err.value.msg) == (-1111, "Parameter 'price' has too much precision.")


def test_opening_books_of_every_real_symbol_pass_its_filters() -> None:
    """The seeded opening book of all 1,695 symbols respects PRICE_FILTER, LOT_SIZE, notional."""
    checked = 0
    for info in symbol_infos(load_exchange_info()):
        rules = SymbolRules.from_info(info)
        sim, book = plan_symbol(rules, Random(info.symbol), 100)
        assert sim.lo <= sim.mid <= sim.hi
        bids = [p for is_bid, p, _ in book if is_bid]
        asks = [p for is_bid, p, _ in book if not is_bid]
        assert bids and asks and max(bids) < min(asks), info.symbol
        for _, price, qty in book:
            rules.check_price(price)
            rules.check_quantity(qty, market=False)
            rules.check_notional(price, qty, market=False)
        checked += 1
    assert checked == 1695


# --- order semantics -------------------------------------------------------------------------


def test_price_then_time_priority() -> None:
    """A buy fills the better price first, then the older order at the same price."""
    e = new_engine()
    a, b, c, buyer = (e.create_account(RICH, NO_FEES) for _ in range(4))
    mid = mid_price(e)
    ask = mid + TICK
    late_at_ask = place(e, c, side="SELL", price=ask, quantity=D("0.1"))
    first = place(e, a, side="SELL", price=mid, quantity=D("0.1"))
    second = place(e, b, side="SELL", price=mid, quantity=D("0.1"))
    taken = place(e, buyer, side="BUY", price=ask, quantity=D("0.15"))
    assert [(f["price"], f["qty"]) for f in taken["fills"]] == [
        (fmt(mid), "0.10000000"),
        (fmt(mid), "0.05000000"),
    ]
    assert taken["status"] == "FILLED" and taken["executedQty"] == "0.15000000"
    got = {
        o["orderId"]: (o["status"], o["executedQty"])
        for acct, o in ((a, first), (b, second), (c, late_at_ask))
        for o in [
            e.get_order(acct, symbol="BTCUSDT", order_id=o["orderId"], orig_client_order_id=None)
        ]
    }
    assert got == {
        first["orderId"]: ("FILLED", "0.10000000"),
        second["orderId"]: ("PARTIALLY_FILLED", "0.05000000"),
        late_at_ask["orderId"]: ("NEW", "0.00000000"),
    }
    # The remaining 0.05 of the second seller is now the best ask, alone at its price.
    assert e.snapshot("BTCUSDT", 1).asks == [(fmt(mid), "0.05000000")]


def test_a_buy_that_trades_below_its_limit_unlocks_the_difference() -> None:
    """The buyer pays the maker's price, and nothing stays locked once its order is filled."""
    e = new_engine()
    seller, buyer = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    place(e, seller, side="SELL", price=mid, quantity=D("0.1"))
    place(e, buyer, side="BUY", price=mid + 5 * TICK, quantity=D("0.1"))
    free, locked = e.balances(buyer)["USDT"]
    assert (free, locked) == (RICH["USDT"] - mid * D("0.1"), D(0))
    assert e.balances(buyer)["BTC"] == (RICH["BTC"] + D("0.1"), D(0))
    assert e.balances(seller)["USDT"] == (RICH["USDT"] + mid * D("0.1"), D(0))
    assert e.balances(seller)["BTC"] == (RICH["BTC"] - D("0.1"), D(0))


def test_partial_fill_reports_and_leaves_the_rest_on_the_book() -> None:
    """The maker gets a TRADE report (PARTIALLY_FILLED, m=true, w=true) and keeps its rest."""
    e = new_engine()
    maker, taker = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    resting = place(e, maker, side="BUY", price=mid, quantity=D("0.3"), client_order_id="m-1")
    e.drain()
    place(e, taker, side="SELL", price=mid, quantity=D("0.1"), now_ms=2_000)
    out = e.drain()
    (trade,) = reports(out, maker)
    assert (trade["x"], trade["X"], trade["c"], trade["i"]) == (
        "TRADE",
        "PARTIALLY_FILLED",
        "m-1",
        resting["orderId"],
    )
    assert (trade["l"], trade["z"], trade["L"], trade["m"], trade["w"]) == (
        "0.10000000",
        "0.10000000",
        fmt(mid),
        True,
        True,
    )
    assert trade["Y"] == fmt(mid * D("0.1")) == trade["Z"] and trade["t"] == out.trades[0].trade_id
    assert e.snapshot("BTCUSDT", 1).bids == [(fmt(mid), "0.20000000")]
    # Locked USDT now covers exactly the remaining 0.2 at the order's price.
    assert e.balances(maker)["USDT"][1] == mid * D("0.2")
    taker_reports = reports(out, taker)
    assert [(r["x"], r["X"], r["m"]) for r in taker_reports] == [
        ("NEW", "NEW", False),
        ("TRADE", "FILLED", False),
    ]


def test_ioc_fills_what_it_can_and_expires_the_rest() -> None:
    """An IOC takes the best ask level and expires the remainder, unlocking it."""
    e = new_engine()
    buyer = e.create_account(RICH, NO_FEES)
    _, ask = touch(e)
    level_qty = D(e.snapshot("BTCUSDT", 1).asks[0][1])
    e.drain()
    resp = place(e, buyer, price=ask, quantity=level_qty + 1, time_in_force="IOC")
    assert (resp["status"], resp["executedQty"]) == ("EXPIRED", fmt(level_qty))
    assert resp["expiryReason"] == "UNFILLED_IOC_QUANTITY_EXPIRED"
    out = e.drain()
    kinds = [(r["x"], r["X"]) for r in reports(out, buyer)]
    assert kinds[0] == ("NEW", "NEW") and kinds[-1] == ("EXPIRED", "EXPIRED")
    assert {k for k in kinds[1:-1]} == {("TRADE", "PARTIALLY_FILLED")}
    assert reports(out, buyer)[-1]["eR"] == "UNFILLED_IOC_QUANTITY_EXPIRED"
    assert e.balances(buyer)["USDT"] == (RICH["USDT"] - ask * level_qty, D(0))
    assert D(e.snapshot("BTCUSDT", 1).asks[0][0]) > ask  # the level is gone, nothing rested


def test_fok_that_cannot_fill_entirely_changes_nothing() -> None:
    """A FOK larger than the liquidity up to its price expires with no trade and no book change."""
    e = new_engine()
    buyer = e.create_account(RICH, NO_FEES)
    _, ask = touch(e)
    level_qty = D(e.snapshot("BTCUSDT", 1).asks[0][1])
    before, update_id = e.full_book("BTCUSDT"), e.last_update_id("BTCUSDT")
    e.drain()
    resp = place(e, buyer, price=ask, quantity=level_qty + D("0.001"), time_in_force="FOK")
    assert (resp["status"], resp["executedQty"], resp["fills"]) == ("EXPIRED", "0.00000000", [])
    assert e.full_book("BTCUSDT") == before and e.last_update_id("BTCUSDT") == update_id
    out = e.drain()
    assert out.trades == [] and out.diffs == []
    assert [r["x"] for r in reports(out, buyer)] == ["NEW", "EXPIRED"]
    assert e.balances(buyer)["USDT"] == (RICH["USDT"], D(0))
    filled = place(e, buyer, price=ask, quantity=level_qty, time_in_force="FOK")
    assert (filled["status"], filled["executedQty"]) == ("FILLED", fmt(level_qty))


def test_market_order_by_quantity_walks_the_book() -> None:
    """A MARKET buy fills across levels at their prices; cummulativeQuoteQty is their sum."""
    e = new_engine()
    buyer = e.create_account(RICH, NO_FEES)
    (p1, q1), (p2, _) = [(D(p), D(q)) for p, q in e.snapshot("BTCUSDT", 2).asks]
    resp = place(
        e, buyer, order_type="MARKET", quantity=q1 + D("0.01"), price=None, time_in_force=None
    )
    assert resp["status"] == "FILLED" and resp["price"] == "0.00000000"
    assert [(D(f["price"]), D(f["qty"])) for f in resp["fills"]][-1] == (p2, D("0.01"))
    assert sum(D(f["qty"]) for f in resp["fills"]) == q1 + D("0.01")
    cost = sum(D(f["price"]) * D(f["qty"]) for f in resp["fills"])
    assert D(resp["cummulativeQuoteQty"]) == cost == p1 * q1 + p2 * D("0.01")
    assert e.balances(buyer)["USDT"] == (RICH["USDT"] - cost, D(0))


def test_market_order_by_quote_quantity_spends_at_most_it() -> None:
    """A quoteOrderQty MARKET buy spends no more than the quote and buys whole steps."""
    e = new_engine()
    buyer = e.create_account(RICH, NO_FEES)
    resp = place(
        e,
        buyer,
        order_type="MARKET",
        quantity=None,
        quote_order_qty=D("100"),
        price=None,
        time_in_force=None,
    )
    spent, bought = D(resp["cummulativeQuoteQty"]), D(resp["executedQty"])
    assert resp["status"] == "FILLED" and resp["origQuoteOrderQty"] == "100.00000000"
    assert D("99") < spent <= D("100") and bought % D("0.00001") == 0
    assert resp["origQty"] == resp["executedQty"]
    assert e.balances(buyer)["USDT"] == (RICH["USDT"] - spent, D(0))
    assert e.balances(buyer)["BTC"] == (RICH["BTC"] + bought, D(0))


def test_market_order_without_the_funds_is_rejected() -> None:
    """A MARKET buy costing more than the free quote balance is -2010 and changes nothing."""
    e = new_engine()
    poor = e.create_account({"USDT": D("20")}, NO_FEES)
    with pytest.raises(EngineError) as err:
        place(e, poor, order_type="MARKET", quantity=D("0.1"), time_in_force=None)
    assert (err.value.code, err.value.msg) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert e.balances(poor) == {"USDT": (D("20"), D(0))}
    assert e.drain().user_events == []


def test_limit_order_without_the_funds_is_rejected() -> None:
    """A LIMIT sell of more base than the account holds is -2010."""
    e = new_engine()
    account = e.create_account({"BTC": D("0.05")}, NO_FEES)
    with pytest.raises(EngineError) as err:
        place(e, account, side="SELL", price=D("100000"), quantity=D("0.06"))
    assert err.value.code == -2010 and "insufficient balance" in err.value.msg


def test_limit_maker_that_would_take_is_rejected() -> None:
    """LIMIT_MAKER crossing the book is -2010; a passive one rests and answers ACK."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    bid, ask = touch(e)
    with pytest.raises(EngineError) as err:
        place(e, account, order_type="LIMIT_MAKER", side="SELL", price=bid, time_in_force=None)
    assert (err.value.code, err.value.msg) == (-2010, "Order would immediately match and take.")
    resp = place(e, account, order_type="LIMIT_MAKER", side="SELL", price=ask, time_in_force=None)
    assert list(resp) == ACK_KEYS
    order = e.get_order(
        account, symbol="BTCUSDT", order_id=resp["orderId"], orig_client_order_id=None
    )
    assert (order["status"], order["type"], order["timeInForce"]) == ("NEW", "LIMIT_MAKER", "GTC")


@pytest.mark.parametrize(
    ("kw", "code", "msg"),
    [
        ({"price": D("100.005")}, -1013, "Filter failure: PRICE_FILTER"),
        ({"price": D("2000000"), "quantity": D("0.001")}, -1013, "Filter failure: PRICE_FILTER"),
        ({"price": D("100"), "quantity": D("0.150005")}, -1013, "Filter failure: LOT_SIZE"),
        ({"price": D("100"), "quantity": D("9001")}, -1013, "Filter failure: LOT_SIZE"),
        ({"price": D("100"), "quantity": D("0.09999")}, -1013, "Filter failure: MIN_NOTIONAL"),
        (
            {"order_type": "MARKET", "quantity": D("200"), "time_in_force": None},
            -1013,
            "Filter failure: MARKET_LOT_SIZE",
        ),
        (
            {"order_type": "MARKET", "quantity": D("0.00002"), "time_in_force": None},
            -1013,
            "Filter failure: MIN_NOTIONAL",
        ),
        ({"price": D("100.000000001")}, -1111, "Parameter 'price' has too much precision."),
        (
            {"price": D("100"), "quantity": D("0.1000000001")},
            -1111,
            "Parameter 'quantity' has too much precision.",
        ),
        ({"price": D("100"), "quantity": D("0")}, -1013, "Invalid quantity."),
        ({"symbol": "NOPE", "price": D("100")}, -1121, "Invalid symbol."),
        ({"side": "HOLD", "price": D("100")}, -1117, "Invalid side."),
        ({"order_type": "STOP", "price": D("100")}, -1116, "Invalid orderType."),
        ({"price": D("100"), "time_in_force": "GTD"}, -1115, "Invalid timeInForce."),
        ({"price": D("100"), "time_in_force": None}, -1102, None),
        ({"price": None}, -1102, None),
        ({"price": D("100"), "quantity": None}, -1102, None),
        ({"order_type": "MARKET", "price": None}, -1106, None),
        (
            {"order_type": "MARKET", "time_in_force": None, "price": D("100")},
            -1106,
            "Parameter 'price' sent when not required.",
        ),
        (
            {"order_type": "MARKET", "time_in_force": None, "quantity": None},
            -1102,
            None,
        ),
        ({"price": D("100"), "client_order_id": "bad id!"}, -1100, None),
        ({"price": D("100"), "client_order_id": "x" * 37}, -1100, None),
    ],
)
def test_invalid_orders_are_rejected_with_binance_codes(
    kw: dict[str, Any], code: int, msg: str | None
) -> None:
    """Each filter and parameter failure has its Binance code, and nothing changes."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    update_id = e.last_update_id("BTCUSDT")
    e.drain()
    with pytest.raises(EngineError) as err:
        place(e, account, **kw)
    assert err.value.code == code and err.value.status == 400
    if msg is not None:
        assert err.value.msg == msg
    assert e.last_update_id("BTCUSDT") == update_id
    assert e.balances(account)["USDT"] == (RICH["USDT"], D(0))
    assert e.drain() == EngineOutput([], [], [])


def test_filters_accept_their_boundaries() -> None:
    """A notional exactly at minNotional and a quantity exactly at minQty step pass."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    resp = place(e, account, price=D("100"), quantity=D("0.1"))  # 10 USDT == minNotional
    assert resp["status"] == "NEW"
    assert place(e, account, price=D("1000000"), quantity=D("0.00001"))["status"] == "FILLED"


def test_test_orders_validate_without_touching_anything() -> None:
    """test=True runs the filters, then returns {} with no event, diff or balance change."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    e.drain()
    assert place(e, account, price=D("100"), test=True) == {}
    with pytest.raises(EngineError) as err:
        place(e, account, price=D("100.001"), test=True)
    assert err.value.msg == "Filter failure: PRICE_FILTER"
    assert e.drain() == EngineOutput([], [], []) and e.open_orders(account, None) == []


# --- client order ids and cancels ------------------------------------------------------------


def test_duplicate_client_order_id_among_open_orders() -> None:
    """An open order's client id cannot be reused; once cancelled or filled it can."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    first = place(e, account, price=D("100"), client_order_id="dup-1")
    with pytest.raises(EngineError) as err:
        place(e, account, symbol="BNBUSDT", price=D("100"), client_order_id="dup-1")
    assert (err.value.code, err.value.msg) == (-2010, "Duplicate order sent.")
    e.cancel_order(
        account,
        symbol="BTCUSDT",
        order_id=first["orderId"],
        orig_client_order_id=None,
        new_client_order_id=None,
        now_ms=2_000,
    )
    again = place(e, account, price=D("100"), client_order_id="dup-1")
    _, ask = touch(e)
    filled = place(e, account, price=ask, quantity=D("0.04"), client_order_id="dup-2")
    assert filled["status"] == "FILLED"
    assert place(e, account, price=D("100"), client_order_id="dup-2")["status"] == "NEW"
    # By client id, the open order wins over older ones that had the id.
    found = e.get_order(account, symbol="BTCUSDT", order_id=None, orig_client_order_id="dup-1")
    assert found["orderId"] == again["orderId"] and found["status"] == "NEW"


def test_generated_client_order_ids_look_like_binance_ones() -> None:
    """Without newClientOrderId the engine makes a seeded 22-character alphanumeric one."""
    ids = []
    for _ in range(2):
        e = new_engine(seed=5)
        account = e.create_account(RICH, NO_FEES)
        ids.append([place(e, account, price=D("100"))["clientOrderId"] for _ in range(3)])
    assert ids[0] == ids[1] and len(set(ids[0])) == 3
    assert all(ALNUM22.fullmatch(cid) for cid in ids[0])


def test_cancel_by_order_id_reports_both_client_ids() -> None:
    """Cancel response and CANCELED report: c/clientOrderId = cancel id, C/orig = original."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    placed = place(e, account, price=D("100"), quantity=D("0.2"), client_order_id="orig-1")
    e.drain()
    resp = e.cancel_order(
        account,
        symbol="BTCUSDT",
        order_id=placed["orderId"],
        orig_client_order_id=None,
        new_client_order_id="cxl-1",
        now_ms=5_000,
    )
    assert list(resp) == CANCEL_KEYS
    assert (resp["origClientOrderId"], resp["clientOrderId"], resp["status"]) == (
        "orig-1",
        "cxl-1",
        "CANCELED",
    )
    assert (resp["transactTime"], resp["origQty"], resp["price"]) == (
        5_000,
        "0.20000000",
        "100.00000000",
    )
    out = e.drain()
    (report,) = reports(out, account)
    assert (report["x"], report["X"], report["c"], report["C"], report["w"]) == (
        "CANCELED",
        "CANCELED",
        "cxl-1",
        "orig-1",
        False,
    )
    (position,) = positions(out, account)
    assert position["B"] == [{"a": "USDT", "f": "1000000.00000000", "l": "0.00000000"}]
    assert out.diffs[0].bids == [("100.00000000", "0.00000000")]
    queried = e.get_order(account, symbol="BTCUSDT", order_id=None, orig_client_order_id="orig-1")
    assert (queried["status"], queried["clientOrderId"], queried["updateTime"]) == (
        "CANCELED",
        "orig-1",
        5_000,
    )


def test_cancel_by_client_order_id_generates_the_cancel_id() -> None:
    """Cancelling by origClientOrderId alone works and gets a generated 22-char cancel id."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    place(e, account, side="SELL", price=D("100000"), client_order_id="mine")
    resp = e.cancel_order(
        account,
        symbol="BTCUSDT",
        order_id=None,
        orig_client_order_id="mine",
        new_client_order_id=None,
        now_ms=2_000,
    )
    assert resp["origClientOrderId"] == "mine" and ALNUM22.fullmatch(resp["clientOrderId"])
    assert e.balances(account)["BTC"] == (RICH["BTC"], D(0))


@pytest.mark.parametrize("how", ["twice", "unknown", "other account", "mismatch", "wrong symbol"])
def test_cancel_of_an_order_that_is_not_open_is_unknown(how: str) -> None:
    """Cancelling a cancelled, unknown, foreign or mismatched order is -2011."""
    e = new_engine()
    owner, other = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    placed = place(e, owner, price=D("100"), client_order_id="c-1")
    account, symbol, order_id, orig = owner, "BTCUSDT", placed["orderId"], None
    if how == "twice":
        e.cancel_order(
            owner,
            symbol="BTCUSDT",
            order_id=order_id,
            orig_client_order_id=None,
            new_client_order_id=None,
            now_ms=1,
        )
    elif how == "unknown":
        order_id += 1000
    elif how == "other account":
        account = other
    elif how == "mismatch":
        orig = "c-2"
    else:
        symbol = "BNBUSDT"
    with pytest.raises(EngineError) as err:
        e.cancel_order(
            account,
            symbol=symbol,
            order_id=order_id,
            orig_client_order_id=orig,
            new_client_order_id=None,
            now_ms=2,
        )
    assert (err.value.code, err.value.msg) == (-2011, "Unknown order sent.")


def test_cancel_needs_an_order_id_or_a_client_id() -> None:
    """Cancel with neither orderId nor origClientOrderId is -1102."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    with pytest.raises(EngineError) as err:
        e.cancel_order(
            account,
            symbol="BTCUSDT",
            order_id=None,
            orig_client_order_id=None,
            new_client_order_id=None,
            now_ms=1,
        )
    assert err.value.code == -1102


# --- shapes and events -----------------------------------------------------------------------


def test_response_types_have_exactly_the_documented_keys() -> None:
    """ACK, RESULT and FULL responses carry the keys of protocol §4.3, in that order."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    assert list(place(e, account, price=D("100"), resp_type="ACK")) == ACK_KEYS
    assert list(place(e, account, price=D("100"), resp_type="RESULT")) == RESULT_KEYS
    full = place(e, account, price=D("100"))
    assert list(full) == [*RESULT_KEYS, "fills"] and full["fills"] == []
    _, ask = touch(e)
    taken = place(e, account, price=ask, quantity=D("0.04"))
    (fill,) = taken["fills"]
    assert list(fill) == ["price", "qty", "commission", "commissionAsset", "tradeId"]
    assert (fill["commission"], fill["commissionAsset"]) == ("0.00000000", "BTC")
    with pytest.raises(EngineError) as err:
        place(e, account, price=D("100"), resp_type="MAXIMAL")
    assert err.value.code == -1130


def test_order_query_shape() -> None:
    """GET /order, openOrders and allOrders rows have the documented keys and values."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    placed = place(e, account, price=D("100"), client_order_id="q-1", now_ms=7_000)
    order = e.get_order(
        account, symbol="BTCUSDT", order_id=placed["orderId"], orig_client_order_id=None
    )
    assert list(order) == QUERY_KEYS
    assert (order["time"], order["updateTime"], order["workingTime"]) == (7_000, 7_000, 7_000)
    assert (order["isWorking"], order["stopPrice"], order["icebergQty"]) == (
        True,
        "0.00000000",
        "0.00000000",
    )
    assert e.open_orders(account, "BTCUSDT") == [order] == e.open_orders(account, None)
    assert e.all_orders(account, symbol="BTCUSDT") == [order]
    assert e.open_orders(account, "ETHBTC") == []
    with pytest.raises(EngineError) as err:
        e.get_order(
            account, symbol="BTCUSDT", order_id=placed["orderId"] + 1, orig_client_order_id=None
        )
    assert (err.value.code, err.value.msg) == (-2013, "Order does not exist.")
    with pytest.raises(EngineError) as err:
        e.get_order(
            account, symbol="BTCUSDT", order_id=placed["orderId"], orig_client_order_id="q-9"
        )
    assert err.value.code == -2039


def test_execution_report_has_every_field_with_its_json_type() -> None:
    """executionReport: all §3.3 fields, ids/times ints, numbers strings, w/m/M bools; N is null
    without a fill and names the asset received on a fill (zero commission), as Binance does."""
    e = new_engine()
    maker, taker = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    place(e, maker, side="SELL", price=mid, quantity=D("0.1"), now_ms=10)
    place(e, taker, side="BUY", price=mid, quantity=D("0.1"), now_ms=20)
    out = e.drain()
    all_reports = reports(out, maker) + reports(out, taker)
    assert len(all_reports) == 4
    for report in all_reports:
        assert list(report) == REPORT_KEYS
        for key in "EigTtIOW":
            assert type(report[key]) is int, key
        for key in "qpPFlzLnZYQ":
            assert isinstance(report[key], str), key
        for key in "wmM":
            assert type(report[key]) is bool, key
        assert report["g"] == -1 and report["V"] == "NONE"
        if report["x"] == "TRADE":
            received = "BTC" if report["S"] == "BUY" else "USDT"
            assert (report["n"], report["N"]) == ("0.00000000", received)
        else:
            assert (report["n"], report["N"]) == ("0", None)
    trade = reports(out, taker)[1]
    assert (trade["t"], trade["M"], trade["T"], trade["E"], trade["O"]) == (
        out.trades[0].trade_id,
        True,
        20,
        20,
        20,
    )
    executions = [r["I"] for r in reports(out, maker)[:1] + reports(out, taker)]
    assert executions == sorted(executions) and len(set(executions)) == 3


def test_account_positions_follow_every_balance_change() -> None:
    """Placing locks (position with l), a fill moves both assets (position of each)."""
    e = new_engine()
    maker, taker = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    place(e, maker, side="BUY", price=mid, quantity=D("0.1"))
    out = e.drain()
    assert [p["B"] for p in positions(out, maker)] == [
        [{"a": "USDT", "f": fmt(RICH["USDT"] - mid / 10), "l": fmt(mid / 10)}]
    ]
    place(e, taker, side="SELL", price=mid, quantity=D("0.1"), now_ms=3_000)
    out = e.drain()
    (after,) = positions(out, maker)
    assert (after["E"], after["u"]) == (3_000, 3_000)
    assert sorted(after["B"], key=lambda b: b["a"]) == [
        {"a": "BTC", "f": fmt(RICH["BTC"] + D("0.1")), "l": "0.00000000"},
        {"a": "USDT", "f": fmt(RICH["USDT"] - mid / 10), "l": "0.00000000"},
    ]


def test_deposit_emits_balance_update_then_position() -> None:
    """A deposit is a balanceUpdate (delta) followed by an outboundAccountPosition (absolute)."""
    e = new_engine()
    account = e.create_account({"USDT": D("5")}, NO_FEES)
    e.deposit(account, "USDT", D("2.5"), now_ms=42)
    out = e.drain()
    assert [u.event for u in out.user_events] == [
        {"e": "balanceUpdate", "E": 42, "a": "USDT", "d": "2.50000000", "T": 42},
        {
            "e": "outboundAccountPosition",
            "E": 42,
            "u": 42,
            "B": [{"a": "USDT", "f": "7.50000000", "l": "0.00000000"}],
        },
    ]
    assert e.balances(account) == {"USDT": (D("7.5"), D(0))}


def test_only_user_accounts_get_user_events() -> None:
    """The simulated market trades with a user's order, and only that user gets events."""
    e = new_engine()
    user = e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    place(e, user, price=mid, quantity=D("0.05"))  # the new best bid, for agent sellers to hit
    e.drain()
    seen: list[int] = []
    for t in range(200):
        e.step(10_000 + t, 20)
        seen.extend(u.account_id for u in e.drain().user_events)
    assert set(seen) == {user}
    order = e.all_orders(user, symbol="BTCUSDT")[0]
    assert D(order["executedQty"]) > 0


def test_self_trade_is_allowed_and_neutral() -> None:
    """STP NONE: an account's order trades with its own; balances end where they began."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    sell = place(e, account, side="SELL", price=mid, quantity=D("0.1"))
    buy = place(e, account, side="BUY", price=mid, quantity=D("0.1"))
    assert buy["status"] == "FILLED" and buy["fills"][0]["price"] == fmt(mid)
    assert e.balances(account)["BTC"] == (RICH["BTC"], D(0))
    assert e.balances(account)["USDT"] == (RICH["USDT"], D(0))
    rows = e.my_trades(account, symbol="BTCUSDT")
    assert sorted((r["orderId"], r["isBuyer"], r["isMaker"]) for r in rows) == [
        (sell["orderId"], False, True),
        (buy["orderId"], True, False),
    ]
    assert rows[0]["id"] == rows[1]["id"]


def test_my_trades_and_all_orders_filters() -> None:
    """myTrades rows have the documented keys; fromId, orderId and limit select them."""
    e = new_engine()
    account, seller = e.create_account(RICH, NO_FEES), e.create_account(RICH, NO_FEES)
    mid = mid_price(e)
    place(e, seller, side="SELL", price=mid, quantity=D("0.2"))
    orders = [place(e, account, price=mid, quantity=D("0.04")) for _ in range(3)]
    ids = [o["orderId"] for o in orders]
    assert ids == sorted(ids) and len(set(ids)) == 3
    rows = e.my_trades(account, symbol="BTCUSDT")
    assert list(rows[0]) == [
        *["symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission"],
        *["commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch"],
    ]
    trade_ids = [r["id"] for r in rows]
    assert trade_ids == sorted(trade_ids) and len(rows) == 3
    assert e.my_trades(account, symbol="BTCUSDT", from_id=trade_ids[1]) == rows[1:]
    assert e.my_trades(account, symbol="BTCUSDT", order_id=ids[2]) == rows[2:]
    assert e.my_trades(account, symbol="BTCUSDT", limit=1) == rows[-1:]
    assert [o["orderId"] for o in e.all_orders(account, symbol="BTCUSDT", order_id=ids[1])] == ids[
        1:
    ]
    assert [o["orderId"] for o in e.all_orders(account, symbol="BTCUSDT", limit=2)] == ids[1:]
    assert e.my_trades(account, symbol="ETHBTC") == []


# --- depth updates ---------------------------------------------------------------------------


def test_each_book_change_advances_the_update_id_by_one() -> None:
    """Placing, taking and cancelling each add 1; the drained diff spans exactly those ids."""
    e = new_engine()
    account = e.create_account(RICH, NO_FEES)
    start = e.last_update_id("BTCUSDT")
    e.drain()
    mid = mid_price(e)
    placed = place(e, account, price=mid, quantity=D("0.5"))
    place(e, account, side="SELL", price=mid, quantity=D("0.2"))
    e.cancel_order(
        account,
        symbol="BTCUSDT",
        order_id=placed["orderId"],
        orig_client_order_id=None,
        new_client_order_id=None,
        now_ms=9,
    )
    assert e.last_update_id("BTCUSDT") == start + 3
    (diff,) = e.drain().diffs
    assert (diff.symbol, diff.first_update_id, diff.last_update_id) == (
        "BTCUSDT",
        start + 1,
        start + 3,
    )
    assert diff.bids == [(fmt(mid), "0.00000000")] and diff.asks == []
    assert e.drain().diffs == []


def test_futures_ids_skip_between_diffs_and_chain_by_prev_update_id() -> None:
    """skip_ids: ids advance 1-3 per change, U is rarely prev u + 1, pu is exactly prev u."""
    spot = new_engine(seed=4)
    futures = Engine(INFOS, seed=4, levels=10, skip_ids=True)
    drains: dict[bool, list[Any]] = {False: [], True: []}
    for e, skip in ((spot, False), (futures, True)):
        previous = {s: e.last_update_id(s) for s in SYMBOLS}
        for now in range(1, 60):
            e.step(now, 7)
            for diff in e.drain().diffs:
                assert diff.prev_update_id == previous[diff.symbol]
                assert diff.first_update_id <= diff.last_update_id
                assert diff.first_update_id - diff.prev_update_id in ((1, 2, 3) if skip else (1,))
                previous[diff.symbol] = diff.last_update_id
                drains[skip].append(diff)
    steps = [d.first_update_id - d.prev_update_id for d in drains[True]]
    assert {1, 2, 3} == set(steps)
    # The id steps come from their own seeded stream: both venues see the same market.
    assert [(d.symbol, d.bids, d.asks) for d in drains[True]] == [
        (d.symbol, d.bids, d.asks) for d in drains[False]
    ]
    assert [futures.full_book(s).bids for s in SYMBOLS] == [spot.full_book(s).bids for s in SYMBOLS]


def test_snapshot_is_best_first_and_limited() -> None:
    """snapshot(limit) gives the top levels best first; full_book all of them."""
    e = new_engine(levels=10)
    snap = e.snapshot("BTCUSDT", 3)
    assert len(snap.bids) == len(snap.asks) == 3
    bids = [D(p) for p, _ in snap.bids]
    asks = [D(p) for p, _ in snap.asks]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    full = e.full_book("BTCUSDT")
    assert len(full.bids) == len(full.asks) == 10 and full.bids[:3] == snap.bids
    assert full.last_update_id == snap.last_update_id == e.last_update_id("BTCUSDT")
    with pytest.raises(EngineError) as err:
        e.snapshot("NOPE", 5)
    assert err.value.code == -1121


def test_opening_books_are_seeded_and_independent_of_first_use() -> None:
    """The same seed gives the same opening book whenever a symbol is first looked at."""
    first = new_engine(seed=9)
    second = new_engine(seed=9)
    btc = first.full_book("BTCUSDT")
    second.full_book("BNBUSDT")
    second.full_book("ETHBTC")
    assert second.full_book("BTCUSDT") == btc
    assert first.last_price("BTCUSDT") == second.last_price("BTCUSDT")
    assert new_engine(seed=10).full_book("BTCUSDT") != btc


def test_the_simulation_is_deterministic() -> None:
    """Two engines with one seed produce the same diffs, trades and books step by step."""
    outputs = []
    for _ in range(2):
        e = new_engine(seed=3)
        e.step(1, 500)
        outputs.append((e.drain(), [e.full_book(s) for s in SYMBOLS]))
    assert outputs[0] == outputs[1]
    assert outputs[0][0].diffs and outputs[0][0].trades
