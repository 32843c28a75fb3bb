"""Peer harness: third-party Binance order-book clients kept running on the local exchange.

One driver per peer, each ``async def run_peer(name, rest_url, ws_url, symbols, seconds)``: it
points the peer at the local exchange (only base URLs change), waits until every book is synced,
warms up, then counts the diffs the peer applies in a window of ``seconds`` and the process CPU
spent meanwhile, and finally checks each book: best bid < best ask, and, on the firehose, that the
top levels equal the firehose's true book at the peer's own last update id. Returns at least
``{"msgs_per_s", "client_cpu", "synced"}`` (see ``run_peer``). Run each peer in its own process
(``bench_live.py`` does) so that ``client_cpu`` (CPU seconds / wall seconds, all threads) is its.

Peers, and how each is pointed at the local exchange:

* ``python-binance``: ``DepthCacheManager`` over ``BinanceSocketManager``, with ``AsyncClient``
  and ``BinanceSocketManager`` subclassed to set ``API_URL``, ``WS_API_URL`` and ``STREAM_URL``
  (as in the README and tests/integration/test_interop_python_binance.py). One socket and one
  cache per symbol, ``limit=1000`` snapshots. Counted: each ``dcm.recv()`` that returns the cache
  is one applied diff. Its read loop puts parsed frames on a queue that ``recv()`` drains; the
  queue's default bound (``max_queue_size=100``) overflows within a second of a flat-out firehose,
  which stops the read loop for good, so the driver passes ``max_queue_size=100_000`` (a public
  parameter) and reports the queue left at the end as ``lag``.
* ``ccxt``: ``ccxt.pro.binance`` with ``exchange.urls["api"]`` overridden after construction
  (``public``, ``private``, ``v1``, ``ws.spot``, ``ws.ws-api.spot``) and market loading limited to
  spot (``options.fetchMarkets.types``, ``fetchMargins``, ``fetchCurrencies``): otherwise ccxt
  loads futures and margin data from the real hosts, which only the spot URLs were changed away
  from. ``watch_order_book(symbol)`` per symbol, ``limit=None`` (ccxt's snapshot limit 1000).
  Counted: ``handle_order_book_message`` (the method ccxt calls once per applied diff) in a
  subclass, which also yields ``orderbook["nonce"]`` = the last applied ``u``.
* ``unicorn``: ``unicorn-binance-local-depth-cache`` (thread-based; installs from PyPI alone).
  Its REST manager has no base-URL option: ``BinanceRestApiManager.__init__`` sets ``API_URL``
  from ``exchange`` and immediately asks that host for the server time, so the driver subclasses
  it and overrides ``_create_api_uri`` (a private method, the one every spot REST call goes
  through) and hands it in as ``ubra_manager=`` (public). Its WebSocket manager has a public
  ``websocket_base_uri`` but the depth-cache manager builds it without passing one, so the driver
  sets ``get_ubwa_manager().websocket_base_uri`` before creating any cache. ``warn_on_update``
  off (it asks GitHub for releases). Counted: ``depth_caches[market]["last_update_id"]`` moves by
  20 per applied firehose diff; UNICORN has no per-diff count (on the live market: no rate).

Every run happens under ``loopback_only()``: a lookup of any non-loopback host fails at once.

CLI (one peer, one JSON object): python benchmarks/peers.py --peer NAME --rest URL --ws URL
                                 [--symbols BTCUSDT ...] [--seconds 5] [--warmup 1] [--live]
Or --self-test [--live]: start an exchange (a firehose, or the live market at 2,000 actions/s)
and run every peer on it, one JSON line each. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from local_exchange import exchange_process, loopback_only  # noqa: E402

from streamer.testing.exchange.firehose import FirehoseSeries, generate_series  # noqa: E402

PEERS = ("python-binance", "ccxt", "unicorn")
DISTRIBUTIONS = {
    "python-binance": "python-binance",
    "ccxt": "ccxt",
    "unicorn": "unicorn-binance-local-depth-cache",
}
IDS_PER_MESSAGE = 20  # update ids per firehose diff (one per changed level)
TOP = 10  # levels per side compared with the firehose's true book
FIREHOSE_SEED = 1  # `streamer exchange --seed` default, which bench_live uses
Levels = list[tuple[Decimal, Decimal]]


# ---------------------------------------------------------------------- the result


class Sampler:
    """Applied-diff counts, update ids and CPU at the two edges of the measurement window."""

    def __init__(self) -> None:
        self.t0 = self.cpu0 = 0.0
        self.seconds = self.cpu = 0.0
        self.counts0: dict[str, int] = {}
        self.ids0: dict[str, int | None] = {}
        self.applied = 0
        self.ids = 0

    def open(self, counts: dict[str, int], ids: dict[str, int | None]) -> None:
        self.counts0, self.ids0 = dict(counts), dict(ids)
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def close(self, counts: dict[str, int], ids: dict[str, int | None]) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = (time.process_time() - self.cpu0) / self.seconds
        self.applied = sum(counts[s] - self.counts0.get(s, 0) for s in counts)
        self.ids = sum(
            (last or 0) - (self.ids0.get(s) or 0)
            for s, last in ids.items()
            if last is not None and self.ids0.get(s) is not None
        )


def book_check(
    symbol: str, last_update_id: int | None, bids: Levels, asks: Levels, firehose: bool
) -> dict[str, Any]:
    """Best bid/ask, ``plausible`` (bid < ask) and, on the firehose, ``matches_firehose``."""
    best_bid = bids[0][0] if bids else None
    best_ask = asks[0][0] if asks else None
    plausible = best_bid is not None and best_ask is not None and best_bid < best_ask
    truth = None
    if firehose and last_update_id is not None:
        truth = firehose_book(symbol, last_update_id)
    matches = None if truth is None else (bids[:TOP], asks[:TOP]) == truth
    return {
        "last_update_id": last_update_id,
        "best_bid": str(best_bid),
        "best_ask": str(best_ask),
        "plausible": plausible,
        "matches_firehose": matches,
    }


def levels(pairs: Any) -> Levels:
    """A peer's levels (floats, strings or Decimals) as exact Decimals, in the peer's order."""
    return [(Decimal(str(p)), Decimal(str(q))) for p, q, *_ in pairs]


@cache
def _series(symbol: str) -> FirehoseSeries:
    return generate_series(symbol, seed=FIREHOSE_SEED)  # what `streamer exchange --firehose` uses


def firehose_book(
    symbol: str, last_update_id: int, depth: int = TOP
) -> tuple[Levels, Levels] | None:
    """The firehose's true top ``depth`` levels after the diff ending at ``last_update_id``.

    The firehose's cycle brings its book back to the starting state, so the book after message
    ``k`` is the snapshot with messages ``0 .. k % len`` applied (the snapshot is the start with
    half of message 0 applied, which message 0 then sets to the same values). ``None`` when the
    id is not the last id of a firehose message.
    """
    series = _series(symbol)
    step = series.per_message
    k, rest = divmod(last_update_id - series.first_update_id - step + 1, step)
    if rest or k < 0:
        return None
    bids = {Decimal(p): Decimal(q) for p, q in series.bids}
    asks = {Decimal(p): Decimal(q) for p, q in series.asks}
    for i in range(k % len(series.messages) + 1):
        for side, changes in zip((bids, asks), series.messages[i], strict=True):
            for p, q in changes:
                price, qty = Decimal(p), Decimal(q)
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
    top_bids = sorted(bids.items(), reverse=True)[:depth]
    top_asks = sorted(asks.items())[:depth]
    return top_bids, top_asks


def result(
    peer: str,
    sampler: Sampler,
    *,
    synced: bool,
    sync_seconds: float | None,
    books: dict[str, dict[str, Any]],
    counted: str,
    firehose: bool,
    **extra: Any,
) -> dict[str, Any]:
    """The common shape of every driver's answer."""
    if counted == "update_ids":  # one firehose diff = IDS_PER_MESSAGE update ids; else unknown
        applied = sampler.ids / IDS_PER_MESSAGE if firehose else None
    else:
        applied = sampler.applied
    seconds = sampler.seconds or float("nan")
    return {
        "peer": peer,
        "version": _version(peer),
        "msgs_per_s": None if applied is None else applied / seconds,
        "client_cpu": sampler.cpu,
        "synced": synced,
        "sync_seconds": sync_seconds,
        "window_seconds": sampler.seconds,
        "counted": counted,
        "update_ids_per_s": sampler.ids / seconds,
        "plausible": bool(books) and all(b["plausible"] for b in books.values()),
        "matches_firehose": _all_or_none(b["matches_firehose"] for b in books.values()),
        "books": books,
        **extra,
    }


def _all_or_none(values: Any) -> bool | None:
    seen = [v for v in values if v is not None]
    return all(seen) if seen else None


def _version(peer: str) -> str | None:
    try:
        return version(DISTRIBUTIONS[peer])
    except PackageNotFoundError:
        return None


async def _wait_until(condition: Callable[[], bool], limit_s: float, what: str) -> float:
    """Poll ``condition`` for at most ``limit_s`` seconds; how long it took.

    The conditions are a peer's own state, which offers nothing to await.
    """
    start = time.perf_counter()
    try:
        async with asyncio.timeout(limit_s):
            while not condition():  # noqa: ASYNC110 - nothing to wait on but the peer's state
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise TimeoutError(f"{what}: not done within {limit_s} s") from None
    return time.perf_counter() - start


# ---------------------------------------------------------------------- python-binance


async def run_python_binance(
    rest_url: str,
    ws_url: str,
    symbols: Sequence[str],
    seconds: float,
    *,
    warmup: float = 1.0,
    sync_timeout: float = 30.0,
    max_queue_size: int = 100_000,
    firehose: bool = True,
) -> dict[str, Any]:
    with warnings.catch_warnings():  # its imports of the legacy websockets API
        warnings.simplefilter("ignore", DeprecationWarning)
        from binance import AsyncClient, BinanceSocketManager, DepthCacheManager
        from binance.ws.depthcache import DepthCache

    class LocalClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{rest_url}/api"
        WS_API_URL = f"{ws_url}/ws-api/v3"

    class LocalSockets(BinanceSocketManager):  # type: ignore[misc]
        STREAM_URL = f"{ws_url}/"

    client = await LocalClient.create()
    sockets = LocalSockets(client, max_queue_size=max_queue_size)
    counts: Counter[str] = Counter({s: 0 for s in symbols})
    errors: list[Any] = []
    managers = {
        s: DepthCacheManager(client, s, bm=sockets, ws_interval=100, limit=1000) for s in symbols
    }

    def ids() -> dict[str, int | None]:
        # private, read for the check only: python-binance exposes no last update id
        return {s: getattr(m, "_last_update_id", None) for s, m in managers.items()}

    running = True

    async def consume(symbol: str, dcm: Any) -> None:
        while running:
            cache_or_error = await dcm.recv()
            if not isinstance(cache_or_error, DepthCache):
                errors.append(cache_or_error)  # python-binance's error event: the loop is gone
                return
            counts[symbol] += 1

    sampler = Sampler()
    sync_seconds = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            for dcm in managers.values():
                await stack.enter_async_context(dcm)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(consume(s, m)) for s, m in managers.items()]
                sync_seconds = await _wait_until(
                    lambda: all(counts.values()) or bool(errors),
                    sync_timeout,
                    "python-binance sync",
                )
                await asyncio.sleep(warmup)
                sampler.open(counts, ids())
                await asyncio.sleep(seconds)
                sampler.close(counts, ids())
                running = False
                await _cancel(tasks)
            lag = sum(_queue_size(m) for m in managers.values())
            books = {}
            for s, m in managers.items():
                cache_ = m.get_depth_cache()
                bids, asks = levels(cache_.get_bids()[:TOP]), levels(cache_.get_asks()[:TOP])
                books[s] = book_check(s, ids()[s], bids, asks, firehose)
    finally:
        await client.close_connection()
    return result(
        "python-binance",
        sampler,
        synced=sync_seconds is not None and not errors,
        sync_seconds=sync_seconds,
        books=books,
        counted="dcm.recv() returns",
        firehose=firehose,
        lag=lag,
        errors=[str(e)[:200] for e in errors],
        settings={"max_queue_size": max_queue_size, "limit": 1000, "ws_interval": 100},
    )


async def _cancel(tasks: list[asyncio.Task[None]], limit_s: float = 10.0) -> None:
    """Cancel ``tasks`` until they are done: python-binance nests ``asyncio.wait_for``, which on
    Python 3.11 can swallow a cancellation that lands as its inner await completes (bpo-37658),
    and its ``recv()`` retries after any exception, so one ``cancel()`` may not stop it."""
    deadline = time.perf_counter() + limit_s
    pending = [t for t in tasks if not t.done()]
    while pending and time.perf_counter() < deadline:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.05)
        pending = [t for t in pending if not t.done()]
    if pending:
        raise RuntimeError(f"{len(pending)} peer task(s) would not stop")


def _queue_size(dcm: Any) -> int:
    """Frames read but not yet applied (private attributes; for the report only)."""
    queue = getattr(getattr(dcm, "_socket", None), "_queue", None)
    return queue.qsize() if queue is not None else 0


# ---------------------------------------------------------------------- ccxt


async def run_ccxt(
    rest_url: str,
    ws_url: str,
    symbols: Sequence[str],
    seconds: float,
    *,
    warmup: float = 1.0,
    sync_timeout: float = 30.0,
    firehose: bool = True,
) -> dict[str, Any]:
    import ccxt.pro as ccxtpro

    class CountingBinance(ccxtpro.binance):  # type: ignore[misc,name-defined]
        """ccxt's binance, counting the diffs it applies (per symbol id)."""

        applied: Counter[str]

        def handle_order_book_message(self, client: Any, message: Any, orderbook: Any) -> Any:
            self.applied[message.get("s", "")] += 1
            return super().handle_order_book_message(client, message, orderbook)

    exchange = CountingBinance(
        {
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                "fetchCurrencies": False,
            }
        }
    )
    exchange.applied = Counter({s: 0 for s in symbols})
    api = exchange.urls["api"]
    api["public"] = api["private"] = f"{rest_url}/api/v3"
    api["v1"] = f"{rest_url}/api/v1"
    api["ws"]["spot"] = f"{ws_url}/ws"
    api["ws"]["ws-api"]["spot"] = f"{ws_url}/ws-api/v3"
    errors: list[str] = []
    sampler = Sampler()
    sync_seconds = None
    books: dict[str, dict[str, Any]] = {}
    try:
        await exchange.load_markets()
        unified = {s: exchange.safe_symbol(s, None, None, "spot") for s in symbols}

        def ids() -> dict[str, int | None]:
            return {s: _nonce(exchange, unified[s]) for s in symbols}

        async def consume(symbol: str) -> None:
            try:
                while True:
                    await exchange.watch_order_book(unified[symbol])
            except Exception as exc:  # ccxt's error (a gap raises ChecksumError): not synced
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(consume(s)) for s in symbols]
            sync_seconds = await _wait_until(
                lambda: all(v is not None for v in ids().values()) or bool(errors),
                sync_timeout,
                "ccxt",
            )
            await asyncio.sleep(warmup)
            sampler.open(exchange.applied, ids())
            await asyncio.sleep(seconds)
            sampler.close(exchange.applied, ids())
            last = ids()
            for s in symbols:  # read now: the loop applies nothing between here and the end
                book = exchange.orderbooks[unified[s]]
                bids, asks = levels(book["bids"][:TOP]), levels(book["asks"][:TOP])
                books[s] = book_check(s, last[s], bids, asks, firehose)
            await _cancel(tasks)
    finally:
        await exchange.close()
    return result(
        "ccxt",
        sampler,
        synced=sync_seconds is not None and not errors,
        sync_seconds=sync_seconds,
        books=books,
        counted="handle_order_book_message calls",
        firehose=firehose,
        errors=errors,
    )


def _nonce(exchange: Any, symbol: str) -> int | None:
    book = exchange.orderbooks.get(symbol) if exchange.orderbooks else None
    if book is None:
        return None
    nonce = book.get("nonce")
    return int(nonce) if nonce is not None else None


# ---------------------------------------------------------------------- UNICORN


def _run_unicorn_blocking(
    rest_url: str,
    ws_url: str,
    symbols: Sequence[str],
    seconds: float,
    warmup: float,
    sync_timeout: float,
    firehose: bool,
) -> dict[str, Any]:
    from unicorn_binance_local_depth_cache import BinanceLocalDepthCacheManager
    from unicorn_binance_rest_api import BinanceRestApiManager

    class LocalRest(BinanceRestApiManager):  # type: ignore[misc]
        """UNICORN's REST manager with every spot REST call sent to the local exchange."""

        def _create_api_uri(
            self,
            path: str,
            signed: bool = True,
            version: str = BinanceRestApiManager.PUBLIC_API_VERSION,
        ) -> str:
            v = self.PRIVATE_API_VERSION if signed else version
            return f"{rest_url}/api/{v}/{path}"

    ubra = LocalRest(exchange="binance.com", warn_on_update=False, disable_colorama=True)
    ubldc = BinanceLocalDepthCacheManager(
        exchange="binance.com",
        ubra_manager=ubra,
        depth_cache_update_interval=100,
        warn_on_update=False,
        disable_colorama=True,
    )
    markets = [s.lower() for s in symbols]
    try:
        ubwa = ubldc.get_ubwa_manager()
        ubwa.websocket_base_uri = f"{ws_url}/"
        ubldc.create_depthcache(markets=markets)

        def ids() -> dict[str, int | None]:
            return {s: ubldc.depth_caches[s.lower()]["last_update_id"] for s in symbols}

        def all_synced() -> bool:
            return all(ubldc.is_depth_cache_synchronized(m) for m in markets)

        start = time.perf_counter()
        while not all_synced():
            if time.perf_counter() - start > sync_timeout:
                raise TimeoutError(f"UNICORN not synced after {sync_timeout} s")
            time.sleep(0.02)  # a thread-based peer: its state can only be polled
        sync_seconds = time.perf_counter() - start
        time.sleep(warmup)
        sampler = Sampler()
        no_counts = {s: 0 for s in symbols}
        receives0 = ubwa.get_total_receives()
        sampler.open(no_counts, ids())
        time.sleep(seconds)
        sampler.close(no_counts, ids())
        received = ubwa.get_total_receives() - receives0
        synced = all_synced() and all(ubldc.get_restart_count(m) == 0 for m in markets)
        books = _unicorn_books(ubldc, symbols, firehose)
    finally:
        ubldc.stop_manager()
    return result(
        "unicorn",
        sampler,
        synced=synced,
        sync_seconds=sync_seconds,
        books=books,
        counted="update_ids",
        firehose=firehose,
        received_per_s=received / sampler.seconds,
    )


def _unicorn_books(
    ubldc: Any, symbols: Sequence[str], firehose: bool, tries: int = 50
) -> dict[str, dict[str, Any]]:
    """Read and check UNICORN's books while its stream thread keeps applying diffs.

    That thread applies a diff's asks under the asks lock, then its bids under the bids lock, then
    stores its ``u`` under neither, so even a read holding both locks can catch a book a diff ahead
    of its id. A correct book matches the firehose's truth on most reads, a wrong one on none: the
    check takes the first of ``tries`` reads that matches. (Stopping UNICORN's stream first does
    not help: the disconnect marks the caches out of sync and drops their update ids.)
    """
    books = {}
    for s in symbols:
        cache_ = ubldc.depth_caches[s.lower()]
        locks = ubldc.threading_lock_ask[s.lower()], ubldc.threading_lock_bid[s.lower()]
        check: dict[str, Any] = {}
        for _ in range(tries if firehose else 1):
            with locks[0], locks[1]:
                last = cache_["last_update_id"]
                bid_items, ask_items = list(cache_["bids"].items()), list(cache_["asks"].items())
            bids = levels(sorted(bid_items, key=lambda kv: Decimal(kv[0]), reverse=True)[:TOP])
            asks = levels(sorted(ask_items, key=lambda kv: Decimal(kv[0]))[:TOP])
            check = book_check(s, last, bids, asks, firehose)
            if check["matches_firehose"]:
                break
            time.sleep(0.01)
        books[s] = check
    return books


async def run_unicorn(
    rest_url: str,
    ws_url: str,
    symbols: Sequence[str],
    seconds: float,
    *,
    warmup: float = 1.0,
    sync_timeout: float = 60.0,
    firehose: bool = True,
) -> dict[str, Any]:
    return await asyncio.to_thread(
        _run_unicorn_blocking,
        rest_url,
        ws_url,
        symbols,
        seconds,
        warmup,
        sync_timeout,
        firehose,
    )


# ---------------------------------------------------------------------- the entry point

DRIVERS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "python-binance": run_python_binance,
    "ccxt": run_ccxt,
    "unicorn": run_unicorn,
}


async def run_peer(
    name: str,
    rest_url: str,
    ws_url: str,
    symbols: Sequence[str],
    seconds: float,
    **options: Any,
) -> dict[str, Any]:
    """Keep ``symbols``' books with peer ``name`` on the local exchange; measure ``seconds``.

    ``rest_url``/``ws_url`` are the exchange's base URLs (``streamer exchange --json`` prints
    them). Options: ``warmup`` (s, after sync), ``sync_timeout`` (s), ``firehose`` (True: the
    exchange serves ``--firehose``, so books are checked against its true book and UNICORN's
    diffs are counted from its update ids; False on the live market, where they cannot be). The
    answer:
    ``msgs_per_s`` (diffs applied per second, all symbols), ``client_cpu`` (process CPU / wall in
    the window), ``synced`` (every book synced and never reset or failed), ``plausible`` (best bid
    < best ask in every book), ``matches_firehose`` (top 10 levels per side equal the firehose's
    true book at the peer's last update id; ``None`` when that cannot be checked), ``books``,
    ``sync_seconds``, ``counted`` (how applied diffs were counted) and per-peer extras.
    """
    driver = DRIVERS[name]
    with loopback_only():
        return await driver(rest_url, ws_url, list(symbols), seconds, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=PEERS)
    parser.add_argument("--rest")
    parser.add_argument("--ws")
    parser.add_argument("--symbols", nargs="+", default=["BTCUSDT"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--live", action="store_true", help="the live market, not a firehose")
    parser.add_argument("--self-test", action="store_true", help="start an exchange, run all")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the peers log every hiccup; results say enough
    options = {"warmup": args.warmup, "firehose": not args.live}
    if args.self_test:
        firehose = not args.live
        rate = 0 if firehose else 2000
        with exchange_process(args.symbols, firehose=firehose, rate=rate) as urls:
            for peer in PEERS:
                out = asyncio.run(
                    run_peer(peer, urls["rest"], urls["ws"], args.symbols, args.seconds, **options)
                )
                print(orjson.dumps(out).decode())
        return 0
    if not (args.peer and args.rest and args.ws):
        parser.error("--peer, --rest and --ws are required (or --self-test)")
    out = asyncio.run(
        run_peer(args.peer, args.rest, args.ws, args.symbols, args.seconds, **options)
    )
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    if threading.active_count() > 1:
        os._exit(0)  # UNICORN leaves non-daemon threads behind after stop_manager()
    return 0


if __name__ == "__main__":
    sys.exit(main())
