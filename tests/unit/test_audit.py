"""Drift audit (design §4.2): mismatches are found and located, nothing else is reported."""

from __future__ import annotations

import pytest

from streamer.sansio.audit import LevelMismatch
from streamer.sansio.book_sync import (
    AuditInconclusive,
    AuditPassed,
    BookSync,
    DriftDetected,
    Reset,
    ResetReason,
    SyncState,
)
from tests.helpers import diff, snap, started

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations
L = 500
BIDS = [("10.0", "1"), ("9.0", "2"), ("8.0", "3"), ("7.0", "4")]
ASKS = [("11.0", "1"), ("12.0", "2"), ("13.0", "3"), ("14.0", "4")]


def synced() -> BookSync:
    sync, token = started(diff(L + 1, L + 1))
    sync.receive_snapshot(snap(L, BIDS, ASKS), token)
    assert sync.synced
    sync.events()
    return sync


def audit(sync: BookSync, bids: list[tuple[str, str]], asks: list[tuple[str, str]], at: int = L):
    request = sync.request_audit(limit=10)
    assert request is not None and request.purpose == "audit"
    sync.events()
    sync.receive_snapshot(snap(at, bids, asks), request.token)
    return sync.events()


def drift_of(events: list[object]) -> tuple[LevelMismatch, ...]:
    (drift,) = [e for e in events if isinstance(e, DriftDetected)]
    return drift.mismatches


def test_exact_book_passes() -> None:
    """A book equal to the snapshot passes and counts every level it checked."""
    events = audit(synced(), BIDS, ASKS)
    (passed,) = [e for e in events if isinstance(e, AuditPassed)]
    assert passed.levels_checked == 8 and passed.snapshot_id == L


def test_wrong_quantity_is_detected_and_located() -> None:
    """One level with another quantity is reported with both values, then the symbol resyncs."""
    sync = synced()
    events = audit(sync, [*BIDS[:1], ("9.0", "2.5"), *BIDS[2:]], ASKS)
    assert drift_of(events) == (LevelMismatch("bid", "9.0", "2.5", "2"),)
    assert [e.reason for e in events if isinstance(e, Reset)] == [ResetReason.DRIFT]
    assert sync.state is SyncState.WAITING and sync.counters.drifts == 1


def test_missing_level_is_detected() -> None:
    """A level the snapshot has and the book lacks is reported as missing."""
    events = audit(synced(), BIDS, [*ASKS[:2], ("12.5", "7"), *ASKS[2:]])
    assert drift_of(events) == (LevelMismatch("ask", "12.5", "7", None),)


def test_phantom_level_is_detected() -> None:
    """A level the book has and the snapshot lacks is reported as phantom."""
    events = audit(synced(), BIDS, [ASKS[0], *ASKS[2:]])
    assert drift_of(events) == (LevelMismatch("ask", "12.0", None, "2"),)


def test_quantities_compare_by_value_not_spelling() -> None:
    """ "2" and "2.00000000" are equal quantities."""
    events = audit(synced(), [(p, q + ".00000000") for p, q in BIDS], ASKS)
    assert any(isinstance(e, AuditPassed) for e in events)


def test_levels_touched_after_the_snapshot_id_are_never_reported() -> None:
    """A snapshot older than the book: levels changed after its id are skipped, others checked."""
    sync = synced()  # at L + 1
    sync.receive_diff(diff(L + 2, L + 2, bids=[("9.0", "5")], asks=[("11.0", "0")]))
    # The snapshot is at L+1: it still shows 9.0 x 2 and 11.0 x 1, which the book changed later.
    events = audit(sync, BIDS, ASKS, at=L + 1)
    assert any(isinstance(e, AuditPassed) for e in events)
    assert not any(isinstance(e, DriftDetected) for e in events)


def test_levels_outside_the_snapshot_window_are_never_reported() -> None:
    """A truncated snapshot (limit levels returned) only vouches for levels up to its last one."""
    sync = synced()
    request = sync.request_audit(limit=2)
    assert request is not None
    sync.receive_snapshot(snap(L, BIDS[:2], ASKS[:2]), request.token)
    events = sync.events()
    (passed,) = [e for e in events if isinstance(e, AuditPassed)]
    assert passed.levels_checked == 4


def test_phantom_beyond_a_short_snapshot_is_found_when_the_side_is_complete() -> None:
    """Fewer levels than requested means the whole side was sent: a deeper extra level is drift."""
    events = audit(synced(), BIDS[:3], ASKS)  # limit 10, only 3 bids: 7.0 must not exist
    assert drift_of(events) == (LevelMismatch("bid", "7.0", None, "4"),)


def test_snapshot_ahead_of_the_book_waits_for_the_stream() -> None:
    """An audit snapshot newer than the book runs once the book reaches its id."""
    sync = synced()
    request = sync.request_audit(limit=10)
    assert request is not None
    later_bids = [("10.0", "6"), *BIDS[1:]]
    sync.receive_snapshot(snap(L + 2, later_bids, ASKS), request.token)
    assert not any(isinstance(e, (AuditPassed, DriftDetected)) for e in sync.events())
    sync.receive_diff(diff(L + 2, L + 2, bids=[("10.0", "6")]))
    assert any(isinstance(e, AuditPassed) for e in sync.events())


def test_snapshot_older_than_the_journal_is_inconclusive() -> None:
    """When the journal no longer covers the snapshot's id, nothing is claimed either way."""
    sync = BookSync("BTCUSDT", journal_size=2)
    sync.receive_diff(diff(L + 1, L + 1))
    token = sync.pending_token
    sync.receive_snapshot(snap(L, BIDS, ASKS), token)
    for i in range(2, 6):
        sync.receive_diff(diff(L + i, L + i, bids=[("9.0", str(i))]))
    request = sync.request_audit()
    assert request is not None
    sync.receive_snapshot(snap(L + 1, BIDS, ASKS), request.token)
    assert any(isinstance(e, AuditInconclusive) for e in sync.events())
    assert sync.synced


def test_unrequested_snapshot_is_audited_when_synced() -> None:
    """A snapshot nobody asked for (replay) is audited, never loaded over the book."""
    sync = synced()
    sync.receive_snapshot(snap(L, BIDS, ASKS[1:]), None)
    assert drift_of(sync.events()) == (LevelMismatch("ask", "11.0", None, "1"),)
