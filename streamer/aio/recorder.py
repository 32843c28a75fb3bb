"""``CaptureRecorder``: write what a live ``Streamer`` feeds its books as a capture (format v1).

Frames are recorded when they are fed to the sync machines, in that order, and snapshots when
they are delivered to them, so that ``streamer replay`` of the file rebuilds the very books the
live session held: a frame a rotation ignored, or a snapshot answering a superseded request, is
not recorded, since the live core did not use it either.

Lines are buffered and flushed every ``flush_interval`` seconds and on close; a recorder killed
mid-write leaves at most one incomplete last line, which readers skip.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO

from streamer.sansio.capture import CaptureRecord, format_header, format_record

__all__ = ["CaptureRecorder"]


class CaptureRecorder:
    def __init__(
        self, path: str | Path, *, source: str = "streamer record", venue: str | None = None
    ) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("wb")
        self._file.write(format_header(source, venue=venue))
        self.records = 0

    def ws(self, url: str, data: bytes) -> None:
        self._write(CaptureRecord(time.time(), "ws", url, data.decode("utf-8", "replace")))

    def rest(self, url: str, status: int, body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        self._write(CaptureRecord(time.time(), "rest", url, text, status))

    def _write(self, record: CaptureRecord) -> None:
        if not self._file.closed:
            self._file.write(format_record(record))
            self.records += 1

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
