"""A tiny trading bot, run while the exchange misbehaves: a dropped diff and an order timeout.

    python examples/bot_under_faults.py                  # its own local exchange, in-process
    BINANCE_API_KEY=... BINANCE_API_SECRET=... python examples/bot_under_faults.py \\
        --local http://127.0.0.1:P                       # `streamer exchange`; faults over HTTP
    BINANCE_API_KEY=... BINANCE_API_SECRET=... python examples/bot_under_faults.py --live
                                                         # real Binance: the bot, no faults

The bot quotes: each round it waits for a synced book, rests a minimal buy at the 5th-best bid,
awaits the order's outcome and cancels it. What it must get right under the faults: a book with
a gap is resynced before it is read again (the Streamer does it; the bot only reads synced
views), and an order whose answer never came is UNKNOWN, awaited, and never sent twice.
The faults come from the fault helper of ``streamer.testing`` (the ``fault`` fixture of the
pytest plugin; here ``FaultHelper`` by hand), or over HTTP (``POST /_fake/faults``) when the
exchange is another process. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import ROUND_UP, Decimal
from typing import Any

import aiohttp

from streamer import Credentials, Endpoints, OrderStatus, Reset, Streamer

SYMBOL = "BTCUSDT"
Inject = Callable[[dict[str, Any]], Awaitable[None]]  # schedules one fault (JSON form)


async def minimal_quantity(s: Streamer, price: Decimal) -> str:
    """The least quantity the symbol's lot size and minimum notional allow at ``price``."""
    filters = await s.rest.symbol_filters(SYMBOL)
    assert filters.lot_size is not None
    notional = max((f.min_notional for f in filters.notional), default=Decimal(0))
    qty = max(filters.lot_size.min_qty, notional * Decimal("1.1") / price)
    step = filters.lot_size.step_size
    return str((qty / step).to_integral_value(ROUND_UP) * step)


async def quote_once(s: Streamer) -> tuple[str, OrderStatus, OrderStatus]:
    """One round: rest a buy at the 5th bid, await its outcome, cancel it."""
    async with asyncio.timeout(60):
        async for update in s.book(SYMBOL):  # yields only while the book is synced
            price = Decimal(update.view.bids(5)[-1][0])
            break
    order = await s.place_order(
        SYMBOL, "BUY", "LIMIT", quantity=await minimal_quantity(s, price), price=price,
        time_in_force="GTC",
    )  # fmt: skip
    first = order.status  # UNKNOWN if the answer did not come in time: never re-sent
    outcome = await order.resolved(timeout=60)
    if outcome.status is OrderStatus.NEW:
        await s.cancel_order(SYMBOL, order.client_order_id)
    return order.client_order_id, first, outcome.status


async def run_bot(s: Streamer, inject: Inject | None, rounds: int = 3) -> dict[str, Any]:
    """The bot's rounds, with one fault before each of the first two (when it can inject)."""
    events = s.events()
    await s.track_orders()
    rounds_done = []
    for n in range(rounds):
        if inject is not None and n == 0:
            async with asyncio.timeout(60):
                async for _ in s.book(SYMBOL):  # synced first: then a lost diff is a gap
                    break
            await inject({"kind": "drop_diff", "symbol": SYMBOL})
            async with asyncio.timeout(60):  # wait for the resync before quoting again
                async for event in events:
                    if isinstance(event, Reset) and event.symbol == SYMBOL:
                        print(f"book resync: {event.reason.value}")
                        break
        if inject is not None and n == 1:
            await inject({"kind": "user_stream_silent", "count": 2})  # no report either
            await inject({"kind": "order_timeout", "delayMs": 1500})
        cid, first, final = await quote_once(s)
        print(f"round {n + 1}: order {cid} answered {first}, resolved {final}")
        rounds_done.append({"client_order_id": cid, "first": first.value, "final": final.value})
    return {
        "rounds": rounds_done,
        "resyncs": s.stats()["books"][SYMBOL]["resyncs"],
        "unknown_resolved": sum(r["first"] == "UNKNOWN" for r in rounds_done),
        "orders_tracked": len(s.orders()),
    }


async def against(endpoints: Endpoints, credentials: Credentials, inject: Inject | None) -> None:
    async with Streamer(
        endpoints, symbols=[SYMBOL], credentials=credentials, order_timeout=0.5
    ) as s:
        print(json.dumps(await run_bot(s, inject)))


async def in_process() -> None:
    """Its own exchange, and the pytest plugin's fault helper used by hand."""
    from streamer.testing.pytest_plugin import FaultHelper, start_exchange

    exchange, ex = await start_exchange(
        symbols=[SYMBOL], seed=1, rate=50.0, levels=100, balances=None, commission=None
    )
    fault = FaultHelper(ex.faults, ex.account_id)
    kinds = {
        "drop_diff": lambda f: fault.drop_diff(f["symbol"]),
        "user_stream_silent": lambda f: fault.user_stream_silent(count=f["count"]),
        "order_timeout": lambda f: fault.order_timeout(delay_ms=f["delayMs"]),
    }

    async def inject(f: dict[str, Any]) -> None:
        kinds[f["kind"]](f)

    try:
        await against(ex.endpoints, ex.credentials, inject)
    finally:
        await exchange.close()


async def over_http(url: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def inject(f: dict[str, Any]) -> None:
            async with http.post(f"{url.rstrip('/')}/_fake/faults", json=f) as response:
                response.raise_for_status()

        await against(Endpoints.local(url), Credentials.from_env(), inject)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A tiny bot under injected faults.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", metavar="URL", help="a `streamer exchange` (faults over HTTP)")
    where.add_argument("--live", action="store_true", help="real Binance spot, no faults")
    args = parser.parse_args()
    if args.live:
        asyncio.run(against(Endpoints.binance_spot(), Credentials.from_env(), None))
    elif args.local:
        asyncio.run(over_http(args.local))
    else:
        asyncio.run(in_process())
