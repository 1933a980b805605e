"""The sandbox's REST side: Bybit V5 paths, envelope, auth, per-UID rate limits and faults.

Authentication follows REFERENCE §3.5 on the raw bytes received (the query string as sent, the
body as sent; JSON is never re-serialised), with HMAC and RSA keys. Every answer carries the
``X-Bapi-Limit*`` headers of its endpoint. Business errors are HTTP 200 with a ``retCode``; an
unknown path gets Bybit's envelope with ``10017`` and HTTP 404, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from bybitkit.money import fmt
from bybitkit.sandbox.accounts import Account, ApiKey
from bybitkit.sandbox.exchange import Exchange, SandboxError, _limit, normalize_symbol, now_ms
from bybitkit.sandbox.instruments import instrument_info
from bybitkit.v5.ratelimit import RateLimiter

if TYPE_CHECKING:
    from bybitkit.sandbox.app import Sandbox

log = logging.getLogger(__name__)

Handler = Callable[["Call"], Awaitable[Any] | Any]

_limits = RateLimiter()
ORDER_CREATES = ("/v5/order/create", "/v5/order/create-batch")
WRITE_PERMISSION = frozenset(
    {
        "/v5/order/create",
        "/v5/order/amend",
        "/v5/order/cancel",
        "/v5/order/cancel-all",
        "/v5/order/create-batch",
        "/v5/order/amend-batch",
        "/v5/order/cancel-batch",
        "/v5/order/disconnected-cancel-all",
        "/v5/position/set-leverage",
        "/v5/position/switch-mode",
        "/v5/position/trading-stop",
        "/v5/account/set-margin-mode",
        "/v5/account/set-limit-px-action",
    }
)


def envelope(result: Any = None, code: int = 0, msg: str = "OK", ext: Any = None) -> bytes:
    return json.dumps(
        {
            "retCode": code,
            "retMsg": msg,
            "result": {} if result is None else result,
            "retExtInfo": {} if ext is None else ext,
            "time": now_ms(),
        },
        separators=(",", ":"),
    ).encode()


@dataclass
class Call:
    """One REST call as the handlers see it."""

    request: web.Request | None
    path: str
    params: dict[str, Any]
    account: Account | None
    key: ApiKey | None

    @property
    def acct(self) -> Account:
        assert self.account is not None
        return self.account


class UidLimits:
    """Bybit's per-UID, per-endpoint rolling one-second windows, answered in X-Bapi headers."""

    def __init__(self) -> None:
        self.windows: dict[tuple[int, str, str], deque[float]] = defaultdict(deque)

    def check(
        self, uid: int, path: str, category: str | None, weight: int = 1
    ) -> tuple[int, int, int, int]:
        """Count ``weight`` units; returns (limit, remaining, reset_ms, admitted units)."""
        key = _limits.key(path, category)
        limit = _limits.limit_for(key)
        if limit is None:
            return 0, 0, 0, weight
        window = self.windows[(uid, key.path, key.group)]
        t = time.monotonic()
        while window and window[0] <= t - 1.0:
            window.popleft()
        admitted = max(0, min(weight, limit - len(window)))
        window.extend([t] * admitted)
        remaining = limit - len(window)
        reset_in = (window[0] + 1.0 - t) if window else 0.0
        return limit, remaining, now_ms() + int(reset_in * 1000), admitted


class RestApi:
    """Routes ``/v5/...`` requests to the exchange."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.ex: Exchange = sandbox.exchange
        self.uid_limits = UidLimits()
        self.routes: dict[tuple[str, str], tuple[Handler, bool]] = {}
        r = self._route
        # market (public)
        r("GET", "/v5/market/time", self.server_time, auth=False)
        r("GET", "/v5/market/instruments-info", self.instruments_info, auth=False)
        r("GET", "/v5/market/orderbook", self.orderbook, auth=False)
        r("GET", "/v5/market/tickers", self.tickers, auth=False)
        r("GET", "/v5/market/kline", self.kline, auth=False)
        r("GET", "/v5/market/mark-price-kline", self.mark_kline, auth=False)
        r("GET", "/v5/market/index-price-kline", self.index_kline, auth=False)
        r("GET", "/v5/market/recent-trade", self.recent_trade, auth=False)
        r("GET", "/v5/market/price-limit", self.price_limit, auth=False)
        r("GET", "/v5/market/funding/history", self.funding_history, auth=False)
        # trade
        r("POST", "/v5/order/create", self.order_create)
        r("POST", "/v5/order/amend", self.order_amend)
        r("POST", "/v5/order/cancel", self.order_cancel)
        r("POST", "/v5/order/cancel-all", self.order_cancel_all)
        r("POST", "/v5/order/create-batch", self.batch_create)
        r("POST", "/v5/order/amend-batch", self.batch_amend)
        r("POST", "/v5/order/cancel-batch", self.batch_cancel)
        r("POST", "/v5/order/disconnected-cancel-all", self.set_dcp)
        r("GET", "/v5/order/realtime", self.order_realtime)
        r("GET", "/v5/order/history", self.order_history)
        r("GET", "/v5/execution/list", self.execution_list)
        # account
        r("GET", "/v5/account/wallet-balance", self.wallet_balance)
        r("GET", "/v5/account/fee-rate", self.fee_rate)
        r("GET", "/v5/account/info", self.account_info)
        r("GET", "/v5/account/transaction-log", self.transaction_log)
        r("GET", "/v5/account/user-setting-config", self.user_setting_config)
        r("POST", "/v5/account/set-limit-px-action", self.set_limit_px_action)
        r("POST", "/v5/account/demo-apply-money", self.demo_apply_money)
        r("GET", "/v5/account/query-dcp-info", self.query_dcp_info)
        r("GET", "/v5/user/query-api", self.query_api)
        # positions (linear)
        d = self.ex.deriv
        r("GET", "/v5/position/list", lambda c: d.position_list(c.acct, c.params))
        r("GET", "/v5/position/symbol-info", lambda c: d.symbol_info(c.acct, c.params))
        r("POST", "/v5/position/set-leverage", self.set_leverage)
        r("POST", "/v5/position/switch-mode", lambda c: d.switch_mode(c.acct, c.params))
        r("POST", "/v5/position/trading-stop", self.trading_stop)
        r("GET", "/v5/position/closed-pnl", lambda c: d.closed_pnl(c.acct, c.params))
        r("POST", "/v5/account/set-margin-mode", self.set_margin_mode)

    def _route(self, method: str, path: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes[(method, path)] = (handler, auth)

    # -- the entry point ------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        raw_body = await request.read()
        faults = self.sb.faults
        fault = faults.next_rest_error(path) if path.startswith("/v5/") else None
        if fault == "403":
            return web.Response(status=403, text="access too frequent")
        if fault == "5xx":
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        route = self.routes.get((method, path))
        if route is None:
            known_path = any(p == path for _, p in self.routes)
            status = 405 if known_path else 404
            return _json(envelope(code=10017, msg=f"Route not found: {method} {path}"), status)
        handler, needs_auth = route
        try:
            params = self._params(request, method, raw_body)
        except SandboxError as err:
            return _json(envelope(code=err.code, msg=err.msg))
        headers: dict[str, str] = {}
        account: Account | None = None
        key: ApiKey | None = None
        try:
            if fault == "10002":
                raise SandboxError(10002, _timestamp_msg(now_ms(), now_ms(), 5000))
            if needs_auth:
                account, key = self._authenticate(request, method, raw_body, path)
                category = params.get("category") if isinstance(params, dict) else None
                weight = 1
                if path.endswith("-batch"):
                    items = params.get("request")
                    cap = 10 if category == "spot" else 20
                    if not isinstance(items, list) or not 1 <= len(items) <= cap:
                        raise SandboxError(
                            10001, f"params error: request must hold 1 to {cap} orders"
                        )
                    weight = len(items)
                limit, remaining, reset_ms, admitted = self.uid_limits.check(
                    account.uid, path, category, max(1, weight)
                )
                if limit:
                    headers = {
                        "X-Bapi-Limit": str(limit),
                        "X-Bapi-Limit-Status": str(remaining),
                        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
                    }
                if fault == "10006" or (limit and admitted == 0):
                    raise SandboxError(10006, "Too many visits. Exceeded the API Rate Limit.")
                params["_admitted"] = admitted
            elif fault == "10006":
                raise SandboxError(10006, "Too many visits. Exceeded the API Rate Limit.")
            call = Call(request, path, params, account, key)
            result = handler(call)
            if asyncio.iscoroutine(result):
                result = await result
            ext = None
            if isinstance(result, tuple):
                result, ext = result
            body = envelope(result, ext=ext)
        except SandboxError as err:
            body = envelope(err.result, code=err.code, msg=err.msg)
        except Exception:
            log.exception("sandbox handler failed path=%s", path)
            body = envelope(code=10016, msg="Internal server error.")
        if path in ORDER_CREATES and faults.take_drop_create():
            # The truly ambiguous case: the order exists, the answer never arrives.
            log.info("fault: dropping the answer of %s", path)
            self.ex.flush()
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        delay = faults.take_delay(path)
        if delay:
            await asyncio.sleep(delay)
        resp = web.Response(body=body, content_type="application/json", headers=headers)
        await resp.prepare(request)
        await resp.write_eof()
        # Acknowledgement first, stream updates after (as Bybit).
        self.ex.flush()
        return resp

    def _params(self, request: web.Request, method: str, raw_body: bytes) -> dict[str, Any]:
        if method == "GET":
            if raw_body.strip():
                raise SandboxError(10001, "params error: a GET request must not carry a body")
            return dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if not raw_body.strip():
            return {}
        try:
            data = json.loads(raw_body)
        except (ValueError, RecursionError):  # RecursionError: hostile nesting depth
            raise SandboxError(10001, "params error: the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise SandboxError(10001, "params error: the body must be a JSON object")
        # Doc examples send explicit nulls for unused fields: treat null as absent.
        return {k: v for k, v in data.items() if v is not None}

    def _authenticate(
        self, request: web.Request, method: str, raw_body: bytes, path: str
    ) -> tuple[Account, ApiKey]:
        h = request.headers
        api_key = h.get("X-BAPI-API-KEY")
        sign = h.get("X-BAPI-SIGN")
        ts_text = h.get("X-BAPI-TIMESTAMP")
        if not api_key or not sign or not ts_text:
            raise SandboxError(10003, "API key is invalid: auth headers missing.")
        entry = self.ex.keys.get(api_key)
        if entry is None:
            raise SandboxError(10003, "API key is invalid.")
        account, key = entry
        rw_text = h.get("X-BAPI-RECV-WINDOW")
        try:
            ts = int(ts_text)
            rw = int(rw_text) if rw_text else 5000
        except ValueError:
            raise SandboxError(10001, "params error: X-BAPI-TIMESTAMP must be ms") from None
        server = now_ms()
        if not server - rw <= ts < server + 1000:
            raise SandboxError(10002, _timestamp_msg(ts, server, rw))
        payload = request.rel_url.raw_query_string.encode() if method == "GET" else raw_body
        message = ts_text.encode() + api_key.encode() + (rw_text or "").encode() + payload
        if not key.verify(message, sign):
            raise SandboxError(
                10004, "error sign! Please check your signature generation algorithm."
            )
        if key.expires_at_ms is not None and server >= key.expires_at_ms:
            raise SandboxError(33004, "Your api key has expired.")
        if "*" not in key.ips:
            ip = request.remote or ""
            if ip not in key.ips:
                raise SandboxError(
                    10010, f"Unmatched IP, please check your API key's bound IP addresses. {ip}"
                )
        if path in WRITE_PERMISSION and (key.read_only or not key.can_trade):
            raise SandboxError(10005, "Permission denied, please check your API key permissions.")
        return account, key

    # -- market ---------------------------------------------------------------------------------

    def server_time(self, call: Call) -> Any:
        ns = time.time_ns()
        return {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}

    def _category(self, call: Call, default: str | None = None) -> str:
        category = call.params.get("category") or default
        if not category:
            raise SandboxError(10001, "params error: category is required")
        if category not in ("spot", "linear", "inverse", "option"):
            raise SandboxError(10001, f"params error: category {category} is invalid")
        return str(category)

    def _markets(self, category: str, symbol: str | None) -> list[Any]:
        found = [
            m
            for (cat, sym), m in self.ex.markets.items()
            if cat == category and (not symbol or sym == normalize_symbol(symbol))
        ]
        if symbol and not found:
            raise SandboxError(10001, f"params error: symbol invalid: {symbol}")
        return found

    def instruments_info(self, call: Call) -> Any:
        category = self._category(call)
        status = call.params.get("status")
        symbol = call.params.get("symbol")
        items = []
        if status in (None, "", "Trading"):
            base = call.params.get("baseCoin")
            items = [
                instrument_info(m.inst)
                for m in self._markets_lenient(category, symbol)
                if not base or m.inst.base_coin == base
            ]
        result: dict[str, Any] = {"category": category, "list": items}
        if category != "spot":
            result["nextPageCursor"] = ""
        return result

    def _markets_lenient(self, category: str, symbol: str | None) -> list[Any]:
        return [
            m
            for (cat, sym), m in self.ex.markets.items()
            if cat == category and (not symbol or sym == normalize_symbol(symbol))
        ]

    def orderbook(self, call: Call) -> Any:
        category = self._category(call)
        symbol = call.params.get("symbol")
        if not symbol:
            raise SandboxError(10001, "params error: symbol is required")
        market = self.ex.market(category, symbol)
        default = 1 if category == "spot" else 25
        limit = _limit(call.params, default, 1000)
        inst = market.inst
        from bybitkit.matching import Side

        stream = self.sb.streams.book_stream(market, 1000)
        if not stream.subscribers:
            stream.tick(time.monotonic())  # nobody follows it: bring its u up to date
        return {
            "s": inst.symbol,
            "b": [
                [inst.price_str(p), inst.qty_str(q)] for p, q in market.book.levels(Side.BUY, limit)
            ],
            "a": [
                [inst.price_str(p), inst.qty_str(q)]
                for p, q in market.book.levels(Side.SELL, limit)
            ],
            "ts": now_ms(),
            "u": stream.u,
            "seq": market.cross_seq,
            "cts": now_ms(),
        }

    def tickers(self, call: Call) -> Any:
        category = self._category(call)
        markets = self._markets(category, call.params.get("symbol"))
        return {
            "category": category,
            "list": [self.sb.streams.ticker(m, rest=True) for m in markets],
        }

    def _kline_params(self, call: Call) -> tuple[Any, str, int | None, int | None, int]:
        category = self._category(call, default="linear")
        symbol = call.params.get("symbol")
        if not symbol:
            raise SandboxError(10001, "params error: symbol is required")
        market = self.ex.market(category, symbol)
        interval = str(call.params.get("interval") or "")
        if interval not in (
            "1",
            "3",
            "5",
            "15",
            "30",
            "60",
            "120",
            "240",
            "360",
            "720",
            "D",
            "W",
            "M",
        ):
            raise SandboxError(10001, f"params error: interval invalid: {interval}")
        start = _opt_int(call.params, "start")
        end = _opt_int(call.params, "end")
        limit = _limit(call.params, 200, 1000)
        return market, interval, start, end, limit

    def kline(self, call: Call) -> Any:
        market, interval, start, end, limit = self._kline_params(call)
        return {
            "category": market.inst.category,
            "symbol": market.inst.symbol,
            "list": market.klines.rows(interval, start, end, limit, now_ms=now_ms()),
        }

    def mark_kline(self, call: Call) -> Any:
        market, interval, start, end, limit = self._kline_params(call)
        if market.inst.category == "spot":
            raise SandboxError(10001, "params error: mark price klines exist for derivatives only")
        return {
            "category": market.inst.category,
            "symbol": market.inst.symbol,
            "list": market.mark_klines.price_rows(interval, start, end, limit, now_ms=now_ms()),
        }

    def index_kline(self, call: Call) -> Any:
        market, interval, start, end, limit = self._kline_params(call)
        if market.inst.category == "spot":
            raise SandboxError(10001, "params error: index price klines exist for derivatives only")
        return {
            "category": market.inst.category,
            "symbol": market.inst.symbol,
            "list": market.index_klines.price_rows(interval, start, end, limit, now_ms=now_ms()),
        }

    def recent_trade(self, call: Call) -> Any:
        category = self._category(call)
        symbol = call.params.get("symbol")
        if not symbol:
            raise SandboxError(10001, "params error: symbol is required")
        market = self.ex.market(category, symbol)
        limit = _limit(
            call.params, 60 if category == "spot" else 500, 60 if category == "spot" else 1000
        )
        trades = list(market.trades)[-limit:]
        trades.reverse()
        return {
            "category": category,
            "list": [
                {
                    "execId": t["i"],
                    "symbol": t["s"],
                    "price": t["p"],
                    "size": t["v"],
                    "side": t["S"],
                    "time": str(t["T"]),
                    "isBlockTrade": False,
                    "isRPITrade": False,
                    "seq": str(t["seq"]),
                }
                for t in trades
            ],
        }

    def price_limit(self, call: Call) -> Any:
        category = self._category(call, default="linear")
        symbol = call.params.get("symbol")
        if not symbol:
            raise SandboxError(10001, "params error: symbol is required")
        market = self.ex.market(category, symbol)
        buy, sell = market.band()
        inst = market.inst
        return {
            "symbol": inst.symbol,
            "buyLmt": inst.price_str(inst.to_ticks(buy)),
            "sellLmt": inst.price_str(inst.to_ticks(sell)),
            "ts": str(now_ms()),
        }

    def funding_history(self, call: Call) -> Any:
        category = self._category(call)
        if category not in ("linear", "inverse"):
            raise SandboxError(10001, "params error: category must be linear or inverse")
        symbol = call.params.get("symbol")
        if not symbol:
            raise SandboxError(10001, "params error: symbol is required")
        if call.params.get("startTime") and not call.params.get("endTime"):
            raise SandboxError(10001, "params error: endTime is required with startTime")
        market = self.ex.market(category, symbol)
        limit = _limit(call.params, 200, 200)
        end = _opt_int(call.params, "endTime")
        start = _opt_int(call.params, "startTime")
        rows = [
            (t, rate)
            for t, rate in self.ex.deriv.funding_history.get(market.inst.symbol, [])
            if (end is None or t <= end) and (start is None or t >= start)
        ]
        rows = rows[-limit:]
        rows.reverse()
        return {
            "category": category,
            "list": [
                {"symbol": market.inst.symbol, "fundingRate": fmt(rate),
                 "fundingRateTimestamp": str(t)}
                for t, rate in rows
            ],
        }  # fmt: skip

    # -- positions ------------------------------------------------------------------------------

    def set_leverage(self, call: Call) -> Any:
        if call.params.get("category") != "linear":
            raise SandboxError(10001, "params error: category must be linear")
        return self.ex.deriv.set_leverage(call.acct, call.params)

    def trading_stop(self, call: Call) -> Any:
        if call.params.get("category") != "linear":
            raise SandboxError(10001, "params error: category must be linear")
        return self.ex.deriv.trading_stop(call.acct, call.params)

    def set_margin_mode(self, call: Call) -> Any:
        mode = call.params.get("setMarginMode")
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            raise SandboxError(10001, "params error: setMarginMode is invalid")
        if mode == call.acct.margin_mode:
            raise SandboxError(110026, "Cross/isolated margin mode is not modified")
        # Only the default cross mode is simulated: answer as Bybit answers a refused switch.
        reason = f"{mode} is not simulated by this sandbox; REGULAR_MARGIN (cross) only"
        raise SandboxError(
            3400045,
            "Set margin mode failed",
            result={"reasons": [{"reasonCode": "3400000", "reasonMsg": reason}]},
        )

    # -- trade ----------------------------------------------------------------------------------

    def order_create(self, call: Call) -> Any:
        return self.ex.create_order(call.acct, call.params)

    def order_amend(self, call: Call) -> Any:
        return self.ex.amend_order(call.acct, call.params)

    def order_cancel(self, call: Call) -> Any:
        return self.ex.cancel_order(call.acct, call.params)

    def order_cancel_all(self, call: Call) -> Any:
        return self.ex.cancel_all(call.acct, call.params)

    def _batch(self, call: Call, op: Callable[[Account, dict[str, Any]], Any]) -> Any:
        category = call.params.get("category")
        if not category:
            raise SandboxError(10001, "params error: category is required")
        items = call.params.get("request")
        if not isinstance(items, list) or not items:
            raise SandboxError(10001, "params error: request must be a non-empty list")
        cap = 10 if category == "spot" else 20
        if len(items) > cap:
            raise SandboxError(
                10001, f"params error: at most {cap} orders in a batch for {category}"
            )
        admitted = int(call.params.get("_admitted", len(items)))
        results: list[dict[str, Any]] = []
        codes: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            entry: dict[str, Any] = {
                "category": category,
                "symbol": "",
                "orderId": "",
                "orderLinkId": "",
            }
            if not isinstance(item, dict):
                results.append(entry)
                codes.append({"code": 10001, "msg": "params error: each item must be an object"})
                continue
            entry["symbol"] = str(item.get("symbol", ""))
            entry["orderLinkId"] = str(item.get("orderLinkId", "") or "")
            if i >= admitted:
                results.append(entry)
                codes.append(
                    {"code": 10006, "msg": "Too many visits. Exceeded the API Rate Limit."}
                )
                continue
            try:
                res = op(
                    call.acct,
                    {**{k: v for k, v in item.items() if v is not None}, "category": category},
                )
                entry.update(res)
                codes.append({"code": 0, "msg": "OK"})
            except SandboxError as err:
                codes.append({"code": err.code, "msg": err.msg})
            results.append(entry)
        return results, codes

    def batch_create(self, call: Call) -> Any:
        results, codes = self._batch(call, self.ex.create_order)
        for r in results:
            r["createAt"] = str(now_ms()) if r["orderId"] else ""
        return {"list": results}, {"list": codes}

    def batch_amend(self, call: Call) -> Any:
        results, codes = self._batch(call, self.ex.amend_order)
        return {"list": results}, {"list": codes}

    def batch_cancel(self, call: Call) -> Any:
        results, codes = self._batch(call, self.ex.cancel_order)
        return {"list": results}, {"list": codes}

    def order_realtime(self, call: Call) -> Any:
        return self.ex.list_orders(call.acct, call.params, history=False)

    def order_history(self, call: Call) -> Any:
        return self.ex.list_orders(call.acct, call.params, history=True)

    def execution_list(self, call: Call) -> Any:
        return self.ex.list_executions(call.acct, call.params)

    # -- account --------------------------------------------------------------------------------

    def wallet_balance(self, call: Call) -> Any:
        account_type = call.params.get("accountType")
        if account_type != "UNIFIED":
            raise SandboxError(10001, "params error: accountType must be UNIFIED")
        coin = call.params.get("coin")
        coins = [c.strip() for c in str(coin).split(",") if c.strip()] if coin else None
        return {"list": [self.ex.wallet(call.acct, coins)]}

    def fee_rate(self, call: Call) -> Any:
        category = self._category(call)
        symbol = call.params.get("symbol")
        maker, taker = call.acct.fee_rates(category)
        markets = self._markets(category, symbol)
        items = []
        for m in markets:
            item = {"symbol": m.inst.symbol, "takerFeeRate": fmt(taker), "makerFeeRate": fmt(maker)}
            items.append(item)
        result: dict[str, Any] = {"list": items}
        if category == "spot":
            result["category"] = category
        return result

    def account_info(self, call: Call) -> Any:
        acct = call.acct
        return {
            "unifiedMarginStatus": 5,
            "marginMode": acct.margin_mode,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
            "updatedTime": str(acct.updated_ms),
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
        }

    def transaction_log(self, call: Call) -> Any:
        account_type = call.params.get("accountType")
        if account_type not in (None, "", "UNIFIED"):
            raise SandboxError(10001, "params error: accountType must be UNIFIED")
        return self.ex.transaction_log(call.acct, call.params)

    def user_setting_config(self, call: Call) -> Any:
        return {
            "lpaSpot": call.acct.lpa_spot,
            "lpaPerp": call.acct.lpa_perp,
            "deltaEnable": False,
            "smsef": False,
            "fmsef": False,
        }

    def set_limit_px_action(self, call: Call) -> Any:
        category = call.params.get("category")
        enable = call.params.get("modifyEnable")
        if category not in ("spot", "linear", "inverse") or not isinstance(enable, bool):
            raise SandboxError(10001, "params error: category and modifyEnable (bool) are required")
        if category == "spot":
            call.acct.lpa_spot = enable
        else:
            call.acct.lpa_perp = not enable
        return {}

    def demo_apply_money(self, call: Call) -> Any:
        adjust = call.params.get("adjustType", 0)
        items = call.params.get("utaDemoApplyMoney")
        if adjust not in (0, 1) or not isinstance(items, list) or not items:
            raise SandboxError(10001, "params error: adjustType 0|1 and utaDemoApplyMoney required")
        caps = {
            "BTC": Decimal("15"),
            "ETH": Decimal("200"),
            "USDT": Decimal("100000"),
            "USDC": Decimal("100000"),
        }
        for item in items:
            coin = item.get("coin") if isinstance(item, dict) else None
            amount_text = item.get("amountStr") if isinstance(item, dict) else None
            if coin not in caps:
                raise SandboxError(10001, f"params error: coin must be one of {', '.join(caps)}")
            try:
                amount = Decimal(str(amount_text))
            except ArithmeticError:
                raise SandboxError(10001, "params error: amountStr must be a decimal") from None
            if not 0 < amount <= caps[coin]:
                raise SandboxError(
                    10001, f"params error: amountStr for {coin} must be in (0, {caps[coin]}]"
                )
            self.ex.top_up(call.acct, coin, -amount if adjust == 1 else amount)
        return {}

    def set_dcp(self, call: Call) -> Any:
        """DCP window (§8.12): ``{product?, timeWindow}``; an ack without result fields."""
        return self.sb.dcp.set_window(call.acct, call.params)

    def query_dcp_info(self, call: Call) -> Any:
        """Only the products whose DCP is enabled (an account without DCP: an empty list)."""
        return {"dcpInfos": self.sb.dcp.infos(call.acct)}

    def query_api(self, call: Call) -> Any:
        key = call.key
        assert key is not None
        trade: list[str] | None = [] if key.read_only or not key.can_trade else None
        created = _iso(key.created_ms)
        # REFERENCE §10.7: an unbound key lives 90 days; an IP-bound one shows no deadline
        # (-2, epoch) unless the sandbox was told when it expires.
        if key.expires_at_ms is not None:
            expires_ms: int | None = key.expires_at_ms
        elif "*" in key.ips:
            expires_ms = key.created_ms + 90 * 86_400_000
        else:
            expires_ms = None
        if expires_ms is None:
            expired_at, deadline = "1970-01-01T00:00:00Z", -2
        else:
            expired_at = _iso(expires_ms)
            deadline = max(0, (expires_ms - now_ms()) // 86_400_000)
        wallet = ["AccountTransfer", "SubMemberTransfer"]
        if key.can_withdraw and not key.read_only:
            wallet.append("Withdraw")
        return {
            "id": str(abs(hash(key.key)) % 10**8),
            "note": key.note,
            "apiKey": key.key,
            "readOnly": 1 if key.read_only else 0,
            "secret": "",
            "permissions": {
                "ContractTrade": trade if trade is not None else ["Order", "Position"],
                "Spot": trade if trade is not None else ["SpotTrade"],
                "Wallet": wallet,
                "Options": trade if trade is not None else ["OptionsTrade"],
                "Derivatives": trade if trade is not None else ["DerivativesTrade"],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": ["ExchangeHistory"],
                "NFT": [],
                "Affiliate": [],
                "Earn": [],
                "FiatP2P": [],
                "FiatBitPay": [],
                "FiatConvertBroker": [],
                "BitCard": [],
                "ByXPost": [],
            },
            "ips": list(key.ips),
            "type": 1,
            "deadlineDay": deadline,
            "expiredAt": expired_at,
            "createdAt": created,
            "unified": 0,
            "uta": 1,
            "userID": call.acct.uid,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": key.public_pem or "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _timestamp_msg(ts: int, server: int, rw: int) -> str:
    return (
        "invalid request, please check your server timestamp or recv_window param. "
        f"req_timestamp[{ts}],server_timestamp[{server}],recv_window[{rw}]"
    )


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SandboxError(10001, f"params error: {name} must be an integer (ms)") from None
