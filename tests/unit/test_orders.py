"""The order tracker's rules one at a time (sansio/orders.py; protocol §3.3, §3.4, §5.4)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from streamer.order_models import (
    TERMINAL,
    Balance,
    Fill,
    Order,
    OrderStatus,
    OrderUpdate,
    Reconciled,
)
from streamer.sansio.orders import EXCHANGE_STATES, TRANSITIONS, Move, OrderTracker
from tests.orders_wire import (
    SYMBOL,
    account,
    ack,
    balance_update,
    fill_report,
    full_fill,
    position,
    report,
    rest_order,
    trade_row,
)

S = OrderStatus
ALL_STATES = list(S)
LOCAL_TARGETS = {S.UNKNOWN: "unknown", S.NOT_PLACED: "not_placed", S.REJECTED: "rejected"}


def placed(tracker: OrderTracker, cid: str = "c1", symbol: str = SYMBOL) -> None:
    """Create one of our orders (SENT)."""
    tracker.create(
        symbol=symbol,
        side="BUY",
        type="LIMIT",
        quantity=Decimal(1),
        price=Decimal(100),
        time_in_force="GTC",
        client_order_id=cid,
    )


def held_z(state: OrderStatus) -> int:
    """The executed qty an order in ``state`` is given by :func:`in_state`."""
    return 1 if state in (S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.FILLED) else 0


def in_state(state: OrderStatus) -> OrderTracker:
    """A tracker holding order c1 (orderId 1 once the exchange named it) in ``state``, at time 10,
    its events drained."""
    tracker = OrderTracker()
    placed(tracker)
    if state is S.UNKNOWN or state is S.NOT_PLACED:
        tracker.unknown("c1", "timeout")
    if state is S.NOT_PLACED:
        tracker.not_placed("c1", "-2013 for 30 s")
    if state in EXCHANGE_STATES:
        tracker.receive_event(report(x="NEW", status=state.value, z=held_z(state), q=3, time=10))
    tracker.events()
    assert tracker.get("c1") is not None and got(tracker, "c1").status is state
    return tracker


def got(tracker: OrderTracker, cid: str = "c1") -> Order:
    """The tracked order under ``cid`` (asserted to exist)."""
    order = tracker.get(cid)
    assert order is not None
    return order


def got_id(tracker: OrderTracker, symbol: str, order_id: int) -> Order:
    """The tracked order ``(symbol, order_id)`` (asserted to exist)."""
    order = tracker.by_order_id(symbol, order_id)
    assert order is not None
    return order


def updates(tracker: OrderTracker) -> list[OrderUpdate]:
    return [e for e in tracker.events() if isinstance(e, OrderUpdate)]


def apply_target(
    tracker: OrderTracker, source: OrderStatus, target: OrderStatus, move: Move
) -> None:
    """Ask for ``source -> target`` the way the row says it is taken (newer in z and time)."""
    if move is Move.LOCAL:
        getattr(tracker, LOCAL_TARGETS[target])("c1", "why")
        return
    z = held_z(source) + (
        1 if move is Move.AGAIN or target in (S.FILLED, S.PARTIALLY_FILLED) else 0
    )
    tracker.receive_event(report(x="NEW", status=target.value, z=z, q=3, time=20))


# --- the table ---------------------------------------------------------------------------------


def test_the_table_names_every_state_and_none_out_of_a_final_one() -> None:
    """Every non-terminal state has rows out; terminal ones none; NOT_PLACED only corrections."""
    sources = {source for source, _ in TRANSITIONS}
    assert sources == set(ALL_STATES) - (TERMINAL - {S.NOT_PLACED})
    assert {m for (a, _), m in TRANSITIONS.items() if a is S.NOT_PLACED} == {Move.CORRECTION}
    assert {t for (_, t), m in TRANSITIONS.items() if m is Move.LOCAL} == {S.UNKNOWN, S.NOT_PLACED}
    assert all(a == b for (a, b), m in TRANSITIONS.items() if m is Move.AGAIN)
    assert len(EXCHANGE_STATES) == 9 and S.SENT not in EXCHANGE_STATES


@pytest.mark.parametrize(
    ("source", "target", "move"),
    [(a, b, m) for (a, b), m in TRANSITIONS.items()],
    ids=[f"{a.value}->{b.value}" for a, b in TRANSITIONS],
)
def test_every_row_of_the_table_is_taken(source: S, target: S, move: Move) -> None:
    """Each legal change is applied and emits exactly one OrderUpdate naming the state before."""
    tracker = in_state(source)
    apply_target(tracker, source, target, move)
    [update] = updates(tracker)
    assert update.previous is source and update.order.status is target
    assert tracker.get("c1") == update.order
    assert tracker.counters.corrections == (1 if move is Move.CORRECTION else 0)
    assert tracker.counters.stale_ignored == tracker.counters.malformed == 0
    assert (update.order in tracker.open_orders()) is (target not in TERMINAL)


@pytest.mark.parametrize(
    ("source", "target"),
    [(a, b) for a in ALL_STATES for b in EXCHANGE_STATES if (a, b) not in TRANSITIONS],
    ids=lambda s: s.value,
)
def test_an_exchange_fact_outside_the_table_changes_nothing(source: S, target: S) -> None:
    """A report asking for a change with no row (backwards, out of a final state) is stale."""
    tracker = in_state(source)
    before = tracker.get("c1")
    tracker.receive_event(report(x="NEW", status=target.value, z=held_z(source) + 1, q=3, time=20))
    assert updates(tracker) == []
    assert tracker.get("c1") == before
    assert tracker.counters.stale_ignored == 1


@pytest.mark.parametrize(
    ("source", "target"),
    [(a, b) for a in ALL_STATES for b in LOCAL_TARGETS if a not in (S.SENT, S.UNKNOWN)]
    + [(S.SENT, S.NOT_PLACED), (S.UNKNOWN, S.UNKNOWN)],
    ids=lambda s: s.value,
)
def test_a_local_decision_outside_its_rows_changes_nothing(source: S, target: S) -> None:
    """unknown/not_placed/rejected only act on SENT/UNKNOWN by their rows (the exchange won)."""
    tracker = in_state(source)
    before = tracker.get("c1")
    getattr(tracker, LOCAL_TARGETS[target])("c1", "late")
    assert updates(tracker) == []
    assert tracker.get("c1") == before
    assert tracker.counters.stale_ignored == 1


def test_local_decisions_carry_their_reason_and_source() -> None:
    """unknown, not_placed and rejected are "local" updates that say why."""
    tracker = OrderTracker()
    placed(tracker, "a")
    placed(tracker, "b")
    tracker.unknown("a", "timeout after 10 s")
    tracker.not_placed("a", "-2013 for 30 s")
    tracker.rejected("b", "-2010 insufficient balance")
    got = [(u.order.client_order_id, u.previous, u.order.status, u.order.reason, u.source)
           for u in updates(tracker)]  # fmt: skip
    assert got == [
        ("a", None, S.SENT, None, "local"),
        ("b", None, S.SENT, None, "local"),
        ("a", S.SENT, S.UNKNOWN, "timeout after 10 s", "local"),
        ("a", S.UNKNOWN, S.NOT_PLACED, "-2013 for 30 s", "local"),
        ("b", S.SENT, S.REJECTED, "-2010 insufficient balance", "local"),
    ]
    assert tracker.open_orders() == []


def test_rejected_resolves_an_unknown_order() -> None:
    """UNKNOWN -> REJECTED: a definite answer after the outcome was unknown."""
    tracker = in_state(S.UNKNOWN)
    tracker.rejected("c1", "-1013 filter failure")
    [update] = updates(tracker)
    assert (update.previous, update.order.status) == (S.UNKNOWN, S.REJECTED)


def test_a_local_decision_on_an_id_never_created_is_a_caller_error() -> None:
    """Declaring an order we never created unknown is misuse: KeyError."""
    with pytest.raises(KeyError):
        OrderTracker().unknown("nope", "timeout")


def test_create_refuses_the_id_of_an_open_order_and_takes_a_finished_ones() -> None:
    """A client id names one open order (Binance's rule); a finished order's id may be reused."""
    tracker = in_state(S.NEW)
    with pytest.raises(ValueError, match="open order"):
        placed(tracker)
    tracker.receive_event(report(x="CANCELED", cid="cx", orig="c1", time=20))
    placed(tracker)
    assert got(tracker, "c1").status is S.SENT
    assert got_id(tracker, SYMBOL, 1).status is S.CANCELED
    # a late fact about the old order finds it by orderId, not the new order by client id
    tracker.receive_event(report(x="CANCELED", cid="cx", orig="c1", time=21))
    assert got(tracker, "c1").status is S.SENT
    assert [o.status for o in tracker.orders()] == [S.CANCELED, S.SENT]


# --- newer facts win ---------------------------------------------------------------------------


def test_a_lower_executed_qty_never_overwrites_even_when_later() -> None:
    """z only grows: a report with a lower z and a later time is stale."""
    tracker = in_state(S.PARTIALLY_FILLED)  # z = 1
    tracker.receive_event(report(status="PARTIALLY_FILLED", z="0.5", q=3, time=99))
    tracker.receive_event(report(status="CANCELED", x="CANCELED", z="0.5", q=3, time=99))
    assert updates(tracker) == []
    assert got(tracker, "c1").executed_qty == 1
    assert tracker.counters.stale_ignored == 2


def test_the_same_executed_qty_with_an_older_time_never_overwrites() -> None:
    """Same z, older T: the held state is newer; nothing changes."""
    tracker = in_state(S.NEW)  # time 10
    tracker.receive_event(report(x="CANCELED", time=5))
    assert updates(tracker) == [] and tracker.counters.stale_ignored == 1


def test_a_forward_change_in_the_same_millisecond_is_taken() -> None:
    """Same z and the same time: the table decides (NEW then CANCELED in one ms)."""
    tracker = in_state(S.NEW)
    tracker.receive_event(report(x="CANCELED", time=10))
    assert [u.order.status for u in updates(tracker)] == [S.CANCELED]


def test_a_higher_executed_qty_wins_over_an_older_time_and_time_never_goes_back() -> None:
    """More filled is newer whatever its time says; update_time keeps the newest time seen."""
    tracker = in_state(S.PARTIALLY_FILLED)  # z 1 at 10
    tracker.receive_event(fill_report(trade=5, qty=1, z=2, q=3, time=7))
    [update] = updates(tracker)
    assert update.order.executed_qty == 2 and update.order.update_time == 10


def test_a_repeated_fact_is_a_silent_confirmation() -> None:
    """A duplicate report or the REST twin of a report changes nothing and counts nothing."""
    tracker = in_state(S.NEW)
    tracker.receive_event(report(x="NEW", q=3, time=10))
    tracker.receive_rest_order(rest_order(q=3, time=10))
    assert tracker.events() == []
    assert tracker.counters.stale_ignored == 0


def test_a_stale_reports_fill_is_still_reported() -> None:
    """The order is FILLED by a query; the late TRADE report's fill is new: reported once."""
    tracker = in_state(S.NEW)
    tracker.receive_rest_order(
        rest_order(status="FILLED", z=3, q=3, time=50, time_key="updateTime"),
        source="reconciliation",
    )
    tracker.receive_event(fill_report(trade=7, qty=1, z=1, q=3, time=20))
    events = tracker.events()
    assert [type(e) for e in events] == [OrderUpdate, Fill]
    assert got(tracker, "c1").status is S.FILLED
    assert [f.trade_id for f in tracker.fills("c1")] == [7]
    assert tracker.counters.stale_ignored == 1


def test_a_keep_priority_amend_refreshes_a_live_order() -> None:
    """x=REPLACED, same status and z, later time, lower q: applied; its duplicate is not."""
    tracker = in_state(S.NEW)  # q 3
    tracker.receive_event(report(x="REPLACED", status="NEW", q=2, time=30))
    tracker.receive_event(report(x="REPLACED", status="NEW", q=2, time=30))
    [update] = updates(tracker)
    assert (update.previous, update.order.quantity) == (S.NEW, 2)


def test_a_triggered_stop_becomes_working_even_in_the_same_millisecond() -> None:
    """A stop order's second NEW report (w false -> true) is an update at any time, once; the
    other way (working -> not working at the same time) is stale."""
    tracker = OrderTracker()
    tracker.receive_event(report(type="STOP_LOSS_LIMIT", working=False, time=10))
    tracker.events()
    tracker.receive_event(report(type="STOP_LOSS_LIMIT", working=True, time=10))
    tracker.receive_event(report(type="STOP_LOSS_LIMIT", working=True, time=10))
    [update] = updates(tracker)
    assert (update.previous, update.order.working) == (S.NEW, True)
    tracker.receive_event(report(type="STOP_LOSS_LIMIT", working=False, time=10))
    assert updates(tracker) == []
    assert got(tracker, "c1").working is True


def test_a_later_fact_that_changes_nothing_but_time_emits_nothing() -> None:
    """Same status and z at a later time, nothing else new: no OrderUpdate."""
    tracker = in_state(S.PARTIALLY_FILLED)
    tracker.receive_rest_order(
        rest_order(status="PARTIALLY_FILLED", z=1, q=3, time=40, time_key="updateTime")
    )
    assert tracker.events() == [] and tracker.counters.stale_ignored == 0


# --- REST answer and executionReport in either order -----------------------------------------


def _full_answer() -> dict[str, Any]:
    fills = [full_fill(trade=11, qty="0.4"), full_fill(trade=12, qty="0.6", price=101)]
    return rest_order(status="FILLED", z=1, fills=fills, time=500)


def _taker_reports() -> list[dict[str, Any]]:
    return [
        report(x="NEW", time=500),
        fill_report(trade=11, qty="0.4", z="0.4", time=500),
        fill_report(trade=12, qty="0.6", z=1, price=101, status="FILLED", time=500),
    ]


def test_rest_answer_first_then_its_reports() -> None:
    """FULL answer first: SENT -> FILLED with its fills; the reports then add nothing."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.events()
    tracker.receive_rest_order(_full_answer())
    for event in _taker_reports():
        tracker.receive_event(event)
    events = tracker.events()
    assert [type(e) for e in events] == [Fill, Fill, OrderUpdate]
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.trade_id, f.source, f.is_maker, f.time) for f in fills] == [
        (11, "rest", False, 500),
        (12, "rest", False, 500),
    ]
    assert fills[1].price == 101 and fills[1].commission == Decimal("0.001")
    assert isinstance(events[2], OrderUpdate)
    assert (events[2].previous, events[2].order.status) == (S.SENT, S.FILLED)
    assert tracker.counters.duplicate_fills == 2
    assert tracker.counters.stale_ignored == 2  # the NEW and the partial fill report


def test_reports_first_then_the_rest_answer() -> None:
    """Reports first: SENT -> NEW -> PARTIALLY_FILLED -> FILLED; the answer adds nothing."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.events()
    for event in _taker_reports():
        tracker.receive_event(event)
    tracker.receive_rest_order(_full_answer())
    events = tracker.events()
    statuses = [(e.previous, e.order.status) for e in events if isinstance(e, OrderUpdate)]
    assert statuses == [
        (S.SENT, S.NEW),
        (S.NEW, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.FILLED),
    ]
    assert [(f.trade_id, f.source) for f in events if isinstance(f, Fill)] == [
        (11, "stream"),
        (12, "stream"),
    ]
    assert tracker.counters.duplicate_fills == 2 and tracker.counters.stale_ignored == 0


def test_an_ack_answer_names_the_order_and_reads_as_new() -> None:
    """ACK (no status): SENT -> NEW with the orderId; after a fill report it is stale."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.receive_rest_order(ack(time=5))
    order = tracker.get("c1")
    assert order is not None and (order.status, order.order_id, order.update_time) == (S.NEW, 1, 5)
    placed(tracker, "c2")
    tracker.receive_event(fill_report(cid="c2", oid=2, trade=1, qty=1, z=1, status="FILLED"))
    tracker.receive_rest_order(ack(cid="c2", oid=2, time=5))
    assert got(tracker, "c2").status is S.FILLED
    assert tracker.counters.stale_ignored == 1


def test_an_ack_for_an_order_never_created_cannot_be_tracked() -> None:
    """An ACK names no side, type or quantity: for an unknown order it is counted, not tracked."""
    tracker = OrderTracker()
    tracker.receive_rest_order(ack())
    assert tracker.orders() == [] and tracker.counters.malformed == 1


def test_unknown_then_its_report_resolves_it() -> None:
    """UNKNOWN is resolved by the executionReport; the 'timeout' reason goes with the state."""
    tracker = in_state(S.UNKNOWN)
    tracker.receive_event(report(x="NEW", time=20))
    [update] = updates(tracker)
    assert (update.previous, update.order.status, update.order.reason) == (S.UNKNOWN, S.NEW, None)
    assert update.order.order_id == 1


def test_a_report_before_the_timeout_keeps_the_order_known() -> None:
    """The report beats the REST timeout: unknown() afterwards is ignored."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.receive_event(report(x="NEW", time=20))
    tracker.unknown("c1", "timeout")
    assert got(tracker, "c1").status is S.NEW


def test_not_placed_then_the_exchange_reports_it_is_a_correction() -> None:
    """NOT_PLACED -> NEW by a report: counted as a correction, and open again."""
    tracker = in_state(S.NOT_PLACED)
    assert tracker.open_orders() == []
    tracker.receive_event(report(x="NEW", time=20))
    [update] = updates(tracker)
    assert (update.previous, update.order.status) == (S.NOT_PLACED, S.NEW)
    assert tracker.counters.corrections == 1
    assert tracker.open_orders() == [update.order]


# --- cancel ids and keys -------------------------------------------------------------------------


def test_a_cancel_report_keeps_the_orders_own_client_id() -> None:
    """x=CANCELED: c is the cancel's id, C the order's; the order keeps its id."""
    tracker = in_state(S.NEW)
    tracker.receive_event(report(x="CANCELED", cid="cancel-1", orig="c1", time=20))
    [update] = updates(tracker)
    assert update.order.client_order_id == "c1" and update.order.status is S.CANCELED
    assert tracker.get("cancel-1") is None


def test_a_rest_cancel_answer_keeps_the_orders_own_client_id() -> None:
    """REST cancel: origClientOrderId is the order's id, clientOrderId the cancel's."""
    tracker = in_state(S.PARTIALLY_FILLED)
    tracker.receive_rest_order(
        rest_order(status="CANCELED", z=1, q=3, cid="cancel-2", orig="c1", time=20)
    )
    [update] = updates(tracker)
    assert (update.order.client_order_id, update.order.status) == ("c1", S.CANCELED)
    assert update.order.executed_qty == 1 and tracker.get("cancel-2") is None


def test_a_cancel_of_an_order_awaiting_its_id_finds_it_by_the_original_id() -> None:
    """Before its orderId is known, an order is found by client id: C on a cancel."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.receive_event(report(x="CANCELED", cid="cancel-3", orig="c1", time=20))
    order = tracker.get("c1")
    assert order is not None and (order.status, order.order_id) == (S.CANCELED, 1)
    assert len(tracker.orders()) == 1


def test_once_known_an_order_is_found_by_its_order_id() -> None:
    """A report naming another client id but the same (symbol, orderId) is the same order."""
    tracker = in_state(S.NEW)
    tracker.receive_event(fill_report(cid="renamed", trade=1, qty=1, z=1, q=3, time=20))
    assert len(tracker.orders()) == 1
    assert got(tracker, "c1").executed_qty == 1
    assert tracker.fills("c1")[0].client_order_id == "c1"


def test_the_same_client_id_on_another_symbol_is_another_order() -> None:
    """Our SENT order on BTCUSDT is not matched by a report for ETHUSDT."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.receive_event(report(x="NEW", symbol="ETHUSDT", oid=9, time=20))
    assert got(tracker, "c1").status is S.SENT
    other = tracker.by_order_id("ETHUSDT", 9)
    assert other is not None and other.client_order_id == "c1" and other.status is S.NEW


def test_the_same_order_id_on_another_symbol_is_another_order() -> None:
    """Order ids are per symbol: (symbol, orderId) is the key."""
    tracker = in_state(S.NEW)
    tracker.receive_event(report(x="NEW", symbol="ETHUSDT", cid="e1", oid=1, time=20))
    assert len(tracker.orders()) == 2
    assert got_id(tracker, SYMBOL, 1).client_order_id == "c1"


# --- orders of the account we did not place ------------------------------------------------


def test_a_foreign_order_first_seen_on_the_stream_is_tracked() -> None:
    """An order placed elsewhere (web UI, another bot) is tracked from its first report."""
    tracker = OrderTracker()
    same: dict[str, Any] = {"cid": "web_1", "oid": 77, "side": "SELL", "q": 2, "p": 50000}
    tracker.receive_event(report(x="NEW", **same))
    tracker.receive_event(fill_report(trade=3, qty=2, z=2, price=50000, status="FILLED", **same))
    events = tracker.events()
    assert [type(e) for e in events] == [OrderUpdate, Fill, OrderUpdate]
    first = events[0]
    assert isinstance(first, OrderUpdate) and first.previous is None
    order = tracker.get("web_1")
    assert order is not None
    assert (order.side, order.quantity, order.price, order.status) == ("SELL", 2, 50000, S.FILLED)


def test_a_foreign_order_first_seen_on_a_fill_or_its_cancel_is_tracked() -> None:
    """First seen mid-life: on a TRADE report (fill then order), or on its cancel (under C)."""
    tracker = OrderTracker()
    tracker.receive_event(fill_report(cid="w2", oid=5, trade=1, qty=1, z=1, q=2))
    tracker.receive_event(report(x="CANCELED", cid="cx", orig="w3", oid=6))
    events = tracker.events()
    assert [type(e) for e in events] == [Fill, OrderUpdate, OrderUpdate]
    assert got(tracker, "w2").status is S.PARTIALLY_FILLED
    assert got(tracker, "w3").status is S.CANCELED
    assert tracker.open_orders() == [tracker.get("w2")]


def test_foreign_orders_in_snapshots_are_tracked() -> None:
    """openOrders and query rows of orders we never saw are tracked (source reconciliation)."""
    tracker = OrderTracker()
    row = rest_order(cid="w4", oid=8, status="PARTIALLY_FILLED", z=1, q=2, time_key="updateTime")
    missing = tracker.receive_open_orders([row], SYMBOL)
    tracker.receive_rest_order(rest_order(cid="w5", oid=9, status="EXPIRED", time_key="updateTime"))
    assert missing == []
    [first, second] = updates(tracker)
    assert (first.order.client_order_id, first.source) == ("w4", "reconciliation")
    assert (second.order.client_order_id, second.order.status) == ("w5", S.EXPIRED)
    assert [o.client_order_id for o in tracker.open_orders()] == ["w4"]


# --- fills -------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["rest", "stream", "trades"])
def test_a_trade_is_reported_once_whichever_source_shows_it_first(first: str) -> None:
    """FULL fills, a TRADE report and a myTrades row of one trade: one Fill, two duplicates."""
    feeds = {
        "rest": lambda t: t.receive_rest_order(
            rest_order(status="FILLED", z=1, fills=[full_fill(trade=40, qty=1)])
        ),
        "stream": lambda t: t.receive_event(
            fill_report(trade=40, qty=1, z=1, status="FILLED", maker=True)
        ),
        "trades": lambda t: t.receive_trades(SYMBOL, [trade_row(trade=40, maker=True)]),
    }
    tracker = OrderTracker()
    placed(tracker)
    feeds[first](tracker)
    for name, feed in feeds.items():
        if name != first:
            feed(tracker)
    fills = [e for e in tracker.events() if isinstance(e, Fill)]
    source = {"rest": "rest", "stream": "stream", "trades": "reconciliation"}[first]
    assert [(f.trade_id, f.source) for f in fills] == [(40, source)]
    assert tracker.counters.duplicate_fills == 2
    assert tracker.fills("c1") == fills


def test_fill_fields_come_from_each_source() -> None:
    """A report's fill carries L, l, n, N, T, m; a myTrades row its own fields."""
    tracker = in_state(S.NEW)
    tracker.receive_event(
        fill_report(trade=1, qty="0.5", z="0.5", q=3, price="101.5", commission="0.0002",
                    commission_asset="USDT", maker=True, time=30)
    )  # fmt: skip
    tracker.receive_trades(SYMBOL, [trade_row(trade=2, qty="0.25", price=99, time=31)])
    [a, b] = tracker.fills("c1")
    assert (a.price, a.qty, a.commission, a.commission_asset, a.time, a.is_maker, a.source) == (
        Decimal("101.5"), Decimal("0.5"), Decimal("0.0002"), "USDT", 30, True, "stream",
    )  # fmt: skip
    assert (b.price, b.qty, b.commission, b.commission_asset, b.time, b.is_maker, b.source) == (
        99, Decimal("0.25"), Decimal("0.001"), "BNB", 31, False, "reconciliation",
    )  # fmt: skip
    assert tracker.last_trade_id(SYMBOL) == 2 and tracker.last_trade_id("ETHUSDT") is None


def test_the_same_trade_id_on_two_symbols_is_two_trades() -> None:
    """Trade ids are per symbol."""
    tracker = OrderTracker()
    tracker.receive_event(fill_report(trade=1, qty=1, z=1, q=2))
    tracker.receive_event(fill_report(symbol="ETHUSDT", cid="e", trade=1, qty=1, z=1, q=2))
    assert len([e for e in tracker.events() if isinstance(e, Fill)]) == 2
    assert tracker.active_symbols() == {SYMBOL, "ETHUSDT"}


def test_a_self_trade_is_a_fill_on_each_of_our_two_orders() -> None:
    """STP NONE: one trade id, our buy and our sell: two fills, none lost to de-duplication."""
    tracker = OrderTracker()
    tracker.receive_event(fill_report(trade=9, qty=1, z=1, status="FILLED", maker=True))
    tracker.receive_event(fill_report(cid="s", oid=2, side="SELL", trade=9, qty=1, z=1,
                                      status="FILLED"))  # fmt: skip
    tracker.receive_trades(SYMBOL, [trade_row(trade=9, oid=1), trade_row(trade=9, oid=2)])
    fills = [e for e in tracker.events() if isinstance(e, Fill)]
    assert [(f.order_id, f.trade_id) for f in fills] == [(1, 9), (2, 9)]
    assert tracker.counters.duplicate_fills == 2


def test_a_trade_of_an_untracked_order_is_reported_and_its_order_listed() -> None:
    """myTrades names an order we do not track: Fill under "#<orderId>", the order is listed
    for the caller to query, and the fill joins the order once it is tracked."""
    tracker = OrderTracker()
    tracker.receive_trades(SYMBOL, [trade_row(trade=3, oid=42)])
    [fill] = tracker.events()
    assert isinstance(fill, Fill) and fill.client_order_id == "#42"
    assert tracker.untracked_trade_orders() == [(SYMBOL, 42)]
    assert tracker.active_symbols() == {SYMBOL}
    tracker.receive_rest_order(rest_order(cid="w", oid=42, status="FILLED", z=1), "reconciliation")
    assert tracker.untracked_trade_orders() == []
    assert tracker.fills("w") == [fill]


def test_fills_of_an_unknown_or_unplaced_order_are_empty() -> None:
    """fills() of an id never seen, or of an order with no orderId yet, is []."""
    tracker = OrderTracker()
    placed(tracker)
    assert tracker.fills("c1") == [] and tracker.fills("nope") == []


# --- balances ------------------------------------------------------------------------------


def test_positions_are_absolute_and_an_older_one_is_ignored() -> None:
    """outboundAccountPosition sets each asset; a smaller u is stale; equal u applies."""
    tracker = OrderTracker()
    tracker.receive_event(position(10, ("BTC", 1, 0), ("USDT", 100, 50)))
    tracker.receive_event(position(5, ("BTC", 9, 9)))
    tracker.receive_event(position(10, ("BTC", 2, 0)))
    events = tracker.events()
    assert events == [
        Balance("BTC", Decimal(1), Decimal(0), 10, "stream"),
        Balance("USDT", Decimal(100), Decimal(50), 10, "stream"),
        Balance("BTC", Decimal(2), Decimal(0), 10, "stream"),
    ]
    assert tracker.counters.stale_ignored == 1
    assert tracker.balances()["BTC"].free == 2


def test_a_position_emits_only_the_assets_that_changed() -> None:
    """One Balance per asset that changed; an unchanged asset is silent."""
    tracker = OrderTracker()
    tracker.receive_event(position(10, ("BTC", 1, 0), ("USDT", 100, 50)))
    tracker.events()
    tracker.receive_event(position(11, ("BTC", 1, 0), ("USDT", 150, 0)))
    assert tracker.events() == [Balance("USDT", Decimal(150), Decimal(0), 11, "stream")]


def test_a_balance_update_is_a_delta_on_free() -> None:
    """balanceUpdate adds d to free (locked kept); an asset never seen starts from zero."""
    tracker = OrderTracker()
    tracker.receive_event(position(10, ("BTC", 1, "0.5")))
    tracker.receive_event(balance_update("BTC", "0.25", 20))
    tracker.receive_event(balance_update("ETH", "-3", 20))
    events = tracker.events()
    assert events[1:] == [
        Balance("BTC", Decimal("1.25"), Decimal("0.5"), 20, "stream"),
        Balance("ETH", Decimal(-3), Decimal(0), 20, "stream"),
    ]


def test_balance_deltas_add_up_exactly_past_28_digits() -> None:
    """The default decimal context would round a 29-digit sum; balances stay exact."""
    tracker = OrderTracker()
    tracker.receive_event(position(10, ("BTC", "123456789012345678901.12345678", 0)))
    tracker.receive_event(balance_update("BTC", "0.00000001", 20))
    assert tracker.balances()["BTC"].free == Decimal("123456789012345678901.12345679")


def test_a_balance_update_already_counted_by_a_position_is_ignored() -> None:
    """The position (absolute, u >= T) came first: the delta in it is not added twice."""
    tracker = OrderTracker()
    tracker.receive_event(position(20, ("BTC", 5, 0)))  # already includes the +1 below
    tracker.receive_event(balance_update("BTC", 1, 20))
    tracker.receive_event(balance_update("BTC", 1, 19))
    assert tracker.balances()["BTC"].free == 5 and tracker.counters.stale_ignored == 2


def test_an_account_snapshot_is_absolute_and_omitted_assets_are_zero() -> None:
    """GET account sets every listed asset; a held asset it omits is zero; newer stream kept."""
    tracker = OrderTracker()
    tracker.receive_event(position(10, ("BTC", 1, 0), ("ETH", 4, 0)))
    tracker.receive_event(position(30, ("USDT", 7, 0)))
    tracker.events()
    tracker.receive_account(account(20, ("BTC", 2, 1), ("USDT", 1, 0), ("BNB", "0.1", 0)))
    assert tracker.events() == [
        Balance("BTC", Decimal(2), Decimal(1), 20, "reconciliation"),
        Balance("BNB", Decimal("0.1"), Decimal(0), 20, "reconciliation"),
        Balance("ETH", Decimal(0), Decimal(0), 20, "reconciliation"),
    ]
    assert tracker.balances()["USDT"].free == 7  # the stream's u=30 is newer than updateTime 20


# --- reconciliation ------------------------------------------------------------------------


def test_open_orders_returns_the_tracked_open_orders_it_does_not_list() -> None:
    """Missing from openOrders: queried by the caller; SENT ones (in flight) are left out."""
    tracker = OrderTracker()
    placed(tracker, "sent")
    placed(tracker, "unknown")
    tracker.unknown("unknown", "timeout")
    for i, cid in enumerate(["listed", "gone", "done"], start=1):
        placed(tracker, cid)
        tracker.receive_event(report(cid=cid, oid=i))
    tracker.receive_event(report(x="CANCELED", cid="x", orig="done", oid=3))
    placed(tracker, "eth", symbol="ETHUSDT")
    tracker.receive_event(report(cid="eth", oid=1, symbol="ETHUSDT"))
    tracker.events()
    rows = [rest_order(cid="listed", oid=1, time_key="updateTime")]
    missing = tracker.receive_open_orders(rows, SYMBOL)
    assert [o.client_order_id for o in missing] == ["unknown", "gone"]
    assert tracker.events() == []  # the listed row confirms what is held
    missing_all = tracker.receive_open_orders(rows, None)
    assert [o.client_order_id for o in missing_all] == ["unknown", "gone", "eth"]


def test_reconciled_counts_the_corrections_and_fills_found_since_the_last_pass() -> None:
    """Reconciled carries the reconciliation-sourced changes and fills since the previous one."""
    tracker = in_state(S.NEW)
    tracker.receive_open_orders(
        [rest_order(status="PARTIALLY_FILLED", z=1, q=3, time=20, time_key="updateTime")], SYMBOL
    )
    tracker.receive_trades(SYMBOL, [trade_row(trade=1), trade_row(trade=1)])
    tracker.receive_account(account(30, ("BTC", 1, 0)))
    tracker.reconciled("resubscribed", 1)
    tracker.reconciled("scheduled", 0)
    events = tracker.events()
    assert events[-2:] == [Reconciled("resubscribed", 1, 2, 1), Reconciled("scheduled", 0, 0, 0)]


def test_events_drain_in_order() -> None:
    """events() returns everything since the last call, once."""
    tracker = OrderTracker()
    placed(tracker)
    assert len(tracker.events()) == 1
    assert tracker.events() == []


# --- bad input -----------------------------------------------------------------------------


def _without(event: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != key}


NEW_REPORT = report(x="NEW", time=20)
TRADE_REPORT = fill_report(trade=5, qty=1, z=1, q=3, time=20)
BAD_EVENTS: dict[str, Any] = {
    "not a mapping": ["executionReport"],
    "no event type": _without(NEW_REPORT, "e"),
    "event type not a string": {**NEW_REPORT, "e": 7},
    "missing symbol": _without(NEW_REPORT, "s"),
    "missing order id": _without(NEW_REPORT, "i"),
    "order id a string": {**NEW_REPORT, "i": "1"},
    "order id a bool": {**NEW_REPORT, "i": True},
    "missing status": _without(NEW_REPORT, "X"),
    "unknown status": {**NEW_REPORT, "X": "HALF_FILLED"},
    "our own status": {**NEW_REPORT, "X": "UNKNOWN"},
    "missing execution type": _without(NEW_REPORT, "x"),
    "missing z": _without(NEW_REPORT, "z"),
    "z unparsable": {**NEW_REPORT, "z": "1.2.3"},
    "z a float": {**NEW_REPORT, "z": 0.1},
    "z not finite": {**NEW_REPORT, "z": "NaN"},
    "z negative": {**NEW_REPORT, "z": "-1.00000000"},
    "q negative": {**NEW_REPORT, "q": "-1"},
    "price infinite": {**NEW_REPORT, "p": "Infinity"},
    "missing times": _without(_without(NEW_REPORT, "T"), "E"),
    "time a string": {**NEW_REPORT, "T": "20"},
    "client id not a string": {**NEW_REPORT, "c": None},
    "working not a bool": {**NEW_REPORT, "w": "true"},
    "trade without trade id": _without(TRADE_REPORT, "t"),
    "trade with trade id -1": {**TRADE_REPORT, "t": -1},
    "trade last qty negative": {**TRADE_REPORT, "l": "-1"},
    "trade commission unparsable": {**TRADE_REPORT, "n": "lots"},
    "trade commission asset a number": {**TRADE_REPORT, "N": 5},
    "position without balances": {"e": "outboundAccountPosition", "E": 1, "u": 1},
    "position balances not a list": {**position(1), "B": {"a": "BTC"}},
    "position row not a mapping": {**position(1), "B": ["BTC"]},
    "position row missing free": {**position(1), "B": [{"a": "BTC", "l": "0"}]},
    "position second row bad": {
        **position(1),
        "B": [{"a": "BTC", "f": "1", "l": "0"}, {"a": "ETH", "f": "1", "l": "x"}],
    },
    "position without u": _without(position(1, ("BTC", 1, 0)), "u"),
    "balance update without delta": _without(balance_update("BTC", 1, 5), "d"),
    "balance update delta unparsable": {**balance_update("BTC", 1, 5), "d": ""},
    "balance update without time": _without(balance_update("BTC", 1, 5), "T"),
    "balance update delta beyond any exponent": {
        **balance_update("BTC", 1, 5),
        "d": "1e9999999999999999999",
    },
}


@pytest.mark.parametrize("event", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_malformed_event_is_counted_and_changes_nothing(event: Any) -> None:
    """Missing fields, wrong types, unparsable or negative numbers: counted, nothing changes."""
    tracker = in_state(S.NEW)
    tracker.receive_event(position(0, ("BTC", 1, 0)))
    tracker.events()
    orders, balances = tracker.orders(), tracker.balances()
    tracker.receive_event(event)
    assert tracker.counters.malformed == 1
    assert tracker.events() == []
    assert (tracker.orders(), tracker.balances()) == (orders, balances)


BAD_BODIES: dict[str, Any] = {
    "not a mapping": [],
    "missing order id": _without(rest_order(), "orderId"),
    "missing client id": _without(rest_order(), "clientOrderId"),
    "unknown status": rest_order(status="DONE"),
    "executed qty negative": {**rest_order(), "executedQty": "-1"},
    "executed qty missing": _without(rest_order(), "executedQty"),
    "fills not a list": rest_order(fills={"tradeId": 1}),  # type: ignore[arg-type]
    "fill missing trade id": rest_order(fills=[{"price": "1", "qty": "1", "commission": "0"}]),
    "fill qty unparsable": rest_order(fills=[{**full_fill(trade=1, qty=1), "qty": "1e"}]),
    "time not an int": rest_order(time="5"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_malformed_rest_order_is_counted_and_changes_nothing(body: Any) -> None:
    """A bad REST order object (answer or openOrders row) is counted and ignored."""
    tracker = OrderTracker()
    placed(tracker)
    tracker.events()
    tracker.receive_rest_order(body)
    tracker.receive_open_orders([body], None)
    assert tracker.counters.malformed == 2
    assert tracker.events() == [] and got(tracker, "c1").status is S.SENT


@pytest.mark.parametrize(
    "row",
    [
        "x",
        _without(trade_row(trade=1), "id"),
        _without(trade_row(trade=1), "orderId"),
        {**trade_row(trade=1), "qty": "-1"},
        {**trade_row(trade=1), "price": None},
        {**trade_row(trade=1), "symbol": "ETHUSDT"},
        {**trade_row(trade=1), "isMaker": 1},
    ],
    ids=["not a mapping", "no id", "no order id", "negative qty", "no price", "other symbol",
         "maker not a bool"],
)  # fmt: skip
def test_a_malformed_trade_row_is_counted_and_the_others_applied(row: Any) -> None:
    """A bad myTrades row is counted; the good rows around it still count."""
    tracker = OrderTracker()
    tracker.receive_trades(SYMBOL, [trade_row(trade=1), row, trade_row(trade=2)])
    assert tracker.counters.malformed == 1
    assert [e.trade_id for e in tracker.events() if isinstance(e, Fill)] == [1, 2]


@pytest.mark.parametrize(
    "body",
    [
        [],
        _without(account(1, ("BTC", 1, 0)), "updateTime"),
        _without(account(1, ("BTC", 1, 0)), "balances"),
        {**account(1), "balances": [{"asset": "BTC", "free": "x", "locked": "0"}]},
        account(1, ("BTC", -1, 0)),
    ],
    ids=["not a mapping", "no update time", "no balances", "unparsable", "negative"],
)
def test_a_malformed_account_snapshot_is_counted_and_changes_nothing(body: Any) -> None:
    """A bad account answer changes no balance (not even the well-formed rows in it)."""
    tracker = OrderTracker()
    tracker.receive_event(position(0, ("ETH", 1, 0)))
    tracker.events()
    tracker.receive_account(body)
    assert tracker.counters.malformed == 1 and tracker.events() == []
    assert tracker.balances()["ETH"].free == 1


@pytest.mark.parametrize(
    "event",
    [
        {"e": "listStatus", "E": 1, "s": SYMBOL, "g": 2, "c": "OCO", "l": "EXEC_STARTED"},
        {"e": "externalLockUpdate", "E": 1, "a": "NEO", "d": "10.00000000", "T": 1},
        {"e": "eventStreamTerminated", "E": 1},
    ],
    ids=["listStatus", "externalLockUpdate", "eventStreamTerminated"],
)
def test_unknown_event_types_are_counted_and_ignored(event: dict[str, Any]) -> None:
    """Event types the tracker does not apply are counted, not malformed, and change nothing."""
    tracker = OrderTracker()
    tracker.receive_event(event)
    assert (tracker.counters.unknown_events, tracker.counters.malformed) == (1, 0)
    assert tracker.events() == []
