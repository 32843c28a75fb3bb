"""A deliberately simple reference order book, to check the real core against.

No buffering logic, no tokens, no optimisation: a dict of exact Decimal prices to Decimal
quantities, built from a snapshot and every later diff applied in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

Side = dict[Decimal, Decimal]


def apply(side: Side, levels: Iterable[Sequence[str]]) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            side.pop(Decimal(price), None)
        else:
            side[Decimal(price)] = Decimal(qty)


def load(levels: Iterable[Sequence[str]]) -> Side:
    side: Side = {}
    apply(side, levels)
    return side


def replay_file(path: Path, futures: bool) -> dict[str, tuple[int, Side, Side]]:
    """Final (last id, bids, asks) per symbol: snapshot, then every diff that ends after it."""
    diffs: dict[str, list[dict[str, object]]] = {}
    snapshots: dict[str, dict[str, object]] = {}
    lines = path.read_text().splitlines()[1:]
    for line in lines:
        record = json.loads(line)
        if record["kind"] == "rest":
            symbol = parse_qs(urlsplit(record["url"]).query)["symbol"][0]
            snapshots.setdefault(symbol, json.loads(record["data"]))
        else:
            msg = json.loads(record["data"])
            data = msg.get("data", msg)
            if data.get("e") == "depthUpdate":
                diffs.setdefault(data["s"], []).append(data)
    out = {}
    for symbol, snapshot in snapshots.items():
        last = int(snapshot["lastUpdateId"])  # type: ignore[call-overload]
        bids = load(snapshot["bids"])  # type: ignore[arg-type]
        asks = load(snapshot["asks"])  # type: ignore[arg-type]
        for d in diffs.get(symbol, []):
            u = int(d["u"])  # type: ignore[call-overload]
            if u > last or (futures and u == last):
                apply(bids, d["b"])  # type: ignore[arg-type]
                apply(asks, d["a"])  # type: ignore[arg-type]
                last = u
        out[symbol] = (last, bids, asks)
    return out
