"""The trading vocabulary shared by every connector (live, paper, sandbox; spot and perpetual).

Every enum also accepts its name as a case-insensitive string (``"buy"``, ``"limit_maker"``),
through :meth:`parse`, so APIs can take either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from bybitkit.errors import ValidationError

E = TypeVar("E", bound="_Parse")
ZERO = Decimal(0)


class _Parse(Enum):
    @classmethod
    def parse(cls: type[E], value: object, field_name: str | None = None) -> E:
        """The member named ``value`` (case-insensitive; ``-`` and spaces read as ``_``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_").replace(" ", "_")
            member = cls.__members__.get(key)
            if member is not None:
                return member
        allowed = ", ".join(m.name.lower() for m in cls)
        raise ValidationError(field_name or cls.__name__, f"one of {allowed}", value)


class Side(_Parse):
    BUY = "Buy"
    SELL = "Sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(_Parse):
    LIMIT = "Limit"
    LIMIT_MAKER = "LimitMaker"  # sent as Limit + PostOnly, always
    MARKET = "Market"


class TimeInForce(_Parse):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderState(_Parse):
    PENDING_SUBMIT = "pending_submit"  # created locally, request not answered yet
    UNKNOWN = "unknown"  # the submit's outcome is unknown; being resolved by query
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    FAILED = "failed"  # refused, or never found

    @property
    def is_open(self) -> bool:
        return self in (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN, OrderState.OPEN,
                        OrderState.PARTIALLY_FILLED)  # fmt: skip

    @property
    def is_terminal(self) -> bool:
        return not self.is_open


TERMINAL_STATES = frozenset(s.name for s in OrderState if s.is_terminal)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_symbol(pair: str) -> str:
    """``BTC-USDT`` (or ``BTCUSDT``) -> Bybit's ``BTCUSDT``."""
    return pair.replace("-", "").replace("/", "").upper()


@dataclass(slots=True)
class Order:
    """An order as the connector tracks it (Decimal amounts; the pair as ``BTC-USDT``)."""

    client_order_id: str
    pair: str
    side: Side
    order_type: OrderType
    amount: Decimal  # base quantity (quote amount for a quote-unit market buy, see market_unit)
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    exchange_order_id: str | None = None
    state: OrderState = OrderState.PENDING_SUBMIT
    filled: Decimal = ZERO  # base quantity filled, summed from unique fills
    filled_value: Decimal = ZERO  # quote value filled
    fees: dict[str, Decimal] = field(default_factory=dict)
    reason: str | None = None
    market_unit: str = "base"  # market orders: "base" or "quote"
    reduce_only: bool = False
    position_idx: int = 0
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    exchange_filled: Decimal = ZERO  # cumulative quantity the exchange reports as filled
    exchange_state: str | None = None  # the exchange's own status text
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def average_price(self) -> Decimal | None:
        if self.filled == 0:
            return None
        return self.filled_value / self.filled

    @property
    def remaining(self) -> Decimal:
        return max(ZERO, self.amount - self.filled)

    @property
    def is_open(self) -> bool:
        return self.state.is_open


class PositionMode(_Parse):
    ONE_WAY = "one_way"  # one position per symbol, positionIdx 0
    HEDGE = "hedge"  # a long (positionIdx 1) and a short (positionIdx 2) per symbol


@dataclass(frozen=True, slots=True)
class Position:
    """One perpetual position (in hedge mode a symbol has a long and a short one)."""

    pair: str
    side: Side | None  # None when flat
    size: Decimal
    position_idx: int
    entry_price: Decimal
    mark_price: Decimal
    unrealised_pnl: Decimal
    realised_pnl: Decimal  # cumulative: fees and funding included, as Bybit counts it
    leverage: Decimal
    liq_price: Decimal | None
    updated_ms: int = 0


@dataclass(frozen=True, slots=True)
class FundingInfo:
    pair: str
    mark_price: Decimal | None
    index_price: Decimal | None
    rate: Decimal | None
    next_funding_ms: int | None
    interval_hours: int | None


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement of one position. ``amount`` positive = paid (Bybit's execFee)."""

    exec_id: str
    pair: str
    side: Side
    size: Decimal
    mark_price: Decimal
    rate: Decimal  # signed by side, as Bybit's feeRate
    amount: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Balance:
    """One coin of an account: ``total`` = ``available`` + ``locked`` (+ margin in use)."""

    coin: str
    total: Decimal
    available: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one order, identified by the exchange's ``exec_id``."""

    exec_id: str
    client_order_id: str | None
    exchange_order_id: str
    pair: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    ts_ms: int
    fee_rate: Decimal | None = None
