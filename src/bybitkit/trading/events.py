"""Typed events of every connector, delivered by ``async for event in ex.events()``.

Per order, the order is fixed: :class:`OrderCreated` first, then one :class:`OrderFilled` per
execution id, then exactly one of :class:`OrderCompleted` (after the last fill),
:class:`OrderCancelled` or :class:`OrderFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bybitkit.trading.types import Balance, Fill, FundingPayment, Order, Position


@dataclass(frozen=True, slots=True)
class Event:
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    """One execution (exactly one event per ``exec_id``)."""

    order: Order
    fill: Fill


@dataclass(frozen=True, slots=True)
class OrderCompleted(Event):
    """The order is fully filled and every fill has been reported."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    """The order ended without filling fully. ``reason``: ``user``, ``post_only_would_take``,
    ``no_liquidity`` (IOC/FOK/market remainder), ``exchange`` (any other exchange decision)."""

    order: Order
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFailed(Event):
    """The order was refused, or never existed on the exchange (after an unknown submit)."""

    order: Order
    error: str


@dataclass(frozen=True, slots=True)
class BalanceUpdated(Event):
    balances: dict[str, Balance]


@dataclass(frozen=True, slots=True)
class BookInvalid(Event):
    pair: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookValid(Event):
    pair: str
    u: int


@dataclass(frozen=True, slots=True)
class PriceClamped(Event):
    """A linear order priced beyond the band was moved to it by the exchange (a warning)."""

    order: Order
    requested: Decimal
    clamped: Decimal


@dataclass(frozen=True, slots=True)
class PositionChanged(Event):
    position: Position


@dataclass(frozen=True, slots=True)
class FundingPaid(Event):
    """A funding settlement (exactly one event per funding execution id)."""

    payment: FundingPayment
