"""streamer: Binance order books and order state, kept exactly right in real time."""

from streamer import _impl  # noqa: F401  (selects the book implementation: C unless disabled)
from streamer.config import Credentials, Endpoints
from streamer.errors import (
    BookNotReady,
    BookOutOfSync,
    ConfigurationError,
    ExchangeError,
    MalformedMessage,
    StreamerClosed,
    StreamerError,
)

__all__ = [
    "BookNotReady",
    "BookOutOfSync",
    "ConfigurationError",
    "Credentials",
    "Endpoints",
    "ExchangeError",
    "MalformedMessage",
    "StreamerClosed",
    "StreamerError",
]

__version__ = "0.1.0"
