"""The user-data stream over the WebSocket API (protocol §3.1, §6): subscribe, keep, rotate.

Binance retired listenKeys for spot (protocol §3.2); account events now come over a WS-API
session. With any key, ``userDataStream.subscribe.signature`` (signed ``apiKey`` and
``timestamp``); with an Ed25519 key, ``session.logon`` then ``userDataStream.subscribe``. Events
arrive as ``{"subscriptionId": n, "event": {...}}``, one per frame, with **no sequence number**:
a gap cannot be seen in the events themselves, so every moment one may have happened is
reported to the owner (``on_gap``), who reconciles over REST (protocol §3.4):

* every resubscription after a dropped connection
  (``"reconnected"``), an ``eventStreamTerminated`` (``"terminated"``), a connection silent
  for ``silence_timeout`` (``"silent"``, pings count as life), and :meth:`UserStream.suspect`,
  which the owner calls when an event it expected did not come (``"missing events"``): in
  every case the stream resubscribes first, then reports the gap. (The first subscription
  is :meth:`UserStream.start`: its owner reconciles once it returns.)
* **Make-before-break rotation** before the 24-hour limit and on ``serverShutdown``: a new
  session subscribes while the old one still delivers, then the old one is closed. While both
  are open, an event delivered by both (byte-identical) is passed on once; no gap is reported,
  because there was none.

Connection changes are reported as the market connections' are (``ConnectionOpened`` with
``symbols=0``, ``ConnectionClosed``, ``ConnectionRotated``), to the Streamer's ``events()``.

The read loop never awaits anything but the socket: events go to ``on_event`` (the tracker),
answers to the request that waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from streamer.aio.timing import wait_until
from streamer.config import Credentials
from streamer.errors import (
    AuthenticationError,
    ConnectError,
    ExchangeError,
    IPBanned,
    RateLimited,
    RequestTimeout,
    StreamerClosed,
)
from streamer.models import ConnectionClosed, ConnectionOpened, ConnectionRotated, StreamerEvent
from streamer.sansio.backoff import Backoff
from streamer.sansio.ratelimit import ConnectionBudget
from streamer.sansio.signing import ParamValue, ed25519_sign, hmac_sign, wsapi_payload

__all__ = ["UserStream", "UserStreamSettings"]

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
#: Events remembered, during a rotation, to pass on once what both sessions deliver.
_RECENT = 4096


@dataclass(frozen=True, slots=True)
class UserStreamSettings:
    url: str  # the WS-API endpoint, e.g. wss://ws-api.binance.com:443/ws-api/v3
    lifetime: float = 23.5 * 3600  # rotate before Binance's 24 h limit (protocol §6)
    silence_timeout: float = 60.0  # the server pings every 20 s
    request_timeout: float = 10.0
    connect_timeout: float = 10.0
    recv_window: int = 5000


class _Session:
    """One WS-API connection: its requests in flight and its subscription."""

    def __init__(self, cid: int, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self.cid = cid
        self.ws = ws
        self.opened_at = time.monotonic()
        self.frames = 0
        self.subscription: int | None = None
        self.closed_reason: str | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}

    def ended(self, reason: str) -> None:
        self.closed_reason = self.closed_reason or reason
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectError(f"WS-API connection ended: {reason}"))
        self.pending.clear()


class UserStream:
    """The account's user-data subscription, kept alive; see the module docstring."""

    def __init__(
        self,
        settings: UserStreamSettings,
        credentials: Credentials,
        session: aiohttp.ClientSession,
        *,
        on_event: Callable[[Mapping[str, Any]], None],
        on_gap: Callable[[str], None],
        emit: Callable[[StreamerEvent], None],
        spawn: Spawn,
        connections: ConnectionBudget,
        timestamp: Callable[[], int],
        rng: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self._http = session
        self._on_event = on_event
        self._on_gap = on_gap
        self._emit = emit
        self._spawn = spawn
        self._connections = connections
        self._timestamp = timestamp
        self._rng = rng
        self._ids = itertools.count(1)
        self.active: _Session | None = None
        self._old: _Session | None = None  # the session being rotated away, still delivering
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._rotate_now = asyncio.Event()
        self._resubscribe: str | None = None  # a reason to resubscribe (terminated, suspect)
        self._closed = False
        self.counters = {
            "events": 0,
            "duplicates": 0,
            "malformed": 0,
            "resubscriptions": 0,
            "reconnects": 0,
            "rotations": 0,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe; raises if the first attempt fails (a bad key, a bad URL), so
        that misconfiguration is an error, never a hang. The owner reconciles after it."""
        self.active = await self._open(first=True)
        self._spawn(self._supervise())

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        for session in (self.active, self._old):
            if session is not None:
                await self._close_session(session, "closed by the owner")

    def suspect(self, reason: str) -> None:
        """An event the owner expected did not arrive: resubscribe, then report a gap."""
        if self._resubscribe is None:
            self._resubscribe = reason
        self._wake.set()

    def is_closed(self) -> bool:
        # a call, not the attribute, in loops: type checkers would take it as constant
        return self._closed

    @property
    def subscribed(self) -> bool:
        session = self.active
        return session is not None and session.subscription is not None

    # -- the read loop: never awaits anything but the socket -------------------------------------

    async def _read(self, session: _Session) -> None:
        ws = session.ws
        reason = "closed"
        try:
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is aiohttp.WSMsgType.TEXT:
                    session.frames += 1
                    self._on_text(session, msg.data)
                elif kind is aiohttp.WSMsgType.PING:
                    session.frames += 1
                    await ws.pong(msg.data)
                elif kind is aiohttp.WSMsgType.BINARY:
                    session.frames += 1
                    self.counters["malformed"] += 1
                    log.warning("binary frame on the WS-API (%d bytes) ignored", len(msg.data))
                elif kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                    reason = f"closed by the server ({ws.close_code})"
                    break
                elif kind is aiohttp.WSMsgType.CLOSED:
                    reason = session.closed_reason or "closed"
                    break
                elif kind is aiohttp.WSMsgType.ERROR:
                    reason = f"transport error: {ws.exception()!r}"
                    break
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"transport error: {exc!r}"
        session.ended(reason)
        log.info("WS-API connection %d ended: %s", session.cid, session.closed_reason)
        self._wake.set()

    def _on_text(self, session: _Session, data: bytes) -> None:
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            frame = None
        if not isinstance(frame, dict):
            self.counters["malformed"] += 1
            log.warning("malformed WS-API frame: %.120r", data)
            return
        if "event" in frame:
            self._on_user_frame(session, frame, data)
            return
        rid = frame.get("id")
        future = session.pending.pop(rid, None) if isinstance(rid, int) else None
        if future is not None and not future.done():
            future.set_result(frame)
        elif rid is None and frame.get("status") == 401:
            # the key was revoked mid-session: the server says so with a null id (protocol §3.1)
            log.warning("WS-API session %d revoked: %s", session.cid, frame.get("error"))
            self.suspect("session revoked")
        else:
            log.debug("unmatched WS-API answer: %.120r", data)

    def _on_user_frame(self, session: _Session, frame: dict[str, Any], data: bytes) -> None:
        event = frame["event"]
        if not isinstance(event, dict):
            self.counters["malformed"] += 1
            log.warning("malformed user event: %.120r", data)
            return
        kind = event.get("e")
        if kind == "serverShutdown":
            if session is self.active:
                self._rotate_now.set()
                self._wake.set()
            return
        sid = frame.get("subscriptionId")
        if sid is not None and sid != session.subscription:
            return  # a subscription of ours that ended (its events are the new one's too)
        if kind == "eventStreamTerminated":
            if session is self.active:
                session.subscription = None
                self.suspect("terminated")
            return
        if self._old is not None:
            # Two sessions deliver during a rotation: pass each event on once.
            key = orjson.dumps(event)
            if key in self._recent:
                self.counters["duplicates"] += 1
                return
            self._recent[key] = None
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        self.counters["events"] += 1
        try:
            self._on_event(event)
        except Exception:  # a bug must not kill the read loop; it is logged with the frame
            log.exception("user event handling failed: %.120r", data)

    # -- requests -------------------------------------------------------------------------------

    async def _request(
        self, session: _Session, method: str, params: Mapping[str, ParamValue] | None = None
    ) -> Any:
        """Send one request and return its ``result``; errors are typed (protocol §6)."""
        rid = next(self._ids)
        body: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            body["params"] = dict(params)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        session.pending[rid] = future
        try:
            await session.ws.send_str(orjson.dumps(body).decode())
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            session.pending.pop(rid, None)
            raise ConnectError(f"{method} not sent: {exc!r}") from exc
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                answer = await future
        except TimeoutError:
            session.pending.pop(rid, None)
            timeout = self.settings.request_timeout
            raise RequestTimeout(f"{method}: no answer in {timeout} s") from None
        return _result(method, answer)

    def _signed(self, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        creds = self._credentials
        params = {"apiKey": creds.api_key, **params, "timestamp": self._timestamp()}
        if self.settings.recv_window != 5000:
            params["recvWindow"] = self.settings.recv_window
        payload = wsapi_payload(params)
        if creds.key_type == "ED25519":
            params["signature"] = ed25519_sign(creds.secret, payload)
        else:
            params["signature"] = hmac_sign(creds.secret, payload)
        return params

    async def _subscribe(self, session: _Session) -> None:
        """Subscribe ``session`` to the account's events: logon + subscribe with Ed25519,
        the signature method with any other key (protocol §3.1)."""
        if self._credentials.key_type == "ED25519":
            # logon again on a resubscription too: a logout (one way a stream ends) drops it
            await self._request(session, "session.logon", self._signed({}))
            result = await self._request(session, "userDataStream.subscribe")
        else:
            result = await self._request(
                session, "userDataStream.subscribe.signature", self._signed({})
            )
        sid = result.get("subscriptionId") if isinstance(result, dict) else None
        if not isinstance(sid, int):
            raise ExchangeError(f"subscribe answered without a subscriptionId: {result!r}")
        session.subscription = sid

    # -- connections ----------------------------------------------------------------------------

    async def _open(self, *, first: bool) -> _Session:
        """A new subscribed session; retries with backoff unless ``first``."""
        backoff = Backoff(self._rng)
        url = self.settings.url
        while True:
            if self._closed:
                raise StreamerClosed("the Streamer was closed")
            await wait_until(lambda: self._connections.delay(time.monotonic()))
            self._connections.attempt(time.monotonic())
            cid = next(self._ids)
            try:
                async with asyncio.timeout(self.settings.connect_timeout):
                    ws = await self._http.ws_connect(
                        url,
                        decode_text=False,
                        autoping=False,  # pings answered in the read loop, and counted as life
                        compress=0,
                        max_msg_size=1 << 20,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                        proxy=None,
                    )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if first:
                    raise ConnectError(f"cannot connect to {url}: {exc}") from exc
                delay = backoff.next_delay()
                log.warning("WS-API connect failed (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            session = _Session(cid, ws)
            self._spawn(self._read(session))
            try:
                await self._subscribe(session)
            except (AuthenticationError, ExchangeError, ConnectError, RequestTimeout) as exc:
                await self._close_session(session, f"subscribe failed: {exc}")
                if first or isinstance(exc, AuthenticationError):
                    raise
                delay = backoff.next_delay()
                if isinstance(exc, RateLimited | IPBanned) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                log.warning("user stream subscribe failed (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            log.info("user stream subscribed on WS-API connection %d", cid)
            self._emit(ConnectionOpened(cid, url, 0, reconnect=not first))
            return session

    async def _close_session(self, session: _Session, reason: str) -> None:
        session.closed_reason = session.closed_reason or reason
        with contextlib.suppress(Exception):
            await session.ws.close()

    async def _supervise(self) -> None:
        """Watchdog, resubscription, rotation and reconnects, until closed."""
        settings = self.settings
        while not self.is_closed():
            session = self.active
            assert session is not None
            due = session.opened_at + settings.lifetime * (0.95 + 0.05 * self._rng())
            frames, quiet_since = session.frames, time.monotonic()
            gap: str | None = None
            while not self.is_closed() and session.closed_reason is None:
                now = time.monotonic()
                if session.frames != frames:
                    frames, quiet_since = session.frames, now
                elif now - quiet_since > settings.silence_timeout:
                    await self._close_session(session, "silent")
                    gap = "silent"
                    break
                if self._resubscribe is not None:
                    gap = await self._resubscribe_on(session)
                    if gap is not None:
                        self._on_gap(gap)
                    continue
                if now >= due or self._rotate_now.is_set():
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(1.0, max(0.0, due - now)))
            if self.is_closed():
                return
            if session.closed_reason is None:
                reason = "serverShutdown" if self._rotate_now.is_set() else "lifetime"
                self._rotate_now.clear()
                await self._rotate(session, reason)
                continue
            self.counters["reconnects"] += 1
            self._emit(ConnectionClosed(session.cid, session.closed_reason or "closed", 0.0))
            self.active = None
            try:
                self.active = await self._open(first=False)
            except StreamerClosed:
                return
            self._on_gap(gap or "reconnected")

    async def _resubscribe_on(self, session: _Session) -> str | None:
        """Subscribe again on the live session (after ``eventStreamTerminated`` or a suspected
        gap); the gap to report, or None when the session broke meanwhile (the reconnect
        reports it)."""
        reason = self._resubscribe or "resubscribed"
        self._resubscribe = None
        self.counters["resubscriptions"] += 1
        try:
            if session.subscription is not None:
                with contextlib.suppress(ExchangeError):
                    await self._request(
                        session,
                        "userDataStream.unsubscribe",
                        {"subscriptionId": session.subscription},
                    )
                session.subscription = None
            await self._subscribe(session)
        except (ExchangeError, ConnectError, RequestTimeout) as exc:
            log.warning("user stream resubscribe failed (%s): reconnecting", exc)
            await self._close_session(session, f"resubscribe failed: {exc}")
            return None
        return reason

    async def _rotate(self, old: _Session, reason: str) -> None:
        try:
            new = await self._open(first=False)
        except StreamerClosed:
            return
        # Both deliver for a moment: an event in flight on the old one is not lost, and what
        # both deliver is passed on once (see _on_user_frame).
        self._old, self.active = old, new
        await asyncio.sleep(1.0)
        self._old = None
        self._recent.clear()
        await self._close_session(old, f"rotated ({reason})")
        self.counters["rotations"] += 1
        self._emit(ConnectionRotated(old.cid, reason, 0, self.counters["duplicates"]))
        log.info("user stream rotated (%s): connection %d -> %d", reason, old.cid, new.cid)


def _result(method: str, answer: Any) -> Any:
    """The ``result`` of a WS-API answer, or its error as an exception (protocol §5.3, §6)."""
    if not isinstance(answer, dict):
        raise ExchangeError(f"{method}: malformed answer {answer!r:.120}")
    status = answer.get("status")
    if status == 200 and "result" in answer:
        return answer["result"]
    error: dict[str, Any] = answer["error"] if isinstance(answer.get("error"), dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    msg = str(error.get("msg", ""))
    text = f"{method}: status {status} code {code}: {msg}"
    status_int = status if isinstance(status, int) else None
    if status == 429 or status == 418:
        data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
        until = data.get("retryAfter")
        server = data.get("serverTime")
        if isinstance(until, int) and isinstance(server, int):
            wait = (until - server) / 1000
        else:
            wait = 60.0  # unreadable: wait a full weight window
        cls = RateLimited if status == 429 else IPBanned
        raise cls(text, code=code, status=status_int, retry_after=max(0.0, wait))
    if status == 401 or code in (-1022, -2014, -2015):
        raise AuthenticationError(text, code=code, status=status_int)
    raise ExchangeError(text, code=code, status=status_int)
