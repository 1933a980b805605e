"""Side-by-side timing: every figure is a ratio against a baseline run in the same process.

The machines are noisy, so candidates are timed in interleaved rounds and the median round is
kept; absolute rates are printed for orientation only.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def time_per_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(
    candidates: dict[str, Callable[[], object]], number: int, rounds: int = 7
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in interleaved rounds."""
    for fn in candidates.values():  # warm up
        time_per_call(fn, max(1, number // 10))
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(time_per_call(fn, number))
    return {name: statistics.median(v) for name, v in samples.items()}


def environment() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(name: str, payload: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2) + "\n")
    return path
