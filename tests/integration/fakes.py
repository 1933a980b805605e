"""Small Bybit look-alike servers for wire-layer tests, on 127.0.0.1 with real sockets.

They check signatures with the standard library (not with bybitkit's own signer), keep what they
received, and let each test script the answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API_KEY = "TESTKEY0001"
API_SECRET = "test-secret-abcdef"
DROP = {"__drop__": True}  # a trade handler's answer that closes the connection instead


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def envelope(result: Any = None, code: int = 0, msg: str = "OK", ext: Any = None) -> dict:
    return {
        "retCode": code,
        "retMsg": msg,
        "result": {} if result is None else result,
        "retExtInfo": {} if ext is None else ext,
        "time": now_ms(),
    }


@dataclass
class Seen:
    method: str
    path: str
    raw_query: str
    body: bytes
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


Handler = Callable[[web.Request, Seen], Awaitable[web.StreamResponse | None]]


class FakeRest:
    """A REST server that signs nothing itself but verifies everything it receives."""

    def __init__(self, clock_offset_ms: int = 0) -> None:
        self.clock_offset_ms = clock_offset_ms
        self.seen: list[Seen] = []
        self.bad_signatures = 0
        self.scripts: dict[str, deque[Handler]] = defaultdict(deque)
        self.rolling: dict[str, deque[float]] = defaultdict(deque)
        self.limits: dict[str, int] = {}
        self.rate_limited = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    def server_ms(self) -> int:
        return now_ms() + self.clock_offset_ms

    def script(self, path: str, *handlers: Handler) -> None:
        """Answer the next calls to ``path`` with these handlers, in order."""
        self.scripts[path].extend(handlers)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(
            request.method,
            request.path,
            request.rel_url.raw_query_string,
            body,
            dict(request.headers),
        )
        self.seen.append(seen)
        script = self.scripts.get(request.path)
        if script:
            resp = await script.popleft()(request, seen)
            if resp is not None:
                return resp
        if request.path == "/v5/market/time":
            ms = self.server_ms()
            return web.json_response(
                envelope({"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)})
            )
        if "X-BAPI-API-KEY" in request.headers:
            err = self.check_auth(seen)
            if err is not None:
                return web.json_response(envelope(code=err[0], msg=err[1]))
        limit = self.limits.get(request.path)
        if limit is not None:
            window = self.rolling[request.path]
            t = time.monotonic()
            while window and window[0] <= t - 1.0:
                window.popleft()
            if len(window) >= limit:
                self.rate_limited += 1
                return web.json_response(envelope(code=10006, msg="Too many visits!"))
            window.append(t)
        return web.json_response(envelope(self.default_result(request.path, body)))

    def check_auth(self, seen: Seen) -> tuple[int, str] | None:
        h = seen.headers
        if h.get("X-BAPI-API-KEY") != API_KEY:
            return 10003, "API key is invalid."
        ts = int(h["X-BAPI-TIMESTAMP"])
        rw = int(h.get("X-BAPI-RECV-WINDOW", "5000"))
        server = self.server_ms()
        if not (server - rw <= ts < server + 1000):
            return 10002, "invalid request, please check your server timestamp or recv_window param"
        payload = seen.raw_query.encode() if seen.method == "GET" else seen.body
        message = (
            h["X-BAPI-TIMESTAMP"].encode()
            + API_KEY.encode()
            + h.get("X-BAPI-RECV-WINDOW", "").encode()
            + payload
        )
        expected = hmac.new(API_SECRET.encode(), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, h.get("X-BAPI-SIGN", "")):
            self.bad_signatures += 1
            return 10004, "error sign!"
        return None

    @staticmethod
    def default_result(path: str, body: bytes) -> dict:
        if path in ("/v5/order/create", "/v5/order/cancel", "/v5/order/amend"):
            req = json.loads(body or b"{}")
            return {"orderId": "1" + str(now_ms()), "orderLinkId": req.get("orderLinkId", "")}
        if path == "/v5/account/wallet-balance":
            return {"list": [{"accountType": "UNIFIED", "totalEquity": "100", "coin": []}]}
        return {}


class FakeWs:
    """A WebSocket server speaking Bybit's control frames, scripted per test."""

    def __init__(self) -> None:
        self.connections: list[web.WebSocketResponse] = []
        self.opened = 0
        self.received: list[tuple[int, dict]] = []  # (connection number, message)
        self.answer_pings = True
        self.ack_subscribes = True
        self.send_data_before_ack: dict[str, str] | None = None  # topic -> frame
        self.refuse_topics: set[str] = set()
        self.trade_handler: Callable[[dict], Awaitable[dict | None]] | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> str:
        app = web.Application()
        for path in ("/v5/public/spot", "/v5/public/linear", "/v5/private", "/v5/trade"):
            app.router.add_get(path, self._handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for ws in list(self.connections):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    async def drop_all(self) -> None:
        for ws in list(self.connections):
            await ws.close()

    async def push(self, frame: dict | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        for ws in list(self.connections):
            if not ws.closed:
                await ws.send_str(text)

    def subscribes(self) -> list[tuple[int, list[str]]]:
        return [(n, m["args"]) for n, m in self.received if m.get("op") == "subscribe"]

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(ws)
        self.opened += 1
        number = self.opened
        path = request.path
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.received.append((number, data))
                await self._on_message(ws, path, data)
        finally:
            if ws in self.connections:
                self.connections.remove(ws)
        return ws

    async def _on_message(self, ws: web.WebSocketResponse, path: str, data: dict) -> None:
        op = data.get("op")
        trade = path == "/v5/trade"
        if op == "auth":
            key, expires, sig = data["args"]
            expected = hmac.new(
                API_SECRET.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
            ).hexdigest()
            ok = key == API_KEY and hmac.compare_digest(expected, sig) and int(expires) > now_ms()
            if trade:
                await ws.send_json(
                    {
                        "retCode": 0 if ok else 10004,
                        "retMsg": "OK" if ok else "Invalid sign",
                        "op": "auth",
                        "connId": "c1",
                    }
                )
            else:
                await ws.send_json(
                    {
                        "success": ok,
                        "ret_msg": "" if ok else "Params Error",
                        "op": "auth",
                        "conn_id": "c1",
                    }
                )
            return
        if op == "ping":
            if not self.answer_pings:
                return
            if trade:
                await ws.send_json(
                    {
                        "retCode": 0,
                        "retMsg": "OK",
                        "op": "pong",
                        "data": [str(now_ms())],
                        "connId": "c1",
                    }
                )
            elif path == "/v5/public/spot":
                await ws.send_json(
                    {"success": True, "ret_msg": "pong", "conn_id": "c1", "op": "ping"}
                )
            else:
                await ws.send_json(
                    {
                        "req_id": data.get("req_id"),
                        "op": "pong",
                        "args": [str(now_ms())],
                        "conn_id": "c1",
                    }
                )
            return
        if op == "subscribe":
            topics = data["args"]
            if self.send_data_before_ack:
                for t in topics:
                    frame = self.send_data_before_ack.get(t)
                    if frame:
                        await ws.send_str(frame)
            if not self.ack_subscribes:
                return
            refused = [t for t in topics if t in self.refuse_topics]
            await ws.send_json(
                {
                    "success": not refused,
                    "ret_msg": f"error:handler not found,topic:{refused[0]}" if refused else "",
                    "conn_id": "c1",
                    "req_id": data.get("req_id", ""),
                    "op": "subscribe",
                }
            )
            return
        if trade and self.trade_handler is not None:
            reply = await self.trade_handler(data)
            if reply == DROP:
                await ws.close()
            elif reply is not None:
                await ws.send_json(reply)
