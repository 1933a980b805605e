"""Exact money: Decimal at every boundary, integer ticks inside hot structures.

Floats are refused wherever a price, size or amount enters the toolkit: ``0.1 + 0.2`` is not a
price. Strings and Decimals (and ints) are accepted.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

from bybitkit.errors import ValidationError

ZERO = Decimal(0)

Number = Decimal | str | int


def to_decimal(value: object, field: str = "value") -> Decimal:
    """Convert ``value`` to a finite Decimal, exactly. Floats and non-numeric text are refused."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise ValidationError(field, "a decimal number (str, Decimal or int)", value)
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(field, "a decimal number", value) from None
    elif isinstance(value, float):
        raise ValidationError(
            field, "an exact decimal (str or Decimal), not a float; write it as a string", value
        )
    else:
        raise ValidationError(field, "a decimal number (str, Decimal or int)", value)
    if not d.is_finite():
        raise ValidationError(field, "a finite decimal number", value)
    return d


def optional_decimal(value: object, field: str = "value") -> Decimal | None:
    """Like :func:`to_decimal`, but ``None`` and ``""`` mean absent."""
    if value is None or value == "":
        return None
    return to_decimal(value, field)


def fmt(value: Decimal) -> str:
    """Plain decimal text as Bybit expects it: no exponent, no trailing zeros ("0.001", "30000")."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    if step <= 0:
        raise ValidationError("step", "a positive decimal", step)
    return value % step == 0


def quantize_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """Round ``value`` to a multiple of ``step`` (down by default: never send more than asked)."""
    if step <= 0:
        raise ValidationError("step", "a positive decimal", step)
    units = (value / step).to_integral_value(rounding=rounding)
    return units * step


def round_price(value: Decimal, tick: Decimal, side_is_buy: bool | None = None) -> Decimal:
    """Round a price to the tick: buys down, sells up (never worse than asked); nearest if no
    side is given."""
    if side_is_buy is None:
        return quantize_to_step(value, tick, ROUND_HALF_EVEN)
    return quantize_to_step(value, tick, ROUND_DOWN if side_is_buy else ROUND_UP)


def to_ticks(value: Decimal, tick: Decimal) -> int:
    """Exact integer number of ticks in ``value``; refuses a value that is not on the tick grid."""
    q, r = divmod(value, tick)
    if r != 0:
        raise ValidationError("price", f"a multiple of {fmt(tick)}", fmt(value))
    return int(q)


def from_ticks(ticks: int, tick: Decimal) -> Decimal:
    """Decimal value of an integer number of ticks."""
    return ticks * tick


def decimals_of(step: Decimal) -> int:
    """Number of decimal places of a step such as ``Decimal("0.001")`` (3)."""
    exp = step.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)
