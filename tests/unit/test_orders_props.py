"""Property test: random order lifecycles, delivered out of order, twice, or not at all.

The exchange is modelled as each order's true history: placed (NEW), some fills (the first ones
maybe at once, reported in the FULL answer; now and then a self-trade with another of the
account's orders: one trade id, two fills), then filled, canceled, expired or left open. That
history is rendered as everything that reports it: our REST place answer (or a timeout instead:
``unknown()``, maybe ``not_placed()``), the executionReports (any may be lost), our REST cancel
answer, openOrders and myTrades snapshots taken at random moments, a final query of every order
and maybe a final myTrades (the reconciliation that catches what was lost). Some orders are not
ours (no create, no answer). All of it arrives in a random order, with duplicates.

The reference model: after each message, every order is in the newest true state delivered so
far; every trade some message showed is reported exactly once with its true fields; the
OrderUpdates of an order never go backwards and each names the state before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.order_models import TERMINAL, Fill, OrderStatus, OrderUpdate
from streamer.sansio.orders import EXCHANGE_STATES, OrderTracker
from tests.orders_wire import (
    account,
    balance_update,
    fill_report,
    full_fill,
    position,
    report,
    rest_order,
    trade_row,
)

S = OrderStatus
SYMBOLS = ["AAAUSDT", "BBBUSDT"]
RANK = {S.SENT: 0, S.UNKNOWN: 1, S.NOT_PLACED: 2, S.NEW: 3, S.PARTIALLY_FILLED: 4}


@dataclass
class State:
    """The order's true state after one change (the exchange's view)."""

    status: str
    z: int
    time: int
    trade: tuple[int, int, str, str] | None = None  # trade id, qty, price, commission


@dataclass
class Life:
    """One order's true history and how its placement went."""

    symbol: str
    order_id: int
    cid: str
    ours: bool
    quantity: int
    states: list[State] = field(default_factory=list)
    immediate: int = 0  # states[0 .. immediate] happened at placement (the FULL answer's)
    answer: str = "answer"  # our place answer: "answer", "timeout", "timeout+not_placed"
    cancel_answer: bool = False

    @property
    def trades(self) -> list[tuple[int, int, str, str]]:
        return [s.trade for s in self.states if s.trade is not None]

    def at(self, time: int) -> State | None:
        """The true state at ``time`` (None before placement)."""
        current = None
        for state in self.states:
            if state.time <= time:
                current = state
        return current


def _row(life: Life, state: State) -> dict[str, Any]:
    """A query answer / openOrders row of ``life`` in ``state``."""
    return rest_order(
        symbol=life.symbol, oid=life.order_id, cid=life.cid, status=state.status, z=state.z,
        q=life.quantity, time=state.time, time_key="updateTime",
    )  # fmt: skip


def _report(life: Life, state: State) -> dict[str, Any]:
    """The executionReport of ``life`` entering ``state``."""
    common: dict[str, Any] = {
        "symbol": life.symbol, "oid": life.order_id, "q": life.quantity, "z": state.z,
        "time": state.time,
    }  # fmt: skip
    if state.trade is not None:
        tid, qty, price, commission = state.trade
        return fill_report(
            cid=life.cid, trade=tid, qty=qty, price=price, commission=commission,
            status=state.status, **common,
        )  # fmt: skip
    if state.status == "CANCELED":
        return report(x="CANCELED", cid=f"x-{life.cid}", orig=life.cid, **common)
    return report(x=state.status, cid=life.cid, **common)


@st.composite
def lives(draw: st.DrawFn) -> tuple[list[Life], int]:
    """Up to 4 orders on two symbols (ids per symbol overlap across symbols) and the end time."""
    clock = 1000
    next_order = dict.fromkeys(SYMBOLS, 1)
    next_trade = dict.fromkeys(SYMBOLS, 1)
    trades: dict[str, list[tuple[int, int]]] = {symbol: [] for symbol in SYMBOLS}  # (id, order)
    matched: set[tuple[str, int]] = set()  # trades that already have their self-trade twin
    out = []
    for n in range(draw(st.integers(1, 4))):
        symbol = draw(st.sampled_from(SYMBOLS))
        quantity = draw(st.integers(1, 6))
        life = Life(symbol, next_order[symbol], f"o{n}", draw(st.booleans()), quantity)
        next_order[symbol] += 1
        clock += draw(st.integers(0, 1))  # often the same ms: z decides
        life.states.append(State("NEW", 0, clock))
        chunks = draw(st.lists(st.integers(1, 3), max_size=4))
        ending = draw(st.sampled_from(["fill", "cancel", "expire", "open"]))
        immediate = draw(st.integers(0, len(chunks) + 1))
        z = 0
        for i, chunk in enumerate([*chunks, quantity]):  # "fill" completes with the rest
            chunk = min(chunk, quantity - z)
            if not chunk or (i == len(chunks) and ending != "fill"):
                break
            z += chunk
            if i >= immediate:  # after placement: later (or in the same ms)
                clock += draw(st.integers(0, 1))
            # Now and then the other side is an earlier order of ours on the symbol: a self-trade
            # (STP NONE), one trade id with a fill on each order.
            others = [t for t, owner in trades[symbol] if owner != n and (symbol, t) not in matched]
            if others and draw(st.integers(0, 3)) == 0:
                tid = draw(st.sampled_from(others))
                matched.add((symbol, tid))
            else:
                tid = next_trade[symbol]
                next_trade[symbol] += 1
                trades[symbol].append((tid, n))
            trade = (tid, chunk, f"{100 + tid % 3}.5", f"0.0000{tid}")
            status = "FILLED" if z == quantity else "PARTIALLY_FILLED"
            life.states.append(State(status, z, clock, trade))
        life.immediate = min(immediate, len(life.states) - 1)
        if life.states[-1].status != "FILLED" and ending in ("cancel", "expire"):
            clock += draw(st.integers(0, 1))
            status = "CANCELED" if ending == "cancel" else "EXPIRED"
            life.states.append(State(status, z, clock))
        if life.ours:
            life.answer = draw(st.sampled_from(["answer", "timeout", "timeout+not_placed"]))
            life.cancel_answer = ending == "cancel" and life.states[-1].status == "CANCELED"
        out.append(life)
    return out, clock


Message = tuple[str, Any]  # (kind, payload)


def messages(draw: st.DrawFn, lifes: list[Life], end: int) -> list[Message]:
    """Everything that reports the histories, before shuffling."""
    out: list[Message] = []
    for life in lifes:
        for state in life.states:
            if draw(st.integers(0, 4)):  # one in five reports is lost
                out.append(("event", _report(life, state)))
        if life.ours:
            if life.answer == "answer":
                placed = life.states[life.immediate]
                fills = [
                    full_fill(trade=t[0], qty=t[1], price=t[2], commission=t[3])
                    for t in (s.trade for s in life.states[1 : life.immediate + 1])
                    if t is not None
                ]
                body = rest_order(
                    symbol=life.symbol, oid=life.order_id, cid=life.cid, status=placed.status,
                    z=placed.z, q=life.quantity, time=placed.time, fills=fills,
                )  # fmt: skip
                out.append(("rest", body))
            else:
                out.append(("unknown", life.cid))
                if life.answer == "timeout+not_placed":
                    out.append(("not_placed", life.cid))
            if life.cancel_answer:
                last = life.states[-1]
                body = rest_order(
                    symbol=life.symbol, oid=life.order_id, cid=f"x-{life.cid}", orig=life.cid,
                    status="CANCELED", z=last.z, q=life.quantity, time=last.time,
                )  # fmt: skip
                out.append(("rest", body))
        out.append(("query", _row(life, life.states[-1])))  # the reconciliation's query
    start = min(life.states[0].time for life in lifes)
    for when in draw(st.lists(st.integers(start, end), max_size=3)):
        for symbol in SYMBOLS:
            rows = []
            for life in lifes:
                state = life.at(when) if life.symbol == symbol else None
                if state is not None and S(state.status) not in TERMINAL:
                    rows.append(_row(life, state))
            out.append(("open_orders", (symbol, rows)))
            out.append(("trades", (symbol, _trade_rows(lifes, symbol, when))))
    for symbol in SYMBOLS:
        if draw(st.booleans()):  # the reconciliation's myTrades (else a lost fill stays lost)
            out.append(("trades", (symbol, _trade_rows(lifes, symbol, end))))
    return out


def shown(delivery: list[Message]) -> set[tuple[str, int, int]]:
    """(symbol, orderId, trade id) of every trade some delivered message shows."""
    out = set()
    for kind, payload in delivery:
        if kind == "event" and payload["x"] == "TRADE":
            out.add((payload["s"], payload["i"], payload["t"]))
        elif kind == "rest":
            for fill in payload.get("fills", ()):
                out.add((payload["symbol"], payload["orderId"], fill["tradeId"]))
        elif kind == "trades":
            out.update((row["symbol"], row["orderId"], row["id"]) for row in payload[1])
    return out


def _trade_rows(lifes: list[Life], symbol: str, until: int) -> list[dict[str, Any]]:
    rows = [
        trade_row(
            symbol=symbol,
            trade=s.trade[0],
            oid=life.order_id,
            qty=s.trade[1],
            price=s.trade[2],
            commission=s.trade[3],
            time=s.time,
        )
        for life in lifes
        if life.symbol == symbol
        for s in life.states
        if s.trade is not None and s.time <= until
    ]
    return sorted(rows, key=lambda row: int(row["id"]))


def revealed(lifes: list[Life], kind: str, payload: Any) -> list[tuple[Life, int]]:
    """The true states (life, index into its states) that a message reports."""
    if kind == "event":
        facts = [(payload["s"], payload["i"], payload["X"], Decimal(payload["z"]))]
    elif kind in ("rest", "query"):
        facts = [(payload["symbol"], payload["orderId"], payload["status"],
                  Decimal(payload["executedQty"]))]  # fmt: skip
    elif kind == "open_orders":
        facts = [(r["symbol"], r["orderId"], r["status"], Decimal(r["executedQty"]))
                 for r in payload[1]]  # fmt: skip
    else:
        return []
    out = []
    for symbol, order_id, status, z in facts:
        [life] = [x for x in lifes if (x.symbol, x.order_id) == (symbol, order_id)]
        [index] = [i for i, s in enumerate(life.states) if (s.status, s.z) == (status, z)]
        out.append((life, index))
    return out


def deliver(tracker: OrderTracker, lifes: list[Life], delivery: list[Message]) -> None:
    """Feed the shuffled messages. After each one, every order the exchange has told us about
    is in the newest true state told so far (the reference model), and an openOrders answer
    lists as missing only open orders that are not SENT and not in its rows."""
    newest: dict[str, int] = {}  # cid -> index of the newest true state delivered
    for life in lifes:
        if life.ours:
            tracker.create(
                symbol=life.symbol, side="BUY", type="LIMIT", quantity=Decimal(life.quantity),
                price=Decimal(100), time_in_force="GTC", client_order_id=life.cid,
            )  # fmt: skip
    for kind, payload in delivery:
        if kind == "event":
            tracker.receive_event(payload)
        elif kind in ("rest", "query"):
            tracker.receive_rest_order(payload, "rest" if kind == "rest" else "reconciliation")
        elif kind == "unknown":
            tracker.unknown(payload, "timeout")
        elif kind == "not_placed":
            tracker.not_placed(payload, "-2013")
        elif kind == "open_orders":
            symbol, rows = payload
            listed = {row["orderId"] for row in rows}
            for order in tracker.receive_open_orders(rows, symbol):
                assert order.symbol == symbol and not order.terminal
                assert order.status is not S.SENT and order.order_id not in listed
        else:
            tracker.receive_trades(*payload)
        for life, index in revealed(lifes, kind, payload):
            newest[life.cid] = max(index, newest.get(life.cid, 0))
        for life in lifes:
            if life.cid in newest:
                state = life.states[newest[life.cid]]
                order = tracker.get(life.cid)
                assert order is not None
                assert (order.status, order.executed_qty) == (S(state.status), state.z)


def check_updates(updates: list[OrderUpdate]) -> None:
    """One order's OrderUpdates: each names the state before it, none goes backwards."""
    previous = None
    for update in updates:
        order = update.order
        assert update.previous is (None if previous is None else previous.status)
        if previous is not None:
            before = previous.status
            assert before not in TERMINAL or before is S.NOT_PLACED, "changed after the end"
            assert order.executed_qty >= previous.executed_qty, "executed qty went down"
            if before is S.NOT_PLACED:
                assert order.status in EXCHANGE_STATES, "NOT_PLACED only to what the exchange says"
            elif order.status not in TERMINAL:
                assert RANK[order.status] >= RANK[before], f"{before} -> {order.status}"
            if order.status is before:
                assert order.executed_qty > previous.executed_qty, "a change that changed nothing"
        previous = order


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Life], list[Message]]:
    lifes, end = draw(lives())
    pending = messages(draw, lifes, end)
    extra = draw(st.lists(st.sampled_from(pending), max_size=len(pending)))  # duplicates
    delivery = draw(st.permutations(pending + extra))
    # unknown() comes before not_placed() (the lead declares NOT_PLACED only after UNKNOWN)
    for life in lifes:
        first = {}
        for i, (kind, payload) in enumerate(delivery):
            if payload == life.cid:
                first.setdefault(kind, i)
        if len(first) == 2 and first["not_placed"] < first["unknown"]:
            a, b = first["not_placed"], first["unknown"]
            delivery[a], delivery[b] = delivery[b], delivery[a]
    return lifes, delivery


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_any_delivery_ends_in_the_true_orders_with_every_fill_once(
    scenario: tuple[list[Life], list[Message]],
) -> None:
    """Reordered, duplicated and lost facts: true final state, each fill once, never backwards."""
    lifes, delivery = scenario
    tracker = OrderTracker()
    deliver(tracker, lifes, delivery)
    events = tracker.events()
    fills = [e for e in events if isinstance(e, Fill)]
    true_fills = {
        (life.symbol, life.order_id, t[0]): (Decimal(t[1]), Decimal(t[2]), Decimal(t[3]))
        for life in lifes
        for t in life.trades
    }
    got = [(f.symbol, f.order_id, f.trade_id) for f in fills]
    assert sorted(got) == sorted(shown(delivery)), "every fill shown reported exactly once"
    for f in fills:
        assert (f.qty, f.price, f.commission) == true_fills[f.symbol, f.order_id, f.trade_id]
    for life in lifes:
        final = life.states[-1]
        order = tracker.by_order_id(life.symbol, life.order_id)
        assert order is not None and order.client_order_id == life.cid
        assert (order.status, order.executed_qty) == (S(final.status), final.z)
        assert order.update_time == final.time
        assert tracker.get(life.cid) == order
        mine = [f for f in fills if (f.symbol, f.order_id) == (life.symbol, life.order_id)]
        assert tracker.fills(life.cid) == mine
        check_updates(
            [
                e
                for e in events
                if isinstance(e, OrderUpdate) and e.order.client_order_id == life.cid
            ]
        )
    live = [life.cid for life in lifes if S(life.states[-1].status) not in TERMINAL]
    assert sorted(o.client_order_id for o in tracker.open_orders()) == sorted(live)
    assert tracker.untracked_trade_orders() == []
    for symbol in SYMBOLS:
        ids = [f.trade_id for f in fills if f.symbol == symbol]
        assert tracker.last_trade_id(symbol) == (max(ids) if ids else None)
    assert tracker.counters.malformed == 0


# --- junk never raises -----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
NUMBERS = st.sampled_from(["1e9999999999999999999", "1e999999999", "-0", "NaN", "sNaN", "1_0",
                           " 1", "0x10", "", "١", "Infinity", "-1"])  # fmt: skip
VALID: list[tuple[str, dict[str, Any]]] = [
    ("event", report(x="NEW", cid="o0")),
    ("event", fill_report(cid="o0", trade=1, qty=1, z=1, q=2, status="PARTIALLY_FILLED")),
    ("event", report(x="CANCELED", cid="x", orig="o0")),
    ("event", position(2, ("BTC", "1.0", 0))),
    ("event", balance_update("BTC", "0.5", 2)),
    ("rest", rest_order(cid="o0", status="FILLED", z=2, q=2, fills=[full_fill(trade=1, qty=2)])),
    ("trades", trade_row(trade=1)),
    ("account", account(3, ("BTC", 2, 0))),
]


@st.composite
def junk(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid fact with some fields deleted or replaced by any JSON value, or no mapping."""
    kind, fact = draw(st.sampled_from(VALID))
    fact = dict(fact)
    for key in draw(st.lists(st.sampled_from(sorted(fact)), max_size=4)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            fact.pop(key, None)
        else:
            fact[key] = draw(NUMBERS if choice == 1 else JSON)
    return kind, fact if draw(st.integers(0, 9)) else draw(JSON)


@settings(max_examples=600, deadline=None)
@given(junk())
def test_junk_is_counted_or_applied_and_never_raises(item: tuple[str, Any]) -> None:
    """Any field missing or of any value: no exception, and a refused fact changes nothing."""
    kind, fact = item
    tracker = OrderTracker()
    tracker.create(
        symbol="BTCUSDT", side="BUY", type="LIMIT", quantity=Decimal(2), price=Decimal(100),
        client_order_id="o0",
    )  # fmt: skip
    tracker.events()
    before = (tracker.orders(), tracker.balances())
    if kind == "event":
        tracker.receive_event(fact)
    elif kind == "rest":
        tracker.receive_rest_order(fact)
    elif kind == "trades":
        tracker.receive_trades("BTCUSDT", [fact])
    else:
        tracker.receive_account(fact)
    if tracker.counters.malformed:
        assert tracker.counters.malformed == 1
        assert tracker.events() == [] and (tracker.orders(), tracker.balances()) == before
