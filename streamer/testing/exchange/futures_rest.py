"""The REST market data of the futures venues: ``/fapi/v1/...`` (USD-M), ``/dapi/v1/...`` (COIN-M).

Market data only (protocol §2.2, §7.7, §7.8): ``ping``, ``time``, ``exchangeInfo`` and ``depth``.
There are no futures orders, accounts or listen keys here, and a futures exchange serves none of
the spot paths (``/api/v3/...`` answers 404, as on the real futures hosts).

Every route goes through the spot layer's wrapper (:meth:`RestApi.endpoint`), so the scripted
``rate_limit`` fault, the per-IP weight (2400 per minute on futures), its headers
``X-MBX-USED-WEIGHT(-1M)`` and the 429/418 bans with ``Retry-After`` work exactly as on spot.

* ``depth``: ``limit`` in {5, 10, 20, 50, 100, 500, 1000}, default 500, weight 2/2/2/2/5/10/20;
  any other value is -1100 (400), naming the legal values. The body is
  ``{"lastUpdateId", "E", "T", "bids", "asks"}``: ``E`` the answer's time, ``T`` the time of the
  book's last change. The ``stale_snapshot`` fault applies; with a firehose, its symbols answer
  the firehose's snapshot.
* ``exchangeInfo`` (weight 1): the spot exchangeInfo entries of the exchange's symbols, filters
  included and unchanged (the local exchange has no futures contract data), under the futures
  ``rateLimits`` (REQUEST_WEIGHT 2400 per minute, ORDERS 1200 per minute).
* ``ping`` and ``time``: weight 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from streamer.testing.exchange.engine import Engine
from streamer.testing.exchange.faults import FaultPlan
from streamer.testing.exchange.params import ApiError, Params
from streamer.testing.exchange.rest import Call, Reply, RestApi
from streamer.testing.exchange.venues import VenueRules
from streamer.testing.exchange.weights import Weights

if TYPE_CHECKING:
    from streamer.testing.exchange.firehose import Firehose

__all__ = ["DEPTH_WEIGHTS", "FuturesRest"]

#: Weight of ``GET /fapi/v1/depth`` (and ``/dapi/v1/depth``) by ``limit`` (protocol §2.2).
DEPTH_WEIGHTS: Final = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
_DEFAULT_LIMIT: Final = 500
_LEGAL_LIMITS: Final = ", ".join(map(str, DEPTH_WEIGHTS))


def _depth_limit(params: Params) -> int:
    value = params.text("limit")
    if value is None:
        return _DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit() or int(value) not in DEPTH_WEIGHTS:
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter 'limit'; legal range is '{_LEGAL_LIMITS}'.",
        )
    return int(value)


def _depth_weight(params: Params) -> int:
    try:
        return DEPTH_WEIGHTS[_depth_limit(params)]
    except ApiError:
        return min(DEPTH_WEIGHTS.values())


class FuturesRest:
    """The futures market-data routes of one venue, served through ``rest``'s wrapper."""

    def __init__(
        self,
        rest: RestApi,
        engine: Engine,
        weights: Weights,
        faults: FaultPlan,
        venue: VenueRules,
        firehose: Firehose | None = None,
    ) -> None:
        self._rest = rest
        self._engine = engine
        self._faults = faults
        self._venue = venue
        self._firehose = firehose
        self._rate_limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weights.limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ]  # fmt: skip

    def routes(self) -> list[web.RouteDef]:
        """``ping``, ``time``, ``exchangeInfo`` and ``depth`` under the venue's prefix."""
        ep = self._rest.endpoint
        prefix = self._venue.rest_prefix
        return [
            web.get(f"{prefix}/ping", ep(self._ping, 1)),
            web.get(f"{prefix}/time", ep(self._time, 1)),
            web.get(f"{prefix}/exchangeInfo", ep(self._exchange_info, 1)),
            web.get(f"{prefix}/depth", ep(self._depth, _depth_weight)),
        ]

    async def _ping(self, call: Call) -> Reply:
        return Reply({})

    async def _time(self, call: Call) -> Reply:
        return Reply({"serverTime": call.now_ms})

    async def _exchange_info(self, call: Call) -> Reply:
        body: dict[str, Any] = {"timezone": "UTC", "serverTime": call.now_ms}
        if self._venue.name == "usdm":
            body["futuresType"] = "U_MARGINED"
        body["rateLimits"] = self._rate_limits
        body["exchangeFilters"] = []
        body["symbols"] = [info.raw for info in self._engine.symbols.values()]
        return Reply(body)

    async def _depth(self, call: Call) -> Reply:
        limit = _depth_limit(call.params)
        symbol = call.params.required("symbol")
        now = call.now_ms
        if self._firehose is not None:
            fire = self._firehose.depth(symbol, limit)
            if fire is not None:
                return Reply(fire)
        if symbol not in self._engine.symbols:
            raise ApiError(-1121, "Invalid symbol.")
        snapshot = self._faults.snapshot(self._engine, symbol, limit)
        changed = snapshot.time_ms or now  # a book unchanged since it opened: as of now
        return Reply(
            {
                "lastUpdateId": snapshot.last_update_id,
                "E": now,
                "T": min(changed, now),
                "bids": snapshot.bids,
                "asks": snapshot.asks,
            }
        )
