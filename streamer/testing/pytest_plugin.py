"""The pytest plugin of ``streamer.testing``: a local Binance for your own test suite.

Installing ``streamer`` registers this module through the ``pytest11`` entry point, so any
test suite run in that environment gets two fixtures (``-p no:streamer`` turns them off):

- ``binance_exchange``: a running local exchange (:class:`~streamer.testing.FakeExchange` on
  127.0.0.1, port 0) with one funded account, as a :class:`BinanceExchange`: ``.endpoints``
  and ``.credentials`` to give your code, ``.api_key`` / ``.api_secret``, and the exchange's
  truth to check it against (``await .book(symbol)``, ``await .orders()``,
  ``await .balances()``);
- ``fault``: a :class:`FaultHelper` on that exchange, one readable method per misbehaviour of
  the real Binance (a dropped diff, a 429, an order timeout, a silent user stream, ...), each a
  thin wrapper over :class:`~streamer.testing.FaultPlan` (``binance_exchange.exchange.faults``).

Configure the exchange per test (or per module, with ``pytestmark``) with the marker::

    @pytest.mark.binance_exchange(symbols=["BTCUSDT"], seed=7, rate=0, balances={"USDT": 1000})

(``symbols``, ``seed``, ``rate`` (market actions per second; 0 is a still market),
``balances`` and ``commission`` of the account, ``levels``), or with indirect
parametrization (``@pytest.mark.parametrize("binance_exchange", [{...}], indirect=True)``).

The fixtures are async (``pytest_asyncio.fixture``): they work under pytest-asyncio's strict
mode (mark your tests ``@pytest.mark.asyncio``) and its auto mode alike, and each test gets its
own exchange on its own event loop. Example: a bot that must survive a dropped diff and an
order that times out::

    import pytest
    from streamer import OrderStatus, Streamer

    @pytest.mark.asyncio
    async def test_bot_survives(binance_exchange, fault):
        ex = binance_exchange
        async with Streamer(ex.endpoints, credentials=ex.credentials, order_timeout=0.5) as s:
            await s.subscribe("BTCUSDT")
            fault.drop_diff("BTCUSDT")             # the book sees a gap and resyncs
            fault.order_timeout(delay_ms=2000)     # placed, but the answer comes too late
            order = await s.place_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
            assert (await order.resolved(timeout=30)).status is OrderStatus.FILLED
            placed = [o for o in await ex.orders() if o["clientOrderId"] == order.client_order_id]
            assert len(placed) == 1                # never sent twice
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from streamer.config import Credentials, Endpoints

#: pytest-asyncio runs the async fixtures; the test extra has it, a bare install may not, and
#: then only a use of the fixtures fails, not every pytest run of the environment.
HAVE_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None

if TYPE_CHECKING:
    # Imported when a test uses the fixtures, not when pytest loads the plugin: every test
    # session in an environment with streamer installed loads it, most never need aiohttp.
    from streamer.testing.exchange.faults import Fault, FaultKind, FaultPlan
    from streamer.testing.exchange.server import FakeExchange

__all__ = ["BinanceExchange", "FaultHelper", "binance_exchange", "fault"]

#: What the marker (or an indirect parameter) may set, and the defaults: a small market that
#: moves (so diffs flow), on one seed (so a failure reproduces).
DEFAULTS: dict[str, Any] = {
    "symbols": ("BTCUSDT", "ETHUSDT"),
    "seed": 1,
    "rate": 100.0,
    "levels": 100,
    "balances": None,  # the exchange's default funding
    "commission": None,  # Binance's default 0.1% maker and taker
}


@dataclass
class BinanceExchange:
    """A running local exchange and the funded account a test trades with."""

    exchange: FakeExchange
    api_key: str
    api_secret: str = field(repr=False)
    account_id: int

    @property
    def endpoints(self) -> Endpoints:
        """Where to point your code: ``Streamer(ex.endpoints, credentials=ex.credentials)``."""
        return self.exchange.endpoints

    @property
    def credentials(self) -> Credentials:
        """The account's HMAC key, as :class:`streamer.Credentials`."""
        return Credentials(self.api_key, self.api_secret)

    @property
    def symbols(self) -> list[str]:
        """The symbols the exchange trades."""
        return list(self.exchange.engine.symbols)

    @property
    def faults(self) -> FaultPlan:
        """The exchange's fault plan itself (the ``fault`` fixture wraps it)."""
        return self.exchange.faults

    async def book(self, symbol: str) -> dict[str, Any]:
        """The exchange's true book: ``{symbol, lastUpdateId, bids, asks}``, whole."""
        return await self.exchange.book(symbol)

    async def orders(self) -> list[dict[str, Any]]:
        """Every order of the account as the exchange has it (any status)."""
        return await self.exchange.orders(self.api_key)

    async def balances(self) -> dict[str, dict[str, str]]:
        """The account's ``{asset: {free, locked}}`` as the exchange has it."""
        return await self.exchange.balances(self.api_key)

    async def pause(self) -> None:
        """Stop the simulated market (the book stays put until :meth:`resume`)."""
        await self.exchange.pause()

    async def resume(self) -> None:
        """Restart the simulated market."""
        await self.exchange.resume()


class FaultHelper:
    """The misbehaviours of the real Binance, by name, on one local exchange.

    Every method schedules its fault at once and returns the :class:`~streamer.testing.Fault`
    (``fault.pending()`` lists those not yet used up; ``fault.clear()`` cancels them). A
    ``symbol`` of ``None`` means any symbol; user-stream faults hit the fixture's account.
    """

    def __init__(self, plan: FaultPlan, account_id: int | None = None) -> None:
        self.plan = plan
        self.account_id = account_id

    # -- the market streams ---------------------------------------------------------------

    def drop_diff(self, symbol: str | None = None, *, count: int = 1) -> Fault:
        """Do not send the next ``count`` diff messages: the book sees a gap and resyncs."""
        return self.plan.drop_diffs(symbol, count=count)

    def duplicate_diff(self, symbol: str | None = None, *, count: int = 1) -> Fault:
        """Send the next ``count`` diff messages twice (a book must ignore the copy)."""
        return self.plan.duplicate_diffs(symbol, count=count)

    def delay_diff(
        self, symbol: str | None = None, *, delay_ms: int = 500, count: int = 1
    ) -> Fault:
        """Send the next ``count`` diff messages ``delay_ms`` late, after later ones."""
        return self.plan.delay_diffs(symbol, delay_ms=delay_ms, count=count)

    def corrupt_level(self, symbol: str | None = None, *, count: int = 1) -> Fault:
        """Send one level of the next diff with a wrong quantity: drift an audit must catch."""
        return self.plan.corrupt_level(symbol, count=count)

    def malformed_diff(
        self, symbol: str | None = None, *, payload: str | None = None, count: int = 1
    ) -> Fault:
        """Send the next diff broken (``payload`` in its place, or its JSON cut in half)."""
        return self.plan.malformed_diff(symbol, payload=payload, count=count)

    def stale_snapshot(self, symbol: str | None = None, *, behind: int = 1) -> Fault:
        """Serve the next depth snapshot from ``behind`` books ago."""
        return self.plan.stale_snapshot(symbol, behind=behind)

    def disconnect(self, *, channel: str | None = None) -> Fault:
        """Close every open connection (``channel``: only ``"market"`` or ``"wsapi"``)."""
        return self.plan.disconnect(channel=channel)

    def server_shutdown(self, *, delay_ms: int = 1000, channel: str | None = None) -> Fault:
        """Send ``serverShutdown`` on every connection, then close them ``delay_ms`` later."""
        return self.plan.server_shutdown(delay_ms=delay_ms, channel=channel)

    # -- REST and orders --------------------------------------------------------------------

    def rate_limit(self, *, count: int = 1, retry_after: int = 60, channel: str = "rest") -> Fault:
        """Answer the next ``count`` requests 429 (-1003) with ``Retry-After``."""
        return self.plan.rate_limit(count, retry_after=retry_after, channel=channel)

    def ip_ban(self, *, count: int = 1, retry_after: int = 60, channel: str = "rest") -> Fault:
        """Answer the next ``count`` requests 418 (banned) with ``Retry-After``."""
        return self.plan.rate_limit(count, status=418, retry_after=retry_after, channel=channel)

    def order_5xx(
        self, *, placed: bool, symbol: str | None = None, status: int = 500, count: int = 1
    ) -> Fault:
        """Answer the next order placement with a 5xx, having ``placed`` the order or not."""
        return self.plan.order_5xx(placed=placed, symbol=symbol, status=status, count=count)

    def order_1007(self, *, placed: bool, symbol: str | None = None, count: int = 1) -> Fault:
        """Answer the next order placement -1007 (timeout), having ``placed`` it or not."""
        return self.plan.order_1007(placed=placed, symbol=symbol, count=count)

    def order_timeout(
        self,
        *,
        delay_ms: int = 2000,
        drop: bool = False,
        symbol: str | None = None,
        count: int = 1,
    ) -> Fault:
        """Place the next order but hold its answer ``delay_ms`` (set your client's timeout
        shorter), then send it, or drop the connection if ``drop``."""
        return self.plan.order_timeout(delay_ms, drop=drop, symbol=symbol, count=count)

    def user_events_after_response(self, *, delay_ms: int = 0, count: int = 1) -> Fault:
        """Publish the next order's user events only after its answer (``delay_ms`` later)."""
        return self.plan.user_events_after_response(delay_ms=delay_ms, count=count)

    # -- the user stream ------------------------------------------------------------------

    def user_stream_silent(self, *, count: int | None = None) -> Fault:
        """Stop delivering the account's user events (the next ``count``, or all until
        :meth:`clear`)."""
        return self.plan.silence_user_stream(self.account_id, count=count)

    def user_stream_terminated(self) -> Fault:
        """End the account's user-data subscription with ``eventStreamTerminated``."""
        return self.plan.terminate_user_stream(self.account_id)

    def duplicate_user_events(self, *, count: int = 1) -> Fault:
        """Send each of the account's next ``count`` user events twice."""
        return self.plan.duplicate_user_events(self.account_id, count=count)

    def reorder_user_events(self, *, count: int = 1) -> Fault:
        """Send each of the account's next ``count`` user events after the one that follows."""
        return self.plan.reorder_user_events(self.account_id, count=count)

    # -- bookkeeping ----------------------------------------------------------------------

    def pending(self) -> list[Fault]:
        """The faults scheduled and not used up yet."""
        return self.plan.pending()

    def clear(self, kind: FaultKind | str | None = None) -> None:
        """Cancel the pending faults (of one kind, e.g. ``"user_stream_silent"``, or all)."""
        from streamer.testing.exchange.faults import FaultKind

        self.plan.clear(None if kind is None else FaultKind(kind))


def exchange_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The exchange the test asks for: defaults, then the closest marker, then a parameter."""
    options = dict(DEFAULTS)
    marker = request.node.get_closest_marker("binance_exchange")
    given: dict[str, Any] = {}
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("binance_exchange marker: use keyword arguments only")
        given.update(marker.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, Mapping):
        given.update(param)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise pytest.UsageError(
            f"binance_exchange: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(DEFAULTS))}"
        )
    options.update(given)
    if isinstance(options["symbols"], str):
        options["symbols"] = [options["symbols"]]
    return options


async def start_exchange(
    *,
    symbols: Sequence[str],
    seed: int,
    rate: float,
    levels: int,
    balances: Mapping[str, Decimal | str | int] | None,
    commission: Mapping[str, Decimal | str | int] | None,
) -> tuple[FakeExchange, BinanceExchange]:
    """A started exchange and its funded account (the fixture's body, usable without pytest)."""
    from streamer.testing.exchange.server import FakeExchange

    exchange = FakeExchange(symbols=list(symbols), seed=seed, rate=rate, levels=levels)
    await exchange.start()
    try:
        keys = await exchange.create_account(balances, commission=commission)
        account = exchange.auth.account_of(keys["apiKey"])
    except BaseException:
        await exchange.close()
        raise
    return exchange, BinanceExchange(exchange, keys["apiKey"], keys["secretKey"], account)


async def _binance_exchange(request: pytest.FixtureRequest) -> AsyncIterator[BinanceExchange]:
    """A running local Binance with a funded account (see the module docstring)."""
    exchange, handle = await start_exchange(**exchange_options(request))
    try:
        yield handle
    finally:
        await exchange.close()


if HAVE_PYTEST_ASYNCIO:
    import pytest_asyncio

    # pytest_asyncio.fixture, not pytest.fixture: an async fixture then works in strict mode
    # too, where plain async fixtures are not run.
    binance_exchange = pytest_asyncio.fixture(_binance_exchange, name="binance_exchange")
else:  # pragma: no cover - exercised only without pytest-asyncio

    @pytest.fixture(name="binance_exchange")
    def binance_exchange() -> BinanceExchange:
        """Unavailable: the fixture needs pytest-asyncio (``pip install streamer[pytest]``)."""
        raise pytest.UsageError(
            "the binance_exchange fixture needs pytest-asyncio: pip install 'streamer[pytest]'"
        )


@pytest.fixture
def fault(binance_exchange: BinanceExchange) -> FaultHelper:
    """Readable fault injection on the ``binance_exchange`` of the same test."""
    return FaultHelper(binance_exchange.exchange.faults, binance_exchange.account_id)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so that ``--strict-markers`` suites accept it."""
    config.addinivalue_line(
        "markers",
        "binance_exchange(symbols=, seed=, rate=, levels=, balances=, commission=): "
        "configure the local exchange of the binance_exchange fixture (streamer.testing)",
    )
