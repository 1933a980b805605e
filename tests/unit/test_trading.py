"""The order tracker's event guarantees and the trading rules, without any network."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bybitkit.store import Store
from bybitkit.trading import (
    Event,
    Fill,
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    OrderFailed,
    OrderFilled,
    OrderState,
    OrderTracker,
    OrderType,
    OrderUpdate,
    RuleViolation,
    Side,
    TimeInForce,
    TradingRules,
)

D = Decimal


def order(cid: str = "c1", amount: str = "0.03") -> Order:
    return Order(cid, "BTC-USDT", Side.BUY, OrderType.LIMIT, D(amount), D("100"))


def fill(eid: str, qty: str, cid: str = "c1", oid: str = "o1") -> Fill:
    return Fill(eid, cid, oid, "BTC-USDT", Side.BUY, D("100"), D(qty), D("0.00001"), "BTC", True, 1)


def update(
    state: OrderState, cum: str, oid: str = "o1", cid: str = "c1", reason: str | None = None
) -> OrderUpdate:
    return OrderUpdate(
        oid, cid, "BTC-USDT", Side.BUY, state, D(cum), D("0.03"), D("100"), reason=reason
    )


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_fill_before_ack_still_announces_the_order_first() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order())
    assert t.on_fill(fill("e1", "0.01"))
    t.acked("c1", "o1")
    assert kinds(events) == ["OrderCreated", "OrderFilled"]
    assert t.get("c1").state is OrderState.PARTIALLY_FILLED  # type: ignore[union-attr]


def test_each_exec_id_counts_once_and_completion_waits_for_every_fill() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order("c1", "0.03"))
    t.acked("c1", "o1")
    t.on_update(update(OrderState.FILLED, "0.03"))  # the status outruns the fills
    assert kinds(events) == ["OrderCreated"]
    assert t.on_fill(fill("e1", "0.01"))
    assert not t.on_fill(fill("e1", "0.01"))  # the same execution again (REST after WS)
    t.on_fill(fill("e2", "0.02"))
    assert kinds(events) == ["OrderCreated", "OrderFilled", "OrderFilled", "OrderCompleted"]
    o = t.get("c1")
    assert o is not None and o.filled == D("0.03") and o.state is OrderState.FILLED
    t.on_update(update(OrderState.FILLED, "0.03"))  # late duplicates change nothing
    assert len(events) == 4


def test_partial_cancel_reports_after_its_fills() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order())
    t.acked("c1", "o1")
    t.on_update(update(OrderState.CANCELLED, "0.01", reason="user"))
    assert kinds(events) == ["OrderCreated"]
    t.on_fill(fill("e1", "0.01"))
    assert kinds(events)[-1] == "OrderCancelled"
    assert isinstance(events[-1], OrderCancelled) and events[-1].reason == "user"


def test_unknown_then_not_found_then_a_late_fill_is_still_counted() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order())
    t.unknown("c1", "timeout")
    assert t.get("c1").state is OrderState.UNKNOWN  # type: ignore[union-attr]
    assert [o.client_order_id for o in t.open_orders()] == ["c1"]
    t.failed("c1", "not found")
    assert kinds(events) == ["OrderCreated", "OrderFailed"]
    assert t.on_fill(fill("e1", "0.03"))  # it existed after all: never drop a fill
    assert kinds(events)[-2:] == ["OrderFilled", "OrderCompleted"]


def test_unknown_resolved_by_an_update() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order())
    t.unknown("c1", "timeout")
    t.on_update(update(OrderState.OPEN, "0"))
    assert t.get("c1").state is OrderState.OPEN  # type: ignore[union-attr]
    assert kinds(events) == ["OrderCreated"]


def test_orders_placed_elsewhere_are_adopted() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.on_fill(fill("e9", "0.5", cid="manual", oid="o9"))
    assert kinds(events) == ["OrderCreated", "OrderFilled"]
    assert t.get("manual") is not None


def test_store_dedupes_across_a_restart() -> None:
    with Store(":memory:") as store:
        first: list[Event] = []
        t1 = OrderTracker("x", first.append, store)
        t1.track(order())
        t1.acked("c1", "o1")
        t1.on_fill(fill("e1", "0.01"))
        second: list[Event] = []
        t2 = OrderTracker("x", second.append, store)  # a new process on the same store
        assert not t2.on_fill(fill("e1", "0.01"))
        assert second == []
        rec = store.order("x", "c1")
        assert rec is not None and rec.filled == D("0.01") and rec.state == "PARTIALLY_FILLED"


def test_events_keep_their_order_per_order() -> None:
    events: list[Event] = []
    t = OrderTracker("x", events.append)
    t.track(order("a", "0.01"))
    t.failed("a", "retCode 170131")
    assert isinstance(events[0], OrderCreated) and isinstance(events[1], OrderFailed)
    t.track(order("b", "0.01"))
    t.acked("b", "ob")
    t.on_fill(fill("eb", "0.01", cid="b", oid="ob"))
    assert isinstance(events[-2], OrderFilled) and isinstance(events[-1], OrderCompleted)


SPOT = TradingRules(
    pair="BTC-USDT",
    symbol="BTCUSDT",
    category="spot",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.1"),
    qty_step=D("0.000001"),
    quote_step=D("0.0000001"),
    max_limit_qty=D("83"),
    max_market_qty=D("41.5"),
    max_post_only_qty=D("60000"),
    min_notional=D("5"),
)
LINEAR = TradingRules(
    pair="BTC-USDT",
    symbol="BTCUSDT",
    category="linear",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.1"),
    qty_step=D("0.001"),
    min_qty=D("0.001"),
    max_limit_qty=D("1190"),
    max_market_qty=D("500"),
    max_post_only_qty=D("1190"),
    min_notional=D("5"),
    min_price=D("0.1"),
    max_price=D("1999999.8"),
)


@pytest.mark.parametrize(
    ("rules", "kw", "rule"),
    [
        (SPOT, dict(amount=D("0.0000001"), price=D("30000.05")), "basePrecision"),  # size first
        (SPOT, dict(amount=D("84"), price=D("30000")), "maxLimitOrderQty"),
        (SPOT, dict(amount=D("0.0001"), price=D("30000")), "minOrderAmt"),
        (SPOT, dict(amount=D("0.001"), price=D("30000.05")), "tickSize"),
        (
            SPOT,
            dict(amount=D("0.001"), price=D("31000"), band=(D("30500"), D("29500"))),
            "priceLimit",
        ),
        (SPOT, dict(order_type=OrderType.MARKET, amount=D("42"), price=None), "maxMarketOrderQty"),
        (
            SPOT,
            dict(
                order_type=OrderType.MARKET, amount=D("1.00000001"), price=None, quote_amount=True
            ),
            "quotePrecision",
        ),
        (
            SPOT,
            dict(order_type=OrderType.LIMIT_MAKER, amount=D("60001"), price=D("1")),
            "postOnlyMaxLimitOrderSize",
        ),
        (LINEAR, dict(amount=D("0.0005"), price=D("30000")), "qtyStep"),
        (LINEAR, dict(amount=D("0.001"), price=D("3000")), "minNotionalValue"),
        (
            LINEAR,
            dict(
                order_type=OrderType.MARKET, amount=D("501"), price=None, reference_price=D("30000")
            ),
            "maxMktOrderQty",
        ),
    ],
)
def test_rules_name_what_they_refuse(rules: TradingRules, kw: dict, rule: str) -> None:  # type: ignore[type-arg]
    kw = dict(kw)
    order_type = kw.pop("order_type", OrderType.LIMIT)
    amount = kw.pop("amount")
    price = kw.pop("price")
    with pytest.raises(RuleViolation) as info:
        rules.validate(Side.BUY, order_type, amount, price, **kw)
    assert info.value.rule == rule and rule in str(info.value)


def test_rules_accept_good_orders_and_linear_ignores_the_band() -> None:
    SPOT.validate(
        Side.SELL, OrderType.LIMIT, D("0.001"), D("30000.1"), band=(D("31000"), D("29000"))
    )
    SPOT.validate(Side.BUY, OrderType.MARKET, D("10"), None, quote_amount=True)
    LINEAR.validate(
        Side.BUY, OrderType.LIMIT, D("0.001"), D("99999"), band=(D("31000"), D("29000"))
    )
    assert Side.parse("buy") is Side.BUY and OrderType.parse("limit_maker") is OrderType.LIMIT_MAKER
    assert TimeInForce.parse("ioc") is TimeInForce.IOC


def test_cancel_reasons_name_who_cancelled() -> None:
    from bybitkit.connectors.base import cancel_reason

    # DCP cancels arrive with EC_PerCancelRequest too: the cancelType says who it was
    assert cancel_reason("EC_PerCancelRequest", "CancelByDCP", "Limit") == "dcp"
    assert cancel_reason("EC_PerCancelRequest", "CancelByUser", "Limit") == "user"
    assert cancel_reason("EC_NoError", "CancelAllBeforeLiq", "Limit") == "liquidation"
    assert cancel_reason("EC_NoError", "CancelByReduceOnly", "Limit") == "reduce_only"
    assert cancel_reason("EC_PostOnlyWillTakeLiquidity", "UNKNOWN", "Limit") == (
        "post_only_would_take"
    )
    assert cancel_reason("EC_NoImmediateQtyToFill", "UNKNOWN", "Market") == "no_liquidity"
    assert cancel_reason("EC_Others", "UNKNOWN", "Limit") == "exchange"
