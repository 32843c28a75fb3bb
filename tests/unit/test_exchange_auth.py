"""API keys and signed-request checks of the local exchange (protocol §4.2, §6), no sockets."""

from __future__ import annotations

import pytest

from streamer.sansio.signing import ed25519_sign, encode_params, hmac_sign, wsapi_payload
from streamer.testing.exchange.auth import Auth, AuthError, strip_signature
from tests.helpers import DOC_API_KEY, DOC_SECRET, ed25519_pems

NOW = 1_767_225_630_000


def _code(exc: pytest.ExceptionInfo[AuthError]) -> tuple[int, int]:
    return exc.value.status, exc.value.code


def test_strip_signature_keeps_the_rest_byte_for_byte() -> None:
    """The signature parameter is removed wherever it is; the rest stays as sent."""
    assert strip_signature("a=1&b=%2F") == ("a=1&b=%2F", None)
    assert strip_signature("a=1&signature=abc") == ("a=1", "abc")
    assert strip_signature("signature=abc&a=1") == ("a=1", "abc")
    assert strip_signature("signature=ab%2Bc%3D") == ("", "ab+c=")
    assert strip_signature("signature=ab+c") == ("", "ab+c")  # a raw '+' stays a '+'


def test_lookup_errors() -> None:
    """No or malformed key is -2014, an unknown one -2015, both HTTP 401."""
    auth = Auth()
    key = auth.register_hmac(9)
    assert auth.lookup(key.api_key).account_id == 9
    for bad in (None, "", "has space", "x" * 129):
        with pytest.raises(AuthError) as exc:
            auth.lookup(bad)
        assert _code(exc) == (401, -2014)
    with pytest.raises(AuthError) as exc:
        auth.lookup("Z" * 64)
    assert _code(exc) == (401, -2015)
    assert "secret" not in repr(key) and (key.secret or "") not in repr(key)


def test_registration_rejects_bad_keys() -> None:
    """A non-Ed25519 PEM and a reused API key are refused."""
    auth = Auth()
    with pytest.raises(ValueError):
        auth.register_ed25519(1, "not a pem")
    auth.register_hmac(1, api_key="abc", secret="s")
    with pytest.raises(ValueError):
        auth.register_hmac(2, api_key="abc")


@pytest.mark.parametrize(
    ("timestamp", "window", "error"),
    [
        (NOW, None, None),
        (NOW - 5000, None, None),
        (NOW - 5001, None, -1021),
        (NOW + 999, None, None),
        (NOW + 1000, None, -1021),
        (NOW - 60000, 60000, None),
        (NOW, 60001, -1131),
        (NOW - 5000, "5000.5", None),
        (NOW * 1000 - 5_000_999, "5000.999", None),  # µs timestamp, µs-precise window
        (NOW * 1000 - 5_001_000, "5000.999", -1021),
        (NOW, "5000.1234", -1100),
        (NOW * 1000 - 5_000_000, None, None),  # µs
        (NOW * 1000 - 5_001_000, None, -1021),
        (None, None, -1102),
        ("", None, -1102),
        ("12a", None, -1100),
        (True, None, -1100),
        (1_483_228_799_999, 60000, -1021),  # before 2017-01-01
    ],
)
def test_timing_rules(timestamp: object, window: object, error: int | None) -> None:
    """timestamp < server + 1000 and server - timestamp <= recvWindow (<= 60000, 3 decimals)."""
    if error is None:
        Auth.check_timing(timestamp, window, NOW)
        return
    with pytest.raises(AuthError) as exc:
        Auth.check_timing(timestamp, window, NOW)
    assert exc.value.code == error


def test_verify_rest_query_body_split() -> None:
    """The signature covers the raw query then the raw body, wherever the signature sits."""
    auth = Auth()
    key = auth.register_hmac(4)
    assert key.secret is not None
    query = encode_params({"symbol": "BTCUSDT", "side": "BUY"})
    body = encode_params({"quantity": "1", "timestamp": NOW})
    sig = hmac_sign(key.secret, query + body)
    params = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "1", "timestamp": str(NOW)}
    ok = auth.verify_rest(key.api_key, query, f"{body}&signature={sig}", params, NOW)
    assert ok.account_id == 4
    assert auth.verify_rest(key.api_key, f"{query}&signature={sig}", body, params, NOW) == ok
    with pytest.raises(AuthError) as exc:
        auth.verify_rest(key.api_key, query, f"{body}&signature={sig[:-2]}00", params, NOW)
    assert _code(exc) == (400, -1022)
    with pytest.raises(AuthError) as exc:
        auth.verify_rest(key.api_key, query, body, params, NOW)
    assert exc.value.code == -1102


def test_verify_wsapi_documented_vector() -> None:
    """The WS-API example of the docs authenticates (sorted params, HMAC hex)."""
    auth = Auth()
    auth.register_hmac(1, api_key=DOC_API_KEY, secret=DOC_SECRET)
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOC_API_KEY,
        "signature": "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24",
    }
    assert auth.verify_wsapi(params, 1645423376532 + 100).account_id == 1
    with pytest.raises(AuthError) as exc:
        auth.verify_wsapi(params, 1645423376532 + 101)
    assert exc.value.code == -1021
    with pytest.raises(AuthError) as exc:
        auth.verify_wsapi({**params, "price": "52000.01"}, 1645423376532)
    assert exc.value.code == -1022
    with pytest.raises(AuthError) as exc:
        auth.verify_wsapi({**params, "price": ["52000.00"]}, 1645423376532)
    assert exc.value.code == -1100


def test_verify_wsapi_ed25519() -> None:
    """An Ed25519 key signs the sorted WS-API payload in base64."""
    private, public = ed25519_pems()
    auth = Auth()
    key = auth.register_ed25519(8, public)
    params: dict[str, object] = {"apiKey": key.api_key, "timestamp": NOW}
    params["signature"] = ed25519_sign(private, wsapi_payload(params))  # type: ignore[arg-type]
    assert auth.verify_wsapi(params, NOW).kind == "ED25519"
