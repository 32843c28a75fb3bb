"""The pure parts of ``streamer orders`` / ``streamer order``: JSON lines, readable lines, the
one-line reasons, and credentials from the environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from streamer.cli_orders import (
    credentials_from_env,
    describe,
    event_line,
    order_line,
    order_trace,
    reason_line,
)
from streamer.errors import ConfigurationError, InvalidOrder, OrderRejected, RateLimited
from streamer.order_models import Balance, Fill, Order, OrderStatus, OrderUpdate, Reconciled
from streamer.testing.exchange.sbe_streams import ed25519_key_pair

ORDER = Order(
    symbol="BTCUSDT",
    client_order_id="abc",
    side="BUY",
    type="LIMIT",
    status=OrderStatus.PARTIALLY_FILLED,
    quantity=Decimal("1.00000000"),
    price=Decimal("0.00000010"),
    time_in_force="GTC",
    order_id=7,
    executed_qty=Decimal("0.5"),
    cumulative_quote_qty=Decimal("5E-8"),
)


def test_an_order_line_has_the_documented_fields_and_plain_decimals() -> None:
    """An OrderUpdate becomes a "type": "order" line; decimals are plain strings, never 1E-7."""
    line = event_line(OrderUpdate(ORDER, OrderStatus.NEW, "stream"))
    assert line == {
        "type": "order", "symbol": "BTCUSDT", "client_order_id": "abc", "order_id": 7,
        "side": "BUY", "order_type": "LIMIT", "status": "PARTIALLY_FILLED", "previous": "NEW",
        "quantity": "1.00000000", "price": "0.00000010", "stop_price": None,
        "time_in_force": "GTC", "executed_qty": "0.5", "cumulative_quote_qty": "0.00000005",
        "update_time": None, "reason": None, "source": "stream",
    }  # fmt: skip
    assert orjson.loads(orjson.dumps(line)) == line


def test_fill_balance_and_reconciliation_lines() -> None:
    """Fills, balances and reconciliations have their documented fields and their source."""
    fill = Fill("BTCUSDT", "abc", 7, 99, Decimal("262.5"), Decimal("1E-5"), Decimal("0"),
                "BNB", 1, True, "rest")  # fmt: skip
    assert event_line(fill) == {
        "type": "fill", "symbol": "BTCUSDT", "client_order_id": "abc", "order_id": 7,
        "trade_id": 99, "price": "262.5", "qty": "0.00001", "commission": "0",
        "commission_asset": "BNB", "time": 1, "is_maker": True, "source": "rest",
    }  # fmt: skip
    balance = Balance("BTC", Decimal("1.5"), Decimal("0E-8"), 5, "stream")
    assert event_line(balance) == {
        "type": "balance", "asset": "BTC", "free": "1.5", "locked": "0.00000000",
        "update_time": 5, "source": "stream",
    }  # fmt: skip
    assert event_line(Reconciled("scheduled", 3, 1, 2)) == {
        "type": "reconciliation", "reason": "scheduled", "orders_checked": 3,
        "corrections": 1, "fills_found": 2, "source": "reconciliation",
    }  # fmt: skip


def test_order_line_takes_the_source_given() -> None:
    """A state read from the tracker (no event) is written with the source the caller names."""
    assert order_line(ORDER, "reconciliation")["source"] == "reconciliation"


def test_readable_lines_name_the_order_and_its_state() -> None:
    """The human view: symbol, side, type, amounts without trailing zeros, status, ids."""
    text = describe(OrderUpdate(ORDER, None, "rest")).plain
    assert text.startswith("order ")
    for part in ("BTCUSDT BUY LIMIT 1 @ 0.0000001 GTC", "PARTIALLY_FILLED", "filled 0.5/1",
                 "order id 7", "client id abc", "[rest]"):  # fmt: skip
        assert part in text, text
    balance = describe(Balance("USDT", Decimal("10.50000000"), Decimal("0"), None, "stream"))
    assert "USDT free 10.5 locked 0" in balance.plain
    assert "1 orders checked" in describe(Reconciled("subscribed", 1, 0, 0)).plain


def test_reasons_are_one_line_with_their_kind() -> None:
    """Rejections, filter violations and rate limits: the kind, the code, the detail."""
    rejected = OrderRejected("Account has insufficient\nbalance.", code=-2010, status=400)
    assert reason_line(rejected) == "OrderRejected: -2010 Account has insufficient balance."
    invalid = InvalidOrder("price off the tick", filter="PRICE_FILTER", nearest="100.00")
    assert reason_line(invalid) == (
        "InvalidOrder: price off the tick (PRICE_FILTER; nearest valid 100.00)"
    )
    limited = RateLimited("too many requests", code=-1015, status=429, retry_after=3.0)
    assert reason_line(limited) == "RateLimited: -1015 too many requests (retry after 3 s)"


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set the BINANCE_* variables to exactly the ones given."""
    for name in ("API_KEY", "API_SECRET", "ED25519_KEY_FILE", "KEY_TYPE"):
        monkeypatch.delenv(f"BINANCE_{name}", raising=False)

    def given(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return given


def test_hmac_credentials_from_the_environment(environ: Callable[..., None]) -> None:
    """BINANCE_API_KEY with BINANCE_API_SECRET: an HMAC key; the secret is not in the repr."""
    environ(BINANCE_API_KEY="key123456789", BINANCE_API_SECRET="s3cret")
    creds = credentials_from_env()
    assert (creds.api_key, creds.secret, creds.key_type) == ("key123456789", "s3cret", "HMAC")
    assert "s3cret" not in repr(creds)


def test_ed25519_credentials_from_a_key_file(environ: Callable[..., None], tmp_path: Path) -> None:
    """BINANCE_ED25519_KEY_FILE: the PEM in it is the Ed25519 key (preferred over a secret)."""
    pem, _public = ed25519_key_pair()
    path = tmp_path / "k.pem"
    path.write_text(pem)
    environ(BINANCE_API_KEY="k", BINANCE_ED25519_KEY_FILE=str(path), BINANCE_API_SECRET="no")
    creds = credentials_from_env()
    assert (creds.secret, creds.key_type) == (pem, "ED25519")


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({}, "streamer exchange"),
        ({"BINANCE_API_KEY": "k"}, "BINANCE_API_SECRET"),
        ({"BINANCE_API_SECRET": "topsecret"}, "BINANCE_API_KEY"),
        ({"BINANCE_API_KEY": "k", "BINANCE_ED25519_KEY_FILE": "/nonexistent/k.pem"},
         "/nonexistent/k.pem"),
    ],
)  # fmt: skip
def test_missing_or_unreadable_credentials_say_what_to_set(
    environ: Callable[..., None], given: dict[str, str], words: str
) -> None:
    """A missing variable or an unreadable key file: ConfigurationError naming it, on one
    line, with no secret in it."""
    environ(**given)
    with pytest.raises(ConfigurationError) as caught:
        credentials_from_env()
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert "topsecret" not in message


def test_a_key_file_that_is_not_a_private_key_is_refused(
    environ: Callable[..., None], tmp_path: Path
) -> None:
    """A file without an Ed25519 PEM private key: refused, its content never shown."""
    path = tmp_path / "k.pem"
    path.write_text("hunter2 not a key")
    environ(BINANCE_API_KEY="k", BINANCE_ED25519_KEY_FILE=str(path))
    with pytest.raises(ConfigurationError, match="PEM") as caught:
        credentials_from_env()
    assert "hunter2" not in str(caught.value)


def _fill(cid: str, trade: int) -> Fill:
    return Fill("BTCUSDT", cid, 7, trade, Decimal(1), Decimal(1), Decimal(0), None, 1, False,
                "stream")  # fmt: skip


def test_an_orders_trace_is_its_own_events_ending_with_its_state() -> None:
    """`order place/cancel` print the order's own updates and fills (not another order's, not
    balances), and the last line is always the order's state now."""
    sent = OrderUpdate(replace(ORDER, status=OrderStatus.SENT), None, "local")
    filled = replace(ORDER, status=OrderStatus.FILLED, executed_qty=Decimal(1))
    done = OrderUpdate(filled, OrderStatus.SENT, "stream")
    other = OrderUpdate(replace(ORDER, client_order_id="zzz"), None, "stream")
    balance = Balance("BTC", Decimal(1), Decimal(0), 1, "stream")
    events = [sent, other, balance, done, _fill("abc", 1), _fill("zzz", 2)]
    trace = order_trace(events, filled)
    assert trace[:3] == [sent, done, _fill("abc", 1)]
    # a fill came after the last update: the state is repeated as the last line
    assert trace[3] == OrderUpdate(filled, OrderStatus.SENT, "stream") and len(trace) == 4
    assert order_trace([sent, done], filled) == [sent, done]


def test_an_order_with_no_event_seen_is_its_state_as_read() -> None:
    """No event of the order in this process (a cancel answer that changed nothing new): the
    trace is its state, from the REST answer."""
    assert order_trace([], ORDER) == [OrderUpdate(ORDER, None, "rest")]
