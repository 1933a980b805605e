"""Signing: every shared vector, RSA round trip, signer choice, secrets never in repr."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from bybitkit.errors import ConfigError
from bybitkit.v5.auth import (
    Credentials,
    HmacSigner,
    RsaSigner,
    generate_rsa_key_pair,
    load_rsa_public_key,
    make_signer,
    rest_headers,
    string_to_sign,
    verify_hmac,
    verify_rsa,
    ws_auth_args,
)


def _vectors(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "auth_test_vectors.json").read_text())


def test_every_rest_vector(shared_dir: Path) -> None:
    v = _vectors(shared_dir)
    signer = HmacSigner(v["api_key"], v["api_secret"])
    ts, rw = int(v["timestamp"]), int(v["recv_window"])
    assert v["rest"], "no vectors found"
    for case in v["rest"]:
        assert string_to_sign(ts, v["api_key"], rw, case["payload"]) == case["string_to_sign"]
        assert signer.sign_request(ts, rw, case["payload"]) == case["signature"], case["name"]
        # bytes payload (a POST body as sent) signs the same
        assert signer.sign_request(ts, rw, case["payload"].encode()) == case["signature"]
        assert rest_headers(signer, ts, case["payload"], rw) == case["headers"], case["name"]
        assert verify_hmac(v["api_secret"], case["string_to_sign"].encode(), case["signature"])


def test_ws_auth_vector(shared_dir: Path) -> None:
    v = _vectors(shared_dir)
    signer = HmacSigner(v["api_key"], v["api_secret"])
    wa = v["ws_auth"]
    args = ws_auth_args(signer, wa["expires"])
    assert args == wa["message"]["args"]
    assert {"op": "auth", "args": args} == wa["message"]


def test_signature_depends_on_parameter_order(shared_dir: Path) -> None:
    v = _vectors(shared_dir)
    signer = HmacSigner(v["api_key"], v["api_secret"])
    a = signer.sign_request(1, 5000, "category=linear&symbol=BTCUSDT")
    b = signer.sign_request(1, 5000, "symbol=BTCUSDT&category=linear")
    assert a != b


def test_rsa_sign_and_verify() -> None:
    private_pem, public_pem = generate_rsa_key_pair()
    creds = Credentials("RSAKEY", private_pem)
    assert creds.is_rsa
    signer = make_signer(creds)
    assert isinstance(signer, RsaSigner) and signer.kind == "rsa"
    payload = '{"category":"spot","symbol":"BTCUSDT"}'
    sig = signer.sign_request(1700000000000, 5000, payload)
    message = f"1700000000000RSAKEY5000{payload}".encode()
    public = load_rsa_public_key(public_pem)
    assert verify_rsa(public, message, sig)
    # independently, with cryptography itself
    key = serialization.load_pem_public_key(public_pem.encode())
    key.verify(base64.b64decode(sig), message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    assert not verify_rsa(public, message + b"x", sig)
    # WS auth with an RSA key signs the same string as HMAC keys, base64 encoded
    args = ws_auth_args(signer, 1700000001000)
    assert verify_rsa(public, b"GET/realtime1700000001000", str(args[2]))


def test_signer_choice_and_bad_pem() -> None:
    assert isinstance(make_signer(Credentials("K", "plain-secret")), HmacSigner)
    bad = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError, match="PEM"):
        make_signer(Credentials("K", bad))


def test_secret_never_in_repr_or_str() -> None:
    creds = Credentials("KEY123", "super-secret-value")
    assert "super-secret-value" not in repr(creds)
    assert "super-secret-value" not in str(creds)
    with pytest.raises(ConfigError, match="api_key"):
        Credentials("", "x")
    with pytest.raises(ConfigError, match="api_secret"):
        Credentials("k", " ")
