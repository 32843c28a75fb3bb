"""Live books from Binance's binary SBE streams (protocol §7.6) through the same ``Streamer``:
the handshake's Ed25519 key, binary diffs into the same sync machines, JSON control frames."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest

from streamer import ConfigurationError, Credentials, Reset, ResetReason, Streamer
from streamer.models import ConnectionRotated
from streamer.testing import FakeExchange
from streamer.testing.exchange.faults import Fault, FaultKind
from tests.helpers import ed25519_pems
from tests.integration.live import EventLog, T, equal_to_truth, synced

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[FakeExchange, Credentials]]:
    private, public = ed25519_pems()
    async with FakeExchange(symbols=SYMBOLS, seed=4, rate=300) as ex:
        keys = await ex.create_account(ed25519_public_key_pem=public)
        yield ex, Credentials(keys["apiKey"], private, "ED25519")


async def test_sbe_books_sync_and_equal_the_true_books(
    exchange: tuple[FakeExchange, Credentials],
) -> None:
    """SBE diffs (every 20 ms) plus JSON REST snapshots make books equal to the true books,
    audits included."""
    ex, credentials = exchange
    async with Streamer(
        ex.endpoints,
        symbols=SYMBOLS,
        market_data="sbe",
        credentials=credentials,
        audit_interval=0.3,
    ) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        async with asyncio.timeout(T):  # SBE diffs applied, not only a snapshot loaded
            async for update in s.book("BTCUSDT"):
                # the changes of an SBE diff reach consumers as exact strings, like JSON's
                changes = [*update.bids, *update.asks]
                assert all(type(p) is str and type(q) is str for p, q in changes)
                if s.books.books["BTCUSDT"].counters.applied > 5:
                    break
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not log.of(Reset)


async def test_sbe_dropped_diff_resyncs_that_symbol_and_shutdown_rotates(
    exchange: tuple[FakeExchange, Credentials],
) -> None:
    """A diff dropped on the SBE stream resyncs that symbol alone; serverShutdown (JSON, on
    the SBE connection) rotates it without a reset."""
    ex, credentials = exchange
    async with Streamer(
        ex.endpoints,
        symbols=SYMBOLS,
        market_data="sbe",
        credentials=credentials,
        audit_interval=None,
    ) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.add(Fault(FaultKind.DROP_DIFF, symbol="ETHUSDT", channel="sbe"))
        reset = await log.wait(Reset)
        assert (reset.symbol, reset.reason) == ("ETHUSDT", ResetReason.GAP)
        await synced(s, "ETHUSDT")
        log.seen.clear()
        ex.faults.server_shutdown(delay_ms=3000, channel="sbe")
        await log.wait(ConnectionRotated)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not log.of(Reset)


async def test_sbe_needs_ed25519_credentials_and_a_venue_that_has_it() -> None:
    """Asking for SBE without Ed25519 credentials, or on futures, is a ConfigurationError."""
    async with FakeExchange(symbols=SYMBOLS, rate=0) as ex:
        with pytest.raises(ConfigurationError):
            Streamer(ex.endpoints, market_data="sbe")
        with pytest.raises(ConfigurationError):
            Streamer(ex.endpoints, market_data="sbe", credentials=Credentials("k", "s"))
        with pytest.raises(ConfigurationError):
            Streamer(ex.endpoints, market_data="xml")
    async with FakeExchange(symbols=SYMBOLS, rate=0, venue="usdm") as ex:
        with pytest.raises(ConfigurationError):
            Streamer(ex.endpoints, market_data="sbe", credentials=Credentials("k", "s", "ED25519"))


async def test_streamer_book_sbe_shows_live_books_from_the_sbe_stream(
    exchange: tuple[FakeExchange, Credentials],
) -> None:
    """`streamer book --sbe --json` with the Ed25519 API key in the environment prints synced
    books built from SBE diffs, and exits 0."""
    ex, credentials = exchange
    env = dict(os.environ, BINANCE_API_KEY=credentials.api_key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer", "book", "--sbe", "--json", "--seconds", "3",
        "--local", ex.endpoints.rest, *SYMBOLS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode == 0, err.decode()
    books = [line for line in map(json.loads, out.splitlines()) if line["type"] == "book"]
    last = {line["symbol"]: line for line in books}
    assert set(last) == set(SYMBOLS) and all(line["synced"] for line in last.values())


async def test_streamer_book_sbe_without_a_key_is_one_clear_line() -> None:
    """--sbe without $BINANCE_API_KEY: one line on stderr, exit status 2."""
    env = {k: v for k, v in os.environ.items() if k != "BINANCE_API_KEY"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer", "book", "--sbe", "--local", "http://127.0.0.1:9",
        "BTCUSDT", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode == 2 and len(err.decode().strip().splitlines()) == 1
