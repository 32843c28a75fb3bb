"""``streamer demo``: the live demo through its real entry point (a subprocess): its summary
is checked, a plain run prints one, and bad flags are one line and status 2."""

from __future__ import annotations

import json
import signal

import pytest

from tests.integration.procs import finish, lines_until, streamer

# The shortest run that shows everything (books, audits, the drift caught, fills, a stop) on a
# busy 2-core machine; the plan scales with --duration.
DURATION = "8"


async def test_timed_json_run_shows_everything_and_ends_exact() -> None:
    """`demo --duration --json` exits 0 with one JSON object: every book synced, audits passed,
    the injected drift caught, orders filled, a stop triggered, no duplicate order, and every
    book and order equal to the exchange's truth at the end."""
    code, out, err = await finish(await streamer("demo", "--duration", DURATION, "--json"))
    assert code == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == 1, out
    summary = json.loads(lines[0])
    assert summary["symbols"] == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert summary["books_synced"] == 3
    assert summary["audits_passed"] > 0
    assert summary["drifts_caught"] >= 1
    assert summary["resyncs_by_reason"].get("drift", 0) >= 1
    assert summary["resyncs_by_reason"].get("gap", 0) >= 1  # the dropped and delayed diffs
    assert summary["reconnects"] >= 1  # the dropped connection
    assert summary["orders_placed"] > 0 and summary["fills"] > 0
    assert summary["stops_triggered"] >= 1
    assert summary["duplicate_orders"] == 0
    assert summary["order_mismatches"] == 0
    assert summary["violations"] == 0
    assert set(summary["faults_injected"]) >= {
        "corrupt_level", "drop_diff", "duplicate_diff", "delay_diff", "stale_snapshot",
        "disconnect",
    }  # fmt: skip
    assert summary["faults_not_fired"] == 0


async def test_plain_run_prints_the_screen_and_the_summary() -> None:
    """Without --json a short run exits 0 by itself, shows the books table and prints the
    summary (written for a person, not JSON)."""
    code, out, err = await finish(await streamer("demo", "--duration", "3", "--depth", "2"))
    assert code == 0, err
    assert "Traceback" not in err
    assert "streamer demo: summary" in out
    assert "violations" in out and "books_synced" in out
    for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
        assert symbol in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--duration", "-1"], "--duration"),
        (["--duration", "nan"], "--duration"),
        (["--duration", "soon"], "--duration"),
        (["--symbols", "NOPE"], "NOPE"),
        (["--symbols", "btcusdt,FOO"], "FOO"),
        (["--depth", "100000"], "--depth"),
    ],
)
async def test_bad_flags_are_one_line_and_status_2(flags: list[str], words: str) -> None:
    """A bad --duration, an unknown symbol or an absurd --depth: one line naming it on stderr,
    nothing on stdout, status 2, before anything starts."""
    code, out, err = await finish(await streamer("demo", *flags))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("streamer demo: ") and words in err


async def test_ctrl_c_stops_an_untimed_run_with_the_summary() -> None:
    """Without --duration it runs until SIGINT (Ctrl-C), then checks the books against the
    truth, prints the summary and exits 0."""
    proc = await streamer("demo", "--json")
    assert proc.stderr is not None
    seen: list[str] = []
    await lines_until(proc.stderr, lambda lines: any("running" in x for x in lines), seen)
    proc.send_signal(signal.SIGINT)
    code, out, err = await finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["books_synced"] == 3
    assert summary["violations"] == 0 and summary["duplicate_orders"] == 0
