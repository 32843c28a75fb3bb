"""The simulated market of the local exchange: market makers and noise traders.

Each symbol gets a :class:`SymbolSim`: a mid price that follows a slow seeded random walk inside a
band that respects the symbol's ``PRICE_FILTER``, and a typical order size that respects
``LOT_SIZE`` and clears the notional filter. :func:`plan_symbol` gives the opening book
(``levels`` one-tick levels per side around the mid); :meth:`Market.act` performs one action on
one symbol. The agents are:

* a market maker that adds orders at a uniformly drawn distance from the mid, keeping about
  ``levels`` price levels and at most about two orders per level on each side, and cancels its
  oldest order at a random level (or at the far end of a side that has grown too deep);
* a noise trader that takes liquidity with small IOC orders.

When the mid has drifted through the opposite side, a maker order crosses and trades: that is how
the book follows its mid. Every action costs O(log n) in the book size plus the fills it makes,
and nothing here depends on the number of symbols.

Agents trade through internal accounts (never user accounts) via the :class:`Venue` protocol, so
this module knows nothing about the engine's internals; the engine supplies the adapter.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Protocol

from streamer.testing.exchange.symbols import SCALE, SymbolRules

__all__ = ["Market", "SymbolSim", "Venue", "plan_symbol"]

# Action mix (per action on one side of one symbol). Tuned with tests/unit/test_engine.py so that
# depth neither collapses nor explodes over 100k actions.
_P_DRIFT = 0.05  # the mid moves one tick
_P_TAKE = 0.12  # a noise trader takes liquidity
_P_MAKE = 0.60  # below this (and above _P_TAKE) the maker adds, else it cancels
_ORDERS_PER_LEVEL = 2  # a side with more agent orders than levels * this only cancels
_BAND = 1.2  # makers quote within levels * _BAND ticks of the mid
_DEEP = 5 / 4  # a side deeper than levels * _DEEP loses its farthest order


@dataclass(slots=True)
class SymbolSim:
    """Simulation state of one symbol; prices in ticks, quantities in 1e-8 units."""

    tick: int  # units per tick
    mid: int  # ticks
    lo: int  # the mid's random walk stays in [lo, hi] (ticks)
    hi: int
    min_tick: int  # lowest legal price (ticks), >= 1
    max_tick: int  # highest legal price (ticks)
    half_spread: int  # ticks from the mid to the first level
    levels: int  # target number of levels per side (may be below the engine's for narrow bands)
    lot: int  # typical order quantity (units), a multiple of the step, >= minQty
    max_lots: int  # an order is 1..max_lots lots, so it stays <= maxQty


class Venue(Protocol):
    """What the agents need from the engine; prices in units, quantities in units."""

    def side_prices(self, symbol: str, bid: bool) -> Sequence[int]:
        """The side's price levels, ascending (so the best bid is last, the best ask first)."""
        ...

    def side_orders(self, symbol: str, bid: bool) -> int:
        """How many orders rest on the side."""
        ...

    def agent_order_at(self, symbol: str, bid: bool, price: int) -> object | None:
        """The oldest agent order resting at ``price`` on that side (opaque), if any."""
        ...

    def submit(self, symbol: str, account: int, buy: bool, price: int, qty: int, ioc: bool) -> None:
        """A LIMIT order (GTC, or IOC if ``ioc``) of an agent account; skipped if unaffordable."""
        ...

    def cancel(self, symbol: str, order: object) -> None:
        """Cancel an agent order that :meth:`agent_order_at` returned."""
        ...


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plan_symbol(
    rules: SymbolRules, rng: Random, levels: int
) -> tuple[SymbolSim, list[tuple[bool, int, int]]]:
    """A seeded simulation state and opening book ``[(is_bid, price, qty)]`` for one symbol.

    The start price: the geometric middle of ``[minPrice, maxPrice]`` when the symbol's price
    filter is a real band (the exchange centres it on the market price), otherwise a seeded
    log-uniform 5,000..50,000 ticks (a typical tick/price ratio). It is clamped so that every
    level of either side fits inside the filter, shrinking ``levels`` for very narrow bands.
    """
    tick = rules.tick or 1
    min_tick = max(1, _ceil_div(rules.min_price, tick))
    max_tick = rules.max_price // tick if rules.max_price else 10**15
    half_spread = 1
    room = (max_tick - min_tick) // 2 - half_spread - 1
    levels = max(1, min(levels, room // 2))
    band = 2 * levels + half_spread + 2  # depth plus slack for drift (ticks)
    if rules.min_price > tick and rules.max_price:
        mid = math.isqrt(min_tick * max_tick)
    else:
        mid = int(math.exp(rng.uniform(math.log(5_000), math.log(50_000))))
    lo_bound, hi_bound = min_tick + band, max_tick - band
    if lo_bound > hi_bound:  # narrow band: centre it
        lo_bound = hi_bound = (min_tick + max_tick) // 2
    mid = min(max(mid, lo_bound), hi_bound)
    lo, hi = max(lo_bound, mid * 2 // 3), min(hi_bound, mid * 3 // 2)

    price = mid * tick
    step = rules.step or 1
    # Twice the minimum notional, so that every agent order would pass the notional filter.
    lot = _ceil_div(2 * rules.min_notional * SCALE, price) if rules.min_notional else 10 * step
    lot = max(_ceil_div(lot, step) * step, rules.min_qty, step)
    max_lot = rules.max_qty // step * step if rules.max_qty else lot * 8
    if lot * 8 > max_lot:
        lot = max(step, max_lot // 8 // step * step)
    max_lots = max(1, min(8, max_lot // lot))

    sim = SymbolSim(tick, mid, lo, hi, min_tick, max_tick, half_spread, levels, lot, max_lots)
    book: list[tuple[bool, int, int]] = []
    for i in range(levels):
        book.append((True, (mid - half_spread - i) * tick, lot * rng.randint(1, max_lots)))
        book.append((False, (mid + half_spread + i) * tick, lot * rng.randint(1, max_lots)))
    return sim, book


class Market:
    """The agents; :meth:`act` performs one seeded action on one symbol."""

    def __init__(self, venue: Venue, rng: Random, *, maker: int, taker: int) -> None:
        self._venue = venue
        self._rng = rng
        self._maker = maker
        self._taker = taker

    def act(self, symbol: str, sim: SymbolSim) -> None:
        """One action: maybe drift the mid, then make, take or cancel on a random side."""
        rng = self._rng
        venue = self._venue
        if rng.random() < _P_DRIFT:
            sim.mid = min(max(sim.mid + (1 if rng.random() < 0.5 else -1), sim.lo), sim.hi)
        bid = rng.random() < 0.5
        prices = venue.side_prices(symbol, bid)
        n = len(prices)
        r = rng.random()
        if r < _P_TAKE:
            self._take(symbol, sim, bid, prices)
        elif n and venue.side_orders(symbol, bid) >= sim.levels * _ORDERS_PER_LEVEL:
            self._cancel_at(symbol, bid, prices, rng.randrange(n), 1)
        elif n < sim.levels:
            self._extend(symbol, sim, bid, prices)
        elif r < _P_MAKE:
            self._make(symbol, sim, bid)
        elif n:
            self._cancel_at(symbol, bid, prices, rng.randrange(n), 1)
        n = len(prices)
        if n > sim.levels * _DEEP:
            # The far end: the lowest bid or the highest ask.
            self._cancel_at(symbol, bid, prices, 0 if bid else n - 1, 1 if bid else -1)

    def _extend(self, symbol: str, sim: SymbolSim, bid: bool, prices: Sequence[int]) -> None:
        # A side short of levels gets a new one: a few draws for a price with no level yet
        # (bisect, O(log n)); the last draw is used even if it lands on an existing level.
        for _ in range(4):
            ticks = self._draw(sim, bid)
            i = bisect.bisect_left(prices, ticks * sim.tick)
            if i == len(prices) or prices[i] != ticks * sim.tick:
                break
        self._make(symbol, sim, bid, ticks)

    def _draw(self, sim: SymbolSim, bid: bool) -> int:
        distance = sim.half_spread + int(self._rng.random() * sim.levels * _BAND)
        return sim.mid - distance if bid else sim.mid + distance

    def _make(self, symbol: str, sim: SymbolSim, bid: bool, ticks: int | None = None) -> None:
        rng = self._rng
        if ticks is None:
            ticks = self._draw(sim, bid)
        if not sim.min_tick <= ticks <= sim.max_tick:
            return
        qty = sim.lot * rng.randint(1, sim.max_lots)
        self._venue.submit(symbol, self._maker, bid, ticks * sim.tick, qty, False)

    def _take(self, symbol: str, sim: SymbolSim, bid: bool, prices: Sequence[int]) -> None:
        # Hitting the bids means selling; the limit lets the order sweep a few levels at most.
        if not prices:
            return
        rng = self._rng
        qty = sim.lot * rng.randint(1, sim.max_lots)
        if bid:
            ticks = max(prices[-1] // sim.tick - 3, sim.min_tick)
        else:
            ticks = min(prices[0] // sim.tick + 3, sim.max_tick)
        self._venue.submit(symbol, self._taker, not bid, ticks * sim.tick, qty, True)

    def _cancel_at(
        self, symbol: str, bid: bool, prices: Sequence[int], index: int, direction: int
    ) -> None:
        # A level may hold only user orders: look at up to three levels in ``direction``.
        venue = self._venue
        for _ in range(3):
            if not 0 <= index < len(prices):
                return
            order = venue.agent_order_at(symbol, bid, prices[index])
            if order is not None:
                venue.cancel(symbol, order)
                return
            index += direction
