"""Public market endpoints (REFERENCE §7)."""

from __future__ import annotations

import builtins
from decimal import Decimal

import msgspec

from bybitkit.v5.codec import Wire


class ServerTime(Wire, kw_only=True):
    """GET /v5/market/time (§7.1)."""

    timeSecond: int
    timeNano: int | None = None


# --- instruments-info (§7.2) -------------------------------------------------------------------


class LeverageFilter(Wire, kw_only=True):
    """Linear/inverse instrument ``leverageFilter``."""

    minLeverage: Decimal | None = None
    maxLeverage: Decimal | None = None
    leverageStep: Decimal | None = None


class PriceFilter(Wire, kw_only=True):
    """Instrument ``priceFilter`` (spot sends ``tickSize`` only)."""

    tickSize: Decimal
    minPrice: Decimal | None = None
    maxPrice: Decimal | None = None


class LinearLotSizeFilter(Wire, kw_only=True):
    """Linear/inverse instrument ``lotSizeFilter``."""

    maxOrderQty: Decimal | None = None
    minOrderQty: Decimal | None = None
    qtyStep: Decimal | None = None
    postOnlyMaxOrderQty: Decimal | None = None
    maxMktOrderQty: Decimal | None = None
    minNotionalValue: Decimal | None = None


class SpotLotSizeFilter(Wire, kw_only=True):
    """Spot instrument ``lotSizeFilter`` (precisions and notional limits)."""

    basePrecision: Decimal | None = None
    quotePrecision: Decimal | None = None
    minOrderQty: Decimal | None = None
    maxOrderQty: Decimal | None = None
    minOrderAmt: Decimal | None = None
    maxOrderAmt: Decimal | None = None
    maxLimitOrderQty: Decimal | None = None
    maxMarketOrderQty: Decimal | None = None
    postOnlyMaxLimitOrderSize: Decimal | None = None


class OptionLotSizeFilter(Wire, kw_only=True):
    """Option instrument ``lotSizeFilter``."""

    maxOrderQty: Decimal | None = None
    minOrderQty: Decimal | None = None
    qtyStep: Decimal | None = None


class RiskParameters(Wire, kw_only=True):
    """Instrument ``riskParameters``: the price-band ratios x and y of §7.9."""

    priceLimitRatioX: Decimal | None = None
    priceLimitRatioY: Decimal | None = None


class PreListingPhase(Wire, kw_only=True):
    """One auction phase of a pre-market contract (``preListingInfo.phases``)."""

    phase: str | None = None
    startTime: int | None = None
    endTime: int | None = None


class AuctionFeeInfo(Wire, kw_only=True):
    """Fee rates of a pre-market contract (``preListingInfo.auctionFeeInfo``)."""

    auctionFeeRate: Decimal | None = None
    takerFeeRate: Decimal | None = None
    makerFeeRate: Decimal | None = None


class PreListingInfo(Wire, kw_only=True):
    """``preListingInfo`` of a linear/inverse instrument whose ``isPreListing`` is true."""

    curAuctionPhase: str | None = None
    phases: list[PreListingPhase] = msgspec.field(default_factory=list)
    auctionFeeInfo: AuctionFeeInfo | None = None
    skipCallAuction: bool | None = None


class LinearInstrument(Wire, kw_only=True):
    """One linear or inverse contract of GET /v5/market/instruments-info."""

    symbol: str
    symbolId: int | None = None
    contractType: str | None = None
    status: str | None = None
    baseCoin: str | None = None
    quoteCoin: str | None = None
    settleCoin: str | None = None
    symbolType: str | None = None
    launchTime: int | None = None
    deliveryTime: int | None = None
    deliveryFeeRate: Decimal | None = None
    priceScale: int | None = None
    leverageFilter: LeverageFilter | None = None
    priceFilter: PriceFilter | None = None
    lotSizeFilter: LinearLotSizeFilter | None = None
    unifiedMarginTrade: bool | None = None
    fundingInterval: int | None = None
    copyTrading: str | None = None
    upperFundingRate: Decimal | None = None
    lowerFundingRate: Decimal | None = None
    displayName: str | None = None
    forbidUplWithdrawal: bool | None = None
    riskParameters: RiskParameters | None = None
    isPreListing: bool | None = None
    preListingInfo: PreListingInfo | None = None


class SpotInstrument(Wire, kw_only=True):
    """One spot pair of GET /v5/market/instruments-info."""

    symbol: str
    symbolId: int | None = None
    baseCoin: str | None = None
    quoteCoin: str | None = None
    innovation: str | None = None
    symbolType: str | None = None
    xstockMultiplier: Decimal | None = None
    status: str | None = None
    marginTrading: str | None = None
    stTag: str | None = None
    lotSizeFilter: SpotLotSizeFilter | None = None
    priceFilter: PriceFilter | None = None
    riskParameters: RiskParameters | None = None


class OptionInstrument(Wire, kw_only=True):
    """One option contract of GET /v5/market/instruments-info."""

    symbol: str
    symbolId: int | None = None
    optionsType: str | None = None
    status: str | None = None
    baseCoin: str | None = None
    quoteCoin: str | None = None
    settleCoin: str | None = None
    launchTime: int | None = None
    deliveryTime: int | None = None
    deliveryFeeRate: Decimal | None = None
    priceFilter: PriceFilter | None = None
    lotSizeFilter: OptionLotSizeFilter | None = None
    displayName: str | None = None


class LinearInstrumentsResult(Wire, kw_only=True):
    """Instruments-info ``result`` for ``category=linear|inverse`` (paginated)."""

    category: str | None = None
    list: builtins.list[LinearInstrument] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class SpotInstrumentsResult(Wire, kw_only=True):
    """Instruments-info ``result`` for ``category=spot`` (no pagination)."""

    category: str | None = None
    list: builtins.list[SpotInstrument] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class OptionInstrumentsResult(Wire, kw_only=True):
    """Instruments-info ``result`` for ``category=option``."""

    category: str | None = None
    list: builtins.list[OptionInstrument] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


InstrumentsResult = LinearInstrumentsResult | SpotInstrumentsResult | OptionInstrumentsResult
"""Any instruments-info ``result``; which one depends on the request's ``category``."""

# --- orderbook (§7.3) --------------------------------------------------------------------------


class OrderbookResult(Wire, kw_only=True):
    """GET /v5/market/orderbook.

    ``b``/``a`` levels are ``[price, size]`` kept as the exact decimal strings Bybit sent; the order
    book converts them to integer ticks itself, exactly, so no Decimal is built per level here.
    """

    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    ts: int
    u: int
    seq: int | None = None
    cts: int | None = None


# --- tickers (§7.4) ----------------------------------------------------------------------------


class LinearTicker(Wire, kw_only=True):
    """One linear/inverse ticker of GET /v5/market/tickers."""

    symbol: str
    lastPrice: Decimal | None = None
    indexPrice: Decimal | None = None
    markPrice: Decimal | None = None
    prevPrice24h: Decimal | None = None
    price24hPcnt: Decimal | None = None
    highPrice24h: Decimal | None = None
    lowPrice24h: Decimal | None = None
    prevPrice1h: Decimal | None = None
    openInterest: Decimal | None = None
    openInterestValue: Decimal | None = None
    singleOpenInterest: Decimal | None = None
    singleOpenInterestValue: Decimal | None = None
    turnover24h: Decimal | None = None
    volume24h: Decimal | None = None
    fundingRate: Decimal | None = None
    nextFundingTime: int | None = None
    predictedDeliveryPrice: Decimal | None = None
    basisRate: Decimal | None = None
    basis: Decimal | None = None
    deliveryFeeRate: Decimal | None = None
    deliveryTime: int | None = None
    ask1Size: Decimal | None = None
    bid1Price: Decimal | None = None
    ask1Price: Decimal | None = None
    bid1Size: Decimal | None = None
    preOpenPrice: Decimal | None = None
    preQty: Decimal | None = None
    curPreListingPhase: str | None = None
    fundingIntervalHour: int | None = None
    fundingCap: Decimal | None = None
    basisRateYear: Decimal | None = None


class SpotTicker(Wire, kw_only=True):
    """One spot ticker of GET /v5/market/tickers."""

    symbol: str
    bid1Price: Decimal | None = None
    bid1Size: Decimal | None = None
    ask1Price: Decimal | None = None
    ask1Size: Decimal | None = None
    lastPrice: Decimal | None = None
    prevPrice24h: Decimal | None = None
    price24hPcnt: Decimal | None = None
    highPrice24h: Decimal | None = None
    lowPrice24h: Decimal | None = None
    turnover24h: Decimal | None = None
    volume24h: Decimal | None = None
    usdIndexPrice: Decimal | None = None


class OptionTicker(Wire, kw_only=True):
    """One option ticker of GET /v5/market/tickers (REST names: ``bid1Iv``, ``markIv``)."""

    symbol: str
    bid1Price: Decimal | None = None
    bid1Size: Decimal | None = None
    bid1Iv: Decimal | None = None
    ask1Price: Decimal | None = None
    ask1Size: Decimal | None = None
    ask1Iv: Decimal | None = None
    lastPrice: Decimal | None = None
    highPrice24h: Decimal | None = None
    lowPrice24h: Decimal | None = None
    markPrice: Decimal | None = None
    indexPrice: Decimal | None = None
    markIv: Decimal | None = None
    underlyingPrice: Decimal | None = None
    openInterest: Decimal | None = None
    turnover24h: Decimal | None = None
    volume24h: Decimal | None = None
    totalVolume: Decimal | None = None
    totalTurnover: Decimal | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    vega: Decimal | None = None
    theta: Decimal | None = None
    predictedDeliveryPrice: Decimal | None = None
    change24h: Decimal | None = None


class LinearTickersResult(Wire, kw_only=True):
    """Tickers ``result`` for ``category=linear|inverse``."""

    category: str | None = None
    list: builtins.list[LinearTicker] = msgspec.field(default_factory=builtins.list)


class SpotTickersResult(Wire, kw_only=True):
    """Tickers ``result`` for ``category=spot``."""

    category: str | None = None
    list: builtins.list[SpotTicker] = msgspec.field(default_factory=builtins.list)


class OptionTickersResult(Wire, kw_only=True):
    """Tickers ``result`` for ``category=option``."""

    category: str | None = None
    list: builtins.list[OptionTicker] = msgspec.field(default_factory=builtins.list)


TickersResult = LinearTickersResult | SpotTickersResult | OptionTickersResult
"""Any tickers ``result``; which one depends on the request's ``category``."""

# --- klines (§7.5, §7.8) -----------------------------------------------------------------------


class KlineRow(Wire, kw_only=True, array_like=True):
    """One trade candle of GET /v5/market/kline: the 7-column array
    ``[start, open, high, low, close, volume, turnover]`` (inverse swaps volume/turnover units)."""

    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal


class KlineResult(Wire, kw_only=True):
    """GET /v5/market/kline (rows newest first)."""

    category: str | None = None
    symbol: str | None = None
    list: builtins.list[KlineRow] = msgspec.field(default_factory=builtins.list)


class PriceKlineRow(Wire, kw_only=True, array_like=True):
    """One mark/index/premium-index candle (§7.8): the 5-column array
    ``[start, open, high, low, close]``."""

    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class PriceKlineResult(Wire, kw_only=True):
    """GET /v5/market/{mark,index,premium-index}-price-kline (§7.8)."""

    category: str | None = None
    symbol: str | None = None
    list: builtins.list[PriceKlineRow] = msgspec.field(default_factory=builtins.list)


# --- trades, funding, price band (§7.6, §7.7, §7.9) --------------------------------------------


class RecentTrade(Wire, kw_only=True):
    """One public fill of GET /v5/market/recent-trade (``side`` is the taker side)."""

    execId: str
    symbol: str | None = None
    price: Decimal | None = None
    size: Decimal | None = None
    side: str | None = None
    time: int | None = None
    isBlockTrade: bool | None = None
    isRPITrade: bool | None = None
    seq: int | None = None
    mP: Decimal | None = None
    iP: Decimal | None = None
    mIv: Decimal | None = None
    iv: Decimal | None = None


class RecentTradesResult(Wire, kw_only=True):
    """GET /v5/market/recent-trade."""

    category: str | None = None
    list: builtins.list[RecentTrade] = msgspec.field(default_factory=builtins.list)


class FundingRateRecord(Wire, kw_only=True):
    """One settled funding rate of GET /v5/market/funding/history."""

    symbol: str
    fundingRate: Decimal
    fundingRateTimestamp: int


class FundingHistoryResult(Wire, kw_only=True):
    """GET /v5/market/funding/history."""

    category: str | None = None
    list: builtins.list[FundingRateRecord] = msgspec.field(default_factory=builtins.list)


class PriceLimitResult(Wire, kw_only=True):
    """GET /v5/market/price-limit: the current order price band (``ts`` is a ms string)."""

    symbol: str
    buyLmt: Decimal | None = None
    sellLmt: Decimal | None = None
    ts: int | None = None
