"""Property tests of the sandbox's linear side: conservation per settle coin across fills,
fees, funding and liquidation, summed over every account (house, fees, insurance included)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybitkit.sandbox.exchange import Exchange, SandboxError
from bybitkit.sandbox.instruments import DEFAULT_INSTRUMENTS
from bybitkit.sandbox.market import MarketSimulator

D = Decimal
LINEAR = [
    i for i in DEFAULT_INSTRUMENTS if i.category == "linear" and i.symbol in ("BTCUSDT", "BTCPERP")
]

action = st.one_of(
    st.tuples(
        st.just("market"),
        st.sampled_from(["BTCUSDT", "BTCPERP"]),
        st.sampled_from(["Buy", "Sell"]),
        st.integers(1, 60),
        st.integers(0, 1),
        st.booleans(),
    ),
    st.tuples(
        st.just("limit"),
        st.sampled_from(["BTCUSDT", "BTCPERP"]),
        st.sampled_from(["Buy", "Sell"]),
        st.integers(-20, 20),
        st.integers(1, 60),
        st.integers(0, 1),
    ),
    st.tuples(
        st.just("close_limit"),
        st.sampled_from(["BTCUSDT", "BTCPERP"]),
        st.sampled_from(["Buy", "Sell"]),
        st.integers(-20, 20),
        st.integers(1, 60),
        st.integers(0, 1),
    ),
    st.tuples(st.just("move"), st.sampled_from(["BTCUSDT", "BTCPERP"]), st.integers(-400, 400)),
    st.tuples(
        st.just("funding"),
        st.sampled_from(["BTCUSDT", "BTCPERP"]),
        st.sampled_from(["0.0001", "-0.0003", "0.00375"]),
    ),
    st.tuples(st.just("leverage"), st.integers(0, 1), st.sampled_from(["5", "25", "50", "100"])),
    st.tuples(st.just("hedge"), st.integers(0, 1)),
    st.tuples(st.just("cancel_all"), st.integers(0, 1)),
    st.tuples(
        st.just("house"),
        st.sampled_from(["BTCUSDT", "BTCPERP"]),
        st.sampled_from(["Buy", "Sell"]),
        st.integers(1, 2000),
    ),
)


def settle_totals(ex: Exchange) -> dict[str, Decimal]:
    """Per settle coin: every wallet plus every unrealised PnL."""
    out: dict[str, Decimal] = {}
    for acct in ex.accounts.values():
        for coin in ("USDT", "USDC"):
            c = acct.coins.get(coin)
            out[coin] = out.get(coin, D(0)) + (c.wallet if c else D(0))
            out[coin] += ex.deriv.coin_margin(acct, coin)["upl"]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=1, max_size=30), st.integers(0, 2))
def test_every_settle_coin_is_conserved(actions: list[tuple], seed: int) -> None:  # type: ignore[type-arg]
    ex = Exchange(LINEAR, seed=seed, start_ms=1_700_000_000_000, history_minutes=60)
    sim = MarketSimulator(ex, seed=seed, frozen=True)
    users = [ex.new_account(), ex.new_account()]
    users[0].credit("USDT", D("150"))  # small: high leverage and moves liquidate it
    users[0].credit("USDC", D("150"))
    users[1].credit("USDT", D("100000"))
    users[1].credit("USDC", D("100000"))
    before = settle_totals(ex)
    for act in actions:
        kind = act[0]
        try:
            if kind == "market":
                _, sym, side, n, who, reduce = act
                u = users[who]
                market = ex.markets[("linear", sym)]
                idx = 0
                if ex.deriv.mode(u, market) == 3:
                    idx = 1 if (side == "Buy") != reduce else 2
                ex.create_order(
                    u,
                    {
                        "category": "linear",
                        "symbol": sym,
                        "side": side,
                        "orderType": "Market",
                        "qty": str(D(n) / 1000),
                        "reduceOnly": reduce,
                        "positionIdx": idx,
                    },
                )
            elif kind == "limit":
                _, sym, side, off, n, who = act
                u = users[who]
                market = ex.markets[("linear", sym)]
                ref = (market.book.best_bid() or 100) + off
                idx = 0 if ex.deriv.mode(u, market) == 0 else (1 if side == "Buy" else 2)
                ex.create_order(
                    u,
                    {
                        "category": "linear",
                        "symbol": sym,
                        "side": side,
                        "orderType": "Limit",
                        "qty": str(D(n) / 1000),
                        "price": str(market.inst.from_ticks(max(1, ref))),
                        "positionIdx": idx,
                    },
                )
            elif kind == "close_limit":
                # a reduce-only limit (one-way) or the other side's limit on a hedge index
                _, sym, side, off, n, who = act
                u = users[who]
                market = ex.markets[("linear", sym)]
                ref = (market.book.best_bid() or 100) + off
                hedge = ex.deriv.mode(u, market) == 3
                ex.create_order(
                    u,
                    {
                        "category": "linear",
                        "symbol": sym,
                        "side": side,
                        "orderType": "Limit",
                        "qty": str(D(n) / 1000),
                        "price": str(market.inst.from_ticks(max(1, ref))),
                        "positionIdx": (1 if side == "Sell" else 2) if hedge else 0,
                        "reduceOnly": not hedge,
                    },
                )
            elif kind == "move":
                _, sym, ticks = act
                market = ex.markets[("linear", sym)]
                price = market.inst.from_ticks(max(10, market.last_ticks + ticks * 50))
                sim.move_mid("linear", sym, price)
            elif kind == "funding":
                ex.deriv.funding_rates[act[1]] = D(act[2])
                ex.deriv.settle_funding(ex.markets[("linear", act[1])])
            elif kind == "leverage":
                u = users[act[1]]
                ex.deriv.set_leverage(
                    u, {"symbol": "BTCUSDT", "buyLeverage": act[2], "sellLeverage": act[2]}
                )
            elif kind == "hedge":
                ex.deriv.switch_mode(
                    users[act[1]], {"category": "linear", "symbol": "BTCUSDT", "mode": 3}
                )
            elif kind == "cancel_all":
                ex.cancel_all(users[act[1]], {"category": "linear", "settleCoin": "USDT"})
            elif kind == "house":
                ex.house_order(ex.markets[("linear", act[1])], act[2], act[3], None)
        except SandboxError:
            pass
        ex.flush()
        after = settle_totals(ex)
        for coin in ("USDT", "USDC"):
            assert after[coin] == before[coin], (coin, kind, after[coin] - before[coin])
        for sym in ("BTCUSDT", "BTCPERP"):
            net = sum(
                p.size
                for s in ex.deriv.states.values()
                for (symbol, _), p in s.positions.items()
                if symbol == sym
            )
            assert net == 0, (sym, net)  # every long has its short
        for u in users:
            for (sym, idx), p in ex.deriv.state(u).positions.items():
                # a hedge index only ever holds its own side
                assert (idx != 1 or p.size >= 0) and (idx != 2 or p.size <= 0), (sym, idx, p.size)
                market = ex.markets[("linear", sym)]
                for side in ("Buy", "Sell"):
                    resting = sum(
                        (o.qty - o.cum_qty for o in ex.deriv._resting_closers(u, market, p, side)),
                        D(0),
                    )
                    # closing orders together never exceed what they can close
                    assert resting <= ex.deriv._reducible(p, side), (sym, idx, side, resting)
        for market in ex.markets.values():
            bid, ask = market.book.best_bid(), market.book.best_ask()
            assert bid is None or ask is None or bid < ask
        for u in users:
            for coin in ("USDT", "USDC"):
                c = u.coins[coin]
                assert c.order_im >= 0 and c.locked >= 0
                m = ex.deriv.coin_margin(u, coin)
                # no user is left below maintenance: liquidation took the position
                assert c.wallet + m["upl"] >= m["mm"] or m["mm"] == 0, (coin, c.wallet, m)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["Buy", "Sell"]),
    st.integers(100, 150),
    st.lists(
        st.one_of(
            st.tuples(st.just("move"), st.integers(-3000, 3000)),
            st.tuples(st.just("funding"), st.sampled_from(["0.00375", "-0.00375", "0.0001"])),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_liquidation_conserves_and_leaves_no_one_under_maintenance(
    side: str, size_milli: int, steps: list[tuple[str, int | str]]
) -> None:
    ex = Exchange(LINEAR, seed=1, start_ms=1_700_000_000_000, history_minutes=60)
    sim = MarketSimulator(ex, seed=1, frozen=True)
    user = ex.new_account()
    user.credit("USDT", D("150"))
    ex.deriv.set_leverage(user, {"symbol": "BTCUSDT", "buyLeverage": "100", "sellLeverage": "100"})
    market = ex.markets[("linear", "BTCUSDT")]
    ex.create_order(
        user,
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": side,
            "orderType": "Market",
            "qty": str(D(size_milli) / 1000),
        },
    )
    before = settle_totals(ex)
    liquidated = False
    for kind, arg in steps:
        if kind == "move":
            price = market.inst.from_ticks(max(100, market.last_ticks + int(arg) * 10))
            sim.move_mid("linear", "BTCUSDT", price)
        else:
            ex.deriv.funding_rates["BTCUSDT"] = D(str(arg))
            ex.deriv.settle_funding(market)
        ex.flush()
        assert settle_totals(ex) == before
        m = ex.deriv.coin_margin(user, "USDT")
        pos = ex.deriv.position(user, market, 0)
        if pos.size == 0:
            liquidated = True
            # taken over at the bankruptcy price: the margin is gone, nothing more
            assert user.coins["USDT"].wallet >= 0
        else:
            assert user.coins["USDT"].wallet + m["upl"] >= m["mm"]
    if liquidated:
        hist = ex.history[user.uid]
        assert any(r["execType"] == "BustTrade" for r in hist.executions)
