"""Request signing for Bybit V5 (REFERENCE §3): HMAC-SHA256 and RSA (PKCS#1 v1.5 over SHA-256).

The signer is chosen from the key material: a PEM private key means RSA (a self-generated key),
anything else is an HMAC secret. What is signed is exactly what is sent:
``timestamp + api_key + recv_window + payload`` where the payload is the query string as sent
(without ``?``) or the raw JSON body bytes. WebSocket auth signs ``"GET/realtime" + expires``.

Signing is on the hot path of order entry, so the HMAC signer keys its HMAC once and copies the
keyed state per request; the bytes prefix ``api_key + recv_window`` is built once too.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bybitkit.errors import ConfigError

DEFAULT_RECV_WINDOW = 5000
SIGN_TYPE = "2"  # Bybit's samples and pybit send "2" for both key types.


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key and its secret (an HMAC secret, or an RSA private key in PEM).

    The secret never appears in ``repr`` or ``str``, so it cannot leak into logs by accident."""

    api_key: str
    api_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ConfigError("credentials.api_key: expected a non-empty string")
        if not isinstance(self.api_secret, str) or not self.api_secret.strip():
            raise ConfigError("credentials.api_secret: expected a non-empty string")

    @property
    def is_rsa(self) -> bool:
        return is_pem_private_key(self.api_secret)

    def __str__(self) -> str:
        return f"Credentials(api_key={self.api_key!r}, api_secret=<redacted>)"


def is_pem_private_key(secret: str) -> bool:
    s = secret.lstrip()
    return s.startswith("-----BEGIN") and "PRIVATE KEY-----" in s


class Signer(Protocol):
    """Signs Bybit request strings for one API key."""

    api_key: str
    #: "hmac" or "rsa"
    kind: str

    def sign(self, message: bytes) -> str: ...

    def sign_request(self, timestamp_ms: int, recv_window: int, payload: bytes | str) -> str: ...

    def headers(
        self, timestamp_ms: int, payload: bytes | str, recv_window: int = DEFAULT_RECV_WINDOW
    ) -> dict[str, str]: ...


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class _SignerBase:
    __slots__ = ("_rw", "_template", "api_key", "kind")

    def __init__(self, api_key: str, kind: str) -> None:
        self.api_key = api_key
        self.kind = kind
        self._template = {"X-BAPI-API-KEY": api_key, "X-BAPI-SIGN-TYPE": SIGN_TYPE}
        self._rw: dict[int, tuple[bytes, str]] = {}

    def _infix(self, recv_window: int) -> tuple[bytes, str]:
        """``api_key + recv_window`` as bytes (the middle of the string to sign) and the
        recv-window header value, built once per window size."""
        entry = self._rw.get(recv_window)
        if entry is None:
            entry = self._rw[recv_window] = (
                f"{self.api_key}{recv_window}".encode(),
                str(recv_window),
            )
        return entry

    def sign(self, message: bytes) -> str:
        raise NotImplementedError

    def sign_request(self, timestamp_ms: int, recv_window: int, payload: bytes | str) -> str:
        if isinstance(payload, str):
            payload = payload.encode()
        return self.sign(b"%d%b%b" % (timestamp_ms, self._infix(recv_window)[0], payload))

    def headers(
        self, timestamp_ms: int, payload: bytes | str, recv_window: int = DEFAULT_RECV_WINDOW
    ) -> dict[str, str]:
        """The auth headers of one REST request (REFERENCE §3.1)."""
        infix, rw_text = self._infix(recv_window)
        ts = str(timestamp_ms)
        if isinstance(payload, str):
            payload = payload.encode()
        headers = self._template.copy()
        headers["X-BAPI-TIMESTAMP"] = ts
        headers["X-BAPI-RECV-WINDOW"] = rw_text
        headers["X-BAPI-SIGN"] = self.sign(ts.encode() + infix + payload)
        return headers


class HmacSigner(_SignerBase):
    """HMAC-SHA256 signer (system-generated keys); lowercase hex output.

    HMAC is built from two SHA-256 states keyed once (RFC 2104: inner ``key ^ ipad``, outer
    ``key ^ opad``); each request copies them, which is cheaper than copying a whole HMAC
    context or re-keying. The shared test vectors pin the result.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, api_key: str, secret: str) -> None:
        super().__init__(api_key, "hmac")
        key = secret.encode()
        if len(key) > 64:
            key = sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = sha256(key.translate(_IPAD))
        self._outer = sha256(key.translate(_OPAD))

    def sign(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def headers(
        self, timestamp_ms: int, payload: bytes | str, recv_window: int = DEFAULT_RECV_WINDOW
    ) -> dict[str, str]:
        # The order-entry hot path: the generic version with the HMAC inlined. The three parts
        # of the string to sign are fed to the hash one by one (three C calls are cheaper than
        # building the joined bytes), and the header dict is built in one literal.
        infix, rw_text = self._rw.get(recv_window) or self._infix(recv_window)
        ts = str(timestamp_ms)
        inner = self._inner.copy()
        inner.update(ts.encode())
        inner.update(infix)
        inner.update(payload.encode() if isinstance(payload, str) else payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return {
            "X-BAPI-API-KEY": self.api_key,
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": rw_text,
            "X-BAPI-SIGN": outer.hexdigest(),
            "X-BAPI-SIGN-TYPE": SIGN_TYPE,
        }


class RsaSigner(_SignerBase):
    """RSASSA-PKCS1-v1_5 over SHA-256 (self-generated keys); base64 output."""

    __slots__ = ("_key",)

    def __init__(self, api_key: str, private_key_pem: str) -> None:
        super().__init__(api_key, "rsa")
        try:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"api_secret looks like a PEM private key but cannot be loaded: {exc}"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("api_secret: expected an RSA private key (PEM)")
        self._key = key

    def sign(self, message: bytes) -> str:
        sig = self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(sig).decode()


def make_signer(credentials: Credentials) -> HmacSigner | RsaSigner:
    """The signer for these credentials: RSA when the secret is a PEM private key, else HMAC."""
    if credentials.is_rsa:
        return RsaSigner(credentials.api_key, credentials.api_secret)
    return HmacSigner(credentials.api_key, credentials.api_secret)


def string_to_sign(timestamp_ms: int, api_key: str, recv_window: int, payload: str) -> str:
    """The exact REST string Bybit signs (for documentation, tests and the sandbox)."""
    return f"{timestamp_ms}{api_key}{recv_window}{payload}"


def rest_headers(
    signer: Signer,
    timestamp_ms: int,
    payload: bytes | str,
    recv_window: int = DEFAULT_RECV_WINDOW,
) -> dict[str, str]:
    """The auth headers of one REST request (REFERENCE §3.1)."""
    return signer.headers(timestamp_ms, payload, recv_window)


def ws_auth_args(signer: Signer, expires_ms: int) -> list[str | int]:
    """The ``args`` of a WebSocket ``auth`` op: ``[api_key, expires, signature]``."""
    return [signer.api_key, expires_ms, signer.sign(b"GET/realtime%d" % expires_ms)]


# --- verification (used by the sandbox and by tests) ---------------------------------------------


def verify_hmac(secret: str, message: bytes, signature: str) -> bool:
    expected = hmac.new(secret.encode(), message, sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def load_rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot load RSA public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError("expected an RSA public key (PEM)")
    return key


def verify_rsa(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_rsa_key_pair(bits: int = 2048) -> tuple[str, str]:
    """A new RSA key pair as (private PEM, public PEM): what a user uploads to Bybit for a
    self-generated key, and what the sandbox registers."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem
