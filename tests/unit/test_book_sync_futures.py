"""USD-M / COIN-M book sync: the rules of protocol §2.2 (pu continuity), at both edges."""

from __future__ import annotations

import pytest

from streamer.sansio.book_sync import Outcome, Reset, ResetReason, SyncState
from streamer.sansio.wire import Venue
from tests.helpers import book_of, diff, requests, snap, started

pytestmark = pytest.mark.usefixtures("book_impl")  # both book implementations

L = 1000


@pytest.mark.parametrize("venue", [Venue.USDM, Venue.COINM])
def test_futures_snapshot_limit_is_1000(venue: Venue) -> None:
    """Futures request the deepest snapshot they serve, 1000 levels."""
    sync, _ = started(diff(990, 995, pu=980), venue)
    assert sync.snapshot_limit == 1000


def test_diff_ending_before_l_is_dropped_and_u_equal_l_applies() -> None:
    """u < L is dropped; the first diff with U <= L <= u (here u == L) is applied."""
    sync, token = started(diff(980, 990, bids=[("1.0", "7")], pu=970), Venue.USDM)
    sync.receive_diff(diff(995, L, bids=[("1.0", "8")], pu=990))
    sync.receive_diff(diff(1003, 1010, bids=[("1.0", "9")], pu=L))
    sync.receive_snapshot(snap(L, bids=[("1.0", "8")]), token)
    assert sync.synced and sync.last_update_id == 1010
    assert book_of(sync)[0] == {"1.0": "9"}
    assert sync.counters.dropped == 1


def test_first_event_must_contain_l_or_follow_it() -> None:
    """With an empty buffer after the snapshot, a first diff with U > L is a gap unless its
    pu is L (it follows the snapshot directly)."""
    sync, token = started(diff(990, 995, pu=980), Venue.USDM)
    sync.receive_snapshot(snap(L), token)
    assert sync.synced
    sync.events()
    assert sync.receive_diff(diff(L + 2, L + 5, pu=L - 1)) is Outcome.RESET
    assert [e.reason for e in sync.events() if isinstance(e, Reset)] == [ResetReason.GAP]


def test_first_event_right_after_the_snapshot_applies() -> None:
    """pu == L proves the buffered diff continues a snapshot taken between two events: it is
    neither stale nor a gap, and applies."""
    sync, token = started(diff(L + 3, L + 5, bids=[("1.0", "7")], pu=L), Venue.USDM)
    sync.receive_snapshot(snap(L, bids=[("1.0", "8")]), token)
    assert sync.synced and sync.counters.stale_snapshots == 0
    assert sync.last_update_id == L + 5 and book_of(sync)[0] == {"1.0": "7"}


def test_pu_continuity_applies_and_mismatch_resets() -> None:
    """pu == previous u applies (ids need not be contiguous); any other pu resets."""
    sync, token = started(diff(995, 1002, pu=990), Venue.USDM)
    sync.receive_snapshot(snap(L), token)
    assert sync.receive_diff(diff(1050, 1060, pu=1002)) is Outcome.APPLIED
    assert sync.receive_diff(diff(1070, 1080, pu=1061)) is Outcome.RESET
    assert sync.state is SyncState.SNAPSHOT_PENDING
    assert len(requests(sync)) == 1


def test_duplicate_futures_diff_is_dropped() -> None:
    """A repeated diff (u <= local, pu mismatch) is a duplicate, not a gap."""
    sync, token = started(diff(995, 1002, pu=990), Venue.USDM)
    sync.receive_snapshot(snap(L), token)
    sync.receive_diff(diff(1050, 1060, pu=1002))
    assert sync.receive_diff(diff(1050, 1060, pu=1002)) is Outcome.DROPPED
    assert sync.synced and sync.last_update_id == 1060


def test_futures_stale_snapshot_is_fetched_again() -> None:
    """L < first buffered U: the snapshot predates the stream and is fetched again."""
    sync, token = started(diff(L + 1, L + 4, pu=L - 3), Venue.USDM)
    sync.receive_snapshot(snap(L), token)
    (again,) = requests(sync)
    assert again.token != token and sync.counters.stale_snapshots == 1
    sync.receive_snapshot(snap(L + 2), again.token)
    assert sync.synced and sync.last_update_id == L + 4


def test_futures_diff_without_pu_never_applies() -> None:
    """A futures diff missing pu cannot prove continuity: it resets instead of applying."""
    sync, token = started(diff(995, 1002, pu=990), Venue.USDM)
    sync.receive_snapshot(snap(L), token)
    assert sync.receive_diff(diff(1003, 1004)) is Outcome.RESET


def test_futures_straddling_first_event_applies() -> None:
    """A buffered futures diff with U < L < u is the first applied one."""
    sync, token = started(diff(990, 1010, bids=[("2.0", "3")], pu=980), Venue.USDM)
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    assert sync.synced and sync.last_update_id == 1010
    assert book_of(sync)[0] == {"1.0": "1", "2.0": "3"}


def test_futures_superseded_token_is_ignored() -> None:
    """After a futures gap while buffering, the old request's answer is ignored."""
    sync, old = started(diff(990, 995, pu=980), Venue.USDM)
    sync.receive_diff(diff(1001, 1002, pu=999))  # pu != 995: the buffer restarts
    (new,) = requests(sync)
    sync.receive_snapshot(snap(L), old)
    assert sync.state is SyncState.SNAPSHOT_PENDING
    sync.receive_snapshot(snap(1001), new.token)
    assert sync.synced and sync.last_update_id == 1002


def test_futures_buffer_overflow_resets_with_reason() -> None:
    """A futures buffer that overflows resets with BUFFER_OVERFLOW."""
    from streamer.sansio.book_sync import BookSync

    sync = BookSync("BTCUSDT", Venue.COINM, max_buffer=2)
    sync.receive_diff(diff(10, 11, pu=9))
    sync.receive_diff(diff(12, 13, pu=11))
    assert sync.receive_diff(diff(14, 15, pu=13)) is Outcome.RESET
    assert [e.reason for e in sync.events() if isinstance(e, Reset)] == [
        ResetReason.BUFFER_OVERFLOW
    ]


def test_futures_deleting_an_absent_level_is_harmless() -> None:
    """A zero quantity at a price the futures book lacks changes nothing."""
    sync, token = started(diff(995, 1002, bids=[("0.5", "0")], pu=990), Venue.USDM)
    sync.receive_snapshot(snap(L, bids=[("1.0", "1")]), token)
    assert sync.synced and book_of(sync)[0] == {"1.0": "1"}
