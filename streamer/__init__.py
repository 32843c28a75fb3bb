"""streamer: Binance order books and order state, kept exactly right in real time."""

from streamer import _impl  # noqa: F401  (selects the book implementation: C unless disabled)
from streamer.aio.orders import OrderHandle
from streamer.aio.recorder import CaptureRecorder
from streamer.aio.streamer import Streamer
from streamer.config import Credentials, Endpoints
from streamer.errors import (
    AuthenticationError,
    BookNotReady,
    BookOutOfSync,
    ConfigurationError,
    ConnectError,
    ExchangeError,
    InvalidOrder,
    IPBanned,
    MalformedMessage,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestTimeout,
    StreamerClosed,
    StreamerError,
    TransportError,
    UnknownOrderStatus,
    UnknownSymbol,
)
from streamer.models import (
    BookUpdate,
    BookView,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionRotated,
    EventsLost,
    SnapshotError,
    StreamerEvent,
)
from streamer.order_models import (
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderUpdate,
    Reconciled,
)
from streamer.sansio.book_sync import (
    AuditInconclusive,
    AuditPassed,
    DriftDetected,
    Reset,
    ResetReason,
    Synced,
)
from streamer.sansio.wire import Malformed

__all__ = [
    "AuditInconclusive",
    "AuditPassed",
    "AuthenticationError",
    "Balance",
    "BookNotReady",
    "BookOutOfSync",
    "BookUpdate",
    "BookView",
    "CaptureRecorder",
    "ConfigurationError",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionOpened",
    "ConnectionRotated",
    "Credentials",
    "DriftDetected",
    "Endpoints",
    "EventsLost",
    "ExchangeError",
    "Fill",
    "IPBanned",
    "InvalidOrder",
    "Malformed",
    "MalformedMessage",
    "Order",
    "OrderEvent",
    "OrderHandle",
    "OrderNotFound",
    "OrderRejected",
    "OrderStatus",
    "OrderUpdate",
    "RateLimited",
    "Reconciled",
    "RequestTimeout",
    "Reset",
    "ResetReason",
    "SnapshotError",
    "Streamer",
    "StreamerClosed",
    "StreamerError",
    "StreamerEvent",
    "Synced",
    "TransportError",
    "UnknownOrderStatus",
    "UnknownSymbol",
]

__version__ = "0.1.0"
