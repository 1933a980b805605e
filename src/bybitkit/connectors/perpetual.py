"""The perpetual connector: ``bybit_perpetual``, ``bybit_perpetual_testnet``,
``bybit_perpetual_demo`` and ``sandbox_perpetual``.

Linear perpetuals on the unified account: USDT-settled (``BTC-USDT`` is ``BTCUSDT``) and
USDC-settled (``BTC-USDC`` is ``BTCPERP``), each routed with its own settle coin. On top of the
shared connector:

* position mode per symbol, read from ``/v5/position/list`` (never forced); ``positionIdx`` set
  on every order from the mode, the side and ``position_action`` (``"open"``/``"close"``, needed
  in hedge mode, where a Sell either opens a short or closes a long); two positions per symbol
  in hedge mode, keyed by index, so an empty leg never wipes the other;
* leverage read and set per symbol, idempotently (``110043`` is success);
* positions from the private ``position`` topic and ``/v5/position/list``, reconciled at start
  and after every reconnect;
* funding info from the ``tickers`` topic (snapshot and deltas merged); every funding payment
  taken from its ``execType=Funding`` execution (``execFee``, ``feeRate``), keyed by ``execId``
  and stored, so it is counted once across reconnects and restarts;
* a limit price beyond the band is moved to it by Bybit: the connector reports it
  (:class:`~bybitkit.trading.events.PriceClamped`, and a warning) instead of refusing.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from bybitkit.connectors.base import BybitConnector
from bybitkit.errors import ConfigError, NotModified, ValidationError
from bybitkit.money import fmt, optional_decimal, to_decimal
from bybitkit.trading.events import FundingPaid, PositionChanged, PriceClamped
from bybitkit.trading.rules import TradingRules
from bybitkit.trading.types import (
    ZERO,
    FundingInfo,
    FundingPayment,
    Order,
    OrderType,
    Position,
    PositionMode,
    Side,
    now_ms,
)
from bybitkit.v5 import schemas as s
from bybitkit.v5.environments import Stream

log = logging.getLogger(__name__)

SETTLE_COINS = ("USDT", "USDC")
TRIGGER_BY = {"last": "LastPrice", "mark": "MarkPrice", "index": "IndexPrice"}


class PerpetualConnector(BybitConnector):
    """Bybit linear perpetuals (USDT- and USDC-settled)."""

    category = "linear"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modes: dict[str, PositionMode] = {}
        self.leverages: dict[str, Decimal] = {}
        self.positions_cache: dict[tuple[str, int], Position] = {}
        self._tickers: dict[str, dict[str, Any]] = {}
        self._ticker_ready: dict[str, asyncio.Event] = {}
        self.margin_mode: str | None = None

    # -- category specifics ---------------------------------------------------------------------

    @property
    def public_stream(self) -> Stream:
        return Stream.LINEAR

    @property
    def private_topics(self) -> list[str]:
        return ["order.linear", "execution.linear", "position.linear", "wallet"]

    def _rules_from(self, item: Any) -> TradingRules:
        return TradingRules.from_linear(item)

    def _accepts(self, item: Any) -> bool:
        # Perpetuals only: dated futures share the category but are out of scope here.
        return getattr(item, "contractType", None) == "LinearPerpetual"

    def _open_filters(self) -> list[dict[str, Any]]:
        return [{"settleCoin": c} for c in SETTLE_COINS]

    async def _start(self) -> None:
        await super()._start()
        if self.credentials is not None:
            info = await self.rest.account_info()
            self.margin_mode = info.marginMode

    # -- tickers and funding info ---------------------------------------------------------------

    async def watch(self, pair: str, timeout: float = 10.0) -> None:
        """Subscribe to a pair's ticker (funding info, mark and index prices)."""
        pair = self.normalize_pair(pair)
        if pair in self._ticker_ready:
            event = self._ticker_ready[pair]
        else:
            event = self._ticker_ready[pair] = asyncio.Event()
            if self._tickers.get(pair):  # already streaming (a mark-price candle feed)
                event.set()
            assert self.public is not None
            await self.public.subscribe([f"tickers.{self.rules[pair].symbol}"], timeout=timeout)
        async with asyncio.timeout(timeout):
            await event.wait()

    async def order_book(self, pair: str, timeout: float = 10.0) -> Any:
        book = await super().order_book(pair, timeout)
        await self.watch(pair, timeout)
        # Learn the pair's position mode now, not on its first order: an order then goes out
        # with no await between a caller's check of the book and the book stamp taken for it
        # (a REST call in between let a book go stale after the runner's rail had passed it).
        await self._ensure_mode(self.normalize_pair(pair))
        return book

    def on_public_extra(self, msg: Any) -> None:
        if not isinstance(msg, s.TickerMessage):
            return
        data = msg.data
        pair = self._pair_of_symbol.get(data.symbol)
        if pair is None:
            return
        current = self._tickers.setdefault(pair, {})
        if msg.type == "snapshot":
            current.clear()
        for name in ("markPrice", "indexPrice", "fundingRate", "nextFundingTime",
                     "fundingIntervalHour", "lastPrice"):  # fmt: skip
            value = getattr(data, name, None)
            if value is not None:
                current[name] = value
        self._on_mark_price(pair, current.get("markPrice"), msg.ts)
        ready = self._ticker_ready.get(pair)
        if ready is not None:
            ready.set()

    def funding_info(self, pair: str) -> FundingInfo:
        """The latest funding info of ``pair`` from its ticker stream (see :meth:`watch`)."""
        pair = self.normalize_pair(pair)
        t = self._tickers.get(pair)
        if t is None:
            raise ConfigError(f"no ticker for {pair} yet: await ex.watch({pair!r}) first")
        interval = t.get("fundingIntervalHour")
        return FundingInfo(
            pair=pair,
            mark_price=t.get("markPrice"),
            index_price=t.get("indexPrice"),
            rate=t.get("fundingRate"),
            next_funding_ms=t.get("nextFundingTime"),
            interval_hours=int(interval) if interval is not None else None,
        )

    # -- modes and leverage ---------------------------------------------------------------------

    async def _load_symbol(self, pair: str) -> None:
        """Learn a symbol's position mode and leverage from ``/v5/position/list``."""
        res = await self.rest.positions(category="linear", symbol=self.rules[pair].symbol)
        self._apply_position_rows(res.list, emit=False)

    async def position_mode(self, pair: str) -> PositionMode:
        pair = self.normalize_pair(pair)
        if pair not in self.modes:
            await self._load_symbol(pair)
        return self.modes.get(pair, PositionMode.ONE_WAY)

    async def set_position_mode(self, pair: str, mode: PositionMode | str) -> None:
        """Switch a symbol between one-way and hedge mode (Bybit's rules: USDT perpetuals only,
        no open position or order on it); unchanged is success."""
        self._need_credentials()
        pair = self.normalize_pair(pair)
        target = PositionMode.parse(mode, "mode")
        try:
            await self.rest.switch_position_mode(
                category="linear",
                symbol=self.rules[pair].symbol,
                mode=3 if target is PositionMode.HEDGE else 0,
            )
        except NotModified:
            pass
        self.modes[pair] = target
        await self._load_symbol(pair)

    async def set_leverage(self, pair: str, leverage: Decimal | str | int) -> None:
        """Set a symbol's leverage (buy = sell, cross margin); unchanged is success."""
        self._need_credentials()
        pair = self.normalize_pair(pair)
        lev = to_decimal(leverage, "leverage")
        try:
            await self.rest.set_leverage("linear", self.rules[pair].symbol, lev, lev)
        except NotModified:
            pass
        self.leverages[pair] = lev

    async def leverage(self, pair: str) -> Decimal:
        pair = self.normalize_pair(pair)
        if pair not in self.leverages:
            await self._load_symbol(pair)
        return self.leverages[pair]

    # -- positions ------------------------------------------------------------------------------

    def _position(self, row: Any) -> Position | None:
        pair = self._pair_of_symbol.get(row.symbol)
        if pair is None:
            return None
        size = row.size or ZERO
        entry = row.avgPrice if row.avgPrice is not None else row.entryPrice
        return Position(
            pair=pair,
            side=Side.parse(row.side) if row.side and size else None,
            size=size,
            position_idx=row.positionIdx,
            entry_price=entry or ZERO,
            mark_price=row.markPrice or ZERO,
            unrealised_pnl=row.unrealisedPnl or ZERO,
            realised_pnl=row.cumRealisedPnl or ZERO,
            leverage=row.leverage or ZERO,
            liq_price=row.liqPrice,
            updated_ms=row.updatedTime or now_ms(),
        )

    def _apply_position_rows(self, rows: Any, *, emit: bool = True) -> None:
        for row in rows:
            pos = self._position(row)
            if pos is None:
                continue
            self.modes[pos.pair] = (
                PositionMode.HEDGE if pos.position_idx in (1, 2) else PositionMode.ONE_WAY
            )
            if pos.leverage:
                self.leverages[pos.pair] = pos.leverage
            key = (pos.pair, pos.position_idx)  # one entry per leg: a flat leg never wipes
            old = self.positions_cache.get(key)
            self.positions_cache[key] = pos
            if self.store is not None:
                from bybitkit.store import PositionRecord

                self.store.upsert_position(
                    PositionRecord(
                        connector=self.connector_id,
                        pair=pos.pair,
                        position_idx=pos.position_idx,
                        side=pos.side.name if pos.side else "",
                        size=pos.size,
                        entry_price=pos.entry_price,
                        mark_price=pos.mark_price,
                        unrealised_pnl=pos.unrealised_pnl,
                        realised_pnl=pos.realised_pnl,
                        leverage=pos.leverage,
                        liq_price=pos.liq_price,
                        updated_ms=pos.updated_ms,
                    )
                )
            if emit and (old is None or old != pos):
                self._emit(PositionChanged(now_ms(), pos))

    async def positions(self) -> list[Position]:
        """Every open position (fresh from the exchange, both settle coins)."""
        self._need_credentials()
        await self._sync_positions()
        return [p for p in self.positions_cache.values() if p.size]

    async def _sync_positions(self) -> None:
        """Every leg from ``/v5/position/list`` by settle coin. Listed by settle coin, Bybit
        shows non-zero positions only: a leg we hold that is no longer listed went flat while
        its push was missed (a private stream outage, a restart), so it is read again by symbol
        (which lists it, flat) rather than kept. The legs the store holds count as held too:
        after a restart they are all we know of."""
        held = {key for key, pos in self.positions_cache.items() if pos.size}
        if self.store is not None:
            held |= {
                (r.pair, r.position_idx) for r in self.store.positions(self.connector_id) if r.size
            }
        for coin in SETTLE_COINS:
            res = await self.rest.positions(category="linear", settleCoin=coin)
            seen = {(self._pair_of_symbol.get(r.symbol), r.positionIdx) for r in res.list}
            self._apply_position_rows(res.list)
            gone = {
                pair
                for pair, idx in held - seen
                if (rules := self.rules.get(pair)) is not None and rules.settle_coin == coin
            }
            for pair in sorted(gone):
                await self._load_symbol(pair)

    def on_private_extra(self, msg: Any) -> None:
        if isinstance(msg, s.PositionMessage):
            self._apply_position_rows([p for p in msg.data if p.category in (None, "linear")])

    async def _reconcile_extra(self) -> None:
        await self._sync_positions()

    # -- funding --------------------------------------------------------------------------------

    def on_other_execution(self, item: s.Execution) -> None:
        if item.execType != "Funding":
            return
        pair = self._pair_of_symbol.get(item.symbol)
        if pair is None:
            return
        payment = FundingPayment(
            exec_id=item.execId,
            pair=pair,
            side=Side.parse(item.side or "Buy"),
            size=item.execQty or ZERO,
            mark_price=item.execPrice or item.markPrice or ZERO,
            rate=item.feeRate or ZERO,
            amount=item.execFee or ZERO,
            ts_ms=item.execTime or now_ms(),
        )
        if self.store is not None:
            from bybitkit.store import FundingRecord

            new = self.store.add_funding(
                FundingRecord(
                    connector=self.connector_id,
                    exec_id=payment.exec_id,
                    pair=pair,
                    side=payment.side.name,
                    position_size=payment.size,
                    mark_price=payment.mark_price,
                    rate=payment.rate,
                    amount=payment.amount,
                    ts_ms=payment.ts_ms,
                )
            )
            if not new:
                return
        self._emit(FundingPaid(now_ms(), payment))

    async def funding_payments(
        self, pair: str | None = None, since: int | None = None
    ) -> list[FundingPayment]:
        """Every funding payment booked (from the store), oldest first."""
        assert self.store is not None
        rows = self.store.funding(
            self.connector_id, pair=self.normalize_pair(pair) if pair else None, since_ms=since
        )
        return [
            FundingPayment(
                exec_id=r.exec_id,
                pair=r.pair,
                side=Side[r.side],
                size=r.position_size,
                mark_price=r.mark_price,
                rate=r.rate,
                amount=r.amount,
                ts_ms=r.ts_ms,
            )
            for r in rows
        ]

    # -- orders ---------------------------------------------------------------------------------

    def _extra_params(self, order: Order, params: dict[str, Any], opts: dict[str, Any]) -> None:
        reduce_only = bool(opts.pop("reduce_only", False))
        action = opts.pop("position_action", None)
        if action not in (None, "open", "close"):
            raise ValidationError("position_action", "open, close or nothing", action)
        mode = self.modes.get(order.pair, PositionMode.ONE_WAY)
        if mode is PositionMode.HEDGE:
            if action is None:
                if not reduce_only:
                    raise ValidationError(
                        "position_action",
                        f"open or close ({order.pair} is in hedge mode, where a "
                        f"{order.side.value} could do either)",
                    )
                action = "close"
            opens_long = (order.side is Side.BUY) == (action == "open")
            idx = 1 if opens_long else 2
            if action == "close":
                reduce_only = True
        else:
            idx = 0
            if action == "close":
                reduce_only = True
        params["positionIdx"] = idx
        order.position_idx = idx
        if reduce_only:
            params["reduceOnly"] = True
            order.reduce_only = True
        trigger = optional_decimal(opts.pop("trigger_price", None), "trigger_price")
        direction = opts.pop("trigger_direction", None)
        trigger_by = opts.pop("trigger_by", None)
        if trigger is not None:
            params["triggerPrice"] = fmt(trigger)
            if direction is not None:
                d = {"rise": 1, "fall": 2, 1: 1, 2: 2}.get(direction)
                if d is None:
                    raise ValidationError("trigger_direction", "rise or fall", direction)
                params["triggerDirection"] = d
            by = TRIGGER_BY.get(str(trigger_by or "last").lower())
            if by is None:
                raise ValidationError("trigger_by", "last, mark or index", trigger_by)
            params["triggerBy"] = by
            order.extra["trigger_price"] = str(trigger)
        for name, wire in (("take_profit", "takeProfit"), ("stop_loss", "stopLoss")):
            value = optional_decimal(opts.pop(name, None), name)
            if value is not None:
                params[wire] = fmt(value)
        if order.price is not None:
            order.extra["requested_price"] = str(order.price)

    async def _ensure_mode(self, pair: str) -> None:
        if pair not in self.modes and self.credentials is not None:
            await self._load_symbol(pair)

    async def _before_order(self, pair: str) -> None:
        # Orders carry options beyond spot's: reduce_only, position_action ("open"/"close";
        # needed in hedge mode), trigger_price (+ trigger_direction "rise"/"fall", trigger_by
        # last/mark/index), take_profit, stop_loss.
        await self._ensure_mode(pair)

    def _order_update(self, item: s.Order) -> Any:
        update = super()._order_update(item)
        order = self.tracker.get(item.orderLinkId) if self.tracker and item.orderLinkId else None
        requested = order.extra.get("requested_price") if order is not None else None
        if (
            order is not None
            and requested is not None
            and item.price
            and item.orderType == "Limit"
            and Decimal(requested) != item.price
            and not order.extra.get("clamp_reported")
        ):
            order.extra["clamp_reported"] = True
            log.warning(
                "order price moved to the band pair=%s requested=%s clamped=%s",
                order.pair, requested, fmt(item.price),
            )  # fmt: skip
            self._emit(PriceClamped(now_ms(), order, Decimal(requested), item.price))
        return update

    async def close_position(self, pair: str, side: Side | str | None = None) -> list[Order]:
        """Close a position at market (one-way: the position; hedge: the ``side`` leg, or both
        legs without ``side``). Returns the closing orders."""
        self._need_credentials()
        pair = self.normalize_pair(pair)
        await self._ensure_mode(pair)
        res = await self.rest.positions(category="linear", symbol=self.rules[pair].symbol)
        self._apply_position_rows(res.list)
        want = Side.parse(side, "side") if side is not None else None
        orders = []
        for row in res.list:
            pos = self._position(row)
            if pos is None or not pos.size or pos.side is None:
                continue
            if want is not None and pos.side is not want:
                continue
            closing = pos.side.opposite
            order = await self.place_order(
                pair, closing, OrderType.MARKET, pos.size,
                reduce_only=True, position_action="close",
            )  # fmt: skip
            orders.append(order)
        return orders

    async def set_trading_stop(
        self,
        pair: str,
        take_profit: Decimal | str | None = None,
        stop_loss: Decimal | str | None = None,
        *,
        side: Side | str | None = None,
        trigger_by: str = "last",
    ) -> None:
        """Set (or with ``"0"`` remove) a position's take-profit and stop-loss (Full mode);
        in hedge mode ``side`` picks the leg (``buy`` = the long)."""
        self._need_credentials()
        pair = self.normalize_pair(pair)
        await self._ensure_mode(pair)
        by = TRIGGER_BY.get(trigger_by.lower())
        if by is None:
            raise ValidationError("trigger_by", "last, mark or index", trigger_by)
        if self.modes.get(pair) is PositionMode.HEDGE:
            if side is None:
                raise ValidationError("side", "buy (the long leg) or sell (the short leg)")
            idx = 1 if Side.parse(side, "side") is Side.BUY else 2
        else:
            idx = 0
        params: dict[str, Any] = {
            "category": "linear",
            "symbol": self.rules[pair].symbol,
            "tpslMode": "Full",
            "positionIdx": idx,
        }
        tp = optional_decimal(take_profit, "take_profit")
        sl = optional_decimal(stop_loss, "stop_loss")
        if tp is None and sl is None:
            raise ValidationError("take_profit/stop_loss", "at least one of them")
        if tp is not None:
            params["takeProfit"] = fmt(tp)
            params["tpTriggerBy"] = by
        if sl is not None:
            params["stopLoss"] = fmt(sl)
            params["slTriggerBy"] = by
        try:
            await self.rest.trading_stop(**params)
        except NotModified:
            pass


__all__ = ["PerpetualConnector"]
