"""Symbol filters, and order parameters checked against them before anything is sent.

Pure: an exchangeInfo symbol entry goes in (:func:`parse_filters`), a validated parameter dict
comes out (:func:`prepare_order`), or :class:`~streamer.errors.InvalidOrder` naming the filter
and the nearest valid value. Nothing here reads a clock or the network.

Rules (protocol §4.3, §4.4, §7.2):

* ``PRICE_FILTER`` on ``price`` and ``stopPrice``: ``minPrice <= p <= maxPrice`` and
  ``p % tickSize == 0`` (not ``(p - minPrice) % tickSize``, since 2022-02-24); every rule is off
  when its value is 0.
* ``LOT_SIZE`` on the quantity of every order; for MARKET orders ``MARKET_LOT_SIZE`` as well,
  as the local exchange checks them: the stricter reading of "MARKET_LOT_SIZE is LOT_SIZE for
  MARKET orders", so no lot passed here is refused there (most symbols list a MARKET_LOT_SIZE
  of zeros but for ``maxQty``, which leaves LOT_SIZE's step and minimum in force).
* Asset precision: more decimals than ``baseAssetPrecision`` (quantity) or
  ``quoteAssetPrecision`` (prices) is -1111 on the exchange; it only matters when a step is 0.
* ``NOTIONAL`` / ``MIN_NOTIONAL``: ``minNotional <= price * quantity (<= maxNotional)``. Orders
  that execute as market orders (MARKET, STOP_LOSS, TAKE_PROFIT) are checked only where the
  filter applies to market orders (``applyToMarket``, ``applyMinToMarket``,
  ``applyMaxToMarket``), with the caller's ``reference_price`` for MARKET (skipped without one:
  the exchange uses its own average price) and the ``stopPrice`` for STOP_LOSS / TAKE_PROFIT
  (the price at which they become market orders). A MARKET ``quoteOrderQty`` is the notional.
* ``PERCENT_PRICE`` / ``PERCENT_PRICE_BY_SIDE``: the limit price within the band the side's
  multipliers draw around ``reference_price``; checked only when one is given (the exchange uses
  a weighted average price that only it knows).
* The mandatory parameters of each order type (the §4.3 table; a parameter the type does not
  take is refused as Binance refuses it, -1106), the symbol's ``orderTypes``, and its
  ``status`` (only ``TRADING`` takes new orders).

Amounts are :class:`~decimal.Decimal`, ``str`` or ``int``. A ``float`` is refused: it has
already lost the exact value (``0.1`` is not 1/10), and guessing it back is how orders get sent
one tick off. NaN, infinities, zero, negatives and text that is not a plain number are refused.

Spelling: prices and quantities are sent in plain notation (never ``1E-7``, never through a
float) with exactly the decimals of their filter's step: ``100.1`` with a tick of ``0.01``
goes out as ``100.10``. One value thus always has one spelling (the same as a
:func:`quantize_price` result), whatever digits the caller gave. With a disabled step (0) the
value goes out with its trailing zeros stripped.

Limits: ``icebergQty``, ``trailingDelta``, pegged orders and the count filters
(``MAX_NUM_ORDERS``, ``ICEBERG_PARTS``, ...) are not handled here: the exchange still checks
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import Any, Final

from streamer.errors import InvalidOrder, MalformedMessage

__all__ = [
    "CLIENT_ORDER_ID",
    "ORDER_TYPES",
    "SIDES",
    "TIME_IN_FORCE",
    "Amount",
    "LotSize",
    "NotionalFilter",
    "PercentPriceFilter",
    "PriceFilter",
    "SymbolFilters",
    "parse_amount",
    "parse_filters",
    "prepare_order",
    "quantize_price",
    "quantize_qty",
    "spell",
]

Amount = Decimal | str | int
"""What a caller may pass as a price or quantity (never a float)."""

ORDER_TYPES: Final = (
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
    "LIMIT_MAKER",
)
SIDES: Final = ("BUY", "SELL")
TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK")
#: Client order ids the exchange takes (protocol §5.4 and §9.8: hyphens and dots included).
CLIENT_ORDER_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,36}")

# Exact arithmetic: the wire allows 20 integer and 20 decimal digits (protocol §7.2), so products
# and quotients of two such numbers fit in 80 digits without rounding.
_CTX: Final = Context(prec=80, traps=[InvalidOperation])
_MAX_DIGITS: Final = 20
_ZERO: Final = Decimal(0)
_NUMBER: Final = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class _TypeRule:
    """Which parameters an order type takes (each one it takes is also mandatory)."""

    price: bool
    stop_price: bool
    time_in_force: bool
    market: bool  # executes as a market order (notional rules "to market")


# Protocol §4.3, "Mandatory extras by type". MARKET takes quantity or quoteOrderQty.
_TYPE_RULES: Final = {
    "LIMIT": _TypeRule(price=True, stop_price=False, time_in_force=True, market=False),
    "MARKET": _TypeRule(price=False, stop_price=False, time_in_force=False, market=True),
    "STOP_LOSS": _TypeRule(price=False, stop_price=True, time_in_force=False, market=True),
    "STOP_LOSS_LIMIT": _TypeRule(price=True, stop_price=True, time_in_force=True, market=False),
    "TAKE_PROFIT": _TypeRule(price=False, stop_price=True, time_in_force=False, market=True),
    "TAKE_PROFIT_LIMIT": _TypeRule(price=True, stop_price=True, time_in_force=True, market=False),
    "LIMIT_MAKER": _TypeRule(price=True, stop_price=False, time_in_force=False, market=False),
}


# -- the filters ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceFilter:
    """``PRICE_FILTER``; a 0 disables its rule."""

    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


@dataclass(frozen=True, slots=True)
class LotSize:
    """``LOT_SIZE`` or ``MARKET_LOT_SIZE`` (``filter_type`` says which); a 0 disables its rule."""

    filter_type: str
    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal


@dataclass(frozen=True, slots=True)
class NotionalFilter:
    """``NOTIONAL`` or ``MIN_NOTIONAL`` (which has no maximum: ``max_notional`` 0)."""

    filter_type: str
    min_notional: Decimal
    max_notional: Decimal
    apply_min_to_market: bool
    apply_max_to_market: bool
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class PercentPriceFilter:
    """``PERCENT_PRICE`` (the same band for both sides) or ``PERCENT_PRICE_BY_SIDE``."""

    filter_type: str
    bid_multiplier_up: Decimal
    bid_multiplier_down: Decimal
    ask_multiplier_up: Decimal
    ask_multiplier_down: Decimal
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """The trading rules of one symbol, parsed from its exchangeInfo entry."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    order_types: tuple[str, ...]
    price_filter: PriceFilter | None = None
    lot_size: LotSize | None = None
    market_lot_size: LotSize | None = None
    notional: tuple[NotionalFilter, ...] = ()
    percent_price: tuple[PercentPriceFilter, ...] = ()
    base_asset_precision: int | None = None
    quote_asset_precision: int | None = None
    quote_order_qty_market_allowed: bool = True
    #: Every ``filterType`` the entry listed, whether checked here or not.
    filter_types: tuple[str, ...] = ()


def _decimal(raw: Mapping[str, Any], name: str, where: str) -> Decimal:
    value = raw.get(name, "0")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise MalformedMessage(f"{where}.{name} is not a decimal string: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MalformedMessage(f"{where}.{name} is not a decimal: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise MalformedMessage(f"{where}.{name} must be finite and >= 0: {value!r}")
    return number


def _int(raw: Mapping[str, Any], name: str, where: str, default: int | None) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"{where}.{name} is not an integer: {value!r}")
    return value


def _text(entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"exchangeInfo symbol entry without a {name}: {value!r}")
    return value


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise MalformedMessage(f"{name} is not a boolean: {value!r}")
    return value


def parse_filters(entry: Mapping[str, Any]) -> SymbolFilters:
    """The :class:`SymbolFilters` of one ``exchangeInfo`` ``symbols[]`` entry.

    Filters this module does not check are listed in ``filter_types`` and otherwise ignored. A
    malformed entry (a missing name, a filter value that is not a decimal string) is
    :class:`~streamer.errors.MalformedMessage`.
    """
    if not isinstance(entry, Mapping):
        raise MalformedMessage(f"exchangeInfo symbol entry is not an object: {entry!r:.80}")
    symbol = _text(entry, "symbol")
    order_types = entry.get("orderTypes", [])
    if not isinstance(order_types, list) or not all(isinstance(t, str) for t in order_types):
        raise MalformedMessage(f"{symbol}: orderTypes is not a list of names")
    raw_filters = entry.get("filters", [])
    if not isinstance(raw_filters, list):
        raise MalformedMessage(f"{symbol}: filters is not a list")
    price: PriceFilter | None = None
    lots: dict[str, LotSize] = {}
    notional: list[NotionalFilter] = []
    percent: list[PercentPriceFilter] = []
    types: list[str] = []
    for raw in raw_filters:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("filterType"), str):
            raise MalformedMessage(f"{symbol}: a filter without a filterType: {raw!r:.80}")
        kind = raw["filterType"]
        where = f"{symbol} {kind}"
        types.append(kind)
        if kind == "PRICE_FILTER":
            price = PriceFilter(
                _decimal(raw, "minPrice", where),
                _decimal(raw, "maxPrice", where),
                _decimal(raw, "tickSize", where),
            )
        elif kind in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            lots[kind] = LotSize(
                kind,
                _decimal(raw, "minQty", where),
                _decimal(raw, "maxQty", where),
                _decimal(raw, "stepSize", where),
            )
        elif kind == "NOTIONAL":
            notional.append(
                NotionalFilter(
                    kind,
                    _decimal(raw, "minNotional", where),
                    _decimal(raw, "maxNotional", where),
                    _flag(raw, "applyMinToMarket", True),
                    _flag(raw, "applyMaxToMarket", False),
                    _int(raw, "avgPriceMins", where, 0) or 0,
                )
            )
        elif kind == "MIN_NOTIONAL":
            notional.append(
                NotionalFilter(
                    kind,
                    _decimal(raw, "minNotional", where),
                    _ZERO,
                    _flag(raw, "applyToMarket", True),
                    False,
                    _int(raw, "avgPriceMins", where, 0) or 0,
                )
            )
        elif kind == "PERCENT_PRICE":
            up, down = _decimal(raw, "multiplierUp", where), _decimal(raw, "multiplierDown", where)
            percent.append(
                PercentPriceFilter(
                    kind, up, down, up, down, _int(raw, "avgPriceMins", where, 0) or 0
                )
            )
        elif kind == "PERCENT_PRICE_BY_SIDE":
            percent.append(
                PercentPriceFilter(
                    kind,
                    _decimal(raw, "bidMultiplierUp", where),
                    _decimal(raw, "bidMultiplierDown", where),
                    _decimal(raw, "askMultiplierUp", where),
                    _decimal(raw, "askMultiplierDown", where),
                    _int(raw, "avgPriceMins", where, 0) or 0,
                )
            )
    status = entry.get("status", "TRADING")
    if not isinstance(status, str):
        raise MalformedMessage(f"{symbol}: status is not a string: {status!r}")
    return SymbolFilters(
        symbol=symbol,
        status=status,
        base_asset=_text(entry, "baseAsset"),
        quote_asset=_text(entry, "quoteAsset"),
        order_types=tuple(order_types),
        price_filter=price,
        lot_size=lots.get("LOT_SIZE"),
        market_lot_size=lots.get("MARKET_LOT_SIZE"),
        notional=tuple(notional),
        percent_price=tuple(percent),
        base_asset_precision=_int(entry, "baseAssetPrecision", symbol, None),
        quote_asset_precision=_int(entry, "quoteAssetPrecision", symbol, None),
        quote_order_qty_market_allowed=_flag(entry, "quoteOrderQtyMarketAllowed", True),
        filter_types=tuple(types),
    )


# -- numbers -------------------------------------------------------------------------------------


def parse_amount(name: str, value: object, *, rounding: bool = False) -> Decimal:
    """``value`` as an exact positive Decimal; :class:`InvalidOrder` (``param=name``) if it is
    a float, not a plain number, not finite, zero, negative or beyond the wire's 20+20 digits
    (``rounding``: any number of decimals, for a value about to be rounded to a step)."""
    if isinstance(value, float):
        raise InvalidOrder(
            f"{name} {value!r} is a float, which cannot hold most decimals exactly: "
            f"pass a str or Decimal (e.g. {name}='{value!r}' or Decimal('{value!r}'))",
            param=name,
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise InvalidOrder(
            f"{name} must be a Decimal, str or int, got {type(value).__name__}", param=name
        )
    if isinstance(value, str):
        text = value[1:] if value.startswith("+") else value
        if text.startswith("-") and _NUMBER.fullmatch(text[1:]):
            raise InvalidOrder(f"{name} {value!r} is negative", param=name)
        if not _NUMBER.fullmatch(text):
            raise InvalidOrder(f"{name} {value!r} is not a number", param=name)
        number = Decimal(text)
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise InvalidOrder(f"{name} {value!r} is not a finite number", param=name)
    if number < 0:
        raise InvalidOrder(f"{name} {value!r} is negative", param=name)
    if number == 0:
        raise InvalidOrder(f"{name} must be above zero, got {value!r}", param=name)
    if number.adjusted() >= _MAX_DIGITS:
        raise InvalidOrder(f"{name} {value!r} has more than 20 integer digits", param=name)
    exponent = number.normalize(_CTX).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_DIGITS and not rounding:
        raise InvalidOrder(f"{name} {value!r} has more than 20 decimals", param=name)
    return number


def _decimals(step: Decimal) -> int:
    """How many decimals the multiples of ``step`` need (0.01000000 -> 2, 1 -> 0, 10 -> 0)."""
    exponent = step.normalize(_CTX).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def spell(value: Decimal, step: Decimal = _ZERO) -> str:
    """``value`` in plain notation: with the decimals of ``step`` when it is set, else with its
    trailing zeros stripped. Never an exponent, never through a float."""
    if step:
        places = _decimals(step)
        return format(value.quantize(Decimal(1).scaleb(-places), context=_CTX), "f")
    if value == 0:
        return "0"
    return format(value.normalize(_CTX), "f")


def _show(value: Decimal) -> str:
    """A filter value in a message: plain, trailing zeros stripped."""
    return spell(value)


def _on_grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """The multiple of ``step`` next to ``value`` in the direction of ``rounding``."""
    units = _CTX.divide(value, step).to_integral_value(rounding=rounding, context=_CTX)
    return _CTX.multiply(units, step)


def _lcm(a: Decimal, b: Decimal) -> Decimal:
    """The least common multiple of two decimal steps (0 when either is 0: that one is off)."""
    if not a:
        return b
    if not b:
        return a
    places = max(_decimals(a), _decimals(b))
    scale = Decimal(10) ** places
    ia, ib = int(_CTX.multiply(a, scale)), int(_CTX.multiply(b, scale))
    return _CTX.divide(Decimal(math.lcm(ia, ib)), scale)


@dataclass(frozen=True, slots=True)
class _Grid:
    """The valid values of one amount: ``low <= v <= high``, ``v % step == 0`` (0s: no rule)."""

    low: Decimal
    high: Decimal
    step: Decimal

    def below(self, value: Decimal) -> Decimal | None:
        """The largest valid value <= ``value``, if any."""
        top = value if not self.high or value <= self.high else self.high
        candidate = _on_grid(top, self.step, ROUND_FLOOR) if self.step else top
        return candidate if candidate >= self.low and candidate > 0 else None

    def above(self, value: Decimal) -> Decimal | None:
        """The smallest valid value >= ``value``, if any."""
        bottom = value if value >= self.low else self.low
        candidate = _on_grid(bottom, self.step, ROUND_CEILING) if self.step else bottom
        return candidate if not self.high or candidate <= self.high else None

    def nearest(self, value: Decimal) -> list[Decimal]:
        """The valid neighbours of ``value`` (one or two, none when nothing is valid)."""
        found = [v for v in (self.below(value), self.above(value)) if v is not None]
        return sorted(set(found))


def _grid(*filters: PriceFilter | LotSize | None) -> _Grid:
    lows, highs, step = [_ZERO], [], _ZERO
    for f in filters:
        if f is None:
            continue
        low, high, fstep = (
            (f.min_price, f.max_price, f.tick_size)
            if isinstance(f, PriceFilter)
            else (f.min_qty, f.max_qty, f.step_size)
        )
        lows.append(low)
        if high:
            highs.append(high)
        step = _lcm(step, fstep)
    return _Grid(max(lows), min(highs) if highs else _ZERO, step)


def quantize_price(filters: SymbolFilters, price: Amount, rounding: str = ROUND_DOWN) -> Decimal:
    """``price`` rounded to a multiple of the PRICE_FILTER ``tickSize`` (``rounding``: a
    :mod:`decimal` rounding mode), with the tick's decimals. Bounds are not applied: round,
    then let :func:`prepare_order` check."""
    value = parse_amount("price", price, rounding=True)
    tick = filters.price_filter.tick_size if filters.price_filter is not None else _ZERO
    return Decimal(spell(_on_grid(value, tick, rounding), tick)) if tick else value


def quantize_qty(
    filters: SymbolFilters, quantity: Amount, rounding: str = ROUND_DOWN, *, market: bool = False
) -> Decimal:
    """``quantity`` rounded to a multiple of the LOT_SIZE ``stepSize`` (and of MARKET_LOT_SIZE's
    with ``market``), with the step's decimals. ROUND_DOWN, the default, never buys or sells more
    than asked. Bounds are not applied."""
    value = parse_amount("quantity", quantity, rounding=True)
    step = _grid(filters.lot_size, filters.market_lot_size if market else None).step
    return Decimal(spell(_on_grid(value, step, rounding), step)) if step else value


# -- the checks ----------------------------------------------------------------------------------


class _Checker:
    """Checks one order's amounts, raising :class:`InvalidOrder` at the first violation."""

    def __init__(self, filters: SymbolFilters, client_order_id: str | None) -> None:
        self.filters = filters
        self.client_order_id = client_order_id

    def fail(
        self,
        message: str,
        *,
        filter: str | None,
        param: str,
        value: Decimal | None = None,
        nearest: Sequence[Decimal] = (),
        step: Decimal = _ZERO,
        label: str = "",
    ) -> InvalidOrder:
        """The error for one violation; ``nearest`` are the valid neighbours (none, one or
        two), spelled with ``step``'s decimals; ``label`` names what they are values of when
        that is not ``param`` itself."""
        spelled = [spell(v, step) for v in nearest]
        best: str | None = None
        if filter is not None:
            valid = f"nearest valid {label}".rstrip()
            message += (f"; {valid}: " + " or ".join(spelled)) if spelled else "; none valid"
        if spelled:
            best = spelled[0]
            if value is not None and len(nearest) == 2 and nearest[1] - value < value - nearest[0]:
                best = spelled[1]  # the closer one; a tie goes to the lower (never more)
        return InvalidOrder(
            message,
            filter=filter,
            nearest=best,
            param=param,
            symbol=self.filters.symbol,
            client_order_id=self.client_order_id,
        )

    def on_grid(
        self,
        param: str,
        value: Decimal,
        filter_type: str,
        names: tuple[str, str, str],
        low: Decimal,
        high: Decimal,
        step: Decimal,
        grid: _Grid,
    ) -> None:
        """The three rules of PRICE_FILTER / LOT_SIZE / MARKET_LOT_SIZE on ``value``; the
        nearest values offered satisfy ``grid`` (every filter on this amount)."""
        min_name, max_name, step_name = names
        shown = _show(value)
        if low and value < low:
            above = grid.above(value)
            raise self.fail(
                f"{param} {shown} is below {filter_type} {min_name} {_show(low)}",
                filter=filter_type,
                param=param,
                nearest=[above] if above else [],
                step=grid.step,
            )
        if high and value > high:
            below = grid.below(value)
            raise self.fail(
                f"{param} {shown} is above {filter_type} {max_name} {_show(high)}",
                filter=filter_type,
                param=param,
                nearest=[below] if below else [],
                step=grid.step,
            )
        if step and _CTX.remainder(value, step):
            raise self.fail(
                f"{param} {shown} is not a multiple of {filter_type} {step_name} {_show(step)}",
                filter=filter_type,
                param=param,
                value=value,
                nearest=grid.nearest(value),
                step=grid.step,
            )

    def price(self, param: str, value: Decimal) -> None:
        """PRICE_FILTER (and the quote precision, which a tick of 0 leaves to be checked)."""
        pf = self.filters.price_filter
        if pf is not None:
            self.on_grid(
                param,
                value,
                "PRICE_FILTER",
                ("minPrice", "maxPrice", "tickSize"),
                pf.min_price,
                pf.max_price,
                pf.tick_size,
                _grid(pf),
            )
        self.precision(param, value, self.filters.quote_asset_precision, "quoteAssetPrecision")

    def quantity(self, value: Decimal, *, market: bool) -> None:
        """LOT_SIZE, and MARKET_LOT_SIZE for a MARKET order (and the base precision)."""
        lots = [self.filters.lot_size, self.filters.market_lot_size if market else None]
        grid = _grid(*lots)
        for lot in lots:
            if lot is not None:
                self.on_grid(
                    "quantity",
                    value,
                    lot.filter_type,
                    ("minQty", "maxQty", "stepSize"),
                    lot.min_qty,
                    lot.max_qty,
                    lot.step_size,
                    grid,
                )
        self.precision("quantity", value, self.filters.base_asset_precision, "baseAssetPrecision")

    def precision(self, param: str, value: Decimal, places: int | None, name: str) -> None:
        """More decimals than the asset has is -1111 BAD_PRECISION on the exchange."""
        if places is None:
            return
        exponent = value.normalize(_CTX).as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > places:
            step = Decimal(1).scaleb(-places)
            below = _on_grid(value, step, ROUND_FLOOR)
            nearest = [v for v in (below, below + step) if v > 0]
            raise self.fail(
                f"{param} {_show(value)} has more than the {places} decimals of {name}",
                filter=name,
                param=param,
                value=value,
                nearest=nearest,
                step=step,
            )

    def percent_price(self, side: str, price: Decimal, reference: Decimal) -> None:
        """PERCENT_PRICE(_BY_SIDE): the price within the side's band around ``reference``."""
        pf = self.filters.price_filter
        grid = _grid(pf)
        for band in self.filters.percent_price:
            buy = side == "BUY"
            up = band.bid_multiplier_up if buy else band.ask_multiplier_up
            down = band.bid_multiplier_down if buy else band.ask_multiplier_down
            up_name = ("bid" if buy else "ask") + "MultiplierUp"
            down_name = ("bid" if buy else "ask") + "MultiplierDown"
            if band.filter_type == "PERCENT_PRICE":
                up_name, down_name = "multiplierUp", "multiplierDown"
            high, low = _CTX.multiply(reference, up), _CTX.multiply(reference, down)
            inside = _Grid(
                max(low, grid.low), min(high, grid.high) if grid.high else high, grid.step
            )
            if up and price > high:
                below = inside.below(price)
                raise self.fail(
                    f"price {_show(price)} is above {band.filter_type} {up_name} {_show(up)} x "
                    f"reference price {_show(reference)} = {_show(high)}",
                    filter=band.filter_type,
                    param="price",
                    nearest=[below] if below else [],
                    step=grid.step,
                )
            if down and price < low:
                above = inside.above(price)
                raise self.fail(
                    f"price {_show(price)} is below {band.filter_type} {down_name} {_show(down)} x "
                    f"reference price {_show(reference)} = {_show(low)}",
                    filter=band.filter_type,
                    param="price",
                    nearest=[above] if above else [],
                    step=grid.step,
                )

    def notional(
        self, price: Decimal, quantity: Decimal | None, *, market: bool, what: str
    ) -> None:
        """NOTIONAL / MIN_NOTIONAL on ``price * quantity`` (``quantity`` None: ``price`` is
        already the notional, a quoteOrderQty). The nearest valid quantity is offered."""
        notional = _CTX.multiply(price, quantity) if quantity is not None else price
        lots = _grid(self.filters.lot_size, self.filters.market_lot_size if market else None)
        for nf in self.filters.notional:
            low = nf.min_notional if (not market or nf.apply_min_to_market) else _ZERO
            high = nf.max_notional if (not market or nf.apply_max_to_market) else _ZERO
            if low and notional < low:
                bound, name, word = low, "minNotional", "below"
            elif high and notional > high:
                bound, name, word = high, "maxNotional", "above"
            else:
                continue
            message = (
                f"notional {_show(notional)} ({what}) is {word} {nf.filter_type} {name} "
                f"{_show(bound)}"
            )
            if quantity is None:
                raise self.fail(
                    message,
                    filter=nf.filter_type,
                    param="quoteOrderQty",
                    nearest=[bound],
                    step=_ZERO,
                )
            # The quantity that brings the notional to the bound, on the lot grid and inside
            # the other bound: rounded up for a minimum, down for a maximum.
            exact = _CTX.divide(bound, price)
            lot = lots.above(exact) if word == "below" else lots.below(exact)
            if lot is not None:
                product = _CTX.multiply(price, lot)
                if (high and product > high) or (low and product < low):
                    lot = None
            raise self.fail(
                message,
                filter=nf.filter_type,
                param="quantity",
                nearest=[lot] if lot is not None else [],
                step=lots.step,
                label="quantity",
            )


def _optional(name: str, value: object) -> Decimal | None:
    return None if value is None else parse_amount(name, value)


def _choice(
    name: str,
    value: object,
    allowed: Sequence[str],
    filters: SymbolFilters,
    client_order_id: str | None,
) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidOrder(
            f"{name} must be one of {', '.join(allowed)}, got {value!r}",
            param=name,
            symbol=filters.symbol,
            client_order_id=client_order_id,
        )
    return value


def prepare_order(
    filters: SymbolFilters,
    *,
    side: str,
    type: str,
    quantity: Amount | None,
    price: Amount | None = None,
    stop_price: Amount | None = None,
    time_in_force: str | None = None,
    client_order_id: str,
    reference_price: Amount | None = None,
    quote_order_qty: Amount | None = None,
) -> dict[str, str]:
    """The ``POST /api/v3/order`` parameters of a valid order, in plain notation.

    Returns ``symbol``, ``side``, ``type`` and, as the type needs them, ``timeInForce``,
    ``quantity`` (or ``quoteOrderQty`` for MARKET), ``price``, ``stopPrice``, then
    ``newClientOrderId``. Raises :class:`~streamer.errors.InvalidOrder` at the first violation:
    ``filter`` names the filter (``None`` for a missing or unwanted parameter), ``param`` the
    parameter, ``nearest`` the nearest valid value (the closer of the two neighbours of an
    off-grid value, the lower on a tie), and the message says all of it.
    ``reference_price`` enables the checks the exchange makes against its own price (a MARKET
    order's notional, PERCENT_PRICE bands); pass the last or mark price when you have it.
    """
    cid = client_order_id if isinstance(client_order_id, str) else None
    if cid is None or not CLIENT_ORDER_ID.fullmatch(cid):
        raise InvalidOrder(
            f"client order id {client_order_id!r} must be 1 to 36 characters of "
            "A-Z, a-z, 0-9, '.', '_' and '-'",
            param="newClientOrderId",
            symbol=filters.symbol,
        )
    side = _choice("side", side, SIDES, filters, cid)
    order_type = _choice("type", type, ORDER_TYPES, filters, cid)
    rule = _TYPE_RULES[order_type]
    if filters.order_types and order_type not in filters.order_types:
        raise InvalidOrder(
            f"{filters.symbol} does not take {order_type} orders (orderTypes: "
            f"{', '.join(filters.order_types)})",
            filter="orderTypes",
            param="type",
            symbol=filters.symbol,
            client_order_id=cid,
        )
    if filters.status != "TRADING":
        raise InvalidOrder(
            f"{filters.symbol} is {filters.status}, not TRADING: it takes no new orders",
            filter="status",
            param="symbol",
            symbol=filters.symbol,
            client_order_id=cid,
        )

    def presence(name: str, given: object, wanted: bool) -> None:
        if wanted and given is None:
            raise InvalidOrder(
                f"{order_type} orders need {name}",
                param=name,
                symbol=filters.symbol,
                client_order_id=cid,
            )
        if not wanted and given is not None:
            raise InvalidOrder(
                f"{order_type} orders take no {name}",
                param=name,
                symbol=filters.symbol,
                client_order_id=cid,
            )

    presence("price", price, rule.price)
    presence("stopPrice", stop_price, rule.stop_price)
    presence("timeInForce", time_in_force, rule.time_in_force)
    if order_type == "MARKET":
        if (quantity is None) == (quote_order_qty is None):
            raise InvalidOrder(
                "MARKET orders need quantity or quoteOrderQty (one of them)",
                param="quantity",
                symbol=filters.symbol,
                client_order_id=cid,
            )
    else:
        presence("quantity", quantity, True)
        presence("quoteOrderQty", quote_order_qty, False)
    tif = None
    if time_in_force is not None:
        tif = _choice("timeInForce", time_in_force, TIME_IN_FORCE, filters, cid)

    check = _Checker(filters, cid)
    try:
        qty = _optional("quantity", quantity)
        quote = _optional("quoteOrderQty", quote_order_qty)
        limit = _optional("price", price)
        stop = _optional("stopPrice", stop_price)
        reference = _optional("reference_price", reference_price)
    except InvalidOrder as exc:
        raise InvalidOrder(
            str(exc), param=exc.param, symbol=filters.symbol, client_order_id=cid
        ) from None
    market = order_type == "MARKET"
    if limit is not None:
        check.price("price", limit)
    if stop is not None:
        check.price("stopPrice", stop)
    if limit is not None and reference is not None:
        check.percent_price(side, limit, reference)
    if qty is not None:
        check.quantity(qty, market=market)
    if quote is not None:
        if not filters.quote_order_qty_market_allowed:
            raise InvalidOrder(
                f"{filters.symbol} takes no quoteOrderQty MARKET orders",
                filter="quoteOrderQtyMarketAllowed",
                param="quoteOrderQty",
                symbol=filters.symbol,
                client_order_id=cid,
            )
        check.precision(
            "quoteOrderQty", quote, filters.quote_asset_precision, "quoteAssetPrecision"
        )
        check.notional(quote, None, market=True, what="quoteOrderQty")
    elif qty is not None:
        basis, what = limit, "price x quantity"
        if rule.market:
            basis, what = (
                (stop, "stopPrice x quantity")
                if stop is not None
                else (reference, "reference price x quantity")
            )
        if basis is not None:
            check.notional(basis, qty, market=rule.market, what=what)

    tick = filters.price_filter.tick_size if filters.price_filter is not None else _ZERO
    step = _grid(filters.lot_size, filters.market_lot_size if market else None).step
    out = {"symbol": filters.symbol, "side": side, "type": order_type}
    if tif is not None:
        out["timeInForce"] = tif
    if qty is not None:
        out["quantity"] = spell(qty, step)
    if quote is not None:
        out["quoteOrderQty"] = spell(quote)
    if limit is not None:
        out["price"] = spell(limit, tick)
    if stop is not None:
        out["stopPrice"] = spell(stop, tick)
    out["newClientOrderId"] = cid
    return out
