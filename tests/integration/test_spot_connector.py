"""The spot connector against the sandbox, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bybitkit
from bybitkit.connectors import BybitConnector
from bybitkit.errors import IpBanned, RateLimited
from bybitkit.sandbox import Sandbox
from bybitkit.store import Store
from bybitkit.trading import (
    BookInvalid,
    BookValid,
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderFailed,
    OrderFilled,
    OrderState,
    RuleViolation,
)
from bybitkit.v5.auth import Credentials

D = Decimal
PAIR = "BTC-USDT"


class Recorder:
    """Collects a connector's events in a task owned by the test."""

    def __init__(self, ex: BybitConnector) -> None:
        self.ex = ex
        self.events: list[Event] = []
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        async for ev in self.ex.events():
            self.events.append(ev)
            self._new.set()

    async def wait(self, pred: Callable[[Event], bool], timeout: float = 8.0) -> Event:
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for ev in self.events[seen:]:
                    if pred(ev):
                        return ev
                seen = len(self.events)
                self._new.clear()
                await self._new.wait()

    def of(self, cid: str) -> list[Event]:
        return [
            e
            for e in self.events
            if getattr(getattr(e, "order", None), "client_order_id", None) == cid
        ]


def connect(sb: Sandbox, creds: Credentials, **opts: Any) -> BybitConnector:
    opts.setdefault("ws_reconnect_base", 0.05)
    opts.setdefault("poll_interval_s", 0.3)
    opts.setdefault("unknown_interval_s", 0.2)
    return bybitkit.connect("sandbox", credentials=creds, environment=sb.environment, **opts)


@pytest.fixture
async def creds(sandbox: Sandbox) -> Credentials:
    return sandbox.create_account()


def best(sb: Sandbox, side: str) -> tuple[Decimal, Decimal]:
    return sb.book("BTCUSDT", "spot", 1)["bids" if side == "bid" else "asks"][0]


def check_order_of_events(events: list[Event], cid: str) -> None:
    kinds = [
        type(e).__name__
        for e in events
        if getattr(getattr(e, "order", None), "client_order_id", None) == cid
    ]
    assert kinds[0] == "OrderCreated", kinds
    ends = [k for k in kinds if k in ("OrderCompleted", "OrderCancelled", "OrderFailed")]
    assert len(ends) <= 1, kinds
    if ends:
        assert kinds[-1] == ends[0], kinds
    fills = [
        e.fill.exec_id
        for e in events
        if isinstance(e, OrderFilled) and e.order.client_order_id == cid
    ]
    assert len(fills) == len(set(fills)), "a fill reported twice"


async def test_order_types_and_events(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        book = await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        ask, ask_qty = best(sandbox, "ask")
        assert book.best_bid()[0] == bid and book.best_ask() == (ask, ask_qty)  # type: ignore[index]
        rest = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 50)
        assert rest in ex.open_orders() and rest.state is OrderState.OPEN
        maker = await ex.place_order(PAIR, "BUY", "LIMIT_MAKER", "0.001", bid - 60)
        crossing = await ex.place_order(PAIR, "buy", "limit_maker", "0.001", ask)
        market = await ex.place_order(PAIR, "buy", "market", "0.002")
        quote = await ex.place_order(PAIR, "sell", "market", "100", quote_amount=True)
        ioc = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 70, time_in_force="ioc")
        fok = await ex.place_order(PAIR, "buy", "limit", ask_qty * 3, ask, "FOK")
        cancelled = await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is crossing)
        assert cancelled.reason == "post_only_would_take"  # type: ignore[attr-defined]
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is market)
        await rec.wait(lambda e: isinstance(e, OrderCompleted) and e.order is quote)
        await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is ioc)
        await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is fok)
        assert market.filled == D("0.002") and market.state is OrderState.FILLED
        assert quote.filled_value >= D("100")
        assert {o.client_order_id for o in ex.open_orders()} == {
            rest.client_order_id,
            maker.client_order_id,
        }
        sb_orders = {o["orderLinkId"]: o for o in sandbox.orders(creds.api_key)}
        assert (
            sb_orders[maker.client_order_id]["timeInForce"] == "PostOnly"
        )  # LIMIT_MAKER is PostOnly
        for o in (rest, maker, crossing, market, quote, ioc, fok):
            check_order_of_events(rec.events, o.client_order_id)
        fee = await ex.trade_fee(PAIR)
        assert fee.maker == D("0.001") and fee.taker == D("0.001")


async def test_partial_fills_amend_cancel_and_batch(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        price = bid + D("0.1")
        o = await ex.place_order(PAIR, "buy", "limit", "0.03", price)
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        await rec.wait(lambda e: isinstance(e, OrderFilled) and e.order is o)
        assert o.filled == D("0.01") and o.state is OrderState.PARTIALLY_FILLED
        await ex.amend_order(o.client_order_id, price=price - D("0.1"))
        await asyncio.sleep(0.2)
        assert [x["price"] for x in sandbox.orders(creds.api_key, open_only=True)] == [
            str(price - D("0.1"))
        ]
        await ex.cancel_order(o.client_order_id)
        ev = await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is o)
        assert ev.reason == "user" and o.filled == D("0.01")  # type: ignore[attr-defined]
        batch = await ex.place_orders(
            [{"pair": PAIR, "side": "buy", "order_type": "limit", "amount": "0.001",
              "price": bid - 100 - i} for i in range(3)]
        )  # fmt: skip
        assert all(b.state is OrderState.OPEN for b in batch)
        assert await ex.cancel_orders([batch[0].client_order_id]) == [True]
        await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is batch[0])
        ids = await ex.cancel_all(PAIR)
        assert sorted(ids) == sorted(b.client_order_id for b in batch[1:])
        for b in batch[1:]:
            await rec.wait(lambda e, b=b: isinstance(e, OrderCancelled) and e.order is b)
        assert ex.open_orders() == []


async def test_pre_validation_names_the_rule_and_sends_nothing(
    sandbox: Sandbox, creds: Credentials
) -> None:
    async with connect(sandbox, creds) as ex:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        cases = [
            (dict(amount="0.0000001", price=bid), "basePrecision"),
            (dict(amount="0.00001", price=bid), "minOrderAmt"),
            (dict(amount="100", price=bid), "maxLimitOrderQty"),
            (dict(amount="0.001", price=bid + D("0.05")), "tickSize"),
            (dict(amount="0.001", price=bid * 2), "priceLimit"),
        ]
        await asyncio.sleep(0.4)  # the priceLimit stream has told us the band
        for kw, rule in cases:
            with pytest.raises(RuleViolation) as info:
                await ex.place_order(PAIR, "buy", "limit", **kw)
            assert info.value.rule == rule
        with pytest.raises(RuleViolation, match="maxMarketOrderQty"):
            await ex.place_order(PAIR, "buy", "market", "1000")
        with pytest.raises(bybitkit.ValidationError, match="side"):
            await ex.place_order(PAIR, "hold", "limit", "0.001", bid)
        with pytest.raises(bybitkit.ValidationError, match="pair"):
            await ex.place_order("DOGE-USDT", "buy", "limit", "1", "1")
        with pytest.raises(bybitkit.ValidationError, match="float"):
            await ex.place_order(PAIR, "buy", "limit", 0.001, bid)
    assert sandbox.orders(creds.api_key) == []


async def test_private_drop_during_fills_loses_and_doubles_nothing(
    sandbox: Sandbox, creds: Credentials
) -> None:
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        orders = []
        for i in range(4):
            sandbox.drop_private_after_fill()
            orders.append(await ex.place_order(PAIR, "buy", "market", "0.001"))
            sandbox.inject_trade("BTCUSDT", "Buy", "0.01")
            await asyncio.sleep(0.05 * i)
        for o in orders:
            await rec.wait(lambda e, o=o: isinstance(e, OrderCompleted) and e.order is o)
    exchange_fills = {e["execId"] for e in sandbox.executions(creds.api_key)}
    ours = [e.fill.exec_id for e in rec.events if isinstance(e, OrderFilled)]
    assert sorted(ours) == sorted(exchange_fills)
    for o in orders:
        check_order_of_events(rec.events, o.client_order_id)


async def test_execute_then_drop_is_resolved_without_a_duplicate(
    sandbox: Sandbox, creds: Credentials
) -> None:
    async with connect(sandbox, creds) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        sandbox.drop_next_create()
        sandbox.pause_pushes(1.5)  # so the query, not the stream, resolves it
        o = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 10)
        assert o.state is OrderState.UNKNOWN and o in ex.open_orders()
        await rec.wait(lambda e: isinstance(e, OrderCreated) and e.order is o)
        async with asyncio.timeout(5):
            while o.state is OrderState.UNKNOWN:
                await asyncio.sleep(0.05)
        assert o.state is OrderState.OPEN and o.exchange_order_id
        # and an unknown order that never reached the exchange ends FAILED, after several asks
        sandbox.rest_errors("5xx", path="/v5/order/create")
        lost = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 11)
        assert lost.state is OrderState.UNKNOWN
        await rec.wait(lambda e: isinstance(e, OrderFailed) and e.order is lost)
    assert [x["orderLinkId"] for x in sandbox.orders(creds.api_key)] == [o.client_order_id]


async def test_a_cancelled_submit_is_resolved_not_left_pending(
    sandbox: Sandbox, creds: Credentials
) -> None:
    """The caller's task is cancelled while its create is out (a strategy stopping): the order
    may exist on the exchange, so it becomes UNKNOWN and is resolved, never PENDING_SUBMIT."""
    async with connect(sandbox, creds) as ex:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        sandbox.delay_responses(1.0, count=1, path="/v5/order/create")
        sandbox.pause_pushes(1.5)  # so the query, not the stream, resolves it
        cid = ex.new_client_order_id()
        task = asyncio.create_task(ex.place_order(PAIR, "buy", "limit", "0.001", bid - 10,
                                                  client_order_id=cid))  # fmt: skip
        await asyncio.sleep(0.3)  # executed by the sandbox, the answer held back
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        o = ex.get_order(cid)
        assert o is not None and o.state is OrderState.UNKNOWN
        async with asyncio.timeout(5):
            while o.state is OrderState.UNKNOWN:
                await asyncio.sleep(0.05)
        assert o.state is OrderState.OPEN and o.exchange_order_id
        await ex.cancel_order(cid)
    assert [x["orderLinkId"] for x in sandbox.orders(creds.api_key)] == [cid]


async def test_restart_in_the_middle_of_fills(
    sandbox: Sandbox, creds: Credentials, tmp_path: Path
) -> None:
    path = tmp_path / "store.sqlite"
    bid, _ = best(sandbox, "bid")
    price = bid + D("0.1")
    async with connect(sandbox, creds, store=str(path)) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        o = await ex.place_order(PAIR, "buy", "limit", "0.05", price)
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        await rec.wait(lambda e: isinstance(e, OrderFilled))
        cid = o.client_order_id
    # the connector is gone; the market keeps filling the order
    sandbox.inject_trade("BTCUSDT", "Sell", "0.015", price)
    sandbox.inject_trade("BTCUSDT", "Sell", "0.005", price)
    async with connect(sandbox, creds, store=str(path)) as ex2, Recorder(ex2) as rec2:
        o2 = ex2.get_order(cid)
        assert o2 is not None and o2.filled == D("0.03") and o2.state is OrderState.PARTIALLY_FILLED
        new_fills = [e for e in rec2.events if isinstance(e, OrderFilled)]
        assert len(new_fills) == 2  # only the two fills that happened while it was down
        sandbox.inject_trade("BTCUSDT", "Sell", "0.02", price)
        await rec2.wait(lambda e: isinstance(e, OrderCompleted))
        assert o2.filled == D("0.05")
    with Store(str(path)) as store:
        fills = store.fills("sandbox")
        assert len(fills) == len({f.exec_id for f in fills}) == 4
        assert sum(f.qty for f in fills) == D("0.05")
    assert {e["execId"] for e in sandbox.executions(creds.api_key)} == {f.exec_id for f in fills}


async def test_trade_ws_order_entry_and_rest_fallback(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds, order_entry="ws") as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        assert ex.trade_ws is not None and ex.trade_ws.connected
        bid, _ = best(sandbox, "bid")
        a = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 10)
        await ex.cancel_order(a.client_order_id)
        await rec.wait(lambda e: isinstance(e, OrderCancelled) and e.order is a)
        await ex.trade_ws.close()  # the trade stream is down: REST takes over
        b = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 11)
        assert b.state is OrderState.OPEN and b.exchange_order_id
    assert len(sandbox.orders(creds.api_key)) == 2


async def test_book_gap_reset_and_staleness(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds, stale_after=1.0) as ex, Recorder(ex) as rec:
        book = await ex.order_book(PAIR)
        sandbox.book_gap("BTCUSDT")
        sandbox.inject_trade("BTCUSDT", "Buy", "0.01")
        inv = await rec.wait(lambda e: isinstance(e, BookInvalid))
        assert inv.reason == "gap"  # type: ignore[attr-defined]
        await rec.wait(
            lambda e: isinstance(e, BookValid) and rec.events.index(e) > rec.events.index(inv)
        )
        n = len(rec.events)
        sandbox.book_reset("BTCUSDT")
        await asyncio.sleep(0.3)
        assert book.is_valid and book.u == 1  # a u=1 snapshot resets, it is not a gap
        assert not any(isinstance(e, BookInvalid) for e in rec.events[n:])
        sandbox.pause_pushes(2.0)
        stale = await rec.wait(lambda e: isinstance(e, BookInvalid) and e.reason == "stale", 4)  # type: ignore[attr-defined]
        assert not book.is_usable
        await asyncio.sleep(0.5)  # the pause is over; the market moves again
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01")
        await rec.wait(
            lambda e: isinstance(e, BookValid) and rec.events.index(e) > rec.events.index(stale), 6
        )
        assert book.is_usable


async def test_our_book_equals_the_sandbox_book_after_a_long_run(live_sandbox: Sandbox) -> None:
    sb = live_sandbox
    async with bybitkit.connect("sandbox", environment=sb.environment, book_depth=50) as ex:
        book = await ex.order_book(PAIR)
        await asyncio.sleep(4)
        sb.freeze()
        await asyncio.sleep(0.5)
        assert book.is_valid
        own = sb.book("BTCUSDT", "spot", 50)
        assert book.bids(50) == own["bids"] and book.asks(50) == own["asks"]


async def test_clock_rate_limit_and_ban_are_survived(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds, ban_seconds=0.5) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        sandbox.rest_errors("10002")
        a = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 10)
        assert a.state is OrderState.OPEN
        sandbox.rest_errors("10006")
        with pytest.raises(RateLimited):
            await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 11)
        b = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 12)
        sandbox.rest_errors("403")
        with pytest.raises(IpBanned):
            await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 13)
        await asyncio.sleep(0.6)
        c = await ex.place_order(PAIR, "buy", "limit", "0.001", bid - 14)
        assert b.state is OrderState.OPEN and c.state is OrderState.OPEN
        failed = [e for e in rec.events if isinstance(e, OrderFailed)]
        assert len(failed) == 2  # the rate-limited and the banned ones: refused, never sent
    assert len(sandbox.orders(creds.api_key)) == 3


async def test_balances(sandbox: Sandbox, creds: Credentials) -> None:
    async with connect(sandbox, creds) as ex:
        bal = await ex.balances()
        assert bal["USDT"].total == D("100000") and bal["USDT"].available == D("100000")
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        await ex.place_order(PAIR, "buy", "limit", "0.01", bid - 10)
        bal = await ex.balances()
        assert bal["USDT"].locked == (bid - 10) * D("0.01")
        assert bal["USDT"].available == D("100000") - (bid - 10) * D("0.01")


async def test_public_data_needs_no_credentials(sandbox: Sandbox) -> None:
    async with bybitkit.connect("sandbox", environment=sandbox.environment) as ex:
        book = await ex.order_book("BTCUSDT")
        assert book.best_bid() is not None
        assert ex.trading_rules("BTC-USDT").tick_size == D("0.1")
        with pytest.raises(bybitkit.BybitkitError, match="credentials"):
            await ex.place_order(PAIR, "buy", "market", "0.001")


def _pending_row(store_path: Path, cid: str, price: Decimal) -> None:
    """What a process killed between tracking an order and hearing its answer leaves behind."""
    from bybitkit.store import OrderRecord

    with Store(str(store_path)) as store:
        store.upsert_order(
            OrderRecord(
                connector="sandbox", client_order_id=cid, exchange_order_id=None, pair=PAIR,
                category="spot", side="BUY", order_type="LIMIT", time_in_force="GTC",
                price=price, amount=D("0.001"), filled=D(0), state="PENDING_SUBMIT",
                created_ms=1, updated_ms=1, book_u=1, book_age=0.1, book_valid=True,
            )
        )  # fmt: skip


async def test_a_submit_pending_when_killed_is_resolved_after_restart(
    sandbox: Sandbox, creds: Credentials, tmp_path: Path
) -> None:
    """Soak regression: an order the store held as PENDING_SUBMIT (the process was killed while
    its create was out) came back PENDING_SUBMIT and stayed so forever: never resolved, an
    "open" order the exchange does not have (or an exchange order left unmanaged)."""
    from bybitkit.v5.rest import RestClient

    path = tmp_path / "store.sqlite"
    bid, _ = best(sandbox, "bid")
    sent, lost = "bbk-sent-before-the-kill", "bbk-never-left"
    _pending_row(path, sent, bid - 10)
    _pending_row(path, lost, bid - 11)
    async with RestClient(sandbox.environment, creds) as rest:  # the request that did leave
        await rest.place_order(
            category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
            price=str(bid - 10), orderLinkId=sent,
        )  # fmt: skip
    async with connect(sandbox, creds, store=str(path)) as ex, Recorder(ex) as rec:
        a, b = ex.get_order(sent), ex.get_order(lost)
        assert a is not None and b is not None
        await rec.wait(lambda e: isinstance(e, OrderFailed) and e.order is b)
        async with asyncio.timeout(5):
            while a.state is not OrderState.OPEN:
                await asyncio.sleep(0.05)
        assert a.exchange_order_id == sandbox.orders(creds.api_key)[0]["orderId"]
        assert [o.client_order_id for o in ex.open_orders()] == [sent]
    with Store(str(path)) as store:
        assert [r.client_order_id for r in store.open_orders("sandbox")] == [sent]
        row = store.order("sandbox", lost)
        assert row is not None and row.state == "FAILED"


async def test_a_failed_reconcile_after_a_reconnect_is_retried(
    sandbox: Sandbox, creds: Credentials
) -> None:
    """Soak regression: the reconciliation started by a private reconnect died on its first
    error (a 10002 burst), unnoticed, so a fill made while the stream was down was never
    recovered. It is now retried until it completes."""
    async with connect(sandbox, creds, poll_interval_s=1000) as ex, Recorder(ex) as rec:
        await ex.order_book(PAIR)
        bid, _ = best(sandbox, "bid")
        o = await ex.place_order(PAIR, "buy", "limit", "0.01", bid + D("0.1"))
        sandbox.drop_private_ws(creds.api_key, refuse_for=0.5)
        await asyncio.sleep(0.1)
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", bid + D("0.1"))  # missed by the stream
        # the reconnect's reconciliation fails: both reads of executions answer 10002 twice
        sandbox.rest_errors("10002", 4, path="/v5/execution/list")
        fill = await rec.wait(lambda e: isinstance(e, OrderFilled) and e.order is o, timeout=10)
        assert isinstance(fill, OrderFilled)
        assert ex.store.fill_count("sandbox") == 1
