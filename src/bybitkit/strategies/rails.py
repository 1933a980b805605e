"""Safety rails, pure logic: the kill switch's equity watch and the order-rate limit.

The runner feeds them; they decide. Kept free of I/O so that they are unit-tested exactly.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["EquityWatch", "OrderRate", "RailRefused"]


class RailRefused(Exception):
    """An order a rail refused (not sent): ``rail`` says which, ``reason`` why."""

    def __init__(self, rail: str, reason: str) -> None:
        super().__init__(f"{rail}: {reason}")
        self.rail = rail
        self.reason = reason


@dataclass
class EquityWatch:
    """Equity marked to market against a max loss (from the start) and a max drawdown (a
    fraction of the peak). ``update`` returns why the kill switch fires, or None."""

    max_loss: Decimal | None = None
    max_drawdown: Decimal | None = None
    start: Decimal | None = None
    peak: Decimal | None = None
    last: Decimal | None = None
    fired: str | None = None

    def update(self, equity: Decimal) -> str | None:
        if self.start is None:
            self.start = self.peak = equity
        assert self.peak is not None
        self.last = equity
        self.peak = max(self.peak, equity)
        if self.fired is not None:
            return None
        loss = self.start - equity
        if self.max_loss is not None and loss >= self.max_loss:
            self.fired = f"max loss: equity {equity} is {loss} below the start {self.start}"
        elif self.max_drawdown is not None and self.peak > 0:
            drawdown = (self.peak - equity) / self.peak
            if drawdown >= self.max_drawdown:
                self.fired = (
                    f"max drawdown: equity {equity} is {drawdown:.4%} below the peak {self.peak}"
                )
        return self.fired

    @property
    def pnl(self) -> Decimal | None:
        if self.start is None or self.last is None:
            return None
        return self.last - self.start


@dataclass
class OrderRate:
    """At most ``per_second`` orders in any one-second window (a sliding window)."""

    per_second: Decimal
    _sent: deque[float] = field(default_factory=deque)

    def allow(self, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        while self._sent and t - self._sent[0] >= 1.0:
            self._sent.popleft()
        if len(self._sent) >= self.per_second:
            return False
        self._sent.append(t)
        return True
