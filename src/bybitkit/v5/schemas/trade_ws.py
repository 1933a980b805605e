"""The WebSocket trade API ``/v5/trade`` (REFERENCE §14): requests, replies, auth reply, pong.

Note the camelCase ``reqId`` / ``connId`` / ``retCode`` here, unlike the snake_case stream frames.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bybitkit.v5.codec import Wire

_EMPTY_OBJECT = msgspec.Raw(b"{}")


class TradeWsRequest(Wire, kw_only=True, omit_defaults=True):
    """A trade-WS request: ``op`` ``order.create`` ... ``order.cancel-batch`` (``args`` holds one
    REST-shaped body), or ``auth`` / ``ping``. ``header`` carries ``X-BAPI-TIMESTAMP`` etc."""

    op: str
    reqId: str | None = None
    header: dict[str, str] | None = None
    args: list[Any] | None = None


class TradeWsResponse(Wire, kw_only=True):
    """A trade-WS order reply. ``data`` mirrors the REST ``result`` and ``retExtInfo`` holds batch
    per-item codes; both stay raw for :func:`~bybitkit.v5.schemas.common.decode_result` (see
    ``TRADE_WS_DATA_TYPES`` in the registry). ``header`` holds the rate-limit headers."""

    retCode: int
    op: str | None = None
    reqId: str | None = None
    retMsg: str | None = None
    data: msgspec.Raw = _EMPTY_OBJECT
    retExtInfo: msgspec.Raw = _EMPTY_OBJECT
    header: dict[str, str] | None = None
    connId: str | None = None


class TradeWsAuthReply(Wire, kw_only=True):
    """Reply to the trade-WS ``auth`` op: ``retCode`` 0 ok, 20001 already authed, 10004 bad sign."""

    retCode: int
    op: str | None = None
    reqId: str | None = None
    retMsg: str | None = None
    connId: str | None = None


class TradeWsPong(Wire, kw_only=True):
    """Reply to the trade-WS ``ping`` op: ``op == "pong"``, ``data`` holds the server ms time."""

    retCode: int
    op: str | None = None
    retMsg: str | None = None
    data: list[int] = msgspec.field(default_factory=list)
    connId: str | None = None
