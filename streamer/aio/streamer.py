"""``Streamer``: the public facade that keeps live order books exact.

::

    async with Streamer(Endpoints.binance_spot()) as s:
        async for update in s.book("BTCUSDT", depth=20):
            print(update.update_id, update.view.best_bid, update.view.best_ask)

One ``Streamer`` owns one aiohttp session, one task group (every background task lives in it:
readers, connection supervisors, the snapshot scheduler, the audit timer, snapshot fetches), the
sync machines of its symbols (``DepthBooks``) and the consumers' queues. Closing it closes
everything. The layers: rules in ``streamer.sansio`` (sync, handover, pacing, budgets, backoff),
I/O here and in ``market.py``, ``rest.py``, ``snapshots.py``; nothing here knows a Binance rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp

from streamer.aio.fanout import BookConsumer, EventConsumer, EventQueue
from streamer.aio.market import Shard, ShardSettings
from streamer.aio.orders import OrderHandle, OrderUpdates, Trading, new_client_order_id
from streamer.aio.recorder import CaptureRecorder
from streamer.aio.rest import RestClient, RestResponse
from streamer.aio.sink import MetricsSink
from streamer.aio.snapshots import SnapshotScheduler
from streamer.aio.trading_rest import TradingRest
from streamer.aio.user import UserStream, UserStreamSettings
from streamer.config import Credentials, Endpoints
from streamer.errors import (
    BookNotReady,
    ConfigurationError,
    IPBanned,
    RateLimited,
    StreamerClosed,
    StreamerError,
    UnknownSymbol,
)
from streamer.models import BookUpdate, BookView, Level, SnapshotError, StreamerEvent
from streamer.order_models import Balance, Order, OrderEvent
from streamer.sansio.book_sync import (
    AuditInconclusive,
    AuditPassed,
    BookSync,
    DriftDetected,
    Outcome,
    Reset,
    SnapshotRequest,
    Synced,
    SyncEvent,
)
from streamer.sansio.books import DepthBooks
from streamer.sansio.orders import OrderTracker
from streamer.sansio.ratelimit import ConnectionBudget, MessagePacer, WeightBudget
from streamer.sansio.sbe import SbeDepthDiff
from streamer.sansio.streams import Shards
from streamer.sansio.wire import DepthDiff, Malformed, OtherEvent, Venue

__all__ = ["Streamer"]

log = logging.getLogger(__name__)

Message = DepthDiff | SbeDepthDiff | OtherEvent | Malformed

#: The longest Retry-After that subscribe() waits out (longer: it raises RateLimited/IPBanned).
MAX_LOOKUP_WAIT = 30.0
#: Symbols named in one exchangeInfo lookup (weight 20 each on spot).
LOOKUP_CHUNK = 100

# One budget per REST host and one connection budget per stream host, shared by every Streamer
# of the process: Binance counts weight and connection attempts per IP (protocol §5.1, §1.3).
_WEIGHT_BUDGETS: dict[tuple[str, str], WeightBudget] = {}
_CONNECTION_BUDGETS: dict[str, ConnectionBudget] = {}


def _weight_budget(endpoints: Endpoints) -> WeightBudget:
    key = (urlsplit(endpoints.rest).netloc, endpoints.venue)
    budget = _WEIGHT_BUDGETS.get(key)
    if budget is None:
        # spot 6000/min, futures 2400/min (protocol §5.1, §7.8); REQUEST_WEIGHT in exchangeInfo
        budget = _WEIGHT_BUDGETS[key] = WeightBudget(6000 if endpoints.venue == "spot" else 2400)
    return budget


def _connection_budget(endpoints: Endpoints) -> ConnectionBudget:
    return _connection_budget_of(endpoints.ws)


def _connection_budget_of(url: str) -> ConnectionBudget:
    key = urlsplit(url).netloc
    budget = _CONNECTION_BUDGETS.get(key)
    if budget is None:
        budget = _CONNECTION_BUDGETS[key] = ConnectionBudget()
    return budget


def _sbe(
    endpoints: Endpoints, market_data: str, credentials: Credentials | None, api_key: str | None
) -> tuple[str, str] | None:
    """The SBE base URL and handshake API key when SBE market data is asked for (§7.6): the
    key of Ed25519 ``credentials``, or ``api_key`` alone (the handshake signs nothing)."""
    if market_data == "json":
        return None
    if market_data != "sbe":
        raise ConfigurationError(f"market_data must be 'json' or 'sbe', not {market_data!r}")
    if endpoints.sbe is None:
        raise ConfigurationError(f"no SBE market data on {endpoints.venue} ({endpoints.rest})")
    if credentials is not None and credentials.key_type == "ED25519":
        return endpoints.sbe, credentials.api_key
    if api_key:
        return endpoints.sbe, api_key
    raise ConfigurationError("SBE market data needs an Ed25519 API key (credentials or api_key)")


def _levels(levels: list[list[str]]) -> tuple[Level, ...]:
    return tuple((price, qty) for price, qty in levels)


class Streamer:
    """Live order books of one venue, exact and current; see the module docstring.

    ``audit_interval``: seconds between drift audits of each synced book (jittered ±50%; None:
    no audits); ``audit_limit``: levels per side of an audit snapshot (a small one suffices, the
    audit compares inside its window); ``snapshot_limit``: depth of the snapshot a book is built
    from (default 1000: weight 50 on spot, 20 on futures); ``weight_share``: the part of the
    REST weight budget snapshots may use; ``lifetime``: seconds before a connection (market or
    user stream) is rotated;
    ``queue_size``: updates a ``book()`` consumer may fall behind before they are merged;
    ``microseconds``: event times in µs (``timeUnit=MICROSECOND``, protocol §1.2), else ms;
    ``market_data="sbe"``: diffs from Binance's binary SBE streams (every 20 ms, event times in
    µs; spot only) instead of JSON; its handshake sends an Ed25519 API key: that of
    ``credentials``, or ``api_key``.

    Orders (spot, with ``credentials``): :meth:`place_order`, :meth:`cancel_order`,
    :meth:`order_updates`, :meth:`orders`, :meth:`balances`. The first of them (or
    :meth:`track_orders`) subscribes to the user-data stream and reconciles once; then
    ``reconcile_interval`` (jittered ±25%; None: only after gaps) paces reconciliations;
    ``order_timeout`` is the placement request's timeout, after which its outcome is unknown;
    ``not_placed_after``: seconds of "no such order" after which an unknown placement is
    declared ``NOT_PLACED``; ``event_timeout``: seconds to wait for the user-stream event that
    confirms a REST answer before suspecting the stream.
    """

    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        symbols: Iterable[str] = (),
        speed_ms: int | None = 100,
        microseconds: bool = False,
        snapshot_limit: int = 1000,
        audit_interval: float | None = 60.0,
        audit_limit: int = 100,
        weight_share: float = 0.5,
        max_streams: int = 1024,
        lifetime: float = 23.5 * 3600,
        silence_timeout: float | None = None,
        queue_size: int = 256,
        max_buffer: int = 2000,
        recorder: CaptureRecorder | None = None,
        seed: int | None = None,
        market_data: str = "json",
        credentials: Credentials | None = None,
        api_key: str | None = None,
        reconcile_interval: float | None = 60.0,
        order_timeout: float = 10.0,
        not_placed_after: float = 15.0,
        event_timeout: float = 5.0,
        user_silence_timeout: float = 60.0,
    ) -> None:
        self.endpoints = endpoints or Endpoints.binance_spot()
        self.venue = Venue(self.endpoints.venue)
        if audit_interval is not None and audit_interval <= 0:
            raise ConfigurationError("audit_interval must be positive (or None: no audits)")
        if not 0 < weight_share <= 1:
            raise ConfigurationError("weight_share must be in (0, 1]")
        if not 1 <= max_streams <= 1024:
            raise ConfigurationError("max_streams must be in 1..1024 (protocol §1.3)")
        if queue_size < 1 or lifetime <= 0:
            raise ConfigurationError("queue_size and lifetime must be positive")
        self._initial = [s.upper() for s in symbols]
        self._audit_interval = audit_interval
        self._audit_limit = audit_limit
        self._weight_share = weight_share
        self._queue_size = queue_size
        self._recorder = recorder
        self._rng = random.Random(seed)
        futures = self.venue.is_futures
        sbe = _sbe(self.endpoints, market_data, credentials, api_key)  # (base URL, key) or None
        self.market_data = "sbe" if sbe else "json"
        self._settings = ShardSettings(
            ws_base=sbe[0] if sbe else self.endpoints.ws,
            futures=futures,
            speed_ms=None if sbe else speed_ms,  # SBE diffs come at one speed (20 ms)
            sbe_api_key=sbe[1] if sbe else None,
            microseconds=microseconds,
            lifetime=lifetime,
            silence_timeout=silence_timeout or (600.0 if futures else 60.0),
        )
        self.books = DepthBooks(
            self.venue, (), snapshot_limit=snapshot_limit, max_buffer=max_buffer
        )
        self._stale: set[str] = set()  # synced books whose connection is down
        self._consumers: dict[str, list[BookConsumer]] = {}
        self._event_consumers: list[EventConsumer] = []
        self._next_audit: dict[str, float] = {}
        self._known: set[str] = set()
        self._shards = Shards(max_streams)
        self._shard_objs: dict[int, Shard] = {}
        self._sub_lock = asyncio.Lock()
        self._cid = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._session: aiohttp.ClientSession | None = None
        self._rest: RestClient | None = None
        self._scheduler: SnapshotScheduler | None = None
        self._closed = False
        self.counters = {"updates": 0, "coalesced": 0, "events": 0}
        self._credentials = credentials
        for name, value in (
            ("order_timeout", order_timeout),
            ("not_placed_after", not_placed_after),
            ("event_timeout", event_timeout),
            ("user_silence_timeout", user_silence_timeout),
        ):
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive")
        if reconcile_interval is not None and not reconcile_interval > 0:
            raise ConfigurationError("reconcile_interval must be positive (or None)")
        self._reconcile_interval = reconcile_interval
        self._order_timeout = order_timeout
        self._not_placed_after = not_placed_after
        self._event_timeout = event_timeout
        self._user_silence = user_silence_timeout
        self._trading: Trading | None = None
        self._trading_lock = asyncio.Lock()
        self._order_consumers: list[EventQueue[OrderEvent]] = []
        self._trading_rest: TradingRest | None = None
        self._metrics: MetricsSink | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Streamer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._tg is not None:
            raise StreamerError("Streamer already started")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16), trust_env=False
        )
        self._rest = RestClient(self.endpoints, _weight_budget(self.endpoints), self._session)
        self._rest.metrics = self._metrics
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._scheduler = SnapshotScheduler(
            self._rest,
            self.venue,
            is_current=self._is_current,
            deliver=self._deliver,
            spawn=self._spawn,
            rng=self._rng.random,
            share=self._weight_share,
        )
        self._spawn(self._scheduler.run())
        if self._audit_interval is not None:
            self._spawn(self._audit_timer())
        if self._recorder is not None:
            self._spawn(self._flush_timer(self._recorder))
        if self._initial:
            try:
                await self.subscribe(*self._initial)
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Close every connection and task; iterators end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for consumers in self._consumers.values():
            for consumer in consumers:
                consumer.close()
        for events in self._event_consumers:
            events.close()
        if self._trading is not None:
            await self._trading.close()
        for queue in list(self._order_consumers):
            queue.close()
        for shard in list(self._shard_objs.values()):
            await shard.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tg is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._tg.__aexit__(None, None, None)
        if self._session is not None:
            await self._session.close()
        if self._recorder is not None:
            self._recorder.close()

    @property
    def metrics(self) -> MetricsSink | None:
        """Where the recording points report (``streamer.metrics`` sets it; None: off)."""
        return self._metrics

    @metrics.setter
    def metrics(self, sink: MetricsSink | None) -> None:
        self._metrics = sink
        if self._rest is not None:
            self._rest.metrics = sink
        if self._trading is not None:
            self._trading.metrics = sink

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self._tg is None:
            coro.close()
            raise StreamerError("Streamer not started: use `async with Streamer(...)`")
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _check_open(self) -> None:
        if self._closed:
            raise StreamerClosed("the Streamer was closed")
        if self._tg is None:
            raise StreamerError("Streamer not started: use `async with Streamer(...)`")

    # -- public API -----------------------------------------------------------------------------

    async def subscribe(self, *symbols: str) -> None:
        """Start keeping the books of ``symbols`` (no effect on other books). Raises
        :class:`UnknownSymbol` for a symbol the venue does not list, and ``ConnectError`` when
        a needed connection cannot be opened."""
        self._check_open()
        wanted = [s.upper() for s in dict.fromkeys(symbols) if s.upper() not in self.books.books]
        if not wanted:
            return
        await self._validate(wanted)
        async with self._sub_lock:
            wanted = [s for s in wanted if s not in self.books.books]
            by_shard: dict[int, list[str]] = {}
            fresh: set[int] = set()
            for symbol in wanted:
                index, new = self._shards.add(symbol)
                by_shard.setdefault(index, []).append(symbol)
                if new:
                    fresh.add(index)
                self.books.add(symbol)
            for index, group in by_shard.items():
                try:
                    if index in fresh:
                        shard = self._new_shard(index)
                        await shard.start(group)
                        self._shard_objs[index] = shard
                    else:
                        await self._shard_objs[index].add(group)
                except BaseException:
                    for symbol in group:
                        self._shards.remove(symbol)
                        self.books.remove(symbol)
                    raise

    async def unsubscribe(self, *symbols: str) -> None:
        """Stop keeping the books of ``symbols``; their ``book()`` iterators end."""
        self._check_open()
        async with self._sub_lock:
            by_shard: dict[int, list[str]] = {}
            for raw in symbols:
                symbol = raw.upper()
                index = self._shards.remove(symbol)
                if index is None:
                    continue
                by_shard.setdefault(index, []).append(symbol)
                self.books.remove(symbol)
                self._stale.discard(symbol)
                self._next_audit.pop(symbol, None)
                if self._scheduler is not None:
                    self._scheduler.forget(symbol)
                for consumer in self._consumers.pop(symbol, []):
                    consumer.close()
            for index, group in by_shard.items():
                shard = self._shard_objs[index]
                await shard.remove(group)
                if not shard.symbols:
                    del self._shard_objs[index]

    def view(self, symbol: str, depth: int = 20) -> BookView:
        """The live view of a subscribed symbol's book (reads raise ``BookNotReady`` until it
        is synced)."""
        sync = self.books.books.get(symbol.upper())
        if sync is None:
            raise BookNotReady(f"{symbol} is not subscribed", symbol=symbol.upper())
        return BookView(sync, self._stale, depth)

    async def book(self, symbol: str, depth: int = 20) -> AsyncIterator[BookUpdate]:
        """Every change of ``symbol``'s book, subscribing to it if needed.

        The first update (and the first after every resync) has ``reloaded=True`` and carries
        the top ``depth`` levels; the others carry the levels each diff changed. A consumer that
        falls ``queue_size`` updates behind gets them merged into one (``lag`` says how many).
        """
        symbol = symbol.upper()
        await self.subscribe(symbol)
        consumer = BookConsumer(symbol, depth, self._queue_size)
        self._consumers.setdefault(symbol, []).append(consumer)
        sync = self.books.books.get(symbol)
        if sync is not None and self._live(sync):
            consumer.push(self._reloaded(sync, depth))
        try:
            async for update in consumer:
                yield update
        finally:
            consumers = self._consumers.get(symbol)
            if consumers is not None and consumer in consumers:
                consumers.remove(consumer)
                self.counters["coalesced"] += consumer.coalesced

    def events(self, maxsize: int = 1024) -> EventConsumer:
        """An async iterator of every event from now on: syncs, resets with their reason,
        drift with the differing levels, audits, connection changes, malformed frames."""
        self._check_open()
        consumer = EventConsumer(maxsize)
        self._event_consumers.append(consumer)
        return consumer

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and tests: frames, books, snapshots, connections."""
        scheduler = self._scheduler
        books = {
            symbol: {
                "state": sync.state.value,
                "live": self._live(sync),
                "last_update_id": sync.last_update_id if sync.synced else None,
                "applied": sync.counters.applied,
                "dropped": sync.counters.dropped,
                "resyncs": sync.counters.resets,
                "audits_passed": sync.counters.audits_passed,
                "drifts": sync.counters.drifts,
            }
            for symbol, sync in self.books.books.items()
        }
        return {
            "frames": self.books.counters.frames,
            "malformed": self.books.counters.malformed,
            "books": books,
            "connections": len(self._shard_objs),
            "rotations": sum(s.rotations for s in self._shard_objs.values()),
            "reconnects": sum(s.reconnects for s in self._shard_objs.values()),
            "snapshots_sent": scheduler.sent if scheduler else 0,
            "snapshots_skipped": scheduler.skipped if scheduler else 0,
            "snapshot_weight": scheduler.weight_spent if scheduler else 0,
            "weight_limit": self._rest.budget.limit if self._rest else None,
            "snapshots_queued": scheduler.queued if scheduler else 0,
            **self.counters,
        }

    # -- orders ---------------------------------------------------------------------------------

    @property
    def rest(self) -> TradingRest:
        """Typed REST calls on this Streamer's session and weight budget: ``exchange_info``,
        ``ticker_price``, ``depth``, ``klines``, ``sync_time`` (the clock offset); with credentials
        ``account``, ``open_orders``, ``my_trades``, ``query_order``, ``test_order``."""
        self._check_open()
        if self._trading_rest is None:
            assert self._rest is not None
            self._trading_rest = TradingRest(self._rest, self._credentials)
        return self._trading_rest

    async def track_orders(self) -> None:
        """Subscribe to the account's user-data stream and reconcile once (the other order
        methods do it on first use). Raises ``ConfigurationError`` without credentials."""
        await self._orders_ready()

    async def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        quantity: Decimal | str | int,
        price: Decimal | str | int | None = None,
        stop_price: Decimal | str | int | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
    ) -> OrderHandle:
        """Place an order; its handle once the exchange answered, or once the outcome is
        known to be unknown (status ``UNKNOWN``: it is being resolved, never sent again).

        Parameters are checked against the symbol's filters first (``InvalidOrder``, nothing
        sent). A definite refusal raises ``OrderRejected`` (or ``RateLimited``/``IPBanned``,
        ``ConnectError`` when it could not be sent); the order is then ``REJECTED``."""
        trading = await self._orders_ready()
        return await trading.place(
            symbol,
            side,
            type,
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            timeout=timeout,
        )

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel an order by its client order id (``DELETE /api/v3/order``); the order as
        known after the answer. ``OrderNotFound`` if the exchange does not know it."""
        trading = await self._orders_ready()
        return await trading.cancel(symbol, client_order_id)

    def order_updates(self) -> OrderUpdates:
        """Every order event from now on: each state change (``OrderUpdate``), each fill
        (``Fill``, once per trade), each balance change (``Balance``) and each finished
        reconciliation (``Reconciled``), with its ``source``; never coalesced or dropped.
        The events are collected from this call on (iterating it starts order tracking if
        needed); ``close()`` it, or leave its ``async for`` loop, when done."""
        self._check_open()
        queue: EventQueue[OrderEvent] = EventQueue()
        self._order_consumers.append(queue)
        return OrderUpdates(queue, self._orders_ready, self._order_consumers.remove)

    def _publish_orders(self, events: list[OrderEvent]) -> None:
        if self._metrics is not None:
            self._metrics.order_events(events)
        for queue in self._order_consumers:
            for event in events:
                queue.push(event)

    def orders(self) -> list[Order]:
        """Every tracked order (ours and the account's others seen), oldest first."""
        return self._trading.tracker.orders() if self._trading is not None else []

    def balances(self) -> dict[str, Balance]:
        """The account's balances as last reported, by asset."""
        return self._trading.tracker.balances() if self._trading is not None else {}

    async def reconcile(self) -> None:
        """Reconcile now (open orders, live orders, new trades, balances)."""
        trading = await self._orders_ready()
        await trading.reconcile("requested")

    async def _orders_ready(self) -> Trading:
        self._check_open()
        if self._trading is not None:
            return self._trading
        credentials = self._credentials
        if credentials is None:
            raise ConfigurationError("orders need credentials: Streamer(credentials=...)")
        if self.venue.is_futures:
            raise ConfigurationError("order tracking is built for spot only (futures: not yet)")
        async with self._trading_lock:
            if self._trading is not None:  # set while we waited for the lock
                return self._trading  # type: ignore[unreachable]
            assert self._session is not None
            rest = self.rest
            trading = Trading(
                rest,
                OrderTracker(self.endpoints.venue),
                spawn=self._spawn,
                rng=self._rng.random,
                new_client_id=new_client_order_id,
                publish=self._publish_orders,
                reference_price=self._mid_price,
                reconcile_interval=self._reconcile_interval,
                event_timeout=self._event_timeout,
                not_placed_after=self._not_placed_after,
                request_timeout=self._order_timeout,
            )
            trading.metrics = self._metrics
            trading.user = UserStream(
                UserStreamSettings(
                    self.endpoints.ws_api,
                    lifetime=self._settings.lifetime,
                    silence_timeout=self._user_silence,
                ),
                credentials,
                self._session,
                on_event=trading.on_event,
                on_gap=trading.on_gap,
                emit=self._emit,
                spawn=self._spawn,
                connections=_connection_budget_of(self.endpoints.ws_api),
                timestamp=lambda: int(time.time() * 1000 + (rest.offset_ms or 0.0)),
                rng=self._rng.random,
            )
            try:
                await trading.start()
            except BaseException:
                await trading.close()
                raise
            self._trading = trading
            return trading

    def _mid_price(self, symbol: str) -> Decimal | None:
        """The live book's mid price, the reference for a MARKET order's notional."""
        sync = self.books.books.get(symbol)
        if sync is None or not self._live(sync):
            return None
        bid, ask = sync.book.bids.best(), sync.book.asks.best()
        if bid is None or ask is None:
            return None
        return (Decimal(bid[0]) + Decimal(ask[0])) / 2

    # -- the reader's path: never awaits --------------------------------------------------------

    def _feed(self, msg: Message, data: bytes, url: str) -> None:
        if self._metrics is not None:
            self._metrics.frame(msg, data)
        if self._recorder is not None:
            self._recorder.ws(url, data)
        books = self.books
        outcome = books.receive_message(msg, data, url)
        if outcome is None:
            if type(msg) is Malformed:
                for event in books.malformed():
                    self._emit(event)
            return
        diff = cast("DepthDiff | SbeDepthDiff", msg)  # an outcome means a diff
        symbol = diff.symbol
        sync = books.books.get(symbol)
        if sync is None:
            return
        if outcome is Outcome.APPLIED:
            if self._stale:
                self._stale.discard(symbol)
            consumers = self._consumers.get(symbol)
            if consumers:  # the changes as strings: SBE's only when someone reads them
                text = diff.depth_diff() if isinstance(diff, SbeDepthDiff) else diff
                self._push(sync, consumers, text)
        events = books.events_of(sync)
        if events:
            self._handle(sync, events)

    def _push(self, sync: BookSync, consumers: list[BookConsumer], diff: DepthDiff) -> None:
        bids, asks = _levels(diff.bids), _levels(diff.asks)
        for consumer in consumers:
            view = BookView(sync, self._stale, consumer.depth)
            consumer.push(
                BookUpdate(sync.symbol, diff.last_id, bids, asks, view, event_time=diff.event_time)
            )
        self.counters["updates"] += 1

    def _reloaded(self, sync: BookSync, depth: int) -> BookUpdate:
        book = sync.book
        return BookUpdate(
            sync.symbol,
            sync.last_update_id,
            tuple(book.bids.top(depth)),
            tuple(book.asks.top(depth)),
            BookView(sync, self._stale, depth),
            reloaded=True,
        )

    def _handle(self, sync: BookSync, events: Sequence[SyncEvent | Malformed]) -> None:
        for event in events:
            if isinstance(event, SnapshotRequest):
                if self._scheduler is not None:
                    self._scheduler.submit(event)
                continue
            if isinstance(event, Synced):
                self._synced(sync)

            elif isinstance(event, AuditPassed | AuditInconclusive | DriftDetected):
                self._plan_audit(event.symbol)
            self._emit(event)

    def _synced(self, sync: BookSync) -> None:
        symbol = sync.symbol
        self._stale.discard(symbol)
        self._plan_audit(symbol)
        for consumer in self._consumers.get(symbol, ()):
            consumer.push(self._reloaded(sync, consumer.depth))

    def _emit(self, event: StreamerEvent) -> None:
        self.counters["events"] += 1
        if self._metrics is not None:
            self._metrics.event(event)
        if isinstance(event, Reset):
            log.info("%s reset (%s): %s", event.symbol, event.reason, event.detail)
        elif isinstance(event, DriftDetected):
            count = len(event.mismatches)
            log.warning("%s drift at %d: %d levels", event.symbol, event.snapshot_id, count)
        elif isinstance(event, Malformed):
            log.warning("malformed frame on %s: %s: %s", event.stream, event.reason, event.excerpt)
        for consumer in self._event_consumers:
            consumer.push(event)

    def _live(self, sync: BookSync) -> bool:
        """Synced and its connection up: what ``BookView.synced`` says."""
        return sync.synced and sync.symbol not in self._stale

    def _on_down(self, symbols: Iterable[str]) -> None:
        books = self.books.books
        self._stale.update(s for s in symbols if s in books)

    def _seen(self, symbol: str) -> int | None:
        sync = self.books.books.get(symbol)
        return sync.seen_id if sync is not None else None

    def _next_cid(self) -> int:
        self._cid += 1
        return self._cid

    def _new_shard(self, index: int) -> Shard:
        assert self._session is not None
        venue = self.venue
        return Shard(
            index,
            self._settings,
            self._session,
            feed=self._feed,
            seen=self._seen,
            emit=self._emit,
            on_down=self._on_down,
            spawn=self._spawn,
            connections=_connection_budget(self.endpoints),
            pacer=lambda: MessagePacer.for_venue(venue),
            rng=self._rng.random,
            next_cid=self._next_cid,
        )

    # -- snapshots and audits -------------------------------------------------------------------

    def _is_current(self, request: SnapshotRequest) -> bool:
        sync = self.books.books.get(request.symbol)
        return sync is not None and sync.pending_token == request.token

    def _deliver(
        self,
        request: SnapshotRequest,
        response: RestResponse | None,
        error: StreamerError | None,
        retry_in: float,
    ) -> None:
        sync = self.books.books.get(request.symbol)
        if sync is None:
            return
        current = sync.pending_token == request.token
        if response is not None:
            if current and self._recorder is not None:
                self._recorder.rest(response.url, response.status, response.body)
            stale = sync.counters.stale_snapshots
            self.books.receive_snapshot(
                request.symbol, response.body, request.token, limit=request.limit
            )
            if sync.counters.stale_snapshots > stale and self._scheduler is not None:
                self._scheduler.back_off(request.symbol)  # asked again: not at once
        else:
            self._emit(SnapshotError(request.symbol, request.purpose, str(error), retry_in))
            sync.snapshot_failed(request.token)
            if request.purpose == "audit":
                self._plan_audit(request.symbol)
        events = self.books.events_of(sync)
        if events:
            self._handle(sync, events)

    def _plan_audit(self, symbol: str) -> None:
        if self._audit_interval is not None:
            jitter = 0.5 + self._rng.random()
            self._next_audit[symbol] = time.monotonic() + self._audit_interval * jitter

    async def _audit_timer(self) -> None:
        assert self._audit_interval is not None
        tick = min(1.0, self._audit_interval / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for symbol, due in list(self._next_audit.items()):
                if due > now:
                    continue
                sync = self.books.books.get(symbol)
                if sync is None or not self._live(sync):
                    continue
                del self._next_audit[symbol]
                if sync.request_audit(self._audit_limit) is not None:
                    self._handle(sync, sync.events())

    async def _flush_timer(self, recorder: CaptureRecorder) -> None:
        while True:
            await asyncio.sleep(0.2)
            recorder.flush()

    # -- symbol validation ---------------------------------------------------------------------

    async def _lookup(self, symbols: list[str]) -> set[str]:
        """exchangeInfo for ``symbols``; a short 429/418 is waited out (every request waits
        for it anyway), a long ban is raised."""
        assert self._rest is not None
        listed: set[str] = set()
        # Up to LOOKUP_CHUNK names per request: a long symbols=[...] overflows URL limits.
        for start in range(0, len(symbols), LOOKUP_CHUNK):
            chunk = symbols[start : start + LOOKUP_CHUNK]
            while True:
                try:
                    listed |= await self._rest.exchange_symbols(chunk)
                    break
                except (RateLimited, IPBanned) as exc:
                    if exc.retry_after is None or exc.retry_after > MAX_LOOKUP_WAIT:
                        raise
        return listed

    async def _validate(self, symbols: list[str]) -> None:
        unknown = [s for s in symbols if s not in self._known]
        if not unknown:
            return
        assert self._rest is not None
        try:
            listed = await self._lookup(unknown)
        except UnknownSymbol as exc:
            raise UnknownSymbol(
                f"{', '.join(unknown)}: not all are listed on {self.endpoints.rest} ({exc})",
                code=exc.code,
                status=exc.status,
                symbol=unknown[0] if len(unknown) == 1 else None,
            ) from exc
        self._known.update(listed)
        missing = [s for s in unknown if s not in listed]
        if missing:
            raise UnknownSymbol(
                f"not listed on {self.endpoints.rest}: {', '.join(missing)}", symbol=missing[0]
            )
