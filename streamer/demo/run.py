"""The demo's run: follow the plan against the local exchange, say what happens, count it.

Everything the summary reports is counted from what the ``Streamer`` said (its events, order
updates and stats) or read from the exchange's truth at the end, never assumed from the plan:
a fault that did not fire, a drift that was not caught or an order that was refused shows up as
such. The final check pauses the market, waits until every book has reached the true book's
update id and compares every level (``violations``), and compares every order the exchange
holds with the order as tracked (``order_mismatches``); ``duplicate_orders`` counts client
order ids the exchange holds more than once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from streamer.aio.streamer import Streamer
from streamer.demo.plan import FAULTS, Action, Step, plan
from streamer.errors import StreamerError
from streamer.models import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRotated,
    EventsLost,
    SnapshotError,
    StreamerEvent,
)
from streamer.order_models import Fill, OrderEvent, OrderStatus, OrderUpdate, Reconciled
from streamer.sansio.book_sync import AuditInconclusive, AuditPassed, DriftDetected, Reset, Synced
from streamer.sansio.wire import Malformed
from streamer.testing import FakeExchange

__all__ = ["Demo", "Line", "SymbolRules"]

LINES = 14  # event lines kept for the screen
NOTIONAL = Decimal(30)  # quote value of each order: above every MIN_NOTIONAL served
CHECK_TIMEOUT = 10.0  # seconds the final check waits for a book, or for the orders to settle
CYCLE = 40.0  # seconds of one cycle of the plan when the demo runs until Ctrl-C
TAIL = 0.4  # seconds kept free at the end of a timed run, after the last step
GRACE = 3.0  # seconds a step under way at the stop may take to finish
OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_NEW})


@dataclass(frozen=True, slots=True)
class Line:
    """One event line: ``at`` seconds into the run, a ``kind`` (its colour) and the words."""

    at: float
    kind: str  # "fault", "heal", "order", "fill", "audit", "info", "bad"
    text: str


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """What an order on a symbol must respect: price tick, quantity step."""

    tick: Decimal
    step: Decimal

    @classmethod
    def from_info(cls, entry: dict[str, Any]) -> SymbolRules:
        filters = {f["filterType"]: f for f in entry.get("filters", [])}
        return cls(
            Decimal(filters["PRICE_FILTER"]["tickSize"]), Decimal(filters["LOT_SIZE"]["stepSize"])
        )

    def price(self, value: Decimal) -> Decimal:
        return (value / self.tick).to_integral_value(ROUND_DOWN) * self.tick

    def quantity(self, price: Decimal) -> Decimal:
        """The smallest quantity worth ``NOTIONAL`` at ``price``."""
        return (NOTIONAL / price / self.step).to_integral_value(ROUND_UP) * self.step


class Demo:
    """One demo run over a started exchange and Streamer (credentials of a funded account)."""

    def __init__(
        self,
        ex: FakeExchange,
        s: Streamer,
        api_key: str,
        symbols: list[str],
        *,
        ends_at: float | None,
        audit_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ex = ex
        self.s = s
        self.api_key = api_key
        self.symbols = symbols
        # With an end: one cycle fills the time left once the books are synced (set then);
        # without: a cycle of CYCLE seconds, again and again.
        self.ends_at = ends_at
        self.cycle = CYCLE
        self.repeat = ends_at is None
        self.audit_interval = audit_interval
        self.clock = clock
        self.started = clock()
        self.lines: deque[Line] = deque(maxlen=LINES)
        self.faults: Counter[str] = Counter()
        self.resets: Counter[str] = Counter()
        self.last_reset: dict[str, str] = {}  # symbol -> the reason of its last resync
        self.placed = 0  # placements the exchange accepted (its truth is counted at the end)
        self.refused = 0
        self.fill_ids: set[tuple[str, int]] = set()
        self.cycles = 0
        self.rules: dict[str, SymbolRules] = {}
        self._resting: list[tuple[str, str]] = []  # (symbol, client order id)
        self._drift: dict[str, asyncio.Event] = {sym: asyncio.Event() for sym in symbols}
        self._audited: set[str] = set()
        self._orders_changed = asyncio.Event()
        self._seen_counters: dict[str, tuple[int, int]] = {}
        self._duplicates: dict[str, int] = {}  # symbol -> duplicated diffs not yet seen dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self._pumps: list[asyncio.Task[None]] = []

    # -- saying what happens ------------------------------------------------------------------

    def now(self) -> float:
        return self.clock() - self.started

    def say(self, kind: str, text: str) -> None:
        self.lines.append(Line(self.now(), kind, text))

    def _market_event(self, event: StreamerEvent) -> None:
        if isinstance(event, Synced):
            self.say("heal", f"{event.symbol} synced at update {event.last_update_id}")
        elif isinstance(event, Reset):
            self.resets[event.reason.value] += 1
            self.last_reset[event.symbol] = event.reason.value
            self.say("bad", f"{event.symbol} resync ({event.reason.value}): {event.detail}")
        elif isinstance(event, DriftDetected):
            self._drift[event.symbol].set()
            diffs = "; ".join(
                f"{m.side} {m.price} ours {m.actual} theirs {m.expected}"
                for m in event.mismatches[:2]
            )
            self.say("bad", f"{event.symbol} DRIFT caught by an audit: {diffs}")
        elif isinstance(event, AuditPassed):
            if event.symbol not in self._audited:  # the first per symbol; the table counts all
                self._audited.add(event.symbol)
                self.say("audit", f"{event.symbol} audit passed ({event.levels_checked} levels)")
        elif isinstance(event, AuditInconclusive):
            self.say("info", f"{event.symbol} audit inconclusive: {event.reason}")
        elif isinstance(event, ConnectionClosed):
            self.say("bad", f"connection {event.connection} closed: {event.reason}")
        elif isinstance(event, ConnectionOpened):
            if event.reconnect:
                self.say("heal", f"connection {event.connection} reopened ({event.symbols} books)")
        elif isinstance(event, ConnectionRotated):
            self.say("info", f"connection {event.connection} rotated: {event.reason}")
        elif isinstance(event, Malformed):
            self.say("bad", f"malformed frame skipped: {event.reason}")
        elif isinstance(event, SnapshotError):
            self.say("bad", f"{event.symbol} snapshot failed: {event.error}")
        elif isinstance(event, EventsLost):
            self.say("bad", f"{event.count} events lost by the demo's reader")

    def _order_event(self, event: OrderEvent) -> None:
        self._orders_changed.set()
        if isinstance(event, OrderUpdate) and event.order.status is not OrderStatus.SENT:
            o = event.order
            price = f" @ {o.price.normalize():f}" if o.price else ""
            stop = f" stop {o.stop_price.normalize():f}" if o.stop_price else ""
            self.say(
                "order",
                f"{o.symbol} {o.side} {o.type} {o.quantity.normalize():f}{price}{stop}: "
                f"{o.status.value} ({event.source})",
            )
        elif isinstance(event, Fill):
            key = (event.symbol, event.trade_id)
            if key not in self.fill_ids:
                self.fill_ids.add(key)
                self.say(
                    "fill",
                    f"{event.symbol} fill {event.qty.normalize():f} @ {event.price.normalize():f} "
                    f"(trade {event.trade_id}, fee {event.commission.normalize():f} "
                    f"{event.commission_asset or ''})",
                )
        elif isinstance(event, Reconciled) and event.corrections:
            self.say("info", f"reconciled ({event.reason}): {event.corrections} corrections")

    def _watch_counters(self) -> None:
        """Say what the books' counters show and no event does: stale diffs dropped (the
        duplicates), stale snapshots fetched again."""
        for symbol in self.symbols:
            sync = self.s.books.books.get(symbol)
            if sync is None:
                continue
            now = (sync.counters.dropped, sync.counters.stale_snapshots)
            before = self._seen_counters.get(symbol, now)
            self._seen_counters[symbol] = now
            # Stale diffs are dropped in every resync too (those the snapshot already holds):
            # only while duplicates are due are the drops theirs.
            if now[0] > before[0] and self._duplicates.get(symbol):
                n = min(now[0] - before[0], self._duplicates[symbol])
                self._duplicates[symbol] -= n
                self.say("heal", f"{symbol} {n} duplicated diff(s) dropped as stale; no resync")
            if now[1] > before[1]:
                self.say("heal", f"{symbol} snapshot older than the buffered diffs: fetched again")

    # -- the run ------------------------------------------------------------------------------

    async def setup(self) -> None:
        """Read the symbols' filters, start tracking the account's orders, wait for the books
        to sync (bounded: a book that does not sync shows as such and is skipped by orders)."""
        info = await self.s.rest.exchange_info(self.symbols)
        for entry in info["symbols"]:
            self.rules[entry["symbol"]] = SymbolRules.from_info(entry)
        await self.s.track_orders()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CHECK_TIMEOUT):
                for symbol in self.symbols:
                    if not self.s.view(symbol).synced:
                        async for _ in self.s.book(symbol):
                            if self.s.view(symbol).synced:
                                break
        if self.ends_at is not None:
            self.cycle = max(1.0, self.ends_at - self.clock() - TAIL)
        self.say("info", f"orders tracked, books synced; the plan runs over {self.cycle:.0f} s")

    async def run(self, stop: asyncio.Event) -> None:
        """Pump events and follow the plan until ``stop``; the steps under way are finished."""
        events = self.s.events()
        updates = self.s.order_updates()

        async def market() -> None:
            async for event in events:
                self._market_event(event)

        async def orders() -> None:
            async for event in updates:
                self._order_event(event)

        async def counters() -> None:
            while True:
                self._watch_counters()
                await asyncio.sleep(0.25)

        pumps = [asyncio.create_task(c) for c in (market(), orders(), counters())]
        self.say("info", f"exchange up; books syncing: {', '.join(self.symbols)}")
        try:
            await self.setup()
            # The schedule stops between two steps; the background steps (a stop order, the
            # drift watch) get a moment to finish their request, so that no order is left
            # mid-flight, and are cancelled after it.
            await self._schedule(stop)
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=GRACE)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self._watch_counters()
            for event in events.take_all():
                self._market_event(event)
            self._pumps = pumps  # stopped by finish(): the check still needs the updates

    async def _schedule(self, stop: asyncio.Event) -> None:
        """Follow the plan (again each cycle when repeating) until ``stop``."""

        async def until(at: float) -> bool:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at - self.clock()))
            return not stop.is_set()

        while not stop.is_set():
            start = self.clock()
            self.cycles += 1
            for step in plan(self.symbols, self.cycle):
                if not await until(start + step.at):
                    return
                await self._do(step)
            if not self.repeat:
                await stop.wait()
                return
            await until(start + self.cycle)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _do(self, step: Step) -> None:
        sym = step.symbol
        if step.action in FAULTS:
            self._inject(step)
        elif step.action is Action.CANCEL:
            await self._cancel_resting()
        elif step.action is Action.STOP:
            self._background(self._stop_order(sym))
        else:
            await self._order(step)

    def _inject(self, step: Step) -> None:
        sym, plan_ = step.symbol, self.ex.faults
        action = step.action
        if action is Action.CORRUPT_LEVEL:
            self._background(self._drift_until_caught(sym))
            return
        if action is Action.DROP_DIFF:
            plan_.drop_diffs(sym)
            what = f"the next {sym} diff is not sent: a gap, that book resyncs"
        elif action is Action.DUPLICATE_DIFF:
            plan_.duplicate_diffs(sym, count=3)
            self._duplicates[sym] = self._duplicates.get(sym, 0) + 3
            what = f"the next 3 {sym} diffs are sent twice: dropped as stale"
        elif action is Action.DELAY_DIFF:
            plan_.delay_diffs(sym, delay_ms=400)
            what = f"the next {sym} diff comes 400 ms late, after later ones: a gap"
        elif action is Action.STALE_SNAPSHOT:
            plan_.stale_snapshot(sym)
            plan_.drop_diffs(sym)
            self.faults["drop_diff"] += 1
            what = f"a {sym} diff dropped, and its resync is served an old snapshot"
        else:  # DISCONNECT
            connections = plan_.connections("market")
            if not connections:
                self.say("info", "no market connection to drop")
                return
            plan_.disconnect(connections[0], channel="market")
            what = f"market connection {connections[0]} is closed without a word"
        self.faults[action.value] += 1
        self.say("fault", f"fault {action.value}: {what}")

    async def _drift_until_caught(self, sym: str) -> None:
        """Corrupt a level of ``sym``'s stream until an audit catches the drift: a later diff
        may overwrite the corrupted level first (it healed by itself, nobody saw it)."""
        caught = self._drift[sym]
        caught.clear()
        window = 2.5 * self.audit_interval + 0.5  # past the longest jittered audit interval
        deadline = self.clock() + 0.8 * self.cycle
        while True:
            self.ex.faults.corrupt_level(sym)
            self.faults["corrupt_level"] += 1
            self.say("fault", f"fault corrupt_level: one {sym} level sent wrong (drift)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caught.wait(), window)
                return
            if self.clock() > deadline:
                self.say("info", f"{sym}: no audit caught the corrupted level in time")
                return
            self.say("info", f"{sym}: the corrupted level was overwritten before an audit")

    def _top(self, sym: str) -> tuple[Decimal, Decimal] | None:
        view = self.s.view(sym)
        if not view.synced or view.best_bid is None or view.best_ask is None:
            return None
        return Decimal(view.best_bid[0]), Decimal(view.best_ask[0])

    async def _place(self, sym: str, side: str, type_: str, **params: Any) -> Any:
        try:
            handle = await self.s.place_order(sym, side, type_, **params)
        except StreamerError as exc:
            self.refused += 1
            self.say("bad", f"{sym} {side} {type_} refused: {exc}")
            return None
        self.placed += 1
        return handle

    async def _order(self, step: Step) -> None:
        sym, side = step.symbol, step.side
        top = self._top(sym)
        if top is None:
            self.say("info", f"{sym} not synced: {step.action.value} order skipped")
            return
        bid, ask = top
        rules = self.rules[sym]
        qty = rules.quantity(ask)
        if step.action is Action.MARKET:
            await self._place(sym, side, "MARKET", quantity=qty)
            return
        if step.action is Action.REST:  # 5% away from the market: it rests
            price = rules.price(bid * Decimal("0.95") if side == "BUY" else ask * Decimal("1.05"))
        else:  # CROSS: 1% through the other side: it takes at once
            price = rules.price(ask * Decimal("1.01") if side == "BUY" else bid * Decimal("0.99"))
        handle = await self._place(
            sym, side, "LIMIT", quantity=qty, price=price, time_in_force="GTC"
        )
        if handle is not None and step.action is Action.REST:
            self._resting.append((sym, handle.client_order_id))

    async def _cancel_resting(self) -> None:
        resting, self._resting = self._resting, []
        for sym, cid in resting:
            try:
                await self.s.cancel_order(sym, cid)
            except StreamerError as exc:
                self.say("bad", f"{sym} cancel of {cid} failed: {exc}")

    async def _stop_order(self, sym: str) -> None:
        """A STOP_LOSS_LIMIT with its stop at the market, then our own trade through it.

        A SELL stop at the best bid triggers on a trade at or below it (our MARKET SELL trades
        at the bid), if the last trade was above it; else a BUY stop at the best ask. Its limit
        is 2% through the stop, so once triggered it fills. Tried again if the market moved
        away before our trade (the stop rests, untriggered: it is cancelled)."""
        rules = self.rules[sym]
        for _attempt in range(3):
            top = self._top(sym)
            if top is None:
                await asyncio.sleep(0.5)
                continue
            bid, ask = top
            last = await self.s.rest.ticker_price(sym)
            if bid < last:
                side, stop, price = "SELL", bid, rules.price(bid * Decimal("0.98"))
            else:
                side, stop, price = "BUY", ask, rules.price(ask * Decimal("1.02"))
            qty = rules.quantity(ask)
            handle = await self._place(
                sym, side, "STOP_LOSS_LIMIT", quantity=qty, price=price, stop_price=stop,
                time_in_force="GTC",
            )  # fmt: skip
            if handle is None:
                continue
            self.say("info", f"{sym} {side} stop at {stop.normalize():f}; our trade goes through")
            await self._place(sym, side, "MARKET", quantity=qty)
            try:
                order = await handle.wait(timeout=max(1.0, 0.08 * self.cycle))
                self.say("heal", f"{sym} stop order triggered: {order.status.value}")
                return
            except TimeoutError:
                self.say("info", f"{sym} the market moved away from the stop: cancel, again")
                with contextlib.suppress(StreamerError):
                    await self.s.cancel_order(sym, handle.client_order_id)
        self.say("bad", f"{sym}: the stop order did not trigger")

    # -- the end ------------------------------------------------------------------------------

    async def finish(self) -> dict[str, Any]:
        """Cancel what rests, pause the market, check every book and order against the
        exchange's truth; the summary."""
        await self._cancel_resting()
        for order in self.s.orders():
            if order.status in OPEN:
                with contextlib.suppress(StreamerError):
                    await self.s.cancel_order(order.symbol, order.client_order_id)
        await self.ex.pause()
        violations = [v for sym in self.symbols if (v := await self._check_book(sym))]
        truth = await self.ex.orders(self.api_key)
        mismatches = await self._check_orders(truth)
        for task in self._pumps:
            task.cancel()
        stats = self.s.stats()
        books = stats["books"]
        ids = Counter(o["clientOrderId"] for o in truth)
        stops = [o for o in truth if o["type"] == "STOP_LOSS_LIMIT"]
        summary: dict[str, Any] = {
            "symbols": self.symbols,
            "books_synced": sum(1 for b in books.values() if b["state"] == "synced" and b["live"]),
            "audits_passed": sum(b["audits_passed"] for b in books.values()),
            "drifts_caught": sum(b["drifts"] for b in books.values()),
            "resyncs": sum(b["resyncs"] for b in books.values()),
            "resyncs_by_reason": dict(sorted(self.resets.items())),
            "stale_snapshots_refetched": sum(
                sync.counters.stale_snapshots for sync in self.s.books.books.values()
            ),
            "stale_diffs_dropped": sum(b["dropped"] for b in books.values()),
            "reconnects": stats["reconnects"],
            "malformed": stats["malformed"],
            "orders_placed": len(truth),
            "orders_refused": self.refused,
            "fills": len(self.fill_ids),
            "orders_filled": sum(1 for o in truth if o["status"] == "FILLED"),
            "stops_triggered": sum(1 for o in stops if Decimal(o["executedQty"]) > 0),
            "duplicate_orders": sum(1 for n in ids.values() if n > 1),
            "order_mismatches": len(mismatches),
            "violations": len(violations),
            "faults_injected": dict(sorted(self.faults.items())),
            "faults_not_fired": len(self.ex.faults.pending()),
            "cycles": self.cycles,
            "duration": round(self.now(), 2),
        }
        if violations:
            summary["violation_details"] = violations
        if mismatches:
            summary["order_mismatch_details"] = mismatches
        return summary

    async def _check_book(self, sym: str) -> str | None:
        """None when the book reached the true book's update id and equals it at every level."""
        truth = await self.ex.book(sym)
        target = truth["lastUpdateId"]

        def reached() -> bool:
            view = self.s.view(sym)
            return view.synced and view.last_update_id >= target

        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                if not reached():
                    async for _ in self.s.book(sym):
                        if reached():
                            break
        except TimeoutError:
            return f"{sym}: not synced at the true update id {target} in {CHECK_TIMEOUT:g} s"
        view = self.s.view(sym)
        if view.last_update_id != target:
            return f"{sym}: at update {view.last_update_id}, the truth at {target}"
        for side, ours, theirs in (
            ("bids", view.bids(10**6), truth["bids"]),
            ("asks", view.asks(10**6), truth["asks"]),
        ):
            if _exact(ours) != _exact(theirs):
                return f"{sym}: {side} differ from the true book at update {target}"
        return None

    async def _check_orders(self, truth: list[dict[str, Any]]) -> list[str]:
        """Every order the exchange holds, as tracked (status, executed quantity); the events
        still in flight are awaited (bounded)."""

        def differences() -> list[str]:
            ours = {o.client_order_id: o for o in self.s.orders()}
            out = []
            for o in truth:
                mine = ours.get(o["clientOrderId"])
                if mine is None:
                    out.append(f"{o['clientOrderId']}: on the exchange, not tracked")
                elif mine.status.value != o["status"] or mine.executed_qty != Decimal(
                    o["executedQty"]
                ):
                    out.append(
                        f"{o['clientOrderId']}: tracked {mine.status.value} {mine.executed_qty}, "
                        f"true {o['status']} {o['executedQty']}"
                    )
            return out

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CHECK_TIMEOUT):
                while differences():
                    self._orders_changed.clear()
                    await self._orders_changed.wait()
        return differences()


def _exact(levels: Any) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in levels}
