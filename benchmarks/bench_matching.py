"""Matching engine throughput on a realistic mixed flow.

A seeded flow for one symbol: a book seeded with ~200 price levels per side around a mid, then a
random walk of the fair price and, around it, ~60% limit orders near the touch (some marketable,
some post-only), ~20% takers (market orders, some with a quote budget, and IOC limits) and ~20%
cancels of live orders. The whole flow (Order objects created by the caller included) is replayed
through our ``Book`` and, as a baseline in the same process, through a naive book (one sorted
list of orders per side, linear cancel); both must end in the same state with the same fills.

Target: >= 100k operations/s through ``Book``.

Writes ``benchmarks/results/matching.json``.
"""

from __future__ import annotations

import random
from bisect import insort
from collections.abc import Callable
from typing import Any

from benchmarks._common import compare, write_results
from bybitkit.matching import Book, MatchResult, Order, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY

LIMIT, MARKET, CANCEL = 0, 1, 2
# (kind, id, side, price, qty, tif, quote_budget)
Op = tuple[int, int, Side, int, int, TimeInForce, "int | None"]

ENGINE_TARGET_OPS_PER_S = 100_000


def make_flow(
    n_ops: int = 100_000, seed: int = 20240601, levels: int = 200
) -> tuple[list[Op], dict[str, float]]:
    """The seeded flow, and figures of it. A scratch ``Book`` is run alongside so that cancels
    pick live orders."""
    rng = random.Random(seed)
    mid = 100_000
    fair = float(mid)
    book = Book()
    ops: list[Op] = []
    live: list[int] = []
    next_id = 0
    fills = 0
    depth_samples: list[int] = []

    def emit(op: Op) -> None:
        nonlocal fills
        ops.append(op)
        if op[0] == CANCEL:
            book.cancel(op[1])
            return
        order = Order(op[1], op[2], op[3], op[4])
        if op[0] == MARKET:
            result = book.submit(order, IOC, market=True, quote_budget=op[6])
        else:
            result = book.submit(order, op[5])
        fills += len(result.fills)
        if book.get(op[1]) is order:
            live.append(op[1])

    for depth in range(1, levels + 1):
        for side, price in ((BUY, mid - depth), (SELL, mid + depth)):
            for _ in range(rng.randint(1, 3)):
                next_id += 1
                emit((LIMIT, next_id, side, price, rng.randint(1, 20), GTC, None))

    while len(ops) < n_ops:
        fair += rng.choice((-0.5, 0.0, 0.5)) if rng.random() < 0.2 else 0.0
        ref = round(fair)
        side = BUY if rng.random() < 0.5 else SELL
        sign = 1 if side == BUY else -1
        r = rng.random()
        if r < 0.6:  # limit near the touch; ~10% marketable, ~10% post-only
            next_id += 1
            if rng.random() < 0.1:
                price = ref + sign * rng.randint(0, 3)
                tif = GTC
            else:
                far = rng.random() < 0.25  # keeps ~levels price levels per side alive
                price = ref - sign * (
                    rng.randint(1, levels) if far else 1 + int(rng.expovariate(1 / 5))
                )
                tif = POST_ONLY if rng.random() < 0.1 else GTC
            emit((LIMIT, next_id, side, max(price, 1), rng.randint(1, 20), tif, None))
        elif r < 0.8:  # taker: market (1 in 4 with a quote budget) or IOC limit at the touch
            next_id += 1
            qty = rng.randint(1, 40)
            kind = rng.random()
            if kind < 0.25:
                emit((MARKET, next_id, side, 0, 10**9, IOC, qty * ref))
            elif kind < 0.5:
                emit((MARKET, next_id, side, 0, qty, IOC, None))
            else:
                emit((LIMIT, next_id, side, ref + sign * rng.randint(0, 2), qty, IOC, None))
        else:  # cancel a live order (orders filled meanwhile are dropped from the pick list)
            while live:
                i = rng.randrange(len(live))
                oid = live[i]
                live[i] = live[-1]
                live.pop()
                if book.get(oid) is not None:
                    emit((CANCEL, oid, side, 0, 0, GTC, None))
                    break
        if len(ops) % 1000 == 0:
            depth_samples.append(len(book.levels(BUY, 10**6)) + len(book.levels(SELL, 10**6)))
    stats = {
        "fills_per_op": fills / len(ops),
        "mean_levels_per_side": sum(depth_samples) / max(1, len(depth_samples)) / 2,
    }
    return ops, stats


class NaiveBook:
    """Baseline: per side one list of resting orders sorted by (price priority, arrival), a
    linear scan to cancel, matching from the front of the list."""

    def __init__(self) -> None:
        self.sides: dict[Side, list[tuple[int, int, Order]]] = {BUY: [], SELL: []}
        self.by_id: dict[int, Order] = {}
        self.clock = 0

    def submit(
        self,
        order: Order,
        tif: TimeInForce = GTC,
        *,
        market: bool = False,
        quote_budget: int | None = None,
    ) -> MatchResult:
        buy = order.side == BUY
        opp = self.sides[SELL if buy else BUY]

        def crosses(price: int) -> bool:
            return market or (price <= order.price if buy else price >= order.price)

        if tif == POST_ONLY and opp and crosses(opp[0][2].price):
            return MatchResult([], 0, order.qty, False, "post_only_would_take", 0)
        fills = []
        filled = spent = 0
        while order.qty and opp and crosses(opp[0][2].price):
            price = opp[0][2].price
            level_total = sum(o.qty for _, _, o in opp if o.price == price)
            take = min(order.qty, level_total)
            if quote_budget is not None:
                take = min(take, (quote_budget - spent) // price)
                if take <= 0:
                    break
            todo = take
            while todo:
                maker = opp[0][2]
                x = min(maker.qty, todo)
                maker.qty -= x
                todo -= x
                fills.append((maker, price, x))
                if maker.qty == 0:
                    opp.pop(0)
                    del self.by_id[maker.id]
            filled += take
            spent += take * price
            order.qty -= take
            if take < level_total:
                break
        rested = bool(order.qty) and tif in (GTC, POST_ONLY) and not market
        if rested:
            self.clock += 1
            order.seq = self.clock
            key = -order.price if buy else order.price
            insort(self.sides[order.side], (key, self.clock, order))
            self.by_id[order.id] = order
        return MatchResult([], filled, order.qty, rested, None, spent)

    def cancel(self, order_id: int) -> Order | None:
        order = self.by_id.pop(order_id, None)
        if order is not None:
            entries = self.sides[order.side]
            for i, entry in enumerate(entries):
                if entry[2] is order:
                    del entries[i]
                    break
        return order

    def levels(self, side: Side, n: int) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for _, _, o in self.sides[side]:
            totals[o.price] = totals.get(o.price, 0) + o.qty
        return list(totals.items())[:n]


def replay(book: Any, ops: list[Op]) -> Any:
    """Feed the flow to ``book`` exactly as a caller would (creating each Order)."""
    submit = book.submit
    cancel = book.cancel
    for kind, oid, side, price, qty, tif, budget in ops:
        if kind == LIMIT:
            submit(Order(oid, side, price, qty), tif)
        elif kind == MARKET:
            submit(Order(oid, side, 0, qty), IOC, market=True, quote_budget=budget)
        else:
            cancel(oid)
    return book


def engine_figures(n_ops: int = 100_000, rounds: int = 5) -> dict[str, Any]:
    ops, stats = make_flow(n_ops)
    ours, naive = replay(Book(), ops), replay(NaiveBook(), ops)
    for side in (BUY, SELL):  # same flow, same end state: equal work
        assert ours.levels(side, 10**6) == naive.levels(side, 10**6), side
    counts = {
        "limit": sum(op[0] == LIMIT and op[5] != IOC for op in ops),
        "market_or_ioc": sum(op[0] == MARKET or op[5] == IOC for op in ops),
        "cancel": sum(op[0] == CANCEL for op in ops),
    }
    candidates: dict[str, Callable[[], object]] = {
        "engine": lambda: replay(Book(), ops),
        "naive": lambda: replay(NaiveBook(), ops),
    }
    t = compare(candidates, number=1, rounds=rounds)
    return {
        "ops": len(ops),
        "mix": {k: round(v / len(ops), 3) for k, v in counts.items()},
        "fills_per_op": round(stats["fills_per_op"], 3),
        "mean_levels_per_side": round(stats["mean_levels_per_side"], 1),
        "end_resting_orders": len(ours),
        "end_levels": {
            "bids": len(ours.levels(BUY, 10**6)),
            "asks": len(ours.levels(SELL, 10**6)),
        },
        "engine_ops_per_s": len(ops) / t["engine"],
        "naive_ops_per_s": len(ops) / t["naive"],
        "speedup_vs_naive": t["naive"] / t["engine"],
    }


def print_engine(fig: dict[str, Any]) -> None:
    mix = ", ".join(f"{k} {v:.0%}" for k, v in fig["mix"].items())
    print(
        f"engine:   {fig['engine_ops_per_s']:,.0f} ops/s "
        f"(target >= {ENGINE_TARGET_OPS_PER_S:,}) over {fig['ops']:,} ops ({mix}); "
        f"naive book {fig['naive_ops_per_s']:,.0f} ops/s -> "
        f"{fig['speedup_vs_naive']:.1f}x; {fig['fills_per_op']:.2f} fills/op, "
        f"~{fig['mean_levels_per_side']:.0f} levels/side, at the end "
        f"{fig['end_resting_orders']} orders on {fig['end_levels']['bids']} bid / "
        f"{fig['end_levels']['asks']} ask levels"
    )


def rest_figures(seconds: float = 3.0) -> dict[str, float]:
    """Order round trips per second through the sandbox server on loopback: signed REST
    create + cancel pairs from one client (each awaited before the next), against bare
    unauthenticated GET /v5/market/time round trips (the HTTP floor of the same stack)."""
    import asyncio
    import time

    from bybitkit.sandbox import Sandbox
    from bybitkit.v5.ratelimit import RateLimiter
    from bybitkit.v5.rest import RestClient

    async def run() -> dict[str, float]:
        async with Sandbox(seed=1, simulate=False) as sb:
            creds = sb.create_account()
            bid = sb.book("BTCUSDT", "spot", 1)["bids"][0][0]
            # Bybit's per-UID limits would cap us at 20 creates/s: lift them client side and
            # server side, since this measures the server, not the limits.
            sb.rest.uid_limits.check = lambda *a, **k: (0, 0, 0, 1)  # type: ignore[method-assign]
            limiter = RateLimiter(ip_limit=10**9)
            limiter.limit_for = lambda key: None  # type: ignore[method-assign]
            async with RestClient(sb.environment, creds, rate_limiter=limiter) as rest:
                price = str(bid - 100)
                n = 0
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    ack = await rest.place_order(
                        category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit",
                        qty="0.001", price=price,
                    )  # fmt: skip
                    await rest.cancel_order(category="spot", symbol="BTCUSDT", orderId=ack.orderId)
                    n += 2
                trade_rate = n / (time.perf_counter() - t0)
                m = 0
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    await rest.server_time()
                    m += 1
                floor_rate = m / (time.perf_counter() - t0)
        return {
            "order_requests_per_s": trade_rate,
            "bare_get_per_s": floor_rate,
            "order_vs_bare_get": trade_rate / floor_rate,
        }

    return asyncio.run(run())


def main() -> None:
    results: dict[str, object] = {}
    targets: dict[str, str] = {}

    engine = engine_figures()
    print_engine(engine)
    results["engine"] = engine
    targets["engine_ops_per_s"] = f">= {ENGINE_TARGET_OPS_PER_S}"

    rest = rest_figures()
    print(
        f"REST on loopback: {rest['order_requests_per_s']:,.0f} signed order requests/s "
        f"(create+cancel round trips), {rest['bare_get_per_s']:,.0f} bare GETs/s -> "
        f"{rest['order_vs_bare_get']:.2f}x of the bare HTTP round trip"
    )
    results["rest"] = rest

    path = write_results("matching", {**results, "targets": targets})
    print(f"written {path.relative_to(path.parent.parent.parent)}")


if __name__ == "__main__":
    main()
