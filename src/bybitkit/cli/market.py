"""Market commands: ``ticker``, ``order-book``, ``candles`` and ``trading-rules`` (no keys
needed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from bybitkit.cli.common import (
    DataTable,
    Target,
    console,
    d,
    err_console,
    open_connector,
    print_json,
    resolve,
    run,
    ts,
    usage,
)
from bybitkit.connectors.base import BybitConnector
from bybitkit.errors import ValidationError
from bybitkit.market import OrderBook
from bybitkit.market.candles import Candle, parse_interval, write_csv

PAGE = 1000  # candles per request (Bybit's maximum)

Pair = Annotated[str, typer.Argument(help="Trading pair, e.g. BTC-USDT (BTCUSDT works too).")]


# -- ticker ---------------------------------------------------------------------------------------


def ticker_command(
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Pairs (e.g. BTC-USDT); none: the most traded ones.", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many pairs without PAIRS.", min=1)] = 20,
    *,
    target: Target,
) -> None:
    """Last price, best bid and ask, 24 h change, range and volume (perpetuals: funding too)."""
    res = resolve(target, keys=False)
    rows = run(_tickers(res, pairs or [], limit))
    if target.json:
        print_json(rows)
        return
    perp = res.is_perpetual
    table = DataTable(title=f"Tickers ({res.connector})")
    cols = ["Pair", "Last", "Bid", "Ask", "24h %", "24h high", "24h low", "24h volume"]
    if perp:
        cols += ["Mark", "Index", "Funding rate", "Next funding (UTC)"]
    for c in cols:
        table.add_column(c, justify="left" if c == "Pair" else "right")
    for r in rows:
        pct = r["change_24h_pct"]
        cells = [r["pair"], r["last"], r["bid"], r["ask"], pct, r["high_24h"], r["low_24h"],
                 r["volume_24h"]]  # fmt: skip
        if perp:
            cells += [r["mark"], r["index"], r["funding_rate"], ts(r["next_funding_ms"])]
        table.add_row(*[str(c) if c is not None else "" for c in cells])
    console().print(table)


async def _tickers(res: Any, pairs: list[str], limit: int) -> list[dict[str, Any]]:
    async with open_connector(res) as ex:
        wanted = [ex.normalize_pair(p) for p in pairs]
        if wanted:
            items = []
            for pair in wanted:
                result = await ex.rest.tickers(ex.category, symbol=ex.rules[pair].symbol)
                items += list(result.list)
        else:
            result = await ex.rest.tickers(ex.category)
            symbols = {r.symbol for r in ex.rules.values()}
            items = [t for t in result.list if t.symbol in symbols]
            items.sort(key=lambda t: -(t.turnover24h or 0))
            items = items[:limit]
        rows = []
        for t in items:
            pct = t.price24hPcnt
            rows.append(
                {
                    "pair": ex.pair_of(t.symbol),
                    "symbol": t.symbol,
                    "last": t.lastPrice,
                    "bid": t.bid1Price,
                    "ask": t.ask1Price,
                    "change_24h_pct": d(pct * 100) if pct is not None else None,
                    "high_24h": t.highPrice24h,
                    "low_24h": t.lowPrice24h,
                    "volume_24h": t.volume24h,
                    "turnover_24h": t.turnover24h,
                    "mark": getattr(t, "markPrice", None),
                    "index": getattr(t, "indexPrice", None),
                    "funding_rate": getattr(t, "fundingRate", None),
                    "next_funding_ms": getattr(t, "nextFundingTime", None),
                }
            )
        return rows


# -- order book -----------------------------------------------------------------------------------


def book_table(pair: str, book: OrderBook, depth: int) -> DataTable:
    bids, asks = book.bids(depth), book.asks(depth)
    state = "valid" if book.is_usable else (book.invalid_reason or "not usable")
    spread = book.spread()
    caption = f"update {book.u}, {state}" + (f", spread {d(spread)}" if spread is not None else "")
    table = DataTable(title=f"{pair} order book", caption=caption)
    for col in ("Bid size", "Bid", "Ask", "Ask size"):
        table.add_column(col, justify="right")
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        table.add_row(
            d(b[1]) if b else "",
            Text(d(b[0]), style="green") if b else "",
            Text(d(a[0]), style="red") if a else "",
            d(a[1]) if a else "",
        )
    return table


def book_json(pair: str, book: OrderBook, depth: int) -> dict[str, Any]:
    return {
        "pair": pair,
        "u": book.u,
        "valid": book.is_usable,
        "bids": [[d(p), d(q)] for p, q in book.bids(depth)],
        "asks": [[d(p), d(q)] for p, q in book.asks(depth)],
    }


def order_book_command(
    pair: Pair,
    depth: Annotated[int, typer.Option(help="Levels per side.", min=1, max=200)] = 10,
    live: Annotated[
        bool, typer.Option("--live", help="Keep the table updating (Ctrl-C stops).")
    ] = False,
    seconds: Annotated[
        float | None,
        typer.Option(help="With --live: stop after this many seconds.", min=0),
    ] = None,
    *,
    target: Target,
) -> None:
    """The order book (from the live stream, checked update by update)."""
    res = resolve(target, keys=False)
    if seconds is not None and not live:
        raise usage("--seconds", "--live with it")
    try:
        run(_order_book(res, pair, depth, live, seconds, target.json))
    except KeyboardInterrupt:
        if not live:
            raise
        # Ctrl-C is how a live view ends.


async def _order_book(
    res: Any, pair: str, depth: int, live: bool, seconds: float | None, as_json: bool
) -> None:
    async with open_connector(res, book_depth=50 if depth <= 50 else 200) as ex:
        book = await ex.order_book(pair)
        pair = ex.normalize_pair(pair)
        if not live:
            if as_json:
                print_json(book_json(pair, book, depth))
            else:
                console().print(book_table(pair, book, depth))
            return
        deadline = None if seconds is None else time.monotonic() + seconds
        out = console()
        if as_json:  # one JSON object per line, about 4 a second
            while deadline is None or time.monotonic() < deadline:
                print_json(book_json(pair, book, depth), indent=None)
                await asyncio.sleep(0.25)
            return
        footer = Text("Ctrl-C to stop", style="dim")
        with Live(Group(book_table(pair, book, depth), footer), console=out,
                  refresh_per_second=4, transient=False) as view:  # fmt: skip
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                view.update(Group(book_table(pair, book, depth), footer))


# -- candles --------------------------------------------------------------------------------------


def candles_command(
    pair: Pair,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w 1M.")
    ] = "1h",
    limit: Annotated[int, typer.Option(help="How many candles (the newest).", min=1)] = 100,
    price: Annotated[str, typer.Option(help="last, or mark / index (perpetuals).")] = "last",
    rows: Annotated[int, typer.Option(help="Rows to print (the newest).", min=0)] = 20,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a chart (candles and volume) to this PNG file."),
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the candles as CSV.")] = None,
    *,
    target: Target,
) -> None:
    """Candles (OHLC, volume), optionally charted to a PNG (needs the `plot` extra)."""
    try:
        code = parse_interval(interval)
    except ValidationError as exc:
        raise usage("--interval", exc.expected, interval) from None
    if plot is not None:
        from bybitkit.cli.plot import check_plotting

        check_plotting()
        if plot.suffix.lower() != ".png":
            raise usage("--plot", "a file name ending in .png", str(plot))
    res = resolve(target, keys=False)
    pair_name, candles = run(_candles(res, pair, code, limit, price))
    if csv is not None:
        write_csv(candles, csv)
    if plot is not None:
        from bybitkit.cli.plot import plot_candles

        plot_candles(
            candles, plot, f"{pair_name} {interval} ({res.connector}, {price} price)", code
        )
    if target.json:
        print_json(
            {
                "pair": pair_name,
                "interval": code,
                "price": price,
                "plot": str(plot) if plot else None,
                "candles": [
                    {
                        "open_time": c.open_time,
                        "open": c.open,
                        "high": c.high,
                        "low": c.low,
                        "close": c.close,
                        "volume": c.volume,
                        "turnover": c.turnover,
                        "confirmed": c.confirmed,
                    }
                    for c in candles
                ],
            }
        )
        return
    out = console()
    table = DataTable(
        title=f"{pair_name} candles, {interval}, {price} price ({len(candles)} in all)"
    )
    for col in ("Open time (UTC)", "Open", "High", "Low", "Close", "Volume", ""):
        table.add_column(col, justify="left" if col.startswith("Open time") else "right")
    for c in candles[-rows:] if rows else []:
        table.add_row(ts(c.open_time), d(c.open), d(c.high), d(c.low), d(c.close),
                      d(c.volume), "" if c.confirmed else "open")  # fmt: skip
    if rows:
        out.print(table)
    if csv is not None:
        out.print(f"Wrote {len(candles)} candles to {csv}")
    if plot is not None:
        out.print(f"Wrote the chart to {plot}")


async def _candles(
    res: Any, pair: str, code: str, limit: int, price: str
) -> tuple[str, list[Candle]]:
    async with open_connector(res) as ex:
        pair = ex.normalize_pair(pair)
        if limit <= PAGE:
            return pair, await ex.candles(pair, code, limit=limit, price=price)
        return pair, await _download(ex, pair, code, limit, price)


async def _download(
    ex: BybitConnector, pair: str, code: str, limit: int, price: str
) -> list[Candle]:
    """Many candles, a page (1000) at a time from the newest backwards, with a progress bar."""
    got: dict[int, Candle] = {}
    progress = Progress(
        TextColumn("candles {task.description}"), BarColumn(), MofNCompleteColumn(),
        console=err_console(), transient=True, disable=not err_console().is_terminal,
    )  # fmt: skip
    with progress:
        task = progress.add_task(pair, total=limit)
        end: int | None = None
        while len(got) < limit:
            want = min(PAGE, limit - len(got))
            page = await ex.candles(pair, code, limit=want, end=end, price=price)
            new = [c for c in page if c.open_time not in got]
            for c in new:
                got[c.open_time] = c
            progress.update(task, completed=len(got))
            if len(page) < want or not new:
                break  # the history starts here
            end = min(c.open_time for c in page) - 1
    return sorted(got.values(), key=lambda c: c.open_time)[-limit:]


# -- trading rules --------------------------------------------------------------------------------


def trading_rules_command(
    pairs: Annotated[
        list[str] | None,
        typer.Argument(help="Pairs; none: every pair of the connector.", show_default=False),
    ] = None,
    *,
    target: Target,
) -> None:
    """The rules an order must follow: tick, size step, minimum size and notional, maxima."""
    res = resolve(target, keys=False)
    rules = run(_rules(res, pairs or []))
    if target.json:
        print_json(rules)
        return
    table = DataTable(title=f"Trading rules ({res.connector})")
    cols = [("pair", "Pair"), ("symbol", "Symbol"), ("tick_size", "Tick"),
            ("qty_step", "Size step"), ("min_qty", "Min size"),
            ("min_notional", "Min notional"), ("max_limit_qty", "Max limit size"),
            ("max_market_qty", "Max market size"), ("status", "Status")]  # fmt: skip
    for _, title in cols:
        table.add_column(
            title, justify="left" if title in ("Pair", "Symbol", "Status") else "right"
        )
    for r in rules:
        table.add_row(*[str(r[k]) for k, _ in cols])
    console().print(table)


async def _rules(res: Any, pairs: list[str]) -> list[dict[str, Any]]:
    async with open_connector(res) as ex:
        wanted = [ex.normalize_pair(p) for p in pairs] or sorted(ex.rules)
        out = []
        for pair in wanted:
            r = ex.rules[pair]
            out.append(
                {
                    "pair": r.pair,
                    "symbol": r.symbol,
                    "category": r.category,
                    "tick_size": d(r.tick_size),
                    "qty_step": d(r.qty_step),
                    "min_qty": d(r.min_qty),
                    "min_notional": f"{d(r.min_notional)} {r.quote_coin}",
                    "max_limit_qty": d(r.max_limit_qty),
                    "max_market_qty": d(r.max_market_qty),
                    "status": r.status,
                }
            )
        return out


__all__ = [
    "candles_command",
    "order_book_command",
    "ticker_command",
    "trading_rules_command",
]
