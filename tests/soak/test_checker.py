"""The soak's checker can fail: each kind of violation, planted by hand, is reported (a soak
whose checks cannot fire would prove nothing)."""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bybitkit.sandbox.app import Sandbox
from bybitkit.store import FillRecord, OrderRecord, Store
from bybitkit.v5.rest import RestClient

from .harness import BALANCES, BookWatch, Bot, Checker, Window, _pairs

D = Decimal


def order_row(cid: str, *, valid: bool | None, created_ms: int, state: str = "OPEN") -> Any:
    return OrderRecord(
        connector="sandbox", client_order_id=cid, exchange_order_id=None, pair="BTC-USDT",
        category="spot", side="BUY", order_type="LIMIT", time_in_force="GTC", price=D(1),
        amount=D("0.001"), filled=D(0), state=state, created_ms=created_ms,
        updated_ms=created_ms, book_u=7, book_age=0.1, book_valid=valid,
    )  # fmt: skip


def fill_row(e: dict[str, Any], fee: str | None = None, exec_id: str | None = None) -> Any:
    return FillRecord(
        connector="sandbox", exec_id=exec_id or e["execId"], client_order_id=e["orderLinkId"],
        exchange_order_id=e["orderId"], pair="BTC-USDT", side=e["side"].upper(),
        price=D(e["execPrice"]), qty=D(e["execQty"]), fee=D(fee or e["execFee"]),
        fee_currency=e["feeCurrency"], is_maker=False, ts_ms=int(e["execTime"]),
    )  # fmt: skip


def kinds(checker: Checker) -> set[str]:
    return {key.split(":")[0] for key in checker.violations}


async def test_every_planted_violation_is_reported(tmp_path: Path) -> None:
    async with Sandbox(seed=1, simulate=False) as sb:
        creds = sb.create_account(BALANCES)
        watch = BookWatch(sb)
        bot = Bot(tmp_path, sb, creds.api_key, creds.api_secret)
        checker = Checker(sb, bot, watch, await _pairs(sb))
        p = checker.prefix
        bid = sb.book("BTCUSDT", "spot", 1)["bids"][0][0]
        now = int(time.time() * 1000)
        with Store(str(bot.store_path)) as store:
            async with RestClient(sb.environment, creds) as rest:
                # an exchange order the store never heard of, and a client id used twice
                await rest.place_order(
                    category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit",
                    qty="0.001", price=str(bid - 100), orderLinkId=p + "orphan",
                )  # fmt: skip
                hist = sb.exchange.history[checker.uid]
                hist.orders.append(copy.copy(hist.orders[-1]))
                # fills: one stored with another fee, one not stored, one the sandbox never made
                store.upsert_order(order_row(p + "taker", valid=True, created_ms=now - 60_000))
                await rest.place_order(
                    category="spot", symbol="BTCUSDT", side="Buy", orderType="Market",
                    qty="0.3", marketUnit="baseCoin", orderLinkId=p + "taker",
                )  # fmt: skip
            execs = sb.executions(creds.api_key)
            assert len(execs) >= 2
            store.add_fill(fill_row(execs[0], fee="123"))
            store.add_fill(fill_row(execs[0], exec_id="made-up"))
            # book stamps: one says stale, one says valid inside a window the harness knows of
            store.upsert_order(order_row(p + "stale", valid=False, created_ms=now))
            watch.windows.append(Window("spot", "BTCUSDT", now / 1000 - 1, now / 1000 + 1, "test"))
            store.upsert_order(order_row(p + "inside", valid=True, created_ms=now))
        checker.continuous()
        assert {"orphan-unknown", "duplicate", "fill-mismatch", "fill-phantom",
                "book-stamp", "book-window"} <= kinds(checker)  # fmt: skip
        assert "fill-lost" not in kinds(checker)  # young: the bot may still be catching up
        # at a resync point: balances, positions and open orders against a made-up status
        status = {
            "connectors": {
                "spot": {"balances": {"USDT": {"total": "1", "available": "1"}},
                         "positions": [], "open_orders": [], "books": {}},
                "perp": {"balances": {}, "open_orders": [], "books": {},
                         "positions": [{"pair": "BTC-USDT", "side": "Buy", "size": "0.1",
                                        "entry_price": "1"}]},
            }
        }  # fmt: skip
        issues = checker.quiescent_issues(status)
        assert {"fills", "balance", "position", "orphan", "store-open"} <= {
            k.split(":")[0] for k in issues
        }
        checker._check_fills(complete=True)
        assert "fill-lost" in kinds(checker)
        # a secret in a log line
        logs = bot.home / "logs"
        logs.mkdir(parents=True)
        (logs / "bybitkit.log").write_text(f"ok\nsigned with {creds.api_secret}\n")
        checker.secrets([])
        assert "secret" in kinds(checker)
