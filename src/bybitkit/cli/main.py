"""Entry point of the ``bybitkit`` command.

Commands, in the spirit of the ones Hummingbot users know (each also works inside
``bybitkit shell``):

* connections: ``connect``, ``connections``, ``disconnect``;
* market data (no keys): ``ticker``, ``order-book``, ``candles``, ``trading-rules``;
* account and trading: ``balance``, ``buy``, ``sell``, ``cancel``, ``orders``, ``positions``,
  ``leverage``, ``position-mode``, ``funding``;
* ``history`` (the SQLite store, CSV export, closed PnL);
* ``shell``, ``sandbox serve``, ``demo``, ``version``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bybitkit import __version__
from bybitkit.cli import connect as connect_mod
from bybitkit.cli import demo as demo_mod
from bybitkit.cli import history as history_mod
from bybitkit.cli import market, trading
from bybitkit.cli.common import reported, setup_logging, teardown_logging, with_target
from bybitkit.cli.sandbox import app as sandbox_app

HELP = (
    "bybitkit: trade on Bybit (mainnet, testnet, demo) or on a local sandbox exchange.\n\n"
    "Start with `bybitkit connect bybit_testnet` (or run `bybitkit sandbox serve` and give any "
    "command `--connector sandbox --sandbox-info '<its JSON line>'`), then `balance`, "
    "`order-book BTC-USDT`, `buy BTC-USDT 0.001 --price 60000`, `history`. `bybitkit shell` "
    "runs the same commands in an interactive prompt.\n\n"
    "Keys are kept encrypted in BYBITKIT_HOME (default ~/.bybitkit; password from a prompt or "
    "BYBITKIT_PASSWORD), next to the orders and fills store (store.sqlite) and the logs."
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)

CONNECTIONS = "Connections"
MARKET = "Market data"
TRADING = "Account and trading"
STRATEGIES = "Strategies"
OTHER = "Other"

#: Sub-commands that configure their own logging (or need none).
OWN_LOGGING = frozenset({"sandbox", "demo", "version"})


@app.callback()
def root(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            envvar="BYBITKIT_LOG_LEVEL",
            help="Level of BYBITKIT_HOME/logs/bybitkit.log (default INFO); warnings also go "
            "to stderr. Secrets are never logged.",
            show_default=False,
        ),
    ] = None,
) -> None:
    if ctx.invoked_subcommand in OWN_LOGGING:
        return
    with reported():
        if setup_logging(log_level):
            ctx.call_on_close(teardown_logging)


def _register() -> None:
    cmd = app.command
    cmd("connect", rich_help_panel=CONNECTIONS)(
        with_target(connector_option=False)(connect_mod.connect_command)
    )

    @cmd("connections", rich_help_panel=CONNECTIONS)
    def connections(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the connectors whose keys are stored (no password needed)."""
        with reported():
            connect_mod.list_connections(as_json)

    @cmd("disconnect", rich_help_panel=CONNECTIONS)
    def disconnect(
        connector: Annotated[str, typer.Argument(help="Connector id.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Forget a connector's keys (removes them from the key store)."""
        with reported():
            connect_mod.disconnect_command(connector, as_json)

    cmd("ticker", rich_help_panel=MARKET)(with_target()(market.ticker_command))
    cmd("order-book", rich_help_panel=MARKET)(with_target()(market.order_book_command))
    cmd("candles", rich_help_panel=MARKET)(with_target()(market.candles_command))
    cmd("trading-rules", rich_help_panel=MARKET)(with_target()(market.trading_rules_command))

    cmd("balance", rich_help_panel=TRADING)(with_target()(trading.balance_command))
    cmd("buy", rich_help_panel=TRADING)(with_target()(trading.buy_command))
    cmd("sell", rich_help_panel=TRADING)(with_target()(trading.sell_command))
    cmd("cancel", rich_help_panel=TRADING)(with_target()(trading.cancel_command))
    cmd("orders", rich_help_panel=TRADING)(with_target()(trading.orders_command))
    cmd("positions", rich_help_panel=TRADING)(with_target()(trading.positions_command))
    cmd("leverage", rich_help_panel=TRADING)(with_target()(trading.leverage_command))
    cmd("position-mode", rich_help_panel=TRADING)(with_target()(trading.position_mode_command))
    cmd("funding", rich_help_panel=TRADING)(with_target()(trading.funding_command))
    cmd("history", rich_help_panel=TRADING)(with_target()(history_mod.history_command))

    from bybitkit.cli import strategy as strategy_mod

    cmd("start", rich_help_panel=STRATEGIES)(strategy_mod.start_command)
    cmd("status", rich_help_panel=STRATEGIES)(strategy_mod.status_command)
    cmd("stop", rich_help_panel=STRATEGIES)(strategy_mod.stop_command)

    @cmd("shell", rich_help_panel=OTHER)
    def shell() -> None:
        """An interactive prompt running these same commands (history, Tab completion)."""
        from bybitkit.cli.shell import run_shell

        run_shell(typer.main.get_group(app))


_register()
app.add_typer(sandbox_app, name="sandbox", rich_help_panel=OTHER)


@app.command(rich_help_panel=OTHER)
def version() -> None:
    """Print the bybitkit version."""
    typer.echo(__version__)


app.command("demo", rich_help_panel=OTHER)(demo_mod.demo_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
