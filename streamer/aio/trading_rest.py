"""Signed REST: the account, orders, and the market data a trader needs (protocol §4, §5).

:class:`TradingRest` composes the :class:`~streamer.aio.rest.RestClient` of a ``Streamer`` (the
same session, the same process-wide weight budget as the snapshots), and adds:

* **Signing** (protocol §4.2): every parameter goes in the query string, built once with
  :func:`~streamer.sansio.signing.encode_params`; that percent-encoded string is what is signed
  (the 2026 rule) and what is sent, byte for byte, with ``&signature=`` last. HMAC-SHA256 gives
  hex, Ed25519 base64 (percent-encoded in the URL). The key goes in ``X-MBX-APIKEY``.
* **Time**: ``timestamp`` is the wall clock plus the offset to the server's clock, measured with
  ``GET /api/v3/time`` before the first signed request (corrected by half the round trip) and
  again when the exchange answers -1021; the refused request is then sent once more (it never
  reached the engine, so this cannot place an order twice). ``recvWindow`` goes with every one.
* **Limits**: every request waits for the shared budget, as snapshots do; when the wait would be
  longer than ``max_wait`` (a 429/418 ``Retry-After``, or a spent minute), it raises
  :class:`~streamer.errors.RateLimited` (:class:`~streamer.errors.IPBanned` during a ban) at
  once and sends nothing: an order queued for a minute is usually not the order one meant.
  Unfilled-order counts (``X-MBX-ORDER-COUNT-10S``/``-1D``) are in :attr:`order_counts`.
* **Errors**: typed by :func:`~streamer.sansio.error_codes.exchange_error` with the request's
  context, so a placement that may have happened is :class:`~streamer.errors.UnknownOrderStatus`
  and one that certainly did not is :class:`~streamer.errors.OrderRejected` (see
  :meth:`TradingRest.place_order`).

Secrets never leave :class:`~streamer.config.Credentials`: no message, log line or exception
built here holds the secret or the signed URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import orjson

from streamer.aio.rest import RestClient, RestResponse
from streamer.config import Credentials
from streamer.errors import (
    ConfigurationError,
    ExchangeError,
    MalformedMessage,
    StreamerError,
    UnknownOrderStatus,
    UnknownSymbol,
)
from streamer.sansio.filters import SymbolFilters, parse_filters
from streamer.sansio.klines import INTERVALS, Kline, parse_klines
from streamer.sansio.ratelimit import depth_weight
from streamer.sansio.signing import ParamValue, ed25519_sign, encode_params, hmac_sign
from streamer.sansio.wire import Venue

__all__ = ["TradingRest"]

_MAX_RECV_WINDOW = 60_000
_INVALID_TIMESTAMP = -1021


def _json(response: RestResponse, what: str) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError as exc:
        head = response.body[:120].decode("utf-8", "replace")
        raise MalformedMessage(f"{what}: the answer is not JSON: {head}") from exc


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what}: expected a JSON object, got {value!r:.80}")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedMessage(f"{what}: expected a JSON array, got {value!r:.80}")
    return value


class TradingRest:
    """Signed and typed REST calls over a :class:`RestClient` (see the module docstring).

    ``credentials`` may be None for the public calls only (a signed one then raises
    :class:`~streamer.errors.ConfigurationError`, as an Ed25519 secret that is no key does
    here). ``wall`` is the clock the timestamps come
    from (epoch seconds), ``max_wait`` the longest wait for the weight budget before
    :class:`~streamer.errors.RateLimited` is raised instead.
    """

    def __init__(
        self,
        rest: RestClient,
        credentials: Credentials | None,
        *,
        recv_window: int = 5000,
        max_wait: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(recv_window, bool) or not 0 < recv_window <= _MAX_RECV_WINDOW:
            raise ConfigurationError(f"recv_window must be in 1..60000 ms, got {recv_window!r}")
        if not max_wait >= 0:
            raise ConfigurationError(f"max_wait must be >= 0 seconds, got {max_wait!r}")
        if credentials is not None:
            credentials.check_key()
        self.rest = rest
        self.credentials = credentials
        self.recv_window = recv_window
        self.max_wait = max_wait
        self._wall = wall
        self._offset_ms: float | None = None
        self._offset_generation = 0  # bumped by every measurement
        self._time_lock = asyncio.Lock()
        self._filters: dict[str, SymbolFilters] = {}
        #: ``time_syncs``: offset measurements; ``timestamp_retries``: requests sent again
        #: after a -1021.
        self.counters = {"time_syncs": 0, "timestamp_retries": 0}

    def __repr__(self) -> str:
        return (
            f"TradingRest({self.rest.endpoints.rest!r}, credentials={self.credentials!r}, "
            f"offset_ms={self._offset_ms})"
        )

    # -- time --------------------------------------------------------------------------------

    @property
    def offset_ms(self) -> float | None:
        """Server clock minus local wall clock, in ms (None until measured)."""
        return self._offset_ms

    @property
    def order_counts(self) -> dict[str, int]:
        """Unfilled-order counts by interval (``{"10S": n, "1D": m}``), as last reported."""
        return self.rest.order_counts

    async def sync_time(self) -> float:
        """Measure the offset to the server clock (``GET /api/v3/time``); returns it in ms.

        The server read its clock somewhere in the round trip; the middle is the best guess,
        so the offset is ``serverTime - (sent + received) / 2``.
        """
        sent = self._wall()
        response = await self.rest.request("GET", "/api/v3/time", weight=1, max_wait=self.max_wait)
        received = self._wall()
        body = _object(_json(response, "time"), "time")
        server = body.get("serverTime")
        if not isinstance(server, int) or isinstance(server, bool):
            raise MalformedMessage(f"time: no integer serverTime in {body!r:.80}")
        self._offset_ms = server - (sent + received) / 2 * 1000
        self._offset_generation += 1
        self.counters["time_syncs"] += 1
        return self._offset_ms

    async def _ensure_offset(self, stale_generation: int | None = None) -> None:
        """Measure the offset if it is unknown, or if it is still the one of
        ``stale_generation`` (concurrent -1021s measure once)."""
        async with self._time_lock:
            if self._offset_ms is None or self._offset_generation == stale_generation:
                await self.sync_time()

    # -- signing -----------------------------------------------------------------------------

    def _sign(self, credentials: Credentials, payload: str) -> str:
        if credentials.key_type == "ED25519":
            return quote(ed25519_sign(credentials.secret, payload), safe="")
        return hmac_sign(credentials.secret, payload)

    async def signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue],
        *,
        weight: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
    ) -> Any:
        """A signed request; the parsed JSON answer (see the module docstring)."""
        response = await self._signed(method, path, params, weight=weight, timeout=timeout)
        return _json(response, f"{method} {path}")

    async def _signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue],
        *,
        weight: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
        context: str = "request",
    ) -> RestResponse:
        credentials = self.credentials
        if credentials is None:
            raise ConfigurationError(f"{method} {path} is a signed request: give credentials")
        await self._ensure_offset()
        items = [(k, v) for k, v in params.items() if k not in ("timestamp", "signature")]
        if not any(k == "recvWindow" for k, _ in items):
            items.append(("recvWindow", self.recv_window))
        headers = {"X-MBX-APIKEY": credentials.api_key}
        for attempt in (1, 2):
            generation = self._offset_generation
            assert self._offset_ms is not None
            timestamp = int(self._wall() * 1000 + self._offset_ms)
            query = encode_params([*items, ("timestamp", timestamp)])
            query += "&signature=" + self._sign(credentials, query)
            try:
                return await self.rest.request(
                    method,
                    path,
                    query,
                    weight=weight,
                    headers=headers,
                    timeout=timeout,
                    max_wait=self.max_wait,
                    context=context,
                )
            except ExchangeError as exc:
                if exc.code != _INVALID_TIMESTAMP or attempt == 2:
                    raise
            # -1021: our clock drifted from the server's; measure again, send once more.
            self.counters["timestamp_retries"] += 1
            await self._ensure_offset(generation)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- public market data ------------------------------------------------------------------

    async def _public(self, path: str, params: Mapping[str, ParamValue], weight: int) -> Any:
        response = await self.rest.request(
            "GET", path, encode_params(params), weight=weight, max_wait=self.max_wait
        )
        return _json(response, f"GET {path}")

    async def exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET /api/v3/exchangeInfo`` (of ``symbols``, or every symbol); the answer's
        ``REQUEST_WEIGHT`` limit becomes the budget's, and its symbols' filters are cached."""
        params: dict[str, ParamValue] = {}
        if symbols is not None:
            params["symbols"] = orjson.dumps(list(symbols)).decode()
        body = _object(await self._public("/api/v3/exchangeInfo", params, 20), "exchangeInfo")
        self.rest.adopt_limits(body)
        entries = _array(body.get("symbols"), "exchangeInfo symbols")
        for entry in entries:
            filters = parse_filters(entry)
            self._filters[filters.symbol] = filters
        return body

    async def symbol_filters(self, symbol: str, *, refresh: bool = False) -> SymbolFilters:
        """The filters of ``symbol``, from exchangeInfo once and then from the cache
        (``refresh`` asks again: a symbol's status or filters can change).
        :class:`~streamer.errors.UnknownSymbol` if the exchange does not list it."""
        if not refresh and symbol in self._filters:
            return self._filters[symbol]
        self._filters.pop(symbol, None)
        await self.exchange_info([symbol])
        found = self._filters.get(symbol)
        if found is None:
            raise UnknownSymbol(f"exchangeInfo does not list {symbol!r}", symbol=symbol)
        return found

    async def ticker_price(self, symbol: str) -> Decimal:
        """The last price of ``symbol`` (``GET /api/v3/ticker/price``)."""
        body = _object(await self._public("/api/v3/ticker/price", {"symbol": symbol}, 2), "ticker")
        try:
            price = Decimal(body["price"])
        except (KeyError, TypeError, InvalidOperation):
            raise MalformedMessage(f"ticker/price: no decimal price in {body!r:.80}") from None
        return price

    async def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        """``GET /api/v3/depth``: ``{lastUpdateId, bids, asks}`` as Binance sends it."""
        weight = depth_weight(Venue.SPOT, limit)
        params: dict[str, ParamValue] = {"symbol": symbol, "limit": limit}
        result: dict[str, Any] = _object(
            await self._public("/api/v3/depth", params, weight), "depth"
        )
        return result

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        limit: int = 500,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[Kline]:
        """``GET /api/v3/klines``: candles oldest first (``interval``: one of
        :data:`~streamer.sansio.klines.INTERVALS`; ``limit`` up to 1000)."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {sorted(INTERVALS)}, got {interval!r}")
        params: dict[str, ParamValue] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_time is not None:
            params["startTime"] = start_time
        if end_time is not None:
            params["endTime"] = end_time
        return parse_klines(await self._public("/api/v3/klines", params, 2))

    # -- account -----------------------------------------------------------------------------

    async def account(self, omit_zero_balances: bool = True) -> dict[str, Any]:
        """``GET /api/v3/account``: commissions, permissions, ``balances``."""
        params = {"omitZeroBalances": omit_zero_balances}
        body = await self.signed("GET", "/api/v3/account", params, weight=20)
        result: dict[str, Any] = _object(body, "account")
        return result

    async def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/v3/openOrders`` of ``symbol`` (weight 6), or of every symbol (80)."""
        params = {"symbol": symbol} if symbol is not None else {}
        weight = 6 if symbol is not None else 80
        body = await self.signed("GET", "/api/v3/openOrders", params, weight=weight)
        result: list[dict[str, Any]] = _array(body, "openOrders")
        return result

    async def my_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        order_id: int | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades``: trades from ``from_id`` on, or those of ``order_id``."""
        params: dict[str, ParamValue] = {"symbol": symbol}
        if order_id is not None:
            params["orderId"] = order_id
        if from_id is not None:
            params["fromId"] = from_id
        params["limit"] = limit
        weight = 5 if order_id is not None else 20
        body = await self.signed("GET", "/api/v3/myTrades", params, weight=weight)
        result: list[dict[str, Any]] = _array(body, "myTrades")
        return result

    # -- orders ------------------------------------------------------------------------------

    @staticmethod
    def _order_ref(
        symbol: str, client_order_id: str | None, order_id: int | None
    ) -> dict[str, ParamValue]:
        if client_order_id is None and order_id is None:
            raise ValueError("give client_order_id or order_id")
        params: dict[str, ParamValue] = {"symbol": symbol}
        if order_id is not None:
            params["orderId"] = order_id
        if client_order_id is not None:
            params["origClientOrderId"] = client_order_id
        return params

    async def _order_call(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue],
        *,
        weight: int,
        context: str,
        client_order_id: str | None,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
    ) -> Any:
        """A signed order request whose errors name the symbol and the client order id."""
        try:
            response = await self._signed(
                method, path, params, weight=weight, timeout=timeout, context=context
            )
        except StreamerError as exc:
            if exc.symbol is None:
                exc.symbol = str(params.get("symbol"))
            if exc.client_order_id is None:
                exc.client_order_id = client_order_id
            raise
        return _json(response, f"{method} {path}")

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: int | None = None
    ) -> dict[str, Any]:
        """``GET /api/v3/order``; :class:`~streamer.errors.OrderNotFound` on -2013 (which,
        right after an unknown placement, is not yet proof: reads lag the engine)."""
        params = self._order_ref(symbol, client_order_id, order_id)
        body = await self._order_call(
            "GET",
            "/api/v3/order",
            params,
            weight=4,
            context="query",
            client_order_id=client_order_id,
        )
        result: dict[str, Any] = _object(body, "order")
        return result

    async def place_order(
        self,
        params: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the HTTP request's: past it, unknown
    ) -> dict[str, Any]:
        """``POST /api/v3/order`` with ``params`` from :func:`~streamer.sansio.filters.
        prepare_order` (``newClientOrderId`` included) and ``newOrderRespType=FULL``.

        Raises, so that the caller knows whether the order may exist:

        * :class:`~streamer.errors.OrderRejected`: definitely not placed (-2010, -1013, any
          other 4xx answer, -1021 again after the retry);
        * :class:`~streamer.errors.RateLimited` / :class:`~streamer.errors.IPBanned`: not
          placed (nothing reached the engine, or nothing was sent);
        * :class:`~streamer.errors.AuthenticationError`: not placed;
        * :class:`~streamer.errors.ConnectError`: never sent;
        * :class:`~streamer.errors.UnknownOrderStatus`: it may exist (a 5xx, -1006, -1007, a
          timeout or the connection lost after sending; ``__cause__`` says which).
        """
        body = dict(params)
        body.setdefault("newOrderRespType", "FULL")
        cid = params.get("newClientOrderId")
        try:
            answer = await self._order_call(
                "POST",
                "/api/v3/order",
                body,
                weight=1,
                context="place",
                client_order_id=cid,
                timeout=timeout,
            )
            return _object(answer, "order")
        except MalformedMessage as exc:
            # The exchange accepted the order (2xx) but its answer cannot be read: it exists,
            # in a state we do not know.
            raise UnknownOrderStatus(
                f"POST /api/v3/order: unreadable answer ({exc})",
                symbol=params.get("symbol"),
                client_order_id=cid,
            ) from exc

    async def cancel_order(
        self,
        symbol: str,
        *,
        client_order_id: str | None = None,
        order_id: int | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """``DELETE /api/v3/order``; :class:`~streamer.errors.OrderNotFound` on -2011 "Unknown
        order sent." (unknown, already filled or already canceled), :class:`~streamer.errors.
        OrderRejected` when the cancel itself was refused."""
        params = self._order_ref(symbol, client_order_id, order_id)
        if new_client_order_id is not None:
            params["newClientOrderId"] = new_client_order_id
        answer = await self._order_call(
            "DELETE",
            "/api/v3/order",
            params,
            weight=1,
            context="cancel",
            client_order_id=client_order_id,
        )
        result: dict[str, Any] = _object(answer, "cancel")
        return result

    async def test_order(
        self, params: Mapping[str, str], *, compute_commission_rates: bool = False
    ) -> dict[str, Any]:
        """``POST /api/v3/order/test``: the exchange validates the order without placing it;
        ``{}``, or the commission rates that would apply. A refusal is
        :class:`~streamer.errors.OrderRejected`."""
        body: dict[str, ParamValue] = dict(params)
        if compute_commission_rates:
            body["computeCommissionRates"] = True
        answer = await self._order_call(
            "POST",
            "/api/v3/order/test",
            body,
            weight=20 if compute_commission_rates else 1,
            context="test",
            client_order_id=params.get("newClientOrderId"),
        )
        result: dict[str, Any] = _object(answer, "order/test")
        return result
