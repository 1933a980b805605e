"""A strategy's YAML configuration, validated into typed structs with errors that name the field.

Numbers in the YAML are read as exact ``Decimal`` (``0.001`` stays ``0.001``), never as float.
A file looks like::

    strategy: pure_market_making        # a built-in or a script (.py); or `start --strategy`
    name: mm-btc                        # for `bybitkit status/stop` (default: the strategy's)
    tick_interval: 1.0                  # seconds between on_tick calls
    connectors:
      spot:                             # the name the strategy uses
        connector: bybit_testnet        # a connector id; its keys come from the key store
        pairs: [BTC-USDT]               # (`bybitkit connect bybit_testnet`), or api_key /
                                        # api_secret here ("$ENV_VAR" reads the environment)
    risk:
      max_loss: 50                      # quote units below the starting equity
      max_drawdown: 0.05                # a fraction of the peak equity
      flatten_on_kill: true
      max_order_size: {BTC-USDT: 0.01}  # base quantity per order
      max_orders_per_second: 5
      stale_after: 5                    # a book quiet this long (s) is not quoted from
    dcp: {enabled: true, time_window: 10}
    params:                             # the strategy's own (see its Params)
      bid_spread: 0.001
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import yaml

from bybitkit.errors import ConfigError

__all__ = [
    "ConnectorConfig",
    "DcpConfig",
    "RiskConfig",
    "StrategyConfig",
    "convert",
    "load_config",
    "parse_config",
]

T = TypeVar("T")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConnectorConfig(msgspec.Struct, forbid_unknown_fields=True):
    """One connector of the strategy."""

    connector: str
    pairs: list[str]
    environment: str | None = None  # sandbox ids: the sandbox's REST URL
    api_key: str | None = None  # else the key store's; "$NAME" reads the environment
    api_secret: str | None = None
    order_entry: Literal["rest", "ws"] = "rest"


class RiskConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The safety rails."""

    max_loss: Decimal | None = None
    max_drawdown: Decimal | None = None
    flatten_on_kill: bool = False
    max_order_size: dict[str, Decimal] = msgspec.field(default_factory=dict)
    max_order_value: Decimal | None = None
    max_orders_per_second: Decimal = Decimal(5)
    stale_after: Decimal = Decimal(5)
    cancel_on_exit: bool = True
    equity_interval: Decimal = Decimal(1)  # seconds between mark-to-market checks


class DcpConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Bybit's disconnect cancel-all, with a local dead-man timer as the fallback."""

    enabled: bool = False
    product: Literal["SPOT", "DERIVATIVES", "OPTIONS"] | None = None  # default: by connector
    time_window: int = 10
    dead_man: Decimal | None = None  # the local fallback's window (s); default time_window


class StrategyConfig(msgspec.Struct, forbid_unknown_fields=True):
    connectors: dict[str, ConnectorConfig]
    strategy: str | None = None  # `bybitkit start --strategy` gives it otherwise
    name: str | None = None
    tick_interval: Decimal = Decimal(1)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    dcp: DcpConfig = msgspec.field(default_factory=DcpConfig)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    store: str | None = None  # SQLite history; default under BYBITKIT_HOME

    @property
    def instance_name(self) -> str:
        return self.name or (Path(self.strategy).stem if self.strategy else "strategy")


class _Loader(yaml.SafeLoader):
    """Safe YAML with exact decimals."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if text.lower() in (".inf", "+.inf", "-.inf", ".nan"):
        raise ConfigError(f"line {node.start_mark.line + 1}: {text} is not a usable number")
    return Decimal(text)


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)


def convert(data: Any, into: type[T], where: str, prefix: str = "") -> T:
    """``data`` as ``into``, or a :class:`ConfigError` naming the field and what it expected
    (``prefix``: the path of ``data`` in the file)."""
    try:
        return msgspec.convert(data, into, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_explain(str(exc), prefix)}") from None


def _explain(msg: str, prefix: str = "") -> str:
    """msgspec's "Expected `int`, got `str` - at `$.risk.max_loss`" as "risk.max_loss: expected
    int, got str"."""
    m = re.match(r"^(.*?)(?: - at `\$(.*)`)?$", msg, re.S)
    assert m is not None
    what, path = m.group(1), (m.group(2) or "").lstrip(".")
    path = f"{prefix}.{path}".strip(".") if prefix else path
    what = what.replace("`", "").replace("Object contains unknown", "unknown")
    what = what[:1].lower() + what[1:]
    return f"{path}: {what}" if path else what


def parse_config(data: Any, source: str = "config") -> StrategyConfig:
    """A validated :class:`StrategyConfig` from parsed YAML/JSON ``data``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top, got {type(data).__name__}")
    # the maps keyed by names first: their errors then say which entry (msgspec says "[...]")
    conns = data.get("connectors")
    if isinstance(conns, dict):
        for name, entry in conns.items():
            convert(entry, ConnectorConfig, source, f"connectors.{name}")
    risk = data.get("risk")
    sizes = risk.get("max_order_size") if isinstance(risk, dict) else None
    if isinstance(sizes, dict):
        for pair, size in sizes.items():
            convert(size, Decimal, source, f"risk.max_order_size.{pair}")
    cfg = convert(data, StrategyConfig, source)
    if not cfg.connectors:
        raise ConfigError(f"{source}: connectors: expected at least one connector")
    for name, conn in cfg.connectors.items():
        if not NAME_RE.match(name):
            raise ConfigError(f"{source}: connectors.{name}: expected a name of [A-Za-z0-9_.-]")
        if not conn.pairs:
            raise ConfigError(f"{source}: connectors.{name}.pairs: expected at least one pair")
        if (conn.api_key is None) != (conn.api_secret is None):
            raise ConfigError(
                f"{source}: connectors.{name}: expected both api_key and api_secret, or neither"
            )
    if not NAME_RE.match(cfg.instance_name):
        raise ConfigError(f"{source}: name: expected 1-64 of [A-Za-z0-9_.-], got {cfg.name!r}")
    if cfg.tick_interval <= 0:
        raise ConfigError(f"{source}: tick_interval: expected a positive number of seconds")
    r = cfg.risk
    if r.max_loss is not None and r.max_loss <= 0:
        raise ConfigError(f"{source}: risk.max_loss: expected a positive amount")
    if r.max_drawdown is not None and not 0 < r.max_drawdown < 1:
        raise ConfigError(f"{source}: risk.max_drawdown: expected a fraction between 0 and 1")
    if r.max_orders_per_second <= 0:
        raise ConfigError(f"{source}: risk.max_orders_per_second: expected a positive number")
    if r.stale_after <= 0:
        raise ConfigError(f"{source}: risk.stale_after: expected a positive number of seconds")
    for pair, size in r.max_order_size.items():
        if size <= 0:
            raise ConfigError(f"{source}: risk.max_order_size.{pair}: expected a positive size")
    if not 3 <= cfg.dcp.time_window <= 300:
        raise ConfigError(f"{source}: dcp.time_window: expected 3 to 300 seconds")
    return cfg


def load_config(path: str | Path) -> StrategyConfig:
    """Read and validate a YAML strategy configuration."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return parse_config(data, str(p))
