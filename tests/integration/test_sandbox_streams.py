"""The sandbox's WebSocket streams and faults, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from bybitkit.errors import IpBanned, OrderOutcomeUnknown, RateLimited
from bybitkit.sandbox import Sandbox
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import make_signer, ws_auth_args
from bybitkit.v5.rest import RestClient
from bybitkit.v5.ws import ConnectionState, TradeWsClient, WsSession

D = Decimal


class Raw:
    """A bare WebSocket client that keeps every frame it receives."""

    def __init__(self, sb: Sandbox, path: str) -> None:
        self.url = sb.ws_url + path
        self.frames: list[dict[str, Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def __aenter__(self) -> Raw:
        self._session = aiohttp.ClientSession()
        self.ws = await self._session.ws_connect(self.url)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None and self._session is not None and self._task is not None
        await self.ws.close()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await self._session.close()

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))
                self._new.set()

    async def send(self, obj: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(obj))

    async def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for f in self.frames[seen:]:
                    if pred(f):
                        return f
                seen = len(self.frames)
                self._new.clear()
                await self._new.wait()


def apply(book: dict[str, dict[D, D]], frame: dict[str, Any]) -> None:
    if frame["type"] == "snapshot":
        book["b"], book["a"] = {}, {}
    for side in ("b", "a"):
        for p, q in frame["data"][side]:
            if D(q) == 0:
                book[side].pop(D(p), None)
            else:
                book[side][D(p)] = D(q)


async def test_book_stream_rebuilds_the_sandbox_book(live_sandbox: Sandbox) -> None:
    sb = live_sandbox
    async with Raw(sb, "/v5/public/spot") as ws:
        await ws.send({"op": "subscribe", "req_id": 7, "args": ["orderbook.50.BTCUSDT"]})
        ack = await ws.wait(lambda f: f.get("op") == "subscribe")
        assert ack == {"success": True, "ret_msg": "subscribe", "conn_id": ack["conn_id"],
                       "req_id": 7, "op": "subscribe"}  # fmt: skip
        await asyncio.sleep(1.5)  # deltas flow while the market moves
        sb.freeze()
        await asyncio.sleep(0.5)
        frames = [f for f in ws.frames if f.get("topic") == "orderbook.50.BTCUSDT"]
    assert frames[0]["type"] == "snapshot" and len(frames) > 5
    us = [f["data"]["u"] for f in frames]
    assert us == list(range(us[0], us[0] + len(us)))  # +1 per message, no gap
    book: dict[str, dict[D, D]] = {"b": {}, "a": {}}
    text_of: dict[D, str] = {}
    for f in frames:
        apply(book, f)
        for p, _ in f["data"]["b"] + f["data"]["a"]:
            assert text_of.setdefault(D(p), p) == p  # a price is always the same text
        assert len(book["b"]) <= 50 and len(book["a"]) <= 50
    own = sb.book("BTCUSDT", "spot", 50)
    assert sorted(book["b"].items(), reverse=True) == own["bids"]
    assert sorted(book["a"].items()) == own["asks"]
    assert len(own["bids"]) == 50  # the sandbox keeps >= 200 levels, the stream the top 50


async def test_depth_one_snapshots_and_three_second_resend(sandbox: Sandbox) -> None:
    async with Raw(sandbox, "/v5/public/linear") as ws:
        await ws.send({"op": "subscribe", "args": ["orderbook.1.BTCUSDT"]})
        first = await ws.wait(lambda f: f.get("topic") == "orderbook.1.BTCUSDT")
        again = await ws.wait(
            lambda f: f.get("topic") == "orderbook.1.BTCUSDT" and f is not first, timeout=4.5
        )
    assert first["type"] == again["type"] == "snapshot"
    assert again["data"]["u"] == first["data"]["u"]  # unchanged book: same u, not a gap
    assert len(first["data"]["b"]) == len(first["data"]["a"]) == 1
    assert list(first)[:3] == ["topic", "ts", "type"]  # depth 1 puts ts before type


async def test_gap_and_reset_faults(sandbox: Sandbox) -> None:
    async with Raw(sandbox, "/v5/public/spot") as ws:
        await ws.send({"op": "subscribe", "args": ["orderbook.200.BTCUSDT"]})
        snap = await ws.wait(lambda f: f.get("type") == "snapshot")
        u0 = snap["data"]["u"]
        sandbox.book_gap("BTCUSDT")
        sandbox.inject_trade("BTCUSDT", "Buy", "0.01")
        gap = await ws.wait(lambda f: f.get("type") == "delta")
        assert gap["data"]["u"] == u0 + 2
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01")
        nxt = await ws.wait(lambda f: f.get("type") == "delta" and f is not gap)
        assert nxt["data"]["u"] == u0 + 3
        sandbox.book_reset("BTCUSDT")
        reset = await ws.wait(lambda f: f.get("type") == "snapshot" and f is not snap)
        assert reset["data"]["u"] == 1


async def test_public_trade_and_private_topics_after_the_ack(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    signer = make_signer(creds)
    got: list[tuple[float, Any]] = []
    pub = WsSession(
        sandbox.ws_url + "/v5/public/spot", on_message=lambda m: got.append((time.monotonic(), m))
    )
    priv = WsSession(
        sandbox.ws_url + "/v5/private", signer=signer,
        on_message=lambda m: got.append((time.monotonic(), m)),
    )  # fmt: skip
    async with pub, priv, RestClient(sandbox.environment, creds) as rest:
        await pub.subscribe(["publicTrade.BTCUSDT"])
        await priv.subscribe(["order.spot", "execution", "wallet"])
        ack = await rest.place_order(
            category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.002",
            marketUnit="baseCoin",
        )  # fmt: skip
        acked_at = time.monotonic()
        async with asyncio.timeout(5):
            while not any(isinstance(m, s.WalletMessage) for _, m in got):
                await asyncio.sleep(0.02)
    kinds = {type(m).__name__: t for t, m in got}
    assert {"PublicTradeMessage", "OrderMessage", "ExecutionMessage", "WalletMessage"} <= set(kinds)
    assert all(t >= acked_at - 0.05 for t, m in got if not isinstance(m, s.PublicTradeMessage))
    orders = [o for _, m in got if isinstance(m, s.OrderMessage) for o in m.data]
    assert orders[0].orderId == ack.orderId and orders[-1].orderStatus == "Filled"
    assert all(m.topic == "order.spot" for _, m in got if isinstance(m, s.OrderMessage))
    fills = [e for _, m in got if isinstance(m, s.ExecutionMessage) for e in m.data]
    assert sum(f.execQty for f in fills) == D("0.002")
    wallet = [w for _, m in got if isinstance(m, s.WalletMessage) for w in m.data][-1]
    btc = next(c for c in wallet.coin if c.coin == "BTC")
    assert btc.walletBalance == D("1.002") - D("0.002") * D("0.001")


async def test_control_frames_in_each_stream_shape(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    signer = make_signer(creds)
    async with Raw(sandbox, "/v5/public/linear") as lin, Raw(sandbox, "/v5/private") as priv:
        await lin.send({"op": "ping", "req_id": 1.5})
        pong = await lin.wait(lambda f: f.get("ret_msg") == "pong")
        assert pong["op"] == "ping" and pong["success"] is True and pong["req_id"] == 1.5
        await lin.send({"op": "subscribe", "req_id": True, "args": ["tickers.BTCUSDT"]})
        ack = await lin.wait(lambda f: f.get("op") == "subscribe")
        assert ack["ret_msg"] == "" and ack["req_id"] is True
        snap = await lin.wait(lambda f: f.get("topic") == "tickers.BTCUSDT")
        assert snap["type"] == "snapshot" and "fundingRate" in snap["data"]
        await lin.send({"op": "subscribe", "req_id": "x", "args": ["nonsense.BTCUSDT"]})
        bad = await lin.wait(lambda f: f.get("req_id") == "x")
        assert bad["success"] is False and "nonsense.BTCUSDT" in bad["ret_msg"]
        # private: auth with expires as a numeric string, subscribe without waiting for it
        args = ws_auth_args(signer, int(time.time() * 1000) + 5000)
        args[1] = str(args[1])
        await priv.send({"op": "auth", "req_id": 42, "args": args})
        await priv.send({"op": "subscribe", "req_id": 43, "args": ["order", "wallet"]})
        await priv.send({"op": "ping", "req_id": "p"})
        auth = await priv.wait(lambda f: f.get("op") == "auth")
        assert auth["success"] is True and auth["req_id"] == 42
        sub = await priv.wait(lambda f: f.get("op") == "subscribe")
        assert sub["success"] is True and sub["req_id"] == 43
        pong = await priv.wait(lambda f: f.get("op") == "pong")
        assert pong["req_id"] == "p" and isinstance(pong["args"][0], str)
    async with Raw(sandbox, "/v5/public/spot") as spot:
        await spot.send({"op": "subscribe", "args": [f"publicTrade.X{i}" for i in range(11)]})
        refused = await spot.wait(lambda f: f.get("op") == "subscribe")
        assert refused["success"] is False


async def test_trade_ws_orders(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    bid = sandbox.book("BTCUSDT", "spot", 1)["bids"][0][0]
    async with TradeWsClient(sandbox.environment, creds) as tws:
        await tws.wait_connected(5)
        ack = await tws.place_order(
            category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
            price=str(bid - 10),
        )  # fmt: skip
        await tws.amend_order(category="spot", symbol="BTCUSDT", orderId=ack.orderId,
                              price=str(bid - 11))  # fmt: skip
        await tws.cancel_order(category="spot", symbol="BTCUSDT", orderId=ack.orderId)
        resp = await tws.request(
            "order.create-batch",
            [{"category": "spot", "request": [
                {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001",
                 "price": str(bid - 12)}]}],
        )  # fmt: skip
        assert resp.retCode == 0 and resp.header and "X-Bapi-Limit" in resp.header
    orders = sandbox.orders(creds.api_key)
    assert [o["orderStatus"] for o in orders] == ["New", "Cancelled"]
    assert orders[1]["price"] == str(bid - 11)
    async with Raw(sandbox, "/v5/trade") as raw:
        await raw.send(
            {"op": "auth", "args": ws_auth_args(make_signer(creds), int(time.time() * 1000) + 5000)}
        )
        await raw.wait(lambda f: f.get("op") == "auth")
        header = {"X-BAPI-TIMESTAMP": int(time.time() * 1000)}  # pybit sends an int
        req = {"reqId": "r1", "header": header, "op": "order.cancel",
               "args": [{"category": "spot", "symbol": "BTCUSDT", "orderId": "1"}]}  # fmt: skip
        await raw.send(req)
        first = await raw.wait(lambda f: f.get("reqId") == "r1")
        assert first["retCode"] == 170213
        await raw.send(req)
        dup = await raw.wait(lambda f: f.get("reqId") == "r1" and f is not first)
        assert dup["retCode"] == 20006
        await raw.send({"reqId": "r2", "header": header, "op": "order.launch", "args": [{}]})
        unknown = await raw.wait(lambda f: f.get("reqId") == "r2")
        assert unknown["retCode"] == 10404


async def test_drop_ws_then_our_session_resubscribes(live_sandbox: Sandbox) -> None:
    sb = live_sandbox
    states: list[ConnectionState] = []
    books: list[s.OrderbookMessage] = []
    ws = WsSession(
        sb.ws_url + "/v5/public/linear", on_state=states.append,
        on_message=lambda m: books.append(m) if isinstance(m, s.OrderbookMessage) else None,
        reconnect_base=0.05,
    )  # fmt: skip
    async with ws:
        await ws.subscribe(["orderbook.50.BTCUSDT"])
        n = len(books)
        sb.drop_ws()
        async with asyncio.timeout(5):
            while ws.connections < 2:
                await asyncio.sleep(0.02)
        await ws.wait_subscribed(["orderbook.50.BTCUSDT"])
        async with asyncio.timeout(5):
            while not any(b.type == "snapshot" for b in books[n:]):
                await asyncio.sleep(0.02)
    assert ConnectionState.DISCONNECTED in states


async def test_pause_pushes_holds_private_messages(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    got: list[Any] = []
    priv = WsSession(
        sandbox.ws_url + "/v5/private", signer=make_signer(creds), on_message=got.append
    )
    async with priv, RestClient(sandbox.environment, creds) as rest:
        await priv.subscribe(["execution"])
        sandbox.pause_pushes(0.6)
        await rest.place_order(category="spot", symbol="BTCUSDT", side="Sell", orderType="Market",
                               qty="0.001")  # fmt: skip
        await asyncio.sleep(0.4)
        assert not got  # held during the pause ...
        await asyncio.sleep(0.5)
        assert any(isinstance(m, s.ExecutionMessage) for m in got)  # ... delivered after it


async def test_drop_private_after_fill(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    got: list[Any] = []
    priv = WsSession(sandbox.ws_url + "/v5/private", signer=make_signer(creds),
                     on_message=got.append, reconnect_base=0.05)  # fmt: skip
    async with priv, RestClient(sandbox.environment, creds) as rest:
        await priv.subscribe(["execution"])
        sandbox.drop_private_after_fill()
        await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market",
                               qty="0.001", marketUnit="baseCoin")  # fmt: skip
        async with asyncio.timeout(5):
            while priv.connections < 2:
                await asyncio.sleep(0.02)
    assert any(isinstance(m, s.ExecutionMessage) for m in got)  # the fill, then the drop


async def test_rest_faults(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with RestClient(sandbox.environment, creds, rate_limit_backoff=0.1) as rest:
        sandbox.rest_errors("10002")
        await rest.account_info()  # re-synced and retried once
        sandbox.rest_errors("10006", 2)
        await rest.wallet_balance()  # a read waits and retries
        sandbox.rest_errors("10006")
        with pytest.raises(RateLimited):
            await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                   orderType="Market", qty="10")  # fmt: skip
        sandbox.rest_errors("5xx")
        await rest.account_info()
        sandbox.delay_responses(1.0, count=1)
        rest.timeout = aiohttp.ClientTimeout(total=0.3)
        await rest.close()  # the next session takes the short timeout
        with pytest.raises(OrderOutcomeUnknown) as info:
            await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                   orderType="Limit", qty="0.001", price="60000",
                                   orderLinkId="late-1")  # fmt: skip
        assert info.value.order_link_id == "late-1"
        await asyncio.sleep(0.8)
        rest.timeout = aiohttp.ClientTimeout(total=5)
        await rest.close()
        found = await rest.open_orders(category="spot", orderLinkId="late-1")
        assert [o.orderStatus for o in found.list] == ["New"]  # it exists: never resend it
        sandbox.drop_next_create()
        with pytest.raises(OrderOutcomeUnknown):
            await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                   orderType="Limit", qty="0.001", price="60000",
                                   orderLinkId="dropped-1")  # fmt: skip
        assert (await rest.open_orders(category="spot", orderLinkId="dropped-1")).list
        sandbox.rest_errors("403")
        with pytest.raises(IpBanned):
            await rest.account_info()


async def test_trade_ws_execute_then_drop(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with TradeWsClient(sandbox.environment, creds, reconnect_base=0.05) as tws:
        await tws.wait_connected(5)
        sandbox.drop_next_create()
        with pytest.raises(OrderOutcomeUnknown) as info:
            await tws.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                  orderType="Limit", qty="0.001", price="60000",
                                  orderLinkId="ws-drop-1")  # fmt: skip
    assert info.value.order_link_id == "ws-drop-1"
    assert [o["orderLinkId"] for o in sandbox.orders(creds.api_key)] == ["ws-drop-1"]


async def test_kline_ticker_and_price_limit_pushes(sandbox: Sandbox) -> None:
    async with Raw(sandbox, "/v5/public/spot") as ws:
        await ws.send({"op": "subscribe", "args": ["kline.1.BTCUSDT", "tickers.BTCUSDT",
                                                   "priceLimit.BTCUSDT"]})  # fmt: skip
        kline = await ws.wait(lambda f: f.get("topic") == "kline.1.BTCUSDT")
        bar = kline["data"][0]
        assert (
            bar["interval"] == "1"
            and bar["confirm"] is False
            and bar["end"] == bar["start"] + 59_999
        )
        ticker = await ws.wait(lambda f: f.get("topic") == "tickers.BTCUSDT")
        assert "bid1Price" not in ticker["data"] and ticker["type"] == "snapshot"
        limit = await ws.wait(lambda f: f.get("topic") == "priceLimit.BTCUSDT", timeout=3)
        assert set(limit["data"]) == {"symbol", "buyLmt", "sellLmt"} and "type" not in limit


async def test_the_simulated_market_is_deep_tight_and_trades(live_sandbox: Sandbox) -> None:
    sb = live_sandbox
    counts = {key: len(m.trades) for key, m in sb.exchange.markets.items()}
    for _ in range(12):
        await asyncio.sleep(0.25)
        for m in sb.exchange.markets.values():
            bids = m.book.levels(1, 1000)  # Side.BUY
            asks = m.book.levels(2, 1000)  # Side.SELL
            assert len(bids) >= 200 and len(asks) >= 200
            assert 1 <= asks[0][0] - bids[0][0] <= 3, m.inst.symbol
    for key, m in sb.exchange.markets.items():
        assert len(m.trades) - counts[key] >= 3, key  # >= 1 public trade per second
    # the market moves: the price of three seconds ago is not the price now
    assert any(len({t["p"] for t in m.trades}) > 1 for m in sb.exchange.markets.values())


async def test_delay_on_one_path_only(sandbox: Sandbox) -> None:
    """``delay_responses(path=)``: only the create is late (the soak's create timeout), the
    other calls answer at once."""
    creds = sandbox.create_account()
    async with RestClient(sandbox.environment, creds) as rest:
        sandbox.delay_responses(0.6, count=1, path="/v5/order/create")
        t0 = time.monotonic()
        await rest.wallet_balance()
        await rest.open_orders(category="spot")
        assert time.monotonic() - t0 < 0.5
        await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                               orderType="Limit", qty="0.001", price="60000")  # fmt: skip
        assert time.monotonic() - t0 >= 0.6
        t1 = time.monotonic()
        await rest.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                               orderType="Limit", qty="0.001", price="60000")  # fmt: skip
        assert time.monotonic() - t1 < 0.5  # the count is spent


async def test_hostile_nesting_and_binary_frames_get_errors(sandbox: Sandbox) -> None:
    """Fuzz regressions: a body or frame nested deeper than ``json`` can parse crashed the
    handler (HTTP 500 with a traceback; on a stream, no answer at all), and a binary frame was
    silently ignored. Each now gets a Bybit-style error and the connection lives on."""
    deep = "[" * 100_000
    async with aiohttp.ClientSession() as http:
        async with http.post(sandbox.rest_url + "/v5/order/create", data=deep) as r:
            assert r.status == 200
            answer = await r.json()
            assert answer["retCode"] == 10001 and "JSON" in answer["retMsg"]
        async with http.post(sandbox.rest_url + "/sandbox/freeze", data=deep) as r:
            assert r.status == 400 and "nested" in (await r.json())["error"]
    for path in ("/v5/public/spot", "/v5/private", "/v5/trade"):
        async with Raw(sandbox, path) as raw:
            assert raw.ws is not None
            await raw.ws.send_str(deep)
            await raw.wait(lambda f: "invalid json" in json.dumps(f))
            await raw.ws.send_bytes(b"\x00\x01")
            await raw.wait(lambda f: "binary" in json.dumps(f))
            await raw.send({"op": "ping", "req_id": "alive"})
            await raw.wait(lambda f: "alive" in json.dumps(f) or f.get("op") == "pong")
