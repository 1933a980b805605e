"""SQLite persistence of orders, fills, funding payments, positions, balances and cursors.

One :class:`Store` wraps one ``sqlite3`` connection (standard library only). It is what makes a
restart neither lose nor double anything: orders are written from before their request leaves
(including those whose submit outcome is UNKNOWN), fills and funding payments are keyed by Bybit's
``execId`` and counted once whichever path reports them, and reconciliation cursors live in
:meth:`Store.set_meta`.

Calling convention: every method is synchronous and is meant to be called directly from the event
loop. That is fine because each call is one small local write or indexed read (WAL journal,
``synchronous=NORMAL``: a commit appends to the WAL without an fsync). Keep it that way: no method
here may grow into a long scan on the write path, and a caller must not ``await`` inside
:meth:`Store.transaction` (another coroutine's write would silently join the open transaction).
The connection is guarded by a lock, so a store may also be used from threads; but a long read
(CLI ``history``, CSV export of a big history) holds that lock: run it on its own ``Store`` of the
same file (in WAL mode a reader never blocks the writer), not on the event loop's.

Durability: WAL with ``synchronous=NORMAL`` survives a process crash; a power loss may drop the
last few commits, which reconciliation ("executions since" :meth:`Store.last_fill`) recovers from
the exchange. Several processes may open the same file: readers never block, one writer at a time
(writers wait up to ``busy_timeout_ms``), and a process sees what another has committed.

Money is exact: every Decimal is stored as TEXT holding its plain decimal string
(:func:`bybitkit.money.fmt`, no exponent, no trailing zeros) and read back with ``Decimal(text)``;
no Decimal ever passes through a REAL. A float given where a Decimal belongs is refused.

Idempotency rules (a late or duplicate write never regresses a row):

* :meth:`Store.upsert_order`: ``filled`` never decreases; a terminal state
  (:data:`TERMINAL_STATES`) never goes back to an open one (such a write is stale: it may only fill
  in what the row does not know yet); a known exchange order id and the order book stamp taken at
  placement are never erased or replaced; ``created_ms`` keeps its first value and ``updated_ms``
  only grows. Otherwise the last write wins: the order state machine lives in the trading layer.
* :meth:`Store.add_fill` / :meth:`Store.add_funding`: insert if the ``(connector, exec_id)`` is
  new, else leave the stored row as it is (only a missing order id is filled in).
* :meth:`Store.upsert_position`: a position older (``updated_ms``) than the stored one is ignored.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`; :data:`MIGRATIONS` step ``i`` brings a
file from version ``i`` to ``i + 1``):

* ``orders``: key ``(connector, client_order_id)``; indices ``(connector, exchange_order_id)``,
  ``(connector, pair, created_ms)``, ``(created_ms)`` and the partial index
  ``(connector, created_ms) WHERE is_open = 1``: ``is_open`` is the order's "state not terminal"
  flag, computed at write time with the writing store's terminal set, so :meth:`Store.open_orders`
  reads the open orders only, however long the history.
* ``fills``: key ``(connector, exec_id)``; indices ``(connector, pair, ts_ms)``,
  ``(connector, ts_ms)``, ``(connector, client_order_id)``, ``(ts_ms)``.
* ``funding``: key ``(connector, exec_id)``; indices ``(connector, pair, ts_ms)``,
  ``(connector, ts_ms)``.
* ``positions``: key ``(connector, pair, position_idx)``; ``balances``: key ``(connector, coin)``;
  ``meta``: key ``(connector, key)``.

Fills deliberately have no foreign key to orders: a fill of an order placed outside bybitkit, or
arriving for an order this file never saw, must still be counted, never refused.

Time filters are half-open: ``since_ms <= t < until_ms`` (``created_ms`` for orders, ``ts_ms``
for fills and funding); results are in ascending time, ties in insertion order; ``limit`` keeps
the *most recent* rows (still returned in ascending order).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from decimal import Decimal
from typing import IO, Any, Literal

from bybitkit.errors import BybitkitError, ConfigError, ValidationError
from bybitkit.money import fmt, to_decimal
from bybitkit.store.records import (
    BalanceRecord,
    FillRecord,
    FundingRecord,
    OrderRecord,
    PositionRecord,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TERMINAL_STATES",
    "ExportKind",
    "Migration",
    "Store",
    "StoreError",
]

log = logging.getLogger(__name__)

#: Order states after which an order can never be open again. The store only uses this to refuse
#: regressing a row on a late duplicate write (and to list open orders: every other state, UNKNOWN
#: included, is open). A store built with ``terminal_states=`` uses its own set instead.
TERMINAL_STATES: frozenset[str] = frozenset({"FILLED", "CANCELLED", "FAILED", "REJECTED"})

#: How long a write waits for another process's write transaction before failing.
DEFAULT_BUSY_TIMEOUT_MS = 5000

#: One schema migration step: runs inside the migration transaction (no ``executescript``, which
#: would commit).
Migration = Callable[[sqlite3.Connection], None]

ExportKind = Literal["orders", "fills", "funding"]


class StoreError(BybitkitError):
    """The store cannot do what was asked: database failure, a file written by a newer version,
    or a write that contradicts a stored row (a client order id reused for another order)."""


# --------------------------------------------------------------------------------------------
# Schema


_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS orders (
        connector         TEXT    NOT NULL,
        client_order_id   TEXT    NOT NULL,
        exchange_order_id TEXT,
        pair              TEXT    NOT NULL,
        category          TEXT    NOT NULL,
        side              TEXT    NOT NULL,
        order_type        TEXT    NOT NULL,
        time_in_force     TEXT    NOT NULL,
        price             TEXT,
        amount            TEXT    NOT NULL,
        filled            TEXT    NOT NULL,
        state             TEXT    NOT NULL,
        created_ms        INTEGER NOT NULL,
        updated_ms        INTEGER NOT NULL,
        reduce_only       INTEGER NOT NULL DEFAULT 0,
        position_idx      INTEGER NOT NULL DEFAULT 0,
        book_u            INTEGER,
        book_age          REAL,
        book_valid        INTEGER,
        reason            TEXT,
        extra             TEXT    NOT NULL DEFAULT '{}',
        is_open           INTEGER NOT NULL,
        PRIMARY KEY (connector, client_order_id)
    )""",
    "CREATE INDEX IF NOT EXISTS orders_open ON orders (connector, created_ms) WHERE is_open = 1",
    "CREATE INDEX IF NOT EXISTS orders_by_exchange_id ON orders (connector, exchange_order_id)",
    "CREATE INDEX IF NOT EXISTS orders_by_pair_time ON orders (connector, pair, created_ms)",
    "CREATE INDEX IF NOT EXISTS orders_by_time ON orders (created_ms)",
    """CREATE TABLE IF NOT EXISTS fills (
        connector         TEXT    NOT NULL,
        exec_id           TEXT    NOT NULL,
        client_order_id   TEXT,
        exchange_order_id TEXT,
        pair              TEXT    NOT NULL,
        category          TEXT    NOT NULL,
        side              TEXT    NOT NULL,
        price             TEXT    NOT NULL,
        qty               TEXT    NOT NULL,
        fee               TEXT    NOT NULL,
        fee_currency      TEXT    NOT NULL,
        is_maker          INTEGER NOT NULL,
        exec_type         TEXT    NOT NULL,
        ts_ms             INTEGER NOT NULL,
        PRIMARY KEY (connector, exec_id)
    )""",
    "CREATE INDEX IF NOT EXISTS fills_by_pair_time ON fills (connector, pair, ts_ms)",
    "CREATE INDEX IF NOT EXISTS fills_by_connector_time ON fills (connector, ts_ms)",
    "CREATE INDEX IF NOT EXISTS fills_by_order ON fills (connector, client_order_id)",
    "CREATE INDEX IF NOT EXISTS fills_by_time ON fills (ts_ms)",
    """CREATE TABLE IF NOT EXISTS funding (
        connector     TEXT    NOT NULL,
        exec_id       TEXT    NOT NULL,
        pair          TEXT    NOT NULL,
        side          TEXT    NOT NULL,
        position_size TEXT    NOT NULL,
        mark_price    TEXT    NOT NULL,
        rate          TEXT    NOT NULL,
        amount        TEXT    NOT NULL,
        ts_ms         INTEGER NOT NULL,
        PRIMARY KEY (connector, exec_id)
    )""",
    "CREATE INDEX IF NOT EXISTS funding_by_pair_time ON funding (connector, pair, ts_ms)",
    "CREATE INDEX IF NOT EXISTS funding_by_connector_time ON funding (connector, ts_ms)",
    """CREATE TABLE IF NOT EXISTS positions (
        connector      TEXT    NOT NULL,
        pair           TEXT    NOT NULL,
        position_idx   INTEGER NOT NULL,
        side           TEXT    NOT NULL,
        size           TEXT    NOT NULL,
        entry_price    TEXT    NOT NULL,
        mark_price     TEXT    NOT NULL,
        unrealised_pnl TEXT    NOT NULL,
        realised_pnl   TEXT    NOT NULL,
        leverage       TEXT    NOT NULL,
        liq_price      TEXT,
        updated_ms     INTEGER NOT NULL,
        PRIMARY KEY (connector, pair, position_idx)
    )""",
    """CREATE TABLE IF NOT EXISTS balances (
        connector  TEXT    NOT NULL,
        coin       TEXT    NOT NULL,
        total      TEXT    NOT NULL,
        available  TEXT    NOT NULL,
        locked     TEXT    NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (connector, coin)
    )""",
    """CREATE TABLE IF NOT EXISTS meta (
        connector TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (connector, key)
    )""",
)


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        conn.execute(statement)


#: The migration steps, in order: step ``i`` brings a file from ``user_version`` ``i`` to
#: ``i + 1``. To change the schema, append a step (never edit a released one) and the new
#: :data:`SCHEMA_VERSION` follows.
MIGRATIONS: tuple[Migration, ...] = (_migrate_to_v1,)

#: The schema version this code writes (``PRAGMA user_version``).
SCHEMA_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------------------------
# Encoding: Python values <-> column values


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "a non-empty string", value)
    return value


def _opt_text(value: object, field: str) -> str | None:
    """Optional identifier: None and "" (Bybit's "absent") are both stored as NULL."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "a string or None", value)
    return value


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "a string", value)
    return value


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "an integer", value)
    return value


def _opt_int(value: object, field: str) -> int | None:
    return None if value is None else _int(value, field)


def _bool(value: object, field: str) -> int:
    if not isinstance(value, bool):
        raise ValidationError(field, "a bool", value)
    return int(value)


def _opt_bool(value: object, field: str) -> int | None:
    return None if value is None else _bool(value, field)


def _opt_float(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(field, "a number of seconds", value)
    return float(value)


def _dec(value: object, field: str) -> str:
    return fmt(to_decimal(value, field))


def _opt_dec(value: object, field: str) -> str | None:
    return None if value is None else _dec(value, field)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return fmt(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _extra(value: object) -> str:
    if not isinstance(value, dict):
        raise ValidationError("extra", "a dict", value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValidationError("extra", f"JSON-serialisable values ({exc})") from None


def _decimal(text: str) -> Decimal:
    return Decimal(text)


def _opt_decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _opt_row_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


_ORDER_COLUMNS = tuple(f.name for f in fields(OrderRecord))
# The record's fields plus the stored ``is_open`` flag (state not terminal, at write time).
_ORDER_TABLE_COLUMNS = (*_ORDER_COLUMNS, "is_open")
_FILL_COLUMNS = tuple(f.name for f in fields(FillRecord))
_FUNDING_COLUMNS = tuple(f.name for f in fields(FundingRecord))
_POSITION_COLUMNS = tuple(f.name for f in fields(PositionRecord))
_BALANCE_COLUMNS = tuple(f.name for f in fields(BalanceRecord))


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"


def _encode_order(rec: OrderRecord) -> dict[str, Any]:
    return {
        "connector": _text(rec.connector, "connector"),
        "client_order_id": _text(rec.client_order_id, "client_order_id"),
        "exchange_order_id": _opt_text(rec.exchange_order_id, "exchange_order_id"),
        "pair": _text(rec.pair, "pair"),
        "category": _str(rec.category, "category"),
        "side": _str(rec.side, "side"),
        "order_type": _str(rec.order_type, "order_type"),
        "time_in_force": _str(rec.time_in_force, "time_in_force"),
        "price": _opt_dec(rec.price, "price"),
        "amount": _dec(rec.amount, "amount"),
        "filled": _dec(rec.filled, "filled"),
        "state": _text(rec.state, "state"),
        "created_ms": _int(rec.created_ms, "created_ms"),
        "updated_ms": _int(rec.updated_ms, "updated_ms"),
        "reduce_only": _bool(rec.reduce_only, "reduce_only"),
        "position_idx": _int(rec.position_idx, "position_idx"),
        "book_u": _opt_int(rec.book_u, "book_u"),
        "book_age": _opt_float(rec.book_age, "book_age"),
        "book_valid": _opt_bool(rec.book_valid, "book_valid"),
        "reason": _opt_text(rec.reason, "reason"),
        "extra": _extra(rec.extra),
    }


def _decode_order(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        connector=row["connector"],
        client_order_id=row["client_order_id"],
        exchange_order_id=row["exchange_order_id"],
        pair=row["pair"],
        category=row["category"],
        side=row["side"],
        order_type=row["order_type"],
        time_in_force=row["time_in_force"],
        price=_opt_decimal(row["price"]),
        amount=_decimal(row["amount"]),
        filled=_decimal(row["filled"]),
        state=row["state"],
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
        reduce_only=bool(row["reduce_only"]),
        position_idx=row["position_idx"],
        book_u=row["book_u"],
        book_age=row["book_age"],
        book_valid=_opt_row_bool(row["book_valid"]),
        reason=row["reason"],
        extra=json.loads(row["extra"]),
    )


def _encode_fill(rec: FillRecord) -> dict[str, Any]:
    return {
        "connector": _text(rec.connector, "connector"),
        "exec_id": _text(rec.exec_id, "exec_id"),
        "client_order_id": _opt_text(rec.client_order_id, "client_order_id"),
        "exchange_order_id": _opt_text(rec.exchange_order_id, "exchange_order_id"),
        "pair": _text(rec.pair, "pair"),
        "side": _str(rec.side, "side"),
        "price": _dec(rec.price, "price"),
        "qty": _dec(rec.qty, "qty"),
        "fee": _dec(rec.fee, "fee"),
        "fee_currency": _str(rec.fee_currency, "fee_currency"),
        "is_maker": _bool(rec.is_maker, "is_maker"),
        "ts_ms": _int(rec.ts_ms, "ts_ms"),
        "exec_type": _str(rec.exec_type, "exec_type"),
        "category": _str(rec.category, "category"),
    }


def _decode_fill(row: sqlite3.Row) -> FillRecord:
    return FillRecord(
        connector=row["connector"],
        exec_id=row["exec_id"],
        client_order_id=row["client_order_id"],
        exchange_order_id=row["exchange_order_id"],
        pair=row["pair"],
        side=row["side"],
        price=_decimal(row["price"]),
        qty=_decimal(row["qty"]),
        fee=_decimal(row["fee"]),
        fee_currency=row["fee_currency"],
        is_maker=bool(row["is_maker"]),
        ts_ms=row["ts_ms"],
        exec_type=row["exec_type"],
        category=row["category"],
    )


def _encode_funding(rec: FundingRecord) -> dict[str, Any]:
    return {
        "connector": _text(rec.connector, "connector"),
        "exec_id": _text(rec.exec_id, "exec_id"),
        "pair": _text(rec.pair, "pair"),
        "side": _str(rec.side, "side"),
        "position_size": _dec(rec.position_size, "position_size"),
        "mark_price": _dec(rec.mark_price, "mark_price"),
        "rate": _dec(rec.rate, "rate"),
        "amount": _dec(rec.amount, "amount"),
        "ts_ms": _int(rec.ts_ms, "ts_ms"),
    }


def _decode_funding(row: sqlite3.Row) -> FundingRecord:
    return FundingRecord(
        connector=row["connector"],
        exec_id=row["exec_id"],
        pair=row["pair"],
        side=row["side"],
        position_size=_decimal(row["position_size"]),
        mark_price=_decimal(row["mark_price"]),
        rate=_decimal(row["rate"]),
        amount=_decimal(row["amount"]),
        ts_ms=row["ts_ms"],
    )


def _encode_position(rec: PositionRecord) -> dict[str, Any]:
    return {
        "connector": _text(rec.connector, "connector"),
        "pair": _text(rec.pair, "pair"),
        "position_idx": _int(rec.position_idx, "position_idx"),
        "side": _str(rec.side, "side"),
        "size": _dec(rec.size, "size"),
        "entry_price": _dec(rec.entry_price, "entry_price"),
        "mark_price": _dec(rec.mark_price, "mark_price"),
        "unrealised_pnl": _dec(rec.unrealised_pnl, "unrealised_pnl"),
        "realised_pnl": _dec(rec.realised_pnl, "realised_pnl"),
        "leverage": _dec(rec.leverage, "leverage"),
        "liq_price": _opt_dec(rec.liq_price, "liq_price"),
        "updated_ms": _int(rec.updated_ms, "updated_ms"),
    }


def _decode_position(row: sqlite3.Row) -> PositionRecord:
    return PositionRecord(
        connector=row["connector"],
        pair=row["pair"],
        position_idx=row["position_idx"],
        side=row["side"],
        size=_decimal(row["size"]),
        entry_price=_decimal(row["entry_price"]),
        mark_price=_decimal(row["mark_price"]),
        unrealised_pnl=_decimal(row["unrealised_pnl"]),
        realised_pnl=_decimal(row["realised_pnl"]),
        leverage=_decimal(row["leverage"]),
        liq_price=_opt_decimal(row["liq_price"]),
        updated_ms=row["updated_ms"],
    )


def _encode_balance(rec: BalanceRecord) -> dict[str, Any]:
    return {
        "connector": _text(rec.connector, "connector"),
        "coin": _text(rec.coin, "coin"),
        "total": _dec(rec.total, "total"),
        "available": _dec(rec.available, "available"),
        "locked": _dec(rec.locked, "locked"),
        "updated_ms": _int(rec.updated_ms, "updated_ms"),
    }


def _decode_balance(row: sqlite3.Row) -> BalanceRecord:
    return BalanceRecord(
        connector=row["connector"],
        coin=row["coin"],
        total=_decimal(row["total"]),
        available=_decimal(row["available"]),
        locked=_decimal(row["locked"]),
        updated_ms=row["updated_ms"],
    )


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


# Columns copied from the incoming write unless the row is terminal and the write is not.
_ORDER_MUTABLE = (
    "order_type",
    "time_in_force",
    "price",
    "amount",
    "state",
    "reduce_only",
    "position_idx",
)
_ORDER_IDENTITY = ("pair", "side", "category")
_BOOK_STAMP = ("book_u", "book_age", "book_valid")

_Query = tuple[str, list[Any]]


class Store:
    """The SQLite store. ``Store(path)`` opens (creating or migrating) the file; ``":memory:"``
    gives a private in-memory store (no WAL). Use it as a context manager or call :meth:`close`.

    ``terminal_states`` overrides :data:`TERMINAL_STATES`; ``busy_timeout_ms`` is how long a write
    waits for another process's write; ``migrations`` overrides :data:`MIGRATIONS` (the migration
    hook: a store built with more steps upgrades the file, one built with fewer refuses it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        terminal_states: Iterable[str] | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.terminal_states: frozenset[str] = (
            TERMINAL_STATES if terminal_states is None else frozenset(terminal_states)
        )
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise ConfigError(f"busy_timeout_ms: expected an integer, got {busy_timeout_ms!r}")
        if busy_timeout_ms < 0:
            raise ConfigError(f"busy_timeout_ms: expected >= 0, got {busy_timeout_ms}")
        self._migrations = tuple(MIGRATIONS if migrations is None else migrations)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,  # no implicit transactions: we BEGIN explicitly
                check_same_thread=False,  # guarded by self._lock instead
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path!r}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            if self.path not in (":memory:", ""):
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("store journal mode is not WAL path=%s mode=%s", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {self.path!r}: {exc}") from exc
            raise
        self._conn = conn
        log.debug("store opened path=%s schema_version=%d", self.path, len(self._migrations))

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(self._migrations)
        if self._user_version(conn) == target:
            return
        # Under the write lock, so two processes opening a fresh file migrate it once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._user_version(conn)
            if version > target:
                raise StoreError(
                    f"store {self.path!r} has schema version {version}, newer than this "
                    f"bybitkit's {target}: upgrade bybitkit"
                )
            for step in self._migrations[version:]:
                step(conn)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if version < target:
            log.info(
                "store migrated path=%s from_version=%d to_version=%d", self.path, version, target
            )

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # ---------------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the connection (idempotent). An open transaction is rolled back."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"Store({self.path!r}, {state})"

    @property
    def schema_version(self) -> int:
        """The file's ``PRAGMA user_version``."""
        with self._lock:
            return self._user_version(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path!r} is closed")
        return self._conn

    def _exec(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        conn = self._connection()
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path!r}: {exc}") from exc

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            rows: list[sqlite3.Row] = self._exec(sql, params).fetchall()
            return rows

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._exec(sql, params).fetchone()
            return row

    # ---------------------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run several writes atomically: all of them are committed, or none (the block raised).

        Nested blocks are savepoints: an inner block that raises rolls back only itself. Every
        write method runs in its own (nested, if inside a block) transaction. Do not ``await``
        inside the block."""
        with self._lock:
            self._connection()
            depth = self._depth
            savepoint = f"sp{depth}"
            self._exec("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth = depth + 1
            try:
                yield self
            except BaseException:
                self._depth = depth
                self._rollback(depth, savepoint)
                raise
            self._depth = depth
            try:
                self._exec("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except BaseException:
                self._rollback(depth, savepoint)
                raise

    def _rollback(self, depth: int, savepoint: str) -> None:
        conn = self._conn
        if conn is None or not conn.in_transaction:
            return
        try:
            if depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
        except sqlite3.Error:
            log.exception("store rollback failed path=%s depth=%d", self.path, depth)

    # ---------------------------------------------------------------------------- orders

    def upsert_order(self, rec: OrderRecord) -> None:
        """Insert the order, or merge it into the stored row of ``(connector, client_order_id)``
        without regressing it (see the module docstring). Raises :class:`StoreError` if the
        stored order has another pair, side or category (a reused client order id)."""
        new = _encode_order(rec)
        with self.transaction():
            old_row = self._one(
                "SELECT * FROM orders WHERE connector = ? AND client_order_id = ?",
                (new["connector"], new["client_order_id"]),
            )
            if old_row is None:
                new["is_open"] = int(new["state"] not in self.terminal_states)
                self._exec(_insert_sql("orders", _ORDER_TABLE_COLUMNS), new)
                return
            old = dict(zip(old_row.keys(), tuple(old_row), strict=True))
            merged = self._merge_order(old, new)
            if merged != old:
                assignments = ", ".join(f"{c} = :{c}" for c in _ORDER_TABLE_COLUMNS[2:])
                self._exec(
                    f"UPDATE orders SET {assignments} "
                    "WHERE connector = :connector AND client_order_id = :client_order_id",
                    merged,
                )

    def _merge_order(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        for name in _ORDER_IDENTITY:
            if old[name] != new[name]:
                raise StoreError(
                    f"order {new['connector']}/{new['client_order_id']}: {name} is "
                    f"{old[name]!r} in the store, {new[name]!r} in the write "
                    "(client order id reused for another order?)"
                )
        # A write that would move a terminal row back to an open state is a late duplicate.
        stale = old["state"] in self.terminal_states and new["state"] not in self.terminal_states
        merged = dict(old)
        if not stale:
            for name in _ORDER_MUTABLE:
                merged[name] = new[name]
        if Decimal(new["filled"]) > Decimal(old["filled"]):
            merged["filled"] = new["filled"]
        if old["exchange_order_id"] is None:
            merged["exchange_order_id"] = new["exchange_order_id"]
        if all(old[name] is None for name in _BOOK_STAMP):
            for name in _BOOK_STAMP:
                merged[name] = new[name]
        if new["reason"] is not None and (old["reason"] is None or not stale):
            merged["reason"] = new["reason"]
        old_extra, new_extra = json.loads(old["extra"]), json.loads(new["extra"])
        both = {**new_extra, **old_extra} if stale else {**old_extra, **new_extra}
        merged["extra"] = json.dumps(both, sort_keys=True, separators=(",", ":"))
        merged["updated_ms"] = max(old["updated_ms"], new["updated_ms"])
        merged["is_open"] = int(merged["state"] not in self.terminal_states)
        return merged

    def order(self, connector: str, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id (``orderLinkId``), or None."""
        row = self._one(
            "SELECT * FROM orders WHERE connector = ? AND client_order_id = ?",
            (connector, client_order_id),
        )
        return None if row is None else _decode_order(row)

    def order_by_exchange_id(self, connector: str, exchange_order_id: str) -> OrderRecord | None:
        """The order with this exchange order id (Bybit ``orderId``), or None."""
        row = self._one(
            "SELECT * FROM orders WHERE connector = ? AND exchange_order_id = ? "
            "ORDER BY created_ms DESC, rowid DESC LIMIT 1",
            (connector, exchange_order_id),
        )
        return None if row is None else _decode_order(row)

    def open_orders(self, connector: str) -> list[OrderRecord]:
        """Every order of ``connector`` not in a terminal state (UNKNOWN included), oldest
        first. Reads only the open orders (partial index), however long the history."""
        rows = self._all(
            "SELECT * FROM orders WHERE connector = ? AND is_open = 1 ORDER BY created_ms, rowid",
            (connector,),
        )
        return [_decode_order(r) for r in rows]

    def orders(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[OrderRecord]:
        """Orders by ``created_ms`` (``since_ms <= created_ms < until_ms``), oldest first;
        ``limit`` keeps the most recent ones."""
        sql, params = self._orders_query(connector, pair, since_ms, until_ms, limit)
        return [_decode_order(r) for r in self._all(sql, params)]

    def _orders_query(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> _Query:
        where, params = _where(
            (("connector", connector), ("pair", pair)), "created_ms", since_ms, until_ms
        )
        return _select("orders", where, params, "created_ms", limit)

    # ---------------------------------------------------------------------------- fills

    def add_fill(self, rec: FillRecord) -> bool:
        """Store a fill once: True if its ``(connector, exec_id)`` is new, False if it was
        already stored (the stored row is kept; only a missing order id is filled in)."""
        new = _encode_fill(rec)
        with self.transaction():
            cursor = self._exec(
                _insert_sql("fills", _FILL_COLUMNS)
                + " ON CONFLICT (connector, exec_id) DO NOTHING",
                new,
            )
            if cursor.rowcount == 1:
                return True
            old = self._one(
                "SELECT * FROM fills WHERE connector = ? AND exec_id = ?",
                (new["connector"], new["exec_id"]),
            )
            if old is None:  # pragma: no cover - the conflict proves the row exists
                raise StoreError(f"fill {new['connector']}/{new['exec_id']} vanished")
            if any(old[c] != new[c] for c in ("pair", "side", "price", "qty", "fee")):
                log.warning(
                    "duplicate fill differs from the stored one connector=%s exec_id=%s "
                    "stored=%s/%s@%s fee=%s got=%s/%s@%s fee=%s",
                    new["connector"],
                    new["exec_id"],
                    old["side"],
                    old["qty"],
                    old["price"],
                    old["fee"],
                    new["side"],
                    new["qty"],
                    new["price"],
                    new["fee"],
                )
            if (old["client_order_id"] is None and new["client_order_id"] is not None) or (
                old["exchange_order_id"] is None and new["exchange_order_id"] is not None
            ):
                self._exec(
                    "UPDATE fills SET client_order_id = COALESCE(client_order_id, ?), "
                    "exchange_order_id = COALESCE(exchange_order_id, ?) "
                    "WHERE connector = ? AND exec_id = ?",
                    (
                        new["client_order_id"],
                        new["exchange_order_id"],
                        new["connector"],
                        new["exec_id"],
                    ),
                )
            return False

    def fills(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        client_order_id: str | None = None,
        limit: int | None = None,
    ) -> list[FillRecord]:
        """Fills by ``ts_ms`` (``since_ms <= ts_ms < until_ms``), oldest first, ties in the order
        they were stored; ``limit`` keeps the most recent ones."""
        sql, params = self._fills_query(connector, pair, since_ms, until_ms, client_order_id, limit)
        return [_decode_fill(r) for r in self._all(sql, params)]

    def _fills_query(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        client_order_id: str | None = None,
        limit: int | None = None,
    ) -> _Query:
        where, params = _where(
            (("connector", connector), ("pair", pair), ("client_order_id", client_order_id)),
            "ts_ms",
            since_ms,
            until_ms,
        )
        return _select("fills", where, params, "ts_ms", limit)

    def fill_count(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        client_order_id: str | None = None,
    ) -> int:
        """How many fills match the filters of :meth:`fills`."""
        where, params = _where(
            (("connector", connector), ("pair", pair), ("client_order_id", client_order_id)),
            "ts_ms",
            since_ms,
            until_ms,
        )
        row = self._one(f"SELECT COUNT(*) FROM fills{where}", params)
        assert row is not None
        return int(row[0])

    def last_fill(self, connector: str) -> FillRecord | None:
        """The latest fill of ``connector`` (greatest ``ts_ms``, ties: the last stored), the
        starting point of an "executions since" reconciliation; None if there is none."""
        row = self._one(
            "SELECT * FROM fills WHERE connector = ? ORDER BY ts_ms DESC, rowid DESC LIMIT 1",
            (connector,),
        )
        return None if row is None else _decode_fill(row)

    # ---------------------------------------------------------------------------- funding

    def add_funding(self, rec: FundingRecord) -> bool:
        """Store a funding payment once: True if its ``(connector, exec_id)`` is new, False if it
        was already stored (the stored row is kept)."""
        new = _encode_funding(rec)
        with self.transaction():
            cursor = self._exec(
                _insert_sql("funding", _FUNDING_COLUMNS)
                + " ON CONFLICT (connector, exec_id) DO NOTHING",
                new,
            )
            return cursor.rowcount == 1

    def funding(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[FundingRecord]:
        """Funding payments by ``ts_ms``, oldest first (same filters as :meth:`fills`)."""
        sql, params = self._funding_query(connector, pair, since_ms, until_ms, limit)
        return [_decode_funding(r) for r in self._all(sql, params)]

    def _funding_query(
        self,
        connector: str | None = None,
        pair: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> _Query:
        where, params = _where(
            (("connector", connector), ("pair", pair)), "ts_ms", since_ms, until_ms
        )
        return _select("funding", where, params, "ts_ms", limit)

    def last_funding(self, connector: str) -> FundingRecord | None:
        """The latest funding payment of ``connector`` (ties: the last stored), or None."""
        row = self._one(
            "SELECT * FROM funding WHERE connector = ? ORDER BY ts_ms DESC, rowid DESC LIMIT 1",
            (connector,),
        )
        return None if row is None else _decode_funding(row)

    # ---------------------------------------------------------------------------- positions

    def upsert_position(self, rec: PositionRecord) -> bool:
        """Insert or replace the position of ``(connector, pair, position_idx)``, unless the
        stored one is newer (greater ``updated_ms``): then nothing is written and False is
        returned (a late REST answer must not overwrite a fresher WebSocket push)."""
        new = _encode_position(rec)
        assignments = ", ".join(f"{c} = excluded.{c}" for c in _POSITION_COLUMNS[3:])
        with self.transaction():
            cursor = self._exec(
                _insert_sql("positions", _POSITION_COLUMNS)
                + f" ON CONFLICT (connector, pair, position_idx) DO UPDATE SET {assignments}"
                " WHERE excluded.updated_ms >= positions.updated_ms",
                new,
            )
            return cursor.rowcount == 1

    def positions(self, connector: str) -> list[PositionRecord]:
        """The stored positions of ``connector``, by pair then position index."""
        rows = self._all(
            "SELECT * FROM positions WHERE connector = ? ORDER BY pair, position_idx",
            (connector,),
        )
        return [_decode_position(r) for r in rows]

    def delete_position(self, connector: str, pair: str, position_idx: int = 0) -> bool:
        """Forget a (closed) position; True if there was one."""
        with self.transaction():
            cursor = self._exec(
                "DELETE FROM positions WHERE connector = ? AND pair = ? AND position_idx = ?",
                (connector, pair, position_idx),
            )
            return cursor.rowcount > 0

    # ---------------------------------------------------------------------------- balances

    def set_balances(self, connector: str, records: Iterable[BalanceRecord]) -> None:
        """Replace every balance of ``connector`` with ``records``, atomically."""
        encoded = [_encode_balance(r) for r in records]
        coins: set[str] = set()
        for row in encoded:
            if row["connector"] != connector:
                raise ConfigError(
                    f"set_balances({connector!r}): a record is for connector {row['connector']!r}"
                )
            if row["coin"] in coins:
                raise ConfigError(f"set_balances({connector!r}): coin {row['coin']!r} twice")
            coins.add(row["coin"])
        with self.transaction():
            self._exec("DELETE FROM balances WHERE connector = ?", (connector,))
            for row in encoded:
                self._exec(_insert_sql("balances", _BALANCE_COLUMNS), row)

    def balances(self, connector: str) -> list[BalanceRecord]:
        """The stored balances of ``connector``, by coin."""
        rows = self._all("SELECT * FROM balances WHERE connector = ? ORDER BY coin", (connector,))
        return [_decode_balance(r) for r in rows]

    # ---------------------------------------------------------------------------- meta

    def set_meta(self, connector: str, key: str, value: str) -> None:
        """Remember a small string (a reconciliation cursor, a session marker ...)."""
        row = (_str(connector, "connector"), _text(key, "key"), _str(value, "value"))
        with self.transaction():
            self._exec(
                "INSERT INTO meta (connector, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value",
                row,
            )

    def get_meta(self, connector: str, key: str) -> str | None:
        """The value stored by :meth:`set_meta`, or None."""
        row = self._one("SELECT value FROM meta WHERE connector = ? AND key = ?", (connector, key))
        return None if row is None else str(row[0])

    # ---------------------------------------------------------------------------- export

    def export_csv(
        self, kind: ExportKind, path_or_file: str | os.PathLike[str] | IO[str], **filters: Any
    ) -> int:
        """Write ``kind`` ("orders", "fills" or "funding") as CSV: a header row of the record's
        field names, then one row per record in ascending time. ``filters`` are those of
        :meth:`orders` / :meth:`fills` / :meth:`funding`. Decimals are exact plain strings, None
        is an empty cell, bools are ``true``/``false``, ``extra`` is JSON. A file object should
        be opened with ``newline=""``. Returns the number of records written."""
        decode: Callable[[sqlite3.Row], object]
        if kind == "orders":
            columns, decode = _ORDER_COLUMNS, _decode_order
            sql, params = self._orders_query(**filters)
        elif kind == "fills":
            columns, decode = _FILL_COLUMNS, _decode_fill
            sql, params = self._fills_query(**filters)
        elif kind == "funding":
            columns, decode = _FUNDING_COLUMNS, _decode_funding
            sql, params = self._funding_query(**filters)
        else:
            raise ConfigError(f"export_csv: kind must be orders, fills or funding, got {kind!r}")
        if isinstance(path_or_file, str | os.PathLike):
            with open(path_or_file, "w", newline="", encoding="utf-8") as out:
                return self._write_csv(out, columns, sql, params, decode)
        return self._write_csv(path_or_file, columns, sql, params, decode)

    def _write_csv(
        self,
        out: IO[str],
        columns: Sequence[str],
        sql: str,
        params: Sequence[Any],
        decode: Callable[[sqlite3.Row], object],
    ) -> int:
        writer = csv.writer(out)
        writer.writerow(columns)
        count = 0
        with self._lock:
            cursor = self._exec(sql, params)
            try:
                while batch := cursor.fetchmany(500):
                    for row in batch:
                        rec = decode(row)
                        writer.writerow([_csv_cell(getattr(rec, c)) for c in columns])
                    count += len(batch)
            finally:
                cursor.close()
        return count


def _where(
    equal: Iterable[tuple[str, object]],
    time_column: str,
    since_ms: int | None,
    until_ms: int | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in equal:
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since_ms is not None:
        clauses.append(f"{time_column} >= ?")
        params.append(_int(since_ms, "since_ms"))
    if until_ms is not None:
        clauses.append(f"{time_column} < ?")
        params.append(_int(until_ms, "until_ms"))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _select(
    table: str, where: str, params: list[Any], time_column: str, limit: int | None
) -> _Query:
    if limit is None:
        return f"SELECT * FROM {table}{where} ORDER BY {time_column}, rowid", params
    if _int(limit, "limit") < 0:
        raise ValidationError("limit", "an integer >= 0", limit)
    # The most recent `limit` rows, returned oldest first.
    return (
        f"SELECT * FROM (SELECT *, rowid AS seq_ FROM {table}{where} "
        f"ORDER BY {time_column} DESC, rowid DESC LIMIT ?) ORDER BY {time_column}, seq_",
        [*params, limit],
    )
