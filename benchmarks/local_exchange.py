"""Shared by the benchmarks: the local exchange in its own process, CPU windows, a loopback guard.

* ``exchange_process()`` runs ``python -m streamer exchange ... --json`` as a child process and
  yields the URLs of its first output line, so that the server never shares a core's time slice or
  the GIL with the client being measured.
* ``Window`` measures a client: it counts messages between the end of a warm-up and a stop time and
  samples process CPU and wall time at both edges (``cpu`` = CPU seconds / wall seconds, so 1.0 is
  one core busy; threads of the process are included).
* ``loopback_only()`` makes every name lookup for a host other than the loopback fail at once, so a
  third-party client that would reach for a real Binance host (markets of other venues, update
  checks) fails loudly instead of sending traffic off this machine.

Not a benchmark itself; never collected by pytest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@contextlib.contextmanager
def exchange_process(
    symbols: Sequence[str] = ("BTCUSDT",),
    *,
    firehose: bool = True,
    rate: float = 0.0,
    seed: int = 1,
    uvloop: bool = True,
) -> Iterator[dict[str, str]]:
    """``streamer exchange --json`` in a child process; yields its URLs and demo keys.

    ``rate`` is the live market's actions per second (0: still); with ``firehose`` the market
    streams and ``/api/v3/depth`` of ``symbols`` come from the pre-generated firehose instead.
    With ``uvloop`` the same command line runs with uvloop installed first (``python -m streamer``
    runs plain asyncio), as bench_exchange.py measures the server: it serves the firehose 5-10%
    faster that way, and the fastest clients read as fast as the firehose can send.
    """
    if uvloop:
        boot = "import sys, uvloop; uvloop.install(); import streamer.cli as c; sys.exit(c.main())"
        cmd = [sys.executable, "-c", boot, "exchange"]
    else:
        cmd = [sys.executable, "-m", "streamer", "exchange"]
    cmd += ["--json", "--seed", str(seed)]
    cmd += ["--rate", str(rate), "--symbols", *symbols]
    if firehose:
        cmd.append("--firehose")
    with json_child(cmd) as urls:
        yield urls


@contextlib.contextmanager
def json_child(cmd: Sequence[str], *, start_timeout: float = 60.0) -> Iterator[dict[str, str]]:
    """Run ``cmd`` (in the repository, importing this tree); yield its first line, a JSON object.

    The child is terminated on exit. Its stderr goes to a file, shown only if it fails to start:
    a client that resets its connection at the end of a run makes aiohttp log a traceback, which
    is noise in a benchmark's output.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=env)
        try:
            assert proc.stdout is not None
            line = _readline(proc.stdout, start_timeout)
            if not line:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"{cmd[:3]} exited with {proc.wait()}:\n{tail}")
            first: dict[str, str] = json.loads(line)
            yield first
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _readline(stream: Any, timeout: float) -> bytes:
    """One line from a child's stdout, waiting at most ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"no output from the exchange within {timeout} s")
    line: bytes = stream.readline()
    return line


class Window:
    """Counts messages in ``[start + warmup, start + warmup + seconds)``; CPU and wall at the edges.

    The receive loops call ``tick(n)`` every few messages (``n``: messages so far); it returns
    False once the window is over. ``finish(n)`` closes the window early (the stream ended).
    """

    __slots__ = ("_cpu0", "_n0", "_t0", "cpu", "messages", "open_at", "seconds", "stop_at")

    def __init__(self, warmup: float, seconds: float) -> None:
        self.open_at = time.perf_counter() + warmup
        self.stop_at = self.open_at + seconds
        self.seconds = 0.0
        self.messages = 0
        self.cpu = 0.0
        self._t0: float | None = None
        self._n0 = 0
        self._cpu0 = 0.0

    def tick(self, n: int) -> bool:
        now = time.perf_counter()
        if self._t0 is None:
            if now >= self.open_at:
                self._t0, self._n0, self._cpu0 = now, n, time.process_time()
            return True
        if now < self.stop_at:
            return True
        self._close(now, n)
        return False

    def finish(self, n: int) -> None:
        if self._t0 is not None and not self.seconds:
            self._close(time.perf_counter(), n)

    @property
    def done(self) -> bool:
        return self.seconds > 0

    def _close(self, now: float, n: int) -> None:
        assert self._t0 is not None
        self.seconds = now - self._t0
        self.messages = n - self._n0
        self.cpu = (time.process_time() - self._cpu0) / self.seconds

    def result(self) -> dict[str, float]:
        rate = self.messages / self.seconds if self.seconds else 0.0
        return {"msgs_per_s": rate, "client_cpu": self.cpu, "seconds": self.seconds}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True  # a passive/local lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse name lookups of any host but the loopback while inside (Python-level lookups).

    Covers what the peers use: ``socket.getaddrinfo`` (asyncio's default loop, aiohttp's
    threaded resolver, requests/urllib3). uvloop resolves names in libuv and is not covered;
    the peers run on the default loop.
    """
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"benchmarks stay on loopback, not {host!r}")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded
    try:
        yield
    finally:
        socket.getaddrinfo = real
