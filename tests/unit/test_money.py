"""Exact money helpers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bybitkit.errors import ValidationError
from bybitkit.money import (
    decimals_of,
    fmt,
    from_ticks,
    is_multiple,
    optional_decimal,
    quantize_to_step,
    round_price,
    to_decimal,
    to_ticks,
)


def test_to_decimal_refuses_floats_and_garbage() -> None:
    assert to_decimal("0.1") == Decimal("0.1")
    assert to_decimal(3) == Decimal(3)
    with pytest.raises(ValidationError, match="not a float"):
        to_decimal(0.1, "price")
    with pytest.raises(ValidationError, match="price: expected a decimal number"):
        to_decimal("abc", "price")
    with pytest.raises(ValidationError, match="finite"):
        to_decimal("NaN")
    with pytest.raises(ValidationError):
        to_decimal(True)
    assert optional_decimal("") is None and optional_decimal(None) is None


def test_fmt_is_plain_text() -> None:
    assert fmt(Decimal("1E+1")) == "10"
    assert fmt(Decimal("0.00100")) == "0.001"
    assert fmt(Decimal("30000")) == "30000"
    assert fmt(Decimal("30000.0")) == "30000"
    assert fmt(Decimal("-0.0")) == "0"
    assert fmt(Decimal("1E-8")) == "0.00000001"


def test_steps_and_ticks() -> None:
    assert quantize_to_step(Decimal("0.0123"), Decimal("0.001")) == Decimal("0.012")
    assert round_price(Decimal("100.05"), Decimal("0.1"), side_is_buy=True) == Decimal("100.0")
    assert round_price(Decimal("100.05"), Decimal("0.1"), side_is_buy=False) == Decimal("100.1")
    assert to_ticks(Decimal("30000.10"), Decimal("0.01")) == 3000010
    assert from_ticks(3000010, Decimal("0.01")) == Decimal("30000.10")
    with pytest.raises(ValidationError, match=r"multiple of 0\.01"):
        to_ticks(Decimal("1.005"), Decimal("0.01"))
    assert is_multiple(Decimal("0.3"), Decimal("0.1"))
    assert decimals_of(Decimal("0.000001")) == 6 and decimals_of(Decimal("1")) == 0


decimals = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=8, allow_nan=False
)
steps = st.sampled_from(
    [Decimal(x) for x in ("0.1", "0.01", "0.001", "0.5", "1", "10", "0.000001")]
)


@given(decimals)
def test_fmt_round_trips_exactly(value: Decimal) -> None:
    text = fmt(value)
    assert "E" not in text and "e" not in text
    assert to_decimal(text) == value


@given(decimals, steps)
def test_quantize_down_is_a_multiple_never_above(value: Decimal, step: Decimal) -> None:
    q = quantize_to_step(abs(value), step)
    assert is_multiple(q, step)
    assert q <= abs(value) < q + step
