"""The pure order tracker: our orders, the account's other orders, their fills and the balances
(protocol §3.3, §3.4, §4.3, §5.4; design §4.5).

Feed it facts, drain its events. Facts are the placement protocol's local decisions
(:meth:`~OrderTracker.create`, :meth:`~OrderTracker.unknown`, :meth:`~OrderTracker.not_placed`,
:meth:`~OrderTracker.rejected`), REST / WS-API order objects (place, cancel and query answers,
openOrders rows), user-stream events and the reconciliation snapshots (openOrders, myTrades,
account). :meth:`~OrderTracker.events` hands out, in the order they happened, one
:class:`OrderUpdate` per change of an order, one :class:`Fill` per trade, one :class:`Balance`
per asset that changed and the :class:`Reconciled` markers.

Rules, with the protocol section each implements:

=====================  ==========================================================================
one table              every legal status change is a row of ``TRANSITIONS`` below; a fact that
                       asks for any other change is stale: counted in ``stale_ignored``, ignored
                       (design §3 rule 2)
terminal is final      FILLED, CANCELED, REJECTED, EXPIRED, EXPIRED_IN_MATCH have no row out
                       (§3.3 "Terminal statuses"). NOT_PLACED has rows out to the states that
                       prove the order existed: the exchange reporting it is a correction
                       (counted in ``corrections``; §5.4 step 3 says -2013 is never conclusive)
newer fact wins        facts about one order are ordered by (executed qty, exchange time): a fact
                       with a lower ``z``, or the same ``z`` and an older time, never overwrites
                       the one held (§3.4 step 2: ``z`` only grows, older ``T``/``E`` ignored).
                       Times: executionReport ``T`` (else ``E``), REST ``updateTime`` (else
                       ``transactTime``). So ``executed_qty`` never decreases
either order           the REST answer and the executionReport of one change may come in either
                       order (§8 item 10): the second one finds the change made and is a
                       confirmation (not counted)
fills once             a trade is reported once, whichever source shows it first: REST FULL
                       ``fills`` (``tradeId``), executionReport with ``x == "TRADE"`` (``t``),
                       myTrades rows (``id``); a stale fact's fill is still new (§3.3
                       "Deduplicating fills"). The key is (symbol, orderId, trade id): a
                       self-trade (STP NONE) is one trade id with a fill on each of two orders
cancel ids             an executionReport with ``x=CANCELED`` names the cancel's id in ``c`` and
                       the order's in ``C``; a REST cancel answer the cancel's in
                       ``clientOrderId``, the order's in ``origClientOrderId``. The order keeps
                       its own id (§3.3 "Cancel ID semantics")
keys                   an order is found by (symbol, orderId) once known; before that (SENT,
                       UNKNOWN, NOT_PLACED: no orderId yet) by its client id and symbol (§3.3)
foreign orders         an order of the account we did not place is tracked from the first fact
                       about it, stream or snapshot alike (§3.4)
balances               outboundAccountPosition: absolute per asset, ignored for an asset whose
                       held time is newer than ``u``; balanceUpdate: a delta on free, ignored
                       when its ``T`` is not newer than the held time (the absolute position
                       that already counts it came first); account snapshot: absolute with its
                       ``updateTime``, an asset it leaves out is zero (§3.3, §3.4, §4.3)
bad input              a malformed fact (missing field, wrong type, unparsable or negative
                       number, unknown status) is counted in ``malformed`` and changes nothing;
                       an unknown event type is counted in ``unknown_events``. Never raises
                       (design §3 rule 1)
=====================  ==========================================================================

Only a row of the table changes an order, and every change emits exactly one OrderUpdate. A fact
that repeats the held status and executed quantity changes nothing, except that a live state may
be refreshed by a strictly newer fact that changes something else (a keep-priority amend,
``x=REPLACED``, lowers ``q`` at the same ``z``).

A fact's fills are emitted before the OrderUpdate it causes, so whoever sees an order's update
has seen the fills that led to it. A myTrades row of an order not tracked (yet) is reported under
client order id ``"#<orderId>"`` (see :meth:`~OrderTracker.untracked_trade_orders`).

An ACK answer (no ``status``) says the engine accepted the order: it reads as NEW with nothing
executed at its ``transactTime``, which is true then and older than anything that followed.

Pure: no clock, no I/O; nothing here raises on exchange misbehaviour. The caller misusing it
(creating an order under the id of an open one, declaring an id it never created unknown) raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from enum import Enum
from typing import Any, Final

from streamer.order_models import (
    TERMINAL,
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderUpdate,
    Reconciled,
    Source,
)

__all__ = [
    "EXCHANGE_STATES",
    "TRANSITIONS",
    "Move",
    "OrderTracker",
    "TrackerCounters",
]

_S = OrderStatus
SENT, UNKNOWN, NOT_PLACED = _S.SENT, _S.UNKNOWN, _S.NOT_PLACED
PENDING_NEW, NEW, PARTIALLY_FILLED, PENDING_CANCEL = (
    _S.PENDING_NEW,
    _S.NEW,
    _S.PARTIALLY_FILLED,
    _S.PENDING_CANCEL,
)
FILLED, CANCELED, REJECTED = _S.FILLED, _S.CANCELED, _S.REJECTED
EXPIRED, EXPIRED_IN_MATCH = _S.EXPIRED, _S.EXPIRED_IN_MATCH

#: The statuses the exchange reports (protocol §3.3 ``X``); SENT, UNKNOWN, NOT_PLACED are ours.
EXCHANGE_STATES: Final = frozenset(
    {PENDING_NEW, NEW, PARTIALLY_FILLED, PENDING_CANCEL, *(TERMINAL - {NOT_PLACED})}
)
#: How a live order ends once it is on the book: REJECTED is only ever a placement's outcome.
_ENDS = frozenset({FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH})


class Move(Enum):
    """How a row of the table is taken."""

    STEP = "step"  # a status change: applied unless the fact is older than the one held
    AGAIN = "again"  # the same live status: applied only when strictly newer and it changes
    CORRECTION = "correction"  # NOT_PLACED was wrong: applied and counted
    LOCAL = "local"  # only our own decisions take it (the exchange never reports the target)


# The rows, with why each is there (protocol sections):
# * SENT: the placement is in flight. Its REST answer or an executionReport, whichever comes
#   first, moves it to what the exchange says (§3.3, §4.3); our own definite error
#   (OrderRejected) to REJECTED; a timeout, 5xx, -1006, -1007 or a connection lost after sending
#   to UNKNOWN (§5.4).
# * UNKNOWN: resolved by its executionReport or a query (§5.4 step 2), or, after the query kept
#   answering -2013 long enough, declared NOT_PLACED (§5.4 step 3).
# * NOT_PLACED: -2013 is never conclusive (§5.4 step 3): the exchange reporting the order proves
#   it existed, a correction. Not to REJECTED: that says "not placed" too, so nothing is wrong.
# * PENDING_NEW: a pending leg of an order list (§3.3): placed once the working leg fills (NEW,
#   fills, or REJECTED when it cannot be placed) or ended with its list.
# * NEW, PARTIALLY_FILLED: fills, cancel, expiry; any step may be skipped (a missed report).
#   The same state again: another fill (z grows), a keep-priority amend (x=REPLACED, q lower),
#   or a stop order triggered (w false -> true, §3.3; the report is NEW again).
# * PENDING_CANCEL ("currently unused", §3.3): a fill while pending keeps it pending; then ends.
_ROWS: Final[list[tuple[OrderStatus, frozenset[OrderStatus], Move]]] = [
    # from             to                                           move
    (SENT,             frozenset({UNKNOWN}),                        Move.LOCAL),
    (SENT,             EXCHANGE_STATES,                             Move.STEP),
    (UNKNOWN,          frozenset({NOT_PLACED}),                     Move.LOCAL),
    (UNKNOWN,          EXCHANGE_STATES,                             Move.STEP),
    (NOT_PLACED,       EXCHANGE_STATES - {REJECTED},                Move.CORRECTION),
    (PENDING_NEW,      frozenset({PENDING_NEW}),                    Move.AGAIN),
    (PENDING_NEW,      EXCHANGE_STATES - {PENDING_NEW},             Move.STEP),
    (NEW,              frozenset({NEW}),                            Move.AGAIN),
    (NEW,              _ENDS | {PARTIALLY_FILLED, PENDING_CANCEL},  Move.STEP),
    (PARTIALLY_FILLED, frozenset({PARTIALLY_FILLED}),               Move.AGAIN),
    (PARTIALLY_FILLED, _ENDS | {PENDING_CANCEL},                    Move.STEP),
    (PENDING_CANCEL,   frozenset({PENDING_CANCEL}),                 Move.AGAIN),
    (PENDING_CANCEL,   _ENDS,                                       Move.STEP),
    # FILLED, CANCELED, REJECTED, EXPIRED, EXPIRED_IN_MATCH: terminal, no row out (§3.3)
]  # fmt: skip

#: Every legal change: (from, to) -> how it is taken. Terminal states have no row out.
TRANSITIONS: Final[dict[tuple[OrderStatus, OrderStatus], Move]] = {
    (source, target): move for source, targets, move in _ROWS for target in targets
}

_STATUS_BY_NAME: Final = {status.value: status for status in EXCHANGE_STATES}
_LOCAL_FROM: Final = frozenset({SENT, UNKNOWN})  # our own decisions start from these only
_WAITING: Final = frozenset({SENT, UNKNOWN, NOT_PLACED})  # ours, with no orderId known yet
_ZERO: Final = Decimal(0)
#: Sums of balances are exact (the default context rounds to 28 digits) and cannot overflow.
_EXACT: Final = Context(prec=100, Emax=MAX_EMAX, Emin=MIN_EMIN)


@dataclass(slots=True)
class TrackerCounters:
    """What the tracker ignored or corrected, for the caller to report."""

    malformed: int = 0  # facts that could not be parsed: nothing changed
    duplicate_fills: int = 0  # a trade already reported, seen again
    stale_ignored: int = 0  # facts older than the state held, or asking for an illegal change
    corrections: int = 0  # NOT_PLACED orders the exchange then reported
    unknown_events: int = 0  # user-stream event types not tracked here (listStatus, ...)


class _Malformed(Exception):
    """A fact that cannot be parsed (internal: turned into a count, never raised out)."""


# --- parsing -----------------------------------------------------------------------------------


def _text(m: Mapping[str, Any], key: str) -> str:
    value = m.get(key)
    if type(value) is not str:
        raise _Malformed(key)
    return value


def _opt_text(m: Mapping[str, Any], key: str) -> str | None:
    value = m.get(key)
    if value is None or type(value) is str:
        return value
    raise _Malformed(key)


def _int(m: Mapping[str, Any], key: str) -> int:
    value = m.get(key)
    if type(value) is not int:  # bool is not an int here
        raise _Malformed(key)
    return value


def _opt_int(m: Mapping[str, Any], key: str) -> int | None:
    value = m.get(key)
    if value is None or type(value) is int:
        return value
    raise _Malformed(key)


def _opt_bool(m: Mapping[str, Any], key: str) -> bool | None:
    value = m.get(key)
    if value is None or type(value) is bool:
        return value
    raise _Malformed(key)


def _number(value: object, key: str) -> Decimal:
    """An exact finite decimal from Binance's string spelling (or an int); never via a float."""
    if type(value) is str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise _Malformed(key) from None
        if not number.is_finite():
            raise _Malformed(key)
        return number
    if type(value) is int:
        return Decimal(value)
    raise _Malformed(key)


def _amount(m: Mapping[str, Any], key: str) -> Decimal:
    """A price or quantity: present and not negative."""
    number = _number(m.get(key), key)
    if number < _ZERO:
        raise _Malformed(key)
    return number


def _opt_amount(m: Mapping[str, Any], key: str) -> Decimal | None:
    value = m.get(key)
    return None if value is None else _amount(m, key)


def _opt_price(m: Mapping[str, Any], key: str) -> Decimal | None:
    """An order's price or stop price: Binance spells "not set" as zero."""
    value = m.get(key)
    if value is None:
        return None
    number = _amount(m, key)
    return number if number else None


def _opt_quote(m: Mapping[str, Any], key: str) -> Decimal | None:
    """Cumulative quote qty: negative means "not available" on old orders (protocol §4.3)."""
    value = m.get(key)
    if value is None:
        return None
    number = _number(value, key)
    return number if number >= _ZERO else None


def _status(m: Mapping[str, Any], key: str) -> OrderStatus:
    value = m.get(key)
    status = _STATUS_BY_NAME.get(value) if type(value) is str else None
    if status is None:
        raise _Malformed(key)
    return status


def _reason(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and candidate != "NONE":
            return candidate
    return None


class _Fact:
    """One exchange fact about one order, parsed and checked before anything changes."""

    __slots__ = (
        "client_order_id",
        "cumulative_quote_qty",
        "executed_qty",
        "order_id",
        "price",
        "quantity",
        "reason",
        "side",
        "status",
        "stop_price",
        "symbol",
        "time",
        "time_in_force",
        "type",
        "working",
    )

    def __init__(
        self,
        *,
        symbol: str,
        order_id: int,
        client_order_id: str,
        status: OrderStatus,
        executed_qty: Decimal,
        time: int | None,
        side: str | None = None,
        type: str | None = None,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: str | None = None,
        cumulative_quote_qty: Decimal | None = None,
        working: bool | None = None,
        reason: str | None = None,
    ) -> None:
        self.symbol = symbol
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.status = status
        self.executed_qty = executed_qty
        self.time = time
        self.side = side
        self.type = type
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.time_in_force = time_in_force
        self.cumulative_quote_qty = cumulative_quote_qty
        self.working = working
        self.reason = reason

    def merged(self, held: Order) -> Order:
        """The held order with this fact applied: what the fact says wins, the rest is kept."""
        held_time = held.update_time
        time = self.time
        if time is None or (held_time is not None and held_time > time):
            time = held_time
        quote = self.cumulative_quote_qty
        return Order(
            symbol=held.symbol,
            client_order_id=held.client_order_id,
            side=self.side or held.side,
            type=self.type or held.type,
            status=self.status,
            quantity=held.quantity if self.quantity is None else self.quantity,
            price=held.price if self.price is None else self.price,
            stop_price=held.stop_price if self.stop_price is None else self.stop_price,
            time_in_force=self.time_in_force or held.time_in_force,
            order_id=self.order_id,
            executed_qty=self.executed_qty,
            cumulative_quote_qty=held.cumulative_quote_qty if quote is None else quote,
            update_time=time,
            working=self._working(held.working),
            # a new status says why by itself (NEW after UNKNOWN drops "timeout")
            reason=self.reason if self.status is not held.status else self.reason or held.reason,
            venue=held.venue,
        )

    def _working(self, held: bool | None) -> bool | None:
        """Whether it is on the book: what the fact says, else what is held; a finished
        order never is (REST answers have no ``w``: this keeps the order the same whichever
        source told us it ended)."""
        if self.status in TERMINAL:
            return False
        return held if self.working is None else self.working

    def new_order(self, venue: str) -> Order | None:
        """The order as first seen (not ours, or ours under a reused id); None if too little
        is known (an ACK names no side, type or quantity)."""
        if self.side is None or self.type is None or self.quantity is None:
            return None
        return Order(
            symbol=self.symbol,
            client_order_id=self.client_order_id,
            side=self.side,
            type=self.type,
            status=self.status,
            quantity=self.quantity,
            price=self.price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            order_id=self.order_id,
            executed_qty=self.executed_qty,
            cumulative_quote_qty=self.cumulative_quote_qty or _ZERO,
            update_time=self.time,
            working=self._working(None),
            reason=self.reason,
            venue=venue,
        )


#: A trade as parsed: (trade id, price, qty, commission, commission asset, time, is maker).
_Trade = tuple[int, Decimal, Decimal, Decimal, str | None, int | None, bool | None]


def _parse_execution_report(event: Mapping[str, Any]) -> tuple[_Fact, _Trade | None]:
    """An executionReport (protocol §3.3) as a fact, and its trade when ``x == "TRADE"``."""
    cancels = _opt_text(event, "C") or ""
    time = _opt_int(event, "T")
    if time is None:
        time = _int(event, "E")
    fact = _Fact(
        symbol=_text(event, "s"),
        order_id=_int(event, "i"),
        # on a cancel, ``c`` is the cancel's id and ``C`` the order's own
        client_order_id=cancels or _text(event, "c"),
        status=_status(event, "X"),
        executed_qty=_amount(event, "z"),
        time=time,
        side=_text(event, "S"),
        type=_text(event, "o"),
        quantity=_amount(event, "q"),
        price=_opt_price(event, "p"),
        stop_price=_opt_price(event, "P"),
        time_in_force=_opt_text(event, "f"),
        cumulative_quote_qty=_opt_quote(event, "Z"),
        working=_opt_bool(event, "w"),
        reason=_reason(_opt_text(event, "eR"), _opt_text(event, "r")),
    )
    if cancels:
        _text(event, "c")  # still required: it is the cancel's id
    if _text(event, "x") != "TRADE":
        return fact, None
    trade_id = _int(event, "t")
    if trade_id < 0:
        raise _Malformed("t")
    trade: _Trade = (
        trade_id,
        _amount(event, "L"),
        _amount(event, "l"),
        _number(event.get("n"), "n"),
        _opt_text(event, "N"),
        time,
        _opt_bool(event, "m"),
    )
    return fact, trade


def _parse_rest_order(body: Mapping[str, Any]) -> tuple[_Fact, list[_Trade]]:
    """A REST / WS-API order object (place, cancel or query answer, openOrders row) as a fact,
    and the trades of a FULL place answer."""
    time = _opt_int(body, "updateTime")
    if time is None:
        time = _opt_int(body, "transactTime")
    symbol = _text(body, "symbol")
    order_id = _int(body, "orderId")
    # a cancel answer: ``clientOrderId`` is the cancel's id, ``origClientOrderId`` the order's
    client_order_id = _opt_text(body, "origClientOrderId") or _text(body, "clientOrderId")
    if "status" not in body:  # ACK: accepted by the engine, nothing more said
        fact = _Fact(
            symbol=symbol,
            order_id=order_id,
            client_order_id=client_order_id,
            status=NEW,
            executed_qty=_ZERO,
            time=time,
        )
        return fact, []
    fact = _Fact(
        symbol=symbol,
        order_id=order_id,
        client_order_id=client_order_id,
        status=_status(body, "status"),
        executed_qty=_amount(body, "executedQty"),
        time=time,
        side=_opt_text(body, "side"),
        type=_opt_text(body, "type"),
        quantity=_opt_amount(body, "origQty"),
        price=_opt_price(body, "price"),
        stop_price=_opt_price(body, "stopPrice"),
        time_in_force=_opt_text(body, "timeInForce"),
        cumulative_quote_qty=_opt_quote(body, "cummulativeQuoteQty"),
        working=_opt_bool(body, "isWorking"),
        reason=_reason(_opt_text(body, "expiryReason")),
    )
    rows = body.get("fills")
    if rows is None:
        return fact, []
    if not isinstance(rows, list):
        raise _Malformed("fills")
    trades: list[_Trade] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise _Malformed("fills")
        trade_id = _int(row, "tradeId")
        if trade_id < 0:
            raise _Malformed("tradeId")
        # A place answer's fills are the trades the new order made as it arrived: it took
        # liquidity, so it was the taker; they happened at the answer's transactTime.
        trades.append(
            (
                trade_id,
                _amount(row, "price"),
                _amount(row, "qty"),
                _number(row.get("commission"), "commission"),
                _opt_text(row, "commissionAsset"),
                time,
                False,
            )
        )
    return fact, trades


def _parse_trade_row(symbol: str, row: Mapping[str, Any]) -> tuple[int, _Trade]:
    """A ``GET /api/v3/myTrades`` row: (orderId, trade)."""
    if not isinstance(row, Mapping):
        raise _Malformed("row")
    if row.get("symbol", symbol) != symbol:
        raise _Malformed("symbol")
    trade_id = _int(row, "id")
    if trade_id < 0:
        raise _Malformed("id")
    trade: _Trade = (
        trade_id,
        _amount(row, "price"),
        _amount(row, "qty"),
        _number(row.get("commission"), "commission"),
        _opt_text(row, "commissionAsset"),
        _opt_int(row, "time"),
        _opt_bool(row, "isMaker"),
    )
    return _int(row, "orderId"), trade


def _parse_balances(
    rows: object, asset_key: str, free_key: str, locked_key: str
) -> list[tuple[str, Decimal, Decimal]]:
    if not isinstance(rows, list):
        raise _Malformed("balances")
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise _Malformed("balances")
        out.append((_text(row, asset_key), _amount(row, free_key), _amount(row, locked_key)))
    return out


# --- the tracker -------------------------------------------------------------------------------


class _Slot:
    """One tracked order; every index points at the slot, so a change replaces one field."""

    __slots__ = ("order",)

    def __init__(self, order: Order) -> None:
        self.order = order


class OrderTracker:
    """Orders, fills and balances of one account, kept from every fact the caller feeds in.

    See the module docstring for the rules; every method that takes exchange data never raises
    on it (bad data is counted in :attr:`counters`).
    """

    def __init__(self, venue: str = "spot") -> None:
        self.venue = venue
        self.counters = TrackerCounters()
        self._events: list[OrderEvent] = []
        self._slots: list[_Slot] = []  # every order ever tracked, oldest first
        self._open: dict[int, _Slot] = {}  # id(slot) -> slot of non-terminal orders, oldest first
        self._by_cid: dict[str, _Slot] = {}  # the newest order under each (original) client id
        self._by_oid: dict[tuple[str, int], _Slot] = {}
        self._fills: dict[tuple[str, int], list[Fill]] = {}  # (symbol, orderId) -> its fills
        self._seen: set[tuple[str, int, int]] = set()  # (symbol, orderId, trade id)
        self._last_trade: dict[str, int] = {}
        self._orphans: dict[tuple[str, int], None] = {}  # fills' orders not tracked (yet)
        self._balances: dict[str, Balance] = {}
        self._balance_time: dict[str, int] = {}  # exchange time of each asset's newest fact
        self._reconciled_changes = 0  # reconciliation-sourced changes since the last Reconciled
        self._reconciled_fills = 0

    # --- our placements ------------------------------------------------------------------------

    def create(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str,
    ) -> Order:
        """Track an order we are about to send (SENT, source "local").

        ValueError if ``client_order_id`` names an order that is not terminal: Binance only
        takes an id again once its previous order is done, and the caller picks the ids.
        """
        held = self._by_cid.get(client_order_id)
        if held is not None and held.order.status not in TERMINAL:
            raise ValueError(f"client order id {client_order_id!r} names an open order")
        order = Order(
            symbol=symbol,
            client_order_id=client_order_id,
            side=side,
            type=type,
            status=SENT,
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            venue=self.venue,
        )
        slot = self._add(order)
        self._by_cid[client_order_id] = slot
        self._emit_update(order, None, "local")
        return order

    def rejected(self, client_order_id: str, reason: str) -> None:
        """The placement was refused for certain (OrderRejected): SENT/UNKNOWN -> REJECTED."""
        self._local(client_order_id, REJECTED, reason)

    def unknown(self, client_order_id: str, reason: str) -> None:
        """The placement's outcome is not known (protocol §5.4): SENT -> UNKNOWN.

        Ignored (as stale) when the exchange already told us: its executionReport may beat the
        REST timeout."""
        self._local(client_order_id, UNKNOWN, reason)

    def not_placed(self, client_order_id: str, reason: str) -> None:
        """The exchange kept denying the order long enough: UNKNOWN -> NOT_PLACED."""
        self._local(client_order_id, NOT_PLACED, reason)

    def _local(self, client_order_id: str, target: OrderStatus, reason: str) -> None:
        slot = self._by_cid.get(client_order_id)
        if slot is None:
            raise KeyError(f"no tracked order has client order id {client_order_id!r}")
        held = slot.order
        if held.status not in _LOCAL_FROM or (held.status, target) not in TRANSITIONS:
            self.counters.stale_ignored += 1
            return
        self._change(slot, replace(held, status=target, reason=reason), held.status, "local")

    # --- exchange facts --------------------------------------------------------------------

    def receive_rest_order(self, body: Mapping[str, Any], source: Source = "rest") -> None:
        """Any REST / WS-API order object: a place answer (ACK, RESULT, or FULL whose ``fills``
        become Fill events), a cancel answer, a query answer or an openOrders row."""
        self._receive_rest_order(body, source)

    def _receive_rest_order(self, body: object, source: Source) -> tuple[str, int] | None:
        try:
            if not isinstance(body, Mapping):
                raise _Malformed("body")
            fact, trades = _parse_rest_order(body)
        except _Malformed:
            self.counters.malformed += 1
            return None
        self._receive_fact(fact, trades, source)
        return fact.symbol, fact.order_id

    def receive_event(self, event: Mapping[str, Any]) -> None:
        """One user-stream event payload (the object inside ``{"subscriptionId", "event"}``).

        executionReport, outboundAccountPosition and balanceUpdate are applied; other types
        are counted in ``unknown_events``; a malformed one in ``malformed``.
        """
        try:
            if not isinstance(event, Mapping):
                raise _Malformed("event")
            kind = event.get("e")
            if kind == "executionReport":
                fact, trade = _parse_execution_report(event)
                self._receive_fact(fact, () if trade is None else (trade,), "stream")
            elif kind == "outboundAccountPosition":
                rows = _parse_balances(event.get("B"), "a", "f", "l")
                self._position(rows, _int(event, "u"))
            elif kind == "balanceUpdate":
                asset, delta = _text(event, "a"), _number(event.get("d"), "d")
                self._balance_delta(asset, delta, _int(event, "T"))
            elif type(kind) is str:
                self.counters.unknown_events += 1  # listStatus, externalLockUpdate, ...
            else:
                raise _Malformed("e")
        except _Malformed:
            self.counters.malformed += 1

    def _receive_fact(self, fact: _Fact, trades: Sequence[_Trade], source: Source) -> None:
        key = (fact.symbol, fact.order_id)
        slot = self._by_oid.get(key)
        if slot is None:
            slot = self._pending(fact)
        if slot is None:  # not tracked yet: not ours, or ours under a reused id
            order = fact.new_order(self.venue)
            if order is None:
                self.counters.malformed += 1  # an ACK for an order we never created
                return
            slot = self._add(order)
            held = self._by_cid.get(order.client_order_id)
            if held is None or held.order.status in TERMINAL:
                self._by_cid[order.client_order_id] = slot
            self._index(slot, key)
            for trade in trades:
                self._fill(fact.symbol, fact.order_id, trade, source)
            self._emit_update(order, None, source)
            return
        for trade in trades:
            self._fill(fact.symbol, fact.order_id, trade, source, slot.order.client_order_id)
        self._apply(slot, fact, source)

    def _pending(self, fact: _Fact) -> _Slot | None:
        """Our order waiting for its orderId that this fact is about, if any."""
        slot = self._by_cid.get(fact.client_order_id)
        if slot is None:
            return None
        held = slot.order
        if held.order_id is None and held.symbol == fact.symbol and held.status in _WAITING:
            return slot
        return None

    def _apply(self, slot: _Slot, fact: _Fact, source: Source) -> None:
        """Merge one fact into a tracked order by the table and the newer-fact rule."""
        held = slot.order
        status = fact.status
        move = TRANSITIONS.get((held.status, status))
        executed = fact.executed_qty
        older = executed < held.executed_qty or (
            executed == held.executed_qty
            and fact.time is not None
            and held.update_time is not None
            and fact.time < held.update_time
        )
        if move is None or move is Move.LOCAL or older:
            if status is not held.status or executed != held.executed_qty:
                self.counters.stale_ignored += 1
            return  # else a confirmation of what is held
        order = fact.merged(held)
        if move is Move.AGAIN:
            newer = (
                executed > held.executed_qty
                or (
                    fact.time is not None
                    and (held.update_time is None or fact.time > held.update_time)
                )
                # a stop order triggered (not working -> working): one way, so never stale,
                # even in the millisecond of its placement
                or (held.working is False and order.working is True)
            )
            if not newer or (
                executed == held.executed_qty
                and replace(order, update_time=held.update_time) == held
            ):
                return  # nothing new: a confirmation
        elif move is Move.CORRECTION:
            self.counters.corrections += 1
        if held.order_id is None:
            self._index(slot, (fact.symbol, fact.order_id))
        self._change(slot, order, held.status, source)

    # --- reconciliation --------------------------------------------------------------------

    def receive_open_orders(
        self, rows: Sequence[Mapping[str, Any]], symbol: str | None
    ) -> list[Order]:
        """Apply a ``GET /api/v3/openOrders`` answer (source "reconciliation").

        Returns the tracked non-terminal orders (of ``symbol``, or of every symbol when None)
        that are not in ``rows``, oldest first: the caller queries each by client order id.
        SENT orders are left out: their placement is in flight, its answer will tell.
        """
        present: set[tuple[str, int]] = set()
        for row in rows:
            key = self._receive_rest_order(row, "reconciliation")
            if key is not None:
                present.add(key)
        missing = []
        for slot in self._open.values():
            order = slot.order
            if order.status is SENT or (symbol is not None and order.symbol != symbol):
                continue
            if order.order_id is None or (order.symbol, order.order_id) not in present:
                missing.append(order)
        return missing

    def receive_trades(self, symbol: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Apply ``GET /api/v3/myTrades`` rows: a trade not yet reported becomes a Fill
        (source "reconciliation").

        A trade of an order not tracked (yet) is still reported, under client order id
        ``"#<orderId>"``, and its order is listed by :meth:`untracked_trade_orders` for the
        caller to query; the fill joins the order's :meth:`fills` once the order is known.
        """
        for row in rows:
            try:
                order_id, trade = _parse_trade_row(symbol, row)
            except _Malformed:
                self.counters.malformed += 1
                continue
            self._fill(symbol, order_id, trade, "reconciliation")

    def receive_account(self, body: Mapping[str, Any]) -> None:
        """Apply a ``GET /api/v3/account`` answer: absolute balances as of its ``updateTime``
        (source "reconciliation").

        An asset it leaves out is zero (``omitZeroBalances=true`` leaves out exactly those);
        an asset whose held balance is newer than ``updateTime`` is kept.
        """
        try:
            if not isinstance(body, Mapping):
                raise _Malformed("body")
            rows = _parse_balances(body.get("balances"), "asset", "free", "locked")
            time = _int(body, "updateTime")
        except _Malformed:
            self.counters.malformed += 1
            return
        listed = set()
        for asset, free, locked in rows:
            listed.add(asset)
            self._set_balance(asset, free, locked, time, "reconciliation")
        for asset in list(self._balances):
            if asset not in listed:
                self._set_balance(asset, _ZERO, _ZERO, time, "reconciliation")

    def reconciled(self, reason: str, orders_checked: int) -> None:
        """A reconciliation pass ended: emit Reconciled with the corrections (order and balance
        changes) and fills it found since the previous one."""
        self._events.append(
            Reconciled(reason, orders_checked, self._reconciled_changes, self._reconciled_fills)
        )
        self._reconciled_changes = 0
        self._reconciled_fills = 0

    # --- balances --------------------------------------------------------------------------

    def _position(self, rows: list[tuple[str, Decimal, Decimal]], time: int) -> None:
        for asset, free, locked in rows:
            self._set_balance(asset, free, locked, time, "stream")

    def _set_balance(
        self, asset: str, free: Decimal, locked: Decimal, time: int, source: Source
    ) -> None:
        held_time = self._balance_time.get(asset)
        if held_time is not None and time < held_time:
            self.counters.stale_ignored += 1
            return
        self._balance_time[asset] = time
        held = self._balances.get(asset)
        if held is not None and held.free == free and held.locked == locked:
            return  # confirmed; its freshness is kept in _balance_time
        self._emit_balance(Balance(asset, free, locked, time, source))

    def _balance_delta(self, asset: str, delta: Decimal, time: int) -> None:
        held_time = self._balance_time.get(asset)
        if held_time is not None and time <= held_time:
            # An absolute balance as of ``time`` or later is held: it counts this delta already
            # (Binance sends the outboundAccountPosition right after; it may arrive first).
            self.counters.stale_ignored += 1
            return
        held = self._balances.get(asset)
        self._balance_time[asset] = time
        if held is not None and not delta:
            return
        # An asset never seen starts from zero. That guess may be wrong (the account held some
        # before we looked), but it never compounds: the outboundAccountPosition Binance sends
        # with every balance change, and every reconciliation's account snapshot, are absolute
        # and newer, so they replace it.
        free = delta if held is None else _EXACT.add(held.free, delta)
        locked = _ZERO if held is None else held.locked
        self._emit_balance(Balance(asset, free, locked, time, "stream"))

    def _emit_balance(self, balance: Balance) -> None:
        self._balances[balance.asset] = balance
        if balance.source == "reconciliation":
            self._reconciled_changes += 1
        self._events.append(balance)

    # --- fills and changes -----------------------------------------------------------------

    def _fill(
        self,
        symbol: str,
        order_id: int,
        trade: _Trade,
        source: Source,
        client_order_id: str | None = None,
    ) -> None:
        trade_id = trade[0]
        key = (symbol, order_id, trade_id)
        if key in self._seen:
            self.counters.duplicate_fills += 1
            return
        self._seen.add(key)
        order_key = (symbol, order_id)
        if client_order_id is None:
            slot = self._by_oid.get(order_key)
            if slot is None:
                self._orphans[order_key] = None
                client_order_id = f"#{order_id}"
            else:
                client_order_id = slot.order.client_order_id
        _, price, qty, commission, asset, time, maker = trade
        fill = Fill(
            symbol, client_order_id, order_id, trade_id, price, qty, commission, asset, time,
            maker, source,
        )  # fmt: skip
        fills = self._fills.get(order_key)
        if fills is None:
            self._fills[order_key] = [fill]
        else:
            fills.append(fill)
        last = self._last_trade.get(symbol)
        if last is None or trade_id > last:
            self._last_trade[symbol] = trade_id
        if source == "reconciliation":
            self._reconciled_fills += 1
        self._events.append(fill)

    def _add(self, order: Order) -> _Slot:
        slot = _Slot(order)
        self._slots.append(slot)
        if order.status not in TERMINAL:
            self._open[id(slot)] = slot
        return slot

    def _index(self, slot: _Slot, key: tuple[str, int]) -> None:
        self._by_oid[key] = slot
        self._orphans.pop(key, None)

    def _change(self, slot: _Slot, order: Order, previous: OrderStatus, source: Source) -> None:
        slot.order = order
        if order.status in TERMINAL:
            self._open.pop(id(slot), None)
        else:  # a correction out of NOT_PLACED reopens it
            self._open.setdefault(id(slot), slot)
        self._emit_update(order, previous, source)

    def _emit_update(self, order: Order, previous: OrderStatus | None, source: Source) -> None:
        if source == "reconciliation":
            self._reconciled_changes += 1
        self._events.append(OrderUpdate(order, previous, source))

    # --- reading ---------------------------------------------------------------------------

    def events(self) -> list[OrderEvent]:
        """Every event since the previous call, in the order they happened."""
        events, self._events = self._events, []
        return events

    def get(self, client_order_id: str) -> Order | None:
        """The newest order under this (original) client order id."""
        slot = self._by_cid.get(client_order_id)
        return None if slot is None else slot.order

    def by_order_id(self, symbol: str, order_id: int) -> Order | None:
        """The order with the exchange's id ``order_id`` on ``symbol``."""
        slot = self._by_oid.get((symbol, order_id))
        return None if slot is None else slot.order

    def orders(self) -> list[Order]:
        """Every tracked order, oldest first."""
        return [slot.order for slot in self._slots]

    def open_orders(self) -> list[Order]:
        """The orders that are not terminal (SENT, UNKNOWN and the live ones), oldest first."""
        return [slot.order for slot in self._open.values()]

    def fills(self, client_order_id: str) -> list[Fill]:
        """The fills of the newest order under this client order id, in the order reported."""
        slot = self._by_cid.get(client_order_id)
        if slot is None or slot.order.order_id is None:
            return []
        return list(self._fills.get((slot.order.symbol, slot.order.order_id), ()))

    def untracked_trade_orders(self) -> list[tuple[str, int]]:
        """(symbol, orderId) of orders that have fills (from myTrades) but are not tracked:
        the caller may query them by orderId."""
        return list(self._orphans)

    def balances(self) -> dict[str, Balance]:
        """Every asset's balance as last reported."""
        return dict(self._balances)

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id reported on ``symbol`` (for myTrades ``fromId``)."""
        return self._last_trade.get(symbol)

    def active_symbols(self) -> set[str]:
        """The symbols with orders or fills seen."""
        symbols = {slot.order.symbol for slot in self._slots}
        symbols.update(self._last_trade)
        return symbols
