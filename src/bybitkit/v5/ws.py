"""One Bybit V5 WebSocket session that stays up: connect, auth, subscribe, ping, reconnect.

:class:`WsSession` owns one supervisor task. It connects, authenticates private and trade
streams, (re)subscribes every wanted topic, sends an application ``ping`` every 20 s and drops
the socket when no ``pong`` comes back in time, and reconnects with exponential back-off and
jitter. After a reconnect the auth and every subscription are done again: subscriptions are per
connection on Bybit, and forgetting them is how books silently freeze.

Every frame is decoded once, by topic, into its typed schema and handed to ``on_message``.
Data frames are delivered as soon as they arrive, also before the subscribe ack (Bybit may send
the first snapshot before the ack). Connection changes go to ``on_state``.

:class:`TradeWsClient` speaks the order-entry API on ``/v5/trade`` on top of a session: requests
matched to answers by ``reqId``; an order create that gets no answer raises
:class:`OrderOutcomeUnknown` with its ``orderLinkId``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import aiohttp
import msgspec

from bybitkit.errors import (
    OUTCOME_UNKNOWN_CODES,
    AuthError,
    BatchOutcomeUnknown,
    BybitkitError,
    ConfigError,
    DecodeError,
    ExchangeError,
    NetworkError,
    OrderOutcomeUnknown,
    OutcomeUnknown,
    ValidationError,
    error_for_code,
)
from bybitkit.v5 import schemas as s
from bybitkit.v5.auth import (
    DEFAULT_RECV_WINDOW,
    Credentials,
    HmacSigner,
    RsaSigner,
    make_signer,
    ws_auth_args,
)
from bybitkit.v5.clock import ServerClock
from bybitkit.v5.codec import decode_normalized, decoder, encode
from bybitkit.v5.environments import Environment, Stream, get_environment
from bybitkit.v5.rest import _wire_value, new_order_link_id

log = logging.getLogger(__name__)
T = TypeVar("T")


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"  # socket up, authenticated if private, subscriptions sent
    DISCONNECTED = "disconnected"  # dropped; a reconnect is scheduled
    CLOSED = "closed"  # closed by the owner
    FAILED = "failed"  # gave up (e.g. the key was refused); see ``WsSession.error``


class SubscriptionError(ExchangeError):
    """The server refused a subscription."""


class RawMessage(msgspec.Struct, gc=False):
    """A data frame whose topic has no schema (delivered undecoded rather than dropped)."""

    topic: str
    raw: str | bytes


_TOPIC_KEY = '"topic":"'
_TOPIC_LEN = len(_TOPIC_KEY)
_join_null = ":null".join
_control_decoder = decoder(s.WsControl)
_trade_decoder = decoder(s.TradeWsResponse)
_message_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    family: decoder(t) for family, t in s.MESSAGE_TYPES.items()
}

StateCallback = Callable[[ConnectionState], None]
MessageCallback = Callable[[Any], None]


def topic_of(raw: str) -> str | None:
    """The ``topic`` of a frame, found without decoding it (``None`` for control frames).
    Bybit writes compact JSON; a spaced ``"topic": "..."`` is found too."""
    i = raw.find(_TOPIC_KEY)
    if i >= 0:
        start = i + _TOPIC_LEN
    else:
        i = raw.find('"topic": "')
        if i < 0:
            return None
        start = i + _TOPIC_LEN + 1
    end = raw.find('"', start)
    return raw[start:end] if end > 0 else None


def decode_frame(raw: str, trade: bool = False) -> Any:
    """Decode one frame into its typed schema: data by topic family, else a control reply.
    (The hot path of every stream: normalisation, topic lookup and the decode are inlined.)"""
    norm = _join_null(raw.split(':""'))  # codec.normalize, inlined for compact JSON
    j = norm.find('":', 0, 80)  # codec.is_spaced, inlined: spaced JSON's empty values
    if j >= 0 and norm[j + 2 : j + 3] == " ":
        norm = norm.replace(': ""', ": null")
    dec: msgspec.json.Decoder[Any]
    if trade:
        dec, what = _trade_decoder, "trade ws frame"
    else:
        i = norm.find(_TOPIC_KEY)
        if i < 0:
            topic = topic_of(norm)  # spaced JSON, or a control frame
            if topic is None:
                dec, what = _control_decoder, "ws control frame"
            else:
                what = topic
                dot = what.find(".")
                found = _message_decoders.get(what if dot < 0 else what[:dot])
                if found is None:
                    return RawMessage(what, raw)
                dec = found
        else:
            start = i + _TOPIC_LEN
            what = norm[start : norm.find('"', start)]
            dot = what.find(".")
            found = _message_decoders.get(what if dot < 0 else what[:dot])
            if found is None:
                return RawMessage(what, raw)
            dec = found
    try:
        return dec.decode(norm)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError) as exc:
        raise DecodeError(what, str(exc), norm) from None


class WsSession:
    """A self-healing WebSocket session to one Bybit stream."""

    def __init__(
        self,
        url: str,
        *,
        signer: HmacSigner | RsaSigner | None = None,
        on_message: MessageCallback | None = None,
        on_state: StateCallback | None = None,
        clock: ServerClock | None = None,
        ping_interval: float = 20.0,
        pong_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        reconnect_base: float = 0.5,
        reconnect_max: float = 30.0,
        stable_after: float = 10.0,
        max_args_per_subscribe: int | None = None,
        auth_expires_ms: int = 10_000,
        trade: bool | None = None,
        session: aiohttp.ClientSession | None = None,
        name: str | None = None,
    ) -> None:
        path = url.split("?", 1)[0]
        self.url = url
        self.name = name or path.rsplit("/v5/", 1)[-1]
        self.is_trade = path.endswith("/v5/trade") if trade is None else trade
        self.is_private = path.endswith("/v5/private")
        if (self.is_private or self.is_trade) and signer is None:
            raise ConfigError(f"{self.name} stream needs credentials to authenticate")
        self.signer = signer
        self.on_message = on_message
        self.on_state = on_state
        self.clock = clock or ServerClock()
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        self.stable_after = stable_after
        if max_args_per_subscribe is None and path.endswith("/public/spot"):
            max_args_per_subscribe = 10
        self.max_args_per_subscribe = max_args_per_subscribe
        self.auth_expires_ms = auth_expires_ms
        self._session = session
        self._own_session = session is None

        self.state = ConnectionState.CLOSED
        self.error: BaseException | None = None
        self.connections = 0  # successful connections so far
        self.decode_errors = 0
        self._topics: dict[str, None] = {}  # wanted topics, in order
        self._acked: set[str] = set()  # acknowledged on the current connection
        self._refused: dict[str, str] = {}
        self._pending_acks: deque[tuple[str, list[str]]] = deque()  # (req_id, topics)
        self._changed = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._req_ids = itertools.count(1)
        self._last_pong = 0.0
        self._pong = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the supervisor task (returns at once; see :meth:`wait_connected`)."""
        if self._task is not None:
            return
        self._closing = False
        self.error = None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        self._task = asyncio.create_task(self._run(), name=f"ws:{self.name}")

    async def close(self) -> None:
        """Close the socket, stop reconnecting and await the supervisor task."""
        self._closing = True
        task, self._task = self._task, None
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()
        self._session = None if self._own_session else self._session
        if self.state is not ConnectionState.FAILED:
            self._set_state(ConnectionState.CLOSED)

    async def __aenter__(self) -> WsSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the session is connected (and authenticated if private)."""
        async with asyncio.timeout(timeout):
            while self.state is not ConnectionState.CONNECTED:
                self._raise_if_failed()
                await self._wait_change()

    # -- subscriptions --------------------------------------------------------------------------

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    async def subscribe(self, topics: Iterable[str], *, timeout: float | None = 10.0) -> None:
        """Add ``topics`` and wait for their acks (on this or a later connection). The topics
        stay wanted across reconnects until :meth:`unsubscribe`."""
        new = [t for t in topics if t not in self._topics]
        for t in new:
            self._topics[t] = None
            self._refused.pop(t, None)
        if new and self._ws is not None and self.state is ConnectionState.CONNECTED:
            await self._send_subscribe(self._ws, new)
        if timeout is None or timeout > 0:
            await self.wait_subscribed(new or list(topics), timeout=timeout)

    async def wait_subscribed(self, topics: Sequence[str], timeout: float | None = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                self._raise_if_failed()
                refused = {t: self._refused[t] for t in topics if t in self._refused}
                if refused:
                    for t in refused:
                        self._topics.pop(t, None)
                    msg = "; ".join(f"{t}: {m}" for t, m in refused.items())
                    raise SubscriptionError(0, f"subscription refused: {msg}")
                if all(t in self._acked for t in topics):
                    return
                await self._wait_change()

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        gone = [t for t in topics if t in self._topics]
        for t in gone:
            del self._topics[t]
            self._acked.discard(t)
        if gone and self._ws is not None and self.state is ConnectionState.CONNECTED:
            for chunk in self._chunks(gone):
                await self._send(
                    self._ws, {"op": "unsubscribe", "req_id": self._req_id(), "args": chunk}
                )

    # -- sending --------------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one JSON message on the current connection (raises NetworkError when down)."""
        ws = self._ws
        if ws is None or ws.closed or self.state is not ConnectionState.CONNECTED:
            raise NetworkError(f"{self.name} stream is not connected")
        await self._send(ws, message)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, message: Mapping[str, Any]) -> None:
        try:
            await ws.send_str(encode(message).decode())
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            raise NetworkError(f"{self.name} stream: send failed: {exc}") from None

    def _req_id(self) -> str:
        return f"{self.name[:8]}-{next(self._req_ids)}"

    def _chunks(self, topics: Sequence[str]) -> list[list[str]]:
        n = self.max_args_per_subscribe or len(topics) or 1
        return [list(topics[i : i + n]) for i in range(0, len(topics), n)]

    async def _send_subscribe(
        self, ws: aiohttp.ClientWebSocketResponse, topics: Sequence[str]
    ) -> None:
        for chunk in self._chunks(topics):
            req_id = self._req_id()
            self._pending_acks.append((req_id, chunk))
            await self._send(ws, {"op": "subscribe", "req_id": req_id, "args": chunk})

    # -- the supervisor -------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        assert self._session is not None
        while not self._closing:
            self._set_state(ConnectionState.CONNECTING)
            ws: aiohttp.ClientWebSocketResponse | None = None
            connected_at = 0.0
            try:
                ws = await self._session.ws_connect(
                    self.url,
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                    receive_timeout=None,
                    max_msg_size=0,
                )
                self._ws = ws
                if self.signer is not None:
                    await asyncio.wait_for(self._authenticate(ws), self.connect_timeout)
                connected_at = time.monotonic()
                self.connections += 1
                self._acked.clear()
                self._pending_acks.clear()
                self._last_pong = connected_at
                self._set_state(ConnectionState.CONNECTED)
                if self._topics:
                    await self._send_subscribe(ws, list(self._topics))
                await self._read_loop(ws)
            except asyncio.CancelledError:
                raise
            except AuthError as exc:
                log.error("ws auth refused stream=%s code=%s", self.name, exc.ret_code)
                self.error = exc
                self._set_state(ConnectionState.FAILED)
                return
            except (aiohttp.ClientError, OSError, TimeoutError, NetworkError, DecodeError) as exc:
                log.warning(
                    "ws connection lost stream=%s error=%s", self.name, exc.__class__.__name__
                )
            finally:
                self._ws = None
                self._acked.clear()
                self._pending_acks.clear()
                if ws is not None and not ws.closed:
                    with contextlib.suppress(Exception):
                        await ws.close()
            if self._stopping():
                return
            self._set_state(ConnectionState.DISCONNECTED)
            if connected_at and time.monotonic() - connected_at >= self.stable_after:
                attempt = 0
            delay = min(self.reconnect_max, self.reconnect_base * 2**attempt)
            delay *= 0.5 + random.random() / 2  # jitter: spread reconnects of many clients
            attempt += 1
            log.info("ws reconnect stream=%s in_s=%.2f attempt=%d", self.name, delay, attempt)
            await asyncio.sleep(delay)

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self.signer is not None
        expires = self.clock.now_ms() + self.auth_expires_ms
        req: dict[str, Any] = {"op": "auth", "args": ws_auth_args(self.signer, expires)}
        req["reqId" if self.is_trade else "req_id"] = "auth"
        await self._send(ws, req)
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    raise NetworkError(f"{self.name} stream closed during auth")
                continue
            frame = decode_frame(msg.data, trade=self.is_trade)
            if getattr(frame, "op", None) != "auth":
                self._dispatch(frame)
                continue
            if self.is_trade:
                code = frame.retCode or 0
                if code != 0:
                    raise _auth_error(code, frame.retMsg or "auth refused")
            elif frame.success is not True:
                raise _auth_error(
                    10004 if frame.ret_msg else 10003, frame.ret_msg or "auth refused"
                )
            return

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        pinger = asyncio.create_task(self._ping_loop(ws), name=f"ws-ping:{self.name}")
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self._on_text(msg.data.decode(errors="replace"))
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Application ping every ``ping_interval``; no pong within ``pong_timeout`` drops the
        socket (the supervisor reconnects)."""
        req_key = "reqId" if self.is_trade else "req_id"
        next_at = time.monotonic() + self.ping_interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = time.monotonic() + self.ping_interval
            self._pong.clear()
            await self._send(ws, {"op": "ping", req_key: self._req_id()})
            try:
                await asyncio.wait_for(self._pong.wait(), self.pong_timeout)
            except TimeoutError:
                log.warning("ws pong missing stream=%s; reconnecting", self.name)
                await ws.close()
                return
            self._last_pong = time.monotonic()

    def _on_text(self, raw: str) -> None:
        try:
            frame = decode_frame(raw, trade=self.is_trade)
        except DecodeError as exc:
            self.decode_errors += 1
            log.warning("ws undecodable frame stream=%s detail=%s", self.name, exc.detail)
            return
        self._dispatch(frame)

    def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, s.WsControl):
            self._on_control(frame)
            return
        if isinstance(frame, s.TradeWsResponse) and frame.op in ("pong", "ping"):
            self._pong.set()
            return
        if self.on_message is not None:
            try:
                self.on_message(frame)
            except Exception:
                log.exception("ws on_message handler failed stream=%s", self.name)

    def _on_control(self, frame: s.WsControl) -> None:
        op = frame.op
        if op == "pong" or frame.ret_msg == "pong":
            self._pong.set()
            return
        if op == "subscribe":
            topics = self._match_ack(frame.req_id)
            if frame.success is False:
                for t in topics:
                    self._refused[t] = frame.ret_msg or "refused"
                log.warning("ws subscribe refused stream=%s msg=%s", self.name, frame.ret_msg)
            else:
                self._acked.update(topics)
            self._notify()
            return
        if self.on_message is not None:
            self.on_message(frame)

    def _match_ack(self, req_id: Any) -> list[str]:
        if req_id not in (None, ""):
            for i, (rid, topics) in enumerate(self._pending_acks):
                if rid == str(req_id):
                    del self._pending_acks[i]
                    return topics
        # No (or an unknown) req_id: acks come back in order on one connection.
        if self._pending_acks:
            return self._pending_acks.popleft()[1]
        return []

    # -- state ----------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._closing

    def _set_state(self, state: ConnectionState) -> None:
        if state is self.state:
            return
        self.state = state
        self._notify()
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:
                log.exception("ws on_state handler failed stream=%s", self.name)

    def _notify(self) -> None:
        self._changed.set()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _raise_if_failed(self) -> None:
        if self.state is ConnectionState.FAILED and self.error is not None:
            raise self.error
        if self.state is ConnectionState.CLOSED and self._closing:
            raise NetworkError(f"{self.name} stream is closed")


def _auth_error(code: int, msg: str) -> AuthError:
    err = error_for_code(code, msg, "ws auth")
    return err if isinstance(err, AuthError) else AuthError(code, msg, "ws auth")


# -- trade WebSocket ------------------------------------------------------------------------------

_ORDER_OPS = {
    "order.create": "/v5/order/create",
    "order.amend": "/v5/order/amend",
    "order.cancel": "/v5/order/cancel",
    "order.create-batch": "/v5/order/create-batch",
    "order.amend-batch": "/v5/order/amend-batch",
    "order.cancel-batch": "/v5/order/cancel-batch",
}


class TradeWsClient:
    """Order entry over ``/v5/trade``: one request, one answer matched by ``reqId``."""

    def __init__(
        self,
        environment: Environment | str,
        credentials: Credentials,
        *,
        clock: ServerClock | None = None,
        recv_window: int = DEFAULT_RECV_WINDOW,
        broker_id: str | None = None,
        timeout: float = 5.0,
        on_state: StateCallback | None = None,
        **session_options: Any,
    ) -> None:
        env = get_environment(environment)
        if not env.has_trade_ws:
            raise ConfigError(f"environment {env.name!r} has no trade WebSocket; use REST")
        self.clock = clock or ServerClock()
        self.recv_window = recv_window
        self.broker_id = broker_id
        self.timeout = timeout
        self._pending: dict[
            str, tuple[asyncio.Future[s.TradeWsResponse], str, tuple[str, ...]]
        ] = {}
        self._ids = itertools.count(1)
        self._prefix = new_order_link_id("t")[-8:]
        self._user_on_state = on_state
        self.session = WsSession(
            env.ws_url(Stream.TRADE),
            signer=make_signer(credentials),
            clock=self.clock,
            on_message=self._on_message,
            on_state=self._on_state,
            trade=True,
            **session_options,
        )

    async def start(self) -> None:
        await self.session.start()

    async def close(self) -> None:
        await self.session.close()
        self._fail_pending("trade stream closed")

    async def __aenter__(self) -> TradeWsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.session.connected

    async def wait_connected(self, timeout: float | None = None) -> None:
        await self.session.wait_connected(timeout)

    def _on_state(self, state: ConnectionState) -> None:
        if state is not ConnectionState.CONNECTED:
            self._fail_pending(f"trade stream {state.value}")
        if self._user_on_state is not None:
            self._user_on_state(state)

    def _fail_pending(self, cause: str) -> None:
        pending, self._pending = self._pending, {}
        for fut, op, link_ids in pending.values():
            if not fut.done():
                fut.set_exception(_unknown(op, cause, link_ids))

    def _on_message(self, frame: Any) -> None:
        if not isinstance(frame, s.TradeWsResponse) or frame.reqId is None:
            return
        entry = self._pending.pop(str(frame.reqId), None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(frame)

    async def request(self, op: str, args: list[Any]) -> s.TradeWsResponse:
        """Send one trade-WS request and return its answer (raises the typed error of a
        non-zero ``retCode``; an unanswered state-changing request raises OutcomeUnknown)."""
        if op not in _ORDER_OPS:
            raise ValidationError("op", f"one of {', '.join(_ORDER_OPS)}", op)
        link_ids = _trade_link_ids(op, args)
        req_id = f"{self._prefix}{next(self._ids)}"
        header = {
            "X-BAPI-TIMESTAMP": str(self.clock.now_ms()),
            "X-BAPI-RECV-WINDOW": str(self.recv_window),
        }
        if self.broker_id:
            header["Referer"] = self.broker_id
        fut: asyncio.Future[s.TradeWsResponse] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (fut, op, link_ids)
        try:
            await self.session.send({"reqId": req_id, "header": header, "op": op, "args": args})
        except NetworkError:
            self._pending.pop(req_id, None)
            raise  # never left: nothing can have happened
        try:
            resp = await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            self._pending.pop(req_id, None)
            raise _unknown(op, "no answer in time", link_ids) from None
        code = resp.retCode or 0
        if code != 0:
            if code in OUTCOME_UNKNOWN_CODES:
                raise _unknown(op, f"retCode {code} {resp.retMsg}", link_ids)
            raise error_for_code(code, resp.retMsg or "", op, ret_ext_info=resp.retExtInfo)
        return resp

    async def place_order(self, **params: Any) -> s.OrderIdResult:
        if not params.get("orderLinkId"):
            params["orderLinkId"] = new_order_link_id()
        resp = await self.request("order.create", [_wire_value(params)])
        return _data(resp, s.OrderIdResult)

    async def amend_order(self, **params: Any) -> s.OrderIdResult:
        return _data(await self.request("order.amend", [_wire_value(params)]), s.OrderIdResult)

    async def cancel_order(self, **params: Any) -> s.OrderIdResult:
        return _data(await self.request("order.cancel", [_wire_value(params)]), s.OrderIdResult)


_data_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _data(resp: s.TradeWsResponse, type_: type[T]) -> T:
    """The typed ``data`` of a trade-WS answer (a JSON ``null`` reads as ``{}``)."""
    dec: msgspec.json.Decoder[T] | None = _data_decoders.get(type_)
    if dec is None:
        dec = _data_decoders[type_] = decoder(type_)
    raw = bytes(resp.data)
    return decode_normalized(dec, b"{}" if raw.strip() == b"null" else raw, f"trade ws {resp.op}")


def _trade_link_ids(op: str, args: list[Any]) -> tuple[str, ...]:
    if op == "order.create" and args:
        return (str(args[0].get("orderLinkId", "")),)
    if op == "order.create-batch" and args:
        return tuple(str(o.get("orderLinkId", "")) for o in args[0].get("request", ()))
    return ()


def _unknown(op: str, cause: str, link_ids: tuple[str, ...]) -> BybitkitError:
    if op == "order.create":
        return OrderOutcomeUnknown(op, cause, link_ids[0] if link_ids else "")
    if op == "order.create-batch":
        return BatchOutcomeUnknown(op, cause, link_ids)
    return OutcomeUnknown(op, cause)
