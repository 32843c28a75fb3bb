"""Builders of the exchange's order facts, spelled as Binance spells them (protocol §3.3, §4.3).

Numbers are 8-decimal strings, ids and times JSON integers (protocol §9.2, §9.10), so the
tracker sees exactly what the wire carries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

SYMBOL = "BTCUSDT"


def d8(value: str | int | Decimal) -> str:
    """A number in Binance's 8-decimal spelling."""
    return f"{Decimal(value):.8f}"


def report(
    *,
    oid: int = 1,
    cid: str = "c1",
    x: str = "NEW",
    status: str | None = None,
    z: str | int = 0,
    q: str | int = 1,
    p: str | int = 100,
    time: int = 1000,
    trade: int = -1,
    last_qty: str | int = 0,
    last_price: str | int = 0,
    commission: str = "0",
    commission_asset: str | None = None,
    maker: bool = False,
    orig: str = "",
    symbol: str = SYMBOL,
    side: str = "BUY",
    type: str = "LIMIT",
    quote: str | int | None = None,
    working: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """An executionReport; ``status`` (``X``) defaults to ``x``, except TRADE."""
    if status is None:
        status = "PARTIALLY_FILLED" if x == "TRADE" else x
    if quote is None:
        quote = Decimal(z) * Decimal(p)
    event: dict[str, Any] = {
        "e": "executionReport",
        "E": time + 1,
        "s": symbol,
        "c": cid,
        "S": side,
        "o": type,
        "f": "GTC",
        "q": d8(q),
        "p": d8(p),
        "P": d8(0),
        "F": d8(0),
        "g": -1,
        "C": orig,
        "x": x,
        "X": status,
        "r": "NONE",
        "i": oid,
        "l": d8(last_qty),
        "z": d8(z),
        "L": d8(last_price),
        "n": commission,
        "N": commission_asset,
        "T": time,
        "t": trade,
        "I": 1,
        "w": working,
        "m": maker,
        "M": False,
        "O": 900,
        "Z": d8(quote),
        "Y": d8(Decimal(last_qty) * Decimal(last_price)),
        "Q": d8(0),
    }
    event.update(extra)
    return event


def fill_report(
    *,
    trade: int,
    qty: str | int,
    z: str | int,
    status: str = "PARTIALLY_FILLED",
    price: str | int = 100,
    commission: str = "0.00100000",
    commission_asset: str = "BNB",
    **kw: Any,
) -> dict[str, Any]:
    """An executionReport of one trade (x=TRADE)."""
    return report(
        x="TRADE",
        status=status,
        trade=trade,
        last_qty=qty,
        last_price=price,
        z=z,
        commission=commission,
        commission_asset=commission_asset,
        **kw,
    )


def rest_order(
    *,
    oid: int = 1,
    cid: str = "c1",
    status: str = "NEW",
    z: str | int = 0,
    q: str | int = 1,
    p: str | int = 100,
    time: int = 1000,
    time_key: str = "transactTime",
    symbol: str = SYMBOL,
    side: str = "BUY",
    type: str = "LIMIT",
    fills: list[dict[str, Any]] | None = None,
    orig: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A REST order object: a RESULT/FULL place answer (``fills``), a cancel answer
    (``orig``: the order's id, ``cid`` the cancel's) or, with ``time_key="updateTime"``, a
    query answer / openOrders row."""
    body: dict[str, Any] = {"symbol": symbol, "orderId": oid, "orderListId": -1}
    if orig is not None:
        body["origClientOrderId"] = orig
    body.update(
        {
            "clientOrderId": cid,
            time_key: time,
            "price": d8(p),
            "origQty": d8(q),
            "executedQty": d8(z),
            "cummulativeQuoteQty": d8(Decimal(z) * Decimal(p)),
            "status": status,
            "timeInForce": "GTC",
            "type": type,
            "side": side,
        }
    )
    if fills is not None:
        body["fills"] = fills
    body.update(extra)
    return body


def ack(*, oid: int = 1, cid: str = "c1", time: int = 1000, symbol: str = SYMBOL) -> dict[str, Any]:
    """An ACK place answer: no status."""
    return {
        "symbol": symbol,
        "orderId": oid,
        "orderListId": -1,
        "clientOrderId": cid,
        "transactTime": time,
    }


def full_fill(
    *, trade: int, qty: str | int, price: str | int = 100, commission: str = "0.00100000"
) -> dict[str, Any]:
    """One entry of a FULL answer's ``fills``."""
    return {
        "price": d8(price),
        "qty": d8(qty),
        "commission": commission,
        "commissionAsset": "BNB",
        "tradeId": trade,
    }


def trade_row(
    *,
    trade: int,
    oid: int = 1,
    qty: str | int = 1,
    price: str | int = 100,
    commission: str = "0.00100000",
    time: int = 1000,
    maker: bool = False,
    symbol: str = SYMBOL,
) -> dict[str, Any]:
    """A ``GET /api/v3/myTrades`` row."""
    return {
        "symbol": symbol,
        "id": trade,
        "orderId": oid,
        "orderListId": -1,
        "price": d8(price),
        "qty": d8(qty),
        "quoteQty": d8(Decimal(qty) * Decimal(price)),
        "commission": commission,
        "commissionAsset": "BNB",
        "time": time,
        "isBuyer": True,
        "isMaker": maker,
        "isBestMatch": True,
    }


def position(u: int, *balances: tuple[str, str | int, str | int]) -> dict[str, Any]:
    """An outboundAccountPosition."""
    rows = [{"a": a, "f": d8(f), "l": d8(locked)} for a, f, locked in balances]
    return {"e": "outboundAccountPosition", "E": u + 1, "u": u, "B": rows}


def balance_update(asset: str, delta: str | int, time: int) -> dict[str, Any]:
    """A balanceUpdate (a delta on free)."""
    return {"e": "balanceUpdate", "E": time + 1, "a": asset, "d": d8(delta), "T": time}


def account(update_time: int, *balances: tuple[str, str | int, str | int]) -> dict[str, Any]:
    """A ``GET /api/v3/account`` answer."""
    rows = [{"asset": a, "free": d8(f), "locked": d8(locked)} for a, f, locked in balances]
    return {"updateTime": update_time, "accountType": "SPOT", "balances": rows}
