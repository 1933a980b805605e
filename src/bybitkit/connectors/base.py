"""What every Bybit connector shares: books, the private stream, order entry, reconciliation.

A connector owns one REST client, one public stream for its category, one private stream (with
credentials) and optionally one trade stream, plus its background tasks (reconciliation, REST
polling while the private stream is down, resolution of orders whose submit outcome is unknown,
trading-rules refresh, book staleness watch). ``stop()`` cancels and awaits every one of them.

Guarantees (the checklist traders were burned by):

* an order exists in the tracker (and the store) before its request leaves; a timeout or a
  dropped connection puts it in UNKNOWN, resolved by querying its ``orderLinkId``, never resent;
  "not found" is believed only after several consecutive explicit answers;
* fills are counted once, by ``execId``, whichever path reports them (stream, reconciliation
  at start and after every private reconnect, REST polling while the stream is down, restart);
* books check ``u`` continuity; a gap or a disconnect marks the book invalid and resyncs it;
  a book that goes quiet past ``stale_after`` is reported stale;
* LIMIT_MAKER is always sent as PostOnly.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bybitkit.connectors.candles import CandlesMixin
from bybitkit.errors import (
    BatchOutcomeUnknown,
    BybitkitError,
    ConfigError,
    DuplicateOrderId,
    ExchangeError,
    NetworkError,
    OrderNotActive,
    OrderNotFound,
    OrderOutcomeUnknown,
    ValidationError,
)
from bybitkit.market import OrderBook
from bybitkit.money import fmt, optional_decimal, to_decimal
from bybitkit.trading.events import (
    BalanceUpdated,
    BookInvalid,
    BookValid,
    Event,
)
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.tracker import OrderTracker, OrderUpdate
from bybitkit.trading.types import (
    ZERO,
    Balance,
    Fill,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    now_ms,
    to_symbol,
)
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import Credentials, make_signer
from bybitkit.v5.environments import Environment, Stream
from bybitkit.v5.rest import MAX_LINK_ID_LEN, RestClient
from bybitkit.v5.ws import ConnectionState, TradeWsClient, WsSession

log = logging.getLogger(__name__)

STATUS = {
    "New": OrderState.OPEN,
    "PartiallyFilled": OrderState.PARTIALLY_FILLED,
    "Untriggered": OrderState.OPEN,
    "Triggered": OrderState.OPEN,
    "Filled": OrderState.FILLED,
    "Cancelled": OrderState.CANCELLED,
    "PartiallyFilledCanceled": OrderState.CANCELLED,
    "Deactivated": OrderState.CANCELLED,
    "Rejected": OrderState.FAILED,
}
#: The private topic that arms disconnect cancel-all for each DCP product (REFERENCE §8.12).
DCP_TOPICS = {"SPOT": "dcp.spot", "DERIVATIVES": "dcp.future", "OPTIONS": "dcp.option"}
#: How long enable_dcp waits for a new window to show in query-dcp-info (Bybit: "~10 s").
DCP_APPLY_S = 15.0
NO_LIQUIDITY = frozenset(
    {"EC_NoImmediateQtyToFill", "EC_NoEnoughQtyToFill", "EC_CancelForNoFullFill",
     "EC_ReachMarketPriceLimit", "EC_CancelByMatchValueZero"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TradeFee:
    pair: str
    maker: Decimal
    taker: Decimal


#: cancelType values that name who cancelled an order (REFERENCE §6), in our words.
CANCEL_TYPES = {
    "CancelByDCP": "dcp",
    "CancelByReduceOnly": "reduce_only",
    "CancelByPrepareLiq": "liquidation",
    "CancelAllBeforeLiq": "liquidation",
    "CancelByPrepareAdl": "adl",
    "CancelAllBeforeAdl": "adl",
    "CancelByTpSlTsClear": "position_closed",
    "CancelBySmp": "smp",
    "CancelByAdmin": "exchange",
    "CancelBySettle": "exchange",
    "CancelByRebalance": "exchange",
    "CancelByOCOTpCanceledBySlTriggered": "oco",
    "CancelByOCOSlCanceledByTpTriggered": "oco",
}


def cancel_reason(
    reject_reason: str | None, cancel_type: str | None, order_type: str | None
) -> str:
    """Why an order ended without filling fully, in our words."""
    if reject_reason == "EC_PostOnlyWillTakeLiquidity":
        return "post_only_would_take"
    if reject_reason in NO_LIQUIDITY:
        return "no_liquidity"
    by_exchange = CANCEL_TYPES.get(cancel_type or "")
    if by_exchange is not None:  # the exchange says who cancelled (DCP, liquidation...)
        return by_exchange
    if cancel_type == "CancelByUser" or reject_reason == "EC_PerCancelRequest":
        return "user"
    if order_type == "Market":
        return "no_liquidity"
    return "exchange"


class BybitConnector(CandlesMixin):
    """Shared machinery of the spot and perpetual connectors (one category each)."""

    category = "spot"

    def __init__(
        self,
        connector_id: str,
        environment: Environment,
        credentials: Credentials | None = None,
        *,
        store: Any = None,
        order_entry: str = "rest",
        book_depth: int = 200,
        stale_after: float | None = None,
        link_id_prefix: str = "bbk",
        broker_id: str | None = None,
        recv_window: int = 5000,
        rate_limit_tier: str = "default",
        rules_refresh_s: float = 3600.0,
        poll_interval_s: float = 2.0,
        unknown_attempts: int = 3,
        unknown_interval_s: float = 0.5,
        request_timeout: float = 10.0,
        ws_reconnect_base: float = 0.5,
        ban_seconds: float = 600.0,
    ) -> None:
        if order_entry not in ("rest", "ws"):
            raise ConfigError(f"order_entry: expected 'rest' or 'ws', got {order_entry!r}")
        if book_depth not in (1, 50, 200, 1000):
            raise ConfigError(f"book_depth: expected 1, 50, 200 or 1000, got {book_depth}")
        if stale_after is not None and book_depth == 1 and stale_after < 3.0:
            raise ConfigError("stale_after: at least 3 s for depth 1 (it re-sends every 3 s)")
        if (
            len(link_id_prefix) > 8
            or not link_id_prefix.replace("-", "").replace("_", "").isalnum()
        ):
            raise ConfigError("link_id_prefix: expected up to 8 characters of [0-9A-Za-z_-]")
        self.connector_id = connector_id
        self.environment = environment
        self.credentials = credentials
        self.order_entry = order_entry
        self.book_depth = book_depth
        self.stale_after = stale_after
        self.link_id_prefix = link_id_prefix
        self.rules_refresh_s = rules_refresh_s
        self.poll_interval_s = poll_interval_s
        self.unknown_attempts = unknown_attempts
        self.unknown_interval_s = unknown_interval_s
        self.ws_reconnect_base = ws_reconnect_base
        self.rest = RestClient(
            environment,
            credentials,
            recv_window=recv_window,
            broker_id=broker_id,
            rate_limit_tier=rate_limit_tier,
            timeout=request_timeout,
            ban_seconds=ban_seconds,
        )
        self._store_arg = store
        self.store: Any = None
        self._own_store = False
        self.tracker: OrderTracker | None = None
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._backlog: list[Event] = []
        self.rules: dict[str, TradingRules] = {}
        self.instrument_items: dict[str, Any] = {}  # the raw instruments-info items
        self._pair_of_symbol: dict[str, str] = {}
        self.books: dict[str, OrderBook] = {}
        self._book_ready: dict[str, asyncio.Event] = {}
        self._book_state: dict[str, bool] = {}  # last validity we announced
        self.bands: dict[str, tuple[Decimal, Decimal]] = {}
        self.balances_cache: dict[str, Balance] = {}
        self._fees: dict[str, TradeFee] = {}
        self.public: WsSession | None = None
        self.private: WsSession | None = None
        self.trade_ws: TradeWsClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reconcile_lock = asyncio.Lock()
        self._private_was_up = False
        self._started = False
        self._stopped = False
        self._resolving: set[str] = set()
        self._started_ms = now_ms()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._open_store()
        await self.rest.sync_clock()
        await self.load_rules()
        await self._start_public()
        if self.credentials is not None:
            self._restore()
            await self._start_private()
            await self.reconcile()
            self._spawn(self._poll_loop(), "poll")
            self._spawn(self._unknown_loop(), "unknown")
        self._spawn(self._rules_loop(), "rules")
        self._spawn(self._stale_loop(), "stale")

    def _open_store(self) -> None:
        from bybitkit.store import Store

        if isinstance(self._store_arg, Store):
            self.store = self._store_arg
        else:
            self.store = Store(self._store_arg or ":memory:")
            self._own_store = True
        self.tracker = OrderTracker(self.connector_id, self._emit, self.store)

    async def _start_public(self) -> None:
        self.public = WsSession(
            self.environment.ws_url(self.public_stream),
            on_message=self._on_public,
            on_state=self._on_public_state,
            clock=self.rest.clock,
            reconnect_base=self.ws_reconnect_base,
            name=f"{self.connector_id}-public",
        )
        await self.public.start()

    async def _start_private(self) -> None:
        assert self.credentials is not None
        self.private = WsSession(
            self.environment.ws_url(Stream.PRIVATE),
            signer=make_signer(self.credentials),
            on_message=self._on_private,
            on_state=self._on_private_state,
            clock=self.rest.clock,
            reconnect_base=self.ws_reconnect_base,
            name=f"{self.connector_id}-private",
        )
        await self.private.start()
        await self.private.subscribe(self.private_topics, timeout=15)
        if self.order_entry == "ws" and self.environment.has_trade_ws:
            self.trade_ws = TradeWsClient(
                self.environment,
                self.credentials,
                clock=self.rest.clock,
                recv_window=self.rest.recv_window,
                broker_id=self.rest.broker_id,
                reconnect_base=self.ws_reconnect_base,
            )
            await self.trade_ws.start()

    async def stop(self) -> None:
        self._stopped = True  # no task is started from here on
        tasks, self._tasks = list(self._tasks), set()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for ws in (self.trade_ws, self.private, self.public):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
        await self.rest.close()
        if self.store is not None and self._own_store:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> BybitConnector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        if self._stopped:
            if inspect.iscoroutine(coro):
                coro.close()
            log.debug("%s: not starting %s: the connector is stopped", self.connector_id, name)
            return
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.connector_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- category specifics (overridden) -------------------------------------------------------

    @property
    def public_stream(self) -> Stream:
        return Stream.SPOT

    @property
    def private_topics(self) -> list[str]:
        return [f"order.{self.category}", f"execution.{self.category}", "wallet"]

    def _rules_from(self, item: Any) -> TradingRules:
        return TradingRules.from_spot(item)

    def _accepts(self, item: Any) -> bool:
        """Whether an instrument of the category is traded by this connector."""
        return True

    async def _before_order(self, pair: str) -> None:
        """Hook run before an order on ``pair`` is prepared (perpetuals: learn its mode)."""

    # -- events ---------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if not self._subscribers:
            if len(self._backlog) < 100_000:
                self._backlog.append(event)
            return
        for q in self._subscribers:
            q.put_nowait(event)

    async def events(self) -> AsyncIterator[Event]:
        """Every event from now on (the first subscriber also gets what happened before it)."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        for ev in self._backlog:
            q.put_nowait(ev)
        self._backlog.clear()
        self._subscribers.append(q)
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.remove(q)

    # -- rules and pairs ------------------------------------------------------------------------

    async def load_rules(self) -> None:
        result = await self.rest.instruments_info(self.category)
        rules = {}
        for item in result.list:
            if not self._accepts(item):
                continue
            r = self._rules_from(item)
            self.instrument_items[r.pair] = item
            rules[r.pair] = r
            self._pair_of_symbol[r.symbol] = r.pair
        self.rules = rules

    async def _rules_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rules_refresh_s)
            try:
                await self.load_rules()
            except BybitkitError as exc:
                log.warning("trading rules refresh failed: %s", exc)

    def pair_of(self, symbol: str) -> str:
        pair = self._pair_of_symbol.get(symbol)
        if pair is None:
            return symbol
        return pair

    def normalize_pair(self, pair: str) -> str:
        """``BTC-USDT`` or ``BTCUSDT`` -> ``BTC-USDT`` (a pair this connector trades)."""
        if not isinstance(pair, str) or not pair:
            raise ValidationError("pair", "a trading pair such as BTC-USDT", pair)
        if pair.upper() in self.rules:
            return pair.upper()
        found = self._pair_of_symbol.get(to_symbol(pair))
        if found is None:
            raise ValidationError(
                "pair", f"a {self.category} pair of this exchange (e.g. BTC-USDT)", pair
            )
        return found

    def trading_rules(self, pair: str) -> TradingRules:
        return self.rules[self.normalize_pair(pair)]

    # -- order books ----------------------------------------------------------------------------

    async def order_book(self, pair: str, timeout: float = 10.0) -> OrderBook:
        """The live order book of ``pair`` (subscribed on first use; waits for its snapshot)."""
        pair = self.normalize_pair(pair)
        rules = self.rules[pair]
        book = self.books.get(pair)
        if book is None:
            book = OrderBook(
                rules.symbol,
                tick_size=None,
                lot_size=None,
                depth=self.book_depth,
                stale_after=self.stale_after,
            )
            self.books[pair] = book
            self._book_ready[pair] = asyncio.Event()
            assert self.public is not None
            topics = [f"orderbook.{self.book_depth}.{rules.symbol}", f"priceLimit.{rules.symbol}"]
            await self.public.subscribe(topics, timeout=timeout)
        async with asyncio.timeout(timeout):
            await self._book_ready[pair].wait()
        return book

    def _on_public(self, msg: Any) -> None:
        if isinstance(msg, s.OrderbookMessage):
            pair = self._pair_of_symbol.get(msg.data.s)
            book = self.books.get(pair) if pair else None
            if book is None or pair is None:
                return
            was_valid = book.is_valid
            valid = book.apply(msg)
            if valid:
                self._book_ready[pair].set()
                if not self._book_state.get(pair, False):
                    self._book_state[pair] = True
                    self._emit(BookValid(now_ms(), pair, book.u))
            elif was_valid or self._book_state.get(pair, False):
                self._book_state[pair] = False
                self._emit(BookInvalid(now_ms(), pair, book.invalid_reason or "invalid"))
                self._spawn(self._resync_book(pair), f"resync-{pair}")
        elif isinstance(msg, s.PriceLimitMessage):
            pair = self._pair_of_symbol.get(msg.data.symbol)
            if pair and msg.data.buyLmt is not None and msg.data.sellLmt is not None:
                self.bands[pair] = (msg.data.buyLmt, msg.data.sellLmt)
        elif isinstance(msg, s.KlineMessage):
            self._on_kline(msg)
        else:
            self.on_public_extra(msg)

    def on_public_extra(self, msg: Any) -> None:
        """Other public messages (tickers for perpetuals)."""

    async def _resync_book(self, pair: str) -> None:
        """A gap: unsubscribe and subscribe again, which brings a new snapshot."""
        assert self.public is not None
        topic = f"orderbook.{self.book_depth}.{self.rules[pair].symbol}"
        log.warning("book gap pair=%s; resubscribing", pair)
        try:
            await self.public.unsubscribe([topic])
            await self.public.subscribe([topic], timeout=10)
        except (BybitkitError, TimeoutError) as exc:
            log.warning("book resync failed pair=%s: %s", pair, exc)

    def _on_public_state(self, state: ConnectionState) -> None:
        self._candles_on_public_state(state)
        if state is ConnectionState.CONNECTED:
            return
        for pair, book in self.books.items():
            if book.is_valid:
                book.invalidate("disconnected")
            if self._book_state.get(pair, False):
                self._book_state[pair] = False
                self._emit(BookInvalid(now_ms(), pair, "disconnected"))

    async def _stale_loop(self) -> None:
        if self.stale_after is None:
            return
        while True:
            await asyncio.sleep(min(1.0, self.stale_after / 3))
            for pair, book in self.books.items():
                if book.is_valid and book.is_stale and self._book_state.get(pair, False):
                    self._book_state[pair] = False
                    self._emit(BookInvalid(now_ms(), pair, "stale"))
                elif book.is_valid and not book.is_stale and not self._book_state.get(pair, True):
                    self._book_state[pair] = True
                    self._emit(BookValid(now_ms(), pair, book.u))

    def book_stamp(self, pair: str) -> dict[str, Any]:
        """The state of a pair's book, stamped on every order (for audit)."""
        book = self.books.get(pair)
        if book is None:
            return {"book_u": None, "book_age": None, "book_valid": None}
        return {
            "book_u": book.u,
            "book_age": round(book.age, 3),
            "book_valid": bool(book.is_valid and not book.is_stale),
        }

    # -- account --------------------------------------------------------------------------------

    def _need_credentials(self) -> None:
        if self.credentials is None:
            raise ConfigError(f"{self.connector_id}: this needs API credentials")

    async def balances(self) -> dict[str, Balance]:
        """Every coin of the unified wallet (fresh from the exchange)."""
        self._need_credentials()
        wallet = await self.rest.wallet_balance()
        self._apply_wallet(wallet.list, emit=False)
        return dict(self.balances_cache)

    def _apply_wallet(self, accounts: Iterable[Any], *, emit: bool = True) -> None:
        for acct in accounts:
            if acct.accountType not in (None, "UNIFIED"):
                continue
            balances = {}
            for c in acct.coin or []:
                wallet = c.walletBalance or ZERO
                locked = c.locked or ZERO
                # REFERENCE §10.1: what can be spent is the wallet less spot holds and the margin
                # held by derivative orders and positions.
                used = locked + (c.totalOrderIM or ZERO) + (c.totalPositionIM or ZERO)
                balances[c.coin] = Balance(c.coin, wallet, wallet - used, locked)
            self.balances_cache = balances
            if emit:
                self._emit(BalanceUpdated(now_ms(), dict(balances)))

    async def trade_fee(self, pair: str) -> TradeFee:
        pair = self.normalize_pair(pair)
        fee = self._fees.get(pair)
        if fee is None:
            self._need_credentials()
            res = await self.rest.fee_rate(self.category, symbol=self.rules[pair].symbol)
            if not res.list:
                raise ExchangeError(0, f"no fee rate for {pair}", "/v5/account/fee-rate")
            item = res.list[0]
            fee = TradeFee(pair, item.makerFeeRate or ZERO, item.takerFeeRate or ZERO)
            self._fees[pair] = fee
        return fee

    # -- disconnect cancel-all (DCP) ------------------------------------------------------------

    async def enable_dcp(self, time_window: int, *, product: str | None = None) -> bool:
        """Arm Bybit's disconnect cancel-all (REFERENCE §8.12) for ``product`` (default: ``SPOT``
        for spot, ``DERIVATIVES`` for perpetuals): set the window (``time_window`` s, 3..300),
        subscribe the product's ``dcp.*`` topic on the private stream (resubscribed after every
        reconnect), then check with query-dcp-info that the product is ``ON`` with this window.

        True when verified. False, with a warning, when DCP is not enabled for the account (Bybit
        enables it on request; nothing is subscribed then) or the new window does not show within
        ``DCP_APPLY_S`` (the topic stays armed). Other failures raise their typed error."""
        self._need_credentials()
        product = product or ("SPOT" if self.category == "spot" else "DERIVATIVES")
        topic = DCP_TOPICS.get(product)
        if topic is None:
            raise ValidationError("product", "one of SPOT, DERIVATIVES, OPTIONS", product)
        if self.private is None:
            raise ConfigError(f"{self.connector_id}: start the connector before enable_dcp")
        await self.rest.set_dcp(product, time_window)
        deadline = asyncio.get_running_loop().time() + DCP_APPLY_S
        armed = False
        while True:
            infos = (await self.rest.dcp_info()).dcpInfos
            info = next((i for i in infos if i.product == product), None)
            if info is None or info.dcpStatus != "ON":
                log.warning(
                    "DCP is not enabled for this account product=%s (Bybit enables it on "
                    "request); not armed", product,
                )  # fmt: skip
                return False
            if not armed:
                try:
                    await self.private.subscribe([topic], timeout=15)
                except TimeoutError:
                    raise NetworkError(f"{topic}: subscription not acknowledged") from None
                armed = True
            if info.timeWindow == time_window:
                log.info("DCP armed product=%s time_window=%s", product, time_window)
                return True
            if asyncio.get_running_loop().time() >= deadline:
                log.warning(
                    "DCP product=%s is armed but query-dcp-info shows time_window=%s, not %s",
                    product, info.timeWindow, time_window,
                )  # fmt: skip
                return False
            await asyncio.sleep(1.0)

    # -- orders ---------------------------------------------------------------------------------

    def open_orders(self, pair: str | None = None) -> list[Order]:
        """Every order not finished yet (UNKNOWN ones included), tracked from before it left."""
        assert self.tracker is not None
        return self.tracker.open_orders(self.normalize_pair(pair) if pair else None)

    def get_order(self, client_order_id: str) -> Order | None:
        assert self.tracker is not None
        return self.tracker.get(client_order_id)

    def new_client_order_id(self) -> str:
        return f"{self.link_id_prefix}-{uuid.uuid4().hex}"[:MAX_LINK_ID_LEN]

    def _reference_price(self, pair: str, side: Side) -> Decimal | None:
        book = self.books.get(pair)
        if book is not None and book.is_valid:
            top = book.best_ask() if side is Side.BUY else book.best_bid()
            if top is not None:
                return top[0]
        return None

    def _prepare(
        self,
        pair: str,
        side: Any,
        order_type: Any,
        amount: Any,
        price: Any,
        time_in_force: Any,
        client_order_id: str | None,
        opts: dict[str, Any],
    ) -> tuple[Order, dict[str, Any]]:
        """Validate an order and build both its tracked record and its Bybit parameters."""
        pair = self.normalize_pair(pair)
        rules = self.rules[pair]
        side = Side.parse(side, "side")
        order_type = OrderType.parse(order_type, "order_type")
        amount = to_decimal(amount, "amount")
        price = optional_decimal(price, "price")
        if order_type is OrderType.MARKET:
            if time_in_force not in (None, "IOC", TimeInForce.IOC):
                raise ValidationError(
                    "time_in_force", "IOC or nothing for a market order", time_in_force
                )
            tif = TimeInForce.IOC
            price = None
        elif order_type is OrderType.LIMIT_MAKER:
            if time_in_force not in (None, "GTC", TimeInForce.GTC):
                raise ValidationError(
                    "time_in_force", "GTC or nothing for LIMIT_MAKER", time_in_force
                )
            tif = TimeInForce.GTC
        else:
            tif = (
                TimeInForce.parse(time_in_force, "time_in_force")
                if time_in_force
                else TimeInForce.GTC
            )
        quote_amount = bool(opts.pop("quote_amount", False))
        rules.validate(
            side,
            order_type,
            amount,
            price,
            quote_amount=quote_amount,
            reference_price=self._reference_price(pair, side),
            band=self.bands.get(pair),
        )
        cid = client_order_id or self.new_client_order_id()
        if len(cid) > MAX_LINK_ID_LEN or not cid.replace("-", "").replace("_", "").isalnum():
            raise ValidationError("client_order_id", "1-36 characters of [0-9A-Za-z_-]", cid)
        order = Order(
            client_order_id=cid,
            pair=pair,
            side=side,
            order_type=order_type,
            amount=amount,
            price=price,
            time_in_force=tif,
            market_unit="quote" if quote_amount else "base",
        )
        order.extra.update(self.book_stamp(pair))
        order.extra["category"] = self.category
        params: dict[str, Any] = {
            "category": self.category,
            "symbol": rules.symbol,
            "side": side.value,
            "orderType": "Market" if order_type is OrderType.MARKET else "Limit",
            "qty": fmt(amount),
            "orderLinkId": cid,
        }
        if order_type is OrderType.MARKET:
            if self.category == "spot":
                params["marketUnit"] = "quoteCoin" if quote_amount else "baseCoin"
        else:
            assert price is not None
            params["price"] = fmt(price)
            params["timeInForce"] = "PostOnly" if order_type is OrderType.LIMIT_MAKER else tif.value
        self._extra_params(order, params, opts)
        if opts:
            raise ValidationError("options", "no unknown order options", sorted(opts))
        return order, params

    def _extra_params(self, order: Order, params: dict[str, Any], opts: dict[str, Any]) -> None:
        """Category-specific options (perpetual: reduce-only, position index...)."""

    async def place_order(
        self,
        pair: str,
        side: Side | str,
        order_type: OrderType | str,
        amount: Decimal | str | int,
        price: Decimal | str | int | None = None,
        time_in_force: TimeInForce | str | None = None,
        *,
        client_order_id: str | None = None,
        **opts: Any,
    ) -> Order:
        """Place an order. It is tracked (and listed by :meth:`open_orders`) before the request
        leaves. An exchange refusal raises its typed error (the order ends FAILED); an unknown
        outcome returns the order in state UNKNOWN, resolved in the background by its id."""
        self._need_credentials()
        await self._before_order(self.normalize_pair(pair))
        order, params = self._prepare(
            pair, side, order_type, amount, price, time_in_force, client_order_id, dict(opts)
        )
        assert self.tracker is not None
        self._check_new_id(order.client_order_id)
        self.tracker.track(order)
        await self._submit(order, params)
        return order

    def _check_new_id(self, client_order_id: str) -> None:
        """A client order id names one order forever: reusing it is refused as Bybit does."""
        assert self.tracker is not None
        if self.tracker.get(client_order_id) is not None:
            code = 170141 if self.category == "spot" else 110072
            raise DuplicateOrderId(
                code, f"client_order_id {client_order_id!r} was already used", "place_order"
            )

    async def _submit(self, order: Order, params: dict[str, Any]) -> None:
        assert self.tracker is not None
        cid = order.client_order_id
        try:
            ack = await self._send_create(params)
        except OrderOutcomeUnknown as exc:
            self.tracker.unknown(cid, exc.cause)
            self._spawn(self._resolve_unknown(cid), f"resolve-{cid}")
            return
        except asyncio.CancelledError:
            # The caller gave up while the request was out: it may have reached the exchange.
            # UNKNOWN, resolved in the background like a timeout; never PENDING_SUBMIT forever.
            if not self._stopped:
                self.tracker.unknown(cid, "the submitting task was cancelled")
                self._spawn(self._resolve_unknown(cid), f"resolve-{cid}")
            raise
        except NetworkError as exc:
            # The request never left (connection refused): nothing happened on the exchange.
            self.tracker.failed(cid, f"not sent: {exc}")
            raise
        except BybitkitError as exc:
            # Refused (a retCode, an IP ban, HTTP 4xx/429): the exchange did not act on it.
            self.tracker.failed(cid, str(exc))
            raise
        self.tracker.acked(cid, ack.orderId)
        self._after_ack(order, ack, params)

    def _after_ack(self, order: Order, ack: Any, params: dict[str, Any]) -> None:
        """Hook: perpetuals check for a clamped price."""

    async def _send_create(self, params: dict[str, Any]) -> Any:
        if self.trade_ws is not None and self.trade_ws.connected:
            try:
                return await self.trade_ws.place_order(**params)
            except NetworkError:
                pass  # never left (the stream is down): REST takes over
        return await self.rest.place_order(**params)

    async def place_orders(self, orders: Sequence[dict[str, Any]]) -> list[Order]:
        """Batch place (Bybit's create-batch: <= 10 spot, <= 20 linear); every order is tracked
        first; per-order refusals end those orders FAILED without raising."""
        self._need_credentials()
        assert self.tracker is not None
        cap = 10 if self.category == "spot" else 20
        if not orders or len(orders) > cap:
            raise ValidationError("orders", f"1 to {cap} orders", len(orders))
        prepared = []
        for spec in orders:
            spec = dict(spec)
            await self._before_order(self.normalize_pair(spec["pair"]))
            prepared.append(
                self._prepare(
                    spec.pop("pair"), spec.pop("side"), spec.pop("order_type"),
                    spec.pop("amount"), spec.pop("price", None), spec.pop("time_in_force", None),
                    spec.pop("client_order_id", None), spec,
                )
            )  # fmt: skip
        for order, _ in prepared:
            self._check_new_id(order.client_order_id)
        for order, _ in prepared:
            self.tracker.track(order)
        items = [{k: v for k, v in p.items() if k != "category"} for _, p in prepared]
        try:
            results = await self.rest.place_batch(self.category, items)
        except BatchOutcomeUnknown as exc:
            for order, _ in prepared:
                self.tracker.unknown(order.client_order_id, exc.cause)
                self._spawn(self._resolve_unknown(order.client_order_id), "resolve")
            return [o for o, _ in prepared]
        except BybitkitError as exc:
            for order, _ in prepared:
                self.tracker.failed(order.client_order_id, str(exc))
            raise
        for (order, _), item in zip(prepared, results, strict=False):
            if item.ok:
                self.tracker.acked(order.client_order_id, item.result.orderId)
            else:
                self.tracker.failed(order.client_order_id, f"retCode {item.code}: {item.msg}")
        return [o for o, _ in prepared]

    def _id_params(self, order: Order) -> dict[str, Any]:
        params: dict[str, Any] = {
            "category": self.category,
            "symbol": self.rules[order.pair].symbol,
        }
        if order.exchange_order_id:
            params["orderId"] = order.exchange_order_id
        else:
            params["orderLinkId"] = order.client_order_id
        return params

    def _tracked(self, client_order_id: str) -> Order:
        assert self.tracker is not None
        order = self.tracker.get(client_order_id)
        if order is None:
            raise ValidationError(
                "client_order_id", "an order tracked by this connector", client_order_id
            )
        return order

    async def cancel_order(self, client_order_id: str) -> Order:
        """Cancel one order. If the exchange says it already ended, its state is refreshed."""
        self._need_credentials()
        order = self._tracked(client_order_id)
        params = self._id_params(order)
        try:
            if self.trade_ws is not None and self.trade_ws.connected:
                try:
                    await self.trade_ws.cancel_order(**params)
                except NetworkError:
                    await self.rest.cancel_order(**params)
            else:
                await self.rest.cancel_order(**params)
        except (OrderNotFound, OrderNotActive):
            await self.refresh_order(order)
        return order

    async def cancel_all(self, pair: str | None = None) -> list[str]:
        """Cancel every open order (of ``pair``); returns the client ids Bybit cancelled."""
        self._need_credentials()
        params: dict[str, Any] = {"category": self.category}
        if pair is not None:
            params["symbol"] = self.trading_rules(pair).symbol
        elif self.category != "spot":
            params["settleCoin"] = "USDT"
        res = await self.rest.cancel_all(**params)
        ids = [i.orderLinkId or f"ext-{i.orderId}" for i in res.list]
        if pair is None and self.category != "spot":
            res2 = await self.rest.cancel_all(category=self.category, settleCoin="USDC")
            ids += [i.orderLinkId or f"ext-{i.orderId}" for i in res2.list]
        return ids

    async def cancel_orders(self, client_order_ids: Sequence[str]) -> list[bool]:
        """Batch cancel; True where Bybit accepted the cancel."""
        self._need_credentials()
        orders = [self._tracked(c) for c in client_order_ids]
        items = [{k: v for k, v in self._id_params(o).items() if k != "category"} for o in orders]
        results = await self.rest.cancel_batch(self.category, items)
        return [r.ok for r in results]

    async def amend_order(
        self,
        client_order_id: str,
        price: Decimal | str | None = None,
        amount: Decimal | str | None = None,
    ) -> Order:
        """Change an open limit order's price and/or total amount."""
        self._need_credentials()
        order = self._tracked(client_order_id)
        new_price = optional_decimal(price, "price")
        new_amount = optional_decimal(amount, "amount")
        if new_price is None and new_amount is None:
            raise ValidationError("price/amount", "at least one of them")
        rules = self.rules[order.pair]
        rules.validate(
            order.side,
            order.order_type,
            new_amount if new_amount is not None else order.amount,
            new_price if new_price is not None else order.price,
            band=self.bands.get(order.pair),
        )
        params = self._id_params(order)
        if new_price is not None:
            params["price"] = fmt(new_price)
            order.extra["requested_price"] = str(new_price)
            order.extra.pop("clamp_reported", None)
        if new_amount is not None:
            params["qty"] = fmt(new_amount)
        if self.trade_ws is not None and self.trade_ws.connected:
            try:
                await self.trade_ws.amend_order(**params)
                return order
            except NetworkError:
                pass
        await self.rest.amend_order(**params)
        return order

    async def refresh_order(self, order: Order) -> bool:
        """Ask the exchange about one order (by id); True when it knows it."""
        params: dict[str, Any] = {"category": self.category}
        if order.exchange_order_id:
            params["orderId"] = order.exchange_order_id
        else:
            params["orderLinkId"] = order.client_order_id
        found = (await self.rest.open_orders(**params)).list
        if not found:
            found = (await self.rest.order_history(**params)).list
        for item in found:
            self._on_order_item(item)
        if found:
            await self._fetch_fills_of(order)
        return bool(found)

    async def _fetch_fills_of(self, order: Order) -> None:
        if not order.exchange_order_id:
            return
        res = await self.rest.executions(
            category=self.category, orderId=order.exchange_order_id, limit=100
        )
        for e in reversed(res.list):
            self._on_execution_item(e)

    # -- unknown outcomes -----------------------------------------------------------------------

    async def _resolve_unknown(self, client_order_id: str) -> None:
        """Query an order whose submit outcome is unknown until the exchange answers clearly.
        Only several consecutive explicit "not found" answers end it FAILED."""
        if client_order_id in self._resolving:
            return
        self._resolving.add(client_order_id)
        try:
            misses = 0
            delay = self.unknown_interval_s
            while True:
                order = self.get_order(client_order_id)
                if order is None or order.state is not OrderState.UNKNOWN:
                    return
                try:
                    if await self.refresh_order(order):
                        return
                    misses += 1
                except (BybitkitError, TimeoutError) as exc:
                    log.info("unknown order query failed id=%s: %s", client_order_id, exc)
                if misses >= self.unknown_attempts:
                    assert self.tracker is not None
                    self.tracker.failed(client_order_id, "not found on the exchange")
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            self._resolving.discard(client_order_id)

    async def _unknown_loop(self) -> None:
        """Safety net: every UNKNOWN order has a resolver (e.g. restored after a restart)."""
        while True:
            assert self.tracker is not None
            for order in self.tracker.unknown_orders():
                if order.client_order_id not in self._resolving:
                    self._spawn(self._resolve_unknown(order.client_order_id), "resolve")
            await asyncio.sleep(max(self.unknown_interval_s, 0.5))

    # -- private stream and reconciliation ------------------------------------------------------

    def _on_private(self, msg: Any) -> None:
        if isinstance(msg, s.OrderMessage):
            for order in msg.data:
                if order.category in (None, self.category):
                    self._on_order_item(order)
        elif isinstance(msg, s.ExecutionMessage):
            for execution in msg.data:
                if execution.category in (None, self.category):
                    self._on_execution_item(execution)
        elif isinstance(msg, s.WalletMessage):
            self._apply_wallet(msg.data)
        else:
            self.on_private_extra(msg)

    def on_private_extra(self, msg: Any) -> None:
        """Other private messages (positions for perpetuals)."""

    def _order_update(self, item: s.Order) -> OrderUpdate:
        state = STATUS.get(item.orderStatus, OrderState.OPEN)
        reason = None
        if state in (OrderState.CANCELLED, OrderState.FAILED):
            reason = cancel_reason(item.rejectReason, item.cancelType, item.orderType)
        qty = item.qty
        if item.marketUnit == "quoteCoin":
            qty = None  # a quote amount: not comparable with base fills
        return OrderUpdate(
            exchange_order_id=item.orderId,
            client_order_id=item.orderLinkId,
            pair=self.pair_of(item.symbol),
            side=Side.parse(item.side),
            state=state,
            cum_filled=item.cumExecQty or ZERO,
            amount=qty,
            price=item.price if item.price else None,
            order_type=OrderType.MARKET if item.orderType == "Market" else OrderType.LIMIT,
            reason=reason,
            exchange_state=item.orderStatus,
            updated_ms=item.updatedTime or 0,
        )

    def _on_order_item(self, item: s.Order) -> None:
        assert self.tracker is not None
        self.tracker.on_update(self._order_update(item))

    def _on_execution_item(self, item: s.Execution) -> None:
        assert self.tracker is not None
        if item.execType not in (None, "Trade", "AdlTrade", "BustTrade"):
            self.on_other_execution(item)
            return
        fill = Fill(
            exec_id=item.execId,
            client_order_id=item.orderLinkId,
            exchange_order_id=item.orderId,
            pair=self.pair_of(item.symbol),
            side=Side.parse(item.side or "Buy"),
            price=item.execPrice or ZERO,
            qty=item.execQty or ZERO,
            fee=item.execFee or ZERO,
            fee_currency=item.feeCurrency or self._fee_currency(item),
            is_maker=bool(item.isMaker),
            ts_ms=item.execTime or now_ms(),
            fee_rate=item.feeRate,
        )
        self.tracker.on_fill(fill)

    def on_other_execution(self, item: s.Execution) -> None:
        """Funding and other non-trade executions (perpetuals)."""

    def _fee_currency(self, item: s.Execution) -> str:
        rules = self.rules.get(self.pair_of(item.symbol))
        if rules is None:
            return ""
        if self.category != "spot":
            return rules.settle_coin
        return rules.base_coin if item.side == "Buy" else rules.quote_coin

    def _on_private_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.CONNECTED:
            if self._private_was_up:
                self._spawn(self._reconcile_after_reconnect(), "reconcile")
            self._private_was_up = True

    async def _reconcile_after_reconnect(self) -> None:
        """What the stream missed while it was down is recovered here only: a reconciliation
        that fails (a 10002 or 5xx burst, a timeout) is retried, with a growing pause, until one
        completes; never abandoned."""
        delay = 0.5
        while True:
            try:
                await self.reconcile()
                return
            except (BybitkitError, TimeoutError) as exc:
                log.warning("reconcile after reconnect failed: %s; retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    @property
    def private_up(self) -> bool:
        return self.private is not None and self.private.connected

    async def reconcile(self) -> None:
        """Bring orders, fills and balances in line with the exchange: open orders, the orders
        we track that are no longer open, executions since the last one we saw, the wallet."""
        async with self._reconcile_lock:
            assert self.tracker is not None
            seen_open: set[str] = set()
            for extra in self._open_filters():
                async for item in self.rest.paginate(
                    self.rest.open_orders, category=self.category, limit=50, **extra
                ):
                    seen_open.add(item.orderId)
                    self._on_order_item(item)
            for order in self.tracker.open_orders():
                if order.state is OrderState.UNKNOWN:
                    continue  # its resolver asks for it
                if order.exchange_order_id and order.exchange_order_id in seen_open:
                    continue
                try:
                    if (
                        not await self.refresh_order(order)
                        and order.state is OrderState.PENDING_SUBMIT
                    ):
                        continue
                except BybitkitError as exc:
                    log.info("order refresh failed id=%s: %s", order.client_order_id, exc)
            await self._fetch_executions_since()
            await self._reconcile_extra()
            wallet = await self.rest.wallet_balance()
            self._apply_wallet(wallet.list)

    def _open_filters(self) -> list[dict[str, Any]]:
        """The open-order queries that cover this category (linear needs a settle coin)."""
        return [{}]

    async def _reconcile_extra(self) -> None:
        """Category-specific reconciliation (perpetuals: positions)."""

    async def _fetch_executions_since(self) -> None:
        last = self.store.last_fill(self.connector_id) if self.store is not None else None
        since = (last.ts_ms if last is not None else self._started_ms) - 60_000
        since = max(since, now_ms() - 7 * 86_400_000 + 60_000)
        items = [
            e
            async for e in self.rest.paginate(
                self.rest.executions, category=self.category, startTime=since, limit=100
            )
        ]
        for item in reversed(items):  # oldest first
            self._on_execution_item(item)

    async def _poll_loop(self) -> None:
        """While the private stream is down, REST polling takes over."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if self.private_up:
                continue
            try:
                await self.reconcile()
            except (BybitkitError, TimeoutError) as exc:
                log.info("poll failed: %s", exc)

    def _restore(self) -> None:
        """Reload the orders a previous run left open (UNKNOWN ones too) from the store."""
        assert self.tracker is not None and self.store is not None
        restored = []
        for rec in self.store.open_orders(self.connector_id):
            state, reason = OrderState[rec.state], rec.reason
            if state is OrderState.PENDING_SUBMIT:
                # The last run ended between tracking it and hearing the answer: the request
                # may have left. Resolved by its id like any unknown outcome, never left pending.
                state, reason = OrderState.UNKNOWN, "restarted before the submit was answered"
            order = Order(
                client_order_id=rec.client_order_id,
                pair=rec.pair,
                side=Side[rec.side],
                order_type=OrderType[rec.order_type],
                amount=rec.amount,
                price=rec.price,
                time_in_force=TimeInForce[rec.time_in_force],
                exchange_order_id=rec.exchange_order_id,
                state=state,
                reason=reason,
                reduce_only=rec.reduce_only,
                position_idx=rec.position_idx,
                created_ms=rec.created_ms,
                updated_ms=rec.updated_ms,
                market_unit=str(rec.extra.get("market_unit", "base")),
            )
            order.extra["category"] = rec.category
            # Fills are recounted from the store, so a restart neither loses nor doubles one.
            for f in self.store.fills(self.connector_id, client_order_id=rec.client_order_id):
                order.filled += f.qty
                order.filled_value += f.price * f.qty
                order.fees[f.fee_currency] = order.fees.get(f.fee_currency, ZERO) + f.fee
            restored.append(order)
        self.tracker.restore(restored)
        if restored:
            log.info("restored %d open orders from the store", len(restored))


__all__ = ["BybitConnector", "TradeFee", "cancel_reason"]
