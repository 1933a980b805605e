"""Fixtures for tests against a real sandbox on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bybitkit.sandbox import Sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox whose market does not move by itself: the book changes only by what a test
    does (the house ladder laid at start, users' orders, injected trades)."""
    async with Sandbox(seed=3, simulate=False) as sb:
        yield sb


@pytest.fixture
async def live_sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox with its simulated market running."""
    async with Sandbox(seed=4) as sb:
        yield sb
