"""Helpers shared by the pybit conformance tests (``test_pybit_sandbox``, ``test_pybit_linear``).

pybit is pointed at the sandbox only through its public attributes and module settings:
``HTTP(...).endpoint = sb.rest_url``; ``pybit.unified_trading.PUBLIC_WSS`` / ``PRIVATE_WSS``
(monkeypatched) before a ``WebSocket`` is built. pybit is synchronous, so every blocking call runs
in ``asyncio.to_thread`` (``call``) while the sandbox keeps serving on the event loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from pybit import unified_trading
from pybit.unified_trading import HTTP, WebSocket

from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials

D = Decimal
WAIT_S = 10.0
DEFAULTS = {"USDT": D("100000"), "USDC": D("100000"), "BTC": D("1"), "ETH": D("10")}

call = asyncio.to_thread


class Tape:
    """A thread-safe record of messages (pybit calls back from its WebSocket thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def append(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(copy.deepcopy(message))

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def topic(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.items() if m.get("topic") == name]

    def acks(self, op: str = "subscribe") -> list[dict[str, Any]]:
        return [m for m in self.items() if m.get("op") == op and "topic" not in m]


async def wait_until(what: str, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def levels(side: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in side]


async def settle(sb: Sandbox, symbol: str = "BTCUSDT", category: str = "spot") -> dict[str, Any]:
    """Freeze the market and wait until its book stops changing (a step re-lays the touch)."""
    sb.freeze()
    previous = None
    for _ in range(40):
        await asyncio.sleep(0.12)
        book = sb.book(symbol, category, 200)
        if book == previous:
            return book
        previous = book
    pytest.fail(f"the {category} {symbol} book did not settle")


def on_grid(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded down to the tick grid, with the tick's exponent (its exact text)."""
    return (price / tick).to_integral_value(ROUND_FLOOR) * tick


def tick_of(sb: Sandbox, symbol: str, category: str = "spot") -> Decimal:
    return sb.market(symbol, category).inst.tick_size


def sweep(
    asks_or_bids: list[tuple[Decimal, Decimal]], qty: Decimal
) -> list[tuple[Decimal, Decimal]]:
    """The fills of a market order of ``qty`` against a side of the book: [(price, qty)]."""
    fills = []
    left = qty
    for price, size in asks_or_bids:
        take = min(left, size)
        fills.append((price, take))
        left -= take
        if not left:
            return fills
    raise AssertionError("the book is too thin for the test's market order")


def coins(wallet: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (account,) = wallet["result"]["list"]
    return {c["coin"]: c for c in account["coin"]}


@asynccontextmanager
async def pybit_http(
    sb: Sandbox, creds: Credentials | None = None, *, rsa: bool = False
) -> AsyncIterator[HTTP]:
    session = HTTP(
        api_key=creds.api_key if creds else None,
        api_secret=creds.api_secret if creds else None,
        rsa_authentication=rsa,
    )
    session.endpoint = sb.rest_url
    try:
        yield session
    finally:
        session.client.close()


@asynccontextmanager
async def pybit_ws(
    monkeypatch: pytest.MonkeyPatch, sb: Sandbox, channel_type: str, **kwargs: Any
) -> AsyncIterator[tuple[WebSocket, Tape]]:
    """A pybit WebSocket on the sandbox and the tape of every frame it receives."""
    monkeypatch.setattr(unified_trading, "PUBLIC_WSS", sb.ws_url + "/v5/public/{CHANNEL_TYPE}")
    monkeypatch.setattr(unified_trading, "PRIVATE_WSS", sb.ws_url + "/v5/private")
    ws = await call(WebSocket, channel_type=channel_type, testnet=False, **kwargs)
    try:
        tape = Tape()
        handler = ws.callback

        def record(message: dict[str, Any]) -> None:
            tape.append(message)
            handler(message)

        ws.callback = record
        yield ws, tape
    finally:
        await call(ws.exit)


def subscribe(stream: Callable[..., None], *args: Any) -> None:
    """Subscribe a connected pybit WebSocket, on the event loop's thread, on purpose.

    pybit's ``subscribe`` sends the request and only then records its ``req_id`` and the topic's
    callback. Over loopback the sandbox can answer (ack, book snapshot) before that, and pybit's
    thread dies on the KeyError (then ``subscribe`` spins in ``while not is_connected()``). Called
    without yielding to the loop, the send completes and pybit registers everything before the
    sandbox even reads the request, as over a real network. Once connected the call does not block.
    """
    stream(*args)


def load_example(examples_dir: Path, stem: str) -> Any:
    return json.loads((examples_dir / f"{stem}.json").read_text())["response"]
