"""The pure, seeded matching engine of the local Binance.

One book per symbol with price-time priority, accounts with free and locked balances, and a
simulated market (``market.py``) that trades on every symbol through internal accounts. Nothing
here does I/O or reads a clock: time comes in as ``now_ms``, randomness from ``random.Random``
instances seeded from the engine's ``seed``, so the same calls give the same books, trades and
events. The server steps the engine and drains its output (see ``/work/exchange-contract.md``).

Rules it implements (protocol sections in brackets):

* Orders [§4.3]: LIMIT with GTC/IOC/FOK, MARKET by ``quantity`` or ``quoteOrderQty``,
  LIMIT_MAKER (rejected with -2010 "Order would immediately match and take." when it would take,
  with no event, as Binance sends none for a rejected placement), and the stop orders below.
  Each type takes exactly the parameters of §4.3 (-1102 missing, -1106 not required); a type the
  symbol's exchangeInfo ``orderTypes`` omits is -1013 "<Type> orders are not supported for this
  symbol." (Binance's answer, seen in 2020 for STOP_LOSS: node-binance-api#200).
  Filters [§4.4] are checked exactly (``symbols.py``). Self-trade prevention is ``NONE`` only: an
  account's order may trade with its own resting order, as on Binance with STP NONE.
* Stop orders [§3.3, §4.3, trailing-stop FAQ]: STOP_LOSS and TAKE_PROFIT (``quantity``,
  ``stopPrice``; a MARKET order once triggered) and STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT (plus
  ``timeInForce`` and ``price``; a LIMIT order once triggered). ``stopPrice`` passes PRICE_FILTER;
  the market variants pass MARKET_LOT_SIZE and the notional filter at the stop price; at most
  MAX_NUM_ALGO_ORDERS of them are open per account and symbol. ``trailingDelta`` is -1013
  "Trailing stop orders are not supported for this symbol." (not implemented; every symbol
  serves ``"allowTrailingStop": false``). Triggering is on the symbol's last trade price: a SELL
  STOP_LOSS or BUY TAKE_PROFIT when a trade is at or below the stop, a BUY STOP_LOSS or SELL
  TAKE_PROFIT when one is at or above it. A stop the last price already reached at placement is
  -2010 "Order would trigger immediately." (reject reason STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY,
  which Binance shows in ``r`` only on cancel-replace reports, so no event). A waiting stop is an
  open order (NEW, ``isWorking`` false, ``workingTime`` -1; its executionReport ``w`` false, ``P``
  its stop, no ``W``) that is not in the book. Every trade is checked against the waiting stops
  at the end of the engine operation that made it, whether a user's order or the simulated
  market's: any trade of the operation at or through a stop triggers it (not only the last), the
  nearest stop first, then the oldest. A triggered order gets an executionReport NEW again, now
  with ``w`` true (false for the market variants, as for any MARKET order) and ``W``, and trades
  at once; its trades may trigger further stops, all in the same operation. (Binance has no
  TRIGGERED execution type, and ``w`` / ``W`` are "on the book" and "working since": the enums,
  ``user-data-stream.md`` and the FIX ``WorkingIndicator`` / ``WorkingTime``; no recorded
  trigger is among the real captures.)
* Matching: best price first, then time (first in, first filled) within a price level. A fill
  trades at the resting (maker) order's price.
* Balances: placing a LIMIT order locks what it needs (a BUY locks ``ceil8(price * qty)`` of the
  quote asset, a SELL locks ``qty`` of the base asset); MARKET orders spend free balance directly.
  Stop orders lock from placement, as Binance holds their funds ("locked" while they wait): a
  SELL its quantity, a BUY its cost at its limit price, or at its stop price for the market
  variants, whose fill prices are unknown until they trigger; at the trigger a market variant
  releases its lock and spends free balance like any MARKET order (a BUY that cannot pay the
  book's prices then expires unfilled, ``eR`` REJECTED). A fill moves ``floor8(price * qty)``
  of quote from buyer to seller. After every fill a resting BUY keeps exactly
  ``ceil8(price * remaining)`` locked and the excess returns to free; so an account's locked
  balance always equals what its open orders need.
* Commissions [§3.3, §4.3, commission FAQ]: each user account has a maker and a taker rate
  (Binance's default 0.001 each unless :meth:`Engine.create_account` is given others, e.g.
  :data:`NO_FEES`); the simulated market's agents pay none. A fill's commission is the rate (maker
  for the resting order, taker for the incoming one) times what the account receives: the
  quantity of base for the buyer, the quote amount for the seller, rounded half up to 8
  decimals (``baseCommissionPrecision`` / ``quoteCommissionPrecision`` are 8; the FAQ's worked
  example rounds 0.040229875 to 0.04022988 and 0.0001547303 to 0.00015473: neither floor nor
  ceiling). It is deducted from what is received and paid into an internal fee account
  (:attr:`Engine.fee_account`), so every asset's total over all accounts stays conserved
  exactly. It shows in ``n`` / ``N`` (the asset received, even when the amount is 0), the FULL
  fills and myTrades; the account and ``computeCommissionRates`` answers show the rates.
* Klines [§4.3]: every fill is also counted in its symbol's candles (``klines.py``).
* Depth updates [§1.5.1, §2.1]: every engine operation that changes a book advances that symbol's
  update id by exactly 1. :meth:`Engine.drain` coalesces the changes since the previous drain into
  one :class:`DepthDiff` per symbol, with ``first_update_id == previous last_update_id + 1``, the
  final absolute quantity of each changed price, ``"0.00000000"`` for a removed level.
  With ``skip_ids=True`` (the futures venues, §2.2) an operation advances the id by a seeded 1-3
  instead, so ids are not contiguous between diffs: ``first_update_id`` is the id of the diff's
  first operation and ``prev_update_id`` (the futures ``pu``) the previous diff's
  ``last_update_id``, which is what continuity is checked with there.
* User events [§3.3, §9.10]: only user accounts (:meth:`Engine.create_account`) get them:
  ``executionReport`` NEW (and NEW again when a stop triggers), TRADE per fill, CANCELED (``C``
  the original client order id, ``c`` the cancel's id), EXPIRED for the unfilled rest of
  IOC/FOK/MARKET orders; one
  ``outboundAccountPosition`` per operation per account whose balances changed; ``balanceUpdate``
  for deposits.
* Ids: order ids and trade ids increase per symbol; execution ids (``I``) increase engine-wide.
  A client order id must be unique among the account's OPEN orders (any symbol); the id of a
  filled, expired or cancelled order may be reused. A cancel's ``newClientOrderId`` names the
  cancel only: order queries keep showing the original ``clientOrderId``.
* Every symbol given to the engine trades, whatever its exchangeInfo ``status`` (433 of the real
  symbols say ``BREAK``): the local exchange simulates them all.

Books are seeded lazily: a symbol's opening book is built from its own seeded random stream the
first time anything looks at it (a snapshot, an order, or the simulation picking it), so building
an engine with all 1,695 symbols is instant and the book a symbol opens with does not depend on
when it is first used. Seeding emits no diff: the opening book is the state at the symbol's first
``last_update_id``, and every later change is in the diffs.

Prices, quantities and balances are integers counting 1e-8 units inside (see ``symbols.py``);
``Decimal`` in, 8-decimal strings out.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random
from types import MappingProxyType
from typing import Any, Final

from streamer.testing.exchange.klines import INTERVALS, Tape
from streamer.testing.exchange.klines import klines as build_klines
from streamer.testing.exchange.market import Market, SymbolSim, plan_symbol
from streamer.testing.exchange.symbols import (
    SCALE,
    EngineError,
    SymbolInfo,
    SymbolRules,
    fmt,
    fmt_units,
    from_units,
    to_units,
)

__all__ = [
    "DEFAULT_COMMISSION",
    "NO_FEES",
    "Commission",
    "DepthDiff",
    "Engine",
    "EngineError",
    "EngineOutput",
    "Snapshot",
    "SymbolInfo",
    "TradeEvent",
    "UserEvent",
    "fmt",
]

_ZERO: Final = "0.00000000"
_BUY: Final = "BUY"
_SELL: Final = "SELL"
_LIMIT: Final = "LIMIT"
_MARKET: Final = "MARKET"
_LIMIT_MAKER: Final = "LIMIT_MAKER"
_STOP_LOSS: Final = "STOP_LOSS"
_STOP_LOSS_LIMIT: Final = "STOP_LOSS_LIMIT"
_TAKE_PROFIT: Final = "TAKE_PROFIT"
_TAKE_PROFIT_LIMIT: Final = "TAKE_PROFIT_LIMIT"
_STOP_TYPES: Final = frozenset({_STOP_LOSS, _STOP_LOSS_LIMIT, _TAKE_PROFIT, _TAKE_PROFIT_LIMIT})
# Order types that execute as a MARKET order (the stop market variants once triggered).
_MARKET_TYPES: Final = frozenset({_MARKET, _STOP_LOSS, _TAKE_PROFIT})
_ORDER_TYPES: Final = frozenset({_LIMIT, _MARKET, _LIMIT_MAKER} | _STOP_TYPES)
# "<name> orders are not supported for this symbol." (errors.md), for types exchangeInfo omits.
_TYPE_NAMES: Final = {
    _LIMIT: "Limit",
    _MARKET: "Market",
    _LIMIT_MAKER: "Limit maker",
    _STOP_LOSS: "Stop loss",
    _STOP_LOSS_LIMIT: "Stop loss limit",
    _TAKE_PROFIT: "Take profit",
    _TAKE_PROFIT_LIMIT: "Take profit limit",
}
_GTC: Final = "GTC"
_IOC: Final = "IOC"
_FOK: Final = "FOK"
_RESP_TYPES: Final = ("ACK", "RESULT", "FULL")
_CLIENT_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,36}")
_CLIENT_ID_ALPHABET: Final = string.ascii_letters + string.digits
_MAKER_ACCOUNT: Final = -1
_TAKER_ACCOUNT: Final = -2
_FEE_ACCOUNT: Final = -3  # receives every commission, so that each asset's total is conserved
_HALF: Final = SCALE // 2
_NO_TRADE: Final = 1 << 62  # an operation's lowest trade price before its first trade
DEFAULT_COMMISSION: Final = Decimal("0.001")
"""Binance's default spot maker and taker commission rate (0.1%), for accounts that set none."""
# Internal agents start with 10^10 of every asset: far more than they can trade away in any run,
# yet finite, so conservation checks cover them like any other account.
_AGENT_BALANCE: Final = 10**10 * SCALE


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commission:
    """An account's commission rates: fractions of what a fill gives it (0.001 is 0.1%).

    ``maker`` applies to the fills of its resting orders, ``taker`` to the fills of its orders
    that take liquidity. Each is in ``[0, 1)`` with at most 8 decimals.
    """

    maker: Decimal = DEFAULT_COMMISSION
    taker: Decimal = DEFAULT_COMMISSION


NO_FEES: Final = Commission(Decimal(0), Decimal(0))


@dataclass(frozen=True)
class DepthDiff:
    """All book changes of one symbol since the last drain (final absolute qty per price)."""

    symbol: str
    first_update_id: int
    last_update_id: int
    time_ms: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    prev_update_id: int = 0  # last_update_id of the symbol's previous diff (futures ``pu``)


@dataclass(frozen=True)
class Snapshot:
    """A book at ``last_update_id``: levels best first."""

    symbol: str
    last_update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    time_ms: int = 0  # when the book last changed (0: never since it opened)


@dataclass(frozen=True)
class TradeEvent:
    """One fill; the fills of one taker order (same ``taker_order_id``) form one aggTrade."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    time_ms: int
    buyer_order_id: int
    seller_order_id: int
    buyer_is_maker: bool
    taker_order_id: int


@dataclass(frozen=True)
class UserEvent:
    """A user-data event payload (protocol §3.3) for one user account."""

    account_id: int
    event: dict[str, Any]


@dataclass
class EngineOutput:
    """Everything since the previous :meth:`Engine.drain`, in engine order."""

    diffs: list[DepthDiff] = field(default_factory=list)
    trades: list[TradeEvent] = field(default_factory=list)
    user_events: list[UserEvent] = field(default_factory=list)


# --- internal state --------------------------------------------------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class _Order:
    """One order; prices and quantities in units. Agent orders use the same class."""

    __slots__ = (
        "account",
        "buy",
        "client_id",
        "cum_quote",
        "down",
        "executed",
        "expiry",
        "kind",
        "left",
        "lock",
        "market",
        "order_id",
        "pending",
        "price",
        "qty",
        "quote_qty",
        "status",
        "stop",
        "tif",
        "time",
        "update_time",
        "work_time",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        buy: bool,
        kind: str,
        tif: str,
        price: int,
        qty: int,
        client_id: str,
        now: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.buy = buy
        self.kind = kind
        self.tif = tif
        self.price = price  # 0 for MARKET
        self.qty = qty
        self.left = qty
        self.lock = 0  # what this order holds locked (quote if buy, base if sell)
        self.client_id = client_id
        self.time = now
        self.update_time = now
        self.status = "NEW"
        self.executed = 0
        self.cum_quote = 0
        self.quote_qty = 0  # quoteOrderQty, 0 if none
        self.expiry = "NONE"
        self.market = kind in _MARKET_TYPES  # executes as a MARKET order (no price, no resting)
        self.stop = 0  # stopPrice, 0 if none
        self.pending = False  # a stop order waiting for its trigger (not working, not in a book)
        self.down = False  # a pending stop triggers when the price falls to its stop (else rises)
        self.work_time = now  # when it started working; -1 while a stop order waits


class _Level:
    __slots__ = ("orders", "qty")

    def __init__(self) -> None:
        self.qty = 0
        # Time priority: oldest first. A list, not a dict: most levels hold one to three orders,
        # and a list costs a quarter of the memory of a dict, which matters with 1,695 books.
        self.orders: list[_Order] = []


class _Side:
    __slots__ = ("changed", "count", "levels", "prices")

    def __init__(self) -> None:
        self.count = 0  # resting orders
        self.prices: list[int] = []  # ascending for both sides: best bid last, best ask first
        self.levels: dict[int, _Level] = {}
        self.changed: set[int] = set()  # prices changed since the last drain


class _Book:
    __slots__ = (
        "asks",
        "base",
        "bids",
        "change_time",
        "drained_id",
        "first_id",
        "last_price",
        "next_order_id",
        "next_trade_id",
        "op_changed",
        "op_high",
        "op_low",
        "quote",
        "rules",
        "sim",
        "stops_down",
        "stops_up",
        "symbol",
        "tape",
        "update_id",
    )

    def __init__(self, rules: SymbolRules, sim: SymbolSim, rng: Random) -> None:
        self.rules = rules
        self.symbol = rules.info.symbol
        self.base = rules.info.base_asset
        self.quote = rules.info.quote_asset
        self.sim = sim
        self.bids = _Side()
        self.asks = _Side()
        self.update_id = rng.randrange(10**6, 10**8)
        self.drained_id = self.update_id
        self.first_id = 0  # id of the first operation since the last drain
        self.next_order_id = rng.randrange(10**6, 10**8)
        self.next_trade_id = rng.randrange(10**5, 10**7)
        self.last_price = sim.mid * sim.tick
        self.change_time = 0
        self.op_changed = False
        # The lowest and highest trade price of the current operation (stop triggers).
        self.op_low = _NO_TRADE
        self.op_high = -1
        # Pending stop orders, next to trigger first: stops_down triggers when the price falls
        # to the stop (highest stop first), stops_up when it rises to it (lowest first); ties
        # go to the older order.
        self.stops_down: list[_Order] = []
        self.stops_up: list[_Order] = []
        self.tape = Tape()  # the symbol's trades as candles (klines.py)


def _down_key(order: _Order) -> tuple[int, int]:
    return (-order.stop, order.order_id)


def _up_key(order: _Order) -> tuple[int, int]:
    return (order.stop, order.order_id)


class _Account:
    __slots__ = (
        "account_id",
        "free",
        "history",
        "last_cid",
        "locked",
        "maker_rate",
        "open",
        "open_cids",
        "orders",
        "taker_rate",
        "trades",
        "user",
    )

    def __init__(self, account_id: int, user: bool) -> None:
        self.account_id = account_id
        self.user = user
        # Commission rates in 1e-8 units (0.001 is 100_000); the internal accounts pay none.
        self.maker_rate = 0
        self.taker_rate = 0
        self.free: dict[str, int] = {}
        self.locked: dict[str, int] = {}
        # Order bookkeeping, for user accounts only (agents' orders live in the books alone).
        self.open: dict[tuple[str, int], _Order] = {}
        self.open_cids: dict[str, _Order] = {}
        self.orders: dict[tuple[str, int], _Order] = {}
        self.last_cid: dict[tuple[str, str], _Order] = {}
        self.history: dict[str, list[_Order]] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}


class _AgentVenue:
    """The :class:`~streamer.testing.exchange.market.Venue` the simulated agents trade on."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def side_prices(self, symbol: str, bid: bool) -> Sequence[int]:
        book = self._engine._books[symbol]
        assert book is not None
        return (book.bids if bid else book.asks).prices

    def side_orders(self, symbol: str, bid: bool) -> int:
        book = self._engine._books[symbol]
        assert book is not None
        return (book.bids if bid else book.asks).count

    def agent_order_at(self, symbol: str, bid: bool, price: int) -> object | None:
        book = self._engine._books[symbol]
        assert book is not None
        accounts = self._engine._accounts
        for order in (book.bids if bid else book.asks).levels[price].orders:
            if not accounts[order.account].user:
                return order
        return None

    def submit(self, symbol: str, account: int, buy: bool, price: int, qty: int, ioc: bool) -> None:
        self._engine._agent_submit(symbol, account, buy, price, qty, ioc)

    def cancel(self, symbol: str, order: object) -> None:
        engine = self._engine
        book = engine._books[symbol]
        assert book is not None and isinstance(order, _Order)
        engine._cancel_resting(book, order, engine._now, None)
        engine._end_op(book, engine._now)


# --- the engine ------------------------------------------------------------------------------


class Engine:
    """Books, accounts and the simulated market; see the module docstring for the rules."""

    def __init__(
        self,
        symbols: Sequence[SymbolInfo],
        *,
        seed: int,
        levels: int = 100,
        skip_ids: bool = False,
    ) -> None:
        """``skip_ids``: advance update ids by a seeded 1-3 per operation (futures, §2.2)."""
        if not symbols:
            raise ValueError("an engine needs at least one symbol")
        self.symbols: Mapping[str, SymbolInfo] = MappingProxyType({s.symbol: s for s in symbols})
        self._seed = seed
        self._levels = levels
        self._rng = Random(seed)
        self._cid_rng = Random(f"{seed}:client-order-ids")
        self._rules = {s.symbol: SymbolRules.from_info(s) for s in symbols}
        self._names = list(self.symbols)
        self._books: dict[str, _Book | None] = dict.fromkeys(self._names)
        self._seeded = 0
        self._accounts: dict[int, _Account] = {}
        self._next_account = 1
        self._exec_id = Random(f"{seed}:execution-ids").randrange(10**6, 10**8)
        # Its own stream, so that spot and futures books open and trade alike for one seed.
        self._id_steps = Random(f"{seed}:update-id-steps") if skip_ids else None
        self._now = 0
        self._dirty: dict[str, _Book] = {}
        self._trades: list[TradeEvent] = []
        self._events: list[UserEvent] = []
        self._positions: dict[int, dict[str, None]] = {}  # user account -> assets changed
        assets = sorted({a for s in symbols for a in (s.base_asset, s.quote_asset)})
        for account_id in (_MAKER_ACCOUNT, _TAKER_ACCOUNT):
            agent = _Account(account_id, user=False)
            agent.free = dict.fromkeys(assets, _AGENT_BALANCE)
            agent.locked = dict.fromkeys(assets, 0)
            self._accounts[account_id] = agent
        self._fees = self._accounts[_FEE_ACCOUNT] = _Account(_FEE_ACCOUNT, user=False)
        self._market = Market(
            _AgentVenue(self), self._rng, maker=_MAKER_ACCOUNT, taker=_TAKER_ACCOUNT
        )

    # --- accounts ----------------------------------------------------------------------------

    def create_account(
        self, balances: Mapping[str, Decimal], commission: Commission | None = None
    ) -> int:
        """A new user account holding ``balances`` (free); its id. User accounts get events.

        ``commission``: its rates, Binance's default 0.1% maker and taker when None
        (:data:`NO_FEES` for none); ``ValueError`` for a rate outside ``[0, 1)`` or with more
        than 8 decimals.
        """
        account = _Account(self._next_account, user=True)
        commission = Commission() if commission is None else commission
        for name, rate in (("maker", commission.maker), ("taker", commission.taker)):
            try:
                units = to_units(Decimal(rate), f"{name} commission")
            except EngineError as exc:
                raise ValueError(exc.msg) from None
            if not 0 <= units < SCALE:
                raise ValueError(f"{name} commission must be in [0, 1): {rate}")
            setattr(account, f"{name}_rate", units)
        for asset, amount in balances.items():
            units = to_units(amount, "amount")
            if units < 0:
                raise ValueError(f"negative opening balance for {asset}")
            account.free[asset] = units
            account.locked[asset] = 0
        self._accounts[account.account_id] = account
        self._next_account += 1
        return account.account_id

    def account_ids(self) -> list[int]:
        """Every account id: the internal accounts (negative: the agents and the fee account)
        and the user accounts."""
        return list(self._accounts)

    @property
    def fee_account(self) -> int:
        """The internal account every commission is paid into (see the module docstring)."""
        return _FEE_ACCOUNT

    def commission(self, account_id: int) -> Commission:
        """The account's commission rates. KeyError if unknown."""
        account = self._accounts[account_id]
        return Commission(from_units(account.maker_rate), from_units(account.taker_rate))

    def commission_rates_for_order(self, account_id: int) -> dict[str, Any]:
        """The ``computeCommissionRates`` answer of ``/api/v3/order/test`` (protocol §4.3).

        The standard rates are the account's; no special or tax commission is charged and there
        is no BNB discount, so those parts are zero and the discount is off.
        """
        account = self._accounts[account_id]
        zero = {"maker": _ZERO, "taker": _ZERO}
        return {
            "standardCommissionForOrder": {
                "maker": fmt_units(account.maker_rate),
                "taker": fmt_units(account.taker_rate),
            },
            "specialCommissionForOrder": dict(zero),
            "taxCommissionForOrder": dict(zero),
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": _ZERO,
            },
        }

    def balances(self, account_id: int) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked) for every asset the account has held. KeyError if unknown."""
        account = self._accounts[account_id]
        return {
            asset: (from_units(free), from_units(account.locked.get(asset, 0)))
            for asset, free in account.free.items()
        }

    def deposit(self, account_id: int, asset: str, amount: Decimal, now_ms: int) -> None:
        """Credit (or, if negative, debit) free balance; emits balanceUpdate + position."""
        account = self._accounts[account_id]
        units = to_units(amount, "amount")
        free = account.free.get(asset, 0)
        if free + units < 0:
            raise EngineError(-2010, "Account has insufficient balance for requested action.")
        account.free[asset] = free + units
        account.locked.setdefault(asset, 0)
        if account.user:
            event = {
                "e": "balanceUpdate",
                "E": now_ms,
                "a": asset,
                "d": fmt_units(units),
                "T": now_ms,
            }
            self._events.append(UserEvent(account_id, event))
            self._touch(account, asset)
            self._flush_positions(now_ms)

    # --- orders ------------------------------------------------------------------------------

    def place_order(
        self,
        account_id: int,
        *,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal | None,
        price: Decimal | None,
        time_in_force: str | None,
        client_order_id: str | None,
        quote_order_qty: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_delta: int | None = None,
        resp_type: str | None = None,
        now_ms: int,
        test: bool = False,
    ) -> dict[str, Any]:
        """Validate and place an order; the REST response of protocol §4.3 (``{}`` if ``test``).

        Errors, in the order Binance checks them: parameters (-1117, -1116, -1115, -1102, -1106,
        -1100, -1111, -1013 "Invalid ..."), what the symbol allows (-1013 "... orders are not
        supported for this symbol."), filters (-1013 "Filter failure: ..."), then the engine
        (-2010: duplicate client id among open orders, LIMIT_MAKER that would take, a stop that
        would trigger immediately, insufficient balance). ``test=True`` stops after the
        filters, as ``/order/test`` does.
        """
        book = self._book(symbol)
        account = self._accounts[account_id]
        rules = book.rules
        if side not in (_BUY, _SELL):
            raise EngineError(-1117, "Invalid side.")
        if order_type not in _ORDER_TYPES:
            raise EngineError(-1116, "Invalid orderType.")
        if resp_type is None:
            resp_type = "FULL" if order_type in (_LIMIT, _MARKET) else "ACK"
        elif resp_type not in _RESP_TYPES:
            raise EngineError(-1130, "Invalid data sent for a parameter.")
        tif = _validate_params(
            order_type, quantity, price, time_in_force, quote_order_qty, stop_price, trailing_delta
        )
        if client_order_id is not None:
            _check_client_id(client_order_id, "newClientOrderId")

        qty = to_units(quantity, "quantity") if quantity is not None else 0
        limit = to_units(price, "price") if price is not None else 0
        quote_qty = to_units(quote_order_qty, "quoteOrderQty") if quote_order_qty is not None else 0
        stop = to_units(stop_price, "stopPrice") if stop_price is not None else 0
        if quantity is not None and qty <= 0:
            raise EngineError(-1013, "Invalid quantity.")
        if price is not None and limit <= 0:
            raise EngineError(-1013, "Invalid price.")
        if quote_order_qty is not None and quote_qty <= 0:
            raise EngineError(-1013, "Invalid quoteOrderQty.")
        if stop_price is not None and stop <= 0:
            raise EngineError(-1013, "Invalid stopPrice.")
        if order_type not in rules.order_types:
            raise EngineError(
                -1013, f"{_TYPE_NAMES[order_type]} orders are not supported for this symbol."
            )
        if trailing_delta is not None:
            # Trailing stops are not implemented: every symbol says "allowTrailingStop": false.
            raise EngineError(-1013, "Trailing stop orders are not supported for this symbol.")
        is_stop = order_type in _STOP_TYPES
        if order_type == _MARKET:
            if quote_order_qty is not None:
                if not rules.quote_order_qty_market_allowed:
                    raise EngineError(
                        -1013, "Quote order qty market orders are not support for this symbol."
                    )
                rules.check_quote_notional(quote_qty, market=True)
            else:
                rules.check_quantity(qty, market=True)
                rules.check_notional(book.last_price, qty, market=True)
        elif order_type in _MARKET_TYPES:  # STOP_LOSS, TAKE_PROFIT: a MARKET order at the stop
            rules.check_price(stop)
            rules.check_quantity(qty, market=True)
            rules.check_notional(stop, qty, market=True)
        else:
            rules.check_price(limit)
            if is_stop:
                rules.check_price(stop)
            rules.check_quantity(qty, market=False)
            rules.check_notional(limit, qty, market=False)
        if is_stop and rules.max_algo_orders:
            algo = sum(
                1 for (s, _), o in account.open.items() if s == symbol and o.kind in _STOP_TYPES
            )
            if algo >= rules.max_algo_orders:
                raise EngineError(-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
        if test:
            return {}

        now = now_ms
        self._now = now
        buy = side == _BUY
        if client_order_id is not None and client_order_id in account.open_cids:
            raise EngineError(-2010, "Duplicate order sent.")
        if order_type == _LIMIT_MAKER and self._crosses(book, buy, limit):
            raise EngineError(-2010, "Order would immediately match and take.")
        # A SELL STOP_LOSS or BUY TAKE_PROFIT triggers when the last price falls to the stop,
        # the other two when it rises to it (trailing-stop FAQ table).
        down = (order_type in (_STOP_LOSS, _STOP_LOSS_LIMIT)) != buy
        if is_stop and (book.last_price <= stop if down else book.last_price >= stop):
            raise EngineError(-2010, "Order would trigger immediately.")
        asset = book.quote if buy else book.base
        fok_fails = False
        if order_type == _MARKET:
            walked_qty, walked_cost = self._walk(book, buy, 0, qty, quote_qty)
            if quote_qty:
                qty = walked_qty  # the quantity a quoteOrderQty buys or sells, known upfront
                need = walked_cost if buy else walked_qty
            else:
                need = walked_cost if buy else qty
            lock = 0
        elif is_stop:
            # Locked from placement, as on Binance: a SELL its quantity, a BUY its cost at the
            # limit price, or at the stop price for the market variants (their price is unknown
            # until they trigger; see _trigger).
            reference = stop if order_type in _MARKET_TYPES else limit
            need = lock = _ceil_div(reference * qty, SCALE) if buy else qty
        else:
            need = lock = _ceil_div(limit * qty, SCALE) if buy else qty
            if tif == _FOK:
                fok_fails = self._walk(book, buy, limit, qty, 0)[0] < qty
        if account.free.get(asset, 0) < need:
            raise EngineError(-2010, "Account has insufficient balance for requested action.")

        if client_order_id is None:
            client_order_id = self._new_client_id(account)
        order = _Order(
            book.next_order_id, account_id, buy, order_type, tif, limit, qty, client_order_id, now
        )
        book.next_order_id += 1
        order.quote_qty = quote_qty
        if lock:
            self._lock(account, asset, order, lock)
        fills: list[tuple[int, int, int, int]] = []
        if is_stop:
            order.stop = stop
            order.down = down
            order.pending = True
            order.work_time = -1
            if account.user:
                self._register(account, book.symbol, order)
                self._report(order, book, "NEW", working=False)
            if down:
                bisect.insort(book.stops_down, order, key=_down_key)
            else:
                bisect.insort(book.stops_up, order, key=_up_key)
            self._end_op(book, now)
            return self._order_response(book, order, resp_type, fills, now)
        if account.user:
            self._register(account, book.symbol, order)
            self._report(order, book, "NEW", working=order_type != _MARKET)
        if fok_fails:
            self._expire(book, order, "UNFILLED_FOK_ORDER_EXPIRED")
        elif not qty:  # a quoteOrderQty that buys or sells nothing on the current book
            self._expire(book, order, "INSUFFICIENT_LIQUIDITY")
        else:
            self._execute(book, order, fills)
        self._end_op(book, now)
        return self._order_response(book, order, resp_type, fills, now)

    def cancel_order(
        self,
        account_id: int,
        *,
        symbol: str,
        order_id: int | None,
        orig_client_order_id: str | None,
        new_client_order_id: str | None,
        now_ms: int,
    ) -> dict[str, Any]:
        """Cancel an open order; the REST cancel response (protocol §4.3).

        ``new_client_order_id`` (generated when None) is the cancel's own id: the response and
        the CANCELED executionReport carry it as ``clientOrderId`` / ``c``, and the original id as
        ``origClientOrderId`` / ``C``. Unknown, filled or cancelled orders: -2011.
        """
        book = self._book(symbol)
        account = self._accounts[account_id]
        if order_id is None and orig_client_order_id is None:
            raise EngineError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if new_client_order_id is not None:
            _check_client_id(new_client_order_id, "newClientOrderId")
        order: _Order | None
        if order_id is not None:
            order = account.open.get((symbol, order_id))
            if (
                order is not None
                and orig_client_order_id is not None
                and order.client_id != orig_client_order_id
            ):
                order = None
        else:
            assert orig_client_order_id is not None
            order = account.open_cids.get(orig_client_order_id)
            if order is not None and (account.open.get((symbol, order.order_id)) is not order):
                order = None
        if order is None:
            raise EngineError(-2011, "Unknown order sent.")
        self._now = now_ms
        cancel_id = new_client_order_id or self._new_client_id(account)
        self._cancel_resting(book, order, now_ms, cancel_id)
        self._end_op(book, now_ms)
        response = {
            "symbol": book.symbol,
            "origClientOrderId": order.client_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id,
            "transactTime": now_ms,
            **self._order_numbers(order),
        }
        if order.kind in _STOP_TYPES:  # a conditional field, there for stop orders only
            response["stopPrice"] = fmt_units(order.stop)
        response["selfTradePreventionMode"] = "NONE"
        return response

    def get_order(
        self,
        account_id: int,
        *,
        symbol: str,
        order_id: int | None,
        orig_client_order_id: str | None,
    ) -> dict[str, Any]:
        """The order query response (protocol §4.3 ``GET /api/v3/order``); -2013 if unknown.

        By client id, the open order with that id wins, else the latest order that had it.
        """
        book = self._book(symbol)
        account = self._accounts[account_id]
        if order_id is None and orig_client_order_id is None:
            raise EngineError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order: _Order | None
        if order_id is not None:
            order = account.orders.get((symbol, order_id))
            if (
                order is not None
                and orig_client_order_id is not None
                and order.client_id != orig_client_order_id
            ):
                raise EngineError(-2039, "Client order id is not valid.")
        else:
            assert orig_client_order_id is not None
            order = account.open_cids.get(orig_client_order_id)
            if order is None or account.open.get((symbol, order.order_id)) is not order:
                order = account.last_cid.get((symbol, orig_client_order_id))
        if order is None:
            raise EngineError(-2013, "Order does not exist.")
        return self._query_dict(book, order)

    def open_orders(self, account_id: int, symbol: str | None) -> list[dict[str, Any]]:
        """Open orders of the account (one symbol or all), oldest first, as query dicts.

        For the internal agent accounts this scans the books: meant for tests, not hot paths.
        """
        account = self._accounts[account_id]
        if symbol is not None:
            self._book(symbol)
        if not account.user:
            return self._agent_open_orders(account_id, symbol)
        out = []
        for (sym, _), order in account.open.items():
            if symbol is None or sym == symbol:
                book = self._books[sym]
                assert book is not None
                out.append(self._query_dict(book, order))
        return out

    def all_orders(
        self,
        account_id: int,
        *,
        symbol: str,
        order_id: int | None = None,
        limit: int | None = 500,
    ) -> list[dict[str, Any]]:
        """The account's orders of ``symbol``: from ``order_id`` on, else the latest ``limit``.

        ``limit=None`` means all of them; the REST layer enforces Binance's maximum of 1000.
        """
        book = self._book(symbol)
        history = self._accounts[account_id].history.get(symbol, [])
        if order_id is not None:
            history = history[bisect.bisect_left(history, order_id, key=lambda o: o.order_id) :]
            chosen = history if limit is None else history[: max(limit, 1)]
        else:
            chosen = history if limit is None else history[-max(limit, 1) :]
        return [self._query_dict(book, order) for order in chosen]

    def my_trades(
        self,
        account_id: int,
        *,
        symbol: str,
        order_id: int | None = None,
        from_id: int | None = None,
        limit: int | None = 500,
    ) -> list[dict[str, Any]]:
        """The account's trades of ``symbol`` (``GET /api/v3/myTrades`` rows), oldest first.

        ``limit=None`` means all of them; the REST layer enforces Binance's maximum of 1000.
        """
        self._book(symbol)
        rows: list[dict[str, Any]] = self._accounts[account_id].trades.get(symbol, [])
        if order_id is not None:
            rows = [row for row in rows if row["orderId"] == order_id]
        if from_id is not None:
            rows = rows[bisect.bisect_left(rows, from_id, key=lambda row: int(row["id"])) :]
            rows = rows if limit is None else rows[: max(limit, 1)]
        elif limit is not None:
            rows = rows[-max(limit, 1) :]
        return [dict(row) for row in rows]

    # --- market data -------------------------------------------------------------------------

    def snapshot(self, symbol: str, limit: int) -> Snapshot:
        """The top ``limit`` levels per side at the CURRENT update id (maybe ahead of drains)."""
        book = self._book(symbol)
        limit = max(limit, 0)
        bids, asks = book.bids, book.asks
        bid_prices = bids.prices[: -limit - 1 : -1] if limit else []
        return Snapshot(
            book.symbol,
            book.update_id,
            [(fmt_units(p), fmt_units(bids.levels[p].qty)) for p in bid_prices],
            [(fmt_units(p), fmt_units(asks.levels[p].qty)) for p in asks.prices[:limit]],
            book.change_time,
        )

    def full_book(self, symbol: str) -> Snapshot:
        """Every level of the book at the current update id."""
        book = self._book(symbol)
        return self.snapshot(symbol, max(len(book.bids.prices), len(book.asks.prices)))

    @property
    def seeded_books(self) -> int:
        """How many books have been seeded (built) so far."""
        return self._seeded

    def last_update_id(self, symbol: str) -> int:
        """The symbol's current update id."""
        return self._book(symbol).update_id

    def last_price(self, symbol: str) -> str:
        """The last trade price (the opening mid until the first trade)."""
        return fmt_units(self._book(symbol).last_price)

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
        now_ms: int,
    ) -> list[list[Any]]:
        """``GET /api/v3/klines`` rows built from the symbol's trades (``klines.py``).

        -1121 for an unknown symbol, -1120 for an interval Binance does not have.
        """
        book = self._book(symbol)
        if interval not in INTERVALS:
            raise EngineError(-1120, "Invalid interval.")
        return build_klines(
            book.tape,
            interval,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            now_ms=now_ms,
        )

    # --- simulation --------------------------------------------------------------------------

    def step(self, now_ms: int, actions: int = 1) -> None:
        """Let the simulated agents perform ``actions`` actions on seeded random symbols."""
        self._now = now_ms
        rng = self._rng
        names = self._names
        market = self._market
        for _ in range(actions):
            book = self._book(names[int(rng.random() * len(names))])
            market.act(book.symbol, book.sim)

    def drain(self) -> EngineOutput:
        """Everything since the previous drain: one diff per changed symbol, trades, events."""
        diffs = []
        for book in self._dirty.values():
            bids, asks = book.bids, book.asks
            diffs.append(
                DepthDiff(
                    book.symbol,
                    book.first_id,
                    book.update_id,
                    book.change_time,
                    _changes(bids, sorted(bids.changed, reverse=True)),
                    _changes(asks, sorted(asks.changed)),
                    book.drained_id,
                )
            )
            bids.changed.clear()
            asks.changed.clear()
            book.drained_id = book.update_id
        out = EngineOutput(diffs, self._trades, self._events)
        self._dirty = {}
        self._trades = []
        self._events = []
        return out

    # --- books -------------------------------------------------------------------------------

    def _book(self, symbol: str) -> _Book:
        try:
            book = self._books[symbol]
        except KeyError:
            raise EngineError(-1121, "Invalid symbol.") from None
        if book is None:
            book = self._books[symbol] = self._seed_book(symbol)
            self._seeded += 1
        return book

    def _seed_book(self, symbol: str) -> _Book:
        # The symbol's own random stream: the opening book is the same whenever it is built.
        rng = Random(f"{self._seed}:{symbol}")
        rules = self._rules[symbol]
        sim, plan = plan_symbol(rules, rng, self._levels)
        book = _Book(rules, sim, rng)
        maker = self._accounts[_MAKER_ACCOUNT]
        for bid, price, qty in plan:
            order = _Order(book.next_order_id, _MAKER_ACCOUNT, bid, _LIMIT, _GTC, price, qty, "", 0)
            book.next_order_id += 1
            asset = book.quote if bid else book.base
            self._lock(maker, asset, order, _ceil_div(price * qty, SCALE) if bid else qty)
            self._rest(book, order)
        book.bids.changed.clear()
        book.asks.changed.clear()
        book.op_changed = False
        return book

    def _rest(self, book: _Book, order: _Order) -> None:
        side = book.bids if order.buy else book.asks
        price = order.price
        level = side.levels.get(price)
        if level is None:
            level = side.levels[price] = _Level()
            bisect.insort(side.prices, price)
        level.orders.append(order)
        side.count += 1
        level.qty += order.left
        side.changed.add(price)
        book.op_changed = True

    def _unrest(self, book: _Book, order: _Order) -> None:
        side = book.bids if order.buy else book.asks
        price = order.price
        level = side.levels[price]
        level.orders.remove(order)
        side.count -= 1
        level.qty -= order.left
        if not level.orders:
            del side.levels[price]
            del side.prices[bisect.bisect_left(side.prices, price)]
        side.changed.add(price)
        book.op_changed = True

    @staticmethod
    def _crosses(book: _Book, buy: bool, price: int) -> bool:
        if buy:
            asks = book.asks.prices
            return bool(asks) and asks[0] <= price
        bids = book.bids.prices
        return bool(bids) and bids[-1] >= price

    def _walk(self, book: _Book, buy: bool, limit: int, qty: int, quote: int) -> tuple[int, int]:
        """(quantity, cost) an order would fill now, without changing anything.

        ``limit`` 0 = no price limit; ``quote`` > 0 = a quoteOrderQty budget instead of ``qty``
        (then each level takes whole steps whose cost fits the remaining budget).
        """
        side = book.asks if buy else book.bids
        prices: Iterable[int] = side.prices if buy else reversed(side.prices)
        step = book.rules.market_step or book.rules.step or 1
        filled = cost = 0
        for price in prices:
            if limit and (price > limit if buy else price < limit):
                break
            available = side.levels[price].qty
            if quote:
                take = min(available, (quote - cost) * SCALE // price // step * step)
                if not take:
                    break
            else:
                take = min(available, qty - filled)
            filled += take
            cost += price * take // SCALE
            if not quote and filled == qty:
                break
        return filled, cost

    # --- matching ----------------------------------------------------------------------------

    def _execute(
        self, book: _Book, order: _Order, fills: list[tuple[int, int, int, int]] | None
    ) -> None:
        """Match ``order``, then finish, expire or rest what is left of it."""
        self._match(book, order, fills)
        if not order.left:
            self._finish(book, order)
        elif order.market:
            self._expire(book, order, "INSUFFICIENT_LIQUIDITY")
        elif order.tif != _GTC:
            reason = (
                "UNFILLED_FOK_ORDER_EXPIRED"
                if order.tif == _FOK
                else "UNFILLED_IOC_QUANTITY_EXPIRED"
            )
            self._expire(book, order, reason)
        else:
            if order.buy:
                self._relock(book, order)
            self._rest(book, order)

    def _match(
        self, book: _Book, taker: _Order, fills: list[tuple[int, int, int, int]] | None
    ) -> None:
        side = book.asks if taker.buy else book.bids
        prices = side.prices
        levels = side.levels
        limit = taker.price
        buy = taker.buy
        while taker.left and prices:
            best = prices[0] if buy else prices[-1]
            if limit and (best > limit if buy else best < limit):
                break
            level = levels[best]
            resting = level.orders
            while taker.left and resting:
                maker = resting[0]
                qty = min(taker.left, maker.left)
                self._fill(book, taker, maker, best, qty, fills)
                level.qty -= qty
                if not maker.left:
                    del resting[0]
                    side.count -= 1
                    self._finish(book, maker)
            side.changed.add(best)
            book.op_changed = True
            if not resting:
                del levels[best]
                if buy:
                    del prices[0]
                else:
                    prices.pop()

    def _fill(
        self,
        book: _Book,
        taker: _Order,
        maker: _Order,
        price: int,
        qty: int,
        fills: list[tuple[int, int, int, int]] | None,
    ) -> None:
        """Move the balances of one fill and record it; ``maker`` stays in its level.

        The buyer receives ``qty`` of base and the seller ``floor8(price * qty)`` of quote, each
        less its commission (rate times what it receives, rounded half up to 8 decimals), which
        goes to the fee account.
        """
        quote_qty = price * qty // SCALE
        base, quote = book.base, book.quote
        accounts = self._accounts
        taker_account = accounts[taker.account]
        maker_account = accounts[maker.account]
        if taker.buy:
            buyer, seller, buyer_account, seller_account = (
                taker,
                maker,
                taker_account,
                maker_account,
            )
            buyer_rate, seller_rate = taker_account.taker_rate, maker_account.maker_rate
        else:
            buyer, seller, buyer_account, seller_account = (
                maker,
                taker,
                maker_account,
                taker_account,
            )
            buyer_rate, seller_rate = maker_account.maker_rate, taker_account.taker_rate
        buyer_fee = (qty * buyer_rate + _HALF) // SCALE if buyer_rate else 0
        seller_fee = (quote_qty * seller_rate + _HALF) // SCALE if seller_rate else 0
        # The buyer pays quote: from its lock (LIMIT) or from free (MARKET); receives base.
        if buyer.market:
            buyer_account.free[quote] = buyer_account.free.get(quote, 0) - quote_qty
        else:
            buyer.lock -= quote_qty
            buyer_account.locked[quote] -= quote_qty
        buyer_account.free[base] = buyer_account.free.get(base, 0) + qty - buyer_fee
        # The seller delivers base the same way and receives quote.
        if seller.market:
            seller_account.free[base] = seller_account.free.get(base, 0) - qty
        else:
            seller.lock -= qty
            seller_account.locked[base] -= qty
        seller_account.free[quote] = seller_account.free.get(quote, 0) + quote_qty - seller_fee
        if buyer_fee or seller_fee:
            fees = self._fees.free
            fees[base] = fees.get(base, 0) + buyer_fee
            fees[quote] = fees.get(quote, 0) + seller_fee
        for order in (taker, maker):
            order.left -= qty
            order.executed += qty
            order.cum_quote += quote_qty
            order.update_time = self._now
            order.status = "FILLED" if not order.left else "PARTIALLY_FILLED"
        if maker.buy:
            self._relock(book, maker)
        trade_id = book.next_trade_id
        book.next_trade_id += 1
        book.last_price = price
        if price < book.op_low:
            book.op_low = price
        if price > book.op_high:
            book.op_high = price
        book.tape.add(self._now, price, qty, quote_qty, taker.buy)
        self._trades.append(
            TradeEvent(
                book.symbol,
                trade_id,
                fmt_units(price),
                fmt_units(qty),
                self._now,
                buyer.order_id,
                seller.order_id,
                maker.buy,
                taker.order_id,
            )
        )
        taker_fee, maker_fee = (buyer_fee, seller_fee) if taker.buy else (seller_fee, buyer_fee)
        if fills is not None:
            fills.append((price, qty, trade_id, taker_fee))
        for order, account, is_maker, fee in (
            (taker, taker_account, False, taker_fee),
            (maker, maker_account, True, maker_fee),
        ):
            if account.user:
                working = bool(order.left) and not order.market and order.tif == _GTC
                self._report(
                    order,
                    book,
                    "TRADE",
                    working=working,
                    last_qty=qty,
                    last_price=price,
                    last_quote=quote_qty,
                    trade_id=trade_id,
                    maker=is_maker,
                    commission=fee,
                )
                self._trade_row(
                    book, order, account, trade_id, price, qty, quote_qty, is_maker, fee
                )
                self._touch(account, base)
                self._touch(account, quote)

    def _lock(self, account: _Account, asset: str, order: _Order, amount: int) -> None:
        account.free[asset] -= amount
        account.locked[asset] = account.locked.get(asset, 0) + amount
        order.lock = order.lock + amount if order.lock else amount  # shares the int object
        self._touch(account, asset)

    def _relock(self, book: _Book, order: _Order) -> None:
        """A BUY keeps exactly ceil8(price * left) locked; the excess goes back to free."""
        excess = order.lock - _ceil_div(order.price * order.left, SCALE)
        if excess:
            account = self._accounts[order.account]
            account.locked[book.quote] -= excess
            account.free[book.quote] += excess
            order.lock -= excess
            self._touch(account, book.quote)

    def _release(self, book: _Book, order: _Order) -> None:
        if order.lock:
            account = self._accounts[order.account]
            asset = book.quote if order.buy else book.base
            account.locked[asset] -= order.lock
            account.free[asset] += order.lock
            order.lock = 0
            self._touch(account, asset)

    def _finish(self, book: _Book, order: _Order) -> None:
        """A FILLED order: return any lock left (price improvement) and close it."""
        self._release(book, order)
        self._close(book, order)

    def _expire(self, book: _Book, order: _Order, reason: str) -> None:
        self._release(book, order)
        order.status = "EXPIRED"
        order.expiry = reason
        order.update_time = self._now
        self._close(book, order)
        if self._accounts[order.account].user:
            self._report(order, book, "EXPIRED", working=False)

    def _cancel_resting(self, book: _Book, order: _Order, now: int, cancel_id: str | None) -> None:
        if order.pending:
            self._unstop(book, order)  # not in the book: no book change, no update id
        else:
            self._unrest(book, order)
        self._release(book, order)
        order.status = "CANCELED"
        order.update_time = now
        self._close(book, order)
        if self._accounts[order.account].user:
            assert cancel_id is not None
            self._report(
                order, book, "CANCELED", working=False, client_id=cancel_id, orig=order.client_id
            )

    def _close(self, book: _Book, order: _Order) -> None:
        account = self._accounts[order.account]
        if account.user:
            account.open.pop((book.symbol, order.order_id), None)
            if account.open_cids.get(order.client_id) is order:
                del account.open_cids[order.client_id]

    def _register(self, account: _Account, symbol: str, order: _Order) -> None:
        key = (symbol, order.order_id)
        account.open[key] = order
        account.open_cids[order.client_id] = order
        account.orders[key] = order
        account.last_cid[(symbol, order.client_id)] = order
        account.history.setdefault(symbol, []).append(order)

    def _agent_submit(
        self, symbol: str, account_id: int, buy: bool, price: int, qty: int, ioc: bool
    ) -> None:
        book = self._books[symbol]
        assert book is not None
        account = self._accounts[account_id]
        asset = book.quote if buy else book.base
        need = _ceil_div(price * qty, SCALE) if buy else qty
        if account.free.get(asset, 0) < need:
            return
        order = _Order(
            book.next_order_id, account_id, buy, _LIMIT, _IOC if ioc else _GTC, price, qty, "", 0
        )
        order.time = order.update_time = self._now
        book.next_order_id += 1
        self._lock(account, asset, order, need)
        self._execute(book, order, None)
        self._end_op(book, self._now)

    def _end_op(self, book: _Book, now: int) -> None:
        """Close one engine operation: stops its trades triggered, one update id if the book
        changed, then positions."""
        if book.op_high >= 0:
            if book.stops_down or book.stops_up:
                self._run_stops(book)
            book.op_low = _NO_TRADE
            book.op_high = -1
        if book.op_changed:
            book.op_changed = False
            steps = self._id_steps
            book.update_id += 1 if steps is None else 1 + int(steps.random() * 3)
            book.change_time = now
            if book.symbol not in self._dirty:
                self._dirty[book.symbol] = book
                book.first_id = book.update_id
        if self._positions:
            self._flush_positions(now)

    # --- stop orders -------------------------------------------------------------------------

    def _run_stops(self, book: _Book) -> None:
        """Trigger every pending stop that a trade of this operation reached, one at a time.

        A stop triggers when any trade of the operation traded at or through it (the lowest
        price for stops_down, the highest for stops_up), not only the last one: a sweep through
        several levels triggers every stop it passed. A triggered order trades at once, and its
        trades may trigger further stops (a cascade), all inside the same operation.
        """
        down, up = book.stops_down, book.stops_up
        while True:
            if down and down[0].stop >= book.op_low:
                order = down.pop(0)
            elif up and up[0].stop <= book.op_high:
                order = up.pop(0)
            else:
                return
            self._trigger(book, order)

    def _trigger(self, book: _Book, order: _Order) -> None:
        """A stop order starts working: a LIMIT at its price (its time in force) or a MARKET.

        It is reported with an executionReport ``x=NEW``, ``X=NEW`` that now carries ``w=true``
        (``false`` for the market variants, as for any MARKET order) and the working time
        ``W`` (why this is Binance's report: the module docstring); its fills follow as TRADE
        reports. The market variants release their lock
        and spend free balance like a MARKET order; a BUY whose free balance cannot pay for the
        quantity at the book's prices expires unfilled (``eR`` REJECTED).
        """
        now = self._now
        order.pending = False
        order.work_time = order.update_time = now
        user = self._accounts[order.account].user
        if order.market:
            self._release(book, order)
        if user:
            self._report(order, book, "NEW", working=not order.market)
        if order.market and order.buy:
            cost = self._walk(book, True, 0, order.left, 0)[1]
            if self._accounts[order.account].free.get(book.quote, 0) < cost:
                self._expire(book, order, "REJECTED")
                return
        if (
            order.tif == _FOK
            and self._walk(book, order.buy, order.price, order.left, 0)[0] < order.left
        ):
            self._expire(book, order, "UNFILLED_FOK_ORDER_EXPIRED")
            return
        self._execute(book, order, None)

    def _unstop(self, book: _Book, order: _Order) -> None:
        """Take a pending stop out of its trigger list."""
        stops, key = (book.stops_down, _down_key) if order.down else (book.stops_up, _up_key)
        index = bisect.bisect_left(stops, key(order), key=key)
        assert stops[index] is order
        del stops[index]

    # --- user events and responses -----------------------------------------------------------

    def _touch(self, account: _Account, asset: str) -> None:
        if account.user:
            self._positions.setdefault(account.account_id, {})[asset] = None

    def _flush_positions(self, now: int) -> None:
        for account_id, assets in self._positions.items():
            account = self._accounts[account_id]
            balances = [
                {
                    "a": asset,
                    "f": fmt_units(account.free.get(asset, 0)),
                    "l": fmt_units(account.locked.get(asset, 0)),
                }
                for asset in assets
            ]
            event = {"e": "outboundAccountPosition", "E": now, "u": now, "B": balances}
            self._events.append(UserEvent(account_id, event))
        self._positions = {}

    def _report(
        self,
        order: _Order,
        book: _Book,
        execution: str,
        *,
        working: bool,
        last_qty: int = 0,
        last_price: int = 0,
        last_quote: int = 0,
        trade_id: int = -1,
        maker: bool = False,
        client_id: str | None = None,
        orig: str = "",
        commission: int = 0,
    ) -> None:
        """Emit an executionReport with every field of protocol §3.3, typed as in §9.10.

        ``W`` (working time) is there once the order works: not while a stop order waits.
        """
        self._exec_id += 1
        event: dict[str, Any] = {
            "e": "executionReport",
            "E": self._now,
            "s": book.symbol,
            "c": client_id if client_id is not None else order.client_id,
            "S": _BUY if order.buy else _SELL,
            "o": order.kind,
            "f": order.tif,
            "q": fmt_units(order.qty),
            "p": fmt_units(order.price),
            "P": fmt_units(order.stop),
            "F": _ZERO,
            "g": -1,
            "C": orig,
            "x": execution,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": fmt_units(last_qty),
            "z": fmt_units(order.executed),
            "L": fmt_units(last_price),
            # The fill's commission, in the asset received. Like Binance, a fill names that
            # asset even when the amount is zero; reports without a fill carry "0" and null.
            "n": fmt_units(commission) if trade_id >= 0 else "0",
            "N": (book.base if order.buy else book.quote) if trade_id >= 0 else None,
            "T": self._now,
            "t": trade_id,
            "I": self._exec_id,
            "w": working,
            "m": maker,
            "M": execution == "TRADE",
            "O": order.time,
            "Z": fmt_units(order.cum_quote),
            "Y": fmt_units(last_quote),
            "Q": fmt_units(order.quote_qty),
        }
        if order.work_time >= 0:
            event["W"] = order.work_time
        event["V"] = "NONE"
        if execution == "EXPIRED":
            event["eR"] = order.expiry
        self._events.append(UserEvent(order.account, event))

    def _trade_row(
        self,
        book: _Book,
        order: _Order,
        account: _Account,
        trade_id: int,
        price: int,
        qty: int,
        quote_qty: int,
        is_maker: bool,
        commission: int,
    ) -> None:
        account.trades.setdefault(book.symbol, []).append(
            {
                "symbol": book.symbol,
                "id": trade_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": fmt_units(price),
                "qty": fmt_units(qty),
                "quoteQty": fmt_units(quote_qty),
                "commission": fmt_units(commission),
                "commissionAsset": book.base if order.buy else book.quote,
                "time": self._now,
                "isBuyer": order.buy,
                "isMaker": is_maker,
                "isBestMatch": True,
            }
        )

    @staticmethod
    def _order_numbers(order: _Order) -> dict[str, Any]:
        return {
            "price": fmt_units(order.price),
            "origQty": fmt_units(order.qty),
            "executedQty": fmt_units(order.executed),
            "origQuoteOrderQty": fmt_units(order.quote_qty),
            "cummulativeQuoteQty": fmt_units(order.cum_quote),
            "status": order.status,
            "timeInForce": order.tif,
            "type": order.kind,
            "side": _BUY if order.buy else _SELL,
        }

    def _order_response(
        self,
        book: _Book,
        order: _Order,
        resp_type: str,
        fills: list[tuple[int, int, int, int]],
        now: int,
    ) -> dict[str, Any]:
        response: dict[str, Any] = {
            "symbol": book.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "transactTime": now,
        }
        if resp_type == "ACK":
            return response
        response.update(self._order_numbers(order))
        if order.kind in _STOP_TYPES:
            response["stopPrice"] = fmt_units(order.stop)
        response["workingTime"] = order.work_time
        if order.status == "EXPIRED":
            response["expiryReason"] = order.expiry
        response["selfTradePreventionMode"] = "NONE"
        if resp_type == "FULL":
            commission_asset = book.base if order.buy else book.quote
            response["fills"] = [
                {
                    "price": fmt_units(price),
                    "qty": fmt_units(qty),
                    "commission": fmt_units(fee),
                    "commissionAsset": commission_asset,
                    "tradeId": trade_id,
                }
                for price, qty, trade_id, fee in fills
            ]
        return response

    def _query_dict(self, book: _Book, order: _Order) -> dict[str, Any]:
        numbers = self._order_numbers(order)
        out: dict[str, Any] = {
            "symbol": book.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "price": numbers["price"],
            "origQty": numbers["origQty"],
            "executedQty": numbers["executedQty"],
            "cummulativeQuoteQty": numbers["cummulativeQuoteQty"],
            "status": order.status,
            "timeInForce": order.tif,
            "type": order.kind,
            "side": numbers["side"],
            "stopPrice": fmt_units(order.stop),
            "icebergQty": _ZERO,
            "time": order.time,
            "updateTime": order.update_time,
            "isWorking": order.work_time >= 0,  # a stop order works once triggered
            "workingTime": order.work_time,
            "origQuoteOrderQty": numbers["origQuoteOrderQty"],
            "selfTradePreventionMode": "NONE",
        }
        if order.status == "EXPIRED":
            out["expiryReason"] = order.expiry
        return out

    def _agent_open_orders(self, account_id: int, symbol: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in [symbol] if symbol is not None else self._names:
            book = self._books[name]
            if book is None:
                continue
            orders = [
                o
                for side in (book.bids, book.asks)
                for level in side.levels.values()
                for o in level.orders
                if o.account == account_id
            ]
            out.extend(self._query_dict(book, o) for o in sorted(orders, key=lambda o: o.order_id))
        return out

    def _new_client_id(self, account: _Account) -> str:
        while True:
            candidate = "".join(self._cid_rng.choices(_CLIENT_ID_ALPHABET, k=22))
            if candidate not in account.open_cids:
                return candidate


def _changes(side: _Side, prices: list[int]) -> list[tuple[str, str]]:
    levels = side.levels
    out = []
    for price in prices:
        level = levels.get(price)
        out.append((fmt_units(price), fmt_units(level.qty) if level is not None else _ZERO))
    return out


def _check_client_id(value: str, param: str) -> None:
    if not value:
        raise EngineError(-1118, "New client order ID was empty.")
    if not _CLIENT_ID.fullmatch(value):
        raise EngineError(
            -1100,
            f"Illegal characters found in parameter '{param}'; legal range is "
            "'^[a-zA-Z0-9-_.]{1,36}$'.",
        )


def _mandatory(param: str) -> EngineError:
    return EngineError(
        -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def _not_required(param: str) -> EngineError:
    return EngineError(-1106, f"Parameter '{param}' sent when not required.")


def _validate_params(
    order_type: str,
    quantity: Decimal | None,
    price: Decimal | None,
    time_in_force: str | None,
    quote_order_qty: Decimal | None,
    stop_price: Decimal | None = None,
    trailing_delta: int | None = None,
) -> str:
    """Check which parameters the order type needs (protocol §4.3); its time in force.

    LIMIT: timeInForce, quantity, price. LIMIT_MAKER: quantity, price. MARKET: quantity or
    quoteOrderQty. STOP_LOSS / TAKE_PROFIT: quantity, stopPrice or trailingDelta.
    STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT: timeInForce, quantity, price, stopPrice or
    trailingDelta. Anything else sent is -1106.
    """
    is_stop = order_type in _STOP_TYPES
    if not is_stop:
        if stop_price is not None:
            raise _not_required("stopPrice")
        if trailing_delta is not None:
            raise _not_required("trailingDelta")
    if order_type in (_LIMIT, _STOP_LOSS_LIMIT, _TAKE_PROFIT_LIMIT):
        if time_in_force is None:
            raise _mandatory("timeInForce")
        if time_in_force not in (_GTC, _IOC, _FOK):
            raise EngineError(-1115, "Invalid timeInForce.")
        tif = time_in_force
    elif time_in_force is not None:
        raise _not_required("timeInForce")
    else:
        tif = _GTC
    if order_type == _MARKET:
        if price is not None:
            raise _not_required("price")
        if quantity is None and quote_order_qty is None:
            raise EngineError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if quantity is not None and quote_order_qty is not None:
            raise _not_required("quoteOrderQty")
        return tif
    if quantity is None:
        raise _mandatory("quantity")
    if order_type in _MARKET_TYPES:
        if price is not None:
            raise _not_required("price")
    elif price is None:
        raise _mandatory("price")
    if quote_order_qty is not None:
        raise _not_required("quoteOrderQty")
    if is_stop and stop_price is None and trailing_delta is None:
        raise EngineError(
            -1102, "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!"
        )
    return tif
