"""Account and trading commands: ``balance``, ``buy``, ``sell``, ``cancel``, ``orders``,
``positions``, ``leverage``, ``position-mode`` and ``funding``.

Every order is validated before it is sent (the connector checks the pair's trading rules and
names the rule an order breaks), tracked from before its request leaves, and recorded in
``BYBITKIT_HOME/store.sqlite`` with its fills, where ``history`` finds them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.markup import escape

from bybitkit.cli.common import (
    DataTable,
    Resolved,
    Target,
    console,
    d,
    err_console,
    explain,
    open_connector,
    perpetual,
    print_json,
    resolve,
    run,
    stored_targets,
    ts,
    usage,
)
from bybitkit.errors import ValidationError
from bybitkit.money import fmt
from bybitkit.trading import OrderCancelled, OrderCompleted, OrderFailed
from bybitkit.trading.types import Order, OrderState, OrderType, PositionMode, TimeInForce

Pair = Annotated[str, typer.Argument(help="Trading pair, e.g. BTC-USDT (BTCUSDT works too).")]


def _decimal(value: str, name: str) -> Decimal:
    try:
        number = Decimal(value.strip().replace("_", ""))
    except (InvalidOperation, AttributeError):
        raise usage(name, "a decimal number such as 0.001", value) from None
    if not number.is_finite():
        raise usage(name, "a finite decimal number", value)
    return number


def order_json(o: Order) -> dict[str, Any]:
    return {
        "client_order_id": o.client_order_id,
        "exchange_order_id": o.exchange_order_id,
        "pair": o.pair,
        "side": o.side.name.lower(),
        "type": o.order_type.name.lower(),
        "time_in_force": o.time_in_force.name,
        "price": o.price,
        "amount": o.amount,
        "filled": o.filled,
        "average_price": o.average_price,
        "fees": o.fees,
        "state": o.state.name.lower(),
        "reason": o.reason,
        "reduce_only": o.reduce_only,
        "created": ts(o.created_ms),
    }


# -- balance --------------------------------------------------------------------------------------


def balance_command(*, target: Target) -> None:
    """Balances of every connected connector (or the one --connector names), with USD values.

    Connectors that share one unified account (the same key on the same exchange, e.g. bybit
    and bybit_perpetual) are shown, and counted in the total, once.
    """
    accounts: dict[tuple[str, str], list[Resolved]] = {}
    for res in stored_targets(target):
        key = res.credentials.api_key if res.credentials is not None else ""
        accounts.setdefault((res.environment.rest_url, key), []).append(res)
    results: list[dict[str, Any]] = []
    failed = 0
    for group in accounts.values():
        names = [r.connector for r in group]
        try:
            result = run(_balance(group[0]))
        except Exception as exc:
            failed += 1
            error = explain(exc, group[0].environment)
            result = {"error": error.message}
        results.append({"connectors": names, **result})
    if target.json:
        print_json(results)
    else:
        out = console()
        for r in results:
            label = " + ".join(r["connectors"])
            if "error" in r:
                err_console().print(
                    f"[bold red]error:[/] {escape(label)}: {escape(r['error'])}", highlight=False
                )
                continue
            shared = " (one unified account)" if len(r["connectors"]) > 1 else ""
            table = DataTable(title=f"{label}{shared}: total {r['total_usd']} USD")
            for col in ("Coin", "Total", "Available", "Locked", "USD value"):
                table.add_column(col, justify="left" if col == "Coin" else "right")
            for c in r["coins"]:
                table.add_row(c["coin"], d(c["total"]), d(c["available"]), d(c["locked"]),
                              d(c["usd_value"]))  # fmt: skip
            out.print(table)
        if len(results) > 1:
            total = sum(
                (Decimal(str(r["total_usd"])) for r in results if "total_usd" in r), Decimal(0)
            )
            out.print(f"Total of all accounts: {fmt(total)} USD")
    if failed:
        raise typer.Exit(1)


async def _balance(res: Resolved) -> dict[str, Any]:
    async with open_connector(res) as ex:
        balances = await ex.balances()
        wallet = await ex.rest.wallet_balance()
    usd: dict[str, Decimal | None] = {}
    for account in wallet.list:
        for c in account.coin:
            usd[c.coin] = c.usdValue
    coins: list[dict[str, Any]] = [
        {
            "coin": b.coin,
            "total": b.total,
            "available": b.available,
            "locked": b.locked,
            "usd_value": usd.get(b.coin),
        }
        for b in sorted(balances.values(), key=lambda b: -(usd.get(b.coin) or 0))
        if b.total != 0 or b.locked != 0
    ]
    total = sum((c["usd_value"] or Decimal(0) for c in coins), Decimal(0))
    return {"coins": coins, "total_usd": fmt(total)}


# -- buy / sell -----------------------------------------------------------------------------------


def _order_command(side: str) -> Any:
    def command(
        pair: Pair,
        amount: Annotated[
            str, typer.Argument(help="Size in the base coin (with --quote: quote coin, market).")
        ],
        price: Annotated[
            str | None, typer.Option("--price", "-p", help="Limit price (limit, limit-maker).")
        ] = None,
        order_type: Annotated[
            str | None,
            typer.Option(
                "--type",
                "-t",
                help="limit, limit-maker or market (default: limit with --price, else market).",
                show_default=False,
            ),
        ] = None,
        tif: Annotated[
            str | None, typer.Option("--tif", help="Limit orders: gtc, ioc or fok.")
        ] = None,
        quote: Annotated[
            bool, typer.Option("--quote", help="Spot market order sized in the quote coin.")
        ] = False,
        reduce_only: Annotated[
            bool, typer.Option("--reduce-only", help="Perpetuals: only reduce a position.")
        ] = False,
        position_action: Annotated[
            str | None,
            typer.Option("--position-action", help="Perpetuals in hedge mode: open or close."),
        ] = None,
        wait: Annotated[
            float | None,
            typer.Option(
                help="Seconds to wait for the order to finish (default: 10 for market, IOC and "
                "FOK orders; 0 for resting orders).",
                min=0,
                show_default=False,
            ),
        ] = None,
        *,
        target: Target,
    ) -> None:
        kind = order_type or ("limit" if price is not None else "market")
        try:
            parsed_type = OrderType.parse(kind, "order_type")
        except ValidationError:
            raise usage("--type", "limit, limit-maker or market", kind) from None
        size = _decimal(amount, "AMOUNT")
        if size <= 0:
            raise usage("AMOUNT", "a positive size", amount)
        limit_price: Decimal | None = None
        if parsed_type is OrderType.MARKET:
            if price is not None:
                raise usage("--price", "no price for a market order (or --type limit)", price)
            if tif not in (None, "ioc", "IOC"):
                raise usage("--tif", "nothing (or ioc) for a market order", tif)
        else:
            if price is None:
                raise usage("--price", f"a limit price for a {kind} order")
            limit_price = _decimal(price, "--price")
            if limit_price <= 0:
                raise usage("--price", "a positive price", price)
            if quote:
                raise usage("--quote", "a market order (quote sizes are for market orders)")
        time_in_force = None
        if tif is not None:
            try:
                time_in_force = TimeInForce.parse(tif, "time_in_force")
            except ValidationError:
                raise usage("--tif", "gtc, ioc or fok", tif) from None
            if parsed_type is OrderType.LIMIT_MAKER and time_in_force is not TimeInForce.GTC:
                raise usage("--tif", "gtc (or nothing) for limit-maker", tif)
        if position_action not in (None, "open", "close"):
            raise usage("--position-action", "open or close", position_action)
        res = resolve(target, keys=True)
        opts: dict[str, Any] = {}
        if quote:
            opts["quote_amount"] = True
        if res.is_perpetual:
            if reduce_only:
                opts["reduce_only"] = True
            if position_action:
                opts["position_action"] = position_action
        elif reduce_only or position_action:
            raise usage("--reduce-only/--position-action", "a perpetual connector", res.connector)
        waits = wait
        if waits is None:
            quick = parsed_type is OrderType.MARKET or time_in_force in (
                TimeInForce.IOC,
                TimeInForce.FOK,
            )
            waits = 10.0 if quick else 0.0
        order = run(
            _place(res, pair, side, parsed_type, size, limit_price, time_in_force, opts, waits)
        )
        if target.json:
            print_json(order_json(order))
        else:
            _print_order(order, res.connector)
        if order.state is OrderState.FAILED or (
            order.state is OrderState.CANCELLED and order.filled == 0
        ):
            raise typer.Exit(1)

    command.__doc__ = (
        f"{side.capitalize()} PAIR: a limit, limit-maker (post-only) or market order, checked "
        "against the pair's trading rules before it is sent."
    )
    return command


async def _place(
    res: Resolved,
    pair: str,
    side: str,
    order_type: OrderType,
    amount: Decimal,
    price: Decimal | None,
    tif: TimeInForce | None,
    opts: dict[str, Any],
    wait: float,
) -> Order:
    async with open_connector(res) as ex:
        pair = ex.normalize_pair(pair)
        # The live book (and, on spot, the price band stream) lets the order be checked before
        # it is sent: a market order's notional against the book, a spot price against the band.
        await ex.order_book(pair)
        if res.category == "spot" and order_type is not OrderType.MARKET:
            for _ in range(50):  # the band arrives on the stream: up to 1 s
                if pair in ex.bands:
                    break
                await asyncio.sleep(0.02)
        events = ex.events()
        try:
            order = await ex.place_order(pair, side, order_type, amount, price, tif, **opts)
            if wait > 0 and order.is_open:
                await _wait_for_end(events, order, wait)
            else:
                await asyncio.sleep(0.2)  # let an immediate fill arrive
        finally:
            await close_iterator(events)
        return order


async def _wait_for_end(events: Any, order: Order, wait: float) -> None:
    try:
        async with asyncio.timeout(wait):
            async for event in events:
                if isinstance(event, OrderCompleted | OrderCancelled | OrderFailed) and (
                    event.order is order
                ):
                    return
    except TimeoutError:
        return


async def close_iterator(events: Any) -> None:
    """Close an event subscription (an async generator) now, not at garbage collection."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _print_order(o: Order, connector: str) -> None:
    out = console()
    what = f"{o.side.name.lower()} {fmt(o.amount)} {o.pair} {o.order_type.name.lower()}"
    if o.price is not None:
        what += f" at {fmt(o.price)}"
    out.print(f"Order {o.client_order_id} ({connector}): {what}")
    line = f"  state {o.state.name.lower()}"
    if o.reason:
        line += f" ({o.reason})"
    line += f", filled {fmt(o.filled)}"
    if o.average_price is not None:
        line += f" at {fmt(o.average_price.quantize(Decimal('1e-8')).normalize())} on average"
    if o.fees:
        line += ", fees " + ", ".join(f"{fmt(v)} {k}" for k, v in o.fees.items())
    out.print(line)
    if o.exchange_order_id:
        out.print(f"  exchange order id {o.exchange_order_id}")


buy_command = _order_command("buy")
sell_command = _order_command("sell")


# -- cancel ---------------------------------------------------------------------------------------


def cancel_command(
    order_id: Annotated[
        str | None,
        typer.Argument(help="The order's client id (bbk-...) or exchange id.", show_default=False),
    ] = None,
    all_orders: Annotated[bool, typer.Option("--all", help="Cancel every open order.")] = False,
    pair: Annotated[str | None, typer.Option(help="With --all: only this pair.")] = None,
    *,
    target: Target,
) -> None:
    """Cancel one order, or every open order (--all, optionally of one --pair)."""
    if (order_id is None) == (not all_orders):
        raise usage("ORDER_ID", "an order id, or --all (not both)")
    if pair is not None and not all_orders:
        raise usage("--pair", "--all with it")
    res = resolve(target, keys=True)
    result = run(_cancel(res, order_id, all_orders, pair))
    if target.json:
        print_json(result)
        return
    out = console()
    if all_orders:
        n = len(result["cancelled"])
        out.print(f"Cancelled {n} order{'s' if n != 1 else ''}: " + ", ".join(result["cancelled"]))
    else:
        o = result["order"]
        out.print(f"Order {o['client_order_id']}: {o['state']}"
                  + (f" ({o['reason']})" if o["reason"] else ""))  # fmt: skip


async def _cancel(
    res: Resolved, order_id: str | None, all_orders: bool, pair: str | None
) -> dict[str, Any]:
    async with open_connector(res) as ex:
        if all_orders:
            return {"cancelled": await ex.cancel_all(pair)}
        assert order_id is not None
        order = ex.get_order(order_id)
        if order is None:
            order = next(
                (
                    o
                    for o in ex.open_orders()
                    if order_id in (o.exchange_order_id, o.client_order_id)
                ),
                None,
            )
        if order is None or not order.is_open:
            raise usage("ORDER_ID", "the id of an open order (see `bybitkit orders`)", order_id)
        events = ex.events()
        try:
            await ex.cancel_order(order.client_order_id)
            await _wait_for_end(events, order, 5.0)
        finally:
            await close_iterator(events)
        return {"order": order_json(order)}


# -- orders ---------------------------------------------------------------------------------------


def orders_command(
    pair: Annotated[str | None, typer.Option(help="Only this pair.")] = None,
    *,
    target: Target,
) -> None:
    """Open orders (reconciled with the exchange), oldest first."""
    res = resolve(target, keys=True)
    orders = run(_orders(res, pair))
    if target.json:
        print_json([order_json(o) for o in orders])
        return
    out = console()
    if not orders:
        out.print(f"No open order on {res.connector}.")
        return
    table = DataTable(title=f"Open orders ({res.connector})")
    for col in ("Order id", "Pair", "Side", "Type", "Price", "Amount", "Filled", "State",
                "Created (UTC)"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("Price", "Amount", "Filled") else "left")
    for o in orders:
        table.add_row(o.client_order_id, o.pair, o.side.name.lower(), o.order_type.name.lower(),
                      d(o.price), d(o.amount), d(o.filled), o.state.name.lower(),
                      ts(o.created_ms))  # fmt: skip
    out.print(table)


async def _orders(res: Resolved, pair: str | None) -> list[Order]:
    async with open_connector(res) as ex:
        return sorted(ex.open_orders(pair), key=lambda o: o.created_ms)


# -- perpetuals -----------------------------------------------------------------------------------


def positions_command(*, target: Target) -> None:
    """Open perpetual positions: size, entry, mark, PnL, leverage, liquidation price."""
    res = resolve(target, keys=True)
    rows = run(_positions(res))
    if target.json:
        print_json(rows)
        return
    out = console()
    if not rows:
        out.print(f"No open position on {res.connector}.")
        return
    table = DataTable(title=f"Positions ({res.connector})")
    cols = [("pair", "Pair"), ("side", "Side"), ("size", "Size"), ("entry_price", "Entry"),
            ("mark_price", "Mark"), ("unrealised_pnl", "Unrealised PnL"),
            ("realised_pnl", "Realised PnL"), ("leverage", "Leverage"),
            ("liq_price", "Liq. price")]  # fmt: skip
    for _, title in cols:
        table.add_column(title, justify="left" if title in ("Pair", "Side") else "right")
    for r in rows:
        table.add_row(*[d(r[k]) if not isinstance(r[k], str) else r[k] for k, _ in cols])
    out.print(table)


async def _positions(res: Resolved) -> list[dict[str, Any]]:
    async with open_connector(res) as raw:
        ex = perpetual(raw, "positions")
        return [
            {
                "pair": p.pair,
                "side": p.side.name.lower() if p.side else "flat",
                "size": p.size,
                "position_idx": p.position_idx,
                "entry_price": p.entry_price,
                "mark_price": p.mark_price,
                "unrealised_pnl": p.unrealised_pnl,
                "realised_pnl": p.realised_pnl,
                "leverage": p.leverage,
                "liq_price": p.liq_price,
            }
            for p in sorted(await ex.positions(), key=lambda p: (p.pair, p.position_idx))
        ]


def leverage_command(
    pair: Pair,
    value: Annotated[
        str | None, typer.Argument(help="New leverage (e.g. 5); none: show it.", show_default=False)
    ] = None,
    *,
    target: Target,
) -> None:
    """Show or set a perpetual pair's leverage."""
    lev = _decimal(value, "LEVERAGE") if value is not None else None
    if lev is not None and lev <= 0:
        raise usage("LEVERAGE", "a positive leverage such as 5", value)
    res = resolve(target, keys=True)
    pair_name, now = run(_leverage(res, pair, lev))
    if target.json:
        print_json({"pair": pair_name, "leverage": now, "changed": lev is not None})
    elif lev is None:
        console().print(f"{pair_name} leverage: {fmt(now)}x")
    else:
        console().print(f"{pair_name} leverage set to {fmt(now)}x")


async def _leverage(res: Resolved, pair: str, lev: Decimal | None) -> tuple[str, Decimal]:
    async with open_connector(res) as raw:
        ex = perpetual(raw, "leverage")
        pair = ex.normalize_pair(pair)
        if lev is not None:
            await ex.set_leverage(pair, lev)
        return pair, await ex.leverage(pair)


def position_mode_command(
    pair: Pair,
    mode: Annotated[
        str | None, typer.Argument(help="one-way or hedge; none: show it.", show_default=False)
    ] = None,
    *,
    target: Target,
) -> None:
    """Show or set a perpetual pair's position mode (one-way or hedge)."""
    wanted = None
    if mode is not None:
        try:
            wanted = PositionMode.parse(mode, "mode")
        except ValidationError:
            raise usage("MODE", "one-way or hedge", mode) from None
    res = resolve(target, keys=True)
    pair_name, now = run(_position_mode(res, pair, wanted))
    name = now.name.lower().replace("_", "-")
    if target.json:
        print_json({"pair": pair_name, "mode": name, "changed": wanted is not None})
    elif wanted is None:
        console().print(f"{pair_name} position mode: {name}")
    else:
        console().print(f"{pair_name} position mode set to {name}")


async def _position_mode(
    res: Resolved, pair: str, mode: PositionMode | None
) -> tuple[str, PositionMode]:
    async with open_connector(res) as raw:
        ex = perpetual(raw, "position-mode")
        pair = ex.normalize_pair(pair)
        if mode is not None:
            await ex.set_position_mode(pair, mode)
        return pair, await ex.position_mode(pair)


def funding_command(
    pair: Annotated[
        str | None,
        typer.Argument(
            help="Pair for the funding rate and time; none: payments only.", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Payments to list (the newest).", min=0)] = 20,
    *,
    target: Target,
) -> None:
    """Funding rate and next funding time of a perpetual, and the payments on your positions.

    With PAIR: its funding rate, mark and index prices and next funding time (from the ticker
    stream). Always: the funding payments booked in the store (positive = paid).
    """
    res = resolve(target, keys=True)
    data = run(_funding(res, pair, limit))
    if target.json:
        print_json(data)
        return
    out = console()
    info = data["info"]
    if info is not None:
        rate = info["rate"]
        out.print(
            f"{info['pair']}: funding rate {d(rate)}"
            + (f" ({fmt(rate * 100)}%)" if rate is not None else "")
            + f", next funding {ts(info['next_funding_ms'])} UTC"
            + (f" (every {info['interval_hours']} h)" if info["interval_hours"] else "")
            + f", mark {d(info['mark_price'])}, index {d(info['index_price'])}"
        )
    payments = data["payments"]
    if not payments:
        out.print("No funding payment booked yet.")
        return
    table = DataTable(title="Funding payments (positive = paid, negative = received)")
    for col in ("Time (UTC)", "Pair", "Side", "Size", "Mark", "Rate", "Amount"):
        table.add_column(col, justify="left" if col in ("Time (UTC)", "Pair", "Side") else "right")
    for p in payments:
        table.add_row(ts(p["ts_ms"]), p["pair"], p["side"], d(p["size"]), d(p["mark_price"]),
                      d(p["rate"]), d(p["amount"]))  # fmt: skip
    out.print(table)
    out.print(f"Net funding: {fmt(data['net'])} (positive = paid)")


async def _funding(res: Resolved, pair: str | None, limit: int) -> dict[str, Any]:
    async with open_connector(res) as raw:
        ex = perpetual(raw, "funding")
        info = None
        if pair is not None:
            pair = ex.normalize_pair(pair)
            await ex.watch(pair)
            fi = ex.funding_info(pair)
            info = {
                "pair": fi.pair,
                "rate": fi.rate,
                "mark_price": fi.mark_price,
                "index_price": fi.index_price,
                "next_funding_ms": fi.next_funding_ms,
                "interval_hours": fi.interval_hours,
            }
        payments = await ex.funding_payments(pair)
    rows = [
        {
            "exec_id": p.exec_id,
            "pair": p.pair,
            "side": p.side.name.lower(),
            "size": p.size,
            "mark_price": p.mark_price,
            "rate": p.rate,
            "amount": p.amount,
            "ts_ms": p.ts_ms,
        }
        for p in payments
    ]
    net = sum((p.amount for p in payments), Decimal(0))
    return {"info": info, "payments": rows[-limit:] if limit else [], "net": net}


__all__ = [
    "balance_command",
    "buy_command",
    "cancel_command",
    "funding_command",
    "leverage_command",
    "orders_command",
    "position_mode_command",
    "positions_command",
    "sell_command",
]
