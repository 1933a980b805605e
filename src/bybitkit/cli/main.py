"""Entry point of the ``bybitkit`` command."""

from __future__ import annotations

import typer

from bybitkit import __version__
from bybitkit.cli.sandbox import app as sandbox_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="bybitkit: trade on Bybit (mainnet, testnet, demo) or on a local sandbox exchange.",
)

app.add_typer(sandbox_app, name="sandbox")

DEMO_PLAN = """\
bybitkit demo: the plan (not run yet)

The demo will, with no keys and no network:
  1. start the embedded Bybit-compatible sandbox exchange on 127.0.0.1,
  2. create a sandbox account,
  3. run market-making bots on spot BTC-USDT and the BTC-USDT perpetual through the real
     connectors over loopback sockets,
  4. print a summary line: demo: <orders> orders, <fills> fills, <volume> volume, fees <x>, pnl <y>.

What exists today: the Bybit V5 wire layer (environments, signing, typed schemas, the REST client
and the WebSocket session). The sandbox, the connectors and the strategies are still to come, so
no trading run happens here: nothing below is simulated or faked.
"""


@app.command()
def version() -> None:
    """Print the bybitkit version."""
    typer.echo(__version__)


@app.command()
def demo() -> None:
    """Run the demo (for now: say what it will do; no trading run is faked)."""
    typer.echo(DEMO_PLAN, nl=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
