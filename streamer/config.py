"""Frozen settings: where to connect and with which key.

``Endpoints`` selects the venue: real Binance, the testnet, or the local exchange of
``streamer.testing`` all differ only by these URLs. ``Credentials`` never shows its secret in a
repr, a log line or an exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm

from streamer.errors import ConfigurationError
from streamer.sansio.signing import load_ed25519_private_key

__all__ = ["Credentials", "Endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs of one venue: REST, market streams, WebSocket API, and the SBE market streams
    where the venue has them (spot; protocol §7.6)."""

    rest: str
    ws: str
    ws_api: str
    venue: str = "spot"
    sbe: str | None = None

    def __post_init__(self) -> None:
        if not self.rest.startswith(("http://", "https://")):
            raise ConfigurationError(f"rest endpoint must be an http(s) URL, got {self.rest!r}")
        for name in ("ws", "ws_api", "sbe"):
            url = getattr(self, name)
            if name == "sbe" and url is None:
                continue
            if not url.startswith(("ws://", "wss://")):
                raise ConfigurationError(f"{name} endpoint must be a ws(s) URL, got {url!r}")
        if self.venue not in ("spot", "usdm", "coinm"):
            raise ConfigurationError(f"unknown venue {self.venue!r}")

    @classmethod
    def binance_spot(cls) -> Endpoints:
        """Production spot (protocol §7.7)."""
        return cls(
            rest="https://api.binance.com",
            ws="wss://stream.binance.com:9443",
            ws_api="wss://ws-api.binance.com:443/ws-api/v3",
            sbe="wss://stream-sbe.binance.com:9443",
        )

    @classmethod
    def spot_testnet(cls) -> Endpoints:
        """Spot testnet (protocol §7.7)."""
        return cls(
            rest="https://testnet.binance.vision",
            ws="wss://stream.testnet.binance.vision",
            ws_api="wss://ws-api.testnet.binance.vision/ws-api/v3",
            sbe="wss://stream-sbe.testnet.binance.vision",
        )

    @classmethod
    def usdm(cls) -> Endpoints:
        """Production USD-M futures; depth streams live under the routed ``/public`` path (§7.8)."""
        return cls(
            rest="https://fapi.binance.com",
            ws="wss://fstream.binance.com/public",
            ws_api="wss://ws-fapi.binance.com/ws-fapi/v1",
            venue="usdm",
        )

    @classmethod
    def coinm(cls) -> Endpoints:
        """Production COIN-M futures (protocol §7.7; no WS-API, so ``ws_api`` is a placeholder)."""
        return cls(
            rest="https://dapi.binance.com",
            ws="wss://dstream.binance.com",
            ws_api="wss://ws-dapi.binance.com/ws-dapi/v1",
            venue="coinm",
        )

    @classmethod
    def local(cls, url: str, venue: str = "spot") -> Endpoints:
        """The local exchange of ``streamer.testing`` at ``url`` (what ``streamer exchange``
        prints, e.g. ``http://127.0.0.1:8080``): the same paths as Binance's hosts, one port;
        on spot its SBE streams also answer under ``/sbe`` there."""
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigurationError(f"local exchange URL must be http(s)://host:port, got {url!r}")
        ws = "ws" + base[4:]
        if venue == "usdm":
            return cls(rest=base, ws=f"{ws}/public", ws_api=f"{ws}/ws-fapi/v1", venue=venue)
        if venue == "coinm":
            return cls(rest=base, ws=ws, ws_api=f"{ws}/ws-dapi/v1", venue=venue)
        return cls(rest=base, ws=ws, ws_api=f"{ws}/ws-api/v3", venue=venue, sbe=f"{ws}/sbe")

    @property
    def rest_prefix(self) -> str:
        """The REST path prefix of this venue: ``/api/v3``, ``/fapi/v1`` or ``/dapi/v1``."""
        return {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}[self.venue]

    @property
    def depth_path(self) -> str:
        """The REST depth-snapshot path of this venue (protocol §2)."""
        return self.rest_prefix + "/depth"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key and its secret: an HMAC secret (``key_type="HMAC"``) or an Ed25519 private key
    in PKCS#8 PEM (``key_type="ED25519"``, see :meth:`ed25519`).

    The secret is excluded from ``repr`` and comparisons so it cannot leak into logs, and no
    error raised here quotes it. :meth:`ed25519` and :meth:`from_env` parse an Ed25519 PEM at
    once, so that a bad key is a :class:`~streamer.errors.ConfigurationError` before any I/O
    (the plain constructor does not: an API key alone, as the SBE handshake needs, may come with
    a placeholder secret).
    """

    api_key: str
    secret: str = field(repr=False, compare=False)
    key_type: str = "HMAC"

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ConfigurationError("api key and secret must both be non-empty")
        if self.key_type not in ("HMAC", "ED25519"):
            raise ConfigurationError(f"unknown key type {self.key_type!r}")

    def __repr__(self) -> str:
        shown = self.api_key[:4] + "…" if len(self.api_key) > 8 else "…"
        return f"Credentials(api_key={shown!r}, secret=<hidden>, key_type={self.key_type!r})"

    @classmethod
    def ed25519(cls, api_key: str, private_key_pem: str) -> Credentials:
        """An Ed25519 key: the API key Binance gave for it and the private key PEM
        (unencrypted PKCS#8); :class:`~streamer.errors.ConfigurationError` if it is not one."""
        credentials = cls(api_key, private_key_pem, "ED25519")
        credentials.check_key()
        return credentials

    def check_key(self) -> None:
        """Raise :class:`~streamer.errors.ConfigurationError` unless an Ed25519 secret is a
        usable private key PEM (HMAC secrets are any text)."""
        if self.key_type != "ED25519":
            return
        try:
            load_ed25519_private_key(self.secret)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # from None: the parser's own error must not carry the key's text along.
            raise ConfigurationError(
                "the Ed25519 secret must be an unencrypted PKCS#8 PEM private key"
            ) from None

    @classmethod
    def from_env(cls, prefix: str = "BINANCE") -> Credentials:
        """From the environment: ``{prefix}_API_KEY`` with either ``{prefix}_ED25519_KEY_FILE``
        (a file holding the Ed25519 private key PEM; it wins when set) or ``{prefix}_API_SECRET``
        (and optional ``{prefix}_KEY_TYPE``, default HMAC)."""
        key = os.environ.get(f"{prefix}_API_KEY", "")
        key_file = os.environ.get(f"{prefix}_ED25519_KEY_FILE", "")
        if key_file:
            if not key:
                raise ConfigurationError(f"set {prefix}_API_KEY with {prefix}_ED25519_KEY_FILE")
            try:
                with open(key_file, encoding="utf-8") as f:
                    pem = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"cannot read {prefix}_ED25519_KEY_FILE {key_file!r}: {type(exc).__name__}"
                ) from None
            return cls.ed25519(key, pem)
        secret = os.environ.get(f"{prefix}_API_SECRET", "")
        if not key or not secret:
            raise ConfigurationError(
                f"set {prefix}_API_KEY and {prefix}_API_SECRET (or {prefix}_ED25519_KEY_FILE)"
            )
        credentials = cls(key, secret, os.environ.get(f"{prefix}_KEY_TYPE", "HMAC"))
        credentials.check_key()
        return credentials
