"""Property tests: random valid diff streams with drops, duplicates and reordering.

The exchange is modelled as a sequence of atomic changes with increasing update ids; diffs group
consecutive changes. Whatever arrives, whenever the core says "synced at N", its book must equal the
simple reference book after change N; a dropped diff after sync must end in a reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.sansio.book_sync import BookSync, SnapshotRequest
from streamer.sansio.wire import DepthDiff, DepthSnapshot, Venue
from tests import reference

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations
PRICES_BID = [f"{p}.00" for p in range(90, 100)]
PRICES_ASK = [f"{p}.00" for p in range(101, 111)]
QTYS = ["0.000", "1.000", "2.500", "10.000"]

levels = st.lists(st.tuples(st.sampled_from(PRICES_BID), st.sampled_from(QTYS)), max_size=4)
ask_levels = st.lists(st.tuples(st.sampled_from(PRICES_ASK), st.sampled_from(QTYS)), max_size=4)


@dataclass
class Market:
    ids: list[int]  # id of each change, increasing
    states: list[tuple[reference.Side, reference.Side]]  # book after each change
    diffs: list[DepthDiff]


def build_market(data: st.DataObject, futures: bool) -> Market:
    changes = data.draw(st.lists(st.tuples(levels, ask_levels), min_size=2, max_size=40))
    bids: reference.Side = {}
    asks: reference.Side = {}
    next_id = 1000
    ids: list[int] = []
    states = []
    for b, a in changes:
        next_id += data.draw(st.integers(1, 3)) if futures else 1
        ids.append(next_id)
        reference.apply(bids, b)
        reference.apply(asks, a)
        states.append((dict(bids), dict(asks)))
    diffs: list[DepthDiff] = []
    i, prev_u = 0, ids[0] - 1
    while i < len(changes):
        n = data.draw(st.integers(1, 3))
        group = changes[i : i + n]
        merged_b = {p: q for b, _ in group for p, q in b}
        merged_a = {p: q for _, a in group for p, q in a}
        first, last = ids[i], ids[min(i + n, len(ids)) - 1]
        diffs.append(
            DepthDiff(
                "BTCUSDT",
                first,
                last,
                prev_u if futures else None,
                [[p, q] for p, q in merged_b.items()],
                [[p, q] for p, q in merged_a.items()],
                0,
            )
        )
        prev_u = last
        i += n
    return Market(ids, states, diffs)


def state_at(market: Market, update_id: int) -> tuple[reference.Side, reference.Side]:
    """The reference book after the last change with id <= update_id."""
    state: tuple[reference.Side, reference.Side] = ({}, {})
    for change_id, s in zip(market.ids, market.states, strict=True):
        if change_id > update_id:
            break
        state = s
    return state


def as_decimal(sync: BookSync) -> tuple[reference.Side, reference.Side]:
    return (
        {Decimal(p): Decimal(q) for _, p, q in sync.book.bids.levels()},
        {Decimal(p): Decimal(q) for _, p, q in sync.book.asks.levels()},
    )


def run(data: st.DataObject, futures: bool, faults: bool) -> None:
    market = build_market(data, futures)
    venue = Venue.USDM if futures else Venue.SPOT
    sync = BookSync("BTCUSDT", venue)
    # Delivery order: each diff maybe dropped, duplicated, or swapped with its neighbour.
    order: list[DepthDiff | None] = []
    dropped_diffs: list[DepthDiff] = []
    for d in market.diffs:
        fate = data.draw(st.sampled_from(["ok"] * 6 + ["drop", "dup", "swap"])) if faults else "ok"
        if fate == "drop":
            order.append(None)  # marks where a diff went missing
            dropped_diffs.append(d)
        elif fate == "dup":
            order += [d, d]
        elif fate == "swap" and order and order[-1] is not None:
            order.insert(len(order) - 1, d)
        else:
            order.append(d)
    pending: list[tuple[int, SnapshotRequest]] = []
    produced = market.ids[0] - 1  # the exchange's current id: the newest diff it has sent
    must_reset: tuple[int, int] | None = None  # (u of a dropped diff, resets at drop time)
    for step, d in enumerate(order):
        if d is None:
            lost = dropped_diffs.pop(0)
            produced = max(produced, lost.last_id)
            if sync.synced and sync.last_update_id < lost.first_id and must_reset is None:
                must_reset = (lost.last_id, sync.counters.resets)
            continue
        produced = max(produced, d.last_id)
        sync.receive_diff(d)
        if must_reset and d.first_id > must_reset[0]:
            assert sync.counters.resets > must_reset[1], "a dropped diff went unnoticed"
            must_reset = None
        for event in sync.events():
            if isinstance(event, SnapshotRequest):
                pending.append((step + data.draw(st.integers(0, 3)), event))
        for due, request in [p for p in pending if p[0] <= step]:
            pending.remove((due, request))
            ahead = data.draw(st.integers(0, 2))
            candidates = [i for i in market.ids if i <= produced + ahead] or [market.ids[0]]
            at = data.draw(st.sampled_from(candidates[-4:]))
            bids, asks = state_at(market, at)
            snapshot = DepthSnapshot(
                at,
                [[str(p), str(q)] for p, q in sorted(bids.items(), reverse=True)],
                [[str(p), str(q)] for p, q in sorted(asks.items())],
            )
            sync.receive_snapshot(snapshot, request.token)
            for event in sync.events():
                if isinstance(event, SnapshotRequest):
                    pending.append((step + data.draw(st.integers(0, 3)), event))
        if sync.synced:
            assert as_decimal(sync) == state_at(market, sync.last_update_id)
    if not faults and not pending:
        assert sync.synced and sync.last_update_id == market.ids[-1]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_spot_clean_stream_always_syncs_to_the_reference(data: st.DataObject) -> None:
    """Spot, no faults: the core syncs and tracks the reference book at every synced id."""
    run(data, futures=False, faults=False)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_spot_faulty_stream_is_never_wrong_when_synced(data: st.DataObject) -> None:
    """Spot with drops, duplicates and swaps: synced always means equal to the reference."""
    run(data, futures=False, faults=True)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_futures_clean_stream_always_syncs_to_the_reference(data: st.DataObject) -> None:
    """Futures (pu chain, sparse ids), no faults: synced and equal to the reference."""
    run(data, futures=True, faults=False)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_futures_faulty_stream_is_never_wrong_when_synced(data: st.DataObject) -> None:
    """Futures with drops, duplicates and swaps: synced always means equal to the reference."""
    run(data, futures=True, faults=True)
