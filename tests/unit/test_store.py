"""The SQLite store: exact round trips, idempotent writes, restarts, WAL sharing, history, CSV."""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bybitkit.errors import ConfigError, ValidationError
from bybitkit.money import fmt
from bybitkit.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TERMINAL_STATES,
    BalanceRecord,
    FillRecord,
    FundingRecord,
    OrderRecord,
    PositionRecord,
    Store,
    StoreError,
)

D = Decimal
BIG = D("123456789012345678901234567890.123456789012345678")


def order(**kw: Any) -> OrderRecord:
    base: dict[str, Any] = {
        "connector": "bybit",
        "client_order_id": "c1",
        "exchange_order_id": None,
        "pair": "BTC-USDT",
        "category": "spot",
        "side": "Buy",
        "order_type": "Limit",
        "time_in_force": "GTC",
        "price": D("30000.5"),
        "amount": D("0.001"),
        "filled": D(0),
        "state": "PENDING_CREATE",
        "created_ms": 1_000,
        "updated_ms": 1_000,
    }
    base.update(kw)
    return OrderRecord(**base)


def fill(**kw: Any) -> FillRecord:
    base: dict[str, Any] = {
        "connector": "bybit",
        "exec_id": "e1",
        "client_order_id": "c1",
        "exchange_order_id": "o1",
        "pair": "BTC-USDT",
        "side": "Buy",
        "price": D("30000.5"),
        "qty": D("0.000001"),
        "fee": D("-0.00005586"),
        "fee_currency": "USDT",
        "is_maker": True,
        "ts_ms": 2_000,
    }
    base.update(kw)
    return FillRecord(**base)


def funding(**kw: Any) -> FundingRecord:
    base: dict[str, Any] = {
        "connector": "bybit_perpetual",
        "exec_id": "f1",
        "pair": "BTC-USDT",
        "side": "Buy",
        "position_size": D("0.5"),
        "mark_price": D("30123.45"),
        "rate": D("0.0001"),
        "amount": D("1.5061725"),
        "ts_ms": 28_800_000,
    }
    base.update(kw)
    return FundingRecord(**base)


def position(**kw: Any) -> PositionRecord:
    base: dict[str, Any] = {
        "connector": "bybit_perpetual",
        "pair": "BTC-USDT",
        "position_idx": 0,
        "side": "Buy",
        "size": D("0.5"),
        "entry_price": D("30000"),
        "mark_price": D("30123.45"),
        "unrealised_pnl": D("61.725"),
        "realised_pnl": D("-0.00005586"),
        "leverage": D("10"),
        "liq_price": None,
        "updated_ms": 5_000,
    }
    base.update(kw)
    return PositionRecord(**base)


def balance(coin: str, total: str, connector: str = "bybit_paper_trade") -> BalanceRecord:
    return BalanceRecord(connector, coin, D(total), D(total), D(0), 7_000)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def oids(recs: list[OrderRecord]) -> list[str]:
    return [r.client_order_id for r in recs]


def fids(recs: list[FillRecord]) -> list[str]:
    return [r.exec_id for r in recs]


def raw_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the file with a bare sqlite3 connection (to see what is really stored)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------------------------------ round trips


def test_order_round_trip_is_exact(store: Store) -> None:
    full = order(
        exchange_order_id="1234567890",
        price=BIG,
        amount=D("0.000001"),
        filled=D("0.0000005"),
        state="PARTIALLY_FILLED",
        reduce_only=True,
        position_idx=2,
        book_u=987654321012,
        book_age=0.125,
        book_valid=True,
        reason="maker",
        extra={"strategy": "pmm", "level": 2, "spread": D("0.0015"), "tags": ["a", None]},
    )
    bare = order(client_order_id="c2", price=None, order_type="Market", time_in_force="IOC")
    store.upsert_order(full)
    store.upsert_order(bare)
    got = store.order("bybit", "c1")
    # A Decimal inside ``extra`` comes back as its exact text.
    assert got == replace(full, extra={**full.extra, "spread": "0.0015"})
    assert got is not None and got.price == BIG and str(got.filled) == "5E-7"
    assert store.order("bybit", "c2") == bare
    assert store.order("bybit", "nope") is None
    assert store.order("bybit_testnet", "c1") is None


def test_fill_funding_position_balance_round_trips(store: Store) -> None:
    f = fill(exchange_order_id=None, client_order_id=None, price=BIG, exec_type="AdlTrade")
    store.add_fill(f)
    assert store.fills() == [f]
    perp = fill(exec_id="e2", category="linear", is_maker=False, fee=D("0"))
    store.add_fill(perp)
    assert store.fills(connector="bybit")[1] == perp

    fu = funding(amount=D("-0.00005586"), rate=D("-0.000375"))
    store.add_funding(fu)
    assert store.funding() == [fu]

    p = position(liq_price=D("27000.1"), size=BIG)
    store.upsert_position(p)
    flat = position(pair="ETH-USDT", position_idx=1, side="", size=D(0), liq_price=None)
    store.upsert_position(flat)
    assert store.positions("bybit_perpetual") == [p, flat]  # by pair

    bals = [balance("USDT", "10000.00000001"), balance("BTC", "0.000001")]
    store.set_balances("bybit_paper_trade", bals)
    assert store.balances("bybit_paper_trade") == sorted(bals, key=lambda b: b.coin)


def test_decimals_are_stored_as_exact_text(db_path: Path) -> None:
    with Store(db_path) as s:
        s.add_fill(fill(price=D("3.0000E+4"), qty=D("0.0000010"), fee=D("-0.00005586")))
        s.upsert_order(order(price=D("1E+2"), amount=BIG))
    rows = raw_rows(db_path, "SELECT typeof(price), price, typeof(qty), qty, fee FROM fills")
    assert rows == [("text", "30000", "text", "0.000001", "-0.00005586")]
    rows = raw_rows(db_path, "SELECT price, amount, filled FROM orders")
    assert rows == [("100", fmt(BIG), "0")]


def test_floats_and_bad_values_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="price"):
        store.add_fill(fill(price=0.1))
    with pytest.raises(ValidationError, match="amount"):
        store.upsert_order(order(amount=D("NaN")))
    with pytest.raises(ValidationError, match="is_maker"):
        store.add_fill(fill(is_maker=1))
    with pytest.raises(ValidationError, match="exec_id"):
        store.add_fill(fill(exec_id=""))
    with pytest.raises(ValidationError, match="extra"):
        store.upsert_order(order(extra={"x": object()}))
    assert store.fill_count() == 0 and store.orders() == []


def test_empty_optional_ids_are_none(store: Store) -> None:
    store.add_fill(fill(client_order_id="", exchange_order_id=""))
    (got,) = store.fills()
    assert got.client_order_id is None and got.exchange_order_id is None


# ------------------------------------------------------------------------------ idempotency


def test_same_fill_twice_is_one_row(store: Store) -> None:
    assert store.add_fill(fill()) is True
    assert store.add_fill(fill()) is False
    assert store.fill_count() == 1
    # Another connector may reuse the exec id: it is a different fill.
    assert store.add_fill(fill(connector="bybit_testnet")) is True
    assert store.fill_count() == 2 and store.fill_count(connector="bybit") == 1


def test_duplicate_fill_keeps_stored_row_and_links_missing_ids(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert store.add_fill(fill(client_order_id=None, exchange_order_id=None))
    assert not store.add_fill(fill(qty=D("5"), client_order_id="c1", exchange_order_id="o1"))
    (got,) = store.fills()
    assert got.qty == D("0.000001")  # never replaced
    assert (got.client_order_id, got.exchange_order_id) == ("c1", "o1")  # linked
    assert "duplicate fill differs" in caplog.text
    assert not store.add_fill(fill(client_order_id=None, exchange_order_id=None))
    assert store.fills()[0] == fill()  # a later report without ids does not unlink


def test_same_funding_twice_is_one_row(store: Store) -> None:
    assert store.add_funding(funding()) is True
    assert store.add_funding(funding(amount=D("9"))) is False
    assert store.funding() == [funding()]


def test_late_duplicate_order_write_does_not_regress(store: Store) -> None:
    placed = order(book_u=41, book_age=0.2, book_valid=True, extra={"a": 1})
    store.upsert_order(placed)
    acked = order(exchange_order_id="o1", state="NEW", updated_ms=1_100)
    store.upsert_order(acked)
    part = order(exchange_order_id="o1", state="PARTIALLY_FILLED", filled=D("0.0004"))
    store.upsert_order(replace(part, updated_ms=1_200, extra={"b": 2}))
    # A late duplicate of the ack: the open state may change, filled never goes back.
    store.upsert_order(acked)
    got = store.order("bybit", "c1")
    assert got is not None
    assert got.filled == D("0.0004") and got.state == "NEW" and got.updated_ms == 1_200
    done = order(exchange_order_id="o1", state="FILLED", filled=D("0.001"), updated_ms=1_300)
    store.upsert_order(done)
    # Late writes of open states after the terminal one: nothing regresses.
    store.upsert_order(replace(part, updated_ms=1_250, reason="late", extra={"a": 9, "c": 3}))
    store.upsert_order(order(state="UNKNOWN", exchange_order_id=None, updated_ms=1_400))
    got = store.order("bybit", "c1")
    assert got is not None
    assert got.state == "FILLED" and got.filled == D("0.001")
    assert got.exchange_order_id == "o1"  # never erased
    assert (got.book_u, got.book_age, got.book_valid) == (41, 0.2, True)  # placement stamp kept
    assert got.created_ms == 1_000 and got.updated_ms == 1_400
    assert got.reason == "late"  # a stale write may only fill in what was unknown
    assert got.extra == {"a": 1, "b": 2, "c": 3}  # ... but never overwrites a known key


def test_book_stamp_filled_in_later_and_terminal_to_terminal(store: Store) -> None:
    store.upsert_order(order())
    store.upsert_order(order(book_u=7, book_age=1.5, book_valid=False))
    store.upsert_order(order(book_u=8, book_age=0.0, book_valid=True))
    store.upsert_order(order(state="CANCELLED"))
    store.upsert_order(order(state="FILLED", filled=D("0.001")))  # terminal -> terminal: allowed
    got = store.order("bybit", "c1")
    assert got is not None
    assert (got.book_u, got.book_age, got.book_valid) == (7, 1.5, False)
    assert got.state == "FILLED"


def test_reused_client_order_id_is_refused(store: Store) -> None:
    store.upsert_order(order())
    with pytest.raises(StoreError, match="pair"):
        store.upsert_order(order(pair="ETH-USDT"))
    with pytest.raises(StoreError, match="side"):
        store.upsert_order(order(side="Sell"))
    assert store.order("bybit", "c1") == order()


def test_terminal_states_are_overridable(tmp_path: Path) -> None:
    assert frozenset({"FILLED", "CANCELLED", "FAILED", "REJECTED"}) == TERMINAL_STATES
    with Store(":memory:", terminal_states=[*TERMINAL_STATES, "EXPIRED"]) as s:
        s.upsert_order(order(state="EXPIRED"))
        s.upsert_order(order(state="NEW"))
        assert s.open_orders("bybit") == []
        got = s.order("bybit", "c1")
        assert got is not None and got.state == "EXPIRED"


# ------------------------------------------------------------------------------ orders


def test_open_orders_include_unknown(store: Store) -> None:
    states = ["PENDING_CREATE", "UNKNOWN", "NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"]
    for i, state in enumerate(states):
        store.upsert_order(order(client_order_id=f"open{i}", state=state, created_ms=100 - i))
    for i, state in enumerate(sorted(TERMINAL_STATES)):
        store.upsert_order(order(client_order_id=f"done{i}", state=state))
    store.upsert_order(order(connector="bybit_testnet", client_order_id="other", state="NEW"))
    opened = store.open_orders("bybit")
    assert [o.state for o in opened] == list(reversed(states))  # oldest first
    assert "UNKNOWN" in {o.state for o in opened}
    assert [o.client_order_id for o in store.open_orders("bybit_testnet")] == ["other"]


def test_hot_queries_use_their_indices(store: Store) -> None:
    conn = store._connection()

    def plan(sql: str, *params: object) -> str:
        return " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    open_sql = "SELECT * FROM orders WHERE connector = ? AND is_open = 1 ORDER BY created_ms, rowid"
    assert "orders_open" in plan(open_sql, "bybit")
    last_sql = "SELECT * FROM fills WHERE connector = ? ORDER BY ts_ms DESC, rowid DESC LIMIT 1"
    assert "fills_by_connector_time" in plan(last_sql, "bybit")
    assert "TEMP B-TREE" not in plan(last_sql, "bybit")
    by_id = "SELECT * FROM orders WHERE connector = ? AND exchange_order_id = ?"
    assert "orders_by_exchange_id" in plan(by_id, "bybit", "o1")
    pair_sql = "SELECT * FROM fills WHERE connector = ? AND pair = ? AND ts_ms >= ?"
    assert "fills_by_pair_time" in plan(pair_sql, "bybit", "BTC-USDT", 0)


def test_order_by_exchange_id(store: Store) -> None:
    store.upsert_order(order())
    assert store.order_by_exchange_id("bybit", "o1") is None
    store.upsert_order(order(exchange_order_id="o1", state="NEW"))
    store.upsert_order(order(client_order_id="c2", exchange_order_id="o2", state="NEW"))
    got = store.order_by_exchange_id("bybit", "o1")
    assert got is not None and got.client_order_id == "c1"
    assert store.order_by_exchange_id("bybit_testnet", "o1") is None


def test_order_history_filters_and_limit(store: Store) -> None:
    for i in range(6):
        store.upsert_order(
            order(
                connector="bybit" if i % 3 else "bybit_testnet",
                client_order_id=f"c{i}",
                pair="BTC-USDT" if i % 2 else "ETH-USDT",
                created_ms=1_000 + 100 * i,
            )
        )
    assert oids(store.orders()) == [f"c{i}" for i in range(6)]
    assert oids(store.orders(connector="bybit")) == ["c1", "c2", "c4", "c5"]
    assert oids(store.orders(connector="bybit", pair="BTC-USDT")) == ["c1", "c5"]
    assert oids(store.orders(since_ms=1_200, until_ms=1_400)) == ["c2", "c3"]  # half-open
    assert oids(store.orders(limit=2)) == ["c4", "c5"]  # the most recent, oldest first
    assert oids(store.orders(connector="bybit", until_ms=1_500, limit=2)) == ["c2", "c4"]
    assert store.orders(limit=0) == []
    with pytest.raises(ValidationError):
        store.orders(limit=-1)


# ------------------------------------------------------------------------------ fills


def test_fill_filters_ordering_and_count(store: Store) -> None:
    rows = [
        fill(exec_id="a", ts_ms=300),
        fill(exec_id="b", ts_ms=100, pair="ETH-USDT", client_order_id="c2"),
        fill(exec_id="c", ts_ms=200),
        fill(exec_id="d", ts_ms=200, connector="bybit_testnet"),
        fill(exec_id="e", ts_ms=100),
    ]
    for r in rows:
        assert store.add_fill(r)
    assert fids(store.fills()) == ["b", "e", "c", "d", "a"]  # by time, ties by insertion
    assert fids(store.fills(connector="bybit")) == ["b", "e", "c", "a"]
    assert fids(store.fills(connector="bybit", pair="BTC-USDT")) == ["e", "c", "a"]
    assert fids(store.fills(since_ms=200)) == ["c", "d", "a"]
    assert fids(store.fills(until_ms=200)) == ["b", "e"]
    assert fids(store.fills(client_order_id="c2")) == ["b"]
    assert fids(store.fills(limit=2)) == ["d", "a"]
    assert store.fill_count() == 5
    assert store.fill_count(connector="bybit", since_ms=100, until_ms=300) == 3
    assert store.fill_count(client_order_id="c1", pair="BTC-USDT") == 4  # both connectors


def test_last_fill_latest_ts_ties_by_insertion(store: Store) -> None:
    assert store.last_fill("bybit") is None
    store.add_fill(fill(exec_id="x", ts_ms=500))
    store.add_fill(fill(exec_id="y", ts_ms=900))
    store.add_fill(fill(exec_id="z", ts_ms=900))
    store.add_fill(fill(exec_id="old", ts_ms=100))  # arrives late (REST reconciliation)
    store.add_fill(fill(exec_id="y", ts_ms=900))  # duplicate: does not move the cursor
    store.add_fill(fill(exec_id="w", ts_ms=950, connector="bybit_testnet"))
    last = store.last_fill("bybit")
    assert last is not None and last.exec_id == "z"


def test_funding_filters_and_last(store: Store) -> None:
    assert store.last_funding("bybit_perpetual") is None
    for i, pair in enumerate(["BTC-USDT", "ETH-USDT", "BTC-USDT"]):
        store.add_funding(funding(exec_id=f"f{i}", pair=pair, ts_ms=1_000 * (i + 1)))
    assert [f.exec_id for f in store.funding(pair="BTC-USDT")] == ["f0", "f2"]
    assert [f.exec_id for f in store.funding(since_ms=2_000)] == ["f1", "f2"]
    assert [f.exec_id for f in store.funding(connector="bybit")] == []
    last = store.last_funding("bybit_perpetual")
    assert last is not None and last.exec_id == "f2"


# ------------------------------------------------------------------------------ positions etc.


def test_positions_upsert_stale_and_delete(store: Store) -> None:
    assert store.upsert_position(position()) is True
    newer = position(size=D("0.7"), updated_ms=6_000)
    assert store.upsert_position(newer) is True
    assert store.upsert_position(position(size=D("0.1"), updated_ms=5_500)) is False  # stale
    assert store.positions("bybit_perpetual") == [newer]
    assert store.positions("bybit") == []
    assert store.delete_position("bybit_perpetual", "BTC-USDT", 0) is True
    assert store.delete_position("bybit_perpetual", "BTC-USDT", 0) is False
    assert store.positions("bybit_perpetual") == []


def test_set_balances_replaces_atomically(store: Store) -> None:
    store.set_balances("bybit_paper_trade", [balance("USDT", "100"), balance("BTC", "1")])
    store.set_balances(
        "bybit_perpetual_paper_trade", [balance("USDT", "5", "bybit_perpetual_paper_trade")]
    )
    store.set_balances("bybit_paper_trade", [balance("USDT", "90.5")])
    assert store.balances("bybit_paper_trade") == [balance("USDT", "90.5")]
    with pytest.raises(ConfigError, match="connector"):
        store.set_balances("bybit_paper_trade", [balance("ETH", "1"), balance("X", "1", "other")])
    with pytest.raises(ConfigError, match="twice"):
        store.set_balances("bybit_paper_trade", [balance("ETH", "1"), balance("ETH", "2")])
    assert store.balances("bybit_paper_trade") == [balance("USDT", "90.5")]
    assert len(store.balances("bybit_perpetual_paper_trade")) == 1
    store.set_balances("bybit_paper_trade", [])
    assert store.balances("bybit_paper_trade") == []


def test_meta(store: Store) -> None:
    assert store.get_meta("bybit", "exec_cursor") is None
    store.set_meta("bybit", "exec_cursor", "1700000000000")
    store.set_meta("bybit", "exec_cursor", "1700000000500")
    store.set_meta("bybit_testnet", "exec_cursor", "1")
    assert store.get_meta("bybit", "exec_cursor") == "1700000000500"
    assert store.get_meta("bybit_testnet", "exec_cursor") == "1"


# ------------------------------------------------------------------------------ transactions


def test_transaction_is_atomic_and_nests(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.add_fill(fill(exec_id="a"))
        store.upsert_order(order())
        raise RuntimeError("boom")
    assert store.fill_count() == 0 and store.orders() == []

    with store.transaction():
        store.add_fill(fill(exec_id="a"))
        with pytest.raises(RuntimeError), store.transaction():
            store.add_fill(fill(exec_id="b"))
            raise RuntimeError("inner only")
        store.add_fill(fill(exec_id="c"))
    assert [f.exec_id for f in store.fills()] == ["a", "c"]


def test_closed_store_refuses_and_close_is_idempotent() -> None:
    s = Store(":memory:")
    with s:
        s.add_fill(fill())
    assert s.closed
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.fills()
    with pytest.raises(StoreError, match="closed"):
        s.add_fill(fill())


def test_threads_share_one_store(store: Store) -> None:
    def work(t: int) -> None:
        for i in range(50):
            store.add_fill(fill(exec_id=f"{t}-{i % 40}", ts_ms=i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.fill_count() == 160


# ------------------------------------------------------------------------------ files, restarts


def test_schema_version_wal_and_pragmas(db_path: Path) -> None:
    with Store(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS) >= 1
    assert raw_rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in raw_rows(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"orders", "fills", "funding", "positions", "balances", "meta"} <= tables
    indices = {r[0] for r in raw_rows(db_path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"orders_open", "orders_by_exchange_id", "fills_by_pair_time"} <= indices
    with Store(db_path) as s:  # reopening is a no-op
        assert s.schema_version == SCHEMA_VERSION
        conn = s._connection()
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    with Store(":memory:") as s:
        assert s.schema_version == SCHEMA_VERSION


def test_migration_hook_upgrades_once_and_newer_file_is_refused(db_path: Path) -> None:
    with Store(db_path) as s:
        s.set_meta("", "k", "v")
    calls: list[int] = []

    def add_notes(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

    steps = (*MIGRATIONS, add_notes)
    with Store(db_path, migrations=steps) as s:
        assert s.schema_version == SCHEMA_VERSION + 1
        assert s.get_meta("", "k") == "v"
    with Store(db_path, migrations=steps) as s:
        assert s.schema_version == SCHEMA_VERSION + 1
    assert calls == [1]
    with pytest.raises(StoreError, match="newer"):
        Store(db_path)


def test_failed_migration_leaves_file_untouched(db_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        Store(db_path, migrations=(*MIGRATIONS, broken))
    with Store(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
    assert raw_rows(db_path, "SELECT name FROM sqlite_master WHERE name='half'") == []


def test_restart_sees_everything(db_path: Path) -> None:
    o = order(state="UNKNOWN", extra={"note": "submit timed out"})
    f = fill()
    fu = funding()
    p = position()
    b = balance("USDT", "10000")
    with Store(db_path) as s:
        s.upsert_order(o)
        s.add_fill(f)
        s.add_funding(fu)
        s.upsert_position(p)
        s.set_balances("bybit_paper_trade", [b])
        s.set_meta("bybit", "last_exec", "e1")
    with Store(db_path) as s:
        assert s.open_orders("bybit") == [o]
        assert s.add_fill(f) is False  # the restart does not double the fill
        assert s.fills() == [f] and s.last_fill("bybit") == f
        assert s.add_funding(fu) is False and s.funding() == [fu]
        assert s.positions("bybit_perpetual") == [p]
        assert s.balances("bybit_paper_trade") == [b]
        assert s.get_meta("bybit", "last_exec") == "e1"


def test_two_stores_on_one_file_see_each_other(db_path: Path) -> None:
    with Store(db_path) as a, Store(db_path, busy_timeout_ms=50) as b:
        a.add_fill(fill(exec_id="from-a"))
        assert [f.exec_id for f in b.fills()] == ["from-a"]
        assert b.add_fill(fill(exec_id="from-a")) is False
        b.upsert_order(order(state="NEW"))
        assert a.open_orders("bybit")[0].state == "NEW"

        with a.transaction():
            a.add_fill(fill(exec_id="pending"))
            # b reads the last committed state without waiting ...
            assert b.fill_count() == 1
            # ... and a second writer waits busy_timeout, then fails cleanly.
            with pytest.raises(StoreError, match="locked"):
                b.add_fill(fill(exec_id="from-b"))
        assert b.fill_count() == 2
        assert b.add_fill(fill(exec_id="from-b")) is True
        assert a.fill_count() == 2 + 1


def test_another_process_writes_and_we_see_it(db_path: Path) -> None:
    code = (
        "import sys\n"
        "from decimal import Decimal as D\n"
        "from bybitkit.store import FillRecord, Store\n"
        "with Store(sys.argv[1]) as s:\n"
        "    f = FillRecord('bybit', 'child', 'c9', 'o9', 'BTC-USDT', 'Sell', D('30001'),\n"
        "                   D('0.000001'), D('-0.00005586'), 'USDT', False, 3000)\n"
        "    print(s.add_fill(f), s.add_fill(f), s.fill_count())\n"
    )
    with Store(db_path) as s:
        s.add_fill(fill())
        out = subprocess.run(
            [sys.executable, "-c", code, str(db_path)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.split() == ["True", "False", "2"]
        last = s.last_fill("bybit")
        assert last is not None and last.exec_id == "child" and last.fee == D("-0.00005586")


# ------------------------------------------------------------------------------ CSV


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_export_fills_csv(store: Store) -> None:
    store.add_fill(fill(exec_id="b", ts_ms=200, price=BIG))
    store.add_fill(fill(exec_id="a", ts_ms=100, client_order_id=None, is_maker=False))
    store.add_fill(fill(exec_id="c", ts_ms=300, pair="ETH-USDT"))
    buf = io.StringIO(newline="")
    assert store.export_csv("fills", buf, pair="BTC-USDT") == 2
    rows = read_csv(buf.getvalue())
    assert rows[0] == [
        "connector",
        "exec_id",
        "client_order_id",
        "exchange_order_id",
        "pair",
        "side",
        "price",
        "qty",
        "fee",
        "fee_currency",
        "is_maker",
        "ts_ms",
        "exec_type",
        "category",
    ]
    assert rows[1] == [
        "bybit", "a", "", "o1", "BTC-USDT", "Buy", "30000.5", "0.000001", "-0.00005586",
        "USDT", "false", "100", "Trade", "spot",
    ]  # fmt: skip
    assert rows[2][1] == "b" and rows[2][6] == fmt(BIG) and rows[2][10] == "true"
    assert len(rows) == 3


def test_export_orders_and_funding_to_paths(store: Store, tmp_path: Path) -> None:
    store.upsert_order(order(extra={"k": "v"}, price=None, book_u=5, book_valid=True))
    store.add_funding(funding())
    store.add_funding(funding(exec_id="f2", connector="bybit_perpetual_testnet"))
    p = tmp_path / "orders.csv"
    assert store.export_csv("orders", p) == 1
    header, row = read_csv(p.read_text(encoding="utf-8"))
    got = dict(zip(header, row, strict=True))
    assert got["price"] == "" and got["amount"] == "0.001" and got["filled"] == "0"
    assert got["extra"] == '{"k":"v"}' and got["book_u"] == "5" and got["book_age"] == ""
    assert got["book_valid"] == "true" and got["reduce_only"] == "false"

    q = tmp_path / "funding.csv"
    assert store.export_csv("funding", str(q), connector="bybit_perpetual", since_ms=0) == 1
    header, row = read_csv(q.read_text(encoding="utf-8"))
    assert header == [
        "connector", "exec_id", "pair", "side", "position_size", "mark_price", "rate",
        "amount", "ts_ms",
    ]  # fmt: skip
    assert row == [
        "bybit_perpetual", "f1", "BTC-USDT", "Buy", "0.5", "30123.45", "0.0001", "1.5061725",
        "28800000",
    ]  # fmt: skip

    empty = io.StringIO()
    assert store.export_csv("fills", empty) == 0
    assert len(read_csv(empty.getvalue())) == 1  # the header alone
    with pytest.raises(ConfigError, match="kind"):
        store.export_csv("trades", io.StringIO())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.export_csv("funding", io.StringIO(), client_order_id="c1")


# ------------------------------------------------------------------------------ property


amounts = st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8, allow_nan=False)
fees = st.decimals(min_value=D("-1000"), max_value=D("1000"), places=10, allow_nan=False)
canonical_fills = st.lists(
    st.tuples(amounts, fees, st.integers(min_value=0, max_value=20)), min_size=1, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(canonical_fills, st.data())
def test_random_fills_with_duplicates_store_exactly_the_unique_set(
    canon: list[tuple[Decimal, Decimal, int]], data: st.DataObject
) -> None:
    truth = {
        f"e{i}": fill(exec_id=f"e{i}", client_order_id=f"c{i}", qty=q, fee=fee, ts_ms=ts)
        for i, (q, fee, ts) in enumerate(canon)
    }
    # Every fill reported 1-4 times (WS, REST, after a restart ...), some reports without the
    # order link, all interleaved at random.
    reports: list[tuple[str, bool]] = []
    for exec_id in truth:
        times = data.draw(st.integers(min_value=1, max_value=4))
        reports += [(exec_id, data.draw(st.booleans())) for _ in range(times)]
    reports = data.draw(st.permutations(reports))

    first_seen: list[str] = []
    linked: set[str] = set()
    with Store(":memory:") as s:
        for exec_id, with_link in reports:
            rec = truth[exec_id] if with_link else replace(truth[exec_id], client_order_id=None)
            assert s.add_fill(rec) is (exec_id not in first_seen)
            if exec_id not in first_seen:
                first_seen.append(exec_id)
            if with_link:
                linked.add(exec_id)
        stored = s.fills()
        last = s.last_fill("bybit")
        assert s.fill_count() == len(truth)

    assert {f.exec_id for f in stored} == set(truth)
    for f in stored:
        expected = truth[f.exec_id]
        if f.exec_id not in linked:
            expected = replace(expected, client_order_id=None)
        assert f == expected
    assert sum((f.qty for f in stored), D(0)) == sum((f.qty for f in truth.values()), D(0))
    assert sum((f.fee for f in stored), D(0)) == sum((f.fee for f in truth.values()), D(0))
    # Ascending time, ties in first-seen order; the last fill is the latest of those.
    expected_order = sorted(first_seen, key=lambda e: (truth[e].ts_ms, first_seen.index(e)))
    assert [f.exec_id for f in stored] == expected_order
    assert last is not None and last.exec_id == expected_order[-1]
