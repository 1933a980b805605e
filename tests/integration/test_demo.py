"""``bybitkit demo`` as ``make demo`` runs it: the console command in a subprocess, no TTY, no
keys, no network; a timed run and an interrupted one both end with exit 0, the summary line,
the chart and a history holding every fill, with no order left open."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from bybitkit.cli.demo import demo_line
from bybitkit.store import Store

DEMO_LINE = re.compile(
    r"^demo: (\d+) orders, (\d+) fills, (\d+\.\d{2}) volume, fees (-?\d+\.\d{2}), "
    r"pnl (-?\d+\.\d{2})$"
)
CONNECTORS = ("sandbox", "sandbox_perpetual")
# what a leaked task, socket or coroutine prints on its way out
LEAKS = (
    "Traceback",
    "ResourceWarning",
    "never awaited",
    "Task was destroyed",
    "nclosed",
    "Exception ignored",
)


def command(out: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-W", "always::ResourceWarning", "-m", "bybitkit.cli.main",
        "demo", "--out", str(out), *args,
    ]  # fmt: skip


def environment(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BYBITKIT_HOME"] = str(tmp_path / "home")
    for name in ("BYBITKIT_LOG_LEVEL", "BYBITKIT_API_KEY", "BYBITKIT_CONNECTOR"):
        env.pop(name, None)
    return env


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    ihdr = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(b"IHDR" + ihdr) == crc
    width, height = struct.unpack(">II", ihdr[:8])
    assert width >= 800 and height >= 600
    assert data.endswith(b"IEND\xaeB`\x82")
    assert len(data) > 20_000  # two panels of lines and markers, not an empty canvas


def check_output(stdout: str, stderr: str) -> tuple[int, int]:
    """The last line's figures (orders, fills); stdout carries no log line."""
    lines = stdout.rstrip("\n").splitlines()
    m = DEMO_LINE.match(lines[-1])
    assert m is not None, lines[-1]
    orders, fills = int(m.group(1)), int(m.group(2))
    assert not any(" INFO " in x or x.startswith(("WARNING", "ERROR")) for x in lines)
    assert "our open orders left: 0 on the exchange, 0 in the history" in stdout
    assert not [marker for marker in LEAKS if marker in stderr], stderr
    return orders, fills


def check_history(path: Path, fills: int) -> None:
    with Store(path) as store:
        assert sum(store.fill_count(c) for c in CONNECTORS) == fills
        for c in CONNECTORS:
            assert store.orders(c), f"no order placed on {c}"
            assert store.open_orders(c) == [], f"orders left open on {c}"


def test_demo_line_format() -> None:
    line = demo_line(12, 5, Decimal("1234.5650"), Decimal("1.2349"), Decimal("-0.004"))
    assert line == "demo: 12 orders, 5 fills, 1234.56 volume, fees 1.23, pnl 0.00"
    assert DEMO_LINE.match(line)
    assert demo_line(1, 1, Decimal(3), Decimal("-0.5"), Decimal("-2.345")).endswith(
        "3.00 volume, fees -0.50, pnl -2.34"
    )


def test_demo_runs_both_strategies_and_writes_chart_and_history(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    started = time.monotonic()
    proc = subprocess.run(
        command(out, "--duration", "5"),
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    orders, fills = check_output(proc.stdout, proc.stderr)
    assert orders > 0 and fills > 0
    assert "stopped: time up" in proc.stdout
    assert proc.stdout.startswith("bybitkit demo: sandbox at http://127.0.0.1:")
    check_png(out / "demo.png")
    check_history(out / "history.sqlite", fills)
    with Store(out / "history.sqlite") as store:
        assert all(store.fill_count(c) > 0 for c in CONNECTORS)  # both strategies traded
    assert (tmp_path / "home" / "logs" / "bybitkit.log").is_file()
    assert took < 60


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_ends_the_demo_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "demo-out"
    proc = await asyncio.create_subprocess_exec(
        *command(out),  # the default 60 s: the signal ends it
        env=environment(tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert banner.startswith(b"bybitkit demo: sandbox at ")
        await asyncio.sleep(2.0)
        proc.send_signal(sig)
        rest, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout, stderr = (banner + rest).decode(), err.decode()
    assert proc.returncode == 0, stderr
    orders, fills = check_output(stdout, stderr)
    assert orders > 0
    assert f"stopped: interrupted ({sig.name})" in stdout
    check_png(out / "demo.png")
    check_history(out / "history.sqlite", fills)
