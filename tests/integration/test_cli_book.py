"""``streamer book``: live books from a local exchange subprocess, as JSON lines and as a table,
stopped by ``--seconds``, SIGINT or SIGTERM; errors are one line and status 2."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
from decimal import Decimal
from typing import Any

import pytest

from streamer import cli
from tests.integration.procs import (
    closed_port,
    env,
    exchange_process,
    finish,
    lines_until,
    streamer,
)

SYMBOLS = ["BTCUSDT", "ETHBTC"]


def parse(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all(isinstance(line, dict) and "type" in line for line in lines)
    return lines


def check_levels(levels: Any, descending: bool, depth: int = 10) -> None:
    """Levels are [price, qty] pairs of decimal strings, best first, at most ``depth``."""
    assert isinstance(levels, list) and 0 < len(levels) <= depth
    for level in levels:
        assert isinstance(level, list) and len(level) == 2
        assert all(isinstance(x, str) and Decimal(x) > 0 for x in level)
    prices = [Decimal(p) for p, _ in levels]
    assert prices == sorted(prices, reverse=descending) and len(set(prices)) == len(prices)


def last_books(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["symbol"]: line for line in lines if line["type"] == "book"}


@pytest.mark.parametrize("venue", ["spot", "usdm"])
async def test_json_lines_for_each_symbol_until_seconds_pass(venue: str) -> None:
    """`book --json --seconds` writes typed lines, book lines per symbol with exact string
    levels, ends synced, and exits 0 by itself."""
    async with exchange_process("--venue", venue, "--symbols", *SYMBOLS) as info:
        proc = await streamer(
            "book", "--json", "--seconds", "3", "--venue", venue, "--local", info["rest"],
            *SYMBOLS,
        )  # fmt: skip
        code, out, err = await finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    lines = parse(out)
    assert {line["type"] for line in lines} <= {"book", "resync", "drift", "audit"}
    books = [line for line in lines if line["type"] == "book"]
    assert {line["symbol"] for line in books} == set(SYMBOLS)
    for line in books:
        assert set(line) == {"type", "symbol", "synced", "last_update_id", "bids", "asks"}
    final = last_books(lines)
    for symbol in SYMBOLS:
        book = final[symbol]
        assert book["synced"] is True and isinstance(book["last_update_id"], int)
        check_levels(book["bids"], descending=True)
        check_levels(book["asks"], descending=False)
        assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
        ids = [b["last_update_id"] for b in books if b["symbol"] == symbol and b["synced"]]
        assert ids == sorted(ids)  # a book line is written when the book moved on


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_stops_it_cleanly_with_the_final_books(sig: signal.Signals) -> None:
    """SIGINT or SIGTERM exits 0 without a traceback, after one final book line per symbol."""
    async with exchange_process("--symbols", *SYMBOLS) as info:
        proc = await streamer("book", "--json", "--local", info["rest"], *SYMBOLS)
        assert proc.stdout is not None
        seen: list[str] = []

        def both_synced(seen: list[str]) -> bool:
            books = [json.loads(s) for s in seen]
            return {b["symbol"] for b in books if b["type"] == "book" and b["synced"]} == set(
                SYMBOLS
            )

        await lines_until(proc.stdout, both_synced, seen)
        proc.send_signal(sig)
        code, out, err = await finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    tail = parse(out)[-2:]
    assert [line["type"] for line in tail] == ["book", "book"]
    assert [line["symbol"] for line in tail] == SYMBOLS
    assert all(line["synced"] for line in tail)


async def test_a_signal_during_start_up_exits_cleanly() -> None:
    """Ctrl-C while the first request is still unanswered exits 0 at once, no traceback."""
    import socket

    loop = asyncio.get_running_loop()
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.setblocking(False)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = await streamer("book", "--json", "--local", url, "BTCUSDT")
        conn, _ = await asyncio.wait_for(loop.sock_accept(silent), 60)  # it is starting up
        with conn:
            proc.send_signal(signal.SIGINT)
            code, out, err = await finish(proc)
    assert code == 0, err
    assert out == "" and "Traceback" not in err


async def test_unknown_symbol_is_one_line_and_status_2() -> None:
    """A symbol the venue does not list: one line on stderr naming it, status 2, no output."""
    async with exchange_process("--symbols", *SYMBOLS) as info:
        proc = await streamer(
            "book", "--json", "--seconds", "30", "--local", info["rest"], "BTCUSDT", "NOSUCHCOIN"
        )
        code, out, err = await finish(proc)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and "NOSUCHCOIN" in err, err
    assert err.startswith("streamer book: ")


async def test_refused_connection_is_one_line_and_status_3() -> None:
    """Nothing listening at --local: one line on stderr, status 3 (could not connect), no
    traceback."""
    url = f"http://127.0.0.1:{closed_port()}"
    proc = await streamer("book", "--seconds", "30", "--local", url, "BTCUSDT")
    code, _out, err = await finish(proc)
    assert code == 3
    assert len(err.splitlines()) == 1 and "cannot connect" in err, err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--local", "ftp://127.0.0.1:1"], "http"),
        (["--testnet", "--venue", "usdm"], "testnet"),
        (["--depth", "0", "--local", "http://127.0.0.1:1"], "--depth"),
    ],
)
def test_bad_settings_are_one_line_and_status_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad URL, a testnet the venue lacks or a bad depth: one line, status 2, no I/O."""
    assert cli.main(["book", *args, "BTCUSDT"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err, err


async def test_the_table_under_a_terminal_shows_each_symbol_and_prices() -> None:
    """For a person: under a pseudo-terminal the redrawn table names each symbol and shows
    its best prices as the exchange's exact strings."""
    async with exchange_process("--symbols", *SYMBOLS) as info:
        truth_tick = await _a_price(info["rest"], "ETHBTC")
        leader, follower = pty.openpty()
        try:
            proc = await streamer(
                "book", "--seconds", "3", "--local", info["rest"], *SYMBOLS,
                stdout=follower, env=env(COLUMNS="160", LINES="20", TERM="xterm-256color"),
            )  # fmt: skip
            os.close(follower)
            screen = await asyncio.wait_for(asyncio.to_thread(_read_all, leader), 60)
            code, _out, err = await finish(proc)
        finally:
            os.close(leader)
    assert code == 0, err
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)  # drop colours and cursor moves
    for symbol in SYMBOLS:
        assert symbol in text
    # the table shows prices as sent: the decimals of the exchange's own strings
    assert re.search(rf"\b\d+\.\d{{{truth_tick}}}\b", text), text[-2000:]
    assert "synced" in text and "connections 1" in text


async def _a_price(rest: str, symbol: str) -> int:
    """How many decimals the exchange writes in ``symbol``'s prices."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{rest}/api/v3/depth", params={"symbol": symbol, "limit": "5"}) as r,
    ):
        body = await r.json()
    return len(body["bids"][0][0].split(".")[1])


def _read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
