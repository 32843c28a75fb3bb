"""Market streams of the local Binance: ``/ws``, ``/ws/<streams>`` and ``/stream?streams=``.

What a client can rely on (protocol §1, §2.1, §9.4-§9.6, §9.11-§9.12):

* ``/ws/...`` sends raw payloads, ``/stream?...`` wraps them as ``{"stream":..,"data":..}``; the
  ``combined`` property switches a live connection. ``timeUnit=MICROSECOND`` scales ``E``/``T``.
* Streams: ``<sym>@depth`` (1000 ms) and ``<sym>@depth@100ms`` diffs, ``<sym>@depth<5|10|20>`` and
  ``...@100ms`` partial books, ``<sym>@bookTicker``, ``<sym>@trade``, ``<sym>@aggTrade``. Other
  names Binance knows (klines, tickers) are accepted and stay silent; a name that is not a stream
  is refused on SUBSCRIBE and ignored in a URL.
* A diff batch merges every engine diff of its interval: ``U`` of the first, ``u`` of the last, the
  final quantity per price. Consecutive batches of one stream satisfy ``U == previous u + 1``. A
  stream's batch accumulates only while it has subscribers, so a new subscriber's first diff may
  start anywhere (as on Binance) and is then contiguous.
* SUBSCRIBE is answered only after the stream is live, on the same ordered byte stream as the
  data, so no data of that stream can precede its acknowledgement; subscribing twice delivers once.
* Limits: 5 incoming frames per second (pings and pongs count) else disconnect; 1024 streams per
  connection; a ping every 20 s and a disconnect after 60 s without a pong; ``serverShutdown`` on
  close.

Futures venues (``MarketHub(..., venue=USDM | COINM)``, protocol §2.2, §7.8; ``venues.py``):

* paths: USD-M serves ``/public/ws``, ``/public/ws/<streams>``, ``/public/stream`` and the
  unrouted ``/ws``, ``/stream`` (which get the ``/public`` data); COIN-M ``/ws`` and ``/stream``;
* streams: ``<sym>@depth`` (250 ms), ``@depth@500ms``, ``@depth@100ms`` diffs as
  ``{"e":"depthUpdate","E","T","s","U","u","pu","b","a"}`` with ``pu`` the ``u`` of the
  previous diff of the symbol's event sequence, so ``pu == previous u`` per stream while ``U`` is
  NOT the previous ``u + 1`` (the engine skips ids on futures); partial books
  ``<sym>@depth<5|10|20>[@500ms|@100ms]`` in that same shape; ``<sym>@bookTicker`` with
  ``e``/``E``/``T``. ``/market`` names (``aggTrade``, ``markPrice``, klines, tickers,
  ``forceOrder``) and ``!bookTicker`` are accepted and stay silent: this exchange serves no
  ``/market`` route and no futures trades;
* limits: 10 incoming frames per second, 1024 streams, a ping every 3 min and a disconnect after
  10 min without a pong; control messages need an unsigned-integer ``id``.

Hot path: every event is serialized once per stream (and once more per envelope or time unit
actually in use), framed once (``frames.frame``) and the same ``bytes`` are appended to each
subscriber's pending list; each connection then gets one ``transport.write`` per tick. Nothing here
awaits a client: a connection whose transport buffer passes ``send_buffer_limit`` is a slow
consumer and is aborted, counted and logged, while every other connection carries on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import orjson
from aiohttp import WSMsgType, web

from streamer.testing.exchange.engine import DepthDiff, Engine, EngineOutput, TradeEvent, fmt
from streamer.testing.exchange.faults import (
    CONNECTION_KINDS,
    DEPTH_KINDS,
    Fault,
    FaultKind,
    FaultPlan,
)
from streamer.testing.exchange.frames import OP_PING, OP_PONG, close_or_abort, frame
from streamer.testing.exchange.venues import SPOT, VenueRules

__all__ = ["HubStats", "MarketHub", "StreamSpec", "parse_stream"]

log = logging.getLogger(__name__)

MAX_STREAMS: Final = 1024
#: Control frames are small; a SUBSCRIBE naming 1024 streams is about 30 KiB.
MAX_CONTROL_FRAME: Final = 1 << 20

_METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_STR = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1

# Stream grammar. Symbols are lowercase in stream names (protocol §1.2); since 2025-12 they may be
# non-ASCII, so only the characters that cannot appear are excluded.
_NAME = re.compile(r"^(?P<sym>[^@/\s\"\\A-Z]+)@(?P<rest>.+)$")
_DEPTH = re.compile(r"^depth(?P<levels>5|10|20)?(?:@(?P<speed>100|1000)ms)?$")
_SILENT = re.compile(
    r"^(?:kline_(?:1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(?:@\+08:00)?"
    r"|miniTicker|ticker|ticker_(?:1h|4h|1d)|avgPrice|referencePrice|blockTrade)$"
)
_SILENT_ALL: Final = frozenset(
    {"!miniTicker@arr", "!ticker_1h@arr", "!ticker_4h@arr", "!ticker_1d@arr"}
)
_FUTURES_DEPTH = re.compile(r"^depth(?P<levels>5|10|20)?(?:@(?P<speed>100|500)ms)?$")
_FUTURES_SILENT = re.compile(
    r"^(?:aggTrade|markPrice(?:@1s)?|forceOrder|miniTicker|ticker"
    r"|kline_(?:1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M))$"
)
_FUTURES_SILENT_ALL: Final = frozenset(
    {
        "!bookTicker",
        "!markPrice@arr",
        "!markPrice@arr@1s",
        "!miniTicker@arr",
        "!ticker@arr",
        "!forceOrder@arr",
    }
)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed stream name. ``kind`` is depth, partial, bookTicker, trade, aggTrade or silent."""

    name: str
    symbol: str  # uppercase, as the engine knows it ("" for all-market streams)
    kind: str
    interval_ms: int = 0
    levels: int = 0


def parse_stream(name: str, venue: VenueRules = SPOT) -> StreamSpec | None:
    """The spec of a stream name, or ``None`` when ``venue`` would not know the name."""
    if venue.futures:
        return _parse_futures(name, venue)
    if name in _SILENT_ALL:
        return StreamSpec(name, "", "silent")
    m = _NAME.match(name)
    if m is None:
        return None
    symbol, rest = m["sym"].upper(), m["rest"]
    d = _DEPTH.match(rest)
    if d is not None:
        interval = 100 if d["speed"] == "100" else 1000
        if d["levels"] is None:
            return StreamSpec(name, symbol, "depth", interval)
        return StreamSpec(name, symbol, "partial", interval, int(d["levels"]))
    if rest in ("bookTicker", "trade", "aggTrade"):
        return StreamSpec(name, symbol, rest)
    if _SILENT.match(rest):
        return StreamSpec(name, symbol, "silent")
    return None


def _parse_futures(name: str, venue: VenueRules) -> StreamSpec | None:
    if name in _FUTURES_SILENT_ALL:
        return StreamSpec(name, "", "silent")
    m = _NAME.match(name)
    if m is None:
        return None
    symbol, rest = m["sym"].upper(), m["rest"]
    d = _FUTURES_DEPTH.match(rest)
    if d is not None:
        interval = int(d["speed"]) if d["speed"] else venue.diff_intervals_ms[0]
        if d["levels"] is None:
            return StreamSpec(name, symbol, "depth", interval)
        return StreamSpec(name, symbol, "partial", interval, int(d["levels"]))
    if rest == "bookTicker":
        return StreamSpec(name, symbol, rest)
    if _FUTURES_SILENT.match(rest):
        return StreamSpec(name, symbol, "silent")
    return None


@dataclass
class HubStats:
    """Counters for tests and benchmarks."""

    connections: int = 0
    frames_sent: int = 0
    slow_consumer_disconnects: int = 0
    rate_limit_disconnects: int = 0
    pong_timeouts: int = 0
    faults_applied: dict[str, int] = field(default_factory=dict)


class _Batch:
    """The pending diff of one depth stream: ids and the final quantity per price.

    On futures a batch also carries ``pu`` (the ``prev_update_id`` of its first engine diff,
    which is the ``u`` of the stream's previous batch) and ``T`` (its last change's time).
    """

    __slots__ = (
        "asks",
        "bids",
        "first",
        "futures",
        "interval",
        "last",
        "name",
        "prev",
        "symbol",
        "time",
    )

    def __init__(self, name: str, symbol: str, interval: int, *, futures: bool = False) -> None:
        self.name = name
        self.symbol = symbol
        self.interval = interval
        self.futures = futures
        self.first = 0  # 0 = nothing pending
        self.last = 0
        self.prev = 0
        self.time = 0
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def merge(self, diff: DepthDiff) -> None:
        if not self.first:
            self.first = diff.first_update_id
            self.prev = diff.prev_update_id
        self.last = diff.last_update_id
        self.time = diff.time_ms
        bids, asks = self.bids, self.asks
        for price, qty in diff.bids:
            bids[price] = qty
        for price, qty in diff.asks:
            asks[price] = qty

    def take(self, now_ms: int) -> dict[str, Any]:
        if self.futures:
            event = {
                "e": "depthUpdate",
                "E": now_ms,
                "T": min(self.time, now_ms),
                "s": self.symbol,
                "U": self.first,
                "u": self.last,
                "pu": self.prev,
                "b": list(self.bids.items()),
                "a": list(self.asks.items()),
            }
        else:
            event = {
                "e": "depthUpdate",
                "E": now_ms,
                "s": self.symbol,
                "U": self.first,
                "u": self.last,
                "b": list(self.bids.items()),
                "a": list(self.asks.items()),
            }
        self.first = self.last = 0
        self.bids = {}
        self.asks = {}
        return event


_SPOT_TIMES: Final = ("E",)
_FUTURES_TIMES: Final = ("E", "T")

_Delayed = tuple[int, str, bytes, "Callable[[], bytes] | None", "list[_Conn] | None"]


class _Conn:
    """One market-stream connection: its subscriptions and the frames waiting for this tick."""

    __slots__ = (
        "cid",
        "closed",
        "combined",
        "incoming",
        "last_pong",
        "micro",
        "out",
        "peer",
        "streams",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        *,
        combined: bool,
        micro: bool,
        peer: str,
        now: float,
        cid: int,
    ) -> None:
        self.cid = cid  # the fault plan's id for this connection
        self.ws = ws
        self.transport = transport
        self.combined = combined
        self.micro = micro
        self.peer = peer
        self.streams: dict[str, None] = {}  # ordered set, subscription order
        self.out: list[bytes] = []
        self.closed = False
        self.incoming: deque[float] = deque()
        self.last_pong = now

    @property
    def variant(self) -> int:
        """Index of the payload spelling this connection needs (envelope x time unit)."""
        return int(self.combined) | (int(self.micro) << 1)


class MarketHub:
    """Market-stream connections fed from engine output; mount ``routes()``, run ``run()``."""

    #: The fault-plan channel of this hub's connections; the SBE hub (``sbe_streams.SbeHub``)
    #: serves the same protocol with its own, and its own stream grammar (``parse``).
    channel = "market"

    def parse(self, name: str) -> StreamSpec | None:
        """The stream a name denotes on this hub's venue, or None."""
        return parse_stream(name, self.venue)

    def __init__(
        self,
        engine: Engine,
        faults: FaultPlan,
        *,
        clock: Callable[[], int] | None = None,
        venue: VenueRules = SPOT,
        ping_interval: float | None = None,
        pong_timeout: float | None = None,
        send_buffer_limit: int = 16 << 20,
        close_timeout: float = 2.0,
    ) -> None:
        """``ping_interval`` and ``pong_timeout`` default to the venue's (20 s / 60 s on spot)."""
        self._engine = engine
        self._faults = faults
        self._clock = clock or _wall_ms
        self.venue = venue
        self._futures = venue.futures
        self._max_incoming = venue.max_incoming_per_second
        # Public knobs: the server or a test may tune them before the first connection.
        self.ping_interval = venue.ping_interval_s if ping_interval is None else ping_interval
        self.pong_timeout = venue.pong_timeout_s if pong_timeout is None else pong_timeout
        self.send_buffer_limit = send_buffer_limit
        self._close_timeout = close_timeout
        self.stats = HubStats()
        self._conns: dict[_Conn, None] = {}
        self._subs: dict[str, dict[_Conn, None]] = {}
        self._batches: dict[str, _Batch] = {}
        self._batches_by_symbol: dict[str, list[_Batch]] = {}
        self._partials: dict[str, StreamSpec] = {}
        self._partial_prev: dict[str, int] = {}  # futures partial stream -> its previous u
        self._tickers: dict[str, str] = {}  # symbol -> bookTicker stream name
        self._last_ticker: dict[str, tuple[str, str, str, str]] = {}
        self._lower: dict[str, str] = {}
        self._agg_ids: dict[str, int] = {}
        self._delayed: list[_Delayed] = []
        self._dirty: list[_Conn] = []
        self._closing = False
        self._tasks: asyncio.TaskGroup | None = None
        self._depth_faults = False  # any depth fault pending (refreshed every tick)
        self._targeted: set[int | None] = set()  # connections some depth fault is aimed at

    # ------------------------------------------------------------------ wiring

    def routes(self) -> list[web.RouteDef]:
        """``/ws``, ``/ws/<a>/<b>`` (raw) and ``/stream?streams=a/b`` (combined), under each of
        the venue's stream prefixes (``/public`` and none on USD-M)."""
        return [
            route
            for prefix in self.venue.stream_prefixes
            for route in (
                web.get(f"{prefix}/ws", self._handle_ws),
                web.get(prefix + "/ws/{streams:.*}", self._handle_ws),
                web.get(f"{prefix}/stream", self._handle_stream),
            )
        ]

    @property
    def connection_count(self) -> int:
        """Open market-stream connections."""
        return len(self._conns)

    def subscriptions(self) -> dict[str, int]:
        """Live stream name -> number of subscribed connections."""
        return {name: len(conns) for name, conns in self._subs.items() if conns}

    # ------------------------------------------------------------------ engine output

    def publish(self, out: EngineOutput, now_ms: int) -> None:
        """Take one drain's output: accumulate diffs, send trades and book tickers at once."""
        touched: set[str] = set()
        by_symbol = self._batches_by_symbol
        tickers = self._tickers
        for diff in out.diffs:
            batches = by_symbol.get(diff.symbol)
            if batches is not None:
                for batch in batches:
                    batch.merge(diff)
            if diff.symbol in tickers:
                touched.add(diff.symbol)
        if out.trades and not self._futures:  # futures trades live on /market: not served
            self._publish_trades(out.trades, now_ms)
        for symbol in touched:
            self._publish_ticker(symbol, now_ms)
        self._flush()

    def _publish_trades(self, trades: Iterable[TradeEvent], now_ms: int) -> None:
        group: list[TradeEvent] = []
        for t in trades:
            if group and (
                t.symbol != group[0].symbol
                or t.taker_order_id != group[0].taker_order_id
                or t.price != group[0].price
            ):
                self._publish_agg(group, now_ms)
                group = []
            group.append(t)
            name = self._low(t.symbol) + "@trade"
            if self._subs.get(name):
                event = {
                    "e": "trade",
                    "E": now_ms,
                    "s": t.symbol,
                    "t": t.trade_id,
                    "p": t.price,
                    "q": t.qty,
                    "T": t.time_ms,
                    "m": t.buyer_is_maker,
                    "M": True,
                }
                self._emit(name, orjson.dumps(event), _micro(event, ("E", "T")))
        if group:
            self._publish_agg(group, now_ms)

    def _publish_agg(self, group: list[TradeEvent], now_ms: int) -> None:
        """One aggTrade per run of fills of one taker order at one price (protocol §1.5.5)."""
        first = group[0]
        agg_id = self._agg_ids.get(first.symbol, 0)
        self._agg_ids[first.symbol] = agg_id + 1  # ids advance with or without subscribers
        name = self._low(first.symbol) + "@aggTrade"
        if not self._subs.get(name):
            return
        qty = sum((Decimal(t.qty) for t in group), Decimal(0))
        event = {
            "e": "aggTrade",
            "E": now_ms,
            "s": first.symbol,
            "a": agg_id,
            "p": first.price,
            "q": fmt(qty),
            "f": first.trade_id,
            "l": group[-1].trade_id,
            "T": first.time_ms,
            "m": first.buyer_is_maker,
            "M": True,
        }
        self._emit(name, orjson.dumps(event), _micro(event, ("E", "T")))

    def _publish_ticker(self, symbol: str, now_ms: int) -> None:
        snap = self._engine.snapshot(symbol, 1)
        if not snap.bids or not snap.asks:
            return
        best = (snap.bids[0][0], snap.bids[0][1], snap.asks[0][0], snap.asks[0][1])
        if self._last_ticker.get(symbol) == best:
            return
        self._last_ticker[symbol] = best
        event: dict[str, Any]
        if self._futures:  # protocol §7.8: futures add e, E and T
            event = {"e": "bookTicker", "u": snap.last_update_id, "E": now_ms}
            event["T"] = min(snap.time_ms, now_ms)
        else:
            event = {"u": snap.last_update_id}
        event |= {"s": symbol, "b": best[0], "B": best[1], "a": best[2], "A": best[3]}
        micro = _micro(event, ("E", "T")) if self._futures else None
        self._emit(self._tickers[symbol], orjson.dumps(event), micro)

    # ------------------------------------------------------------------ timers

    @property
    def intervals_ms(self) -> tuple[int, ...]:
        """The stream intervals (ms) the timer serves: the venue's diff speeds (the SBE hub
        overrides them with its own)."""
        return self.venue.diff_intervals_ms

    async def run(self) -> None:
        """Batch timers (spot 100/1000 ms, futures 100/250/500 ms, SBE 20/50 ms), partial books,
        delayed faults and pings; runs forever."""
        loop = asyncio.get_running_loop()
        self._faults.add_listener(self._on_fault)
        intervals = sorted(self.intervals_ms)
        step_ms = math.gcd(*intervals)  # the largest step every interval is a multiple of
        step = step_ms / 1000
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg
                start = loop.time()
                next_ping = start + self.ping_interval
                tick = 0
                while True:
                    tick += 1
                    delay = start + tick * step - loop.time()
                    if delay < -1.0:  # starved for over a second: skip ahead, do not burst
                        start = loop.time() - tick * step
                        delay = 0.0
                    await asyncio.sleep(max(delay, 0.0))
                    self.tick([i for i in intervals if tick * step_ms % i == 0])
                    now = loop.time()
                    if now >= next_ping:
                        next_ping = now + self.ping_interval
                        self._ping_all(now)
        finally:
            self._tasks = None
            self._faults.remove_listener(self._on_fault)

    def tick(self, due: Iterable[int]) -> None:
        """Emit the streams of the intervals (ms) in ``due``; release delayed diffs."""
        now_ms = self._clock()
        pending = self._faults.pending()
        self._depth_faults = any(f.kind in DEPTH_KINDS for f in pending)
        self._targeted = {
            f.connection for f in pending if f.kind in DEPTH_KINDS and f.connection is not None
        }
        if any(f.kind in CONNECTION_KINDS for f in pending):
            self._connection_faults()
        for interval in due:
            self._flush_depth(interval, now_ms)
            self._flush_partials(interval, now_ms)
        self._release_delayed(now_ms)
        self._flush()

    def _flush_depth(self, interval: int, now_ms: int) -> None:
        for batch in self._batches.values():
            if batch.interval == interval and batch.first:
                self._send_diff(batch.name, batch.take(now_ms), now_ms)

    def _encode(self, event: dict[str, Any]) -> tuple[bytes, Callable[[], bytes] | None]:
        """One diff message as this hub sends it: the payload, and its lazy µs spelling (or None).

        The SBE hub (``sbe_streams.SbeHub``) overrides this alone to send the same diffs, faults
        included, in binary.
        """
        return orjson.dumps(event), _micro(event, _FUTURES_TIMES if self._futures else _SPOT_TIMES)

    def _send_diff(self, name: str, event: dict[str, Any], now_ms: int) -> None:
        """Send one diff message, through the fault plan when it has depth faults pending."""
        raw, micro = self._encode(event)
        if not self._depth_faults:
            self._emit(name, raw, micro)
            return
        symbol = event["s"]
        fault = self._faults.take_depth_fault(symbol, channel=self.channel)
        if fault is not None:  # aimed at every subscriber of this stream
            self._diff_fault(fault, name, event, now_ms, None)
            return
        subs = self._subs.get(name)
        if not subs:
            return
        spared = []
        for conn in subs:
            targeted = conn.cid in self._targeted
            fault = (
                self._faults.take_depth_fault(symbol, conn.cid, self.channel) if targeted else None
            )
            if fault is None:
                spared.append(conn)
            else:
                self._diff_fault(fault, name, event, now_ms, conn)
        self._emit(name, raw, micro, spared)

    def _diff_fault(
        self, fault: Fault, name: str, event: dict[str, Any], now_ms: int, conn: _Conn | None
    ) -> None:
        """Realise a depth fault for every subscriber (``conn`` None) or for one connection."""
        kind = str(fault.kind)
        self.stats.faults_applied[kind] = self.stats.faults_applied.get(kind, 0) + 1
        only = None if conn is None else [conn]
        if fault.kind is FaultKind.DROP_DIFF:
            return
        if fault.kind is FaultKind.CORRUPT_LEVEL:
            bids, asks = self._faults.corrupt_levels(event["b"], event["a"])
            event = {**event, "b": bids, "a": asks}
        raw, micro = self._encode(event)
        if fault.kind is FaultKind.MALFORMED_DIFF:
            broken = raw[: len(raw) // 2]  # half a JSON text, or half an SBE message
            if fault.payload is not None:  # {U} {u} {pu}: the real diff's ids
                ids = {"{U}": event["U"], "{u}": event["u"], "{pu}": event.get("pu")}
                text = fault.payload
                for key, value in ids.items():
                    text = text.replace(key, str(value))
                broken = text.encode()
            self._emit(name, broken, None, only)
            return
        if fault.kind is FaultKind.DELAY_DIFF:
            self._delayed.append((now_ms + fault.delay_ms, name, raw, micro, only))
            return
        self._emit(name, raw, micro, only)
        if fault.kind is FaultKind.DUPLICATE_DIFF:
            self._emit(name, raw, micro, only)

    def _release_delayed(self, now_ms: int) -> None:
        if not self._delayed:
            return
        due = [d for d in self._delayed if d[0] <= now_ms]
        self._delayed = [d for d in self._delayed if d[0] > now_ms]
        for _, name, raw, micro, only in due:
            self._emit(name, raw, micro, only)

    def _flush_partials(self, interval: int, now_ms: int) -> None:
        for name, spec in self._partials.items():
            if spec.interval_ms != interval or not self._subs.get(name):
                continue
            snap = self._engine.snapshot(spec.symbol, spec.levels)
            if not self._futures:
                event = {"lastUpdateId": snap.last_update_id, "bids": snap.bids, "asks": snap.asks}
                self._emit(name, orjson.dumps(event), None)
                continue
            # Futures: the depthUpdate shape (protocol §2.2); pu is this stream's previous u.
            last = snap.last_update_id
            prev = self._partial_prev.get(name, last)
            self._partial_prev[name] = last
            event = {
                "e": "depthUpdate",
                "E": now_ms,
                "T": min(snap.time_ms, now_ms),
                "s": spec.symbol,
                "U": prev + 1 if last > prev else last,
                "u": last,
                "pu": prev,
                "b": snap.bids,
                "a": snap.asks,
            }
            self._emit(name, orjson.dumps(event), _micro(event, _FUTURES_TIMES))

    def _ping_all(self, now: float) -> None:
        payload = frame(str(int(now * 1000)).encode(), OP_PING)
        for conn in list(self._conns):
            if now - conn.last_pong > self.pong_timeout:
                self.stats.pong_timeouts += 1
                log.info("market stream %s: no pong for %.0f s, disconnecting", conn.peer, now)
                self._abort(conn)
                continue
            self._send(conn, payload)
        self._flush()

    # ------------------------------------------------------------------ faults on connections

    def _on_fault(self, fault: Fault) -> None:
        """Fault-plan listener: act on connection faults as soon as they are scripted."""
        if fault.kind in CONNECTION_KINDS:
            self._connection_faults()

    def _connection_faults(self) -> None:
        for conn in list(self._conns):
            if conn.closed:
                continue
            fault = self._faults.take_connection_fault(conn.cid, self.channel)
            if fault is None:
                continue
            kind = str(fault.kind)
            self.stats.faults_applied[kind] = self.stats.faults_applied.get(kind, 0) + 1
            if fault.kind is FaultKind.DISCONNECT:
                self._abort(conn)
            else:
                self._server_shutdown([conn])
                self._close_later(conn, fault.delay_ms / 1000)
        self._flush()

    def _close_later(self, conn: _Conn, delay: float) -> None:
        if self._tasks is None:  # not running: nothing can wait, so close at once
            self._abort(conn)
            return

        async def close() -> None:
            await asyncio.sleep(delay)
            conn.closed = True
            await close_or_abort(
                conn.ws,
                conn.transport,
                code=1001,
                message=b"server shutdown",
                grace=self._close_timeout,
            )

        self._tasks.create_task(close())

    def _server_shutdown(self, conns: Iterable[_Conn]) -> None:
        """Send ``serverShutdown`` in each connection's envelope (protocol §1.3)."""
        raw = orjson.dumps({"e": "serverShutdown", "E": self._clock()})
        wrapped = frame(b'{"stream":"!serverShutdown","data":' + raw + b"}")
        plain = frame(raw)
        for conn in conns:
            self._send(conn, wrapped if conn.combined else plain)

    async def close(self) -> None:
        """``serverShutdown`` to every connection, then close them all."""
        self._closing = True
        conns = list(self._conns)
        self._server_shutdown(conns)
        self._flush()
        for conn in conns:
            conn.closed = True
        await asyncio.gather(
            *(
                close_or_abort(
                    c.ws,
                    c.transport,
                    code=1001,
                    message=b"server shutdown",
                    grace=self._close_timeout,
                )
                for c in conns
            ),
            return_exceptions=True,
        )

    # ------------------------------------------------------------------ sending

    def _emit(
        self,
        name: str,
        raw: bytes,
        micro: Callable[[], bytes] | None,
        only: Iterable[_Conn] | None = None,
    ) -> None:
        """Frame ``raw`` once per spelling in use; queue it for the subscribers of ``name``.

        ``only`` narrows the recipients (a fault aimed at some connections); they must still be
        subscribed when the frame goes out.
        """
        subs = self._subs.get(name)
        if not subs:
            return
        targets: Iterable[_Conn] = subs if only is None else [c for c in only if c in subs]
        frames: list[bytes | None] = [None, None, None, None]
        for conn in targets:
            v = conn.variant
            f = frames[v]
            if f is None:
                payload = micro() if (v & 2 and micro is not None) else raw
                if v & 1:
                    payload = b'{"stream":' + orjson.dumps(name) + b',"data":' + payload + b"}"
                f = frames[v] = frame(payload)
            self._send(conn, f)

    def _send(self, conn: _Conn, data: bytes) -> None:
        if conn.closed:
            return
        if not conn.out:
            self._dirty.append(conn)
        conn.out.append(data)

    def _flush(self) -> None:
        """One write per connection with pending frames; abort those that cannot keep up."""
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            out = conn.out
            if conn.closed or not out:
                out.clear()
                continue
            data = out[0] if len(out) == 1 else b"".join(out)
            self.stats.frames_sent += len(out)
            out.clear()
            transport = conn.transport
            if transport.is_closing():
                continue
            transport.write(data)
            if transport.get_write_buffer_size() > self.send_buffer_limit:
                self.stats.slow_consumer_disconnects += 1
                log.warning(
                    "market stream %s: slow consumer (%d bytes unsent), disconnecting",
                    conn.peer,
                    transport.get_write_buffer_size(),
                )
                self._abort(conn)

    def _abort(self, conn: _Conn) -> None:
        conn.closed = True
        conn.out.clear()
        conn.transport.abort()

    # ------------------------------------------------------------------ subscriptions

    def _low(self, symbol: str) -> str:
        low = self._lower.get(symbol)
        if low is None:
            low = self._lower[symbol] = symbol.lower()
        return low

    def _subscribe(self, conn: _Conn, spec: StreamSpec) -> None:
        if spec.name in conn.streams:
            return  # subscribing twice delivers once (protocol §9.4)
        conn.streams[spec.name] = None
        subs = self._subs.get(spec.name)
        if subs is None:
            subs = self._subs[spec.name] = {}
            self._activate(spec)
        subs[conn] = None

    def _unsubscribe(self, conn: _Conn, name: str) -> None:
        if name not in conn.streams:
            return
        del conn.streams[name]
        subs = self._subs.get(name)
        if subs is None:
            return
        subs.pop(conn, None)
        if not subs:
            del self._subs[name]
            self._deactivate(name)

    def _activate(self, spec: StreamSpec) -> None:
        """Start producing a stream that just got its first subscriber."""
        if spec.symbol not in self._engine.symbols:
            return  # Binance accepts unknown symbols and never sends anything for them
        if spec.kind == "depth":
            batch = _Batch(spec.name, spec.symbol, spec.interval_ms, futures=self._futures)
            self._batches[spec.name] = batch
            self._batches_by_symbol.setdefault(spec.symbol, []).append(batch)
        elif spec.kind == "partial":
            self._partials[spec.name] = spec
            if self._futures:
                self._partial_prev[spec.name] = self._engine.last_update_id(spec.symbol)
        elif spec.kind == "bookTicker":
            self._tickers[spec.symbol] = spec.name
            self._last_ticker.pop(spec.symbol, None)

    def _deactivate(self, name: str) -> None:
        batch = self._batches.pop(name, None)
        if batch is not None:
            rest = [b for b in self._batches_by_symbol[batch.symbol] if b is not batch]
            if rest:
                self._batches_by_symbol[batch.symbol] = rest
            else:
                del self._batches_by_symbol[batch.symbol]
        self._partials.pop(name, None)
        self._partial_prev.pop(name, None)
        spec = self.parse(name)
        if spec is not None and spec.kind == "bookTicker":
            self._tickers.pop(spec.symbol, None)
            self._last_ticker.pop(spec.symbol, None)

    # ------------------------------------------------------------------ connections

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("streams", "")
        return await self._serve(request, [s for s in path.split("/") if s], combined=False)

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        names = request.query.get("streams", "")
        return await self._serve(request, [s for s in names.split("/") if s], combined=True)

    async def _serve(
        self, request: web.Request, names: list[str], *, combined: bool
    ) -> web.StreamResponse:
        unit = request.query.get("timeUnit", "MILLISECOND")
        if unit.upper() not in ("MILLISECOND", "MICROSECOND"):
            return _json_error(
                400,
                -1194,
                "Invalid value for time unit; expected either MICROSECOND or MILLISECOND.",
            )
        if self._closing:
            return _json_error(503, -1016, "This service is no longer available.")
        specs = [s for s in map(self.parse, dict.fromkeys(names)) if s is not None]
        if len(specs) > MAX_STREAMS:
            return _json_error(400, -1101, f"Too many streams; at most {MAX_STREAMS}.")
        ws = web.WebSocketResponse(
            autoping=False,
            compress=False,
            max_msg_size=MAX_CONTROL_FRAME,
            timeout=self._close_timeout,
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None  # prepared, so the connection is up
        loop = asyncio.get_running_loop()
        conn = _Conn(
            ws,
            transport,
            combined=combined,
            micro=unit.upper() == "MICROSECOND",
            peer=str(request.remote),
            now=loop.time(),
            cid=self._faults.register_connection(self.channel),
        )
        self._conns[conn] = None
        self.stats.connections += 1
        try:
            for spec in specs:
                self._subscribe(conn, spec)
            await self._read(conn, loop)
        finally:
            conn.closed = True
            for name in list(conn.streams):
                self._unsubscribe(conn, name)
            self._conns.pop(conn, None)
            self._faults.unregister_connection(conn.cid)
        return ws

    async def _read(self, conn: _Conn, loop: asyncio.AbstractEventLoop) -> None:
        ws = conn.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type is WSMsgType.ERROR:
                return
            now = loop.time()
            if not self._count_incoming(conn, now):
                self.stats.rate_limit_disconnects += 1
                log.info(
                    "market stream %s: over %d messages/s, disconnecting",
                    conn.peer,
                    self._max_incoming,
                )
                conn.closed = True
                await ws.close(code=1008, message=b"Too many requests")
                return
            if msg.type is WSMsgType.TEXT:
                self._control(conn, msg.data)
            elif msg.type is WSMsgType.PING:
                self._send(conn, frame(msg.data, OP_PONG))
            elif msg.type is WSMsgType.PONG:
                conn.last_pong = now
            self._flush()

    def _count_incoming(self, conn: _Conn, now: float) -> bool:
        """Whether this frame keeps the connection within the venue's frames per rolling second
        (5 on spot, 10 on futures)."""
        window = conn.incoming
        window.append(now)
        while now - window[0] >= 1.0:
            window.popleft()
        return len(window) <= self._max_incoming

    # ------------------------------------------------------------------ control messages

    def _reply(self, conn: _Conn, body: dict[str, Any]) -> None:
        self._send(conn, frame(orjson.dumps(body)))

    def _control(self, conn: _Conn, text: str) -> None:
        """Answer one SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_/GET_PROPERTY frame."""
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            msg = f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"
            self._reply(conn, {"code": 3, "msg": msg})
            return
        if not isinstance(req, dict):
            self._reply(conn, {"code": 2, "msg": "Invalid request: expected a JSON object"})
            return
        method = req.get("method")
        if "method" not in req:
            column = len(text.rstrip())
            msg = f"Invalid request: missing field `method` at line 1 column {column}"
            self._reply(conn, {"code": 2, "msg": msg})
            return
        if method not in _METHODS:
            column = _column_after(text, "method")
            msg = (
                f"Invalid request: unknown variant {method}, expected one of "
                f"{', '.join(_METHODS)} at line 1 column {column}"
            )
            self._reply(conn, {"code": 2, "msg": msg})
            return
        valid = _valid_futures_id if self._futures else _valid_id
        if "id" not in req or not valid(req["id"]):
            msg = "Invalid request: request ID must be an unsigned integer"
            self._reply(conn, {"code": 2, "msg": msg})
            return
        rid = req["id"]
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            self._reply(
                conn, {"error": {"code": 2, "msg": "Invalid request: invalid params"}, "id": rid}
            )
            return
        if method == "SUBSCRIBE" or method == "UNSUBSCRIBE":
            self._sub_request(conn, rid, method, params)
        elif method == "LIST_SUBSCRIPTIONS":
            if params:
                self._reply(conn, {"code": 2, "msg": "Invalid request: too many parameters"})
                return
            self._reply(conn, {"result": list(conn.streams), "id": rid})
        else:
            self._property(conn, rid, method, params)

    def _sub_request(self, conn: _Conn, rid: object, method: str, params: list[Any]) -> None:
        specs: list[StreamSpec] = []
        for name in params:
            spec = self.parse(name) if isinstance(name, str) else None
            if spec is None:
                err = {"code": 2, "msg": "Invalid request: invalid stream"}
                self._reply(conn, {"error": err, "id": rid})
                return
            specs.append(spec)
        if method == "SUBSCRIBE":
            new = {s.name for s in specs if s.name not in conn.streams}
            if len(conn.streams) + len(new) > MAX_STREAMS:
                msg = f"Invalid request: too many streams, at most {MAX_STREAMS} per connection"
                self._reply(conn, {"error": {"code": 2, "msg": msg}, "id": rid})
                return
            for spec in specs:
                self._subscribe(conn, spec)
        else:
            for spec in specs:
                self._unsubscribe(conn, spec.name)
        self._reply(conn, {"result": None, "id": rid})

    def _property(self, conn: _Conn, rid: object, method: str, params: list[Any]) -> None:
        expected = 2 if method == "SET_PROPERTY" else 1
        if len(params) > expected:
            self._reply(conn, {"code": 2, "msg": "Invalid request: too many parameters"})
            return
        if not params or not isinstance(params[0], str):
            msg = "Invalid request: property name must be a string"
            self._reply(conn, {"code": 2, "msg": msg})
            return
        if params[0] != "combined":
            self._reply(conn, {"code": 0, "msg": "Unknown property", "id": rid})
            return
        if method == "GET_PROPERTY":
            self._reply(conn, {"result": conn.combined, "id": rid})
            return
        value = params[1] if len(params) > 1 else None
        if not isinstance(value, bool):
            self._reply(conn, {"code": 1, "msg": "Invalid value type: expected Boolean"})
            return
        conn.combined = value
        self._reply(conn, {"result": None, "id": rid})


# ---------------------------------------------------------------------- helpers


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _valid_id(rid: object) -> bool:
    """int64, a string of up to 36 of ``[A-Za-z0-9_-]``, or null (protocol §1.4)."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return _INT64[0] <= rid <= _INT64[1]
    return isinstance(rid, str) and _ID_STR.match(rid) is not None


def _valid_futures_id(rid: object) -> bool:
    """Futures control messages still need an unsigned integer ``id`` (protocol §7.8)."""
    return isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= _UINT64_MAX


def _column_after(text: str, key: str) -> int:
    """1-based column just past the value of ``key`` (serde reports errors there)."""
    at = text.find(f'"{key}"')
    if at < 0:
        return 1
    colon = text.find(":", at)
    rest = text[colon + 1 :].lstrip()
    start = len(text) - len(rest)
    if rest.startswith('"'):
        end = text.find('"', start + 1)
        return end + 1 if end >= 0 else len(text)
    stop = start
    while stop < len(text) and text[stop] not in ",}":
        stop += 1
    return stop


def _micro(event: dict[str, Any], keys: tuple[str, ...]) -> Callable[[], bytes]:
    """A lazy microsecond spelling of ``event`` (only built if a connection asked for it)."""

    def build() -> bytes:
        scaled = dict(event)
        for k in keys:
            scaled[k] = event[k] * 1000
        return orjson.dumps(scaled)

    return build


def _json_error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
