"""The client-side mirror of Bybit's rate limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from bybitkit.errors import ConfigError
from bybitkit.v5.ratelimit import RateLimiter, Window


def test_window_math() -> None:
    w = Window(3, 1.0)
    for t in (0.0, 0.1, 0.2):
        assert w.delay(t) == 0
        w.record(t)
    assert w.delay(0.3) == pytest.approx(0.7)  # the event at 0.0 must leave first
    assert w.delay(0.3, weight=2) == pytest.approx(0.8)
    assert w.delay(1.05) == 0
    w.block(5.0)
    assert w.delay(2.0) == pytest.approx(3.0)


def test_limits_follow_category_and_tier() -> None:
    rl = RateLimiter()
    assert rl.limit_for(rl.key("/v5/order/create", "linear")) == 10
    assert rl.limit_for(rl.key("/v5/order/create", "spot")) == 20
    assert rl.limit_for(rl.key("/v5/order/amend", "spot")) == 10
    assert rl.limit_for(rl.key("/v5/account/fee-rate", "spot")) == 5
    assert rl.limit_for(rl.key("/v5/market/time", None)) is None
    assert rl.key("/v5/order/create", "linear") == rl.key("/v5/order/create", "inverse")
    vip = RateLimiter("vip2")
    assert vip.limit_for(vip.key("/v5/order/create", "linear")) == 40
    with pytest.raises(ConfigError, match="rate_limit_tier"):
        RateLimiter("vip99")


async def test_burst_is_spaced_and_cancels_have_their_own_window() -> None:
    rl = RateLimiter(slack=0.0)
    rl._windows.clear()
    start = time.monotonic()
    # Five creates fit at once at a limit of 10; the 11th must wait about a second.
    await asyncio.gather(*(rl.acquire("/v5/order/create", "linear") for _ in range(10)))
    assert time.monotonic() - start < 0.2
    t_cancel = time.monotonic()
    await rl.acquire("/v5/order/cancel", "linear")
    assert time.monotonic() - t_cancel < 0.05  # not queued behind creates
    waiter = asyncio.create_task(rl.acquire("/v5/order/create", "linear"))
    await asyncio.sleep(0.3)
    assert not waiter.done()
    await asyncio.wait_for(waiter, 2.0)
    assert time.monotonic() - start >= 0.95


def test_server_headers_lower_the_limit_and_block() -> None:
    rl = RateLimiter()
    rl.observe("/v5/order/create", "linear", 5, 4, None)
    assert rl.window(rl.key("/v5/order/create", "linear")).limit == 5  # type: ignore[union-attr]
    rl.observe("/v5/order/create", "linear", 5, 0, 0.5)
    win = rl.window(rl.key("/v5/order/create", "linear"))
    assert win is not None and win.delay(time.monotonic()) > 0.3
