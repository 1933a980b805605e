"""From ``connect`` to a filled order seen in ``history``, as a user does it: keys typed at the
prompts, the password asked by each command, the sandbox URL remembered by the key store."""

from __future__ import annotations

from decimal import Decimal

from bybitkit.sandbox import Sandbox

from .test_cli_harness import Cli, cli

__all__ = ["cli"]

PASSWORD = "e2e password"
NO_ENV_PASSWORD = {"BYBITKIT_PASSWORD": ""}


async def test_connect_then_a_filled_order_then_history(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url, env=NO_ENV_PASSWORD,
        input=f"{creds.api_key}\n{creds.api_secret}\n{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert "You are now connected to sandbox." in out.stdout

    before = await cli("balance", "--json", env=NO_ENV_PASSWORD, input=f"{PASSWORD}\n")
    usdt_before = next(
        Decimal(c["total"]) for c in before.json()[0]["coins"] if c["coin"] == "USDT"
    )
    buy = await cli("buy", "BTC-USDT", "0.001", env=NO_ENV_PASSWORD, input=f"{PASSWORD}\n")
    assert "state filled, filled 0.001" in buy.stdout
    order_id = next(w for w in buy.stdout.split() if w.startswith("bbk-"))

    history = await cli("history", env=NO_ENV_PASSWORD)  # the store needs no password
    assert order_id in history.stdout and "filled" in history.stdout
    assert "Summary: 1 orders, 1 fills" in history.stdout
    data = (await cli("history", "--json")).json()
    (fill,) = data["fills"]
    assert fill["client_order_id"] == order_id and fill["side"] == "buy"
    assert fill["qty"] == "0.001" and fill["fee"] == "0.000001" and fill["fee_currency"] == "BTC"
    # What the exchange booked is what the store holds.
    (execution,) = sandbox.executions(creds.api_key)
    assert execution["execId"] == fill["exec_id"]
    assert Decimal(execution["execPrice"]) == Decimal(fill["price"])
    after = await cli("balance", "--json", env=NO_ENV_PASSWORD, input=f"{PASSWORD}\n")
    usdt_after = next(Decimal(c["total"]) for c in after.json()[0]["coins"] if c["coin"] == "USDT")
    assert usdt_before - usdt_after == Decimal(fill["price"]) * Decimal("0.001")


async def test_paper_trading_from_the_command_line_needs_no_keys(
    cli: Cli, sandbox: Sandbox
) -> None:
    """`-c bybit_paper_trade` with a sandbox as the public source: no keys asked; the paper
    account lives in the store, so a second command sees what the first one did."""
    out = await cli("connect", "bybit_paper_trade", env=NO_ENV_PASSWORD)
    assert "needs no API keys" in out.stdout
    opts = ("-c", "bybit_paper_trade", "--sandbox-url", sandbox.rest_url)
    buy = await cli("buy", "BTC-USDT", "0.01", *opts, env=NO_ENV_PASSWORD)
    assert "state filled, filled 0.01" in buy.stdout
    data = (await cli("balance", *opts, "--json", env=NO_ENV_PASSWORD)).json()
    coins = {c["coin"]: Decimal(c["total"]) for c in data[0]["coins"]}
    assert coins["BTC"] == Decimal("1") + Decimal("0.01") * Decimal("0.999")  # 1 BTC to start
    assert sandbox.executions(sandbox.create_account().api_key) == []  # nothing on the exchange
