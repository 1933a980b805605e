"""The sandbox exchange core: markets, orders, executions, fees and wallets, as Bybit keeps them.

This module knows nothing of HTTP or WebSockets. The server turns requests into calls here and
publishes what comes out; the market simulator trades here through the house accounts, on the same
matching engine and the same books as the users, so a user's resting order really fills when the
market trades through it.

Every state change produces events (order, execution, wallet, public trade) in
:attr:`Exchange.outbox`. They are published only when the caller flushes them (the REST handler
does so after its response has been written), which reproduces Bybit's "acknowledgement first,
stream updates after".
"""

from __future__ import annotations

import base64
import itertools
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from bybitkit.matching import Book, Order, Side, TimeInForce
from bybitkit.money import fmt
from bybitkit.sandbox.accounts import STABLE, ZERO, Account, Coin
from bybitkit.sandbox.instruments import Instrument, price_band
from bybitkit.sandbox.klines import KlineSeries

LINK_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,36}$")
OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})
MAX_HISTORY = 100_000  # closed orders / executions kept per account (Bybit keeps days, not all)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SandboxError(Exception):
    """A Bybit-style refusal: answered with ``retCode``/``retMsg`` (HTTP 200)."""

    def __init__(self, code: int, msg: str, result: Any = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.result = result


@dataclass(slots=True)
class Event:
    """Something to publish: a private topic for one account, or a public topic for a market."""

    topic: str  # "order", "execution", "wallet", "publicTrade"
    uid: int | None  # private: the account; public: None
    data: Any
    category: str = ""
    symbol: str = ""


class SOrder:
    """An order as the sandbox keeps it (Bybit's order object, §8.8)."""

    __slots__ = (
        "account",
        "attached",
        "avg_price",
        "cancel_type",
        "category",
        "clamped_from",
        "close_on_trigger",
        "closed_pnl",
        "closed_record",
        "create_type",
        "created_ms",
        "cum_fee",
        "cum_qty",
        "cum_value",
        "engine",
        "exec_type",
        "hold",
        "hold_coin",
        "hold_price",
        "last_on_created",
        "link_id",
        "market",
        "market_unit",
        "order_id",
        "order_type",
        "position_idx",
        "price",
        "qty",
        "reduce_only",
        "reject_reason",
        "side",
        "sl_limit_price",
        "sl_order_type",
        "sl_trigger_by",
        "status",
        "stop_loss",
        "stop_order_type",
        "take_profit",
        "tif",
        "tp_limit_price",
        "tp_order_type",
        "tp_trigger_by",
        "tpsl_mode",
        "trigger_by",
        "trigger_direction",
        "trigger_price",
        "updated_ms",
    )

    def __init__(
        self,
        order_id: str,
        link_id: str,
        account: Account,
        market: Market,
        side: str,
        order_type: str,
        tif: str,
        price: Decimal | None,
        qty: Decimal,
        market_unit: str,
    ) -> None:
        self.order_id = order_id
        self.link_id = link_id
        self.account = account
        self.market = market
        self.category = market.inst.category
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.price = price
        self.qty = qty
        self.market_unit = market_unit
        self.status = "New"
        self.cum_qty = ZERO
        self.cum_value = ZERO
        self.cum_fee: dict[str, Decimal] = {}
        self.avg_price: Decimal | None = None
        self.reject_reason = "EC_NoError"
        self.cancel_type = "UNKNOWN"
        self.created_ms = self.updated_ms = now_ms()
        self.engine: Order | None = None
        self.hold = ZERO  # what is still held for this order
        self.hold_coin = ""
        self.hold_price = ZERO  # the price a buy's hold was computed at
        # derivatives
        self.position_idx = 0
        self.reduce_only = False
        self.close_on_trigger = False
        self.create_type = "CreateByUser"
        self.exec_type = "Trade"
        self.clamped_from: Decimal | None = None
        self.last_on_created = market.last_ticks
        # an attached TP/SL (a create's takeProfit/stopLoss): becomes the position's on a fill
        self.take_profit: Decimal | None = None
        self.stop_loss: Decimal | None = None
        self.tp_trigger_by = self.sl_trigger_by = "LastPrice"
        self.tp_order_type = self.sl_order_type = "Market"
        self.tp_limit_price: Decimal | None = None
        self.sl_limit_price: Decimal | None = None
        self.tpsl_mode = ""
        self.attached: list[SOrder] = []  # Partial TP/SL orders made from this order's fills
        self.trigger_price: Decimal | None = None
        self.trigger_direction = 0
        self.trigger_by: str | None = None
        self.stop_order_type: str | None = None
        self.closed_pnl = ZERO
        self.closed_record: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def leaves_qty(self) -> Decimal:
        if not self.is_open:
            return ZERO
        return self.qty - self.cum_qty

    def to_wire(self, view: str = "realtime") -> dict[str, Any]:
        """The order object as Bybit shows it in ``view``: ``realtime`` (open orders, §8.8),
        ``history`` (§8.9: adds the slippage, RPI and extra-fee fields) or ``ws`` (the ``order``
        topic, §13.1)."""
        inst = self.market.inst
        leaves = self.leaves_qty
        price = self.price if self.price is not None else ZERO
        spot = self.category == "spot"
        d: dict[str, Any] = {
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": inst.symbol,
            "price": inst.price_str(inst.to_ticks(price)) if self.price is not None else "0",
            "qty": fmt(self.qty),
            "side": self.side,
            "isLeverage": "0" if spot else "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": fmt(self.avg_price) if self.avg_price is not None else "",
            "leavesQty": fmt(leaves),
            "leavesValue": fmt(leaves * price) if self.price is not None else "0",
            "cumExecQty": fmt(self.cum_qty),
            "cumExecValue": fmt(self.cum_value),
            "cumExecFee": fmt(sum(self.cum_fee.values(), ZERO)),
            "timeInForce": self.tif,
            "orderType": self.order_type,
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": self.market_unit,
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "ocoTriggerBy": "",
            "parentOrderLinkId": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms),
            "cumFeeDetail": {c: fmt(v) for c, v in self.cum_fee.items()},
        }
        if view == "history":
            d.update(
                slippageToleranceType="UNKNOWN",
                slippageTolerance="0",
                extraFees="",
                rpiTakerAccess=False,
                rpiMatchedQty="0",
            )
        elif view == "ws":
            d.update(
                brokerOrderPrice="",
                slippageToleranceType="UNKNOWN",
                slippageTolerance="0",
                rpiTakerAccess=False,
                rpiMatchedQty="0",
            )
        if spot:
            if view != "ws":
                d["basePrice"] = inst.price_str(self.last_on_created)
        else:
            px = inst.price_str
            d.update(
                createType=self.create_type,
                lastPriceOnCreated=px(self.last_on_created),
                tpslMode=self.tpsl_mode,
                positionIdx=self.position_idx,
                reduceOnly=self.reduce_only,
                closeOnTrigger=self.close_on_trigger,
                stopOrderType=self.stop_order_type or "UNKNOWN",
                triggerPrice=px(inst.to_ticks(self.trigger_price)) if self.trigger_price else "0",
                triggerDirection=self.trigger_direction,
                triggerBy=self.trigger_by or "UNKNOWN",
                takeProfit=px(inst.to_ticks(self.take_profit)) if self.take_profit else "0",
                stopLoss=px(inst.to_ticks(self.stop_loss)) if self.stop_loss else "0",
                tpTriggerBy=self.tp_trigger_by if self.take_profit else "UNKNOWN",
                slTriggerBy=self.sl_trigger_by if self.stop_loss else "UNKNOWN",
                tpLimitPrice=px(inst.to_ticks(self.tp_limit_price)) if self.tp_limit_price else "",
                slLimitPrice=px(inst.to_ticks(self.sl_limit_price)) if self.sl_limit_price else "",
                cumExecFee=fmt(sum(self.cum_fee.values(), ZERO)),
                isLeverage="",
            )
        return d


class Market:
    """One tradable instrument: its book, last price, recent trades and candles."""

    def __init__(
        self,
        inst: Instrument,
        start_ticks: int,
        rng: random.Random,
        start_ms: int,
        history_minutes: int = 10_080,
    ) -> None:
        self.inst = inst
        self.book = Book(inst.symbol)
        self.last_ticks = start_ticks
        self.index_ticks = start_ticks
        self.mark_ticks = start_ticks
        self.cross_seq = 1_000_000
        # Paper trading runs on live prices: the exact mark price and the live band.
        self.mark_exact: Decimal | None = None
        self.trades_seen = False
        self.band_override: tuple[Decimal, Decimal] | None = None
        self.trades: deque[dict[str, Any]] = deque(maxlen=1000)
        self.klines = KlineSeries.generate(inst, start_ms, start_ticks, rng, history_minutes)
        self.mark_klines = KlineSeries.track(self.klines, rng, end_price_ticks=start_ticks)
        self.index_klines = KlineSeries.track(self.klines, rng, end_price_ticks=start_ticks)

    @property
    def key(self) -> tuple[str, str]:
        return (self.inst.category, self.inst.symbol)

    def band(self) -> tuple[Decimal, Decimal]:
        if self.band_override is not None:
            return self.band_override
        return price_band(self.inst, self.inst.from_ticks(self.index_ticks))


@dataclass
class History:
    orders: deque[SOrder] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    executions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    ledger: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))


class Exchange:
    """All markets and accounts of one sandbox."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        seed: int = 0,
        start_ms: int | None = None,
        history_minutes: int = 10_080,
    ) -> None:
        self.rng = random.Random(seed)
        self.start_ms = start_ms if start_ms is not None else now_ms()
        self.markets: dict[tuple[str, str], Market] = {}
        start_prices: dict[str, Decimal] = {}
        for inst in instruments:
            # Spot and linear markets of one base coin start at the same price.
            lo, hi = inst.initial_price_range
            price = start_prices.get(inst.base_coin)
            if price is None:
                price = lo + (hi - lo) * Decimal(self.rng.randint(0, 10_000)) / 10_000
                if price >= 1:  # a multiple of 0.5: on the grid of every default tick size
                    price = (price * 2).to_integral_value() / 2
                start_prices[inst.base_coin] = price
            ticks = max(1, int((price / inst.tick_size).to_integral_value()))
            self.markets[(inst.category, inst.symbol)] = Market(
                inst, ticks, self.rng, self.start_ms, history_minutes
            )
        self.accounts: dict[int, Account] = {}
        self.keys: dict[str, tuple[Account, Any]] = {}
        self._uids = itertools.count(1_000_001)
        self._engine_ids = itertools.count(1)
        self._spot_ids = itertools.count(1_800_000_000_000_000_001)
        self.house = self.new_account(house=True, name="house")
        self.fee_collector = self.new_account(house=True, name="fees")
        self.history: dict[int, History] = {}
        self.open_by_link: dict[tuple[int, str, str], SOrder] = {}
        self.by_id: dict[str, SOrder] = {}
        self.open_orders: dict[int, dict[str, SOrder]] = {}
        self.link_ids_used: set[tuple[int, str, str]] = set()
        self.outbox: list[Event] = []
        self.listeners: list[Callable[[list[Event]], None]] = []
        # Deep, but small enough that every balance keeps its exact decimals within Decimal's
        # 28 significant digits.
        for coin, amount in (("USDT", "1e10"), ("USDC", "1e10"), ("BTC", "1e6"), ("ETH", "1e7")):
            self.house.credit(coin, Decimal(amount))
        from bybitkit.sandbox.derivatives import Derivatives

        self.deriv = Derivatives(self)
        for coin in ("USDT", "USDC"):
            self.deriv.insurance.credit(coin, Decimal("1e9"))

    # -- accounts -------------------------------------------------------------------------------

    def new_account(self, *, house: bool = False, name: str = "") -> Account:
        acct = Account(next(self._uids), house=house, name=name)
        self.accounts[acct.uid] = acct
        return acct

    def register_key(self, account: Account, api_key: Any) -> None:
        self.keys[api_key.key] = (account, api_key)

    def top_up(self, account: Account, coin: str, amount: Decimal) -> None:
        """Credit (or with a negative amount, debit) a wallet: the only way coins enter."""
        c = account.coin(coin)
        if amount < 0 and c.free < -amount:
            raise SandboxError(10001, f"cannot reduce {coin} below what is free")
        c.wallet += amount
        self._ledger(account, "TRANSFER_IN" if amount >= 0 else "TRANSFER_OUT", coin, amount)
        self._wallet_event(account)

    # -- events ---------------------------------------------------------------------------------

    def flush(self) -> None:
        """Hand the queued events to the listeners (the WebSocket publisher)."""
        if not self.outbox:
            return
        events, self.outbox = self.outbox, []
        for listener in self.listeners:
            listener(events)

    def _order_event(self, order: SOrder) -> None:
        if order.account.house:
            return
        data = order.to_wire("ws")
        data["category"] = order.category
        data["feeCurrency"] = ""
        data["closedPnl"] = fmt(order.closed_pnl)
        self.outbox.append(Event("order", order.account.uid, data, order.category))

    def _wallet_event(self, account: Account) -> None:
        if account.house:
            return
        self.outbox.append(Event("wallet", account.uid, None))

    # -- prices ---------------------------------------------------------------------------------

    def market(self, category: str, symbol: str) -> Market:
        m = self.markets.get((category, normalize_symbol(symbol)))
        if m is None:
            if category == "spot":
                raise SandboxError(170121, "Invalid symbol.")
            raise SandboxError(10001, f"params error: symbol invalid: {symbol}")
        return m

    def usd_price(self, coin: str) -> Decimal:
        if coin in STABLE:
            return Decimal(1)
        m = self.markets.get(("spot", f"{coin}USDT"))
        if m is None:
            return ZERO
        return m.inst.from_ticks(m.last_ticks)

    # -- order entry (spot) -----------------------------------------------------------------------

    def create_order(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = _category(params)
        if category == "linear":
            return self.deriv.create_order(account, params)
        market = self.market(category, _required(params, "symbol"))
        inst = market.inst
        _refuse_unsupported_spot(params)
        side = _side(params.get("side"))
        order_type = _order_type(params.get("orderType"))
        tif = _tif(params.get("timeInForce"), order_type)
        qty = _decimal(params, "qty", required=True)
        assert qty is not None
        link_id = str(params.get("orderLinkId") or "")
        if link_id and not LINK_ID_RE.match(link_id):
            raise SandboxError(
                10001, "params error: orderLinkId must be 1-36 characters of [0-9A-Za-z_-]"
            )
        if not link_id:
            link_id = ""
        link_key = (account.uid, category, link_id)
        if link_id and link_key in self.link_ids_used:
            raise SandboxError(170141, "Duplicate clientOrderId.")
        market_unit = ""
        price: Decimal | None = None
        if order_type == "Limit":
            price = _decimal(params, "price", required=True)
            assert price is not None
            if price <= 0:
                raise SandboxError(10001, "params error: price must be positive")
        else:
            unit = params.get("marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin")
            if unit not in ("baseCoin", "quoteCoin"):
                raise SandboxError(170130, "Invalid parameter marketUnit: baseCoin or quoteCoin.")
            market_unit = unit
        if qty <= 0:
            raise SandboxError(170136, "Order quantity is lower than the minimum.")

        # Sizing, exactly as Bybit checks spot (REFERENCE §7.2, §15).
        quote_qty = order_type == "Market" and market_unit == "quoteCoin"
        if quote_qty:
            if qty % inst.quote_precision != 0:
                raise SandboxError(170148, "Market order amount decimal too long.")
        elif qty % inst.lot_size != 0:
            raise SandboxError(170137, "Order quantity has too many decimals.")
        if price is not None and price % inst.tick_size != 0:
            raise SandboxError(170134, "Order price has too many decimals.")
        ref_price = price if price is not None else inst.from_ticks(market.last_ticks)
        notional = qty if quote_qty else qty * ref_price
        if notional < inst.min_order_amt:
            raise SandboxError(170140, "Order value exceeded lower limit.")
        if order_type == "Limit":
            cap = (
                inst.post_only_max_limit_order_size
                if tif == "PostOnly"
                else inst.max_limit_order_qty
            )
            if qty > cap:
                raise SandboxError(170124, "Order amount too large.")
        else:
            base_qty = qty / ref_price if quote_qty else qty
            if base_qty > inst.max_market_order_qty:
                raise SandboxError(170124, "Order amount too large.")
        if price is not None:
            buy_lmt, sell_lmt = market.band()
            if side == "Buy" and price > buy_lmt:
                if not account.lpa_spot:
                    raise SandboxError(
                        170193, f"Buy order price cannot be higher than {fmt(buy_lmt)}."
                    )
                price = buy_lmt
            if side == "Sell" and price < sell_lmt:
                if not account.lpa_spot:
                    raise SandboxError(
                        170194, f"Sell order price cannot be lower than {fmt(sell_lmt)}."
                    )
                price = sell_lmt

        order = SOrder(
            self._new_order_id(category),
            link_id,
            account,
            market,
            side,
            order_type,
            tif,
            price,
            qty,
            market_unit,
        )
        self._hold_for(order)  # raises 170131 when the balance is short
        if link_id:
            self.link_ids_used.add(link_key)
        self._register(order)
        self._execute(order)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _new_order_id(self, category: str) -> str:
        if category == "spot":
            return str(next(self._spot_ids))
        return str(uuid.uuid4())

    def open_orders_of(self, account: Account) -> list[SOrder]:
        """The account's open orders (Untriggered conditional orders included)."""
        return list(self.open_orders.get(account.uid, {}).values())

    def _register(self, order: SOrder) -> None:
        if order.account.house:
            return
        self.by_id[order.order_id] = order
        self.open_orders.setdefault(order.account.uid, {})[order.order_id] = order
        hist = self._history(order.account)
        hist.orders.append(order)
        if order.link_id:
            self.open_by_link[(order.account.uid, order.category, order.link_id)] = order

    def _history(self, account: Account) -> History:
        h = self.history.get(account.uid)
        if h is None:
            h = self.history[account.uid] = History()
        return h

    def _hold_for(self, order: SOrder) -> None:
        """Reserve what the order may spend (spot): quote for buys, base for sells."""
        inst = order.market.inst
        account = order.account
        if order.side == "Buy":
            coin = inst.quote_coin
            if order.order_type == "Limit":
                assert order.price is not None
                amount = order.price * order.qty
                order.hold_price = order.price
            elif order.market_unit == "quoteCoin":
                amount = order.qty
            else:
                amount = self._cost_to_buy(order.market, order.qty)
        else:
            coin = inst.base_coin
            if order.order_type == "Market" and order.market_unit == "quoteCoin":
                amount = self._qty_to_receive(order.market, order.qty)
            else:
                amount = order.qty
        c = account.coin(coin)
        if not account.house and self.deriv.available(account, coin) < amount:
            raise SandboxError(170131, "Insufficient balance.")
        c.locked += amount
        order.hold = amount
        order.hold_coin = coin

    def _cost_to_buy(self, market: Market, qty: Decimal) -> Decimal:
        """Quote needed to buy ``qty`` now, walking the asks (the most a market buy can cost)."""
        inst = market.inst
        lots = inst.to_lots(qty)
        cost = 0
        for price, level in market.book.levels(Side.SELL, 100_000):
            take = min(lots, level)
            cost += take * price
            lots -= take
            if lots == 0:
                break
        return inst.tick_size * inst.lot_size * cost

    def _qty_to_receive(self, market: Market, quote: Decimal) -> Decimal:
        """Base to sell now to receive ``quote`` (rounded up to the lot), walking the bids."""
        inst = market.inst
        unit = inst.tick_size * inst.lot_size
        left = quote
        lots = 0
        for price, level in market.book.levels(Side.BUY, 100_000):
            value = price * unit
            need = int((left / value).to_integral_value(rounding=ROUND_CEILING))
            take = min(level, need)
            lots += take
            left -= take * value
            if left <= 0:
                break
        return inst.from_lots(lots)

    def _execute(self, order: SOrder) -> None:
        """Put ``order`` through the matching engine and book what trades."""
        market = order.market
        inst = market.inst
        side = Side.BUY if order.side == "Buy" else Side.SELL
        tif = _ENGINE_TIF[order.tif]
        is_market = order.order_type == "Market"
        quote_budget: int | None = None
        if is_market and order.category == "linear" and order.price is not None:
            # A derivatives market order is an IOC limit order at its protective price (§8.1).
            is_market = False
            tif = _ENGINE_TIF["IOC"]
        if is_market:
            if order.side == "Buy" and order.market_unit == "quoteCoin":
                unit = inst.tick_size * inst.lot_size
                quote_budget = int((order.qty / unit).to_integral_value(rounding=ROUND_FLOOR))
                lots = 10**18
            elif order.side == "Sell" and order.market_unit == "quoteCoin":
                lots = inst.to_lots(order.hold)
            else:
                lots = inst.to_lots(order.qty)
            eng = Order(next(self._engine_ids), side, 0, lots, order, 0)
        else:
            assert order.price is not None
            eng = Order(
                next(self._engine_ids),
                side,
                inst.to_ticks(order.price),
                inst.to_lots(order.qty),
                order,
                0,
            )
        order.engine = eng
        result = market.book.submit(eng, tif, market=is_market, quote_budget=quote_budget)
        if result.rejected == "post_only_would_take":
            self._close(order, "Cancelled", "EC_PostOnlyWillTakeLiquidity")
            self._order_event(order)
            self._wallet_event(order.account)
            return
        if result.rejected == "fok_not_filled":
            self._close(order, "Cancelled", "EC_NoEnoughQtyToFill")
            self._order_event(order)
            self._wallet_event(order.account)
            return
        if not order.account.house and result.fills and order.status == "New":
            # Bybit pushes the new order before its fills.
            self._order_event(order)
        self._book_fills(order, result.fills)
        if not result.rested and order.is_open:
            if order.cum_qty == 0:
                self._close(order, "Cancelled", "EC_NoImmediateQtyToFill")
            elif result.remaining == 0 or (
                quote_budget is not None
                and quote_budget - result.spent < (market.book.best_ask() or quote_budget + 1)
            ):
                self._close(order, "Filled", "EC_NoError")
            else:  # IOC or market: the book had no more at acceptable prices
                self._close(order, "PartiallyFilledCanceled", "EC_CancelForNoFullFill")
        self._order_event(order)
        self._wallet_event(order.account)

    def _book_fills(self, taker: SOrder, fills: list[Any]) -> None:
        if not fills:
            return
        market = taker.market
        inst = market.inst
        t = now_ms()
        for f in fills:
            maker: SOrder = f.maker.owner
            price = inst.from_ticks(f.price)
            qty = inst.from_lots(f.qty)
            market.cross_seq += 1
            seq = market.cross_seq
            self._fill(maker, price, qty, True, t, seq)
            self._fill(taker, price, qty, False, t, seq)
            if f.maker.qty == 0:
                maker.engine = None
                self._close(maker, "Filled", "EC_NoError")
            self._order_event(maker)
            self._wallet_event(maker.account)
            self._public_trade(market, taker.side, f.price, f.qty, t, seq)
        market.last_ticks = fills[-1].price
        if taker.engine is not None and taker.engine.qty == 0 and taker.order_type == "Limit":
            taker.engine = None
            self._close(taker, "Filled", "EC_NoError")
        if inst.category == "linear":
            self.deriv.trim_closing()
            self.deriv.on_prices(market)

    def _fill(
        self, order: SOrder, price: Decimal, qty: Decimal, is_maker: bool, t: int, seq: int
    ) -> None:
        """Book one side of a trade: balances, fee, the order's progress, the execution."""
        if order.category == "linear":
            self.deriv.fill(order, price, qty, is_maker, t, seq)
            return
        inst = order.market.inst
        account = order.account
        maker_rate, taker_rate = account.fee_rates(order.category)
        rate = maker_rate if is_maker else taker_rate
        value = price * qty
        base = account.coin(inst.base_coin)
        quote = account.coin(inst.quote_coin)
        fees = self.fee_collector
        if order.side == "Buy":
            # Spot fee rules (REFERENCE §6): a positive rate is paid in what is received (base);
            # a negative maker rate is a rebate credited in quote.
            if rate >= 0:
                fee, fee_coin = qty * rate, inst.base_coin
            else:
                fee, fee_coin = value * rate, inst.quote_coin
            held = (order.hold_price * qty) if order.order_type == "Limit" else value
            held = min(held, order.hold)
            order.hold -= held
            quote.locked -= held
            quote.wallet -= value
            base.wallet += qty
        else:
            if rate >= 0:
                fee, fee_coin = value * rate, inst.quote_coin
            else:
                fee, fee_coin = qty * rate, inst.base_coin
            held = min(qty, order.hold)
            order.hold -= held
            base.locked -= held
            base.wallet -= qty
            quote.wallet += value
        account.coin(fee_coin).wallet -= fee
        fees.coin(fee_coin).wallet += fee
        # Counter-flows of the trade itself are between the two accounts of the fill; conservation
        # holds because the maker and taker legs are booked with the same price and quantity.
        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee[fee_coin] = order.cum_fee.get(fee_coin, ZERO) + fee
        order.avg_price = _avg(order.cum_value, order.cum_qty, inst)
        order.updated_ms = t
        if order.status == "New":
            order.status = "PartiallyFilled"
        if account.house:
            return
        exec_id = str(uuid.uuid4())
        leaves = order.qty - order.cum_qty if order.order_type == "Limit" else ZERO
        row = {
            "category": order.category,
            "symbol": inst.symbol,
            "isLeverage": "0",
            "orderId": order.order_id,
            "orderLinkId": order.link_id,
            "side": order.side,
            "orderPrice": inst.price_str(inst.to_ticks(order.price))
            if order.price is not None
            else "0",
            "orderQty": fmt(order.qty),
            "leavesQty": fmt(leaves),
            "orderType": order.order_type,
            "stopOrderType": "",
            "execFee": fmt(fee),
            "execId": exec_id,
            "execPrice": inst.price_str(inst.to_ticks(price)),
            "execQty": fmt(qty),
            "execPnl": "0",
            "execType": "Trade",
            "execValue": fmt(value),
            "execTime": str(t),
            "isMaker": is_maker,
            "feeRate": fmt(rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": inst.price_str(order.market.mark_ticks),
            "indexPrice": "",
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": "0",
            "seq": seq,
            "feeCurrency": fee_coin,
            "marketUnit": order.market_unit,
            "extraFees": "",
        }
        self._history(account).executions.append(row)
        self.outbox.append(Event("execution", account.uid, row, order.category, inst.symbol))
        self._ledger_trade(account, order, price, qty, fee, fee_coin, rate, exec_id, t)

    def _public_trade(
        self, market: Market, taker_side: str, price: int, lots: int, t: int, seq: int
    ) -> None:
        inst = market.inst
        trade = {
            "T": t,
            "s": inst.symbol,
            "S": taker_side,
            "v": inst.qty_str(lots),
            "p": inst.price_str(price),
            "i": str(uuid.uuid4()),
            "BT": False,
            "RPI": False,
            "seq": seq,
        }
        if inst.category != "spot":
            prev = str(market.trades[-1]["p"]) if market.trades else None
            trade["L"] = _tick_direction(prev, str(trade["p"]), market)
        market.trades.append(trade)
        market.klines.on_trade(t, price, lots)
        self.outbox.append(Event("publicTrade", None, trade, inst.category, inst.symbol))

    def _release_hold(self, order: SOrder) -> None:
        if order.category == "linear":
            self.deriv.release_im(order)
            return
        if order.hold:
            order.account.coin(order.hold_coin).locked -= order.hold
            order.hold = ZERO

    def _close(self, order: SOrder, status: str, reason: str, cancel_type: str = "") -> None:
        order.status = status
        order.reject_reason = reason
        if cancel_type:
            order.cancel_type = cancel_type
        order.updated_ms = now_ms()
        if order.engine is not None:
            order.market.book.cancel(order.engine.id)
            order.engine = None
        self._release_hold(order)
        self._forget_open(order)

    def _forget_open(self, order: SOrder) -> None:
        if not order.is_open:
            self.open_orders.get(order.account.uid, {}).pop(order.order_id, None)
        if order.link_id:
            key = (order.account.uid, order.category, order.link_id)
            if self.open_by_link.get(key) is order and not order.is_open:
                del self.open_by_link[key]

    # -- amend / cancel -------------------------------------------------------------------------

    def find_order(self, account: Account, params: dict[str, Any]) -> SOrder:
        """The order named by ``orderId`` (wins) or ``orderLinkId``; Bybit's not-found codes."""
        category = _category(params)
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        order: SOrder | None = None
        if order_id:
            order = self.by_id.get(str(order_id))
        elif link_id:
            order = self.open_by_link.get((account.uid, category, str(link_id)))
            if order is None:
                for o in reversed(self._history(account).orders):
                    if o.link_id == link_id and o.category == category:
                        order = o
                        break
        else:
            raise SandboxError(10001, "params error: orderId or orderLinkId is required")
        if order is None or order.account is not account or order.category != category:
            if category == "spot":
                raise SandboxError(170213, "Order does not exist.")
            raise SandboxError(110001, "Order does not exist.")
        symbol = params.get("symbol")
        if symbol and normalize_symbol(str(symbol)) != order.market.inst.symbol:
            if category == "spot":
                raise SandboxError(170213, "Order does not exist.")
            raise SandboxError(110001, "Order does not exist.")
        return order

    def cancel_order(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = _category(params)
        _required(params, "symbol")
        order = self.find_order(account, params)
        if not order.is_open:
            if category == "spot":
                raise SandboxError(170213, "Order does not exist.")
            raise SandboxError(110001, "Order does not exist.")
        self._cancel(order, "CancelByUser")
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _cancel(self, order: SOrder, cancel_type: str) -> None:
        status = "PartiallyFilledCanceled" if order.cum_qty > 0 else "Cancelled"
        if order.category != "spot":
            status = "Deactivated" if order.status == "Untriggered" else "Cancelled"
        self._close(order, status, "EC_PerCancelRequest", cancel_type)
        self._order_event(order)
        self._wallet_event(order.account)
        if order.category == "linear":
            self.deriv.stop_cancelled(order)
            pos = self.deriv.position(order.account, order.market, order.position_idx)
            self.deriv.position_event(order.account, order.market, pos)

    def cancel_all(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = _category(params)
        symbol = params.get("symbol")
        base_coin = params.get("baseCoin")
        if category == "spot" and params.get("settleCoin"):
            raise SandboxError(10001, "params error: settleCoin is not supported for spot")
        if category != "spot" and not (symbol or base_coin or params.get("settleCoin")):
            raise SandboxError(10001, "params error: symbol, baseCoin or settleCoin is required")
        wanted_symbol = normalize_symbol(str(symbol)) if symbol else None
        order_filter = params.get("orderFilter") or ("Order" if category == "spot" else None)
        stop_type = params.get("stopOrderType")
        cancelled = []
        for order in list(self.open_orders_of(account)):
            if order.category != category or not order.is_open:
                continue
            conditional = order.stop_order_type is not None
            if order_filter == "Order" and conditional:
                continue
            if order_filter == "StopOrder" and not conditional:
                continue
            if stop_type and order.stop_order_type != stop_type:
                continue
            inst = order.market.inst
            if wanted_symbol and inst.symbol != wanted_symbol:
                continue
            if base_coin and inst.base_coin != base_coin:
                continue
            if params.get("settleCoin") and inst.settle_coin != params["settleCoin"]:
                continue
            self._cancel(order, "CancelByUser")
            cancelled.append({"orderId": order.order_id, "orderLinkId": order.link_id})
        return {"list": cancelled, "success": "1"}

    def amend_order(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = _category(params)
        if category == "linear":
            return self.deriv.amend_order(account, params)
        _required(params, "symbol")
        order = self.find_order(account, params)
        spot = category == "spot"
        if not order.is_open:
            raise SandboxError(170213 if spot else 110001, "Order does not exist.")
        if order.order_type != "Limit":
            raise SandboxError(170312 if spot else 10001, "Amend is not supported for this order.")
        new_qty = _decimal(params, "qty")
        new_price = _decimal(params, "price")
        if new_qty is None and new_price is None:
            raise SandboxError(10001, "params error: nothing to amend (qty or price)")
        inst = order.market.inst
        if new_price is not None:
            if new_price <= 0:
                raise SandboxError(10001, "params error: price must be positive")
            if new_price % inst.tick_size != 0:
                raise SandboxError(170134, "Order price has too many decimals.")
            buy_lmt, sell_lmt = order.market.band()
            if order.side == "Buy" and new_price > buy_lmt:
                raise SandboxError(170193, f"Buy order price cannot be higher than {fmt(buy_lmt)}.")
            if order.side == "Sell" and new_price < sell_lmt:
                raise SandboxError(
                    170194, f"Sell order price cannot be lower than {fmt(sell_lmt)}."
                )
        if new_qty is not None:
            if new_qty % inst.lot_size != 0:
                raise SandboxError(170137, "Order quantity has too many decimals.")
            if new_qty <= order.cum_qty:
                raise SandboxError(
                    170313, "The amended quantity is lower than the filled quantity."
                )
            cap = (
                inst.post_only_max_limit_order_size
                if order.tif == "PostOnly"
                else inst.max_limit_order_qty
            )
            if new_qty > cap:
                raise SandboxError(170124, "Order amount too large.")
        price = new_price if new_price is not None else order.price
        qty = new_qty if new_qty is not None else order.qty
        assert price is not None
        if (qty - order.cum_qty) * price < inst.min_order_amt and qty * price < inst.min_order_amt:
            raise SandboxError(170140, "Order value exceeded lower limit.")
        if order.tif == "PostOnly" and new_price is not None:
            side = Side.BUY if order.side == "Buy" else Side.SELL
            if order.market.book.would_take(side, inst.to_ticks(new_price)):
                raise SandboxError(
                    170218, "The LIMIT-MAKER order is rejected due to invalid price."
                )
        # Re-hold at the new terms (a buy holds quote at its price, a sell holds base).
        remaining = qty - order.cum_qty
        need = price * remaining if order.side == "Buy" else remaining
        c = order.account.coin(order.hold_coin)
        if c.free + order.hold < need:
            raise SandboxError(170131, "Insufficient balance.")
        c.locked += need - order.hold
        order.hold = need
        if order.side == "Buy":
            order.hold_price = price
        order.price = price
        order.qty = qty
        order.updated_ms = now_ms()
        assert order.engine is not None
        result = order.market.book.amend(
            order.engine.id,
            price=inst.to_ticks(price) if new_price is not None else None,
            qty=inst.to_lots(remaining),
        )
        self._book_fills(order, result.fills)
        self._order_event(order)
        self._wallet_event(order.account)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    # -- house (the simulated market) ----------------------------------------------------------

    def house_order(
        self,
        market: Market,
        side: str,
        lots: int,
        price_ticks: int | None,
        tif: str = "GTC",
    ) -> SOrder:
        """Place an order for the house (background liquidity and takers), with no checks."""
        return self.order_for(self.house, market, side, lots, price_ticks, tif)

    def order_for(
        self,
        account: Account,
        market: Market,
        side: str,
        lots: int,
        price_ticks: int | None,
        tif: str = "GTC",
    ) -> SOrder:
        """An order of a system account (the house, the insurance fund), with no checks."""
        inst = market.inst
        order = SOrder(
            "h" + str(next(self._engine_ids)),
            "",
            account,
            market,
            side,
            "Limit" if price_ticks is not None else "Market",
            tif if price_ticks is not None else "IOC",
            inst.from_ticks(price_ticks) if price_ticks is not None else None,
            inst.from_lots(lots),
            "baseCoin" if price_ticks is None else "",
        )
        # The house holds nothing: its wallets are deep and its orders need no reservation.
        self._execute(order)
        return order

    def house_cancel(self, order: SOrder) -> None:
        if order.is_open:
            self._close(order, "Cancelled", "EC_PerCancelRequest")

    # -- ledger ---------------------------------------------------------------------------------

    def _ledger(
        self, account: Account, kind: str, coin: str, change: Decimal, **extra: Any
    ) -> None:
        if account.house:
            return
        row = {
            "id": str(uuid.uuid4()),
            "symbol": extra.get("symbol", ""),
            "category": extra.get("category", ""),
            "side": extra.get("side", "None"),
            "transactionTime": str(extra.get("t", now_ms())),
            "type": kind,
            "transSubType": "",
            "qty": fmt(extra.get("qty", change)),
            "size": fmt(extra.get("size", ZERO)),
            "currency": coin,
            "tradePrice": extra.get("trade_price", ""),
            "funding": fmt(extra["funding"]) if "funding" in extra else "",
            "fee": fmt(extra.get("fee", ZERO)),
            "cashFlow": fmt(extra.get("cash_flow", change)),
            "change": fmt(change),
            "cashBalance": fmt(account.coin(coin).wallet),
            "feeRate": extra.get("fee_rate", ""),
            "bonusChange": "",
            "tradeId": extra.get("trade_id", ""),
            "orderId": extra.get("order_id", ""),
            "orderLinkId": extra.get("order_link_id", ""),
            "extraFees": "",
        }
        self._history(account).ledger.append(row)

    def _ledger_trade(
        self,
        account: Account,
        order: SOrder,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        fee_coin: str,
        rate: Decimal,
        exec_id: str,
        t: int,
    ) -> None:
        inst = order.market.inst
        value = price * qty
        sign = 1 if order.side == "Buy" else -1
        common = {
            "symbol": inst.symbol,
            "category": order.category,
            "side": order.side,
            "t": t,
            "trade_price": inst.price_str(inst.to_ticks(price)),
            "fee_rate": fmt(rate),
            "trade_id": exec_id,
            "order_id": order.order_id,
            "order_link_id": order.link_id,
        }
        base_fee = fee if fee_coin == inst.base_coin else ZERO
        quote_fee = fee if fee_coin == inst.quote_coin else ZERO
        self._ledger(
            account,
            "TRADE",
            inst.base_coin,
            sign * qty - base_fee,
            qty=sign * qty,
            fee=base_fee,
            cash_flow=sign * qty,
            **common,
        )
        self._ledger(
            account,
            "TRADE",
            inst.quote_coin,
            -sign * value - quote_fee,
            qty=-sign * value,
            fee=quote_fee,
            cash_flow=-sign * value,
            **common,
        )

    # -- reads ----------------------------------------------------------------------------------

    def wallet(self, account: Account, coins: list[str] | None = None) -> dict[str, Any]:
        """The unified wallet account object (REFERENCE §10.1), all totals in USD."""
        if account.uid in self.deriv.states:
            for settle in ("USDT", "USDC"):
                self.deriv.sync_coin(account, settle)
        items = []
        total_equity = total_wallet = total_im = total_mm = total_upl = total_avail = ZERO
        names = coins if coins else [c for c, v in account.coins.items() if v.wallet or v.locked]
        for name in names:
            c = account.coins.get(name)
            if c is None:
                if not coins:
                    continue
                c = Coin()
            px = self.usd_price(name)
            equity = c.wallet + c.unrealised_pnl
            usd = equity * px
            total_equity += usd
            total_wallet += c.wallet * px
            total_im += (c.order_im + c.position_im) * px
            total_mm += c.position_mm * px
            total_upl += c.unrealised_pnl * px
            total_avail += (c.wallet - c.locked) * px
            items.append(
                {
                    "coin": name,
                    "equity": fmt(equity),
                    "usdValue": fmt(usd),
                    "walletBalance": fmt(c.wallet),
                    "locked": fmt(c.locked),
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "totalOrderIM": fmt(c.order_im),
                    "totalPositionIM": fmt(c.position_im),
                    "totalPositionMM": fmt(c.position_mm),
                    "unrealisedPnl": fmt(c.unrealised_pnl),
                    "cumRealisedPnl": fmt(c.cum_realised_pnl),
                    "bonus": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                    "colRes": "0",
                    "spotBorrow": "0",
                    "free": "",
                    "availableToWithdraw": "",
                    "availableToBorrow": "",
                }
            )
        margin_balance = total_wallet + total_upl
        return {
            "accountType": "UNIFIED",
            "accountIMRate": fmt(_ratio(total_im, margin_balance)),
            "accountMMRate": fmt(_ratio(total_mm, margin_balance)),
            "accountIMRateByMp": fmt(_ratio(total_im, margin_balance)),
            "accountMMRateByMp": fmt(_ratio(total_mm, margin_balance)),
            "totalEquity": fmt(_usd(total_equity)),
            "totalWalletBalance": fmt(_usd(total_wallet)),
            "totalMarginBalance": fmt(_usd(margin_balance)),
            "totalAvailableBalance": fmt(_usd(total_avail - total_im)),
            "totalPerpUPL": fmt(_usd(total_upl)),
            "totalInitialMargin": fmt(_usd(total_im)),
            "totalMaintenanceMargin": fmt(_usd(total_mm)),
            "totalInitialMarginByMp": fmt(_usd(total_im)),
            "totalMaintenanceMarginByMp": fmt(_usd(total_mm)),
            "accountLTV": "0",
            "coin": items,
        }

    def list_orders(
        self, account: Account, params: dict[str, Any], *, history: bool
    ) -> dict[str, Any]:
        category = _category(params)
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        symbol = params.get("symbol")
        if (
            category != "spot"
            and not history
            and not (
                symbol or params.get("baseCoin") or params.get("settleCoin") or order_id or link_id
            )
        ):
            raise SandboxError(10001, "params error: symbol, baseCoin or settleCoin is required")
        limit = _limit(params, 20, 50)
        open_only = str(params.get("openOnly", "0"))
        wanted_symbol = normalize_symbol(str(symbol)) if symbol else None
        status_filter = params.get("orderStatus")
        order_filter = params.get("orderFilter")
        start, end = _window(params, 7) if history else (None, None)
        found = []
        for o in reversed(self._history(account).orders):
            if o.category != category:
                continue
            if order_id and o.order_id != order_id:
                continue
            if link_id and o.link_id != link_id:
                continue
            if wanted_symbol and o.market.inst.symbol != wanted_symbol:
                continue
            if params.get("baseCoin") and o.market.inst.base_coin != params["baseCoin"]:
                continue
            if params.get("settleCoin") and o.market.inst.settle_coin != params["settleCoin"]:
                continue
            if order_filter == "Order" and o.stop_order_type is not None:
                continue
            if order_filter == "StopOrder" and o.stop_order_type is None:
                continue
            if order_filter in ("tpslOrder", "OcoOrder", "BidirectionalTpslOrder"):
                continue  # spot TP/SL and OCO orders are not simulated
            if history:
                if o.is_open and not (order_id or link_id):
                    continue
                if status_filter and o.status != status_filter:
                    continue
                if start is not None and not start <= o.created_ms <= end:  # type: ignore[operator]
                    continue
            elif not (order_id or link_id):
                if open_only == "0" and not o.is_open:
                    continue
                if open_only != "0" and o.is_open:
                    continue
            found.append(o)
        found.sort(key=lambda o: o.created_ms, reverse=True)
        page, cursor = _page(found, params, limit)
        return {
            "category": category,
            "list": [o.to_wire("history" if history else "realtime") for o in page],
            "nextPageCursor": cursor,
        }

    def list_executions(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        category = _category(params)
        limit = _limit(params, 50, 100)
        symbol = params.get("symbol")
        wanted_symbol = normalize_symbol(str(symbol)) if symbol else None
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        exec_type = params.get("execType")
        start, end = _window(params, 7)
        found = []
        for row in reversed(self._history(account).executions):
            if row["category"] != category:
                continue
            if order_id and row["orderId"] != order_id:
                continue
            if link_id and row["orderLinkId"] != link_id:
                continue
            if not (order_id or link_id):
                if wanted_symbol and row["symbol"] != wanted_symbol:
                    continue
                t = int(row["execTime"])
                if not start <= t <= end:
                    continue
            if exec_type and row["execType"] != exec_type:
                continue
            found.append(row)
        page, cursor = _page(found, params, limit)
        # The REST rows carry fewer fields than the stream's (§8.10 vs §13.2).
        rest_rows = [{k: v for k, v in row.items() if k not in _WS_ONLY_EXEC} for row in page]
        return {"category": category, "list": rest_rows, "nextPageCursor": cursor}

    def transaction_log(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        limit = _limit(params, 20, 50)
        start, end = _window(params, 7, default_days=1)
        found = []
        for row in reversed(self._history(account).ledger):
            if params.get("category") and row["category"] != params["category"]:
                continue
            if params.get("currency") and row["currency"] != params["currency"]:
                continue
            if params.get("type") and row["type"] != params["type"]:
                continue
            if params.get("baseCoin") and not row["symbol"].startswith(params["baseCoin"]):
                continue
            t = int(row["transactionTime"])
            if not start <= t <= end:
                continue
            found.append(row)
        page, cursor = _page(found, params, limit)
        return {"list": page, "nextPageCursor": cursor}


# -- request helpers ------------------------------------------------------------------------------

_WS_ONLY_EXEC = frozenset({"category", "isLeverage", "execPnl", "marketUnit"})

_ENGINE_TIF = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PostOnly": TimeInForce.POST_ONLY,
}


def normalize_symbol(symbol: str) -> str:
    """Bybit tolerates ``BTC-USDT`` on some endpoints; the sandbox does everywhere."""
    return symbol.replace("-", "").replace("/", "").upper()


def _category(params: dict[str, Any]) -> str:
    category = params.get("category")
    if not category:
        raise SandboxError(10001, "params error: category is required")
    if category not in ("spot", "linear", "inverse", "option"):
        raise SandboxError(10001, f"params error: category {category} is invalid")
    if category in ("inverse", "option"):
        raise SandboxError(10001, f"category {category} is not available in this sandbox")
    return str(category)


def _refuse_unsupported_spot(params: dict[str, Any]) -> None:
    """Spot features this sandbox does not simulate are refused clearly, never half done."""
    order_filter = params.get("orderFilter")
    if order_filter not in (None, "", "Order"):
        raise SandboxError(
            10001,
            f"orderFilter {order_filter}: spot TP/SL and conditional orders are not "
            "simulated by this sandbox (use orderFilter=Order)",
        )
    for name in ("triggerPrice", "takeProfit", "stopLoss"):
        if params.get(name) not in (None, "", "0"):
            raise SandboxError(
                10001,
                f"{name}: spot TP/SL and conditional orders are not simulated by this sandbox",
            )
    if str(params.get("isLeverage", "0")) not in ("0", ""):
        raise SandboxError(
            10001, "isLeverage=1: spot margin trading is not simulated by this sandbox"
        )


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise SandboxError(10001, f"params error: {name} is required")
    return str(value)


def _side(value: Any) -> str:
    text = str(value or "").lower()
    if text == "buy":
        return "Buy"
    if text == "sell":
        return "Sell"
    if not value:
        raise SandboxError(10001, "params error: side is required")
    raise SandboxError(170117, "Invalid side.")


def _order_type(value: Any) -> str:
    text = str(value or "").lower()
    if text == "limit":
        return "Limit"
    if text == "market":
        return "Market"
    if not value:
        raise SandboxError(10001, "params error: orderType is required")
    raise SandboxError(170116, "Invalid orderType.")


def _tif(value: Any, order_type: str) -> str:
    if order_type == "Market":
        return "IOC"  # market orders are always IOC, whatever was sent
    if not value:
        return "GTC"
    for name in ("GTC", "IOC", "FOK", "PostOnly"):
        if str(value).lower() == name.lower():
            return name
    raise SandboxError(170115, "Invalid timeInForce.")


def _decimal(params: dict[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise SandboxError(10001, f"params error: {name} is required")
        return None
    if isinstance(value, bool):
        raise SandboxError(10001, f"params error: {name} must be a decimal string")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise SandboxError(10001, f"params error: {name} must be a decimal string") from None
    if not d.is_finite():
        raise SandboxError(10001, f"params error: {name} must be a finite number")
    return d


def _limit(params: dict[str, Any], default: int, maximum: int) -> int:
    value = params.get("limit")
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SandboxError(10001, "params error: limit must be an integer") from None
    if not 1 <= n <= maximum:
        raise SandboxError(10001, f"params error: limit must be in [1, {maximum}]")
    return n


def _window(params: dict[str, Any], max_days: int, default_days: int = 7) -> tuple[int, int]:
    day = 86_400_000
    start = params.get("startTime")
    end = params.get("endTime")
    try:
        s = int(start) if start not in (None, "") else None
        e = int(end) if end not in (None, "") else None
    except (TypeError, ValueError):
        raise SandboxError(10001, "params error: startTime/endTime must be ms integers") from None
    if s is None and e is None:
        e = now_ms()
        s = e - default_days * day
    elif s is None:
        assert e is not None
        s = e - default_days * day
    elif e is None:
        e = s + default_days * day
    if e < s:
        raise SandboxError(10001, "params error: endTime must not be before startTime")
    if e - s > max_days * day:
        raise SandboxError(10001, f"params error: the window may span at most {max_days} days")
    return s, e


def _page(items: list[Any], params: dict[str, Any], limit: int) -> tuple[list[Any], str]:
    cursor = params.get("cursor")
    offset = 0
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(str(cursor).encode()).decode().split(":")[1])
        except (ValueError, IndexError, UnicodeDecodeError):
            raise SandboxError(10001, "params error: cursor is invalid") from None
    page = items[offset : offset + limit]
    nxt = offset + limit
    token = base64.urlsafe_b64encode(f"o:{nxt}".encode()).decode() if nxt < len(items) else ""
    return page, token


def _avg(value: Decimal, qty: Decimal, inst: Instrument) -> Decimal:
    if qty == 0:
        return ZERO
    avg = value / qty
    # Bybit shows the average with a few more decimals than the tick.
    return avg.quantize(Decimal(1).scaleb(-(inst.price_decimals + 4))).normalize()


def _ratio(a: Decimal, b: Decimal) -> Decimal:
    if b <= 0:
        return ZERO
    return (a / b).quantize(Decimal("0.0001"))


def _usd(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.00000001"))


def _tick_direction(prev: str | None, price: str, market: Market) -> str:
    if prev is None:
        return "ZeroPlusTick"
    p0, p1 = Decimal(prev), Decimal(price)
    if p1 > p0:
        return "PlusTick"
    if p1 < p0:
        return "MinusTick"
    last = market.trades[-1].get("L", "ZeroPlusTick") if market.trades else "ZeroPlusTick"
    return "ZeroPlusTick" if last in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"
