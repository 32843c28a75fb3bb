"""Waiting on the pure limiters of ``streamer.sansio.ratelimit``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["wait_until"]


async def wait_until(delay: Callable[[], float]) -> None:
    """Sleep until ``delay()`` returns 0. The limiters compute how long to wait from a clock
    reading; nothing signals when the wait is over, so this polls at the given delays."""
    while (seconds := delay()) > 0:  # noqa: ASYNC110 - a computed delay, not a condition
        await asyncio.sleep(seconds)
