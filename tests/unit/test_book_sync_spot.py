"""Spot book sync: one test per rule of protocol §2.1, at both edges."""

from __future__ import annotations

import pytest

from streamer.sansio.book_sync import (
    BookSync,
    Outcome,
    Reset,
    ResetReason,
    SnapshotIgnored,
    Synced,
    SyncState,
)
from tests.helpers import book_of, diff, requests, snap, started

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations

L = 100


def test_first_diff_is_buffered_and_asks_for_a_snapshot() -> None:
    """The first diff is buffered and triggers exactly one sync snapshot request."""
    sync = BookSync("BTCUSDT")
    assert sync.receive_diff(diff(101, 102)) is Outcome.BUFFERED
    (request,) = requests(sync)
    assert (request.symbol, request.purpose, request.limit) == ("BTCUSDT", "sync", 5000)
    assert sync.state is SyncState.SNAPSHOT_PENDING


def test_buffered_diff_with_u_equal_to_snapshot_id_is_dropped() -> None:
    """u == lastUpdateId is dropped (u <= L), the next one (U == L+1) is applied."""
    sync, token = started(diff(99, L, bids=[("1.0", "5")]))
    sync.receive_diff(diff(L + 1, L + 2, bids=[("2.0", "7")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")], asks=[("3.0", "1")]), token)
    assert sync.state is SyncState.SYNCED and sync.last_update_id == L + 2
    assert book_of(sync)[0] == {"1.0": "1", "2.0": "7"}  # the u == L diff's qty 5 never landed
    assert sync.counters.dropped == 1


def test_first_event_starting_at_l_plus_1_applies() -> None:
    """Edge U == L+1: the first diff after the snapshot is applied."""
    sync, token = started(diff(L + 1, L + 1, asks=[("3.0", "2")]))
    sync.receive_snapshot(snap(L, asks=[("3.0", "1")]), token)
    assert sync.synced and sync.last_update_id == L + 1
    assert book_of(sync)[1] == {"3.0": "2"}


def test_first_event_starting_at_l_plus_2_after_snapshot_is_a_gap() -> None:
    """Edge U == L+2 on a synced book at L: a gap resets with reason and restarts from that diff."""
    sync, token = started(diff(L - 5, L - 1))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    assert sync.synced and sync.last_update_id == L
    sync.events()
    assert sync.receive_diff(diff(L + 2, L + 3)) is Outcome.RESET
    events = sync.events()
    resets = [e for e in events if isinstance(e, Reset)]
    assert [r.reason for r in resets] == [ResetReason.GAP]
    assert "U=102" in resets[0].detail
    assert sync.state is SyncState.SNAPSHOT_PENDING and len(sync.book.bids) == 0


def test_straddling_first_event_applies() -> None:
    """A buffered diff with U <= L+1 <= u (straddling the snapshot id) is applied whole."""
    sync, token = started(diff(L - 2, L + 3, bids=[("1.5", "4")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    assert sync.synced and sync.last_update_id == L + 3
    assert book_of(sync)[0] == {"1.0": "1", "1.5": "4"}


def test_stale_snapshot_older_than_first_buffered_u_is_fetched_again() -> None:
    """L + 1 < first U: the snapshot cannot be bridged; a new one is requested, buffer kept."""
    sync, token = started(diff(L + 2, L + 3, bids=[("1.0", "9")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    (again,) = requests(sync)
    assert again.token != token and sync.state is SyncState.SNAPSHOT_PENDING
    assert sync.counters.stale_snapshots == 1
    sync.receive_snapshot(snap(L + 1, bids=[("1.0", "1")]), again.token)
    assert sync.synced and sync.last_update_id == L + 3 and book_of(sync)[0] == {"1.0": "9"}


def test_snapshot_exactly_one_before_first_u_is_not_stale() -> None:
    """L == first U - 1 is bridged by the first diff: no refetch."""
    sync, token = started(diff(L + 1, L + 1))
    sync.receive_snapshot(snap(L), token)
    assert sync.synced and sync.counters.stale_snapshots == 0


def test_deleting_an_absent_level_is_harmless() -> None:
    """A zero quantity for a price the book does not hold changes nothing."""
    sync, token = started(diff(L + 1, L + 1, bids=[("0.5", "0.00000000")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")], asks=[("2.0", "1")]), token)
    assert sync.synced
    assert book_of(sync) == ({"1.0": "1"}, {"2.0": "1"})


def test_token_of_a_superseded_snapshot_is_ignored() -> None:
    """After a reset, the answer to the old request is ignored and the new one is awaited."""
    sync, old = started(diff(L + 1, L + 1))
    sync.receive_diff(diff(L + 5, L + 6))  # gap inside the buffer: restart, new request
    (new,) = requests(sync)
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), old)
    ignored = [e for e in sync.events() if isinstance(e, SnapshotIgnored)]
    assert len(ignored) == 1 and ignored[0].token == old
    assert sync.state is SyncState.SNAPSHOT_PENDING and len(sync.book.bids) == 0
    sync.receive_snapshot(snap(L + 5), new.token)
    assert sync.synced and sync.last_update_id == L + 6


def test_buffer_overflow_resets_with_reason() -> None:
    """More diffs than the buffer holds while waiting for a snapshot: reset, not a crash."""
    sync = BookSync("BTCUSDT", max_buffer=3)
    for i in range(3):
        assert sync.receive_diff(diff(L + i, L + i)) is Outcome.BUFFERED
    assert sync.receive_diff(diff(L + 3, L + 3)) is Outcome.RESET
    resets = [e for e in sync.events() if isinstance(e, Reset)]
    assert [r.reason for r in resets] == [ResetReason.BUFFER_OVERFLOW]
    assert sync.state is SyncState.WAITING
    assert sync.receive_diff(diff(L + 4, L + 4)) is Outcome.BUFFERED  # starts over


def test_duplicate_and_stale_diffs_are_dropped_when_synced() -> None:
    """u <= local is dropped without touching the book."""
    sync, token = started(diff(L + 1, L + 2, bids=[("1.0", "2")]))
    sync.receive_snapshot(snap(L), token)
    assert sync.receive_diff(diff(L + 1, L + 2, bids=[("1.0", "99")])) is Outcome.DROPPED
    assert sync.receive_diff(diff(L + 2, L + 2, bids=[("1.0", "98")])) is Outcome.DROPPED
    assert book_of(sync)[0] == {"1.0": "2"} and sync.last_update_id == L + 2


def test_overlapping_diff_applies() -> None:
    """U <= local < u (overlap, not a gap) is applied: quantities are absolute."""
    sync, token = started(diff(L + 1, L + 2))
    sync.receive_snapshot(snap(L), token)
    assert sync.receive_diff(diff(L + 2, L + 4, asks=[("5.0", "1")])) is Outcome.APPLIED
    assert sync.last_update_id == L + 4


def test_gap_restarts_with_the_revealing_diff_and_resyncs() -> None:
    """After a gap the revealing diff is the first of the new buffer; the next snapshot syncs."""
    sync, token = started(diff(L + 1, L + 1))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    sync.events()
    sync.receive_diff(diff(L + 10, L + 11, bids=[("1.0", "3")]))
    (request,) = requests(sync)
    sync.receive_snapshot(snap(L + 10, bids=[("1.0", "2")]), request.token)
    assert sync.synced and sync.last_update_id == L + 11 and book_of(sync)[0] == {"1.0": "3"}
    assert any(isinstance(e, Synced) for e in sync.events())


def test_crossed_book_resets() -> None:
    """A diff that leaves best bid >= best ask resets the symbol (defensive check)."""
    sync, token = started(diff(L + 1, L + 1, bids=[("2.5", "1")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")], asks=[("2.0", "1")]), token)
    resets = [e for e in sync.events() if isinstance(e, Reset)]
    assert [r.reason for r in resets] == [ResetReason.CROSSED]
    assert not sync.synced


def test_other_spelling_of_a_held_price_updates_that_level() -> None:
    """ "1.00000000" and "1.0" are one level: exactness never depends on the spelling."""
    sync, token = started(diff(L + 1, L + 1, bids=[("1.00000000", "4")]))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    assert book_of(sync)[0] == {"1.0": "4"}
    sync.receive_diff(diff(L + 2, L + 2, bids=[("1.000", "0")]))
    assert len(sync.book.bids) == 0


def test_requested_reset_clears_and_restarts() -> None:
    """reset() (e.g. after a reconnect) discards the book and waits for the next diff."""
    sync, token = started(diff(L + 1, L + 1))
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    sync.reset("connection lost")
    assert sync.state is SyncState.WAITING and len(sync.book.bids) == 0
    reasons = [e.reason for e in sync.events() if isinstance(e, Reset)]
    assert reasons == [ResetReason.REQUESTED]


def test_snapshot_the_book_cannot_hold_is_counted_and_asked_again() -> None:
    """A snapshot price past an int64 mantissa is Malformed: nothing loads, it asks again."""
    sync, token = started(diff(L + 1, L + 1, bids=[("1.0", "5")]))
    sync.receive_snapshot(snap(L, bids=[("92233720368.54775808", "1")]), token)
    assert sync.state is SyncState.SNAPSHOT_PENDING and sync.counters.malformed == 1
    events = sync.events()
    assert any(isinstance(e, SnapshotIgnored) for e in events)
    (request,) = [e for e in events if not isinstance(e, SnapshotIgnored)]
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), sync.pending_token)
    assert sync.synced and book_of(sync)[0] == {"1.0": "5"}  # the buffered diff was kept
    assert request.token != token
