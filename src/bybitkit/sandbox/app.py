"""The sandbox as one object: exchange, simulated market, REST and WebSocket server, controls.

    async with Sandbox(seed=7) as sb:
        creds = sb.create_account()                     # 100k USDT, 100k USDC, 1 BTC, 10 ETH
        async with RestClient(sb.environment, creds) as rest: ...

It serves on 127.0.0.1 (loopback only), on a free port unless one is given. Controls and faults
are methods here and, for bots in other processes, a small admin REST under ``/sandbox/`` that
is clearly not Bybit's (see :mod:`bybitkit.sandbox.admin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from bybitkit.errors import ConfigError, ValidationError
from bybitkit.matching import Side
from bybitkit.money import fmt, to_decimal
from bybitkit.sandbox.accounts import DEFAULT_BALANCES, Account
from bybitkit.sandbox.dcp import PRODUCTS as DCP_PRODUCTS
from bybitkit.sandbox.dcp import Dcp
from bybitkit.sandbox.exchange import Exchange, Market, SandboxError, SOrder
from bybitkit.sandbox.faults import Faults
from bybitkit.sandbox.instruments import DEFAULT_INSTRUMENTS, Instrument
from bybitkit.sandbox.market import MarketSimulator
from bybitkit.sandbox.server import RestApi
from bybitkit.sandbox.streams import Streams
from bybitkit.v5.auth import Credentials, generate_rsa_key_pair
from bybitkit.v5.environments import Environment

log = logging.getLogger(__name__)


def check_loopback(host: str) -> None:
    """The sandbox serves loopback only: refuse any other address."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(f"host: the sandbox serves loopback only (127.0.0.1, ::1), got {host!r}")


class Sandbox:
    """A local Bybit V5 exchange."""

    def __init__(
        self,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        instruments: Sequence[Instrument] = DEFAULT_INSTRUMENTS,
        simulate: bool = True,
    ) -> None:
        check_loopback(host)
        if speed <= 0:
            raise ConfigError(f"speed: expected a positive factor, got {speed}")
        self.seed = seed
        self.host = host
        self.port = port
        self.speed = speed
        self.simulate = simulate
        self.started_ms = time.time_ns() // 1_000_000
        self.exchange = Exchange(instruments, seed=seed, start_ms=self.started_ms)
        self.faults = Faults()
        self.dcp = Dcp(self.exchange)
        # Without simulation the book is laid once, frozen (a touch spread of two ticks).
        self.sim = MarketSimulator(self.exchange, seed=seed, speed=speed, frozen=not simulate)
        self.rest = RestApi(self)
        self.streams = Streams(self)
        self._runner: web.AppRunner | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._funding: asyncio.Task[None] | None = None
        self.rest_url = ""
        self.ws_url = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        from bybitkit.sandbox.admin import add_admin_routes

        app = web.Application(client_max_size=1 << 20)
        for path in ("/v5/public/spot", "/v5/public/linear", "/v5/private", "/v5/trade"):
            app.router.add_get(path, self.streams.handle)
        add_admin_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.dcp.start()
        port = runner.addresses[0][1]
        self.port = port
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.rest_url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}"
        self._publisher = asyncio.create_task(self.streams.run(), name="sandbox-publisher")
        self._funding = asyncio.create_task(self._funding_loop(), name="sandbox-funding")
        await self.sim.start()  # frozen without simulation: only controlled moves act
        log.info("sandbox listening rest=%s seed=%d speed=%s", self.rest_url, self.seed, self.speed)

    async def stop(self) -> None:
        await self.sim.stop()
        for name in ("_publisher", "_funding"):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.dcp.close()  # before the connections close: no countdown starts or fires now
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.streams.close_all()
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def environment(self) -> Environment:
        """The environment to hand to clients (``bybitkit.connect``, ``RestClient``)."""
        if not self.rest_url:
            raise ConfigError("the sandbox is not started")
        return Environment.custom(self.rest_url, self.ws_url, name="sandbox")

    # -- accounts -------------------------------------------------------------------------------

    def create_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        key_type: str = "hmac",
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        read_only: bool = False,
        ips: Sequence[str] = ("*",),
        expires_at_ms: int | None = None,
        can_trade: bool = True,
        can_withdraw: bool = False,
    ) -> Credentials:
        """A new unified account with ``balances`` (default: 100,000 USDT, 100,000 USDC, 1 BTC,
        10 ETH) and one API key; returns its credentials (for an RSA key, the secret is the
        private key in PEM).

        The key answers as Bybit's would: ``read_only`` or ``can_trade=False`` keys get
        ``10005`` on every write (orders, leverage, modes); a key bound to ``ips`` (not ``"*"``)
        gets ``10010`` from any other address; past ``expires_at_ms`` every call gets ``33004``;
        ``can_withdraw`` adds ``Withdraw`` to the key's ``Wallet`` permissions in
        ``/v5/user/query-api`` (the sandbox has no withdrawals)."""
        if key_type not in ("hmac", "rsa"):
            raise ConfigError(f"key_type: expected 'hmac' or 'rsa', got {key_type!r}")
        if api_key is not None and api_key in self.exchange.keys:
            raise ConfigError(f"api_key: {api_key!r} is already registered")
        account = self.exchange.new_account()
        for coin, amount in (balances if balances is not None else DEFAULT_BALANCES).items():
            value = to_decimal(amount, f"balances[{coin}]")
            if value < 0:
                raise ConfigError(f"balances[{coin}]: expected >= 0, got {fmt(value)}")
            account.credit(coin, value)
        opts: dict[str, Any] = {
            "read_only": read_only,
            "ips": tuple(ips),
            "expires_at_ms": expires_at_ms,
            "can_trade": can_trade,
            "can_withdraw": can_withdraw,
        }
        if key_type == "rsa":
            private_pem, public_pem = generate_rsa_key_pair()
            key = account.add_rsa_key(public_pem, api_key, **opts)
            secret = private_pem
        else:
            key = account.add_hmac_key(api_key, api_secret, **opts)
            assert key.secret is not None
            secret = key.secret
        self.exchange.register_key(account, key)
        return Credentials(key.key, secret)

    def set_fee_rates(
        self,
        api_key: str,
        category: str,
        maker: Decimal | str,
        taker: Decimal | str,
    ) -> None:
        """Set an account's fee rates for a category (a negative maker rate is a rebate)."""
        if category not in ("spot", "linear"):
            raise ConfigError(f"category: expected spot or linear, got {category!r}")
        self.account_of(api_key).fees[category] = (
            to_decimal(maker, "maker"),
            to_decimal(taker, "taker"),
        )

    def enable_dcp(self, api_key: str, products: Iterable[str] = DCP_PRODUCTS) -> None:
        """Turn disconnect cancel-all on for an account's ``products`` (``SPOT``, ``DERIVATIVES``,
        ``OPTIONS``; default all three), as Bybit's account manager does (it is not self-service
        on Bybit). Until the account sets a window with ``/v5/order/disconnected-cancel-all`` it is
        10 s. An account never enabled gets an empty ``query-dcp-info`` and no cancel-all."""
        account = self.account_of(api_key)
        wanted = [products] if isinstance(products, str) else list(products)
        bad = [p for p in wanted if p not in DCP_PRODUCTS]
        if bad:
            raise ConfigError(f"products: expected SPOT, DERIVATIVES or OPTIONS, got {bad[0]!r}")
        account.dcp_enabled.update(wanted)

    def dcp_status(self, api_key: str) -> dict[str, dict[str, Any]]:
        """An account's DCP state per product: ``enabled``, ``window`` (s), ``connections`` (live
        private connections subscribed to its ``dcp.*`` topic) and ``countdown`` (seconds left
        before the cancel-all, or None)."""
        return self.dcp.status(self.account_of(api_key))

    def account_of(self, api_key: str) -> Account:
        entry = self.exchange.keys.get(api_key)
        if entry is None:
            raise ConfigError(f"api_key: no sandbox account has key {api_key!r}")
        return entry[0]

    # -- controls -------------------------------------------------------------------------------

    def freeze(self) -> None:
        """Stop the random walk, the random takers and the queue churn (controls still act)."""
        self.sim.freeze()

    def resume(self) -> None:
        self.sim.resume()

    def move_mid(
        self, symbol: str, price: Decimal | str, duration: float = 0.0, *, category: str = "spot"
    ) -> None:
        """Move a market's mid to ``price`` over ``duration`` seconds (the book trades through)."""
        self._call(self.sim.move_mid, category, symbol, to_decimal(price, "price"), duration)

    def set_ws_idle_timeout(self, seconds: float) -> None:
        """How long a WebSocket connection may send nothing before it is closed (default 600 s,
        as on Bybit; a private or trade connection's ``?max_active_time=`` overrides it). A
        short one lets a test see a client that vanished without closing its socket cut, and
        DCP fire for it."""
        if not seconds > 0:
            raise ValidationError("seconds", "a positive number of seconds", seconds)
        self.streams.idle_timeout = float(seconds)

    def set_price_band(
        self,
        symbol: str,
        buy_limit: Decimal | str | None,
        sell_limit: Decimal | str | None = None,
        *,
        category: str = "spot",
    ) -> None:
        """Pin a market's price band (``buyLmt``, ``sellLmt``) instead of the one derived from
        the index price; ``None`` returns to the derived band. Orders and the ``priceLimit``
        topic follow it."""
        market = self.market(symbol, category)
        if buy_limit is None:
            market.band_override = None
            return
        buy = to_decimal(buy_limit, "buy_limit")
        sell = to_decimal(sell_limit, "sell_limit")
        for name, value in (("buy_limit", buy), ("sell_limit", sell)):
            if value <= 0 or value % market.inst.tick_size:
                tick = market.inst.tick_size
                raise ValidationError(name, f"a positive multiple of {tick}", value)
        market.band_override = (buy, sell)

    def inject_trade(
        self,
        symbol: str,
        side: str,
        qty: Decimal | str,
        price: Decimal | str | None = None,
        *,
        category: str = "spot",
    ) -> None:
        """A house taker order that really trades (against users' orders too)."""
        px = to_decimal(price, "price") if price is not None else None
        self._call(self.sim.inject_trade, category, symbol, side, to_decimal(qty, "qty"), px)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except SandboxError as err:
            raise ConfigError(err.msg) from None

    def market(self, symbol: str, category: str = "spot") -> Market:
        try:
            return self.exchange.market(category, symbol)
        except SandboxError as err:
            raise ConfigError(f"{category} {symbol}: {err.msg}") from None

    def book(
        self, symbol: str, category: str = "spot", depth: int = 50
    ) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """The sandbox's own aggregated book: ``{"bids": [(price, size)], "asks": [...]}``."""
        m = self.market(symbol, category)
        inst = m.inst
        return {
            "bids": [
                (inst.from_ticks(p), inst.from_lots(q)) for p, q in m.book.levels(Side.BUY, depth)
            ],
            "asks": [
                (inst.from_ticks(p), inst.from_lots(q)) for p, q in m.book.levels(Side.SELL, depth)
            ],
        }

    def balances(self, api_key: str) -> dict[str, dict[str, Decimal]]:
        """An account's coins: ``wallet``, ``locked`` and ``free``."""
        account = self.account_of(api_key)
        return {
            coin: {"wallet": c.wallet, "locked": c.locked, "free": c.free}
            for coin, c in account.coins.items()
        }

    def orders(self, api_key: str, *, open_only: bool = False) -> list[dict[str, Any]]:
        """An account's orders as Bybit shows them (newest first)."""
        account = self.account_of(api_key)
        hist = self.exchange.history.get(account.uid)
        orders: list[SOrder] = list(hist.orders) if hist else []
        return [
            dict(o.to_wire(), category=o.category)
            for o in reversed(orders)
            if o.is_open or not open_only
        ]

    def executions(self, api_key: str) -> list[dict[str, Any]]:
        """An account's executions as Bybit shows them (newest first)."""
        account = self.account_of(api_key)
        hist = self.exchange.history.get(account.uid)
        return list(reversed(hist.executions)) if hist else []

    def funding_interval_ms(self, market: Market) -> int:
        """The funding interval of a market in wall-clock ms (``fundingInterval`` / speed)."""
        return max(1000, int(market.inst.funding_interval_min * 60_000 / self.speed))

    def next_funding_ms(self, market: Market) -> int:
        nxt = self.exchange.deriv.next_funding.get(market.inst.symbol)
        if nxt is None:
            interval = self.funding_interval_ms(market)
            now = time.time_ns() // 1_000_000
            nxt = self.exchange.deriv.next_funding[market.inst.symbol] = (
                now // interval + 1
            ) * interval
        return nxt

    def funding_info(self, market: Market) -> dict[str, str]:
        """Funding fields of a linear ticker (the funding schedule follows ``speed``)."""
        inst = market.inst
        return {
            "fundingRate": fmt(self.exchange.deriv.funding_rate(market)),
            "nextFundingTime": str(self.next_funding_ms(market)),
            "fundingIntervalHour": str(max(1, inst.funding_interval_min // 60)),
        }

    async def _funding_loop(self) -> None:
        """Settle funding on schedule: every interval (scaled by speed), on the boundary."""
        while True:
            await asyncio.sleep(0.25)
            now = time.time_ns() // 1_000_000
            for market in self.exchange.markets.values():
                if market.inst.category != "linear":
                    continue
                due = self.next_funding_ms(market)
                if now >= due:
                    self.exchange.deriv.next_funding[market.inst.symbol] = (
                        due + self.funding_interval_ms(market)
                    )
                    self.exchange.deriv.settle_funding(market, due)
                    self.exchange.flush()

    def set_funding_rate(self, symbol: str, rate: Decimal | str) -> None:
        """Set the funding rate of a linear market (used from the next settlement on)."""
        market = self.market(symbol, "linear")
        value = to_decimal(rate, "rate")
        inst = market.inst
        if not inst.lower_funding_rate <= value <= inst.upper_funding_rate:
            raise ConfigError(
                f"rate: expected within [{fmt(inst.lower_funding_rate)}, "
                f"{fmt(inst.upper_funding_rate)}], got {fmt(value)}"
            )
        self.exchange.deriv.funding_rates[inst.symbol] = value

    def settle_funding(self, symbol: str) -> int:
        """Settle one funding round of a linear market now; returns the positions settled."""
        market = self.market(symbol, "linear")
        n = self.exchange.deriv.settle_funding(market)
        self.exchange.flush()
        return n

    def set_leverage(self, api_key: str, symbol: str, leverage: Decimal | str) -> None:
        """Control: set an account's leverage on a linear symbol (as set-leverage does)."""
        account = self.account_of(api_key)
        lev = fmt(to_decimal(leverage, "leverage"))
        try:
            self.exchange.deriv.set_leverage(
                account, {"symbol": symbol, "buyLeverage": lev, "sellLeverage": lev}
            )
        except SandboxError as err:
            if err.code != 110043:
                raise ConfigError(err.msg) from None
        self.exchange.flush()

    def positions(self, api_key: str) -> list[dict[str, Any]]:
        """An account's non-flat linear positions as Bybit shows them."""
        account = self.account_of(api_key)
        rows = []
        for coin in ("USDT", "USDC"):
            rows += self.exchange.deriv.position_list(
                account, {"category": "linear", "settleCoin": coin}
            )["list"]
        return rows

    # -- faults ---------------------------------------------------------------------------------

    def drop_ws(self) -> None:
        """Close every WebSocket connection now (public, private, trade)."""
        self.faults.injected += 1
        self.streams.drop_all()

    def drop_private_ws(self, api_key: str | None = None, *, refuse_for: float = 0.0) -> int:
        """Close the private WebSocket connections (of ``api_key``'s account only, when given)
        and refuse every new private connection for ``refuse_for`` seconds (HTTP 503 at the
        handshake, so clients keep retrying). Returns the number of connections closed."""
        if refuse_for < 0:
            raise ConfigError(f"refuse_for: expected >= 0, got {refuse_for}")
        uid = self.account_of(api_key).uid if api_key is not None else None
        self.faults.injected += 1
        return self.streams.drop_private(uid, refuse_for)

    def pause_pushes(self, seconds: float) -> None:
        """Stop all WebSocket pushes for ``seconds`` (private ones are delivered afterwards)."""
        self.faults.pause_pushes(seconds)

    def book_gap(self, symbol: str, category: str = "spot") -> None:
        """Skip one orderbook update id on the next message of every depth of that market."""
        m = self.market(symbol, category)
        for depth in (1, 50, 200, 1000):
            self.streams.book_stream(m, depth).gap_next = True
        self.faults.injected += 1

    def book_reset(self, symbol: str, category: str = "spot") -> None:
        """Restart every book stream of that market with a snapshot at ``u = 1``."""
        m = self.market(symbol, category)
        for depth in (1, 50, 200, 1000):
            self.streams.book_stream(m, depth).reset_next = True
        self.faults.injected += 1

    def rest_errors(self, kind: str, count: int = 1, path: str | None = None) -> None:
        """Answer the next ``count`` REST calls (to ``path`` only, when given) with ``kind``:
        "10002", "10006", "403" or "5xx"."""
        try:
            self.faults.add_rest_errors(kind, count, path)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def delay_responses(
        self, seconds: float, count: int | None = None, path: str | None = None
    ) -> None:
        """Delay the next ``count`` REST answers (None: all; to ``path`` only, when given) by
        ``seconds`` after processing (longer than the client's timeout: the request is executed
        and the client times out); ``delay_responses(0)`` ends it."""
        self.faults.set_delay(seconds, count, path)

    def drop_next_create(self, count: int = 1) -> None:
        """Execute the next order create(s), REST or trade WS, then drop the answer."""
        self.faults.drop_next_create += count
        self.faults.injected += 1

    def drop_private_after_fill(self) -> None:
        """Close the private streams of the account right after its next fill is pushed."""
        self.faults.drop_private_after_fill += 1
        self.faults.injected += 1
