"""Orders over loopback: placement round trips of streamer and its peers, and the tracker's rate.

**Round trips.** The local exchange runs in a child process of its own (``--serve``: a
``FakeExchange`` with its order-count and weight limits lifted, since 50 orders per 10 s would
measure the limit, not the latency; a live simulated market of BTCUSDT at ``--rate`` actions
per second). In each of ``--repeat`` rounds every client runs in a fresh child process of its
own, with a fresh funded account, and the clients take turns, one order each (the order of turns
rotating every cycle; see ``Turns``), so that whatever else a shared machine does falls on all of
them alike. A client subscribes to its account's user-data stream (over the WS-API, so the
exchange does the same work for every client: each order's events are published before its
REST answer is written), then places ``--limits`` LIMIT orders far from
the market (half the price: they rest, never fill), cancelling each one before the next, then
``--markets`` MARKET orders (BUY and SELL in turn), after a warm-up of a few orders of each kind
that is not counted (the turns start once every client is warmed up). One order at a time on
the whole machine; timed in the client with ``time.perf_counter`` from the call:

* **REST answer**: the placing (or cancelling) call returned;
* **executionReport in**: the order's report of the awaited status (NEW, CANCELED, the MARKET's
  final one) has reached the client: for streamer, applied to the pure tracker
  (``OrderTracker.receive_event`` returned; watched through a wrapper of that method, since a
  report that confirms what the REST answer already said changes nothing and emits no event);
  for python-binance, returned by its user socket's ``recv()``; for ccxt, in the orders that
  ``watch_orders()`` returned (parsed into its order cache);
* **both**: the later of the two, the full round trip (place -> REST ack -> executionReport).

The clients:

* streamer: ``Streamer.place_order`` / ``cancel_order`` with credentials, its book of BTCUSDT
  live (a MARKET order's notional check then reads the book's mid instead of asking for a
  ticker). Before anything is sent the order is checked and quantized against the symbol's
  filters and tracked (SENT); the REST answer is applied to the tracker before the call
  returns. All of that is in the time.
* python-binance: ``AsyncClient`` (``API_URL`` pointed at the exchange) ``create_order`` /
  ``cancel_order``; its ``BinanceSocketManager.user_socket()`` read in a task.
* ccxt: ``ccxt.pro.binance`` (ccxt's async client with its WebSocket part) with
  ``urls["api"]`` overridden, markets loaded before timing, ``create_order`` / ``cancel_order``
  over REST (answers parsed into ccxt's order structure), ``watch_orders`` read in a task. Its
  client-side throttle (``enableRateLimit``, on by default) is off, so that the time is its
  round trip; with it on (``--ccxt-throttle``) every request waits its turn by Binance's
  published limits (about 12 ms apart here).

Every client sends the same orders (same symbol, side, quantity, price rule) and gets FULL
answers (Binance's default for LIMIT and MARKET; streamer asks for FULL explicitly). All on the
default asyncio loop (``--uvloop``: all on uvloop), and under ``loopback_only()``.

**Tracker.** Events per second that the pure ``streamer.sansio.orders.OrderTracker`` applies: a
synthetic user stream for ``--tracker-orders`` orders, each NEW, then PARTIALLY_FILLED and FILLED
by two trades, each trade followed by an ``outboundAccountPosition``, fed through
``receive_event`` with the events drained after each one (as the asyncio layer does); the CPU
time of the process, median of ``--repeat`` runs.

Medians of ``--repeat`` rounds (default 3): p50 and p99 per round, then the median of each;
ratios are peer / streamer within a round, then the median ratio. ``cpu_limit`` /
``cpu_market``: the client process's CPU time during each of its orders, per order. Usage:

    python benchmarks/bench_orders.py [--json] [--repeat 3] [--limits 300] [--markets 100]
                                      [--clients streamer,python-binance,ccxt] [--uvloop]

Never collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from local_exchange import ROOT, _readline, json_child, loopback_only  # noqa: E402
from peers import _cancel  # noqa: E402

CLIENTS = ("streamer", "python-binance", "ccxt")
DISTRIBUTIONS = {"streamer": "streamer", "python-binance": "python-binance", "ccxt": "ccxt"}
SYMBOL = "BTCUSDT"
CCXT_SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")  # BTCUSDT's PRICE_FILTER tickSize on the local exchange
LIMIT_QTY = "0.10000"  # notional ~13 USDT at half the mid: over MIN_NOTIONAL's 10
MARKET_QTY = "0.05000"
WARMUP = 5  # orders of each kind, not counted
LIMIT = 10**9  # order counts and weight: lifted on the benchmark's exchange
CLIENT_TIMEOUT = 600.0  # seconds a client process may take
#: What is timed, by name (milliseconds in the report), for every client.
MEASURES = {
    "place": "LIMIT place -> REST answer and executionReport (both)",
    "place_rest": "LIMIT place -> REST answer",
    "place_stream": "LIMIT place -> executionReport in",
    "cancel": "cancel -> REST answer and executionReport (both)",
    "cancel_rest": "cancel -> REST answer",
    "cancel_stream": "cancel -> executionReport in",
    "market": "MARKET place -> REST answer and final executionReport (both)",
    "market_rest": "MARKET place -> REST answer",
    "market_stream": "MARKET place -> final executionReport in",
    "cpu_limit": "client CPU per LIMIT placed and cancelled (one value per run)",
    "cpu_market": "client CPU per MARKET placed (one value per run)",
}
PEER_MEASURES = tuple(MEASURES)


# ---------------------------------------------------------------------- the exchange


async def serve(rate: float) -> None:
    """``--serve``: the local exchange with its limits lifted; one JSON line, then serve."""
    from streamer.testing import FakeExchange

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeExchange([SYMBOL], rate=rate, weight_limit=LIMIT) as exchange:
        # Binance's 50 orders per 10 s would make this a benchmark of the order-count limit
        exchange.weights.orders_10s = exchange.weights.orders_1d = LIMIT
        line = {"rest": exchange.endpoints.rest, "ws": exchange.endpoints.ws}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        await exchange.serve_until(stop)


async def new_account(rest: str) -> tuple[str, str]:
    """A funded HMAC account on the exchange (``POST /_fake/accounts``)."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{rest}/_fake/accounts") as response,
    ):
        body = await response.json()
    return body["apiKey"], body["secretKey"]


async def far_price(rest: str) -> str:
    """Half the last price, on the tick: a BUY there rests and never fills."""
    import aiohttp

    url = f"{rest}/api/v3/ticker/price?symbol={SYMBOL}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        price = Decimal((await response.json())["price"])
    return str((price / 2).quantize(TICK, rounding=ROUND_DOWN))


# ---------------------------------------------------------------------- the clients

Timings = dict[str, list[float]]


class Plan:
    """What every client sends: LIMIT BUYs at ``price`` (each cancelled), then MARKETs."""

    def __init__(self, price: str, limits: int, markets: int, tag: str, client: str) -> None:
        self.price = price
        self.limits = limits
        self.markets = markets
        self.tag = tag  # client order ids are unique per run and client
        self.client = client

    def cid(self, kind: str, i: int) -> str:
        return f"b{self.tag}{kind}{i}"


async def run_streamer(rest: str, key: str, secret: str, plan: Plan, turns: Turns) -> Timings:
    from streamer import Credentials, Endpoints, Streamer
    from streamer.order_models import TERMINAL, OrderStatus

    times: Timings = {name: [] for name in MEASURES}
    # client order id -> (the statuses awaited from the stream, when their report was applied)
    waiting: dict[str, tuple[frozenset[str], asyncio.Future[float]]] = {}

    def expect(cid: str, statuses: frozenset[OrderStatus]) -> asyncio.Future[float]:
        seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        waiting[cid] = (frozenset(s.value for s in statuses), seen)
        return seen

    new = frozenset({OrderStatus.NEW})
    cancelled = frozenset({OrderStatus.CANCELED})
    endpoints = Endpoints.local(rest)
    credentials = Credentials(key, secret)
    async with Streamer(
        endpoints, symbols=[SYMBOL], credentials=credentials, audit_interval=None
    ) as s:
        await s.track_orders()
        # The moment an executionReport has been applied to the tracker: a report that only
        # confirms what the REST answer already said changes nothing, so no OrderUpdate shows
        # it; the benchmark wraps the tracker's receive_event instead (private: _trading).
        tracker = s._trading.tracker  # type: ignore[union-attr]
        receive = tracker.receive_event

        def timed(event: Any) -> None:
            receive(event)
            if event.get("e") == "executionReport":
                entry = waiting.get(event.get("C") or event.get("c"))
                if entry and event.get("X") in entry[0] and not entry[1].done():
                    entry[1].set_result(time.perf_counter())

        tracker.receive_event = timed
        async with asyncio.timeout(60):  # the book live: a MARKET order's reference price
            async for _ in s.book(SYMBOL, depth=1):
                break

        async def one_limit(i: int, keep: bool) -> None:
            cid = plan.cid("L", i)
            seen = expect(cid, new)
            t0 = time.perf_counter()
            await s.place_order(
                SYMBOL, "BUY", "LIMIT", quantity=LIMIT_QTY, price=plan.price,
                time_in_force="GTC", client_order_id=cid,
            )  # fmt: skip
            t_rest = time.perf_counter()
            t_stream = await asyncio.wait_for(seen, 10)
            seen = expect(cid, cancelled)
            t1 = time.perf_counter()
            await s.cancel_order(SYMBOL, cid)
            t1_rest = time.perf_counter()
            t1_stream = await asyncio.wait_for(seen, 10)
            if keep:
                _keep(times, "place", t0, t_rest, t_stream)
                _keep(times, "cancel", t1, t1_rest, t1_stream)

        async def one_market(i: int, keep: bool) -> None:
            cid = plan.cid("M", i)
            seen = expect(cid, TERMINAL)
            t0 = time.perf_counter()
            await s.place_order(
                SYMBOL, "BUY" if i % 2 else "SELL", "MARKET", quantity=MARKET_QTY,
                client_order_id=cid,
            )  # fmt: skip
            t_rest = time.perf_counter()
            t_stream = await asyncio.wait_for(seen, 10)
            if keep:
                _keep(times, "market", t0, t_rest, t_stream)

        await _drive(plan, one_limit, one_market, times, turns)
    return times


class Reports:
    """When each (order id, status) was first reported by a peer's user stream."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self._changed = asyncio.Event()

    def saw(self, order_id: Any, status: str) -> None:
        self.seen.setdefault((str(order_id), status), time.perf_counter())
        self._changed.set()

    async def wait(self, order_id: Any, status: str, limit: float = 10.0) -> float:
        key = (str(order_id), status)
        async with asyncio.timeout(limit):
            while key not in self.seen:
                self._changed.clear()
                await self._changed.wait()
        return self.seen[key]


async def run_python_binance(rest: str, key: str, secret: str, plan: Plan, turns: Turns) -> Timings:
    with warnings.catch_warnings():  # its imports of the legacy websockets API
        warnings.simplefilter("ignore", DeprecationWarning)
        from binance import AsyncClient, BinanceSocketManager

    ws = rest.replace("http", "ws", 1)

    class LocalClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{rest}/api"
        WS_API_URL = f"{ws}/ws-api/v3"

    class LocalSockets(BinanceSocketManager):  # type: ignore[misc]
        STREAM_URL = f"{ws}/"

    times: Timings = {name: [] for name in PEER_MEASURES}
    reports = Reports()
    client = await LocalClient.create(key, secret)
    try:
        # its user stream (userDataStream.subscribe.signature over the WS-API), read throughout
        async with LocalSockets(client).user_socket() as user:

            async def read() -> None:
                while True:
                    event = await user.recv()
                    if isinstance(event, dict) and event.get("e") == "executionReport":
                        reports.saw(event["i"], event["X"])

            reading = asyncio.create_task(read())

            async def one_limit(i: int, keep: bool) -> None:
                cid = plan.cid("L", i)
                t0 = time.perf_counter()
                order = await client.create_order(
                    symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC",
                    quantity=LIMIT_QTY, price=plan.price, newClientOrderId=cid,
                )  # fmt: skip
                t_rest = time.perf_counter()
                t_stream = await reports.wait(order["orderId"], "NEW")
                t1 = time.perf_counter()
                await client.cancel_order(symbol=SYMBOL, origClientOrderId=cid)
                t1_rest = time.perf_counter()
                t1_stream = await reports.wait(order["orderId"], "CANCELED")
                if keep:
                    _keep(times, "place", t0, t_rest, t_stream)
                    _keep(times, "cancel", t1, t1_rest, t1_stream)

            async def one_market(i: int, keep: bool) -> None:
                t0 = time.perf_counter()
                order = await client.create_order(
                    symbol=SYMBOL, side="BUY" if i % 2 else "SELL", type="MARKET",
                    quantity=MARKET_QTY, newClientOrderId=plan.cid("M", i),
                )  # fmt: skip
                t_rest = time.perf_counter()
                t_stream = await reports.wait(order["orderId"], order["status"])
                if keep:
                    _keep(times, "market", t0, t_rest, t_stream)

            await _drive(plan, one_limit, one_market, times, turns)
            await _cancel([reading])  # one cancel() may not stop python-binance's reader
    finally:
        await client.close_connection()
    return times


async def run_ccxt(rest: str, key: str, secret: str, plan: Plan, turns: Turns) -> Timings:
    import ccxt.pro as ccxtpro  # ccxt's async binance with its WebSocket part (watch_orders)

    exchange = ccxtpro.binance(
        {
            "apiKey": key,
            "secret": secret,
            # its client-side throttle (on by default) spaces requests by Binance's published
            # limits; off, the time is the library's own round trip, as for the other clients
            "enableRateLimit": os.environ.get("BENCH_CCXT_THROTTLE") == "1",
            # spot markets only: with a key ccxt would also load futures, margin and currency
            # data from the real hosts (only the spot URLs point at the local exchange)
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                "fetchCurrencies": False,
            },
        }
    )
    ws = rest.replace("http", "ws", 1)
    api = exchange.urls["api"]
    api["public"] = api["private"] = f"{rest}/api/v3"
    api["v1"] = f"{rest}/api/v1"
    api["ws"]["spot"] = f"{ws}/ws"
    api["ws"]["ws-api"]["spot"] = f"{ws}/ws-api/v3"
    times: Timings = {name: [] for name in PEER_MEASURES}
    reports = Reports()
    status = {"open": "NEW", "canceled": "CANCELED", "closed": "FILLED", "expired": "EXPIRED"}
    try:
        await exchange.load_markets()
        await exchange.authenticate()  # userDataStream.subscribe.signature

        async def read() -> None:
            while True:
                for order in await exchange.watch_orders(CCXT_SYMBOL):
                    reports.saw(order["id"], status.get(order["status"], order["status"]))

        reading = asyncio.create_task(read())

        async def one_limit(i: int, keep: bool) -> None:
            cid = plan.cid("L", i)
            t0 = time.perf_counter()
            order = await exchange.create_order(
                CCXT_SYMBOL, "limit", "buy", float(LIMIT_QTY), float(plan.price),
                {"newClientOrderId": cid},
            )  # fmt: skip
            t_rest = time.perf_counter()
            t_stream = await reports.wait(order["id"], "NEW")
            t1 = time.perf_counter()
            await exchange.cancel_order(order["id"], CCXT_SYMBOL)
            t1_rest = time.perf_counter()
            t1_stream = await reports.wait(order["id"], "CANCELED")
            if keep:
                _keep(times, "place", t0, t_rest, t_stream)
                _keep(times, "cancel", t1, t1_rest, t1_stream)

        async def one_market(i: int, keep: bool) -> None:
            t0 = time.perf_counter()
            order = await exchange.create_order(
                CCXT_SYMBOL, "market", "buy" if i % 2 else "sell", float(MARKET_QTY), None,
                {"newClientOrderId": plan.cid("M", i)},
            )  # fmt: skip
            t_rest = time.perf_counter()
            t_stream = await reports.wait(order["id"], status[order["status"]])
            if keep:
                _keep(times, "market", t0, t_rest, t_stream)

        await _drive(plan, one_limit, one_market, times, turns)
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    finally:
        await exchange.close()
    return times


def _keep(times: Timings, kind: str, t0: float, t_rest: float, t_stream: float) -> None:
    """One round trip: to the REST answer, to the stream's report, and to both."""
    times[f"{kind}_rest"].append(t_rest - t0)
    times[f"{kind}_stream"].append(t_stream - t0)
    times[kind].append(max(t_rest, t_stream) - t0)


class Turns:
    """Whose turn it is, told by the parent process over this process's stdin and stdout.

    Every client runs in a process of its own (no shared loop, heap or collector), and the
    parent lets them place one order each in turn (the order of turns rotating every cycle),
    so that whatever else a shared machine does falls on all of them alike. Protocol, one line
    each: the child says ``ready`` once warmed up; the parent says ``go``, the child places one
    order and says ``ok``; after the last turn the parent says ``end`` to every child, which
    then closes and prints its timings.
    """

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None

    async def _line(self) -> str:
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(self._reader)
            await loop.connect_read_pipe(lambda: protocol, sys.stdin)
        async with asyncio.timeout(CLIENT_TIMEOUT):
            return (await self._reader.readline()).decode().strip()

    @staticmethod
    def _say(word: str) -> None:
        sys.stdout.write(word + "\n")
        sys.stdout.flush()

    async def ready(self) -> None:
        self._say("ready")

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        word = await self._line()
        if word != "go":
            raise RuntimeError(f"expected 'go' from the parent, got {word!r}")
        yield
        self._say("ok")

    async def done(self) -> None:
        word = await self._line()
        if word != "end":
            raise RuntimeError(f"expected 'end' from the parent, got {word!r}")


async def _drive(
    plan: Plan,
    one_limit: Callable[[int, bool], Awaitable[None]],
    one_market: Callable[[int, bool], Awaitable[None]],
    times: Timings,
    turns: Turns,
) -> None:
    """The warm-up (not counted), then the plan in turns: LIMITs, then MARKETs. Also the CPU
    time of the process during each of this client's orders, per LIMIT (with its cancel) and
    per MARKET (``cpu_limit``, ``cpu_market``): other jobs on the machine disturb it less than
    the wall-clock round trips."""
    for i in range(WARMUP):
        await one_limit(-1 - i, False)
        await one_market(-1 - i, False)
    await turns.ready()
    for kind, count, one in (
        ("limit", plan.limits, one_limit),
        ("market", plan.markets, one_market),
    ):
        cpu = 0.0
        for i in range(count):
            async with turns.turn():
                c0 = time.process_time()
                await one(i, True)
                cpu += time.process_time() - c0
        times[f"cpu_{kind}"] = [cpu / max(count, 1)]
    await turns.done()


DRIVERS: dict[str, Callable[[str, str, str, Plan, Turns], Awaitable[Timings]]] = {
    "streamer": run_streamer,
    "python-binance": run_python_binance,
    "ccxt": run_ccxt,
}


def client_main(args: argparse.Namespace) -> int:
    """``--client NAME``: one client against ``--rest``, in turns (see :class:`Turns`); its
    timings (seconds) as the last line of stdout."""
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    plan = Plan(args.price, args.limits, args.markets, args.tag, args.client)
    key, secret = os.environ["BENCH_API_KEY"], os.environ["BENCH_API_SECRET"]

    async def go() -> Timings:
        with loopback_only():
            return await DRIVERS[args.client](args.rest, key, secret, plan, Turns())

    if args.uvloop:
        import uvloop

        times = uvloop.run(go())
    else:
        times = asyncio.run(go())
    sys.stdout.buffer.write(orjson.dumps(times) + b"\n")
    sys.stdout.flush()
    os._exit(0)  # python-binance and ccxt may leave threads behind


class Child:
    """One client process of a round, driven line by line (see :class:`Turns`)."""

    def __init__(self, client: str, cmd: list[str], env: dict[str, str], log: Any) -> None:
        self.client = client
        self.log = log
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=env
        )

    def say(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, word: str) -> None:
        line = self.line()
        if line.strip() != word.encode():
            raise RuntimeError(f"{self.client}: expected {word!r}, got {line[:200]!r}")

    def line(self) -> bytes:
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, CLIENT_TIMEOUT)
        if not line:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{self.client} exited ({self.proc.wait()}): " + " | ".join(tail))
        return line


def run_round(
    rest: str, price: str, args: argparse.Namespace, tag: str, accounts: dict[str, list[str]]
) -> dict[str, Any]:
    """One round: a process per client, in turns; ``{client: timings}``, or ``{"error"}``."""
    children: list[Child] = []
    try:
        with contextlib.ExitStack() as stack:
            for client, (key, secret) in accounts.items():
                cmd = [sys.executable, str(Path(__file__).resolve()), "--client", client]
                cmd += ["--rest", rest, "--price", price, "--tag", f"{tag}{client[:2]}"]
                cmd += ["--limits", str(args.limits), "--markets", str(args.markets)]
                if args.uvloop:
                    cmd.append("--uvloop")
                # the key in the environment, not on a command line that `ps` shows
                env = dict(
                    os.environ, PYTHONPATH=str(ROOT), BENCH_API_KEY=key, BENCH_API_SECRET=secret
                )
                log = stack.enter_context(tempfile.TemporaryFile())
                children.append(Child(client, cmd, env, log))
            for child in children:
                child.expect("ready")
            steps = args.limits + args.markets
            for cycle in range(steps):
                shift = cycle % len(children)
                for child in children[shift:] + children[:shift]:
                    child.say("go")
                    child.expect("ok")
            for child in children:
                child.say("end")
            result = {child.client: orjson.loads(child.line()) for child in children}
            for child in children:
                child.proc.wait(timeout=60)
            return result
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired, ValueError) as exc:
        return {"error": str(exc)[:500]}
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()


# ---------------------------------------------------------------------- the tracker


def synthetic_stream(orders: int, symbol: str = SYMBOL) -> list[dict[str, Any]]:
    """Each order: NEW, two TRADEs (PARTIALLY_FILLED, FILLED), a position after each trade."""
    events: list[dict[str, Any]] = []
    now = 1_700_000_000_000
    trade = 1
    for i in range(orders):
        order_id = 1_000 + i
        cid = f"syn{i}"
        base = {
            "e": "executionReport", "s": symbol, "c": cid, "S": "BUY", "o": "LIMIT",
            "f": "GTC", "q": "2.00000000", "p": "100.00000000", "P": "0.00000000",
            "F": "0.00000000", "g": -1, "C": "", "r": "NONE", "i": order_id, "M": False,
            "O": now, "Q": "0.00000000", "V": "NONE",
        }  # fmt: skip
        now += 1
        events.append(base | {
            "E": now, "x": "NEW", "X": "NEW", "l": "0.00000000", "z": "0.00000000",
            "L": "0.00000000", "n": "0", "N": None, "T": now, "t": -1, "I": 3 * i, "w": True,
            "m": False, "Z": "0.00000000", "Y": "0.00000000", "W": now,
        })  # fmt: skip
        for k, (status, done) in enumerate((("PARTIALLY_FILLED", "1"), ("FILLED", "2"))):
            now += 1
            events.append(base | {
                "E": now, "x": "TRADE", "X": status, "l": "1.00000000",
                "z": f"{done}.00000000", "L": "100.00000000", "n": "0.00100000", "N": "BTC",
                "T": now, "t": trade, "I": 3 * i + k + 1, "w": status != "FILLED",
                "m": True, "Z": f"{done}00.00000000", "Y": "100.00000000", "W": now,
            })  # fmt: skip
            trade += 1
            events.append({
                "e": "outboundAccountPosition", "E": now, "u": now,
                "B": [{"a": "BTC", "f": f"{1000 + i}.00000000", "l": "0.00000000"},
                      {"a": "USDT", "f": "50000.00000000", "l": f"{100 * (2 - int(done))}.0"}],
            })  # fmt: skip
    return events


def tracker_rate(orders: int) -> dict[str, Any]:
    """Events per CPU second the pure tracker applies (receive_event + events() each)."""
    from streamer.sansio.orders import OrderTracker

    stream = synthetic_stream(orders)
    tracker = OrderTracker()
    emitted = 0
    t0 = time.process_time()
    for event in stream:
        tracker.receive_event(event)
        emitted += len(tracker.events())
    cpu = time.process_time() - t0
    orders_done = sum(1 for o in tracker.orders() if o.terminal)
    return {
        "events": len(stream),
        "events_per_s": len(stream) / cpu,
        "us_per_event": cpu / len(stream) * 1e6,
        "emitted": emitted,
        "orders_filled": orders_done,
        "malformed": tracker.counters.malformed,
    }


# ---------------------------------------------------------------------- the report


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_stats(times: Timings) -> dict[str, dict[str, float]]:
    """p50/p99 in milliseconds of each measure of one run."""
    return {
        name: {"p50_ms": 1e3 * _pct(v, 0.5), "p99_ms": 1e3 * _pct(v, 0.99), "n": len(v)}
        for name, v in times.items()
        if v
    }


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over the runs of each client's p50/p99, and peer/streamer ratios per run."""
    out: dict[str, Any] = {}
    for client, results in runs.items():
        good = [run_stats(r) for r in results if "error" not in r]
        errors = [r["error"] for r in results if "error" in r]
        row: dict[str, Any] = {"version": _version(client), "errors": errors, "runs": len(good)}
        if good:
            for measure in good[0]:
                row[measure] = {
                    stat: statistics.median(run[measure][stat] for run in good)
                    for stat in ("p50_ms", "p99_ms")
                } | {"n": good[0][measure]["n"]}
        out[client] = row
    base = runs.get("streamer", [])
    for client, results in runs.items():
        if client == "streamer":
            continue
        ratios: dict[str, dict[str, float]] = {}
        pairs = [
            (run_stats(mine), run_stats(theirs))
            for mine, theirs in zip(base, results, strict=False)
            if "error" not in mine and "error" not in theirs
        ]
        for measure in MEASURES:
            for stat in ("p50_ms", "p99_ms"):
                values = [t[measure][stat] / m[measure][stat] for m, t in pairs if measure in t]
                if values:
                    ratios.setdefault(measure, {})[stat] = statistics.median(values)
        out[client]["ratio_to_streamer"] = ratios
    return out


def _version(client: str) -> str | None:
    try:
        return version(DISTRIBUTIONS[client])
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limits", type=int, default=300, help="LIMIT orders per client run")
    parser.add_argument("--markets", type=int, default=100, help="MARKET orders per client run")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--rate", type=float, default=100.0, help="market actions per second")
    parser.add_argument("--tracker-orders", type=int, default=20_000)
    parser.add_argument("--uvloop", action="store_true", help="every client on uvloop")
    parser.add_argument(
        "--ccxt-throttle", action="store_true", help="ccxt with its default client-side throttle"
    )
    # internal: the exchange and the client processes
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--rest", help=argparse.SUPPRESS)
    parser.add_argument("--price", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ccxt_throttle:
        os.environ["BENCH_CCXT_THROTTLE"] = "1"  # read by the ccxt client process
    if args.serve:
        asyncio.run(serve(args.rate))
        return 0
    if args.client:
        return client_main(args)
    clients = [c for c in args.clients.split(",") if c]
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {sorted(unknown)}; known: {', '.join(CLIENTS)}")

    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--rate", str(args.rate)]
    with json_child(cmd) as urls:
        price = asyncio.run(far_price(urls["rest"]))
        for round_ in range(args.repeat):
            accounts = {c: list(asyncio.run(new_account(urls["rest"]))) for c in clients}
            result = run_round(urls["rest"], price, args, f"r{round_}", accounts)
            for client in clients:
                runs[client].append(result if "error" in result else result[client])
    tracker = [tracker_rate(args.tracker_orders) for _ in range(args.repeat)]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "loop": "uvloop" if args.uvloop else "asyncio",
        "ccxt_throttle": args.ccxt_throttle,
        "repeat": args.repeat,
        "limits": args.limits,
        "markets": args.markets,
        "clients": summarize(runs),
        "tracker": {
            "events_per_s": statistics.median(t["events_per_s"] for t in tracker),
            "us_per_event": statistics.median(t["us_per_event"] for t in tracker),
            "events": tracker[0]["events"],
            "emitted": tracker[0]["emitted"],
            "orders_filled": tracker[0]["orders_filled"],
            "runs": [round(t["events_per_s"]) for t in tracker],
        },
    }
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    print(
        f"{report['machine']}, python {report['python']}, {report['loop']}; median of "
        f"{report['repeat']} runs; {report['limits']} LIMIT (+ cancel) and {report['markets']} "
        "MARKET orders per run; milliseconds p50 / p99"
    )
    names = MEASURES
    for client, row in report["clients"].items():
        version_ = row["version"] or "?"
        print(f"{client} {version_}" + (f"  errors: {row['errors']}" if row["errors"] else ""))
        ratios = row.get("ratio_to_streamer", {})
        for measure, label in names.items():
            if measure not in row:
                continue
            p50, p99 = row[measure]["p50_ms"], row[measure]["p99_ms"]
            ratio = ratios.get(measure)
            if measure.startswith("cpu_"):  # one value per run: its median, in µs
                extra = f"  ({ratio['p50_ms']:.2f}x streamer)" if ratio else ""
                print(f"  {label:<62}{1e3 * p50:>8.0f} µs{extra}")
                continue
            extra = f"  ({ratio['p50_ms']:.2f}x / {ratio['p99_ms']:.2f}x streamer)" if ratio else ""
            print(f"  {label:<62}{p50:>8.2f} / {p99:<8.2f}{extra}")
    t = report["tracker"]
    print(
        f"tracker: {t['events_per_s']:,.0f} events/s ({t['us_per_event']:.1f} µs each) over "
        f"{t['events']:,} synthetic events; runs {t['runs']}"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
