"""Environments answer REST and WS URLs for every stream."""

from __future__ import annotations

import pytest

from bybitkit.errors import ConfigError
from bybitkit.v5.environments import (
    DEMO,
    MAINNET,
    TESTNET,
    Environment,
    Stream,
    get_environment,
)


def test_mainnet_and_testnet() -> None:
    assert MAINNET.rest_url == "https://api.bybit.com"
    assert MAINNET.ws_url("spot") == "wss://stream.bybit.com/v5/public/spot"
    assert MAINNET.ws_url(Stream.LINEAR) == "wss://stream.bybit.com/v5/public/linear"
    assert MAINNET.ws_url("inverse") == "wss://stream.bybit.com/v5/public/inverse"
    assert MAINNET.ws_url("private") == "wss://stream.bybit.com/v5/private"
    assert MAINNET.ws_url("trade") == "wss://stream.bybit.com/v5/trade"
    assert TESTNET.rest_url == "https://api-testnet.bybit.com"
    assert TESTNET.ws_url("private") == "wss://stream-testnet.bybit.com/v5/private"
    assert TESTNET.is_testnet and not MAINNET.is_testnet


def test_demo_has_no_trade_ws_and_public_data_from_mainnet() -> None:
    assert DEMO.rest_url == "https://api-demo.bybit.com"
    assert DEMO.ws_url("private") == "wss://stream-demo.bybit.com/v5/private"
    assert DEMO.ws_url("linear") == "wss://stream.bybit.com/v5/public/linear"
    assert not DEMO.has_trade_ws
    with pytest.raises(ConfigError, match="no trade WebSocket"):
        DEMO.ws_url("trade")
    assert get_environment("demo_testnet").ws_url("private") == (
        "wss://stream-demo-testnet.bybit.com/v5/private"
    )


def test_regional_and_lookup() -> None:
    tr = get_environment("mainnet_tr")
    assert tr.rest_url == "https://api.bybit.tr"
    assert tr.ws_url("spot") == "wss://stream.bybit.tr/v5/public/spot"
    assert get_environment("mainnet-nl").rest_url == "https://api.bybit.nl"
    assert get_environment("MAINNET") is MAINNET
    assert get_environment(MAINNET) is MAINNET
    with pytest.raises(ConfigError, match="expected one of"):
        get_environment("moon")


def test_custom_environment_for_the_sandbox() -> None:
    env = Environment.custom("http://127.0.0.1:8080/", "ws://127.0.0.1:8080")
    assert env.rest_url == "http://127.0.0.1:8080"
    assert env.ws_url("spot") == "ws://127.0.0.1:8080/v5/public/spot"
    assert env.ws_url("trade") == "ws://127.0.0.1:8080/v5/trade"
    assert not env.is_bybit
    with pytest.raises(ConfigError, match="rest_url"):
        Environment.custom("127.0.0.1:8080", "ws://x")
    with pytest.raises(ConfigError, match="ws://"):
        Environment.custom("http://x", "http://x")
    with pytest.raises(ConfigError, match="stream"):
        env.ws_url("futures")
