"""SQLite persistence: orders, fills, funding, positions, balances and cursors (WAL, idempotent
writes, exact Decimals). See :mod:`bybitkit.store.sqlite` for the schema and the rules."""

from bybitkit.store.records import (
    BalanceRecord,
    FillRecord,
    FundingRecord,
    OrderRecord,
    PositionRecord,
)
from bybitkit.store.sqlite import (
    DEFAULT_BUSY_TIMEOUT_MS,
    MIGRATIONS,
    SCHEMA_VERSION,
    TERMINAL_STATES,
    ExportKind,
    Migration,
    Store,
    StoreError,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TERMINAL_STATES",
    "BalanceRecord",
    "ExportKind",
    "FillRecord",
    "FundingRecord",
    "Migration",
    "OrderRecord",
    "PositionRecord",
    "Store",
    "StoreError",
]
