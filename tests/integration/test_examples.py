"""Every script in examples/ runs as a user would run it (a subprocess) against the local
exchange (``streamer exchange`` in another process, its URL and demo keys passed as ``--local``
and in the environment), and does what its docstring says."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import ROOT
from tests.integration.procs import PIPE, env, exchange_process, finish

EXAMPLES = ROOT / "examples"


async def example(
    name: str, *args: str, info: dict[str, Any] | None = None
) -> tuple[int, str, str]:
    """Run examples/NAME with ARGS (and the exchange's demo keys in the environment)."""
    keys = (
        {"BINANCE_API_KEY": info["api_key"], "BINANCE_API_SECRET": info["api_secret"]}
        if info
        else {}
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / name), *args, stdout=PIPE, stderr=PIPE, env=env(**keys)
    )
    return await finish(proc)


async def exchange_orders(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo account's orders as the exchange has them (its truth, over /_fake/)."""
    async with aiohttp.ClientSession() as http:
        url = f"{info['rest']}/_fake/orders"
        async with http.get(url, params={"apiKey": info["api_key"]}) as response:
            orders: list[dict[str, Any]] = await response.json()
    return orders


def test_every_example_has_a_test() -> None:
    """No script in examples/ goes untested here."""
    tested = {"live_book.py", "orders.py", "bot_under_faults.py", "record_and_replay.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


async def test_live_book_prints_updates() -> None:
    """live_book.py prints N updates, the first a reload, ids rising, then its summary."""
    async with exchange_process("--symbols", "BTCUSDT") as info:
        code, out, err = await example("live_book.py", "BTCUSDT", "--local", info["rest"],
                                       "--updates", "5")  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 6 and lines[0].endswith("reloaded")
    ids = [int(line.split()[0]) for line in lines[:5]]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert lines[5] == f"5 updates of BTCUSDT; last update id {ids[-1]}"


async def test_orders_places_watches_and_cancels() -> None:
    """orders.py places one order, sees it NEW then CANCELED; the exchange agrees."""
    async with exchange_process("--symbols", "BTCUSDT") as info:
        code, out, err = await example("orders.py", "BTCUSDT", "--local", info["rest"], info=info)
        truth = await exchange_orders(info)
    assert code == 0, err
    assert "order CANCELED (was NEW" in out
    (order,) = truth
    assert order["status"] == "CANCELED"
    assert out.splitlines()[-1] == f"done: {order['clientOrderId']} CANCELED"


async def test_bot_under_faults_over_http() -> None:
    """bot_under_faults.py --local: the dropped diff resyncs the book, the timed-out order is
    resolved, and the exchange holds each of the bot's three orders exactly once."""
    async with exchange_process("--symbols", "BTCUSDT") as info:
        code, out, err = await example("bot_under_faults.py", "--local", info["rest"], info=info)
        truth = await exchange_orders(info)
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["resyncs"] >= 1 and summary["unknown_resolved"] == 1
    cids = [r["client_order_id"] for r in summary["rounds"]]
    assert sorted(o["clientOrderId"] for o in truth) == sorted(cids) and len(set(cids)) == 3
    assert all(r["final"] in ("NEW", "FILLED") for r in summary["rounds"])


async def test_bot_under_faults_in_process() -> None:
    """bot_under_faults.py alone runs its own exchange and the plugin's fault helper."""
    code, out, err = await example("bot_under_faults.py")
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["resyncs"] >= 1 and summary["unknown_resolved"] == 1
    assert summary["orders_tracked"] == 3


async def test_record_and_replay_rebuilds_the_live_books(tmp_path: Path) -> None:
    """record_and_replay.py records, replays the file, and finds the same books."""
    out_file = tmp_path / "session.jsonl"
    async with exchange_process("--symbols", "BTCUSDT", "ETHBTC") as info:
        code, out, err = await example(
            "record_and_replay.py", "BTCUSDT", "ETHBTC", "--local", info["rest"],
            "--seconds", "2", "--out", str(out_file),
        )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    for symbol, line in zip(["BTCUSDT", "ETHBTC"], lines, strict=False):
        assert line.startswith(f"{symbol}: live at ") and line.endswith("the same book")
        assert "live at None" not in line
    assert out_file.stat().st_size > 0
