"""The spot connector: ``bybit``, ``bybit_testnet``, ``bybit_demo`` and ``sandbox``.

Spot specifics on top of :class:`~bybitkit.connectors.base.BybitConnector`: the public spot
stream, Bybit's spot sizing rules (``basePrecision``, ``minOrderAmt``, max quantity by order
type, the price band, outside which spot rejects), and market orders measured in the base coin
by default (``marketUnit=baseCoin``) or in the quote coin with ``quote_amount=True``.
"""

from __future__ import annotations

from bybitkit.connectors.base import BybitConnector


class SpotConnector(BybitConnector):
    """Bybit spot (unified account)."""

    category = "spot"
