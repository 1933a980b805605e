"""Client-side rate limiting that mirrors Bybit V5's own limits (REFERENCE §4).

Bybit counts requests per UID, per endpoint, in a rolling one-second window, separately for the
derivatives (linear + inverse), option and spot products; and per IP, 600 requests per 5 s. We
keep the same windows locally so that a burst is spaced out *before* it reaches Bybit instead of
being answered with ``10006``.

Cancels are never starved: every endpoint has its own window (a queue of creates never delays a
cancel), and part of the shared IP budget is held back for cancels only.

The windows also follow what the server says: the ``X-Bapi-Limit*`` headers of each answer lower
our limit if the account's is lower, and a ``10006`` (or a header saying nothing is left) blocks
that endpoint until the reset time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from bybitkit.errors import ConfigError

# Product groups Bybit counts separately.
DERIVATIVES = "derivatives"  # linear + inverse
OPTION = "option"
SPOT = "spot"
ACCOUNT = "account"  # account-wide endpoints (all products together)

# Per-tier order-entry limits per second: (derivatives, option, spot). REFERENCE §4.
TIERS: dict[str, tuple[int, int, int]] = {
    "default": (10, 10, 20),
    "vip1": (20, 20, 25),
    "vip2": (40, 40, 30),
    "vip3": (60, 60, 40),
    "vip4": (60, 60, 40),
    "vip5": (60, 60, 40),
    "vip_supreme": (60, 60, 40),
}

# Default-tier per-endpoint limits (requests per second): (derivatives, option, spot).
# ``upgradable`` endpoints follow the tier.
_ORDER_ENDPOINTS: dict[str, tuple[int, int, int]] = {
    "/v5/order/create": (10, 10, 20),
    "/v5/order/amend": (10, 10, 10),
    "/v5/order/cancel": (10, 10, 20),
    "/v5/order/cancel-all": (10, 1, 20),
    "/v5/order/create-batch": (10, 10, 20),
    "/v5/order/amend-batch": (10, 10, 20),
    "/v5/order/cancel-batch": (10, 10, 20),
}

# Endpoints limited the same way for every product (per UID): requests per second.
_FLAT_ENDPOINTS: dict[str, int] = {
    "/v5/order/disconnected-cancel-all": 5,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/execution/list": 50,
    "/v5/position/list": 50,
    "/v5/position/set-leverage": 10,
    "/v5/position/switch-mode": 10,
    "/v5/position/trading-stop": 10,
    "/v5/position/closed-pnl": 50,
    "/v5/position/symbol-info": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/account/fee-rate": 5,
    "/v5/account/info": 50,
    "/v5/account/transaction-log": 25,
    "/v5/account/set-margin-mode": 5,
    "/v5/account/user-setting-config": 50,
    "/v5/account/set-limit-px-action": 10,
    "/v5/account/query-dcp-info": 5,
    "/v5/user/query-api": 10,
}

CANCEL_PATHS = frozenset({"/v5/order/cancel", "/v5/order/cancel-all", "/v5/order/cancel-batch"})


def product_group(category: str | None) -> str:
    if category in ("linear", "inverse"):
        return DERIVATIVES
    if category == "option":
        return OPTION
    if category == "spot":
        return SPOT
    return DERIVATIVES


@dataclass(frozen=True, slots=True)
class LimitKey:
    path: str
    group: str


class Window:
    """At most ``limit`` units in any rolling ``period`` seconds, plus an explicit block."""

    __slots__ = ("_events", "blocked_until", "limit", "period")

    def __init__(self, limit: int, period: float = 1.0) -> None:
        if limit < 1:
            raise ConfigError(f"rate limit: expected at least 1 request per window, got {limit}")
        self.limit = limit
        self.period = period
        self._events: deque[float] = deque()
        self.blocked_until = 0.0

    def _trim(self, now: float) -> None:
        events = self._events
        horizon = now - self.period
        while events and events[0] <= horizon:
            events.popleft()

    def used(self, now: float) -> int:
        self._trim(now)
        return len(self._events)

    def delay(self, now: float, weight: int = 1, cap: int | None = None) -> float:
        """Seconds to wait before ``weight`` more units fit under ``cap`` (default ``limit``)."""
        wait = max(0.0, self.blocked_until - now)
        limit = self.limit if cap is None else min(cap, self.limit)
        weight = min(weight, limit)
        self._trim(now)
        excess = len(self._events) + weight - limit
        if excess > 0:
            # The window frees up once the ``excess``-th oldest event leaves it.
            wait = max(wait, self._events[excess - 1] + self.period - now)
        return wait

    def record(self, now: float, weight: int = 1) -> None:
        self._events.extend([now] * weight)

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)


class RateLimiter:
    """Per-endpoint and per-IP windows shared by every request of one API key."""

    def __init__(
        self,
        tier: str = "default",
        *,
        ip_limit: int = 600,
        ip_period: float = 5.0,
        cancel_reserve: float = 0.1,
        slack: float = 0.05,
    ) -> None:
        if tier not in TIERS:
            raise ConfigError(f"rate_limit_tier: expected one of {', '.join(TIERS)}, got {tier!r}")
        self.tier = tier
        # Requests leave here and arrive there with jitter; a little slack on our window keeps
        # two requests that we spaced exactly one period apart from landing in one server window.
        self.slack = slack
        self._windows: dict[LimitKey, Window] = {}
        self._locks: dict[LimitKey, asyncio.Lock] = {}
        self.ip = Window(ip_limit, ip_period + slack)
        self._ip_cap_non_cancel = max(1, int(ip_limit * (1.0 - cancel_reserve)))

    def key(self, path: str, category: str | None) -> LimitKey:
        if path in _ORDER_ENDPOINTS:
            return LimitKey(path, product_group(category))
        if path in _FLAT_ENDPOINTS:
            return LimitKey(path, ACCOUNT)
        return LimitKey(path, "ip-only")

    def limit_for(self, key: LimitKey) -> int | None:
        """The per-second limit of ``key`` at this tier (None: only the IP limit applies)."""
        if key.path in _ORDER_ENDPOINTS:
            idx = {DERIVATIVES: 0, OPTION: 1, SPOT: 2}[key.group]
            base = _ORDER_ENDPOINTS[key.path][idx]
            if self.tier == "default":
                return base
            return max(base, TIERS[self.tier][idx])
        return _FLAT_ENDPOINTS.get(key.path)

    def window(self, key: LimitKey) -> Window | None:
        win = self._windows.get(key)
        if win is None:
            limit = self.limit_for(key)
            if limit is None:
                return None
            win = self._windows[key] = Window(limit, 1.0 + self.slack)
        return win

    async def acquire(self, path: str, category: str | None = None, weight: int = 1) -> None:
        """Wait until a request to ``path`` fits in every window, then count it."""
        key = self.key(path, category)
        win = self.window(key)
        is_cancel = path in CANCEL_PATHS
        ip_cap = None if is_cancel else self._ip_cap_non_cancel
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:  # FIFO per endpoint
            while True:
                now = time.monotonic()
                wait = self.ip.delay(now, 1, ip_cap)
                if win is not None:
                    wait = max(wait, win.delay(now, weight))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            now = time.monotonic()
            if win is not None:
                win.record(now, min(weight, win.limit))
            self.ip.record(now, 1)

    def block(self, path: str, category: str | None, until_monotonic: float) -> None:
        """Hold every request to ``path`` (for that product) until ``until_monotonic``."""
        win = self.window(self.key(path, category))
        if win is not None:
            win.block(until_monotonic)
        else:
            self.ip.block(until_monotonic)

    def observe(
        self,
        path: str,
        category: str | None,
        limit: int | None,
        remaining: int | None,
        reset_in_s: float | None,
    ) -> None:
        """Follow the server's ``X-Bapi-Limit*`` headers for this endpoint."""
        key = self.key(path, category)
        win = self.window(key)
        if win is None:
            return
        if limit is not None and 0 < limit < win.limit:
            win.limit = limit
        if remaining is not None and remaining <= 0 and reset_in_s is not None and reset_in_s > 0:
            win.block(time.monotonic() + reset_in_s)
