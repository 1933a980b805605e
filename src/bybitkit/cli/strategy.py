"""``bybitkit start`` / ``status`` / ``stop``: run a strategy, watch it, stop it from anywhere.

``start`` runs in the foreground (Ctrl-C or SIGTERM stop it cleanly) or, with ``--detach``, in
a new background process whose output goes to ``BYBITKIT_HOME/logs/<name>.out``. A running
strategy leaves ``BYBITKIT_HOME/run/<name>.json`` (its pid, a loopback port and a token, mode
0600); ``status`` and ``stop`` talk to it through that port. Exit codes of ``start``: 0 stopped,
1 fatal error, 2 bad input, 3 kill switch, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bybitkit.cli.common import (
    CliError,
    Target,
    register_secret,
    reported,
    resolve,
    usage,
)
from bybitkit.connectors.base import BybitConnector
from bybitkit.keys import bybitkit_home
from bybitkit.strategies.config import ConnectorConfig, StrategyConfig, load_config
from bybitkit.strategies.runner import (
    EXIT_KILLED,
    StrategyRunner,
    expand_env,
    load_strategy,
    pid_alive,
    run_dir,
)
from bybitkit.v5.auth import Credentials

PAPER_IDS = frozenset({"bybit_paper_trade", "bybit_perpetual_paper_trade"})


def _cli_factory(
    creds_in: dict[str, tuple[str, str]],
) -> Any:
    """Connectors as the other commands open them: sandbox URLs, `$ENV` or inline keys, else
    the key store (or keys a parent process handed over on stdin)."""
    from bybitkit.connectors.registry import connect

    def factory(name: str, conf: ConnectorConfig, options: dict[str, Any]) -> BybitConnector:
        given = creds_in.get(name)
        key = expand_env(conf.api_key, f"connectors.{name}.api_key")
        secret = expand_env(conf.api_secret, f"connectors.{name}.api_secret")
        register_secret(secret)
        paper = conf.connector in PAPER_IDS
        target = Target(connector=conf.connector, sandbox_url=conf.environment)
        resolved = resolve(target, keys=False)
        creds: Credentials | None = None
        if given is not None:
            creds = Credentials(*given)
        elif key and secret:
            creds = Credentials(key, secret)
        elif not paper:
            creds = resolve(target, keys=True).credentials
        return connect(
            resolved.connector, credentials=creds, environment=resolved.environment, **options
        )

    return factory


def _resolve_all(cfg: StrategyConfig) -> dict[str, tuple[str, str]]:
    """Every connector's credentials, resolved here (the password asked here), for a child."""
    out: dict[str, tuple[str, str]] = {}
    for name, conf in cfg.connectors.items():
        if conf.connector in PAPER_IDS:
            continue
        key = expand_env(conf.api_key, f"connectors.{name}.api_key")
        secret = expand_env(conf.api_secret, f"connectors.{name}.api_secret")
        if key and secret:
            out[name] = (key, secret)
            continue
        creds = resolve(
            Target(connector=conf.connector, sandbox_url=conf.environment), keys=True
        ).credentials
        if creds is not None:
            out[name] = (creds.api_key, creds.api_secret)
    return out


def start_command(
    config: Annotated[
        Path, typer.Option("--config", "-f", help="The strategy's YAML configuration.")
    ],
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            help="A built-in (pure_market_making, perpetual_market_making, "
            "funding_rate_arbitrage) or a path to a script (.py); else the config's.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Instance name for status/stop (else the config's).", show_default=False
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; print its pid.")
    ] = False,
    credentials_stdin: Annotated[bool, typer.Option("--credentials-stdin", hidden=True)] = False,
) -> None:
    """Run a strategy until `bybitkit stop`, Ctrl-C, the kill switch or a fatal error."""
    with reported():
        cfg = load_config(config)
        if strategy:
            cfg.strategy = strategy
        if name:
            cfg.name = name
        if not cfg.strategy:
            raise usage(
                "--strategy", "a built-in name or a script path (or strategy: in the config)"
            )
        load_strategy(cfg.strategy)  # a bad name or script fails here, before anything starts
        if cfg.strategy.endswith(".py"):
            cfg.strategy = str(Path(cfg.strategy).resolve())
        home = bybitkit_home()
        state = run_dir(home) / f"{cfg.instance_name}.json"
        if state.exists() and _running(state) is not None:
            raise CliError(f"{cfg.instance_name} is already running: `bybitkit status "
                           f"{cfg.instance_name}`")  # fmt: skip
        if detach:
            _detach(cfg, config, home)
            return
        creds_in: dict[str, tuple[str, str]] = {}
        if credentials_stdin:
            raw = json.loads(sys.stdin.readline() or "{}")
            creds_in = {k: (str(v[0]), str(v[1])) for k, v in raw.items()}
            for _, sec in creds_in.values():
                register_secret(sec)
        code = asyncio.run(_run_foreground(cfg, creds_in))
    raise typer.Exit(code)


async def _run_foreground(cfg: StrategyConfig, creds_in: dict[str, tuple[str, str]]) -> int:
    runner = StrategyRunner(cfg, connector_factory=_cli_factory(creds_in))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.request_stop, f"signal {sig.name}")
    err = Console(stderr=True)
    err.print(
        f"started [bold]{cfg.instance_name}[/] ({cfg.strategy}), pid {os.getpid()}; "
        f"stop it with Ctrl-C or `bybitkit stop {cfg.instance_name}`",
        highlight=False,
    )
    try:
        code = await runner.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    s = runner.stats
    fees = ", ".join(f"{v} {k}" for k, v in s.fees.items()) or "0"
    pnl = runner.watch.pnl
    typer.echo(
        f"{cfg.instance_name}: {runner.stop_reason}; {s.orders} orders, {s.fills} fills, "
        f"volume {s.volume:.2f}, fees {fees}, pnl {'n/a' if pnl is None else f'{pnl:.2f}'}"
    )
    if code == EXIT_KILLED:
        err.print(f"[bold red]kill switch:[/] {runner.killed}", highlight=False)
    return code


def _detach(cfg: StrategyConfig, config: Path, home: Path) -> None:
    creds = _resolve_all(cfg)  # the password is asked here, in the terminal
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    out_path = logs / f"{cfg.instance_name}.out"
    cmd = [
        sys.executable, "-m", "bybitkit.cli.main", "start", "--config", str(config.resolve()),
        "--strategy", str(cfg.strategy), "--name", cfg.instance_name, "--credentials-stdin",
    ]  # fmt: skip
    with out_path.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(creds).encode() + b"\n")
    proc.stdin.close()
    state = run_dir(home) / f"{cfg.instance_name}.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = out_path.read_text(errors="replace").splitlines()[-15:]
            raise CliError(
                f"{cfg.instance_name} exited at start (code {proc.returncode}):\n" + "\n".join(tail)
            )
        if state.exists() and _running(state) is not None:
            typer.echo(
                f"started {cfg.instance_name} in the background, pid {proc.pid}; output in "
                f"{out_path}; `bybitkit status {cfg.instance_name}` / `bybitkit stop "
                f"{cfg.instance_name}`"
            )
            return
        time.sleep(0.1)
    proc.terminate()
    raise CliError(f"{cfg.instance_name} did not come up within 60 s; see {out_path}")


# -- status and stop ------------------------------------------------------------------------------


def _running(path: Path) -> dict[str, Any] | None:
    """The state file's content when its process is alive; a stale file is removed."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not pid_alive(int(info.get("pid", 0))):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return info


def _pick(name: str | None) -> dict[str, Any]:
    d = run_dir(bybitkit_home())
    if name is not None:
        info = _running(d / f"{name}.json")
        if info is None:
            raise CliError(f"no strategy named {name!r} is running")
        return info
    running = [i for p in sorted(d.glob("*.json")) if (i := _running(p)) is not None]
    if not running:
        raise CliError("no strategy is running (start one with `bybitkit start`)")
    if len(running) > 1:
        names = ", ".join(i["name"] for i in running)
        raise usage("NAME", f"one of the running strategies: {names}")
    return running[0]


def _ask(info: dict[str, Any], cmd: str, timeout: float = 10.0) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(info["host"], int(info["port"]))
            try:
                writer.write(json.dumps({"token": info["token"], "cmd": cmd}).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
        answer = json.loads(line) if line else {}
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise CliError(f"{info['name']}: {answer.get('error', 'no answer')}")
        return answer

    try:
        return asyncio.run(go())
    except (OSError, TimeoutError) as exc:
        raise CliError(f"{info['name']} (pid {info['pid']}) does not answer: {exc}") from None


def render_status(st: dict[str, Any]) -> Panel:
    """The rich panel of one strategy's status snapshot."""
    head = Table.grid(padding=(0, 2))
    killed = st.get("killed")
    state = f"[red]killed: {killed}[/]" if killed else st["state"]
    head.add_row(f"[bold]{st['name']}[/] ({st['strategy']})", f"pid {st['pid']}", state,
                 f"up {st['uptime_s']:.0f} s")  # fmt: skip
    head.add_row(
        f"equity {st['equity']}", f"start {st['start_equity']}", f"peak {st['peak_equity']}",
        f"pnl [bold]{st['pnl']}[/]",
    )  # fmt: skip
    fees = ", ".join(f"{v} {k}" for k, v in st["fees"].items()) or "0"
    head.add_row(f"orders {st['orders']}", f"fills {st['fills']}", f"volume {st['volume']}",
                 f"fees {fees}")  # fmt: skip
    if st["refused"]:
        head.add_row("refused: " + ", ".join(f"{k} {v}" for k, v in st["refused"].items()))
    parts: list[Any] = [head]
    for name, c in st["connectors"].items():
        books = Table(title=f"{name} ({c['connector']})", title_justify="left", expand=False)
        for col in ("pair", "bid", "ask", "age s", "book"):
            books.add_column(col)
        for pair, b in c["books"].items():
            ok = b["valid"] and not b["stale"]
            books.add_row(pair, b["bid"] or "-", b["ask"] or "-", str(b["age_s"]),
                          "[green]live[/]" if ok else "[red]stale[/]" if b["stale"]
                          else "[red]invalid[/]")  # fmt: skip
        parts.append(books)
        if c["balances"]:
            bal = Table("coin", "total", "available", expand=False)
            for coin, v in c["balances"].items():
                bal.add_row(coin, v["total"], v["available"])
            parts.append(bal)
        if c["open_orders"]:
            orders = Table("pair", "side", "price", "amount", "filled", "state", expand=False)
            for o in c["open_orders"]:
                orders.add_row(o["pair"], o["side"], o["price"] or "market", o["amount"],
                               o["filled"], o["state"])  # fmt: skip
            parts.append(orders)
        if c["positions"]:
            pos = Table("pair", "side", "size", "entry", "uPnL", expand=False)
            for p in c["positions"]:
                pos.add_row(p["pair"], p["side"] or "-", p["size"], p["entry_price"],
                            p["unrealised_pnl"])  # fmt: skip
            parts.append(pos)
    return Panel(Group(*parts), title="bybitkit status", border_style="cyan")


def status_command(
    name: Annotated[str | None, typer.Argument(help="The strategy (when several run).")] = None,
    once: Annotated[bool, typer.Option("--once", help="One snapshot, no live refresh.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the snapshot as JSON.")] = False,
) -> None:
    """Show a running strategy: equity, PnL, balances, orders, positions, book freshness
    (live until Ctrl-C in a terminal)."""
    with reported():
        info = _pick(name)
        if as_json:
            typer.echo(json.dumps(_ask(info, "status")["status"], indent=2))
            return
        console = Console()
        if once or not console.is_terminal:
            console.print(render_status(_ask(info, "status")["status"]))
            return
        with Live(render_status(_ask(info, "status")["status"]), console=console,
                  refresh_per_second=2) as live:  # fmt: skip
            while _running(run_dir(bybitkit_home()) / f"{info['name']}.json") is not None:
                time.sleep(1.0)
                try:
                    live.update(render_status(_ask(info, "status")["status"]))
                except CliError:
                    break
        console.print(Text(f"{info['name']} is no longer running"))


def stop_command(
    name: Annotated[str | None, typer.Argument(help="The strategy (when several run).")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for it to finish.")
    ] = 60.0,
) -> None:
    """Stop a running strategy: it cancels its orders, awaits its tasks and exits."""
    with reported():
        info = _pick(name)
        _ask(info, "stop")
        pid = int(info["pid"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid) or _zombie(pid):
                typer.echo(f"stopped {info['name']} (pid {pid}); its orders are cancelled")
                return
            time.sleep(0.1)
        raise CliError(f"{info['name']} (pid {pid}) has not exited after {timeout:.0f} s")


def _zombie(pid: int) -> bool:
    """An exited child not yet reaped (the process that started it still holds it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
