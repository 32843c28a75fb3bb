"""``streamer exchange``: run the local Binance in the foreground.

Prints the base URLs and a funded demo API key and secret (with the ``export`` lines that
``streamer orders`` and ``streamer order`` read them from), then serves until Ctrl-C or SIGTERM.
With ``--json`` the first line of output is exactly one JSON object::

    {"venue": "spot", "rest": "http://127.0.0.1:P", "ws": "ws://127.0.0.1:P",
     "ws_api": "ws://127.0.0.1:P/ws-api/v3", "sbe": "ws://127.0.0.1:Q", "api_key": "...",
     "api_secret": "...", "ed25519_api_key": "...",
     "ed25519_private_key": "-----BEGIN PRIVATE KEY-----..."}

``sbe`` is the base URL of the SBE market streams (their own port, as Binance serves them from
their own host; spot only, null on a futures venue); they need an Ed25519 API key, hence the
second demo account's key and its private key (PEM), which also logs in to the WebSocket API.

``--venue usdm`` (or ``coinm``) serves futures market data instead (``venues.py``): ``ws`` is
then the venue's stream base (``ws://127.0.0.1:P/public`` on USD-M, as ``Endpoints.local``
gives it) and ``ws_api`` names a path a futures exchange does not serve (no futures WS-API);
the demo key is still created but has nothing to trade there.

With ``--firehose`` the market streams of ``--symbols`` (and their REST depth snapshots) come from
pre-generated 20-level diffs sent as fast as the socket drains (or ``--firehose-rate`` messages
per second per stream), to benchmark a client's receive path; orders still trade on the engine.
With ``--venue usdm``/``coinm`` the firehose sends the futures shape (``pu``, skipping ids).
The SBE port then serves the same diffs in SBE (``<sym>@depth``).

The demo secret is printed on purpose: it is a throwaway key of a local fake exchange.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
from collections.abc import Sequence

from streamer.aio.runner import run
from streamer.testing.exchange.firehose import Firehose
from streamer.testing.exchange.sbe_streams import ed25519_key_pair
from streamer.testing.exchange.server import DEFAULT_SYMBOLS, FakeExchange
from streamer.testing.exchange.symbols import EngineError
from streamer.testing.exchange.venues import VENUES

__all__ = ["add_exchange_parser", "main", "run_exchange"]


def _symbols(values: Sequence[str]) -> list[str]:
    # Accept "--symbols BTCUSDT ETHBTC" and "--symbols BTCUSDT,ETHBTC" alike.
    return [s.strip().upper() for v in values for s in v.split(",") if s.strip()]


# argparse type functions: each bad value gets its own one-line message, before anything is
# served (argparse would otherwise name the function: "invalid _port value").


def port_number(text: str) -> int:
    """A TCP port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 to 65535 (0: any free port), got {text!r}"
        )
    return value


def market_rate(text: str) -> float:
    """Market actions per second: a finite number >= 0 (0: a still market)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"expected a finite number of actions per second >= 0, got {text!r}"
        )
    return value


def finite_number(text: str) -> float:
    """A finite number (its range is checked with the other settings)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def seed_number(text: str) -> int:
    """Any whole number."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_exchange_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``exchange`` subcommand; its handler is ``args.func(args) -> int``."""
    p = subparsers.add_parser(
        "exchange",
        help="run the local Binance (REST, streams, WebSocket API) in the foreground",
        description="Serve a local Binance-compatible exchange until Ctrl-C.",
    )
    p.add_argument(
        "--venue",
        choices=sorted(VENUES),
        default="spot",
        help="spot (default), or usdm / coinm futures market data (depth with pu)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port_number, default=0, help="port (default: any free port)")
    p.add_argument("--symbols", nargs="+", default=list(DEFAULT_SYMBOLS), help="symbols to trade")
    p.add_argument("--seed", type=seed_number, default=1, help="seed of the simulated market")
    p.add_argument(
        "--rate",
        type=market_rate,
        default=100.0,
        help="simulated market actions per second (0: a still market)",
    )
    p.add_argument(
        "--weight-limit",
        type=positive_int,
        default=None,
        metavar="W",
        help="REST request weight per minute (default: the venue's, 6000 spot, 2400 futures)",
    )
    p.add_argument(
        "--firehose",
        action="store_true",
        help="serve the symbols' streams from pre-generated 20-level diffs (a benchmark source)",
    )
    p.add_argument(
        "--firehose-rate",
        type=finite_number,
        default=None,
        metavar="MSGS",
        help="with --firehose: messages per second per stream (default: as fast as possible)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON line with URLs and keys")
    p.set_defaults(func=run_exchange)


def run_exchange(args: argparse.Namespace) -> int:
    """Run the exchange described by ``args`` until interrupted; the exit status."""
    try:
        return run(_serve(args))  # on uvloop where installed
    except KeyboardInterrupt:  # platforms without loop signal handlers
        return 0


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        symbols = _symbols(args.symbols)
        if args.firehose_rate is not None and not (args.firehose and args.firehose_rate > 0):
            raise ValueError("--firehose-rate must be > 0 and needs --firehose")
        firehose = (
            Firehose(symbols, seed=args.seed, rate=args.firehose_rate, venue=args.venue)
            if args.firehose
            else None
        )
        exchange = FakeExchange(
            symbols,
            venue=args.venue,
            seed=args.seed,
            host=args.host,
            port=args.port,
            rate=args.rate,
            firehose=firehose,
            weight_limit=args.weight_limit,
        )
    except (EngineError, ValueError) as exc:
        print(f"streamer exchange: {getattr(exc, 'msg', exc)}", file=sys.stderr)
        return 2
    try:
        async with exchange:
            keys = await exchange.create_account()
            ed25519_private, ed25519_public = ed25519_key_pair()
            ed25519 = await exchange.create_account(ed25519_public_key_pem=ed25519_public)
            sbe = exchange.sbe_url if exchange.sbe_hub is not None else None
            urls = exchange.endpoints
            if args.json:
                line = {
                    "venue": exchange.venue,
                    "rest": urls.rest,
                    "ws": urls.ws,
                    "ws_api": urls.ws_api,
                    "sbe": sbe,
                    "api_key": keys["apiKey"],
                    "api_secret": keys["secretKey"],
                    "ed25519_api_key": ed25519["apiKey"],
                    "ed25519_private_key": ed25519_private,
                }
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                mode = " (streams: firehose)" if firehose is not None else ""
                futures = exchange.venue != "spot"
                ws_api = "none (futures market data only)" if futures else urls.ws_api
                venue = f" ({exchange.venue} futures, market data)" if futures else ""
                sys.stdout.write(
                    f"local Binance{venue} serving {', '.join(exchange.engine.symbols)}{mode}\n"
                    f"  REST     {urls.rest}\n  streams  {urls.ws}\n  WS-API   {ws_api}\n"
                    f"  SBE      {sbe or 'none (spot only)'}\n"
                    f"  demo API key     {keys['apiKey']}\n"
                    f"  demo API secret  {keys['secretKey']}\n"
                    f"  demo Ed25519 API key (for SBE)  {ed25519['apiKey']}\n"
                )
                if not futures:  # how the order commands find the demo account's key
                    sys.stdout.write(
                        "orders, from another terminal:\n"
                        f"  export BINANCE_API_KEY={keys['apiKey']}\n"
                        f"  export BINANCE_API_SECRET={keys['secretKey']}\n"
                        f"  streamer orders --local {urls.rest}\n"
                        f"  streamer order place --local {urls.rest} --symbol "
                        f"{next(iter(exchange.engine.symbols))} --side BUY --type MARKET "
                        "--quantity 0.1\n"
                    )
                sys.stdout.write("Ctrl-C to stop.\n")
            sys.stdout.flush()
            await exchange.serve_until(stop)
    except OSError as exc:  # the address is taken, or cannot be bound here
        print(f"streamer exchange: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streamer.testing.exchange.cli``: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="streamer")
    add_exchange_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["exchange", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
