"""Which struct decodes what: REST endpoints, trade-WS ops and the documentation examples.

REST: decode the :class:`~bybitkit.v5.schemas.common.Envelope` first, then its ``result`` with
:func:`rest_result_type` (via :func:`~bybitkit.v5.schemas.common.decode_result`). Two endpoints
answer with a different shape per ``category`` and are therefore not in :data:`REST_RESULT_TYPES`:
``GET /v5/market/instruments-info`` (:data:`INSTRUMENTS_BY_CATEGORY`) and ``GET /v5/market/tickers``
(:data:`TICKERS_BY_CATEGORY`); :data:`REST_RESULT_TYPES_BY_CATEGORY` maps those two paths to their
per-category tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from bybitkit.v5.codec import Wire
from bybitkit.v5.schemas.account import (
    AccountInfo,
    DcpInfoResult,
    DemoApplyMoneyResult,
    FeeRateResult,
    SetLimitPxActionResult,
    SetMarginModeResult,
    TransactionLogResult,
    UserSettingConfig,
    WalletBalanceResult,
)
from bybitkit.v5.schemas.common import BatchExtInfo, EmptyResult
from bybitkit.v5.schemas.market import (
    FundingHistoryResult,
    InstrumentsResult,
    KlineResult,
    LinearInstrumentsResult,
    LinearTickersResult,
    OptionInstrumentsResult,
    OptionTickersResult,
    OrderbookResult,
    PriceKlineResult,
    PriceLimitResult,
    RecentTradesResult,
    ServerTime,
    SpotInstrumentsResult,
    SpotTickersResult,
    TickersResult,
)
from bybitkit.v5.schemas.position import (
    ClosedPnlResult,
    PositionListResult,
    PositionSymbolInfoResult,
)
from bybitkit.v5.schemas.trade import (
    BatchAmendResult,
    BatchCancelResult,
    BatchCreateResult,
    CancelAllResult,
    DisconnectedCancelAllResult,
    ExecutionListResult,
    OrderIdResult,
    OrderListResult,
)
from bybitkit.v5.schemas.trade_ws import TradeWsAuthReply, TradeWsPong, TradeWsResponse
from bybitkit.v5.schemas.user import ApiKeyInfo
from bybitkit.v5.schemas.ws import (
    ExecutionMessage,
    KlineMessage,
    OrderbookMessage,
    OrderMessage,
    PositionMessage,
    PriceLimitMessage,
    PublicTradeMessage,
    TickerMessage,
    WalletMessage,
    WsControl,
    WsRequest,
)

Route = tuple[str, str]
"""(HTTP method, path), e.g. ``("POST", "/v5/order/create")``."""

INSTRUMENTS_BY_CATEGORY: dict[str, type[InstrumentsResult]] = {
    "linear": LinearInstrumentsResult,
    "inverse": LinearInstrumentsResult,
    "spot": SpotInstrumentsResult,
    "option": OptionInstrumentsResult,
}
"""``GET /v5/market/instruments-info`` result struct by the request's ``category``."""

TICKERS_BY_CATEGORY: dict[str, type[TickersResult]] = {
    "linear": LinearTickersResult,
    "inverse": LinearTickersResult,
    "spot": SpotTickersResult,
    "option": OptionTickersResult,
}
"""``GET /v5/market/tickers`` result struct by the request's ``category``."""

REST_RESULT_TYPES_BY_CATEGORY: dict[Route, Mapping[str, type[Wire]]] = {
    ("GET", "/v5/market/instruments-info"): INSTRUMENTS_BY_CATEGORY,
    ("GET", "/v5/market/tickers"): TICKERS_BY_CATEGORY,
}

REST_RESULT_TYPES: dict[Route, type[Wire]] = {
    # market (§7)
    ("GET", "/v5/market/time"): ServerTime,
    ("GET", "/v5/market/orderbook"): OrderbookResult,
    ("GET", "/v5/market/kline"): KlineResult,
    ("GET", "/v5/market/mark-price-kline"): PriceKlineResult,
    ("GET", "/v5/market/index-price-kline"): PriceKlineResult,
    ("GET", "/v5/market/premium-index-price-kline"): PriceKlineResult,
    ("GET", "/v5/market/recent-trade"): RecentTradesResult,
    ("GET", "/v5/market/funding/history"): FundingHistoryResult,
    ("GET", "/v5/market/price-limit"): PriceLimitResult,
    # trade (§8)
    ("POST", "/v5/order/create"): OrderIdResult,
    ("POST", "/v5/order/amend"): OrderIdResult,
    ("POST", "/v5/order/cancel"): OrderIdResult,
    ("POST", "/v5/order/cancel-all"): CancelAllResult,
    ("POST", "/v5/order/create-batch"): BatchCreateResult,
    ("POST", "/v5/order/amend-batch"): BatchAmendResult,
    ("POST", "/v5/order/cancel-batch"): BatchCancelResult,
    ("GET", "/v5/order/realtime"): OrderListResult,
    ("GET", "/v5/order/history"): OrderListResult,
    ("GET", "/v5/execution/list"): ExecutionListResult,
    ("GET", "/v5/pre-upgrade/execution/list"): ExecutionListResult,
    ("POST", "/v5/order/disconnected-cancel-all"): DisconnectedCancelAllResult,
    # position (§9)
    ("GET", "/v5/position/list"): PositionListResult,
    ("POST", "/v5/position/set-leverage"): EmptyResult,
    ("POST", "/v5/position/switch-mode"): EmptyResult,
    ("POST", "/v5/position/trading-stop"): EmptyResult,
    ("GET", "/v5/position/closed-pnl"): ClosedPnlResult,
    ("GET", "/v5/position/symbol-info"): PositionSymbolInfoResult,
    # account (§10, §7.9, §8.12, §1)
    ("GET", "/v5/account/wallet-balance"): WalletBalanceResult,
    ("GET", "/v5/account/fee-rate"): FeeRateResult,
    ("GET", "/v5/account/info"): AccountInfo,
    ("GET", "/v5/account/transaction-log"): TransactionLogResult,
    ("POST", "/v5/account/set-margin-mode"): SetMarginModeResult,
    ("POST", "/v5/account/set-limit-px-action"): SetLimitPxActionResult,
    ("GET", "/v5/account/user-setting-config"): UserSettingConfig,
    ("GET", "/v5/account/query-dcp-info"): DcpInfoResult,
    ("POST", "/v5/account/demo-apply-money"): DemoApplyMoneyResult,
    # user (§10.7)
    ("GET", "/v5/user/query-api"): ApiKeyInfo,
}
"""``result`` struct of every schema'd REST endpoint whose shape does not depend on ``category``."""

REST_EXT_INFO_TYPES: dict[Route, type[Wire]] = {
    ("POST", "/v5/order/create-batch"): BatchExtInfo,
    ("POST", "/v5/order/amend-batch"): BatchExtInfo,
    ("POST", "/v5/order/cancel-batch"): BatchExtInfo,
}
"""Endpoints whose ``retExtInfo`` carries per-item codes (others send ``{}``)."""

TRADE_WS_DATA_TYPES: dict[str, type[Wire]] = {
    "order.create": OrderIdResult,
    "order.amend": OrderIdResult,
    "order.cancel": OrderIdResult,
    "order.create-batch": BatchCreateResult,
    "order.amend-batch": BatchAmendResult,
    "order.cancel-batch": BatchCancelResult,
}
"""Trade-WS ``op`` -> struct of :attr:`TradeWsResponse.data`; batch ops put :class:`BatchExtInfo`
in ``retExtInfo``."""


def rest_result_type(method: str, path: str, category: str | None = None) -> type[Wire]:
    """The ``result`` struct of ``method path``; ``category`` is needed for instruments-info and
    tickers. Raises ``KeyError`` for an endpoint without a schema or an unknown category."""
    route = (method.upper(), path)
    by_category = REST_RESULT_TYPES_BY_CATEGORY.get(route)
    if by_category is not None:
        if category is None:
            raise KeyError(f"{method} {path} needs a category")
        return by_category[category]
    return REST_RESULT_TYPES[route]


Kind = Literal["rest", "ws", "ws_request"]
"""How an example file is decoded: ``rest`` = ``response`` is a REST envelope whose ``result`` is
the given struct; ``ws`` = ``response`` is the server frame itself; ``ws_request`` = the docs give
no server frame (``response`` is null), so the client ``request`` is decoded with the given
struct."""

EXAMPLE_SCHEMAS: dict[str, tuple[Kind, type[Wire]]] = {
    # market
    "rest_v5_market_time": ("rest", ServerTime),
    "rest_v5_market_instruments_info": ("rest", LinearInstrumentsResult),
    "rest_v5_market_instruments_info_linear_prelisting": ("rest", LinearInstrumentsResult),
    "rest_v5_market_instruments_info_option": ("rest", OptionInstrumentsResult),
    "rest_v5_market_instruments_info_spot": ("rest", SpotInstrumentsResult),
    "rest_v5_market_orderbook": ("rest", OrderbookResult),
    "rest_v5_market_tickers": ("rest", LinearTickersResult),
    "rest_v5_market_tickers_option": ("rest", OptionTickersResult),
    "rest_v5_market_tickers_spot": ("rest", SpotTickersResult),
    "rest_v5_market_kline": ("rest", KlineResult),
    "rest_v5_market_mark_price_kline": ("rest", PriceKlineResult),
    "rest_v5_market_index_price_kline": ("rest", PriceKlineResult),
    "rest_v5_market_premium_index_price_kline": ("rest", PriceKlineResult),
    "rest_v5_market_recent_trade": ("rest", RecentTradesResult),
    "rest_v5_market_funding_history": ("rest", FundingHistoryResult),
    "rest_v5_market_price_limit": ("rest", PriceLimitResult),
    # trade
    "rest_v5_order_create": ("rest", OrderIdResult),
    "rest_v5_order_amend": ("rest", OrderIdResult),
    "rest_v5_order_cancel": ("rest", OrderIdResult),
    "rest_v5_order_cancel_all": ("rest", CancelAllResult),
    "rest_v5_order_create_batch": ("rest", BatchCreateResult),
    "rest_v5_order_amend_batch": ("rest", BatchAmendResult),
    "rest_v5_order_cancel_batch": ("rest", BatchCancelResult),
    "rest_v5_order_realtime": ("rest", OrderListResult),
    "rest_v5_order_history": ("rest", OrderListResult),
    "rest_v5_execution_list": ("rest", ExecutionListResult),
    "rest_v5_pre_upgrade_execution_list_funding": ("rest", ExecutionListResult),
    "rest_v5_order_disconnected_cancel_all": ("rest", DisconnectedCancelAllResult),
    # position
    "rest_v5_position_list": ("rest", PositionListResult),
    "rest_v5_position_set_leverage": ("rest", EmptyResult),
    "rest_v5_position_switch_mode": ("rest", EmptyResult),
    "rest_v5_position_trading_stop": ("rest", EmptyResult),
    "rest_v5_position_closed_pnl": ("rest", ClosedPnlResult),
    "rest_v5_position_symbol_info": ("rest", PositionSymbolInfoResult),
    # account / user
    "rest_v5_account_wallet_balance": ("rest", WalletBalanceResult),
    "rest_v5_account_fee_rate": ("rest", FeeRateResult),
    "rest_v5_account_info": ("rest", AccountInfo),
    "rest_v5_account_transaction_log": ("rest", TransactionLogResult),
    "rest_v5_account_set_margin_mode": ("rest", SetMarginModeResult),
    "rest_v5_account_set_limit_px_action": ("rest", SetLimitPxActionResult),
    "rest_v5_account_user_setting_config": ("rest", UserSettingConfig),
    "rest_v5_account_query_dcp_info": ("rest", DcpInfoResult),
    "rest_v5_user_query_api": ("rest", ApiKeyInfo),
    # WS control replies (§11)
    "ws_auth": ("ws", WsControl),
    "ws_ping_private": ("ws", WsControl),
    "ws_ping_public_linear": ("ws", WsControl),
    "ws_ping_public_option": ("ws", WsControl),
    "ws_ping_public_spot": ("ws", WsControl),
    "ws_subscribe_private": ("ws", WsControl),
    "ws_subscribe_public_linear": ("ws", WsControl),
    "ws_subscribe_public_option": ("ws", WsControl),
    "ws_subscribe_public_spot": ("ws", WsControl),
    "ws_unsubscribe": ("ws_request", WsRequest),
    "ws_dcp": ("ws_request", WsRequest),
    # WS public topics (§12)
    "ws_orderbook_snapshot": ("ws", OrderbookMessage),
    "ws_orderbook_delta": ("ws", OrderbookMessage),
    "ws_public_trade": ("ws", PublicTradeMessage),
    "ws_tickers_linear": ("ws", TickerMessage),
    "ws_tickers_linear_futures": ("ws", TickerMessage),
    "ws_tickers_option": ("ws", TickerMessage),
    "ws_tickers_spot": ("ws", TickerMessage),
    "ws_kline": ("ws", KlineMessage),
    "ws_price_limit": ("ws", PriceLimitMessage),
    # WS private topics (§13)
    "ws_order": ("ws", OrderMessage),
    "ws_execution": ("ws", ExecutionMessage),
    "ws_position": ("ws", PositionMessage),
    "ws_wallet": ("ws", WalletMessage),
    # trade WS (§14)
    "ws_trade_auth": ("ws", TradeWsAuthReply),
    "ws_trade_order_create": ("ws", TradeWsResponse),
    "ws_trade_order_create_batch": ("ws", TradeWsResponse),
    "ws_trade_ping": ("ws", TradeWsPong),
}
"""Example file stem (``examples/<stem>.json``) -> how its ``response`` decodes."""

SKIPPED_EXAMPLES: dict[str, str] = {
    "rest_v5_account_contract_transaction_log": (
        "deprecated classic / UTA1.0-inverse endpoint /v5/account/contract-transaction-log; "
        "kept in the pack only for its opposite funding sign"
    ),
}
"""Example files deliberately without a schema, with the reason."""
