"""The REST API of the local exchange: ``/api/v3/...`` as Binance spot serves it (protocol §4).

Every request goes through one wrapper (:meth:`RestApi.endpoint`) that does, in order:

1. a scripted ``rate_limit`` fault, if one is due (429/418, -1003, ``Retry-After``);
2. parameter parsing: query string and form body, the query winning (``params.py``);
3. the weight charge for the client's IP (``weights.py``): 429, then 418 bans;
4. for signed endpoints, the key, timing and signature checks (``auth.py``);
5. the handler; a Binance error becomes ``{"code": .., "msg": ..}`` with its HTTP status, and a
   failed order or cancel costs weight 1 (successful ones cost 0 since 2026-04-02).

Every response carries ``X-MBX-USED-WEIGHT`` and ``X-MBX-USED-WEIGHT-1M`` (and aiohttp adds an
RFC 1123 ``Date``); order placements add ``X-MBX-ORDER-COUNT-10S`` and ``-1D``. Anything the
handlers did not foresee is logged and answered 500 / -1000, so no input can stop the server.

Weights (protocol §4.3, §7.5): ping/time 1, exchangeInfo 20, depth 5/25/50/250 by limit,
ticker/price 2 (4 without symbol), klines 2, order POST/DELETE 0 on success (1 on failure),
order/test 1 (20 with computeCommissionRates), order GET 4, openOrders 6 (80 without symbol),
allOrders 20, myTrades 20 (5 with orderId), account 20.

Orders take every parameter of protocol §4.3 the engine implements, ``stopPrice`` and
``trailingDelta`` included (the engine answers for the latter, see ``engine.py``);
``icebergQty`` and the peg parameters are -1106 (not implemented).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from streamer.testing.exchange.auth import ApiKey, Auth
from streamer.testing.exchange.engine import Engine, fmt
from streamer.testing.exchange.faults import FaultKind, FaultPlan
from streamer.testing.exchange.params import ApiError, Params, not_valid, parse_form
from streamer.testing.exchange.symbols import load_exchange_info
from streamer.testing.exchange.weights import Weights

if TYPE_CHECKING:
    from streamer.testing.exchange.dispatch import Dispatcher
    from streamer.testing.exchange.firehose import Firehose

__all__ = ["JSON_TYPE", "Call", "Reply", "RestApi", "json_errors"]

log = logging.getLogger(__name__)

JSON_TYPE = "application/json;charset=UTF-8"
_DAY_MS = 86_400_000
_GONE_BODY = (
    "<html>\r\n<head><title>410 Gone</title></head>\r\n<body>\r\n"
    "<center><h1>410 Gone</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_UNKNOWN_5XX = {
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}
_TIMEOUT_1007 = {
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. "
    "Send status unknown; execution status unknown.",
}
_NOT_REQUIRED = ("icebergQty", "pegPriceType", "pegOffsetValue")  # not implemented


@dataclass(frozen=True, slots=True)
class Call:
    """One parsed, authorised request."""

    request: web.Request
    ip: str
    params: Params
    now_ms: int
    key: ApiKey | None

    @property
    def account_id(self) -> int:
        """The account of a signed request."""
        assert self.key is not None
        return self.key.account_id


@dataclass(slots=True)
class Reply:
    """What a handler answers; the wrapper turns it into the HTTP response."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold_s: float = 0.0  # wait this long before answering (order_timeout fault)
    drop: bool = False  # then drop the connection instead of answering
    after: Callable[[], Awaitable[None]] | None = None  # runs once the answer is written


Handler = Callable[[Call], Awaitable[Reply]]
Weight = int | Callable[[Params], int]


def _json(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers={"Content-Type": JSON_TYPE, **headers}
    )


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods answer JSON (404/405) rather than aiohttp's plain text."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        msg = f"This operation is not supported: {request.method} {request.path}"
        return _json({"code": -1020, "msg": msg}, exc.status, {})


def _depth_limit(params: Params) -> int:
    limit = params.integer("limit", default=100)
    assert limit is not None
    if limit < 1:
        raise not_valid("limit")
    return min(limit, 5000)  # larger limits are truncated to 5000 (protocol §2.1)


def _depth_weight(params: Params) -> int:
    try:
        limit = _depth_limit(params)
    except ApiError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class RestApi:
    """The ``/api/v3`` routes, backed by the engine, the key registry, weights and faults."""

    def __init__(
        self,
        engine: Engine,
        auth: Auth,
        weights: Weights,
        faults: FaultPlan,
        dispatcher: Dispatcher,
        clock: Callable[[], int],
        firehose: Firehose | None = None,
    ) -> None:
        """``firehose``: answer ``/api/v3/depth`` for its symbols with its snapshot."""
        self._engine = engine
        self._auth = auth
        self._weights = weights
        self._faults = faults
        self._dispatcher = dispatcher
        self._clock = clock
        self._firehose = firehose
        self.internal_errors: list[BaseException] = []  # handler bugs, for tests to assert on
        info = load_exchange_info()
        self._info_head = {k: v for k, v in info.items() if k not in ("symbols", "serverTime")}
        self._info_head["rateLimits"] = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weights.limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": weights.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": weights.orders_1d},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 300000},
        ]  # fmt: skip

    def routes(self) -> list[web.RouteDef]:
        """Every REST route, plus the retired ``userDataStream`` (410 Gone)."""
        ep = self.endpoint
        return [
            web.get("/api/v3/ping", ep(self._ping, 1)),
            web.get("/api/v3/time", ep(self._time, 1)),
            web.get("/api/v3/exchangeInfo", ep(self._exchange_info, 20)),
            web.get("/api/v3/depth", ep(self._depth, _depth_weight)),
            web.get(
                "/api/v3/ticker/price",
                ep(self._ticker_price, lambda p: 2 if p.text("symbol") else 4),
            ),
            web.get("/api/v3/klines", ep(self._klines, 2)),
            web.post("/api/v3/order", ep(self._order_place, 0, signed=True, order=True)),
            web.post(
                "/api/v3/order/test",
                ep(
                    self._order_test,
                    lambda p: 20 if p.get("computeCommissionRates") == "true" else 1,
                    signed=True,
                ),
            ),
            web.get("/api/v3/order", ep(self._order_get, 4, signed=True)),
            web.delete("/api/v3/order", ep(self._order_cancel, 0, signed=True, order=True)),
            web.get(
                "/api/v3/openOrders",
                ep(self._open_orders, lambda p: 6 if p.text("symbol") else 80, signed=True),
            ),
            web.delete("/api/v3/openOrders", ep(self._cancel_all, 0, signed=True, order=True)),
            web.get("/api/v3/allOrders", ep(self._all_orders, 20, signed=True)),
            web.get(
                "/api/v3/myTrades",
                ep(self._my_trades, lambda p: 5 if p.text("orderId") else 20, signed=True),
            ),
            web.get("/api/v3/account", ep(self._account, 20, signed=True)),
            web.route("*", "/api/v3/userDataStream", self._gone),
        ]

    # -- the wrapper ---------------------------------------------------------------------------

    def endpoint(
        self, handler: Handler, weight: Weight, *, signed: bool = False, order: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``handler`` behind the wrapper of the module docstring (faults, weight, signature);
        the futures routes (``futures_rest.py``) are served through it too."""

        async def serve(request: web.Request) -> web.StreamResponse:
            try:
                return await self._serve(request, handler, weight, signed, order)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("local exchange: %s %s failed", request.method, request.path)
                self.internal_errors.append(exc)
                body = {
                    "code": -1000,
                    "msg": "An unknown error occurred while processing the request.",
                }
                return _json(body, 500, {})

        return serve

    async def _serve(
        self, request: web.Request, handler: Handler, weight: Weight, signed: bool, order: bool
    ) -> web.StreamResponse:
        now = self._clock()
        ip = request.remote or "unknown"
        fault = self._faults.take_request_fault("rest")
        if fault is not None:
            used = self._weights.used(ip, now)
            if fault.http_status == 418:
                until = now + fault.retry_after * 1000
                msg = f"Way too much request weight used; IP banned until {until}."
            else:
                msg = "Too much request weight used; please use WebSocket Streams."
            body = {"code": -1003, "msg": msg}
            return _json(body, fault.http_status, self._weight_headers(used, fault.retry_after))
        try:
            query = request.raw_path.partition("?")[2]
            body_text = await _form_body(request)
            params = Params(parse_form(query), parse_form(body_text))
        except ApiError as exc:
            verdict = self._weights.charge(ip, weight if isinstance(weight, int) else 1, now)
            if not verdict.allowed:
                return _json(
                    {"code": verdict.code, "msg": verdict.msg}, verdict.status, verdict.headers()
                )
            if order:
                self._weights.add(ip, 1, now)
            used = self._weights.used(ip, now)
            return _json(exc.as_json(), exc.status, self._weight_headers(used))
        verdict = self._weights.charge(ip, weight(params) if callable(weight) else weight, now)
        if not verdict.allowed:
            return _json(
                {"code": verdict.code, "msg": verdict.msg}, verdict.status, verdict.headers()
            )
        try:
            key = None
            if signed:
                api_key = request.headers.get("X-MBX-APIKEY")
                key = self._auth.verify_rest(api_key, query, body_text, params, now)
            reply = await handler(Call(request, ip, params, now, key))
        except ApiError as exc:  # AuthError and EngineError too
            if order:
                self._weights.add(ip, 1, now)
            extra = exc.headers
            used = self._weights.used(ip, now)
            body = {"code": exc.code, "msg": exc.msg}
            return _json(body, exc.status, {**self._weight_headers(used), **extra})
        return await self._send(request, reply, self._weights.used(ip, now))

    @staticmethod
    def _weight_headers(used: int, retry_after: int | None = None) -> dict[str, str]:
        out = {"X-MBX-USED-WEIGHT": str(used), "X-MBX-USED-WEIGHT-1M": str(used)}
        if retry_after is not None:
            out["Retry-After"] = str(retry_after)
        return out

    async def _send(self, request: web.Request, reply: Reply, used: int) -> web.StreamResponse:
        if reply.hold_s:
            await asyncio.sleep(reply.hold_s)
        if reply.drop and request.transport is not None:
            request.transport.abort()
        response = _json(reply.body, reply.status, {**self._weight_headers(used), **reply.headers})
        if reply.after is None:
            return response
        try:
            await response.prepare(request)
            await response.write_eof()
        finally:
            await reply.after()
        return response

    async def _gone(self, request: web.Request) -> web.StreamResponse:
        """The listenKey endpoints were retired on 2026-02-20: 410 Gone (protocol §3.2)."""
        return web.Response(status=410, text=_GONE_BODY, content_type="text/html")

    # -- market data ---------------------------------------------------------------------------

    def _symbol(self, params: Params, *, required: bool = True) -> str | None:
        symbol = params.text("symbol", required=required)
        if symbol is not None and symbol not in self._engine.symbols:
            raise ApiError(-1121, "Invalid symbol.")
        return symbol

    async def _ping(self, call: Call) -> Reply:
        return Reply({})

    async def _time(self, call: Call) -> Reply:
        return Reply({"serverTime": call.now_ms})

    async def _exchange_info(self, call: Call) -> Reply:
        params = call.params
        symbol = params.text("symbol")
        listed = params.symbol_list("symbols")
        if symbol is not None and listed is not None:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        names = [symbol] if symbol is not None else listed
        if names is None:
            names = list(self._engine.symbols)
        elif any(n not in self._engine.symbols for n in names):
            raise ApiError(-1121, "Invalid symbol.")
        entries = [self._engine.symbols[n].raw for n in names]
        status = params.text("symbolStatus")
        if status is not None:
            if status not in ("TRADING", "HALT", "BREAK", "END_OF_DAY", "CANCEL_ONLY"):
                raise ApiError(-1122, "Invalid symbolStatus.")
            entries = [e for e in entries if e.get("status") == status]
        body = {**self._info_head, "serverTime": call.now_ms, "symbols": entries}
        # Keep Binance's key order: timezone, serverTime, rateLimits, exchangeFilters, symbols.
        order = ("timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols")
        ordered = {k: body[k] for k in order if k in body} | body
        return Reply(ordered)

    async def _depth(self, call: Call) -> Reply:
        if self._firehose is not None:
            # The snapshot that fits the firehose's diff stream (firehose symbols need not be
            # the engine's).
            name = call.params.required("symbol")
            fire = self._firehose.depth(name, _depth_limit(call.params))
            if fire is not None:
                return Reply(fire)
        symbol = self._symbol(call.params)
        assert symbol is not None
        snapshot = self._faults.snapshot(self._engine, symbol, _depth_limit(call.params))
        body = {
            "lastUpdateId": snapshot.last_update_id,
            "bids": snapshot.bids,
            "asks": snapshot.asks,
        }
        return Reply(body)

    async def _ticker_price(self, call: Call) -> Reply:
        symbol = self._symbol(call.params, required=False)
        listed = call.params.symbol_list("symbols")
        if symbol is not None and listed is not None:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if symbol is not None:
            return Reply({"symbol": symbol, "price": self._engine.last_price(symbol)})
        names = listed if listed is not None else list(self._engine.symbols)
        if any(n not in self._engine.symbols for n in names):
            raise ApiError(-1121, "Invalid symbol.")
        return Reply([{"symbol": n, "price": self._engine.last_price(n)} for n in names])

    async def _klines(self, call: Call) -> Reply:
        p = call.params
        symbol = self._symbol(p)
        assert symbol is not None
        rows = self._engine.klines(
            symbol,
            p.required("interval"),
            start_time=p.integer("startTime"),
            end_time=p.integer("endTime"),
            limit=self._limit(p),
            now_ms=call.now_ms,
        )
        return Reply(rows)

    # -- orders --------------------------------------------------------------------------------

    def _order_args(self, params: Params) -> dict[str, Any]:
        symbol = params.required("symbol")
        for name in _NOT_REQUIRED:
            if params.text(name) is not None:
                raise ApiError(-1106, f"Parameter '{name}' sent when not required.")
        args = {
            "symbol": symbol,
            "side": params.required("side"),
            "order_type": params.required("type"),
            "quantity": params.decimal("quantity"),
            "price": params.decimal("price"),
            "time_in_force": params.text("timeInForce"),
            "client_order_id": params.client_order_id("newClientOrderId"),
            "quote_order_qty": params.decimal("quoteOrderQty"),
            "stop_price": params.decimal("stopPrice"),
            "trailing_delta": params.integer("trailingDelta"),
            "resp_type": params.text("newOrderRespType"),
        }
        if symbol not in self._engine.symbols:
            raise ApiError(-1121, "Invalid symbol.")
        return args

    async def _order_place(self, call: Call) -> Reply:
        args = self._order_args(call.params)
        counted = self._weights.count_order(call.account_id, call.now_ms)
        if not counted.allowed:
            raise ApiError(counted.code or -1015, counted.msg, counted.status, counted.headers())
        fault = self._faults.take_order_fault(args["symbol"], "rest", call.account_id)
        kind = fault.kind if fault is not None else None
        if fault is not None and kind in (
            FaultKind.ORDER_5XX_NOT_PLACED,
            FaultKind.ORDER_1007_NOT_PLACED,
        ):
            body = _UNKNOWN_5XX if kind is FaultKind.ORDER_5XX_NOT_PLACED else _TIMEOUT_1007
            return Reply(body, status=fault.http_status)
        held = kind is FaultKind.USER_EVENTS_AFTER_RESPONSE
        if held:
            self._dispatcher.hold()
        try:
            result = self._engine.place_order(call.account_id, **args, now_ms=call.now_ms)
            # Publish at once: by default the user events leave before the HTTP answer.
            self._dispatcher.flush(call.now_ms)
        except BaseException:
            if held:
                self._dispatcher.release()
            raise
        headers = counted.headers()
        if fault is None:
            return Reply(result, headers=headers)
        if kind is FaultKind.ORDER_5XX_PLACED:
            return Reply(_UNKNOWN_5XX, status=fault.http_status)
        if kind is FaultKind.ORDER_1007_PLACED:
            return Reply(_TIMEOUT_1007, status=fault.http_status)
        if kind is FaultKind.ORDER_TIMEOUT:
            return Reply(result, headers=headers, hold_s=fault.delay_ms / 1000, drop=fault.drop)
        delay_s = fault.delay_ms / 1000

        async def release() -> None:
            try:
                if delay_s:
                    await asyncio.sleep(delay_s)
            finally:
                self._dispatcher.release()

        return Reply(result, headers=headers, after=release)

    async def _order_test(self, call: Call) -> Reply:
        args = self._order_args(call.params)
        self._engine.place_order(call.account_id, **args, now_ms=call.now_ms, test=True)
        if not call.params.boolean("computeCommissionRates"):
            return Reply({})
        return Reply(self._engine.commission_rates_for_order(call.account_id))

    async def _order_get(self, call: Call) -> Reply:
        p = call.params
        symbol = self._symbol(p)
        assert symbol is not None
        order = self._engine.get_order(
            call.account_id,
            symbol=symbol,
            order_id=p.integer("orderId"),
            orig_client_order_id=p.text("origClientOrderId"),
        )
        return Reply(order)

    async def _order_cancel(self, call: Call) -> Reply:
        p = call.params
        symbol = self._symbol(p)
        assert symbol is not None
        order_id = p.integer("orderId")
        orig = p.text("origClientOrderId")
        restriction = p.text("cancelRestrictions")
        if restriction is not None:
            if restriction not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
                raise ApiError(-1145, "Invalid cancelRestrictions")
            current = self._engine.get_order(
                call.account_id, symbol=symbol, order_id=order_id, orig_client_order_id=orig
            )
            if current["status"] != restriction.removeprefix("ONLY_"):
                raise ApiError(-2011, "Order was not canceled due to cancel restrictions.")
        result = self._engine.cancel_order(
            call.account_id,
            symbol=symbol,
            order_id=order_id,
            orig_client_order_id=orig,
            new_client_order_id=p.client_order_id("newClientOrderId"),
            now_ms=call.now_ms,
        )
        self._dispatcher.flush(call.now_ms)
        return Reply(result)

    async def _cancel_all(self, call: Call) -> Reply:
        symbol = self._symbol(call.params)
        assert symbol is not None
        orders = self._engine.open_orders(call.account_id, symbol)
        if not orders:
            raise ApiError(-2011, "Unknown order sent.")
        results = [
            self._engine.cancel_order(
                call.account_id,
                symbol=symbol,
                order_id=o["orderId"],
                orig_client_order_id=None,
                new_client_order_id=None,
                now_ms=call.now_ms,
            )
            for o in orders
        ]
        self._dispatcher.flush(call.now_ms)
        return Reply(results)

    # -- account data --------------------------------------------------------------------------

    async def _open_orders(self, call: Call) -> Reply:
        symbol = self._symbol(call.params, required=False)
        return Reply(self._engine.open_orders(call.account_id, symbol))

    @staticmethod
    def _window(params: Params) -> tuple[int | None, int | None]:
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is not None and end is not None:
            if end < start:
                raise ApiError(-1128, "Combination of optional parameters invalid.")
            if end - start > _DAY_MS:
                raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
        return start, end

    @staticmethod
    def _limit(params: Params) -> int:
        limit = params.integer("limit", default=500)
        assert limit is not None
        if limit < 1:
            raise not_valid("limit")
        return min(limit, 1000)

    async def _all_orders(self, call: Call) -> Reply:
        p = call.params
        symbol = self._symbol(p)
        assert symbol is not None
        order_id, limit = p.integer("orderId"), self._limit(p)
        start, end = self._window(p)
        account = call.account_id
        if start is None and end is None:
            return Reply(
                self._engine.all_orders(account, symbol=symbol, order_id=order_id, limit=limit)
            )
        rows = self._engine.all_orders(account, symbol=symbol, order_id=order_id, limit=None)
        rows = [r for r in rows if _in_window(int(r["time"]), start, end)]
        return Reply(rows[:limit] if order_id is not None or start is not None else rows[-limit:])

    async def _my_trades(self, call: Call) -> Reply:
        p = call.params
        symbol = self._symbol(p)
        assert symbol is not None
        order_id, from_id, limit = p.integer("orderId"), p.integer("fromId"), self._limit(p)
        start, end = self._window(p)
        timed = start is not None or end is not None
        if (from_id is not None and timed) or (order_id is not None and timed):
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        account = call.account_id
        if not timed:
            rows = self._engine.my_trades(
                account, symbol=symbol, order_id=order_id, from_id=from_id, limit=limit
            )
            return Reply(rows)
        every = self._engine.my_trades(account, symbol=symbol, limit=None)
        every = [r for r in every if _in_window(int(r["time"]), start, end)]
        return Reply(every[:limit] if start is not None else every[-limit:])

    async def _account(self, call: Call) -> Reply:
        omit_zero = call.params.boolean("omitZeroBalances")
        balances = [
            {"asset": asset, "free": fmt(free), "locked": fmt(locked)}
            for asset, (free, locked) in self._engine.balances(call.account_id).items()
            if not (omit_zero and free == 0 and locked == 0)
        ]
        rates = self._engine.commission(call.account_id)
        zero = "0.00000000"
        return Reply(
            {
                # The integer fields are the rates in basis points (0.001 -> 10), as Binance
                # shows them; finer rates are truncated there and exact in commissionRates.
                "makerCommission": int(rates.maker * 10_000),
                "takerCommission": int(rates.taker * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(rates.maker),
                    "taker": fmt(rates.taker),
                    "buyer": zero,
                    "seller": zero,
                },
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": call.now_ms,
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": call.account_id,
            }
        )


def _in_window(time_ms: int, start: int | None, end: int | None) -> bool:
    return (start is None or time_ms >= start) and (end is None or time_ms <= end)


async def _form_body(request: web.Request) -> str:
    """The raw body as text when it carries form parameters, else ``""``."""
    if not request.body_exists:
        return ""
    raw = await request.read()
    kind = request.content_type
    if kind.startswith("multipart/") or kind == "application/json":
        return ""  # Binance reads parameters from forms only
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ApiError(-1100, "Illegal characters found in a parameter.") from None
