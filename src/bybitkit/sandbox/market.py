"""The simulated market behind the sandbox: a seeded fair-value walk, background makers and takers.

Per market, every step:

1. the fair value takes a random-walk step (volatility per instrument, scaled by ``speed``), or
   follows a move requested through the controls;
2. background takers (the house) sweep whatever rests on the wrong side of the new touch, so the
   price moves *through* the book and users' resting orders at those prices really fill;
3. the house ladder is re-laid: one order per price on a stable grid (every tick for the first
   120 ticks, every other tick for 200 ticks more), at least 200 levels per side, the touch
   spread 1 to 3 ticks; a few near-touch levels are refreshed with new sizes (queue churn);
4. random takers (a Poisson flow, at least one trade per second at speed 1) hit the touch.

The seed fixes prices and flow; wall-clock timestamps are whatever they are. ``freeze()`` stops
the random parts (walk, takers, refresh) while explicit controls (``move_mid``, ``inject_trade``)
still act, which is what deterministic tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from bybitkit.matching import Side
from bybitkit.sandbox.exchange import Exchange, Market, SOrder, now_ms

log = logging.getLogger(__name__)

NEAR_LEVELS = 120  # every tick from the touch
DEEP_LEVELS = 110  # then every other (even) tick
TAKER_RATE = 2.0  # random taker orders per second per market, at speed 1
STEP_S = 0.1
# The share of a step's shock common to every market of one base coin, and its own share
# (squares sum to 1: each market keeps its volatility).
COMMON_WEIGHT = 0.98
OWN_WEIGHT = math.sqrt(1 - COMMON_WEIGHT**2)
BASIS_REVERSION_PER_S = 0.05  # how fast a perpetual's fair value returns to its spot's


@dataclass
class MoveTarget:
    price: float  # ticks
    start_price: float
    start_t: float
    duration: float


@dataclass
class SimState:
    """What the simulator keeps per market."""

    fair: float  # fair value in ticks (a simulation parameter, never a booked price)
    vol_per_s: float  # relative volatility per second
    base_lots: int  # typical level size in lots
    taker_lots: tuple[int, int]
    bid_top: int = 0
    ask_top: int = 0
    bids: dict[int, SOrder] = field(default_factory=dict)
    asks: dict[int, SOrder] = field(default_factory=dict)
    move: MoveTarget | None = None
    premium: float = 0.0  # mark - index, in ticks


def _vol_per_minute(symbol: str) -> float:
    return 0.0004 if symbol.startswith("ETH") else 0.0003


class MarketSimulator:
    """Drives every market of an :class:`Exchange` through its house account."""

    def __init__(
        self, exchange: Exchange, *, seed: int = 0, speed: float = 1.0, frozen: bool = False
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed: expected a positive factor, got {speed}")
        self.exchange = exchange
        self.rng = random.Random(seed * 7919 + 17)
        self.speed = speed
        self.frozen = frozen
        self.steps = 0
        self.state: dict[tuple[str, str], SimState] = {}
        self._shocks: dict[str, float] = {}  # this step's common shock per base coin
        self._task: asyncio.Task[None] | None = None
        self.on_step: list[object] = []
        for key, market in exchange.markets.items():
            inst = market.inst
            price = float(inst.from_ticks(market.last_ticks))
            # ~0.5 BTC / 5 ETH of liquidity per near level, in lots.
            notional = 40_000.0
            base_lots = max(1, int(notional / price / float(inst.lot_size)))
            taker_lo = max(1, int(200.0 / price / float(inst.lot_size)))
            taker_hi = max(taker_lo + 1, int(4_000.0 / price / float(inst.lot_size)))
            self.state[key] = SimState(
                fair=float(market.last_ticks),
                vol_per_s=_vol_per_minute(inst.symbol) / math.sqrt(60.0),
                base_lots=base_lots,
                taker_lots=(taker_lo, taker_hi),
            )
        for key in self.state:
            self._relayer(self.exchange.markets[key], self.state[key], initial=True)
        exchange.flush()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sandbox-market")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(STEP_S)
            now = time.monotonic()
            dt, last = now - last, now
            try:
                self.step(min(dt, 1.0))
            except Exception:
                log.exception("market simulation step failed")
            self.exchange.flush()

    # -- controls -------------------------------------------------------------------------------

    def freeze(self) -> None:
        self.frozen = True

    def resume(self) -> None:
        self.frozen = False

    def move_mid(self, category: str, symbol: str, price: Decimal, duration_s: float = 0.0) -> None:
        """Move the fair value of a market to ``price`` over ``duration_s`` (wall) seconds; the
        book follows on the next steps (sweeping what rests in between)."""
        market = self.exchange.market(category, symbol)
        st = self.state[market.key]
        target = float(price / market.inst.tick_size)
        st.move = MoveTarget(target, st.fair, time.monotonic(), max(0.0, duration_s))
        if duration_s <= 0:
            self._apply_step(market, st, 0.0)
            self.exchange.flush()

    def inject_trade(
        self, category: str, symbol: str, side: str, qty: Decimal, price: Decimal | None = None
    ) -> SOrder:
        """A house taker order of ``qty`` on ``side`` (``Buy`` lifts asks, ``Sell`` hits bids), up
        to ``price`` if given: it trades against whatever rests, users' orders included."""
        market = self.exchange.market(category, symbol)
        inst = market.inst
        lots = inst.to_lots(qty)
        ticks = inst.to_ticks(price) if price is not None else None
        order = self.exchange.house_order(market, side, lots, ticks, "IOC")
        self._after_trades(market)
        self.exchange.flush()
        return order

    # -- one step -------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance every market by ``dt`` wall seconds (``dt * speed`` simulated seconds)."""
        self.steps += 1
        # One shock per base coin: the spot and perpetual markets of a coin move together, as
        # real ones do (each adds a little noise of its own: a basis that wanders, not drifts).
        self._shocks = {}
        for key, st in self.state.items():
            self._apply_step(self.exchange.markets[key], st, dt)

    def _shock(self, market: Market) -> float:
        coin = market.inst.base_coin
        common = self._shocks.get(coin)
        if common is None:
            common = self._shocks[coin] = self.rng.gauss(0.0, 1.0)
        return COMMON_WEIGHT * common + OWN_WEIGHT * self.rng.gauss(0.0, 1.0)

    def _apply_step(self, market: Market, st: SimState, dt: float) -> None:
        if self.frozen and st.move is None:
            self._after_trades(market)  # a frozen book stays exactly as it is
            return
        sim_dt = dt * self.speed
        before = st.fair
        finished = False
        if st.move is not None:
            mv = st.move
            frac = 1.0 if mv.duration <= 0 else (time.monotonic() - mv.start_t) / mv.duration
            if frac >= 1.0:
                st.fair = mv.price
                st.move = None
                finished = True
            else:
                st.fair = mv.start_price + (mv.price - mv.start_price) * frac
        elif not self.frozen and sim_dt > 0:
            st.fair *= math.exp(self._shock(market) * st.vol_per_s * math.sqrt(sim_dt))
            anchor = self._anchor(market)
            if anchor is not None:  # the basis reverts: a perpetual follows its spot market
                st.fair += (anchor - st.fair) * min(1.0, BASIS_REVERSION_PER_S * sim_dt)
        st.fair = max(st.fair, 10.0)
        self._relayer(market, st)
        if finished and st.fair != before:
            # A controlled move ends with a trade at the new touch, so the last price is there
            # too (a long jump can empty the book's side before the new ladder is laid).
            side = "Buy" if st.fair > before else "Sell"
            self.exchange.house_order(market, side, 1, None)
        if not self.frozen and sim_dt > 0:
            if self._random_takers(market, st, sim_dt):
                # A taker that ate the touch level(s) widened the spread: the makers step back
                # in at once, so the touch spread stays 1 to 3 ticks whenever it is looked at.
                self._lay_side(market, st.bids, "Buy", self._grid(st.bid_top, -1), st)
                self._lay_side(market, st.asks, "Sell", self._grid(st.ask_top, +1), st)
            self._refresh(market, st)
        self._after_trades(market)

    def _anchor(self, market: Market) -> float | None:
        """A linear market's spot twin's fair value, in this market's ticks (None if none)."""
        if market.inst.category != "linear":
            return None
        twin = self.state.get(("spot", market.inst.symbol))
        if twin is None:
            return None
        spot = self.exchange.markets[("spot", market.inst.symbol)]
        return twin.fair * float(spot.inst.tick_size / market.inst.tick_size)

    def _touch(self, st: SimState) -> tuple[int, int]:
        fair = st.fair
        spread = self.rng.choice((1, 1, 2, 2, 3)) if not self.frozen else 2
        bid = math.floor(fair - spread / 2.0)
        if bid < 1:
            bid = 1
        return bid, bid + spread

    def _relayer(self, market: Market, st: SimState, *, initial: bool = False) -> None:
        ex = self.exchange
        book = market.book
        bid_top, ask_top = self._touch(st)
        # Sweep what rests on the wrong side of the new touch (the price moving through it).
        if not initial:
            best_ask = book.best_ask()
            if best_ask is not None and best_ask <= bid_top:
                lots = book.available(Side.BUY, bid_top, 10**15)
                if lots:
                    ex.house_order(market, "Buy", lots, bid_top, "IOC")
            best_bid = book.best_bid()
            if best_bid is not None and best_bid >= ask_top:
                lots = book.available(Side.SELL, ask_top, 10**15)
                if lots:
                    ex.house_order(market, "Sell", lots, ask_top, "IOC")
        st.bid_top, st.ask_top = bid_top, ask_top
        self._lay_side(market, st.bids, "Buy", self._grid(bid_top, -1), st)
        self._lay_side(market, st.asks, "Sell", self._grid(ask_top, +1), st)

    @staticmethod
    def _grid(top: int, direction: int) -> set[int]:
        near = {top + direction * i for i in range(NEAR_LEVELS)}
        edge = top + direction * NEAR_LEVELS
        start = edge if edge % 2 == 0 else edge + direction
        deep = {start + direction * 2 * i for i in range(DEEP_LEVELS)}
        return {p for p in near | deep if p > 0}

    def _lay_side(
        self, market: Market, orders: dict[int, SOrder], side: str, grid: set[int], st: SimState
    ) -> None:
        ex = self.exchange
        for price in [p for p in orders if p not in grid or not orders[p].is_open]:
            ex.house_cancel(orders.pop(price))
        book = market.book
        opposite = Side.SELL if side == "Buy" else Side.BUY
        for price in grid:
            if price in orders:
                continue
            # Never cross a user's order that sits inside the spread: skip that level.
            if book.would_take(Side.BUY if side == "Buy" else Side.SELL, price):
                continue
            _ = opposite
            orders[price] = ex.house_order(market, side, self._size(st, price), price, "GTC")

    def _size(self, st: SimState, price: int) -> int:
        depth = abs(price - (st.bid_top if price <= st.bid_top else st.ask_top))
        scale = 1.0 + depth / 40.0
        return max(1, int(st.base_lots * scale * self.rng.lognormvariate(0.0, 0.6) / 4.0))

    def _random_takers(self, market: Market, st: SimState, sim_dt: float) -> int:
        """House market orders at the simulated rate; how many were sent."""
        rng = self.rng
        n = _poisson(rng, TAKER_RATE * sim_dt)
        for _ in range(n):
            side = "Buy" if rng.random() < 0.5 else "Sell"
            lots = rng.randint(*st.taker_lots)
            self.exchange.house_order(market, side, lots, None)
        return n

    def _refresh(self, market: Market, st: SimState) -> None:
        """Re-post a few near-touch house levels with new sizes (they lose their queue place)."""
        rng = self.rng
        for orders, top, direction, side in (
            (st.bids, st.bid_top, -1, "Buy"),
            (st.asks, st.ask_top, 1, "Sell"),
        ):
            for _ in range(2):
                price = top + direction * rng.randint(0, 20)
                old = orders.get(price)
                if old is None or not old.is_open:
                    continue
                self.exchange.house_cancel(old)
                orders[price] = self.exchange.house_order(
                    market, side, self._size(st, price), price, "GTC"
                )

    def _after_trades(self, market: Market) -> None:
        """Index follows the fair value, mark follows the index plus a small premium."""
        st = self.state[market.key]
        t = now_ms()
        fair = st.fair
        market.index_ticks = max(1, round(fair))
        st.premium = 0.98 * st.premium + 0.02 * (self.rng.gauss(0.0, 1.0) if not self.frozen else 0)
        market.mark_ticks = max(1, round(fair + st.premium))
        market.index_klines.on_trade(t, market.index_ticks, 0)
        market.mark_klines.on_trade(t, market.mark_ticks, 0)
        if market.inst.category == "linear":
            self.exchange.deriv.on_prices(market)  # mark/index triggers, liquidations


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    threshold = math.exp(-lam)
    k, p = 0, rng.random()
    while p > threshold:
        k += 1
        p *= rng.random()
    return k
