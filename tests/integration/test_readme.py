"""The house rule "every snippet in the README runs", and the README's command lines match the CLI.

Every ```python block of README.md is written to a file and run as a program in a subprocess
(this tree on ``PYTHONPATH``, a temporary working directory, a bounded wait), and must exit 0
having printed something; some must print a known line (``EXPECTED``).

A block whose first line is ``# needs: streamer exchange ARGS`` documents a separate process that
the reader starts (the python-binance and ccxt how-tos, which show a fixed ``--port 8080``). The
test honours it: it starts ``streamer exchange ARGS`` with the port replaced by 0 (a free one)
and runs the block with ``STREAMER_HOST`` (``127.0.0.1:P``), ``STREAMER_API_KEY`` and
``STREAMER_API_SECRET`` taken from the exchange's ``--json`` line: such a block reads its host
(default ``127.0.0.1:8080``), key and secret from the environment.

Command lines: each ``streamer SUBCOMMAND ...`` line of the ```sh blocks (with its continuation
lines), of the ``# needs:`` lines and of inline code spans names a subcommand and flags; each
subcommand's ``--help`` must list every flag used with it. A ``--flag`` in the prose that is not
tied to a subcommand (a code span that starts with it, "`--seconds S`") must exist in at least
one subcommand's (or the top level's) ``--help``; spans naming other programs are not checked.
``make`` lines are skipped. This catches documentation that drifts from the CLI.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamer import cli, cli_common
from tests.conftest import ROOT
from tests.integration.procs import PIPE, T, exchange_process

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
NEEDS = "# needs: streamer exchange"

#: A line each block must print, keyed by a string only that block contains.
EXPECTED = {
    "await s.subscribe(": "AuditPassed(symbol='ETHUSDT'",
    "books.receive_frame(frame_text)": "True 102 [('57000.10', '0.5'), ('57000.00', '1.25')]",
    "ex.faults.drop_diffs(": "['apiKey', 'secretKey']",
    "books.receive_sbe(": "[('",
    "from binance import": "executionReport NEW",
    "import ccxt.pro": " open",
    "await s.track_orders()": "FILLED stream",
    "binance_exchange, fault": "1 passed",
}


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # of the opening fence, 1-based
    code: str
    name: str  # a test id: the section heading above the block, and the line


def blocks(lang: str) -> list[Block]:
    """The fenced blocks of README.md in language ``lang``, in order."""
    out = []
    for m in FENCE.finditer(TEXT):
        prose = FENCE.sub("", TEXT[: m.start()])  # headings, not "# comments" inside blocks
        heading = re.findall(r"^#+ (.+)$", prose, re.M)[-1]
        line = TEXT.count("\n", 0, m.start()) + 1
        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        if m.group(1) == lang:
            out.append(Block(lang, line, m.group(2), f"{slug}-L{line}"))
    return out


PYTHON = blocks("python")


def test_every_python_block_is_collected() -> None:
    """Each ```python fence of the README is one block here, and each has an expected line."""
    assert len(PYTHON) == TEXT.count("```python\n") >= 6
    for block in PYTHON:
        keys = [key for key in EXPECTED if key in block.code]
        assert len(keys) == 1, f"{block.name}: expected-output keys {keys}"


async def run_block(block: Block, tmp_path: Path, env: dict[str, str]) -> str:
    """Run ``block`` as a program; its stdout (the test fails on a non-zero exit or hang)."""
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        env={**os.environ, **env, "PYTHONPATH": path},
        stdout=PIPE,
        stderr=PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 0, f"{block.name} exited {proc.returncode}:\n{stderr}"
    return stdout


def exchange_args(block: Block) -> list[str] | None:
    """The ``streamer exchange`` arguments a block needs running, on port 0; None if none."""
    first = block.code.splitlines()[0]
    if not first.startswith(NEEDS):
        return None
    args = shlex.split(first.removeprefix(NEEDS))
    if "--port" in args:
        del args[args.index("--port") : args.index("--port") + 2]
    return [a for a in args if a != "--json"] + ["--port", "0"]


@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
async def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    """A ```python block of the README runs to exit status 0 and prints its expected line."""
    args = exchange_args(block)
    if args is None:
        out = await run_block(block, tmp_path, {})
    else:
        async with exchange_process(*args) as urls:
            env = {
                "STREAMER_HOST": urls["rest"].removeprefix("http://"),
                "STREAMER_API_KEY": urls["api_key"],
                "STREAMER_API_SECRET": urls["api_secret"],
            }
            out = await run_block(block, tmp_path, env)
    (expected,) = [line for key, line in EXPECTED.items() if key in block.code]
    assert expected in out, f"{block.name} printed:\n{out}"


# -- command lines ----------------------------------------------------------------------------


def command_lines() -> list[str]:
    """Every ``streamer ...`` command of the README: sh blocks (continuations joined, comments
    and ``make`` lines dropped), ``# needs:`` lines of python blocks, and inline code spans."""
    lines: list[str] = []
    for block in blocks("sh"):
        for raw in block.code.splitlines():
            line = re.sub(r"\s#.*$", "", raw).rstrip()
            if line.startswith("streamer "):
                lines.append(line)
            elif line.startswith(" ") and lines and line.strip().startswith("["):
                lines[-1] += " " + line.strip()  # an option list continued on the next line
    lines += [b.code.splitlines()[0].removeprefix("# needs: ") for b in PYTHON]
    lines += re.findall(r"`(streamer [^`]+)`", TEXT)
    return [line for line in lines if line.startswith("streamer ")]


def uses() -> dict[str, set[str]]:
    """Subcommand (its path: ``book``, ``order place``) -> the flags the README uses with it."""
    paths = set(cli_common.subcommands(cli.build_parser()))
    out: dict[str, set[str]] = {}
    for line in command_lines():
        words = line.split()[1:]
        sub = next((" ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in paths), "")
        if not sub and words and not words[0].startswith("-"):
            sub = words[0]  # not a command: its --help fails and says so
        out.setdefault(sub, set()).update(FLAG.findall(line))
    return out


async def help_flags(sub: str) -> set[str]:
    """The flags ``streamer SUB --help`` lists (the top level's for ``sub == ""``)."""
    args = [*sub.split(), "--help"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamer",
        *args,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        stdout=PIPE,
        stderr=PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode == 0, f"streamer {sub} --help: {err.decode()}"
    return set(FLAG.findall(out.decode()))


async def test_readme_command_lines_match_the_cli() -> None:
    """Every flag the README uses with a subcommand is in that subcommand's --help."""
    used = uses()
    assert {"demo", "replay", "exchange", "book", "record"} <= used.keys()
    subs = sorted(used.keys() | {""})
    listed = dict(zip(subs, await asyncio.gather(*map(help_flags, subs)), strict=True))
    missing = {
        sub: sorted(flags - listed[sub]) for sub, flags in used.items() if flags - listed[sub]
    }
    assert not missing, f"flags the README uses that --help does not list: {missing}"
    # A code span of the prose that starts with a flag ("`--seconds S`") names one of ours;
    # spans naming another program ("`mypy --strict`") are not checked.
    spans = re.findall(r"`([^`\n]+)`", FENCE.sub("", TEXT))
    bare = {flag for span in spans if span.startswith("--") for flag in FLAG.findall(span)}
    unknown = sorted(bare - set().union(*listed.values()))
    assert not unknown, f"flags in the README that no streamer --help lists: {unknown}"
