"""Every documentation example decodes into its schema, completely and exactly.

For each ``examples/*.json`` of the reference pack the ``response`` (or, for the two files whose
docs show no server frame, the ``request``) is re-serialised compactly and with spaces, decoded with
:func:`bybitkit.v5.codec.decode`, then walked alongside the JSON: every JSON key must be a field of
the struct at that position, every Decimal must equal ``Decimal(text)`` digit for digit, every
``""`` must have become ``None``.
"""

from __future__ import annotations

import inspect
import json
import pkgutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bybitkit.v5.schemas as schemas_pkg
from bybitkit.errors import DecodeError
from bybitkit.v5.codec import Wire, decode, encode
from bybitkit.v5.schemas import (
    AccountInfo,
    ApiKeyInfo,
    BatchCreateResult,
    BatchExtInfo,
    CancelAllResult,
    DcpInfoResult,
    EmptyResult,
    Envelope,
    Execution,
    ExecutionListResult,
    ExecutionMessage,
    KlineMessage,
    KlineResult,
    LinearInstrumentsResult,
    LinearTickersResult,
    OptionTickersResult,
    OrderbookMessage,
    OrderbookResult,
    OrderIdResult,
    OrderListResult,
    OrderMessage,
    PositionListResult,
    PositionMessage,
    PriceKlineResult,
    PriceLimitMessage,
    PublicTradeMessage,
    SetMarginModeResult,
    SpotInstrumentsResult,
    TickerMessage,
    TradeWsPong,
    TradeWsRequest,
    TradeWsResponse,
    TransactionLogResult,
    WalletBalanceResult,
    WalletMessage,
    WsControl,
    WsRequest,
    decode_result,
)
from bybitkit.v5.schemas.registry import (
    EXAMPLE_SCHEMAS,
    INSTRUMENTS_BY_CATEGORY,
    REST_EXT_INFO_TYPES,
    REST_RESULT_TYPES,
    REST_RESULT_TYPES_BY_CATEGORY,
    SKIPPED_EXAMPLES,
    TICKERS_BY_CATEGORY,
    TRADE_WS_DATA_TYPES,
    rest_result_type,
)
from bybitkit.v5.schemas.ws import MESSAGE_TYPES, topic_family

# --- helpers -----------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _spaced(obj: Any) -> str:
    return json.dumps(obj)


def _normalized(obj: Any) -> Any:
    """What normalisation makes of a JSON value: ``""`` object values become None."""
    if isinstance(obj, dict):
        return {k: None if v == "" else _normalized(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalized(v) for v in obj]
    return obj


_PY_TO_INFO: list[tuple[type, type]] = [
    (bool, mi.BoolType),
    (int, mi.IntType),
    (float, mi.FloatType),
    (Decimal, mi.DecimalType),
    (str, mi.StrType),
    (list, mi.ListType),
    (tuple, mi.TupleType),
    (dict, mi.DictType),
]


def _pick_member(union: mi.UnionType, value: Any, where: str) -> mi.Type:
    """The member of ``union`` that produced the decoded ``value``."""
    members = [m for m in union.types if not isinstance(m, mi.NoneType)]
    for m in members:
        if isinstance(m, mi.StructType) and isinstance(value, m.cls):
            return m
        if isinstance(m, mi.RawType) and isinstance(value, msgspec.Raw):
            return m
        if isinstance(m, mi.AnyType):
            return m
    for py, info in _PY_TO_INFO:
        if type(value) is py:
            for m in members:
                if isinstance(m, info):
                    return m
    raise AssertionError(f"{where}: decoded {value!r} matches no member of {union}")


def check_complete(t: mi.Type, js: Any, val: Any, where: str = "$") -> None:
    """Walk decoded ``val`` (typed ``t``) alongside the JSON ``js`` it came from.

    Fails if a JSON key has no struct field, an array-like row has extra columns, a Decimal is not
    exactly ``Decimal(text)``, or a value changed on the way (``""`` object values must be None).
    """
    if isinstance(t, mi.UnionType):
        if val is None:
            assert js is None, f"{where}: {js!r} decoded to None"
            return
        t = _pick_member(t, val, where)

    if isinstance(t, mi.AnyType):
        assert val == _normalized(js), f"{where}: {val!r} != {js!r}"
    elif isinstance(t, mi.RawType):
        assert isinstance(val, msgspec.Raw), where
        # Raw bytes are kept as received; their own decode normalises them later.
        assert _normalized(json.loads(bytes(val))) == _normalized(js), f"{where}: raw differs"
    elif isinstance(t, mi.StructType):
        fields = t.fields
        if t.array_like:
            assert isinstance(js, list), f"{where}: expected an array, got {js!r}"
            assert len(js) == len(fields), (
                f"{where}: {len(js)} columns in the JSON, {len(fields)} in {t.cls.__name__}"
            )
            for i, (f, item) in enumerate(zip(fields, js, strict=True)):
                check_complete(f.type, item, getattr(val, f.name), f"{where}[{i}]")
            return
        assert isinstance(js, dict), f"{where}: expected an object, got {js!r}"
        by_wire = {f.encode_name: f for f in fields}
        unknown = sorted(set(js) - set(by_wire))
        assert not unknown, f"{where}: {t.cls.__name__} ignores example keys {unknown}"
        for key, item in js.items():
            f = by_wire[key]
            got = getattr(val, f.name)
            if item == "":
                assert got is None, f"{where}.{key}: empty string decoded to {got!r}"
                continue
            check_complete(f.type, item, got, f"{where}.{key}")
    elif isinstance(t, mi.ListType):
        assert isinstance(js, list) and isinstance(val, list), where
        assert len(js) == len(val), where
        for i, (j, v) in enumerate(zip(js, val, strict=True)):
            check_complete(t.item_type, j, v, f"{where}[{i}]")
    elif isinstance(t, mi.TupleType):
        assert isinstance(js, list) and isinstance(val, tuple), where
        assert len(js) == len(val) == len(t.item_types), where
        for i, (it, j, v) in enumerate(zip(t.item_types, js, val, strict=True)):
            check_complete(it, j, v, f"{where}[{i}]")
    elif isinstance(t, mi.DictType):
        assert isinstance(js, dict) and isinstance(val, dict), where
        assert set(js) == set(val), where
        for k, j in js.items():
            check_complete(t.value_type, j, val[k], f"{where}.{k}")
    elif isinstance(t, mi.DecimalType):
        assert isinstance(val, Decimal), f"{where}: {val!r} is not a Decimal"
        assert isinstance(js, str | int), f"{where}: money sent as {type(js).__name__}"
        expected = Decimal(js)
        assert val == expected and val.as_tuple() == expected.as_tuple(), (
            f"{where}: {val!r} is not exactly {js!r}"
        )
    elif isinstance(t, mi.IntType):
        assert type(val) is int, f"{where}: {val!r} is not an int"
        assert val == int(js), f"{where}: {val!r} != {js!r}"
    elif isinstance(t, mi.BoolType):
        assert val is js, f"{where}: {val!r} != {js!r}"
    elif isinstance(t, mi.StrType | mi.FloatType):
        assert val == js, f"{where}: {val!r} != {js!r}"
    elif isinstance(t, mi.NoneType):
        assert js is None and val is None, where
    else:  # pragma: no cover - a type the schemas do not use
        raise AssertionError(f"{where}: unhandled schema type {t!r}")


def _info(type_: Any) -> mi.Type:
    return mi.type_info(type_)


def _decode_rest(text: str, result_type: type[Wire]) -> tuple[Envelope, Any]:
    env = decode(Envelope, text)
    return env, decode_result(result_type, env.result)


def _example(examples_dir: Path, stem: str) -> Any:
    """Decode an example (compact) the way its registry entry says."""
    ex = _load(examples_dir / f"{stem}.json")
    kind, type_ = EXAMPLE_SCHEMAS[stem]
    if kind == "rest":
        return _decode_rest(_compact(ex["response"]), type_)[1]
    if kind == "ws":
        return decode(type_, _compact(ex["response"]))
    assert kind == "ws_request"
    return decode(type_, _compact(ex["request"]))


# --- every example file ------------------------------------------------------------------------


def test_example_has_a_schema(example_file: Path) -> None:
    stem = example_file.stem
    assert (stem in EXAMPLE_SCHEMAS) != (stem in SKIPPED_EXAMPLES), (
        f"{example_file.name}: add it to EXAMPLE_SCHEMAS (or, with a reason, SKIPPED_EXAMPLES)"
    )


def test_registry_names_only_existing_examples(examples_dir: Path) -> None:
    stems = {p.stem for p in examples_dir.glob("*.json")}
    assert set(EXAMPLE_SCHEMAS) <= stems
    assert set(SKIPPED_EXAMPLES) <= stems
    assert set(SKIPPED_EXAMPLES) == {"rest_v5_account_contract_transaction_log"}


@pytest.mark.parametrize("serialise", [_compact, _spaced], ids=["compact", "spaced"])
def test_example_decodes_completely_and_exactly(example_file: Path, serialise: Any) -> None:
    stem = example_file.stem
    if stem in SKIPPED_EXAMPLES:
        pytest.skip(SKIPPED_EXAMPLES[stem])
    ex = _load(example_file)
    kind, type_ = EXAMPLE_SCHEMAS[stem]
    if kind == "rest":
        env, result = _decode_rest(serialise(ex["response"]), type_)
        resp = ex["response"]
        check_complete(_info(Envelope), resp, env)
        check_complete(_info(type_), resp.get("result", {}), result)
        assert env.retCode == resp["retCode"]
    elif kind == "ws":
        assert ex["response"] is not None
        decoded = decode(type_, serialise(ex["response"]))
        check_complete(_info(type_), ex["response"], decoded)
    else:
        assert kind == "ws_request"
        assert ex["response"] is None, "the docs now show a server frame: map it as 'ws'"
        check_complete(_info(type_), ex["request"], decode(type_, serialise(ex["request"])))


_REST_STEMS = sorted(stem for stem, (kind, _) in EXAMPLE_SCHEMAS.items() if kind == "rest")
_WS_FRAME_STEMS = sorted(stem for stem, (kind, _) in EXAMPLE_SCHEMAS.items() if kind == "ws")
_WS_STEMS = sorted(stem for stem in EXAMPLE_SCHEMAS if stem.startswith("ws_"))


@pytest.mark.parametrize("stem", _REST_STEMS)
def test_rest_example_route_maps_to_its_schema(examples_dir: Path, stem: str) -> None:
    """The registry's (method, path[, category]) lookup agrees with the example mapping."""
    ex = _load(examples_dir / f"{stem}.json")
    req = ex["request"]
    if req is None:  # the docs show this response without its own request
        category = ex["response"]["result"]["category"]
        candidates = [table.get(category) for table in REST_RESULT_TYPES_BY_CATEGORY.values()]
        assert EXAMPLE_SCHEMAS[stem][1] in candidates
        return
    params = {**(req.get("query") or {}), **(req.get("body") or {})}
    got = rest_result_type(req["method"], req["path"], params.get("category"))
    assert got is EXAMPLE_SCHEMAS[stem][1]


@pytest.mark.parametrize("stem", _WS_FRAME_STEMS)
def test_ws_frame_examples_dispatch(examples_dir: Path, stem: str) -> None:
    """Data frames map through topic_family/MESSAGE_TYPES, control frames to WsControl."""
    frame = _load(examples_dir / f"{stem}.json")["response"]
    if "topic" in frame:
        assert MESSAGE_TYPES[topic_family(frame["topic"])] is EXAMPLE_SCHEMAS[stem][1]
    elif not stem.startswith("ws_trade_"):
        assert EXAMPLE_SCHEMAS[stem][1] is WsControl


@pytest.mark.parametrize("stem", _WS_STEMS)
def test_ws_example_requests_decode(examples_dir: Path, stem: str) -> None:
    """Client frames of every WS example fit the request structs (used for encoding)."""
    req = _load(examples_dir / f"{stem}.json")["request"]
    type_ = TradeWsRequest if stem.startswith("ws_trade_") else WsRequest
    decoded = decode(type_, _compact(req))
    check_complete(_info(type_), req, decoded)
    assert json.loads(encode(decoded)) == req


# --- registry and conventions ------------------------------------------------------------------


def _schema_structs() -> list[type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}
    for mod_info in pkgutil.iter_modules(schemas_pkg.__path__):
        mod = __import__(f"{schemas_pkg.__name__}.{mod_info.name}", fromlist=["_"])
        for obj in vars(mod).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, msgspec.Struct)
                and obj.__module__.startswith(schemas_pkg.__name__)
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def _types_in(t: mi.Type) -> list[mi.Type]:
    out = [t]
    if isinstance(t, mi.UnionType):
        for m in t.types:
            out += _types_in(m)
    elif isinstance(t, mi.ListType):
        out += _types_in(t.item_type)
    elif isinstance(t, mi.TupleType):
        for m in t.item_types:
            out += _types_in(m)
    elif isinstance(t, mi.DictType):
        out += _types_in(t.key_type) + _types_in(t.value_type)
    return out


def test_struct_conventions() -> None:
    structs = _schema_structs()
    assert len(structs) > 60
    for cls in structs:
        name = cls.__qualname__
        assert issubclass(cls, Wire), f"{name} must subclass Wire"
        params = inspect.signature(cls).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), (
            f"{name} must declare kw_only=True"
        )
        assert cls.__doc__ and cls.__doc__.strip(), f"{name} needs a docstring"
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        for f in info.fields:
            if f.name in ("req_id", "reqId") and cls.__name__ == "WsControl":
                continue  # an echoed req_id may be any JSON scalar
            kinds = _types_in(f.type)
            assert not any(isinstance(k, mi.FloatType) for k in kinds), f"{name}.{f.name} is float"


def test_every_public_name_is_exported() -> None:
    for cls in _schema_structs():
        assert getattr(schemas_pkg, cls.__name__, None) is cls, cls.__name__
        assert cls.__name__ in schemas_pkg.__all__, cls.__name__
    for name in schemas_pkg.__all__:
        assert hasattr(schemas_pkg, name), name


def test_registry_tables() -> None:
    assert INSTRUMENTS_BY_CATEGORY["inverse"] is LinearInstrumentsResult
    assert INSTRUMENTS_BY_CATEGORY["spot"] is SpotInstrumentsResult
    assert TICKERS_BY_CATEGORY["linear"] is LinearTickersResult
    assert TICKERS_BY_CATEGORY["option"] is OptionTickersResult
    assert ("GET", "/v5/market/tickers") not in REST_RESULT_TYPES
    assert rest_result_type("get", "/v5/market/tickers", "inverse") is LinearTickersResult
    assert rest_result_type("POST", "/v5/order/create") is OrderIdResult
    with pytest.raises(KeyError):
        rest_result_type("GET", "/v5/market/instruments-info")
    with pytest.raises(KeyError):
        rest_result_type("GET", "/v5/market/instruments-info", "futures")
    for route in REST_EXT_INFO_TYPES:
        assert route in REST_RESULT_TYPES
    for path in ("/v5/market/mark-price-kline", "/v5/market/index-price-kline"):
        assert REST_RESULT_TYPES[("GET", path)] is PriceKlineResult


def test_topic_family() -> None:
    assert topic_family("orderbook.50.BTCUSDT") == "orderbook"
    assert topic_family("order.spot") == "order"
    assert topic_family("execution.fast.linear") == "execution"
    assert topic_family("wallet") == "wallet"
    assert topic_family("publicTrade.BTC") == "publicTrade"
    assert set(MESSAGE_TYPES) == {
        "orderbook",
        "publicTrade",
        "tickers",
        "kline",
        "priceLimit",
        "order",
        "execution",
        "position",
        "wallet",
    }


# --- key fields of selected examples -----------------------------------------------------------


def test_order_realtime(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_order_realtime")
    assert isinstance(res, OrderListResult)
    o = res.list[0]
    assert o.orderId == "fd4300ae-7847-404e-b947-b46980a4d140"
    assert o.price == Decimal("1600.00") and str(o.price) == "1600.00"
    assert o.cumExecQty == Decimal("0.00")
    assert o.positionIdx == 1
    assert o.orderStatus == "New"
    assert o.createdTime == 1684738540559
    assert o.cumFeeDetail == {"MNT": Decimal("0.00242968")}
    assert o.orderIv is None and o.lastPriceOnCreated is None and o.smpOrderId is None
    assert res.nextPageCursor and res.category == "linear"


def test_order_history_post_only_cancel(examples_dir: Path) -> None:
    o = _example(examples_dir, "rest_v5_order_history").list[0]
    assert o.rejectReason == "EC_PostOnlyWillTakeLiquidity"
    assert o.extraFees is None and o.rpiTakerAccess is False
    assert o.rpiMatchedQty == Decimal("0")


def test_execution_list(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_execution_list")
    assert isinstance(res, ExecutionListResult)
    e = res.list[0]
    assert e.execId == "e0cbe81d-0f18-5866-9415-cf319b5dab3b"
    assert e.execFee == Decimal("0.071409")
    assert e.isMaker is False
    assert e.seq == 4688002127
    assert e.execTime == 1672282722429
    assert e.closedSize is None and e.extraFees is None


def test_pre_upgrade_funding_execution_uses_the_same_struct(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_pre_upgrade_execution_list_funding")
    e = res.list[0]
    assert type(e) is Execution
    assert e.execType == "Funding" and e.orderType == "UNKNOWN"
    assert e.execFee == Decimal("0.6364003")
    assert e.feeRate == Decimal("0.00203714")
    assert e.execValue == Decimal("312.3989")
    assert e.execFee == (e.execValue * e.feeRate).quantize(Decimal("0.0000001"))
    assert e.execTime == 1682553600000


def test_ws_execution_extra_fees(examples_dir: Path) -> None:
    msg = _example(examples_dir, "ws_execution")
    assert isinstance(msg, ExecutionMessage)
    e = msg.data[0]
    assert e.extraFees is not None and e.extraFees[0].fee == Decimal("0.006403779")
    assert e.execPnl == Decimal("0.05") and e.isLeverage == "0"
    assert msg.creationTime == 1746270400355


def test_wallet_balance(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_account_wallet_balance")
    assert isinstance(res, WalletBalanceResult)
    acct = res.list[0]
    assert acct.accountType == "UNIFIED"
    assert acct.totalEquity == Decimal("3.31216591")
    coin = acct.coin[0]
    assert coin.coin == "BTC"
    assert coin.walletBalance == Decimal("0")
    assert coin.borrowAmount is not None and str(coin.borrowAmount) == "0.0"
    assert coin.spotHedgingQty == Decimal("0.01592413")
    assert coin.collateralSwitch is True


def test_ws_wallet_empty_values(examples_dir: Path) -> None:
    msg = _example(examples_dir, "ws_wallet")
    assert isinstance(msg, WalletMessage)
    coin = msg.data[0].coin[0]
    assert coin.totalOrderIM is None and coin.availableToBorrow is None
    assert coin.cumRealisedPnl == Decimal("-0.00000973")


def test_position_list(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_position_list")
    assert isinstance(res, PositionListResult)
    p = res.list[0]
    assert p.positionIdx == 0 and type(p.positionIdx) is int
    assert p.avgPrice == Decimal("27464.50441675")
    assert p.size == Decimal("300") and p.side == "Sell"
    assert p.liqPrice is None and p.mmrSysUpdateTime is None
    assert p.seq == 5723621632
    assert p.updatedTime == 1697673600012


def test_ws_position_flat_hedge_side(examples_dir: Path) -> None:
    msg = _example(examples_dir, "ws_position")
    assert isinstance(msg, PositionMessage)
    p = msg.data[0]
    assert p.positionIdx == 2 and p.side is None and p.size == Decimal("0")
    assert p.entryPrice == Decimal("0") and p.avgPrice is None


def test_orderbook_ws_snapshot_and_delta(examples_dir: Path) -> None:
    snap = _example(examples_dir, "ws_orderbook_snapshot")
    assert isinstance(snap, OrderbookMessage)
    assert snap.type == "snapshot" and snap.cts == 1672304484976
    assert snap.data.u == 18521288 and snap.data.seq == 7961638724
    assert snap.data.b[0] == ("16493.50", "0.006")
    assert snap.data.a[1] == ("16612.00", "0.213")
    delta = _example(examples_dir, "ws_orderbook_delta")
    assert delta.type == "delta" and delta.data.u == 177400507
    assert delta.data.b[-1] == ("30240.00", "0")
    assert all(isinstance(x, str) for lvl in delta.data.a for x in lvl)


def test_orderbook_rest(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_market_orderbook")
    assert isinstance(res, OrderbookResult)
    assert res.a == [("65557.7", "16.606555")] and res.b == [("65485.47", "47.081829")]
    assert res.u == 230704 and res.cts == 1716863718905


def test_kline_rows(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_market_kline")
    assert isinstance(res, KlineResult)
    row = res.list[0]
    assert row.start == 1670608800000 and type(row.start) is int
    assert len(msgspec.structs.fields(row)) == 7
    assert row.turnover == Decimal("15.74462667") and row.volume == Decimal("268611")
    assert [r.start for r in res.list] == [1670608800000, 1670605200000, 1670601600000]


def test_mark_kline_five_columns(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_market_mark_price_kline")
    assert isinstance(res, PriceKlineResult)
    row = res.list[0]
    assert len(msgspec.structs.fields(row)) == 5
    assert row.close == Decimal("17131.64")
    prem = _example(examples_dir, "rest_v5_market_premium_index_price_kline")
    assert prem.list[0].open == Decimal("-0.000587")


def test_seven_column_row_does_not_fit_the_five_column_struct(examples_dir: Path) -> None:
    """msgspec ignores extra trailing array items; the completeness walker must catch them."""
    ex = _load(examples_dir / "rest_v5_market_kline.json")
    wrong = decode(PriceKlineResult, _compact(ex["response"]["result"]))
    with pytest.raises(AssertionError, match="columns"):
        check_complete(_info(PriceKlineResult), ex["response"]["result"], wrong)


def test_tickers(examples_dir: Path) -> None:
    res = _example(examples_dir, "rest_v5_market_tickers")
    assert isinstance(res, LinearTickersResult)
    t = res.list[0]
    assert t.fundingRate == Decimal("0.0001")
    assert t.nextFundingTime == 1760371200000 and type(t.nextFundingTime) is int
    assert t.deliveryTime == 0 and t.fundingIntervalHour == 8 and t.basis is None
    ws = _example(examples_dir, "ws_tickers_linear")
    assert isinstance(ws, TickerMessage)
    assert ws.data.fundingRate == Decimal("-0.005") and ws.data.nextFundingTime == 1760342400000
    assert ws.cs == 9532239429
    fut = _example(examples_dir, "ws_tickers_linear_futures")
    assert fut.data.deliveryTime == "2025-12-26T08:00:00Z"
    assert fut.data.fundingRate is None and fut.data.basis == Decimal("-4730.84")
    opt = _example(examples_dir, "ws_tickers_option")
    assert opt.data.markPriceIv == Decimal("0.4896") and opt.id is not None


def test_instruments(examples_dir: Path) -> None:
    lin = _example(examples_dir, "rest_v5_market_instruments_info").list[0]
    assert lin.priceFilter.tickSize == Decimal("0.10")
    assert lin.lotSizeFilter.qtyStep == Decimal("0.001")
    assert lin.fundingInterval == 480 and lin.priceScale == 2 and lin.preListingInfo is None
    pre = _example(examples_dir, "rest_v5_market_instruments_info_linear_prelisting").list[0]
    assert pre.isPreListing is True
    assert pre.preListingInfo.phases[-1].endTime is None
    assert pre.preListingInfo.auctionFeeInfo.takerFeeRate == Decimal("0.001")
    spot = _example(examples_dir, "rest_v5_market_instruments_info_spot").list[0]
    assert spot.lotSizeFilter.minOrderAmt == Decimal("5")
    assert spot.lotSizeFilter.basePrecision == Decimal("0.000001")
    assert spot.priceFilter.minPrice is None


def test_batch_create_ext_info(examples_dir: Path) -> None:
    ex = _load(examples_dir / "rest_v5_order_create_batch.json")
    env, res = _decode_rest(_compact(ex["response"]), BatchCreateResult)
    ext = decode_result(REST_EXT_INFO_TYPES[("POST", "/v5/order/create-batch")], env.retExtInfo)
    assert isinstance(ext, BatchExtInfo)
    assert [s.code for s in ext.list] == [0, 0]
    assert res.list[0].createAt == 1713434102752
    cancel = _load(examples_dir / "rest_v5_order_cancel_batch.json")
    env, res = _decode_rest(_compact(cancel["response"]), BatchCreateResult)
    ext = decode_result(BatchExtInfo, env.retExtInfo)
    assert [(s.code, s.msg) for s in ext.list] == [(0, "OK"), (170213, "Order does not exist.")]
    assert res.list[1].orderId is None


def test_ack_only_responses(examples_dir: Path) -> None:
    ex = _load(examples_dir / "rest_v5_order_disconnected_cancel_all.json")
    env = decode(Envelope, _compact(ex["response"]))
    assert env.retCode == 0 and env.time is None and bytes(env.result) == b"{}"
    assert decode_result(EmptyResult, b"null") == EmptyResult()
    cancel_all = _example(examples_dir, "rest_v5_order_cancel_all")
    assert isinstance(cancel_all, CancelAllResult) and cancel_all.success == "1"


def test_trade_ws_create_response(examples_dir: Path) -> None:
    resp = _example(examples_dir, "ws_trade_order_create")
    assert isinstance(resp, TradeWsResponse)
    assert resp.reqId == "test-005" and resp.retCode == 0 and resp.op == "order.create"
    assert resp.header is not None and resp.header["X-Bapi-Limit-Status"] == "9"
    data = decode_result(TRADE_WS_DATA_TYPES["order.create"], resp.data)
    assert data == OrderIdResult(orderId="a4c1718e-fe53-4659-a118-1f6ecce04ad9", orderLinkId=None)


def test_trade_ws_batch_response(examples_dir: Path) -> None:
    ex = _load(examples_dir / "ws_trade_order_create_batch.json")["response"]
    resp = decode(TradeWsResponse, _compact(ex))
    assert resp.op is not None
    data = decode_result(TRADE_WS_DATA_TYPES[resp.op], resp.data)
    ext = decode_result(BatchExtInfo, resp.retExtInfo)
    check_complete(_info(BatchCreateResult), ex["data"], data)
    check_complete(_info(BatchExtInfo), ex["retExtInfo"], ext)
    assert all(item.orderId is None and item.createAt is None for item in data.list)
    assert {s.code for s in ext.list} == {10001}


def test_trade_ws_pong_and_request_encoding(examples_dir: Path) -> None:
    pong = _example(examples_dir, "ws_trade_ping")
    assert isinstance(pong, TradeWsPong) and pong.data == [1711002002529]
    req = TradeWsRequest(
        op="order.create",
        reqId="r1",
        header={"X-BAPI-TIMESTAMP": "1711001595207"},
        args=[{"category": "linear", "symbol": "ETHUSDT"}],
    )
    assert json.loads(encode(req)) == {
        "op": "order.create",
        "reqId": "r1",
        "header": {"X-BAPI-TIMESTAMP": "1711001595207"},
        "args": [{"category": "linear", "symbol": "ETHUSDT"}],
    }
    assert encode(WsRequest(op="ping")) == b'{"op":"ping"}'


def test_ws_control_shapes(examples_dir: Path) -> None:
    auth = _example(examples_dir, "ws_auth")
    assert auth.success is True and auth.op == "auth" and auth.conn_id
    spot = _example(examples_dir, "ws_subscribe_public_spot")
    assert spot.req_id == "10001" and spot.ret_msg == "subscribe"
    option = _example(examples_dir, "ws_subscribe_public_option")
    assert option.type == "COMMAND_RESP"
    assert option.data["successTopics"] == ["orderbook.100.BTC-6JAN23-18000-C"]
    for stem in ("ws_ping_private", "ws_ping_public_linear", "ws_ping_public_option"):
        assert _example(examples_dir, stem).is_pong(), stem
    assert not auth.is_pong()
    assert decode(WsControl, b'{"req_id":7,"op":"pong"}').req_id == 7


def test_public_and_private_messages(examples_dir: Path) -> None:
    trade = _example(examples_dir, "ws_public_trade")
    assert isinstance(trade, PublicTradeMessage)
    t = trade.data[0]
    assert (t.T, t.S, t.v, t.p, t.L, t.BT) == (
        1672304486865,
        "Buy",
        Decimal("0.001"),
        Decimal("16578.50"),
        "PlusTick",
        False,
    )
    kline = _example(examples_dir, "ws_kline")
    assert isinstance(kline, KlineMessage)
    assert kline.data[0].start == 1672324800000 and kline.data[0].confirm is False
    assert kline.data[0].interval == "5"
    band = _example(examples_dir, "ws_price_limit")
    assert isinstance(band, PriceLimitMessage) and band.data.buyLmt == Decimal("114450.00")
    order = _example(examples_dir, "ws_order")
    assert isinstance(order, OrderMessage)
    o = order.data[0]
    assert o.category == "option" and o.orderStatus == "Filled"
    assert o.cumExecFee == Decimal("0.358635") and o.leavesQty is None
    assert o.stopOrderType is None and o.placeType == "price"


def test_account_and_user_results(examples_dir: Path) -> None:
    info = _example(examples_dir, "rest_v5_account_info")
    assert isinstance(info, AccountInfo)
    assert info.marginMode == "REGULAR_MARGIN" and info.unifiedMarginStatus == 4
    assert info.updatedTime == 1697078946000
    log = _example(examples_dir, "rest_v5_account_transaction_log")
    assert isinstance(log, TransactionLogResult)
    settle = log.list[0]
    assert settle.type == "SETTLEMENT" and settle.funding == Decimal("-0.003676")
    assert settle.funding == -settle.qty * settle.tradePrice * settle.feeRate
    assert log.list[1].funding is None and log.list[1].bonusChange == Decimal("-0.1430544")
    mm = _example(examples_dir, "rest_v5_account_set_margin_mode")
    assert isinstance(mm, SetMarginModeResult) and mm.reasons[0].reasonCode == "3400000"
    dcp = _example(examples_dir, "rest_v5_account_query_dcp_info")
    assert isinstance(dcp, DcpInfoResult)
    assert [(d.product, d.timeWindow) for d in dcp.dcpInfos] == [("SPOT", 10), ("DERIVATIVES", 10)]
    key = _example(examples_dir, "rest_v5_user_query_api")
    assert isinstance(key, ApiKeyInfo)
    assert key.permissions is not None
    assert key.permissions.ContractTrade == ["Order", "Position"]
    assert key.permissions.Options == [] and key.permissions.FiatBitPay == ["FaitPayOrder"]
    assert key.readOnly == 1 and key.secret is None and key.ips[0] == "18.181.170.164"
    assert key.expiredAt == "1970-01-01T00:00:00Z" and key.userID == 1448939


# --- robustness: decode never raises anything but DecodeError ----------------------------------


def _decode_targets() -> list[type[Wire]]:
    targets: list[type[Wire]] = [Envelope, WsControl, TradeWsResponse, BatchExtInfo]
    targets += [t for _, t in EXAMPLE_SCHEMAS.values()]
    targets += list(MESSAGE_TYPES.values())
    return list(dict.fromkeys(targets))


@pytest.fixture(scope="module")
def example_payloads(examples_dir: Path) -> list[bytes]:
    """Every example request and response, compact, as bytes."""
    examples = [_load(path) for path in sorted(examples_dir.glob("*.json"))]
    return [
        _compact(ex[key]).encode()
        for ex in examples
        for key in ("response", "request")
        if ex.get(key) is not None
    ]


_KEYS = sorted(
    {f.encode_name for t in _decode_targets() for f in msgspec.structs.fields(t)}
    | {"list", "result", "data", "b", "a", "price", "qty", "orderId", "symbol", "coin", "args"}
)

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "1.5", "-0.000587", "1e400", "1672304484978", "nan"]),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


def _decode_any(type_: type[Wire], raw: bytes | str) -> None:
    try:
        value = decode(type_, raw)
    except DecodeError:
        return
    for attr in ("result", "retExtInfo", "data"):
        payload = getattr(value, attr, None)
        if isinstance(payload, msgspec.Raw):
            try:
                decode_result(OrderListResult, payload)
            except DecodeError:
                pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(type_=st.sampled_from(_decode_targets()), value=_json_values, spaced=st.booleans())
def test_arbitrary_json_decodes_or_raises_decode_error(
    type_: type[Wire], value: Any, spaced: bool
) -> None:
    _decode_any(type_, json.dumps(value, separators=None if spaced else (",", ":")))


@settings(max_examples=300, deadline=None)
@given(type_=st.sampled_from(_decode_targets()), raw=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(type_: type[Wire], raw: bytes) -> None:
    _decode_any(type_, raw)


@settings(max_examples=400, deadline=None)
@given(
    type_=st.sampled_from(_decode_targets()),
    data=st.data(),
    cut=st.integers(min_value=0),
    flip=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_damaged_examples_decode_or_raise_decode_error(
    example_payloads: list[bytes], type_: type[Wire], data: Any, cut: int, flip: int, byte: int
) -> None:
    payload = data.draw(st.sampled_from(example_payloads), label="payload")
    truncated = payload[: cut % (len(payload) + 1)]
    _decode_any(type_, truncated)
    mutated = bytearray(payload)
    mutated[flip % len(mutated)] = byte
    _decode_any(type_, bytes(mutated))


def test_deeply_nested_input_raises_decode_error() -> None:
    deep = b'{"retCode":0,"result":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(DecodeError):
        decode(Envelope, deep)


def test_lone_surrogate_text_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode(Envelope, '{"retCode":0,"retMsg":"\ud800"}')


def test_spaced_json_empty_text_becomes_none() -> None:
    assert decode(WsControl, '{"op": "auth", "ret_msg": "", "success": true}').ret_msg is None
    env = decode(
        Envelope, '{"retCode": 0, "retMsg": "", "result": {"orderId": "1", "orderLinkId": ""}}'
    )
    assert env.retMsg is None
    assert decode_result(OrderIdResult, env.result).orderLinkId is None
