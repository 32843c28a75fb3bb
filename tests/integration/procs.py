"""Helpers for command-line tests: ``streamer`` subcommands run as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

T = 60.0  # the one bound on every wait for a subprocess (start-up imports included)

PIPE = asyncio.subprocess.PIPE


async def streamer(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """``python -m streamer ARGS`` with its stdout and stderr piped (unless given)."""
    kwargs.setdefault("stdout", PIPE)
    kwargs.setdefault("stderr", PIPE)
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "streamer", *args, **kwargs)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Wait for ``proc`` to exit (bounded); its status, stdout and stderr."""
    out, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode is not None
    return proc.returncode, (out or b"").decode(), (err or b"").decode()


@asynccontextmanager
async def exchange_process(*args: str) -> AsyncIterator[dict[str, Any]]:
    """``streamer exchange --json ARGS`` in a subprocess; yields its JSON line (the URLs)."""
    proc = await streamer("exchange", "--json", *args)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), T)
        assert line, "the exchange exited before printing its URLs"
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code, _out, err = await finish(proc)
        assert code == 0, err


async def lines_until(stream: asyncio.StreamReader, done: Any, seen: list[str]) -> None:
    """Read lines of ``stream`` into ``seen`` until ``done(seen)`` is true (bounded)."""
    async with asyncio.timeout(T):
        while not done(seen):
            line = await stream.readline()
            if not line:
                raise AssertionError(f"the stream ended first; it said: {''.join(seen)}")
            seen.append(line.decode())


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
