"""Signing: Binance's documented vectors (protocol §4.2, §6), RFC 8032, round trips, mismatches."""

from __future__ import annotations

import ast
import base64
from decimal import Decimal
from pathlib import Path

import pytest

from streamer.sansio import signing
from streamer.sansio.signing import (
    ed25519_sign,
    ed25519_verify,
    encode_params,
    hmac_sign,
    hmac_verify,
    rest_payload,
    wsapi_payload,
)
from tests.helpers import DOC_API_KEY, DOC_SECRET, ed25519_pems

# The illustrative key pair of Binance's documentation; it protects nothing.
DOC_ORDER = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
    ("recvWindow", "5000"),
    ("timestamp", "1499827319559"),
]


def test_rest_query_vector() -> None:
    """The documented query-string-only HMAC example signs to the documented hex."""
    payload = rest_payload(encode_params(DOC_ORDER), "")
    assert payload == (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    assert hmac_sign(DOC_SECRET, payload) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_rest_query_and_body_vector() -> None:
    """Query plus body are concatenated without a separator (documented example 3)."""
    payload = rest_payload(encode_params(DOC_ORDER[:4]), encode_params(DOC_ORDER[4:]))
    assert "timeInForce=GTCquantity=1" in payload
    assert hmac_sign(DOC_SECRET, payload) == (
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )


def test_rest_non_ascii_vector_is_percent_encoded() -> None:
    """A Unicode symbol is percent-encoded before signing (the 2026 rule, documented vector)."""
    params = [("symbol", "１２３４５６"), *DOC_ORDER[1:]]
    payload = encode_params(params)
    assert payload.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    assert hmac_sign(DOC_SECRET, payload) == (
        "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_wsapi_vector_sorted_unencoded() -> None:
    """The WS-API payload sorts every param but signature and signs to the documented hex."""
    params: dict[str, signing.ParamValue] = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOC_API_KEY,
        "signature": "ignored",
    }
    payload = wsapi_payload(params)
    assert payload == (
        f"apiKey={DOC_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100"
        "&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert hmac_sign(DOC_SECRET, payload) == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )


def test_wsapi_payload_renders_booleans_and_decimals() -> None:
    """Booleans become true/false and decimals plain notation; nothing is percent-encoded."""
    payload = wsapi_payload({"b": True, "a": Decimal("1E-7"), "c": "x y/z", "d": False})
    assert payload == "a=0.0000001&b=true&c=x y/z&d=false"


def test_encode_params_quotes_space_slash_and_json() -> None:
    """encode_params uses %20 for spaces and encodes '/', quotes and brackets."""
    encoded = encode_params({"symbols": '["BTCUSDT","BNBBTC"]', "note": "a b/c", "flag": True})
    assert encoded == "symbols=%5B%22BTCUSDT%22%2C%22BNBBTC%22%5D&note=a%20b%2Fc&flag=true"


def test_hmac_verify_is_case_insensitive_and_detects_mismatch() -> None:
    """An upper-case hex signature verifies; a changed payload or signature does not."""
    payload = "symbol=LTCBTC&timestamp=1"
    signature = hmac_sign(DOC_SECRET, payload)
    assert hmac_verify(DOC_SECRET, payload, signature.upper())
    assert not hmac_verify(DOC_SECRET, payload + "0", signature)
    assert not hmac_verify(
        DOC_SECRET, payload, signature[:-1] + ("0" if signature[-1] != "0" else "1")
    )
    assert not hmac_verify("other", payload, signature)
    assert not hmac_verify(DOC_SECRET, payload, "é" * 64)


def test_ed25519_rfc8032_vector() -> None:
    """Ed25519 signing reproduces RFC 8032 test 2 (one-byte message 0x72)."""
    private, public = ed25519_pems(
        bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    )
    signature = ed25519_sign(private, "r")
    assert base64.b64decode(signature).hex() == (
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert ed25519_verify(public, "r", signature)


def test_ed25519_round_trip_and_mismatch() -> None:
    """A signature verifies for its payload only, under its own key only, and never raises."""
    private, public = ed25519_pems(bytes(range(32)))
    _, other_public = ed25519_pems(bytes(range(1, 33)))
    payload = rest_payload("symbol=BTCUSDT&timestamp=1", "side=BUY")
    signature = ed25519_sign(private, payload)
    assert ed25519_verify(public, payload, signature)
    assert not ed25519_verify(public, payload + "x", signature)
    assert not ed25519_verify(other_public, payload, signature)
    assert not ed25519_verify(public, payload, "not base64!")
    assert not ed25519_verify(public, payload, base64.b64encode(b"short").decode())
    assert not ed25519_verify(public, payload, "é")


def test_loading_a_non_ed25519_key_is_a_value_error() -> None:
    """A PEM that is not an Ed25519 public key is refused with ValueError."""
    with pytest.raises(ValueError):
        signing.load_ed25519_public_key(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )


def test_signing_module_is_pure() -> None:
    """signing.py imports no asyncio, socket, time or random module."""
    tree = ast.parse(Path(signing.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "time", "random", "aiohttp", "websockets"}
