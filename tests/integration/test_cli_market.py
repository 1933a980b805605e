"""Market commands against a sandbox: ``ticker``, ``order-book`` (and ``--live``),
``candles`` (paging, CSV, the PNG chart) and ``trading-rules``."""

from __future__ import annotations

import sys
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from bybitkit.market.candles import read_csv
from bybitkit.sandbox import Sandbox

from .test_cli_harness import Cli, cli, sandbox_info

__all__ = ["cli"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_ticker(cli: Cli, sandbox: Sandbox) -> None:
    info = sandbox_info(sandbox)
    rows = (await cli("ticker", "BTC-USDT", "ETHUSDT", "--sandbox-info", info, "--json")).json()
    assert [r["pair"] for r in rows] == ["BTC-USDT", "ETH-USDT"]
    book = sandbox.book("BTCUSDT", depth=1)
    assert Decimal(rows[0]["bid"]) == book["bids"][0][0]
    assert Decimal(rows[0]["ask"]) == book["asks"][0][0]
    table = await cli("ticker", "--sandbox-info", info)
    assert "BTC-USDT" in table.stdout and "ETH-USDT" in table.stdout
    perp = await cli("ticker", "BTC-USDT", "-c", "sandbox_perpetual", "--sandbox-info", info)
    assert "Funding rate" in perp.stdout and "Mark" in perp.stdout
    bad = await cli("ticker", "DOGE-USDT", "--sandbox-info", info, code=2)
    assert "PAIR: expected a spot pair of this exchange" in bad.stderr and "DOGE-USDT" in bad.stderr


async def test_order_book(cli: Cli, sandbox: Sandbox) -> None:
    info = sandbox_info(sandbox)
    data = (await cli("order-book", "BTC-USDT", "--depth", "5", "--sandbox-info", info,
                      "--json")).json()  # fmt: skip
    expected = sandbox.book("BTCUSDT", depth=5)
    assert data["valid"] is True
    assert [[Decimal(p), Decimal(q)] for p, q in data["bids"]] == [
        [p, q] for p, q in expected["bids"]
    ]
    assert [[Decimal(p), Decimal(q)] for p, q in data["asks"]] == [
        [p, q] for p, q in expected["asks"]
    ]
    table = await cli("order-book", "ETH-USDT", "--sandbox-info", info)
    assert "ETH-USDT order book" in table.stdout and "Bid size" in table.stdout
    live = await cli("order-book", "BTC-USDT", "--live", "--seconds", "0.6", "--depth", "3",
                     "--sandbox-info", info)  # fmt: skip
    assert "BTC-USDT order book" in live.stdout and "Ctrl-C to stop" in live.stdout
    lines = await cli("order-book", "BTC-USDT", "--live", "--seconds", "0.6", "--json",
                      "--sandbox-info", info)  # fmt: skip
    assert len(lines.stdout.splitlines()) >= 2  # one JSON object per refresh
    bad = await cli("order-book", "BTC-USDT", "--seconds", "1", "--sandbox-info", info, code=2)
    assert "--seconds: expected --live with it" in bad.stderr


async def test_candles(cli: Cli, sandbox: Sandbox) -> None:
    info = sandbox_info(sandbox)
    data = (await cli("candles", "BTC-USDT", "-i", "1m", "--limit", "5", "--sandbox-info", info,
                      "--json")).json()  # fmt: skip
    times = [c["open_time"] for c in data["candles"]]
    assert len(times) == 5 and times == sorted(times)
    assert all(b - a == 60_000 for a, b in pairwise(times))
    # More than one page (1000): downloaded page by page, joined without gap or duplicate.
    csv_path = cli.home.parent / "c.csv"
    out = await cli("candles", "BTCUSDT", "-i", "1m", "--limit", "1500", "--rows", "3",
                    "--csv", str(csv_path), "--sandbox-info", info)  # fmt: skip
    assert "1500 in all" in out.stdout and "Wrote 1500 candles" in out.stdout
    bars = read_csv(csv_path)
    assert len(bars) == 1500 and len({b.open_time for b in bars}) == 1500
    assert all(b.open_time - a.open_time == 60_000 for a, b in pairwise(bars))
    mark = (await cli("candles", "BTC-USDT", "--price", "mark", "--limit", "3", "-c",
                      "sandbox_perpetual", "--sandbox-info", info, "--json")).json()  # fmt: skip
    assert len(mark["candles"]) == 3 and mark["candles"][0]["volume"] is None
    bad = await cli("candles", "BTC-USDT", "-i", "7m", "--sandbox-info", info, code=2)
    assert "--interval: expected one of 1, 3, 5" in bad.stderr and "'7m'" in bad.stderr
    bad = await cli("candles", "BTC-USDT", "--price", "mark", "--sandbox-info", info, code=2)
    assert "--price: expected last on spot" in bad.stderr


async def test_candles_chart_is_a_png(cli: Cli, sandbox: Sandbox) -> None:
    pytest.importorskip("matplotlib")
    chart = cli.home.parent / "charts" / "btc.png"
    out = await cli("candles", "BTC-USDT", "-i", "5m", "--limit", "60", "--plot", str(chart),
                    "--sandbox-info", sandbox_info(sandbox))  # fmt: skip
    assert f"Wrote the chart to {chart}" in out.stdout
    data = chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    # The IHDR chunk: 1200 x 700 pixels.
    assert int.from_bytes(data[16:20], "big") == 1200 and int.from_bytes(data[20:24], "big") == 700


async def test_candles_plot_needs_png(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bad = await cli("candles", "BTC-USDT", "--plot", str(tmp_path / "x.jpg"),
                    "--sandbox-info", sandbox_info(sandbox), code=2)  # fmt: skip
    assert "--plot: expected a file name ending in .png" in bad.stderr


async def test_trading_rules(cli: Cli, sandbox: Sandbox) -> None:
    info = sandbox_info(sandbox)
    rules = {r["pair"]: r for r in (await cli("trading-rules", "--sandbox-info", info,
                                              "--json")).json()}  # fmt: skip
    assert rules["BTC-USDT"]["tick_size"] == "0.1" and rules["BTC-USDT"]["category"] == "spot"
    linear = (await cli("trading-rules", "BTC-USDT", "-c", "sandbox_perpetual",
                        "--sandbox-info", info, "--json")).json()  # fmt: skip
    assert linear[0]["category"] == "linear" and linear[0]["symbol"] == "BTCUSDT"
    table = await cli("trading-rules", "--sandbox-info", info)
    assert "Min notional" in table.stdout and "ETH-USDT" in table.stdout


async def test_plot_without_matplotlib_is_a_clear_error(
    cli: Cli, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = await cli("candles", "BTC-USDT", "--plot", str(cli.home.parent / "c.png"),
                    "--sandbox-info", sandbox_info(sandbox), code=2)  # fmt: skip
    assert "--plot needs matplotlib: pip install 'bybitkit[plot]'" in out.stderr
    assert not (cli.home.parent / "c.png").exists()
