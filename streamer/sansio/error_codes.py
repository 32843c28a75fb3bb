"""Binance error codes and the one rule that turns an error answer into an exception.

:data:`ERROR_CODES` names every spot error code of protocol §5.3 and the class raised for it
outside an order; :func:`exchange_error` adds the request's context (protocol §5.2, §5.4): the
same -1013 is an :class:`~streamer.errors.InvalidRequest` on a query and an
:class:`~streamer.errors.OrderRejected` on a placement, a 5xx a
:class:`~streamer.errors.ServerError` on a query and an
:class:`~streamer.errors.UnknownOrderStatus` on a placement (the order may exist). Pure: REST
(:mod:`streamer.aio.rest`) and the WebSocket API can both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from streamer.errors import (
    AuthenticationError,
    ExchangeError,
    InvalidRequest,
    InvalidTimestamp,
    IPBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    ServerError,
    UnknownOrderStatus,
    UnknownSymbol,
)

__all__ = ["CONTEXTS", "ERROR_CODES", "UNKNOWN_OUTCOME_CODES", "ErrorCode", "exchange_error"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One Binance error code: its name in Binance's ``errors.md`` and the class raised for it
    outside an order context (see :func:`exchange_error` for the order contexts)."""

    code: int
    name: str
    kind: type[ExchangeError]


def _table(*rows: tuple[int, str, type[ExchangeError]]) -> dict[int, ErrorCode]:
    return {code: ErrorCode(code, name, kind) for code, name, kind in rows}


#: Every spot error code of protocol §5.3 (plus -1020, -1131: the local exchange answers them).
ERROR_CODES: Final[Mapping[int, ErrorCode]] = _table(
    (-1000, "UNKNOWN", ServerError),
    (-1001, "DISCONNECTED", ServerError),
    (-1002, "UNAUTHORIZED", AuthenticationError),
    (-1003, "TOO_MANY_REQUESTS", RateLimited),
    (-1006, "UNEXPECTED_RESP", ServerError),
    (-1007, "TIMEOUT", ServerError),
    (-1008, "SERVER_BUSY", ServerError),
    (-1013, "INVALID_MESSAGE", InvalidRequest),
    (-1015, "TOO_MANY_ORDERS", RateLimited),
    (-1020, "UNSUPPORTED_OPERATION", InvalidRequest),
    (-1021, "INVALID_TIMESTAMP", InvalidTimestamp),
    (-1022, "INVALID_SIGNATURE", AuthenticationError),
    (-1034, "TOO_MANY_CONNECTIONS", RateLimited),
    (-1100, "ILLEGAL_CHARS", InvalidRequest),
    (-1101, "TOO_MANY_PARAMETERS", InvalidRequest),
    (-1102, "MANDATORY_PARAM_EMPTY_OR_MALFORMED", InvalidRequest),
    (-1103, "UNKNOWN_PARAM", InvalidRequest),
    (-1104, "UNREAD_PARAMETERS", InvalidRequest),
    (-1105, "PARAM_EMPTY", InvalidRequest),
    (-1106, "PARAM_NOT_REQUIRED", InvalidRequest),
    (-1108, "PARAM_OVERFLOW", InvalidRequest),
    (-1111, "BAD_PRECISION", InvalidRequest),
    (-1112, "NO_DEPTH", InvalidRequest),
    (-1114, "TIF_NOT_REQUIRED", InvalidRequest),
    (-1115, "INVALID_TIF", InvalidRequest),
    (-1116, "INVALID_ORDER_TYPE", InvalidRequest),
    (-1117, "INVALID_SIDE", InvalidRequest),
    (-1118, "EMPTY_NEW_CL_ORD_ID", InvalidRequest),
    (-1119, "EMPTY_ORG_CL_ORD_ID", InvalidRequest),
    (-1120, "BAD_INTERVAL", InvalidRequest),
    (-1121, "BAD_SYMBOL", UnknownSymbol),
    (-1122, "INVALID_SYMBOLSTATUS", InvalidRequest),
    (-1125, "INVALID_LISTEN_KEY", InvalidRequest),
    (-1127, "MORE_THAN_XX_HOURS", InvalidRequest),
    (-1128, "OPTIONAL_PARAMS_BAD_COMBO", InvalidRequest),
    (-1130, "INVALID_PARAMETER", InvalidRequest),
    (-1131, "BAD_RECV_WINDOW", InvalidRequest),
    (-1134, "BAD_STRATEGY_TYPE", InvalidRequest),
    (-1135, "INVALID_JSON", InvalidRequest),
    (-1145, "INVALID_CANCEL_RESTRICTIONS", InvalidRequest),
    (-1151, "DUPLICATE_SYMBOLS", InvalidRequest),
    (-1194, "INVALID_TIME_UNIT", InvalidRequest),
    (-1220, "SYMBOL_DOES_NOT_MATCH_STATUS", InvalidRequest),
    (-2010, "NEW_ORDER_REJECTED", OrderRejected),
    (-2011, "CANCEL_REJECTED", OrderNotFound),
    (-2013, "NO_SUCH_ORDER", OrderNotFound),
    (-2014, "BAD_API_KEY_FMT", AuthenticationError),
    (-2015, "REJECTED_MBX_KEY", AuthenticationError),
    (-2021, "CANCEL_REPLACE_PARTIALLY_FAILED", ExchangeError),
    (-2022, "CANCEL_REPLACE_FAILED", OrderRejected),
    (-2026, "ORDER_ARCHIVED", ExchangeError),
    (-2035, "SUBSCRIPTION_ACTIVE", InvalidRequest),
    (-2036, "SUBSCRIPTION_INACTIVE", InvalidRequest),
    (-2038, "ORDER_AMEND_REJECTED", OrderRejected),
    (-2039, "CLIENT_ORDER_ID_INVALID", InvalidRequest),
    (-2042, "MAXIMUM_SUBSCRIPTION_IDS", InvalidRequest),
    (-2043, "NO_REFERENCE_PRICE", OrderRejected),
)

#: Codes that leave a placement's outcome unknown (protocol §5.4): the server failed somewhere
#: between receiving the order and answering, so the engine may have it.
UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1001, -1006, -1007, -1008})

#: The contexts :func:`exchange_error` knows: a plain request, an order placement, an order
#: test (``/order/test``: validated, never placed), a cancel, or an order query.
CONTEXTS: Final = frozenset({"request", "place", "test", "cancel", "query"})


def exchange_error(
    status: int | None,
    code: int | None,
    msg: str,
    *,
    context: str = "request",
    retry_after: float | None = None,
    symbol: str | None = None,
    client_order_id: str | None = None,
) -> ExchangeError:
    """The exception for one error answer (HTTP ``status``, Binance ``code`` and ``msg``).

    In order, the first rule that matches decides:

    1. 429 -> :class:`RateLimited`, 418 -> :class:`IPBanned` (nothing reached the engine);
    2. 401, -1002, -1022, -2014, -2015 -> :class:`AuthenticationError`;
    3. ``place``: a 5xx, a 408 or a code of :data:`UNKNOWN_OUTCOME_CODES` ->
       :class:`UnknownOrderStatus` (the order may exist);
    4. -1003, -1015, -1034 -> :class:`RateLimited`;
    5. -2013, and -2011 unless it says "cancel restrictions" -> :class:`OrderNotFound`;
    6. ``place``, ``test`` and ``cancel``: any other 4xx -> :class:`OrderRejected` (definite:
       the order was not placed, or not canceled);
    7. otherwise the class of :data:`ERROR_CODES`; an unlisted code is a :class:`ServerError`
       on a 5xx, an :class:`InvalidRequest` on a 4xx, else an :class:`ExchangeError`.
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {sorted(CONTEXTS)}, got {context!r}")
    known = ERROR_CODES.get(code) if code is not None else None
    label = f" code {code}" + (f" {known.name}" if known else "") if code is not None else ""
    text = (f"HTTP {status}" if status is not None else "error") + f"{label}: {msg}"
    kind: type[ExchangeError]
    if status == 429:
        kind = RateLimited
    elif status == 418:
        kind = IPBanned
    elif status == 401 or (known is not None and known.kind is AuthenticationError):
        kind = AuthenticationError
    elif context == "place" and (
        (status is not None and (status >= 500 or status == 408)) or code in UNKNOWN_OUTCOME_CODES
    ):
        kind = UnknownOrderStatus
    elif known is not None and known.kind is RateLimited:
        kind = RateLimited
    elif code == -2013 or (code == -2011 and "cancel restrictions" not in msg):
        kind = OrderNotFound
    elif context in ("place", "test", "cancel") and (status is None or status < 500):
        kind = OrderRejected
    elif known is not None:
        kind = known.kind
    elif status is not None and status >= 500:
        kind = ServerError
    elif status is not None and 400 <= status < 500:
        kind = InvalidRequest
    else:
        kind = ExchangeError
    limited = kind in (RateLimited, IPBanned)
    return kind(
        text,
        code=code,
        msg=msg,
        status=status,
        retry_after=retry_after if limited else None,
        symbol=symbol,
        client_order_id=client_order_id,
    )
