"""Firehose mode: pre-generated spot diff streams pushed as fast as a socket takes them.

For benchmarks of a client's receive path, the live engine is far too slow a source. The firehose
pre-generates, per symbol and with a seeded RNG, a cycle of realistic ``depthUpdate`` messages (20
levels each, changes concentrated near the top of a 1000-level book) followed by restoring
messages that bring the book back to its starting state. The cycle therefore repeats forever with
only its update ids moving on: message ``k`` carries the levels of cycle entry ``k % len`` and
``U = first + 20 k``, ``u = U + 19`` (one update id per changed level), so ``U`` is always the
previous ``u + 1``.

Served by ``FakeExchange(firehose=Firehose([...]))`` (``streamer exchange --firehose``): the
market-stream paths come from here instead of the live market's hub.

``Firehose(..., venue="usdm")`` (or ``"coinm"``) sends the futures shape (protocol §2.2):
``{"e":"depthUpdate","E","T","s","U","u","pu","b","a"}`` on the venue's stream paths
(``/public/...`` too on USD-M), for ``@depth``, ``@depth@100ms`` and ``@depth@500ms``. Its ids
skip one between messages (``U = first + 21 k``, ``u = U + 19``, ``pu`` = the previous ``u``), so
``pu`` continuity holds and ``U == previous u + 1`` never does, as on Binance futures; the
snapshot (``/fapi/v1/depth``) adds ``E`` and ``T``.

The matching snapshot (``depth()``, served by REST ``/api/v3/depth`` for firehose symbols) is the
starting book with the first half of message 0 applied: its ``lastUpdateId`` lies inside
``[U; u]`` of the first message, so a client following protocol §2.1 literally (including the
"refetch if lastUpdateId < first U" rule) syncs on the first try. Every connection replays the
stream from message 0, so the snapshot always fits.

Hot path: each (symbol, stream name, envelope) has one bytearray holding every frame of the cycle,
with update ids and event times spelled in fixed-width 13-digit fields. Sending ``n`` messages
patches ``3 n`` digit fields in place and copies one contiguous slice to the transport: no JSON
encoding, no per-message allocation beyond the slice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractStreamWriter

from streamer.testing.exchange.frames import close_or_abort, frame
from streamer.testing.exchange.venues import VenueRules, venue_rules

__all__ = ["Firehose", "FirehoseSeries", "generate_series"]

#: Update ids and event times are written as exactly this many digits; ids start at 10**12 and
#: would need ~2 million seconds at 200k messages/s to overflow.
_DIGITS: Final = 13
_PLACEHOLDER: Final = b"0" * _DIGITS
_MICRO_DIGITS: Final = 16  # event times in µs, for timeUnit=MICROSECOND connections
_FIRST_ID: Final = 10**12
_CHUNK: Final = 64  # messages per write per stream when running flat out

Level = tuple[str, str]


@dataclass(frozen=True, slots=True)
class FirehoseSeries:
    """One symbol's repeating diff cycle and the snapshot consistent with it."""

    symbol: str
    first_update_id: int  # U of message 0
    per_message: int  # update ids per message (= levels per message)
    messages: tuple[tuple[tuple[Level, ...], tuple[Level, ...]], ...]  # (bids, asks) per entry
    snapshot_id: int
    bids: tuple[Level, ...]  # the snapshot, best first
    asks: tuple[Level, ...]
    stride: int = 0  # U of message k+1 minus U of message k (0: per_message, contiguous ids)

    @property
    def step(self) -> int:
        """How far ``U`` moves from one message to the next."""
        return self.stride or self.per_message

    def ids(self, k: int) -> tuple[int, int]:
        """``(U, u)`` of message ``k`` (0-based, counting across cycles)."""
        first = self.first_update_id + k * self.step
        return first, first + self.per_message - 1

    def prev_id(self, k: int) -> int:
        """``pu`` of message ``k``: the ``u`` of message ``k - 1`` (for k = 0, as if it existed)."""
        return self.ids(k)[0] - self.step + self.per_message - 1

    def levels(self, k: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The ``(bids, asks)`` of message ``k``."""
        return self.messages[k % len(self.messages)]


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def _qty(units: int) -> str:
    return f"{units // 100_000_000}.{units % 100_000_000:08d}"


def generate_series(
    symbol: str,
    *,
    seed: int,
    messages: int = 4096,
    levels: int = 1000,
    per_message: int = 20,
    skip_ids: bool = False,
) -> FirehoseSeries:
    """A seeded diff cycle for ``symbol``: ``messages`` random messages then the restoring ones.

    ``skip_ids``: leave one unused update id between messages (the futures venues)."""
    rng = random.Random(f"{seed}:{symbol}")
    mid = rng.randrange(1_000_000, 9_000_000)  # price in 0.01 ticks: 10,000.00 .. 90,000.00
    start_bids = {mid - 1 - i: rng.randrange(1_000_000, 500_000_000) for i in range(levels)}
    start_asks = {mid + 1 + i: rng.randrange(1_000_000, 500_000_000) for i in range(levels)}
    bids, asks = dict(start_bids), dict(start_asks)
    half = per_message // 2
    cycle: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]] = []

    def changes(book: dict[int, int], side: int, count: int) -> list[tuple[int, int]]:
        out: dict[int, int] = {}
        while len(out) < count:
            depth = min(int(rng.expovariate(1 / 15)), 2 * levels - 1)
            ticks = mid - side * (1 + depth)
            if ticks in out:
                continue
            removed = ticks in book and rng.random() < 0.25
            out[ticks] = 0 if removed else rng.randrange(1_000_000, 500_000_000)
        for ticks, qty in out.items():
            if qty:
                book[ticks] = qty
            else:
                book.pop(ticks, None)
        return list(out.items())

    for _ in range(messages):
        cycle.append((changes(bids, 1, half), changes(asks, -1, per_message - half)))

    # Restore the starting book so the cycle can repeat with only the ids moving on.
    restore: list[tuple[int, int, int]] = []  # (side, ticks, qty)
    for side, book, start in ((1, bids, start_bids), (-1, asks, start_asks)):
        for ticks in sorted(set(book) | set(start)):
            if book.get(ticks) != start.get(ticks):
                restore.append((side, ticks, start.get(ticks, 0)))
    restored = {(s, t) for s, t, _ in restore}
    # Untouched starting levels: setting one to its own quantity is a no-op, used as padding so
    # that every message carries `per_message` levels.
    fillers = [(1, t, q) for t, q in start_bids.items() if (1, t) not in restored]
    fillers += [(-1, t, q) for t, q in start_asks.items() if (-1, t) not in restored]
    for at in range(0, len(restore), per_message):
        chunk = restore[at : at + per_message]
        chunk += fillers[: per_message - len(chunk)]
        cycle.append(
            ([(t, q) for s, t, q in chunk if s == 1], [(t, q) for s, t, q in chunk if s == -1])
        )

    # (+2 on futures keeps the pu of message 0 at 13 digits too)
    first_id = _FIRST_ID + rng.randrange(10**9) + (2 if skip_ids else 0)
    # The snapshot: the starting book with the first `half` changes of message 0 applied.
    snap_bids, snap_asks = dict(start_bids), dict(start_asks)
    applied = 0
    for book, side_changes in ((snap_bids, cycle[0][0]), (snap_asks, cycle[0][1])):
        for ticks, qty in side_changes:
            if applied == half:
                break
            if qty:
                book[ticks] = qty
            else:
                book.pop(ticks, None)
            applied += 1
    return FirehoseSeries(
        symbol=symbol,
        first_update_id=first_id,
        per_message=per_message,
        messages=tuple(
            (
                tuple((_price(t), _qty(q)) for t, q in b),
                tuple((_price(t), _qty(q)) for t, q in a),
            )
            for b, a in cycle
        ),
        snapshot_id=first_id + half - 1,
        bids=tuple((_price(t), _qty(q)) for t, q in sorted(snap_bids.items(), reverse=True)),
        asks=tuple((_price(t), _qty(q)) for t, q in sorted(snap_asks.items())),
        stride=per_message + 1 if skip_ids else 0,
    )


class _Template:
    """Every frame of one stream's cycle in one buffer, with the offsets of its digit fields.

    Spot frames have three fields (``E``, ``U``, ``u``); futures frames five (``E``, ``T``,
    ``U``, ``u``, ``pu``), ``T`` written as ``E``. Times take 13 digits (ms) or, for a
    ``timeUnit=MICROSECOND`` connection, 16 (µs).
    """

    __slots__ = (
        "buf", "e_at", "e_digits", "futures", "pu_at", "series", "starts", "t_at", "u_at", "uu_at",
    )  # fmt: skip

    def __init__(
        self,
        series: FirehoseSeries,
        stream: str,
        combined: bool,
        futures: bool,
        *,
        micro: bool = False,
    ) -> None:
        self.series = series
        self.e_digits = _MICRO_DIGITS if micro else _DIGITS
        time_slot = b"0" * self.e_digits
        self.futures = futures
        buf = bytearray()
        self.starts: list[int] = []
        self.e_at: list[int] = []
        self.t_at: list[int] = []
        self.u_at: list[int] = []
        self.uu_at: list[int] = []
        self.pu_at: list[int] = []
        head = b'{"stream":' + orjson.dumps(stream) + b',"data":' if combined else b""
        symbol = orjson.dumps(series.symbol)
        for bids, asks in series.messages:
            tail = orjson.dumps({"b": bids, "a": asks})[1:]  # '"b":[..],"a":[..]}'
            end = b"," + tail + (b"}" if combined else b"")
            parts = [head + b'{"e":"depthUpdate","E":', time_slot]
            if futures:
                parts += [b',"T":', time_slot]
            parts += [b',"s":' + symbol + b',"U":', _PLACEHOLDER, b',"u":', _PLACEHOLDER]
            if futures:
                parts += [b',"pu":', _PLACEHOLDER]
            parts.append(end)
            payload = b"".join(parts)
            framed = frame(payload)
            header = len(framed) - len(payload)
            start = len(buf)
            self.starts.append(start)
            at = start + header
            offsets = []
            for part in parts:
                if part is _PLACEHOLDER or part is time_slot:
                    offsets.append(at)
                at += len(part)
            if futures:
                e, t, u, uu, pu = offsets
                self.t_at.append(t)
                self.pu_at.append(pu)
            else:
                e, u, uu = offsets
            self.e_at.append(e)
            self.u_at.append(u)
            self.uu_at.append(uu)
            buf += framed
        self.starts.append(len(buf))
        self.buf = buf

    def render(self, k: int, n: int, now_ns: int) -> tuple[bytes, int]:
        """Frames of messages ``k..`` (at most ``n``, not past the cycle end) and their count,
        stamped with the event time ``now_ns`` (wall clock, ns) in this template's unit."""
        e = b"%d" % (now_ns // (1000 if self.e_digits == _MICRO_DIGITS else 1_000_000))
        size = len(self.e_at)
        i0 = k % size
        i1 = min(i0 + n, size)
        buf = self.buf
        series = self.series
        step = series.step
        last = series.per_message - 1
        first = series.first_update_id + k * step
        e_at, u_at, uu_at = self.e_at, self.u_at, self.uu_at
        if self.futures:
            t_at, pu_at = self.t_at, self.pu_at
            for i in range(i0, i1):
                buf[e_at[i] : e_at[i] + len(e)] = e
                buf[t_at[i] : t_at[i] + len(e)] = e
                buf[pu_at[i] : pu_at[i] + _DIGITS] = b"%d" % (first - step + last)
                buf[u_at[i] : u_at[i] + _DIGITS] = b"%d" % first
                buf[uu_at[i] : uu_at[i] + _DIGITS] = b"%d" % (first + last)
                first += step
        else:
            for i in range(i0, i1):
                buf[e_at[i] : e_at[i] + len(e)] = e
                buf[u_at[i] : u_at[i] + _DIGITS] = b"%d" % first
                first += step
                buf[uu_at[i] : uu_at[i] + _DIGITS] = b"%d" % (first - 1)
        return bytes(buf[self.starts[i0] : self.starts[i1]]), i1 - i0


class Firehose:
    """Serves firehose symbols on ``/ws/<sym>@depth@100ms``, ``/stream?streams=`` and SUBSCRIBE.

    ``rate`` is messages per second per stream; ``None`` sends as fast as the socket drains.
    ``venue``: ``"spot"`` or a futures venue (the futures shape, see the module docstring).
    ``FakeExchange(firehose=...)`` mounts ``routes()`` in place of the market hub's, answers
    the venue's REST depth for these symbols with ``depth()`` and closes the firehose with itself.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTCUSDT",),
        *,
        seed: int = 1,
        rate: float | None = None,
        messages: int = 4096,
        venue: str = "spot",
    ) -> None:
        self.rate = rate
        self._idle = 0.005 if rate is None else min(0.005, max(0.0002, 8 / rate))
        self.venue: VenueRules = venue_rules(venue)
        skip = self.venue.futures
        self._kinds = ("depth", "depth@100ms", "depth@500ms") if skip else ("depth", "depth@100ms")
        self.series = {
            s: generate_series(s, seed=seed, messages=messages, skip_ids=skip) for s in symbols
        }
        self._templates: dict[tuple[str, bool, bool], _Template] = {}
        self._closing = False
        self._sockets: dict[web.WebSocketResponse, asyncio.Transport] = {}
        self.messages_sent = 0

    def routes(self) -> list[web.RouteDef]:
        """The venue's market-stream paths, served from the pre-generated cycles."""
        return [
            route
            for prefix in self.venue.stream_prefixes
            for route in (
                web.get(f"{prefix}/ws", self._handle_ws),
                web.get(prefix + "/ws/{streams:.*}", self._handle_ws),
                web.get(f"{prefix}/stream", self._handle_stream),
            )
        ]

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any] | None:
        """The venue's REST depth body for a firehose symbol, or ``None`` for any other."""
        series = self.series.get(symbol)
        if series is None:
            return None
        limit = max(1, min(limit, self.venue.max_depth_limit))
        body: dict[str, Any] = {"lastUpdateId": series.snapshot_id}
        if self.venue.futures:
            now = time.time_ns() // 1_000_000
            body |= {"E": now, "T": now}
        body["bids"] = [list(level) for level in series.bids[:limit]]
        body["asks"] = [list(level) for level in series.asks[:limit]]
        return body

    async def close(self) -> None:
        """Stop every pump and close its connection."""
        self._closing = True
        await asyncio.gather(
            *(
                close_or_abort(ws, transport, code=1001, message=b"", grace=2.0)
                for ws, transport in list(self._sockets.items())
            ),
            return_exceptions=True,
        )

    def _template(self, stream: str, combined: bool, micro: bool = False) -> _Template | None:
        symbol, _, kind = stream.partition("@")
        series = self.series.get(symbol.upper())
        if series is None or symbol != symbol.lower() or kind not in self._kinds:
            return None
        key = (stream, combined, micro)
        template = self._templates.get(key)
        if template is None:
            template = _Template(series, stream, combined, self.venue.futures, micro=micro)
            self._templates[key] = template
        return template

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        names = [s for s in request.match_info.get("streams", "").split("/") if s]
        return await self._serve(request, names, combined=False)

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        names = [s for s in request.query.get("streams", "").split("/") if s]
        return await self._serve(request, names, combined=True)

    async def _serve(
        self, request: web.Request, names: list[str], *, combined: bool
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, timeout=2.0)
        writer = await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        conn = _FirehoseConn(combined)
        conn.micro = request.query.get("timeUnit", "").upper() == "MICROSECOND"
        for name in dict.fromkeys(names):
            self._add(conn, name)
        self._sockets[ws] = transport
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read(ws, transport, conn))
                await self._pump(ws, transport, writer, conn)
                # ends the reader too; 1001 "going away" when the server is closing
                code = 1001 if self._closing else 1000
                await close_or_abort(ws, transport, code=code, message=b"", grace=2.0)
        finally:
            self._sockets.pop(ws, None)
        return ws

    def _add(self, conn: _FirehoseConn, name: str) -> bool:
        """Stream ``name`` on ``conn`` from message 0; False when it is no firehose stream."""
        if name in conn.names:
            return True
        template = self._template(name, conn.combined, conn.micro)
        if template is None:
            return False
        conn.names.add(name)
        conn.streams.append(_Stream(template))
        conn.wake.set()
        return True

    async def _read(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport, conn: _FirehoseConn
    ) -> None:
        """Answer SUBSCRIBE (what real clients send) and notice the close; ignore the rest."""
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                conn.wake.set()
                return
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                request = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(request, dict) or request.get("method") != "SUBSCRIBE":
                continue
            params = request.get("params")
            names = params if isinstance(params, list) else []
            # The answer is written before any frame of the new streams: the pump only runs
            # between reads, and _add makes them visible to it.
            if all(isinstance(n, str) for n in names):
                reply: dict[str, Any] = {"result": None, "id": request.get("id")}
                transport.write(frame(orjson.dumps(reply)))
                for name in names:
                    self._add(conn, name)
            else:
                error = {"code": 2, "msg": "Invalid request: invalid stream"}
                transport.write(frame(orjson.dumps({"error": error, "id": request.get("id")})))

    async def _pump(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        writer: AbstractStreamWriter,
        conn: _FirehoseConn,
    ) -> None:
        loop = asyncio.get_running_loop()
        while not (self._closing or ws.closed or transport.is_closing()):
            if not conn.streams:
                conn.wake.clear()
                await conn.wake.wait()
                continue
            now = loop.time()
            now_ns = time.time_ns()  # each template spells it in its own unit
            wrote = False
            for stream in conn.streams:
                if self.rate is None:
                    want = _CHUNK
                else:
                    due = int(self.rate * (now - stream.started))
                    want = min(due - stream.position, 4 * _CHUNK)
                    if want <= 0:
                        continue
                data, n = stream.template.render(stream.position, want, now_ns)
                stream.position += n
                self.messages_sent += n
                transport.write(data)
                wrote = True
            if wrote:
                await writer.drain()  # returns at once unless the client is behind
                await asyncio.sleep(0)
            else:
                # At a set rate, wake about every 8 messages (at most every 5 ms) so that the
                # stream is steady: one burst per wake-up, each stamped when it is written.
                await asyncio.sleep(self._idle)


class _Stream:
    """One stream on one connection: its template and how far it has got."""

    __slots__ = ("position", "started", "template")

    def __init__(self, template: _Template) -> None:
        self.template = template
        self.position = 0
        self.started = asyncio.get_running_loop().time()


class _FirehoseConn:
    """The streams of one firehose connection; ``wake`` tells the pump a stream was added."""

    def __init__(self, combined: bool) -> None:
        self.combined = combined
        self.micro = False  # timeUnit=MICROSECOND: event times in µs
        self.names: set[str] = set()
        self.streams: list[_Stream] = []
        self.wake = asyncio.Event()
