"""An in-memory limit order book with price-time priority, on integer ticks and integer lots.

One :class:`Book` per symbol. It knows nothing of HTTP, accounts, fees or Decimals: the
exchange layer (sandbox, paper trading) converts prices to ticks and sizes to lots, owns the
order records (``Order.owner`` is opaque here) and turns :class:`Fill` objects into executions.

Layout, per side:

* ``keys``: the active price levels as a sorted ``list`` of *keys*, ascending, best level last.
  A bid's key is its price, an ask's key is minus its price, so the best level of either side is
  ``keys[-1]`` and is removed with an O(1) ``pop()``. An incoming order crosses a level iff the
  level's key is ``>= limit_key`` (``-limit`` for a buy against asks, ``limit`` for a sell
  against bids): one comparison, the same code for both sides.
* ``levels``: ``dict`` price -> :class:`_Level`, holding a FIFO ``deque`` of ``(seq, order)``
  entries and the exact total of live lots at that price.

Cancels are O(1) and lazy: the order leaves the id index and its level's total at once (so
:meth:`Book.level_qty`, :meth:`Book.levels` and :meth:`Book.available` are always exact; a level
whose total reaches 0 is dropped at once), and its queue entry is left behind, marked dead by
construction: an entry ``(seq, order)`` is live iff ``order.seq == seq`` and the id index still
maps ``order.id`` to that very object. Matching skips dead entries at the head of a queue, and a
queue that collects more dead than live entries is compacted, so memory stays bounded.

Invariants after every public call: every resting order is in exactly one live entry, at the
level of its ``price`` on its side; each level's total is the sum of its live orders' ``qty``
(all >= 1), and no level is empty; the book is never crossed (best bid < best ask).

Resting orders must not be mutated by the caller (use :meth:`Book.amend` / :meth:`Book.cancel`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "REJECT_FOK",
    "REJECT_POST_ONLY",
    "Book",
    "Fill",
    "MatchResult",
    "Order",
    "Side",
    "TimeInForce",
]


class Side(IntEnum):
    BUY = 1
    SELL = 2


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    POST_ONLY = 4


REJECT_POST_ONLY = "post_only_would_take"
REJECT_FOK = "fok_not_filled"


@dataclass(slots=True, eq=False)
class Order:
    """An order as the book sees it. Compared and hashed by identity.

    ``qty`` is the REMAINING open quantity in lots: the book lowers it as the order fills, both
    as a maker and as a taker (after :meth:`Book.submit` it equals ``MatchResult.remaining``).
    ``seq`` is the time priority, assigned by the book each time the order starts resting.
    """

    id: int
    side: Side
    price: int
    qty: int
    owner: object = None
    seq: int = 0


class Fill(NamedTuple):
    """One trade against a resting order, at the maker's price."""

    maker: Order  # its qty already reduced (0 if it was fully filled and left the book)
    price: int
    qty: int


@dataclass(slots=True)
class MatchResult:
    fills: list[Fill]
    filled: int  # lots filled for the incoming (or amended) order
    remaining: int  # lots not filled
    rested: bool  # the remainder now rests on the book
    rejected: str | None = None  # None, REJECT_POST_ONLY or REJECT_FOK (then nothing changed)
    spent: int = 0  # sum(price * qty) over fills, in tick*lot units


class _Level:
    """One price level: FIFO of ``(seq, order)`` entries (some possibly dead) and live total."""

    __slots__ = ("dead", "q", "qty")

    def __init__(self) -> None:
        self.q: deque[tuple[int, Order]] = deque()
        self.qty = 0
        self.dead = 0


_BUY = Side.BUY
_SELL = Side.SELL
_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_POST_ONLY = TimeInForce.POST_ONLY
_COMPACT_MIN_DEAD = 16


def _fillable(
    keys: list[int],
    lv: dict[int, _Level],
    sgn: int,
    limit_key: int,
    qty: int,
    budget: int | None,
) -> int:
    """Lots a taker would fill (capped at ``qty``) against one side, without touching it.

    Follows exactly the level walk of :meth:`Book._take`.
    """
    total = 0
    i = len(keys) - 1
    while i >= 0:
        key = keys[i]
        if key < limit_key:
            break
        price = key * sgn
        lq = lv[price].qty
        want = qty - total
        if lq < want:
            want = lq
        if budget is not None:
            can = budget // price
            if can < want:
                want = can
            if want <= 0:
                break
            budget -= want * price
        total += want
        if want < lq:
            break
        i -= 1
    return total


class Book:
    """One symbol's limit order book (see the module docstring for the layout)."""

    __slots__ = ("_ask_keys", "_ask_lv", "_bid_keys", "_bid_lv", "_orders", "seq", "symbol")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self.seq = 0  # bumped on every change of the book; also the source of Order.seq
        self._orders: dict[int, Order] = {}
        self._bid_keys: list[int] = []  # bid prices, ascending (best last)
        self._ask_keys: list[int] = []  # minus ask prices, ascending (best last)
        self._bid_lv: dict[int, _Level] = {}
        self._ask_lv: dict[int, _Level] = {}

    # -- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def orders(self) -> Iterator[Order]:
        """Every resting order (a snapshot: cancelling while iterating is fine)."""
        return iter(list(self._orders.values()))

    def best_bid(self) -> int | None:
        keys = self._bid_keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self._ask_keys
        return -keys[-1] if keys else None

    def level_qty(self, side: Side, price: int) -> int:
        lvl = (self._bid_lv if side == _BUY else self._ask_lv).get(price)
        return lvl.qty if lvl is not None else 0

    def levels(self, side: Side, n: int) -> list[tuple[int, int]]:
        """The top ``n`` levels of ``side``, best first, as ``(price, total lots)``."""
        if n <= 0:
            return []
        if side == _BUY:
            bl = self._bid_lv
            return [(k, bl[k].qty) for k in self._bid_keys[-1 : -n - 1 : -1]]
        al = self._ask_lv
        return [(-k, al[-k].qty) for k in self._ask_keys[-1 : -n - 1 : -1]]

    def would_take(self, side: Side, price: int) -> bool:
        """Whether a limit order of ``side`` at ``price`` would trade on arrival."""
        if side == _BUY:
            keys = self._ask_keys
            return bool(keys) and keys[-1] >= -price
        keys = self._bid_keys
        return bool(keys) and keys[-1] >= price

    def available(self, side: Side, limit: int | None, max_qty: int) -> int:
        """Lots the side opposite to ``side`` offers at ``limit`` or better (None: any price),
        capped at ``max_qty``."""
        if side == _BUY:
            keys, lv, sgn = self._ask_keys, self._ask_lv, -1
            limit_key = -limit if limit is not None else (keys[0] if keys else 0)
        else:
            keys, lv, sgn = self._bid_keys, self._bid_lv, 1
            limit_key = limit if limit is not None else (keys[0] if keys else 0)
        if max_qty <= 0:
            return 0
        return _fillable(keys, lv, sgn, limit_key, max_qty, None)

    # -- changes -------------------------------------------------------------------------------

    def submit(
        self,
        order: Order,
        tif: TimeInForce = _GTC,
        *,
        market: bool = False,
        quote_budget: int | None = None,
    ) -> MatchResult:
        """Match ``order`` against the book, then rest its remainder if it is a GTC limit.

        ``market=True``: no limit price (``order.price`` is ignored), never rests; ``tif`` GTC
        and IOC mean the same, FOK is all-or-nothing, POST_ONLY is refused. ``quote_budget``
        (market orders only, tick*lot units): at each level take at most ``budget_left //
        price`` lots and stop at the first level the budget cannot take in full; ``order.qty``
        is then only an upper bound.
        """
        qty = order.qty
        if qty <= 0:
            raise ValueError(f"order {order.id}: qty must be >= 1 lot, got {qty}")
        orders = self._orders
        if order.id in orders:
            raise ValueError(f"order {order.id} is already resting")
        is_buy = order.side == _BUY
        if is_buy:
            keys, lv, sgn = self._ask_keys, self._ask_lv, -1
        elif order.side == _SELL:
            keys, lv, sgn = self._bid_keys, self._bid_lv, 1
        else:
            raise ValueError(f"order {order.id}: unknown side {order.side!r}")
        if market:
            if tif == _POST_ONLY:
                raise ValueError(f"order {order.id}: a market order cannot be post-only")
            if quote_budget is not None and quote_budget < 0:
                raise ValueError(f"order {order.id}: negative quote budget {quote_budget}")
            limit_key = keys[0] if keys else 0  # every level crosses
        else:
            price = order.price
            if price <= 0:
                raise ValueError(f"order {order.id}: price must be >= 1 tick, got {price}")
            if quote_budget is not None:
                raise ValueError(f"order {order.id}: quote_budget needs market=True")
            limit_key = -price if is_buy else price

        crosses = bool(keys) and keys[-1] >= limit_key
        if tif == _POST_ONLY:
            if crosses:
                return MatchResult([], 0, qty, False, REJECT_POST_ONLY, 0)
            self._rest(order)
            return MatchResult([], 0, qty, True, None, 0)
        if tif == _FOK and (
            not crosses or _fillable(keys, lv, sgn, limit_key, qty, quote_budget) < qty
        ):
            return MatchResult([], 0, qty, False, REJECT_FOK, 0)

        if crosses:
            fills, filled, spent = self._take(keys, lv, sgn, limit_key, qty, quote_budget)
            remaining = qty - filled
            order.qty = remaining
        else:
            fills, filled, spent, remaining = [], 0, 0, qty
        if remaining and tif == _GTC and not market:
            self._rest(order)
            return MatchResult(fills, filled, remaining, True, None, spent)
        return MatchResult(fills, filled, remaining, False, None, spent)

    def cancel(self, order_id: int) -> Order | None:
        """Remove a resting order and return it (its ``qty`` is what was still open)."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        self._unlink(order)
        self.seq += 1
        return order

    def amend(
        self, order_id: int, *, price: int | None = None, qty: int | None = None
    ) -> MatchResult:
        """Change a resting order's price and/or remaining quantity.

        A lower quantity at the same price keeps time priority. A new price or a higher quantity
        re-queues the order at the back: it is taken off the book and submitted again as a GTC
        limit, so a new price that crosses trades at once as a taker (see the result).
        """
        order = self._orders.get(order_id)
        if order is None:
            raise KeyError(order_id)
        if price is not None and price <= 0:
            raise ValueError(f"order {order_id}: price must be >= 1 tick, got {price}")
        if qty is not None and qty <= 0:
            raise ValueError(f"order {order_id}: qty must be >= 1 lot, got {qty}")
        new_price = order.price if price is None else price
        new_qty = order.qty if qty is None else qty
        if new_price == order.price and new_qty <= order.qty:
            if new_qty < order.qty:  # in place, keeps its priority
                lvl = (self._bid_lv if order.side == _BUY else self._ask_lv)[order.price]
                lvl.qty -= order.qty - new_qty
                order.qty = new_qty
                self.seq += 1
            return MatchResult([], 0, new_qty, True, None, 0)
        del self._orders[order_id]
        self._unlink(order)
        self.seq += 1
        order.price = new_price
        order.qty = new_qty
        return self.submit(order)

    # -- internals -----------------------------------------------------------------------------

    def _rest(self, order: Order) -> None:
        self.seq = seq = self.seq + 1
        order.seq = seq
        price = order.price
        if order.side == _BUY:
            lv, keys, key = self._bid_lv, self._bid_keys, price
        else:
            lv, keys, key = self._ask_lv, self._ask_keys, -price
        lvl = lv.get(price)
        if lvl is None:
            lv[price] = lvl = _Level()
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        lvl.q.append((seq, order))
        lvl.qty += order.qty
        self._orders[order.id] = order

    def _unlink(self, order: Order) -> None:
        """Take an order (already out of the id index) off its level; its entry becomes dead."""
        price = order.price
        if order.side == _BUY:
            lv, keys, key = self._bid_lv, self._bid_keys, price
        else:
            lv, keys, key = self._ask_lv, self._ask_keys, -price
        lvl = lv[price]
        lvl.qty -= order.qty
        if lvl.qty == 0:  # no live order left: drop the level with its dead entries
            del lv[price]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
            return
        lvl.dead = dead = lvl.dead + 1
        if dead >= _COMPACT_MIN_DEAD and dead * 2 > len(lvl.q):
            orders = self._orders
            lvl.q = deque(e for e in lvl.q if e[1].seq == e[0] and orders.get(e[1].id) is e[1])
            lvl.dead = 0

    def _take(
        self,
        keys: list[int],
        lv: dict[int, _Level],
        sgn: int,
        limit_key: int,
        qty: int,
        budget: int | None,
    ) -> tuple[list[Fill], int, int]:
        """Trade up to ``qty`` lots against one side, best level first, oldest first.

        At each crossing level take ``min(left, level total, budget_left // price)`` lots; go on
        to the next level only if this one was taken in full. Returns (fills, filled, spent).
        """
        orders = self._orders
        fills: list[Fill] = []
        append = fills.append
        left = qty
        spent = 0
        while left and keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * sgn
            lvl = lv[price]
            lq = lvl.qty
            want = left if left < lq else lq
            if budget is not None:
                can = (budget - spent) // price
                if can < want:
                    want = can
                if want <= 0:
                    break
            q = lvl.q
            rest = want
            while rest:
                seq, maker = q[0]
                if maker.seq != seq or orders.get(maker.id) is not maker:
                    q.popleft()
                    lvl.dead -= 1
                    continue
                mq = maker.qty
                if mq <= rest:
                    q.popleft()
                    del orders[maker.id]
                    maker.qty = 0
                    append(Fill(maker, price, mq))
                    rest -= mq
                else:
                    maker.qty = mq - rest
                    append(Fill(maker, price, rest))
                    rest = 0
            left -= want
            spent += want * price
            if want == lq:
                del lv[price]
                keys.pop()
            else:
                lvl.qty = lq - want
                break
        if fills:
            self.seq += 1
        return fills, qty - left, spent
