"""Logging for the commands: the standard ``logging`` module, quiet by default, secrets masked.

The library only logs (``logging.getLogger("streamer....")``) and never configures logging;
the commands do, through :func:`setup_logging`: to stderr (stdout is for tables and JSON),
at WARNING unless ``--log-level`` (or ``$STREAMER_LOG_LEVEL``) says otherwise.

Nothing the library logs holds a secret key or a signature (signed URLs and request payloads are
never logged). As a second line of defence the handler installed here masks anything shaped like
a signature parameter or an API-key header, whoever logged it (aiohttp at DEBUG, say).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import IO

__all__ = ["LEVELS", "RedactingFormatter", "add_logging_args", "setup_logging"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV = "STREAMER_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# signature=..., "signature": "...", X-MBX-APIKEY: ..., secretKey=...
_SECRET = re.compile(
    r"(?i)(signature|x-mbx-apikey|secret[_-]?key|apikey|api_key)"
    r"([\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)"
)


class RedactingFormatter(logging.Formatter):
    """A formatter that masks signature and key values in the final text of every record."""

    def format(self, record: logging.LogRecord) -> str:
        return _SECRET.sub(r"\1\2***", super().format(record))


def _level(text: str) -> str:
    level = text.strip().upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"not a log level: {text!r} (one of {', '.join(LEVELS)})")
    return level


def add_logging_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-level LEVEL`` (absent from the namespace unless given, so a parent parser's
    own ``--log-level`` is not overwritten by this one's default)."""
    parser.add_argument(
        "--log-level",
        type=_level,
        default=argparse.SUPPRESS,
        metavar="LEVEL",
        help=f"log to stderr from LEVEL up ({', '.join(LEVELS)}; default WARNING, or ${ENV})",
    )


def setup_logging(args: argparse.Namespace | None = None, *, stream: IO[str] | None = None) -> int:
    """Configure the root logger from ``args.log_level``, else ``$STREAMER_LOG_LEVEL``, else
    WARNING; one stderr handler with :class:`RedactingFormatter`. The level set is returned."""
    name = getattr(args, "log_level", None) or os.environ.get(ENV) or "WARNING"
    try:
        level = _level(name)
    except argparse.ArgumentTypeError:
        level = "WARNING"  # a bad environment value must not stop the command
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_streamer", False)]:
        root.removeHandler(old)
    handler._streamer = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    number = logging.getLevelName(level)
    root.setLevel(number)
    return int(number)
