"""The README's library examples that use the sandbox run as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


async def test_the_sandbox_connector_example_runs(capsys: object) -> None:
    (block,) = [b for b in python_blocks() if 'connect("sandbox"' in b]
    # The example calls asyncio.run(main()); run main() in this test's loop instead.
    code = block.replace("asyncio.run(main())", "")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    await asyncio.wait_for(namespace["main"](), 60)  # type: ignore[operator]
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "cancelled: user" in out and "Balance(coin='USDT'" in out
