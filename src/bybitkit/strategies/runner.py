"""The strategy runner: connectors, hooks, safety rails, control, and a clean end.

One :class:`StrategyRunner` runs one strategy instance. It owns every task it starts (the tick
loop, one event pump per connector, the equity watch, the dead-man timer, the control server)
and cancels and awaits them on the way out, whatever the way out is:

* ``stop`` (the control socket, Ctrl-C, SIGTERM): ``on_stop``, cancel our orders, exit 0;
* the kill switch (equity marked to market, fees and funding included, below the max loss or
  the max drawdown from its peak): cancel our orders, flatten positions if configured, exit 3;
* a fatal error (an exception out of a strategy hook or a runner task): cancel our orders,
  exit 1, so that a supervisor restarts the process (state comes back from the store).

Our orders are the ones the connectors' trackers know (placed through this runner, or found in
the store at start); on the way out they are cancelled, then the exchange is swept once more for
open orders carrying our client-id prefix (an order whose submit outcome was unknown included).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bybitkit.connectors.base import BybitConnector
from bybitkit.errors import BybitkitError, ConfigError, ValidationError
from bybitkit.market.order_book import OrderBook
from bybitkit.strategies.base import ScriptStrategy
from bybitkit.strategies.config import ConnectorConfig, StrategyConfig, convert
from bybitkit.strategies.rails import EquityWatch, OrderRate, RailRefused
from bybitkit.trading.events import FundingPaid, OrderCancelled, OrderFilled, PositionChanged
from bybitkit.trading.types import Order, OrderState, Position, Side

__all__ = [
    "BUILTINS",
    "EXIT_FATAL",
    "EXIT_INTERRUPTED",
    "EXIT_KILLED",
    "EXIT_OK",
    "ConnectorFactory",
    "RunStats",
    "StrategyRunner",
    "default_connector_factory",
    "link_prefix",
    "load_strategy",
    "run_dir",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_KILLED = 3
EXIT_INTERRUPTED = 130

BUILTINS: dict[str, str] = {
    "pure_market_making": "bybitkit.strategies.pure_market_making:PureMarketMaking",
    "perpetual_market_making": "bybitkit.strategies.perpetual_market_making:PerpetualMarketMaking",
    "funding_rate_arbitrage": "bybitkit.strategies.funding_rate_arbitrage:FundingRateArbitrage",
}

STABLE = frozenset({"USDT", "USDC", "USD"})
BALANCE_REFRESH_S = 5.0

# (name, its config, options for the connector) -> an unstarted connector
ConnectorFactory = Callable[[str, ConnectorConfig, dict[str, Any]], BybitConnector]


def run_dir(home: Path) -> Path:
    """Where running strategies leave their state files (``<name>.json``)."""
    return home / "run"


def link_prefix(instance: str) -> str:
    """A short client-id prefix of one strategy instance (``s`` + 6 hex digits): its orders
    are recognisable on the exchange, even after a restart."""
    return "s" + hashlib.sha256(instance.encode()).hexdigest()[:6]


def load_strategy(spec: str) -> type[ScriptStrategy]:
    """A built-in's name, or a path to a ``.py`` file defining one :class:`ScriptStrategy`
    subclass (or several, one of them named ``Strategy``)."""
    if spec in BUILTINS:
        module_name, _, attr = BUILTINS[spec].partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        assert isinstance(cls, type) and issubclass(cls, ScriptStrategy)
        return cls
    path = Path(spec)
    if path.suffix != ".py":
        names = ", ".join(sorted(BUILTINS))
        raise ConfigError(
            f"strategy: expected one of {names} or a path to a .py file, got {spec!r}"
        )
    if not path.is_file():
        raise ConfigError(f"strategy: no such file: {spec}")
    module_name = "bybitkit_user_strategy_" + re.sub(r"\W", "_", path.stem)
    mod_spec = importlib.util.spec_from_file_location(module_name, path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"strategy: {spec} failed to load: {type(exc).__name__}: {exc}") from exc
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ScriptStrategy)
        and obj is not ScriptStrategy
        and obj.__module__ == module_name
    ]
    if len(found) > 1:
        found = [c for c in found if c.__name__ == "Strategy"] or found
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(c.__name__ for c in found)})"
        raise ConfigError(
            f"strategy: {spec} defines {what} ScriptStrategy subclasses; expected one "
            "(or name the one to run `Strategy`)"
        )
    return found[0]


def expand_env(value: str | None, where: str) -> str | None:
    """``$NAME`` / ``${NAME}`` from the environment (keys stay out of config files)."""
    if value is None:
        return None
    m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value)
    if not m:
        return value
    got = os.environ.get(m.group(1))
    if not got:
        raise ConfigError(f"{where}: the environment variable {m.group(1)} is not set")
    return got


def default_connector_factory(
    name: str, conf: ConnectorConfig, options: dict[str, Any]
) -> BybitConnector:
    """A connector from its config alone: inline (or ``$ENV``) credentials, and for the sandbox
    ids the sandbox's REST URL as ``environment`` (the CLI adds the key store)."""
    from bybitkit.connectors.registry import connect
    from bybitkit.v5.environments import Environment

    key = expand_env(conf.api_key, f"connectors.{name}.api_key")
    secret = expand_env(conf.api_secret, f"connectors.{name}.api_secret")
    creds = (key, secret) if key and secret else None
    env: Any = conf.environment
    if env is not None and env.startswith(("http://", "https://")):
        ws = "ws" + env[4:] if env.startswith("http") else env
        env = Environment.custom(env, ws, name="sandbox")
    return connect(conf.connector, credentials=creds, environment=env, **options)


@dataclass
class RunStats:
    """What the run did (for status, the demo's summary and the tests)."""

    orders: int = 0
    fills: int = 0
    volume: Decimal = Decimal(0)  # quote value traded
    fees: dict[str, Decimal] = field(default_factory=dict)
    funding: Decimal = Decimal(0)  # paid (+) / received (-)
    refused: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    fill_log: list[tuple[int, str, str, str, Decimal, Decimal]] = field(default_factory=list)
    # (ts_ms, connector name, pair, side, price, qty): the demo's chart


class StrategyRunner:
    """Runs one strategy: see the module docstring."""

    def __init__(
        self,
        config: StrategyConfig,
        *,
        strategy_cls: type[ScriptStrategy] | None = None,
        connectors: dict[str, BybitConnector] | None = None,
        connector_factory: ConnectorFactory | None = None,
        home: Path | None = None,
        control: bool = True,
        store: Any = None,
    ) -> None:
        from bybitkit.keys import bybitkit_home

        self.config = config
        self.name = config.instance_name
        self.home = home if home is not None else bybitkit_home()
        if strategy_cls is None and not config.strategy:
            raise ConfigError("strategy: expected a built-in name or a script path, got none")
        self.strategy_cls = strategy_cls or load_strategy(str(config.strategy))
        self.params = convert(config.params, self.strategy_cls.Params, "params")
        self._injected = connectors
        self._factory = connector_factory or default_connector_factory
        self._control_enabled = control
        self._store_arg = store
        self.store: Any = None
        self._own_store = False
        self.connectors: dict[str, BybitConnector] = {}
        self._opened: list[BybitConnector] = []
        self.risk = config.risk
        self.watch = EquityWatch(self.risk.max_loss, self.risk.max_drawdown)
        self.rate = OrderRate(self.risk.max_orders_per_second)
        self.stats = RunStats()
        self.prefix = link_prefix(self.name)
        self.strategy: ScriptStrategy | None = None
        self.killed: str | None = None
        self.exit_code = EXIT_OK
        self.stop_reason = ""
        self.started_ms = 0
        self.state = "new"
        self.dcp_active: dict[str, bool] = {}
        self._stop = asyncio.Event()
        self.started = asyncio.Event()  # set once on_start has returned
        self._in_on_stop = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pumps: set[asyncio.Task[Any]] = set()  # event pumps: they outlive the sweep
        self._hook_lock = asyncio.Lock()
        self._private_down_since: dict[str, float] = {}
        self._deadman_fired: set[str] = set()
        self._last_balances = 0.0
        self._ticker_px: dict[str, tuple[float, Decimal]] = {}
        self._server: asyncio.Server | None = None
        self._token = secrets.token_hex(16)
        self._state_file: Path | None = None

    # -- lookups ---------------------------------------------------------------------------------

    def connector(self, name: str) -> BybitConnector:
        c = self.connectors.get(name)
        if c is None:
            raise ValidationError("connector", f"one of {sorted(self.connectors)}", name)
        return c

    def pairs(self, name: str) -> list[str]:
        c = self.connector(name)
        return [c.normalize_pair(p) for p in self.config.connectors[name].pairs]

    def usable_book(self, name: str, pair: str) -> OrderBook | None:
        c = self.connector(name)
        book = c.books.get(c.normalize_pair(pair))
        return book if book is not None and book.is_usable else None

    def open_orders(self, name: str | None = None, pair: str | None = None) -> list[Order]:
        names = [name] if name is not None else list(self.connectors)
        out: list[Order] = []
        for n in names:
            c = self.connector(n)
            out += c.open_orders(c.normalize_pair(pair) if pair else None)
        return out

    def positions(self, name: str, pair: str) -> list[Position]:
        """Every open leg of ``pair`` on a perpetual connector (two in hedge mode)."""
        c = self.connector(name)
        p = c.normalize_pair(pair)
        cache = getattr(c, "positions_cache", None) or {}
        return [pos for pos in cache.values() if pos.pair == p and pos.size]

    def position(self, name: str, pair: str) -> Position | None:
        c = self.connector(name)
        cache = getattr(c, "positions_cache", None)
        if cache is None:
            return None
        p = c.normalize_pair(pair)
        for pos in cache.values():
            if pos.pair == p and pos.size:
                return pos  # type: ignore[no-any-return]
        return None

    # -- orders through the rails ----------------------------------------------------------------

    def check_rails(
        self, name: str, pair: str, amount: Decimal, price: Decimal | None, market: bool
    ) -> None:
        """Raise :class:`RailRefused` if a rail forbids this order now."""
        if self.killed is not None:
            raise RailRefused("kill_switch", self.killed)
        if self.state != "running" and not (self._in_on_stop and self.state == "stopping"):
            raise RailRefused("stopping", f"the runner is {self.state}")
        c = self.connector(name)
        if c.credentials is not None and not c.private_up:
            raise RailRefused("private_down", f"{name}: the private stream is down")
        book = c.books.get(pair)
        if book is None:
            raise RailRefused("book", f"{name} {pair}: no book subscribed")
        if not book.is_valid:
            raise RailRefused("book", f"{name} {pair}: book invalid ({book.invalid_reason})")
        if book.is_stale:
            raise RailRefused("book", f"{name} {pair}: book stale ({book.age:.1f} s old)")
        limit = self.risk.max_order_size.get(pair)
        if limit is not None and amount > limit:
            raise RailRefused("max_order_size", f"{pair}: {amount} is over {limit}")
        if self.risk.max_order_value is not None:
            ref = price if price is not None else book.mid()
            if ref is not None and amount * ref > self.risk.max_order_value:
                raise RailRefused(
                    "max_order_value",
                    f"{pair}: {amount * ref} is over {self.risk.max_order_value}",
                )
        if not self.rate.allow():
            raise RailRefused(
                "max_orders_per_second", f"over {self.risk.max_orders_per_second} orders/s"
            )

    async def place(
        self,
        name: str,
        pair: str,
        side: Any,
        order_type: Any,
        amount: Any,
        price: Any = None,
        **opts: Any,
    ) -> Order | None:
        c = self.connector(name)
        pair = c.normalize_pair(pair)
        if pair not in self.pairs(name):
            raise ValidationError("pair", f"one of {self.pairs(name)} (the config's)", pair)
        qty = Decimal(str(amount))
        px = Decimal(str(price)) if price is not None else None
        kind = str(getattr(order_type, "value", order_type)).lower()
        try:
            self.check_rails(name, pair, qty, px, kind == "market")
        except RailRefused as refused:
            self.stats.refused[refused.rail] += 1
            log.info("order refused by rail=%s: %s", refused.rail, refused.reason)
            return None
        try:
            order = await c.place_order(pair, side, order_type, qty, px, **opts)
        except (BybitkitError, ValueError) as exc:
            self.stats.rejected += 1
            log.warning("order refused connector=%s pair=%s: %s", name, pair, exc)
            return None
        self.stats.orders += 1
        return order

    async def cancel(self, name: str, client_order_id: str) -> bool:
        c = self.connector(name)
        try:
            await c.cancel_order(client_order_id)
        except BybitkitError as exc:
            log.info("cancel %s: %s", client_order_id, exc)
            return False
        return True

    async def cancel_all(self, name: str | None = None, pair: str | None = None) -> int:
        names = [name] if name is not None else list(self.connectors)
        n = 0
        for nm in names:
            c = self.connector(nm)
            wanted = c.normalize_pair(pair) if pair else None
            ids = [
                o.client_order_id
                for o in c.open_orders(wanted)
                if o.state is not OrderState.UNKNOWN
            ]
            if not ids:
                continue
            try:
                for i in range(0, len(ids), 10):
                    await c.cancel_orders(ids[i : i + 10])
            except BybitkitError as exc:
                log.warning("cancel_all connector=%s: %s", nm, exc)
            n += len(ids)
        return n

    # -- the run ---------------------------------------------------------------------------------

    def request_stop(self, reason: str = "stop requested", code: int | None = None) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            if code is not None:
                self.exit_code = code
            log.info("stopping strategy=%s: %s", self.name, reason)
            self._stop.set()

    async def run(self) -> int:
        """Run until stopped; returns the process exit code (see the module docstring)."""
        self.state = "starting"
        try:
            await self._open()
            self.state = "running"
            self.started_ms = int(time.time() * 1000)
            for name, c in self.connectors.items():
                self._spawn(self._pump(name, c), f"events-{name}", pump=True)
            self._spawn(self._equity_loop(), "equity")
            self._spawn(self._deadman_loop(), "dead-man")
            assert self.strategy is not None
            await self._hook(self.strategy.on_start)
            self.started.set()
            if not self._stop.is_set():
                self._spawn(self._tick_loop(), "tick")
            if self._control_enabled:
                await self._start_control()
            await self._stop.wait()
        except (BybitkitError, OSError, TimeoutError) as exc:
            log.error("strategy=%s failed to start: %s", self.name, exc)
            self.stop_reason = f"failed: {exc}"
            self.exit_code = EXIT_FATAL
        except Exception as exc:
            log.exception("strategy=%s crashed", self.name)
            self.stop_reason = f"crashed: {type(exc).__name__}: {exc}"
            self.exit_code = EXIT_FATAL
        except asyncio.CancelledError:
            self.stop_reason = self.stop_reason or "interrupted"
            self.exit_code = EXIT_INTERRUPTED
            await asyncio.shield(self._shutdown())
            raise
        await self._shutdown()
        return self.exit_code

    async def _open(self) -> None:
        from bybitkit.store import Store

        if self._store_arg is not None:
            self.store = self._store_arg if not isinstance(self._store_arg, str | Path) else None
            if self.store is None:
                self.store = Store(str(self._store_arg))
                self._own_store = True
        elif self._injected is None:
            path = Path(self.config.store) if self.config.store else (
                self.home / "strategies" / f"{self.name}.sqlite"
            )  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            self.store = Store(str(path))
            self._own_store = True
        if self._injected is not None:
            missing = sorted(set(self.config.connectors) - set(self._injected))
            if missing:
                raise ConfigError(f"connectors: no connector given for {', '.join(missing)}")
            self.connectors = dict(self._injected)
        else:
            for name, conf in self.config.connectors.items():
                options: dict[str, Any] = {
                    "stale_after": float(self.risk.stale_after),
                    "link_id_prefix": self.prefix,
                    "order_entry": conf.order_entry,
                }
                if self.store is not None:
                    options["store"] = self.store
                c = self._factory(name, conf, options)
                self._opened.append(c)  # stopped on the way out, even if its start fails
                await c.start()
                self.connectors[name] = c  # usable once started
        for name, conf in self.config.connectors.items():
            c = self.connectors[name]
            for pair in conf.pairs:
                if c.normalize_pair(pair) not in c.rules:
                    raise ConfigError(f"connectors.{name}.pairs: {pair} is not listed by {name}")
                await c.order_book(pair)
            if c.credentials is not None or hasattr(c, "engine"):
                await c.balances()
        self._last_balances = time.monotonic()
        if self.config.dcp.enabled:
            await self._enable_dcp()
        self.strategy = self.strategy_cls(self, self.params)
        equity = await self.equity()
        if equity is not None:
            self.watch.update(equity)
        log.info(
            "strategy=%s started connectors=%s equity=%s",
            self.name, ",".join(self.connectors), equity,
        )  # fmt: skip

    async def _enable_dcp(self) -> None:
        dcp = self.config.dcp
        for name, c in self.connectors.items():
            enable = getattr(c, "enable_dcp", None)
            if enable is None or c.credentials is None:
                self.dcp_active[name] = False
                continue
            product = dcp.product or ("SPOT" if c.category == "spot" else "DERIVATIVES")
            try:
                self.dcp_active[name] = bool(await enable(dcp.time_window, product=product))
            except BybitkitError as exc:
                log.warning("DCP connector=%s not enabled: %s", name, exc)
                self.dcp_active[name] = False
            if not self.dcp_active[name]:
                log.warning(
                    "DCP is not active for connector=%s product=%s: the local dead-man timer "
                    "(%s s) is the fallback", name, product, self._deadman_window(),
                )  # fmt: skip

    def _deadman_window(self) -> float:
        d = self.config.dcp
        return float(d.dead_man if d.dead_man is not None else d.time_window)

    async def _hook(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Strategy hooks run one at a time; an exception out of one is fatal. (The coroutine
        is made once the lock is held: a cancelled wait leaves none unawaited.)"""
        async with self._hook_lock:
            await fn(*args)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str, *, pump: bool = False) -> None:
        task = asyncio.ensure_future(self._guard(coro, name))
        task.set_name(f"strategy-{self.name}-{name}")
        tasks = self._pumps if pump else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        # cancelled before it ever ran: close the coroutine it would have awaited
        task.add_done_callback(lambda t: coro.close() if t.cancelled() else None)

    async def _guard(self, coro: Awaitable[None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("strategy=%s task=%s failed", self.name, name)
            self.request_stop(f"fatal error in {name}: {type(exc).__name__}: {exc}", EXIT_FATAL)

    async def _tick_loop(self) -> None:
        interval = float(self.config.tick_interval)
        assert self.strategy is not None
        while True:
            started = time.monotonic()
            if self.state == "running" and self.killed is None:
                await self._hook(self.strategy.on_tick)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _pump(self, name: str, c: BybitConnector) -> None:
        assert self.strategy is not None
        async for ev in c.events():
            if isinstance(ev, OrderFilled):
                f = ev.fill
                self.stats.fills += 1
                self.stats.volume += f.price * f.qty
                self.stats.fees[f.fee_currency] = (
                    self.stats.fees.get(f.fee_currency, Decimal(0)) + f.fee
                )
                self.stats.fill_log.append((f.ts_ms, name, f.pair, f.side.value, f.price, f.qty))
                if len(self.stats.fill_log) > 100_000:
                    del self.stats.fill_log[:50_000]
                if self.state == "running":  # while stopping: counted, not handed on
                    await self._hook(self.strategy.on_order_filled, ev)
            elif isinstance(ev, OrderCancelled):
                if self.state == "running":
                    await self._hook(self.strategy.on_order_cancelled, ev)
            elif isinstance(ev, FundingPaid):
                self.stats.funding += ev.payment.amount
                if self.state == "running":
                    await self._hook(self.strategy.on_funding_paid, ev)
            elif isinstance(ev, PositionChanged) and self.state == "running":
                await self._hook(self.strategy.on_position_changed, ev)

    # -- equity and the kill switch --------------------------------------------------------------

    def _accounts(self) -> dict[Any, BybitConnector]:
        """One connector per distinct account (a spot and a perpetual connector with the same
        keys see the same unified wallet: count it once)."""
        out: dict[Any, BybitConnector] = {}
        for c in self.connectors.values():
            engine = getattr(c, "engine", None)
            if engine is not None:
                key: Any = ("paper", id(engine))
            elif c.credentials is not None:
                key = (c.environment.rest_url, c.credentials.api_key)
            else:
                continue
            out.setdefault(key, c)
        return out

    async def _coin_price(self, coin: str) -> Decimal | None:
        """``coin`` in USDT: a live book's mid, a perpetual's mark, else a REST ticker (cached
        10 s)."""
        if coin in STABLE:
            return Decimal(1)
        pair = f"{coin}-USDT"
        for c in self.connectors.values():
            if c.category != "spot":  # a perpetual's BTC-USDT is not the coin's spot price
                continue
            book = c.books.get(pair)
            if book is not None and book.is_usable and book.mid() is not None:
                return book.mid()
        for c in self.connectors.values():
            info = getattr(c, "funding_info", None)
            if info is not None and pair in c.rules:
                with contextlib.suppress(Exception):
                    mark = info(pair).mark_price
                    if mark is not None:
                        return mark  # type: ignore[no-any-return]
        cached = self._ticker_px.get(coin)
        if cached is not None and time.monotonic() - cached[0] < 10:
            return cached[1]
        for c in self.connectors.values():
            if c.category != "spot" or pair not in c.rules:
                continue
            try:
                res = await c.rest.tickers("spot", symbol=c.rules[pair].symbol)
            except BybitkitError:
                continue
            if res.list and res.list[0].lastPrice is not None:
                px = res.list[0].lastPrice
                self._ticker_px[coin] = (time.monotonic(), px)
                return px  # type: ignore[no-any-return]
        return None

    async def equity(self) -> Decimal | None:
        """Every distinct account's wallet (fees and funding are in it) valued in USDT, plus
        the unrealised PnL of every position at its mark price."""
        accounts = self._accounts()
        if not accounts:
            return None
        total = Decimal(0)
        for c in accounts.values():
            for coin, bal in c.balances_cache.items():
                if not bal.total:
                    continue
                px = await self._coin_price(coin)
                if px is None:
                    log.debug("equity: no price for %s (left out)", coin)
                    continue
                total += bal.total * px
        for c in self.connectors.values():
            cache = getattr(c, "positions_cache", None)
            if not cache:
                continue
            for pos in cache.values():
                if not pos.size:
                    continue
                mark = pos.mark_price
                with contextlib.suppress(Exception):
                    live = c.funding_info(pos.pair).mark_price  # type: ignore[attr-defined]
                    if live is not None:
                        mark = live
                sign = 1 if pos.side is Side.BUY else -1
                total += (mark - pos.entry_price) * pos.size * sign
        return total

    async def _equity_loop(self) -> None:
        interval = float(self.risk.equity_interval)
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_balances >= BALANCE_REFRESH_S:
                self._last_balances = time.monotonic()
                for c in self._accounts().values():
                    try:
                        await c.balances()
                    except BybitkitError as exc:
                        log.warning("balances refresh failed: %s", exc)
            equity = await self.equity()
            if equity is None:
                continue
            reason = self.watch.update(equity)
            if reason is not None:
                self.kill(reason)

    def kill(self, reason: str) -> None:
        """The kill switch: stop quoting now; the way out cancels (and maybe flattens)."""
        if self.killed is None:
            self.killed = reason
            log.error("KILL SWITCH strategy=%s: %s", self.name, reason)
            self.request_stop(f"kill switch: {reason}", EXIT_KILLED)

    # -- the dead-man timer ----------------------------------------------------------------------

    async def _deadman_loop(self) -> None:
        """Where DCP is not active: a private stream down longer than the window means we can
        no longer see our fills: cancel our orders over REST (once per outage)."""
        window = self._deadman_window()
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for name, c in self.connectors.items():
                if c.credentials is None or self.dcp_active.get(name):
                    continue
                if c.private_up:
                    self._private_down_since.pop(name, None)
                    self._deadman_fired.discard(name)
                    continue
                since = self._private_down_since.setdefault(name, now)
                if now - since >= window and name not in self._deadman_fired:
                    self._deadman_fired.add(name)
                    log.error(
                        "dead-man: connector=%s private stream down %.1f s; cancelling our "
                        "orders", name, now - since,
                    )  # fmt: skip
                    await self._sweep(name)

    # -- the way out -----------------------------------------------------------------------------

    async def _sweep(self, name: str) -> int:
        """Cancel our orders of one connector: the tracked ones, then any open order on the
        exchange with our prefix (an unresolved submit included)."""
        c = self.connectors[name]
        if c.credentials is None and not hasattr(c, "engine"):
            return 0
        n = await self.cancel_all(name)
        prefix = c.link_id_prefix + "-"
        for pair in self.pairs(name):
            try:
                res = await c.rest.open_orders(category=c.category, symbol=c.rules[pair].symbol)
            except BybitkitError as exc:
                log.warning("sweep connector=%s pair=%s: %s", name, pair, exc)
                continue
            for o in res.list:
                if o.orderLinkId and o.orderLinkId.startswith(prefix):
                    with contextlib.suppress(BybitkitError):
                        await c.rest.cancel_order(
                            category=c.category, symbol=o.symbol, orderLinkId=o.orderLinkId
                        )
                        n += 1
        return n

    async def _flatten(self) -> None:
        for name, c in self.connectors.items():
            close = getattr(c, "close_position", None)
            if close is None:
                continue
            for pair in self.pairs(name):
                if self.position(name, pair) is None:
                    continue
                try:
                    await close(pair)
                    log.warning("kill switch: flattened connector=%s pair=%s", name, pair)
                except BybitkitError as exc:
                    log.error("kill switch: flatten connector=%s pair=%s failed: %s",
                              name, pair, exc)  # fmt: skip

    async def _shutdown(self) -> None:
        if self.state == "stopped":
            return
        # From here the rails refuse new orders and the tick loop calls on_tick no more. A hook
        # in flight may be sending an order: it finishes first (cancelling it mid-request would
        # leave that order's outcome unknown), then the other tasks are cancelled.
        self.state = "stopping"
        tasks = [t for t in self._tasks if not t.done()]
        try:
            async with asyncio.timeout(10):
                await self._hook_lock.acquire()
            locked = True
        except TimeoutError:
            log.warning("strategy=%s: a hook still runs after 10 s; cancelling it", self.name)
            locked = False
        try:
            for t in tasks:
                t.cancel()
        finally:
            if locked:
                self._hook_lock.release()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.strategy is not None:
            self._in_on_stop = True  # orders from on_stop (an unwind) still pass the rails
            try:
                async with asyncio.timeout(30):
                    await self.strategy.on_stop()
            except Exception:
                log.exception("strategy=%s on_stop failed", self.name)
            finally:
                self._in_on_stop = False
        if self.strategy is not None and (self.risk.cancel_on_exit or self.exit_code != EXIT_OK):
            for name in self.connectors:
                try:
                    async with asyncio.timeout(15):
                        n = await self._sweep(name)
                    log.info("strategy=%s cancelled %s orders on %s", self.name, n, name)
                except (BybitkitError, TimeoutError) as exc:
                    log.error("strategy=%s cancel on exit failed on %s: %s", self.name, name, exc)
        if self.killed is not None and self.risk.flatten_on_kill:
            await self._flatten()
        if self._pumps:
            await asyncio.sleep(0.3)  # the last cancels and fills reach the pumps: counted
        pumps = [t for t in self._pumps if not t.done()]
        for t in pumps:
            t.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await self._stop_control()
        for c in reversed(self._opened):
            try:
                await c.stop()
            except Exception:
                log.exception("connector %s failed to stop", c.connector_id)
        self._opened.clear()
        if self._own_store and self.store is not None:
            self.store.close()
        self.state = "stopped"
        log.info(
            "strategy=%s stopped (%s) exit=%s orders=%s fills=%s",
            self.name, self.stop_reason, self.exit_code, self.stats.orders, self.stats.fills,
        )  # fmt: skip

    # -- status and control ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot: equity, PnL, balances, orders, positions, book freshness."""
        w = self.watch
        conns: dict[str, Any] = {}
        for name, c in self.connectors.items():
            books = {}
            for pair in self.pairs(name) if name in self.config.connectors else []:
                b = c.books.get(pair)
                if b is None:
                    continue
                bid, ask = b.best_bid(), b.best_ask()
                books[pair] = {
                    "valid": b.is_valid,
                    "stale": b.is_stale,
                    "age_s": round(b.age, 3) if b.age != float("inf") else None,
                    "u": b.u,
                    "bid": str(bid[0]) if bid else None,
                    "ask": str(ask[0]) if ask else None,
                }
            positions = [
                {
                    "pair": p.pair,
                    "side": p.side.value if p.side else None,
                    "size": str(p.size),
                    "entry_price": str(p.entry_price),
                    "unrealised_pnl": str(p.unrealised_pnl),
                }
                for p in getattr(c, "positions_cache", {}).values()
                if p.size
            ]
            conns[name] = {
                "connector": c.connector_id,
                "private_up": c.private_up if c.credentials is not None else None,
                "dcp": self.dcp_active.get(name),
                "books": books,
                "balances": {
                    coin: {"total": str(b.total), "available": str(b.available)}
                    for coin, b in c.balances_cache.items()
                    if b.total
                },
                "open_orders": [
                    {
                        "client_order_id": o.client_order_id,
                        "pair": o.pair,
                        "side": o.side.value,
                        "type": o.order_type.value,
                        "price": str(o.price) if o.price is not None else None,
                        "amount": str(o.amount),
                        "filled": str(o.filled),
                        "state": o.state.value,
                    }
                    for o in c.open_orders()
                ],
                "positions": positions,
            }
        s = self.stats
        return {
            "name": self.name,
            "strategy": self.config.strategy,
            "pid": os.getpid(),
            "state": self.state,
            "started_ms": self.started_ms,
            "uptime_s": round(time.time() - self.started_ms / 1000, 1) if self.started_ms else 0,
            "killed": self.killed,
            "equity": _s(w.last),
            "start_equity": _s(w.start),
            "peak_equity": _s(w.peak),
            "pnl": _s(w.pnl),
            "orders": s.orders,
            "fills": s.fills,
            "volume": str(s.volume),
            "fees": {k: str(v) for k, v in s.fees.items()},
            "funding": str(s.funding),
            "refused": dict(s.refused),
            "rejected": s.rejected,
            "connectors": conns,
        }

    async def _start_control(self) -> None:
        """A loopback TCP server for ``bybitkit status/stop``; its port and a token are in the
        state file ``<BYBITKIT_HOME>/run/<name>.json`` (mode 0600)."""
        d = run_dir(self.home)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / f"{self.name}.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
                alive = pid_alive(int(old.get("pid", 0)))
            except (ValueError, OSError):
                alive = False
            if alive and int(old["pid"]) != os.getpid():
                raise ConfigError(
                    f"a strategy named {self.name!r} is already running (pid {old['pid']}); "
                    "stop it first or give this one another name"
                )
        self._server = await asyncio.start_server(self._serve_client, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(
                {
                    "name": self.name,
                    "strategy": self.config.strategy,
                    "pid": os.getpid(),
                    "host": "127.0.0.1",
                    "port": port,
                    "token": self._token,
                    "started_ms": self.started_ms,
                },
                fh,
            )
        tmp.replace(path)
        self._state_file = path

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(5):
                line = await reader.readline()
            try:
                req = json.loads(line)
            except ValueError:
                req = {}
            if not isinstance(req, dict) or not secrets.compare_digest(
                str(req.get("token", "")), self._token
            ):
                answer: dict[str, Any] = {"ok": False, "error": "bad token"}
            elif req.get("cmd") == "status":
                answer = {"ok": True, "status": self.status()}
            elif req.get("cmd") == "stop":
                self.request_stop("stop requested (bybitkit stop)")
                answer = {"ok": True, "stopping": True}
            else:
                answer = {"ok": False, "error": f"unknown command {req.get('cmd')!r}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _stop_control(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._state_file.unlink()
            self._state_file = None


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def params_schema(cls: type[ScriptStrategy]) -> dict[str, Any]:
    """The JSON schema of a strategy's params (for ``--help`` texts and docs)."""
    return msgspec.json.schema(cls.Params)
