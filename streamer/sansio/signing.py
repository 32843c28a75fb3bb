"""Request signing for Binance REST and the WebSocket API (protocol §4.2, §6).

Pure functions, used by the client and by the local exchange alike, so that both sides agree on
every byte that is signed.

REST (protocol §4.2): the payload is the query string followed by the request body, with no
separator, *exactly as sent*. Since 2026-01-15 the payload must be percent-encoded before signing:
build the encoded string once with :func:`encode_params`, sign it, and send that same string.

WebSocket API (protocol §6): every parameter except ``signature`` (``apiKey`` included), sorted by
name, joined as ``k=v`` with ``&``, with no percent-encoding.

Key types: HMAC-SHA256 gives a hex digest, compared case-insensitively; Ed25519 gives base64.
Verification never raises on a malformed signature: a bad signature is simply not valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

__all__ = [
    "ParamValue",
    "ed25519_sign",
    "ed25519_verify",
    "encode_params",
    "hmac_sign",
    "hmac_verify",
    "load_ed25519_private_key",
    "load_ed25519_public_key",
    "param_str",
    "rest_payload",
    "wsapi_payload",
]

ParamValue = str | int | float | Decimal | bool
"""What a request parameter may hold before it is rendered as text (floats: prefer strings)."""


def param_str(value: ParamValue) -> str:
    """Render one parameter value as Binance expects it on the wire.

    Booleans are ``true``/``false`` (Python's ``str`` would give ``True``), and decimals use plain
    notation, never an exponent (``str(Decimal("1E-7"))`` is ``"1E-7"``, protocol §7.2).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _pairs(
    params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]],
) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(name, param_str(value)) for name, value in items]


def encode_params(params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]]) -> str:
    """Percent-encode parameters in their given order; sign and send exactly this string.

    Uses ``quote`` (space as ``%20``, ``/`` encoded too) rather than the form-style ``+``.
    """
    return urlencode(_pairs(params), quote_via=quote)


def rest_payload(query: str, body: str) -> str:
    """The REST signature payload: query string then body, no separator, as sent."""
    return query + body


def wsapi_payload(params: Mapping[str, ParamValue]) -> str:
    """The WebSocket API signature payload: sorted ``k=v`` pairs, ``signature`` excluded."""
    return "&".join(f"{k}={v}" for k, v in sorted(_pairs(params)) if k != "signature")


def hmac_sign(secret: str, payload: str) -> str:
    """HMAC-SHA256 of ``payload`` under ``secret``, as lowercase hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def hmac_verify(secret: str, payload: str, signature: str) -> bool:
    """Whether ``signature`` is the HMAC of ``payload``; hex case is ignored, time is constant."""
    expected = hmac_sign(secret, payload)
    # compare_digest on str requires ASCII; a non-ASCII signature can never be valid hex anyway.
    if not signature.isascii():
        return False
    return hmac.compare_digest(expected, signature.lower())


@lru_cache(maxsize=256)
def load_ed25519_private_key(pem: str) -> Ed25519PrivateKey:
    """Parse an unencrypted PKCS#8 PEM private key; ``ValueError`` if it is not Ed25519."""
    key = load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


@lru_cache(maxsize=256)
def load_ed25519_public_key(pem: str) -> Ed25519PublicKey:
    """Parse a PEM public key; ``ValueError`` if it is not Ed25519."""
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def ed25519_sign(private_key_pem: str, payload: str) -> str:
    """Ed25519 signature of ``payload``, base64 (percent-encode it when it goes into a URL)."""
    key = load_ed25519_private_key(private_key_pem)
    return base64.b64encode(key.sign(payload.encode())).decode()


def ed25519_verify(public_key_pem: str, payload: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is a valid Ed25519 signature of ``payload``."""
    key = load_ed25519_public_key(public_key_pem)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, payload.encode())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
