"""Server-side WebSocket frames built once and written as bytes (RFC 6455 §5.2).

The hub and the firehose send the same event to many connections. Encoding a frame once and
handing the same ``bytes`` to every transport is the cheapest way to do that: aiohttp's
``send_str`` would re-frame (and possibly await) per connection. Server frames are never masked
and we never negotiate compression (Binance does not), so a frame is a 2, 4 or 10 byte header
followed by the payload.

Writing these bytes straight to ``request.transport`` interleaves safely with aiohttp's own
control frames (pong, close): every write here is one whole frame or a run of whole frames, and
asyncio runs one write at a time.

Closing goes through :func:`close_or_abort`: aiohttp's close waits for the transport to drain
and for the peer's close frame, which a client that stopped reading never allows.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final

from aiohttp import web

__all__ = ["OP_PING", "OP_PONG", "OP_TEXT", "close_or_abort", "frame"]

OP_TEXT: Final = 0x1
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One complete, unmasked, final frame carrying ``payload``."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _LEN16.pack(first, 126, n) + payload
    return _LEN64.pack(first, 127, n) + payload


async def close_or_abort(
    ws: web.WebSocketResponse,
    transport: asyncio.Transport,
    *,
    code: int,
    message: bytes,
    grace: float,
) -> None:
    """Close ``ws`` with a close frame, or drop the connection if that takes over ``grace`` s."""
    try:
        async with asyncio.timeout(grace):
            await ws.close(code=code, message=message)
    except TimeoutError:
        transport.abort()
