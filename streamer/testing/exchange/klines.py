"""Klines (candlesticks) of the local exchange, built from the engine's own trades.

``GET /api/v3/klines`` and the WS-API ``klines`` method answer Binance's array shape (protocol
§4.3, ``rest-api.md``): ``[open time, open, high, low, close, volume, close time, quote asset
volume, number of trades, taker buy base volume, taker buy quote volume, "0"]``, times as JSON
integers (ms), numbers as 8-decimal strings, the trade count an integer.

Rules:

* A trade counts in the interval that contains its time (UTC). Intervals ``1s`` to ``1d`` and
  ``3d`` are aligned to the epoch, ``1w`` starts on Monday 00:00, ``1M`` on the 1st of the month
  (calendar months). Volume is the base quantity, quote volume the sum of the quote amounts the
  fills moved (``floor8(price * qty)`` each, so it equals the sum of the trades' ``quoteQty``);
  the taker buy volumes count the fills whose taker bought.
* From the interval of the symbol's first trade to the current one there is a kline for every
  interval: one with no trade has open = high = low = close = the previous close, zero volumes
  and 0 trades, as Binance shows quiet intervals. Before the first trade there is none. The
  current interval is included while it is open (its close time is in the future).
* Selection: ``startTime`` and ``endTime`` select by open time (``startTime <= open <=
  endTime``); at most ``limit``; the first ones from ``startTime`` when it is given, else the
  latest ones (up to ``endTime`` or now).
* Memory stays bounded: per symbol, one candle per second that had a trade, kept for the last
  :data:`SECONDS_KEPT` seconds (the ``1s`` klines), and one per minute, kept for the last
  :data:`MINUTES_KEPT` minutes (every other interval is built from those). Older history is
  forgotten.

Pure: the engine feeds :meth:`Tape.add` from its fills, in engine time; a clock that steps back
puts the trade in the newest candle rather than reopening an old one.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from streamer.testing.exchange.symbols import fmt_units

__all__ = ["INTERVALS", "MINUTES_KEPT", "SECONDS_KEPT", "Tape", "klines"]

SECONDS_KEPT: Final = 3_600
MINUTES_KEPT: Final = 7 * 1_440

_S: Final = 1_000
_M: Final = 60 * _S
_H: Final = 60 * _M
_D: Final = 24 * _H
_MONDAY: Final = 4 * _D  # 1970-01-05, the first Monday after the epoch (a Thursday)
_MONTH: Final = -1  # marks the calendar interval

#: Binance's kline intervals (enums.md) and their length in ms (``1M``: calendar months).
INTERVALS: Final = {
    "1s": _S,
    "1m": _M,
    "3m": 3 * _M,
    "5m": 5 * _M,
    "15m": 15 * _M,
    "30m": 30 * _M,
    "1h": _H,
    "2h": 2 * _H,
    "4h": 4 * _H,
    "6h": 6 * _H,
    "8h": 8 * _H,
    "12h": 12 * _H,
    "1d": _D,
    "3d": 3 * _D,
    "1w": 7 * _D,
    "1M": _MONTH,
}

# A candle: (open ms, open, high, low, close, volume, quote volume, trades, taker buy volume,
# taker buy quote volume); prices and volumes in 1e-8 units.
Candle = tuple[int, ...]


def _at(open_ms: int, candle: Sequence[int]) -> Candle:
    """``candle`` with another open time (a second or minute as the first of a longer one)."""
    return (open_ms, *candle[1:])


def _merge(open_ms: int, first: Sequence[int], second: Sequence[int]) -> Candle:
    """Two consecutive candles as one starting at ``open_ms``."""
    return (
        open_ms,
        first[1],
        max(first[2], second[2]),
        min(first[3], second[3]),
        second[4],
        first[5] + second[5],
        first[6] + second[6],
        first[7] + second[7],
        first[8] + second[8],
        first[9] + second[9],
    )


class Tape:
    """One symbol's trades as candles of one second and one minute (bounded, see the module)."""

    __slots__ = ("_minute", "_minutes", "_second", "_seconds")

    def __init__(self) -> None:
        self._seconds: deque[Candle] = deque(maxlen=SECONDS_KEPT)
        self._minutes: deque[Candle] = deque(maxlen=MINUTES_KEPT)
        self._second: list[int] | None = None  # the newest second, still filling
        self._minute: list[int] | None = None  # the newest minute, from closed seconds only

    def add(self, time_ms: int, price: int, qty: int, quote: int, taker_buys: bool) -> None:
        """Count one fill (called for every trade, so kept short)."""
        second = self._second
        if second is None or time_ms >= second[0] + _S:
            if second is not None:
                self._close_second(second)
            start = time_ms - time_ms % _S
            self._second = [start, price, price, price, price, qty, quote, 1] + (
                [qty, quote] if taker_buys else [0, 0]
            )
            return
        if price > second[2]:
            second[2] = price
        elif price < second[3]:
            second[3] = price
        second[4] = price
        second[5] += qty
        second[6] += quote
        second[7] += 1
        if taker_buys:
            second[8] += qty
            second[9] += quote

    def _close_second(self, second: list[int]) -> None:
        self._seconds.append(tuple(second))
        start = second[0] - second[0] % _M
        minute = self._minute
        if minute is not None and minute[0] == start:
            self._minute = list(_merge(start, minute, second))
            return
        if minute is not None:
            self._minutes.append(tuple(minute))
        self._minute = list(_at(start, second))

    def seconds(self) -> list[Candle]:
        """Every kept one-second candle, oldest first, the open one last."""
        out = list(self._seconds)
        if self._second is not None:
            out.append(tuple(self._second))
        return out

    def minutes(self) -> list[Candle]:
        """Every kept one-minute candle, oldest first, the open one (with its open second) last."""
        out = list(self._minutes)
        minute, second = self._minute, self._second
        if second is None:
            return out
        start = second[0] - second[0] % _M
        if minute is not None and minute[0] == start:
            out.append(_merge(start, minute, second))
            return out
        if minute is not None:
            out.append(tuple(minute))
        out.append(_at(start, second))
        return out


# --- building klines -------------------------------------------------------------------------


def _month_start(time_ms: int) -> int:
    day = datetime.fromtimestamp(time_ms / 1000, UTC)
    return int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()) * 1000


def _add_months(open_ms: int, months: int) -> int:
    day = datetime.fromtimestamp(open_ms / 1000, UTC)
    index = day.year * 12 + day.month - 1 + months
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()) * 1000


def _calendar(interval: str) -> tuple[Callable[[int], int], Callable[[int, int], int]]:
    """(align: a time to the open of its interval, step: an open moved by n intervals)."""
    length = INTERVALS[interval]
    if length == _MONTH:
        return _month_start, _add_months
    offset = _MONDAY if interval == "1w" else 0

    def align(time_ms: int) -> int:
        return time_ms - (time_ms - offset) % length

    def step(open_ms: int, n: int) -> int:
        return open_ms + n * length

    return align, step


def klines(
    tape: Tape,
    interval: str,
    *,
    start_time: int | None,
    end_time: int | None,
    limit: int,
    now_ms: int,
) -> list[list[Any]]:
    """The klines of the module docstring; ``interval`` must be a key of :data:`INTERVALS`."""
    align, step = _calendar(interval)
    base = tape.seconds() if interval == "1s" else tape.minutes()
    if not base or limit < 1:
        return []
    real: dict[int, Candle] = {}
    for candle in base:  # oldest first, so merging keeps open, close and order right
        start = align(candle[0])
        known = real.get(start)
        real[start] = _at(start, candle) if known is None else _merge(start, known, candle)
    opens = list(real)
    lo, hi = opens[0], max(align(now_ms), opens[-1])
    if start_time is not None:
        first = align(start_time)
        lo = max(lo, first if first == start_time else step(first, 1))
    if end_time is not None:
        hi = min(hi, align(end_time))
    if lo > hi:
        return []
    chosen: list[int] = []
    if start_time is not None:
        t = lo
        while t <= hi and len(chosen) < limit:
            chosen.append(t)
            t = step(t, 1)
    else:
        t = hi
        while t >= lo and len(chosen) < limit:
            chosen.append(t)
            t = step(t, -1)
        chosen.reverse()
    before = bisect.bisect_left(opens, chosen[0])
    close = real[opens[before - 1]][4] if chosen[0] not in real else 0
    rows: list[list[Any]] = []
    for t in chosen:
        found = real.get(t)
        candle = (t, close, close, close, close, 0, 0, 0, 0, 0) if found is None else found
        close = candle[4]
        rows.append(
            [
                t,
                fmt_units(candle[1]),
                fmt_units(candle[2]),
                fmt_units(candle[3]),
                fmt_units(candle[4]),
                fmt_units(candle[5]),
                step(t, 1) - 1,
                fmt_units(candle[6]),
                candle[7],
                fmt_units(candle[8]),
                fmt_units(candle[9]),
                "0",
            ]
        )
    return rows
