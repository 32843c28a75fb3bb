"""USD-M and COIN-M futures books through the same ``Streamer`` machinery, with the futures
rule (``pu``) against the local exchange's futures venues (non-contiguous update ids)."""

from __future__ import annotations

import asyncio

import pytest

from streamer import Reset, ResetReason, Streamer
from streamer.testing import FakeExchange
from tests.integration.live import EventLog, T, equal_to_truth, synced

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.mark.parametrize("venue", ["usdm", "coinm"])
async def test_futures_books_sync_and_equal_the_true_books(venue: str) -> None:
    """Futures books sync on the venue's routed stream URL and equal the true books."""
    async with (
        FakeExchange(symbols=SYMBOLS, seed=9, rate=300, venue=venue) as ex,
        Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=0.5) as s,
    ):
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        async with asyncio.timeout(T):  # some diffs applied by the pu rule, not only loaded
            async for _ in s.book("BTCUSDT"):
                if s.books.books["BTCUSDT"].counters.applied > 3:
                    break
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not log.of(Reset)


async def test_futures_dropped_diff_breaks_pu_and_resyncs_that_symbol_only() -> None:
    """A dropped futures diff breaks the pu chain: that symbol alone resyncs, exactly."""
    async with (
        FakeExchange(symbols=SYMBOLS, seed=9, rate=300, venue="usdm") as ex,
        Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s,
    ):
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.drop_diffs("ETHUSDT")
        reset = await log.wait(Reset)
        assert (reset.symbol, reset.reason) == ("ETHUSDT", ResetReason.GAP)
        await synced(s, "ETHUSDT")
        await equal_to_truth(s, ex, *SYMBOLS)
        assert {r.symbol for r in log.of(Reset)} == {"ETHUSDT"}
