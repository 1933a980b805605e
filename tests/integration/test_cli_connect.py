"""``bybitkit connect``: prompts, checks, every failure cause by its code, warnings, the key
store, ``connections`` and ``disconnect``; and the sandbox's key flags that make them testable."""

from __future__ import annotations

import json
import stat
import time

import aiohttp
import pytest

from bybitkit.errors import ApiKeyExpired, IpNotAllowed, PermissionDenied
from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials
from bybitkit.v5.rest import RestClient

from .test_cli_harness import PASSWORD, Cli, cli, sandbox_info

__all__ = ["cli"]

DAY_MS = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_connect_prompts_checks_and_saves(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url,
        input=f"{creds.api_key}\n{creds.api_secret}\n",
    )  # fmt: skip
    assert "Enter your bybit API key >>>" in out.stderr  # prompts on stderr: stdout stays data
    assert "Enter your bybit secret key >>>" in out.stderr
    assert "You are now connected to sandbox." in out.stdout
    assert creds.api_secret not in out.output and creds.api_key not in out.output  # hidden input
    assert "Spot: SpotTrade" in out.stdout and "Not bound to an IP address" in out.stdout
    keys = cli.home / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert creds.api_secret not in keys.read_text()

    listed = (await cli("connections", "--json")).json()
    assert [(c["connector"], c["rest_url"]) for c in listed] == [("sandbox", sandbox.rest_url)]
    assert "sandbox" in (await cli("connect")).stdout  # no connector: the list
    # The stored keys and URL are enough from now on.
    orders = await cli("orders", "--json")
    assert orders.json() == []

    again = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url,
        input=f"{creds.api_key}\n{creds.api_secret}\n",
    )  # fmt: skip
    assert "Replaced the keys stored for sandbox." in again.stdout

    out = await cli("disconnect", "sandbox")
    assert "Disconnected from sandbox" in out.stdout
    assert (await cli("connections", "--json")).json() == []
    gone = await cli("disconnect", "sandbox", code=1)
    assert "not connected to sandbox" in gone.stderr


async def test_connect_non_interactive_and_rsa(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    secret_file = cli.home.parent / "secret.txt"
    secret_file.write_text(creds.api_secret + "\n")
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url, "--api-key", creds.api_key,
        "--api-secret-file", str(secret_file), "--json",
    )  # fmt: skip
    assert out.json()["connected"] is True and "Enter your" not in out.output

    perp = sandbox.create_account()
    out = await cli(
        "connect", "sandbox_perpetual", "--sandbox-url", sandbox.rest_url,
        env={"BYBITKIT_API_KEY": perp.api_key, "BYBITKIT_API_SECRET": perp.api_secret},
    )  # fmt: skip
    assert "You are now connected to sandbox_perpetual." in out.stdout

    # An RSA key: the path of its private key file answers the secret prompt.
    rsa = sandbox.create_account(key_type="rsa")
    pem = cli.home.parent / "bybit-rsa.pem"
    pem.write_text(rsa.api_secret)
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url,
        input=f"{rsa.api_key}\n{pem}\n",
    )  # fmt: skip
    assert "You are now connected to sandbox." in out.stdout
    listed = {c["connector"]: c for c in (await cli("connections", "--json")).json()}
    assert listed["sandbox"]["key_type"] == "rsa"
    assert listed["sandbox_perpetual"]["key_type"] == "hmac"
    # The stored RSA key signs: a private call works.
    assert (await cli("orders", "-c", "sandbox", "--json")).json() == []


@pytest.mark.parametrize(
    ("case", "code", "cause"),
    [
        ("unknown key", "10003", "wrong environment or key"),
        ("wrong secret", "10004", "wrong secret"),
        ("read-only", "10005", "missing permission"),
        ("trading disabled", "10005", "missing permission"),
        ("ip bound", "10010", "IP not whitelisted"),
        ("expired", "33004", "expired key"),
    ],
)
async def test_connect_names_the_cause_of_a_refusal(
    cli: Cli, sandbox: Sandbox, case: str, code: str, cause: str
) -> None:
    creds = sandbox.create_account()
    if case == "unknown key":
        creds = Credentials("NOTAKEYONTHISHOST", creds.api_secret)
    elif case == "wrong secret":
        creds = Credentials(creds.api_key, "not-the-secret-at-all")
    elif case == "read-only":
        creds = sandbox.create_account(read_only=True)
    elif case == "trading disabled":
        creds = sandbox.create_account(can_trade=False)
    elif case == "ip bound":
        creds = sandbox.create_account(ips=("203.0.113.7",))
    elif case == "expired":
        creds = sandbox.create_account(expires_at_ms=now_ms() - 1000)
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url,
        input=f"{creds.api_key}\n{creds.api_secret}\n", code=1,
    )  # fmt: skip
    assert f"{code} {cause}: " in out.stderr
    if code == "10003":
        assert "a testnet or demo key on mainnet" in out.stderr
    assert "You are now connected" not in out.stdout
    assert creds.api_secret not in out.output
    assert not (cli.home / "keys.json").exists()  # nothing saved


async def test_connect_warns_about_withdrawal_and_expiry(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account(can_withdraw=True, expires_at_ms=now_ms() + 2 * DAY_MS + 60_000)
    out = await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox, creds))
    assert "Warning: this key can WITHDRAW funds" in out.stdout
    assert "Warning: this key expires soon: in 2 days" in out.stdout
    assert "You are now connected to sandbox." in out.stdout
    out = await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox), "--json")
    assert out.json()["warnings"] == [] and out.json()["can_withdraw"] is False


async def test_a_read_only_key_connects_only_when_asked(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account(read_only=True)
    info = sandbox_info(sandbox, creds)
    out = await cli("connect", "sandbox", "--sandbox-info", info, "--read-only-ok")
    assert "Warning: this key cannot trade spot (read-only)" in out.stdout
    assert "You are now connected to sandbox." in out.stdout
    assert "Permissions: read-only" in out.stdout
    # Reading works; an order is refused by the exchange, and the cause is named.
    await cli("balance", "--json")
    refused = await cli("buy", "BTC-USDT", "0.001", code=1)
    assert "10005 missing permission: " in refused.stderr


async def test_connect_with_a_wrong_password(cli: Cli, sandbox: Sandbox) -> None:
    await cli("connect", "sandbox", "--sandbox-info", sandbox_info(sandbox))
    other = sandbox_info(sandbox)
    out = await cli(
        "connect", "sandbox_perpetual", "--sandbox-info", other,
        env={"BYBITKIT_PASSWORD": "not " + PASSWORD}, code=1,
    )  # fmt: skip
    assert "wrong password for the key store" in out.stderr
    assert [c["connector"] for c in (await cli("connections", "--json")).json()] == ["sandbox"]
    # Prompted instead of the environment variable: the same answer.
    out = await cli("balance", env={"BYBITKIT_PASSWORD": ""}, input="nope\n", code=1)
    assert "Enter your password >>>" in out.stderr and "wrong password" in out.stderr
    out = await cli("balance", "--json", env={"BYBITKIT_PASSWORD": ""}, input=f"{PASSWORD}\n")
    assert "Enter your password >>>" in out.stderr and out.json()[0]["coins"]


async def test_first_password_is_asked_twice(cli: Cli, sandbox: Sandbox) -> None:
    info = sandbox_info(sandbox)
    out = await cli(
        "connect", "sandbox", "--sandbox-info", info, env={"BYBITKIT_PASSWORD": ""},
        input="first-password\nsecond-password\n", code=2,
    )  # fmt: skip
    assert "Create a password to protect your keys >>>" in out.stderr
    assert "password: expected the same password twice" in out.stderr
    out = await cli(
        "connect", "sandbox", "--sandbox-info", info, env={"BYBITKIT_PASSWORD": ""},
        input="first-password\nfirst-password\n",
    )  # fmt: skip
    assert "You are now connected to sandbox." in out.stdout


async def test_connect_bad_input(cli: Cli, sandbox: Sandbox) -> None:
    out = await cli("connect", "kraken", code=2)
    assert "--connector: expected one of bybit, " in out.stderr and "'kraken'" in out.stderr
    out = await cli("connect", "sandbox", code=2)
    assert "--sandbox-url: expected the URL of a running sandbox" in out.stderr
    out = await cli("connect", "bybit", "--sandbox-url", sandbox.rest_url, code=2)
    assert "CONNECTOR: expected sandbox or sandbox_perpetual" in out.stderr
    out = await cli("connect", "sandbox", "--sandbox-url", "127.0.0.1:80", code=2)
    assert "--sandbox-url: expected an http:// URL" in out.stderr
    out = await cli("connect", "sandbox", "--sandbox-info", "{not json", code=2)
    assert "--sandbox-info: expected a JSON object" in out.stderr
    out = await cli("connect", "sandbox", "--sandbox-url", sandbox.rest_url, input="", code=1)
    assert "no keys given" in out.stderr
    missing = cli.home.parent / "missing.txt"
    out = await cli(
        "connect", "sandbox", "--sandbox-url", sandbox.rest_url, "--api-key", "K",
        "--api-secret-file", str(missing), code=2,
    )  # fmt: skip
    assert "--api-secret-file: expected a readable file" in out.stderr


async def test_connect_reports_an_unreachable_exchange(cli: Cli, sandbox: Sandbox) -> None:
    creds = sandbox.create_account()
    out = await cli(
        "connect", "sandbox", "--sandbox-url", "http://127.0.0.1:9",
        input=f"{creds.api_key}\n{creds.api_secret}\n", code=1,
    )  # fmt: skip
    assert "cannot reach sandbox (http://127.0.0.1:9)" in out.stderr


# -- the sandbox's key flags ----------------------------------------------------------------------


async def test_sandbox_keys_answer_as_bybit(sandbox: Sandbox) -> None:
    env = sandbox.environment
    order = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
             "qty": "0.001", "price": "1000"}  # fmt: skip
    read_only = sandbox.create_account(read_only=True)
    async with RestClient(env, read_only) as rest:
        info = await rest.query_api()
        assert info.readOnly == 1 and info.permissions is not None
        assert info.permissions.Spot == [] and "Withdraw" not in info.permissions.Wallet
        await rest.wallet_balance()  # reading is allowed
        with pytest.raises(PermissionDenied):
            await rest.place_order(**order)
        with pytest.raises(PermissionDenied):
            await rest.set_leverage("linear", "BTCUSDT", "5", "5")
    no_trade = sandbox.create_account(can_trade=False)
    async with RestClient(env, no_trade) as rest:
        info = await rest.query_api()
        assert info.readOnly == 0 and info.permissions is not None
        assert info.permissions.ContractTrade == [] and info.permissions.Spot == []
        with pytest.raises(PermissionDenied):
            await rest.place_order(**order)
    withdraw = sandbox.create_account(can_withdraw=True)
    async with RestClient(env, withdraw) as rest:
        info = await rest.query_api()
        assert info.permissions is not None and "Withdraw" in info.permissions.Wallet
        assert info.permissions.Spot == ["SpotTrade"]
        # Unbound: 90 days from creation.
        assert info.ips == ["*"] and info.deadlineDay in (89, 90)
    soon = now_ms() + 3 * DAY_MS + 3_600_000
    expiring = sandbox.create_account(expires_at_ms=soon)
    async with RestClient(env, expiring) as rest:
        info = await rest.query_api()
        assert info.deadlineDay == 3
        assert info.expiredAt == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon / 1000))
    bound = sandbox.create_account(ips=("127.0.0.1",))
    async with RestClient(env, bound) as rest:
        info = await rest.query_api()
        assert info.ips == ["127.0.0.1"]
        assert info.deadlineDay == -2 and info.expiredAt == "1970-01-01T00:00:00Z"
    elsewhere = sandbox.create_account(ips=("198.51.100.1", "198.51.100.2"))
    async with RestClient(env, elsewhere) as rest:
        with pytest.raises(IpNotAllowed):
            await rest.account_info()
    expired = sandbox.create_account(expires_at_ms=now_ms() - 1)
    async with RestClient(env, expired) as rest:
        with pytest.raises(ApiKeyExpired):
            await rest.query_api()


async def test_admin_route_creates_keys_with_flags(sandbox: Sandbox) -> None:
    body = {"read_only": True, "can_withdraw": True, "ips": "127.0.0.1"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sandbox.rest_url}/sandbox/accounts", data=json.dumps(body)) as resp,
    ):
        creds = await resp.json()
    async with RestClient(sandbox.environment, Credentials(**creds)) as rest:
        info = await rest.query_api()
    assert info.readOnly == 1 and info.ips == ["127.0.0.1"]
    assert info.permissions is not None and "Withdraw" not in info.permissions.Wallet  # read-only
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sandbox.rest_url}/sandbox/accounts", data='{"ips": 5}') as resp,
    ):
        assert resp.status == 400 and "ips" in (await resp.json())["error"]
