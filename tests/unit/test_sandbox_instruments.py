"""Sandbox instruments: exact price/qty text, instruments-info items, the order price band."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybitkit.sandbox.instruments import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    fixed_str,
    instrument_info,
    plain_str,
    price_band,
)
from bybitkit.v5.codec import decode, encode
from bybitkit.v5.schemas import LinearInstrumentsResult, SpotInstrumentsResult

D = Decimal

# Fields REFERENCE §7.2 documents that the (older) doc examples do not carry yet.
EXTRA_LINEAR_KEYS = {"displayName", "forbidUplWithdrawal"}
EXTRA_SPOT_KEYS = {"xstockMultiplier"}


def get(category: str, symbol: str) -> Instrument:
    for inst in DEFAULT_INSTRUMENTS:
        if inst.category == category and inst.symbol == symbol:
            return inst
    raise KeyError((category, symbol))


def example_item(examples_dir: Path, name: str) -> dict[str, Any]:
    data = json.loads((examples_dir / name).read_text())
    item: dict[str, Any] = data["response"]["result"]["list"][0]
    return item


def shape(value: Any) -> Any:
    """Key set and JSON types of a JSON value, recursively."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


SPOT = [i for i in DEFAULT_INSTRUMENTS if i.category == "spot"]
LINEAR = [i for i in DEFAULT_INSTRUMENTS if i.category == "linear"]


# --- the default instruments -------------------------------------------------------------------


def test_default_instruments_list() -> None:
    keys = [(i.category, i.symbol) for i in DEFAULT_INSTRUMENTS]
    assert keys == [
        ("spot", "BTCUSDT"),
        ("spot", "ETHUSDT"),
        ("linear", "BTCUSDT"),
        ("linear", "ETHUSDT"),
        ("linear", "BTCPERP"),
    ]
    perp = get("linear", "BTCPERP")
    assert (perp.quote_coin, perp.settle_coin, perp.contract_type) == (
        "USDC",
        "USDC",
        "LinearPerpetual",
    )
    assert get("spot", "BTCUSDT").settle_coin == "USDT"
    assert get("linear", "BTCUSDT").maintenance_margin_rate == D("0.005")
    assert get("linear", "ETHUSDT").maintenance_margin_rate == D("0.01")
    assert get("spot", "ETHUSDT").maintenance_margin_rate == 0
    assert get("spot", "BTCUSDT").initial_price_range == (D(60000), D(100000))
    assert get("linear", "ETHUSDT").initial_price_range == (D(2000), D(4000))


@pytest.mark.parametrize(
    ("category", "symbol", "tick", "lot", "pd", "qd"),
    [
        ("spot", "BTCUSDT", "0.1", "0.000001", 1, 6),
        ("spot", "ETHUSDT", "0.01", "0.00001", 2, 5),
        ("linear", "BTCUSDT", "0.10", "0.001", 2, 3),
        ("linear", "ETHUSDT", "0.01", "0.01", 2, 2),
        ("linear", "BTCPERP", "0.5", "0.001", 1, 3),
    ],
)
def test_grids_and_decimals(
    category: str, symbol: str, tick: str, lot: str, pd: int, qd: int
) -> None:
    inst = get(category, symbol)
    assert (inst.tick_size, inst.lot_size) == (D(tick), D(lot))
    assert (inst.price_decimals, inst.qty_decimals) == (pd, qd)
    assert inst.base_precision == inst.qty_step == inst.lot_size


@pytest.mark.parametrize("inst", DEFAULT_INSTRUMENTS, ids=lambda i: f"{i.category}-{i.symbol}")
def test_rules_lie_on_the_grids(inst: Instrument) -> None:
    for qty in (inst.min_order_qty, inst.max_order_qty):
        inst.to_lots(qty)
    if inst.category == "linear":
        for qty in (inst.max_mkt_order_qty, inst.post_only_max_order_qty):
            inst.to_lots(qty)
        for price in (inst.min_price, inst.max_price):
            inst.to_ticks(price)
        assert inst.min_leverage <= inst.max_leverage
        assert inst.lower_funding_rate == -inst.upper_funding_rate
    else:
        for qty in (inst.max_limit_order_qty, inst.max_market_order_qty):
            inst.to_lots(qty)
        assert inst.quote_precision > 0
        assert inst.min_order_amt > 0


def test_instrument_is_frozen_and_validated() -> None:
    inst = get("linear", "BTCUSDT")
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.symbol = "X"  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_mkt_order_qty"):
        dataclasses.replace(inst, max_mkt_order_qty=D(0))
    with pytest.raises(ValueError, match="price_decimals"):
        dataclasses.replace(inst, price_decimals=0)
    with pytest.raises(ValueError, match="quote_precision"):
        dataclasses.replace(get("spot", "BTCUSDT"), quote_precision=D(0))
    with pytest.raises(ValueError, match="category"):
        dataclasses.replace(inst, category="inverse")  # type: ignore[arg-type]
    assert dataclasses.replace(inst, symbol="BTCUSDT") == inst


# --- text --------------------------------------------------------------------------------------


def test_fixed_and_plain_str() -> None:
    assert fixed_str(3000010, 2) == "30000.10"
    assert fixed_str(5, 3) == "0.005"
    assert fixed_str(-5, 3) == "-0.005"
    assert fixed_str(42, 0) == "42"
    assert plain_str(1500, 3) == "1.5"
    assert plain_str(1000, 3) == "1"
    assert plain_str(0, 3) == "0"
    assert plain_str(-375, 5) == "-0.00375"


def test_price_str() -> None:
    assert get("linear", "BTCUSDT").price_str(300001) == "30000.10"
    assert get("linear", "BTCUSDT").price_str(300000) == "30000.00"
    assert get("spot", "BTCUSDT").price_str(300001) == "30000.1"
    assert get("spot", "BTCUSDT").price_str(300000) == "30000.0"
    assert get("linear", "BTCPERP").price_str(60001) == "30000.5"
    assert get("linear", "BTCPERP").price_str(60000) == "30000.0"
    assert get("spot", "ETHUSDT").price_str(300001) == "3000.01"
    assert get("linear", "ETHUSDT").price_str(1) == "0.01"


def test_qty_str() -> None:
    lin = get("linear", "BTCUSDT")
    assert lin.qty_str(1) == "0.001"
    assert lin.qty_str(1500) == "1.5"
    assert lin.qty_str(1000) == "1"
    assert lin.qty_str(0) == "0"
    assert get("spot", "ETHUSDT").qty_str(1) == "0.00001"
    assert get("spot", "BTCUSDT").qty_str(41_500_000) == "41.5"
    assert get("linear", "ETHUSDT").qty_str(72400) == "724"


def test_to_ticks_and_lots() -> None:
    lin = get("linear", "BTCUSDT")
    assert lin.to_ticks(D("30000.1")) == 300001
    assert lin.to_ticks(D("30000.10")) == 300001
    assert lin.to_ticks(D("3E+4")) == 300000
    assert lin.from_ticks(300001) == D("30000.1")
    assert str(lin.from_ticks(300001)) == "30000.10"
    assert lin.to_lots(D("1.5")) == 1500
    assert lin.from_lots(1500) == D("1.5")
    perp = get("linear", "BTCPERP")
    assert perp.to_ticks(D("30000.5")) == 60001
    for bad in (D("30000.05"), D("30000.01"), D("0.001")):
        with pytest.raises(ValueError, match="tick size"):
            lin.to_ticks(bad)
    with pytest.raises(ValueError, match="tick size"):
        perp.to_ticks(D("30000.3"))
    with pytest.raises(ValueError, match="quantity step"):
        lin.to_lots(D("0.0015"))
    with pytest.raises(ValueError, match="quantity step"):
        get("linear", "ETHUSDT").to_lots(D("0.015"))
    with pytest.raises(ValueError, match="float"):
        lin.to_ticks(30000.1)  # type: ignore[arg-type]
    # exact whatever the number of digits (no rounding to the 28-digit decimal context)
    assert lin.to_ticks(D("30000.1" + "0" * 40)) == 300001
    with pytest.raises(ValueError, match="tick size"):
        lin.to_ticks(D("30000.1" + "0" * 30 + "1"))
    with pytest.raises(ValueError, match="quantity step"):
        lin.to_lots(D("1." + "0" * 30 + "1"))
    with pytest.raises(ValueError, match="tick size"):
        lin.to_ticks(D("1E+100"))
    assert lin.to_ticks(D("0E-50")) == 0


@given(ticks=st.integers(min_value=0, max_value=10**12), lots=st.integers(0, 10**12))
def test_text_round_trips(ticks: int, lots: int) -> None:
    for inst in DEFAULT_INSTRUMENTS:
        text = inst.price_str(ticks)
        assert text == inst.price_str(ticks)
        if inst.price_decimals:
            assert len(text.split(".")[1]) == inst.price_decimals
        assert D(text) == inst.from_ticks(ticks)
        assert inst.to_ticks(D(text)) == ticks
        qty = inst.qty_str(lots)
        assert D(qty) == inst.from_lots(lots)
        assert inst.to_lots(D(qty)) == lots
        assert qty == "0" or not (qty.endswith("0") and "." in qty)
        assert not qty.endswith(".")


# --- instruments-info items --------------------------------------------------------------------


def test_spot_item_reproduces_the_example(examples_dir: Path) -> None:
    example = example_item(examples_dir, "rest_v5_market_instruments_info_spot.json")
    item = instrument_info(get("spot", "BTCUSDT"))
    assert set(item) == set(example) | EXTRA_SPOT_KEYS
    assert {k: v for k, v in item.items() if k not in EXTRA_SPOT_KEYS} == example
    assert item["xstockMultiplier"] == "1"


def test_linear_item_reproduces_the_example(examples_dir: Path) -> None:
    example = example_item(examples_dir, "rest_v5_market_instruments_info.json")
    item = instrument_info(get("linear", "BTCUSDT"))
    assert set(item) == set(example) | EXTRA_LINEAR_KEYS
    assert {k: v for k, v in item.items() if k not in EXTRA_LINEAR_KEYS} == example
    assert (item["displayName"], item["forbidUplWithdrawal"]) == ("", False)


@pytest.mark.parametrize("inst", SPOT, ids=lambda i: i.symbol)
def test_spot_items_have_the_example_shape(examples_dir: Path, inst: Instrument) -> None:
    example = example_item(examples_dir, "rest_v5_market_instruments_info_spot.json")
    item = instrument_info(inst)
    expected = shape(example) | {"xstockMultiplier": "str"}
    assert shape(item) == expected
    assert set(item["priceFilter"]) == {"tickSize"}
    assert len(item["lotSizeFilter"]) == 9


@pytest.mark.parametrize("inst", LINEAR, ids=lambda i: i.symbol)
def test_linear_items_have_the_example_shape(examples_dir: Path, inst: Instrument) -> None:
    example = example_item(examples_dir, "rest_v5_market_instruments_info.json")
    item = instrument_info(inst)
    expected = shape(example) | {"displayName": "str", "forbidUplWithdrawal": "bool"}
    assert shape(item) == expected
    assert isinstance(item["fundingInterval"], int)
    assert (item["deliveryFeeRate"], item["isPreListing"], item["preListingInfo"]) == (
        "",
        False,
        None,
    )
    # Bybit's formatting: prices with priceScale decimals, sizes with the qtyStep's decimals.
    pd, qd = inst.price_decimals, inst.qty_decimals
    assert item["priceScale"] == str(pd)
    for key in ("minPrice", "maxPrice", "tickSize"):
        assert len(item["priceFilter"][key].split(".")[1]) == pd
    for key in ("maxOrderQty", "minOrderQty", "qtyStep", "postOnlyMaxOrderQty", "maxMktOrderQty"):
        text = item["lotSizeFilter"][key]
        assert (len(text.split(".")[1]) if "." in text else 0) == qd
    assert item["leverageFilter"]["maxLeverage"] == "100.00"


def test_items_decode_into_the_schemas() -> None:
    spot = SPOT
    linear = LINEAR
    raw_spot = encode({"category": "spot", "list": [instrument_info(i) for i in spot]})
    res_s = decode(SpotInstrumentsResult, raw_spot)
    assert [s.symbol for s in res_s.list] == ["BTCUSDT", "ETHUSDT"]
    for inst, s in zip(spot, res_s.list, strict=True):
        assert s.symbolId == inst.symbol_id
        assert s.priceFilter is not None and s.priceFilter.tickSize == inst.tick_size
        lot = s.lotSizeFilter
        assert lot is not None
        assert lot.basePrecision == inst.lot_size
        assert lot.quotePrecision == inst.quote_precision
        assert lot.minOrderAmt == inst.min_order_amt
        assert lot.maxLimitOrderQty == inst.max_limit_order_qty
        assert lot.maxMarketOrderQty == inst.max_market_order_qty
        assert lot.postOnlyMaxLimitOrderSize == inst.post_only_max_limit_order_size
        assert s.riskParameters is not None
        assert s.riskParameters.priceLimitRatioX == inst.price_limit_ratio_x
        assert s.riskParameters.priceLimitRatioY == inst.price_limit_ratio_y

    raw_lin = json.dumps(
        {"category": "linear", "list": [instrument_info(i) for i in linear], "nextPageCursor": ""}
    )
    res_l = decode(LinearInstrumentsResult, raw_lin)
    assert res_l.nextPageCursor is None  # "" is normalized to null
    assert [c.symbol for c in res_l.list] == ["BTCUSDT", "ETHUSDT", "BTCPERP"]
    for inst, c in zip(linear, res_l.list, strict=True):
        assert (c.settleCoin, c.quoteCoin, c.priceScale) == (
            inst.settle_coin,
            inst.quote_coin,
            inst.price_decimals,
        )
        assert c.launchTime == inst.launch_time_ms and c.deliveryTime == 0
        assert c.deliveryFeeRate is None
        assert c.fundingInterval == inst.funding_interval_min
        assert c.upperFundingRate == inst.upper_funding_rate
        assert c.lowerFundingRate == inst.lower_funding_rate
        assert c.priceFilter is not None
        assert (c.priceFilter.minPrice, c.priceFilter.maxPrice, c.priceFilter.tickSize) == (
            inst.min_price,
            inst.max_price,
            inst.tick_size,
        )
        llot = c.lotSizeFilter
        assert llot is not None
        assert (llot.qtyStep, llot.minOrderQty, llot.maxOrderQty, llot.maxMktOrderQty) == (
            inst.lot_size,
            inst.min_order_qty,
            inst.max_order_qty,
            inst.max_mkt_order_qty,
        )
        assert llot.minNotionalValue == inst.min_notional_value
        lev = c.leverageFilter
        assert lev is not None
        assert (lev.minLeverage, lev.maxLeverage, lev.leverageStep) == (
            inst.min_leverage,
            inst.max_leverage,
            inst.leverage_step,
        )
        assert c.isPreListing is False and c.preListingInfo is None


def test_items_are_identical_every_time() -> None:
    for inst in DEFAULT_INSTRUMENTS:
        assert encode(instrument_info(inst)) == encode(instrument_info(inst))


# --- price band --------------------------------------------------------------------------------


def test_price_band_linear() -> None:
    lin = get("linear", "BTCUSDT")  # x 0.01, y 0.02
    assert price_band(lin, D("100000")) == (D("101000.00"), D("99000.00"))
    # 101000.0505 rounds down, 99000.0495 rounds up: the band only narrows.
    assert price_band(lin, D("100000.05")) == (D("101000.00"), D("99000.10"))
    # An index of 104829.85 gives the band of examples/rest_v5_market_price_limit.json:
    # 105878.1485 rounds down to 105878.10, 103781.5515 rounds up to 103781.60.
    buy, sell = price_band(lin, D("104829.85"))
    assert (lin.price_str(lin.to_ticks(buy)), lin.price_str(lin.to_ticks(sell))) == (
        "105878.10",
        "103781.60",
    )


def test_price_band_spot() -> None:
    spot = get("spot", "BTCUSDT")  # x 0.005, y 0.01
    assert price_band(spot, D("100000")) == (D("100500.0"), D("99500.0"))
    eth = get("spot", "ETHUSDT")
    assert price_band(eth, D("3000.001")) == (D("3015.00"), D("2985.01"))


def test_price_band_y_caps_x() -> None:
    wide_x = dataclasses.replace(
        get("linear", "BTCUSDT"), price_limit_ratio_x=D("0.05"), price_limit_ratio_y=D("0.02")
    )
    assert price_band(wide_x, D("100000")) == (D("102000.00"), D("98000.00"))


def test_price_band_rejects_bad_index() -> None:
    with pytest.raises(ValueError, match="index_price"):
        price_band(get("linear", "BTCUSDT"), D(0))
    with pytest.raises(ValueError, match="float"):
        price_band(get("linear", "BTCUSDT"), 100.0)  # type: ignore[arg-type]


@given(index=st.decimals(min_value=D("0.5"), max_value=D("500000"), places=4))
def test_price_band_never_widens(index: Decimal) -> None:
    for inst in DEFAULT_INSTRUMENTS:
        x, y = inst.price_limit_ratio_x, inst.price_limit_ratio_y
        exact_buy = min(max(index, index * (1 + x)), index * (1 + y))
        exact_sell = max(min(index, index * (1 - x)), index * (1 - y))
        buy, sell = price_band(inst, index)
        inst.to_ticks(buy)
        inst.to_ticks(sell)
        assert exact_buy - inst.tick_size < buy <= exact_buy
        assert exact_sell <= sell < exact_sell + inst.tick_size or sell == inst.tick_size
