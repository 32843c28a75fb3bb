"""Real Binance spot symbols for the local exchange: exchangeInfo, filters and number format.

The local exchange ships the full real ``/api/v3/exchangeInfo`` body of 2021-10-12 (1,695 symbols,
see ``data/README.md`` for its provenance) and takes each symbol's rules from it, so that orders
are accepted or rejected the way production Binance would (protocol §4.4):

* ``PRICE_FILTER``: ``minPrice <= price <= maxPrice`` and ``price % tickSize == 0``, on the
  limit ``price`` and on the ``stopPrice`` of stop orders alike;
* ``LOT_SIZE`` (and ``MARKET_LOT_SIZE`` for MARKET, STOP_LOSS and TAKE_PROFIT orders): the same
  three rules on the quantity;
* ``NOTIONAL`` or ``MIN_NOTIONAL``: ``price * quantity >= minNotional`` (and ``<= maxNotional``);
* ``MAX_NUM_ALGO_ORDERS``: at most ``maxNumAlgoOrders`` open stop orders per account and symbol
  (checked by the engine, which knows the open orders).

Each rule is disabled when its value is 0. A failure is ``-1013 "Filter failure: <NAME>"``; a
number with more than 8 decimals is ``-1111`` before any filter is looked at.

Numbers: every price, quantity and balance inside the engine is an integer count of 1e-8 units
(Binance spot never has more than 8 decimals), which is exact and several times faster than
``Decimal`` on the matching hot path. ``Decimal`` is used at the API boundary only, and every
number the engine emits is spelled with exactly 8 decimals, as Binance spot does (protocol §9.2).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

import orjson

from streamer.testing.exchange.api_error import ApiError

__all__ = [
    "SCALE",
    "EngineError",
    "SymbolInfo",
    "SymbolRules",
    "fmt",
    "fmt_units",
    "from_units",
    "load_exchange_info",
    "symbol_infos",
    "to_units",
]

SCALE = 10**8
"""One unit of a price, quantity or balance is 1e-8: ``Decimal("1.5")`` is ``150_000_000``."""

_DATA_FILE = "exchangeInfo.json.gz"
# Wide enough for any balance or notional the engine can hold, so conversions never round.
_CTX = Context(prec=80)


class EngineError(ApiError):
    """An order or parameter the engine refuses, as Binance reports it (HTTP 400)."""


# --- numbers ---------------------------------------------------------------------------------


def to_units(value: Decimal, param: str) -> int:
    """``value`` as an integer count of 1e-8; -1111 when it has more than 8 decimals.

    ``param`` names the request parameter in the error message. Trailing zeros beyond 8 decimals
    are accepted (``"0.1000000000"`` is 0.1), as only the value matters.
    """
    if not value.is_finite():
        raise EngineError(
            -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
        )
    scaled = _CTX.scaleb(value, 8)
    try:
        units = int(scaled.to_integral_exact(context=_CTX))
    except InvalidOperation:  # pragma: no cover - prec=80 holds any decimal a client can send
        raise EngineError(-1111, f"Parameter '{param}' has too much precision.") from None
    if units != scaled:
        raise EngineError(-1111, f"Parameter '{param}' has too much precision.")
    return units


def from_units(units: int) -> Decimal:
    """The exact ``Decimal`` of an integer count of 1e-8, with 8 decimals."""
    return _CTX.scaleb(Decimal(units), -8)


def fmt_units(units: int) -> str:
    """An integer count of 1e-8 spelled the Binance way: ``150_000_000 -> "1.50000000"``."""
    if units < 0:
        return "-" + fmt_units(-units)
    # String slicing is twice as fast as divmod + format, and this runs for every diff entry.
    digits = str(units)
    if len(digits) < 9:
        digits = digits.rjust(9, "0")
    return f"{digits[:-8]}.{digits[-8:]}"


def fmt(d: Decimal) -> str:
    """A decimal spelled with exactly 8 decimals, never in scientific notation (protocol §9.2).

    Values with more than 8 decimals are rounded half-even; the engine itself never produces any.
    """
    q = d.quantize(Decimal("1E-8"), context=_CTX)
    if q.is_zero():
        return "0.00000000"
    return f"{q:f}"


# --- symbols ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolInfo:
    """One exchangeInfo symbol: the fields the engine needs, plus the entry verbatim."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal  # from NOTIONAL or MIN_NOTIONAL, 0 if none
    raw: dict[str, Any]  # the exchangeInfo symbol entry as served (``load_exchange_info``)


@cache
def _exchange_info_bytes() -> bytes:
    ref = resources.files(__package__).joinpath("data").joinpath(_DATA_FILE)
    return gzip.decompress(ref.read_bytes())


def load_exchange_info() -> dict[str, Any]:
    """The shipped real exchangeInfo body, parsed, with today's order types (see below).

    The decompressed bytes are cached; each call returns a fresh dict, so a caller may change it
    (say, ``serverTime``) without affecting anyone else.

    One change to the 2021 file: in 2021 Binance listed ``STOP_LOSS_LIMIT`` and
    ``TAKE_PROFIT_LIMIT`` for every symbol but not the market variants ``STOP_LOSS`` and
    ``TAKE_PROFIT``; production lists all seven order types today (current exchangeInfo bodies,
    e.g. the 2026 examples in binance/binance-spot-api-docs). The local exchange serves today's
    list, so that every order type it implements is one its exchangeInfo allows, and says
    ``"allowTrailingStop": false`` (a field added in 2022), as it does not implement trailing
    stops. Every other byte of the entries is the recorded one.
    """
    body: dict[str, Any] = orjson.loads(_exchange_info_bytes())
    body["symbols"] = [_modernize(entry) for entry in body["symbols"]]
    return body


# Binance's spelling and order of orderTypes (exchangeInfo, enums.md).
_ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
_MARKET_VARIANT = {"STOP_LOSS_LIMIT": "STOP_LOSS", "TAKE_PROFIT_LIMIT": "TAKE_PROFIT"}


def _modernize(entry: dict[str, Any]) -> dict[str, Any]:
    """The 2021 entry with today's order types and ``allowTrailingStop`` (see above)."""
    types = set(entry.get("orderTypes", ()))
    types |= {market for limit, market in _MARKET_VARIANT.items() if limit in types}
    out: dict[str, Any] = {}
    for key, value in entry.items():
        out[key] = [t for t in _ORDER_TYPES if t in types] if key == "orderTypes" else value
        if key == "quoteOrderQtyMarketAllowed":
            out.setdefault("allowTrailingStop", False)
    out.setdefault("allowTrailingStop", False)
    return out


def _filters(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["filterType"]: f for f in entry.get("filters", ())}


def _symbol_info(entry: dict[str, Any]) -> SymbolInfo:
    filters = _filters(entry)
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    return SymbolInfo(
        symbol=entry["symbol"],
        base_asset=entry["baseAsset"],
        quote_asset=entry["quoteAsset"],
        tick_size=Decimal(price.get("tickSize", "0")),
        min_price=Decimal(price.get("minPrice", "0")),
        max_price=Decimal(price.get("maxPrice", "0")),
        step_size=Decimal(lot.get("stepSize", "0")),
        min_qty=Decimal(lot.get("minQty", "0")),
        max_qty=Decimal(lot.get("maxQty", "0")),
        min_notional=Decimal(notional.get("minNotional", "0")),
        raw=entry,
    )


def symbol_infos(info: dict[str, Any], symbols: Sequence[str] | None = None) -> list[SymbolInfo]:
    """The :class:`SymbolInfo` of every symbol of ``info``, or of ``symbols`` in that order.

    An unknown name raises ``EngineError(-1121, "Invalid symbol.")``.
    """
    entries = {entry["symbol"]: entry for entry in info["symbols"]}
    if symbols is None:
        return [_symbol_info(entry) for entry in entries.values()]
    out = []
    for name in symbols:
        entry = entries.get(name)
        if entry is None:
            raise EngineError(-1121, "Invalid symbol.")
        out.append(_symbol_info(entry))
    return out


def _units(value: Any) -> int:
    return to_units(Decimal(str(value)), "filter") if value is not None else 0


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """A symbol's filters in 1e-8 units, with the checks of protocol §4.4.

    A value of 0 disables its rule, as on Binance.
    """

    info: SymbolInfo
    tick: int
    min_price: int
    max_price: int
    step: int
    min_qty: int
    max_qty: int
    market_step: int  # MARKET_LOT_SIZE; 0 = disabled, then LOT_SIZE alone applies
    market_min_qty: int
    market_max_qty: int
    notional_filter: str  # "NOTIONAL", "MIN_NOTIONAL" or "" when the symbol has neither
    min_notional: int
    max_notional: int
    min_notional_to_market: bool
    max_notional_to_market: bool
    quote_order_qty_market_allowed: bool
    order_types: frozenset[str]  # exchangeInfo ``orderTypes``; all seven when it has none
    trailing_allowed: bool  # exchangeInfo ``allowTrailingStop``
    max_algo_orders: int  # MAX_NUM_ALGO_ORDERS; 0 = no such filter

    @classmethod
    def from_info(cls, info: SymbolInfo) -> SymbolRules:
        """Build the integer rules from a :class:`SymbolInfo` and its raw filters."""
        filters = _filters(info.raw)
        market = filters.get("MARKET_LOT_SIZE", {})
        if "NOTIONAL" in filters:
            nf = filters["NOTIONAL"]
            name = "NOTIONAL"
            max_notional = _units(nf.get("maxNotional"))
            to_market_min = bool(nf.get("applyMinToMarket", True))
            to_market_max = bool(nf.get("applyMaxToMarket", False))
        elif "MIN_NOTIONAL" in filters:
            nf = filters["MIN_NOTIONAL"]
            name = "MIN_NOTIONAL"
            max_notional = 0
            to_market_min = bool(nf.get("applyToMarket", True))
            to_market_max = False
        else:
            name, max_notional, to_market_min, to_market_max = "", 0, False, False
        return cls(
            info=info,
            tick=to_units(info.tick_size, "tickSize"),
            min_price=to_units(info.min_price, "minPrice"),
            max_price=to_units(info.max_price, "maxPrice"),
            step=to_units(info.step_size, "stepSize"),
            min_qty=to_units(info.min_qty, "minQty"),
            max_qty=to_units(info.max_qty, "maxQty"),
            market_step=_units(market.get("stepSize")),
            market_min_qty=_units(market.get("minQty")),
            market_max_qty=_units(market.get("maxQty")),
            notional_filter=name,
            min_notional=to_units(info.min_notional, "minNotional"),
            max_notional=max_notional,
            min_notional_to_market=to_market_min,
            max_notional_to_market=to_market_max,
            quote_order_qty_market_allowed=bool(info.raw.get("quoteOrderQtyMarketAllowed", True)),
            order_types=frozenset(info.raw.get("orderTypes") or _ORDER_TYPES),
            trailing_allowed=bool(info.raw.get("allowTrailingStop", False)),
            max_algo_orders=int(
                filters.get("MAX_NUM_ALGO_ORDERS", {}).get("maxNumAlgoOrders", 0) or 0
            ),
        )

    def check_price(self, price: int) -> None:
        """PRICE_FILTER on a limit price in units."""
        if (
            (self.min_price and price < self.min_price)
            or (self.max_price and price > self.max_price)
            or (self.tick and price % self.tick)
        ):
            raise EngineError(-1013, "Filter failure: PRICE_FILTER")

    def check_quantity(self, qty: int, *, market: bool) -> None:
        """LOT_SIZE on any quantity, plus MARKET_LOT_SIZE on a MARKET order's quantity."""
        if (
            (self.min_qty and qty < self.min_qty)
            or (self.max_qty and qty > self.max_qty)
            or (self.step and qty % self.step)
        ):
            raise EngineError(-1013, "Filter failure: LOT_SIZE")
        if market and (
            (self.market_min_qty and qty < self.market_min_qty)
            or (self.market_max_qty and qty > self.market_max_qty)
            or (self.market_step and qty % self.market_step)
        ):
            raise EngineError(-1013, "Filter failure: MARKET_LOT_SIZE")

    def check_notional(self, price: int, qty: int, *, market: bool) -> None:
        """NOTIONAL / MIN_NOTIONAL on ``price * qty`` (units), compared exactly in integers.

        For MARKET orders ``price`` is the reference (last) price, and the rule applies only if
        the filter says so (``applyToMarket`` / ``applyMinToMarket`` / ``applyMaxToMarket``).
        """
        self.check_quote_notional(price * qty, market=market, scaled=True)

    def check_quote_notional(self, notional: int, *, market: bool, scaled: bool = False) -> None:
        """The notional rule on a quote amount in units (``scaled``: in units of 1e-16)."""
        if not self.notional_filter:
            return
        n = notional if scaled else notional * SCALE
        if (
            self.min_notional
            and (not market or self.min_notional_to_market)
            and n < self.min_notional * SCALE
        ):
            raise EngineError(-1013, f"Filter failure: {self.notional_filter}")
        if (
            self.max_notional
            and (not market or self.max_notional_to_market)
            and n > self.max_notional * SCALE
        ):
            raise EngineError(-1013, f"Filter failure: {self.notional_filter}")
