"""The one shape of every error the local exchange answers: Binance's ``{"code", "msg"}``.

The engine, the signature checks and the parameter parsing each raise a subclass, so the REST and
WebSocket-API layers answer all of them with one ``except ApiError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    """A Binance error answer: HTTP ``status`` with body ``{"code": code, "msg": msg}``."""

    def __init__(
        self, code: int, msg: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = dict(headers or {})

    def as_json(self) -> dict[str, Any]:
        """The error body ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}
