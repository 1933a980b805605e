"""The reliability soak: prove under faults that nothing is lost, doubled or left behind.

Layout
------
* The **sandbox** runs in this process, on this loop, serving on 127.0.0.1: the harness injects
  faults through its Python controls and reads the exchange's truth directly (orders,
  executions, balances, positions of the bot's account).
* The **bot** is a separate process: ``python -m bybitkit.cli.main start --config soak.yml
  --strategy mm_strategy.py`` (the soak's own market maker: spot BTC-USDT and ETH-USDT over the
  trade WebSocket, perpetual BTC-USDT, ETH-USDT and BTC-USDC over REST). Its SQLite store is on
  disk, so a hard kill (SIGKILL) and a restart is real: its state comes back from the store and
  is reconciled with the exchange.
* A **chaos schedule** is drawn up front from ``random.Random(seed)``: a list of
  ``(chaos time, fault kind, arguments)``, logged (``schedule.json``). The run alternates chaos
  phases (faults injected on schedule, the market moving; each begins with a funding round on
  every perpetual) and resync points (no faults, the market frozen, the bot given time to
  reconcile, then every invariant compared exactly).

Fault kinds (:data:`FAULT_KINDS`): WebSocket drops (public, private with a refused reconnect,
trade, all), paused pushes, orderbook gaps, ``u = 1`` resets, ``10002`` / ``10006`` / HTTP 5xx
bursts (on one path or any), slow responses, a create answered after the client's timeout, a
create executed whose answer is dropped, the private stream dropped right after a fill, and a
hard kill and restart of the bot.

Invariants (each violation is one line in the report; the run fails on any):

* ``fill``: every execution the sandbox made for the account is in the bot's store exactly once
  (by ``execId``) with the same price, quantity, fee and fee coin; no fill in the store that the
  exchange never made; a funding execution is in the funding table with the same amount.
  Checked continuously (a mismatch at once; a missing fill once it is older than the lag
  allowance) and completely at every resync point and at the end.
* ``balance`` / ``position``: the bot's balances (every coin's wallet total, both connectors)
  and perpetual positions (side, size, entry price; in memory and in the store) equal the
  sandbox's, to the last digit, at every resync point.
* ``orphan``: every order the sandbox holds with the bot's client-id prefix is in the bot's
  store (checked continuously: the store row is written before the request leaves); at a
  resync point the open orders of the sandbox, of the bot's memory and of its store are the same
  set; after the final stop none is left open.
* ``duplicate``: no client order id names two exchange orders (a retried submit).
* ``book``: no order was placed while the bot's book for its pair was invalid or stale: every
  order's stamp says valid, and no order stamped valid was created inside a window when the
  harness knows the book could not be valid (a public drop or a gap until the sandbox sent the
  next snapshot of that book; paused pushes from ``stale_after`` after the pause began until it
  ended), with a margin of :data:`LAG_MARGIN_S` for delivery. At a resync point the bot's top of
  book equals the sandbox's.
* ``secret``: the API secret appears in no log line of the bot (log files, stdout, stderr) or of
  the harness.
* ``exit``: the bot comes back after every kill and exits 0 on the final stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sqlite3
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bybitkit.sandbox.app import Sandbox
from bybitkit.strategies.runner import link_prefix

log = logging.getLogger("soak")

HERE = Path(__file__).resolve().parent
STRATEGY = HERE / "mm_strategy.py"
BOT_NAME = "soak-mm"
STALE_AFTER_S = 2.0
LAG_MARGIN_S = 1.0  # delivery and processing lag allowed between the sandbox and the bot
FILL_LAG_S = 45.0  # a fill missing from the store longer than this (bot alive) is lost
CLIENT_TIMEOUT_S = 10.0  # the REST client's default timeout
CREATE = "/v5/order/create"
START_ATTEMPTS = 5  # a restart that keeps failing this often is a violation

SPOT_PAIRS = ("BTC-USDT", "ETH-USDT")
PERP_PAIRS = ("BTC-USDT", "ETH-USDT", "BTC-USDC")
MARKETS = (
    ("spot", "BTCUSDT"),
    ("spot", "ETHUSDT"),
    ("linear", "BTCUSDT"),
    ("linear", "ETHUSDT"),
    ("linear", "BTCPERP"),
)
BALANCES = {"USDT": "5000000", "USDC": "2000000", "BTC": "50", "ETH": "800"}

FAULT_KINDS: tuple[str, ...] = (
    "ws_public_drop",
    "ws_private_drop",
    "ws_trade_drop",
    "ws_drop_all",
    "pause_pushes",
    "book_gap",
    "book_reset",
    "rest_10002",
    "rest_10006",
    "rest_5xx",
    "slow_responses",
    "create_timeout",
    "create_drop",
    "private_drop_after_fill",
    "kill_restart",
)
WEIGHTS = {
    "ws_public_drop": 3,
    "ws_private_drop": 3,
    "ws_trade_drop": 2,
    "ws_drop_all": 1,
    "pause_pushes": 3,
    "book_gap": 4,
    "book_reset": 3,
    "rest_10002": 3,
    "rest_10006": 3,
    "rest_5xx": 3,
    "slow_responses": 2,
    "create_timeout": 1,
    "create_drop": 4,
    "private_drop_after_fill": 2,
    "kill_restart": 0,  # scheduled on its own cadence (see make_schedule)
}
REST_PATHS = (
    None,
    CREATE,
    CREATE,
    "/v5/order/cancel",
    "/v5/order/realtime",
    "/v5/order/history",
    "/v5/execution/list",
    "/v5/account/wallet-balance",
    "/v5/position/list",
)


# -- the schedule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    at: float  # chaos-clock seconds (time spent in chaos phases)
    kind: str
    args: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "kind": self.kind, "args": self.args}


def fault_args(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "ws_private_drop":
        return {"refuse_for": rng.choice((0.0, 0.0, round(rng.uniform(1.0, 4.0), 2)))}
    if kind == "pause_pushes":
        return {"seconds": round(rng.uniform(0.5, 6.0), 2)}
    if kind in ("book_gap", "book_reset"):
        category, symbol = rng.choice(MARKETS)
        return {"category": category, "symbol": symbol}
    if kind.startswith("rest_"):
        return {"count": rng.randint(1, 4), "path": rng.choice(REST_PATHS)}
    if kind == "slow_responses":
        return {"seconds": round(rng.uniform(0.2, 1.5), 2), "count": rng.randint(3, 12)}
    if kind == "create_timeout":
        return {"seconds": CLIENT_TIMEOUT_S + 1.0}
    if kind == "kill_restart":
        return {"down_s": round(rng.uniform(0.2, 3.0), 2)}
    return {}


def make_schedule(
    seed: int,
    horizon_s: float,
    *,
    mean_gap_s: float,
    kinds: tuple[str, ...] = FAULT_KINDS,
    kill_every_s: float | None = None,
    first_kill_s: float | None = None,
) -> list[Fault]:
    """The chaos schedule up to ``horizon_s`` of chaos time: a Poisson stream of faults (every
    kind once first, in a seeded order, then drawn by weight) plus hard kills on their own
    cadence. The same seed gives the same list."""
    rng = random.Random(seed)
    pool = [k for k in kinds if k != "kill_restart"]
    first = pool[:]
    rng.shuffle(first)
    weights = [WEIGHTS[k] for k in pool]
    faults: list[Fault] = []
    t = 0.0
    while True:
        t += rng.expovariate(1.0 / mean_gap_s)
        if t >= horizon_s:
            break
        kind = first.pop() if first else rng.choices(pool, weights)[0]
        faults.append(Fault(t, kind, fault_args(rng, kind)))
    if "kill_restart" in kinds and kill_every_s is not None:
        t = first_kill_s if first_kill_s is not None else kill_every_s
        while t < horizon_s:
            faults.append(Fault(t, "kill_restart", fault_args(rng, "kill_restart")))
            t += kill_every_s * rng.uniform(0.7, 1.3)
    faults.sort(key=lambda f: f.at)
    return faults


# -- options and results ----------------------------------------------------------------------


@dataclass
class SoakOptions:
    seed: int
    workdir: Path
    seconds: float = 600.0  # wall-clock budget (the run ends after the current cycle)
    fills: int | None = None  # stop once the sandbox made this many fills (and all kinds ran)
    speed: float = 3.0
    chaos_s: float = 30.0  # chaos time per cycle
    mean_gap_s: float = 2.5
    kinds: tuple[str, ...] = FAULT_KINDS
    kill_every_s: float | None = 75.0
    first_kill_s: float | None = None
    settle_timeout_s: float = 45.0
    check_every_s: float = 3.0
    echo: Callable[[str], None] | None = None  # progress lines (the CLI prints them)


@dataclass
class SoakResult:
    seed: int
    fills: int
    faults: int
    violations: list[str]
    kinds: Counter[str]
    resyncs: int
    restarts: int
    seconds: float
    workdir: Path

    @property
    def line(self) -> str:
        return f"soak: {self.fills} fills, {self.faults} faults, {len(self.violations)} violations"


# -- what the harness knows about the books ---------------------------------------------------


@dataclass
class Window:
    """A span when the bot's book of one market cannot be valid (wall-clock seconds)."""

    category: str
    symbol: str
    start: float
    end: float | None  # None: still open
    why: str


class BookWatch:
    """Sandbox-side records of what happens to the book streams: when a gap really went out,
    when a snapshot was (re)sent to a subscriber, pauses, drops. From them, the windows when a
    book could not be valid."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.subscribed: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.pending: list[Window] = []  # waiting for their next snapshot
        self.windows: list[Window] = []
        self.gaps_sent = 0
        self.resets_sent = 0
        orig = sb.streams._subscribe

        def subscribe(conn: Any, req_id: Any, topics: list[str]) -> None:
            orig(conn, req_id, topics)
            at = self._delivery_time()
            for topic in topics:
                if topic.startswith("orderbook."):
                    symbol = topic.rsplit(".", 1)[-1]
                    self.subscribed[(conn.kind, symbol)].append(at)
                    self._close(conn.kind, symbol, at)

        sb.streams._subscribe = subscribe  # type: ignore[method-assign]
        for category, symbol in MARKETS:
            stream = sb.streams.book_stream(sb.market(symbol, category), 200)
            self._wrap(stream, category, symbol)

    def _delivery_time(self) -> float:
        """When a push sent now reaches the wire (after the pause, if pushes are paused)."""
        now = time.time()
        paused = self.sb.faults.paused_until - time.monotonic()
        return now + paused if paused > 0 else now

    def _wrap(self, stream: Any, category: str, symbol: str) -> None:
        orig = stream.tick

        def tick(now: float) -> str | None:
            gap, reset = stream.gap_next, stream.reset_next
            text = orig(now)
            if text is not None and gap and not stream.gap_next:
                self.gaps_sent += 1
                self.open(category, symbol, time.time(), "gap")
            if text is not None and reset:
                self.resets_sent += 1
            return text

        stream.tick = tick

    def open(self, category: str, symbol: str, at: float, why: str) -> None:
        w = Window(category, symbol, at + LAG_MARGIN_S, None, why)
        self.pending.append(w)
        self.windows.append(w)

    def _close(self, category: str, symbol: str, at: float) -> None:
        keep = []
        for w in self.pending:
            if w.category == category and w.symbol == symbol and at >= w.start - LAG_MARGIN_S:
                w.end = at
            else:
                keep.append(w)
        self.pending = keep

    def dropped(self, kinds: tuple[str, ...]) -> None:
        now = time.time()
        for category, symbol in MARKETS:
            if category in kinds:
                self.open(category, symbol, now, "public drop")

    def paused(self, seconds: float) -> None:
        now = time.time()
        start = now + STALE_AFTER_S + LAG_MARGIN_S
        if start < now + seconds:
            for category, symbol in MARKETS:
                self.windows.append(Window(category, symbol, start, now + seconds, "paused"))

    def summary(self) -> dict[str, Any]:
        """How many windows of each kind had a length, and their total seconds."""
        out: dict[str, Any] = {}
        now = time.time()
        for w in self.windows:
            end = w.end if w.end is not None else now
            if end <= w.start:
                continue
            entry = out.setdefault(w.why, {"windows": 0, "seconds": 0.0})
            entry["windows"] += 1
            entry["seconds"] = round(entry["seconds"] + end - w.start, 3)
        return out

    def containing(self, category: str, symbol: str, t: float) -> Window | None:
        for w in self.windows:
            if w.category != category or w.symbol != symbol:
                continue
            if w.end is not None and w.end <= w.start:
                continue
            if w.start <= t and (w.end is None or t < w.end):
                return w
        return None


# -- the bot process --------------------------------------------------------------------------


class Bot:
    """``bybitkit start`` in a child process: start, hard kill, graceful stop, status."""

    def __init__(self, workdir: Path, sb: Sandbox, api_key: str, api_secret: str) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.store_path = workdir / "bot.sqlite"
        self.config = workdir / "soak.yml"
        self.state_file = self.home / "run" / f"{BOT_NAME}.json"
        self.api_key = api_key
        self.api_secret = api_secret
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.exit_codes: list[int] = []
        self._out: Any = None
        self.config.write_text(
            textwrap.dedent(f"""\
            name: {BOT_NAME}
            tick_interval: 0.1
            store: {self.store_path}
            connectors:
              spot:
                connector: sandbox
                environment: {sb.rest_url}
                api_key: $SOAK_API_KEY
                api_secret: $SOAK_API_SECRET
                pairs: [{", ".join(SPOT_PAIRS)}]
                order_entry: ws
              perp:
                connector: sandbox_perpetual
                environment: {sb.rest_url}
                api_key: $SOAK_API_KEY
                api_secret: $SOAK_API_SECRET
                pairs: [{", ".join(PERP_PAIRS)}]
            risk:
              stale_after: {STALE_AFTER_S}
              max_orders_per_second: 40
              cancel_on_exit: true
            params:
              notional_usd: 15
              min_interval_s: 0.2
              offset_bps: 0.2
              levels: 2
              test_the_rails: true
            """)
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBITKIT_", "SOAK_"))}
        env["BYBITKIT_HOME"] = str(self.home)
        env["BYBITKIT_LOG_LEVEL"] = "INFO"
        env["SOAK_API_KEY"] = self.api_key
        env["SOAK_API_SECRET"] = self.api_secret
        return env

    async def start(self, timeout: float = 60.0) -> None:
        assert not self.alive
        self.starts += 1
        out = self.workdir / f"bot-{self.starts}.out"
        self._out = out.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bybitkit.cli.main", "start",
            "--config", str(self.config), "--strategy", str(STRATEGY),
            stdin=asyncio.subprocess.DEVNULL, stdout=self._out, stderr=asyncio.subprocess.STDOUT,
            env=self._env(),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"bot exited at start with {self.proc.returncode}; see {out}")
            st = await self.status()
            if st is not None and st.get("state") == "running":
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"bot not up within {timeout:.0f} s; see {out}")

    async def _reap(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        self.exit_codes.append(code)
        if self._out is not None:
            self._out.close()
            self._out = None
        return code

    async def kill(self) -> None:
        """SIGKILL: no cancel, no cleanup; the store and the exchange keep what they had."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            await self._reap()

    async def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM: the runner cancels its orders and exits; its exit code."""
        if not self.alive:
            return None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await self._reap()
        except TimeoutError:
            await self.kill()
            return None

    async def status(self) -> dict[str, Any] | None:
        """The runner's status snapshot over its control socket (None when not reachable)."""
        if not self.alive:
            return None
        try:
            info = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        assert self.proc is not None
        if info.get("pid") != self.proc.pid:
            return None
        writer = None
        try:
            async with asyncio.timeout(5):
                reader, writer = await asyncio.open_connection(
                    info["host"], int(info["port"]), limit=1 << 24
                )
                writer.write(json.dumps({"token": info["token"], "cmd": "status"}).encode())
                writer.write(b"\n")
                await writer.drain()
                line = await reader.readline()
        except (OSError, TimeoutError, ValueError):
            return None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer.get("status") if isinstance(answer, dict) and answer.get("ok") else None

    def log_files(self) -> list[Path]:
        files = sorted(self.workdir.glob("bot-*.out"))
        logs = self.home / "logs"
        if logs.is_dir():
            files += sorted(p for p in logs.iterdir() if p.is_file())
        return files


# -- the invariants ---------------------------------------------------------------------------


def D(x: Any) -> Decimal:
    return Decimal(str(x))


def _newer(items: Any, seen: set[Any], key: Callable[[Any], Any]) -> list[Any]:
    """The items appended to a sandbox history (a bounded deque, newest last) since the last
    call, oldest first; ``seen`` is updated. Walks back from the newest to the first one seen,
    so a deque that dropped its oldest entries is no problem."""
    new = []
    for item in reversed(items):
        k = key(item)
        if k in seen:
            break
        new.append(item)
    new.reverse()
    seen.update(key(item) for item in new)
    return new


class Checker:
    """Compares the bot (its store, read-only, and its status) with the sandbox's truth."""

    FILL_TYPES = frozenset({"Trade", "AdlTrade", "BustTrade"})

    def __init__(
        self, sb: Sandbox, bot: Bot, watch: BookWatch, pair_of: dict[tuple[str, str], str]
    ):
        self.sb = sb
        self.bot = bot
        self.watch = watch
        self.pair_of = pair_of  # (category, symbol) -> pair
        self.symbol_of = {(c, p): s for (c, s), p in pair_of.items()}
        self.prefix = link_prefix(BOT_NAME) + "-"
        self.uid = sb.account_of(bot.api_key).uid
        self.violations: dict[str, str] = {}  # key -> text (each problem reported once)
        self._orders_seen: set[str] = set()  # sandbox orders already checked (order ids)
        self._link_ids: Counter[str] = Counter()
        self._execs_seen: set[str] = set()
        self._execs: dict[str, dict[str, Any]] = {}  # execId -> the sandbox's execution
        self._pending_execs: dict[str, dict[str, Any]] = {}  # not found in the store yet
        self._stored: dict[str, str] = {}  # execId -> connector, from the store
        self._fill_rowid = 0
        self._order_rowid = 0
        self.orders_checked = 0  # orders of the bot whose book stamp was checked
        self.bot_up_since = 0.0

    # -- plumbing --------------------------------------------------------------------------------

    def violate(self, key: str, text: str) -> None:
        if key not in self.violations:
            self.violations[key] = text
            log.error("VIOLATION %s", text)

    def _db(self) -> sqlite3.Connection | None:
        if not self.bot.store_path.exists():
            return None
        conn = sqlite3.connect(f"file:{self.bot.store_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = self._db()
        if conn is None:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def _history(self) -> Any:
        return self.sb.exchange.history.get(self.uid)

    def funding_made(self) -> int:
        hist = self._history()
        return 0 if hist is None else sum(1 for e in hist.executions if e["execType"] == "Funding")

    def fills_made(self) -> int:
        hist = self._history()
        if hist is None:
            return 0
        return sum(1 for e in hist.executions if e.get("execType") in self.FILL_TYPES)

    # -- continuous ------------------------------------------------------------------------------

    def continuous(self) -> None:
        """Cheap, incremental checks that hold at every instant."""
        self._check_orders_known()
        self._check_fills(complete=False)
        self._check_stamps()

    def _check_orders_known(self) -> None:
        """Every sandbox order with our prefix is in the store (written before it was sent),
        and no client id names two exchange orders."""
        hist = self._history()
        if hist is None:
            return
        # the sandbox first, the store after (a store row is written before its request leaves)
        new = _newer(hist.orders, self._orders_seen, lambda o: o.order_id)
        if not new:
            return
        links = sorted({o.link_id for o in new if (o.link_id or "").startswith(self.prefix)})
        known: dict[str, sqlite3.Row] = {}
        for i in range(0, len(links), 500):
            chunk = links[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._query(
                "SELECT client_order_id, exchange_order_id FROM orders "
                f"WHERE client_order_id IN ({marks})",
                tuple(chunk),
            ):
                known[r["client_order_id"]] = r
        for o in new:
            link = o.link_id or ""
            if not link.startswith(self.prefix):
                continue
            self._link_ids[link] += 1
            if self._link_ids[link] > 1:
                self.violate(
                    f"duplicate:{link}",
                    f"duplicate: client order id {link} names {self._link_ids[link]} exchange "
                    "orders (a retried submit)",
                )
            row = known.get(link)
            if row is None:
                self.violate(
                    f"orphan-unknown:{link}",
                    f"orphan: exchange order {o.order_id} ({link}, {o.status}) is not in the "
                    "bot's store",
                )
            elif row["exchange_order_id"] not in (None, o.order_id):
                self.violate(
                    f"duplicate-id:{link}",
                    f"duplicate: {link} is exchange order {o.order_id} on the sandbox but "
                    f"{row['exchange_order_id']} in the store",
                )

    def _check_fills(self, *, complete: bool) -> None:
        """Stored fills against the sandbox's executions. ``complete``: every execution must be
        in the store now (a resync point, the end); else only those older than the lag."""
        hist = self._history()
        if hist is None:
            return
        for e in _newer(hist.executions, self._execs_seen, lambda e: e["execId"]):
            self._execs[e["execId"]] = e
            if e.get("execType") in self.FILL_TYPES or e.get("execType") == "Funding":
                self._pending_execs[e["execId"]] = e
        for r in self._query(
            "SELECT rowid, connector, exec_id, price, qty, fee, fee_currency "
            "FROM fills WHERE rowid > ? ORDER BY rowid",
            (self._fill_rowid,),
        ):
            self._fill_rowid = max(self._fill_rowid, r["rowid"])
            exec_id = r["exec_id"]
            if exec_id in self._stored:
                self.violate(
                    f"fill-twice:{exec_id}",
                    f"fill: execId {exec_id} is stored twice ({self._stored[exec_id]} and "
                    f"{r['connector']})",
                )
                continue
            self._stored[exec_id] = r["connector"]
            truth = self._execs.get(exec_id)
            if truth is None:
                self.violate(
                    f"fill-phantom:{exec_id}",
                    f"fill: execId {exec_id} is in the bot's store but the sandbox never made it",
                )
                continue
            self._compare_fill(truth, r)
        funding: dict[str, sqlite3.Row] | None = None
        now_ms = time.time() * 1000
        bot_up_s = time.monotonic() - self.bot_up_since if self.bot.alive else 0.0
        for exec_id, e in list(self._pending_execs.items()):
            if e.get("execType") == "Funding":
                if funding is None:
                    funding = {
                        r["exec_id"]: r for r in self._query("SELECT exec_id, amount FROM funding")
                    }
                row = funding.get(exec_id)
                if row is not None:
                    if D(row["amount"]) != D(e["execFee"]):
                        self.violate(
                            f"funding-mismatch:{exec_id}",
                            f"fill: funding {exec_id} amount {row['amount']} in the store, "
                            f"{e['execFee']} on the sandbox",
                        )
                    del self._pending_execs[exec_id]
                    continue
            age_s = (now_ms - int(e["execTime"])) / 1000
            if complete or (age_s > FILL_LAG_S and bot_up_s > FILL_LAG_S):
                self.violate(
                    f"fill-lost:{exec_id}",
                    f"fill: {e['execType']} execution {exec_id} ({e['category']} {e['symbol']} "
                    f"{e['side']} {e['execQty']} @ {e['execPrice']}, order "
                    f"{e.get('orderLinkId')}) is not in the bot's store ({age_s:.0f} s after it "
                    "happened)",
                )
                del self._pending_execs[exec_id]

    def missing_fills(self) -> int:
        """Executions not (yet) in the store (after reading what the store has now)."""
        self._check_fills(complete=False)
        return len(self._pending_execs)

    def _compare_fill(self, truth: dict[str, Any], row: sqlite3.Row) -> None:
        exec_id = truth["execId"]
        diffs = []
        for name, wire in (("price", "execPrice"), ("qty", "execQty"), ("fee", "execFee")):
            if D(row[name]) != D(truth[wire]):
                diffs.append(f"{name} {row[name]} != {truth[wire]}")
        if truth.get("feeCurrency") and row["fee_currency"] != truth["feeCurrency"]:
            diffs.append(f"fee coin {row['fee_currency']} != {truth['feeCurrency']}")
        want = "sandbox" if truth.get("category") == "spot" else "sandbox_perpetual"
        if row["connector"] != want:
            diffs.append(f"connector {row['connector']} != {want}")
        if diffs:
            self.violate(f"fill-mismatch:{exec_id}", f"fill: {exec_id}: {'; '.join(diffs)}")
        self._pending_execs.pop(exec_id, None)

    def _check_stamps(self) -> None:
        rows = self._query(
            "SELECT rowid, client_order_id, category, pair, created_ms, book_valid, book_u, "
            "book_age, state FROM orders WHERE rowid > ? ORDER BY rowid",
            (self._order_rowid,),
        )
        for r in rows:
            self._order_rowid = max(self._order_rowid, r["rowid"])
            cid = r["client_order_id"]
            if not cid.startswith(self.prefix):
                continue
            self.orders_checked += 1
            where = f"{r['category']} {r['pair']} order {cid}"
            if r["book_valid"] != 1:
                self.violate(
                    f"book-stamp:{cid}",
                    f"book: {where} was placed with its book stamped "
                    f"valid={r['book_valid']} u={r['book_u']} age={r['book_age']}",
                )
                continue
            symbol = self.symbol_of.get((r["category"], r["pair"]))
            if symbol is None:
                continue
            w = self.watch.containing(r["category"], symbol, r["created_ms"] / 1000)
            if w is not None:
                end = "still open" if w.end is None else f"until {w.end:.3f}"
                self.violate(
                    f"book-window:{cid}",
                    f"book: {where} stamped valid (u={r['book_u']}, age={r['book_age']}) was "
                    f"created at {r['created_ms'] / 1000:.3f}, inside a {w.why} window "
                    f"from {w.start:.3f} {end}",
                )

    # -- at a resync point (the market frozen, no faults) ----------------------------------------

    def quiescent_issues(self, status: dict[str, Any] | None) -> dict[str, str]:
        """Everything that must be equal once the bot had time to reconcile; empty when it is."""
        issues: dict[str, str] = {}
        if status is None:
            return {"status": "status: the bot does not answer"}
        sb, key = self.sb, self.bot.api_key
        conns = status["connectors"]
        missing = self.missing_fills()
        if missing:
            issues["fills"] = f"fill: {missing} executions of the sandbox are not in the store"
        # balances: every coin's wallet total, as each connector sees it
        truth = {c: v["wallet"] for c, v in sb.balances(key).items()}
        for name, c in conns.items():
            bot = {coin: D(v["total"]) for coin, v in c["balances"].items()}
            for coin in sorted(set(bot) | {k for k, v in truth.items() if v}):
                want = truth.get(coin, Decimal(0))
                got = bot.get(coin, Decimal(0))
                if got != want:
                    issues[f"balance:{name}:{coin}"] = (
                        f"balance: {name} {coin} is {got} in the bot, {want} on the sandbox"
                    )
        # positions: in memory and in the store
        want_pos = {
            (self.pair_of[("linear", p["symbol"])], p["side"], D(p["size"]), D(p["avgPrice"]))
            for p in sb.positions(key)
            if D(p["size"])
        }
        got_pos = {
            (p["pair"], p["side"], D(p["size"]), D(p["entry_price"]))
            for p in conns["perp"]["positions"]
        }
        if got_pos != want_pos:
            issues["position:memory"] = (
                f"position: the bot holds {sorted(got_pos)}, the sandbox {sorted(want_pos)}"
            )
        stored = {
            (r["pair"], {"BUY": "Buy", "SELL": "Sell"}.get(r["side"], r["side"]), D(r["size"]),
             D(r["entry_price"]))
            for r in self._query(
                "SELECT pair, side, size, entry_price FROM positions "
                "WHERE connector = 'sandbox_perpetual'"
            )
            if D(r["size"])
        }  # fmt: skip
        if stored != want_pos:
            issues["position:store"] = (
                f"position: the store holds {sorted(stored)}, the sandbox {sorted(want_pos)}"
            )
        # open orders: the sandbox's, the bot's memory and its store are the same set
        on_exchange = {
            o["orderLinkId"]
            for o in sb.orders(key, open_only=True)
            if str(o.get("orderLinkId", "")).startswith(self.prefix)
        }
        in_memory = {o["client_order_id"] for c in conns.values() for o in c["open_orders"]}
        in_store = {
            r["client_order_id"]
            for r in self._query("SELECT client_order_id FROM orders WHERE is_open = 1")
            if r["client_order_id"].startswith(self.prefix)
        }
        for cid in sorted(on_exchange - in_memory):
            issues[f"orphan:{cid}"] = f"orphan: {cid} is open on the sandbox, not in the bot"
        for cid in sorted(in_memory - on_exchange):
            issues[f"ghost:{cid}"] = f"orphan: the bot thinks {cid} is open; the sandbox does not"
        if in_store != in_memory:
            issues["store-open"] = (
                f"orphan: open orders differ between the store ({sorted(in_store - in_memory)} "
                f"extra) and the bot's memory ({sorted(in_memory - in_store)} extra)"
            )
        # books: valid, and the same top of book as the sandbox's
        for name, c in conns.items():
            category = "spot" if name == "spot" else "linear"
            for pair, b in c["books"].items():
                symbol = self.symbol_of[(category, pair)]
                top = sb.book(symbol, category, 1)
                want_bid = top["bids"][0][0] if top["bids"] else None
                want_ask = top["asks"][0][0] if top["asks"] else None
                got_bid = D(b["bid"]) if b["bid"] is not None else None
                got_ask = D(b["ask"]) if b["ask"] is not None else None
                if not b["valid"] or got_bid != want_bid or got_ask != want_ask:
                    issues[f"book:{name}:{pair}"] = (
                        f"book: {name} {pair} valid={b['valid']} {got_bid}/{got_ask} in the bot, "
                        f"{want_bid}/{want_ask} on the sandbox"
                    )
        return issues

    def final(self) -> None:
        """After the bot's final stop: the complete fill comparison, nothing left open."""
        self._check_orders_known()
        self._check_fills(complete=True)
        self._check_stamps()
        left = [
            o["orderLinkId"]
            for o in self.sb.orders(self.bot.api_key, open_only=True)
            if str(o.get("orderLinkId", "")).startswith(self.prefix)
        ]
        for cid in left:
            self.violate(f"left:{cid}", f"orphan: {cid} is still open after the bot stopped")

    def secrets(self, extra: list[Path]) -> None:
        secret = self.bot.api_secret
        for path in [*self.bot.log_files(), *extra]:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if secret in line:
                    self.violate(f"secret:{path.name}:{n}", f"secret: {path.name} line {n}")


# -- the run ----------------------------------------------------------------------------------


class SoakAborted(Exception):
    """The bot could not be brought back: the run ends (its violations are reported)."""


class Soak:
    def __init__(self, opts: SoakOptions) -> None:
        self.opts = opts
        self.rng = random.Random(opts.seed ^ 0x5EED)
        self.injected: Counter[str] = Counter()
        self.resyncs = 0
        self.restarts = 0
        self.last_refused: dict[str, int] = {}
        self.start_failures = 0
        self._kill_task: asyncio.Task[None] | None = None

    def echo(self, text: str) -> None:
        log.info("%s", text)
        if self.opts.echo is not None:
            self.opts.echo(text)

    async def run(self) -> SoakResult:
        opts = self.opts
        opts.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        horizon = max(opts.seconds * 3, 3600.0) if opts.fills else opts.seconds
        schedule = make_schedule(
            opts.seed,
            horizon,
            mean_gap_s=opts.mean_gap_s,
            kinds=opts.kinds,
            kill_every_s=opts.kill_every_s,
            first_kill_s=opts.first_kill_s,
        )
        (opts.workdir / "schedule.json").write_text(
            json.dumps([f.as_json() for f in schedule], indent=1)
        )
        async with Sandbox(seed=opts.seed, speed=opts.speed) as sb:
            self.sb = sb
            creds = sb.create_account(BALANCES)
            for category in ("spot", "linear"):
                sb.set_fee_rates(creds.api_key, category, "0.0001", "0.0006")
            pair_of = await _pairs(sb)
            self.watch = BookWatch(sb)
            self.bot = Bot(opts.workdir, sb, creds.api_key, creds.api_secret)
            self.checker = Checker(sb, self.bot, self.watch, pair_of)
            try:
                await self._start_bot()
                await self._cycles(schedule, t0)
                await self._resync("final")
                code = await self.bot.stop()
                if code != 0:
                    self.checker.violate("exit", f"exit: the bot's final stop exited {code}")
                self.checker.final()
            except SoakAborted as exc:
                log.error("soak aborted: %s", exc)
            finally:
                if self._kill_task is not None:
                    self._kill_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, SoakAborted):
                        await self._kill_task
                await self.bot.kill()
            fills = self.checker.fills_made()
        for h in logging.getLogger().handlers:
            h.flush()
        self.checker.secrets(sorted(opts.workdir.glob("*.log")))
        result = SoakResult(
            seed=opts.seed,
            fills=fills,
            faults=sum(self.injected.values()),
            violations=list(self.checker.violations.values()),
            kinds=self.injected,
            resyncs=self.resyncs,
            restarts=self.restarts,
            seconds=time.monotonic() - t0,
            workdir=opts.workdir,
        )
        (opts.workdir / "report.json").write_text(
            json.dumps(
                {
                    "seed": result.seed,
                    "fills": result.fills,
                    "faults": result.faults,
                    "kinds": dict(result.kinds),
                    "resyncs": result.resyncs,
                    "restarts": result.restarts,
                    "seconds": round(result.seconds, 1),
                    "gaps_sent": self.watch.gaps_sent,
                    "resets_sent": self.watch.resets_sent,
                    "invalid_windows": self.watch.summary(),
                    "orders_checked": self.checker.orders_checked,
                    "fills_checked": len(self.checker._stored),
                    "bot_refused_by_rail_last_run": self.last_refused,
                    "bot_start_failures": self.start_failures,
                    "funding_payments": self.checker.funding_made(),
                    "violations": result.violations,
                },
                indent=1,
            )
        )
        return result

    async def _start_bot(self) -> None:
        """Start (or restart) the bot as a supervisor would: a start that fails (the chaos goes
        on during a restart: a 10002 burst on its first wallet read ends it with exit 1) is
        retried; a bot that cannot be brought back at all is a violation and ends the run."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self.bot.start()
            except RuntimeError as exc:
                self.start_failures += 1
                log.warning("bot start %d failed: %s", attempt, exc)
                await self.bot.kill()
                await asyncio.sleep(1.0)
                continue
            self.checker.bot_up_since = time.monotonic()
            return
        self.checker.violate("start", f"exit: the bot did not come up in {START_ATTEMPTS} tries")
        raise SoakAborted("the bot does not start")

    def _done(self, t0: float) -> bool:
        opts = self.opts
        elapsed = time.monotonic() - t0
        if opts.fills is not None:
            all_kinds = all(self.injected[k] for k in opts.kinds)
            if self.checker.fills_made() >= opts.fills and all_kinds:
                return True
        return elapsed >= opts.seconds

    async def _cycles(self, schedule: list[Fault], t0: float) -> None:
        opts = self.opts
        chaos_clock = 0.0
        i = 0
        cycle = 0
        while True:
            cycle += 1
            phase_end = chaos_clock + opts.chaos_s
            started = time.monotonic()
            # a funding round on every perpetual: its payments are checked like the fills
            for category, symbol in MARKETS:
                if category == "linear":
                    self.sb.settle_funding(symbol)
            next_check = started + opts.check_every_s
            while True:
                now_chaos = chaos_clock + (time.monotonic() - started)
                if now_chaos >= phase_end:
                    break
                while i < len(schedule) and schedule[i].at <= now_chaos:
                    await self._inject(schedule[i])
                    i += 1
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + opts.check_every_s
                    self.checker.continuous()
                await asyncio.sleep(0.05)
            chaos_clock = phase_end
            if self._done(t0):
                return
            await self._resync(f"cycle {cycle}")
            self.echo(
                f"soak: cycle {cycle} t={time.monotonic() - t0:.0f}s "
                f"fills={self.checker.fills_made()} faults={sum(self.injected.values())} "
                f"violations={len(self.checker.violations)}"
            )

    # -- faults ----------------------------------------------------------------------------------

    def _close_ws(self, kinds: tuple[str, ...]) -> int:
        n = 0
        for conn in list(self.sb.streams.conns):
            if conn.kind in kinds:
                conn.close_after_queue()
                n += 1
        return n

    async def _inject(self, fault: Fault) -> None:
        sb, a, kind = self.sb, fault.args, fault.kind
        log.info("fault at=%.2f kind=%s args=%s", fault.at, kind, a)
        if kind == "kill_restart":
            if self._kill_task is not None and not self._kill_task.done():
                return
            self._kill_task = asyncio.create_task(self._kill_restart(a["down_s"]), name="soak-kill")
        elif kind == "ws_public_drop":
            self._close_ws(("spot", "linear"))
            self.watch.dropped(("spot", "linear"))
        elif kind == "ws_private_drop":
            drop = getattr(sb, "drop_private_ws", None)
            if drop is not None:
                drop(self.bot.api_key, refuse_for=a["refuse_for"])
            else:
                self._close_ws(("private",))
        elif kind == "ws_trade_drop":
            self._close_ws(("trade",))
        elif kind == "ws_drop_all":
            sb.drop_ws()
            self.watch.dropped(("spot", "linear"))
        elif kind == "pause_pushes":
            sb.pause_pushes(a["seconds"])
            self.watch.paused(a["seconds"])
        elif kind == "book_gap":
            sb.book_gap(a["symbol"], a["category"])
        elif kind == "book_reset":
            sb.book_reset(a["symbol"], a["category"])
        elif kind.startswith("rest_"):
            sb.rest_errors(kind.removeprefix("rest_"), a["count"], a["path"])
        elif kind == "slow_responses":
            sb.delay_responses(a["seconds"], a["count"])
        elif kind == "create_timeout":
            sb.delay_responses(a["seconds"], 1, CREATE)
        elif kind == "create_drop":
            sb.drop_next_create(1)
        elif kind == "private_drop_after_fill":
            sb.drop_private_after_fill()
        else:  # pragma: no cover - the schedule only holds known kinds
            raise ValueError(kind)
        self.injected[kind] += 1

    async def _kill_restart(self, down_s: float) -> None:
        await self.bot.kill()
        self.restarts += 1
        await asyncio.sleep(down_s)
        await self._start_bot()

    def _disarm(self) -> None:
        f = self.sb.faults
        f.rest_errors.clear()
        f.delay_s, f.delay_count, f.delay_path = 0.0, 0, None
        f.drop_next_create = 0
        f.drop_private_after_fill = 0

    async def _resync(self, label: str) -> None:
        """No faults, the market frozen, the bot reconciled: every quiescent invariant."""
        self.resyncs += 1
        self._disarm()
        if self._kill_task is not None:
            await self._kill_task
            self._kill_task = None
        paused = self.sb.faults.paused_until - time.monotonic()
        if paused > 0:
            await asyncio.sleep(paused)
        self.sb.freeze()
        try:
            if not self.bot.alive:
                await self._start_bot()
            deadline = time.monotonic() + self.opts.settle_timeout_s
            await asyncio.sleep(1.0)
            issues: dict[str, str] = {}
            while time.monotonic() < deadline:
                self.checker.continuous()
                status = await self.bot.status()
                if status is not None:
                    self.last_refused = dict(status.get("refused", {}))
                issues = self.checker.quiescent_issues(status)
                if not issues:
                    break
                await asyncio.sleep(1.0)
            for key, text in issues.items():
                self.checker.violate(f"{label}:{key}", f"{text} (at the {label} resync point)")
            self.checker._check_fills(complete=True)
        finally:
            self.sb.resume()


async def _pairs(sb: Sandbox) -> dict[tuple[str, str], str]:
    """(category, symbol) -> the pair name the connectors use, from the instruments info."""
    from bybitkit.trading.rules import TradingRules
    from bybitkit.v5.rest import RestClient

    out: dict[tuple[str, str], str] = {}
    async with RestClient(sb.environment) as rest:
        for category, make in (("spot", TradingRules.from_spot),
                               ("linear", TradingRules.from_linear)):  # fmt: skip
            for item in (await rest.instruments_info(category)).list:
                rules = make(item)
                out[(category, rules.symbol)] = rules.pair
    return out


# -- the command line (make soak) -------------------------------------------------------------


def main() -> int:
    """``make soak``: ``SOAK_FILLS`` (default 10000: stop once the sandbox made that many fills
    and every fault kind ran; empty: no fill target), ``SOAK_SECONDS`` (the wall-clock budget,
    default 3600), ``SOAK_SEED`` (default: random; printed on the first line so that a run can be
    replayed), ``SOAK_DIR`` (where the bot's files, its logs and ``report.json`` go). The last
    line is ``soak: <fills> fills, <faults> faults, <violations> violations``; the exit code is 1
    when there was any violation, 2 when there was none but the budget ended before the fill
    target and every fault kind (``SOAK_FILLS=`` empty: a time-boxed run, never 2)."""
    seed_env = os.environ.get("SOAK_SEED", "").strip()
    seed = int(seed_env) if seed_env else random.SystemRandom().randrange(1, 2**31)
    print(f"soak: seed={seed} (replay with SOAK_SEED={seed} make soak)", flush=True)
    seconds = float(os.environ.get("SOAK_SECONDS") or "3600")
    fills_env = os.environ.get("SOAK_FILLS", "10000").strip()
    fills = int(fills_env) if fills_env else None
    workdir = Path(
        os.environ.get("SOAK_DIR")
        or Path(tempfile.gettempdir()) / f"bybitkit-soak-{seed}-{int(time.time())}"
    ).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(workdir / "harness.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    opts = SoakOptions(
        seed=seed,
        workdir=workdir,
        seconds=seconds,
        fills=fills,
        echo=lambda line: print(line, flush=True),
    )
    print(f"soak: workdir {workdir}; budget {seconds:.0f} s" + (
        f", until {fills} fills" if fills else ""), flush=True)  # fmt: skip
    result = asyncio.run(Soak(opts).run())
    for v in result.violations[:50]:
        print(f"soak: VIOLATION {v}", flush=True)
    missing = [k for k in FAULT_KINDS if not result.kinds.get(k)]
    incomplete = fills is not None and (result.fills < fills or bool(missing))
    if incomplete:
        print(
            f"soak: INCOMPLETE: the {seconds:.0f} s budget ended before {fills} fills"
            + (f" and these fault kinds: {', '.join(missing)}" if missing else ""),
            flush=True,
        )
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.kinds.items()))
    print(
        f"soak: {result.seconds:.0f} s, {result.resyncs} resync points, {result.restarts} hard "
        f"kills; faults by kind: {kinds}; report {workdir / 'report.json'}",
        flush=True,
    )
    print(result.line, flush=True)
    # 1: a violation (a bug); 2: no violation, but the run fell short of what it was to prove.
    return 1 if result.violations else 2 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
