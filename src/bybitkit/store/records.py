"""The rows of the store, as frozen dataclasses with exact ``Decimal`` money fields.

These are plain data: the store validates them when they are written (a float where a Decimal
belongs is refused, see :func:`bybitkit.money.to_decimal`) and rebuilds them exactly when they are
read. Every timestamp is in milliseconds of the exchange clock (``*_ms``).

Vocabularies (``side``, ``state``, ``order_type``, ``time_in_force``, ``category``) belong to the
trading layer; the store keeps them as given. The only state names the store interprets are the
terminal ones (:data:`bybitkit.store.sqlite.TERMINAL_STATES`, overridable per store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "BalanceRecord",
    "FillRecord",
    "FundingRecord",
    "OrderRecord",
    "PositionRecord",
]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order, keyed by ``(connector, client_order_id)``; the client order id is Bybit's
    ``orderLinkId``, created (and stored) before the request leaves.

    ``exchange_order_id`` is None until the exchange has acknowledged the order (and stays None
    for an order whose submit outcome is UNKNOWN until it is resolved). ``price`` is None for a
    market order. ``book_u``/``book_age``/``book_valid`` stamp the order book state (update id,
    age in seconds, valid flag) when the order was placed, for audit. ``extra`` holds
    JSON-serialisable details (a ``Decimal`` in it is stored as its exact text and read back as a
    ``str``).
    """

    connector: str
    client_order_id: str
    exchange_order_id: str | None
    pair: str
    category: str
    side: str
    order_type: str
    time_in_force: str
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    state: str
    created_ms: int
    updated_ms: int
    reduce_only: bool = False
    position_idx: int = 0
    book_u: int | None = None
    book_age: float | None = None
    book_valid: bool | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution, keyed by ``(connector, exec_id)`` (Bybit's ``execId``): counted once,
    whichever path (WebSocket, REST reconciliation, after a restart) reports it.

    ``client_order_id`` is None for an execution of an order placed outside bybitkit (no
    ``orderLinkId``). ``fee`` is signed as Bybit's ``execFee`` (negative = rebate received).
    """

    connector: str
    exec_id: str
    client_order_id: str | None
    exchange_order_id: str | None
    pair: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    ts_ms: int
    exec_type: str = "Trade"
    category: str = "spot"


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One funding payment of a perpetual position, keyed by ``(connector, exec_id)`` (the
    ``execId`` of the funding execution). ``amount`` is signed as Bybit's ``execFee``: positive =
    paid by us, negative = received. ``rate`` is the funding rate applied."""

    connector: str
    exec_id: str
    pair: str
    side: str
    position_size: Decimal
    mark_price: Decimal
    rate: Decimal
    amount: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One position, keyed by ``(connector, pair, position_idx)`` (``position_idx`` as Bybit's
    ``positionIdx``: 0 one-way, 1 hedge buy side, 2 hedge sell side)."""

    connector: str
    pair: str
    position_idx: int
    side: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealised_pnl: Decimal
    realised_pnl: Decimal
    leverage: Decimal
    liq_price: Decimal | None
    updated_ms: int


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    """One coin balance of a connector's account, keyed by ``(connector, coin)``."""

    connector: str
    coin: str
    total: Decimal
    available: Decimal
    locked: Decimal
    updated_ms: int
