"""Engine invariants under random order flow: books, diffs, balances, locks and fees stay exact.

The flow mixes every order type (stop orders too, triggered by the users' and the simulated
market's trades), and the users pay commissions: every asset's total over all accounts, the fee
account included, never changes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from random import Random
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamer.testing.exchange.engine import (
    Commission,
    DepthDiff,
    Engine,
    EngineError,
    EngineOutput,
    Snapshot,
    SymbolInfo,
)
from streamer.testing.exchange.symbols import load_exchange_info, symbol_infos

D = Decimal
SYMBOLS = ["BTCUSDT", "ETHBTC", "BNBUSDT"]
INFOS = symbol_infos(load_exchange_info(), SYMBOLS)
BY_NAME = {i.symbol: i for i in INFOS}
RICH = {"BTC": D("50"), "USDT": D("2000000"), "ETH": D("500"), "BNB": D("5000")}
EIGHT = D("1E-8")
# The users' rates: Binance's default, and distinct maker and taker rates.
RATES = [Commission(), Commission(maker=D("0.0002"), taker=D("0.00075"))]


# --- an independent follower of the diff stream ----------------------------------------------


@dataclass
class Follower:
    """Rebuilds one symbol's book from a snapshot and the diffs, the way a client does (§2.1)."""

    snapshot_id: int
    bids: dict[str, str]
    asks: dict[str, str]
    last_u: int | None = None  # last applied diff's u; None until the first one

    @classmethod
    def start(cls, snap: Snapshot) -> Follower:
        return cls(snap.last_update_id, dict(snap.bids), dict(snap.asks))

    def apply(self, diff: DepthDiff) -> None:
        if self.last_u is None:
            if diff.last_update_id <= self.snapshot_id:
                return  # older than the snapshot: dropped
            assert diff.first_update_id <= self.snapshot_id + 1 <= diff.last_update_id
        else:
            assert diff.first_update_id == self.last_u + 1, "diffs must be contiguous"
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, qty in levels:
                if D(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_u = diff.last_update_id

    def current_id(self) -> int:
        return self.last_u if self.last_u is not None else self.snapshot_id

    def assert_matches(self, engine: Engine, symbol: str) -> None:
        full = engine.full_book(symbol)
        assert full.last_update_id == self.current_id()
        assert dict(full.bids) == self.bids and dict(full.asks) == self.asks


# --- invariants ------------------------------------------------------------------------------


def nonzero(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    return {key: value for key, value in amounts.items() if value}


def totals(engine: Engine) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for account in engine.account_ids():
        for asset, (free, locked) in engine.balances(account).items():
            assert free >= 0 and locked >= 0, (account, asset, free, locked)
            out[asset] += free + locked
    return nonzero(out)


def check_books(engine: Engine) -> None:
    for symbol in SYMBOLS:
        book = engine.full_book(symbol)
        bids = [D(p) for p, _ in book.bids]
        asks = [D(p) for p, _ in book.asks]
        assert bids == sorted(set(bids), reverse=True) and asks == sorted(set(asks))
        assert all(D(q) > 0 for _, q in book.bids + book.asks)
        if bids and asks:
            assert bids[0] < asks[0], f"{symbol} crossed: {bids[0]} >= {asks[0]}"


def check_locks(engine: Engine) -> None:
    """Locked balance == what open orders need: base qty of sells, ceil8(price*qty) of buys
    (a waiting STOP_LOSS / TAKE_PROFIT buy: at its stop price)."""
    for account in engine.account_ids():
        need: dict[str, Decimal] = defaultdict(Decimal)
        for order in engine.open_orders(account, None):
            info = BY_NAME[order["symbol"]]
            left = D(order["origQty"]) - D(order["executedQty"])
            assert left > 0 and order["status"] in ("NEW", "PARTIALLY_FILLED")
            assert order["isWorking"] == (order["workingTime"] >= 0)
            if order["type"] in ("STOP_LOSS", "TAKE_PROFIT"):
                assert not order["isWorking"]  # once triggered, a MARKET order never rests
            if order["side"] == "SELL":
                need[info.base_asset] += left
            else:
                price = D(order["price"]) or D(order["stopPrice"])
                need[info.quote_asset] += (price * left).quantize(EIGHT, rounding=ROUND_CEILING)
        locked = {asset: lk for asset, (_, lk) in engine.balances(account).items() if lk}
        assert locked == nonzero(need), account


def check_user_orders(engine: Engine, users: list[int]) -> None:
    """No order fills beyond its quantity; its trades add up to its executed quantity; each
    fill's commission is the rate times what it received, half up to 8 decimals, and the fee
    account holds exactly the sum of every commission."""
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for user in users:
        rates = engine.commission(user)
        for symbol in SYMBOLS:
            filled: dict[int, Decimal] = defaultdict(Decimal)
            quote: dict[int, Decimal] = defaultdict(Decimal)
            info = BY_NAME[symbol]
            for row in all_trades(engine, user, symbol):
                filled[row["orderId"]] += D(row["qty"])
                quote[row["orderId"]] += D(row["quoteQty"])
                received = D(row["qty"]) if row["isBuyer"] else D(row["quoteQty"])
                rate = rates.maker if row["isMaker"] else rates.taker
                fee = (received * rate).quantize(EIGHT, rounding=ROUND_HALF_UP)
                assert D(row["commission"]) == fee, row
                asset = info.base_asset if row["isBuyer"] else info.quote_asset
                assert row["commissionAsset"] == asset
                paid[asset] += fee
            for order in engine.all_orders(user, symbol=symbol, limit=1000):
                executed, orig = D(order["executedQty"]), D(order["origQty"])
                assert executed <= orig
                assert (order["status"] == "FILLED") == (executed == orig > 0)
                assert filled[order["orderId"]] == executed
                assert quote[order["orderId"]] == D(order["cummulativeQuoteQty"])
    held = {a: free + locked for a, (free, locked) in engine.balances(engine.fee_account).items()}
    assert nonzero(held) == nonzero(paid)


def all_trades(engine: Engine, user: int, symbol: str) -> list[dict[str, Any]]:
    rows = engine.my_trades(user, symbol=symbol, from_id=0, limit=1000)
    while len(rows) % 1000 == 0 and rows:
        more = engine.my_trades(user, symbol=symbol, from_id=rows[-1]["id"] + 1, limit=1000)
        if not more:
            break
        rows += more
    return rows


def check_reports(out: EngineOutput, users: list[int]) -> None:
    """User events go to user accounts only, and no report fills beyond the order quantity."""
    for user_event in out.user_events:
        assert user_event.account_id in users
        report = user_event.event
        if report["e"] == "executionReport" and report["q"] != "0.00000000":
            assert D(report["z"]) <= D(report["q"])


@dataclass
class Harness:
    """An engine, its users, diff followers and the running checks."""

    engine: Engine
    users: list[int]
    followers: dict[str, Follower] = field(default_factory=dict)
    late: dict[str, Follower] = field(default_factory=dict)  # started from a mid-period snapshot
    start_totals: dict[str, Decimal] = field(default_factory=dict)
    now: int = 1_000

    @classmethod
    def create(cls, seed: int, levels: int) -> Harness:
        engine = Engine(INFOS, seed=seed, levels=levels)
        users = [engine.create_account(RICH, rates) for rates in RATES]
        harness = cls(engine, users)
        harness.followers = {s: Follower.start(engine.full_book(s)) for s in SYMBOLS}
        harness.start_totals = totals(engine)
        engine.drain()
        return harness

    def drain_and_follow(self, compare: bool = True) -> EngineOutput:
        out = self.engine.drain()
        for diff in out.diffs:
            self.followers[diff.symbol].apply(diff)
            if diff.symbol in self.late:
                self.late[diff.symbol].apply(diff)
        check_reports(out, self.users)
        if compare:
            for symbol, follower in self.followers.items():
                follower.assert_matches(self.engine, symbol)
            for symbol, follower in self.late.items():
                follower.assert_matches(self.engine, symbol)
        trade_ids: dict[str, int] = {}
        for trade in out.trades:
            assert trade.trade_id > trade_ids.get(trade.symbol, 0)
            trade_ids[trade.symbol] = trade.trade_id
        return out

    def check_all(self) -> None:
        check_books(self.engine)
        check_locks(self.engine)
        check_user_orders(self.engine, self.users)
        assert totals(self.engine) == self.start_totals

    def unit_qty(self, info: SymbolInfo, mid: Decimal) -> Decimal:
        """A quantity step-aligned and comfortably above the notional filter at ``mid``."""
        raw = info.min_notional * 2 / mid
        return max(
            (raw / info.step_size).to_integral_value(ROUND_CEILING) * info.step_size, info.min_qty
        )

    def place(
        self,
        user: int,
        symbol: str,
        side: str,
        kind: str,
        offset: int,
        lots: int,
        stop_offset: int = 1,
    ) -> str:
        """Place an order near the touch (a stop ``stop_offset`` ticks from the last price);
        its final status, or the error code as text."""
        info = BY_NAME[symbol]
        snap = self.engine.snapshot(symbol, 1)
        if not snap.bids or not snap.asks:
            return "no book"
        mid = ((D(snap.bids[0][0]) + D(snap.asks[0][0])) / 2 / info.tick_size).to_integral_value()
        mid *= info.tick_size
        price = mid + offset * info.tick_size
        qty = self.unit_qty(info, mid) * lots
        order_type, _, tif = kind.partition(" ")
        args: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "order_type": order_type,
            "quantity": qty,
            "price": price,
            "time_in_force": tif or None,
            "client_order_id": None,
            "now_ms": self.now,
        }
        if order_type in STOP_TYPES:
            args["stop_price"] = D(self.engine.last_price(symbol)) + stop_offset * info.tick_size
            if args["stop_price"] <= 0:
                return "no price"
        if order_type in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
            args["price"] = None
            if kind == "MARKET QUOTE":
                args["time_in_force"] = None
                args["quantity"] = None
                args["quote_order_qty"] = (qty * mid).quantize(D("0.01"))
        if price <= 0:
            return "no price"
        before = self.engine.last_update_id(symbol)
        try:
            response = self.engine.place_order(user, **args)
        except EngineError as exc:
            assert exc.code in (-2010, -1013), exc
            assert self.engine.last_update_id(symbol) == before  # a rejection changes nothing
            return str(exc.code)
        return f"{kind} {response.get('status', 'ACK')}"

    def cancel(self, user: int, index: int) -> None:
        orders = self.engine.open_orders(user, None)
        if not orders:
            return
        order = orders[index % len(orders)]
        by_client_id = index % 2 == 0
        self.engine.cancel_order(
            user,
            symbol=order["symbol"],
            order_id=None if by_client_id else order["orderId"],
            orig_client_order_id=order["clientOrderId"] if by_client_id else None,
            new_client_order_id=None,
            now_ms=self.now,
        )

    def triggered(self) -> int:
        """How many of the users' stop orders have triggered (started working)."""
        return sum(
            1
            for user in self.users
            for symbol in SYMBOLS
            for order in self.engine.all_orders(user, symbol=symbol, limit=None)
            if order["type"] in STOP_TYPES and order["isWorking"]
        )

    def snapshot_mid_period(self, symbol: str) -> None:
        """A snapshot taken between drains starts a second follower (ahead of the diffs)."""
        self.late[symbol] = Follower.start(self.engine.snapshot(symbol, 5000))


STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ORDER_KINDS = [
    *["LIMIT GTC", "LIMIT IOC", "LIMIT FOK", "LIMIT_MAKER", "MARKET", "MARKET QUOTE"],
    *["STOP_LOSS", "STOP_LOSS_LIMIT GTC", "STOP_LOSS_LIMIT IOC", "TAKE_PROFIT"],
    *["TAKE_PROFIT_LIMIT GTC", "TAKE_PROFIT_LIMIT FOK"],
]
ops = st.one_of(
    st.tuples(
        st.just("place"),
        st.integers(0, 1),
        st.sampled_from(SYMBOLS),
        st.sampled_from(["BUY", "SELL"]),
        st.sampled_from(ORDER_KINDS),
        st.integers(-12, 12),
        st.integers(1, 25),
        st.integers(-6, 6),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 1), st.integers(0, 40)),
    st.tuples(st.just("step"), st.integers(1, 150)),
    st.tuples(st.just("snapshot"), st.sampled_from(SYMBOLS)),
    st.just(("drain",)),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(seed=st.integers(0, 2**32), actions=st.lists(ops, min_size=1, max_size=40))
def test_random_order_flow_keeps_every_invariant(seed: int, actions: list[tuple[Any, ...]]) -> None:
    """Books never cross; diffs are contiguous and rebuild the book; balances, locks and fees
    exact, with stop orders triggered inside the flow."""
    h = Harness.create(seed, levels=8)
    for action in actions:
        h.now += 7
        if action[0] == "place":
            _, user, symbol, side, kind, offset, lots, stop_offset = action
            event(h.place(h.users[user], symbol, side, kind, offset, lots, stop_offset))
        elif action[0] == "cancel":
            h.cancel(h.users[action[1]], action[2])
        elif action[0] == "step":
            h.engine.step(h.now, action[1])
        elif action[0] == "snapshot":
            h.snapshot_mid_period(action[1])
        else:
            h.drain_and_follow()
        check_books(h.engine)
        assert totals(h.engine) == h.start_totals
    h.drain_and_follow()
    h.check_all()
    event(f"stops triggered: {min(h.triggered(), 3)}")


def test_long_seeded_market_run_keeps_depth_and_invariants() -> None:
    """100k simulated actions with user flow: depth stays near `levels`; every invariant holds."""
    levels = 50
    h = Harness.create(seed=2024, levels=levels)
    rng = Random(7)
    placed = 0
    for chunk in range(1_000):
        h.now += 10
        h.engine.step(h.now, 100)
        if chunk % 4 == 0:
            kind = rng.choice(ORDER_KINDS)
            user = rng.choice(h.users)
            h.place(
                user,
                rng.choice(SYMBOLS),
                rng.choice(["BUY", "SELL"]),
                kind,
                rng.randint(-8, 8),
                rng.randint(1, 5),
                rng.randint(-4, 4),
            )
            placed += 1
        if chunk % 9 == 0:
            h.cancel(rng.choice(h.users), rng.randrange(1000))
        if chunk % 50 == 25:
            h.snapshot_mid_period(rng.choice(SYMBOLS))
            h.engine.step(h.now, 30)  # changes after the snapshot, before the next drain
        out = h.drain_and_follow(compare=chunk % 10 == 0)
        assert out.diffs  # 100 actions over 3 symbols always change some book
        if chunk % 100 == 99:
            h.check_all()
            for symbol in SYMBOLS:
                book = h.engine.full_book(symbol)
                assert levels * 0.6 <= len(book.bids) <= levels * 1.3, (symbol, len(book.bids))
                assert levels * 0.6 <= len(book.asks) <= levels * 1.3, (symbol, len(book.asks))
    assert placed == 250
    trades = sum(len(all_trades(h.engine, u, s)) for u in h.users for s in SYMBOLS)
    assert trades > 50  # the users' orders really traded with the market
    assert h.triggered() > 5  # stop orders triggered inside the flow
