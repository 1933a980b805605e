"""The matching engine: rules one by one, then random flows against a naive reference book."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bybitkit.matching import (
    REJECT_FOK,
    REJECT_POST_ONLY,
    Book,
    MatchResult,
    Order,
    Side,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK, POST_ONLY = (
    TimeInForce.GTC,
    TimeInForce.IOC,
    TimeInForce.FOK,
    TimeInForce.POST_ONLY,
)


def fills_of(result: MatchResult) -> list[tuple[int, int, int]]:
    return [(f.maker.id, f.price, f.qty) for f in result.fills]


def put(book: Book, oid: int, side: Side, price: int, qty: int) -> Order:
    order = Order(oid, side, price, qty)
    result = book.submit(order)
    assert result.rested and not result.fills
    return order


def queue(book: Book, side: Side) -> list[int]:
    """Resting ids of one side in priority order (best price, then oldest)."""
    sign = -1 if side == BUY else 1
    mine = [o for o in book.orders() if o.side == side]
    return [o.id for o in sorted(mine, key=lambda o: (sign * o.price, o.seq))]


# -- price-time priority, maker price, partial fills ---------------------------------------------


def test_best_price_first_then_oldest_first() -> None:
    book = Book("BTCUSDT")
    put(book, 1, SELL, 101, 2)
    put(book, 2, SELL, 100, 2)
    put(book, 3, SELL, 100, 2)
    put(book, 4, SELL, 102, 2)
    result = book.submit(Order(10, BUY, 101, 5))
    assert fills_of(result) == [(2, 100, 2), (3, 100, 2), (1, 101, 1)]
    assert (result.filled, result.remaining, result.rested, result.rejected) == (5, 0, False, None)
    assert result.spent == 100 * 2 + 100 * 2 + 101 * 1
    assert book.levels(SELL, 5) == [(101, 1), (102, 2)]
    assert book.get(2) is None and book.get(3) is None
    assert book.get(1) is not None and book.get(1).qty == 1  # type: ignore[union-attr]


def test_symmetric_for_sell_takers() -> None:
    book = Book()
    put(book, 1, BUY, 99, 1)
    put(book, 2, BUY, 100, 1)
    put(book, 3, BUY, 100, 1)
    put(book, 4, BUY, 98, 1)
    result = book.submit(Order(10, SELL, 99, 10))
    assert fills_of(result) == [(2, 100, 1), (3, 100, 1), (1, 99, 1)]
    assert result.rested and result.remaining == 7
    assert book.best_ask() == 99 and book.best_bid() == 98
    assert book.levels(SELL, 3) == [(99, 7)]


def test_trades_happen_at_the_maker_price() -> None:
    book = Book()
    put(book, 1, SELL, 100, 3)
    result = book.submit(Order(2, BUY, 110, 3))
    assert fills_of(result) == [(1, 100, 3)]
    assert result.spent == 300
    put(book, 3, BUY, 90, 3)
    result = book.submit(Order(4, SELL, 50, 1))
    assert fills_of(result) == [(3, 90, 1)]


def test_partial_fill_keeps_the_maker_at_the_head_with_less_qty() -> None:
    book = Book()
    maker = put(book, 1, SELL, 100, 10)
    put(book, 2, SELL, 100, 10)
    seq = maker.seq
    result = book.submit(Order(3, BUY, 100, 4), IOC)
    assert fills_of(result) == [(1, 100, 4)]
    assert result.fills[0].maker is maker and maker.qty == 6 and maker.seq == seq
    assert book.level_qty(SELL, 100) == 16
    result = book.submit(Order(4, BUY, 100, 7), IOC)
    assert fills_of(result) == [(1, 100, 6), (2, 100, 1)]
    assert maker.qty == 0 and book.get(1) is None


def test_the_incoming_order_qty_is_its_remaining_qty() -> None:
    book = Book()
    put(book, 1, SELL, 100, 3)
    taker = Order(2, BUY, 100, 5, owner="record")
    result = book.submit(taker)
    assert taker.qty == result.remaining == 2
    assert book.get(2) is taker and taker.owner == "record"
    assert book.best_bid() == 100 and book.best_ask() is None


def test_gtc_rests_its_remainder_with_a_monotonic_seq() -> None:
    book = Book()
    a = put(book, 1, BUY, 100, 1)
    b = put(book, 2, BUY, 99, 1)
    c = put(book, 3, SELL, 105, 1)
    assert 0 < a.seq < b.seq < c.seq
    assert len(book) == 3
    assert sorted(o.id for o in book.orders()) == [1, 2, 3]


# -- time in force -------------------------------------------------------------------------------


def test_ioc_never_rests() -> None:
    book = Book()
    put(book, 1, SELL, 100, 2)
    result = book.submit(Order(2, BUY, 101, 5), IOC)
    assert (result.filled, result.remaining, result.rested) == (2, 3, False)
    assert len(book) == 0
    result = book.submit(Order(3, BUY, 101, 5), IOC)  # nothing to take
    assert (result.filled, result.remaining, result.rested, result.fills) == (0, 5, False, [])
    assert len(book) == 0


def test_fok_rejects_without_touching_the_book() -> None:
    book = Book()
    put(book, 1, SELL, 100, 2)
    put(book, 2, SELL, 101, 2)
    put(book, 3, SELL, 102, 5)
    seq = book.seq
    taker = Order(9, BUY, 101, 5)
    result = book.submit(taker, FOK)  # only 4 lots at <= 101
    assert result == MatchResult([], 0, 5, False, REJECT_FOK, 0)
    assert taker.qty == 5 and book.seq == seq
    assert book.levels(SELL, 5) == [(100, 2), (101, 2), (102, 5)]
    result = book.submit(Order(10, BUY, 102, 5), FOK)
    assert fills_of(result) == [(1, 100, 2), (2, 101, 2), (3, 102, 1)]
    assert (result.filled, result.remaining, result.rested) == (5, 0, False)
    assert book.submit(Order(11, SELL, 1, 1), FOK).rejected == REJECT_FOK  # empty side


def test_fok_exactly_fillable() -> None:
    book = Book()
    put(book, 1, BUY, 100, 3)
    result = book.submit(Order(2, SELL, 100, 3), FOK)
    assert result.filled == 3 and result.rejected is None and len(book) == 0


def test_post_only_rejects_when_it_would_take() -> None:
    book = Book()
    put(book, 1, SELL, 100, 2)
    seq = book.seq
    result = book.submit(Order(2, BUY, 100, 1), POST_ONLY)
    assert result == MatchResult([], 0, 1, False, REJECT_POST_ONLY, 0)
    assert book.seq == seq and book.get(2) is None
    result = book.submit(Order(3, BUY, 99, 1), POST_ONLY)
    assert result == MatchResult([], 0, 1, True, None, 0)
    assert book.best_bid() == 99
    assert book.submit(Order(4, SELL, 99, 1), POST_ONLY).rejected == REJECT_POST_ONLY
    assert book.submit(Order(5, SELL, 100, 1), POST_ONLY).rested


# -- market orders and quote budgets -------------------------------------------------------------


def test_market_sweeps_any_price_and_never_rests() -> None:
    book = Book()
    put(book, 1, SELL, 100, 1)
    put(book, 2, SELL, 500, 1)
    result = book.submit(Order(3, BUY, 0, 5), market=True)
    assert fills_of(result) == [(1, 100, 1), (2, 500, 1)]
    assert (result.filled, result.remaining, result.rested, result.spent) == (2, 3, False, 600)
    assert len(book) == 0
    result = book.submit(Order(4, SELL, 0, 5), market=True)  # empty book
    assert (result.filled, result.remaining, result.rested, result.fills) == (0, 5, False, [])
    put(book, 5, BUY, 7, 2)
    result = book.submit(Order(6, SELL, 0, 1), IOC, market=True)
    assert fills_of(result) == [(5, 7, 1)]


def test_market_fok_is_all_or_nothing() -> None:
    book = Book()
    put(book, 1, SELL, 100, 2)
    assert book.submit(Order(2, BUY, 0, 3), FOK, market=True).rejected == REJECT_FOK
    result = book.submit(Order(3, BUY, 0, 2), FOK, market=True)
    assert result.filled == 2 and result.rejected is None


def test_quote_budget_exact_computation() -> None:
    book = Book()
    put(book, 1, SELL, 100, 3)
    put(book, 2, SELL, 101, 5)
    put(book, 3, SELL, 103, 10)
    put(book, 4, SELL, 104, 10)
    huge = 10**12
    taker = Order(9, BUY, 0, huge)
    result = book.submit(taker, market=True, quote_budget=1000)
    # 100: min(3, 1000 // 100) = 3 -> 300 spent, 700 left
    # 101: min(5, 700 // 101) = 5 -> 505 spent, 195 left
    # 103: min(10, 195 // 103) = 1 -> 103 spent, 92 left: the level is not taken in full, stop
    assert fills_of(result) == [(1, 100, 3), (2, 101, 5), (3, 103, 1)]
    assert result.filled == 9 and result.spent == 908 and result.remaining == huge - 9
    assert not result.rested and taker.qty == huge - 9
    assert book.levels(SELL, 5) == [(103, 9), (104, 10)]


def test_quote_budget_stops_when_one_more_lot_is_too_dear() -> None:
    book = Book()
    put(book, 1, SELL, 100, 1)
    put(book, 2, SELL, 200, 5)
    result = book.submit(Order(3, BUY, 0, 1000), market=True, quote_budget=250)
    assert fills_of(result) == [(1, 100, 1)] and result.spent == 100
    result = book.submit(Order(4, BUY, 0, 1000), market=True, quote_budget=199)
    assert result.fills == [] and result.filled == 0 and result.spent == 0
    result = book.submit(Order(5, BUY, 0, 1000), market=True, quote_budget=1000)
    assert fills_of(result) == [(2, 200, 5)] and result.spent == 1000 and len(book) == 0


def test_quote_budget_and_qty_both_cap() -> None:
    book = Book()
    put(book, 1, SELL, 10, 100)
    result = book.submit(Order(2, BUY, 0, 4), market=True, quote_budget=1000)
    assert result.filled == 4 and result.spent == 40 and book.level_qty(SELL, 10) == 96
    result = book.submit(Order(3, BUY, 0, 0 + 50), market=True, quote_budget=0)
    assert result.filled == 0 and result.remaining == 50


def test_quote_budget_on_a_sell_stops_at_the_first_level_it_cannot_take_in_full() -> None:
    """Only a market buy needs a budget, but a sell follows the same walk (no skipping a better
    level to spend the rest lower), and FOK agrees with it."""
    book = Book()
    put(book, 1, BUY, 10, 5)
    put(book, 2, BUY, 3, 5)
    assert book.submit(Order(3, SELL, 0, 3), FOK, market=True, quote_budget=25).rejected == (
        REJECT_FOK
    )
    result = book.submit(Order(4, SELL, 0, 3), market=True, quote_budget=25)
    assert fills_of(result) == [(1, 10, 2)] and result.spent == 20 and result.remaining == 1
    result = book.submit(Order(5, SELL, 0, 4), FOK, market=True, quote_budget=40)
    assert fills_of(result) == [(1, 10, 3), (2, 3, 1)] and result.spent == 33


# -- amend ---------------------------------------------------------------------------------------


def test_amend_qty_down_keeps_priority_in_place() -> None:
    book = Book()
    a = put(book, 1, SELL, 100, 5)
    put(book, 2, SELL, 100, 5)
    seq = a.seq
    result = book.amend(1, qty=2)
    assert result == MatchResult([], 0, 2, True, None, 0)
    assert a.seq == seq and a.qty == 2 and book.level_qty(SELL, 100) == 7
    assert queue(book, SELL) == [1, 2]
    result = book.amend(1, price=100, qty=1)  # same price given explicitly: still in place
    assert a.seq == seq and book.level_qty(SELL, 100) == 6
    assert fills_of(book.submit(Order(3, BUY, 100, 2), IOC)) == [(1, 100, 1), (2, 100, 1)]


def test_amend_qty_up_loses_priority() -> None:
    book = Book()
    a = put(book, 1, SELL, 100, 5)
    put(book, 2, SELL, 100, 5)
    book.amend(1, qty=6)
    assert a.qty == 6 and book.level_qty(SELL, 100) == 11
    assert queue(book, SELL) == [2, 1]
    assert fills_of(book.submit(Order(3, BUY, 100, 6), IOC)) == [(2, 100, 5), (1, 100, 1)]


def test_amend_price_loses_priority_even_back_to_the_same_level() -> None:
    book = Book()
    a = put(book, 1, BUY, 100, 1)
    put(book, 2, BUY, 100, 1)
    put(book, 3, BUY, 99, 1)
    book.amend(1, price=99)
    assert a.price == 99 and queue(book, BUY) == [2, 3, 1]
    assert book.levels(BUY, 5) == [(100, 1), (99, 2)]
    book.amend(1, price=100)
    assert queue(book, BUY) == [2, 1, 3]
    assert book.levels(BUY, 5) == [(100, 2), (99, 1)]


def test_amend_to_a_crossing_price_trades_as_a_taker() -> None:
    book = Book()
    put(book, 1, SELL, 101, 2)
    put(book, 2, SELL, 102, 2)
    bid = put(book, 3, BUY, 99, 5)
    result = book.amend(3, price=101)
    assert fills_of(result) == [(1, 101, 2)]
    assert (result.filled, result.remaining, result.rested, result.spent) == (2, 3, True, 202)
    assert bid.qty == 3 and book.best_bid() == 101 and book.best_ask() == 102
    result = book.amend(3, price=105, qty=2)  # fills completely: leaves the book
    assert fills_of(result) == [(2, 102, 2)]
    assert (result.filled, result.remaining, result.rested) == (2, 0, False)
    assert book.get(3) is None and len(book) == 0


def test_amend_errors_and_no_op() -> None:
    book = Book()
    a = put(book, 1, BUY, 100, 2)
    with pytest.raises(KeyError):
        book.amend(42, qty=1)
    with pytest.raises(ValueError):
        book.amend(1, qty=0)
    with pytest.raises(ValueError):
        book.amend(1, price=0)
    seq, book_seq = a.seq, book.seq
    assert book.amend(1) == MatchResult([], 0, 2, True, None, 0)
    assert book.amend(1, price=100, qty=2).rested
    assert a.seq == seq and book.seq == book_seq


# -- cancel --------------------------------------------------------------------------------------


def test_cancel() -> None:
    book = Book()
    a = put(book, 1, BUY, 100, 2)
    put(book, 2, BUY, 100, 3)
    put(book, 3, BUY, 98, 1)
    assert book.cancel(1) is a and a.qty == 2
    assert book.cancel(1) is None and book.cancel(77) is None
    assert book.level_qty(BUY, 100) == 3 and len(book) == 2
    book.cancel(2)
    assert book.best_bid() == 98 and book.levels(BUY, 5) == [(98, 1)]
    assert book.level_qty(BUY, 100) == 0


def test_a_cancelled_order_resubmitted_queues_at_the_back() -> None:
    book = Book()
    a = put(book, 1, SELL, 100, 1)
    put(book, 2, SELL, 100, 1)
    book.cancel(1)
    book.submit(a)  # the same object: its old queue entry must stay dead
    assert queue(book, SELL) == [2, 1]
    other = Order(2, SELL, 100, 9)
    book.cancel(2)
    book.submit(other)  # a different object under a reused id
    result = book.submit(Order(3, BUY, 100, 20), IOC)
    assert fills_of(result) == [(1, 100, 1), (2, 100, 9)]
    assert result.fills[1].maker is other


def test_many_cancels_behind_a_live_order_are_compacted_and_stay_exact() -> None:
    book = Book()
    put(book, 0, SELL, 100, 1)
    for i in range(1, 200):
        put(book, i, SELL, 100, 1)
    for i in range(1, 200):
        if i % 10:
            book.cancel(i)
    assert book.level_qty(SELL, 100) == 1 + 19
    assert len(book) == 20
    result = book.submit(Order(1000, BUY, 100, 100), IOC)
    assert [f.maker.id for f in result.fills] == [0, *range(10, 200, 10)]
    assert result.filled == 20 and len(book) == 0 and book.best_ask() is None


def test_orders_is_a_snapshot() -> None:
    book = Book()
    for i in range(5):
        put(book, i, BUY, 100 - i, 1)
    for order in book.orders():
        book.cancel(order.id)
    assert len(book) == 0 and list(book.orders()) == []


# -- queries -------------------------------------------------------------------------------------


def test_levels_available_would_take() -> None:
    book = Book()
    assert book.best_bid() is None and book.best_ask() is None
    assert book.levels(BUY, 5) == [] and book.available(BUY, None, 10) == 0
    for i, (price, qty) in enumerate([(100, 1), (100, 2), (99, 3), (97, 4)]):
        put(book, i, BUY, price, qty)
    for i, (price, qty) in enumerate([(102, 5), (103, 1), (103, 1)], start=10):
        put(book, i, SELL, price, qty)
    assert book.levels(BUY, 2) == [(100, 3), (99, 3)]
    assert book.levels(BUY, 10) == [(100, 3), (99, 3), (97, 4)]
    assert book.levels(SELL, 10) == [(102, 5), (103, 2)]
    assert book.levels(SELL, 0) == []
    assert book.level_qty(BUY, 99) == 3 and book.level_qty(SELL, 99) == 0
    assert book.available(SELL, 99, 100) == 6
    assert book.available(SELL, 99, 4) == 4
    assert book.available(SELL, None, 100) == 10
    assert book.available(SELL, 101, 100) == 0
    assert book.available(BUY, 102, 100) == 5
    assert book.available(BUY, None, 100) == 7
    assert book.available(BUY, 103, 0) == 0
    assert book.would_take(BUY, 102) and not book.would_take(BUY, 101)
    assert book.would_take(SELL, 100) and not book.would_take(SELL, 101)


def test_seq_is_bumped_on_every_change_only() -> None:
    book = Book()
    seen = [book.seq]

    def changed() -> bool:
        seen.append(book.seq)
        return seen[-1] > seen[-2]

    put(book, 1, SELL, 100, 3)
    assert changed()
    book.submit(Order(2, BUY, 99, 1), IOC)
    assert not changed()
    book.submit(Order(3, BUY, 100, 1), IOC)
    assert changed()
    book.cancel(99)
    assert not changed()
    book.amend(1, qty=1)
    assert changed()
    book.cancel(1)
    assert changed()


# -- errors --------------------------------------------------------------------------------------


def test_errors() -> None:
    book = Book()
    put(book, 1, BUY, 100, 1)
    with pytest.raises(ValueError, match="already resting"):
        book.submit(Order(1, SELL, 200, 1))
    with pytest.raises(ValueError):
        book.submit(Order(2, BUY, 100, 0))
    with pytest.raises(ValueError):
        book.submit(Order(2, BUY, 100, -3), market=True)
    with pytest.raises(ValueError):
        book.submit(Order(2, BUY, 0, 1))
    with pytest.raises(ValueError):
        book.submit(Order(2, SELL, -1, 1), IOC)
    with pytest.raises(ValueError):
        book.submit(Order(2, SELL, 0, 1), POST_ONLY, market=True)
    with pytest.raises(ValueError):
        book.submit(Order(2, SELL, 100, 1), quote_budget=100)
    with pytest.raises(ValueError):
        book.submit(Order(2, BUY, 0, 1), market=True, quote_budget=-1)
    with pytest.raises(ValueError, match="side"):
        book.submit(Order(2, 3, 100, 1))  # type: ignore[arg-type]
    assert len(book) == 1 and book.levels(BUY, 5) == [(100, 1)]
    assert book.submit(Order(3, SELL, 0, 1), market=True).filled == 1  # price 0 is fine


# -- random flows against a naive reference ------------------------------------------------------


@dataclass
class RefOrder:
    id: int
    side: Side
    price: int
    qty: int
    seq: int


Outcome = tuple[list[tuple[int, int, int]], int, int, bool, str | None, int]


class RefBook:
    """A deliberately naive book: one list of resting orders, filtered and sorted every time."""

    def __init__(self) -> None:
        self.resting: list[RefOrder] = []
        self.clock = 0

    def find(self, oid: int) -> RefOrder | None:
        return next((o for o in self.resting if o.id == oid), None)

    def makers(self, side: Side, price: int, market: bool) -> list[RefOrder]:
        if side == BUY:
            found = [o for o in self.resting if o.side == SELL and (market or o.price <= price)]
            return sorted(found, key=lambda o: (o.price, o.seq))
        found = [o for o in self.resting if o.side == BUY and (market or o.price >= price)]
        return sorted(found, key=lambda o: (-o.price, o.seq))

    def match(
        self, side: Side, price: int, qty: int, market: bool, budget: int | None
    ) -> tuple[list[tuple[int, int, int]], int, int]:
        fills: list[tuple[int, int, int]] = []
        left, spent = qty, 0
        for level_price, group in groupby(self.makers(side, price, market), lambda o: o.price):
            level = list(group)
            total = sum(o.qty for o in level)
            take = min(left, total)
            if budget is not None:
                take = min(take, (budget - spent) // level_price)
            if take <= 0:
                break
            todo = take
            for o in level:
                x = min(o.qty, todo)
                if x:
                    o.qty -= x
                    todo -= x
                    fills.append((o.id, level_price, x))
            left -= take
            spent += take * level_price
            if take < total:
                break
        self.resting = [o for o in self.resting if o.qty > 0]
        return fills, qty - left, spent

    def rest(self, oid: int, side: Side, price: int, qty: int) -> None:
        self.clock += 1
        self.resting.append(RefOrder(oid, side, price, qty, self.clock))

    def submit(
        self,
        oid: int,
        side: Side,
        price: int,
        qty: int,
        tif: TimeInForce,
        market: bool,
        budget: int | None,
    ) -> Outcome:
        if qty <= 0 or self.find(oid) is not None:
            raise ValueError
        if market and (tif == POST_ONLY or (budget is not None and budget < 0)):
            raise ValueError
        if not market and (price <= 0 or budget is not None):
            raise ValueError
        if tif == POST_ONLY:
            if self.makers(side, price, market):
                return [], 0, qty, False, REJECT_POST_ONLY, 0
            self.rest(oid, side, price, qty)
            return [], 0, qty, True, None, 0
        saved = copy.deepcopy(self.resting)
        fills, filled, spent = self.match(side, price, qty, market, budget)
        if tif == FOK and filled < qty:
            self.resting = saved
            return [], 0, qty, False, REJECT_FOK, 0
        rested = filled < qty and tif == GTC and not market
        if rested:
            self.rest(oid, side, price, qty - filled)
        return fills, filled, qty - filled, rested, None, spent

    def cancel(self, oid: int) -> RefOrder | None:
        o = self.find(oid)
        if o is not None:
            self.resting.remove(o)
        return o

    def amend(self, oid: int, price: int | None, qty: int | None) -> Outcome:
        o = self.find(oid)
        if o is None:
            raise KeyError(oid)
        if (price is not None and price <= 0) or (qty is not None and qty <= 0):
            raise ValueError
        new_price = o.price if price is None else price
        new_qty = o.qty if qty is None else qty
        if new_price == o.price and new_qty <= o.qty:
            o.qty = new_qty
            return [], 0, new_qty, True, None, 0
        self.resting.remove(o)
        return self.submit(oid, o.side, new_price, new_qty, GTC, False, None)

    def levels(self, side: Side) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for o in self.resting:
            if o.side == side:
                totals[o.price] = totals.get(o.price, 0) + o.qty
        return sorted(totals.items(), reverse=side == BUY)

    def priority(self, side: Side) -> list[tuple[int, int, int]]:
        sign = -1 if side == BUY else 1
        mine = sorted(
            (o for o in self.resting if o.side == side), key=lambda o: (sign * o.price, o.seq)
        )
        return [(o.id, o.price, o.qty) for o in mine]


def outcome(result: MatchResult) -> Outcome:
    return (
        fills_of(result),
        result.filled,
        result.remaining,
        result.rested,
        result.rejected,
        result.spent,
    )


def engine_priority(book: Book, side: Side) -> list[tuple[int, int, int]]:
    sign = -1 if side == BUY else 1
    mine = sorted(
        (o for o in book.orders() if o.side == side), key=lambda o: (sign * o.price, o.seq)
    )
    return [(o.id, o.price, o.qty) for o in mine]


def run_both(book: Book, ref: RefBook, op: tuple[Any, ...]) -> None:
    """Apply one operation to both books and check everything that can be checked."""
    before = {o.id: (o, o.qty) for o in book.orders()}
    book_seq = book.seq
    kind = op[0]
    taker_id: int | None = None
    submitted: Order | None = None
    got: Outcome | type[Exception] | Order | None
    want: Outcome | type[Exception] | RefOrder | None
    if kind == "submit":
        _, oid, side, price, qty, tif, market, budget = op
        taker_id = oid
        submitted = Order(oid, side, price, qty)
        try:
            got = outcome(book.submit(submitted, tif, market=market, quote_budget=budget))
        except ValueError:
            got = ValueError
        try:
            want = ref.submit(oid, side, price, qty, tif, market, budget)
        except ValueError:
            want = ValueError
        assert got == want, op
    elif kind == "amend":
        _, oid, price, qty = op
        taker_id = oid
        try:
            got = outcome(book.amend(oid, price=price, qty=qty))
        except (KeyError, ValueError) as exc:
            got = type(exc)
        try:
            want = ref.amend(oid, price, qty)
        except (KeyError, ValueError) as exc:
            want = type(exc)
        assert got == want, op
    else:
        _, oid = op
        taker_id = oid
        cancelled = book.cancel(oid)
        ref_cancelled = ref.cancel(oid)
        assert (cancelled is None) == (ref_cancelled is None), op
        if cancelled is not None and ref_cancelled is not None:
            assert cancelled is before[oid][0] and cancelled.qty == ref_cancelled.qty
        got = want = None

    # Same book: resting orders in the same priority, same levels, never crossed.
    for side in (BUY, SELL):
        assert engine_priority(book, side) == ref.priority(side), op
        assert book.levels(side, 1000) == ref.levels(side), op
        for price, qty in ref.levels(side):
            assert book.level_qty(side, price) == qty
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is None or ask is None or bid < ask, op
    assert len(book) == len(ref.resting)

    # Conservation: every lot that left a maker is in exactly one fill of this operation.
    fills = [] if not isinstance(got, tuple) else got[0]
    per_maker: dict[int, int] = {}
    for maker_id, _, qty in fills:
        assert maker_id in before and maker_id != taker_id
        per_maker[maker_id] = per_maker.get(maker_id, 0) + qty
    for oid, (order, qty) in before.items():
        if oid == taker_id:
            continue
        now = book.get(oid)
        if now is None:
            assert order.qty == 0, f"order {oid} left the book unfilled: {op}"
        else:
            assert now is order
        assert qty - order.qty == per_maker.get(oid, 0), op
    if isinstance(got, tuple):
        fill_list, filled, remaining, rested, rejected, spent = got
        assert filled == sum(q for _, _, q in fill_list)
        assert spent == sum(p * q for _, p, q in fill_list)
        if rejected is not None:
            assert fill_list == [] and book.seq == book_seq
        elif kind == "submit":
            assert filled + remaining == op[4]
            assert submitted is not None and submitted.qty == remaining
            if op[6] and op[7] is not None:
                assert spent <= op[7]
        if fill_list or (rested and kind == "submit"):
            assert book.seq > book_seq
    if kind == "submit" and got is ValueError:
        assert book.seq == book_seq


ids = st.integers(0, 15)
prices = st.integers(1, 10)
submits = st.tuples(
    st.just("submit"),
    ids,
    st.sampled_from([BUY, SELL]),
    prices,
    st.integers(1, 8) | st.just(0),
    st.sampled_from([GTC, GTC, GTC, IOC, FOK, POST_ONLY]),
    st.just(False),
    st.none(),
)
market_submits = st.tuples(
    st.just("submit"),
    ids,
    st.sampled_from([BUY, SELL]),
    st.just(0),
    st.integers(1, 12) | st.just(10**9),
    st.sampled_from([GTC, IOC, FOK]),
    st.just(True),
    st.none() | st.integers(0, 120),
)
amends = st.tuples(
    st.just("amend"),
    ids,
    st.none() | prices | st.just(0),
    st.none() | st.integers(1, 10) | st.just(0),
)
cancels = st.tuples(st.just("cancel"), ids)
operations = st.lists(
    st.one_of(submits, submits, submits, market_submits, amends, cancels), max_size=60
)


@settings(max_examples=1500, deadline=None)
@given(operations)
def test_random_flows_match_the_reference(ops: list[tuple[Any, ...]]) -> None:
    book, ref = Book(), RefBook()
    for op in ops:
        run_both(book, ref, op)


@pytest.mark.parametrize("seed", range(3))
def test_long_seeded_flow_matches_the_reference(seed: int) -> None:
    """Longer flows with many ids on few levels: deep queues, many dead entries, compaction."""
    rng = random.Random(seed)
    book, ref = Book(), RefBook()
    next_id = 0
    live: list[int] = []
    for _ in range(1500):
        r = rng.random()
        side = rng.choice([BUY, SELL])
        if r < 0.55:
            next_id += 1
            live.append(next_id)
            price = rng.randint(48, 52) + (-2 if side == BUY else 2)
            tif = rng.choice([GTC, GTC, GTC, GTC, POST_ONLY, IOC, FOK])
            op: tuple[Any, ...] = (
                "submit",
                next_id,
                side,
                price,
                rng.randint(1, 5),
                tif,
                False,
                None,
            )
        elif r < 0.62:
            next_id += 1
            budget = rng.choice([None, rng.randint(0, 600)])
            op = ("submit", next_id, side, 0, rng.randint(1, 15), IOC, True, budget)
        elif r < 0.9 and live:
            op = ("cancel", live.pop(rng.randrange(len(live))))
        elif live:
            oid = rng.choice(live)
            op = ("amend", oid, rng.choice([None, rng.randint(46, 54)]), rng.randint(1, 6))
        else:
            continue
        run_both(book, ref, op)
