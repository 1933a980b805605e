"""Fixtures of the conformance tests: one sandbox per test module, on the module's event loop.

Every test module here marks its tests ``pytest.mark.asyncio(loop_scope="module")`` and asks for
``sb``. The sandbox is started once per module (``SANDBOX_SEED`` of the module, default 1) and
serves on that module's event loop, so it keeps serving across the module's tests.

The repository-wide ``_no_leaked_tasks`` fixture runs on the *function* loop, where a module-loop
test leaves nothing to see; ``sb`` therefore repeats that check on the module loop: every task a
test starts there (client sessions, server connection handlers, WebSocket writers) must be finished
shortly after the test ends. Only the tasks that existed before the test (the sandbox's own
publisher and market simulator) may keep running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bybitkit.sandbox import Sandbox

#: How long a test's own tasks may take to unwind after it ends (server-side connection handlers
#: notice a closed client socket on their next read).
UNWIND_S = 3.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    seed = getattr(request.module, "SANDBOX_SEED", 1)
    async with Sandbox(seed=seed) as sandbox:
        yield sandbox


@pytest_asyncio.fixture(loop_scope="module")
async def sb(module_sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """The module's sandbox, frozen at the start of the test; fails the test if it leaves a task
    running on the module loop."""
    module_sandbox.freeze()
    before = set(asyncio.all_tasks())
    yield module_sandbox
    me = asyncio.current_task()
    deadline = time.monotonic() + UNWIND_S
    while True:
        await asyncio.sleep(0.02)
        left = [t for t in asyncio.all_tasks() if t is not me and t not in before and not t.done()]
        if not left:
            return
        if time.monotonic() > deadline:
            for t in left:
                t.cancel()
            names = ", ".join(sorted(f"{t.get_name()} ({t.get_coro()!r:.80})" for t in left))
            pytest.fail(f"test left {len(left)} task(s) running on the module loop: {names}")
