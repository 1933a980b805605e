"""The REST client against a Bybit look-alike on 127.0.0.1 (real sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web

from bybitkit.errors import (
    BatchOutcomeUnknown,
    InvalidSignature,
    IpBanned,
    NotModified,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    RateLimited,
    ServiceOverloaded,
)
from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment
from bybitkit.v5.rest import RestClient

from .fakes import API_KEY, API_SECRET, FakeRest, Seen, envelope, now_ms

CREATE = {
    "category": "linear",
    "symbol": "BTCUSDT",
    "side": "Buy",
    "orderType": "Limit",
    "qty": Decimal("0.001"),
    "price": Decimal("30000"),
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeRest]:
    server = FakeRest()
    await server.start()
    yield server
    await server.stop()


def client(fake: FakeRest, **kw: object) -> RestClient:
    env = Environment.custom(fake.url, fake.url.replace("http", "ws"))
    return RestClient(env, Credentials(API_KEY, API_SECRET), **kw)  # type: ignore[arg-type]


async def test_signature_covers_exactly_the_bytes_sent(fake: FakeRest) -> None:
    async with client(fake, broker_id="bbk-broker") as rest:
        await rest.call(
            "GET", "/v5/position/list", {"symbol": "BTCUSDT", "category": "linear"}, dict
        )  # type: ignore[arg-type]
        await rest.place_order(**CREATE, orderLinkId="link-1")
    get, post = fake.seen
    assert get.raw_query == "symbol=BTCUSDT&category=linear"  # the caller's order, as signed
    assert post.body == (
        b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit",'
        b'"qty":"0.001","price":"30000","orderLinkId":"link-1"}'
    )
    for seen in (get, post):
        h = seen.headers
        payload = seen.raw_query.encode() if seen.method == "GET" else seen.body
        message = (h["X-BAPI-TIMESTAMP"] + API_KEY + h["X-BAPI-RECV-WINDOW"]).encode() + payload
        assert (
            h["X-BAPI-SIGN"] == hmac.new(API_SECRET.encode(), message, hashlib.sha256).hexdigest()
        )
        assert h["X-BAPI-RECV-WINDOW"] == "5000" and h["X-BAPI-SIGN-TYPE"] == "2"
        assert h["Referer"] == "bbk-broker"
    assert post.headers["Content-Type"] == "application/json"
    assert fake.bad_signatures == 0


async def test_no_broker_header_unless_configured(fake: FakeRest) -> None:
    async with client(fake) as rest:
        await rest.wallet_balance()
    assert "Referer" not in fake.seen[0].headers


async def test_wrong_secret_is_a_typed_error(fake: FakeRest) -> None:
    env = Environment.custom(fake.url, "ws://127.0.0.1:1")
    async with RestClient(env, Credentials(API_KEY, "wrong")) as rest:
        with pytest.raises(InvalidSignature, match="10004"):
            await rest.account_info()


async def test_10002_resyncs_the_clock_and_retries_once(fake: FakeRest) -> None:
    fake.clock_offset_ms = 30_000  # the server is 30 s ahead of us
    async with client(fake) as rest:
        result = await rest.place_order(**CREATE, orderLinkId="ts-1")
        assert result.orderLinkId == "ts-1"
        assert abs(rest.clock.offset_ms - 30_000) < 1_000
    creates = fake.calls("/v5/order/create")
    assert len(creates) == 2  # refused once, then signed again with a fresh timestamp
    assert creates[0].headers["X-BAPI-TIMESTAMP"] != creates[1].headers["X-BAPI-TIMESTAMP"]
    assert creates[0].body == creates[1].body  # same orderLinkId: no new order id invented
    assert len(fake.calls("/v5/market/time")) == 1


def _rate_limited(reset_ms_from_now: int | None) -> object:
    async def handler(request: web.Request, seen: Seen) -> web.Response:
        headers = {"X-Bapi-Limit": "50", "X-Bapi-Limit-Status": "0"}
        if reset_ms_from_now is not None:
            headers["X-Bapi-Limit-Reset-Timestamp"] = str(now_ms() + reset_ms_from_now)
        return web.json_response(envelope(code=10006, msg="Too many visits!"), headers=headers)

    return handler


@pytest.mark.parametrize("reset_ms", [400, None])
async def test_10006_on_a_read_waits_for_the_reset_then_retries(
    fake: FakeRest, reset_ms: int | None
) -> None:
    fake.script("/v5/account/wallet-balance", _rate_limited(reset_ms))  # type: ignore[arg-type]
    async with client(fake, rate_limit_backoff=0.3) as rest:
        t0 = time.monotonic()
        wallet = await rest.wallet_balance()
        elapsed = time.monotonic() - t0
    assert wallet.list[0].totalEquity == Decimal("100")
    calls = fake.calls("/v5/account/wallet-balance")
    assert len(calls) == 2
    gap = calls[1].at - calls[0].at
    assert gap >= (0.35 if reset_ms else 0.25), gap  # header reset, or the default back-off
    assert elapsed < 3


async def test_10006_on_a_write_raises_and_holds_that_endpoint(fake: FakeRest) -> None:
    fake.script("/v5/order/create", _rate_limited(500))  # type: ignore[arg-type]
    async with client(fake) as rest:
        with pytest.raises(RateLimited) as info:
            await rest.place_order(**CREATE)
        assert info.value.reset_at_ms is not None
        t0 = time.monotonic()
        await rest.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="x")
        assert time.monotonic() - t0 < 0.3  # another endpoint is not held
        await rest.place_order(**CREATE)  # waits for the reset, then goes through
        assert time.monotonic() - t0 >= 0.35
    assert len(fake.calls("/v5/order/create")) == 2


async def test_403_bans_all_rest_traffic_without_retrying(fake: FakeRest) -> None:
    async def banned(request: web.Request, seen: Seen) -> web.Response:
        return web.Response(status=403, text="access too frequent")

    fake.script("/v5/account/info", banned)
    async with client(fake, ban_seconds=600) as rest:
        with pytest.raises(IpBanned) as info:
            await rest.account_info()
        assert info.value.retry_after == 600
        with pytest.raises(IpBanned):
            await rest.wallet_balance()
        with pytest.raises(IpBanned):
            await rest.place_order(**CREATE)
        assert rest.banned_for > 590
    assert len(fake.seen) == 1  # nothing else reached the server


async def test_429_is_retried_for_reads_only(fake: FakeRest) -> None:
    async def busy(request: web.Request, seen: Seen) -> web.Response:
        return web.Response(status=429, text="system busy")

    fake.script("/v5/account/info", busy, busy)
    fake.script("/v5/order/cancel", busy)
    async with client(fake) as rest:
        await rest.account_info()
        with pytest.raises(ServiceOverloaded):
            await rest.cancel_order(category="spot", symbol="BTCUSDT", orderId="1")
    assert len(fake.calls("/v5/account/info")) == 3
    assert len(fake.calls("/v5/order/cancel")) == 1


async def _http_502(request: web.Request, seen: Seen) -> web.Response:
    return web.Response(status=502, text="bad gateway")


async def test_5xx_on_create_is_outcome_unknown_never_retried(fake: FakeRest) -> None:
    fake.script("/v5/order/create", _http_502, _http_502)
    async with client(fake) as rest:
        with pytest.raises(OrderOutcomeUnknown) as info:
            await rest.place_order(**CREATE, orderLinkId="mine-1")
        assert info.value.order_link_id == "mine-1"
        with pytest.raises(OrderOutcomeUnknown) as info2:
            await rest.place_order(**CREATE)  # no id given: one was made and is reported
        sent = json.loads(fake.calls("/v5/order/create")[1].body)
        assert info2.value.order_link_id == sent["orderLinkId"] != ""
    assert len(fake.calls("/v5/order/create")) == 2


async def test_5xx_on_cancel_is_outcome_unknown_and_reads_retry(fake: FakeRest) -> None:
    fake.script("/v5/order/cancel", _http_502)
    fake.script("/v5/order/realtime", _http_502)
    async with client(fake) as rest:
        with pytest.raises(OutcomeUnknown):
            await rest.cancel_order(category="spot", symbol="BTCUSDT", orderLinkId="a")
        await rest.call("GET", "/v5/order/realtime", {"category": "spot"}, dict)  # type: ignore[arg-type]
    assert len(fake.calls("/v5/order/realtime")) == 2


async def test_timeout_on_create_is_outcome_unknown(fake: FakeRest) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request, seen: Seen) -> None:
        try:
            await asyncio.wait_for(release.wait(), 2.0)
        except TimeoutError:
            pass
        return None

    fake.script("/v5/order/create", slow)
    async with client(fake, timeout=0.3) as rest:
        t0 = time.monotonic()
        with pytest.raises(OrderOutcomeUnknown, match="timed out") as info:
            await rest.place_order(**CREATE, orderLinkId="slow-1")
        assert time.monotonic() - t0 < 1.5
        assert info.value.order_link_id == "slow-1"
    release.set()
    assert len(fake.calls("/v5/order/create")) == 1


@pytest.mark.parametrize("code", [10000, 10016, 110079])
async def test_busy_codes_on_create_are_outcome_unknown(fake: FakeRest, code: int) -> None:
    async def busy(request: web.Request, seen: Seen) -> web.Response:
        return web.json_response(envelope(code=code, msg="server busy"))

    fake.script("/v5/order/create", busy)
    async with client(fake) as rest:
        with pytest.raises(OrderOutcomeUnknown):
            await rest.place_order(**CREATE)
    assert len(fake.calls("/v5/order/create")) == 1


async def test_batch_create_unknown_reports_every_link_id(fake: FakeRest) -> None:
    fake.script("/v5/order/create-batch", _http_502)
    orders = [dict(CREATE, orderLinkId=f"b-{i}") for i in range(3)]
    async with client(fake) as rest:
        with pytest.raises(BatchOutcomeUnknown) as info:
            await rest.place_batch("linear", orders)
    assert info.value.order_link_ids == ("b-0", "b-1", "b-2")


async def test_batch_results_carry_per_item_codes(fake: FakeRest) -> None:
    async def answer(request: web.Request, seen: Seen) -> web.Response:
        req = json.loads(seen.body)["request"]
        result = {
            "list": [
                {
                    "category": "linear",
                    "symbol": o["symbol"],
                    "orderId": "" if i else "9",
                    "orderLinkId": o["orderLinkId"],
                    "createAt": "" if i else "1",
                }
                for i, o in enumerate(req)
            ]
        }
        ext = {"list": [{"code": 0, "msg": "OK"}, {"code": 110072, "msg": "duplicate"}]}
        return web.json_response(envelope(result, ext=ext))

    fake.script("/v5/order/create-batch", answer)
    orders = [dict(CREATE, orderLinkId="ok-1"), dict(CREATE, orderLinkId="dup-1")]
    async with client(fake) as rest:
        items = await rest.place_batch("linear", orders)
    assert [i.ok for i in items] == [True, False]
    assert items[1].code == 110072 and items[1].result.orderId is None


async def test_not_modified_is_typed(fake: FakeRest) -> None:
    async def same(request: web.Request, seen: Seen) -> web.Response:
        return web.json_response(envelope(code=110043, msg="Set leverage not modified"))

    fake.script("/v5/position/set-leverage", same)
    async with client(fake) as rest:
        with pytest.raises(NotModified):
            await rest.set_leverage("linear", "BTCUSDT", "10", "10")


async def test_rate_limiter_spaces_a_burst_and_cancels_still_pass(fake: FakeRest) -> None:
    fake.limits["/v5/order/create"] = 10  # Bybit's linear create limit, rolling 1 s
    async with client(fake) as rest:
        t0 = time.monotonic()
        creates = [
            asyncio.create_task(rest.place_order(**CREATE, orderLinkId=f"burst-{i}"))
            for i in range(30)
        ]
        await asyncio.sleep(0.2)
        c0 = time.monotonic()
        await rest.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="burst-0")
        cancel_latency = time.monotonic() - c0
        await asyncio.gather(*creates)
        elapsed = time.monotonic() - t0
    assert fake.rate_limited == 0  # never a 10006
    assert len(fake.calls("/v5/order/create")) == 30
    assert elapsed >= 1.9  # 30 at 10/s: three windows
    assert cancel_latency < 0.3  # not queued behind the creates


async def test_pagination_follows_cursors(fake: FakeRest) -> None:
    pages = {
        None: ({"orderId": "1"}, "c1"),
        "c1": ({"orderId": "2"}, "c2"),
        "c2": ({"orderId": "3"}, ""),
    }

    async def page(request: web.Request, seen: Seen) -> web.Response:
        cursor = request.query.get("cursor")
        item, nxt = pages[cursor]
        order = {
            "orderId": item["orderId"],
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderStatus": "Filled",
            "price": "1",
            "qty": "1",
        }
        return web.json_response(
            envelope({"category": "spot", "list": [order], "nextPageCursor": nxt})
        )

    fake.script("/v5/order/history", page, page, page)
    async with client(fake) as rest:
        ids = [o.orderId async for o in rest.paginate(rest.order_history, category="spot")]
    assert ids == ["1", "2", "3"]
