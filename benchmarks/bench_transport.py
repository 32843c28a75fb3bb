"""WebSocket clients' receive paths: which reads frames fastest over loopback, at what client CPU.

Sources, each in its own process so that the client under test has this process to itself:
  firehose       ``streamer exchange --firehose`` (run with uvloop installed): the 20-level spot
                 diffs of the local exchange, /ws/btcusdt@depth@100ms. Real frames, but the server
                 is the limit for the fastest clients, so a raw-socket reader (no WebSocket
                 library, frames counted, not decoded) is measured too: the server's ceiling. On a
                 server-bound source compare clients by CPU per message, not msgs/s.
  blast-small    a minimal WebSocket server (``--serve-blast``, below) writing one pre-framed
                 buffer of 104-byte text frames (a bookTicker) over and over: no per-frame work on
                 the server, so the rate is the client's own ceiling on the issue's "small frames".
  blast-depth20  the same server with the firehose's 20-level diff payloads: the client's ceiling
                 on frames of the size that books are kept from.
Clients, minimal receive loops that each take the frame's data once:
  aiohttp.receive        ``msg = await ws.receive()`` on ``ClientSession.ws_connect``: text frames
                         arrive decoded to ``str`` (``msg.data`` is a tuple field; the cost is the
                         UTF-8 decode in aiohttp's reader)
  aiohttp.iter           ``async for msg in ws``
  aiohttp.receive_bytes  ``ws_connect(..., decode_text=False)`` (public since aiohttp 3.14): text
                         frames arrive as ``bytes``, orjson takes them as they are
  aiohttp._reader        ``await ws._reader.read()``: PRIVATE, measured only to show what
                         ``receive()`` itself costs; never for the product
  websockets.iter        ``async for frame in ws`` on ``websockets.asyncio.client.connect``
  websockets.recv        ``await ws.recv()``
  websockets.recv_bytes  ``await ws.recv(decode=False)`` (websockets >= 13)
each on asyncio's default loop and on uvloop, a fresh event loop per run, all runs interleaved.
Client settings of the main table: aiohttp ``compress=0, max_msg_size=1 MiB, autoping=True,
heartbeat=None``; websockets ``compression=None, max_size=1 MiB, max_queue=16`` (its default).
Options (``--options``, on by default): a few settings that matter, on uvloop, blast-small.

Usage: python benchmarks/bench_transport.py [--json] [--seconds 2] [--repeat 5] [--warmup 0.5]
                                            [--sources firehose,blast-small,blast-depth20]
                                            [--no-options] [--server-loop uvloop|asyncio]
Reports medians over the repeats. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import platform
import socket
import statistics
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from bench_exchange import _handshake  # noqa: E402
from local_exchange import Window, exchange_process, json_child  # noqa: E402

from streamer.testing.exchange.firehose import generate_series  # noqa: E402

CHECK = 1023  # the window is checked every 1024 messages: ~1 ms at 1M msgs/s
MAX_SIZE = 1 << 20
FIREHOSE_PATH = "/ws/btcusdt@depth@100ms"
BOOK_TICKER = (
    b'{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",'
    b'"a":"25.36520000","A":"40.66000000"}'
)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Client = Callable[[str, Window], Awaitable[str]]


# ---------------------------------------------------------------------- receive loops


async def aiohttp_receive(
    url: str,
    window: Window,
    *,
    decode_text: bool = True,
    iterate: bool = False,
    private: bool = False,
    heartbeat: float | None = None,
    per_call_timeout: float | None = None,
) -> str:
    """Count frames read through aiohttp; the type name of the last frame's data."""
    text = aiohttp.WSMsgType.TEXT
    data: Any = None
    n = 0
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url,
            compress=0,
            max_msg_size=MAX_SIZE,
            autoping=True,
            heartbeat=heartbeat,
            decode_text=decode_text,
        ) as ws,
    ):
        if iterate:
            async for msg in ws:
                if msg.type is not text:
                    break
                data = msg.data
                n += 1
                if not n & CHECK and not window.tick(n):
                    break
        else:
            # the private reader is a reference point only: what receive() adds on top of it
            receive = ws._reader.read if private else partial(ws.receive, per_call_timeout)
            while True:
                msg = await receive()
                if msg.type is not text:
                    break
                data = msg.data
                n += 1
                if not n & CHECK and not window.tick(n):
                    break
        window.finish(n)
    return type(data).__name__


async def websockets_receive(
    url: str,
    window: Window,
    *,
    decode: bool | None = None,
    iterate: bool = False,
    max_queue: int | None = 16,
    per_call_timeout: float | None = None,
) -> str:
    """Count frames read through websockets' asyncio client; the type name of the last one."""
    data: Any = None
    n = 0
    async with connect(
        url, compression=None, max_size=MAX_SIZE, max_queue=max_queue, close_timeout=5
    ) as ws:
        if iterate:
            async for frame in ws:
                data = frame
                n += 1
                if not n & CHECK and not window.tick(n):
                    break
        elif per_call_timeout is not None:
            recv = ws.recv
            while True:
                async with asyncio.timeout(per_call_timeout):
                    data = await recv(decode)
                n += 1
                if not n & CHECK and not window.tick(n):
                    break
        else:
            recv = ws.recv
            while True:
                data = await recv(decode)
                n += 1
                if not n & CHECK and not window.tick(n):
                    break
        window.finish(n)
        await _close_draining(ws)
    return type(data).__name__


async def _close_draining(ws: ClientConnection) -> None:
    """Close while still reading: the server's close frame queues behind frames in flight, and
    websockets stops reading from the socket while its own queue (``max_queue``) is full."""
    closing = asyncio.ensure_future(ws.close())
    with contextlib.suppress(ConnectionClosed):
        while not closing.done():
            await ws.recv()
    await closing


def raw_socket(url: str, window: Window) -> str:
    """No WebSocket library, no frame parsing: count the bytes the socket delivers.

    Divided by the mean framed size of the source's frames, this is the most frames per second the
    source and the loopback deliver to one Python reader: the ceiling of every client.
    """
    host, _, rest = url.removeprefix("ws://").partition(":")
    port, _, path = rest.partition("/")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    try:
        n = len(_handshake(sock, "/" + path))
        buf = bytearray(1 << 20)
        recv_into = sock.recv_into
        next_check = 1 << 20
        while True:
            got = recv_into(buf)
            if not got:
                break
            n += got
            if n >= next_check:
                next_check = n + (1 << 20)
                if not window.tick(n):
                    break
        window.finish(n)
    finally:
        sock.close()
    return "none"


@dataclass(frozen=True)
class Variant:
    name: str
    client: Client
    private: bool = False
    note: str = ""


MAIN: list[Variant] = [
    Variant("aiohttp.receive", aiohttp_receive),
    Variant("aiohttp.iter", partial(aiohttp_receive, iterate=True)),
    Variant("aiohttp.receive_bytes", partial(aiohttp_receive, decode_text=False)),
    Variant("aiohttp._reader", partial(aiohttp_receive, private=True), private=True),
    Variant("websockets.iter", partial(websockets_receive, iterate=True)),
    Variant("websockets.recv", websockets_receive),
    Variant("websockets.recv_bytes", partial(websockets_receive, decode=False)),
]
OPTIONS: list[Variant] = [
    Variant("aiohttp.receive", aiohttp_receive, note="as in the main table"),
    Variant(
        "aiohttp.receive heartbeat=20",
        partial(aiohttp_receive, heartbeat=20.0),
        note="ping after 20 s of silence; a timer reset per read chunk, not per frame",
    ),
    Variant(
        "aiohttp.receive(timeout=30)",
        partial(aiohttp_receive, per_call_timeout=30.0),
        note="a timeout context per receive() call",
    ),
    Variant("websockets.recv", websockets_receive, note="as in the main table (max_queue=16)"),
    Variant(
        "websockets.recv max_queue=1024",
        partial(websockets_receive, max_queue=1024),
        note="more frames buffered before websockets stops reading the socket",
    ),
    Variant(
        "websockets.recv under asyncio.timeout(30)",
        partial(websockets_receive, per_call_timeout=30.0),
        note="a timeout context per recv() call",
    ),
]
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


# ---------------------------------------------------------------------- the blast server


def blast_payloads(kind: str) -> list[bytes]:
    """Frame payloads for ``--serve-blast``: a bookTicker, or the firehose's 20-level diffs."""
    if kind == "small":
        return [BOOK_TICKER]
    series = generate_series("BTCUSDT", seed=1, messages=256)
    out = []
    for k in range(256):
        first, last = series.ids(k)
        bids, asks = series.levels(k)
        body = {"e": "depthUpdate", "E": 1_700_000_000_000, "s": "BTCUSDT", "U": first, "u": last}
        out.append(orjson.dumps(body | {"b": bids, "a": asks}))
    return out


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def serve_blast(kind: str) -> int:
    """Accept WebSocket clients on 127.0.0.1 and write the same frames to each, flat out."""
    frames = b"".join(text_frame(p) for p in blast_payloads(kind))
    blob = frames * max(1, (256 << 10) // len(frames))  # ~256 KiB per sendall
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sys.stdout.write(orjson.dumps({"ws": f"ws://127.0.0.1:{port}"}).decode() + "\n")
    sys.stdout.flush()
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_blast, args=(conn, blob), daemon=True).start()


def _blast(conn: socket.socket, blob: bytes) -> None:
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        closing = threading.Event()
        threading.Thread(target=_watch_close, args=(conn, closing), daemon=True).start()
        try:
            while not closing.is_set():
                conn.sendall(blob)  # whole frames: stopping between two calls is clean
            conn.sendall(b"\x88\x02\x03\xe8")  # close 1000, after the client's close
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return


def _watch_close(conn: socket.socket, closing: threading.Event) -> None:
    """Read the client's (masked) frames; set ``closing`` at its close frame or at EOF."""
    buf = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 2:
                opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
                head = 2 + (2 if n == 126 else 8 if n == 127 else 0) + 4
                if len(buf) < head:
                    break
                if n >= 126:
                    n = int.from_bytes(buf[2 : head - 4], "big")
                if len(buf) < head + n:
                    break
                buf = buf[head + n :]
                if opcode == 8:
                    closing.set()
                    return
    except OSError:
        pass
    closing.set()


@contextlib.contextmanager
def source(name: str, server_loop: str = "uvloop") -> Iterator[str]:
    """The WebSocket URL of source ``name``, served by a child process while inside."""
    if name == "firehose":
        with exchange_process(["BTCUSDT"], uvloop=server_loop == "uvloop") as urls:
            yield urls["ws"] + FIREHOSE_PATH
    else:
        kind = name.removeprefix("blast-")
        with json_child([sys.executable, __file__, "--serve-blast", kind]) as urls:
            yield urls["ws"] + "/"


def payloads(name: str) -> list[bytes]:
    """The payloads that source ``name`` sends, one per message of its cycle."""
    if name != "firehose":
        return blast_payloads(name.removeprefix("blast-"))
    series = generate_series("BTCUSDT", seed=1)  # what `streamer exchange --firehose` serves
    out = []
    for bids, asks in series.messages:  # ids and times are 13 digits, like these placeholders
        body = {"e": "depthUpdate", "E": 10**12, "s": "BTCUSDT", "U": 10**12, "u": 10**12}
        out.append(orjson.dumps(body | {"b": bids, "a": asks}))
    return out


# ---------------------------------------------------------------------- running


@dataclass
class Cell:
    """The runs of one (client, loop) on one source."""

    rates: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    data_type: str = ""

    def summary(self) -> dict[str, Any]:
        rate, cpu = statistics.median(self.rates), statistics.median(self.cpus)
        return {
            "msgs_per_s": round(rate),
            "client_cpu": round(cpu, 3),
            "cpu_us_per_msg": round(cpu / rate * 1e6, 3) if rate else None,
            "data": self.data_type,
            "runs": [round(r) for r in self.rates],
        }


def run_once(
    client: Client, loop: str, url: str, warmup: float, seconds: float
) -> tuple[Window, str]:
    """One measurement on a fresh event loop, bounded in time; the window and the data type."""
    window = Window(warmup, seconds)

    async def bounded() -> str:
        async with asyncio.timeout(warmup + seconds + 20):
            return await client(url, window)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        kind = runner.run(bounded())
    return window, kind


def measure(
    url: str, variants: list[Variant], loops: list[str], args: argparse.Namespace
) -> dict[str, dict[str, Cell]]:
    cells: dict[str, dict[str, Cell]] = {v.name: {lp: Cell() for lp in loops} for v in variants}
    for _ in range(args.repeat):  # interleaved: every (client, loop) once per round
        for variant in variants:
            for loop in loops:
                window, kind = run_once(variant.client, loop, url, args.warmup, args.seconds)
                cell = cells[variant.name][loop]
                if not window.done:
                    raise RuntimeError(f"{variant.name} on {loop}: the stream ended early")
                cell.rates.append(window.messages / window.seconds)
                cell.cpus.append(window.cpu)
                cell.data_type = kind
    return cells


def ceiling(url: str, framed_size: float, args: argparse.Namespace) -> dict[str, Any]:
    """Frames/s of the raw socket reader (bytes/s over the mean framed size), median of runs."""
    cell = Cell(data_type="none")
    for _ in range(args.repeat):
        window = Window(args.warmup, args.seconds)
        raw_socket(url, window)
        frames = window.messages / framed_size
        cell.rates.append(frames / window.seconds)
        cell.cpus.append(window.cpu)
    return cell.summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sources", default="firehose,blast-small,blast-depth20")
    parser.add_argument("--no-options", dest="options", action="store_false")
    parser.add_argument(
        "--server-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the firehose exchange's event loop (asyncio: `python -m streamer exchange` as is)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve-blast", choices=("small", "depth20"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_blast:
        return serve_blast(args.serve_blast)

    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("aiohttp", "websockets", "uvloop", "orjson")},
        "repeat": args.repeat,
        "seconds": args.seconds,
        "firehose_server_loop": args.server_loop,
        "sources": {},
    }
    loops = list(LOOPS)
    for name in args.sources.split(","):
        sent = payloads(name)
        framed = statistics.mean(len(text_frame(p)) for p in sent)
        with source(name, args.server_loop) as url:
            cells = measure(url, MAIN, loops, args)
            entry: dict[str, Any] = {
                "frame_bytes": round(statistics.mean(len(p) for p in sent)),
                "raw_socket": ceiling(url, framed, args),
                "clients": {
                    v: {lp: c.summary() for lp, c in row.items()} for v, row in cells.items()
                },
            }
        public = [
            (row["msgs_per_s"], row["cpu_us_per_msg"], v.name, lp)
            for v in MAIN
            if not v.private
            for lp, row in entry["clients"][v.name].items()
        ]
        best = max(public)
        cheapest = min(public, key=lambda r: r[1])
        entry["fastest"] = {"client": best[2], "loop": best[3], "msgs_per_s": best[0]}
        entry["cheapest"] = {"client": cheapest[2], "loop": cheapest[3], "cpu_us": cheapest[1]}
        report["sources"][name] = entry
    if args.options:
        with source("blast-small") as url:
            cells = measure(url, OPTIONS, ["uvloop"], args)
        report["options"] = {
            v.name: cells[v.name]["uvloop"].summary() | {"note": v.note} for v in OPTIONS
        }

    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    print(f"{report['machine']}, python {report['python']}, {versions}")
    print(f"median of {report['repeat']} runs of {report['seconds']} s; msgs/s (client CPU)")
    for name, entry in report["sources"].items():
        raw = entry["raw_socket"]
        print(
            f"\n{name}: {entry['frame_bytes']}-byte payloads; raw socket, bytes only (the "
            f"ceiling): {raw['msgs_per_s']:,} frames/s at CPU {raw['client_cpu']:.2f}"
        )
        print(f"  {'client':<24}{'asyncio':>26}{'uvloop':>26}")
        for client, by_loop in entry["clients"].items():
            cells = [
                f"{r['msgs_per_s']:>10,} ({r['client_cpu']:.2f}, {r['cpu_us_per_msg']:.2f} µs)"
                for r in by_loop.values()
            ]
            data = next(iter(by_loop.values()))["data"]
            print(f"  {client:<24}" + "".join(f"{c:>26}" for c in cells) + f"  {data}")
        f, c = entry["fastest"], entry["cheapest"]
        print(f"  fastest (public API): {f['client']} on {f['loop']}, {f['msgs_per_s']:,} msgs/s")
        print(f"  cheapest per message: {c['client']} on {c['loop']}, {c['cpu_us']} µs CPU")
    if "options" in report:
        print("\noptions, blast-small, uvloop:")
        for name, row in report["options"].items():
            print(
                f"  {name:<42}{row['msgs_per_s']:>10,} ({row['client_cpu']:.2f}, "
                f"{row['cpu_us_per_msg']:.2f} µs)  {row['note']}"
            )


if __name__ == "__main__":
    sys.exit(main())
