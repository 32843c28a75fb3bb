"""``streamer check``: validate a Binance connection, market data and trading, in one command.

Each step prints ``ok``/``FAIL``/``skip``, its latency and one line of detail as it finishes
(``--json``: one JSON object per step per line: ``step``, ``ok``, ``ms``, ``detail``, and
``skipped``: true with ``ok`` and ``ms`` null). The steps are in :mod:`streamer.check.steps`.

Where: ``--local URL`` (the local exchange), ``--testnet`` (the spot testnet; the REST base may
be moved with ``BINANCE_TESTNET_BASE_URL``) or ``--live`` (real Binance): one code path, other
endpoints. Credentials come from the environment: ``BINANCE_API_KEY`` with
``BINANCE_API_SECRET`` (HMAC) or ``BINANCE_ED25519_KEY_FILE``; with ``--testnet`` also the
names teams already use: ``BINANCE_TESTNET_API_KEY`` and ``BINANCE_TESTNET_SECRET_KEY`` (or a
``BINANCE_TESTNET_ED25519_KEY_FILE``), which win when set. Without credentials the trading
steps are skipped (not failed). Against ``--live`` they place a real order (far from the
market, cancelled at once) only with ``--allow-live-orders``.

Exit status: 0 every step that ran passed, 1 a step failed, 2 a usage or configuration error
(one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from streamer.aio.runner import run
from streamer.aio.streamer import Streamer
from streamer.check.runner import Result, Runner
from streamer.check.steps import Checks
from streamer.cli_live import error_line, positive_float
from streamer.config import Credentials, Endpoints
from streamer.errors import ConfigurationError, StreamerError

__all__ = [
    "add_check_parser",
    "cmd_check",
    "credentials_from_env",
    "endpoints_for",
    "plan",
]

PROG = "streamer check"
AUDIT_INTERVAL = 1.0  # seconds (jittered ±50%) before the first audit of the checked book
_ENV_NAMES = ("API_KEY", "API_SECRET", "ED25519_KEY_FILE")

EPILOG = """\
examples:
  streamer check --local http://127.0.0.1:8080     the local exchange (`streamer exchange`)
  streamer check --testnet --json                  the spot testnet, one JSON line per step
  streamer check --live --market-only              real Binance, market data only
  streamer check --live --allow-live-orders        ... and a real order, far off, cancelled

exit status: 0 all passed, 1 a step failed, 2 a usage or configuration error"""


def add_check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer check``."""
    p = subparsers.add_parser(
        "check",
        help="validate a Binance connection: market data, a live book, orders",
        description="Check connectivity, the server clock, market data answers, a live "
        "book and its audit, and (with credentials) the account, test orders and one real "
        "LIMIT order far from the market: placed, seen on the user stream, queried, cancelled.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", metavar="URL", help="the local exchange at URL")
    where.add_argument("--testnet", action="store_true", help="the Binance spot testnet")
    where.add_argument("--live", action="store_true", help="real Binance spot")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--market-only", action="store_true", help="skip the trading steps")
    only.add_argument("--trading-only", action="store_true", help="skip the market steps")
    p.add_argument("--symbol", default="BTCUSDT", help="the symbol to check (default BTCUSDT)")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="the bound of each step, in seconds (default 10)",
    )
    p.add_argument(
        "--allow-live-orders",
        action="store_true",
        help="with --live: run the trading steps (a real LIMIT order, far off, cancelled)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per step per line")
    p.set_defaults(func=cmd_check)


def endpoints_for(args: argparse.Namespace) -> Endpoints:
    """The endpoints ``--local`` / ``--testnet`` / ``--live`` select."""
    if args.local is not None:
        return Endpoints.local(args.local)
    if args.testnet:
        endpoints = Endpoints.spot_testnet()
        base = os.environ.get("BINANCE_TESTNET_BASE_URL", "").strip()
        return dataclasses.replace(endpoints, rest=base.rstrip("/")) if base else endpoints
    return Endpoints.binance_spot()


def credentials_from_env(testnet: bool) -> Credentials | None:
    """The credentials in the environment (None: none given); ConfigurationError when they
    are given but incomplete or unusable."""
    if testnet:
        key = os.environ.get("BINANCE_TESTNET_API_KEY", "")
        if os.environ.get("BINANCE_TESTNET_ED25519_KEY_FILE"):
            return Credentials.from_env("BINANCE_TESTNET")
        secret = os.environ.get("BINANCE_TESTNET_SECRET_KEY", "") or os.environ.get(
            "BINANCE_TESTNET_API_SECRET", ""
        )
        if key or secret:
            if not (key and secret):
                raise ConfigurationError(
                    "set both BINANCE_TESTNET_API_KEY and BINANCE_TESTNET_SECRET_KEY"
                )
            return Credentials(key, secret)
    if not any(os.environ.get(f"BINANCE_{name}") for name in _ENV_NAMES):
        return None
    return Credentials.from_env()


def _no_credentials(testnet: bool) -> str:
    names = "BINANCE_API_KEY and BINANCE_API_SECRET (or BINANCE_ED25519_KEY_FILE)"
    if testnet:
        names = "BINANCE_TESTNET_API_KEY and BINANCE_TESTNET_SECRET_KEY, or " + names
    return f"no credentials: set {names}"


def plan(
    args: argparse.Namespace, credentials: Credentials | None
) -> tuple[str | None, str | None]:
    """Why the market steps and the trading steps are left out (None: they run);
    ConfigurationError when nothing asked for could run."""
    trading_off: str | None = None
    if args.market_only:
        trading_off = "--market-only"
    elif credentials is None:
        trading_off = _no_credentials(args.testnet)
    elif args.live and not args.allow_live_orders:
        trading_off = "--live places real orders only with --allow-live-orders"
    if args.trading_only and trading_off is not None:
        raise ConfigurationError(f"--trading-only, but {trading_off}")
    if args.allow_live_orders and not args.live:
        raise ConfigurationError("--allow-live-orders goes with --live only")
    return ("--trading-only" if args.trading_only else None), trading_off


def cmd_check(args: argparse.Namespace) -> int:
    try:
        endpoints = endpoints_for(args)
        credentials = credentials_from_env(args.testnet)
        market_off, trading_off = plan(args, credentials)
        streamer = Streamer(endpoints, audit_interval=AUDIT_INTERVAL, credentials=credentials)
    except StreamerError as exc:
        error_line(PROG, exc)
        return 2
    symbol = args.symbol.strip().upper()
    try:
        results = run(_check(streamer, symbol, args, market_off, trading_off))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    if any(r.ok is False for r in results):
        return 1
    return 0


async def _check(
    streamer: Streamer,
    symbol: str,
    args: argparse.Namespace,
    market_off: str | None,
    trading_off: str | None,
) -> list[Result]:
    runner = Runner(args.timeout, sys.stdout, args.json)
    await streamer.start()  # no I/O yet: no symbol is subscribed
    try:
        checks = Checks(streamer, symbol)
        results = await runner.run_all(checks.steps(market=market_off, trading=trading_off))
    finally:
        await streamer.close()
    if not args.json:
        passed = sum(r.ok is True for r in results)
        failed = [r.step for r in results if r.ok is False]
        skipped = sum(r.ok is None for r in results)
        tail = f"; failed: {', '.join(failed)}" if failed else ""
        print(
            f"{PROG}: {passed} passed, {len(failed)} failed, {skipped} skipped against "
            f"{streamer.endpoints.rest}{tail}",
            flush=True,
        )
    return results
