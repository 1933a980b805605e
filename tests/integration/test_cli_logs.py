"""Secrets never reach the output or the logs: the API secret, an RSA private key and the
key-store password are grepped for in stdout, stderr, the log file and every log record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bybitkit.cli.common import RedactSecrets, register_secret
from bybitkit.sandbox import Sandbox
from bybitkit.v5.auth import Credentials

from .test_cli_harness import PASSWORD, Cli, cli, sandbox_info

__all__ = ["cli"]


def secret_parts(secret: str) -> list[str]:
    """The secret and, for a PEM key, each line of its body."""
    lines = [ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= 16]
    return [secret.strip(), *[ln for ln in lines if not ln.startswith("-----")]]


async def test_no_secret_in_output_or_logs(
    cli: Cli, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hmac = sandbox.create_account()
    rsa = sandbox.create_account(key_type="rsa")
    pem = cli.home.parent / "rsa.pem"
    pem.write_text(rsa.api_secret)
    debug = {"BYBITKIT_LOG_LEVEL": "DEBUG"}
    outputs = [
        await cli("connect", "sandbox", "--sandbox-url", sandbox.rest_url, env=debug,
                  input=f"{hmac.api_key}\n{hmac.api_secret}\n"),
        await cli("connect", "sandbox_perpetual", "--sandbox-url", sandbox.rest_url, env=debug,
                  input=f"{rsa.api_key}\n{pem}\n"),
        await cli("balance", env=debug),
        await cli("buy", "BTC-USDT", "0.001", "-c", "sandbox", env=debug),
        await cli("sell", "BTC-USDT", "0.01", "-c", "sandbox_perpetual", env=debug),
        await cli("history", "--json", env=debug),
        await cli("orders", "--sandbox-info", sandbox_info(sandbox, hmac), "--json", env=debug),
        # Failures print and log too: a wrong secret, a wrong password.
        await cli("connect", "sandbox", "--sandbox-url", sandbox.rest_url, env=debug,
                  input=f"{hmac.api_key}\nWRONG-{hmac.api_secret}\n", code=1),
        await cli("balance", env={**debug, "BYBITKIT_PASSWORD": "x" + PASSWORD}, code=1),
    ]  # fmt: skip
    log_file = cli.home / "logs" / "bybitkit.log"
    logs = log_file.read_text()
    assert "clock synced" in logs and "keys saved connector=sandbox" in logs  # it does log
    texts = {
        "output": "\n".join(o.output for o in outputs),
        "log file": logs,
        "log records": caplog.text + "\n".join(r.getMessage() for r in caplog.records),
        "key store": (cli.home / "keys.json").read_text(),
    }
    secrets = [*secret_parts(hmac.api_secret), *secret_parts(rsa.api_secret), PASSWORD]
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into the {where}"


def test_a_secret_logged_by_mistake_is_redacted(tmp_path: Path) -> None:
    secret = "a-very-secret-value-123456"
    register_secret(secret)
    logger = logging.getLogger("bybitkit.test.redaction")
    path = tmp_path / "log.txt"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(RedactSecrets())
    logger.addHandler(handler)
    try:
        logger.warning("oops secret=%s", secret)
        try:
            raise ValueError(f"bad {secret}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text()
    assert secret not in text and "oops secret=***" in text and "ValueError: bad ***" in text
    creds = Credentials("K", secret)
    assert secret not in str(creds) and secret not in repr(creds)
