"""How the command-line tests drive ``bybitkit`` in process, and checks of that harness.

The sandbox runs on the test's event loop (the ``sandbox`` fixture); a command calls
``asyncio.run`` on its own loop, so it runs in a worker thread (``asyncio.to_thread``) while the
test's loop keeps serving the sandbox. Typer's ``CliRunner`` captures the command's output and
feeds its prompts. Each test gets its own ``BYBITKIT_HOME`` (key store, store, logs).

The other ``test_cli_*`` modules import :class:`Cli` and the ``cli`` fixture from here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bybitkit.cli.common import SESSION, forget_secrets
from bybitkit.cli.main import app
from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials

PASSWORD = "correct horse battery staple"
RUNNER = CliRunner()
#: Environment variables a test must not inherit from the developer's shell.
CLEARED = (
    "BYBITKIT_API_KEY",
    "BYBITKIT_API_SECRET",
    "BYBITKIT_API_SECRET_FILE",
    "BYBITKIT_CONNECTOR",
    "BYBITKIT_SANDBOX_URL",
    "BYBITKIT_LOG_LEVEL",
)


def sandbox_info(sb: Sandbox, creds: Credentials | None = None) -> str:
    """The JSON line ``bybitkit sandbox serve`` prints, for an account of ``sb``."""
    creds = creds or sb.create_account()
    return json.dumps(
        {
            "rest_url": sb.rest_url,
            "ws_url": sb.ws_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret,
        }
    )


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs ``bybitkit ARGS`` in process (in a worker thread) with a private home."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    async def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
        code: int | None = 0,
    ) -> Outcome:  # fmt: skip
        merged = {**self.env, **(env or {})}
        result = await asyncio.to_thread(
            RUNNER.invoke, app, list(args), input=input, env=merged, catch_exceptions=True
        )
        outcome = Outcome(result.exit_code, result.stdout, result.stderr, result.exception)
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            raise AssertionError(f"bybitkit {' '.join(args)} raised") from outcome.exception
        if code is not None:
            assert outcome.exit_code == code, (
                f"bybitkit {' '.join(args)}: exit {outcome.exit_code}, expected {code}\n"
                f"stdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}"
            )
        return outcome


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    home = tmp_path / "home"
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BYBITKIT_HOME", str(home))
    monkeypatch.setenv("BYBITKIT_PASSWORD", PASSWORD)
    yield Cli(home, {"BYBITKIT_HOME": str(home), "BYBITKIT_PASSWORD": PASSWORD})
    SESSION.password = None
    SESSION.in_shell = False
    forget_secrets()


@pytest.fixture
async def served() -> AsyncIterator[dict[str, str]]:
    """``bybitkit sandbox serve --port 0`` as a process: its JSON line; terminated after."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bybitkit.cli.main", "sandbox", "serve", "--port", "0",
        "--seed", "11", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# -- checks of the harness itself ------------------------------------------------------------------


async def test_commands_run_off_the_test_loop_and_leave_no_thread(
    cli: Cli, sandbox: Sandbox
) -> None:
    before = set(threading.enumerate())
    out = await cli("ticker", "BTC-USDT", "--json", "--sandbox-info", sandbox_info(sandbox))
    assert out.json()[0]["pair"] == "BTC-USDT"
    await asyncio.sleep(0)
    # The worker thread of asyncio.to_thread belongs to the loop's executor, joined at its
    # close; the command's own loop, connections and tasks are all closed by asyncio.run.
    new = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert all(t.name.startswith("asyncio_") for t in new), new


async def test_a_served_sandbox_process_works_with_its_json_line(
    cli: Cli, served: dict[str, str]
) -> None:
    info = json.dumps(served)
    out = await cli("balance", "--sandbox-info", info, "--json")
    (account,) = out.json()
    coins = {c["coin"]: c for c in account["coins"]}
    assert account["connectors"] == ["sandbox"]
    assert coins["USDT"]["total"] == "100000" and coins["USDT"]["usd_value"] == "100000"
    # The same as a file, and with --sandbox-url plus keys from the environment.
    path = cli.home.parent / "sandbox.json"
    path.write_text(info + "\n")
    out = await cli("trading-rules", "BTC-USDT", "--sandbox-info", str(path), "--json")
    assert out.json()[0]["symbol"] == "BTCUSDT"
    out = await cli(
        "orders", "--connector", "sandbox", "--sandbox-url", served["rest_url"], "--json",
        env={"BYBITKIT_API_KEY": served["api_key"], "BYBITKIT_API_SECRET": served["api_secret"]},
    )  # fmt: skip
    assert out.json() == []


def test_no_command_leaks_the_process_environment() -> None:
    # The CliRunner restores os.environ after each invoke.
    assert os.environ.get("BYBITKIT_API_KEY") is None
