"""Rate-limit accounting: snapshot weights, the REST weight budget, message pacing, connections."""

from __future__ import annotations

import math

import pytest

from streamer.sansio.ratelimit import (
    ConnectionBudget,
    MessagePacer,
    WeightBudget,
    depth_weight,
    max_snapshot_limit,
    snapshot_limit_for,
)
from streamer.sansio.wire import Venue

M = 1_700_000_040.0  # a wall-clock minute boundary (divisible by 60)
FUTURES = (Venue.USDM, Venue.COINM)

# -- depth snapshots ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(1, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50), (1001, 250), (5000, 250)],
)
def test_spot_depth_weight_follows_the_table_at_every_edge(limit: int, weight: int) -> None:
    """Spot snapshot weight is 5/25/50/250 for limits up to 100/500/1000/5000 (protocol §2.1)."""
    assert depth_weight(Venue.SPOT, limit) == weight


def test_spot_depth_weight_of_truncated_and_invalid_limits() -> None:
    """A spot limit above 5000 is served (truncated) at 250; a limit below 1 is misuse."""
    assert depth_weight(Venue.SPOT, 6000) == 250
    with pytest.raises(ValueError):
        depth_weight(Venue.SPOT, 0)


@pytest.mark.parametrize("venue", FUTURES)
def test_futures_depth_weight_follows_the_table(venue: Venue) -> None:
    """Futures snapshots weigh 2/2/2/2/5/10/20 for 5..1000; other limits are refused."""
    weights = {limit: depth_weight(venue, limit) for limit in (5, 10, 20, 50, 100, 500, 1000)}
    assert weights == {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
    for limit in (1, 7, 200, 5000):
        with pytest.raises(ValueError, match="one of"):
            depth_weight(venue, limit)


def test_spot_snapshot_limit_is_exactly_the_levels_asked() -> None:
    """Spot accepts any limit 1..5000, so the smallest covering limit is the level count."""
    assert [snapshot_limit_for(Venue.SPOT, n) for n in (1, 20, 101, 5000)] == [1, 20, 101, 5000]
    assert max_snapshot_limit(Venue.SPOT) == 5000


@pytest.mark.parametrize("venue", FUTURES)
def test_futures_snapshot_limit_rounds_up_to_an_accepted_limit(venue: Venue) -> None:
    """Futures levels round up to the next of 5, 10, 20, 50, 100, 500, 1000."""
    asked = [1, 5, 6, 20, 21, 51, 100, 101, 501, 1000]
    assert [snapshot_limit_for(venue, n) for n in asked] == [
        5, 5, 10, 20, 50, 100, 100, 500, 1000, 1000,
    ]  # fmt: skip
    assert max_snapshot_limit(venue) == 1000


@pytest.mark.parametrize(("venue", "levels"), [(Venue.SPOT, 5001), (Venue.USDM, 1001)])
def test_no_snapshot_limit_covers_more_than_the_venue_serves(venue: Venue, levels: int) -> None:
    """Asking for more levels than any snapshot holds, or for none, is a clear error."""
    with pytest.raises(ValueError, match="at most"):
        snapshot_limit_for(venue, levels)
    with pytest.raises(ValueError):
        snapshot_limit_for(venue, 0)


# -- WeightBudget ------------------------------------------------------------------------------


def test_budget_says_send_now_while_the_minute_has_room() -> None:
    """Within the limit every request may go at once, and spends add up."""
    budget = WeightBudget(limit=100, margin=0.0)
    assert budget.delay(100, now=0.0, wall=M + 10) == 0.0
    budget.spend(60, now=0.0, wall=M + 10)
    budget.spend(40, now=0.0, wall=M + 11)
    assert budget.used(M + 12) == 100
    assert budget.available(M + 12) == 0
    assert budget.delay(0, now=1.0, wall=M + 12) == 0.0


def test_a_full_minute_waits_for_the_wall_clock_boundary_not_sixty_seconds() -> None:
    """A request that does not fit waits until the next :00 of the wall clock (protocol §5.1)."""
    budget = WeightBudget(limit=100, margin=0.0)
    budget.spend(95, now=0.0, wall=M + 40)
    assert budget.delay(5, now=0.0, wall=M + 40) == 0.0
    assert budget.delay(6, now=0.0, wall=M + 40) == pytest.approx(20.0)
    assert budget.delay(6, now=19.5, wall=M + 59.5) == pytest.approx(0.5)
    assert budget.delay(6, now=20.0, wall=M + 60) == 0.0  # a new bucket
    assert budget.used(M + 60) == 0
    assert budget.used(M + 59.999) == 95


def test_waits_for_the_next_minute_include_the_clock_margin() -> None:
    """The default margin waits a little past :00, in case Binance's clock is behind ours."""
    budget = WeightBudget(limit=100)
    budget.spend(100, now=0.0, wall=M + 50)
    assert budget.delay(1, now=0.0, wall=M + 50) == pytest.approx(10.0 + budget.margin)
    assert budget.margin > 0


def test_a_header_lower_than_our_own_count_does_not_lower_it() -> None:
    """An older response's X-MBX-USED-WEIGHT-1M cannot undo spends made since; a higher one wins."""
    budget = WeightBudget(limit=6000)
    budget.spend(100, now=0.0, wall=M + 1)
    budget.spend(200, now=0.0, wall=M + 1)
    budget.observe(150, now=0.1, wall=M + 1.1)  # answers the first request only
    assert budget.used(M + 2) == 300
    budget.observe(1000, now=0.2, wall=M + 1.2)  # other processes on this IP
    assert budget.used(M + 2) == 1000
    budget.spend(10, now=0.3, wall=M + 1.3)
    assert budget.used(M + 2) == 1010
    budget.observe(None, now=0.4, wall=M + 1.4)  # a response without the header
    assert budget.used(M + 2) == 1010


def test_a_header_in_a_new_minute_replaces_the_old_count() -> None:
    """The first header after :00 starts the new bucket from the server's value."""
    budget = WeightBudget(limit=6000)
    budget.spend(5000, now=0.0, wall=M + 30)
    budget.observe(40, now=31.0, wall=M + 61)
    assert budget.used(M + 61) == 40


def test_a_wall_clock_stepped_back_keeps_what_was_spent() -> None:
    """If the wall clock jumps back into the previous minute, spends are not forgotten."""
    budget = WeightBudget(limit=100, margin=0.0)
    budget.spend(90, now=0.0, wall=M + 61)
    budget.spend(5, now=0.1, wall=M + 59)
    assert budget.used(M + 61) == 95


def test_share_caps_what_one_kind_of_request_may_use() -> None:
    """With share=0.5 a caller stays within half the limit; the rest is left to others."""
    budget = WeightBudget(limit=6000, margin=0.0)
    budget.spend(2900, now=0.0, wall=M + 10)
    assert budget.available(M + 10, share=0.5) == 100
    assert budget.available(M + 10) == 3100
    assert budget.delay(250, now=0.0, wall=M + 10, share=0.5) == pytest.approx(50.0)
    assert budget.delay(250, now=0.0, wall=M + 10) == 0.0


def test_a_weight_that_can_never_fit_is_a_caller_error() -> None:
    """Waiting cannot help a request heavier than share * limit, nor make sense of a bad share."""
    budget = WeightBudget(limit=6000)
    with pytest.raises(ValueError, match="never fit"):
        budget.delay(3001, now=0.0, wall=M, share=0.5)
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="share"):
            budget.delay(1, now=0.0, wall=M, share=share)
    with pytest.raises(ValueError):
        budget.spend(-1, now=0.0, wall=M)


def test_limit_can_be_changed_from_exchange_info() -> None:
    """Setting limit (e.g. futures' 2400) changes the room left at once."""
    budget = WeightBudget()
    budget.spend(2000, now=0.0, wall=M)
    budget.limit = 2400
    assert budget.available(M) == 400


def test_a_429_blocks_every_request_until_retry_after() -> None:
    """After a 429 nothing may go, however light, until Retry-After has passed."""
    budget = WeightBudget(limit=6000)
    budget.retry_after(5.0, now=100.0)
    assert (budget.blocked_until, budget.banned) == (105.0, False)
    assert budget.delay(0, now=101.0, wall=M + 1) == pytest.approx(4.0)
    assert budget.delay(1, now=105.0, wall=M + 5) == 0.0
    assert budget.blocked_until == 0.0


def test_a_418_ban_then_resume() -> None:
    """A 418 blocks for its whole Retry-After, a shorter 429 inside it does not shorten it."""
    budget = WeightBudget(limit=6000)
    budget.retry_after(120.0, now=10.0, banned=True)
    budget.retry_after(1.0, now=11.0)
    assert (budget.blocked_until, budget.banned) == (130.0, True)
    assert budget.delay(5, now=70.0, wall=M + 60) == pytest.approx(60.0)
    assert budget.delay(5, now=130.0, wall=M + 120) == 0.0
    assert (budget.blocked_until, budget.banned) == (0.0, False)
    budget.spend(5, now=130.0, wall=M + 120)
    assert budget.used(M + 120) == 5


def test_a_block_and_a_full_minute_wait_for_the_later_of_the_two() -> None:
    """Blocked for 5 s with the bucket full for 30 s more: wait the 30 s."""
    budget = WeightBudget(limit=100, margin=0.0)
    budget.spend(100, now=0.0, wall=M + 30)
    budget.retry_after(5.0, now=0.0)
    assert budget.delay(1, now=0.0, wall=M + 30) == pytest.approx(30.0)


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_retry_after_must_be_a_real_duration(seconds: float) -> None:
    """A negative, NaN or infinite Retry-After is refused (the caller must parse the header)."""
    with pytest.raises(ValueError, match="retry-after"):
        WeightBudget().retry_after(seconds, now=0.0)


# -- MessagePacer ------------------------------------------------------------------------------


def test_pacer_spaces_messages_leaving_room_for_pongs() -> None:
    """Spot 5/s with 1 reserved: messages go at least 0.25 s apart."""
    pacer = MessagePacer()
    assert pacer.interval == 0.25
    assert pacer.delay(0.0) == 0.0
    pacer.sent(0.0)
    assert pacer.delay(0.1) == pytest.approx(0.15)
    assert pacer.delay(0.25) == 0.0
    pacer.sent(0.3)
    assert pacer.delay(0.3) == pytest.approx(0.25)
    assert pacer.delay(10.0) == 0.0  # an idle pacer does not save up a burst


def test_a_greedy_sender_never_puts_more_than_rate_minus_reserve_in_a_second() -> None:
    """Sending whenever allowed for 10 s: every rolling second holds at most 4 messages."""
    pacer = MessagePacer(5.0, 1.0)
    times: list[float] = []
    now = 0.0
    while now < 10.0:
        now += pacer.delay(now)
        pacer.sent(now)
        times.append(now)
        now += 0.01  # whatever the caller does in between
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst == 4


def test_a_message_sent_too_early_pushes_the_next_one_back() -> None:
    """Ignoring the delay does not reset the spacing: the next slot moves further out."""
    pacer = MessagePacer()
    pacer.sent(0.0)
    pacer.sent(0.1)  # 0.15 s early
    assert pacer.delay(0.1) == pytest.approx(0.4)


def test_pacer_for_venue_uses_each_venues_message_limit() -> None:
    """Spot allows 5 messages/s and futures 10 (protocol §1.3, §7.8), one kept for pongs."""
    assert MessagePacer.for_venue(Venue.SPOT).interval == pytest.approx(1 / 4)
    assert MessagePacer.for_venue(Venue.USDM).interval == pytest.approx(1 / 9)
    assert MessagePacer.for_venue(Venue.COINM).interval == pytest.approx(1 / 9)


def test_pacer_refuses_a_reserve_that_leaves_nothing() -> None:
    """A reserve of the whole rate (or a rate of 0) could never send: refused."""
    for rate, reserve in ((5.0, 5.0), (0.0, 0.0), (5.0, -1.0)):
        with pytest.raises(ValueError):
            MessagePacer(rate, reserve)


# -- ConnectionBudget --------------------------------------------------------------------------


def test_the_301st_connection_attempt_waits_for_the_first_to_leave_the_window() -> None:
    """300 attempts in 5 minutes are allowed; the next waits until the oldest is 300 s old."""
    budget = ConnectionBudget()
    for second in range(300):
        assert budget.delay(float(second)) == 0.0
        budget.attempt(float(second))
    assert budget.remaining(299.5) == 0
    assert budget.delay(299.5) == pytest.approx(0.5)
    assert budget.delay(300.0) == 0.0
    assert budget.remaining(300.0) == 1


def test_a_burst_of_connections_blocks_the_whole_window() -> None:
    """300 attempts at once: the next one waits the full 300 s, then all 300 are free again."""
    budget = ConnectionBudget()
    for _ in range(300):
        budget.attempt(10.0)
    assert budget.delay(10.0) == pytest.approx(300.0)
    assert budget.delay(309.0) == pytest.approx(1.0)
    assert budget.delay(310.0) == 0.0
    assert budget.remaining(310.0) == 300


def test_attempts_over_the_limit_extend_the_wait() -> None:
    """Attempts made despite the delay count: the wait is until enough of them have expired."""
    budget = ConnectionBudget(limit=2, window=10.0)
    for t in (0.0, 1.0, 2.0):  # the third ignored its delay
        budget.attempt(t)
    assert budget.delay(3.0) == pytest.approx(8.0)  # the attempt at 1.0 must expire too
    assert budget.delay(11.0) == 0.0
