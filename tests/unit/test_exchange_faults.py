"""The fault plan, the snapshot history and the dispatcher of the local exchange (no sockets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from streamer.testing.exchange.dispatch import Dispatcher
from streamer.testing.exchange.engine import Engine, EngineOutput, UserEvent
from streamer.testing.exchange.faults import Fault, FaultKind, FaultPlan
from streamer.testing.exchange.history import SnapshotHistory
from streamer.testing.exchange.symbols import load_exchange_info, symbol_infos


def _engine() -> Engine:
    return Engine(symbol_infos(load_exchange_info(), ["BTCUSDT", "ETHBTC"]), seed=7, levels=20)


def test_every_kind_round_trips_through_json() -> None:
    """Each fault kind survives to_json -> from_json unchanged (apart from its id)."""
    plan = FaultPlan()
    for kind in FaultKind:
        fault = plan.add(Fault(kind, count=3, symbol="BTCUSDT", delay_ms=5, retry_after=9))
        data = fault.to_json()
        assert data["kind"] == kind.value
        rebuilt = Fault.from_json({k: v for k, v in data.items() if k != "id"})
        assert rebuilt == Fault(kind, count=3, symbol="BTCUSDT", delay_ms=5, retry_after=9)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "nope"},
        {},
        {"kind": "drop_diff", "count": "2"},
        {"kind": "drop_diff", "count": True},
        {"kind": "drop_diff", "count": 0},
        {"kind": "drop_diff", "probability": 0},
        {"kind": "drop_diff", "surprise": 1},
        {"kind": "drop_diff", "channel": "carrier-pigeon"},
        {"kind": "rate_limit", "status": 500},
        {"kind": "delay_diff", "delayMs": -1},
        {"kind": "order_timeout", "drop": "yes"},
    ],
)
def test_invalid_json_faults_are_refused(data: dict[str, Any]) -> None:
    """from_json raises ValueError for unknown kinds, fields, wrong types and bad values."""
    with pytest.raises(ValueError):
        Fault.from_json(data)


def test_add_json_is_all_or_nothing() -> None:
    """A list with one bad fault adds none of them."""
    plan = FaultPlan()
    with pytest.raises(ValueError):
        plan.add_json([{"kind": "drop_diff"}, {"kind": "nope"}])
    assert plan.pending() == []
    added = plan.add_json({"kind": "drop_diff", "symbol": "ETHBTC"})
    assert [f.symbol for f in added] == ["ETHBTC"]


def test_depth_faults_fire_count_times_for_their_symbol_and_connection() -> None:
    """A counted fault fires that many times, only where its symbol and connection match."""
    plan = FaultPlan()
    plan.drop_diffs("BTCUSDT", count=2)
    plan.duplicate_diffs(connection=5)
    assert plan.take_depth_fault("ETHBTC", connection=1) is None
    first = plan.take_depth_fault("BTCUSDT", connection=1)
    assert first is not None and first.kind is FaultKind.DROP_DIFF
    assert plan.take_depth_fault("BTCUSDT") is not None
    assert plan.take_depth_fault("BTCUSDT", connection=1) is None
    dup = plan.take_depth_fault("ETHBTC", connection=5)
    assert dup is not None and dup.kind is FaultKind.DUPLICATE_DIFF
    assert plan.pending() == []


def test_uncounted_fault_lasts_until_cleared() -> None:
    """count=None keeps firing until clear(kind)."""
    plan = FaultPlan()
    plan.silence_user_stream(account_id=3)
    plan.drop_diffs("BTCUSDT")
    for _ in range(5):
        fault = plan.take_user_fault(3)
        assert fault is not None and fault.kind is FaultKind.USER_STREAM_SILENT
    assert plan.take_user_fault(4) is None
    plan.clear(FaultKind.USER_STREAM_SILENT)
    assert plan.take_user_fault(3) is None
    assert [f.kind for f in plan.pending()] == [FaultKind.DROP_DIFF]
    plan.clear()
    assert plan.pending() == []


def test_probability_is_seeded_and_deterministic() -> None:
    """A probabilistic fault fires in the same pattern for the same seed, and not always."""

    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed)
        plan.add(Fault(FaultKind.DROP_DIFF, count=None, probability=0.5))
        return [plan.take_depth_fault("BTCUSDT") is not None for _ in range(64)]

    assert pattern(11) == pattern(11)
    assert pattern(11) != pattern(12)
    assert 0 < sum(pattern(11)) < 64


def test_connection_faults_for_every_open_connection() -> None:
    """With no connection and no count, every connection open at the time takes it once."""
    plan = FaultPlan()
    market = plan.register_connection("market")
    wsapi = plan.register_connection("wsapi")
    gone = plan.register_connection("market")
    plan.server_shutdown(channel="market", delay_ms=10)
    later = plan.register_connection("market")
    assert plan.take_connection_fault(wsapi, "wsapi") is None
    assert plan.take_connection_fault(later, "market") is None
    shutdown = plan.take_connection_fault(market, "market")
    assert shutdown is not None and shutdown.delay_ms == 10
    assert plan.take_connection_fault(market, "market") is None
    plan.unregister_connection(gone)
    assert plan.pending() == []  # the last target left
    plan.disconnect(wsapi)
    assert plan.take_connection_fault(market) is None
    assert plan.take_connection_fault(wsapi) is not None
    assert plan.connections("market") == [market, later]


def test_request_faults_respect_channels_and_listeners_hear_of_faults() -> None:
    """A REST rate_limit fault is not taken by the WS-API; listeners see each added fault."""
    plan = FaultPlan()
    heard: list[Fault] = []
    plan.add_listener(heard.append)
    plan.rate_limit(status=418, retry_after=3)
    assert plan.take_request_fault("wsapi") is None
    fault = plan.take_request_fault("rest")
    assert fault is not None and (fault.http_status, fault.retry_after) == (418, 3)
    plan.order_5xx(placed=True, symbol="ETHBTC")
    assert plan.take_order_fault("BTCUSDT") is None
    assert plan.take_order_fault("ETHBTC") is not None
    assert [f.kind for f in heard] == [FaultKind.RATE_LIMIT, FaultKind.ORDER_5XX_PLACED]
    plan.remove_listener(heard.append)
    plan.order_1007(placed=False)
    assert len(heard) == 2
    assert plan.take_order_fault("BTCUSDT", "wsapi") is not None  # no channel: any channel


def test_corrupt_levels_changes_one_quantity_only() -> None:
    """corrupt_levels returns copies with exactly one quantity changed, decimals kept."""
    bids = [["100.00", "1.50000000"], ["99.99", "0.00000000"]]
    asks = [["100.01", "2.00000000"]]
    new_bids, new_asks = FaultPlan(3).corrupt_levels(bids, asks)
    changed = [
        (old, new) for old, new in zip(bids + asks, new_bids + new_asks, strict=True) if old != new
    ]
    assert len(changed) == 1
    (old, new) = changed[0]
    assert old[0] == new[0] and old[1] != new[1]
    assert len(new[1].split(".")[1]) == 8
    assert bids[0][1] == "1.50000000"  # inputs untouched
    assert FaultPlan(3).corrupt_levels(bids, asks) == (new_bids, new_asks)
    assert FaultPlan(3).corrupt_levels([], []) == ([], [])


def test_stale_snapshot_served_from_history_once() -> None:
    """The stale_snapshot fault serves an older recorded book, truncated, then the current one."""
    engine = _engine()
    plan = FaultPlan(history=SnapshotHistory(every_ms=0))
    plan.stale_snapshot("BTCUSDT")
    current = engine.snapshot("BTCUSDT", 5)
    assert plan.snapshot(engine, "BTCUSDT", 5) == current  # nothing older: fault kept
    plan.history.record(engine, ["BTCUSDT"], 0)
    old_id = engine.last_update_id("BTCUSDT")
    while engine.last_update_id("BTCUSDT") == old_id:
        engine.step(1, 10)
    engine.drain()
    stale = plan.snapshot(engine, "BTCUSDT", 5)
    assert stale.last_update_id == old_id
    assert len(stale.bids) == 5 and stale.bids == current.bids
    assert plan.snapshot(engine, "BTCUSDT", 5).last_update_id == engine.last_update_id("BTCUSDT")


def _move(engine: Engine, symbol: str, now_ms: int) -> int:
    """Step the market until ``symbol``'s book changes; its new update id."""
    before = engine.last_update_id(symbol)
    while engine.last_update_id(symbol) == before:
        engine.step(now_ms, 5)
    return engine.last_update_id(symbol)


def test_history_throttles_per_symbol() -> None:
    """A book recorded less than every_ms after the previous one is skipped."""
    engine = _engine()
    history = SnapshotHistory(every_ms=100)
    history.watch(["ETHBTC"])
    history.record(engine, ["ETHBTC"], 0)
    first = engine.last_update_id("ETHBTC")
    second = _move(engine, "ETHBTC", 50)
    history.record(engine, ["ETHBTC"], 50)  # too soon: skipped
    newest = history.older("ETHBTC", second + 1)
    assert newest is not None and newest.last_update_id == first
    history.record(engine, ["ETHBTC"], 100)
    newest = history.older("ETHBTC", second + 1)
    assert newest is not None and newest.last_update_id == second
    assert history.older("BTCUSDT", 10**9) is None


def test_history_keeps_the_last_few_distinct_books() -> None:
    """Only the last ``keep`` distinct books are kept; ``behind`` counts back from the newest."""
    engine = _engine()
    history = SnapshotHistory(keep=3, every_ms=0)
    history.watch(["ETHBTC"])
    ids = []
    for t in range(5):
        ids.append(_move(engine, "ETHBTC", t))
        history.record(engine, ["ETHBTC"], t)
        history.record(engine, ["ETHBTC"], t)  # the same book twice is kept once
    top = ids[-1] + 1
    got = [history.older("ETHBTC", top, behind=b) for b in (1, 2, 3, 4)]
    assert [s.last_update_id for s in got if s is not None] == [ids[4], ids[3], ids[2], ids[2]]
    older_than_last = history.older("ETHBTC", ids[4], behind=1)
    assert older_than_last is not None and older_than_last.last_update_id == ids[3]


def test_history_records_only_what_pending_stale_faults_watch() -> None:
    """Books are copied only for symbols of pending stale_snapshot faults, and forgotten after."""
    engine = _engine()
    plan = FaultPlan(history=SnapshotHistory(every_ms=0))
    dispatcher = Dispatcher(engine, _Sink(), _Sink(), plan.history)
    ids = {s: _move(engine, s, 1) for s in ("BTCUSDT", "ETHBTC")}
    dispatcher.flush(1)
    assert not plan.history.active
    assert plan.history.older("BTCUSDT", 10**12) is None  # no fault: nothing recorded

    plan.drop_diffs("BTCUSDT")  # other kinds watch nothing
    assert not plan.history.active
    fault = plan.stale_snapshot("BTCUSDT")
    assert plan.history.watching("BTCUSDT") and not plan.history.watching("ETHBTC")
    plan.history.record(engine, ["BTCUSDT", "ETHBTC"], 2)  # what FakeExchange does on add
    for symbol in ids:
        _move(engine, symbol, 3)
    dispatcher.flush(3)
    recorded = plan.history.older("BTCUSDT", 10**12)
    assert recorded is not None
    assert recorded.last_update_id == engine.last_update_id("BTCUSDT") > ids["BTCUSDT"]
    assert plan.history.older("ETHBTC", 10**12) is None

    everywhere = plan.stale_snapshot(None)
    assert plan.history.watching("ETHBTC")
    plan.history.record(engine, ["ETHBTC"], 4)
    _move(engine, "ETHBTC", 5)
    assert plan.snapshot(engine, "ETHBTC", 5).last_update_id < engine.last_update_id("ETHBTC")
    assert everywhere not in plan.pending()  # fired: ETHBTC is no longer watched, nor kept
    assert not plan.history.watching("ETHBTC") and plan.history.older("ETHBTC", 10**12) is None
    assert fault in plan.pending() and plan.history.watching("BTCUSDT")

    plan.clear(FaultKind.STALE_SNAPSHOT)
    assert not plan.history.active and plan.history.older("BTCUSDT", 10**12) is None


class _Sink:
    def __init__(self) -> None:
        self.market: list[EngineOutput] = []
        self.users: list[UserEvent] = []

    def publish(self, out: Any, now_ms: int | None = None) -> None:
        if isinstance(out, EngineOutput):
            self.market.append(out)
        else:
            self.users.extend(out)


def test_dispatcher_holds_user_events_in_order() -> None:
    """While held, user events queue; the last release sends them in engine order."""
    engine = _engine()
    sink = _Sink()
    dispatcher = Dispatcher(engine, sink, sink, SnapshotHistory(every_ms=0))
    account = engine.create_account({"BTC": Decimal(1)})
    dispatcher.hold()
    dispatcher.hold()
    engine.deposit(account, "BTC", Decimal(1), 10)
    dispatcher.flush(10)
    engine.deposit(account, "BTC", Decimal(2), 20)
    dispatcher.flush(20)
    assert sink.users == [] and len(sink.market) == 2
    dispatcher.release()
    assert sink.users == []
    dispatcher.release()
    deltas = [e.event["d"] for e in sink.users if e.event["e"] == "balanceUpdate"]
    assert deltas == ["1.00000000", "2.00000000"]
    with pytest.raises(RuntimeError):
        dispatcher.release()
