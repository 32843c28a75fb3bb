"""The snapshot scheduler: every depth snapshot of a ``Streamer``, inside the weight budget.

Design §4.3. The sync machines ask for snapshots (``SnapshotRequest``); the reader hands each one
to :meth:`SnapshotScheduler.submit` and goes back to reading. One task here takes them in order:

* books waiting to sync before audits, and first come first served within each;
* a request superseded before it is sent (its book reset, or resynced) is skipped, so a
  connection drop costs one snapshot per symbol that really needs one, never a storm;
* a newer request of a symbol takes the place of its older one in the queue, so a book whose
  buffer overflowed while it waited does not go to the back;
* a request is sent only when its weight fits in ``share`` of the minute's budget (fed by every
  REST response), never while a 429/418 ``Retry-After`` runs;
* after a failed snapshot, or one too old to bridge the stream, that symbol alone waits
  (jittered exponential backoff) instead of spending the budget on the same answer again.

Cold start of N symbols thus takes about ``N * weight(limit) / (share * limit per minute)``
minutes, the least the budget allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from streamer.aio.rest import RestClient, RestResponse
from streamer.aio.timing import wait_until
from streamer.errors import IPBanned, RateLimited, StreamerError
from streamer.sansio.backoff import Backoff
from streamer.sansio.book_sync import SnapshotRequest
from streamer.sansio.ratelimit import depth_weight
from streamer.sansio.wire import Venue

__all__ = ["SnapshotScheduler"]

log = logging.getLogger(__name__)

_PRIORITY = {"sync": 0, "audit": 1}

Deliver = Callable[[SnapshotRequest, RestResponse | None, StreamerError | None, float], None]


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    request: SnapshotRequest = field(compare=False)
    done: bool = field(default=False, compare=False)


class SnapshotScheduler:
    """Fetches the snapshots the books ask for; results go to ``deliver``."""

    def __init__(
        self,
        rest: RestClient,
        venue: Venue,
        *,
        is_current: Callable[[SnapshotRequest], bool],
        deliver: Deliver,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        rng: Callable[[], float],
        share: float = 0.5,
        max_in_flight: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.rest = rest
        self.venue = venue
        self.share = share
        self._is_current = is_current
        self._deliver = deliver
        self._spawn = spawn
        self._rng = rng
        self._clock = clock
        self._heap: list[_Job] = []
        self._taken: _Job | None = None
        self._queued: dict[tuple[str, str], _Job] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._backoff: dict[str, Backoff] = {}
        self._not_before: dict[str, float] = {}
        self.sent = 0
        self.skipped = 0  # superseded before they were sent
        self.weight_spent = 0

    # -- the reader's side: never awaits --------------------------------------------------------

    def submit(self, request: SnapshotRequest) -> None:
        key = (request.symbol, request.purpose)
        job = self._queued.get(key)
        if job is not None and not job.done:
            job.request = request  # keep its place in the queue
            return
        self._seq += 1
        job = _Job(_PRIORITY.get(request.purpose, 1), self._seq, request)
        self._queued[key] = job
        heapq.heappush(self._heap, job)
        self._wake.set()

    @property
    def queued(self) -> int:
        """Requests waiting: in the queue, or taken and waiting for room in the budget."""
        waiting = self._taken is not None and not self._taken.done
        return sum(1 for job in self._heap if not job.done) + waiting

    def forget(self, symbol: str) -> None:
        """Drop the queued requests and backoff of an unsubscribed symbol."""
        for purpose in _PRIORITY:
            job = self._queued.pop((symbol, purpose), None)
            if job is not None:
                job.done = True
        self._backoff.pop(symbol, None)
        self._not_before.pop(symbol, None)

    # -- the scheduler task ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            job = self._taken = await self._next_ready()
            request = job.request
            weight = depth_weight(self.venue, request.limit)
            # Wait for room in the budget *before* taking the job, so that priority holds.
            await wait_until(partial(self.rest.budget_delay, weight, self.share))
            job.done = True
            self._queued.pop((request.symbol, request.purpose), None)
            request = job.request  # it may have been replaced while we waited
            if not self._is_current(request):
                self.skipped += 1
                continue
            await self._slots.acquire()
            if self.rest.budget_delay(weight, self.share) > 0:
                # someone else took the room while we waited for a slot: queue it again
                self._slots.release()
                self.submit(request)
                continue
            self.rest.spend(weight)  # now, so that the next job sees this one's weight
            self.sent += 1
            self.weight_spent += weight
            self._spawn(self._fetch(request, weight))

    async def _next_ready(self) -> _Job:
        while True:
            heap = self._heap
            while heap and heap[0].done:
                heapq.heappop(heap)
            now = self._clock()
            waiting: list[_Job] = []
            found: _Job | None = None
            while heap:
                job = heapq.heappop(heap)
                if job.done:
                    continue
                if self._not_before.get(job.request.symbol, 0.0) <= now:
                    found = job
                    break
                waiting.append(job)
            for job in waiting:
                heapq.heappush(heap, job)
            if found is not None:
                return found
            wait = min((self._not_before[j.request.symbol] for j in waiting), default=None)
            self._wake.clear()
            timeout = None if wait is None else max(0.0, wait - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _fetch(self, request: SnapshotRequest, weight: int) -> None:
        params = {"symbol": request.symbol, "limit": str(request.limit)}
        try:
            response = await self.rest.get(
                self.rest.endpoints.depth_path, params, weight=weight, paid=True
            )
        except (RateLimited, IPBanned) as exc:
            # The budget now blocks every request until Retry-After; no per-symbol penalty.
            self._deliver(request, None, exc, 0.0)
        except StreamerError as exc:
            retry_in = self._failed(request.symbol)
            log.warning("snapshot %s failed: %s (retry in %.1f s)", request.symbol, exc, retry_in)
            self._deliver(request, None, exc, retry_in)
        else:
            self._backoff.pop(request.symbol, None)
            self._deliver(request, response, None, 0.0)
        finally:
            self._slots.release()

    def back_off(self, symbol: str) -> float:
        """Hold ``symbol``'s next request back (its snapshot was of no use: too old for the
        stream it must bridge); returns the delay."""
        return self._failed(symbol)

    def _failed(self, symbol: str) -> float:
        backoff = self._backoff.get(symbol)
        if backoff is None:
            backoff = self._backoff[symbol] = Backoff(self._rng, initial=1.0, maximum=60.0)
        delay = backoff.next_delay()
        self._not_before[symbol] = self._clock() + delay
        return delay
