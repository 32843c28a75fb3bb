"""Builders shared by the tests: diffs, snapshots, a started sync machine, signing keys."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamer.sansio.book_sync import BookSync, SnapshotRequest
from streamer.sansio.wire import DepthDiff, DepthSnapshot, Venue

Levels = Iterable[Sequence[str]]


def diff(
    first: int,
    last: int,
    bids: Levels = (),
    asks: Levels = (),
    *,
    pu: int | None = None,
    symbol: str = "BTCUSDT",
) -> DepthDiff:
    return DepthDiff(symbol, first, last, pu, [list(b) for b in bids], [list(a) for a in asks], 0)


def snap(last: int, bids: Levels = (), asks: Levels = ()) -> DepthSnapshot:
    return DepthSnapshot(last, [list(b) for b in bids], [list(a) for a in asks])


def requests(sync: BookSync) -> list[SnapshotRequest]:
    return [e for e in sync.events() if isinstance(e, SnapshotRequest)]


def started(first: DepthDiff, venue: Venue = Venue.SPOT) -> tuple[BookSync, int]:
    """A machine fed its first diff, and the token of the snapshot it asked for."""
    sync = BookSync(first.symbol, venue)
    sync.receive_diff(first)
    (request,) = requests(sync)
    return sync, request.token


def book_of(sync: BookSync) -> tuple[dict[str, str], dict[str, str]]:
    bids = {p: q for _, p, q in sync.book.bids.levels()}
    asks = {p: q for _, p, q in sync.book.asks.levels()}
    return bids, asks


#: The HMAC example key and secret of Binance's docs (protocol §4.2, §6).
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


def ed25519_pems(raw_private: bytes | None = None) -> tuple[str, str]:
    """An Ed25519 key pair as (private PKCS#8 PEM, public PEM); random unless ``raw_private``."""
    key = Ed25519PrivateKey.from_private_bytes(raw_private or os.urandom(32))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
