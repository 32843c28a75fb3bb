"""What every ``streamer`` command gets from ``main()`` without its module doing anything:

- errors as one line on stderr, ``streamer <command>: <what went wrong>``, and a traceback only
  with ``--debug`` (a top-level flag, also accepted after the subcommand);
- exit codes that say what happened (:data:`EXIT_CODES`), the same for every command;
- ``--log-level`` (stdlib ``logging`` on stderr, quiet by default: WARNING);
- usage errors from argparse as one line too (:class:`Parser`), and help texts whose indented
  paragraphs (the examples) are kept as written (:class:`HelpFormatter`);
- the examples of each command's ``--help`` (:data:`EXAMPLES`), set from here so that a command
  module need not carry them.

A command's own ``--log-level`` or ``--debug`` (if it adds one) must use the dests ``log_level``
and ``debug``: ``main()`` then makes it override the top-level one only when it is given.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, NoReturn

import aiohttp

from streamer.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidOrder,
    StreamerError,
    TransportError,
    UnknownSymbol,
)

__all__ = [
    "EXAMPLES",
    "EXIT_CODES",
    "EXIT_CONNECT",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOG_LEVELS",
    "HelpFormatter",
    "Parser",
    "add_common_args",
    "apply_examples",
    "debug_enabled",
    "error_line",
    "examples_epilog",
    "exit_code",
    "propagate_common_args",
    "run_command",
    "set_debug",
    "setup_logging",
    "subcommands",
]

EXIT_OK = 0
EXIT_FAILURE = 1  # a check or command found a failure
EXIT_USAGE = 2  # bad flags, configuration or credentials
EXIT_CONNECT = 3  # an endpoint could not be reached
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), the shell's convention

#: The exit codes every command uses, as ``streamer --help`` and the README list them.
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success (and a live command stopped by --seconds, Ctrl-C or SIGTERM)",
    EXIT_FAILURE: "the command ran and found a failure (a check failed, an internal error)",
    EXIT_USAGE: "usage, configuration or credentials error (bad flag, config file, key)",
    EXIT_CONNECT: "could not connect to an endpoint",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C before it could finish",
}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "WARNING"

_debug = False


def set_debug(on: bool) -> None:
    """Whether :func:`error_line` also prints the traceback (``--debug``)."""
    global _debug
    _debug = on


def debug_enabled() -> bool:
    return _debug


# -- errors and exit codes -------------------------------------------------------------------


def error_line(prog: str, exc: BaseException) -> None:
    """One line on stderr: the command and what went wrong; with ``--debug`` the traceback
    first. Messages are the library's own, which never carry a secret (errors.py)."""
    if _debug:
        traceback.print_exception(exc, file=sys.stderr)
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: {text}", file=sys.stderr, flush=True)


_CONNECT_ERRORS = (
    TransportError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    aiohttp.ClientConnectionError,
)


def _refused_key(exc: BaseException) -> bool:
    """A handshake refused with 401/403 (the SBE streams' API key check): a credentials error
    even though it surfaces as a failed connection."""
    cause = exc.__cause__
    status = getattr(cause, "status", None) or getattr(exc, "status", None)
    return status in (401, 403)


def exit_code(exc: BaseException) -> int:
    """The exit status for ``exc`` (see :data:`EXIT_CODES`)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigurationError | AuthenticationError | UnknownSymbol | InvalidOrder):
        return EXIT_USAGE
    if isinstance(exc, _CONNECT_ERRORS):
        return EXIT_USAGE if _refused_key(exc) else EXIT_CONNECT
    if isinstance(exc, StreamerError):
        return EXIT_FAILURE
    if isinstance(exc, OSError):  # a file that cannot be read or written
        return EXIT_USAGE
    return EXIT_FAILURE


def run_command(
    prog: str, func: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run one command's handler; whatever escapes it becomes one line and an exit code."""
    try:
        return func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's final
        # flush of stdout from failing again (the recipe of the `signal` module's docs).
        _silence_stdout()
        return EXIT_OK
    except (StreamerError, OSError) as exc:
        error_line(prog, exc)
        return exit_code(exc)
    except Exception as exc:
        error_line(prog, _Internal(exc))
        return EXIT_FAILURE


class _Internal(Exception):
    """An unexpected error: say what it was, and how to see where."""

    def __init__(self, exc: Exception) -> None:
        hint = "" if _debug else " (run with --debug for the traceback)"
        super().__init__(f"internal error: {type(exc).__name__}: {exc}{hint}")
        self.__cause__ = exc
        self.__traceback__ = exc.__traceback__


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (in-process callers): nothing to flush
        pass


# -- logging ---------------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capture swaps it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


_HANDLER = "streamer-cli"


def setup_logging(level: str) -> None:
    """Log records at ``level`` and above to stderr (one handler, however often it is called;
    a command's own setup may call it again with its own level)."""
    root = logging.getLogger()
    if not any(h.get_name() == _HANDLER for h in root.handlers):
        handler = _StderrHandler()
        handler.set_name(_HANDLER)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())


def log_level(text: str) -> str:
    """argparse type of ``--log-level``: a level name, any case."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


# -- the parsers -----------------------------------------------------------------------------


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose paragraphs as argparse does, but keeps a paragraph with indented lines (an
    example block, a table) exactly as written, as RawDescriptionHelpFormatter would."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n[ \t]*\n", text.strip("\n"))
        out = []
        for para in paragraphs:
            lines = para.splitlines()
            if any(line[:1].isspace() for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(para.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(out)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and status 2, and whose help keeps
    examples as written. Subparsers made from it are Parsers too (argparse passes the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        found, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the command they were given to, not by the top level
            command = getattr(found, "cli_command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            text = f"unrecognized arguments: {' '.join(extras)}"
            self.exit(EXIT_USAGE, f"{prog}: {text} (see `{prog} --help`)\n")
        return found

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: {text} (see `{self.prog} --help`)\n")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The top-level flags: ``--config``, ``--log-level``, ``--debug``."""
    parser.add_argument(
        "--config",
        dest="config_file",
        metavar="PATH",
        help="the TOML config file (default: $STREAMER_CONFIG, else "
        "~/.config/streamer/config.toml if it exists)",
    )
    parser.add_argument(
        "--log-level",
        type=log_level,
        default=DEFAULT_LOG_LEVEL,
        metavar="LEVEL",
        help=f"log to stderr from LEVEL up: {', '.join(LOG_LEVELS)} (default {DEFAULT_LOG_LEVEL})",
    )
    parser.add_argument(
        "--debug", action="store_true", help="on an error, also print its traceback"
    )


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand parser under ``parser``, by its path (``"book"``, ``"order place"``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias
                    continue
                seen.add(id(sub))
                path = f"{prefix} {name}".strip()
                found[path] = sub
                found.update(subcommands(sub, path))
    return found


def propagate_common_args(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` and ``--log-level`` after any subcommand too, and record the command's
    path in ``args.cli_command``. A subcommand's copy (its own, or the one added here) sets its
    dest only when given (default SUPPRESS), so the top-level value stands otherwise."""
    for path, sub in subcommands(parser).items():
        sub.set_defaults(cli_command=path)
        if "--debug" not in sub._option_string_actions:
            sub.add_argument(
                "--debug", action="store_true", help="on an error, also print its traceback"
            )
        if "--log-level" not in sub._option_string_actions:
            sub.add_argument(
                "--log-level", type=log_level, metavar="LEVEL",
                help=f"log to stderr from LEVEL up ({', '.join(LOG_LEVELS)})",
            )  # fmt: skip
        for action in sub._actions:
            if action.dest in ("debug", "log_level"):
                action.default = argparse.SUPPRESS
        for dest in ("debug", "log_level"):
            sub._defaults.pop(dest, None)


# -- examples in --help ----------------------------------------------------------------------

#: ``--help`` examples per command path: (what it does, the command line). Applied by
#: :func:`apply_examples` to the commands that exist, so a command module need not carry them.
EXAMPLES: Mapping[str, Sequence[tuple[str, str]]] = {
    "demo": [
        ("live books and orders on an in-process exchange, until Ctrl-C", "streamer demo"),
        ("30 seconds, then the summary as one JSON object", "streamer demo --duration 30 --json"),
    ],
    "replay": [
        ("the books a capture ends with, as JSON", "streamer replay session.jsonl"),
        ("one symbol, 5 levels a side", "streamer replay session.jsonl --symbol BTCUSDT --depth 5"),
    ],
    "exchange": [
        (
            "a local Binance on port 8080 (prints its URLs and a demo key)",
            "streamer exchange --port 8080",
        ),
        ("the URLs and keys as one JSON line, for scripts", "streamer exchange --json"),
        ("USD-M futures market data", "streamer exchange --venue usdm --port 8081"),
    ],
    "book": [
        (
            "two live books from the local exchange, as a table",
            "streamer book --local http://127.0.0.1:8080 BTCUSDT ETHBTC",
        ),
        (
            "JSON lines for 10 seconds, 5 levels a side",
            "streamer book --local http://127.0.0.1:8080 --json --depth 5 --seconds 10 BTCUSDT",
        ),
        ("real Binance USD-M futures", "streamer book --venue usdm BTCUSDT"),
    ],
    "record": [
        (
            "record 60 s of two books, then replay them",
            "streamer record --local http://127.0.0.1:8080 --out s.jsonl --seconds 60 "
            "BTCUSDT ETHBTC",
        ),
        ("", "streamer replay s.jsonl"),
    ],
    "orders": [
        (
            "the account's orders, fills and balances live (key in $BINANCE_API_KEY and "
            "$BINANCE_API_SECRET)",
            "streamer orders --local http://127.0.0.1:8080",
        ),
        (
            "as JSON lines, for 30 s",
            "streamer orders --local http://127.0.0.1:8080 --json --seconds 30",
        ),
    ],
    "order": [
        (
            "buy 0.1 BTC at the market",
            "streamer order place --local http://127.0.0.1:8080 --symbol BTCUSDT --side BUY "
            "--type MARKET --quantity 0.1",
        ),
        (
            "cancel it by its client order id",
            "streamer order cancel --local http://127.0.0.1:8080 --symbol BTCUSDT "
            "--client-order-id ID",
        ),
    ],
    "order place": [
        (
            "buy 0.1 BTC at the market",
            "streamer order place --local http://127.0.0.1:8080 --symbol BTCUSDT --side BUY "
            "--type MARKET --quantity 0.1",
        ),
        (
            "a resting limit order, printed as JSON",
            "streamer order place --local http://127.0.0.1:8080 --symbol BTCUSDT --side BUY "
            "--type LIMIT --price 20000 --quantity 0.01 --json",
        ),
    ],
    "order cancel": [
        (
            "cancel an order by the client order id `order place` printed",
            "streamer order cancel --local http://127.0.0.1:8080 --symbol BTCUSDT "
            "--client-order-id ID",
        ),
    ],
    "check": [
        ("validate the local exchange, every step", "streamer check --local http://127.0.0.1:8080"),
        (
            "market data only, as JSON (one object per step)",
            "streamer check --local http://127.0.0.1:8080 --market-only --json",
        ),
        ("the spot testnet (key in $BINANCE_TESTNET_API_KEY)", "streamer check --testnet"),
    ],
    "config": [
        ("the effective configuration and where each value came from", "streamer config show"),
    ],
    "config show": [
        ("the effective configuration, secrets masked", "streamer config show"),
        (
            "as JSON, with another config file",
            "streamer --config ./streamer.toml config show --json",
        ),
    ],
}


def examples_epilog(examples: Sequence[tuple[str, str]]) -> str:
    """The ``examples:`` block of a help text (indented, so :class:`HelpFormatter` keeps it)."""
    lines = ["examples:"]
    for what, command in examples:
        if what:
            lines.append(f"  # {what}")
        lines.append(f"  {command}")
    return "\n".join(lines)


def apply_examples(
    parser: argparse.ArgumentParser,
    examples: Mapping[str, Sequence[tuple[str, str]]] = EXAMPLES,
) -> None:
    """Add the examples to the help of each command of ``examples`` that exists (after an
    epilog of its own, unless that already has examples)."""
    for path, sub in subcommands(parser).items():
        if path not in examples:
            continue
        block = examples_epilog(examples[path])
        if not sub.epilog:
            sub.epilog = block
        elif "examples:" not in sub.epilog:
            sub.epilog = f"{sub.epilog}\n\n{block}"


def exit_codes_epilog() -> str:
    """The exit code table of ``streamer --help``."""
    rows = "\n".join(f"  {code:<4} {what}" for code, what in EXIT_CODES.items())
    return f"exit codes:\n{rows}"
