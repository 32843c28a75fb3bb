"""Klines (candlesticks) from ``GET /api/v3/klines``: the rows Binance sends, as exact values.

Binance answers an array of arrays, one per candle, oldest first::

    [openTime, open, high, low, close, volume, closeTime, quoteAssetVolume, numberOfTrades,
     takerBuyBaseAssetVolume, takerBuyQuoteAssetVolume, ignore]

times in ms (integers), amounts as decimal strings, the trade count an integer; the last field is
unused. :func:`parse_klines` turns them into :class:`Kline` values and refuses anything else
with :class:`~streamer.errors.MalformedMessage` (a row too short, a number that is not one).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from streamer.errors import MalformedMessage

__all__ = ["INTERVALS", "Kline", "parse_kline", "parse_klines"]

#: The kline intervals spot takes (protocol §1.5.6, Binance ``enums.md``).
INTERVALS: Final = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d"}
    | {"1w", "1M"}
)


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle; amounts are exact decimals, times the exchange's milliseconds."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base asset
    close_time: int
    quote_volume: Decimal
    trades: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal


def _int(row: list[object], index: int) -> int:
    value = row[index]
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessage(f"kline field {index} is not an integer: {value!r:.40}")
    return value


def _dec(row: list[object], index: int) -> Decimal:
    value = row[index]
    if not isinstance(value, str):
        raise MalformedMessage(f"kline field {index} is not a decimal string: {value!r:.40}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MalformedMessage(f"kline field {index} is not a decimal: {value!r:.40}") from None
    if not number.is_finite():
        raise MalformedMessage(f"kline field {index} is not finite: {value!r:.40}")
    return number


def parse_kline(row: object) -> Kline:
    """One kline row (11 fields or more; the 12th, "ignore", and any later ones are unused)."""
    if not isinstance(row, list) or len(row) < 11:
        raise MalformedMessage(f"a kline is an array of 12 fields, got {row!r:.80}")
    return Kline(
        open_time=_int(row, 0),
        open=_dec(row, 1),
        high=_dec(row, 2),
        low=_dec(row, 3),
        close=_dec(row, 4),
        volume=_dec(row, 5),
        close_time=_int(row, 6),
        quote_volume=_dec(row, 7),
        trades=_int(row, 8),
        taker_buy_base_volume=_dec(row, 9),
        taker_buy_quote_volume=_dec(row, 10),
    )


def parse_klines(body: object) -> list[Kline]:
    """A ``GET /api/v3/klines`` answer, parsed (see the module docstring)."""
    if not isinstance(body, list):
        raise MalformedMessage(f"a klines answer is an array, got {body!r:.80}")
    return [parse_kline(row) for row in body]
