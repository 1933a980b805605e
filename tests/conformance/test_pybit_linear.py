"""pybit (Bybit's official SDK) against the sandbox's linear perpetuals, over real sockets.

pybit is pointed at the sandbox exactly as in ``test_pybit_sandbox.py`` (``HTTP.endpoint``, the
``PUBLIC_WSS`` / ``PRIVATE_WSS`` module settings). Every test works on fresh accounts of the
module's sandbox, frozen (``sb.freeze()`` by the ``sb`` fixture) so the book only changes through
the test's own orders and the sandbox's controls (``move_mid``, ``inject_trade``, funding).

Numbers are checked exactly (Decimal): fills are computed from the sandbox's own book before the
order; fees are taker 0.00055 / maker 0.0002 of the fill value (Bybit's base tier); an entry price
is the fill-weighted average, kept to 8 decimals as Bybit shows it; positionIM = value / leverage,
positionMM = size x mark x the maintenance rate (0.005 for BTCUSDT, one risk tier), unrealisedPnl
= (mark - entry) x signed size; realised PnL of a close = (exit - entry) x qty, net of the close
fee and of the open fee's share (closed-pnl). Funding: execFee = execValue x feeRate, feeRate
signed by side (positive = paid); the ledger's funding = -execFee (REFERENCE §10.4, §10.5).

Tests named ``..._documented`` pin documented Bybit behaviour that the sandbox does not have yet
(each docstring names it and its REFERENCE section); they fail until the sandbox has it.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from bybitkit.sandbox import Sandbox

from .pybit_support import (
    DEFAULTS,
    call,
    coins,
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

SANDBOX_SEED = 7
D = Decimal
MAKER, TAKER = D("0.0002"), D("0.00055")
MMR = {"BTCUSDT": D("0.005"), "ETHUSDT": D("0.01"), "BTCPERP": D("0.005")}
DEFAULT_RATE = D("0.0001")
#: How long to wait for a message that a documented behaviour says must come.
SHORT_WAIT_S = 3.0


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The position object of GET /v5/position/list (REFERENCE §9.1) and of the `position` topic (§13.3).
POSITION_REST_FIELDS = words(
    "positionIdx riskId riskLimitValue symbol side size avgPrice positionValue autoAddMargin "
    "positionStatus leverage breakEvenPrice markPrice liqPrice positionIM positionIMByMp "
    "positionMM positionMMByMp takeProfit stopLoss trailingStop sessionAvgPrice delta gamma vega "
    "theta unrealisedPnl curRealisedPnl cumRealisedPnl adlRankIndicator createdTime updatedTime "
    "openTime seq isReduceOnly mmrSysUpdatedTime leverageSysUpdatedTime tpslMode bustPrice "
    "positionBalance tradeMode"
)
POSITION_WS_FIELDS = words(
    "category symbol side size positionIdx positionValue riskId riskLimitValue entryPrice "
    "markPrice leverage breakEvenPrice autoAddMargin positionIM positionMM liqPrice takeProfit "
    "stopLoss trailingStop unrealisedPnl curRealisedPnl sessionAvgPrice delta gamma vega theta "
    "cumRealisedPnl positionStatus adlRankIndicator isReduceOnly createdTime updatedTime openTime "
    "seq mmrSysUpdatedTime leverageSysUpdatedTime positionIMByMp positionMMByMp tpslMode bustPrice "
    "positionBalance tradeMode"
)


# --- helpers -------------------------------------------------------------------------------------


def q8(value: Decimal) -> Decimal:
    """A derived price (an average) as Bybit shows it: 8 decimals."""
    return value.quantize(D("0.00000001"))


def price_text(sb: Sandbox, price: Decimal, symbol: str = "BTCUSDT") -> str:
    """``price`` on the linear tick grid, as Bybit writes it (priceScale decimals)."""
    return str(on_grid(price, tick_of(sb, symbol, "linear")))


async def refused(fn: Any, **kwargs: Any) -> int | None:
    """The retCode pybit raised for a call (None if it succeeded). The exception is not kept: its
    traceback holds pybit's response, whose connection could not be closed while referenced."""
    code = None
    try:
        await call(fn, **kwargs)
    except InvalidRequestError as exc:
        code = exc.status_code
    return code


async def positions(s: HTTP, symbol: str = "BTCUSDT") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await call(s.get_positions, category="linear", symbol=symbol))[
        "result"
    ]["list"]
    return rows


async def position(s: HTTP, symbol: str = "BTCUSDT", idx: int = 0) -> dict[str, Any]:
    (row,) = [r for r in await positions(s, symbol) if r["positionIdx"] == idx]
    return row


async def usdt(s: HTTP) -> dict[str, Any]:
    return coins(await call(s.get_wallet_balance, accountType="UNIFIED", coin="USDT"))["USDT"]


async def executions(s: HTTP, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await call(s.get_executions, category="linear", **params))[
        "result"
    ]["list"]
    return rows


async def order(s: HTTP, order_id: str) -> dict[str, Any]:
    (row,) = (await call(s.get_order_history, category="linear", orderId=order_id))["result"][
        "list"
    ]
    return dict(row)


async def market(
    s: HTTP, side: str, qty: str, symbol: str = "BTCUSDT", **extra: Any
) -> dict[str, Any]:
    ack = await call(
        s.place_order,
        category="linear",
        symbol=symbol,
        side=side,
        orderType="Market",
        qty=qty,
        **extra,
    )
    return await order(s, ack["result"]["orderId"])


def value_of(fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((p * q for p, q in fills), D(0))


async def last_price(s: HTTP, symbol: str = "BTCUSDT") -> Decimal:
    (t,) = (await call(s.get_tickers, category="linear", symbol=symbol))["result"]["list"]
    return D(t["lastPrice"])


def check_fills(
    rows: list[dict[str, Any]], fills: list[tuple[Decimal, Decimal]], *, maker: bool = False
) -> None:
    """The executions of one order are exactly ``fills``, each with the right fee."""
    rate = MAKER if maker else TAKER
    got: dict[Decimal, Decimal] = {}
    for e in rows:
        assert (e["execType"], e["isMaker"], D(e["feeRate"])) == ("Trade", maker, rate)
        assert D(e["execValue"]) == D(e["execPrice"]) * D(e["execQty"])
        assert D(e["execFee"]) == D(e["execValue"]) * rate
        assert e["feeCurrency"] == "USDT"
        got[D(e["execPrice"])] = got.get(D(e["execPrice"]), D(0)) + D(e["execQty"])
    want: dict[Decimal, Decimal] = {}
    for p, q in fills:
        want[p] = want.get(p, D(0)) + q
    assert got == want


# --- leverage, one-way positions, PnL ------------------------------------------------------------


async def test_one_way_leverage_entry_and_realised_pnl(sb: Sandbox) -> None:
    book = await settle(sb, "BTCUSDT", "linear")
    tick = tick_of(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        # One-way mode: one flat row, positionIdx 0, default leverage 10.
        (row,) = await positions(s)
        assert (row["positionIdx"], row["side"], row["size"], row["leverage"]) == (0, "", "0", "10")
        assert (row["avgPrice"], row["positionValue"], row["unrealisedPnl"]) == ("0", "0", "0")

        r = await call(
            s.set_leverage, category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5"
        )
        assert r["result"] == {}
        code = await refused(
            s.set_leverage, category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5"
        )
        assert code == 110043, "the same leverage again must be 110043 (not modified)"
        assert (await position(s))["leverage"] == "5"
        lev = D(5)

        # Open 0.1 with a market buy (taker): it walks the asks.
        q1 = D("0.1")
        fills1 = sweep(book["asks"], q1)
        v1 = value_of(fills1)
        fee1 = v1 * TAKER
        o1 = await market(s, "Buy", "0.1", orderLinkId="open-1")
        assert (o1["orderStatus"], o1["positionIdx"], o1["reduceOnly"]) == ("Filled", 0, False)
        assert (D(o1["cumExecQty"]), D(o1["cumExecValue"])) == (q1, v1)
        assert {c: D(v) for c, v in o1["cumFeeDetail"].items()} == {"USDT": fee1}
        rows1 = await executions(s, orderId=o1["orderId"])
        check_fills(rows1, fills1)
        assert all(e["closedSize"] == "0" for e in rows1)

        # Add 0.05 as a maker: a limit buy inside the spread, then a house sell hits it.
        top = sb.book("BTCUSDT", "linear", 1)
        bid, ask = top["bids"][0][0], top["asks"][0][0]
        assert ask - bid >= 2 * tick
        p2 = bid + tick
        ack = await call(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.05",
            price=str(p2),
            orderLinkId="add-1",
        )
        # An open order that can increase the position holds qty x price / leverage.
        assert D((await usdt(s))["totalOrderIM"]) == D("0.05") * p2 / lev
        sb.inject_trade("BTCUSDT", "Sell", "0.05", category="linear")
        o2 = await order(s, ack["result"]["orderId"])
        assert (o2["orderStatus"], D(o2["avgPrice"])) == ("Filled", p2)
        v2 = p2 * D("0.05")
        fee2 = v2 * MAKER
        check_fills(await executions(s, orderId=o2["orderId"]), [(p2, D("0.05"))], maker=True)

        size = D("0.15")
        entry = q8((v1 + v2) / size)
        pos = await position(s)
        mark = D(pos["markPrice"])
        assert (pos["side"], D(pos["size"]), D(pos["avgPrice"])) == ("Buy", size, entry)
        assert D(pos["positionValue"]) == size * entry
        assert D(pos["positionIM"]) == size * entry / lev
        assert D(pos["positionIMByMp"]) == size * mark / lev
        assert D(pos["positionMM"]) == size * mark * MMR["BTCUSDT"]
        assert D(pos["unrealisedPnl"]) == (mark - entry) * size
        assert D(pos["cumRealisedPnl"]) == D(pos["curRealisedPnl"]) == -(fee1 + fee2)
        wallet = await usdt(s)
        assert D(wallet["walletBalance"]) == DEFAULTS["USDT"] - fee1 - fee2
        assert (D(wallet["totalPositionIM"]), D(wallet["totalOrderIM"])) == (size * entry / lev, 0)
        assert D(wallet["unrealisedPnl"]) == (mark - entry) * size
        assert D(wallet["equity"]) == D(wallet["walletBalance"]) + (mark - entry) * size

        # Partial close: a reduce-only market sell of 0.06 walks the bids.
        book = sb.book("BTCUSDT", "linear", 200)
        q3 = D("0.06")
        fills3 = sweep(book["bids"], q3)
        v3 = value_of(fills3)
        fee3 = v3 * TAKER
        gross = v3 - entry * q3
        open_share = (fee1 + fee2) * q3 / size
        o3 = await market(s, "Sell", "0.06", reduceOnly=True)
        assert (o3["orderStatus"], o3["reduceOnly"], D(o3["cumExecQty"])) == ("Filled", True, q3)
        rows3 = await executions(s, orderId=o3["orderId"])
        check_fills(rows3, fills3)
        assert all(e["closedSize"] == e["execQty"] for e in rows3)

        (closed,) = (await call(s.get_closed_pnl, category="linear", symbol="BTCUSDT", limit=1))[
            "result"
        ]["list"]
        assert (closed["orderId"], closed["side"], closed["orderType"]) == (
            o3["orderId"],
            "Sell",
            "Market",
        )
        assert (D(closed["closedSize"]), closed["fillCount"], closed["leverage"]) == (
            q3,
            str(len(fills3)),
            "5",
        )
        assert (D(closed["cumEntryValue"]), D(closed["cumExitValue"])) == (entry * q3, v3)
        assert D(closed["avgEntryPrice"]) == entry
        assert D(closed["avgExitPrice"]) == q8(v3 / q3)
        assert (D(closed["openFee"]), D(closed["closeFee"])) == (open_share, fee3)
        assert D(closed["closedPnl"]) == gross - open_share - fee3

        pos = await position(s)
        assert (D(pos["size"]), D(pos["avgPrice"])) == (size - q3, entry)
        assert D(pos["cumRealisedPnl"]) == -(fee1 + fee2) + gross - fee3
        assert D(pos["positionIM"]) == (size - q3) * entry / lev
        wallet = await usdt(s)
        assert D(wallet["walletBalance"]) == DEFAULTS["USDT"] - fee1 - fee2 + gross - fee3

        # A reduce-only order larger than the position only closes it.
        o4 = await market(s, "Sell", "0.2", reduceOnly=True)
        assert (o4["orderStatus"], D(o4["cumExecQty"])) == ("Filled", size - q3)
        (row,) = await positions(s)
        assert (row["side"], row["size"], row["avgPrice"], row["positionIM"]) == ("", "0", "0", "0")
        assert D((await usdt(s))["totalPositionIM"]) == 0
        # ... and one on a flat position is refused (110017).
        code = await refused(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Sell",
            orderType="Market",
            qty="0.01",
            reduceOnly=True,
        )
        assert code == 110017


async def test_close_position_with_qty_zero(sb: Sandbox) -> None:
    book = await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        fills = sweep(book["bids"], D("0.03"))
        opened = await market(s, "Sell", "0.03")
        assert D(opened["cumExecValue"]) == value_of(fills)
        pos = await position(s)
        assert (pos["side"], pos["size"]) == ("Sell", "0.03")
        entry = D(pos["avgPrice"])
        assert entry == q8(value_of(fills) / D("0.03"))

        # qty "0" + reduceOnly + closeOnTrigger closes the whole position (REFERENCE §8.1).
        book = sb.book("BTCUSDT", "linear", 200)
        close_fills = sweep(book["asks"], D("0.03"))
        exit_value = value_of(close_fills)
        closing = await market(s, "Buy", "0", reduceOnly=True, closeOnTrigger=True)
        assert (closing["orderStatus"], D(closing["cumExecQty"])) == ("Filled", D("0.03"))
        assert (closing["reduceOnly"], closing["closeOnTrigger"]) == (True, True)
        assert D(closing["cumExecValue"]) == exit_value
        (row,) = await positions(s)
        assert (row["side"], row["size"]) == ("", "0")
        open_fee = value_of(fills) * TAKER
        close_fee = exit_value * TAKER
        assert D(row["cumRealisedPnl"]) == (entry * D("0.03") - exit_value) - open_fee - close_fee
        (closed,) = (await call(s.get_closed_pnl, category="linear", symbol="BTCUSDT"))["result"][
            "list"
        ]
        assert D(closed["closedPnl"]) == (entry * D("0.03") - exit_value) - open_fee - close_fee

        # With nothing left to close, the same request is refused (110017).
        code = await refused(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="0",
            reduceOnly=True,
            closeOnTrigger=True,
        )
        assert code == 110017


# --- hedge mode ----------------------------------------------------------------------------------


async def test_hedge_mode(sb: Sandbox) -> None:
    book = await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        # Only USDT perpetuals have hedge mode (REFERENCE §9.6): the USDC perp refuses.
        code = await refused(s.switch_position_mode, category="linear", symbol="BTCPERP", mode=3)
        assert code == 110029
        assert [r["positionIdx"] for r in await positions(s, "BTCPERP")] == [0]

        r = await call(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=3)
        assert r["result"] == {}
        code = await refused(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=3)
        assert code == 110025
        # Two rows even when flat: positionIdx 1 (long side) and 2 (short side).
        rows = sorted(await positions(s), key=lambda r: r["positionIdx"])
        assert [(r["positionIdx"], r["side"], r["size"]) for r in rows] == [
            (1, "", "0"),
            (2, "", "0"),
        ]
        # Orders must name the side (positionIdx 1 or 2) in hedge mode: 10001 otherwise.
        for idx in (None, 0):
            extra = {} if idx is None else {"positionIdx": idx}
            code = await refused(
                s.place_order,
                category="linear",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Market",
                qty="0.01",
                **extra,
            )
            assert code == 10001

        long_fills = sweep(book["asks"], D("0.02"))
        short_fills = sweep(book["bids"], D("0.03"))
        await market(s, "Buy", "0.02", positionIdx=1)
        await market(s, "Sell", "0.03", positionIdx=2)
        long_entry = q8(value_of(long_fills) / D("0.02"))
        short_entry = q8(value_of(short_fills) / D("0.03"))
        long_row, short_row = await position(s, idx=1), await position(s, idx=2)
        assert (long_row["side"], long_row["size"], D(long_row["avgPrice"])) == (
            "Buy",
            "0.02",
            long_entry,
        )
        assert (short_row["side"], short_row["size"], D(short_row["avgPrice"])) == (
            "Sell",
            "0.03",
            short_entry,
        )
        assert D(long_row["positionIM"]) == D("0.02") * long_entry / 10
        assert D(short_row["positionIM"]) == D("0.03") * short_entry / 10
        mark = D(short_row["markPrice"])
        assert D(short_row["unrealisedPnl"]) == (short_entry - mark) * D("0.03")
        # The sandbox's own control shows the same two positions.
        ctl = {r["positionIdx"]: (r["side"], r["size"]) for r in sb.positions(creds.api_key)}
        assert ctl == {1: ("Buy", "0.02"), 2: ("Sell", "0.03")}

        code = await refused(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=0)
        assert code == 110024, "switching with an open position must be refused (110024)"

        # Close each leg: the long with a reduce-only sell, the short with close-position.
        await market(s, "Sell", "0.02", positionIdx=1, reduceOnly=True)
        assert ((await position(s, idx=1))["size"], (await position(s, idx=2))["size"]) == (
            "0",
            "0.03",
        )
        await market(s, "Buy", "0", positionIdx=2, reduceOnly=True, closeOnTrigger=True)
        rows = sorted(await positions(s), key=lambda r: r["positionIdx"])
        assert [(r["positionIdx"], r["size"]) for r in rows] == [(1, "0"), (2, "0")]
        closed = (await call(s.get_closed_pnl, category="linear", symbol="BTCUSDT"))["result"]
        assert sorted(c["side"] for c in closed["list"]) == ["Buy", "Sell"]

        # A resting order blocks the switch too (110028).
        bid = sb.book("BTCUSDT", "linear", 1)["bids"][0][0]
        await call(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.01",
            price=price_text(sb, bid * D("0.97")),
            positionIdx=1,
        )
        code = await refused(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=0)
        assert code == 110028, "switching with an open order must be refused (110028)"
        await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")
        await call(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=0)
        assert [r["positionIdx"] for r in await positions(s)] == [0]


# --- batch ---------------------------------------------------------------------------------------


async def test_linear_batch_of_20_then_cancel_all(sb: Sandbox) -> None:
    await settle(sb, "BTCUSDT", "linear")
    tops = {sym: sb.book(sym, "linear", 1)["bids"][0][0] for sym in ("BTCUSDT", "ETHUSDT")}

    def item(i: int) -> dict[str, str]:
        symbol, qty = ("BTCUSDT", "0.001") if i % 2 == 0 else ("ETHUSDT", "0.01")
        price = on_grid(tops[symbol] * (D("0.95") - D(i) / 1000), tick_of(sb, symbol, "linear"))
        return {
            "symbol": symbol,
            "side": "Buy",
            "orderType": "Limit",
            "qty": qty,
            "price": str(price),
            "orderLinkId": f"lb-{i}",
        }

    items = [item(i) for i in range(20)]
    # At most 20 orders in a linear batch (REFERENCE §8.5): 21 is refused whole.
    async with pybit_http(sb, sb.create_account()) as s:
        code = await refused(s.place_batch_order, category="linear", request=[*items, item(20)])
        assert code == 10001
        assert (await call(s.get_open_orders, category="linear", settleCoin="USDT"))["result"][
            "list"
        ] == []

    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        # Each order of a batch is one unit of the 10-a-second derivatives batch limit of the
        # default tier (REFERENCE §4): of 20, the leading 10 are placed, the rest fail with 10006.
        r = await call(s.place_batch_order, category="linear", request=items)
        codes = [c["code"] for c in r["retExtInfo"]["list"]]
        assert codes == [0] * 10 + [10006] * 10
        placed = r["result"]["list"]
        assert [(p["category"], p["symbol"], p["orderLinkId"]) for p in placed] == [
            ("linear", i["symbol"], i["orderLinkId"]) for i in items
        ]
        assert all(p["orderId"] and p["createAt"].isdigit() for p in placed[:10])
        assert all(p["orderId"] == "" for p in placed[10:])
        await asyncio.sleep(1.05)  # the rolling one-second window frees up
        r = await call(s.place_batch_order, category="linear", request=items[10:])
        assert [c["code"] for c in r["retExtInfo"]["list"]] == [0] * 10
        ids = [p["orderId"] for p in placed[:10]] + [p["orderId"] for p in r["result"]["list"]]

        listed = (await call(s.get_open_orders, category="linear", settleCoin="USDT", limit=50))[
            "result"
        ]["list"]
        assert {o["orderId"]: (o["orderLinkId"], o["price"], o["qty"]) for o in listed} == {
            oid: (i["orderLinkId"], i["price"], i["qty"]) for oid, i in zip(ids, items, strict=True)
        }
        assert all(o["orderStatus"] == "New" and o["positionIdx"] == 0 for o in listed)
        order_im = sum((D(i["qty"]) * D(i["price"]) / 10 for i in items), D(0))
        assert D((await usdt(s))["totalOrderIM"]) == order_im

        r = await call(s.cancel_all_orders, category="linear", settleCoin="USDT")
        assert r["result"]["success"] == "1"
        assert sorted((c["orderId"], c["orderLinkId"]) for c in r["result"]["list"]) == sorted(
            zip(ids, [i["orderLinkId"] for i in items], strict=True)
        )
        assert (await call(s.get_open_orders, category="linear", settleCoin="USDT"))["result"][
            "list"
        ] == []
        assert D((await usdt(s))["totalOrderIM"]) == 0
        cancelled = await order(s, ids[0])
        assert (cancelled["orderStatus"], cancelled["cancelType"]) == ("Cancelled", "CancelByUser")


# --- conditional orders, TP/SL -------------------------------------------------------------------


async def test_conditional_order_fires_on_a_price_move(sb: Sandbox) -> None:
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        last = await last_price(s)
        trigger = price_text(sb, last + 100)
        below = price_text(sb, last - 100)
        base = {"category": "linear", "symbol": "BTCUSDT", "orderType": "Market", "qty": "0.01"}
        # A rising trigger must be above the price watched, a falling one below (REFERENCE §8.11).
        code = await refused(
            s.place_order, **base, side="Buy", triggerPrice=below, triggerDirection=1
        )
        assert code == 110092
        code = await refused(
            s.place_order, **base, side="Buy", triggerPrice=trigger, triggerDirection=2
        )
        assert code == 110093

        ack = await call(
            s.place_order,
            **base,
            side="Buy",
            triggerPrice=trigger,
            triggerDirection=1,
            triggerBy="LastPrice",
            orderLinkId="cond-1",
        )
        order_id = ack["result"]["orderId"]
        (waiting,) = (
            await call(
                s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
            )
        )["result"]["list"]
        assert (waiting["orderId"], waiting["orderStatus"], waiting["stopOrderType"]) == (
            order_id,
            "Untriggered",
            "Stop",
        )
        assert (waiting["triggerPrice"], waiting["triggerDirection"], waiting["triggerBy"]) == (
            trigger,
            1,
            "LastPrice",
        )
        plain = await call(
            s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="Order"
        )
        assert plain["result"]["list"] == []
        # No margin is held until it fires (REFERENCE §8.11).
        assert D((await usdt(s))["totalOrderIM"]) == 0
        assert (await position(s))["size"] == "0"

        # A conditional cancelled before it fires ends Deactivated.
        other = await call(
            s.place_order,
            **base,
            side="Sell",
            triggerPrice=price_text(sb, last - 1000),
            triggerDirection=2,
        )
        await call(
            s.cancel_order,
            category="linear",
            symbol="BTCUSDT",
            orderId=other["result"]["orderId"],
        )
        assert (await order(s, other["result"]["orderId"]))["orderStatus"] == "Deactivated"

        sb.move_mid("BTCUSDT", last + 300, category="linear")
        assert await last_price(s) >= D(trigger)
        fired = await order(s, order_id)
        assert (fired["orderStatus"], fired["createType"], fired["stopOrderType"]) == (
            "Filled",
            "CreateByStopOrder",
            "Stop",
        )
        assert (fired["orderLinkId"], D(fired["cumExecQty"])) == ("cond-1", D("0.01"))
        rows = await executions(s, orderId=order_id)
        assert all(D(e["execPrice"]) >= D(trigger) for e in rows)
        check_fills(rows, [(D(e["execPrice"]), D(e["execQty"])) for e in rows])
        value = sum((D(e["execValue"]) for e in rows), D(0))
        assert D(fired["cumExecValue"]) == value
        pos = await position(s)
        assert (pos["side"], pos["size"], D(pos["avgPrice"])) == (
            "Buy",
            "0.01",
            q8(value / D("0.01")),
        )
        assert D(pos["cumRealisedPnl"]) == -value * TAKER
        await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)


async def test_trading_stop_full_tp_and_sl(sb: Sandbox) -> None:
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        opened = await market(s, "Buy", "0.02")
        entry = D((await position(s))["avgPrice"])
        last = await last_price(s)
        tp, sl = price_text(sb, last + 500), price_text(sb, last - 400)
        stop = {"category": "linear", "symbol": "BTCUSDT", "tpslMode": "Full", "positionIdx": 0}
        # A long's take-profit must be above the price, its stop-loss below.
        code = await refused(s.set_trading_stop, **stop, takeProfit=price_text(sb, last - 100))
        assert code == 10001
        code = await refused(s.set_trading_stop, **stop, stopLoss=price_text(sb, last + 100))
        assert code == 10001

        r = await call(
            s.set_trading_stop,
            **stop,
            takeProfit=tp,
            stopLoss=sl,
            tpTriggerBy="LastPrice",
            slTriggerBy="LastPrice",
        )
        assert r["result"] == {}
        pos = await position(s)
        assert (D(pos["takeProfit"]), D(pos["stopLoss"]), pos["tpslMode"]) == (D(tp), D(sl), "Full")
        stops = (
            await call(
                s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
            )
        )["result"]["list"]
        by_type = {o["stopOrderType"]: o for o in stops}
        assert set(by_type) == {"TakeProfit", "StopLoss"}
        for kind, price, direction, create in (
            ("TakeProfit", tp, 1, "CreateByTakeProfit"),
            ("StopLoss", sl, 2, "CreateByStopLoss"),
        ):
            o = by_type[kind]
            assert (o["orderStatus"], o["side"], o["triggerPrice"], o["triggerDirection"]) == (
                "Untriggered",
                "Sell",
                price,
                direction,
            )
            assert (o["createType"], o["reduceOnly"], o["closeOnTrigger"]) == (create, True, True)

        # The price falls through the stop-loss: the position is closed, the TP goes with it.
        sb.move_mid("BTCUSDT", D(sl) - 300, category="linear")
        (row,) = await positions(s)
        assert (row["size"], D(row["takeProfit"]), D(row["stopLoss"])) == ("0", 0, 0)
        sl_order = await order(s, by_type["StopLoss"]["orderId"])
        assert (sl_order["orderStatus"], D(sl_order["cumExecQty"])) == ("Filled", D("0.02"))
        tp_order = await order(s, by_type["TakeProfit"]["orderId"])
        assert (tp_order["orderStatus"], tp_order["cancelType"]) == (
            "Deactivated",
            "CancelByTpSlTsClear",
        )
        exit_rows = await executions(s, orderId=sl_order["orderId"])
        assert all(D(e["execPrice"]) <= D(sl) for e in exit_rows)
        exit_value = sum((D(e["execValue"]) for e in exit_rows), D(0))
        (closed,) = (await call(s.get_closed_pnl, category="linear", symbol="BTCUSDT", limit=1))[
            "result"
        ]["list"]
        open_fee, close_fee = D(opened["cumExecValue"]) * TAKER, exit_value * TAKER
        assert closed["orderId"] == sl_order["orderId"]
        assert (D(closed["openFee"]), D(closed["closeFee"])) == (open_fee, close_fee)
        assert D(closed["closedPnl"]) == exit_value - entry * D("0.02") - open_fee - close_fee
        assert D(row["cumRealisedPnl"]) == D(closed["closedPnl"])

        # A short's take-profit watching the mark price fires when the mark falls to it.
        await market(s, "Sell", "0.01")
        mark = D((await position(s))["markPrice"])
        tp = price_text(sb, mark - 300)
        await call(s.set_trading_stop, **stop, takeProfit=tp, tpTriggerBy="MarkPrice")
        (tp_wait,) = (
            await call(
                s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
            )
        )["result"]["list"]
        assert (tp_wait["stopOrderType"], tp_wait["side"], tp_wait["triggerBy"]) == (
            "TakeProfit",
            "Buy",
            "MarkPrice",
        )
        assert tp_wait["triggerDirection"] == 2
        sb.move_mid("BTCUSDT", mark - 500, category="linear")
        assert (await position(s))["size"] == "0"
        assert (await order(s, tp_wait["orderId"]))["orderStatus"] == "Filled"


# --- WebSocket -----------------------------------------------------------------------------------

# Justified differences of the sandbox's linear messages from the documented examples.
WS_ALLOW: dict[str, Allowance] = {
    "ws_execution": {
        ("type", "data[].extraFees"): 'a list only for some regional users, otherwise "" (§13.2)',
    },
    "ws_order": {  # the example is an option order; ours is linear
        ("extra", "data[].createType"): "absent for spot and option only (§13.1)",
        ("extra", "data[].isLeverage"): "in the topic's field list (§13.1)",
        ("extra", "data[].ocoTriggerBy"): "in the topic's field list (§13.1)",
        ("extra", "data[].parentOrderLinkId"): "in the topic's field list (§13.1)",
        ("extra", "data[].marketUnit"): "in the topic's field list (§13.1)",
        ("extra", "data[].slippageToleranceType"): "in the topic's field list (§13.1)",
        ("extra", "data[].slippageTolerance"): "in the topic's field list (§13.1)",
        ("extra", "data[].brokerOrderPrice"): "in the topic's field list (§13.1)",
    },
    "ws_position": {
        ("extra", "data[].delta"): "in the topic's field list (§13.3; options only)",
        ("extra", "data[].gamma"): "in the topic's field list (§13.3; options only)",
        ("extra", "data[].vega"): "in the topic's field list (§13.3; options only)",
        ("extra", "data[].theta"): "in the topic's field list (§13.3; options only)",
        ("extra", "data[].openTime"): "in the topic's field list (§13.3); the example predates it",
    },
}


async def test_ws_position_and_execution(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, examples_dir: Path
) -> None:
    book = await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    fills = sweep(book["asks"], D("0.01"))
    async with (
        pybit_http(sb, creds) as s,
        pybit_ws(
            monkeypatch, sb, "private", api_key=creds.api_key, api_secret=creds.api_secret
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        subscribe(ws.position_stream, lambda m: None)
        subscribe(ws.execution_stream, lambda m: None)
        subscribe(ws.order_stream, lambda m: None)
        await wait_until("three subscribe acks", lambda: len(tape.acks()) >= 3)
        assert all(a["success"] is True for a in tape.acks())

        opened = await market(s, "Buy", "0.01", orderLinkId="ws-open")

        def execs_of(order_id: str) -> list[dict[str, Any]]:
            return [
                e for m in tape.topic("execution") for e in m["data"] if e["orderId"] == order_id
            ]

        def last_position() -> dict[str, Any] | None:
            rows = [
                p for m in tape.topic("position") for p in m["data"] if p["symbol"] == "BTCUSDT"
            ]
            return rows[-1] if rows else None

        await wait_until(
            "the opening fills",
            lambda: sum(D(e["execQty"]) for e in execs_of(opened["orderId"])) == D("0.01"),
        )
        await wait_until(
            "the opened position",
            lambda: (p := last_position()) is not None and p["size"] == "0.01",
        )
        rest_pos = await position(s)
        pushed = last_position()
        assert pushed is not None
        assert (pushed["category"], pushed["positionIdx"], pushed["side"]) == ("linear", 0, "Buy")
        assert D(pushed["entryPrice"]) == D(rest_pos["avgPrice"]) == q8(value_of(fills) / D("0.01"))
        for k in ("size", "positionValue", "leverage", "positionIM", "cumRealisedPnl"):
            assert pushed[k] == rest_pos[k], k
        ws_rows = execs_of(opened["orderId"])
        rest_rows = await executions(s, orderId=opened["orderId"])
        assert sorted(e["execId"] for e in ws_rows) == sorted(e["execId"] for e in rest_rows)
        assert all(e["category"] == "linear" and D(e["execPnl"]) == 0 for e in ws_rows)
        # seq links fills to position updates (REFERENCE §8.10, §16).
        assert pushed["seq"] == max(e["seq"] for e in ws_rows) == rest_pos["seq"]

        # Part of it closed: each fill's execPnl is its close P&L (REFERENCE §13.2).
        entry = D(rest_pos["avgPrice"])
        closing = await market(s, "Sell", "0.004", reduceOnly=True)
        await wait_until(
            "the closing fills",
            lambda: sum(D(e["execQty"]) for e in execs_of(closing["orderId"])) == D("0.004"),
        )
        await wait_until(
            "the reduced position",
            lambda: (p := last_position()) is not None and p["size"] == "0.006",
        )
        for e in execs_of(closing["orderId"]):
            assert e["closedSize"] == e["execQty"]
            assert D(e["execPnl"]) == (D(e["execPrice"]) - entry) * D(e["execQty"])
        orders = [o for m in tape.topic("order") for o in m["data"]]
        final = [o for o in orders if o["orderId"] == closing["orderId"]][-1]
        assert (final["orderStatus"], final["reduceOnly"], final["category"]) == (
            "Filled",
            True,
            "linear",
        )
        await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
        await wait_until(
            "the closed position", lambda: (p := last_position()) is not None and p["size"] == "0"
        )

    found: dict[str, list[str]] = {}
    for stem, message in (
        ("ws_position", tape.topic("position")[0]),
        ("ws_execution", tape.topic("execution")[0]),
        ("ws_order", tape.topic("order")[0]),
    ):
        lines = problems(
            load_example(examples_dir, stem), message, WS_ALLOW.get(stem), {"data[].cumFeeDetail"}
        )
        if lines:
            found[stem] = lines
    assert not found, "linear WebSocket messages differ from the docs:\n" + "\n".join(
        f"  {key}: {line}" for key, lines in found.items() for line in lines
    )


# --- funding -------------------------------------------------------------------------------------


async def test_funding_settlement(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    await settle(sb, "BTCUSDT", "linear")
    long_creds, short_creds = sb.create_account(), sb.create_account()
    rate = D("0.0003")
    async with (
        pybit_http(sb, long_creds) as s_long,
        pybit_http(sb, short_creds) as s_short,
        pybit_ws(
            monkeypatch,
            sb,
            "private",
            api_key=long_creds.api_key,
            api_secret=long_creds.api_secret,
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        subscribe(ws.execution_stream, lambda m: None)
        subscribe(ws.wallet_stream, lambda m: None)
        await wait_until("two subscribe acks", lambda: len(tape.acks()) >= 2)
        await market(s_long, "Buy", "0.05")
        await market(s_short, "Sell", "0.03")
        before = {}
        for name, s in (("long", s_long), ("short", s_short)):
            ledger = (await call(s.get_transaction_log, accountType="UNIFIED", category="linear"))[
                "result"
            ]["list"]
            before[name] = (
                D((await usdt(s))["walletBalance"]),
                D((await position(s))["cumRealisedPnl"]),
                D(ledger[0]["cashBalance"]),
            )
        sb.set_funding_rate("BTCUSDT", rate)
        try:
            assert sb.settle_funding("BTCUSDT") >= 2
        finally:
            sb.set_funding_rate("BTCUSDT", DEFAULT_RATE)

        for name, s, side, size in (
            ("long", s_long, "Buy", D("0.05")),
            ("short", s_short, "Sell", D("0.03")),
        ):
            signed_rate = rate if side == "Buy" else -rate
            (e,) = await executions(s, execType="Funding")
            assert (e["symbol"], e["side"], e["execType"], e["orderType"]) == (
                "BTCUSDT",
                side,
                "Funding",
                "UNKNOWN",
            )
            assert re.fullmatch(rf"{int(e['execTime']) // 1000}-BTCUSDT-\d+-{side}", e["orderId"])
            assert (e["orderLinkId"], e["isMaker"], e["stopOrderType"]) == ("", False, "UNKNOWN")
            assert all(D(e[k]) == 0 for k in ("orderPrice", "orderQty", "leavesQty", "closedSize"))
            assert (D(e["execQty"]), e["execPrice"]) == (size, e["markPrice"])
            assert D(e["execValue"]) == size * D(e["execPrice"])
            # Bybit's sign: feeRate side-signed, execFee = execValue x feeRate, positive = paid.
            assert D(e["feeRate"]) == signed_rate
            fee = D(e["execFee"])
            assert fee == D(e["execValue"]) * signed_rate
            assert (fee > 0) == (side == "Buy")

            (row,) = (
                await call(
                    s.get_transaction_log,
                    accountType="UNIFIED",
                    category="linear",
                    type="SETTLEMENT",
                )
            )["result"]["list"]
            assert (row["symbol"], row["side"], row["currency"], row["type"]) == (
                "BTCUSDT",
                side,
                "USDT",
                "SETTLEMENT",
            )
            assert D(row["funding"]) == -fee, "ledger funding is the opposite of execFee"
            assert (D(row["change"]), D(row["fee"]), D(row["cashFlow"])) == (-fee, 0, 0)
            assert (D(row["qty"]), D(row["size"])) == (size, size if side == "Buy" else -size)
            assert (row["tradePrice"], D(row["feeRate"])) == (e["execPrice"], signed_rate)
            assert D(row["funding"]) == -D(row["qty"]) * D(row["tradePrice"]) * D(row["feeRate"])
            assert (row["transactionTime"], row["orderId"]) == (e["execTime"], e["orderId"])
            wallet_before, cum_before, cash_before = before[name]
            assert D(row["cashBalance"]) == cash_before - fee
            assert (
                D((await usdt(s))["walletBalance"]) == wallet_before - fee == D(row["cashBalance"])
            )
            assert D((await position(s))["cumRealisedPnl"]) == cum_before - fee

            hist = (
                await call(s.get_funding_rate_history, category="linear", symbol="BTCUSDT", limit=1)
            )["result"]["list"]
            assert hist == [
                {
                    "symbol": "BTCUSDT",
                    "fundingRate": "0.0003",
                    "fundingRateTimestamp": e["execTime"],
                }
            ]

        # The long's funding row is pushed on the execution topic, then its wallet.
        (rest_row,) = await executions(s_long, execType="Funding")
        await wait_until(
            "the Funding execution",
            lambda: any(
                x["execType"] == "Funding" for m in tape.topic("execution") for x in m["data"]
            ),
        )
        (pushed,) = [
            x for m in tape.topic("execution") for x in m["data"] if x["execType"] == "Funding"
        ]
        assert {k: pushed[k] for k in rest_row} == rest_row
        assert pushed["category"] == "linear"
        want_wallet = before["long"][0] - D(rest_row["execFee"])
        await wait_until(
            "the wallet after funding",
            lambda: any(
                D(c["walletBalance"]) == want_wallet
                for m in tape.topic("wallet")
                for w in m["data"]
                for c in w["coin"]
                if c["coin"] == "USDT"
            ),
        )
        await market(s_long, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
        await market(s_short, "Buy", "0", reduceOnly=True, closeOnTrigger=True)


# --- documented behaviour the sandbox lacks (these fail until it is there) -----------------------


async def test_position_row_fields_documented(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every field of the documented position object (REST §9.1, WS §13.3) is there; TP/SL prices
    have the price scale's decimals like the unset "0.00"."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with (
        pybit_http(sb, creds) as s,
        pybit_ws(
            monkeypatch, sb, "private", api_key=creds.api_key, api_secret=creds.api_secret
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        subscribe(ws.position_stream, lambda m: None)
        await wait_until("the subscribe ack", lambda: len(tape.acks()) >= 1)
        await market(s, "Buy", "0.01")
        tp = price_text(sb, await last_price(s) + 500)
        await call(
            s.set_trading_stop,
            category="linear",
            symbol="BTCUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit=tp,
        )

        # the push of the trading stop (the market order's own push may come first): any with
        # a take profit set; its text is compared below
        def with_tp() -> list[dict[str, Any]]:
            return [x for m in tape.topic("position") for x in m["data"] if D(x["takeProfit"] or 0)]

        await wait_until("the trading stop's position push", lambda: bool(with_tp()))
        rest = await position(s)
        pushed = with_tp()[-1]
        await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
    found = {
        "REST fields missing": sorted(POSITION_REST_FIELDS - set(rest)),
        "WS fields missing": sorted(POSITION_WS_FIELDS - set(pushed)),
        "takeProfit text (REST, WS)": [
            x for x in (rest["takeProfit"], pushed["takeProfit"]) if x != tp
        ],
    }
    assert not any(found.values()), f"position rows differ from the docs (TP {tp}): {found}"


async def test_attached_tp_sl_documented(sb: Sandbox) -> None:
    """takeProfit / stopLoss on a create (REFERENCE §8.1) become the position's TP/SL when the
    order fills, and fire like those of trading-stop."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        last = await last_price(s)
        tp, sl = price_text(sb, last + 400), price_text(sb, last - 400)
        try:
            await market(s, "Buy", "0.01", takeProfit=tp, stopLoss=sl)
            pos = await position(s)
            assert (D(pos["takeProfit"]), D(pos["stopLoss"])) == (D(tp), D(sl))
            stops = (
                await call(
                    s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
                )
            )["result"]["list"]
            assert sorted(o["stopOrderType"] for o in stops) == ["StopLoss", "TakeProfit"]
            sb.move_mid("BTCUSDT", D(tp) + 200, category="linear")
            assert (await position(s))["size"] == "0"
        finally:
            await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")
            if (await position(s))["size"] != "0":
                await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)


async def test_last_price_on_created_documented(sb: Sandbox) -> None:
    """``lastPriceOnCreated`` (REFERENCE §8.8, §8.11) is the last price when the order was
    created, not the current one."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        last = await last_price(s)
        ack = await call(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=price_text(sb, last - 2000),
        )
        sb.move_mid("BTCUSDT", last + 200, category="linear")
        assert await last_price(s) != last
        (live,) = (
            await call(s.get_open_orders, category="linear", orderId=ack["result"]["orderId"])
        )["result"]["list"]
        await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")
        assert D(live["lastPriceOnCreated"]) == last


async def test_market_order_price_documented(sb: Sandbox) -> None:
    """A derivatives market order is an IOC limit order at a protective price; the order (and its
    executions' orderPrice) carry that price, not "0" (REFERENCE §8.1; the execution examples)."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        bought = await market(s, "Buy", "0.01")
        await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
        (e, *_) = await executions(s, orderId=bought["orderId"])
    assert D(bought["price"]) >= D(bought["avgPrice"]), (
        "a buy's protective price is above its fills"
    )
    assert e["orderPrice"] == bought["price"]


async def test_position_message_on_order_create_documented(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The position topic pushes on every order create/amend/cancel, even without a position
    change (REFERENCE §13.3)."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with (
        pybit_http(sb, creds) as s,
        pybit_ws(
            monkeypatch, sb, "private", api_key=creds.api_key, api_secret=creds.api_secret
        ) as (ws, tape),
    ):
        await wait_until("auth", lambda: ws.auth)
        subscribe(ws.position_stream, lambda m: None)
        await wait_until("the subscribe ack", lambda: len(tape.acks()) >= 1)
        bid = sb.book("BTCUSDT", "linear", 1)["bids"][0][0]
        await call(
            s.place_order,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=price_text(sb, bid * D("0.97")),
        )
        try:
            await wait_until(
                "a position message after an order create",
                lambda: bool(tape.topic("position")),
                timeout=SHORT_WAIT_S,
            )
        finally:
            await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")


async def test_hedge_position_sides_documented(sb: Sandbox) -> None:
    """In hedge mode positionIdx 1 is the long side and 2 the short side (REFERENCE §6, §9.6): an
    opposite-side order on a side's index closes that side (or is refused), never opens the
    opposite position in it."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        await call(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=3)
        try:
            await refused(
                s.place_order,
                category="linear",
                symbol="BTCUSDT",
                side="Sell",
                orderType="Market",
                qty="0.01",
                positionIdx=1,
            )
            rows = {r["positionIdx"]: r["side"] for r in await positions(s)}
        finally:
            for idx, row in ((r["positionIdx"], r) for r in await positions(s)):
                if row["size"] != "0":
                    side = "Buy" if row["side"] == "Sell" else "Sell"
                    await market(s, side, row["size"], positionIdx=idx, reduceOnly=True)
            await call(s.switch_position_mode, category="linear", symbol="BTCUSDT", mode=0)
    assert rows == {1: "", 2: ""}, f"a Sell on positionIdx 1 opened {rows}"


async def test_position_tp_follows_its_order_documented(sb: Sandbox) -> None:
    """The position's takeProfit is the TP that will fire: cancelling the TP order (cancel-all
    with no filter cancels every kind, REFERENCE §8.4) clears it, as trading-stop "0" does."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        await market(s, "Buy", "0.01")
        tp = price_text(sb, await last_price(s) + 1000)
        await call(
            s.set_trading_stop,
            category="linear",
            symbol="BTCUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit=tp,
        )
        await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")
        stops = (
            await call(
                s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
            )
        )["result"]["list"]
        shown = (await position(s))["takeProfit"]
        await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
    assert stops == []
    assert D(shown) == 0, f"the position shows takeProfit {shown} with no TP order left"


async def test_partial_limit_tp_sl_documented(sb: Sandbox) -> None:
    """Partial TP/SL with Limit order types (REFERENCE §8.1, §9.4): trading-stop makes a
    PartialTakeProfit that is a limit order at tpLimitPrice for tpSize; a create with
    tpslMode=Partial keeps its mode and limit prices."""
    await settle(sb, "BTCUSDT", "linear")
    creds = sb.create_account()
    async with pybit_http(sb, creds) as s:
        last = await last_price(s)
        tp, tp_limit = price_text(sb, last + 600), price_text(sb, last + 550)
        sl, sl_limit = price_text(sb, last - 600), price_text(sb, last - 550)
        found: dict[str, Any] = {}
        try:
            await market(s, "Buy", "0.01")
            await call(
                s.set_trading_stop,
                category="linear",
                symbol="BTCUSDT",
                positionIdx=0,
                tpslMode="Partial",
                takeProfit=tp,
                tpOrderType="Limit",
                tpLimitPrice=tp_limit,
                tpSize="0.005",
                stopLoss=sl,
                slOrderType="Limit",
                slLimitPrice=sl_limit,
                slSize="0.005",
            )
            stops = (
                await call(
                    s.get_open_orders, category="linear", symbol="BTCUSDT", orderFilter="StopOrder"
                )
            )["result"]["list"]
            by_type = {o["stopOrderType"]: o for o in stops}
            for kind, limit in (("PartialTakeProfit", tp_limit), ("PartialStopLoss", sl_limit)):
                o = by_type[kind]
                got = (o["orderType"], o["price"], o["qty"])
                if got != ("Limit", limit, "0.005"):
                    found[kind] = got

            bid = sb.book("BTCUSDT", "linear", 1)["bids"][0][0]
            ack = await call(
                s.place_order,
                category="linear",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.01",
                price=price_text(sb, bid * D("0.97")),
                takeProfit=tp,
                stopLoss=price_text(sb, bid * D("0.90")),
                tpslMode="Partial",
                tpOrderType="Limit",
                slOrderType="Limit",
                tpLimitPrice=tp_limit,
                slLimitPrice=price_text(sb, bid * D("0.91")),
            )
            (resting,) = (
                await call(s.get_open_orders, category="linear", orderId=ack["result"]["orderId"])
            )["result"]["list"]
            got = (resting["tpslMode"], resting["tpLimitPrice"])
            if got != ("Partial", tp_limit):
                found["create tpslMode, tpLimitPrice"] = got
        finally:
            await call(s.cancel_all_orders, category="linear", symbol="BTCUSDT")
            await market(s, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
    assert not found, f"partial limit TP/SL differ from the docs: {found}"
