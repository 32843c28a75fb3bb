"""Public value types of order tracking: orders, fills, balances and the events that carry them.

Pure and immutable. Quantities and prices are :class:`~decimal.Decimal` (exact; rendered in
plain notation by :func:`plain`), times are the exchange's milliseconds. Every event names its
``source``: where the fact came from.

Sources:

* ``"local"``: decided here (an order created and sent, its outcome declared unknown, or proved
  never placed);
* ``"rest"``: the answer to our own REST request (place, cancel, query);
* ``"stream"``: the user-data stream (``executionReport``, ``outboundAccountPosition``, ...);
* ``"reconciliation"``: a REST snapshot taken to catch what the stream missed (protocol §3.4).

The shapes leave room for USD-M futures trading (``venue``), which is not built yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "TERMINAL",
    "Balance",
    "Fill",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OrderUpdate",
    "Reconciled",
    "Source",
    "plain",
]

Source = str  # "local" | "rest" | "stream" | "reconciliation"


class OrderStatus(StrEnum):
    """Binance's order statuses (protocol §3.3) plus three of ours.

    ``SENT``: the placement request is in flight; ``UNKNOWN``: it was sent and its outcome is not
    known (a timeout, a 5xx, -1006, -1007, the connection lost mid-request): the order may exist,
    and it is never sent again while it may; ``NOT_PLACED``: proved never to have existed (the
    exchange kept answering "no such order" for long enough).
    """

    SENT = "SENT"
    UNKNOWN = "UNKNOWN"
    NOT_PLACED = "NOT_PLACED"
    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


#: Final states: nothing the exchange says moves an order out of them (NOT_PLACED excepted, see
#: ``streamer.sansio.orders``: an order proved absent that the exchange later reports did exist).
TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
        OrderStatus.NOT_PLACED,
    }
)


def plain(value: Decimal | None) -> str | None:
    """A decimal in plain notation (never ``1E-7``), as Binance takes and shows numbers."""
    return None if value is None else format(value, "f")


@dataclass(frozen=True, slots=True)
class Order:
    """One tracked order as known now.

    ``client_order_id`` is the order's own id (ours when we placed it), never a cancel's id;
    ``order_id`` is the exchange's, None until known. ``executed_qty`` only grows.
    ``update_time``: the exchange time (ms) of the newest fact applied. ``reason``: why it was
    rejected, expired or declared unknown (an error code and message, or ``r``/``eR``).
    """

    symbol: str
    client_order_id: str
    side: str
    type: str
    status: OrderStatus
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    order_id: int | None = None
    executed_qty: Decimal = Decimal(0)
    cumulative_quote_qty: Decimal = Decimal(0)
    update_time: int | None = None
    working: bool | None = None
    reason: str | None = None
    venue: str = "spot"

    @property
    def terminal(self) -> bool:
        """Whether the order reached a final state."""
        return self.status in TERMINAL

    @property
    def average_price(self) -> Decimal | None:
        """The average fill price (``Z / z``), None before any fill."""
        if not self.executed_qty:
            return None
        return self.cumulative_quote_qty / self.executed_qty


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade of one of our orders, reported exactly once (de-duplicated by trade id)."""

    symbol: str
    client_order_id: str
    order_id: int
    trade_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str | None
    time: int | None
    is_maker: bool | None
    source: Source


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order changed state or quantity; ``previous`` is its status before (None: new)."""

    order: Order
    previous: OrderStatus | None
    source: Source


@dataclass(frozen=True, slots=True)
class Balance:
    """An asset's balance after a change (absolute, whatever the source reported)."""

    asset: str
    free: Decimal
    locked: Decimal
    update_time: int | None
    source: Source


@dataclass(frozen=True, slots=True)
class Reconciled:
    """A reconciliation pass finished (``reason``: subscribed, resubscribed, scheduled, ...):
    how much it checked and how many corrections it emitted (as ordinary events before it)."""

    reason: str
    orders_checked: int
    corrections: int
    fills_found: int
    source: Source = "reconciliation"


OrderEvent = OrderUpdate | Fill | Balance | Reconciled
