"""Market making on one linear perpetual, with a position cap and a take-profit order.

The quotes are those of :mod:`bybitkit.strategies.pure_market_making` (a ladder of post-only
bids and asks around the mid, refreshed by age and by mid moves, checked against the price
band), on a perpetual, with:

* ``position_mode`` and ``leverage`` applied in ``on_start`` (the mode is switched only when it
  differs: Bybit refuses a switch while the symbol has a position or an order);
* ``max_position``: a side is quoted only while its levels, all filled, would keep the
  position within ``max_position`` (one-way: ``|net|``; hedge: the size of the leg that side
  opens). A fill or an outside order that takes the position beyond the cap cancels the quotes
  of the side that would grow it;
* ``take_profit_spread``: while a position is open, one reduce-only limit order closes it at
  ``entry × (1 + spread)`` (a long) or ``entry × (1 − spread)`` (a short), replaced whenever the
  position's size or entry price changes. In hedge mode each leg has its own, on its
  ``positionIdx`` (1 = long, 2 = short). In hedge mode the quotes open positions (a bid opens
  or adds to the long leg, an ask the short leg), and the take-profits close them.

Positions are left open when the strategy stops (the runner cancels the orders; the kill
switch flattens when ``risk.flatten_on_kill`` is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.errors import BybitkitError, ConfigError
from bybitkit.money import fmt, quantize_to_step, round_price
from bybitkit.strategies.pure_market_making import (
    LadderParams,
    LevelQuoter,
    PlannedQuote,
    build_ladder,
    size_guard,
)
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import Position, PositionMode, Side

if TYPE_CHECKING:
    from bybitkit.strategies.runner import StrategyRunner

__all__ = [
    "PerpetualMarketMaking",
    "PerpetualMarketMakingParams",
    "TakeProfit",
    "legs",
    "position_room",
    "take_profit_quote",
]

ZERO = Decimal(0)
ONE = Decimal(1)


class PerpetualMarketMakingParams(LadderParams, forbid_unknown_fields=True, kw_only=True):
    """The params of :class:`PerpetualMarketMaking` (see ``docs/strategies.md``)."""

    connector: str = "perp"
    leverage: Decimal = Decimal(1)
    position_mode: Literal["one_way", "hedge"] = "one_way"
    max_position: Decimal | None = None
    take_profit_spread: Decimal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.leverage < 1:
            raise ValueError(f"leverage: expected at least 1, got {self.leverage}")
        if self.max_position is not None and self.max_position <= 0:
            raise ValueError(
                f"max_position: expected a positive base size, got {self.max_position}"
            )
        if self.take_profit_spread is not None and not ZERO < self.take_profit_spread < ONE:
            raise ValueError(
                f"take_profit_spread: expected a fraction in (0, 1), got {self.take_profit_spread}"
            )


# -- the pure part -----------------------------------------------------------------------------


def legs(positions: list[Position]) -> tuple[Decimal, Decimal]:
    """``(long size, short size)`` of one symbol's positions (one-way: one of them is 0)."""
    long = sum((p.size for p in positions if p.size and p.side is Side.BUY), ZERO)
    short = sum((p.size for p in positions if p.size and p.side is Side.SELL), ZERO)
    return long, short


def position_room(
    hedge: bool, long: Decimal, short: Decimal, max_position: Decimal | None
) -> dict[Side, Decimal] | None:
    """Per side, how much base the quotes of that side may add before the position passes
    ``max_position`` (negative: it is beyond already). One-way: the net position ``long −
    short`` must stay in ``[−max, max]``; hedge: each leg at most ``max``. None: no cap."""
    if max_position is None:
        return None
    if hedge:
        return {Side.BUY: max_position - long, Side.SELL: max_position - short}
    net = long - short
    return {Side.BUY: max_position - net, Side.SELL: max_position + net}


def take_profit_quote(
    position_side: Side,
    size: Decimal,
    entry: Decimal,
    spread: Decimal,
    rules: TradingRules,
) -> tuple[Side, Decimal, Decimal] | str:
    """``(side, price, amount)`` of the reduce-only order closing a position at ``entry × (1 ±
    spread)`` (a long sells above its entry, rounded up; a short buys below, rounded down),
    or why there is none."""
    if entry <= 0:
        return f"no entry price ({fmt(entry)})"
    amount = quantize_to_step(size, rules.qty_step)
    if position_side is Side.BUY:
        side = Side.SELL
        price = round_price(entry * (ONE + spread), rules.tick_size, side_is_buy=False)
    else:
        side = Side.BUY
        price = round_price(entry * (ONE - spread), rules.tick_size, side_is_buy=True)
    if price <= 0:
        return f"take-profit price {fmt(price)} is not positive"
    problem = size_guard(amount, price, rules)
    if problem is not None:
        return problem
    return side, price, amount


@dataclass(slots=True)
class TakeProfit:
    """Our take-profit order of one position leg, and the position it was priced for."""

    client_order_id: str
    size: Decimal
    entry: Decimal
    price: Decimal
    amount: Decimal


# -- the strategy ------------------------------------------------------------------------------


class PerpetualMarketMaking(LevelQuoter):
    """Linear perpetual market making (see the module docstring)."""

    name = "perpetual_market_making"
    Params = PerpetualMarketMakingParams
    params: PerpetualMarketMakingParams

    def __init__(self, runner: StrategyRunner, params: Any) -> None:
        super().__init__(runner, params)
        self.hedge = params.position_mode == "hedge"
        self.take_profits: dict[int, TakeProfit] = {}  # by positionIdx
        self._tp_skip: dict[int, str] = {}

    @property
    def perp(self) -> PerpetualConnector:
        conn = self.connector(self.conn_name)
        assert isinstance(conn, PerpetualConnector)
        return conn

    async def on_start(self) -> None:
        p = self.params
        self.pair = self.resolve_pair(p.connector, p.pair)
        conn = self.connector(p.connector)
        if not isinstance(conn, PerpetualConnector):
            raise ConfigError(
                f"params.connector: perpetual_market_making needs a perpetual connector; "
                f"{p.connector} is {conn.connector_id} ({conn.category})"
            )
        want = PositionMode.HEDGE if self.hedge else PositionMode.ONE_WAY
        try:
            if await conn.position_mode(self.pair) is not want:
                await conn.set_position_mode(self.pair, want)
            await conn.set_leverage(self.pair, p.leverage)
        except BybitkitError as exc:
            raise ConfigError(
                f"params.position_mode/leverage: could not apply {want.value} and leverage "
                f"{fmt(p.leverage)} on {self.pair}: {exc}"
            ) from exc
        await self.wait_for_band(conn, self.pair)
        r = self.rules(p.connector, self.pair)
        if quantize_to_step(p.order_amount, r.qty_step) < max(r.min_qty, r.qty_step):
            raise ConfigError(
                f"params.order_amount: {p.order_amount} is under the minimum quantity "
                f"{fmt(max(r.min_qty, r.qty_step))} of {self.pair}"
            )
        self.log.info(
            "perpetual market making %s on %s: %s mode, leverage %s, %d level(s) of %s, "
            "max position %s, take profit %s",
            self.pair, p.connector, want.value, fmt(p.leverage), p.order_levels,
            fmt(p.order_amount), p.max_position, p.take_profit_spread,
        )  # fmt: skip

    def legs_by_idx(self) -> dict[int, Position]:
        """Our symbol's non-flat position legs, by ``positionIdx``."""
        return {
            idx: pos
            for (pair, idx), pos in self.perp.positions_cache.items()
            if pair == self.pair and pos.size and pos.side is not None
        }

    def quote_options(self, side: Side) -> dict[str, Any]:
        return {"position_action": "open"} if self.hedge else {}

    def plan(self, mid: Decimal) -> list[PlannedQuote]:
        p = self.params
        long, short = legs(list(self.legs_by_idx().values()))
        return build_ladder(
            mid=mid,
            rules=self.rules(self.conn_name, self.pair),
            bid_spread=p.bid_spread,
            ask_spread=p.ask_spread,
            order_amount=p.order_amount,
            order_levels=p.order_levels,
            level_spread=p.level_spread,
            band=self.perp.bands.get(self.pair),
            base_room=position_room(self.hedge, long, short, p.max_position),
        )

    async def on_tick(self) -> None:
        self.ticks += 1
        await self.refresh_quotes()
        if self.params.take_profit_spread is not None:
            await self.refresh_take_profits(self.params.take_profit_spread)

    async def _cancel_tp(self, idx: int, why: str) -> bool:
        tp = self.take_profits.get(idx)
        if tp is None:
            return True
        ok = await self.cancel(self.conn_name, tp.client_order_id)
        order = self.perp.get_order(tp.client_order_id)
        if ok or order is None or not order.is_open:
            del self.take_profits[idx]
            self.log.info("take-profit %s cancelled (%s)", tp.client_order_id, why)
            return True
        self.log.warning("cancel of take-profit %s failed; retrying", tp.client_order_id)
        return False

    async def refresh_take_profits(self, spread: Decimal) -> None:
        """One reduce-only take-profit per open leg, matching its current size and entry."""
        conn = self.perp
        positions = self.legs_by_idx()
        for idx, old in list(self.take_profits.items()):
            order = conn.get_order(old.client_order_id)
            if order is None or not order.is_open:
                del self.take_profits[idx]  # filled (the position closed) or cancelled
        for idx in (1, 2) if self.hedge else (0,):
            pos = positions.get(idx)
            tp = self.take_profits.get(idx)
            if pos is None or pos.side is None:
                if tp is not None:
                    await self._cancel_tp(idx, "position closed")
                continue
            if tp is not None:
                if tp.size == pos.size and tp.entry == pos.entry_price:
                    continue
                if not await self._cancel_tp(idx, "position changed"):
                    continue
            quote = take_profit_quote(
                pos.side, pos.size, pos.entry_price, spread, self.rules(self.conn_name, self.pair)
            )
            if isinstance(quote, str):
                if self._tp_skip.get(idx) != quote:
                    self._tp_skip[idx] = quote
                    self.log.warning("no take-profit for positionIdx %s: %s", idx, quote)
                continue
            self._tp_skip.pop(idx, None)
            side, price, amount = quote
            order = await self.place(
                self.conn_name, self.pair, side, amount, price, "limit",
                reduce_only=True, position_action="close",
            )  # fmt: skip
            if order is not None:
                self.take_profits[idx] = TakeProfit(
                    order.client_order_id, pos.size, pos.entry_price, price, amount
                )
                self.log.info(
                    "take-profit %s %s @ %s for the %s %s entered at %s",
                    side.value, fmt(amount), fmt(price), pos.side.value, fmt(pos.size),
                    fmt(pos.entry_price),
                )  # fmt: skip
