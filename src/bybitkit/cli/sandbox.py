"""``bybitkit sandbox serve``: run the local Bybit V5 exchange as a process."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

import typer

from bybitkit.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="The local Bybit-compatible sandbox exchange.")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Loopback address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on (0 picks a free one)."),
    seed: int = typer.Option(0, help="Seed of the simulated market (prices and flow)."),
    api_key: str | None = typer.Option(None, help="API key of the default account."),
    api_secret: str | None = typer.Option(None, help="API secret of the default account."),
    speed: float = typer.Option(
        1.0, help="Scale of the simulation's rates and funding schedule (never the clock)."
    ),
    log_level: str = typer.Option("WARNING", help="Log level (logs go to stderr)."),
) -> None:
    """Serve Bybit V5 REST and WebSocket on HOST:PORT until SIGINT/SIGTERM.

    Once ready, prints exactly one JSON line on stdout:
    {"rest_url", "ws_url", "api_key", "api_secret"} of a default account (100,000 USDT,
    100,000 USDC, 1 BTC, 10 ETH). Logs and banners go to stderr.
    """
    if (api_key is None) != (api_secret is None):
        typer.echo("error: give both --api-key and --api-secret, or neither", err=True)
        raise typer.Exit(2)
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        asyncio.run(_serve(host, port, seed, api_key, api_secret, speed))
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except OSError as err:
        typer.echo(f"error: cannot listen on {host}:{port}: {err.strerror or err}", err=True)
        raise typer.Exit(1) from None


async def _serve(
    host: str, port: int, seed: int, api_key: str | None, api_secret: str | None, speed: float
) -> None:
    from bybitkit.sandbox import Sandbox

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sb = Sandbox(seed=seed, host=host, port=port, speed=speed)
    await sb.start()
    try:
        creds = sb.create_account(api_key=api_key, api_secret=api_secret)
        line = {
            "rest_url": sb.rest_url,
            "ws_url": sb.ws_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        print(f"bybitkit sandbox serving on {sb.rest_url} (seed {seed})", file=sys.stderr)
        await stop.wait()
    finally:
        await sb.stop()
