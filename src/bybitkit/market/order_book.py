"""The local copy of one Bybit ``orderbook.{depth}.{symbol}`` stream (REFERENCE §12.1).

Integer ticks and lots inside, ``Decimal`` at the API.

Units
-----
A price is held as an integer number of *ticks*, a size as an integer number of *lots*. The tick
is ``tick_size`` when it is given; otherwise it is **learnt from the text** Bybit sends: the finest
decimal places seen so far (``"30000.10"`` -> tick ``0.01``). A learnt tick is the price *text
resolution*, not necessarily the instrument's trading tick: Bybit pads prices to the instrument's
``priceScale``, so BTCUSDT (tick 0.10) writes ``"68804.10"`` and its learnt tick is 0.01. Lots work
the same way (``"0.250"`` -> lot ``0.001``).

A learnt tick follows the finest resolution seen: a later price written with more decimals
*refines* it (never rounds the price) to ``10**-decimals``, and every stored tick count is
multiplied by the exact integer ratio of the old tick to the new one. A given ``tick_size`` is
kept as long as every price is a whole number of it; a price off its grid refines it the same
way, to the power of ten that resolves the text. Sizes likewise.
:attr:`OrderBook.tick_size` / :attr:`OrderBook.lot_size` always give the current units of the
integer accessors (:meth:`OrderBook.best_bid_ticks`, ...). Nothing is ever approximated.

Text -> integer, exactly
------------------------
Hot path: when the unit is ``10**-k`` and the text has exactly ``k`` decimals (``s[-k-1] ==
"."``), the count is ``int(s.replace(".", "", 1))``: the digits with the point removed *are* the
number of ``10**-k`` units; no arithmetic, nothing to round (and a second point makes ``int()``
fail, so such text goes to the strict path). The float alternative, ``round(float(s) * 10**k)``,
is exact only under a guard: with ``s == N * 10**-k`` and ``|N| < 2**51``, ``float(s)`` is within
a relative 2**-53 of the value and the product (``10**k`` is exact for ``k <= 22``) adds at most
another 2**-53, so the result is within ``|N| * 2**-52 < 1/2`` of ``N`` and rounds to it.
Checking that guard (the decimal count, at most 15 significant digits) costs what the dot removal
costs, and measured no faster, so floats are not used at all. Any other text (other decimal
counts, no point, a ``tick_size`` that is not the text resolution) takes the exact integer path
(:func:`_split`: a strict regular expression, then rational arithmetic on ints), which refines
the unit when it must. The fast path trusts ``int()`` on the digits, as Bybit writes them (it
would also take what ``int()`` takes: surrounding spaces, ``_`` separators, non-ASCII digits).

Prices repeat: deltas keep touching the levels near the top. A small per-side cache maps price
*text* to its key (one dict lookup instead of a parse); it is emptied when full and whenever the
tick is refined, and its ints are the very objects stored in the book, so it costs little memory.

Layout (per side)
-----------------
* a ``dict`` key -> lots, and
* a sorted ``list`` of keys, ascending, **best last** (maintained with :mod:`bisect`).
  A bid's key is its tick count, an ask's key *minus* its tick count: the best level of either
  side is ``keys[-1]`` (O(1) to read), changes cluster at the top, the end of the list, where
  inserting and deleting moves few pointers, and one code path serves both sides.

A ``dict`` that keeps losing and gaining keys grows its table (CPython sizes it by live keys * 3
when deleted slots run out): a 200-level side churns from a 512-slot to a 1024-slot table. So the
book copies its dicts back to compact ones after about ``depth`` insertions (a C-level copy of a
few microseconds, every hundred or so frames), which keeps 500 books of 200 levels a side well
under 30 MiB.

Book maintenance (REFERENCE §12.1)
----------------------------------
* ``snapshot`` replaces the book; so does any message with ``u == 1`` (service restart).
* ``delta``: size ``"0"`` deletes the level, an unknown price inserts it, a known one replaces
  its size. A delta must carry ``u == last_u + 1``; otherwise the book becomes invalid (reason
  ``"gap"``) and stays invalid, unchanged, until the next snapshot (the connector resubscribes).
  A delta before any snapshot leaves the book invalid (``"no snapshot"``).
* Depth 1 sends snapshots only and re-sends the same ``u`` after 3 s when nothing changed:
  snapshots are never gaps; a same-``u`` one just refreshes the age.
* After applying, a crossed book (best bid >= best ask) is invalid (``"crossed"``). That is not
  sticky: ``u`` is still continuous, so the copy is still exact; deltas keep applying and the
  book is valid again once it uncrosses.
* Bybit deletes levels explicitly, so nothing is trimmed for correctness; only a side that grows
  beyond ``2 * depth`` levels (a feed bug) loses its far end, so memory stays bounded.

Age is measured on the local monotonic clock at receive time (``time.monotonic()``), never by
comparing the exchange ``ts`` with the wall clock. A book that is invalid or stale keeps its last
levels readable (for display), but strategies must only quote from :attr:`OrderBook.is_usable`.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, insort
from decimal import Context, Decimal
from time import monotonic as _monotonic
from typing import Literal

import msgspec

from bybitkit.errors import DecodeError, ValidationError
from bybitkit.money import to_decimal
from bybitkit.v5.codec import decoder
from bybitkit.v5.schemas import OrderbookMessage

__all__ = ["BookSide", "OrderBook", "TakerSide"]

BookSide = Literal["bid", "ask"]
"""A side of the book: the resting bids or the resting asks."""
TakerSide = Literal["buy", "sell"]
"""What a taker does: ``buy`` walks the asks up, ``sell`` walks the bids down."""

# The connector decodes every frame with a lax msgspec decoder of the topic's schema
# (bybitkit.v5.ws.decode_frame); the book has its own decoder of the very same schema, so
# apply_frame() costs one decode and no topic routing. Orderbook messages carry no empty-string
# values, so the connector's ':""' -> null normalisation is a no-op on them and is skipped here.
_DECODER = decoder(OrderbookMessage)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError)

# Plenty of digits: multiplying an integer by a power of ten never rounds in this context.
_EXACT = Context(prec=200, Emax=999_999, Emin=-999_999)
# VWAP is a quotient: exact when it terminates within 28 significant digits, else rounded once.
_QUOTIENT = Context(prec=28)
_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?", re.ASCII)
_GAP = "gap"
_NO_SNAPSHOT = "no snapshot"
_CROSSED = "crossed"
_BAD_FRAME = "bad frame"
_DEPTH1_RESEND = 3.0
_PRICE_CACHE = 64  # price texts cached per side (hit rate and memory: see the benchmark)


def _split(text: str) -> tuple[int, int]:
    """``(n, d)`` with ``text == n * 10**-d`` exactly (``d`` = decimals as written, >= 0).
    Plain decimal text only (``-?digits[.digits]``); anything else raises :class:`DecodeError`."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise DecodeError("order book level", "not a plain decimal number", text)
    sign, whole, frac = m.groups()
    if frac:
        n = int(whole + frac)
        d = len(frac)
    else:
        n = int(whole)
        d = 0
    return (-n if sign else n), d


def _p10(k: int) -> int:
    """``10**k`` for ``k >= 0``, typed as the int it is."""
    return int(10**k)


def _unit_of(value: Decimal | str | int, name: str) -> tuple[int, int]:
    """A positive decimal ``value`` as ``(m, x)`` with ``value == m * 10**-x``, trailing zeros
    of ``m`` moved into ``x`` where possible (``0.10`` -> ``(1, 1)``, ``5`` -> ``(5, 0)``)."""
    dec = to_decimal(value, name)
    if dec <= 0:
        raise ValidationError(name, "a positive decimal", value)
    _, digits, exp = dec.as_tuple()
    assert isinstance(exp, int)
    m = int("".join(map(str, digits)))
    x = -exp
    if x < 0:
        m *= _p10(-x)
        x = 0
    while x > 0 and m % 10 == 0:
        m //= 10
        x -= 1
    return m, x


def _fast_index(m: int, x: int) -> int:
    """Where the fast path expects the decimal point (``-(x + 1)``), or 0 for no fast path:
    it needs the unit to be exactly ``10**-x`` with ``x >= 1``."""
    return -(x + 1) if m == 1 and x >= 1 else 0


class OrderBook:
    """The local order book of one Bybit ``orderbook.{depth}.{symbol}`` stream.

    Feed it frames with :meth:`apply_frame` (the wire text) or :meth:`apply` (a decoded
    :class:`~bybitkit.v5.schemas.OrderbookMessage`); both return :attr:`is_valid`. Read it with
    the ``Decimal`` queries (:meth:`best_bid`, :meth:`vwap`, ...) or, on hot paths, the integer
    ones (:meth:`best_bid_ticks`, ...; units :attr:`tick_size` and :attr:`lot_size`).

    ``symbol`` is Bybit's symbol (``BTCUSDT``; ``BTC-USDT`` is accepted). ``tick_size`` and
    ``lot_size`` fix the integer units (else they are learnt from the text; see the module
    docstring). ``depth`` is the stream's depth. ``stale_after`` (seconds) makes
    :attr:`is_stale` true when no message was applied for that long; at depth 1 it must be at
    least 3 s, since Bybit re-sends an unchanged depth-1 book only every 3 s.

    State: :attr:`is_valid`, :attr:`invalid_reason` (``None`` when valid; ``"no snapshot"``,
    ``"gap"``, ``"crossed"``, ``"bad frame"`` or the reason given to :meth:`invalidate`),
    :attr:`u` and :attr:`seq` (update id and cross sequence of the last applied message),
    :attr:`ts` (its exchange time, ms), :attr:`last_update` (``time.monotonic()`` at its
    receipt), :attr:`age`, :attr:`is_stale`, :attr:`is_usable`.
    """

    __slots__ = (
        "_ac",
        "_ad",
        "_ak",
        "_an",
        "_ap",
        "_at",
        "_av",
        "_bc",
        "_bd",
        "_bk",
        "_bn",
        "_bp",
        "_bt",
        "_bv",
        "_cap",
        "_churn",
        "_llearn",
        "_lm",
        "_lpk",
        "_lunit",
        "_lx",
        "_need_snapshot",
        "_plearn",
        "_pm",
        "_ppk",
        "_punit",
        "_px",
        "_wire_symbol",
        "depth",
        "invalid_reason",
        "is_valid",
        "last_update",
        "seq",
        "stale_after",
        "symbol",
        "ts",
        "u",
    )

    def __init__(
        self,
        symbol: str,
        *,
        tick_size: Decimal | None = None,
        lot_size: Decimal | None = None,
        depth: int = 200,
        stale_after: float | None = None,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValidationError("depth", "a positive int", depth)
        if stale_after is not None:
            if not stale_after > 0:
                raise ValidationError("stale_after", "a positive number of seconds", stale_after)
            if depth == 1 and stale_after < _DEPTH1_RESEND:
                raise ValidationError(
                    "stale_after",
                    "at least 3.0 s at depth 1 (an unchanged depth-1 book is re-sent every 3 s)",
                    stale_after,
                )
        self.symbol = symbol
        self._wire_symbol = symbol.replace("-", "")
        self.depth = depth
        self.stale_after = stale_after
        self._cap = 2 * depth
        # Units: tick = _pm * 10**-_px, lot = _lm * 10**-_lx. Learnt ones start at 1 and follow
        # the finest text resolution seen (the first snapshot sets them); given ones are kept
        # as long as every value is a whole number of them.
        self._plearn = tick_size is None
        self._llearn = lot_size is None
        self._pm, self._px = (1, 0) if tick_size is None else _unit_of(tick_size, "tick_size")
        self._lm, self._lx = (1, 0) if lot_size is None else _unit_of(lot_size, "lot_size")
        self._bd: dict[int, int] = {}  # bid key (= ticks) -> lots
        self._bk: list[int] = []  # bid keys, ascending (best last)
        self._ad: dict[int, int] = {}  # ask key (= -ticks) -> lots
        self._ak: list[int] = []  # ask keys, ascending (best last)
        self._bc: dict[str, int] = {}  # bid price text -> key (bounded cache)
        self._ac: dict[str, int] = {}  # ask price text -> key (bounded cache)
        self._churn = 0  # insertions since the dicts were last compacted
        # The last best bid / ask handed out: key, lots, Decimal price, (price, size).
        self._bt: int | None = None
        self._bn: int | None = None
        self._bp = Decimal(0)
        self._bv: tuple[Decimal, Decimal] = (self._bp, self._bp)
        self._at: int | None = None
        self._an: int | None = None
        self._ap = Decimal(0)
        self._av: tuple[Decimal, Decimal] = (self._ap, self._ap)
        self._set_units()
        self.is_valid = False
        self.invalid_reason: str | None = _NO_SNAPSHOT
        self._need_snapshot = True  # deltas are ignored until the next snapshot
        self.u = 0
        self.seq: int | None = None
        self.ts: int | None = None
        self.last_update = -math.inf

    # -- feeding -------------------------------------------------------------------------------

    def apply_frame(self, raw: str | bytes, received: float | None = None) -> bool:
        """Decode one ``orderbook.*`` frame (the exact wire text) and apply it.

        Returns :attr:`is_valid` afterwards. A frame that is not a valid orderbook message
        raises :class:`~bybitkit.errors.DecodeError` and leaves the book untouched (a lost delta
        then shows up as a gap on the next one). ``received`` is the ``time.monotonic()`` of
        receipt (default: now)."""
        try:
            msg = _DECODER.decode(raw)
        except _DECODE_ERRORS as exc:
            raise DecodeError("orderbook frame", str(exc), raw) from None
        return self.apply(msg, received)

    def apply(self, msg: OrderbookMessage, received: float | None = None) -> bool:
        """Apply one decoded ``orderbook.*`` message (the rules: see the module docstring).

        Returns :attr:`is_valid` afterwards. ``received`` is the ``time.monotonic()`` of
        receipt (default: now). Raises :class:`ValueError` for another symbol's message and
        :class:`~bybitkit.errors.DecodeError` for an unknown ``type`` (both change nothing) or a
        level whose text is not a decimal number (the book is then invalid, ``"bad frame"``,
        until the next snapshot)."""
        data = msg.data
        if data.s != self._wire_symbol:
            raise ValueError(f"orderbook message for {data.s!r} applied to the {self.symbol} book")
        u = data.u
        kind = msg.type
        if kind == "delta" and u != 1:
            if u != self.u + 1 or self._need_snapshot:
                if not self._need_snapshot:
                    self.invalidate(_GAP)
                return False
            # THE hot loop, written out once per side (no per-level side test). Price: the
            # text -> key cache, else the exact conversion (_key). Size: the fast exact path
            # when the text has exactly the lot's decimals, else the exact slow path (_lots),
            # which may refine the lot, so `lk` is reloaded after it.
            lk = self._lpk
            cap = self._cap
            new = 0  # levels inserted
            try:
                levels = data.b
                if levels:
                    d = self._bd
                    keys = self._bk
                    cache = self._bc
                    for p, q in levels:
                        t = cache.get(p)
                        if t is None:
                            t = self._key(p, cache, False)
                        if q == "0":
                            if d.pop(t, 0):
                                del keys[bisect_left(keys, t)]
                            continue
                        if lk:
                            try:
                                if q[lk] == ".":
                                    n = int(q.replace(".", "", 1))
                                else:
                                    n = self._lots(q)
                                    lk = self._lpk
                            except (IndexError, ValueError):  # short or malformed text
                                n = self._lots(q)
                                lk = self._lpk
                        else:
                            n = self._lots(q)
                            lk = self._lpk
                        if n > 0:
                            if t in d:
                                d[t] = n
                            else:
                                d[t] = n
                                insort(keys, t)
                                new += 1
                        elif n:
                            raise DecodeError("order book level", "negative size", q)
                        elif d.pop(t, 0):
                            del keys[bisect_left(keys, t)]
                    if len(keys) > cap:
                        self._trim(d, keys)
                levels = data.a
                if levels:
                    d = self._ad
                    keys = self._ak
                    cache = self._ac
                    for p, q in levels:
                        t = cache.get(p)
                        if t is None:
                            t = self._key(p, cache, True)
                        if q == "0":
                            if d.pop(t, 0):
                                del keys[bisect_left(keys, t)]
                            continue
                        if lk:
                            try:
                                if q[lk] == ".":
                                    n = int(q.replace(".", "", 1))
                                else:
                                    n = self._lots(q)
                                    lk = self._lpk
                            except (IndexError, ValueError):  # short or malformed text
                                n = self._lots(q)
                                lk = self._lpk
                        else:
                            n = self._lots(q)
                            lk = self._lpk
                        if n > 0:
                            if t in d:
                                d[t] = n
                            else:
                                d[t] = n
                                insort(keys, t)
                                new += 1
                        elif n:
                            raise DecodeError("order book level", "negative size", q)
                        elif d.pop(t, 0):
                            del keys[bisect_left(keys, t)]
                    if len(keys) > cap:
                        self._trim(d, keys)
            except DecodeError:
                self.invalidate(_BAD_FRAME)
                raise
            if new:  # only insertions use up dict slots (see the module docstring)
                new += self._churn
                if new > self.depth:
                    self._bd = dict(self._bd)  # copies into compact dicts
                    self._ad = dict(self._ad)
                    new = 0
                self._churn = new
        elif kind == "snapshot" or kind == "delta":  # a snapshot, or u == 1: a restart
            try:
                self._snapshot(data.b, data.a)
            except DecodeError:
                self.invalidate(_BAD_FRAME)
                raise
            self._need_snapshot = False
        else:
            raise DecodeError("orderbook message", f"unknown type {kind!r}", None)
        self.u = u
        self.seq = data.seq
        self.ts = msg.ts
        self.last_update = _monotonic() if received is None else received
        bk = self._bk
        ak = self._ak
        if bk and ak and bk[-1] >= -ak[-1]:
            self.is_valid = False
            self.invalid_reason = _CROSSED
            return False
        self.is_valid = True
        self.invalid_reason = None
        return True

    def invalidate(self, reason: str) -> None:
        """Mark the book invalid (e.g. the connection dropped): deltas are ignored and it stays
        invalid until the next snapshot. Its last levels stay readable."""
        self.is_valid = False
        self.invalid_reason = reason
        self._need_snapshot = True

    def _key(self, text: str, cache: dict[str, int], ask: bool) -> int:
        """The key of a price text on one side (a cache miss): exact conversion, then cached.
        A full cache is emptied (the prices near the top refill it at once)."""
        pk = self._ppk
        try:
            t = int(text.replace(".", "", 1)) if pk and text[pk] == "." else self._ticks(text)
        except (IndexError, ValueError):  # short or malformed text: the strict slow path
            t = self._ticks(text)
        key = -t if ask else t
        if len(cache) >= _PRICE_CACHE:
            cache.clear()
        cache[text] = key
        return key

    def _snapshot(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        ticks = self._ticks
        lots = self._lots_any
        self._bd.clear()
        self._ad.clear()
        self._churn = 0
        sides = ((bids, self._bd, self._bk, 1), (asks, self._ad, self._ak, -1))
        for levels, d, keys, sign in sides:
            for p, q in levels:
                t = ticks(p)
                n = lots(q)
                if n > 0:
                    d[t * sign] = n
                elif n:
                    raise DecodeError("order book level", "negative size", q)
            keys[:] = sorted(d)
            if len(keys) > self._cap:
                self._trim(d, keys)

    def _trim(self, d: dict[int, int], keys: list[int]) -> None:
        """Drop the far end of a side that grew beyond ``2 * depth`` levels."""
        excess = len(keys) - self._cap
        for k in keys[:excess]:
            del d[k]
        del keys[:excess]

    # -- exact text -> integer conversion ------------------------------------------------------

    def _ticks(self, text: str) -> int:
        """Exact tick count of a price text (fast path when it has the tick's decimals)."""
        pk = self._ppk
        if pk:
            try:
                if text[pk] == ".":
                    return int(text.replace(".", "", 1))
            except (IndexError, ValueError):  # short or malformed text: the strict slow path
                pass
        n, dec = _split(text)
        m, x = self._pm, self._px
        if dec > x:
            if self._plearn:  # a learnt tick follows the finest text resolution
                self._refine_prices(dec)
                return n
            q, r = divmod(n, m * _p10(dec - x))
        else:
            q, r = divmod(n * _p10(x - dec), m)
        if not r:
            return q
        self._refine_prices(dec if dec > x else x)  # off the given grid
        return n * _p10(self._px - dec)

    def _lots_any(self, text: str) -> int:
        """Exact lot count of a size text (fast path when it has the lot's decimals)."""
        lk = self._lpk
        if lk:
            try:
                if text[lk] == ".":
                    return int(text.replace(".", "", 1))
            except (IndexError, ValueError):  # short or malformed text: the strict slow path
                pass
        return self._lots(text)

    def _lots(self, text: str) -> int:
        """Exact lot count of a size text (the slow path; refines the lot when it must)."""
        if text == "0":
            return 0
        n, dec = _split(text)
        m, x = self._lm, self._lx
        if dec > x:
            if self._llearn:  # a learnt lot follows the finest text resolution
                self._refine_lots(dec)
                return n
            q, r = divmod(n, m * _p10(dec - x))
        else:
            q, r = divmod(n * _p10(x - dec), m)
        if not r:
            return q
        self._refine_lots(dec if dec > x else x)  # off the given grid
        return n * _p10(self._lx - dec)

    def _set_units(self) -> None:
        self._ppk = _fast_index(self._pm, self._px)
        self._lpk = _fast_index(self._lm, self._lx)
        self._punit = Decimal(self._pm).scaleb(-self._px, _EXACT)
        self._lunit = Decimal(self._lm).scaleb(-self._lx, _EXACT)
        self._bt = self._bn = self._at = self._an = None  # forget the Decimals handed out

    def _refine_prices(self, x: int) -> None:
        """Make the tick ``10**-x`` (it divides the current tick); rescale the stored ticks."""
        f = self._pm * _p10(x - self._px)
        for d, keys in ((self._bd, self._bk), (self._ad, self._ak)):
            items = list(d.items())
            d.clear()
            d.update([(k * f, v) for k, v in items])
            keys[:] = [k * f for k in keys]
        self._bc.clear()
        self._ac.clear()
        self._pm, self._px = 1, x
        self._set_units()

    def _refine_lots(self, x: int) -> None:
        """Make the lot ``10**-x`` (it divides the current lot); rescale the stored lots."""
        f = self._lm * _p10(x - self._lx)
        for d in (self._bd, self._ad):
            for k in d:
                d[k] *= f
        self._lm, self._lx = 1, x
        self._set_units()

    # -- units ---------------------------------------------------------------------------------

    @property
    def tick_size(self) -> Decimal:
        """The price unit of the integer accessors (learnt: the price text resolution)."""
        return self._punit

    @property
    def lot_size(self) -> Decimal:
        """The size unit of the integer accessors (learnt: the size text resolution)."""
        return self._lunit

    def ticks_to_price(self, ticks: int) -> Decimal:
        """An integer tick count as an exact price (``ticks * tick_size``)."""
        return _EXACT.multiply(ticks, self._punit)

    def lots_to_size(self, lots: int) -> Decimal:
        """An integer lot count as an exact size (``lots * lot_size``)."""
        return _EXACT.multiply(lots, self._lunit)

    # -- state ---------------------------------------------------------------------------------

    @property
    def age(self) -> float:
        """Seconds since the last applied message was received (``inf`` before the first)."""
        return _monotonic() - self.last_update

    @property
    def is_stale(self) -> bool:
        """True when ``stale_after`` is set and :attr:`age` exceeds it."""
        limit = self.stale_after
        return limit is not None and _monotonic() - self.last_update > limit

    @property
    def is_usable(self) -> bool:
        """Valid and not stale: the only state a strategy may quote from."""
        return self.is_valid and not self.is_stale

    @property
    def bid_count(self) -> int:
        """Number of bid levels."""
        return len(self._bk)

    @property
    def ask_count(self) -> int:
        """Number of ask levels."""
        return len(self._ak)

    def __repr__(self) -> str:
        state = "valid" if self.is_valid else f"invalid: {self.invalid_reason}"
        return (
            f"OrderBook({self.symbol}, depth={self.depth}, {len(self._bk)} bids, "
            f"{len(self._ak)} asks, u={self.u}, {state})"
        )

    # -- integer queries (hot callers) ---------------------------------------------------------

    def best_bid_ticks(self) -> tuple[int, int] | None:
        """Best bid as ``(price ticks, size lots)``; ``None`` if there is no bid."""
        keys = self._bk
        if keys:
            t = keys[-1]
            return t, self._bd[t]
        return None

    def best_ask_ticks(self) -> tuple[int, int] | None:
        """Best ask as ``(price ticks, size lots)``; ``None`` if there is no ask."""
        keys = self._ak
        if keys:
            k = keys[-1]
            return -k, self._ad[k]
        return None

    def bid_ticks(self, n: int | None = None) -> list[tuple[int, int]]:
        """The top ``n`` bids (all if ``None``), best first, as ``(ticks, lots)``."""
        d = self._bd
        keys = self._bk
        top = keys[::-1] if n is None else keys[: -n - 1 : -1] if n > 0 else []
        return [(k, d[k]) for k in top]

    def ask_ticks(self, n: int | None = None) -> list[tuple[int, int]]:
        """The top ``n`` asks (all if ``None``), best first, as ``(ticks, lots)``."""
        d = self._ad
        keys = self._ak
        top = keys[::-1] if n is None else keys[: -n - 1 : -1] if n > 0 else []
        return [(-k, d[k]) for k in top]

    # -- Decimal queries -----------------------------------------------------------------------

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        """Best bid as ``(price, size)``; ``None`` only if there is no bid."""
        keys = self._bk
        if not keys:
            return None
        t = keys[-1]
        n = self._bd[t]
        # The same objects as last time are the same values (a new, equal object just misses).
        if n is self._bn and t is self._bt:
            return self._bv
        if t != self._bt:
            self._bt = t
            self._bp = _EXACT.multiply(t, self._punit)
        self._bn = n
        v = self._bv = (self._bp, _EXACT.multiply(n, self._lunit))
        return v

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        """Best ask as ``(price, size)``; ``None`` only if there is no ask."""
        keys = self._ak
        if not keys:
            return None
        k = keys[-1]
        n = self._ad[k]
        if n is self._an and k is self._at:
            return self._av
        if k != self._at:
            self._at = k
            self._ap = _EXACT.multiply(-k, self._punit)
        self._an = n
        v = self._av = (self._ap, _EXACT.multiply(n, self._lunit))
        return v

    def mid(self) -> Decimal | None:
        """``(best bid + best ask) / 2``, exact; ``None`` if a side is empty."""
        if not self._bk or not self._ak:
            return None
        return _EXACT.divide(self.ticks_to_price(self._bk[-1] - self._ak[-1]), Decimal(2))

    def spread(self) -> Decimal | None:
        """``best ask - best bid``, exact; ``None`` if a side is empty."""
        if not self._bk or not self._ak:
            return None
        return self.ticks_to_price(-self._ak[-1] - self._bk[-1])

    def bids(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """The top ``n`` bids (all if ``None``), best first, as ``(price, size)``."""
        return [(self.ticks_to_price(t), self.lots_to_size(q)) for t, q in self.bid_ticks(n)]

    def asks(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """The top ``n`` asks (all if ``None``), best first, as ``(price, size)``."""
        return [(self.ticks_to_price(t), self.lots_to_size(q)) for t, q in self.ask_ticks(n)]

    def depth_volume(self, side: BookSide, levels: int | None = None) -> Decimal:
        """Total size resting in the top ``levels`` levels of ``side`` (all if ``None``)."""
        if side == "bid":
            top = self.bid_ticks(levels)
        elif side == "ask":
            top = self.ask_ticks(levels)
        else:
            raise ValidationError("side", "'bid' or 'ask'", side)
        return self.lots_to_size(sum(q for _, q in top))

    def vwap(self, side: TakerSide, volume: Decimal) -> Decimal | None:
        """Average price paid (``buy``, walking the asks up) or received (``sell``, walking the
        bids down) to trade ``volume`` against the book now; ``None`` if it holds less.

        Exact: the notional is summed exactly in integers and divided once by ``volume``; the
        quotient is exact whenever it terminates within 28 significant digits, else correctly
        rounded (half even) to 28 digits. :meth:`notional` gives the exact total."""
        walk = self._walk(side, volume)
        if walk is None:
            return None
        notional, units, _, _ = walk
        q = _QUOTIENT.divide(Decimal(notional * self._pm), Decimal(units))
        return q.scaleb(-self._px, _QUOTIENT)

    def notional(self, side: TakerSide, volume: Decimal) -> Decimal | None:
        """Exact total price of trading ``volume`` now: the sum of price * size over the levels
        taken (the last one partially); ``None`` if the book holds less than ``volume``."""
        walk = self._walk(side, volume)
        if walk is None:
            return None
        notional, _, scale, _ = walk
        return Decimal(notional * self._pm).scaleb(-(self._px + scale), _EXACT)

    def price_for_volume(self, side: TakerSide, volume: Decimal) -> Decimal | None:
        """The worst price reached when trading ``volume`` now: the price of the last level a
        ``buy`` (walking the asks up) or a ``sell`` (walking the bids down) touches. A limit
        order at this price would fill ``volume`` against the current book. ``None`` if the
        book holds less than ``volume``."""
        walk = self._walk(side, volume)
        return None if walk is None else self.ticks_to_price(walk[3])

    def _walk(self, side: TakerSide, volume: Decimal) -> tuple[int, int, int, int] | None:
        """Take ``volume`` from the book, best level first, without changing it.

        Returns ``(notional, units, scale, last)``: sizes are counted in ``10**-scale`` units
        (fine enough for both ``volume`` and the lot), ``units`` is ``volume`` in those units,
        ``notional`` is sum(ticks * units taken) and ``last`` the ticks of the last level
        touched; ``None`` when the book holds less than ``volume``."""
        if side == "buy":
            levels = self.ask_ticks()
        elif side == "sell":
            levels = self.bid_ticks()
        else:
            raise ValidationError("side", "'buy' or 'sell'", side)
        vol = to_decimal(volume, "volume")
        if vol <= 0:
            raise ValidationError("volume", "a positive size", volume)
        _, digits, exp = vol.as_tuple()
        assert isinstance(exp, int)
        n = int("".join(map(str, digits)))
        dec = -exp if exp < 0 else 0
        if exp > 0:
            n *= _p10(exp)
        scale = max(dec, self._lx)
        remaining = units = n * _p10(scale - dec)
        per_lot = self._lm * _p10(scale - self._lx)
        notional = 0
        for ticks, lots in levels:
            size = lots * per_lot
            if size >= remaining:
                return notional + ticks * remaining, units, scale, ticks
            notional += ticks * size
            remaining -= size
        return None
