"""Request-weight and order-count accounting of the local exchange (protocol §5.1, §9.1).

Rules implemented, each on wall-clock windows (the minute bucket resets at :00, the 10 s bucket at
:00, :10, ..., the day at 00:00 UTC):

* ``REQUEST_WEIGHT`` per IP per minute (default limit 6000). Every REST response reports the IP's
  usage in ``X-MBX-USED-WEIGHT`` and ``X-MBX-USED-WEIGHT-1M`` (the same value). A request that
  would go over the limit is answered 429 with ``Retry-After`` = seconds to the next minute and
  code -1003; its weight still counts, as on Binance, so the headers show the overrun.
* A client that keeps sending before its ``Retry-After`` has passed ignores the 429: after
  ``ban_after`` such requests the IP is banned (418, -1003, ``Retry-After`` = ban length). Bans
  grow for repeat offenders, doubling from 2 minutes up to 3 days. Requests during a ban cost
  nothing and do not extend it.
* ``ORDERS`` per account: 10 s and 1 day counts, reported in ``X-MBX-ORDER-COUNT-10S`` and
  ``X-MBX-ORDER-COUNT-1D`` on order responses; over a limit -> 429 and -1015.

Every method takes ``now_ms``, so the rules are testable without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OrderVerdict", "Verdict", "Weights"]

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000


def _ceil_seconds(ms: int) -> int:
    return max(1, -(-ms // 1000))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of charging a request: allowed, or the 429/418 error to send."""

    status: int  # 200 when allowed, else 429 or 418
    used: int  # the IP's weight in the current minute, for the headers
    retry_after: int | None = None  # seconds, for the Retry-After header
    until_ms: int | None = None  # epoch ms when the client may retry (WS-API ``retryAfter``)
    code: int | None = None
    msg: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the request may proceed."""
        return self.status == 200

    def headers(self) -> dict[str, str]:
        """The weight headers, plus ``Retry-After`` when refused."""
        out = {"X-MBX-USED-WEIGHT": str(self.used), "X-MBX-USED-WEIGHT-1M": str(self.used)}
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    """The outcome of counting one new order for an account."""

    status: int  # 200 or 429
    count_10s: int
    count_1d: int
    retry_after: int | None = None
    code: int | None = None
    msg: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the order may be placed."""
        return self.status == 200

    def headers(self) -> dict[str, str]:
        """The order-count headers, plus ``Retry-After`` when refused."""
        out = {
            "X-MBX-ORDER-COUNT-10S": str(self.count_10s),
            "X-MBX-ORDER-COUNT-1D": str(self.count_1d),
        }
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        return out


@dataclass(slots=True)
class _IpState:
    minute: int = -1
    used: int = 0
    limited_until_ms: int = 0  # set by a 429: requests before this time ignore it
    ignored: int = 0
    banned_until_ms: int = 0
    bans: int = 0


@dataclass(slots=True)
class _OrderState:
    window_10s: int = -1
    count_10s: int = 0
    day: int = -1
    count_1d: int = 0


class Weights:
    """Per-IP request weight and per-account order counts, with 429 and 418 bans."""

    def __init__(
        self,
        limit: int = 6000,
        *,
        ban_after: int = 2,
        first_ban_s: int = 120,
        max_ban_s: int = 3 * 86_400,
        orders_10s: int = 50,
        orders_1d: int = 160_000,
    ) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.first_ban_s = first_ban_s
        self.max_ban_s = max_ban_s
        self.orders_10s = orders_10s
        self.orders_1d = orders_1d
        self._ips: dict[str, _IpState] = {}
        self._orders: dict[int, _OrderState] = {}

    def _ip(self, ip: str, now_ms: int) -> _IpState:
        state = self._ips.setdefault(ip, _IpState())
        minute = now_ms // MINUTE_MS
        if minute != state.minute:
            state.minute = minute
            state.used = 0
        return state

    def used(self, ip: str, now_ms: int) -> int:
        """The IP's weight in the current minute."""
        return self._ip(ip, now_ms).used

    def add(self, ip: str, weight: int, now_ms: int) -> int:
        """Charge weight after the fact (a failed order costs 1); return the new usage."""
        state = self._ip(ip, now_ms)
        state.used += weight
        return state.used

    def charge(self, ip: str, weight: int, now_ms: int) -> Verdict:
        """Charge one request of ``weight`` and decide whether it may proceed."""
        state = self._ip(ip, now_ms)
        if state.banned_until_ms > now_ms:
            return self._banned(state, now_ms)
        if state.limited_until_ms > now_ms:
            state.ignored += 1
            state.used += weight
            if state.ignored >= self.ban_after:
                state.bans += 1
                length_s = min(self.first_ban_s * 2 ** (state.bans - 1), self.max_ban_s)
                state.banned_until_ms = now_ms + length_s * 1000
                state.limited_until_ms = 0
                state.ignored = 0
                return self._banned(state, now_ms)
            return self._limited(state, now_ms)
        state.used += weight
        if state.used > self.limit:
            state.limited_until_ms = (state.minute + 1) * MINUTE_MS
            state.ignored = 0
            return self._limited(state, now_ms)
        return Verdict(status=200, used=state.used)

    def _limited(self, state: _IpState, now_ms: int) -> Verdict:
        return Verdict(
            status=429,
            used=state.used,
            retry_after=_ceil_seconds(state.limited_until_ms - now_ms),
            until_ms=state.limited_until_ms,
            code=-1003,
            msg=(
                f"Too much request weight used; current limit is {self.limit} request weight "
                "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
                "the API."
            ),
        )

    def _banned(self, state: _IpState, now_ms: int) -> Verdict:
        return Verdict(
            status=418,
            used=state.used,
            retry_after=_ceil_seconds(state.banned_until_ms - now_ms),
            until_ms=state.banned_until_ms,
            code=-1003,
            msg=(
                f"Way too much request weight used; IP banned until {state.banned_until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans."
            ),
        )

    def _account(self, account_id: int, now_ms: int) -> _OrderState:
        state = self._orders.setdefault(account_id, _OrderState())
        window, day = now_ms // TEN_SECONDS_MS, now_ms // DAY_MS
        if window != state.window_10s:
            state.window_10s, state.count_10s = window, 0
        if day != state.day:
            state.day, state.count_1d = day, 0
        return state

    def order_counts(self, account_id: int, now_ms: int) -> tuple[int, int]:
        """The account's new-order counts in the current 10 s and day windows."""
        state = self._account(account_id, now_ms)
        return state.count_10s, state.count_1d

    def count_order(self, account_id: int, now_ms: int) -> OrderVerdict:
        """Count one new order, or refuse it when a window is full (the refusal is not counted)."""
        state = self._account(account_id, now_ms)
        if state.count_10s >= self.orders_10s:
            wait = (state.window_10s + 1) * TEN_SECONDS_MS - now_ms
            return self._orders_refused(state, wait, self.orders_10s, "10 SECOND")
        if state.count_1d >= self.orders_1d:
            wait = (state.day + 1) * DAY_MS - now_ms
            return self._orders_refused(state, wait, self.orders_1d, "1 DAY")
        state.count_10s += 1
        state.count_1d += 1
        return OrderVerdict(status=200, count_10s=state.count_10s, count_1d=state.count_1d)

    @staticmethod
    def _orders_refused(state: _OrderState, wait_ms: int, limit: int, what: str) -> OrderVerdict:
        return OrderVerdict(
            status=429,
            count_10s=state.count_10s,
            count_1d=state.count_1d,
            retry_after=_ceil_seconds(wait_ms),
            code=-1015,
            msg=f"Too many new orders; current limit is {limit} orders per {what}.",
        )

    def rate_limits(self, ip: str, account_id: int | None, now_ms: int) -> list[dict[str, object]]:
        """The WS-API ``rateLimits`` array: weight for the IP, order counts for the account."""
        out: list[dict[str, object]] = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.limit,
                "count": self.used(ip, now_ms),
            }
        ]
        if account_id is not None:
            count_10s, count_1d = self.order_counts(account_id, now_ms)
            out.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": self.orders_10s,
                    "count": count_10s,
                }
            )
            out.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": "DAY",
                    "intervalNum": 1,
                    "limit": self.orders_1d,
                    "count": count_1d,
                }
            )
        return out
