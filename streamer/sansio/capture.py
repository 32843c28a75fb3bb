"""Capture format v1 (``docs/capture-format.md``): JSON Lines, a header, then records.

A capture is what a connector received, in order, byte for byte. Readers ignore unknown fields and
records of unknown ``kind``; a line that is not a JSON object is an error naming its line number,
because a capture is a file we wrote, and silently skipping part of it would change the replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "CaptureError",
    "CaptureRecord",
    "ReadStats",
    "format_header",
    "format_record",
    "read_capture",
]

FORMAT_VERSION = 1
KINDS = frozenset({"ws", "rest"})


class CaptureError(ValueError):
    """The file is not a v1 capture, or a line of it is broken."""


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    ts: float
    kind: str  # "ws" or "rest"
    url: str
    data: str
    status: int | None = None  # REST only
    venue: str | None = None  # from the header's optional "venue"; else the URL tells


@dataclass(slots=True)
class ReadStats:
    """What :func:`read_capture` read, for a reader to report: records yielded, records of
    unknown kind skipped, and the number of a cut-off last line it skipped (or ``None``)."""

    records: int = 0
    unknown_kinds: int = 0
    truncated_line: int | None = None


def format_header(source: str, *, venue: str | None = None) -> bytes:
    """The first line; ``venue`` (spot, usdm, coinm) is for URLs that do not tell it, such as
    the local exchange's."""
    header: dict[str, Any] = {"capture": FORMAT_VERSION, "source": source}
    if venue is not None:
        header["venue"] = venue
    return orjson.dumps(header) + b"\n"


def format_record(record: CaptureRecord) -> bytes:
    out: dict[str, Any] = {"ts": record.ts, "kind": record.kind, "url": record.url}
    if record.status is not None:
        out["status"] = record.status
    out["data"] = record.data
    return orjson.dumps(out) + b"\n"


def _parse(line: bytes | str, number: int) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CaptureError(f"line {number}: not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise CaptureError(f"line {number}: not a JSON object")
    return obj


def read_capture(
    lines: Iterable[bytes | str], stats: ReadStats | None = None
) -> Iterator[CaptureRecord]:
    """Yield the records of a capture; unknown kinds are skipped, broken lines raise.

    A last line without its newline that does not parse is the trace of a writer killed
    mid-write: it is skipped (and its number kept in ``stats``), and every complete line
    before it replays.
    """
    if stats is None:
        stats = ReadStats()
    it = iter(lines)
    header = _parse(next(it, b""), 1)
    if header.get("capture") != FORMAT_VERSION:
        raise CaptureError(f"line 1: not a capture v{FORMAT_VERSION} header")
    venue = header.get("venue")
    venue = venue if isinstance(venue, str) else None
    for number, line in enumerate(it, start=2):
        if not line.strip():
            continue
        try:
            obj = _parse(line, number)
        except CaptureError:
            complete = line.endswith(b"\n") if isinstance(line, bytes) else line.endswith("\n")
            if complete:
                raise
            stats.truncated_line = number  # a writer killed mid-line left this last line
            return
        kind = obj.get("kind")
        if kind not in KINDS:
            stats.unknown_kinds += 1
            continue
        ts, url, data, status = obj.get("ts"), obj.get("url"), obj.get("data"), obj.get("status")
        if not isinstance(ts, int | float) or not isinstance(url, str) or not isinstance(data, str):
            raise CaptureError(f"line {number}: record needs numeric ts and string url and data")
        if kind == "rest" and not isinstance(status, int):
            raise CaptureError(f"line {number}: rest record needs an integer status")
        stats.records += 1
        yield CaptureRecord(float(ts), kind, url, data, status if kind == "rest" else None, venue)
