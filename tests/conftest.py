"""Shared pytest configuration: where the real recorded data lives."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
BUNDLED = ROOT / "streamer" / "data"

#: Real captures (capture format v1) and the venue each one records.
CAPTURES = {
    BUNDLED / "spot-4sym-2021-10-12.jsonl": "spot",
    DATA / "spot-us-4sym-2021-10-12.jsonl": "spot",
    DATA / "usdm-4sym-2021-07-22.jsonl": "usdm",
}
