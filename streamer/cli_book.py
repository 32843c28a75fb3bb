"""``streamer book SYMBOL...``: watch live books, as a refreshing table or as JSON lines.

For a person (the default): a table drawn with ``rich`` and redrawn 8 times a second from the
event loop (never from a thread, so it reads the books between two messages): per symbol the
best bid and ask with their quantities, the spread, the update id, diffs per second, the sync
status (synced / syncing / resyncing and the last reset reason) and the audits passed / drifts
found; under it connections, frames, malformed frames and snapshot weight used.

For tools (``--json``): one JSON object per line on stdout, each with a ``"type"``:

- ``book``: ``symbol``, ``synced``, ``last_update_id``, ``bids``, ``asks`` (``[[price, qty], ...]``,
  the exact strings Binance sent, best first, ``--depth`` levels); written when the book changed,
  at most every 100 ms per symbol, and once more per symbol on exit;
- ``resync``: ``symbol``, ``reason`` (``gap``, ``drift``, ...), ``detail``;
- ``drift``: ``symbol``, ``snapshot_id``, ``levels``: ``[{"side", "price", "ours", "theirs"}]``
  (``null``: the level is absent on that side);
- ``audit``: ``symbol``, ``passed`` (true: the book equalled the snapshot; false: drift).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamer.aio.runner import run
from streamer.aio.streamer import Streamer
from streamer.cli_live import (
    add_endpoint_args,
    check_depth,
    endpoints_from_args,
    error_line,
    positive_float,
    run_session,
    symbols_from_args,
)
from streamer.cli_metrics import add_metrics_args, with_metrics
from streamer.errors import ConfigurationError, StreamerError
from streamer.logs import add_logging_args, setup_logging
from streamer.models import Level, StreamerEvent
from streamer.sansio.book_sync import AuditPassed, DriftDetected, Reset

__all__ = ["BookRow", "add_book_parser", "event_lines", "render_table", "sync_progress"]

PROG = "streamer book"
JSON_INTERVAL = 0.1  # seconds: the most often a symbol's book line is written
TABLE_REFRESH = 8  # redraws per second
RATE_WINDOW = 2.0  # seconds of history behind "msgs/s"


def add_book_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer book``."""
    p = subparsers.add_parser(
        "book",
        help="watch live order books (a table, or JSON lines with --json)",
        description="Keep the books of SYMBOLs live and show them until --seconds or Ctrl-C "
        "(exit status 0; 2 for an unknown symbol or an endpoint that cannot be reached).",
    )
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHBTC")
    add_endpoint_args(p)
    p.add_argument(
        "--depth",
        type=int,
        default=10,
        help="levels per side in --json book lines (1 to 5000; default 10)",
    )
    p.add_argument(
        "--audit-interval",
        type=positive_float,
        default=60.0,
        metavar="S",
        help="seconds between drift audits of each book (jittered; default 60)",
    )
    p.add_argument("--seconds", type=positive_float, metavar="S", help="exit after S seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.add_argument(
        "--sbe",
        action="store_true",
        help="diffs from the binary SBE streams (spot; every 20 ms); the handshake sends the "
        "Ed25519 API key from $BINANCE_API_KEY",
    )
    add_metrics_args(p)
    add_logging_args(p)
    p.set_defaults(func=cmd_book)


def cmd_book(args: argparse.Namespace) -> int:
    setup_logging(args)
    symbols = symbols_from_args(args.symbols)
    try:
        check_depth(args.depth)
        streamer = Streamer(
            endpoints_from_args(args),
            symbols=symbols,
            audit_interval=args.audit_interval,
            market_data="sbe" if args.sbe else "json",
            api_key=sbe_api_key() if args.sbe else None,
        )
    except StreamerError as exc:
        error_line(PROG, exc)
        return 2
    if args.json:

        async def session(s: Streamer, stop: asyncio.Event) -> None:
            await json_session(s, stop, symbols, args.depth, sys.stdout.buffer)

    else:

        async def session(s: Streamer, stop: asyncio.Event) -> None:
            await table_session(s, stop, symbols)

    try:
        metered = with_metrics(PROG, args, session)
        return run(run_session(PROG, streamer, metered, args.seconds, symbols))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's own final
        # flush of stdout from failing again (the recipe of the `signal` module's docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def sbe_api_key() -> str:
    """The Ed25519 API key for the SBE handshake (no signature is made, so no private key)."""
    key = os.environ.get("BINANCE_API_KEY", "")
    if not key:
        raise ConfigurationError("--sbe needs an Ed25519 API key in $BINANCE_API_KEY")
    return key


# -- JSON lines ------------------------------------------------------------------------------


def book_line(s: Streamer, symbol: str, depth: int) -> dict[str, Any]:
    view = s.view(symbol, depth)
    if not view.synced:
        return {"type": "book", "symbol": symbol, "synced": False, "last_update_id": None,
                "bids": [], "asks": []}  # fmt: skip
    return {
        "type": "book",
        "symbol": symbol,
        "synced": True,
        "last_update_id": view.last_update_id,
        "bids": view.bids(),
        "asks": view.asks(),
    }


def event_lines(event: StreamerEvent) -> list[dict[str, Any]]:
    """The JSON lines of one Streamer event (none for the events the book lines already say)."""
    if isinstance(event, Reset):
        return [{"type": "resync", "symbol": event.symbol, "reason": event.reason.value,
                 "detail": event.detail}]  # fmt: skip
    if isinstance(event, DriftDetected):
        levels = [
            {"side": m.side, "price": m.price, "ours": m.actual, "theirs": m.expected}
            for m in event.mismatches
        ]
        return [
            {"type": "drift", "symbol": event.symbol, "snapshot_id": event.snapshot_id,
             "levels": levels},
            {"type": "audit", "symbol": event.symbol, "passed": False},
        ]  # fmt: skip
    if isinstance(event, AuditPassed):
        return [{"type": "audit", "symbol": event.symbol, "passed": True}]
    return []


async def json_session(
    s: Streamer, stop: asyncio.Event, symbols: list[str], depth: int, out: IO[bytes]
) -> None:
    """Write book lines when a book changed (at most every 100 ms each) and event lines as
    they come, until ``stop``; then the events still queued and every book once more."""
    events = s.events()

    def write(lines: list[dict[str, Any]]) -> None:
        if lines:
            out.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
            out.flush()

    async def pump() -> None:
        async for event in events:
            write(event_lines(event))

    pumping = asyncio.create_task(pump())
    written: dict[str, tuple[bool, int | None]] = {}
    try:
        while not stop.is_set():
            due = []
            for symbol in symbols:
                line = book_line(s, symbol, depth)
                key = (line["synced"], line["last_update_id"])
                if written.get(symbol) != key:
                    written[symbol] = key
                    due.append(line)
            write(due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), JSON_INTERVAL)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        write([line for event in events.take_all() for line in event_lines(event)])
        write([book_line(s, symbol, depth) for symbol in symbols])


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookRow:
    """One symbol's line of the table."""

    symbol: str
    status: str  # "synced", "syncing", "resyncing (gap)", "stale (connection down)"
    bid: Level | None
    ask: Level | None
    update_id: int | None
    rate: float  # diffs applied per second, over the last RATE_WINDOW seconds
    audits_passed: int
    drifts: int

    @property
    def spread(self) -> str:
        if self.bid is None or self.ask is None:
            return ""
        try:  # exact: both are decimal strings, and Decimal subtraction of them is exact
            return str(Decimal(self.ask[0]) - Decimal(self.bid[0]))
        except InvalidOperation:  # pragma: no cover - the core only accepts decimal strings
            return ""


class Rates:
    """Diffs per second per symbol, from the applied counters sampled at each redraw."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def sample(self, symbol: str, applied: int) -> float:
        now = self._clock()
        samples = self._samples.setdefault(symbol, deque())
        samples.append((now, applied))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        then, before = samples[0]
        return (applied - before) / (now - then) if now > then and applied >= before else 0.0


def _status(book: dict[str, Any], last_reset: str | None) -> str:
    if book["state"] == "synced":
        return "synced" if book["live"] else "stale (connection down)"
    if book["resyncs"]:
        return f"resyncing ({last_reset})" if last_reset else "resyncing"
    return "syncing"


def book_rows(
    s: Streamer, symbols: list[str], rates: Rates, resets: dict[str, str]
) -> list[BookRow]:
    stats = s.stats()["books"]
    rows = []
    for symbol in symbols:
        book = stats.get(symbol)
        if book is None:
            continue
        view = s.view(symbol)
        live = view.synced
        rows.append(
            BookRow(
                symbol=symbol,
                status=_status(book, resets.get(symbol)),
                bid=view.best_bid if live else None,
                ask=view.best_ask if live else None,
                update_id=view.last_update_id if live else None,
                rate=rates.sample(symbol, book["applied"]),
                audits_passed=book["audits_passed"],
                drifts=book["drifts"],
            )
        )
    return rows


_STYLES = {"synced": "green", "syncing": "yellow"}


def render_table(rows: list[BookRow], footer: str, title: str = "") -> RenderableType:
    """The table of ``rows`` with ``footer`` under it (a pure function of its inputs)."""
    table = Table(title=title or None, title_justify="left", expand=False)
    table.add_column("symbol", style="bold")
    for name in ("bid qty", "bid", "ask", "ask qty", "spread", "update id", "msgs/s"):
        table.add_column(name, justify="right")
    table.add_column("status")
    table.add_column("audits ok/drift", justify="right")
    for row in rows:
        bid_p, bid_q = row.bid or ("", "")
        ask_p, ask_q = row.ask or ("", "")
        style = _STYLES.get(row.status, "red")
        table.add_row(
            row.symbol,
            bid_q,
            Text(bid_p, style="green"),
            Text(ask_p, style="red"),
            ask_q,
            row.spread,
            "" if row.update_id is None else str(row.update_id),
            f"{row.rate:.1f}",
            Text(row.status, style=style),
            f"{row.audits_passed}/{row.drifts}",
        )
    return Group(table, Text(footer, style="dim"))


def sync_progress(books: dict[str, dict[str, Any]]) -> str:
    """``"syncing 2/3 books…  "`` while some book is not synced (the start, a resync), else
    nothing: the footer's lead while the table's rows are still filling in."""
    synced = sum(1 for book in books.values() if book["state"] == "synced")
    return f"syncing {synced}/{len(books)} books…  " if synced < len(books) else ""


def footer_text(s: Streamer) -> str:
    stats = s.stats()
    return (
        f"{sync_progress(stats['books'])}connections {stats['connections']}  "
        f"frames {stats['frames']}  "
        f"malformed {stats['malformed']}  snapshot weight used {stats['snapshot_weight']}  "
        "(Ctrl-C to quit)"
    )


async def table_session(
    s: Streamer, stop: asyncio.Event, symbols: list[str], console: Console | None = None
) -> None:
    """Redraw the table until ``stop``; the last drawing stays on the screen."""
    events = s.events()
    resets: dict[str, str] = {}

    async def pump() -> None:
        async for event in events:
            if isinstance(event, Reset):
                resets[event.symbol] = event.reason.value

    rates = Rates()
    title = f"streamer book: {s.endpoints.venue} at {s.endpoints.rest}"
    if s.market_data == "sbe":
        title += " (SBE)"

    def draw() -> RenderableType:
        return render_table(book_rows(s, symbols, rates, resets), footer_text(s), title)

    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: only the last table is written
            console = Console(width=max(console.width, 150))
    pumping = asyncio.create_task(pump())
    try:
        # auto_refresh=False: rich's refresh thread would read the books while the loop's
        # reader changes them; every redraw happens here, between two messages.
        with Live(draw(), console=console, auto_refresh=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1 / TABLE_REFRESH)
                live.update(draw(), refresh=True)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
