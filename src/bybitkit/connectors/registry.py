"""Connector ids, as traders know them, to connector classes and environments."""

from __future__ import annotations

from typing import Any

from bybitkit.connectors.base import BybitConnector
from bybitkit.connectors.paper import PaperPerpetualConnector, PaperSpotConnector
from bybitkit.connectors.perpetual import PerpetualConnector
from bybitkit.connectors.spot import SpotConnector
from bybitkit.errors import ConfigError
from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment, get_environment

#: id -> (connector class, environment name or None when one must be given)
CONNECTORS: dict[str, tuple[type[BybitConnector], str | None]] = {
    "bybit": (SpotConnector, "mainnet"),
    "bybit_testnet": (SpotConnector, "testnet"),
    "bybit_demo": (SpotConnector, "demo"),
    "sandbox": (SpotConnector, None),
    "bybit_perpetual": (PerpetualConnector, "mainnet"),
    "bybit_perpetual_testnet": (PerpetualConnector, "testnet"),
    "bybit_perpetual_demo": (PerpetualConnector, "demo"),
    "sandbox_perpetual": (PerpetualConnector, None),
    # Paper trading: public data from the environment given (mainnet by default), orders local.
    "bybit_paper_trade": (PaperSpotConnector, "mainnet"),
    "bybit_perpetual_paper_trade": (PaperPerpetualConnector, "mainnet"),
}


def _credentials(value: Any) -> Credentials | None:
    if value is None or isinstance(value, Credentials):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return Credentials(str(value[0]), str(value[1]))
    if isinstance(value, dict) and {"api_key", "api_secret"} <= set(value):
        return Credentials(str(value["api_key"]), str(value["api_secret"]))
    raise ConfigError(
        "credentials: expected Credentials, (api_key, api_secret) or "
        "{'api_key': ..., 'api_secret': ...}"
    )


def connect(
    connector_id: str,
    credentials: Credentials | tuple[str, str] | dict[str, str] | None = None,
    environment: Environment | str | None = None,
    **options: Any,
) -> BybitConnector:
    """A connector, started by ``async with``:

        async with bybitkit.connect("bybit_testnet", credentials=creds) as ex: ...

    The id implies the environment (``sandbox`` needs ``environment=sb.environment``);
    ``credentials`` are optional for public data only. ``options`` go to the connector (see
    :class:`~bybitkit.connectors.base.BybitConnector`: ``store``, ``order_entry``,
    ``book_depth``, ``stale_after``, ``broker_id``, ...)."""
    entry = CONNECTORS.get(connector_id)
    if entry is None:
        allowed = ", ".join(sorted(CONNECTORS))
        raise ConfigError(f"connector: expected one of {allowed}, got {connector_id!r}")
    cls, env_name = entry
    if environment is None:
        if env_name is None:
            raise ConfigError(
                f"connector {connector_id!r} needs an environment (e.g. environment=sb.environment)"
            )
        environment = env_name
    return cls(connector_id, get_environment(environment), _credentials(credentials), **options)
