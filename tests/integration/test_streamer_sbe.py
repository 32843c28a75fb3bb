"""Live books from Binance's binary SBE streams (protocol §7.6) through the same ``Streamer``:
the handshake's Ed25519 key, binary diffs into the same sync machines, JSON control frames."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streamer import ConfigurationError, Credentials, Reset, ResetReason, Streamer
from streamer.models import ConnectionRotated
from streamer.testing import FakeExchange
from streamer.testing.exchange.faults import Fault, FaultKind
from tests.helpers import ed25519_pems
from tests.integration.live import EventLog, equal_to_truth, synced

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
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not log.of(Reset)
        assert s.stats()["books"]["BTCUSDT"]["applied"] > 0


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
