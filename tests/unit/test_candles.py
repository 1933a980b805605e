"""Candles without a network: intervals and alignment, the rolling window, CSV and pandas
export, REST paging, and the live feed driven by synthetic ``kline`` frames over a fake REST."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bybitkit.connectors.candles import CandlesMixin
from bybitkit.errors import ConfigError, NetworkError, ValidationError
from bybitkit.market.candles import (
    INTERVALS,
    Candle,
    CandleWindow,
    align,
    align_up,
    find_gaps,
    interval_ms,
    next_open,
    parse_interval,
    read_csv,
    shift,
    to_dataframe,
    write_csv,
)
from bybitkit.sandbox.klines import interval_next, interval_start
from bybitkit.v5 import schemas as s
from bybitkit.v5.clock import ServerClock, wall_ms
from bybitkit.v5.ws import ConnectionState, decode_frame

D = Decimal
MIN = 60_000


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def bar(t: int, close: str = "100", *, volume: str | None = "1", confirmed: bool = True) -> Candle:
    c = D(close)
    v = D(volume) if volume is not None else None
    return Candle(t, c, c + 1, c - 1, c, v, v * c if v is not None else None, confirmed)


# -- intervals ----------------------------------------------------------------------------------


def test_every_bybit_code_parses_to_itself() -> None:
    for code in INTERVALS:
        assert parse_interval(code) == code
    assert parse_interval(1) == "1" and parse_interval(60) == "60" and parse_interval(" D ") == "D"


@pytest.mark.parametrize(
    ("name", "code"),
    [("1m", "1"), ("3m", "3"), ("5m", "5"), ("15m", "15"), ("30m", "30"), ("1h", "60"),
     ("60m", "60"), ("2h", "120"), ("4h", "240"), ("6h", "360"), ("12h", "720"), ("1H", "60"),
     ("1d", "D"), ("1D", "D"), ("1w", "W"), ("1W", "W"), ("1M", "M")],
)  # fmt: skip
def test_usual_names(name: str, code: str) -> None:
    assert parse_interval(name) == code


@pytest.mark.parametrize(
    "bad", ["2", "2m", "7m", "1y", "1mo", "m", "", "D1", 2, 0, True, None, 1.0]
)
def test_a_bad_interval_is_a_value_error_naming_the_allowed_ones(bad: Any) -> None:
    with pytest.raises(ValueError, match="interval") as info:
        parse_interval(bad)
    assert isinstance(info.value, ValidationError)
    text = str(info.value)
    for code in ("1, 3, 5, 15, 30, 60, 120, 240, 360, 720, D, W, M", "1h", "1d", "1M"):
        assert code in text


def test_interval_lengths() -> None:
    assert interval_ms("1") == MIN and interval_ms("1h") == 3_600_000
    assert interval_ms("D") == 86_400_000 and interval_ms("W") == 7 * 86_400_000
    with pytest.raises(ValidationError, match="month"):
        interval_ms("M")


def test_alignment_follows_bybit_day_week_month() -> None:
    t = ms(2024, 2, 29, 13, 47, 12) + 345  # a Thursday in a leap February
    assert align("1", t) == ms(2024, 2, 29, 13, 47)
    assert align("15", t) == ms(2024, 2, 29, 13, 45)
    assert align("4h", t) == ms(2024, 2, 29, 12)
    assert align("720", t) == ms(2024, 2, 29, 12)
    assert align("D", t) == ms(2024, 2, 29)  # UTC midnight
    assert align("W", t) == ms(2024, 2, 26)  # Monday 00:00 UTC
    assert datetime.fromtimestamp(align("W", t) / 1000, UTC).weekday() == 0
    assert align("M", t) == ms(2024, 2, 1)
    assert next_open("M", ms(2024, 2, 1)) == ms(2024, 3, 1)
    assert next_open("M", ms(2023, 12, 1)) == ms(2024, 1, 1)
    assert shift("M", ms(2024, 1, 1), -13) == ms(2022, 12, 1)
    assert shift("W", ms(2024, 2, 26), -1) == ms(2024, 2, 19)
    assert align_up("5", ms(2024, 1, 1, 0, 0)) == ms(2024, 1, 1, 0, 0)
    assert align_up("5", ms(2024, 1, 1, 0, 0) + 1) == ms(2024, 1, 1, 0, 5)
    assert align_up("M", ms(2024, 1, 15)) == ms(2024, 2, 1)


def test_alignment_agrees_with_the_sandbox_series() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        t = rng.randrange(0, ms(2040, 1, 1))
        for code in INTERVALS:
            start = align(code, t)
            assert start == interval_start(code, t), (code, t)
            assert next_open(code, start) == interval_next(code, start), (code, t)
            assert start <= t < next_open(code, start)


def test_candle_is_a_frozen_slots_dataclass() -> None:
    c = bar(ms(2024, 1, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.close = D(1)  # type: ignore[misc]
    assert not hasattr(c, "__dict__")
    assert c.time == datetime(2024, 1, 1, tzinfo=UTC)


# -- the window ---------------------------------------------------------------------------------

T0 = ms(2024, 1, 1, 12)


def test_window_sorts_dedupes_and_trims() -> None:
    w = CandleWindow("1m", size=3)
    assert w.load([bar(T0 + 2 * MIN), bar(T0), bar(T0 + MIN), bar(T0 + MIN)])
    assert [c.open_time for c in w.candles] == [T0, T0 + MIN, T0 + 2 * MIN]
    assert w.merge(bar(T0 + 3 * MIN))  # the oldest falls out
    assert [c.open_time for c in w.candles] == [T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]
    assert not w.merge(bar(T0))  # older than a full window: dropped
    assert not w.merge(bar(T0 + MIN))  # the same bar again: no change
    assert len(w) == 3 and w.last == bar(T0 + 3 * MIN)


def test_window_refuses_a_bar_off_the_grid() -> None:
    with pytest.raises(ValidationError, match="open_time"):
        CandleWindow("5").merge(bar(T0 + MIN))


def test_a_confirmed_bar_is_final_and_in_progress_never_goes_back() -> None:
    w = CandleWindow("1")
    assert w.merge(bar(T0, "100", volume="2", confirmed=False))
    assert not w.merge(bar(T0, "99", volume="1", confirmed=False))  # an older snapshot
    assert w.merge(bar(T0, "101", volume="3", confirmed=False))
    assert w.merge(bar(T0, "102", volume="3", confirmed=False))  # same volume, newer price
    assert w.merge(bar(T0, "103", volume="4", confirmed=True))
    assert not w.merge(bar(T0, "104", volume="5", confirmed=False))  # stale in-progress
    assert w.candles == [bar(T0, "103", volume="4", confirmed=True)]
    assert w.merge(bar(T0, "103.5", volume="4.5", confirmed=True))  # a late correction
    assert w.last_confirmed == bar(T0, "103.5", volume="4.5", confirmed=True)


def test_gaps_and_refill_start() -> None:
    w = CandleWindow("1")
    w.load([bar(T0), bar(T0 + MIN), bar(T0 + 4 * MIN, confirmed=False)])
    assert w.gaps() == [(T0 + 2 * MIN, T0 + 3 * MIN)]
    assert w.refill_start() == T0 + 2 * MIN
    w.load([bar(T0 + 2 * MIN), bar(T0 + 3 * MIN)])
    assert w.gaps() == [] and w.refill_start() is None  # the newest may be in progress
    # a bar superseded by a newer one without ever being confirmed: its close was missed
    w.merge(bar(T0 + 5 * MIN, confirmed=False))
    assert w.refill_start() == T0 + 4 * MIN
    assert find_gaps([bar(ms(2024, 1, 1)), bar(ms(2024, 3, 1))], "M") == [
        (ms(2024, 2, 1), ms(2024, 2, 1))
    ]


def test_apply_price_builds_bars_from_ticks() -> None:
    w = CandleWindow("1")
    assert w.apply_price(T0 + 5_000, D("10"))
    assert w.apply_price(T0 + 6_000, D("12"))
    assert w.apply_price(T0 + 7_000, D("9"))
    assert not w.apply_price(T0 + 8_000, D("9"))  # unchanged
    assert w.last == Candle(T0, D(10), D(12), D(9), D(9), None, None, False)
    assert w.apply_price(T0 + MIN, D("11"))  # a new bar confirms the previous one
    assert w.candles == [
        Candle(T0, D(10), D(12), D(9), D(9), None, None, True),
        Candle(T0 + MIN, D(11), D(11), D(11), D(11), None, None, False),
    ]
    assert not w.apply_price(T0 + 59_000, D("50"))  # a confirmed bar is final
    assert w.candles[0].high == D(12)


# -- export -------------------------------------------------------------------------------------


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    candles = [
        Candle(T0, D("65000.10"), D("65010"), D("64990.5"), D("65001"), D("0.00000001"),
               D("1E-3"), True),
        Candle(T0 + MIN, D("1"), D("1"), D("1"), D("1"), None, None, False),
    ]  # fmt: skip
    buf = io.StringIO()
    assert write_csv(candles, buf) == 2
    lines = buf.getvalue().splitlines()
    assert lines[0] == "open_time,time,open,high,low,close,volume,turnover,confirmed"
    assert lines[1] == (
        f"{T0},2024-01-01T12:00:00Z,65000.10,65010,64990.5,65001,0.00000001,0.001,true"
    )
    assert lines[2].endswith(",1,1,1,1,,,false")
    assert read_csv(io.StringIO(buf.getvalue())) == candles
    path = tmp_path / "c.csv"
    write_csv(candles, path)
    assert read_csv(str(path)) == candles


def test_to_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    candles = [bar(T0), bar(T0 + MIN, "101", volume=None, confirmed=False)]
    df = to_dataframe(candles)
    assert list(df.columns) == [
        "open_time", "open", "high", "low", "close", "volume", "turnover", "confirmed",
    ]  # fmt: skip
    assert str(df.index.tz) == "UTC" and df.index.name == "time"
    assert df.index[0] == pd.Timestamp("2024-01-01 12:00", tz="UTC")
    assert df["open_time"].dtype == "int64" and df["confirmed"].dtype == bool
    assert df["close"].iloc[1] == D("101") and isinstance(df["close"].iloc[1], Decimal)
    assert df["volume"].iloc[1] is None and df["confirmed"].tolist() == [True, False]
    assert len(to_dataframe([])) == 0


def test_to_dataframe_without_pandas_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"bybitkit\[pandas\]"):
        to_dataframe([bar(T0)])


# -- a connector over a fake REST ---------------------------------------------------------------

# "Now" for the fake exchange: 30 s into a minute, so no test here crosses a bar boundary.
NOW = ms(2024, 3, 1, 10, 0, 30)
NOW_BAR = align("1", NOW)


class FakeRest:
    """``kline``/``price_kline`` over a dict of one-minute rows, with Bybit's selection rules
    (start/end inclusive, newest ``limit`` first; start only: the oldest ``limit``)."""

    def __init__(self, rows: dict[int, Candle]) -> None:
        self.rows = rows
        self.clock = ServerClock(NOW - wall_ms())
        self.calls: list[dict[str, Any]] = []
        self.drop_once: set[int] = set()  # rows missing from the next answer that holds them
        self.fail = 0

    async def kline(
        self, category: str, symbol: str, interval: str, *, start: Any = None, end: Any = None,
        limit: Any = None,
    ) -> s.KlineResult:  # fmt: skip
        rows = self._select("last", interval, start, end, limit)
        return s.KlineResult(
            category=category,
            symbol=symbol,
            list=[
                s.KlineRow(start=c.open_time, open=c.open, high=c.high, low=c.low,
                           close=c.close, volume=c.volume or D(0), turnover=c.turnover or D(0))
                for c in rows
            ],
        )  # fmt: skip

    async def price_kline(
        self, kind: str, category: str, symbol: str, interval: str, *, start: Any = None,
        end: Any = None, limit: Any = None,
    ) -> s.PriceKlineResult:  # fmt: skip
        rows = self._select(kind, interval, start, end, limit)
        return s.PriceKlineResult(
            category=category,
            symbol=symbol,
            list=[
                s.PriceKlineRow(start=c.open_time, open=c.open, high=c.high, low=c.low,
                                close=c.close)
                for c in rows
            ],
        )  # fmt: skip

    def _select(self, kind: str, interval: str, start: Any, end: Any, limit: Any) -> list[Candle]:
        assert interval == "1"
        self.calls.append({"kind": kind, "start": start, "end": end, "limit": limit})
        if self.fail:
            self.fail -= 1
            raise NetworkError("fake REST down")
        limit = limit or 200
        assert 1 <= limit <= 1000
        times = sorted(
            t for t in self.rows
            if (start is None or t >= start) and (end is None or t <= end)
        )  # fmt: skip
        times = times[:limit] if start is not None and end is None else times[-limit:]
        dropped = self.drop_once & set(times)
        self.drop_once -= dropped
        return [self.rows[t] for t in reversed(times) if t not in dropped]


def history(n: int, end: int = NOW_BAR) -> dict[int, Candle]:
    rows = {}
    for i in range(n):
        t = end - i * MIN
        rows[t] = bar(t, str(1000 + i % 97), volume=str(1 + i % 5))
    return rows


class FakePublic:
    def __init__(self) -> None:
        self.connected = True
        self.topics: list[str] = []

    async def subscribe(self, topics: list[str], *, timeout: float | None = None) -> None:
        self.topics += [t for t in topics if t not in self.topics]

    async def unsubscribe(self, topics: list[str]) -> None:
        self.topics = [t for t in self.topics if t not in topics]


class FakeConnector(CandlesMixin):
    connector_id = "fake"

    def __init__(self, rows: dict[int, Candle], category: str = "spot") -> None:
        self.category = category
        self.rest = FakeRest(rows)  # type: ignore[assignment]
        self.public = FakePublic()  # type: ignore[assignment]
        self.rules = {"BTC-USDT": SimpleNamespace(symbol="BTCUSDT")}  # type: ignore[dict-item]
        self.tasks: set[asyncio.Task[Any]] = set()

    def normalize_pair(self, pair: str) -> str:
        if pair not in ("BTC-USDT", "BTCUSDT"):
            raise ValidationError("pair", "BTC-USDT", pair)
        return "BTC-USDT"

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for t in list(self.tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t


def times(candles: list[Candle]) -> list[int]:
    return [c.open_time for c in candles]


def contiguous(candles: list[Candle], step: int = MIN) -> bool:
    return all(b.open_time - a.open_time == step for a, b in pairwise(candles))


async def test_paging_backwards_joins_pages_without_gap_or_duplicate() -> None:
    ex = FakeConnector(history(5000))
    got = await ex.candles("BTCUSDT", "1m", limit=2500)
    assert len(got) == 2500 and contiguous(got) and got[-1].open_time == NOW_BAR
    assert [c["limit"] for c in ex.rest.calls] == [1000, 1000, 500]
    # each page ends 1 ms before the oldest bar of the previous one
    assert ex.rest.calls[1]["end"] == NOW_BAR - 999 * MIN - 1
    assert ex.rest.calls[2]["end"] == NOW_BAR - 1999 * MIN - 1
    assert got[-1].confirmed is False and all(c.confirmed for c in got[:-1])
    assert [c.close for c in got] == [ex.rest.rows[t].close for t in times(got)]


async def test_paging_stops_where_the_history_begins() -> None:
    ex = FakeConnector(history(1500))
    got = await ex.candles("BTC-USDT", "1", limit=5000)
    assert len(got) == 1500 and contiguous(got)
    assert len(ex.rest.calls) == 2
    assert await ex.candles("BTC-USDT", "1") == got[-200:]  # Bybit's default: 200


async def test_start_and_end_are_inclusive() -> None:
    ex = FakeConnector(history(5000))
    start, end = NOW_BAR - 3000 * MIN, NOW_BAR - 700 * MIN
    got = await ex.candles("BTC-USDT", "1", start=start, end=end)
    assert got[0].open_time == start and got[-1].open_time == end
    assert len(got) == 2301 and contiguous(got)
    assert all(c["start"] == start for c in ex.rest.calls)
    newest = await ex.candles("BTC-USDT", "1", start=start, end=end, limit=10)
    assert times(newest) == times(got)[-10:]
    # start only: the first ``limit`` bars from start (Bybit's start-only rule), or all to now
    first = await ex.candles("BTC-USDT", "1", start=start + 1, limit=1500)
    assert first[0].open_time == start + MIN and len(first) == 1500 and contiguous(first)
    rest_of_it = await ex.candles("BTC-USDT", "1", start=start)
    assert rest_of_it[0].open_time == start and rest_of_it[-1].open_time == NOW_BAR
    assert len(rest_of_it) == 3001


async def test_a_hole_between_pages_is_asked_again_and_a_real_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ex = FakeConnector(history(3000))
    ex.rest.drop_once = {NOW_BAR - 1500 * MIN}
    got = await ex.candles("BTC-USDT", "1", limit=2000)
    assert len(got) == 2000 and contiguous(got)
    del ex.rest.rows[NOW_BAR - 10 * MIN]  # the exchange itself has no such bar
    with caplog.at_level(logging.WARNING):
        got = await ex.candles("BTC-USDT", "1", limit=100)
    assert find_gaps(got, "1") == [(NOW_BAR - 10 * MIN, NOW_BAR - 10 * MIN)]
    assert "candles missing on the exchange" in caplog.text


async def test_mark_and_index_candles_have_no_volume() -> None:
    ex = FakeConnector(history(300), category="linear")
    got = await ex.candles("BTC-USDT", "1", limit=300, price="mark")
    assert len(got) == 300 and all(c.volume is None and c.turnover is None for c in got)
    assert {c["kind"] for c in ex.rest.calls} == {"mark"}
    await ex.candles("BTC-USDT", "1", limit=5, price="index")
    assert ex.rest.calls[-1]["kind"] == "index"
    spot = FakeConnector(history(10))
    with pytest.raises(ValidationError, match="price"):
        await spot.candles("BTC-USDT", "1", price="mark")
    with pytest.raises(ValidationError, match="price"):
        await ex.candles("BTC-USDT", "1", price="premium")


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"limit": 0}, "limit"), ({"limit": True}, "limit"), ({"start": 10, "end": 5}, "start"),
     ({"start": "0"}, "start")],
)  # fmt: skip
async def test_bad_arguments(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        await FakeConnector(history(10)).candles("BTC-USDT", "1", **kw)


# -- the live feed, driven by synthetic kline frames --------------------------------------------


def kline_frame(*bars: tuple[int, str, str, bool], interval: str = "1") -> Any:
    """A ``kline`` frame as Bybit sends it, decoded by the real wire decoder."""
    data = [
        {"start": t, "end": next_open(interval, t) - 1, "interval": interval, "open": "1000",
         "close": close, "high": str(max(D(close), D(1000))), "low": str(min(D(close), D(1000))),
         "volume": volume, "turnover": "0", "confirm": confirm, "timestamp": t + 1}
        for t, close, volume, confirm in bars
    ]  # fmt: skip
    text = json.dumps(
        {"topic": f"kline.{interval}.BTCUSDT", "data": data, "ts": NOW, "type": "snapshot"}
    )
    msg = decode_frame(text)
    assert isinstance(msg, s.KlineMessage)
    return msg


@pytest.fixture
async def feed_env() -> Any:
    ex = FakeConnector(history(500))
    yield ex
    await ex.stop()


async def nxt(it: AsyncIterator[list[Candle]]) -> list[Candle]:
    return await asyncio.wait_for(anext(it), 2)


async def test_feed_yields_history_then_in_progress_then_confirmed(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1m", window=50) as feed:
        assert ex.public.topics == ["kline.1.BTCUSDT"]
        it = aiter(feed)
        first = await nxt(it)
        assert times(first) == sorted(ex.rest.rows)[-50:] and first[-1].confirmed is False
        # the bar in progress moves
        ex._on_kline(kline_frame((NOW_BAR, "1234.5", "7", False)))
        win = await nxt(it)
        assert win[-1].close == D("1234.5") and win[-1].volume == D(7) and not win[-1].confirmed
        # an older snapshot of it (less volume) arrives late: ignored
        ex._on_kline(kline_frame((NOW_BAR, "1200", "6", False)))
        assert feed.last is not None and feed.last.close == D("1234.5")
        # confirmed, and the next bar starts (Bybit sends both, in this order)
        ex._on_kline(
            kline_frame((NOW_BAR, "1240", "8", True), (NOW_BAR + MIN, "1241", "0.5", False))
        )
        win = await nxt(it)
        assert len(win) == 50 and contiguous(win)
        assert win[-2] == Candle(NOW_BAR, D(1000), D(1240), D(1000), D(1240), D(8), D(0), True)
        assert win[-1].open_time == NOW_BAR + MIN and not win[-1].confirmed
        # a stale in-progress update of the confirmed bar changes nothing
        ex._on_kline(kline_frame((NOW_BAR, "1", "100", False)))
        assert feed.candles[-2].close == D(1240)
        assert feed.refills == 0 and len(ex.rest.calls) == 1  # history only
    assert ex.public.topics == [] and feed.closed and not ex.tasks


def later(ex: FakeConnector, *rows: Candle) -> None:
    """Time passes on the fake exchange: its clock moves on and the new bars exist."""
    for c in rows:
        ex.rest.rows[c.open_time] = c
    ex.rest.clock.offset_ms += max(c.open_time for c in rows) - NOW_BAR


async def test_feed_refills_a_hole_from_rest(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1", window=20) as feed:
        later(ex, *(bar(NOW_BAR + k * MIN, "2000", confirmed=False) for k in (1, 2, 3)))
        # two bars never arrived: the next one reveals the hole
        ex._on_kline(kline_frame((NOW_BAR + 3 * MIN, "2000", "1", False)))
        win = await feed.wait_for(lambda w: contiguous(w) and len(w) == 20, timeout=2)
        assert win[-1].open_time == NOW_BAR + 3 * MIN
        assert feed.refills == 1 and ex.rest.calls[-1]["start"] == NOW_BAR
        assert [c.close for c in win[-4:-1]] == [D(1000), D(2000), D(2000)]


async def test_feed_refills_a_bar_whose_confirm_was_missed(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1", window=10) as feed:
        later(ex, bar(NOW_BAR, "999", volume="9"), bar(NOW_BAR + MIN, "1001", volume="1"))
        ex._on_kline(kline_frame((NOW_BAR + MIN, "1001", "1", False)))
        win = await feed.wait_for(lambda w: w[-2].confirmed, timeout=2)
        assert win[-2].close == D(999) and win[-2].volume == D(9)
        assert feed.refills == 1 and ex.rest.calls[-1]["start"] == NOW_BAR


async def test_feed_refills_after_a_reconnect_since_the_last_confirmed_bar(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1", window=30) as feed:
        ex._candles_on_public_state(ConnectionState.DISCONNECTED)
        assert not feed.live
        # while down, the exchange's bars changed (a late correction and the bar in progress)
        ex.rest.rows[NOW_BAR - MIN] = bar(NOW_BAR - MIN, "555", volume="55")
        ex.rest.rows[NOW_BAR] = bar(NOW_BAR, "556", volume="56")
        ex._candles_on_public_state(ConnectionState.CONNECTING)
        ex._candles_on_public_state(ConnectionState.CONNECTED)
        assert feed.live
        await feed.wait_for(lambda w: w[-1].close == D(556), timeout=2)
        assert feed.refills == 1 and ex.rest.calls[-1]["start"] == NOW_BAR - MIN
        expected = await ex.candles("BTC-USDT", "1", limit=30)
        assert feed.candles == expected


async def test_a_failed_refill_is_retried(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1", window=10) as feed:
        feed.retry_s = 0.01
        ex.rest.fail = 2
        ex.rest.rows[NOW_BAR] = bar(NOW_BAR, "777", volume="70")
        ex._candles_on_public_state(ConnectionState.CONNECTED)
        await feed.wait_for(lambda w: w[-1].close == D(777), timeout=2)
        assert feed.refills == 1


async def test_feeds_share_a_topic_and_close_cleanly(feed_env: Any) -> None:
    ex = feed_env
    a = await ex.candles_feed("BTC-USDT", "1", window=5).start()
    b = await ex.candles_feed("BTCUSDT", "1m", window=7).start()
    assert ex.public.topics == ["kline.1.BTCUSDT"] and len(ex.tasks) == 2
    ex._on_kline(kline_frame((NOW_BAR, "4321", "99", False)))
    assert a.last == b.last and a.last is not None and a.last.close == D(4321)
    await a.close()
    assert ex.public.topics == ["kline.1.BTCUSDT"]  # b still uses it
    reader = asyncio.ensure_future(b.wait_for(lambda w: False))
    await asyncio.sleep(0.01)
    await b.close()
    with pytest.raises(Exception, match="closed"):
        await reader  # the loop ends when the feed stops
    assert ex.public.topics == [] and not ex.tasks
    with pytest.raises(ConfigError, match="start the feed"):
        aiter(ex.candles_feed("BTC-USDT", "1"))


async def test_stopping_the_connector_ends_the_feed(feed_env: Any) -> None:
    ex = feed_env
    async with ex.candles_feed("BTC-USDT", "1", window=5) as feed:
        seen = []

        async def read() -> None:
            seen.extend([w async for w in feed])

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.01)
        await ex.stop()  # the connector cancels the tasks it owns
        await asyncio.wait_for(reader, 1)
        assert feed.closed and len(seen) == 1


async def test_live_mark_candles_from_the_ticker() -> None:
    ex = FakeConnector(history(100), category="linear")
    try:
        async with ex.candles_feed("BTC-USDT", "1", window=10, price="mark") as feed:
            assert ex.public.topics == ["tickers.BTCUSDT"] and feed.last is not None
            assert feed.last.volume is None and ex.rest.calls[0]["kind"] == "mark"
            ex._on_mark_price("BTC-USDT", D("2000"), NOW + 1000)
            ex._on_mark_price("BTC-USDT", D("900"), NOW + 2000)
            ex._on_mark_price("BTC-USDT", None, NOW + 2500)  # no mark yet: ignored
            assert feed.last == Candle(NOW_BAR, D(1000), D(2000), D(900), D(900), None, None, False)
            ex._on_mark_price("BTC-USDT", D("950"), NOW_BAR + MIN + 10)
            assert feed.candles[-2].confirmed and feed.candles[-1].open == D(950)
            assert feed.refills == 0
        assert ex.public.topics == ["tickers.BTCUSDT"]  # shared with watch(): kept
        with pytest.raises(ValidationError, match="price"):
            ex.candles_feed("BTC-USDT", "1", price="index")
        with pytest.raises(ValidationError, match="price"):
            FakeConnector(history(5)).candles_feed("BTC-USDT", "1", price="mark")
        with pytest.raises(ValidationError, match="window"):
            ex.candles_feed("BTC-USDT", "1", window=0)
    finally:
        await ex.stop()
