"""What the demo does and when: a pure schedule, scaled to the length of a cycle.

One cycle places and cancels orders (some rest far from the market and are cancelled, some
fill, one stop order triggers) and injects each market fault once, spaced so that a person sees
each one happen and heal before the next. Without ``--duration`` the cycle repeats; with it, one
cycle fills the run. Times are fractions of the cycle, so the order of things never changes
whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Action", "Step", "plan"]


class Action(StrEnum):
    """One thing the demo does."""

    REST = "rest"  # a LIMIT far from the market that rests (cancelled later)
    CANCEL = "cancel"  # cancel every resting order of ours
    MARKET = "market"  # a MARKET order: fills at once
    CROSS = "cross"  # a LIMIT priced through the other side: fills at once
    STOP = "stop"  # a STOP_LOSS_LIMIT at the market, and the trade that triggers it
    CORRUPT_LEVEL = "corrupt_level"  # drift, caught by an audit (re-injected until it is)
    DROP_DIFF = "drop_diff"  # a gap: that book resyncs
    DUPLICATE_DIFF = "duplicate_diff"  # stale diffs, dropped without a resync
    DELAY_DIFF = "delay_diff"  # a diff after later ones: a gap, a resync
    STALE_SNAPSHOT = "stale_snapshot"  # with a dropped diff: the resync's snapshot is old
    DISCONNECT = "disconnect"  # a market connection closed without a word: it reconnects


#: Faults: the market kinds of the local exchange, one each per cycle.
FAULTS = frozenset(
    {
        Action.CORRUPT_LEVEL,
        Action.DROP_DIFF,
        Action.DUPLICATE_DIFF,
        Action.DELAY_DIFF,
        Action.STALE_SNAPSHOT,
        Action.DISCONNECT,
    }
)

# (fraction of the cycle, action, index of the symbol among the demo's, side).
# The drift comes first: it may need re-injecting (a later diff can overwrite the corrupted
# level before an audit sees it), and it must not share its symbol with the faults that make
# that book resync while it waits.
_CYCLE: tuple[tuple[float, Action, int, str], ...] = (
    (0.02, Action.REST, 0, "BUY"),
    (0.05, Action.CORRUPT_LEVEL, 0, ""),
    (0.10, Action.MARKET, 1, "BUY"),
    (0.16, Action.DROP_DIFF, 1, ""),
    (0.22, Action.REST, 2, "SELL"),
    (0.28, Action.STOP, 2, ""),
    (0.36, Action.DUPLICATE_DIFF, 2, ""),
    (0.42, Action.CANCEL, 0, ""),
    (0.48, Action.CROSS, 0, "SELL"),
    (0.54, Action.STALE_SNAPSHOT, 1, ""),
    (0.62, Action.DELAY_DIFF, 2, ""),
    (0.68, Action.MARKET, 0, "SELL"),
    (0.74, Action.DISCONNECT, 0, ""),
    (0.82, Action.REST, 1, "BUY"),
    (0.88, Action.CROSS, 2, "BUY"),
    (0.92, Action.CANCEL, 0, ""),
)


@dataclass(frozen=True, slots=True)
class Step:
    """Do ``action`` on ``symbol`` (``side`` for orders) ``at`` seconds into the cycle."""

    at: float
    action: Action
    symbol: str
    side: str = ""


def plan(symbols: list[str], cycle: float) -> list[Step]:
    """The steps of one cycle of ``cycle`` seconds over ``symbols`` (one or more), in order."""
    if not symbols or not cycle > 0:
        raise ValueError("plan needs symbols and a positive cycle")
    return [
        Step(round(at * cycle, 3), action, symbols[index % len(symbols)], side)
        for at, action, index, side in _CYCLE
    ]
