"""The script-strategy base class: what a user writes to run a bot.

A strategy is a small class; the runner (:mod:`bybitkit.strategies.runner`) owns the connectors,
the tasks, the safety rails and the store, and calls its hooks::

    from decimal import Decimal
    import msgspec
    from bybitkit.strategies import ScriptStrategy

    class Params(msgspec.Struct):
        spread: Decimal = Decimal("0.002")
        amount: Decimal = Decimal("0.001")

    class Quoter(ScriptStrategy):
        Params = Params

        async def on_tick(self) -> None:
            book = self.book("spot", "BTC-USDT")  # None while invalid or stale: don't quote
            if book is None:
                return
            await self.cancel_all()
            mid = book.mid()
            await self.buy("spot", "BTC-USDT", self.params.amount, mid * (1 - self.params.spread))

        async def on_order_filled(self, event) -> None:
            self.log.info("filled %s %s @ %s", event.fill.side, event.fill.qty, event.fill.price)

Orders go through the rails: :meth:`buy` / :meth:`sell` / :meth:`place` return ``None`` (and
log why) when a rail refuses one (book invalid or stale, private stream down, size or rate over
the limit, the kill switch fired) or the exchange refuses it; they never resend on a timeout
(the connector tracks such an order as UNKNOWN and resolves it).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from bybitkit.money import quantize_to_step, round_price
from bybitkit.trading.events import FundingPaid, OrderCancelled, OrderFilled, PositionChanged
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import Order, OrderType, Position, Side

if TYPE_CHECKING:
    from bybitkit.connectors.base import BybitConnector
    from bybitkit.market.order_book import OrderBook
    from bybitkit.strategies.runner import StrategyRunner

__all__ = ["NoParams", "ScriptStrategy"]


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    """A strategy without parameters."""


class ScriptStrategy:
    """Subclass it and override the hooks you need; every hook is a coroutine.

    ``Params``: a ``msgspec.Struct`` class; the config's ``params`` are validated into it
    (unknown or mistyped fields are refused with the field's name) and given as ``self.params``.
    ``tick_interval``: seconds between :meth:`on_tick` calls (the config's ``tick_interval``).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[msgspec.Struct]] = NoParams

    def __init__(self, runner: StrategyRunner, params: Any) -> None:
        self.runner = runner
        self.params = params
        self.log = logging.getLogger(f"bybitkit.strategy.{runner.config.instance_name}")

    # -- hooks ----------------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Once, after the connectors are up and the books are live."""

    async def on_tick(self) -> None:
        """Every ``tick_interval`` seconds."""

    async def on_order_filled(self, event: OrderFilled) -> None:
        """One fill of one of our orders (counted once, by ``exec_id``)."""

    async def on_order_cancelled(self, event: OrderCancelled) -> None:
        """One of our orders was cancelled (by us, by the exchange, PostOnly, expiry...)."""

    async def on_funding_paid(self, event: FundingPaid) -> None:
        """A funding settlement on one of our perpetual positions (paid > 0, received < 0)."""

    async def on_position_changed(self, event: PositionChanged) -> None:
        """A perpetual position of the account changed (size, side, entry, mark, PnL; a leg
        that went flat comes with size 0), from a private push or a reconciliation after a
        reconnect. ``event.position`` is the new state; :meth:`positions` reads them all."""

    async def on_stop(self) -> None:
        """Once, before the runner cancels our orders and stops (orders placed here, such as
        an unwind, still go through the rails)."""

    # -- what a strategy uses -------------------------------------------------------------------

    @property
    def connectors(self) -> dict[str, BybitConnector]:
        return self.runner.connectors

    def connector(self, name: str) -> BybitConnector:
        return self.runner.connector(name)

    def book(self, name: str, pair: str) -> OrderBook | None:
        """The live book of ``pair``, or None while it is invalid or stale (never quote then)."""
        return self.runner.usable_book(name, pair)

    async def place(
        self,
        name: str,
        pair: str,
        side: Side | str,
        amount: Decimal | str | int,
        price: Decimal | str | int | None = None,
        order_type: OrderType | str = "limit",
        **opts: Any,
    ) -> Order | None:
        """An order through the rails (see the module docstring); None when not placed."""
        return await self.runner.place(name, pair, side, order_type, amount, price, **opts)

    async def buy(
        self,
        name: str,
        pair: str,
        amount: Decimal | str | int,
        price: Decimal | str | int | None = None,
        order_type: OrderType | str = "limit",
        **opts: Any,
    ) -> Order | None:
        return await self.place(name, pair, Side.BUY, amount, price, order_type, **opts)

    async def sell(
        self,
        name: str,
        pair: str,
        amount: Decimal | str | int,
        price: Decimal | str | int | None = None,
        order_type: OrderType | str = "limit",
        **opts: Any,
    ) -> Order | None:
        return await self.place(name, pair, Side.SELL, amount, price, order_type, **opts)

    async def cancel(self, name: str, client_order_id: str) -> bool:
        """Cancel one of our orders; False when it was already finished."""
        return await self.runner.cancel(name, client_order_id)

    async def cancel_all(self, name: str | None = None, pair: str | None = None) -> int:
        """Cancel our open orders (of one connector / pair); how many were asked to cancel."""
        return await self.runner.cancel_all(name, pair)

    def open_orders(self, name: str | None = None, pair: str | None = None) -> list[Order]:
        """Our orders not finished yet."""
        return self.runner.open_orders(name, pair)

    def position(self, name: str, pair: str) -> Position | None:
        """A perpetual connector's current position in ``pair`` (one-way), None when flat."""
        return self.runner.position(name, pair)

    def positions(self, name: str, pair: str) -> list[Position]:
        """Every open leg of ``pair`` (hedge mode: long and short separately)."""
        return self.runner.positions(name, pair)

    def rules(self, name: str, pair: str) -> TradingRules:
        """The pair's trading rules (tick size, qty step, minimums) on that connector."""
        return self.connector(name).trading_rules(pair)

    def quote_price(self, name: str, pair: str, price: Decimal, side: Side | str) -> Decimal:
        """``price`` on the pair's tick, rounded away from the market: a bid down, an ask up
        (a quote never crosses further than asked)."""
        buy = Side.parse(side) is Side.BUY
        return round_price(price, self.rules(name, pair).tick_size, side_is_buy=buy)

    def amount(self, name: str, pair: str, amount: Decimal) -> Decimal:
        """``amount`` rounded down to the pair's quantity step."""
        return quantize_to_step(amount, self.rules(name, pair).qty_step)

    @property
    def equity(self) -> Decimal | None:
        """The account's equity marked to market (quote units), as the kill switch sees it."""
        return self.runner.watch.last

    def inventory(self, name: str, coin: str) -> Decimal:
        """The wallet's total of ``coin`` as last seen on the connector."""
        b = self.connector(name).balances_cache.get(coin)
        return b.total if b is not None else Decimal(0)
