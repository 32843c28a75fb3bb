"""API keys of the local exchange and the checks of a signed request (protocol §4.2, §6).

Shared by REST (``rest.py``) and the WebSocket API (``wsapi.py``). Checks run in this order, each
with Binance's code (HTTP 401 for the key errors, 400 otherwise):

1. the key: missing or malformed -> -2014 "API-key format invalid."; unknown -> -2015;
2. ``signature`` and ``timestamp`` present -> else -1102;
3. ``recvWindow``: default 5000, at most 60000 (-1131), up to 3 decimals (µs precision);
4. timing: ``timestamp`` in ms, or µs when it has 16 digits; rejected with -1021 if before
   2017-01-01, if ``timestamp >= server + 1000`` or if ``server - timestamp > recvWindow``;
5. the signature over the payload: HMAC-SHA256 hex or Ed25519 base64 -> else -1022.

REST payload: the raw query string and the raw body, each without its ``signature`` parameter,
concatenated (what the client signed is exactly what it sent). WS-API payload: sorted ``k=v``.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from streamer.sansio.signing import (
    ParamValue,
    ed25519_verify,
    hmac_verify,
    load_ed25519_public_key,
    rest_payload,
    wsapi_payload,
)
from streamer.testing.exchange.api_error import ApiError

__all__ = ["ApiKey", "Auth", "AuthError", "strip_signature"]

DEFAULT_RECV_WINDOW = Decimal(5000)
MAX_RECV_WINDOW = Decimal(60000)
EARLIEST_MS = Decimal(1_483_228_800_000)  # 2017-01-01T00:00:00Z
_MICROS_FROM = 10**14  # a timestamp this large is in µs (ms timestamps have 13 digits until 5138)
_ALNUM = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"[A-Za-z0-9]{1,128}")
_INT_RE = re.compile(r"[0-9]{1,20}")
_WINDOW_RE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,3})?")


class AuthError(ApiError):
    """A refused signed request (key, signature, timestamp), as Binance reports it."""


def _mandatory(name: str) -> AuthError:
    return AuthError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key: the account it acts for and how its signatures are checked."""

    api_key: str
    account_id: int
    kind: str  # "HMAC" or "ED25519"
    secret: str | None = field(default=None, repr=False)  # HMAC only
    public_key_pem: str | None = field(default=None, repr=False)  # Ed25519 only

    def verify(self, payload: str, signature: str) -> bool:
        """Whether ``signature`` signs ``payload`` under this key."""
        if self.kind == "HMAC":
            assert self.secret is not None
            return hmac_verify(self.secret, payload, signature)
        assert self.public_key_pem is not None
        return ed25519_verify(self.public_key_pem, payload, signature)


def strip_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` (a query string or form body, as sent) without its ``signature`` parameter.

    Returns the remaining text, unchanged byte for byte, and the percent-decoded signature (the
    last one if several were sent; duplicates are refused elsewhere).
    """
    if "signature" not in raw:
        return raw, None
    kept: list[str] = []
    signature = None
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        if unquote(name) == "signature":
            # base64 never contains spaces: a space is a '+' that was sent unencoded.
            signature = unquote(value).replace(" ", "+")
        else:
            kept.append(part)
    return "&".join(kept), signature


class Auth:
    """The registry of API keys and the signed-request checks."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    # -- registry ------------------------------------------------------------------------------

    @staticmethod
    def _new_key() -> str:
        return "".join(secrets.choice(_ALNUM) for _ in range(64))

    def register_hmac(
        self, account_id: int, *, api_key: str | None = None, secret: str | None = None
    ) -> ApiKey:
        """Give ``account_id`` an HMAC key (generated unless given); returns it with its secret."""
        key = ApiKey(
            api_key=api_key or self._new_key(),
            account_id=account_id,
            kind="HMAC",
            secret=secret or self._new_key(),
        )
        return self._add(key)

    def register_ed25519(
        self, account_id: int, public_key_pem: str, *, api_key: str | None = None
    ) -> ApiKey:
        """Give ``account_id`` an Ed25519 key; ``ValueError`` if the PEM is not Ed25519."""
        load_ed25519_public_key(public_key_pem)
        key = ApiKey(
            api_key=api_key or self._new_key(),
            account_id=account_id,
            kind="ED25519",
            public_key_pem=public_key_pem,
        )
        return self._add(key)

    def _add(self, key: ApiKey) -> ApiKey:
        if not _KEY_RE.fullmatch(key.api_key):
            raise ValueError("an API key is 1 to 128 letters and digits")
        if key.api_key in self._keys:
            raise ValueError("API key already registered")
        self._keys[key.api_key] = key
        return key

    def lookup(self, api_key: str | None) -> ApiKey:
        """The key named ``api_key``: -2014 if missing or malformed, -2015 if unknown."""
        if not api_key or not _KEY_RE.fullmatch(api_key):
            raise AuthError(-2014, "API-key format invalid.", 401)
        key = self._keys.get(api_key)
        if key is None:
            raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return key

    def account_of(self, api_key: str | None) -> int:
        """The account id behind ``api_key`` (same errors as :meth:`lookup`)."""
        return self.lookup(api_key).account_id

    # -- checks --------------------------------------------------------------------------------

    @staticmethod
    def check_timing(timestamp: object, recv_window: object, now_ms: int) -> None:
        """Check ``timestamp`` against the server time within ``recvWindow`` (-1102/-1131/-1021)."""
        if timestamp is None or timestamp == "":
            raise _mandatory("timestamp")
        ts_text = str(timestamp)
        if isinstance(timestamp, bool) or not _INT_RE.fullmatch(ts_text):
            raise AuthError(
                -1100,
                "Illegal characters found in parameter 'timestamp'; "
                "legal range is '^[0-9]{1,20}$'.",
            )
        ts = Decimal(ts_text)
        if ts >= _MICROS_FROM:
            ts /= 1000
        window = DEFAULT_RECV_WINDOW
        if recv_window is not None and recv_window != "":
            window_text = str(recv_window)
            if isinstance(recv_window, bool) or not _WINDOW_RE.fullmatch(window_text):
                raise AuthError(
                    -1100,
                    "Illegal characters found in parameter 'recvWindow'; legal range is "
                    "'^[0-9]{1,20}(\\.[0-9]{1,3})?$'.",
                )
            try:
                window = Decimal(window_text)
            except InvalidOperation:  # pragma: no cover - the regex admits only decimals
                raise _mandatory("recvWindow") from None
            if window > MAX_RECV_WINDOW:
                raise AuthError(-1131, "recvWindow must be less than 60000")
        if ts < EARLIEST_MS or now_ms - ts > window:
            raise AuthError(-1021, "Timestamp for this request is outside of the recvWindow.")
        if ts >= now_ms + 1000:
            raise AuthError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )

    @staticmethod
    def check_signature(key: ApiKey, payload: str, signature: str | None) -> None:
        """-1022 unless ``signature`` signs ``payload`` under ``key``."""
        if not signature:
            raise _mandatory("signature")
        if not key.verify(payload, signature):
            raise AuthError(-1022, "Signature for this request is not valid.")

    def verify_rest(
        self,
        api_key: str | None,
        query: str,
        body: str,
        params: Mapping[str, str],
        now_ms: int,
    ) -> ApiKey:
        """Authenticate a signed REST request; ``query``/``body`` are the raw texts as sent.

        ``params`` are the decoded parameters (query winning over body) for the timing check.
        """
        key = self.lookup(api_key)
        bare_query, sig_query = strip_signature(query)
        bare_body, sig_body = strip_signature(body)
        signature = sig_query if sig_query is not None else sig_body
        if not signature:
            raise _mandatory("signature")
        self.check_timing(params.get("timestamp"), params.get("recvWindow"), now_ms)
        self.check_signature(key, rest_payload(bare_query, bare_body), signature)
        return key

    def verify_wsapi(self, params: Mapping[str, Any], now_ms: int) -> ApiKey:
        """Authenticate a signed WS-API request from its ``params`` (``apiKey`` included)."""
        api_key = params.get("apiKey")
        key = self.lookup(api_key if isinstance(api_key, str) else None)
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise _mandatory("signature")
        self.check_timing(params.get("timestamp"), params.get("recvWindow"), now_ms)
        values: dict[str, ParamValue] = {k: _scalar(k, v) for k, v in params.items()}
        self.check_signature(key, wsapi_payload(values), signature)
        return key


def _scalar(name: str, value: Any) -> ParamValue:
    if isinstance(value, str | int | float | Decimal | bool):
        return value
    raise AuthError(-1100, f"Illegal characters found in parameter '{name}'.")
