"""The WebSocket API of the local Binance at ``/ws-api/v3`` (protocol §3.1, §3.3, §6, §9.6-§9.10).

Requests are ``{"id", "method", "params"}`` text frames (``method`` may carry a ``v3/`` prefix);
every answer is ``{"id", "status", "result" | "error", "rateLimits"}`` with the id echoed in its
JSON type. Methods: ``session.logon`` (Ed25519 keys only), ``session.status``,
``session.logout``, ``userDataStream.subscribe`` (after logon),
``userDataStream.subscribe.signature`` (any key), ``userDataStream.unsubscribe``,
``session.subscriptions``, ``order.place``, ``order.test`` (with ``computeCommissionRates``),
``order.cancel``, ``order.status``, ``depth``, ``klines``, ``ping``, ``time``.

Signed requests carry ``apiKey``, ``timestamp`` and ``signature`` over the sorted ``k=v`` params
(``auth.Auth.verify_wsapi``); after ``session.logon`` a request may omit ``apiKey`` and
``signature`` but not ``timestamp``, and an explicit key plus signature overrides the session.

User events go to every subscription of their account as ``{"subscriptionId": n, "event": ..}``,
one per frame, the event serialized once. ``userDataStream.unsubscribe`` answers ``{}`` and ends
each subscription with ``eventStreamTerminated``; ``session.logout`` ends the logon subscription
the same way.

Weight: each request is charged to the client IP (``weights.Weights``; connecting costs 2;
successful orders cost 0, failed ones 1), and over the limit the answer is 429 or 418 with
``error.data.retryAfter`` in epoch ms. Faults consumed here: rate limits, order faults on the
``wsapi`` channel, a silent or terminated user stream, duplicated or reordered user events,
disconnect and ``serverShutdown``.

Nothing a client sends can break the server: malformed JSON, unknown methods, missing or bad
params all get an error answer, and an oversized frame (over ``max_frame`` bytes) closes only
that connection with 1009.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web

from streamer.sansio.signing import param_str
from streamer.testing.exchange.auth import ApiKey, Auth
from streamer.testing.exchange.dispatch import Dispatcher
from streamer.testing.exchange.engine import Engine, UserEvent
from streamer.testing.exchange.faults import (
    CONNECTION_KINDS,
    USER_KINDS,
    Fault,
    FaultKind,
    FaultPlan,
)
from streamer.testing.exchange.frames import OP_PING, OP_PONG, close_or_abort, frame
from streamer.testing.exchange.params import ApiError, Params, mandatory
from streamer.testing.exchange.weights import Weights

__all__ = ["WsApi"]

log = logging.getLogger(__name__)

#: A WS-API request is a few hundred bytes; anything this large is refused with close code 1009.
MAX_FRAME: Final = 64 << 10
MAX_ACTIVE_SUBSCRIPTIONS: Final = 1000
MAX_SUBSCRIPTION_IDS: Final = 65535
_ID_STR = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_CONNECT_WEIGHT: Final = 2

# Request weights (protocol §6, §2.1 for depth). Successful orders and cancels are free since
# 2026-04-02; a failed one is charged 1 afterwards.
_WEIGHTS: Final = {
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "userDataStream.subscribe": 2,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "session.subscriptions": 2,
    "order.place": 0,
    "order.test": 1,
    "order.cancel": 0,
    "order.status": 4,
    "klines": 2,
    "ping": 1,
    "time": 1,
}
_ORDER_FAULT_ANSWERS: Final = {
    FaultKind.ORDER_5XX_PLACED: (
        -1001,
        "Internal error; unable to process your request. Please try again.",
    ),
    FaultKind.ORDER_5XX_NOT_PLACED: (
        -1001,
        "Internal error; unable to process your request. Please try again.",
    ),
    FaultKind.ORDER_1007_PLACED: (
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; "
        "execution status unknown.",
    ),
    FaultKind.ORDER_1007_NOT_PLACED: (
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; "
        "execution status unknown.",
    ),
}
_NOT_PLACED: Final = frozenset({FaultKind.ORDER_5XX_NOT_PLACED, FaultKind.ORDER_1007_NOT_PLACED})


def _depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class _Answer(Exception):
    """An error answer raised from inside a method (status, code, msg, optional data)."""

    def __init__(
        self, status: int, code: int, msg: str, data: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data


class _Session:
    """One WS-API connection: its logon, its user-data subscriptions, its transport."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        *,
        cid: int,
        ip: str,
        now_ms: int,
        now: float,
        rate_limits: bool,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.cid = cid
        self.ip = ip
        self.connected_since = now_ms
        self.key: ApiKey | None = None  # set by session.logon
        self.authorized_since: int | None = None
        self.subs: dict[int, tuple[int, bool]] = {}  # subscriptionId -> (account, via logon)
        self.next_sid = 0
        self.return_rate_limits = rate_limits
        self.last_pong = now
        self.closed = False
        self.tasks: asyncio.TaskGroup | None = None  # the connection's own task group
        self.delayed: set[asyncio.Task[None]] = set()
        self.held: dict[int, bytes] = {}  # subscriptionId -> a user event held back (reorder)

    def subscription_of(self, account_id: int) -> int | None:
        for sid, (account, _) in self.subs.items():
            if account == account_id:
                return sid
        return None


class WsApi:
    """The ``/ws-api/v3`` endpoint; the server sets ``dispatcher`` so orders publish at once."""

    def __init__(
        self,
        engine: Engine,
        auth: Auth,
        faults: FaultPlan,
        weights: Weights,
        *,
        clock: Callable[[], int] | None = None,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        max_frame: int = MAX_FRAME,
        send_buffer_limit: int = 16 << 20,
    ) -> None:
        self._engine = engine
        self._auth = auth
        self._faults = faults
        self._weights = weights
        self._clock = clock or _wall_ms
        # Public knobs: the server or a test may tune them before the first connection.
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self._max_frame = max_frame
        self.send_buffer_limit = send_buffer_limit
        #: Drains the engine and publishes its output; set by the server after construction.
        self.dispatcher: Dispatcher | None = None
        self._sessions: dict[_Session, None] = {}
        self._by_account: dict[int, dict[tuple[_Session, int], None]] = {}
        self._closing = False
        self._listening = False

    def routes(self) -> list[web.RouteDef]:
        """``/ws-api/v3``."""
        return [web.get("/ws-api/v3", self._handle)]

    @property
    def session_count(self) -> int:
        """Open WS-API connections."""
        return len(self._sessions)

    # ------------------------------------------------------------------ user events

    def publish(self, events: list[UserEvent]) -> None:
        """Deliver user events to every subscription of their account, in engine order."""
        if not self._by_account:
            return
        check_faults = any(f.kind in USER_KINDS for f in self._faults.pending())
        for ev in events:
            targets = self._by_account.get(ev.account_id)
            if not targets:
                continue
            body = orjson.dumps(ev.event)
            for session, sid in list(targets):
                message = b'{"subscriptionId":%d,"event":%b}' % (sid, body)
                held = session.held.pop(sid, None)  # a reordered event goes after this one
                fault = (
                    self._faults.take_user_fault(ev.account_id, session.cid)
                    if check_faults
                    else None
                )
                kind = fault.kind if fault is not None else None
                if kind is FaultKind.USER_STREAM_SILENT:
                    pass
                elif kind is FaultKind.USER_STREAM_TERMINATED:
                    self._terminate(session, sid)
                elif kind is FaultKind.USER_EVENT_REORDER and held is None:
                    assert fault is not None
                    session.held[sid] = message
                    self._later(session, fault.delay_ms, partial(self._release, session, sid))
                else:
                    self._write(session, message)
                    if kind is FaultKind.USER_EVENT_DUPLICATE:
                        self._write(session, message)
                if held is not None:
                    self._write(session, held)

    async def _release(self, session: _Session, sid: int) -> None:
        """Send a held-back (reordered) event that no later event has released."""
        held = session.held.pop(sid, None)
        if held is not None:
            self._write(session, held)

    def _terminate(self, session: _Session, sid: int) -> None:
        """End one subscription with ``eventStreamTerminated`` (protocol §3.3)."""
        entry = session.subs.pop(sid, None)
        if entry is None:
            return
        account = entry[0]
        targets = self._by_account.get(account)
        if targets is not None:
            targets.pop((session, sid), None)
            if not targets:
                del self._by_account[account]
        event = {"e": "eventStreamTerminated", "E": self._clock()}
        self._write(session, orjson.dumps({"subscriptionId": sid, "event": event}))

    # ------------------------------------------------------------------ connections

    async def close(self) -> None:
        """Send ``serverShutdown`` to every session, then close them all."""
        self._closing = True
        sessions = list(self._sessions)
        for session in sessions:
            self._server_shutdown(session)
            session.closed = True
        await asyncio.gather(
            *(
                close_or_abort(s.ws, s.transport, code=1001, message=b"server shutdown", grace=2.0)
                for s in sessions
            ),
            return_exceptions=True,
        )

    def _server_shutdown(self, session: _Session) -> None:
        self._write(session, orjson.dumps({"event": {"e": "serverShutdown", "E": self._clock()}}))

    def _on_fault(self, fault: Fault) -> None:
        if fault.kind in CONNECTION_KINDS:
            self._connection_faults()

    def _connection_faults(self) -> None:
        for session in list(self._sessions):
            if session.closed:
                continue
            fault = self._faults.take_connection_fault(session.cid, "wsapi")
            if fault is None:
                continue
            if fault.kind is FaultKind.DISCONNECT:
                self._abort(session)
            else:
                self._server_shutdown(session)
                self._later(session, fault.delay_ms, partial(self._close_session, session))

    async def _close_session(self, session: _Session) -> None:
        session.closed = True
        await close_or_abort(
            session.ws, session.transport, code=1001, message=b"server shutdown", grace=2.0
        )

    def _later(
        self, session: _Session, delay_ms: int, action: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``action`` after ``delay_ms`` in the session's task group (cancelled on close)."""

        async def run() -> None:
            await asyncio.sleep(delay_ms / 1000)
            await action()

        if session.tasks is None:
            return
        task = session.tasks.create_task(run())
        session.delayed.add(task)
        task.add_done_callback(session.delayed.discard)

    def _abort(self, session: _Session) -> None:
        session.closed = True
        session.transport.abort()

    def _write(self, session: _Session, payload: bytes) -> None:
        """Send one text frame now; a session that cannot keep up is disconnected."""
        transport = session.transport
        if session.closed or transport.is_closing():
            return
        transport.write(frame(payload))
        if transport.get_write_buffer_size() > self.send_buffer_limit:
            log.warning("ws-api %s: slow consumer, disconnecting", session.ip)
            self._abort(session)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._closing:
            return web.json_response(
                {"code": -1016, "msg": "This service is no longer available."}, status=503
            )
        if not self._listening:
            self._faults.add_listener(self._on_fault)
            self._listening = True
        ip = str(request.remote)
        now_ms = self._clock()
        verdict = self._weights.charge(ip, _CONNECT_WEIGHT, now_ms)
        if not verdict.allowed:
            body = {"code": verdict.code, "msg": verdict.msg}
            return web.json_response(body, status=verdict.status, headers=verdict.headers())
        ws = web.WebSocketResponse(
            autoping=False, compress=False, max_msg_size=self._max_frame, timeout=2.0
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        session = _Session(
            ws,
            transport,
            cid=self._faults.register_connection("wsapi"),
            ip=ip,
            now_ms=now_ms,
            now=loop.time(),
            rate_limits=request.query.get("returnRateLimits", "true").lower() != "false",
        )
        self._sessions[session] = None
        try:
            async with asyncio.TaskGroup() as tg:
                session.tasks = tg
                pinger = tg.create_task(self._ping(session))
                try:
                    await self._read(session, loop)
                finally:
                    session.closed = True
                    pinger.cancel()
                    for task in list(session.delayed):
                        task.cancel()
        finally:
            session.tasks = None
            for sid in list(session.subs):
                account = session.subs.pop(sid)[0]
                targets = self._by_account.get(account)
                if targets is not None:
                    targets.pop((session, sid), None)
                    if not targets:
                        del self._by_account[account]
            self._sessions.pop(session, None)
            self._faults.unregister_connection(session.cid)
        return ws

    async def _ping(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        while not session.closed:
            await asyncio.sleep(self.ping_interval)
            now = loop.time()
            if now - session.last_pong > self.pong_timeout:
                log.info("ws-api %s: no pong, disconnecting", session.ip)
                self._abort(session)
                return
            if not session.transport.is_closing():
                session.transport.write(frame(b"%d" % int(now * 1000), OP_PING))

    async def _read(self, session: _Session, loop: asyncio.AbstractEventLoop) -> None:
        ws = session.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type is WSMsgType.ERROR:
                # e.g. a frame over max_frame: aiohttp has already closed with 1009
                log.info("ws-api %s: %s", session.ip, ws.exception())
                return
            if msg.type is WSMsgType.TEXT:
                self._request(session, msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._error(session, None, 400, -1135, "Invalid JSON Request")
            elif msg.type is WSMsgType.PING:
                if not session.transport.is_closing():
                    session.transport.write(frame(msg.data, OP_PONG))
            elif msg.type is WSMsgType.PONG:
                session.last_pong = loop.time()

    # ------------------------------------------------------------------ requests

    def _respond(
        self,
        session: _Session,
        rid: object,
        status: int,
        *,
        result: object = None,
        error: Mapping[str, Any] | None = None,
        rate_limits: bool,
        account_id: int | None = None,
    ) -> None:
        body: dict[str, Any] = {"id": rid, "status": status}
        if error is None:
            body["result"] = result
        else:
            body["error"] = error
        if rate_limits:
            body["rateLimits"] = self._weights.rate_limits(session.ip, account_id, self._clock())
        self._write(session, orjson.dumps(body))

    def _error(self, session: _Session, rid: object, status: int, code: int, msg: str) -> None:
        error = {"code": code, "msg": msg}
        self._respond(session, rid, status, error=error, rate_limits=False)

    def _request(self, session: _Session, text: str) -> None:
        """Parse, authorize, charge and answer one request; never raises."""
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(session, None, 400, -1135, "Invalid JSON Request")
            return
        if not isinstance(req, dict):
            self._error(session, None, 400, -1135, "Invalid JSON Request")
            return
        rid = req.get("id")
        if not _valid_id(rid):
            msg = (
                "Invalid 'id' in JSON request; expected an integer, a string matching "
                "'^[a-zA-Z0-9-_]{1,36}$', or null."
            )
            self._error(session, None, 400, -1135, msg)
            return
        method = req.get("method")
        if not isinstance(method, str) or not method:
            self._error(session, rid, 400, -1102, _mandatory_msg("method"))
            return
        params = req.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            msg = "Invalid 'params' in JSON request; expected an object."
            self._error(session, rid, 400, -1135, msg)
            return
        name = method.removeprefix("v3/")
        handler = self._METHODS.get(name)
        if handler is None:
            self._error(session, rid, 400, -1020, "This operation is not supported.")
            return
        rate_limits = session.return_rate_limits
        if "returnRateLimits" in params:
            rate_limits = param_str(params["returnRateLimits"]).lower() != "false"
        now_ms = self._clock()
        if name == "depth":
            weight = _depth_weight(_limit(params))
        elif name == "order.test" and _true(params.get("computeCommissionRates")):
            weight = 20
        else:
            weight = _WEIGHTS[name]
        fault = self._faults.take_request_fault("wsapi")
        if fault is not None:
            until = now_ms + fault.retry_after * 1000
            self._answer_error(
                session,
                rid,
                _Answer(
                    fault.http_status,
                    -1003,
                    "Too many requests; current limit is exceeded.",
                    {"serverTime": now_ms, "retryAfter": until},
                ),
                rate_limits,
            )
            return
        verdict = self._weights.charge(session.ip, weight, now_ms)
        if not verdict.allowed:
            data = {"serverTime": now_ms, "retryAfter": verdict.until_ms}
            answer = _Answer(verdict.status, verdict.code or -1003, verdict.msg, data)
            self._answer_error(session, rid, answer, rate_limits)
            return
        try:
            handler(self, session, rid, params, now_ms, rate_limits)
        except ApiError as exc:  # AuthError and EngineError too
            if name in ("order.place", "order.cancel"):
                self._weights.add(session.ip, 1, now_ms)  # failed orders are charged
            self._answer_error(session, rid, _Answer(exc.status, exc.code, exc.msg), rate_limits)
        except _Answer as answer:
            self._answer_error(session, rid, answer, rate_limits)

    def _answer_error(
        self, session: _Session, rid: object, answer: _Answer, rate_limits: bool
    ) -> None:
        error: dict[str, Any] = {"code": answer.code, "msg": answer.msg}
        if answer.data is not None:
            error["data"] = dict(answer.data)
        self._respond(session, rid, answer.status, error=error, rate_limits=rate_limits)

    def _signed(self, session: _Session, params: Mapping[str, Any], now_ms: int) -> ApiKey:
        """The key a signed request acts for: its own signature, else the session's logon."""
        if "signature" in params or "apiKey" in params or session.key is None:
            if "apiKey" not in params:
                raise mandatory("apiKey")
            return self._auth.verify_wsapi(params, now_ms)
        self._auth.check_timing(params.get("timestamp"), params.get("recvWindow"), now_ms)
        return session.key

    # ------------------------------------------------------------------ methods

    def _session_result(self, session: _Session, now_ms: int) -> dict[str, Any]:
        return {
            "apiKey": session.key.api_key if session.key is not None else None,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_since,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now_ms,
            "userDataStream": bool(session.subs),
        }

    def _logon(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        if "apiKey" not in params:
            raise mandatory("apiKey")
        key = self._auth.verify_wsapi(params, now_ms)
        if key.kind != "ED25519":
            raise _Answer(400, -4056, "HMAC_SHA256 API key is not supported.")
        session.key = key
        session.authorized_since = now_ms
        self._respond(
            session, rid, 200, result=self._session_result(session, now_ms), rate_limits=rl
        )

    def _status(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        self._respond(
            session, rid, 200, result=self._session_result(session, now_ms), rate_limits=rl
        )

    def _logout(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        ended = [sid for sid, (_, via_logon) in session.subs.items() if via_logon]
        session.key = None
        session.authorized_since = None
        self._respond(
            session, rid, 200, result=self._session_result(session, now_ms), rate_limits=rl
        )
        for sid in ended:
            self._terminate(session, sid)

    def _subscribe(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        if session.key is None:
            raise _Answer(401, -2015, "Invalid API-key, IP, or permissions for action.")
        self._add_subscription(session, rid, session.key.account_id, via_logon=True, rl=rl)

    def _subscribe_signature(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        if "apiKey" not in params:
            raise mandatory("apiKey")
        key = self._auth.verify_wsapi(params, now_ms)
        self._add_subscription(session, rid, key.account_id, via_logon=False, rl=rl)

    def _add_subscription(
        self, session: _Session, rid: object, account_id: int, *, via_logon: bool, rl: bool
    ) -> None:
        if session.subscription_of(account_id) is not None:
            raise _Answer(400, -2035, "User Data Stream subscription already active.")
        if len(session.subs) >= MAX_ACTIVE_SUBSCRIPTIONS or session.next_sid > MAX_SUBSCRIPTION_IDS:
            raise _Answer(400, -2042, "Maximum subscription ID reached for this connection.")
        sid = session.next_sid
        session.next_sid += 1
        session.subs[sid] = (account_id, via_logon)
        self._by_account.setdefault(account_id, {})[(session, sid)] = None
        self._respond(session, rid, 200, result={"subscriptionId": sid}, rate_limits=rl)

    def _unsubscribe(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        wanted = params.get("subscriptionId")
        if wanted is None:
            ended = list(session.subs)
        else:
            sid = Params({"subscriptionId": param_str(wanted)}).integer("subscriptionId")
            if sid not in session.subs:
                raise _Answer(400, -2036, "User Data Stream subscription not active.")
            assert sid is not None
            ended = [sid]
        self._respond(session, rid, 200, result={}, rate_limits=rl)
        for sid in ended:
            self._terminate(session, sid)

    def _subscriptions(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        result = [{"subscriptionId": sid} for sid in session.subs]
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _ping_method(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        self._respond(session, rid, 200, result={}, rate_limits=rl)

    def _time(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        self._respond(session, rid, 200, result={"serverTime": now_ms}, rate_limits=rl)

    def _depth(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        p = _params(params)
        symbol = p.required("symbol")
        limit = min(p.integer("limit", default=100) or 100, 5000)
        if symbol not in self._engine.symbols:
            raise _Answer(400, -1121, "Invalid symbol.")
        snap = self._faults.snapshot(self._engine, symbol, limit)
        result = {"lastUpdateId": snap.last_update_id, "bids": snap.bids, "asks": snap.asks}
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _klines(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        p = _params(params)
        symbol = p.required("symbol")
        if symbol not in self._engine.symbols:
            raise _Answer(400, -1121, "Invalid symbol.")
        limit = p.integer("limit", default=500)
        assert limit is not None
        if limit < 1:
            raise _Answer(400, -1130, "Data sent for parameter 'limit' is not valid.")
        result = self._engine.klines(
            symbol,
            p.required("interval"),
            start_time=p.integer("startTime"),
            end_time=p.integer("endTime"),
            limit=min(limit, 1000),
            now_ms=now_ms,
        )
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _order_status(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        key = self._signed(session, params, now_ms)
        p = _params(params)
        result = self._engine.get_order(
            key.account_id,
            symbol=p.required("symbol"),
            order_id=p.integer("orderId"),
            orig_client_order_id=p.client_order_id("origClientOrderId"),
        )
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _order_cancel(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        key = self._signed(session, params, now_ms)
        p = _params(params)
        result = self._engine.cancel_order(
            key.account_id,
            symbol=p.required("symbol"),
            order_id=p.integer("orderId"),
            orig_client_order_id=p.client_order_id("origClientOrderId"),
            new_client_order_id=p.client_order_id("newClientOrderId"),
            now_ms=now_ms,
        )
        self._dispatch(now_ms)
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _order_test(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        key = self._signed(session, params, now_ms)
        p = _params(params)
        self._place(key, p, now_ms, test=True)
        result: dict[str, Any] = {}
        if p.boolean("computeCommissionRates"):
            result = self._engine.commission_rates_for_order(key.account_id)
        self._respond(session, rid, 200, result=result, rate_limits=rl)

    def _order_place(
        self, session: _Session, rid: object, params: dict[str, Any], now_ms: int, rl: bool
    ) -> None:
        key = self._signed(session, params, now_ms)
        p = _params(params)
        symbol = p.required("symbol")
        if symbol not in self._engine.symbols:
            raise _Answer(400, -1121, "Invalid symbol.")
        counted = self._weights.count_order(key.account_id, now_ms)
        if not counted.allowed:
            raise _Answer(counted.status, counted.code or -1015, counted.msg)
        fault = self._faults.take_order_fault(symbol, channel="wsapi", account_id=key.account_id)
        if fault is None:
            result = self._place(key, p, now_ms)
            self._dispatch(now_ms)
            self._respond(
                session, rid, 200, result=result, rate_limits=rl, account_id=key.account_id
            )
            return
        if fault.kind in _ORDER_FAULT_ANSWERS:
            if fault.kind not in _NOT_PLACED:
                self._place(key, p, now_ms)
                self._dispatch(now_ms)
            code, msg = _ORDER_FAULT_ANSWERS[fault.kind]
            raise _Answer(fault.http_status, code, msg)
        if fault.kind is FaultKind.ORDER_TIMEOUT:
            result = self._place(key, p, now_ms)
            self._dispatch(now_ms)
            if fault.drop:
                self._later(session, fault.delay_ms, partial(self._drop, session))
            else:
                answer = partial(self._respond_async, session, rid, result, rl, key.account_id)
                self._later(session, fault.delay_ms, answer)
            return
        # USER_EVENTS_AFTER_RESPONSE: hold the order's events until the answer is written.
        dispatcher = self.dispatcher
        if dispatcher is not None:
            dispatcher.hold()
        try:
            result = self._place(key, p, now_ms)
            self._dispatch(now_ms)
        except BaseException:
            if dispatcher is not None:
                dispatcher.release()
            raise
        self._respond(session, rid, 200, result=result, rate_limits=rl, account_id=key.account_id)
        if dispatcher is not None:
            if fault.delay_ms:
                self._later(session, fault.delay_ms, partial(_release, dispatcher))
            else:
                dispatcher.release()

    async def _drop(self, session: _Session) -> None:
        self._abort(session)

    async def _respond_async(
        self, session: _Session, rid: object, result: object, rl: bool, account_id: int
    ) -> None:
        self._respond(session, rid, 200, result=result, rate_limits=rl, account_id=account_id)

    def _place(self, key: ApiKey, p: Params, now_ms: int, *, test: bool = False) -> dict[str, Any]:
        return self._engine.place_order(
            key.account_id,
            symbol=p.required("symbol"),
            side=p.required("side"),
            order_type=p.required("type"),
            quantity=p.decimal("quantity"),
            price=p.decimal("price"),
            time_in_force=p.text("timeInForce"),
            client_order_id=p.text("newClientOrderId"),
            quote_order_qty=p.decimal("quoteOrderQty"),
            stop_price=p.decimal("stopPrice"),
            trailing_delta=p.integer("trailingDelta"),
            resp_type=p.text("newOrderRespType"),
            now_ms=now_ms,
            test=test,
        )

    def _dispatch(self, now_ms: int) -> None:
        """Publish what the engine just did (user events, diffs) without waiting for a tick."""
        if self.dispatcher is not None:
            self.dispatcher.flush(now_ms)

    _METHODS: Final[dict[str, Callable[..., None]]] = {
        "session.logon": _logon,
        "session.status": _status,
        "session.logout": _logout,
        "userDataStream.subscribe": _subscribe,
        "userDataStream.subscribe.signature": _subscribe_signature,
        "userDataStream.unsubscribe": _unsubscribe,
        "session.subscriptions": _subscriptions,
        "order.place": _order_place,
        "order.test": _order_test,
        "order.cancel": _order_cancel,
        "order.status": _order_status,
        "depth": _depth,
        "klines": _klines,
        "ping": _ping_method,
        "time": _time,
    }


# ---------------------------------------------------------------------- helpers


async def _release(dispatcher: Dispatcher) -> None:
    dispatcher.release()


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _mandatory_msg(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def _valid_id(rid: object) -> bool:
    """int64, a string of up to 36 of ``[A-Za-z0-9_-]``, or null (protocol §6, §9.6)."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return _INT64[0] <= rid <= _INT64[1]
    return isinstance(rid, str) and _ID_STR.match(rid) is not None


def _params(params: Mapping[str, Any]) -> Params:
    """JSON params as the REST parameter view: scalars spelled as on the wire, null = absent."""
    out: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, str | int | bool | Decimal):
            out[name] = param_str(value)
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return Params(out)


def _true(value: object) -> bool:
    """A JSON boolean param given as ``true`` or ``"true"`` (any case)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _limit(params: Mapping[str, Any]) -> int:
    value = params.get("limit", 100)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 100
