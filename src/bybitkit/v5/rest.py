"""Signed REST client for Bybit V5 (aiohttp, one session).

What it guarantees:

* Signs exactly the bytes it sends: the query string is built once, signed and sent as is
  (never re-encoded by the HTTP library); POST bodies are compact JSON bytes, signed and sent.
* Every answer is decoded once into the endpoint's typed result struct; a non-zero ``retCode``
  raises the typed error of :data:`bybitkit.errors.RET_CODES`.
* ``10002`` (timestamp outside the window): re-sync the clock against ``/v5/market/time`` and
  retry once with a fresh timestamp and signature (the request was refused before processing).
* ``10006`` (rate limit): block that endpoint until ``X-Bapi-Limit-Reset-Timestamp`` (or a default
  back-off when the header is missing); reads wait and retry, writes raise :class:`RateLimited`.
* HTTP 403: an IP ban. All REST traffic stops for ``ban_seconds`` (default 10 min) and every call
  raises :class:`IpBanned` at once; nothing is retried in a loop.
* HTTP 429 and 5xx, timeouts and dropped connections: reads are retried a bounded number of
  times. Writes are never retried. An order create whose outcome is unknown (timeout, dropped
  connection, 5xx, retCode 10000/10016/110079) raises :class:`OrderOutcomeUnknown` carrying its
  ``orderLinkId`` (one is generated if the caller gave none), so it can be resolved by query.
* A client-side :class:`RateLimiter` spaces requests to the V5 limits; cancels are never starved.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
import yarl

from bybitkit.errors import (
    OUTCOME_UNKNOWN_CODES,
    BatchOutcomeUnknown,
    ConfigError,
    DecodeError,
    HttpError,
    IpBanned,
    NetworkError,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    RateLimited,
    RequestTimeout,
    ServiceOverloaded,
    ValidationError,
    error_for_code,
)
from bybitkit.money import fmt
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import DEFAULT_RECV_WINDOW, Credentials, make_signer
from bybitkit.v5.clock import ServerClock, wall_ms
from bybitkit.v5.codec import decode_normalized, decoder, encode, normalize
from bybitkit.v5.environments import Environment, get_environment
from bybitkit.v5.ratelimit import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Mapping[str, Any]

CREATE_PATH = "/v5/order/create"
BATCH_CREATE_PATH = "/v5/order/create-batch"
MAX_LINK_ID_LEN = 36
_QUERY_SAFE = "%-_.~:,/*"

_envelope_decoder = decoder(s.Envelope)
_batch_ext_decoder = decoder(s.BatchExtInfo)
_result_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _result_decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    dec = _result_decoders.get(type_)
    if dec is None:
        dec = _result_decoders[type_] = decoder(type_)
    return dec


def _wire_value(value: Any) -> Any:
    """Parameters as Bybit wants them: Decimals as plain decimal text, nested lists/dicts too."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, float):
        raise ValidationError("parameter", "an exact decimal (str or Decimal), not a float", value)
    if isinstance(value, Mapping):
        return {k: _wire_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_wire_value(v) for v in value]
    return value


def build_query(params: Params | None) -> str:
    """The query string exactly as it is signed and sent: the caller's order, ``None`` skipped,
    booleans as ``true``/``false``, Decimals as plain text. Already-encoded cursor tokens pass
    through unchanged."""
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(_wire_value(value))
        parts.append(f"{key}={quote(text, safe=_QUERY_SAFE)}")
    return "&".join(parts)


def build_body(params: Params | None) -> bytes:
    """Compact JSON body (``None`` values dropped), signed and sent byte for byte."""
    return encode(_wire_value(params or {}))


def new_order_link_id(prefix: str = "bbk") -> str:
    """A fresh client order id (<= 36 chars of ``[0-9A-Za-z_-]``)."""
    return f"{prefix}-{uuid.uuid4().hex}"[:MAX_LINK_ID_LEN]


@dataclass(frozen=True, slots=True)
class BatchItem(Generic[T]):
    """One entry of a batch answer: the item result and its own code/message."""

    result: T
    code: int
    msg: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class _Paged(Protocol):
    nextPageCursor: str | None


class RestClient:
    """One signed REST session against one environment and (optionally) one API key."""

    def __init__(
        self,
        environment: Environment | str = "mainnet",
        credentials: Credentials | None = None,
        *,
        recv_window: int = DEFAULT_RECV_WINDOW,
        broker_id: str | None = None,
        timeout: float = 10.0,
        rate_limit_tier: str = "default",
        rate_limiter: RateLimiter | None = None,
        ban_seconds: float = 600.0,
        max_read_retries: int = 3,
        rate_limit_backoff: float = 1.0,
        clock: ServerClock | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not 0 < recv_window <= 60_000:
            raise ConfigError(f"recv_window: expected 1..60000 ms, got {recv_window}")
        if timeout <= 0:
            raise ConfigError(f"timeout: expected a positive number of seconds, got {timeout}")
        self.environment = get_environment(environment)
        self.credentials = credentials
        self._signer = make_signer(credentials) if credentials is not None else None
        self.recv_window = recv_window
        self.broker_id = broker_id
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.limiter = rate_limiter or RateLimiter(rate_limit_tier)
        self.ban_seconds = ban_seconds
        self.max_read_retries = max_read_retries
        self.rate_limit_backoff = rate_limit_backoff
        self.clock = clock or ServerClock()
        self._session = session
        self._own_session = session is None
        self._banned_until = 0.0
        self._base = self.environment.rest_url

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                connector=aiohttp.TCPConnector(limit=32, enable_cleanup_closed=True),
            )
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        self._session = None

    @property
    def banned_for(self) -> float:
        """Seconds left of an IP ban (0 when not banned)."""
        return max(0.0, self._banned_until - time.monotonic())

    # -- clock ----------------------------------------------------------------------------------

    async def sync_clock(self) -> int:
        """Measure the server clock offset against ``/v5/market/time``; returns the offset (ms)."""
        sent = wall_ms()
        result = await self.call("GET", "/v5/market/time", None, s.ServerTime, auth=False)
        received = wall_ms()
        server_ms = (
            result.timeNano // 1_000_000
            if result.timeNano is not None
            else int(result.timeSecond) * 1000
        )
        self.clock.update(server_ms, sent, received)
        log.info("clock synced offset_ms=%d rtt_ms=%s", self.clock.offset_ms, self.clock.rtt_ms)
        return self.clock.offset_ms

    # -- the request engine ---------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        params: Params | None,
        result_type: type[T],
        *,
        auth: bool = True,
        weight: int = 1,
    ) -> T:
        """Send one request and return its decoded ``result``."""
        result, _ = await self._call(method, path, params, result_type, auth=auth, weight=weight)
        return result

    async def _call(
        self,
        method: str,
        path: str,
        params: Params | None,
        result_type: type[T],
        *,
        auth: bool,
        weight: int = 1,
    ) -> tuple[T, s.Envelope]:
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ConfigError(f"method: expected GET or POST, got {method!r}")
        if auth and self._signer is None:
            raise ConfigError(f"{path} needs credentials; this client has none")
        is_read = method == "GET"
        category = params.get("category") if params else None
        link_ids = _link_ids(path, params)
        if is_read:
            query = build_query(params)
            body = b""
            payload: bytes | str = query
        else:
            query = ""
            body = build_body(params)
            payload = body
        url = yarl.URL(self._base + path + ("?" + query if query else ""), encoded=True)

        timestamp_retried = False
        attempt = 0
        while True:
            attempt += 1
            if self._banned_until and time.monotonic() < self._banned_until:
                raise IpBanned(path, self.banned_for)
            await self.limiter.acquire(path, category, weight)
            headers = self._headers(payload, auth, has_body=not is_read)
            try:
                status, raw, resp_headers = await self._send(method, url, body, headers)
            except TimeoutError:
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                self._unknown_or_raise(path, "request timed out", link_ids)
                raise RequestTimeout(f"{method} {path}: timed out") from None
            except aiohttp.ClientConnectorError as exc:
                # TCP connect failed: the request never left, so nothing can have happened.
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                raise NetworkError(f"{method} {path}: cannot connect: {exc}") from None
            except (aiohttp.ClientError, OSError) as exc:
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                self._unknown_or_raise(path, f"connection failed: {exc}", link_ids)
                raise NetworkError(f"{method} {path}: {exc}") from None

            if status == 403:
                self._banned_until = time.monotonic() + self.ban_seconds
                log.error("ip banned path=%s pause_s=%.0f", path, self.ban_seconds)
                raise IpBanned(path, self.ban_seconds)
            if status == 429:
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                raise ServiceOverloaded(status, path, raw.decode(errors="replace"))
            if status >= 500:
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                self._unknown_or_raise(path, f"HTTP {status}", link_ids)
                raise HttpError(status, path, raw.decode(errors="replace"))
            if status != 200:
                raise HttpError(status, path, raw.decode(errors="replace"))

            try:
                norm = normalize(raw)
                env = decode_normalized(_envelope_decoder, norm, f"{path} envelope")
            except DecodeError:
                if not is_read:
                    self._unknown_or_raise(path, "undecodable answer", link_ids)
                raise
            self._observe_limits(path, category, resp_headers)
            code = env.retCode
            if code == 0:
                raw_result: bytes | msgspec.Raw = env.result
                if len(raw_result) == 4 and bytes(raw_result) == b"null":
                    raw_result = b"{}"  # acknowledgement-only answers may carry a null result
                result = decode_normalized(_result_decoder(result_type), raw_result, path)
                return result, env

            msg = env.retMsg or ""
            if code == 10002 and not timestamp_retried:
                timestamp_retried = True
                log.warning("timestamp rejected path=%s; re-syncing clock", path)
                await self.sync_clock()
                continue
            if code == 10006:
                reset_ms = _int_header(resp_headers, "X-Bapi-Limit-Reset-Timestamp")
                wait = self._rate_limit_wait(reset_ms)
                self.limiter.block(path, category, time.monotonic() + wait)
                log.warning("rate limited path=%s wait_s=%.3f", path, wait)
                if is_read and attempt <= self.max_read_retries:
                    continue  # the limiter holds the next attempt until the reset
                raise error_for_code(
                    code, msg, path, ret_ext_info=env.retExtInfo, reset_at_ms=reset_ms
                )
            if code in OUTCOME_UNKNOWN_CODES:
                if is_read and attempt <= self.max_read_retries:
                    await self._backoff(attempt)
                    continue
                self._unknown_or_raise(path, f"retCode {code} {msg}", link_ids)
            raise error_for_code(code, msg, path, ret_ext_info=env.retExtInfo)

    def _headers(self, payload: bytes | str, auth: bool, *, has_body: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        if auth:
            assert self._signer is not None
            headers = self._signer.headers(self.clock.now_ms(), payload, self.recv_window)
        if has_body:
            headers["Content-Type"] = "application/json"
        if self.broker_id:
            headers["Referer"] = self.broker_id
        return headers

    async def _send(
        self, method: str, url: yarl.URL, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, Mapping[str, str]]:
        session = self._http()
        async with session.request(
            method, url, data=body if method == "POST" else None, headers=headers
        ) as resp:
            raw = await resp.read()
            log.debug("rest %s %s status=%d bytes=%d", method, url.path, resp.status, len(raw))
            return resp.status, raw, resp.headers

    def _unknown_or_raise(
        self,
        path: str,
        cause: str,
        link_ids: tuple[str, ...],
    ) -> None:
        """Raise the right "outcome unknown" error for a state-changing request, if any."""
        if path == CREATE_PATH:
            raise OrderOutcomeUnknown(path, cause, link_ids[0])
        if path == BATCH_CREATE_PATH:
            raise BatchOutcomeUnknown(path, cause, link_ids)
        if path.startswith(("/v5/order/", "/v5/position/", "/v5/account/set")):
            raise OutcomeUnknown(path, cause)

    def _rate_limit_wait(self, reset_ms: int | None) -> float:
        if reset_ms is not None:
            wait = (reset_ms - self.clock.now_ms()) / 1000.0
            if 0 < wait <= 60:
                return wait
        return self.rate_limit_backoff

    def _observe_limits(self, path: str, category: Any, headers: Mapping[str, str]) -> None:
        limit = _int_header(headers, "X-Bapi-Limit")
        if limit is None:
            return
        remaining = _int_header(headers, "X-Bapi-Limit-Status")
        reset_ms = _int_header(headers, "X-Bapi-Limit-Reset-Timestamp")
        reset_in = (reset_ms - self.clock.now_ms()) / 1000.0 if reset_ms is not None else None
        self.limiter.observe(path, category, limit, remaining, reset_in)

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))

    # -- pagination -----------------------------------------------------------------------------

    async def paginate(
        self,
        fetch: Callable[..., Awaitable[Any]],
        /,
        *,
        max_pages: int | None = None,
        **params: Any,
    ) -> AsyncIterator[Any]:
        """Yield every item of a cursor-paged endpoint: ``async for o in rest.paginate(
        rest.order_history, category="spot", limit=50)``. Stops at an empty cursor, or if the
        exchange hands back a cursor it already gave (never loops)."""
        cursor: str | None = params.pop("cursor", None)
        seen: set[str] = set()
        pages = 0
        while True:
            page = await fetch(**params, cursor=cursor)
            pages += 1
            for item in page.list:
                yield item
            cursor = page.nextPageCursor
            if not cursor or cursor in seen or (max_pages is not None and pages >= max_pages):
                return
            seen.add(cursor)

    # -- market ---------------------------------------------------------------------------------

    async def server_time(self) -> s.ServerTime:
        return await self.call("GET", "/v5/market/time", None, s.ServerTime, auth=False)

    async def instruments_info(
        self, category: str, **params: Any
    ) -> s.LinearInstrumentsResult | s.SpotInstrumentsResult | s.OptionInstrumentsResult:
        rtype = _by_category(s.INSTRUMENTS_BY_CATEGORY, category)
        return await self.call(
            "GET",
            "/v5/market/instruments-info",
            {"category": category, **params},
            rtype,
            auth=False,
        )

    async def orderbook(
        self, category: str, symbol: str, limit: int | None = None
    ) -> s.OrderbookResult:
        return await self.call(
            "GET",
            "/v5/market/orderbook",
            {"category": category, "symbol": symbol, "limit": limit},
            s.OrderbookResult,
            auth=False,
        )

    async def tickers(self, category: str, **params: Any) -> Any:
        rtype = _by_category(s.TICKERS_BY_CATEGORY, category)
        return await self.call(
            "GET", "/v5/market/tickers", {"category": category, **params}, rtype, auth=False
        )

    async def kline(
        self,
        category: str,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> s.KlineResult:
        params = {
            "category": category,
            "symbol": symbol,
            "interval": interval,
            "start": start,
            "end": end,
            "limit": limit,
        }
        return await self.call("GET", "/v5/market/kline", params, s.KlineResult, auth=False)

    async def price_kline(
        self,
        kind: str,
        category: str,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> s.PriceKlineResult:
        """Mark (``kind="mark"``), index (``"index"``) or premium-index (``"premium-index"``)
        price klines: five columns, no volume."""
        if kind not in ("mark", "index", "premium-index"):
            raise ValidationError("kind", "one of mark, index, premium-index", kind)
        params = {
            "category": category,
            "symbol": symbol,
            "interval": interval,
            "start": start,
            "end": end,
            "limit": limit,
        }
        return await self.call(
            "GET", f"/v5/market/{kind}-price-kline", params, s.PriceKlineResult, auth=False
        )

    async def recent_trades(
        self, category: str, symbol: str, limit: int | None = None
    ) -> s.RecentTradesResult:
        params = {"category": category, "symbol": symbol, "limit": limit}
        return await self.call(
            "GET", "/v5/market/recent-trade", params, s.RecentTradesResult, auth=False
        )

    async def funding_history(
        self, category: str, symbol: str, **params: Any
    ) -> s.FundingHistoryResult:
        return await self.call(
            "GET",
            "/v5/market/funding/history",
            {"category": category, "symbol": symbol, **params},
            s.FundingHistoryResult,
            auth=False,
        )

    async def price_limit(self, category: str, symbol: str) -> s.PriceLimitResult:
        return await self.call(
            "GET",
            "/v5/market/price-limit",
            {"category": category, "symbol": symbol},
            s.PriceLimitResult,
            auth=False,
        )

    # -- trade ----------------------------------------------------------------------------------

    async def place_order(self, **params: Any) -> s.OrderIdResult:
        """``/v5/order/create`` with Bybit's parameter names. An ``orderLinkId`` is generated
        when absent, so that an unknown outcome can always be resolved by querying it."""
        _require(params, "category", "symbol", "side", "orderType", "qty")
        if not params.get("orderLinkId"):
            params["orderLinkId"] = new_order_link_id()
        return await self.call("POST", CREATE_PATH, params, s.OrderIdResult)

    async def amend_order(self, **params: Any) -> s.OrderIdResult:
        _require(params, "category", "symbol")
        _require_one(params, "orderId", "orderLinkId")
        return await self.call("POST", "/v5/order/amend", params, s.OrderIdResult)

    async def cancel_order(self, **params: Any) -> s.OrderIdResult:
        _require(params, "category", "symbol")
        _require_one(params, "orderId", "orderLinkId")
        return await self.call("POST", "/v5/order/cancel", params, s.OrderIdResult)

    async def cancel_all(self, **params: Any) -> s.CancelAllResult:
        _require(params, "category")
        return await self.call("POST", "/v5/order/cancel-all", params, s.CancelAllResult)

    async def place_batch(
        self, category: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[BatchItem[s.BatchOrderItem]]:
        """``/v5/order/create-batch`` (spot <= 10 items, others <= 20); one result per order."""
        items = []
        for order in orders:
            item = dict(order)
            if not item.get("orderLinkId"):
                item["orderLinkId"] = new_order_link_id()
            items.append(item)
        return await self._batch(BATCH_CREATE_PATH, category, items, s.BatchCreateResult)

    async def amend_batch(
        self, category: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[BatchItem[s.BatchOrderItem]]:
        return await self._batch("/v5/order/amend-batch", category, orders, s.BatchAmendResult)

    async def cancel_batch(
        self, category: str, orders: Sequence[Mapping[str, Any]]
    ) -> list[BatchItem[s.BatchOrderItem]]:
        return await self._batch("/v5/order/cancel-batch", category, orders, s.BatchCancelResult)

    async def _batch(
        self,
        path: str,
        category: str,
        orders: Sequence[Mapping[str, Any]],
        result_type: type[Any],
    ) -> list[BatchItem[Any]]:
        limit = 10 if category == "spot" else 20
        if not orders:
            raise ValidationError("request", "at least one order")
        if len(orders) > limit:
            raise ValidationError("request", f"at most {limit} orders for {category}", len(orders))
        result, env = await self._call(
            "POST",
            path,
            {"category": category, "request": list(orders)},
            result_type,
            auth=True,
            weight=len(orders),
        )
        ext = decode_normalized(_batch_ext_decoder, env.retExtInfo, f"{path} retExtInfo")
        statuses = ext.list or []
        out = []
        for i, item in enumerate(result.list):
            st = statuses[i] if i < len(statuses) else None
            out.append(BatchItem(item, st.code if st else 0, (st.msg or "") if st else ""))
        return out

    async def open_orders(self, **params: Any) -> s.OrderListResult:
        """``/v5/order/realtime``: open orders (``openOnly=1`` for recently closed ones)."""
        _require(params, "category")
        return await self.call("GET", "/v5/order/realtime", params, s.OrderListResult)

    async def order_history(self, **params: Any) -> s.OrderListResult:
        _require(params, "category")
        return await self.call("GET", "/v5/order/history", params, s.OrderListResult)

    async def executions(self, **params: Any) -> s.ExecutionListResult:
        _require(params, "category")
        return await self.call("GET", "/v5/execution/list", params, s.ExecutionListResult)

    async def set_dcp(self, product: str, time_window: int) -> s.DisconnectedCancelAllResult:
        """Set the disconnect cancel-all window of ``product`` (``SPOT``, ``DERIVATIVES`` or
        ``OPTIONS``; REFERENCE §8.12): ``time_window`` whole seconds in [3, 300]. The product is
        explicit because Bybit's default (``OPTIONS``) is rarely what a caller means. DCP itself
        is armed by subscribing ``dcp.*`` on the private stream and must be enabled for the
        account by Bybit; see :meth:`dcp_info`."""
        if product not in ("SPOT", "DERIVATIVES", "OPTIONS"):
            raise ValidationError("product", "one of SPOT, DERIVATIVES, OPTIONS", product)
        if (
            not isinstance(time_window, int)
            or isinstance(time_window, bool)
            or not 3 <= time_window <= 300
        ):
            raise ValidationError("timeWindow", "an integer of 3..300 seconds", time_window)
        return await self.call(
            "POST",
            "/v5/order/disconnected-cancel-all",
            {"product": product, "timeWindow": time_window},
            s.DisconnectedCancelAllResult,
        )

    async def disconnected_cancel_all(self, time_window: int, product: str) -> s.EmptyResult:
        """The same as :meth:`set_dcp` (arguments in the other order)."""
        return await self.set_dcp(product, time_window)

    # -- position -------------------------------------------------------------------------------

    async def positions(self, **params: Any) -> s.PositionListResult:
        _require(params, "category")
        return await self.call("GET", "/v5/position/list", params, s.PositionListResult)

    async def set_leverage(
        self, category: str, symbol: str, buy_leverage: Any, sell_leverage: Any
    ) -> s.EmptyResult:
        params = {
            "category": category,
            "symbol": symbol,
            "buyLeverage": buy_leverage,
            "sellLeverage": sell_leverage,
        }
        return await self.call("POST", "/v5/position/set-leverage", params, s.EmptyResult)

    async def switch_position_mode(self, **params: Any) -> s.EmptyResult:
        _require(params, "category", "mode")
        return await self.call("POST", "/v5/position/switch-mode", params, s.EmptyResult)

    async def trading_stop(self, **params: Any) -> s.EmptyResult:
        _require(params, "category", "symbol", "tpslMode", "positionIdx")
        return await self.call("POST", "/v5/position/trading-stop", params, s.EmptyResult)

    async def closed_pnl(self, **params: Any) -> s.ClosedPnlResult:
        _require(params, "category")
        return await self.call("GET", "/v5/position/closed-pnl", params, s.ClosedPnlResult)

    async def position_symbol_info(self, **params: Any) -> s.PositionSymbolInfoResult:
        _require(params, "category")
        return await self.call(
            "GET", "/v5/position/symbol-info", params, s.PositionSymbolInfoResult
        )

    # -- account --------------------------------------------------------------------------------

    async def wallet_balance(
        self, account_type: str = "UNIFIED", coin: str | None = None
    ) -> s.WalletBalanceResult:
        params = {"accountType": account_type, "coin": coin}
        return await self.call("GET", "/v5/account/wallet-balance", params, s.WalletBalanceResult)

    async def fee_rate(self, category: str, **params: Any) -> s.FeeRateResult:
        return await self.call(
            "GET", "/v5/account/fee-rate", {"category": category, **params}, s.FeeRateResult
        )

    async def account_info(self) -> s.AccountInfo:
        return await self.call("GET", "/v5/account/info", None, s.AccountInfo)

    async def transaction_log(self, **params: Any) -> s.TransactionLogResult:
        return await self.call("GET", "/v5/account/transaction-log", params, s.TransactionLogResult)

    async def set_margin_mode(self, mode: str) -> s.SetMarginModeResult:
        return await self.call(
            "POST",
            "/v5/account/set-margin-mode",
            {"setMarginMode": mode},
            s.SetMarginModeResult,
        )

    async def user_setting_config(self) -> s.UserSettingConfig:
        return await self.call("GET", "/v5/account/user-setting-config", None, s.UserSettingConfig)

    async def set_limit_px_action(self, category: str, modify_enable: bool) -> s.EmptyResult:
        params = {"category": category, "modifyEnable": modify_enable}
        return await self.call("POST", "/v5/account/set-limit-px-action", params, s.EmptyResult)

    async def dcp_info(self) -> s.DcpInfoResult:
        """The products whose disconnect cancel-all is enabled, with their windows (an account
        without DCP gets an empty list; REFERENCE §8.12)."""
        return await self.call("GET", "/v5/account/query-dcp-info", None, s.DcpInfoResult)

    async def query_dcp_info(self) -> s.DcpInfoResult:
        """The same as :meth:`dcp_info`."""
        return await self.dcp_info()

    async def demo_apply_money(
        self, amounts: Mapping[str, Any], *, reduce: bool = False
    ) -> s.EmptyResult:
        params = {
            "adjustType": 1 if reduce else 0,
            "utaDemoApplyMoney": [{"coin": c, "amountStr": a} for c, a in amounts.items()],
        }
        return await self.call("POST", "/v5/account/demo-apply-money", params, s.EmptyResult)

    # -- user -----------------------------------------------------------------------------------

    async def query_api(self) -> s.ApiKeyInfo:
        return await self.call("GET", "/v5/user/query-api", None, s.ApiKeyInfo)


def _require(params: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise ValidationError(name, "a value (required by Bybit)")


def _require_one(params: Mapping[str, Any], *names: str) -> None:
    if not any(params.get(n) for n in names):
        raise ValidationError(" or ".join(names), "one of them")


def _by_category(table: Mapping[str, type[T]], category: str) -> type[T]:
    rtype = table.get(category)
    if rtype is None:
        raise ValidationError("category", f"one of {', '.join(table)}", category)
    return rtype


def _link_ids(path: str, params: Params | None) -> tuple[str, ...]:
    if not params:
        return ()
    if path == CREATE_PATH:
        return (str(params.get("orderLinkId", "")),)
    if path == BATCH_CREATE_PATH:
        return tuple(str(o.get("orderLinkId", "")) for o in params.get("request", ()))
    return ()


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


__all__ = [
    "BatchItem",
    "RateLimited",
    "RestClient",
    "build_body",
    "build_query",
    "new_order_link_id",
]
