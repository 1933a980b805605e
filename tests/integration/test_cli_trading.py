"""Account and trading commands against a sandbox: ``balance``, ``buy``/``sell`` (validated
before sending), ``orders``, ``cancel``, ``positions``, ``leverage``, ``position-mode``,
``funding`` and ``history`` (filters, CSV export, closed PnL)."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from bybitkit.sandbox import Sandbox

from .test_cli_harness import Cli, cli, sandbox_info

__all__ = ["cli"]


async def test_balance_of_every_connection_with_usd_values(cli: Cli, sandbox: Sandbox) -> None:
    first = sandbox.create_account()
    second = sandbox.create_account(balances={"USDT": "500", "BTC": "0.5"})
    await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox, first))
    await cli("connect", "sandbox_perpetual", "--sandbox-info", sandbox_info(sandbox, first))
    data = (await cli("balance", "--json")).json()
    # Spot and perpetual on one key are one unified account: shown and counted once.
    assert [a["connectors"] for a in data] == [["sandbox", "sandbox_perpetual"]]
    coins = {c["coin"]: c for c in data[0]["coins"]}
    assert coins["USDT"]["usd_value"] == "100000" and coins["USDC"]["usd_value"] == "100000"
    assert Decimal(coins["BTC"]["usd_value"]) > 1000  # priced, not a stablecoin
    total = sum(Decimal(c["usd_value"]) for c in coins.values())
    assert Decimal(data[0]["total_usd"]) == total
    # One connector named on the command line: that one only.
    one = (await cli("balance", "--sandbox-info", sandbox_info(sandbox, second), "--json")).json()
    assert {c["coin"]: c["total"] for c in one[0]["coins"]} == {"USDT": "500", "BTC": "0.5"}
    table = await cli("balance")
    assert "sandbox + sandbox_perpetual (one unified account)" in table.stdout
    assert "USD value" in table.stdout


async def test_balance_needs_a_connection(cli: Cli) -> None:
    out = await cli("balance", code=1)
    assert "not connected: run `bybitkit connect <connector>` first" in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["BTC-USDT", "abc"], "AMOUNT: expected a decimal number such as 0.001, got 'abc'"),
        (["BTC-USDT", "0"], "AMOUNT: expected a positive size, got '0'"),
        (["BTC-USDT", "0.0000001", "--price", "60000"],
         "AMOUNT: expected a multiple of 0.000001 (basePrecision), got '0.0000001'"),
        (["BTC-USDT", "0.001", "--price", "60000.05"],
         "--price: expected a multiple of 0.1 (tickSize), got '60000.05'"),
        (["BTC-USDT", "0.00001", "--price", "60000"],
         "AMOUNT: expected a notional of at least 5 USDT (minOrderAmt), got '0.6'"),
        (["BTC-USDT", "0.001", "--type", "limit"], "--price: expected a limit price for a limit"),
        (["BTC-USDT", "0.001", "--type", "market", "--price", "1"],
         "--price: expected no price for a market order"),
        (["BTC-USDT", "0.001", "--type", "stop"],
         "--type: expected limit, limit-maker or market, got 'stop'"),
        (["BTC-USDT", "0.001", "--price", "60000", "--tif", "day"],
         "--tif: expected gtc, ioc or fok, got 'day'"),
        (["BTC-USDT", "0.001", "--type", "limit-maker", "--price", "1", "--tif", "ioc"],
         "--tif: expected gtc (or nothing) for limit-maker"),
        (["DOGE-USDT", "1"], "PAIR: expected a spot pair of this exchange"),
        (["BTC-USDT", "1", "--reduce-only"],
         "--reduce-only/--position-action: expected a perpetual connector, got 'sandbox'"),
    ],
)  # fmt: skip
async def test_orders_are_validated_before_sending(
    cli: Cli, sandbox: Sandbox, args: list[str], message: str
) -> None:
    creds = sandbox.create_account()
    out = await cli("buy", *args, "--sandbox-info", sandbox_info(sandbox, creds), code=2)
    assert message in out.stderr
    assert sandbox.orders(creds.api_key) == []  # nothing was sent


async def test_a_price_beyond_the_band_is_refused_locally(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    ask = sandbox.book("BTCUSDT", depth=1)["asks"][0][0]
    out = await cli("buy", "BTC-USDT", "0.001", "--price", str(ask * 2),
                    "--sandbox-info", sandbox_info(sandbox, creds), code=2)  # fmt: skip
    assert "--price: expected <=" in out.stderr and "(priceLimit)" in out.stderr
    assert sandbox.orders(creds.api_key) == []


async def test_limit_order_lifecycle(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox, creds))
    bid = sandbox.book("BTCUSDT", depth=1)["bids"][0][0]
    price = str(bid - 50)
    placed = (await cli("buy", "BTC-USDT", "0.001", "--price", price, "--json")).json()
    assert placed["state"] == "open" and placed["type"] == "limit"
    assert placed["price"] == price and placed["exchange_order_id"]
    listed = (await cli("orders", "--json")).json()
    assert [o["client_order_id"] for o in listed] == [placed["client_order_id"]]
    assert "Open orders (sandbox)" in (await cli("orders")).stdout
    out = await cli("cancel", placed["client_order_id"])
    assert f"Order {placed['client_order_id']}: cancelled (user)" in out.stdout
    assert (await cli("orders", "--json")).json() == []
    missing = await cli("cancel", placed["client_order_id"], code=2)
    assert "ORDER_ID: expected the id of an open order" in missing.stderr
    # Several at once; then --all (by exchange id works too).
    a = (await cli("sell", "BTC-USDT", "0.001", "--price", str(bid + 500), "--json")).json()
    b = (await cli("sell", "ETH-USDT", "0.01", "--price", "9000", "-t", "limit-maker",
                   "--json")).json()  # fmt: skip
    assert b["type"] == "limit_maker" and b["state"] == "open"
    out = await cli("cancel", "--all", "--pair", "ETH-USDT", "--json")
    assert out.json()["cancelled"] == [b["client_order_id"]]
    out = await cli("cancel", a["exchange_order_id"])
    assert "cancelled" in out.stdout
    usage = await cli("cancel", code=2)
    assert "ORDER_ID: expected an order id, or --all" in usage.stderr


async def test_market_orders_and_a_post_only_that_would_take(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    info = sandbox_info(sandbox, creds)
    bought = (await cli("buy", "BTC-USDT", "0.002", "--sandbox-info", info, "--json")).json()
    assert bought["state"] == "filled" and bought["filled"] == "0.002"
    assert bought["fees"] == {"BTC": "0.000002"}
    sold = await cli("sell", "BTC-USDT", "0.001", "--sandbox-info", info)
    assert "state filled, filled 0.001" in sold.stdout
    spent = (await cli("buy", "ETH-USDT", "100", "--quote", "--sandbox-info", info,
                       "--json")).json()  # fmt: skip
    assert spent["state"] == "filled"
    ask = sandbox.book("BTCUSDT", depth=1)["asks"][0][0]
    maker = await cli("buy", "BTC-USDT", "0.001", "-t", "limit-maker", "--price", str(ask),
                      "--sandbox-info", info, code=1)  # fmt: skip
    assert "state cancelled (post_only_would_take), filled 0" in maker.stdout
    ioc = (await cli("buy", "BTC-USDT", "0.001", "--price", str(ask - 100), "--tif", "ioc",
                     "--sandbox-info", info, "--json", code=1)).json()  # fmt: skip
    assert ioc["state"] == "cancelled" and ioc["reason"] == "no_liquidity"


async def test_perpetual_commands(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    info = sandbox_info(sandbox, creds)
    perp = ["-c", "sandbox_perpetual", "--sandbox-info", info]
    assert "BTC-USDT leverage: 10x" in (await cli("leverage", "BTC-USDT", *perp)).stdout
    out = await cli("leverage", "BTC-USDT", "5", *perp, "--json")
    assert out.json() == {"pair": "BTC-USDT", "leverage": "5", "changed": True}
    out = await cli("position-mode", "ETH-USDT", *perp)
    assert "ETH-USDT position mode: one-way" in out.stdout
    out = await cli("position-mode", "ETH-USDT", "hedge", *perp)
    assert "ETH-USDT position mode set to hedge" in out.stdout
    bad = await cli("position-mode", "ETH-USDT", "both", *perp, code=2)
    assert "MODE: expected one-way or hedge, got 'both'" in bad.stderr

    await cli("buy", "BTC-USDT", "0.01", *perp)
    hedge = await cli("sell", "ETH-USDT", "0.1", *perp, code=2)  # hedge: open or close?
    assert "--position-action: expected open or close" in hedge.stderr
    await cli("sell", "ETH-USDT", "0.1", "--position-action", "open", *perp)
    rows = (await cli("positions", *perp, "--json")).json()
    assert {(r["pair"], r["side"], r["size"]) for r in rows} == {
        ("BTC-USDT", "buy", "0.01"),
        ("ETH-USDT", "sell", "0.1"),
    }
    assert {r["pair"]: r["leverage"] for r in rows}["BTC-USDT"] == "5"
    assert "Unrealised PnL" in (await cli("positions", *perp)).stdout

    sandbox.set_funding_rate("BTCUSDT", "0.0005")
    assert sandbox.settle_funding("BTCUSDT") >= 1
    funding = (await cli("funding", "BTC-USDT", *perp, "--json")).json()
    assert funding["info"]["pair"] == "BTC-USDT" and funding["info"]["next_funding_ms"]
    (payment,) = funding["payments"]
    assert payment["pair"] == "BTC-USDT" and payment["side"] == "buy"
    assert Decimal(payment["amount"]) > 0 and Decimal(funding["net"]) == Decimal(payment["amount"])
    text = await cli("funding", "BTC-USDT", *perp)
    assert "funding rate" in text.stdout and "Net funding" in text.stdout

    close = await cli("sell", "BTC-USDT", "0.01", "--reduce-only", *perp, "--json")
    assert close.json()["reduce_only"] is True and close.json()["state"] == "filled"
    pnl = (await cli("history", "--closed-pnl", *perp, "--json")).json()
    (closed,) = pnl["closed_pnl"]
    assert closed["pair"] == "BTC-USDT" and closed["closed_size"] == "0.01"
    spot_only = await cli("positions", "--sandbox-info", info, code=2)
    assert "--connector: expected a perpetual connector for positions" in spot_only.stderr


async def test_history_filters_and_exports(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox, creds))
    await cli("connect", "sandbox_perpetual", "--sandbox-info", sandbox_info(sandbox, creds))
    btc = (await cli("buy", "BTC-USDT", "0.001", "-c", "sandbox", "--json")).json()
    eth = (await cli("buy", "ETH-USDT", "0.01", "-c", "sandbox", "--json")).json()
    perp = (await cli("buy", "BTC-USDT", "0.01", "-c", "sandbox_perpetual", "--json")).json()

    everything = (await cli("history", "--json")).json()
    assert everything["summary"]["orders"] == 3 and everything["summary"]["fills"] >= 3
    assert {o["client_order_id"] for o in everything["orders"]} == {
        btc["client_order_id"],
        eth["client_order_id"],
        perp["client_order_id"],
    }
    fees = everything["summary"]["fees"]
    assert set(fees) == {"BTC", "ETH", "USDT"}  # spot buys pay in the base coin

    spot = (await cli("history", "-c", "sandbox", "--pair", "BTCUSDT", "--json")).json()
    assert [o["client_order_id"] for o in spot["orders"]] == [btc["client_order_id"]]
    assert {f["pair"] for f in spot["fills"]} == {"BTC-USDT"}
    assert {f["connector"] for f in spot["fills"]} == {"sandbox"}
    future = (await cli("history", "--since", "2099-01-01", "--json")).json()
    assert future["summary"]["orders"] == 0 and future["fills"] == []
    recent = (await cli("history", "--since", "1h", "--until", "2099-01-01T00:00", "--json")).json()
    assert recent["summary"]["orders"] == 3

    folder = cli.home.parent / "export"
    out = await cli("history", "--export", str(folder), "--pair", "BTC-USDT")
    assert "Exported to" in out.stdout and "orders.csv (2 rows)" in out.stdout
    rows = list(csv.DictReader((folder / "fills.csv").read_text().splitlines()))
    assert {r["pair"] for r in rows} == {"BTC-USDT"} and len(rows) >= 2
    assert {r["client_order_id"] for r in rows} == {btc["client_order_id"], perp["client_order_id"]}
    text = await cli("history")
    assert "Orders (newest 3 of 3)" in text.stdout and "Fills" in text.stdout
    assert "Summary: 3 orders" in text.stdout

    bad = await cli("history", "--since", "yesterday", code=2)
    assert "--since: expected a date (2024-05-01)" in bad.stderr
    bad = await cli("history", "--since", "2d", "--until", "3d", code=2)
    assert "--since: expected a time before --until" in bad.stderr
    bad = await cli("history", "--closed-pnl", "-c", "sandbox", code=2)
    assert "--connector: expected a perpetual connector for --closed-pnl" in bad.stderr


async def test_history_sync_records_fills_made_while_away(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox, creds))
    ask = sandbox.book("BTCUSDT", depth=1)["asks"][0][0]
    resting = (await cli("sell", "BTC-USDT", "0.001", "--price", str(ask), "--json")).json()
    assert resting["state"] == "open"
    sandbox.inject_trade("BTCUSDT", "Buy", "0.5", str(ask + 1))  # fills it, nobody watching
    before = (await cli("history", "--json")).json()
    assert before["fills"] == []
    after = (await cli("history", "--sync", "--json")).json()
    assert [f["client_order_id"] for f in after["fills"]] == [resting["client_order_id"]]
    assert after["orders"][0]["state"] == "filled"
