"""SBE market-data frames (schema ``stream_1_0.xml``, protocol §7.6) -> typed values.

Binance's SBE streams (``stream-sbe.binance.com``) carry the same events as the JSON streams in
binary frames: little-endian, decimals as an ``int64`` mantissa with an ``int8`` exponent that is
a field of the message's root block, all times in microseconds. Layout of one frame:

    header (8)   blockLength u16, templateId u16, schemaId u16 (= 1), version u16
    root block   ``blockLength`` bytes; the fields we know sit at fixed offsets at its start
    groups       each: blockLength u16 + numInGroup (u16, or u32 for ``trades``), then entries
                 of ``blockLength`` bytes each (known fields first)
    data         ``symbol``: length u8, then that many bytes of UTF-8

Schema evolution: a newer schema version appends fields to the root block and to group entries,
so the decoder reads known fields at their offsets but *advances* by the header's and each
group's ``blockLength``, and ignores bytes after the symbol. A ``blockLength`` smaller than the
fields we know is a frame we cannot read, hence malformed.

Everything that is not a well-formed frame of one of the four templates becomes a
:class:`~streamer.sansio.wire.Malformed` (with a hex excerpt): a short header, a ``schemaId``
other than 1, an unknown template, a truncated root block, a group count past the end of the
frame, a symbol length past the end, a symbol that is not UTF-8, a negative quantity, a price
that is not positive, ``U > u``. Nothing raises out of :func:`decode_sbe`.

:func:`decode_sbe` turns a ``DepthDiffStreamEvent`` into the very
:class:`~streamer.sansio.wire.DepthDiff` the JSON decoder produces, so SBE diffs feed the same
sync machines: levels as exact plain decimal strings with exactly ``-exponent`` decimals
(mantissa 3513000 at exponent -8 is ``"0.03513000"``, the spelling of Binance's JSON and REST
snapshots for spot), ``first_id=U``, ``last_id=u``, ``prev_last_id=None`` and ``event_time`` in
**microseconds** (SBE's only unit; JSON diffs carry ms unless ``timeUnit=MICROSECOND``).
:func:`decode_depth_diff_ints` gives the raw mantissas and exponents instead, as int pairs.

The fast path (design §4.7) is :func:`decode_sbe_message`: a diff becomes an
:class:`SbeDepthDiff` whose levels are the frame's own bytes (packed little-endian int64 price and
qty, 16 bytes a level), which the book's ``apply_ints`` reads directly, so no Python int or string
is made per level; other frames become an ``OtherEvent`` (or ``Malformed``), ready for
``DepthBooks.receive_message``. Its levels are validated where they are applied (a negative
quantity or a price of zero makes the diff ``Malformed`` there), not while decoding.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from streamer.sansio.book import _FORMATTERS, decimal_string
from streamer.sansio.wire import DEFAULT_MAX_FRAME, DepthDiff, Malformed, OtherEvent

__all__ = [
    "BEST_BID_ASK",
    "DEPTH_DIFF",
    "DEPTH_SNAPSHOT",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "TRADES",
    "AnyDepthDiff",
    "DepthDiffInts",
    "SbeBestBidAsk",
    "SbeDepthDiff",
    "SbeDepthSnapshot",
    "SbeEvent",
    "SbeTrade",
    "SbeTrades",
    "decimal_string",
    "decode_depth_diff_ints",
    "decode_sbe",
    "decode_sbe_message",
]

SCHEMA_ID: Final = 1
SCHEMA_VERSION: Final = 0
TRADES: Final = 10000
BEST_BID_ASK: Final = 10001
DEPTH_SNAPSHOT: Final = 10002
DEPTH_DIFF: Final = 10003

_EXCERPT_BYTES: Final = 60
_MAX_GROUP32: Final = 2_147_483_647  # groupSizeEncoding's numInGroup maximum (protocol §7.6)

_HEADER: Final = struct.Struct("<HHHH")
# Header and root block in one read, for the common case of a frame of the known version.
_DIFF_HEAD: Final = struct.Struct("<HHHHqqqbb")  # 8 + 26
_SNAP_ROOT: Final = struct.Struct("<qqbb")  # 18: eventTime, bookUpdateId, exponents
_TRADES_ROOT: Final = struct.Struct("<qqbb")  # 18: eventTime, transactTime, exponents
_BBA_ROOT: Final = struct.Struct("<qqbbqqqq")  # 50
_GROUP16: Final = struct.Struct("<HH")
_GROUP32: Final = struct.Struct("<HI")
_LEVEL: Final = struct.Struct("<qq")  # price, qty
_TRADE: Final = struct.Struct("<qqqB")  # id, price, qty, isBuyerMaker
_DIFF_ROOT_SIZE: Final = 26
_SNAP_ROOT_SIZE: Final = 18
_TRADES_ROOT_SIZE: Final = 18
_BBA_ROOT_SIZE: Final = 50
_LEVEL_SIZE: Final = 16
_TRADE_SIZE: Final = 25

Pairs = list[tuple[int, int]]


class DepthDiffInts(NamedTuple):
    """A ``DepthDiffStreamEvent`` as integers: value = mantissa x 10^exponent."""

    symbol: str
    first_id: int  # U (firstBookUpdateId)
    last_id: int  # u (lastBookUpdateId)
    price_exponent: int
    qty_exponent: int
    bids: Pairs  # (price mantissa, qty mantissa); qty 0 deletes the level
    asks: Pairs
    event_time: int  # µs

    @property
    def prev_last_id(self) -> None:
        """SBE market data is spot's: no ``pu`` (the sync rules read it of every diff)."""
        return None

    def depth_diff(self) -> DepthDiff:
        """The same diff with string levels, as :func:`decode_sbe` gives it."""
        pexp, qexp = self.price_exponent, self.qty_exponent
        bids = _string_levels(tuple(v for pair in self.bids for v in pair), pexp, qexp)
        asks = _string_levels(tuple(v for pair in self.asks for v in pair), pexp, qexp)
        return DepthDiff(
            self.symbol, self.first_id, self.last_id, None, bids, asks, self.event_time
        )


class SbeDepthDiff(NamedTuple):
    """A ``DepthDiffStreamEvent`` for the integer book (:func:`decode_sbe_message`).

    ``bids`` and ``asks`` are the frame's level entries as they are on the wire: little-endian
    int64 price mantissa then int64 quantity mantissa, 16 bytes per level (value = mantissa x
    10^exponent), which ``apply_ints`` takes as they are. Not validated yet: the book is where a
    negative quantity or a price of zero makes the diff Malformed.
    """

    symbol: str
    first_id: int  # U (firstBookUpdateId)
    last_id: int  # u (lastBookUpdateId)
    price_exponent: int
    qty_exponent: int
    bids: bytes
    asks: bytes
    event_time: int  # µs

    @property
    def prev_last_id(self) -> None:
        """SBE market data is spot's: no ``pu`` (the sync rules read it of every diff)."""
        return None

    def depth_diff(self) -> DepthDiff:
        """The same diff with string levels, as :func:`decode_sbe` gives it (for readers that
        want the changes themselves, e.g. a book's consumers); call it on an applied diff."""
        pexp, qexp = self.price_exponent, self.qty_exponent
        bids = _string_levels(_unpack_levels(self.bids), pexp, qexp)
        asks = _string_levels(_unpack_levels(self.asks), pexp, qexp)
        return DepthDiff(
            self.symbol, self.first_id, self.last_id, None, bids, asks, self.event_time
        )


#: A depth diff in any of its forms: string levels (JSON, :func:`decode_sbe`), int pairs, packed.
AnyDepthDiff = DepthDiff | DepthDiffInts | SbeDepthDiff


class SbeDepthSnapshot(NamedTuple):
    """A ``DepthSnapshotStreamEvent`` (``<sym>@depth20``): the top levels, best first."""

    symbol: str
    last_update_id: int
    bids: list[list[str]]
    asks: list[list[str]]
    event_time: int  # µs


class SbeBestBidAsk(NamedTuple):
    """A ``BestBidAskStreamEvent`` (``<sym>@bestBidAsk``)."""

    symbol: str
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    event_time: int  # µs


class SbeTrade(NamedTuple):
    trade_id: int
    price: str
    qty: str
    buyer_is_maker: bool


class SbeTrades(NamedTuple):
    """A ``TradesStreamEvent`` (``<sym>@trade``): the fills of one match, in order."""

    symbol: str
    event_time: int  # µs
    transact_time: int  # µs
    trades: list[SbeTrade]


SbeEvent = DepthDiff | SbeDepthSnapshot | SbeBestBidAsk | SbeTrades | Malformed


class _Bad(Exception):
    """Internal: the frame is malformed for the reason given (never escapes this module)."""


# -- decimals -----------------------------------------------------------------------------------
# decimal_string() and its per-exponent formatters live in book.py, which defines what a level's
# string is (apply_ints means apply_diff of exactly these strings); re-exported here.

# -- frame parts --------------------------------------------------------------------------------

_FLAT: dict[int, struct.Struct] = {}


def _flat_levels(count: int) -> struct.Struct:
    """A struct reading ``count`` contiguous (price, qty) entries at once (cached per count)."""
    s = _FLAT.get(count)
    if s is None:
        s = struct.Struct(f"<{2 * count}q")
        if count <= 5000:  # bounded cache: real groups are small
            _FLAT[count] = s
    return s


def _group16(data: bytes, pos: int, size: int) -> tuple[tuple[int, ...], int]:
    """A ``groupSize16Encoding`` group of (price, qty) entries: the flat values and the end."""
    if pos + 4 > size:
        raise _Bad("truncated group header")
    block, count = _GROUP16.unpack_from(data, pos)
    pos += 4
    if block < _LEVEL_SIZE:
        raise _Bad(f"group entry blockLength {block} < {_LEVEL_SIZE}")
    end = pos + block * count
    if end > size:
        raise _Bad(f"group of {count} entries runs past the end of the frame")
    if not count:
        return (), end
    if block == _LEVEL_SIZE:
        return _flat_levels(count).unpack_from(data, pos), end
    flat: list[int] = []
    for at in range(pos, end, block):  # a newer schema's wider entries: known fields first
        flat.extend(_LEVEL.unpack_from(data, at))
    return tuple(flat), end


def _check_levels(flat: tuple[int, ...]) -> None:
    """Flat (price, qty, ...) values: no negative quantity, no price of zero or below."""
    # One min() over everything, then one scan of the prices for zero: cheaper than two
    # min() of two slices per side, and this runs once per diff.
    if flat and (min(flat) < 0 or 0 in flat[::2]):
        raise _Bad("negative quantity or price, or a price of zero")


def _symbol(data: bytes, pos: int, size: int) -> str:
    if pos >= size:
        raise _Bad("truncated before the symbol")
    end = pos + 1 + data[pos]
    if end > size:
        raise _Bad("symbol length past the end of the frame")
    try:
        symbol = data[pos + 1 : end].decode()
    except UnicodeDecodeError:
        raise _Bad("symbol is not UTF-8") from None
    if not symbol:
        raise _Bad("empty symbol")
    return symbol


def _header(data: bytes, size: int) -> tuple[int, int]:
    """(blockLength, templateId) of a frame of this schema."""
    if size < 8:
        raise _Bad(f"frame of {size} bytes is shorter than the SBE header")
    block, template, schema, _version = _HEADER.unpack_from(data)
    if schema != SCHEMA_ID:
        raise _Bad(f"schemaId {schema}, expected {SCHEMA_ID}")
    return block, template


def _excerpt(data: bytes) -> str:
    head = bytes(data[:_EXCERPT_BYTES]).hex()
    return head + ("…" if len(data) > _EXCERPT_BYTES else "")


# -- messages -----------------------------------------------------------------------------------


_BOTH: dict[tuple[int, int], struct.Struct] = {}


def _both_groups(bids: int, asks: int) -> struct.Struct:
    """A struct reading both level groups of a diff at once, skipping the asks' group header."""
    s = _BOTH.get((bids, asks))
    if s is None:
        s = struct.Struct(f"<{2 * bids}q4x{2 * asks}q")
        if len(_BOTH) < 4096:  # bounded cache: real diffs have few distinct shapes
            _BOTH[(bids, asks)] = s
    return s


def _diff_parts(
    data: bytes, size: int
) -> tuple[int, int, int, int, int, tuple[int, ...], tuple[int, ...], str]:
    """A ``DepthDiffStreamEvent``: (time, U, u, price exp, qty exp, bids, asks, symbol).

    The caller has checked that the header says DepthDiffStreamEvent of schema 1.
    """
    if size < 8 + _DIFF_ROOT_SIZE:
        raise _Bad("truncated root block")
    block, _t, _s, _v, when, first, last, pexp, qexp = _DIFF_HEAD.unpack_from(data)
    if block < _DIFF_ROOT_SIZE:
        raise _Bad(f"root blockLength {block} < {_DIFF_ROOT_SIZE}")
    if first > last or first < 0:
        raise _Bad("bad U/u")
    pos = 8 + block
    if pos + 4 <= size:
        # Fast path, entries of the known size: both groups in one unpack. Anything unusual
        # falls through to the general path, which also names what is wrong.
        entry, nb = _GROUP16.unpack_from(data, pos)
        at = pos + 4 + _LEVEL_SIZE * nb
        if entry == _LEVEL_SIZE and at + 4 <= size:
            entry, na = _GROUP16.unpack_from(data, at)
            end = at + 4 + _LEVEL_SIZE * na
            if entry == _LEVEL_SIZE and end < size:
                flat = _both_groups(nb, na).unpack_from(data, pos + 4)
                _check_levels(flat)
                split = 2 * nb
                symbol = _symbol(data, end, size)
                return when, first, last, pexp, qexp, flat[:split], flat[split:], symbol
    bids, pos = _group16(data, pos, size)
    asks, pos = _group16(data, pos, size)
    _check_levels(bids + asks)
    return when, first, last, pexp, qexp, bids, asks, _symbol(data, pos, size)


def _unpack_levels(packed: bytes) -> tuple[int, ...]:
    """The flat (price, qty, ...) mantissas of packed levels."""
    return _flat_levels(len(packed) // _LEVEL_SIZE).unpack(packed)


def _pairs(flat: tuple[int, ...]) -> Pairs:
    it = iter(flat)
    return list(zip(it, it, strict=True))


#: Price spellings already made, per exponent: a price level is changed many times, so most
#: prices cost one dict lookup instead of an int-to-string conversion, which dominates decoding
#: otherwise. Quantities rarely repeat (caching them measured slower: misses, and they evict the
#: prices), except zero, which has its own constant. Bounded: a cache is cleared past
#: _CACHE_MAX entries. Pure memoisation of a pure function; results never depend on it.
_PRICES: Final[dict[int, dict[int, str]]] = {e: {} for e in range(-128, 128)}
_ZEROS: Final = {e: _FORMATTERS[e](0) for e in range(-128, 128)}
_CACHE_MAX: Final = 1 << 16


def _spell(cache: dict[int, str], value: int, exponent: int) -> str:
    text = cache[value] = _FORMATTERS[exponent](value)
    if len(cache) > _CACHE_MAX:
        cache.clear()
    return text


def _string_levels(flat: tuple[int, ...], pexp: int, qexp: int) -> list[list[str]]:
    prices = _PRICES[pexp]
    zero = _ZEROS[qexp]
    out = []
    it = iter(flat)
    if qexp >= 0:
        spell_qty = _FORMATTERS[qexp]
        for p, q in zip(it, it, strict=True):
            price = prices.get(p)
            if price is None:
                price = _spell(prices, p, pexp)
            out.append([price, spell_qty(q) if q else zero])
        return out
    # _make_formatter's fraction(), inlined: a call per quantity is a tenth of the cost here.
    places = -qexp
    pad = "0" * (places + 1)
    for p, q in zip(it, it, strict=True):
        price = prices.get(p)
        if price is None:
            price = _spell(prices, p, pexp)
        if q:
            digits = str(q)
            if len(digits) <= places:
                digits = (pad + digits)[-places - 1 :]
            out.append([price, f"{digits[:-places]}.{digits[-places:]}"])
        else:
            out.append([price, zero])
    return out


def _snapshot(data: bytes, block: int, size: int) -> SbeDepthSnapshot:
    if block < _SNAP_ROOT_SIZE or 8 + block > size:
        raise _Bad("truncated root block")
    when, update_id, pexp, qexp = _SNAP_ROOT.unpack_from(data, 8)
    bids, pos = _group16(data, 8 + block, size)
    asks, pos = _group16(data, pos, size)
    _check_levels(bids + asks)
    symbol = _symbol(data, pos, size)
    return SbeDepthSnapshot(
        symbol,
        update_id,
        _string_levels(bids, pexp, qexp),
        _string_levels(asks, pexp, qexp),
        when,
    )


def _best_bid_ask(data: bytes, block: int, size: int) -> SbeBestBidAsk:
    if block < _BBA_ROOT_SIZE or 8 + block > size:
        raise _Bad("truncated root block")
    when, update_id, pexp, qexp, bid, bid_qty, ask, ask_qty = _BBA_ROOT.unpack_from(data, 8)
    _check_levels((bid, bid_qty, ask, ask_qty))
    symbol = _symbol(data, 8 + block, size)
    fp, fq = _FORMATTERS[pexp], _FORMATTERS[qexp]
    return SbeBestBidAsk(symbol, update_id, fp(bid), fq(bid_qty), fp(ask), fq(ask_qty), when)


def _trades(data: bytes, block: int, size: int) -> SbeTrades:
    if block < _TRADES_ROOT_SIZE or 8 + block > size:
        raise _Bad("truncated root block")
    when, transact, pexp, qexp = _TRADES_ROOT.unpack_from(data, 8)
    pos = 8 + block
    if pos + 6 > size:
        raise _Bad("truncated group header")
    entry, count = _GROUP32.unpack_from(data, pos)
    pos += 6
    if entry < _TRADE_SIZE:
        raise _Bad(f"group entry blockLength {entry} < {_TRADE_SIZE}")
    if count > _MAX_GROUP32:
        raise _Bad(f"numInGroup {count} exceeds {_MAX_GROUP32}")
    end = pos + entry * count
    if end > size:
        raise _Bad(f"group of {count} entries runs past the end of the frame")
    fp, fq = _FORMATTERS[pexp], _FORMATTERS[qexp]
    trades: list[SbeTrade] = []
    for at in range(pos, end, entry):
        trade_id, price, qty, maker = _TRADE.unpack_from(data, at)
        if qty < 0 or price <= 0 or maker > 1:
            raise _Bad("bad trade entry")
        trades.append(SbeTrade(trade_id, fp(price), fq(qty), maker == 1))
    return SbeTrades(_symbol(data, end, size), when, transact, trades)


# -- public -------------------------------------------------------------------------------------


def _is_diff(data: bytes) -> bool:
    """Whether the header says DepthDiffStreamEvent (10003) of schema 1: one slice compare."""
    return data[2:6] == b"\x13\x27\x01\x00"


def decode_sbe(
    data: bytes | bytearray | memoryview, stream: str = "", *, max_size: int = DEFAULT_MAX_FRAME
) -> SbeEvent:
    """Decode one binary SBE frame; ``stream`` names the connection in error reports.

    A ``DepthDiffStreamEvent`` becomes a :class:`~streamer.sansio.wire.DepthDiff` (event time
    in µs); the other three templates their ``Sbe*`` value; anything else a ``Malformed``.
    """
    raw = data if type(data) is bytes else bytes(data)
    size = len(raw)
    if size > max_size:
        return Malformed(stream, f"frame of length {size} exceeds {max_size}", _excerpt(raw))
    try:
        if _is_diff(raw):
            when, first, last, pexp, qexp, bids, asks, symbol = _diff_parts(raw, size)
            return DepthDiff(
                symbol,
                first,
                last,
                None,
                _string_levels(bids, pexp, qexp),
                _string_levels(asks, pexp, qexp),
                when,
            )
        block, template = _header(raw, size)
        if template == DEPTH_SNAPSHOT:
            return _snapshot(raw, block, size)
        if template == BEST_BID_ASK:
            return _best_bid_ask(raw, block, size)
        if template == TRADES:
            return _trades(raw, block, size)
        raise _Bad(f"unknown templateId {template}")
    except _Bad as bad:
        return Malformed(stream, f"SBE: {bad}", _excerpt(raw))
    except (struct.error, ValueError) as exc:  # defensive: the checks above should catch all
        return Malformed(stream, f"SBE: {exc}", _excerpt(raw))


def decode_depth_diff_ints(
    data: bytes | bytearray | memoryview, stream: str = "", *, max_size: int = DEFAULT_MAX_FRAME
) -> DepthDiffInts | Malformed:
    """Decode a ``DepthDiffStreamEvent`` to mantissas (any other frame is ``Malformed``)."""
    raw = data if type(data) is bytes else bytes(data)
    size = len(raw)
    if size > max_size:
        return Malformed(stream, f"frame of length {size} exceeds {max_size}", _excerpt(raw))
    try:
        if not _is_diff(raw):
            _block, template = _header(raw, size)
            raise _Bad(f"templateId {template} is not DepthDiffStreamEvent")
        when, first, last, pexp, qexp, bids, asks, symbol = _diff_parts(raw, size)
        return DepthDiffInts(symbol, first, last, pexp, qexp, _pairs(bids), _pairs(asks), when)
    except _Bad as bad:
        return Malformed(stream, f"SBE: {bad}", _excerpt(raw))
    except (struct.error, ValueError) as exc:
        return Malformed(stream, f"SBE: {exc}", _excerpt(raw))


# -- the fast path: diffs for the integer book ---------------------------------------------------

#: Header, the root block of schema version 0, and the bids' group header, in one read.
_DIFF_HEAD_GROUP: Final = struct.Struct("<HHHHqqqbbHH")  # 8 + 26 + 4 = 38
_BIDS_AT: Final = 8 + _DIFF_ROOT_SIZE + 4
#: Symbols already decoded, by their bytes (one dict lookup instead of a decode per frame).
_SYMBOLS: Final[dict[bytes, str]] = {}
_new_tuple: Final = tuple.__new__


def _pack(flat: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(flat)}q", *flat)


def _sbe_diff(raw: bytes, size: int) -> SbeDepthDiff:
    """A DepthDiffStreamEvent frame (the caller checked its template) as an SbeDepthDiff."""
    if size > _BIDS_AT:
        block, _t, _s, _v, when, first, last, pexp, qexp, entry, nb = _DIFF_HEAD_GROUP.unpack_from(
            raw
        )
        at = _BIDS_AT + _LEVEL_SIZE * nb  # the asks' group header
        if block == _DIFF_ROOT_SIZE and entry == _LEVEL_SIZE and at + 4 <= size:
            entry, na = _GROUP16.unpack_from(raw, at)
            end = at + 4 + _LEVEL_SIZE * na  # the symbol's length byte
            if entry == _LEVEL_SIZE and end < size and 0 <= first <= last:
                stop = end + 1 + raw[end]
                name = raw[end + 1 : stop]
                symbol = _SYMBOLS.get(name)
                if symbol is None or stop > size:
                    symbol = _symbol(raw, end, size)  # checks it, names what is wrong
                    if len(_SYMBOLS) < 4096:
                        _SYMBOLS[name] = symbol
                bids, asks = raw[_BIDS_AT:at], raw[at + 4 : end]
                return _new_tuple(SbeDepthDiff, (symbol, first, last, pexp, qexp, bids, asks, when))
    # Anything else (a newer schema's wider blocks, or a bad frame): the general decoder, which
    # also checks the levels and says what is wrong.
    when, first, last, pexp, qexp, bid_flat, ask_flat, symbol = _diff_parts(raw, size)
    return SbeDepthDiff(symbol, first, last, pexp, qexp, _pack(bid_flat), _pack(ask_flat), when)


def decode_sbe_message(
    data: bytes | bytearray | memoryview, stream: str = "", *, max_size: int = DEFAULT_MAX_FRAME
) -> SbeDepthDiff | OtherEvent | Malformed:
    """Decode one binary frame into what ``DepthBooks.receive_message`` routes: a diff as an
    :class:`SbeDepthDiff`, the other templates as an ``OtherEvent`` named after their type,
    anything else a ``Malformed``. The connector's one call per binary frame."""
    raw = data if type(data) is bytes else bytes(data)
    size = len(raw)
    if size > max_size:
        return Malformed(stream, f"frame of length {size} exceeds {max_size}", _excerpt(raw))
    if _is_diff(raw):
        try:
            return _sbe_diff(raw, size)
        except _Bad as bad:
            return Malformed(stream, f"SBE: {bad}", _excerpt(raw))
        except (struct.error, ValueError) as exc:  # defensive, as in decode_sbe
            return Malformed(stream, f"SBE: {exc}", _excerpt(raw))
    event = decode_sbe(raw, stream, max_size=max_size)
    if type(event) is Malformed:
        return event
    return OtherEvent(stream, type(event).__name__)
