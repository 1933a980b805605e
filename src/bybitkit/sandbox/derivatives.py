"""Linear perpetuals in the sandbox: positions, modes, leverage, margin, funding, TP/SL,
conditional orders and liquidation, on the same books and accounts as spot.

Documented formulas (the sandbox's own, a single risk tier per symbol; REFERENCE §9-§10):

* position value = size x entry price; initial margin ``positionIM`` = value / leverage;
  maintenance margin ``positionMM`` = size x mark price x the symbol's MM rate;
* unrealised PnL from the mark price: (mark - entry) x size for a long, (entry - mark) x size
  for a short;
* an open order that can increase a position holds ``totalOrderIM`` = its increasing quantity x
  its price (market: the mark) / leverage;
* margin is counted per settle coin (USDT perpetuals against the USDT wallet, USDC against USDC):
  available = wallet - spot holds - order IM - position IM + any unrealised loss (a profit is
  not spendable until realised); equity = wallet + unrealised PnL;
* liquidation when equity < the coin's total MM: the account's orders in that coin are cancelled
  first, then the position with the largest MM is taken over by the insurance fund at its
  bankruptcy price (the mark at which equity would be 0, the other positions held), which
  closes it at the market; the fund keeps what that close makes (Bybit's liquidation fee and
  buffer). ``liqPrice`` is the mark at which equity = MM, ``bustPrice`` the one at which it is 0;
* funding every interval: each position pays (long, positive rate) or receives rate x size x
  mark, booked once: an ``execType=Funding`` execution (``execFee`` positive = paid, ``feeRate``
  signed by side), a ``SETTLEMENT`` ledger row (``funding`` positive = received), the wallet, and
  the position's cumulative realised PnL. Longs and shorts hold equal sizes (the house is a
  counterparty too), so every payment is matched.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from bybitkit.matching import Side
from bybitkit.money import fmt
from bybitkit.sandbox.accounts import ZERO, Account
from bybitkit.sandbox.exchange import (
    LINK_ID_RE,
    Event,
    Market,
    SandboxError,
    SOrder,
    _decimal,
    _order_type,
    _required,
    _side,
    _tif,
    normalize_symbol,
    now_ms,
)

if TYPE_CHECKING:
    from bybitkit.sandbox.exchange import Exchange

DEFAULT_LEVERAGE = Decimal(10)
QUANT = Decimal("1e-12")
DEFAULT_FUNDING_RATE = Decimal("0.0001")
MAX_CONDITIONALS = 10
TRIGGER_BYS = ("LastPrice", "MarkPrice", "IndexPrice")


@dataclass
class Position:
    symbol: str
    idx: int  # 0 one-way, 1 hedge long, 2 hedge short
    settle: str
    size: Decimal = ZERO  # signed: long > 0, short < 0
    # The cost basis (sum of qty x price of what is open), kept exactly: PnL is computed from it,
    # so realised and unrealised PnL always add up to zero across all accounts.
    cost: Decimal = ZERO
    cum_realised: Decimal = ZERO
    cur_realised: Decimal = ZERO
    open_fees: Decimal = ZERO  # fees paid opening what is still open (for closed PnL)
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: str = "LastPrice"
    sl_trigger_by: str = "LastPrice"
    tpsl_mode: str = "Full"
    status: str = "Normal"
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    seq: int = -1

    @property
    def side(self) -> str:
        return "Buy" if self.size > 0 else "Sell" if self.size < 0 else ""

    @property
    def entry(self) -> Decimal:
        """The average entry price (for display and liquidation estimates)."""
        return self.cost / abs(self.size) if self.size else ZERO

    def upl(self, mark: Decimal) -> Decimal:
        return (mark * abs(self.size) - self.cost) * (1 if self.size > 0 else -1)


@dataclass
class LinearState:
    """One account's derivatives settings and positions."""

    modes: dict[str, int] = field(default_factory=dict)  # symbol -> 0 one-way, 3 hedge
    coin_modes: dict[str, int] = field(default_factory=dict)  # settle coin -> default mode
    leverage: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    closed_pnl: list[dict[str, Any]] = field(default_factory=list)


class Derivatives:
    """The linear side of one sandbox exchange."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.states: dict[int, LinearState] = {}
        self.funding_rates: dict[str, Decimal] = {}
        self.funding_history: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
        self.insurance = exchange.new_account(house=True, name="insurance")
        self._busy = False
        self._seq = itertools.count(1)
        # conditional and TP/SL orders waiting for their trigger, per market
        self.untriggered: dict[tuple[str, str], set[SOrder]] = defaultdict(set)
        self.next_funding: dict[str, int] = {}
        # positions that a fill reduced: their reduce-only orders are trimmed after the match
        self._shrunk: list[tuple[Account, Market, Position]] = []

    # -- state ----------------------------------------------------------------------------------

    def state(self, account: Account) -> LinearState:
        st = self.states.get(account.uid)
        if st is None:
            st = self.states[account.uid] = LinearState()
        return st

    def mode(self, account: Account, market: Market) -> int:
        st = self.state(account)
        sym = market.inst.symbol
        return st.modes.get(sym, st.coin_modes.get(market.inst.settle_coin, 0))

    def leverage(self, account: Account, symbol: str) -> Decimal:
        return self.state(account).leverage.get(symbol, DEFAULT_LEVERAGE)

    def position(self, account: Account, market: Market, idx: int) -> Position:
        st = self.state(account)
        key = (market.inst.symbol, idx)
        pos = st.positions.get(key)
        if pos is None:
            pos = st.positions[key] = Position(market.inst.symbol, idx, market.inst.settle_coin)
        return pos

    def mmr(self, market: Market) -> Decimal:
        return market.inst.maintenance_margin_rate

    def _linear_markets(self) -> list[Market]:
        return [m for m in self.ex.markets.values() if m.inst.category == "linear"]

    def mark(self, market: Market) -> Decimal:
        if market.mark_exact is not None:
            return market.mark_exact
        return market.inst.from_ticks(market.mark_ticks)

    # -- margin ---------------------------------------------------------------------------------

    def coin_margin(self, account: Account, coin: str) -> dict[str, Decimal]:
        """Position IM/MM and unrealised PnL of ``account`` in settle coin ``coin``."""
        im = mm = upl = ZERO
        st = self.states.get(account.uid)
        if st is not None:
            for (symbol, _), pos in st.positions.items():
                if pos.settle != coin or pos.size == 0:
                    continue
                market = self.ex.markets[("linear", symbol)]
                mark = self.mark(market)
                size = abs(pos.size)
                im += pos.cost / self.leverage(account, symbol)
                mm += size * mark * self.mmr(market)
                upl += pos.upl(mark)
        return {"im": im, "mm": mm, "upl": upl}

    def available(self, account: Account, coin: str) -> Decimal:
        c = account.coin(coin)
        m = self.coin_margin(account, coin)
        return c.wallet - c.locked - c.order_im - m["im"] + min(m["upl"], ZERO)

    def sync_coin(self, account: Account, coin: str) -> None:
        """Refresh the wallet coin's derivative fields (what wallet-balance shows)."""
        c = account.coin(coin)
        m = self.coin_margin(account, coin)
        c.position_im = m["im"]
        c.position_mm = m["mm"]
        c.unrealised_pnl = m["upl"]

    # -- order entry ----------------------------------------------------------------------------

    def create_order(
        self, account: Account, params: dict[str, Any], *, create_type: str = "CreateByUser"
    ) -> dict[str, Any]:
        ex = self.ex
        market = ex.market("linear", _required(params, "symbol"))
        inst = market.inst
        side = _side(params.get("side"))
        order_type = _order_type(params.get("orderType"))
        tif = _tif(params.get("timeInForce"), order_type)
        reduce_only = _bool(params.get("reduceOnly"))
        close_on_trigger = _bool(params.get("closeOnTrigger"))
        link_id = str(params.get("orderLinkId") or "")
        if link_id and not LINK_ID_RE.match(link_id):
            raise SandboxError(10001, "params error: orderLinkId must be 1-36 of [0-9A-Za-z_-]")
        link_key = (account.uid, "linear", link_id)
        if link_id and link_key in ex.link_ids_used:
            raise SandboxError(110072, "OrderLinkedID is duplicate")
        idx = self._position_idx(account, market, params.get("positionIdx"), side)
        pos = self.position(account, market, idx)
        # In hedge mode index 1 is the long side and 2 the short side: the other side's order on
        # an index closes that position, never opens the opposite one in it.
        closes_hedge = idx in (1, 2) and (idx == 1) != (side == "Buy")
        qty = _decimal(params, "qty", required=True)
        assert qty is not None
        if qty == 0 and reduce_only and close_on_trigger:
            if pos.size == 0:
                raise SandboxError(
                    110017, "current position is zero, cannot fix reduce-only order qty"
                )
            qty = abs(pos.size)  # close-position
        if qty <= 0:
            raise SandboxError(10001, "params error: qty must be positive")
        if qty % inst.lot_size:
            raise SandboxError(
                10001, f"params error: qty must be a multiple of {fmt(inst.lot_size)}"
            )
        if qty < inst.min_order_qty:
            raise SandboxError(10001, "The number of contracts exceeds minimum limit allowed")
        cap = inst.max_mkt_order_qty if order_type == "Market" else inst.max_order_qty
        if qty > cap:
            raise SandboxError(10001, "The number of contracts exceeds maximum limit allowed")
        price: Decimal | None = None
        clamped: Decimal | None = None
        trigger = _decimal(params, "triggerPrice")
        if order_type == "Limit":
            price = _decimal(params, "price", required=True)
            assert price is not None
            if price <= 0 or price % inst.tick_size:
                raise SandboxError(
                    10001, f"params error: price must be a multiple of {fmt(inst.tick_size)}"
                )
            if price < inst.min_price or price > inst.max_price:
                raise SandboxError(110003, "Order price is out of permissible range")
            buy_lmt, sell_lmt = market.band()
            if trigger is None and (
                (side == "Buy" and price > buy_lmt) or (side == "Sell" and price < sell_lmt)
            ):
                limit = buy_lmt if side == "Buy" else sell_lmt
                if account.lpa_perp:  # reject mode
                    code = 110121 if side == "Buy" else 110120
                    raise SandboxError(code, f"Order price is beyond the price limit {fmt(limit)}")
                clamped, price = price, limit  # Bybit's default: moved to the band
        ref = price if price is not None else self.mark(market)
        if qty * ref < inst.min_notional_value and not reduce_only:
            raise SandboxError(110094, "Order does not meet minimum order value")
        if reduce_only or closes_hedge:
            # what the position has left once the closing orders already resting have filled
            reducible = self._closing_room(account, market, pos, side)
            if reducible == 0:
                if closes_hedge and not reduce_only:
                    raise SandboxError(
                        110017,
                        f"positionIdx {idx} holds no {'long' if idx == 1 else 'short'} "
                        f"position for this {side} to close",
                    )
                if self._reducible(pos, side):
                    raise SandboxError(
                        110017,
                        "Reduce-only rule not satisfied: resting reduce-only orders already "
                        "cover the position",
                    )
                raise SandboxError(110017, "Reduce-only order has same side with current position")
            qty = min(qty, reducible)
        has_tpsl = any(params.get(n) not in (None, "", "0") for n in ("takeProfit", "stopLoss"))
        if has_tpsl and (reduce_only or closes_hedge or trigger is not None):
            raise SandboxError(110057, "TP/SL not allowed with reduce-only or conditional orders")
        if order_type == "Market" and trigger is None:
            # converted to an IOC limit order at the protective price: the band's edge
            buy_lmt, sell_lmt = market.band()
            price = buy_lmt if side == "Buy" else sell_lmt
        order = SOrder(
            ex._new_order_id("linear"), link_id, account, market, side, order_type, tif, price,
            qty, "",
        )  # fmt: skip
        order.position_idx = idx
        order.reduce_only = reduce_only
        order.close_on_trigger = close_on_trigger
        order.create_type = create_type
        order.clamped_from = clamped
        if has_tpsl:
            self._attach_tpsl(order, params, ref if order_type == "Limit" else self.mark(market))
        if trigger is not None:
            self._conditional(order, params, trigger)
            if link_id:
                ex.link_ids_used.add(link_key)
            ex._register(order)
            ex._order_event(order)
            self.position_event(account, market, pos)
            return {"orderId": order.order_id, "orderLinkId": order.link_id}
        self._hold_im(order, pos)
        if link_id:
            ex.link_ids_used.add(link_key)
        ex._register(order)
        ex._execute(order)
        self.after_change(account, market)
        if order.cum_qty == 0:  # no fill pushed the position: the create does (§13.3)
            self.position_event(account, market, pos)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _attach_tpsl(self, order: SOrder, params: dict[str, Any], ref: Decimal) -> None:
        """Validate and keep a create's takeProfit / stopLoss (applied when the order fills)."""
        inst = order.market.inst
        mode = str(params.get("tpslMode") or "Full")
        if mode not in ("Full", "Partial"):
            raise SandboxError(10001, "params error: tpslMode must be Full or Partial")
        order.tpsl_mode = mode
        long = order.side == "Buy"
        for name, prefix in (("takeProfit", "tp"), ("stopLoss", "sl")):
            value = _decimal(params, name)
            if value is None or value == 0:
                continue
            if value < 0 or value % inst.tick_size:
                raise SandboxError(
                    10001, f"params error: {name} must be a multiple of {fmt(inst.tick_size)}"
                )
            wants_rise = (name == "takeProfit") == long
            if (wants_rise and value <= ref) or (not wants_rise and value >= ref):
                raise SandboxError(
                    10001,
                    f"{name} for a {order.side} order should be "
                    f"{'higher' if wants_rise else 'lower'} than the base price {fmt(ref)}",
                )
            by = str(params.get(f"{prefix}TriggerBy") or "LastPrice")
            if by not in TRIGGER_BYS:
                raise SandboxError(
                    10001,
                    f"params error: {prefix}TriggerBy must be one of {', '.join(TRIGGER_BYS)}",
                )
            kind, limit = self._tpsl_order_type(params, prefix, mode, inst)
            setattr(order, "take_profit" if prefix == "tp" else "stop_loss", value)
            setattr(order, f"{prefix}_trigger_by", by)
            setattr(order, f"{prefix}_order_type", kind)
            setattr(order, f"{prefix}_limit_price", limit)

    @staticmethod
    def _tpsl_order_type(
        params: dict[str, Any], prefix: str, mode: str, inst: Any
    ) -> tuple[str, Decimal | None]:
        """(order type, limit price) of a TP or SL: Limit only in Partial mode, with its price."""
        kind = str(params.get(f"{prefix}OrderType") or "Market")
        if kind not in ("Market", "Limit"):
            raise SandboxError(10001, f"params error: {prefix}OrderType must be Market or Limit")
        if kind == "Market":
            return kind, None
        if mode != "Partial":
            raise SandboxError(
                10001, f"params error: {prefix}OrderType=Limit needs tpslMode=Partial"
            )
        limit = _decimal(params, f"{prefix}LimitPrice", required=True)
        assert limit is not None
        if limit <= 0 or limit % inst.tick_size:
            raise SandboxError(
                10001,
                f"params error: {prefix}LimitPrice must be a multiple of {fmt(inst.tick_size)}",
            )
        return kind, limit

    def _position_idx(self, account: Account, market: Market, raw: Any, side: str) -> int:
        mode = self.mode(account, market)
        try:
            idx = int(raw) if raw not in (None, "") else (0 if mode == 0 else -1)
        except (TypeError, ValueError):
            raise SandboxError(10001, "params error: positionIdx must be 0, 1 or 2") from None
        if mode == 0 and idx != 0:
            raise SandboxError(10001, "position idx not match position mode")
        if mode == 3 and idx not in (1, 2):
            raise SandboxError(10001, "position idx not match position mode")
        return idx

    @staticmethod
    def _reducible(pos: Position, side: str) -> Decimal:
        if side == "Buy" and pos.size < 0:
            return -pos.size
        if side == "Sell" and pos.size > 0:
            return pos.size
        return ZERO

    def _increasing_qty(self, order: SOrder, pos: Position) -> Decimal:
        if order.reduce_only:
            return ZERO
        if pos.idx in (1, 2):
            opens = (pos.idx == 1) == (order.side == "Buy")
            return order.qty - order.cum_qty if opens else ZERO
        return max(ZERO, order.qty - order.cum_qty - self._reducible(pos, order.side))

    def _hold_im(self, order: SOrder, pos: Position) -> None:
        """Hold initial margin for what the order may add to the position (110007 if short)."""
        account = order.account
        market = order.market
        order.hold_coin = market.inst.settle_coin
        inc = self._increasing_qty(order, pos)
        # a market order's price is its protective bound; its margin is at the mark price
        price = (
            order.price
            if order.price is not None and order.order_type == "Limit"
            else self.mark(market)
        )
        im = inc * price / self.leverage(account, market.inst.symbol)
        if not account.house and im > 0 and self.available(account, order.hold_coin) < im:
            raise SandboxError(110007, "ab not enough for new order")
        account.coin(order.hold_coin).order_im += im
        order.hold = im

    def release_im(self, order: SOrder, part: Decimal | None = None) -> None:
        amount = order.hold if part is None else min(part, order.hold)
        if amount:
            order.account.coin(order.hold_coin).order_im -= amount
            order.hold -= amount

    def _conditional(self, order: SOrder, params: dict[str, Any], trigger: Decimal) -> None:
        market = order.market
        inst = market.inst
        if trigger <= 0 or trigger % inst.tick_size:
            raise SandboxError(10001, "params error: triggerPrice is not on the tick")
        by = str(params.get("triggerBy") or "LastPrice")
        if by not in TRIGGER_BYS:
            raise SandboxError(
                10001, f"params error: triggerBy must be one of {', '.join(TRIGGER_BYS)}"
            )
        now = self._price(market, by)
        direction = params.get("triggerDirection")
        try:
            d = int(direction) if direction not in (None, "") else (1 if trigger > now else 2)
        except (TypeError, ValueError):
            raise SandboxError(10001, "params error: triggerDirection must be 1 or 2") from None
        if d == 1 and trigger <= now:
            raise SandboxError(
                110092,
                f"expect Rising, but trigger_price[{fmt(trigger)}] <= current[{fmt(now)}]",
            )
        if d == 2 and trigger >= now:
            raise SandboxError(
                110093,
                f"expect Falling, but trigger_price[{fmt(trigger)}] >= current[{fmt(now)}]",
            )
        if d not in (1, 2):
            raise SandboxError(10001, "params error: triggerDirection must be 1 or 2")
        live = [
            o for o in self.untriggered[market.key]
            if o.account is order.account and o.status == "Untriggered"
            and o.stop_order_type == "Stop"
        ]  # fmt: skip
        if len(live) >= MAX_CONDITIONALS:
            raise SandboxError(110009, "The number of stop orders exceeds maximum limit allowed")
        order.trigger_price = trigger
        order.trigger_direction = d
        order.trigger_by = by
        order.stop_order_type = order.stop_order_type or "Stop"
        order.status = "Untriggered"
        self.untriggered[market.key].add(order)

    def _price(self, market: Market, by: str) -> Decimal:
        inst = market.inst
        if by == "MarkPrice":
            return inst.from_ticks(market.mark_ticks)
        if by == "IndexPrice":
            return inst.from_ticks(market.index_ticks)
        return inst.from_ticks(market.last_ticks)

    def amend_order(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        """Amend a linear order: price, qty (the new total), or a conditional's trigger price."""
        ex = self.ex
        _required(params, "symbol")
        order = ex.find_order(account, params)
        if not order.is_open:
            raise SandboxError(110001, "Order does not exist.")
        inst = order.market.inst
        new_qty = _decimal(params, "qty")
        new_price = _decimal(params, "price")
        new_trigger = _decimal(params, "triggerPrice")
        if new_qty is None and new_price is None and new_trigger is None:
            raise SandboxError(10001, "params error: nothing to amend (qty, price or triggerPrice)")
        if new_qty is not None:
            if new_qty % inst.lot_size or new_qty <= 0:
                raise SandboxError(
                    10001, f"params error: qty must be a multiple of {fmt(inst.lot_size)}"
                )
            if new_qty <= order.cum_qty:
                raise SandboxError(10001, "The amended qty is lower than the filled qty")
            if new_qty > inst.max_order_qty:
                raise SandboxError(10001, "The number of contracts exceeds maximum limit allowed")
        if new_price is not None:
            if order.order_type != "Limit":
                raise SandboxError(10001, "params error: a market order has no price to amend")
            if new_price <= 0 or new_price % inst.tick_size:
                raise SandboxError(
                    10001, f"params error: price must be a multiple of {fmt(inst.tick_size)}"
                )
        if order.status == "Untriggered":
            if new_trigger is not None:
                if new_trigger % inst.tick_size or new_trigger <= 0:
                    raise SandboxError(10001, "params error: triggerPrice is not on the tick")
                order.trigger_price = new_trigger
            if new_qty is not None:
                order.qty = new_qty
            if new_price is not None:
                order.price = new_price
            order.updated_ms = now_ms()
            ex._order_event(order)
            self.position_event(
                account, order.market, self.position(account, order.market, order.position_idx)
            )
            return {"orderId": order.order_id, "orderLinkId": order.link_id}
        if order.order_type != "Limit" or order.engine is None:
            raise SandboxError(10001, "Order can not be amended")
        pos = self.position(account, order.market, order.position_idx)
        old = (order.price, order.qty, order.hold)
        self.release_im(order)
        if new_price is not None:
            order.price = new_price
        if new_qty is not None:
            order.qty = new_qty
        try:
            self._hold_im(order, pos)
        except SandboxError:
            order.price, order.qty = old[0], old[1]
            self._hold_im(order, pos)
            raise
        order.updated_ms = now_ms()
        result = order.market.book.amend(
            order.engine.id,
            price=inst.to_ticks(new_price) if new_price is not None else None,
            qty=inst.to_lots(order.qty - order.cum_qty),
        )
        ex._book_fills(order, result.fills)
        ex._order_event(order)
        self.after_change(account, order.market)
        ex._wallet_event(account)
        self.position_event(account, order.market, pos)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    # -- fills ----------------------------------------------------------------------------------

    def fill(
        self, order: SOrder, price: Decimal, qty: Decimal, is_maker: bool, t: int, seq: int
    ) -> None:
        """Book one side of a linear trade: position, realised PnL, fee, order margin."""
        ex = self.ex
        market = order.market
        inst = market.inst
        account = order.account
        pos = self.position(account, market, order.position_idx)
        maker_rate, taker_rate = account.fee_rates("linear")
        rate = maker_rate if is_maker else taker_rate
        if order.create_type == "CreateByLiq":
            rate = ZERO  # the takeover at the bankruptcy price: the margin is already gone
        value = price * qty
        fee = value * rate
        direction = Decimal(1) if order.side == "Buy" else Decimal(-1)
        before = pos.size
        closed = ZERO
        realised = ZERO
        if before != 0 and (before > 0) != (direction > 0):
            closed = min(qty, abs(before))
            whole = closed == abs(before)
            # A partial close takes its share of the cost basis, rounded to 1e-12 so that sums
            # stay exact within Decimal's 28 digits (the same value leaves cost and makes PnL).
            cost_out = pos.cost if whole else (pos.cost * closed / abs(before)).quantize(QUANT)
            realised = (price * closed - cost_out) * (1 if before > 0 else -1)
            share = pos.open_fees * closed / abs(before)
            open_fee_share = pos.open_fees if whole else share.quantize(QUANT)
            pos.open_fees -= open_fee_share
            self._closed_pnl(
                order, pos, price, closed, cost_out, fee * closed / qty, open_fee_share, t
            )
            pos.cost -= cost_out
            pos.size += direction * closed
            if pos.size == 0:
                pos.cost = ZERO
                pos.open_fees = ZERO
        opened = qty - closed
        if opened:
            pos.cost += opened * price
            pos.size += direction * opened
            pos.open_fees += (fee * opened / qty).quantize(QUANT)
            if before == 0 or closed:
                pos.cur_realised = ZERO
                pos.created_ms = t
        coin = account.coin(inst.settle_coin)
        coin.wallet += realised - fee
        coin.cum_realised_pnl += realised - fee
        ex.fee_collector.coin(inst.settle_coin).wallet += fee
        pos.cum_realised += realised - fee
        pos.cur_realised += realised - fee
        pos.updated_ms = t
        pos.seq = seq
        # the order's margin hold shrinks with what filled
        if order.hold and order.qty:
            self.release_im(order, order.hold * qty / max(order.qty - order.cum_qty, qty))
        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee[inst.settle_coin] = order.cum_fee.get(inst.settle_coin, ZERO) + fee
        order.closed_pnl += realised - fee * closed / qty if qty else ZERO
        order.avg_price = _avg(order.cum_value, order.cum_qty, inst.price_decimals)
        order.updated_ms = t
        if order.status == "New":
            order.status = "PartiallyFilled"
        if pos.size == 0 and before != 0:
            self._position_closed(account, market, pos)
        if account.house:
            return
        if closed and pos.size != before:
            self._shrunk.append((account, market, pos))
        if opened and (order.take_profit or order.stop_loss):
            self._apply_attached(order, pos, opened)
        exec_id = str(uuid.uuid4())
        leaves = order.qty - order.cum_qty if order.order_type == "Limit" else ZERO
        row = {
            "category": "linear",
            "symbol": inst.symbol,
            "isLeverage": "",
            "orderId": order.order_id,
            "orderLinkId": order.link_id,
            "side": order.side,
            "orderPrice": inst.price_str(inst.to_ticks(order.price))
            if order.price is not None
            else "0",
            "orderQty": fmt(order.qty),
            "leavesQty": fmt(leaves),
            "createType": order.create_type,
            "orderType": order.order_type,
            "stopOrderType": order.stop_order_type or "UNKNOWN",
            "execFee": fmt(fee),
            "execId": exec_id,
            "execPrice": inst.price_str(inst.to_ticks(price)),
            "execQty": fmt(qty),
            "execPnl": fmt(realised),
            "execType": order.exec_type,
            "execValue": fmt(value),
            "execTime": str(t),
            "isMaker": is_maker,
            "feeRate": fmt(rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": inst.price_str(market.mark_ticks),
            "indexPrice": inst.price_str(market.index_ticks),
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": fmt(closed),
            "seq": seq,
            "feeCurrency": inst.settle_coin,
            "marketUnit": "",
            "extraFees": "",
        }
        ex._history(account).executions.append(row)
        ex.outbox.append(Event("execution", account.uid, row, "linear", inst.symbol))
        ex._ledger(
            account, "TRADE", inst.settle_coin, realised - fee,
            symbol=inst.symbol, category="linear", side=order.side, t=t, qty=qty,
            size=pos.size, trade_price=inst.price_str(inst.to_ticks(price)), fee=fee,
            cash_flow=realised, fee_rate=fmt(rate), trade_id=exec_id, order_id=order.order_id,
            order_link_id=order.link_id,
        )  # fmt: skip
        self.position_event(account, market, pos)

    def _closed_pnl(
        self,
        order: SOrder,
        pos: Position,
        price: Decimal,
        closed: Decimal,
        cost_out: Decimal,
        close_fee: Decimal,
        open_fee: Decimal,
        t: int,
    ) -> None:
        if order.account.house:
            return
        st = self.state(order.account)
        rec = order.closed_record
        inst = order.market.inst
        if rec is None:
            rec = order.closed_record = {
                "symbol": inst.symbol, "orderId": order.order_id, "side": order.side,
                "qty": fmt(order.qty), "orderPrice": fmt(order.price) if order.price else "0",
                "orderType": order.order_type, "execType": order.exec_type,
                "leverage": fmt(self.leverage(order.account, inst.symbol)),
                "createdTime": str(t), "_closed": ZERO, "_entry": ZERO, "_exit": ZERO,
                "_open_fee": ZERO, "_close_fee": ZERO, "_fills": 0,
            }  # fmt: skip
            st.closed_pnl.append(rec)
        rec["_closed"] += closed
        rec["_entry"] += cost_out
        rec["_exit"] += closed * price
        rec["_open_fee"] += open_fee
        rec["_close_fee"] += close_fee
        rec["_fills"] += 1
        long_closed = pos.size > 0
        gross = (rec["_exit"] - rec["_entry"]) if long_closed else (rec["_entry"] - rec["_exit"])
        rec.update(
            closedSize=fmt(rec["_closed"]),
            cumEntryValue=fmt(rec["_entry"]),
            avgEntryPrice=fmt(_entry(rec["_entry"] / rec["_closed"])),
            cumExitValue=fmt(rec["_exit"]),
            avgExitPrice=fmt(_entry(rec["_exit"] / rec["_closed"])),
            closedPnl=fmt(gross - rec["_open_fee"] - rec["_close_fee"]),
            fillCount=str(rec["_fills"]),
            openFee=fmt(rec["_open_fee"]),
            closeFee=fmt(rec["_close_fee"]),
            updatedTime=str(t),
        )

    def _position_closed(self, account: Account, market: Market, pos: Position) -> None:
        """A closed position takes its TP/SL orders with it."""
        pos.take_profit = pos.stop_loss = None
        for o in list(self.untriggered[market.key]):
            if (
                o.account is account and o.status == "Untriggered"
                and o.position_idx == pos.idx and o.stop_order_type not in (None, "Stop")
            ):  # fmt: skip
                self.ex._close(o, "Deactivated", "EC_NoError", "CancelByTpSlTsClear")
                self.ex._order_event(o)

    # -- after every change: events, triggers, liquidations -------------------------------------

    def after_change(self, account: Account, market: Market) -> None:
        self.sync_coin(account, market.inst.settle_coin)

    def position_event(self, account: Account, market: Market, pos: Position) -> None:
        if account.house:
            return
        data = self.position_row(account, market, pos, ws=True)
        self.ex.outbox.append(Event("position", account.uid, data, "linear", market.inst.symbol))

    def on_prices(self, market: Market) -> None:
        """Prices moved: fire conditional and TP/SL orders, then check liquidations."""
        if self._busy or market.inst.category != "linear":
            return
        self._busy = True
        try:
            waiting = self.untriggered[market.key]
            for _ in range(20):  # a triggered order may trigger others; bounded
                for o in [o for o in waiting if o.status != "Untriggered"]:
                    waiting.discard(o)
                fired = [o for o in waiting if self._hit(o)]
                if not fired:
                    break
                for o in fired:
                    if o.status == "Untriggered":
                        self._trigger(o)
            self._check_liquidations(market.inst.settle_coin)
        finally:
            self._busy = False

    def _hit(self, order: SOrder) -> bool:
        assert order.trigger_price is not None
        now = self._price(order.market, order.trigger_by or "LastPrice")
        if order.trigger_direction == 1:
            return now >= order.trigger_price
        return now <= order.trigger_price

    def _trigger(self, order: SOrder) -> None:
        """Untriggered -> Triggered -> New (and on to fills) as Bybit reports it."""
        ex = self.ex
        market = order.market
        self.untriggered[market.key].discard(order)
        order.status = "Triggered"
        if order.stop_order_type == "Stop":
            order.create_type = "CreateByStopOrder"
        order.updated_ms = now_ms()
        ex._order_event(order)
        pos = self.position(order.account, market, order.position_idx)
        if order.reduce_only or self._closes_hedge(order):
            reducible = self._reducible(pos, order.side)
            if reducible == 0:
                ex._close(order, "Deactivated", "EC_NoError", "CancelByTpSlTsClear")
                ex._order_event(order)
                return
            if order.stop_order_type in ("TakeProfit", "StopLoss") or order.qty > reducible:
                order.qty = reducible  # a Full TP/SL closes what the position is now
            self._make_room(order.account, market, pos, order.side, order.qty)
        if order.order_type == "Market" and order.price is None:
            buy_lmt, sell_lmt = market.band()
            order.price = buy_lmt if order.side == "Buy" else sell_lmt
        order.status = "New"
        try:
            self._hold_im(order, pos)
        except SandboxError:
            ex._close(order, "Cancelled", "EC_Others", "UNKNOWN")
            ex._order_event(order)
            return
        ex._execute(order)
        self.after_change(order.account, market)

    def _check_liquidations(self, coin: str) -> None:
        for uid, st in list(self.states.items()):
            account = self.ex.accounts[uid]
            if account.house or not any(p.size and p.settle == coin for p in st.positions.values()):
                continue
            for _ in range(len(st.positions) + 1):
                m = self.coin_margin(account, coin)
                equity = account.coin(coin).wallet + m["upl"]
                if equity >= m["mm"] or m["mm"] == 0:
                    break
                self._liquidate(account, coin)

    def _liquidate(self, account: Account, coin: str) -> None:
        ex = self.ex
        for o in ex.open_orders_of(account):
            if o.is_open and o.category == "linear" and o.market.inst.settle_coin == coin:
                ex._close(o, "Cancelled" if o.status != "Untriggered" else "Deactivated",
                          "EC_NoError", "CancelAllBeforeLiq")  # fmt: skip
                ex._order_event(o)
        st = self.state(account)
        live = [p for p in st.positions.values() if p.size and p.settle == coin]
        if not live:
            return
        pos = max(live, key=lambda p: abs(p.size) * self.mark(ex.markets[("linear", p.symbol)]))
        market = ex.markets[("linear", pos.symbol)]
        m = self.coin_margin(account, coin)
        equity = account.coin(coin).wallet + m["upl"]
        if equity >= m["mm"]:
            return
        bust = self.bust_price(account, market, pos)
        inst = market.inst
        bust_ticks = max(1, inst.to_ticks(_round_tick(bust, inst.tick_size, pos.size > 0)))
        price = inst.from_ticks(bust_ticks)
        size = abs(pos.size)
        side = "Sell" if pos.size > 0 else "Buy"
        pos.status = "Liq"
        self.position_event(account, market, pos)
        # The user's position goes to the insurance fund at the bankruptcy price...
        user_order = self._system_order(account, market, side, size, price, pos.idx, "CreateByLiq")
        fund_idx = 0
        fund_order = self._system_order(
            self.insurance, market, "Buy" if side == "Sell" else "Sell", size, price, fund_idx,
            "CreateByLiq",
        )  # fmt: skip
        market.cross_seq += 1
        t = now_ms()
        user_order.exec_type = "BustTrade"
        self.fill(fund_order, price, size, True, t, market.cross_seq)
        self.fill(user_order, price, size, False, t, market.cross_seq)
        for o in (user_order, fund_order):
            ex._close(o, "Filled", "EC_NoError")
        ex._order_event(user_order)
        pos.status = "Normal"
        self.position_event(account, market, pos)
        ex._wallet_event(account)
        # ... and the fund closes it at the market.
        ex.order_for(self.insurance, market, side, inst.to_lots(size), None, "IOC")
        self.sync_coin(account, coin)

    def _system_order(
        self,
        account: Account,
        market: Market,
        side: str,
        qty: Decimal,
        price: Decimal,
        idx: int,
        create_type: str,
    ) -> SOrder:
        order = SOrder(
            self.ex._new_order_id("linear"), "", account, market, side, "Market", "IOC", price,
            qty, "",
        )  # fmt: skip
        order.position_idx = idx
        order.reduce_only = True
        order.close_on_trigger = True
        order.create_type = create_type
        order.hold_coin = market.inst.settle_coin
        self.ex._register(order)
        return order

    # -- liq / bust prices ----------------------------------------------------------------------

    def _others(self, account: Account, market: Market, pos: Position) -> tuple[Decimal, Decimal]:
        """(unrealised PnL, MM) of the account's other positions in the same settle coin."""
        upl = mm = ZERO
        for p in self.state(account).positions.values():
            if p is pos or not p.size or p.settle != pos.settle:
                continue
            m = self.ex.markets[("linear", p.symbol)]
            mark = self.mark(m)
            upl += p.upl(mark)
            mm += abs(p.size) * mark * self.mmr(m)
        return upl, mm

    def liq_price(self, account: Account, market: Market, pos: Position) -> Decimal | None:
        if pos.size == 0:
            return None
        wallet = account.coin(pos.settle).wallet
        upl_o, mm_o = self._others(account, market, pos)
        s, e, r = abs(pos.size), pos.entry, self.mmr(market)
        if pos.size > 0:
            liq = (mm_o - wallet - upl_o + e * s) / (s * (1 - r))
        else:
            liq = (wallet + upl_o - mm_o + e * s) / (s * (1 + r))
        return liq if liq > 0 else None

    def bust_price(self, account: Account, market: Market, pos: Position) -> Decimal:
        wallet = account.coin(pos.settle).wallet
        upl_o, _ = self._others(account, market, pos)
        s, e = abs(pos.size), pos.entry
        bust = (e * s - wallet - upl_o) / s if pos.size > 0 else (wallet + upl_o + e * s) / s
        return max(bust, market.inst.tick_size)

    # -- position endpoints ---------------------------------------------------------------------

    def position_row(
        self, account: Account, market: Market, pos: Position, *, ws: bool = False
    ) -> dict[str, Any]:
        inst = market.inst
        mark = self.mark(market)
        size = abs(pos.size)
        lev = self.leverage(account, inst.symbol)
        value = pos.cost
        liq = self.liq_price(account, market, pos)
        bust = self.bust_price(account, market, pos) if pos.size else None
        upl = pos.upl(mark)
        im = value / lev
        mm = size * mark * self.mmr(market)

        def px(x: Decimal | None, up: bool) -> str:
            if x is None:
                return ""
            ticks = inst.to_ticks(_round_tick(x, inst.tick_size, up))
            if x < inst.min_price or x > inst.max_price or ticks <= 0:
                return ""
            return inst.price_str(ticks)

        def px_exact(x: Decimal | None) -> str:
            return inst.price_str(inst.to_ticks(x)) if x else "0.00"

        row: dict[str, Any] = {
            "positionIdx": pos.idx,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": inst.symbol,
            "side": pos.side,
            "size": fmt(size),
            "avgPrice" if not ws else "entryPrice": fmt(_entry(pos.entry)) if size else "0",
            "positionValue": fmt(value),
            "tradeMode": 0,
            "autoAddMargin": 0,
            "positionStatus": pos.status,
            "leverage": fmt(lev),
            "markPrice": inst.price_str(market.mark_ticks),
            "liqPrice": px(liq, pos.size > 0),
            "bustPrice": px(bust, pos.size > 0),
            "positionIM": fmt(im),
            "positionIMByMp": fmt(size * mark / lev),
            "positionMM": fmt(mm),
            "positionMMByMp": fmt(mm),
            "positionBalance": fmt(im),
            "takeProfit": px_exact(pos.take_profit),
            "stopLoss": px_exact(pos.stop_loss),
            "trailingStop": "0.00",
            "sessionAvgPrice": "",
            "delta": "",
            "gamma": "",
            "vega": "",
            "theta": "",
            "unrealisedPnl": fmt(upl),
            "curRealisedPnl": fmt(pos.cur_realised),
            "cumRealisedPnl": fmt(pos.cum_realised),
            "adlRankIndicator": 2 if size else 0,
            "createdTime": str(pos.created_ms),
            "updatedTime": str(pos.updated_ms),
            "openTime": pos.created_ms if size else 0,
            "seq": pos.seq,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "tpslMode": pos.tpsl_mode,
            "breakEvenPrice": fmt(_entry(self._break_even(pos))) if size else "",
        }
        if ws:
            row["category"] = "linear"
        return row

    @staticmethod
    def _break_even(pos: Position) -> Decimal:
        size = abs(pos.size)
        taker = Decimal("0.00055")
        sign = 1 if pos.size > 0 else -1
        return (
            (pos.entry * size + sign * pos.open_fees) / (size - size * taker * sign)
            if size
            else ZERO
        )

    def _positions_for(
        self, account: Account, params: dict[str, Any]
    ) -> list[tuple[Market, Position]]:
        symbol = params.get("symbol")
        settle = params.get("settleCoin")
        base = params.get("baseCoin")
        if not (symbol or settle or base):
            raise SandboxError(10001, "params error: symbol or settleCoin is required")
        out = []
        for market in self._linear_markets():
            inst = market.inst
            if symbol and inst.symbol != normalize_symbol(str(symbol)):
                continue
            if settle and inst.settle_coin != settle:
                continue
            if base and inst.base_coin != base:
                continue
            idxs = (1, 2) if self.mode(account, market) == 3 else (0,)
            for idx in idxs:
                pos = self.position(account, market, idx)
                if symbol or pos.size:  # with settleCoin only non-zero positions
                    out.append((market, pos))
        if symbol and not out:
            raise SandboxError(10001, f"params error: symbol invalid: {symbol}")
        return out

    def position_list(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("category") != "linear":
            raise SandboxError(10001, "params error: category must be linear in this sandbox")
        rows = [self.position_row(account, m, p) for m, p in self._positions_for(account, params)]
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    def symbol_info(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for market in self._linear_markets():
            inst = market.inst
            symbol = params.get("symbol")
            if symbol and inst.symbol != normalize_symbol(str(symbol)):
                continue
            idxs = (1, 2) if self.mode(account, market) == 3 else (0,)
            lev = fmt(self.leverage(account, inst.symbol))
            rows.extend(
                {"symbol": inst.symbol, "leverage": lev, "side": "Sell" if i == 2 else "Buy",
                 "positionIdx": i}
                for i in idxs
            )  # fmt: skip
        return {"category": "linear", "list": rows}

    def set_leverage(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        market = self.ex.market("linear", _required(params, "symbol"))
        inst = market.inst
        buy = _decimal(params, "buyLeverage", required=True)
        sell = _decimal(params, "sellLeverage", required=True)
        assert buy is not None and sell is not None
        if buy != sell:
            raise SandboxError(
                10001, "params error: buy leverage must equal sell leverage (cross margin)"
            )
        if not inst.min_leverage <= buy <= inst.max_leverage or buy % inst.leverage_step:
            raise SandboxError(
                10001, f"leverage invalid: [{fmt(inst.min_leverage)}, {fmt(inst.max_leverage)}]"
            )
        st = self.state(account)
        if self.leverage(account, inst.symbol) == buy:
            raise SandboxError(110043, "Set leverage not modified")
        old = st.leverage.get(inst.symbol, DEFAULT_LEVERAGE)
        st.leverage[inst.symbol] = buy
        if self.available(account, inst.settle_coin) < 0:
            st.leverage[inst.symbol] = old
            raise SandboxError(110044, "Available margin is insufficient to change leverage")
        for idx in (1, 2) if self.mode(account, market) == 3 else (0,):
            self.position_event(account, market, self.position(account, market, idx))
        self.after_change(account, market)
        self.ex._wallet_event(account)
        return {}

    def switch_mode(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("category") != "linear":
            raise SandboxError(10001, "params error: category must be linear")
        try:
            mode = int(params.get("mode"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SandboxError(10001, "params error: mode must be 0 or 3") from None
        if mode not in (0, 3):
            raise SandboxError(10001, "params error: mode must be 0 or 3")
        symbol = params.get("symbol")
        coin = params.get("coin")
        if symbol:
            markets = [self.ex.market("linear", str(symbol))]
        elif coin:
            markets = [m for m in self._linear_markets() if m.inst.settle_coin == coin]
            if not markets:
                raise SandboxError(10001, f"params error: coin {coin} has no linear contract")
        else:
            raise SandboxError(10001, "params error: symbol or coin is required")
        for market in markets:
            if mode == 3 and market.inst.settle_coin != "USDT":
                raise SandboxError(110029, "Hedge mode is not supported for this symbol")
        st = self.state(account)
        changed = False
        for market in markets:
            if self.mode(account, market) == mode:
                continue
            if any(p.size for (s, _), p in st.positions.items() if s == market.inst.symbol):
                raise SandboxError(
                    110024, "You have existing positions, so position mode cannot be switched"
                )
            if any(o.market is market for o in self.ex.open_orders_of(account)):
                raise SandboxError(
                    110028, "You have existing open orders, so position mode cannot be switched"
                )
        for market in markets:
            if self.mode(account, market) != mode:
                st.modes[market.inst.symbol] = mode
                changed = True
        if coin and not symbol:
            st.coin_modes[str(coin)] = mode
        if not changed:
            raise SandboxError(110025, "Position mode is not modified")
        return {}

    def trading_stop(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        """Set (or with "0" remove) a position's take-profit / stop-loss, as system conditional
        orders that follow the position and go with it."""
        market = self.ex.market("linear", _required(params, "symbol"))
        inst = market.inst
        mode = str(params.get("tpslMode") or "")
        if mode not in ("Full", "Partial"):
            raise SandboxError(10001, "params error: tpslMode must be Full or Partial")
        idx = self._position_idx(account, market, params.get("positionIdx", 0), "Buy")
        pos = self.position(account, market, idx)
        if pos.size == 0:
            raise SandboxError(10001, "can not set tp/sl/ts for zero position")
        changed = False
        for kind, prefix in (("TakeProfit", "tp"), ("StopLoss", "sl")):
            name = "takeProfit" if prefix == "tp" else "stopLoss"
            value = _decimal(params, name)
            if value is None:
                continue
            by = str(params.get(f"{prefix}TriggerBy") or "LastPrice")
            if by not in TRIGGER_BYS:
                raise SandboxError(
                    10001,
                    f"params error: {prefix}TriggerBy must be one of {', '.join(TRIGGER_BYS)}",
                )
            if value == 0:
                if mode == "Full":
                    self._clear_full(account, market, pos, kind)
                changed = True
                continue
            if value < 0 or value % inst.tick_size:
                raise SandboxError(10001, f"params error: {name} is not on the tick")
            long = pos.size > 0
            now = self._price(market, by)
            wants_rise = (kind == "TakeProfit") == long
            if (wants_rise and value <= now) or (not wants_rise and value >= now):
                raise SandboxError(
                    10001,
                    f"{name} set for {'long' if long else 'short'} position should be "
                    f"{'higher' if wants_rise else 'lower'} than current price",
                )
            order_type, limit = self._tpsl_order_type(params, prefix, mode, inst)
            if mode == "Full":
                qty = abs(pos.size)
            else:
                size = _decimal(params, f"{prefix}Size", required=True)
                assert size is not None
                if size <= 0 or size % inst.lot_size:
                    raise SandboxError(
                        10001,
                        f"params error: {prefix}Size must be a multiple of {fmt(inst.lot_size)}",
                    )
                qty = min(size, abs(pos.size))
            self._stop_order(account, market, pos, kind, mode, value, by, qty, order_type, limit)
            changed = True
        if not changed:
            raise SandboxError(34040, "not modified")
        pos.tpsl_mode = mode
        self.position_event(account, market, pos)
        return {}

    def _clear_full(self, account: Account, market: Market, pos: Position, kind: str) -> None:
        """Remove the position's Full-mode TP (or SL): its order and the position's price."""
        for o in list(self.untriggered[market.key]):
            if (o.account is account and o.status == "Untriggered" and o.position_idx == pos.idx
                    and o.stop_order_type == kind):  # fmt: skip
                self.ex._close(o, "Deactivated", "EC_NoError", "CancelByUser")
                self.ex._order_event(o)
        if kind == "TakeProfit":
            pos.take_profit = None
        else:
            pos.stop_loss = None

    def _stop_order(
        self,
        account: Account,
        market: Market,
        pos: Position,
        kind: str,
        mode: str,
        trigger: Decimal,
        by: str,
        qty: Decimal,
        order_type: str,
        limit: Decimal | None,
    ) -> SOrder:
        """A TP or SL of ``pos``: a reduce-only system conditional order. Full mode replaces the
        position's TP (SL) and shows on the position; Partial only adds."""
        if mode == "Full":
            self._clear_full(account, market, pos, kind)
        long = pos.size > 0
        o = SOrder(self.ex._new_order_id("linear"), "", account, market,
                   "Sell" if long else "Buy", order_type, "GTC" if limit else "IOC", limit,
                   qty, "")  # fmt: skip
        o.position_idx = pos.idx
        o.reduce_only = True
        o.close_on_trigger = True
        o.stop_order_type = kind if mode == "Full" else f"Partial{kind}"
        o.create_type = "CreateByTakeProfit" if kind == "TakeProfit" else "CreateByStopLoss"
        o.trigger_price = trigger
        o.trigger_direction = 1 if (kind == "TakeProfit") == long else 2
        o.trigger_by = by
        o.tpsl_mode = mode
        o.status = "Untriggered"
        self.untriggered[market.key].add(o)
        self.ex._register(o)
        self.ex._order_event(o)
        if mode == "Full":
            if kind == "TakeProfit":
                pos.take_profit, pos.tp_trigger_by = trigger, by
            else:
                pos.stop_loss, pos.sl_trigger_by = trigger, by
        return o

    def _apply_attached(self, order: SOrder, pos: Position, opened: Decimal) -> None:
        """An order with takeProfit / stopLoss opened ``opened`` more: Full mode sets the
        position's TP/SL (on the first fill; they follow the position's size), Partial mode
        adds TP/SL orders for what filled."""
        account, market = order.account, order.market
        if order.tpsl_mode == "Partial" and order.attached:
            for o in order.attached:
                if o.status == "Untriggered":
                    o.qty += opened
                    o.updated_ms = now_ms()
                    self.ex._order_event(o)
            return
        if order.attached:  # Full: applied once
            return
        for kind, prefix, value in (("TakeProfit", "tp", order.take_profit),
                                    ("StopLoss", "sl", order.stop_loss)):  # fmt: skip
            if not value:
                continue
            limit = getattr(order, f"{prefix}_limit_price")
            order.attached.append(
                self._stop_order(
                    account, market, pos, kind, order.tpsl_mode or "Full", value,
                    getattr(order, f"{prefix}_trigger_by"),
                    opened if order.tpsl_mode == "Partial" else abs(pos.size),
                    getattr(order, f"{prefix}_order_type"), limit,
                )
            )  # fmt: skip
        if order.tpsl_mode == "Full":
            pos.tpsl_mode = "Full"

    def stop_cancelled(self, order: SOrder) -> None:
        """A Full TP/SL order was cancelled: the position no longer shows that price."""
        pos = self.position(order.account, order.market, order.position_idx)
        if order.stop_order_type == "TakeProfit":
            pos.take_profit = None
        elif order.stop_order_type == "StopLoss":
            pos.stop_loss = None

    def _resting_closers(
        self, account: Account, market: Market, pos: Position, side: str
    ) -> list[SOrder]:
        """The reduce-only (and hedge closing) orders of ``pos`` resting in the book, oldest
        first."""
        book = market.book
        out = [
            o for o in self.ex.open_orders_of(account)
            if o.market is market and o.position_idx == pos.idx and o.side == side
            and o.engine is not None and book.get(o.engine.id) is not None
            and (o.reduce_only or self._closes_hedge(o))
        ]  # fmt: skip
        out.sort(key=lambda o: (o.created_ms, o.order_id))
        return out

    def _closing_room(self, account: Account, market: Market, pos: Position, side: str) -> Decimal:
        """How much more of ``pos`` a new closing order on ``side`` may close: the closing
        orders resting together never exceed the position, so no fill can overshoot it."""
        resting = sum(
            (o.qty - o.cum_qty for o in self._resting_closers(account, market, pos, side)), ZERO
        )
        return max(ZERO, self._reducible(pos, side) - resting)

    def _make_room(
        self, account: Account, market: Market, pos: Position, side: str, qty: Decimal
    ) -> None:
        """A triggered closing order takes ``qty`` of the position: resting closing orders are
        cut (newest first) so that together they never exceed it."""
        closers = self._resting_closers(account, market, pos, side)
        excess = sum((o.qty - o.cum_qty for o in closers), ZERO) + qty - self._reducible(pos, side)
        for o in reversed(closers):
            if excess <= 0:
                break
            leaves = o.qty - o.cum_qty
            if leaves <= excess:
                self.ex._close(o, "Cancelled", "EC_NoError", "CancelByReduceOnly")
                excess -= leaves
            else:
                o.qty -= excess
                o.updated_ms = now_ms()
                assert o.engine is not None
                market.book.amend(o.engine.id, qty=market.inst.to_lots(leaves - excess))
                excess = ZERO
            self.ex._order_event(o)

    def trim_closing(self) -> None:
        """After a match: the closing orders resting against a position that shrank are cut to
        what is left of it (oldest keep theirs first), or cancelled when nothing is left."""
        ex = self.ex
        while self._shrunk:
            account, market, pos = self._shrunk.pop()
            for side in ("Buy", "Sell"):
                room = self._reducible(pos, side)
                for o in self._resting_closers(account, market, pos, side):
                    leaves = o.qty - o.cum_qty
                    if room == 0:
                        ex._close(o, "Cancelled", "EC_NoError", "CancelByReduceOnly")
                        ex._order_event(o)
                        continue
                    if leaves > room:
                        o.qty = o.cum_qty + room
                        o.updated_ms = now_ms()
                        assert o.engine is not None
                        market.book.amend(o.engine.id, qty=market.inst.to_lots(room))
                        ex._order_event(o)
                        leaves = room
                    room -= leaves

    @staticmethod
    def _closes_hedge(order: SOrder) -> bool:
        return order.position_idx in (1, 2) and (order.position_idx == 1) != (order.side == "Buy")

    def closed_pnl(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        from bybitkit.sandbox.exchange import _limit, _page, _window

        if params.get("category") != "linear":
            raise SandboxError(10001, "params error: category must be linear")
        limit = _limit(params, 50, 100)
        start, end = _window(params, 7)
        symbol = params.get("symbol")
        rows = [
            {k: v for k, v in r.items() if not k.startswith("_")}
            for r in reversed(self.state(account).closed_pnl)
            if (not symbol or r["symbol"] == normalize_symbol(str(symbol)))
            and start <= int(r["updatedTime"]) <= end
        ]
        page, cursor = _page(rows, params, limit)
        return {"category": "linear", "list": page, "nextPageCursor": cursor}

    # -- funding --------------------------------------------------------------------------------

    def funding_rate(self, market: Market) -> Decimal:
        return self.funding_rates.get(market.inst.symbol, DEFAULT_FUNDING_RATE)

    def settle_funding(self, market: Market, funding_ms: int | None = None) -> int:
        """Settle one funding round of ``market`` now; returns the positions that paid or got."""
        ex = self.ex
        inst = market.inst
        rate = self.funding_rate(market)
        t = funding_ms if funding_ms is not None else now_ms()
        mark = self.mark(market)
        n = 0
        for uid, st in list(self.states.items()):
            account = ex.accounts[uid]
            for (symbol, _), pos in st.positions.items():
                if symbol != inst.symbol or pos.size == 0:
                    continue
                n += 1
                size = abs(pos.size)
                value = size * mark
                side = "Buy" if pos.size > 0 else "Sell"
                signed_rate = rate if side == "Buy" else -rate
                fee = value * signed_rate  # positive = paid
                coin = account.coin(inst.settle_coin)
                coin.wallet -= fee
                coin.cum_realised_pnl -= fee
                pos.cum_realised -= fee
                pos.cur_realised -= fee
                pos.updated_ms = t
                if account.house:
                    continue
                market.cross_seq += 1
                exec_id = str(uuid.uuid4())
                row = {
                    "category": "linear", "symbol": inst.symbol, "isLeverage": "",
                    "orderId": f"{t // 1000}-{inst.symbol}-{uid}-{side}", "orderLinkId": "",
                    "side": side, "orderPrice": "0", "orderQty": "0", "leavesQty": "0",
                    "createType": "UNKNOWN", "orderType": "UNKNOWN", "stopOrderType": "UNKNOWN",
                    "execFee": fmt(fee), "execId": exec_id,
                    "execPrice": inst.price_str(market.mark_ticks),
                    "execQty": fmt(size), "execPnl": "0", "execType": "Funding",
                    "execValue": fmt(value), "execTime": str(t), "isMaker": False,
                    "feeRate": fmt(signed_rate), "tradeIv": "", "markIv": "",
                    "markPrice": inst.price_str(market.mark_ticks),
                    "indexPrice": inst.price_str(market.index_ticks), "underlyingPrice": "",
                    "blockTradeId": "", "closedSize": "0", "seq": market.cross_seq,
                    "feeCurrency": inst.settle_coin, "marketUnit": "", "extraFees": "",
                }  # fmt: skip
                ex._history(account).executions.append(row)
                ex.outbox.append(Event("execution", uid, row, "linear", inst.symbol))
                ex._ledger(
                    account, "SETTLEMENT", inst.settle_coin, -fee, symbol=inst.symbol,
                    category="linear", side=side, t=t, qty=size, size=pos.size,
                    trade_price=inst.price_str(market.mark_ticks), fee=ZERO, cash_flow=ZERO,
                    fee_rate=fmt(signed_rate), trade_id=exec_id, order_id=row["orderId"],
                    funding=-fee,
                )  # fmt: skip
                self.position_event(account, market, pos)
                ex._wallet_event(account)
        self.funding_history[inst.symbol].append((t, rate))
        for uid in self.states:
            self.sync_coin(ex.accounts[uid], inst.settle_coin)
        self._check_liquidations(inst.settle_coin)
        return n


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _entry(value: Decimal) -> Decimal:
    """Prices derived by division (averages) are kept to 8 decimals, as Bybit shows them."""
    return value.quantize(Decimal("0.00000001")).normalize()


def _avg(value: Decimal, qty: Decimal, price_decimals: int) -> Decimal:
    if qty == 0:
        return ZERO
    return (value / qty).quantize(Decimal(1).scaleb(-(price_decimals + 4))).normalize()


def _round_tick(value: Decimal, tick: Decimal, up: bool) -> Decimal:
    units = (value / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return units * tick


__all__ = ["Derivatives", "LinearState", "Position", "Side"]
