"""Tick to order: from a book frame arriving on our WebSocket to the signed order request leaving.

Set-up. A sandbox runs in this process (127.0.0.1, ``simulate=False``: the synthetic market is
frozen, only the driver below changes the book), spot ``BTCUSDT``, stream ``orderbook.50``.
Rate limits are lifted on both sides (the sandbox's per-UID limits, the client's per-endpoint
windows and IP budget): on Bybit a requoter this busy would be throttled; here the hot path is
measured, not the exchange's quota.

The driver (sandbox side). The sandbox's periodic book publisher (every 20 ms) is switched off
and the driver publishes instead, one frame per change: each step moves the best bid by one
tick, in a sawtooth between one tick inside the frozen two-tick spread and three ticks under the
house's best bid (going down it cancels the top bid level: the house's order there, or its own;
going up it puts a house bid back), then has the depth-50 stream compute its delta
(``BookStream.tick``) and hands the text to every subscribed connection's writer. So **every
frame moves the best bid**, nothing else publishes book frames, and a frame also carries what
our own order's amends changed since the previous one. The driver's own cost is reported.

Three consumers take turns on that one stream (exactly one is subscribed at a time; interleaved
rounds, as in ``_common.compare``):

* ``bare``: a plain aiohttp WebSocket client (``ws_connect`` with the options ``WsSession`` uses)
  that only receives and decodes (``msgspec.json.decode``);
* ``rest`` and ``trade_ws``: the requoting strategy on a spot connector
  (``bybitkit.connect("sandbox", ...)``) with ``order_entry="rest"`` and with ``order_entry="ws"``
  (orders over the trade WebSocket), one sandbox account each.

The strategy (public connector API only): one resting PostOnly bid (``limit_maker``, 0.001 BTC)
10 ticks under the best bid (more than the sawtooth's 4, so it is never the top and never
fills); on every change of the best bid it amends its price (a new order replaces it if the
amend finds it ended). At most one request in flight: a change that comes while one is out
becomes the newest target, sent when the answer arrives (intermediate targets are dropped). The
connector has no per-update book hook (its events only say valid/invalid), so the strategy
chains the public stream's ``on_message`` (``ex.public.on_message``, public attributes): it runs
right after the connector has applied the frame to its ``OrderBook``, reads ``best_bid()`` and
wakes its requote task (an ``asyncio.Event``: the stream callback is synchronous and
``amend_order`` a coroutine, so this costs one event-loop hop).

Timestamps, ``time.perf_counter_ns()`` (one process, one clock), taken by wrappers installed
here only (nothing under ``src/`` is changed):

* received: entry of ``WsSession._on_text`` on the connector's public session (``ws.receive()``
  has returned the text; nothing decoded yet). The bare loop: right after its ``ws.receive()``
  returned a text frame, the same point;
* decoded: the decoded message reaches ``on_message`` (after ``decode_frame``); book applied:
  the connector's ``_on_public`` has updated the book; decided: the strategy has read the top
  and set its target. The bare loop's decoded: after ``msgspec.json.decode``;
* woke: the requote task runs and calls ``amend_order``;
* REST, handed to aiohttp: entry of ``RestClient._send`` (body built and signed;
  ``session.request`` comes next); REST, to the socket: aiohttp's ``on_request_chunk_sent`` trace
  (a ``TraceConfig`` on the client session), right before aiohttp writes the request head and
  body to the transport;
* trade WS: entry of ``ClientWebSocketResponse.send_str`` for an ``order.*`` request (aiohttp then
  frames, masks and writes it to the transport in the same call).

**Tick to order** is received -> to the socket (REST) and received -> ``send_str`` (trade WS);
the REST figure up to the handoff to aiohttp is given too, and a breakdown by stage.

Part 1, latency. Paced: a frame is sent at most every ``1/--rate`` s and only once the previous
frame's request has been answered, so every frame finds the requoter idle and starts exactly one
request: this is the hot path, with no queueing behind a request in flight. Frames are thus
isolated (a millisecond or more apart, with the sandbox's work in between), so these are
cold-cache costs, as a live feed sees them; warm loops are several times faster. Per consumer
p50 / p99 in microseconds over ``--frames`` frames (split over ``--rounds`` interleaved rounds),
and the ratios of ours to the bare loop's received -> decoded.

Part 2, frames per second sustained without backlog. Open loop at a rate R: frame ``i`` of a
step is *due* at ``t0 + i/R`` and the driver sends every due frame (above ~1000/s in bursts of
about R/1000, the event loop's timer resolution). Three lags per frame, all from its due time:

* send lag: until the driver sent it (in one process the driver shares the thread: when the
  thread is saturated the driver itself falls behind its schedule);
* frame lag: until it was handled: bare, decoded; requoter, applied to the book and the
  requote decided (sent, or kept as the newest target);
* quote lag (requoter): until the first request started after it was handled left (REST: to
  the socket; trade WS: ``send_str``). Frames after which no request starts (the quote already
  matches) have none.

**Backlog**: a lag grows. R is **sustained** when every frame is handled and, for each of the
three lags, the median over the last quarter of the step's frames exceeds the median over its
first quarter by at most 2 ms. A consumer slower than R falls behind by ``1/capacity - 1/R``
per frame, which over the half step between those quarters adds up to far more than 2 ms
(a step lasts ``--step-seconds``, 0.5 s by default); a bounded lag does not grow. Each step
starts quiet (0.1 s pause, nothing in flight). The rate doubles from 500/s until a step fails
(a failure is confirmed by repeating it), then two geometric bisections narrow it (to within
19%). Reported: the highest sustained rate per consumer and its ratio to the bare loop's, the
lags there, the requests per second the requoter sent, the whole process's CPU time per frame
and that CPU time less the driver's (what the consumer, the sandbox's sends to it and its
requests cost).

Left out, or to keep in mind:

* The sandbox shares the thread: producing frames (the house order, the stream's diff, JSON, the
  server's WebSocket send), answering the requests and pushing private order updates all run
  on the consumer's event loop and CPU. The frames/s figures are those of the whole in-process
  system (the bare loop's too, and the driver takes most of it); hence the CPU split.
* Loopback only, so no network latency: the figures are our CPU path, plus event-loop hops.
* Instrumentation: thin wrappers (``_on_text``, ``on_message``, ``_send``, ``send_str``), a few
  ``perf_counter_ns`` calls in the strategy, and the aiohttp trace (with a trace config aiohttp
  runs its trace hooks on every request: a few microseconds on the REST path, included in the
  REST figures).
* The private stream's order updates (one per amend) are handled by the connector as usual,
  whenever they arrive; they are not timed.

Options: ``--frames N`` (frames per consumer in part 1, default 2,000; part 2 steps hold at
least 200 and at most ``4 N`` frames), ``--rate`` (part 1 pacing, default 500/s), ``--rounds``,
``--step-seconds``, ``--max-rate``, ``--skip-throughput``. About 40 s with the defaults. Run it
as ``python -m benchmarks.bench_tick_to_order`` (or through ``benchmarks/run.py``). Writes
``benchmarks/results/tick_to_order.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, Protocol

import aiohttp
import msgspec
import yarl

import bybitkit
from benchmarks._common import write_results
from bybitkit.connectors.base import BybitConnector
from bybitkit.errors import BybitkitError, OrderNotActive, OrderNotFound
from bybitkit.market import OrderBook
from bybitkit.sandbox import Sandbox
from bybitkit.sandbox.exchange import SOrder
from bybitkit.trading.types import Order
from bybitkit.v5.ratelimit import LimitKey, RateLimiter
from bybitkit.v5.schemas import OrderbookMessage

SYMBOL = "BTCUSDT"
PAIR = "BTC-USDT"
DEPTH = 50
AMOUNT = "0.001"
OFFSET_TICKS = 10  # our bid rests this many ticks under the best bid: never the top, never filled
AMPLITUDE = 4  # the driver's sawtooth, in ticks (< OFFSET_TICKS: our bid never becomes the top)
HOUSE_LOTS = 50_000  # the size of the bids the driver puts back: 0.05 BTC
ORDER_PATHS = frozenset({"/v5/order/create", "/v5/order/amend", "/v5/order/cancel"})
BACKLOG_SLACK_MS = 2.0
SETTLE_TIMEOUT = 30.0

perf_ns = time.perf_counter_ns


# -- timestamps ----------------------------------------------------------------------------------


class Probe:
    """One consumer's timestamps (``perf_counter_ns``), by the frame's update id ``u``."""

    def __init__(self) -> None:
        self.recv_now = 0  # set on receipt of every frame, before decoding
        self.decoded_now = 0  # set when the decoded frame is handed to ``on_message``
        self.book_now = 0  # set when the connector has applied it to its book
        self.recv: dict[int, int] = {}
        self.decoded: dict[int, int] = {}
        self.book: dict[int, int] = {}
        self.applied: dict[int, int] = {}  # requoter: book updated, decision taken; bare: decoded
        self.woke: dict[int, int] = {}
        self.handoff: dict[int, int] = {}  # REST: to aiohttp; trade WS: send_str
        self.wire: dict[int, int] = {}  # REST: to the socket
        self.acked: dict[int, int] = {}
        self.current = 0  # u of the frame whose request is being sent (0: none)

    def frame(self, u: int) -> None:
        self.applied[u] = perf_ns()
        self.recv[u] = self.recv_now
        self.decoded[u] = self.decoded_now
        self.book[u] = self.book_now

    def request_started(self, u: int) -> None:
        self.current = u
        self.woke[u] = perf_ns()

    def request_done(self) -> None:
        if self.current:
            self.acked[self.current] = perf_ns()
        self.current = 0

    def stamp_handoff(self) -> None:
        u = self.current
        if u and u not in self.handoff:
            self.handoff[u] = perf_ns()

    def stamp_wire(self) -> None:
        u = self.current
        if u and u not in self.wire:
            self.wire[u] = perf_ns()

    def clear(self) -> None:
        for d in (
            self.recv,
            self.decoded,
            self.book,
            self.applied,
            self.woke,
            self.handoff,
            self.wire,
            self.acked,
        ):
            d.clear()


class _Unlimited(RateLimiter):
    """The client limiter without its per-endpoint windows (and an IP budget set out of reach by
    the caller): the benchmark measures the hot path, not Bybit's quotas."""

    def limit_for(self, key: LimitKey) -> int | None:
        return None


def instrument_connector(ex: BybitConnector, probe: Probe) -> Callable[[], None]:
    """Stamp receipt (``_on_text``) and decoding (``on_message``, around the strategy's hook) on
    the public session, and the REST handoff of order requests; returns the undo. Installed
    after the strategy started. (The trade WebSocket's ``send_str``: :func:`patch_ws_send`.)"""
    session = ex.public
    assert session is not None
    rest = ex.rest
    on_text = session._on_text
    on_message = session.on_message
    send = rest._send
    assert on_message is not None

    def timed_on_text(raw: str) -> None:
        probe.recv_now = perf_ns()
        on_text(raw)

    def timed_on_message(msg: Any) -> None:
        probe.decoded_now = perf_ns()
        on_message(msg)

    async def timed_send(
        method: str, url: yarl.URL, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, Mapping[str, str]]:
        if url.path in ORDER_PATHS:
            probe.stamp_handoff()
        return await send(method, url, body, headers)

    session._on_text = timed_on_text  # type: ignore[method-assign]
    session.on_message = timed_on_message
    rest._send = timed_send  # type: ignore[method-assign]

    def undo() -> None:
        del session._on_text
        session.on_message = on_message
        del rest._send

    return undo


def wire_trace(probe: Probe) -> aiohttp.TraceConfig:
    """aiohttp calls this right before it writes an order request to the transport."""

    async def on_chunk(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestChunkSentParams,
    ) -> None:
        if params.url.path in ORDER_PATHS:
            probe.stamp_wire()

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_chunk)
    return trace


def patch_ws_send(probe: Probe) -> Callable[[], None]:
    """Stamp the entry of ``ClientWebSocketResponse.send_str`` for trade-WS order requests."""
    cls = aiohttp.ClientWebSocketResponse
    original = cls.send_str

    async def send_str(self: Any, data: str, compress: int | None = None) -> None:
        if probe.current and '"op":"order.' in data:
            probe.stamp_handoff()
        await original(self, data, compress)

    cls.send_str = send_str  # type: ignore[method-assign]

    def undo() -> None:
        cls.send_str = original  # type: ignore[method-assign]

    return undo


# -- the strategy --------------------------------------------------------------------------------


class Requoter:
    """One resting PostOnly bid ``offset_ticks`` under the best bid, moved on every change of the
    best bid. Public connector API only (the probe is the benchmark's)."""

    def __init__(
        self,
        ex: BybitConnector,
        pair: str,
        amount: str,
        offset_ticks: int,
        probe: Probe | None = None,
    ) -> None:
        self.ex = ex
        self.pair = pair
        self.amount = amount
        self.offset = offset_ticks * ex.trading_rules(pair).tick_size
        self.probe = probe
        self.book: OrderBook | None = None
        self.order: Order | None = None
        self.requests = 0
        self.replaced = 0
        self.errors: list[str] = []
        self.handled_u = 0  # the last frame applied and acted on
        self._last_bid: Decimal | None = None
        self._target: Decimal | None = None  # the price we want
        self._target_u = 0
        self._quoted: Decimal | None = None  # the price of the last request answered
        self._busy = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._handler: Callable[[Any], None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        book = self.book = await self.ex.order_book(self.pair)
        top = book.best_bid()
        assert top is not None
        self._last_bid = top[0]
        price = top[0] - self.offset
        self.order = await self.ex.place_order(self.pair, "buy", "limit_maker", self.amount, price)
        self._target = self._quoted = price
        session = self.ex.public
        assert session is not None
        self._handler = session.on_message
        session.on_message = self._on_message
        self._task = asyncio.create_task(self._run(), name=f"requoter-{self.ex.order_entry}")

    async def stop(self) -> None:
        session = self.ex.public
        if session is not None and self._handler is not None:
            session.on_message = self._handler
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.order is not None and self.order.is_open:
            with contextlib.suppress(BybitkitError):
                await self.ex.cancel_order(self.order.client_order_id)

    @property
    def idle(self) -> bool:
        return not self._busy and not self._wake.is_set()

    def _on_message(self, msg: Any) -> None:
        handler = self._handler
        if handler is not None:
            handler(msg)  # the connector applies the frame to its book
        if self.probe is not None:
            self.probe.book_now = perf_ns()
        if not isinstance(msg, OrderbookMessage):
            return
        book = self.book
        if book is None or msg.data.s != book.symbol:
            return
        u = msg.data.u
        if book.is_usable:
            top = book.best_bid()
            if top is not None and top[0] != self._last_bid:
                self._last_bid = top[0]
                self._target = top[0] - self.offset
                self._target_u = u
                if not self._busy:
                    self._wake.set()
        if self.probe is not None:
            self.probe.frame(u)
        self.handled_u = u
        self._progress.set()

    async def _run(self) -> None:
        probe = self.probe
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._target is not None and self._target != self._quoted:
                price = self._target
                if probe is not None:
                    probe.request_started(self._target_u)
                self._busy = True
                try:
                    await self._requote(price)
                except BybitkitError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                finally:
                    self._busy = False
                    if probe is not None:
                        probe.request_done()
                self._quoted = price  # also after an error: never retried in a loop
            self._progress.set()

    async def _requote(self, price: Decimal) -> None:
        order = self.order
        self.requests += 1
        if order is not None and order.is_open:
            try:
                await self.ex.amend_order(order.client_order_id, price=price)
                return
            except (OrderNotActive, OrderNotFound):
                pass  # it ended (filled or cancelled): a new order replaces it
        self.replaced += 1
        self.order = await self.ex.place_order(self.pair, "buy", "limit_maker", self.amount, price)

    async def settle(self, u: int, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until frame ``u`` is handled and no request is out."""
        async with asyncio.timeout(timeout):
            while self.handled_u < u or not self.idle:
                self._progress.clear()
                await self._progress.wait()


# -- the consumers -------------------------------------------------------------------------------


class Consumer(Protocol):
    name: str
    probe: Probe

    async def attach(self, u: int) -> None: ...

    async def detach(self) -> None: ...

    async def settle(self, u: int, timeout: float = SETTLE_TIMEOUT) -> None: ...

    def requests(self) -> int: ...


class BareLoop:
    """A plain aiohttp WebSocket client on the same stream: receive and decode, nothing else."""

    def __init__(self, url: str, topic: str) -> None:
        self.name = "bare"
        self.url = url
        self.topic = topic
        self.probe = Probe()
        self.handled_u = 0
        self._progress = asyncio.Event()
        self._acks: asyncio.Queue[str] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        # The options WsSession uses.
        self._ws = await self._session.ws_connect(
            self.url,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            receive_timeout=None,
            max_msg_size=0,
        )
        self._task = asyncio.create_task(self._read(self._ws), name="bare-loop")

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        decode = msgspec.json.decode
        probe = self.probe
        recv = probe.recv
        applied = probe.applied
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                t0 = perf_ns()
                obj = decode(msg.data)
                t1 = perf_ns()
                data = obj.get("data")
                if isinstance(data, dict):
                    u = data["u"]
                    recv[u] = t0
                    applied[u] = t1
                    self.handled_u = u
                    self._progress.set()
                elif "op" in obj:
                    self._acks.put_nowait(str(obj["op"]))
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                return

    async def _op(self, op: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(msgspec.json.encode({"op": op, "args": [self.topic]}).decode())
        async with asyncio.timeout(10):
            while await self._acks.get() != op:
                pass

    async def attach(self, u: int) -> None:
        await self._op("subscribe")
        await self.settle(u)

    async def detach(self) -> None:
        await self._op("unsubscribe")

    async def settle(self, u: int, timeout: float = SETTLE_TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while self.handled_u < u:
                self._progress.clear()
                await self._progress.wait()

    def requests(self) -> int:
        return 0


class RequoterConsumer:
    """The strategy on one connector, attached to the book stream or not."""

    def __init__(self, name: str, ex: BybitConnector, requoter: Requoter, probe: Probe) -> None:
        self.name = name
        self.ex = ex
        self.requoter = requoter
        self.probe = probe
        self.topic = f"orderbook.{DEPTH}.{SYMBOL}"

    async def attach(self, u: int) -> None:
        assert self.ex.public is not None
        await self.ex.public.subscribe([self.topic])  # a new snapshot, then our frames
        await self.settle(u)

    async def detach(self) -> None:
        assert self.ex.public is not None
        await self.ex.public.unsubscribe([self.topic])

    async def settle(self, u: int, timeout: float = SETTLE_TIMEOUT) -> None:
        await self.requoter.settle(u, timeout)

    def requests(self) -> int:
        return self.requoter.requests


# -- the driver ----------------------------------------------------------------------------------


class Driver:
    """Moves the best bid by one tick per frame and publishes each frame itself.

    A sawtooth between one tick inside the spread and ``AMPLITUDE - 1`` ticks under the house's
    best bid: going down it cancels the top bid level (the house's order there, or its own),
    going up it puts one back (its own house order). The frozen simulator never re-lays its
    ladder, so nothing else changes the book."""

    def __init__(self, sb: Sandbox) -> None:
        self.exchange = sb.exchange
        self.market = sb.market(SYMBOL, "spot")
        self.stream = sb.streams.book_stream(self.market, DEPTH)
        ladder = sb.sim.state[self.market.key].bids  # the house's bids: price (ticks) -> order
        best = self.market.book.best_bid()
        assert best is not None and best + 1 not in ladder
        self.levels = [best + 1 - i for i in range(AMPLITUDE)]  # from the top down
        self.orders: dict[int, SOrder | None] = {p: ladder.get(p) for p in self.levels}
        assert all(self.orders[p] is not None for p in self.levels[1:])
        self.removed = 1  # top levels removed (the one inside the spread starts empty)
        self.down = True
        self.busy_ns = 0
        self.frames = 0

    @property
    def u(self) -> int:
        return self.stream.u

    def step(self) -> int:
        """One change of the best bid, published as one frame; returns its ``u``."""
        t = perf_ns()
        if self.removed == AMPLITUDE:
            self.down = False
        elif self.removed == 0:
            self.down = True
        if self.down:
            price = self.levels[self.removed]
            order = self.orders[price]
            assert order is not None
            self.exchange.house_cancel(order)
            self.orders[price] = None
            self.removed += 1
        else:
            self.removed -= 1
            price = self.levels[self.removed]
            self.orders[price] = self.exchange.house_order(self.market, "Buy", HOUSE_LOTS, price)
        self.exchange.flush()
        text = self.stream.tick(time.monotonic())
        assert text is not None, "the book did not change"
        for conn in list(self.stream.subscribers):
            conn.send(text)
        self.busy_ns += perf_ns() - t
        self.frames += 1
        return self.stream.u

    async def wait_subscribers(self, n: int) -> None:
        """Until exactly ``n`` connections are subscribed (the sandbox saw the (un)subscribe)."""
        for _ in range(10_000):
            if len(self.stream.subscribers) == n:
                return
            await asyncio.sleep(0.001)
        raise TimeoutError(f"{len(self.stream.subscribers)} subscribers, expected {n}")

    async def paced(self, consumer: Consumer, rate: float, n: int) -> list[int]:
        """``n`` frames, each at least ``1/rate`` after the previous one and only once the
        consumer has handled it completely (its request answered)."""
        period = 1e9 / rate
        sent: list[int] = []
        next_at: float = perf_ns()
        for _ in range(n):
            await consumer.settle(self.u)
            wait = next_at - perf_ns()
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
            next_at = perf_ns() + period
            sent.append(self.step())
        await consumer.settle(self.u)
        return sent

    async def open_loop(
        self, rate: float, n: int
    ) -> tuple[list[int], dict[int, int], dict[int, int]]:
        """``n`` frames at ``rate`` per second whatever the consumer does: frame ``i`` is due at
        ``t0 + i/rate`` and sent as soon as the driver runs at or after that time. Returns the
        frames' ``u``, their due times and their send times."""
        period = 1e9 / rate
        sent: list[int] = []
        due: dict[int, int] = {}
        at: dict[int, int] = {}
        t0 = perf_ns()
        i = 0
        while i < n:
            k = min(n, int((perf_ns() - t0) / period) + 1)
            while i < k:
                u = self.step()
                at[u] = perf_ns()
                due[u] = t0 + int(i * period)
                sent.append(u)
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, (t0 + i * period - perf_ns()) / 1e9))
        return sent, due, at


async def switch_to(driver: Driver, consumers: Sequence[Consumer], active: Consumer) -> None:
    """Subscribe ``active`` alone to the book stream."""
    for c in consumers:
        if c is not active:
            await c.detach()
    await driver.wait_subscribers(0)
    await active.attach(driver.u)
    await driver.wait_subscribers(1)
    await active.settle(driver.u)


# -- statistics ----------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary_us(values_ns: Sequence[int]) -> dict[str, float]:
    us = [v / 1000 for v in values_ns]
    return {
        "p50": quantile(us, 0.50),
        "p99": quantile(us, 0.99),
        "mean": statistics.fmean(us),
        "n": float(len(us)),
    }


def spans(probe: Probe, us: Sequence[int], start: dict[int, int], end: dict[int, int]) -> list[int]:
    return [end[u] - start[u] for u in us if u in start and u in end]


# -- part 1: latency -----------------------------------------------------------------------------


async def latency_part(
    driver: Driver,
    consumers: Sequence[Consumer],
    frames: int,
    rate: float,
    rounds: int,
) -> dict[str, Any]:
    sent: dict[str, list[int]] = {c.name: [] for c in consumers}
    seconds: dict[str, float] = {c.name: 0.0 for c in consumers}
    for c in consumers:  # warm up
        await switch_to(driver, consumers, c)
        await driver.paced(c, rate, min(200, frames))
        c.probe.clear()
    per_round = [frames // rounds + (1 if r < frames % rounds else 0) for r in range(rounds)]
    for n in per_round:
        for c in consumers:
            await switch_to(driver, consumers, c)
            t = time.perf_counter()
            sent[c.name] += await driver.paced(c, rate, n)
            seconds[c.name] += time.perf_counter() - t

    out: dict[str, Any] = {}
    for c in consumers:
        p = c.probe
        us = sent[c.name]
        stats: dict[str, Any] = {
            "frames": len(us),
            "frames_per_s": len(us) / seconds[c.name],
        }
        if c.name == "bare":
            stats["tick_to_decoded_us"] = summary_us(spans(p, us, p.recv, p.applied))
        else:
            with_request = [u for u in us if u in p.woke]
            stats["requests"] = len(with_request)
            stats["stages_us"] = {
                "received_to_decoded": summary_us(spans(p, us, p.recv, p.decoded)),
                "decoded_to_book_applied": summary_us(spans(p, us, p.decoded, p.book)),
                "book_applied_to_decided": summary_us(spans(p, us, p.book, p.applied)),
                "applied_to_woke": summary_us(spans(p, us, p.applied, p.woke)),
                "woke_to_handoff": summary_us(spans(p, us, p.woke, p.handoff)),
                "round_trip_from_handoff": summary_us(spans(p, us, p.handoff, p.acked)),
            }
            stats["tick_to_handoff_us"] = summary_us(spans(p, us, p.recv, p.handoff))
            if c.name == "rest":
                stats["stages_us"]["handoff_to_socket"] = summary_us(
                    spans(p, us, p.handoff, p.wire)
                )
                stats["tick_to_socket_us"] = summary_us(spans(p, us, p.recv, p.wire))
        out[c.name] = stats
        p.clear()
    return out


# -- part 2: frames per second sustained ---------------------------------------------------------


def _quote_lags(probe: Probe, sent: Sequence[int], due: dict[int, int]) -> list[int]:
    """Per frame: from its due time until the first request started after it was applied
    leaves (REST: to the socket; trade WS: ``send_str``). Frames after which no request starts
    (the quote already matches) have none."""
    leave = probe.wire if probe.wire else probe.handoff
    starts = sorted((probe.woke[u], leave[u]) for u in probe.woke if u in leave)
    out: list[int] = []
    j = 0
    for u in sent:
        applied = probe.applied.get(u)
        if applied is None:
            continue
        while j < len(starts) and starts[j][0] < applied:
            j += 1
        if j == len(starts):
            break
        out.append(starts[j][1] - due[u])
    return out


def _growth(values: Sequence[int]) -> float:
    """Median of the last quarter minus median of the first quarter."""
    q = max(1, len(values) // 4)
    return float(statistics.median(values[-q:]) - statistics.median(values[:q]))


async def throughput_step(
    driver: Driver, consumer: Consumer, rate: float, n: int
) -> dict[str, Any]:
    probe = consumer.probe
    await asyncio.sleep(0.1)  # a clean start: what the previous step left (private pushes) is done
    await consumer.settle(driver.u)
    probe.clear()
    requests0 = consumer.requests()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    busy0 = driver.busy_ns
    sent, due, at = await driver.open_loop(rate, n)
    send_s = time.perf_counter() - wall0
    try:
        await consumer.settle(sent[-1])
        drained = True
    except TimeoutError:
        drained = False
    cpu = time.process_time() - cpu0
    lags = [probe.applied[u] - due[u] for u in sent if u in probe.applied]
    late = [at[u] - due[u] for u in sent]  # the driver's own lateness (it shares the thread)
    quote_lags = _quote_lags(probe, sent, due)
    growth_ms = _growth(lags) / 1e6
    send_growth_ms = _growth(late) / 1e6
    quote_growth_ms = _growth(quote_lags) / 1e6 if quote_lags else 0.0
    ok = (
        drained
        and len(lags) == len(sent)
        and max(growth_ms, send_growth_ms, quote_growth_ms) <= BACKLOG_SLACK_MS
    )
    step = {
        "rate": rate,
        "frames": len(sent),
        "sent_per_s": len(sent) / send_s,
        "handled": len(lags),
        "lag_p50_ms": quantile(lags, 0.5) / 1e6 if lags else math.nan,
        "lag_p99_ms": quantile(lags, 0.99) / 1e6 if lags else math.nan,
        "lag_growth_ms": growth_ms,
        "send_lag_growth_ms": send_growth_ms,
        "quote_lag_p50_ms": quantile(quote_lags, 0.5) / 1e6 if quote_lags else None,
        "quote_lag_p99_ms": quantile(quote_lags, 0.99) / 1e6 if quote_lags else None,
        "quote_lag_growth_ms": quote_growth_ms,
        "requests_per_s": (consumer.requests() - requests0) / send_s,
        "cpu_us_per_frame": cpu / len(sent) * 1e6,
        "driver_us_per_frame": (driver.busy_ns - busy0) / len(sent) / 1000,
        "cpu_less_driver_us_per_frame": (cpu * 1e9 - (driver.busy_ns - busy0)) / len(sent) / 1000,
        "sustained": ok,
    }
    probe.clear()
    return step


async def throughput_part(
    driver: Driver,
    consumers: Sequence[Consumer],
    frames: int,
    step_seconds: float,
    max_rate: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in consumers:
        await switch_to(driver, consumers, c)
        steps: list[dict[str, Any]] = []

        async def trial(rate: float, c: Consumer = c, steps: list[dict[str, Any]] = steps) -> bool:
            n = min(4 * frames, max(200, int(rate * step_seconds)))
            step = await throughput_step(driver, c, rate, n)
            if not step["sustained"]:  # confirm a failure: the machines are noisy
                step = await throughput_step(driver, c, rate, n)
            steps.append(step)
            return bool(step["sustained"])

        good: float | None = None
        bad: float | None = None
        rate = 500.0
        while rate <= max_rate:
            if await trial(rate):
                good = rate
                rate *= 2
            else:
                bad = rate
                break
        while good is None and bad is not None and bad > 60:
            rate = bad / 2
            if await trial(rate):
                good = rate
            else:
                bad = rate
        for _ in range(2):
            if good is None or bad is None:
                break
            rate = math.sqrt(good * bad)
            if await trial(rate):
                good = rate
            else:
                bad = rate
        best = next((s for s in steps if s["rate"] == good), None)
        out[c.name] = {
            "sustained_frames_per_s": good or 0.0,
            "first_failing_rate": bad,
            "at_sustained": best,
            "steps": steps,
        }
    return out


# -- main ----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        sb = await stack.enter_async_context(Sandbox(seed=7, simulate=False))
        sb.rest.uid_limits.check = lambda *a, **k: (0, 0, 0, 1)  # type: ignore[method-assign]
        sb.streams._publish_books = lambda n: None  # type: ignore[method-assign]
        driver = Driver(sb)

        probes = {"rest": Probe(), "trade_ws": Probe()}
        stack.callback(patch_ws_send(probes["trade_ws"]))
        consumers: list[Consumer] = []
        requoters: list[Requoter] = []
        for name, entry in (("rest", "rest"), ("trade_ws", "ws")):
            probe = probes[name]
            ex = bybitkit.connect(
                "sandbox",
                credentials=sb.create_account(),
                environment=sb.environment,
                order_entry=entry,
                book_depth=DEPTH,
            )
            if name == "rest":  # the same session as RestClient's own, plus the wire trace
                ex.rest._session = aiohttp.ClientSession(
                    timeout=ex.rest.timeout,
                    connector=aiohttp.TCPConnector(limit=32, enable_cleanup_closed=True),
                    trace_configs=[wire_trace(probe)],
                )
            ex.rest.limiter = _Unlimited(ip_limit=10**9)
            await stack.enter_async_context(ex)
            if entry == "ws":  # it connects in the background; REST is used until then
                assert ex.trade_ws is not None
                await ex.trade_ws.wait_connected(10)
            requoter = Requoter(ex, PAIR, AMOUNT, OFFSET_TICKS, probe)
            await requoter.start()
            stack.push_async_callback(requoter.stop)
            stack.callback(instrument_connector(ex, probe))
            requoters.append(requoter)
            consumers.append(RequoterConsumer(name, ex, requoter, probe))
            await consumers[-1].detach()
        bare = BareLoop(f"{sb.ws_url}/v5/public/spot", driver.stream.key)
        await bare.start()
        stack.push_async_callback(bare.stop)
        consumers.insert(0, bare)

        result: dict[str, Any] = {}
        t = time.perf_counter()
        result["latency"] = await latency_part(
            driver, consumers, args.frames, args.rate, args.rounds
        )
        result["latency_seconds"] = time.perf_counter() - t
        if not args.skip_throughput:
            t = time.perf_counter()
            result["throughput"] = await throughput_part(
                driver, consumers, args.frames, args.step_seconds, args.max_rate
            )
            result["throughput_seconds"] = time.perf_counter() - t
        result["driver_us_per_frame"] = driver.busy_ns / max(1, driver.frames) / 1000
        result["strategy"] = {
            r.ex.order_entry: {
                "requests": r.requests,
                "replaced": r.replaced,
                "errors": r.errors[:5],
                "error_count": len(r.errors),
            }
            for r in requoters
        }
        return result


def _fmt_rate(x: float | None) -> str:
    return f"{x:,.0f}" if x else "-"


def report(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    lat = result["latency"]
    bare = lat["bare"]["tick_to_decoded_us"]
    rows = [
        ("bare loop: received -> decoded", bare, "bare"),
        ("REST: received -> to aiohttp", lat["rest"]["tick_to_handoff_us"], "rest"),
        ("REST: received -> to the socket", lat["rest"]["tick_to_socket_us"], "rest"),
        ("trade WS: received -> send_str", lat["trade_ws"]["tick_to_handoff_us"], "trade_ws"),
    ]
    tp = result.get("throughput", {})
    bare_rate = tp.get("bare", {}).get("sustained_frames_per_s")
    paced = ", ".join(f"{k} {v['frames_per_s']:.0f}/s" for k, v in lat.items())
    print(
        f"tick to order, sandbox in process, {SYMBOL} orderbook.{DEPTH}, {args.frames:,} frames "
        f"per consumer (part 1 paced at most {args.rate:g}/s, got: {paced}); driver "
        f"{result['driver_us_per_frame']:.0f} us per frame"
    )
    print(
        f"{'':34} {'p50 us':>9} {'p99 us':>9} {'x bare p50':>11} {'x bare p99':>11} "
        f"{'frames/s':>10} {'x bare':>7}"
    )
    ratios: dict[str, dict[str, float]] = {}
    keys = ["bare", "rest_to_aiohttp", "rest", "trade_ws"]
    for (label, s, name), key in zip(rows, keys, strict=True):
        r50, r99 = s["p50"] / bare["p50"], s["p99"] / bare["p99"]
        ratios[key] = {"p50": r50, "p99": r99}
        rate = tp.get(name, {}).get("sustained_frames_per_s")
        rate_ratio = f"{rate / bare_rate:.2f}" if rate and bare_rate else "-"
        print(
            f"{label:34} {s['p50']:9.1f} {s['p99']:9.1f} {r50:11.1f} {r99:11.1f} "
            f"{_fmt_rate(rate):>10} {rate_ratio:>7}"
        )
    for name in ("rest", "trade_ws"):
        st = lat[name]["stages_us"]
        parts = ", ".join(f"{k} {v['p50']:.1f}" for k, v in st.items())
        print(f"  {name} stages, p50 us: {parts}")
    for name, s in tp.items():
        at = s["at_sustained"]
        if at:
            quote = (
                f", quote lag p50 {at['quote_lag_p50_ms']:.2f} ms p99 {at['quote_lag_p99_ms']:.2f}"
                if at["quote_lag_p50_ms"] is not None
                else ""
            )
            print(
                f"  {name}: sustained {at['rate']:,.0f} frames/s (frame lag p50 "
                f"{at['lag_p50_ms']:.2f} ms p99 {at['lag_p99_ms']:.2f}{quote}; "
                f"{at['requests_per_s']:,.0f} requests/s; CPU per frame "
                f"{at['cpu_us_per_frame']:.0f} us, {at['cpu_less_driver_us_per_frame']:.0f} us "
                "less the driver's); first "
                f"failing rate {_fmt_rate(s['first_failing_rate'])}/s"
            )
    for entry, st in result["strategy"].items():
        if st["error_count"]:
            print(f"  warning: {entry} strategy saw {st['error_count']} errors: {st['errors']}")
    payload: dict[str, Any] = {
        "symbol": SYMBOL,
        "depth": DEPTH,
        "frames_per_consumer": args.frames,
        "pacing_rate": args.rate,
        "rounds": args.rounds,
        "backlog_slack_ms": BACKLOG_SLACK_MS,
        "tick_to_order_us": {
            "bare_received_to_decoded": bare,
            "rest_received_to_aiohttp": lat["rest"]["tick_to_handoff_us"],
            "rest_received_to_socket": lat["rest"]["tick_to_socket_us"],
            "trade_ws_received_to_send_str": lat["trade_ws"]["tick_to_handoff_us"],
        },
        "ratios_vs_bare": ratios,
        "frames_per_s_sustained": {k: v["sustained_frames_per_s"] for k, v in tp.items()},
        "frames_per_s_ratio_vs_bare": {
            k: v["sustained_frames_per_s"] / bare_rate for k, v in tp.items() if bare_rate
        },
        **result,
    }
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames per consumer")
    parser.add_argument("--rate", type=float, default=500.0, help="part 1 pacing, frames/s")
    parser.add_argument("--rounds", type=int, default=4, help="part 1 interleaved rounds")
    parser.add_argument("--step-seconds", type=float, default=0.5, help="part 2 step length")
    parser.add_argument("--max-rate", type=float, default=64_000.0, help="part 2 ramp ceiling")
    parser.add_argument("--skip-throughput", action="store_true", help="skip part 2")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.frames < 20 or args.rounds < 1 or args.rate <= 0:
        parser.error("--frames >= 20, --rounds >= 1 and --rate > 0")
    result = asyncio.run(run(args))
    payload = report(result, args)
    path = write_results("tick_to_order", payload)
    print(f"written {path.relative_to(path.parent.parent.parent)}")


if __name__ == "__main__":
    main()
