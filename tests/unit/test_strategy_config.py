"""Strategy configs (YAML, exact decimals, errors naming the field), strategy loading, rails."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybitkit.errors import ConfigError
from bybitkit.strategies import ScriptStrategy, load_config, load_strategy
from bybitkit.strategies.rails import EquityWatch, OrderRate
from bybitkit.strategies.runner import link_prefix

D = Decimal

GOOD = """
strategy: pure_market_making
name: mm-1
tick_interval: 0.5
connectors:
  spot:
    connector: sandbox
    environment: http://127.0.0.1:8080
    pairs: [BTC-USDT]
risk:
  max_loss: 50.10
  max_drawdown: 0.05
  max_order_size: {BTC-USDT: 0.001}
params:
  bid_spread: 0.001
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yml"
    p.write_text(text)
    return p


def test_a_good_config_has_exact_decimals(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.instance_name == "mm-1"
    assert cfg.tick_interval == D("0.5")
    assert cfg.risk.max_loss == D("50.10") and cfg.risk.max_drawdown == D("0.05")
    assert cfg.risk.max_order_size == {"BTC-USDT": D("0.001")}
    assert cfg.params["bid_spread"] == D("0.001")  # not 0.001000000000000000020816...
    assert cfg.connectors["spot"].pairs == ["BTC-USDT"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  max_loss: 50.10", "  max_loss: lots"), "risk.max_loss: invalid decimal"),
        (("  max_loss: 50.10", "  max_loss: -5"), "risk.max_loss: expected a positive"),
        (("  max_drawdown: 0.05", "  max_drawdown: 5"), "risk.max_drawdown: expected a fraction"),
        (("tick_interval: 0.5", "tick_interval: 0"), "tick_interval: expected a positive"),
        (("tick_interval: 0.5", "tick_rate: 0.5"), "unknown field tick_rate"),
        (("    pairs: [BTC-USDT]", "    pairs: []"), "connectors.spot.pairs: expected at least"),
        (("    pairs: [BTC-USDT]", "    pairs: BTC-USDT"), "connectors.spot.pairs: expected array"),
        (("name: mm-1", "name: 'a b'"), "name: expected 1-64"),
        (("strategy: pure_market_making", "strategy: [1]"), "strategy: expected str"),
        (("  max_loss: 50.10", "  max_loss: .inf"), "not a usable number"),
    ],
)
def test_bad_configs_name_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)
    assert str(tmp_path / "c.yml") in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "strategy: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping at the top"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_loading_script_strategies(tmp_path: Path) -> None:
    one = tmp_path / "one.py"
    one.write_text(
        "from bybitkit.strategies import ScriptStrategy\nclass Mine(ScriptStrategy):\n    pass\n"
    )
    cls = load_strategy(str(one))
    assert issubclass(cls, ScriptStrategy) and cls.__name__ == "Mine"
    two = tmp_path / "two.py"
    two.write_text(
        "from bybitkit.strategies import ScriptStrategy\n"
        "class A(ScriptStrategy): pass\nclass B(ScriptStrategy): pass\n"
    )
    with pytest.raises(ConfigError, match="defines 2"):
        load_strategy(str(two))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="failed to load: RuntimeError: boom"):
        load_strategy(str(broken))
    with pytest.raises(ConfigError, match="expected one of funding_rate_arbitrage"):
        load_strategy("no_such_strategy")
    with pytest.raises(ConfigError, match="no such file"):
        load_strategy(str(tmp_path / "absent.py"))


def test_link_prefix_is_short_and_stable() -> None:
    p = link_prefix("mm-1")
    assert p == link_prefix("mm-1") != link_prefix("mm-2")
    assert len(p) <= 8 and p.replace("-", "").isalnum()


def test_equity_watch_max_loss_and_drawdown() -> None:
    w = EquityWatch(max_loss=D(100))
    assert w.update(D(1000)) is None
    assert w.update(D(950)) is None and w.pnl == D(-50)
    assert w.update(D(900)) is not None and "max loss" in (w.fired or "")
    assert w.update(D(2000)) is None  # fires once
    d = EquityWatch(max_drawdown=D("0.1"))
    d.update(D(1000))
    d.update(D(1200))  # the peak
    assert d.update(D(1081)) is None
    assert d.update(D(1080)) is not None and "drawdown" in (d.fired or "")


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50))
def test_equity_watch_never_fires_without_a_loss(values: list[int]) -> None:
    w = EquityWatch(max_loss=D(1), max_drawdown=D("0.5"))
    w.update(D(0))  # the start
    running_min_ok = True
    for v in sorted(values):  # only rising equity
        running_min_ok = running_min_ok and w.update(D(v)) is None
    assert running_min_ok


def test_order_rate_is_a_sliding_window() -> None:
    r = OrderRate(D(3))
    assert [r.allow(t) for t in (0.0, 0.1, 0.2, 0.3)] == [True, True, True, False]
    assert r.allow(0.99) is False
    assert r.allow(1.0) is True  # the first left the window
