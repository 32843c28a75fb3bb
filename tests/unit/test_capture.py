"""Capture v1 reading after a writer was killed: a truncated last line is skipped, and every
complete line before it still replays; a broken line with its newline is an error."""

from __future__ import annotations

import io

import pytest

from streamer.sansio.capture import (
    CaptureError,
    CaptureRecord,
    format_header,
    format_record,
    read_capture,
)
from streamer.sansio.replay import replay

URL = "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms"
REST = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
SNAPSHOT = '{"lastUpdateId":100,"bids":[["10.00","1"],["9.00","2"]],"asks":[["11.00","1"]]}'


def diff(first: int, last: int, bid_qty: str) -> str:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        f'"U":{first},"u":{last},"b":[["10.00","{bid_qty}"]],"a":[]}}}}'
    )


RECORDS = [
    CaptureRecord(1.0, "ws", URL, diff(99, 101, "3")),
    CaptureRecord(1.1, "rest", REST, SNAPSHOT, 200),
    CaptureRecord(1.2, "ws", URL, diff(102, 102, "4")),
    CaptureRecord(1.3, "ws", URL, diff(103, 104, "5")),
]


def capture() -> bytes:
    return format_header("test") + b"".join(format_record(r) for r in RECORDS)


def test_every_cut_inside_the_last_line_keeps_the_complete_lines() -> None:
    """A file cut at any byte of its last record (a writer killed mid-write) reads as the
    records before it, from bytes lines as from text lines."""
    data = capture()
    start = data.rstrip(b"\n").rfind(b"\n") + 1  # the first byte of the last record
    for cut in range(start + 1, len(data) - 1):  # each cut leaves a partial last line
        truncated = data[:cut]
        assert list(read_capture(io.BytesIO(truncated))) == RECORDS[:-1], cut
        text = io.StringIO(truncated.decode("utf-8", "replace"))
        assert list(read_capture(text)) == RECORDS[:-1], cut
    # only the newline lost: the last record is whole, and kept
    assert list(read_capture(io.BytesIO(data[:-1]))) == RECORDS
    assert list(read_capture(io.BytesIO(data))) == RECORDS


def test_a_truncated_capture_replays_its_complete_lines() -> None:
    """Replaying a capture cut in its last line gives the books of the complete lines."""
    data = capture()
    cut = data[: len(data) - 10]
    complete = format_header("test") + b"".join(format_record(r) for r in RECORDS[:-1])
    got = replay(read_capture(io.BytesIO(cut)))["books"]["BTCUSDT"]
    assert got == replay(read_capture(io.BytesIO(complete)))["books"]["BTCUSDT"]
    assert got["state"] == "synced" and got["last_update_id"] == 102
    assert got["bids"] == [["10.00", "4"], ["9.00", "2"]]


def test_a_broken_complete_line_is_an_error_naming_it() -> None:
    """A broken line that ends with its newline was not cut by a kill: it is an error."""
    lines = capture().split(b"\n")
    lines[2] = lines[2][:20]
    with pytest.raises(CaptureError, match="line 3"):
        list(read_capture(io.BytesIO(b"\n".join(lines))))
