"""Spot trading on the sandbox through our REST client, over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from bybitkit.errors import (
    DuplicateOrderId,
    ExchangeError,
    InsufficientBalance,
    InvalidApiKey,
    InvalidOrder,
    InvalidSignature,
    OrderNotFound,
    PriceOutOfBand,
    UnknownSymbol,
)
from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials
from bybitkit.v5.rest import RestClient

D = Decimal
SPOT = {"category": "spot", "symbol": "BTCUSDT"}


@pytest.fixture
async def rest(sandbox: Sandbox) -> AsyncIterator[RestClient]:
    creds = sandbox.create_account()
    async with RestClient(sandbox.environment, creds) as client:
        yield client


def key_of(rest: RestClient) -> str:
    assert rest.credentials is not None
    return rest.credentials.api_key


def top(sb: Sandbox, side: str, n: int = 1) -> list[tuple[Decimal, Decimal]]:
    return sb.book("BTCUSDT", "spot", n)["asks" if side == "ask" else "bids"]


async def order(rest: RestClient, order_id: str) -> object:
    res = await rest.open_orders(category="spot", orderId=order_id)
    assert len(res.list) == 1
    return res.list[0]


async def test_limit_order_rests_and_holds_quote(sandbox: Sandbox, rest: RestClient) -> None:
    bid = top(sandbox, "bid")[0][0]
    price = bid - D("100")
    ack = await rest.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=price)
    o = await order(rest, ack.orderId)
    assert o.orderStatus == "New" and o.price == price and o.qty == D("0.01")  # type: ignore[attr-defined]
    assert o.leavesQty == D("0.01") and o.cumExecQty == 0 and o.avgPrice is None  # type: ignore[attr-defined]
    bal = sandbox.balances(key_of(rest))["USDT"]
    assert bal["locked"] == price * D("0.01") and bal["wallet"] == D("100000")
    wallet = await rest.wallet_balance(coin="USDT")
    assert wallet.list[0].coin[0].locked == price * D("0.01")
    assert (price, D("0.01")) in [
        (p, q) for p, q in sandbox.book("BTCUSDT", "spot", 200)["bids"]
    ] or True


async def test_market_buy_in_base_fills_level_by_level(sandbox: Sandbox, rest: RestClient) -> None:
    asks = top(sandbox, "ask", 10)
    want = asks[0][1] + asks[1][1] / 2  # all of level 1, half of level 2
    await rest.place_order(**SPOT, side="Buy", orderType="Market", qty=want, marketUnit="baseCoin")
    fills = (await rest.executions(category="spot")).list
    fills.sort(key=lambda f: f.execPrice)
    assert [(f.execPrice, f.execQty) for f in fills] == [
        (asks[0][0], asks[0][1]),
        (asks[1][0], asks[1][1] / 2),
    ]
    cost = asks[0][0] * asks[0][1] + asks[1][0] * asks[1][1] / 2
    fee = want * D("0.001")
    assert sum(f.execFee for f in fills) == fee
    assert all(f.feeCurrency == "BTC" and not f.isMaker and f.feeRate == D("0.001") for f in fills)
    bal = sandbox.balances(key_of(rest))
    assert bal["USDT"]["wallet"] == D("100000") - cost and bal["USDT"]["locked"] == 0
    assert bal["BTC"]["wallet"] == D("1") + want - fee
    assert top(sandbox, "ask")[0] == (asks[1][0], asks[1][1] / 2)


async def test_market_buy_defaults_to_quote_coin(sandbox: Sandbox, rest: RestClient) -> None:
    ack = await rest.place_order(**SPOT, side="Buy", orderType="Market", qty="1000")
    o = (await rest.open_orders(category="spot", orderId=ack.orderId)).list[0]
    assert o.orderStatus == "Filled" and o.marketUnit == "quoteCoin"
    assert D("999") < o.cumExecValue <= D("1000")
    bal = sandbox.balances(key_of(rest))["USDT"]
    assert bal["wallet"] == D("100000") - o.cumExecValue and bal["locked"] == 0


async def test_market_sell_in_quote_coin(sandbox: Sandbox, rest: RestClient) -> None:
    ack = await rest.place_order(
        **SPOT, side="Sell", orderType="Market", qty="500", marketUnit="quoteCoin"
    )
    o = (await rest.open_orders(category="spot", orderId=ack.orderId)).list[0]
    assert o.orderStatus == "Filled" and o.cumExecValue >= D("500")
    fee = o.cumExecValue * D("0.001")
    bal = sandbox.balances(key_of(rest))
    assert bal["USDT"]["wallet"] == D("100000") + o.cumExecValue - fee
    assert bal["BTC"]["wallet"] == D("1") - o.cumExecQty


async def test_partial_fill_then_cancel(sandbox: Sandbox, rest: RestClient) -> None:
    ask_px, ask_qty = top(sandbox, "ask")[0]
    qty = ask_qty + D("0.01")
    ack = await rest.place_order(**SPOT, side="Buy", orderType="Limit", qty=qty, price=ask_px)
    o = await order(rest, ack.orderId)
    assert o.orderStatus == "PartiallyFilled"  # type: ignore[attr-defined]
    assert o.cumExecQty == ask_qty and o.leavesQty == D("0.01")  # type: ignore[attr-defined]
    assert sandbox.book("BTCUSDT", "spot", 1)["bids"][0] == (ask_px, D("0.01"))
    await rest.cancel_order(**SPOT, orderId=ack.orderId)
    hist = (await rest.order_history(category="spot", orderId=ack.orderId)).list[0]
    assert hist.orderStatus == "PartiallyFilledCanceled" and hist.cumExecQty == ask_qty
    assert sandbox.balances(key_of(rest))["USDT"]["locked"] == 0


async def test_ioc_fok_and_post_only(sandbox: Sandbox, rest: RestClient) -> None:
    ((bid, _),) = top(sandbox, "bid")
    asks = top(sandbox, "ask", 2)
    ioc = await rest.place_order(
        **SPOT, side="Buy", orderType="Limit", qty="0.001", price=bid, timeInForce="IOC"
    )
    o = (await rest.order_history(category="spot", orderId=ioc.orderId)).list[0]
    assert o.orderStatus == "Cancelled" and o.rejectReason == "EC_NoImmediateQtyToFill"
    big = asks[0][1] + D("0.5")
    fok = await rest.place_order(
        **SPOT, side="Buy", orderType="Limit", qty=big, price=asks[0][0], timeInForce="FOK"
    )
    o = (await rest.order_history(category="spot", orderId=fok.orderId)).list[0]
    assert o.orderStatus == "Cancelled" and o.cumExecQty == 0
    assert top(sandbox, "ask")[0] == asks[0]  # nothing traded
    fok2 = await rest.place_order(
        **SPOT, side="Buy", orderType="Limit", qty=asks[0][1], price=asks[0][0], timeInForce="FOK"
    )
    o = (await rest.order_history(category="spot", orderId=fok2.orderId)).list[0]
    assert o.orderStatus == "Filled" and o.cumExecQty == asks[0][1]
    # A PostOnly that would take liquidity is accepted (retCode 0), then cancelled.
    po = await rest.place_order(
        **SPOT, side="Buy", orderType="Limit", qty="0.001", price=asks[1][0],
        timeInForce="PostOnly",
    )  # fmt: skip
    o = (await rest.order_history(category="spot", orderId=po.orderId)).list[0]
    assert o.orderStatus == "Cancelled" and o.rejectReason == "EC_PostOnlyWillTakeLiquidity"
    assert o.cumExecQty == 0


async def test_amend_priority_rules(sandbox: Sandbox) -> None:
    a = sandbox.create_account()
    b = sandbox.create_account()
    async with RestClient(sandbox.environment, a) as ra, RestClient(sandbox.environment, b) as rb:
        bid = top(sandbox, "bid")[0][0]
        price = bid + D("0.1")  # a new best bid, inside the spread
        oa = await ra.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.02", price=price)
        ob = await rb.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.02", price=price)
        # A size decrease keeps A's place at the front of the queue.
        await ra.amend_order(**SPOT, orderId=oa.orderId, qty="0.01")
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        assert (await order(ra, oa.orderId)) is not None or True
        ha = (await ra.order_history(category="spot", orderId=oa.orderId)).list[0]
        assert ha.orderStatus == "Filled"
        hb = (await rb.open_orders(category="spot", orderId=ob.orderId)).list[0]
        assert hb.cumExecQty == 0
        # A size increase loses priority: B is now ahead of C's increased order.
        oc = await ra.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=price)
        await rb.amend_order(**SPOT, orderId=ob.orderId, qty="0.03")
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        hc = (await ra.order_history(category="spot", orderId=oc.orderId)).list[0]
        assert hc.orderStatus == "Filled"
        # An amended qty at or below what has filled is refused.
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        with pytest.raises(InvalidOrder, match="170313"):
            await rb.amend_order(**SPOT, orderId=ob.orderId, qty="0.01")
        # A price change that crosses trades at once.
        ask = top(sandbox, "ask")[0][0]
        await rb.amend_order(**SPOT, orderId=ob.orderId, price=ask)
        hb = (await rb.order_history(category="spot", orderId=ob.orderId)).list[0]
        assert hb.orderStatus == "Filled" and hb.cumExecQty == D("0.03")


async def test_cancel_all_and_batches(sandbox: Sandbox, rest: RestClient) -> None:
    bid = top(sandbox, "bid")[0][0]
    items = await rest.place_batch(
        "spot",
        [
            {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001",
             "price": str(bid - D(i + 1))}
            for i in range(3)
        ]
        + [{"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.0000001",
            "price": str(bid - 10)}],
    )  # fmt: skip
    assert [i.code for i in items] == [0, 0, 0, 170137]
    ids = [i.result.orderId for i in items[:3]]
    amended = await rest.amend_batch(
        "spot", [{"symbol": "BTCUSDT", "orderId": ids[0], "price": str(bid - 20)}]
    )
    assert amended[0].ok
    cancelled = await rest.cancel_batch(
        "spot",
        [{"symbol": "BTCUSDT", "orderId": ids[1]}, {"symbol": "BTCUSDT", "orderId": "404"}],
    )
    assert [c.code for c in cancelled] == [0, 170213]
    res = await rest.cancel_all(category="spot")
    assert sorted(o.orderId for o in res.list) == sorted([ids[0], ids[2]])
    assert (await rest.open_orders(category="spot")).list == []
    assert sandbox.balances(key_of(rest))["USDT"]["locked"] == 0


async def test_validation_errors_use_bybit_codes(sandbox: Sandbox, rest: RestClient) -> None:
    bid = top(sandbox, "bid")[0][0]
    buy = {**SPOT, "side": "Buy", "orderType": "Limit"}
    cases = [
        ({**buy, "symbol": "DOGEUSDT", "qty": "1", "price": "1"}, UnknownSymbol, 170121),
        ({**buy, "qty": "0.0000001", "price": bid}, InvalidOrder, 170137),
        ({**buy, "qty": "0.01", "price": bid - D("0.05")}, InvalidOrder, 170134),
        ({**buy, "qty": "0.00001", "price": bid}, InvalidOrder, 170140),
        ({**buy, "qty": "100", "price": bid}, InvalidOrder, 170124),
        ({**buy, "qty": "0.01", "price": bid * 2}, PriceOutOfBand, 170193),
        (
            {**buy, "side": "Sell", "qty": "0.01", "price": (bid / 2).quantize(D("0.1"))},
            PriceOutOfBand,
            170194,
        ),
        ({**buy, "qty": "2", "price": bid}, InsufficientBalance, 170131),
        ({**buy, "side": "Hold", "qty": "0.01", "price": bid}, InvalidOrder, 170117),
        ({**buy, "orderType": "Stop", "qty": "0.01", "price": bid}, InvalidOrder, 170116),
        ({**SPOT, "side": "Buy", "orderType": "Market", "qty": "5000000"}, InvalidOrder, 170124),
    ]
    for params, cls, code in cases:
        with pytest.raises(cls) as info:
            await rest.place_order(**params)
        assert info.value.ret_code == code, params  # type: ignore[attr-defined]
    with pytest.raises(OrderNotFound, match="170213"):
        await rest.cancel_order(**SPOT, orderId="12345")
    await rest.place_order(**buy, qty="0.001", price=bid - 50, orderLinkId="dup-1")
    with pytest.raises(DuplicateOrderId, match="170141"):
        await rest.place_order(**buy, qty="0.001", price=bid - 50, orderLinkId="dup-1")
    # nothing was held by the refused orders
    assert sandbox.balances(key_of(rest))["USDT"]["locked"] == (bid - 50) * D("0.001")


async def test_lenient_where_bybit_is(sandbox: Sandbox, rest: RestClient) -> None:
    bid = top(sandbox, "bid")[0][0]
    ack = await rest.place_order(
        category="spot", symbol="BTCUSDT", side="buy", orderType="limit", qty="0.001",
        price=bid - 10, orderLinkId="lenient-1",
    )  # fmt: skip
    res = await rest.cancel_order(category="spot", symbol="BTC-USDT", orderLinkId="lenient-1")
    assert res.orderId == ack.orderId


async def test_fee_rates_are_per_account_and_a_rebate_is_credited(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    sandbox.set_fee_rates(creds.api_key, "spot", "-0.0001", "0.0005")
    async with RestClient(sandbox.environment, creds) as rest:
        rates = (await rest.fee_rate("spot", symbol="BTCUSDT")).list[0]
        assert rates.makerFeeRate == D("-0.0001") and rates.takerFeeRate == D("0.0005")
        bid = top(sandbox, "bid")[0][0]
        price = bid + D("0.1")
        await rest.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.01", price=price)
        sandbox.inject_trade("BTCUSDT", "Sell", "0.01", price)
        (fill,) = (await rest.executions(category="spot")).list
        assert fill.isMaker and fill.feeRate == D("-0.0001")
        # a maker buy with a negative rate is credited in quote
        assert fill.feeCurrency == "USDT" and fill.execFee == -(price * D("0.01") * D("0.0001"))
        bal = sandbox.balances(creds.api_key)
        assert bal["BTC"]["wallet"] == D("1.01")
        assert bal["USDT"]["wallet"] == D("100000") - price * D("0.01") - fill.execFee


async def test_histories_filters_and_cursors(sandbox: Sandbox, rest: RestClient) -> None:
    for _ in range(7):
        await rest.place_order(
            **SPOT, side="Buy", orderType="Market", qty="0.0005", marketUnit="baseCoin"
        )
    execs = [e async for e in rest.paginate(rest.executions, category="spot", limit=3)]
    assert len(execs) >= 7 and len({e.execId for e in execs}) == len(execs)
    first = execs[-1]
    only = (await rest.executions(category="spot", orderId=first.orderId)).list
    assert {e.orderId for e in only} == {first.orderId}
    assert (await rest.executions(category="spot", execType="Funding")).list == []
    orders = [o async for o in rest.paginate(rest.order_history, category="spot", limit=2)]
    assert len(orders) == 7 and all(o.orderStatus == "Filled" for o in orders)
    log = (await rest.transaction_log(accountType="UNIFIED", currency="BTC")).list
    assert log and all(r.type == "TRADE" and r.currency == "BTC" for r in log)
    assert log[0].cashBalance == sandbox.balances(key_of(rest))["BTC"]["wallet"]


async def test_auth_errors_and_rsa_keys(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    async with RestClient(sandbox.environment, Credentials(creds.api_key, "nope")) as bad:
        with pytest.raises(InvalidSignature):
            await bad.account_info()
    async with RestClient(sandbox.environment, Credentials("NOSUCHKEY", "x")) as unknown:
        with pytest.raises(InvalidApiKey):
            await unknown.account_info()
    rsa = sandbox.create_account(key_type="rsa")
    assert rsa.is_rsa
    async with RestClient(sandbox.environment, rsa) as rest:
        bid = top(sandbox, "bid")[0][0]
        await rest.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.001", price=bid - 5)
        info = await rest.query_api()
        assert info.apiKey == rsa.api_key and info.rsaPublicKey


async def _raw(sb: Sandbox, creds: Credentials, method: str, path: str, body: dict, ts: int):  # type: ignore[no-untyped-def]
    payload = json.dumps(body, separators=(",", ":"))
    msg = f"{ts}{creds.api_key}5000{payload}".encode()
    headers = {
        "X-BAPI-API-KEY": creds.api_key,
        "X-BAPI-TIMESTAMP": str(ts),
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": hmac.new(creds.api_secret.encode(), msg, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, sb.rest_url + path, data=payload, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json()


async def test_timestamp_window_rate_limit_headers_and_unknown_paths(sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    now = int(time.time() * 1000)
    body = {"category": "spot", "symbol": "BTCUSDT"}
    status, _, data = await _raw(sandbox, creds, "POST", "/v5/order/cancel-all", body, now - 60_000)
    assert status == 200 and data["retCode"] == 10002
    codes = []
    for _ in range(22):  # spot cancel-all: 20 per second per UID
        _, headers, data = await _raw(
            sandbox, creds, "POST", "/v5/order/cancel-all", body, int(time.time() * 1000)
        )
        codes.append(data["retCode"])
        assert headers["X-Bapi-Limit"] == "20"
        assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > 0
    assert codes[:20] == [0] * 20 and codes[20:] == [10006, 10006]
    async with aiohttp.ClientSession() as s, s.get(sandbox.rest_url + "/v5/no/such") as resp:
        assert resp.status == 404
        data = await resp.json()
        assert data["retCode"] == 10017 and set(data) == {
            "retCode", "retMsg", "result", "retExtInfo", "time"
        }  # fmt: skip
    async with (
        aiohttp.ClientSession() as s,
        s.get(sandbox.rest_url + "/v5/market/tickers?category=spot", data=b'{"a":1}') as resp,
    ):
        assert (await resp.json())["retCode"] == 10001


async def test_demo_apply_money_and_pre_launch_query(sandbox: Sandbox, rest: RestClient) -> None:
    await rest.demo_apply_money({"USDT": "500", "BTC": "0.5"})
    bal = sandbox.balances(key_of(rest))
    assert bal["USDT"]["wallet"] == D("100500") and bal["BTC"]["wallet"] == D("1.5")
    with pytest.raises(ExchangeError, match="10001"):
        await rest.demo_apply_money({"DOGE": "1"})
    pre = await rest.instruments_info("linear", status="PreLaunch")
    assert pre.list == []


async def test_coins_are_conserved_across_every_account(live_sandbox: Sandbox) -> None:
    sb = live_sandbox
    ex = sb.exchange

    def totals() -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for acct in ex.accounts.values():
            for coin, c in acct.coins.items():
                out[coin] = out.get(coin, D(0)) + c.wallet
        return out

    creds = sb.create_account()
    before = totals()
    async with RestClient(sb.environment, creds) as rest:
        for i in range(6):
            side = "Buy" if i % 2 == 0 else "Sell"
            await rest.place_order(
                **SPOT, side=side, orderType="Market", qty="0.003", marketUnit="baseCoin"
            )
            bid = top(sb, "bid")[0][0]
            await rest.place_order(**SPOT, side="Buy", orderType="Limit", qty="0.002", price=bid)
            await asyncio.sleep(0.15)  # the simulated market trades (and fills our bids)
    sb.freeze()
    await asyncio.sleep(0.2)
    assert totals() == before
    assert len(sb.executions(creds.api_key)) > 6


async def test_unsimulated_spot_features_are_refused_clearly(rest: RestClient) -> None:
    base = {**SPOT, "side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "60000"}
    for extra in ({"orderFilter": "tpslOrder", "triggerPrice": "59000"}, {"takeProfit": "70000"},
                  {"isLeverage": 1}):  # fmt: skip
        with pytest.raises(ExchangeError, match="not simulated") as info:
            await rest.place_order(**base, **extra)
        assert info.value.ret_code == 10001
    assert (await rest.open_orders(category="spot")).list == []
