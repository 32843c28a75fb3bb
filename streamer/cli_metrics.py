"""``--metrics-port`` for the live commands: a Prometheus endpoint beside the session.

``add_metrics_args(parser)`` adds the flags; ``with_metrics(prog, args, session)`` wraps a
:data:`~streamer.cli_live.Session` so that, with ``--metrics-port``, ``GET /metrics`` is served
(:func:`streamer.metrics.serve_metrics`) while it runs, and the bound URL is printed on stderr
first (``--metrics-port 0`` picks a free port: the line says which).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from streamer.aio.streamer import Streamer
from streamer.cli_live import Session

__all__ = ["add_metrics_args", "port_number", "with_metrics"]


def port_number(text: str) -> int:
    """A TCP port for argparse: an integer in 0..65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, not {value}")
    return value


def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (0: a free port, printed "
        "on stderr)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address the metrics endpoint listens on (default 127.0.0.1)",
    )


def with_metrics(prog: str, args: argparse.Namespace, session: Session) -> Session:
    """``session``, serving metrics alongside when ``args.metrics_port`` is set."""
    port: int | None = getattr(args, "metrics_port", None)
    if port is None:
        return session
    host: str = getattr(args, "metrics_host", "127.0.0.1")

    async def metered(s: Streamer, stop: asyncio.Event) -> None:
        from streamer.metrics import serve_metrics  # the client library only when asked for

        async with serve_metrics(s, port, host) as server:
            print(f"{prog}: metrics on {server.url}", file=sys.stderr, flush=True)
            await session(s, stop)

    return metered
