"""Disconnect cancel-all (DCP, REFERENCE §8.12, §13.5): per account and product, cancel every
active order when the account's DCP-armed private connections have all been gone too long.

* Enabling DCP is not self-service on Bybit (the account manager turns it on per product); here it
  is a per-account flag set by :meth:`bybitkit.sandbox.app.Sandbox.enable_dcp` (or the admin route
  ``POST /sandbox/dcp``). ``Account.dcp_enabled`` holds the enabled products,
  ``Account.dcp_windows`` the windows set with ``POST /v5/order/disconnected-cancel-all``
  (10 s until one is set, Bybit's default).
* A private connection arms DCP for a product by subscribing its topic (``dcp.future`` for
  ``DERIVATIVES``, ``dcp.spot``, ``dcp.option``). Connections without such a subscription count
  for nothing.
* When the last armed connection of (account, product) goes down, and DCP is enabled for that
  product, a timer of the product's window starts (a ``loop.call_later`` handle on the sandbox's
  loop). A connection that subscribes the topic again before it expires cancels the timer (the
  countdown resets at the next drop). On expiry every open order of the product is cancelled with
  ``cancelType=CancelByDCP``: ``SPOT`` -> category ``spot``, ``DERIVATIVES`` -> ``linear`` (the
  sandbox has no inverse contracts), ``OPTIONS`` -> nothing (no options are listed). The usual
  order / position / wallet events are published (to whatever private connection is open then;
  the order history keeps the outcome for REST).
* Not documented by Bybit, chosen here: unsubscribing the last ``dcp.*`` topic of a product on a
  live connection disarms it without a countdown (a deliberate opt-out, not a disconnect); the
  window is the one in force when the countdown starts. Stopping the sandbox cancels every timer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bybitkit.sandbox.exchange import Exchange, SandboxError, now_ms

if TYPE_CHECKING:
    from bybitkit.sandbox.accounts import Account

log = logging.getLogger(__name__)

#: The DCP products in the order ``query-dcp-info`` lists them (the doc example's order).
PRODUCTS = ("SPOT", "DERIVATIVES", "OPTIONS")
#: ``product`` of the set endpoint when the body omits it (REFERENCE §8.12, §16 item 17).
DEFAULT_PRODUCT = "OPTIONS"
DEFAULT_WINDOW_S = 10
MIN_WINDOW_S, MAX_WINDOW_S = 3, 300
TOPIC_PRODUCT = {"dcp.future": "DERIVATIVES", "dcp.spot": "SPOT", "dcp.option": "OPTIONS"}
PRODUCT_TOPIC = {product: topic for topic, product in TOPIC_PRODUCT.items()}
#: Sandbox categories whose orders a product's DCP cancels.
PRODUCT_CATEGORIES = {
    "SPOT": ("spot",),
    "DERIVATIVES": ("linear", "inverse"),
    "OPTIONS": ("option",),
}


@dataclass(slots=True)
class _Countdown:
    handle: asyncio.TimerHandle
    window_s: int
    deadline_ms: int


class Dcp:
    """The DCP state of every account: armed connections per (uid, product) and running timers."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.armed: dict[tuple[int, str], set[Any]] = {}  # (uid, product) -> live connections
        self.countdowns: dict[tuple[int, str], _Countdown] = {}
        self.fired: list[tuple[int, str, int, list[str]]] = []  # (uid, product, ms, orderIds)
        self._closed = False

    # -- the set endpoint -----------------------------------------------------------------------

    def set_window(self, account: Account, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v5/order/disconnected-cancel-all: validate and store the product's window.

        REFERENCE is silent on a product whose DCP is not enabled for the account: the window is
        accepted and stored (it applies once the product is enabled), and query-dcp-info keeps
        listing enabled products only."""
        product = params.get("product")
        if product in (None, ""):
            product = DEFAULT_PRODUCT
        if product not in PRODUCTS:
            raise SandboxError(
                10001, f"params error: product must be OPTIONS, DERIVATIVES or SPOT, got {product}"
            )
        window = params.get("timeWindow")
        if window is None:
            raise SandboxError(10001, "params error: timeWindow is required")
        if not isinstance(window, int) or isinstance(window, bool):
            raise SandboxError(10001, f"params error: timeWindow must be an integer, got {window}")
        if not MIN_WINDOW_S <= window <= MAX_WINDOW_S:
            raise SandboxError(
                10001,
                f"params error: timeWindow must be within [{MIN_WINDOW_S}, {MAX_WINDOW_S}], "
                f"got {window}",
            )
        account.dcp_windows[str(product)] = window
        return {}

    # -- connections ----------------------------------------------------------------------------

    def subscribed(self, conn: Any, topic: str) -> None:
        """``conn`` (an authenticated private connection) subscribed ``topic``."""
        product = TOPIC_PRODUCT.get(topic)
        if product is None or conn.uid is None:
            return
        key = (conn.uid, product)
        self.armed.setdefault(key, set()).add(conn)
        countdown = self.countdowns.pop(key, None)
        if countdown is not None:  # back within the window: no cancel, the timer resets
            countdown.handle.cancel()
            log.info("dcp reset uid=%d product=%s", conn.uid, product)

    def unsubscribed(self, conn: Any, topic: str) -> None:
        """``conn`` unsubscribed ``topic``: it no longer counts (no countdown: a deliberate
        opt-out, not a disconnect)."""
        product = TOPIC_PRODUCT.get(topic)
        if product is None or conn.uid is None:
            return
        conns = self.armed.get((conn.uid, product))
        if conns is not None:
            conns.discard(conn)

    def closed(self, conn: Any) -> None:
        """``conn`` is gone: start the countdown of every product it was the last armed one of."""
        if conn.uid is None:
            return
        for (uid, product), conns in list(self.armed.items()):
            if uid != conn.uid or conn not in conns:
                continue
            conns.discard(conn)
            if not conns and not self._closed:
                self._start(uid, product)

    def _start(self, uid: int, product: str) -> None:
        account = self.ex.accounts.get(uid)
        key = (uid, product)
        if account is None or product not in account.dcp_enabled or key in self.countdowns:
            return
        window = account.dcp_windows.get(product, DEFAULT_WINDOW_S)
        handle = asyncio.get_running_loop().call_later(window, self._fire, uid, product)
        self.countdowns[key] = _Countdown(handle, window, now_ms() + window * 1000)
        log.info("dcp countdown uid=%d product=%s window_s=%d", uid, product, window)

    # -- expiry ---------------------------------------------------------------------------------

    def _fire(self, uid: int, product: str) -> None:
        self.countdowns.pop((uid, product), None)
        account = self.ex.accounts.get(uid)
        if account is None or self._closed:
            return
        try:
            ids = self.cancel_all(account, product)
            self.fired.append((uid, product, now_ms(), ids))
            log.info("dcp fired uid=%d product=%s cancelled=%d", uid, product, len(ids))
        except Exception:
            log.exception("dcp cancel failed uid=%d product=%s", uid, product)
        finally:
            self.ex.flush()

    def cancel_all(self, account: Account, product: str) -> list[str]:
        """Cancel every open order of ``product`` with ``cancelType=CancelByDCP``; their ids."""
        categories = PRODUCT_CATEGORIES[product]
        ids = []
        for order in self.ex.open_orders_of(account):
            if order.category in categories and order.is_open:
                self.ex._cancel(order, "CancelByDCP")
                ids.append(order.order_id)
        return ids

    # -- queries and lifecycle ------------------------------------------------------------------

    def infos(self, account: Account) -> list[dict[str, str]]:
        """``dcpInfos`` of query-dcp-info: the enabled products only."""
        return [
            {
                "product": p,
                "dcpStatus": "ON",
                "timeWindow": str(account.dcp_windows.get(p, DEFAULT_WINDOW_S)),
            }
            for p in PRODUCTS
            if p in account.dcp_enabled
        ]

    def status(self, account: Account) -> dict[str, dict[str, Any]]:
        """Per product: enabled, window (s), armed connections, seconds left of a countdown."""
        now = now_ms()
        out: dict[str, dict[str, Any]] = {}
        for p in PRODUCTS:
            countdown = self.countdowns.get((account.uid, p))
            out[p] = {
                "enabled": p in account.dcp_enabled,
                "window": account.dcp_windows.get(p, DEFAULT_WINDOW_S),
                "connections": len(self.armed.get((account.uid, p), ())),
                "countdown": (
                    max(0.0, (countdown.deadline_ms - now) / 1000) if countdown else None
                ),
            }
        return out

    def start(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Sandbox stop: cancel every countdown; nothing starts or fires afterwards."""
        self._closed = True
        for countdown in self.countdowns.values():
            countdown.handle.cancel()
        self.countdowns.clear()
        self.armed.clear()


__all__ = ["DEFAULT_PRODUCT", "PRODUCTS", "PRODUCT_TOPIC", "TOPIC_PRODUCT", "Dcp"]
