"""The Binance error table and the context rules that type every error answer (protocol §5)."""

from __future__ import annotations

import pytest

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
from streamer.sansio.error_codes import ERROR_CODES, exchange_error

# Every code of the protocol's §5.3 table, with its name there.
PROTOCOL_CODES = {
    -1000: "UNKNOWN", -1001: "DISCONNECTED", -1002: "UNAUTHORIZED", -1003: "TOO_MANY_REQUESTS",
    -1006: "UNEXPECTED_RESP", -1007: "TIMEOUT", -1008: "SERVER_BUSY", -1013: "INVALID_MESSAGE",
    -1015: "TOO_MANY_ORDERS", -1021: "INVALID_TIMESTAMP", -1022: "INVALID_SIGNATURE",
    -1034: "TOO_MANY_CONNECTIONS", -1100: "ILLEGAL_CHARS", -1101: "TOO_MANY_PARAMETERS",
    -1102: "MANDATORY_PARAM_EMPTY_OR_MALFORMED", -1103: "UNKNOWN_PARAM",
    -1104: "UNREAD_PARAMETERS", -1105: "PARAM_EMPTY", -1106: "PARAM_NOT_REQUIRED",
    -1108: "PARAM_OVERFLOW", -1111: "BAD_PRECISION", -1112: "NO_DEPTH",
    -1114: "TIF_NOT_REQUIRED", -1115: "INVALID_TIF", -1116: "INVALID_ORDER_TYPE",
    -1117: "INVALID_SIDE", -1118: "EMPTY_NEW_CL_ORD_ID", -1119: "EMPTY_ORG_CL_ORD_ID",
    -1120: "BAD_INTERVAL", -1121: "BAD_SYMBOL", -1122: "INVALID_SYMBOLSTATUS",
    -1125: "INVALID_LISTEN_KEY", -1127: "MORE_THAN_XX_HOURS", -1128: "OPTIONAL_PARAMS_BAD_COMBO",
    -1130: "INVALID_PARAMETER", -1134: "BAD_STRATEGY_TYPE", -1135: "INVALID_JSON",
    -1145: "INVALID_CANCEL_RESTRICTIONS", -1151: "DUPLICATE_SYMBOLS", -1194: "INVALID_TIME_UNIT",
    -1220: "SYMBOL_DOES_NOT_MATCH_STATUS", -2010: "NEW_ORDER_REJECTED",
    -2011: "CANCEL_REJECTED", -2013: "NO_SUCH_ORDER", -2014: "BAD_API_KEY_FMT",
    -2015: "REJECTED_MBX_KEY", -2021: "CANCEL_REPLACE_PARTIALLY_FAILED",
    -2022: "CANCEL_REPLACE_FAILED", -2026: "ORDER_ARCHIVED", -2035: "SUBSCRIPTION_ACTIVE",
    -2036: "SUBSCRIPTION_INACTIVE", -2038: "ORDER_AMEND_REJECTED",
    -2039: "CLIENT_ORDER_ID_INVALID", -2042: "MAXIMUM_SUBSCRIPTION_IDS",
    -2043: "NO_REFERENCE_PRICE",
}  # fmt: skip


def test_every_protocol_code_is_in_the_table() -> None:
    """Each code of protocol §5.3 has its Binance name and an ExchangeError class."""
    for code, name in PROTOCOL_CODES.items():
        entry = ERROR_CODES[code]
        assert (entry.code, entry.name) == (code, name)
        assert issubclass(entry.kind, ExchangeError)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, -1013, InvalidRequest), (400, -1102, InvalidRequest), (400, -1121, UnknownSymbol),
        (400, -1021, InvalidTimestamp), (400, -1022, AuthenticationError),
        (401, -2014, AuthenticationError), (401, -2015, AuthenticationError),
        (401, None, AuthenticationError), (400, -2013, OrderNotFound),
        (400, -2010, OrderRejected), (429, -1003, RateLimited), (418, -1003, IPBanned),
        (429, -1015, RateLimited), (400, -1015, RateLimited), (500, -1001, ServerError),
        (503, None, ServerError), (408, -1007, ServerError), (400, -1006, ServerError),
        (404, -1020, InvalidRequest), (400, -9999, InvalidRequest), (302, None, ExchangeError),
    ],
)  # fmt: skip
def test_plain_request_errors(status: int, code: int | None, kind: type) -> None:
    """Outside an order, the table decides (unlisted codes by status)."""
    err = exchange_error(status, code, "some msg")
    assert type(err) is kind
    assert (err.status, err.code, err.msg) == (status, code, "some msg")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (500, -1001, UnknownOrderStatus), (502, None, UnknownOrderStatus),
        (503, None, UnknownOrderStatus), (408, -1007, UnknownOrderStatus),
        (400, -1006, UnknownOrderStatus), (400, -1007, UnknownOrderStatus),
        (400, -1000, UnknownOrderStatus), (400, -1008, UnknownOrderStatus),
        (400, -2010, OrderRejected), (400, -1013, OrderRejected), (400, -1111, OrderRejected),
        (400, -1121, OrderRejected), (400, -1021, OrderRejected), (400, -1100, OrderRejected),
        (403, None, OrderRejected), (429, -1015, RateLimited), (429, -1003, RateLimited),
        (418, -1003, IPBanned), (400, -1022, AuthenticationError),
        (401, -2015, AuthenticationError),
    ],
)  # fmt: skip
def test_placement_errors(status: int, code: int | None, kind: type) -> None:
    """On a placement: may exist (5xx, 408, -1006/-1007/...), certainly not (4xx), or limits."""
    assert type(exchange_error(status, code, "m", context="place")) is kind


def test_cancel_and_query_errors() -> None:
    """-2011 'Unknown order sent.' and -2013 are OrderNotFound; a cancel refused for its
    restrictions is OrderRejected; a failed cancel of any other 4xx is OrderRejected."""
    unknown = exchange_error(400, -2011, "Unknown order sent.", context="cancel")
    assert type(unknown) is OrderNotFound
    restricted = exchange_error(
        400, -2011, "Order was not canceled due to cancel restrictions.", context="cancel"
    )
    assert type(restricted) is OrderRejected
    assert type(exchange_error(400, -1145, "m", context="cancel")) is OrderRejected
    assert type(exchange_error(500, None, "m", context="cancel")) is ServerError
    assert type(exchange_error(400, -2013, "Order does not exist.", context="query")) is (
        OrderNotFound
    )
    assert type(exchange_error(400, -1102, "m", context="query")) is InvalidRequest


def test_test_order_errors() -> None:
    """/order/test: a refusal is OrderRejected, a 5xx a ServerError (nothing can be placed)."""
    assert type(exchange_error(400, -1013, "m", context="test")) is OrderRejected
    assert type(exchange_error(500, -1001, "m", context="test")) is ServerError


def test_retry_after_only_on_limits() -> None:
    """retry_after is carried by RateLimited / IPBanned only."""
    assert exchange_error(429, -1003, "m", retry_after=7).retry_after == 7
    assert exchange_error(418, -1003, "m", retry_after=120).retry_after == 120
    assert exchange_error(400, -1013, "m", retry_after=7).retry_after is None


def test_message_names_status_code_and_name() -> None:
    """The text says the HTTP status, the code, its name and Binance's message."""
    err = exchange_error(400, -2010, "Account has insufficient balance for requested action.")
    assert str(err) == (
        "HTTP 400 code -2010 NEW_ORDER_REJECTED: "
        "Account has insufficient balance for requested action."
    )


def test_unknown_context_is_a_bug() -> None:
    """A context the table does not know is a ValueError (a typo must not go unnoticed)."""
    with pytest.raises(ValueError, match="context"):
        exchange_error(400, -1013, "m", context="placement")
