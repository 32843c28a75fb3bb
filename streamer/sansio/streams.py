"""Market-stream names, combined-stream URLs, control messages, and sharding over connections.

Rules implemented:

* Stream names use lowercase symbols (``btcusdt@depth@100ms``); REST and the engine use
  uppercase (protocol §1.2, §7.1). Without a speed the diff stream runs at its venue's default
  (1000 ms spot, 250 ms futures).
* Always combined streams, ``/stream?streams=a/b/c``; ``/stream`` with no streams opens empty and
  streams are added with SUBSCRIBE (protocol §1.2, §9.4).
* SUBSCRIBE/UNSUBSCRIBE are ``{"method", "params", "id"}``; replies are ``{"result", "id"}`` on
  success, and errors come both flat ``{"code", "msg", "id"}`` (the documented form) and wrapped
  ``{"error": {"code", "msg"}, "id"}`` (what the servers send in practice) (protocol §1.4, §8.3).
  Futures require an unsigned integer ``id`` (§7.8), so ids here are unsigned 63-bit integers.
* At most 1024 streams per connection (protocol §1.3, §7.8). A symbol never moves to another
  connection once placed: moving it would force a resync of its book (:class:`Shards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

__all__ = [
    "MAX_STREAMS_PER_CONNECTION",
    "ControlReply",
    "Shards",
    "combined_url",
    "depth_stream",
    "parse_control_reply",
    "subscribe_message",
    "symbol_of",
]

#: Streams one market connection may carry (spot §1.3; futures §7.8, 200 in older docs).
MAX_STREAMS_PER_CONNECTION: Final = 1024
_METHODS: Final = frozenset({"SUBSCRIBE", "UNSUBSCRIBE"})
_MAX_ID: Final = (1 << 63) - 1
_MAX_MSG: Final = 200  # longest error text kept from a reply (it is shown in logs)
# Characters a symbol cannot hold because they would change the meaning of a stream name or URL.
_NOT_IN_SYMBOL: Final = frozenset("@/?&#%= \t\r\n")


# -- names and URLs ----------------------------------------------------------------------------


def depth_stream(symbol: str, speed_ms: int | None = 100) -> str:
    """The diff-depth stream of ``symbol``: ``btcusdt@depth@100ms``, or ``btcusdt@depth``."""
    if not symbol or any(ch in _NOT_IN_SYMBOL for ch in symbol):
        raise ValueError(f"not a symbol: {symbol!r}")
    if speed_ms is None:
        return f"{symbol.lower()}@depth"
    if isinstance(speed_ms, bool) or not isinstance(speed_ms, int) or speed_ms <= 0:
        raise ValueError(f"speed_ms must be a positive integer or None, got {speed_ms!r}")
    return f"{symbol.lower()}@depth@{speed_ms}ms"


def symbol_of(stream: str) -> str:
    """The uppercase symbol a stream belongs to: ``btcusdt@depth@100ms`` -> ``BTCUSDT``.

    Total, because stream names come off the wire: all-market streams (``!bookTicker``,
    ``!serverShutdown``) and names without ``@`` belong to no symbol and give ``""``.
    """
    symbol, at, _ = stream.partition("@")
    if not at or symbol.startswith("!"):
        return ""
    return symbol.upper()


def combined_url(base: str, streams: Sequence[str]) -> str:
    """``{base}/stream?streams=a/b/c``; with no streams ``{base}/stream``, which opens empty.

    Stream names are percent-encoded where they are not plain ASCII (symbols may be Unicode
    since 2025-12; Binance accepts encoded URLs, protocol §1.2); ordinary names are unchanged.
    Mind the length: a server refuses very long request lines (aiohttp's limit is 8190 bytes,
    about 400 ``...@depth@100ms`` names), so open a large shard with a few streams and
    SUBSCRIBE the rest.
    """
    root = f"{base.rstrip('/')}/stream"
    if not streams:
        return root
    return f"{root}?streams=" + "/".join(quote(s, safe="@!") for s in streams)


# -- control messages --------------------------------------------------------------------------


def subscribe_message(method: str, streams: Sequence[str], request_id: int) -> bytes:
    """A SUBSCRIBE or UNSUBSCRIBE text frame: ``{"method":..,"params":[..],"id":N}``."""
    if method not in _METHODS:
        raise ValueError(f"method must be SUBSCRIBE or UNSUBSCRIBE, got {method!r}")
    if not streams:
        raise ValueError(f"{method} needs at least one stream")
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise ValueError(f"request_id must be an int, got {request_id!r}")
    if not 0 <= request_id <= _MAX_ID:
        raise ValueError(f"request_id must be an unsigned 63-bit int, got {request_id!r}")
    return orjson.dumps({"method": method, "params": list(streams), "id": request_id})


@dataclass(frozen=True, slots=True)
class ControlReply:
    """The server's answer to a control message (SUBSCRIBE, LIST_SUBSCRIPTIONS, ...).

    ``id`` is echoed with its JSON type, and is None when the server could not read one (some
    documented errors carry no id). ``result`` is the success payload (None for SUBSCRIBE,
    the stream list for LIST_SUBSCRIPTIONS).
    """

    id: object
    ok: bool
    code: int | None
    msg: str
    result: object = None


def _code(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _msg(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else repr(value)
    return text[:_MAX_MSG]


def parse_control_reply(payload: dict[str, Any]) -> ControlReply | None:
    """The control reply in a decoded text frame, or None when the frame is not one (data).

    Accepts ``{"result":..,"id":N}``, the wrapped ``{"error":{"code","msg"},"id":N}`` and the
    flat ``{"code","msg","id"}`` error forms. Never raises: odd field types become ``code=None``
    or a ``repr`` in ``msg``.
    """
    if not isinstance(payload, dict) or "stream" in payload:
        return None  # not a JSON object, or a combined-stream data envelope
    rid = payload.get("id")
    if "error" in payload:
        error = payload["error"]
        if isinstance(error, dict):
            return ControlReply(rid, False, _code(error.get("code")), _msg(error.get("msg")))
        return ControlReply(rid, False, None, _msg(error))
    if "result" in payload:
        return ControlReply(rid, True, None, "", payload["result"])
    if "code" in payload and "msg" in payload:
        return ControlReply(rid, False, _code(payload["code"]), _msg(payload["msg"]))
    return None


# -- sharding ----------------------------------------------------------------------------------


class Shards:
    """Symbols spread over connections, at most ``max_streams`` streams each (protocol §1.3).

    New symbols fill the lowest-numbered shard with room; removing one never moves the others
    (moving a symbol would force a resync of its book). A shard is an index the caller maps to
    one connection. Symbols are compared exactly, so use one spelling (REST's uppercase).
    ``streams_per_symbol`` is how many streams each symbol takes on its connection.
    """

    def __init__(
        self, max_streams: int = MAX_STREAMS_PER_CONNECTION, *, streams_per_symbol: int = 1
    ) -> None:
        if streams_per_symbol < 1:
            raise ValueError(f"streams_per_symbol must be >= 1, got {streams_per_symbol!r}")
        if max_streams < streams_per_symbol:
            raise ValueError(f"max_streams {max_streams} holds no symbol")
        self.max_streams = max_streams
        #: Symbols one shard holds.
        self.capacity = max_streams // streams_per_symbol
        self._members: list[dict[str, None]] = []  # per shard, an insertion-ordered set
        self._shard: dict[str, int] = {}

    def add(self, symbol: str) -> tuple[int, bool]:
        """Place ``symbol``: (its shard, True if that shard was empty until now).

        Adding a symbol already placed changes nothing and returns its shard with False.
        """
        known = self._shard.get(symbol)
        if known is not None:
            return known, False
        index = next(
            (i for i, members in enumerate(self._members) if len(members) < self.capacity),
            len(self._members),
        )
        if index == len(self._members):
            self._members.append({})
        members = self._members[index]
        fresh = not members
        members[symbol] = None
        self._shard[symbol] = index
        return index, fresh

    def remove(self, symbol: str) -> int | None:
        """Take ``symbol`` off its shard; the shard it was on, or None if it had none."""
        index = self._shard.pop(symbol, None)
        if index is not None:
            del self._members[index][symbol]
        return index

    def shard_of(self, symbol: str) -> int | None:
        """The shard ``symbol`` is on, or None."""
        return self._shard.get(symbol)

    def symbols(self, shard: int) -> list[str]:
        """The symbols on ``shard``, in the order they were added ([] for an unknown shard)."""
        if 0 <= shard < len(self._members):
            return list(self._members[shard])
        return []

    def shards(self) -> list[int]:
        """The indexes of the shards holding at least one symbol, ascending."""
        return [index for index, members in enumerate(self._members) if members]

    def __len__(self) -> int:
        return len(self._shard)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._shard

    def __repr__(self) -> str:
        sizes = {index: len(members) for index, members in enumerate(self._members) if members}
        return f"Shards(capacity={self.capacity}, sizes={sizes})"
