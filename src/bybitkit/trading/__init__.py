"""The exchange-agnostic trading model: orders, their tracker, fills, rules, balances, events."""

from bybitkit.trading.events import (
    BalanceUpdated,
    BookInvalid,
    BookValid,
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderFailed,
    OrderFilled,
    PriceClamped,
)
from bybitkit.trading.rules import RuleViolation, TradingRules
from bybitkit.trading.tracker import OrderTracker, OrderUpdate
from bybitkit.trading.types import (
    Balance,
    Fill,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = [
    "Balance",
    "BalanceUpdated",
    "BookInvalid",
    "BookValid",
    "Event",
    "Fill",
    "Order",
    "OrderCancelled",
    "OrderCompleted",
    "OrderCreated",
    "OrderFailed",
    "OrderFilled",
    "OrderState",
    "OrderTracker",
    "OrderType",
    "OrderUpdate",
    "PriceClamped",
    "RuleViolation",
    "Side",
    "TimeInForce",
    "TradingRules",
]
