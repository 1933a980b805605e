"""The order tracker: every order from before its request leaves until its last fill is counted.

Exchange-agnostic: connectors feed it normalised order updates and fills from any path (the
private stream, REST reconciliation, a trade-WebSocket ack, a restart's store) and it keeps each
order's state and emits the events, in order, exactly once:

* ``OrderCreated`` first (also when a fill outruns the acknowledgement);
* one ``OrderFilled`` per execution id, whatever path reports it, however often;
* then ``OrderCompleted`` once every fill is counted, or ``OrderCancelled`` / ``OrderFailed``.

Fills are deduplicated by execution id in memory and in the store (``add_fill`` is idempotent),
so a restart neither loses nor doubles one. The store row of an order is written on every change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bybitkit.trading.events import (
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderFailed,
    OrderFilled,
)
from bybitkit.trading.types import (
    ZERO,
    Fill,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    now_ms,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An exchange's view of one order (from its order stream or an order query)."""

    exchange_order_id: str
    client_order_id: str | None
    pair: str
    side: Side
    state: OrderState  # the exchange's status mapped: OPEN, PARTIALLY_FILLED, FILLED, ...
    cum_filled: Decimal  # base quantity filled so far, as the exchange counts it
    amount: Decimal | None = None
    price: Decimal | None = None
    order_type: OrderType | None = None
    reason: str | None = None  # for cancels: user, post_only_would_take, no_liquidity, exchange
    exchange_state: str | None = None
    updated_ms: int = 0


class OrderTracker:
    """Tracks the orders of one connector."""

    def __init__(
        self,
        connector: str,
        emit: Callable[[Event], None],
        store: Any = None,
    ) -> None:
        self.connector = connector
        self.emit = emit
        self.store = store
        self.orders: dict[str, Order] = {}
        self.by_exchange_id: dict[str, Order] = {}
        self._created: set[str] = set()
        self._finished: set[str] = set()
        self._seen_fills: set[str] = set()
        self.fill_count = 0

    # -- lookup ---------------------------------------------------------------------------------

    def get(self, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    def open_orders(self, pair: str | None = None) -> list[Order]:
        return [
            o for o in self.orders.values() if o.state.is_open and (pair is None or o.pair == pair)
        ]

    def unknown_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.state is OrderState.UNKNOWN]

    # -- local lifecycle ------------------------------------------------------------------------

    def track(self, order: Order) -> None:
        """Start tracking ``order`` before its request is sent."""
        if order.client_order_id in self.orders:
            raise ValueError(f"client order id {order.client_order_id!r} is already tracked")
        self.orders[order.client_order_id] = order
        self._persist(order)

    def restore(self, orders: Iterable[Order], seen_exec_ids: Iterable[str] = ()) -> None:
        """Reload orders (from the store) after a restart; they were announced before."""
        for order in orders:
            self.orders[order.client_order_id] = order
            if order.exchange_order_id:
                self.by_exchange_id[order.exchange_order_id] = order
            self._created.add(order.client_order_id)
        self._seen_fills.update(seen_exec_ids)

    def acked(self, client_order_id: str, exchange_order_id: str | None) -> None:
        """The exchange accepted the request (an acknowledgement, not yet a state)."""
        order = self.orders.get(client_order_id)
        if order is None:
            return
        if exchange_order_id:
            self._bind(order, exchange_order_id)
        if order.state in (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN):
            order.state = OrderState.OPEN
        order.updated_ms = now_ms()
        self._announce(order)
        self._persist(order)

    def unknown(self, client_order_id: str, cause: str) -> None:
        """The submit's outcome is unknown: keep the order, resolve it by query."""
        order = self.orders.get(client_order_id)
        if order is None or order.state is not OrderState.PENDING_SUBMIT:
            return
        order.state = OrderState.UNKNOWN
        order.reason = cause
        order.updated_ms = now_ms()
        log.warning("order outcome unknown client_order_id=%s cause=%s", client_order_id, cause)
        self._persist(order)

    def failed(self, client_order_id: str, error: str) -> None:
        """The order was refused, or (after several explicit answers) never existed."""
        order = self.orders.get(client_order_id)
        if order is None or order.client_order_id in self._finished:
            return
        if order.filled > 0:
            return  # it did exist: its fills say so; the exchange's status will finish it
        order.state = OrderState.FAILED
        order.reason = error
        order.updated_ms = now_ms()
        self._announce(order)
        self._finish(order, OrderFailed(now_ms(), order, error))

    # -- exchange reports -----------------------------------------------------------------------

    def on_update(self, update: OrderUpdate) -> Order:
        """Apply the exchange's view of an order (any path; duplicates are harmless)."""
        order = self._find(update.client_order_id, update.exchange_order_id)
        if order is None:
            order = self._adopt(update)
        self._bind(order, update.exchange_order_id)
        if (
            update.amount is not None
            and order.market_unit == "base"
            and order.amount != update.amount
        ):
            order.amount = update.amount  # an amend, or an order we adopted
        if update.price is not None and order.order_type is not OrderType.MARKET:
            order.price = update.price
        order.exchange_filled = max(order.exchange_filled, update.cum_filled)
        order.exchange_state = update.exchange_state
        if update.reason:
            order.reason = update.reason
        order.updated_ms = max(order.updated_ms, update.updated_ms or now_ms())
        self._announce(order)
        if order.client_order_id in self._finished:
            self._persist(order)
            return order
        if update.state.is_terminal:
            order.extra["exchange_terminal"] = update.state.name
        elif order.state in (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN, OrderState.FAILED):
            order.state = OrderState.OPEN if order.filled == 0 else OrderState.PARTIALLY_FILLED
        self._settle(order)
        self._persist(order)
        return order

    def on_fill(self, fill: Fill, *, order_hint: OrderUpdate | None = None) -> bool:
        """Count one execution. Returns False for an execution id already counted."""
        if fill.exec_id in self._seen_fills:
            return False
        if self.store is not None and not self.store.add_fill(self._fill_record(fill)):
            self._seen_fills.add(fill.exec_id)
            return False
        self._seen_fills.add(fill.exec_id)
        order = self._find(fill.client_order_id, fill.exchange_order_id)
        if order is None:
            order = self._adopt(
                order_hint
                or OrderUpdate(
                    exchange_order_id=fill.exchange_order_id,
                    client_order_id=fill.client_order_id,
                    pair=fill.pair,
                    side=fill.side,
                    state=OrderState.OPEN,
                    cum_filled=ZERO,
                )
            )
        self._bind(order, fill.exchange_order_id)
        self._announce(order)
        order.filled += fill.qty
        order.filled_value += fill.price * fill.qty
        order.fees[fill.fee_currency] = order.fees.get(fill.fee_currency, ZERO) + fill.fee
        order.exchange_filled = max(order.exchange_filled, order.filled)
        order.updated_ms = max(order.updated_ms, fill.ts_ms)
        if order.state is OrderState.FAILED and order.client_order_id in self._finished:
            # A lost order that existed after all: never drop its fills.
            log.warning("fill for an order reported failed exec_id=%s", fill.exec_id)
            self._finished.discard(order.client_order_id)
        if order.state in (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN, OrderState.OPEN,
                           OrderState.FAILED):  # fmt: skip
            order.state = OrderState.PARTIALLY_FILLED
        self.fill_count += 1
        self.emit(OrderFilled(now_ms(), order, fill))
        self._settle(order)
        self._persist(order)
        return True

    # -- internals ------------------------------------------------------------------------------

    def _find(self, client_order_id: str | None, exchange_order_id: str | None) -> Order | None:
        if exchange_order_id:
            order = self.by_exchange_id.get(exchange_order_id)
            if order is not None:
                return order
        if client_order_id:
            return self.orders.get(client_order_id)
        return None

    def _bind(self, order: Order, exchange_order_id: str | None) -> None:
        if exchange_order_id and order.exchange_order_id != exchange_order_id:
            order.exchange_order_id = exchange_order_id
            self.by_exchange_id[exchange_order_id] = order

    def _adopt(self, update: OrderUpdate) -> Order:
        """An order this connector did not place (another client, a lost record): track it."""
        client_id = update.client_order_id or f"ext-{update.exchange_order_id}"
        order = Order(
            client_order_id=client_id,
            pair=update.pair,
            side=update.side,
            order_type=update.order_type or OrderType.LIMIT,
            amount=update.amount if update.amount is not None else update.cum_filled,
            price=update.price,
            time_in_force=TimeInForce.GTC,
            exchange_order_id=update.exchange_order_id,
            state=OrderState.OPEN,
        )
        order.extra["adopted"] = True
        self.orders[client_id] = order
        self._bind(order, update.exchange_order_id)
        return order

    def _announce(self, order: Order) -> None:
        if order.client_order_id not in self._created:
            self._created.add(order.client_order_id)
            self.emit(OrderCreated(now_ms(), order))

    def _settle(self, order: Order) -> None:
        """Finish the order once the exchange says it ended and every fill is counted."""
        if order.client_order_id in self._finished:
            return
        terminal = order.extra.get("exchange_terminal")
        complete_by_qty = (
            order.market_unit == "base" and order.amount > 0 and order.filled >= order.amount
        )
        if complete_by_qty or (terminal == "FILLED" and order.filled >= order.exchange_filled):
            order.state = OrderState.FILLED
            self._finish(order, OrderCompleted(now_ms(), order))
        elif terminal == "CANCELLED" and order.filled >= order.exchange_filled:
            order.state = OrderState.CANCELLED
            self._finish(order, OrderCancelled(now_ms(), order, order.reason or "exchange"))
        elif terminal == "FAILED" and order.filled >= order.exchange_filled:
            order.state = OrderState.FAILED
            self._finish(order, OrderFailed(now_ms(), order, order.reason or "rejected"))
        elif order.filled > 0 and order.state is OrderState.OPEN:
            order.state = OrderState.PARTIALLY_FILLED

    def _finish(self, order: Order, event: Event) -> None:
        self._finished.add(order.client_order_id)
        self._persist(order)
        self.emit(event)

    def _persist(self, order: Order) -> None:
        if self.store is None:
            return
        from bybitkit.store import OrderRecord

        self.store.upsert_order(
            OrderRecord(
                connector=self.connector,
                client_order_id=order.client_order_id,
                exchange_order_id=order.exchange_order_id,
                pair=order.pair,
                category=str(order.extra.get("category", "spot")),
                side=order.side.name,
                order_type=order.order_type.name,
                time_in_force=order.time_in_force.name,
                price=order.price,
                amount=order.amount,
                filled=order.filled,
                state=order.state.name,
                created_ms=order.created_ms,
                updated_ms=order.updated_ms,
                reduce_only=order.reduce_only,
                position_idx=order.position_idx,
                book_u=order.extra.get("book_u"),
                book_age=order.extra.get("book_age"),
                book_valid=order.extra.get("book_valid"),
                reason=order.reason,
                extra={"market_unit": order.market_unit},
            )
        )

    def _fill_record(self, fill: Fill) -> Any:
        from bybitkit.store import FillRecord

        order = self._find(fill.client_order_id, fill.exchange_order_id)
        return FillRecord(
            connector=self.connector,
            exec_id=fill.exec_id,
            client_order_id=order.client_order_id if order else fill.client_order_id,
            exchange_order_id=fill.exchange_order_id,
            pair=fill.pair,
            side=fill.side.name,
            price=fill.price,
            qty=fill.qty,
            fee=fill.fee,
            fee_currency=fill.fee_currency,
            is_maker=fill.is_maker,
            ts_ms=fill.ts_ms,
            category=str(order.extra.get("category", "spot")) if order else "spot",
        )
