"""Pure judgements of what the exchange answered: do the shapes and values make sense?

Each function takes a parsed answer and returns a one-line description of what it saw, or
raises :class:`CheckFailed` saying what is wrong. No I/O, no clock: the steps of
``streamer check`` (``steps.py``) fetch, these judge.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from streamer.sansio.filters import SymbolFilters, quantize_price, quantize_qty
from streamer.sansio.klines import Kline

__all__ = [
    "FAR_FACTOR",
    "TICKER_TOLERANCE",
    "CheckFailed",
    "far_limit_order",
    "judge_account",
    "judge_depth",
    "judge_klines",
    "judge_ticker_near",
    "min_quantity",
]

#: How far below the best bid the real LIMIT order rests: it must never fill.
FAR_FACTOR = Decimal("0.8")
#: How far outside the spread the last price may be, relative to the nearest best price: the
#: last trade happened a moment before the book was read, and the book moved since.
TICKER_TOLERANCE = Decimal("0.02")


class CheckFailed(Exception):
    """A step saw something wrong; the message says what, in one line."""


def _decimal(value: Any, what: str) -> Decimal:
    if not isinstance(value, str):
        raise CheckFailed(f"{what} is not a decimal string: {value!r:.40}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CheckFailed(f"{what} is not a decimal: {value!r:.40}") from None
    if not number.is_finite():
        raise CheckFailed(f"{what} is not finite: {value!r:.40}")
    return number


def _levels(body: Mapping[str, Any], side: str) -> list[tuple[Decimal, Decimal]]:
    raw = body.get(side)
    if not isinstance(raw, list):
        raise CheckFailed(f"depth has no {side} list")
    levels = []
    for i, level in enumerate(raw):
        if not isinstance(level, list) or len(level) != 2:
            raise CheckFailed(f"depth {side}[{i}] is not a [price, qty] pair: {level!r:.40}")
        price = _decimal(level[0], f"{side}[{i}] price")
        qty = _decimal(level[1], f"{side}[{i}] qty")
        if price <= 0 or qty <= 0:
            raise CheckFailed(f"depth {side}[{i}] is not positive: {level!r:.40}")
        levels.append((price, qty))
    if not levels:
        raise CheckFailed(f"depth has no {side}")
    return levels


def judge_depth(body: Mapping[str, Any], tick: Decimal | None = None) -> tuple[Decimal, Decimal]:
    """The best bid and ask of a ``GET /api/v3/depth`` answer whose levels are sane: positive
    decimal strings, bids strictly descending, asks strictly ascending, bid < ask, prices on
    the ``tick`` grid (when given)."""
    last = body.get("lastUpdateId")
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        raise CheckFailed(f"depth has no integer lastUpdateId: {last!r:.40}")
    bids, asks = _levels(body, "bids"), _levels(body, "asks")
    for side, levels, descending in (("bids", bids, True), ("asks", asks, False)):
        for (a, _), (b, _) in itertools.pairwise(levels):
            if (a <= b) if descending else (a >= b):
                order = "descending" if descending else "ascending"
                raise CheckFailed(f"{side} are not strictly {order}: {a} then {b}")
        if tick:
            off = [p for p, _ in levels if p % tick]
            if off:
                raise CheckFailed(f"{side} price {off[0]} is not a multiple of the tick {tick}")
    if bids[0][0] >= asks[0][0]:
        raise CheckFailed(f"crossed book: best bid {bids[0][0]} >= best ask {asks[0][0]}")
    return bids[0][0], asks[0][0]


def judge_ticker_near(price: Decimal, bid: Decimal, ask: Decimal) -> str:
    """Whether the last price is inside the spread or within :data:`TICKER_TOLERANCE` of it."""
    if bid <= price <= ask:
        return f"last price {price} within the spread"
    nearest = bid if price < bid else ask
    off = abs(price - nearest) / nearest
    if off > TICKER_TOLERANCE:
        raise CheckFailed(
            f"last price {price} is {off:.2%} outside the spread {bid} / {ask} "
            f"(more than {TICKER_TOLERANCE:.0%})"
        )
    return f"last price {price} {off:.3%} outside the spread"


def judge_klines(klines: Sequence[Kline]) -> str:
    """Candles whose prices and times make sense: low <= open, close <= high, volumes >= 0,
    each closing after it opens and before the next opens."""
    for i, k in enumerate(klines):
        if not k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high:
            raise CheckFailed(
                f"kline {i} (open time {k.open_time}): not low <= open/close <= high: "
                f"o {k.open} h {k.high} l {k.low} c {k.close}"
            )
        if k.low <= 0 or k.volume < 0 or k.quote_volume < 0 or k.trades < 0:
            raise CheckFailed(f"kline {i} (open time {k.open_time}): a negative or zero amount")
        if k.close_time <= k.open_time:
            raise CheckFailed(f"kline {i}: close time {k.close_time} <= open {k.open_time}")
    for i, (a, b) in enumerate(itertools.pairwise(klines)):
        if not a.open_time < b.open_time or not a.close_time < b.open_time:
            raise CheckFailed(
                f"klines {i} and {i + 1} out of order: open {a.open_time} (close "
                f"{a.close_time}) then open {b.open_time}"
            )
    if not klines:
        return "no candles yet (no trade on the symbol)"
    last = klines[-1]
    return (
        f"{len(klines)} candle(s) in order, last o {last.open} h {last.high} l {last.low} "
        f"c {last.close}"
    )


def judge_account(body: Mapping[str, Any]) -> str:
    """An account that can trade and whose balances read as assets with free/locked amounts."""
    if body.get("canTrade") is not True:
        raise CheckFailed(f"canTrade is {body.get('canTrade')!r}: this key cannot trade")
    balances = body.get("balances")
    if not isinstance(balances, list):
        raise CheckFailed("account has no balances list")
    funded = 0
    for i, entry in enumerate(balances):
        if not isinstance(entry, dict) or not isinstance(entry.get("asset"), str):
            raise CheckFailed(f"balances[{i}] has no asset: {entry!r:.60}")
        free = _decimal(entry.get("free"), f"{entry['asset']} free")
        locked = _decimal(entry.get("locked"), f"{entry['asset']} locked")
        if free < 0 or locked < 0:
            raise CheckFailed(f"{entry['asset']}: a negative balance")
        funded += bool(free or locked)
    return f"canTrade, {len(balances)} balances ({funded} non-zero)"


def min_quantity(filters: SymbolFilters, price: Decimal, margin: Decimal = Decimal(1)) -> Decimal:
    """The smallest quantity on the lot grid worth ``margin`` times the minimum notional at
    ``price`` (at least the lot's minimum quantity)."""
    notional = max((f.min_notional for f in filters.notional), default=Decimal(0)) * margin
    qty = quantize_qty(filters, notional / price, ROUND_CEILING) if notional else Decimal(0)
    lot = filters.lot_size
    if lot is not None and lot.min_qty > qty:
        qty = quantize_qty(filters, lot.min_qty, ROUND_CEILING)
    if qty <= 0:  # no notional and no lot minimum: one step, or one unit
        qty = lot.step_size if lot is not None and lot.step_size else Decimal(1)
    return qty


def far_limit_order(
    filters: SymbolFilters, best_bid: Decimal, reference: Decimal | None = None
) -> tuple[Decimal, Decimal]:
    """Price and quantity of a BUY LIMIT that rests far below the market: :data:`FAR_FACTOR`
    times the best bid on the tick grid, raised to the bottom of the PERCENT_PRICE bands
    around ``reference`` when those forbid it; the minimum notional's quantity."""
    price = quantize_price(filters, best_bid * FAR_FACTOR, ROUND_DOWN)
    if reference is not None:
        floors = [reference * band.bid_multiplier_down for band in filters.percent_price]
        floor = max((f for f in floors if f > 0), default=Decimal(0))
        if floor > price:
            price = quantize_price(filters, floor, ROUND_CEILING)
    if price <= 0:
        raise CheckFailed(f"no valid price below the best bid {best_bid}")
    return price, min_quantity(filters, price)
