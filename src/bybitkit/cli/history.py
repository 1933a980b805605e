"""``history``: orders, fills, fees and funding from the SQLite store, and closed PnL.

Every connector the command line opens records into ``BYBITKIT_HOME/store.sqlite``; ``history``
reads that file (on its own connection, so a running bot is never blocked), filtered by
connector, pair and time, and exports it to CSV. ``--sync`` first brings the store up to date
with the exchange (the connector's reconciliation: open orders and executions since the last one
stored); ``--closed-pnl`` pages Bybit's ``/v5/position/closed-pnl`` for perpetuals, seven days
per request as Bybit allows, with a progress bar.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bybitkit.cli.common import (
    CliError,
    DataTable,
    Resolved,
    Target,
    check_connector,
    console,
    d,
    err_console,
    open_connector,
    parse_time,
    print_json,
    resolve,
    run,
    store_path,
    ts,
    usage,
)
from bybitkit.money import fmt
from bybitkit.store import FillRecord, FundingRecord, OrderRecord, Store

WEEK_MS = 7 * 86_400_000
#: How far back ``--closed-pnl`` looks without ``--since`` (Bybit keeps two years).
CLOSED_PNL_DEFAULT_MS = WEEK_MS


def _pair(pair: str | None) -> str | None:
    if pair is None:
        return None
    text = pair.strip().upper()
    if "-" in text or "/" in text:
        return text.replace("/", "-")
    for quote in ("USDT", "USDC", "BTC", "ETH"):
        if text.endswith(quote) and len(text) > len(quote):
            return f"{text[: -len(quote)]}-{quote}"
    raise usage("--pair", "a pair such as BTC-USDT", pair)


def _order_row(o: OrderRecord) -> dict[str, Any]:
    return {
        "connector": o.connector,
        "client_order_id": o.client_order_id,
        "exchange_order_id": o.exchange_order_id,
        "pair": o.pair,
        "category": o.category,
        "side": o.side.lower(),
        "type": o.order_type.lower(),
        "price": o.price,
        "amount": o.amount,
        "filled": o.filled,
        "state": o.state.lower(),
        "reason": o.reason,
        "created_ms": o.created_ms,
    }


def _fill_row(f: FillRecord) -> dict[str, Any]:
    return {
        "connector": f.connector,
        "exec_id": f.exec_id,
        "client_order_id": f.client_order_id,
        "pair": f.pair,
        "side": f.side.lower(),
        "price": f.price,
        "qty": f.qty,
        "fee": f.fee,
        "fee_currency": f.fee_currency,
        "maker": f.is_maker,
        "ts_ms": f.ts_ms,
    }


def _funding_row(f: FundingRecord) -> dict[str, Any]:
    return {
        "connector": f.connector,
        "exec_id": f.exec_id,
        "pair": f.pair,
        "side": f.side.lower(),
        "size": f.position_size,
        "mark_price": f.mark_price,
        "rate": f.rate,
        "amount": f.amount,
        "ts_ms": f.ts_ms,
    }


def history_command(
    pair: Annotated[str | None, typer.Option(help="Only this pair (e.g. BTC-USDT).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="From: 2024-05-01, 2024-05-01T12:00 (UTC), epoch ms, or an age (12h, 7d)."
        ),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until (same forms as --since).")] = None,
    limit: Annotated[int, typer.Option(help="Rows per table (the newest).", min=0)] = 20,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write orders.csv, fills.csv and funding.csv (all matching rows) "
            "into this folder.",
            show_default=False,
        ),
    ] = None,
    sync: Annotated[
        bool, typer.Option("--sync", help="First bring the store up to date from the exchange.")
    ] = False,
    closed_pnl: Annotated[
        bool, typer.Option("--closed-pnl", help="Perpetuals: closed PnL from the exchange.")
    ] = False,
    *,
    target: Target,
) -> None:
    """Orders, fills, fees and funding from the store; CSV export; closed PnL of perpetuals.

    Filters: --connector, --pair, --since, --until. --export DIR writes orders.csv, fills.csv
    and funding.csv; --sync first updates the store from the exchange; --closed-pnl lists
    Bybit's closed PnL (perpetuals).
    """
    connector = check_connector(target.connector) if target.connector else None
    pair_name = _pair(pair)
    since_ms = parse_time(since, "--since")
    until_ms = parse_time(until, "--until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise usage("--since", f"a time before --until ({ts(until_ms)} UTC)", since)
    res: Resolved | None = None
    if sync or closed_pnl:
        res = resolve(target, keys=True)
        connector = res.connector
    if closed_pnl and res is not None and not res.is_perpetual:
        raise usage("--connector", "a perpetual connector for --closed-pnl", res.connector)
    pnl_rows: list[dict[str, Any]] | None = None
    if res is not None:
        pnl_rows = run(_exchange_part(res, sync, closed_pnl, pair_name, since_ms, until_ms))
    path = store_path()
    filters: dict[str, Any] = {
        "connector": connector,
        "pair": pair_name,
        "since_ms": since_ms,
        "until_ms": until_ms,
    }
    with Store(path) as store:
        all_orders = store.orders(**filters)
        fills = store.fills(**filters)
        funding = store.funding(**filters)
        written: dict[str, int] = {}
        if export is not None:
            try:
                export.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CliError(f"--export: cannot create {export}: {exc.strerror}") from None
            for kind in ("orders", "fills", "funding"):
                written[kind] = store.export_csv(kind, export / f"{kind}.csv", **filters)
    fees: dict[str, Decimal] = {}
    volume: dict[str, Decimal] = {}
    for f in fills:
        fees[f.fee_currency] = fees.get(f.fee_currency, Decimal(0)) + f.fee
        quote = f.pair.split("-")[-1]
        volume[quote] = volume.get(quote, Decimal(0)) + f.price * f.qty
    funding_net = sum((f.amount for f in funding), Decimal(0))
    orders = all_orders[-limit:] if limit else []
    summary = {
        "orders": len(all_orders),
        "fills": len(fills),
        "volume": volume,
        "fees": fees,
        "funding_payments": len(funding),
        "funding_net": funding_net,
    }
    if target.json:
        data: dict[str, Any] = {
            "filters": {k: v for k, v in filters.items() if v is not None},
            "summary": summary,
            "orders": [_order_row(o) for o in orders],
            "fills": [_fill_row(f) for f in fills[-limit:]] if limit else [],
            "funding": [_funding_row(f) for f in funding[-limit:]] if limit else [],
        }
        if pnl_rows is not None:
            data["closed_pnl"] = pnl_rows
        if export is not None:
            data["exported"] = {k: str(export / f"{k}.csv") for k in written}
        print_json(data)
        return
    out = console()
    scope = ", ".join(
        x
        for x in (
            connector or "all connectors",
            pair_name or "",
            f"since {ts(since_ms)} UTC" if since_ms else "",
            f"until {ts(until_ms)} UTC" if until_ms else "",
        )
        if x
    )
    out.print(f"History ({scope}) from {path}")
    if limit and orders:
        table = DataTable(title=f"Orders (newest {len(orders)} of {summary['orders']})")
        for col in ("Created (UTC)", "Connector", "Pair", "Side", "Type", "Price", "Amount",
                    "Filled", "State", "Order id"):  # fmt: skip
            table.add_column(
                col, justify="right" if col in ("Price", "Amount", "Filled") else "left"
            )
        for o in orders:
            table.add_row(ts(o.created_ms), o.connector, o.pair, o.side.lower(),
                          o.order_type.lower(), d(o.price), d(o.amount), d(o.filled),
                          o.state.lower() + (f" ({o.reason})" if o.reason else ""),
                          o.client_order_id)  # fmt: skip
        out.print(table)
    if limit and fills:
        shown = fills[-limit:]
        table = DataTable(title=f"Fills (newest {len(shown)} of {len(fills)})")
        for col in ("Time (UTC)", "Connector", "Pair", "Side", "Price", "Qty", "Fee", "Role",
                    "Order id"):  # fmt: skip
            table.add_column(col, justify="right" if col in ("Price", "Qty", "Fee") else "left")
        for f in shown:
            table.add_row(ts(f.ts_ms), f.connector, f.pair, f.side.lower(), d(f.price), d(f.qty),
                          f"{d(f.fee)} {f.fee_currency}", "maker" if f.is_maker else "taker",
                          f.client_order_id or "")  # fmt: skip
        out.print(table)
    if limit and funding:
        shown_funding = funding[-limit:]
        table = DataTable(title=f"Funding (newest {len(shown_funding)} of {len(funding)}; "
                      "positive = paid)")  # fmt: skip
        for col in ("Time (UTC)", "Connector", "Pair", "Side", "Size", "Rate", "Amount"):
            table.add_column(col, justify="right" if col in ("Size", "Rate", "Amount") else "left")
        for fr in shown_funding:
            table.add_row(ts(fr.ts_ms), fr.connector, fr.pair, fr.side.lower(),
                          d(fr.position_size), d(fr.rate), d(fr.amount))  # fmt: skip
        out.print(table)
    if pnl_rows is not None and not pnl_rows:
        out.print("Closed PnL: no position closed in that period (from the exchange).")
    elif pnl_rows is not None:
        table = DataTable(title=f"Closed PnL ({len(pnl_rows)} closing orders, from the exchange)")
        for col in ("Closed (UTC)", "Pair", "Side", "Size", "Entry", "Exit", "PnL", "Fees"):
            table.add_column(
                col, justify="left" if col in ("Closed (UTC)", "Pair", "Side") else "right"
            )
        for r in pnl_rows[-limit:] if limit else []:
            table.add_row(ts(r["updated_ms"]), r["pair"], r["side"], d(r["closed_size"]),
                          d(r["avg_entry_price"]), d(r["avg_exit_price"]), d(r["closed_pnl"]),
                          d(r["fees"]))  # fmt: skip
        out.print(table)
        total = sum((r["closed_pnl"] or Decimal(0) for r in pnl_rows), Decimal(0))
        out.print(f"Closed PnL: {fmt(total)}")
    out.print(
        f"Summary: {summary['orders']} orders, {len(fills)} fills, volume "
        + (", ".join(f"{fmt(v)} {k}" for k, v in sorted(volume.items())) or "0")
        + ", fees "
        + (", ".join(f"{fmt(v)} {k}" for k, v in sorted(fees.items())) or "0")
        + f", funding {len(funding)} payments, net {fmt(funding_net)} (positive = paid)"
    )
    if export is not None:
        out.print(
            f"Exported to {export}: " + ", ".join(f"{k}.csv ({n} rows)" for k, n in written.items())
        )


async def _exchange_part(
    res: Resolved,
    sync: bool,
    closed_pnl: bool,
    pair: str | None,
    since_ms: int | None,
    until_ms: int | None,
) -> list[dict[str, Any]] | None:
    # Opening the connector reconciles it: open orders, then the executions since the last
    # one stored, all written to the store.
    async with open_connector(res) as ex:
        if not closed_pnl:
            return None
        symbol = ex.rules[ex.normalize_pair(pair)].symbol if pair else None
        now = ex.rest.clock.now_ms()
        end = until_ms if until_ms is not None else now
        start = since_ms if since_ms is not None else end - CLOSED_PNL_DEFAULT_MS
        windows = []
        t = start
        while t < end:
            windows.append((t, min(t + WEEK_MS - 1, end)))
            t += WEEK_MS
        rows: dict[str, dict[str, Any]] = {}
        progress = Progress(
            TextColumn("closed PnL"), BarColumn(), MofNCompleteColumn(),
            console=err_console(), transient=True, disable=not err_console().is_terminal,
        )  # fmt: skip
        with progress:
            task = progress.add_task("weeks", total=len(windows))
            for a, b in windows:
                params: dict[str, Any] = {"category": "linear", "startTime": a, "endTime": b,
                                          "limit": 100}  # fmt: skip
                if symbol:
                    params["symbol"] = symbol
                async for item in ex.rest.paginate(ex.rest.closed_pnl, **params):
                    fees = (item.openFee or Decimal(0)) + (item.closeFee or Decimal(0))
                    rows[item.orderId] = {
                        "pair": ex.pair_of(item.symbol),
                        "order_id": item.orderId,
                        "side": (item.side or "").lower(),
                        "closed_size": item.closedSize,
                        "avg_entry_price": item.avgEntryPrice,
                        "avg_exit_price": item.avgExitPrice,
                        "closed_pnl": item.closedPnl,
                        "fees": fees,
                        "leverage": item.leverage,
                        "created_ms": item.createdTime,
                        "updated_ms": item.updatedTime,
                    }
                progress.advance(task)
        return sorted(rows.values(), key=lambda r: r["updated_ms"] or 0)


__all__ = ["history_command"]
