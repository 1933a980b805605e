"""Candles: the model, Bybit's intervals and their alignment, a rolling window, CSV and pandas.

Exchange-agnostic and pure (no I/O but the CSV helpers); the connectors fill it from REST and
the ``kline`` stream (:mod:`bybitkit.connectors.candles`).

* :class:`Candle`: one bar, prices and sizes exact ``Decimal`` (``volume``/``turnover`` are
  ``None`` for mark and index candles, whose Bybit klines have five columns).
* Intervals: :func:`parse_interval` takes Bybit's codes (``1 3 5 15 30 60 120 240 360 720 D W M``)
  and the usual names (``1m``, ``1h``, ``4h``, ``1d``, ``1w``, ``1M`` ...) and returns the code;
  :func:`align`, :func:`next_open`, :func:`shift` place bars as Bybit does: minute intervals and
  ``D`` on multiples of their length since the epoch (UTC), ``W`` on Monday 00:00 UTC, ``M`` on
  the first of the month 00:00 UTC.
* :class:`CandleWindow`: the newest ``size`` bars of one series, merged from REST history and
  stream updates: deduplicated by ``open_time``, a confirmed bar never overwritten by an
  in-progress one, an in-progress bar never moved back to an older snapshot (smaller volume);
  it reports the gaps and the bars whose close it never saw (:meth:`CandleWindow.refill_start`).
* :func:`write_csv` / :func:`read_csv` (exact round trip) and :func:`to_dataframe` (pandas, the
  optional ``bybitkit[pandas]`` extra).
"""

from __future__ import annotations

import csv
import importlib
import os
from bisect import insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from bybitkit.errors import ValidationError

__all__ = [
    "CSV_FIELDS",
    "INTERVALS",
    "Candle",
    "CandleWindow",
    "align",
    "align_up",
    "find_gaps",
    "interval_ms",
    "next_open",
    "parse_interval",
    "read_csv",
    "shift",
    "to_dataframe",
    "write_csv",
]

MINUTE_MS = 60_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
_MONDAY_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; 1970-01-05 00:00 UTC a Monday
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

INTERVALS: tuple[str, ...] = (
    "1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M",
)  # fmt: skip
"""Bybit's kline intervals (REFERENCE §7.5), shortest first."""

_FIXED_MS: dict[str, int] = {code: int(code) * MINUTE_MS for code in INTERVALS[:10]} | {
    "D": DAY_MS,
    "W": WEEK_MS,
}

_ALIASES: dict[str, str] = {code: code for code in INTERVALS}
for _minute_code in INTERVALS[:10]:
    _minutes = int(_minute_code)
    _ALIASES[f"{_minutes}m"] = _minute_code
    if _minutes % 60 == 0:
        _ALIASES[f"{_minutes // 60}h"] = _minute_code
        _ALIASES[f"{_minutes // 60}H"] = _minute_code
_ALIASES.update({"d": "D", "1d": "D", "1D": "D", "w": "W", "1w": "W", "1W": "W", "1M": "M"})

_ALLOWED = (
    "one of 1, 3, 5, 15, 30, 60, 120, 240, 360, 720, D, W, M "
    "(or 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d, 1w, 1M)"
)


def parse_interval(value: str | int) -> str:
    """Bybit's interval code for ``value``: a code (``"1"``, ``60``, ``"D"``) or a usual name
    (``"1m"``, ``"1h"``, ``"1d"``, ``"1w"``, ``"1M"`` = a month, ``"1m"`` = a minute). Anything
    else raises :class:`~bybitkit.errors.ValidationError` (a ``ValueError``) naming the allowed
    values."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError("interval", _ALLOWED, value)
    code = _ALIASES.get(str(value).strip())
    if code is None:
        raise ValidationError("interval", _ALLOWED, value)
    return code


_CODES = frozenset(INTERVALS)


def _code(interval: str) -> str:
    return interval if interval in _CODES else parse_interval(interval)


def interval_ms(interval: str) -> int:
    """Length of one bar in ms (``W`` = 7 days). Months differ in length: ``M`` raises
    ``ValidationError`` (use :func:`next_open`)."""
    code = _code(interval)
    size = _FIXED_MS.get(code)
    if size is None:
        raise ValidationError("interval", "a fixed-length interval (a month varies)", interval)
    return size


def _month_start(year: int, month: int) -> int:
    return (datetime(year, month, 1, tzinfo=UTC) - _EPOCH) // _MS


def _year_month(ts_ms: int) -> tuple[int, int]:
    dt = _EPOCH + ts_ms * _MS
    return dt.year, dt.month


def align(interval: str, ts_ms: int) -> int:
    """Open time (ms) of the ``interval`` bar containing ``ts_ms``, aligned as Bybit aligns:
    multiples of the length since the epoch (UTC) for minutes and ``D``, Monday 00:00 UTC for
    ``W``, the first of the month 00:00 UTC for ``M``."""
    code = _code(interval)
    if code == "M":
        return _month_start(*_year_month(ts_ms))
    if code == "W":
        return ts_ms - (ts_ms - _MONDAY_MS) % WEEK_MS
    size = _FIXED_MS[code]
    return ts_ms - ts_ms % size


def align_up(interval: str, ts_ms: int) -> int:
    """Open time of the first bar that opens at or after ``ts_ms``."""
    start = align(interval, ts_ms)
    return start if start == ts_ms else next_open(interval, start)


def shift(interval: str, open_ms: int, n: int) -> int:
    """Open time of the bar ``n`` bars after (``n < 0``: before) the bar opening at ``open_ms``."""
    code = _code(interval)
    if code == "M":
        year, month = _year_month(open_ms)
        k = year * 12 + (month - 1) + n
        return _month_start(k // 12, k % 12 + 1)
    return open_ms + n * _FIXED_MS[code]


def next_open(interval: str, open_ms: int) -> int:
    """Open time of the bar after the one opening at ``open_ms`` (= that bar's end + 1 ms)."""
    return shift(interval, open_ms, 1)


# -- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar. ``open_time`` in ms (UTC); ``volume`` in the base coin and ``turnover`` in the
    quote coin for spot and linear (``None`` for mark and index candles); ``confirmed`` once the
    bar has closed (its values are final)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None
    turnover: Decimal | None
    confirmed: bool

    @property
    def time(self) -> datetime:
        """``open_time`` as an aware UTC datetime."""
        return _EPOCH + self.open_time * _MS


def _supersedes(new: Candle, held: Candle) -> bool:
    """Whether ``new`` replaces ``held`` (same ``open_time``): a confirmed bar replaces anything
    (a late correction too); an in-progress one never replaces a confirmed one, nor a snapshot
    with more volume (volume only grows while a bar is open, so less volume is an older view)."""
    if new.confirmed:
        return True
    if held.confirmed:
        return False
    return not (new.volume is not None and held.volume is not None and new.volume < held.volume)


def find_gaps(candles: Sequence[Candle], interval: str) -> list[tuple[int, int]]:
    """Missing bars of ``candles`` (sorted oldest first), as ``(first, last)`` open times of each
    hole, both inclusive."""
    code = _code(interval)
    gaps = []
    for a, b in pairwise(candles):
        expected = next_open(code, a.open_time)
        if b.open_time > expected:
            gaps.append((expected, shift(code, b.open_time, -1)))
    return gaps


class CandleWindow:
    """The newest ``size`` bars of one series, kept sorted and unique by ``open_time``.

    Everything goes through :meth:`merge` (one bar, from REST or the stream), :meth:`load`
    (many) or :meth:`apply_price` (a price tick, for series built from a ticker). What it does
    not know is reported, not guessed: :meth:`gaps` lists missing bars, and
    :meth:`refill_start` says from which open time a REST refetch makes the window whole
    (the first missing bar, or the first bar that was superseded by a newer bar without ever
    being confirmed: its final values were missed)."""

    __slots__ = ("_bars", "_times", "interval", "size")

    def __init__(self, interval: str, size: int = 200) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValidationError("size", "a whole number of bars >= 1", size)
        self.interval = parse_interval(interval)
        self.size = size
        self._times: list[int] = []
        self._bars: dict[int, Candle] = {}

    def __len__(self) -> int:
        return len(self._times)

    @property
    def candles(self) -> list[Candle]:
        """The bars, oldest first (a new list)."""
        bars = self._bars
        return [bars[t] for t in self._times]

    @property
    def last(self) -> Candle | None:
        return self._bars[self._times[-1]] if self._times else None

    @property
    def last_confirmed(self) -> Candle | None:
        for t in reversed(self._times):
            bar = self._bars[t]
            if bar.confirmed:
                return bar
        return None

    def get(self, open_time: int) -> Candle | None:
        return self._bars.get(open_time)

    def merge(self, candle: Candle) -> bool:
        """Add or update one bar; returns whether the window changed. A bar older than the
        oldest of a full window is dropped; one that does not open on the interval's grid
        raises ``ValidationError``."""
        t = candle.open_time
        held = self._bars.get(t)
        if held is not None:
            if held == candle or not _supersedes(candle, held):
                return False
            self._bars[t] = candle
            return True
        if align(self.interval, t) != t:
            raise ValidationError("open_time", f"the start of a {self.interval} bar", t)
        times = self._times
        if len(times) >= self.size and t < times[0]:
            return False
        insort(times, t)
        self._bars[t] = candle
        while len(times) > self.size:
            del self._bars[times.pop(0)]
        return True

    def load(self, candles: Iterable[Candle]) -> bool:
        """Merge many bars (e.g. a REST page); returns whether the window changed."""
        changed = False
        for candle in candles:
            changed = self.merge(candle) or changed
        return changed

    def apply_price(self, ts_ms: int, price: Decimal) -> bool:
        """Fold one price observed at ``ts_ms`` into its bar (a series without volume, such as
        mark candles built from a ticker): the first price of a new bar opens it and confirms
        the bars before it; later ones move high, low and close. A price for a confirmed bar, or
        for a bar older than the newest one held, is ignored."""
        t = align(self.interval, ts_ms)
        held = self._bars.get(t)
        if held is None:
            if self._times and t < self._times[-1]:
                return False
            for old in self._times:
                bar = self._bars[old]
                if not bar.confirmed:
                    self._bars[old] = replace(bar, confirmed=True)
            return self.merge(Candle(t, price, price, price, price, None, None, False))
        if held.confirmed:
            return False
        new = replace(held, high=max(held.high, price), low=min(held.low, price), close=price)
        if new == held:
            return False
        self._bars[t] = new
        return True

    def gaps(self) -> list[tuple[int, int]]:
        """Missing bars inside the window: ``(first, last)`` open times of each hole."""
        return find_gaps(self.candles, self.interval)

    def refill_start(self) -> int | None:
        """The open time from which a REST refetch makes the window whole, or ``None`` when it
        is: the first missing bar, or the first bar that is not the newest yet never confirmed."""
        starts = [first for first, _ in self.gaps()]
        for t in self._times[:-1]:
            if not self._bars[t].confirmed:
                starts.append(t)
                break
        return min(starts) if starts else None


# -- export ----------------------------------------------------------------------------------------

CSV_FIELDS = (
    "open_time", "time", "open", "high", "low", "close", "volume", "turnover", "confirmed",
)  # fmt: skip


def _text(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _iso(ms: int) -> str:
    return (_EPOCH + ms * _MS).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(candles: Iterable[Candle], path_or_file: str | os.PathLike[str] | IO[str]) -> int:
    """Write ``candles`` as CSV (header :data:`CSV_FIELDS`; ``time`` is ISO-8601 UTC, figures
    exact decimal text, an absent volume empty, ``confirmed`` ``true``/``false``) to a path or an
    open text file; returns the number of rows written."""
    if isinstance(path_or_file, str | os.PathLike):
        with Path(path_or_file).open("w", newline="", encoding="utf-8") as f:
            return _write_csv(candles, f)
    return _write_csv(candles, path_or_file)


def _write_csv(candles: Iterable[Candle], f: IO[str]) -> int:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    n = 0
    for c in candles:
        writer.writerow(
            [c.open_time, _iso(c.open_time), _text(c.open), _text(c.high), _text(c.low),
             _text(c.close), _text(c.volume), _text(c.turnover), "true" if c.confirmed else "false"]
        )  # fmt: skip
        n += 1
    return n


def read_csv(path_or_file: str | os.PathLike[str] | IO[str]) -> list[Candle]:
    """Read what :func:`write_csv` wrote (exactly the same candles back)."""
    if isinstance(path_or_file, str | os.PathLike):
        with Path(path_or_file).open(newline="", encoding="utf-8") as f:
            return _read_csv(f)
    return _read_csv(path_or_file)


def _read_csv(f: IO[str]) -> list[Candle]:
    return [
        Candle(
            open_time=int(row["open_time"]),
            open=Decimal(row["open"]),
            high=Decimal(row["high"]),
            low=Decimal(row["low"]),
            close=Decimal(row["close"]),
            volume=Decimal(row["volume"]) if row["volume"] else None,
            turnover=Decimal(row["turnover"]) if row["turnover"] else None,
            confirmed=row["confirmed"].strip().lower() == "true",
        )
        for row in csv.DictReader(f)
    ]


def to_dataframe(candles: Iterable[Candle]) -> Any:
    """A pandas DataFrame of ``candles``: indexed by ``time`` (UTC), columns ``open_time``
    (int ms), ``open``, ``high``, ``low``, ``close``, ``volume``, ``turnover`` (exact ``Decimal``
    objects; ``df.astype(float)`` for charts) and ``confirmed`` (bool). Needs pandas (the
    ``bybitkit[pandas]`` extra); without it raises ``ImportError`` saying so."""
    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        raise ImportError(
            "to_dataframe needs pandas, which is not installed: pip install 'bybitkit[pandas]'"
        ) from None
    rows = list(candles)
    times = [c.open_time for c in rows]
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time")
    df = pd.DataFrame(
        {
            "open_time": pd.Series(times, dtype="int64", index=index),
            **{
                name: pd.Series([getattr(c, name) for c in rows], dtype=object, index=index)
                for name in ("open", "high", "low", "close", "volume", "turnover")
            },
            "confirmed": pd.Series([c.confirmed for c in rows], dtype=bool, index=index),
        },
        index=index,
    )
    return df
