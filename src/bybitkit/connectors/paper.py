"""Paper trading on live data: ``bybit_paper_trade`` and ``bybit_perpetual_paper_trade``.

Public data comes from a real source (mainnet, testnet, or a sandbox); orders, balances and
positions live locally, in the sandbox's own exchange core (:class:`bybitkit.sandbox.exchange.
Exchange`, on the same ``matching`` engine), behind the exact API, events and error classes of
the live connectors: the paper connectors *are* the live connectors, with their private side
answered locally (the same validation codes and messages, the same order, execution, position
and wallet messages, decoded by the same code).

Fill model (stated, and configurable where it is an assumption):

* a marketable order fills against the visible book, level by level, partially if the depth
  runs out; IOC and FOK are honoured. The visible levels are placed in the local engine for the
  duration of the order, so every engine rule applies unchanged; our own fills do not deplete
  the real book for later orders (no market impact);
* a resting limit order waits behind the queue that was ahead of it: the size visible at its
  price when it was placed. Public trades at its price eat that queue first; only traded volume
  beyond it fills the order. A trade through its price (a sell below a bid, a buy above an ask)
  means its level was swept: it fills fully. When the visible size at its price shrinks, the
  shrink is assumed to come from behind it (``queue_model="behind"``, the default: the queue
  ahead only drops to the level's new size), or from in front of it (``"front"``), or
  proportionally (``"proportional"``);
* a PostOnly (LIMIT_MAKER) that would cross the visible book is accepted, then cancelled with
  reason ``post_only_would_take``, as live;
* fees from a configurable maker/taker schedule (default: Bybit's base tier);
* perpetuals: leverage, margin, one-way or hedge positions, mark-price PnL from the live mark;
  funding accrued at each live funding time with the live rate, recorded like a live payment.

State (balances, positions, open orders with their queue) is kept in the SQLite store, so a
restarted paper session resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.connectors.spot import SpotConnector
from bybitkit.errors import ConfigError, error_for_code
from bybitkit.money import fmt, to_decimal
from bybitkit.sandbox.accounts import DEFAULT_FEES
from bybitkit.sandbox.exchange import Event, Exchange, Market, SandboxError, SOrder, now_ms
from bybitkit.sandbox.instruments import instrument_from_info
from bybitkit.v5 import schemas as s
from bybitkit.v5.codec import decode
from bybitkit.v5.rest import BatchItem, RestClient, new_order_link_id
from bybitkit.v5.ws import decode_frame

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUE_MODELS = ("behind", "front", "proportional")
DEFAULT_PAPER_BALANCES = {"USDT": "100000", "USDC": "100000", "BTC": "1", "ETH": "10"}


class PaperEngine:
    """The local exchange of a paper connector; the live book is its only liquidity."""

    def __init__(
        self,
        items: Mapping[str, Any],
        balances: Mapping[str, Any],
        fees: Mapping[str, tuple[Decimal, Decimal]],
        queue_model: str,
    ) -> None:
        if queue_model not in QUEUE_MODELS:
            raise ConfigError(
                f"queue_model: expected one of {', '.join(QUEUE_MODELS)}, got {queue_model!r}"
            )
        self.queue_model = queue_model
        instruments = []
        for item in items.values():
            try:
                instruments.append(instrument_from_info(item))
            except (ArithmeticError, AttributeError, TypeError, ValueError) as exc:
                log.info("paper: instrument %s skipped: %s", getattr(item, "symbol", "?"), exc)
        self.ex = Exchange(instruments, seed=0, history_minutes=1)
        self.account = self.ex.new_account(name="paper")
        for coin, amount in balances.items():
            self.account.credit(coin, to_decimal(amount, f"balances[{coin}]"))
        self.account.fees.update(fees)
        self.queue: dict[str, int] = {}  # order id -> lots ahead of it at its price
        self.books: dict[str, Any] = {}  # symbol -> the connector's live OrderBook

    def market(self, symbol: str) -> Market:
        for (_, sym), m in self.ex.markets.items():
            if sym == symbol:
                return m
        raise SandboxError(10001, f"params error: symbol invalid: {symbol}")

    # -- the visible book as liquidity ----------------------------------------------------------

    @contextmanager
    def visible(self, market: Market, taker_buy: bool | None) -> Any:
        """Place the live book's levels (the side an order would take; both when None) as the
        house's resting orders for the time of one operation, then take them away."""
        placed: list[SOrder] = []
        book = self.books.get(market.inst.symbol)
        if book is not None and book.is_valid:
            inst = market.inst
            sides = [True, False] if taker_buy is None else [taker_buy]
            for buy in sides:
                levels = book.asks() if buy else book.bids()
                for price, size in levels:
                    if price % inst.tick_size or size % inst.lot_size:
                        continue
                    ticks, lots = inst.to_ticks(price), inst.to_lots(size)
                    side = "Sell" if buy else "Buy"
                    placed.append(
                        self.ex.order_for(self.ex.house, market, side, lots, ticks, "GTC")
                    )
        try:
            yield
        finally:
            for order in placed:
                self.ex.house_cancel(order)

    def taker_side(self, params: Mapping[str, Any]) -> bool:
        return str(params.get("side", "")).lower() == "buy"

    # -- orders ---------------------------------------------------------------------------------

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        market = self.market(str(params.get("symbol", "")).replace("-", "").upper())
        if params.get("triggerPrice") not in (None, ""):
            return self.ex.create_order(self.account, params)  # waits untriggered: no liquidity yet
        with self.visible(market, self.taker_side(params)):
            result = self.ex.create_order(self.account, params)
        order = self.ex.by_id.get(result["orderId"])
        if order is not None and order.is_open and order.engine is not None:
            self.queue[order.order_id] = self._visible_at(market, order)
        return result

    def amend(self, params: dict[str, Any]) -> dict[str, Any]:
        order = self.ex.find_order(self.account, params)
        with self.visible(order.market, order.side == "Buy"):
            result = self.ex.amend_order(self.account, params)
        if order.is_open and params.get("price") not in (None, ""):
            self.queue[order.order_id] = self._visible_at(order.market, order)
        return result

    def _visible_at(self, market: Market, order: SOrder) -> int:
        """Lots visible at the order's price on its own side (the queue ahead of it)."""
        book = self.books.get(market.inst.symbol)
        if book is None or order.price is None:
            return 0
        levels = book.bids() if order.side == "Buy" else book.asks()
        for price, size in levels:
            if price == order.price:
                return market.inst.to_lots(size)
        return 0

    def _resting(self, market: Market, side: str) -> list[SOrder]:
        return [
            o
            for o in self.ex.open_orders_of(self.account)
            if o.market is market and o.side == side and o.engine is not None
        ]

    def _fill(self, order: SOrder, lots: int) -> None:
        """The market takes ``lots`` of our resting order at its price (we are the maker)."""
        market = order.market
        assert order.engine is not None and order.price is not None
        lots = min(lots, order.engine.qty)
        if lots <= 0:
            return
        taker = "Sell" if order.side == "Buy" else "Buy"
        self.ex.order_for(self.ex.house, market, taker, lots, order.engine.price, "IOC")
        if not order.is_open:
            self.queue.pop(order.order_id, None)

    def on_trade(self, symbol: str, taker_side: str, price: Decimal, size: Decimal) -> None:
        market = self.market(symbol)
        inst = market.inst
        if price % inst.tick_size or size % inst.lot_size:
            return
        market.last_ticks = inst.to_ticks(price)
        market.trades_seen = True
        side = "Buy" if taker_side == "Sell" else "Sell"  # the makers a trade can reach
        volume = inst.to_lots(size)
        for order in sorted(self._resting(market, side), key=lambda o: o.engine.seq):  # type: ignore[union-attr]
            assert order.price is not None and order.engine is not None
            through = price < order.price if side == "Buy" else price > order.price
            if through:
                self._fill(order, order.engine.qty)
            elif price == order.price:
                ahead = self.queue.get(order.order_id, 0)
                eaten = min(ahead, volume)
                self.queue[order.order_id] = ahead - eaten
                volume -= eaten
                if volume > 0:
                    take = min(volume, order.engine.qty)
                    self._fill(order, take)
                    volume -= take
        self.ex.deriv.on_prices(market)
        self.ex.flush()

    def follow_prices(self, market: Market, book: Any) -> None:
        """Live prices into the engine: until a trade prints, the mid is the last price; the
        index follows the mid unless a ticker gives it (perpetuals)."""
        mid = book.mid()
        if mid is None:
            return
        ticks = max(1, int(mid / market.inst.tick_size))
        if not market.trades_seen:
            market.last_ticks = ticks
        if market.mark_exact is None:
            market.index_ticks = ticks
            market.mark_ticks = ticks

    def on_book(self, symbol: str) -> None:
        """The visible book changed: cap each queue at its level's size (the model decides how
        a shrink counts), and fill what the book now crosses."""
        market = self.market(symbol)
        book = self.books.get(symbol)
        if book is None or not book.is_valid:
            return
        self.follow_prices(market, book)
        inst = market.inst
        for order in self.ex.open_orders_of(self.account):
            if order.market is not market or order.engine is None or order.price is None:
                continue
            # Whatever the model, the queue ahead cannot be longer than its whole level.
            visible = self._visible_at(market, order)
            if visible < self.queue.get(order.order_id, 0):
                self.queue[order.order_id] = visible
            best = book.best_ask() if order.side == "Buy" else book.best_bid()
            if best is not None:
                crossed = best[0] <= order.price if order.side == "Buy" else best[0] >= order.price
                if crossed:
                    self._fill(order, min(order.engine.qty, inst.to_lots(best[1])))
        self.ex.flush()

    def on_book_shrink(self, symbol: str, previous: dict[Decimal, Decimal]) -> None:
        """Queue models beyond "behind": a shrink at an order's level also shortens its queue."""
        if self.queue_model == "behind":
            return
        market = self.market(symbol)
        book = self.books.get(symbol)
        if book is None:
            return
        now = dict(book.bids()) | dict(book.asks())
        inst = market.inst
        for order in self.ex.open_orders_of(self.account):
            if order.market is not market or order.price is None:
                continue
            before, after = previous.get(order.price), now.get(order.price, Decimal(0))
            if before is None or after >= before:
                continue
            shrink = inst.to_lots(before - after)
            ahead = self.queue.get(order.order_id, 0)
            if self.queue_model == "front":
                self.queue[order.order_id] = max(0, ahead - shrink)
            else:
                total = inst.to_lots(before)
                cut = shrink * ahead // total if total else 0
                self.queue[order.order_id] = max(0, ahead - cut)


class PaperRest:
    """Answers the connector's private REST calls from the paper engine, in Bybit's shapes;
    public calls go to the real source."""

    def __init__(self, real: RestClient, engine_ref: Callable[[], PaperEngine]) -> None:
        self.real = real
        self._engine = engine_ref

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    @property
    def engine(self) -> PaperEngine:
        return self._engine()

    def _call(self, path: str, fn: Callable[[], Any], result_type: type[T]) -> T:
        try:
            result = fn()
        except SandboxError as err:
            raise error_for_code(err.code, err.msg, path) from None
        finally:
            self.engine.ex.flush()
        return decode(result_type, json.dumps(result), path)

    async def paginate(
        self, fetch: Callable[..., Awaitable[Any]], /, **params: Any
    ) -> AsyncIterator[Any]:
        async for item in self.real.paginate(fetch, **params):
            yield item

    async def place_order(self, **params: Any) -> s.OrderIdResult:
        if not params.get("orderLinkId"):
            params["orderLinkId"] = new_order_link_id()
        return self._call("/v5/order/create", lambda: self.engine.create(params), s.OrderIdResult)

    async def amend_order(self, **params: Any) -> s.OrderIdResult:
        return self._call("/v5/order/amend", lambda: self.engine.amend(params), s.OrderIdResult)

    async def cancel_order(self, **params: Any) -> s.OrderIdResult:
        ex = self.engine.ex
        return self._call(
            "/v5/order/cancel",
            lambda: ex.cancel_order(self.engine.account, params),
            s.OrderIdResult,
        )

    async def cancel_all(self, **params: Any) -> s.CancelAllResult:
        ex = self.engine.ex
        return self._call(
            "/v5/order/cancel-all",
            lambda: ex.cancel_all(self.engine.account, params),
            s.CancelAllResult,
        )

    async def _batch(
        self,
        path: str,
        category: str,
        orders: Sequence[Mapping[str, Any]],
        op: Callable[[dict[str, Any]], Any],
    ) -> list[BatchItem[Any]]:
        out: list[BatchItem[Any]] = []
        for spec in orders:
            params = {**spec, "category": category}
            if path.endswith("create-batch") and not params.get("orderLinkId"):
                params["orderLinkId"] = new_order_link_id()
            item = s.BatchCreateItem(
                category=category,
                symbol=str(params.get("symbol")),
                orderLinkId=params.get("orderLinkId"),
            )
            try:
                res = op(params)
                item = s.BatchCreateItem(
                    category=category,
                    symbol=str(params.get("symbol")),
                    orderId=res["orderId"],
                    orderLinkId=res["orderLinkId"],
                )
                out.append(BatchItem(item, 0, "OK"))
            except SandboxError as err:
                out.append(BatchItem(item, err.code, err.msg))
        self.engine.ex.flush()
        return out

    async def place_batch(
        self, category: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[BatchItem[Any]]:
        return await self._batch("/v5/order/create-batch", category, orders, self.engine.create)

    async def cancel_batch(
        self, category: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[BatchItem[Any]]:
        ex = self.engine.ex
        return await self._batch(
            "/v5/order/cancel-batch",
            category,
            orders,
            lambda p: ex.cancel_order(self.engine.account, p),
        )

    async def open_orders(self, **params: Any) -> s.OrderListResult:
        ex = self.engine.ex
        return self._call(
            "/v5/order/realtime",
            lambda: ex.list_orders(self.engine.account, params, history=False),
            s.OrderListResult,
        )

    async def order_history(self, **params: Any) -> s.OrderListResult:
        ex = self.engine.ex
        return self._call(
            "/v5/order/history",
            lambda: ex.list_orders(self.engine.account, params, history=True),
            s.OrderListResult,
        )

    async def executions(self, **params: Any) -> s.ExecutionListResult:
        ex = self.engine.ex
        return self._call(
            "/v5/execution/list",
            lambda: ex.list_executions(self.engine.account, params),
            s.ExecutionListResult,
        )

    async def wallet_balance(
        self, account_type: str = "UNIFIED", coin: str | None = None
    ) -> s.WalletBalanceResult:
        ex = self.engine.ex
        coins = coin.split(",") if coin else None
        return self._call(
            "/v5/account/wallet-balance",
            lambda: {"list": [ex.wallet(self.engine.account, coins)]},
            s.WalletBalanceResult,
        )

    async def fee_rate(self, category: str, **params: Any) -> s.FeeRateResult:
        maker, taker = self.engine.account.fee_rates(category)
        item = {
            "symbol": params.get("symbol", ""),
            "makerFeeRate": fmt(maker),
            "takerFeeRate": fmt(taker),
        }
        return self._call("/v5/account/fee-rate", lambda: {"list": [item]}, s.FeeRateResult)

    async def account_info(self) -> s.AccountInfo:
        info = {
            "unifiedMarginStatus": 5,
            "marginMode": "REGULAR_MARGIN",
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
            "updatedTime": str(now_ms()),
        }
        return self._call("/v5/account/info", lambda: info, s.AccountInfo)

    async def positions(self, **params: Any) -> s.PositionListResult:
        d = self.engine.ex.deriv
        return self._call(
            "/v5/position/list",
            lambda: d.position_list(self.engine.account, params),
            s.PositionListResult,
        )

    async def set_leverage(
        self, category: str, symbol: str, buy_leverage: Any, sell_leverage: Any
    ) -> s.EmptyResult:
        d = self.engine.ex.deriv
        params = {
            "symbol": symbol,
            "buyLeverage": fmt(Decimal(str(buy_leverage))),
            "sellLeverage": fmt(Decimal(str(sell_leverage))),
        }
        return self._call(
            "/v5/position/set-leverage",
            lambda: d.set_leverage(self.engine.account, params),
            s.EmptyResult,
        )

    async def switch_position_mode(self, **params: Any) -> s.EmptyResult:
        d = self.engine.ex.deriv
        return self._call(
            "/v5/position/switch-mode",
            lambda: d.switch_mode(self.engine.account, params),
            s.EmptyResult,
        )

    async def trading_stop(self, **params: Any) -> s.EmptyResult:
        d = self.engine.ex.deriv
        return self._call(
            "/v5/position/trading-stop",
            lambda: d.trading_stop(self.engine.account, params),
            s.EmptyResult,
        )

    async def closed_pnl(self, **params: Any) -> s.ClosedPnlResult:
        d = self.engine.ex.deriv
        return self._call(
            "/v5/position/closed-pnl",
            lambda: d.closed_pnl(self.engine.account, params),
            s.ClosedPnlResult,
        )


class _PaperMixin:
    """What both paper connectors add to their live twin."""

    def _paper_init(
        self,
        balances: Mapping[str, Any] | None,
        fees: Mapping[str, tuple[Any, Any]] | None,
        queue_model: str,
    ) -> None:
        self._paper_balances = dict(balances or DEFAULT_PAPER_BALANCES)
        fee_table = dict(DEFAULT_FEES)
        for category, (maker, taker) in (fees or {}).items():
            fee_table[category] = (to_decimal(maker, "maker"), to_decimal(taker, "taker"))
        self._paper_fees = fee_table
        if queue_model not in QUEUE_MODELS:
            raise ConfigError(
                f"queue_model: expected one of {', '.join(QUEUE_MODELS)}, got {queue_model!r}"
            )
        self.queue_model = queue_model
        self.engine: PaperEngine | None = None
        self._prev_levels: dict[str, dict[Decimal, Decimal]] = {}

    async def enable_dcp(self, time_window: int, *, product: str | None = None) -> bool:
        """Always False: the private side is local, there is no connection for Bybit's DCP to
        watch (and nothing is sent to Bybit)."""
        log.info("DCP: not available for paper trading (orders are local)")
        return False


class PaperSpotConnector(_PaperMixin, SpotConnector):
    """``bybit_paper_trade``: spot on live data, trading locally."""

    def __init__(
        self,
        *args: Any,
        balances: Mapping[str, Any] | None = None,
        fees: Mapping[str, tuple[Any, Any]] | None = None,
        queue_model: str = "behind",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._paper_init(balances, fees, queue_model)
        self.rest = PaperRest(self.rest, self._the_engine)  # type: ignore[assignment]

    def _the_engine(self) -> PaperEngine:
        if self.engine is None:
            raise ConfigError("the paper connector is not started")
        return self.engine

    def _need_credentials(self) -> None:
        """Paper trading needs no keys."""

    @property
    def private_up(self) -> bool:
        return True  # the private side is local: always there

    async def _start(self) -> None:
        self._open_store()
        await self.rest.sync_clock()
        await self.load_rules()
        self.engine = PaperEngine(
            self.instrument_items,
            self._saved_balances() or self._paper_balances,
            self._paper_fees,
            self.queue_model,
        )
        self.engine.ex.listeners.append(self._on_engine_events)
        await self._start_public()
        self._restore()
        await self._paper_restore()
        await self.reconcile()
        self._spawn(self._rules_loop(), "rules")
        self._spawn(self._stale_loop(), "stale")
        self._spawn(self._paper_extra_loop(), "paper")

    async def _paper_extra_loop(self) -> None:
        """Perpetual paper: funding on the live schedule (spot: nothing)."""

    # -- live data into the engine --------------------------------------------------------------

    async def order_book(self, pair: str, timeout: float = 10.0) -> Any:
        book = await super().order_book(pair, timeout)
        assert self.engine is not None and self.public is not None
        symbol = self.rules[self.normalize_pair(pair)].symbol
        if symbol not in self.engine.books:
            self.engine.books[symbol] = book
            self.engine.follow_prices(self.engine.market(symbol), book)
            await self.public.subscribe([f"publicTrade.{symbol}"], timeout=timeout)
        return book

    async def _before_order(self, pair: str) -> None:
        await super()._before_order(pair)
        await self.order_book(pair)  # the visible book is the liquidity
        band = self.bands.get(pair)
        if band is not None and self.engine is not None:
            self.engine.market(self.rules[pair].symbol).band_override = band

    def _on_public(self, msg: Any) -> None:
        symbol = None
        if isinstance(msg, s.OrderbookMessage):
            symbol = msg.data.s
            book = self.engine.books.get(symbol) if self.engine else None
            if book is not None:
                self._prev_levels[symbol] = dict(book.bids()) | dict(book.asks())
        super()._on_public(msg)
        if self.engine is None:
            return
        if symbol is not None and symbol in self.engine.books:
            prev = self._prev_levels.get(symbol, {})
            self.engine.on_book_shrink(symbol, prev)
            self.engine.on_book(symbol)
        elif isinstance(msg, s.PublicTradeMessage):
            for t in msg.data:
                try:
                    self.engine.on_trade(t.s, t.S, t.p, t.v)
                except SandboxError:
                    continue
        elif isinstance(msg, s.PriceLimitMessage):
            pair = self._pair_of_symbol.get(msg.data.symbol)
            if pair and pair in self.bands:
                self.engine.market(msg.data.symbol).band_override = self.bands[pair]

    def _on_engine_events(self, events: list[Event]) -> None:
        """The local exchange's order/execution/position/wallet messages, fed through the same
        decoding and handling as the live private stream."""
        assert self.engine is not None
        uid = self.engine.account.uid
        grouped: dict[str, list[Any]] = {}
        wallet = False
        for ev in events:
            if ev.uid != uid:
                continue
            if ev.topic == "wallet":
                wallet = True
            else:
                grouped.setdefault(ev.topic, []).append(ev.data)
        t = now_ms()
        for topic in ("order", "execution", "position"):
            if topic in grouped:
                frame = {
                    "id": uuid.uuid4().hex,
                    "topic": topic,
                    "creationTime": t,
                    "data": grouped[topic],
                }
                self._on_private(decode_frame(json.dumps(frame)))
        if wallet:
            data = [self.engine.ex.wallet(self.engine.account)]
            frame = {"id": uuid.uuid4().hex, "topic": "wallet", "creationTime": t, "data": data}
            self._on_private(decode_frame(json.dumps(frame)))
        self._save_state()

    # -- persistence ----------------------------------------------------------------------------

    def _saved_balances(self) -> dict[str, Decimal] | None:
        assert self.store is not None
        rows = self.store.balances(self.connector_id)
        if not rows:
            return None
        return {r.coin: r.total for r in rows}

    def _save_state(self) -> None:
        if self.store is None or self.engine is None:
            return
        from bybitkit.store import BalanceRecord

        acct = self.engine.account
        t = now_ms()
        self.store.set_balances(
            self.connector_id,
            [
                BalanceRecord(self.connector_id, coin, c.wallet, c.free, c.locked, t)
                for coin, c in acct.coins.items()
            ],
        )
        self._save_positions()

    def _save_positions(self) -> None:
        """Perpetual paper stores its positions too (spot: nothing)."""

    async def _paper_restore(self) -> None:
        """Put the orders a previous session left open back into the engine."""
        assert self.store is not None and self.engine is not None and self.tracker is not None
        await self._restore_positions()
        for order in self.tracker.open_orders():
            rules = self.rules.get(order.pair)
            if rules is None:
                continue
            await self._before_order(order.pair)  # live prices and band before it goes back
            params: dict[str, Any] = {
                "category": self.category,
                "symbol": rules.symbol,
                "side": order.side.value,
                "orderType": "Limit",
                "qty": fmt(order.amount - order.filled),
                "price": fmt(order.price) if order.price is not None else None,
                "timeInForce": "PostOnly" if order.order_type.name == "LIMIT_MAKER" else "GTC",
                "orderLinkId": order.client_order_id,
                "positionIdx": order.position_idx,
            }
            if order.price is None:
                continue
            try:
                self.engine.ex.link_ids_used.discard(
                    (self.engine.account.uid, self.category, order.client_order_id)
                )
                self.engine.ex.create_order(self.engine.account, params)
            except SandboxError as err:
                log.warning("paper order not restored id=%s: %s", order.client_order_id, err.msg)
        self.engine.ex.flush()

    async def _restore_positions(self) -> None:
        """Perpetual paper: rebuild positions (spot: nothing)."""


class PaperPerpetualConnector(PaperSpotConnector, PerpetualConnector):
    """``bybit_perpetual_paper_trade``: linear perpetuals on live data, trading locally."""

    category = "linear"
    # funding times that passed while the loop slept: (pair, funding time ms, rate)
    _funding_due: list[tuple[str, int, Any]]

    async def _start(self) -> None:
        self._funding_due = []
        await PaperSpotConnector._start(self)

    async def _before_order(self, pair: str) -> None:
        await PaperSpotConnector._before_order(self, pair)
        await self.watch(pair)

    def on_public_extra(self, msg: Any) -> None:
        before: tuple[Any, Any] | None = None
        if isinstance(msg, s.TickerMessage):
            pair = self._pair_of_symbol.get(msg.data.symbol)
            old = self._tickers.get(pair) if pair else None
            if old:
                before = (old.get("nextFundingTime"), old.get("fundingRate"))
        PerpetualConnector.on_public_extra(self, msg)
        if isinstance(msg, s.TickerMessage) and self.engine is not None:
            pair = self._pair_of_symbol.get(msg.data.symbol)
            t = self._tickers.get(pair) if pair else None
            if not t or pair is None:
                return
            if (
                before is not None
                and before[0] is not None
                and before[1] is not None
                and t.get("nextFundingTime") != before[0]
                and before[0] <= now_ms()
            ):
                # the funding time passed and the ticker moved on: it is still owed, at the
                # rate that was announced for it
                self._funding_due.append((pair, before[0], before[1]))
            market = self.engine.market(msg.data.symbol)
            inst = market.inst
            mark = t.get("markPrice")
            if mark is not None:
                market.mark_exact = mark
                market.mark_ticks = max(1, int(mark / inst.tick_size))
            index = t.get("indexPrice")
            if index is not None:
                market.index_ticks = max(1, int(index / inst.tick_size))
            self.engine.ex.deriv.on_prices(market)
            self.engine.ex.flush()

    async def _paper_extra_loop(self) -> None:
        """Funding at each live funding time, with the live rate, booked like a live payment."""
        assert self.engine is not None
        settled: set[tuple[str, int]] = set()
        while True:
            await asyncio.sleep(0.5)
            now = now_ms()
            due_now = [
                (pair, t.get("nextFundingTime"), t.get("fundingRate"))
                for pair, t in list(self._tickers.items())
            ]
            pending, self._funding_due = self._funding_due, []
            for pair, due, rate in pending + due_now:
                if due is None or rate is None or now < due or (pair, due) in settled:
                    continue
                settled.add((pair, due))
                try:
                    market = self.engine.market(self.rules[pair].symbol)
                    self.engine.ex.deriv.funding_rates[market.inst.symbol] = rate
                    self.engine.ex.deriv.settle_funding(market, due)
                    self.engine.ex.flush()
                except Exception:
                    log.exception("paper funding failed pair=%s", pair)

    def _save_positions(self) -> None:
        assert self.store is not None and self.engine is not None
        from bybitkit.store import PositionRecord

        d = self.engine.ex.deriv
        state = d.states.get(self.engine.account.uid)
        if state is None:
            return
        for (symbol, idx), pos in state.positions.items():
            market = self.engine.market(symbol)
            self.store.upsert_position(
                PositionRecord(
                    connector=self.connector_id,
                    pair=self.pair_of(symbol),
                    position_idx=idx,
                    side=("BUY" if pos.size > 0 else "SELL") if pos.size else "",
                    size=abs(pos.size),
                    entry_price=pos.entry,
                    mark_price=d.mark(market),
                    unrealised_pnl=pos.upl(d.mark(market)),
                    realised_pnl=pos.cum_realised,
                    leverage=d.leverage(self.engine.account, symbol),
                    liq_price=None,
                    updated_ms=now_ms(),
                )
            )

    async def _restore_positions(self) -> None:
        assert self.store is not None and self.engine is not None
        d = self.engine.ex.deriv
        account = self.engine.account
        state = d.state(account)
        for rec in self.store.positions(self.connector_id):
            rules = self.rules.get(rec.pair)
            if rules is None:
                continue
            market = self.engine.market(rules.symbol)
            state.leverage[rules.symbol] = rec.leverage
            if rec.position_idx in (1, 2):
                state.modes[rules.symbol] = 3
            if not rec.size:
                continue
            pos = d.position(account, market, rec.position_idx)
            sign = Decimal(1) if rec.side == "BUY" else Decimal(-1)
            pos.size = sign * rec.size
            pos.cost = rec.entry_price * rec.size
            pos.cum_realised = rec.realised_pnl


__all__ = ["QUEUE_MODELS", "PaperEngine", "PaperPerpetualConnector", "PaperSpotConnector"]
