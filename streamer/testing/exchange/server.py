"""``FakeExchange``: the local Binance, assembled and served on 127.0.0.1.

One aiohttp application serves REST (``rest.py``), the ``/_fake/`` controls (``control.py``), the
market streams (``streams.MarketHub``) and the WebSocket API (``wsapi.WsApi``), all backed by one
seeded :class:`~streamer.testing.exchange.engine.Engine`. Background work:

* the engine loop: every ``tick`` seconds, unless paused, the simulated market performs
  ``rate`` actions per second of elapsed time; then the engine is drained and its output
  published (``dispatch.Dispatcher``) to the hub and the WS-API, even while paused, so that the
  stream always catches up with the book (protocol §9.12);
* the hub's timers (``MarketHub.run``): depth batches, partial books, pings.

With ``firehose=`` (``firehose.Firehose``), the market-stream paths (``/ws``, ``/stream``) are
served by the firehose instead of the hub, and REST ``/api/v3/depth`` answers the firehose's
snapshot for its symbols; everything else (orders, the WS-API, the controls) is the engine's.

With ``venue="usdm"`` or ``"coinm"`` it is a futures exchange serving market data only
(``venues.py``): REST ``/fapi/v1`` (``/dapi/v1``) ping, time, exchangeInfo and depth
(``futures_rest.py``), the futures streams (``/public/...`` and the unrouted paths on USD-M, see
``streams.py``) with ``pu`` and update ids that skip between events, 2400 request weight per
minute. Orders and the WebSocket API stay spot-only: none of the spot paths (``/api/v3``,
``/ws-api/v3``) is served on a futures exchange. The symbols are the spot ones, with their spot
exchangeInfo entries and filters, for COIN-M too (no ``BTCUSD_PERP``-style names). The
``/_fake/`` controls and every market fault work on every venue.
SBE market streams (``sbe_streams.py``) are served on a second port of their own, as Binance
serves them from their own host: ``ex.sbe_url`` (``ws://127.0.0.1:P``), and under ``/sbe`` on
the main port (``ex.endpoints.sbe``), so that one base URL names every endpoint. On by default
(``sbe=False`` turns it off); a hub without subscribers costs next to nothing. With a firehose,
the SBE port serves the same cycles in SBE (``SbeFirehose``).

Usage::

    async with FakeExchange(symbols=["BTCUSDT", "ETHBTC"], seed=1) as ex:
        keys = await ex.create_account()
        ...  # talk to ex.endpoints.rest / .ws / .ws_api

Closing sends ``serverShutdown`` to every WebSocket, closes them, stops the tasks and the site;
an exception raised by a background task is re-raised by the close, so nothing fails silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from streamer.config import Endpoints
from streamer.testing.exchange.auth import Auth
from streamer.testing.exchange.control import Control
from streamer.testing.exchange.dispatch import Dispatcher
from streamer.testing.exchange.engine import Engine, EngineError
from streamer.testing.exchange.faults import Fault, FaultKind, FaultPlan
from streamer.testing.exchange.futures_rest import FuturesRest
from streamer.testing.exchange.rest import RestApi, json_errors
from streamer.testing.exchange.sbe_streams import MarketFanout, SbeFirehose, SbeHub
from streamer.testing.exchange.streams import MarketHub
from streamer.testing.exchange.symbols import load_exchange_info, symbol_infos
from streamer.testing.exchange.venues import venue_rules
from streamer.testing.exchange.weights import Weights
from streamer.testing.exchange.wsapi import WsApi

if TYPE_CHECKING:
    from streamer.testing.exchange.firehose import Firehose

__all__ = ["DEFAULT_SYMBOLS", "FakeExchange"]

log = logging.getLogger(__name__)

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "ETHBTC", "BNBUSDT")
# After a stall (a debugger, a slow CI box) do not replay more than this much simulated time.
_MAX_CATCH_UP_S = 1.0
# Freeze the collector once this many books are seeded, and again whenever that number doubles,
# and (with that many books) again after this many market actions.
_FREEZE_BOOKS = 64
_REFREEZE_ACTIONS = 20_000


def wall_ms() -> int:
    """Milliseconds since the epoch: the exchange's clock."""
    return time.time_ns() // 1_000_000


class FakeExchange:
    """The local Binance: REST, market streams and WebSocket API on one port."""

    # Seeded books are long-lived: some 600 objects per symbol, about a million with every real
    # symbol, and a full collection walks them all (300-400 ms measured), stalling every stream.
    # gc.freeze() moves every live object to the permanent generation, which collections skip.
    # It is process-wide, so it is done only where it helps and undone without leaking: an
    # exchange freezes once it has seeded _FREEZE_BOOKS books (again each time that number has
    # doubled, and when all are seeded: books are seeded lazily), and the last frozen exchange
    # to close unfreezes. Many exchanges in one process (the tests) thus never keep garbage
    # hidden from the collector after they close, and one closing does not thaw another's books.
    # The market replaces resting orders all the time (at 20,000 actions/s, the frozen books
    # are mostly new, unfrozen objects within ~20 s), so it freezes again every
    # _REFREEZE_ACTIONS actions; a young collection first, so that dead cycles are not frozen.
    _frozen_exchanges: ClassVar[int] = 0

    def __init__(
        self,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        *,
        venue: str = "spot",
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float = 100.0,
        tick: float = 0.01,
        levels: int = 100,
        weight_limit: int | None = None,
        clock: Callable[[], int] = wall_ms,
        firehose: Firehose | None = None,
        sbe: bool = True,
        sbe_port: int = 0,
    ) -> None:
        """``venue``: ``"spot"``, ``"usdm"`` or ``"coinm"`` (futures market data, see the module
        docstring; anything else is ``ValueError``); ``rate``: simulated market actions per
        second (0: a still market); ``tick``: seconds between engine steps and drains;
        ``levels``: opening book depth per side; ``weight_limit``: request weight per IP per
        minute (default: the venue's, 6000 spot, 2400 futures); ``firehose``: serve the market
        streams (and depth snapshots of its symbols) from it; it is closed with the exchange;
        ``sbe``: also serve the SBE market streams (spot only), on ``sbe_port``."""
        if rate < 0 or tick <= 0:
            raise ValueError("rate must be >= 0 and tick > 0")
        rules = venue_rules(venue)
        if firehose is not None and firehose.venue is not rules:
            raise ValueError(f"a {firehose.venue.name} firehose cannot serve a {venue} exchange")
        self.venue = venue
        self.host = host
        self.rate = rate
        self.tick = tick
        self._requested_port = port
        self.clock = clock
        self.firehose = firehose
        try:
            infos = symbol_infos(load_exchange_info(), list(symbols))
        except EngineError:
            raise ValueError(f"unknown symbol in {list(symbols)}") from None
        self.engine = Engine(infos, seed=seed, levels=levels, skip_ids=rules.futures)
        self.auth = Auth()
        self.weights = Weights(rules.weight_limit if weight_limit is None else weight_limit)
        self.faults = FaultPlan(seed)
        self.faults.add_listener(self._on_fault)
        self.hub = MarketHub(self.engine, self.faults, clock=clock, venue=rules)
        sbe = sbe and not rules.futures  # Binance serves SBE market data for spot only
        self.sbe_hub = SbeHub(self.engine, self.faults, self.auth, clock=clock) if sbe else None
        self.sbe_firehose = (
            SbeFirehose(firehose, self.auth) if sbe and firehose is not None else None
        )
        self._sbe_requested_port = sbe_port
        self._sbe_runner: web.AppRunner | None = None
        self._sbe_port: int | None = None
        self.wsapi = WsApi(self.engine, self.auth, self.faults, self.weights, clock=clock)
        market = self.hub if self.sbe_hub is None else MarketFanout(self.hub, self.sbe_hub)
        self.dispatcher = Dispatcher(self.engine, market, self.wsapi, self.faults.history)
        self.wsapi.dispatcher = self.dispatcher
        self.control = Control(self.engine, self.auth, self.faults)
        self.rest = RestApi(
            self.engine, self.auth, self.weights, self.faults, self.dispatcher, clock, firehose
        )
        self.futures_rest = (
            FuturesRest(self.rest, self.engine, self.weights, self.faults, rules, firehose)
            if rules.futures
            else None
        )
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._port: int | None = None
        self._freeze_at = _FREEZE_BOOKS
        self._frozen = False
        self._actions_unfrozen = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually listened on (known once started)."""
        if self._port is None:
            raise RuntimeError("the exchange is not started")
        return self._port

    @property
    def endpoints(self) -> Endpoints:
        """REST, stream and WS-API base URLs of this exchange."""
        endpoints = Endpoints.local(f"http://{self.host}:{self.port}", venue=self.venue)
        if self.sbe_hub is None and endpoints.sbe is not None:  # SBE turned off
            return dataclasses.replace(endpoints, sbe=None)
        return endpoints

    @property
    def sbe_url(self) -> str:
        """Base URL of the SBE market streams (``/ws``, ``/stream``), on their own port."""
        if self._sbe_port is None:
            raise RuntimeError("the exchange is not started or serves no SBE")
        return f"ws://{self.host}:{self._sbe_port}"

    async def __aenter__(self) -> FakeExchange:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen, and start the engine loop and the hub's timers."""
        if self._runner is not None:
            raise RuntimeError("already started")
        app = web.Application(middlewares=[json_errors])
        streams = self.firehose.routes() if self.firehose is not None else self.hub.routes()
        if self.futures_rest is not None:  # market data only: no spot REST, no WS-API
            app.add_routes(self.futures_rest.routes() + self.control.routes() + streams)
        else:
            app.add_routes(
                self.rest.routes() + self.control.routes() + streams + self.wsapi.routes()
            )
            app.add_routes(self._sbe_aliases())
        # A short shutdown timeout: a response held by an order_timeout fault must not hold
        # up the close for aiohttp's default minute.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
            address = runner.addresses[0]
            self._port = int(address[1])
            self._tasks = [
                asyncio.create_task(self._engine_loop(), name="fake-exchange-engine"),
                asyncio.create_task(self.hub.run(), name="fake-exchange-hub"),
            ]
            if self.sbe_hub is not None:
                await self._start_sbe(self.sbe_hub)
        except BaseException:
            for task in self._tasks:
                task.cancel()
            self._tasks = []
            if self._sbe_runner is not None:
                await self._sbe_runner.cleanup()
                self._sbe_runner = None
            await runner.cleanup()
            self._runner = None
            raise

    def _sbe_routes(self) -> list[web.RouteDef]:
        if self.sbe_firehose is not None:
            return self.sbe_firehose.routes()
        return self.sbe_hub.routes() if self.sbe_hub is not None else []

    def _sbe_aliases(self) -> list[web.RouteDef]:
        """The SBE streams under ``/sbe`` on the main port too, so that the one base URL of
        ``streamer exchange`` gives every endpoint (``Endpoints.local``)."""
        return [web.route(r.method, "/sbe" + r.path, r.handler) for r in self._sbe_routes()]

    async def _start_sbe(self, hub: SbeHub) -> None:
        """The SBE streams' own site (Binance serves them from their own host)."""
        app = web.Application(middlewares=[json_errors])
        app.add_routes(self._sbe_routes())
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._sbe_runner = runner
        await web.TCPSite(runner, self.host, self._sbe_requested_port).start()
        self._sbe_port = int(runner.addresses[0][1])
        self._tasks.append(asyncio.create_task(hub.run(), name="fake-exchange-sbe-hub"))

    async def close(self) -> None:
        """Shut every connection down and stop; re-raises a background task's failure."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        failure: BaseException | None = None
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                failure = failure or task.exception()
        engine_task = self._tasks[0] if self._tasks else None
        if engine_task is not None:
            engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await engine_task
        try:
            await self.hub.close()
            if self.sbe_hub is not None:
                await self.sbe_hub.close()
            if self.firehose is not None:
                await self.firehose.close()
            if self.sbe_firehose is not None:
                await self.sbe_firehose.close()
            await self.wsapi.close()
        finally:
            for task in self._tasks[1:]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = []
            try:
                if self._sbe_runner is not None:
                    await self._sbe_runner.cleanup()
                    self._sbe_runner = None
                await runner.cleanup()
            finally:
                self._unfreeze()
        if failure is not None:
            raise failure

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set or a background task fails (then close raises it)."""
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def _engine_loop(self) -> None:
        last = self.clock()
        carry = 0.0
        while True:
            now = self.clock()
            if self.control.paused or self.rate == 0:
                carry = 0.0
            else:
                carry += self.rate * min(max(now - last, 0) / 1000, _MAX_CATCH_UP_S)
                actions = int(carry)
                if actions:
                    carry -= actions
                    self.engine.step(now, actions)
                    self._actions_unfrozen += actions
            last = now
            self.dispatcher.flush(now)
            self._maybe_freeze()
            await asyncio.sleep(self.tick)

    def _maybe_freeze(self) -> None:
        """Move the seeded books out of the collector's sight when due (see the class comment)."""
        seeded, total = self.engine.seeded_books, len(self.engine.symbols)
        if seeded >= self._freeze_at:
            self._freeze_at = total + 1 if seeded >= total else min(2 * seeded, total)
        elif not (self._frozen and self._actions_unfrozen >= _REFREEZE_ACTIONS):
            return
        self._actions_unfrozen = 0
        if not self._frozen:
            self._frozen = True
            FakeExchange._frozen_exchanges += 1
        gc.collect(1)
        gc.freeze()

    def _unfreeze(self) -> None:
        if self._frozen:
            self._frozen = False
            FakeExchange._frozen_exchanges -= 1
            if FakeExchange._frozen_exchanges == 0:
                gc.unfreeze()

    def _on_fault(self, fault: Fault) -> None:
        # The history records only what pending stale_snapshot faults watch, from the moment
        # they are added: record the book as it is now, the first one the fault can serve.
        if fault.kind is FaultKind.STALE_SNAPSHOT:
            symbols = self.engine.symbols if fault.symbol is None else (fault.symbol,)
            known = [s for s in symbols if s in self.engine.symbols]
            self.faults.history.record(self.engine, known, self.clock())

    # -- controls (the same as /_fake/) --------------------------------------------------------

    async def pause(self) -> None:
        """Stop the simulated market; streams keep flowing what already happened."""
        self.control.pause()

    async def resume(self) -> None:
        """Restart the simulated market."""
        self.control.resume()

    async def book(self, symbol: str) -> dict[str, Any]:
        """The whole true book: ``{symbol, lastUpdateId, bids, asks}``."""
        return self.control.book(symbol)

    async def create_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        ed25519_public_key_pem: str | None = None,
        commission: Mapping[str, Decimal | str | int] | None = None,
    ) -> dict[str, str]:
        """A funded account: ``{apiKey, secretKey}`` (HMAC) or ``{apiKey}`` (Ed25519).

        ``commission``: its rates ``{"maker": .., "taker": ..}``, each Binance's default 0.001
        (0.1%) unless given; ``{"maker": "0", "taker": "0"}`` for an account that pays none.
        Commissions are charged in the asset each fill gives the account.
        """
        return self.control.create_account(balances, ed25519_public_key_pem, commission)

    async def orders(self, api_key: str) -> list[dict[str, Any]]:
        """Every order of the account, any status."""
        return self.control.orders(api_key)

    async def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        """``{asset: {free, locked}}`` of the account."""
        return self.control.balances(api_key)
