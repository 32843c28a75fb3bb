"""Bad input never reaches a book: each case is a counted Malformed event, the core keeps going."""

from __future__ import annotations

import orjson
import pytest

from streamer.sansio.book import valid_price, valid_qty
from streamer.sansio.book_sync import Outcome
from streamer.sansio.books import DepthBooks
from streamer.sansio.wire import (
    DepthDiff,
    Malformed,
    OtherEvent,
    decode_frame,
    decode_snapshot,
)

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations

CAP = "92233720368.54775807"


def frame(**data: object) -> bytes:
    base: dict[str, object] = {
        "e": "depthUpdate",
        "E": 1,
        "s": "BTCUSDT",
        "U": 11,
        "u": 11,
        "b": [["1.00000000", "2.00000000"]],
        "a": [],
    }
    base.update(data)
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": base})


def synced_books() -> DepthBooks:
    books = DepthBooks(symbols=["BTCUSDT", "ETHBTC"])
    assert books.receive_frame(frame(U=10, u=10)) is Outcome.BUFFERED
    token = books.books["BTCUSDT"].pending_token
    books.receive_snapshot("BTCUSDT", b'{"lastUpdateId":10,"bids":[["1.0","1"]],"asks":[]}', token)
    assert books.books["BTCUSDT"].synced
    books.events()
    return books


BAD_FRAMES = {
    "invalid json": b'{"stream": "x", "data": {',
    "empty": b"",
    "not an object": b"[1, 2]",
    "missing symbol": frame(s=None),
    "missing U": frame(U=None),
    "U as string": frame(U="11"),
    "U greater than u": frame(U=12, u=11),
    "bool id": frame(u=True),
    "u past int64": frame(u=1 << 63),
    "pu string": frame(pu="10"),
    "bids not a list": frame(b={"1": "2"}),
    "level of three": frame(b=[["1.0", "2.0", "3.0"]]),
    "numeric price": frame(b=[[1.0, "2.0"]]),
    "non-numeric qty": frame(b=[["1.0", "abc"]]),
    "negative qty": frame(b=[["1.0", "-2"]]),
    "negative price": frame(b=[["-1.0", "2"]]),
    "zero price": frame(b=[["0.00000000", "2"]]),
    "exponent": frame(a=[["1e5", "2"]]),
    "two dots": frame(a=[["1.0.0", "2"]]),
    "nan": frame(a=[["2.0", "NaN"]]),
    "unicode digits": frame(a=[["2.0", "١٢"]]),
    "unicode digits in a known price's qty": frame(b=[["1.0", "١"]]),
    "bad level after a good one": frame(b=[["1.0", "3"], ["0.5", "x"]]),
    "level as a string": frame(b=["12"]),
    "spaces": frame(a=[["2.0", " 2"]]),
    "unknown event type": orjson.dumps({"e": "mysteryEvent", "E": 1}),
    "bad envelope": orjson.dumps({"stream": 5, "data": {}}),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_frame_is_counted_and_the_book_is_untouched(name: str) -> None:
    """Every kind of bad frame becomes one Malformed event; the book and the core are unchanged."""
    books = synced_books()
    sync = books.books["BTCUSDT"]
    before = ([*sync.book.bids.levels()], [*sync.book.asks.levels()], sync.last_update_id)
    assert books.receive_frame(BAD_FRAMES[name], "conn-1") in (None, Outcome.MALFORMED)
    (event,) = books.events()
    assert isinstance(event, Malformed) and event.reason
    assert len(event.excerpt) <= 121
    assert books.counters.malformed == 1
    assert before == ([*sync.book.bids.levels()], [*sync.book.asks.levels()], sync.last_update_id)
    assert books.receive_frame(frame(U=11, u=11, b=[["1.0", "5"]])) is Outcome.APPLIED


def test_malformed_event_names_the_stream() -> None:
    """The stream name comes from the envelope when there is one, else from the connection."""
    event = decode_frame(frame(b={"x": "1"}), "conn")
    assert isinstance(event, Malformed) and event.stream == "btcusdt@depth@100ms"
    event = decode_frame(b"{", "conn")
    assert isinstance(event, Malformed) and event.stream == "conn"


def test_ten_megabyte_frame_is_refused_without_parsing() -> None:
    """A 10 MB frame is Malformed by size, with a short excerpt."""
    huge = b'{"e":"depthUpdate","b":[' + b'["1.0","1.0"],' * 750_000 + b"]}"
    assert len(huge) > 10_000_000
    event = decode_frame(huge, "s")
    assert isinstance(event, Malformed) and "exceeds" in event.reason
    assert len(event.excerpt) < 200


def test_overflow_cap_quantity_is_kept_exactly() -> None:
    """Binance's capped quantity 92233720368.54775807 survives decode and book byte for byte."""
    books = synced_books()
    books.receive_frame(frame(U=11, u=11, b=[["1.00000000", CAP]]))
    assert books.books["BTCUSDT"].book.bids.top(1) == [("1.0", CAP)]


def test_raw_and_combined_frames_decode_alike() -> None:
    """A raw /ws frame and a combined /stream frame give the same diff."""
    combined = decode_frame(frame())
    raw = decode_frame(orjson.dumps(orjson.loads(frame())["data"]))
    assert isinstance(combined, DepthDiff) and combined == raw


def test_known_other_events_are_not_malformed() -> None:
    """bookTicker, aggTrade, kline, partial depth and SUBSCRIBE answers are recognised, not bad."""
    samples = [
        {"u": 1, "s": "X", "b": "1", "B": "1", "a": "2", "A": "1"},
        {"e": "aggTrade", "E": 1},
        {"e": "kline", "E": 1},
        {"lastUpdateId": 1, "bids": [], "asks": []},
        {"result": None, "id": 1},
        {"error": {"code": 2, "msg": "Invalid request"}, "id": 2},
    ]
    for sample in samples:
        assert isinstance(decode_frame(orjson.dumps(sample)), OtherEvent), sample


def test_futures_diff_keeps_pu() -> None:
    """A USD-M diff decodes its pu."""
    event = decode_frame(frame(pu=9, T=5))
    assert isinstance(event, DepthDiff) and event.prev_last_id == 9


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"lastUpdateId":"1","bids":[],"asks":[]}', b'{"lastUpdateId":1}'],
)
def test_bad_snapshot_body_is_malformed_and_asks_again(body: bytes) -> None:
    """A broken snapshot body is Malformed; the symbol re-requests instead of hanging."""
    assert isinstance(decode_snapshot(body), Malformed)
    books = DepthBooks(symbols=["BTCUSDT"])
    books.receive_frame(frame(U=10, u=10))
    sync = books.books["BTCUSDT"]
    token = sync.pending_token
    books.events()
    books.receive_snapshot("BTCUSDT", body, token)
    assert sync.pending_token not in (None, token)
    assert len(sync.book.bids) == 0


def test_gap_in_one_symbol_leaves_the_other_synced() -> None:
    """A reset is per symbol: ETHBTC's gap does not touch BTCUSDT."""
    books = synced_books()
    books.receive_frame(frame(s="ETHBTC", U=1, u=1))
    books.receive_frame(frame(s="ETHBTC", U=5, u=5))
    assert books.books["BTCUSDT"].synced
    assert books.books["ETHBTC"].counters.resets == 1


def test_number_validators() -> None:
    """Plain non-negative decimals are valid quantities; prices must also be non-zero."""
    assert all(valid_qty(q) for q in ["0", "0.00000000", "12", "1.5", CAP, "1.", ".5"])
    assert not any(valid_qty(q) for q in ["", ".", "-1", "+1", "1e3", "1_0", "inf", 5, None])
    assert valid_price("0.00000001") and not valid_price("0.000")


def test_futures_partial_depth_is_not_taken_for_a_diff() -> None:
    """A USD-M @depth20 message has the depthUpdate shape but is a top-N book: never a diff."""
    data = orjson.loads(frame(pu=9))["data"]
    partial = orjson.dumps({"stream": "btcusdt@depth20@100ms", "data": data})
    assert decode_frame(partial) == OtherEvent("btcusdt@depth20@100ms", "partialDepth")
    diff_stream = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})
    assert isinstance(decode_frame(diff_stream), DepthDiff)


ESCAPED_DIGIT = (
    rb'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":11,"u":11,"b":[["\u0661.5","\u0661"]],"a":[]}'
)


def test_escaped_arabic_indic_digit_is_malformed_on_a_synced_book() -> None:
    """The escape \\u0661 is ASCII on the wire, but "١.5" is no price: Malformed, rolled back."""
    books = synced_books()
    sync = books.books["BTCUSDT"]
    before = [*sync.book.bids.levels()]
    assert books.receive_frame(ESCAPED_DIGIT) is Outcome.MALFORMED
    assert [*sync.book.bids.levels()] == before and sync.last_update_id == 10
    held = ESCAPED_DIGIT.replace(rb'"\u0661.5"', b'"1.0"')  # a held price, the digit as its qty
    assert books.receive_frame(held) is Outcome.MALFORMED
    assert sync.book.bids.top(5) == [("1.0", "1")]


def test_escaped_arabic_indic_digit_is_malformed_while_buffering() -> None:
    """A diff buffered before the snapshot is checked as strictly as one applied to the book."""
    books = DepthBooks(symbols=["BTCUSDT"])
    assert books.receive_frame(ESCAPED_DIGIT) is Outcome.MALFORMED
    assert books.books["BTCUSDT"].counters.malformed == 1


@pytest.mark.parametrize(
    "text", ["١", "1.١", "１", "²", " 1", "1 ", "\t1", "+1", "-1", "1e3", "1_0", "1..0"]
)
def test_only_ascii_digits_and_one_dot_are_a_number(text: str) -> None:
    """Other scripts' digits, signs, exponents, underscores and whitespace are never numbers."""
    assert not valid_qty(text) and not valid_price(text)
