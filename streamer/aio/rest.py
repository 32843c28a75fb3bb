"""The REST client: one aiohttp session per ``Streamer``, every request inside the weight budget.

Every request waits until the process-wide :class:`~streamer.sansio.ratelimit.WeightBudget` of
its host has room (a caller may ask for only a share of it: snapshots take 50% by default), and
every response's ``X-MBX-USED-WEIGHT-1M`` feeds the budget back. A 429 or 418 stops *every*
request to that host until its ``Retry-After`` has passed (protocol §5.1). Errors are translated
here, at the boundary, into the exception tree of :mod:`streamer.errors`, keeping ``__cause__``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import aiohttp
import orjson

from streamer.aio.timing import wait_until
from streamer.config import Endpoints
from streamer.errors import (
    ConnectError,
    ExchangeError,
    IPBanned,
    RateLimited,
    RequestTimeout,
    TransportError,
    UnknownSymbol,
)
from streamer.sansio.ratelimit import WeightBudget

__all__ = ["RestClient", "RestResponse", "error_from_response"]

log = logging.getLogger(__name__)

#: Larger REST bodies are refused: a 5000-level depth snapshot is about 300 KiB.
MAX_BODY = 16 << 20


@dataclass(frozen=True, slots=True)
class RestResponse:
    url: str  # the full request URL, query included
    status: int
    body: bytes


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return 60.0  # absent or unreadable: wait a full weight window


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> ExchangeError:
    """The exception for an error response (protocol §5.2, §5.3)."""
    code: int | None = None
    msg = body[:200].decode("utf-8", "replace")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        code = parsed.get("code") if isinstance(parsed.get("code"), int) else None
        msg = str(parsed.get("msg", msg))
    text = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {msg}"
    if status == 429:
        return RateLimited(text, code=code, status=status, retry_after=_retry_after(headers))
    if status == 418:
        return IPBanned(text, code=code, status=status, retry_after=_retry_after(headers))
    if code == -1121:
        return UnknownSymbol(text, code=code, status=status)
    return ExchangeError(text, code=code, status=status)


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
        if not paid:
            await self.wait_for_budget(weight, share)
        url = self.endpoints.rest + path
        try:
            async with self.session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                body = await _read_body(response)
                status = response.status
                headers = response.headers
                full_url = str(response.url)
        except TimeoutError as exc:
            raise RequestTimeout(f"GET {path}: no answer in {self.timeout} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"GET {path}: cannot connect to {self.endpoints.rest}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"GET {path}: {type(exc).__name__}: {exc}") from exc
        self._observe(status, headers)
        if body is None:
            raise ExchangeError(f"GET {path}: body larger than {MAX_BODY} bytes", status=status)
        if status >= 400:
            raise error_from_response(status, body, headers)
        return RestResponse(full_url, status, body)

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
        limit = _weight_limit(info.get("rateLimits"))
        if limit is not None:
            self.budget.limit = limit
        return listed

    def _observe(self, status: int, headers: Mapping[str, str]) -> None:
        now, wall = self._clock(), self._wall()
        used = headers.get("X-MBX-USED-WEIGHT-1M")
        self.budget.observe(int(used) if used and used.isdigit() else None, now, wall)
        if status in (429, 418):
            seconds = _retry_after(headers)
            self.budget.retry_after(seconds, now, banned=status == 418)
            log.warning(
                "REST %s: no request to %s for %.0f s", status, self.endpoints.rest, seconds
            )
