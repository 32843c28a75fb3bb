"""``streamer record --out FILE SYMBOL...``: capture a live session (format v1) for replay.

Every frame fed to the books and every snapshot delivered to them is written, in that order, by
:class:`~streamer.aio.recorder.CaptureRecorder`, with the venue in the header (the local
exchange's URLs do not tell it). ``streamer replay FILE`` then rebuilds the books this session
held when it stopped. While recording, stderr says when a book syncs or resyncs; on exit, what
was recorded and the state of each book at the end (the ids replay must reach).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from streamer.aio.recorder import CaptureRecorder
from streamer.aio.runner import run
from streamer.aio.streamer import Streamer
from streamer.cli_live import (
    add_endpoint_args,
    endpoints_from_args,
    error_line,
    positive_float,
    run_session,
    symbols_from_args,
)
from streamer.errors import StreamerError
from streamer.sansio.book_sync import Reset, Synced

__all__ = ["CountingRecorder", "add_record_parser"]

PROG = "streamer record"


class CountingRecorder(CaptureRecorder):
    """A CaptureRecorder that also counts frames and snapshots, for the summary."""

    frames = 0
    snapshots = 0

    def ws(self, url: str, data: bytes) -> None:
        self.frames += 1
        super().ws(url, data)

    def rest(self, url: str, status: int, body: bytes) -> None:
        self.snapshots += 1
        super().rest(url, status, body)


def add_record_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer record``."""
    p = subparsers.add_parser(
        "record",
        help="record a live session as a capture that `streamer replay` reproduces",
        description="Record the live books of SYMBOLs (frames and snapshots) to FILE until "
        "--seconds or Ctrl-C; `streamer replay FILE` then prints the books the session held.",
    )
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHBTC")
    p.add_argument("--out", required=True, metavar="FILE", help="the capture file to write")
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after S seconds")
    add_endpoint_args(p)
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    symbols = symbols_from_args(args.symbols)
    try:
        endpoints = endpoints_from_args(args)
        recorder = CountingRecorder(args.out, source=PROG, venue=endpoints.venue)
    except (StreamerError, OSError) as exc:
        error_line(PROG, exc)
        return 2
    streamer = Streamer(endpoints, symbols=symbols, recorder=recorder)
    started = time.monotonic()
    code = run(run_session(PROG, streamer, _progress, args.seconds, symbols))
    recorder.close()  # the Streamer closed it already, unless it never started
    if code == 0:
        _summary(streamer, recorder, time.monotonic() - started)
    return code


async def _progress(s: Streamer, stop: asyncio.Event) -> None:
    """Say on stderr when a book syncs or resyncs, until ``stop``."""
    events = s.events()

    async def pump() -> None:
        async for event in events:
            if isinstance(event, Synced):
                _say(f"{event.symbol} synced at {event.last_update_id}")
            elif isinstance(event, Reset):
                _say(f"{event.symbol} resyncing ({event.reason.value}: {event.detail})")

    pumping = asyncio.create_task(pump())
    try:
        await stop.wait()
    finally:
        pumping.cancel()


def _say(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def _summary(s: Streamer, recorder: CountingRecorder, elapsed: float) -> None:
    """What was recorded, and each book as the session held it at the end."""
    path = Path(recorder.path)
    _say(
        f"wrote {recorder.records} records ({recorder.frames} frames, {recorder.snapshots} "
        f"snapshots) in {elapsed:.1f} s to {path}; `streamer replay {path}` rebuilds:"
    )
    for symbol, sync in s.books.books.items():
        book = sync.book
        if sync.synced:
            state = f"synced at {sync.last_update_id}"
        else:
            state = f"not synced ({sync.state.value})"
        _say(f"  {symbol} {state}, {len(book.bids)} bids / {len(book.asks)} asks")
