"""SBE market streams of the local Binance, served on their own base URL (protocol §7.6).

Binance serves SBE market data from its own host (``stream-sbe.binance.com``); the local
exchange serves it from its own port (``FakeExchange.sbe_url``), with the same paths (``/ws``,
``/ws/<streams>``, ``/stream?streams=``), the same JSON control messages and limits as the JSON
streams (``streams.MarketHub``, which this hub extends), and market data in **binary** frames:

=========================  ============================  ==================================
stream                     message (template)            cadence
=========================  ============================  ==================================
``<sym>@depth``            DepthDiffStreamEvent (10003)  every 20 ms, U == previous u + 1
``<sym>@depth20``          DepthSnapshotStreamEvent      every 50 ms, the top 20 levels
``<sym>@bestBidAsk``       BestBidAskStreamEvent         when the best bid or ask changes
``<sym>@trade``            TradesStreamEvent (10000)     the fills of each taker order
=========================  ============================  ==================================

Prices and quantities are encoded at exponent -8 (the exchange's 8 decimals), times in µs.
Binary frames carry their symbol, so ``/stream`` sends them without a JSON envelope (the
``combined`` property is kept and answered, and only changes how ``serverShutdown`` is sent).
Control replies and ``serverShutdown`` are JSON text frames, as on Binance.

The handshake needs an Ed25519 API key of an existing account in ``X-MBX-APIKEY`` (no
signature, as Binance). Refusals happen before the upgrade, so a client sees an HTTP status:
no header -> 400 ``No X-MBX-APIKEY header`` (the text Binance answers, as quoted in
nautechsystems/nautilus_trader#4092); a malformed key -> 401 -2014; an unknown key, or an HMAC
key -> 401 -2015 (Binance's exact answer for these is undocumented; these are its REST codes).

Faults: the market faults of the plan (drop, duplicate, delay, corrupt, malform a diff;
disconnect, ``serverShutdown``) apply here as on the JSON streams; a malformed diff is half
its binary message, or the fault's ``payload`` bytes, in a binary frame. A fault with
``channel="sbe"`` is only for these connections, ``"market"`` only for the JSON ones, no channel
for whichever sends the symbol's next diff first. Connections register under the channel ``"sbe"``.

``SbeFirehose`` is the firehose (``firehose.py``) in SBE: the same pre-generated cycles, so the
same REST snapshot fits, as binary frames whose ids and times are patched in place.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamer.testing.exchange.auth import Auth, AuthError
from streamer.testing.exchange.dispatch import MarketSink
from streamer.testing.exchange.engine import Engine, EngineOutput, TradeEvent
from streamer.testing.exchange.faults import FaultPlan
from streamer.testing.exchange.firehose import Firehose, FirehoseSeries, _Template
from streamer.testing.exchange.frames import frame
from streamer.testing.exchange.sbe import (
    encode_best_bid_ask,
    encode_depth_diff,
    encode_depth_snapshot,
    encode_trades,
)
from streamer.testing.exchange.streams import MarketHub, StreamSpec, _Conn

__all__ = [
    "OP_BINARY",
    "MarketFanout",
    "SbeFirehose",
    "SbeHub",
    "ed25519_key_pair",
    "parse_sbe_stream",
]

OP_BINARY: Final = 0x2
DIFF_INTERVAL_MS: Final = 20
DEPTH20_INTERVAL_MS: Final = 50
_NAME = re.compile(r"^(?P<sym>[^@/\s\"\\A-Z]+)@(?P<kind>depth|depth20|bestBidAsk|trade)$")


def parse_sbe_stream(name: str) -> StreamSpec | None:
    """The spec of an SBE stream name, or ``None`` (the four streams of the schema only)."""
    m = _NAME.match(name)
    if m is None:
        return None
    symbol, kind = m["sym"].upper(), m["kind"]
    if kind == "depth":
        return StreamSpec(name, symbol, "depth", DIFF_INTERVAL_MS)
    if kind == "depth20":
        return StreamSpec(name, symbol, "partial", DEPTH20_INTERVAL_MS, 20)
    # bestBidAsk rides on the hub's book-ticker machinery: same trigger, another message.
    return StreamSpec(name, symbol, "bookTicker" if kind == "bestBidAsk" else "trade")


def check_sbe_key(auth: Auth, request: web.Request) -> web.Response | None:
    """The refusal for a handshake without an Ed25519 key of an existing account, or None."""
    api_key = request.headers.get("X-MBX-APIKEY")
    if api_key is None:
        return web.Response(status=400, text="No X-MBX-APIKEY header")
    try:
        key = auth.lookup(api_key)
    except AuthError as exc:
        return web.json_response({"code": exc.code, "msg": exc.msg}, status=401)
    if key.kind != "ED25519":
        msg = "Invalid API-key, IP, or permissions for action."
        return web.json_response({"code": -2015, "msg": msg}, status=401)
    return None


def ed25519_key_pair() -> tuple[str, str]:
    """A fresh Ed25519 key pair (private PKCS#8 PEM, public PEM): SBE needs an Ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


class MarketFanout:
    """One engine drain published to the JSON hub and the SBE hub alike (a ``MarketSink``)."""

    def __init__(self, *hubs: MarketSink) -> None:
        self._hubs = hubs

    def publish(self, out: EngineOutput, now_ms: int) -> None:
        for hub in self._hubs:
            hub.publish(out, now_ms)


class SbeHub(MarketHub):
    """The market hub speaking SBE: binary data frames, its own cadences, an API-key check."""

    channel = "sbe"
    #: Diffs every 20 ms and depth20 every 50 ms (protocol §7.6), so the timer steps 10 ms.
    intervals_ms = (DIFF_INTERVAL_MS, DEPTH20_INTERVAL_MS)

    def __init__(
        self,
        engine: Engine,
        faults: FaultPlan,
        auth: Auth,
        *,
        clock: Callable[[], int] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(engine, faults, clock=clock, **options)
        self._auth = auth

    def parse(self, name: str) -> StreamSpec | None:
        return parse_sbe_stream(name)

    # -- handshake ------------------------------------------------------------------------------

    async def _serve(
        self, request: web.Request, names: list[str], *, combined: bool
    ) -> web.StreamResponse:
        refusal = check_sbe_key(self._auth, request)
        if refusal is not None:
            return refusal
        return await super()._serve(request, names, combined=combined)

    # -- messages -------------------------------------------------------------------------------

    def _emit(
        self,
        name: str,
        raw: bytes,
        micro: Callable[[], bytes] | None,
        only: Iterable[_Conn] | None = None,
    ) -> None:
        """Frame the SBE message ``raw`` once, as binary; queue it for ``name``'s subscribers."""
        subs = self._subs.get(name)
        if not subs:
            return
        targets: Iterable[_Conn] = subs if only is None else [c for c in only if c in subs]
        framed = frame(raw, OP_BINARY)
        for conn in targets:
            self._send(conn, framed)

    def _encode(self, event: dict[str, Any]) -> tuple[bytes, Callable[[], bytes] | None]:
        """A diff as a DepthDiffStreamEvent (times always µs, so no second spelling)."""
        raw = encode_depth_diff(
            event["s"], event["U"], event["u"], event["E"] * 1000, event["b"], event["a"]
        )
        return raw, None

    def _flush_partials(self, interval: int, now_ms: int) -> None:
        now_us = now_ms * 1000
        for name, spec in self._partials.items():
            if spec.interval_ms != interval or not self._subs.get(name):
                continue
            snap = self._engine.snapshot(spec.symbol, spec.levels)
            raw = encode_depth_snapshot(
                spec.symbol, snap.last_update_id, now_us, snap.bids, snap.asks
            )
            self._emit(name, raw, None)

    def _publish_ticker(self, symbol: str, now_ms: int) -> None:
        snap = self._engine.snapshot(symbol, 1)
        if not snap.bids or not snap.asks:
            return
        best = (snap.bids[0][0], snap.bids[0][1], snap.asks[0][0], snap.asks[0][1])
        if self._last_ticker.get(symbol) == best:
            return
        self._last_ticker[symbol] = best
        raw = encode_best_bid_ask(symbol, snap.last_update_id, now_ms * 1000, best[:2], best[2:])
        self._emit(self._tickers[symbol], raw, None)

    def _publish_trades(self, trades: Iterable[TradeEvent], now_ms: int) -> None:
        """One TradesStreamEvent per run of fills of one taker order (one match)."""
        group: list[TradeEvent] = []
        for t in trades:
            if group and (
                t.symbol != group[0].symbol or t.taker_order_id != group[0].taker_order_id
            ):
                self._send_trades(group, now_ms)
                group = []
            group.append(t)
        if group:
            self._send_trades(group, now_ms)

    def _send_trades(self, group: list[TradeEvent], now_ms: int) -> None:
        first = group[0]
        name = self._low(first.symbol) + "@trade"
        if not self._subs.get(name):
            return
        fills = [(t.trade_id, t.price, t.qty, t.buyer_is_maker) for t in group]
        raw = encode_trades(first.symbol, now_ms * 1000, first.time_ms * 1000, fills)
        self._emit(name, raw, None)


# -- firehose -------------------------------------------------------------------------------------

_TIMES_AND_IDS: Final = struct.Struct("<qqq")  # eventTime, firstBookUpdateId, lastBookUpdateId


class _SbeTemplate(_Template):
    """Every binary frame of one stream's cycle in one buffer; ids and times patched in place."""

    def __init__(self, series: FirehoseSeries) -> None:  # no super(): another layout
        self.series = series
        buf = bytearray()
        self.starts = []
        self.e_at = []  # offset of each frame's root block (eventTime, U, u follow there)
        for bids, asks in series.messages:
            framed = frame(encode_depth_diff(series.symbol, 0, 0, 0, bids, asks), OP_BINARY)
            self.starts.append(len(buf))
            self.e_at.append(len(buf) + len(framed) - _message_size(framed) + 8)
            buf += framed
        self.starts.append(len(buf))
        self.buf = buf

    def render(self, k: int, n: int, now_ns: int) -> tuple[bytes, int]:
        """Frames of messages ``k..`` (at most ``n``, not past the cycle end) and their count,
        stamped with the event time ``now_ns`` (ns) in µs, SBE's one time unit."""
        size = len(self.e_at)
        i0 = k % size
        i1 = min(i0 + n, size)
        buf = self.buf
        series = self.series
        step = series.step  # the ids of the JSON template: (U, u) == series.ids(k)
        last = series.per_message - 1
        first = series.first_update_id + k * step
        e_us = now_ns // 1000
        pack = _TIMES_AND_IDS.pack_into
        e_at = self.e_at
        for i in range(i0, i1):
            pack(buf, e_at[i], e_us, first, first + last)
            first += step
        return bytes(buf[self.starts[i0] : self.starts[i1]]), i1 - i0


def _message_size(framed: bytes) -> int:
    """The payload length of one unmasked server frame (RFC 6455 §5.2)."""
    n = framed[1] & 0x7F
    if n == 126:
        return int.from_bytes(framed[2:4], "big")
    if n == 127:
        return int.from_bytes(framed[2:10], "big")
    return n


class SbeFirehose(Firehose):
    """The firehose in SBE: ``<sym>@depth`` of the JSON firehose's very cycles, binary.

    It shares ``firehose``'s series (so ``/api/v3/depth`` answers fit both) and its rate.
    """

    def __init__(self, firehose: Firehose, auth: Auth) -> None:
        super().__init__(symbols=(), rate=firehose.rate)
        self.series = firehose.series
        self._auth = auth

    def _template(self, stream: str, combined: bool, micro: bool = False) -> _Template | None:
        # SBE times are always µs, whatever timeUnit asks: one template per stream.
        spec = parse_sbe_stream(stream)
        series = self.series.get(spec.symbol) if spec is not None else None
        if spec is None or series is None or spec.kind != "depth":
            return None
        key = (stream, False, False)  # binary frames have no envelope, one time unit
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = _SbeTemplate(series)
        return template

    async def _serve(
        self, request: web.Request, names: list[str], *, combined: bool
    ) -> web.StreamResponse:
        refusal = check_sbe_key(self._auth, request)
        if refusal is not None:
            return refusal
        return await super()._serve(request, names, combined=combined)
