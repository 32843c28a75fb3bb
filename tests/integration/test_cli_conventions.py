"""The conventions every ``streamer`` command follows, through the real entry point: ``--help``
with examples, one-line errors with meaningful exit codes (a traceback only with ``--debug``),
and configuration from flags > environment > TOML file, shown by ``config show`` with secrets
masked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from streamer import cli, cli_common
from tests.integration.procs import closed_port, exchange_process, finish, streamer

COMMANDS = sorted(cli_common.subcommands(cli.build_parser()))
SECRET = "s3cr3t-VALUE-never-shown-4f1c"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment without any streamer or Binance settings, and a HOME with no config."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMER_", "BINANCE_"))}
    return {**base, "HOME": str(home), **extra}


async def run(home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """``streamer ARGS`` in ``home`` (its HOME and working directory), with ``env`` added."""
    proc = await streamer(*args, env=clean_env(home, **env), cwd=str(home))
    return await finish(proc)


def one_line(err: str) -> str:
    """``err`` is exactly one line, with no traceback; that line."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- --help ----------------------------------------------------------------------------------


async def test_top_level_help_lists_examples_exit_codes_and_the_config_file(
    tmp_path: Path,
) -> None:
    """`streamer --help` exits 0 with examples, the exit code table and the config file."""
    code, out, err = await run(tmp_path, "--help")
    assert code == 0, err
    assert "examples:" in out and "streamer book --local" in out
    for status in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"\n  {status}" in out
    assert "~/.config/streamer/config.toml" in out and "STREAMER_CONFIG" in out


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_help_exits_0_with_an_example(tmp_path: Path, command: str) -> None:
    """`streamer CMD --help` exits 0 and shows at least one example invoking that command."""
    code, out, err = await run(tmp_path, *command.split(), "--help")
    assert code == 0, err
    examples = out[out.index("examples:") :]
    assert f"  streamer {command.split()[0]}" in examples, out


# -- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "prog"),
    [
        (["--nope"], "streamer"),
        (["book", "--nope", "BTCUSDT"], "streamer book"),
        (["config", "show", "--bogus"], "streamer config show"),
        (["--log-level", "LOUD", "config", "show"], "streamer"),
        (["book", "--depth", "x", "BTCUSDT"], "streamer book"),
        ([], "streamer"),
    ],
)
async def test_a_usage_error_is_one_line_naming_the_command_and_status_2(
    tmp_path: Path, args: list[str], prog: str
) -> None:
    """An unknown flag, a bad value or a missing command: one line from that command, 2."""
    code, out, err = await run(tmp_path, *args)
    assert code == 2
    assert out == ""
    assert one_line(err).startswith(f"{prog}: "), err


# -- a bad config file -----------------------------------------------------------------------

BAD_FILES = [
    ("log_level = \n", "not valid TOML"),
    ("[book]\ndeph = 3\n", "unknown key 'deph' in [book]"),
    ("colour = 'blue'\n", "unknown key 'colour'"),
    ("[book]\ndepth = 'ten'\n", "[book] depth: expected an integer"),
    ("[book]\ndepth = 0\n", "[book] depth: expected an integer of at least 1"),
    ("metrics_port = 'x'\n", "metrics_port: expected an integer"),
    ("[endpoints]\nlocal = 'ftp://x'\n", "[endpoints] local: expected an http(s):// URL"),
    ("[endpoints]\ntestnet = 'yes'\n", "[endpoints] testnet: expected true or false"),
    ("book = 3\n", "[book] must be a table"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_FILES)
async def test_a_bad_config_file_is_one_line_naming_file_key_and_type(
    tmp_path: Path, text: str, problem: str
) -> None:
    """Invalid TOML, an unknown key, a wrong type or value: one line naming the file and the
    problem, status 2, before any connection is tried."""
    path = write(tmp_path / "bad.toml", text)
    code, _out, err = await run(
        tmp_path, "--config", str(path), "book", "--local", "http://127.0.0.1:9", "BTCUSDT"
    )
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"streamer book: config file {path}: "), line
    assert problem in line, line


async def test_an_unreadable_or_missing_config_file_is_one_line_and_status_2(
    tmp_path: Path,
) -> None:
    """A config path that cannot be read (a directory) or does not exist, by --config or by
    $STREAMER_CONFIG: one line naming it, status 2."""
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["--config", str(tmp_path)], {}, "cannot read it"),
        (["--config", str(tmp_path / "nope.toml")], {}, "no such file"),
        ([], {"STREAMER_CONFIG": str(tmp_path / "gone.toml")}, "no such file"),
    ]
    for flags, env, problem in cases:
        code, _out, err = await run(tmp_path, *flags, "config", "show", **env)
        assert code == 2
        line = one_line(err)
        assert line.startswith("streamer config show: config file ") and problem in line, line


async def test_a_bad_environment_variable_is_one_line_naming_it(tmp_path: Path) -> None:
    """A setting's environment variable that does not parse: one line naming it, status 2."""
    code, _out, err = await run(tmp_path, "config", "show", STREAMER_BOOK_DEPTH="ten")
    assert code == 2
    assert "$STREAMER_BOOK_DEPTH: expected an integer" in one_line(err)


async def test_a_secret_of_the_wrong_type_is_not_quoted(tmp_path: Path) -> None:
    """A wrong-typed secret in the file is reported by its type, never its value."""
    path = write(tmp_path / "c.toml", "[credentials]\napi_secret = 123456789\n")
    code, _out, err = await run(tmp_path, "--config", str(path), "config", "show")
    assert code == 2
    line = one_line(err)
    assert "api_secret: expected a string, got an integer" in line and "123456789" not in line


# -- precedence and `config show` ------------------------------------------------------------


async def show(home: Path, *args: str, after: tuple[str, ...] = (), **env: str) -> dict[str, Any]:
    """`streamer ARGS config show --json AFTER`, parsed."""
    code, out, err = await run(home, *args, "config", "show", "--json", *after, **env)
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out)
    return shown


async def test_flags_beat_environment_beat_the_file(tmp_path: Path) -> None:
    """Each key's value and source: the file's, then the environment's over it, then a flag's
    over both; --testnet as a flag also overrides a local URL from the file."""
    path = write(
        tmp_path / "c.toml",
        "log_level = 'DEBUG'\n[endpoints]\nlocal = 'http://file:1'\n[book]\ndepth = 7\n",
    )
    env = {
        "STREAMER_LOG_LEVEL": "info",
        "STREAMER_LOCAL": "http://env:2",
        "STREAMER_BOOK_DEPTH": "8",
    }
    flags = ["--log-level", "ERROR"]

    def picked(shown: dict[str, Any]) -> dict[str, tuple[Any, str]]:
        keys = ("log_level", "endpoints.local", "book.depth")
        return {k: (shown["settings"][k]["value"], shown["settings"][k]["source"]) for k in keys}

    file_only = await show(tmp_path, "--config", str(path))
    assert file_only["config_file"] == str(path) and file_only["config_file_source"] == "flag"
    assert picked(file_only) == {
        "log_level": ("DEBUG", "file"), "endpoints.local": ("http://file:1", "file"),
        "book.depth": (7, "file"),
    }  # fmt: skip
    with_env = await show(tmp_path, "--config", str(path), **env)
    assert picked(with_env) == {
        "log_level": ("INFO", "env"), "endpoints.local": ("http://env:2", "env"),
        "book.depth": (8, "env"),
    }  # fmt: skip
    with_flags = await show(
        tmp_path, "--config", str(path), *flags, after=("--local", "http://f:3"), **env
    )
    assert picked(with_flags) == {
        "log_level": ("ERROR", "flag"), "endpoints.local": ("http://f:3", "flag"),
        "book.depth": (8, "env"),
    }  # fmt: skip
    testnet = await show(tmp_path, "--config", str(path), after=("--testnet",))
    settings = testnet["settings"]
    assert settings["endpoints.testnet"] == {"value": True, "source": "flag"}
    assert settings["endpoints.local"] == {"value": None, "source": "flag"}
    # $STREAMER_CONFIG names the file when --config does not; nothing set: the defaults
    by_env = await show(tmp_path, STREAMER_CONFIG=str(path))
    assert by_env["config_file_source"] == "env" and picked(by_env)["book.depth"] == (7, "file")
    nothing = await show(tmp_path)
    assert nothing["config_file"] is None
    assert picked(nothing) == {
        "log_level": ("WARNING", "default"), "endpoints.local": (None, "default"),
        "book.depth": (10, "default"),
    }  # fmt: skip


async def test_the_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    """~/.config/streamer/config.toml is read when neither --config nor $STREAMER_CONFIG say."""
    folder = tmp_path / ".config" / "streamer"
    folder.mkdir(parents=True)
    write(folder / "config.toml", "[orders]\nreconcile_interval = 5\n")
    shown = await show(tmp_path)
    assert shown["config_file_source"] == "default"
    assert shown["settings"]["orders.reconcile_interval"] == {"value": 5.0, "source": "file"}


async def test_the_file_reaches_a_command(tmp_path: Path) -> None:
    """A command without --local uses the file's endpoint (exit 3 naming it), and --local on
    the command line wins over it."""
    unreachable = f"http://127.0.0.1:{closed_port()}"
    path = write(tmp_path / "c.toml", f"[endpoints]\nlocal = '{unreachable}'\n")
    code, _out, err = await run(tmp_path, "--config", str(path), "book", "BTCUSDT")
    assert code == 3 and unreachable in one_line(err)
    other = f"http://127.0.0.1:{closed_port()}"
    code, _out, err = await run(tmp_path, "--config", str(path), "book", "--local", other, "X")
    line = one_line(err)
    assert code == 3 and other in line and unreachable not in line


async def test_config_show_masks_secrets(tmp_path: Path) -> None:
    """`config show` (text and JSON) shows an API key's first 4 characters and never a secret,
    from the file or from the environment."""
    key = "AbCdEfGhIjKlMnOp"
    path = write(
        tmp_path / "c.toml", f"[credentials]\napi_key = '{key}'\napi_secret = '{SECRET}'\n"
    )
    for env in ({}, {"BINANCE_API_SECRET": SECRET + "-env"}):
        for fmt in ([], ["--json"]):
            code, out, err = await run(
                tmp_path, "--config", str(path), "config", "show", *fmt, **env
            )
            assert code == 0, err
            assert SECRET not in out + err and key not in out + err
            assert "AbCd…" in out and "<hidden>" in out
    shown = await show(tmp_path, "--config", str(path), BINANCE_API_SECRET="x" * 20)
    assert shown["settings"]["credentials.api_secret"] == {"value": "<hidden>", "source": "env"}
    assert shown["settings"]["credentials.api_key"] == {"value": "AbCd…", "source": "file"}


# -- credentials and endpoints ---------------------------------------------------------------


async def test_missing_credentials_are_one_line_and_status_2(tmp_path: Path) -> None:
    """A command that needs a key (`book --sbe`) without one: one line naming the variable,
    status 2, before any connection."""
    code, out, err = await run(tmp_path, "book", "--sbe", "--local", "http://127.0.0.1:9", "X")
    assert code == 2 and out == ""
    line = one_line(err)
    assert line.startswith("streamer book: ") and "BINANCE_API_KEY" in line


async def test_wrong_credentials_are_one_line_and_status_2(tmp_path: Path) -> None:
    """A key the exchange does not know: one line, status 2 (a credentials error), no
    traceback; the key from the config file is the one used, and a known one works."""
    async with exchange_process("--symbols", "BTCUSDT") as info:
        url = info["rest"]
        code, out, err = await run(
            tmp_path, "book", "--sbe", "--json", "--seconds", "30", "--local", url, "BTCUSDT",
            BINANCE_API_KEY="not-a-key-the-exchange-knows",
        )  # fmt: skip
        assert code == 2 and out == ""
        assert one_line(err).startswith("streamer book: ") and "401" in err
        path = write(tmp_path / "c.toml", f"[credentials]\napi_key = '{info['ed25519_api_key']}'\n")
        code, out, err = await run(
            tmp_path, "--config", str(path), "book", "--sbe", "--json", "--seconds", "2",
            "--local", url, "BTCUSDT",
        )  # fmt: skip
    assert code == 0, err
    assert any(json.loads(line)["type"] == "book" for line in out.splitlines())


@pytest.mark.parametrize("command", [["book"], ["record", "--out", "capture.jsonl"]])
async def test_an_unreachable_endpoint_is_one_line_and_status_3(
    tmp_path: Path, command: list[str]
) -> None:
    """Nothing listens at the endpoint: one line saying it cannot connect, status 3."""
    code, _out, err = await run(tmp_path, *command, "--local", "http://127.0.0.1:9", "BTCUSDT")
    assert code == 3
    line = one_line(err)
    assert line.startswith(f"streamer {command[0]}: ") and "cannot connect" in line


@pytest.mark.parametrize("where", ["before", "after"])
async def test_debug_shows_the_traceback(tmp_path: Path, where: str) -> None:
    """--debug (before or after the subcommand) prints the traceback, then the same one line."""
    args = ["book", "--local", "http://127.0.0.1:9", "BTCUSDT"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    code, _out, err = await run(tmp_path, *args)
    assert code == 3
    assert err.startswith("Traceback (most recent call last):")
    assert "ConnectError" in err
    assert err.splitlines()[-1].startswith("streamer book: ")
