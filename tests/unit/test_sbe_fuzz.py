"""Short hypothesis fuzz of the SBE decoder (the long one is benchmarks/fuzz_sbe.py)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.sansio.book import valid_price, valid_qty
from streamer.sansio.books import DepthBooks
from streamer.sansio.sbe import (
    DepthDiffInts,
    SbeBestBidAsk,
    SbeDepthDiff,
    SbeDepthSnapshot,
    SbeTrades,
    decode_depth_diff_ints,
    decode_sbe,
    decode_sbe_message,
)
from streamer.sansio.wire import DepthDiff, Malformed, OtherEvent
from streamer.testing.exchange.sbe import (
    encode_best_bid_ask,
    encode_depth_diff,
    encode_depth_diff_ints,
    encode_depth_snapshot,
    encode_trades,
)

INT64 = (1 << 63) - 1
EVENTS = (DepthDiff, SbeDepthSnapshot, SbeBestBidAsk, SbeTrades, Malformed)

SEEDS = [
    encode_depth_diff("BTCUSDT", 5, 9, 1, [("1.5", "2")] * 3, [("1.6", "0")] * 2),
    encode_depth_diff("ETHBTC", 5, 9, 1, [], [], root_extra=b"\0" * 4, entry_extra=b"\1"),
    encode_depth_snapshot("BTCUSDT", 5, 1, [("1.5", "2")] * 2, [("1.6", "1")]),
    encode_best_bid_ask("BTCUSDT", 5, 1, ("1.5", "2"), ("1.6", "1")),
    encode_trades("BTCUSDT", 1, 2, [(1, "1.5", "2", True), (2, "1.5", "1", False)]),
]

levels = st.lists(st.tuples(st.integers(1, INT64), st.integers(0, INT64)), max_size=30).map(
    lambda pairs: list(pairs)
)


def check(msg: object) -> None:
    """Whatever decodes is well formed: valid decimal strings, a symbol."""
    assert isinstance(msg, EVENTS)
    if isinstance(msg, DepthDiff | SbeDepthSnapshot):
        assert msg.symbol
        for price, qty in [*msg.bids, *msg.asks]:
            assert valid_price(price) and valid_qty(qty)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Arbitrary bytes decode to an event or a Malformed, never an exception."""
    check(decode_sbe(data))
    assert isinstance(decode_depth_diff_ints(data), DepthDiffInts | Malformed)
    fast = decode_sbe_message(data)
    assert isinstance(fast, SbeDepthDiff | OtherEvent | Malformed)
    if isinstance(fast, SbeDepthDiff):  # a diff to decode_sbe too, or Malformed by a bad level
        assert isinstance(decode_sbe(data), DepthDiff | Malformed)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 500),
)
def test_mutated_frames_never_raise(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    """Valid frames with bytes overwritten and the tail cut decode or are Malformed."""
    frame = bytearray(seed)
    for at, value in edits:
        frame[at % len(frame)] = value
    data = bytes(frame[: max(cut, 1)])
    check(decode_sbe(data))
    fast = decode_sbe_message(data)
    assert isinstance(fast, SbeDepthDiff | OtherEvent | Malformed)
    strings = decode_sbe(data)
    if isinstance(fast, SbeDepthDiff) and isinstance(strings, DepthDiff):
        assert fast.depth_diff() == strings
    books = DepthBooks(symbols=None)
    books.receive_sbe(data)
    books.receive_sbe(seed)
    books.events()


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=20).filter(lambda s: 0 < len(s.encode()) < 256),
    st.integers(0, INT64),
    st.integers(0, 1000),
    st.integers(-18, 6),
    st.integers(-18, 6),
    levels,
    levels,
    st.integers(-INT64, INT64),
)
def test_diffs_round_trip_exactly(
    symbol: str,
    first: int,
    span: int,
    pexp: int,
    qexp: int,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    when: int,
) -> None:
    """Any diff's mantissas come back exactly, and its strings equal mantissa x 10^exponent."""
    last = min(first + span, INT64)
    frame = encode_depth_diff_ints(
        symbol, first, last, when, bids, asks, price_exponent=pexp, qty_exponent=qexp
    )
    ints = decode_depth_diff_ints(frame)
    assert ints == DepthDiffInts(symbol, first, last, pexp, qexp, bids, asks, when)
    msg = decode_sbe(frame)
    assert isinstance(msg, DepthDiff)
    assert (msg.symbol, msg.first_id, msg.last_id, msg.event_time) == (symbol, first, last, when)
    for (price, qty), (pm, qm) in zip(msg.bids + msg.asks, bids + asks, strict=True):
        assert Decimal(price) == Decimal(pm).scaleb(pexp)
        assert Decimal(qty) == Decimal(qm).scaleb(qexp)
        assert len(price.partition(".")[2]) == max(-pexp, 0)
    check(msg)
