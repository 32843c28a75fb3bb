"""Orders through a running ``Streamer`` against the local exchange, every order-side fault
included: no order is ever placed twice, every fill the exchange made is reported exactly once,
and after reconciliation the tracked orders and balances equal the exchange's true state
(``/_fake/orders``, ``/_fake/balances``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest

from streamer import (
    Balance,
    ConfigurationError,
    ConnectionClosed,
    ConnectionRotated,
    Credentials,
    Fill,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    OrderStatus,
    OrderUpdate,
    RateLimited,
    Reconciled,
    Streamer,
    UnknownSymbol,
)
from streamer.order_models import OrderEvent
from streamer.testing import FakeExchange
from streamer.testing.exchange.faults import Fault, FaultKind
from tests.helpers import ed25519_pems
from tests.integration.live import EventLog, T

SYMBOL = "BTCUSDT"


@pytest.fixture
async def ex() -> AsyncIterator[FakeExchange]:
    """A still market (rate 0): prices and fills are ours alone to make."""
    async with FakeExchange(symbols=[SYMBOL, "ETHBTC"], seed=7, rate=0) as exchange:
        yield exchange


@pytest.fixture
async def keys(ex: FakeExchange) -> dict[str, str]:
    return await ex.create_account()


def streamer(ex: FakeExchange, keys: dict[str, str], **settings: Any) -> Streamer:
    settings.setdefault("not_placed_after", 2.0)
    settings.setdefault("event_timeout", 1.0)
    settings.setdefault("reconcile_interval", None)
    return Streamer(
        ex.endpoints,
        credentials=Credentials(keys["apiKey"], keys["secretKey"]),
        audit_interval=None,
        **settings,
    )


class Events:
    """Every order event of a Streamer, kept, with a way to await the next that matches."""

    def __init__(self, s: Streamer) -> None:
        self.seen: list[OrderEvent] = []
        self._iter = s.order_updates()
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def start(self) -> Events:
        self._task = asyncio.create_task(self._pump())
        await asyncio.sleep(0)
        return self

    async def _pump(self) -> None:
        async for event in self._iter:
            self.seen.append(event)
            self._new.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait(self, check: Any) -> None:
        """Until ``check()`` holds, re-checked on every new event."""
        async with asyncio.timeout(T):
            while not check():
                self._new.clear()
                await self._new.wait()

    def fills(self) -> list[Fill]:
        return [e for e in self.seen if isinstance(e, Fill)]

    def updates(self, cid: str) -> list[OrderUpdate]:
        return [
            e for e in self.seen if isinstance(e, OrderUpdate) and e.order.client_order_id == cid
        ]


async def price_levels(ex: FakeExchange, symbol: str = SYMBOL) -> tuple[Decimal, Decimal]:
    book = await ex.book(symbol)
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


def min_qty(ex: FakeExchange, price: Decimal, symbol: str = SYMBOL, times: int = 2) -> Decimal:
    """A quantity worth ``times`` the symbol's minimum notional at ``price``, on its step."""
    info = ex.engine.symbols[symbol]
    steps = (info.min_notional * times / price / info.step_size).to_integral_value(ROUND_CEILING)
    return max(steps * info.step_size, info.min_qty)


async def account_id(ex: FakeExchange, keys: dict[str, str]) -> int:
    return ex.auth.account_of(keys["apiKey"])


async def assert_equals_exchange(s: Streamer, ex: FakeExchange, keys: dict[str, str]) -> None:
    """Tracked orders and balances equal the exchange's truth; no client id placed twice."""
    truth = await ex.orders(keys["apiKey"])
    cids = [row["clientOrderId"] for row in truth]
    assert len(cids) == len(set(cids)), "an order was placed twice"
    tracked = {o.client_order_id: o for o in s.orders()}
    for row in truth:
        order = tracked[row["clientOrderId"]]
        assert order.order_id == row["orderId"]
        assert order.status.value == row["status"], (order, row)
        assert order.executed_qty == Decimal(row["executedQty"])
    placed = {
        cid
        for cid, o in tracked.items()
        if o.status not in (OrderStatus.REJECTED, OrderStatus.NOT_PLACED)
    }
    assert placed == set(cids)
    balances = await ex.balances(keys["apiKey"])
    held = s.balances()
    for asset, row in balances.items():
        if Decimal(row["free"]) or Decimal(row["locked"]) or asset in held:
            assert held[asset].free == Decimal(row["free"]), asset
            assert held[asset].locked == Decimal(row["locked"]), asset


async def assert_fills_once(events: Events, ex: FakeExchange, keys: dict[str, str]) -> None:
    """Every trade the exchange made for the account is reported as exactly one Fill."""
    account = await account_id(ex, keys)
    trades = ex.engine.my_trades(account, symbol=SYMBOL, limit=None)
    reported = [f.trade_id for f in events.fills() if f.symbol == SYMBOL]
    assert sorted(reported) == sorted(int(t["id"]) for t in trades)


async def place_raw(
    ex: FakeExchange, keys: dict[str, str], symbol: str, side: str, type: str, qty: Decimal
) -> None:
    """An order of another account, straight into the engine (no client of ours involved)."""
    ex.engine.place_order(
        ex.auth.account_of(keys["apiKey"]), symbol=symbol, side=side, order_type=type,
        quantity=qty, price=None, time_in_force=None, client_order_id=None,
        now_ms=int(time.time() * 1000),
    )  # fmt: skip


async def resting_buy(s: Streamer, ex: FakeExchange, **kw: Any) -> Any:
    bid, _ = await price_levels(ex)
    price = bid - 50 * ex.engine.symbols[SYMBOL].tick_size
    return await s.place_order(
        SYMBOL, "BUY", "LIMIT", quantity=min_qty(ex, price), price=price,
        time_in_force="GTC", **kw,
    )  # fmt: skip


# -- the happy paths ----------------------------------------------------------------------------


async def test_place_rest_and_cancel(ex: FakeExchange, keys: dict[str, str]) -> None:
    """A LIMIT order rests (NEW, seen on REST and the stream), then cancels; state equals truth."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        order = await resting_buy(s, ex)
        assert order.status is OrderStatus.NEW and order.order.order_id is not None
        cid = order.client_order_id
        await events.wait(lambda: any(u.source == "stream" for u in events.updates(cid)))
        cancelled = await s.cancel_order(SYMBOL, order.client_order_id)
        assert cancelled.status is OrderStatus.CANCELED
        assert cancelled.client_order_id == order.client_order_id  # not the cancel's id
        await order.wait(timeout=T)
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)
        statuses = [u.order.status for u in events.updates(order.client_order_id)]
        assert statuses == [OrderStatus.SENT, OrderStatus.NEW, OrderStatus.CANCELED]
        await events.stop()


async def test_maker_and_taker_fills_reported_once(ex: FakeExchange, keys: dict[str, str]) -> None:
    """Our resting SELL inside the spread is taken by our MARKET BUY: both fills once each, with
    commissions, balances equal to truth."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        bid, ask = await price_levels(ex)
        tick = ex.engine.symbols[SYMBOL].tick_size
        price = ask - tick if ask - tick > bid else ask
        qty = min_qty(ex, price)
        maker = await s.place_order(
            SYMBOL, "SELL", "LIMIT", quantity=qty, price=price, time_in_force="GTC"
        )
        taker = await s.place_order(SYMBOL, "BUY", "MARKET", quantity=qty)
        assert (await taker.wait(timeout=T)).status is OrderStatus.FILLED
        assert (await maker.wait(timeout=T)).status is OrderStatus.FILLED
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)
        await assert_fills_once(events, ex, keys)
        assert any(isinstance(e, Balance) for e in events.seen)
        await events.stop()


# -- unknown outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["5xx", "1007"])
@pytest.mark.parametrize("stream", ["live", "silent"])
async def test_unknown_outcome_placed_resolves_without_resend(
    ex: FakeExchange, keys: dict[str, str], kind: str, stream: str
) -> None:
    """A 5xx / -1007 for a placed order: resolved to its real state without a resend, by its
    executionReport (which may beat the error answer) or, the stream silent, by the query."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        await s.track_orders()
        if stream == "silent":
            ex.faults.silence_user_stream(await account_id(ex, keys), count=3)
        if kind == "5xx":
            ex.faults.order_5xx(placed=True)
        else:
            ex.faults.order_1007(placed=True)
        order = await resting_buy(s, ex)
        resolved = await order.resolved(timeout=T)
        assert resolved.status is OrderStatus.NEW
        statuses = [u.order.status for u in events.updates(order.client_order_id)]
        if stream == "silent":  # the error came first: UNKNOWN, then the query found it
            assert statuses == [OrderStatus.SENT, OrderStatus.UNKNOWN, OrderStatus.NEW]
            assert events.updates(order.client_order_id)[-1].source == "rest"
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


@pytest.mark.parametrize("kind", ["5xx", "1007"])
async def test_unknown_outcome_not_placed_becomes_not_placed(
    ex: FakeExchange, keys: dict[str, str], kind: str
) -> None:
    """A 5xx / -1007 for an order never placed: UNKNOWN, then NOT_PLACED after the query
    kept answering "no such order"; nothing on the exchange."""
    async with streamer(ex, keys) as s:
        if kind == "5xx":
            ex.faults.order_5xx(placed=False)
        else:
            ex.faults.order_1007(placed=False)
        order = await resting_buy(s, ex)
        assert order.status is OrderStatus.UNKNOWN
        assert (await order.resolved(timeout=T)).status is OrderStatus.NOT_PLACED
        assert await ex.orders(keys["apiKey"]) == []
        await assert_equals_exchange(s, ex, keys)


@pytest.mark.parametrize("drop", [False, True])
async def test_timeout_after_placing(ex: FakeExchange, keys: dict[str, str], drop: bool) -> None:
    """The answer is held past our timeout (then sent, or the connection dropped) and the
    stream is silent: UNKNOWN, resolved by the query, placed exactly once."""
    async with streamer(ex, keys, order_timeout=0.5) as s:
        events = await Events(s).start()
        await s.track_orders()
        ex.faults.silence_user_stream(await account_id(ex, keys), count=3)
        ex.faults.order_timeout(2000, drop=drop)
        order = await resting_buy(s, ex)
        assert order.status is OrderStatus.UNKNOWN
        assert (await order.resolved(timeout=T)).status is OrderStatus.NEW
        await asyncio.sleep(2.0)  # the held answer arrives (or not) after we gave up on it
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)
        statuses = [u.order.status for u in events.updates(order.client_order_id)]
        assert statuses == [OrderStatus.SENT, OrderStatus.UNKNOWN, OrderStatus.NEW]
        await events.stop()


async def test_timeout_resolved_by_the_stream(ex: FakeExchange, keys: dict[str, str]) -> None:
    """The answer is held past our timeout, the executionReport comes: the order is NEW from
    the stream, never sent twice."""
    async with streamer(ex, keys, order_timeout=0.5) as s:
        await s.track_orders()
        ex.faults.user_events_after_response(delay_ms=0)
        ex.faults.order_timeout(1500)
        order = await resting_buy(s, ex)
        assert (await order.resolved(timeout=T)).status is OrderStatus.NEW
        await asyncio.sleep(1.5)
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)


# -- event order, duplicates, gaps --------------------------------------------------------------


async def test_events_after_the_response(ex: FakeExchange, keys: dict[str, str]) -> None:
    """With the executionReport after the REST answer, the order ends the same, fills once."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        _, ask = await price_levels(ex)
        ex.faults.user_events_after_response(count=2, delay_ms=200)
        taker = await s.place_order(SYMBOL, "BUY", "MARKET", quantity=min_qty(ex, ask))
        assert taker.status is OrderStatus.FILLED  # from the FULL answer
        await asyncio.sleep(0.5)  # the events follow the answer
        await s.reconcile()
        await assert_fills_once(events, ex, keys)
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_silent_user_stream_is_caught_and_reconciled(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """The stream goes quiet during fills: the missing confirmation is noticed, the stream
    resubscribed, and reconciliation reports every fill once."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        await s.track_orders()
        account = await account_id(ex, keys)
        ex.faults.silence_user_stream(account, count=20)
        _, ask = await price_levels(ex)
        qty = min_qty(ex, ask)
        await s.place_order(SYMBOL, "BUY", "MARKET", quantity=qty)
        await s.place_order(SYMBOL, "BUY", "MARKET", quantity=qty)
        await events.wait(
            lambda: any(isinstance(e, Reconciled) and e.reason != "subscribed" for e in events.seen)
        )
        await assert_fills_once(events, ex, keys)
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_terminated_user_stream_resubscribes(ex: FakeExchange, keys: dict[str, str]) -> None:
    """eventStreamTerminated instead of an order's events: resubscribe, reconcile (the order's
    state comes from the snapshot); later events arrive on the stream again."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        await s.track_orders()
        ex.faults.terminate_user_stream(await account_id(ex, keys))
        first = await resting_buy(s, ex)
        await events.wait(
            lambda: any(isinstance(e, Reconciled) and e.reason != "subscribed" for e in events.seen)
        )
        second = await resting_buy(s, ex)
        await events.wait(
            lambda: any(u.source == "stream" for u in events.updates(second.client_order_id))
        )
        assert first.status is OrderStatus.NEW
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_dropped_wsapi_connection_reconnects(ex: FakeExchange, keys: dict[str, str]) -> None:
    """The WS-API connection drops: a new one subscribes, reconciles, and fills made meanwhile
    are reported once."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        await s.track_orders()
        ex.faults.disconnect(channel="wsapi")
        _, ask = await price_levels(ex)
        await s.place_order(SYMBOL, "BUY", "MARKET", quantity=min_qty(ex, ask))
        await events.wait(
            lambda: any(isinstance(e, Reconciled) and e.reason != "subscribed" for e in events.seen)
        )
        await s.reconcile()
        await assert_fills_once(events, ex, keys)
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_rate_limited_burst_places_nothing_twice(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """429 during a burst: the refused orders are REJECTED with RateLimited, the others placed
    once, nothing is duplicated."""
    async with streamer(ex, keys) as s:
        await resting_buy(s, ex)  # the symbol's filters are known: the burst is orders only
        ex.faults.rate_limit(count=2, status=429, retry_after=1)
        results: list[Any] = []
        for _ in range(5):
            try:
                results.append(await resting_buy(s, ex))
            except RateLimited as exc:
                results.append(exc)
        refused = [r for r in results if isinstance(r, RateLimited)]
        assert len(refused) == 2
        assert all(r.client_order_id for r in refused)
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)


# -- bad input ----------------------------------------------------------------------------------


async def test_bad_parameters_are_local_errors(ex: FakeExchange, keys: dict[str, str]) -> None:
    """Unknown symbol, a price off the tick, a quantity under the step, negative or
    non-numeric amounts: errors before anything is sent."""
    async with streamer(ex, keys) as s:
        bid, _ = await price_levels(ex)
        info = ex.engine.symbols[SYMBOL]
        qty = min_qty(ex, bid)
        with pytest.raises(UnknownSymbol):
            await s.place_order("NOPEUSDT", "BUY", "LIMIT", quantity="1", price="1",
                                time_in_force="GTC")  # fmt: skip
        with pytest.raises(InvalidOrder) as off_tick:
            half_tick = bid + info.tick_size / 2
            await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=qty, price=half_tick,
                                time_in_force="GTC")  # fmt: skip
        assert off_tick.value.filter == "PRICE_FILTER"
        with pytest.raises(InvalidOrder) as off_step:
            await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=qty + info.step_size / 2,
                                price=bid, time_in_force="GTC")  # fmt: skip
        assert off_step.value.filter == "LOT_SIZE"
        for bad in ("-1", "abc", "nan"):
            with pytest.raises(InvalidOrder):
                await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=bad, price=bid,
                                    time_in_force="GTC")  # fmt: skip
        assert await ex.orders(keys["apiKey"]) == []


async def test_rejections_and_unknown_cancels(ex: FakeExchange, keys: dict[str, str]) -> None:
    """Insufficient balance is OrderRejected (REJECTED, code -2010); cancelling an unknown
    order is OrderNotFound."""
    async with streamer(ex, keys) as s:
        bid, _ = await price_levels(ex)
        info = ex.engine.symbols[SYMBOL]
        with pytest.raises(OrderRejected) as rejected:
            await s.place_order(SYMBOL, "BUY", "LIMIT", quantity=info.max_qty, price=bid,
                                time_in_force="GTC")  # fmt: skip
        assert rejected.value.code == -2010
        cid = rejected.value.client_order_id
        assert cid is not None
        order = next(o for o in s.orders() if o.client_order_id == cid)
        assert order.status is OrderStatus.REJECTED
        with pytest.raises(OrderNotFound):
            await s.cancel_order(SYMBOL, "nosuchorder")


async def test_orders_need_credentials(ex: FakeExchange) -> None:
    """Without credentials the order methods raise ConfigurationError, before any I/O."""
    async with Streamer(ex.endpoints, audit_interval=None) as s:
        with pytest.raises(ConfigurationError):
            await s.place_order(SYMBOL, "BUY", "MARKET", quantity="1")


# -- connections ---------------------------------------------------------------------------------


async def test_server_shutdown_rotates_without_a_gap(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """serverShutdown on the WS-API: a new session subscribes before the old one closes, no
    reconciliation is needed, and an order's events arrive once on the new one."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        log = EventLog(s.events())
        await s.track_orders()
        ex.faults.server_shutdown(channel="wsapi", delay_ms=1500)
        rotated = await log.wait(ConnectionRotated)
        assert rotated.reason == "serverShutdown"
        assert not log.of(ConnectionClosed)
        order = await resting_buy(s, ex)
        cid = order.client_order_id
        await events.wait(lambda: any(u.source == "stream" for u in events.updates(cid)))
        assert not [
            e for e in events.seen if isinstance(e, Reconciled) and e.reason != "subscribed"
        ]
        await events.stop()


async def test_lifetime_rotation_passes_every_event_once(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """Rotation before the lifetime while orders fill: each fill is reported once, even those
    delivered by both sessions during the overlap."""
    async with streamer(ex, keys, lifetime=1.0) as s:
        events = await Events(s).start()
        log = EventLog(s.events())
        await s.track_orders()
        _, ask = await price_levels(ex)
        for _ in range(6):
            await s.place_order(SYMBOL, "BUY", "MARKET", quantity=min_qty(ex, ask))
            await asyncio.sleep(0.3)
        assert (await log.wait(ConnectionRotated)).reason == "lifetime"
        await s.reconcile()
        await assert_fills_once(events, ex, keys)
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_ed25519_key_logs_on_and_trades(ex: FakeExchange) -> None:
    """An Ed25519 key: session.logon + userDataStream.subscribe, signed REST; orders tracked."""
    private_pem, public_pem = ed25519_pems()
    keys = await ex.create_account(ed25519_public_key_pem=public_pem)
    credentials = Credentials.ed25519(keys["apiKey"], private_pem)
    async with Streamer(
        ex.endpoints, credentials=credentials, audit_interval=None, reconcile_interval=None
    ) as s:
        events = await Events(s).start()
        order = await resting_buy(s, ex)
        cid = order.client_order_id
        await events.wait(lambda: any(u.source == "stream" for u in events.updates(cid)))
        await s.cancel_order(SYMBOL, cid)
        await order.wait(timeout=T)
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_scheduled_reconciliation_catches_a_silent_fill(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """A resting order filled while the stream is silent is found by the scheduled pass
    (reason "scheduled"), its fill reported once with source reconciliation."""
    async with streamer(ex, keys, reconcile_interval=1.0, event_timeout=30.0) as s:
        events = await Events(s).start()
        _, ask = await price_levels(ex)
        tick = ex.engine.symbols[SYMBOL].tick_size
        qty = min_qty(ex, ask)
        maker = await s.place_order(
            SYMBOL, "SELL", "LIMIT", quantity=qty, price=ask - tick, time_in_force="GTC"
        )
        cid = maker.client_order_id
        await events.wait(lambda: any(u.source == "stream" for u in events.updates(cid)))
        ex.faults.silence_user_stream(await account_id(ex, keys), count=None)
        other = await ex.create_account()  # another account takes our order
        await place_raw(ex, other, SYMBOL, "BUY", "MARKET", qty)
        await events.wait(lambda: maker.status is OrderStatus.FILLED)
        await events.wait(lambda: isinstance(events.seen[-1], Reconciled))
        fills = [f for f in events.fills() if f.client_order_id == cid]
        assert [f.source for f in fills] == ["reconciliation"]
        assert any(isinstance(e, Reconciled) and e.reason == "scheduled" for e in events.seen)
        ex.faults.clear()
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_typed_rest_on_the_streamer(ex: FakeExchange, keys: dict[str, str]) -> None:
    """``s.rest`` answers the typed calls on the Streamer's session: ticker, depth, account,
    a test order with commission rates."""
    async with streamer(ex, keys) as s:
        bid, ask = await price_levels(ex)
        price = await s.rest.ticker_price(SYMBOL)
        assert bid <= price <= ask or price > 0
        depth = await s.rest.depth(SYMBOL, 5)
        assert Decimal(depth["bids"][0][0]) == bid
        account = await s.rest.account()
        assert {b["asset"] for b in account["balances"]} >= {"BTC", "USDT"}
        params = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.5"}
        assert isinstance(await s.rest.test_order(params, compute_commission_rates=True), dict)


@pytest.mark.parametrize("fault", ["duplicate", "reorder"])
async def test_duplicate_and_reordered_execution_reports(
    ex: FakeExchange, keys: dict[str, str], fault: str
) -> None:
    """Every user event sent twice, or each held back behind the next: fills once, states
    never backwards, the end state equals the exchange's."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        await s.track_orders()
        account = await account_id(ex, keys)
        if fault == "duplicate":
            ex.faults.duplicate_user_events(account, count=40)
        else:
            ex.faults.reorder_user_events(account, count=40, delay_ms=300)
        _, ask = await price_levels(ex)
        tick = ex.engine.symbols[SYMBOL].tick_size
        qty = min_qty(ex, ask)
        maker = await s.place_order(
            SYMBOL, "SELL", "LIMIT", quantity=qty * 3, price=ask - tick, time_in_force="GTC"
        )
        for _ in range(3):  # three partial fills of our maker, each by our own taker
            await s.place_order(SYMBOL, "BUY", "MARKET", quantity=qty)
        await maker.wait(timeout=T)
        await asyncio.sleep(0.5)  # what is held back arrives
        await s.reconcile()
        await assert_fills_once(events, ex, keys)
        await assert_equals_exchange(s, ex, keys)
        rank = {OrderStatus.SENT: 0, OrderStatus.NEW: 1, OrderStatus.PARTIALLY_FILLED: 2}
        seen = [rank.get(u.order.status, 3) for u in events.updates(maker.client_order_id)]
        assert seen == sorted(seen), "a state went backwards"
        filled = [u.order.executed_qty for u in events.updates(maker.client_order_id)]
        assert filled == sorted(filled)
        await events.stop()


async def test_stop_loss_limit_tracked_through_its_trigger(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """A STOP_LOSS_LIMIT SELL rests not working, triggers when our own trade prints at its
    stop, becomes working, then fills; every step arrives as an update, with commission."""
    async with streamer(ex, keys) as s:
        events = await Events(s).start()
        bid, _ = await price_levels(ex)
        info = ex.engine.symbols[SYMBOL]
        qty = min_qty(ex, bid)
        stop = await s.place_order(
            SYMBOL, "SELL", "STOP_LOSS_LIMIT", quantity=qty, price=bid - 20 * info.tick_size,
            stop_price=bid, time_in_force="GTC",
        )  # fmt: skip
        assert stop.status is OrderStatus.NEW and stop.order.working is False
        await s.place_order(SYMBOL, "SELL", "MARKET", quantity=qty)  # prints at the best bid
        done = await stop.wait(timeout=T)
        assert done.status is OrderStatus.FILLED
        cid = stop.client_order_id
        await events.wait(lambda: events.updates(cid)[-1].order.status is OrderStatus.FILLED)
        working = [u.order.working for u in events.updates(stop.client_order_id)]
        assert True in working  # it became working when triggered
        fills = [f for f in events.fills() if f.client_order_id == stop.client_order_id]
        assert fills and all(f.commission > 0 for f in fills)
        await s.reconcile()
        await assert_equals_exchange(s, ex, keys)
        await events.stop()


async def test_a_cancelled_placement_is_resolved_not_forgotten(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """The caller gives up on place_order mid-request (its own timeout): the order is UNKNOWN,
    then resolved to what the exchange did; never left SENT, never sent twice."""
    async with streamer(ex, keys) as s:
        await s.track_orders()
        ex.faults.order_timeout(1500)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await resting_buy(s, ex)
        [order] = s.orders()
        assert order.status in (OrderStatus.UNKNOWN, OrderStatus.NEW)
        await s.reconcile()  # openOrders has it, by its client order id
        assert s.orders()[0].status is OrderStatus.NEW
        await asyncio.sleep(1.5)
        await assert_equals_exchange(s, ex, keys)


async def test_an_order_fault_for_one_account_spares_the_others(
    ex: FakeExchange, keys: dict[str, str]
) -> None:
    """An order fault naming an account fires for that account's order only."""
    other = await ex.create_account()
    async with streamer(ex, keys) as s, streamer(ex, other) as t:
        await s.track_orders()
        await t.track_orders()
        ex.faults.add(Fault(FaultKind.ORDER_5XX_NOT_PLACED, account_id=await account_id(ex, other)))
        spared = await resting_buy(s, ex)
        assert spared.status is OrderStatus.NEW
        hit = await resting_buy(t, ex)
        assert (await hit.resolved(timeout=T)).status is OrderStatus.NOT_PLACED
