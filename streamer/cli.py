"""The ``streamer`` command line: ``demo``, ``replay``, ``exchange``, ``book``, ``record``,
``orders``, ``order place|cancel``, ``check``, ``config show``.

``main()`` gives every command the conventions of ``cli_common`` (one-line errors, exit codes,
``--debug``, ``--log-level``, examples in ``--help``) and the configuration of ``cli_config``
(flags > environment > TOML file), without the command modules doing anything for it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from streamer import __version__, cli_common, cli_config
from streamer._impl import describe
from streamer.cli_book import add_book_parser
from streamer.cli_check import add_check_parser
from streamer.cli_common import Parser
from streamer.cli_demo import add_demo_parser
from streamer.cli_live import levels_arg
from streamer.cli_orders import add_orders_parsers
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
    parser: argparse.ArgumentParser = Parser(
        prog="streamer",
        description="Binance order books and orders, kept exactly right.",
        epilog=_epilog(),
    )
    cli_common.add_common_args(parser)
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
    add_orders_parsers(sub)
    add_check_parser(sub)
    cli_config.add_config_parser(sub)
    cli_common.propagate_common_args(parser)
    cli_common.apply_examples(parser)
    return parser


def _epilog() -> str:
    examples = cli_common.examples_epilog(
        [
            (
                "the local exchange, then its books from another terminal",
                "streamer exchange --port 8080",
            ),
            ("", "streamer book --local http://127.0.0.1:8080 BTCUSDT ETHBTC"),
            ("the effective configuration", "streamer config show"),
        ]
    )
    config = (
        "configuration: flags, then environment variables, then the TOML file --config PATH, "
        f"else ${cli_config.CONFIG_ENV}, else {cli_config.DEFAULT_CONFIG} if it exists "
        "(`streamer config show --help` lists its keys). Each command has its own --help."
    )
    return f"{examples}\n\n{cli_common.exit_codes_epilog()}\n\n{config}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with the configuration applied, run the command; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    early = _early_flags(argv)
    cli_common.set_debug(early.debug)
    parser = build_parser()
    try:
        config = cli_config.load_config(early.config_file)
    except cli_config.ConfigError as exc:
        if not {"-h", "--help", "--version"} & set(argv):  # help works with a broken file
            cli_common.error_line(_prog(parser, argv), exc)
            return cli_common.EXIT_USAGE
        config = cli_config.Config(None, "none")
    cli_config.apply_config(parser, config)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2, one line said)
        return exc.code if isinstance(exc.code, int) else cli_common.EXIT_USAGE
    given = cli_config.given_dests(build_parser(), argv)
    cli_config.fix_exclusive(args, given)
    args.cli_config, args.cli_given = config, given
    cli_common.set_debug(bool(args.debug))
    cli_common.setup_logging(args.log_level)
    prog = f"streamer {args.cli_command}"
    return cli_common.run_command(prog, args.func, args)


def _early_flags(argv: Sequence[str]) -> argparse.Namespace:
    """``--config`` and ``--debug``, needed before the real parse (which the config shapes);
    anything wrong here is left for the real parse to say."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    early.add_argument("--config", dest="config_file")
    early.add_argument("--debug", action="store_true")
    try:
        found, _rest = early.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):
        found = argparse.Namespace(config_file=None, debug=False)
    return found


def _prog(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """``streamer <command>`` for an error found before parsing (the first command word)."""
    names = set(cli_common.subcommands(parser))
    words = [w for w in argv if not w.startswith("-")]
    path = ""
    for word in words:
        if f"{path} {word}".strip() in names:
            path = f"{path} {word}".strip()
    return f"streamer {path}".strip()


if __name__ == "__main__":
    sys.exit(main())
