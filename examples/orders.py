"""Place an order, watch it on the user stream, cancel it.

    BINANCE_API_KEY=... BINANCE_API_SECRET=... python examples/orders.py BTCUSDT   # real Binance
    BINANCE_API_KEY=... BINANCE_API_SECRET=... python examples/orders.py BTCUSDT \\
        --local http://127.0.0.1:P          # the URL and demo keys `streamer exchange` prints

It buys the smallest quantity the symbol's filters allow at the 10th-best bid (a price that
rests, far enough from the market not to fill at once), prints every order event until the
order is NEW, cancels it and prints the events until it is CANCELED. On real Binance this is a
real order on your account (cancelled within a second or so); use the testnet if in doubt.
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import ROUND_UP, Decimal

from streamer import Credentials, Endpoints, OrderStatus, OrderUpdate, Streamer


def smallest_quantity(price: Decimal, min_qty: Decimal, step: Decimal, notional: Decimal) -> str:
    """The least quantity on the step that meets both the lot size and the minimum notional."""
    qty = max(min_qty, notional / price)
    return str((qty / step).to_integral_value(ROUND_UP) * step)


async def main(symbol: str, endpoints: Endpoints, credentials: Credentials) -> None:
    async with Streamer(endpoints, symbols=[symbol], credentials=credentials) as s:
        await s.track_orders()  # the user stream, subscribed before anything is placed
        updates = s.order_updates()
        async with asyncio.timeout(30):
            async for _ in s.book(symbol):  # the first update: the book is synced
                break
        price = Decimal(s.view(symbol, 10).bids(10)[-1][0])
        filters = await s.rest.symbol_filters(symbol)
        assert filters.lot_size is not None
        notional = max((f.min_notional for f in filters.notional), default=Decimal(0))
        qty = smallest_quantity(
            price, filters.lot_size.min_qty, filters.lot_size.step_size, notional * Decimal("1.1")
        )
        order = await s.place_order(
            symbol, "BUY", "LIMIT", quantity=qty, price=price, time_in_force="GTC"
        )
        print(f"placed {order.client_order_id}: BUY {qty} {symbol} at {price}: {order.status}")
        await order.resolved(timeout=30)
        await s.cancel_order(symbol, order.client_order_id)
        async with asyncio.timeout(30):
            async for event in updates:
                if isinstance(event, OrderUpdate) and event.order.client_order_id == (
                    order.client_order_id
                ):
                    print(f"order {event.order.status} (was {event.previous}, {event.source})")
                    if event.order.status is OrderStatus.CANCELED:
                        break
        print(f"done: {order.client_order_id} {order.status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Place, watch and cancel one order.")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--local", metavar="URL", help="the local exchange (streamer exchange)")
    args = parser.parse_args()
    where = Endpoints.local(args.local) if args.local else Endpoints.binance_spot()
    asyncio.run(main(args.symbol.upper(), where, Credentials.from_env()))
