"""The fuzz pass: malformed, truncated and hostile input to every wire decoder and to the
sandbox's REST and WebSocket handlers (hypothesis, derandomized, bounded).

* Decoders (:func:`bybitkit.v5.codec.decode`, ``decode_normalized`` and ``decode_result`` with
  every schema of the registry, ``decode_frame`` for stream and trade frames, the order book's
  ``apply_frame``): only our typed errors
  (:class:`~bybitkit.errors.DecodeError`), never a stray exception.
* The REST client against a hostile server (any status, any body) and a stream session fed
  hostile frames: only :class:`~bybitkit.errors.BybitkitError`; the session survives.
* The sandbox's REST handlers, every route (and unknown ones), over a real loopback socket,
  signed or not, with hostile query strings, bodies and headers: a well-formed Bybit-style JSON
  error (``retCode``/``retMsg``; the admin API: ``{"error"}``), never a 500, never an internal
  error, the server alive afterwards.
* The sandbox's WebSocket handlers (public, private, trade; before and after auth): hostile
  text frames, binary frames, huge frames, bad ops get an error reply or a close; the server
  keeps serving; no task is left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import yarl
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bybitkit.errors import BybitkitError, DecodeError
from bybitkit.market import OrderBook
from bybitkit.sandbox.app import Sandbox
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import Credentials, make_signer
from bybitkit.v5.codec import decode, decode_normalized, decoder, normalize
from bybitkit.v5.environments import Environment
from bybitkit.v5.rest import RestClient
from bybitkit.v5.schemas import registry
from bybitkit.v5.ws import WsSession, decode_frame

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit-v5" / "examples"
FAST = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SOCKET = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


def _examples() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]


EXAMPLE_DATA = _examples()
RESPONSES = [
    json.dumps(e["response"], separators=(",", ":"))
    for e in EXAMPLE_DATA
    if e.get("response") is not None
]
REST_REQUESTS = [e["request"] for e in EXAMPLE_DATA if "path" in (e.get("request") or {})]
WS_REQUESTS = [json.dumps(e["request"]) for e in EXAMPLE_DATA if "op" in (e.get("request") or {})]


def _schemas() -> list[type[Any]]:
    found: set[type[Any]] = set()
    found.update(registry.REST_RESULT_TYPES.values())
    for table in registry.REST_RESULT_TYPES_BY_CATEGORY.values():
        found.update(table.values())
    found.update(registry.REST_EXT_INFO_TYPES.values())
    found.update(registry.TRADE_WS_DATA_TYPES.values())
    found.update(t for _, t in registry.EXAMPLE_SCHEMAS.values())
    found.update(s.MESSAGE_TYPES.values())
    found.update({s.WsControl, s.WsRequest, s.TradeWsResponse, s.Envelope})
    return sorted(found, key=lambda t: t.__name__)


SCHEMAS = _schemas()

# -- hostile text -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE_LITERALS = [
    "",
    " ",
    "null",
    "[]",
    "{}",
    '""',
    "1e999999",
    "-1e-999999",
    "9" * 5000,
    '{"retCode": ' + "9" * 400 + "}",
    '{"retCode": 1e400, "retMsg": "x", "result": {}}',
    '{"retCode": 0, "retMsg": "OK", "result": null}',
    '{"retCode": 0, "retMsg": "OK", "result": []}',
    '{"retCode": "0", "retMsg": 7, "result": "x"}',
    '{"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {"s": "BTCUSDT", "b": '
    '[["1e99999", "1"]], "a": [["x", "y", "z"]], "u": -1}}',
    '{"topic": "orderbook.50.BTCUSDT", "data": null}',
    '{"topic": "execution", "data": [{"execQty": {"a": 1}}]}',
    '{"topic": "' + "a" * 10000 + '"}',
    '{"topic":"',
    '{"topic": 5}',
    "NaN",
    '{"a": NaN, "b": Infinity}',
    "\ud800",
    "[" * 100_000,
    '{"a":' * 50_000,
    "[" * 100_000 + "]" * 100_000,
]


def _mutate(data: st.DataObject, text: str) -> str:
    """One of: truncate, delete a span, insert junk, replace a scalar with a hostile value."""
    how = data.draw(st.integers(0, 4), label="how")
    n = len(text)
    if n == 0:
        return text
    i = data.draw(st.integers(0, n - 1), label="i")
    if how == 0:
        return text[:i]
    if how == 1:
        j = data.draw(st.integers(i, min(n, i + 40)), label="j")
        return text[:i] + text[j:]
    if how == 2:
        junk = data.draw(st.text(max_size=8) | st.sampled_from(['"', "{", "]", ",", ':""']))
        return text[:i] + junk + text[i:]
    if how == 3:
        hostile = json.dumps(data.draw(json_values, label="value"))
        k = text.find(":", i)
        if k < 0:
            return text + hostile
        end = min((p for p in (text.find(",", k), text.find("}", k)) if p >= 0), default=n)
        return text[: k + 1] + hostile + text[end:]
    return text * 2


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 4), label="kind")
    if kind == 0:
        return draw(st.sampled_from(HOSTILE_LITERALS))
    if kind == 1:
        return json.dumps(draw(json_values))
    if kind == 2:
        return draw(st.text(max_size=200))
    seed = draw(st.sampled_from(RESPONSES))
    return _mutate(draw(st.data()), seed)


def _only_decode_errors(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except DecodeError:
        pass


# -- decoders -------------------------------------------------------------------------------------


@FAST
@given(schema=st.sampled_from(SCHEMAS), raw=hostile_text())
def test_decode_every_schema_raises_only_decode_errors(schema: type[Any], raw: str) -> None:
    _only_decode_errors(decode, schema, raw)
    _only_decode_errors(decode, schema, raw.encode("utf-8", "surrogatepass"))


@FAST
@given(
    schema=st.sampled_from(SCHEMAS),
    raw=st.binary(max_size=300) | hostile_text().map(lambda t: t.encode("utf-8", "replace")),
    cut=st.integers(0, 300),
)
def test_decode_bytes_truncated_or_invalid_utf8(schema: type[Any], raw: bytes, cut: int) -> None:
    bad = raw[:cut] + b"\xff\xfe\xc3(" + raw[cut:]
    for blob in (raw, bad, raw[:cut]):
        _only_decode_errors(decode, schema, blob)
        _only_decode_errors(s.decode_result, schema, blob)
        _only_decode_errors(decode_normalized, decoder(schema), normalize(blob), "fuzz")
        _only_decode_errors(decode_normalized, decoder(schema), msgspec.Raw(blob), "fuzz")


@FAST
@given(raw=hostile_text(), trade=st.booleans())
def test_decode_frame_raises_only_decode_errors(raw: str, trade: bool) -> None:
    _only_decode_errors(decode_frame, raw, trade)


@FAST
@given(raw=hostile_text())
def test_order_book_frames_raise_only_decode_errors(raw: str) -> None:
    book = OrderBook("BTCUSDT", depth=50)
    seeds = [r for r in RESPONSES if '"orderbook.' in r]
    for frame in (raw, *seeds):
        try:
            book.apply_frame(frame)
        except DecodeError:
            pass
        except ValueError as exc:  # documented: a frame of another symbol changes nothing
            assert "applied to the BTCUSDT book" in str(exc)


# -- the REST client and a stream session against hostile servers --------------------------------


class Hostile:
    """A local server answering REST with whatever the test sets, and streams with frames."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.frames: list[str | bytes] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def rest(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=self.status, body=self.body, content_type="application/json")

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        for frame in self.frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        async for _ in ws:
            pass
        return ws

    async def __aenter__(self) -> Hostile:
        app = web.Application()
        app.router.add_get("/v5/public/spot", self.ws)
        app.router.add_route("*", "/{tail:.*}", self.rest)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    async with Hostile() as h:
        yield h


@settings(SOCKET, max_examples=300)
@given(
    status=st.sampled_from([200, 200, 200, 201, 301, 400, 403, 404, 418, 429, 500, 502, 503]),
    body=hostile_text(),
    call=st.sampled_from(["time", "wallet", "create", "executions", "batch"]),
)
async def test_rest_client_raises_only_our_errors(
    hostile: Hostile, status: int, body: str, call: str
) -> None:
    hostile.status = status
    hostile.body = body.encode("utf-8", "surrogatepass")
    env = Environment.custom(hostile.url, "ws" + hostile.url[4:], name="hostile")
    rest = RestClient(
        env, Credentials("key", "secret"), timeout=5, ban_seconds=0.001, max_read_retries=0
    )
    try:
        if call == "time":
            await rest.sync_clock()
        elif call == "wallet":
            await rest.wallet_balance()
        elif call == "create":
            await rest.place_order(
                category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="1",
                price="1", orderLinkId="fuzz-1",
            )  # fmt: skip
        elif call == "executions":
            await rest.executions(category="spot")
        else:
            await rest.place_batch("spot", [{"symbol": "BTCUSDT", "side": "Buy",
                                             "orderType": "Market", "qty": "1"}])  # fmt: skip
    except BybitkitError:
        pass
    finally:
        await rest.close()


@SOCKET
@given(frames=st.lists(hostile_text() | st.binary(max_size=64), min_size=1, max_size=6))
async def test_stream_session_survives_hostile_frames(
    hostile: Hostile, frames: list[str | bytes]
) -> None:
    good = next(r for r in RESPONSES if '"topic":"orderbook.' in r)
    hostile.frames = [*frames, good]
    got: list[Any] = []
    session = WsSession(
        "ws" + hostile.url[4:] + "/v5/public/spot", on_message=got.append, name="fuzz"
    )
    try:
        await session.start()
        async with asyncio.timeout(5):
            while not any(isinstance(m, s.OrderbookMessage) for m in got):
                await asyncio.sleep(0.005)
    finally:
        await session.close()


# -- the sandbox's REST handlers -------------------------------------------------------------------


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=5, simulate=False) as sandbox:
        yield sandbox


ADMIN_PATHS = [
    "/sandbox/accounts",
    "/sandbox/accounts/nokey",
    "/sandbox/fees",
    "/sandbox/freeze",
    "/sandbox/resume",
    "/sandbox/move-mid",
    "/sandbox/trade",
    "/sandbox/book",
    "/sandbox/funding-rate",
    "/sandbox/settle-funding",
    "/sandbox/faults/pause-pushes",
    "/sandbox/faults/book-gap",
    "/sandbox/faults/book-reset",
    "/sandbox/faults/rest-errors",
    "/sandbox/faults/delay",
]
query_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30
) | st.sampled_from(["%", "%zz", "%ff%fe", "a=%00", "&&&", "=", "category=spot&category=linear"])


@st.composite
def hostile_request(draw: st.DrawFn, sb_routes: list[tuple[str, str]]) -> dict[str, Any]:
    kind = draw(st.integers(0, 3))
    if kind == 0 and REST_REQUESTS:
        req = draw(st.sampled_from(REST_REQUESTS))
        method, path = req["method"], req["path"]
        params = dict(req.get("body") or req.get("query") or {})
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from(sorted(params) or ["category"]) | st.text(max_size=8))
            params[key] = draw(json_values | st.sampled_from([1e308, -0.0, "1e999", "NaN"]))
    elif kind == 1:
        method, path = draw(st.sampled_from(sb_routes))
        params = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    elif kind == 2:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
        printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%")
        path = draw(
            st.sampled_from([p for _, p in sb_routes] + ADMIN_PATHS)
            | st.text(printable, max_size=30).map(lambda t: "/v5/" + t)
        )
        params = {}
    else:
        method = draw(st.sampled_from(["GET", "POST"]))
        path = draw(st.sampled_from(ADMIN_PATHS))
        params = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    body_kind = draw(st.integers(0, 3))
    if method == "GET":
        if body_kind == 0:
            raw_query = draw(query_text)
        else:
            raw_query = "&".join(
                f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in params.items()
            )
        body = b"" if body_kind != 3 else b'{"a": 1}'
    else:
        raw_query = "" if body_kind else draw(query_text)
        if body_kind == 1:
            body = draw(st.sampled_from(HOSTILE_LITERALS)).encode("utf-8", "surrogatepass")
        elif body_kind == 2:
            body = draw(st.binary(max_size=64))
        else:
            body = json.dumps(params).encode()
    return {
        "method": method,
        "path": path,
        "query": raw_query,
        "body": body,
        "sign": draw(st.booleans()),
        "headers": draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "X-BAPI-API-KEY",
                        "X-BAPI-SIGN",
                        "X-BAPI-TIMESTAMP",
                        "X-BAPI-RECV-WINDOW",
                        "Content-Type",
                        "X-BAPI-SIGN-TYPE",
                    ]
                ),
                st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
                max_size=3,
            )
        ),
    }


ROUTES = sorted(Sandbox(simulate=False).rest.routes)  # every (method, path) the sandbox serves


@settings(SOCKET, max_examples=500)
@given(req=hostile_request(ROUTES))
async def test_sandbox_rest_answers_bybit_style_errors(
    sb: Sandbox, caplog: pytest.LogCaptureFixture, req: dict[str, Any]
) -> None:
    if not hasattr(sb, "_fuzz_creds"):
        sb._fuzz_creds = sb.create_account()  # type: ignore[attr-defined]
    creds: Credentials = sb._fuzz_creds  # type: ignore[attr-defined]
    path = req["path"]
    url = yarl.URL(sb.rest_url + path + ("?" + req["query"] if req["query"] else ""), encoded=True)
    headers = dict(req["headers"])
    if req["sign"]:
        payload = req["query"] if req["method"] == "GET" else req["body"]
        headers.update(make_signer(creds).headers(_now_ms(), payload))
    caplog.clear()
    caplog.set_level(logging.ERROR, logger="bybitkit.sandbox")
    async with aiohttp.ClientSession() as http:
        try:
            async with http.request(req["method"], url, data=req["body"], headers=headers) as r:
                status = r.status
                raw = await r.read()
        except ValueError:
            return  # the client refused to send it (a header it will not write)
    where = f"{req['method']} {path}?{req['query']!r} -> {status} {raw[:200]!r}"
    assert status < 500, where
    crashes = _crashes(caplog)
    assert not crashes, f"{where}: {crashes[0].getMessage()}"
    if status == 400 and not any(raw.startswith(b) for b in (b"{", b"[")):
        # aiohttp's HTTP parser refused a request line no HTTP server would take (a space, a
        # control or non-ASCII byte in the URL): the request never reached the sandbox
        assert any(not 0x21 <= ord(c) <= 0x7E for c in req["query"]), where
        return
    answer = json.loads(raw)
    assert isinstance(answer, dict), where
    if path.startswith("/sandbox/") and status != 404:
        assert status in (200, 400), where
        if status == 400:
            assert isinstance(answer.get("error"), str), where
        return
    assert status in (200, 404, 405), where
    assert isinstance(answer.get("retCode"), int) and isinstance(answer.get("retMsg"), str), where
    assert answer["retCode"] != 10016, f"internal error: {where}"


def _crashes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Errors the sandbox logged (a handler that raised: "sandbox handler failed", ...)."""
    return [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bybitkit")
    ]


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


async def test_sandbox_alive_after_rest_fuzz(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sb.rest_url + "/sandbox/accounts", data=b"[" * 100_000) as r:
            assert r.status == 400 and "error" in await r.json()
        async with http.get(sb.rest_url + "/v5/market/time") as r:
            assert (await r.json())["retCode"] == 0


# -- the sandbox's WebSocket handlers ------------------------------------------------------------

ws_frames = (
    hostile_text()
    | st.sampled_from(WS_REQUESTS)
    | st.builds(
        lambda op, args, rid: json.dumps({"op": op, "args": args, "req_id": rid}),
        st.sampled_from(
            [
                "subscribe",
                "unsubscribe",
                "auth",
                "ping",
                "order.create",
                "order.cancel",
                "order.create-batch",
                "pong",
                "",
                None,
            ]
        ),
        json_values,
        json_values,
    )
    | st.binary(max_size=64)
)


async def _reply_or_close(ws: aiohttp.ClientWebSocketResponse) -> str:
    async with asyncio.timeout(5):
        msg = await ws.receive()
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
        return "closed"
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    json.loads(msg.data)  # every reply is JSON
    return "reply"


def _auth_frame(creds: Credentials, trade: bool) -> str:
    import hashlib
    import hmac

    expires = _now_ms() + 10_000
    sign = hmac.new(
        creds.api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
    ).hexdigest()
    return json.dumps({"op": "auth", "args": [creds.api_key, expires, sign]})


@SOCKET
@given(
    path=st.sampled_from(["/v5/public/spot", "/v5/public/linear", "/v5/private", "/v5/trade"]),
    auth=st.booleans(),
    frames=st.lists(ws_frames, min_size=1, max_size=4),
)
async def test_sandbox_ws_answers_or_closes(
    sb: Sandbox, caplog: pytest.LogCaptureFixture, path: str, auth: bool, frames: list[Any]
) -> None:
    if not hasattr(sb, "_fuzz_creds"):
        sb._fuzz_creds = sb.create_account()  # type: ignore[attr-defined]
    creds: Credentials = sb._fuzz_creds  # type: ignore[attr-defined]
    caplog.clear()
    caplog.set_level(logging.ERROR, logger="bybitkit.sandbox")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(sb.ws_url + path, max_msg_size=0) as ws,
    ):
        if auth and path in ("/v5/private", "/v5/trade"):
            await ws.send_str(_auth_frame(creds, path == "/v5/trade"))
            assert await _reply_or_close(ws) == "reply"
        for frame in frames:
            if isinstance(frame, str):
                try:
                    frame.encode()
                except UnicodeEncodeError:  # a lone surrogate: not text on the wire
                    frame = frame.encode("utf-8", "surrogatepass")
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            if await _reply_or_close(ws) == "closed":
                break
            # drain what a subscribe may have started (snapshots), then go on
            while True:
                try:
                    async with asyncio.timeout(0.02):
                        msg = await ws.receive()
                except TimeoutError:
                    break
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
    crashes = _crashes(caplog)
    assert not crashes, crashes[0].getMessage()


async def test_sandbox_ws_huge_frame_closes_and_server_lives_on(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sb.ws_url + "/v5/public/spot") as ws:
            await ws.send_str('{"op": "ping", "req_id": "' + "x" * (2 << 20) + '"}')
            assert await _reply_or_close(ws) == "closed"
        async with http.ws_connect(sb.ws_url + "/v5/public/spot") as ws:
            await ws.send_str('{"op": "ping", "req_id": "alive"}')
            async with asyncio.timeout(5):
                pong = json.loads((await ws.receive()).data)
            assert pong["req_id"] == "alive"


async def test_hostile_clients_leave_no_task_or_connection_behind() -> None:
    """After hostile traffic on every stream (bad JSON, deep nesting, binary, oversized and
    unauthenticated frames, failed auth, clients that vanish mid-stream without a close) and
    hostile REST bodies, the sandbox holds exactly the tasks it held before and no connection."""
    async with Sandbox(seed=5, simulate=False) as sandbox:
        creds = sandbox.create_account()
        await asyncio.sleep(0.1)
        before = {t.get_name() for t in asyncio.all_tasks()}
        bad_auth = json.dumps({"op": "auth", "args": [creds.api_key, _now_ms() + 10_000, "0" * 64]})
        hostile_frames: list[str | bytes] = [
            "{", "[" * 50_000, "null", '{"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}',
            '{"op": "order.create", "args": [{}]}', b"\x00\xff", bad_auth,
            _auth_frame(creds, False),
            '{"op": "subscribe", "args": ["order", "nope.topic", 7]}',
        ]  # fmt: skip
        paths = ("/v5/public/spot", "/v5/public/linear", "/v5/private", "/v5/trade")
        async with aiohttp.ClientSession() as http:
            for path in paths:
                for vanish in (False, True):
                    ws = await http.ws_connect(sandbox.ws_url + path)
                    for frame in hostile_frames:
                        if ws.closed:
                            break
                        if isinstance(frame, bytes):
                            await ws.send_bytes(frame)
                        else:
                            await ws.send_str(frame)
                    if vanish:  # the socket goes away with no close frame
                        transport = ws._response.connection.transport  # type: ignore[union-attr]
                        assert transport is not None
                        transport.abort()
                    else:
                        await ws.close()
                huge = await http.ws_connect(sandbox.ws_url + path)
                await huge.send_str("x" * (2 << 20))
                await huge.receive()
                await huge.close()
            for body in (b"[" * 100_000, b"\xff\xfe", b'{"category": ' * 1000):
                for route in ("/v5/order/create", "/sandbox/accounts"):
                    async with http.post(sandbox.rest_url + route, data=body) as r:
                        assert r.status in (200, 400)
        async with asyncio.timeout(5):
            while sandbox.streams.conns or {t.get_name() for t in asyncio.all_tasks()} - before:
                await asyncio.sleep(0.05)
        assert not sandbox.streams.conns
        assert {t.get_name() for t in asyncio.all_tasks()} - before == set()
