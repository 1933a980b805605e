"""pybit (Bybit's official SDK) against the sandbox, over real sockets on 127.0.0.1.

pybit is pointed at the sandbox only through its public attributes and module settings:
``HTTP(...).endpoint = sb.rest_url``; ``pybit.unified_trading.PUBLIC_WSS`` / ``PRIVATE_WSS``
(monkeypatched) before a ``WebSocket`` is built. pybit is synchronous (``requests`` and
``websocket-client`` threads), so every blocking call runs in ``asyncio.to_thread`` while the
sandbox keeps serving on the event loop. To see the raw frames as well as what pybit makes of them,
a WebSocket's public ``callback`` attribute is wrapped (the frames are recorded, then handed to
pybit's own handler unchanged).

Numbers are checked exactly (Decimal, and the text of prices on the tick grid); expected fills are
computed from the sandbox's own book, frozen (``sb.freeze()``) so nothing moves in between.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError

from bybitkit.sandbox import Sandbox

from .pybit_support import (
    DEFAULTS,
    Tape,
    call,
    coins,
    levels,
    load_example,
    on_grid,
    pybit_http,
    pybit_ws,
    settle,
    subscribe,
    sweep,
    tick_of,
    wait_until,
)
from .shapes import Allowance, problems

pytestmark = pytest.mark.asyncio(loop_scope="module")

SANDBOX_SEED = 5
D = Decimal
SPOT_FEE = D("0.001")  # the sandbox's base tier, maker = taker (Bybit's VIP 0 spot rate)
LINEAR_MAKER, LINEAR_TAKER = D("0.0002"), D("0.00055")


# --- market data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["spot", "linear"])
async def test_market_data(sb: Sandbox, category: str) -> None:
    book = await settle(sb, "BTCUSDT", category)
    tick = tick_of(sb, "BTCUSDT", category)
    decimals = -tick.as_tuple().exponent  # type: ignore[operator]
    async with pybit_http(sb) as s:
        before = time.time_ns()
        t = (await call(s.get_server_time))["result"]
        assert before // 10**9 - 1 <= int(t["timeSecond"]) <= time.time_ns() // 10**9
        assert t["timeSecond"] == t["timeNano"][:-9]

        listing = (await call(s.get_instruments_info, category=category))["result"]
        assert listing["category"] == category
        expected_symbols = {"BTCUSDT", "ETHUSDT"} | ({"BTCPERP"} if category == "linear" else set())
        assert {i["symbol"] for i in listing["list"]} == expected_symbols
        info = await call(s.get_instruments_info, category=category, symbol="BTCUSDT")
        (item,) = info["result"]["list"]
        assert (item["symbol"], item["baseCoin"], item["quoteCoin"], item["status"]) == (
            "BTCUSDT",
            "BTC",
            "USDT",
            "Trading",
        )
        assert D(item["priceFilter"]["tickSize"]) == tick
        if category == "spot":
            assert item["lotSizeFilter"]["basePrecision"] == "0.000001"
            assert item["lotSizeFilter"]["minOrderAmt"] == "5"
        else:
            assert item["lotSizeFilter"]["qtyStep"] == "0.001"
            assert item["priceScale"] == "2"
            assert item["fundingInterval"] == 480

        ob = (await call(s.get_orderbook, category=category, symbol="BTCUSDT", limit=5))["result"]
        assert ob["s"] == "BTCUSDT"
        assert levels(ob["b"]) == book["bids"][:5]
        assert levels(ob["a"]) == book["asks"][:5]
        assert all(len(p.split(".")[1]) == decimals for p, _ in ob["b"] + ob["a"])
        assert isinstance(ob["u"], int) and isinstance(ob["seq"], int) and isinstance(ob["ts"], int)

        (ticker,) = (await call(s.get_tickers, category=category, symbol="BTCUSDT"))["result"][
            "list"
        ]
        assert (D(ticker["bid1Price"]), D(ticker["bid1Size"])) == book["bids"][0]
        assert (D(ticker["ask1Price"]), D(ticker["ask1Size"])) == book["asks"][0]
        assert D(ticker["lowPrice24h"]) <= D(ticker["lastPrice"]) <= D(ticker["highPrice24h"])
        if category == "linear":
            assert ticker["fundingRate"] and int(ticker["nextFundingTime"]) > time.time() * 1000
            assert D(ticker["markPrice"]) > 0 and D(ticker["indexPrice"]) > 0

        kline = (
            await call(s.get_kline, category=category, symbol="BTCUSDT", interval="1", limit=3)
        )["result"]
        assert (kline["category"], kline["symbol"]) == (category, "BTCUSDT")
        rows = kline["list"]
        assert len(rows) == 3 and all(
            len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows
        )
        starts = [int(r[0]) for r in rows]
        assert starts == [starts[0], starts[0] - 60_000, starts[0] - 120_000]  # newest first
        this_minute = time.time_ns() // 1_000_000 // 60_000 * 60_000
        assert starts[0] in (this_minute, this_minute - 60_000)  # the open candle
        for _, o, h, lo, c, *_ in rows:
            assert D(h) >= max(D(o), D(c)) and D(lo) <= min(D(o), D(c))

        qty = "0.0001" if category == "spot" else "0.001"
        best_bid = sb.book("BTCUSDT", category, 1)["bids"][0][0]
        sb.inject_trade("BTCUSDT", "Sell", qty, category=category)
        trades = await call(
            s.get_public_trade_history, category=category, symbol="BTCUSDT", limit=1
        )
        (trade,) = trades["result"]["list"]
        assert (trade["symbol"], trade["side"], trade["price"], trade["size"]) == (
            "BTCUSDT",
            "Sell",
            format(best_bid, "f"),
            qty,
        )
        assert (
            trade["isBlockTrade"] is False and abs(int(trade["time"]) - time.time() * 1000) < 5000
        )

        # The band of REFERENCE §7.9 around the index price, x = priceLimitRatioX < y (the
        # sandbox takes the premium terms as 0): buyLmt = I*(1+x) rounded down to the tick,
        # sellLmt = I*(1-x) rounded up.
        limit = (await call(s.get_price_limit, category=category, symbol="BTCUSDT"))["result"]
        index = D(ticker["indexPrice" if category == "linear" else "usdIndexPrice"])
        x = D(item["riskParameters"]["priceLimitRatioX"])
        assert x < D(item["riskParameters"]["priceLimitRatioY"])
        assert D(limit["buyLmt"]) == on_grid(index * (1 + x), tick)
        assert D(limit["sellLmt"]) == -on_grid(-index * (1 - x), tick)
        assert D(limit["sellLmt"]) < book["bids"][0][0] < book["asks"][0][0] < D(limit["buyLmt"])
        assert limit["symbol"] == "BTCUSDT" and isinstance(limit["ts"], str)


# --- account reads -------------------------------------------------------------------------------


async def test_account_reads(sb: Sandbox) -> None:
    await settle(sb)
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        wallet = await call(s.get_wallet_balance, accountType="UNIFIED")
        (account,) = wallet["result"]["list"]
        assert account["accountType"] == "UNIFIED"
        by_coin = coins(wallet)
        assert {c: D(v["walletBalance"]) for c, v in by_coin.items()} == DEFAULTS
        assert all(
            D(v["locked"]) == 0 and v["equity"] == v["walletBalance"] for v in by_coin.values()
        )
        last = {}
        for symbol in ("BTCUSDT", "ETHUSDT"):
            (t,) = (await call(s.get_tickers, category="spot", symbol=symbol))["result"]["list"]
            last[symbol] = D(t["lastPrice"])
        total = 200_000 + last["BTCUSDT"] + 10 * last["ETHUSDT"]
        assert D(account["totalEquity"]) == D(account["totalWalletBalance"]) == total
        assert D(by_coin["BTC"]["usdValue"]) == last["BTCUSDT"]

        only_usdt = await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT")
        assert list(coins(only_usdt)) == ["USDT"]

        spot = (await call(s.get_fee_rates, category="spot", symbol="BTCUSDT"))["result"]
        assert spot["list"] == [
            {"symbol": "BTCUSDT", "takerFeeRate": "0.001", "makerFeeRate": "0.001"}
        ]
        linear = (await call(s.get_fee_rates, category="linear", symbol="ETHUSDT"))["result"]
        (fee,) = linear["list"]
        assert (D(fee["makerFeeRate"]), D(fee["takerFeeRate"])) == (LINEAR_MAKER, LINEAR_TAKER)

        info = (await call(s.get_account_info))["result"]
        assert info["marginMode"] == "REGULAR_MARGIN"
        assert info["spotHedgingStatus"] == "OFF" and isinstance(info["unifiedMarginStatus"], int)
        assert info["updatedTime"].isdigit()


# --- spot trading --------------------------------------------------------------------------------


async def test_spot_limit_order_lifecycle(sb: Sandbox) -> None:
    book = await settle(sb)
    tick = tick_of(sb, "BTCUSDT")
    price = on_grid(book["bids"][0][0] * D("0.98"), tick)
    qty = D("0.01")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty=str(qty),
            price=str(price),
            orderLinkId="life-1",
        )
        assert ack["retCode"] == 0
        order_id = ack["result"]["orderId"]
        assert order_id.isdigit() and ack["result"]["orderLinkId"] == "life-1"

        (order,) = (await call(s.get_open_orders, category="spot", symbol="BTCUSDT"))["result"][
            "list"
        ]
        assert (order["orderId"], order["orderLinkId"], order["orderStatus"]) == (
            order_id,
            "life-1",
            "New",
        )
        assert (order["side"], order["orderType"], order["timeInForce"]) == ("Buy", "Limit", "GTC")
        assert order["price"] == format(price, "f") and order["qty"] == "0.01"
        assert (order["leavesQty"], order["cumExecQty"], order["avgPrice"]) == ("0.01", "0", "")
        assert D(order["leavesValue"]) == price * qty
        usdt = coins(await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT"))["USDT"]
        assert (D(usdt["walletBalance"]), D(usdt["locked"])) == (DEFAULTS["USDT"], price * qty)

        # amend the price (by orderId), then the quantity (by orderLinkId)
        new_price = on_grid(book["bids"][0][0] * D("0.97"), tick)
        ack = await call(
            s.amend_order, category="spot", symbol="BTCUSDT", orderId=order_id, price=str(new_price)
        )
        assert ack["result"] == {"orderId": order_id, "orderLinkId": "life-1"}
        ack = await call(
            s.amend_order, category="spot", symbol="BTCUSDT", orderLinkId="life-1", qty="0.02"
        )
        assert ack["result"] == {"orderId": order_id, "orderLinkId": "life-1"}
        (order,) = (await call(s.get_open_orders, category="spot", orderId=order_id))["result"][
            "list"
        ]
        assert (order["price"], order["qty"], order["leavesQty"]) == (
            format(new_price, "f"),
            "0.02",
            "0.02",
        )
        assert D(order["leavesValue"]) == new_price * D("0.02")
        usdt = coins(await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT"))["USDT"]
        assert D(usdt["locked"]) == new_price * D("0.02")

        ack = await call(s.cancel_order, category="spot", symbol="BTCUSDT", orderId=order_id)
        assert ack["result"] == {"orderId": order_id, "orderLinkId": "life-1"}
        assert (await call(s.get_open_orders, category="spot"))["result"]["list"] == []
        history = await call(s.get_order_history, category="spot", orderId=order_id)
        (closed,) = history["result"]["list"]
        assert (closed["orderStatus"], closed["cancelType"]) == ("Cancelled", "CancelByUser")
        assert (closed["leavesQty"], closed["cumExecQty"]) == ("0", "0")
        usdt = coins(await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT"))["USDT"]
        assert (D(usdt["walletBalance"]), D(usdt["locked"])) == (DEFAULTS["USDT"], 0)

        # cancel-all: by symbol first, then everything left in the category
        placed: dict[str, str] = {}
        for symbol, q, link in (
            ("BTCUSDT", "0.001", "all-1"),
            ("BTCUSDT", "0.002", "all-2"),
            ("ETHUSDT", "0.01", "all-3"),
        ):
            top = sb.book(symbol, "spot", 1)["bids"][0][0]
            px = on_grid(top * D("0.97"), tick_of(sb, symbol))
            r = await call(
                s.place_order,
                category="spot",
                symbol=symbol,
                side="Buy",
                orderType="Limit",
                qty=q,
                price=str(px),
                orderLinkId=link,
            )
            placed[link] = r["result"]["orderId"]
        r = (await call(s.cancel_all_orders, category="spot", symbol="BTCUSDT"))["result"]
        assert r["success"] == "1"
        assert sorted((o["orderId"], o["orderLinkId"]) for o in r["list"]) == sorted(
            [(placed["all-1"], "all-1"), (placed["all-2"], "all-2")]
        )
        (left,) = (await call(s.get_open_orders, category="spot"))["result"]["list"]
        assert left["orderId"] == placed["all-3"]
        r = (await call(s.cancel_all_orders, category="spot"))["result"]
        assert r == {"list": [{"orderId": placed["all-3"], "orderLinkId": "all-3"}], "success": "1"}
        assert (await call(s.get_open_orders, category="spot"))["result"]["list"] == []


async def test_spot_market_orders_fill(sb: Sandbox) -> None:
    book = await settle(sb)
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        # A market buy of 0.3 BTC (base unit) walks the asks.
        qty = D("0.3")
        fills = sweep(book["asks"], qty)
        assert len(fills) > 1, "the test wants a buy across several levels"
        value = sum(p * q for p, q in fills)
        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty=str(qty),
            marketUnit="baseCoin",
            orderLinkId="mkt-buy",
        )
        buy_id = ack["result"]["orderId"]
        (order,) = (await call(s.get_order_history, category="spot", orderId=buy_id))["result"][
            "list"
        ]
        assert (order["orderStatus"], order["orderType"], order["timeInForce"]) == (
            "Filled",
            "Market",
            "IOC",
        )
        assert (order["marketUnit"], D(order["cumExecQty"]), D(order["cumExecValue"])) == (
            "baseCoin",
            qty,
            value,
        )
        assert abs(D(order["avgPrice"]) - value / qty) < D("0.00001")
        assert order["cumFeeDetail"] == {"BTC": format(qty * SPOT_FEE, "f")}

        execs = (await call(s.get_executions, category="spot", orderId=buy_id))["result"]["list"]
        by_price: dict[Decimal, Decimal] = {}
        for e in execs:
            assert (e["orderId"], e["orderLinkId"], e["side"], e["execType"]) == (
                buy_id,
                "mkt-buy",
                "Buy",
                "Trade",
            )
            assert e["isMaker"] is False and e["feeRate"] == "0.001" and e["feeCurrency"] == "BTC"
            assert D(e["execFee"]) == D(e["execQty"]) * SPOT_FEE
            assert D(e["execValue"]) == D(e["execPrice"]) * D(e["execQty"])
            by_price[D(e["execPrice"])] = by_price.get(D(e["execPrice"]), D(0)) + D(e["execQty"])
        assert sorted(by_price.items()) == sorted(fills)
        assert sum(D(e["execValue"]) for e in execs) == value

        # Balances moved by exactly the fill value (USDT) and the quantity less the fee (BTC).
        wallet = coins(await call(s.get_wallet_balance, accountType="UNIFIED"))
        assert D(wallet["USDT"]["walletBalance"]) == DEFAULTS["USDT"] - value
        assert D(wallet["BTC"]["walletBalance"]) == DEFAULTS["BTC"] + qty - qty * SPOT_FEE
        assert D(wallet["USDT"]["locked"]) == D(wallet["BTC"]["locked"]) == 0

        # A market sell of 0.2 BTC walks the bids; its fee is paid in USDT.
        book = await settle(sb)
        sell_qty = D("0.2")
        sell_fills = sweep(book["bids"], sell_qty)
        proceeds = sum(p * q for p, q in sell_fills)
        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Sell",
            orderType="Market",
            qty=str(sell_qty),
        )
        sell_id = ack["result"]["orderId"]
        (order,) = (await call(s.get_order_history, category="spot", orderId=sell_id))["result"][
            "list"
        ]
        assert (order["orderStatus"], order["marketUnit"]) == ("Filled", "baseCoin")
        assert (D(order["cumExecQty"]), D(order["cumExecValue"])) == (sell_qty, proceeds)
        execs = (await call(s.get_executions, category="spot", orderId=sell_id))["result"]["list"]
        assert {e["feeCurrency"] for e in execs} == {"USDT"}
        assert sum(D(e["execFee"]) for e in execs) == proceeds * SPOT_FEE
        wallet = coins(await call(s.get_wallet_balance, accountType="UNIFIED"))
        assert D(wallet["USDT"]["walletBalance"]) == (
            DEFAULTS["USDT"] - value + proceeds - proceeds * SPOT_FEE
        )
        assert (
            D(wallet["BTC"]["walletBalance"]) == DEFAULTS["BTC"] + qty - qty * SPOT_FEE - sell_qty
        )

        # A market buy without marketUnit spends quote coin (100 USDT), as Bybit's spot default.
        ask = sb.book("BTCUSDT", "spot", 1)["asks"][0][0]
        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="100",
        )
        (order,) = (
            await call(s.get_order_history, category="spot", orderId=ack["result"]["orderId"])
        )["result"]["list"]
        assert (order["orderStatus"], order["marketUnit"], order["qty"]) == (
            "Filled",
            "quoteCoin",
            "100",
        )
        spent = D(order["cumExecValue"])
        assert 100 - ask * D("0.000001") < spent <= 100  # all but less than one lot's worth
        assert order["cumFeeDetail"] == {"BTC": format(D(order["cumExecQty"]) * SPOT_FEE, "f")}


async def test_spot_batch_orders(sb: Sandbox) -> None:
    book = await settle(sb)
    eth_bid = sb.book("ETHUSDT", "spot", 1)["bids"][0][0]
    creds = sb.create_account()

    def item(i: int) -> dict[str, str]:
        symbol, top, tick, qty = (
            ("BTCUSDT", book["bids"][0][0], tick_of(sb, "BTCUSDT"), "0.001")
            if i % 2 == 0
            else ("ETHUSDT", eth_bid, tick_of(sb, "ETHUSDT"), "0.01")
        )
        price = on_grid(top * (D("0.95") - D(i) / 1000), tick)
        return {
            "symbol": symbol,
            "side": "Buy",
            "orderType": "Limit",
            "qty": qty,
            "price": str(price),
            "orderLinkId": f"batch-{i}",
        }

    items = [item(i) for i in range(10)]
    # A spot batch holds at most 10 orders. (Another account: the sandbox counts the refused
    # batch's 11 orders against the per-UID batch rate limit of 20 orders a second.)
    other = sb.create_account()
    async with pybit_http(sb, other) as s:
        with pytest.raises(InvalidRequestError):
            await call(s.place_batch_order, category="spot", request=[*items, item(10)])
        assert (await call(s.get_open_orders, category="spot"))["result"]["list"] == []

    async with pybit_http(sb, creds) as s:
        r = await call(s.place_batch_order, category="spot", request=items)
        assert r["retExtInfo"]["list"] == [{"code": 0, "msg": "OK"}] * 10
        placed = r["result"]["list"]
        assert [(p["category"], p["symbol"], p["orderLinkId"]) for p in placed] == [
            ("spot", i["symbol"], i["orderLinkId"]) for i in items
        ]
        assert all(p["orderId"].isdigit() and p["createAt"].isdigit() for p in placed)
        ids = [p["orderId"] for p in placed]
        open_orders = (await call(s.get_open_orders, category="spot", limit=50))["result"]["list"]
        assert {o["orderId"]: (o["price"], o["qty"]) for o in open_orders} == {
            oid: (i["price"], i["qty"]) for oid, i in zip(ids, items, strict=True)
        }

        amends = [
            {
                "symbol": items[k]["symbol"],
                "orderId": ids[k],
                "price": str(D(items[k]["price"]) - tick_of(sb, items[k]["symbol"])),
            }
            for k in (0, 1, 2)
        ]
        r = await call(s.amend_batch_order, category="spot", request=amends)
        assert r["retExtInfo"]["list"] == [{"code": 0, "msg": "OK"}] * 3
        assert [(a["orderId"], a["orderLinkId"]) for a in r["result"]["list"]] == [
            (ids[k], f"batch-{k}") for k in (0, 1, 2)
        ]
        open_orders = (await call(s.get_open_orders, category="spot", limit=50))["result"]["list"]
        prices = {o["orderId"]: o["price"] for o in open_orders}
        assert [prices[ids[k]] for k in (0, 1, 2)] == [a["price"] for a in amends]

        cancels = [{"symbol": items[k]["symbol"], "orderId": ids[k]} for k in range(5)]
        cancels.append({"symbol": "BTCUSDT", "orderId": "1234567890"})  # no such order
        r = await call(s.cancel_batch_order, category="spot", request=cancels)
        assert [c["code"] for c in r["retExtInfo"]["list"]] == [0] * 5 + [170213]
        assert [c["orderId"] for c in r["result"]["list"][:5]] == ids[:5]
        open_orders = (await call(s.get_open_orders, category="spot", limit=50))["result"]["list"]
        assert sorted(o["orderId"] for o in open_orders) == sorted(ids[5:])
        await call(s.cancel_all_orders, category="spot")


# --- WebSocket -----------------------------------------------------------------------------------


@pytest.mark.parametrize("category", ["spot", "linear"])
async def test_ws_public_orderbook_and_trades(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, category: str
) -> None:
    sb.resume()  # the simulated market moves the book: deltas
    topic = "orderbook.50.BTCUSDT"
    books, trades = Tape(), Tape()
    async with pybit_ws(monkeypatch, sb, category) as (ws, tape):
        subscribe(ws.orderbook_stream, 50, "BTCUSDT", books.append)
        subscribe(ws.trade_stream, "BTCUSDT", trades.append)
        await wait_until("two subscribe acks", lambda: len(tape.acks()) >= 2)
        acks = tape.acks()
        assert all(a["success"] is True for a in acks)
        assert {a["req_id"] for a in acks} == set(ws.subscriptions)

        qty = "0.0001" if category == "spot" else "0.001"
        ask = sb.book("BTCUSDT", category, 1)["asks"][0][0]
        sb.inject_trade("BTCUSDT", "Buy", qty, category=category)

        def ours(m: dict[str, Any]) -> bool:
            return any(t["S"] == "Buy" and t["v"] == qty and D(t["p"]) == ask for t in m["data"])

        await wait_until("the injected trade", lambda: any(ours(m) for m in trades.items()))
        await wait_until("book deltas", lambda: len(tape.topic(topic)) >= 6)

        book = await settle(sb, "BTCUSDT", category)
        want_bids, want_asks = book["bids"][:50], book["asks"][:50]

        def pybit_book() -> tuple[list[Any], list[Any]]:
            data = books.items()[-1]["data"]
            bids = sorted(levels(data["b"]), reverse=True)
            return bids, sorted(levels(data["a"]))

        await wait_until("pybit's book to match", lambda: pybit_book() == (want_bids, want_asks))

    raw = tape.topic(topic)
    assert raw[0]["type"] == "snapshot"
    assert {m["type"] for m in raw[1:]} == {"delta"}
    us = [m["data"]["u"] for m in raw]
    assert us == list(range(us[0], us[0] + len(us))), "orderbook u must grow by one per message"
    seqs = [m["data"]["seq"] for m in raw]
    assert seqs == sorted(seqs)
    assert all(isinstance(m["ts"], int) and isinstance(m["cts"], int) for m in raw)
    # pybit handed every message to the callback, with the merged book at that message's u
    assert [m["data"]["u"] for m in books.items()] == us

    items = [t for m in trades.items() for t in m["data"]]
    assert all(
        t["s"] == "BTCUSDT" and isinstance(t["T"], int) and isinstance(t["seq"], int) for t in items
    )
    if category == "linear":  # the tick direction is a derivatives field
        assert all(
            t["L"] in ("PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick") for t in items
        )
    else:
        assert all("L" not in t for t in items)


async def test_ws_private_order_execution_wallet(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = await settle(sb)
    creds = sb.create_account()
    orders, executions, wallets = Tape(), Tape(), Tape()
    qty = D("0.05")
    fills = sweep(book["asks"], qty)
    value = sum(p * q for p, q in fills)
    btc_after = DEFAULTS["BTC"] + qty - qty * SPOT_FEE
    async with (
        pybit_http(sb, creds) as s,
        pybit_ws(
            monkeypatch, sb, "private", api_key=creds.api_key, api_secret=creds.api_secret
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        subscribe(ws.order_stream, orders.append)
        subscribe(ws.execution_stream, executions.append)
        subscribe(ws.wallet_stream, wallets.append)
        await wait_until("three subscribe acks", lambda: len(tape.acks()) >= 3)
        assert all(a["success"] is True for a in tape.acks())

        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty=str(qty),
            marketUnit="baseCoin",
            orderLinkId="ws-fill",
        )
        order_id = ack["result"]["orderId"]

        def order_updates() -> list[dict[str, Any]]:
            return [o for m in orders.items() for o in m["data"] if o["orderId"] == order_id]

        def fills_seen() -> list[dict[str, Any]]:
            return [e for m in executions.items() for e in m["data"] if e["orderId"] == order_id]

        def btc_pushed() -> bool:
            return any(
                c["coin"] == "BTC" and D(c["walletBalance"]) == btc_after
                for m in wallets.items()
                for w in m["data"]
                for c in w["coin"]
            )

        await wait_until(
            "the Filled order update",
            lambda: any(o["orderStatus"] == "Filled" for o in order_updates()),
        )
        await wait_until("every fill", lambda: sum(D(e["execQty"]) for e in fills_seen()) == qty)
        await wait_until("the wallet update", btc_pushed)
        rest_execs = (await call(s.get_executions, category="spot", orderId=order_id))["result"]
        rest_wallet = await call(s.get_wallet_balance, accountType="UNIFIED")

    for m in orders.items() + executions.items() + wallets.items():
        assert isinstance(m["id"], str) and isinstance(m["creationTime"], int)
        assert isinstance(m["data"], list)
    final = order_updates()[-1]
    assert (final["category"], final["orderLinkId"], final["orderStatus"]) == (
        "spot",
        "ws-fill",
        "Filled",
    )
    assert (D(final["cumExecQty"]), D(final["cumExecValue"]), final["leavesQty"]) == (
        qty,
        value,
        "0",
    )
    seen = fills_seen()
    assert sorted(e["execId"] for e in seen) == sorted(e["execId"] for e in rest_execs["list"])
    assert all(e["category"] == "spot" and e["feeCurrency"] == "BTC" for e in seen)
    assert sum(D(e["execValue"]) for e in seen) == value
    assert sum(D(e["execFee"]) for e in seen) == qty * SPOT_FEE
    pushed = wallets.items()[-1]["data"][0]
    assert pushed["accountType"] == "UNIFIED"
    assert {c["coin"]: c["walletBalance"] for c in pushed["coin"]} == {
        c: v["walletBalance"] for c, v in coins(rest_wallet).items()
    }
    assert D(coins(rest_wallet)["USDT"]["walletBalance"]) == DEFAULTS["USDT"] - value


# Justified differences of the sandbox's WebSocket messages from the documented examples.
WS_ALLOW: dict[str, Allowance] = {
    "ws_public_trade": {
        ("extra", "data[].RPI"): "RPI is in the topic's field list (REFERENCE §12.2); the example "
        "predates it",
    },
    "ws_public_trade spot": {
        ("extra", "data[].RPI"): "RPI is in the topic's field list (§12.2)",
        ("missing", "data[].L"): "L (tick direction) is for perpetuals/futures only (§12.2)",
    },
    "ws_tickers_linear": {
        ("extra", "data.singleOpenInterest"): "in the topic's field list (§12.3), not in the "
        "older example",
        ("extra", "data.singleOpenInterestValue"): "in the topic's field list (§12.3)",
    },
    "ws_subscribe_private": {
        ("extra", "req_id"): "the ack echoes the client's req_id (pybit sends one) (§11.4)",
    },
    "ws_order": {  # the example is an option order; ours is spot
        ("missing", "data[].lastPriceOnCreated"): "linear only (WS order table; REST §8.8)",
        ("missing", "data[].tpslMode"): "absent for spot (§8.8)",
        ("extra", "data[].isLeverage"): "in the topic's field list (§13.1), spot",
        ("extra", "data[].marketUnit"): "in the topic's field list (§13.1), spot market orders",
        ("extra", "data[].ocoTriggerBy"): "in the topic's field list (§13.1)",
        ("extra", "data[].parentOrderLinkId"): "in the topic's field list (§13.1)",
        ("extra", "data[].slippageToleranceType"): "in the topic's field list (§13.1)",
        ("extra", "data[].slippageTolerance"): "in the topic's field list (§13.1)",
        ("extra", "data[].brokerOrderPrice"): "in the topic's field list (§13.1), not in the "
        "example",
    },
    "ws_execution": {  # the example is a linear fill; ours is spot
        ("missing", "data[].createType"): "absent for spot (REST §8.10 table)",
        ("type", "data[].extraFees"): 'a list only for some regional users, otherwise "" (§13.2)',
    },
    "ws_wallet": {
        ("extra", "data[].coin[].colRes"): "in the REST/WS wallet field table (§10.1, §13.4)",
        ("extra", "data[].coin[].free"): "in the wallet field table (§10.1), deprecated",
    },
}


async def test_ws_message_structure(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, examples_dir: Path
) -> None:
    """The frames pybit receives have the documented shape (field names and JSON types)."""
    examples = {
        stem: load_example(examples_dir, stem)
        for stem in (
            "ws_orderbook_snapshot",
            "ws_orderbook_delta",
            "ws_public_trade",
            "ws_subscribe_public_spot",
            "ws_subscribe_public_linear",
            "ws_subscribe_private",
            "ws_tickers_spot",
            "ws_tickers_linear",
            "ws_kline",
            "ws_price_limit",
            "ws_order",
            "ws_execution",
            "ws_wallet",
        )
    }
    found: dict[str, list[str]] = {}

    def check(stem: str, message: dict[str, Any], allow_key: str | None = None) -> None:
        allowed = WS_ALLOW.get(allow_key or stem)
        lines = problems(examples[stem], message, allowed, maps={"data[].cumFeeDetail"})
        if lines:
            found[allow_key or stem] = lines

    sb.resume()
    topics = ("publicTrade", "tickers", "kline.1", "priceLimit")
    for category in ("spot", "linear"):
        async with pybit_ws(monkeypatch, sb, category) as (ws, tape):
            subscribe(ws.orderbook_stream, 50, "BTCUSDT", lambda m: None)
            subscribe(ws.trade_stream, "BTCUSDT", lambda m: None)
            subscribe(ws.ticker_stream, "BTCUSDT", lambda m: None)
            subscribe(ws.kline_stream, 1, "BTCUSDT", lambda m: None)
            subscribe(ws.price_limit_stream, "BTCUSDT", lambda m: None)
            sb.inject_trade("BTCUSDT", "Buy", "0.001", category=category)
            await wait_until(
                "book deltas and a message of every topic",
                lambda: (
                    any(m.get("type") == "delta" for m in tape.topic("orderbook.50.BTCUSDT"))
                    and all(tape.topic(f"{t}.BTCUSDT") for t in topics)
                ),
            )
        book_msgs = tape.topic("orderbook.50.BTCUSDT")
        check("ws_orderbook_snapshot", book_msgs[0], f"ws_orderbook_snapshot {category}")
        check("ws_orderbook_delta", book_msgs[1], f"ws_orderbook_delta {category}")
        trade_key = "ws_public_trade" if category == "linear" else "ws_public_trade spot"
        check("ws_public_trade", tape.topic("publicTrade.BTCUSDT")[0], trade_key)
        check(f"ws_subscribe_public_{category}", tape.acks()[0])
        check(f"ws_tickers_{category}", tape.topic("tickers.BTCUSDT")[0])
        check("ws_kline", tape.topic("kline.1.BTCUSDT")[0], f"ws_kline {category}")
        check("ws_price_limit", tape.topic("priceLimit.BTCUSDT")[0], f"ws_price_limit {category}")

    await settle(sb)
    creds = sb.create_account()
    async with (
        pybit_http(sb, creds) as s,
        pybit_ws(
            monkeypatch, sb, "private", api_key=creds.api_key, api_secret=creds.api_secret
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        for stream in (ws.order_stream, ws.execution_stream, ws.wallet_stream):
            subscribe(stream, lambda m: None)
        await wait_until("three subscribe acks", lambda: len(tape.acks()) >= 3)
        await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="0.01",
            marketUnit="baseCoin",
        )
        await wait_until(
            "order, execution and wallet messages",
            lambda: all(tape.topic(t) for t in ("order", "execution", "wallet")),
        )
    check("ws_subscribe_private", tape.acks()[0])
    for t in ("order", "execution", "wallet"):
        check(f"ws_{t}", tape.topic(t)[0])
    assert not found, "WebSocket messages differ from the docs:\n" + "\n".join(
        f"  {key}: {line}" for key, lines in found.items() for line in lines
    )


# --- RSA key -------------------------------------------------------------------------------------


async def test_rsa_key_account(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    book = await settle(sb)
    creds = sb.create_account(key_type="rsa")
    assert creds.api_secret.startswith("-----BEGIN") and "PRIVATE KEY" in creds.api_secret
    price = on_grid(book["bids"][0][0] * D("0.97"), tick_of(sb, "BTCUSDT"))
    async with pybit_http(sb, creds, rsa=True) as s:
        usdt = coins(await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT"))["USDT"]
        assert D(usdt["walletBalance"]) == DEFAULTS["USDT"]
        ack = await call(
            s.place_order,
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=str(price),
            orderLinkId="rsa-1",
        )
        order_id = ack["result"]["orderId"]
        (order,) = (await call(s.get_open_orders, category="spot", orderId=order_id))["result"][
            "list"
        ]
        assert (order["orderLinkId"], order["orderStatus"], order["price"]) == (
            "rsa-1",
            "New",
            format(price, "f"),
        )
        await call(s.cancel_order, category="spot", symbol="BTCUSDT", orderId=order_id)
        (order,) = (await call(s.get_order_history, category="spot", orderId=order_id))["result"][
            "list"
        ]
        assert order["orderStatus"] == "Cancelled"
        key_info = (await call(s.get_api_key_information))["result"]
        assert (
            key_info["apiKey"] == creds.api_key and "BEGIN PUBLIC KEY" in key_info["rsaPublicKey"]
        )

    # The same PEM used as an HMAC secret is a bad signature (10004), not a crash.
    # (The exception is not kept past the except block: its traceback holds pybit's response,
    # whose connection ``client.close()`` cannot close while it is referenced.)
    code = None
    async with pybit_http(sb, creds, rsa=False) as s:
        try:
            await call(s.get_wallet_balance, accountType="UNIFIED")
        except InvalidRequestError as exc:
            code = exc.status_code
    assert code == 10004

    # The private stream authenticates an RSA key too.
    async with pybit_ws(
        monkeypatch,
        sb,
        "private",
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        rsa_authentication=True,
    ) as (ws, _):
        await wait_until("RSA auth on the private stream", lambda: ws.auth)
