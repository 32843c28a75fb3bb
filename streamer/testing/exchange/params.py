"""REST request parameters of the local exchange: parsing and validation (protocol §4.1, §7.2).

Parameters come from the query string, an ``application/x-www-form-urlencoded`` body, or both;
when a name is in both, the query string wins. A name repeated within one source is -1101. Values
are checked the way Binance's error texts describe them:

* decimals: plain notation ``^([0-9]{1,20})(\\.[0-9]{1,20})?$`` (``"50000"``, ``"50000.0"`` and
  ``"50000.00000000"`` alike); anything else is -1100;
* integers: ``^[0-9]{1,20}$`` within int64, else -1100;
* client order ids: ``^[a-zA-Z0-9-_.]{1,36}$``, else -1100;
* an empty value counts as not sent: -1102 when the parameter is mandatory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from urllib.parse import parse_qsl

import orjson

from streamer.testing.exchange.api_error import ApiError

__all__ = ["ApiError", "Params", "parse_form"]

_DECIMAL_RE = re.compile(r"([0-9]{1,20})(\.[0-9]{1,20})?")
_DECIMAL_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
_INT_RE = re.compile(r"[0-9]{1,20}")
_INT_RANGE = "^[0-9]{1,20}$"
_CLIENT_ID_RE = re.compile(r"[a-zA-Z0-9._-]{1,36}")
_CLIENT_ID_RANGE = "^[a-zA-Z0-9-_.]{1,36}$"
_INT64_MAX = 2**63 - 1
_MAX_FIELDS = 200


def illegal(name: str, legal: str) -> ApiError:
    """-1100 for a parameter whose value does not match ``legal``."""
    return ApiError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def mandatory(name: str) -> ApiError:
    """-1102 for a missing mandatory parameter."""
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_valid(name: str) -> ApiError:
    """-1130 for a well-formed value outside the accepted range."""
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def parse_form(raw: str) -> dict[str, str]:
    """Decode one query string or form body; -1101 on a repeated name, -1100 on bad encoding."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS)
    except UnicodeDecodeError:
        raise ApiError(-1100, "Illegal characters found in a parameter.") from None
    except ValueError:
        raise ApiError(-1101, "Too many parameters sent for this endpoint.") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise ApiError(-1101, "Duplicate values for a parameter detected.")
        out[name] = value
    return out


class Params(Mapping[str, str]):
    """The decoded parameters of one request, with typed, validating accessors."""

    def __init__(self, query: Mapping[str, str], body: Mapping[str, str] | None = None) -> None:
        self._values = {**(body or {}), **query}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, name: str, *, required: bool = False) -> str | None:
        """The raw value; empty counts as absent."""
        value = self._values.get(name) or None
        if value is None and required:
            raise mandatory(name)
        return value

    def required(self, name: str) -> str:
        """The raw value of a mandatory parameter."""
        value = self.text(name, required=True)
        assert value is not None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        """A plain-notation decimal."""
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _DECIMAL_RE.fullmatch(value):
            raise illegal(name, _DECIMAL_RANGE)
        return Decimal(value)

    def integer(
        self, name: str, *, required: bool = False, default: int | None = None
    ) -> int | None:
        """A non-negative int64."""
        value = self.text(name, required=required)
        if value is None:
            return default
        if not _INT_RE.fullmatch(value) or int(value) > _INT64_MAX:
            raise illegal(name, _INT_RANGE)
        return int(value)

    def client_order_id(self, name: str) -> str | None:
        """A client order id (letters, digits, ``-``, ``_``, ``.``; at most 36)."""
        value = self.text(name)
        if value is not None and not _CLIENT_ID_RE.fullmatch(value):
            raise illegal(name, _CLIENT_ID_RANGE)
        return value

    def boolean(self, name: str) -> bool:
        """``true``/``false`` (any case); absent is false."""
        value = self.text(name)
        if value is None:
            return False
        if value.lower() not in ("true", "false"):
            raise illegal(name, "^(true|false)$")
        return value.lower() == "true"

    def symbol_list(self, name: str) -> list[str] | None:
        """A JSON array of symbol names (``["BTCUSDT","BNBBTC"]``); -1151 on duplicates."""
        value = self.text(name)
        if value is None:
            return None
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise illegal(name, '^\\["[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}\\]$') from None
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items) or not items:
            raise illegal(name, '^\\["[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}\\]$')
        if len(set(items)) != len(items):
            raise ApiError(-1151, "Symbol is present multiple times in the list.")
        return list(items)
