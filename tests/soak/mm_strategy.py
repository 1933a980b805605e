"""The soak's own market maker (a script strategy, run by ``bybitkit start --strategy``).

Every connector of the config, every pair of it: ``levels`` post-only orders a side, the first
at the touch of the *other* participants' book (our own resting size is taken out of the levels
first) less ``offset_bps``, one tick inside the spread where there is room, the next ones
``level_bps`` further out, so that the sandbox's random takers and its price walk fill them. An
order is re-quoted when it is more than ``requote_bps`` (or ``requote_ticks``) off, or older than
``max_age_s``, a level never faster than ``min_interval_s``. The inventory is kept within
``max_inventory_usd`` by quoting only the side that reduces it.

Each pair is quoted by its own task, so one slow request (a create that times out after 10 s)
stalls that pair only; the tasks are cancelled and awaited in ``on_stop``. Orders only go through
the runner, never around it. With ``test_the_rails`` the strategy prices from an invalid or stale
book as well, so that it is the runner's book rail that must refuse those orders.
"""

# No ``from __future__ import annotations`` here: the runner loads a strategy file as a module
# outside ``sys.modules``, so msgspec could not resolve the string annotations of ``Params``.
import asyncio
import contextlib
import time
from decimal import ROUND_UP, Decimal

import msgspec

from bybitkit.strategies import ScriptStrategy
from bybitkit.trading.types import Order, OrderState, Side

IN_FLIGHT = (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN)


class Params(msgspec.Struct, forbid_unknown_fields=True):
    notional_usd: Decimal = Decimal("15")  # order size, in quote units (at least the minimum)
    offset_bps: Decimal = Decimal("0")  # how far behind the touch to quote
    requote_ticks: int = 3
    requote_bps: Decimal = Decimal("1")  # re-quote when further than this (or the ticks) away
    max_age_s: float = 4.0
    levels: int = 2  # orders per side
    level_bps: Decimal = Decimal("0.6")  # between them
    min_interval_s: float = 0.6  # per side
    max_inventory_usd: Decimal = Decimal("3000")
    # Quote from an invalid or stale book too (the runner's book rail must refuse the orders).
    test_the_rails: bool = False


class SoakMarketMaker(ScriptStrategy):
    Params = Params

    async def on_start(self) -> None:
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.last_quote: dict[tuple[str, str, Side, int], float] = {}
        self.amounts: dict[tuple[str, str], Decimal] = {}
        self.base_start: dict[tuple[str, str], Decimal] = {}

    async def on_tick(self) -> None:
        for name in self.connectors:
            for pair in self.runner.pairs(name):
                key = (name, pair)
                task = self.tasks.get(key)
                if task is not None and not task.done():
                    continue
                self.tasks[key] = asyncio.create_task(
                    self._guarded(name, pair), name=f"soak-mm-{name}-{pair}"
                )

    async def on_stop(self) -> None:
        tasks = list(self.tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()

    async def _guarded(self, name: str, pair: str) -> None:
        try:
            await self._quote(name, pair)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("quote failed connector=%s pair=%s", name, pair)

    # -- quoting --------------------------------------------------------------------------------

    def _amount(self, name: str, pair: str, mid: Decimal) -> Decimal:
        key = (name, pair)
        amount = self.amounts.get(key)
        if amount is None:
            rules = self.rules(name, pair)
            notional = max(self.params.notional_usd, rules.min_notional * Decimal("1.5"))
            amount = (notional / mid / rules.qty_step).to_integral_value(ROUND_UP) * rules.qty_step
            amount = max(amount, rules.min_qty)
            self.amounts[key] = amount
        return amount

    def _inventory_usd(self, name: str, pair: str, mid: Decimal) -> Decimal:
        """Signed inventory (base units valued at mid): the position for a perpetual, the base
        coin's change since start for spot."""
        c = self.connector(name)
        if c.category != "spot":
            pos = self.position(name, pair)
            if pos is None or pos.side is None:
                return Decimal(0)
            sign = 1 if pos.side is Side.BUY else -1
            return pos.size * sign * mid
        base = self.rules(name, pair).base_coin
        held = self.inventory(name, base)
        start = self.base_start.setdefault((name, pair), held)
        return (held - start) * mid

    async def _quote(self, name: str, pair: str) -> None:
        book = self.book(name, pair)
        if book is None:  # invalid or stale: a careful strategy stops here
            if not self.params.test_the_rails:
                return
            # ... this one prices from it anyway, so that the runner's rails must refuse
            book = self.connector(name).books.get(pair)
            if book is None:
                return
        rules = self.rules(name, pair)
        tick = rules.tick_size
        mine = [o for o in self.open_orders(name, pair)]
        if any(o.state in IN_FLIGHT for o in mine):
            return  # an order whose outcome is not known yet: wait for it
        own: dict[tuple[Side, Decimal], Decimal] = {}
        for o in mine:
            if o.price is not None:
                k = (o.side, o.price)
                own[k] = own.get(k, Decimal(0)) + (o.amount - o.filled)
        bid = _best_other(book.bids(8), own, Side.BUY)
        ask = _best_other(book.asks(8), own, Side.SELL)
        if bid is None or ask is None:
            return
        mid = (bid + ask) / 2
        gap = int((ask - bid) / tick)
        off = mid * self.params.offset_bps / 10_000
        # one tick inside the spread where there is room (both sides from 3 ticks, the side
        # that reduces the inventory at 2), so that takers meet our orders first
        inv = self._inventory_usd(name, pair, mid)
        lean = Side.SELL if inv > 0 else Side.BUY
        inside = {s: gap >= 3 or (gap == 2 and s is lean) for s in (Side.BUY, Side.SELL)}
        want = {
            Side.BUY: self.quote_price(
                name, pair, (bid + tick if inside[Side.BUY] else bid) - off, "buy"
            ),
            Side.SELL: self.quote_price(
                name, pair, (ask - tick if inside[Side.SELL] else ask) + off, "sell"
            ),
        }
        band = max(tick * self.params.requote_ticks, mid * self.params.requote_bps / 10_000)
        limit = self.params.max_inventory_usd
        allowed = {Side.BUY: inv < limit, Side.SELL: inv > -limit}
        amount = self._amount(name, pair, mid)
        await asyncio.gather(
            *(
                self._side(name, pair, side, [o for o in mine if o.side is side], want[side],
                           band, amount, allowed[side])
                for side in (Side.BUY, Side.SELL)
            )
        )  # fmt: skip

    async def _side(
        self,
        name: str,
        pair: str,
        side: Side,
        orders: list[Order],
        want: Decimal,
        band: Decimal,
        amount: Decimal,
        allowed: bool,
    ) -> None:
        """Keep ``levels`` orders of ``side``, the first near ``want``, the next ones
        ``level_bps`` further each: cancel what is off, then place what is missing."""
        step = max(band, want * self.params.level_bps / 10_000)
        sign = -1 if side is Side.BUY else 1
        targets = [want + sign * step * i for i in range(self.params.levels)] if allowed else []
        targets = [self.quote_price(name, pair, t, side) for t in targets]
        now_ms = time.time() * 1000
        free = list(orders)
        missing: list[tuple[int, Decimal]] = []
        for level, target in enumerate(targets):
            near = [
                o
                for o in free
                if o.price is not None
                and abs(o.price - target) <= band
                and (now_ms - o.created_ms) / 1000 <= self.params.max_age_s
            ]
            if near:
                free.remove(near[0])
            else:
                missing.append((level, target))
        accepted = [await self.cancel(name, o.client_order_id) for o in free]
        if not all(accepted):
            return  # a cancel that was not accepted: no more orders on this side yet
        now = time.monotonic()
        due = []
        for level, target in missing:
            key = (name, pair, side, level)
            if now - self.last_quote.get(key, 0.0) >= self.params.min_interval_s:
                self.last_quote[key] = now
                due.append(target)
        await asyncio.gather(
            *(self.place(name, pair, side, amount, t, order_type="limit_maker") for t in due)
        )


def _best_other(
    levels: list[tuple[Decimal, Decimal]], own: dict[tuple[Side, Decimal], Decimal], side: Side
) -> Decimal | None:
    """The best price at which someone other than us rests."""
    for price, size in levels:
        if size - own.get((side, price), Decimal(0)) > 0:
            return price
    return None
