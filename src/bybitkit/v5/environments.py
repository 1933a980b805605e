"""Where to reach Bybit: one object answers "REST URL" and "WS URL for each stream".

Environments (REFERENCE §1):

* ``mainnet``, ``testnet``;
* ``demo``: mainnet demo trading. Private REST and the private stream live on the demo hosts,
  public market data comes from mainnet, and there is **no trade WebSocket**
  (:attr:`Environment.has_trade_ws` is False; callers fall back to REST);
* ``demo_testnet``: demo on testnet (what pybit uses for ``testnet=True, demo=True``);
* regional mainnet sites (``mainnet_nl``, ``mainnet_tr`` ...): accounts registered on that site;
* :meth:`Environment.custom`: any REST base URL and WS base URL, which is how the local sandbox
  is reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bybitkit.errors import ConfigError


class Stream(StrEnum):
    """The WebSocket streams of Bybit V5, by the path they are served on."""

    SPOT = "spot"
    LINEAR = "linear"
    INVERSE = "inverse"
    OPTION = "option"
    PRIVATE = "private"
    TRADE = "trade"

    @property
    def path(self) -> str:
        if self in (Stream.PRIVATE, Stream.TRADE):
            return f"/v5/{self.value}"
        return f"/v5/public/{self.value}"

    @property
    def is_public(self) -> bool:
        return self not in (Stream.PRIVATE, Stream.TRADE)


@dataclass(frozen=True, slots=True)
class Environment:
    """A Bybit environment: its REST base URL and the WS base URL of each kind of stream.

    ``public_ws`` serves ``/v5/public/*``; ``private_ws`` serves ``/v5/private``; ``trade_ws``
    serves ``/v5/trade`` and is ``None`` where Bybit offers no trade WebSocket (demo).
    """

    name: str
    rest_url: str
    public_ws: str
    private_ws: str
    trade_ws: str | None
    #: Whether this is a real Bybit host (as opposed to a custom one such as the sandbox).
    is_bybit: bool = True
    is_testnet: bool = False
    is_demo: bool = False

    def __post_init__(self) -> None:
        for field_name in ("rest_url", "public_ws", "private_ws"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"Environment.{field_name}: expected a URL, got {value!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"Environment.rest_url: expected an http:// or https:// URL, got {self.rest_url!r}"
            )
        for field_name in ("public_ws", "private_ws", "trade_ws"):
            value = getattr(self, field_name)
            if value is not None and not value.startswith(("ws://", "wss://")):
                raise ConfigError(
                    f"Environment.{field_name}: expected a ws:// or wss:// URL, got {value!r}"
                )

    @property
    def has_trade_ws(self) -> bool:
        """False where the environment has no order-entry WebSocket (callers use REST)."""
        return self.trade_ws is not None

    def ws_url(self, stream: Stream | str) -> str:
        """Full WebSocket URL of ``stream`` (``"spot"``, ``"linear"``, ``"inverse"``,
        ``"option"``, ``"private"`` or ``"trade"``)."""
        try:
            s = Stream(stream)
        except ValueError:
            allowed = ", ".join(x.value for x in Stream)
            raise ConfigError(f"stream: expected one of {allowed}, got {stream!r}") from None
        if s is Stream.TRADE:
            if self.trade_ws is None:
                raise ConfigError(
                    f"environment {self.name!r} has no trade WebSocket; place orders over REST"
                )
            base = self.trade_ws
        elif s is Stream.PRIVATE:
            base = self.private_ws
        else:
            base = self.public_ws
        return base + s.path

    @classmethod
    def custom(
        cls,
        rest_url: str,
        ws_url: str,
        *,
        name: str = "custom",
        has_trade_ws: bool = True,
    ) -> Environment:
        """An environment at arbitrary base URLs (e.g. the local sandbox:
        ``Environment.custom("http://127.0.0.1:8080", "ws://127.0.0.1:8080")``)."""
        rest = rest_url.rstrip("/")
        ws = ws_url.rstrip("/")
        return cls(
            name=name,
            rest_url=rest,
            public_ws=ws,
            private_ws=ws,
            trade_ws=ws if has_trade_ws else None,
            is_bybit=False,
        )


def _site(name: str, rest_host: str, stream_host: str, *, testnet: bool = False) -> Environment:
    stream = f"wss://{stream_host}"
    return Environment(
        name=name,
        rest_url=f"https://{rest_host}",
        public_ws=stream,
        private_ws=stream,
        trade_ws=stream,
        is_testnet=testnet,
    )


MAINNET = _site("mainnet", "api.bybit.com", "stream.bybit.com")
TESTNET = _site("testnet", "api-testnet.bybit.com", "stream-testnet.bybit.com", testnet=True)
DEMO = Environment(
    name="demo",
    rest_url="https://api-demo.bybit.com",
    public_ws="wss://stream.bybit.com",
    private_ws="wss://stream-demo.bybit.com",
    trade_ws=None,
    is_demo=True,
)
DEMO_TESTNET = Environment(
    name="demo_testnet",
    rest_url="https://api-demo-testnet.bybit.com",
    public_ws="wss://stream-testnet.bybit.com",
    private_ws="wss://stream-demo-testnet.bybit.com",
    trade_ws=None,
    is_testnet=True,
    is_demo=True,
)

# Regional mainnet sites (REFERENCE §1). Where the docs name no regional stream host, the site's
# streams are taken to be the global mainnet ones.
REGIONAL: dict[str, Environment] = {
    "mainnet_nl": _site("mainnet_nl", "api.bybit.nl", "stream.bybit.com"),
    "mainnet_tr": _site("mainnet_tr", "api.bybit.tr", "stream.bybit.tr"),
    "mainnet_kz": _site("mainnet_kz", "api.bybit.kz", "stream.bybit.kz"),
    "mainnet_ge": _site("mainnet_ge", "api.bybitgeorgia.ge", "stream.bybitgeorgia.ge"),
    "mainnet_ae": _site("mainnet_ae", "api.bybit.ae", "stream.bybit.com"),
    "mainnet_eu": _site("mainnet_eu", "api.bybit.eu", "stream.bybit.com"),
    "mainnet_id": _site("mainnet_id", "api.bybit.id", "stream.bybit.id"),
    "mainnet_jp": _site("mainnet_jp", "api.manepa.jp", "stream.manepa.jp"),
    "testnet_jp": _site("testnet_jp", "api-testnet.manepa.jp", "stream.manepa.jp", testnet=True),
    "mainnet_bytick": _site("mainnet_bytick", "api.bytick.com", "stream.bybit.com"),
}

ENVIRONMENTS: dict[str, Environment] = {
    "mainnet": MAINNET,
    "testnet": TESTNET,
    "demo": DEMO,
    "demo_testnet": DEMO_TESTNET,
    **REGIONAL,
}


def get_environment(name: str | Environment) -> Environment:
    """Look an environment up by name (``mainnet``, ``testnet``, ``demo``, ``demo_testnet``,
    ``mainnet_nl`` ...). An :class:`Environment` is returned unchanged."""
    if isinstance(name, Environment):
        return name
    key = name.strip().lower().replace("-", "_")
    env = ENVIRONMENTS.get(key)
    if env is None:
        allowed = ", ".join(sorted(ENVIRONMENTS))
        raise ConfigError(f"environment: expected one of {allowed}, got {name!r}")
    return env
