"""House rules that code review alone would miss: pure cores and a curated public API.

The purity check follows imports transitively: a module under ``streamer/sansio/`` must not reach
I/O, clocks, randomness or the environment, either directly or through any ``streamer`` module
it imports (absolute or relative). Third-party packages are not followed (orjson, cryptography).
Parent packages' ``__init__`` files are not followed for ``import streamer.a.b`` either: the rule
is about the code a module depends on, and ``streamer/__init__.py`` re-exports the whole API
(``Credentials.from_env`` reads ``os.environ``), so every module would fail through it.
"""

from __future__ import annotations

import ast
import pkgutil
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

import streamer

FORBIDDEN = frozenset(
    {
        "asyncio", "socket", "ssl", "selectors", "threading", "multiprocessing", "concurrent",
        "subprocess", "time", "datetime", "random", "secrets", "os", "aiohttp", "websockets",
        "uvloop",
    }
)  # fmt: skip
FORBIDDEN_PACKAGES = ("aio", "testing")  # subpackages of the top package
#: Names whose use defeats a static import check: dynamic imports and code from strings.
DYNAMIC = frozenset({"__import__", "import_module"})
DYNAMIC_CALLS = frozenset({"exec", "eval"})
SRC = Path(streamer.__file__).resolve().parent.parent


def _module_path(name: str, src: Path) -> Path | None:
    """The file that defines module ``name`` under ``src``, or None."""
    base = src.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _package(path: Path, src: Path) -> list[str]:
    """The package a file's relative imports start from, as name parts."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    return parts[:-1]  # a module's package; for pkg/__init__.py that is pkg itself


def _imports(path: Path, src: Path, top: str) -> Iterator[tuple[str, int]]:
    """(absolute dotted name, line) of everything ``path`` imports; dynamic tricks as "name()"."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package(path, src)
                keep = len(package) - (node.level - 1)
                if keep < 1:
                    yield "." * node.level + (node.module or "") + " (beyond the top)", node.lineno
                    continue
                base = ".".join(package[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                if alias.name in DYNAMIC:
                    yield f"{base}.{alias.name}()", node.lineno
                sub = f"{base}.{alias.name}"
                # ``from pkg import x`` runs pkg.x when x is a submodule, else reads pkg itself;
                # a forbidden pkg.x is caught even before its file exists.
                inside = base == top or base.startswith(top + ".")
                named = _module_path(sub, src) is not None
                if inside and (named or (_verdict(sub, top) and not _verdict(base, top))):
                    yield sub, node.lineno
                else:
                    yield base, node.lineno
        elif isinstance(node, ast.Name) and node.id in DYNAMIC:
            yield f"{node.id}()", node.lineno
        elif isinstance(node, ast.Attribute) and node.attr in DYNAMIC:
            yield f"{node.attr}()", node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in DYNAMIC_CALLS
        ):
            yield f"{node.func.id}()", node.lineno


def _verdict(name: str, top: str) -> str | None:
    """Why importing ``name`` is forbidden, or None."""
    if name.endswith(")"):
        return "dynamic import or code from a string"
    if name.split(".")[0] in FORBIDDEN:
        return "forbidden"
    for package in FORBIDDEN_PACKAGES:
        banned = f"{top}.{package}"
        if name == banned or name.startswith(banned + "."):
            return "forbidden"
    return None


def purity_violations(start: Path, src: Path = SRC, top: str = "streamer") -> list[str]:
    """Every forbidden import reachable from a module under ``start``, as an import chain.

    ``src`` is the directory holding the ``top`` package; imports of ``top.*`` are followed
    into their files (breadth first, so each chain shown is a shortest one).
    """

    def show(path: Path) -> str:
        return path.relative_to(src).as_posix()

    found: set[str] = set()
    for root in sorted(start.rglob("*.py")):
        chains: dict[Path, list[str]] = {root: [show(root)]}
        queue = deque([root])
        while queue:
            path = queue.popleft()
            for name, line in _imports(path, src, top):
                chain = [*chains[path][:-1], f"{show(path)}:{line}"]
                if _verdict(name, top) is not None:
                    found.add(" -> ".join([*chain, name]))
                    continue
                if name != top and not name.startswith(top + "."):
                    continue  # third-party or standard library: allowed, not followed
                target = _module_path(name, src)
                if target is None:
                    found.add(" -> ".join([*chain, f"{name} (not found)"]))
                elif target not in chains:
                    chains[target] = [*chain, show(target)]
                    queue.append(target)
    return sorted(found)


def test_sansio_reaches_no_io_time_randomness_or_environment() -> None:
    """No module under streamer/sansio reaches a forbidden import, directly or transitively."""
    start = SRC / "streamer" / "sansio"
    assert len(list(start.rglob("*.py"))) >= 12
    assert purity_violations(start) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a fake ``streamer`` source tree (packages get an empty __init__.py) under tmp_path."""
    for name, text in files.items():
        path = tmp_path / name
        for parent in path.relative_to(tmp_path).parents:
            init = tmp_path / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text("")
        path.write_text(text)
    return tmp_path / "streamer" / "sansio"


def test_the_purity_walker_accepts_a_clean_tree(tmp_path: Path) -> None:
    """Pure imports, relative imports, third-party imports and import cycles pass (and halt)."""
    start = _tree(
        tmp_path,
        {
            "streamer/sansio/a.py": "from . import b\nfrom .b import f\nimport orjson\n",
            "streamer/sansio/b.py": "import streamer.sansio.a\nfrom decimal import Decimal\n",
            "streamer/errors.py": "class E(Exception): ...\n",
            "streamer/sansio/c.py": "from ..errors import E\nfrom streamer import errors\n",
        },
    )
    assert purity_violations(start, tmp_path) == []


@pytest.mark.parametrize(
    ("source", "reached"),
    [
        ("import secrets\n", "secrets"),
        ("from datetime import datetime\n", "datetime"),
        ("x = __import__('time')\n", "__import__()"),
        ("import importlib\nm = importlib.import_module('time')\n", "import_module()"),
        ("from importlib import import_module\n", "importlib.import_module()"),
        ("exec('import time')\n", "exec()"),
        ("import streamer.testing.exchange.server\n", "streamer.testing.exchange.server"),
        ("from streamer.testing.exchange import server\n", "streamer.testing.exchange.server"),
        ("from ..testing.exchange import server\n", "streamer.testing.exchange.server"),
        ("from streamer import aio\n", "streamer.aio"),
        ("import os.path\n", "os.path"),
        ("from concurrent.futures import Future\n", "concurrent.futures"),
    ],
)
def test_the_purity_walker_catches_direct_tricks(tmp_path: Path, source: str, reached: str) -> None:
    """Each way of importing something forbidden, dynamic ones included, is caught and named."""
    start = _tree(
        tmp_path,
        {
            "streamer/sansio/x.py": "import orjson\n" + source,
            "streamer/testing/exchange/server.py": "import aiohttp\n",
        },
    )
    line = source.count("\n")  # the offending statement is on the last line of ``source``
    assert purity_violations(start, tmp_path) == [f"streamer/sansio/x.py:{line + 1} -> {reached}"]


@pytest.mark.parametrize(
    "source",
    ["import streamer.config\n", "from streamer import config\n", "from .. import config\n"],
)
def test_the_purity_walker_follows_streamer_imports(tmp_path: Path, source: str) -> None:
    """A forbidden import two modules away is caught, and the message shows the whole chain."""
    start = _tree(
        tmp_path,
        {
            "streamer/sansio/x.py": source,
            "streamer/config.py": '"""Settings."""\n\nimport os\n',
        },
    )
    assert purity_violations(start, tmp_path) == [
        "streamer/sansio/x.py:1 -> streamer/config.py:3 -> os"
    ]


def test_the_purity_walker_follows_package_reexports(tmp_path: Path) -> None:
    """A name taken from a package's __init__ is followed through whatever that __init__ imports."""
    start = _tree(
        tmp_path,
        {
            "streamer/__init__.py": "from streamer.config import Credentials\n",
            "streamer/config.py": "from os import environ\n",
            "streamer/sansio/x.py": "from . import y\n",
            "streamer/sansio/y.py": "from streamer import Credentials\n",
        },
    )
    assert purity_violations(start, tmp_path) == [
        "streamer/sansio/x.py:1 -> streamer/sansio/y.py:1 -> streamer/__init__.py:1"
        " -> streamer/config.py:1 -> os",
        "streamer/sansio/y.py:1 -> streamer/__init__.py:1 -> streamer/config.py:1 -> os",
    ]


def test_the_purity_walker_reports_imports_it_cannot_resolve(tmp_path: Path) -> None:
    """A streamer import that names no file is reported rather than silently skipped."""
    start = _tree(tmp_path, {"streamer/sansio/x.py": "from streamer.gone import thing\n"})
    assert purity_violations(start, tmp_path) == [
        "streamer/sansio/x.py:1 -> streamer.gone (not found)"
    ]


def test_public_api_is_exactly_all() -> None:
    """streamer.__all__ lists every public name the package exports, each importable."""
    public = {name for name in dir(streamer) if not name.startswith("_")}
    # Submodules become attributes of the package once anything imports them; they are not
    # part of the curated API.
    modules = {info.name for info in pkgutil.iter_modules(streamer.__path__)}
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
