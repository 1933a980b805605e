"""Candles on every connector: REST history of any length, and live rolling windows.

:class:`CandlesMixin` gives a connector

* ``await ex.candles(pair, interval, *, limit=None, start=None, end=None, price="last")``:
  bars oldest first, paged backwards through ``/v5/market/kline`` (or the mark/index price kline
  endpoints) 1000 at a time, deduplicated by open time and checked for holes;
* ``ex.candles_feed(pair, interval, *, window=200, price="last")``: a :class:`CandleFeed`, a
  window of the newest bars kept from REST history plus the ``kline.{interval}.{symbol}`` stream
  (mark candles: from the ``tickers`` stream's ``markPrice``, perpetuals only), refilled from
  REST after a reconnect or a hole.

It relies on the connector's ``rest``, ``public``, ``rules``, ``category``,
``normalize_pair`` and ``_spawn``; the connector routes ``kline`` messages to
:meth:`CandlesMixin._on_kline`, public-stream state changes to
:meth:`CandlesMixin._candles_on_public_state` and (perpetuals) merged mark prices to
:meth:`CandlesMixin._on_mark_price`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bybitkit.errors import BybitkitError, ConfigError, ValidationError
from bybitkit.market.candles import (
    Candle,
    CandleWindow,
    align,
    align_up,
    find_gaps,
    next_open,
    parse_interval,
    shift,
)
from bybitkit.v5.ws import ConnectionState

if TYPE_CHECKING:
    from bybitkit.trading.rules import TradingRules
    from bybitkit.v5 import schemas as s
    from bybitkit.v5.rest import RestClient
    from bybitkit.v5.ws import WsSession

log = logging.getLogger(__name__)

__all__ = ["PRICES", "CandleFeed", "CandlesMixin"]

PRICES = ("last", "mark", "index")
"""What a candle measures: the last traded price, the mark price or the index price."""
PAGE_LIMIT = 1000  # Bybit's maximum rows per kline call (REFERENCE §7.5, §7.8)
DEFAULT_LIMIT = 200


def _int_arg(name: str, value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(name, f"a whole number >= {minimum}", value)
    return value


class _Hub:
    """The live feeds of one connector, by dispatch key, and who uses which topic."""

    __slots__ = ("feeds", "topic_users")

    def __init__(self) -> None:
        self.feeds: dict[str, list[CandleFeed]] = {}
        self.topic_users: dict[str, int] = {}

    def add(self, feed: CandleFeed) -> None:
        self.feeds.setdefault(feed.key, []).append(feed)

    def remove(self, feed: CandleFeed) -> None:
        feeds = self.feeds.get(feed.key)
        if feeds is not None and feed in feeds:
            feeds.remove(feed)
            if not feeds:
                del self.feeds[feed.key]

    def all(self) -> list[CandleFeed]:
        return [f for feeds in self.feeds.values() for f in feeds]


class CandlesMixin:
    """Candle history and live candle windows for a Bybit connector (one category)."""

    # Provided by the connector (BybitConnector).
    category: str
    connector_id: str
    rest: RestClient
    public: WsSession | None
    rules: dict[str, TradingRules]

    if TYPE_CHECKING:

        def normalize_pair(self, pair: str) -> str: ...

        def _spawn(self, coro: Awaitable[Any], name: str) -> None: ...

    # -- history --------------------------------------------------------------------------------

    async def candles(
        self,
        pair: str,
        interval: str | int,
        *,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
        price: str = "last",
    ) -> list[Candle]:
        """Candles of ``pair``, oldest first, the bar in progress included (``confirmed`` False).

        ``interval``: Bybit's code or a usual name (``1``/``1m``, ``60``/``1h``, ``D``/``1d``,
        ``W``/``1w``, ``M``/``1M`` ...). ``start``/``end`` (ms, inclusive) bound the bars' open
        times. Without ``start``: the newest ``limit`` bars (default 200) up to ``end`` (or now).
        With ``start`` and ``end``: every bar between (the newest ``limit`` of them if given).
        With ``start`` only: the first ``limit`` bars from ``start`` (all up to now without
        ``limit``). Any number of bars: pages of 1000 are fetched backwards and joined without
        gap or duplicate. ``price="mark"``/``"index"`` (derivatives only) reads the mark/index
        price klines, whose candles carry no volume or turnover (``None``)."""
        pair = self.normalize_pair(pair)
        code = parse_interval(interval)
        kind = self._candle_price(price, PRICES)
        limit = _int_arg("limit", limit, 1)
        start = _int_arg("start", start, 0)
        end = _int_arg("end", end, 0)
        if start is not None and end is not None and start > end:
            raise ValidationError("start", f"a time not after end ({end})", start)
        return await self._fetch_candles(
            self.rules[pair].symbol, code, kind, limit=limit, start=start, end=end
        )

    def _candle_price(self, price: str, allowed: tuple[str, ...]) -> str:
        if price not in allowed:
            raise ValidationError("price", "one of " + ", ".join(allowed), price)
        if price != "last" and self.category == "spot":
            raise ValidationError(
                "price", "last on spot (mark and index candles exist for derivatives)", price
            )
        return price

    async def _fetch_candles(
        self,
        symbol: str,
        code: str,
        price: str,
        *,
        limit: int | None = None,
        start: int | None = None,
        end: int | None = None,
        check: bool = True,
    ) -> list[Candle]:
        """The paging itself (see :meth:`candles`): newest page first, each next page ending
        1 ms before the oldest bar of the previous one, until ``limit`` bars or ``start``."""
        if start is None and limit is None:
            limit = DEFAULT_LIMIT
        if start is not None and end is None:
            if limit is not None:
                end = shift(code, align_up(code, start), limit - 1)
            else:
                # An explicit end: Bybit answers a start-only query with the *oldest* bars.
                end = shift(code, align(code, self.rest.clock.now_ms()), 2) - 1
        got: dict[int, Candle] = {}
        cursor = end
        while True:
            want = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - len(got))
            page = await self._candle_page(symbol, code, price, start, cursor, want)
            if not page:
                break
            for c in page:
                if (start is None or c.open_time >= start) and (end is None or c.open_time <= end):
                    got.setdefault(c.open_time, c)
            oldest = min(c.open_time for c in page)
            if limit is not None and len(got) >= limit:
                break
            if start is not None and oldest <= start:
                break
            if len(page) < want:
                break  # the history begins here
            if cursor is not None and oldest > cursor:
                break  # never loop on an answer that ignores ``end``
            cursor = oldest - 1
        bars = sorted(got.values(), key=lambda c: c.open_time)
        if limit is not None:
            bars = bars[-limit:]
        if check:
            bars = await self._fill_holes(symbol, code, price, bars)
        return bars

    async def _fill_holes(
        self, symbol: str, code: str, price: str, bars: list[Candle]
    ) -> list[Candle]:
        """Contiguity check: a hole between pages is asked for once more; what the exchange
        still does not have is logged, never invented."""
        gaps = find_gaps(bars, code)
        if not gaps:
            return bars
        by_time = {c.open_time: c for c in bars}
        for first, last in gaps:
            for c in await self._fetch_candles(
                symbol, code, price, start=first, end=last, check=False
            ):
                by_time.setdefault(c.open_time, c)
        bars = sorted(by_time.values(), key=lambda c: c.open_time)
        for first, last in find_gaps(bars, code):
            log.warning(
                "candles missing on the exchange symbol=%s interval=%s price=%s from=%d to=%d",
                symbol, code, price, first, last,
            )  # fmt: skip
        return bars

    async def _candle_page(
        self, symbol: str, code: str, price: str, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        """One REST call. A bar is confirmed when it had ended before the request left, or
        when a later bar is in the same answer."""
        asked_at = self.rest.clock.now_ms()
        if price == "last":
            res = await self.rest.kline(
                self.category, symbol, code, start=start, end=end, limit=limit
            )
            rows: list[Any] = res.list
        else:
            res2 = await self.rest.price_kline(
                price, self.category, symbol, code, start=start, end=end, limit=limit
            )
            rows = res2.list
        if not rows:
            return []
        newest = max(r.start for r in rows)
        with_volume = price == "last"
        return [
            Candle(
                r.start, r.open, r.high, r.low, r.close,
                r.volume if with_volume else None, r.turnover if with_volume else None,
                r.start < newest or next_open(code, r.start) <= asked_at,
            )
            for r in rows
        ]  # fmt: skip

    # -- live -----------------------------------------------------------------------------------

    def candles_feed(
        self, pair: str, interval: str | int, *, window: int = 200, price: str = "last"
    ) -> CandleFeed:
        """A live window of the newest ``window`` candles of ``pair``; use it as

            async with ex.candles_feed("BTC-USDT", "1m") as feed:
                async for candles in feed:      # the whole window, oldest first, per change
                    ...

        It loads the history, follows ``kline.{interval}.{symbol}`` (bars in progress and
        confirmed), and refetches from REST the bars since the last confirmed one after a
        reconnect of the public stream or a hole in what it received. ``price="mark"``
        (perpetuals) builds the live bars from the ``tickers`` stream's ``markPrice`` (Bybit
        streams no mark candles) on top of the mark price kline history."""
        pair = self.normalize_pair(pair)
        code = parse_interval(interval)
        kind = self._candle_price(price, ("last", "mark"))
        size = _int_arg("window", window, 1)
        assert size is not None
        return CandleFeed(self, pair, self.rules[pair].symbol, code, size, kind)

    def _candle_hub(self) -> _Hub:
        hub = self.__dict__.get("_candles_hub")
        if hub is None:
            hub = self.__dict__["_candles_hub"] = _Hub()
        assert isinstance(hub, _Hub)
        return hub

    async def _candle_subscribe(self, topic: str) -> None:
        if self.public is None:
            raise ConfigError(f"{self.connector_id}: start the connector before a candle feed")
        users = self._candle_hub().topic_users
        users[topic] = users.get(topic, 0) + 1
        try:
            await self.public.subscribe([topic], timeout=10)
        except BaseException:
            await self._candle_unsubscribe(topic)
            raise

    async def _candle_unsubscribe(self, topic: str) -> None:
        users = self._candle_hub().topic_users
        n = users.get(topic, 0) - 1
        if n > 0:
            users[topic] = n
            return
        users.pop(topic, None)
        # A ticker subscription stays: it is shared with ``watch``/``funding_info``.
        if topic.startswith("kline.") and self.public is not None:
            with contextlib.suppress(BybitkitError):
                await self.public.unsubscribe([topic])

    def _on_kline(self, msg: s.KlineMessage) -> None:
        """A ``kline.{interval}.{symbol}`` message (routed here by the connector)."""
        hub = self.__dict__.get("_candles_hub")
        if hub is None:
            return
        for feed in list(hub.feeds.get(msg.topic, ())):
            feed._on_bars(msg.data)

    def _on_mark_price(self, pair: str, mark: Decimal | None, ts: int | None) -> None:
        """The merged ticker's mark price of ``pair`` at ``ts`` (perpetuals route it here)."""
        hub = self.__dict__.get("_candles_hub")
        if hub is None or mark is None:
            return
        feeds = hub.feeds.get(f"mark.{pair}")
        if feeds:
            at = ts if ts is not None else self.rest.clock.now_ms()
            for feed in list(feeds):
                feed._on_price(at, mark)

    def _candles_on_public_state(self, state: ConnectionState) -> None:
        """Public stream up or down: feeds refill from REST after a reconnect."""
        hub = self.__dict__.get("_candles_hub")
        if hub is None:
            return
        for feed in hub.all():
            feed._on_state(state)


class _Updates:
    """One ``async for`` over a feed (each loop sees every change, coalesced when slow)."""

    __slots__ = ("_feed", "_seen")

    def __init__(self, feed: CandleFeed) -> None:
        self._feed = feed
        self._seen = 0

    def __aiter__(self) -> _Updates:
        return self

    async def __anext__(self) -> list[Candle]:
        self._seen, candles = await self._feed._next(self._seen)
        return candles


class CandleFeed:
    """A live window of the newest candles of one pair and interval.

    ``async with`` starts it (subscribe, load ``window`` bars of history, start its one task)
    and closes it (unsubscribe, cancel and await that task). ``async for candles in feed``
    yields the whole window (``list[Candle]``, oldest first, the last one possibly in
    progress) after every change; a slow reader gets the latest window, never a backlog. The
    loop ends when the feed or its connector stops.

    The window takes in-progress and confirmed bars from the stream; a confirmed bar is final
    and an older in-progress snapshot never overwrites a newer one. When the public stream
    reconnects, or a bar arrives after a hole, or a bar is superseded without ever having been
    confirmed, its task refetches from REST the bars since the last confirmed one
    (``refills`` counts those refetches)."""

    retry_s = 1.0  # pause before asking REST again after a failed refill

    def __init__(
        self, owner: CandlesMixin, pair: str, symbol: str, interval: str, size: int, price: str
    ) -> None:
        self._owner = owner
        self.pair = pair
        self.symbol = symbol
        self.interval = interval
        self.price = price
        self.window = CandleWindow(interval, size)
        if price == "last":
            self.topic = f"kline.{interval}.{symbol}"
            self.key = self.topic
        else:
            self.topic = f"tickers.{symbol}"
            self.key = f"mark.{pair}"
        self.refills = 0
        self.live = False  # the public stream is up and this feed is subscribed
        self._version = 0
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._refill_from: int | None = None
        self._refilled: set[int] = set()  # holes already asked for (the exchange may lack them)
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._subscribed = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> CandleFeed:
        if self._started:
            return self
        self._started = True
        owner = self._owner
        owner._candle_hub().add(self)
        try:
            await owner._candle_subscribe(self.topic)
            self._subscribed = True
            self.live = owner.public is not None and owner.public.connected
            history = await owner._fetch_candles(
                self.symbol, self.interval, self.price, limit=self.window.size
            )
            self.window.load(history)  # merged with what the stream already brought
            task = asyncio.ensure_future(self._run())
            self._task = task
            owner._spawn(task, f"candles-{self.key}")
        except BaseException:
            await self.close()
            raise
        self._bump()
        self._check()
        return self

    async def close(self) -> None:
        """Stop: unsubscribe (when no other feed uses the topic), cancel and await the task."""
        self._closed = True
        self.live = False
        self._owner._candle_hub().remove(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._subscribed:
            self._subscribed = False
            await self._owner._candle_unsubscribe(self.topic)
        self._notify()

    async def __aenter__(self) -> CandleFeed:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def candles(self) -> list[Candle]:
        """The window now, oldest first."""
        return self.window.candles

    @property
    def last(self) -> Candle | None:
        return self.window.last

    # -- iteration ------------------------------------------------------------------------------

    def __aiter__(self) -> _Updates:
        if not self._started:
            raise ConfigError("start the feed first: async with ex.candles_feed(...) as feed")
        return _Updates(self)

    async def _next(self, seen: int) -> tuple[int, list[Candle]]:
        while self._version == seen:
            if self._closed:
                raise StopAsyncIteration
            await self._changed.wait()
        return self._version, self.window.candles

    async def wait_for(
        self, predicate: Callable[[list[Candle]], bool], timeout: float | None = None
    ) -> list[Candle]:
        """The first window (the current one included) that satisfies ``predicate``."""
        async with asyncio.timeout(timeout):
            if predicate(self.window.candles):
                return self.window.candles
            async for candles in self:
                if predicate(candles):
                    return candles
        raise BybitkitError("the candle feed is closed")

    def _bump(self) -> None:
        self._version += 1
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- input ----------------------------------------------------------------------------------

    def _on_bars(self, bars: list[s.KlineBar]) -> None:
        changed = False
        for b in bars:
            candle = Candle(
                b.start, b.open, b.high, b.low, b.close, b.volume, b.turnover, bool(b.confirm)
            )
            try:
                changed = self.window.merge(candle) or changed
            except ValidationError as exc:
                log.warning("kline bar ignored topic=%s: %s", self.topic, exc)
        if changed:
            self._bump()
        self._check()

    def _on_price(self, ts_ms: int, price: Decimal) -> None:
        if self.window.apply_price(ts_ms, price):
            self._bump()
        self._check()

    def _on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.CONNECTED:
            self.live = self._subscribed
            if self._subscribed:
                last = self.window.last_confirmed
                self._request(last.open_time if last is not None else None)
        else:
            self.live = False

    def _check(self) -> None:
        """A hole, or a bar replaced before it was confirmed: refill (once per hole)."""
        start = self.window.refill_start()
        if start is not None and start not in self._refilled:
            if len(self._refilled) > 64:  # forget holes that left the window
                oldest = self.window.candles[0].open_time
                self._refilled = {t for t in self._refilled if t >= oldest}
            self._refilled.add(start)
            self._request(start)

    def _request(self, start: int | None) -> None:
        if self._closed or self._task is None:
            return
        # No older than the oldest bar the window keeps.
        now = align(self.interval, self._owner.rest.clock.now_ms())
        floor = shift(self.interval, now, -(self.window.size - 1))
        self._want(floor if start is None else max(start, floor))

    def _want(self, start: int) -> None:
        if self._refill_from is None or start < self._refill_from:
            self._refill_from = start
        self._wake.set()

    async def _run(self) -> None:
        """The feed's one task: REST refills, one at a time."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                start, self._refill_from = self._refill_from, None
                if start is None:
                    continue
                try:
                    bars = await self._owner._fetch_candles(
                        self.symbol, self.interval, self.price, start=start
                    )
                except (BybitkitError, TimeoutError) as exc:
                    log.warning("candle refill failed topic=%s: %s", self.topic, exc)
                    await asyncio.sleep(self.retry_s)
                    self._want(start)
                    continue
                self.refills += 1
                if self.window.load(bars):
                    self._bump()
                self._check()
        finally:
            self._closed = True
            self.live = False
            self._notify()
