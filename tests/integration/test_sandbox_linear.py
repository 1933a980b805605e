"""Linear perpetuals on the sandbox through our REST client and streams, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bybitkit.errors import ExchangeError, InsufficientBalance, NotModified, PositionError
from bybitkit.sandbox import Sandbox
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import make_signer
from bybitkit.v5.rest import RestClient
from bybitkit.v5.ws import WsSession

D = Decimal
L = {"category": "linear", "symbol": "BTCUSDT"}
TAKER = D("0.00055")


@pytest.fixture
async def rest(sandbox: Sandbox) -> AsyncIterator[RestClient]:
    async with RestClient(sandbox.environment, sandbox.create_account()) as client:
        yield client


def asks(sb: Sandbox, n: int = 5, symbol: str = "BTCUSDT") -> list[tuple[Decimal, Decimal]]:
    return sb.book(symbol, "linear", n)["asks"]


def bids(sb: Sandbox, n: int = 5, symbol: str = "BTCUSDT") -> list[tuple[Decimal, Decimal]]:
    return sb.book(symbol, "linear", n)["bids"]


async def pos(rest: RestClient, idx: int = 0, symbol: str = "BTCUSDT") -> Any:
    rows = (await rest.positions(category="linear", symbol=symbol)).list
    return next(r for r in rows if r.positionIdx == idx)


async def test_open_add_reduce_close_flip_with_exact_pnl(
    sandbox: Sandbox, rest: RestClient
) -> None:
    (a1, q1), (a2, _) = asks(sandbox, 2)
    assert q1 > D("0.01")
    await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01")
    p = await pos(rest)
    assert (p.side, p.size, p.avgPrice) == ("Buy", D("0.01"), a1)
    assert p.positionIM == a1 * D("0.01") / 10 and p.leverage == 10
    assert p.unrealisedPnl == (p.markPrice - a1) * D("0.01")
    wallet = (await rest.wallet_balance(coin="USDT")).list[0].coin[0]
    assert wallet.walletBalance == D("100000") - a1 * D("0.01") * TAKER  # only the fee moved
    # add at a worse price: the entry is the exact average
    price2 = a2 + D("0.1")
    await rest.place_order(**L, side="Buy", orderType="Limit", qty="0.02", price=price2)
    p = await pos(rest)
    fills = (await rest.executions(category="linear")).list
    assert p.size == D("0.03") and p.positionValue == sum(f.execValue for f in fills)
    assert p.avgPrice == p.positionValue / p.size
    # reduce: realised = (exit - entry) x qty - fees
    ((b1, _),) = bids(sandbox, 1)
    entry_cost = p.positionValue
    await rest.place_order(**L, side="Sell", orderType="Market", qty="0.01", reduceOnly=True)
    p = await pos(rest)
    assert p.size == D("0.02")
    closed = (await rest.closed_pnl(category="linear")).list[0]
    cost_out = closed.cumEntryValue
    assert cost_out == (entry_cost * D("0.01") / D("0.03")).quantize(D("1e-12"))
    assert closed.cumExitValue == b1 * D("0.01")
    assert closed.closedPnl == closed.cumExitValue - cost_out - closed.openFee - closed.closeFee
    # flip: sell more than the position
    await rest.place_order(**L, side="Sell", orderType="Market", qty="0.05")
    p = await pos(rest)
    assert p.side == "Sell" and p.size == D("0.03")
    # close-position: qty "0" + reduceOnly + closeOnTrigger
    await rest.place_order(**L, side="Buy", orderType="Market", qty="0", reduceOnly=True,
                           closeOnTrigger=True)  # fmt: skip
    p = await pos(rest)
    assert p.size == 0 and p.side is None
    with pytest.raises(ExchangeError, match="110017"):
        await rest.place_order(**L, side="Sell", orderType="Market", qty="0.01", reduceOnly=True)


async def test_modes_leverage_and_refusals(sandbox: Sandbox, rest: RestClient) -> None:
    with pytest.raises(NotModified):
        await rest.set_leverage("linear", "BTCUSDT", "10", "10")  # the default, unchanged
    await rest.set_leverage("linear", "BTCUSDT", "25", "25")
    with pytest.raises(NotModified):
        await rest.set_leverage("linear", "BTCUSDT", "25", "25")
    with pytest.raises(PositionError, match="110029"):
        await rest.switch_position_mode(category="linear", symbol="BTCPERP", mode=3)
    bid = bids(sandbox, 1)[0][0]
    o = await rest.place_order(**L, side="Buy", orderType="Limit", qty="0.01", price=bid - 100)
    with pytest.raises(PositionError, match="110028"):
        await rest.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)
    await rest.cancel_order(**L, orderId=o.orderId)
    await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01")
    with pytest.raises(PositionError, match="110024"):
        await rest.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)
    await rest.place_order(**L, side="Sell", orderType="Market", qty="0.01", reduceOnly=True)
    await rest.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)
    with pytest.raises(ExchangeError, match="110025"):
        await rest.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)
    rows = (await rest.positions(category="linear", symbol="BTCUSDT")).list
    assert [(r.positionIdx, r.size) for r in rows] == [(1, 0), (2, 0)]  # two rows even flat
    with pytest.raises(ExchangeError, match="position idx"):
        await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01")
    await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01", positionIdx=1)
    await rest.place_order(**L, side="Sell", orderType="Market", qty="0.02", positionIdx=2)
    long, short = await pos(rest, 1), await pos(rest, 2)
    assert (long.side, long.size, short.side, short.size) == ("Buy", D("0.01"), "Sell", D("0.02"))
    # closing one leg leaves the other alone
    await rest.place_order(**L, side="Sell", orderType="Market", qty="0.01", positionIdx=1,
                           reduceOnly=True)  # fmt: skip
    long, short = await pos(rest, 1), await pos(rest, 2)
    assert long.size == 0 and short.size == D("0.02")
    perp = await pos(rest, 0, "BTCPERP")
    assert perp.positionIdx == 0 and perp.size == 0  # BTCPERP stays one-way
    with pytest.raises(InsufficientBalance, match="110007"):
        await rest.place_order(**L, side="Buy", orderType="Market", qty="300", positionIdx=1)
    with pytest.raises(ExchangeError, match="3400045"):
        await rest.set_margin_mode("ISOLATED_MARGIN")
    info = await rest.account_info()
    assert info.marginMode == "REGULAR_MARGIN"


async def test_conditional_and_tpsl_fire_when_the_price_moves(
    sandbox: Sandbox, rest: RestClient
) -> None:
    await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01")
    last = sandbox.market("BTCUSDT", "linear").inst.from_ticks(
        sandbox.market("BTCUSDT", "linear").last_ticks
    )
    with pytest.raises(ExchangeError, match="110092"):
        await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01",
                               triggerPrice=str(last - 50), triggerDirection=1)  # fmt: skip
    cond = await rest.place_order(**L, side="Buy", orderType="Market", qty="0.01",
                                  triggerPrice=str(last + 50), triggerDirection=1)  # fmt: skip
    await rest.trading_stop(**L, tpslMode="Full", positionIdx=0, takeProfit=str(last + 150),
                            stopLoss=str(last - 150))  # fmt: skip
    stops = (await rest.open_orders(**L, orderFilter="StopOrder")).list
    assert sorted(o.stopOrderType for o in stops) == ["Stop", "StopLoss", "TakeProfit"]
    assert all(o.orderStatus == "Untriggered" for o in stops)
    sandbox.move_mid("BTCUSDT", last + 80, category="linear")
    await asyncio.sleep(0.1)
    assert (await pos(rest)).size == D("0.02")  # the conditional fired
    fired = (await rest.order_history(**L, orderId=cond.orderId)).list[0]
    assert fired.orderStatus == "Filled" and fired.createType == "CreateByStopOrder"
    sandbox.move_mid("BTCUSDT", last + 200, category="linear")
    await asyncio.sleep(0.1)
    p = await pos(rest)
    assert p.size == 0  # the take-profit closed all of it; the stop-loss went with it
    assert (await rest.open_orders(**L, orderFilter="StopOrder")).list == []
    hist = {o.stopOrderType: o.orderStatus for o in (await rest.order_history(**L)).list}
    assert hist["TakeProfit"] == "Filled" and hist["StopLoss"] == "Deactivated"


async def test_funding_is_booked_once_everywhere(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    got: list[Any] = []
    priv = WsSession(
        sandbox.ws_url + "/v5/private", signer=make_signer(creds), on_message=got.append
    )
    async with priv, RestClient(sandbox.environment, creds) as rest:
        await priv.subscribe(["position", "execution", "wallet"])
        await rest.place_order(**L, side="Sell", orderType="Market", qty="0.02")
        before = await pos(rest)
        wallet0 = (await rest.wallet_balance(coin="USDT")).list[0].coin[0].walletBalance
        sandbox.set_funding_rate("BTCUSDT", "0.0003")
        mark = sandbox.market("BTCUSDT", "linear").inst.from_ticks(
            sandbox.market("BTCUSDT", "linear").mark_ticks
        )
        sandbox.settle_funding("BTCUSDT")
        await asyncio.sleep(0.2)
        (fund,) = (await rest.executions(category="linear", execType="Funding")).list
        assert fund.side == "Sell" and fund.feeRate == D("-0.0003")  # signed by side
        assert fund.execValue == D("0.02") * mark and fund.execFee == fund.execValue * fund.feeRate
        assert fund.execFee < 0  # a short receives a positive rate: execFee positive = paid
        (row,) = (await rest.transaction_log(accountType="UNIFIED", type="SETTLEMENT")).list
        assert row.funding == -fund.execFee and row.change == -fund.execFee
        wallet1 = (await rest.wallet_balance(coin="USDT")).list[0].coin[0].walletBalance
        assert wallet1 == wallet0 - fund.execFee == row.cashBalance
        after = await pos(rest)
        assert after.cumRealisedPnl == before.cumRealisedPnl - fund.execFee
        hist = (await rest.funding_history("linear", "BTCUSDT")).list
        assert hist[0].fundingRate == D("0.0003")
    streamed = [e for m in got if isinstance(m, s.ExecutionMessage) for e in m.data]
    assert [e.execId for e in streamed if e.execType == "Funding"] == [fund.execId]
    assert any(isinstance(m, s.PositionMessage) for m in got)


async def test_liquidation_at_the_bankruptcy_price(sandbox: Sandbox) -> None:
    creds = sandbox.create_account({"USDT": "200"})
    got: list[Any] = []
    priv = WsSession(
        sandbox.ws_url + "/v5/private", signer=make_signer(creds), on_message=got.append
    )
    async with priv, RestClient(sandbox.environment, creds) as rest:
        await priv.subscribe(["order", "execution", "position"])
        await rest.set_leverage("linear", "BTCUSDT", "50", "50")
        await rest.place_order(**L, side="Buy", orderType="Market", qty="0.1")
        p = await pos(rest)
        assert p.liqPrice and p.bustPrice and p.bustPrice < p.liqPrice < p.avgPrice
        sandbox.move_mid("BTCUSDT", p.liqPrice - 10, category="linear")
        await asyncio.sleep(0.3)
        after = await pos(rest)
        assert after.size == 0
        execs = (await rest.executions(category="linear")).list
        bust = next(e for e in execs if e.execType == "BustTrade")
        assert bust.execPrice == p.bustPrice and bust.execFee == 0
        wallet = (await rest.wallet_balance(coin="USDT")).list[0].coin[0]
        assert D(0) <= wallet.walletBalance < D("1")  # the margin is gone, no more
    liq_orders = [o for m in got if isinstance(m, s.OrderMessage) for o in m.data
                  if o.createType == "CreateByLiq"]  # fmt: skip
    assert liq_orders and liq_orders[-1].orderStatus == "Filled"
    statuses = [p.positionStatus for m in got if isinstance(m, s.PositionMessage) for p in m.data]
    assert "Liq" in statuses


async def test_band_clamps_linear_prices(sandbox: Sandbox, rest: RestClient) -> None:
    band = await rest.price_limit("linear", "BTCUSDT")
    far = await rest.place_order(**L, side="Sell", orderType="Limit", qty="0.01",
                                 price=str(band.sellLmt - 5000))  # fmt: skip
    row = (await rest.order_history(**L, orderId=far.orderId)).list[0]
    assert row.price == band.sellLmt  # moved to the band, not rejected (Bybit's default)
    assert row.orderStatus == "Filled"
