"""The fault plan of the local exchange: every misbehaviour of the real one, as data.

A :class:`Fault` says what goes wrong, where and how often; the :class:`FaultPlan` holds the
pending faults and hands each one out to the part of the server that realises it, through one
``take_*`` method per consumer. Faults are scripted from Python (``plan.drop_diffs("BTCUSDT")``)
or over HTTP (``POST /_fake/faults`` with the JSON form of :meth:`Fault.from_json`). Whatever is
random (``probability`` < 1, the choice of a corrupted level) draws from one ``random.Random(seed)``
so a run is reproducible.

Matching: ``symbol``, ``connection`` and ``account_id`` narrow a fault when set (``None`` matches
anything); ``channel`` picks ``"rest"``, ``"wsapi"``, ``"market"`` or ``"sbe"`` (the SBE market
streams, which realise the market faults too) where a kind applies to several. ``count`` is how
many times the fault fires (``None``: until cleared; for connection faults with no
``connection``: every connection registered when the fault was added).

=========================== ===================== ==============================================
kind                        consumed by           effect
=========================== ===================== ==============================================
rate_limit                  REST (rest.py); WS-API the next ``count`` requests are answered
                            via take_request_fault ``status`` (429 or 418), code -1003,
                                                  ``Retry-After: retry_after``
order_5xx_placed            order placement       the order IS placed, the answer is ``status``
                                                  (default 500) with -1001: outcome unknown
order_5xx_not_placed        order placement       same answer, the order is NOT placed
order_1007_placed           order placement       placed, answered -1007 TIMEOUT (status 408)
order_1007_not_placed       order placement       not placed, answered -1007
order_timeout               order placement       placed; the answer is held ``delay_ms`` (longer
                                                  than the client's timeout), then sent, or the
                                                  connection is dropped if ``drop``
user_events_after_response  order placement       the order's user events are published
                            (REST, or WS-API      ``delay_ms`` (0: at once) after its answer is
                            ``channel`` wsapi)    written; by default they are sent before it
                                                  (their bytes reach the client first, pinned
                                                  by test_exchange_orders.py)
stale_snapshot              REST /depth, WS-API   the snapshot served is the ``behind``-th newest
                            depth (plan.snapshot) book older than the current one among those
                                                  recorded since the fault was added (the oldest
                                                  if fewer); with none older yet, the current
                                                  book is served and the fault kept (history.py)
drop_diff                   market hub            the next diff message of the symbol is not sent
duplicate_diff              market hub            it is sent twice
delay_diff                  market hub            it is sent ``delay_ms`` late (later diffs first)
malformed_diff              market hub            the next diff message is sent broken: the
                                                  fault's ``payload`` text in its place (with
                                                  ``{U}``, ``{u}``, ``{pu}`` replaced by the
                                                  diff's ids), or its JSON (or SBE message)
                                                  cut in half
corrupt_level               market hub            one level is sent with a wrong quantity
                                                  (:meth:`FaultPlan.corrupt_levels`); the true
                                                  book is unchanged: drift
disconnect                  hub / WS-API          the connection is closed without a word
server_shutdown             hub / WS-API          ``serverShutdown`` is sent, the connection is
                                                  closed ``delay_ms`` later
user_stream_silent          WS-API user events    the account's next ``count`` events (``None``:
                                                  all, until cleared) are not delivered
user_stream_terminated      WS-API user events    ``eventStreamTerminated`` is sent and the
                                                  subscription ends
user_event_duplicate        WS-API user events    the account's next ``count`` events are each
                                                  sent twice
user_event_reorder          WS-API user events    the account's next ``count`` events are each
                                                  held back and sent after the event that
                                                  follows it (or ``delay_ms`` later if none
                                                  does)
=========================== ===================== ==============================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from streamer.testing.exchange.history import SnapshotHistory, truncate

if TYPE_CHECKING:
    from streamer.testing.exchange.engine import Engine, Snapshot

__all__ = ["Fault", "FaultKind", "FaultPlan"]


class FaultKind(StrEnum):
    """Every fault the local exchange can inject (see the module table)."""

    RATE_LIMIT = "rate_limit"
    ORDER_5XX_PLACED = "order_5xx_placed"
    ORDER_5XX_NOT_PLACED = "order_5xx_not_placed"
    ORDER_1007_PLACED = "order_1007_placed"
    ORDER_1007_NOT_PLACED = "order_1007_not_placed"
    ORDER_TIMEOUT = "order_timeout"
    USER_EVENTS_AFTER_RESPONSE = "user_events_after_response"
    STALE_SNAPSHOT = "stale_snapshot"
    DROP_DIFF = "drop_diff"
    DUPLICATE_DIFF = "duplicate_diff"
    DELAY_DIFF = "delay_diff"
    CORRUPT_LEVEL = "corrupt_level"
    MALFORMED_DIFF = "malformed_diff"
    DISCONNECT = "disconnect"
    SERVER_SHUTDOWN = "server_shutdown"
    USER_STREAM_SILENT = "user_stream_silent"
    USER_STREAM_TERMINATED = "user_stream_terminated"
    USER_EVENT_DUPLICATE = "user_event_duplicate"
    USER_EVENT_REORDER = "user_event_reorder"


ORDER_KINDS = frozenset(
    {
        FaultKind.ORDER_5XX_PLACED,
        FaultKind.ORDER_5XX_NOT_PLACED,
        FaultKind.ORDER_1007_PLACED,
        FaultKind.ORDER_1007_NOT_PLACED,
        FaultKind.ORDER_TIMEOUT,
        FaultKind.USER_EVENTS_AFTER_RESPONSE,
    }
)
DEPTH_KINDS = frozenset(
    {
        FaultKind.DROP_DIFF,
        FaultKind.DUPLICATE_DIFF,
        FaultKind.DELAY_DIFF,
        FaultKind.CORRUPT_LEVEL,
        FaultKind.MALFORMED_DIFF,
    }
)
CONNECTION_KINDS = frozenset({FaultKind.DISCONNECT, FaultKind.SERVER_SHUTDOWN})
USER_KINDS = frozenset(
    {
        FaultKind.USER_STREAM_SILENT,
        FaultKind.USER_STREAM_TERMINATED,
        FaultKind.USER_EVENT_DUPLICATE,
        FaultKind.USER_EVENT_REORDER,
    }
)
CHANNELS = frozenset({"rest", "wsapi", "market", "sbe"})  # sbe: the SBE market streams

# The HTTP status a kind is answered with when the fault does not say.
DEFAULT_STATUS = {
    FaultKind.RATE_LIMIT: 429,
    FaultKind.ORDER_5XX_PLACED: 500,
    FaultKind.ORDER_5XX_NOT_PLACED: 500,
    FaultKind.ORDER_1007_PLACED: 408,
    FaultKind.ORDER_1007_NOT_PLACED: 408,
}

# JSON (camelCase, as the rest of the API) <-> dataclass field names.
_JSON_NAMES = {
    "kind": "kind",
    "count": "count",
    "symbol": "symbol",
    "connection": "connection",
    "accountId": "account_id",
    "channel": "channel",
    "probability": "probability",
    "status": "status",
    "retryAfter": "retry_after",
    "delayMs": "delay_ms",
    "drop": "drop",
    "behind": "behind",
    "payload": "payload",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour; fields that do not apply to its kind are ignored."""

    kind: FaultKind
    count: int | None = 1  # times it fires; None: until cleared (or every open connection)
    symbol: str | None = None
    connection: int | None = None
    account_id: int | None = None
    channel: str | None = None  # "rest" | "wsapi" | "market" | "sbe"; None: every one it applies to
    probability: float = 1.0  # chance of firing on each match, from the plan's seeded rng
    status: int | None = None  # HTTP status for rate_limit / order_5xx / order_1007
    retry_after: int = 60  # seconds, rate_limit
    delay_ms: int = 0  # delay_diff, order_timeout, user_events_after_response, server_shutdown
    drop: bool = False  # order_timeout: drop the connection instead of answering
    behind: int = 1  # stale_snapshot: how many recorded books back
    payload: str | None = None  # malformed_diff: the text sent in place of the diff
    id: int = 0  # assigned by the plan

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1 or null")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {sorted(CHANNELS)}")
        if self.kind is FaultKind.RATE_LIMIT and self.status not in (None, 418, 429):
            raise ValueError("rate_limit status must be 429 or 418")
        if self.delay_ms < 0 or self.retry_after < 0 or self.behind < 1:
            raise ValueError("delayMs and retryAfter must be >= 0, behind >= 1")

    @property
    def http_status(self) -> int:
        """The status to answer with: the fault's own, else the kind's default."""
        return self.status if self.status is not None else DEFAULT_STATUS.get(self.kind, 500)

    def to_json(self) -> dict[str, Any]:
        """The JSON form accepted by ``POST /_fake/faults``."""
        return {name: getattr(self, attr) for name, attr in _JSON_NAMES.items()} | {"id": self.id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from its JSON form; ``ValueError`` names what is wrong."""
        unknown = set(data) - set(_JSON_NAMES) - {"id", "apiKey"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        try:
            kind = FaultKind(data["kind"])
        except (KeyError, ValueError):
            raise ValueError(f"kind must be one of {[k.value for k in FaultKind]}") from None
        kwargs: dict[str, Any] = {"kind": kind}
        types = {f.name: f.type for f in fields(cls)}
        for name, attr in _JSON_NAMES.items():
            if name == "kind" or name not in data:
                continue
            kwargs[attr] = _check_type(name, data[name], str(types[attr]))
        return cls(**kwargs)


def _check_type(name: str, value: Any, annotation: str) -> Any:
    """Check a JSON value against a field annotation (as written in this module)."""
    nullable = "None" in annotation
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{name} must not be null")
    if annotation.startswith("bool"):
        ok = isinstance(value, bool)
    elif annotation.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation.startswith("float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{name} has the wrong type: {value!r}")
    return float(value) if annotation.startswith("float") else value


@dataclass(slots=True)
class _Pending:
    fault: Fault
    remaining: int | None
    targets: set[int] | None = None  # connection faults aimed at every open connection
    fired: int = field(default=0)


class FaultPlan:
    """Pending faults and the seeded randomness that realises them."""

    def __init__(self, seed: int = 1, history: SnapshotHistory | None = None) -> None:
        self.rng = random.Random(seed)
        self.history = history if history is not None else SnapshotHistory()
        self._pending: list[_Pending] = []
        self._next_id = 1
        self._connections: dict[int, str] = {}
        self._next_connection = 1
        self._listeners: list[Callable[[Fault], None]] = []

    # -- scripting ---------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Schedule ``fault``; returns it with its id. Listeners hear of it at once."""
        fault = replace(fault, id=self._next_id)
        self._next_id += 1
        targets = None
        if fault.kind in CONNECTION_KINDS and fault.connection is None and fault.count is None:
            targets = {
                cid
                for cid, channel in self._connections.items()
                if fault.channel is None or fault.channel == channel
            }
        self._pending.append(_Pending(fault, fault.count, targets))
        if fault.kind is FaultKind.STALE_SNAPSHOT:
            self._watch_history()
        for listener in list(self._listeners):
            listener(fault)
        return fault

    def add_json(self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Fault]:
        """Schedule one fault or a list of faults given in JSON form."""
        items = [data] if isinstance(data, Mapping) else list(data)
        built = [Fault.from_json(item) for item in items]  # all valid, or none added
        return [self.add(fault) for fault in built]

    def clear(self, kind: FaultKind | None = None) -> None:
        """Forget pending faults (of one kind, or all)."""
        self._pending = [p for p in self._pending if kind is not None and p.fault.kind != kind]
        self._watch_history()

    def pending(self) -> list[Fault]:
        """The faults that have not finished firing, in the order they were added."""
        return [p.fault for p in self._pending]

    def add_listener(self, listener: Callable[[Fault], None]) -> None:
        """Call ``listener(fault)`` whenever a fault is added (to act on it without polling)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Fault], None]) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    # Convenience constructors, one per kind; every one returns the scheduled Fault.

    def rate_limit(
        self, count: int = 1, *, status: int = 429, retry_after: int = 60, channel: str = "rest"
    ) -> Fault:
        """Answer the next ``count`` requests with 429 (or 418) and ``Retry-After``."""
        return self.add(
            Fault(
                FaultKind.RATE_LIMIT,
                count=count,
                status=status,
                retry_after=retry_after,
                channel=channel,
            )
        )

    def order_5xx(
        self, *, placed: bool, count: int = 1, symbol: str | None = None, status: int = 500
    ) -> Fault:
        """Answer the next order placement with a 5xx, having placed the order or not."""
        kind = FaultKind.ORDER_5XX_PLACED if placed else FaultKind.ORDER_5XX_NOT_PLACED
        return self.add(Fault(kind, count=count, symbol=symbol, status=status))

    def order_1007(self, *, placed: bool, count: int = 1, symbol: str | None = None) -> Fault:
        """Answer the next order placement with -1007 TIMEOUT, having placed it or not."""
        kind = FaultKind.ORDER_1007_PLACED if placed else FaultKind.ORDER_1007_NOT_PLACED
        return self.add(Fault(kind, count=count, symbol=symbol))

    def order_timeout(
        self, delay_ms: int, *, drop: bool = False, count: int = 1, symbol: str | None = None
    ) -> Fault:
        """Place the next order but hold the answer ``delay_ms``, then answer or drop it."""
        return self.add(
            Fault(FaultKind.ORDER_TIMEOUT, count=count, symbol=symbol, delay_ms=delay_ms, drop=drop)
        )

    def user_events_after_response(
        self, *, count: int = 1, delay_ms: int = 0, symbol: str | None = None
    ) -> Fault:
        """Publish the next order's user events only after its HTTP answer is written."""
        return self.add(
            Fault(
                FaultKind.USER_EVENTS_AFTER_RESPONSE,
                count=count,
                symbol=symbol,
                delay_ms=delay_ms,
            )
        )

    def stale_snapshot(
        self, symbol: str | None = None, *, count: int = 1, behind: int = 1
    ) -> Fault:
        """Serve the next snapshot(s) from ``behind`` books ago, recorded from now on."""
        return self.add(Fault(FaultKind.STALE_SNAPSHOT, count=count, symbol=symbol, behind=behind))

    def drop_diffs(
        self, symbol: str | None = None, *, count: int = 1, connection: int | None = None
    ) -> Fault:
        """Do not send the next ``count`` diff messages."""
        return self.add(
            Fault(FaultKind.DROP_DIFF, count=count, symbol=symbol, connection=connection)
        )

    def duplicate_diffs(
        self, symbol: str | None = None, *, count: int = 1, connection: int | None = None
    ) -> Fault:
        """Send the next ``count`` diff messages twice."""
        return self.add(
            Fault(FaultKind.DUPLICATE_DIFF, count=count, symbol=symbol, connection=connection)
        )

    def delay_diffs(
        self,
        symbol: str | None = None,
        *,
        delay_ms: int = 500,
        count: int = 1,
        connection: int | None = None,
    ) -> Fault:
        """Send the next ``count`` diff messages ``delay_ms`` late, after later ones."""
        return self.add(
            Fault(
                FaultKind.DELAY_DIFF,
                count=count,
                symbol=symbol,
                connection=connection,
                delay_ms=delay_ms,
            )
        )

    def corrupt_level(
        self, symbol: str | None = None, *, count: int = 1, connection: int | None = None
    ) -> Fault:
        """Send one level of the next diff message with a wrong quantity (drift)."""
        return self.add(
            Fault(FaultKind.CORRUPT_LEVEL, count=count, symbol=symbol, connection=connection)
        )

    def malformed_diff(
        self,
        symbol: str | None = None,
        *,
        payload: str | None = None,
        count: int = 1,
        connection: int | None = None,
    ) -> Fault:
        """Send the next ``count`` diff messages broken (``payload`` instead, or cut in half)."""
        return self.add(
            Fault(
                FaultKind.MALFORMED_DIFF,
                count=count,
                symbol=symbol,
                connection=connection,
                payload=payload,
            )
        )

    def disconnect(
        self, connection: int | None = None, *, count: int | None = 1, channel: str | None = None
    ) -> Fault:
        """Close a connection (``count=None`` and no connection: every open one)."""
        return self.add(
            Fault(FaultKind.DISCONNECT, count=count, connection=connection, channel=channel)
        )

    def server_shutdown(
        self,
        connection: int | None = None,
        *,
        count: int | None = None,
        delay_ms: int = 1000,
        channel: str | None = None,
    ) -> Fault:
        """Send ``serverShutdown`` then close after ``delay_ms`` (default: every connection)."""
        return self.add(
            Fault(
                FaultKind.SERVER_SHUTDOWN,
                count=count,
                connection=connection,
                delay_ms=delay_ms,
                channel=channel,
            )
        )

    def silence_user_stream(
        self, account_id: int | None = None, *, count: int | None = None
    ) -> Fault:
        """Stop delivering user events (the next ``count``, or all until cleared)."""
        return self.add(Fault(FaultKind.USER_STREAM_SILENT, count=count, account_id=account_id))

    def terminate_user_stream(self, account_id: int | None = None, *, count: int = 1) -> Fault:
        """End a user-data subscription with ``eventStreamTerminated``."""
        return self.add(Fault(FaultKind.USER_STREAM_TERMINATED, count=count, account_id=account_id))

    def duplicate_user_events(self, account_id: int | None = None, *, count: int = 1) -> Fault:
        """Send each of the account's next ``count`` user events twice."""
        return self.add(Fault(FaultKind.USER_EVENT_DUPLICATE, count=count, account_id=account_id))

    def reorder_user_events(
        self, account_id: int | None = None, *, count: int = 1, delay_ms: int = 500
    ) -> Fault:
        """Send each of the account's next ``count`` user events after the one that follows
        it (``delay_ms`` late when none follows)."""
        return self.add(
            Fault(
                FaultKind.USER_EVENT_REORDER, count=count, account_id=account_id, delay_ms=delay_ms
            )
        )

    # -- connections ----------------------------------------------------------------------------

    def register_connection(self, channel: str) -> int:
        """Give a new connection of ``channel`` ("market" or "wsapi") its id."""
        cid = self._next_connection
        self._next_connection += 1
        self._connections[cid] = channel
        return cid

    def unregister_connection(self, connection: int) -> None:
        """Forget a closed connection."""
        self._connections.pop(connection, None)
        for pending in self._pending:
            if pending.targets is not None:
                pending.targets.discard(connection)
        self._pending = [p for p in self._pending if p.targets is None or p.targets]

    def connections(self, channel: str | None = None) -> list[int]:
        """Ids of the registered connections (of one channel, or all)."""
        return [c for c, ch in self._connections.items() if channel is None or ch == channel]

    # -- consumption ----------------------------------------------------------------------------

    def _take(
        self,
        kinds: frozenset[FaultKind],
        *,
        channel: str | None = None,
        symbol: str | None = None,
        connection: int | None = None,
        account_id: int | None = None,
    ) -> Fault | None:
        for pending in self._pending:
            fault = pending.fault
            if fault.kind not in kinds:
                continue
            if fault.channel is not None and channel is not None and fault.channel != channel:
                continue
            if fault.symbol is not None and fault.symbol != symbol:
                continue
            if fault.account_id is not None and fault.account_id != account_id:
                continue
            if pending.targets is not None:
                if connection not in pending.targets:
                    continue
            elif fault.connection is not None and fault.connection != connection:
                continue
            if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                continue
            self._fire(pending, connection)
            return fault
        return None

    def _fire(self, pending: _Pending, connection: int | None) -> None:
        pending.fired += 1
        if pending.targets is not None:
            pending.targets.discard(connection if connection is not None else -1)
            done = not pending.targets
        elif pending.remaining is None:
            done = False
        else:
            pending.remaining -= 1
            done = pending.remaining <= 0
        if done:
            self._pending.remove(pending)
            if pending.fault.kind is FaultKind.STALE_SNAPSHOT:
                self._watch_history()

    def _watch_history(self) -> None:
        """Record books only for the symbols that pending stale_snapshot faults need."""
        self.history.watch(
            p.fault.symbol for p in self._pending if p.fault.kind is FaultKind.STALE_SNAPSHOT
        )

    def take_request_fault(self, channel: str = "rest") -> Fault | None:
        """A rate_limit fault for the request being served on ``channel``, if one is due."""
        return self._take(frozenset({FaultKind.RATE_LIMIT}), channel=channel)

    def take_order_fault(
        self, symbol: str, channel: str = "rest", account_id: int | None = None
    ) -> Fault | None:
        """An order-placement fault for an order of ``account_id`` on ``symbol``, if one is
        due (a fault naming an account fires only for that account's orders)."""
        return self._take(ORDER_KINDS, channel=channel, symbol=symbol, account_id=account_id)

    def take_depth_fault(
        self, symbol: str, connection: int | None = None, channel: str = "market"
    ) -> Fault | None:
        """A drop/duplicate/delay/corrupt fault for the next diff message of ``symbol``."""
        return self._take(DEPTH_KINDS, channel=channel, symbol=symbol, connection=connection)

    def take_connection_fault(self, connection: int, channel: str | None = None) -> Fault | None:
        """A disconnect or server_shutdown fault aimed at ``connection``, if one is due."""
        return self._take(CONNECTION_KINDS, channel=channel, connection=connection)

    def take_user_fault(self, account_id: int, connection: int | None = None) -> Fault | None:
        """A silent / terminated fault for the next user event of ``account_id``."""
        return self._take(USER_KINDS, channel="wsapi", account_id=account_id, connection=connection)

    # -- realising faults -----------------------------------------------------------------------

    def snapshot(self, engine: Engine, symbol: str, limit: int) -> Snapshot:
        """The depth snapshot to serve: the current book, or a stale one when a fault says so."""
        for pending in self._pending:
            fault = pending.fault
            if fault.kind is not FaultKind.STALE_SNAPSHOT:
                continue
            if fault.symbol is not None and fault.symbol != symbol:
                continue
            old = self.history.older(symbol, engine.last_update_id(symbol), fault.behind)
            if old is None:
                break  # nothing older recorded yet: keep the fault for a later request
            self._fire(pending, None)
            return truncate(old, limit)
        return engine.snapshot(symbol, limit)

    def corrupt_levels(
        self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]
    ) -> tuple[list[list[str]], list[list[str]]]:
        """Copies of ``bids``/``asks`` with one level's quantity made wrong (seeded choice).

        The wrong quantity keeps the original's number of decimals; a removal ("0") becomes a
        phantom level. With no level at all, nothing can be corrupted and the copies are equal.
        """
        new_bids = [list(level) for level in bids]
        new_asks = [list(level) for level in asks]
        levels = new_bids + new_asks
        if not levels:
            return new_bids, new_asks
        level = levels[self.rng.randrange(len(levels))]
        level[1] = _wrong_quantity(level[1], self.rng)
        return new_bids, new_asks


def _wrong_quantity(qty: str, rng: random.Random) -> str:
    try:
        value = Decimal(qty)
    except InvalidOperation:
        return "1"
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    unit = Decimal(1).scaleb(-places) if places else Decimal(1)
    wrong = value + unit * rng.randint(1, 1000) if value > 0 else Decimal(rng.randint(1, 9))
    return f"{wrong:.{places}f}"


def faults_json(faults: Iterable[Fault]) -> list[dict[str, Any]]:
    """The JSON form of several faults."""
    return [fault.to_json() for fault in faults]
