"""One retCode table -> typed errors."""

from __future__ import annotations

from bybitkit import errors as e


def test_codes_map_to_classes() -> None:
    assert isinstance(e.error_for_code(10002, "ts"), e.InvalidTimestamp)
    rl = e.error_for_code(10006, "Too many visits!", "/v5/order/create", reset_at_ms=123)
    assert isinstance(rl, e.RateLimited) and rl.reset_at_ms == 123
    assert isinstance(e.error_for_code(110043, "x"), e.NotModified)
    assert isinstance(e.error_for_code(170131, "x"), e.InsufficientBalance)
    assert isinstance(e.error_for_code(110001, "x"), e.OrderNotFound)
    assert isinstance(e.error_for_code(170213, "x"), e.OrderNotFound)
    assert isinstance(e.error_for_code(110072, "x"), e.DuplicateOrderId)
    assert isinstance(e.error_for_code(170193, "x"), e.PriceOutOfBand)
    assert isinstance(e.error_for_code(10003, "x"), e.InvalidApiKey)
    assert isinstance(e.error_for_code(33004, "x"), e.ApiKeyExpired)
    assert isinstance(e.error_for_code(-2015, "x"), e.ApiKeyExpired)
    unknown = e.error_for_code(999999, "odd")
    assert type(unknown) is e.ExchangeError and unknown.ret_code == 999999
    assert all(issubclass(cls, e.ExchangeError) for cls, _ in e.RET_CODES.values())


def test_messages_name_code_and_endpoint() -> None:
    err = e.error_for_code(10004, "error sign!", "/v5/account/info")
    text = str(err)
    assert "10004" in text and "/v5/account/info" in text and "secret" in text


def test_outcome_unknown_carries_the_link_id() -> None:
    err = e.OrderOutcomeUnknown("/v5/order/create", "timed out", "bbk-1")
    assert err.order_link_id == "bbk-1" and "bbk-1" in str(err)
    assert isinstance(err, e.OutcomeUnknown)
    # a network failure is never an exchange "not found"
    assert not isinstance(err, e.ExchangeError)
