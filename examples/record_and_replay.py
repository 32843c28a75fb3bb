"""Record a live session, replay it offline, and check the replay rebuilds the same books.

    python examples/record_and_replay.py BTCUSDT ETHBTC --seconds 10          # real Binance
    python examples/record_and_replay.py BTCUSDT --local http://127.0.0.1:P --out session.jsonl

The Streamer's CaptureRecorder writes every frame fed to the books and every snapshot delivered
to them (capture format v1, docs/capture-format.md); the pure replay core then reads the file
with no network and must end on the very update ids, and levels, the live books held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from streamer import CaptureRecorder, Endpoints, Streamer
from streamer.sansio.capture import read_capture
from streamer.sansio.replay import replay

ALL = 100_000  # levels: compare whole books


async def record(symbols: list[str], endpoints: Endpoints, out: Path, seconds: float) -> dict:
    """Record ``seconds`` of live books to ``out``; the books as the session ended."""
    recorder = CaptureRecorder(out, source="examples/record_and_replay.py", venue=endpoints.venue)
    async with Streamer(endpoints, symbols=symbols, recorder=recorder) as s:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.Event().wait()  # the books run in the background meanwhile
    live = {}  # read after close: nothing more is fed, or recorded
    for symbol, sync in s.books.books.items():
        live[symbol] = {
            "last_update_id": sync.last_update_id if sync.synced else None,
            "bids": [list(level) for level in sync.book.bids.top(ALL)],
            "asks": [list(level) for level in sync.book.asks.top(ALL)],
        }
    return live


def main() -> int:
    parser = argparse.ArgumentParser(description="Record live books, replay, compare.")
    parser.add_argument("symbols", nargs="*", default=["BTCUSDT"])
    parser.add_argument("--local", metavar="URL", help="the local exchange (streamer exchange)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    parser.add_argument("--out", type=Path, default=Path("session.jsonl"), help="capture file")
    args = parser.parse_args()
    where = Endpoints.local(args.local) if args.local else Endpoints.binance_spot()
    symbols = [s.upper() for s in args.symbols]
    live = asyncio.run(record(symbols, where, args.out, args.seconds))
    with args.out.open("rb") as fh:
        replayed = replay(read_capture(fh), depth=ALL)["books"]
    same = True
    for symbol in symbols:
        book = replayed.get(symbol, {})
        ours = {k: book.get(k) for k in ("last_update_id", "bids", "asks")}
        ok = ours == live[symbol]
        same &= ok
        print(
            f"{symbol}: live at {live[symbol]['last_update_id']}, replayed at "
            f"{ours['last_update_id']}: {'the same book' if ok else 'DIFFERENT'}"
        )
    print(f"capture: {args.out} ({args.out.stat().st_size} bytes)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
