"""Helpers shared by the engine's unit tests: the user events of one account, by type."""

from __future__ import annotations

from typing import Any

from streamer.testing.exchange.engine import EngineOutput


def reports(out: EngineOutput, account: int) -> list[dict[str, Any]]:
    """The account's executionReports in ``out``, in order."""
    return [
        u.event
        for u in out.user_events
        if u.account_id == account and u.event["e"] == "executionReport"
    ]


def positions(out: EngineOutput, account: int) -> list[dict[str, Any]]:
    """The account's outboundAccountPosition events in ``out``, in order."""
    return [
        u.event
        for u in out.user_events
        if u.account_id == account and u.event["e"] == "outboundAccountPosition"
    ]
