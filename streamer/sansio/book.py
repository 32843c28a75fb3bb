"""One order book: two sides of price levels with exact decimal strings in and out.

Representation (chosen by measurement, see the README and benchmarks/bench_core.py):

* Each side keeps ``qty``: a dict from the price *string as received* to the quantity string as
  received. Binance spells a given price the same way everywhere (protocol §9.2), so the common
  case, updating an existing level, is one dict lookup and one store: no number parsing at all.
* Ordering lives in two parallel lists sorted by exact ``Decimal`` value: ``keys`` (the Decimals)
  and ``prices`` (the strings). Only inserting or deleting a level parses the price and bisects.
* A price that arrives in a different spelling of a level we hold ("0.35" vs "0.35000000") misses
  the dict, is parsed, and the bisect finds the existing level by value, which is then updated
  under its first spelling. Exactness never depends on the spelling; only speed does.

Nothing here is ever rounded through a binary float. Inputs are assumed validated by
:mod:`streamer.sansio.wire` (plain non-negative decimal strings).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

__all__ = ["Book", "BookSide", "is_zero"]


def is_zero(qty: str) -> bool:
    """True when a validated quantity string is zero ("0", "0.00000000", ".0")."""
    return not qty.strip("0.")


class BookSide:
    """Price levels of one side. ``descending`` puts the highest price first (bids)."""

    __slots__ = ("_keys", "_prices", "_qty", "descending")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self._qty: dict[str, str] = {}
        self._keys: list[Decimal] = []  # ascending
        self._prices: list[str] = []  # parallel to _keys

    def __len__(self) -> int:
        return len(self._qty)

    def clear(self) -> None:
        self._qty.clear()
        self._keys.clear()
        self._prices.clear()

    def load(self, levels: Iterable[Sequence[str]]) -> None:
        """Replace every level (a snapshot). Zero quantities are ignored; the last spelling wins."""
        by_value: dict[Decimal, tuple[str, str]] = {}
        for price, qty in levels:
            key = Decimal(price)
            if is_zero(qty):
                by_value.pop(key, None)
            else:
                by_value[key] = (price, qty)
        self._keys = sorted(by_value)
        self._prices = [by_value[k][0] for k in self._keys]
        self._qty = {price: qty for price, qty in by_value.values()}

    def apply(self, levels: Iterable[Sequence[str]]) -> None:
        """Set each ``[price, qty]`` to its absolute quantity; zero deletes (absent is harmless)."""
        book = self._qty
        for price, qty in levels:
            if price in book:
                # A quantity starting with 1-9 is non-zero without scanning it ("." < "0").
                if qty[0] > "0" or qty.strip("0."):
                    book[price] = qty
                else:
                    self._remove(price)
            else:
                self._set_slow(price, qty)

    def set(self, price: str, qty: str) -> None:
        """Set one level (zero deletes)."""
        self.apply(((price, qty),))

    def _remove(self, price: str) -> None:
        key = Decimal(price)
        i = bisect_left(self._keys, key)
        del self._keys[i]
        del self._prices[i]
        del self._qty[price]

    def _set_slow(self, price: str, qty: str) -> None:
        """A price string we do not hold: a new level, or another spelling of one we hold."""
        key = Decimal(price)
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            held = self._prices[i]
            if is_zero(qty):
                self._remove(held)
            else:
                self._qty[held] = qty
        elif not is_zero(qty):
            keys.insert(i, key)
            self._prices.insert(i, price)
            self._qty[price] = qty

    def get(self, price: str) -> str | None:
        """The quantity held at ``price`` (any spelling), or None."""
        qty = self._qty.get(price)
        if qty is not None:
            return qty
        key = Decimal(price)
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            return self._qty[self._prices[i]]
        return None

    def best(self) -> tuple[str, str] | None:
        prices = self._prices
        if not prices:
            return None
        price = prices[-1] if self.descending else prices[0]
        return price, self._qty[price]

    def best_key(self) -> Decimal | None:
        keys = self._keys
        if not keys:
            return None
        return keys[-1] if self.descending else keys[0]

    def top(self, n: int) -> list[tuple[str, str]]:
        """The best ``n`` levels, best first."""
        if n <= 0:
            return []
        qty = self._qty
        chosen = self._prices[: -n - 1 : -1] if self.descending else self._prices[:n]
        return [(p, qty[p]) for p in chosen]

    def levels(self) -> Iterator[tuple[Decimal, str, str]]:
        """Every level best first, as (exact value, price string, quantity string)."""
        pairs = zip(self._keys, self._prices, strict=True)
        ordered = reversed(list(pairs)) if self.descending else pairs
        qty = self._qty
        for key, price in ordered:
            yield key, price, qty[price]


class Book:
    """Bids and asks of one symbol."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(descending=True)
        self.asks = BookSide(descending=False)

    def load(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)

    def apply(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self.bids.apply(bids)
        self.asks.apply(asks)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: never valid on a synced book."""
        bid = self.bids.best_key()
        ask = self.asks.best_key()
        return bid is not None and ask is not None and bid >= ask
