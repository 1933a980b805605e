"""The exchange's clock, as seen from here.

Every timestamp we sign (REST ``X-BAPI-TIMESTAMP``, WS ``expires``, trade-WS headers) comes from
:meth:`ServerClock.now_ms`: the local wall clock plus the offset measured against
``/v5/market/time``. A ``10002`` answer (timestamp outside the receive window) triggers a re-sync.
"""

from __future__ import annotations

import time


def wall_ms() -> int:
    """Local wall-clock time in ms."""
    return time.time_ns() // 1_000_000


class ServerClock:
    """Offset between the exchange clock and ours, in ms (``server - local``)."""

    __slots__ = ("offset_ms", "rtt_ms", "synced_at")

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms
        self.rtt_ms: int | None = None
        self.synced_at: float | None = None  # monotonic time of the last sync

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def update(self, server_ms: int, sent_local_ms: int, received_local_ms: int) -> None:
        """Record one measurement: the server said ``server_ms`` somewhere between the local
        times the request left and the answer came back; assume the middle."""
        rtt = max(0, received_local_ms - sent_local_ms)
        self.offset_ms = server_ms - (sent_local_ms + rtt // 2)
        self.rtt_ms = rtt
        self.synced_at = time.monotonic()
