"""Runs the steps of ``streamer check`` in order: each bounded by a timeout, timed, judged.

A step is an async function returning a one-line detail (pass), raising
:class:`~streamer.check.sanity.CheckFailed` or any :class:`~streamer.errors.StreamerError`
(fail, with its message), ``TimeoutError`` past its bound (fail), or :class:`Skip` (skipped,
with the reason: not a failure). A step whose ``needs`` include one that failed, or that was
skipped because of a failure, is skipped naming it; a need left out on purpose (``--market-only``
/ ``--trading-only``, no credentials) does not hold a step back: it fetches what it needs.

Results go to a writer as they come: a line per step for a person, or one JSON object per
line (``step``, ``ok``, ``ms``, ``detail``, and ``skipped``: true with ``ok`` and ``ms`` null).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from streamer.check.sanity import CheckFailed
from streamer.errors import StreamerError

__all__ = ["Result", "Runner", "Skip", "Step"]


class Skip(Exception):
    """Raised by a step that has nothing to check (the message says why)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One check: its name, its body, the steps it depends on."""

    name: str
    run: Callable[[], Awaitable[str]]
    needs: tuple[str, ...] = ()
    #: Set when the step is left out on purpose: the reason it is skipped.
    excluded: str | None = None
    #: What did not come when the step times out (default: an answer).
    awaits: str = "no answer"


@dataclass(frozen=True, slots=True)
class Result:
    step: str
    ok: bool | None  # None: skipped
    ms: float | None
    detail: str
    #: Skipped because a step it needs failed (so its own need-ers are skipped too).
    blocked: bool = False

    @property
    def skipped(self) -> bool:
        return self.ok is None

    def json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"step": self.step, "ok": self.ok, "ms": self.ms,
                                "detail": self.detail}  # fmt: skip
        if self.skipped:
            line["skipped"] = True
        return line

    def text(self, width: int) -> str:
        mark = "skip" if self.ok is None else "ok" if self.ok else "FAIL"
        ms = "" if self.ms is None else f"{self.ms:.0f} ms"
        return f"{mark:>4}  {self.step:<{width}}  {ms:>8}  {self.detail}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Runner:
    """Runs steps one after the other and writes each result at once."""

    def __init__(self, timeout: float, out: IO[str], json: bool) -> None:
        self.timeout = timeout
        self.out = out
        self.json = json
        self.results: dict[str, Result] = {}
        self._width = 0

    async def run_all(self, steps: Sequence[Step]) -> list[Result]:
        self._width = max((len(s.name) for s in steps), default=0)
        for step in steps:
            self._write(await self._run(step))
        return list(self.results.values())

    async def _run(self, step: Step) -> Result:
        blockers = [n for n in step.needs if n in self.results and self._blocks(n)]
        if step.excluded is not None:  # the reason it was left out says more than a blocker
            result = Result(step.name, None, None, step.excluded)
        elif blockers:
            result = Result(step.name, None, None, f"needs {', '.join(blockers)}", blocked=True)
        else:
            result = await self._timed(step)
        self.results[step.name] = result
        return result

    def _blocks(self, name: str) -> bool:
        result = self.results[name]
        return result.ok is False or result.blocked

    async def _timed(self, step: Step) -> Result:
        started = time.perf_counter()

        def ms() -> float:
            return round((time.perf_counter() - started) * 1000, 1)

        try:
            async with asyncio.timeout(self.timeout):
                detail = await step.run()
        except Skip as exc:
            return Result(step.name, None, None, _one_line(str(exc)))
        except TimeoutError:
            return Result(step.name, False, ms(), f"{step.awaits} within {self.timeout:g} s")
        except (CheckFailed, StreamerError) as exc:
            return Result(step.name, False, ms(), _one_line(str(exc)) or type(exc).__name__)
        except Exception as exc:  # a broken answer or a bug: still one failed step, named
            return Result(step.name, False, ms(), _one_line(f"{type(exc).__name__}: {exc}"))
        return Result(step.name, True, ms(), _one_line(detail))

    def _write(self, result: Result) -> None:
        if self.json:
            self.out.write(orjson.dumps(result.json()).decode() + "\n")
        else:
            self.out.write(result.text(self._width) + "\n")
        self.out.flush()
