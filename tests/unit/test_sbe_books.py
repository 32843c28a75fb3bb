"""SBE diffs into the integer book without strings: decode_sbe_message + DepthBooks, both books.

Every test runs against both book implementations. The reference for each SBE frame is the
equivalent JSON frame (levels spelled by ``decimal_string``) fed to another DepthBooks.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamer.sansio.book_sync import Outcome, Reset, ResetReason, SnapshotRequest
from streamer.sansio.books import DepthBooks
from streamer.sansio.sbe import SbeDepthDiff, decimal_string, decode_sbe, decode_sbe_message
from streamer.sansio.wire import Malformed, OtherEvent
from streamer.testing.exchange.sbe import (
    encode_depth_diff,
    encode_depth_diff_ints,
    encode_depth_snapshot,
    encode_trades,
)

pytestmark = pytest.mark.usefixtures("book_impl")

IntLevels = list[tuple[int, int]]
SNAPSHOT = orjson.dumps(
    {
        "lastUpdateId": 110,
        "bids": [["30000.00000000", "1.00000000"], ["29999.50000000", "2.00000000"]],
        "asks": [["30001.00000000", "1.50000000"], ["30002.25000000", "0.50000000"]],
    }
)


class Pair:
    """The same diffs to two DepthBooks: as SBE frames, and as the equivalent JSON frames."""

    def __init__(self) -> None:
        self.sbe = DepthBooks(symbols=["BTCUSDT"])
        self.json = DepthBooks(symbols=["BTCUSDT"])

    def diff(
        self,
        first: int,
        last: int,
        bids: IntLevels,
        asks: IntLevels,
        pexp: int = -8,
        qexp: int = -8,
    ) -> tuple[Outcome | None, Outcome | None]:
        frame = encode_depth_diff_ints(
            "BTCUSDT", first, last, 7, bids, asks, price_exponent=pexp, qty_exponent=qexp
        )

        def spell(levels: IntLevels) -> list[list[str]]:
            return [[decimal_string(p, pexp), decimal_string(q, qexp)] for p, q in levels]

        payload = {"e": "depthUpdate", "E": 7, "s": "BTCUSDT", "U": first, "u": last}
        text = orjson.dumps(payload | {"b": spell(bids), "a": spell(asks)})
        return self.sbe.receive_sbe(frame), self.json.receive_frame(text)

    def sync(self) -> None:
        for books in (self.sbe, self.json):
            (request,) = [e for e in books.events() if isinstance(e, SnapshotRequest)]
            books.receive_snapshot("BTCUSDT", SNAPSHOT, request.token)
            books.events()

    def views(self) -> tuple[Any, Any]:
        def view(books: DepthBooks) -> Any:
            sync = books.books["BTCUSDT"]
            book = sync.book
            return (
                sync.state,
                sync.last_update_id,
                book.exponent,
                book.bids.top(100),
                book.asks.top(100),
                list(book.bids.levels()),
                book.touched_since(110),
            )

        return view(self.sbe), view(self.json)


def synced_pair() -> Pair:
    pair = Pair()
    assert pair.diff(101, 111, [(3000000000000, 300000000)], []) == (Outcome.BUFFERED,) * 2
    pair.sync()
    return pair


def test_sbe_diffs_give_the_book_json_gives_spelling_and_journal_included() -> None:
    """Packed integer levels build the very book the equivalent JSON frames build."""
    pair = synced_pair()
    bids = [(2999950000000, 0), (2999900000000, 12345678)]
    asks = [(3000100000000, 10**8), (3000300000000, 1)]
    assert pair.diff(112, 115, bids, asks) == (Outcome.APPLIED,) * 2
    sbe, json = pair.views()
    assert sbe == json
    assert sbe[3] == [("30000.00000000", "3.00000000"), ("29999.00000000", "0.12345678")]


def test_an_exponent_change_mid_stream_is_absorbed_exactly() -> None:
    """New exponents need no resync: each level keeps its exact value, the book rescales."""
    pair = synced_pair()
    outcomes = [
        # a held price at 2 decimals (its spelling stays), a quantity at exponent 0
        pair.diff(112, 113, [(3000000, 5)], [], pexp=-2, qexp=0),
        # a new price with 10 decimals: the book goes from 8 to 10; a delete at 10 decimals
        pair.diff(114, 115, [(299990000000001, 25)], [(300010000000000, 0)], pexp=-10, qexp=-1),
        # positive exponents: 3 x 10^4 is the held 30000
        pair.diff(116, 117, [(3, 2)], [], pexp=4, qexp=3),
    ]
    assert outcomes == [(Outcome.APPLIED,) * 2] * 3
    sbe, json = pair.views()
    assert sbe == json
    assert sbe[2] == 10
    assert sbe[3] == [
        ("30000.00000000", "2000"),
        ("29999.50000000", "2.00000000"),
        ("29999.0000000001", "2.5"),
    ]
    assert sbe[4] == [("30002.25000000", "0.50000000")]
    assert pair.sbe.counters.malformed == 0
    assert not [e for e in pair.sbe.events() if isinstance(e, Reset)]


def test_a_price_the_book_cannot_hold_is_malformed_and_the_gap_then_resyncs() -> None:
    """19 decimals (past 18) roll the diff back as a counted Malformed; the next diff resyncs."""
    pair = synced_pair()
    before = pair.views()
    assert pair.diff(112, 113, [(1, 1)], [], pexp=-19) == (Outcome.MALFORMED,) * 2
    assert pair.views() == before
    (event,) = pair.sbe.malformed()
    assert "DepthDiffStreamEvent with a bad price level" in event.reason
    assert (
        event.excerpt
        == encode_depth_diff_ints("BTCUSDT", 112, 113, 7, [(1, 1)], [], price_exponent=-19)[
            :60
        ].hex()
    )
    assert pair.diff(114, 115, [], []) == (Outcome.RESET,) * 2
    resets = [e for e in pair.sbe.events() if isinstance(e, Reset)]
    assert [r.reason for r in resets] == [ResetReason.GAP]


@pytest.mark.parametrize(
    ("bids", "asks"),
    [([(3000000000000, -1)], []), ([], [(0, 5)]), ([(-3000000000000, 5)], [])],
    ids=["negative-qty", "zero-price", "negative-price"],
)
def test_a_bad_level_is_malformed_synced_or_not_and_nothing_applies(
    bids: IntLevels, asks: IntLevels
) -> None:
    """A negative quantity or a price <= 0 is Malformed, buffering or synced, never applied."""
    waiting = DepthBooks(symbols=["BTCUSDT"])
    frame = encode_depth_diff_ints("BTCUSDT", 101, 111, 7, bids, asks)
    assert waiting.receive_sbe(frame) is Outcome.MALFORMED
    assert waiting.books["BTCUSDT"].state.value == "waiting_for_diff"
    pair = synced_pair()
    before = pair.views()
    good = (3000100000000, 7)
    assert (
        pair.sbe.receive_sbe(encode_depth_diff_ints("BTCUSDT", 112, 113, 7, [good, *bids], asks))
        is Outcome.MALFORMED
    )
    assert pair.views()[0] == before[0]
    assert pair.sbe.counters.malformed == 1


# -- decode_sbe_message -------------------------------------------------------------------------

BIDS = [(f"{30000 - i}.{i:02d}000000", f"0.{i + 1:03d}13000") for i in range(10)]
ASKS = [(f"{30001 + i}.00000000", "1.50000000") for i in range(10)]


def test_decode_sbe_message_gives_the_frame_levels_packed_and_their_strings_on_demand() -> None:
    """An SbeDepthDiff carries the wire entries; depth_diff() is decode_sbe's DepthDiff."""
    frame = encode_depth_diff("BTCUSDT", 101, 120, 5, BIDS, ASKS)
    msg = decode_sbe_message(frame, "sbe")
    assert isinstance(msg, SbeDepthDiff)
    assert (msg.symbol, msg.first_id, msg.last_id, msg.prev_last_id, msg.event_time) == (
        "BTCUSDT",
        101,
        120,
        None,
        5,
    )
    assert (msg.price_exponent, msg.qty_exponent) == (-8, -8)
    assert len(msg.bids) == len(msg.asks) == 160
    assert msg.depth_diff() == decode_sbe(frame)


def test_a_newer_schemas_wider_blocks_decode_to_the_same_message() -> None:
    """Extra root and entry bytes (schema evolution) are skipped: the same levels, packed."""
    newer = encode_depth_diff(
        "BTCUSDT", 101, 120, 5, BIDS, ASKS, root_extra=b"\x09" * 6, entry_extra=b"\x07" * 8
    )
    assert decode_sbe_message(newer) == decode_sbe_message(
        encode_depth_diff("BTCUSDT", 101, 120, 5, BIDS, ASKS)
    )


def test_other_and_bad_frames_decode_to_other_events_and_malformed() -> None:
    """Trades and depth20 are OtherEvent named after their type; a cut frame is Malformed."""
    trades = decode_sbe_message(encode_trades("BTCUSDT", 1, 2, [(1, "1", "1", True)]), "s")
    assert trades == OtherEvent("s", "SbeTrades")
    depth20 = decode_sbe_message(encode_depth_snapshot("BTCUSDT", 5, 1, BIDS, ASKS), "s")
    assert depth20 == OtherEvent("s", "SbeDepthSnapshot")
    frame = encode_depth_diff("BTCUSDT", 101, 120, 5, BIDS, ASKS)
    for cut in (0, 7, 30, 40, 100, len(frame) - 3, len(frame) - 1):
        assert isinstance(decode_sbe_message(frame[:cut]), Malformed), cut
    bad_ids = encode_depth_diff("BTCUSDT", 121, 120, 5, BIDS, ASKS)
    assert "bad U/u" in decode_sbe_message(bad_ids).reason  # type: ignore[union-attr]
    assert "exceeds 100" in decode_sbe_message(frame, max_size=100).reason  # type: ignore[union-attr]


def test_a_cached_symbol_never_hides_a_truncated_one() -> None:
    """A symbol cut by the frame's end is Malformed even when its prefix was seen before."""
    frame = encode_depth_diff("BTCUSDT", 101, 120, 5, BIDS, ASKS)
    assert isinstance(decode_sbe_message(frame), SbeDepthDiff)
    longer = encode_depth_diff("BTCUSDTX", 101, 120, 5, BIDS, ASKS)
    assert isinstance(decode_sbe_message(longer[:-1]), Malformed)
