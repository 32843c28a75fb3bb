"""Local exchange: what one server process pushes, and whether the live market keeps time.

Workloads:
  (a) firehose: one server process (uvloop), ``FakeExchange(firehose=...)`` with a still market,
      streams pre-generated 20-level spot diffs on ONE connection (``/ws/btcusdt@depth@100ms``)
      as fast as the socket drains. The client is a minimal reader in a separate process (raw
      socket, frame headers parsed, payloads not decoded) so the number measures the server.
      It also checks that ``U``/``u`` stayed contiguous across everything it counted.
  (b) market: the live simulated market with all 1,695 real symbols; a client in a separate
      process subscribes to every ``<sym>@depth@100ms`` on ceil(1695/1024) = 2 connections and
      records, per symbol, the interval between the event times ``E`` of consecutive batches,
      how far that is from a multiple of 100 ms (timer jitter: a symbol without book changes in
      an interval gets no batch, as on Binance) and the delivery delay (arrival - ``E``).
      Reports p50/p99 and the server's CPU use. The exchange runs as shipped, as
      ``streamer exchange --symbols <all> --rate R`` would, except that every opening book is
      built before the clock starts (lazily, seeding all 1,695 takes ~1.5 s of CPU) so that the
      numbers are the steady state.

Usage: python benchmarks/bench_exchange.py [--runs 5] [--seconds 3] [--json]
                                          [--only firehose|market]
Reports medians over the runs. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.testing.exchange.firehose import Firehose  # noqa: E402

MAX_STREAMS = 1024
HOST = "127.0.0.1"


# ---------------------------------------------------------------------- the reader process


def _handshake(sock: socket.socket, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.decode(errors="replace"))
    return rest


def _frames(buf: bytearray) -> tuple[list[tuple[int, int]], int]:
    """Complete frames in ``buf`` as (payload start, payload end), and the bytes they use."""
    out = []
    pos = 0
    size = len(buf)
    while size - pos >= 2:
        n = buf[pos + 1] & 0x7F
        if n < 126:
            head = 2
        elif n == 126:
            if size - pos < 4:
                break
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            head = 4
        else:
            if size - pos < 10:
                break
            n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            head = 10
        end = pos + head + n
        if end > size:
            break
        if buf[pos] & 0x0F == 1:  # text frames only: pings are not messages
            out.append((pos + head, end))
        pos = end
    return out, pos


def read_firehose(port: int, path: str, warmup: float, seconds: float) -> dict[str, Any]:
    """Count text frames for ``seconds`` after ``warmup``; check U/u contiguity of the window."""
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    buf = bytearray(_handshake(sock, path))
    start = time.perf_counter()
    counting_from = start + warmup
    stop = counting_from + seconds
    count = 0
    first_u: int | None = None
    last_u = 0
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        frames, used = _frames(buf)
        now = time.perf_counter()
        if frames and now >= counting_from:
            if first_u is None:
                first_u = orjson.loads(bytes(buf[frames[0][0] : frames[0][1]]))["U"]
                count += len(frames) - 1
            else:
                count += len(frames)
            if now >= stop:
                last_u = orjson.loads(bytes(buf[frames[-1][0] : frames[-1][1]]))["u"]
                break
        del buf[:used]
    elapsed = time.perf_counter() - counting_from
    sock.close()
    # Every counted message after the first carries 20 ids; contiguous ids => nothing was lost.
    contiguous = first_u is not None and last_u - first_u + 1 == 20 * (count + 1)
    return {"messages": count, "seconds": elapsed, "contiguous": contiguous}


def read_market(port: int, symbols: list[str], seconds: float, warmup: float) -> dict[str, Any]:
    """Subscribe to every symbol's @depth@100ms; record intervals and delivery delays."""
    return asyncio.run(_read_market(port, symbols, seconds, warmup))


async def _read_market(
    port: int, symbols: list[str], seconds: float, warmup: float
) -> dict[str, Any]:
    import aiohttp

    last: dict[str, int] = {}  # symbol -> E of its previous batch
    intervals: list[float] = []
    delays: list[float] = []
    batches = 0
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + seconds

    async def one(names: list[str], session: aiohttp.ClientSession) -> None:
        nonlocal batches
        # 1024 names do not fit in a URL (aiohttp, like most servers, caps a request line at
        # 8 KiB): subscribe with one SUBSCRIBE message, as a real client does.
        url = f"ws://{HOST}:{port}/stream"
        async with session.ws_connect(url, max_msg_size=0, compress=0) as ws:
            await ws.send_str(
                orjson.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}).decode()
            )
            while loop.time() < end:
                try:
                    msg = await asyncio.wait_for(ws.receive(), end - loop.time())
                except TimeoutError:
                    return
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    return
                body = orjson.loads(msg.data)
                if "data" not in body:
                    continue  # the SUBSCRIBE acknowledgement
                data = body["data"]
                symbol, event_ms = data["s"], data["E"]
                if loop.time() >= begin:
                    batches += 1
                    delays.append(time.time() * 1000 - event_ms)
                    prev = last.get(symbol)
                    if prev is not None:
                        intervals.append(event_ms - prev)
                last[symbol] = event_ms

    names = [f"{s.lower()}@depth@100ms" for s in symbols]
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(
            *(one(names[i : i + MAX_STREAMS], session) for i in range(0, len(names), MAX_STREAMS))
        )
    # A symbol without book changes in an interval gets no batch (as on Binance), so intervals
    # are multiples of 100 ms; how far each one is from its multiple is the timer's jitter.
    jitter = [abs(i - 100 * max(1, round(i / 100))) for i in intervals]
    return {
        "batches": batches,
        "symbols_seen": len(last),
        "intervals_ms": _percentiles(intervals),
        "jitter_ms": _percentiles(jitter),
        "delay_ms": _percentiles(delays),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values)
    return {
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


# ---------------------------------------------------------------------- the server side


async def _run_reader(*args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--reader", *args, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"reader failed with {proc.returncode}")
    result: dict[str, Any] = orjson.loads(out)
    return result


async def firehose_run(seconds: float, warmup: float) -> dict[str, Any]:
    """One firehose measurement: the server in this process, the reader in another."""
    from streamer.testing.exchange.server import FakeExchange

    firehose = Firehose(["BTCUSDT"], seed=1)
    async with FakeExchange(["BTCUSDT"], seed=1, rate=0, firehose=firehose) as exchange:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = await _run_reader(
            "firehose", str(exchange.port), "/ws/btcusdt@depth@100ms", str(warmup), str(seconds)
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result["rate"] = result["messages"] / result["seconds"]
    result["server_cpu"] = cpu / wall
    return result


async def market_run(seconds: float, warmup: float, rate: float) -> dict[str, Any]:
    """One live-market measurement over every real symbol, ``rate`` market actions per second."""
    from streamer.testing.exchange.server import FakeExchange
    from streamer.testing.exchange.symbols import load_exchange_info

    names = [s["symbol"] for s in load_exchange_info()["symbols"]]
    exchange = FakeExchange(names, seed=1, rate=rate)
    for symbol in names:  # build every opening book now, not during the measurement
        exchange.engine.snapshot(symbol, 1)
    async with exchange:
        symbols = sorted(exchange.engine.symbols)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = await _run_reader(
            "market", str(exchange.port), ",".join(symbols), str(warmup), str(seconds)
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result["symbols"] = len(symbols)
    result["connections"] = math.ceil(len(symbols) / MAX_STREAMS)
    result["server_cpu"] = cpu / wall
    return result


def _median(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--only", choices=("firehose", "market"))
    parser.add_argument("--rate", type=float, default=20_000, help="market actions per second")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--reader", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.reader:  # the client process
        kind, port, target, warmup, seconds = args.reader
        if kind == "firehose":
            out = read_firehose(int(port), target, float(warmup), float(seconds))
        else:
            out = read_market(int(port), target.split(","), float(seconds), float(warmup))
        sys.stdout.buffer.write(orjson.dumps(out))
        return 0

    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        loop_name = "asyncio"
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loop": loop_name,
        "runs": args.runs,
        "seconds": args.seconds,
    }
    if args.only in (None, "firehose"):
        runs = [asyncio.run(firehose_run(args.seconds, args.warmup)) for _ in range(args.runs)]
        report["firehose"] = {
            "messages_per_s": _median(runs, "rate"),
            "server_cpu": _median(runs, "server_cpu"),
            "all_contiguous": all(r["contiguous"] for r in runs),
            "runs": [round(r["rate"]) for r in runs],
        }
    if args.only in (None, "market"):
        runs = [
            asyncio.run(market_run(args.seconds, args.warmup, args.rate)) for _ in range(args.runs)
        ]
        report["market"] = {
            "symbols": runs[0]["symbols"],
            "connections": runs[0]["connections"],
            "symbols_seen": _median(runs, "symbols_seen"),
            "batches_per_s": _median(runs, "batches") / args.seconds,
            "interval_ms_p50": _median(runs, "intervals_ms", "p50"),
            "interval_ms_p99": _median(runs, "intervals_ms", "p99"),
            "jitter_ms_p50": _median(runs, "jitter_ms", "p50"),
            "jitter_ms_p99": _median(runs, "jitter_ms", "p99"),
            "market_actions_per_s": args.rate,
            "delay_ms_p50": _median(runs, "delay_ms", "p50"),
            "delay_ms_p99": _median(runs, "delay_ms", "p99"),
            "server_cpu": _median(runs, "server_cpu"),
        }
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"python {report['python']} on {report['machine']} ({report['cpus']} cpus), {loop_name}")
    if "firehose" in report:
        f = report["firehose"]
        print(
            f"firehose, 1 connection, 20-level diffs: {f['messages_per_s']:,.0f} msg/s "
            f"(median of {args.runs}: {f['runs']}), server CPU {f['server_cpu']:.0%}, "
            f"contiguous U/u: {f['all_contiguous']}"
        )
    if "market" in report:
        m = report["market"]
        print(
            f"market, {m['symbols']} symbols @100ms on {m['connections']} connections, "
            f"{m['market_actions_per_s']:,.0f} actions/s: "
            f"{m['batches_per_s']:,.0f} batches/s, {m['symbols_seen']:.0f} symbols seen, "
            f"interval p50 {m['interval_ms_p50']:.0f} ms p99 {m['interval_ms_p99']:.0f} ms "
            f"(jitter p50 {m['jitter_ms_p50']:.1f} ms p99 {m['jitter_ms_p99']:.1f} ms), "
            f"delay p50 {m['delay_ms_p50']:.1f} ms p99 {m['delay_ms_p99']:.1f} ms, "
            f"server CPU {m['server_cpu']:.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
