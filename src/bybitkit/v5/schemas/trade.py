"""Orders and executions: REST trade endpoints (REFERENCE §8) and the items of the private
``order`` / ``execution`` topics (§13.1, §13.2), which share these structs."""

from __future__ import annotations

import builtins
from decimal import Decimal

import msgspec

from bybitkit.v5.codec import Wire
from bybitkit.v5.schemas.common import EmptyResult, ExtraFee


class OrderIdResult(Wire, kw_only=True):
    """Ack of POST /v5/order/create, /amend and /cancel (§8.1-8.3); also the trade-WS ``data``
    of single-order ops."""

    orderId: str
    orderLinkId: str | None = None


class CancelAllItem(Wire, kw_only=True):
    """One cancelled order in the POST /v5/order/cancel-all ack."""

    orderId: str | None = None
    orderLinkId: str | None = None


class CancelAllResult(Wire, kw_only=True):
    """POST /v5/order/cancel-all (§8.4); ``success`` is ``"1"`` ok / ``"0"`` failed (absent on
    UTA1.0 inverse)."""

    list: builtins.list[CancelAllItem] = msgspec.field(default_factory=builtins.list)
    success: str | None = None


class BatchCreateItem(Wire, kw_only=True):
    """One item of POST /v5/order/create-batch (§8.5); a failed item has ``orderId`` None."""

    category: str | None = None
    symbol: str | None = None
    orderId: str | None = None
    orderLinkId: str | None = None
    createAt: int | None = None


class BatchCreateResult(Wire, kw_only=True):
    """POST /v5/order/create-batch; per-item codes are in :class:`BatchExtInfo`."""

    list: builtins.list[BatchCreateItem] = msgspec.field(default_factory=builtins.list)


class BatchOrderItem(Wire, kw_only=True):
    """One item of POST /v5/order/amend-batch or cancel-batch (§8.6, §8.7)."""

    category: str | None = None
    symbol: str | None = None
    orderId: str | None = None
    orderLinkId: str | None = None


class BatchAmendResult(Wire, kw_only=True):
    """POST /v5/order/amend-batch; per-item codes are in :class:`BatchExtInfo`."""

    list: builtins.list[BatchOrderItem] = msgspec.field(default_factory=builtins.list)


class BatchCancelResult(Wire, kw_only=True):
    """POST /v5/order/cancel-batch; per-item codes are in :class:`BatchExtInfo`."""

    list: builtins.list[BatchOrderItem] = msgspec.field(default_factory=builtins.list)


class Order(Wire, kw_only=True):
    """An order of GET /v5/order/realtime, /v5/order/history (§8.8, §8.9) and WS ``order`` (§13.1).

    ``cumFeeDetail`` maps fee coin to fee (linear/spot); ``cumExecFee`` is meaningful for
    inverse/option only. ``extraFees`` is documented as a string (usually empty) on REST and may be
    a list of fee objects on regional sites, so both shapes decode.
    """

    orderId: str
    symbol: str
    side: str
    orderStatus: str
    category: str | None = None
    orderLinkId: str | None = None
    parentOrderLinkId: str | None = None
    blockTradeId: str | None = None
    price: Decimal | None = None
    brokerOrderPrice: Decimal | None = None
    qty: Decimal | None = None
    isLeverage: str | None = None
    positionIdx: int | None = None
    createType: str | None = None
    cancelType: str | None = None
    rejectReason: str | None = None
    avgPrice: Decimal | None = None
    leavesQty: Decimal | None = None
    leavesValue: Decimal | None = None
    cumExecQty: Decimal | None = None
    cumExecValue: Decimal | None = None
    cumExecFee: Decimal | None = None
    closedPnl: Decimal | None = None
    feeCurrency: str | None = None
    timeInForce: str | None = None
    orderType: str | None = None
    stopOrderType: str | None = None
    orderIv: Decimal | None = None
    marketUnit: str | None = None
    slippageToleranceType: str | None = None
    slippageTolerance: Decimal | None = None
    triggerPrice: Decimal | None = None
    takeProfit: Decimal | None = None
    stopLoss: Decimal | None = None
    tpslMode: str | None = None
    ocoTriggerBy: str | None = None
    tpLimitPrice: Decimal | None = None
    slLimitPrice: Decimal | None = None
    tpTriggerBy: str | None = None
    slTriggerBy: str | None = None
    triggerDirection: int | None = None
    triggerBy: str | None = None
    lastPriceOnCreated: Decimal | None = None
    basePrice: Decimal | None = None
    reduceOnly: bool | None = None
    closeOnTrigger: bool | None = None
    placeType: str | None = None
    smpType: str | None = None
    smpGroup: int | None = None
    smpOrderId: str | None = None
    createdTime: int | None = None
    updatedTime: int | None = None
    cumFeeDetail: dict[str, Decimal] | None = None
    extraFees: list[ExtraFee] | str | None = None
    rpiTakerAccess: bool | None = None
    rpiMatchedQty: Decimal | None = None


class OrderListResult(Wire, kw_only=True):
    """GET /v5/order/realtime and GET /v5/order/history (newest first, paginated)."""

    category: str | None = None
    list: builtins.list[Order] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class Execution(Wire, kw_only=True):
    """A fill of GET /v5/execution/list (§8.10) and WS ``execution`` (§13.2).

    Funding settlements use the same shape (``execType == "Funding"``, ``orderType == "UNKNOWN"``;
    ``execFee`` positive = paid, see §10.5), including the pre-upgrade endpoint's rows.
    ``extraFees`` is ``""`` (None) or a list of fee objects.
    """

    execId: str
    symbol: str
    orderId: str
    category: str | None = None
    isLeverage: str | None = None
    orderLinkId: str | None = None
    side: str | None = None
    orderPrice: Decimal | None = None
    orderQty: Decimal | None = None
    leavesQty: Decimal | None = None
    createType: str | None = None
    orderType: str | None = None
    stopOrderType: str | None = None
    execFee: Decimal | None = None
    execFeeV2: Decimal | None = None
    execPrice: Decimal | None = None
    execQty: Decimal | None = None
    execPnl: Decimal | None = None
    execType: str | None = None
    execValue: Decimal | None = None
    execTime: int | None = None
    isMaker: bool | None = None
    feeRate: Decimal | None = None
    feeCurrency: str | None = None
    tradeIv: Decimal | None = None
    markIv: Decimal | None = None
    markPrice: Decimal | None = None
    indexPrice: Decimal | None = None
    underlyingPrice: Decimal | None = None
    blockTradeId: str | None = None
    closedSize: Decimal | None = None
    marketUnit: str | None = None
    seq: int | None = None
    extraFees: list[ExtraFee] | None = None


class ExecutionListResult(Wire, kw_only=True):
    """GET /v5/execution/list (also /v5/pre-upgrade/execution/list), newest first, paginated."""

    category: str | None = None
    list: builtins.list[Execution] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class DisconnectedCancelAllResult(EmptyResult, kw_only=True):
    """POST /v5/order/disconnected-cancel-all (DCP window, §8.12): an ack without fields (the doc
    example has no ``result`` at all)."""
