"""A running ``Streamer`` keeps several live books exact against the local exchange, faults
included: the affected book resyncs or reports not-synced, the others are untouched, and after
recovery every book equals the true book (``/_fake/book``) at the same update id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streamer import (
    AuditPassed,
    BookNotReady,
    ConnectError,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRotated,
    DriftDetected,
    Endpoints,
    Malformed,
    Reset,
    ResetReason,
    SnapshotError,
    Streamer,
    StreamerClosed,
    Synced,
    UnknownSymbol,
)
from streamer.testing import FakeExchange
from tests.integration.live import EventLog, T, equal_to_truth, exact, synced

SYMBOLS = ["BTCUSDT", "ETHBTC", "ETHUSDT"]


@pytest.fixture
async def ex() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=SYMBOLS, seed=5, rate=300) as exchange:
        yield exchange


def resets(log: EventLog, symbol: str | None = None) -> list[Reset]:
    return [e for e in log.of(Reset) if symbol is None or e.symbol == symbol]


async def test_books_sync_and_equal_the_true_books(ex: FakeExchange) -> None:
    """Three symbols on one connection sync from live diffs and equal the true books."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)
        assert s.stats()["connections"] == 1


async def test_dropped_diff_resyncs_that_symbol_only(ex: FakeExchange) -> None:
    """A dropped diff is a gap: that book alone resets and resyncs; the others never reset."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.drop_diffs("ETHBTC")
        reset = await log.wait(Reset)
        assert (reset.symbol, reset.reason) == ("ETHBTC", ResetReason.GAP)
        await log.wait(Synced, lambda e: e.symbol == "ETHBTC" and log.seen.index(e) > 0)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert {r.symbol for r in resets(log)} == {"ETHBTC"}


async def test_duplicated_diffs_are_dropped_without_a_reset(ex: FakeExchange) -> None:
    """A diff sent twice is stale the second time: dropped and counted, no book resets."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        dropped = s.books.books["BTCUSDT"].counters.dropped
        ex.faults.duplicate_diffs("BTCUSDT", count=3)
        async with asyncio.timeout(T):
            async for _ in s.book("BTCUSDT"):
                if s.books.books["BTCUSDT"].counters.dropped >= dropped + 3:
                    break
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)


async def test_delayed_diff_resyncs_that_symbol_only(ex: FakeExchange) -> None:
    """A diff delivered after later ones leaves a gap when they arrive: that symbol resyncs;
    the late diff is then stale and dropped."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.delay_diffs("ETHUSDT", delay_ms=400)
        reset = await log.wait(Reset)
        assert (reset.symbol, reset.reason) == ("ETHUSDT", ResetReason.GAP)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert {r.symbol for r in resets(log)} == {"ETHUSDT"}


async def test_stale_snapshot_is_fetched_again(ex: FakeExchange) -> None:
    """A snapshot older than the buffered diffs cannot be bridged: it is fetched again, and
    the book syncs exactly."""
    ex.faults.stale_snapshot("BTCUSDT", behind=5)
    await asyncio.sleep(0.5)  # let the exchange record older books to serve
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        assert not ex.faults.pending()
        assert s.books.books["BTCUSDT"].counters.stale_snapshots >= 1
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)


async def test_corrupted_level_is_caught_by_a_scheduled_audit(ex: FakeExchange) -> None:
    """Drift (a level the stream got wrong) is found by the jittered audits, reported with
    the differing level, and that symbol alone resyncs to the true book."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=0.3, audit_limit=1000) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        await log.wait(AuditPassed, lambda e: e.symbol == "BTCUSDT")
        drift: DriftDetected | None = None
        for _ in range(5):  # a later diff may overwrite the corrupted level first: retry
            ex.faults.corrupt_level("BTCUSDT")
            try:
                drift = await asyncio.wait_for(log.wait(DriftDetected), 5)
                break
            except TimeoutError:
                continue
        assert drift is not None and drift.symbol == "BTCUSDT" and drift.mismatches
        reset = await log.wait(Reset)
        assert (reset.symbol, reset.reason) == ("BTCUSDT", ResetReason.DRIFT)
        await synced(s, "BTCUSDT")  # the market must run: a book resyncs from its next diff
        await equal_to_truth(s, ex, *SYMBOLS)
        assert {r.symbol for r in resets(log)} == {"BTCUSDT"}


@pytest.mark.parametrize(
    "payload",
    [
        None,  # the JSON cut in half
        '{"e":"depthUpdate","E":1,"s":"ETHBTC","U":"x","u":2,"b":[],"a":[]}',
        '{"e":"depthUpdate","E":1,"s":"ETHBTC","U":{U},"u":{u},"b":[["-1","2"]],"a":[]}',
        '{"e":"depthUpdate","E":1,"s":"ETHBTC","U":{U},"u":{u},"b":[],"a":[["1e5","2"]]}',
        '"' + "x" * (2 << 20) + '"',  # a 2 MiB frame
    ],
    ids=["truncated", "bad-U", "negative", "exponent", "huge"],
)
async def test_malformed_frame_is_counted_and_skipped(
    ex: FakeExchange, payload: str | None
) -> None:
    """A malformed frame is counted and reported, the reader lives on, no book is corrupted:
    the diff it replaced shows up as a gap and that symbol alone resyncs to the truth."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.malformed_diff("ETHBTC", payload=payload)
        bad = await log.wait(Malformed)
        assert bad.reason and len(bad.excerpt) <= 121
        assert s.stats()["malformed"] == 1
        reset = await log.wait(Reset)  # the next ETHBTC diff reveals the skipped one
        assert (reset.symbol, reset.reason) == ("ETHBTC", ResetReason.GAP)
        await synced(s, *SYMBOLS)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert {r.symbol for r in resets(log)} == {"ETHBTC"}
        assert s.stats()["reconnects"] == 0


async def test_reconnect_of_many_symbols_resyncs_inside_the_budget() -> None:
    """A dropped connection carrying many symbols never storms REST: resyncs are paced by the
    weight budget (the exchange never answers 429) and every book comes back exact."""
    symbols = ["BTCUSDT", "ETHUSDT", "ETHBTC", "BNBUSDT", "LTCUSDT", "XRPUSDT", "ADAUSDT"]
    # 200 weight per minute, half of it for snapshots: exchangeInfo (20) and two rounds of
    # seven 100-level snapshots (5 each, covering the 40-level books) fit; 429 past 200.
    async with (
        FakeExchange(symbols=symbols, seed=3, rate=400, weight_limit=200, levels=40) as ex,
        Streamer(ex.endpoints, audit_interval=None, snapshot_limit=100, weight_share=0.5) as s,
    ):
        log = EventLog(s.events())
        await s.subscribe(*symbols)
        assert s.stats()["weight_limit"] == 200  # read from exchangeInfo's rateLimits
        await synced(s, *symbols)
        ex.faults.disconnect()
        await log.wait(ConnectionOpened, lambda e: e.reconnect)
        await synced(s, *symbols)
        await equal_to_truth(s, ex, *symbols)
        assert not log.of(SnapshotError)  # no 429, no 418
        assert s.stats()["snapshot_weight"] <= 2 * 7 * 5


async def test_disconnect_reconnects_and_books_stay_exact(ex: FakeExchange) -> None:
    """A dropped connection marks its books not live, reconnects, and every book is live and
    exact again (resyncing only if its stream really skipped updates)."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.disconnect()
        await log.wait(ConnectionClosed)
        await log.wait(ConnectionOpened, lambda e: e.reconnect)
        await synced(s, *SYMBOLS)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert s.stats()["reconnects"] == 1


async def test_a_silent_connection_is_replaced_by_the_watchdog(ex: FakeExchange) -> None:
    """Nothing at all on a connection (no diff, no ping) for silence_timeout: it is dropped and
    replaced, and the books are exact again once the market moves."""
    async with Streamer(
        ex.endpoints, symbols=SYMBOLS, audit_interval=None, silence_timeout=0.5
    ) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        await ex.pause()  # no more diffs; the server pings only every 20 s
        closed = await log.wait(ConnectionClosed)
        assert "silent" in closed.reason
        await log.wait(ConnectionOpened, lambda e: e.reconnect)
        await ex.resume()
        await synced(s, *SYMBOLS)
        await equal_to_truth(s, ex, *SYMBOLS)


async def test_server_shutdown_rotates_without_a_reset(ex: FakeExchange) -> None:
    """serverShutdown: a new connection is made before the old one closes; no book resets."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        ex.faults.server_shutdown(delay_ms=3000)
        rotated = await log.wait(ConnectionRotated)
        assert rotated.reason == "serverShutdown"
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)
        assert not log.of(ConnectionClosed)


async def test_rotation_under_a_steady_market_loses_nothing(ex: FakeExchange) -> None:
    """With a shortened lifetime, connections rotate again and again under a steady market:
    no update is lost (no gap) and no book resets."""
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=None, lifetime=1.5) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        for _ in range(3):
            await log.wait(ConnectionRotated)
            assert not resets(log)
            log.seen.clear()
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)
        assert s.stats()["rotations"] >= 3


@pytest.mark.parametrize("status", [429, 418])
async def test_rate_limit_holds_every_request_until_retry_after(
    ex: FakeExchange, status: int
) -> None:
    """A 429/418 on a snapshot stops every REST request for Retry-After seconds; the audits
    then go on and every book stays exact."""
    retry_after = 2
    async with Streamer(ex.endpoints, symbols=SYMBOLS, audit_interval=0.2) as s:
        log = EventLog(s.events())
        await synced(s, *SYMBOLS)
        await log.wait(AuditPassed)
        ex.faults.rate_limit(status=status, retry_after=retry_after)
        error = await log.wait(SnapshotError)
        sent = s.stats()["snapshots_sent"]
        assert str(status) in error.error
        # Watching for something that must not happen takes a wait: nothing is sent during it.
        await asyncio.sleep(retry_after * 0.8)
        assert s.stats()["snapshots_sent"] == sent
        while s.stats()["snapshots_sent"] == sent:  # then audits resume
            log.seen.clear()
            await log.wait(AuditPassed)
        await equal_to_truth(s, ex, *SYMBOLS)
        assert not resets(log)


async def test_rate_limited_subscribe_waits_out_retry_after(ex: FakeExchange) -> None:
    """A 429 on the symbol lookup of subscribe is waited out, not raised: the book syncs."""
    ex.faults.rate_limit(retry_after=1)
    async with Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None) as s:
        await synced(s, "BTCUSDT")
        await equal_to_truth(s, ex, "BTCUSDT")


async def test_subscribe_and_unsubscribe_at_runtime_leave_other_books_alone(
    ex: FakeExchange,
) -> None:
    """Adding and removing symbols at runtime never resets or interrupts another book."""
    async with Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None) as s:
        log = EventLog(s.events())
        await synced(s, "BTCUSDT")
        applied = s.books.books["BTCUSDT"].counters.applied
        await s.subscribe("ETHBTC", "ETHUSDT")
        await synced(s, "ETHBTC", "ETHUSDT")
        ended = asyncio.Event()

        async def consume() -> None:
            async for _ in s.book("ETHBTC"):
                pass
            ended.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(consume())
            await asyncio.sleep(0)
            await s.unsubscribe("ETHBTC")
            await asyncio.wait_for(ended.wait(), T)
        with pytest.raises(BookNotReady):
            s.view("ETHBTC")
        assert s.books.books["BTCUSDT"].counters.applied > applied
        await equal_to_truth(s, ex, "BTCUSDT", "ETHUSDT")
        assert not resets(log)


async def test_a_slow_consumer_gets_one_merged_update_and_blocks_nobody(
    ex: FakeExchange,
) -> None:
    """A consumer that stops reading does not hold up the reader or another consumer; when it
    reads again it gets one merged update (lag > 0) whose levels agree with the book."""
    async with Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None, queue_size=4) as s:
        await synced(s, "BTCUSDT")
        slow = s.book("BTCUSDT")
        first = await anext(slow)
        start = first.update_id
        async with asyncio.timeout(T):
            async for update in s.book("BTCUSDT"):  # a fast consumer keeps going meanwhile
                if update.update_id > start and s.books.books["BTCUSDT"].counters.applied > 40:
                    break
        await ex.pause()
        await equal_to_truth(s, ex, "BTCUSDT")
        merged = [update async for update in _take_queued(slow)]
        assert any(u.lag > 0 for u in merged)
        book = exact(s.view("BTCUSDT").bids(10**6)) | exact(s.view("BTCUSDT").asks(10**6))
        last = merged[-1]
        for price, qty in (*last.bids, *last.asks):
            assert (
                book.get(exact([(price, qty)]).popitem()[0], 0)
                == exact([(price, qty)]).popitem()[1]
            )
        await slow.aclose()


async def _take_queued(it: AsyncIterator[object]) -> AsyncIterator[object]:
    while True:
        try:
            yield await asyncio.wait_for(anext(it), 0.5)
        except TimeoutError:
            return


async def test_unknown_symbol_is_a_clear_error(ex: FakeExchange) -> None:
    """A symbol the venue does not list raises UnknownSymbol from subscribe and from book()."""
    async with Streamer(ex.endpoints, audit_interval=None) as s:
        with pytest.raises(UnknownSymbol):
            await s.subscribe("NOPEUSDT")
        with pytest.raises(UnknownSymbol):
            async for _ in s.book("ALSONOPE"):
                pass
        assert s.stats()["connections"] == 0


async def test_refused_connection_is_a_clear_error_not_a_hang() -> None:
    """Nothing listening: subscribe raises ConnectError at once."""
    async with FakeExchange(symbols=["BTCUSDT"], rate=0) as ex:
        port = ex.port
    endpoints = Endpoints.local(f"http://127.0.0.1:{port}")
    async with Streamer(endpoints, audit_interval=None) as s:
        with pytest.raises(ConnectError):
            await asyncio.wait_for(s.subscribe("BTCUSDT"), T)


async def test_closed_streamer_says_so(ex: FakeExchange) -> None:
    """After close, subscribe raises StreamerClosed and iterators have ended."""
    s = Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None)
    await s.start()
    it = s.book("BTCUSDT")
    await anext(it)
    await s.close()
    with pytest.raises(StopAsyncIteration):
        await anext(it)
    with pytest.raises(StreamerClosed):
        await s.subscribe("ETHBTC")


async def test_many_symbols_are_sharded_and_looked_up_in_chunks() -> None:
    """150 symbols: looked up in exchangeInfo chunks (bodies of several hundred KiB read
    whole), spread over connections of at most max_streams streams, every book synced; and
    removing symbols never moves another book to a new connection."""
    from streamer.testing.exchange.symbols import load_exchange_info

    info = load_exchange_info()["symbols"]
    symbols = sorted(s["symbol"] for s in info if s.get("status") == "TRADING")[:150]
    async with (
        FakeExchange(symbols=symbols, seed=2, rate=600, levels=20) as ex,
        Streamer(ex.endpoints, audit_interval=None, max_streams=64, snapshot_limit=100) as s,
    ):
        log = EventLog(s.events())
        await s.subscribe(*symbols)
        assert s.stats()["connections"] == 3  # 64 + 64 + 22
        await synced(s, *symbols[:5], *symbols[-5:])
        await s.unsubscribe(*symbols[:64])  # the whole first connection goes
        assert s.stats()["connections"] == 2
        assert len(log.of(ConnectionOpened)) == 3  # nothing reconnected or moved
        await equal_to_truth(s, ex, *symbols[64:70], *symbols[-3:])
        assert not resets(log)
