"""The steps of ``streamer check``, on one started :class:`~streamer.aio.streamer.Streamer`.

Market steps: ``ping``, ``time`` (the server clock offset), ``exchange_info``, ``ticker``,
``depth``, ``klines``, ``book_sync`` and ``book_audit`` (a live book syncs, then an audit finds
it equal to a fresh snapshot). Trading steps (with credentials): ``account``,
``test_order_market``, ``test_order_limit``, ``user_stream``, then one real LIMIT BUY far below
the market: ``order_place``, ``order_stream`` (its ``executionReport`` on the user stream),
``order_query``, ``order_cancel`` and ``cancel_stream``. ``order_cancel`` runs whenever an
order may exist, whatever failed before it: the check never leaves an order behind knowingly.
The order is placed and cancelled by plain REST calls; the Streamer's order tracker hears of it
from the user stream only, which is what ``order_stream`` and ``cancel_stream`` check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from streamer.aio.fanout import EventConsumer
from streamer.aio.orders import OrderUpdates, new_client_order_id
from streamer.aio.streamer import Streamer
from streamer.check.runner import Skip, Step
from streamer.check.sanity import (
    CheckFailed,
    far_limit_order,
    judge_account,
    judge_depth,
    judge_klines,
    judge_ticker_near,
    min_quantity,
)
from streamer.errors import MalformedMessage, OrderNotFound, StreamerError, UnknownOrderStatus
from streamer.order_models import OrderEvent, OrderStatus, OrderUpdate
from streamer.sansio.book_sync import AuditInconclusive, AuditPassed, DriftDetected, Reset, Synced
from streamer.sansio.filters import SymbolFilters, prepare_order, quantize_qty
from streamer.sansio.klines import Kline

__all__ = ["MARKET_STEPS", "MAX_OFFSET_MS", "TRADING_STEPS", "Checks"]

#: A clock further than this from the server's would have every signed request refused (the
#: default recvWindow); the Streamer corrects its timestamps, but the host's clock is wrong.
MAX_OFFSET_MS = 5000.0
#: The MARKET test order is worth this many minimum notionals: the exchange values it at its
#: own average price, which may be below the last price.
MARKET_MARGIN = Decimal("1.5")

_NO_EVENT = "no executionReport %s on the user stream"

MARKET_STEPS = (
    "ping", "time", "exchange_info", "ticker", "depth", "klines", "book_sync", "book_audit",
)  # fmt: skip
TRADING_STEPS = (
    "account", "test_order_market", "test_order_limit", "user_stream", "order_place",
    "order_stream", "order_query", "order_cancel", "cancel_stream",
)  # fmt: skip


@dataclass
class Checks:
    """The steps and what they learn along the way (later steps use it, or fetch it)."""

    s: Streamer
    symbol: str
    filters: SymbolFilters | None = None
    last_price: Decimal | None = None
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    events: EventConsumer | None = None
    updates: OrderUpdates | None = None
    seen: list[OrderEvent] = field(default_factory=list)
    cid: str | None = None
    order_price: Decimal | None = None
    order_qty: Decimal | None = None
    placed: bool = False  # the placement was answered: the order exists
    cancelled: bool = False

    def steps(self, *, market: str | None, trading: str | None) -> list[Step]:
        """Every step; ``market`` / ``trading``: why that group is left out (None: run it).
        ``ping`` and ``time`` always run: nothing works without them."""
        m, t = market, trading
        return [
            Step("ping", self.ping),
            Step("time", self.time, ("ping",)),
            Step("exchange_info", self.exchange_info, ("ping",), m),
            Step("ticker", self.ticker, ("exchange_info",), m),
            Step("depth", self.depth, ("exchange_info",), m),
            Step("klines", self.klines, ("exchange_info",), m),
            Step("book_sync", self.book_sync, ("depth",), m, "the book did not sync"),
            Step("book_audit", self.book_audit, ("book_sync",), m, "no audit finished"),
            Step("account", self.account, ("ping",), t),
            Step("test_order_market", self.test_market, ("account", "ticker"), t),
            Step("test_order_limit", self.test_limit, ("account", "depth"), t),
            Step("user_stream", self.user_stream, ("account",), t),
            Step("order_place", self.order_place, ("test_order_limit", "user_stream"), t),
            Step("order_stream", self.order_stream, ("order_place",), t, _NO_EVENT % "NEW"),
            Step("order_query", self.order_query, ("order_place",), t),
            Step("order_cancel", self.order_cancel, ("user_stream",), t),
            Step("cancel_stream", self.cancel_stream, ("order_cancel",), t, _NO_EVENT % "CANCELED"),
        ]

    # -- what later steps need -----------------------------------------------------------------

    async def _filters(self) -> SymbolFilters:
        if self.filters is None:
            self.filters = await self.s.rest.symbol_filters(self.symbol)
        return self.filters

    async def _last_price(self) -> Decimal:
        if self.last_price is None:
            self.last_price = await self.s.rest.ticker_price(self.symbol)
        return self.last_price

    async def _best_bid(self) -> Decimal:
        if self.best_bid is None:
            tick = (await self._filters()).price_filter
            body = await self.s.rest.depth(self.symbol, 5)
            self.best_bid, self.best_ask = judge_depth(body, tick.tick_size if tick else None)
        return self.best_bid

    # -- market --------------------------------------------------------------------------------

    async def ping(self) -> str:
        path = self.s.endpoints.rest_prefix + "/ping"
        response = await self.s.rest.rest.request("GET", path, weight=1, max_wait=10.0)
        if response.body.strip() != b"{}":
            raise CheckFailed(f"GET {path} answered {response.body[:40]!r}, not {{}}")
        return f"GET {path} answered at {self.s.endpoints.rest}"

    async def time(self) -> str:
        offset = await self.s.rest.sync_time()
        text = f"server clock {offset:+.0f} ms from ours"
        if abs(offset) > MAX_OFFSET_MS:
            raise CheckFailed(f"{text}: more than {MAX_OFFSET_MS:.0f} ms (sync this host's clock)")
        return text

    async def exchange_info(self) -> str:
        body = await self.s.rest.exchange_info([self.symbol])
        server = body.get("serverTime")
        if not isinstance(server, int) or isinstance(server, bool):
            raise CheckFailed(f"exchangeInfo has no integer serverTime: {server!r:.40}")
        filters = await self._filters()
        if filters.status != "TRADING":
            raise CheckFailed(f"{self.symbol} is {filters.status}, not TRADING")
        for name in ("LIMIT", "MARKET"):
            if name not in filters.order_types:
                raise CheckFailed(f"{self.symbol} takes no {name} orders")
        if filters.price_filter is None or filters.lot_size is None:
            raise CheckFailed(f"{self.symbol} lists no PRICE_FILTER or LOT_SIZE")
        notional = max((f.min_notional for f in filters.notional), default=Decimal(0))
        return (
            f"{self.symbol} {filters.status}, tick {filters.price_filter.tick_size}, step "
            f"{filters.lot_size.step_size}, min notional {notional}, "
            f"{len(filters.order_types)} order types"
        )

    async def ticker(self) -> str:
        price = await self._last_price()
        if price <= 0:
            raise CheckFailed(f"last price {price} is not positive")
        return f"{self.symbol} last price {price}"

    async def depth(self) -> str:
        filters = await self._filters()
        tick = filters.price_filter.tick_size if filters.price_filter else None
        body = await self.s.rest.depth(self.symbol, 100)
        self.best_bid, self.best_ask = judge_depth(body, tick)
        text = (
            f"{len(body['bids'])} bids descending, {len(body['asks'])} asks ascending, "
            f"best {self.best_bid} / {self.best_ask}"
        )
        if self.last_price is not None:
            text += "; " + judge_ticker_near(self.last_price, self.best_bid, self.best_ask)
        return text

    async def klines(self) -> str:
        try:
            candles: list[Kline] = await self.s.rest.klines(self.symbol, "1m", limit=10)
        except MalformedMessage as exc:
            raise CheckFailed(f"klines: {exc}") from exc
        return judge_klines(candles)

    async def book_sync(self) -> str:
        self.events = events = self.s.events()
        await self.s.subscribe(self.symbol)
        resets: list[str] = []
        async for event in events:
            if isinstance(event, Reset) and event.symbol == self.symbol:
                resets.append(f"{event.reason.value}: {event.detail}")
            if isinstance(event, Synced) and event.symbol == self.symbol:
                view = self.s.view(self.symbol, 5)
                text = f"synced at update {event.last_update_id}"
                if view.synced and view.best_bid and view.best_ask:
                    text += f", best {view.best_bid[0]} / {view.best_ask[0]}"
                if resets:
                    text += f" after {len(resets)} resync(s) ({resets[-1]})"
                return text
        raise CheckFailed("the Streamer closed before the book synced")

    async def book_audit(self) -> str:
        assert self.events is not None
        async for event in self.events:
            if getattr(event, "symbol", None) != self.symbol:
                continue
            if isinstance(event, AuditPassed):
                return (
                    f"audit passed: the book equals snapshot {event.snapshot_id} "
                    f"({event.levels_checked} levels compared)"
                )
            if isinstance(event, DriftDetected):
                first = event.mismatches[0] if event.mismatches else None
                example = (
                    f" (e.g. {first.side} {first.price}: ours {first.actual}, "
                    f"theirs {first.expected})"
                    if first is not None
                    else ""
                )
                raise CheckFailed(
                    f"drift: {len(event.mismatches)} level(s) differ from snapshot "
                    f"{event.snapshot_id}{example}"
                )
            if isinstance(event, AuditInconclusive):
                continue  # the snapshot did not overlap the book: the next audit will
        raise CheckFailed("the Streamer closed before an audit")

    # -- trading -------------------------------------------------------------------------------

    async def account(self) -> str:
        return judge_account(await self.s.rest.account())

    async def _test(self, type_: str, quantity: Decimal, price: Decimal | None) -> str:
        filters = await self._filters()
        params = prepare_order(
            filters,
            side="BUY",
            type=type_,
            quantity=quantity,
            price=price,
            time_in_force="GTC" if price is not None else None,
            client_order_id=new_client_order_id(),
            reference_price=await self._last_price(),
        )
        answer = await self.s.rest.test_order(params)
        if answer != {}:
            raise CheckFailed(f"order/test answered {answer!r:.60}, not {{}}")
        at = f" at {params['price']}" if price is not None else ""
        return f"{type_} BUY {params['quantity']}{at} validated by the exchange"

    async def test_market(self) -> str:
        filters = await self._filters()
        qty = min_quantity(filters, await self._last_price(), MARKET_MARGIN)
        if filters.market_lot_size is not None:
            qty = quantize_qty(filters, qty, ROUND_CEILING, market=True)
        return await self._test("MARKET", qty, None)

    async def test_limit(self) -> str:
        filters = await self._filters()
        price, qty = far_limit_order(filters, await self._best_bid(), await self._last_price())
        self.order_price, self.order_qty = price, qty
        return await self._test("LIMIT", qty, price)

    async def user_stream(self) -> str:
        self.updates = self.s.order_updates()  # collects from now on
        await self.s.track_orders()
        return "subscribed to the account's user-data stream, reconciled once"

    async def order_place(self) -> str:
        # Straight through the REST call, not Streamer.place_order: the order tracker then
        # learns of the order from the user stream alone, so its update (the next step) proves
        # the stream delivered it, instead of racing the REST answer for who says NEW first.
        filters = await self._filters()
        if self.order_price is None or self.order_qty is None:
            bid, last = await self._best_bid(), await self._last_price()
            self.order_price, self.order_qty = far_limit_order(filters, bid, last)
        cid = new_client_order_id()
        params = prepare_order(
            filters,
            side="BUY",
            type="LIMIT",
            quantity=self.order_qty,
            price=self.order_price,
            time_in_force="GTC",
            client_order_id=cid,
        )
        self.cid = cid  # from here on it may exist: order_cancel will see to it
        try:
            body = await self.s.rest.place_order(params)
        except UnknownOrderStatus as exc:
            raise CheckFailed(f"the placement's outcome is unknown: {exc}") from exc
        except StreamerError:
            self.cid = None  # a definite refusal, or never sent: it does not exist
            raise
        self.placed = True
        status = body.get("status")
        if status != "NEW":
            raise CheckFailed(f"order {cid} is {status!r}, not NEW (it should rest, far off)")
        return (
            f"LIMIT BUY {params['quantity']} at {params['price']} resting (order id "
            f"{body.get('orderId')}, client id {cid})"
        )

    async def _stream_update(self, wanted: OrderStatus) -> OrderUpdate:
        """The user stream's update of our order to ``wanted`` (seen before now, or next)."""
        assert self.updates is not None

        def match(event: OrderEvent) -> bool:
            return (
                isinstance(event, OrderUpdate)
                and event.source == "stream"
                and event.order.client_order_id == self.cid
                and event.order.status is wanted
            )

        for event in self.seen:
            if match(event):
                return event  # type: ignore[return-value]
        async for event in self.updates:
            self.seen.append(event)
            if match(event):
                return event  # type: ignore[return-value]
        raise CheckFailed("the Streamer closed before the user stream said it")

    async def order_stream(self) -> str:
        update = await self._stream_update(OrderStatus.NEW)
        return f"executionReport NEW for {self.cid} (order id {update.order.order_id})"

    async def order_query(self) -> str:
        assert self.cid is not None
        body = await self.s.rest.query_order(self.symbol, client_order_id=self.cid)
        status, price = body.get("status"), body.get("price")
        if status != "NEW":
            raise CheckFailed(f"the query says {status!r}, not NEW")
        if not isinstance(price, str) or Decimal(price) != self.order_price:
            raise CheckFailed(f"the query says price {price!r}, not {self.order_price}")
        return f"GET /api/v3/order: NEW, price {price}, origQty {body.get('origQty')}"

    async def order_cancel(self) -> str:
        if self.cid is None:
            raise Skip("no order was placed")
        try:
            body = await self.s.rest.cancel_order(self.symbol, client_order_id=self.cid)
        except OrderNotFound:
            if self.placed:
                raise
            raise Skip(f"the exchange does not know order {self.cid}: it was not placed") from None
        if body.get("status") != "CANCELED":
            raise CheckFailed(f"the cancel answered status {body.get('status')!r}")
        self.cancelled = True
        return f"order {self.cid} CANCELED"

    async def cancel_stream(self) -> str:
        await self._stream_update(OrderStatus.CANCELED)
        return f"executionReport CANCELED for {self.cid}"
