"""``streamer record``: a capture of a live session that ``streamer replay`` turns back into the
very books the session held at the end, in-process and through the command line; a recorder
killed mid-write leaves a file whose complete lines replay."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streamer import AuditPassed, CaptureRecorder, Streamer
from streamer.sansio.capture import read_capture
from streamer.sansio.replay import replay
from streamer.testing import FakeExchange
from tests.integration.live import EventLog, T, exact, synced
from tests.integration.procs import exchange_process, finish, lines_until, streamer

SYMBOLS = ["BTCUSDT", "ETHBTC"]
ALL = 10**6  # levels per side: every level


@pytest.mark.parametrize("venue", ["spot", "usdm"])
async def test_a_recorded_session_replays_to_the_live_books(venue: str, tmp_path: Path) -> None:
    """Record ~3 s of live books (snapshots and audits included); replaying the file gives the
    books the session held at the end: same state, update id, every level and counters."""
    path = tmp_path / "capture.jsonl"
    async with FakeExchange(symbols=SYMBOLS, venue=venue, seed=7, rate=300) as ex:
        recorder = CaptureRecorder(path, venue=venue)
        s = Streamer(ex.endpoints, symbols=SYMBOLS, recorder=recorder, audit_interval=0.5)
        async with s:
            log = EventLog(s.events())
            await synced(s, *SYMBOLS)
            for symbol in SYMBOLS:  # an audit snapshot is part of the capture too
                await log.wait(AuditPassed, lambda e, symbol=symbol: e.symbol == symbol)
            await asyncio.sleep(1)  # record a while longer: this is the recording, not a wait
        # Closed: the books as the session held them at the very end (frames read while the
        # connections closed included), and the recorder wrote its last line.
        live = {
            symbol: (sync.synced, sync.last_update_id, sync.book.bids.top(ALL),
                     sync.book.asks.top(ALL))
            for symbol, sync in s.books.books.items()
        }  # fmt: skip
        counters = s.stats()["books"]
    with path.open("rb") as fh:
        books = replay(read_capture(fh), depth=ALL)["books"]
    assert set(books) == set(SYMBOLS)
    for symbol in SYMBOLS:
        book, (is_synced, update_id, bids, asks) = books[symbol], live[symbol]
        assert book["venue"] == venue and is_synced
        assert book["state"] == "synced" and book["last_update_id"] == update_id
        assert book["bids"] == [list(level) for level in bids]
        assert book["asks"] == [list(level) for level in asks]
        for key in ("applied", "dropped", "resyncs", "audits_passed", "drifts"):
            assert book[key] == counters[symbol][key], (symbol, key)
        assert book["audits_passed"] >= 1


def capture_ids(path: Path) -> dict[str, int]:
    """The newest ``u`` per symbol among the frames flushed to ``path`` so far."""
    newest: dict[str, int] = {}
    if not path.exists():
        return newest
    lines = path.read_bytes().split(b"\n")[1:-1]  # after the header, complete lines only
    for line in lines:
        record = orjson.loads(line)
        if record["kind"] != "ws":
            continue
        frame = orjson.loads(record["data"])
        data = frame.get("data", frame)
        if isinstance(data, dict) and data.get("e") == "depthUpdate":
            newest[data["s"]] = max(newest.get(data["s"], 0), data["u"])
    return newest


async def wait_for_capture(path: Path, done: Any) -> None:
    """Poll the file the recorder flushes every 0.2 s until ``done(ids)`` (bounded): another
    process's file offers nothing to await."""
    async with asyncio.timeout(T):
        while not done(capture_ids(path)):  # noqa: ASYNC110 - another process's file: no event
            await asyncio.sleep(0.1)


def synced_lines(seen: list[str]) -> bool:
    return all(any(f"{symbol} synced at" in line for line in seen) for symbol in SYMBOLS)


async def test_cli_record_then_replay_gives_the_true_books(tmp_path: Path) -> None:
    """`streamer record` against `streamer exchange`, stopped by SIGINT once it has the paused
    market's last diffs: `streamer replay` prints the true books, at the ids it reported."""
    path = tmp_path / "cli.jsonl"
    async with exchange_process("--symbols", *SYMBOLS, "--rate", "300") as info:
        proc = await streamer("record", "--out", str(path), "--local", info["rest"], *SYMBOLS)
        assert proc.stderr is not None
        seen: list[str] = []
        await lines_until(proc.stderr, synced_lines, seen)
        await asyncio.sleep(1)  # let it record a stretch of live diffs first
        async with aiohttp.ClientSession() as session:
            await session.post(f"{info['rest']}/_fake/pause")
            truth = {}
            for symbol in SYMBOLS:
                async with session.get(f"{info['rest']}/_fake/book?symbol={symbol}") as r:
                    truth[symbol] = await r.json()
        await wait_for_capture(
            path, lambda ids: all(ids.get(s, 0) >= truth[s]["lastUpdateId"] for s in SYMBOLS)
        )
        proc.send_signal(signal.SIGINT)
        code, _out, err = await finish(proc)
    assert code == 0, err
    report = "".join(seen) + err
    assert "Traceback" not in report
    assert re.search(r"wrote \d+ records \(\d+ frames, [1-9]\d* snapshots\)", report), report
    replayed = await streamer("replay", str(path), "--depth", str(ALL))
    code, out, err = await finish(replayed)
    assert code == 0, err
    books = json.loads(out)["books"]
    for symbol in SYMBOLS:
        want = truth[symbol]
        assert f"{symbol} synced at {want['lastUpdateId']}," in report, report
        book = books[symbol]
        assert book["state"] == "synced" and book["last_update_id"] == want["lastUpdateId"]
        assert exact(book["bids"]) == exact(want["bids"]), symbol
        assert exact(book["asks"]) == exact(want["asks"]), symbol


async def test_a_killed_recorder_leaves_a_file_that_replays(tmp_path: Path) -> None:
    """SIGKILL mid-recording: every complete line of the file replays; the books sync."""
    path = tmp_path / "killed.jsonl"
    async with exchange_process("--symbols", *SYMBOLS, "--rate", "300") as info:
        proc = await streamer(
            "record", "--out", str(path), "--seconds", "120", "--local", info["rest"], *SYMBOLS
        )
        assert proc.stderr is not None
        seen: list[str] = []
        await lines_until(proc.stderr, synced_lines, seen)
        first = capture_ids(path)
        # flushed: frames past the ones that were there when both books had synced
        await wait_for_capture(
            path, lambda ids: all(ids.get(s, 0) > first.get(s, 0) for s in SYMBOLS)
        )
        proc.kill()
        await finish(proc)
    assert proc.returncode == -signal.SIGKILL
    replayed = await streamer("replay", str(path))
    code, out, err = await finish(replayed)
    assert code == 0, err
    books = json.loads(out)["books"]
    assert all(books[symbol]["state"] == "synced" for symbol in SYMBOLS), books
