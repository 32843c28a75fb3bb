"""Long fuzz of the SBE decoder: a million seeded inputs (the short one runs in `make test`).

Inputs are valid frames of the four messages (random contents, exponents, newer-schema padding)
and those frames mutated: bytes overwritten, bit flips, truncation, extension, splices of two
frames, header fields set to edge values, and pure random bytes. For every input:

* ``decode_sbe`` and ``decode_depth_diff_ints`` return a value or a ``Malformed``, never raise;
* whatever decodes as a diff or depth20 has a symbol and only valid decimal strings;
* an unmutated frame decodes to exactly what was encoded;
* ``DepthBooks.receive_sbe`` (one book per 1000 inputs) never raises.

Usage: python benchmarks/fuzz_sbe.py [--inputs 1000000] [--seed 1]. Exit status 1 on any failure.
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.sansio.book import valid_price, valid_qty  # noqa: E402
from streamer.sansio.books import DepthBooks  # noqa: E402
from streamer.sansio.sbe import (  # noqa: E402
    DepthDiffInts,
    SbeBestBidAsk,
    SbeDepthSnapshot,
    SbeTrades,
    decode_depth_diff_ints,
    decode_sbe,
)
from streamer.sansio.wire import DepthDiff, Malformed  # noqa: E402
from streamer.testing.exchange.sbe import (  # noqa: E402
    encode_best_bid_ask,
    encode_depth_diff_ints,
    encode_depth_snapshot,
    encode_trades,
)

INT64 = (1 << 63) - 1
EVENTS = (DepthDiff, SbeDepthSnapshot, SbeBestBidAsk, SbeTrades, Malformed)
EDGES = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 10000, 10001, 10002, 10003, 10004)


def spelled(rng: random.Random, places: int) -> str:
    whole = str(rng.randrange(1, 10**6))
    return f"{whole}.{rng.randrange(10**places):0{places}d}" if places else whole


def valid_frame(rng: random.Random) -> tuple[bytes, object]:
    """A well-formed frame and the diff mantissas it encodes (None for other messages)."""
    kind = rng.randrange(4)
    symbol = rng.choice(["BTCUSDT", "ETHBTC", "币安人生USDT", "X"])
    pad = bytes(rng.randrange(4)) if rng.random() < 0.2 else b""
    if kind == 0:
        pexp, qexp = rng.randint(-18, 4), rng.randint(-18, 4)
        sides = [
            [(rng.randint(1, INT64), rng.randint(0, INT64)) for _ in range(rng.randrange(12))]
            for _ in range(2)
        ]
        first = rng.randrange(INT64 // 2)
        last = first + rng.randrange(50)
        when = rng.randint(-INT64, INT64)
        frame = encode_depth_diff_ints(
            symbol, first, last, when, sides[0], sides[1], price_exponent=pexp,
            qty_exponent=qexp, root_extra=pad, entry_extra=pad,
        )  # fmt: skip
        return frame, DepthDiffInts(symbol, first, last, pexp, qexp, sides[0], sides[1], when)
    levels = [(spelled(rng, 8), spelled(rng, 8)) for _ in range(rng.randrange(6))]
    if kind == 1:
        return encode_depth_snapshot(symbol, 5, 6, levels, levels[::-1], root_extra=pad), None
    if kind == 2:
        return encode_best_bid_ask(symbol, 5, 6, ("1.5", "2"), ("1.6", "0"), root_extra=pad), None
    fills = [(i, p, q, rng.random() < 0.5) for i, (p, q) in enumerate(levels)]
    return encode_trades(symbol, 5, 6, fills, root_extra=pad, entry_extra=pad), None


def mutate(rng: random.Random, frame: bytes, other: bytes) -> bytes:
    data = bytearray(frame)
    how = rng.randrange(7)
    if how == 0:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == 2:
        del data[rng.randrange(len(data)) :]
    elif how == 3:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    elif how == 4:
        data = data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other)) :]
    elif how == 5:
        at = rng.choice([0, 2, 4, 6, 34, 36]) if len(data) > 38 else 0
        struct.pack_into("<H", data, at, rng.choice(EDGES))
    else:
        data = bytearray(rng.randbytes(rng.randrange(64)))
    return bytes(data)


def check(data: bytes, expected: object) -> None:
    msg = decode_sbe(data)
    assert isinstance(msg, EVENTS), type(msg)
    ints = decode_depth_diff_ints(data)
    assert isinstance(ints, DepthDiffInts | Malformed), type(ints)
    if isinstance(msg, DepthDiff | SbeDepthSnapshot):
        assert msg.symbol
        for price, qty in [*msg.bids, *msg.asks]:
            assert valid_price(price) and valid_qty(qty), (price, qty)
    if isinstance(expected, DepthDiffInts):
        assert ints == expected, (ints, expected)
        assert isinstance(msg, DepthDiff)
        for (p, q), (pm, qm) in zip(msg.bids + msg.asks, ints.bids + ints.asks, strict=True):
            assert Decimal(p) == Decimal(pm).scaleb(ints.price_exponent)
            assert Decimal(q) == Decimal(qm).scaleb(ints.qty_exponent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    failures = 0
    books = DepthBooks()
    pool = [valid_frame(rng) for _ in range(64)]
    start = time.perf_counter()
    for i in range(args.inputs):
        if i % 64 == 0:
            pool[rng.randrange(len(pool))] = valid_frame(rng)
        frame, expected = pool[rng.randrange(len(pool))]
        if rng.random() < 0.1:
            data = frame
        else:
            data, expected = mutate(rng, frame, pool[rng.randrange(len(pool))][0]), None
        try:
            check(data, expected)
            if i % 1000 == 0:
                books = DepthBooks()
            books.receive_sbe(data)
            if i % 100 == 0:
                books.events()
        except Exception as exc:
            failures += 1
            if failures <= 10:
                print(f"FAIL input {i}: {exc!r}\n  {data.hex()}", file=sys.stderr)
        outcomes[type(decode_sbe(data)).__name__] += 1
    seconds = time.perf_counter() - start
    print(f"{args.inputs:,} inputs in {seconds:.1f} s, seed {args.seed}, {failures} failures")
    for name, n in outcomes.most_common():
        print(f"  {name:>17}: {n:,}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
