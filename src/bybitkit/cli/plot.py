"""The candle chart of ``bybitkit candles --plot out.png``: candles above, volume below.

matplotlib is the optional ``plot`` extra (``pip install 'bybitkit[plot]'``; ``make demo``
installs it). It is imported here only, at run time, with the non-interactive Agg canvas (no
window, no global pyplot state).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bybitkit.cli.common import CliError
from bybitkit.market.candles import Candle, interval_ms

UP = "#26a69a"
DOWN = "#ef5350"


def _matplotlib() -> Any:
    try:
        return importlib.import_module("matplotlib")
    except ImportError:
        raise CliError(
            "--plot needs matplotlib: pip install 'bybitkit[plot]' (make demo installs it)", 2
        ) from None


def check_plotting() -> None:
    """Fail early (before any download) when matplotlib is missing."""
    _matplotlib()


def plot_candles(candles: Sequence[Candle], path: Path, title: str, interval: str) -> None:
    """Write ``candles`` as a PNG chart: a candle per bar (green up, red down) and the volume."""
    _matplotlib()
    figure_mod: Any = importlib.import_module("matplotlib.figure")
    dates: Any = importlib.import_module("matplotlib.dates")
    if not candles:
        raise CliError("no candles to plot")
    fig = figure_mod.Figure(figsize=(12, 7), dpi=100)
    price_ax, volume_ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    times = [dates.date2num(c.time) for c in candles]
    bar_days = 30.0 if interval == "M" else interval_ms(interval) / 86_400_000
    width = bar_days * 0.7
    colors = [UP if c.close >= c.open else DOWN for c in candles]
    price_ax.vlines(times, [float(c.low) for c in candles], [float(c.high) for c in candles],
                    colors=colors, linewidth=1)  # fmt: skip
    bottoms = [float(min(c.open, c.close)) for c in candles]
    heights = [max(float(abs(c.close - c.open)), 1e-12) for c in candles]
    alphas = [1.0 if c.confirmed else 0.5 for c in candles]
    bars = price_ax.bar(times, heights, width, bottom=bottoms, color=colors, edgecolor=colors)
    for patch, alpha in zip(bars, alphas, strict=True):
        patch.set_alpha(alpha)
    if any(c.volume is not None for c in candles):
        volume_ax.bar(times, [float(c.volume or 0) for c in candles], width, color=colors,
                      alpha=0.7)  # fmt: skip
    price_ax.set_title(title)
    price_ax.set_ylabel("price")
    price_ax.grid(True, alpha=0.3)
    volume_ax.set_ylabel("volume")
    volume_ax.grid(True, alpha=0.3)
    locator = dates.AutoDateLocator()
    volume_ax.xaxis.set_major_locator(locator)
    volume_ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    if all(c.volume is None for c in candles):
        volume_ax.text(0.5, 0.5, "no volume (mark / index price)", ha="center", va="center",
                       transform=volume_ax.transAxes)  # fmt: skip
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    except OSError as exc:
        raise CliError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None


__all__ = ["check_plotting", "plot_candles"]
