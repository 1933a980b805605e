"""Paper trading on public data from a sandbox: the sandbox's book is the paper's liquidity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bybitkit
from bybitkit.connectors.paper import PaperPerpetualConnector, PaperSpotConnector
from bybitkit.errors import DuplicateOrderId, InsufficientBalance
from bybitkit.sandbox import Sandbox
from bybitkit.trading import (
    FundingPaid,
    OrderCancelled,
    OrderCompleted,
    OrderFilled,
    OrderState,
    RuleViolation,
)
from bybitkit.v5.rest import RestClient

from .test_spot_connector import Recorder

D = Decimal
PAIR = "BTC-USDT"


def paper(sb: Sandbox, **opts: Any) -> PaperSpotConnector:
    ex = bybitkit.connect("bybit_paper_trade", environment=sb.environment, **opts)
    assert isinstance(ex, PaperSpotConnector)
    return ex


async def test_marketable_orders_fill_level_by_level_as_the_sandbox_would(sandbox: Sandbox) -> None:
    asks = sandbox.book("BTCUSDT", "spot", 3)["asks"]
    qty = asks[0][1] + asks[1][1] + asks[2][1] / 2
    async with paper(sandbox) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        o = await ex.place_order(PAIR, "buy", "market", qty)
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        ours = [(e.fill.price, e.fill.qty) for e in rec.events if isinstance(e, OrderFilled)]
    # the very same order on the sandbox itself
    creds = sandbox.create_account()
    async with RestClient(sandbox.environment, creds) as rest:
        await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market",
                               qty=str(qty), marketUnit="baseCoin")  # fmt: skip
        theirs = [(e.execPrice, e.execQty) for e in (await rest.executions(category="spot")).list]
    assert sorted(ours) == sorted(theirs) == [(asks[0][0], asks[0][1]), (asks[1][0], asks[1][1]),
                                             (asks[2][0], asks[2][1] / 2)]  # fmt: skip
    fees = {e.fill.exec_id: e.fill for e in rec.events if isinstance(e, OrderFilled)}
    assert all(f.fee == f.qty * D("0.001") and f.fee_currency == "BTC" for f in fees.values())


async def test_depth_runs_out_ioc_fok_and_post_only(sandbox: Sandbox) -> None:
    asks = sandbox.book("BTCUSDT", "spot", 2)["asks"]
    async with paper(sandbox, balances={"USDT": "10000000", "BTC": "0"}) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        ioc = await ex.place_order(PAIR, "buy", "limit", asks[0][1] * 2, asks[0][0], "IOC")
        ev = await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is ioc)
        assert ioc.filled == asks[0][1] and ev.reason == "no_liquidity"  # type: ignore[attr-defined]
        fok = await ex.place_order(PAIR, "buy", "limit", asks[0][1] * 2, asks[0][0], "FOK")
        await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is fok)
        assert fok.filled == 0
        po = await ex.place_order(PAIR, "buy", "limit_maker", "0.001", asks[0][0])
        ev = await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is po)
        assert ev.reason == "post_only_would_take"  # type: ignore[attr-defined]
        with pytest.raises(RuleViolation, match="minOrderAmt"):
            await ex.place_order(PAIR, "buy", "limit", "0.00001", asks[0][0] - 100)
        await ex.place_order(PAIR, "buy", "limit", "0.001", asks[0][0] - 100, client_order_id="p-1")
        with pytest.raises(DuplicateOrderId):
            await ex.place_order(
                PAIR, "buy", "limit", "0.001", asks[0][0] - 100, client_order_id="p-1"
            )
        with pytest.raises(InsufficientBalance):
            await ex.place_order(PAIR, "sell", "limit", "0.5", asks[0][0] + 100)
    # paper orders never reach the sandbox
    assert sandbox.exchange.open_orders == {} or all(
        not v for v in sandbox.exchange.open_orders.values()
    )


async def test_a_resting_order_waits_for_the_queue_ahead_of_it(sandbox: Sandbox) -> None:
    bid, queue = sandbox.book("BTCUSDT", "spot", 1)["bids"][0]
    real = sandbox.create_account()
    async with (
        paper(sandbox) as ex,
        Recorder(ex) as rec,
        RestClient(sandbox.environment, real) as rest,
    ):
        await ex.order_book(PAIR)
        o = await ex.place_order(PAIR, "buy", "limit", "0.02", bid)
        ack = await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                     orderType="Limit", qty="0.02", price=str(bid))  # fmt: skip

        async def real_filled() -> Decimal:
            return (await rest.open_orders(category="spot", orderId=ack.orderId)).list[0].cumExecQty

        # trades at our price eat the queue ahead first: no fill for either
        sandbox.inject_trade("BTCUSDT", "Sell", queue - D("0.005"), bid)
        await asyncio.sleep(0.3)
        assert o.filled == 0 and await real_filled() == 0
        # the next trade goes beyond the queue: both fill the excess, the paper never sooner
        sandbox.inject_trade("BTCUSDT", "Sell", D("0.015"), bid)
        await rec.wait(lambda e: isinstance(e, OrderFilled) and e.order is o)
        assert o.filled == D("0.01") == await real_filled()
        assert o.state is OrderState.PARTIALLY_FILLED
        fill = next(e.fill for e in rec.events if isinstance(e, OrderFilled))
        assert fill.is_maker and fill.price == bid and fill.fee == D("0.01") * D("0.001")
        # a trade through its price (a sell below the bid): the level was swept
        sandbox.inject_trade("BTCUSDT", "Sell", D("1"), bid - D("0.1"))
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        assert o.filled == D("0.02")


async def test_restart_resumes_balances_and_open_orders(sandbox: Sandbox, tmp_path: Path) -> None:
    store = str(tmp_path / "paper.sqlite")
    bid = sandbox.book("BTCUSDT", "spot", 1)["bids"][0][0]
    async with paper(sandbox, store=store) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        m = await ex.place_order(PAIR, "buy", "market", "0.01")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is m)
        rest = await ex.place_order(PAIR, "buy", "limit", "0.01", bid - 50)
        before = await ex.balances()
    async with paper(sandbox, store=store) as ex2:
        after = await ex2.balances()
        assert {c: (b.total, b.locked) for c, b in after.items()} == {
            c: (b.total, b.locked) for c, b in before.items()
        }
        (o,) = ex2.open_orders()
        assert o.client_order_id == rest.client_order_id and o.price == bid - 50
        await ex2.cancel_order(o.client_order_id)
        await asyncio.sleep(0.1)
        assert (await ex2.balances())["USDT"].locked == 0


@pytest.fixture
async def fast_funding() -> AsyncIterator[Sandbox]:
    # 480 min / 9600 = 3 s between fundings
    async with Sandbox(seed=5, simulate=False, speed=9600) as sb:
        yield sb


async def test_perpetual_paper_positions_pnl_and_funding(fast_funding: Sandbox) -> None:
    sb = fast_funding
    async with bybitkit.connect("bybit_perpetual_paper_trade", environment=sb.environment) as ex, \
            Recorder(ex) as rec:  # fmt: skip
        assert isinstance(ex, PaperPerpetualConnector)
        await ex.set_leverage(PAIR, 5)
        o = await ex.place_order(PAIR, "buy", "market", "0.05")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        (pos,) = await ex.positions()
        assert pos.size == D("0.05") and pos.leverage == 5
        mark = ex.funding_info(PAIR).mark_price
        assert mark is not None and pos.unrealised_pnl == (mark - pos.entry_price) * D("0.05")
        paid = await rec.wait(lambda e: isinstance(e, FundingPaid), timeout=8)
        assert isinstance(paid, FundingPaid)
        p = paid.payment
        assert p.side is bybitkit.Side.BUY and p.rate == D("0.0001")
        assert p.amount == p.size * p.mark_price * p.rate  # positive: the long paid
        assert p.exec_id in {x.exec_id for x in await ex.funding_payments(PAIR)}
        await ex.close_position(PAIR)
        await asyncio.sleep(0.2)
        assert await ex.positions() == []
