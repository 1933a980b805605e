"""The sandbox's WebSocket side: public, private and trade streams on Bybit's paths.

* ``/v5/public/spot`` and ``/v5/public/linear``: ``orderbook.{1,50,200,1000}.{symbol}``,
  ``publicTrade.{symbol}``, ``tickers.{symbol}``, ``kline.{interval}.{symbol}``,
  ``priceLimit.{symbol}``. Each stream answers ping and subscribe in its own exact shape.
* ``/v5/private``: ``auth`` then ``order``, ``execution``, ``wallet`` (and their per-category
  forms), pushed after every change; ``dcp.future`` / ``dcp.spot`` / ``dcp.option`` are acked and
  arm disconnect cancel-all (no payload; :mod:`bybitkit.sandbox.dcp` tracks the connections).
* ``/v5/trade``: ``auth`` then ``order.create|amend|cancel`` and their batch forms; the answer is
  sent before the private stream hears of the change.

A depth-N book stream keeps exactly the top N levels: a snapshot on subscribe, then deltas with
``u`` increasing by one; a level pushed out of the top N is sent with size ``"0"``, one entering is
an insert, and a price is always the same text. Depth 1 sends snapshots only and re-sends the
same ``u`` after 3 s without change. Frames of one connection are handled in order.

Idle connections are cut as on Bybit (REFERENCE §11.1): a connection that has sent nothing (no
ping, no request) for 10 minutes is closed; a private or trade connection opened with
``?max_active_time=`` (``30s`` to ``600s``, or ``1m`` to ``10m``) is closed after that long
instead. The scan runs every second, so a cut can come up to a second late, never early. This
is what makes a client that vanished without closing its socket "disconnected" for DCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from bybitkit.market.candles import INTERVALS
from bybitkit.matching import Side
from bybitkit.money import fmt
from bybitkit.sandbox.exchange import Event, Market, SandboxError, normalize_symbol, now_ms

if TYPE_CHECKING:
    from bybitkit.sandbox.app import Sandbox

log = logging.getLogger(__name__)

DEPTHS = (1, 50, 200, 1000)
BOOK_TICK_S = 0.02
PRIVATE_TOPICS = frozenset(
    {
        "order", "order.spot", "order.linear",
        "execution", "execution.spot", "execution.linear", "execution.fast",
        "execution.fast.spot", "execution.fast.linear",
        "position", "position.linear",
        "wallet", "greeks",
        "dcp.future", "dcp.spot", "dcp.option",
    }
)  # fmt: skip
_CLOSE = "\x00close"
IDLE_TIMEOUT_S = 600.0  # no ping and no request for 10 minutes: Bybit drops the connection
IDLE_SCAN_TICKS = 50  # the idle scan runs every 50 book ticks (one second)


def parse_max_active_time(text: str) -> float:
    """``?max_active_time=`` in seconds: ``30s`` to ``600s``, or ``1m`` to ``10m``."""
    unit = text[-1:]
    number = text[:-1]
    if unit in ("s", "m") and number.isascii() and number.isdigit():
        seconds = int(number) * (60 if unit == "m" else 1)
        if 30 <= seconds <= 600:
            return float(seconds)
    raise ValueError(
        f"max_active_time: expected 30s to 600s or 1m to 10m (e.g. 90s, 2m), got {text!r}"
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Conn:
    """One WebSocket connection and its outgoing queue (drained by its own writer task)."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, remote: str) -> None:
        self.ws = ws
        self.kind = kind  # "spot", "linear", "private", "trade"
        self.remote = remote
        self.conn_id = uuid.uuid4().hex[:20]
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.topics: set[str] = set()
        self.uid: int | None = None
        self.req_ids: set[str] = set()
        self.last_in = time.monotonic()  # when the client last sent anything
        self.closing = False
        self.max_idle: float | None = None  # ?max_active_time=; None: the sandbox's default

    def send(self, text: str) -> None:
        self.queue.put_nowait(text)

    def close_after_queue(self) -> None:
        self.queue.put_nowait(_CLOSE)


class BookStream:
    """One ``orderbook.{depth}.{symbol}`` stream: what was last sent, and its update id."""

    def __init__(self, market: Market, depth: int) -> None:
        self.market = market
        self.depth = depth
        self.u = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.book_seq = -1
        self.sent_at = 0.0
        self.subscribers: set[Conn] = set()
        self.key = f"orderbook.{depth}.{market.inst.symbol}"
        self.gap_next = False  # fault: skip one update id on the next message
        self.reset_next = False  # fault: restart at u = 1 on the next tick

    def _levels(self) -> tuple[dict[int, int], dict[int, int]]:
        book = self.market.book
        return dict(book.levels(Side.BUY, self.depth)), dict(book.levels(Side.SELL, self.depth))

    def _msg(self, kind: str, bids: list[list[str]], asks: list[list[str]], u: int) -> str:
        inst = self.market.inst
        t = now_ms()
        data = {"s": inst.symbol, "b": bids, "a": asks, "u": u, "seq": self.market.cross_seq}
        # Spot (all depths) and futures depth 1 put ``ts`` before ``type`` (REFERENCE §12.1).
        if inst.category == "spot" or self.depth == 1:
            return dumps({"topic": self.key, "ts": t, "type": kind, "data": data, "cts": t})
        return dumps({"topic": self.key, "type": kind, "ts": t, "data": data, "cts": t})

    def _text(self, levels: dict[int, int], reverse: bool) -> list[list[str]]:
        inst = self.market.inst
        return [
            [inst.price_str(p), inst.qty_str(levels[p])] for p in sorted(levels, reverse=reverse)
        ]

    def snapshot(self) -> str:
        """The state last sent (computing it first if nothing was sent yet), as a snapshot."""
        if self.u == 0:
            self.bids, self.asks = self._levels()
            self.book_seq = self.market.book.seq
            self.u = 1
            self.sent_at = time.monotonic()
        return self._msg(
            "snapshot", self._text(self.bids, True), self._text(self.asks, False), self.u
        )

    def reset(self) -> str:
        """Restart the stream at ``u = 1`` (what Bybit does after a service restart)."""
        self.u = 0
        return self.snapshot()

    def tick(self, now: float) -> str | None:
        """The next message, if the top N changed (depth 1: also a re-send after 3 s)."""
        if self.reset_next:
            self.reset_next = False
            return self.reset()
        if self.u == 0:
            return self.snapshot()
        gap = self.gap_next
        book = self.market.book
        if book.seq == self.book_seq:
            if self.depth == 1 and now - self.sent_at >= 3.0:
                self.sent_at = now
                return self.snapshot()  # same u: not a gap
            return None
        self.book_seq = book.seq
        bids, asks = self._levels()
        if self.depth == 1:
            if bids == self.bids and asks == self.asks:
                return None
            self.bids, self.asks = bids, asks
            self.u += 2 if gap else 1
            self.gap_next = False
            self.sent_at = now
            return self.snapshot()
        db = _diff(self.bids, bids)
        da = _diff(self.asks, asks)
        if not db and not da:
            return None
        self.bids, self.asks = bids, asks
        self.u += 2 if gap else 1
        self.gap_next = False
        self.sent_at = now
        inst = self.market.inst
        b = [[inst.price_str(p), inst.qty_str(q)] for p, q in sorted(db, reverse=True)]
        a = [[inst.price_str(p), inst.qty_str(q)] for p, q in sorted(da)]
        return self._msg("delta", b, a, self.u)


def _diff(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    changes = [(p, 0) for p in old if p not in new]
    changes.extend((p, q) for p, q in new.items() if old.get(p) != q)
    return changes


class Streams:
    """Every WebSocket connection of the sandbox and what is published to them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.ex = sandbox.exchange
        self.conns: set[Conn] = set()
        self.books: dict[tuple[str, str, int], BookStream] = {}
        self.subs: dict[str, dict[str, set[Conn]]] = {
            "spot": defaultdict(set),
            "linear": defaultdict(set),
        }
        self._held: list[tuple[Conn, str]] = []
        self._ticker_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._last_tickers: dict[tuple[Conn, str], dict[str, Any]] = {}
        self._kline_sent: dict[tuple[Conn, str], tuple[int, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.refuse_private_until = 0.0  # fault: monotonic time until which /v5/private is refused
        self.idle_timeout = IDLE_TIMEOUT_S  # for connections without max_active_time
        self.ex.listeners.append(self.on_events)

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Periodic publishers: books every 20 ms (depth 200 every 100 ms, 1000 every 200 ms),
        tickers every 100 ms, price limits every 300 ms, klines every second."""
        n = 0
        while True:
            await asyncio.sleep(BOOK_TICK_S)
            n += 1
            if n % IDLE_SCAN_TICKS == 0:
                self.close_idle(time.monotonic())
            if self.sb.faults.paused:
                continue
            if self._held:
                held, self._held = self._held, []
                for conn, text in held:
                    conn.send(text)
            try:
                self._publish_books(n)
                if n % 5 == 0:
                    self._publish_tickers()
                if n % 15 == 0:
                    self._publish_price_limits()
                if n % 50 == 0:
                    self._publish_klines()
            except Exception:
                log.exception("sandbox publisher failed")

    async def close_all(self) -> None:
        for conn in list(self.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close()

    def close_idle(self, now: float) -> int:
        """Close every connection idle longer than its limit; the number closed."""
        closed = 0
        for conn in list(self.conns):
            limit = self.idle_timeout if conn.max_idle is None else conn.max_idle
            if now - conn.last_in > limit and not conn.closing:
                log.info("sandbox ws %s %s idle %.1f s: closed", conn.kind, conn.conn_id, limit)
                conn.closing = True
                conn.close_after_queue()
                closed += 1
        return closed

    def drop_all(self) -> None:
        """Fault: close every WebSocket connection now."""
        for conn in list(self.conns):
            conn.close_after_queue()

    def drop_private(self, uid: int | None = None, refuse_for: float = 0.0) -> int:
        """Fault: close the private connections (of account ``uid`` only, when given) and refuse
        new ones (any account: the handshake comes before auth) with HTTP 503 for ``refuse_for``
        seconds. Returns the number of connections closed."""
        if refuse_for > 0:
            until = time.monotonic() + refuse_for
            self.refuse_private_until = max(self.refuse_private_until, until)
        dropped = 0
        for conn in list(self.conns):
            if conn.kind == "private" and (uid is None or conn.uid == uid):
                conn.close_after_queue()
                dropped += 1
        return dropped

    # -- sending --------------------------------------------------------------------------------

    def _push(self, conn: Conn, text: str) -> None:
        if self.sb.faults.paused:
            self._held.append((conn, text))
        else:
            conn.send(text)

    async def _writer(self, conn: Conn) -> None:
        ws = conn.ws
        while True:
            text = await conn.queue.get()
            if text == _CLOSE:
                await ws.close()
                return
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    # -- connections ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        kind = path.rsplit("/", 1)[-1]
        if kind not in ("spot", "linear", "private", "trade"):
            raise web.HTTPNotFound()
        if kind == "private" and time.monotonic() < self.refuse_private_until:
            raise web.HTTPServiceUnavailable(text="private stream refused (sandbox fault)")
        max_idle: float | None = None
        if kind in ("private", "trade") and "max_active_time" in request.query:
            try:
                max_idle = parse_max_active_time(request.query["max_active_time"])
            except ValueError as err:
                raise web.HTTPBadRequest(text=str(err)) from None
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, kind, request.remote or "")
        conn.max_idle = max_idle
        self.conns.add(conn)
        writer = asyncio.create_task(self._writer(conn), name=f"sandbox-ws-writer-{conn.conn_id}")
        try:
            async for msg in ws:
                conn.last_in = time.monotonic()
                if msg.type is WSMsgType.BINARY:
                    # Bybit speaks JSON text only: say so rather than ignore the frame.
                    self._error(conn, None, "", "error:binary frames are not supported")
                    continue
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    await self._on_frame(conn, msg.data)
                except Exception:
                    log.exception("sandbox ws frame failed kind=%s", kind)
        finally:
            self.conns.discard(conn)
            if conn.kind == "private":
                self.sb.dcp.closed(conn)
            for subs in self.subs.values():
                for conns in subs.values():
                    conns.discard(conn)
            for stream in self.books.values():
                stream.subscribers.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _on_frame(self, conn: Conn, text: str) -> None:
        try:
            req = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: hostile nesting depth
            self._error(conn, None, "", "error:invalid json")
            return
        if not isinstance(req, dict):
            self._error(conn, None, "", "error:request must be an object")
            return
        if conn.kind == "trade":
            await self._trade(conn, req)
            return
        op = req.get("op")
        req_id = req.get("req_id")
        if op == "ping":
            self._pong(conn, req_id)
        elif op == "auth":
            self._auth(conn, req)
        elif op in ("subscribe", "unsubscribe"):
            args = req.get("args")
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                self._error(conn, req_id, str(op), "error:args must be a list of topics")
            elif op == "subscribe":
                self._subscribe(conn, req_id, args)
            else:
                self._unsubscribe(conn, req_id, args)
        else:
            self._error(conn, req_id, str(op or ""), f"error:unknown op {op}")

    def _pong(self, conn: Conn, req_id: Any) -> None:
        t = str(now_ms())
        if conn.kind == "private":
            msg: dict[str, Any] = {
                "req_id": req_id,
                "op": "pong",
                "args": [t],
                "conn_id": conn.conn_id,
            }
            if req_id is None:
                del msg["req_id"]
        else:
            msg = {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id}
            if conn.kind == "linear" or req_id is not None:
                msg["req_id"] = "" if req_id is None else req_id
            msg["op"] = "ping"
        conn.send(dumps(msg))

    def _ack(self, conn: Conn, req_id: Any, op: str, ok: bool, ret_msg: str = "") -> None:
        if conn.kind == "private":
            msg: dict[str, Any] = {
                "success": ok,
                "ret_msg": ret_msg,
                "op": op,
                "conn_id": conn.conn_id,
            }
            if req_id is not None:
                msg["req_id"] = req_id
        else:
            if ok and conn.kind == "spot":
                ret_msg = op
            msg = {
                "success": ok,
                "ret_msg": ret_msg,
                "conn_id": conn.conn_id,
                "req_id": "" if req_id is None else req_id,
                "op": op,
            }
        conn.send(dumps(msg))

    def _error(self, conn: Conn, req_id: Any, op: str, ret_msg: str) -> None:
        if conn.kind == "trade":
            conn.send(
                dumps({"retCode": 10404, "retMsg": ret_msg, "op": op, "connId": conn.conn_id})
            )
        else:
            self._ack(conn, req_id, op, False, ret_msg)

    # -- auth -----------------------------------------------------------------------------------

    def _check_auth(self, conn: Conn, args: Any) -> tuple[int, str]:
        """(0, "") when the auth args are right, else Bybit's (code, message)."""
        if not isinstance(args, list) or len(args) != 3:
            return 10001, "Params Error"
        key, expires, sign = args
        try:
            expires_ms = int(expires)  # an integer or a numeric string, as Bybit accepts
        except (TypeError, ValueError):
            return 10001, "Params Error"
        entry = self.ex.keys.get(str(key))
        if entry is None:
            return 10003, "Invalid apikey"
        account, api_key = entry
        if expires_ms <= now_ms():
            return 10002, "Params Error: request expired"
        if not isinstance(sign, str) or not api_key.verify(
            f"GET/realtime{expires_ms}".encode(), sign
        ):
            return 10004, "Invalid sign"
        if api_key.expires_at_ms is not None and now_ms() >= api_key.expires_at_ms:
            return 33004, "Your api key has expired."
        if "*" not in api_key.ips and conn.remote not in api_key.ips:
            return 10010, "Unmatched IP"
        conn.uid = account.uid
        return 0, ""

    def _auth(self, conn: Conn, req: dict[str, Any]) -> None:
        if conn.kind != "private":
            self._error(
                conn, req.get("req_id"), "auth", "error:auth is not needed on public streams"
            )
            return
        if conn.uid is not None:
            msg = {
                "success": False,
                "ret_msg": "Repeat auth",
                "op": "auth",
                "conn_id": conn.conn_id,
            }
        else:
            code, text = self._check_auth(conn, req.get("args"))
            msg = {"success": code == 0, "ret_msg": text, "op": "auth", "conn_id": conn.conn_id}
        if req.get("req_id") is not None:
            msg["req_id"] = req["req_id"]
        conn.send(dumps(msg))

    # -- subscriptions --------------------------------------------------------------------------

    def _valid_public(self, conn: Conn, topic: str) -> Market | None:
        parts = topic.split(".")
        name = parts[0]
        if name == "orderbook" and len(parts) == 3 and parts[1].isdigit():
            if int(parts[1]) not in DEPTHS:
                return None
        elif name == "kline" and len(parts) == 3:
            if parts[1] not in INTERVALS:
                return None
        elif name not in ("publicTrade", "tickers", "priceLimit") or len(parts) != 2:
            return None
        return self.ex.markets.get((conn.kind, parts[-1]))

    def _subscribe(self, conn: Conn, req_id: Any, topics: list[str]) -> None:
        if conn.kind == "spot" and len(topics) > 10:
            self._ack(conn, req_id, "subscribe", False, "error:args size >10")
            return
        if conn.kind == "private":
            if conn.uid is None:
                self._ack(conn, req_id, "subscribe", False, "Request not authorized")
                return
            bad = [t for t in topics if t not in PRIVATE_TOPICS]
            if bad:
                self._ack(
                    conn, req_id, "subscribe", False, f"error:handler not found,topic:{bad[0]}"
                )
                return
            dup = [t for t in topics if t in conn.topics]
            if dup:
                self._ack(
                    conn, req_id, "subscribe", False, f"error:already subscribed,topic:{dup[0]}"
                )
                return
            conn.topics.update(topics)
            self._ack(conn, req_id, "subscribe", True)
            for topic in topics:
                self.sb.dcp.subscribed(conn, topic)
            return
        markets: list[tuple[str, Market]] = []
        for topic in topics:
            market = self._valid_public(conn, topic)
            if market is None:
                self._ack(
                    conn, req_id, "subscribe", False, f"error:handler not found,topic:{topic}"
                )
                return
            if topic in conn.topics:
                self._ack(
                    conn, req_id, "subscribe", False, f"error:already subscribed,topic:{topic}"
                )
                return
            markets.append((topic, market))
        self._ack(conn, req_id, "subscribe", True)
        for topic, market in markets:
            conn.topics.add(topic)
            name = topic.split(".")[0]
            if name == "orderbook":
                depth = int(topic.split(".")[1])
                stream = self.book_stream(market, depth)
                stream.subscribers.add(conn)
                self._push(conn, stream.snapshot())
            else:
                self.subs[conn.kind][topic].add(conn)
                if name == "tickers":
                    data = self.ticker(market)
                    self._last_tickers[(conn, topic)] = data
                    self._push(conn, self._ticker_msg(market, topic, "snapshot", data))
                elif name == "kline":
                    self._push_kline(conn, topic, market, force=True)

    def _unsubscribe(self, conn: Conn, req_id: Any, topics: list[str]) -> None:
        for topic in topics:
            if conn.kind == "private" and topic in conn.topics:
                self.sb.dcp.unsubscribed(conn, topic)
            conn.topics.discard(topic)
            if conn.kind in self.subs:
                self.subs[conn.kind][topic].discard(conn)
            for stream in self.books.values():
                if stream.key == topic and stream.market.inst.category == conn.kind:
                    stream.subscribers.discard(conn)
        self._ack(conn, req_id, "unsubscribe", True)

    def book_stream(self, market: Market, depth: int) -> BookStream:
        key = (market.inst.category, market.inst.symbol, depth)
        stream = self.books.get(key)
        if stream is None:
            stream = self.books[key] = BookStream(market, depth)
        return stream

    # -- public publishing ----------------------------------------------------------------------

    def _publish_books(self, n: int) -> None:
        now = time.monotonic()
        for (_, _, depth), stream in self.books.items():
            if not stream.subscribers:
                continue
            if not stream.reset_next and ((depth == 200 and n % 5) or (depth == 1000 and n % 10)):
                continue
            text = stream.tick(now)
            if text is not None:
                for conn in stream.subscribers:
                    self._push(conn, text)

    def ticker(self, market: Market, rest: bool = False) -> dict[str, Any]:
        """The ticker object of a market (REST shape when ``rest``; WS shape otherwise)."""
        inst = market.inst
        t = now_ms()
        day = market.klines.summary(t - 86_400_000, t)
        hour = market.klines.summary(t - 3_600_000, t)
        last = inst.price_str(market.last_ticks)
        prev24 = inst.price_str(day.open) if day else last
        high = inst.price_str(day.high) if day else last
        low = inst.price_str(day.low) if day else last
        vol = market.klines.volume_text(day.volume) if day else "0"
        turnover = market.klines.turnover_text(day.turnover) if day else "0"
        pct = (
            ((Decimal(last) - Decimal(prev24)) / Decimal(prev24)).quantize(Decimal("0.000001"))
            if day and Decimal(prev24)
            else Decimal(0)
        )
        book = market.book
        bb, ba = book.best_bid(), book.best_ask()
        bid_px = inst.price_str(bb) if bb is not None else ""
        ask_px = inst.price_str(ba) if ba is not None else ""
        bid_sz = inst.qty_str(book.level_qty(Side.BUY, bb)) if bb is not None else ""
        ask_sz = inst.qty_str(book.level_qty(Side.SELL, ba)) if ba is not None else ""
        if inst.category == "spot":
            d: dict[str, Any] = {"symbol": inst.symbol}
            if rest:
                d.update(bid1Price=bid_px, bid1Size=bid_sz, ask1Price=ask_px, ask1Size=ask_sz)
            d.update(
                lastPrice=last,
                prevPrice24h=prev24,
                price24hPcnt=fmt(pct),
                highPrice24h=high,
                lowPrice24h=low,
                turnover24h=turnover,
                volume24h=vol,
                usdIndexPrice=inst.price_str(market.index_ticks),
            )
            return d
        funding = self.sb.funding_info(market)
        d = {
            "symbol": inst.symbol,
            "lastPrice": last,
            "indexPrice": inst.price_str(market.index_ticks),
            "markPrice": inst.price_str(market.mark_ticks),
            "prevPrice24h": prev24,
            "price24hPcnt": fmt(pct),
            "highPrice24h": high,
            "lowPrice24h": low,
            "prevPrice1h": inst.price_str(hour.open) if hour else last,
            "openInterest": "0",
            "openInterestValue": "0",
            "turnover24h": turnover,
            "volume24h": vol,
            "fundingRate": funding["fundingRate"],
            "nextFundingTime": funding["nextFundingTime"],
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": ask_sz,
            "bid1Price": bid_px,
            "ask1Price": ask_px,
            "bid1Size": bid_sz,
            "basis": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
            "fundingIntervalHour": funding["fundingIntervalHour"],
            "fundingCap": fmt(inst.upper_funding_rate),
            "basisRateYear": "",
        }
        d["singleOpenInterest"] = "0"
        d["singleOpenInterestValue"] = "0"
        if not rest:
            last_trade = market.trades[-1] if market.trades else None
            d["tickDirection"] = (
                last_trade.get("L", "ZeroPlusTick") if last_trade else "ZeroPlusTick"
            )
            # A perpetual's stream ticker carries no delivery fields (§12.3).
            for key in ("basis", "predictedDeliveryPrice", "basisRate", "deliveryFeeRate",
                        "deliveryTime", "basisRateYear"):  # fmt: skip
                d.pop(key)
        return d

    def _ticker_msg(self, market: Market, topic: str, kind: str, data: dict[str, Any]) -> str:
        t = now_ms()
        return dumps({"topic": topic, "type": kind, "data": data, "cs": market.cross_seq, "ts": t})

    def _publish_tickers(self) -> None:
        for category, subs in self.subs.items():
            for topic, conns in subs.items():
                if not conns or not topic.startswith("tickers."):
                    continue
                market = self.ex.markets.get((category, topic.split(".", 1)[1]))
                if market is None:
                    continue
                data = self.ticker(market)
                for conn in conns:
                    last = self._last_tickers.get((conn, topic))
                    if category == "spot":
                        if last != data:
                            self._push(conn, self._ticker_msg(market, topic, "snapshot", data))
                    else:
                        changed = {
                            k: v for k, v in data.items() if last is None or last.get(k) != v
                        }
                        if changed:
                            changed["symbol"] = data["symbol"]
                            self._push(conn, self._ticker_msg(market, topic, "delta", changed))
                    self._last_tickers[(conn, topic)] = data

    def _publish_price_limits(self) -> None:
        for category, subs in self.subs.items():
            for topic, conns in subs.items():
                if not conns or not topic.startswith("priceLimit."):
                    continue
                market = self.ex.markets.get((category, topic.split(".", 1)[1]))
                if market is None:
                    continue
                inst = market.inst
                buy, sell = market.band()
                text = dumps(
                    {
                        "topic": topic,
                        "data": {
                            "symbol": inst.symbol,
                            "buyLmt": inst.price_str(inst.to_ticks(buy)),
                            "sellLmt": inst.price_str(inst.to_ticks(sell)),
                        },
                        "ts": now_ms(),
                    }
                )
                for conn in conns:
                    self._push(conn, text)

    def _publish_klines(self) -> None:
        for category, subs in self.subs.items():
            for topic, conns in subs.items():
                if not conns or not topic.startswith("kline."):
                    continue
                market = self.ex.markets.get((category, topic.split(".")[2]))
                if market is None:
                    continue
                for conn in conns:
                    self._push_kline(conn, topic, market)

    def _push_kline(self, conn: Conn, topic: str, market: Market, force: bool = False) -> None:
        interval = topic.split(".")[1]
        t = now_ms()
        key = (conn, topic)
        prev = self._kline_sent.get(key)
        items: list[dict[str, Any]] = []
        if prev is not None:
            items.extend(market.klines.confirmed_since(interval, prev[0], t))
        bar = market.klines.ws_bar(interval, t)
        text_bar = dumps(bar)
        if force or prev is None or prev[1] != text_bar or items:
            items.append(bar)
        self._kline_sent[key] = (t, text_bar)
        if items:
            self._push(conn, dumps({"topic": topic, "data": items, "ts": t, "type": "snapshot"}))

    # -- event publishing (trades and private topics) -------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        trades: dict[tuple[str, str], list[Any]] = defaultdict(list)
        private: dict[tuple[int, str], list[Event]] = defaultdict(list)
        wallets: set[int] = set()
        for ev in events:
            if ev.topic == "publicTrade":
                trades[(ev.category, ev.symbol)].append(ev.data)
            elif ev.topic == "wallet":
                assert ev.uid is not None
                wallets.add(ev.uid)
            elif ev.uid is not None:
                private[(ev.uid, ev.topic)].append(ev)
        t = now_ms()
        for (category, symbol), items in trades.items():
            topic = f"publicTrade.{symbol}"
            conns = self.subs.get(category, {}).get(topic)
            if conns:
                text = dumps({"topic": topic, "type": "snapshot", "ts": t, "data": items})
                for conn in conns:
                    self._push(conn, text)
        if not private and not wallets:
            return
        by_uid: dict[int, list[Conn]] = defaultdict(list)
        for conn in self.conns:
            if conn.kind == "private" and conn.uid is not None:
                by_uid[conn.uid].append(conn)
        faults = self.sb.faults
        for (uid, topic), evs in private.items():
            for conn in by_uid.get(uid, ()):
                for category in ("", "spot", "linear"):
                    name = f"{topic}.{category}" if category else topic
                    if name not in conn.topics:
                        continue
                    data = [e.data for e in evs if not category or e.category == category]
                    if data:
                        self._push(
                            conn,
                            dumps(
                                {
                                    "id": uuid.uuid4().hex,
                                    "topic": name,
                                    "creationTime": t,
                                    "data": data,
                                }
                            ),
                        )
            uid_conns = by_uid.get(uid, [])
            if topic == "execution" and uid_conns and faults.drop_private_after_fill > 0:
                faults.drop_private_after_fill -= 1
                for conn in uid_conns:
                    conn.close_after_queue()
        for uid in wallets:
            wallet_conns = [c for c in by_uid.get(uid, ()) if "wallet" in c.topics]
            if not wallet_conns:
                continue
            account = self.ex.accounts[uid]
            text = dumps(
                {"id": uuid.uuid4().hex, "topic": "wallet", "creationTime": t,
                 "data": [self.ex.wallet(account)]}
            )  # fmt: skip
            for conn in wallet_conns:
                self._push(conn, text)

    # -- trade WebSocket ------------------------------------------------------------------------

    async def _trade(self, conn: Conn, req: dict[str, Any]) -> None:
        op = req.get("op")
        req_id = req.get("reqId")
        base: dict[str, Any] = {"reqId": req_id} if req_id is not None else {}
        if op == "ping":
            conn.send(dumps({**base, "retCode": 0, "retMsg": "OK", "op": "pong",
                             "data": [str(now_ms())], "connId": conn.conn_id}))  # fmt: skip
            return
        if op == "auth":
            if conn.uid is not None:
                code, text = 20001, "Repeat auth"
            else:
                code, text = self._check_auth(conn, req.get("args"))
            conn.send(dumps({**base, "retCode": code, "retMsg": text or "OK", "op": "auth",
                             "connId": conn.conn_id}))  # fmt: skip
            return
        handlers = {
            "order.create": self.ex.create_order,
            "order.amend": self.ex.amend_order,
            "order.cancel": self.ex.cancel_order,
        }
        batch_ops = {"order.create-batch", "order.amend-batch", "order.cancel-batch"}
        reply: dict[str, Any] = {**base, "op": op, "retExtInfo": {}, "connId": conn.conn_id}
        try:
            if op not in handlers and op not in batch_ops:
                raise SandboxError(10404, f"unknown op {op}")
            if conn.uid is None:
                raise SandboxError(10003, "Request not authorized")
            if req_id is not None:
                if str(req_id) in conn.req_ids:
                    raise SandboxError(20006, "Duplicate reqId")
                conn.req_ids.add(str(req_id))
            header = req.get("header") or {}
            ts_raw = header.get("X-BAPI-TIMESTAMP") if isinstance(header, dict) else None
            try:
                ts = int(ts_raw)  # type: ignore[arg-type]
                rw = int(header.get("X-BAPI-RECV-WINDOW", 5000))
            except (TypeError, ValueError):
                raise SandboxError(
                    10001, "params error: header X-BAPI-TIMESTAMP is required"
                ) from None
            server = now_ms()
            if not server - rw <= ts < server + 1000:
                raise SandboxError(10002, "invalid request, please check your timestamp")
            args = req.get("args")
            if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
                raise SandboxError(10001, "params error: args must hold exactly one object")
            params = {k: v for k, v in args[0].items() if v is not None}
            account = self.ex.accounts[conn.uid]
            rest = self.sb.rest
            path = "/v5/" + str(op).replace(".", "/", 1)
            items = params.get("request") if op in batch_ops else None
            weight = len(items) if isinstance(items, list) else 1
            limit, remaining, reset_ms, admitted = rest.uid_limits.check(
                account.uid, path, params.get("category"), max(1, weight)
            )
            reply["header"] = {
                "X-Bapi-Limit": str(limit),
                "X-Bapi-Limit-Status": str(remaining),
                "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
                "Traceid": uuid.uuid4().hex,
                "Timenow": str(now_ms()),
            }
            if limit and admitted == 0:
                raise SandboxError(10006, "Too many visits. Exceeded the API Rate Limit.")
            if op in batch_ops:
                from bybitkit.sandbox.server import Call

                call = Call(None, path, {**params, "_admitted": admitted}, account, None)
                method = {
                    "order.create-batch": rest.batch_create,
                    "order.amend-batch": rest.batch_amend,
                    "order.cancel-batch": rest.batch_cancel,
                }[str(op)]
                data, ext = method(call)
                reply.update(retCode=0, retMsg="OK", data=data, retExtInfo=ext)
            else:
                data = handlers[str(op)](account, params)
                reply.update(retCode=0, retMsg="OK", data=data)
        except SandboxError as err:
            reply.update(retCode=err.code, retMsg=err.msg, data={})
        if (
            op in ("order.create", "order.create-batch")
            and reply.get("retCode") == 0
            and self.sb.faults.take_drop_create()
        ):
            self.ex.flush()
            conn.close_after_queue()
            return
        conn.send(dumps(reply))
        self.ex.flush()


__all__ = ["BookStream", "Conn", "Streams", "normalize_symbol"]
