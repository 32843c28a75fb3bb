"""What a new user ran into (issue 9, item 7), each pinned through the real entry point: bad
flag values are one clear error and status 2 before anything is served, unknown symbols are
named, and ``replay`` says what it could not replay instead of printing empty books."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from streamer import cli
from tests.conftest import BUNDLED
from tests.integration.procs import exchange_process, finish, streamer

CAPTURE = BUNDLED / "spot-4sym-2021-10-12.jsonl"
SYMBOLS = ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]  # the bundled capture's


def assert_usage_error(code: int, out: str, err: str, *needles: str) -> None:
    """Status 2, nothing on stdout, no traceback, no internal name; the error line says it."""
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert "invalid _" not in err and "positive_float" not in err
    last = err.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "99999", "65535"),
        ("--port", "-1", "65535"),
        ("--rate", "nan", "finite"),
        ("--rate", "inf", "finite"),
        ("--rate", "-5", ">= 0"),
        ("--seed", "x", "whole number"),
        ("--weight-limit", "0", ">= 1"),
        ("--firehose-rate", "inf", "finite"),
        ("--firehose-rate", "nan", "finite"),
    ],
)
async def test_exchange_refuses_a_bad_value_before_serving(
    flag: str, value: str, says: str
) -> None:
    """`exchange` with an out-of-range port or a non-finite rate is one error line naming the
    flag, status 2, and no endpoints line is printed first."""
    code, out, err = await finish(await streamer("exchange", f"{flag}={value}"))
    assert_usage_error(code, out, err, flag, says)


async def test_exchange_on_a_taken_port_is_one_line() -> None:
    """`exchange --port P` with P in use says so in one line, status 2, no traceback."""
    async with exchange_process() as info:
        port = info["rest"].rsplit(":", 1)[1]
        code, out, err = await finish(await streamer("exchange", "--port", port))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot serve on 127.0.0.1:{port}" in err


def test_no_flag_type_error_names_a_function() -> None:
    """Every typed flag of every command turns a bad value into its own message
    (ArgumentTypeError), so argparse never prints a function's name ('invalid _positive')."""
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, command in sub.choices.items():
        for action in command._actions:
            kind = action.type
            if kind is None or kind in (int, float, str) or not callable(kind):
                continue  # argparse names these "int", "float": public words
            for bad in ("x", "nan", "-1e999"):
                try:
                    kind(bad)
                except argparse.ArgumentTypeError:
                    continue
                except ValueError as exc:
                    raise AssertionError(f"{name} {action.dest}: {bad!r} leaks {exc!r}") from exc
            checked += 1
    assert checked >= 8  # replay/book/record/exchange depth, seconds, port, rate, ...


@pytest.mark.parametrize(
    "args",
    [
        ["replay", str(CAPTURE), "--depth", "x"],
        ["replay", str(CAPTURE), "--depth", "0"],
        ["book", "BTCUSDT", "--seconds", "x"],
        ["book", "BTCUSDT", "--audit-interval", "nan"],
        ["record", "BTCUSDT", "--out", "never.jsonl", "--seconds", "x"],
    ],
)
async def test_bad_flag_values_name_the_flag_not_a_function(args: list[str]) -> None:
    """A bad value of a typed flag is one public-worded error naming the flag, status 2."""
    code, out, err = await finish(await streamer(*args))
    assert_usage_error(code, out, err, args[-2], "expected")


async def test_a_huge_book_depth_is_refused_with_the_bound() -> None:
    """`book --depth` beyond Binance's deepest book (5000) is one line saying the bound."""
    code, out, err = await finish(await streamer("book", "BTCUSDT", "--depth", "100000"))
    assert_usage_error(code, out, err, "--depth", "from 1 to 5000")
    assert err.count("\n") == 1


async def test_a_huge_replay_depth_lists_only_the_levels_held() -> None:
    """`replay --depth 100000` prints each book's levels, no more: clipped, never padded."""
    code, out, err = await finish(await streamer("replay", str(CAPTURE), "--depth", "100000"))
    assert code == 0, err
    books = json.loads(out)["books"]
    assert set(books) == set(SYMBOLS)
    for book in books.values():
        assert len(book["bids"]) == book["bid_levels"] and len(book["asks"]) == book["ask_levels"]


@pytest.mark.parametrize("command", ["book", "record"])
async def test_the_unknown_symbol_of_a_list_is_named(command: str, tmp_path: Path) -> None:
    """`--symbols btcusdt,FOO`: the error names FOO alone as not listed, status 2."""
    async with exchange_process("--symbols", "BTCUSDT", "ETHBTC") as info:
        extra = ["--out", str(tmp_path / "c.jsonl")] if command == "record" else ["--json"]
        proc = await streamer(
            command, "--local", info["rest"], "--seconds", "5", *extra, "btcusdt,FOO,ethbtc"
        )
        code, _out, err = await finish(proc)
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line == f"streamer {command}: FOO is not listed on {info['rest']}"


async def test_replay_of_a_symbol_not_in_the_capture_says_so() -> None:
    """`replay --symbol NOPE` fails naming NOPE and the capture's symbols, not an empty book."""
    code, out, err = await finish(await streamer("replay", str(CAPTURE), "--symbol", "NOPE"))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"streamer replay: NOPE is not in the capture (its symbols: {', '.join(SYMBOLS)})"
    )


async def test_replay_of_one_symbol_in_the_capture() -> None:
    """`replay --symbol` (any case) of a symbol the capture holds prints that book alone."""
    code, out, err = await finish(await streamer("replay", str(CAPTURE), "--symbol", "nknusdt"))
    assert code == 0, err
    result = json.loads(out)
    assert list(result["books"]) == ["NKNUSDT"]
    assert result["books"]["NKNUSDT"]["state"] == "synced"
    assert result["malformed"] == 0 and result["truncated_lines"] == 0


async def test_a_capture_of_malformed_frames_reports_the_count(tmp_path: Path) -> None:
    """Every frame malformed: the JSON and stderr say how many were rejected; status 1."""
    url = "wss://stream.binance.com:9443/ws/btcusdt@depth@100ms"
    lines = [json.dumps({"capture": 1, "source": "test"})]
    for text in ("garbage", '{"e": "depthUpdate"}', "[1, 2"):
        lines.append(json.dumps({"ts": 1.0, "kind": "ws", "url": url, "data": text}))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = await finish(await streamer("replay", str(path)))
    assert code == 1
    assert json.loads(out) == {"books": {}, "malformed": 3, "truncated_lines": 0}
    assert "3 of 3 records rejected as malformed" in err
    assert "no book" in err and "Traceback" not in err


async def test_a_capture_cut_mid_line_replays_its_good_lines(tmp_path: Path) -> None:
    """A capture cut inside a line (a killed recorder): the books of the complete lines are
    printed, the cut line is skipped and counted."""
    data = CAPTURE.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 40  # 40 bytes into a line past the middle
    whole = data[: data.rindex(b"\n", 0, cut) + 1]
    (tmp_path / "cut.jsonl").write_bytes(data[:cut])
    (tmp_path / "whole.jsonl").write_bytes(whole)
    code, out, err = await finish(await streamer("replay", str(tmp_path / "cut.jsonl")))
    assert code == 0, err
    _, expected, _ = await finish(await streamer("replay", str(tmp_path / "whole.jsonl")))
    got = json.loads(out)
    assert got["books"] == json.loads(expected)["books"]
    assert any(book["state"] == "synced" for book in got["books"].values())
    assert got["truncated_lines"] == 1
    line = whole.count(b"\n") + 1
    assert f"skipped line {line}, cut off mid-line" in err
