"""Structure conformance: the sandbox's REST answers have the shape of Bybit's documented answers.

Every example file of the reference pack (``examples_dir``) is classified here, either as a call
the sandbox serves (``REPLAYS``: spot, linear perpetuals, market data, and the private ``position``
topic) or as not applicable (``SKIPS``, with the reason). An example file without a
classification fails, so a new example cannot slip by unnoticed. An example may also be replayed
in another category (``VARIANTS``, keyed ``"<stem> [<label>]"``): a linear order example rewritten
to spot, a spot batch rewritten to linear, each compared with the same documented answer.

A replay sends an equivalent request to a sandbox (signed with ``make_signer`` over plain aiohttp,
so the raw JSON is compared, not a decoded struct), creating first whatever the call needs (orders
to amend or cancel, fills for executions and the ledger, positions, a funding settlement, a trade
for recent trades). Where the example uses a category or symbol the sandbox does not have
(inverse, option, XRPUSDT, ETHPERP...), or a time window outside the sandbox's 7 days of candles,
the replay rewrites it and says so in its docstring.

The comparison is structural: the same field names (recursively, for objects and for the first
element of lists), the same JSON types (string, number, bool, object, array, null), and for rows
(arrays of arrays, e.g. klines and book levels) the same row width. Differences that are justified
(a field the docs give only for another category, a documented field the older example lacks, a
deprecated field) are listed in ``ALLOW`` with the reason; an allowance that no longer matches
anything fails too, so the list stays true. Everything else is a discrepancy and fails the test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import yarl

from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials, make_signer, ws_auth_args

from .shapes import Allowance, problems

SANDBOX_SEED = 11

# --- the signed client ---------------------------------------------------------------------------


@dataclass
class Api:
    """Plain aiohttp with Bybit V5 signing (REFERENCE §3): answers are the raw decoded JSON."""

    http: aiohttp.ClientSession
    base: str
    creds: Credentials

    async def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *, auth: bool = True
    ) -> dict[str, Any]:
        method = method.upper()
        body: bytes | None = None
        query = ""
        if method == "GET":
            items = [(k, str(v)) for k, v in (params or {}).items() if v is not None]
            query = urlencode(items, quote_via=quote)
            payload: bytes | str = query
        else:
            # Explicit nulls are kept: several doc bodies send them for "not given".
            body = json.dumps(dict(params or {}), separators=(",", ":")).encode()
            payload = body
        headers: dict[str, str] = {}
        if auth:
            headers = make_signer(self.creds).headers(time.time_ns() // 1_000_000, payload)
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = yarl.URL(self.base + path + (f"?{query}" if query else ""), encoded=True)
        async with self.http.request(method, url, data=body, headers=headers) as resp:
            raw = await resp.read()
            assert resp.status == 200, f"{method} {path}: HTTP {resp.status} {raw[:300]!r}"
            answer: dict[str, Any] = json.loads(raw)
            return answer


@dataclass
class Ctx:
    """What a replay works with: the sandbox and a fresh funded account's signed client."""

    sb: Sandbox
    api: Api

    async def ok(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *, auth: bool = True
    ) -> dict[str, Any]:
        answer = await self.api.request(method, path, params, auth=auth)
        assert answer["retCode"] == 0, f"{method} {path} {params}: {answer}"
        return answer

    def price(self, symbol: str, factor: str, side: str = "bids", category: str = "spot") -> str:
        """A price on ``symbol``'s tick grid: the touch (best bid or ask) times ``factor``."""
        tick = self.sb.market(symbol, category).inst.tick_size
        touch = self.sb.book(symbol, category, 1)[side][0][0]
        ticks = (touch * Decimal(factor) / tick).to_integral_value(ROUND_FLOOR)
        return format(ticks * tick, "f")

    async def resting_buy(
        self,
        symbol: str,
        qty: str,
        link_id: str | None = None,
        category: str = "spot",
        **extra: Any,
    ) -> str:
        """A limit buy 3 % under the best bid (it rests); returns its orderId."""
        body: dict[str, Any] = {
            "category": category,
            "symbol": symbol,
            "side": "Buy",
            "orderType": "Limit",
            "qty": qty,
            "price": self.price(symbol, "0.97", category=category),
            **extra,
        }
        if link_id:
            body["orderLinkId"] = link_id
        answer = await self.ok("POST", "/v5/order/create", body)
        order_id: str = answer["result"]["orderId"]
        return order_id

    async def market_buy(self, symbol: str, qty: str) -> str:
        answer = await self.ok(
            "POST",
            "/v5/order/create",
            {
                "category": "spot",
                "symbol": symbol,
                "side": "Buy",
                "orderType": "Market",
                "qty": qty,
                "marketUnit": "baseCoin",
            },
        )
        order_id: str = answer["result"]["orderId"]
        return order_id

    async def linear_market(self, symbol: str, side: str, qty: str, **extra: Any) -> str:
        """A linear market order (it fills against the sandbox's book); returns its orderId."""
        body = {
            "category": "linear",
            "symbol": symbol,
            "side": side,
            "orderType": "Market",
            "qty": qty,
            **extra,
        }
        answer = await self.ok("POST", "/v5/order/create", body)
        order_id: str = answer["result"]["orderId"]
        return order_id

    async def switch_mode(self, symbol: str, mode: int) -> None:
        body = {"category": "linear", "symbol": symbol, "mode": mode}
        await self.ok("POST", "/v5/position/switch-mode", body)

    async def private_push(
        self, topic: str, trigger: Callable[[], Awaitable[object]]
    ) -> dict[str, Any]:
        """The first ``topic`` message of the private stream after ``trigger`` (REFERENCE §11.2:
        auth, then subscribe)."""
        signer = make_signer(self.api.creds)
        expires = time.time_ns() // 1_000_000 + 10_000
        url = self.sb.ws_url + "/v5/private"
        async with self.api.http.ws_connect(url) as ws:

            async def reply(op: str) -> dict[str, Any]:
                while True:
                    message: dict[str, Any] = json.loads(await ws.receive_str(timeout=5))
                    if message.get("op") == op:
                        return message

            await ws.send_str(json.dumps({"op": "auth", "args": ws_auth_args(signer, expires)}))
            assert (await reply("auth"))["success"] is True
            await ws.send_str(json.dumps({"op": "subscribe", "args": [topic]}))
            assert (await reply("subscribe"))["success"] is True
            await trigger()
            async with asyncio.timeout(5):
                while True:
                    pushed: dict[str, Any] = json.loads(await ws.receive_str())
                    if pushed.get("topic") == topic:
                        return pushed


# --- replays -------------------------------------------------------------------------------------

Request = dict[str, Any]
Replay = Callable[[Ctx, Request], Awaitable[dict[str, Any]]]
REPLAYS: dict[str, Replay] = {}
VARIANTS: dict[str, Replay] = {}  # "<stem> [<label>]" -> replay of that example in another form


def replay(stem: str) -> Callable[[Replay], Replay]:
    def register(fn: Replay) -> Replay:
        REPLAYS[stem] = fn
        return fn

    return register


def variant(stem: str, label: str) -> Callable[[Replay], Replay]:
    def register(fn: Replay) -> Replay:
        VARIANTS[f"{stem} [{label}]"] = fn
        return fn

    return register


def stem_of(key: str) -> str:
    """The example file of a replay key (``"<stem>"`` or ``"<stem> [<label>]"``)."""
    return key.split(" [", 1)[0]


def query(req: Request, **changes: Any) -> dict[str, Any]:
    """The example's query parameters with ``changes`` applied (None removes a parameter)."""
    params = dict(req.get("query") or {})
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def recent_window(interval_min: int) -> dict[str, str]:
    """A start/end window ending now, aligned to the interval (the sandbox keeps 7 days)."""
    step = interval_min * 60_000
    end = time.time_ns() // 1_000_000 // step * step
    return {"start": str(end - 8 * step), "end": str(end)}


async def as_documented(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The example's request, unchanged."""
    if req["method"] == "GET":
        return await ctx.ok("GET", req["path"], req.get("query"), auth=req["auth"])
    return await ctx.ok("POST", req["path"], req.get("body"), auth=req["auth"])


for _stem in (
    "rest_v5_market_time",
    "rest_v5_market_instruments_info",  # linear BTCUSDT
    "rest_v5_market_instruments_info_spot",
    "rest_v5_market_orderbook",  # spot BTCUSDT, default limit
    "rest_v5_market_tickers_spot",
    "rest_v5_market_price_limit",  # linear BTCUSDT
    "rest_v5_account_wallet_balance",
    "rest_v5_account_info",
    "rest_v5_account_user_setting_config",
    "rest_v5_account_set_limit_px_action",  # spot, modifyEnable true
    "rest_v5_user_query_api",
    "rest_v5_position_set_leverage",  # linear BTCUSDT 6x
):
    REPLAYS[_stem] = as_documented


@replay("rest_v5_account_query_dcp_info")
async def _query_dcp_info(ctx: Ctx, req: Request) -> dict[str, Any]:
    """As documented, on an account whose DCP is enabled for SPOT and DERIVATIVES (the doc's
    comments; Bybit staff enable it, the sandbox by a control), so the list is not empty."""
    ctx.sb.enable_dcp(ctx.api.creds.api_key, ("SPOT", "DERIVATIVES"))
    answer = await ctx.ok("GET", req["path"], req.get("query"), auth=req["auth"])
    assert answer["result"]["dcpInfos"] == [
        {"product": "SPOT", "dcpStatus": "ON", "timeWindow": "10"},
        {"product": "DERIVATIVES", "dcpStatus": "ON", "timeWindow": "10"},
    ], answer
    return answer


@replay("rest_v5_order_disconnected_cancel_all")
async def _disconnected_cancel_all(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The documented body unchanged (no ``product``: Bybit's default OPTIONS), on an account
    whose DCP is enabled for OPTIONS; the window then shows in query-dcp-info."""
    ctx.sb.enable_dcp(ctx.api.creds.api_key, ("OPTIONS",))
    answer = await ctx.ok("POST", req["path"], req["body"])
    info = await ctx.ok("GET", "/v5/account/query-dcp-info")
    window = str(req["body"]["timeWindow"])
    assert info["result"]["dcpInfos"] == [
        {"product": "OPTIONS", "dcpStatus": "ON", "timeWindow": window}
    ], info
    return answer


@replay("rest_v5_order_create")
async def _order_create(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The docs' "Spot PostOnly normal order" body (one of its labelled request variants; the
    response is shared). The first variant attaches TP/SL, which the sandbox refuses by design
    (spot TP/SL orders are not simulated)."""
    (body,) = [v["body"] for v in req["variants"] if v["label"] == "Spot PostOnly normal order"]
    return await ctx.ok("POST", req["path"], body)


@replay("rest_v5_market_tickers")
async def _tickers(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Inverse BTCUSD rewritten to linear BTCUSDT (the doc says the shapes are the same)."""
    return await ctx.ok(
        "GET", req["path"], query(req, category="linear", symbol="BTCUSDT"), auth=False
    )


@replay("rest_v5_market_kline")
async def _kline(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Inverse BTCUSD rewritten to linear BTCUSDT; the 2022 window moved to the last 8 hours."""
    params = query(req, category="linear", symbol="BTCUSDT", **recent_window(60))
    return await ctx.ok("GET", req["path"], params, auth=False)


@replay("rest_v5_market_mark_price_kline")
async def _mark_kline(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear BTCUSDT as documented; the 2022 window moved to the last two hours."""
    return await ctx.ok("GET", req["path"], query(req, **recent_window(15)), auth=False)


@replay("rest_v5_market_index_price_kline")
async def _index_kline(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Inverse BTCUSDZ22 rewritten to linear BTCUSDT; the 2022 window moved to the last minutes."""
    params = query(req, category="linear", symbol="BTCUSDT", **recent_window(1))
    return await ctx.ok("GET", req["path"], params, auth=False)


@replay("rest_v5_market_recent_trade")
async def _recent_trade(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Spot BTCUSDT as documented, after a house trade so the list is not empty."""
    ctx.sb.inject_trade("BTCUSDT", "Buy", "0.001")
    answer = await ctx.ok("GET", req["path"], req["query"], auth=False)
    assert answer["result"]["list"], "recent trades: the injected trade is missing"
    return answer


@replay("rest_v5_account_fee_rate")
async def _fee_rate(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The doc request omits the required category: category=spot added, symbol ETHUSDT kept."""
    return await ctx.ok("GET", req["path"], query(req, category="spot"))


@variant("rest_v5_account_transaction_log", "spot")
async def _transaction_log_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot (USDT kept), after a spot fill so TRADE rows exist."""
    await ctx.market_buy("BTCUSDT", "0.001")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert answer["result"]["list"], "transaction log: the fill's TRADE rows are missing"
    return answer


@variant("rest_v5_execution_list", "spot")
async def _execution_list_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot, after a spot market buy that fills."""
    await ctx.market_buy("BTCUSDT", "0.002")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert answer["result"]["list"], "executions: the fill is missing"
    return answer


@variant("rest_v5_order_realtime", "spot")
async def _order_realtime_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot (ETHUSDT kept), after a resting ETHUSDT limit buy."""
    order_id = await ctx.resting_buy("ETHUSDT", "0.1", "test-000005")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert [o["orderId"] for o in answer["result"]["list"]] == [order_id]
    return answer


@variant("rest_v5_order_history", "spot")
async def _order_history_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot. As in the example, the order is a PostOnly buy that
    would take liquidity (priced at the best ask), so the exchange cancels it."""
    body = {
        "category": "spot",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.003",
        "price": ctx.price("BTCUSDT", "1", "asks"),
        "timeInForce": "PostOnly",
        "orderLinkId": "YLxaWKMiHU",
    }
    order_id = (await ctx.ok("POST", "/v5/order/create", body))["result"]["orderId"]
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    (order,) = answer["result"]["list"]
    assert order["orderId"] == order_id
    assert (order["orderStatus"], order["rejectReason"]) == (
        "Cancelled",
        "EC_PostOnlyWillTakeLiquidity",
    )
    return answer


@variant("rest_v5_order_amend", "spot")
async def _order_amend_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear ETHPERP rewritten to spot ETHUSDT: an order with the example's orderLinkId is
    created first; qty and price are amended (triggerPrice/takeProfit/stopLoss dropped: they do
    not apply to a plain spot order)."""
    link_id = req["body"]["orderLinkId"]
    await ctx.resting_buy("ETHUSDT", "0.1", link_id)
    body = {
        "category": "spot",
        "symbol": "ETHUSDT",
        "orderLinkId": link_id,
        "qty": req["body"]["qty"],
        "price": ctx.price("ETHUSDT", "0.96"),
    }
    return await ctx.ok("POST", req["path"], body)


@variant("rest_v5_order_cancel", "spot")
async def _order_cancel_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear BTCPERP rewritten to spot BTCUSDT; the orderId is a freshly created order's; the
    example's JSON null orderLinkId is kept."""
    order_id = await ctx.resting_buy("BTCUSDT", "0.001", "linear-004")
    body = dict(req["body"], category="spot", symbol="BTCUSDT", orderId=order_id)
    return await ctx.ok("POST", req["path"], body)


@variant("rest_v5_order_cancel_all", "spot")
async def _order_cancel_all_spot(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear by settleCoin rewritten to spot (which does not accept settleCoin) with the example's
    null symbol kept: cancels every spot order; two are created first."""
    ids = {
        await ctx.resting_buy("BTCUSDT", "0.001", "1616024329462743809"),
        await ctx.resting_buy("ETHUSDT", "0.01", "1616024287544869633"),
    }
    body = {k: v for k, v in req["body"].items() if k != "settleCoin"}
    answer = await ctx.ok("POST", req["path"], dict(body, category="spot"))
    assert {o["orderId"] for o in answer["result"]["list"]} == ids
    return answer


@replay("rest_v5_order_create_batch")
async def _create_batch(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Spot as documented; ATOMUSDT (not listed by the sandbox) replaced by ETHUSDT, and the
    prices moved to ones valid in the sandbox's market (a buy under, a sell over the touch)."""
    first, second = req["body"]["request"]
    items = [
        dict(first, price=ctx.price("BTCUSDT", "0.97")),
        dict(second, symbol="ETHUSDT", qty="0.01", price=ctx.price("ETHUSDT", "1.03", "asks")),
    ]
    answer = await ctx.ok("POST", req["path"], dict(req["body"], request=items))
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 0], answer
    return answer


@replay("rest_v5_order_amend_batch")
async def _amend_batch(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Option rewritten to spot: two resting orders are created and amended (the first by qty,
    the second by price); the example's JSON nulls for fields not amended are kept."""
    first, second = req["body"]["request"]
    btc = await ctx.resting_buy("BTCUSDT", "0.001")
    eth = await ctx.resting_buy("ETHUSDT", "0.01")
    items = [
        dict(first, symbol="BTCUSDT", orderId=btc, qty="0.002", orderIv=None),
        dict(second, symbol="ETHUSDT", orderId=eth, price=ctx.price("ETHUSDT", "0.96")),
    ]
    answer = await ctx.ok("POST", req["path"], dict(req["body"], category="spot", request=items))
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 0], answer
    return answer


@replay("rest_v5_order_cancel_batch")
async def _cancel_batch(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Spot as documented: the first orderId is a freshly created order's; the second item
    (ATOMUSDT, an unknown orderLinkId) fails with 170213 as in the example."""
    first, second = req["body"]["request"]
    order_id = await ctx.resting_buy("BTCUSDT", "0.001", "spot-btc-03")
    items = [dict(first, orderId=order_id), second]
    answer = await ctx.ok("POST", req["path"], dict(req["body"], request=items))
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 170213], answer
    return answer


# --- linear perpetuals ---------------------------------------------------------------------------


@replay("rest_v5_position_list")
async def _position_list(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Inverse BTCUSD rewritten to linear BTCUSDT, after a market sell of 0.01 (the example's
    position is a short)."""
    await ctx.linear_market("BTCUSDT", "Sell", "0.01")
    answer = await ctx.ok("GET", req["path"], query(req, category="linear", symbol="BTCUSDT"))
    (row,) = answer["result"]["list"]
    assert (row["positionIdx"], row["side"], row["size"]) == (0, "Sell", "0.01")
    return answer


@replay("rest_v5_position_switch_mode")
async def _switch_mode(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Inverse BTCUSDH23 rewritten to linear BTCUSDT (the parameter table allows linear only); the
    example's mode 0 and JSON null coin kept, after a switch to hedge mode so that 0 changes it."""
    await ctx.switch_mode("BTCUSDT", 3)
    return await ctx.ok("POST", req["path"], dict(req["body"], category="linear", symbol="BTCUSDT"))


@replay("rest_v5_position_trading_stop")
async def _trading_stop(ctx: Ctx, req: Request) -> dict[str, Any]:
    """XRPUSDT rewritten to BTCUSDT, after a market buy of 0.002 (the example's tpSize/slSize 50
    of a 100 position become 0.001); TP/SL and their limit prices moved around the best bid (TP
    +5 % / limit +4.5 %, SL -5 % / limit -4.5 %); Partial mode, Limit order types and the trigger
    sources (MarkPrice, IndexPrice) kept."""
    await ctx.linear_market("BTCUSDT", "Buy", "0.002")

    def px(factor: str) -> str:
        return ctx.price("BTCUSDT", factor, category="linear")

    body = dict(
        req["body"],
        symbol="BTCUSDT",
        takeProfit=px("1.05"),
        tpLimitPrice=px("1.045"),
        stopLoss=px("0.95"),
        slLimitPrice=px("0.955"),
        tpSize="0.001",
        slSize="0.001",
    )
    return await ctx.ok("POST", req["path"], body)


@replay("rest_v5_position_closed_pnl")
async def _closed_pnl(ctx: Ctx, req: Request) -> dict[str, Any]:
    """As documented (linear, limit 1), after a long of 0.003 BTCUSDT closed at the market."""
    await ctx.linear_market("BTCUSDT", "Buy", "0.003")
    await ctx.linear_market("BTCUSDT", "Sell", "0", reduceOnly=True, closeOnTrigger=True)
    answer = await as_documented(ctx, req)
    assert len(answer["result"]["list"]) == 1, "closed P&L: the close is missing"
    return answer


@replay("rest_v5_position_symbol_info")
async def _symbol_info(ctx: Ctx, req: Request) -> dict[str, Any]:
    """As documented (BTCUSDT), after a switch to hedge mode (the example shows hedge rows)."""
    await ctx.switch_mode("BTCUSDT", 3)
    answer = await as_documented(ctx, req)
    assert sorted(r["positionIdx"] for r in answer["result"]["list"]) == [1, 2]
    return answer


@variant("rest_v5_order_create", "linear open")
async def _order_create_linear_open(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The docs' "USDT Perp open long position (one-way mode)" body: a limit buy of 1 with a Partial
    limit TP/SL; its prices (25000; TP 28000 / 27500; SL 20000 / 20500) moved to the sandbox's
    market (3 % under the best bid; TP +12 % / +10 %; SL -20 % / -18 %), the rest kept."""
    (body,) = [
        v["body"]
        for v in req["variants"]
        if v["label"] == "USDT Perp open long position (one-way mode)"
    ]

    def px(factor: str) -> str:
        return ctx.price("BTCUSDT", factor, category="linear")

    body = dict(
        body,
        price=px("0.97"),
        takeProfit=px("1.12"),
        tpLimitPrice=px("1.10"),
        stopLoss=px("0.80"),
        slLimitPrice=px("0.82"),
    )
    return await ctx.ok("POST", req["path"], body)


@variant("rest_v5_order_create", "linear close")
async def _order_create_linear_close(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The docs' "USDT Perp close long position (one-way mode)" body: a reduce-only limit sell of
    1, after a market buy of 1 opened the long; its price (30000) moved 3 % over the best ask so
    that it rests."""
    (body,) = [
        v["body"]
        for v in req["variants"]
        if v["label"] == "USDT Perp close long position (one-way mode)"
    ]
    await ctx.linear_market("BTCUSDT", "Buy", "1")
    body = dict(body, price=ctx.price("BTCUSDT", "1.03", "asks", "linear"))
    return await ctx.ok("POST", req["path"], body)


@replay("rest_v5_order_amend")
async def _order_amend(ctx: Ctx, req: Request) -> dict[str, Any]:
    """USDC perpetual ETHPERP rewritten to BTCPERP (the sandbox's USDC perpetual). As the example
    amends a triggerPrice, the order is a conditional limit buy with the example's orderLinkId,
    triggered 5 % over the best ask; trigger (6 % over), qty (0.15 of ETH become 0.015) and price
    (4 % under the bid) are amended; the example's "0" takeProfit / stopLoss kept."""
    link_id = req["body"]["orderLinkId"]

    def px(factor: str, side: str = "bids") -> str:
        return ctx.price("BTCPERP", factor, side, "linear")

    create = {
        "category": "linear",
        "symbol": "BTCPERP",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.01",
        "price": px("0.97"),
        "triggerPrice": px("1.05", "asks"),
        "triggerDirection": 1,
        "orderLinkId": link_id,
    }
    await ctx.ok("POST", "/v5/order/create", create)
    body = dict(
        req["body"],
        symbol="BTCPERP",
        triggerPrice=px("1.06", "asks"),
        qty="0.015",
        price=px("0.96"),
    )
    return await ctx.ok("POST", req["path"], body)


@replay("rest_v5_order_cancel")
async def _order_cancel(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear BTCPERP as documented; the orderId is a fresh resting order's; the example's JSON
    null orderLinkId kept."""
    order_id = await ctx.resting_buy("BTCPERP", "0.001", "linear-004", category="linear")
    return await ctx.ok("POST", req["path"], dict(req["body"], orderId=order_id))


@replay("rest_v5_order_cancel_all")
async def _order_cancel_all(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear by settleCoin USDT as documented (the example's null symbol kept), after two resting
    orders (BTCUSDT, ETHUSDT) with the example's orderLinkIds."""
    ids = {
        await ctx.resting_buy("BTCUSDT", "0.001", "1616024329462743809", category="linear"),
        await ctx.resting_buy("ETHUSDT", "0.01", "1616024287544869633", category="linear"),
    }
    answer = await ctx.ok("POST", req["path"], req["body"])
    assert {o["orderId"] for o in answer["result"]["list"]} == ids
    return answer


@replay("rest_v5_order_realtime")
async def _order_realtime(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear ETHUSDT as documented. As in the example, the order is a resting limit buy of 0.1
    on the hedge-mode long side (positionIdx 1) with a take-profit and a stop-loss, orderLinkId
    test-000005."""
    await ctx.switch_mode("ETHUSDT", 3)
    order_id = await ctx.resting_buy(
        "ETHUSDT",
        "0.1",
        "test-000005",
        category="linear",
        positionIdx=1,
        takeProfit=ctx.price("ETHUSDT", "1.5", "asks", "linear"),
        stopLoss=ctx.price("ETHUSDT", "0.9", category="linear"),
    )
    answer = await as_documented(ctx, req)
    assert [o["orderId"] for o in answer["result"]["list"]] == [order_id]
    return answer


@replay("rest_v5_order_history")
async def _order_history(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear as documented. As in the example, the order is a PostOnly buy of 0.003 BTCUSDT that
    would take liquidity (priced at the best ask), so the exchange cancels it."""
    body = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.003",
        "price": ctx.price("BTCUSDT", "1", "asks", "linear"),
        "timeInForce": "PostOnly",
        "orderLinkId": "YLxaWKMiHU",
    }
    order_id = (await ctx.ok("POST", "/v5/order/create", body))["result"]["orderId"]
    answer = await as_documented(ctx, req)
    (order,) = answer["result"]["list"]
    assert order["orderId"] == order_id
    assert (order["orderStatus"], order["rejectReason"]) == (
        "Cancelled",
        "EC_PostOnlyWillTakeLiquidity",
    )
    return answer


@replay("rest_v5_execution_list")
async def _execution_list(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear as documented (the example's fill is an ETHPERP market buy; the query names no
    symbol), after a market buy of 0.1 ETHUSDT."""
    await ctx.linear_market("ETHUSDT", "Buy", "0.1")
    answer = await as_documented(ctx, req)
    (row,) = answer["result"]["list"]
    assert (row["symbol"], row["execType"], row["orderType"]) == ("ETHUSDT", "Trade", "Market")
    return answer


@replay("rest_v5_pre_upgrade_execution_list_funding")
async def _funding_execution(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The pre-upgrade endpoint is not served (classic accounts): the same query (linear BTCUSDT,
    execType Funding, limit 1) on /v5/execution/list, after a market sell of 0.011 (the example's
    short) and a funding settlement (the sandbox's control)."""
    await ctx.linear_market("BTCUSDT", "Sell", "0.011")
    ctx.sb.settle_funding("BTCUSDT")
    answer = await ctx.ok("GET", "/v5/execution/list", req["query"])
    (row,) = answer["result"]["list"]
    assert (row["execType"], row["side"], row["orderType"]) == ("Funding", "Sell", "UNKNOWN")
    return answer


@replay("rest_v5_account_transaction_log")
async def _transaction_log(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear USDT as documented, after a market buy of 0.01 BTCUSDT and a funding settlement (the
    sandbox's control): a SETTLEMENT row, then the TRADE rows, as in the example."""
    await ctx.linear_market("BTCUSDT", "Buy", "0.01")
    ctx.sb.settle_funding("BTCUSDT")
    answer = await as_documented(ctx, req)
    types = [r["type"] for r in answer["result"]["list"]]
    assert types[0] == "SETTLEMENT" and set(types[1:]) == {"TRADE"}, types
    return answer


@replay("rest_v5_market_funding_history")
async def _funding_history(ctx: Ctx, req: Request) -> dict[str, Any]:
    """USDC perpetual ETHPERP rewritten to BTCPERP (the sandbox's USDC perpetual), after a funding
    settlement (the sandbox's control) so that the list is not empty."""
    ctx.sb.settle_funding("BTCPERP")
    answer = await ctx.ok("GET", req["path"], query(req, symbol="BTCPERP"), auth=False)
    assert answer["result"]["list"], "funding history: the settlement is missing"
    return answer


@replay("rest_v5_account_set_margin_mode")
async def _set_margin_mode(ctx: Ctx, req: Request) -> dict[str, Any]:
    """As documented (PORTFOLIO_MARGIN). The sandbox simulates the default cross margin only and
    refuses the switch the way Bybit refuses one: 3400045 with ``result.reasons``, as the example
    (a refusal too)."""
    answer = await ctx.api.request("POST", req["path"], req["body"])
    assert answer["retCode"] == 3400045 and answer["result"]["reasons"], answer
    return answer


@replay("ws_position")
async def _ws_position(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The example is a flat hedge-mode short side (positionIdx 2). The private stream is
    subscribed with the example's request; BTCUSDT is switched to hedge mode and its leverage set
    to 12, which pushes both of its (flat) sides."""
    (topic,) = req["args"]
    await ctx.switch_mode("BTCUSDT", 3)
    body = {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "12", "sellLeverage": "12"}
    pushed = await ctx.private_push(
        topic, lambda: ctx.ok("POST", "/v5/position/set-leverage", body)
    )
    assert [(p["positionIdx"], p["size"]) for p in pushed["data"]] == [(1, "0"), (2, "0")]
    return pushed


@variant("rest_v5_order_create_batch", "linear")
async def _create_batch_linear(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The spot example in category linear: the same two items (ATOMUSDT replaced by ETHUSDT),
    prices moved into the sandbox's market (a buy under, a sell over the touch), isLeverage
    dropped (spot only)."""
    first, second = (
        {k: v for k, v in item.items() if k != "isLeverage"} for item in req["body"]["request"]
    )
    items = [
        dict(first, price=ctx.price("BTCUSDT", "0.97", category="linear")),
        dict(second, symbol="ETHUSDT", price=ctx.price("ETHUSDT", "1.03", "asks", "linear")),
    ]
    body = dict(req["body"], category="linear", request=items)
    answer = await ctx.ok("POST", req["path"], body)
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 0], answer
    return answer


@variant("rest_v5_order_amend_batch", "linear")
async def _amend_batch_linear(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Option rewritten to linear: two resting orders (BTCUSDT, ETHUSDT) amended, the first by
    qty, the second by price; the example's JSON nulls for fields not amended kept."""
    first, second = req["body"]["request"]
    btc = await ctx.resting_buy("BTCUSDT", "0.001", category="linear")
    eth = await ctx.resting_buy("ETHUSDT", "0.01", category="linear")
    items = [
        dict(first, symbol="BTCUSDT", orderId=btc, qty="0.002", orderIv=None),
        dict(
            second,
            symbol="ETHUSDT",
            orderId=eth,
            price=ctx.price("ETHUSDT", "0.96", category="linear"),
        ),
    ]
    body = dict(req["body"], category="linear", request=items)
    answer = await ctx.ok("POST", req["path"], body)
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 0], answer
    return answer


@variant("rest_v5_order_cancel_batch", "linear")
async def _cancel_batch_linear(ctx: Ctx, req: Request) -> dict[str, Any]:
    """The spot example in category linear: the first orderId is a fresh resting BTCUSDT order's;
    the second item (ATOMUSDT replaced by ETHUSDT, an unknown orderLinkId) fails with 110001, the
    derivatives' "order does not exist" (REFERENCE §5)."""
    first, second = req["body"]["request"]
    order_id = await ctx.resting_buy("BTCUSDT", "0.001", category="linear")
    items = [dict(first, orderId=order_id), dict(second, symbol="ETHUSDT")]
    answer = await ctx.ok("POST", req["path"], dict(req["body"], category="linear", request=items))
    assert [c["code"] for c in answer["retExtInfo"]["list"]] == [0, 110001], answer
    return answer


# --- examples not replayed -----------------------------------------------------------------------

NOT_SIMULATED = "not simulated by the sandbox: "
NOT_REST = "WebSocket message, not a REST call: "
CHECKED = " (its shape is checked by test_pybit_sandbox.py::test_ws_message_structure)"
CHECKED_LINEAR = " (its shape is checked by test_pybit_linear.py::test_ws_position_and_execution)"
OPTION = NOT_SIMULATED + "options (the sandbox lists spot and linear perpetuals only)"

SKIPS: dict[str, str] = {
    "rest_v5_account_contract_transaction_log": NOT_SIMULATED
    + "the classic / UTA1.0 inverse ledger (deprecated /v5/account/contract-transaction-log, not "
    "served); the sandbox's accounts are UTA2.0 and it has no inverse contracts",
    "rest_v5_market_instruments_info_linear_prelisting": NOT_SIMULATED
    + "pre-market (PreLaunch) contracts; the docs give no request for this variant",
    "rest_v5_market_instruments_info_option": OPTION,
    "rest_v5_market_premium_index_price_kline": NOT_SIMULATED
    + "the premium index (GET /v5/market/premium-index-price-kline is not served; the sandbox's "
    "funding rate is set by a control, not derived from a premium)",
    "rest_v5_market_tickers_option": OPTION,
    "ws_auth": NOT_REST + "private stream auth ack",
    "ws_dcp": NOT_REST
    + "DCP topic subscription (no documented answer; the sandbox acks it like any private "
    "topic, and tests/integration/test_dcp.py checks what it arms)",
    "ws_execution": NOT_REST + "private execution topic" + CHECKED + CHECKED_LINEAR,
    "ws_kline": NOT_REST + "kline topic" + CHECKED,
    "ws_order": NOT_REST + "private order topic" + CHECKED + CHECKED_LINEAR,
    "ws_orderbook_delta": NOT_REST + "orderbook delta" + CHECKED,
    "ws_orderbook_snapshot": NOT_REST + "orderbook snapshot" + CHECKED,
    "ws_ping_private": NOT_REST + "private heartbeat",
    "ws_ping_public_linear": NOT_REST + "linear heartbeat",
    "ws_ping_public_option": NOT_REST + "option heartbeat; " + OPTION,
    "ws_ping_public_spot": NOT_REST + "spot heartbeat",
    "ws_price_limit": NOT_REST + "priceLimit topic" + CHECKED,
    "ws_public_trade": NOT_REST + "publicTrade topic" + CHECKED,
    "ws_subscribe_private": NOT_REST + "private subscribe ack" + CHECKED,
    "ws_subscribe_public_linear": NOT_REST + "linear subscribe ack" + CHECKED,
    "ws_subscribe_public_option": NOT_REST + "option subscribe ack; " + OPTION,
    "ws_subscribe_public_spot": NOT_REST + "spot subscribe ack" + CHECKED,
    "ws_tickers_linear": NOT_REST + "linear perpetual tickers topic" + CHECKED,
    "ws_tickers_linear_futures": NOT_REST
    + "dated-futures tickers; "
    + NOT_SIMULATED
    + "dated futures (the sandbox lists perpetuals only)",
    "ws_tickers_option": NOT_REST + "option tickers; " + OPTION,
    "ws_tickers_spot": NOT_REST + "spot tickers topic" + CHECKED,
    "ws_trade_auth": NOT_REST + "trade WebSocket auth",
    "ws_trade_order_create": NOT_REST + "trade WebSocket order.create",
    "ws_trade_order_create_batch": NOT_REST + "trade WebSocket order.create-batch",
    "ws_trade_ping": NOT_REST + "trade WebSocket heartbeat",
    "ws_unsubscribe": NOT_REST + "unsubscribe request (no documented answer)",
    "ws_wallet": NOT_REST + "private wallet topic" + CHECKED,
}

# --- justified differences -----------------------------------------------------------------------

# (kind, path) -> reason; kinds and paths as in conformance.shapes.

TABLE_NOT_EXAMPLE = "in the docs' field table (REFERENCE §{}) but absent from the older example"

ENVELOPE_OMITTED: Allowance = {
    ("extra", "retExtInfo"): "the doc example omits retExtInfo (REFERENCE §15); §2 has it always",
    ("extra", "time"): "the doc example omits time (REFERENCE §15); §2 has it always",
}

# A spot order object compared with the linear examples of realtime / history (REFERENCE §8.8).
SPOT_ORDER_VS_LINEAR: Allowance = {
    ("missing", "result.list[].lastPriceOnCreated"): "lastPriceOnCreated is not for spot (§8.8)",
    ("missing", "result.list[].tpslMode"): "tpslMode is absent for spot (§8.8)",
    ("extra", "result.list[].basePrice"): "basePrice is spot-only (§8.8)",
    ("extra", "result.list[].marketUnit"): TABLE_NOT_EXAMPLE.format("8.8"),
    ("extra", "result.list[].ocoTriggerBy"): TABLE_NOT_EXAMPLE.format("8.8"),
    ("extra", "result.list[].parentOrderLinkId"): TABLE_NOT_EXAMPLE.format("8.8"),
}

# A linear order object compared with the linear examples of realtime / history (REFERENCE §8.8).
LINEAR_ORDER: Allowance = {
    ("extra", "result.list[].createType"): TABLE_NOT_EXAMPLE.format("8.8")
    + " (absent for spot only)",
    ("extra", "result.list[].marketUnit"): TABLE_NOT_EXAMPLE.format("8.8"),
    ("extra", "result.list[].ocoTriggerBy"): TABLE_NOT_EXAMPLE.format("8.8"),
    ("extra", "result.list[].parentOrderLinkId"): TABLE_NOT_EXAMPLE.format("8.8"),
}

GREEKS = "an options field, in the position object's field list (REFERENCE §{}); '' for linear"

ALLOW: dict[str, Allowance] = {
    "rest_v5_market_instruments_info": {
        ("extra", "result.list[].displayName"): TABLE_NOT_EXAMPLE.format("7.2"),
        ("extra", "result.list[].forbidUplWithdrawal"): TABLE_NOT_EXAMPLE.format("7.2"),
    },
    "rest_v5_market_instruments_info_spot": {
        ("extra", "result.list[].xstockMultiplier"): TABLE_NOT_EXAMPLE.format("7.2"),
    },
    "rest_v5_account_info": ENVELOPE_OMITTED,
    "rest_v5_account_wallet_balance": {
        ("extra", "result.list[].coin[].free"): TABLE_NOT_EXAMPLE.format("10.1") + " (deprecated)",
        ("extra", "result.list[].coin[].colRes"): TABLE_NOT_EXAMPLE.format("10.1"),
    },
    "rest_v5_account_fee_rate": {
        ("extra", "result.category"): "returned for spot/option only (§10.2); the doc example is "
        "a derivatives answer (its request omits category)",
    },
    "rest_v5_account_user_setting_config": {
        ("extra", "result.deltaEnable"): "in the table, missing from the example (§7.9, §15)",
    },
    "rest_v5_order_disconnected_cancel_all": {
        **ENVELOPE_OMITTED,
        ("extra", "result"): "the doc example has no result (§8.12: no result fields); §2's "
        "envelope has result {} always",
    },
    "rest_v5_user_query_api": {
        ("missing", "result.permissions.FiatGlobalPay"): "undocumented group, example only (§10.7)",
        ("missing", "result.userIDInt64"): "undocumented string twin, example only (§10.7)",
        ("missing", "result.inviterIDInt64"): "undocumented string twin, example only (§10.7)",
        ("missing", "result.affiliateIDInt64"): "undocumented string twin, example only (§10.7)",
        ("empty", "result.permissions.Earn"): "[] = permission not granted (§10.7)",
        ("empty", "result.permissions.FiatP2P"): "[] = not granted (§10.7)",
        ("empty", "result.permissions.FiatBitPay"): "[] = not granted (§10.7)",
        ("empty", "result.permissions.FiatConvertBroker"): "[] = not granted (§10.7)",
        ("empty", "result.permissions.BitCard"): "[] = not granted (§10.7)",
        ("empty", "result.permissions.ByXPost"): "[] = not granted (§10.7)",
    },
    "rest_v5_market_tickers": {
        ("extra", "result.list[].singleOpenInterest"): TABLE_NOT_EXAMPLE.format("7.4"),
        ("extra", "result.list[].singleOpenInterestValue"): TABLE_NOT_EXAMPLE.format("7.4"),
    },
    "rest_v5_order_realtime": LINEAR_ORDER,
    "rest_v5_order_history": LINEAR_ORDER,
    "rest_v5_order_realtime [spot]": SPOT_ORDER_VS_LINEAR,
    "rest_v5_order_history [spot]": SPOT_ORDER_VS_LINEAR,
    "rest_v5_execution_list": {
        ("extra", "result.list[].createType"): TABLE_NOT_EXAMPLE.format("8.10")
        + " (absent for spot only)",
    },
    "rest_v5_pre_upgrade_execution_list_funding": {
        ("extra", "result.list[].createType"): "a /v5/execution/list field (§8.10) that the "
        "pre-upgrade endpoint's row lacks (the example's note)",
        ("extra", "result.list[].feeCurrency"): "a /v5/execution/list field (§8.10) that the "
        "pre-upgrade row lacks (the example's note)",
        ("extra", "result.list[].seq"): "a /v5/execution/list field (§8.10) that the "
        "pre-upgrade row lacks (the example's note)",
        ("extra", "result.list[].extraFees"): "a /v5/execution/list field (§8.10) that the "
        "pre-upgrade row lacks (the example's note)",
    },
    "rest_v5_position_list": {
        ("missing", "result.list[].mmrSysUpdateTime"): "the example's misspelling of "
        "mmrSysUpdatedTime (the field table and the WS topic, §15)",
        ("extra", "result.list[].mmrSysUpdatedTime"): "the documented spelling (§9.1, §15)",
        ("extra", "result.list[].delta"): GREEKS.format("9.1"),
        ("extra", "result.list[].gamma"): GREEKS.format("9.1"),
        ("extra", "result.list[].vega"): GREEKS.format("9.1"),
        ("extra", "result.list[].theta"): GREEKS.format("9.1"),
        ("extra", "result.list[].openTime"): "in the position object of §9.1; the example "
        "predates it",
    },
    "rest_v5_position_closed_pnl": {
        ("extra", "result.list[].openFee"): "added 2025-06-24 (§9.5); the example predates it",
        ("extra", "result.list[].closeFee"): "added 2025-06-24 (§9.5); the example predates it",
    },
    "rest_v5_account_set_margin_mode": ENVELOPE_OMITTED,
    "ws_position": {
        ("extra", "data[].delta"): GREEKS.format("13.3"),
        ("extra", "data[].gamma"): GREEKS.format("13.3"),
        ("extra", "data[].vega"): GREEKS.format("13.3"),
        ("extra", "data[].theta"): GREEKS.format("13.3"),
        ("extra", "data[].openTime"): "in the topic's field list (§13.3); the example predates it",
    },
}

# Objects whose keys are data (coin names), not field names: only their values are compared.
MAPS = frozenset({"result.list[].cumFeeDetail"})


def test_classification_is_complete(examples_dir: Path) -> None:
    """Every example file is classified, and every classification names an existing file."""
    stems = {p.stem for p in examples_dir.glob("*.json")}
    both = set(REPLAYS) & set(SKIPS)
    assert not both, f"classified twice: {sorted(both)}"
    assert not (set(REPLAYS) | set(SKIPS)) - stems, "classification of a file that is gone"
    assert {stem_of(k) for k in VARIANTS} <= set(REPLAYS), "a variant of an example not replayed"
    assert not set(ALLOW) - set(REPLAYS) - set(VARIANTS), "allowances for examples not replayed"


@pytest.fixture
def example(example_file: Path) -> dict[str, Any]:
    """The example file's content."""
    content: dict[str, Any] = json.loads(example_file.read_text())
    return content


async def run_replay(sb: Sandbox, key: str, replay_fn: Replay, example: dict[str, Any]) -> None:
    """Replay ``example`` on a fresh funded account and compare the answer with the docs'."""
    creds = sb.create_account()
    async with aiohttp.ClientSession() as http:
        ctx = Ctx(sb, Api(http, sb.rest_url, creds))
        request = dict(example["request"], variants=example.get("request_variants", []))
        answer = await replay_fn(ctx, request)
    found = problems(example["response"], answer, ALLOW.get(key), MAPS)
    assert not found, f"{key}: the sandbox's answer differs from the docs:\n  " + "\n  ".join(found)


@pytest.mark.asyncio(loop_scope="module")
async def test_example_structure(example_file: Path, example: dict[str, Any], sb: Sandbox) -> None:
    stem = example_file.stem
    if stem in SKIPS:
        pytest.skip(SKIPS[stem])
    if stem not in REPLAYS:
        pytest.fail(f"{stem}: unclassified example file; add it to REPLAYS or SKIPS")
    await run_replay(sb, stem, REPLAYS[stem], example)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("key", sorted(VARIANTS))
async def test_variant_structure(key: str, examples_dir: Path, sb: Sandbox) -> None:
    """An example replayed in another category than its own, against the same documented answer."""
    example = json.loads((examples_dir / f"{stem_of(key)}.json").read_text())
    await run_replay(sb, key, VARIANTS[key], example)
