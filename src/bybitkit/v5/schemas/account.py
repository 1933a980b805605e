"""Account endpoints (REFERENCE §10, §7.9 price-band settings, §8.12 DCP query, §1 demo funds) and
the items of the private ``wallet`` topic (§13.4)."""

from __future__ import annotations

import builtins
from decimal import Decimal

import msgspec

from bybitkit.v5.codec import Wire
from bybitkit.v5.schemas.common import EmptyResult, ExtraFee


class WalletCoin(Wire, kw_only=True):
    """One coin of a wallet account (§10.1 ``coin[]``); ``colRes`` is a status code string."""

    coin: str
    equity: Decimal | None = None
    usdValue: Decimal | None = None
    walletBalance: Decimal | None = None
    locked: Decimal | None = None
    spotHedgingQty: Decimal | None = None
    borrowAmount: Decimal | None = None
    accruedInterest: Decimal | None = None
    totalOrderIM: Decimal | None = None
    totalPositionIM: Decimal | None = None
    totalPositionMM: Decimal | None = None
    unrealisedPnl: Decimal | None = None
    cumRealisedPnl: Decimal | None = None
    bonus: Decimal | None = None
    marginCollateral: bool | None = None
    collateralSwitch: bool | None = None
    colRes: str | None = None
    spotBorrow: Decimal | None = None
    free: Decimal | None = None
    availableToWithdraw: Decimal | None = None
    availableToBorrow: Decimal | None = None


class WalletAccount(Wire, kw_only=True):
    """A wallet account of GET /v5/account/wallet-balance (§10.1) and WS ``wallet`` (§13.4);
    account-level ``total*`` values are in USD."""

    accountType: str | None = None
    accountIMRate: Decimal | None = None
    accountMMRate: Decimal | None = None
    totalEquity: Decimal | None = None
    totalWalletBalance: Decimal | None = None
    totalMarginBalance: Decimal | None = None
    totalAvailableBalance: Decimal | None = None
    totalPerpUPL: Decimal | None = None
    totalInitialMargin: Decimal | None = None
    totalMaintenanceMargin: Decimal | None = None
    accountIMRateByMp: Decimal | None = None
    accountMMRateByMp: Decimal | None = None
    totalInitialMarginByMp: Decimal | None = None
    totalMaintenanceMarginByMp: Decimal | None = None
    accountLTV: Decimal | None = None
    coin: list[WalletCoin] = msgspec.field(default_factory=list)


class WalletBalanceResult(Wire, kw_only=True):
    """GET /v5/account/wallet-balance."""

    list: builtins.list[WalletAccount] = msgspec.field(default_factory=builtins.list)


class FeeRate(Wire, kw_only=True):
    """One row of GET /v5/account/fee-rate (§10.2); ``symbol`` is None for options."""

    symbol: str | None = None
    baseCoin: str | None = None
    takerFeeRate: Decimal | None = None
    makerFeeRate: Decimal | None = None


class FeeRateResult(Wire, kw_only=True):
    """GET /v5/account/fee-rate (``category`` only returned for spot/option)."""

    category: str | None = None
    list: builtins.list[FeeRate] = msgspec.field(default_factory=builtins.list)


class AccountInfo(Wire, kw_only=True):
    """GET /v5/account/info (§10.3): the only place the account margin mode is read."""

    unifiedMarginStatus: int | None = None
    marginMode: str | None = None
    isMasterTrader: bool | None = None
    spotHedgingStatus: str | None = None
    updatedTime: int | None = None
    dcpStatus: str | None = None
    timeWindow: int | None = None
    smpGroup: int | None = None


class TransactionLogEntry(Wire, kw_only=True):
    """One ledger row of GET /v5/account/transaction-log (§10.4).

    ``funding`` is positive when received (the opposite of execution ``execFee``); ``size`` is the
    signed position after the event. ``extraFees`` is documented as a string, kept lenient.
    """

    id: str
    type: str
    symbol: str | None = None
    category: str | None = None
    side: str | None = None
    transactionTime: int | None = None
    transSubType: str | None = None
    qty: Decimal | None = None
    size: Decimal | None = None
    currency: str | None = None
    tradePrice: Decimal | None = None
    funding: Decimal | None = None
    fee: Decimal | None = None
    cashFlow: Decimal | None = None
    change: Decimal | None = None
    cashBalance: Decimal | None = None
    feeRate: Decimal | None = None
    bonusChange: Decimal | None = None
    tradeId: str | None = None
    orderId: str | None = None
    orderLinkId: str | None = None
    extraFees: list[ExtraFee] | str | None = None


class TransactionLogResult(Wire, kw_only=True):
    """GET /v5/account/transaction-log (no ``category`` in the result)."""

    list: builtins.list[TransactionLogEntry] = msgspec.field(default_factory=builtins.list)
    nextPageCursor: str | None = None


class MarginModeReason(Wire, kw_only=True):
    """One reason a margin-mode switch was refused."""

    reasonCode: str | None = None
    reasonMsg: str | None = None


class SetMarginModeResult(Wire, kw_only=True):
    """POST /v5/account/set-margin-mode (§10.6): ``reasons`` is empty on success."""

    reasons: list[MarginModeReason] = msgspec.field(default_factory=list)


class SetLimitPxActionResult(EmptyResult, kw_only=True):
    """POST /v5/account/set-limit-px-action (§7.9): an empty ack."""


class UserSettingConfig(Wire, kw_only=True):
    """GET /v5/account/user-setting-config (§7.9). Polarity differs: ``lpaSpot`` true = modify the
    price, ``lpaPerp`` true = reject."""

    lpaSpot: bool | None = None
    lpaPerp: bool | None = None
    deltaEnable: bool | None = None
    smsef: bool | None = None
    fmsef: bool | None = None


class DcpInfo(Wire, kw_only=True):
    """One enabled product of GET /v5/account/query-dcp-info (``timeWindow`` seconds)."""

    product: str
    dcpStatus: str | None = None
    timeWindow: int | None = None


class DcpInfoResult(Wire, kw_only=True):
    """GET /v5/account/query-dcp-info (§8.12); only enabled products are listed."""

    dcpInfos: list[DcpInfo] = msgspec.field(default_factory=list)


class DemoMoneyItem(Wire, kw_only=True, omit_defaults=True):
    """One coin amount in the POST /v5/account/demo-apply-money body (§1)."""

    coin: str
    amountStr: str


class DemoApplyMoneyRequest(Wire, kw_only=True, omit_defaults=True):
    """Body of POST /v5/account/demo-apply-money: ``adjustType`` 0 add, 1 reduce."""

    utaDemoApplyMoney: list[DemoMoneyItem]
    adjustType: int | None = None


class DemoApplyMoneyResult(EmptyResult, kw_only=True):
    """POST /v5/account/demo-apply-money: an ack; the reference documents no result fields."""
