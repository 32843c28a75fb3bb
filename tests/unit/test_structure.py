"""House rules that code review alone would miss: pure cores and a curated public API."""

from __future__ import annotations

import ast
from pathlib import Path

import streamer

FORBIDDEN = {"asyncio", "socket", "ssl", "selectors", "aiohttp", "websockets", "time", "random"}
PURE = [Path(streamer.__file__).parent / "sansio"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_sansio_imports_no_io_time_or_randomness() -> None:
    """Nothing under streamer/sansio imports asyncio, sockets, aiohttp, websockets, time, random."""
    files = [f for folder in PURE for f in folder.rglob("*.py")]
    assert len(files) >= 7
    offenders = {str(f.name): imported_modules(f) & FORBIDDEN for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_purity_check_sees_imports(tmp_path: Path) -> None:
    """The import walker finds both import forms (so the purity test can fail)."""
    sample = tmp_path / "m.py"
    sample.write_text("import asyncio\nfrom time import monotonic\nfrom . import x\n")
    assert imported_modules(sample) == {"asyncio", "time"}


def test_public_api_is_exactly_all() -> None:
    """streamer.__all__ lists every public name the package exports, each importable."""
    public = {name for name in dir(streamer) if not name.startswith("_")}
    modules = {"cli", "config", "errors", "sansio", "testing", "aio", "data"}
    assert set(streamer.__all__) == public - modules
    for name in streamer.__all__:
        assert getattr(streamer, name) is not None


def test_every_error_derives_from_streamer_error() -> None:
    """The exception tree has one root, and errors carry structured attributes."""
    from streamer import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.StreamerError)
    exc = errors.RateLimited("slow down", status=429, retry_after=3.0)
    assert (exc.status, exc.retry_after, exc.code) == (429, 3.0, None)


def test_credentials_never_show_the_secret() -> None:
    """Credentials' repr and str keep the secret out of logs."""
    creds = streamer.Credentials("abcdefghijkl", "TOPSECRETVALUE")
    assert "TOPSECRET" not in repr(creds) and "TOPSECRET" not in str(creds)
    assert "abcdefghijkl" not in repr(creds)
