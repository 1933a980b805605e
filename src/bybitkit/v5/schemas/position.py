"""Position endpoints (REFERENCE §9) and the items of the private ``position`` topic (§13.3)."""

from __future__ import annotations

import builtins
from decimal import Decimal

import msgspec

from bybitkit.v5.codec import Wire


class Position(Wire, kw_only=True):
    """A position of GET /v5/position/list (§9.1) and WS ``position`` (§13.3).

    REST reports the entry price as ``avgPrice``, WS as ``entryPrice``. The REST doc example spells
    ``mmrSysUpdateTime`` where the table and WS write ``mmrSysUpdatedTime``; both are kept. ``side``
    is None for a flat position; in hedge mode select rows by ``positionIdx``.
    """

    symbol: str
    positionIdx: int
    category: str | None = None
    side: str | None = None
    size: Decimal | None = None
    avgPrice: Decimal | None = None
    entryPrice: Decimal | None = None
    positionValue: Decimal | None = None
    riskId: int | None = None
    riskLimitValue: Decimal | None = None
    autoAddMargin: int | None = None
    positionStatus: str | None = None
    leverage: Decimal | None = None
    breakEvenPrice: Decimal | None = None
    markPrice: Decimal | None = None
    liqPrice: Decimal | None = None
    bustPrice: Decimal | None = None
    positionIM: Decimal | None = None
    positionIMByMp: Decimal | None = None
    positionMM: Decimal | None = None
    positionMMByMp: Decimal | None = None
    positionBalance: Decimal | None = None
    takeProfit: Decimal | None = None
    stopLoss: Decimal | None = None
    trailingStop: Decimal | None = None
    sessionAvgPrice: Decimal | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    vega: Decimal | None = None
    theta: Decimal | None = None
    unrealisedPnl: Decimal | None = None
    curRealisedPnl: Decimal | None = None
    cumRealisedPnl: Decimal | None = None
    adlRankIndicator: int | None = None
    isReduceOnly: bool | None = None
    createdTime: int | None = None
    updatedTime: int | None = None
    openTime: int | None = None
    seq: int | None = None
    mmrSysUpdatedTime: int | None = None
    mmrSysUpdateTime: int | None = None
    leverageSysUpdatedTime: int | None = None
    tpslMode: str | None = None
    tradeMode: int | None = None


class PositionListResult(Wire, kw_only=True):
    """GET /v5/position/list."""

    category: str | None = None
    list: builtins.list[Position] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class ClosedPnl(Wire, kw_only=True):
    """One closing order of GET /v5/position/closed-pnl (§9.5)."""

    symbol: str
    orderId: str
    side: str | None = None
    qty: Decimal | None = None
    orderPrice: Decimal | None = None
    orderType: str | None = None
    execType: str | None = None
    closedSize: Decimal | None = None
    cumEntryValue: Decimal | None = None
    avgEntryPrice: Decimal | None = None
    cumExitValue: Decimal | None = None
    avgExitPrice: Decimal | None = None
    closedPnl: Decimal | None = None
    fillCount: int | None = None
    leverage: Decimal | None = None
    openFee: Decimal | None = None
    closeFee: Decimal | None = None
    createdTime: int | None = None
    updatedTime: int | None = None


class ClosedPnlResult(Wire, kw_only=True):
    """GET /v5/position/closed-pnl."""

    category: str | None = None
    list: builtins.list[ClosedPnl] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class PositionSymbolInfo(Wire, kw_only=True):
    """One row of GET /v5/position/symbol-info (§9.6): ``positionIdx`` reveals the position mode;
    ``side`` is meaningless."""

    symbol: str
    positionIdx: int
    leverage: Decimal | None = None
    side: str | None = None


class PositionSymbolInfoResult(Wire, kw_only=True):
    """GET /v5/position/symbol-info."""

    category: str | None = None
    list: builtins.list[PositionSymbolInfo] = msgspec.field(default_factory=builtins.list)
