"""The WebSocket session against a Bybit look-alike on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bybitkit.errors import AuthError, OrderOutcomeUnknown, RateLimited
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import Credentials, make_signer
from bybitkit.v5.environments import Environment
from bybitkit.v5.ws import ConnectionState, SubscriptionError, TradeWsClient, WsSession

from .fakes import API_KEY, API_SECRET, DROP, FakeWs

SNAPSHOT = json.dumps(
    {
        "topic": "orderbook.50.BTCUSDT",
        "type": "snapshot",
        "ts": 1,
        "cts": 1,
        "data": {
            "s": "BTCUSDT",
            "b": [["30000.10", "1.5"]],
            "a": [["30000.20", "0.25"]],
            "u": 1,
            "seq": 10,
        },
    },
    separators=(",", ":"),
)
ORDER = {
    "id": "x",
    "topic": "order",
    "creationTime": 1,
    "data": [
        {
            "category": "spot",
            "symbol": "BTCUSDT",
            "orderId": "42",
            "orderLinkId": "",
            "side": "Buy",
            "orderType": "Limit",
            "orderStatus": "New",
            "price": "30000",
            "qty": "0.01",
            "avgPrice": "",
            "cumExecQty": "0",
            "leavesQty": "0.01",
            "createdTime": "1700000000000",
            "updatedTime": "1700000000000",
            "rejectReason": "EC_NoError",
            "timeInForce": "GTC",
        }
    ],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeWs]:
    server = FakeWs()
    await server.start()
    yield server
    await server.stop()


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.states: list[ConnectionState] = []
        self.event = asyncio.Event()

    def on_message(self, msg: Any) -> None:
        self.messages.append(msg)
        self.event.set()

    def on_state(self, state: ConnectionState) -> None:
        self.states.append(state)

    async def wait_for(self, pred: Any, timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                self.event.clear()
                await self.event.wait()


def session(fake: FakeWs, path: str, rec: Recorder, **kw: Any) -> WsSession:
    return WsSession(
        fake.url + path, on_message=rec.on_message, on_state=rec.on_state, reconnect_base=0.05, **kw
    )


async def test_subscribe_ack_and_typed_frames(fake: FakeWs) -> None:
    rec = Recorder()
    async with session(fake, "/v5/public/linear", rec) as ws:
        await ws.wait_connected(5)
        await ws.subscribe(["orderbook.50.BTCUSDT"])
        await fake.push(SNAPSHOT)
        msg = await rec.wait_for(lambda m: isinstance(m, s.OrderbookMessage))
    assert msg.data.u == 1 and msg.data.b == [("30000.10", "1.5")]
    assert fake.subscribes()[0][1] == ["orderbook.50.BTCUSDT"]
    assert rec.states[-1] is ConnectionState.CLOSED


async def test_data_before_the_ack_is_kept(fake: FakeWs) -> None:
    fake.send_data_before_ack = {"orderbook.50.BTCUSDT": SNAPSHOT}
    rec = Recorder()
    async with session(fake, "/v5/public/linear", rec) as ws:
        await ws.wait_connected(5)
        await ws.subscribe(["orderbook.50.BTCUSDT"])
        # the snapshot arrived before the ack and was delivered, not dropped
        assert any(isinstance(m, s.OrderbookMessage) for m in rec.messages)


async def test_spot_subscribes_at_most_ten_args(fake: FakeWs) -> None:
    topics = [f"publicTrade.SYM{i}USDT" for i in range(25)]
    rec = Recorder()
    async with session(fake, "/v5/public/spot", rec) as ws:
        await ws.wait_connected(5)
        await ws.subscribe(topics)
    sizes = [len(args) for _, args in fake.subscribes()]
    assert sizes == [10, 10, 5]


async def test_refused_topic_raises(fake: FakeWs) -> None:
    fake.refuse_topics = {"nonsense.BTCUSDT"}
    rec = Recorder()
    async with session(fake, "/v5/public/linear", rec) as ws:
        await ws.wait_connected(5)
        with pytest.raises(SubscriptionError, match="nonsense"):
            await ws.subscribe(["nonsense.BTCUSDT"])
        assert "nonsense.BTCUSDT" not in ws.topics


async def test_drop_reconnect_resubscribe(fake: FakeWs) -> None:
    rec = Recorder()
    topics = ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
    async with session(fake, "/v5/public/linear", rec) as ws:
        await ws.wait_connected(5)
        await ws.subscribe(topics)
        await fake.drop_all()
        async with asyncio.timeout(5):
            while ws.connections < 2:
                await asyncio.sleep(0.01)
        await ws.wait_subscribed(topics, timeout=5)
        await fake.push(SNAPSHOT)
        await rec.wait_for(lambda m: isinstance(m, s.OrderbookMessage))
    by_conn = fake.subscribes()
    assert [n for n, _ in by_conn] == [1, 2]
    assert by_conn[0][1] == by_conn[1][1] == topics
    i = rec.states.index(ConnectionState.DISCONNECTED)
    assert ConnectionState.CONNECTED in rec.states[i:]


async def test_private_auth_then_typed_private_frames(fake: FakeWs) -> None:
    rec = Recorder()
    signer = make_signer(Credentials(API_KEY, API_SECRET))
    async with session(fake, "/v5/private", rec, signer=signer) as ws:
        await ws.wait_connected(5)
        await ws.subscribe(["order", "execution"])
        await fake.push(ORDER)
        msg = await rec.wait_for(lambda m: isinstance(m, s.OrderMessage))
    first = fake.received[0][1]
    assert first["op"] == "auth" and first["args"][0] == API_KEY
    order = msg.data[0]
    assert order.price == Decimal("30000") and order.avgPrice is None
    assert order.orderLinkId is None and order.createdTime == 1700000000000


async def test_private_auth_refused_fails_without_looping(fake: FakeWs) -> None:
    rec = Recorder()
    signer = make_signer(Credentials(API_KEY, "wrong-secret"))
    async with session(fake, "/v5/private", rec, signer=signer) as ws:
        with pytest.raises(AuthError):
            await ws.wait_connected(5)
        assert ws.state is ConnectionState.FAILED
    assert len([m for _, m in fake.received if m.get("op") == "auth"]) == 1


async def test_ping_pong_and_missing_pong_reconnects(fake: FakeWs) -> None:
    rec = Recorder()
    async with session(fake, "/v5/public/spot", rec, ping_interval=0.1, pong_timeout=0.2) as ws:
        await ws.wait_connected(5)
        await asyncio.sleep(0.45)
        assert ws.connections == 1  # pongs came back: no reconnect
        pings = [m for _, m in fake.received if m.get("op") == "ping"]
        assert len(pings) >= 2
        fake.answer_pings = False
        async with asyncio.timeout(5):
            while ws.connections < 2:
                await asyncio.sleep(0.02)
        fake.answer_pings = True
        await ws.wait_connected(5)


async def test_trade_ws_create_and_outcome_unknown(fake: FakeWs) -> None:
    replies: list[str] = []

    async def trade(req: dict) -> dict | None:
        args = req["args"][0]
        mode = args.get("orderLinkId", "")
        replies.append(mode)
        if mode.startswith("silent"):
            return None
        if mode.startswith("limited"):
            return {
                "reqId": req["reqId"],
                "retCode": 10006,
                "retMsg": "Too many visits!",
                "op": req["op"],
                "data": {},
                "retExtInfo": {},
                "connId": "c1",
            }
        return {
            "reqId": req["reqId"],
            "retCode": 0,
            "retMsg": "OK",
            "op": req["op"],
            "data": {"orderId": "77", "orderLinkId": mode},
            "retExtInfo": {},
            "header": {"X-Bapi-Limit": "10"},
            "connId": "c1",
        }

    fake.trade_handler = trade
    env = Environment.custom("http://127.0.0.1:1", fake.url)
    async with TradeWsClient(
        env, Credentials(API_KEY, API_SECRET), timeout=0.3, reconnect_base=0.05
    ) as tws:
        await tws.wait_connected(5)
        ok = await tws.place_order(
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price="30000",
            orderLinkId="good-1",
        )
        assert ok.orderId == "77" and ok.orderLinkId == "good-1"
        with pytest.raises(OrderOutcomeUnknown) as info:
            await tws.place_order(
                category="spot",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.01",
                price="30000",
                orderLinkId="silent-1",
            )
        assert info.value.order_link_id == "silent-1"
        with pytest.raises(RateLimited):
            await tws.place_order(
                category="spot",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.01",
                price="30000",
                orderLinkId="limited-1",
            )
    sent = [m for _, m in fake.received if m.get("op") == "order.create"]
    assert all("X-BAPI-TIMESTAMP" in m["header"] for m in sent)
    assert replies == ["good-1", "silent-1", "limited-1"]


async def test_trade_ws_drop_while_pending_is_outcome_unknown(fake: FakeWs) -> None:
    async def trade(req: dict) -> dict | None:
        return DROP

    fake.trade_handler = trade
    env = Environment.custom("http://127.0.0.1:1", fake.url)
    async with TradeWsClient(
        env, Credentials(API_KEY, API_SECRET), timeout=3, reconnect_base=0.05
    ) as tws:
        await tws.wait_connected(5)
        with pytest.raises(OrderOutcomeUnknown) as info:
            await tws.place_order(
                category="linear",
                symbol="BTCUSDT",
                side="Sell",
                orderType="Market",
                qty="0.01",
                orderLinkId="dropped-1",
            )
        assert info.value.order_link_id == "dropped-1"
        await tws.wait_connected(5)  # and it came back on its own
