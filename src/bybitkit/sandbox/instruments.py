"""Instruments of the sandbox exchange: trading rules, exact price/qty text, instruments-info items.

Prices and quantities are integers inside the sandbox: a price is a number of ticks
(``tick_size``), a quantity a number of lots (``lot_size``: spot ``basePrecision``, linear
``qtyStep``). :class:`Instrument` converts between those integers, Decimals and the exact text
Bybit sends:

* prices always carry ``price_decimals`` decimals (linear: ``priceScale``; spot: the decimals of
  ``tickSize``), so the same price is always the same text: ``"30000.10"``;
* quantities carry no trailing zeros: ``"0.001"``, ``"1.5"``, ``"0"``.

:func:`instrument_info` builds the JSON-able ``/v5/market/instruments-info`` item of an
instrument (REFERENCE §7.2) with every number formatted the way Bybit formats it, and
:func:`price_band` computes the order price band of REFERENCE §7.9.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from bybitkit.errors import ValidationError
from bybitkit.money import decimals_of, to_decimal

Category = Literal["spot", "linear"]
"""The product categories the sandbox trades."""

ZERO = Decimal(0)

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "Category",
    "Instrument",
    "fixed_str",
    "instrument_from_info",
    "instrument_info",
    "plain_str",
    "price_band",
]


# --- exact text of scaled integers -------------------------------------------------------------


def fixed_str(n: int, decimals: int) -> str:
    """Text of ``n / 10**decimals`` with exactly ``decimals`` decimals: ``fixed_str(3000010, 2)``
    is ``"30000.10"``."""
    if decimals <= 0:
        return str(n)
    if n < 0:
        return "-" + fixed_str(-n, decimals)
    s = str(n).rjust(decimals + 1, "0")
    return f"{s[:-decimals]}.{s[-decimals:]}"


def plain_str(n: int, decimals: int) -> str:
    """Text of ``n / 10**decimals`` without trailing zeros (``"0.001"``, ``"1.5"``, ``"0"``)."""
    if n == 0:
        return "0"
    s = fixed_str(n, decimals)
    if decimals > 0:
        s = s.rstrip("0").rstrip(".")
    return s


def _exact_scaled(value: Decimal, decimals: int) -> int | None:
    """``value * 10**decimals`` as an int, computed exactly (no context rounding, whatever the
    number of digits); ``None`` when that is not an integer or absurdly large."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN / infinity
        return None
    text = "".join(map(str, digits)).rstrip("0")
    if not text:
        return 0
    shift = exponent + (len(digits) - len(text)) + decimals  # trailing zeros moved to the shift
    if shift < 0 or len(text) + shift > 40:  # a fraction left, or beyond 10**40
        return None
    n = int(text + "0" * shift)
    return -n if sign else n


def _scaled(value: Decimal, decimals: int) -> int:
    """``value * 10**decimals`` as an int; raises when that is not an integer."""
    n = _exact_scaled(value, decimals)
    if n is None:
        raise ValidationError("value", f"at most {decimals} decimals", format(value, "f"))
    return n


def _fixed(value: Decimal, decimals: int) -> str:
    """Decimal text with exactly ``decimals`` decimals (the value must fit)."""
    return fixed_str(_scaled(value, decimals), decimals)


def _plain(value: Decimal) -> str:
    """Decimal text without exponent or trailing zeros."""
    return plain_str(_scaled(value, decimals_of(value)), decimals_of(value))


# --- instruments -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """One tradable instrument of the sandbox: a spot pair or a linear contract, and its rules.

    Every instrument: ``tick_size`` is the price grid, ``lot_size`` the quantity grid (spot:
    ``basePrecision``; linear: ``qtyStep``); ``price_decimals`` is the number of decimals every
    price text carries (linear: ``priceScale``; spot: the decimals of ``tickSize``);
    ``qty_decimals`` (derived) the decimals of ``lot_size``. ``initial_price_range`` is where the
    sandbox's simulated price starts. ``min_order_qty`` / ``max_order_qty`` exist in both
    categories (spot: deprecated, served but not enforced).

    Spot rules (zero on linear instruments): ``quote_precision``; enforced ``min_order_amt`` (min
    notional in quote coin), ``max_limit_order_qty`` / ``max_market_order_qty`` by order type,
    ``post_only_max_limit_order_size`` for PostOnly; deprecated ``max_order_amt``.

    Linear rules (zero on spot instruments): ``max_mkt_order_qty``, ``post_only_max_order_qty``
    (deprecated), ``min_notional_value``, ``min_price`` / ``max_price``, the leverage filter,
    ``funding_interval_min`` and the funding-rate caps, and one ``maintenance_margin_rate``.
    """

    symbol: str
    category: Category
    base_coin: str
    quote_coin: str
    settle_coin: str
    tick_size: Decimal
    lot_size: Decimal
    price_decimals: int
    qty_decimals: int = field(init=False)
    min_order_qty: Decimal
    max_order_qty: Decimal
    price_limit_ratio_x: Decimal
    price_limit_ratio_y: Decimal
    symbol_id: int
    launch_time_ms: int
    initial_price_range: tuple[Decimal, Decimal]
    maintenance_margin_rate: Decimal = ZERO
    status: str = "Trading"
    # spot
    quote_precision: Decimal = ZERO
    min_order_amt: Decimal = ZERO
    max_order_amt: Decimal = ZERO
    max_limit_order_qty: Decimal = ZERO
    max_market_order_qty: Decimal = ZERO
    post_only_max_limit_order_size: Decimal = ZERO
    margin_trading: str = "utaOnly"
    # linear
    max_mkt_order_qty: Decimal = ZERO
    post_only_max_order_qty: Decimal = ZERO
    min_notional_value: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    min_leverage: Decimal = ZERO
    max_leverage: Decimal = ZERO
    leverage_step: Decimal = ZERO
    funding_interval_min: int = 0
    upper_funding_rate: Decimal = ZERO
    lower_funding_rate: Decimal = ZERO
    contract_type: str = "LinearPerpetual"
    delivery_time_ms: int = 0
    copy_trading: str = "both"
    display_name: str = ""
    # precomputed: tick and lot in units of 10**-price_decimals / 10**-qty_decimals
    _tick_scale: int = field(init=False, repr=False, compare=False)
    _lot_scale: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValidationError("tick_size/lot_size", "positive decimals")
        if self.price_decimals < decimals_of(self.tick_size):
            raise ValidationError(
                "price_decimals", f"at least the decimals of tick {self.tick_size}"
            )
        low, high = self.initial_price_range
        if not 0 < low < high:
            raise ValidationError("initial_price_range", "0 < low < high")
        if self.category == "spot":
            needed = {
                "quote_precision": self.quote_precision,
                "max_limit_order_qty": self.max_limit_order_qty,
                "max_market_order_qty": self.max_market_order_qty,
                "post_only_max_limit_order_size": self.post_only_max_limit_order_size,
            }
        elif self.category == "linear":
            needed = {
                "max_mkt_order_qty": self.max_mkt_order_qty,
                "min_price": self.min_price,
                "max_price": self.max_price,
                "min_leverage": self.min_leverage,
                "max_leverage": self.max_leverage,
                "leverage_step": self.leverage_step,
                "funding_interval_min": Decimal(self.funding_interval_min),
            }
        else:
            raise ValidationError("category", '"spot" or "linear"', self.category)
        for name, value in needed.items():
            if value <= 0:
                raise ValidationError(name, f"a positive value for a {self.category} instrument")
        qty_decimals = decimals_of(self.lot_size)
        object.__setattr__(self, "qty_decimals", qty_decimals)
        object.__setattr__(self, "_tick_scale", _scaled(self.tick_size, self.price_decimals))
        object.__setattr__(self, "_lot_scale", _scaled(self.lot_size, qty_decimals))

    @property
    def base_precision(self) -> Decimal:
        """Spot ``lotSizeFilter.basePrecision``: the lot size."""
        return self.lot_size

    @property
    def qty_step(self) -> Decimal:
        """Linear ``lotSizeFilter.qtyStep``: the lot size."""
        return self.lot_size

    # prices ------------------------------------------------------------------------------------

    def price_str(self, ticks: int) -> str:
        """Exact price text with ``price_decimals`` decimals: 300001 ticks of 0.10 -> "30000.10"."""
        return fixed_str(ticks * self._tick_scale, self.price_decimals)

    def to_ticks(self, price: Decimal) -> int:
        """Number of ticks in ``price``; ValueError (``ValidationError``) if off the tick grid."""
        price = to_decimal(price, "price")
        n = _exact_scaled(price, self.price_decimals)
        if n is None or n % self._tick_scale:
            raise ValidationError(
                "price", f"a multiple of the tick size {self.tick_size}", format(price, "f")
            )
        return n // self._tick_scale

    def from_ticks(self, ticks: int) -> Decimal:
        """Decimal price of ``ticks`` (exponent of ``tick_size``)."""
        return ticks * self.tick_size

    # quantities --------------------------------------------------------------------------------

    def qty_str(self, lots: int) -> str:
        """Exact quantity text without trailing zeros: "0.001", "1.5", "0"."""
        return plain_str(lots * self._lot_scale, self.qty_decimals)

    def to_lots(self, qty: Decimal) -> int:
        """Number of lots in ``qty``; ValueError (``ValidationError``) if off the lot grid."""
        qty = to_decimal(qty, "qty")
        n = _exact_scaled(qty, self.qty_decimals)
        if n is None or n % self._lot_scale:
            raise ValidationError(
                "qty", f"a multiple of the quantity step {self.lot_size}", format(qty, "f")
            )
        return n // self._lot_scale

    def from_lots(self, lots: int) -> Decimal:
        """Decimal quantity of ``lots`` (exponent of ``lot_size``)."""
        return lots * self.lot_size


# --- the instruments the sandbox lists ---------------------------------------------------------

D = Decimal

_BTC_RANGE = (D("60000"), D("100000"))
_ETH_RANGE = (D("2000"), D("4000"))

# Spot BTCUSDT: every rule below is copied from examples/rest_v5_market_instruments_info_spot.json
# (symbolId 9, lotSizeFilter, tickSize, riskParameters, marginTrading). launch_time_ms is not
# served for spot and is an approximation.
_SPOT_BTCUSDT = Instrument(
    symbol="BTCUSDT",
    category="spot",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.1"),
    lot_size=D("0.000001"),
    price_decimals=1,
    quote_precision=D("0.0000001"),
    min_order_qty=D("0.000011"),
    max_order_qty=D("83"),
    min_order_amt=D("5"),
    max_order_amt=D("8000000"),
    max_limit_order_qty=D("83"),
    max_market_order_qty=D("41.5"),
    post_only_max_limit_order_size=D("60000"),
    price_limit_ratio_x=D("0.005"),
    price_limit_ratio_y=D("0.01"),
    symbol_id=9,
    launch_time_ms=1620000000000,
    initial_price_range=_BTC_RANGE,
)

# Spot ETHUSDT: approximations consistent with Bybit's published rules (tick 0.01, basePrecision
# 0.00001, quotePrecision 0.0000001, minOrderAmt 5); the size caps, symbolId, launch time and
# the risk ratios (taken equal to spot BTCUSDT's) are not from the examples.
_SPOT_ETHUSDT = Instrument(
    symbol="ETHUSDT",
    category="spot",
    base_coin="ETH",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.01"),
    lot_size=D("0.00001"),
    price_decimals=2,
    quote_precision=D("0.0000001"),
    min_order_qty=D("0.00062"),
    max_order_qty=D("1500"),
    min_order_amt=D("5"),
    max_order_amt=D("8000000"),
    max_limit_order_qty=D("1500"),
    max_market_order_qty=D("750"),
    post_only_max_limit_order_size=D("60000"),
    price_limit_ratio_x=D("0.005"),
    price_limit_ratio_y=D("0.01"),
    symbol_id=10,
    launch_time_ms=1620000000000,
    initial_price_range=_ETH_RANGE,
)

# Linear BTCUSDT: every rule below is copied from examples/rest_v5_market_instruments_info.json
# (symbolId 5, launchTime, priceScale 2, price/lot/leverage filters, fundingInterval 480, funding
# caps, riskParameters, copyTrading). maintenance_margin_rate 0.005 is Bybit's first risk tier.
_LINEAR_BTCUSDT = Instrument(
    symbol="BTCUSDT",
    category="linear",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.10"),
    lot_size=D("0.001"),
    price_decimals=2,
    min_price=D("0.10"),
    max_price=D("1999999.80"),
    min_order_qty=D("0.001"),
    max_order_qty=D("1190.000"),
    max_mkt_order_qty=D("500.000"),
    post_only_max_order_qty=D("1190.000"),
    min_notional_value=D("5"),
    min_leverage=D("1"),
    max_leverage=D("100.00"),
    leverage_step=D("0.01"),
    funding_interval_min=480,
    upper_funding_rate=D("0.00375"),
    lower_funding_rate=D("-0.00375"),
    price_limit_ratio_x=D("0.01"),
    price_limit_ratio_y=D("0.02"),
    symbol_id=5,
    launch_time_ms=1585526400000,
    initial_price_range=_BTC_RANGE,
    maintenance_margin_rate=D("0.005"),
)

# Linear ETHUSDT: approximations consistent with Bybit's published rules (tick 0.01 with
# priceScale 2, qtyStep/minOrderQty 0.01, maxOrderQty 7240, maxMktOrderQty 724, minNotional 5,
# leverage up to 100); min/max price, funding caps, risk ratios, symbolId and launch time are not
# from the examples.
_LINEAR_ETHUSDT = Instrument(
    symbol="ETHUSDT",
    category="linear",
    base_coin="ETH",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.01"),
    lot_size=D("0.01"),
    price_decimals=2,
    min_price=D("0.01"),
    max_price=D("199999.98"),
    min_order_qty=D("0.01"),
    max_order_qty=D("7240.00"),
    max_mkt_order_qty=D("724.00"),
    post_only_max_order_qty=D("7240.00"),
    min_notional_value=D("5"),
    min_leverage=D("1"),
    max_leverage=D("100.00"),
    leverage_step=D("0.01"),
    funding_interval_min=480,
    upper_funding_rate=D("0.00375"),
    lower_funding_rate=D("-0.00375"),
    price_limit_ratio_x=D("0.01"),
    price_limit_ratio_y=D("0.02"),
    symbol_id=6,
    launch_time_ms=1615766400000,
    initial_price_range=_ETH_RANGE,
    maintenance_margin_rate=D("0.01"),
)

# BTCPERP (USDC perpetual, settled in USDC): approximations (tick 0.5 with priceScale 1, qtyStep
# and minOrderQty 0.001, maxOrderQty 1190 as BTCUSDT); maxMktOrderQty, min/max price, funding
# caps, risk ratios, displayName, copyTrading, symbolId and launch time are not from the examples.
_LINEAR_BTCPERP = Instrument(
    symbol="BTCPERP",
    category="linear",
    base_coin="BTC",
    quote_coin="USDC",
    settle_coin="USDC",
    tick_size=D("0.5"),
    lot_size=D("0.001"),
    price_decimals=1,
    min_price=D("0.5"),
    max_price=D("1999999.0"),
    min_order_qty=D("0.001"),
    max_order_qty=D("1190.000"),
    max_mkt_order_qty=D("500.000"),
    post_only_max_order_qty=D("1190.000"),
    min_notional_value=D("5"),
    min_leverage=D("1"),
    max_leverage=D("100.00"),
    leverage_step=D("0.01"),
    funding_interval_min=480,
    upper_funding_rate=D("0.00375"),
    lower_funding_rate=D("-0.00375"),
    price_limit_ratio_x=D("0.01"),
    price_limit_ratio_y=D("0.02"),
    symbol_id=7,
    launch_time_ms=1651190400000,
    initial_price_range=_BTC_RANGE,
    maintenance_margin_rate=D("0.005"),
    copy_trading="none",
    display_name="BTCUSDC",
)

DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    _SPOT_BTCUSDT,
    _SPOT_ETHUSDT,
    _LINEAR_BTCUSDT,
    _LINEAR_ETHUSDT,
    _LINEAR_BTCPERP,
)
"""Spot BTCUSDT and ETHUSDT; linear USDT perpetuals BTCUSDT and ETHUSDT; USDC perpetual BTCPERP."""


# --- /v5/market/instruments-info items ---------------------------------------------------------


def instrument_from_info(item: Any, mm_rate: Decimal = Decimal("0.005")) -> Instrument:
    """An :class:`Instrument` from a live ``instruments-info`` item (a ``SpotInstrument`` or
    ``LinearInstrument`` wire struct): how paper trading runs the sandbox's engine on the real
    rules. ``initial_price_range`` is a placeholder: paper trading sets prices from live data."""
    tick = item.priceFilter.tickSize
    lot = item.lotSizeFilter
    spot = hasattr(lot, "basePrecision") and lot.basePrecision is not None
    risk = item.riskParameters
    common: dict[str, Any] = {
        "symbol": item.symbol,
        "base_coin": item.baseCoin,
        "quote_coin": item.quoteCoin,
        "tick_size": tick,
        "price_decimals": max(decimals_of(tick), int(getattr(item, "priceScale", 0) or 0)),
        "price_limit_ratio_x": (risk.priceLimitRatioX if risk else None) or Decimal("0.05"),
        "price_limit_ratio_y": (risk.priceLimitRatioY if risk else None) or Decimal("0.1"),
        "symbol_id": int(getattr(item, "symbolId", 0) or 0),
        "launch_time_ms": int(getattr(item, "launchTime", 0) or 0),
        "initial_price_range": (tick * 100, tick * 200),
    }
    if spot:
        return Instrument(
            category="spot",
            settle_coin=item.quoteCoin,
            lot_size=lot.basePrecision,
            min_order_qty=lot.minOrderQty or ZERO,
            max_order_qty=lot.maxOrderQty or ZERO,
            quote_precision=lot.quotePrecision,
            min_order_amt=lot.minOrderAmt or ZERO,
            max_order_amt=lot.maxOrderAmt or ZERO,
            max_limit_order_qty=lot.maxLimitOrderQty or lot.maxOrderQty,
            max_market_order_qty=lot.maxMarketOrderQty or lot.maxOrderQty,
            post_only_max_limit_order_size=lot.postOnlyMaxLimitOrderSize or lot.maxOrderQty,
            **common,
        )
    lev = item.leverageFilter
    return Instrument(
        category="linear",
        settle_coin=item.settleCoin or item.quoteCoin,
        lot_size=lot.qtyStep,
        min_order_qty=lot.minOrderQty,
        max_order_qty=lot.maxOrderQty,
        max_mkt_order_qty=lot.maxMktOrderQty or lot.maxOrderQty,
        post_only_max_order_qty=lot.postOnlyMaxOrderQty or lot.maxOrderQty,
        min_notional_value=lot.minNotionalValue or ZERO,
        min_price=item.priceFilter.minPrice or tick,
        max_price=item.priceFilter.maxPrice or tick * 10**9,
        min_leverage=lev.minLeverage if lev else Decimal(1),
        max_leverage=lev.maxLeverage if lev else Decimal(100),
        leverage_step=lev.leverageStep if lev else Decimal("0.01"),
        funding_interval_min=int(item.fundingInterval or 480),
        upper_funding_rate=item.upperFundingRate or Decimal("0.00375"),
        lower_funding_rate=item.lowerFundingRate or Decimal("-0.00375"),
        maintenance_margin_rate=mm_rate,
        **common,
    )


def instrument_info(inst: Instrument) -> dict[str, Any]:
    """The ``/v5/market/instruments-info`` list item of ``inst`` (REFERENCE §7.2), JSON-able,
    numbers as strings formatted as Bybit does (linear prices with ``priceScale`` decimals, linear
    quantities with the decimals of ``qtyStep``, ``maxLeverage`` with those of ``leverageStep``,
    spot numbers without trailing zeros)."""
    risk = {
        "priceLimitRatioX": _plain(inst.price_limit_ratio_x),
        "priceLimitRatioY": _plain(inst.price_limit_ratio_y),
    }
    if inst.category == "spot":
        return {
            "symbolId": inst.symbol_id,
            "symbol": inst.symbol,
            "baseCoin": inst.base_coin,
            "quoteCoin": inst.quote_coin,
            "innovation": "0",
            "symbolType": "",
            "xstockMultiplier": "1",
            "status": inst.status,
            "marginTrading": inst.margin_trading,
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": _plain(inst.base_precision),
                "quotePrecision": _plain(inst.quote_precision),
                "minOrderQty": _plain(inst.min_order_qty),
                "maxOrderQty": _plain(inst.max_order_qty),
                "minOrderAmt": _plain(inst.min_order_amt),
                "maxOrderAmt": _plain(inst.max_order_amt),
                "maxLimitOrderQty": _plain(inst.max_limit_order_qty),
                "maxMarketOrderQty": _plain(inst.max_market_order_qty),
                "postOnlyMaxLimitOrderSize": _plain(inst.post_only_max_limit_order_size),
            },
            "priceFilter": {"tickSize": _plain(inst.tick_size)},
            "riskParameters": risk,
        }
    if inst.category == "linear":
        pd, qd = inst.price_decimals, inst.qty_decimals
        return {
            "symbol": inst.symbol,
            "symbolId": inst.symbol_id,
            "contractType": inst.contract_type,
            "status": inst.status,
            "baseCoin": inst.base_coin,
            "quoteCoin": inst.quote_coin,
            "symbolType": "",
            "launchTime": str(inst.launch_time_ms),
            "deliveryTime": str(inst.delivery_time_ms),
            "deliveryFeeRate": "",
            "priceScale": str(pd),
            "leverageFilter": {
                "minLeverage": _plain(inst.min_leverage),
                "maxLeverage": _fixed(inst.max_leverage, decimals_of(inst.leverage_step)),
                "leverageStep": _plain(inst.leverage_step),
            },
            "priceFilter": {
                "minPrice": _fixed(inst.min_price, pd),
                "maxPrice": _fixed(inst.max_price, pd),
                "tickSize": _fixed(inst.tick_size, pd),
            },
            "lotSizeFilter": {
                "maxOrderQty": _fixed(inst.max_order_qty, qd),
                "minOrderQty": _fixed(inst.min_order_qty, qd),
                "qtyStep": _fixed(inst.qty_step, qd),
                "postOnlyMaxOrderQty": _fixed(inst.post_only_max_order_qty, qd),
                "maxMktOrderQty": _fixed(inst.max_mkt_order_qty, qd),
                "minNotionalValue": _plain(inst.min_notional_value),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": inst.funding_interval_min,
            "settleCoin": inst.settle_coin,
            "copyTrading": inst.copy_trading,
            "upperFundingRate": _plain(inst.upper_funding_rate),
            "lowerFundingRate": _plain(inst.lower_funding_rate),
            "displayName": inst.display_name,
            "forbidUplWithdrawal": False,
            "riskParameters": risk,
            "isPreListing": False,
            "preListingInfo": None,
        }
    raise ValidationError("category", '"spot" or "linear"', inst.category)


# --- order price band (§7.9) -------------------------------------------------------------------


def price_band(inst: Instrument, index_price: Decimal) -> tuple[Decimal, Decimal]:
    """``(buyLmt, sellLmt)``: the highest allowed buy and lowest allowed sell price around the
    index price ``I`` (REFERENCE §7.9) with the premium term taken as 0 and, for linear, mark =
    index: ``maxBuy = min(max(I, I*(1+x)), I*(1+y))``, ``minSell = max(min(I, I*(1-x)),
    I*(1-y))``. Rounded to the tick inwards (buy limit down, sell limit up) so the band never
    widens; the sell limit is at least one tick."""
    index = to_decimal(index_price, "index_price")
    if index <= 0:
        raise ValidationError("index_price", "a positive price", format(index, "f"))
    one = Decimal(1)
    x, y = inst.price_limit_ratio_x, inst.price_limit_ratio_y
    max_buy = min(max(index, index * (one + x)), index * (one + y))
    min_sell = max(min(index, index * (one - x)), index * (one - y))
    tick = inst.tick_size
    buy_ticks = int(max_buy // tick)  # positive: // truncates, i.e. rounds down
    q, r = divmod(min_sell, tick)
    sell_ticks = max(int(q) + (1 if r > 0 else 0), 1)
    return inst.from_ticks(buy_ticks), inst.from_ticks(sell_ticks)
