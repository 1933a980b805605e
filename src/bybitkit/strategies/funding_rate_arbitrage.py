"""Funding-rate arbitrage (cash and carry): long spot, short the perpetual, collect funding.

Two connectors on one unified account: a spot one and a linear perpetual one, the same pair
on both. While the perpetual's funding rate is at least ``min_funding_rate`` (longs pay
shorts), the strategy holds ``position_size`` base on spot and the same size short on the
perpetual, a position whose price risk cancels out and which receives the funding.

* **Enter** (``flat`` → ``entering`` → ``hedged``), when the rate (the perpetual's ticker) is
  at least ``min_funding_rate``, both books are usable, the basis ``|mark / spot mid − 1|`` is
  within ``max_basis`` (when set) and no failed entry is cooling down: a spot market buy of
  ``position_size`` (on the common quantity step of both pairs, grossed up by the spot taker
  fee, which Bybit takes in the base coin), then a perpetual market short sized from what the
  spot leg really got; if the short fills only in part or fails, the spot surplus is sold
  back, so both legs end the same size (or flat, and the entry waits ``entry_cooldown``).
* **Hold** (``hedged``): funding is received at each settlement (the runner counts the
  ``FundingPaid`` events; :attr:`FundingRateArbitrage.funding_received`). If the short shrinks
  without us (a liquidation, a manual close) for more than a few seconds, the spot leg is
  brought down to its size.
* **Exit** (``hedged`` → ``exiting`` → ``flat``), when the rate falls below
  ``exit_funding_rate``: a reduce-only market buy closes the short, then the spot leg is sold
  down to whatever short is left (all of it when the close filled). With ``unwind_on_stop``
  the same happens when the strategy stops.

No leg is ever left unhedged silently: every correction is logged with its sizes, and a
residual too small to trade (under the pair's minimum notional) is logged as such.
"""

from __future__ import annotations

import asyncio
import time
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.errors import BybitkitError, ConfigError
from bybitkit.money import fmt, quantize_to_step
from bybitkit.strategies.base import ScriptStrategy
from bybitkit.strategies.pure_market_making import size_guard
from bybitkit.trading.events import OrderFilled
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import Order, Side

if TYPE_CHECKING:
    from bybitkit.strategies.runner import StrategyRunner

__all__ = [
    "FundingRateArbitrage",
    "FundingRateArbitrageParams",
    "basis",
    "common_step",
    "entry_sizes",
    "hedge_quantity",
    "trim_quantity",
]

ZERO = Decimal(0)
ONE = Decimal(1)
ORDER_WAIT_S = 3.0  # how long a hook waits for a market order to finish before moving on
MISMATCH_GRACE_S = 3.0  # how long the exchange's short may disagree with ours before acting
DEFAULT_SPOT_TAKER_FEE = Decimal("0.001")  # Bybit's base tier, when the fee rate is unknown

State = Literal["flat", "entering", "hedged", "exiting"]


class FundingRateArbitrageParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The params of :class:`FundingRateArbitrage` (see ``docs/strategies.md``)."""

    pair: str
    position_size: Decimal
    spot_connector: str = "spot"
    perp_connector: str = "perp"
    min_funding_rate: Decimal = Decimal("0.0003")
    exit_funding_rate: Decimal = Decimal("0.0001")
    leverage: Decimal = Decimal(1)
    max_basis: Decimal | None = None
    unwind_on_stop: bool = True
    entry_cooldown: Decimal = Decimal(60)

    def __post_init__(self) -> None:
        if self.position_size <= 0:
            raise ValueError(
                f"position_size: expected a positive base size, got {self.position_size}"
            )
        if self.exit_funding_rate > self.min_funding_rate:
            raise ValueError(
                f"exit_funding_rate: expected at most min_funding_rate ({self.min_funding_rate}), "
                f"got {self.exit_funding_rate}"
            )
        if self.leverage < 1:
            raise ValueError(f"leverage: expected at least 1, got {self.leverage}")
        if self.max_basis is not None and self.max_basis < 0:
            raise ValueError(f"max_basis: expected a fraction >= 0, got {self.max_basis}")
        if self.entry_cooldown < 0:
            raise ValueError(
                f"entry_cooldown: expected a number of seconds >= 0, got {self.entry_cooldown}"
            )
        if self.spot_connector == self.perp_connector:
            raise ValueError("perp_connector: expected a connector other than spot_connector")


# -- the pure part -----------------------------------------------------------------------------


def common_step(a: Decimal, b: Decimal) -> Decimal:
    """The smallest positive quantity that is a multiple of both steps (their LCM)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"steps must be positive, got {a} and {b}")
    exp = min(a.as_tuple().exponent, b.as_tuple().exponent)
    assert isinstance(exp, int)
    scale = Decimal(10) ** -exp
    ia, ib = int(a * scale), int(b * scale)
    x, y = ia, ib
    while y:
        x, y = y, x % y
    return Decimal(ia // x * ib) / scale


def entry_sizes(
    position_size: Decimal,
    spot: TradingRules,
    perp: TradingRules,
    price: Decimal,
    spot_fee_rate: Decimal = ZERO,
) -> tuple[Decimal, Decimal] | str:
    """``(spot buy, perp short)`` for a hedge of ``position_size``, or why none is valid.

    The hedge size is ``position_size`` rounded down to the common step of both pairs, and
    must pass both pairs' minimum quantity and notional at ``price``. The spot buy is grossed
    up so that what is left after a base-coin fee of ``spot_fee_rate`` still covers it."""
    qty = quantize_to_step(position_size, common_step(spot.qty_step, perp.qty_step))
    for rules, leg in ((spot, "spot"), (perp, "perpetual")):
        problem = size_guard(qty, price, rules)
        if problem is not None:
            return f"{leg} leg of {fmt(qty)}: {problem}"
    fee = max(spot_fee_rate, ZERO)
    gross = qty / (ONE - fee) if fee < 1 else qty
    return quantize_to_step(gross, spot.qty_step, ROUND_UP), qty


def hedge_quantity(spot_held: Decimal, target: Decimal, perp: TradingRules) -> Decimal:
    """The perpetual short matching ``spot_held`` (never more than ``target``), on its step."""
    return quantize_to_step(max(min(spot_held, target), ZERO), perp.qty_step, ROUND_DOWN)


def trim_quantity(
    spot_held: Decimal, hedged: Decimal, spot: TradingRules, price: Decimal
) -> tuple[Decimal, Decimal]:
    """``(to sell, left over)``: the spot surplus over the ``hedged`` short that can be sold
    (on the step, above the minimums), and what remains unhedged after that sale."""
    surplus = max(spot_held - hedged, ZERO)
    amount = quantize_to_step(surplus, spot.qty_step, ROUND_DOWN)
    if amount <= 0 or size_guard(amount, price, spot) is not None:
        return ZERO, surplus
    return amount, surplus - amount


def basis(mark: Decimal, spot_mid: Decimal) -> Decimal:
    """The perpetual's premium over spot, as a fraction of spot."""
    return mark / spot_mid - ONE


# -- the strategy ------------------------------------------------------------------------------


class FundingRateArbitrage(ScriptStrategy):
    """Long spot + short perpetual while funding pays shorts (see the module docstring)."""

    name = "funding_rate_arbitrage"
    Params = FundingRateArbitrageParams
    params: FundingRateArbitrageParams

    def __init__(self, runner: StrategyRunner, params: Any) -> None:
        super().__init__(runner, params)
        self.state: State = "flat"
        self.pair: str = params.pair
        self.spot_leg = ZERO  # base we hold for the hedge (net of fees)
        self.perp_leg = ZERO  # the short we opened
        self.target = ZERO  # the hedge size of the current entry
        self.entries = 0
        self.exits = 0
        self.ticks = 0  # on_tick calls so far (the first one follows on_start)
        self._step = ""
        self._pending: list[tuple[str, str, Order]] = []  # (step, connector name, order)
        self._cooldown_until = 0.0
        self._spot_fee = DEFAULT_SPOT_TAKER_FEE
        self._mismatch_since: float | None = None
        self._rebalance_after = 0.0
        self._funding_seen = ZERO
        self._direct = False  # on_stop: the rails refuse while stopping, go to the connectors

    # -- lookups --------------------------------------------------------------------------------

    @property
    def perp(self) -> PerpetualConnector:
        conn = self.connector(self.params.perp_connector)
        assert isinstance(conn, PerpetualConnector)
        return conn

    @property
    def funding_received(self) -> Decimal:
        """Funding received since the start (negative: paid), from the runner's count of the
        ``FundingPaid`` events (Bybit's ``execFee``, positive = paid)."""
        return -self.runner.stats.funding

    def _rules(self) -> tuple[TradingRules, TradingRules]:
        p = self.params
        return self.rules(p.spot_connector, self.pair), self.rules(p.perp_connector, self.pair)

    def _short_size(self) -> Decimal | None:
        """The exchange's short on the pair (as the position stream last said), None if the
        connector has not seen the symbol's positions."""
        seen = False
        short = ZERO
        for (pair, _), pos in self.perp.positions_cache.items():
            if pair != self.pair:
                continue
            seen = True
            if pos.size and pos.side is Side.SELL:
                short += pos.size
        return short if seen else None

    def _spot_mid(self) -> Decimal | None:
        book = self.book(self.params.spot_connector, self.pair)
        return book.mid() if book is not None else None

    # -- start ----------------------------------------------------------------------------------

    async def on_start(self) -> None:
        p = self.params
        configured = self.runner.config.connectors
        for field, name in (
            ("spot_connector", p.spot_connector),
            ("perp_connector", p.perp_connector),
        ):
            if name not in configured:
                raise ConfigError(
                    f"params.{field}: expected one of {sorted(configured)}, got {name!r}"
                )
        spot = self.connector(p.spot_connector)
        perp = self.connector(p.perp_connector)
        if spot.category != "spot":
            raise ConfigError(f"params.spot_connector: {p.spot_connector} is not a spot connector")
        if not isinstance(perp, PerpetualConnector):
            raise ConfigError(
                f"params.perp_connector: {p.perp_connector} is not a perpetual connector"
            )
        if (spot.credentials is None) != (perp.credentials is None) or (
            spot.credentials is not None
            and perp.credentials is not None
            and (spot.credentials.api_key != perp.credentials.api_key
                 or spot.environment.rest_url != perp.environment.rest_url)
        ):  # fmt: skip
            raise ConfigError(
                "params: spot_connector and perp_connector must trade one account (the same "
                "keys on the same environment): the spot leg is the short's collateral"
            )
        try:
            self.pair = spot.normalize_pair(p.pair)
            perp_pair = perp.normalize_pair(p.pair)
        except BybitkitError as exc:
            raise ConfigError(f"params.pair: {exc}") from None
        if perp_pair != self.pair:
            raise ConfigError(f"params.pair: {p.pair} is {self.pair} on spot, {perp_pair} on perp")
        for name in (p.spot_connector, p.perp_connector):
            if self.pair not in self.runner.pairs(name):
                raise ConfigError(
                    f"params.pair: {self.pair} is not in connectors.{name}.pairs of the config"
                )
        try:
            await perp.set_leverage(self.pair, p.leverage)
        except BybitkitError as exc:
            raise ConfigError(f"params.leverage: {fmt(p.leverage)} refused: {exc}") from exc
        try:
            self._spot_fee = (await spot.trade_fee(self.pair)).taker
        except BybitkitError as exc:
            self.log.warning(
                "spot fee rate unknown (%s): sizing with %s", exc, fmt(DEFAULT_SPOT_TAKER_FEE)
            )
        mid = self._spot_mid()
        if mid is not None:
            sizes = entry_sizes(p.position_size, *self._rules(), mid, self._spot_fee)
            if isinstance(sizes, str):
                raise ConfigError(f"params.position_size: {sizes}")
        self._adopt_existing()
        self.log.info(
            "funding arbitrage %s: size %s, enter at rate >= %s, exit below %s, leverage %s, "
            "state %s",
            self.pair, fmt(p.position_size), fmt(p.min_funding_rate), fmt(p.exit_funding_rate),
            fmt(p.leverage), self.state,
        )  # fmt: skip

    def _adopt_existing(self) -> None:
        """A short left by a previous run: resume it as hedged (the spot leg is what the wallet
        holds of the base, up to the short's size; the hedge check evens them out)."""
        short = self._short_size()
        if not short:
            return
        spot_rules, _ = self._rules()
        held = self.inventory(self.params.spot_connector, spot_rules.base_coin)
        self.perp_leg = short
        self.spot_leg = min(held, short)
        self.target = short
        self.state = "hedged"
        self.log.warning(
            "resuming an existing short of %s %s (spot leg %s of %s held)",
            fmt(short), self.pair, fmt(self.spot_leg), fmt(held),
        )  # fmt: skip

    # -- orders ---------------------------------------------------------------------------------

    async def _order(
        self, step: str, name: str, side: Side, amount: Decimal, **opts: Any
    ) -> Order | None:
        """A market order of one leg; remembered as pending until it ends."""
        self.log.info("%s: %s %s %s on %s", step, side.value, fmt(amount), self.pair, name)
        if self._direct:
            try:
                order: Order | None = await self.connector(name).place_order(
                    self.pair, side, "market", amount, **opts
                )
            except (BybitkitError, ValueError) as exc:
                self.log.warning("%s refused: %s", step, exc)
                order = None
        else:
            order = await self.place(name, self.pair, side, amount, None, "market", **opts)
        if order is None:
            self.log.warning("%s: the order was not placed (see above)", step)
            return None
        self._pending.append((step, name, order))
        return order

    async def _wait_pending(self, timeout: float = ORDER_WAIT_S) -> bool:
        """Wait (a market order takes milliseconds) until every pending order ended, applying
        each to the legs; False when some are still open after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for item in list(self._pending):
                if not item[2].is_open:
                    self._pending.remove(item)
                    self._apply(*item)
            if not self._pending:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    def _apply(self, step: str, name: str, order: Order) -> None:
        """Account one finished leg order into the legs."""
        filled = order.filled
        if name == self.params.spot_connector:
            if order.side is Side.BUY:
                spot_rules, _ = self._rules()
                fee = order.fees.get(spot_rules.base_coin, ZERO)
                self.spot_leg += filled - fee
            else:
                self.spot_leg -= filled
            self.spot_leg = max(self.spot_leg, ZERO)
        elif order.side is Side.SELL:
            self.perp_leg += filled
        else:
            self.perp_leg = max(self.perp_leg - filled, ZERO)
        level = self.log.info if filled == order.amount else self.log.warning
        level(
            "%s: %s %s of %s filled (%s); legs now spot %s, short %s",
            step, order.side.value, fmt(filled), fmt(order.amount), order.state.value,
            fmt(self.spot_leg), fmt(self.perp_leg),
        )  # fmt: skip

    # -- the state machine ----------------------------------------------------------------------

    async def on_tick(self) -> None:
        self.ticks += 1
        if self._pending and not await self._wait_pending(0.0):
            return  # an order still in flight (its outcome is being resolved)
        self._report_funding()
        if self.state == "flat":
            if self._entry_wanted():
                self.state = "entering"
                self._step = "spot_buy"
                self.entries += 1
                await self._run_entry()
        elif self.state == "entering":
            await self._run_entry()
        elif self.state == "hedged":
            if self._exit_wanted():
                self.state = "exiting"
                self._step = "perp_close"
                self.exits += 1
                await self._run_exit()
            else:
                await self._check_hedge()
        elif self.state == "exiting":
            await self._run_exit()

    def _report_funding(self) -> None:
        got = self.funding_received
        if got != self._funding_seen:
            self.log.info(
                "funding received so far: %s (%s this settlement)",
                fmt(got), fmt(got - self._funding_seen),
            )  # fmt: skip
            self._funding_seen = got

    def _rate(self) -> Decimal | None:
        try:
            return self.perp.funding_info(self.pair).rate
        except BybitkitError:
            return None

    def _entry_wanted(self) -> bool:
        p = self.params
        if time.monotonic() < self._cooldown_until:
            return False
        rate = self._rate()
        if rate is None or rate < p.min_funding_rate:
            return False
        mid = self._spot_mid()
        perp_book = self.book(p.perp_connector, self.pair)
        if mid is None or mid <= 0 or perp_book is None:
            return False
        if p.max_basis is not None:
            mark = self.perp.funding_info(self.pair).mark_price or perp_book.mid()
            if mark is None:
                return False
            b = basis(mark, mid)
            if abs(b) > p.max_basis:
                self.log.debug("basis %s over max_basis %s: not entering", b, p.max_basis)
                return False
        self.log.info("funding rate %s >= %s: entering", fmt(rate), fmt(p.min_funding_rate))
        return True

    def _exit_wanted(self) -> bool:
        rate = self._rate()
        if rate is None or rate >= self.params.exit_funding_rate:
            return False
        if time.monotonic() < self._cooldown_until:
            return False
        self.log.info(
            "funding rate %s < %s: unwinding", fmt(rate), fmt(self.params.exit_funding_rate)
        )
        return True

    def _price(self) -> Decimal | None:
        """The spot mid, else the perpetual's mark: what sizes are judged at."""
        mid = self._spot_mid()
        if mid is not None and mid > 0:
            return mid
        try:
            mark = self.perp.funding_info(self.pair).mark_price
        except BybitkitError:
            return None
        return mark if mark is not None and mark > 0 else None

    async def _run_entry(self) -> None:
        """spot_buy → perp_open → trim → done; resumable at each step."""
        p = self.params
        spot_rules, perp_rules = self._rules()
        while True:
            if self._pending and not await self._wait_pending():
                return
            price = self._price()
            if price is None:
                self.log.warning("entry: no price for %s; resuming next tick", self.pair)
                return
            if self._step == "spot_buy":
                sizes = entry_sizes(p.position_size, spot_rules, perp_rules, price, self._spot_fee)
                if isinstance(sizes, str):
                    self.log.warning("cannot enter: %s", sizes)
                    self._step = "done"
                    continue
                buy, self.target = sizes
                self._step = "perp_open"
                await self._order("spot_buy", p.spot_connector, Side.BUY, buy)
            elif self._step == "perp_open":
                self._step = "trim"
                qty = hedge_quantity(self.spot_leg - self.perp_leg, self.target, perp_rules)
                problem = size_guard(qty, price, perp_rules) if self.spot_leg else "nothing bought"
                if problem is not None:
                    if self.spot_leg:
                        self.log.warning(
                            "spot leg of %s cannot be hedged (%s): selling it back",
                            fmt(self.spot_leg), problem,
                        )  # fmt: skip
                    continue
                await self._order(
                    "perp_open", p.perp_connector, Side.SELL, qty, position_action="open"
                )
            elif self._step == "trim":
                self._step = "done"
                await self._trim("entry", price)
            else:  # done
                self._finish("entry")
                return

    async def _run_exit(self) -> None:
        """perp_close → spot_sell → done; resumable at each step."""
        p = self.params
        while True:
            if self._pending and not await self._wait_pending():
                return
            price = self._price()
            if price is None:
                self.log.warning("exit: no price for %s; resuming next tick", self.pair)
                return
            if self._step == "perp_close":
                self._step = "spot_sell"
                short = self._short_size()
                qty = self.perp_leg if short is None else min(self.perp_leg, short)
                if qty > 0:
                    await self._order(
                        "perp_close", p.perp_connector, Side.BUY, qty,
                        reduce_only=True, position_action="close",
                    )  # fmt: skip
            elif self._step == "spot_sell":
                self._step = "done"
                await self._trim("exit", price)
            else:
                self._finish("exit")
                return

    async def _trim(self, what: str, price: Decimal) -> None:
        """Sell the spot leg down to the short's size (all of it when there is no short)."""
        spot_rules, perp_rules = self._rules()
        amount, left = trim_quantity(self.spot_leg, self.perp_leg, spot_rules, price)
        if amount > 0:
            await self._order(f"{what}_spot_sell", self.params.spot_connector, Side.SELL, amount)
        if left >= perp_rules.qty_step:
            self.log.warning(
                "%s: %s %s of spot stays unhedged: under the spot minimum notional (%s %s)",
                what, fmt(left), spot_rules.base_coin, fmt(spot_rules.min_notional),
                spot_rules.quote_coin,
            )  # fmt: skip
        elif left > 0:
            self.log.debug("%s: spot dust %s %s kept", what, fmt(left), spot_rules.base_coin)

    def _finish(self, what: str) -> None:
        _, perp_rules = self._rules()
        if self.perp_leg >= perp_rules.qty_step:
            if what == "exit":
                self.log.error(
                    "exit incomplete: a short of %s is still open (spot leg %s); retrying after "
                    "%s s", fmt(self.perp_leg), fmt(self.spot_leg), fmt(self.params.entry_cooldown),
                )  # fmt: skip
                self._cooldown_until = time.monotonic() + float(self.params.entry_cooldown)
            self.state = "hedged"
            self.log.info(
                "hedged: spot %s, short %s %s", fmt(self.spot_leg), fmt(self.perp_leg), self.pair
            )
        else:
            if what == "entry":
                self._cooldown_until = time.monotonic() + float(self.params.entry_cooldown)
                self.log.warning(
                    "entry failed: flat again (spot dust %s); next try in %s s",
                    fmt(self.spot_leg), fmt(self.params.entry_cooldown),
                )  # fmt: skip
            else:
                self.log.info("%s: flat (spot dust %s)", what, fmt(self.spot_leg))
            self.state = "flat"
            self.spot_leg = ZERO
            self.perp_leg = ZERO
        self._step = ""

    async def _check_hedge(self) -> None:
        """The exchange's short shrank without us (a liquidation, a manual close): once that
        has lasted ``MISMATCH_GRACE_S``, adopt its size and bring the spot leg down to it."""
        _, perp_rules = self._rules()
        if self.perp_leg - self.spot_leg >= perp_rules.qty_step:
            if time.monotonic() >= self._rebalance_after:
                await self._close_excess_short(perp_rules)
                if self.perp_leg - self.spot_leg >= perp_rules.qty_step:  # it did not work
                    self._rebalance_after = time.monotonic() + float(self.params.entry_cooldown)
            return
        short = self._short_size()
        if short is None or abs(short - self.perp_leg) < perp_rules.qty_step:
            self._mismatch_since = None
            return
        now = time.monotonic()
        if self._mismatch_since is None:
            self._mismatch_since = now
            return
        if now - self._mismatch_since < MISMATCH_GRACE_S:
            return
        self._mismatch_since = None
        if short > self.perp_leg:
            self.log.warning(
                "the exchange shows a short of %s, ours is %s: the extra is not ours, left alone",
                fmt(short), fmt(self.perp_leg),
            )  # fmt: skip
            return
        price = self._price()
        if price is None:
            return
        self.log.warning(
            "the short shrank to %s without us (ours was %s): selling the spot leg down to it",
            fmt(short), fmt(self.perp_leg),
        )  # fmt: skip
        self.perp_leg = short
        await self._trim("rebalance", price)
        await self._wait_pending()
        if self.perp_leg < perp_rules.qty_step:
            self._finish("rebalance")

    async def _close_excess_short(self, perp_rules: TradingRules) -> None:
        """The short is larger than the spot leg (a resumed run, a spot sale by hand): close
        the excess so that both legs are the same size again."""
        qty = quantize_to_step(self.perp_leg - self.spot_leg, perp_rules.qty_step)
        price = self._price()
        problem = size_guard(qty, price, perp_rules) if price is not None else "no price"
        if problem is not None:
            self.log.warning(
                "short %s exceeds the spot leg %s, but the excess cannot be closed: %s",
                fmt(self.perp_leg), fmt(self.spot_leg), problem,
            )  # fmt: skip
            return
        self.log.warning(
            "short %s exceeds the spot leg %s: closing %s of it",
            fmt(self.perp_leg), fmt(self.spot_leg), fmt(qty),
        )  # fmt: skip
        await self._order(
            "rebalance_perp_close", self.params.perp_connector, Side.BUY, qty,
            reduce_only=True, position_action="close",
        )  # fmt: skip
        await self._wait_pending()
        if self.perp_leg < perp_rules.qty_step:
            self._finish("rebalance")

    # -- events and stop ------------------------------------------------------------------------

    async def on_order_filled(self, event: OrderFilled) -> None:
        f = event.fill
        self.log.debug("fill %s %s %s @ %s", f.side.value, fmt(f.qty), f.pair, fmt(f.price))

    async def on_stop(self) -> None:
        """With ``unwind_on_stop``: close the short and sell the spot leg before the runner
        stops. The rails refuse orders while the runner stops, so these go straight to the
        connectors (still market orders, still logged)."""
        # the runner gives on_stop 10 s: 1.5 here, at most 2 × ORDER_WAIT_S and 1 below
        if self._pending:
            await self._wait_pending(1.5)
        if self.state == "flat" and not self.perp_leg and not self.spot_leg:
            return
        if not self.params.unwind_on_stop:
            self.log.warning(
                "stopping %s with spot %s and short %s left open (unwind_on_stop is false)",
                self.state, fmt(self.spot_leg), fmt(self.perp_leg),
            )  # fmt: skip
            return
        self.log.info(
            "unwinding on stop: spot %s, short %s", fmt(self.spot_leg), fmt(self.perp_leg)
        )
        self._direct = True
        try:
            self.state = "exiting"
            self._step = "perp_close"
            await self._run_exit()
            if self._pending:
                await self._wait_pending(1.0)
            if self._pending:
                self.log.error("unwind on stop: orders still open: %s",
                               [o.client_order_id for _, _, o in self._pending])  # fmt: skip
        finally:
            self._direct = False
