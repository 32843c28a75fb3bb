"""``streamer orders`` and ``streamer order place|cancel`` as real subprocesses against a real
``streamer exchange`` subprocess: orders rest, fill and cancel while ``streamer orders --json``
shows them; exit statuses; errors are one line on stderr; secrets are never printed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.procs import closed_port, exchange_process, finish, lines_until, streamer

SYMBOL = "BTCUSDT"
ORDER_FIELDS = {
    "type", "client_order_id", "order_id", "symbol", "side", "order_type", "status",
    "executed_qty", "price", "quantity", "source",
}  # fmt: skip
FILL_FIELDS = {
    "type", "client_order_id", "trade_id", "price", "qty", "commission", "commission_asset",
    "source",
}  # fmt: skip
BALANCE_FIELDS = {"type", "asset", "free", "locked", "source"}
SOURCES = {"local", "rest", "stream", "reconciliation"}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any BINANCE_* or STREAMER_* variable of the caller's, and no
    config file (STREAMER_CONFIG names none), plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "STREAMER_"))}
    return {**base, "HOME": "/nonexistent", **extra}


def hmac_env(info: dict[str, Any]) -> dict[str, str]:
    return clean_env(BINANCE_API_KEY=info["api_key"], BINANCE_API_SECRET=info["api_secret"])


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``streamer ARGS`` to its end: status, stdout, stderr."""
    return await finish(await streamer(*args, env=env))


def lines(out: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in out.splitlines()]
    assert all(isinstance(p, dict) and "type" in p for p in parsed), out
    return parsed


def check_decimal(value: Any) -> None:
    """A decimal string in plain notation (never a float, never 1E-7)."""
    assert isinstance(value, str) and "E" not in value.upper(), value
    Decimal(value)


def check_line(line: dict[str, Any]) -> None:
    """The shape of every line ``streamer orders --json`` writes."""
    kind = line["type"]
    if kind == "order":
        assert set(line) >= ORDER_FIELDS, line
        for name in ("executed_qty", "quantity"):
            check_decimal(line[name])
        if line["price"] is not None:
            check_decimal(line["price"])
    elif kind == "fill":
        assert set(line) >= FILL_FIELDS, line
        for name in ("price", "qty", "commission"):
            check_decimal(line[name])
        assert isinstance(line["trade_id"], int)
    elif kind == "balance":
        assert set(line) >= BALANCE_FIELDS, line
        check_decimal(line["free"])
        check_decimal(line["locked"])
    else:
        assert kind == "reconciliation", line
        assert {"reason", "orders_checked", "corrections", "fills_found"} <= set(line)
    assert line["source"] in SOURCES, line


async def control(rest: str, method: str, path: str, **kwargs: Any) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{rest}{path}", **kwargs) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def best(rest: str) -> tuple[Decimal, Decimal]:
    body = await control(rest, "GET", "/api/v3/depth", params={"symbol": SYMBOL, "limit": "5"})
    return Decimal(body["bids"][0][0]), Decimal(body["asks"][0][0])


def half(price: Decimal) -> str:
    """Half ``price`` on the 0.01 tick: a BUY there rests far from the market."""
    return str((price / 2).quantize(Decimal("0.01")))


@pytest.fixture
async def still_exchange() -> AsyncIterator[dict[str, Any]]:
    """`streamer exchange` with a still market: only our orders move the book."""
    async with exchange_process("--symbols", SYMBOL, "ETHBTC", "--rate", "0") as info:
        yield info


class Watcher:
    """`streamer orders --json` running; its lines as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[str] = []

    async def until(self, done: Any) -> list[dict[str, Any]]:
        assert self.proc.stdout is not None

        def check(seen: list[str]) -> bool:
            return bool(done([json.loads(s) for s in seen]))

        await lines_until(self.proc.stdout, check, self.seen)
        return [json.loads(s) for s in self.seen]


def order_lines(seen: list[dict[str, Any]], cid: str) -> list[dict[str, Any]]:
    return [s for s in seen if s["type"] == "order" and s["client_order_id"] == cid]


def statuses(seen: list[dict[str, Any]], cid: str) -> list[str]:
    return [s["status"] for s in order_lines(seen, cid)]


async def test_orders_rest_fill_and_cancel_while_orders_json_shows_them(
    still_exchange: dict[str, Any],
) -> None:
    """A resting LIMIT, filled by another account's MARKET, and a cancelled LIMIT: `order
    place`/`cancel` exit 0 with the order as their last line, and `orders --json` shows every
    state change, the maker fill and the balance changes, each with its source."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    bid, ask = await best(rest)
    inside = bid + Decimal("0.01")  # inside the spread: the best ask once placed
    assert inside < ask
    proc = await streamer("orders", "--json", "--local", rest, env=env)
    watcher = Watcher(proc)
    try:
        # the starting state (the funded balances) says it is subscribed
        start = await watcher.until(lambda seen: any(s["type"] == "balance" for s in seen))
        assert all(s["source"] == "reconciliation" for s in start)

        code, out, err = await cli(
            "order", "place", "--json", "--local", rest, "--symbol", SYMBOL, "--side", "SELL",
            "--type", "LIMIT", "--quantity", "0.1", "--price", str(inside),
            "--client-order-id", "maker1", env=env,
        )  # fmt: skip
        assert code == 0, err
        placed = lines(out)[-1]
        assert placed["type"] == "order" and placed["status"] == "NEW", placed
        assert placed["client_order_id"] == "maker1" and isinstance(placed["order_id"], int)
        assert placed["price"] == f"{inside:.8f}" and placed["quantity"] == "0.10000000"

        code, out, err = await cli(
            "order", "place", "--json", "--local", rest, "--symbol", SYMBOL, "--side", "BUY",
            "--type", "LIMIT", "--quantity", "0.1", "--price", half(bid),
            "--client-order-id", "far1", env=env,
        )  # fmt: skip
        assert code == 0, err
        assert lines(out)[-1]["status"] == "NEW"

        taker = await control(rest, "POST", "/_fake/accounts")
        taker_env = clean_env(
            BINANCE_API_KEY=taker["apiKey"], BINANCE_API_SECRET=taker["secretKey"]
        )
        code, out, err = await cli(
            "order", "place", "--json", "--local", rest, "--symbol", SYMBOL, "--side", "BUY",
            "--type", "MARKET", "--quantity", "0.1", env=taker_env,
        )  # fmt: skip
        assert code == 0, err
        taken = lines(out)[-1]
        assert taken["status"] == "FILLED" and taken["executed_qty"] == "0.10000000", taken

        code, out, err = await cli(
            "order", "cancel", "--json", "--local", rest, "--symbol", SYMBOL,
            "--client-order-id", "far1", env=env,
        )  # fmt: skip
        assert code == 0, err
        cancelled = lines(out)[-1]
        assert cancelled["status"] == "CANCELED" and cancelled["client_order_id"] == "far1"

        def all_seen(seen: list[dict[str, Any]]) -> bool:
            return (
                "FILLED" in statuses(seen, "maker1")
                and "CANCELED" in statuses(seen, "far1")
                and any(s["type"] == "fill" and s["client_order_id"] == "maker1" for s in seen)
            )

        seen = await watcher.until(all_seen)
        proc.send_signal(signal.SIGINT)
        code, rest_out, err = await finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err
    assert "Traceback" not in err
    seen += lines(rest_out) if rest_out.strip() else []
    for line in seen:
        check_line(line)
    # the resting order: new, then filled at its price as the maker; never backwards
    maker = statuses(seen, "maker1")
    assert maker.index("NEW") < maker.index("FILLED"), maker
    fills = [s for s in seen if s["type"] == "fill" and s["client_order_id"] == "maker1"]
    assert len({f["trade_id"] for f in fills}) == len(fills)  # each trade once
    assert sum(Decimal(f["qty"]) for f in fills) == Decimal("0.1")
    assert all(Decimal(f["price"]) == inside for f in fills)
    assert {f["source"] for f in fills} <= {"stream", "rest", "reconciliation"}
    far = statuses(seen, "far1")
    assert far.index("NEW") < far.index("CANCELED"), far
    # the fill moved BTC and USDT: balance lines from the user stream
    moved = {s["asset"] for s in seen if s["type"] == "balance" and s["source"] != "reconciliation"}
    assert {"BTC", "USDT"} <= moved, seen
    # the last balances equal the exchange's own
    truth = await control(rest, "GET", "/_fake/balances", params={"apiKey": info["api_key"]})
    last = {s["asset"]: s for s in seen if s["type"] == "balance"}
    for asset in ("BTC", "USDT"):
        assert Decimal(last[asset]["free"]) == Decimal(truth[asset]["free"])
        assert Decimal(last[asset]["locked"]) == Decimal(truth[asset]["locked"])


async def test_orders_stops_after_seconds_and_a_reconciliation_line(
    still_exchange: dict[str, Any],
) -> None:
    """`orders --seconds` exits 0 by itself; with a short --reconcile-interval the scheduled
    reconciliations are shown, and an open order shows in the starting state."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    bid, _ask = await best(rest)
    code, _out, err = await cli(
        "order", "place", "--local", rest, "--symbol", SYMBOL, "--side", "BUY", "--type",
        "LIMIT", "--quantity", "0.1", "--price", half(bid), "--client-order-id", "open1",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await cli(
        "orders", "--json", "--seconds", "3", "--reconcile-interval", "0.5", "--local", rest,
        env=env,
    )  # fmt: skip
    assert code == 0, err
    seen = lines(out)
    for line in seen:
        check_line(line)
    opened = order_lines(seen, "open1")
    assert opened and opened[0]["status"] == "NEW" and opened[0]["source"] == "reconciliation"
    assert any(s["type"] == "reconciliation" for s in seen), seen


async def test_the_readable_view_names_each_event(still_exchange: dict[str, Any]) -> None:
    """Without --json: one readable line per event (the order, its status, the balances)."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    bid, _ask = await best(rest)
    await cli(
        "order", "place", "--local", rest, "--symbol", SYMBOL, "--side", "BUY", "--type",
        "LIMIT", "--quantity", "0.1", "--price", half(bid), "--client-order-id", "seen1",
        env=env,
    )  # fmt: skip
    code, out, err = await cli("orders", "--seconds", "2", "--local", rest, env=env)
    assert code == 0, err
    assert "seen1" in out and "NEW" in out and "balance" in out and "USDT" in out, out
    assert not out.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        # 9000 BTC at half the price costs more USDT than the account holds: -2010
        (["--side", "BUY", "--type", "LIMIT", "--quantity", "9000", "--price", "HALF"],
         "OrderRejected"),
        # a price off the tick: refused before anything is sent
        (["--side", "BUY", "--type", "LIMIT", "--quantity", "0.1", "--price", "100.001"],
         "InvalidOrder"),
        (["--side", "BUY", "--type", "LIMIT", "--quantity", "-1", "--price", "100"],
         "InvalidOrder"),
    ],
)  # fmt: skip
async def test_place_that_is_not_placed_exits_2_with_the_reason(
    still_exchange: dict[str, Any], args: list[str], kind: str
) -> None:
    """A rejection or a filter violation: status 2, the reason on one line of stderr naming
    its kind, no traceback; the exchange holds no order of it."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    bid, _ask = await best(rest)
    args = [half(bid) if a == "HALF" else a for a in args]
    code, out, err = await cli(
        "order", "place", "--json", "--local", rest, "--symbol", SYMBOL, *args,
        "--client-order-id", "nope1", env=env,
    )  # fmt: skip
    assert code == 2, (out, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("streamer order place: ") and kind in err, err
    if kind == "OrderRejected":  # the order as tracked, rejected, is the last line
        last = lines(out)[-1]
        assert last["status"] == "REJECTED" and last["client_order_id"] == "nope1"
    else:
        assert out == ""
    held = await control(rest, "GET", "/_fake/orders", params={"apiKey": info["api_key"]})
    assert not [o for o in held if o.get("clientOrderId") == "nope1"]


async def test_cancel_of_an_unknown_order_exits_2(still_exchange: dict[str, Any]) -> None:
    """Cancelling an id the exchange does not know: OrderNotFound on one line, status 2."""
    info = still_exchange
    code, out, err = await cli(
        "order", "cancel", "--local", info["rest"], "--symbol", SYMBOL,
        "--client-order-id", "neverplaced", env=hmac_env(info),
    )  # fmt: skip
    assert code == 2, (out, err)
    assert len(err.splitlines()) == 1 and "OrderNotFound" in err, err
    assert out == ""


async def test_an_ed25519_key_file_places_and_cancels(
    still_exchange: dict[str, Any], tmp_path: Path
) -> None:
    """BINANCE_API_KEY with BINANCE_ED25519_KEY_FILE (a PEM private key): the order is
    placed and cancelled with Ed25519 signatures."""
    info = still_exchange
    pem = tmp_path / "key.pem"
    pem.write_text(info["ed25519_private_key"])
    env = clean_env(BINANCE_API_KEY=info["ed25519_api_key"], BINANCE_ED25519_KEY_FILE=str(pem))
    bid, _ask = await best(info["rest"])
    code, out, err = await cli(
        "order", "place", "--json", "--local", info["rest"], "--symbol", SYMBOL, "--side",
        "BUY", "--type", "LIMIT", "--quantity", "0.1", "--price", half(bid),
        "--client-order-id", "ed1", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert lines(out)[-1]["status"] == "NEW"
    code, out, err = await cli(
        "order", "cancel", "--json", "--local", info["rest"], "--symbol", SYMBOL,
        "--client-order-id", "ed1", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert lines(out)[-1]["status"] == "CANCELED"


async def test_a_lost_answer_is_resolved_and_reported(still_exchange: dict[str, Any]) -> None:
    """The answer held past --timeout (the order placed): the outcome is unknown, resolved
    without sending again, and the order is printed; status 0; one order on the exchange."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    # (no apiKey: order faults match any account; only this test places orders here)
    fault = {"kind": "order_timeout", "delayMs": 3000, "count": 1}
    await control(rest, "POST", "/_fake/faults", json=fault)
    bid, _ask = await best(rest)
    code, out, err = await cli(
        "order", "place", "--json", "--timeout", "0.5", "--local", rest, "--symbol", SYMBOL,
        "--side", "BUY", "--type", "LIMIT", "--quantity", "0.1", "--price", half(bid),
        "--client-order-id", "late1", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert lines(out)[-1]["status"] == "NEW"
    assert "Traceback" not in err
    held = await control(rest, "GET", "/_fake/orders", params={"apiKey": info["api_key"]})
    assert len([o for o in held if o.get("clientOrderId") == "late1"]) == 1
    assert (await control(rest, "GET", "/_fake/faults"))["faults"] == []  # it did fire


@pytest.mark.parametrize(
    "command",
    [
        ["orders", "--seconds", "5"],
        ["order", "place", "--symbol", SYMBOL, "--side", "BUY", "--type", "MARKET",
         "--quantity", "1"],
        ["order", "cancel", "--symbol", SYMBOL, "--client-order-id", "x"],
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    "given",
    [{}, {"BINANCE_API_KEY": "k"}, {"BINANCE_API_SECRET": "s"},
     {"BINANCE_API_KEY": "k", "BINANCE_ED25519_KEY_FILE": "/nonexistent/key.pem"}],
)  # fmt: skip
async def test_missing_credentials_are_one_line_and_status_2(
    command: list[str], given: dict[str, str]
) -> None:
    """No key, a key without its secret or key file, or a key file that cannot be read: one
    line on stderr saying what to set, status 2, and nothing sent anywhere."""
    url = f"http://127.0.0.1:{closed_port()}"  # would refuse: the check comes first
    code, out, err = await cli(*command, "--local", url, env=clean_env(**given))
    assert code == 2, (out, err)
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "BINANCE_" in err and "cannot connect" not in err, err


@pytest.mark.parametrize(
    "command",
    [
        ["orders", "--seconds", "30"],
        ["order", "place", "--symbol", SYMBOL, "--side", "BUY", "--type", "LIMIT",
         "--quantity", "1", "--price", "100"],
        ["order", "cancel", "--symbol", SYMBOL, "--client-order-id", "x"],
    ],
)  # fmt: skip
async def test_an_unreachable_endpoint_is_one_line_and_status_3(command: list[str]) -> None:
    """Nothing listening at --local: one line on stderr, status 3 (could not connect), no
    traceback."""
    url = f"http://127.0.0.1:{closed_port()}"
    env = clean_env(BINANCE_API_KEY="key", BINANCE_API_SECRET="notprinted")
    code, out, err = await cli(*command, "--local", url, env=env)
    assert code == 3, err
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "notprinted" not in err


async def test_secrets_are_never_printed(still_exchange: dict[str, Any]) -> None:
    """A refused key: one line, status 2, and neither the secret nor the key file's content
    appears in any output."""
    info = still_exchange
    env = clean_env(BINANCE_API_KEY=info["api_key"], BINANCE_API_SECRET="wrong-secret-123")
    for command in (
        ["orders", "--seconds", "5"],
        ["order", "cancel", "--symbol", SYMBOL, "--client-order-id", "x"],
    ):
        code, out, err = await cli(*command, "--local", info["rest"], env=env)
        assert code == 2, (out, err)
        assert len(err.splitlines()) == 1, err
        assert "wrong-secret-123" not in out + err
    assert info["api_secret"] not in out + err


async def test_the_exchange_prints_how_to_trade_on_its_demo_account() -> None:
    """`streamer exchange` (for a person) prints export lines of its funded key and secret
    and the order commands to run with them."""
    proc = await streamer("exchange", "--symbols", SYMBOL, "--rate", "0")
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        await lines_until(proc.stdout, lambda s: any("Ctrl-C" in line for line in s), seen)
    finally:
        proc.send_signal(signal.SIGINT)
        code, _out, err = await finish(proc)
    assert code == 0, err
    text = "".join(seen)
    assert "export BINANCE_API_KEY=" in text and "export BINANCE_API_SECRET=" in text
    assert "streamer orders --local http://127.0.0.1:" in text
    assert "streamer order place --local" in text


async def test_an_unknown_outcome_never_placed_exits_2_not_placed(
    still_exchange: dict[str, Any],
) -> None:
    """A 5xx whose order the exchange did not place: resolved by querying it until
    --not-placed-after passes; NOT_PLACED is the last line of stderr, status 2, and the
    order was never sent again."""
    info = still_exchange
    rest, env = info["rest"], hmac_env(info)
    fault = {"kind": "order_5xx_not_placed", "count": 1}
    await control(rest, "POST", "/_fake/faults", json=fault)
    bid, _ask = await best(rest)
    code, out, err = await cli(
        "order", "place", "--json", "--not-placed-after", "1", "--local", rest, "--symbol",
        SYMBOL, "--side", "BUY", "--type", "LIMIT", "--quantity", "0.1", "--price", half(bid),
        "--client-order-id", "ghost1", env=env,
    )  # fmt: skip
    assert code == 2, (out, err)
    assert err.splitlines()[-1].startswith("streamer order place: NOT_PLACED: "), err
    assert "Traceback" not in err
    trace = lines(out)
    assert [t["status"] for t in trace] == ["SENT", "UNKNOWN", "NOT_PLACED"], trace
    assert trace[-1]["source"] == "local"
    held = await control(rest, "GET", "/_fake/orders", params={"apiKey": info["api_key"]})
    assert not [o for o in held if o.get("clientOrderId") == "ghost1"]
