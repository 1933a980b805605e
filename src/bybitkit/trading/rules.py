"""Trading rules of one instrument, and the checks an order must pass before it is sent.

Spot (REFERENCE §7.2, §15): ``tickSize``; ``basePrecision`` for base quantities and
``quotePrecision`` for quote amounts; ``minOrderAmt`` (minimum notional); ``maxLimitOrderQty`` /
``maxMarketOrderQty`` by order type (PostOnly up to ``postOnlyMaxLimitOrderSize``); the price band
(outside it, spot rejects). The deprecated ``minOrderQty``/``maxOrderQty``/``maxOrderAmt`` are not
checked, because Bybit no longer checks them.

Linear: ``tickSize``, ``minPrice``/``maxPrice``, ``qtyStep``, ``minOrderQty``, ``maxOrderQty``
(limit), ``maxMktOrderQty`` (market), ``minNotionalValue``; beyond the band Bybit clamps the price.

Size rules are checked before price rules; every refusal names its rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bybitkit.errors import ValidationError
from bybitkit.money import fmt
from bybitkit.trading.types import OrderType, Side

ZERO = Decimal(0)


class RuleViolation(ValidationError):
    """An order refused locally by one trading rule (``rule`` names it, as Bybit does)."""

    def __init__(self, rule: str, field: str, expected: str, got: object = None) -> None:
        self.rule = rule
        super().__init__(field, f"{expected} ({rule})", got)


def pair_of(base: str, quote: str) -> str:
    return f"{base}-{quote}"


@dataclass(frozen=True, slots=True)
class TradingRules:
    pair: str
    symbol: str
    category: str
    base_coin: str
    quote_coin: str
    settle_coin: str
    tick_size: Decimal
    qty_step: Decimal
    quote_step: Decimal = ZERO  # spot quote-amount step (quotePrecision)
    min_qty: Decimal = ZERO
    max_limit_qty: Decimal = ZERO
    max_market_qty: Decimal = ZERO
    max_post_only_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    status: str = "Trading"

    @classmethod
    def from_spot(cls, item: Any) -> TradingRules:
        lot = item.lotSizeFilter
        return cls(
            pair=pair_of(item.baseCoin, item.quoteCoin),
            symbol=item.symbol,
            category="spot",
            base_coin=item.baseCoin,
            quote_coin=item.quoteCoin,
            settle_coin=item.quoteCoin,
            tick_size=item.priceFilter.tickSize,
            qty_step=lot.basePrecision,
            quote_step=lot.quotePrecision or ZERO,
            max_limit_qty=lot.maxLimitOrderQty or lot.maxOrderQty or ZERO,
            max_market_qty=lot.maxMarketOrderQty or lot.maxOrderQty or ZERO,
            max_post_only_qty=lot.postOnlyMaxLimitOrderSize or lot.maxLimitOrderQty or ZERO,
            min_notional=lot.minOrderAmt or ZERO,
            status=item.status or "Trading",
        )

    @classmethod
    def from_linear(cls, item: Any) -> TradingRules:
        lot = item.lotSizeFilter
        pf = item.priceFilter
        return cls(
            pair=pair_of(item.baseCoin, item.quoteCoin),
            symbol=item.symbol,
            category="linear",
            base_coin=item.baseCoin,
            quote_coin=item.quoteCoin,
            settle_coin=item.settleCoin or item.quoteCoin,
            tick_size=pf.tickSize,
            qty_step=lot.qtyStep,
            min_qty=lot.minOrderQty or ZERO,
            max_limit_qty=lot.maxOrderQty or ZERO,
            max_market_qty=lot.maxMktOrderQty or lot.maxOrderQty or ZERO,
            max_post_only_qty=lot.maxOrderQty or ZERO,
            min_notional=lot.minNotionalValue or ZERO,
            min_price=pf.minPrice or ZERO,
            max_price=pf.maxPrice or ZERO,
            status=item.status or "Trading",
        )

    def validate(
        self,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        *,
        quote_amount: bool = False,
        reference_price: Decimal | None = None,
        band: tuple[Decimal, Decimal] | None = None,
    ) -> None:
        """Raise :class:`RuleViolation` for the first rule the order breaks (size first).

        ``quote_amount``: a spot market order whose ``amount`` is in the quote coin.
        ``reference_price``: the price a market order's notional is judged at (e.g. the best
        opposite price). ``band``: ``(buy_limit, sell_limit)`` when known.
        """
        if self.status != "Trading":
            raise RuleViolation(
                "status", "pair", f"a trading instrument, {self.pair} is", self.status
            )
        if amount <= 0:
            raise RuleViolation("positive amount", "amount", "a positive quantity", fmt(amount))
        spot = self.category == "spot"
        is_market = order_type is OrderType.MARKET
        if quote_amount:
            if not (spot and is_market):
                raise RuleViolation(
                    "marketUnit", "amount", "a base quantity (quote amounts: spot market only)"
                )
            if self.quote_step and amount % self.quote_step:
                raise RuleViolation(
                    "quotePrecision", "amount", f"a multiple of {fmt(self.quote_step)}", fmt(amount)
                )
        elif amount % self.qty_step:
            rule = "basePrecision" if spot else "qtyStep"
            raise RuleViolation(rule, "amount", f"a multiple of {fmt(self.qty_step)}", fmt(amount))
        if not quote_amount:
            if self.min_qty and amount < self.min_qty:
                raise RuleViolation("minOrderQty", "amount", f">= {fmt(self.min_qty)}", fmt(amount))
            if is_market:
                cap, rule = self.max_market_qty, ("maxMarketOrderQty" if spot else "maxMktOrderQty")
            elif order_type is OrderType.LIMIT_MAKER:
                cap = self.max_post_only_qty
                rule = "postOnlyMaxLimitOrderSize" if spot else "maxOrderQty"
            else:
                cap, rule = self.max_limit_qty, ("maxLimitOrderQty" if spot else "maxOrderQty")
            if cap and amount > cap:
                raise RuleViolation(rule, "amount", f"<= {fmt(cap)}", fmt(amount))
        judged_at = price if price is not None else reference_price
        notional = amount if quote_amount else (amount * judged_at if judged_at else None)
        if self.min_notional and notional is not None and notional < self.min_notional:
            rule = "minOrderAmt" if spot else "minNotionalValue"
            expected = f"a notional of at least {fmt(self.min_notional)} {self.quote_coin}"
            raise RuleViolation(rule, "amount", expected, fmt(notional))
        if is_market:
            return
        if price is None:
            raise RuleViolation("price", "price", "a limit price for a limit order")
        if price <= 0:
            raise RuleViolation("price", "price", "a positive price", fmt(price))
        if price % self.tick_size:
            raise RuleViolation(
                "tickSize", "price", f"a multiple of {fmt(self.tick_size)}", fmt(price)
            )
        if self.min_price and price < self.min_price:
            raise RuleViolation("minPrice", "price", f">= {fmt(self.min_price)}", fmt(price))
        if self.max_price and price > self.max_price:
            raise RuleViolation("maxPrice", "price", f"<= {fmt(self.max_price)}", fmt(price))
        if band is not None and spot:
            buy_limit, sell_limit = band
            if side is Side.BUY and price > buy_limit:
                raise RuleViolation(
                    "priceLimit", "price", f"<= {fmt(buy_limit)} (buyLmt)", fmt(price)
                )
            if side is Side.SELL and price < sell_limit:
                raise RuleViolation(
                    "priceLimit", "price", f">= {fmt(sell_limit)} (sellLmt)", fmt(price)
                )
