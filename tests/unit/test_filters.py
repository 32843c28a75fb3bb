"""Order parameters against symbol filters (protocol §4.3, §4.4, §7.2): every rule, its edges,
the nearest valid values offered, exact decimals, and the amounts refused."""

from __future__ import annotations

import copy
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.errors import InvalidOrder, MalformedMessage
from streamer.sansio.filters import (
    ORDER_TYPES,
    SymbolFilters,
    parse_amount,
    parse_filters,
    prepare_order,
    quantize_price,
    quantize_qty,
    spell,
)
from streamer.testing.exchange.symbols import load_exchange_info

# The real exchangeInfo of 2021-10-12 that the local exchange ships (1,695 symbols).
ENTRIES = {entry["symbol"]: entry for entry in load_exchange_info()["symbols"]}
BTCUSDT = parse_filters(ENTRIES["BTCUSDT"])
CID = "test-order_1.a"


def entry_with(base: str = "BTCUSDT", **changes: Any) -> dict[str, Any]:
    """A copy of a real entry; ``filters`` given as {filterType: fields} replace or add."""
    entry = copy.deepcopy(ENTRIES[base])
    filters = changes.pop("filters", {})
    for kind, fields in filters.items():
        entry["filters"] = [f for f in entry["filters"] if f["filterType"] != kind]
        if fields is not None:
            entry["filters"].append({"filterType": kind, **fields})
    entry.update(changes)
    return entry


def with_filters(**changes: Any) -> SymbolFilters:
    return parse_filters(entry_with(**changes))


# A symbol of today's shape (NOTIONAL with a maximum, PERCENT_PRICE_BY_SIDE, every order type),
# built on BTCUSDT: fields and spellings as Binance's filters.md documents them.
MODERN = with_filters(
    orderTypes=list(ORDER_TYPES),
    filters={
        "MIN_NOTIONAL": None,
        "PERCENT_PRICE": None,
        "NOTIONAL": {
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        "PERCENT_PRICE_BY_SIDE": {
            "bidMultiplierUp": "5",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.2",
            "avgPriceMins": 5,
        },
    },
)


def limit(filters: SymbolFilters = BTCUSDT, **kw: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.001",
        "price": "50000",
        "time_in_force": "GTC",
        "client_order_id": CID,
    }
    args.update(kw)
    return prepare_order(filters, **args)


def refused(filters: SymbolFilters = BTCUSDT, **kw: Any) -> InvalidOrder:
    with pytest.raises(InvalidOrder) as info:
        limit(filters, **kw)
    return info.value


# -- parsing --------------------------------------------------------------------------------------


def test_parse_real_btcusdt() -> None:
    """The real BTCUSDT entry parses to its exact filters, order types (today's seven, as the
    local exchange serves them) and status."""
    f = BTCUSDT
    assert (f.symbol, f.status) == ("BTCUSDT", "TRADING")
    assert (f.base_asset, f.quote_asset) == ("BTC", "USDT")
    assert f.order_types == (
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    )
    assert f.price_filter is not None and f.lot_size is not None and f.market_lot_size is not None
    assert f.price_filter.tick_size == Decimal("0.01")
    assert (f.price_filter.min_price, f.price_filter.max_price) == (Decimal("0.01"), Decimal(10**6))
    assert (f.lot_size.min_qty, f.lot_size.step_size) == (Decimal("0.00001"), Decimal("0.00001"))
    assert f.market_lot_size.max_qty == Decimal("100.05381873")
    assert f.market_lot_size.step_size == 0
    (notional,) = f.notional
    assert (notional.filter_type, notional.min_notional) == ("MIN_NOTIONAL", Decimal(10))
    assert notional.apply_min_to_market and notional.max_notional == 0
    (band,) = f.percent_price
    assert (band.filter_type, band.bid_multiplier_up, band.ask_multiplier_down) == (
        "PERCENT_PRICE",
        Decimal(5),
        Decimal("0.2"),
    )
    assert "ICEBERG_PARTS" in f.filter_types and "MAX_NUM_ORDERS" in f.filter_types
    assert (f.base_asset_precision, f.quote_asset_precision) == (8, 8)


def test_every_real_entry_parses() -> None:
    """All 1,695 real entries parse, each with its PRICE_FILTER and LOT_SIZE."""
    for entry in ENTRIES.values():
        f = parse_filters(entry)
        assert f.price_filter is not None and f.lot_size is not None, f.symbol
        assert f.filter_types[0] == "PRICE_FILTER"


def test_parse_modern_filters() -> None:
    """NOTIONAL (with its maximum and market flags) and PERCENT_PRICE_BY_SIDE are read."""
    (notional,) = MODERN.notional
    assert (notional.filter_type, notional.max_notional) == ("NOTIONAL", Decimal(9_000_000))
    assert notional.apply_min_to_market and not notional.apply_max_to_market
    (band,) = MODERN.percent_price
    assert band.filter_type == "PERCENT_PRICE_BY_SIDE"
    assert band.ask_multiplier_up == 5 and band.bid_multiplier_down == Decimal("0.2")


@pytest.mark.parametrize(
    "entry",
    [
        [],
        {"status": "TRADING"},  # no symbol
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B", "filters": {}},
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B", "filters": [{"minPrice": "1"}]},
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": 0.01}]},
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B",
         "filters": [{"filterType": "LOT_SIZE", "stepSize": "-1"}]},
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B",
         "filters": [{"filterType": "LOT_SIZE", "stepSize": "NaN"}]},
        {"symbol": "X", "baseAsset": "A", "quoteAsset": "B", "orderTypes": "LIMIT"},
        {"symbol": "X", "baseAsset": "A"},  # no quoteAsset
    ],
)  # fmt: skip
def test_malformed_entry(entry: Any) -> None:
    """A malformed exchangeInfo entry is MalformedMessage, never a crash or a guess."""
    with pytest.raises(MalformedMessage):
        parse_filters(entry)


# -- the output -----------------------------------------------------------------------------------


def test_limit_order_params() -> None:
    """A valid LIMIT order gives its POST parameters, in order, spelled to tick and step."""
    assert limit(price="50000.1", quantity="0.001") == {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.00100",
        "price": "50000.10",
        "newClientOrderId": CID,
    }


@pytest.mark.parametrize(
    ("price", "quantity", "spelled"),
    [
        (Decimal("5E+4"), Decimal("1E-3"), ("50000.00", "0.00100")),
        (50000, "0.0010000000000", ("50000.00", "0.00100")),
        ("50000.000000", Decimal("0.00100000"), ("50000.00", "0.00100")),
        ("+50000", "1e-3", ("50000.00", "0.00100")),
        ("0.01", "8999.99999", ("0.01", "8999.99999")),
    ],
)
def test_plain_notation(price: Any, quantity: Any, spelled: tuple[str, str]) -> None:
    """Whatever the caller's spelling (exponent, int, extra zeros), the wire gets one plain
    spelling with the filter's decimals, never an exponent."""
    params = limit(price=price, quantity=quantity)
    assert (params["price"], params["quantity"]) == spelled


def test_spell() -> None:
    """spell: the step's decimals when set, trailing zeros stripped when not, no exponent."""
    assert spell(Decimal("1E-7")) == "0.0000001"
    assert spell(Decimal("1E+3")) == "1000"
    assert spell(Decimal("100.500")) == "100.5"
    assert spell(Decimal("100.5"), Decimal("0.00100000")) == "100.500"
    assert spell(Decimal("100"), Decimal("10")) == "100"
    assert spell(Decimal("0E-8")) == "0"


# -- parameters by order type ---------------------------------------------------------------------


def order(type_: str, **kw: Any) -> dict[str, Any]:
    return {"side": "SELL", "type": type_, "client_order_id": CID, **kw}


OK_ORDERS = [
    order("LIMIT", quantity="0.001", price="50000", time_in_force="GTC"),
    order("MARKET", quantity="0.001"),
    order("MARKET", quantity=None, quote_order_qty="100"),
    order("STOP_LOSS", quantity="0.001", stop_price="40000"),
    order("STOP_LOSS_LIMIT", quantity="0.001", price="39900", stop_price="40000",
          time_in_force="GTC"),
    order("TAKE_PROFIT", quantity="0.001", stop_price="60000"),
    order("TAKE_PROFIT_LIMIT", quantity="0.001", price="60100", stop_price="60000",
          time_in_force="IOC"),
    order("LIMIT_MAKER", quantity="0.001", price="50000"),
]  # fmt: skip


@pytest.mark.parametrize("args", OK_ORDERS, ids=lambda a: a["type"])
def test_every_order_type(args: dict[str, Any]) -> None:
    """Each order type with exactly its mandatory parameters passes, and only those go out."""
    params = prepare_order(MODERN, **args)
    expected = {"symbol", "side", "type", "newClientOrderId"}
    names = {"quantity": "quantity", "price": "price", "stop_price": "stopPrice",
             "time_in_force": "timeInForce", "quote_order_qty": "quoteOrderQty"}  # fmt: skip
    expected |= {wire for arg, wire in names.items() if args.get(arg) is not None}
    assert set(params) == expected
    assert params["type"] == args["type"]


@pytest.mark.parametrize(
    ("args", "param"),
    [
        (order("LIMIT", quantity="0.001", price="50000"), "timeInForce"),
        (order("LIMIT", quantity="0.001", time_in_force="GTC"), "price"),
        (order("LIMIT", quantity=None, price="50000", time_in_force="GTC"), "quantity"),
        (order("LIMIT", quantity="0.001", price="50000", time_in_force="GTC",
               stop_price="1"), "stopPrice"),
        (order("LIMIT", quantity="0.001", price="50000", time_in_force="GTC",
               quote_order_qty="10"), "quoteOrderQty"),
        (order("MARKET", quantity=None), "quantity"),
        (order("MARKET", quantity="0.001", quote_order_qty="100"), "quantity"),
        (order("MARKET", quantity="0.001", price="50000"), "price"),
        (order("MARKET", quantity="0.001", time_in_force="GTC"), "timeInForce"),
        (order("STOP_LOSS", quantity="0.001"), "stopPrice"),
        (order("STOP_LOSS", quantity="0.001", stop_price="1", price="1"), "price"),
        (order("STOP_LOSS_LIMIT", quantity="0.001", price="1", time_in_force="GTC"), "stopPrice"),
        (order("STOP_LOSS_LIMIT", quantity="0.001", price="1", stop_price="1"), "timeInForce"),
        (order("TAKE_PROFIT", quantity="0.001", stop_price="1", time_in_force="GTC"),
         "timeInForce"),
        (order("TAKE_PROFIT_LIMIT", quantity="0.001", stop_price="1", time_in_force="GTC"),
         "price"),
        (order("LIMIT_MAKER", quantity="0.001", price="50000", time_in_force="GTC"),
         "timeInForce"),
        (order("LIMIT_MAKER", quantity="0.001"), "price"),
    ],
)  # fmt: skip
def test_mandatory_and_unwanted_parameters(args: dict[str, Any], param: str) -> None:
    """A parameter the type needs but lacks, or takes no, is refused, naming it (protocol §4.3)."""
    with pytest.raises(InvalidOrder) as info:
        prepare_order(MODERN, **args)
    assert info.value.param == param
    assert info.value.filter is None
    assert info.value.symbol == "BTCUSDT" and info.value.client_order_id == CID


def test_order_type_not_listed() -> None:
    """An order type missing from the symbol's orderTypes is refused (BTCUSDT as Binance
    listed it in 2021: no STOP_LOSS)."""
    entry = dict(ENTRIES["BTCUSDT"])
    entry["orderTypes"] = [t for t in entry["orderTypes"] if t not in ("STOP_LOSS", "TAKE_PROFIT")]
    with pytest.raises(InvalidOrder) as info:
        prepare_order(
            parse_filters(entry), **order("STOP_LOSS", quantity="0.001", stop_price="40000")
        )
    assert (info.value.filter, info.value.param) == ("orderTypes", "type")
    assert "STOP_LOSS" in str(info.value) and "LIMIT_MAKER" in str(info.value)


def test_symbol_not_trading() -> None:
    """A symbol in BREAK (a real one) takes no orders: refused before anything is sent."""
    broken = parse_filters(ENTRIES["BCCBTC"])
    assert broken.status == "BREAK"
    with pytest.raises(InvalidOrder) as info:
        prepare_order(broken, **order("MARKET", quantity="1"))
    assert info.value.filter == "status"
    assert "BREAK" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("side", "buy"), ("side", "SIDEWAYS"), ("type", "LIMIT_TAKER"), ("type", "limit"),
     ("time_in_force", "GTX"), ("side", None)],
)  # fmt: skip
def test_bad_enums(field: str, value: Any) -> None:
    """Side, type and time in force take exactly Binance's values (case matters)."""
    err = refused(**{field: value})
    assert err.param == {"time_in_force": "timeInForce"}.get(field, field)


@pytest.mark.parametrize(
    "cid", ["a", "A" * 36, "x.y_z-1", "web_0123456789abcdef", "-.-_", "9" * 36]
)
def test_client_order_id_accepted(cid: str) -> None:
    """Client ids of 1 to 36 characters of [A-Za-z0-9._-] are sent as given."""
    assert limit(client_order_id=cid)["newClientOrderId"] == cid


@pytest.mark.parametrize(
    "cid", ["", "A" * 37, "has space", "bang!", "ünïcode", "abc\n", "a/b", "a+b", None, 12]
)
def test_client_order_id_refused(cid: Any) -> None:
    """Anything else is refused before sending: the exchange would answer -1100."""
    err = refused(client_order_id=cid)
    assert err.param == "newClientOrderId"


# -- PRICE_FILTER ---------------------------------------------------------------------------------


def test_tick_violation_names_both_neighbours() -> None:
    """A price off the tick names PRICE_FILTER, the tick, and both valid neighbours."""
    err = refused(price="100.005", quantity="1")
    assert str(err) == (
        "price 100.005 is not a multiple of PRICE_FILTER tickSize 0.01; "
        "nearest valid: 100.00 or 100.01"
    )
    assert (err.filter, err.param, err.nearest) == ("PRICE_FILTER", "price", "100.00")  # a tie


@pytest.mark.parametrize(("price", "nearest"), [("100.003", "100.00"), ("100.007", "100.01")])
def test_nearest_is_the_closer_neighbour(price: str, nearest: str) -> None:
    """``nearest`` is the closer of the two neighbours."""
    assert refused(price=price, quantity="1").nearest == nearest


def test_price_bounds() -> None:
    """Below minPrice and above maxPrice are refused with the bound's nearest valid price."""
    low = refused(price="0.001")
    assert str(low) == "price 0.001 is below PRICE_FILTER minPrice 0.01; nearest valid: 0.01"
    assert low.nearest == "0.01"
    high = refused(price="1000000.01", quantity="0.00001")
    assert str(high).startswith("price 1000000.01 is above PRICE_FILTER maxPrice 1000000;")
    assert high.nearest == "1000000.00"
    # The bounds themselves are valid.
    assert limit(price="0.01", quantity="1000")["price"] == "0.01"
    assert limit(price="1000000", quantity="0.00001")["price"] == "1000000.00"


def test_modulo_rule_is_price_mod_tick() -> None:
    """Since 2022-02-24 the rule is price % tickSize, not (price - minPrice) % tickSize."""
    f = with_filters(
        filters={
            "PRICE_FILTER": {"minPrice": "0.015", "maxPrice": "0", "tickSize": "0.01"},
            "MIN_NOTIONAL": None,
        }
    )
    assert limit(f, price="0.02")["price"] == "0.02"
    err = refused(f, price="0.025")
    assert (err.filter, err.nearest) == ("PRICE_FILTER", "0.02")
    below = refused(f, price="0.01")
    assert below.nearest == "0.02"  # the smallest multiple of the tick at or above minPrice


def test_stop_price_uses_price_filter() -> None:
    """stopPrice obeys PRICE_FILTER too, named as stopPrice."""
    with pytest.raises(InvalidOrder) as info:
        prepare_order(MODERN, **order("STOP_LOSS", quantity="0.001", stop_price="40000.001"))
    assert (info.value.filter, info.value.param) == ("PRICE_FILTER", "stopPrice")
    assert info.value.nearest == "40000.00"


def test_zero_disables_each_price_rule() -> None:
    """minPrice, maxPrice and tickSize of 0 each switch their rule off; the price is sent
    with its trailing zeros stripped (there is no tick to spell it with)."""
    f = with_filters(
        filters={
            "PRICE_FILTER": {"minPrice": "0", "maxPrice": "0", "tickSize": "0"},
            "MIN_NOTIONAL": None,
        }
    )
    assert limit(f, price="0.00000001")["price"] == "0.00000001"
    assert limit(f, price="123456789.12345678")["price"] == "123456789.12345678"
    assert limit(f, price="100.1230")["price"] == "100.123"


def test_precision_when_tick_is_off() -> None:
    """With no tick, the asset precision still bounds the decimals (the exchange's -1111)."""
    f = with_filters(
        quoteAssetPrecision=2,
        filters={
            "PRICE_FILTER": {"minPrice": "0", "maxPrice": "0", "tickSize": "0"},
            "MIN_NOTIONAL": None,
        },
    )
    err = refused(f, price="1.005")
    assert (err.filter, err.param) == ("quoteAssetPrecision", "price")
    assert str(err).endswith("nearest valid: 1.00 or 1.01")


# -- LOT_SIZE and MARKET_LOT_SIZE -----------------------------------------------------------------


def test_lot_size_rules() -> None:
    """Step, minimum and maximum of LOT_SIZE, each with its nearest valid quantity."""
    step = refused(quantity="0.000015")
    assert str(step) == (
        "quantity 0.000015 is not a multiple of LOT_SIZE stepSize 0.00001; "
        "nearest valid: 0.00001 or 0.00002"
    )
    assert (step.filter, step.param) == ("LOT_SIZE", "quantity")
    small = refused(quantity="0.000001", price="50000")
    assert small.filter == "LOT_SIZE" and small.nearest == "0.00001"
    big = refused(quantity="9000.00001", price="1")
    assert str(big).startswith("quantity 9000.00001 is above LOT_SIZE maxQty 9000;")
    assert big.nearest == "9000.00000"


def test_market_checks_market_lot_size() -> None:
    """A MARKET order also obeys MARKET_LOT_SIZE (real BTCUSDT: maxQty 100.05381873), which a
    LIMIT order of the same size does not."""
    with pytest.raises(InvalidOrder) as info:
        prepare_order(BTCUSDT, **order("MARKET", quantity="200"))
    assert (info.value.filter, info.value.nearest) == ("MARKET_LOT_SIZE", "100.05381")
    assert limit(quantity="200", price="1")["quantity"] == "200.00000"


def test_market_lot_step_with_lot_step() -> None:
    """With both steps set, a MARKET quantity must fit both; the nearest values fit both."""
    f = with_filters(
        filters={
            "LOT_SIZE": {"minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            "MARKET_LOT_SIZE": {"minQty": "0.01", "maxQty": "100", "stepSize": "0.01"},
        }
    )
    with pytest.raises(InvalidOrder) as info:
        prepare_order(f, **order("MARKET", quantity="0.015"))
    assert info.value.filter == "MARKET_LOT_SIZE"
    assert str(info.value).endswith("nearest valid: 0.01 or 0.02")
    assert prepare_order(f, **order("MARKET", quantity="0.02"))["quantity"] == "0.02"
    assert limit(f, quantity="0.015", price="1000")["quantity"] == "0.015"


def test_zero_disables_each_lot_rule() -> None:
    """minQty, maxQty and stepSize of 0 each switch their rule off."""
    f = with_filters(
        filters={
            "LOT_SIZE": {"minQty": "0", "maxQty": "0", "stepSize": "0"},
            "MIN_NOTIONAL": None,
        }
    )
    assert limit(f, quantity="0.00000001")["quantity"] == "0.00000001"
    assert limit(f, quantity="12345678901")["quantity"] == "12345678901"


# -- NOTIONAL and MIN_NOTIONAL --------------------------------------------------------------------


def test_min_notional() -> None:
    """price x quantity under MIN_NOTIONAL is refused with the smallest valid quantity."""
    err = refused(price="50000", quantity="0.0001")
    assert str(err) == (
        "notional 5 (price x quantity) is below MIN_NOTIONAL minNotional 10; "
        "nearest valid quantity: 0.00020"
    )
    assert (err.filter, err.param, err.nearest) == ("MIN_NOTIONAL", "quantity", "0.00020")
    assert limit(price="50000", quantity="0.0002")["quantity"] == "0.00020"  # exactly 10


def test_notional_minimum_rounds_the_quantity_up() -> None:
    """The quantity offered is the first step whose notional reaches the minimum."""
    err = refused(price="30000", quantity="0.0001")  # 10 / 30000 = 0.000333...
    assert err.nearest == "0.00034"
    assert limit(price="30000", quantity=err.nearest)["quantity"] == "0.00034"


def test_notional_maximum() -> None:
    """NOTIONAL's maxNotional is a ceiling for LIMIT orders, offered rounded down."""
    err = refused(MODERN, price="1000000", quantity="9.00001")
    assert err.filter == "NOTIONAL"
    assert str(err).startswith("notional 9000010 (price x quantity) is above NOTIONAL maxNotional")
    assert err.nearest == "9.00000"


def test_notional_is_exact() -> None:
    """Products are exact: a notional equal to the maximum passes, one step more fails."""
    product = Decimal("999999.99") * Decimal("8999.99999")
    f = with_filters(
        filters={"MIN_NOTIONAL": None,
                 "NOTIONAL": {"minNotional": "0", "maxNotional": format(product, "f"),
                              "applyMinToMarket": True, "applyMaxToMarket": True}},
    )  # fmt: skip
    assert limit(f, price="999999.99", quantity="8999.99999")["quantity"] == "8999.99999"
    err = refused(f, price="1000000", quantity="8999.99999")
    assert err.filter == "NOTIONAL"


def test_market_notional_needs_a_reference_price() -> None:
    """MARKET orders are checked against the reference price when one is given (the exchange
    uses its own otherwise), and only if the filter applies to market orders."""
    small = order("MARKET", quantity="0.00001")
    assert prepare_order(BTCUSDT, **small)["quantity"] == "0.00001"  # no reference: not checked
    with pytest.raises(InvalidOrder) as info:
        prepare_order(BTCUSDT, **small, reference_price="50000")
    assert info.value.filter == "MIN_NOTIONAL"
    assert "reference price x quantity" in str(info.value)
    assert info.value.nearest == "0.00020"
    lenient = with_filters(
        filters={"MIN_NOTIONAL": {"minNotional": "10", "applyToMarket": False, "avgPriceMins": 5}}
    )
    assert prepare_order(lenient, **small, reference_price="50000")["quantity"] == "0.00001"


def test_notional_max_not_applied_to_market_unless_said() -> None:
    """applyMaxToMarket false: a huge MARKET order passes NOTIONAL's maximum."""
    big = order("MARKET", quantity="100")
    assert prepare_order(MODERN, **big, reference_price="1000000")["quantity"] == "100.00000"


def test_quote_order_qty() -> None:
    """A MARKET quoteOrderQty is the notional itself; symbols may forbid it."""
    buy = order("MARKET", quantity=None, quote_order_qty="4.99")
    with pytest.raises(InvalidOrder) as info:
        prepare_order(MODERN, **buy)
    assert (info.value.filter, info.value.param, info.value.nearest) == (
        "NOTIONAL",
        "quoteOrderQty",
        "5",
    )
    assert prepare_order(MODERN, **{**buy, "quote_order_qty": "5.000"})["quoteOrderQty"] == "5"
    closed = with_filters(quoteOrderQtyMarketAllowed=False)
    with pytest.raises(InvalidOrder) as info:
        prepare_order(closed, **{**buy, "quote_order_qty": "100"})
    assert info.value.filter == "quoteOrderQtyMarketAllowed"


def test_stop_market_notional_uses_stop_price() -> None:
    """STOP_LOSS / TAKE_PROFIT become market orders at stopPrice: their notional uses it."""
    with pytest.raises(InvalidOrder) as info:
        prepare_order(MODERN, **order("STOP_LOSS", quantity="0.0001", stop_price="40000"))
    assert info.value.filter == "NOTIONAL"
    assert "stopPrice x quantity" in str(info.value)
    assert info.value.nearest == "0.00013"


# -- PERCENT_PRICE(_BY_SIDE) ----------------------------------------------------------------------


def test_percent_price_by_side() -> None:
    """Each side's band around the reference price; the nearest price inside is offered."""
    buy = refused(MODERN, price="50000.01", reference_price="10000")
    assert buy.filter == "PERCENT_PRICE_BY_SIDE"
    assert str(buy).startswith(
        "price 50000.01 is above PERCENT_PRICE_BY_SIDE bidMultiplierUp 5 x reference price "
        "10000 = 50000"
    )
    assert buy.nearest == "50000.00"
    sell = refused(MODERN, side="SELL", price="1999.99", quantity="1", reference_price="10000")
    assert "askMultiplierDown 0.2" in str(sell)
    assert sell.nearest == "2000.00"
    assert limit(MODERN, price="50000", reference_price="10000")["price"] == "50000.00"
    assert limit(MODERN, price="90000")["price"] == "90000.00"  # no reference: not checked


def test_percent_price_by_side_sides_differ() -> None:
    """The bid and ask bands are separate: the same price passes one side only."""
    f = with_filters(
        filters={
            "PERCENT_PRICE": None,
            "PERCENT_PRICE_BY_SIDE": {"bidMultiplierUp": "1.2", "bidMultiplierDown": "0.2",
                                      "askMultiplierUp": "5", "askMultiplierDown": "0.8",
                                      "avgPriceMins": 1},
        }
    )  # fmt: skip
    assert limit(f, side="SELL", price="13000", reference_price="10000")["price"] == "13000.00"
    err = refused(f, side="BUY", price="13000", reference_price="10000")
    assert err.nearest == "12000.00"


def test_percent_price_real() -> None:
    """The real BTCUSDT PERCENT_PRICE (x0.2 .. x5) bounds both sides alike."""
    err = refused(side="SELL", price="1999.99", quantity="1", reference_price="10000")
    assert (err.filter, err.nearest) == ("PERCENT_PRICE", "2000.00")
    assert "multiplierDown 0.2" in str(err)


# -- amounts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["quantity", "price", "reference_price"])
def test_floats_refused(param: str) -> None:
    """A float is refused with a message that says to pass a str or Decimal."""
    err = refused(**{param: 0.1})
    assert "float" in str(err) and "pass a str or Decimal" in str(err)
    assert err.param == param


def test_float_stop_price_and_quote_refused() -> None:
    """stopPrice and quoteOrderQty refuse floats too."""
    with pytest.raises(InvalidOrder, match="pass a str or Decimal"):
        prepare_order(MODERN, **order("STOP_LOSS", quantity="1", stop_price=40000.0))
    with pytest.raises(InvalidOrder, match="pass a str or Decimal"):
        prepare_order(MODERN, **order("MARKET", quantity=None, quote_order_qty=10.0))


@pytest.mark.parametrize(
    "value",
    ["nan", "NaN", "inf", "-Infinity", Decimal("NaN"), Decimal("Infinity"), Decimal("sNaN"),
     "-1", "-0.001", Decimal("-1"), -1, "0", "0.000", 0, Decimal("0E-8"), "abc", "1,5", " 1",
     "1 ", "1_000", "", "0x10", "1.2.3", "--1", True, [], b"1"],
)  # fmt: skip
def test_bad_amounts_refused(value: Any) -> None:
    """Non-finite, negative, zero and non-numeric quantities are refused, naming the param."""
    err = refused(quantity=value)
    assert err.param == "quantity"
    assert err.filter is None


def test_amount_digit_limits() -> None:
    """More than 20 integer digits or 20 decimals cannot be sent (protocol §7.2)."""
    with pytest.raises(InvalidOrder, match="20 integer digits"):
        parse_amount("price", "1" * 21)
    with pytest.raises(InvalidOrder, match="20 decimals"):
        parse_amount("price", "0." + "0" * 20 + "1")
    with pytest.raises(InvalidOrder, match="20 integer digits"):
        parse_amount("price", "1e999999")
    assert parse_amount("price", "9" * 20) == Decimal("9" * 20)
    assert parse_amount("price", "0." + "0" * 19 + "1") == Decimal("1e-20")
    assert parse_amount("price", "1.000000000000000000000000000") == 1  # zeros do not count


# -- quantize helpers -----------------------------------------------------------------------------


def test_quantize_price() -> None:
    """quantize_price rounds to the tick (down by default) and keeps the tick's decimals."""
    assert str(quantize_price(BTCUSDT, "100.009")) == "100.00"
    assert str(quantize_price(BTCUSDT, "100.005", ROUND_HALF_UP)) == "100.01"
    assert str(quantize_price(BTCUSDT, "100.001", ROUND_CEILING)) == "100.01"
    assert str(quantize_price(BTCUSDT, 100)) == "100.00"
    assert str(quantize_price(BTCUSDT, Decimal("1E+2"))) == "100.00"
    assert limit(price=quantize_price(BTCUSDT, "49999.999"))["price"] == "49999.99"
    with pytest.raises(InvalidOrder, match="float"):
        quantize_price(BTCUSDT, 100.5)  # type: ignore[arg-type]  # the point


def test_quantize_qty() -> None:
    """quantize_qty rounds to the step (MARKET: to both steps) and keeps the step's decimals."""
    assert str(quantize_qty(BTCUSDT, "0.0012345")) == "0.00123"
    assert str(quantize_qty(BTCUSDT, "0.0012345", ROUND_CEILING)) == "0.00124"
    f = with_filters(
        filters={"MARKET_LOT_SIZE": {"minQty": "0", "maxQty": "0", "stepSize": "0.01"}}
    )
    assert str(quantize_qty(f, "0.0157", market=True)) == "0.01"
    assert str(quantize_qty(f, "0.0157")) == "0.01570"
    computed = Decimal(20) / Decimal("262.45")  # 28 digits: rounding them is the point
    assert str(quantize_qty(BTCUSDT, computed, ROUND_CEILING)) == "0.07621"
    assert str(quantize_price(BTCUSDT, Decimal(1) / 3)) == "0.33"


# -- properties -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    price=st.decimals(min_value="0.001", max_value="1500000", places=3),
    quantity=st.decimals(min_value="0.000001", max_value="10000", places=6),
)
def test_nearest_values_are_valid(price: Decimal, quantity: Decimal) -> None:
    """Whatever is refused, putting the nearest value offered in its place passes that check
    (and so on until the order passes, or no valid value exists)."""
    args: dict[str, Any] = {"price": price, "quantity": quantity}
    for _ in range(4):
        try:
            params = limit(**args)
        except InvalidOrder as err:
            if err.nearest is None:
                assert "none valid" in str(err)
                return
            assert err.param in ("price", "quantity")
            assert args[err.param] != Decimal(err.nearest)
            args[err.param] = err.nearest
            continue
        assert Decimal(params["price"]) == Decimal(args["price"])
        assert Decimal(params["quantity"]) == Decimal(args["quantity"])
        assert Decimal(params["price"]) % Decimal("0.01") == 0
        assert Decimal(params["quantity"]) % Decimal("0.00001") == 0
        assert Decimal(params["price"]) * Decimal(params["quantity"]) >= 10
        return
    raise AssertionError(f"still refused after 4 corrections: {args}")


@settings(max_examples=200, deadline=None)
@given(value=st.decimals(min_value="0.00000001", max_value="99999999", places=8))
def test_quantized_values_pass_the_grid(value: Decimal) -> None:
    """quantize_price/quantize_qty results are always on the tick/step and spelled the way
    prepare_order spells them."""
    price = quantize_price(BTCUSDT, value)
    qty = quantize_qty(BTCUSDT, value)
    assert price % Decimal("0.01") == 0 and qty % Decimal("0.00001") == 0
    assert 0 <= value - price < Decimal("0.01") and 0 <= value - qty < Decimal("0.00001")
    assert spell(price, Decimal("0.01")) == format(price, "f")
