"""``bybitkit shell``: driven once through a real pseudo-terminal (``os.openpty`` and a
subprocess, no pexpect), and its completer in process."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import typer
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from bybitkit.cli.main import app
from bybitkit.cli.shell import ShellCompleter
from bybitkit.sandbox import Sandbox

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>()][0-9A-Za-z]?|[\r\x07]")
PASSWORD = "shell password"


class Terminal:
    """A process on the slave side of a pty; its output read on this event loop."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the pty is its tty
        )  # fmt: skip
        os.close(slave)
        self.raw = bytearray()
        self.seen = 0  # how much of the (clean) text expect() has consumed
        self.changed = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.master, self._read)
        self.reading = True

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed the terminal
            data = b""
        if not data:
            self._stop_reading()
        self.raw += data
        self.changed.set()

    def _stop_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.master)
            self.reading = False

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    async def expect(self, needle: str, timeout: float = 30) -> str:
        """Wait until ``needle`` appears after what was already matched; returns the text up
        to and including it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    text = self.text
                    at = text.find(needle, self.seen)
                    if at >= 0:
                        chunk = text[self.seen : at + len(needle)]
                        self.seen = at + len(needle)
                        return chunk
                    if not self.reading:
                        raise AssertionError(f"the shell ended before {needle!r}:\n{text[-2000:]}")
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            shown = self.text[max(0, self.seen - 300) :]
            msg = f"no {needle!r} in {timeout} s; the terminal shows:\n{shown}"
            raise AssertionError(msg) from None

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    async def send_hidden(self, data: str, timeout: float = 10) -> None:
        """Type at a hidden prompt once the terminal no longer echoes (getpass flushes what
        was typed before it turned echo off, as a real terminal does)."""
        async with asyncio.timeout(timeout):
            while termios.tcgetattr(self.master)[3] & termios.ECHO:
                await asyncio.sleep(0.01)
        self.send(data)

    async def close(self) -> int:
        try:
            code = await asyncio.to_thread(self.proc.wait, 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = await asyncio.to_thread(self.proc.wait)
        finally:
            self._stop_reading()
            os.close(self.master)
        return code


async def test_the_shell_through_a_pseudo_terminal(sandbox: Sandbox, tmp_path: Path) -> None:
    creds = sandbox.create_account()
    home = tmp_path / "home"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "BYBITKIT_HOME": str(home),
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "PYTHONUNBUFFERED": "1",
    }
    term = Terminal([sys.executable, "-m", "bybitkit.cli.main", "shell"], env)
    try:
        await term.expect("bybitkit shell")
        await term.expect(">>>")
        term.send(f"connect sandbox --sandbox-url {sandbox.rest_url}\r")
        await term.expect("Enter your bybit API key >>>")
        await term.send_hidden(creds.api_key + "\r")
        await term.expect("Enter your bybit secret key >>>")
        await term.send_hidden(creds.api_secret + "\r")
        await term.expect("Create a password to protect your keys >>>")
        await term.send_hidden(PASSWORD + "\r")
        await term.expect("Repeat the password >>>")
        await term.send_hidden(PASSWORD + "\r")
        await term.expect("You are now connected to sandbox.")
        await term.expect(">>>")

        term.send("balance\r")  # the password is remembered for the session
        chunk = await term.expect("USD value")
        assert "Enter your password" not in chunk
        await term.expect(">>>")

        term.send("ver\t")  # Tab completes the command name
        await term.expect("version")
        term.send("\r")
        await term.expect("0.1.0")
        await term.expect(">>>")
        term.send("\x1b[A\r")  # Up: the previous command again, from the history
        await term.expect("0.1.0")
        await term.expect(">>>")

        term.send("buy BTC-USDT abc\r")  # an error does not end the shell
        await term.expect("AMOUNT: expected a decimal number")
        await term.expect(">>>")
        term.send("buy BTC-USDT 0.001\r")
        await term.expect("state filled")
        await term.expect(">>>")
        term.send("nosuchcommand\r")
        await term.expect("No such command")
        await term.expect(">>>")
        term.send("exit\r")
        code = await term.close()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            await asyncio.to_thread(term.proc.wait)
        if term.reading:
            term._stop_reading()
            os.close(term.master)
    assert code == 0, term.text[-2000:]
    everything = term.raw.decode("utf-8", "replace")
    assert creds.api_secret not in everything and PASSWORD not in everything  # never echoed
    assert creds.api_key not in everything
    history = (home / "shell_history").read_text()
    assert f"connect sandbox --sandbox-url {sandbox.rest_url}" in history
    assert "balance" in history and "version" in history
    assert creds.api_secret not in history and PASSWORD not in history


def complete(text: str) -> list[str]:
    completer = ShellCompleter(typer.main.get_group(app))
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_completion_of_commands_options_connectors_and_pairs() -> None:
    assert complete("ba") == ["balance"]
    assert {"order-book", "orders"} <= set(complete("or"))
    assert "exit" in complete("ex")
    assert complete("connect sandbox_p") == ["sandbox_perpetual"]
    assert complete("balance --connector sand") == ["sandbox", "sandbox_perpetual"]
    assert {"--price", "--type", "--tif"} <= set(complete("buy BTC-USDT 1 --"))
    assert "BTC-USDT" in complete("order-book B")
    assert complete("sandbox s") == ["serve"]
    assert complete("shel") == []  # not inside itself
