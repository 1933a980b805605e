"""Pure market making on one spot pair: a ladder of post-only bids and asks around the mid.

Every tick the strategy computes the ladder it wants (:func:`build_ladder`, pure) and brings
its resting quotes in line with it, level by level:

* level ``i`` (0 = nearest) quotes a bid at ``mid × (1 − bid_spread − i × level_spread)``
  rounded down to the tick and an ask at ``mid × (1 + ask_spread + i × level_spread)`` rounded
  up, both post-only (a quote that would take is cancelled by the exchange, never fills as a
  taker);
* a quote is replaced when it is older than ``refresh_time`` seconds, or when the mid moved
  more than ``refresh_tolerance`` (a fraction) from the mid it was priced from; a level whose
  quote ended (filled, or cancelled by the exchange) is quoted again on the next tick;
* a level is skipped (and its resting quote, if any, cancelled) when its price is above
  ``price_ceiling`` (bids) or below ``price_floor`` (asks), outside the exchange's price band
  (``buyLmt`` / ``sellLmt``, when known), when its size rounds to less than the pair's minimum
  quantity or notional, or when the wallet cannot fund it;
* with ``inventory_skew`` the sizes follow the inventory (:func:`inventory_multipliers`): the
  side that would push the base share of the portfolio further from
  ``inventory_target_base_ratio`` is scaled down, to zero at the edge of the range.

The state is kept per level (side, index), so a refresh cancels exactly our stale quotes and
nothing else (a manual order on the same account is left alone). The runner cancels whatever
is left open when the strategy stops.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from bybitkit.errors import BybitkitError, ConfigError
from bybitkit.money import fmt, quantize_to_step, round_price
from bybitkit.strategies.base import ScriptStrategy
from bybitkit.trading.events import OrderCancelled, OrderFilled
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import Side

if TYPE_CHECKING:
    from bybitkit.connectors.base import BybitConnector
    from bybitkit.strategies.runner import StrategyRunner

__all__ = [
    "LadderParams",
    "LevelQuoter",
    "LiveQuote",
    "PlannedQuote",
    "PureMarketMaking",
    "PureMarketMakingParams",
    "build_ladder",
    "inventory_multipliers",
    "level_price",
    "price_guard",
    "quote_is_stale",
    "size_guard",
]

ZERO = Decimal(0)
ONE = Decimal(1)
BAND_WAIT_S = 2.0  # how long on_start waits for the first price-band push


# -- params ------------------------------------------------------------------------------------


class LadderParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the market makers' params have in common: the pair, the order ladder and its
    refresh. Subclasses add their own fields and extend :meth:`__post_init__`."""

    pair: str
    order_amount: Decimal
    connector: str = "spot"
    bid_spread: Decimal = Decimal("0.001")
    ask_spread: Decimal = Decimal("0.001")
    order_levels: int = 1
    level_spread: Decimal = Decimal("0.001")
    refresh_time: Decimal = Decimal(30)
    refresh_tolerance: Decimal = Decimal("0.001")

    def __post_init__(self) -> None:
        """Raise ``ValueError`` naming the first ladder parameter out of range."""
        bid, ask = self.bid_spread, self.ask_spread
        levels, step = self.order_levels, self.level_spread
        if not ZERO <= bid < ONE:
            raise ValueError(f"bid_spread: expected a fraction in [0, 1), got {bid}")
        if ask < 0:
            raise ValueError(f"ask_spread: expected a fraction >= 0, got {ask}")
        if self.order_amount <= 0:
            raise ValueError(
                f"order_amount: expected a positive base amount, got {self.order_amount}"
            )
        if not 1 <= levels <= 50:
            raise ValueError(f"order_levels: expected 1 to 50, got {levels}")
        if step < 0:
            raise ValueError(f"level_spread: expected a fraction >= 0, got {step}")
        if bid + step * (levels - 1) >= ONE:
            raise ValueError(
                "level_spread: the deepest bid (bid_spread + level_spread × (order_levels − 1)) "
                "must stay under 1"
            )
        if self.refresh_time <= 0:
            raise ValueError(
                f"refresh_time: expected a positive number of seconds, got {self.refresh_time}"
            )
        if self.refresh_tolerance < 0:
            raise ValueError(
                f"refresh_tolerance: expected a fraction >= 0, got {self.refresh_tolerance}"
            )


class PureMarketMakingParams(LadderParams, forbid_unknown_fields=True, kw_only=True):
    """The params of :class:`PureMarketMaking` (see ``docs/strategies.md``)."""

    inventory_skew: bool = False
    inventory_target_base_ratio: Decimal = Decimal("0.5")
    inventory_range_multiplier: Decimal = Decimal(1)
    price_ceiling: Decimal | None = None
    price_floor: Decimal | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ZERO <= self.inventory_target_base_ratio <= ONE:
            raise ValueError(
                "inventory_target_base_ratio: expected a fraction in [0, 1], got "
                f"{self.inventory_target_base_ratio}"
            )
        if self.inventory_range_multiplier <= 0:
            raise ValueError(
                "inventory_range_multiplier: expected a positive number, got "
                f"{self.inventory_range_multiplier}"
            )
        if self.price_ceiling is not None and self.price_ceiling <= 0:
            raise ValueError(f"price_ceiling: expected a positive price, got {self.price_ceiling}")
        if self.price_floor is not None and self.price_floor <= 0:
            raise ValueError(f"price_floor: expected a positive price, got {self.price_floor}")


# -- the pure part -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedQuote:
    """One level of the ladder we want: a price and size, or why the level is not quoted."""

    side: Side
    level: int
    price: Decimal
    amount: Decimal
    skip: str | None = None

    @property
    def key(self) -> tuple[Side, int]:
        return (self.side, self.level)


def level_price(
    mid: Decimal, side: Side, spread: Decimal, level: int, level_spread: Decimal, tick: Decimal
) -> Decimal:
    """The price of ``level`` on ``side``: ``mid × (1 ∓ (spread + level × level_spread))`` on
    the tick, rounded away from the mid (a bid down, an ask up)."""
    offset = spread + level_spread * level
    if side is Side.BUY:
        return round_price(mid * (ONE - offset), tick, side_is_buy=True)
    return round_price(mid * (ONE + offset), tick, side_is_buy=False)


def _clip01(x: Decimal) -> Decimal:
    return min(ONE, max(ZERO, x))


def inventory_multipliers(
    base: Decimal,
    quote: Decimal,
    price: Decimal,
    target_base_ratio: Decimal,
    range_base: Decimal,
) -> tuple[Decimal, Decimal]:
    """``(bid, ask)`` size multipliers in ``[0, 1]`` from the inventory (Hummingbot-like).

    The portfolio is ``base × price + quote``; the target holds ``target_base_ratio`` of it in
    base. The range is ``range_base × price`` (Hummingbot: the total order size × the range
    multiplier), at most half the portfolio. Above the target (too much base) the bid shrinks
    linearly to 0 at ``target + range``; below it the ask shrinks to 0 at ``max(target − range,
    0)``; the other side keeps its full size (unlike Hummingbot, never more than the configured
    amount, so a size rail never refuses a skewed quote). An empty portfolio quotes nothing.
    """
    if price <= 0:
        return ZERO, ZERO
    base_value = max(base, ZERO) * price
    total = base_value + max(quote, ZERO)
    if total <= 0:
        return ZERO, ZERO
    target = total * target_base_ratio
    width = min(max(range_base, ZERO) * price, total / 2)
    if base_value > target:
        upper = target + width
        if upper <= target:
            return ZERO, ONE
        return ONE - _clip01((base_value - target) / (upper - target)), ONE
    if base_value < target:
        lower = max(target - width, ZERO)
        if lower >= target:
            return ONE, ZERO
        return ONE, ONE - _clip01((target - base_value) / (target - lower))
    return ONE, ONE


def price_guard(
    side: Side,
    price: Decimal,
    *,
    ceiling: Decimal | None = None,
    floor: Decimal | None = None,
    band: tuple[Decimal, Decimal] | None = None,
) -> str | None:
    """Why a quote at ``price`` must not be placed (None: it may). No buy above ``ceiling``, no
    sell below ``floor``; with the exchange's ``band = (buyLmt, sellLmt)``: no buy above
    ``buyLmt``, no sell below ``sellLmt`` (spot rejects such orders, linear moves them)."""
    if price <= 0:
        return f"price {fmt(price)} is not positive"
    if side is Side.BUY:
        if ceiling is not None and price > ceiling:
            return f"bid {fmt(price)} above price_ceiling {fmt(ceiling)}"
        if band is not None and price > band[0]:
            return f"bid {fmt(price)} outside the price band (buyLmt {fmt(band[0])})"
    else:
        if floor is not None and price < floor:
            return f"ask {fmt(price)} below price_floor {fmt(floor)}"
        if band is not None and price < band[1]:
            return f"ask {fmt(price)} outside the price band (sellLmt {fmt(band[1])})"
    return None


def size_guard(amount: Decimal, price: Decimal, rules: TradingRules) -> str | None:
    """Why ``amount`` at ``price`` is not a valid order size for the pair (None: it is)."""
    if amount <= 0:
        return "size rounds to 0"
    if rules.min_qty and amount < rules.min_qty:
        return f"size {fmt(amount)} under the minimum quantity {fmt(rules.min_qty)}"
    if rules.min_notional and amount * price < rules.min_notional:
        return (
            f"notional {fmt(amount * price)} under the minimum {fmt(rules.min_notional)} "
            f"{rules.quote_coin}"
        )
    return None


def build_ladder(
    *,
    mid: Decimal,
    rules: TradingRules,
    bid_spread: Decimal,
    ask_spread: Decimal,
    order_amount: Decimal,
    order_levels: int,
    level_spread: Decimal,
    bid_multiplier: Decimal = ONE,
    ask_multiplier: Decimal = ONE,
    ceiling: Decimal | None = None,
    floor: Decimal | None = None,
    band: tuple[Decimal, Decimal] | None = None,
    base_room: Mapping[Side, Decimal] | None = None,
    quote_budget: Decimal | None = None,
) -> list[PlannedQuote]:
    """Every level of both sides, bids first, nearest level first.

    Sizes are ``order_amount × multiplier`` rounded down to the quantity step (and capped at
    the post-only maximum). ``base_room``: per side, the base quantity that all the side's
    placed levels together may not exceed (spot: the base held, for asks; perpetual: the room
    left under ``max_position``). ``quote_budget``: what all the bids together may cost (spot:
    the quote held). A level that breaks a rule is returned with ``skip`` saying why; a skipped
    level consumes no room.
    """
    out: list[PlannedQuote] = []
    for side, spread, mult in (
        (Side.BUY, bid_spread, bid_multiplier),
        (Side.SELL, ask_spread, ask_multiplier),
    ):
        amount = quantize_to_step(order_amount * _clip01(mult), rules.qty_step, ROUND_DOWN)
        if rules.max_post_only_qty and amount > rules.max_post_only_qty:
            amount = quantize_to_step(rules.max_post_only_qty, rules.qty_step)
        used_base = ZERO
        used_quote = ZERO
        room = base_room.get(side) if base_room is not None else None
        for level in range(order_levels):
            price = level_price(mid, side, spread, level, level_spread, rules.tick_size)
            skip = price_guard(side, price, ceiling=ceiling, floor=floor, band=band)
            if skip is None:
                skip = size_guard(amount, price, rules)
            if skip is None and room is not None and used_base + amount > room:
                skip = f"no room: {fmt(used_base + amount)} over {fmt(max(room, ZERO))} base"
            if (
                skip is None
                and side is Side.BUY
                and quote_budget is not None
                and used_quote + amount * price > quote_budget
            ):
                skip = (
                    f"insufficient {rules.quote_coin}: {fmt(used_quote + amount * price)} "
                    f"over {fmt(max(quote_budget, ZERO))}"
                )
            if skip is None:
                used_base += amount
                used_quote += amount * price
            out.append(PlannedQuote(side, level, price, amount, skip))
    return out


def quote_is_stale(
    age_s: float,
    quote_mid: Decimal,
    mid: Decimal,
    refresh_time: Decimal,
    refresh_tolerance: Decimal,
) -> str | None:
    """Why a resting quote is due for a refresh (None: it is not)."""
    if Decimal(str(age_s)) >= refresh_time:
        return "age"
    if quote_mid > 0 and abs(mid - quote_mid) / quote_mid > refresh_tolerance:
        return "mid moved"
    return None


# -- the quoting engine (shared with the perpetual market maker) -------------------------------


@dataclass(slots=True)
class LiveQuote:
    """One of our resting quotes: what it was placed at and from which mid."""

    client_order_id: str
    side: Side
    level: int
    price: Decimal
    amount: Decimal
    mid: Decimal
    placed_at: float  # time.monotonic()


class LevelQuoter(ScriptStrategy):
    """The per-level quoting loop; subclasses say which ladder they want (:meth:`plan`).

    ``params`` must carry ``connector``, ``pair``, ``refresh_time`` and ``refresh_tolerance``.
    """

    def __init__(self, runner: StrategyRunner, params: Any) -> None:
        super().__init__(runner, params)
        self.conn_name: str = params.connector
        self.pair: str = params.pair
        self.quotes: dict[tuple[Side, int], LiveQuote] = {}
        self.requotes = 0  # how many refreshes cancelled stale quotes
        self.ticks = 0  # on_tick calls so far (the first one follows on_start)
        self._skips: dict[tuple[Side, int], str] = {}
        self._no_book = False

    # -- what subclasses provide ----------------------------------------------------------------

    def plan(self, mid: Decimal) -> list[PlannedQuote]:
        raise NotImplementedError

    def quote_options(self, side: Side) -> dict[str, Any]:
        """Extra order options of a quote (perpetual hedge mode: ``position_action``)."""
        return {}

    # -- setup ----------------------------------------------------------------------------------

    def resolve_pair(self, name: str, pair: str) -> str:
        """``pair`` normalised for connector ``name``, which must list it in the config."""
        if name not in self.runner.config.connectors:
            raise ConfigError(
                f"params.connector: expected one of {sorted(self.runner.config.connectors)}, "
                f"got {name!r}"
            )
        conn = self.connector(name)
        try:
            normal = conn.normalize_pair(pair)
        except BybitkitError as exc:
            raise ConfigError(f"params.pair: {exc}") from None
        if normal not in self.runner.pairs(name):
            raise ConfigError(
                f"params.pair: {normal} is not in connectors.{name}.pairs of the config"
            )
        return normal

    async def wait_for_band(self, conn: BybitConnector, pair: str) -> None:
        """The band is pushed every 300 ms: wait briefly for the first one, so that the very
        first quotes are already checked against it."""
        for _ in range(int(BAND_WAIT_S / 0.05)):
            if pair in conn.bands:
                break
            await asyncio.sleep(0.05)
        if pair not in conn.bands:
            self.log.info("no price band known for %s yet: quoting without the band guard", pair)

    # -- the loop -------------------------------------------------------------------------------

    def _prune(self) -> None:
        conn = self.connector(self.conn_name)
        for key, live in list(self.quotes.items()):
            order = conn.get_order(live.client_order_id)
            if order is None or not order.is_open:
                del self.quotes[key]

    async def cancel_quote(self, key: tuple[Side, int], why: str) -> bool:
        """Cancel our quote of one level; True when it is gone from our state."""
        live = self.quotes.get(key)
        if live is None:
            return True
        ok = await self.cancel(self.conn_name, live.client_order_id)
        order = self.connector(self.conn_name).get_order(live.client_order_id)
        if ok or order is None or not order.is_open:
            del self.quotes[key]
            self.log.debug(
                "cancelled %s level %s %s @ %s (%s)",
                live.side.value, live.level, fmt(live.amount), fmt(live.price), why,
            )  # fmt: skip
            return True
        self.log.warning("cancel of %s failed; retrying next tick", live.client_order_id)
        return False

    async def cancel_quotes(self, why: str) -> None:
        for key in list(self.quotes):
            await self.cancel_quote(key, why)

    def _note_skip(self, q: PlannedQuote) -> None:
        if q.skip is None:
            self._skips.pop(q.key, None)
            return
        kind = re.sub(r"[0-9][0-9.]*", "#", q.skip)  # log a reason once, not each new price
        if self._skips.get(q.key) != kind:
            self._skips[q.key] = kind
            self.log.info("not quoting %s level %s: %s", q.side.value, q.level, q.skip)

    async def refresh_quotes(self) -> None:
        """Bring our resting quotes in line with :meth:`plan` (see the module docstring)."""
        book = self.book(self.conn_name, self.pair)
        mid = book.mid() if book is not None else None
        if mid is None or mid <= 0:
            if not self._no_book:
                self._no_book = True
                self.log.warning("no usable book for %s: pulling our quotes", self.pair)
            await self.cancel_quotes("no usable book")
            return
        self._no_book = False
        self._prune()
        plan = self.plan(mid)
        now = time.monotonic()
        reasons: set[str] = set()
        wanted: list[PlannedQuote] = []
        for q in plan:
            self._note_skip(q)
            live = self.quotes.get(q.key)
            if live is not None:
                why = q.skip or quote_is_stale(
                    now - live.placed_at,
                    live.mid,
                    mid,
                    self.params.refresh_time,
                    self.params.refresh_tolerance,
                )
                if why is None:
                    continue
                reasons.add(why)
                if not await self.cancel_quote(q.key, why):
                    continue  # still resting: never stack a second quote on the level
            if q.skip is None:
                wanted.append(q)
        if reasons:
            self.requotes += 1
            self.log.info("requote %s mid=%s (%s)", self.pair, fmt(mid), ", ".join(sorted(reasons)))
        for q in wanted:
            order = await self.place(
                self.conn_name, self.pair, q.side, q.amount, q.price, "limit_maker",
                **self.quote_options(q.side),
            )  # fmt: skip
            if order is not None:
                self.quotes[q.key] = LiveQuote(
                    order.client_order_id, q.side, q.level, q.price, q.amount, mid,
                    time.monotonic(),
                )  # fmt: skip

    # -- hooks ----------------------------------------------------------------------------------

    async def on_order_filled(self, event: OrderFilled) -> None:
        f = event.fill
        self.log.info(
            "filled %s %s %s @ %s (order %s)",
            f.side.value, fmt(f.qty), f.pair, fmt(f.price), event.order.client_order_id,
        )  # fmt: skip

    async def on_order_cancelled(self, event: OrderCancelled) -> None:
        if event.reason != "user":
            self.log.info(
                "order %s cancelled by the exchange: %s", event.order.client_order_id, event.reason
            )

    async def on_stop(self) -> None:
        self.log.info("stopping with %d quotes resting (the runner cancels them)", len(self.quotes))


# -- the spot strategy -------------------------------------------------------------------------


class PureMarketMaking(LevelQuoter):
    """Spot market making on one pair (see the module docstring)."""

    name = "pure_market_making"
    Params = PureMarketMakingParams
    params: PureMarketMakingParams

    async def on_start(self) -> None:
        p = self.params
        self.pair = self.resolve_pair(p.connector, p.pair)
        conn = self.connector(p.connector)
        if conn.category != "spot":
            raise ConfigError(
                f"params.connector: pure_market_making trades spot; {p.connector} is "
                f"{conn.connector_id} ({conn.category})"
            )
        await self.wait_for_band(conn, self.pair)
        r = self.rules(p.connector, self.pair)
        self.log.info(
            "pure market making %s on %s: %d level(s) of %s, spreads %s/%s, refresh %s s",
            self.pair, p.connector, p.order_levels, fmt(p.order_amount),
            fmt(p.bid_spread), fmt(p.ask_spread), fmt(p.refresh_time),
        )  # fmt: skip
        if quantize_to_step(p.order_amount, r.qty_step) <= 0:
            raise ConfigError(
                f"params.order_amount: {p.order_amount} rounds to 0 on the quantity step "
                f"{fmt(r.qty_step)} of {self.pair}"
            )

    def multipliers(self, mid: Decimal) -> tuple[Decimal, Decimal]:
        """The inventory-skew size multipliers now (``(1, 1)`` without skew)."""
        p = self.params
        if not p.inventory_skew:
            return ONE, ONE
        r = self.rules(self.conn_name, self.pair)
        return inventory_multipliers(
            self.inventory(self.conn_name, r.base_coin),
            self.inventory(self.conn_name, r.quote_coin),
            mid,
            p.inventory_target_base_ratio,
            p.order_amount * p.order_levels * p.inventory_range_multiplier,
        )

    def plan(self, mid: Decimal) -> list[PlannedQuote]:
        p = self.params
        r = self.rules(self.conn_name, self.pair)
        bid_m, ask_m = self.multipliers(mid)
        return build_ladder(
            mid=mid,
            rules=r,
            bid_spread=p.bid_spread,
            ask_spread=p.ask_spread,
            order_amount=p.order_amount,
            order_levels=p.order_levels,
            level_spread=p.level_spread,
            bid_multiplier=bid_m,
            ask_multiplier=ask_m,
            ceiling=p.price_ceiling,
            floor=p.price_floor,
            band=self.connector(self.conn_name).bands.get(self.pair),
            base_room={Side.SELL: self.inventory(self.conn_name, r.base_coin)},
            quote_budget=self.inventory(self.conn_name, r.quote_coin),
        )

    async def on_tick(self) -> None:
        self.ticks += 1
        await self.refresh_quotes()
