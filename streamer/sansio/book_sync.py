"""The per-symbol order-book sync state machine (protocol §2, design §4.1 and §4.2).

Rules, with the protocol section each implements:

=====================  =========================================================================
first diff             buffer it and ask for a snapshot (§2.1 steps 1-3, §2.2 steps 1-3)
buffering              diffs are buffered (bounded: overflow resets with BUFFER_OVERFLOW); the
                       buffer must itself be continuous, else it restarts from the new diff (GAP)
stale snapshot         spot: ``L + 1 < first buffered U`` (it cannot be bridged; §2.1 step 4);
                       futures: ``L < first buffered U`` and ``L != its pu``. Ask again, keep
                       the buffer
apply snapshot         drop buffered diffs with spot ``u <= L`` / futures ``u < L`` (§2.1 step 5,
                       §2.2 step 4); load the book at ``L``; replay the rest by the rules below
spot continuity        ``u <= local`` is stale: drop. ``U > local + 1`` is a gap: reset (§2.1)
futures first event    must have ``U <= L <= u`` (§2.2 step 5), or ``pu == L``: it follows the
                       snapshot directly (the event ending at L came before we subscribed); else
                       reset
futures continuity     ``pu == local``: apply. ``u <= local``: duplicate, drop. Otherwise: reset
crossed book           best bid >= best ask after a diff: reset (defensive, not in the docs)
drift audit            a snapshot requested for audit is compared, not loaded (design §4.2)
snapshot tokens        every request carries a token; a response with any other token is ignored
=====================  =========================================================================

Spot's doc text says to refetch when ``L < first U``; we refetch only when ``L + 1 < first U``,
because a snapshot at ``U - 1`` is bridged exactly by the first buffered diff (design §4.1).
A reset touches only this symbol: every symbol has its own machine.

Feed ``receive_diff`` / ``receive_snapshot``; drain ``events()`` for snapshot requests, resets,
drift reports. Nothing here raises on exchange misbehaviour.

The rules only read a diff's ids; its levels go to the book as they are. A diff comes in any of
its forms (:data:`~streamer.sansio.sbe.AnyDepthDiff`): string levels (JSON) go to the book's
``apply_diff``, integer levels (SBE: int pairs, or packed as on the wire) to ``apply_ints``, which
means the same as apply_diff of their decimal strings. So no rule depends on the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum

from streamer.sansio.audit import LevelMismatch, audit_book
from streamer.sansio.book import BookModel, ints_well_formed, levels_well_formed, new_book
from streamer.sansio.ratelimit import max_snapshot_limit
from streamer.sansio.sbe import AnyDepthDiff
from streamer.sansio.wire import DepthDiff, DepthSnapshot, Venue

__all__ = [
    "AuditInconclusive",
    "AuditPassed",
    "BookSync",
    "DriftDetected",
    "Outcome",
    "Reset",
    "ResetReason",
    "SnapshotIgnored",
    "SnapshotRequest",
    "SyncEvent",
    "SyncState",
    "Synced",
]


class SyncState(StrEnum):
    WAITING = "waiting_for_diff"
    SNAPSHOT_PENDING = "waiting_for_snapshot"
    SYNCED = "synced"


class Trigger(Enum):
    FIRST_DIFF = "first diff"
    SNAPSHOT_LOADED = "snapshot loaded"
    STALE_SNAPSHOT = "stale snapshot"
    GAP = "gap"
    BUFFER_OVERFLOW = "buffer overflow"
    DRIFT = "drift"
    CROSSED = "crossed book"
    RESET = "reset requested"


_W, _P, _S = SyncState.WAITING, SyncState.SNAPSHOT_PENDING, SyncState.SYNCED

#: Every legal transition. A gap keeps the diff that revealed it as the first of a new buffer, so
#: it goes straight to SNAPSHOT_PENDING; the other resets start again from the next diff.
TRANSITIONS: dict[tuple[SyncState, Trigger], SyncState] = {
    (_W, Trigger.FIRST_DIFF): _P,
    (_W, Trigger.RESET): _W,
    (_P, Trigger.SNAPSHOT_LOADED): _S,
    (_P, Trigger.STALE_SNAPSHOT): _P,
    (_P, Trigger.GAP): _P,
    (_P, Trigger.BUFFER_OVERFLOW): _W,
    (_P, Trigger.RESET): _W,
    (_S, Trigger.GAP): _P,
    (_S, Trigger.DRIFT): _W,
    (_S, Trigger.CROSSED): _W,
    (_S, Trigger.RESET): _W,
}


class ResetReason(StrEnum):
    GAP = "gap"
    BUFFER_OVERFLOW = "buffer_overflow"
    DRIFT = "drift"
    CROSSED = "crossed_book"
    REQUESTED = "requested"


class Outcome(IntEnum):
    """What ``receive_diff`` did with a diff (returned, not queued: this is the hot path)."""

    APPLIED = 0
    BUFFERED = 1
    DROPPED = 2
    RESET = 3
    MALFORMED = 4  # a bad price level: nothing changed; the caller reports the frame


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """Fetch ``GET depth?symbol=..&limit=..`` and hand the body back with this token."""

    symbol: str
    token: int
    limit: int
    purpose: str  # "sync" or "audit"


@dataclass(frozen=True, slots=True)
class Synced:
    symbol: str
    last_update_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    symbol: str
    reason: ResetReason
    detail: str


@dataclass(frozen=True, slots=True)
class SnapshotIgnored:
    symbol: str
    token: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class DriftDetected:
    symbol: str
    snapshot_id: int
    mismatches: tuple[LevelMismatch, ...]


@dataclass(frozen=True, slots=True)
class AuditPassed:
    symbol: str
    snapshot_id: int
    levels_checked: int


@dataclass(frozen=True, slots=True)
class AuditInconclusive:
    symbol: str
    snapshot_id: int
    reason: str


SyncEvent = (
    SnapshotRequest
    | Synced
    | Reset
    | SnapshotIgnored
    | DriftDetected
    | AuditPassed
    | AuditInconclusive
)


@dataclass(slots=True)
class Counters:
    applied: int = 0
    buffered: int = 0
    malformed: int = 0
    dropped: int = 0
    resets: int = 0
    stale_snapshots: int = 0
    ignored_snapshots: int = 0
    audits_passed: int = 0
    drifts: int = 0


class BookSync:
    """Keeps one symbol's book synced from a diff stream plus REST snapshots."""

    def __init__(
        self,
        symbol: str,
        venue: Venue = Venue.SPOT,
        *,
        snapshot_limit: int | None = None,
        max_buffer: int = 2000,
        journal_size: int = 512,
    ) -> None:
        if max_buffer < 1 or journal_size < 1:
            raise ValueError("max_buffer and journal_size must be positive")
        self.symbol = symbol
        self.venue = venue
        self._futures = venue.is_futures
        # By default the deepest snapshot the venue serves (protocol §2).
        self.snapshot_limit = snapshot_limit or max_snapshot_limit(venue)
        self.max_buffer = max_buffer
        self.state = SyncState.WAITING
        self.last_update_id = 0  # meaningful only when SYNCED
        self.counters = Counters()
        self._events: list[SyncEvent] = []
        self._buffer: list[AnyDepthDiff] = []
        self._next_token = 1
        self._sync_token: int | None = None
        self._audit_token: int | None = None
        self._audit_limit: int | None = None
        self._pending_audit: DepthSnapshot | None = None
        self._first_after_snapshot = False  # futures: next diff must satisfy U <= L <= u
        # The book keeps a journal of the prices each applied diff touched (the last
        # ``journal_size`` diffs since the snapshot); audits skip them. It lives in the book so
        # the C twin can keep it as integers instead of holding every decoded diff.
        self.book: BookModel = new_book(journal_size=journal_size)  # C when built
        self._journal_floor = 0  # the snapshot id the journal starts from

    # -- outputs ------------------------------------------------------------------------------

    def events(self) -> list[SyncEvent]:
        """Return and forget every event since the last call."""
        events, self._events = self._events, []
        return events

    @property
    def synced(self) -> bool:
        return self.state is SyncState.SYNCED

    # -- inputs -------------------------------------------------------------------------------

    def receive_diff(self, diff: AnyDepthDiff) -> Outcome:
        """Feed one decoded ``depthUpdate`` of this symbol, in any of its forms.

        A diff with a bad level changes nothing and returns ``MALFORMED``; since its updates are
        then missing, the next diff reveals a gap and the symbol resyncs.
        """
        if self.state is SyncState.SYNCED:
            return self._apply_synced(diff)
        if not self._well_formed(diff):
            return Outcome.MALFORMED
        if self.state is SyncState.WAITING:
            self._buffer = [diff]
            self.counters.buffered += 1
            self._move(Trigger.FIRST_DIFF)
            self._request_sync()
            return Outcome.BUFFERED
        return self._buffer_diff(diff)

    def receive_snapshot(
        self, snapshot: DepthSnapshot, token: int | None, *, limit: int | None = None
    ) -> None:
        """Feed a snapshot: the answer to request ``token``, or unrequested (``token=None``).

        An unrequested snapshot is audited when the book is synced and ignored otherwise;
        ``limit`` is the depth it was fetched with, when known.
        """
        if token is not None and token == self._sync_token:
            self._sync_token = None
            self._load(snapshot)
        elif token is not None and token == self._audit_token:
            self._audit_token = None
            self._start_audit(snapshot, self._audit_limit)
        elif token is None and self.state is SyncState.SYNCED and self._audit_token is None:
            self._start_audit(snapshot, limit)
        else:
            self.counters.ignored_snapshots += 1
            why = "superseded token" if token is not None else "unrequested while not synced"
            self._events.append(SnapshotIgnored(self.symbol, token, why))

    def snapshot_failed(self, token: int) -> None:
        """The fetch for ``token`` failed or returned garbage: ask again if it still matters."""
        if token == self._sync_token:
            self._request_sync()
        elif token == self._audit_token:
            self._audit_token = None

    @property
    def seen_id(self) -> int | None:
        """The ``u`` of the newest diff taken in (applied, or buffered while waiting for a
        snapshot); None before the first. A connection handing this symbol over to a new one
        compares the new stream's first diff with it (``streamer.sansio.handover``)."""
        if self.state is SyncState.SYNCED:
            return self.last_update_id
        return self._buffer[-1].last_id if self._buffer else None

    @property
    def pending_token(self) -> int | None:
        """The token of the snapshot this book is waiting for, if any (sync first)."""
        return self._sync_token if self._sync_token is not None else self._audit_token

    def request_audit(self, limit: int = 100) -> SnapshotRequest | None:
        """Ask for a snapshot to audit the synced book against; None when not synced."""
        if self.state is not SyncState.SYNCED or self._audit_token is not None:
            return None
        self._audit_token = self._take_token()
        self._audit_limit = limit
        request = SnapshotRequest(self.symbol, self._audit_token, limit, "audit")
        self._events.append(request)
        return request

    def reset(self, detail: str = "requested") -> None:
        """Discard the book and start again (e.g. after the connection carrying it dropped)."""
        self._reset(Trigger.RESET, ResetReason.REQUESTED, detail)

    # -- internals ----------------------------------------------------------------------------

    def _move(self, trigger: Trigger) -> None:
        try:
            self.state = TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise AssertionError(f"illegal transition {self.state} on {trigger}") from None

    def _take_token(self) -> int:
        token = self._next_token
        self._next_token += 1
        return token

    def _request_sync(self) -> None:
        self._sync_token = self._take_token()
        self._events.append(
            SnapshotRequest(self.symbol, self._sync_token, self.snapshot_limit, "sync")
        )

    def _clear(self) -> None:
        self.book.clear()
        self._buffer = []
        self._sync_token = None
        self._audit_token = None
        self._pending_audit = None
        self._first_after_snapshot = False

    def _reset(
        self,
        trigger: Trigger,
        reason: ResetReason,
        detail: str,
        restart: AnyDepthDiff | None = None,
    ) -> None:
        self._clear()
        self.counters.resets += 1
        self._events.append(Reset(self.symbol, reason, detail))
        self._move(trigger)
        if restart is not None:  # the diff that revealed a gap starts the new buffer
            self._buffer = [restart]
            self._request_sync()

    def _continues(self, prev_last: int, diff: AnyDepthDiff) -> bool | None:
        """True: next in sequence. None: stale or duplicate. False: something is missing."""
        if self._futures:
            if diff.prev_last_id == prev_last:
                return True
            return None if diff.last_id <= prev_last else False
        if diff.last_id <= prev_last:
            return None
        return diff.first_id <= prev_last + 1

    def _well_formed(self, diff: AnyDepthDiff) -> bool:
        if isinstance(diff, DepthDiff):
            if levels_well_formed(diff.bids) and levels_well_formed(diff.asks):
                return True
        else:  # integer levels: as apply_ints would take them
            pexp, qexp = diff.price_exponent, diff.qty_exponent
            if ints_well_formed(diff.bids, pexp, qexp) and ints_well_formed(diff.asks, pexp, qexp):
                return True
        self.counters.malformed += 1
        return False

    def _buffer_diff(self, diff: AnyDepthDiff) -> Outcome:
        if self._buffer:
            follows = self._continues(self._buffer[-1].last_id, diff)
            if follows is None:
                self.counters.dropped += 1
                return Outcome.DROPPED
            if not follows:
                self._reset(Trigger.GAP, ResetReason.GAP, "gap while buffering", restart=diff)
                return Outcome.RESET
        if len(self._buffer) >= self.max_buffer:
            self._reset(
                Trigger.BUFFER_OVERFLOW,
                ResetReason.BUFFER_OVERFLOW,
                f"more than {self.max_buffer} diffs buffered while waiting for a snapshot",
            )
            return Outcome.RESET
        self._buffer.append(diff)
        self.counters.buffered += 1
        return Outcome.BUFFERED

    def _load(self, snapshot: DepthSnapshot) -> None:
        last = snapshot.last_update_id
        buffer = self._buffer
        if buffer:
            head = buffer[0]
            first = head.first_id
            if (last < first and last != head.prev_last_id) if self._futures else last + 1 < first:
                self.counters.stale_snapshots += 1
                self._move(Trigger.STALE_SNAPSHOT)
                self._request_sync()
                return
        if not self.book.load(snapshot.bids, snapshot.asks):
            # Valid decimals the book cannot hold exactly (a mantissa past int64, more than 18
            # decimals): nothing Binance sends. Count it and ask again, keeping the buffer.
            self.counters.malformed += 1
            self._events.append(SnapshotIgnored(self.symbol, None, "a price the book cannot hold"))
            self._request_sync()
            return
        self.last_update_id = last
        self._journal_floor = last
        self._first_after_snapshot = self._futures
        self._buffer = []
        self._move(Trigger.SNAPSHOT_LOADED)
        self._events.append(Synced(self.symbol, last))
        for i, diff in enumerate(buffer):
            if self._apply_synced(diff) is Outcome.RESET:
                for later in buffer[i + 1 :]:  # they continue the diff that restarted the buffer
                    self._buffer_diff(later)
                return

    def _apply_synced(self, diff: AnyDepthDiff) -> Outcome:
        # The hot path: one call per message on a synced book. The continuity rules of
        # _continues() are inlined here; keep the two in step.
        local = self.last_update_id
        if self._first_after_snapshot:
            # futures §2.2 steps 4-5: drop u < L; the first applied diff must contain L
            if diff.last_id < local:
                self.counters.dropped += 1
                return Outcome.DROPPED
            if diff.first_id > local and diff.prev_last_id != local:
                self._reset(Trigger.GAP, ResetReason.GAP, _gap(local, diff), restart=diff)
                return Outcome.RESET
        elif self._futures:
            if diff.prev_last_id != local:
                if diff.last_id <= local:
                    self.counters.dropped += 1
                    return Outcome.DROPPED
                self._reset(Trigger.GAP, ResetReason.GAP, _gap(local, diff), restart=diff)
                return Outcome.RESET
        else:
            if diff.last_id <= local:
                self.counters.dropped += 1
                return Outcome.DROPPED
            if diff.first_id > local + 1:
                self._reset(Trigger.GAP, ResetReason.GAP, _gap(local, diff), restart=diff)
                return Outcome.RESET
        book = self.book
        # isinstance, not type() is: it narrows both branches, and is as fast on an exact type
        if isinstance(diff, DepthDiff):
            inserted = book.apply_diff(diff.bids, diff.asks, diff.last_id)
        else:  # integer levels (SBE), no strings: the same meaning (module docstring)
            inserted = book.apply_ints(
                diff.bids, diff.asks, diff.price_exponent, diff.qty_exponent, diff.last_id
            )
        if inserted < 0:
            self.counters.malformed += 1
            return Outcome.MALFORMED
        self._first_after_snapshot = False
        self.last_update_id = diff.last_id
        self.counters.applied += 1
        if inserted and book.is_crossed():  # only a new level can cross the book
            self._reset(
                Trigger.CROSSED, ResetReason.CROSSED, f"best bid >= best ask at {diff.last_id}"
            )
            return Outcome.RESET
        if self._pending_audit is not None and diff.last_id >= self._pending_audit.last_update_id:
            pending, self._pending_audit = self._pending_audit, None
            self._run_audit(pending, self._audit_limit)
        return Outcome.APPLIED

    def _start_audit(self, snapshot: DepthSnapshot, limit: int | None) -> None:
        if self.state is not SyncState.SYNCED:
            self.counters.ignored_snapshots += 1
            self._events.append(SnapshotIgnored(self.symbol, None, "audit while not synced"))
            return
        self._audit_limit = limit
        if snapshot.last_update_id > self.last_update_id:
            self._pending_audit = snapshot  # audited once the stream has caught up with it
        else:
            self._run_audit(snapshot, limit)

    def _run_audit(self, snapshot: DepthSnapshot, limit: int | None) -> None:
        at = snapshot.last_update_id
        # The journal holds every applied diff since the snapshot until it fills up, then those
        # after its oldest entry (u only grows along it): touched_since() says None then.
        touched = self.book.touched_since(at) if at >= self._journal_floor else None
        if touched is None:
            self._events.append(
                AuditInconclusive(self.symbol, at, "snapshot older than the book's journal")
            )
            return
        touched_bids, touched_asks = touched
        mismatches, checked = audit_book(
            self.book, snapshot.bids, snapshot.asks, touched_bids, touched_asks, limit=limit
        )
        if not mismatches:
            self.counters.audits_passed += 1
            self._events.append(AuditPassed(self.symbol, at, checked))
            return
        self.counters.drifts += 1
        self._events.append(DriftDetected(self.symbol, at, tuple(mismatches)))
        self._reset(Trigger.DRIFT, ResetReason.DRIFT, f"{len(mismatches)} levels differ at {at}")


def _gap(local: int, diff: AnyDepthDiff) -> str:
    if diff.prev_last_id is not None:
        return f"expected pu={local}, got U={diff.first_id} pu={diff.prev_last_id}"
    return f"expected U<={local + 1}, got U={diff.first_id}"
