"""bybitkit: a Python toolkit for trading on Bybit (V5 API) and a local Bybit-compatible sandbox.

async with bybitkit.connect("bybit_testnet", credentials=creds) as ex:
    book = await ex.order_book("BTC-USDT")
    order = await ex.place_order("BTC-USDT", "buy", "limit_maker", "0.001", "30000")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bybitkit.errors import (
    BybitkitError,
    ExchangeError,
    NetworkError,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    ValidationError,
)
from bybitkit.trading.types import OrderState, OrderType, Side, TimeInForce
from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment, get_environment

if TYPE_CHECKING:
    from bybitkit.connectors.registry import connect
    from bybitkit.sandbox.app import Sandbox

__version__ = "0.1.0"

__all__ = [
    "BybitkitError",
    "Credentials",
    "Environment",
    "ExchangeError",
    "NetworkError",
    "OrderOutcomeUnknown",
    "OrderState",
    "OrderType",
    "OutcomeUnknown",
    "Sandbox",
    "Side",
    "TimeInForce",
    "ValidationError",
    "__version__",
    "connect",
    "get_environment",
]


def __getattr__(name: str) -> Any:
    # The connectors and the sandbox pull in more than the wire layer: load them on first use.
    if name == "connect":
        from bybitkit.connectors.registry import connect

        return connect
    if name == "Sandbox":
        from bybitkit.sandbox.app import Sandbox

        return Sandbox
    raise AttributeError(f"module 'bybitkit' has no attribute {name!r}")
