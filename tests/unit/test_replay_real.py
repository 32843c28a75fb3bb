"""Replay of the real Binance captures through the core (issue 2, 'Replay of the real captures')."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from streamer.sansio.capture import CaptureError, read_capture
from streamer.sansio.replay import Replay, replay
from streamer.sansio.wire import Venue
from tests import reference
from tests.conftest import BUNDLED, CAPTURES

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations

PATHS = sorted(CAPTURES, key=str)


def _run(path: Path) -> Replay:
    run = Replay()
    with path.open("rb") as fh:
        for record in read_capture(fh):
            run.feed(record)
            for books in run.venues.values():  # the books never cross, after any record
                for sync in books.books.values():
                    if sync.synced:
                        assert not sync.book.is_crossed(), (path.name, sync.symbol)
    return run


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_every_symbol_ends_synced_and_equal_to_the_reference(path: Path) -> None:
    """Each real capture replays to synced books equal to the simple reference model."""
    run = _run(path)
    futures = CAPTURES[path] != "spot"
    expected = reference.replay_file(path, futures)
    (books,) = run.venues.values()
    assert books.venue is (Venue.USDM if futures else Venue.SPOT)
    assert set(books.books) == set(expected) and len(expected) == 4
    for symbol, sync in books.books.items():
        last, bids, asks = expected[symbol]
        assert sync.synced, symbol
        assert sync.last_update_id == last
        assert {Decimal(p): Decimal(q) for _, p, q in sync.book.bids.levels()} == bids
        assert {Decimal(p): Decimal(q) for _, p, q in sync.book.asks.levels()} == asks
        assert sync.counters.resets == 0 and sync.counters.applied > 0
    assert books.counters.malformed == 0


def test_replay_output_matches_the_documented_example() -> None:
    """NKNUSDT ends as capture-format.md shows: synced at 499870179, 0.3527x9602 / 0.3531x152."""
    with (BUNDLED / "spot-4sym-2021-10-12.jsonl").open("rb") as fh:
        out = replay(read_capture(fh), depth=1)
    nkn = out["books"]["NKNUSDT"]
    assert nkn["state"] == "synced" and nkn["last_update_id"] == 499870179
    assert [Decimal(x) for x in nkn["bids"][0]] == [Decimal("0.3527"), Decimal("9602")]
    assert [Decimal(x) for x in nkn["asks"][0]] == [Decimal("0.3531"), Decimal("152")]
    assert nkn["bid_levels"] == 614 and nkn["ask_levels"] == 994


def test_cli_replay_prints_one_json_object_with_depth_and_symbol_filter() -> None:
    """`streamer replay CAPTURE --depth 3 --symbol S` prints only S with 3 levels per side."""
    path = BUNDLED / "spot-4sym-2021-10-12.jsonl"
    cmd = [sys.executable, "-m", "streamer", "replay", str(path), "--depth", "3"]
    done = subprocess.run([*cmd, "--symbol", "lrcbtc"], capture_output=True, check=True)
    out = json.loads(done.stdout)
    assert list(out["books"]) == ["LRCBTC"]
    book = out["books"]["LRCBTC"]
    assert len(book["bids"]) == 3 and len(book["asks"]) == 3 and book["state"] == "synced"
    bids = [Decimal(p) for p, _ in book["bids"]]
    assert bids == sorted(bids, reverse=True)


def test_cli_replay_reports_a_broken_capture_clearly(tmp_path: Path) -> None:
    """A file that is not a capture gives exit status 2 and a one-line message, no traceback."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"capture": 1}\nnot json\n')
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "replay", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "line 2" in done.stderr and "Traceback" not in done.stderr


def test_capture_reader_skips_unknown_kinds_and_fields() -> None:
    """Readers ignore records of unknown kind and unknown fields (capture-format.md)."""
    lines = [
        '{"capture": 1, "source": "t"}',
        '{"ts": 1, "kind": "note", "text": "hello"}',
        '{"ts": 2, "kind": "ws", "url": "wss://x/ws", "data": "{}", "extra": 5}',
    ]
    records = list(read_capture(lines))
    assert [(r.kind, r.ts) for r in records] == [("ws", 2.0)]
    with pytest.raises(CaptureError, match="line 1"):
        list(read_capture(['{"capture": 2}']))


def test_capture_records_round_trip_byte_for_byte(tmp_path: Path) -> None:
    """Writing the records of a real capture and reading them back gives the same records."""
    from streamer.sansio.capture import format_header, format_record

    source = BUNDLED / "spot-4sym-2021-10-12.jsonl"
    with source.open("rb") as fh:
        records = list(read_capture(fh))
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(format_header("round trip") + b"".join(format_record(r) for r in records))
    with copy.open("rb") as fh:
        assert list(read_capture(fh)) == records
    with copy.open("rb") as fh, source.open("rb") as original:
        assert replay(read_capture(fh)) == replay(read_capture(original))
