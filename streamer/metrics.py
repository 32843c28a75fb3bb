"""Prometheus metrics of a :class:`~streamer.Streamer`, served over HTTP on its own event loop.

::

    async with Streamer(endpoints, symbols=["BTCUSDT"]) as s:
        async with serve_metrics(s, 9464) as server:  # GET http://127.0.0.1:9464/metrics
            ...

**Pull, not push.** :class:`StreamerMetrics` is a Prometheus *collector*: at each scrape it
reads the Streamer's own counters (``stats()``, the snapshot scheduler, the weight budget, the
order tracker, the user stream), which the hot path keeps anyway. Only what no counter holds is
recorded as it happens, through the :class:`~streamer.aio.sink.MetricsSink` calls of
``streamer.aio`` (bytes and event lag of each frame, resets by reason, audits, REST latency,
order round trips and order events); those are plain integer additions and a bisect into
fixed buckets, no lock, no allocation per observation. Without metrics the Streamer holds no
sink and pays one ``is not None`` test per point.

**Served** by an aiohttp route on the caller's event loop (no thread): a scrape runs between
two messages, so every number in one scrape comes from the same instant.

**Cardinality** stays bounded: labels are reasons, results, HTTP methods, path templates
(``/api/v3/depth``: Binance REST paths carry no ids), status codes, order types and states.
``per_symbol=True`` adds the ``streamer_book_*`` families with a ``symbol`` label.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, exposition, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamer.models import ConnectionClosed, EventsLost, SnapshotError
from streamer.order_models import TERMINAL, Fill, OrderEvent, OrderStatus, OrderUpdate, Reconciled
from streamer.sansio.book_sync import (
    AuditInconclusive,
    AuditPassed,
    DriftDetected,
    Reset,
    ResetReason,
)
from streamer.sansio.sbe import SbeDepthDiff
from streamer.sansio.wire import DepthDiff, Malformed, OtherEvent

if TYPE_CHECKING:
    from streamer.aio.streamer import Streamer
    from streamer.models import StreamerEvent

__all__ = ["MetricsServer", "StreamerMetrics", "serve_metrics"]

#: REST and order round trips (seconds): a local exchange answers in ~1 ms, Binance in 5-500 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Event time to receive (seconds); includes the clock offset to the exchange, may be < 0.
LAG_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: UNKNOWN order resolution (seconds): its own event (~ms) up to the not-placed verdict (15 s).
RESOLUTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)
#: Market-order slippage against the touch at send time, as a ratio (0.001 = 10 bp worse).
SLIPPAGE_BUCKETS = (-0.001, -0.0001, 0.0, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)

Labels = tuple[str, ...]

#: The text format generate_latest writes (0.0.4), which every Prometheus version reads; newer
#: clients call their CONTENT_TYPE_LATEST 1.0.0, older ones have only that name.
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


class _Histogram:
    """Fixed buckets per label set, observed with a bisect and two additions (no lock: one
    event loop writes and reads it)."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.series: dict[Labels, list[float]] = {}  # per labels: bucket counts..., sum, count

    def observe(self, value: float, labels: Labels = ()) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0.0] * (len(self.bounds) + 3)
        row[bisect.bisect_left(self.bounds, value)] += 1  # bucket "le": value <= bound
        row[-2] += value
        row[-1] += 1

    def family(self, name: str, doc: str, label_names: Sequence[str] = ()) -> Metric:
        family = HistogramMetricFamily(name, doc, labels=list(label_names))
        for labels, row in sorted(self.series.items()):
            buckets: list[tuple[str, float]] = []
            total = 0.0
            for bound, count in zip(self.bounds, row, strict=False):
                total += count
                buckets.append((_le(bound), total))
            buckets.append(("+Inf", row[-1]))
            family.add_metric(list(labels), buckets, row[-2])
        return family


def _le(bound: float) -> str:
    return repr(float(bound))


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled_counter(
    name: str, doc: str, labels: Sequence[str], values: dict[Labels, float]
) -> Metric:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _labelled_gauge(
    name: str, doc: str, labels: Sequence[str], values: dict[Labels, float]
) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class StreamerMetrics(Collector):
    """The metrics of one Streamer: a Prometheus collector (read at scrape) and its
    :class:`~streamer.aio.sink.MetricsSink` (the few recording points). ``attach()`` makes
    the Streamer report to it; :attr:`registry` holds it (and the process collector)."""

    def __init__(self, streamer: Streamer, *, per_symbol: bool = False) -> None:
        self.streamer = streamer
        self.per_symbol = per_symbol
        self._event_us = streamer.market_data == "sbe" or streamer._settings.microseconds
        # recorded as it happens
        self.bytes_received = 0
        # known label values start at 0, so that a rate() sees their first increase
        self.resets: Counter[Labels] = Counter({(r.value,): 0 for r in ResetReason})
        self.audits: Counter[Labels] = Counter(
            {(r,): 0 for r in ("passed", "drift", "inconclusive")}
        )
        self.mismatched_levels = 0
        self.disconnects = 0
        self.snapshot_errors: Counter[Labels] = Counter()
        self.events_lost = 0
        self.rest_requests: Counter[Labels] = Counter()
        self.rest_latency = _Histogram(LATENCY_BUCKETS)
        self.event_lag = _Histogram(LAG_BUCKETS)
        self.round_trip = _Histogram(LATENCY_BUCKETS)
        self.resolution = _Histogram(RESOLUTION_BUCKETS)
        self.slippage = _Histogram(SLIPPAGE_BUCKETS)
        self.orders_ended: Counter[Labels] = Counter()
        self.fills = 0
        self.corrections = 0
        self.reconciliations: Counter[Labels] = Counter()
        self._unknown_since: dict[str, float] = {}
        self._touch: dict[str, Decimal] = {}  # MARKET orders: best opposite price at send
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        with contextlib.suppress(Exception):  # /proc is Linux only; the metrics do not need it
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=self.registry)

    def attach(self) -> None:
        """Make the Streamer's recording points report here."""
        self.streamer.metrics = self

    def detach(self) -> None:
        if self.streamer.metrics is self:
            self.streamer.metrics = None

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format, as a scrape gets them."""
        return generate_latest(self.registry)

    # -- the sink: called from the read loops, never raises, never awaits ----------------------

    def frame(self, msg: DepthDiff | SbeDepthDiff | OtherEvent | Malformed, data: bytes) -> None:
        self.bytes_received += len(data)
        kind = type(msg)
        if kind is DepthDiff or kind is SbeDepthDiff:
            event_time = msg.event_time  # type: ignore[union-attr]
            if event_time:
                sent = event_time / (1e6 if self._event_us else 1e3)
                self.event_lag.observe(time.time() - sent)

    def event(self, event: StreamerEvent) -> None:
        if isinstance(event, Reset):
            self.resets[(event.reason.value,)] += 1
        elif isinstance(event, AuditPassed):
            self.audits[("passed",)] += 1
        elif isinstance(event, DriftDetected):
            self.audits[("drift",)] += 1
            self.mismatched_levels += len(event.mismatches)
        elif isinstance(event, AuditInconclusive):
            self.audits[("inconclusive",)] += 1
        elif isinstance(event, ConnectionClosed):
            self.disconnects += 1
        elif isinstance(event, SnapshotError):
            self.snapshot_errors[(event.purpose,)] += 1
        elif isinstance(event, EventsLost):
            self.events_lost += event.count

    def rest(self, method: str, path: str, status: str, seconds: float) -> None:
        self.rest_requests[(method, path, status)] += 1
        self.rest_latency.observe(seconds, (method, path))

    def order_round_trip(self, order_type: str, seconds: float) -> None:
        self.round_trip.observe(seconds, (order_type,))

    def order_events(self, events: list[OrderEvent]) -> None:
        for event in events:
            if isinstance(event, OrderUpdate):
                self._order_update(event)
            elif isinstance(event, Fill):
                self.fills += 1
            elif isinstance(event, Reconciled):
                self.corrections += event.corrections
                self.reconciliations[(event.reason,)] += 1

    def _order_update(self, update: OrderUpdate) -> None:
        order, previous = update.order, update.previous
        cid, status = order.client_order_id, order.status
        if previous is None and status is OrderStatus.SENT and order.type == "MARKET":
            touch = self._touch_price(order.symbol, order.side)
            if touch is not None:
                self._touch[cid] = touch
        if status is OrderStatus.UNKNOWN and previous is not OrderStatus.UNKNOWN:
            self._unknown_since[cid] = time.monotonic()
        elif previous is OrderStatus.UNKNOWN and status is not OrderStatus.UNKNOWN:
            since = self._unknown_since.pop(cid, None)
            if since is not None:
                self.resolution.observe(time.monotonic() - since)
        if status in TERMINAL and previous not in TERMINAL:
            self.orders_ended[(status.value,)] += 1
            self._unknown_since.pop(cid, None)
            touch = self._touch.pop(cid, None)
            average = order.average_price
            if touch is not None and average is not None:
                worse = average - touch if order.side == "BUY" else touch - average
                self.slippage.observe(float(worse / touch))

    def _touch_price(self, symbol: str, side: str) -> Decimal | None:
        """The best price a MARKET order of ``side`` meets in the live book now."""
        sync = self.streamer.books.books.get(symbol)
        if sync is None or not sync.synced:
            return None
        best = sync.book.asks.best() if side == "BUY" else sync.book.bids.best()
        return Decimal(best[0]) if best is not None else None

    # -- the collector: read at scrape time -----------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families are known only at collect time; auto_describe is off

    def collect(self) -> Iterator[Metric]:
        s = self.streamer
        stats = s.stats()
        books: dict[str, dict[str, Any]] = stats["books"]
        yield _counter(
            "streamer_messages_received",
            "Market data frames received (every connection, diffs and others).",
            stats["frames"],
        )
        yield _counter(
            "streamer_received_bytes",
            "Bytes of market data frames received since metrics were attached.",
            self.bytes_received,
        )
        yield _counter(
            "streamer_decode_errors",
            "Frames that could not be decoded (market data), reported as Malformed.",
            stats["malformed"],
        )
        yield _counter(
            "streamer_diffs_applied",
            "Depth diffs applied to the books (summed over the books kept now).",
            sum(b["applied"] for b in books.values()),
        )
        yield _counter(
            "streamer_gaps",
            "Sequence gaps detected in a depth stream (each resyncs its book).",
            self.resets.get(("gap",), 0),
        )
        yield _labelled_counter(
            "streamer_resyncs",
            "Book resets by reason (gap, buffer_overflow, drift, crossed_book, requested).",
            ("reason",),
            {key: float(value) for key, value in self.resets.items()},
        )
        yield _labelled_counter(
            "streamer_audits",
            "Drift audits of synced books by result (passed, drift, inconclusive).",
            ("result",),
            {key: float(value) for key, value in self.audits.items()},
        )
        yield _counter(
            "streamer_audit_mismatched_levels",
            "Price levels found different from the exchange by drift audits.",
            self.mismatched_levels,
        )
        states = Counter((b["state"],) for b in books.values())
        yield _labelled_gauge(
            "streamer_books",
            "Books kept, by sync state.",
            ("state",),
            {key: float(value) for key, value in states.items()},
        )
        yield _gauge(
            "streamer_books_live",
            "Books synced with their connection up (what BookView.synced says).",
            sum(1 for b in books.values() if b["live"]),
        )
        yield from self._snapshots(stats)
        yield from self._rest()
        yield from self._connections(stats)
        yield from self._consumers()
        yield self.event_lag.family(
            "streamer_event_lag_seconds",
            "Receive time minus the exchange's event time of each depth diff (includes the "
            "clock offset to the exchange).",
        )
        yield from self._orders()
        if self.per_symbol:
            yield from self._per_symbol(books)

    def _snapshots(self, stats: dict[str, Any]) -> Iterator[Metric]:
        yield _counter(
            "streamer_snapshot_requests",
            "Depth snapshots requested (syncs and audits).",
            stats["snapshots_sent"],
        )
        yield _labelled_counter(
            "streamer_snapshot_errors",
            "Depth snapshot requests that failed, by purpose.",
            ("purpose",),
            {key: float(value) for key, value in self.snapshot_errors.items()},
        )
        yield _counter(
            "streamer_snapshot_weight_used",
            "REST weight spent on depth snapshots.",
            stats["snapshot_weight"],
        )
        yield _gauge(
            "streamer_snapshot_requests_queued",
            "Snapshot requests waiting for weight budget.",
            stats["snapshots_queued"],
        )
        rest = self.streamer._rest
        if rest is not None:
            budget = rest.budget
            used = budget.used(time.time())
            yield _gauge(
                "streamer_rest_weight_limit",
                "REST request weight allowed per minute (the exchange's REQUEST_WEIGHT).",
                budget.limit,
            )
            yield _gauge(
                "streamer_rest_weight_used",
                "REST request weight used in the current minute (this process, all Streamers "
                "of the host).",
                used,
            )
            yield _gauge(
                "streamer_rest_weight_left",
                "REST request weight left in the current minute.",
                max(0, budget.limit - used),
            )

    def _rest(self) -> Iterator[Metric]:
        yield _labelled_counter(
            "streamer_rest_requests",
            "REST requests by method, endpoint (path) and HTTP status (no_answer: timeout or "
            "transport error).",
            ("method", "endpoint", "status"),
            {key: float(value) for key, value in self.rest_requests.items()},
        )
        errors: Counter[Labels] = Counter()
        for (method, path, status), count in self.rest_requests.items():
            if not status.startswith(("2", "3")):
                errors[(method, path)] += count
        yield _labelled_counter(
            "streamer_rest_errors",
            "REST requests that failed (HTTP 4xx/5xx or no answer), by method and endpoint.",
            ("method", "endpoint"),
            {key: float(value) for key, value in errors.items()},
        )
        yield self.rest_latency.family(
            "streamer_rest_request_duration_seconds",
            "REST request latency (send to answer) by method and endpoint.",
            ("method", "endpoint"),
        )

    def _connections(self, stats: dict[str, Any]) -> Iterator[Metric]:
        trading = self.streamer._trading
        user = trading.user.counters if trading is not None and trading.user else None
        yield _gauge("streamer_connections", "Market data connections open.", stats["connections"])
        yield _labelled_counter(
            "streamer_connection_rotations",
            "Connections replaced make-before-break (lifetime, serverShutdown), by stream.",
            ("stream",),
            {
                ("market",): stats["rotations"],
                ("user",): user["rotations"] if user else 0,
            },
        )
        yield _labelled_counter(
            "streamer_reconnects",
            "Connections re-opened after they dropped, by stream.",
            ("stream",),
            {
                ("market",): stats["reconnects"],
                ("user",): user["reconnects"] if user else 0,
            },
        )
        yield _counter(
            "streamer_disconnects",
            "Market data connections that went down (ConnectionClosed events).",
            self.disconnects,
        )
        if user is not None:
            yield _counter(
                "streamer_user_events_received",
                "User-data stream events received (duplicates of a rotation excluded).",
                user["events"],
            )
            yield _counter(
                "streamer_user_decode_errors",
                "User-data stream frames that could not be decoded.",
                user["malformed"],
            )

    def _consumers(self) -> Iterator[Metric]:
        consumers = [c for group in self.streamer._consumers.values() for c in group]
        queued = [len(c) for c in consumers]
        yield _gauge(
            "streamer_consumer_lag_updates",
            "Updates queued for the slowest book() consumer (how far behind it is).",
            max(queued, default=0),
        )
        yield _gauge("streamer_consumers", "book() consumers reading now.", len(consumers))
        yield _counter(
            "streamer_consumer_coalesced_updates",
            "Times a book() consumer was queue_size behind and got merged updates.",
            self.streamer.counters["coalesced"] + sum(c.coalesced for c in consumers),
        )
        yield _counter(
            "streamer_events_lost",
            "Events dropped for events() iterators that fell behind.",
            self.events_lost,
        )

    def _orders(self) -> Iterator[Metric]:
        trading = self.streamer._trading
        counts = trading.counters if trading is not None else {}
        states = Counter(
            (o.status.value,) for o in (trading.tracker.orders() if trading is not None else ())
        )
        yield _labelled_gauge(
            "streamer_orders",
            "Tracked orders by state (UNKNOWN: sent, outcome being resolved).",
            ("state",),
            {key: float(value) for key, value in states.items()},
        )
        for key, doc in (
            ("placed", "Order placements the exchange accepted."),
            ("rejected", "Order placements the exchange refused."),
            ("unknown", "Order placements whose outcome was unknown (timeout, 5xx, -1006/7)."),
            ("not_placed", "Order placements proved never placed (not sent, or never existed)."),
        ):
            yield _counter(f"streamer_orders_{key}", doc, counts.get(key, 0))
        yield _labelled_counter(
            "streamer_orders_ended",
            "Orders that reached a final state, by that state.",
            ("state",),
            {key: float(value) for key, value in self.orders_ended.items()},
        )
        placed, rejected = counts.get("placed", 0), counts.get("rejected", 0)
        answered = placed + rejected
        yield _gauge(
            "streamer_order_rejection_ratio",
            "Refused placements over answered ones since start (0 before any).",
            rejected / answered if answered else 0.0,
        )
        filled = self.orders_ended.get(("FILLED",), 0)
        yield _gauge(
            "streamer_order_fill_ratio",
            "Orders ended FILLED over accepted placements since start (0 before any).",
            min(1.0, filled / placed) if placed else 0.0,
        )
        yield _counter("streamer_fills", "Trades of our orders (each reported once).", self.fills)
        yield self.round_trip.family(
            "streamer_order_round_trip_seconds",
            "Order placement request to its answer, by order type.",
            ("type",),
        )
        yield self.resolution.family(
            "streamer_unknown_order_resolution_seconds",
            "Time from an order's UNKNOWN outcome to its known state.",
        )
        yield self.slippage.family(
            "streamer_market_order_slippage_ratio",
            "MARKET orders: average fill price against the best opposite price of the live "
            "book at send time, as a ratio (> 0: worse).",
        )
        yield _counter(
            "streamer_reconciliations",
            "Reconciliation passes finished.",
            counts.get("reconciliations", 0),
        )
        yield _counter(
            "streamer_reconciliation_errors",
            "Reconciliation passes that failed (retried).",
            counts.get("reconcile_errors", 0),
        )
        yield _counter(
            "streamer_reconciliation_corrections",
            "Facts the user stream missed that reconciliation found and emitted.",
            self.corrections,
        )

    def _per_symbol(self, books: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        def each(field: str) -> dict[Labels, float]:
            return {(symbol,): float(b[field]) for symbol, b in books.items()}

        yield _labelled_counter(
            "streamer_book_diffs_applied",
            "Depth diffs applied, per book.",
            ("symbol",),
            each("applied"),
        )
        yield _labelled_counter(
            "streamer_book_resyncs", "Book resets, per book.", ("symbol",), each("resyncs")
        )
        yield _labelled_counter(
            "streamer_book_audits_passed",
            "Audits passed, per book.",
            ("symbol",),
            each("audits_passed"),
        )
        yield _labelled_counter(
            "streamer_book_drifts",
            "Drifts caught by audits, per book.",
            ("symbol",),
            each("drifts"),
        )
        yield _labelled_gauge(
            "streamer_book_live",
            "1 when the book is synced and its connection up, else 0.",
            ("symbol",),
            {(symbol,): float(b["live"]) for symbol, b in books.items()},
        )
        yield _labelled_gauge(
            "streamer_book_last_update_id",
            "The book's last update id (absent while not synced).",
            ("symbol",),
            {
                (symbol,): float(b["last_update_id"])
                for symbol, b in books.items()
                if b["last_update_id"] is not None
            },
        )


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running metrics endpoint: ``url`` is what Prometheus scrapes."""

    host: str
    port: int
    metrics: StreamerMetrics

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"


@contextlib.asynccontextmanager
async def serve_metrics(
    streamer: Streamer, port: int, host: str = "127.0.0.1", *, per_symbol: bool = False
) -> AsyncIterator[MetricsServer]:
    """Serve ``GET /metrics`` of ``streamer`` on ``host:port`` (0: any free port; the bound
    one is ``server.port``) from this event loop, until the block ends. Raises ``OSError``
    when the port cannot be bound."""
    metrics = StreamerMetrics(streamer, per_symbol=per_symbol)

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        metrics.attach()
        try:
            yield MetricsServer(host, int(bound), metrics)
        finally:
            metrics.detach()
    finally:
        await runner.cleanup()
