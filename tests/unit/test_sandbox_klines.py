"""Sandbox candles: generated history, live updates, Bybit's kline query semantics, WS items."""

from __future__ import annotations

import itertools
import json
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bybitkit.sandbox.instruments import DEFAULT_INSTRUMENTS, Instrument
from bybitkit.sandbox.klines import (
    INTERVALS,
    MINUTE_MS,
    Bar,
    KlineSeries,
    interval_next,
    interval_start,
)
from bybitkit.v5.codec import decode, encode
from bybitkit.v5.schemas import KlineMessage, KlineResult, PriceKlineResult

D = Decimal
LIN_BTC = next(i for i in DEFAULT_INSTRUMENTS if i.category == "linear" and i.symbol == "BTCUSDT")
SPOT_ETH = next(i for i in DEFAULT_INSTRUMENTS if i.category == "spot" and i.symbol == "ETHUSDT")
PERP = next(i for i in DEFAULT_INSTRUMENTS if i.symbol == "BTCPERP")

END_MS = 1_709_251_234_567  # 2024-03-01 00:00:34.567 UTC (a Friday): history spans Feb and Mar
END_PRICE = 650_001  # 65000.10 on a 0.10 tick


def series(
    inst: Instrument = LIN_BTC, end_ms: int = END_MS, seed: int = 1, **kw: object
) -> KlineSeries:
    return KlineSeries.generate(inst, end_ms, END_PRICE, random.Random(seed), **kw)  # type: ignore[arg-type]


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def reference(minutes: list[Bar], interval: str) -> dict[int, Bar]:
    """Brute-force aggregation of one-minute bars, aligned independently with datetime."""

    def align(t: int) -> int:
        dt = datetime.fromtimestamp(t / 1000, UTC)
        if interval == "M":
            return ms(dt.year, dt.month, 1)
        if interval == "W":
            day = ms(dt.year, dt.month, dt.day)
            return day - dt.weekday() * 86_400_000
        size = 1440 if interval == "D" else int(interval)
        return t // (size * MINUTE_MS) * size * MINUTE_MS

    groups: dict[int, list[Bar]] = {}
    for b in minutes:
        groups.setdefault(align(b.start), []).append(b)
    return {
        s: Bar(
            s,
            g[0].open,
            max(b.high for b in g),
            min(b.low for b in g),
            g[-1].close,
            sum(b.volume for b in g),
            sum(b.turnover for b in g),
        )
        for s, g in groups.items()
    }


# --- generated history -------------------------------------------------------------------------


def test_history_shape() -> None:
    s = series()
    minutes = s.bars("1")
    assert len(s) == len(minutes) == 10_080
    assert all(b.start - a.start == MINUTE_MS for a, b in itertools.pairwise(minutes))
    assert s.last_start_ms == END_MS - END_MS % MINUTE_MS - MINUTE_MS
    assert s.first_start_ms == s.last_start_ms - 10_079 * MINUTE_MS
    assert minutes[-1].close == s.last_close == END_PRICE
    for b in minutes:
        assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume >= 0
        assert b.low * b.volume <= b.turnover <= b.high * b.volume
    # each bar opens where the previous one closed
    assert all(b.open == a.close for a, b in itertools.pairwise(minutes))


def test_realistic_walk() -> None:
    s = series()
    closes = [b.close for b in s.bars("1")]
    returns = [b / a - 1 for a, b in itertools.pairwise(closes)]
    stdev = (sum(r * r for r in returns) / len(returns)) ** 0.5
    assert 0.0003 < stdev < 0.0008  # ~0.05 % per minute for BTC
    day = s.bars("D")[-2]
    btc_per_day = day.volume / 1000
    assert 5_000 < btc_per_day < 200_000


def test_same_seed_same_history() -> None:
    a = series(seed=42)
    b = series(seed=42, end_ms=END_MS + 3 * 86_400_000)
    c = series(seed=43)
    strip = [bar[1:] for bar in a.bars("1")]
    assert strip == [bar[1:] for bar in b.bars("1")]
    assert strip != [bar[1:] for bar in c.bars("1")]
    assert b.first_start_ms - a.first_start_ms == 3 * 86_400_000


def test_minutes_and_price_only_series() -> None:
    s = series(minutes=20_000, with_volume=False)
    assert len(s) == 20_000
    assert all(b.volume == 0 and b.turnover == 0 for b in s.bars("1"))
    with pytest.raises(ValueError, match="minutes"):
        series(minutes=0)


def test_generation_is_cheap() -> None:
    t0 = time.perf_counter()
    for inst in DEFAULT_INSTRUMENTS:
        rng = random.Random(5)
        ticks = int(inst.initial_price_range[0] / inst.tick_size)
        KlineSeries.generate(inst, END_MS, ticks, rng)
        KlineSeries.generate(inst, END_MS, ticks, rng, with_volume=False)
        KlineSeries.generate(inst, END_MS, ticks, rng, with_volume=False)
    assert time.perf_counter() - t0 < 3.0  # ~0.15 s here; generous for slow CI machines


def test_track_follows_the_source() -> None:
    src = series()
    mark = KlineSeries.track(src, random.Random(3), end_price_ticks=END_PRICE + 20)
    assert len(mark) == len(src) and mark.first_start_ms == src.first_start_ms
    assert not mark.with_volume
    assert mark.last_close == END_PRICE + 20
    for a, b in zip(src.bars("1"), mark.bars("1"), strict=True):
        assert abs(b.close - a.close) < a.close * 0.005
        assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
    # a finer price unit: mark prices of linear BTCUSDT carry 2 decimals off the 0.10 tick
    fine = KlineSeries.track(src, random.Random(3), price_step=D("0.01"))
    assert fine.last_close == END_PRICE * 10
    row = fine.price_rows("1", limit=1)[0]
    assert row[4] == "65000.10"
    fine.on_price(END_MS, 6_500_012)
    assert fine.price_rows("1", limit=1)[0][4] == "65000.12"


def test_price_step_must_fit_the_decimals() -> None:
    with pytest.raises(ValueError, match="price_step"):
        series(price_step=D("0.001"))


# --- aggregation -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", INTERVALS)
def test_every_interval_aggregates_its_minutes(interval: str) -> None:
    s = series()
    s.on_trade(END_MS + 5_000, END_PRICE + 7, 3)
    minutes = s.bars("1")
    ref = reference(minutes, interval)
    got = s.bars(interval)
    assert [b.start for b in got] == sorted(ref)
    assert got == [ref[b.start] for b in got]
    # closed candles come from the cache: a second query gives the same
    assert s.bars(interval) == got


def test_alignment() -> None:
    s = series()
    for b in s.bars("D"):
        assert b.start % 86_400_000 == 0
    weeks = s.bars("W")
    assert [datetime.fromtimestamp(b.start / 1000, UTC) for b in weeks] == [
        datetime(2024, 2, 19, tzinfo=UTC),
        datetime(2024, 2, 26, tzinfo=UTC),
    ]
    assert [b.start for b in s.bars("M")] == [ms(2024, 2, 1)]  # history ends 2024-02-29 23:59
    s.advance(END_MS)  # the current minute, 2024-03-01 00:00, opens the March candle
    months = s.bars("M")
    assert [b.start for b in months] == [ms(2024, 2, 1), ms(2024, 3, 1)]
    assert months[1].open == months[1].close == END_PRICE
    assert interval_start("M", ms(2024, 12, 31, 23, 59)) == ms(2024, 12, 1)
    assert interval_next("M", ms(2024, 12, 1)) == ms(2025, 1, 1)
    assert interval_next("M", ms(2024, 2, 1)) == ms(2024, 3, 1)
    assert interval_start("W", ms(2024, 3, 3, 23, 59)) == ms(2024, 2, 26)  # Sunday -> Monday
    assert interval_start("W", ms(2024, 2, 26)) == ms(2024, 2, 26)
    assert interval_start("240", ms(2024, 2, 26, 5, 17)) == ms(2024, 2, 26, 4)
    with pytest.raises(ValueError, match="interval"):
        interval_start("2", 0)
    with pytest.raises(ValueError, match="interval"):
        s.rows("1h")


# --- REST queries ------------------------------------------------------------------------------


def test_docs_example_window() -> None:
    """kline docs: interval=60 start=1670601600000 end=1670608800000 -> three candles."""
    s = series(end_ms=1_670_620_000_000)
    rows = s.rows("60", 1_670_601_600_000, 1_670_608_800_000)
    assert [r[0] for r in rows] == ["1670608800000", "1670605200000", "1670601600000"]
    # mark-price-kline docs: interval=15, same window, limit=1 -> the newest candle in the window
    mark = s.price_rows("15", 1_670_601_600_000, 1_670_608_800_000, 1)
    assert [r[0] for r in mark] == ["1670608800000"]
    # index-price-kline docs: interval=1, limit=2 -> 1670608800000, 1670608740000
    index = s.price_rows("1", 1_670_601_600_000, 1_670_608_800_000, 2)
    assert [r[0] for r in index] == ["1670608800000", "1670608740000"]


def test_limit_and_window_semantics() -> None:
    s = series()
    newest = s.rows("1")
    assert len(newest) == 200
    assert int(newest[0][0]) == s.last_start_ms
    assert [int(r[0]) for r in newest] == sorted((int(r[0]) for r in newest), reverse=True)
    assert len(s.rows("1", limit=1000)) == 1000
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            s.rows("1", limit=bad)
    first = s.first_start_ms
    # only start: the oldest candles from start on (still newest first in the list)
    from_start = s.rows("5", start=first, limit=3)
    assert interval_start("5", first) == first  # the history starts on a 5-minute boundary
    assert [int(r[0]) for r in from_start] == [first + k * MINUTE_MS for k in (10, 5, 0)]
    # a start inside a candle skips that candle (its start lies before the window)
    from_inside = s.rows("5", start=first + 1, limit=2)
    assert [int(r[0]) for r in from_inside] == [first + k * MINUTE_MS for k in (10, 5)]
    # only end: the newest candles up to end, end inclusive
    to_end = s.rows("1", end=first + 4 * MINUTE_MS)
    assert [int(r[0]) for r in to_end] == [first + k * MINUTE_MS for k in (4, 3, 2, 1, 0)]
    # start and end between candle starts; an empty window
    mid = s.rows("60", first + 1, first + 3 * 3_600_000 + 1)
    assert len(mid) == 3
    assert s.rows("1", start=first + 5, end=first + 6) == []
    assert s.rows("1", start=first + 10 * MINUTE_MS, end=first) == []
    assert s.rows("1", end=first - 1) == []
    assert len(s.rows("1", start=s.last_start_ms + 10 * MINUTE_MS)) == 0
    # whole history in D candles with limit 2: the two newest
    assert [int(r[0]) for r in s.rows("D", limit=2)] == [b.start for b in s.bars("D")[-2:]][::-1]


def test_rows_are_exact_text_and_decode() -> None:
    s = series()
    rows = s.rows("5", limit=50)
    res = decode(KlineResult, encode({"category": "linear", "symbol": "BTCUSDT", "list": rows}))
    bars = s.bars("5")[-50:][::-1]
    assert len(res.list) == 50
    for row, text, bar in zip(res.list, rows, bars, strict=True):
        assert len(text) == 7 and all(isinstance(x, str) for x in text)
        assert row.start == bar.start
        assert (row.open, row.high, row.low, row.close) == tuple(
            LIN_BTC.from_ticks(x) for x in (bar.open, bar.high, bar.low, bar.close)
        )
        assert text[1] == LIN_BTC.price_str(bar.open)
        assert len(text[4].split(".")[1]) == 2
        assert row.volume == LIN_BTC.from_lots(bar.volume)
        assert row.turnover == bar.turnover * LIN_BTC.tick_size * LIN_BTC.lot_size
        assert row.turnover == s.turnover_decimal(bar.turnover)
        assert text[6] == "0" or not text[6].endswith("0")
    prices = s.price_rows("60", limit=5)
    res2 = decode(PriceKlineResult, json.dumps({"category": "linear", "list": prices}))
    assert [len(r) for r in prices] == [5] * 5
    assert [r.start for r in res2.list] == [b.start for b in s.bars("60")[-5:][::-1]]


def test_spot_and_perp_text() -> None:
    spot = KlineSeries.generate(SPOT_ETH, END_MS, 300_012, random.Random(1))
    row = spot.rows("1", limit=1)[0]
    assert row[4] == "3000.12"
    assert D(row[5]) == SPOT_ETH.from_lots(spot.minute_bar(-1).volume)
    perp = KlineSeries.generate(PERP, END_MS, 130_001, random.Random(1))
    assert perp.rows("1", limit=1)[0][4] == "65000.5"


# --- live updates ------------------------------------------------------------------------------


def test_on_trade_updates_the_current_bar() -> None:
    s = series()
    now = END_MS  # the minute after the history
    s.on_trade(now, END_PRICE + 10, 5)
    bar = s.minute_bar(-1)
    assert bar.start == now - now % MINUTE_MS
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        END_PRICE + 10,
        END_PRICE + 10,
        END_PRICE + 10,
        END_PRICE + 10,
        5,
    )
    s.on_trade(now + 1000, END_PRICE + 30, 2)
    s.on_trade(now + 2000, END_PRICE - 40, 1)
    s.on_trade(now + 3000, END_PRICE + 1, 4)
    bar = s.minute_bar(-1)
    assert (bar.open, bar.high, bar.low, bar.close) == (
        END_PRICE + 10,
        END_PRICE + 30,
        END_PRICE - 40,
        END_PRICE + 1,
    )
    assert bar.volume == 12
    assert bar.turnover == (
        (END_PRICE + 10) * 5 + (END_PRICE + 30) * 2 + (END_PRICE - 40) + (END_PRICE + 1) * 4
    )
    top = s.rows("1", limit=1)[0]
    assert top[4] == LIN_BTC.price_str(END_PRICE + 1) and top[5] == "0.012"
    # the open 5m candle includes it; its close is the last price
    five = s.rows("5", limit=1)[0]
    assert five[4] == LIN_BTC.price_str(END_PRICE + 1)
    assert D(five[2]) >= LIN_BTC.from_ticks(END_PRICE + 30)


def test_gap_minutes_are_flat() -> None:
    s = series()
    n = len(s)
    s.on_trade(END_MS + 5 * MINUTE_MS, END_PRICE + 100, 1)
    assert len(s) == n + 6
    for k in range(n, n + 5):
        b = s.minute_bar(k)
        assert (b.open, b.high, b.low, b.close, b.volume, b.turnover) == (
            END_PRICE,
            END_PRICE,
            END_PRICE,
            END_PRICE,
            0,
            0,
        )
    assert s.minute_bar(-1).open == END_PRICE + 100
    starts = [b.start for b in s.bars("1")]
    assert all(b - a == MINUTE_MS for a, b in itertools.pairwise(starts))


def test_advance_then_trade_gives_the_same_bar() -> None:
    a, b = series(), series()
    a.advance(END_MS)  # e.g. a query made the current minute exist as a flat placeholder
    assert a.minute_bar(-1).volume == 0 and a.last_close == END_PRICE
    a.on_trade(END_MS + 10, END_PRICE - 3, 2)
    b.on_trade(END_MS + 10, END_PRICE - 3, 2)
    assert a.minute_bar(-1) == b.minute_bar(-1)
    assert a.minute_bar(-1).open == END_PRICE - 3


def test_rows_with_now_advance_the_series() -> None:
    s = series()
    later = END_MS + 30 * MINUTE_MS
    rows = s.rows("1", limit=3, now_ms=later)
    assert int(rows[0][0]) == later - later % MINUTE_MS
    assert rows[0][1] == rows[0][4] == LIN_BTC.price_str(END_PRICE) and rows[0][5] == "0"


def test_late_trade_updates_a_closed_bar() -> None:
    s = series()
    s.on_trade(END_MS, END_PRICE, 1)
    before = s.bars("5")
    old = s.minute_bar(-3)
    s.on_trade(old.start + 1, old.high + 1000, 7)
    changed = s.minute_bar(-3)
    assert (changed.high, changed.close, changed.volume) == (
        old.high + 1000,
        old.close,
        old.volume + 7,
    )
    assert s.bars("5") == list(reference(s.bars("1"), "5").values())
    assert s.bars("5") != before
    with pytest.raises(ValueError, match="ts_ms"):
        s.on_trade(s.first_start_ms - 1, END_PRICE, 1)


def test_summary() -> None:
    s = series()
    day = s.summary(s.last_start_ms - 1439 * MINUTE_MS, s.last_start_ms)
    assert day is not None
    minutes = s.bars("1")[-1440:]
    assert day == Bar(
        minutes[0].start,
        minutes[0].open,
        max(b.high for b in minutes),
        min(b.low for b in minutes),
        minutes[-1].close,
        sum(b.volume for b in minutes),
        sum(b.turnover for b in minutes),
    )
    assert s.summary(0, s.first_start_ms - 1) is None


# --- WebSocket ---------------------------------------------------------------------------------


def test_ws_bar_matches_the_example_shape(examples_dir: Path) -> None:
    example = json.loads((examples_dir / "ws_kline.json").read_text())["response"]
    s = series()
    now = END_MS + 2 * MINUTE_MS + 1234
    s.on_trade(now, END_PRICE + 5, 9)
    item = s.ws_bar("5", now)
    ex_item = example["data"][0]
    assert {k: type(v) for k, v in item.items()} == {k: type(v) for k, v in ex_item.items()}
    assert ex_item["end"] - ex_item["start"] == 5 * MINUTE_MS - 1
    assert item["start"] == interval_start("5", now)
    assert item["end"] == item["start"] + 5 * MINUTE_MS - 1
    assert (item["interval"], item["confirm"], item["timestamp"]) == ("5", False, now)
    assert item["close"] == LIN_BTC.price_str(END_PRICE + 5)
    assert item["open"] == s.rows("5", limit=1)[0][1]
    msg = {"topic": "kline.5.BTCUSDT", "data": [item], "ts": now, "type": "snapshot"}
    bar = decode(KlineMessage, encode(msg)).data[0]
    assert bar.close == LIN_BTC.from_ticks(END_PRICE + 5)
    assert bar.confirm is False
    month = s.ws_bar("M", now)
    assert month["end"] == ms(2024, 4, 1) - 1


def test_confirmed_since_reports_each_closed_candle_once() -> None:
    s = series()
    t0 = END_MS  # 00:00:34 on a 5-minute boundary
    s.on_trade(t0, END_PRICE, 1)
    pushed: list[dict[str, object]] = []
    since = t0
    for k in range(1, 25):  # every 30 s for 12 minutes
        now = t0 + k * 30_000
        s.on_trade(now, END_PRICE + k, 1)
        pushed += s.confirmed_since("5", since, now)
        since = now
    starts = [p["start"] for p in pushed]
    base = interval_start("5", t0)
    assert starts == [base, base + 5 * MINUTE_MS]
    assert all(p["confirm"] is True for p in pushed)
    expected = {b.start: b for b in s.bars("5")}
    for p in pushed:
        bar = expected[p["start"]]  # type: ignore[index]
        assert p["close"] == LIN_BTC.price_str(bar.close)
        assert p["volume"] == LIN_BTC.qty_str(bar.volume)
        assert p["timestamp"] == p["end"]
    # the 1m candles closed over the same time: one per minute boundary crossed
    ones = s.confirmed_since("1", t0, t0 + 12 * MINUTE_MS)
    assert [p["start"] for p in ones] == [
        interval_start("1", t0) + k * MINUTE_MS for k in range(12)
    ]
    assert s.confirmed_since("1", t0, t0) == []
