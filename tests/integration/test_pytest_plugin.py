"""The pytest plugin (``streamer.testing.pytest_plugin``) as a user's suite meets it: test files
written against ``binance_exchange`` and ``fault`` run by a real pytest (pytester, in a
subprocess: the plugin is loaded by its ``pytest11`` entry point, as it is for a user), under
pytest-asyncio's strict and auto modes."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# A user's test file: a bot keeps a book and trades; the fixtures give it a local Binance.
USER_TESTS = """
import asyncio
from decimal import Decimal

import pytest

from streamer import Credentials, OrderStatus, Reset, ResetReason, Streamer, Synced

T = 30  # the bound on every wait


async def next_event(events, kind, **match):
    async with asyncio.timeout(T):
        async for event in events:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return event


@pytest.mark.asyncio
@pytest.mark.binance_exchange(symbols=["BTCUSDT", "ETHBTC"], seed=3)
async def test_fixture_gives_a_running_exchange_and_a_funded_account(binance_exchange):
    ex = binance_exchange
    assert ex.symbols == ["BTCUSDT", "ETHBTC"]
    assert isinstance(ex.credentials, Credentials) and ex.credentials.api_key == ex.api_key
    assert ex.api_secret not in repr(ex) and ex.api_secret not in repr(ex.credentials)
    assert ex.endpoints.rest.startswith("http://127.0.0.1:")
    assert Decimal((await ex.balances())["USDT"]["free"]) > 0
    assert (await ex.orders()) == []
    async with Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None) as s:
        async with asyncio.timeout(T):
            async for update in s.book("BTCUSDT"):
                break
        assert update.view.best_bid is not None


@pytest.mark.asyncio
async def test_book_resyncs_after_a_dropped_diff(binance_exchange, fault):
    ex = binance_exchange
    async with Streamer(ex.endpoints, symbols=["BTCUSDT"], audit_interval=None) as s:
        events = s.events()
        await next_event(events, Synced, symbol="BTCUSDT")
        fault.drop_diff("BTCUSDT")
        await next_event(events, Reset, symbol="BTCUSDT", reason=ResetReason.GAP)
        await next_event(events, Synced, symbol="BTCUSDT")
        await ex.pause()  # the stream catches up with the still book: compare with the truth
        truth = await ex.book("BTCUSDT")
        async with asyncio.timeout(T):
            async for update in s.book("BTCUSDT", depth=10):
                if update.update_id >= truth["lastUpdateId"]:
                    break
        view = s.view("BTCUSDT", 10)
        assert view.last_update_id == truth["lastUpdateId"]
        assert view.bids(10) == [tuple(level) for level in truth["bids"][:10]]
        assert view.asks(10) == [tuple(level) for level in truth["asks"][:10]]


@pytest.mark.asyncio
@pytest.mark.binance_exchange(symbols=["BTCUSDT"], rate=0)
async def test_an_order_whose_answer_times_out_is_resolved_and_placed_once(
    binance_exchange, fault
):
    ex = binance_exchange
    async with Streamer(ex.endpoints, credentials=ex.credentials, order_timeout=0.5) as s:
        await s.track_orders()
        fault.user_stream_silent(count=3)  # no executionReport either: only a query can tell
        fault.order_timeout(delay_ms=1500)
        price = (await ex.book("BTCUSDT"))["bids"][5][0]
        order = await s.place_order(
            "BTCUSDT", "BUY", "LIMIT", quantity="0.5", price=price, time_in_force="GTC"
        )
        assert order.status is OrderStatus.UNKNOWN
        assert (await order.resolved(timeout=T)).status is OrderStatus.NEW
        placed = [o for o in await ex.orders() if o["clientOrderId"] == order.client_order_id]
        assert len(placed) == 1 and placed[0]["status"] == "NEW"
        assert "order_timeout" not in [f.kind for f in fault.pending()]  # it was used
"""

# Auto mode only: unmarked async tests and fixtures.
AUTO_ONLY = """
async def test_unmarked_async_test_gets_the_fixtures(binance_exchange, fault):
    assert binance_exchange.endpoints.ws.startswith("ws://127.0.0.1:")
    fault.rate_limit(count=1)
    assert [f.kind for f in fault.pending()] == ["rate_limit"]
    fault.clear()
    assert fault.pending() == []
"""


def ini(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        addopts = --strict-markers
        filterwarnings = error
        """
    )


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    """Installing streamer registers the plugin module under pytest11 (users get it for free)."""
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("streamer") == "streamer.testing.pytest_plugin"


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_a_users_suite_passes_in_both_asyncio_modes(pytester: pytest.Pytester, mode: str) -> None:
    """The fixtures work for a user's tests in strict and auto mode: a funded exchange, a book
    that resyncs after a dropped diff, an order timeout resolved without a duplicate."""
    ini(pytester, mode)
    pytester.makepyfile(test_bot=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_auto_mode_needs_no_asyncio_marker(pytester: pytest.Pytester) -> None:
    """In auto mode an unmarked async test gets the fixtures, and the fault helper schedules
    and clears faults on the exchange's plan."""
    ini(pytester, "auto")
    pytester.makepyfile(test_auto=AUTO_ONLY)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_exchange_options_by_indirect_parameter(pytester: pytest.Pytester) -> None:
    """``binance_exchange`` also takes its options as an indirect parameter."""
    ini(pytester, "strict")
    pytester.makepyfile(
        test_param="""
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize(
            "binance_exchange", [{"symbols": ["ETHBTC"], "balances": {"BTC": "2"}}], indirect=True
        )
        async def test_param(binance_exchange):
            assert binance_exchange.symbols == ["ETHBTC"]
            assert (await binance_exchange.balances())["BTC"]["free"] in ("2", "2.00000000")
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_an_unknown_marker_option_is_a_clear_error(pytester: pytest.Pytester) -> None:
    """A misspelt marker option fails the test with the known options named, no exchange run."""
    ini(pytester, "auto")
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.binance_exchange(symbol=["BTCUSDT"])
        async def test_typo(binance_exchange):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) symbol; known: balances, commission*"])


def test_no_streamer_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    """``-p no:streamer`` unloads the plugin: the fixture is then unknown."""
    ini(pytester, "auto")
    pytester.makepyfile(test_off="async def test_off(binance_exchange):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:streamer")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'binance_exchange' not found*"])
