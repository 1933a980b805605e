"""The sandbox's admin REST, under ``/sandbox/`` (clearly not Bybit's): controls and faults for
bots running in another process. Plain JSON in and out; errors are HTTP 400 with ``{"error"}``.

=======================================  =====================================================
``POST /sandbox/accounts``               ``{"balances"?, "key_type"?, "read_only"?, "ips"?,
                                         "expires_at_ms"?, "can_trade"?, "can_withdraw"?}``
                                         -> credentials
``GET  /sandbox/accounts/{api_key}``     balances, orders and executions of that account
``POST /sandbox/fees``                   ``{"api_key", "category", "maker", "taker"}``
``POST /sandbox/dcp``                    ``{"api_key", "products"?}``: enable DCP (default: all
                                         of SPOT, DERIVATIVES, OPTIONS)
``GET  /sandbox/dcp/{api_key}``          the account's DCP state per product
``POST /sandbox/freeze`` / ``resume``    stop / restart the random market
``POST /sandbox/ws-idle-timeout``        ``{"seconds"}``: cut WS connections silent that long
``POST /sandbox/move-mid``               ``{"symbol", "price", "duration"?, "category"?}``
``POST /sandbox/trade``                  ``{"symbol", "side", "qty", "price"?, "category"?}``
``GET  /sandbox/book``                   ``?symbol=&category=&depth=`` -> the sandbox's book
``POST /sandbox/funding-rate``           ``{"symbol", "rate"}`` (linear)
``POST /sandbox/settle-funding``         ``{"symbol"}``: settle one funding round now
``POST /sandbox/faults/drop-ws``         close every WebSocket connection
``POST /sandbox/faults/drop-private-ws`` ``{"api_key"?, "refuse_for"?}``: close private
                                         connections, refuse new ones for N s
``POST /sandbox/faults/pause-pushes``    ``{"seconds"}``
``POST /sandbox/faults/book-gap``        ``{"symbol", "category"?}``: skip one update id
``POST /sandbox/faults/book-reset``      ``{"symbol", "category"?}``: restart at ``u = 1``
``POST /sandbox/faults/rest-errors``     ``{"kind": "10002"|"10006"|"403"|"5xx", "count"?,
                                         "path"?}``
``POST /sandbox/faults/delay``           ``{"seconds", "count"?, "path"?}``
``POST /sandbox/faults/drop-next-create`` execute the next create, drop its answer
``POST /sandbox/faults/drop-private-after-fill``
=======================================  =====================================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bybitkit.errors import BybitkitError
from bybitkit.money import fmt

if TYPE_CHECKING:
    from bybitkit.sandbox.app import Sandbox


def _dec(value: Any) -> Any:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        return {k: _dec(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dec(v) for v in value]
    return value


def _ips(value: Any) -> tuple[str, ...]:
    """``"ips"`` of an account request: a list of addresses (or one address as a string)."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError('ips: expected a list of IP addresses (or ["*"])')
    return tuple(value)


def add_admin_routes(app: web.Application, sb: Sandbox) -> None:
    def route(method: str, path: str, fn: Callable[[dict[str, Any], web.Request], Any]) -> None:
        async def handler(request: web.Request) -> web.Response:
            try:
                body: dict[str, Any] = {}
                if request.method == "POST" and request.can_read_body:
                    raw = await request.read()
                    if raw.strip():
                        body = json.loads(raw)
                        if not isinstance(body, dict):
                            raise ValueError("the body must be a JSON object")
                result = fn(body, request)
                if isinstance(result, Awaitable):
                    result = await result
                sb.exchange.flush()
                return web.json_response(_dec(result if result is not None else {"ok": True}))
            except RecursionError:  # json.loads of a hostile nesting depth
                return web.json_response({"error": "the body is nested too deeply"}, status=400)
            except (BybitkitError, ValueError, KeyError, TypeError) as err:
                return web.json_response({"error": f"{type(err).__name__}: {err}"}, status=400)

        app.router.add_route(method, f"/sandbox/{path}", handler)

    def need(body: dict[str, Any], name: str) -> Any:
        if name not in body:
            raise KeyError(f"{name} is required")
        return body[name]

    def create_account(b: dict[str, Any], _: web.Request) -> Any:
        creds = sb.create_account(
            b.get("balances"),
            b.get("key_type", "hmac"),
            read_only=bool(b.get("read_only", False)),
            ips=_ips(b.get("ips", ("*",))),
            expires_at_ms=b.get("expires_at_ms"),
            can_trade=bool(b.get("can_trade", True)),
            can_withdraw=bool(b.get("can_withdraw", False)),
        )
        return {"api_key": creds.api_key, "api_secret": creds.api_secret}

    def account(_: dict[str, Any], request: web.Request) -> Any:
        key = request.match_info["api_key"]
        return {
            "balances": sb.balances(key),
            "orders": sb.orders(key),
            "executions": sb.executions(key),
            "positions": sb.positions(key),
        }

    def book(_: dict[str, Any], request: web.Request) -> Any:
        q = request.query
        return sb.book(q["symbol"], q.get("category", "spot"), int(q.get("depth", "50")))

    route("POST", "accounts", create_account)
    route(
        "POST",
        "fees",
        lambda b, r: sb.set_fee_rates(
            need(b, "api_key"), need(b, "category"), str(need(b, "maker")), str(need(b, "taker"))
        ),
    )
    route("GET", "accounts/{api_key}", account)

    def enable_dcp(b: dict[str, Any], _: web.Request) -> Any:
        products = b.get("products")
        if products is None:
            sb.enable_dcp(need(b, "api_key"))
        elif isinstance(products, str | list):
            sb.enable_dcp(need(b, "api_key"), products)
        else:
            raise ValueError("products: expected a list of SPOT, DERIVATIVES, OPTIONS")

    route("POST", "dcp", enable_dcp)
    route("GET", "dcp/{api_key}", lambda b, r: sb.dcp_status(r.match_info["api_key"]))
    route("POST", "freeze", lambda b, r: sb.freeze())
    route(
        "POST",
        "ws-idle-timeout",
        lambda b, r: sb.set_ws_idle_timeout(float(need(b, "seconds"))),
    )
    route("POST", "resume", lambda b, r: sb.resume())
    route(
        "POST",
        "move-mid",
        lambda b, r: sb.move_mid(
            need(b, "symbol"),
            str(need(b, "price")),
            float(b.get("duration", 0)),
            category=b.get("category", "spot"),
        ),
    )
    route(
        "POST",
        "trade",
        lambda b, r: sb.inject_trade(
            need(b, "symbol"),
            need(b, "side"),
            str(need(b, "qty")),
            str(b["price"]) if b.get("price") is not None else None,
            category=b.get("category", "spot"),
        ),
    )
    route("GET", "book", book)
    route(
        "POST",
        "funding-rate",
        lambda b, r: sb.set_funding_rate(need(b, "symbol"), str(need(b, "rate"))),
    )
    route("POST", "settle-funding", lambda b, r: {"settled": sb.settle_funding(need(b, "symbol"))})
    route("POST", "faults/drop-ws", lambda b, r: sb.drop_ws())
    route(
        "POST",
        "faults/drop-private-ws",
        lambda b, r: {
            "dropped": sb.drop_private_ws(
                b.get("api_key"), refuse_for=float(b.get("refuse_for", 0))
            )
        },
    )
    route("POST", "faults/pause-pushes", lambda b, r: sb.pause_pushes(float(need(b, "seconds"))))
    route(
        "POST",
        "faults/book-gap",
        lambda b, r: sb.book_gap(need(b, "symbol"), b.get("category", "spot")),
    )
    route(
        "POST",
        "faults/book-reset",
        lambda b, r: sb.book_reset(need(b, "symbol"), b.get("category", "spot")),
    )
    route(
        "POST",
        "faults/rest-errors",
        lambda b, r: sb.rest_errors(str(need(b, "kind")), int(b.get("count", 1)), b.get("path")),
    )
    route(
        "POST",
        "faults/delay",
        lambda b, r: sb.delay_responses(
            float(need(b, "seconds")),
            int(b["count"]) if b.get("count") is not None else None,
            b.get("path"),
        ),
    )
    route("POST", "faults/drop-next-create", lambda b, r: sb.drop_next_create())
    route("POST", "faults/drop-private-after-fill", lambda b, r: sb.drop_private_after_fill())
