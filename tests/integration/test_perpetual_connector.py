"""The perpetual connector against the sandbox, over real sockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bybitkit
from bybitkit.connectors import PerpetualConnector
from bybitkit.errors import PositionError
from bybitkit.sandbox import Sandbox
from bybitkit.trading import (
    FundingPaid,
    OrderCompleted,
    PositionChanged,
    PositionMode,
    PriceClamped,
)
from bybitkit.v5.auth import Credentials

from .test_spot_connector import Recorder

D = Decimal
PAIR = "BTC-USDT"


def connect(sb: Sandbox, creds: Credentials, **opts: Any) -> PerpetualConnector:
    opts.setdefault("ws_reconnect_base", 0.05)
    opts.setdefault("poll_interval_s", 0.3)
    ex = bybitkit.connect(
        "sandbox_perpetual", credentials=creds, environment=sb.environment, **opts
    )
    assert isinstance(ex, PerpetualConnector)
    return ex


def sandbox_position(sb: Sandbox, creds: Credentials, symbol: str, idx: int = 0) -> dict[str, Any]:
    return next(
        p for p in sb.positions(creds.api_key) if p["symbol"] == symbol and p["positionIdx"] == idx
    )


async def test_one_way_open_add_reduce_close_flip(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        assert await ex.position_mode(PAIR) is PositionMode.ONE_WAY
        await ex.order_book(PAIR)
        for step, (side, amount) in enumerate(
            [("buy", "0.01"), ("buy", "0.02"), ("sell", "0.01"), ("sell", "0.05")]
        ):
            o = await ex.place_order(PAIR, side, "market", amount)
            await rec.wait(lambda e, o=o: isinstance(e, OrderCompleted) and e.order is o)
            (pos,) = await ex.positions()
            own = sandbox_position(sandbox, creds, "BTCUSDT")
            # our numbers are the exchange's, to the last digit
            assert pos.size == D(own["size"]) and pos.entry_price == D(own["avgPrice"])
            assert pos.realised_pnl == D(own["cumRealisedPnl"]), step
            assert pos.unrealised_pnl == D(own["unrealisedPnl"])
            assert pos.leverage == D(10)
        assert pos.side is bybitkit.Side.SELL and pos.size == D("0.03")  # flipped
        closing = await ex.close_position(PAIR)
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is closing[0])
        assert await ex.positions() == []
        assert any(isinstance(e, PositionChanged) for e in rec.events)


async def test_hedge_legs_are_independent(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        await ex.set_position_mode(PAIR, "hedge")
        await ex.set_position_mode(PAIR, "hedge")  # unchanged: success
        assert await ex.position_mode(PAIR) is PositionMode.HEDGE
        with pytest.raises(bybitkit.ValidationError, match="position_action"):
            await ex.place_order(PAIR, "sell", "market", "0.01")
        long = await ex.place_order(PAIR, "buy", "market", "0.01", position_action="open")
        short = await ex.place_order(PAIR, "sell", "market", "0.02", position_action="open")
        for o in (long, short):
            await rec.wait(lambda e, o=o: isinstance(e, OrderCompleted) and e.order is o)
        assert (long.position_idx, short.position_idx) == (1, 2)
        legs = {p.position_idx: p for p in await ex.positions()}
        assert legs[1].size == D("0.01") and legs[2].size == D("0.02")
        with pytest.raises(PositionError, match="110024"):
            await ex.set_position_mode(PAIR, "one_way")
        (closing,) = await ex.close_position(PAIR, "buy")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is closing)
        await asyncio.sleep(0.2)
        assert ex.positions_cache[(PAIR, 1)].size == 0  # the long is flat ...
        assert ex.positions_cache[(PAIR, 2)].size == D("0.02")  # ... the short untouched
        await ex.close_position(PAIR)
        await asyncio.sleep(0.3)
        assert await ex.positions() == []


async def test_usdc_perpetual_is_routed_with_its_settle_coin(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        assert ex.trading_rules("BTC-USDC").symbol == "BTCPERP"
        with pytest.raises(PositionError, match="110029"):
            await ex.set_position_mode("BTC-USDC", "hedge")
        assert await ex.position_mode("BTC-USDC") is PositionMode.ONE_WAY
        o = await ex.place_order("BTC-USDC", "buy", "market", "0.01")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        (pos,) = await ex.positions()
        assert pos.pair == "BTC-USDC" and pos.size == D("0.01")
        bal = await ex.balances()
        assert bal["USDC"].total < D("100000") and bal["USDT"].total == D("100000")
        assert o.fees == {"USDC": o.filled_value * D("0.00055")}
        await ex.cancel_all()  # both settle coins


async def test_leverage_twice_conditional_and_tpsl(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        await ex.set_leverage(PAIR, 20)
        await ex.set_leverage(PAIR, "20")  # 110043 is success
        assert await ex.leverage(PAIR) == D(20)
        book = await ex.order_book(PAIR)
        last = book.best_ask()[0]  # type: ignore[index]
        o = await ex.place_order(PAIR, "buy", "market", "0.01")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        cond = await ex.place_order(PAIR, "buy", "market", "0.01", trigger_price=last + 50,
                                    trigger_direction="rise")  # fmt: skip
        await ex.set_trading_stop(PAIR, take_profit=last + 150, stop_loss=last - 150)
        sandbox.move_mid("BTCUSDT", last + 80, category="linear")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is cond)
        (pos,) = await ex.positions()
        assert pos.size == D("0.02") and pos.leverage == D(20)
        sandbox.move_mid("BTCUSDT", last + 200, category="linear")
        await rec.wait(lambda e: isinstance(e, PositionChanged) and e.position.size == 0)
        assert await ex.positions() == []


async def test_funding_is_booked_once_across_reconnect_and_restart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    creds = sandbox.create_account()
    store = str(tmp_path / "perp.sqlite")
    async with connect(sandbox, creds, store=store) as ex, Recorder(ex) as rec:
        await ex.watch(PAIR)
        info = ex.funding_info(PAIR)
        assert info.rate == D("0.0001") and info.interval_hours == 8 and info.next_funding_ms
        o = await ex.place_order(PAIR, "sell", "market", "0.02")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        sandbox.settle_funding("BTCUSDT")
        paid = await rec.wait(lambda e: isinstance(e, FundingPaid))
        assert isinstance(paid, FundingPaid)
        own = next(e for e in sandbox.executions(creds.api_key) if e["execType"] == "Funding")
        assert paid.payment.exec_id == own["execId"] and paid.payment.amount == D(own["execFee"])
        assert paid.payment.side is bybitkit.Side.SELL and paid.payment.rate == D("-0.0001")
        sandbox.drop_ws()  # a private reconnect replays executions through reconciliation
        await asyncio.sleep(1.0)
        assert len([e for e in rec.events if isinstance(e, FundingPaid)]) == 1
    async with connect(sandbox, creds, store=store) as ex2, Recorder(ex2) as rec2:
        await asyncio.sleep(0.3)
        assert not any(isinstance(e, FundingPaid) for e in rec2.events)  # not again
        payments = await ex2.funding_payments(PAIR)
        assert [p.exec_id for p in payments] == [own["execId"]]
        sandbox.settle_funding("BTCUSDT")  # the next interval: once more, once
        await rec2.wait(lambda e: isinstance(e, FundingPaid))
        assert len(await ex2.funding_payments()) == 2


async def test_price_band_clamp_is_reported(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        book = await ex.order_book(PAIR)
        bid = book.best_bid()[0]  # type: ignore[index]
        far = bid * D("0.8")
        far = far - far % D("0.1")
        o = await ex.place_order(PAIR, "sell", "limit", "0.01", far)
        ev = await rec.wait(lambda e: isinstance(e, PriceClamped))
        assert isinstance(ev, PriceClamped) and ev.order is o and ev.requested == far
        assert ev.clamped > far and o.price == ev.clamped


async def close_behind_its_back(sandbox: Sandbox, creds: Credentials, qty: str) -> None:
    """Close the BTCUSDT position with another client (the connector under test not told)."""
    from bybitkit.v5.rest import RestClient

    async with RestClient(sandbox.environment, creds) as rest:
        await rest.place_order(
            category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty=qty,
            reduceOnly=True, positionIdx=0,
        )  # fmt: skip
    assert not any(D(p["size"]) for p in sandbox.positions(creds.api_key))


def stored_sizes(ex: PerpetualConnector) -> dict[str, Decimal]:
    return {r.pair: r.size for r in ex.store.positions(ex.connector_id)}


async def test_position_closed_during_a_missed_push_is_flat_after_reconcile(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Soak regression: listed by settle coin, Bybit shows non-zero positions only, so a
    position that went flat while its push was missed stayed open in the connector forever."""
    creds = sandbox.create_account()
    async with connect(sandbox, creds, store=str(tmp_path / "p.sqlite")) as ex, Recorder(ex) as rec:
        o = await ex.place_order(PAIR, "buy", "market", "0.01")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        await asyncio.sleep(0.2)
        assert [p.size for p in ex.positions_cache.values()] == [D("0.01")]
        ex.on_private_extra = lambda msg: None  # type: ignore[method-assign]  # pushes missed
        await close_behind_its_back(sandbox, creds, "0.01")
        await asyncio.sleep(0.2)
        assert [p.size for p in ex.positions_cache.values()] == [D("0.01")]  # not told
        del ex.on_private_extra
        await ex.reconcile()  # what a private reconnect does
        assert [p.size for p in ex.positions_cache.values() if p.size] == []
        assert stored_sizes(ex) == {PAIR: D(0)}


async def test_position_closed_while_down_is_flat_in_the_store_after_restart(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    creds = sandbox.create_account()
    store = str(tmp_path / "p.sqlite")
    async with connect(sandbox, creds, store=store) as ex, Recorder(ex) as rec:
        o = await ex.place_order(PAIR, "buy", "market", "0.01")
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is o)
        await asyncio.sleep(0.2)
        assert stored_sizes(ex) == {PAIR: D("0.01")}
    await close_behind_its_back(sandbox, creds, "0.01")  # while no connector runs
    async with connect(sandbox, creds, store=store) as ex2:
        assert await ex2.positions() == []
        assert stored_sizes(ex2) == {PAIR: D(0)}


async def test_an_order_on_a_watched_pair_makes_no_call_before_it_leaves(
    sandbox: Sandbox,
) -> None:
    """Soak regression: the first order of a pair learnt its position mode over REST between
    the runner's book rail and the book stamp, so a book could go stale in between (an order
    stamped stale went out). The mode is now learnt with the book."""
    creds = sandbox.create_account()
    async with connect(sandbox, creds) as ex:
        book = await ex.order_book(PAIR)
        calls: list[Any] = []
        real = ex.rest.positions

        async def spy(**params: Any) -> Any:
            calls.append(params)
            return await real(**params)

        ex.rest.positions = spy  # type: ignore[method-assign]
        bid = book.best_bid()
        assert bid is not None
        o = await ex.place_order(PAIR, "buy", "limit", "0.001", bid[0] - 100)
        assert calls == [] and o.extra["book_valid"] is True
