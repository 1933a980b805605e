"""bybitkit: a Python toolkit for trading on Bybit (V5 API) and a local Bybit-compatible sandbox."""

from bybitkit.errors import (
    BybitkitError,
    ExchangeError,
    NetworkError,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    ValidationError,
)
from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment, get_environment

__version__ = "0.1.0"

__all__ = [
    "BybitkitError",
    "Credentials",
    "Environment",
    "ExchangeError",
    "NetworkError",
    "OrderOutcomeUnknown",
    "OutcomeUnknown",
    "ValidationError",
    "__version__",
    "get_environment",
]
