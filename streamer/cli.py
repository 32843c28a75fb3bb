"""The ``streamer`` command line: ``replay``, ``demo``, ``exchange``, ``book``, ``record``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from streamer import __version__
from streamer._impl import describe
from streamer.cli_book import add_book_parser
from streamer.cli_live import levels_arg
from streamer.cli_record import add_record_parser
from streamer.sansio.capture import CaptureError, ReadStats, read_capture
from streamer.sansio.replay import replay
from streamer.testing.exchange.cli import add_exchange_parser

__all__ = ["main"]

#: The real capture shipped in the package (see streamer/data/README.md).
DEMO_CAPTURE = "spot-4sym-2021-10-12.jsonl"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _cmd_replay(args: argparse.Namespace) -> int:
    """Print the books; say on stderr what was skipped, and fail when nothing replayed."""
    stats = ReadStats()
    symbol = args.symbol.upper() if args.symbol else None
    try:
        with Path(args.capture).open("rb") as fh:
            result = replay(read_capture(fh, stats), depth=args.depth, symbols=symbol and [symbol])
        if symbol is not None and _never_fed(result["books"].get(symbol)):
            with Path(args.capture).open("rb") as fh:  # only now: which symbols it does hold
                held = ", ".join(replay(read_capture(fh), depth=1)["books"]) or "none"
            raise CaptureError(f"{symbol} is not in the capture (its symbols: {held})")
    except (OSError, CaptureError) as exc:
        print(f"streamer replay: {exc}", file=sys.stderr)
        return 2
    result["truncated_lines"] = 0 if stats.truncated_line is None else 1
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    if stats.truncated_line is not None:
        print(
            f"streamer replay: skipped line {stats.truncated_line}, cut off mid-line (a recorder "
            "killed while writing); every line before it replayed",
            file=sys.stderr,
        )
    if result["malformed"]:
        print(
            f"streamer replay: {result['malformed']} of {stats.records} records rejected as "
            'malformed (counted in "malformed")',
            file=sys.stderr,
        )
    if not result["books"]:
        print(f"streamer replay: no book in {args.capture} replayed", file=sys.stderr)
        return 1
    return 0


def _never_fed(book: dict[str, Any] | None) -> bool:
    """A book that no diff of the capture reached (still waiting for its first one)."""
    return book is None or (
        book["state"] == "waiting_for_diff"
        and not (book["applied"] or book["dropped"])
        and not book["resyncs"]
    )


def _format_book(symbol: str, book: dict[str, Any], depth: int) -> list[str]:
    """One book as a small two-column ladder, best levels at the top."""
    state = book["state"]
    head = f"{symbol}  {book['venue']}  {state}"
    if book["last_update_id"] is not None:
        head += f" at update {book['last_update_id']}"
    lines = [head, f"  {'bid qty':>16} {'bid':>14} | {'ask':<14} ask qty"]
    bids, asks = book["bids"], book["asks"]
    for i in range(depth):
        bp, bq = bids[i] if i < len(bids) else ("", "")
        ap, aq = asks[i] if i < len(asks) else ("", "")
        lines.append(f"  {bq:>16} {bp:>14} | {ap:<14} {aq}".rstrip())
    lines.append(
        f"  {book['bid_levels']} bid / {book['ask_levels']} ask levels held; "
        f"{book['applied']} diffs applied, {book['dropped']} stale dropped, "
        f"{book['resyncs']} resyncs"
    )
    return lines


def _cmd_demo(args: argparse.Namespace) -> int:
    capture = resources.files("streamer") / "data" / DEMO_CAPTURE
    with capture.open("rb") as fh:
        result = replay(read_capture(fh), depth=args.depth)
    print(f"Replaying 30 s of real Binance spot data ({DEMO_CAPTURE}) through the book core:\n")
    for symbol, book in result["books"].items():
        print("\n".join(_format_book(symbol, book, args.depth)))
        print()
    synced = sum(1 for b in result["books"].values() if b["state"] == "synced")
    total = len(result["books"])
    print(f"{synced}/{total} books synced; `streamer replay` prints the same books as JSON.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Binance order books and orders, kept exactly right."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"streamer {__version__} (book: {describe()})",
        help="print the version and which book implementation runs (C or pure Python)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay a capture through the book core, print the books")
    p.add_argument("capture", help="a capture v1 file (JSON Lines)")
    p.add_argument(
        "--depth",
        type=levels_arg,
        default=10,
        help="levels per side to print (at most those the book holds; default 10)",
    )
    p.add_argument("--symbol", help="only this symbol")
    p.set_defaults(func=_cmd_replay)
    p = sub.add_parser("demo", help="the main job: live books from real Binance data, offline")
    p.add_argument("--depth", type=_positive, default=5, help="levels per side to show")
    p.set_defaults(func=_cmd_demo)
    add_exchange_parser(sub)
    add_book_parser(sub)
    add_record_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
