"""The string book of before issue 8, frozen as a baseline for ``bench_core.py`` only.

It is the book the project shipped before the exact integer book (``streamer.sansio.book`` and
its C twin), with the strict ASCII number check added and fitted to the current book protocol, so
that "today's core" is measured in the same run as its successors. Its representation was:

* Each side keeps ``qty``: a dict from the price *string as received* to the quantity string as
  received. Binance spells a given price the same way everywhere (protocol §9.2), so the common
  case, changing the quantity of a level we hold, is one dict lookup and one store: no parsing.
* Order lives in two parallel lists, ``keys`` and ``prices`` (the strings), sorted so that the
  best level is *last* on both sides (asks use negated keys). Most inserts and deletes happen near
  the top of the book, so they move few list items. Only they parse the price and bisect.
* Keys are ``float(price)``, which is ~3x cheaper to build and compare than ``Decimal``. Floats only
  ever *order* levels, they are never shown or stored as values, and rounding is monotonic, so the
  order is exact unless two different prices round to the same float (more than ~15 significant
  digits). The first time that happens the side rebuilds itself with ``Decimal`` keys for good.
* A price that arrives in another spelling of a level we hold ("0.35" vs "0.35000000") misses the
  dict; the bisect then finds the held level and compares exact values, and the level is updated
  under its first spelling. Exactness never depends on spelling; only speed does.

``apply`` validates each level in the same loop that applies it and records what it changed, so a
bad level anywhere in a diff is rolled back and never half-applied. Prices already held were
validated when inserted and are not checked again; that is what makes validation cheap enough for
the hot path. ``check`` validates without applying (for diffs buffered before a snapshot).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal

__all__ = ["Book", "BookSide", "is_zero", "valid_price", "valid_qty"]

Key = float | Decimal


def _neg_float(price: str) -> float:
    return -float(price)


def _neg_decimal(price: str) -> Decimal:
    return -Decimal(price)


def is_zero(qty: str) -> bool:
    """True when a valid quantity string is zero ("0", "0.00000000", ".0")."""
    return not qty.strip("0.")


def valid_qty(text: object) -> bool:
    """A plain non-negative decimal string: ASCII digits with at most one dot."""
    # isascii() rules out non-ASCII digits that isdigit() accepts; dropping one dot leaves only
    # digits exactly when there is at most one dot and no sign, space, exponent or underscore.
    return type(text) is str and text.isascii() and text.replace(".", "", 1).isdigit()


def valid_price(text: object) -> bool:
    """A valid quantity that is not zero: no level can sit at price 0."""
    return valid_qty(text) and not is_zero(str(text))


class BookSide:
    """Price levels of one side. ``descending`` puts the highest price first (bids)."""

    __slots__ = ("_key", "_keys", "_prices", "_qty", "descending")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self._key: Callable[[str], Key] = self._float_key()
        self._qty: dict[str, str] = {}
        self._keys: list[Key] = []  # ascending: the best level is last
        self._prices: list[str] = []  # parallel to _keys

    def __len__(self) -> int:
        return len(self._qty)

    def clear(self) -> None:
        self._qty.clear()
        self._keys.clear()
        self._prices.clear()

    def load(self, levels: Iterable[Sequence[str]]) -> None:
        """Replace every level (a snapshot); zero quantities are skipped."""
        qty_of = {price: qty for price, qty in levels if not is_zero(qty)}
        self._key = key_of = self._float_key()
        pairs = sorted((key_of(price), price) for price in qty_of)
        self._keys = [key for key, _ in pairs]
        self._prices = [price for _, price in pairs]
        self._qty = qty_of
        if len(set(self._keys)) != len(self._keys):  # a shared float: two spellings or two prices
            self._load_exact(qty_of)

    def _load_exact(self, qty_of: dict[str, str]) -> None:
        self._key = key_of = self._decimal_key()
        by_value = {key_of(price): (price, qty) for price, qty in qty_of.items()}
        ordered = sorted(by_value)
        self._keys = list(ordered)
        self._prices = [by_value[v][0] for v in ordered]
        self._qty = {price: qty for price, qty in by_value.values()}

    def check(self, levels: object) -> bool:
        """True when every level is ``[price, qty]`` with valid strings.

        Prices this side already holds are known to be valid; only new ones are checked.
        """
        book = self._qty
        try:
            for level in levels:  # type: ignore[attr-defined]
                if type(level) is not list:
                    return False
                price, qty = level
                if not (qty.isascii() and qty.replace(".", "", 1).isdigit()):
                    return False
                if price not in book and not (  # valid_price, inlined
                    type(price) is str
                    and price.isascii()
                    and price.replace(".", "", 1).isdigit()
                    and (price[0] > "0" or price.strip("0."))
                ):
                    return False
        except (TypeError, ValueError, AttributeError):
            return False
        return True

    def apply(self, levels: Iterable[Sequence[str]], undo: list[tuple[str, str | None]]) -> int:
        """Validate and apply ``[price, qty]`` levels (absolute quantities; zero deletes).

        Returns the number of levels inserted (a diff without inserts cannot cross the book), or
        -1 when a level is malformed: the levels applied before it are then still recorded in
        ``undo`` for :meth:`rollback`. Validation and application share one loop because this is
        the hot path; prices already held were validated when they were inserted.
        """
        book = self._qty
        inserted = 0
        try:
            for level in levels:
                if type(level) is not list:
                    return -1
                price, qty = level
                # isascii(): isdigit() alone accepts other scripts' digits ("١", from "\u0661").
                if not (qty.isascii() and qty.replace(".", "", 1).isdigit()):
                    return -1
                old = book.get(price)
                if old is not None:
                    undo.append((price, old))
                    # A quantity starting with 1-9 is non-zero without scanning it ("." < "0").
                    if qty[0] > "0" or qty.strip("0."):
                        book[price] = qty
                    else:
                        self._remove(price)
                elif (
                    type(price) is str
                    and price.isascii()
                    and price.replace(".", "", 1).isdigit()
                    and (price[0] > "0" or price.strip("0."))
                ):
                    inserted += self._set_slow(price, qty, undo)
                else:
                    return -1
        except (TypeError, ValueError, AttributeError):
            return -1
        return inserted

    def rollback(self, undo: list[tuple[str, str | None]]) -> None:
        """Undo what :meth:`apply` recorded, newest first."""
        for price, old in reversed(undo):
            self._set_slow(price, old or "0", [])

    def set(self, price: str, qty: str) -> None:
        """Set one level (zero deletes); the caller vouches for the strings."""
        if self.apply([[price, qty]], []) < 0:
            raise ValueError(f"invalid level {price!r} {qty!r}")

    def _remove(self, price: str) -> None:
        # Keys are unique (a shared float switches the side to Decimal keys), so the bisect
        # lands on this very level.
        i = bisect_left(self._keys, self._key(price))
        del self._keys[i]
        del self._prices[i]
        del self._qty[price]

    def _set_slow(self, price: str, qty: str, undo: list[tuple[str, str | None]]) -> int:
        """A price string we do not hold: a new level, or another spelling of one we hold.

        Returns 1 when a level was inserted.
        """
        key = self._key(price)
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            held = self._prices[i]
            if Decimal(held) != Decimal(price):  # two prices, one float: switch to exact keys
                self._use_decimal_keys()
                return self._set_slow(price, qty, undo)
            undo.append((held, self._qty[held]))
            if is_zero(qty):
                self._remove(held)
            else:
                self._qty[held] = qty
        elif not is_zero(qty):
            undo.append((price, None))
            keys.insert(i, key)
            self._prices.insert(i, price)
            self._qty[price] = qty
            return 1
        return 0

    def _float_key(self) -> Callable[[str], Key]:
        return float if self.descending else _neg_float

    def _decimal_key(self) -> Callable[[str], Key]:
        return Decimal if self.descending else _neg_decimal

    def _use_decimal_keys(self) -> None:
        self._key = key_of = self._decimal_key()
        self._keys = [key_of(p) for p in self._prices]

    def get(self, price: str) -> str | None:
        """The quantity held at ``price`` (any spelling), or None."""
        qty = self._qty.get(price)
        if qty is not None:
            return qty
        i = bisect_left(self._keys, self._key(price))
        if i < len(self._prices) and Decimal(self._prices[i]) == Decimal(price):
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


class Book:
    """Bids and asks of one symbol."""

    __slots__ = ("_undo_asks", "_undo_bids", "asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(descending=True)
        self.asks = BookSide(descending=False)
        # Reused by every apply_diff: what to restore if a later level of the diff is bad.
        self._undo_bids: list[tuple[str, str | None]] = []
        self._undo_asks: list[tuple[str, str | None]] = []

    def load(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply_diff(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> int:
        """Apply both sides of a diff: the number of levels inserted, or -1 (book unchanged)."""
        undo_bids = self._undo_bids
        undo_asks = self._undo_asks
        undo_bids.clear()
        undo_asks.clear()
        new_bids = self.bids.apply(bids, undo_bids)
        new_asks = self.asks.apply(asks, undo_asks) if new_bids >= 0 else -1
        if new_asks < 0:
            self.asks.rollback(undo_asks)
            self.bids.rollback(undo_bids)
            return -1
        return new_bids + new_asks

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: never valid on a synced book."""
        bids = self.bids
        asks = self.asks
        if not bids._keys or not asks._keys:
            return False
        if bids._key is float and asks._key is _neg_float:
            bid, ask = bids._keys[-1], -asks._keys[-1]
            if bid != ask:  # distinct floats order their decimals exactly
                return bid > ask
        return Decimal(bids._prices[-1]) >= Decimal(asks._prices[-1])
