"""Reconnect delays: jittered exponential backoff ("full jitter"), randomness injected.

``delay_n = rng() * min(maximum, initial * factor**n)``, then raised to ``minimum``. Full jitter
(every delay uniform in ``[0, ceiling)``) spreads the reconnects of many connections that broke
at the same moment, which matters here because all of them share one budget of 300 connection
attempts per 5 minutes per IP (protocol §1.3, §7.3). ``minimum`` keeps an unlucky draw near 0
from turning into a hot reconnect loop.

Learned from python-websockets ``src/websockets/client.py`` ``backoff()``, made pure: the caller
passes ``rng`` (e.g. ``random.Random(seed).random``) and sleeps itself.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Jittered exponential backoff: ``next_delay()`` per failure, ``reset()`` once healthy."""

    def __init__(
        self,
        rng: Callable[[], float],
        *,
        initial: float = 0.5,
        factor: float = 2.0,
        maximum: float = 30.0,
        minimum: float = 0.05,
    ) -> None:
        if not initial > 0:
            raise ValueError(f"initial must be > 0, got {initial!r}")
        if not factor >= 1:
            raise ValueError(f"factor must be >= 1, got {factor!r}")
        if not 0 <= minimum <= maximum:
            raise ValueError(f"need 0 <= minimum <= maximum, got {minimum!r} and {maximum!r}")
        self._rng = rng
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.minimum = minimum
        #: Failed attempts since the last reset (the ``n`` of the next delay).
        self.attempts = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay: ``min(maximum, initial * factor**attempts)``."""
        ceiling = self.initial
        # Grow step by step and stop at the cap: factor**n overflows a float for large n, and
        # attempts keeps counting for as long as a venue stays down.
        for _ in range(self.attempts):
            if ceiling >= self.maximum or self.factor == 1:
                break
            ceiling *= self.factor
        return min(self.maximum, ceiling)

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; counts the attempt."""
        draw = self._rng() * self.ceiling()
        self.attempts += 1
        # Clamped on both sides so that a misbehaving rng cannot break the documented bounds.
        return min(self.maximum, max(self.minimum, draw))

    def reset(self) -> None:
        """Start again from ``initial``, once a connection has proved healthy."""
        self.attempts = 0

    def __repr__(self) -> str:
        return (
            f"Backoff(attempts={self.attempts}, initial={self.initial}, factor={self.factor}, "
            f"maximum={self.maximum}, minimum={self.minimum})"
        )
