"""``bybitkit sandbox serve`` as a process: one JSON line on stdout, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bybitkit.v5.auth import Credentials
from bybitkit.v5.environments import Environment
from bybitkit.v5.rest import RestClient


async def test_serve_prints_one_json_line_and_exits_cleanly() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bybitkit.cli.main", "sandbox", "serve", "--port", "0",
        "--seed", "5", "--api-key", "CLIKEY", "--api-secret", "cli-secret",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        info = json.loads(line)
        assert set(info) == {"rest_url", "ws_url", "api_key", "api_secret"}
        assert info["rest_url"].startswith("http://127.0.0.1:")
        assert info["api_key"] == "CLIKEY" and info["api_secret"] == "cli-secret"
        env = Environment.custom(info["rest_url"], info["ws_url"])
        async with RestClient(env, Credentials(info["api_key"], info["api_secret"])) as rest:
            wallet = await rest.wallet_balance()
            coins = {c.coin: c.walletBalance for c in wallet.list[0].coin}
            assert coins["USDT"] == 100000 and coins["BTC"] == 1
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 15)
        rest_of_stdout = await proc.stdout.read()
        assert rc == 0 and rest_of_stdout == b""  # the JSON line is the only stdout output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_refuses_a_non_loopback_host() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bybitkit.cli.main", "sandbox", "serve", "--host", "0.0.0.0",
        "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and out == b"" and b"loopback" in err
