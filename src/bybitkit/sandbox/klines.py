"""Candles of the sandbox exchange: one-minute history, live updates and Bybit's kline queries.

A :class:`KlineSeries` holds gapless one-minute bars of one symbol as parallel lists of ints:
open/high/low/close in price units (ticks of the instrument by default), volume in lots and
turnover in ``price unit x lot`` units, so every figure is exact. Every other interval is
aggregated from those bars (open of the first, close of the last, max high, min low, sums of
volume and turnover), aligned as Bybit aligns candles: minute intervals and ``D`` to epoch
multiples (UTC), ``W`` to Monday 00:00 UTC, ``M`` to the first of the month UTC. Closed
aggregated candles are cached per interval; only the open candle is aggregated per query.

* :meth:`KlineSeries.generate`: a seeded random walk, walked backwards from the current price, so
  the history ends exactly where the simulated market starts; :meth:`KlineSeries.track` derives a
  mark/index series that follows another series closely.
* :meth:`KlineSeries.on_trade` / :meth:`KlineSeries.advance`: live updates; minutes without
  trades become flat bars at the previous close with zero volume.
* :meth:`KlineSeries.rows` / :meth:`KlineSeries.price_rows`: ``/v5/market/kline`` (7 columns)
  and mark/index ``price-kline`` (5 columns) rows, newest first (REFERENCE §7.5, §7.8).
* :meth:`KlineSeries.ws_bar` / :meth:`KlineSeries.confirmed_since`: ``kline.{interval}.{symbol}``
  items (REFERENCE §12.4).
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import Any, NamedTuple

from bybitkit.errors import ValidationError
from bybitkit.market.candles import INTERVALS, MINUTE_MS, align, next_open
from bybitkit.sandbox.instruments import Instrument, fixed_str, plain_str

__all__ = [
    "DEFAULT_LIMIT",
    "INTERVALS",
    "MAX_LIMIT",
    "MINUTE_MS",
    "Bar",
    "KlineSeries",
    "interval_next",
    "interval_start",
]

# Interval arithmetic is the client's (bybitkit.market.candles): one implementation of
# Bybit's alignment. The sandbox accepts Bybit's own codes only (no aliases such as "1h").

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000

# Default per-minute volatility (stdev of the one-minute return) by base coin.
_VOLATILITY: dict[str, float] = {"BTC": 0.0005, "ETH": 0.0007}
_DEFAULT_VOLATILITY = 0.001
# Default mean traded notional per minute, in quote coin, by category.
_MEAN_NOTIONAL: dict[str, float] = {"spot": 300_000.0, "linear": 3_000_000.0}


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValidationError("interval", "one of " + ",".join(INTERVALS), interval)


def interval_start(interval: str, ts_ms: int) -> int:
    """Start (ms) of the ``interval`` candle containing ``ts_ms``."""
    _check_interval(interval)
    return align(interval, ts_ms)


def interval_next(interval: str, start_ms: int) -> int:
    """Start (ms) of the candle after the one starting at ``start_ms``."""
    _check_interval(interval)
    return next_open(interval, start_ms)


class Bar(NamedTuple):
    """One candle in exact integers: prices in price units, volume in lots, turnover in
    ``price unit x lot`` units."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    turnover: int


class _Agg:
    """Closed candles of one interval, aggregated from the one-minute bars ``[0, done)``;
    ``next_start`` is where the following (not yet closed) candle starts."""

    __slots__ = (
        "closes", "done", "highs", "lows", "next_start", "opens", "starts", "turnovers", "volumes",
    )  # fmt: skip

    def __init__(self, next_start: int) -> None:
        self.starts: list[int] = []
        self.opens: list[int] = []
        self.highs: list[int] = []
        self.lows: list[int] = []
        self.closes: list[int] = []
        self.volumes: list[int] = []
        self.turnovers: list[int] = []
        self.done = 0
        self.next_start = next_start


class KlineSeries:
    """Gapless one-minute bars of one symbol and Bybit-style kline queries over them.

    ``price_step`` is the price unit of the integers (the instrument's tick by default; a mark or
    index series may use ``10**-price_decimals`` since those prices need not lie on the tick
    grid). ``with_volume=False`` marks a price-only series (mark/index): volumes stay zero.
    """

    __slots__ = (
        "_cache",
        "_closes",
        "_highs",
        "_lot_scale",
        "_lows",
        "_opens",
        "_price_decimals",
        "_price_scale",
        "_start0",
        "_touched",
        "_turnover_decimals",
        "_turnover_scale",
        "_turnovers",
        "_volumes",
        "inst",
        "price_step",
        "with_volume",
    )

    def __init__(
        self,
        inst: Instrument,
        first_start_ms: int,
        opens: list[int],
        highs: list[int],
        lows: list[int],
        closes: list[int],
        volumes: list[int] | None = None,
        turnovers: list[int] | None = None,
        *,
        with_volume: bool = True,
        price_step: Decimal | None = None,
    ) -> None:
        n = len(closes)
        if n == 0 or not len(opens) == len(highs) == len(lows) == n:
            raise ValidationError("bars", "at least one bar and equally long price lists")
        if first_start_ms % MINUTE_MS:
            raise ValidationError("first_start_ms", "a whole minute", first_start_ms)
        self.inst = inst
        self.with_volume = with_volume
        self.price_step = inst.tick_size if price_step is None else price_step
        self._price_decimals = inst.price_decimals
        scaled = self.price_step.scaleb(inst.price_decimals)
        if self.price_step <= 0 or scaled != scaled.to_integral_value():
            raise ValidationError(
                "price_step", f"a positive step with at most {inst.price_decimals} decimals"
            )
        self._price_scale = int(scaled)
        self._lot_scale = int(inst.lot_size.scaleb(inst.qty_decimals))
        self._turnover_decimals = inst.price_decimals + inst.qty_decimals
        self._turnover_scale = self._price_scale * self._lot_scale
        self._start0 = first_start_ms
        self._opens = opens
        self._highs = highs
        self._lows = lows
        self._closes = closes
        self._volumes = volumes if volumes is not None else [0] * n
        self._turnovers = turnovers if turnovers is not None else [0] * n
        if not len(self._volumes) == len(self._turnovers) == n:
            raise ValidationError("bars", "volume and turnover lists as long as the prices")
        self._touched = True  # whether the last bar has had a price (False: flat placeholder)
        self._cache: dict[str, _Agg] = {}

    # --- construction --------------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        inst: Instrument,
        end_ms: int,
        end_price_ticks: int,
        rng: random.Random,
        minutes: int = 10_080,
        *,
        with_volume: bool = True,
        price_step: Decimal | None = None,
        volatility: float | None = None,
        mean_notional: float | None = None,
    ) -> KlineSeries:
        """``minutes`` one-minute bars (7 days by default) whose last bar is the minute before
        the one containing ``end_ms`` and closes at ``end_price_ticks`` (in units of
        ``price_step``).

        Prices are a random walk drawn backwards from the end price (stdev ``volatility`` per
        minute: BTC 0.05 %, ETH 0.07 %, else 0.1 %); each bar opens at the previous close and
        has random wicks. Volume is random around ``mean_notional`` quote coin per minute (spot
        300k, linear 3M), larger on bigger moves; turnover is volume x the bar's mid price. The
        same ``rng`` state gives the same prices and volumes whatever ``end_ms`` is. Floats only
        drive the randomness; every stored figure is an exact int.
        """
        if minutes < 1:
            raise ValidationError("minutes", "at least 1", minutes)
        if end_price_ticks < 1:
            raise ValidationError("end_price_ticks", "a positive price", end_price_ticks)
        step = inst.tick_size if price_step is None else price_step
        sigma = volatility if volatility is not None else _VOLATILITY.get(inst.base_coin)
        if sigma is None:
            sigma = _DEFAULT_VOLATILITY
        n = minutes
        opens = [0] * n
        highs = [0] * n
        lows = [0] * n
        closes = [0] * n
        volumes = [0] * n
        turnovers = [0] * n
        mean_lots = 0.0
        if with_volume:
            notional = mean_notional if mean_notional is not None else _MEAN_NOTIONAL[inst.category]
            unit_value = float(step) * float(inst.lot_size)  # quote value of 1 unit x 1 lot
            mean_lots = notional / (end_price_ticks * unit_value) / 1.2  # E[factors] ~ 1.2
        gauss = rng.gauss
        rand = rng.random
        wick_k = sigma * 0.8
        c = end_price_ticks
        p = float(c)
        for i in range(n - 1, -1, -1):
            z = gauss(0.0, 1.0)
            p_open = p / (1.0 + sigma * z)
            o = int(p_open + 0.5)
            if o < 1:
                o, p_open = 1, 1.0
            wick = p * wick_k
            if o > c:
                hi = o + int(wick * rand())
                lo = c - int(wick * rand())
            else:
                hi = c + int(wick * rand())
                lo = o - int(wick * rand())
            if lo < 1:
                lo = 1
            opens[i] = o
            highs[i] = hi
            lows[i] = lo
            closes[i] = c
            if with_volume:
                vol = int(mean_lots * (0.2 + 1.6 * rand()) * (0.6 + 0.5 * abs(z)))
                volumes[i] = vol
                turnovers[i] = vol * ((hi + lo) >> 1)
            c = o
            p = p_open
        last_start = end_ms - end_ms % MINUTE_MS - MINUTE_MS
        first_start = last_start - (n - 1) * MINUTE_MS
        return cls(
            inst,
            first_start,
            opens,
            highs,
            lows,
            closes,
            volumes if with_volume else None,
            turnovers if with_volume else None,
            with_volume=with_volume,
            price_step=step,
        )

    @classmethod
    def track(
        cls,
        source: KlineSeries,
        rng: random.Random,
        *,
        end_price_ticks: int | None = None,
        price_step: Decimal | None = None,
        basis: float = 0.0002,
    ) -> KlineSeries:
        """A price-only series (mark or index) that follows ``source`` over the same minutes:
        each bar is the source bar times ``(1 + b)``, ``b`` a small mean-reverting basis (stdev
        about ``basis``), ending at ``end_price_ticks`` (default: the source's last close) in
        units of ``price_step`` (default: the source's)."""
        step = source.price_step if price_step is None else price_step
        conv = float(source.price_step) / float(step)
        src_o, src_h, src_l, src_c = source._opens, source._highs, source._lows, source._closes
        n = len(src_c)
        src_end = src_c[-1] * conv
        end = end_price_ticks if end_price_ticks is not None else int(src_end + 0.5)
        b = end / src_end - 1.0
        shock = basis * 0.45  # AR(1) with phi 0.9: stationary stdev ~ shock / sqrt(1 - 0.81)
        gauss = rng.gauss
        opens = [0] * n
        highs = [0] * n
        lows = [0] * n
        closes = [0] * n
        c = end
        for i in range(n - 1, -1, -1):
            f = conv * (1.0 + b)
            closes[i] = c
            if i > 0:
                b = 0.9 * b + shock * gauss(0.0, 1.0)
                o = int(src_c[i - 1] * conv * (1.0 + b) + 0.5)
            else:
                o = int(src_o[0] * f + 0.5)
            o = max(o, 1)
            opens[i] = o
            highs[i] = max(o, c, int(src_h[i] * f + 0.5))
            lows[i] = max(min(o, c, int(src_l[i] * f + 0.5)), 1)
            c = o
        return cls(
            source.inst, source._start0, opens, highs, lows, closes, with_volume=False,
            price_step=step,
        )  # fmt: skip

    # --- state ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._closes)

    @property
    def first_start_ms(self) -> int:
        """Start of the oldest one-minute bar."""
        return self._start0

    @property
    def last_start_ms(self) -> int:
        """Start of the newest one-minute bar."""
        return self._start0 + (len(self._closes) - 1) * MINUTE_MS

    @property
    def last_close(self) -> int:
        """Close of the newest bar: the last price, in price units."""
        return self._closes[-1]

    def minute_bar(self, index: int) -> Bar:
        """The one-minute bar at ``index`` (negative counts from the newest)."""
        i = range(len(self._closes))[index]
        return self._bar1(i)

    def _bar1(self, i: int) -> Bar:
        return Bar(
            self._start0 + i * MINUTE_MS,
            self._opens[i],
            self._highs[i],
            self._lows[i],
            self._closes[i],
            self._volumes[i],
            self._turnovers[i],
        )

    # --- live updates --------------------------------------------------------------------------

    def advance(self, now_ms: int) -> None:
        """Make the bar of the minute containing ``now_ms`` exist: minutes since the last bar
        become flat bars at the last close with zero volume."""
        idx = (now_ms - self._start0) // MINUTE_MS
        n = len(self._closes)
        if idx >= n:
            k = idx + 1 - n
            c = self._closes[-1]
            flat = [c] * k
            self._opens += flat
            self._highs += flat
            self._lows += flat
            self._closes += flat
            zeros = [0] * k
            self._volumes += zeros
            self._turnovers += zeros
            self._touched = False

    def on_trade(self, ts_ms: int, price_ticks: int, qty_lots: int = 0) -> None:
        """Fold a trade (or, with ``qty_lots`` 0, a price update) into the bar of its minute.

        The first price of a new minute sets its open, high, low and close; later ones move
        high, low and close and add volume and ``price x qty`` turnover. A late trade, whose
        minute is older than the newest bar, updates that bar's high, low, volume and turnover
        (not its close). A timestamp before the whole history raises ``ValidationError``.
        """
        idx = (ts_ms - self._start0) // MINUTE_MS
        if idx < 0:
            raise ValidationError("ts_ms", "a time within the series", ts_ms)
        self.advance(ts_ms)
        last = len(self._closes) - 1
        if idx == last and not self._touched:
            self._opens[idx] = self._highs[idx] = self._lows[idx] = price_ticks
            self._closes[idx] = price_ticks
            self._touched = True
        else:
            if price_ticks > self._highs[idx]:
                self._highs[idx] = price_ticks
            if price_ticks < self._lows[idx]:
                self._lows[idx] = price_ticks
            if idx == last:
                self._closes[idx] = price_ticks
            else:
                self._cache.clear()  # a closed bar changed: re-aggregate
        if qty_lots:
            self._volumes[idx] += qty_lots
            self._turnovers[idx] += price_ticks * qty_lots

    def on_price(self, ts_ms: int, price_ticks: int) -> None:
        """A mark/index price update: :meth:`on_trade` without quantity."""
        self.on_trade(ts_ms, price_ticks, 0)

    # --- aggregation ---------------------------------------------------------------------------

    def _closed(self, interval: str) -> _Agg:
        """The cached closed candles of ``interval``, brought up to date. A candle is closed
        once the newest one-minute bar (the only one still changing) lies after it."""
        agg = self._cache.get(interval)
        if agg is None:
            agg = self._cache[interval] = _Agg(interval_start(interval, self._start0))
        last = len(self._closes) - 1
        start0 = self._start0
        o, h, lo, c, v, t = (
            self._opens, self._highs, self._lows, self._closes, self._volumes, self._turnovers
        )  # fmt: skip
        while True:
            end = interval_next(interval, agg.next_start)
            j = (end - start0) // MINUTE_MS
            if j > last:
                return agg
            i = agg.done
            agg.starts.append(agg.next_start)
            agg.opens.append(o[i])
            agg.highs.append(max(h[i:j]))
            agg.lows.append(min(lo[i:j]))
            agg.closes.append(c[j - 1])
            agg.volumes.append(sum(v[i:j]))
            agg.turnovers.append(sum(t[i:j]))
            agg.done = j
            agg.next_start = end

    def _open_bar(self, agg: _Agg) -> Bar:
        """The open candle: the one-minute bars after the closed candles of ``agg``."""
        i = agg.done
        return Bar(
            agg.next_start,
            self._opens[i],
            max(self._highs[i:]),
            min(self._lows[i:]),
            self._closes[-1],
            sum(self._volumes[i:]),
            sum(self._turnovers[i:]),
        )

    def _select(
        self, interval: str, start: int | None, end: int | None, limit: int | None, oldest: bool
    ) -> list[Bar]:
        """Candles of ``interval`` whose start lies in ``[start, end]``, oldest first; with a
        ``limit``, the newest ``limit`` of them (the oldest when ``oldest``)."""
        _check_interval(interval)
        lo_ms = -(2**62) if start is None else start
        hi_ms = 2**62 if end is None else end
        if interval == "1":
            n = len(self._closes)
            i = max(0, -((self._start0 - lo_ms) // MINUTE_MS))  # ceil((lo - start0) / minute)
            j = min(n, (hi_ms - self._start0) // MINUTE_MS + 1)
            if limit is not None and j - i > limit:
                i, j = (i, i + limit) if oldest else (j - limit, j)
            return [self._bar1(k) for k in range(i, j)]
        agg = self._closed(interval)
        starts = agg.starts
        i = bisect_left(starts, lo_ms)
        j = bisect_right(starts, hi_ms)
        with_open = lo_ms <= agg.next_start <= hi_ms
        total = j - i + with_open
        if limit is not None and total > limit:
            if oldest:
                with_open = with_open and j - i < limit
                j = min(j, i + limit)
            else:
                i = max(i, j - (limit - with_open))
        bars = [
            Bar(starts[k], agg.opens[k], agg.highs[k], agg.lows[k], agg.closes[k],
                agg.volumes[k], agg.turnovers[k])
            for k in range(i, j)
        ]  # fmt: skip
        if with_open:
            bars.append(self._open_bar(agg))
        return bars

    def bars(self, interval: str, start: int | None = None, end: int | None = None) -> list[Bar]:
        """Every candle of ``interval`` whose start lies in ``[start, end]`` (ms, inclusive,
        either open-ended), oldest first, the open candle included, in exact integers."""
        return self._select(interval, start, end, None, False)

    def summary(self, start_ms: int, end_ms: int) -> Bar | None:
        """One bar aggregating the one-minute bars whose start lies in ``[start_ms, end_ms]``
        (e.g. the 24 h figures of a ticker); ``None`` when there is none."""
        n = len(self._closes)
        i = max(0, -((self._start0 - start_ms) // MINUTE_MS))
        j = min(n, (end_ms - self._start0) // MINUTE_MS + 1)
        if i >= j:
            return None
        return Bar(
            self._start0 + i * MINUTE_MS,
            self._opens[i],
            max(self._highs[i:j]),
            min(self._lows[i:j]),
            self._closes[j - 1],
            sum(self._volumes[i:j]),
            sum(self._turnovers[i:j]),
        )

    # --- text ----------------------------------------------------------------------------------

    def price_text(self, units: int) -> str:
        """Exact price text with the instrument's ``price_decimals`` decimals."""
        return fixed_str(units * self._price_scale, self._price_decimals)

    def volume_text(self, lots: int) -> str:
        """Exact volume text in base coin, no trailing zeros."""
        return plain_str(lots * self._lot_scale, self.inst.qty_decimals)

    def turnover_text(self, units: int) -> str:
        """Exact turnover text in quote coin, no trailing zeros."""
        return plain_str(units * self._turnover_scale, self._turnover_decimals)

    def turnover_decimal(self, units: int) -> Decimal:
        """Exact turnover in quote coin."""
        return units * self.price_step * self.inst.lot_size

    # --- REST ----------------------------------------------------------------------------------

    def _query(
        self, interval: str, start: int | None, end: int | None, limit: int, now_ms: int | None
    ) -> list[Bar]:
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError("limit", f"1..{MAX_LIMIT}", limit)
        if now_ms is not None:
            self.advance(now_ms)
        # Bybit: with only ``start`` the candles from ``start`` onwards come back (the oldest
        # ``limit``); otherwise the newest ``limit`` up to ``end``.
        bars = self._select(interval, start, end, limit, start is not None and end is None)
        bars.reverse()
        return bars

    def rows(
        self,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
        *,
        now_ms: int | None = None,
    ) -> list[list[str]]:
        """``/v5/market/kline`` ``list``: ``[start, open, high, low, close, volume, turnover]``
        strings, newest first, candles whose start lies in ``[start, end]`` (inclusive), at most
        ``limit`` (1..1000): the newest ones, or with only ``start`` given the oldest ones from
        ``start``. The open candle is included (close = last price). With ``now_ms`` the series
        is first advanced to that time. Bad ``interval``/``limit`` raise ``ValidationError``."""
        pt, vt, tt = self.price_text, self.volume_text, self.turnover_text
        return [
            [str(b.start), pt(b.open), pt(b.high), pt(b.low), pt(b.close), vt(b.volume),
             tt(b.turnover)]
            for b in self._query(interval, start, end, limit, now_ms)
        ]  # fmt: skip

    def price_rows(
        self,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
        *,
        now_ms: int | None = None,
    ) -> list[list[str]]:
        """Mark/index ``price-kline`` ``list``: ``[start, open, high, low, close]`` strings, with
        the selection rules of :meth:`rows`."""
        pt = self.price_text
        return [
            [str(b.start), pt(b.open), pt(b.high), pt(b.low), pt(b.close)]
            for b in self._query(interval, start, end, limit, now_ms)
        ]

    # --- WebSocket -----------------------------------------------------------------------------

    def _ws_item(self, interval: str, bar: Bar, confirm: bool, timestamp: int) -> dict[str, Any]:
        pt = self.price_text
        return {
            "start": bar.start,
            "end": interval_next(interval, bar.start) - 1,
            "interval": interval,
            "open": pt(bar.open),
            "close": pt(bar.close),
            "high": pt(bar.high),
            "low": pt(bar.low),
            "volume": self.volume_text(bar.volume),
            "turnover": self.turnover_text(bar.turnover),
            "confirm": confirm,
            "timestamp": timestamp,
        }

    def ws_bar(self, interval: str, now_ms: int) -> dict[str, Any]:
        """The open candle of ``interval`` at ``now_ms`` as a ``kline`` topic item
        (``confirm: false``, ``end`` = next start - 1 ms, ``timestamp`` = ``now_ms``)."""
        _check_interval(interval)
        self.advance(now_ms)
        if interval == "1":
            bar = self._bar1(len(self._closes) - 1)
        else:
            bar = self._open_bar(self._closed(interval))
        return self._ws_item(interval, bar, False, now_ms)

    def confirmed_since(self, interval: str, since_ms: int, now_ms: int) -> list[dict[str, Any]]:
        """``kline`` items with ``confirm: true`` for every candle of ``interval`` that closed
        in ``(since_ms, now_ms]`` (its end, the next candle's start, lies there), oldest first;
        ``timestamp`` is the candle's ``end``. Calling with consecutive windows (``since_ms`` =
        the previous ``now_ms``) yields each closed candle exactly once."""
        _check_interval(interval)
        self.advance(now_ms)
        if now_ms <= since_ms:
            return []
        # Closed candles end at or before the newest bar's start <= now_ms; keep end > since.
        bars = self._select(interval, interval_start(interval, since_ms), None, None, False)
        items = []
        for bar in bars:
            end = interval_next(interval, bar.start)
            if since_ms < end <= now_ms:
                items.append(self._ws_item(interval, bar, True, end - 1))
        return items
