"""Structure conformance: the sandbox's REST answers have the shape of Bybit's documented answers.

Every example file of the reference pack (``examples_dir``) is classified here, either as a REST
call the sandbox serves for spot or market data (``REPLAYS``) or as not applicable yet
(``SKIPS``, with the reason and the later issue). An example file without a classification fails,
so a new example cannot slip by unnoticed.

A replay sends an equivalent request to a sandbox (signed with ``make_signer`` over plain aiohttp,
so the raw JSON is compared, not a decoded struct), creating first whatever the call needs (orders
to amend or cancel, fills for executions and the ledger, a trade for recent trades). Where the
example uses a category or symbol the sandbox does not have, or a time window outside the
sandbox's 7 days of candles, the replay rewrites it and says so in its docstring.

The comparison is structural: the same field names (recursively, for objects and for the first
element of lists), the same JSON types (string, number, bool, object, array, null), and for rows
(arrays of arrays, e.g. klines and book levels) the same row width. Differences that are justified
(a field the docs give only for another category, a documented field the older example lacks, a
deprecated field) are listed in ``ALLOW`` with the reason; an allowance that no longer matches
anything fails too, so the list stays true. Everything else is a discrepancy and fails the test.
"""

from __future__ import annotations

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
from bybitkit.v5.auth import Credentials, make_signer

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

    def price(self, symbol: str, factor: str, side: str = "bids") -> str:
        """A price on ``symbol``'s tick grid: the touch (best bid or ask) times ``factor``."""
        tick = self.sb.market(symbol, "spot").inst.tick_size
        touch = self.sb.book(symbol, "spot", 1)[side][0][0]
        ticks = (touch * Decimal(factor) / tick).to_integral_value(ROUND_FLOOR)
        return format(ticks * tick, "f")

    async def resting_buy(self, symbol: str, qty: str, link_id: str | None = None) -> str:
        """A spot limit buy 3 % under the best bid (it rests); returns its orderId."""
        body: dict[str, Any] = {
            "category": "spot",
            "symbol": symbol,
            "side": "Buy",
            "orderType": "Limit",
            "qty": qty,
            "price": self.price(symbol, "0.97"),
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


# --- replays -------------------------------------------------------------------------------------

Request = dict[str, Any]
Replay = Callable[[Ctx, Request], Awaitable[dict[str, Any]]]
REPLAYS: dict[str, Replay] = {}


def replay(stem: str) -> Callable[[Replay], Replay]:
    def register(fn: Replay) -> Replay:
        REPLAYS[stem] = fn
        return fn

    return register


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
    "rest_v5_account_query_dcp_info",
    "rest_v5_user_query_api",
):
    REPLAYS[_stem] = as_documented


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


@replay("rest_v5_account_transaction_log")
async def _transaction_log(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot (USDT kept), after a spot fill so TRADE rows exist."""
    await ctx.market_buy("BTCUSDT", "0.001")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert answer["result"]["list"], "transaction log: the fill's TRADE rows are missing"
    return answer


@replay("rest_v5_execution_list")
async def _execution_list(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot, after a spot market buy that fills."""
    await ctx.market_buy("BTCUSDT", "0.002")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert answer["result"]["list"], "executions: the fill is missing"
    return answer


@replay("rest_v5_order_realtime")
async def _order_realtime(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Category linear rewritten to spot (ETHUSDT kept), after a resting ETHUSDT limit buy."""
    order_id = await ctx.resting_buy("ETHUSDT", "0.1", "test-000005")
    answer = await ctx.ok("GET", req["path"], query(req, category="spot"))
    assert [o["orderId"] for o in answer["result"]["list"]] == [order_id]
    return answer


@replay("rest_v5_order_history")
async def _order_history(ctx: Ctx, req: Request) -> dict[str, Any]:
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


@replay("rest_v5_order_amend")
async def _order_amend(ctx: Ctx, req: Request) -> dict[str, Any]:
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


@replay("rest_v5_order_cancel")
async def _order_cancel(ctx: Ctx, req: Request) -> dict[str, Any]:
    """Linear BTCPERP rewritten to spot BTCUSDT; the orderId is a freshly created order's; the
    example's JSON null orderLinkId is kept."""
    order_id = await ctx.resting_buy("BTCUSDT", "0.001", "linear-004")
    body = dict(req["body"], category="spot", symbol="BTCUSDT", orderId=order_id)
    return await ctx.ok("POST", req["path"], body)


@replay("rest_v5_order_cancel_all")
async def _order_cancel_all(ctx: Ctx, req: Request) -> dict[str, Any]:
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


# --- examples not replayed -----------------------------------------------------------------------

DERIVATIVES = "derivatives (later issue): "
NOT_REST = "WebSocket message, not a REST call: "
CHECKED = " (its shape is checked by test_pybit_sandbox.py::test_ws_message_structure)"

SKIPS: dict[str, str] = {
    "rest_v5_account_contract_transaction_log": DERIVATIVES
    + "classic / UTA1.0 inverse ledger (deprecated endpoint); inverse is not in the sandbox",
    "rest_v5_account_set_margin_mode": DERIVATIVES + "account margin mode",
    "rest_v5_market_funding_history": DERIVATIVES + "funding (USDC perpetual ETHPERP)",
    "rest_v5_market_instruments_info_linear_prelisting": DERIVATIVES
    + "pre-market (PreLaunch) contracts; the docs give no request for this variant",
    "rest_v5_market_instruments_info_option": DERIVATIVES + "option instruments",
    "rest_v5_market_premium_index_price_kline": DERIVATIVES
    + "premium index of perpetuals (funding); the sandbox does not serve this path yet",
    "rest_v5_market_tickers_option": DERIVATIVES + "option tickers",
    "rest_v5_order_disconnected_cancel_all": DERIVATIVES
    + "DCP window set (institutional accounts only)",
    "rest_v5_position_closed_pnl": DERIVATIVES + "closed P&L of positions",
    "rest_v5_position_list": DERIVATIVES + "positions (inverse example)",
    "rest_v5_position_set_leverage": DERIVATIVES + "leverage",
    "rest_v5_position_switch_mode": DERIVATIVES + "position mode",
    "rest_v5_position_symbol_info": DERIVATIVES + "per-symbol leverage / position mode",
    "rest_v5_position_trading_stop": DERIVATIVES + "position TP/SL",
    "rest_v5_pre_upgrade_execution_list_funding": DERIVATIVES
    + "funding execution of the pre-upgrade (classic) endpoint",
    "ws_auth": NOT_REST + "private stream auth ack",
    "ws_dcp": NOT_REST + "DCP topic subscription (no documented answer)",
    "ws_execution": NOT_REST + "private execution topic" + CHECKED,
    "ws_kline": NOT_REST + "kline topic" + CHECKED,
    "ws_order": NOT_REST + "private order topic" + CHECKED,
    "ws_orderbook_delta": NOT_REST + "orderbook delta" + CHECKED,
    "ws_orderbook_snapshot": NOT_REST + "orderbook snapshot" + CHECKED,
    "ws_ping_private": NOT_REST + "private heartbeat",
    "ws_ping_public_linear": NOT_REST + "linear heartbeat",
    "ws_ping_public_option": NOT_REST + "option heartbeat; " + DERIVATIVES + "option",
    "ws_ping_public_spot": NOT_REST + "spot heartbeat",
    "ws_position": NOT_REST + "position topic; " + DERIVATIVES + "positions",
    "ws_price_limit": NOT_REST + "priceLimit topic" + CHECKED,
    "ws_public_trade": NOT_REST + "publicTrade topic" + CHECKED,
    "ws_subscribe_private": NOT_REST + "private subscribe ack" + CHECKED,
    "ws_subscribe_public_linear": NOT_REST + "linear subscribe ack" + CHECKED,
    "ws_subscribe_public_option": NOT_REST + "option subscribe ack; " + DERIVATIVES + "option",
    "ws_subscribe_public_spot": NOT_REST + "spot subscribe ack" + CHECKED,
    "ws_tickers_linear": NOT_REST + "linear perpetual tickers topic" + CHECKED,
    "ws_tickers_linear_futures": NOT_REST + "dated-futures tickers; " + DERIVATIVES + "futures",
    "ws_tickers_option": NOT_REST + "option tickers; " + DERIVATIVES + "option",
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
    "rest_v5_account_query_dcp_info": {
        ("empty", "result.dcpInfos"): "an account without DCP set up gets an empty list (§8.12); "
        "DCP is enabled by Bybit staff only",
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
    "rest_v5_order_realtime": SPOT_ORDER_VS_LINEAR,
    "rest_v5_order_history": SPOT_ORDER_VS_LINEAR,
}

# Objects whose keys are data (coin names), not field names: only their values are compared.
MAPS = frozenset({"result.list[].cumFeeDetail"})


def test_classification_is_complete(examples_dir: Path) -> None:
    """Every example file is classified, and every classification names an existing file."""
    stems = {p.stem for p in examples_dir.glob("*.json")}
    both = set(REPLAYS) & set(SKIPS)
    assert not both, f"classified twice: {sorted(both)}"
    assert not (set(REPLAYS) | set(SKIPS)) - stems, "classification of a file that is gone"
    assert not set(ALLOW) - set(REPLAYS), "allowances for examples that are not replayed"


@pytest.fixture
def example(example_file: Path) -> dict[str, Any]:
    """The example file's content."""
    content: dict[str, Any] = json.loads(example_file.read_text())
    return content


@pytest.mark.asyncio(loop_scope="module")
async def test_example_structure(example_file: Path, example: dict[str, Any], sb: Sandbox) -> None:
    stem = example_file.stem
    if stem in SKIPS:
        pytest.skip(SKIPS[stem])
    if stem not in REPLAYS:
        pytest.fail(f"{stem}: unclassified example file; add it to REPLAYS or SKIPS")
    creds = sb.create_account()
    async with aiohttp.ClientSession() as http:
        ctx = Ctx(sb, Api(http, sb.rest_url, creds))
        request = dict(example["request"], variants=example.get("request_variants", []))
        answer = await REPLAYS[stem](ctx, request)
    found = problems(example["response"], answer, ALLOW.get(stem), MAPS)
    assert not found, f"{stem}: the sandbox's answer differs from the docs:\n  " + "\n  ".join(
        found
    )
