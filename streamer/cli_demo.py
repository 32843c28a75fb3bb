"""``streamer demo``: the local exchange, live books and orders, and every market fault, live.

It starts the local exchange in this process (a market moving at a moderate rate, a funded
account), one ``Streamer`` with that account's keys and short drift audits, and follows the plan
of ``streamer.demo.plan``: orders that rest and are cancelled, orders that fill, a stop order
that triggers, and each market fault once (a dropped, a duplicated and a delayed diff, a
corrupted level, a stale snapshot, a dropped connection), each of which the screen shows happen
and heal. With ``--duration S`` it stops by itself; Ctrl-C (or SIGTERM) stops it at any time;
either way it checks every book and order against the exchange's truth and prints a summary
(one JSON object with ``--json``, and nothing else on stdout) and exits 0. Bad flags are one
line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import sys
import time
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live

from streamer.aio.runner import run
from streamer.aio.streamer import Streamer
from streamer.cli_book import TABLE_REFRESH, Rates
from streamer.cli_live import error_line, run_session, symbols_from_args
from streamer.config import Credentials
from streamer.demo.run import Demo
from streamer.demo.screen import screen, summary_table
from streamer.errors import ConfigurationError
from streamer.testing import FakeExchange
from streamer.testing.exchange.symbols import load_exchange_info

__all__ = ["add_demo_parser", "cmd_demo"]

PROG = "streamer demo"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
MAX_SYMBOLS = 8  # one screen
MAX_DEPTH = 20  # ladder rows per book: more does not fit a screen
RATE = 40.0  # market actions per second: books that move visibly, diffs a person can follow
SEED = 1


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer demo``."""
    p = subparsers.add_parser(
        "demo",
        help="the main job, live: a local exchange, live books and orders, faults healed",
        description="Start the local exchange in this process, keep live books of SYMBOLS, "
        "place and cancel orders, inject each market fault once and show it all live; then "
        "check every book and order against the exchange's truth and print a summary. Runs "
        "until --duration or Ctrl-C (exit status 0; 2 for a bad flag).",
    )
    p.add_argument(
        "--symbols",
        nargs="+",
        default=list(DEFAULT_SYMBOLS),
        metavar="SYMBOL",
        help=f"the books to keep (default {' '.join(DEFAULT_SYMBOLS)}; at most {MAX_SYMBOLS})",
    )
    p.add_argument(
        "--duration", metavar="S", help="stop after S seconds (default: run until Ctrl-C)"
    )
    p.add_argument(
        "--depth",
        default="1",
        metavar="N",
        help=f"also show the best N levels of each book (1..{MAX_DEPTH}; default 1: top only)",
    )
    p.add_argument(
        "--json", action="store_true", help="no live screen; the summary as one JSON object"
    )
    p.set_defaults(func=cmd_demo)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"--duration: {text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"--duration must be a positive number of seconds, not {text}")
    return value


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"--depth: {text!r} is not a whole number") from None
    if not 1 <= value <= MAX_DEPTH:
        raise ConfigurationError(f"--depth must be in 1..{MAX_DEPTH}, not {value}")
    return value


def _symbols(values: list[str]) -> list[str]:
    symbols = symbols_from_args(values)
    if not symbols:
        raise ConfigurationError("--symbols: name at least one symbol")
    if len(symbols) > MAX_SYMBOLS:
        raise ConfigurationError(f"--symbols: at most {MAX_SYMBOLS} symbols, not {len(symbols)}")
    listed = {
        entry["symbol"]
        for entry in load_exchange_info()["symbols"]
        if entry.get("status", "TRADING") == "TRADING"
    }
    unknown = [s for s in symbols if s not in listed]
    if unknown:
        raise ConfigurationError(
            f"--symbols: the local exchange does not list {', '.join(unknown)} "
            "(spot symbols such as BTCUSDT ETHUSDT BNBUSDT)"
        )
    return symbols


def audit_interval(duration: float | None) -> float:
    """Seconds between audits of a book: several audits per book even in a short run."""
    return 3.0 if duration is None else min(3.0, max(0.5, duration / 8))


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        return _cmd_demo(args)
    except KeyboardInterrupt:  # a Ctrl-C before the event loop took the signals: nothing ran
        return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        symbols = _symbols(args.symbols)
        duration = _duration(args.duration)
        depth = _depth(args.depth)
    except ConfigurationError as exc:
        error_line(PROG, exc)
        return 2
    # The screen (or the summary) says what the library's warnings would: keep them from
    # Python's last-resort stderr handler, which would tear the live screen. A handler the
    # user configured on the root logger still gets them.
    logging.getLogger("streamer").addHandler(logging.NullHandler())
    summary, code = run(demo_main(symbols, duration, depth, args.json))
    if summary is None:
        if code == 0:
            print(f"{PROG}: stopped before the books synced", file=sys.stderr)
        return code
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
        sys.stdout.flush()
    else:
        Console().print(summary_table(summary))
    return code


async def demo_main(
    symbols: list[str], duration: float | None, depth: int, as_json: bool
) -> tuple[dict[str, Any] | None, int]:
    """Run the demo; its summary (None if stopped during start-up) and exit status."""
    began = time.monotonic()
    ends_at = None if duration is None else began + duration
    result: dict[str, Any] = {}
    # Until run_session takes the signals over: a Ctrl-C while the exchange starts (asyncio's
    # own handler would cancel whatever is being awaited) only says to stop once it is up.
    loop = asyncio.get_running_loop()
    early = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, early.set)
    async with FakeExchange(symbols=symbols, rate=RATE, seed=SEED) as ex:
        keys = await ex.create_account()
        if early.is_set():
            return None, 0
        streamer = Streamer(
            ex.endpoints,
            symbols=symbols,
            audit_interval=audit_interval(duration),
            credentials=Credentials(keys["apiKey"], keys["secretKey"]),
        )

        async def session(s: Streamer, stop: asyncio.Event) -> None:
            if as_json:  # no screen: say on stderr that it runs, and how to stop it
                until = f"for {duration:g} s" if duration is not None else "until Ctrl-C"
                print(f"{PROG}: running {until} on {ex.endpoints.rest}", file=sys.stderr,
                      flush=True)  # fmt: skip
            demo = Demo(ex, s, keys["apiKey"], symbols, ends_at=ends_at,
                        audit_interval=audit_interval(duration))  # fmt: skip
            if as_json:
                await demo.run(stop)
            else:
                await _live(demo, stop, depth)
            result.update(await demo.finish())

        left = None if ends_at is None else max(0.1, ends_at - time.monotonic())
        code = await run_session(PROG, streamer, session, left)
    return (result or None), code


async def _live(demo: Demo, stop: asyncio.Event, depth: int) -> None:
    """The run, with the screen redrawn from the event loop (never from rich's thread: it
    would read the books while the reader changes them)."""
    console = Console()
    if not console.is_terminal:  # a pipe or a file: only the last screen is written
        console = Console(width=max(console.width, 160))
    rates = Rates()
    running = asyncio.create_task(demo.run(stop))
    try:
        with Live(screen(demo, rates, depth), console=console, auto_refresh=False) as live:
            while not running.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(running), 1 / TABLE_REFRESH)
                live.update(screen(demo, rates, depth), refresh=True)
    finally:
        if not running.done():
            running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
