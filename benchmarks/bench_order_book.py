"""Order book hot path: decode + apply + read best bid/ask after every frame.

A realistic ``orderbook.200.BTCUSDT`` linear stream is generated as the JSON text Bybit sends
(prices with 2 decimals such as ``"68804.10"`` on a 0.10 tick, sizes such as ``"0.250"``): one
snapshot of 200 levels per side, then deltas of 1-10 level changes clustered near the top (about
a quarter deletes, the rest inserts and updates), the mid drifting with a random walk, ``u`` +1
and ``seq`` rising. As on Bybit, the 200-level window stays full: a level deleted inside it
brings one in at the far end, an insert pushes the far one out.

1. Exactness first: our top of book is checked frame by frame against a plain reference book
   (dict of Decimal + sorted), and the whole book at the end; each baseline's top of book is
   checked against ours after every frame too, so the candidates do the same work.
2. Frames per second, side by side in one process (interleaved rounds, median), for
   * ours: ``OrderBook.apply_frame`` + ``best_bid()`` / ``best_ask()`` (exact Decimals), and
     the same with the integer accessors ``best_bid_ticks()`` / ``best_ask_ticks()``;
   * ccxt pro: what its WebSocket client does per text message (``Client.handle_message``:
     ``last_message_at``, ``is_json_encoded_object``, its JSON parser, orjson when installed as
     here; then ``bybit.handle_message``: topic routing -> ``handle_order_book`` ->
     ``parse_order_book`` + ``OrderBook.reset`` or ``handle_deltas``, ``client.resolve``), then
     ``bids[0]`` / ``asks[0]``. Left out, which only flatters ccxt: the asyncio future a
     ``watch_order_book`` caller waits on and the ``limit()`` it returns;
   * nautilus_trader: what its Bybit data client does per message (the frames as the bytes its
     websocket client hands over): the general msgspec decode (topic routing), the
     ``BybitWsOrderbookDepthMsg`` decode, the instrument id and cache lookup,
     ``parse_to_deltas`` (``Price``/``Quantity``, ``OrderBookDelta`` objects), then
     ``OrderBook.apply_deltas`` on a ``nautilus_trader.model.book.OrderBook`` (L2_MBP), as its
     data engine does, and ``best_bid_price/size()`` / ``best_ask_price/size()``. Left out,
     which only flatters nautilus: the message-bus hops to and inside its data engine.
   Targets: >= 3x nautilus, >= 5x ccxt.
3. Memory: 500 live books of 200 levels per side, each after its snapshot and 300 deltas
   (tracemalloc). Target <= 30 MiB.

The baselines are the optional ``bench`` extra (``pip install -e '.[bench]'``); a missing one is
skipped with a message. ``--frames N`` shortens the stream (default 200,000 deltas),
``--skip-memory`` skips part 3. Writes ``benchmarks/results/order_book.json``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tracemalloc
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from benchmarks._common import compare, write_results
from bybitkit.market import OrderBook

SYMBOL = "BTCUSDT"
DEPTH = 200
TICK = 10  # BTCUSDT linear: tick 0.10 = 10 units of the 0.01 text resolution
MiB = 1024 * 1024


# -- the stream ----------------------------------------------------------------------------------


def _price(units: int) -> str:
    """Price text as Bybit writes it for BTCUSDT: two decimals (``"68804.10"``)."""
    return f"{units // 100}.{units % 100:02d}"


def _size(lots: int) -> str:
    """Size text with three decimals (``"0.250"``)."""
    return f"{lots // 1000}.{lots % 1000:03d}"


def _levels(changes: dict[int, int], descending: bool) -> str:
    items = sorted(changes.items(), reverse=descending)
    return ",".join(f'["{_price(p)}","{_size(q) if q else "0"}"]' for p, q in items)


def _frame(symbol: str, kind: str, ts: int, bids: str, asks: str, u: int, seq: int) -> str:
    # Key order of linear depth>1 messages (REFERENCE §12.1): topic, type, ts, data, cts.
    return (
        f'{{"topic":"orderbook.{DEPTH}.{symbol}","type":"{kind}","ts":{ts},"data":{{"s":"{symbol}",'
        f'"b":[{bids}],"a":[{asks}],"u":{u},"seq":{seq}}},"cts":{ts - 2}}}'
    )


def _random_lots(rng: random.Random) -> int:
    return 1 + int(rng.expovariate(1 / 1500))


class _GenSide:
    """One side of the generator's book: prices (0.01 units) -> lots, with the keys sorted
    best last (a bid's key is its price, an ask's key minus its price), and the changes of the
    frame being built (``out``: price -> lots, 0 = delete)."""

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.lots: dict[int, int] = {}
        self.keys: list[int] = []
        self.out: dict[int, int] = {}
        self.born: set[int] = set()  # levels this frame created (a delete just forgets them)

    def begin(self) -> None:
        self.out = {}
        self.born = set()

    def best(self) -> int:
        return self.sign * self.keys[-1]

    def worst(self) -> int:
        return self.sign * self.keys[0]

    def at(self, k: int) -> int:
        """The price ``k`` levels from the top (the worst one if there are fewer)."""
        return self.sign * self.keys[max(-len(self.keys), -1 - k)]

    def put(self, price: int, lots: int) -> None:
        if price not in self.lots:
            insort(self.keys, self.sign * price)
            if price not in self.out:
                self.born.add(price)
        self.lots[price] = self.out[price] = lots

    def drop(self, price: int) -> None:
        del self.keys[bisect_left(self.keys, self.sign * price)]
        del self.lots[price]
        if price in self.born:
            self.born.discard(price)
            del self.out[price]
        else:
            self.out[price] = 0


def _seed_side(rng: random.Random, side: _GenSide, best: int) -> None:
    """DEPTH levels from ``best`` outwards: dense near the top, with holes further out."""
    price = best
    while len(side.lots) < DEPTH:
        side.put(price, _random_lots(rng))
        price -= side.sign * TICK * (1 if len(side.lots) < 20 else rng.randint(1, 3))


def generate(deltas: int, seed: int = 7, symbol: str = SYMBOL, fair: int = 6_880_405) -> list[str]:
    """One snapshot, then ``deltas`` delta frames of a 200-level window that Bybit keeps full.

    A fair price (half a tick off the 0.10 grid) takes a random walk; levels it moves through
    are deleted. Each delta then carries 1-10 changes at levels clustered near the top: size
    updates, deletes and inserts (inserts take the first free tick at or outside a point near
    the top, so they often improve the best). As on Bybit, the 200-level window stays full: a
    level deleted inside it brings one in at the far end, an insert pushes the far one out."""
    rng = random.Random(seed)
    fair -= fair % TICK - TICK // 2  # half a tick between the grid prices (68804.05)
    bids, asks = _GenSide(1), _GenSide(-1)
    _seed_side(rng, bids, fair - TICK // 2)
    _seed_side(rng, asks, fair + TICK // 2)
    u, seq, ts = 1_000_000, 50_000_000_000, 1_700_000_000_000
    frames = [
        _frame(symbol, "snapshot", ts, _levels(bids.lots, True), _levels(asks.lots, False), u, seq)
    ]

    def delete(side: _GenSide, price: int) -> None:
        side.drop(price)
        # the level that enters the 200-level window at the far end
        side.put(side.worst() - side.sign * TICK * rng.randint(1, 3), _random_lots(rng))

    for _ in range(deltas):
        u += 1
        seq += rng.randint(1, 40)
        ts += rng.randint(1, 20)
        bids.begin()
        asks.begin()
        r = rng.random()
        fair += -TICK if r < 0.15 else TICK if r < 0.3 else 0
        for side in (bids, asks):
            while side.sign * (fair - side.best()) < 0:  # the fair price moved through it
                delete(side, side.best())
        wanted = rng.randint(1, 10)
        while len(bids.out) + len(asks.out) < wanted:
            side = bids if rng.random() < 0.5 else asks
            k = int(rng.expovariate(1 / 5))  # levels from the top: clustered near it
            # a delete or an insert is two changes (one level enters or leaves at the far end)
            op = rng.random() if len(bids.out) + len(asks.out) < wanted - 1 else 1.0
            if op < 0.17:  # delete a resting level
                price = side.at(k)
                if price not in side.out:
                    delete(side, price)
            elif op < 0.34:  # insert at the first free tick at or outside a point near the top
                price = fair - side.sign * (TICK // 2 + TICK * int(rng.expovariate(1 / 3)))
                while price in side.lots:
                    price -= side.sign * TICK
                side.put(price, _random_lots(rng))
                side.drop(side.worst())  # pushed out of the 200-level window
            else:  # a new size at a resting level
                side.put(side.at(k), _random_lots(rng))
        frames.append(
            _frame(symbol, "delta", ts, _levels(bids.out, True), _levels(asks.out, False), u, seq)
        )
    return frames


# -- the plain reference ---------------------------------------------------------------------------


class ReferenceBook:
    """Dict of Decimal plus sorted lists: obviously right, not fast."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, msg: dict[str, Any]) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for book, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                price, size = Decimal(p), Decimal(q)
                if size == 0:
                    book.pop(price, None)
                else:
                    book[price] = size

    def top(self) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
        bid = max(self.bids)
        ask = min(self.asks)
        return (bid, self.bids[bid]), (ask, self.asks[ask])


def check_exact(frames: list[str]) -> None:
    """Our top of book equals the reference after every frame; the full book at the end."""
    import json

    ours = OrderBook(SYMBOL, depth=DEPTH)
    ref = ReferenceBook()
    for i, frame in enumerate(frames):
        assert ours.apply_frame(frame), (i, ours.invalid_reason)
        ref.apply(json.loads(frame))
        (rb, rbs), (ra, ras) = ref.top()
        assert (ours.best_bid(), ours.best_ask()) == ((rb, rbs), (ra, ras)), i
        bt, at = ours.best_bid_ticks(), ours.best_ask_ticks()
        assert bt is not None and at is not None
        assert ours.ticks_to_price(bt[0]) == rb and ours.ticks_to_price(at[0]) == ra, i
    assert ours.bids() == sorted(ref.bids.items(), reverse=True)
    assert ours.asks() == sorted(ref.asks.items())


# -- the candidates --------------------------------------------------------------------------------

Runner = Callable[[], object]
Top = tuple[float, float, float, float]  # bid, bid size, ask, ask size


def ours_runner(frames: list[str]) -> Runner:
    book = OrderBook(SYMBOL, depth=DEPTH)

    def run() -> object:
        apply = book.apply_frame
        best_bid = book.best_bid
        best_ask = book.best_ask
        for frame in frames:
            apply(frame)
            best_bid()
            best_ask()
        return book

    return run


def ours_ticks_runner(frames: list[str]) -> Runner:
    book = OrderBook(SYMBOL, depth=DEPTH)

    def run() -> object:
        apply = book.apply_frame
        best_bid = book.best_bid_ticks
        best_ask = book.best_ask_ticks
        for frame in frames:
            apply(frame)
            best_bid()
            best_ask()
        return book

    return run


@dataclass
class Baseline:
    """A baseline's per-frame work: ``step`` (timed: handle one frame as the library does,
    then read the best bid and ask as its users would) over ``inputs`` (the frames in the
    form its websocket client hands them over); ``top`` reads the top as floats, for the
    check only."""

    note: str
    inputs: list[Any]
    step: Callable[[Any], object]
    top: Callable[[], Top]


class _CcxtStubClient:
    """What ``bybit.handle_order_book`` touches on ccxt's WS client: its url and resolve()."""

    url = "wss://stream.bybit.com/v5/public/linear"

    def __init__(self) -> None:
        self.futures: dict[str, Any] = {}

    def resolve(self, result: object, message_hash: str) -> object:
        # ccxt's Client.resolve, minus the verbose log: no future is waiting here.
        if message_hash in self.futures:
            self.futures.pop(message_hash).resolve(result)
        return result


def ccxt_setup(frames: list[str]) -> Baseline:
    import ccxt.pro
    from ccxt.async_support.base.ws import client as ccxt_client
    from ccxt.async_support.base.ws.functions import is_json_encoded_object
    from ccxt.base.exchange import Exchange

    exchange = ccxt.pro.bybit({"enableRateLimit": False})
    # What load_markets() gives for the linear perpetual (no network in a benchmark).
    exchange.set_markets(
        [
            {
                "id": SYMBOL,
                "symbol": "BTC/USDT:USDT",
                "base": "BTC",
                "quote": "USDT",
                "settle": "USDT",
                "baseId": "BTC",
                "quoteId": "USDT",
                "settleId": "USDT",
                "type": "swap",
                "spot": False,
                "margin": False,
                "swap": True,
                "future": False,
                "option": False,
                "contract": True,
                "linear": True,
                "inverse": False,
                "contractSize": 1.0,
                "active": True,
                "precision": {"amount": 0.001, "price": 0.1},
                "limits": {},
                "info": {},
            }
        ]
    )
    client = _CcxtStubClient()
    loads = ccxt_client.json_parser.loads
    milliseconds = Exchange.milliseconds
    handle = exchange.handle_message
    books = exchange.orderbooks
    key = "BTC/USDT:USDT"

    def step(frame: str) -> object:
        # Client.handle_message (last_message_at) -> handle_text_or_binary_message (JSON
        # parse) -> the exchange's on_message callback; then the user reads the top.
        client.last_message_at = milliseconds()
        message = loads(frame) if is_json_encoded_object(frame) else frame
        handle(client, message)
        book = books[key]
        return book["bids"][0], book["asks"][0]

    def top() -> Top:
        book = books[key]
        bid, ask = book["bids"][0], book["asks"][0]
        return bid[0], bid[1], ask[0], ask[1]

    parser = getattr(ccxt_client.json_parser, "__name__", "json")
    return Baseline(f"ccxt {ccxt.__version__}, JSON parser {parser}", frames, step, top)


def nautilus_setup(frames: list[str]) -> Baseline:
    from decimal import Decimal as Dec

    import msgspec
    import nautilus_trader
    from nautilus_trader.adapters.bybit.common.symbol import BybitSymbol
    from nautilus_trader.adapters.bybit.schemas.ws import (
        BybitWsMessageGeneral,
        decoder_ws_orderbook,
    )
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.common.component import LiveClock
    from nautilus_trader.core.datetime import millis_to_nanos
    from nautilus_trader.model.book import OrderBook as NautilusBook
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.enums import BookType
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import CryptoPerpetual
    from nautilus_trader.model.objects import Price, Quantity

    instrument_id = InstrumentId.from_str(f"{SYMBOL}-LINEAR.BYBIT")
    # As its Bybit instrument provider builds it (tickSize "0.10", qtyStep "0.001").
    instrument = CryptoPerpetual(
        instrument_id=instrument_id,
        raw_symbol=Symbol(SYMBOL),
        base_currency=BTC,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=2,
        price_increment=Price.from_str("0.10"),
        size_precision=3,
        size_increment=Quantity.from_str("0.001"),
        margin_init=Dec("0.01"),
        margin_maint=Dec("0.005"),
        maker_fee=Dec("0.0002"),
        taker_fee=Dec("0.00055"),
        ts_event=0,
        ts_init=0,
    )
    cache = Cache()
    cache.add_instrument(instrument)
    general = msgspec.json.Decoder(BybitWsMessageGeneral)
    depth_decoder = decoder_ws_orderbook()
    clock = LiveClock()
    tob_quotes: set[InstrumentId] = set()
    book = NautilusBook(instrument_id, BookType.L2_MBP)

    def step(raw: bytes) -> object:
        # BybitDataClient._handle_ws_message: the general decode routes by topic.
        ws_message = general.decode(raw)
        if "orderbook" not in ws_message.topic:
            raise AssertionError(ws_message.topic)
        # _handle_orderbook
        msg = depth_decoder.decode(raw)
        iid = BybitSymbol(f"{msg.data.s}-LINEAR").to_instrument_id()  # _get_cached_instrument_id
        inst = cache.instrument(iid)
        if iid in tob_quotes:
            raise AssertionError("not a depth-1 stream")
        deltas = msg.data.parse_to_deltas(
            instrument_id=iid,
            price_precision=inst.price_precision,
            size_precision=inst.size_precision,
            ts_event=millis_to_nanos(msg.ts),
            ts_init=clock.timestamp_ns(),
            snapshot=msg.type == "snapshot",
        )
        book.apply_deltas(deltas)  # what its data engine does with them
        return (
            book.best_bid_price(),
            book.best_bid_size(),
            book.best_ask_price(),
            book.best_ask_size(),
        )

    def top() -> Top:
        return (
            book.best_bid_price().as_double(),
            book.best_bid_size().as_double(),
            book.best_ask_price().as_double(),
            book.best_ask_size().as_double(),
        )

    # Its websocket client hands the handler bytes.
    inputs = [f.encode() for f in frames]
    return Baseline(f"nautilus_trader {nautilus_trader.__version__}", inputs, step, top)


def check_baseline(baseline: Baseline, frames: list[str]) -> None:
    """A baseline's top of book agrees with ours after every frame (the work is the same)."""
    ours = OrderBook(SYMBOL, depth=DEPTH)
    for i, (frame, raw) in enumerate(zip(frames, baseline.inputs, strict=True)):
        ours.apply_frame(frame)
        bb, ba = ours.best_bid(), ours.best_ask()
        assert bb is not None and ba is not None
        expect = (float(bb[0]), float(bb[1]), float(ba[0]), float(ba[1]))
        baseline.step(raw)
        got = baseline.top()
        if tuple(round(x, 6) for x in got) != expect:
            raise AssertionError(f"frame {i}: baseline top {got} != {expect}")


def baseline_runner(baseline: Baseline) -> Runner:
    step = baseline.step
    inputs = baseline.inputs

    def run() -> object:
        for x in inputs:
            step(x)
        return None

    return run


# -- memory ----------------------------------------------------------------------------------------


def measure_memory(count: int = 500, deltas: int = 300) -> dict[str, float]:
    """What ``count`` live books hold: each gets a snapshot of 200 levels per side and then
    ``deltas`` deltas (so the per-book price caches are in their steady state)."""
    streams = [
        generate(deltas, seed=1000 + i, symbol=f"SYM{i}USDT", fair=100_000 + 37_000 * i)
        for i in range(count)
    ]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    books = []
    for i, frames in enumerate(streams):
        book = OrderBook(f"SYM{i}USDT", depth=DEPTH)
        for frame in frames:
            book.apply_frame(frame)
            book.best_bid()
            book.best_ask()
        books.append(book)
    gc.collect()
    after = tracemalloc.take_snapshot()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert all(b.is_valid and b.bid_count == b.ask_count == DEPTH for b in books)
    return {
        "books": count,
        "levels_per_side": DEPTH,
        "deltas_per_book": deltas,
        "mib": held / MiB,
        "peak_mib": peak / MiB,
    }


# -- main ------------------------------------------------------------------------------------------


def _optional(name: str, setup: Callable[[list[str]], Baseline], frames: list[str]) -> Any:
    try:
        return setup(frames)
    except ImportError as exc:
        print(f"{name}: skipped ({exc}); install the bench extra: pip install -e '.[bench]'")
    return None


def order_entry_figures(seconds: float = 3.0) -> dict[str, float]:
    """Order entry through the spot connector on the sandbox (loopback): the time from
    ``place_order`` to its acknowledgement, over REST and over the trade WebSocket, measured in
    alternating batches in one process. Create + cancel pairs, so the book stays the same."""
    import asyncio
    import statistics
    import time

    import bybitkit
    from bybitkit.sandbox import Sandbox

    async def run() -> dict[str, float]:
        async with Sandbox(seed=1, simulate=False) as sb:
            sb.rest.uid_limits.check = lambda *a, **k: (0, 0, 0, 1)  # type: ignore[method-assign]
            creds = sb.create_account()
            bid = sb.book("BTCUSDT", "spot", 1)["bids"][0][0]
            price = bid - 100
            samples: dict[str, list[float]] = {"rest": [], "ws": []}
            async with bybitkit.connect(
                "sandbox", credentials=creds, environment=sb.environment, order_entry="ws"
            ) as ex:
                ex.rest.limiter.limit_for = lambda key: None  # type: ignore[method-assign]
                assert ex.trade_ws is not None
                trade_ws = ex.trade_ws
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    for mode in ("rest", "ws"):
                        ex.trade_ws = trade_ws if mode == "ws" else None
                        for _ in range(20):
                            t0 = time.perf_counter()
                            order = await ex.place_order("BTC-USDT", "buy", "limit", "0.001", price)
                            samples[mode].append(time.perf_counter() - t0)
                            await ex.cancel_order(order.client_order_id)
                ex.trade_ws = trade_ws
        rest_p50 = statistics.median(samples["rest"])
        ws_p50 = statistics.median(samples["ws"])
        return {
            "rest_p50_ms": rest_p50 * 1000,
            "ws_p50_ms": ws_p50 * 1000,
            "rest_p99_ms": sorted(samples["rest"])[int(len(samples["rest"]) * 0.99)] * 1000,
            "ws_p99_ms": sorted(samples["ws"])[int(len(samples["ws"]) * 0.99)] * 1000,
            "ws_vs_rest_p50": rest_p50 / ws_p50,
            "orders": float(len(samples["rest"]) + len(samples["ws"])),
        }

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000, help="delta frames")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory figure")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    frames = generate(args.frames)
    changes = sum(f.count('"]') for f in frames[1:])
    deletes = sum(f.count('","0"]') for f in frames[1:])
    size = sum(map(len, frames[1:])) / (len(frames) - 1)
    print(
        f"stream: 1 snapshot + {len(frames) - 1:,} deltas, {changes / (len(frames) - 1):.1f} "
        f"levels per delta, {deletes / changes:.0%} deletes, {size:.0f} bytes per delta"
    )
    check_exact(frames)
    print("exactness: our top of book equals the reference after every frame")

    candidates: dict[str, Runner] = {
        "ours": ours_runner(frames),
        "ours_ticks": ours_ticks_runner(frames),
    }
    notes: dict[str, str] = {}
    for name, setup in (("ccxt", ccxt_setup), ("nautilus", nautilus_setup)):
        baseline = _optional(name, setup, frames)
        if baseline is None:
            continue
        check_baseline(baseline, frames)
        notes[name] = baseline.note
        candidates[name] = baseline_runner(baseline)
        print(f"{name}: {baseline.note}; its top of book agrees with ours after every frame")

    t = compare(candidates, number=1, rounds=args.rounds)
    n = len(frames)
    rates = {name: n / sec for name, sec in t.items()}
    result: dict[str, Any] = {
        "frames": n,
        "frames_per_s": rates,
        "us_per_frame": {name: sec / n * 1e6 for name, sec in t.items()},
        "baselines": notes,
    }
    print(
        f"ours: {rates['ours']:,.0f} frames/s ({t['ours'] / n * 1e6:.2f} us/frame, Decimal "
        f"best bid/ask); {rates['ours_ticks']:,.0f} frames/s with the integer accessors"
    )
    for name, target in (("nautilus", 3.0), ("ccxt", 5.0)):
        if name in t:
            ratio = t[name] / t["ours"]
            result[f"speedup_vs_{name}"] = ratio
            result[f"speedup_vs_{name}_ticks"] = t[name] / t["ours_ticks"]
            print(
                f"{name}: {rates[name]:,.0f} frames/s -> ours is {ratio:.2f}x faster "
                f"({t[name] / t['ours_ticks']:.2f}x with integer reads; target >= {target:g})"
            )
    memory = {} if args.skip_memory else measure_memory()
    result["memory"] = memory
    if memory:
        print(
            f"memory: {memory['books']} books x {memory['levels_per_side']} levels per side "
            f"(after a snapshot and {memory['deltas_per_book']} deltas each) hold "
            f"{memory['mib']:.1f} MiB (tracemalloc; peak {memory['peak_mib']:.1f} MiB; "
            "target <= 30)"
        )
    entry = order_entry_figures()
    result["order_entry"] = entry
    print(
        f"order entry on the sandbox ({entry['orders']:.0f} orders): REST p50 "
        f"{entry['rest_p50_ms']:.2f} ms (p99 {entry['rest_p99_ms']:.2f}), trade WebSocket p50 "
        f"{entry['ws_p50_ms']:.2f} ms (p99 {entry['ws_p99_ms']:.2f}) -> the WebSocket is "
        f"{entry['ws_vs_rest_p50']:.2f}x faster at the median"
    )
    result["targets"] = {
        "speedup_vs_nautilus": ">= 3",
        "speedup_vs_ccxt": ">= 5",
        "memory_mib_500_books": "<= 30",
    }
    path = write_results("order_book", result)
    print(f"written {path.relative_to(path.parent.parent.parent)}")


if __name__ == "__main__":
    main()
