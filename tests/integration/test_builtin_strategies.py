"""The built-in strategies against the in-process sandbox (its market frozen: the book moves only
by what a test does). Every test ends with the runner stopped, no open order on the sandbox and
no task left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bybitkit
from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.money import quantize_to_step
from bybitkit.sandbox.app import Sandbox
from bybitkit.strategies import EXIT_OK, StrategyRunner, parse_config
from bybitkit.strategies.funding_rate_arbitrage import FundingRateArbitrage
from bybitkit.strategies.perpetual_market_making import PerpetualMarketMaking
from bybitkit.strategies.pure_market_making import (
    PureMarketMaking,
    inventory_multipliers,
    level_price,
)
from bybitkit.trading.events import OrderCompleted
from bybitkit.trading.types import Side
from bybitkit.v5.auth import Credentials

D = Decimal
TICK = D("0.1")  # BTCUSDT's tick, spot and linear


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=21, simulate=False) as s:
        yield s


def conn_conf(sb: Sandbox, creds: Credentials, connector: str) -> dict[str, Any]:
    return {
        "connector": connector,
        "environment": sb.environment.rest_url,
        "api_key": creds.api_key,
        "api_secret": creds.api_secret,
        "pairs": ["BTC-USDT"],
    }


def make_config(strategy: str, connectors: dict[str, Any], params: dict[str, Any]) -> Any:
    return parse_config(
        {
            "strategy": strategy,
            "name": f"t-{strategy}",
            "tick_interval": D("0.1"),
            "connectors": connectors,
            "risk": {"stale_after": D(30), "max_orders_per_second": D(50)},
            "params": params,
        },
        "test",
    )


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


class Run:
    """A runner in a task, stopped on the way out; ``code`` is its exit code."""

    def __init__(self, runner: StrategyRunner) -> None:
        self.runner = runner
        self.code: int | None = None

    @property
    def strategy(self) -> Any:
        return self.runner.strategy


@contextlib.asynccontextmanager
async def running(cfg: Any, home: Path) -> AsyncIterator[Run]:
    runner = StrategyRunner(cfg, home=home, control=False)
    run = Run(runner)
    task = asyncio.create_task(runner.run())
    try:
        # on_start done and the tick loop running (a stop during on_start is a runner case
        # of its own, not tested here)
        await wait_for(lambda: task.done() or getattr(runner.strategy, "ticks", 0) >= 1, 20)
        assert not task.done(), runner.stop_reason
        yield run
    finally:
        runner.request_stop("test over")
        try:
            run.code = await asyncio.wait_for(task, 30)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    assert run.code == EXIT_OK, runner.stop_reason  # (only when the test body passed)


def spot_mid(sb: Sandbox, category: str = "spot") -> D:
    book = sb.book("BTCUSDT", category, 1)
    return (book["bids"][0][0] + book["asks"][0][0]) / 2


def open_orders(
    sb: Sandbox, creds: Credentials, category: str | None = None
) -> list[dict[str, Any]]:
    return [
        o
        for o in sb.orders(creds.api_key, open_only=True)
        if category is None or o["category"] == category
    ]


def quotes(orders: list[dict[str, Any]]) -> list[tuple[str, D, D]]:
    """(side, price, qty) of the orders, sorted."""
    return sorted((o["side"], D(o["price"]), D(o["qty"])) for o in orders)


def ladder(
    mid: D, bid: D, ask: D, levels: int, level_spread: D, amount: D
) -> list[tuple[str, D, D]]:
    out = []
    for i in range(levels):
        out.append(("Buy", level_price(mid, Side.BUY, bid, i, level_spread, TICK), amount))
        out.append(("Sell", level_price(mid, Side.SELL, ask, i, level_spread, TICK), amount))
    return sorted(out)


def pmm_config(sb: Sandbox, creds: Credentials, **params: Any) -> Any:
    base: dict[str, Any] = {"pair": "BTC-USDT", "order_amount": D("0.001")}
    base.update(params)
    return make_config("pure_market_making", {"spot": conn_conf(sb, creds, "sandbox")}, base)


# -- pure market making ------------------------------------------------------------------------


async def test_pmm_quotes_levels_around_the_mid(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    mid = spot_mid(sb)
    cfg = pmm_config(
        sb, creds, bid_spread=D("0.002"), ask_spread=D("0.003"), order_levels=2,
        level_spread=D("0.001"), refresh_time=D(60),
    )  # fmt: skip
    async with running(cfg, tmp_path) as run:
        await wait_for(lambda: len(open_orders(sb, creds)) == 4)
        got = open_orders(sb, creds)
        assert quotes(got) == ladder(mid, D("0.002"), D("0.003"), 2, D("0.001"), D("0.001"))
        assert all(o["timeInForce"] == "PostOnly" for o in got)
        assert isinstance(run.strategy, PureMarketMaking)
        assert len(run.strategy.quotes) == 4
        await asyncio.sleep(0.5)  # nothing stale: no churn
        assert {o["orderId"] for o in open_orders(sb, creds)} == {o["orderId"] for o in got}
        assert run.runner.stats.orders == 4
    assert run.code == EXIT_OK
    assert open_orders(sb, creds) == []


async def test_pmm_refreshes_after_refresh_time(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    cfg = pmm_config(sb, creds, bid_spread=D("0.002"), ask_spread=D("0.002"), refresh_time=D(1))
    async with running(cfg, tmp_path) as run:
        await wait_for(lambda: len(open_orders(sb, creds)) == 2)
        first = {o["orderId"] for o in open_orders(sb, creds)}
        seen_at = time.monotonic()
        await wait_for(
            lambda: (
                len(open_orders(sb, creds)) == 2
                and not first & {o["orderId"] for o in open_orders(sb, creds)}
            ),
            5,
        )
        assert time.monotonic() - seen_at >= 0.7  # not before refresh_time (1 s)
        old = [o for o in sb.orders(creds.api_key) if o["orderId"] in first]
        assert {o["orderStatus"] for o in old} == {"Cancelled"}  # ours, exactly, cancelled
        assert run.strategy.requotes >= 1
        assert quotes(open_orders(sb, creds)) == ladder(
            spot_mid(sb), D("0.002"), D("0.002"), 1, D("0.001"), D("0.001")
        )
    assert run.code == EXIT_OK
    assert open_orders(sb, creds) == []


async def test_pmm_refreshes_when_the_mid_moves_past_the_tolerance(
    sb: Sandbox, tmp_path: Path
) -> None:
    creds = sb.create_account()
    cfg = pmm_config(
        sb, creds, bid_spread=D("0.01"), ask_spread=D("0.01"), refresh_time=D(600),
        refresh_tolerance=D("0.001"),
    )  # fmt: skip
    async with running(cfg, tmp_path) as run:
        await wait_for(lambda: len(open_orders(sb, creds)) == 2)
        first = {o["orderId"] for o in open_orders(sb, creds)}
        mid = spot_mid(sb)
        sb.move_mid("BTCUSDT", mid * D("1.0005"))  # 0.05 %: within the tolerance
        book = run.runner.connectors["spot"].books["BTC-USDT"]
        await wait_for(lambda: book.mid() != mid)
        await asyncio.sleep(0.4)
        assert {o["orderId"] for o in open_orders(sb, creds)} == first
        moved = spot_mid(sb)
        sb.move_mid("BTCUSDT", moved * D("1.003"))  # 0.3 %: past it, short of our 1 % quotes
        await wait_for(
            lambda: (
                len(open_orders(sb, creds)) == 2
                and not first & {o["orderId"] for o in open_orders(sb, creds)}
            )
        )
        new_mid = spot_mid(sb)
        assert new_mid > moved
        assert quotes(open_orders(sb, creds)) == ladder(
            new_mid, D("0.01"), D("0.01"), 1, D("0.001"), D("0.001")
        )
        assert run.runner.stats.fills == 0  # replaced, not filled
    assert run.code == EXIT_OK
    assert open_orders(sb, creds) == []


async def test_pmm_inventory_skew_shrinks_the_bid_of_a_base_heavy_account(
    sb: Sandbox, tmp_path: Path
) -> None:
    creds = sb.create_account(balances={"USDT": "20000", "BTC": "1"})
    mid = spot_mid(sb)
    amount = D("0.01")
    cfg = pmm_config(
        sb, creds, order_amount=amount, inventory_skew=True,
        inventory_target_base_ratio=D("0.5"), inventory_range_multiplier=D(100),
        refresh_time=D(60),
    )  # fmt: skip
    async with running(cfg, tmp_path):
        await wait_for(lambda: len(open_orders(sb, creds)) == 2)
        sizes = {o["side"]: D(o["qty"]) for o in open_orders(sb, creds)}
    bid_m, ask_m = inventory_multipliers(D(1), D(20000), mid, D("0.5"), amount * 100)
    assert ask_m == 1 and 0 < bid_m < 1
    assert sizes["Sell"] == amount
    assert sizes["Buy"] == quantize_to_step(amount * bid_m, D("0.000001"))
    assert 0 < sizes["Buy"] < sizes["Sell"]
    assert open_orders(sb, creds) == []


async def test_pmm_price_ceiling_and_floor_suppress_the_outer_side(
    sb: Sandbox, tmp_path: Path
) -> None:
    creds = sb.create_account()
    mid = spot_mid(sb)
    spread, step = D("0.002"), D("0.002")
    bid0 = level_price(mid, Side.BUY, spread, 0, step, TICK)
    bid1 = level_price(mid, Side.BUY, spread, 1, step, TICK)
    ask0 = level_price(mid, Side.SELL, spread, 0, step, TICK)
    ask1 = level_price(mid, Side.SELL, spread, 1, step, TICK)
    cfg = pmm_config(
        sb, creds, bid_spread=spread, ask_spread=spread, order_levels=2, level_spread=step,
        price_ceiling=(bid0 + bid1) / 2, price_floor=(ask0 + ask1) / 2, refresh_time=D(60),
    )  # fmt: skip
    async with running(cfg, tmp_path) as run:
        await wait_for(lambda: len(open_orders(sb, creds)) == 2)
        await asyncio.sleep(0.3)  # and no more come
        assert quotes(open_orders(sb, creds)) == [
            ("Buy", bid1, D("0.001")),  # the bid above the ceiling is not placed
            ("Sell", ask1, D("0.001")),  # the ask below the floor is not placed
        ]
        assert run.runner.stats.rejected == 0
    assert open_orders(sb, creds) == []


async def test_pmm_band_guard_skips_quotes_outside_the_price_band(
    sb: Sandbox, tmp_path: Path
) -> None:
    creds = sb.create_account()
    mid = spot_mid(sb)
    spread, step = D("0.002"), D("0.002")
    bid0 = level_price(mid, Side.BUY, spread, 0, step, TICK)
    bid1 = level_price(mid, Side.BUY, spread, 1, step, TICK)
    ask1 = level_price(mid, Side.SELL, spread, 1, step, TICK)
    # a narrow band: buys up to between bid 1 and bid 0; sells only at ask 1 or above
    band = (quantize_to_step((bid0 + bid1) / 2, TICK), ask1)
    sb.set_price_band("BTCUSDT", *band)
    cfg = pmm_config(
        sb, creds, bid_spread=spread, ask_spread=spread, order_levels=2, level_spread=step,
        refresh_time=D(60),
    )  # fmt: skip
    async with running(cfg, tmp_path) as run:
        assert run.runner.connectors["spot"].bands.get("BTC-USDT") == band  # before quoting
        await wait_for(lambda: len(open_orders(sb, creds)) == 2)
        await asyncio.sleep(0.3)
        assert quotes(open_orders(sb, creds)) == [
            ("Buy", bid1, D("0.001")),
            ("Sell", ask1, D("0.001")),
        ]
        assert run.runner.stats.rejected == 0  # skipped here, never refused by the exchange
    assert open_orders(sb, creds) == []


# -- perpetual market making -------------------------------------------------------------------


def perp_config(sb: Sandbox, creds: Credentials, **params: Any) -> Any:
    base: dict[str, Any] = {"pair": "BTC-USDT", "order_amount": D("0.001")}
    base.update(params)
    return make_config(
        "perpetual_market_making", {"perp": conn_conf(sb, creds, "sandbox_perpetual")}, base
    )


async def test_perp_mm_applies_hedge_mode_and_leverage(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    cfg = perp_config(sb, creds, position_mode="hedge", leverage=D(3), order_levels=2,
                      bid_spread=D("0.002"), ask_spread=D("0.002"))  # fmt: skip
    account = sb.account_of(creds.api_key)
    market = sb.market("BTCUSDT", "linear")
    assert sb.exchange.deriv.mode(account, market) == 0
    async with running(cfg, tmp_path) as run:
        await wait_for(lambda: len(open_orders(sb, creds, "linear")) == 4)
        assert sb.exchange.deriv.mode(account, market) == 3  # hedge
        assert sb.exchange.deriv.leverage(account, "BTCUSDT") == 3
        got = open_orders(sb, creds, "linear")
        mid = spot_mid(sb, "linear")
        assert quotes(got) == ladder(mid, D("0.002"), D("0.002"), 2, D("0.001"), D("0.001"))
        # in hedge mode a bid opens the long leg (1), an ask the short leg (2); all post-only
        assert {(o["side"], o["positionIdx"]) for o in got} == {("Buy", 1), ("Sell", 2)}
        assert all(o["timeInForce"] == "PostOnly" and not o["reduceOnly"] for o in got)
        assert isinstance(run.strategy, PerpetualMarketMaking)
    assert run.code == EXIT_OK
    assert open_orders(sb, creds) == []


async def open_position(
    sb: Sandbox, creds: Credentials, side: str, qty: str, *, hedge: bool = False
) -> None:
    """A market order from another client of the same account (``hedge``: switch the symbol
    to hedge mode first, and open a leg)."""
    async with bybitkit.connect(
        "sandbox_perpetual", credentials=creds, environment=sb.environment
    ) as ex:
        assert isinstance(ex, PerpetualConnector)
        opts: dict[str, Any] = {}
        if hedge:
            await ex.set_position_mode("BTC-USDT", "hedge")
            opts["position_action"] = "open"
        order = await ex.place_order("BTC-USDT", side, "market", qty, **opts)
        async with asyncio.timeout(10):
            async for ev in ex.events():
                if isinstance(ev, OrderCompleted) and ev.order is order:
                    break


def position_of(sb: Sandbox, creds: Credentials, idx: int = 0) -> dict[str, Any]:
    rows = [
        p
        for p in sb.positions(creds.api_key)
        if p["symbol"] == "BTCUSDT" and p["positionIdx"] == idx and D(p["size"])
    ]
    assert len(rows) == 1
    return rows[0]


async def test_perp_mm_max_position_and_take_profit(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    await open_position(sb, creds, "buy", "0.01")
    cfg = perp_config(sb, creds, order_levels=2, max_position=D("0.005"),
                      take_profit_spread=D("0.01"), leverage=D(5))  # fmt: skip
    async with running(cfg, tmp_path) as run:
        # the long (0.01) is beyond max_position (0.005): no bid; asks (which reduce it) yes;
        # and one reduce-only take-profit for the whole position at entry × 1.01
        await wait_for(lambda: len(open_orders(sb, creds, "linear")) == 3)
        await asyncio.sleep(0.3)
        got = open_orders(sb, creds, "linear")
        assert not [o for o in got if o["side"] == "Buy"]
        tp = [o for o in got if o["reduceOnly"]]
        assert len(tp) == 1
        pos = position_of(sb, creds)
        entry = D(pos["avgPrice"])
        assert D(tp[0]["qty"]) == D("0.01") and tp[0]["side"] == "Sell"
        assert D(tp[0]["price"]) == quantize_to_step(entry * D("1.01"), TICK, "ROUND_UP")
        assert tp[0]["timeInForce"] == "GTC"
        assert len([o for o in got if o["timeInForce"] == "PostOnly"]) == 2
        # the position grows: the take-profit follows its size and entry
        await open_position(sb, creds, "buy", "0.002")
        await wait_for(
            lambda: (
                [D(o["qty"]) for o in open_orders(sb, creds, "linear") if o["reduceOnly"]]
                == [D("0.012")]
            )
        )
        entry = D(position_of(sb, creds)["avgPrice"])
        tp2 = next(o for o in open_orders(sb, creds, "linear") if o["reduceOnly"])
        assert D(tp2["price"]) == quantize_to_step(entry * D("1.01"), TICK, "ROUND_UP")
        old = [o for o in sb.orders(creds.api_key) if o["orderId"] == tp[0]["orderId"]]
        assert old[0]["orderStatus"] == "Cancelled"
        assert not [o for o in open_orders(sb, creds, "linear") if o["side"] == "Buy"
                    and not o["reduceOnly"]]  # fmt: skip
        assert isinstance(run.strategy, PerpetualMarketMaking)
    assert run.code == EXIT_OK
    assert open_orders(sb, creds) == []


async def test_perp_mm_take_profit_per_leg_in_hedge_mode(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    await open_position(sb, creds, "buy", "0.01", hedge=True)  # the long leg (1)
    await open_position(sb, creds, "sell", "0.004", hedge=True)  # the short leg (2)
    cfg = perp_config(
        sb, creds, position_mode="hedge", take_profit_spread=D("0.005"),
        max_position=D("0.005"), bid_spread=D("0.002"), ask_spread=D("0.002"),
    )  # fmt: skip
    async with running(cfg, tmp_path):
        await wait_for(lambda: len([o for o in open_orders(sb, creds) if o["reduceOnly"]]) == 2)
        await asyncio.sleep(0.3)
        got = open_orders(sb, creds, "linear")
        long_entry = D(position_of(sb, creds, 1)["avgPrice"])
        short_entry = D(position_of(sb, creds, 2)["avgPrice"])
        tps = sorted(
            (o["positionIdx"], o["side"], D(o["qty"]), D(o["price"]))
            for o in got
            if o["reduceOnly"]
        )
        assert tps == [
            (1, "Sell", D("0.01"), quantize_to_step(long_entry * D("1.005"), TICK, "ROUND_UP")),
            (2, "Buy", D("0.004"), quantize_to_step(short_entry * D("0.995"), TICK)),
        ]
        # the long leg (0.01) is over the cap: no bid; the short leg (0.004) has room: an ask
        assert {(o["side"], o["positionIdx"]) for o in got if not o["reduceOnly"]} == {("Sell", 2)}
    assert open_orders(sb, creds) == []


async def test_perp_mm_quotes_resume_when_the_position_is_back_under_the_cap(
    sb: Sandbox, tmp_path: Path
) -> None:
    creds = sb.create_account()
    cfg = perp_config(sb, creds, max_position=D("0.005"), leverage=D(5))
    async with running(cfg, tmp_path):
        await wait_for(lambda: {o["side"] for o in open_orders(sb, creds, "linear")}
                       == {"Buy", "Sell"})  # fmt: skip
        await open_position(sb, creds, "sell", "0.006")  # a short beyond the cap
        await wait_for(lambda: {o["side"] for o in open_orders(sb, creds, "linear")} == {"Buy"})
        await asyncio.sleep(0.3)
        assert {o["side"] for o in open_orders(sb, creds, "linear")} == {"Buy"}
        await open_position(sb, creds, "buy", "0.006")  # flat again: both sides quoted
        await wait_for(lambda: {o["side"] for o in open_orders(sb, creds, "linear")}
                       == {"Buy", "Sell"})  # fmt: skip
    assert open_orders(sb, creds) == []


# -- funding rate arbitrage --------------------------------------------------------------------


def state_of(strategy: Any) -> str:
    return str(strategy.state)


def arb_config(sb: Sandbox, creds: Credentials, **params: Any) -> Any:
    base: dict[str, Any] = {
        "pair": "BTC-USDT",
        "position_size": D("0.01"),
        "min_funding_rate": D("0.0003"),
        "exit_funding_rate": D(0),
        "leverage": D(2),
    }
    base.update(params)
    return make_config(
        "funding_rate_arbitrage",
        {
            "spot": conn_conf(sb, creds, "sandbox"),
            "perp": conn_conf(sb, creds, "sandbox_perpetual"),
        },
        base,
    )


async def test_funding_arbitrage_enters_collects_and_unwinds(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    start_btc = sb.balances(creds.api_key)["BTC"]["wallet"]
    async with running(arb_config(sb, creds), tmp_path) as run:
        strat = run.strategy
        assert isinstance(strat, FundingRateArbitrage)
        await asyncio.sleep(0.5)
        assert state_of(strat) == "flat"  # the default rate (0.01 %) is under min_funding_rate
        assert sb.positions(creds.api_key) == []
        sb.set_funding_rate("BTCUSDT", "0.0005")
        await wait_for(lambda: strat.state == "hedged")
        pos = position_of(sb, creds)
        assert pos["side"] == "Sell" and D(pos["size"]) == D("0.01")
        btc = sb.balances(creds.api_key)["BTC"]["wallet"]
        assert D("0.01") <= btc - start_btc < D("0.0101")  # the fee (in BTC) was grossed up
        assert sb.exchange.deriv.leverage(sb.account_of(creds.api_key), "BTCUSDT") == 2
        # a settlement: longs pay shorts
        mark = D(pos["markPrice"])
        assert sb.settle_funding("BTCUSDT") >= 1
        await wait_for(lambda: strat.funding_received > 0)
        assert strat.funding_received == D("0.01") * mark * D("0.0005")
        await asyncio.sleep(0.3)
        assert state_of(strat) == "hedged"  # still paying: hold
        sb.set_funding_rate("BTCUSDT", "-0.0001")
        await wait_for(lambda: strat.state == "flat")
        assert sb.positions(creds.api_key) == []
        assert strat.entries == 1 and strat.exits == 1
    assert run.code == EXIT_OK
    assert abs(sb.balances(creds.api_key)["BTC"]["wallet"] - start_btc) < D("0.00001")
    assert open_orders(sb, creds) == []


async def test_funding_arbitrage_sells_the_spot_leg_back_when_the_short_fails(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Enough USDT for the spot leg, not for the short's margin at leverage 1: the perpetual
    refuses the short, and the strategy sells the spot leg back (never unhedged silently)."""
    mid = spot_mid(sb)
    usdt = quantize_to_step(D("0.01") * mid * D("1.3"), D(1))
    creds = sb.create_account(balances={"USDT": usdt})
    sb.set_funding_rate("BTCUSDT", "0.0005")
    caplog.set_level(logging.INFO, logger="bybitkit.strategy")
    cfg = arb_config(sb, creds, leverage=D(1), entry_cooldown=D(600))
    async with running(cfg, tmp_path) as run:
        strat = run.strategy
        await wait_for(lambda: strat.entries == 1 and strat.state == "flat")
        assert sb.positions(creds.api_key) == []
        assert sb.balances(creds.api_key)["BTC"]["wallet"] < D("0.00001")
        assert run.runner.stats.rejected >= 1
        await asyncio.sleep(0.3)
        assert strat.entries == 1  # the cooldown holds the next try back
    text = caplog.text
    assert "spot_buy" in text and "perp_open" in text and "entry_spot_sell" in text
    assert "entry failed" in text
    assert open_orders(sb, creds) == []


async def test_funding_arbitrage_unwinds_on_stop(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    start_btc = sb.balances(creds.api_key)["BTC"]["wallet"]
    sb.set_funding_rate("BTCUSDT", "0.0005")
    async with running(arb_config(sb, creds), tmp_path) as run:
        await wait_for(lambda: run.strategy.state == "hedged")
        assert len(sb.positions(creds.api_key)) == 1
    assert run.code == EXIT_OK
    assert run.strategy.state == "flat"
    assert sb.positions(creds.api_key) == []
    assert abs(sb.balances(creds.api_key)["BTC"]["wallet"] - start_btc) < D("0.00001")
    assert open_orders(sb, creds) == []


async def test_funding_arbitrage_waits_for_the_basis(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    mid = spot_mid(sb)
    sb.move_mid("BTCUSDT", mid * D("1.01"), category="linear")  # the perpetual 1 % rich
    sb.set_funding_rate("BTCUSDT", "0.0005")
    async with running(arb_config(sb, creds, max_basis=D("0.002")), tmp_path) as run:
        strat = run.strategy
        perp = run.runner.connectors["perp"]
        assert isinstance(perp, PerpetualConnector)
        mark = perp.funding_info("BTC-USDT").mark_price
        assert mark is not None and mark > mid * D("1.009")
        await asyncio.sleep(0.5)
        assert state_of(strat) == "flat" and strat.entries == 0  # funding pays, basis too wide
        sb.move_mid("BTCUSDT", mid, category="linear")
        await wait_for(lambda: strat.state == "hedged")
        assert len(sb.positions(creds.api_key)) == 1
    assert run.code == EXIT_OK
    assert sb.positions(creds.api_key) == []  # unwound on stop
    assert open_orders(sb, creds) == []
