"""The pure parts of the built-in strategies: ladder prices and sizes, inventory skew, the
ceiling / floor / band guards, position caps, take-profit prices and the arbitrage's leg sizing."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bybitkit.errors import ConfigError
from bybitkit.strategies.config import convert, load_config
from bybitkit.strategies.funding_rate_arbitrage import (
    FundingRateArbitrageParams,
    basis,
    common_step,
    entry_sizes,
    hedge_quantity,
    trim_quantity,
)
from bybitkit.strategies.perpetual_market_making import (
    PerpetualMarketMakingParams,
    legs,
    position_room,
    take_profit_quote,
)
from bybitkit.strategies.pure_market_making import (
    PlannedQuote,
    PureMarketMakingParams,
    build_ladder,
    inventory_multipliers,
    level_price,
    price_guard,
    quote_is_stale,
    size_guard,
)
from bybitkit.strategies.runner import BUILTINS, load_strategy
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import Position, Side

D = Decimal

SPOT = TradingRules(
    pair="BTC-USDT", symbol="BTCUSDT", category="spot", base_coin="BTC", quote_coin="USDT",
    settle_coin="USDT", tick_size=D("0.1"), qty_step=D("0.000001"), min_notional=D(5),
    max_post_only_qty=D(60000),
)  # fmt: skip
PERP = TradingRules(
    pair="BTC-USDT", symbol="BTCUSDT", category="linear", base_coin="BTC", quote_coin="USDT",
    settle_coin="USDT", tick_size=D("0.10"), qty_step=D("0.001"), min_qty=D("0.001"),
    min_notional=D(5), max_post_only_qty=D(1190),
)  # fmt: skip


def ladder(**kw: Any) -> list[PlannedQuote]:
    args: dict[str, Any] = {
        "mid": D(50000), "rules": SPOT, "bid_spread": D("0.001"), "ask_spread": D("0.002"),
        "order_amount": D("0.01"), "order_levels": 2, "level_spread": D("0.001"),
    }  # fmt: skip
    args.update(kw)
    return build_ladder(**args)


# -- ladder prices and sizes -------------------------------------------------------------------


def test_level_prices_round_away_from_the_mid() -> None:
    mid = D("50000.05")
    # bid: 50000.05 × 0.999 = 49950.04995 -> down to 49950.0; × 1.001 = 50050.05005 -> up
    assert level_price(mid, Side.BUY, D("0.001"), 0, D("0.001"), D("0.1")) == D("49950.0")
    assert level_price(mid, Side.SELL, D("0.001"), 0, D("0.001"), D("0.1")) == D("50050.1")
    # level 2 adds 2 × level_spread: × 0.997 = 49850.04985, × 1.003 = 50150.05015
    assert level_price(mid, Side.BUY, D("0.001"), 2, D("0.001"), D("0.1")) == D("49850.0")
    assert level_price(mid, Side.SELL, D("0.001"), 2, D("0.001"), D("0.1")) == D("50150.1")


def test_ladder_levels_sides_and_sizes() -> None:
    got = ladder()
    assert [(q.side, q.level, q.price, q.amount, q.skip) for q in got] == [
        (Side.BUY, 0, D("49950.0"), D("0.01"), None),
        (Side.BUY, 1, D("49900.0"), D("0.01"), None),
        (Side.SELL, 0, D("50100.0"), D("0.01"), None),
        (Side.SELL, 1, D("50150.0"), D("0.01"), None),
    ]
    assert got[0].key == (Side.BUY, 0)


def test_ladder_sizes_follow_the_multipliers_on_the_step() -> None:
    got = ladder(bid_multiplier=D("0.3333333"), ask_multiplier=D(1), order_levels=1)
    assert [q.amount for q in got] == [D("0.003333"), D("0.01")]
    got = ladder(bid_multiplier=D(0), order_levels=1)
    assert got[0].skip == "size rounds to 0" and got[1].skip is None


def test_ladder_skips_levels_under_the_minimum_notional_or_quantity() -> None:
    got = ladder(order_amount=D("0.0001"), order_levels=1)  # 5 USDT at the mid
    assert [q.skip for q in got] == [
        "notional 4.995 under the minimum 5 USDT",  # the bid is under the mid
        None,
    ]
    got = ladder(rules=PERP, order_amount=D("0.0005"), order_levels=1)
    assert all(q.amount == 0 and q.skip == "size rounds to 0" for q in got)


def test_ladder_ceiling_floor_and_band_guards() -> None:
    got = ladder(ceiling=D("49920"), floor=D("50120"))
    skipped = {(q.side, q.level): q.skip for q in got if q.skip}
    assert set(skipped) == {(Side.BUY, 0), (Side.SELL, 0)}
    assert "above price_ceiling 49920" in skipped[(Side.BUY, 0)]
    assert "below price_floor 50120" in skipped[(Side.SELL, 0)]
    got = ladder(band=(D("49930"), D("50140")))
    skipped = {(q.side, q.level): q.skip for q in got if q.skip}
    assert set(skipped) == {(Side.BUY, 0), (Side.SELL, 0)}
    assert "buyLmt 49930" in skipped[(Side.BUY, 0)]
    assert "sellLmt 50140" in skipped[(Side.SELL, 0)]
    # a band that contains every quote skips nothing
    assert not [q for q in ladder(band=(D(50500), D(49500))) if q.skip]


def test_price_guard_edges() -> None:
    assert price_guard(Side.BUY, D(100), ceiling=D(100)) is None  # at the ceiling: allowed
    assert price_guard(Side.SELL, D(100), floor=D(100)) is None
    assert price_guard(Side.BUY, D(100), floor=D(200)) is None  # a floor never stops a bid
    assert price_guard(Side.SELL, D(100), ceiling=D(50)) is None  # nor a ceiling an ask
    assert price_guard(Side.BUY, D(100), band=(D(100), D(90))) is None
    assert price_guard(Side.BUY, D("100.1"), band=(D(100), D(90))) is not None
    assert price_guard(Side.SELL, D("89.9"), band=(D(100), D(90))) is not None
    assert price_guard(Side.BUY, D(0)) == "price 0 is not positive"


def test_ladder_room_and_quote_budget_are_cumulative() -> None:
    got = ladder(base_room={Side.SELL: D("0.015")}, quote_budget=D(600))
    # bids: 0.01 × 49950 = 499.5 fits in 600, the second (499) does not
    # asks: the first 0.01 fits in 0.015 base, the second would make 0.02
    assert [q.skip is None for q in got] == [True, False, True, False]
    assert "insufficient USDT" in (got[1].skip or "")
    assert "no room" in (got[3].skip or "")
    got = ladder(base_room={Side.BUY: D(-1), Side.SELL: D(1)})
    assert [q.skip is None for q in got] == [False, False, True, True]


def test_size_guard() -> None:
    assert size_guard(D("0.001"), D(50000), PERP) is None
    assert size_guard(D("0.0009"), D(50000), PERP) == "size 0.0009 under the minimum quantity 0.001"
    assert size_guard(D("0.0001"), D(49999), SPOT) is not None
    assert size_guard(D(0), D(1), SPOT) == "size rounds to 0"


def test_quote_staleness() -> None:
    mid = D(50000)
    assert quote_is_stale(1.0, mid, mid, D(30), D("0.001")) is None
    assert quote_is_stale(30.0, mid, mid, D(30), D("0.001")) == "age"
    assert quote_is_stale(1.0, mid, D(50050), D(30), D("0.001")) is None  # exactly 0.1 %
    assert quote_is_stale(1.0, mid, D(50051), D(30), D("0.001")) == "mid moved"
    assert quote_is_stale(1.0, mid, D(49949), D(30), D("0.001")) == "mid moved"


# -- inventory skew ----------------------------------------------------------------------------


def test_inventory_at_target_quotes_full_size() -> None:
    assert inventory_multipliers(D(1), D(100), D(100), D("0.5"), D(1)) == (D(1), D(1))


def test_inventory_base_heavy_shrinks_the_bid_linearly() -> None:
    # portfolio 2 × 100 + 0 = 200, target 100 of base, range 0.5 × 100 = 50: 150 of base is at
    # the edge (bid 0); 125 halfway (bid 0.5)
    assert inventory_multipliers(D("1.25"), D(75), D(100), D("0.5"), D("0.5")) == (D("0.5"), D(1))
    assert inventory_multipliers(D("1.5"), D(50), D(100), D("0.5"), D("0.5")) == (D(0), D(1))
    assert inventory_multipliers(D(2), D(0), D(100), D("0.5"), D("0.5")) == (D(0), D(1))


def test_inventory_base_light_shrinks_the_ask() -> None:
    assert inventory_multipliers(D("0.75"), D(125), D(100), D("0.5"), D("0.5")) == (D(1), D("0.5"))
    assert inventory_multipliers(D(0), D(200), D(100), D("0.5"), D("0.5")) == (D(1), D(0))


def test_inventory_range_is_capped_at_half_the_portfolio() -> None:
    # range 10 × 100 = 1000 > half of 200: the range is 100, so base 150 (50 over) is halfway
    assert inventory_multipliers(D("1.5"), D(50), D(100), D("0.5"), D(10)) == (D("0.5"), D(1))


def test_inventory_empty_portfolio_quotes_nothing() -> None:
    assert inventory_multipliers(D(0), D(0), D(100), D("0.5"), D(1)) == (D(0), D(0))
    assert inventory_multipliers(D(1), D(1), D(0), D("0.5"), D(1)) == (D(0), D(0))


def test_inventory_target_edges() -> None:
    # target 0 (all quote): any base is too much; target 1 (all base): any quote too much
    bid, ask = inventory_multipliers(D("0.1"), D(100), D(100), D(0), D("0.2"))
    assert ask == 1 and bid == D("0.5")
    bid, ask = inventory_multipliers(D(1), D(10), D(100), D(1), D("0.2"))
    assert bid == 1 and ask == D("0.5")


# -- perpetual: position caps and take-profit --------------------------------------------------


def pos(side: Side | None, size: str, idx: int = 0, entry: str = "50000") -> Position:
    return Position("BTC-USDT", side, D(size), idx, D(entry), D(entry), D(0), D(0), D(5), None)


def test_legs_and_position_room() -> None:
    assert legs([pos(Side.BUY, "0.02", 1), pos(Side.SELL, "0.005", 2)]) == (D("0.02"), D("0.005"))
    assert legs([pos(None, "0")]) == (D(0), D(0))
    # one-way, long 0.004 under a cap of 0.01: 0.006 more to buy, 0.014 to sell
    assert position_room(False, D("0.004"), D(0), D("0.01")) == {
        Side.BUY: D("0.006"), Side.SELL: D("0.014"),
    }  # fmt: skip
    # beyond the cap: that side has no room
    room = position_room(False, D(0), D("0.02"), D("0.01"))
    assert room is not None and room[Side.SELL] < 0
    assert position_room(True, D("0.01"), D("0.002"), D("0.01")) == {
        Side.BUY: D(0), Side.SELL: D("0.008"),
    }  # fmt: skip
    assert position_room(True, D(1), D(1), None) is None


def test_cap_in_the_ladder_stops_the_side_beyond_it() -> None:
    room = position_room(False, D("0.02"), D(0), D("0.01"))
    got = ladder(rules=PERP, base_room=room, order_amount=D("0.005"))
    assert [q.skip is None for q in got] == [False, False, True, True]


def test_take_profit_prices() -> None:
    assert take_profit_quote(Side.BUY, D("0.012"), D("50000.05"), D("0.01"), PERP) == (
        Side.SELL, D("50500.10"), D("0.012"),  # 50500.0505 up to the tick
    )  # fmt: skip
    assert take_profit_quote(Side.SELL, D("0.012"), D("50000.05"), D("0.01"), PERP) == (
        Side.BUY, D("49500.00"), D("0.012"),  # 49500.0495 down
    )  # fmt: skip
    assert take_profit_quote(Side.BUY, D("0.0005"), D(50000), D("0.01"), PERP) == (
        "size rounds to 0"
    )
    assert "no entry price" in str(take_profit_quote(Side.BUY, D(1), D(0), D("0.01"), PERP))


# -- funding arbitrage: leg sizing -------------------------------------------------------------


def test_common_step() -> None:
    assert common_step(D("0.000001"), D("0.001")) == D("0.001")
    assert common_step(D("0.01"), D("0.001")) == D("0.01")
    assert common_step(D("0.004"), D("0.006")) == D("0.012")
    assert common_step(D(2), D("0.5")) == D(2)
    with pytest.raises(ValueError):
        common_step(D(0), D(1))


def test_entry_sizes_on_the_common_step_with_the_fee_grossed_up() -> None:
    got = entry_sizes(D("0.0105"), SPOT, PERP, D(50000), D("0.001"))
    assert not isinstance(got, str)
    spot_buy, short = got
    assert short == D("0.01")
    # 0.01 / 0.999 = 0.01001001.. rounded up to the spot step
    assert spot_buy == D("0.010011")
    assert spot_buy * (1 - D("0.001")) >= short
    assert entry_sizes(D("0.01"), SPOT, PERP, D(50000)) == (D("0.01"), D("0.01"))


def test_entry_sizes_refuses_legs_under_the_minimums() -> None:
    got = entry_sizes(D("0.0009"), SPOT, PERP, D(50000))
    assert isinstance(got, str) and got.startswith("spot leg of 0:")
    got = entry_sizes(D("0.001"), SPOT, PERP, D(4000))  # 4 USDT of notional
    assert isinstance(got, str) and "notional" in got


def test_hedge_and_trim_quantities() -> None:
    assert hedge_quantity(D("0.010000989"), D("0.01"), PERP) == D("0.01")
    assert hedge_quantity(D("0.0079"), D("0.01"), PERP) == D("0.007")  # a partial spot fill
    assert hedge_quantity(D("-1"), D("0.01"), PERP) == 0
    # a short filled 0.006 of 0.01: sell the surplus 0.004 (and keep the dust)
    assert trim_quantity(D("0.010000989"), D("0.006"), SPOT, D(50000)) == (
        D("0.004"), D("0.000000989"),
    )  # fmt: skip
    # a surplus under the minimum notional is not sold: it is reported as left over
    assert trim_quantity(D("0.01005"), D("0.01"), SPOT, D(50000)) == (D(0), D("0.00005"))
    assert trim_quantity(D("0.01"), D("0.02"), SPOT, D(50000)) == (D(0), D(0))


def test_basis() -> None:
    assert basis(D(50100), D(50000)) == D("0.002")
    assert basis(D(49900), D(50000)) == D("-0.002")


# -- params validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (PureMarketMakingParams, {"order_amount": 0}, "order_amount"),
        (PureMarketMakingParams, {"bid_spread": D("1.2")}, "bid_spread"),
        (PureMarketMakingParams, {"order_levels": 0}, "order_levels"),
        (PureMarketMakingParams, {"order_levels": 10, "level_spread": D("0.2")}, "level_spread"),
        (PureMarketMakingParams, {"refresh_time": 0}, "refresh_time"),
        (PureMarketMakingParams, {"inventory_target_base_ratio": D("1.5")},
         "inventory_target_base_ratio"),
        (PureMarketMakingParams, {"inventory_range_multiplier": 0}, "inventory_range_multiplier"),
        (PureMarketMakingParams, {"price_ceiling": -1}, "price_ceiling"),
        (PureMarketMakingParams, {"spread": D("0.1")}, "spread"),  # unknown
        (PerpetualMarketMakingParams, {"leverage": D("0.5")}, "leverage"),
        (PerpetualMarketMakingParams, {"position_mode": "both"}, "position_mode"),
        (PerpetualMarketMakingParams, {"max_position": 0}, "max_position"),
        (PerpetualMarketMakingParams, {"take_profit_spread": 1}, "take_profit_spread"),
        (FundingRateArbitrageParams, {"position_size": 0}, "position_size"),
        (FundingRateArbitrageParams, {"exit_funding_rate": D("0.01")}, "exit_funding_rate"),
        (FundingRateArbitrageParams, {"perp_connector": "spot"}, "perp_connector"),
        (FundingRateArbitrageParams, {"max_basis": D("-0.1")}, "max_basis"),
    ],
)  # fmt: skip
def test_params_are_validated_with_the_field_named(
    cls: type, data: dict[str, object], field: str
) -> None:
    base: dict[str, object] = {"pair": "BTC-USDT"}
    base["position_size" if cls is FundingRateArbitrageParams else "order_amount"] = D("0.01")
    base.update(data)
    with pytest.raises(ConfigError) as err:
        convert(base, cls, "params")
    assert field in str(err.value)


def test_params_defaults() -> None:
    p = convert({"pair": "BTC-USDT", "order_amount": D("0.01")}, PureMarketMakingParams, "params")
    assert (p.connector, p.bid_spread, p.order_levels, p.refresh_time) == (
        "spot", D("0.001"), 1, D(30),
    )  # fmt: skip
    q = convert({"pair": "BTC-USDT", "position_size": 1}, FundingRateArbitrageParams, "params")
    assert (q.spot_connector, q.perp_connector, q.unwind_on_stop) == ("spot", "perp", True)
    assert q.exit_funding_rate <= q.min_funding_rate


# -- properties --------------------------------------------------------------------------------

mids = st.integers(min_value=1_000, max_value=10_000_000).map(lambda n: D(n) / 100)
fractions = st.integers(min_value=0, max_value=500).map(lambda n: D(n) / 10_000)
ticks = st.sampled_from([D("0.01"), D("0.1"), D("0.5"), D(1)])


@settings(max_examples=300, deadline=None)
@given(
    mid=mids, bid=fractions, ask=fractions, level_spread=fractions, tick=ticks,
    levels=st.integers(min_value=1, max_value=5),
    bid_m=fractions.map(lambda f: f * 20), ask_m=fractions.map(lambda f: f * 20),
)  # fmt: skip
def test_quotes_never_cross_the_mid_and_lie_on_the_tick(
    mid: D, bid: D, ask: D, level_spread: D, tick: D, levels: int, bid_m: D, ask_m: D
) -> None:
    rules = TradingRules(
        pair="X-USDT", symbol="XUSDT", category="spot", base_coin="X", quote_coin="USDT",
        settle_coin="USDT", tick_size=tick, qty_step=D("0.0001"),
    )  # fmt: skip
    amount = D("0.5")
    got = build_ladder(
        mid=mid, rules=rules, bid_spread=bid, ask_spread=ask, order_amount=amount,
        order_levels=levels, level_spread=level_spread, bid_multiplier=bid_m,
        ask_multiplier=ask_m,
    )  # fmt: skip
    assert len(got) == 2 * levels
    for q in got:
        assert q.price % tick == 0
        assert 0 <= q.amount <= amount and q.amount % rules.qty_step == 0
        if q.side is Side.BUY:
            assert q.price <= mid and (bid == 0 or q.price < mid)
        else:
            assert q.price >= mid and (ask == 0 or q.price > mid)
    bids = [q.price for q in got if q.side is Side.BUY]
    asks = [q.price for q in got if q.side is Side.SELL]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert max(bids) < min(asks) or (bid == ask == 0 and max(bids) <= min(asks))


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(min_value=0, max_value=10**6).map(lambda n: D(n) / 1000),
    quote=st.integers(min_value=0, max_value=10**8).map(lambda n: D(n) / 100),
    price=st.integers(min_value=1, max_value=10**7).map(lambda n: D(n) / 100),
    target=st.integers(min_value=0, max_value=100).map(lambda n: D(n) / 100),
    range_base=st.integers(min_value=0, max_value=10**5).map(lambda n: D(n) / 1000),
)
def test_skewed_sizes_stay_within_the_order_amount(
    base: D, quote: D, price: D, target: D, range_base: D
) -> None:
    bid, ask = inventory_multipliers(base, quote, price, target, range_base)
    assert 0 <= bid <= 1 and 0 <= ask <= 1
    if base * price + quote > 0:
        assert bid == 1 or ask == 1  # only the side that worsens the inventory shrinks
        value = base * price
        total = value + quote
        if value > total * target:
            assert ask == 1
        elif value < total * target:
            assert bid == 1
    amount = D("0.01")
    got = build_ladder(
        mid=price, rules=SPOT, bid_spread=D("0.001"), ask_spread=D("0.001"), order_amount=amount,
        order_levels=1, level_spread=D(0), bid_multiplier=bid, ask_multiplier=ask,
    )  # fmt: skip
    assert all(0 <= q.amount <= amount for q in got)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=10**6).map(lambda n: D(n) / 10_000),
    price=st.integers(min_value=100, max_value=10**7).map(lambda n: D(n) / 10),
    fee=st.integers(min_value=0, max_value=30).map(lambda n: D(n) / 10_000),
)
def test_entry_legs_are_valid_and_the_spot_leg_covers_the_short(size: D, price: D, fee: D) -> None:
    got = entry_sizes(size, SPOT, PERP, price, fee)
    if isinstance(got, str):
        step_qty = size - size % D("0.001")
        assert step_qty < PERP.min_qty or step_qty * price < 5
        return
    spot_buy, short = got
    assert short <= size and short % D("0.001") == 0 and short % SPOT.qty_step == 0
    assert short >= PERP.min_qty and short * price >= 5
    assert spot_buy % SPOT.qty_step == 0
    assert spot_buy * (1 - fee) >= short  # what the spot leg nets after the fee
    assert spot_buy * (1 - fee) - short < SPOT.qty_step  # and no more than a step over


# -- the documentation -------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def doc_sections() -> dict[str, str]:
    text = DOCS.read_text()
    parts = re.split(r"^## (\w+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_docs_example_is_a_valid_config(name: str, tmp_path: Path) -> None:
    section = doc_sections()[name]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    path = tmp_path / "cfg.yaml"
    path.write_text(blocks[0])
    cfg = load_config(path)
    assert cfg.strategy == name
    cls = load_strategy(name)
    params = convert(cfg.params, cls.Params, "params")
    assert set(cfg.params) == {f.name for f in msgspec.structs.fields(cls.Params)}  # all shown
    assert params is not None


def _doc_default(text: str) -> object:
    if text == "(required)":
        return msgspec.NODEFAULT
    if text == "none":
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9.]+", text):
        return D(text)
    return text


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_docs_list_every_param_with_its_default(name: str) -> None:
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", doc_sections()[name], flags=re.M)
    documented = {param: _doc_default(default.strip().strip("`")) for param, default in rows}
    fields = {f.name: f.default for f in msgspec.structs.fields(load_strategy(name).Params)}
    assert documented == fields
