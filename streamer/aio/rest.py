"""The REST client: one aiohttp session per ``Streamer``, every request inside the weight budget.

Every request waits until the process-wide :class:`~streamer.sansio.ratelimit.WeightBudget` of
its host has room (a caller may ask for only a share of it: snapshots take 50% by default), and
every response's ``X-MBX-USED-WEIGHT-1M`` feeds the budget back; ``X-MBX-ORDER-COUNT-*`` headers
are recorded in :attr:`RestClient.order_counts`. A 429 or 418 stops *every* request to that host
until its ``Retry-After`` has passed (protocol §5.1); a caller that would rather not wait that
long gives ``max_wait`` and gets :class:`~streamer.errors.RateLimited` at once, nothing sent.

Errors are translated here, at the boundary, into the exception tree of :mod:`streamer.errors`,
keeping ``__cause__``; which class depends on the request's context (``"place"``: an order
placement, where a timeout or a dropped connection after sending leaves the outcome unknown).
The query string is sent exactly as given (``yarl.URL(..., encoded=True)``): a signed request's
signature covers those very bytes. Signed requests themselves are :mod:`streamer.aio.trading_rest`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import aiohttp
import orjson
from yarl import URL

from streamer.aio.sink import MetricsSink
from streamer.aio.timing import wait_until
from streamer.config import Endpoints
from streamer.errors import (
    ConnectError,
    ExchangeError,
    IPBanned,
    RateLimited,
    RequestTimeout,
    TransportError,
    UnknownOrderStatus,
)
from streamer.sansio.error_codes import exchange_error
from streamer.sansio.ratelimit import WeightBudget
from streamer.sansio.signing import encode_params

__all__ = ["RestClient", "RestResponse", "error_from_response"]

log = logging.getLogger(__name__)

_ORDER_COUNT = "X-MBX-ORDER-COUNT-"

#: Larger REST bodies are refused: a 5000-level depth snapshot is about 300 KiB.
MAX_BODY = 16 << 20


@dataclass(frozen=True, slots=True)
class RestResponse:
    url: str  # the full request URL, query included
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive from aiohttp


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return 60.0  # absent or unreadable: wait a full weight window


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], context: str = "request"
) -> ExchangeError:
    """The exception for an error response (protocol §5.2, §5.3): the body's ``code``/``msg``
    through :func:`streamer.sansio.error_codes.exchange_error`; ``context`` as there."""
    code: int | None = None
    msg = body[:200].decode("utf-8", "replace")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        raw_code = parsed.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        msg = str(parsed.get("msg", msg))[:500]
    return exchange_error(status, code, msg, context=context, retry_after=_retry_after(headers))


async def _read_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The whole body, or None past MAX_BODY (read in chunks: a huge body is never held)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _weight_limit(limits: object) -> int | None:
    """The per-minute REQUEST_WEIGHT limit of an exchangeInfo ``rateLimits`` array."""
    if not isinstance(limits, list):
        return None
    for entry in limits:
        if (
            isinstance(entry, dict)
            and entry.get("rateLimitType") == "REQUEST_WEIGHT"
            and entry.get("interval") == "MINUTE"
            and entry.get("intervalNum") == 1
            and isinstance(entry.get("limit"), int)
            and entry["limit"] > 0
        ):
            return int(entry["limit"])
    return None


class RestClient:
    """GET/POST/DELETE against one venue's REST base URL, budgeted and translated."""

    def __init__(
        self,
        endpoints: Endpoints,
        budget: WeightBudget,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints = endpoints
        self.budget = budget
        self.session = session
        self.timeout = timeout
        self._clock = clock
        self._wall = wall
        #: The account's unfilled-order counts as the last order response reported them, by
        #: interval: ``{"10S": 3, "1D": 120}`` from ``X-MBX-ORDER-COUNT-10S`` / ``-1D``.
        self.order_counts: dict[str, int] = {}
        #: Where each request's latency and status go when metrics are on (set by the owner).
        self.metrics: MetricsSink | None = None

    def budget_delay(self, weight: int, share: float = 1.0) -> float:
        """Seconds until ``weight`` fits in ``share`` of this minute's budget (0: now)."""
        return self.budget.delay(weight, self._clock(), self._wall(), share=share)

    def spend(self, weight: int) -> None:
        """Count ``weight`` as used now (before the request is sent, so that nobody else
        takes the same room)."""
        self.budget.spend(weight, self._clock(), self._wall())

    async def wait_for_budget(self, weight: int, share: float = 1.0) -> None:
        """Return once ``weight`` fits in ``share`` of this minute's budget, then count it."""
        await wait_until(partial(self.budget_delay, weight, share))
        self.spend(weight)

    async def get(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        weight: int,
        share: float = 1.0,
        paid: bool = False,
    ) -> RestResponse:
        """``GET path?params``; raises :class:`ExchangeError` (and subclasses) on an error
        answer, :class:`TransportError` when no answer came. ``paid``: the caller already
        waited for and spent the weight (a scheduler that orders its requests)."""
        return await self.request(
            "GET", path, encode_params(params), weight=weight, share=share, paid=paid
        )

    async def request(
        self,
        method: str,
        path: str,
        query: str = "",
        *,
        weight: int,
        share: float = 1.0,
        paid: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
        max_wait: float | None = None,
        context: str = "request",
    ) -> RestResponse:
        """``method path?query`` with ``query`` sent byte for byte as given (already encoded).

        Waits for ``weight`` in ``share`` of the budget, unless ``paid``; with ``max_wait``, a
        wait longer than that raises :class:`RateLimited` (:class:`IPBanned` during a ban)
        instead, and nothing is sent. ``timeout`` overrides the client's. Errors as
        :func:`error_from_response` with ``context``; when no answer came: :class:`ConnectError`
        if the connection could not be made (nothing was sent), else :class:`RequestTimeout` /
        :class:`TransportError`, or for ``context="place"`` :class:`UnknownOrderStatus` (the
        order may have reached the exchange)."""
        if not paid:
            if max_wait is not None:
                self._check_wait(weight, share, max_wait)
            await self.wait_for_budget(weight, share)
        url = URL(self.endpoints.rest + path + (f"?{query}" if query else ""), encoded=True)
        seconds = self.timeout if timeout is None else timeout
        what = f"{method} {path}"
        started = self._clock() if self.metrics is not None else 0.0
        answered = "no_answer"  # or the HTTP status, for the metrics
        try:
            async with self.session.request(
                method, url, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as response:
                body = await _read_body(response)
                status = response.status
                answer = response.headers
                full_url = str(response.url)
                answered = str(status)
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectError(f"{what}: cannot connect to {self.endpoints.rest} in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"{what}: cannot connect to {self.endpoints.rest}") from exc
        except TimeoutError as exc:
            if context == "place":
                raise UnknownOrderStatus(f"{what}: no answer in {seconds} s") from exc
            raise RequestTimeout(f"{what}: no answer in {seconds} s") from exc
        except aiohttp.ClientError as exc:
            text = f"{what}: {type(exc).__name__}: {exc}"
            if context == "place":
                raise UnknownOrderStatus(text) from exc
            raise TransportError(text) from exc
        finally:
            if self.metrics is not None:
                self.metrics.rest(method, path, answered, self._clock() - started)
        self._observe(status, answer)
        if body is None:
            text = f"{what}: HTTP {status}, body larger than {MAX_BODY} bytes"
            if context == "place" and status < 400:
                raise UnknownOrderStatus(text, status=status)  # accepted, but unreadable
            raise ExchangeError(text, status=status)
        if status >= 400:
            raise error_from_response(status, body, answer, context)
        return RestResponse(full_url, status, body, answer)

    def _check_wait(self, weight: int, share: float, max_wait: float) -> None:
        delay = self.budget_delay(weight, share)
        if delay <= max_wait:
            return
        kind = IPBanned if self.budget.banned else RateLimited
        blocked = self.budget.blocked_until > self._clock()
        why = "banned (418)" if self.budget.banned else "after a 429" if blocked else "full"
        raise kind(
            f"REST weight budget of {self.endpoints.rest} {why}: {delay:.1f} s to wait, more "
            f"than max_wait {max_wait:g} s; nothing sent",
            retry_after=delay,
        )

    async def exchange_symbols(self, symbols: list[str]) -> set[str]:
        """Which of ``symbols`` the venue lists (spot asks for just those; futures venues
        list everything in one answer). Its ``REQUEST_WEIGHT`` rate limit, authoritative
        (protocol §5.1), becomes the budget's limit."""
        path = self.endpoints.rest_prefix + "/exchangeInfo"
        if self.endpoints.venue == "spot":
            query = {"symbols": orjson.dumps(symbols).decode()}
            response = await self.get(path, query, weight=20)
        else:
            response = await self.get(path, {}, weight=1)
        try:
            info = orjson.loads(response.body)
            listed = {entry["symbol"] for entry in info["symbols"] if isinstance(entry, dict)}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            head = response.body[:120].decode("utf-8", "replace")
            raise ExchangeError(f"exchangeInfo answer without a symbols list: {head}") from exc
        self.adopt_limits(info)
        return listed

    def adopt_limits(self, info: Mapping[str, object]) -> None:
        """Take the ``REQUEST_WEIGHT`` per-minute limit of an exchangeInfo answer as the
        budget's (authoritative, protocol §5.1); an answer without one changes nothing."""
        limit = _weight_limit(info.get("rateLimits"))
        if limit is not None:
            self.budget.limit = limit

    def _observe(self, status: int, headers: Mapping[str, str]) -> None:
        now, wall = self._clock(), self._wall()
        used = headers.get("X-MBX-USED-WEIGHT-1M")
        self.budget.observe(int(used) if used and used.isdigit() else None, now, wall)
        for name, value in headers.items():
            upper = name.upper()
            if upper.startswith(_ORDER_COUNT) and value.isdigit():
                self.order_counts[upper[len(_ORDER_COUNT) :]] = int(value)
        if status in (429, 418):
            seconds = _retry_after(headers)
            self.budget.retry_after(seconds, now, banned=status == 418)
            log.warning(
                "REST %s: no request to %s for %.0f s", status, self.endpoints.rest, seconds
            )
