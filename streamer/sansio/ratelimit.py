"""Rate-limit rules of Binance, as pure accounting that answers "how long must I wait?".

Rules implemented (every method takes the time, nothing here reads a clock):

* REST request weight (protocol §5.1, §7.5, design §4.3): ``REQUEST_WEIGHT`` is counted per IP
  in wall-clock minute buckets (reset at :00). Every response reports the IP's usage in
  ``X-MBX-USED-WEIGHT-1M``; the server is authoritative, but its header may be older than our
  own later spends, so the count is ``max(server, own)`` within the bucket. A 429 or 418 carries
  ``Retry-After``: nothing at all may be sent until it has passed (ignoring 429s earns a 418 ban,
  and bans grow from 2 minutes to 3 days). :class:`WeightBudget` is one per process.
* Depth snapshot weights and limits (spot protocol §2.1/§4.3, futures §2.2): :func:`depth_weight`
  and :func:`snapshot_limit_for`.
* Client->server WebSocket messages (protocol §1.3: 5/s on spot, §7.8: 10/s on futures; PING and
  PONG frames count too, and going over disconnects): :class:`MessagePacer`, one per connection.
* Connection attempts (protocol §1.3: 300 per 5 minutes per IP, WS-API connections included):
  :class:`ConnectionBudget`, one per process.

Times: ``now`` is a monotonic clock reading, ``wall`` epoch seconds (only the weight buckets
follow the wall clock, because Binance resets them on its minute boundaries). All in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

from streamer.sansio.wire import Venue

__all__ = [
    "FUTURES_SNAPSHOT_LIMITS",
    "SPOT_MAX_SNAPSHOT_LIMIT",
    "ConnectionBudget",
    "MessagePacer",
    "WeightBudget",
    "depth_weight",
    "max_snapshot_limit",
    "snapshot_limit_for",
]

#: Spot ``GET /api/v3/depth`` accepts any limit from 1 to 5000 (protocol §2.1).
SPOT_MAX_SNAPSHOT_LIMIT: Final = 5000
#: The only limits futures ``GET /fapi/v1/depth`` (and ``/dapi``) accept (protocol §2.2, §7.7).
FUTURES_SNAPSHOT_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000)
_FUTURES_WEIGHTS: Final = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
_MINUTE: Final = 60.0


# -- depth snapshots ---------------------------------------------------------------------------


def depth_weight(venue: Venue, limit: int) -> int:
    """REST weight of one depth snapshot of ``limit`` levels per side.

    Spot (protocol §2.1): 1-100 -> 5, 101-500 -> 25, 501-1000 -> 50, 1001-5000 -> 250; larger
    limits are truncated to 5000 by the server, so they cost 250. Futures (§2.2): 5/10/20/50 -> 2,
    100 -> 5, 500 -> 10, 1000 -> 20; any other limit is not a futures limit (ValueError).
    """
    if venue.is_futures:
        try:
            return _FUTURES_WEIGHTS[limit]
        except KeyError:
            raise ValueError(
                f"{venue.value} depth limit must be one of {FUTURES_SNAPSHOT_LIMITS}, got {limit!r}"
            ) from None
    if limit < 1:
        raise ValueError(f"spot depth limit must be >= 1, got {limit!r}")
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def max_snapshot_limit(venue: Venue) -> int:
    """The deepest snapshot the venue serves (levels per side): 5000 spot, 1000 futures."""
    return FUTURES_SNAPSHOT_LIMITS[-1] if venue.is_futures else SPOT_MAX_SNAPSHOT_LIMIT


def snapshot_limit_for(venue: Venue, levels: int) -> int:
    """The smallest snapshot limit the venue accepts that covers ``levels`` levels per side.

    Spot accepts any limit 1..5000, futures one of 5, 10, 20, 50, 100, 500, 1000. Asking for more
    than the venue's deepest snapshot (:func:`max_snapshot_limit`) is a ValueError: no snapshot
    can cover it, and silently settling for less would hide that from the caller.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels!r}")
    deepest = max_snapshot_limit(venue)
    if levels > deepest:
        raise ValueError(f"{venue.value} snapshots hold at most {deepest} levels, asked {levels}")
    if venue.is_futures:
        return next(limit for limit in FUTURES_SNAPSHOT_LIMITS if limit >= levels)
    return levels


# -- REST request weight -----------------------------------------------------------------------


def _bucket(wall: float) -> int:
    return int(wall // _MINUTE)


class WeightBudget:
    """Process-wide REST request-weight accounting (protocol §5.1, §7.5, design §4.3).

    Fed by ``X-MBX-USED-WEIGHT-1M`` of every response (:meth:`observe`); 429/418 stop every
    request until ``Retry-After`` has passed (:meth:`retry_after`). Callers ask :meth:`delay`
    before a request, wait that long (and ask again), then :meth:`spend` just before sending, so
    that concurrent callers don't all see the same room.

    ``margin`` is added to waits for the next minute: Binance resets the bucket on *its* clock,
    and a request that arrives a moment early lands in the full minute and earns a 429.
    """

    def __init__(self, limit: int = 6000, *, margin: float = 0.5) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        if not 0 <= margin < _MINUTE:
            raise ValueError(f"margin must be in [0, 60), got {margin!r}")
        #: REQUEST_WEIGHT per minute; settable (exchangeInfo ``rateLimits`` may change it).
        self.limit = limit
        self.margin = margin
        self._bucket = -1  # the minute bucket ``_count`` belongs to
        self._count = 0
        self._blocked_until = 0.0
        self._banned = False

    # -- queries ---------------------------------------------------------------------------

    @property
    def blocked_until(self) -> float:
        """Monotonic time before which nothing may be sent; 0.0 when not blocked.

        An expired block reads 0.0 once any method has been given a later ``now``.
        """
        return self._blocked_until

    @property
    def banned(self) -> bool:
        """Whether the current block is a 418 IP ban (rather than a 429)."""
        return self._banned

    def used(self, wall: float) -> int:
        """Weight counted in the minute bucket ``wall`` falls in."""
        return self._count if _bucket(wall) <= self._bucket else 0

    def available(self, wall: float, *, share: float = 1.0) -> int:
        """Weight that may still be spent this minute while staying within ``share * limit``."""
        return max(0, self._cap(share) - self.used(wall))

    def delay(self, weight: int, now: float, wall: float, *, share: float = 1.0) -> float:
        """Seconds to wait before a request of ``weight`` may be sent; 0.0 means send now.

        Keeps this minute's usage within ``share * limit``. While blocked by a 429/418: at least
        until the block passes. A weight that can never fit (above ``share * limit``) is a
        ValueError: waiting would not help.
        """
        cap = self._cap(share)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        if weight > cap:
            raise ValueError(f"weight {weight} can never fit in {share} x {self.limit} per minute")
        self._expire(now)
        blocked = self._blocked_until - now if self._blocked_until else 0.0
        if self.used(wall) + weight <= cap:
            return blocked
        to_next_minute = (_bucket(wall) + 1) * _MINUTE - wall + self.margin
        return max(blocked, to_next_minute)

    # -- inputs ----------------------------------------------------------------------------

    def spend(self, weight: int, now: float, wall: float) -> None:
        """Count a request as sent (optimistically, before its response says what it cost)."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self._expire(now)
        self._roll(wall)
        self._count += weight

    def observe(self, used: int | None, now: float, wall: float) -> None:
        """Take the server's ``X-MBX-USED-WEIGHT-1M`` (None when the response had none).

        The server's count also holds other processes on this IP, so it may raise ours; it may
        not lower it, because the response can predate requests we have spent since.
        """
        self._expire(now)
        self._roll(wall)
        if used is not None and used > self._count:
            self._count = used

    def retry_after(self, seconds: float, now: float, *, banned: bool = False) -> None:
        """A 429 (``banned=False``) or 418 (``banned=True``): send nothing until now + seconds.

        A later, shorter Retry-After never shortens a block already in force.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"retry-after must be finite and >= 0 seconds, got {seconds!r}")
        self._expire(now)
        until = now + seconds
        if until > self._blocked_until:
            self._blocked_until = until
            self._banned = banned
        elif banned:
            self._banned = True

    # -- internals -------------------------------------------------------------------------

    def _cap(self, share: float) -> int:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        return int(share * self.limit)

    def _roll(self, wall: float) -> None:
        bucket = _bucket(wall)
        # A wall clock stepped back (NTP) stays in the bucket we know: never forget spends.
        if bucket > self._bucket:
            self._bucket, self._count = bucket, 0

    def _expire(self, now: float) -> None:
        if self._blocked_until and now >= self._blocked_until:
            self._blocked_until, self._banned = 0.0, False

    def __repr__(self) -> str:
        return (
            f"WeightBudget(limit={self.limit}, used={self._count}, "
            f"blocked_until={self._blocked_until}, banned={self._banned})"
        )


# -- WebSocket messages ------------------------------------------------------------------------


class MessagePacer:
    """Client->server messages of one WebSocket connection (protocol §1.3, §7.8).

    Binance allows 5 incoming messages per second per connection on spot and 10 on futures, and
    counts PING/PONG frames too; going over disconnects. The WebSocket library answers the
    server's pings on its own, so this keeps ``reserve`` messages per second free for those
    pongs and spaces everything else (SUBSCRIBE, UNSUBSCRIBE, ...) evenly, at least
    ``1 / (rate - reserve)`` seconds apart: no bursts, so no window can ever hold too many.
    """

    def __init__(self, rate: float = 5.0, reserve: float = 1.0) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        if not 0 <= reserve < rate:
            raise ValueError(f"reserve must be in [0, rate), got {reserve!r}")
        self.rate = rate
        self.reserve = reserve
        #: Smallest spacing between two paced messages, in seconds.
        self.interval = 1.0 / (rate - reserve)
        self._next = -math.inf  # earliest time the next message may go

    @classmethod
    def for_venue(cls, venue: Venue) -> MessagePacer:
        """The pacer for a market-stream connection of ``venue``: spot 5/s, futures 10/s."""
        return cls(10.0 if venue.is_futures else 5.0, 1.0)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next message; 0.0 means send now."""
        return max(0.0, self._next - now)

    def sent(self, now: float) -> None:
        """Count a message as sent at ``now``.

        One sent early (the caller did not wait) pushes the next slot further out rather than
        resetting the spacing, so the average rate still holds.
        """
        self._next = max(self._next, now) + self.interval

    def __repr__(self) -> str:
        return f"MessagePacer(rate={self.rate}, reserve={self.reserve})"


# -- connection attempts -----------------------------------------------------------------------


class ConnectionBudget:
    """Connection attempts per IP: at most ``limit`` per rolling ``window`` seconds.

    Binance allows 300 attempts per 5 minutes per IP, WS-API connections included (protocol
    §1.3). One per process, shared by every connection. A rolling window is at least as strict
    as fixed 5-minute buckets, whichever the server uses.
    """

    def __init__(self, limit: int = 300, window: float = 300.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0, got {window!r}")
        self.limit = limit
        self.window = window
        self._attempts: deque[float] = deque()  # times of the attempts still in the window

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt; 0.0 means connect now."""
        self._expire(now)
        excess = len(self._attempts) - self.limit
        if excess < 0:
            return 0.0
        # The attempt whose expiry frees one slot (several may be over after an ignored delay).
        return max(0.0, self._attempts[excess] + self.window - now)

    def attempt(self, now: float) -> None:
        """Count a connection attempt made at ``now`` (successful or not: both count)."""
        self._expire(now)
        self._attempts.append(now)

    def remaining(self, now: float) -> int:
        """Attempts that may still be made now."""
        self._expire(now)
        return max(0, self.limit - len(self._attempts))

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        attempts = self._attempts
        while attempts and attempts[0] <= horizon:
            attempts.popleft()

    def __repr__(self) -> str:
        return f"ConnectionBudget(limit={self.limit}, window={self.window})"
