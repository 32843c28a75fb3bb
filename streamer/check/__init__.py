"""``streamer check``: the integration validation a team runs before trusting a Binance
connection (see ``streamer/cli_check.py`` for the command, ``steps.py`` for what is checked)."""

from streamer.check.runner import Result, Runner, Skip, Step
from streamer.check.sanity import CheckFailed
from streamer.check.steps import MARKET_STEPS, TRADING_STEPS, Checks

__all__ = [
    "MARKET_STEPS",
    "TRADING_STEPS",
    "CheckFailed",
    "Checks",
    "Result",
    "Runner",
    "Skip",
    "Step",
]
