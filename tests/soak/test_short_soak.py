"""The short soak (part of ``make test``): a fixed seed, about 20 s of chaos in two cycles, a
hard kill and restart of the bot process, every invariant of :mod:`.harness` checked, zero
violations. ``make soak`` runs the long one (SOAK_SECONDS, SOAK_SEED, SOAK_FILLS)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .harness import FAULT_KINDS, Soak, SoakOptions, make_schedule

SEED = 20240611


def test_the_schedule_is_seeded_and_covers_every_kind() -> None:
    a = make_schedule(7, 600, mean_gap_s=2.5, kill_every_s=75)
    assert a == make_schedule(7, 600, mean_gap_s=2.5, kill_every_s=75)
    assert a != make_schedule(8, 600, mean_gap_s=2.5, kill_every_s=75)
    assert {f.kind for f in a} == set(FAULT_KINDS)
    assert [f.at for f in a] == sorted(f.at for f in a)
    # every kind but the kill within the first faults: a short run already sees them all
    first = {f.kind for f in a[: len(FAULT_KINDS) + 3]}
    assert set(FAULT_KINDS) - {"kill_restart"} <= first


@pytest.mark.slow
async def test_short_soak_has_no_violation(tmp_path: Path) -> None:
    kinds = tuple(k for k in FAULT_KINDS if k != "create_timeout")  # a 10 s stall: long soak only
    opts = SoakOptions(
        seed=SEED,
        workdir=tmp_path,
        seconds=18.0,
        chaos_s=10.0,
        mean_gap_s=0.8,
        kinds=kinds,
        kill_every_s=1000.0,
        first_kill_s=11.0,
        settle_timeout_s=25.0,
        check_every_s=2.0,
    )
    t0 = time.monotonic()
    result = await Soak(opts).run()
    took = time.monotonic() - t0
    assert result.violations == [], "\n".join(result.violations)
    assert result.kinds["kill_restart"] == 1 and result.restarts == 1
    assert len(result.kinds) >= 8, result.kinds
    assert result.fills >= 20 and result.resyncs >= 2
    assert took < 60, f"the short soak took {took:.0f} s"
