"""Shared test helpers: where the Bybit V5 reference pack lives.

The pack (``REFERENCE.md``, ``auth_test_vectors.json``, ``examples/*.json``) is read from
``<repo>/../shared/bybit-v5`` when that folder exists (the team's live copy), else from the copy
committed under ``tests/fixtures/bybit-v5``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def locate_shared_dir() -> Path:
    """The Bybit V5 reference pack folder (live shared copy preferred over the fixtures copy)."""
    shared = REPO_ROOT.parent / "shared" / "bybit-v5"
    if (shared / "examples").is_dir():
        return shared
    return REPO_ROOT / "tests" / "fixtures" / "bybit-v5"


def locate_examples_dir() -> Path:
    """The ``examples`` folder of the reference pack."""
    return locate_shared_dir() / "examples"


def example_files() -> list[Path]:
    """Every example file of the pack, sorted by name."""
    return sorted(locate_examples_dir().glob("*.json"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return locate_shared_dir()


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return locate_examples_dir()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test asking for ``example_file`` runs once per example file (id = file stem)."""
    if "example_file" in metafunc.fixturenames:
        files = example_files()
        metafunc.parametrize("example_file", files, ids=[p.stem for p in files])


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Every task a test (or the code under test) starts must be finished when it ends: a task
    left running is an owner that forgot to cancel and await it, so the test fails."""
    yield
    me = asyncio.current_task()
    # Give just-cancelled tasks one turn of the loop to finish unwinding.
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    if leftover:
        for t in leftover:
            t.cancel()
        names = ", ".join(sorted(t.get_name() for t in leftover))
        pytest.fail(f"test left {len(leftover)} task(s) running: {names}")
