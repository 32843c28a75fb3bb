"""Jittered exponential backoff with an injected rng: growth, cap, floor, reset, jitter bounds."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from streamer.sansio.backoff import Backoff


def constant(value: float) -> Callable[[], float]:
    """An rng that always returns ``value``."""
    return lambda: value


def test_delays_double_up_to_the_maximum() -> None:
    """With rng()=0.5 the delays are half of 0.5, 1, 2, ... capped at 30."""
    backoff = Backoff(constant(0.5))
    delays = [backoff.next_delay() for _ in range(9)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert backoff.attempts == 9


def test_an_unlucky_draw_never_goes_below_the_minimum() -> None:
    """rng()=0 would mean reconnecting at once; the minimum stops a hot loop."""
    backoff = Backoff(constant(0.0), minimum=0.05)
    assert [backoff.next_delay() for _ in range(3)] == [0.05, 0.05, 0.05]


def test_a_draw_near_one_stays_within_the_ceiling() -> None:
    """rng() just below 1 gives just below the ceiling, never above the maximum."""
    just_below = 1.0 - 2**-53
    backoff = Backoff(constant(just_below), initial=1.0, maximum=4.0)
    delays = [backoff.next_delay() for _ in range(5)]
    assert delays == [just_below, 2 * just_below, 4 * just_below, 4 * just_below, 4 * just_below]
    assert all(d < c for d, c in zip(delays, [1.0, 2.0, 4.0, 4.0, 4.0], strict=True))


def test_a_broken_rng_cannot_break_the_bounds() -> None:
    """An rng outside [0, 1) is clamped: the delay stays within [minimum, maximum]."""
    assert Backoff(constant(7.0), initial=1.0, maximum=3.0).next_delay() == 3.0
    assert Backoff(constant(-1.0), minimum=0.1).next_delay() == 0.1


def test_seeded_jitter_stays_within_each_attempts_bounds() -> None:
    """Over many seeded draws, delay n lies in [minimum, min(maximum, initial*2**n)]."""
    backoff = Backoff(random.Random(42).random, initial=0.5, maximum=30.0, minimum=0.05)
    for round_ in range(50):
        for n in range(12):
            ceiling = min(30.0, 0.5 * 2**n)
            assert backoff.ceiling() == ceiling
            assert 0.05 <= backoff.next_delay() <= ceiling
        backoff.reset()
        assert backoff.attempts == 0, round_


def test_the_same_seed_gives_the_same_delays() -> None:
    """Delays depend only on the injected rng, so a seed reproduces them exactly."""
    first = Backoff(random.Random(7).random)
    second = Backoff(random.Random(7).random)
    assert [first.next_delay() for _ in range(10)] == [second.next_delay() for _ in range(10)]


def test_reset_starts_again_from_the_initial_ceiling() -> None:
    """After a healthy connection the next failure waits as little as the first one did."""
    backoff = Backoff(constant(0.5))
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.25


def test_a_very_long_outage_does_not_overflow() -> None:
    """Thousands of failures keep the delay at the cap (factor**n would overflow a float)."""
    backoff = Backoff(constant(0.5))
    backoff.attempts = 100_000
    assert backoff.next_delay() == 15.0


def test_factor_one_is_a_constant_ceiling() -> None:
    """With factor 1 every delay is drawn from the same ceiling, however many attempts."""
    backoff = Backoff(constant(0.5), initial=2.0, factor=1.0)
    backoff.attempts = 10_000
    assert backoff.next_delay() == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0.0}, {"factor": 0.5}, {"minimum": -1.0}, {"minimum": 5.0, "maximum": 1.0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    """Settings that could not give a growing, bounded delay are a ValueError."""
    with pytest.raises(ValueError):
        Backoff(random.Random(0).random, **kwargs)
