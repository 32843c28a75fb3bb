"""Prometheus metrics of a running ``Streamer`` against the local exchange, scraped over HTTP
and parsed with the official client's parser; ``streamer book --metrics-port``; logging that is
quiet by default and never shows a secret or a signature."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import signal
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streamer.aio.trading_rest as trading_rest_module
import streamer.aio.user as user_module
from streamer import Credentials, OrderRejected, OrderStatus, Streamer
from streamer.logs import RedactingFormatter, setup_logging
from streamer.metrics import serve_metrics
from streamer.sansio.book_sync import AuditPassed, Reset
from streamer.testing import FakeExchange
from tests.integration import procs
from tests.integration.live import EventLog, T, synced

SYMBOL = "BTCUSDT"

Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture
async def ex() -> AsyncIterator[FakeExchange]:
    async with FakeExchange(symbols=[SYMBOL, "ETHBTC"], seed=11) as exchange:
        yield exchange


async def scrape(url: str) -> tuple[str, str]:
    """The metrics page (content type, text) fetched over HTTP."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, timeout=aiohttp.ClientTimeout(total=T)) as response,
    ):
        assert response.status == 200
        return response.headers["Content-Type"], await response.text()


def families(text: str) -> dict[str, tuple[str, set[str]]]:
    """Family name -> (type, its sample names), by the client's parser."""
    return {
        family.name: (family.type, {sample.name for sample in family.samples})
        for family in text_string_to_metric_families(text)
    }


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family name -> type, and sample name -> [(labels, value)], by the client's parser."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    rows = samples.get(name)
    assert rows is not None, f"{name} missing"
    return sum(v for got, v in rows if labels.items() <= got.items())


def quantity(ex: FakeExchange, price: Decimal, notional: int = 20) -> Decimal:
    """The quantity worth ``notional`` USDT at ``price`` (20: twice the minimum notional)."""
    step = ex.engine.symbols[SYMBOL].step_size
    return (Decimal(notional) / price / step).to_integral_value(ROUND_CEILING) * step


async def funded(ex: FakeExchange) -> Credentials:
    """An account with 1000 USDT: an order worth more is refused (-2010)."""
    keys = await ex.create_account({"USDT": "1000"})
    return Credentials(keys["apiKey"], keys["secretKey"])


async def place_refused(s: Streamer, ex: FakeExchange) -> None:
    """A LIMIT buy worth 5000 USDT at the best bid, refused for the balance."""
    bid = Decimal(s.view(SYMBOL).bids(1)[0][0])
    with pytest.raises(OrderRejected):
        await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=quantity(ex, bid, 5000), price=bid,
                            time_in_force="GTC")  # fmt: skip


async def test_a_scrape_counts_books_orders_and_a_gap(ex: FakeExchange) -> None:
    """A scrape of a live Streamer with books and orders: messages and bytes received, books
    synced, an audit passed, a dropped diff counted as a gap and a resync, REST requests by
    endpoint, orders by state, a fill, a rejection, round trips and slippage recorded."""
    credentials = await funded(ex)
    async with (
        Streamer(
            ex.endpoints, credentials=credentials, audit_interval=0.3, reconcile_interval=None
        ) as s,
        serve_metrics(s, 0) as server,
    ):
        assert s.metrics is server.metrics
        log = EventLog(s.events())
        await synced(s, SYMBOL)
        ex.faults.drop_diffs(SYMBOL)
        await log.wait(Reset, lambda e: e.reason.value == "gap")
        await synced(s, SYMBOL)
        await log.wait(AuditPassed)
        view = s.view(SYMBOL)
        best_ask = Decimal(view.asks(1)[0][0])
        market = await s.place_order(SYMBOL, "BUY", "MARKET", quantity=quantity(ex, best_ask))
        assert (await market.wait(timeout=T)).status is OrderStatus.FILLED
        await place_refused(s, ex)
        content_type, text = await scrape(server.url)
    assert server.port > 0 and server.url.endswith(f":{server.port}/metrics")
    assert content_type.startswith("text/plain")
    types, samples = parse(text)
    assert value(samples, "streamer_messages_received_total") > 0
    assert value(samples, "streamer_received_bytes_total") > 0
    assert value(samples, "streamer_diffs_applied_total") > 0
    assert value(samples, "streamer_decode_errors_total") == 0
    assert value(samples, "streamer_books", state="synced") == 1
    assert value(samples, "streamer_books_live") == 1
    assert value(samples, "streamer_gaps_total") >= 1
    assert value(samples, "streamer_resyncs_total", reason="gap") >= 1
    assert value(samples, "streamer_audits_total", result="passed") >= 1
    assert value(samples, "streamer_snapshot_requests_total") >= 2  # the first sync and the resync
    assert value(samples, "streamer_snapshot_weight_used_total") > 0
    limit = value(samples, "streamer_rest_weight_limit")
    left = value(samples, "streamer_rest_weight_left")
    assert limit == 6000 and 0 < left < limit
    assert value(samples, "streamer_rest_requests_total", endpoint="/api/v3/depth") >= 2
    assert value(samples, "streamer_rest_requests_total", method="POST", status="400") == 1
    assert value(samples, "streamer_rest_errors_total", endpoint="/api/v3/order") == 1
    depth = {"method": "GET", "endpoint": "/api/v3/depth"}
    assert value(samples, "streamer_rest_request_duration_seconds_count", **depth) >= 2
    assert value(samples, "streamer_rest_request_duration_seconds_sum", **depth) > 0
    assert value(samples, "streamer_connections") == 1
    assert value(samples, "streamer_orders", state="FILLED") == 1
    assert value(samples, "streamer_orders", state="REJECTED") == 1
    assert value(samples, "streamer_orders_placed_total") == 1
    assert value(samples, "streamer_orders_rejected_total") == 1
    assert value(samples, "streamer_orders_ended_total", state="FILLED") == 1
    assert value(samples, "streamer_order_rejection_ratio") == 0.5
    assert value(samples, "streamer_order_fill_ratio") == 1.0
    assert value(samples, "streamer_fills_total") >= 1
    assert value(samples, "streamer_order_round_trip_seconds_count", type="MARKET") == 1
    assert value(samples, "streamer_order_round_trip_seconds_count", type="LIMIT") == 1
    # negative buckets (a price better than the touch): no _count/_sum, by the convention
    assert value(samples, "streamer_market_order_slippage_ratio_bucket", le="+Inf") == 1
    assert value(samples, "streamer_event_lag_seconds_count") > 0
    assert value(samples, "streamer_reconciliations_total") >= 1
    assert value(samples, "streamer_user_events_received_total") > 0
    assert types["streamer_event_lag_seconds"] == "histogram"
    assert types["streamer_orders"] == "gauge"
    assert types["streamer_messages_received"] == "counter"
    assert s.metrics is None  # detached when the server stopped


async def test_an_unknown_order_and_its_resolution_time(ex: FakeExchange) -> None:
    """An order whose answer is held past the timeout, with the user stream silent, counts as
    UNKNOWN; its resolution (by query) is observed once, and no round trip is recorded."""
    keys = await ex.create_account({"USDT": "1000"})
    credentials = Credentials(keys["apiKey"], keys["secretKey"])
    async with (
        Streamer(
            ex.endpoints, credentials=credentials, audit_interval=None, order_timeout=0.5,
            reconcile_interval=None, event_timeout=1.0, not_placed_after=2.0,
        ) as s,
        serve_metrics(s, 0) as server,
    ):  # fmt: skip
        await s.track_orders()
        ex.faults.silence_user_stream(ex.auth.account_of(keys["apiKey"]), count=3)
        ex.faults.order_timeout(2000)
        bid = Decimal((await ex.book(SYMBOL))["bids"][0][0])
        price = bid - 50 * ex.engine.symbols[SYMBOL].tick_size
        order = await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=quantity(ex, price),
                                    price=price, time_in_force="GTC")  # fmt: skip
        assert order.status is OrderStatus.UNKNOWN
        assert (await order.resolved(timeout=T)).status is OrderStatus.NEW
        _, text = await scrape(server.url)
    _, samples = parse(text)
    assert value(samples, "streamer_orders_unknown_total") == 1
    assert value(samples, "streamer_unknown_order_resolution_seconds_count") == 1
    assert value(samples, "streamer_unknown_order_resolution_seconds_sum") > 0
    assert value(samples, "streamer_orders", state="NEW") == 1
    assert "streamer_order_round_trip_seconds_count" not in samples  # never answered in time


async def test_names_follow_prometheus_conventions(ex: FakeExchange) -> None:
    """Every family is streamer_ (or the standard process_) prefixed, snake case; counters
    end in _total; time is in seconds; no symbol label unless per_symbol=True, which adds
    the streamer_book_* families labelled by symbol."""
    async with Streamer(ex.endpoints, symbols=[SYMBOL, "ETHBTC"], audit_interval=None) as s:
        await synced(s, SYMBOL, "ETHBTC")
        async with serve_metrics(s, 0) as server:
            _, plain = await scrape(server.url)
        async with serve_metrics(s, 0, per_symbol=True) as server:
            _, detailed = await scrape(server.url)
    types, samples = parse(plain)
    assert len([n for n in types if n.startswith("streamer_")]) >= 40
    for name, (kind, names) in families(plain).items():
        assert re.fullmatch(r"(streamer|process|python)_[a-z0-9_]+", name), name
        if kind == "counter":
            assert names <= {name + "_total"}, name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_ratio")), name
        assert not name.endswith(("_ms", "_milliseconds", "_kb")), name
    assert all("symbol" not in labels for rows in samples.values() for labels, _ in rows)
    types, samples = parse(detailed)
    books = {labels["symbol"] for labels, _ in samples["streamer_book_live"]}
    assert books == {SYMBOL, "ETHBTC"}
    assert value(samples, "streamer_book_last_update_id", symbol=SYMBOL) > 0
    assert ("streamer_book_diffs_applied", "counter") in {(n, t) for n, t in types.items()}


async def test_without_metrics_the_streamer_holds_no_sink(ex: FakeExchange) -> None:
    """A Streamer has no metrics sink until serve_metrics attaches one, and none after."""
    async with Streamer(ex.endpoints, symbols=[SYMBOL], audit_interval=None) as s:
        assert s.metrics is None
        async with serve_metrics(s, 0):
            assert s.metrics is not None
        assert s.metrics is None


async def test_a_port_in_use_is_an_oserror(ex: FakeExchange) -> None:
    """Serving metrics on a port already bound raises OSError (the CLI's one-line error)."""
    async with Streamer(ex.endpoints, audit_interval=None) as s, serve_metrics(s, 0) as first:
        with pytest.raises(OSError):
            async with serve_metrics(s, first.port):
                pass
        assert s.metrics is first.metrics


# -- the command line ---------------------------------------------------------------------------


async def test_book_serves_metrics_on_the_port_it_prints() -> None:
    """`streamer book --metrics-port 0` prints the bound metrics URL on stderr; a scrape of it
    shows the live book; SIGINT ends it with status 0."""
    async with procs.exchange_process("--symbols", SYMBOL) as info:
        proc = await procs.streamer(
            "book", "--json", "--local", info["rest"], SYMBOL, "--metrics-port", "0"
        )
        assert proc.stderr is not None
        seen: list[str] = []
        await procs.lines_until(
            proc.stderr, lambda lines: any("/metrics" in x for x in lines), seen
        )
        url = re.search(r"http://\S+/metrics", "".join(seen))
        assert url is not None, seen
        async with asyncio.timeout(T):
            while True:  # the book syncs after start: scrape until the scrape says so
                _, text = await scrape(url.group(0))
                _, samples = parse(text)
                if value(samples, "streamer_books_live") == 1:
                    break
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        code, _out, err = await procs.finish(proc)
    assert code == 0, err
    assert value(samples, "streamer_messages_received_total") > 0
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "value_"),
    [("--metrics-port", "99999"), ("--metrics-port", "x"), ("--log-level", "LOUD")],
)
async def test_bad_metrics_or_log_flags_are_one_line(flag: str, value_: str) -> None:
    """A port outside 0..65535 or an unknown log level: a usage error naming it, status 2."""
    proc = await procs.streamer("book", "--local", "http://127.0.0.1:1", SYMBOL, flag, value_)
    code, _out, err = await procs.finish(proc)
    assert code == 2
    assert flag in err and "Traceback" not in err


async def test_log_level_info_logs_to_stderr() -> None:
    """Quiet by default; `--log-level INFO` writes the library's INFO lines to stderr."""
    async with procs.exchange_process("--symbols", SYMBOL) as info:
        quiet = await procs.streamer("book", "--json", "--seconds", "1", "--local", info["rest"],
                                     SYMBOL)  # fmt: skip
        code, _out, err_quiet = await procs.finish(quiet)
        assert code == 0, err_quiet
        ex_args = ["--seconds", "1", "--local", info["rest"], SYMBOL, "--log-level", "info"]
        loud = await procs.streamer("book", "--json", *ex_args)
        code, _out, err_loud = await procs.finish(loud)
        assert code == 0, err_loud
    assert " INFO " not in err_quiet
    assert " INFO streamer." in err_loud


# -- secrets ------------------------------------------------------------------------------------


async def test_debug_logs_hold_no_secret_and_no_signature(
    ex: FakeExchange, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With credentials, orders, a rejection and every logger at DEBUG (aiohttp's too), no
    log line holds the secret key or any signature the run made (REST and WS-API logon)."""
    signatures: list[str] = []

    def spying(sign: Any) -> Any:
        def spy(secret: str, payload: str) -> str:
            signature: str = sign(secret, payload)  # the real signer: the run is unchanged
            signatures.append(signature)
            return signature

        return spy

    for module in (trading_rest_module, user_module):
        monkeypatch.setattr(module, "hmac_sign", spying(module.hmac_sign))
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    setup_logging(None, stream=stream)
    logging.getLogger().setLevel(logging.DEBUG)
    keys = await ex.create_account({"USDT": "1000"})
    try:
        async with Streamer(
            ex.endpoints,
            symbols=[SYMBOL],
            credentials=Credentials(keys["apiKey"], keys["secretKey"]),
            audit_interval=None,
        ) as s:
            await synced(s, SYMBOL)
            view = s.view(SYMBOL)
            ask = Decimal(view.asks(1)[0][0])
            order = await s.place_order(SYMBOL, "BUY", "MARKET", quantity=quantity(ex, ask))
            await order.wait(timeout=T)
            await place_refused(s, ex)
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_streamer", False):
                logging.getLogger().removeHandler(handler)
    assert len(signatures) >= 4  # logon, account, order, rejected order...
    texts = [caplog.text, stream.getvalue()]
    assert any(text for text in texts)  # DEBUG logging did log
    for text in texts:
        assert keys["secretKey"] not in text
        for signature in signatures:
            assert signature not in text


def test_the_formatter_masks_signature_and_key_values() -> None:
    """Whoever logs a signed URL or an API-key header, the handler's text masks the values."""
    formatter = RedactingFormatter("%(message)s")
    record = logging.LogRecord(
        "x", logging.DEBUG, __file__, 1,
        "GET /api/v3/order?symbol=X&timestamp=1&signature=abc123def {'X-MBX-APIKEY': 'k3y'}",
        None, None,
    )  # fmt: skip
    text = formatter.format(record)
    assert "abc123def" not in text and "k3y" not in text
    assert "symbol=X&timestamp=1" in text


def test_setup_logging_is_quiet_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --log-level or $STREAMER_LOG_LEVEL the root logger is at WARNING; the
    environment variable and the flag (which wins) set it."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        monkeypatch.delenv("STREAMER_LOG_LEVEL", raising=False)
        assert setup_logging(None, stream=io.StringIO()) == logging.WARNING
        monkeypatch.setenv("STREAMER_LOG_LEVEL", "info")
        assert setup_logging(None, stream=io.StringIO()) == logging.INFO
        import argparse

        args = argparse.Namespace(log_level="DEBUG")
        assert setup_logging(args, stream=io.StringIO()) == logging.DEBUG
        assert len([h for h in root.handlers if getattr(h, "_streamer", False)]) == 1
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
