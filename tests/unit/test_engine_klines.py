"""Klines built from the engine's trades: Binance's shape, exact values, intervals, selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from streamer.testing.exchange.engine import NO_FEES, Engine, EngineError, TradeEvent, fmt
from streamer.testing.exchange.klines import MINUTES_KEPT, SECONDS_KEPT, Tape
from streamer.testing.exchange.symbols import load_exchange_info, symbol_infos

D = Decimal
EIGHT = D("1E-8")
SYMBOLS = ["BTCUSDT", "ETHBTC", "BNBUSDT"]
INFOS = symbol_infos(load_exchange_info(), SYMBOLS)
RICH = {"BTC": D("100"), "USDT": D("1000000")}
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


def trade_at(engine: Engine, account: int, now_ms: int, side: str = "BUY") -> None:
    """One small taking order at the touch: one fill at the best price."""
    snap = engine.snapshot("BTCUSDT", 1)
    price = snap.asks[0][0] if side == "BUY" else snap.bids[0][0]
    engine.place_order(
        account, symbol="BTCUSDT", side=side, order_type="LIMIT", quantity=D("0.05"),
        price=D(price), time_in_force="IOC", client_order_id=None, now_ms=now_ms,
    )  # fmt: skip


def expected(
    trades: Sequence[TradeEvent], length: int, now_ms: int, align: Callable[[int], int]
) -> list[list[Any]]:
    """An independent aggregation of the trades into gap-filled klines up to now."""
    buckets: dict[int, list[Decimal]] = {}
    for t in trades:
        start = align(t.time_ms)
        price, qty = D(t.price), D(t.qty)
        quote = (price * qty).quantize(EIGHT, rounding=ROUND_FLOOR)
        taker_buys = not t.buyer_is_maker
        b = buckets.setdefault(start, [price, price, price, price, D(0), D(0), D(0), D(0), D(0)])
        b[1], b[2], b[3] = max(b[1], price), min(b[2], price), price
        b[4] += qty
        b[5] += quote
        b[6] += 1
        if taker_buys:
            b[7] += qty
            b[8] += quote
    rows: list[list[Any]] = []
    start, close = min(buckets), D(0)
    while start <= align(now_ms):
        zero = D(0)
        o, h, lo, c, v, q, n, tv, tq = buckets.get(
            start, [close, close, close, close, zero, zero, zero, zero, zero]
        )
        close = c
        prices = [fmt(o), fmt(h), fmt(lo), fmt(c)]
        volumes = [fmt(q), int(n), fmt(tv), fmt(tq)]
        rows.append([start, *prices, fmt(v), start + length - 1, *volumes, "0"])
        start += length
    return rows


def test_klines_have_binances_shape_and_the_trades_values() -> None:
    """Each kline is [open, o, h, l, c, volume, close time, quote volume, trades, taker buy
    volume, taker buy quote volume, "0"], with int times and count and 8-decimal strings."""
    e = Engine(INFOS, seed=1, levels=10)
    account = e.create_account(RICH, NO_FEES)
    for offset, side in ((1_200, "BUY"), (1_700, "SELL"), (4_100, "BUY")):
        trade_at(e, account, T0 + offset, side)
    trades = e.drain().trades
    assert len(trades) == 3
    rows = e.klines("BTCUSDT", "1s", now_ms=T0 + 5_500)
    assert [r[0] for r in rows] == [T0 + 1_000, T0 + 2_000, T0 + 3_000, T0 + 4_000, T0 + 5_000]
    first = rows[0]
    assert [type(x) for x in first] == [int, str, str, str, str, str, int, str, int, str, str, str]
    buy, sell, again = trades
    assert first == expected([buy, sell], 1_000, T0 + 1_000, lambda t: t - t % 1_000)[0]
    assert first[1:5] == [buy.price, buy.price, sell.price, sell.price]  # open high low close
    assert first[6] == T0 + 1_999 and first[8] == 2 and first[11] == "0"
    assert first[9] == buy.qty  # only the buy was a taker buy
    quiet = rows[1]  # no trade: flat at the previous close, nothing traded
    assert quiet[1:6] == [sell.price] * 4 + ["0.00000000"] and quiet[8] == 0
    assert rows[3][1] == again.price and rows[4][8] == 0  # the current second is there too


@pytest.mark.parametrize("interval", ["1s", "1m", "3m", "5m", "15m", "1h", "2h", "1d"])
def test_klines_equal_an_independent_aggregation_of_the_engine_trades(interval: str) -> None:
    """Two hours of simulated market flow: every kline equals the trades' own aggregation."""
    lengths = {"1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000}
    lengths |= {"1h": 3_600_000, "2h": 7_200_000, "1d": 86_400_000}
    e = Engine(INFOS, seed=6, levels=10)
    trades: list[TradeEvent] = []
    now = T0 + 17
    for _ in range(3_600):
        now += 2_003
        e.step(now, 6)
        trades += [t for t in e.drain().trades if t.symbol == "BTCUSDT"]
    assert len(trades) > 500
    length = lengths[interval]
    want = expected(trades, length, now, lambda t: t - t % length)
    got = e.klines("BTCUSDT", interval, limit=1000, now_ms=now)
    assert got == want[-1000:]
    if len(want) > 3:
        start = want[2][0] - 1  # inside the second kline: selection starts at the third
        assert e.klines("BTCUSDT", interval, start_time=start, limit=2, now_ms=now) == want[2:4]
        end = want[-2][0]
        assert e.klines("BTCUSDT", interval, end_time=end, limit=1, now_ms=now) == want[-2:-1]


def test_weeks_start_on_monday_and_months_are_calendar_months() -> None:
    """1w klines open on Monday 00:00 UTC, 1M ones on the 1st; close times are the next open - 1."""
    e = Engine(INFOS, seed=1, levels=10)
    account = e.create_account(RICH, NO_FEES)
    trade_at(e, account, ms("2026-01-31T23:59:59"))
    trade_at(e, account, ms("2026-02-02T00:00:01"))  # a Monday
    now = ms("2026-02-03T12:00:00")
    weeks = e.klines("BTCUSDT", "1w", now_ms=now)
    assert [(r[0], r[6]) for r in weeks] == [
        (ms("2026-01-26T00:00:00"), ms("2026-02-02T00:00:00") - 1),
        (ms("2026-02-02T00:00:00"), ms("2026-02-09T00:00:00") - 1),
    ]
    months = e.klines("BTCUSDT", "1M", now_ms=now)
    assert [(r[0], r[6], r[8]) for r in months] == [
        (ms("2026-01-01T00:00:00"), ms("2026-02-01T00:00:00") - 1, 1),
        (ms("2026-02-01T00:00:00"), ms("2026-03-01T00:00:00") - 1, 1),
    ]
    days = e.klines("BTCUSDT", "1d", start_time=ms("2026-02-01T00:00:00"), now_ms=now)
    assert [r[8] for r in days] == [0, 1, 0]  # Feb 1 (quiet), Feb 2, Feb 3 (open)


def test_selection_limits_and_errors() -> None:
    """No trade yet: no kline; startTime after endTime: none; an unknown interval is -1120 and
    an unknown symbol -1121."""
    e = Engine(INFOS, seed=1, levels=10)
    assert e.klines("BTCUSDT", "1m", now_ms=T0) == []
    account = e.create_account(RICH, NO_FEES)
    trade_at(e, account, T0 + 30_000)
    assert len(e.klines("BTCUSDT", "1m", now_ms=T0 + 10 * 60_000)) == 11
    assert len(e.klines("BTCUSDT", "1m", limit=3, now_ms=T0 + 10 * 60_000)) == 3
    assert e.klines("BTCUSDT", "1m", start_time=T0 + 5, end_time=T0, now_ms=T0 + 60_000) == []
    with pytest.raises(EngineError) as err:
        e.klines("BTCUSDT", "2m", now_ms=T0)
    assert (err.value.code, err.value.msg) == (-1120, "Invalid interval.")
    with pytest.raises(EngineError) as err:
        e.klines("NOPE", "1m", now_ms=T0)
    assert err.value.code == -1121


def test_the_tape_keeps_bounded_history() -> None:
    """One-second candles are kept for SECONDS_KEPT seconds, minutes for MINUTES_KEPT."""
    tape = Tape()
    for second in range(SECONDS_KEPT + 500):
        tape.add(T0 + second * 1_000, 100, 1, 100, True)
    seconds = tape.seconds()
    assert len(seconds) == SECONDS_KEPT + 1  # the kept closed ones and the open one
    assert seconds[-1][0] == T0 + (SECONDS_KEPT + 499) * 1_000
    minutes = tape.minutes()
    assert len(minutes) == -(-(SECONDS_KEPT + 500) // 60) and sum(m[7] for m in minutes) == (
        SECONDS_KEPT + 500
    )
    for minute in range(MINUTES_KEPT + 10):
        tape.add(T0 + 10**8 + minute * 60_000, 100, 1, 100, False)
    # The kept closed minutes, the one its closed seconds are still adding up, and the open one.
    assert len(tape.minutes()) == MINUTES_KEPT + 2
