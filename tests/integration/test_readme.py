"""The README's library examples that use the sandbox run as written."""

from __future__ import annotations

import asyncio
import re
import sys
import types
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


async def run_block(marker: str) -> None:
    (block,) = [b for b in python_blocks() if marker in b]
    # The example calls asyncio.run(main()); run main() in this test's loop instead.
    code = block.replace("asyncio.run(main())", "")
    # a real module: classes defined in the example resolve their annotations through it
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, "README.md", "exec"), module.__dict__)
        await asyncio.wait_for(module.main(), 60)
    finally:
        del sys.modules[module.__name__]


async def test_the_spot_connector_example_runs(capsys: object) -> None:
    await run_block('connect("sandbox"')
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "cancelled: user" in out and "Balance(coin='USDT'" in out


async def test_the_perpetual_connector_example_runs(capsys: object) -> None:
    await run_block('"sandbox_perpetual"')
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "BTC-USDT Side.BUY 0.01" in out and "FundingInfo(pair='BTC-USDT'" in out


async def test_the_candles_example_runs(capsys: object) -> None:
    await run_block("candles_feed(")
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.startswith("5000 Candle(") and "open_time,time,open,high,low,close" in out
    assert "confirmed=False)" in out.splitlines()[0]  # the bar in progress is the newest


async def test_the_paper_trading_example_runs(capsys: object) -> None:
    await run_block('"bybit_paper_trade"')
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    first, second = out.splitlines()[:2]
    assert first.startswith("OrderState.FILLED 0.01 ")
    assert second == "0.00999"


async def test_the_strategy_example_runs(capsys: object) -> None:
    await run_block("class Quoter(ScriptStrategy)")
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    line = out.strip().splitlines()[-1]
    assert line.startswith("exit 0 orders ") and line.endswith(" open 0")
    assert int(line.split()[3]) >= 2
