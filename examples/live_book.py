"""A live order book, printed as it moves.

    python examples/live_book.py BTCUSDT                      # real Binance spot
    python examples/live_book.py BTCUSDT --local http://127.0.0.1:P --updates 50

(``--local``: the URL ``streamer exchange`` prints.) Each line is one diff applied: its update
id, the best bid and ask (price, quantity: the exact strings Binance sent), and the levels it
changed. Stops after ``--updates`` updates or ``--seconds``; resyncs are printed as they happen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from streamer import Endpoints, Reset, Streamer


async def main(symbol: str, endpoints: Endpoints, updates: int, seconds: float) -> None:
    async with Streamer(endpoints, symbols=[symbol]) as s:
        events = s.events()

        async def show_resyncs() -> None:
            async for event in events:
                if isinstance(event, Reset):
                    print(f"resync {event.symbol}: {event.reason.value} ({event.detail})")

        watcher = asyncio.create_task(show_resyncs())
        count = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for update in s.book(symbol, depth=5):
                    (bid, bid_qty), (ask, ask_qty) = update.view.best_bid, update.view.best_ask
                    changed = len(update.bids) + len(update.asks)
                    print(
                        f"{update.update_id}  bid {bid} x {bid_qty}  ask {ask} x {ask_qty}  "
                        f"{'reloaded' if update.reloaded else f'{changed} levels changed'}"
                    )
                    count += 1
                    if count >= updates:
                        break
        watcher.cancel()
        print(f"{count} updates of {symbol}; last update id {s.view(symbol).last_update_id}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print a live Binance order book.")
    parser.add_argument("symbol", nargs="?", default="BTCUSDT")
    parser.add_argument("--local", metavar="URL", help="the local exchange (streamer exchange)")
    parser.add_argument("--updates", type=int, default=20, help="stop after N updates")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after S seconds")
    args = parser.parse_args()
    where = Endpoints.local(args.local) if args.local else Endpoints.binance_spot()
    asyncio.run(main(args.symbol.upper(), where, args.updates, args.seconds))
