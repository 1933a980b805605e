"""``bybitkit shell``: the same commands in an interactive prompt (prompt_toolkit), with a
history kept in ``BYBITKIT_HOME/shell_history`` and completion of commands, options, connector
ids and pairs. The key-store password is asked once per shell session."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

import typer
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from rich.markup import escape

from bybitkit.cli.common import SESSION, console, err_console, forget_secrets, home
from bybitkit.connectors.registry import CONNECTORS

PROMPT = ">>> "
BUILTINS = ("help", "exit", "quit")
PAIRS = ("BTC-USDT", "ETH-USDT", "BTC-USDC", "SOL-USDT", "XRP-USDT")
NOT_IN_SHELL = ("shell",)
CONNECTOR_OPTIONS = ("--connector", "-c")


class ShellCompleter(Completer):
    """Completes command names, then that command's options, connector ids and pairs."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def _commands(self, group: Any) -> dict[str, Any]:
        return {
            name: cmd
            for name, cmd in group.commands.items()
            if name not in NOT_IN_SHELL and not getattr(cmd, "hidden", False)
        }

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = "" if text.endswith(" ") or not words else words[-1]
        done = words if current == "" else words[:-1]
        candidates: Iterable[str]
        if not done:
            candidates = [*self._commands(self.group), *BUILTINS]
        else:
            cmd: Any = self._commands(self.group).get(done[0])
            rest = done[1:]
            while _is_group(cmd) and rest and rest[0] in cmd.commands:
                cmd, rest = cmd.commands[rest[0]], rest[1:]
            if cmd is None:
                return
            if _is_group(cmd):
                candidates = list(cmd.commands)
            else:
                candidates = self._arguments(cmd, done, current)
        for c in sorted(set(candidates)):
            if c.startswith(current) and c != current:
                yield Completion(c, start_position=-len(current))

    def _arguments(self, cmd: Any, done: list[str], current: str) -> list[str]:
        previous = done[-1] if done else ""
        if previous in CONNECTOR_OPTIONS or (
            done[0] in ("connect", "disconnect") and len(done) == 1 and not current.startswith("-")
        ):
            return list(CONNECTORS)
        options = [o for p in cmd.params if p.param_type_name == "option" for o in p.opts]
        if current.startswith("-"):
            return options
        takes_pair = any(p.param_type_name == "argument" and p.name in ("pair", "pairs")
                         for p in cmd.params) or previous == "--pair"  # fmt: skip
        return [*PAIRS, *options] if takes_pair else options


def _is_group(cmd: Any) -> bool:
    return isinstance(getattr(cmd, "commands", None), dict)


def dispatch(group: Any, args: list[str]) -> int:
    """Run one command line as ``bybitkit ARGS`` would, without leaving the shell."""
    try:
        result = group.main(args=args, prog_name="bybitkit", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console().print("aborted")
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        err_console().print("interrupted")
        return 130
    except Exception as exc:
        if hasattr(exc, "exit_code") and hasattr(exc, "show"):  # a usage error: it says why
            exc.show()
            return int(exc.exit_code)
        raise
    return result if isinstance(result, int) else 0


def run_shell(group: Any, session: Any = None) -> None:
    """The read-eval loop. ``session`` (a prompt_toolkit ``PromptSession``) is for tests."""
    SESSION.in_shell = True
    if session is None:
        session = PromptSession(
            history=FileHistory(str(home() / "shell_history")),
            completer=ShellCompleter(group),
            complete_while_typing=False,
        )
    out = console()
    out.print(
        "bybitkit shell: the commands of `bybitkit --help` (connect, balance, order-book, buy, "
        "history ...). `help` lists them, `COMMAND --help` explains one, Tab completes, "
        "`exit` (or Ctrl-D) leaves."
    )
    try:
        while True:
            try:
                line = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("exit", "quit"):
                break
            if line == "help":
                dispatch(group, ["--help"])
                continue
            try:
                args = shlex.split(line)
            except ValueError as exc:
                err_console().print(f"[bold red]error:[/] {escape(str(exc))}")
                continue
            if args[0] in NOT_IN_SHELL:
                err_console().print("already in the shell")
                continue
            dispatch(group, args)
    finally:
        SESSION.in_shell = False
        SESSION.password = None
        forget_secrets()


__all__ = ["ShellCompleter", "dispatch", "run_shell"]
