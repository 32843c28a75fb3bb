"""Order-book clients live on one local firehose: diffs applied per second and client CPU.

The local exchange (``streamer exchange --firehose``, with uvloop) runs in one child process for
the whole run and serves 20-level spot diffs of ``--symbols`` as fast as each client reads. Every
peer of benchmarks/peers.py runs in a child process of its own, one at a time, the peers
interleaved over ``--repeat`` rounds; the table shows medians. Each run syncs its books, warms up
for 1 s, counts the diffs applied in ``--seconds``, and checks that every book's top 10 levels
equal the firehose's true book at that book's last update id.

The streamer rows come from ``live_streamer.py``, a real ``Streamer`` against an exchange
process of its own per run, on uvloop and on plain asyncio, interleaved: end to end on the same
firehose, latency at a steady ``--rate`` (event times in µs), and the whole market (every real
symbol at ``@100ms``: cold sync next to the least the weight budget allows, CPU, lag, memory).

Usage: python benchmarks/bench_live.py [--json] [--seconds 5] [--repeat 3] [--rate 20000]
                                       [--symbols BTCUSDT ...] [--peers python-binance,ccxt,unicorn]
                                       [--no-whole-market] [--weight-limit 6000]
With --json: one object, {"end_to_end": {"json": {"msgs_per_s", "client_cpu", "uvloop": ..,
"asyncio": ..}}, "latency": {"p50_us", "p99_us", "book_p50_us", "book_p99_us", "rate", ..},
"whole_market": {"symbols", "client_cpu", "p99_lag_ms", "bytes_per_level", "cold_sync_s",
"budget_minimum_s", ..}, "peers": {NAME: {"msgs_per_s", "client_cpu", ..}}}.
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import live_streamer  # noqa: E402
from local_exchange import ROOT, exchange_process  # noqa: E402
from peers import PEERS  # noqa: E402


def measure_streamer(args: argparse.Namespace) -> dict[str, Any]:
    """streamer's rows (``live_streamer.py``): each run with its own exchange process, the
    loops interleaved, medians of ``--repeat``."""
    loops = ["uvloop", "asyncio"]
    e2e: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
    sbe: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
    lat: dict[str, list[dict[str, float]]] = {loop: [] for loop in loops}
    for _ in range(args.repeat):
        for loop in loops:
            e2e[loop].append(live_streamer.end_to_end(args.seconds, loop))
            sbe[loop].append(live_streamer.end_to_end(args.seconds, loop, sbe=True))
            lat[loop].append(live_streamer.latency(args.seconds, args.rate, loop))
    out: dict[str, Any] = {
        "end_to_end": {
            "json": {loop: _medians(runs) for loop, runs in e2e.items()},
            "sbe": {loop: _medians(runs) for loop, runs in sbe.items()},
        },
        "latency": {loop: _medians(runs) for loop, runs in lat.items()},
    }
    for form in ("json", "sbe"):  # the headline figures: uvloop
        out["end_to_end"][form] |= out["end_to_end"][form]["uvloop"]
    out["latency"] |= out["latency"]["uvloop"]
    if args.whole_market:
        out["whole_market"] = live_streamer.whole_market(
            "uvloop", weight_limit=args.weight_limit, seconds=args.seconds
        )
    return out


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run_peer_process(
    peer: str, urls: dict[str, str], symbols: list[str], seconds: float
) -> dict[str, Any]:
    """One run of ``peer`` in its own process; its JSON answer, or ``{"error": ...}``."""
    cmd = [sys.executable, str(BENCH / "peers.py"), "--peer", peer]
    cmd += ["--rest", urls["rest"], "--ws", urls["ws"], "--seconds", str(seconds)]
    cmd += ["--symbols", *symbols]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # UNICORN subscribes one market every 4 s before its books sync: allow for it
    limit = seconds + 60 + 8 * len(symbols)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=limit, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {limit:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    answer: dict[str, Any] = orjson.loads(lines[-1])
    return answer


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over one peer's runs, and whether every run synced and kept its books right."""
    good = [r for r in runs if "error" not in r and r.get("msgs_per_s") is not None]
    errors = [r["error"] for r in runs if "error" in r]
    if not good:
        return {"msgs_per_s": None, "client_cpu": None, "errors": errors}
    rate = statistics.median(r["msgs_per_s"] for r in good)
    cpu = statistics.median(r["client_cpu"] for r in good)
    return {
        "msgs_per_s": round(rate),
        "client_cpu": round(cpu, 3),
        "cpu_us_per_msg": round(cpu / rate * 1e6, 1) if rate else None,
        "synced": all(r["synced"] for r in good) and not errors,
        "plausible": all(r["plausible"] for r in good),
        "matches_firehose": all(r["matches_firehose"] for r in good),
        "sync_seconds": round(statistics.median(r["sync_seconds"] for r in good), 2),
        # frames read but not applied at the end (python-binance's queue), where a peer has one
        "lag": max((r["lag"] for r in good if "lag" in r), default=None),
        "version": good[0]["version"],
        "counted": good[0]["counted"],
        "runs": [round(r["msgs_per_s"]) for r in good],
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rate", type=int, default=20_000, help="msgs/s of the latency run")
    parser.add_argument(
        "--whole-market",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also every real symbol at @100ms from the simulated market (a minute or more)",
    )
    parser.add_argument(
        "--weight-limit",
        type=int,
        default=6000,
        help="the exchange's request weight per minute for the whole-market cold start "
        "(Binance's 6000 by default: then the books take about two minutes to sync)",
    )
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers: {sorted(unknown)}; known: {', '.join(PEERS)}")

    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}
    with exchange_process(args.symbols) as urls:
        for _ in range(args.repeat):
            for peer in peers:
                runs[peer].append(run_peer_process(peer, urls, args.symbols, args.seconds))
    streamer = measure_streamer(args)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "symbols": args.symbols,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "peers": {p: summarize(r) for p, r in runs.items()},
        **streamer,
    }
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(
        f"{report['machine']}, python {report['python']}; firehose of {', '.join(args.symbols)}; "
        f"median of {args.repeat} runs of {args.seconds:g} s"
    )
    print(f"{'client':<16}{'version':>9}{'msgs/s':>10}{'CPU':>7}{'µs/msg':>9}  synced  book")
    for peer, row in report["peers"].items():
        if row["msgs_per_s"] is None:
            print(f"{peer:<16}  failed: {'; '.join(row['errors'])[:200]}")
            continue
        book = "exact" if row["matches_firehose"] else "WRONG"
        print(
            f"{peer:<16}{row['version']:>9}{row['msgs_per_s']:>10,}{row['client_cpu']:>7.2f}"
            f"{row['cpu_us_per_msg']:>9.1f}  {'yes' if row['synced'] else 'NO':<6}  {book}"
        )
    for form in ("json", "sbe"):
        for loop, row in report["end_to_end"][form].items():
            if isinstance(row, dict):
                exact = "exact" if row["exact"] == 1 else "WRONG"
                cpu = row["client_cpu"]
                print(
                    f"{f'streamer {form} {loop}':<22}{round(row['msgs_per_s']):>10,}"
                    f"{cpu:>7.2f}{1e6 * cpu / row['msgs_per_s']:>9.1f}  yes     {exact}"
                )
    for loop in ("uvloop", "asyncio"):
        row = report["latency"][loop]
        print(
            f"latency at {args.rate:,} msgs/s ({loop}): send -> book p50 {row['book_p50_us']:.0f}"
            f" µs, p99 {row['book_p99_us']:.0f} µs; send -> book() consumer p50"
            f" {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs"
        )
    if "whole_market" in report:
        print("whole market:", orjson.dumps(report["whole_market"]).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
