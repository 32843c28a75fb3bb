"""streamer: Binance order books and order state, kept exactly right in real time."""

from streamer import _impl  # noqa: F401  (selects the book implementation: C unless disabled)
from streamer.aio.recorder import CaptureRecorder
from streamer.aio.streamer import Streamer
from streamer.config import Credentials, Endpoints
from streamer.errors import (
    BookNotReady,
    BookOutOfSync,
    ConfigurationError,
    ConnectError,
    ExchangeError,
    IPBanned,
    MalformedMessage,
    RateLimited,
    StreamerClosed,
    StreamerError,
    TransportError,
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
    "IPBanned",
    "Malformed",
    "MalformedMessage",
    "RateLimited",
    "Reset",
    "ResetReason",
    "SnapshotError",
    "Streamer",
    "StreamerClosed",
    "StreamerError",
    "StreamerEvent",
    "Synced",
    "TransportError",
    "UnknownSymbol",
]

__version__ = "0.1.0"
