"""Fault injection: what the sandbox should do wrong next, on purpose.

Faults are armed through the :class:`~bybitkit.sandbox.app.Sandbox` methods or the admin REST
under ``/sandbox/faults/`` and consumed by the server and the stream publishers.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

REST_ERROR_KINDS = ("10002", "10006", "403", "5xx")


@dataclass
class RestFault:
    kind: str
    count: int
    path: str | None = None


@dataclass
class Faults:
    # REST: answer the next calls with these errors, in order (a path limits one to its calls).
    rest_errors: deque[RestFault] = field(default_factory=deque)
    # REST: delay the next ``delay_count`` answers (None: all) by ``delay_s`` after processing
    # (only the answers to ``delay_path`` when it is set).
    delay_s: float = 0.0
    delay_count: int | None = 0
    delay_path: str | None = None
    # REST and trade WS: execute the next order create, then drop the connection unanswered.
    drop_next_create: int = 0
    # WS: pushes paused until this monotonic time.
    paused_until: float = 0.0
    # WS: drop private streams right after the next fill is pushed.
    drop_private_after_fill: int = 0
    injected: int = 0  # faults armed so far (for reports)

    def add_rest_errors(self, kind: str, count: int = 1, path: str | None = None) -> None:
        if kind not in REST_ERROR_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(REST_ERROR_KINDS)}, got {kind!r}")
        if count < 1:
            raise ValueError(f"count: expected at least 1, got {count}")
        self.rest_errors.append(RestFault(kind, count, path))
        self.injected += 1

    def next_rest_error(self, path: str) -> str | None:
        """The error to answer a call to ``path`` with (the oldest armed entry that applies)."""
        for entry in self.rest_errors:
            if entry.path is not None and entry.path != path:
                continue
            entry.count -= 1
            if entry.count <= 0:
                self.rest_errors.remove(entry)
            return entry.kind
        return None

    def set_delay(self, seconds: float, count: int | None = None, path: str | None = None) -> None:
        if seconds < 0:
            raise ValueError(f"seconds: expected >= 0, got {seconds}")
        self.delay_s = seconds
        self.delay_count = count
        self.delay_path = path
        self.injected += 1

    def take_delay(self, path: str | None = None) -> float:
        """The delay to answer a call to ``path`` with (consumes one of ``delay_count``)."""
        if self.delay_s <= 0 or self.delay_count == 0:
            return 0.0
        if self.delay_path is not None and path != self.delay_path:
            return 0.0
        if self.delay_count is not None:
            self.delay_count -= 1
        return self.delay_s

    def pause_pushes(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        self.injected += 1

    @property
    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def take_drop_create(self) -> bool:
        if self.drop_next_create > 0:
            self.drop_next_create -= 1
            return True
        return False
