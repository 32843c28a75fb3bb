"""One order book: prices as exact integers, decimal strings in and out.

This module is the reference implementation and the fallback; ``streamer/sansio/_book.c`` is its
C twin with the same behaviour (a differential fuzz in the tests holds them to identical books and
identical verdicts). :func:`new_book` builds whichever one is selected (C when it was built).

Representation:

* A price is an ``int`` mantissa at the book's price exponent ``e`` (value = mantissa / 10**e),
  shared by both sides. ``e`` starts at :data:`DEFAULT_EXPONENT` (Binance's 8 decimals). A price
  with more significant decimals rescales the whole book exactly (up to :data:`MAX_EXPONENT`); a
  mantissa that would not fit an int64, like Binance's own (SBE) mantissas, makes the diff
  Malformed. Nothing is ever rounded.
* Each level also keeps the price string as first received and the quantity string as last
  received: what :meth:`BookSide.top` returns is exactly what Binance sent, in its own spelling.
  Quantities are never rounded or bounded: Binance's capped ``92233720368.54775807`` stays as is.
* Order: ``keys`` (mantissa for bids, minus mantissa for asks) and ``prices`` are parallel lists
  sorted so the best level is *last* on both sides, since most changes happen near the top.
  A dict from price string to quantity string makes the common case, a new quantity for a level
  we hold, one lookup and one store with no number parsing. Another spelling of a held price
  ("0.35" vs "0.35000000") misses the dict, is parsed, and lands on the held level by value.

``apply_diff`` validates each level in the same loop that applies it and records what it changed,
so a bad level anywhere in a diff rolls the whole diff back (exponent included): never half-applied.
An applied diff is journaled (its update id and levels) for the drift audit's ``touched_since``.

The C twin differs only inside: it holds quantities as int64 mantissas with their decimals and
formats them back when read (exactly the string received, see _book.c), and journals int64 keys.

Integer levels (SBE, design §4.7): ``apply_ints(bids, asks, price_exp, qty_exp, update_id)``
applies levels given as mantissas, ``(price, qty)`` int pairs or packed as in an SBE group
(little-endian int64 price then qty, 16 bytes per level), at two exponents. Its meaning is
defined here: exactly ``apply_diff`` of the strings :func:`decimal_string` spells them as, i.e.
the equivalent JSON (same rescales, same Malformed verdicts, same journal, and readers see those
spellings). Its domain is SBE's: int64 mantissas, int8 exponents; anything else is Malformed.
This book does just that, spelling the strings; the C twin converts price mantissas to the book's
exponent with integer arithmetic and stores quantities as (mantissa, decimals), with no strings
at all until a level is read (the differential fuzz holds the two, and apply_diff, to it).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Final, Protocol

__all__ = [
    "DEFAULT_EXPONENT",
    "DEFAULT_JOURNAL",
    "INT64_MAX",
    "MAX_EXPONENT",
    "Book",
    "BookModel",
    "BookSide",
    "SideModel",
    "available",
    "decimal_string",
    "implementation",
    "ints_well_formed",
    "is_zero",
    "levels_well_formed",
    "new_book",
    "use",
    "valid_price",
    "valid_qty",
]

#: The price exponent a book starts at: Binance spells prices with 8 decimals.
DEFAULT_EXPONENT: Final = 8
#: The most decimals a price may have (10**18 still fits an int64).
MAX_EXPONENT: Final = 18
#: Applied diffs a book remembers the touched prices of, for drift audits.
DEFAULT_JOURNAL: Final = 512
#: Mantissas are bounded like Binance's own SBE mantissas.
INT64_MAX: Final = (1 << 63) - 1

_MALFORMED: Final = -1
_RESCALE: Final = -2  # the price needs more decimals than the book's exponent: rescale, retry
_POW10: Final = [10**i for i in range(MAX_EXPONENT + 1)]

Levels = Iterable[Sequence[str]]
#: Integer levels: (price mantissa, quantity mantissa) pairs, or packed as in an SBE group.
IntLevels = Iterable[Sequence[int]] | bytes | bytearray | memoryview


class SideModel(Protocol):
    """The read side of one book side, which both implementations offer."""

    @property
    def descending(self) -> bool: ...
    def __len__(self) -> int: ...
    def top(self, n: int) -> list[tuple[str, str]]: ...
    def best(self) -> tuple[str, str] | None: ...
    def get(self, price: str) -> str | None: ...
    def levels(self) -> Iterator[tuple[Decimal, str, str]]: ...


class BookModel(Protocol):
    """The small book protocol the sync rules (book_sync.py) and the audit are written against."""

    @property
    def bids(self) -> SideModel: ...
    @property
    def asks(self) -> SideModel: ...
    @property
    def exponent(self) -> int: ...
    def load(self, bids: Levels, asks: Levels) -> bool: ...
    def clear(self) -> None: ...
    def apply_diff(self, bids: Levels, asks: Levels, update_id: int = 0) -> int: ...
    def apply_ints(
        self, bids: IntLevels, asks: IntLevels, price_exp: int, qty_exp: int, update_id: int = 0
    ) -> int: ...
    def touched_since(self, update_id: int) -> tuple[list[Decimal], list[Decimal]] | None: ...
    def is_crossed(self) -> bool: ...


def _make_formatter(exponent: int) -> Callable[[int], str]:
    """The exact plain spelling of ``m x 10^exponent`` for a non-negative mantissa ``m``."""
    if exponent >= 0:
        zeros = "0" * exponent

        def scaled(m: int) -> str:
            return f"{m}{zeros}" if m else "0"

        return scaled
    places = -exponent
    pad = "0" * (places + 1)

    def fraction(m: int) -> str:
        # String slicing beats divmod + format (measured; the same trick as the exchange's
        # fmt_units): this runs twice per level on the hot path.
        digits = str(m)
        if len(digits) <= places:
            digits = (pad + digits)[-places - 1 :]
        return f"{digits[:-places]}.{digits[-places:]}"

    return fraction


#: One formatter per int8 exponent (SBE's exponent type).
_FORMATTERS: Final = {e: _make_formatter(e) for e in range(-128, 128)}


def decimal_string(mantissa: int, exponent: int) -> str:
    """``mantissa x 10^exponent`` as a plain decimal string with exactly ``-exponent`` decimals.

    ``decimal_string(3513000, -8) == "0.03513000"``; a negative mantissa gets a leading ``-``.
    This is how an SBE level is spelled as a string: the spelling of Binance's JSON for spot.
    """
    if mantissa < 0:
        return "-" + _FORMATTERS[exponent](-mantissa)
    return _FORMATTERS[exponent](mantissa)


def _int_pairs(levels: object, price_exp: object, qty_exp: object) -> list[tuple[int, int]] | None:
    """The (price, qty) mantissas of integer levels, or None when any is outside apply_ints'
    domain (int8 exponents, int64 mantissas) or not a level: price <= 0, qty < 0, wrong shape."""
    if not (type(price_exp) is int and type(qty_exp) is int):
        return None
    if not (-128 <= price_exp <= 127 and -128 <= qty_exp <= 127):
        return None
    kind = type(levels)
    if kind is bytes or kind is bytearray or kind is memoryview:
        view = memoryview(levels)  # type: ignore[arg-type]
        if not view.c_contiguous or view.nbytes % 16:
            return None
        flat = struct.unpack(f"<{view.nbytes // 8}q", view.tobytes())
        it = iter(flat)
        pairs = list(zip(it, it, strict=True))
        ok = all(p > 0 and q >= 0 for p, q in pairs)
        return pairs if ok else None
    pairs = []
    try:
        for level in levels:  # type: ignore[attr-defined]
            if (type(level) is not tuple and type(level) is not list) or len(level) != 2:
                return None
            p, q = level
            if type(p) is not int or type(q) is not int:
                return None
            if not (0 < p <= INT64_MAX and 0 <= q <= INT64_MAX):
                return None
            pairs.append((p, q))
    except TypeError:
        return None
    return pairs


def ints_well_formed(levels: object, price_exp: object, qty_exp: object) -> bool:
    """True when ``levels`` are integer levels apply_ints can take (see :func:`levels_well_formed`
    for strings): the check for integer diffs buffered before a snapshot."""
    return _int_pairs(levels, price_exp, qty_exp) is not None


def is_zero(qty: str) -> bool:
    """True when a valid quantity string is zero ("0", "0.00000000", ".0")."""
    return not qty.strip("0.")


def valid_qty(text: object) -> bool:
    """A plain non-negative decimal string: ASCII digits with at most one dot."""
    # isascii() rules out other scripts' digits, which isdigit() accepts; dropping one dot leaves
    # only digits exactly when there is at most one dot and no sign, space, exponent or underscore.
    return type(text) is str and text.isascii() and text.replace(".", "", 1).isdigit()


def valid_price(text: object) -> bool:
    """A valid quantity that is not zero: no level can sit at price 0."""
    return valid_qty(text) and not is_zero(str(text))


def levels_well_formed(levels: object) -> bool:
    """True when ``levels`` is a list of ``[price, qty]`` lists of valid strings.

    The check for diffs buffered before a snapshot; whether a price fits the book is decided when
    the diff is applied.
    """
    if type(levels) is not list:
        return False
    for level in levels:
        if type(level) is not list or len(level) != 2:
            return False
        price, qty = level
        if not (valid_qty(qty) and valid_price(price)):
            return False
    return True


def _decimals(text: str) -> int:
    """Significant decimals of a valid number string ("1.2500" has 2)."""
    return len(text.partition(".")[2].rstrip("0"))


def _mantissa(text: str, exp: int) -> int:
    """The mantissa of a syntactically valid price at ``exp``: > 0, or _MALFORMED / _RESCALE."""
    whole, _, frac = text.partition(".")
    if len(frac) <= exp and len(text) <= 20:  # the common case: no stripping, int() is safe
        m = int(whole + frac) * _POW10[exp - len(frac)]
        return m if 0 < m <= INT64_MAX else _MALFORMED
    if len(frac) > exp:
        if frac[exp:].strip("0"):
            return _RESCALE if _decimals(text) <= MAX_EXPONENT else _MALFORMED
        frac = frac[:exp]
    digits = (whole + frac).lstrip("0")  # no int() of a huge string: its length says it all
    if not digits or len(digits) + exp - len(frac) > 19:
        return _MALFORMED  # zero, or past 19 digits: no int64
    m = int(digits) * _POW10[exp - len(frac)]
    return m if m <= INT64_MAX else _MALFORMED


class BookSide:
    """Price levels of one side. ``descending`` puts the highest price first (bids)."""

    __slots__ = ("_exp", "_key_of", "_keys", "_need", "_prices", "_qty", "_sign", "descending")

    def __init__(self, descending: bool, exponent: int = DEFAULT_EXPONENT) -> None:
        self.descending = descending
        self._sign = 1 if descending else -1
        self._exp = exponent
        self._need = 0  # the decimals a price asked for when apply() returned _RESCALE
        self._qty: dict[str, str] = {}
        self._keys: list[int] = []  # sign * mantissa, ascending: the best level is last
        self._prices: list[str] = []  # parallel to _keys
        self._key_of: dict[str, int] = {}  # the key of each held price: deletes parse nothing

    def __len__(self) -> int:
        return len(self._qty)

    def clear(self) -> None:
        self._qty.clear()
        self._keys.clear()
        self._prices.clear()
        self._key_of.clear()

    def apply(self, levels: Levels, undo: list[tuple[str, str | None]]) -> int:
        """Validate and apply ``[price, qty]`` levels (absolute quantities; zero deletes).

        Returns the number of levels inserted (a diff without inserts cannot cross the book),
        _MALFORMED, or _RESCALE (``_need`` then says how many decimals). Levels applied before a
        failure are recorded in ``undo`` for :meth:`rollback`. Validation and application share
        one loop because this is the hot path; a price already held was validated when inserted.
        """
        book = self._qty
        inserted = 0
        try:
            for level in levels:
                if type(level) is not list:
                    return _MALFORMED
                price, qty = level
                # isascii(): isdigit() alone accepts other scripts' digits ("١", from "\u0661").
                if not (qty.isascii() and qty.replace(".", "", 1).isdigit()):
                    return _MALFORMED
                old = book.get(price)
                if old is not None:
                    undo.append((price, old))
                    # A quantity starting with 1-9 is non-zero without scanning it ("." < "0").
                    if qty[0] > "0" or qty.strip("0."):
                        book[price] = qty
                    else:
                        self._remove(price)
                else:
                    done = self._set_new(price, qty, undo)
                    if done < 0:
                        return done
                    inserted += done
        except (TypeError, ValueError, AttributeError):
            return _MALFORMED
        return inserted

    def _set_new(self, price: object, qty: str, undo: list[tuple[str, str | None]]) -> int:
        """A price string we do not hold: a new level, another spelling of a held one, or bad."""
        if not (type(price) is str and price.isascii() and price.replace(".", "", 1).isdigit()):
            return _MALFORMED
        m = _mantissa(price, self._exp)
        if m < 0:
            if m == _RESCALE:
                self._need = _decimals(price)
            return m
        key = self._sign * m
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:  # another spelling: the held one stays
            held = self._prices[i]
            undo.append((held, self._qty[held]))
            if is_zero(qty):
                del keys[i]
                del self._prices[i]
                del self._qty[held]
                del self._key_of[held]
            else:
                self._qty[held] = qty
        elif not is_zero(qty):
            undo.append((price, None))
            keys.insert(i, key)
            self._prices.insert(i, price)
            self._qty[price] = qty
            self._key_of[price] = key
            return 1
        return 0

    def _remove(self, price: str) -> None:
        i = bisect_left(self._keys, self._key_of.pop(price))
        del self._keys[i]
        del self._prices[i]
        del self._qty[price]

    def rollback(self, undo: list[tuple[str, str | None]]) -> None:
        """Undo what :meth:`apply` recorded, newest first."""
        book = self._qty
        for price, old in reversed(undo):
            if old is None:
                self._remove(price)
            elif price in book:
                book[price] = old
            else:  # a level this diff removed: valid at this exponent when it was inserted
                key = self._sign * _mantissa(price, self._exp)
                i = bisect_left(self._keys, key)
                self._keys.insert(i, key)
                self._prices.insert(i, price)
                book[price] = old
                self._key_of[price] = key
        undo.clear()

    def _load(self, levels: list[tuple[str, str]], exp: int) -> bool:
        """Replace every level; the later of two levels with one value wins."""
        self._exp = exp
        by_key: dict[int, tuple[str, str]] = {}
        sign = self._sign
        for price, qty in levels:
            m = _mantissa(price, exp)
            if m < 0:
                return False
            by_key[sign * m] = (price, qty)
        self._keys = sorted(by_key)
        self._prices = [by_key[k][0] for k in self._keys]
        self._qty = dict(by_key.values())
        self._key_of = {price: key for key, (price, _) in by_key.items()}
        return True

    def _scale(self, exp: int) -> None:
        """Move every key to exponent ``exp`` (the caller checked that it is exact and fits)."""
        if exp > self._exp:
            factor = _POW10[exp - self._exp]
            self._keys = [k * factor for k in self._keys]
        elif exp < self._exp:
            factor = _POW10[self._exp - exp]
            self._keys = [k // factor for k in self._keys]
        self._key_of = dict(zip(self._prices, self._keys, strict=True))
        self._exp = exp

    def _largest(self) -> int:
        """The largest price mantissa held, 0 when empty."""
        keys = self._keys
        if not keys:
            return 0
        return keys[-1] if self._sign > 0 else -keys[0]

    def get(self, price: str) -> str | None:
        """The quantity held at ``price`` (any spelling), or None."""
        qty = self._qty.get(price)
        if qty is not None or not valid_price(price):
            return qty
        m = _mantissa(price, self._exp)
        if m < 0:
            return None
        key = self._sign * m
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            return self._qty[self._prices[i]]
        return None

    def best(self) -> tuple[str, str] | None:
        prices = self._prices
        if not prices:
            return None
        price = prices[-1]
        return price, self._qty[price]

    def top(self, n: int) -> list[tuple[str, str]]:
        """The best ``n`` levels, best first."""
        if n <= 0:
            return []
        qty = self._qty
        return [(p, qty[p]) for p in self._prices[: -n - 1 : -1]]

    def levels(self) -> Iterator[tuple[Decimal, str, str]]:
        """Every level best first, as (exact value, price string, quantity string)."""
        qty = self._qty
        for price in reversed(self._prices):
            yield Decimal(price), price, qty[price]


def _snapshot_side(levels: Levels) -> list[tuple[str, str]] | None:
    """The non-zero levels of a snapshot side, or None when any level is not valid."""
    out: list[tuple[str, str]] = []
    try:
        for level in levels:
            if type(level) is not list and type(level) is not tuple:
                return None
            price, qty = level
            if not (valid_qty(qty) and valid_price(price)):
                return None
            if not is_zero(qty):
                out.append((price, qty))
    except (TypeError, ValueError):
        return None
    return out


class Book:
    """Bids and asks of one symbol, prices at one shared exponent."""

    __slots__ = ("_base", "_journal", "_undo_asks", "_undo_bids", "asks", "bids")

    def __init__(
        self, exponent: int = DEFAULT_EXPONENT, journal_size: int = DEFAULT_JOURNAL
    ) -> None:
        if not 0 <= exponent <= MAX_EXPONENT:
            raise ValueError(f"exponent must be within 0..{MAX_EXPONENT}")
        if journal_size < 1:
            raise ValueError("journal_size must be positive")
        self._base = exponent
        # (update id, bids, asks) of the latest applied diffs, oldest first: the touched prices.
        self._journal: deque[tuple[int, Levels, Levels]] = deque(maxlen=journal_size)
        self.bids = BookSide(descending=True, exponent=exponent)
        self.asks = BookSide(descending=False, exponent=exponent)
        # Reused by every apply_diff: what to restore if a later level of the diff is bad.
        self._undo_bids: list[tuple[str, str | None]] = []
        self._undo_asks: list[tuple[str, str | None]] = []

    @property
    def exponent(self) -> int:
        """The number of decimals every price mantissa is held at."""
        return self.bids._exp

    def load(self, bids: Levels, asks: Levels) -> bool:
        """Replace both sides with a snapshot; False (and an empty book) if it cannot be held.

        The exponent starts again from the book's base and grows to the snapshot's decimals.
        Zero quantities are skipped.
        """
        self.clear()
        good_bids = _snapshot_side(bids)
        good_asks = _snapshot_side(asks)
        if good_bids is None or good_asks is None:
            return False
        exp = max([self._base] + [_decimals(p) for p, _ in good_bids + good_asks])
        if exp > MAX_EXPONENT or not (
            self.bids._load(good_bids, exp) and self.asks._load(good_asks, exp)
        ):
            self.clear()
            return False
        return True

    def clear(self) -> None:
        """Empty both sides and the journal; the exponent returns to the base."""
        self.bids.clear()
        self.asks.clear()
        self.bids._exp = self.asks._exp = self._base
        self._journal.clear()

    def apply_diff(self, bids: Levels, asks: Levels, update_id: int = 0) -> int:
        """Apply both sides of a diff: the number of levels inserted, or -1 (book unchanged).

        An applied diff is journaled under ``update_id`` (its ``u``) for :meth:`touched_since`.
        """
        start = self.bids._exp
        undo_bids = self._undo_bids
        undo_asks = self._undo_asks
        while True:
            undo_bids.clear()
            undo_asks.clear()
            new_bids = self.bids.apply(bids, undo_bids)
            new_asks = self.asks.apply(asks, undo_asks) if new_bids >= 0 else _MALFORMED
            if new_asks >= 0:
                self._journal.append((update_id, bids, asks))
                return new_bids + new_asks
            self.asks.rollback(undo_asks)
            self.bids.rollback(undo_bids)
            need = self.bids._need if new_bids == _RESCALE else self.asks._need
            if _RESCALE in (new_bids, new_asks) and self._rescale(need):
                continue  # the whole diff again, at the new exponent
            self._rescale(start)
            return -1

    def apply_ints(
        self, bids: IntLevels, asks: IntLevels, price_exp: int, qty_exp: int, update_id: int = 0
    ) -> int:
        """:meth:`apply_diff` of integer levels: value = mantissa x 10^exponent (module doc).

        Here literally so: the levels are spelled with :func:`decimal_string` and applied as
        strings, which defines the C twin's integer path.
        """
        bid_pairs = _int_pairs(bids, price_exp, qty_exp)
        ask_pairs = _int_pairs(asks, price_exp, qty_exp)
        if bid_pairs is None or ask_pairs is None:
            return -1  # nothing applied, as apply_diff's rollback of the same strings leaves it
        fp, fq = _FORMATTERS[price_exp], _FORMATTERS[qty_exp]
        return self.apply_diff(
            [[fp(p), fq(q)] for p, q in bid_pairs],
            [[fp(p), fq(q)] for p, q in ask_pairs],
            update_id,
        )

    def touched_since(self, update_id: int) -> tuple[list[Decimal], list[Decimal]] | None:
        """The prices (bids, asks) of the journaled diffs with an id above ``update_id``.

        None when the journal is full and its oldest diff is newer than ``update_id``: diffs in
        between may have been forgotten. Ids only grow along the journal.
        """
        journal = self._journal
        if len(journal) == journal.maxlen and journal[0][0] > update_id:
            return None
        bids: list[Decimal] = []
        asks: list[Decimal] = []
        for at, diff_bids, diff_asks in reversed(journal):
            if at <= update_id:
                break
            bids.extend(Decimal(level[0]) for level in diff_bids)
            asks.extend(Decimal(level[0]) for level in diff_asks)
        return bids, asks

    def _rescale(self, exp: int) -> bool:
        """Move both sides to exponent ``exp`` if every price still fits an int64."""
        current = self.bids._exp
        if exp > current:
            biggest = max(self.bids._largest(), self.asks._largest())
            if biggest * _POW10[exp - current] > INT64_MAX:
                return False
        self.bids._scale(exp)
        self.asks._scale(exp)
        return True

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: never valid on a synced book."""
        bids = self.bids._keys
        asks = self.asks._keys
        return bool(bids and asks) and bids[-1] >= -asks[-1]


# -- which implementation new books use -----------------------------------------------------------

try:
    from streamer.sansio import _book as _c
except ImportError:  # not built (no compiler at install time): the pure Python book
    _c = None  # type: ignore[assignment]

_IMPLEMENTATIONS: dict[str, Callable[[int, int], BookModel]] = {"python": Book}
if _c is not None:
    _IMPLEMENTATIONS["c"] = _c.Book
_current = "c" if "c" in _IMPLEMENTATIONS else "python"


def available() -> list[str]:
    """The implementations this installation has: "c" (when built) and "python"."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Make :func:`new_book` build ``name`` books ("c" or "python"); existing books stay."""
    if name not in _IMPLEMENTATIONS:
        raise ValueError(f"book implementation {name!r} is not available: {available()}")
    global _current
    _current = name


def implementation() -> str:
    """The implementation :func:`new_book` builds: "c" or "python"."""
    return _current


def new_book(exponent: int = DEFAULT_EXPONENT, journal_size: int = DEFAULT_JOURNAL) -> BookModel:
    """A new empty book of the selected implementation."""
    return _IMPLEMENTATIONS[_current](exponent, journal_size)
