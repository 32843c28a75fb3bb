"""Klines from GET /api/v3/klines, parsed exactly (protocol §4.3; Binance's documented row)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from streamer.errors import MalformedMessage
from streamer.sansio.klines import Kline, parse_klines

# The example answer of Binance's rest-api.md (GET /api/v3/klines), byte for byte in shape.
DOC_BODY = b"""[
  [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499644799999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "0"
  ]
]"""


def test_documented_row() -> None:
    """The documented row parses into exact decimals, integer times and trade count."""
    (kline,) = parse_klines(orjson.loads(DOC_BODY))
    assert kline == Kline(
        open_time=1499040000000,
        open=Decimal("0.01634790"),
        high=Decimal("0.80000000"),
        low=Decimal("0.01575800"),
        close=Decimal("0.01577100"),
        volume=Decimal("148976.11427815"),
        close_time=1499644799999,
        quote_volume=Decimal("2434.19055334"),
        trades=308,
        taker_buy_base_volume=Decimal("1756.87402397"),
        taker_buy_quote_volume=Decimal("28.46694368"),
    )
    assert str(kline.open) == "0.01634790"  # the exchange's digits, not a float's


def test_empty_answer() -> None:
    """No candles in the window is an empty list."""
    assert parse_klines([]) == []


ROW: list[Any] = orjson.loads(DOC_BODY)[0]


@pytest.mark.parametrize(
    "body",
    [
        {"code": -1121},
        [ROW[:10]],
        [{"openTime": 1}],
        [[*ROW[:1], 0.0163, *ROW[2:]]],  # a float price
        [["1499040000000", *ROW[1:]]],  # a string time
        [[*ROW[:1], "abc", *ROW[2:]]],
        [[*ROW[:1], "NaN", *ROW[2:]]],
        [[*ROW[:8], True, *ROW[9:]]],  # a bool trade count
    ],
)
def test_malformed(body: Any) -> None:
    """Anything but the documented shape is MalformedMessage."""
    with pytest.raises(MalformedMessage):
        parse_klines(body)
