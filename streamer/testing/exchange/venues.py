"""What differs between the venues the local exchange can imitate: spot, USD-M and COIN-M futures.

One frozen :class:`VenueRules` per venue, so that the server, the market hub, the REST layer and
the firehose read the same facts instead of each testing ``venue == "spot"`` (protocol §1.3,
§2.1, §2.2, §7.7, §7.8):

============================ ====================== =====================================
rule                         spot                   usdm / coinm
============================ ====================== =====================================
REST prefix                  ``/api/v3``            ``/fapi/v1`` / ``/dapi/v1``
stream paths                 ``/ws``, ``/stream``   usdm: ``/public/ws``, ``/public/stream``
                                                    and the unrouted ``/ws``, ``/stream``
                                                    (§7.8); coinm: ``/ws``, ``/stream``
diff speeds (ms)             1000 (default), 100    250 (default), 500, 100
incoming messages / s        5                      10
server ping / pong timeout   20 s / 60 s            3 min / 10 min
control-message ``id``       int64, string, null    unsigned integer only
request weight / minute      6000                   2400
update ids between events    contiguous             skip a seeded 1-3 per engine operation
============================ ====================== =====================================

The futures venues serve market data only: no orders, no WebSocket API (``ws_api`` in
``Endpoints.local`` names a path this exchange does not serve on them).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COINM", "SPOT", "USDM", "VENUES", "VenueRules", "venue_rules"]


@dataclass(frozen=True, slots=True)
class VenueRules:
    """The wire rules of one venue (see the module table)."""

    name: str
    rest_prefix: str
    stream_prefixes: tuple[str, ...]  # each serves /ws, /ws/<streams> and /stream below it
    diff_intervals_ms: tuple[int, ...]  # the first is the speed of a bare ``<sym>@depth``
    max_incoming_per_second: int
    ping_interval_s: float
    pong_timeout_s: float
    weight_limit: int
    max_depth_limit: int

    @property
    def futures(self) -> bool:
        """Whether the futures rules apply (``pu``, skipping ids, the futures shapes)."""
        return self.name != "spot"


SPOT = VenueRules(
    name="spot",
    rest_prefix="/api/v3",
    stream_prefixes=("",),
    diff_intervals_ms=(1000, 100),
    max_incoming_per_second=5,
    ping_interval_s=20.0,
    pong_timeout_s=60.0,
    weight_limit=6000,
    max_depth_limit=5000,
)
USDM = VenueRules(
    name="usdm",
    rest_prefix="/fapi/v1",
    stream_prefixes=("/public", ""),
    diff_intervals_ms=(250, 500, 100),
    max_incoming_per_second=10,
    ping_interval_s=180.0,
    pong_timeout_s=600.0,
    weight_limit=2400,
    max_depth_limit=1000,
)
COINM = VenueRules(
    name="coinm",
    rest_prefix="/dapi/v1",
    stream_prefixes=("",),
    diff_intervals_ms=(250, 500, 100),
    max_incoming_per_second=10,
    ping_interval_s=180.0,
    pong_timeout_s=600.0,
    weight_limit=2400,
    max_depth_limit=1000,
)
VENUES = {v.name: v for v in (SPOT, USDM, COINM)}


def venue_rules(name: str) -> VenueRules:
    """The rules of venue ``name``; ``ValueError`` for a venue this exchange cannot imitate."""
    try:
        return VENUES[name]
    except KeyError:
        raise ValueError(f"unknown venue {name!r}: expected one of {sorted(VENUES)}") from None
