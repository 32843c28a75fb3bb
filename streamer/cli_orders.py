"""``streamer orders`` and ``streamer order place|cancel``: the account's orders from a terminal.

Credentials come from the environment, never from the command line (where ``ps`` and the shell
history would keep them): ``BINANCE_API_KEY`` with ``BINANCE_API_SECRET`` (an HMAC key), or
``BINANCE_API_KEY`` with ``BINANCE_ED25519_KEY_FILE`` (the path of an Ed25519 private key in
PEM). ``streamer exchange`` prints the ones of its funded demo account. No secret is ever
printed. Without ``--local URL`` (or ``--testnet``) the commands talk to real Binance spot.

``streamer orders`` watches the account until ``--seconds``, Ctrl-C or SIGTERM (exit 0). Its
events are collected from before the subscription, so it shows first what the start's
reconciliation found (every open order, every balance, ``"source": "reconciliation"``, and its
``reconciliation`` line), then every event as it happens: each state change, each fill (once per
trade), each balance change. With ``--json`` one JSON object per line on stdout, each with a
``"type"``:

- ``order``: ``client_order_id``, ``order_id``, ``symbol``, ``side``, ``order_type`` (LIMIT,
  MARKET, ...: ``type`` names the line), ``status``, ``previous`` (the status before, null for an
  order first seen), ``quantity``, ``price``, ``stop_price``, ``time_in_force``,
  ``executed_qty``, ``cumulative_quote_qty``, ``update_time``, ``reason``, ``source``;
- ``fill``: ``symbol``, ``client_order_id``, ``order_id``, ``trade_id``, ``price``, ``qty``,
  ``commission``, ``commission_asset``, ``time``, ``is_maker``, ``source``;
- ``balance``: ``asset``, ``free``, ``locked``, ``update_time``, ``source``;
- ``reconciliation``: ``reason``, ``orders_checked``, ``corrections``, ``fills_found``,
  ``source``.

Prices and quantities are decimal strings in plain notation, exactly as the exchange gave them
(never a float). ``source`` says where a fact came from: ``local``, ``rest``, ``stream`` or
``reconciliation`` (see ``streamer.order_models``).

``streamer order place`` places one order and prints it once the placement's outcome is known:
at once when the exchange answered; after resolution when the answer did not come within
``--timeout`` (the order is then queried by its client order id, never sent twice, until the
exchange shows it or ``--not-placed-after`` seconds of "no such order" prove it absent). Exit 0
placed (whatever happened to it next: it may have filled, or expired at once), 2 when it was
not placed, with the reason on one line of stderr: ``InvalidOrder`` (a symbol filter refused it
before sending), ``OrderRejected``, ``RateLimited`` or ``NOT_PLACED``. ``streamer order
cancel`` exits 0 when the order was cancelled, 2 when the exchange does not know it
(``OrderNotFound``). Any other failure is one line on stderr (a traceback only with
``--debug``) and the status of the command-line conventions (``streamer.cli_common``): 2 missing
credentials or a refused key, 3 an endpoint that cannot be reached, 1 anything else (an outcome
that stayed unknown, say). For a person they print the
order's fills and its state; with ``--json`` the order's own events as ``streamer orders``
writes them (its updates and fills seen by this process), the last line always the order's
state now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import IO, Any

import orjson
from rich.console import Console
from rich.text import Text

from streamer.aio.orders import new_client_order_id
from streamer.aio.runner import run
from streamer.aio.streamer import Streamer
from streamer.cli_common import EXIT_INTERRUPTED, EXIT_USAGE, debug_enabled, error_line, exit_code
from streamer.cli_live import (
    add_endpoint_args,
    endpoints_from_args,
    positive_float,
    run_session,
)
from streamer.cli_metrics import add_metrics_args, with_metrics
from streamer.config import Credentials, Endpoints
from streamer.errors import (
    ConfigurationError,
    ExchangeError,
    InvalidOrder,
    IPBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    StreamerError,
)
from streamer.logs import add_logging_args, setup_logging
from streamer.order_models import (
    Balance,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderUpdate,
    plain,
)

__all__ = [
    "add_orders_parsers",
    "credentials_from_env",
    "describe",
    "event_line",
    "order_line",
    "order_trace",
]

PROG_ORDERS = "streamer orders"
PROG_PLACE = "streamer order place"
PROG_CANCEL = "streamer order cancel"

ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "LIMIT_MAKER",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
#: Types that rest on the book at a price and so need a time in force (GTC unless told).
LIMIT_TYPES = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
#: The statuses of an order that was not placed: ``order place`` exits 2 on them.
NOT_PLACED = frozenset({OrderStatus.REJECTED, OrderStatus.NOT_PLACED})
#: How much longer than the Streamer's own bounds ``order place`` waits for an outcome.
RESOLVE_MARGIN = 30.0
#: The Streamer's default placement timeout and NOT_PLACED delay (seconds), for the bound above.
DEFAULT_ORDER_TIMEOUT = 10.0
DEFAULT_NOT_PLACED_AFTER = 15.0

ENV_KEY = "BINANCE_API_KEY"
ENV_SECRET = "BINANCE_API_SECRET"
ENV_KEY_FILE = "BINANCE_ED25519_KEY_FILE"


# -- the parsers -------------------------------------------------------------------------------


def add_orders_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer orders`` and ``streamer order place|cancel``."""
    p = subparsers.add_parser(
        "orders",
        help="watch the account's orders, fills and balances live (JSON lines with --json)",
        description="Show the account's open orders and balances, then every order, fill, "
        "balance and reconciliation event until --seconds or Ctrl-C (exit status 0; 2 for "
        "missing credentials or a refused key, 3 for an endpoint that cannot be reached). "
        f"Credentials: ${ENV_KEY} with ${ENV_SECRET} (HMAC) or with ${ENV_KEY_FILE} (Ed25519 "
        "PEM private key), or the [credentials] of the config file.",
    )
    add_endpoint_args(p, venues=False)
    p.add_argument("--seconds", type=positive_float, metavar="S", help="exit after S seconds")
    p.add_argument(
        "--reconcile-interval",
        type=positive_float,
        metavar="S",
        help="seconds between reconciliations with REST snapshots (jittered; default: the "
        "library's)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    add_metrics_args(p)
    add_logging_args(p)
    p.set_defaults(func=cmd_orders)

    order = subparsers.add_parser(
        "order",
        help="place or cancel one order",
        description="Place or cancel one order (credentials as for `streamer orders`).",
    )
    actions = order.add_subparsers(dest="action", required=True, metavar="{place,cancel}")
    p = actions.add_parser(
        "place",
        help="place an order and print its state once the outcome is known",
        description="Place one order; print its state once the outcome is known. Exit 0 "
        "placed, 2 not placed (InvalidOrder, OrderRejected, RateLimited, NOT_PLACED) with the "
        "reason on one line of stderr.",
    )
    p.add_argument("--symbol", required=True, type=str.upper, help="e.g. BTCUSDT")
    p.add_argument("--side", required=True, type=str.upper, choices=("BUY", "SELL"))
    p.add_argument("--type", required=True, type=str.upper, choices=ORDER_TYPES)
    p.add_argument("--quantity", required=True, metavar="Q", help="base asset quantity")
    p.add_argument("--price", metavar="P", help="limit price (limit types)")
    p.add_argument("--stop-price", metavar="P", help="trigger price (stop and take-profit types)")
    p.add_argument(
        "--time-in-force",
        type=str.upper,
        choices=("GTC", "IOC", "FOK"),
        metavar="TIF",
        help="GTC, IOC or FOK (default GTC for the limit types)",
    )
    p.add_argument("--client-order-id", metavar="ID", help="our id for it (default: a new one)")
    p.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="seconds to wait for the placement's answer; after it the outcome is unknown and "
        f"the order is resolved by querying it (default {DEFAULT_ORDER_TIMEOUT:g})",
    )
    p.add_argument(
        "--not-placed-after",
        type=positive_float,
        metavar="S",
        help="while resolving: seconds of the exchange answering 'no such order' before the "
        f"order is declared NOT_PLACED (default {DEFAULT_NOT_PLACED_AFTER:g}; Binance's own "
        "backend timeout is 10 s)",
    )
    add_endpoint_args(p, venues=False)
    p.add_argument("--json", action="store_true", help="JSON lines; the last one is the order")
    p.set_defaults(func=cmd_place)

    p = actions.add_parser(
        "cancel",
        help="cancel an order by its client order id",
        description="Cancel one order by its client order id. Exit 0 cancelled, 2 when the "
        "exchange does not know it (OrderNotFound).",
    )
    p.add_argument("--symbol", required=True, type=str.upper, help="e.g. BTCUSDT")
    p.add_argument("--client-order-id", required=True, metavar="ID", help="the order's id")
    add_endpoint_args(p, venues=False)
    p.add_argument("--json", action="store_true", help="JSON lines; the last one is the order")
    p.set_defaults(func=cmd_cancel)


def credentials_from_env() -> Credentials:
    """``Credentials.from_env()``: ``$BINANCE_API_KEY`` with ``$BINANCE_ED25519_KEY_FILE``
    (Ed25519, preferred when both are set) or ``$BINANCE_API_SECRET`` (HMAC). Its
    ``ConfigurationError`` says what is missing, and never quotes a secret; with no key at all
    it also says where the local exchange's demo key is."""
    try:
        return Credentials.from_env()
    except ConfigurationError as exc:
        if os.environ.get(ENV_KEY):
            raise
        raise ConfigurationError(
            f"no credentials: {exc} (`streamer exchange` prints those of its demo account)"
        ) from None


# -- JSON lines ----------------------------------------------------------------------------------


def order_line(order: Order, source: str, previous: OrderStatus | None = None) -> dict[str, Any]:
    """An order as a ``"type": "order"`` JSON line."""
    return {
        "type": "order",
        "symbol": order.symbol,
        "client_order_id": order.client_order_id,
        "order_id": order.order_id,
        "side": order.side,
        "order_type": order.type,
        "status": order.status.value,
        "previous": None if previous is None else previous.value,
        "quantity": plain(order.quantity),
        "price": plain(order.price),
        "stop_price": plain(order.stop_price),
        "time_in_force": order.time_in_force,
        "executed_qty": plain(order.executed_qty),
        "cumulative_quote_qty": plain(order.cumulative_quote_qty),
        "update_time": order.update_time,
        "reason": order.reason,
        "source": source,
    }


def event_line(event: OrderEvent) -> dict[str, Any]:
    """The JSON line of one order event."""
    if isinstance(event, OrderUpdate):
        return order_line(event.order, event.source, event.previous)
    if isinstance(event, Fill):
        return {
            "type": "fill",
            "symbol": event.symbol,
            "client_order_id": event.client_order_id,
            "order_id": event.order_id,
            "trade_id": event.trade_id,
            "price": plain(event.price),
            "qty": plain(event.qty),
            "commission": plain(event.commission),
            "commission_asset": event.commission_asset,
            "time": event.time,
            "is_maker": event.is_maker,
            "source": event.source,
        }
    if isinstance(event, Balance):
        return {
            "type": "balance",
            "asset": event.asset,
            "free": plain(event.free),
            "locked": plain(event.locked),
            "update_time": event.update_time,
            "source": event.source,
        }
    return {
        "type": "reconciliation",
        "reason": event.reason,
        "orders_checked": event.orders_checked,
        "corrections": event.corrections,
        "fills_found": event.fills_found,
        "source": event.source,
    }


# -- the human view ------------------------------------------------------------------------------

_STATUS_STYLES = {
    OrderStatus.FILLED: "bold green",
    OrderStatus.PARTIALLY_FILLED: "green",
    OrderStatus.NEW: "cyan",
    OrderStatus.CANCELED: "yellow",
    OrderStatus.EXPIRED: "yellow",
    OrderStatus.EXPIRED_IN_MATCH: "yellow",
    OrderStatus.REJECTED: "bold red",
    OrderStatus.NOT_PLACED: "bold red",
    OrderStatus.UNKNOWN: "bold magenta",
}


def _amount(value: Decimal | None) -> str:
    """A decimal without the exchange's trailing zeros, for reading (JSON keeps them)."""
    if value is None:
        return "-"
    text = plain(value) or "0"
    return text.rstrip("0").rstrip(".") if "." in text else text


def describe_order(order: Order) -> Text:
    """``BTCUSDT BUY LIMIT 0.5 @ 150 GTC  NEW  filled 0/0.5  id 12 (st...)``: one order."""
    text = Text()
    text.append(f"{order.symbol} ", style="bold")
    text.append(order.side, style="green" if order.side == "BUY" else "red")
    text.append(f" {order.type} {_amount(order.quantity)}")
    if order.price:  # (a MARKET order's is none, or 0 as Binance writes it)
        text.append(f" @ {_amount(order.price)}")
    if order.stop_price is not None:
        text.append(f" stop {_amount(order.stop_price)}")
    if order.time_in_force and order.price:  # (a MARKET order's GTC says nothing)
        text.append(f" {order.time_in_force}")
    text.append("  ")
    text.append(order.status.value, style=_STATUS_STYLES.get(order.status, ""))
    text.append(f"  filled {_amount(order.executed_qty)}/{_amount(order.quantity)}")
    if order.average_price is not None:
        text.append(f" avg {_amount(order.average_price.normalize())}")
    order_id = "-" if order.order_id is None else str(order.order_id)
    text.append(f"  order id {order_id}  client id {order.client_order_id}", style="dim")
    if order.reason:
        text.append(f"  ({order.reason})", style="red")
    return text


def describe(event: OrderEvent) -> Text:
    """One event as one readable line (no time stamp: the caller adds it)."""
    if isinstance(event, OrderUpdate):
        text = Text("order    ", style="bold")
        text.append_text(describe_order(event.order))
    elif isinstance(event, Fill):
        text = Text("fill     ", style="bold green")
        text.append(f"{event.symbol} {_amount(event.qty)} @ {_amount(event.price)}")
        fee = f"fee {_amount(event.commission)} {event.commission_asset or ''}".rstrip()
        role = {True: "maker", False: "taker", None: ""}[event.is_maker]
        text.append(f"  {fee}  {role}".rstrip())
        text.append(
            f"  trade {event.trade_id}  order id {event.order_id}  client id "
            f"{event.client_order_id}",
            style="dim",
        )
    elif isinstance(event, Balance):
        text = Text("balance  ", style="bold blue")
        text.append(f"{event.asset} free {_amount(event.free)} locked {_amount(event.locked)}")
    else:
        text = Text("reconciled ", style="bold")
        text.append(
            f"({event.reason}): {event.orders_checked} orders checked, "
            f"{event.corrections} corrections, {event.fills_found} fills found"
        )
    text.append(f"  [{event.source}]", style="dim")
    return text


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


# -- streamer orders -----------------------------------------------------------------------------

Writer = Callable[[list[OrderEvent]], None]


def json_writer(out: IO[bytes]) -> Writer:
    def write(events: list[OrderEvent]) -> None:
        if events:
            out.write(b"".join(orjson.dumps(event_line(e)) + b"\n" for e in events))
            out.flush()

    return write


def console_writer(console: Console) -> Writer:
    def write(events: list[OrderEvent]) -> None:
        for event in events:
            line = Text(f"{_clock()}  ", style="dim")
            line.append_text(describe(event))
            console.print(line, soft_wrap=True, highlight=False)

    return write


async def watch_orders(
    s: Streamer, stop: asyncio.Event, write: Writer, subscribed: Callable[[], None] = lambda: None
) -> None:
    """Every order event until ``stop``, from before the subscription: the start's
    reconciliation comes first (the open orders and the balances it finds)."""
    async with s.order_updates() as updates:  # collects from here on
        ready = asyncio.ensure_future(s.track_orders())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():  # stopped while subscribing: a slow or silent host
                ready.cancel()
                with contextlib.suppress(asyncio.CancelledError, StreamerError):
                    await ready
                return
            ready.result()  # its error, if any: one line and status 2 (run_session)
            subscribed()
            while True:
                write(updates.take_all())
                getting = asyncio.ensure_future(anext(updates))
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():  # stopped (a cancelled wait takes nothing)
                    getting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getting
                    return
                try:
                    write([getting.result()])
                except StopAsyncIteration:  # the Streamer closed
                    return
        finally:
            stopping.cancel()
            write(updates.take_all())


def _streamer(endpoints: Endpoints, credentials: Credentials, **settings: Any) -> Streamer:
    """A Streamer for orders only: no books, so no market data is fetched."""
    given = {name: value for name, value in settings.items() if value is not None}
    return Streamer(endpoints, credentials=credentials, audit_interval=None, **given)


def cmd_orders(args: argparse.Namespace) -> int:
    setup_logging(args)
    try:
        credentials = credentials_from_env()
        endpoints = endpoints_from_args(args)
        streamer = _streamer(endpoints, credentials, reconcile_interval=args.reconcile_interval)
    except StreamerError as exc:
        error_line(PROG_ORDERS, exc)
        return 2
    if args.json:
        write, subscribed = json_writer(sys.stdout.buffer), lambda: None
    else:
        console = Console()
        write = console_writer(console)

        def subscribed() -> None:
            console.print(
                f"{PROG_ORDERS}: the account of key {_key_hint(credentials)} "
                f"({credentials.key_type}) at {endpoints.rest}; Ctrl-C to quit",
                style="dim",
                highlight=False,
                soft_wrap=True,
            )

    async def session(s: Streamer, stop: asyncio.Event) -> None:
        await watch_orders(s, stop, write, subscribed)

    metered = with_metrics(PROG_ORDERS, args, session)
    return run(run_session(PROG_ORDERS, streamer, metered, args.seconds))


def _key_hint(credentials: Credentials) -> str:
    """The API key's first characters (the key is not secret, but there is no need for all)."""
    key = credentials.api_key
    return key[:6] + "…" if len(key) > 10 else "…"


def say(prog: str, text: str) -> None:
    """One line on stderr: the command and what happened."""
    print(f"{prog}: {' '.join(text.split())}", file=sys.stderr, flush=True)


def reason_line(exc: StreamerError) -> str:
    """Why an order was not placed or cancelled, on one line: the error's kind first."""
    kind = type(exc).__name__
    text = " ".join(str(exc).split())
    if exc.code is not None and str(exc.code) not in text:
        text = f"{exc.code} {text}"
    if isinstance(exc, InvalidOrder):  # the filter and the nearest valid value, if not said
        details = []
        if exc.filter and exc.filter not in text:
            details.append(exc.filter)
        if exc.nearest and exc.nearest not in text:
            details.append(f"nearest valid {exc.nearest}")
        if details:
            text = f"{text} ({'; '.join(details)})"
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        text = f"{text} (retry after {exc.retry_after:g} s)"
    return f"{kind}: {text}"


#: Errors that mean the order was not placed (or, on cancel, is unknown to the exchange): the
#: exit status the issue gives them, 2, whatever the general convention says of their kind.
_NOT_DONE = (InvalidOrder, OrderRejected, RateLimited, IPBanned, OrderNotFound)


async def _one_shot(
    prog: str, streamer: Streamer, body: Callable[[Streamer], Awaitable[int]]
) -> int:
    """Run ``body`` with ``streamer`` started; an error is one line and its exit status: 2 for
    an order not placed or not found (its kind first: ``OrderRejected: -2010 ...``), else the
    conventions' (3 could not connect, 2 a refused key or bad settings, 1 anything else)."""
    try:
        async with streamer:
            return await body(streamer)
    except (StreamerError, OSError) as exc:
        if debug_enabled():
            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, InvalidOrder | ExchangeError):
            say(prog, reason_line(exc))
        else:
            error_line(prog, exc)
        return EXIT_USAGE if isinstance(exc, _NOT_DONE) else exit_code(exc)


def _interruptible(prog: str, main: Callable[[], int]) -> int:
    try:
        return main()
    except KeyboardInterrupt:
        say(prog, "interrupted; the order's state: `streamer orders` shows it")
        return EXIT_INTERRUPTED


def _resolved(order: Order) -> bool:
    return order.status not in (OrderStatus.SENT, OrderStatus.UNKNOWN)


def order_trace(events: list[OrderEvent], order: Order) -> list[OrderEvent]:
    """The events of ``order`` among ``events`` (its updates and fills, in order), ending with
    its state now: the last one when that is an update showing it, else one more update."""
    cid = order.client_order_id
    mine: list[OrderEvent] = [
        e
        for e in events
        if (isinstance(e, OrderUpdate) and e.order.client_order_id == cid)
        or (isinstance(e, Fill) and e.client_order_id == cid)
    ]
    updates = [e for e in mine if isinstance(e, OrderUpdate)]
    last = updates[-1] if updates else None
    if last is None:  # no change seen here (the order was known before): its state as read
        mine.append(OrderUpdate(order, None, "rest"))
    elif mine[-1] is not last or last.order != order:  # a fill after it, or a newer state
        same = last.order.status is order.status
        mine.append(OrderUpdate(order, last.previous if same else last.order.status, last.source))
    return mine


def _print_trace(trace: list[OrderEvent], as_json: bool) -> None:
    """With --json every line (the last: the order); for a person the fills, then the order."""
    if as_json:
        json_writer(sys.stdout.buffer)(trace)
        return
    console = Console()
    for event in trace:
        if isinstance(event, Fill):
            console.print(describe(event), soft_wrap=True, highlight=False)
    last = trace[-1]
    assert isinstance(last, OrderUpdate)
    console.print(describe_order(last.order), soft_wrap=True, highlight=False)


def cmd_place(args: argparse.Namespace) -> int:
    time_in_force = args.time_in_force
    if time_in_force is None and args.type in LIMIT_TYPES:
        time_in_force = "GTC"
    try:
        credentials = credentials_from_env()
        streamer = _streamer(
            endpoints_from_args(args),
            credentials,
            order_timeout=args.timeout,
            not_placed_after=args.not_placed_after,
        )
    except StreamerError as exc:
        error_line(PROG_PLACE, exc)
        return 2
    cid = args.client_order_id or new_client_order_id()
    bound = (
        (args.timeout or DEFAULT_ORDER_TIMEOUT)
        + (args.not_placed_after or DEFAULT_NOT_PLACED_AFTER)
        + RESOLVE_MARGIN
    )

    async def place(s: Streamer) -> int:
        async with s.order_updates() as updates:  # this order's events, for the trace
            try:
                handle = await s.place_order(
                    args.symbol,
                    args.side,
                    args.type,
                    quantity=args.quantity,
                    price=args.price,
                    stop_price=args.stop_price,
                    time_in_force=time_in_force,
                    client_order_id=cid,
                )
            except (OrderRejected, RateLimited):
                # tracked, and REJECTED: with --json its trace goes first, then the reason
                rejected = next((o for o in s.orders() if o.client_order_id == cid), None)
                if args.json and rejected is not None:
                    _print_trace(order_trace(updates.take_all(), rejected), True)
                raise
            if handle.status is OrderStatus.UNKNOWN:
                print(
                    f"{PROG_PLACE}: outcome unknown ({handle.order.reason}); resolving {cid} "
                    "by querying it, never sending it again",
                    file=sys.stderr,
                    flush=True,
                )
            try:
                order = await handle.wait(_resolved, timeout=bound)
            except TimeoutError:
                raise StreamerError(
                    f"UNKNOWN: no outcome for {cid} after {bound:g} s; `streamer orders` shows it"
                ) from None
            _print_trace(order_trace(updates.take_all(), order), args.json)
        if order.status in NOT_PLACED:
            say(PROG_PLACE, f"{order.status.value}: {order.reason or 'no reason given'}")
            return 2
        return 0

    return _interruptible(PROG_PLACE, lambda: run(_one_shot(PROG_PLACE, streamer, place)))


def cmd_cancel(args: argparse.Namespace) -> int:
    try:
        credentials = credentials_from_env()
        streamer = _streamer(endpoints_from_args(args), credentials)
    except StreamerError as exc:
        error_line(PROG_CANCEL, exc)
        return 2

    async def cancel(s: Streamer) -> int:
        async with s.order_updates() as updates:
            order = await s.cancel_order(args.symbol, args.client_order_id)
            trace = order_trace(updates.take_all(), order)
        # the cancel's own trace: the state found at the start is not news here
        _print_trace(trace if args.json else trace[-1:], args.json)
        return 0 if order.status is OrderStatus.CANCELED else 2

    return _interruptible(PROG_CANCEL, lambda: run(_one_shot(PROG_CANCEL, streamer, cancel)))
