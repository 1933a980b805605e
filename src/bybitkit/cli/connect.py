"""``connect``, ``connections`` and ``disconnect``: API keys, checked and kept encrypted.

``connect <connector>`` asks for the API key and secret (hidden; a path to an RSA private key
file is accepted instead of a secret), checks them against the connector's environment
(``/v5/account/info``, ``/v5/account/wallet-balance`` and ``/v5/user/query-api`` for the key's
permissions, IP binding and expiry), names the likely cause of a refusal by its code, warns about
keys that can withdraw or expire soon, then saves them in the key store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from bybitkit.cli.common import (
    PAPER_IDS,
    SANDBOX_IDS,
    CliError,
    DataTable,
    Resolved,
    Target,
    auth_cause,
    check_connector,
    console,
    d,
    days_until,
    env_label,
    explicit_credentials,
    parse_sandbox_info,
    print_json,
    prompt_hidden,
    read_secret_file,
    register_secret,
    resolve,
    run,
    ts,
    unlock,
    usage,
)
from bybitkit.connectors.registry import CONNECTORS
from bybitkit.errors import AuthError, BybitkitError, ConfigError
from bybitkit.keys import KeyStore
from bybitkit.v5.auth import Credentials, is_pem_private_key, make_signer
from bybitkit.v5.environments import Environment
from bybitkit.v5.rest import RestClient

#: A key expiring within this many days is flagged.
EXPIRY_WARNING_DAYS = 7

#: The permission group and value a connector's market needs to trade.
TRADE_PERMISSION = {"spot": ("Spot", "SpotTrade"), "linear": ("ContractTrade", "Order")}


@dataclass
class KeyCheck:
    """What ``connect`` learnt about a key."""

    connector: str
    environment: str
    margin_mode: str | None = None
    equity_usd: Decimal | None = None
    coins: int = 0
    read_only: bool = False
    can_trade: bool = True
    can_withdraw: bool = False
    permissions: dict[str, list[str]] = field(default_factory=dict)
    ips: list[str] = field(default_factory=list)
    expires_at: str | None = None
    expires_in: timedelta | None = None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "environment": self.environment,
            "connected": True,
            "margin_mode": self.margin_mode,
            "equity_usd": self.equity_usd,
            "read_only": self.read_only,
            "can_trade": self.can_trade,
            "can_withdraw": self.can_withdraw,
            "permissions": self.permissions,
            "ips": self.ips,
            "expires_at": self.expires_at,
            "warnings": self.warnings,
        }


async def check_keys(
    connector: str, category: str, environment: Environment, creds: Credentials
) -> KeyCheck:
    """Check ``creds`` against ``environment`` the way ``connect`` does (``category``: the
    market the connector trades). Raises :class:`CliError` naming the likely cause."""
    result = KeyCheck(connector, env_label(environment))
    try:
        make_signer(creds)
    except ConfigError as exc:
        raise CliError(f"the secret is not usable: {exc}", 2) from None
    async with RestClient(environment, creds) as rest:
        try:
            await rest.sync_clock()
        except BybitkitError as exc:
            raise CliError(f"cannot reach {env_label(environment)}: {exc}") from None
        try:
            info = await rest.account_info()
            wallet = await rest.wallet_balance()
            key = await rest.query_api()
        except AuthError as exc:
            raise CliError(
                f"the keys were refused by {env_label(environment)}: {auth_cause(exc, environment)}"
            ) from None
    result.margin_mode = info.marginMode
    for account in wallet.list:
        result.equity_usd = account.totalEquity
        result.coins = len(account.coin)
    perms = key.permissions
    if perms is not None:
        result.permissions = {
            name: list(getattr(perms, name))
            for name in perms.__struct_fields__
            if getattr(perms, name)
        }
    result.read_only = key.readOnly == 1
    group, needed = TRADE_PERMISSION[category]
    result.can_trade = not result.read_only and needed in result.permissions.get(group, [])
    result.can_withdraw = "Withdraw" in result.permissions.get("Wallet", [])
    result.ips = list(key.ips)
    left = days_until(key.expiredAt)
    if left is not None:
        result.expires_at = key.expiredAt
        result.expires_in = left
    if result.can_withdraw:
        result.warnings.append(
            "this key can WITHDRAW funds (Wallet: Withdraw). bybitkit never withdraws: a key "
            "without that permission is much safer if it ever leaks."
        )
    if left is not None and left < timedelta(days=EXPIRY_WARNING_DAYS):
        when = key.expiredAt
        days = max(0, left.days)
        result.warnings.append(
            f"this key expires soon: in {days} day{'s' if days != 1 else ''} ({when}). "
            "Bind it to an IP address or create a new one."
        )
    if not result.can_trade:
        why = "read-only" if result.read_only else f"no {group} {needed} permission"
        result.warnings.append(f"this key cannot trade {category} ({why})")
    return result


def _read_key_material() -> Credentials:
    """The two prompts of ``connect`` (hidden input; a PEM file path for the secret)."""
    api_key = _prompt("Enter your bybit API key >>>").strip()
    if not api_key:
        raise usage("API key", "a non-empty API key")
    secret = _prompt("Enter your bybit secret key >>>").strip()
    if not secret:
        raise usage("secret key", "a non-empty secret (or the path of an RSA private key file)")
    register_secret(secret)
    candidate = Path(secret).expanduser()
    if not is_pem_private_key(secret) and len(secret) < 4096 and _is_file(candidate):
        secret = read_secret_file(candidate, "secret key")
    return Credentials(api_key, secret)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _prompt(text: str) -> str:
    return prompt_hidden(
        text,
        "no keys given: answer the prompts, or use --api-key/--api-secret-file or "
        "BYBITKIT_API_KEY/BYBITKIT_API_SECRET",
    )


def connect_command(
    connector: Annotated[
        str | None,
        typer.Argument(help="Connector id (e.g. bybit_testnet, sandbox); none: list connections."),
    ] = None,
    read_only_ok: Annotated[
        bool,
        typer.Option("--read-only-ok", help="Accept a key that cannot trade (read-only)."),
    ] = False,
    *,
    target: Target,
) -> None:
    """Connect to a Bybit connector: check its API keys and keep them encrypted.

    Prompts `Enter your bybit API key >>>` and `Enter your bybit secret key >>>` (hidden; the
    path of an RSA private key file works as the secret), unless --api-key/--api-secret-file,
    BYBITKIT_API_KEY/BYBITKIT_API_SECRET or --sandbox-info give them. The key-store password
    comes from BYBITKIT_PASSWORD or a prompt. Without a connector: list the connections.
    """
    if connector is None:
        list_connections(target.json)
        return
    connector = check_connector(connector.strip())
    if connector in PAPER_IDS:
        typer.echo(
            f"{connector} needs no API keys: paper trading uses public data and keeps its "
            f"account locally (e.g. `bybitkit balance -c {connector}`)."
        )
        return
    target = replace(target, connector=connector)
    info = parse_sandbox_info(target.sandbox_info) if target.sandbox_info else None
    if connector not in SANDBOX_IDS and (target.sandbox_url or info is not None):
        raise usage("CONNECTOR", "sandbox or sandbox_perpetual with --sandbox-url/--sandbox-info",
                    connector)  # fmt: skip
    res: Resolved = resolve(target, keys=False)
    creds, _ = explicit_credentials(target, info)
    if creds is None:
        creds = _read_key_material()
    register_secret(creds.api_secret)
    out = console()
    if not target.json:
        out.print(f"Checking the keys on {env_label(res.environment)} ...")
    check = run(check_keys(connector, res.category, res.environment, creds))
    if not check.can_trade and not read_only_ok:
        group, needed = TRADE_PERMISSION[res.category]
        raise CliError(
            f"the keys were refused for trading on {env_label(res.environment)}: 10005 missing "
            f"permission: the key is {'read-only' if check.read_only else 'without ' + needed} "
            f"({group}), so Bybit would answer 10005 to every order. Give it trade permission, "
            "or pass --read-only-ok to connect it for reading only."
        )
    store = unlock(KeyStore.default())
    replaced = store.connection(connector) is not None
    environment_name = "sandbox" if connector in SANDBOX_IDS else res.environment.name
    store.save(
        connector,
        creds,
        environment=environment_name,
        rest_url=res.environment.rest_url if connector in SANDBOX_IDS else None,
        ws_url=res.environment.public_ws if connector in SANDBOX_IDS else None,
    )
    if target.json:
        print_json(check.as_json() | {"replaced": replaced})
        return
    for warning in check.warnings:
        out.print(Text.assemble(("Warning:", "bold yellow"), " ", warning))
    equity = f", equity {d(check.equity_usd)} USD" if check.equity_usd is not None else ""
    out.print(f"Account: unified, margin mode {check.margin_mode or '?'}{equity}")
    granted = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(check.permissions.items()))
    out.print(f"Permissions: {'read-only; ' if check.read_only else ''}{granted or 'none'}")
    if check.ips and "*" not in check.ips:
        out.print(f"Bound to IP addresses: {', '.join(check.ips)}")
    else:
        out.print("Not bound to an IP address (Bybit ends such keys after 90 days)")
    if check.expires_at:
        out.print(f"Expires: {check.expires_at}")
    if replaced:
        out.print(f"Replaced the keys stored for {connector}.")
    out.print(f"You are now connected to {connector}.")


def list_connections(as_json: bool) -> None:
    stored = KeyStore.default().connections()
    env_connector = os.environ.get("BYBITKIT_API_KEY")
    if as_json:
        print_json(
            [
                {
                    "connector": c.connector,
                    "environment": c.environment,
                    "rest_url": c.rest_url,
                    "key_type": c.key_type,
                    "added": ts(c.added_ms),
                }
                for c in stored
            ]
        )
        return
    out = console()
    table = DataTable(title="Connections (key store)")
    for col in ("Connector", "Environment", "Keys", "Added (UTC)"):
        table.add_column(col)
    for c in stored:
        where = c.environment + (f" {c.rest_url}" if c.rest_url else "")
        table.add_row(c.connector, where, f"yes ({c.key_type})", ts(c.added_ms))
    if stored:
        out.print(table)
    else:
        out.print("No connection yet: `bybitkit connect <connector>` (e.g. bybit_testnet).")
    others = sorted(set(CONNECTORS) - {c.connector for c in stored})
    out.print(f"Other connectors: {', '.join(others)}")
    if env_connector:
        out.print("Keys from BYBITKIT_API_KEY/BYBITKIT_API_SECRET are used when set.")


def disconnect_command(connector: str, as_json: bool) -> None:
    connector = check_connector(connector.strip())
    removed = KeyStore.default().remove(connector)
    if not removed:
        raise CliError(f"not connected to {connector}: no keys stored for it")
    if as_json:
        print_json({"connector": connector, "disconnected": True})
    else:
        console().print(f"Disconnected from {connector}: its keys were removed from the key store.")


__all__ = ["check_keys", "connect_command", "disconnect_command", "list_connections"]
