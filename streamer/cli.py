"""The ``streamer`` command line: ``demo``, ``replay``, ``exchange``, ``book``, ``record``,
``check``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from streamer import __version__
from streamer._impl import describe
from streamer.cli_book import add_book_parser
from streamer.cli_check import add_check_parser
from streamer.cli_demo import add_demo_parser
from streamer.cli_record import add_record_parser
from streamer.sansio.capture import CaptureError, read_capture
from streamer.sansio.replay import replay
from streamer.testing.exchange.cli import add_exchange_parser

__all__ = ["main"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _cmd_replay(args: argparse.Namespace) -> int:
    try:
        with Path(args.capture).open("rb") as fh:
            symbols = [args.symbol] if args.symbol else None
            result = replay(read_capture(fh), depth=args.depth, symbols=symbols)
    except (OSError, CaptureError) as exc:
        print(f"streamer replay: {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
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
    p.add_argument("--depth", type=_positive, default=10, help="levels per side to print")
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
