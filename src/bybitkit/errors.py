"""One error hierarchy for the whole toolkit.

Every failure a caller can act on has a class here, and every Bybit ``retCode`` we know maps to
one of them through the single table :data:`RET_CODES`. Errors are matched by code, never by the
text of ``retMsg``.

The rule that matters most: a network failure never means "order gone". A create whose outcome
is unknown raises :class:`OrderOutcomeUnknown`, which carries the ``orderLinkId`` so the caller
can resolve it by querying that id; it is never resent under a new id.
"""

from __future__ import annotations

from typing import Any


class BybitkitError(Exception):
    """Base of every error raised by bybitkit."""


class ConfigError(BybitkitError, ValueError):
    """Bad configuration or arguments given to a bybitkit object (not an exchange answer)."""


class ValidationError(BybitkitError, ValueError):
    """Input rejected locally, before anything was sent. Names the field and what was expected."""

    def __init__(self, field: str, expected: str, got: object = None) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        msg = f"{field}: expected {expected}"
        if got is not None:
            msg += f", got {got!r}"
        super().__init__(msg)


class DecodeError(BybitkitError):
    """A message from the exchange could not be decoded into its typed schema."""

    def __init__(self, what: str, detail: str, raw: bytes | str | None = None) -> None:
        self.what = what
        self.detail = detail
        self.raw = raw[:300] if raw is not None else None
        super().__init__(f"cannot decode {what}: {detail}")


class NetworkError(BybitkitError):
    """The transport failed (connection refused, reset, DNS, TLS, ...)."""


class RequestTimeout(NetworkError):
    """No answer arrived in time. Whether the exchange acted on the request is unknown."""


class HttpError(BybitkitError):
    """An HTTP status other than 200 that has no more specific meaning."""

    def __init__(self, status: int, endpoint: str, body: str = "") -> None:
        self.status = status
        self.endpoint = endpoint
        self.body = body[:300]
        super().__init__(f"HTTP {status} from {endpoint}: {self.body}")


class ServiceOverloaded(HttpError):
    """HTTP 429: Bybit's system-level protection. Reads are retried a bounded number of times."""


class IpBanned(BybitkitError):
    """HTTP 403: the IP is banned or rate limited by Bybit. All REST traffic is stopped until
    ``retry_after`` seconds from when it was raised have passed; it is never retried in a loop."""

    def __init__(self, endpoint: str, retry_after: float) -> None:
        self.endpoint = endpoint
        self.retry_after = retry_after
        super().__init__(
            f"HTTP 403 from {endpoint}: IP banned or rate limited by Bybit; "
            f"REST traffic paused for {retry_after:.0f} s"
        )


class OutcomeUnknown(BybitkitError):
    """A state-changing request may or may not have been carried out (timeout, dropped connection,
    HTTP 5xx, or an exchange "server busy" code). Query the exchange to find out; never assume
    the request failed."""

    def __init__(self, endpoint: str, cause: str) -> None:
        self.endpoint = endpoint
        self.cause = cause
        super().__init__(f"outcome of {endpoint} unknown: {cause}")


class OrderOutcomeUnknown(OutcomeUnknown):
    """An order create whose outcome is unknown. Resolve it by querying ``order_link_id``."""

    def __init__(self, endpoint: str, cause: str, order_link_id: str) -> None:
        self.order_link_id = order_link_id
        super().__init__(endpoint, cause)
        self.args = (f"outcome of {endpoint} for orderLinkId={order_link_id} unknown: {cause}",)


class BatchOutcomeUnknown(OutcomeUnknown):
    """A batch create whose outcome is unknown: any of ``order_link_ids`` may exist."""

    def __init__(self, endpoint: str, cause: str, order_link_ids: tuple[str, ...]) -> None:
        self.order_link_ids = order_link_ids
        super().__init__(endpoint, cause)


class ExchangeError(BybitkitError):
    """Bybit answered with a non-zero ``retCode``."""

    def __init__(
        self,
        ret_code: int,
        ret_msg: str,
        endpoint: str = "",
        *,
        ret_ext_info: Any = None,
    ) -> None:
        self.ret_code = ret_code
        self.ret_msg = ret_msg
        self.endpoint = endpoint
        self.ret_ext_info = ret_ext_info
        where = f" from {endpoint}" if endpoint else ""
        hint = describe_code(ret_code)
        hint_txt = f" ({hint})" if hint and hint.lower() != ret_msg.lower() else ""
        super().__init__(f"retCode {ret_code}{where}: {ret_msg}{hint_txt}")


class AuthError(ExchangeError):
    """Authentication or authorisation refused."""


class InvalidApiKey(AuthError):
    """10003: unknown key, or a key used on another environment's host (mainnet/testnet/demo)."""


class InvalidSignature(AuthError):
    """10004: the signature does not match (usually a wrong secret)."""


class PermissionDenied(AuthError):
    """10005: the key lacks the permission this endpoint needs."""


class IpNotAllowed(AuthError):
    """10010: the caller's IP is not in the key's whitelist."""


class ApiKeyExpired(AuthError):
    """33004 (derivatives) / -2015 (spot): the key has expired."""


class InvalidTimestamp(ExchangeError):
    """10002: the request timestamp is outside the receive window (clock drift)."""


class RateLimited(ExchangeError):
    """10006 and friends: too many requests. ``reset_at_ms`` is when the limit resets, if known."""

    def __init__(
        self,
        ret_code: int,
        ret_msg: str,
        endpoint: str = "",
        *,
        ret_ext_info: Any = None,
        reset_at_ms: int | None = None,
    ) -> None:
        super().__init__(ret_code, ret_msg, endpoint, ret_ext_info=ret_ext_info)
        self.reset_at_ms = reset_at_ms


class ServerBusy(ExchangeError):
    """10000 / 10016 / 10019 / 110079 and similar: the exchange could not process it now."""


class InvalidRequest(ExchangeError):
    """10001 and other parameter errors."""


class InsufficientBalance(ExchangeError):
    """Not enough balance or margin for the order."""


class OrderNotFound(ExchangeError):
    """The order does not exist (or is no longer known to the exchange)."""


class OrderNotActive(ExchangeError):
    """The order exists but is already filled or cancelled."""


class DuplicateOrderId(ExchangeError):
    """The ``orderLinkId`` was used before."""


class InvalidOrder(ExchangeError):
    """The exchange rejected the order's parameters (price, quantity, notional, type...)."""


class PriceOutOfBand(InvalidOrder):
    """The order price is outside the allowed price band."""


class UnknownSymbol(InvalidRequest):
    """The symbol does not exist or is not trading."""


class PositionError(ExchangeError):
    """Position, position-mode or leverage change refused."""


class NotModified(ExchangeError):
    """The requested setting already had that value (e.g. 110043 leverage not modified).
    Callers that want idempotent setters treat it as success."""


# The one retCode table: code -> (class, short description). Descriptions follow REFERENCE §5.
RET_CODES: dict[int, tuple[type[ExchangeError], str]] = {
    -1: (InvalidTimestamp, "request expired"),
    429: (ServerBusy, "trading service overloaded, retry"),
    10000: (ServerBusy, "server timeout"),
    10001: (InvalidRequest, "request parameter error"),
    10002: (InvalidTimestamp, "timestamp outside the receive window; check the clock"),
    10003: (InvalidApiKey, "API key invalid, or a key of another environment"),
    10004: (InvalidSignature, "signature error; check the secret"),
    10005: (PermissionDenied, "permission denied for this key"),
    10006: (RateLimited, "too many visits (UID rate limit)"),
    10007: (AuthError, "user authentication failed"),
    10008: (AuthError, "account banned or wrong account mode"),
    10009: (AuthError, "region restricted"),
    10010: (IpNotAllowed, "IP not whitelisted for this key"),
    10014: (InvalidRequest, "invalid duplicate request"),
    10016: (ServerBusy, "server error or service restarting"),
    10017: (InvalidRequest, "route not found"),
    10019: (ServerBusy, "trade service restarting"),
    10024: (AuthError, "compliance rules triggered"),
    10027: (AuthError, "transactions banned"),
    10028: (AuthError, "only for unified trading accounts"),
    10029: (UnknownSymbol, "symbol not in whitelist"),
    10403: (RateLimited, "IP above the trade WebSocket limit"),
    10404: (InvalidRequest, "unknown op or unsupported category"),
    10429: (RateLimited, "system frequency protection"),
    20003: (RateLimited, "too frequent on this session"),
    20006: (InvalidRequest, "duplicate reqId"),
    -2015: (ApiKeyExpired, "API key expired (spot)"),
    33004: (ApiKeyExpired, "API key expired"),
    100028: (AuthError, "not accessible by unified accounts"),
    # Derivatives (110xxx)
    110001: (OrderNotFound, "order does not exist"),
    110003: (PriceOutOfBand, "price out of allowed range"),
    110004: (InsufficientBalance, "wallet balance insufficient"),
    110005: (PositionError, "position status error"),
    110006: (InsufficientBalance, "assets can't cover position margin"),
    110007: (InsufficientBalance, "available balance insufficient"),
    110008: (OrderNotActive, "order already completed or cancelled"),
    110009: (InvalidOrder, "too many stop orders"),
    110010: (OrderNotActive, "order has been cancelled"),
    110012: (InsufficientBalance, "insufficient available balance"),
    110013: (PositionError, "leverage not allowed by risk limit"),
    110015: (PositionError, "position is in cross margin mode"),
    110017: (InvalidOrder, "quantity truncated to zero"),
    110019: (InvalidRequest, "orderId illegal"),
    110020: (InvalidOrder, "more than 500 active orders"),
    110021: (InvalidOrder, "open-interest position limit"),
    110022: (InvalidOrder, "quantity restricted"),
    110023: (InvalidOrder, "reduce-only for this contract"),
    110024: (PositionError, "has a position, can't switch position mode"),
    110025: (NotModified, "position mode not modified"),
    110026: (NotModified, "margin mode not modified"),
    110028: (PositionError, "has open orders, can't switch position mode"),
    110029: (PositionError, "hedge mode not supported for this symbol"),
    110032: (InvalidOrder, "order illegal"),
    110036: (PositionError, "leverage change blocked by cross margin"),
    110038: (PositionError, "leverage change blocked by portfolio margin"),
    110043: (NotModified, "leverage not modified"),
    110044: (InsufficientBalance, "available margin insufficient"),
    110045: (InsufficientBalance, "wallet balance insufficient"),
    110057: (InvalidOrder, "conditional/limit order contains TP/SL params"),
    110058: (InvalidOrder, "TP/SL size too large for the remaining position"),
    110061: (InvalidOrder, "more than 20 partial TP/SLs"),
    110072: (DuplicateOrderId, "duplicate orderLinkId"),
    110073: (PositionError, "set margin mode failed"),
    110074: (InvalidOrder, "contract not live"),
    110079: (ServerBusy, "order is being processed, retry later"),
    110092: (InvalidOrder, "expected Rising but triggerPrice <= current price"),
    110093: (InvalidOrder, "expected Falling but triggerPrice >= current price"),
    110094: (InvalidOrder, "order notional below the lower limit"),
    110120: (PriceOutOfBand, "price below the price limit"),
    110121: (PriceOutOfBand, "price above the price limit"),
    34040: (NotModified, "TP/SL not modified"),
    3400045: (PositionError, "set margin mode failed"),
    3200403: (InvalidOrder, "isolated margin can not create order"),
    # Spot (170xxx)
    170005: (RateLimited, "too many new orders"),
    170115: (InvalidOrder, "invalid timeInForce"),
    170116: (InvalidOrder, "invalid orderType"),
    170117: (InvalidOrder, "invalid side"),
    170121: (UnknownSymbol, "invalid symbol"),
    170124: (InvalidOrder, "order amount too large"),
    170130: (InvalidRequest, "invalid parameter value"),
    170131: (InsufficientBalance, "balance insufficient"),
    170132: (InvalidOrder, "price too high"),
    170133: (InvalidOrder, "price below minimum"),
    170134: (InvalidOrder, "price has too many decimals"),
    170136: (InvalidOrder, "quantity below minimum"),
    170137: (InvalidOrder, "quantity has too many decimals"),
    170139: (OrderNotActive, "order already filled"),
    170140: (InvalidOrder, "order value below the lower limit"),
    170141: (DuplicateOrderId, "duplicate clientOrderId"),
    170142: (OrderNotActive, "order already cancelled"),
    170143: (OrderNotFound, "order not found on the book"),
    170148: (InvalidOrder, "market order amount has too many decimals"),
    170190: (OrderNotActive, "cancel already finished"),
    170193: (PriceOutOfBand, "buy price above the price limit"),
    170194: (PriceOutOfBand, "sell price below the price limit"),
    170213: (OrderNotFound, "order does not exist"),
    170217: (InvalidOrder, "only LIMIT-MAKER orders allowed"),
    170218: (InvalidOrder, "LIMIT-MAKER order rejected (price would take)"),
    170310: (ServerBusy, "amend timed out"),
    170311: (InvalidOrder, "amend failed"),
    170312: (InvalidOrder, "amend not supported"),
    170313: (InvalidOrder, "amended quantity below the filled quantity"),
    170371: (PriceOutOfBand, "price below the price limitation"),
    170372: (PriceOutOfBand, "price above the price limitation"),
    170810: (InvalidOrder, "too many conditional, TP/SL and active orders"),
    30208: (PriceOutOfBand, "price above the maximum buying price"),
    30209: (PriceOutOfBand, "price below the minimum selling price"),
}

#: Codes meaning "the exchange may or may not have acted": a create answered with one of these
#: has an unknown outcome.
OUTCOME_UNKNOWN_CODES = frozenset({10000, 10016, 110079})


def describe_code(ret_code: int) -> str:
    """Short human description of a retCode, or "" when unknown."""
    entry = RET_CODES.get(ret_code)
    return entry[1] if entry else ""


def error_for_code(
    ret_code: int,
    ret_msg: str,
    endpoint: str = "",
    *,
    ret_ext_info: Any = None,
    reset_at_ms: int | None = None,
) -> ExchangeError:
    """Build the typed error for a non-zero retCode (``ExchangeError`` when the code is unknown)."""
    cls = RET_CODES.get(ret_code, (ExchangeError, ""))[0]
    if issubclass(cls, RateLimited):
        return cls(ret_code, ret_msg, endpoint, ret_ext_info=ret_ext_info, reset_at_ms=reset_at_ms)
    return cls(ret_code, ret_msg, endpoint, ret_ext_info=ret_ext_info)
