"""The matching engine shared by the sandbox exchange and paper trading (integer ticks and lots)."""

from bybitkit.matching.engine import (
    REJECT_FOK,
    REJECT_POST_ONLY,
    Book,
    Fill,
    MatchResult,
    Order,
    Side,
    TimeInForce,
)

__all__ = [
    "REJECT_FOK",
    "REJECT_POST_ONLY",
    "Book",
    "Fill",
    "MatchResult",
    "Order",
    "Side",
    "TimeInForce",
]
