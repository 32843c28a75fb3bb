"""Market connections: read loop, paced subscriptions, watchdog, reconnect, rotation.

One :class:`Shard` carries up to 1024 streams (protocol §1.3, §7.8) over one combined-stream
connection at a time, two during a rotation. What it guarantees:

* **The read loop never waits for anything but the socket.** Each text frame is handed, as
  bytes, to the shard's router, which decodes it once and feeds the sync machines; pings are
  answered with their payload (the pong is one of the messages the pacer reserves room for).
* **Paced control messages**: SUBSCRIBE/UNSUBSCRIBE go out under the venue's incoming-message
  limit (``MessagePacer``), up to 200 streams per message, each acknowledged before the next.
* **Connection attempts** of the whole process stay inside 300 per 5 minutes
  (``ConnectionBudget``), with jittered exponential backoff after failures.
* **Watchdog**: a connection that delivers nothing at all (not even the server's pings) for
  ``silence_timeout`` seconds is dropped and replaced.
* **Make-before-break rotation** before the 24-hour limit and on ``serverShutdown``: the new
  connection subscribes while the old one keeps feeding; each symbol is handed over by the rule
  of :mod:`streamer.sansio.handover`; then the old one is closed. No book resets.
* **A dropped connection** marks its books not live and reconnects; the new stream's first diff
  of each symbol proves continuity (the sync rules), so only symbols that really missed updates
  resync, through the snapshot scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from streamer.aio.timing import wait_until
from streamer.errors import ConnectError, ExchangeError, StreamerClosed
from streamer.models import ConnectionClosed, ConnectionOpened, ConnectionRotated, StreamerEvent
from streamer.sansio.backoff import Backoff
from streamer.sansio.handover import Handover
from streamer.sansio.ratelimit import ConnectionBudget, MessagePacer
from streamer.sansio.sbe import SbeDepthDiff, decode_sbe_message
from streamer.sansio.streams import depth_stream, parse_control_reply, subscribe_message
from streamer.sansio.wire import DEFAULT_MAX_FRAME, DepthDiff, Malformed, OtherEvent, decode_frame

__all__ = ["MarketConnection", "Shard", "ShardSettings"]

log = logging.getLogger(__name__)

#: Streams named in one SUBSCRIBE/UNSUBSCRIBE message.
STREAMS_PER_MESSAGE = 200
#: aiohttp refuses (and closes on) frames above this; below it, the core's own limit turns an
#: oversized frame into a counted ``Malformed`` and the connection lives on.
TRANSPORT_MAX_FRAME = 64 << 20

Diff = DepthDiff | SbeDepthDiff  # JSON's, or SBE's with packed integer levels
Message = Diff | OtherEvent | Malformed
Feed = Callable[[Message, bytes, str], None]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass(frozen=True, slots=True)
class ShardSettings:
    ws_base: str  # e.g. wss://stream.binance.com:9443 or ws://127.0.0.1:P/public
    futures: bool
    speed_ms: int | None = 100  # diff stream speed: @depth@100ms
    microseconds: bool = False  # timeUnit=MICROSECOND: event times in µs (protocol §1.2)
    lifetime: float = 23.5 * 3600  # rotate before Binance's 24 h limit
    silence_timeout: float = 60.0  # spot pings every 20 s; futures every 3 min (§1.3, §7.8)
    ack_timeout: float = 10.0
    connect_timeout: float = 10.0
    rotation_grace: float = 1.0  # at least this long with both connections, for quiet symbols
    rotation_timeout: float = 15.0
    max_frame: int = DEFAULT_MAX_FRAME
    # SBE market data (protocol §7.6): binary frames, an Ed25519 API key on the handshake
    sbe_api_key: str | None = field(default=None, repr=False)


class MarketConnection:
    """One WebSocket: its read loop, its paced control messages and their acknowledgements."""

    def __init__(
        self,
        cid: int,
        url: str,
        ws: aiohttp.ClientWebSocketResponse[bool],
        pacer: MessagePacer,
        *,
        ack_timeout: float,
    ) -> None:
        self.cid = cid
        self.url = url
        self.ws = ws
        self.pacer = pacer
        self.ack_timeout = ack_timeout
        self.opened_at = time.monotonic()
        self.frames = 0
        self.pings = 0
        self.closed_reason: str | None = None
        #: Diffs read before the shard made this connection active or rotating (its SUBSCRIBE
        #: acknowledgement and the first data can arrive in one read): fed when it becomes so.
        self.early: list[tuple[Diff, bytes, str]] = []
        self._next_id = 1
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._send_lock = asyncio.Lock()

    async def read(
        self,
        on_text: Callable[[MarketConnection, bytes], None],
        on_binary: Callable[[MarketConnection, bytes], None],
    ) -> str:
        """Read until the connection ends; return why it ended."""
        ws = self.ws
        receive = ws.receive
        text, ping = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING
        binary = aiohttp.WSMsgType.BINARY
        try:
            while True:
                msg = await receive()
                kind = msg.type
                if kind is text:
                    self.frames += 1
                    on_text(self, msg.data)
                elif kind is ping:
                    self.pings += 1
                    self.pacer.sent(time.monotonic())
                    await ws.pong(msg.data)
                elif kind is binary:
                    self.frames += 1
                    on_binary(self, msg.data)
                elif kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                    return self._ended(f"closed by the server ({ws.close_code})")
                elif kind is aiohttp.WSMsgType.CLOSED:
                    return self._ended(self.closed_reason or "closed")
                elif kind is aiohttp.WSMsgType.ERROR:
                    return self._ended(f"transport error: {ws.exception()!r}")
        except (aiohttp.ClientError, OSError) as exc:
            return self._ended(f"transport error: {exc!r}")

    def _ended(self, reason: str) -> str:
        self.closed_reason = self.closed_reason or reason
        for future in self._acks.values():
            if not future.done():
                future.set_exception(ConnectError(f"connection ended: {self.closed_reason}"))
        self._acks.clear()
        return self.closed_reason

    def on_reply(self, payload: dict[str, Any]) -> None:
        reply = parse_control_reply(payload)
        if reply is None or not isinstance(reply.id, int):
            return
        future = self._acks.pop(reply.id, None)
        if future is None or future.done():
            return
        if reply.ok:
            future.set_result(None)
        else:
            future.set_exception(
                ExchangeError(f"stream request refused: {reply.msg}", code=reply.code)
            )

    async def control(self, method: str, streams: list[str]) -> None:
        """SUBSCRIBE/UNSUBSCRIBE ``streams``, paced, each message acknowledged."""
        for start in range(0, len(streams), STREAMS_PER_MESSAGE):
            chunk = streams[start : start + STREAMS_PER_MESSAGE]
            async with self._send_lock:
                await wait_until(lambda: self.pacer.delay(time.monotonic()))
                rid = self._next_id
                self._next_id += 1
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._acks[rid] = future
                self.pacer.sent(time.monotonic())
                try:
                    await self.ws.send_str(subscribe_message(method, chunk, rid).decode())
                except (aiohttp.ClientError, OSError, RuntimeError) as exc:
                    self._acks.pop(rid, None)
                    raise ConnectError(f"{method} not sent: {exc!r}") from exc
            try:
                await asyncio.wait_for(future, self.ack_timeout)
            except TimeoutError:
                self._acks.pop(rid, None)
                raise ConnectError(f"{method} not acknowledged in {self.ack_timeout} s") from None

    async def close(self, reason: str) -> None:
        self.closed_reason = self.closed_reason or reason
        with contextlib.suppress(Exception):
            await self.ws.close()


class Shard:
    """The symbols of one connection slot, and the connection(s) carrying them."""

    def __init__(
        self,
        index: int,
        settings: ShardSettings,
        session: aiohttp.ClientSession,
        *,
        feed: Feed,
        seen: Callable[[str], int | None],
        emit: Callable[[StreamerEvent], None],
        on_down: Callable[[Iterable[str]], None],
        spawn: Spawn,
        connections: ConnectionBudget,
        pacer: Callable[[], MessagePacer],
        rng: Callable[[], float],
        next_cid: Callable[[], int],
    ) -> None:
        self.index = index
        self.settings = settings
        self._max_frame = settings.max_frame
        self.session = session
        self.symbols: set[str] = set()
        self._feed = feed
        self._seen = seen
        self._emit = emit
        self._on_down = on_down
        self._spawn = spawn
        self._connections = connections
        self._pacer = pacer
        self._rng = rng
        self._next_cid = next_cid
        self.active: MarketConnection | None = None
        self._rotating: MarketConnection | None = None
        self._handover: Handover[tuple[Diff, bytes, str]] | None = None
        self._lock = asyncio.Lock()  # one subscription change or rotation at a time
        self._rotate_now = asyncio.Event()
        self._changed = asyncio.Event()  # a connection ended or handed a symbol over
        self._rotation_backoff = Backoff(rng)  # after a replacement that died before its time
        self._closed = False
        self.rotations = 0
        self.reconnects = 0

    # -- routing: called by the read loops, never awaits -----------------------------------------

    def _on_text(self, conn: MarketConnection, data: bytes) -> None:
        msg = decode_frame(data, conn.url, max_size=self._max_frame)
        if type(msg) is DepthDiff and self._handover is None and conn is self.active:
            try:  # the hot path: one connection, a diff
                self._feed(msg, data, conn.url)
            except Exception:  # a bug must not kill the read loop; it is logged with the frame
                log.exception("market frame handling failed on %s: %.120r", conn.url, data)
            return
        self._route(conn, msg, data)

    def _on_binary(self, conn: MarketConnection, data: bytes) -> None:
        if self.settings.sbe_api_key is None:
            self._feed(Malformed(conn.url, "binary frame on a JSON stream", ""), data, conn.url)
            return
        # diffs with their levels packed for the integer book; depth20, bestBidAsk, trades as
        # OtherEvent (well formed, not for the books)
        self._route(
            conn, decode_sbe_message(data, conn.url, max_size=self.settings.max_frame), data
        )

    def _route(self, conn: MarketConnection, msg: Message, data: bytes) -> None:
        url = conn.url
        try:
            if type(msg) is DepthDiff or type(msg) is SbeDepthDiff:
                handover = self._handover
                if handover is None:
                    if conn is self.active:
                        self._feed(msg, data, url)
                elif conn is self.active:
                    if handover.old(msg):
                        self._feed(msg, data, url)
                        for item in handover.poll(msg.symbol, self._seen(msg.symbol)):
                            self._feed(*item)
                            self._changed.set()
                elif conn is self._rotating:
                    self._from_new(handover, (msg, data, url))
                else:
                    conn.early.append((msg, data, url))
                return
            if type(msg) is OtherEvent and msg.payload is not None:
                if msg.kind == "response":
                    conn.on_reply(msg.payload)
                elif msg.kind == "serverShutdown" and conn is self.active:
                    self._rotate_now.set()  # on the replacement: rotated away already
            self._feed(msg, data, url)
        except Exception:  # a bug must not kill the read loop; it is logged with the frame
            log.exception("market frame handling failed on %s: %.120r", url, data)

    def _from_new(
        self,
        handover: Handover[tuple[Diff, bytes, str]],
        item: tuple[Diff, bytes, str],
    ) -> None:
        fed = handover.new(item[0], item, self._seen(item[0].symbol))
        for each in fed:
            self._feed(*each)
        if fed:
            self._changed.set()

    def _activate(self, conn: MarketConnection) -> None:
        """Make ``conn`` the feeding connection, feeding what it read before."""
        self.active = conn
        early, conn.early = conn.early, []
        for item in early:
            self._feed(*item)

    # -- lifecycle ------------------------------------------------------------------------------

    def streams(self, symbols: Iterable[str]) -> list[str]:
        return [depth_stream(s, self.settings.speed_ms) for s in sorted(symbols)]

    async def start(self, symbols: Iterable[str]) -> None:
        """Connect and subscribe; raises (``ConnectError``, ``ExchangeError``) if the very first
        connection fails, so that a bad endpoint is an error, never a hang."""
        self.symbols.update(symbols)
        async with self._lock:
            self._activate(await self._open(first=True))
        self._spawn(self._supervise())

    async def add(self, symbols: list[str]) -> None:
        """SUBSCRIBE ``symbols`` on the live connection (waits out a rotation in progress)."""
        async with self._lock:
            conn = self.active
            if conn is None:
                raise ConnectError(f"market connection {self.index} is down, reconnecting")
            await conn.control("SUBSCRIBE", self.streams(symbols))
            self.symbols.update(symbols)

    async def remove(self, symbols: list[str]) -> None:
        async with self._lock:
            self.symbols.difference_update(symbols)
            conn = self.active
            if conn is not None and conn.closed_reason is None:
                with contextlib.suppress(ConnectError, ExchangeError):
                    await conn.control("UNSUBSCRIBE", self.streams(symbols))
            if not self.symbols:
                await self.close()

    def is_closed(self) -> bool:
        # a call, not the attribute, in loops: type checkers would take it as constant
        return self._closed

    async def close(self) -> None:
        self._closed = True
        self._changed.set()
        self._rotate_now.set()
        for conn in (self.active, self._rotating):
            if conn is not None:
                await conn.close("closed by the owner")

    async def _open(self, *, first: bool) -> MarketConnection:
        """A new subscribed connection; retries with backoff unless ``first``."""
        backoff = Backoff(self._rng)
        settings = self.settings
        url = f"{settings.ws_base}/stream"
        if settings.microseconds:
            url += "?timeUnit=MICROSECOND"
        while True:
            if self._closed:
                raise StreamerClosed("the Streamer was closed")
            await wait_until(lambda: self._connections.delay(time.monotonic()))
            self._connections.attempt(time.monotonic())
            cid = self._next_cid()
            try:
                async with asyncio.timeout(settings.connect_timeout):  # a silent handshake
                    ws = await self._connect(url)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if first:
                    raise ConnectError(f"cannot connect to {url}: {exc}") from exc
                retry_in = backoff.next_delay()
                self._emit(ConnectionClosed(cid, f"connect failed: {exc}", retry_in))
                await asyncio.sleep(retry_in)
                continue
            conn = MarketConnection(cid, url, ws, self._pacer(), ack_timeout=settings.ack_timeout)
            reader = self._spawn(self._read(conn))
            try:
                await conn.control("SUBSCRIBE", self.streams(self.symbols))
            except (ConnectError, ExchangeError) as exc:
                await conn.close(f"subscribe failed: {exc}")
                await reader
                if first:
                    raise
                retry_in = backoff.next_delay()
                self._emit(ConnectionClosed(cid, f"subscribe failed: {exc}", retry_in))
                await asyncio.sleep(retry_in)
                continue
            self._emit(ConnectionOpened(cid, url, len(self.symbols), reconnect=not first))
            return conn

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse[bool]:
        key = self.settings.sbe_api_key
        return await self.session.ws_connect(
            url,
            headers={"X-MBX-APIKEY": key} if key is not None else None,
            decode_text=False,  # frames reach the core as bytes
            autoping=False,  # pings are answered in the read loop, and counted
            autoclose=True,
            compress=0,
            max_msg_size=TRANSPORT_MAX_FRAME,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            proxy=None,
        )

    async def _read(self, conn: MarketConnection) -> None:
        reason = await conn.read(self._on_text, self._on_binary)
        log.info("market connection %d ended: %s", conn.cid, reason)
        self._changed.set()

    async def _supervise(self) -> None:
        """Watchdog, rotation and reconnects, until closed."""
        settings = self.settings
        while not self.is_closed():
            conn = self.active
            assert conn is not None
            due = conn.opened_at + settings.lifetime * (0.95 + 0.05 * self._rng())
            frames = conn.frames + conn.pings
            quiet_since = time.monotonic()
            while not self.is_closed() and conn.closed_reason is None:
                now = time.monotonic()
                if conn.frames + conn.pings != frames:
                    frames, quiet_since = conn.frames + conn.pings, now
                elif now - quiet_since > settings.silence_timeout:
                    await conn.close(f"silent for {settings.silence_timeout:.0f} s")
                    break
                if now >= due or self._rotate_now.is_set():
                    break
                self._changed.clear()
                timeout = min(1.0, max(0.0, due - now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_either(), timeout)
            if self.is_closed():
                return
            if conn.closed_reason is None:
                reason = "serverShutdown" if self._rotate_now.is_set() else "lifetime"
                self._rotate_now.clear()
                await self._rotate(conn, reason)
            else:
                await self._reconnect(conn)

    async def _wait_either(self) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        rotate = asyncio.ensure_future(self._rotate_now.wait())
        try:
            await asyncio.wait({changed, rotate}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            rotate.cancel()

    async def _reconnect(self, dead: MarketConnection) -> None:
        self.reconnects += 1
        self._on_down(list(self.symbols))
        self._emit(ConnectionClosed(dead.cid, dead.closed_reason or "closed", 0.0))
        async with self._lock:
            self.active = None
            try:
                self._activate(await self._open(first=False))
            except StreamerClosed:
                return

    async def _rotate(self, old: MarketConnection, reason: str) -> None:
        settings = self.settings
        async with self._lock:
            try:
                new = await self._open(first=False)
            except StreamerClosed:
                return
            handover: Handover[tuple[Diff, bytes, str]] = Handover(
                self.symbols, futures=settings.futures
            )
            # The new connection's diffs go through the handover from now on, the ones it read
            # before first (its SUBSCRIBE answer and first data may arrive in one read).
            self._rotating, self._handover = new, handover
            early, new.early = new.early, []
            for item in early:
                self._from_new(handover, item)
            started = time.monotonic()
            while True:
                elapsed = time.monotonic() - started
                if old.closed_reason is not None or new.closed_reason is not None:
                    break
                if elapsed >= settings.rotation_timeout:
                    break
                # Quiet symbols (nothing held) are handed over at the end, once the old stream
                # has had the grace period to deliver what it still had in flight.
                if handover.pending == 0 or (
                    elapsed >= settings.rotation_grace and handover.waiting == 0
                ):
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.1)
            if new.closed_reason is not None and old.closed_reason is None:
                # The replacement died first: the old one keeps feeding; try again after a
                # backoff (the old one is past due, so the supervisor would retry at once).
                self._rotating, self._handover = None, None
                await asyncio.sleep(self._rotation_backoff.next_delay())
                return
            self._rotation_backoff.reset()
            handed = len(self.symbols) - handover.pending
            for item in handover.finish():
                self._feed(*item)
            self.active, self._rotating, self._handover = new, None, None
            await old.close(f"rotated ({reason})")
            self.rotations += 1
            self._emit(ConnectionRotated(old.cid, reason, handed, handover.ignored))
