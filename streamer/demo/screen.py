"""What the demo shows: the books table of ``streamer book``, the event lines, the balances,
the ladders (``--depth``), and the summary at the end, drawn with ``rich``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from streamer.cli_book import Rates, book_rows, render_table
from streamer.demo.run import Demo

__all__ = ["screen", "summary_table"]

_KIND_STYLES = {
    "fault": "bold magenta",
    "heal": "green",
    "order": "cyan",
    "fill": "bold cyan",
    "audit": "green",
    "info": "dim",
    "bad": "red",
}


def _events(demo: Demo) -> RenderableType:
    table = Table(title="what happens", title_justify="left", show_header=False, box=None)
    table.add_column("t", justify="right", style="dim")
    table.add_column("event")
    for line in demo.lines:
        table.add_row(f"+{line.at:5.1f}s", Text(line.text, style=_KIND_STYLES.get(line.kind, "")))
    return table


def _balances(demo: Demo) -> RenderableType:
    table = Table(title="balances", title_justify="left")
    table.add_column("asset")
    table.add_column("free", justify="right")
    table.add_column("locked", justify="right")
    for asset, balance in sorted(demo.s.balances().items()):
        table.add_row(asset, _plain(balance.free), _plain(balance.locked))
    return table


def _ladders(demo: Demo, depth: int) -> RenderableType:
    tables = []
    for symbol in demo.symbols:
        table = Table(title=symbol, title_justify="left")
        for name in ("bid qty", "bid", "ask", "ask qty"):
            table.add_column(name, justify="right")
        view = demo.s.view(symbol)
        if view.synced:
            bids, asks = view.bids(depth), view.asks(depth)
            for i in range(max(len(bids), len(asks))):
                bp, bq = bids[i] if i < len(bids) else ("", "")
                ap, aq = asks[i] if i < len(asks) else ("", "")
                table.add_row(bq, Text(bp, style="green"), Text(ap, style="red"), aq)
        tables.append(table)
    return Columns(tables)


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}" if value else "0"


def screen(demo: Demo, rates: Rates, depth: int) -> RenderableType:
    """The whole screen now (reads the books: call it from the event loop only)."""
    stats = demo.s.stats()
    orders = demo.s.orders()
    open_orders = sum(1 for o in orders if not o.terminal)
    footer = (
        f"connections {stats['connections']}  reconnects {stats['reconnects']}  "
        f"frames {stats['frames']}  snapshot weight used {stats['snapshot_weight']}  "
        f"orders {len(orders)} ({open_orders} open)  fills {len(demo.fill_ids)}  "
        f"faults {sum(demo.faults.values())}  t+{demo.now():.0f}s  (Ctrl-C to quit)"
    )
    title = f"streamer demo: live books and orders on the local exchange at {demo.s.endpoints.rest}"
    books = render_table(book_rows(demo.s, demo.symbols, rates, demo.last_reset), footer, title)
    parts: list[RenderableType] = [books]
    if depth > 1:
        parts.append(_ladders(demo, depth))
    parts.append(Columns([_events(demo), _balances(demo)]))
    return Group(*parts)


def summary_table(summary: dict[str, Any]) -> RenderableType:
    """The summary as a two-column table, for a person."""
    table = Table(title="streamer demo: summary", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        bad = key in ("violations", "duplicate_orders", "order_mismatches") and value
        table.add_row(key, Text(text, style="bold red" if bad else ""))
    return table
