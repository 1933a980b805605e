"""Connectors: the V5 wire layer + the market and trading models, one module per market."""

from bybitkit.connectors.base import BybitConnector, TradeFee
from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.connectors.registry import CONNECTORS, connect
from bybitkit.connectors.spot import SpotConnector

__all__ = [
    "CONNECTORS",
    "BybitConnector",
    "PerpetualConnector",
    "SpotConnector",
    "TradeFee",
    "connect",
]
