"""``streamer check``: against a local exchange subprocess every step passes; a fault the
exchange is told to make fails the step it hits, by name; no credentials skips trading; an
unreachable endpoint is a failed step and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import json
from typing import Any

import aiohttp
import pytest

from streamer import cli
from streamer.check import MARKET_STEPS, TRADING_STEPS
from streamer.cli_check import credentials_from_env, endpoints_for, plan
from streamer.config import Credentials
from tests.integration.procs import closed_port, env, exchange_process, finish, streamer

ALL_STEPS = [*MARKET_STEPS, *TRADING_STEPS]
CREDENTIAL_NAMES = [
    "BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_ED25519_KEY_FILE", "BINANCE_KEY_TYPE",
    "BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_SECRET_KEY", "BINANCE_TESTNET_API_SECRET",
    "BINANCE_TESTNET_ED25519_KEY_FILE", "BINANCE_TESTNET_BASE_URL",
]  # fmt: skip


def bare_env(**extra: str) -> dict[str, str]:
    """The environment without any credentials of the developer's, plus ``extra``."""
    clean = {k: v for k, v in env().items() if k not in CREDENTIAL_NAMES}
    return {**clean, **extra}


def keys_env(info: dict[str, Any]) -> dict[str, str]:
    """The funded demo account the exchange printed, as the check reads it."""
    return bare_env(BINANCE_API_KEY=info["api_key"], BINANCE_API_SECRET=info["api_secret"])


async def check(*args: str, environ: dict[str, str]) -> tuple[int, list[dict[str, Any]], str]:
    """``streamer check --json ARGS``: its status, its step lines, its stderr."""
    proc = await streamer("check", "--json", *args, env=environ)
    code, out, err = await finish(proc)
    assert "Traceback" not in err, err
    lines = [json.loads(line) for line in out.splitlines()]
    return code, lines, err


def by_step(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["step"]: line for line in lines}


async def post_fault(rest: str, fault: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{rest}/_fake/faults", json=fault) as response,
    ):
        assert response.status == 200, await response.text()


async def open_orders(rest: str, api_key: str) -> list[dict[str, Any]]:
    """The account's orders the exchange still holds open (its truth, not the client's)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{rest}/_fake/orders", params={"apiKey": api_key}) as response,
    ):
        orders: list[dict[str, Any]] = await response.json()
    return [o for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]


async def test_every_step_passes_against_the_local_exchange() -> None:
    """With a funded account every step runs and passes, one JSON line each with its
    shape, exit 0, and the real order placed along the way is cancelled on the exchange."""
    async with exchange_process() as info:
        code, lines, err = await check("--local", info["rest"], environ=keys_env(info))
        left = await open_orders(info["rest"], info["api_key"])
    assert code == 0, (lines, err)
    assert [line["step"] for line in lines] == ALL_STEPS
    for line in lines:
        assert set(line) == {"step", "ok", "ms", "detail"}, line
        assert line["ok"] is True, line
        assert isinstance(line["ms"], float | int) and line["ms"] >= 0
        assert isinstance(line["detail"], str) and line["detail"] and "\n" not in line["detail"]
    assert "audit passed" in by_step(lines)["book_audit"]["detail"]
    assert left == []
    assert info["api_secret"] not in json.dumps(lines) + err


async def test_the_human_output_is_one_line_per_step_and_a_summary() -> None:
    """For a person: a line per step with ok/FAIL/skip, its name and latency, then a summary;
    without credentials the trading steps are skipped (not failed) and it exits 0."""
    async with exchange_process() as info:
        proc = await streamer("check", "--local", info["rest"], env=bare_env())
        code, out, err = await finish(proc)
    assert code == 0, out + err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == len(ALL_STEPS) + 1
    for name, line in zip(ALL_STEPS, lines, strict=False):
        mark, step = line.split()[:2]
        assert step == name
        assert mark == ("ok" if name in MARKET_STEPS else "skip"), line
        if mark == "ok":
            assert " ms " in line
        else:
            assert "no credentials" in line and "BINANCE_API_KEY" in line
    assert lines[-1].startswith("streamer check: ")
    assert f"{len(MARKET_STEPS)} passed, 0 failed, {len(TRADING_STEPS)} skipped" in lines[-1]


async def test_market_only_without_credentials_passes() -> None:
    """--market-only with no credentials: the market steps pass, the trading ones are
    skipped naming --market-only, exit 0."""
    async with exchange_process() as info:
        code, lines, _err = await check("--local", info["rest"], "--market-only",
                                        environ=bare_env())  # fmt: skip
    assert code == 0, lines
    steps = by_step(lines)
    assert all(steps[name]["ok"] is True for name in MARKET_STEPS)
    for name in TRADING_STEPS:
        assert steps[name] == {"step": name, "ok": None, "ms": None, "detail": "--market-only",
                               "skipped": True}  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "args", "failed", "words"),
    [
        ({"kind": "rate_limit", "status": 418, "count": 1}, [], "ping", "418"),
        (
            {"kind": "corrupt_level", "symbol": "BTCUSDT", "count": None},
            ["--market-only"],
            "book_audit",
            "drift",
        ),
        (
            {"kind": "user_stream_silent", "count": None},
            ["--trading-only", "--timeout", "3"],
            "order_stream",
            "no executionReport NEW on the user stream",
        ),
        ({"kind": "order_5xx_placed"}, ["--trading-only"], "order_place", "unknown"),
    ],
    ids=["ip_ban_418", "corrupt_level", "user_stream_silent", "order_5xx_placed"],
)
async def test_a_misbehaving_exchange_fails_the_step_it_hits(
    fault: dict[str, Any], args: list[str], failed: str, words: str
) -> None:
    """A fault fails the step it hits, named, with why; exit 1; the steps that need it are
    skipped saying so; and no order is left open on the exchange whatever failed."""
    async with exchange_process() as info:
        if fault["kind"].startswith("user_"):
            fault = {**fault, "apiKey": info["api_key"]}
        await post_fault(info["rest"], fault)
        code, lines, _err = await check("--local", info["rest"], *args, environ=keys_env(info))
        left = await open_orders(info["rest"], info["api_key"])
    assert code == 1, lines
    steps = by_step(lines)
    assert list(steps) == ALL_STEPS
    first_failure = next(line for line in lines if line["ok"] is False)
    assert first_failure["step"] == failed, lines
    assert words in first_failure["detail"], first_failure
    for line in lines:
        if line.get("skipped"):
            assert line["ok"] is None and line["ms"] is None and line["detail"]
    if failed == "ping":
        assert all(steps[name]["detail"].startswith("needs ") for name in ALL_STEPS[1:])
    if failed in ("order_stream", "order_place"):
        assert steps["order_cancel"]["ok"] is True  # cleaned up after a failure
    if failed == "order_place":
        assert steps["order_stream"]["detail"] == "needs order_place"
    assert left == []


async def test_an_unreachable_endpoint_fails_ping_and_exits_1() -> None:
    """Nothing listening at --local: ping fails saying it cannot connect, every other step
    is skipped as needing it, exit 1, and nothing on stderr (no traceback)."""
    url = f"http://127.0.0.1:{closed_port()}"
    code, lines, err = await check("--local", url, environ=bare_env())
    assert code == 1
    assert err == ""
    assert lines[0]["step"] == "ping" and lines[0]["ok"] is False
    assert "cannot connect" in lines[0]["detail"]
    assert all(line.get("skipped") for line in lines[1:])


async def test_trading_only_without_credentials_exits_2_with_one_line() -> None:
    """--trading-only with no credentials: one line on stderr naming what to set, status 2,
    nothing checked (nothing on stdout)."""
    url = f"http://127.0.0.1:{closed_port()}"
    proc = await streamer("check", "--local", url, "--trading-only", env=bare_env())
    code, out, err = await finish(proc)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("streamer check: ") and "BINANCE_API_KEY" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--local", "ftp://127.0.0.1:1"], "http"),
        (["--local", "http://127.0.0.1:1", "--allow-live-orders"], "--live"),
        (["--live", "--trading-only"], "--allow-live-orders"),
    ],
)
def test_bad_settings_are_one_line_and_status_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """A bad URL, --allow-live-orders off --live, or trading only on --live without the
    permission: one line, status 2, before any I/O."""
    monkeypatch.setenv("BINANCE_API_KEY", "k")
    monkeypatch.setenv("BINANCE_API_SECRET", "s")
    assert cli.main(["check", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and words in captured.err, captured.err


def _args(*argv: str) -> argparse.Namespace:
    args = cli.build_parser().parse_args(["check", *argv])
    assert isinstance(args, argparse.Namespace)
    return args


def test_live_trading_steps_are_skipped_without_allow_live_orders() -> None:
    """--live with credentials runs no trading step unless --allow-live-orders says so."""
    keys = Credentials("key", "secret")
    market, trading = plan(_args("--live"), keys)
    assert market is None and trading is not None and "--allow-live-orders" in trading
    assert plan(_args("--live", "--allow-live-orders"), keys) == (None, None)
    assert plan(_args("--testnet"), keys) == (None, None)


def test_testnet_takes_the_names_teams_already_use(monkeypatch: Any) -> None:
    """--testnet reads BINANCE_TESTNET_API_KEY / _SECRET_KEY (before BINANCE_API_KEY) and
    BINANCE_TESTNET_BASE_URL moves its REST base; the secret never shows in a repr."""
    for name in CREDENTIAL_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", "generic-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "generic-secret")
    generic = credentials_from_env(testnet=True)
    assert generic is not None and generic.api_key == "generic-key"
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "testnet-key")
    monkeypatch.setenv("BINANCE_TESTNET_SECRET_KEY", "testnet-secret")
    found = credentials_from_env(testnet=True)
    assert found is not None and found.api_key == "testnet-key"
    assert found.secret == "testnet-secret" and "testnet-secret" not in repr(found)
    local = credentials_from_env(testnet=False)
    assert local is not None and local.api_key == "generic-key"
    assert endpoints_for(_args("--testnet")).rest == "https://testnet.binance.vision"
    monkeypatch.setenv("BINANCE_TESTNET_BASE_URL", "https://example.test/")
    moved = endpoints_for(_args("--testnet"))
    assert moved.rest == "https://example.test"
    assert moved.ws == "wss://stream.testnet.binance.vision"
    monkeypatch.delenv("BINANCE_API_KEY")
    monkeypatch.delenv("BINANCE_API_SECRET")
    assert credentials_from_env(testnet=False) is None
