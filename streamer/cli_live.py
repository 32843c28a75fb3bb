"""What the live commands (``streamer book``, ``streamer record``) share: where to connect, and
how a session starts, stops and fails.

A session runs until ``--seconds`` pass, SIGINT (Ctrl-C) or SIGTERM, and then exits with status
0; a signal during start-up (a slow first connection) stops it just as cleanly. Errors a person
can fix (an unknown symbol, a refused connection, a bad URL, a file that cannot be written) are
one line on stderr, never a traceback (``--debug`` adds it), with the exit status of
``streamer.cli_common``: 3 when an endpoint cannot be reached, 2 for the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
from collections.abc import Awaitable, Callable, Sequence

from streamer.aio.streamer import Streamer
from streamer.cli_common import error_line, exit_code
from streamer.config import Endpoints
from streamer.errors import ConfigurationError, StreamerError, UnknownSymbol

__all__ = [
    "Session",
    "add_endpoint_args",
    "check_depth",
    "endpoints_from_args",
    "error_line",
    "levels_arg",
    "positive_float",
    "run_session",
    "symbols_from_args",
]

#: The body of a live command: runs with a started Streamer until ``stop`` is set, then returns.
Session = Callable[[Streamer, asyncio.Event], Awaitable[None]]

_PRESETS: dict[str, Callable[[], Endpoints]] = {
    "spot": Endpoints.binance_spot,
    "usdm": Endpoints.usdm,
    "coinm": Endpoints.coinm,
}


# argparse type functions. Each turns every bad value into its own message (an
# ArgumentTypeError): argparse would otherwise say "invalid <function name> value".

#: The deepest book a depth flag accepts: Binance's deepest snapshot (limit 5000).
MAX_DEPTH = 5000


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, intervals)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text!r}")
    return value


def levels_arg(text: str) -> int:
    """A whole number of levels >= 1, unbounded: for outputs that list only the levels a book
    holds (``replay``), where a large number means "all of them"."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of levels >= 1, got {text!r}")
    return value


def check_depth(depth: int) -> None:
    """:class:`ConfigurationError` unless 1 <= depth <= :data:`MAX_DEPTH` (a one-line error
    of the command, rather than argparse's usage text)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ConfigurationError(f"--depth must be from 1 to {MAX_DEPTH} levels, not {depth}")


def add_endpoint_args(parser: argparse.ArgumentParser, *, venues: bool = True) -> None:
    """``--venue`` (unless ``venues`` is false: a spot-only command), and ``--testnet`` or
    ``--local URL`` (default: the real Binance venue)."""
    if venues:
        parser.add_argument(
            "--venue",
            choices=sorted(_PRESETS),
            default="spot",
            help="spot (default), usdm or coinm futures",
        )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--testnet", action="store_true", help="the spot testnet")
    where.add_argument(
        "--local",
        metavar="URL",
        help="the local exchange at URL (the http://127.0.0.1:P that `streamer exchange` prints)",
    )


def endpoints_from_args(args: argparse.Namespace) -> Endpoints:
    """The endpoints ``--venue``/``--testnet``/``--local`` select; ConfigurationError if none."""
    venue = getattr(args, "venue", "spot")  # spot-only commands have no --venue
    if args.local is not None:
        return Endpoints.local(args.local, venue=venue)
    if args.testnet:
        if venue != "spot":
            raise ConfigurationError(
                f"--testnet: there is no {venue} testnet preset; use --local URL or "
                "Endpoints(...) from Python"
            )
        return Endpoints.spot_testnet()
    return _PRESETS[venue]()


def symbols_from_args(values: Sequence[str]) -> list[str]:
    """``BTCUSDT ETHBTC`` and ``BTCUSDT,ETHBTC`` alike, upper-cased, duplicates dropped."""
    found = (s.strip().upper() for v in values for s in v.split(","))
    return list(dict.fromkeys(s for s in found if s))


#: At most this many symbols are looked up one by one to name the unknown ones.
_MAX_PROBES = 20


async def _name_unknown(
    streamer: Streamer, symbols: Sequence[str], exc: UnknownSymbol
) -> BaseException:
    """An error naming which symbols are unknown, when ``exc`` does not say.

    Spot answers -1121 for a whole ``exchangeInfo?symbols=[...]`` request when any one of them
    is unknown; asked one at a time (only on this error path), it names them.
    """
    if exc.symbol is not None or not 1 < len(symbols) <= _MAX_PROBES:
        return exc
    unknown = []
    try:
        async with Streamer(streamer.endpoints) as probe:
            for symbol in symbols:
                try:
                    await probe.rest.exchange_info([symbol])
                except UnknownSymbol:
                    unknown.append(symbol)
    except (StreamerError, OSError):
        return exc  # the lookup itself failed: the first error says enough
    if not unknown:
        return exc
    names = ", ".join(unknown)
    verb = "is" if len(unknown) == 1 else "are"
    return UnknownSymbol(f"{names} {verb} not listed on {streamer.endpoints.rest}")


async def run_session(
    prog: str,
    streamer: Streamer,
    session: Session,
    seconds: float | None,
    symbols: Sequence[str] = (),
) -> int:
    """Start ``streamer``, run ``session`` until a stop, close; the exit status (0, or the
    one :func:`~streamer.cli_common.exit_code` gives the error: 3 could not connect, 2 bad
    settings or credentials).

    ``symbols``: those the streamer was made with, to name the unknown ones if it refuses
    them (spot's exchangeInfo refuses a list without saying which)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()
    starting = True

    def on_stop() -> None:
        stop.set()
        # Start-up awaits the network: cancel it rather than wait for a slow or silent host.
        # The Streamer's task group belongs to this task, so the cancel goes to this task too.
        if starting and main is not None:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_stop)
    timer = loop.call_later(seconds, on_stop) if seconds is not None else None
    try:
        try:
            await streamer.start()
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
            if main is not None:
                main.uncancel()
            await streamer.close()
            return 0
        starting = False
        try:
            await session(streamer, stop)
        finally:
            await streamer.close()
    except UnknownSymbol as exc:
        error_line(prog, await _name_unknown(streamer, symbols, exc))
        return 2
    except (StreamerError, OSError) as exc:
        error_line(prog, exc)
        return exit_code(exc)
    finally:
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return 0
