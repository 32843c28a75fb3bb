"""The SBE decoder (protocol §7.6) against the exchange's encoder: round trips, bad frames."""

from __future__ import annotations

import struct

import pytest

from streamer.sansio.book_sync import Outcome, SnapshotRequest
from streamer.sansio.books import DepthBooks
from streamer.sansio.sbe import (
    DepthDiffInts,
    SbeBestBidAsk,
    SbeDepthSnapshot,
    SbeTrade,
    SbeTrades,
    decimal_string,
    decode_depth_diff_ints,
    decode_sbe,
)
from streamer.sansio.wire import DepthDiff, Malformed
from streamer.testing.exchange.sbe import (
    encode_best_bid_ask,
    encode_depth_diff,
    encode_depth_diff_ints,
    encode_depth_snapshot,
    encode_trades,
    mantissa,
)

BIDS = [(f"{30000 - i}.{i:02d}000000", f"0.{i + 1:03d}13000") for i in range(10)]
ASKS = [(f"{30001 + i}.00000000", "0.00000000" if i == 3 else "1.50000000") for i in range(10)]
T_US = 1_700_000_000_123_456
EMPTY_SNAPSHOT = b'{"lastUpdateId":110,"bids":[],"asks":[]}'


def diff_frame(**kwargs: object) -> bytes:
    return encode_depth_diff("BTCUSDT", 101, 120, T_US, BIDS, ASKS, **kwargs)  # type: ignore[arg-type]


def lists(levels: list[tuple[str, str]]) -> list[list[str]]:
    return [list(level) for level in levels]


# -- decimals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "e", "text"),
    [
        (3513000, -8, "0.03513000"),
        (0, -8, "0.00000000"),
        (9223372036854775807, -8, "92233720368.54775807"),
        (150000000, -8, "1.50000000"),
        (5, 0, "5"),
        (12, 2, "1200"),
        (0, 2, "0"),
        (-25, -1, "-2.5"),
    ],
)
def test_decimal_string_is_exact_with_minus_exponent_decimals(m: int, e: int, text: str) -> None:
    """A mantissa and exponent spell as a plain decimal with exactly -exponent decimals."""
    assert decimal_string(m, e) == text


@pytest.mark.parametrize(
    ("text", "e", "m"),
    [("0.03513000", -8, 3513000), ("0.035130", -8, 3513000), ("5", -8, 500000000), ("1200", 2, 12)],
)
def test_mantissa_is_exact(text: str, e: int, m: int) -> None:
    """The encoder's mantissa of a decimal string is exact at any spelling."""
    assert mantissa(text, e) == m


@pytest.mark.parametrize(
    ("text", "e"),
    [("0.000000001", -8), ("12.5", 1), ("-1", -8), ("1e5", -8), ("", -8), ("٣", 0), ("1" * 20, -8)],
)
def test_mantissa_refuses_what_it_cannot_encode_exactly(text: str, e: int) -> None:
    """Too many decimals, signs, exponents, non-ASCII digits and int64 overflow are errors."""
    with pytest.raises(ValueError):
        mantissa(text, e)


# -- round trips --------------------------------------------------------------------------------


def test_depth_diff_round_trips_to_todays_depth_diff() -> None:
    """A DepthDiffStreamEvent decodes to wire.DepthDiff: U, u, µs time, the exact strings."""
    msg = decode_sbe(diff_frame())
    assert msg == DepthDiff("BTCUSDT", 101, 120, None, lists(BIDS), lists(ASKS), T_US)


def test_depth_diff_ints_carry_the_raw_mantissas() -> None:
    """The integer decoder gives mantissas and exponents, no strings."""
    msg = decode_depth_diff_ints(diff_frame(price_exponent=-2, qty_exponent=-5))
    assert isinstance(msg, DepthDiffInts)
    assert (msg.symbol, msg.first_id, msg.last_id, msg.event_time) == ("BTCUSDT", 101, 120, T_US)
    assert (msg.price_exponent, msg.qty_exponent) == (-2, -5)
    assert msg.bids[0] == (3000000, 113) and msg.asks[3] == (3000400, 0)


def test_the_20_level_diff_of_the_protocol_example_is_370_bytes() -> None:
    """8 + 26 + 4 + 160 + 4 + 160 + 1 + 7 = 370 bytes for 10 bids, 10 asks of BTCUSDT (§7.6)."""
    assert len(diff_frame()) == 370


def test_byte_layout_matches_the_schema() -> None:
    """Header, root block, group headers and symbol sit where stream_1_0.xml puts them."""
    frame = encode_depth_diff_ints("ETHBTC", 7, 9, 11, [(5, 6)], [], price_exponent=-3)
    assert struct.unpack_from("<HHHH", frame) == (26, 10003, 1, 0)
    assert struct.unpack_from("<qqqbb", frame, 8) == (11, 7, 9, -3, -8)
    assert struct.unpack_from("<HHqq", frame, 34) == (16, 1, 5, 6)
    assert struct.unpack_from("<HH", frame, 54) == (16, 0)
    assert frame[58:] == b"\x06ETHBTC"


def test_snapshot_best_bid_ask_and_trades_round_trip() -> None:
    """depth20, bestBidAsk and trade messages decode to their typed values."""
    snap = decode_sbe(encode_depth_snapshot("ETHBTC", 77, T_US, BIDS[:2], ASKS[:1]))
    assert snap == SbeDepthSnapshot("ETHBTC", 77, lists(BIDS[:2]), lists(ASKS[:1]), T_US)
    bba = decode_sbe(encode_best_bid_ask("ETHBTC", 78, T_US, ("0.05", "1"), ("0.06", "2.5")))
    assert bba == SbeBestBidAsk(
        "ETHBTC", 78, "0.05000000", "1.00000000", "0.06000000", "2.50000000", T_US
    )
    trades = decode_sbe(
        encode_trades(
            "BNBUSDT", T_US, T_US - 5, [(1, "300.1", "2", True), (2, "300.2", "1", False)]
        )
    )
    assert trades == SbeTrades(
        "BNBUSDT",
        T_US,
        T_US - 5,
        [
            SbeTrade(1, "300.10000000", "2.00000000", True),
            SbeTrade(2, "300.20000000", "1.00000000", False),
        ],
    )


def test_non_ascii_symbols_round_trip() -> None:
    """Symbols are UTF-8 (Unicode symbols exist since 2025-12)."""
    msg = decode_sbe(encode_depth_diff("币安人生USDT", 1, 1, 0, BIDS[:1], []))
    assert isinstance(msg, DepthDiff) and msg.symbol == "币安人生USDT"


# -- schema evolution ---------------------------------------------------------------------------


def test_longer_blocks_of_a_newer_schema_still_decode() -> None:
    """Fields appended to the root block and to entries are skipped by blockLength."""
    newer = diff_frame(root_extra=b"\x01" * 9, entry_extra=b"\x02" * 5, version=1)
    assert len(newer) > len(diff_frame())
    assert decode_sbe(newer) == decode_sbe(diff_frame())
    assert decode_depth_diff_ints(newer) == decode_depth_diff_ints(diff_frame())
    snap = encode_depth_snapshot("X", 1, 2, BIDS, ASKS, root_extra=b"\0" * 3, entry_extra=b"\0")
    assert decode_sbe(snap) == decode_sbe(encode_depth_snapshot("X", 1, 2, BIDS, ASKS))
    bba = encode_best_bid_ask("X", 1, 2, ("1", "1"), ("2", "2"), root_extra=b"\0" * 4)
    assert decode_sbe(bba) == decode_sbe(encode_best_bid_ask("X", 1, 2, ("1", "1"), ("2", "2")))
    fills = [(1, "1", "1", True)]
    trades = encode_trades("X", 1, 2, fills, root_extra=b"\0", entry_extra=b"\0" * 7)
    assert decode_sbe(trades) == decode_sbe(encode_trades("X", 1, 2, fills))


def test_bytes_after_the_symbol_are_ignored() -> None:
    """Variable-length data a newer schema appends after the symbol does not break decoding."""
    assert decode_sbe(diff_frame() + b"\x03abc") == decode_sbe(diff_frame())


# -- malformed frames ---------------------------------------------------------------------------


def malformed(data: bytes) -> str:
    msg = decode_sbe(data, "conn")
    assert isinstance(msg, Malformed), msg
    assert msg.stream == "conn" and msg.excerpt == data[:60].hex() + ("…" if len(data) > 60 else "")
    return msg.reason


def test_every_truncation_of_every_message_is_malformed() -> None:
    """Each proper prefix of each of the four messages is a Malformed, never an exception."""
    frames = [
        diff_frame(),
        encode_depth_snapshot("ETHBTC", 1, 2, BIDS, ASKS),
        encode_best_bid_ask("ETHBTC", 1, 2, ("1", "1"), ("2", "2")),
        encode_trades("ETHBTC", 1, 2, [(1, "1", "1", True)]),
    ]
    for frame in frames:
        for cut in range(len(frame)):
            malformed(frame[:cut])
        assert decode_depth_diff_ints(frame[:-1]).__class__ is Malformed


def test_short_header_wrong_schema_and_unknown_template_are_malformed() -> None:
    """A header under 8 bytes, schemaId 2 and templateId 10004 are each refused by name."""
    assert "shorter than the SBE header" in malformed(b"\x1a\x00\x13\x27\x01")
    assert "schemaId 2" in malformed(diff_frame(schema_id=2))
    unknown = struct.pack("<HHHH", 0, 10004, 1, 0) + b"\x01X"
    assert "unknown templateId 10004" in malformed(unknown)
    assert "not DepthDiffStreamEvent" in str(decode_depth_diff_ints(unknown))


def test_group_count_past_the_end_is_malformed() -> None:
    """A numInGroup that claims more entries than the frame holds is refused."""
    frame = bytearray(diff_frame())
    struct.pack_into("<H", frame, 200, 11)  # asks: 11 entries, 10 present
    assert "past the end" in malformed(bytes(frame))
    struct.pack_into("<H", frame, 36, 60000)  # bids
    assert "past the end" in malformed(bytes(frame))
    trades = bytearray(encode_trades("X", 1, 2, [(1, "1", "1", True)]))
    struct.pack_into("<I", trades, 28, 2_000_000_000)
    assert "past the end" in malformed(bytes(trades))
    struct.pack_into("<I", trades, 28, 0xFFFFFFFF)
    assert "exceeds" in malformed(bytes(trades))


def test_symbol_length_past_the_end_is_malformed() -> None:
    """A symbol length byte larger than what is left of the frame is refused."""
    frame = bytearray(diff_frame())
    frame[362] = 8  # "BTCUSDT" is 7 bytes
    assert "symbol length past the end" in malformed(bytes(frame))


def test_bad_values_are_malformed() -> None:
    """Negative quantities, zero or negative prices, U > u, bad symbols, short blocks."""
    assert "negative" in malformed(encode_depth_diff_ints("X", 1, 2, 0, [(5, -1)], []))
    assert "price of zero" in malformed(encode_depth_diff_ints("X", 1, 2, 0, [], [(0, 1)]))
    assert "negative" in malformed(encode_depth_diff_ints("X", 1, 2, 0, [], [(-3, 1)]))
    assert "bad U/u" in malformed(encode_depth_diff_ints("X", 3, 2, 0, [], []))
    bad_symbol = encode_depth_diff_ints("X", 1, 2, 0, [], [])[:-2] + b"\x02\xff\xfe"
    assert "not UTF-8" in malformed(bad_symbol)
    assert "empty symbol" in malformed(encode_depth_diff_ints("X", 1, 2, 0, [], [])[:-2] + b"\0")
    short_root = bytearray(diff_frame())
    struct.pack_into("<H", short_root, 0, 25)
    assert "root blockLength 25" in malformed(bytes(short_root))
    short_entry = bytearray(diff_frame())
    struct.pack_into("<H", short_entry, 34, 15)
    assert "blockLength 15" in malformed(bytes(short_entry))
    bba = bytearray(encode_best_bid_ask("X", 1, 2, ("1", "1"), ("2", "2")))
    struct.pack_into("<q", bba, 8 + 26, -1)  # bidQty
    assert "negative" in malformed(bytes(bba))
    trade = bytearray(encode_trades("X", 1, 2, [(1, "1", "1", True)]))
    struct.pack_into("<q", trade, 32 + 16, -1)  # qty of the first fill
    assert "bad trade" in malformed(bytes(trade))


def test_oversized_frames_are_refused_before_decoding() -> None:
    """A frame over max_size is a Malformed without being parsed."""
    assert "exceeds 100" in str(decode_sbe(diff_frame(), max_size=100))
    assert "exceeds 100" in str(decode_depth_diff_ints(diff_frame(), max_size=100))


# -- DepthBooks ---------------------------------------------------------------------------------


def synced_books() -> DepthBooks:
    books = DepthBooks(symbols=["BTCUSDT"])
    books.receive_sbe(encode_depth_diff("BTCUSDT", 101, 120, 0, BIDS, ASKS))
    (request,) = [e for e in books.events() if isinstance(e, SnapshotRequest)]
    books.receive_snapshot("BTCUSDT", EMPTY_SNAPSHOT, request.token)
    return books


def test_sbe_diffs_feed_the_same_sync_machine_as_json() -> None:
    """SBE diffs sync a book from a JSON snapshot and keep it by the §2.1 rules."""
    books = synced_books()
    sync = books.books["BTCUSDT"]
    assert sync.synced and sync.last_update_id == 120
    assert sync.book.bids.best() == BIDS[0] and sync.book.asks.best() == ASKS[0]
    more = encode_depth_diff("BTCUSDT", 121, 125, 0, [(BIDS[0][0], "0")], [])
    assert books.receive_sbe(more) is Outcome.APPLIED
    assert sync.book.bids.best() == BIDS[1]
    gap = encode_depth_diff("BTCUSDT", 130, 131, 0, [], [])
    assert books.receive_sbe(gap) is Outcome.RESET
    assert books.counters.frames == 3 and books.counters.malformed == 0


def test_malformed_and_other_sbe_frames_are_counted_and_reported() -> None:
    """A bad frame is a counted Malformed event; a trade frame is counted as other."""
    books = DepthBooks(symbols=["BTCUSDT"])
    assert books.receive_sbe(diff_frame()[:100]) is None
    assert books.receive_sbe(encode_trades("BTCUSDT", 1, 2, [(1, "1", "1", True)])) is None
    assert books.receive_sbe(encode_depth_diff("ETHBTC", 1, 2, 0, [], [])) is None
    assert (books.counters.malformed, books.counters.other, books.counters.unsubscribed) == (
        1,
        1,
        1,
    )
    (event,) = books.events()
    assert isinstance(event, Malformed) and "SBE" in event.reason


def test_the_book_holds_the_same_levels_from_sbe_as_from_json() -> None:
    """From SBE or from the equivalent JSON frame, the book is the same, spelling included."""
    import orjson

    json_books = DepthBooks(symbols=["BTCUSDT"])
    payload = {"e": "depthUpdate", "E": 0, "s": "BTCUSDT", "U": 101, "u": 120}
    json_books.receive_frame(orjson.dumps(payload | {"b": BIDS, "a": ASKS}))
    (request,) = [e for e in json_books.events() if isinstance(e, SnapshotRequest)]
    json_books.receive_snapshot(
        "BTCUSDT", b'{"lastUpdateId":110,"bids":[],"asks":[]}', request.token
    )
    sbe = synced_books().books["BTCUSDT"].book
    json = json_books.books["BTCUSDT"].book
    assert sbe.bids.top(100) == json.bids.top(100) and sbe.asks.top(100) == json.asks.top(100)
