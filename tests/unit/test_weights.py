"""Weight accounting of the local exchange: minute windows, 429, growing 418 bans, order counts."""

from __future__ import annotations

from streamer.testing.exchange.weights import Weights

T0 = 1_700_000_020_000  # 40 s into a wall-clock minute


def test_headers_report_usage_and_reset_on_the_minute_boundary() -> None:
    """Both weight headers carry the same usage, which resets at :00, not 60 s after first use."""
    weights = Weights(limit=100)
    assert weights.charge("1.2.3.4", 5, T0).headers() == {
        "X-MBX-USED-WEIGHT": "5",
        "X-MBX-USED-WEIGHT-1M": "5",
    }
    assert weights.charge("1.2.3.4", 20, T0 + 1000).used == 25
    assert weights.charge("5.6.7.8", 1, T0).used == 1  # per IP
    assert weights.charge("1.2.3.4", 1, T0 + 20_000).used == 1  # next minute, 20 s later


def test_over_limit_is_429_until_the_minute_boundary() -> None:
    """Going over the limit gives 429, -1003 and Retry-After = seconds to the next minute."""
    weights = Weights(limit=10)
    assert weights.charge("ip", 10, T0).allowed
    verdict = weights.charge("ip", 1, T0 + 500)
    assert (verdict.status, verdict.code, verdict.retry_after) == (429, -1003, 20)
    assert verdict.headers()["Retry-After"] == "20"
    assert verdict.used == 11
    assert verdict.until_ms == T0 + 20_000
    assert weights.charge("ip", 1, T0 + 20_000).allowed  # waited: a new minute, no ban


def test_ignoring_429_leads_to_418_with_growing_bans() -> None:
    """Requests before Retry-After lead to a 2 min ban, then a 4 min ban on the next offence."""
    weights = Weights(limit=10, ban_after=2)
    weights.charge("ip", 11, T0)  # 429
    assert weights.charge("ip", 1, T0 + 100).status == 429  # first ignored request
    banned = weights.charge("ip", 1, T0 + 200)
    assert (banned.status, banned.code, banned.retry_after) == (418, -1003, 120)
    assert "IP banned until" in banned.msg
    during = weights.charge("ip", 1000, T0 + 60_200)
    assert (during.status, during.retry_after) == (418, 60)
    assert weights.used("ip", T0 + 60_200) == 0  # a banned request costs nothing
    after = T0 + 200 + 120_000
    assert weights.charge("ip", 1, after).allowed
    weights.charge("ip", 100, after)  # 429 again
    weights.charge("ip", 1, after + 1)
    second = weights.charge("ip", 1, after + 2)
    assert (second.status, second.retry_after) == (418, 240)


def test_ban_length_is_capped_at_three_days() -> None:
    """Repeated bans stop growing at 3 days."""
    weights = Weights(limit=1, ban_after=1, first_ban_s=86_400)
    now = T0
    lengths = []
    for _ in range(4):
        weights.charge("ip", 2, now)
        verdict = weights.charge("ip", 1, now + 1)
        assert verdict.retry_after is not None
        lengths.append(verdict.retry_after)
        now += verdict.retry_after * 1000 + 60_000
    assert lengths == [86_400, 172_800, 259_200, 259_200]


def test_add_charges_after_the_fact() -> None:
    """A post-hoc charge (a failed order) raises the usage seen by the next request."""
    weights = Weights()
    weights.charge("ip", 1, T0)
    assert weights.add("ip", 1, T0) == 2
    assert weights.charge("ip", 0, T0).used == 2


def test_order_counts_per_ten_seconds_and_day() -> None:
    """The 10 s order window refuses with 429/-1015 when full and reopens on its boundary."""
    weights = Weights(orders_10s=3, orders_1d=5)
    start = 1_700_000_000_000  # on a 10 s boundary
    for expected in (1, 2, 3):
        verdict = weights.count_order(7, start + expected)
        assert verdict.allowed and verdict.count_10s == expected
    refused = weights.count_order(7, start + 4000)
    assert (refused.status, refused.code, refused.retry_after) == (429, -1015, 6)
    assert "10 SECOND" in refused.msg
    assert weights.count_order(8, start + 4000).allowed  # per account
    ok = weights.count_order(7, start + 10_000)
    assert ok.headers() == {"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1D": "4"}
    weights.count_order(7, start + 10_001)
    day_full = weights.count_order(7, start + 10_002)
    assert day_full.code == -1015 and "1 DAY" in day_full.msg


def test_rate_limits_array_for_the_ws_api() -> None:
    """rate_limits lists the IP's weight and, with an account, both order windows."""
    weights = Weights(limit=6000)
    weights.charge("ip", 7, T0)
    weights.count_order(1, T0)
    limits = weights.rate_limits("ip", 1, T0)
    assert limits[0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
        "count": 7,
    }
    assert [(x["interval"], x["count"]) for x in limits[1:]] == [("SECOND", 1), ("DAY", 1)]
    assert len(weights.rate_limits("ip", None, T0)) == 1
