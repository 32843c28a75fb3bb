"""The ``/_fake/`` control API of the local exchange, and the same controls for Python callers.

Not part of Binance: these endpoints let a test or a demo steer the exchange. JSON in, JSON out;
a bad request answers 400 ``{"error": "..."}``.

====== ======================== =================================================================
method path                     effect
====== ======================== =================================================================
POST   /_fake/pause             stop the simulated market (streams and REST keep working)
POST   /_fake/resume            restart it
GET    /_fake/book?symbol=S     the whole true book: ``{symbol, lastUpdateId, bids, asks}``
POST   /_fake/accounts          a funded account: ``{apiKey, secretKey}``; body (optional)
                                ``{"balances": {"USDT": "1000"}}`` replaces the default funding;
                                ``{"commission": {"maker": "0.001", "taker": "0.001"}}`` sets its
                                rates (each defaults to Binance's 0.001; ``"0"`` for none);
                                with ``{"ed25519PublicKey": PEM}`` the key is registered and the
                                answer is ``{apiKey}``
GET    /_fake/orders?apiKey=K   every order of the account (all symbols, any status)
GET    /_fake/balances?apiKey=K ``{asset: {free, locked}}``
POST   /_fake/faults            add a fault or a list of faults (JSON of ``Fault.from_json``;
                                ``apiKey`` may stand for ``accountId``), or ``{"clear": true}``
                                / ``{"clear": "<kind>"}``; answers ``{"faults": [pending...]}``
GET    /_fake/faults            ``{"faults": [pending...]}``
====== ======================== =================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from streamer.sansio.signing import load_ed25519_public_key
from streamer.testing.exchange.auth import Auth, AuthError
from streamer.testing.exchange.engine import (
    DEFAULT_COMMISSION,
    Commission,
    Engine,
    EngineError,
    fmt,
)
from streamer.testing.exchange.faults import FaultKind, FaultPlan

__all__ = ["DEFAULT_FUNDING", "Control", "ControlError"]

DEFAULT_FUNDING = Decimal(1_000_000)
"""What a new account holds of every asset of the exchange's symbols, unless told otherwise."""


class ControlError(ValueError):
    """A bad control request (answered 400)."""


class Control:
    """Pause/resume, books, accounts, orders, balances and faults; used by HTTP and Python."""

    def __init__(self, engine: Engine, auth: Auth, faults: FaultPlan) -> None:
        self._engine = engine
        self._auth = auth
        self._faults = faults
        self.paused = False
        assets = {a for s in engine.symbols.values() for a in (s.base_asset, s.quote_asset)}
        self.default_balances = dict.fromkeys(sorted(assets), DEFAULT_FUNDING)

    # -- the controls --------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop stepping the simulated market."""
        self.paused = True

    def resume(self) -> None:
        """Step the simulated market again."""
        self.paused = False

    def book(self, symbol: str) -> dict[str, Any]:
        """The whole true book of ``symbol``."""
        if symbol not in self._engine.symbols:
            raise ControlError(f"unknown symbol {symbol!r}")
        book = self._engine.full_book(symbol)
        return {
            "symbol": symbol,
            "lastUpdateId": book.last_update_id,
            "bids": [list(level) for level in book.bids],
            "asks": [list(level) for level in book.asks],
        }

    def create_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        ed25519_public_key_pem: str | None = None,
        commission: Mapping[str, Decimal | str | int] | None = None,
    ) -> dict[str, str]:
        """A new funded account and its key: ``{apiKey, secretKey}``, or ``{apiKey}`` (Ed25519).

        ``commission``: ``{"maker": rate, "taker": rate}``, either one defaulting to Binance's
        0.001 (0.1%).
        """
        funding = self.default_balances if balances is None else _amounts(balances)
        rates = _commission(commission)
        if ed25519_public_key_pem is not None:
            # Check the key before creating the account, so a bad PEM leaves nothing behind.
            try:
                load_ed25519_public_key(ed25519_public_key_pem)
            except (ValueError, TypeError) as exc:
                msg = f"ed25519PublicKey is not an Ed25519 PEM public key: {exc}"
                raise ControlError(msg) from None
        try:
            account = self._engine.create_account(funding, rates)
        except (EngineError, ValueError) as exc:
            raise ControlError(f"bad balances: {exc}") from None
        if ed25519_public_key_pem is not None:
            key = self._auth.register_ed25519(account, ed25519_public_key_pem)
            return {"apiKey": key.api_key}
        key = self._auth.register_hmac(account)
        assert key.secret is not None
        return {"apiKey": key.api_key, "secretKey": key.secret}

    def _account(self, api_key: str | None) -> int:
        try:
            return self._auth.account_of(api_key)
        except AuthError as exc:
            raise ControlError(exc.msg) from None

    def orders(self, api_key: str) -> list[dict[str, Any]]:
        """Every order of the account behind ``api_key``, symbol by symbol, oldest first."""
        account = self._account(api_key)
        out: list[dict[str, Any]] = []
        for symbol in self._engine.symbols:
            out += self._engine.all_orders(account, symbol=symbol, limit=None)
        return out

    def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        """``{asset: {free, locked}}`` of the account behind ``api_key``."""
        account = self._account(api_key)
        return {
            asset: {"free": fmt(free), "locked": fmt(locked)}
            for asset, (free, locked) in self._engine.balances(account).items()
        }

    def faults_command(self, data: Any) -> dict[str, Any]:
        """Apply a ``POST /_fake/faults`` body; the pending faults afterwards."""
        if isinstance(data, Mapping) and "clear" in data:
            clear = data["clear"]
            if clear is True:
                self._faults.clear()
            elif isinstance(clear, str) and clear in FaultKind.__members__.values():
                self._faults.clear(FaultKind(clear))
            else:
                raise ControlError("clear must be true or a fault kind")
        else:
            items = [data] if isinstance(data, Mapping) else data
            if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
                raise ControlError("expected a fault object or a list of fault objects")
            resolved = []
            for item in items:
                item = dict(item)
                if "apiKey" in item:
                    item["accountId"] = self._account(item.pop("apiKey"))
                resolved.append(item)
            try:
                self._faults.add_json(resolved)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
        return {"faults": [f.to_json() for f in self._faults.pending()]}

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The ``/_fake/`` routes."""
        return [
            web.post("/_fake/pause", _guard(self._pause)),
            web.post("/_fake/resume", _guard(self._resume)),
            web.get("/_fake/book", _guard(self._book)),
            web.post("/_fake/accounts", _guard(self._accounts)),
            web.get("/_fake/orders", _guard(self._orders)),
            web.get("/_fake/balances", _guard(self._balances)),
            web.post("/_fake/faults", _guard(self._faults_post)),
            web.get("/_fake/faults", _guard(self._faults_get)),
        ]

    async def _pause(self, request: web.Request) -> Any:
        self.pause()
        return {}

    async def _resume(self, request: web.Request) -> Any:
        self.resume()
        return {}

    async def _book(self, request: web.Request) -> Any:
        return self.book(request.query.get("symbol", ""))

    async def _accounts(self, request: web.Request) -> Any:
        body = await _json_body(request, default={})
        if not isinstance(body, Mapping):
            raise ControlError("expected a JSON object")
        unknown = set(body) - {"balances", "ed25519PublicKey", "commission"}
        if unknown:
            raise ControlError(f"unknown fields: {sorted(unknown)}")
        balances = body.get("balances")
        if balances is not None and not isinstance(balances, Mapping):
            raise ControlError("balances must be an object of asset -> amount")
        pem = body.get("ed25519PublicKey")
        if pem is not None and not isinstance(pem, str):
            raise ControlError("ed25519PublicKey must be a PEM string")
        commission = body.get("commission")
        if commission is not None and not isinstance(commission, Mapping):
            raise ControlError('commission must be an object {"maker": rate, "taker": rate}')
        return self.create_account(balances, pem, commission)

    async def _orders(self, request: web.Request) -> Any:
        return self.orders(request.query.get("apiKey", ""))

    async def _balances(self, request: web.Request) -> Any:
        return self.balances(request.query.get("apiKey", ""))

    async def _faults_post(self, request: web.Request) -> Any:
        return self.faults_command(await _json_body(request, default=None))

    async def _faults_get(self, request: web.Request) -> Any:
        return {"faults": [f.to_json() for f in self._faults.pending()]}


def _amounts(balances: Mapping[str, Decimal | str | int]) -> dict[str, Decimal]:
    out = {}
    for asset, amount in balances.items():
        if isinstance(amount, bool) or not isinstance(amount, Decimal | str | int):
            raise ControlError(f"amount of {asset!r} must be a decimal string")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ControlError(f"amount of {asset!r} is not a number: {amount!r}") from None
        if not value.is_finite() or value < 0:
            raise ControlError(f"amount of {asset!r} must be a non-negative number")
        out[str(asset)] = value
    return out


def _commission(rates: Mapping[str, Decimal | str | int] | None) -> Commission:
    """The ``commission`` of a new account: rates in ``[0, 1)``, at most 8 decimals."""
    if rates is None:
        return Commission()
    unknown = set(rates) - {"maker", "taker"}
    if unknown:
        raise ControlError(f"unknown commission fields: {sorted(unknown)}")
    values = {}
    for name in ("maker", "taker"):
        value = rates.get(name, DEFAULT_COMMISSION)
        if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
            raise ControlError(f"commission {name} must be a decimal string")
        try:
            rate = Decimal(value)
        except InvalidOperation:
            raise ControlError(f"commission {name} is not a number: {value!r}") from None
        if not rate.is_finite() or not 0 <= rate < 1 or rate != rate.quantize(Decimal("1E-8")):
            raise ControlError(f"commission {name} must be in [0, 1) with at most 8 decimals")
        values[name] = rate
    return Commission(values["maker"], values["taker"])


async def _json_body(request: web.Request, *, default: Any) -> Any:
    raw = await request.read()
    if not raw.strip():
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ControlError(f"invalid JSON: {exc}") from None


def _guard(
    handler: Callable[[web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            body, status = await handler(request), 200
        except ControlError as exc:
            body, status = {"error": str(exc)}, 400
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")

    return serve
