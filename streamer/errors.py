"""The exception tree of ``streamer``.

Every exception the library raises on purpose derives from :class:`StreamerError` and carries
structured attributes instead of facts hidden in the message. Foreign exceptions (aiohttp,
websockets, orjson) are translated at the boundary with ``raise ... from exc``.

Which exchange error becomes which class is decided in one place,
:func:`streamer.sansio.error_codes.exchange_error`, from its table of every code of protocol
§5.3 and the request's context: the same -1013 is an :class:`InvalidRequest` on a query and an
:class:`OrderRejected` on a placement, and a 5xx is a :class:`ServerError` on a query but an
:class:`UnknownOrderStatus` on a placement (protocol §5.4: the order may have been placed).

Exchange misbehaviour seen by a pure core (a gap, drift, a malformed frame) is *not* raised: it
becomes state plus an event. These exceptions are for callers: misuse, I/O failures, rejections.

    StreamerError
    ├── ConfigurationError          bad settings, caught before any I/O
    ├── StreamerClosed              you closed it (distinct from "it broke")
    ├── TransportError              the network broke
    │   ├── ConnectError
    │   ├── ConnectionLost
    │   └── RequestTimeout
    ├── ProtocolError               the peer sent something we cannot use
    │   └── MalformedMessage
    ├── ExchangeError               the exchange answered with an error (code, msg, status)
    │   ├── RateLimited             429, -1003, -1015: carries retry_after
    │   ├── IPBanned                418, carries retry_after
    │   ├── AuthenticationError     -1002, -1022, -2014, -2015, 401
    │   ├── InvalidTimestamp        -1021 (outside recvWindow, or ahead of the server)
    │   ├── InvalidRequest          -11xx, -1013, ... outside an order: the request is at fault
    │   ├── ServerError             5xx, -1000, -1001, -1006, -1007, -1008 outside a placement
    │   ├── UnknownSymbol           -1121: the exchange does not list this symbol
    │   ├── OrderRejected           -2010, -1013, ... (the order certainly does not exist)
    │   ├── OrderNotFound           -2011 / -2013 on cancel or query: unknown to the exchange
    │   └── UnknownOrderStatus      5xx, -1006, -1007, timeout after send (it may exist)
    ├── InvalidOrder                order parameters that break a symbol filter (before sending)
    └── BookError
        ├── BookNotReady            the book is not synced yet
        └── BookOutOfSync           the book lost sync (gap, drift) and is resyncing
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BookError",
    "BookNotReady",
    "BookOutOfSync",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLost",
    "ExchangeError",
    "IPBanned",
    "InvalidOrder",
    "InvalidRequest",
    "InvalidTimestamp",
    "MalformedMessage",
    "OrderNotFound",
    "OrderRejected",
    "ProtocolError",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "StreamerClosed",
    "StreamerError",
    "TransportError",
    "UnknownOrderStatus",
    "UnknownSymbol",
]


class StreamerError(Exception):
    """Base of every exception raised by streamer."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        symbol: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.symbol = symbol
        self.client_order_id = client_order_id


class ConfigurationError(StreamerError):
    """Invalid settings, detected before any I/O."""


class StreamerClosed(StreamerError):
    """The object was closed by its owner; not a failure."""


class TransportError(StreamerError):
    """The network failed."""


class ConnectError(TransportError):
    """A connection could not be established."""


class ConnectionLost(TransportError):
    """An established connection dropped."""


class RequestTimeout(TransportError):
    """No answer arrived in time."""


class ProtocolError(StreamerError):
    """The peer sent something that does not follow the protocol."""


class MalformedMessage(ProtocolError):
    """A frame or body could not be decoded into a valid message."""


class ExchangeError(StreamerError):
    """The exchange answered with an error; ``code``, ``msg`` (Binance's text) and ``status``
    (HTTP, or the WS-API ``status``) say which. ``code``/``msg`` are None when the answer had no
    Binance error body; ``status`` is None when there was no answer."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        msg: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        symbol: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            status=status,
            retry_after=retry_after,
            symbol=symbol,
            client_order_id=client_order_id,
        )
        self.msg = msg


class RateLimited(ExchangeError):
    """HTTP 429: back off for ``retry_after`` seconds."""


class IPBanned(ExchangeError):
    """HTTP 418: the IP is banned for ``retry_after`` seconds."""


class AuthenticationError(ExchangeError):
    """The key, signature or permissions were refused."""


class InvalidTimestamp(ExchangeError):
    """-1021: the request's timestamp was outside ``recvWindow`` or ahead of the server clock.
    The REST client re-measures its clock offset and retries once before raising this."""


class InvalidRequest(ExchangeError):
    """The exchange refused the request itself (-11xx parameter errors, -1013, -2039, ...)."""


class ServerError(ExchangeError):
    """The exchange failed (5xx, -1000, -1001, -1006, -1007, -1008): try again later. On an
    order placement these are :class:`UnknownOrderStatus` instead; on a cancel, the order may or
    may not have been canceled (its next event or a query says which)."""


class UnknownSymbol(ExchangeError):
    """The exchange does not list this symbol (-1121), or not on this venue."""


class OrderRejected(ExchangeError):
    """The order certainly was not placed (or not cancelled)."""


class OrderNotFound(ExchangeError):
    """The exchange does not know the order (-2011 "Unknown order sent." on cancel, -2013 "Order
    does not exist." on query). Right after an unknown-status placement this is not conclusive
    (protocol §5.4): reads may lag the engine."""


class UnknownOrderStatus(ExchangeError):
    """The outcome is unknown: the order may or may not exist (protocol §5.4)."""


class InvalidOrder(StreamerError):
    """Order parameters that a symbol's filters refuse, caught before anything is sent:
    ``filter`` names the filter (``PRICE_FILTER``, ``LOT_SIZE``, ...; None for a missing or
    unwanted parameter), ``nearest`` the nearest valid value where there is one, ``param`` the
    order parameter at fault (``price``, ``quantity``, ``stopPrice``, ...)."""

    def __init__(
        self,
        message: str,
        *,
        filter: str | None = None,
        nearest: str | None = None,
        param: str | None = None,
        symbol: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        super().__init__(message, symbol=symbol, client_order_id=client_order_id)
        self.filter = filter
        self.nearest = nearest
        self.param = param


class BookError(StreamerError):
    """A book cannot answer right now."""


class BookNotReady(BookError):
    """The book has not been synced yet."""


class BookOutOfSync(BookError):
    """The book lost sync and is being rebuilt."""
