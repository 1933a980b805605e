"""The strategy runner against the sandbox: a script strategy quotes through the rails; stop,
the kill switch, a fatal error and an invalid book all end with no open order left."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bybitkit.sandbox.app import Sandbox
from bybitkit.strategies import (
    EXIT_FATAL,
    EXIT_KILLED,
    EXIT_OK,
    StrategyRunner,
    parse_config,
)

D = Decimal

SCRIPT = """
from decimal import Decimal
import msgspec
from bybitkit.strategies import ScriptStrategy


class Params(msgspec.Struct, forbid_unknown_fields=True):
    spread: Decimal = Decimal("0.002")
    amount: Decimal = Decimal("0.001")
    crash_after: int = 0
    requote: bool = False  # cancel and quote again on every tick


class Quoter(ScriptStrategy):
    Params = Params

    async def on_start(self) -> None:
        self.ticks = 0
        self.filled = []

    async def on_tick(self) -> None:
        self.ticks += 1
        if self.params.crash_after and self.ticks >= self.params.crash_after:
            raise RuntimeError("a bug in the strategy")
        if self.params.requote:
            await self.cancel_all()
        elif self.open_orders("spot"):
            return
        book = self.book("spot", "BTC-USDT")
        if book is None:
            self.skipped = getattr(self, "skipped", 0) + 1
            return
        mid = book.mid()
        bid = self.quote_price("spot", "BTC-USDT", mid * (1 - self.params.spread), "buy")
        ask = self.quote_price("spot", "BTC-USDT", mid * (1 + self.params.spread), "sell")
        await self.buy("spot", "BTC-USDT", self.params.amount, bid)
        await self.sell("spot", "BTC-USDT", self.params.amount, ask)

    async def on_order_filled(self, event) -> None:
        self.filled.append(event.fill)
"""


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=11, simulate=False) as s:
        yield s


def config(sb: Sandbox, creds: Any, tmp_path: Path, **extra: Any) -> Any:
    script = tmp_path / "quoter.py"
    script.write_text(textwrap.dedent(SCRIPT))
    data: dict[str, Any] = {
        "strategy": str(script),
        "name": "quoter",
        "tick_interval": D("0.1"),
        "connectors": {
            "spot": {
                "connector": "sandbox",
                "environment": sb.environment.rest_url,
                "api_key": creds.api_key,
                "api_secret": creds.api_secret,
                "pairs": ["BTC-USDT"],
            }
        },
        "risk": {"stale_after": D(30)},
    }
    data.update(extra)
    return parse_config(data, "test")


async def wait_for(pred: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def started(runner: StrategyRunner) -> AsyncIterator[asyncio.Task[int]]:
    """The runner's ``run()`` as a task, cancelled and awaited on the way out if still going."""
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def open_on_exchange(sb: Sandbox, api_key: str) -> list[dict[str, Any]]:
    return sb.orders(api_key, open_only=True)


async def test_quotes_around_mid_then_stop_leaves_nothing(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    runner = StrategyRunner(config(sb, creds, tmp_path), home=tmp_path)
    async with started(runner) as task:
        await wait_for(lambda: len(open_on_exchange(sb, creds.api_key)) == 2)
        book = sb.book("BTCUSDT", "spot", 1)
        mid = (book["bids"][0][0] + book["asks"][0][0]) / 2
        prices = sorted(D(o["price"]) for o in open_on_exchange(sb, creds.api_key))
        assert prices[0] < mid < prices[1]
        assert abs(prices[0] / mid - 1) < D("0.0025") and abs(prices[1] / mid - 1) < D("0.0025")
        status = runner.status()
        assert (
            status["state"] == "running" and len(status["connectors"]["spot"]["open_orders"]) == 2
        )
        assert status["equity"] is not None
        # the order rows carry the book's state when they were placed (audit)
        stamps = [o.extra for o in runner.open_orders("spot")]
        assert all(s["book_valid"] is True and s["book_u"] for s in stamps)
        state_file = tmp_path / "run" / "quoter.json"
        assert state_file.exists()
        runner.request_stop("test")
        assert await task == EXIT_OK
    assert open_on_exchange(sb, creds.api_key) == []
    assert not state_file.exists()


async def test_fatal_error_exits_non_zero_and_cancels(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account()
    cfg = config(sb, creds, tmp_path, params={"crash_after": 5})
    runner = StrategyRunner(cfg, home=tmp_path)
    assert await asyncio.wait_for(runner.run(), 30) == EXIT_FATAL
    assert "a bug in the strategy" in runner.stop_reason
    assert runner.stats.orders == 2
    assert open_on_exchange(sb, creds.api_key) == []


async def test_kill_switch_fires_on_a_forced_move(sb: Sandbox, tmp_path: Path) -> None:
    creds = sb.create_account(balances={"USDT": "2000", "BTC": "1"})
    cfg = config(sb, creds, tmp_path, risk={"max_loss": D(1000), "equity_interval": D("0.1"),
                                            "stale_after": D(30)})  # fmt: skip
    runner = StrategyRunner(cfg, home=tmp_path)
    async with started(runner) as task:
        await wait_for(lambda: len(open_on_exchange(sb, creds.api_key)) == 2)
        start = runner.watch.start
        assert start is not None
        last = sb.book("BTCUSDT", "spot", 1)["bids"][0][0]
        sb.move_mid("BTCUSDT", last * D("0.95"))  # 1 BTC loses ~5 % of its value: > 1000 USDT
        code = await asyncio.wait_for(task, 30)
    assert code == EXIT_KILLED
    assert runner.killed is not None and "max loss" in runner.killed
    assert open_on_exchange(sb, creds.api_key) == []


async def test_an_invalid_book_stops_quoting(sb: Sandbox, tmp_path: Path) -> None:
    """A gap makes the book invalid until its resync (held back 2 s here): the strategy sees no
    book, and an order it tries anyway is refused by the rail; quoting resumes after."""
    from bybitkit.trading.events import BookInvalid

    creds = sb.create_account()
    cfg = config(sb, creds, tmp_path, params={"requote": True}, tick_interval=D("0.3"),
                 risk={"stale_after": D(30), "max_orders_per_second": D(20)})  # fmt: skip
    runner = StrategyRunner(cfg, home=tmp_path)
    invalid_at: list[float] = []

    async def hold_resync() -> None:
        async for ev in runner.connectors["spot"].events():
            if isinstance(ev, BookInvalid):
                sb.pause_pushes(2.0)  # before the resync's subscribe reaches the sandbox
                invalid_at.append(asyncio.get_running_loop().time())
                return

    async with started(runner) as task:
        await wait_for(lambda: runner.stats.orders >= 4)
        watcher = asyncio.create_task(hold_resync())
        await asyncio.sleep(0.05)
        book = runner.connectors["spot"].books["BTC-USDT"]
        sb.book_gap("BTCUSDT")
        sb.move_mid("BTCUSDT", sb.book("BTCUSDT", "spot", 1)["bids"][0][0] + 5)
        await asyncio.wait_for(watcher, 10)
        assert not book.is_valid
        placed = runner.stats.orders
        strategy: Any = runner.strategy
        skipped = getattr(strategy, "skipped", 0)
        await wait_for(lambda: getattr(strategy, "skipped", 0) > skipped, 5)
        assert runner.stats.orders == placed  # nothing placed while the book was invalid
        # and the rail refuses what a strategy tries anyway
        assert await runner.place("spot", "BTC-USDT", "buy", "limit", "0.001", "1000") is None
        assert runner.stats.refused["book"] >= 1
        await wait_for(lambda: book.is_valid, 15)  # resynced: quoting resumes
        await wait_for(lambda: runner.stats.orders > placed, 10)
        # every order ever placed was placed from a valid book, and says so in the store
        rows = runner.store.orders("sandbox")
        assert len(rows) == runner.stats.orders and all(r.book_valid for r in rows)
        runner.request_stop("test")
        assert await task == EXIT_OK
    assert open_on_exchange(sb, creds.api_key) == []


async def test_position_changes_reach_the_strategy(sb: Sandbox, tmp_path: Path) -> None:
    """``on_position_changed``: the strategy's own market buy opens a position (one event with
    its size), and a close made by another client of the account reaches it too (size 0)."""
    from bybitkit.strategies import ScriptStrategy
    from bybitkit.trading.events import PositionChanged
    from bybitkit.v5.rest import RestClient

    seen: list[PositionChanged] = []

    class Opener(ScriptStrategy):
        async def on_start(self) -> None:
            await self.buy("perp", "BTC-USDT", D("0.002"), None, order_type="market")

        async def on_position_changed(self, event: PositionChanged) -> None:
            seen.append(event)

    creds = sb.create_account()
    cfg = parse_config(
        {
            "name": "opener",
            "tick_interval": D("0.1"),
            "connectors": {
                "perp": {
                    "connector": "sandbox_perpetual",
                    "environment": sb.environment.rest_url,
                    "api_key": creds.api_key,
                    "api_secret": creds.api_secret,
                    "pairs": ["BTC-USDT"],
                }
            },
            "risk": {"stale_after": D(30)},
        },
        "test",
    )
    runner = StrategyRunner(cfg, strategy_cls=Opener, store=":memory:", control=False)
    async with started(runner) as task:
        await wait_for(lambda: any(e.position.size == D("0.002") for e in seen))
        assert seen[-1].position.pair == "BTC-USDT" and seen[-1].position.side is not None
        async with RestClient(sb.environment, creds) as rest:
            await rest.place_order(
                category="linear", symbol="BTCUSDT", side="Sell", orderType="Market",
                qty="0.002", reduceOnly=True, positionIdx=0,
            )  # fmt: skip
        await wait_for(lambda: seen[-1].position.size == 0)
        runner.request_stop("test")
        assert await task == EXIT_OK
