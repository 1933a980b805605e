"""Shared wire pieces: the REST envelope, batch ``retExtInfo``, extra fees and the enum values.

Enumerated wire values (``side``, ``orderStatus``, ...) stay plain ``str`` on every struct, so a
value Bybit adds tomorrow still decodes. The :class:`enum.StrEnum` classes below only name the
values we know; their members compare equal to the wire strings (``order.side == Side.BUY``).
"""

from __future__ import annotations

import builtins
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

import msgspec

from bybitkit.v5.codec import Wire, decode

T = TypeVar("T")

_EMPTY_OBJECT = msgspec.Raw(b"{}")


class EmptyResult(Wire, kw_only=True):
    """``result: {}`` of endpoints that answer with an acknowledgement only (e.g. set-leverage)."""


class Envelope(Wire, kw_only=True):
    """Every REST response (REFERENCE §2). ``result`` and ``retExtInfo`` are kept raw and decoded
    afterwards into the endpoint's own structs (see :func:`decode_result`); both default to ``{}``
    because some doc examples omit them."""

    retCode: int
    retMsg: str | None = None
    result: msgspec.Raw = _EMPTY_OBJECT
    retExtInfo: msgspec.Raw = _EMPTY_OBJECT
    time: int | None = None


class BatchItemStatus(Wire, kw_only=True):
    """One per-item outcome in ``retExtInfo.list`` of a batch call (REFERENCE §8.5-8.7, §14)."""

    code: int
    msg: str | None = None


class BatchExtInfo(Wire, kw_only=True):
    """``retExtInfo`` of batch create/amend/cancel, index-aligned with ``result.list``."""

    list: builtins.list[BatchItemStatus] = msgspec.field(default_factory=builtins.list)


class ExtraFee(Wire, kw_only=True):
    """One regional extra fee (e.g. GST) on an execution (REFERENCE §13.2 ``extraFees``)."""

    feeCoin: str | None = None
    feeType: str | None = None
    subFeeType: str | None = None
    feeRate: Decimal | None = None
    fee: Decimal | None = None


def decode_result(type_: type[T], raw: msgspec.Raw | bytes, what: str = "") -> T:
    """Decode an envelope's ``result`` (or ``retExtInfo``, or trade-WS ``data``) into ``type_``.

    A JSON ``null`` is read as ``{}`` so acknowledgement-only endpoints decode into
    :class:`EmptyResult` whatever Bybit writes. Raises :class:`bybitkit.errors.DecodeError`.
    """
    body = bytes(raw)
    if body.strip() == b"null":
        body = b"{}"
    return decode(type_, body, what)


class Category(StrEnum):
    """Product ``category`` (REFERENCE §6)."""

    SPOT = "spot"
    LINEAR = "linear"
    INVERSE = "inverse"
    OPTION = "option"


class Side(StrEnum):
    """Order / position ``side``."""

    BUY = "Buy"
    SELL = "Sell"


class OrderType(StrEnum):
    """``orderType`` (``UNKNOWN`` only appears in responses, e.g. funding executions)."""

    MARKET = "Market"
    LIMIT = "Limit"
    UNKNOWN = "UNKNOWN"


class TimeInForce(StrEnum):
    """``timeInForce``."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"
    RPI = "RPI"


class OrderStatus(StrEnum):
    """``orderStatus``."""

    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    UNTRIGGERED = "Untriggered"
    REJECTED = "Rejected"
    PARTIALLY_FILLED_CANCELED = "PartiallyFilledCanceled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    TRIGGERED = "Triggered"
    DEACTIVATED = "Deactivated"


OPEN_ORDER_STATUSES: frozenset[str] = frozenset(
    {OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNTRIGGERED}
)
"""Statuses of an order that can still trade or trigger (``Triggered`` is transient)."""


class ExecType(StrEnum):
    """Execution ``execType``."""

    TRADE = "Trade"
    ADL_TRADE = "AdlTrade"
    FUNDING = "Funding"
    BUST_TRADE = "BustTrade"
    DELIVERY = "Delivery"
    SETTLE = "Settle"
    BLOCK_TRADE = "BlockTrade"
    MOVE_POSITION = "MovePosition"
    FUTURE_SPREAD = "FutureSpread"
    CORPORATE_ACTION = "CorporateAction"
    UNKNOWN = "UNKNOWN"


class TriggerBy(StrEnum):
    """``triggerBy`` / ``tpTriggerBy`` / ``slTriggerBy``."""

    LAST_PRICE = "LastPrice"
    INDEX_PRICE = "IndexPrice"
    MARK_PRICE = "MarkPrice"


class TpslMode(StrEnum):
    """``tpslMode``."""

    FULL = "Full"
    PARTIAL = "Partial"


class PositionStatus(StrEnum):
    """Position ``positionStatus``."""

    NORMAL = "Normal"
    LIQ = "Liq"
    ADL = "Adl"


class MarginMode(StrEnum):
    """Account ``marginMode`` / ``setMarginMode``."""

    ISOLATED_MARGIN = "ISOLATED_MARGIN"
    REGULAR_MARGIN = "REGULAR_MARGIN"
    PORTFOLIO_MARGIN = "PORTFOLIO_MARGIN"


class AccountType(StrEnum):
    """Wallet ``accountType``."""

    UNIFIED = "UNIFIED"
    FUND = "FUND"
