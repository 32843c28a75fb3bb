"""Order-book core throughput: decode + sync + apply + best bid/ask read, on one core.

Workloads:
  (a) the real captures of tests/data replayed in a loop (every frame, snapshots included);
  (b) generated spot diffs of 5, 20 and 100 levels against a 1000-level book.
streamer runs once per book implementation: the C twin (when built), the pure Python book (the
reference and fallback), and, for the same-run comparison the issue asks for, the string book that
was the core before issue 8 (benchmarks/baseline_book.py, strict validation included).
For (b) the same run also measures, on the very same frames: orjson decoding alone; two floors
(orjson plus one dict store per level, with and without our per-level validation, keeping no price
order: no pure Python order book can be faster); python-binance's DepthCache (sorts on every read)
and ccxt's OrderBook (floats), when installed. All variants of a workload run interleaved, round
after round, so that ratios come from one run on one machine. Plus the latency of reading the top
10 levels of both sides after a message, per implementation.

Times are the CPU time of this process (time.process_time): on a shared machine wall time also
counts the time other processes hold the core. Reports medians over the rounds.

Usage: python benchmarks/bench_core.py [--repeat 5] [--messages 20000] [--json]
       python benchmarks/bench_core.py --sbe-only   (the SBE rows alone; REPEAT=n rounds)
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import baseline_book  # noqa: E402

from streamer._impl import NO_EXTENSIONS  # noqa: E402
from streamer.sansio import book as book_impl  # noqa: E402
from streamer.sansio.books import DepthBooks  # noqa: E402
from streamer.sansio.capture import read_capture  # noqa: E402
from streamer.sansio.replay import Replay  # noqa: E402

#: Book implementations measured: label -> name for book.use(), or "baseline".
IMPLEMENTATIONS = {"C": "c", "pure Python": "python", "before issue 8": "baseline"}


class BaselineBook(baseline_book.Book):
    """The string book of before issue 8, on the book protocol book_sync.py now uses.

    It journals each applied diff in a deque, as BookSync did before issue 8.
    """

    exponent = 0

    def __init__(self) -> None:
        super().__init__()
        self.journal: deque[tuple[int, Any, Any]] = deque(maxlen=512)

    def load(self, bids: Any, asks: Any) -> bool:
        super().load(bids, asks)
        self.journal.clear()
        return True

    def apply_diff(self, bids: Any, asks: Any, update_id: int = 0) -> int:
        inserted = super().apply_diff(bids, asks)
        if inserted >= 0:
            self.journal.append((update_id, bids, asks))
        return inserted

    def touched_since(self, update_id: int) -> None:
        return None  # audits are not measured


def new_books(impl: str) -> DepthBooks:
    """DepthBooks for BTCUSDT whose book is of implementation ``impl``."""
    book_impl.use("python" if impl == "baseline" else impl)
    books = DepthBooks(symbols=["BTCUSDT"])
    if impl == "baseline":
        books.books["BTCUSDT"].book = BaselineBook()
    return books


CAPTURES = [
    ROOT / "streamer" / "data" / "spot-4sym-2021-10-12.jsonl",
    ROOT / "tests" / "data" / "spot-us-4sym-2021-10-12.jsonl",
    ROOT / "tests" / "data" / "usdm-4sym-2021-07-22.jsonl",
]
BOOK_LEVELS = 1000
TICK = 0.01
BASE_ID = 1_000_000


def fmt(x: float) -> str:
    return f"{x:.8f}"


def generate(levels: int, count: int, seed: int = 7) -> tuple[bytes, list[bytes]]:
    """A 1000-level snapshot and ``count`` combined-stream diff frames of ``levels`` levels.

    The mix of changes copies the one measured on the real captures of tests/data (see the README):
    88% quantity changes of held levels, 5.5% new levels, 5.5% deletions, 1% deletions of levels
    not held. Half the changes hit the 50 best levels of their side, the rest any level.
    """
    rng = random.Random(seed)
    mid = 30000.0
    grids = {
        "b": [fmt(round(mid - TICK * (i + 1), 2)) for i in range(3 * BOOK_LEVELS)],
        "a": [fmt(round(mid + TICK * (i + 1), 2)) for i in range(3 * BOOK_LEVELS)],
    }
    held = {side: list(range(0, 2 * BOOK_LEVELS, 2)) for side in grids}  # sorted tick indexes
    free_check = {side: set(ticks) for side, ticks in held.items()}  # the same, for lookups
    snapshot = orjson.dumps(
        {
            "lastUpdateId": BASE_ID,
            "bids": [[grids["b"][i], fmt(rng.uniform(0.1, 5))] for i in held["b"]],
            "asks": [[grids["a"][i], fmt(rng.uniform(0.1, 5))] for i in held["a"]],
        }
    )

    def pick(side: str) -> int:
        ticks = held[side]
        n = min(50, len(ticks)) if rng.random() < 0.5 else len(ticks)
        return rng.randrange(n)

    frames = []
    uid = BASE_ID
    for _ in range(count):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        for j in range(levels):
            side = "b" if j % 2 == 0 else "a"
            ticks = held[side]
            roll = rng.random()
            if roll < 0.055:  # a new level on the free tick next to a held one
                tick = ticks[pick(side)] + 1
                while tick in free_check[side]:
                    tick += 1
                if tick < len(grids[side]):
                    bisect.insort(ticks, tick)
                    free_check[side].add(tick)
                    changes[side].append([grids[side][tick], fmt(rng.uniform(0.01, 5))])
            elif roll < 0.11 and len(ticks) > BOOK_LEVELS // 2:
                tick = ticks.pop(pick(side))
                free_check[side].discard(tick)
                changes[side].append([grids[side][tick], "0.00000000"])
            elif roll < 0.12:  # delete a level that is not there: harmless, and it happens
                changes[side].append([grids[side][-1], "0.00000000"])
            else:
                tick = ticks[pick(side)]
                changes[side].append([grids[side][tick], fmt(rng.uniform(0.01, 5))])
        first, uid = uid + 1, uid + rng.randint(1, 3)
        data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": uid}
        data.update(b=changes["b"], a=changes["a"])
        frames.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}))
    return snapshot, frames


def timed(fns: dict[str, Callable[[], int]], repeat: int) -> dict[str, float]:
    """Median messages/s of each ``fn`` (returning how many messages it did), run interleaved."""
    rates: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.process_time
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            start = clock()
            n = fn()
            rates[name].append(n / (clock() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def run_streamer(snapshot: bytes, frames: list[bytes], impl: str = "c") -> int:
    books = new_books(impl)
    books.receive_frame(frames[0])
    sync = books.books["BTCUSDT"]
    books.receive_snapshot("BTCUSDT", snapshot, sync.pending_token)
    bids, asks = sync.book.bids, sync.book.asks
    receive = books.receive_frame
    for frame in frames[1:]:
        receive(frame)
        bids.best()
        asks.best()
    assert sync.synced and sync.counters.resets == 0, "benchmark stream must stay in sync"
    return len(frames) - 1


def run_orjson(_: bytes, frames: list[bytes]) -> int:
    loads = orjson.loads
    for frame in frames:
        loads(frame)
    return len(frames)


def _floor(snapshot: bytes, frames: list[bytes], validate: bool) -> int:
    """orjson + one dict store per level, no order kept: no order book can beat this in Python."""
    snap = orjson.loads(snapshot)
    sides = {"b": dict(snap["bids"]), "a": dict(snap["asks"])}
    loads = orjson.loads
    for frame in frames:
        msg = loads(frame)["data"]
        for name in "ba":
            side = sides[name]
            for level in msg[name]:
                price, qty = level
                if validate and not qty.replace(".", "", 1).isdigit():
                    break
                if qty[0] > "0" or qty.strip("0."):
                    side[price] = qty
                else:
                    side.pop(price, None)
    return len(frames)


def run_floor_unvalidated(snapshot: bytes, frames: list[bytes]) -> int:
    return _floor(snapshot, frames, validate=False)


def run_floor_validated(snapshot: bytes, frames: list[bytes]) -> int:
    return _floor(snapshot, frames, validate=True)


def run_python_binance(snapshot: bytes, frames: list[bytes]) -> int:
    from binance.ws.depthcache import DepthCache  # type: ignore[import-untyped]

    cache = DepthCache("BTCUSDT")
    snap = orjson.loads(snapshot)
    for bid in snap["bids"]:
        cache.add_bid(bid)
    for ask in snap["asks"]:
        cache.add_ask(ask)
    for frame in frames:  # what its DepthCacheManager does per message, plus a best-price read
        msg = orjson.loads(frame)["data"]
        for bid in msg["b"]:
            cache.add_bid(bid)
        for ask in msg["a"]:
            cache.add_ask(ask)
        cache.get_bids()[:1]
        cache.get_asks()[:1]
    return len(frames)


def run_ccxt(snapshot: bytes, frames: list[bytes]) -> int:
    from ccxt.async_support.base.ws.order_book import (  # type: ignore[import-untyped]
        OrderBook,
    )

    snap = orjson.loads(snapshot)
    book = OrderBook(
        {
            "bids": [[float(p), float(q)] for p, q in snap["bids"]],
            "asks": [[float(p), float(q)] for p, q in snap["asks"]],
        }
    )
    bids, asks = book["bids"], book["asks"]
    for frame in frames:  # ccxt's binance handler: float() each level, store, then read best
        msg = orjson.loads(frame)["data"]
        for p, q in msg["b"]:
            bids.store(float(p), float(q))
        for p, q in msg["a"]:
            asks.store(float(p), float(q))
        bids[0:1]
        asks[0:1]
    return len(frames)


def optional(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def top10_latency_us(snapshot: bytes, frames: list[bytes], impl: str) -> float:
    """Median µs to read the 10 best levels of both sides, after each message."""
    books = new_books(impl)
    books.receive_frame(frames[0])
    sync = books.books["BTCUSDT"]
    books.receive_snapshot("BTCUSDT", snapshot, sync.pending_token)
    samples = []
    clock = time.perf_counter_ns
    bids, asks = sync.book.bids, sync.book.asks
    for frame in frames[1:5001]:
        books.receive_frame(frame)
        start = clock()
        bids.top(10)
        asks.top(10)
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def captures_rate(repeat: int, impls: list[str]) -> tuple[dict[str, float], int]:
    records = []
    for path in CAPTURES:
        with path.open("rb") as fh:
            records.append(list(read_capture(fh)))
    frames = sum(1 for recs in records for r in recs if r.kind == "ws")

    def once(impl: str) -> int:
        book_impl.use(impl)
        for recs in records:
            run = Replay()
            for record in recs:
                run.feed(record)
                for books in run.venues.values():
                    for sync in books.books.values():
                        sync.book.bids.best()
                        sync.book.asks.best()
        return frames

    return timed({impl: lambda i=impl: once(i) for impl in impls}, repeat), frames


def sbe_frames(frames: list[bytes]) -> list[bytes]:
    """The SBE DepthDiffStreamEvent of each combined-stream JSON diff frame: the same changes."""
    from streamer.testing.exchange.sbe import encode_depth_diff

    out = []
    for frame in frames:
        d = orjson.loads(frame)["data"]
        out.append(encode_depth_diff(d["s"], d["U"], d["u"], d["E"], d["b"], d["a"]))
    return out


def run_streamer_sbe(snapshot: bytes, frames: list[bytes], impl: str = "c") -> int:
    """decode + sync + apply + best bid/ask read, from SBE frames (the snapshot is REST JSON):
    the fast path, decode_sbe_message then receive_message, levels packed into apply_ints."""
    book_impl.use(impl)
    books = DepthBooks(symbols=["BTCUSDT"])
    books.receive_sbe(frames[0])
    sync = books.books["BTCUSDT"]
    books.receive_snapshot("BTCUSDT", snapshot, sync.pending_token)
    bids, asks = sync.book.bids, sync.book.asks
    receive = books.receive_sbe
    for frame in frames[1:]:
        receive(frame)
        bids.best()
        asks.best()
    assert sync.synced and sync.counters.resets == 0, "benchmark stream must stay in sync"
    return len(frames) - 1


def run_sbe_decode_message(_: bytes, frames: list[bytes]) -> int:
    from streamer.sansio.sbe import decode_sbe_message

    for frame in frames:
        decode_sbe_message(frame)
    return len(frames)


def run_sbe_decode_strings(_: bytes, frames: list[bytes]) -> int:
    from streamer.sansio.sbe import decode_sbe

    for frame in frames:
        decode_sbe(frame)
    return len(frames)


def sbe_rows(repeat: int, messages: int, levels: int = 20) -> dict[str, Any]:
    """SBE next to JSON on the very same book changes (generated 20-level diffs), one run,
    interleaved: SBE through the fast path into each book, JSON into the C book, and the
    decoders alone (orjson.loads on the JSON frames, decode_sbe_message, decode_sbe)."""
    snapshot, json_frames = generate(levels, messages)
    frames = sbe_frames(json_frames)
    row: dict[str, Any] = {
        "levels": levels,
        "bytes_per_msg_sbe": round(statistics.mean(map(len, frames))),
        "bytes_per_msg_json": round(statistics.mean(map(len, json_frames))),
    }
    fns: dict[str, Callable[[], int]] = {}
    for label, name in IMPLEMENTATIONS.items():
        if name in book_impl.available() and not (name == "c" and NO_EXTENSIONS):
            fns[f"streamer SBE ({label})"] = lambda i=name: run_streamer_sbe(snapshot, frames, i)
    if "c" in book_impl.available() and not NO_EXTENSIONS:
        fns["streamer JSON (C)"] = lambda: run_streamer(snapshot, json_frames, "c")
    fns["orjson.loads alone, same changes"] = lambda: run_orjson(snapshot, json_frames)
    fns["decode_sbe_message alone"] = lambda: run_sbe_decode_message(snapshot, frames)
    fns["decode_sbe (strings) alone"] = lambda: run_sbe_decode_strings(snapshot, frames)
    row["msgs_per_s"] = {k: round(v) for k, v in timed(fns, repeat).items()}
    return row


def print_sbe(row: dict[str, Any]) -> None:
    print(
        f"-- SBE, {row['levels']} levels/msg ({row['bytes_per_msg_sbe']} bytes vs "
        f"{row['bytes_per_msg_json']} as JSON), msgs/s:"
    )
    for name, rate in row["msgs_per_s"].items():
        print(f"   {name:>34} {rate:>12,}")


if __name__ == "__main__" and "--sbe-only" in sys.argv:  # the SBE rows alone, quicker
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print_sbe(sbe_rows(int(os.environ.get("REPEAT", "5")), 20000))
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    impls = {
        label: name
        for label, name in IMPLEMENTATIONS.items()
        if name == "baseline"
        or (name in book_impl.available() and not NO_EXTENSIONS)
        or name == "python"
    }
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.processor() or ''}",
        "python": platform.python_version(),
        "orjson": orjson.__version__,
        "repeat": args.repeat,
        "implementations": list(impls),
    }
    replayable = [name for name in impls.values() if name != "baseline"]
    rates, frames = captures_rate(args.repeat, replayable)
    result["captures"] = {
        "frames": frames,
        "msgs_per_s": {label: round(rates[name]) for label, name in impls.items() if name in rates},
    }
    peers: dict[str, Callable[[bytes, list[bytes]], int]] = {
        "orjson_decode_only": run_orjson,
        "floor_dict_unvalidated": run_floor_unvalidated,
        "floor_dict_validated": run_floor_validated,
    }
    if optional("binance"):
        peers["python_binance_depthcache"] = run_python_binance
    if optional("ccxt"):
        peers["ccxt_orderbook"] = run_ccxt
    generated: dict[str, Any] = {}
    for levels in (5, 20, 100):
        snapshot, diffs = generate(levels, args.messages)
        fns: dict[str, Callable[[], int]] = {
            f"streamer ({label})": lambda s=snapshot, d=diffs, i=name: run_streamer(s, d, i)
            for label, name in impls.items()
        }
        for name, fn in peers.items():
            # python-binance sorts the whole book on each read: give it fewer messages
            subset = diffs if name != "python_binance_depthcache" else diffs[:2000]
            fns[name] = lambda f=fn, s=snapshot, d=subset: f(s, d)
        row: dict[str, Any] = {k: round(v) for k, v in timed(fns, args.repeat).items()}
        row["top10_both_sides_us"] = {
            label: round(top10_latency_us(snapshot, diffs, name), 2)
            for label, name in impls.items()
        }
        generated[f"{levels}_levels"] = row
    result["generated"] = generated
    book_impl.use(replayable[0])
    result["sbe"] = sbe_rows(args.repeat, args.messages)

    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"machine: {result['machine']}  python {result['python']}  (median of {args.repeat})")
    capture_rates = ", ".join(f"{k} {v:,}" for k, v in result["captures"]["msgs_per_s"].items())
    print(f"real captures ({frames} frames, 3 files), msgs/s: {capture_rates}")
    for key, row in generated.items():
        print(f"-- {key.split('_')[0]} levels per message (msgs/s; (Nx) = rate / C's rate)")
        first = f"streamer ({next(iter(impls))})"
        for name, rate in row.items():
            if name == "top10_both_sides_us":
                continue
            print(f"   {name:>34} {rate:>12,} ({rate / row[first]:.2f}x)")
        print(f"   {'top 10 of both sides, µs':>34} {row['top10_both_sides_us']}")
    print_sbe(result["sbe"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
