"""The ``streamer`` command line: ``demo``, ``replay``, ``exchange``, ``book``, ``record``,
``check``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from streamer import __version__
from streamer._impl import describe
from streamer.cli_book import add_book_parser
from streamer.cli_check import add_check_parser
from streamer.cli_demo import add_demo_parser
from streamer.cli_live import levels_arg
from streamer.cli_record import add_record_parser
from streamer.sansio.capture import CaptureError, ReadStats, read_capture
from streamer.sansio.replay import replay
from streamer.testing.exchange.cli import add_exchange_parser

__all__ = ["main"]


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
    add_demo_parser(sub)
    add_exchange_parser(sub)
    add_book_parser(sub)
    add_record_parser(sub)
    add_check_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
