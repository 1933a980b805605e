"""Strategies: the script-strategy base class, the runner with its safety rails, built-ins."""

from bybitkit.strategies.base import NoParams, ScriptStrategy
from bybitkit.strategies.config import StrategyConfig, load_config, parse_config
from bybitkit.strategies.rails import RailRefused
from bybitkit.strategies.runner import (
    BUILTINS,
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_KILLED,
    EXIT_OK,
    StrategyRunner,
    load_strategy,
)

__all__ = [
    "BUILTINS",
    "EXIT_FATAL",
    "EXIT_INTERRUPTED",
    "EXIT_KILLED",
    "EXIT_OK",
    "NoParams",
    "RailRefused",
    "ScriptStrategy",
    "StrategyConfig",
    "StrategyRunner",
    "load_config",
    "load_strategy",
    "parse_config",
]
