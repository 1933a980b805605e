"""Disconnect cancel-all (DCP, REFERENCE §8.12) end to end, over real sockets: the sandbox's
per-account timers, the REST endpoints, the ``dcp.*`` subscriptions and ``enable_dcp`` of the
connectors (and pybit against the same endpoints).

Every test uses the smallest window Bybit allows (3 s). A private connection is kept down past
the window with the sandbox's ``drop_private_ws(refuse_for=...)`` fault: the connector's session
keeps retrying and is refused (HTTP 503) until the time is up, then reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

import bybitkit
from bybitkit.connectors import BybitConnector, PerpetualConnector
from bybitkit.errors import ConfigError, InvalidRequest, PermissionDenied, ValidationError
from bybitkit.sandbox import Sandbox
from bybitkit.trading import OrderState
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import Credentials, make_signer
from bybitkit.v5.environments import Stream
from bybitkit.v5.rest import RestClient
from bybitkit.v5.ws import WsSession

D = Decimal
PAIR = "BTC-USDT"
WINDOW = 3  # seconds: Bybit's minimum
SET_PATH = "/v5/order/disconnected-cancel-all"


def connect(sb: Sandbox, creds: Credentials, kind: str = "sandbox", **opts: Any) -> BybitConnector:
    opts.setdefault("ws_reconnect_base", 0.05)
    opts.setdefault("poll_interval_s", 0.3)
    return bybitkit.connect(kind, credentials=creds, environment=sb.environment, **opts)


def private_session(sb: Sandbox, creds: Credentials, name: str) -> WsSession:
    return WsSession(
        sb.environment.ws_url(Stream.PRIVATE),
        signer=make_signer(creds),
        reconnect_base=0.05,
        name=name,
    )


def below_bid(sb: Sandbox, category: str, ticks: int = 100) -> str:
    tick = sb.market("BTCUSDT", category).inst.tick_size
    bid = sb.book("BTCUSDT", category, 1)["bids"][0][0]
    return str(bid - ticks * tick)


def status_of(sb: Sandbox, creds: Credentials, order_id: str) -> str:
    (order,) = [o for o in sb.orders(creds.api_key) if o["orderId"] == order_id]
    return str(order["orderStatus"])


async def wait_for(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """Poll ``predicate``; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_orders_cancelled_when_down_past_the_window(sandbox: Sandbox) -> None:
    """(a) DCP on for SPOT: the spot order is cancelled (CancelByDCP) once the private stream has
    been down for the window; the linear order (its product is not armed) stays; ``dcp.spot`` is
    subscribed again after the reconnect."""
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key, ("SPOT",))
    async with connect(sandbox, creds) as ex:
        assert await ex.enable_dcp(WINDOW) is True
        infos = (await ex.rest.dcp_info()).dcpInfos
        assert [(i.product, i.dcpStatus, i.timeWindow) for i in infos] == [("SPOT", "ON", WINDOW)]
        assert ex.private is not None and "dcp.spot" in ex.private.topics
        assert sandbox.dcp_status(creds.api_key)["SPOT"]["connections"] == 1

        await ex.order_book(PAIR)
        order = await ex.place_order(PAIR, "buy", "limit", "0.001", below_bid(sandbox, "spot"))
        assert order.exchange_order_id is not None
        linear = await ex.rest.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
            price=below_bid(sandbox, "linear"),
        )  # fmt: skip

        dropped_at = time.monotonic()
        assert sandbox.drop_private_ws(creds.api_key, refuse_for=WINDOW + 1.0) == 1
        await wait_for(
            "the countdown", lambda: sandbox.dcp_status(creds.api_key)["SPOT"]["countdown"], 2
        )
        await wait_for(
            "the DCP cancel",
            lambda: status_of(sandbox, creds, order.exchange_order_id or "") == "Cancelled",
            WINDOW + 2.0,
        )
        assert time.monotonic() - dropped_at >= WINDOW - 0.05  # not before the window
        assert status_of(sandbox, creds, linear.orderId or "") == "New"

        (item,) = (
            await ex.rest.order_history(category="spot", orderId=order.exchange_order_id)
        ).list
        assert (item.orderStatus, item.cancelType) == ("Cancelled", "CancelByDCP")
        await wait_for("the connector to see it", lambda: order.state is OrderState.CANCELLED, 3)
        # the session comes back by itself and arms DCP again
        await wait_for(
            "dcp.spot resubscribed",
            lambda: sandbox.dcp_status(creds.api_key)["SPOT"]["connections"] == 1,
            WINDOW + 3.0,
        )
        assert sandbox.dcp_status(creds.api_key)["SPOT"]["countdown"] is None


async def test_back_within_the_window_cancels_nothing(sandbox: Sandbox) -> None:
    """(b) The stream drops and is back (resubscribed) before the window ends: the countdown is
    cancelled and the order lives on past the window."""
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key, ("SPOT",))
    async with connect(sandbox, creds) as ex:
        assert await ex.enable_dcp(WINDOW) is True
        await ex.order_book(PAIR)
        order = await ex.place_order(PAIR, "buy", "limit", "0.001", below_bid(sandbox, "spot"))
        private = ex.private
        assert private is not None
        connections = private.connections
        assert sandbox.drop_private_ws(creds.api_key) == 1
        await wait_for("the reconnect", lambda: private.connections > connections, 2)
        await wait_for(
            "dcp.spot resubscribed",
            lambda: sandbox.dcp_status(creds.api_key)["SPOT"]["connections"] == 1,
            2,
        )
        assert sandbox.dcp_status(creds.api_key)["SPOT"]["countdown"] is None
        await asyncio.sleep(WINDOW + 0.5)
        assert status_of(sandbox, creds, order.exchange_order_id or "") == "New"
        assert order.state is OrderState.OPEN
        assert not sandbox.dcp.fired


async def test_account_without_dcp_is_not_armed(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """(c) DCP not enabled for the account: the window is accepted (REFERENCE is silent), the
    query lists nothing, enable_dcp answers False with a warning and subscribes nothing; a drop
    past the window cancels nothing. The same for the perpetual connector (DERIVATIVES)."""
    creds = sandbox.create_account()
    caplog.set_level(logging.WARNING, logger="bybitkit.connectors.base")
    async with connect(sandbox, creds) as ex:
        assert await ex.enable_dcp(WINDOW) is False
        assert "DCP is not enabled" in caplog.text
        assert ex.private is not None and not [t for t in ex.private.topics if "dcp" in t]
        assert (await ex.rest.dcp_info()).dcpInfos == []
        assert all(p["connections"] == 0 for p in sandbox.dcp_status(creds.api_key).values())
        await ex.order_book(PAIR)
        order = await ex.place_order(PAIR, "buy", "limit", "0.001", below_bid(sandbox, "spot"))
        # SPOT is enabled only now: the connection never subscribed, so nothing is armed
        sandbox.enable_dcp(creds.api_key, ("SPOT",))
        sandbox.drop_private_ws(creds.api_key)
        await asyncio.sleep(0.3)
        assert sandbox.dcp_status(creds.api_key)["SPOT"]["countdown"] is None
        assert status_of(sandbox, creds, order.exchange_order_id or "") == "New"
    other = sandbox.create_account()
    async with connect(sandbox, other, "sandbox_perpetual") as perp:
        assert await perp.enable_dcp(WINDOW) is False
        assert perp.private is not None and "dcp.future" not in perp.private.topics
    assert sandbox.dcp_status(other.api_key)["DERIVATIVES"]["window"] == WINDOW  # stored


async def test_perpetual_connector_arms_derivatives(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key)  # all three products
    async with connect(sandbox, creds, "sandbox_perpetual") as ex:
        assert isinstance(ex, PerpetualConnector)
        assert await ex.enable_dcp(5) is True
        assert ex.private is not None and "dcp.future" in ex.private.topics
        status = sandbox.dcp_status(creds.api_key)
        assert (status["DERIVATIVES"]["connections"], status["SPOT"]["connections"]) == (1, 0)
        infos = {i.product: i.timeWindow for i in (await ex.rest.dcp_info()).dcpInfos}
        assert infos == {"SPOT": 10, "DERIVATIVES": 5, "OPTIONS": 10}  # 10 s: Bybit's default
        assert await ex.enable_dcp(4, product="OPTIONS") is True
        assert "dcp.option" in ex.private.topics


async def test_paper_connectors_never_call_anything(sandbox: Sandbox) -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"paper enable_dcp used rest.{name}")

    for kind in ("bybit_paper_trade", "bybit_perpetual_paper_trade"):
        ex = bybitkit.connect(kind, environment=sandbox.environment)
        real, ex.rest = ex.rest, NoCalls()  # type: ignore[assignment]
        assert await ex.enable_dcp(WINDOW) is False
        ex.rest = real


async def test_bad_parameters_name_the_field(sandbox: Sandbox) -> None:
    """(d) The sandbox answers 10001 naming the field; the client and the connector refuse the
    same values before sending; a read-only key gets 10005."""
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "timeWindow is required"),
        ({"product": "SPOT"}, "timeWindow is required"),
        ({"product": "SPOT", "timeWindow": 2}, "timeWindow must be within [3, 300]"),
        ({"product": "SPOT", "timeWindow": 301}, "timeWindow must be within [3, 300]"),
        ({"product": "SPOT", "timeWindow": "10"}, "timeWindow must be an integer"),
        ({"product": "SPOT", "timeWindow": True}, "timeWindow must be an integer"),
        ({"product": "FUTURES", "timeWindow": 10}, "product must be"),
        ({"product": "spot", "timeWindow": 10}, "product must be"),
    ]
    async with RestClient(sandbox.environment, creds) as rest:
        for body, text in cases:
            with pytest.raises(InvalidRequest) as info:
                await rest.call("POST", SET_PATH, body, s.EmptyResult)
            assert info.value.ret_code == 10001 and text in info.value.ret_msg, (body, info.value)
        for product, window, name in (("SPOT", 2, "timeWindow"), ("SPOT", 301, "timeWindow"),
                                      ("FUTURES", 10, "product")):  # fmt: skip
            with pytest.raises(ValidationError) as v:
                await rest.set_dcp(product, window)
            assert v.value.field == name
        # nothing was stored by the refused calls
        infos = {i.product: i.timeWindow for i in (await rest.dcp_info()).dcpInfos}
        assert infos == {"SPOT": 10, "DERIVATIVES": 10, "OPTIONS": 10}
        assert isinstance(await rest.set_dcp("SPOT", 300), s.DisconnectedCancelAllResult)
        assert isinstance(await rest.disconnected_cancel_all(3, "DERIVATIVES"), s.EmptyResult)
        infos = {i.product: i.timeWindow for i in (await rest.query_dcp_info()).dcpInfos}
        assert infos == {"SPOT": 300, "DERIVATIVES": 3, "OPTIONS": 10}
    async with connect(sandbox, creds) as ex:
        with pytest.raises(ValidationError):
            await ex.enable_dcp(1)
        with pytest.raises(ValidationError):
            await ex.enable_dcp(10, product="FUTURES")
        assert ex.private is not None and not [t for t in ex.private.topics if "dcp" in t]
    read_only = sandbox.create_account(read_only=True)
    sandbox.enable_dcp(read_only.api_key)
    async with RestClient(sandbox.environment, read_only) as rest:
        with pytest.raises(PermissionDenied):
            await rest.set_dcp("SPOT", 10)
        assert len((await rest.dcp_info()).dcpInfos) == 3  # reading is allowed


@pytest.mark.parametrize(
    ("other_topic", "fires"),
    [("order.linear", True), ("dcp.future", False)],
    ids=["other-not-armed-fires", "other-armed-holds"],
)
async def test_only_dcp_subscribed_connections_count(
    sandbox: Sandbox, other_topic: str, fires: bool
) -> None:
    """(e) Two private connections of one account; the one subscribed to ``dcp.future`` closes.
    If the other one has no ``dcp.*`` subscription it counts for nothing and the linear order is
    cancelled after the window; if it is subscribed too, nothing happens."""
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key, ("DERIVATIVES",))
    async with (
        RestClient(sandbox.environment, creds) as rest,
        private_session(sandbox, creds, "armed") as armed,
        private_session(sandbox, creds, "other") as other,
    ):
        await rest.set_dcp("DERIVATIVES", WINDOW)
        await armed.subscribe(["dcp.future"])
        await other.subscribe([other_topic])
        expected = 2 if other_topic.startswith("dcp.") else 1
        assert sandbox.dcp_status(creds.api_key)["DERIVATIVES"]["connections"] == expected
        ack = await rest.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
            price=below_bid(sandbox, "linear"),
        )  # fmt: skip
        order_id = ack.orderId or ""
        closed_at = time.monotonic()
        await armed.close()
        await wait_for(
            "the server to see the close",
            lambda: sandbox.dcp_status(creds.api_key)["DERIVATIVES"]["connections"] == expected - 1,
            2,
        )
        if fires:
            await wait_for(
                "the DCP cancel",
                lambda: status_of(sandbox, creds, order_id) == "Cancelled",
                WINDOW + 2.0,
            )
            assert time.monotonic() - closed_at >= WINDOW - 0.05
            (item,) = (await rest.order_history(category="linear", orderId=order_id)).list
            assert item.cancelType == "CancelByDCP"
            assert other.connected  # the unarmed connection was up all along
        else:
            assert sandbox.dcp_status(creds.api_key)["DERIVATIVES"]["countdown"] is None
            await asyncio.sleep(WINDOW + 0.5)
            assert status_of(sandbox, creds, order_id) == "New"


async def test_unsubscribe_disarms_and_stop_cancels_countdowns() -> None:
    """Unsubscribing the last ``dcp.*`` topic is an opt-out (no countdown); a countdown still
    running when the sandbox stops is cancelled with it."""
    async with Sandbox(seed=3, simulate=False) as sb:
        creds = sb.create_account()
        sb.enable_dcp(creds.api_key, ("SPOT",))
        async with private_session(sb, creds, "a") as a:
            await a.subscribe(["dcp.spot"])
            await a.unsubscribe(["dcp.spot"])
            await wait_for(
                "the unsubscribe",
                lambda: sb.dcp_status(creds.api_key)["SPOT"]["connections"] == 0,
                2,
            )
        await asyncio.sleep(0.1)
        assert sb.dcp_status(creds.api_key)["SPOT"]["countdown"] is None
        async with private_session(sb, creds, "b") as b:
            await b.subscribe(["dcp.spot"])
        await wait_for("the countdown", lambda: bool(sb.dcp.countdowns), 2)
        (countdown,) = sb.dcp.countdowns.values()
    assert countdown.handle.cancelled() and not sb.dcp.countdowns and not sb.dcp.fired


async def test_pybit_sets_and_queries_dcp(sandbox: Sandbox) -> None:
    """pybit's ``set_dcp`` / ``query_dcp_info`` against the sandbox (pybit's own signing)."""
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key, ("SPOT", "DERIVATIVES"))
    session = HTTP(api_key=creds.api_key, api_secret=creds.api_secret)
    session.endpoint = sandbox.rest_url
    try:
        answer = await asyncio.to_thread(session.set_dcp, product="SPOT", timeWindow=WINDOW)
        assert answer["retCode"] == 0
        info = await asyncio.to_thread(session.query_dcp_info)
        assert info["result"]["dcpInfos"] == [
            {"product": "SPOT", "dcpStatus": "ON", "timeWindow": str(WINDOW)},
            {"product": "DERIVATIVES", "dcpStatus": "ON", "timeWindow": "10"},
        ]
        with pytest.raises(InvalidRequestError) as bad:
            await asyncio.to_thread(session.set_dcp, product="SPOT", timeWindow=1)
        assert bad.value.status_code == 10001 and "timeWindow" in bad.value.message
    finally:
        session.client.close()


async def test_controls_validate(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    with pytest.raises(ConfigError):
        sandbox.enable_dcp(creds.api_key, ("FUTURES",))
    with pytest.raises(ConfigError):
        sandbox.enable_dcp("no-such-key")
    with pytest.raises(ConfigError):
        sandbox.drop_private_ws(creds.api_key, refuse_for=-1)
    sandbox.enable_dcp(creds.api_key, "OPTIONS")
    assert [p for p, v in sandbox.dcp_status(creds.api_key).items() if v["enabled"]] == ["OPTIONS"]


async def test_admin_routes(sandbox: Sandbox) -> None:
    """The same controls for bots in another process, under ``/sandbox/``."""
    creds = sandbox.create_account()
    async with aiohttp.ClientSession(sandbox.rest_url) as http:
        async with http.post("/sandbox/dcp", json={"api_key": creds.api_key}) as r:
            assert r.status == 200
        async with http.post("/sandbox/dcp", json={"api_key": creds.api_key, "products": 3}) as r:
            assert r.status == 400
        async with http.get(f"/sandbox/dcp/{creds.api_key}") as r:
            status = await r.json()
        assert {p: v["enabled"] for p, v in status.items()} == dict.fromkeys(
            ("SPOT", "DERIVATIVES", "OPTIONS"), True
        )
        async with private_session(sandbox, creds, "p") as p:
            await p.subscribe(["dcp.spot"])
            body = {"api_key": creds.api_key, "refuse_for": 0.5}
            async with http.post("/sandbox/faults/drop-private-ws", json=body) as r:
                assert await r.json() == {"dropped": 1}
            await wait_for("the drop", lambda: not p.connected, 2)
            await wait_for("the reconnect", lambda: p.connections == 2 and p.connected, 3)
            await p.wait_subscribed(["dcp.spot"], timeout=2)
        # closed for good: the countdown runs (and is cancelled when the sandbox stops)
        await wait_for(
            "the countdown",
            lambda: sandbox.dcp_status(creds.api_key)["SPOT"]["countdown"] is not None,
            2,
        )


async def silent_private(sb: Sandbox, creds: Credentials, http: aiohttp.ClientSession) -> Any:
    """A private connection that authenticates, arms ``dcp.spot`` and then says nothing more:
    a client whose machine vanished without closing its socket."""
    ws = await http.ws_connect(sb.ws_url + "/v5/private")
    expires = int(time.time() * 1000) + 10_000
    await ws.send_json({"op": "auth", "args": auth_args(creds, expires)})
    assert (await ws.receive_json(timeout=2))["success"] is True
    await ws.send_json({"op": "subscribe", "req_id": "d", "args": ["dcp.spot"]})
    assert (await ws.receive_json(timeout=2))["success"] is True
    return ws


def auth_args(creds: Credentials, expires: int) -> list[Any]:
    from bybitkit.v5.auth import ws_auth_args

    return ws_auth_args(make_signer(creds), expires)


async def test_a_silent_client_is_cut_and_its_orders_cancelled(sandbox: Sandbox) -> None:
    """A client that stops talking without closing (no ping, no request) is cut once the idle
    limit passes (10 minutes on Bybit, 1 s here) and DCP then cancels its orders: without the
    cut, a vanished client was never "disconnected" and its orders stayed on the book. A client
    that keeps pinging is never cut."""
    sandbox.set_ws_idle_timeout(1.0)
    creds = sandbox.create_account()
    sandbox.enable_dcp(creds.api_key, ("SPOT",))
    async with RestClient(sandbox.environment, creds) as rest, aiohttp.ClientSession() as http:
        await rest.set_dcp("SPOT", WINDOW)
        order = await rest.place_order(
            category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
            price=below_bid(sandbox, "spot"),
        )  # fmt: skip
        silent = await silent_private(sandbox, creds, http)
        talker = await http.ws_connect(sandbox.ws_url + "/v5/public/spot")
        assert sandbox.dcp_status(creds.api_key)["SPOT"]["connections"] == 1
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.6:  # the talker pings every 0.3 s, the silent one never
            await talker.send_json({"op": "ping"})
            await asyncio.sleep(0.3)
        msg = await silent.receive(timeout=1)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        assert not talker.closed
        await wait_for(
            "the DCP cancel",
            lambda: status_of(sandbox, creds, order.orderId or "") == "Cancelled",
            WINDOW + 2.0,
        )
        assert time.monotonic() - t0 >= 1.0 + WINDOW - 0.05  # idle limit, then the window
        await silent.close()
        await talker.close()


async def test_max_active_time_sets_a_connections_idle_limit(sandbox: Sandbox) -> None:
    """``?max_active_time=`` on private and trade streams (REFERENCE §11.1): 30s to 600s or
    1m to 10m; anything else is refused at the handshake with the reason."""
    async with aiohttp.ClientSession() as http:
        for query, limit in (("30s", 30.0), ("2m", 120.0), ("600s", 600.0), ("10m", 600.0)):
            for path in ("/v5/private", "/v5/trade"):
                ws = await http.ws_connect(f"{sandbox.ws_url}{path}?max_active_time={query}")
                (conn,) = [c for c in sandbox.streams.conns if c.kind == path.rsplit("/")[-1]]
                assert conn.max_idle == limit
                await ws.close()
                await wait_for("the close", lambda: not sandbox.streams.conns, 2)
        for bad in ("29s", "601s", "11m", "0m", "1h", "60", "-1m", "１m", ""):
            url = f"{sandbox.ws_url}/v5/private?max_active_time={bad}"
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(url)
            assert info.value.status == 400
            async with http.get(url) as r:
                assert r.status == 400 and "max_active_time" in await r.text()
        ws = await http.ws_connect(f"{sandbox.ws_url}/v5/public/spot?max_active_time=1m")
        assert [c.max_idle for c in sandbox.streams.conns] == [None]  # public: not applied
        await ws.close()
        for body, status in (({"seconds": 42}, 200), ({"seconds": -1}, 400), ({}, 400)):
            async with http.post(sandbox.rest_url + "/sandbox/ws-idle-timeout", json=body) as r:
                assert r.status == status, await r.text()
        assert sandbox.streams.idle_timeout == 42.0
    with pytest.raises(ValidationError, match="seconds"):
        sandbox.set_ws_idle_timeout(0)
