"""The local order book: REFERENCE §12.1 rules, exact units, queries, and a property test
against a plain dict-of-Decimal reference book fed the same JSON text."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bybitkit.market.order_book as order_book_module
from bybitkit.errors import DecodeError
from bybitkit.market import OrderBook
from bybitkit.v5.schemas import OrderbookMessage
from bybitkit.v5.ws import decode_frame

D = Decimal
SYM = "BTCUSDT"

Levels = list[tuple[str, str]]


def frame(
    kind: str,
    u: int,
    b: Levels | None = None,
    a: Levels | None = None,
    *,
    seq: int | None = None,
    symbol: str = SYM,
    depth: int = 50,
) -> str:
    """An orderbook frame as Bybit writes it (compact JSON, linear key order)."""
    msg = {
        "topic": f"orderbook.{depth}.{symbol}",
        "type": kind,
        "ts": 1_700_000_000_000 + u,
        "data": {
            "s": symbol,
            "b": [list(x) for x in b or []],
            "a": [list(x) for x in a or []],
            "u": u,
            "seq": u * 10 if seq is None else seq,
        },
        "cts": 1_700_000_000_000 + u - 2,
    }
    return json.dumps(msg, separators=(",", ":"))


def snap(u: int = 100, b: Levels | None = None, a: Levels | None = None, **kw: Any) -> str:
    b = [("30000.10", "1.000"), ("29999.90", "0.250")] if b is None else b
    a = [("30000.20", "0.500"), ("30001.00", "2.000")] if a is None else a
    return frame("snapshot", u, b, a, **kw)


def example(examples_dir: Path, name: str) -> str:
    response = json.loads((examples_dir / f"{name}.json").read_text())["response"]
    return json.dumps(response, separators=(",", ":"))


# -- the shared examples --------------------------------------------------------------------------


def test_snapshot_example(examples_dir: Path) -> None:
    book = OrderBook(SYM, depth=50)
    assert book.apply_frame(example(examples_dir, "ws_orderbook_snapshot"))
    assert book.is_valid and book.invalid_reason is None and book.is_usable
    assert book.best_bid() == (D("16493.50"), D("0.006"))
    assert book.best_ask() == (D("16611.00"), D("0.029"))
    assert book.bids() == [(D("16493.50"), D("0.006")), (D("16493.00"), D("0.100"))]
    assert book.asks() == [(D("16611.00"), D("0.029")), (D("16612.00"), D("0.213"))]
    assert (book.u, book.seq, book.ts) == (18521288, 7961638724, 1672304484978)
    # learnt units: the text resolution
    assert book.tick_size == D("0.01") and book.lot_size == D("0.001")
    assert book.best_bid_ticks() == (1649350, 6)
    assert book.best_ask_ticks() == (1661100, 29)


def test_delta_example(examples_dir: Path) -> None:
    delta = example(examples_dir, "ws_orderbook_delta")  # u = 177400507
    book = OrderBook(SYM, depth=50)
    seed_b = [("30247.20", "1.000"), ("30240.00", "5.000"), ("30230.00", "1.000")]
    seed_a = [("30248.70", "1.000"), ("30249.60", "3.000"), ("30260.00", "1.000")]
    assert book.apply_frame(snap(177400506, seed_b, seed_a))
    assert book.apply_frame(delta)
    assert book.u == 177400507 and book.seq == 66544703342
    assert book.bids() == [
        (D("30247.20"), D("30.028")),  # replaced
        (D("30245.40"), D("0.224")),  # inserted
        (D("30242.10"), D("1.593")),
        (D("30240.30"), D("1.305")),
        (D("30230.00"), D("1.000")),  # 30240.00 deleted
    ]
    assert book.asks() == [
        (D("30249.30"), D("0.892")),  # 30248.70 deleted
        (D("30249.50"), D("1.778")),
        (D("30251.90"), D("2.947")),  # 30249.60 deleted
        (D("30252.20"), D("0.659")),
        (D("30252.50"), D("4.591")),
        (D("30260.00"), D("1.000")),
    ]


def test_delta_example_after_the_snapshot_example_is_a_gap(examples_dir: Path) -> None:
    book = OrderBook(SYM, depth=50)
    assert book.apply_frame(example(examples_dir, "ws_orderbook_snapshot"))
    assert not book.apply_frame(example(examples_dir, "ws_orderbook_delta"))
    assert book.invalid_reason == "gap"
    assert book.best_bid() == (D("16493.50"), D("0.006"))  # unchanged, still readable


def test_the_connector_path_decode_frame_then_apply(examples_dir: Path) -> None:
    msg = decode_frame(example(examples_dir, "ws_orderbook_snapshot"))
    assert isinstance(msg, OrderbookMessage)
    book = OrderBook("BTC-USDT", depth=50)  # the trading-pair spelling is accepted
    assert book.apply(msg)
    assert book.best_ask() == (D("16611.00"), D("0.029"))


def test_bytes_frames() -> None:
    book = OrderBook(SYM)
    assert book.apply_frame(snap().encode())
    assert book.best_bid() == (D("30000.10"), D("1.000"))


# -- delta rules ----------------------------------------------------------------------------------


def test_delta_delete_insert_replace() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(
        frame(
            "delta",
            101,
            [("30000.10", "0"), ("29999.95", "0.100"), ("29999.90", "0.300")],
            [("30000.20", "0"), ("30000.15", "0.700")],
        )
    )
    assert book.bids() == [(D("29999.95"), D("0.100")), (D("29999.90"), D("0.300"))]
    assert book.asks() == [(D("30000.15"), D("0.700")), (D("30001.00"), D("2.000"))]
    assert book.spread() == D("0.20") and book.mid() == D("30000.05")
    assert (book.u, book.seq, book.bid_count, book.ask_count) == (101, 1010, 2, 2)


def test_deleting_an_unknown_level_is_ignored() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(frame("delta", 101, [("123.45", "0")], [("99999.00", "0.000")]))
    assert book.bid_count == 2 and book.ask_count == 2


def test_a_delta_may_empty_a_side() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(frame("delta", 101, [("30000.10", "0"), ("29999.90", "0")]))
    assert book.best_bid() is None and book.best_bid_ticks() is None
    assert book.mid() is None and book.spread() is None
    assert book.is_valid  # an empty side is not crossed
    assert book.apply_frame(frame("delta", 102, [], [("30000.20", "0"), ("30001.00", "0")]))
    assert book.best_ask() is None and book.best_ask_ticks() is None and book.asks() == []


def test_delta_before_any_snapshot_is_invalid() -> None:
    book = OrderBook(SYM)
    assert not book.is_valid and book.invalid_reason == "no snapshot"
    assert not book.apply_frame(frame("delta", 5, [("1.00", "1")]))
    assert book.invalid_reason == "no snapshot" and book.bid_count == 0 and book.u == 0
    assert book.apply_frame(snap(7))


def test_gap_invalidates_until_the_next_snapshot() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    before = book.bids(), book.asks()
    assert not book.apply_frame(frame("delta", 102, [("29999.00", "1.000")]))  # 101 skipped
    assert (book.is_valid, book.invalid_reason) == (False, "gap")
    assert (book.bids(), book.asks()) == before and book.u == 100
    # later deltas, even "continuous" ones, are ignored until a snapshot
    assert not book.apply_frame(frame("delta", 101, [("29999.00", "1.000")]))
    assert not book.apply_frame(frame("delta", 103, [("29999.00", "1.000")]))
    assert (book.bids(), book.asks()) == before and book.invalid_reason == "gap"
    assert book.apply_frame(snap(500, [("10.00", "1.000")], [("11.00", "1.000")]))
    assert book.is_valid and book.invalid_reason is None and book.u == 500
    assert book.bids() == [(D("10.00"), D("1.000"))]
    assert book.apply_frame(frame("delta", 501, [("10.50", "2.000")]))


def test_duplicate_or_older_delta_is_a_gap() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(frame("delta", 101, [("29999.00", "1.000")]))
    assert not book.apply_frame(frame("delta", 101, [("29998.00", "1.000")]))
    assert book.invalid_reason == "gap"


def test_u_1_resets_the_book_from_that_message() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(frame("delta", 1, [("500.00", "1.000")], [("501.00", "2.000")]))
    assert book.bids() == [(D("500.00"), D("1.000"))]
    assert book.asks() == [(D("501.00"), D("2.000"))]
    assert book.u == 1 and book.is_valid
    assert book.apply_frame(frame("delta", 2, [("500.50", "1.000")]))
    # a restart also repairs a gapped book
    assert not book.apply_frame(frame("delta", 9, [("1.00", "1.000")]))
    assert book.apply_frame(frame("delta", 1, [("7.00", "1.000")], [("8.00", "1.000")]))
    assert book.is_valid and book.best_bid() == (D("7.00"), D("1.000"))


def test_a_new_snapshot_replaces_the_book() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    book.apply_frame(frame("delta", 101, [("29000.00", "9.000")]))
    assert book.apply_frame(snap(50, [("1.00", "1.000")], [("2.00", "1.000")]))  # u may go back
    assert book.bids() == [(D("1.00"), D("1.000"))] and book.asks() == [(D("2.00"), D("1.000"))]
    assert book.u == 50


def test_depth_1_same_u_resend_is_not_a_gap() -> None:
    book = OrderBook(SYM, depth=1, stale_after=3.5)
    one_b, one_a = [("30000.10", "1.000")], [("30000.20", "0.500")]
    assert book.apply_frame(snap(77, one_b, one_a, depth=1), received=10.0)
    assert book.apply_frame(snap(77, one_b, one_a, depth=1), received=13.0)
    assert book.is_valid and book.u == 77 and book.last_update == 13.0
    assert book.apply_frame(snap(78, [("30000.00", "2.000")], one_a, depth=1), received=13.1)
    assert book.best_bid() == (D("30000.00"), D("2.000"))


def test_stale_after_guard_at_depth_1() -> None:
    with pytest.raises(ValueError, match=r"3\.0 s"):
        OrderBook(SYM, depth=1, stale_after=2.9)
    OrderBook(SYM, depth=1, stale_after=3.0)
    OrderBook(SYM, depth=50, stale_after=0.5)
    with pytest.raises(ValueError):
        OrderBook(SYM, stale_after=0)
    with pytest.raises(ValueError):
        OrderBook(SYM, depth=0)


def test_crossed_book_is_invalid_and_recovers_when_it_uncrosses() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert not book.apply_frame(frame("delta", 101, [("30000.20", "1.000")]))  # bid == ask
    assert (book.is_valid, book.invalid_reason) == (False, "crossed")
    assert not book.is_usable
    # continuous deltas keep the copy exact; it is valid again once uncrossed
    assert book.apply_frame(frame("delta", 102, [("30000.20", "0")]))
    assert book.is_valid and book.best_bid() == (D("30000.10"), D("1.000"))
    # but a gap while crossed is a gap
    book.apply_frame(frame("delta", 103, [("30005.00", "1.000")]))
    assert book.invalid_reason == "crossed"
    assert not book.apply_frame(frame("delta", 105, [("30005.00", "0")]))
    assert book.invalid_reason == "gap"
    assert not book.apply_frame(frame("delta", 104, [("30005.00", "0")]))


def test_crossed_snapshot_is_invalid() -> None:
    book = OrderBook(SYM)
    assert not book.apply_frame(snap(1, [("10.00", "1")], [("9.00", "1")]))
    assert book.invalid_reason == "crossed"


def test_invalidate_until_snapshot() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    book.invalidate("disconnected")
    assert (book.is_valid, book.invalid_reason) == (False, "disconnected")
    assert not book.apply_frame(frame("delta", 101, [("29999.00", "1.000")]))
    assert book.invalid_reason == "disconnected" and book.bid_count == 2
    assert book.apply_frame(snap(300))


# -- age and staleness ----------------------------------------------------------------------------


def test_age_and_staleness_use_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(order_book_module, "_monotonic", lambda: now[0])
    book = OrderBook(SYM, stale_after=5.0)
    assert book.age == float("inf") and book.is_stale and not book.is_usable
    book.apply_frame(snap(100))  # received "now"
    assert book.last_update == 1000.0 and book.age == 0.0
    assert book.is_usable
    now[0] = 1005.0
    assert book.age == 5.0 and not book.is_stale and book.is_usable
    now[0] = 1005.5
    assert book.is_stale and not book.is_usable and book.is_valid
    book.apply_frame(frame("delta", 101, [("29999.00", "1.000")]), received=1005.25)
    assert book.age == 0.25 and book.is_usable
    # ignored messages do not refresh the age
    book.apply_frame(frame("delta", 200, [("29998.00", "1.000")]), received=1005.5)
    assert book.last_update == 1005.25
    never = OrderBook(SYM)  # no stale_after: never stale
    never.apply_frame(snap(1), received=0.0)
    assert not never.is_stale and never.is_usable


def test_exchange_time_is_not_used_for_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_book_module, "_monotonic", lambda: 50.0)
    book = OrderBook(SYM, stale_after=10)
    book.apply_frame(snap(100))  # ts is 2023; the local clock says 50
    assert book.age == 0.0 and book.ts == 1_700_000_000_100


# -- units: learnt, given, refined ----------------------------------------------------------------


def test_learnt_units_are_the_text_resolution() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(1, [("30000.10", "0.250")], [("30000.20", "1.5")]))
    assert book.tick_size == D("0.01") and book.lot_size == D("0.001")  # finest seen
    assert book.best_bid_ticks() == (3000010, 250)
    assert book.best_ask_ticks() == (3000020, 1500)
    assert book.best_ask() == (D("30000.20"), D("1.500"))
    assert book.ticks_to_price(7) == D("0.07") and book.lots_to_size(7) == D("0.007")


def test_finer_price_rescales_exactly() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.tick_size == D("0.01")
    assert book.apply_frame(frame("delta", 101, [("30000.105", "0.125")]))
    assert book.tick_size == D("0.001")
    assert book.bids() == [
        (D("30000.105"), D("0.125")),
        (D("30000.10"), D("1.000")),
        (D("29999.90"), D("0.250")),
    ]
    assert book.best_bid_ticks() == (30000105, 125)
    assert book.best_ask_ticks() == (30000200, 500)
    # the old texts still find their (rescaled) levels
    assert book.apply_frame(frame("delta", 102, [("30000.10", "0")], [("30000.20", "0.600")]))
    assert book.bids()[1] == (D("29999.90"), D("0.250"))
    assert book.best_ask() == (D("30000.20"), D("0.600"))


def test_finer_size_rescales_exactly() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    assert book.apply_frame(frame("delta", 101, [("29999.90", "0.2505")]))
    assert book.lot_size == D("0.0001")
    assert book.bids() == [(D("30000.10"), D("1.000")), (D("29999.90"), D("0.2505"))]
    assert book.best_bid_ticks() == (3000010, 10000)
    assert book.depth_volume("bid") == D("1.2505")


def test_coarser_and_padded_text_is_the_same_level() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(1, [("100.50", "1.000")], [("101", "2")]))
    assert book.tick_size == D("0.01")
    assert book.lot_size == D("0.001")  # "1.000": the text resolution, though a whole number
    # a learnt tick follows the finest text: "101.000" refines it to 0.001
    assert book.apply_frame(frame("delta", 2, [("100.5", "3")], [("101.000", "0")]))
    assert book.tick_size == D("0.001")
    assert book.bids() == [(D("100.5"), D("3"))] and book.asks() == []
    assert book.best_bid_ticks() == (100500, 3000)


def test_integer_text() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(1, [("30000", "12300"), ("29999", "5")], [("30001", "7")]))
    assert book.tick_size == D(1) and book.lot_size == D(1)
    assert book.best_bid_ticks() == (30000, 12300)
    assert book.apply_frame(frame("delta", 2, [("30000", "0"), ("29999", "6")]))
    assert book.bids() == [(D("29999"), D("6"))]


def test_given_units() -> None:
    book = OrderBook(SYM, tick_size=D("0.5"), lot_size=D("0.010"))
    assert book.tick_size == D("0.5") and book.lot_size == D("0.01")
    book.apply_frame(snap(1, [("30000.50", "1.000")], [("30001.0", "0.02")]))
    assert book.best_bid_ticks() == (60001, 100)
    assert book.best_ask_ticks() == (60002, 2)
    assert book.best_bid() == (D("30000.5"), D("1.00"))
    # off the given grid: refined to the text resolution, exactly
    assert book.apply_frame(frame("delta", 2, [("30000.25", "0.005")]))
    assert book.tick_size == D("0.01") and book.lot_size == D("0.001")
    assert book.bids() == [(D("30000.50"), D("1.000")), (D("30000.25"), D("0.005"))]
    assert book.best_ask_ticks() == (3000100, 20)


def test_given_units_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OrderBook(SYM, tick_size=D(0))
    with pytest.raises(ValueError):
        OrderBook(SYM, lot_size=D("-0.1"))
    with pytest.raises(ValueError):
        OrderBook(SYM, tick_size=0.1)  # type: ignore[arg-type]  # floats are refused


def test_negative_prices_are_exact() -> None:
    book = OrderBook(SYM)
    assert book.apply_frame(snap(1, [("-1.50", "1"), ("-2.00", "1")], [("-1.25", "2")]))
    assert book.best_bid() == (D("-1.50"), D("1")) and book.best_ask() == (D("-1.25"), D("2"))
    assert book.spread() == D("0.25") and book.mid() == D("-1.375")


# -- malformed input ------------------------------------------------------------------------------


def test_malformed_frame_raises_and_leaves_the_book_untouched() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    with pytest.raises(DecodeError):
        book.apply_frame('{"topic":"orderbook.50.BTCUSDT","type":"delta"')
    with pytest.raises(DecodeError):
        book.apply_frame('{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{}}')
    assert book.is_valid and book.u == 100
    with pytest.raises(DecodeError, match="unknown type"):
        book.apply_frame(frame("update", 101))
    assert book.is_valid and book.u == 100


@pytest.mark.parametrize(
    "price,size",
    [
        ("abc", "1.000"),
        ("1.2.34", "1"),
        ("1.2.3x", "1"),
        ("1e5", "1"),
        ("", "1"),
        ("1.00", "1.2.345"),
    ],
)
def test_unreadable_level_invalidates(price: str, size: str) -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    with pytest.raises(DecodeError):
        book.apply_frame(frame("delta", 101, [(price, size)]))
    assert (book.is_valid, book.invalid_reason) == (False, "bad frame")
    assert not book.apply_frame(frame("delta", 102, []))
    assert book.apply_frame(snap(200))


@pytest.mark.parametrize("size", ["-1.000", "-5", "x", "x.000", "0.0.00"])
def test_unreadable_or_negative_size_invalidates(size: str) -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    with pytest.raises(DecodeError):
        book.apply_frame(frame("delta", 101, [], [("30002.00", size)]))
    assert book.invalid_reason == "bad frame"
    with pytest.raises(DecodeError):
        book.apply_frame(snap(102, [("1.00", size)], []))
    assert book.invalid_reason == "bad frame"


def test_another_symbols_message_is_refused() -> None:
    book = OrderBook(SYM)
    book.apply_frame(snap(100))
    with pytest.raises(ValueError, match="ETHUSDT"):
        book.apply_frame(frame("delta", 101, [("1.00", "1")], symbol="ETHUSDT"))
    assert book.is_valid and book.u == 100


# -- memory bounds --------------------------------------------------------------------------------


def test_a_side_beyond_twice_the_depth_loses_its_far_end() -> None:
    book = OrderBook(SYM, depth=2)
    bids = [(f"{100 - i}.00", "1") for i in range(7)]
    asks = [(f"{200 + i}.00", "1") for i in range(5)]
    assert book.apply_frame(snap(1, bids, asks, depth=2))
    assert [p for p, _ in book.bids()] == [D("100.00"), D("99.00"), D("98.00"), D("97.00")]
    assert [p for p, _ in book.asks()] == [D("200.00"), D("201.00"), D("202.00"), D("203.00")]
    assert book.apply_frame(frame("delta", 2, [("100.50", "1")], [("199.50", "1")], depth=2))
    assert [p for p, _ in book.bids()] == [D("100.50"), D("100.00"), D("99.00"), D("98.00")]
    assert [p for p, _ in book.asks()][-1] == D("202.00")


def test_churn_keeps_the_book_exact_through_compaction_and_cache_eviction() -> None:
    book = OrderBook(SYM, depth=100)  # 150 prices: more than the price cache holds
    book.apply_frame(snap(1, [("1.00", "1")], [("999.00", "1")], depth=100))
    live: dict[int, int] = {}
    for u in range(2, 600):
        price = 100 + (u * 37) % 150
        size = (u * 13) % 7  # 0 deletes
        live.pop(price, None)
        if size:
            live[price] = size
        assert book.apply_frame(frame("delta", u, [(f"{price}.00", str(size))], depth=100))
        if u % 50 == 0:
            want = sorted([(D(p), D(s)) for p, s in live.items()] + [(D(1), D(1))], reverse=True)
            assert book.bids() == want
    assert book.asks() == [(D("999.00"), D(1))]


# -- queries --------------------------------------------------------------------------------------


def query_book() -> OrderBook:
    book = OrderBook(SYM)
    book.apply_frame(
        snap(
            1,
            [("100.00", "1.000"), ("99.50", "2.000"), ("99.00", "3.000")],
            [("100.50", "0.500"), ("101.00", "1.500"), ("102.00", "1.000")],
        )
    )
    return book


def test_levels_and_volumes() -> None:
    book = query_book()
    assert book.bids(2) == [(D("100.00"), D("1.000")), (D("99.50"), D("2.000"))]
    assert book.asks(1) == [(D("100.50"), D("0.500"))]
    assert book.bids(0) == [] and len(book.asks(99)) == 3
    assert book.bid_ticks(1) == [(10000, 1000)] and book.ask_ticks(1) == [(10050, 500)]
    assert book.depth_volume("bid", 2) == D("3.000")
    assert book.depth_volume("ask") == D("3.000")
    with pytest.raises(ValueError):
        book.depth_volume("buy", 1)  # type: ignore[arg-type]
    assert book.mid() == D("100.25") and book.spread() == D("0.50")


def test_vwap_notional_and_worst_price_are_exact() -> None:
    book = query_book()
    # buy 1.2: 0.5 @ 100.50 + 0.7 @ 101.00 = 50.25 + 70.70 = 120.95
    assert book.notional("buy", D("1.2")) == D("120.95")
    assert book.vwap("buy", D("1.2")) == D("120.95") / D("1.2")
    assert book.price_for_volume("buy", D("1.2")) == D("101.00")
    # a whole level exactly
    assert book.vwap("buy", D("0.5")) == D("100.50")
    assert book.price_for_volume("buy", D("0.5")) == D("100.50")
    # sell 3: 1 @ 100 + 2 @ 99.5 = 299 -> 99.666...
    assert book.notional("sell", D("3")) == D("299")
    assert book.vwap("sell", D("3")) == D(299) / D(3)  # rounded once, to 28 digits
    # volume finer than the lot: 0.0005 @ 100.50
    assert book.notional("buy", D("0.0005")) == D("0.050250")
    assert book.vwap("buy", D("0.0005")) == D("100.50")
    # everything, and one lot more than there is
    assert book.notional("sell", D("6")) == D("100") + D("199") + D("297")
    assert book.vwap("sell", D("6.001")) is None
    assert book.price_for_volume("buy", D("3.001")) is None
    assert book.notional("buy", D("3.001")) is None
    with pytest.raises(ValueError):
        book.vwap("buy", D(0))
    with pytest.raises(ValueError):
        book.vwap("bid", D(1))  # type: ignore[arg-type]


def test_vwap_against_exact_fractions() -> None:
    from fractions import Fraction

    book = OrderBook(SYM)
    book.apply_frame(
        snap(
            1,
            [("0.333", "7"), ("0.331", "11")],
            [("0.337", "13"), ("0.341", "17"), ("0.347", "19")],
        )
    )
    for volume in ("1", "13", "14.5", "29.999", "30", "49"):
        want = Fraction(0)
        left = Fraction(volume)
        for price, size in book.asks():
            take = min(Fraction(size), left)
            want += take * Fraction(price)
            left -= take
        assert book.notional("buy", D(volume)) == D(want.numerator) / D(want.denominator)
        vwap = book.vwap("buy", D(volume))
        assert vwap is not None
        assert abs(Fraction(vwap) - want / Fraction(volume)) <= Fraction(1, 10**24)


def test_decimal_results_are_immune_to_the_callers_context() -> None:
    import decimal

    book = OrderBook(SYM)
    book.apply_frame(snap(1, [("123456789.12345678", "98765.4321")], [("123456790", "1")]))
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert book.best_bid() == (D("123456789.12345678"), D("98765.4321"))
        assert str(book.best_bid()[0]) == "123456789.12345678"  # type: ignore[index]
        assert book.mid() == D("123456789.56172839")
        assert book.depth_volume("bid") == D("98765.4321")


def test_repr() -> None:
    book = query_book()
    assert "3 bids" in repr(book) and "valid" in repr(book)


# -- property: equal to a reference book after every frame -----------------------------------------


class Reference:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, kind: str, b: Levels, a: Levels) -> None:
        if kind == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, b), (self.asks, a)):
            for p, q in levels:
                if D(q) == 0:
                    side.pop(D(p), None)
                else:
                    side[D(p)] = D(q)


def _text(units: int, decimals: int) -> str:
    """``units * 10**-decimals`` written with exactly ``decimals`` decimals."""
    if decimals == 0:
        return str(units)
    s = str(units).rjust(decimals + 1, "0")
    return f"{s[:-decimals]}.{s[-decimals:]}"


# A price is drawn as a value on a 0.001 grid, then written with 3 decimals or (when the value
# allows it) fewer: the same price may arrive as "100.5", "100.50" or "100.500".
def _price(low: int, high: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda v, pad: (
            _text(v, 3) if pad or v % 10 else _text(v // 10, 2) if v % 100 else _text(v // 100, 1)
        ),
        st.integers(low, high),
        st.booleans(),
    )


_size = st.one_of(
    st.just("0"),
    st.builds(_text, st.integers(0, 10**6), st.integers(0, 4)),
)
_levels_bid = st.lists(st.tuples(_price(1_000, 1_300), _size), max_size=8)
_levels_ask = st.lists(st.tuples(_price(1_301, 1_600), _size), max_size=8)
_step = st.one_of(
    st.tuples(st.just("snapshot"), _levels_bid, _levels_ask),
    st.tuples(st.just("delta"), _levels_bid, _levels_ask),
    st.tuples(st.just("delta"), _levels_bid, _levels_ask),
    st.tuples(st.just("delta"), _levels_bid, _levels_ask),
    st.tuples(st.just("skip"), _levels_bid, _levels_ask),
    st.tuples(st.just("restart"), _levels_bid, _levels_ask),
)


def _dedup(levels: Levels) -> Levels:
    """One entry per price in a frame (Bybit sends each level once), the last one kept."""
    seen: dict[Decimal, tuple[str, str]] = {}
    for p, q in levels:
        seen[D(p)] = (p, q)
    return list(seen.values())


@settings(max_examples=250, deadline=None)
@given(
    steps=st.lists(_step, min_size=1, max_size=60),
    depth=st.sampled_from([1, 3, 50, 200]),
)
def test_property_equal_to_reference_after_every_frame(
    steps: list[tuple[str, Levels, Levels]], depth: int
) -> None:
    book = OrderBook(SYM, depth=depth)
    ref = Reference()
    u = 1000  # deltas never hit u == 1 by accident (that is a restart)
    snapshotted = gapped = False
    cap = 2 * depth
    for kind, b, a in steps:
        b, a = _dedup(b), _dedup(a)
        if kind in ("snapshot", "restart"):
            u = 1 if kind == "restart" else u + 5
            ok = book.apply_frame(frame("snapshot" if kind == "snapshot" else "delta", u, b, a))
            snapshot_b = [x for x in b if D(x[1]) != 0]
            snapshot_a = [x for x in a if D(x[1]) != 0]
            ref.apply("snapshot", snapshot_b, snapshot_a)
            snapshotted, gapped = True, False
        else:
            u += 2 if kind == "skip" else 1
            ok = book.apply_frame(frame("delta", u, b, a))
            if kind == "skip":
                assert not ok and not book.is_valid
                if snapshotted and not gapped:
                    assert book.invalid_reason == "gap"
                gapped = True
            elif not snapshotted or gapped:
                assert not ok and not book.is_valid
            else:
                ref.apply("delta", b, a)
        if not snapshotted or gapped:
            continue
        # trimming beyond 2 * depth: only the near end of the reference is kept
        for side, reverse in ((ref.bids, True), (ref.asks, False)):
            for price in sorted(side, reverse=reverse)[cap:]:
                del side[price]
        assert ok and book.is_valid and book.u == u
        want_b = sorted(ref.bids.items(), reverse=True)
        want_a = sorted(ref.asks.items())
        assert book.bids() == want_b
        assert book.asks() == want_a
        assert book.best_bid() == (want_b[0] if want_b else None)
        assert book.best_ask() == (want_a[0] if want_a else None)
        top_b, top_a = book.best_bid_ticks(), book.best_ask_ticks()
        assert (top_b is None) == (not want_b) and (top_a is None) == (not want_a)
        if top_b is not None:
            assert book.ticks_to_price(top_b[0]) == want_b[0][0]
            assert book.lots_to_size(top_b[1]) == want_b[0][1]
        if top_a is not None:
            assert book.ticks_to_price(top_a[0]) == want_a[0][0]
        if want_b and want_a:
            assert book.mid() == (want_b[0][0] + want_a[0][0]) / 2
            assert book.spread() == want_a[0][0] - want_b[0][0]
