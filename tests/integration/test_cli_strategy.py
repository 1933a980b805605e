"""``bybitkit start`` / ``status`` / ``stop`` as separate processes against a sandbox on the
test's loop: a detached strategy quotes, another process reads its status and stops it, and no
order is left; the kill switch ends a foreground run with its own exit code."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bybitkit.sandbox.app import Sandbox
from bybitkit.strategies import EXIT_KILLED

from .test_strategy_runner import SCRIPT

D = Decimal


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=3, simulate=False) as s:
        yield s


def env(home: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BYBITKIT_")}
    e["BYBITKIT_HOME"] = str(home)
    e["COLUMNS"] = "200"
    return e


async def bybitkit(home: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bybitkit.cli.main", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env(home),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_config(
    tmp_path: Path, sb: Sandbox, creds: Any, mp: pytest.MonkeyPatch, risk: str = ""
) -> Path:
    script = tmp_path / "quoter.py"
    script.write_text(textwrap.dedent(SCRIPT))
    cfg = tmp_path / "quoter.yml"
    cfg.write_text(
        textwrap.dedent(f"""\
        name: cli-quoter
        tick_interval: 0.2
        connectors:
          spot:
            connector: sandbox
            environment: {sb.rest_url}
            api_key: $QUOTER_KEY
            api_secret: $QUOTER_SECRET
            pairs: [BTC-USDT]
        risk:
          stale_after: 30
        """)
        + textwrap.indent(risk, "  ")
    )
    mp.setenv("QUOTER_KEY", creds.api_key)  # keys stay out of the file
    mp.setenv("QUOTER_SECRET", creds.api_secret)
    return cfg


async def wait_for(pred: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


async def test_detached_start_status_stop(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = sb.create_account()
    cfg = write_config(tmp_path, sb, creds, monkeypatch)
    home = tmp_path / "home"
    code, out, err = await bybitkit(home, "start", "--strategy", str(tmp_path / "quoter.py"),
                                    "--config", str(cfg), "--detach")  # fmt: skip
    assert code == 0, err
    assert "started cli-quoter in the background" in out
    state = home / "run" / "cli-quoter.json"
    info = json.loads(state.read_text())
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    try:
        await wait_for(lambda: len(sb.orders(creds.api_key, open_only=True)) == 2)
        code, out, err = await bybitkit(home, "status", "--json")
        assert code == 0, err
        st = json.loads(out)
        assert st["name"] == "cli-quoter" and st["state"] == "running"
        assert len(st["connectors"]["spot"]["open_orders"]) == 2
        assert st["connectors"]["spot"]["books"]["BTC-USDT"]["valid"] is True
        code, out, err = await bybitkit(home, "status", "--once")
        assert code == 0 and "cli-quoter" in out and "BTC-USDT" in out, err
        # a second start under the same name is refused while it runs
        code, out, err = await bybitkit(home, "start", "--strategy", str(tmp_path / "quoter.py"),
                                        "--config", str(cfg))  # fmt: skip
        assert code == 1 and "already running" in err
        code, out, err = await bybitkit(home, "stop")
        assert code == 0, err
        assert "stopped cli-quoter" in out
    finally:
        if state.exists():
            with_pid = int(info["pid"])
            os.kill(with_pid, 9)
    assert sb.orders(creds.api_key, open_only=True) == []
    assert not state.exists()
    code, out, err = await bybitkit(home, "status")
    assert code == 1 and "no strategy is running" in err
    log = (home / "logs" / "cli-quoter.out").read_text() + (
        home / "logs" / "bybitkit.log"
    ).read_text()
    assert creds.api_secret not in log


async def test_kill_switch_exit_code(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = sb.create_account(balances={"USDT": "2000", "BTC": "1"})
    cfg = write_config(tmp_path, sb, creds, monkeypatch, "max_loss: 1000\nequity_interval: 0.1\n")
    home = tmp_path / "home"
    run = asyncio.create_task(
        bybitkit(home, "start", "--strategy", str(tmp_path / "quoter.py"), "--config", str(cfg))
    )
    try:
        await wait_for(lambda: len(sb.orders(creds.api_key, open_only=True)) == 2)
        sb.move_mid("BTCUSDT", sb.book("BTCUSDT", "spot", 1)["bids"][0][0] * D("0.95"))
        code, _out, err = await asyncio.wait_for(run, 60)
    finally:
        if not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    assert code == EXIT_KILLED, err
    assert "kill switch" in err and "max loss" in err
    assert sb.orders(creds.api_key, open_only=True) == []


async def test_bad_config_is_refused_naming_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text("strategy: pure_market_making\nconnectors: {}\ntick_interval: soon\n")
    code, _out, err = await bybitkit(tmp_path / "home", "start", "--config", str(cfg))
    assert code != 0
    assert "tick_interval" in err and "decimal" in err
