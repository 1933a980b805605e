"""WebSocket stream messages: control replies (REFERENCE §11), public topics (§12) and private
topics (§13).

A frame carrying ``"topic"`` is a data message: :func:`topic_family` picks its struct from
:data:`MESSAGE_TYPES`. Any other frame is a control reply and decodes into :class:`WsControl`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bybitkit.v5.codec import Wire
from bybitkit.v5.schemas.account import WalletAccount
from bybitkit.v5.schemas.position import Position
from bybitkit.v5.schemas.trade import Execution, Order

ReqId = str | int | float | bool | None
"""A ``req_id`` is echoed as the client sent it: any JSON scalar."""


# --- client requests and control replies (§11) -------------------------------------------------


class WsRequest(Wire, kw_only=True, omit_defaults=True):
    """A client op on a stream (§11.2-11.4): ``auth``, ``ping``, ``subscribe``, ``unsubscribe``."""

    op: str
    args: list[Any] | None = None
    req_id: str | None = None


class WsControl(Wire, kw_only=True):
    """Any non-data frame on a stream: auth / subscribe / unsubscribe acks and ping replies of every
    stream shape (spot, linear/inverse, option/spread ``COMMAND_RESP``, private), plus the
    camelCase trade-WS replies. Every field is optional; check ``success``, never ``ret_msg``."""

    op: str | None = None
    success: bool | None = None
    ret_msg: str | None = None
    conn_id: str | None = None
    req_id: ReqId = None
    type: str | None = None
    args: Any = None
    data: Any = None
    reqId: ReqId = None
    retCode: int | None = None
    retMsg: str | None = None
    connId: str | None = None
    header: dict[str, str] | None = None
    retExtInfo: Any = None

    def is_pong(self) -> bool:
        """True for a heartbeat reply of any stream shape (``op`` or ``ret_msg`` is ``"pong"``)."""
        return self.op == "pong" or self.ret_msg == "pong"


# --- public topics (§12) -----------------------------------------------------------------------


class OrderbookData(Wire, kw_only=True):
    """``data`` of ``orderbook.{depth}.{symbol}``.

    ``b``/``a`` levels are ``[price, size]`` kept as the exact decimal strings Bybit sent; the order
    book converts them to integer ticks itself, exactly. Size ``"0"`` in a delta deletes the level.
    """

    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: int
    seq: int | None = None


class OrderbookMessage(Wire, kw_only=True):
    """Topic ``orderbook.{depth}.{symbol}`` (§12.1): ``type`` is ``snapshot`` or ``delta``."""

    topic: str
    type: str
    ts: int
    data: OrderbookData
    cts: int | None = None


class PublicTrade(Wire, kw_only=True):
    """One fill of ``publicTrade.*``: ``T`` time, ``S`` taker side, ``v`` size, ``p`` price,
    ``L`` tick direction, ``i`` trade id, ``BT`` block trade, ``RPI`` RPI trade."""

    T: int
    s: str
    S: str
    v: Decimal
    p: Decimal
    i: str | None = None
    L: str | None = None
    BT: bool | None = None
    RPI: bool | None = None
    seq: int | None = None
    mP: Decimal | None = None
    iP: Decimal | None = None
    mIv: Decimal | None = None
    iv: Decimal | None = None


class PublicTradeMessage(Wire, kw_only=True):
    """Topic ``publicTrade.{symbol}`` (option: ``publicTrade.{baseCoin}``), §12.2; oldest first."""

    topic: str
    data: list[PublicTrade]
    type: str | None = None
    ts: int | None = None
    id: str | None = None


class TickerData(Wire, kw_only=True):
    """``data`` of ``tickers.{symbol}`` for every category (§12.3).

    Linear/inverse send a snapshot then deltas carrying only changed fields, so everything but
    ``symbol`` is optional. ``deliveryTime`` is ISO-8601 text here (a ms string on REST). Spot has
    no bid/ask; option uses ``bidPrice``/``askPrice``/``markPriceIv``.
    """

    symbol: str
    tickDirection: str | None = None
    lastPrice: Decimal | None = None
    prevPrice24h: Decimal | None = None
    price24hPcnt: Decimal | None = None
    highPrice24h: Decimal | None = None
    lowPrice24h: Decimal | None = None
    prevPrice1h: Decimal | None = None
    markPrice: Decimal | None = None
    indexPrice: Decimal | None = None
    openInterest: Decimal | None = None
    openInterestValue: Decimal | None = None
    singleOpenInterest: Decimal | None = None
    singleOpenInterestValue: Decimal | None = None
    turnover24h: Decimal | None = None
    volume24h: Decimal | None = None
    nextFundingTime: int | None = None
    fundingRate: Decimal | None = None
    fundingIntervalHour: int | None = None
    fundingCap: Decimal | None = None
    bid1Price: Decimal | None = None
    bid1Size: Decimal | None = None
    ask1Price: Decimal | None = None
    ask1Size: Decimal | None = None
    deliveryTime: str | None = None
    basisRate: Decimal | None = None
    basis: Decimal | None = None
    basisRateYear: Decimal | None = None
    deliveryFeeRate: Decimal | None = None
    predictedDeliveryPrice: Decimal | None = None
    preOpenPrice: Decimal | None = None
    preQty: Decimal | None = None
    curPreListingPhase: str | None = None
    usdIndexPrice: Decimal | None = None
    bidPrice: Decimal | None = None
    bidSize: Decimal | None = None
    bidIv: Decimal | None = None
    askPrice: Decimal | None = None
    askSize: Decimal | None = None
    askIv: Decimal | None = None
    markPriceIv: Decimal | None = None
    underlyingPrice: Decimal | None = None
    totalVolume: Decimal | None = None
    totalTurnover: Decimal | None = None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    vega: Decimal | None = None
    theta: Decimal | None = None
    change24h: Decimal | None = None


class TickerMessage(Wire, kw_only=True):
    """Topic ``tickers.{symbol}`` (§12.3); ``cs`` cross sequence, ``id`` on option only."""

    topic: str
    data: TickerData
    type: str | None = None
    ts: int | None = None
    cs: int | None = None
    id: str | None = None


class KlineBar(Wire, kw_only=True):
    """One candle of ``kline.{interval}.{symbol}``; ``confirm`` true once it is closed."""

    start: int
    end: int | None = None
    interval: str | None = None
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal | None = None
    turnover: Decimal | None = None
    confirm: bool | None = None
    timestamp: int | None = None


class KlineMessage(Wire, kw_only=True):
    """Topic ``kline.{interval}.{symbol}`` (§12.4)."""

    topic: str
    data: list[KlineBar]
    type: str | None = None
    ts: int | None = None


class PriceLimitData(Wire, kw_only=True):
    """``data`` of ``priceLimit.{symbol}``: highest allowed buy and lowest allowed sell price."""

    symbol: str
    buyLmt: Decimal | None = None
    sellLmt: Decimal | None = None


class PriceLimitMessage(Wire, kw_only=True):
    """Topic ``priceLimit.{symbol}`` (§12.5); ``data`` is an object, no ``type``."""

    topic: str
    data: PriceLimitData
    ts: int | None = None


# --- private topics (§13) ----------------------------------------------------------------------


class OrderMessage(Wire, kw_only=True):
    """Topic ``order`` / ``order.{category}`` (§13.1)."""

    topic: str
    data: list[Order]
    id: str | None = None
    creationTime: int | None = None


class ExecutionMessage(Wire, kw_only=True):
    """Topic ``execution`` / ``execution.{category}`` (§13.2); may hold several fills."""

    topic: str
    data: list[Execution]
    id: str | None = None
    creationTime: int | None = None


class PositionMessage(Wire, kw_only=True):
    """Topic ``position`` / ``position.{category}`` (§13.3); positions carry ``entryPrice``."""

    topic: str
    data: list[Position]
    id: str | None = None
    creationTime: int | None = None


class WalletMessage(Wire, kw_only=True):
    """Topic ``wallet`` (§13.4): the wallet-balance account object."""

    topic: str
    data: list[WalletAccount]
    id: str | None = None
    creationTime: int | None = None


def topic_family(topic: str) -> str:
    """The part of ``topic`` before the first ``.``: ``"orderbook.50.BTCUSDT"`` -> ``"orderbook"``,
    ``"order.spot"`` -> ``"order"``, ``"wallet"`` -> ``"wallet"``."""
    return topic.partition(".")[0]


MESSAGE_TYPES: dict[str, type[Wire]] = {
    "orderbook": OrderbookMessage,
    "publicTrade": PublicTradeMessage,
    "tickers": TickerMessage,
    "kline": KlineMessage,
    "priceLimit": PriceLimitMessage,
    "order": OrderMessage,
    "execution": ExecutionMessage,
    "position": PositionMessage,
    "wallet": WalletMessage,
}
"""Topic family -> message struct. ``dcp.*`` topics have no documented payload and are absent."""
