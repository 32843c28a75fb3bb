"""The pure parts of the CLI conventions: exit codes by error, the help formatter, the sync
progress line of `streamer book`."""

from __future__ import annotations

import argparse

import aiohttp
import pytest

from streamer import cli, cli_common
from streamer.cli_book import sync_progress
from streamer.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    OrderNotFound,
    StreamerError,
    UnknownSymbol,
)


class _Refused(Exception):
    """Stands for the handshake error aiohttp raises, with its HTTP status."""

    status = 401


def _refused_handshake() -> ConnectError:
    exc = ConnectError("cannot connect to ws://x/sbe: 401")
    exc.__cause__ = _Refused()
    return exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigurationError("bad"), 2),
        (AuthenticationError("key refused", code=-2015), 2),
        (UnknownSymbol("NOPE"), 2),
        (ConnectError("cannot connect"), 3),
        (ConnectionRefusedError(111, "refused"), 3),
        (aiohttp.ClientConnectionError("down"), 3),
        (_refused_handshake(), 2),
        (OrderNotFound("gone", code=-2011), 1),
        (StreamerError("other"), 1),
        (FileNotFoundError(2, "no such file"), 2),
        (KeyboardInterrupt(), 130),
        (ValueError("bug"), 1),
    ],
)
def test_exit_code_by_error(exc: BaseException, code: int) -> None:
    """Each kind of error maps to its documented exit status."""
    assert cli_common.exit_code(exc) == code


def test_help_formatter_keeps_indented_blocks_and_wraps_prose() -> None:
    """Prose is wrapped to the width; an indented block (examples) is kept line for line."""
    text = ("word " * 40) + "\n\nexamples:\n  streamer book   --local URL   BTCUSDT\n  # a comment"
    filled = cli_common.HelpFormatter("p", width=40)._fill_text(text, 40, "")
    prose, block = filled.split("\n\n")
    assert all(len(line) <= 40 for line in prose.splitlines()) and len(prose.splitlines()) > 1
    assert block == "examples:\n  streamer book   --local URL   BTCUSDT\n  # a comment"


def test_internal_errors_are_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """An unexpected exception in a command: one line naming it and --debug, status 1."""

    def broken(_args: argparse.Namespace) -> int:
        raise ValueError("unexpected")

    assert cli_common.run_command("streamer x", broken, argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "streamer x: internal error: ValueError: unexpected (run with --debug for the traceback)"
    ]


def test_examples_reach_only_existing_commands() -> None:
    """Examples are set on the commands that exist; a command not built is simply skipped."""
    parser = cli.build_parser()
    commands = cli_common.subcommands(parser)
    for path in commands.keys() & cli_common.EXAMPLES.keys():
        assert commands[path].epilog and "examples:" in commands[path].epilog
    assert "check" in cli_common.EXAMPLES  # written ahead for a command built elsewhere


def test_sync_progress_until_every_book_synced() -> None:
    """The footer leads with "syncing N/M books…" until all M are synced, then says nothing."""
    books = {"A": {"state": "synced"}, "B": {"state": "syncing"}, "C": {"state": "waiting"}}
    assert sync_progress(books) == "syncing 1/3 books…  "
    assert sync_progress({k: {"state": "synced"} for k in books}) == ""
