"""Public test tools: the local Binance (``FakeExchange``) and its fault plan.

from streamer.testing import FakeExchange

async with FakeExchange(symbols=["BTCUSDT"], seed=1) as ex:
    ex.endpoints.rest, ex.endpoints.ws, ex.endpoints.ws_api
"""

from streamer.testing.exchange.faults import Fault, FaultKind, FaultPlan
from streamer.testing.exchange.server import FakeExchange

__all__ = ["FakeExchange", "Fault", "FaultKind", "FaultPlan"]
