"""Credentials: HMAC or Ed25519 (from a PEM file in the environment); never shown anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.config import Credentials
from streamer.errors import ConfigurationError
from tests.helpers import ed25519_pems

SECRET = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t"


def test_repr_and_str_hide_the_secret() -> None:
    """repr/str show a key prefix and the type, never the secret."""
    creds = Credentials("ABCDEFGHIJKL", SECRET)
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert SECRET not in text and "<hidden>" in text
    assert "ABCDEFGHIJKL" not in repr(creds)  # only a prefix of the key either


def test_ed25519_constructor() -> None:
    """Credentials.ed25519 takes the PEM and never shows it."""
    private, _ = ed25519_pems()
    creds = Credentials.ed25519("KEY123456789", private)
    assert (creds.key_type, creds.secret) == ("ED25519", private)
    body = private.splitlines()[1]
    assert body not in repr(creds)


def test_ed25519_bad_pem_error_hides_it() -> None:
    """A secret that is not an Ed25519 PEM is a ConfigurationError that does not quote it,
    nor chain the parser's error."""
    with pytest.raises(ConfigurationError) as info:
        Credentials.ed25519("KEY123456789", SECRET)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_from_env_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    """BINANCE_API_KEY + BINANCE_API_SECRET: an HMAC key."""
    monkeypatch.setenv("BINANCE_API_KEY", "KEY123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    monkeypatch.delenv("BINANCE_ED25519_KEY_FILE", raising=False)
    monkeypatch.delenv("BINANCE_KEY_TYPE", raising=False)
    creds = Credentials.from_env()
    assert (creds.api_key, creds.secret, creds.key_type) == ("KEY123456789", SECRET, "HMAC")


def test_from_env_ed25519_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """BINANCE_ED25519_KEY_FILE names the PEM file; it wins over an API secret."""
    private, _ = ed25519_pems()
    key_file = tmp_path / "key.pem"
    key_file.write_text(private)
    monkeypatch.setenv("BINANCE_API_KEY", "KEY123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("BINANCE_ED25519_KEY_FILE", str(key_file))
    creds = Credentials.from_env()
    assert (creds.key_type, creds.secret) == ("ED25519", private)


def test_from_env_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Missing key, unreadable file or a file that is no key: ConfigurationError, no secret
    in the message."""
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_ED25519_KEY_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="BINANCE_API_KEY"):
        Credentials.from_env()
    monkeypatch.setenv("BINANCE_ED25519_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="BINANCE_API_KEY"):
        Credentials.from_env()  # a key file, but no API key
    monkeypatch.setenv("BINANCE_API_KEY", "KEY123456789")
    with pytest.raises(ConfigurationError, match="cannot read"):
        Credentials.from_env()
    not_a_key = tmp_path / "secret.txt"
    not_a_key.write_text(SECRET)
    monkeypatch.setenv("BINANCE_ED25519_KEY_FILE", str(not_a_key))
    with pytest.raises(ConfigurationError) as info:
        Credentials.from_env()
    assert SECRET not in str(info.value)
