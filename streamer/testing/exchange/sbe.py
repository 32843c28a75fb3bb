"""SBE encoding of the local exchange's market data (schema ``stream_1_0.xml``, protocol §7.6).

The inverse of :mod:`streamer.sansio.sbe`: the four stream messages, little-endian, decimals as
int64 mantissas at a per-message exponent. The exchange spells every price and quantity with 8
decimals (protocol §9.2), so it encodes both at exponent -8 and the decoded strings are the very
spellings its REST snapshots use.

``mantissa(text, exponent)`` converts an exact decimal string; a value that needs more decimals
than ``-exponent`` allows is a ``ValueError`` (never a rounding). The keyword arguments
``root_extra``/``entry_extra`` (bytes appended to the root block / each group entry, with the
blockLengths grown to match) and ``schema_id``/``version`` exist to build the frames of a newer
or foreign schema in tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final

from streamer.sansio.sbe import (
    BEST_BID_ASK,
    DEPTH_DIFF,
    DEPTH_SNAPSHOT,
    SCHEMA_ID,
    SCHEMA_VERSION,
    TRADES,
)

__all__ = [
    "EXPONENT",
    "encode_best_bid_ask",
    "encode_depth_diff",
    "encode_depth_diff_ints",
    "encode_depth_snapshot",
    "encode_trades",
    "mantissa",
]

#: The exponent of every price and quantity the exchange sends: 8 decimals, like its JSON.
EXPONENT: Final = -8

_HEADER: Final = struct.Struct("<HHHH")
_DIFF_ROOT: Final = struct.Struct("<qqqbb")
_SNAP_ROOT: Final = struct.Struct("<qqbb")
_TRADES_ROOT: Final = struct.Struct("<qqbb")
_BBA_ROOT: Final = struct.Struct("<qqbbqqqq")
_GROUP16: Final = struct.Struct("<HH")
_GROUP32: Final = struct.Struct("<HI")
_LEVEL: Final = struct.Struct("<qq")
_TRADE: Final = struct.Struct("<qqqB")

Level = Sequence[str]  # (price, qty) as exact decimal strings
IntLevel = tuple[int, int]  # (price mantissa, qty mantissa)


def mantissa(text: str, exponent: int = EXPONENT) -> int:
    """The int64 mantissa of the plain decimal ``text`` at ``exponent`` (exact, or ValueError)."""
    whole, _, frac = text.partition(".")
    if not (whole or frac) or not (whole + frac).isascii() or not (whole + frac).isdigit():
        raise ValueError(f"not a plain decimal: {text!r}")
    places = -exponent
    if places >= 0:
        if len(frac) > places:
            if frac[places:].strip("0"):
                raise ValueError(f"{text!r} has more than {places} decimals")
            frac = frac[:places]
        value = int((whole or "0") + frac.ljust(places, "0"))
    else:
        digits = (whole or "0") + frac
        zeros = -places + len(frac)
        if int(digits) and not digits.endswith("0" * zeros):
            raise ValueError(f"{text!r} is not a multiple of 10^{exponent}")
        value = int(digits) // 10**zeros
    if value >= 1 << 63:
        raise ValueError(f"{text!r} overflows an int64 mantissa at exponent {exponent}")
    return value


def _header(block_length: int, template: int, schema_id: int, version: int) -> bytes:
    return _HEADER.pack(block_length, template, schema_id, version)


def _symbol(symbol: str) -> bytes:
    raw = symbol.encode()
    if not 0 < len(raw) < 256:
        raise ValueError("a symbol is 1 to 255 bytes of UTF-8")
    return bytes((len(raw),)) + raw


def _group16(levels: Sequence[IntLevel], entry_extra: bytes) -> bytes:
    if len(levels) > 0xFFFF:
        raise ValueError("at most 65535 levels per side")
    parts = [_GROUP16.pack(16 + len(entry_extra), len(levels))]
    if entry_extra:
        parts.extend(_LEVEL.pack(p, q) + entry_extra for p, q in levels)
    else:
        flat = [v for level in levels for v in level]
        parts.append(struct.pack(f"<{len(flat)}q", *flat))
    return b"".join(parts)


def _ints(levels: Iterable[Level], pexp: int, qexp: int) -> list[IntLevel]:
    return [(mantissa(p, pexp), mantissa(q, qexp)) for p, q in levels]


def encode_depth_diff_ints(
    symbol: str,
    first_id: int,
    last_id: int,
    event_time_us: int,
    bids: Sequence[IntLevel],
    asks: Sequence[IntLevel],
    *,
    price_exponent: int = EXPONENT,
    qty_exponent: int = EXPONENT,
    root_extra: bytes = b"",
    entry_extra: bytes = b"",
    schema_id: int = SCHEMA_ID,
    version: int = SCHEMA_VERSION,
) -> bytes:
    """A ``DepthDiffStreamEvent`` (10003) from mantissas."""
    root = _DIFF_ROOT.pack(event_time_us, first_id, last_id, price_exponent, qty_exponent)
    return b"".join(
        (
            _header(26 + len(root_extra), DEPTH_DIFF, schema_id, version),
            root,
            root_extra,
            _group16(bids, entry_extra),
            _group16(asks, entry_extra),
            _symbol(symbol),
        )
    )


def encode_depth_diff(
    symbol: str,
    first_id: int,
    last_id: int,
    event_time_us: int,
    bids: Iterable[Level],
    asks: Iterable[Level],
    *,
    price_exponent: int = EXPONENT,
    qty_exponent: int = EXPONENT,
    root_extra: bytes = b"",
    entry_extra: bytes = b"",
    schema_id: int = SCHEMA_ID,
    version: int = SCHEMA_VERSION,
) -> bytes:
    """A ``DepthDiffStreamEvent`` (10003) from decimal strings (``<sym>@depth``)."""
    return encode_depth_diff_ints(
        symbol,
        first_id,
        last_id,
        event_time_us,
        _ints(bids, price_exponent, qty_exponent),
        _ints(asks, price_exponent, qty_exponent),
        price_exponent=price_exponent,
        qty_exponent=qty_exponent,
        root_extra=root_extra,
        entry_extra=entry_extra,
        schema_id=schema_id,
        version=version,
    )


def encode_depth_snapshot(
    symbol: str,
    update_id: int,
    event_time_us: int,
    bids: Iterable[Level],
    asks: Iterable[Level],
    *,
    price_exponent: int = EXPONENT,
    qty_exponent: int = EXPONENT,
    root_extra: bytes = b"",
    entry_extra: bytes = b"",
) -> bytes:
    """A ``DepthSnapshotStreamEvent`` (10002): the top levels, best first (``<sym>@depth20``)."""
    root = _SNAP_ROOT.pack(event_time_us, update_id, price_exponent, qty_exponent)
    return b"".join(
        (
            _header(18 + len(root_extra), DEPTH_SNAPSHOT, SCHEMA_ID, SCHEMA_VERSION),
            root,
            root_extra,
            _group16(_ints(bids, price_exponent, qty_exponent), entry_extra),
            _group16(_ints(asks, price_exponent, qty_exponent), entry_extra),
            _symbol(symbol),
        )
    )


def encode_best_bid_ask(
    symbol: str,
    update_id: int,
    event_time_us: int,
    bid: Level,
    ask: Level,
    *,
    price_exponent: int = EXPONENT,
    qty_exponent: int = EXPONENT,
    root_extra: bytes = b"",
) -> bytes:
    """A ``BestBidAskStreamEvent`` (10001) (``<sym>@bestBidAsk``)."""
    root = _BBA_ROOT.pack(
        event_time_us,
        update_id,
        price_exponent,
        qty_exponent,
        mantissa(bid[0], price_exponent),
        mantissa(bid[1], qty_exponent),
        mantissa(ask[0], price_exponent),
        mantissa(ask[1], qty_exponent),
    )
    header = _header(50 + len(root_extra), BEST_BID_ASK, SCHEMA_ID, SCHEMA_VERSION)
    return header + root + root_extra + _symbol(symbol)


def encode_trades(
    symbol: str,
    event_time_us: int,
    transact_time_us: int,
    trades: Iterable[tuple[int, str, str, bool]],
    *,
    price_exponent: int = EXPONENT,
    qty_exponent: int = EXPONENT,
    root_extra: bytes = b"",
    entry_extra: bytes = b"",
) -> bytes:
    """A ``TradesStreamEvent`` (10000): ``(id, price, qty, isBuyerMaker)`` fills (``@trade``)."""
    entries = [
        _TRADE.pack(tid, mantissa(p, price_exponent), mantissa(q, qty_exponent), int(m))
        + entry_extra
        for tid, p, q, m in trades
    ]
    root = _TRADES_ROOT.pack(event_time_us, transact_time_us, price_exponent, qty_exponent)
    return b"".join(
        (
            _header(18 + len(root_extra), TRADES, SCHEMA_ID, SCHEMA_VERSION),
            root,
            root_extra,
            _GROUP32.pack(25 + len(entry_extra), len(entries)),
            *entries,
            _symbol(symbol),
        )
    )
