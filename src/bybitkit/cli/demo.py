"""``bybitkit demo``: two market makers on the embedded sandbox, with no keys and no network.

What it does, in one process:

1. starts the sandbox exchange on 127.0.0.1 (a free port) with its simulated market running
   (seeded by ``--seed``; the random walk and the taker flow at :data:`SPEED` times their normal
   rates, so that a few seconds are enough to see fills) and opens one unified account holding
   :data:`START_BALANCES`, at Bybit's base-tier fee rates (spot maker 0.1 %, perpetual maker
   0.02 %);
2. runs two :class:`~bybitkit.strategies.runner.StrategyRunner` side by side, each with its own
   real connector over loopback sockets (REST and WebSocket) on that one account:
   ``pure_market_making`` on spot BTC-USDT (connector ``sandbox``) and
   ``perpetual_market_making`` on the BTC-USDT perpetual (connector ``sandbox_perpetual``);
   both record into one SQLite store, ``<out>/history.sqlite``;
3. shows a live panel (book, our quotes, fills, inventory, position, PnL) when stdout is a
   terminal, else a plain progress line about every 5 s;
4. after ``--duration`` seconds (counted from when both strategies are up), or on Ctrl-C /
   SIGTERM, stops both runners (they cancel their orders), writes ``<out>/demo.png`` (the
   sampled mids with our fills) and prints a summary whose last line is exactly::

       demo: <orders> orders, <fills> fills, <volume> volume, fees <x>, pnl <y>

Figures, all in USDT, exact ``Decimal`` (shown rounded to 2 decimals):

* ``orders``: orders the exchange accepted (both strategies); ``fills``: executions of ours;
* ``volume``: the quote value traded, ``sum(price × qty)`` over our fills;
* ``fees``: what the fills paid (a fee charged in BTC, as spot buys pay it, is valued at its
  fill's price; a rebate counts negative);
* ``pnl``: the change of the account's equity marked to market, ``equity(end) −
  equity(start)``, where ``equity = Σ wallet balance × price + Σ unrealised PnL of the
  perpetual positions at their mark price`` (USDT at 1, BTC at the spot mid). The wallet
  already carries the fees paid and the realised PnL, so ``pnl`` includes the fees. The summary
  splits it into ``inventory`` (the starting balances re-priced: ``Σ start balance ×
  (price(end) − price(start))``, what holding them would have made) and ``trading`` (the rest).
  The balances are read from the sandbox's own ledger, the exchange's statement of the account.

The exit status is 0 after a normal or an interrupted run, 1 when a strategy failed (the summary
and the chart are still written). Logs go to ``BYBITKIT_HOME/logs/bybitkit.log``; warnings also
to stderr (not while the live panel is drawn: it counts them instead); stdout carries only the
panel or the progress lines and the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bybitkit.cli.common import CliError, reported, setup_logging, teardown_logging
from bybitkit.money import fmt

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from bybitkit.sandbox.app import Sandbox
    from bybitkit.store.records import FillRecord
    from bybitkit.strategies.config import StrategyConfig
    from bybitkit.strategies.runner import StrategyRunner
    from bybitkit.v5.auth import Credentials

__all__ = [
    "SPEED",
    "START_BALANCES",
    "DemoResult",
    "demo_command",
    "demo_line",
    "run_demo",
    "write_chart",
]

log = logging.getLogger("bybitkit.cli.demo")

PAIR = "BTC-USDT"
#: The simulated market's random walk and taker flow run this many times faster than at 1.
SPEED = 3.0
#: The demo account's wallet (a unified account: the perpetual's margin is in USDT too).
START_BALANCES: dict[str, Decimal] = {"USDT": Decimal(20000), "BTC": Decimal("0.2")}
STABLE = frozenset({"USDT", "USDC", "USD"})
CENT = Decimal("0.01")
SAMPLE_S = 0.1  # the price sampling period (the chart's line)
VIEW_EVERY = 3  # the panel / progress refresh: every that many samples
PROGRESS_S = 5.0  # a plain progress line this often
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0
BOOK_LEVELS = 5
RECENT_FILLS = 8

#: Quote at the touch (a spread of 0 prices the bid at the mid rounded down to the tick, the ask
#: rounded up: the sandbox's BTC book is 1 to 3 ticks wide, so we join or improve the touch),
#: requote when the mid moved 2 ticks or the quote is 3 s old, never more than 20 orders/s.
QUOTING: dict[str, Any] = {
    "order_amount": Decimal("0.002"),
    "bid_spread": Decimal(0),
    "ask_spread": Decimal(0),
    "refresh_time": Decimal(3),
    "refresh_tolerance": Decimal("0.000002"),
}
RISK: dict[str, Any] = {"stale_after": Decimal(10), "max_orders_per_second": Decimal(20)}
TICK_INTERVAL = Decimal("0.2")


@dataclass(frozen=True)
class Leg:
    """One of the demo's two strategies."""

    key: str  # the connector's name in the strategy config (and the strategy's default)
    strategy: str
    connector_id: str
    category: str  # the sandbox's category of the market
    label: str


LEGS = (
    Leg("spot", "pure_market_making", "sandbox", "spot", "spot BTC-USDT"),
    Leg("perp", "perpetual_market_making", "sandbox_perpetual", "linear", "BTC-USDT perpetual"),
)


# -- money -------------------------------------------------------------------------------------


def cents(value: Decimal) -> str:
    """``value`` rounded half-even to 2 decimals, as plain text (never ``-0.00``)."""
    q = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if q == 0:
        q = abs(q)
    return f"{q:f}"


def demo_line(orders: int, fills: int, volume: Decimal, fees: Decimal, pnl: Decimal) -> str:
    """The demo's last line (its exact format is a promise: scripts parse it)."""
    return (
        f"demo: {orders} orders, {fills} fills, {cents(volume)} volume, fees {cents(fees)}, "
        f"pnl {cents(pnl)}"
    )


def spot_mid(sb: Sandbox, symbol: str) -> Decimal | None:
    """The sandbox's own spot mid of ``symbol`` (None when a side is empty or unknown)."""
    try:
        book = sb.book(symbol, "spot", 1)
    except Exception:  # an unknown market: ConfigError
        return None
    if not book["bids"] or not book["asks"]:
        return None
    return (book["bids"][0][0] + book["asks"][0][0]) / 2


def coin_price(sb: Sandbox, coin: str) -> Decimal | None:
    """A coin in USDT: 1 for a stablecoin, else its spot mid against USDT."""
    if coin in STABLE:
        return Decimal(1)
    return spot_mid(sb, f"{coin}USDT")


@dataclass(frozen=True)
class Account:
    """The account marked to market at one instant (see the module docstring)."""

    wallet: dict[str, Decimal]
    prices: dict[str, Decimal]
    unrealised: Decimal
    positions: list[dict[str, Any]]

    @property
    def equity(self) -> Decimal:
        return (
            sum(
                (qty * self.prices[c] for c, qty in self.wallet.items() if c in self.prices),
                Decimal(0),
            )
            + self.unrealised
        )


def mark_account(sb: Sandbox, api_key: str) -> Account:
    wallet = {c: b["wallet"] for c, b in sb.balances(api_key).items() if b["wallet"]}
    prices: dict[str, Decimal] = {}
    for coin in wallet:
        px = coin_price(sb, coin)
        if px is not None:
            prices[coin] = px
        else:
            log.warning("demo equity: no price for %s (left out)", coin)
    positions = sb.positions(api_key)
    unrealised = sum((Decimal(p["unrealisedPnl"] or 0) for p in positions), Decimal(0))
    return Account(wallet, prices, unrealised, positions)


def fees_in_quote(
    fills: Iterable[FillRecord], price_of: Callable[[str], Decimal | None]
) -> Decimal:
    """The fees of ``fills`` in USDT: a quote-coin fee as it is, a base-coin fee at its fill's
    price, any other coin at ``price_of`` (now)."""
    total = Decimal(0)
    for f in fills:
        base, _, quote = f.pair.partition("-")
        if f.fee_currency == quote or f.fee_currency in STABLE:
            total += f.fee
        elif f.fee_currency == base:
            total += f.fee * f.price
        else:
            px = price_of(f.fee_currency)
            if px is None:
                log.warning("demo fees: no price for %s (left out)", f.fee_currency)
                continue
            total += f.fee * px
    return total


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegResult:
    """One strategy's figures: orders as its runner counted them, fills from the history."""

    leg: Leg
    orders: int
    fills: int
    volume: Decimal
    fees: Decimal  # USDT
    runner_fills: int  # the runner's own count (a cross-check)
    exchange_fills: int  # the exchange's executions of that category (a cross-check)
    exit_code: int
    stop_reason: str


@dataclass
class DemoResult:
    """What a demo run did (see the module docstring for the figures)."""

    seed: int
    rest_url: str
    legs: list[LegResult]
    start: Account
    end: Account
    stop_reason: str
    ran_s: float
    open_left: int  # our orders still open on the exchange after the stop
    tracked_open: int  # orders the history still has open after the stop
    samples: list[tuple[int, Decimal | None, Decimal | None]]  # (ms, spot mid, perp mid)
    fill_log: list[tuple[int, str, str, str, Decimal, Decimal]]
    history: Path
    chart: Path | None = None
    chart_error: str | None = None
    failed: list[str] = field(default_factory=list)

    @property
    def orders(self) -> int:
        return sum(r.orders for r in self.legs)

    @property
    def fills(self) -> int:
        return sum(r.fills for r in self.legs)

    @property
    def volume(self) -> Decimal:
        return sum((r.volume for r in self.legs), Decimal(0))

    @property
    def fees(self) -> Decimal:
        return sum((r.fees for r in self.legs), Decimal(0))

    @property
    def pnl(self) -> Decimal:
        return self.end.equity - self.start.equity

    @property
    def inventory_pnl(self) -> Decimal:
        """The starting balances re-priced (what holding them made)."""
        total = Decimal(0)
        for coin, qty in self.start.wallet.items():
            a, b = self.start.prices.get(coin), self.end.prices.get(coin)
            if a is not None and b is not None:
                total += qty * (b - a)
        return total

    @property
    def line(self) -> str:
        return demo_line(self.orders, self.fills, self.volume, self.fees, self.pnl)


@dataclass(frozen=True)
class LegView:
    leg: Leg
    state: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    ours: list[tuple[str, Decimal, Decimal]]  # (side, price, open qty)
    orders: int
    fills: int
    volume: Decimal


@dataclass(frozen=True)
class Snapshot:
    """What the panel and the progress lines show."""

    rest_url: str
    seed: int
    duration: float
    elapsed: float | None  # None while starting
    stopping: bool
    legs: list[LegView]
    account: Account
    pnl: Decimal
    fees: Decimal  # USDT, fees in BTC at the mid now (the summary values them exactly)
    recent: list[tuple[int, str, str, str, Decimal, Decimal]]
    warnings: int
    last_warning: str | None

    @property
    def orders(self) -> int:
        return sum(v.orders for v in self.legs)

    @property
    def fills(self) -> int:
        return sum(v.fills for v in self.legs)

    @property
    def volume(self) -> Decimal:
        return sum((v.volume for v in self.legs), Decimal(0))


def strategy_config(
    leg: Leg, rest_url: str, creds: Credentials, params: dict[str, Any]
) -> StrategyConfig:
    """The runner's config of one leg (what a user would write in YAML)."""
    from bybitkit.strategies.config import parse_config

    return parse_config(
        {
            "strategy": leg.strategy,
            "name": leg.strategy,
            "tick_interval": TICK_INTERVAL,
            "connectors": {
                leg.key: {
                    "connector": leg.connector_id,
                    "environment": rest_url,
                    "api_key": creds.api_key,
                    "api_secret": creds.api_secret,
                    "pairs": [PAIR],
                }
            },
            "risk": dict(RISK),
            "params": {"pair": PAIR, "connector": leg.key, **QUOTING, **params},
        },
        f"demo {leg.strategy}",
    )


def leg_params(leg: Leg, start: Account) -> dict[str, Any]:
    """The strategy-specific params: spot skews its sizes to keep the inventory near where it
    started (within ±0.02 BTC); the perpetual caps its position at 0.02 BTC, leverage 5."""
    if leg.key == "spot":
        base = start.wallet.get("BTC", Decimal(0)) * start.prices.get("BTC", Decimal(0))
        quote = start.wallet.get("USDT", Decimal(0))
        ratio = base / (base + quote) if base + quote > 0 else Decimal("0.5")
        return {
            "inventory_skew": True,
            "inventory_target_base_ratio": ratio.quantize(Decimal("0.0001")),
            "inventory_range_multiplier": Decimal(10),
        }
    return {"leverage": Decimal(5), "max_position": Decimal("0.02")}


class WarningCounter(logging.Handler):
    """Counts the warnings of the ``bybitkit`` loggers (the live panel shows the last one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        try:
            self.last = f"{record.levelname} {record.name}: {record.getMessage()}"[:200]
        except Exception:
            self.last = record.levelname


class Demo:
    """One run: the sandbox, the account, the two runners, the sampled prices."""

    def __init__(
        self,
        sb: Sandbox,
        creds: Credentials,
        runners: list[StrategyRunner],
        duration: float,
        seed: int,
        warnings: WarningCounter,
    ) -> None:
        self.sb = sb
        self.creds = creds
        self.runners = runners
        self.duration = duration
        self.seed = seed
        self.warnings = warnings
        self.started_at: float | None = None  # monotonic, once both strategies are up
        self.stopping = False
        self.samples: list[tuple[int, Decimal | None, Decimal | None]] = []

    def mid(self, i: int) -> Decimal | None:
        """The mid our connector ``i`` sees (None until its book is live and valid)."""
        runner, leg = self.runners[i], LEGS[i]
        c = runner.connectors.get(leg.key)
        if c is None:
            return None
        book = c.books.get(PAIR)
        return book.mid() if book is not None and book.is_usable else None

    def sample(self) -> None:
        spot, perp = self.mid(0), self.mid(1)
        if spot is not None or perp is not None:
            self.samples.append((time.time_ns() // 1_000_000, spot, perp))

    def leg_view(self, i: int) -> LegView:
        runner, leg = self.runners[i], LEGS[i]
        c = runner.connectors.get(leg.key)
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        ours: list[tuple[str, Decimal, Decimal]] = []
        if c is not None:
            book = c.books.get(PAIR)
            if book is not None and book.is_valid:
                bids, asks = book.bids(BOOK_LEVELS), book.asks(BOOK_LEVELS)
            ours = [
                (o.side.value, o.price, o.amount - o.filled)
                for o in c.open_orders()  # all of them: the rules may not be loaded yet
                if o.pair == PAIR and o.price is not None
            ]
        s = runner.stats
        return LegView(leg, runner.state, bids, asks, ours, s.orders, s.fills, s.volume)

    def fees_now(self, account: Account) -> Decimal:
        total = Decimal(0)
        for runner in self.runners:
            for coin, fee in runner.stats.fees.items():
                px = account.prices.get(coin, Decimal(1) if coin in STABLE else Decimal(0))
                total += fee * px
        return total

    def show(self, view: View, start: Account) -> None:
        try:
            view.update(self.snapshot(start))
        except Exception:  # a display problem must never end the run
            log.exception("demo: the view failed to update")

    def snapshot(self, start: Account) -> Snapshot:
        account = mark_account(self.sb, self.creds.api_key)
        recent = sorted(
            (f for r in self.runners for f in r.stats.fill_log[-RECENT_FILLS:]),
            key=lambda f: f[0],
        )[-RECENT_FILLS:]
        elapsed = None if self.started_at is None else time.monotonic() - self.started_at
        return Snapshot(
            rest_url=self.sb.rest_url,
            seed=self.seed,
            duration=self.duration,
            elapsed=elapsed,
            stopping=self.stopping,
            legs=[self.leg_view(i) for i in range(len(LEGS))],
            account=account,
            pnl=account.equity - start.equity,
            fees=self.fees_now(account),
            recent=recent,
            warnings=self.warnings.count,
            last_warning=self.warnings.last,
        )


async def _wait_first(aws: Iterable[asyncio.Future[Any]], timeout: float | None) -> None:
    await asyncio.wait(set(aws), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


async def run_demo(
    *,
    duration: float,
    out: Path,
    seed: int,
    home: Path,
    view: View,
    warnings: WarningCounter,
) -> DemoResult:
    """The whole run (see the module docstring); SIGINT/SIGTERM end it early, cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reason = ["time up"]

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            reason[0] = f"interrupted ({sig.name})"
            stop.set()
            view.note(f"{sig.name}: stopping (cancelling our orders)...")
        else:
            view.note(f"{sig.name}: already stopping")

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        return await _run(duration, out, seed, home, view, warnings, stop, reason)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _run(
    duration: float,
    out: Path,
    seed: int,
    home: Path,
    view: View,
    warnings: WarningCounter,
    stop: asyncio.Event,
    reason: list[str],
) -> DemoResult:
    from bybitkit.sandbox.app import Sandbox
    from bybitkit.store import Store
    from bybitkit.strategies.runner import EXIT_OK, StrategyRunner

    history = out / "history.sqlite"
    failed: list[str] = []
    async with Sandbox(seed=seed, simulate=True, speed=SPEED) as sb:
        creds = sb.create_account(balances=START_BALANCES)
        start = mark_account(sb, creds.api_key)
        store = Store(history)
        try:
            runners = [
                StrategyRunner(
                    strategy_config(leg, sb.rest_url, creds, leg_params(leg, start)),
                    home=home,
                    control=False,
                    store=store,
                )
                for leg in LEGS
            ]
            demo = Demo(sb, creds, runners, duration, seed, warnings)
            view.start(sb.rest_url, seed, duration)
            tasks = [asyncio.create_task(r.run(), name=f"demo-{r.name}") for r in runners]
            stopper = asyncio.create_task(stop.wait(), name="demo-stop")
            refresher = asyncio.create_task(_refresh(demo, start, view), name="demo-view")
            try:
                await _until_up(demo, tasks, stop, failed)
                if demo.started_at is not None:
                    await _wait_first([stopper, *tasks], duration)
                if not stop.is_set() and any(t.done() for t in tasks):
                    reason[0] = "a strategy ended early"
                ran = time.monotonic() - demo.started_at if demo.started_at is not None else 0.0
                # the last frame shows the market as it was, then the runners stop
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
                demo.stopping = True
                demo.sample()
                demo.show(view, start)
                codes = await _stop_runners(runners, tasks, f"demo: {reason[0]}", failed)
            finally:
                others: list[asyncio.Task[Any]] = [stopper, refresher, *tasks]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)
            end = mark_account(sb, creds.api_key)
            legs: list[LegResult] = []
            fill_log: list[tuple[int, str, str, str, Decimal, Decimal]] = []
            for leg, r, code in zip(LEGS, runners, codes, strict=True):
                if code != EXIT_OK:
                    failed.append(f"{leg.strategy}: {r.stop_reason} (exit {code})")
                rows = store.fills(leg.connector_id)
                fill_log += [
                    (f.ts_ms, leg.key, f.pair, "Buy" if f.side.upper() == "BUY" else "Sell",
                     f.price, f.qty)
                    for f in rows
                ]  # fmt: skip
                legs.append(
                    LegResult(
                        leg=leg,
                        orders=r.stats.orders,
                        fills=len(rows),
                        volume=sum((f.price * f.qty for f in rows), Decimal(0)),
                        fees=fees_in_quote(rows, lambda c: end.prices.get(c)),
                        runner_fills=r.stats.fills,
                        exchange_fills=sum(
                            1 for e in sb.executions(creds.api_key) if e["category"] == leg.category
                        ),
                        exit_code=code,
                        stop_reason=r.stop_reason,
                    )
                )
            open_left = len(sb.orders(creds.api_key, open_only=True))
            tracked_open = sum(len(store.open_orders(leg.connector_id)) for leg in LEGS)
        finally:
            store.close()
    result = DemoResult(
        seed=seed,
        rest_url=sb.rest_url,
        legs=legs,
        start=start,
        end=end,
        stop_reason=reason[0],
        ran_s=ran,
        open_left=open_left,
        tracked_open=tracked_open,
        samples=demo.samples,
        fill_log=sorted(fill_log, key=lambda f: f[0]),
        history=history,
        failed=failed,
    )
    _check(result)
    chart = out / "demo.png"
    try:
        await asyncio.to_thread(write_chart, chart, result)
        result.chart = chart
    except CliError as exc:
        result.chart_error = exc.message
    return result


async def _until_up(
    demo: Demo, tasks: list[asyncio.Task[int]], stop: asyncio.Event, failed: list[str]
) -> None:
    """Wait until both runners run (then start the clock), one of them ended, or a signal."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not stop.is_set() and not any(t.done() for t in tasks):
        if all(r.state == "running" for r in demo.runners):
            demo.started_at = time.monotonic()
            return
        if time.monotonic() > deadline:
            failed.append(f"the strategies did not start in {START_TIMEOUT_S:.0f} s")
            return
        await asyncio.sleep(0.05)


async def _stop_runners(
    runners: list[StrategyRunner], tasks: list[asyncio.Task[int]], why: str, failed: list[str]
) -> list[int]:
    """Stop the runners and return their exit codes. Each lets a hook in flight finish (an
    order being sent), refuses new orders, cancels its orders and sweeps the exchange."""
    for r in runners:
        r.request_stop(why)
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            return list(await asyncio.gather(*tasks))
    except TimeoutError:
        failed.append(f"the strategies did not stop in {STOP_TIMEOUT_S:.0f} s")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [r.exit_code or 1 for r in runners]


def _check(r: DemoResult) -> None:
    """Cross-check the figures: the history against the exchange and the runners."""
    if r.open_left:
        log.warning("demo: %d of our orders are still open on the exchange", r.open_left)
    if r.tracked_open:
        log.warning("demo: %d orders are still open in the history", r.tracked_open)
    for x in r.legs:
        if not x.fills == x.exchange_fills == x.runner_fills:
            log.warning(
                "demo: %s: the history holds %d fills, the exchange reports %d, the runner "
                "counted %d", x.leg.strategy, x.fills, x.exchange_fills, x.runner_fills,
            )  # fmt: skip


async def _refresh(demo: Demo, start: Account, view: View) -> None:
    n = 0
    while True:
        demo.sample()
        if n % VIEW_EVERY == 0:
            demo.show(view, start)
        n += 1
        await asyncio.sleep(SAMPLE_S)


# -- the views ---------------------------------------------------------------------------------


class View:
    """Where the run shows itself (the base class shows nothing)."""

    def start(self, rest_url: str, seed: int, duration: float) -> None:
        """The sandbox is up."""

    def update(self, snap: Snapshot) -> None:
        """Every :data:`SAMPLE_S` × :data:`VIEW_EVERY` seconds."""

    def note(self, text: str) -> None:
        """A one-off message (a signal received)."""

    def close(self) -> None:
        """The run is over (before the summary is printed)."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _signed(value: Decimal) -> str:
    text = cents(value)
    return text if text.startswith("-") or text == "0.00" else "+" + text


def _position_text(account: Account) -> str:
    parts = []
    for p in account.positions:
        side = "long" if p.get("side") == "Buy" else "short"
        parts.append(
            f"{side} {p['size']} @ {fmt(Decimal(p['avgPrice']))} "
            f"uPnL {_signed(Decimal(p['unrealisedPnl'] or 0))}"
        )
    return ", ".join(parts) or "flat"


class PlainView(View):
    """Plain lines on stdout: one at the start, then one about every 5 s."""

    def __init__(self) -> None:
        self._last = 0.0

    def start(self, rest_url: str, seed: int, duration: float) -> None:
        self._last = time.monotonic()
        _out(
            f"bybitkit demo: sandbox at {rest_url} (seed {seed}, market speed {SPEED:g}x); "
            f"pure_market_making on spot {PAIR} and perpetual_market_making on the {PAIR} "
            f"perpetual for {duration:g} s; Ctrl-C stops early"
        )

    def update(self, snap: Snapshot) -> None:
        if snap.elapsed is None or snap.stopping:
            return
        now = time.monotonic()
        if now - self._last < PROGRESS_S:
            return
        self._last = now
        mids = [
            f"{v.leg.key} {fmt((v.bids[0][0] + v.asks[0][0]) / 2)}"
            for v in snap.legs
            if v.bids and v.asks
        ]
        btc = snap.account.wallet.get("BTC", Decimal(0))
        _out(
            f"[{min(snap.elapsed, snap.duration):5.1f}/{snap.duration:g} s] "
            f"{' '.join(mids) or 'no book yet'} | orders {snap.orders} fills {snap.fills} "
            f"volume {cents(snap.volume)} | BTC {fmt(btc)} perp {_position_text(snap.account)} "
            f"| pnl {_signed(snap.pnl)}"
        )

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class LiveView(View):
    """A rich ``Live`` panel on a terminal; warnings are counted on it, not printed over it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Any = None
        self.notes: list[str] = []
        self._muted: list[tuple[logging.Handler, int]] = []

    def start(self, rest_url: str, seed: int, duration: float) -> None:
        from rich.live import Live
        from rich.text import Text

        # the stderr log handler would draw over the panel: warnings go to the log file only
        for h in logging.getLogger("bybitkit").handlers:
            if type(h) is logging.StreamHandler:
                self._muted.append((h, h.level))
                h.setLevel(logging.CRITICAL + 1)
        self.live = Live(
            Text(f"bybitkit demo: starting on {rest_url} ..."),
            console=self.console,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def update(self, snap: Snapshot) -> None:
        if self.live is not None:
            self.live.update(render_panel(snap, self.notes, self.console.width))

    def note(self, text: str) -> None:
        self.notes = [*self.notes[-2:], text]

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        for h, level in self._muted:
            h.setLevel(level)
        self._muted.clear()


def _short(value: Decimal, places: int = 4) -> str:
    """A quantity for the panel: at most ``places`` decimals (display only)."""
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and -exp > places:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return fmt(value)


def _market_panel(v: LegView, snap: Snapshot, levels: int) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    ours_bid = {p for side, p, _ in v.ours if side == "Buy"}
    ours_ask = {p for side, p, _ in v.ours if side == "Sell"}
    book = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    book.add_column("bid qty", justify="right", no_wrap=True)
    book.add_column("bid", justify="right", no_wrap=True)
    book.add_column("ask", justify="left", no_wrap=True)
    book.add_column("ask qty", justify="right", no_wrap=True)
    for i in range(levels):
        b = v.bids[i] if i < len(v.bids) else None
        a = v.asks[i] if i < len(v.asks) else None
        bid = ask = Text("")
        if b is not None:
            mine = b[0] in ours_bid
            bid = Text(("*" if mine else "") + fmt(b[0]), "bold green" if mine else "green")
        if a is not None:
            mine = a[0] in ours_ask
            ask = Text(fmt(a[0]) + ("*" if mine else ""), "bold red" if mine else "red")
        book.add_row(_short(b[1]) if b else "", bid, ask, _short(a[1]) if a else "")
    quotes = " ".join(
        f"{'bid' if side == 'Buy' else 'ask'} {_short(q)}@{fmt(p)}"
        for side, p, q in sorted(v.ours, key=lambda o: (o[0], o[1]))
    )
    if v.leg.key == "spot":
        w = snap.account.wallet
        held = f"BTC {_short(w.get('BTC', Decimal(0)))}  USDT {cents(w.get('USDT', Decimal(0)))}"
    else:
        held = f"position {_position_text(snap.account)}"
    info = Text.assemble(
        (f"quotes* {quotes or 'none'}\n", ""),
        (f"{held}\n", ""),
        (f"orders {v.orders}  fills {v.fills}  volume {cents(v.volume)}", "dim"),
    )
    return Panel(Group(book, info), title=f"{v.leg.label} · {v.leg.strategy}", title_align="left")


def render_panel(snap: Snapshot, notes: list[str], width: int = 120) -> RenderableType:
    """The live panel: per market its book with our quotes marked (*), then recent fills and
    the totals; the markets side by side from 100 columns, else one above the other (and
    fewer rows)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    wide = width >= 100
    levels, recent = (BOOK_LEVELS, RECENT_FILLS) if wide else (3, 4)
    cells = [_market_panel(v, snap, levels) for v in snap.legs]
    markets = Table.grid(expand=True, padding=(0, 1))
    if wide:
        for _ in cells:
            markets.add_column(ratio=1)
        markets.add_row(*cells)
    else:
        markets.add_column()
        for cell in cells:
            markets.add_row(cell)

    fills = Table(title="recent fills", title_justify="left", box=None, padding=(0, 2))
    for name in ("time", "market", "side", "price", "qty"):
        fills.add_column(name, justify="right" if name in ("price", "qty") else "left")
    for ts_ms, name, pair, side, price, qty in reversed(snap.recent[-recent:]):
        fills.add_row(
            time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000)) + f".{ts_ms % 1000:03d}",
            f"{name} {pair}",
            Text(side.lower(), style="green" if side == "Buy" else "red"),
            fmt(price),
            _short(qty, 6),
        )
    pnl_style = "bold green" if snap.pnl > 0 else "bold red" if snap.pnl < 0 else "bold"
    totals = Text.assemble(
        (f"orders {snap.orders}  fills {snap.fills}  volume {cents(snap.volume)}  ", ""),
        (f"fees {cents(snap.fees)}  pnl ", ""),
        (_signed(snap.pnl), pnl_style),
        (f"  (equity {cents(snap.account.equity)} USDT)", ""),
    )
    lines: list[RenderableType] = [markets, fills, totals]
    if snap.warnings:
        lines.append(
            Text(f"warnings: {snap.warnings} (in the log); last: {snap.last_warning}", "yellow")
        )
    lines += [Text(n, "yellow") for n in notes]
    if snap.stopping:
        status = "stopping"
    elif snap.elapsed is None:
        status = "starting"
    else:
        status = f"{max(0.0, snap.duration - snap.elapsed):.0f} s left"
    return Panel(
        Group(*lines),
        title=f"bybitkit demo · {status}",
        subtitle=f"sandbox {snap.rest_url} · seed {snap.seed} · Ctrl-C stops",
    )


# -- the chart ---------------------------------------------------------------------------------


def write_chart(path: Path, result: DemoResult) -> None:
    """``path`` as a PNG: per market (spot above, perpetual below) the sampled mid over time,
    our buys (green ▲) and sells (red ▼) at their fill prices."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise CliError(
            "the chart needs matplotlib: pip install 'bybitkit[plot]' (make demo installs it)"
        ) from None
    figure_mod: Any = importlib.import_module("matplotlib.figure")
    fig = figure_mod.Figure(figsize=(12, 8), dpi=100)
    axes = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.12})
    t0 = min(
        [s[0] for s in result.samples[:1]] + [f[0] for f in result.fill_log[:1]],
        default=0,
    )
    for i, (ax, leg) in enumerate(zip(axes, LEGS, strict=True)):
        pts = [(s[0], s[1 + i]) for s in result.samples if s[1 + i] is not None]
        if pts:
            ax.plot(
                [(t - t0) / 1000 for t, _ in pts],
                [float(p) for _, p in pts if p is not None],
                color="#455a64",
                linewidth=1,
                label="mid (sampled)",
            )
        else:
            ax.text(0.5, 0.5, "no prices sampled", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        for side, marker, color, name in (
            ("Buy", "^", "#2e7d32", "our buys"),
            ("Sell", "v", "#c62828", "our sells"),
        ):
            fills = [f for f in result.fill_log if f[1] == leg.key and f[3] == side]
            if fills:
                ax.scatter(
                    [(f[0] - t0) / 1000 for f in fills],
                    [float(f[4]) for f in fills],
                    marker=marker,
                    color=color,
                    s=36,
                    zorder=3,
                    label=f"{name} ({len(fills)})",
                )
        ax.set_title(f"{leg.label}: {leg.strategy}", loc="left", fontsize=10)
        ax.set_ylabel("price (USDT)")
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(f"bybitkit demo (sandbox, seed {result.seed})\n{result.line}", fontsize=11)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    except OSError as exc:
        raise CliError(f"cannot write the chart {path}: {exc.strerror or exc}") from None


# -- the summary -------------------------------------------------------------------------------


def summary_lines(r: DemoResult, log_file: Path) -> list[str]:
    """The summary, its last line :func:`demo_line`."""
    out = [
        f"bybitkit demo: {r.ran_s:.1f} s of market making on the sandbox (seed {r.seed}, "
        f"market speed {SPEED:g}x); stopped: {r.stop_reason}",
    ]
    out += [
        f"  {x.leg.strategy:<24} {x.leg.label:<19} orders {x.orders:>5}  fills "
        f"{x.fills:>5}  volume {cents(x.volume):>10}  fees {cents(x.fees):>7} USDT"
        for x in r.legs
    ]
    w0, w1 = r.start.wallet, r.end.wallet
    coins = sorted(set(w0) | set(w1), key=lambda c: (c not in STABLE, c))
    moved = ", ".join(
        f"{c} {fmt(w0.get(c, Decimal(0)))} -> {fmt(w1.get(c, Decimal(0)))}" for c in coins
    )
    out.append(f"  wallet {moved}; perpetual position {_position_text(r.end)}")
    out.append(
        f"  equity {cents(r.start.equity)} -> {cents(r.end.equity)} USDT: pnl {_signed(r.pnl)} "
        f"= trading {_signed(r.pnl - r.inventory_pnl)} (fees included) + inventory "
        f"{_signed(r.inventory_pnl)} (the starting balances re-priced)"
    )
    out.append(
        f"  fills: {r.fills} in the history, {sum(x.exchange_fills for x in r.legs)} reported by "
        f"the exchange; our open orders left: {r.open_left} on the exchange, {r.tracked_open} "
        "in the history"
    )
    chart = str(r.chart) if r.chart is not None else f"not written ({r.chart_error})"
    out.append(f"  chart: {chart}  history: {r.history}  log: {log_file}")
    out.append(r.line)
    return out


# -- the command -------------------------------------------------------------------------------


@contextlib.contextmanager
def _logging(level: str | None, counter: WarningCounter) -> Iterator[None]:
    installed = setup_logging(level)
    logger = logging.getLogger("bybitkit")
    logger.addHandler(counter)
    try:
        yield
    finally:
        logger.removeHandler(counter)
        if installed:
            teardown_logging()


def _prepare_out(out: Path) -> Path:
    """The output folder, without the previous demo's history and chart (a new run's orders
    must not meet the last run's in the store)."""
    out = out.expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm", "demo.png"):
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise CliError(f"--out: cannot use {out}: {exc.strerror or exc}", 2) from None
    return out


def demo_command(
    ctx: typer.Context,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            min=1.0,
            help="Seconds of market making, counted once both strategies are up.",
        ),
    ] = 60.0,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder of the outputs: demo.png (the chart) and history.sqlite (orders and "
            "fills); the previous demo's are replaced.",
        ),
    ] = Path("demo-out"),
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the simulated market (prices and flow).")
    ] = 7,
    plain: Annotated[
        bool,
        typer.Option("--plain", help="Plain progress lines even on a terminal (no live panel)."),
    ] = False,
) -> None:
    """Market making on a local sandbox exchange: no keys, no network.

    Starts the embedded Bybit-compatible sandbox on 127.0.0.1 with a simulated market, opens an
    account (20,000 USDT and 0.2 BTC), and runs `pure_market_making` on spot BTC-USDT and
    `perpetual_market_making` on the BTC-USDT perpetual through the real connectors, for
    --duration seconds or until Ctrl-C. Shows a live panel on a terminal (plain progress lines
    otherwise), then a summary; its last line is
    `demo: <orders> orders, <fills> fills, <volume> volume, fees <x>, pnl <y>` (USDT; pnl is the
    account's equity change marked to market, fees included). Writes OUT/demo.png and
    OUT/history.sqlite.
    """
    from bybitkit.cli.common import console as make_console
    from bybitkit.keys import bybitkit_home

    root = ctx.find_root()
    level = root.params.get("log_level") if root is not ctx else None
    counter = WarningCounter()
    with reported(), _logging(level, counter):
        out_dir = _prepare_out(out)
        home = bybitkit_home()
        con = make_console()
        view: View = (
            LiveView(con)
            if not plain and con.is_terminal and not con.is_dumb_terminal
            else PlainView()
        )
        try:
            result = asyncio.run(
                run_demo(
                    duration=duration,
                    out=out_dir,
                    seed=seed,
                    home=home,
                    view=view,
                    warnings=counter,
                )
            )
        finally:
            view.close()
        for line in summary_lines(result, home / "logs" / "bybitkit.log"):
            _out(line)
        if result.chart_error:
            print(f"warning: {result.chart_error}", file=sys.stderr, flush=True)
        if result.failed:
            raise CliError("demo: " + "; ".join(result.failed))
