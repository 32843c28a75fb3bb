"""Orders: placement with no duplicate ever, resolution of unknown outcomes, reconciliation.

One :class:`Trading` per ``Streamer`` with credentials. It owns the pure
:class:`~streamer.sansio.orders.OrderTracker` and feeds it from three sources: our REST answers,
the user-data stream (:mod:`streamer.aio.user`) and the REST snapshots of reconciliation.

**Placement (protocol §5.4).** The parameters are checked against the symbol's filters before
anything is sent (:func:`~streamer.sansio.filters.prepare_order`), the order gets our client
order id and is tracked (``SENT``) before the request leaves. The answer decides:

* an order answer: applied (with the fills of a FULL answer);
* a definite refusal (-2010, -1013, a 429/418 that stopped it at the door, a connection that
  was never made): ``REJECTED`` (or ``NOT_PLACED`` when nothing was sent), and the error raised;
* anything else (a timeout after sending, a 5xx, -1006, -1007, the connection lost mid-request):
  ``UNKNOWN``, returned as such, and resolved in the background: first by the order's own
  ``executionReport`` (it may already be on its way), then by querying it by client order id
  with backoff. "No such order" is not conclusive at once (reads may lag the engine); only
  after ``not_placed_after`` seconds of it (longer than Binance's own 10 s backend timeout and
  the recvWindow, past which the engine refuses the request) is the order ``NOT_PLACED``. It is
  never sent again while it may exist.

**Reconciliation (protocol §3.4)** on every (re)subscription of the user stream, on a jittered
schedule, and when an expected event did not come: open orders, the state of every tracked
order that is not final and not open (queried one by one), the trades since the last trade id
seen per symbol with activity (``fromId``), the trades of any order whose fills do not add up
to its executed quantity (``orderId``: a symbol's history from before we tracked it is not
fetched), and the balances. What the stream missed comes out as ordinary events marked
``source="reconciliation"``, fills before the status they lead to, then one ``Reconciled``.

Its events go to the owner's consumers (``publish``), every one, never coalesced; the read
loop never waits for them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from decimal import Decimal
from typing import Any

from streamer.aio.fanout import EventQueue
from streamer.aio.sink import MetricsSink
from streamer.aio.trading_rest import TradingRest
from streamer.aio.user import UserStream
from streamer.errors import (
    ConnectError,
    ExchangeError,
    InvalidOrder,
    OrderNotFound,
    ServerError,
    StreamerClosed,
    StreamerError,
    TransportError,
    UnknownOrderStatus,
)
from streamer.order_models import Order, OrderEvent, OrderStatus
from streamer.sansio.backoff import Backoff
from streamer.sansio.filters import prepare_order
from streamer.sansio.orders import OrderTracker

__all__ = ["OrderHandle", "OrderUpdates", "Trading", "new_client_order_id"]

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]

_OPEN_ORDERS_ALL_WEIGHT = 80  # GET /api/v3/openOrders without a symbol; 6 with one (§4.3)
_OPEN_ORDERS_ONE_WEIGHT = 6
_TRADES_PAGE = 1000  # myTrades' maximum


_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_order_id() -> str:
    """A fresh client order id: ``st`` and 22 random base-62 characters (about 131 bits, from
    the OS: unique across processes, unlike a seeded generator), inside Binance's
    ``[A-Za-z0-9._-]{1,36}``."""
    return "st" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


class OrderUpdates:
    """The iterator ``Streamer.order_updates()`` returns: it collects from its creation, and
    starts order tracking on its first step (subscribing the user stream if needed)."""

    def __init__(
        self,
        queue: EventQueue[OrderEvent],
        start: Callable[[], Awaitable[object]],
        forget: Callable[[EventQueue[OrderEvent]], None],
    ) -> None:
        self._queue = queue
        self._start: Callable[[], Awaitable[object]] | None = start
        self._forget = forget

    def __aiter__(self) -> OrderUpdates:
        return self

    async def __aenter__(self) -> OrderUpdates:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def __anext__(self) -> OrderEvent:
        if self._start is not None:
            start, self._start = self._start, None
            try:
                await start()
            except BaseException:
                self.close()
                raise
        try:
            return await self._queue.__anext__()
        except StopAsyncIteration:
            self.close()
            raise

    def take_all(self) -> list[OrderEvent]:
        """Every event collected so far, without waiting."""
        return self._queue.take_all()

    def close(self) -> None:
        """Stop collecting; the iteration ends once the collected events are read."""
        if not self._queue.closed:
            self._queue.close()
            self._forget(self._queue)


class OrderHandle:
    """What ``place_order`` returns: the order's current state, and a way to await its next."""

    def __init__(self, trading: Trading, client_order_id: str) -> None:
        self._trading = trading
        self.client_order_id = client_order_id

    @property
    def order(self) -> Order:
        """The order as known now."""
        order = self._trading.tracker.get(self.client_order_id)
        assert order is not None  # tracked from before it was sent, never forgotten
        return order

    @property
    def status(self) -> OrderStatus:
        return self.order.status

    async def wait(
        self,
        until: Callable[[Order], bool] | Iterable[OrderStatus] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a bound for the caller, as wait_for's
    ) -> Order:
        """The order once ``until`` holds (statuses, or a predicate; default: a final state).
        Raises ``TimeoutError`` after ``timeout`` seconds."""
        if until is None:
            done: Callable[[Order], bool] = lambda o: o.terminal  # noqa: E731
        elif callable(until):
            done = until
        else:
            wanted = frozenset(until)
            done = lambda o: o.status in wanted  # noqa: E731
        async with asyncio.timeout(timeout):
            return await self._trading.wait_for(self.client_order_id, done)

    async def resolved(self, *, timeout: float | None = None) -> Order:  # noqa: ASYNC109
        """The order once its placement outcome is known (not SENT, not UNKNOWN)."""
        return await self.wait(
            lambda o: o.status not in (OrderStatus.SENT, OrderStatus.UNKNOWN), timeout=timeout
        )

    def __repr__(self) -> str:
        order = self.order
        return f"<OrderHandle {order.symbol} {self.client_order_id} {order.status.value}>"


class Trading:
    """Order placement, tracking and reconciliation; see the module docstring."""

    def __init__(
        self,
        rest: TradingRest,
        tracker: OrderTracker,
        *,
        spawn: Spawn,
        rng: Callable[[], float],
        new_client_id: Callable[[], str],
        publish: Callable[[list[OrderEvent]], None],
        reference_price: Callable[[str], Decimal | None] = lambda symbol: None,
        reconcile_interval: float | None = 60.0,
        event_timeout: float = 5.0,
        not_placed_after: float = 15.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.rest = rest
        self.tracker = tracker
        self.user: UserStream | None = None  # set by the owner before start()
        self._spawn = spawn
        self._rng = rng
        self._new_client_id = new_client_id
        self._reference_price = reference_price
        # client ids whose next executionReport we wait for: False until it comes
        self._confirmed: dict[str, bool] = {}
        self.reconcile_interval = reconcile_interval
        self.event_timeout = event_timeout
        self.not_placed_after = not_placed_after
        self.request_timeout = request_timeout
        self._publish_to = publish
        self.metrics: MetricsSink | None = None  # set by the owner when metrics are on
        self._changed = asyncio.Event()  # replaced by a fresh one on every change
        self._gap = asyncio.Event()
        self._gap_reasons: list[str] = []
        self._reconciling = asyncio.Lock()
        self._resolving: set[str] = set()
        self._closed = False
        self.counters = {
            "placed": 0,
            "rejected": 0,
            "unknown": 0,
            "not_placed": 0,
            "reconciliations": 0,
            "reconcile_errors": 0,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Measure the clock offset, subscribe to the user stream (before any order: protocol
        §3.4), and reconcile once (reason ``subscribed``), then keep reconciling."""
        assert self.user is not None
        await self.rest.sync_time()
        await self.user.start()
        await self.reconcile("subscribed")
        self._spawn(self._reconciler())

    async def close(self) -> None:
        self._closed = True
        if self.user is not None:
            await self.user.close()
        self._gap.set()
        self._changed.set()

    # -- inputs: the user stream (the read loop; never awaits) ----------------------------------

    def on_event(self, event: Any) -> None:
        if event.get("e") == "executionReport":
            confirmed = self._confirmed
            for key in ("c", "C"):  # a cancel's report names the order in C
                cid = event.get(key)
                if isinstance(cid, str) and cid in confirmed:
                    confirmed[cid] = True
        self.tracker.receive_event(event)
        self._publish()

    def on_gap(self, reason: str) -> None:
        """The user stream may have missed events: reconcile (soon, in the reconciler task)."""
        self._gap_reasons.append(reason)
        self._gap.set()

    def _publish(self) -> None:
        """Hand the tracker's new events to the consumers; wake whoever awaits an order."""
        events = self.tracker.events()
        if not events:
            return
        self._publish_to(events)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, client_order_id: str, done: Callable[[Order], bool]) -> Order:
        """The order once ``done(order)`` holds, re-checked after every change."""
        while True:
            order = self.tracker.get(client_order_id)
            if order is not None and done(order):
                return order
            if self.is_closed():
                raise StreamerClosed("the Streamer was closed")
            await self._changed.wait()

    # -- placement ------------------------------------------------------------------------------

    async def place(
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
        self._check_open()
        symbol, side, type = symbol.upper(), side.upper(), type.upper()
        filters = await self.rest.symbol_filters(symbol)
        reference = None
        if type == "MARKET":  # the notional of a MARKET order: the live book's, else the ticker
            reference = self._reference_price(symbol) or await self.rest.ticker_price(symbol)
        cid = client_order_id or self._new_client_id()
        params = prepare_order(
            filters,
            side=side,
            type=type,
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            client_order_id=cid,
            reference_price=reference,
        )
        held = self.tracker.get(cid)
        if held is not None and not held.terminal:  # Binance would refuse it: -2010 duplicate
            raise InvalidOrder(f"client order id {cid!r} names an open order", symbol=symbol)
        self.tracker.create(
            symbol=symbol,
            side=side,
            type=type,
            quantity=Decimal(params["quantity"]),
            price=Decimal(params["price"]) if "price" in params else None,
            stop_price=Decimal(params["stopPrice"]) if "stopPrice" in params else None,
            time_in_force=params.get("timeInForce"),
            client_order_id=cid,
        )
        self._publish()
        self._confirmed[cid] = False  # its executionReport may come before the answer
        sent_at = time.monotonic()
        try:
            body = await self._send(params, timeout or self.request_timeout)
        except UnknownOrderStatus as exc:
            self.counters["unknown"] += 1
            self.tracker.unknown(cid, str(exc))
            self._publish()
            log.warning("order %s: outcome unknown (%s); resolving", cid, exc)
            self._spawn(self._resolve(symbol, cid, sent_at))
            return OrderHandle(self, cid)
        except ConnectError as exc:
            # never sent: it cannot exist
            self._confirmed.pop(cid, None)
            self.counters["not_placed"] += 1
            self.tracker.rejected(cid, f"not sent: {exc}")
            self._publish()
            raise
        except ExchangeError as exc:  # definite: OrderRejected, RateLimited, IPBanned, ...
            self._confirmed.pop(cid, None)
            self.counters["rejected"] += 1
            self.tracker.rejected(cid, _reason(exc))
            self._publish()
            exc.client_order_id = cid
            raise
        except BaseException:
            # Cancelled by the caller (or anything else) with the request maybe sent: the order
            # may exist, so it is UNKNOWN and resolved like any other, never forgotten as SENT.
            self.counters["unknown"] += 1
            self.tracker.unknown(cid, "the placement was interrupted")
            self._publish()
            if not self.is_closed():  # closing: the task group takes no new task
                self._spawn(self._resolve(symbol, cid, sent_at))
            raise
        self.counters["placed"] += 1
        self.tracker.receive_rest_order(body, source="rest")
        self._publish()
        self._expect_event(cid)
        return OrderHandle(self, cid)

    async def _send(self, params: dict[str, str], seconds: float) -> dict[str, Any]:
        """The placement request; its round trip goes to the metrics when it was answered."""
        if self.metrics is None:
            return await self.rest.place_order(params, timeout=seconds)
        sent_at = time.monotonic()
        try:
            body = await self.rest.place_order(params, timeout=seconds)
        except (UnknownOrderStatus, ConnectError, TransportError):
            raise  # no answer: not a round trip
        except ExchangeError:
            self.metrics.order_round_trip(params["type"], time.monotonic() - sent_at)
            raise
        self.metrics.order_round_trip(params["type"], time.monotonic() - sent_at)
        return body

    async def cancel(self, symbol: str, client_order_id: str) -> Order:
        """Cancel by our client order id; the order as known after the answer. Raises
        ``OrderNotFound`` when the exchange does not know it (or it is already final), and
        ``UnknownOrderStatus`` when the answer was lost (the order is then reconciled)."""
        self._check_open()
        symbol = symbol.upper()
        self._confirmed[client_order_id] = False
        try:
            body = await self.rest.cancel_order(symbol, client_order_id=client_order_id)
        except (UnknownOrderStatus, ServerError):
            # the cancel may or may not have happened: its event or the next pass says which
            self.on_gap("cancel outcome unknown")
            raise
        except StreamerError as exc:
            self._confirmed.pop(client_order_id, None)
            exc.client_order_id = client_order_id
            raise
        self.tracker.receive_rest_order(body, source="rest")
        self._publish()
        self._expect_event(client_order_id)
        order = self.tracker.get(client_order_id)
        if order is None:  # an order we did not track until its cancel answer
            raise OrderNotFound(f"{client_order_id} is not tracked", symbol=symbol)
        return order

    def _expect_event(self, client_order_id: str) -> None:
        """The stream should confirm what REST said; if it does not within ``event_timeout``,
        it may be silent: the user stream resubscribes and we reconcile."""
        if self._confirmed.get(client_order_id) is False:
            self._spawn(self._watch_event(client_order_id))
        else:
            self._confirmed.pop(client_order_id, None)

    async def _watch_event(self, client_order_id: str) -> None:
        await asyncio.sleep(self.event_timeout)
        if self._confirmed.pop(client_order_id, True) or self._closed:
            return
        log.warning(
            "no user event for %s in %.1f s: suspecting the user stream",
            client_order_id,
            self.event_timeout,
        )
        if self.user is not None:
            self.user.suspect("missing events")

    async def _resolve(self, symbol: str, cid: str, sent_at: float) -> None:
        """Settle an UNKNOWN placement (protocol §5.4): its event, else a query with backoff."""
        if cid in self._resolving:
            return
        self._resolving.add(cid)
        backoff = Backoff(self._rng, initial=0.5, maximum=4.0)
        try:
            try:
                async with asyncio.timeout(min(self.event_timeout, 2.0)):
                    await self.wait_for(cid, lambda o: o.status is not OrderStatus.UNKNOWN)
                return
            except TimeoutError:
                pass
            while not self._closed:
                order = self.tracker.get(cid)
                if order is None or order.status is not OrderStatus.UNKNOWN:
                    return
                try:
                    body = await self.rest.query_order(symbol, client_order_id=cid)
                except OrderNotFound:
                    if time.monotonic() - sent_at >= self.not_placed_after:
                        self.counters["not_placed"] += 1
                        self.tracker.not_placed(
                            cid, f"no such order for {self.not_placed_after:.0f} s after sending"
                        )
                        self._publish()
                        return
                except (TransportError, ExchangeError) as exc:
                    log.info("query of %s failed (%s); retrying", cid, exc)
                else:
                    self.tracker.receive_rest_order(body, source="rest")
                    self._publish()
                    continue
                await asyncio.sleep(backoff.next_delay())
        finally:
            self._resolving.discard(cid)
            self._confirmed.pop(cid, None)

    # -- reconciliation -------------------------------------------------------------------------

    def is_closed(self) -> bool:
        # a call, not the attribute, in loops: type checkers would take it as constant
        return self._closed

    async def _reconciler(self) -> None:
        """Reconcile after each gap and on a jittered schedule, one pass at a time."""
        while not self.is_closed():
            interval = self.reconcile_interval
            timeout = None if interval is None else interval * (0.75 + 0.5 * self._rng())
            try:
                async with asyncio.timeout(timeout):
                    await self._gap.wait()
            except TimeoutError:
                pass
            if self.is_closed():
                return
            reasons, self._gap_reasons = self._gap_reasons or ["scheduled"], []
            self._gap.clear()
            try:
                await self.reconcile(reasons[0])
            except StreamerError as exc:
                self.counters["reconcile_errors"] += 1
                log.warning("reconciliation (%s) failed: %s; retrying", reasons[0], exc)
                self._gap_reasons.append(reasons[0])
                # after a 429/418 nothing may be sent before Retry-After anyway
                await asyncio.sleep((exc.retry_after or 0.0) + 1.0 + self._rng())
                self._gap.set()

    async def reconcile(self, reason: str = "requested") -> None:
        """One pass: open orders, every other live tracked order, new trades, balances."""
        async with self._reconciling:
            tracker, rest = self.tracker, self.rest
            symbols = sorted(tracker.active_symbols())
            missing: list[Order] = []
            if len(symbols) * _OPEN_ORDERS_ONE_WEIGHT < _OPEN_ORDERS_ALL_WEIGHT and symbols:
                for symbol in symbols:
                    rows = await rest.open_orders(symbol)
                    missing += tracker.receive_open_orders(rows, symbol)
            else:
                missing = tracker.receive_open_orders(await rest.open_orders(), None)
            self._publish()
            # Trades before the orders' states: a consumer sees the fills, then the status.
            for symbol in sorted(tracker.active_symbols()):
                await self._new_trades(symbol)
            for order in missing:
                try:
                    body = await rest.query_order(
                        order.symbol, client_order_id=order.client_order_id
                    )
                except OrderNotFound:
                    continue  # an UNKNOWN one: its resolver decides; anything else: next pass
                tracker.receive_rest_order(body, source="reconciliation")
                self._publish()
            await self._missing_fills()
            tracker.receive_account(await rest.account())
            tracker.reconciled(reason, len(missing))
            self.counters["reconciliations"] += 1
            self._publish()

    async def _new_trades(self, symbol: str) -> None:
        """Every trade since the last one seen on ``symbol``, page by page (``fromId``). A
        symbol with no trade seen yet is left to :meth:`_missing_fills`: its history before
        we tracked anything is not news."""
        last = self.tracker.last_trade_id(symbol)
        while last is not None:
            rows = await self.rest.my_trades(symbol, from_id=last + 1, limit=_TRADES_PAGE)
            self.tracker.receive_trades(symbol, rows)
            self._publish()
            if len(rows) < _TRADES_PAGE:
                return
            last = self.tracker.last_trade_id(symbol)

    async def _missing_fills(self) -> None:
        """The trades of every order whose reported fills do not add up to its executed
        quantity (``myTrades?orderId=``, weight 5 each)."""
        tracker = self.tracker
        for order in tracker.orders():
            if order.order_id is None or not order.executed_qty:
                continue
            filled = sum((f.qty for f in tracker.fills(order.client_order_id)), Decimal(0))
            if filled < order.executed_qty:
                rows = await self.rest.my_trades(order.symbol, order_id=order.order_id)
                tracker.receive_trades(order.symbol, rows)
                self._publish()

    # -- reading --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StreamerClosed("the Streamer was closed")


def _reason(exc: StreamerError) -> str:
    code = f"{exc.code} " if exc.code is not None else ""
    return f"{code}{exc}"
