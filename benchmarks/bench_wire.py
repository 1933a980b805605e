"""Wire-layer hot paths: request signing and private-frame decoding.

1. Signing a full request (timestamp, string to sign, signature, header dict) with our signer,
   against pybit's own request signing (``HTTP._prepare_headers``) and against a bare pre-keyed
   HMAC over an already-built string (the C-level pre-keyed HMAC object of the standard library:
   copy, update, hexdigest; nothing else).
   Targets: >= 3x faster than pybit; <= 1.3x the bare HMAC.
2. Decoding private ``order`` / ``execution`` frames into our typed structs (topic lookup,
   empty-string normalisation, Decimal money) against a bare ``msgspec.json.decode`` of the same
   frames into dicts and lists. Target: >= 0.5x of the bare decode rate.

Writes ``benchmarks/results/wire.json``.
"""

from __future__ import annotations

import hmac
import json
import logging
from hashlib import sha256
from pathlib import Path

import msgspec

from benchmarks._common import compare, write_results
from bybitkit.v5.auth import Credentials, make_signer, rest_headers
from bybitkit.v5.clock import ServerClock
from bybitkit.v5.ws import decode_frame

KEY = "SANDBOXKEY123456"
SECRET = "sandbox-secret-0123456789abcdef"
BODY = (
    '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001",'
    '"price":"30000","timeInForce":"PostOnly","orderLinkId":"bbk-5f0c2d9e4b1a4f7e8a9d0c1b2a3f4e5d"}'
)
EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bybit-v5" / "examples"


def bench_signing() -> dict[str, float]:
    from pybit.unified_trading import HTTP

    logging.getLogger("pybit").setLevel(logging.WARNING)
    pybit = HTTP(api_key=KEY, api_secret=SECRET)
    signer = make_signer(Credentials(KEY, SECRET))
    clock = ServerClock()
    prebuilt = f"1700000000000{KEY}5000{BODY}".encode()
    bare_key = hmac.new(SECRET.encode(), digestmod=sha256)
    bare_key = getattr(bare_key, "_hmac", bare_key)  # the fastest pre-keyed object there is

    body = BODY.encode()  # our client signs and sends the body bytes it encoded once

    def ours() -> object:  # exactly what RestClient does per request
        return signer.headers(clock.now_ms(), body, 5000)

    def theirs() -> object:
        return pybit._prepare_headers(BODY, 5000)

    def bare() -> object:
        h = bare_key.copy()
        h.update(prebuilt)
        return h.hexdigest()

    # Same answer for the same timestamp: we time equal work.
    assert rest_headers(signer, 1700000000000, body, 5000)["X-BAPI-SIGN"] == bare()
    t = compare({"ours": ours, "pybit": theirs, "bare_hmac": bare}, number=20_000)
    return {
        "ours_us": t["ours"] * 1e6,
        "pybit_us": t["pybit"] * 1e6,
        "bare_hmac_us": t["bare_hmac"] * 1e6,
        "speedup_vs_pybit": t["pybit"] / t["ours"],
        "cost_vs_bare_hmac": t["ours"] / t["bare_hmac"],
    }


def private_frames() -> list[str]:
    frames = []
    for name in ("ws_order", "ws_execution"):
        response = json.loads((EXAMPLES / f"{name}.json").read_text())["response"]
        frames.append(json.dumps(response, separators=(",", ":")))
    # A spot order and a linear execution as our sandbox and Bybit send them.
    frames.append(
        json.dumps(
            {
                "id": "1",
                "topic": "order",
                "creationTime": 1700000000000,
                "data": [
                    {
                        "category": "spot",
                        "symbol": "BTCUSDT",
                        "orderId": "1839120391237",
                        "orderLinkId": "bbk-abc",
                        "isLeverage": "0",
                        "blockTradeId": "",
                        "price": "30000.1",
                        "qty": "0.010",
                        "side": "Buy",
                        "positionIdx": 0,
                        "orderStatus": "PartiallyFilled",
                        "createType": "",
                        "cancelType": "UNKNOWN",
                        "rejectReason": "EC_NoError",
                        "avgPrice": "30000.1",
                        "leavesQty": "0.005",
                        "leavesValue": "150.0005",
                        "cumExecQty": "0.005",
                        "cumExecValue": "150.0005",
                        "cumExecFee": "0.000005",
                        "closedPnl": "0",
                        "feeCurrency": "BTC",
                        "timeInForce": "GTC",
                        "orderType": "Limit",
                        "stopOrderType": "",
                        "ocoTriggerBy": "",
                        "orderIv": "",
                        "marketUnit": "",
                        "triggerPrice": "0",
                        "takeProfit": "0",
                        "stopLoss": "0",
                        "tpslMode": "",
                        "tpLimitPrice": "0",
                        "slLimitPrice": "0",
                        "tpTriggerBy": "",
                        "slTriggerBy": "",
                        "triggerDirection": 0,
                        "triggerBy": "",
                        "lastPriceOnCreated": "",
                        "reduceOnly": False,
                        "closeOnTrigger": False,
                        "placeType": "",
                        "smpType": "None",
                        "smpGroup": 0,
                        "smpOrderId": "",
                        "createdTime": "1700000000000",
                        "updatedTime": "1700000000100",
                        "cumFeeDetail": {"BTC": "0.000005"},
                    }
                ],
            },
            separators=(",", ":"),
        )
    )
    return frames


def bench_decoding() -> dict[str, float]:
    frames = private_frames()
    bare = msgspec.json.Decoder()
    for f in frames:  # every frame decodes into its typed struct
        decode_frame(f)

    def ours() -> object:
        return [decode_frame(f) for f in frames]

    def theirs() -> object:
        return [bare.decode(f) for f in frames]

    t = compare({"ours": ours, "bare": theirs}, number=5_000)
    n = len(frames)
    return {
        "frames": n,
        "ours_frames_per_s": n / t["ours"],
        "bare_frames_per_s": n / t["bare"],
        "rate_vs_bare_decode": t["bare"] / t["ours"],
    }


def main() -> None:
    signing = bench_signing()
    decoding = bench_decoding()
    print(
        f"signing:  ours {signing['ours_us']:.2f} us, pybit {signing['pybit_us']:.2f} us, "
        f"bare HMAC {signing['bare_hmac_us']:.2f} us -> "
        f"{signing['speedup_vs_pybit']:.2f}x faster than pybit (target >= 3), "
        f"{signing['cost_vs_bare_hmac']:.2f}x the bare HMAC (target <= 1.3)"
    )
    print(
        f"decoding: ours {decoding['ours_frames_per_s']:,.0f} frames/s, bare msgspec "
        f"{decoding['bare_frames_per_s']:,.0f} frames/s -> "
        f"{decoding['rate_vs_bare_decode']:.2f}x of the bare decode (target >= 0.5)"
    )
    path = write_results(
        "wire",
        {
            "signing": signing,
            "decoding": decoding,
            "targets": {
                "speedup_vs_pybit": ">= 3",
                "cost_vs_bare_hmac": "<= 1.3",
                "rate_vs_bare_decode": ">= 0.5",
            },
        },
    )
    print(f"written {path.relative_to(path.parent.parent.parent)}")


if __name__ == "__main__":
    main()
