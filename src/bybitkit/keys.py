"""The encrypted key store: API keys of the connectors the command line is connected to.

One JSON file, ``keys.json`` under ``BYBITKIT_HOME`` (default ``~/.bybitkit``), mode 0600 in a
0700 folder. What it holds in clear is only what a listing needs (connector ids, environments,
sandbox URLs, key type, when each was added); every API key and secret is encrypted:

* the encryption key is derived from the password with scrypt (``cryptography``'s
  :class:`~cryptography.hazmat.primitives.kdf.scrypt.Scrypt`, a random 16-byte salt per file,
  N = 2**15, r = 8, p = 1, as recorded in the file);
* each connection's ``{"api_key", "api_secret"}`` is sealed with AES-256-GCM under a fresh
  12-byte nonce, its clear metadata bound as associated data (a tampered environment or URL makes
  the entry fail to open rather than send the key elsewhere);
* a fixed check value sealed the same way tells a wrong password (:class:`WrongPassword`) from a
  damaged entry (:class:`KeyStoreError`).

Secrets never appear in a ``repr``, an error message or a log line; the file is replaced
atomically (written beside it, then renamed).

    store = KeyStore.default()
    store.unlock(password)                    # creates the file on first save
    store.save("bybit_testnet", Credentials(key, secret), environment="testnet")
    creds = store.credentials("bybit_testnet")
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bybitkit.errors import BybitkitError, ConfigError
from bybitkit.v5.auth import Credentials

log = logging.getLogger(__name__)

FORMAT = "bybitkit-keys"
VERSION = 1
FILE_NAME = "keys.json"
#: scrypt cost of new files (N, r, p): about 0.1 s and 32 MiB per unlock.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_MAX_SCRYPT_N = 2**20  # refuse files asking for more (a damaged or hostile file)
_CHECK = b"bybitkit key store v1"


class KeyStoreError(BybitkitError):
    """The key store cannot be read or written (damaged file, bad permissions, locked)."""


class WrongPassword(KeyStoreError):
    """The password does not open this key store."""


def bybitkit_home() -> Path:
    """``BYBITKIT_HOME``, or ``~/.bybitkit``."""
    home = os.environ.get("BYBITKIT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".bybitkit"


@dataclass(frozen=True, slots=True)
class Connection:
    """One stored connection, as listed without the password (no key material)."""

    connector: str
    environment: str  # an environment name, or "sandbox"
    rest_url: str | None = None  # sandbox (custom) environments only
    ws_url: str | None = None
    key_type: str = "hmac"  # "hmac" or "rsa"
    added_ms: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "environment": self.environment,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "key_type": self.key_type,
            "added_ms": self.added_ms,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyStoreError(f"key store damaged: {what} is missing")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise KeyStoreError(f"key store damaged: {what} is not base64") from None


def _aad(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


class KeyStore:
    """The encrypted key store at ``path`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._aes: AESGCM | None = None
        self._data: dict[str, Any] | None = None

    @classmethod
    def default(cls) -> KeyStore:
        """The store under ``BYBITKIT_HOME``."""
        return cls(bybitkit_home() / FILE_NAME)

    def __repr__(self) -> str:
        state = "unlocked" if self._aes is not None else "locked"
        return f"KeyStore({str(self.path)!r}, {state})"

    # -- reading ---------------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def unlocked(self) -> bool:
        return self._aes is not None

    def _load(self) -> dict[str, Any]:
        if self._data is not None:
            return self._data
        if not self.exists:
            return {}
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            raw = self.path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read the key store {self.path}: {exc.strerror}") from None
        if mode & 0o077:
            log.warning(
                "key store readable by others path=%s mode=%o; fixing to 0600", self.path, mode
            )
            try:
                os.chmod(self.path, 0o600)
            except OSError as exc:
                raise KeyStoreError(
                    f"the key store {self.path} has mode {mode:o} and cannot be made 0600: "
                    f"{exc.strerror}"
                ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise KeyStoreError(f"key store damaged: {self.path} is not JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyStoreError(f"{self.path} is not a bybitkit key store")
        if data.get("version") != VERSION:
            raise KeyStoreError(
                f"key store {self.path} has version {data.get('version')!r}; this bybitkit "
                f"reads version {VERSION}"
            )
        if not isinstance(data.get("connections"), dict):
            raise KeyStoreError("key store damaged: no connections table")
        self._data = data
        return data

    def connections(self) -> list[Connection]:
        """Every stored connection (no password needed, no key material), by connector id."""
        out = []
        for connector, entry in sorted(self._load().get("connections", {}).items()):
            out.append(self._connection(connector, entry))
        return out

    def connection(self, connector: str) -> Connection | None:
        entry = self._load().get("connections", {}).get(connector)
        return None if entry is None else self._connection(connector, entry)

    @staticmethod
    def _connection(connector: str, entry: Any) -> Connection:
        if not isinstance(entry, dict):
            raise KeyStoreError(f"key store damaged: entry {connector!r} is not an object")
        return Connection(
            connector=connector,
            environment=str(entry.get("environment", "")),
            rest_url=entry.get("rest_url"),
            ws_url=entry.get("ws_url"),
            key_type=str(entry.get("key_type", "hmac")),
            added_ms=int(entry.get("added_ms", 0)),
        )

    # -- the password ----------------------------------------------------------------------------

    @staticmethod
    def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> AESGCM:
        kdf = Scrypt(salt=salt, length=32, n=n, r=r, p=p)
        return AESGCM(kdf.derive(password.encode("utf-8")))

    def unlock(self, password: str) -> None:
        """Derive the key from ``password``. For an existing file a wrong password raises
        :class:`WrongPassword`; a new store takes this password (non-empty) on first save."""
        if not isinstance(password, str) or not password:
            raise ConfigError("password: expected a non-empty password")
        data = self._load()
        if not data:
            salt = secrets.token_bytes(16)
            self._aes = self._derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
            nonce = secrets.token_bytes(12)
            self._data = {
                "format": FORMAT,
                "version": VERSION,
                "kdf": {
                    "name": "scrypt",
                    "salt": _b64(salt),
                    "n": SCRYPT_N,
                    "r": SCRYPT_R,
                    "p": SCRYPT_P,
                },
                "cipher": "AES-256-GCM",
                "check": {
                    "nonce": _b64(nonce),
                    "ciphertext": _b64(self._aes.encrypt(nonce, _CHECK, b"check")),
                },
                "connections": {},
            }
            return
        kdf = data.get("kdf")
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise KeyStoreError("key store damaged: unknown key derivation")
        try:
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except (KeyError, TypeError, ValueError):
            raise KeyStoreError("key store damaged: bad scrypt parameters") from None
        if not (2 <= n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise KeyStoreError("key store damaged: scrypt parameters out of range")
        aes = self._derive(password, _unb64(kdf.get("salt"), "salt"), n, r, p)
        check = data.get("check") or {}
        try:
            value = aes.decrypt(
                _unb64(check.get("nonce"), "check nonce"),
                _unb64(check.get("ciphertext"), "check value"),
                b"check",
            )
        except InvalidTag:
            raise WrongPassword(f"wrong password for the key store {self.path}") from None
        if value != _CHECK:
            raise WrongPassword(f"wrong password for the key store {self.path}")
        self._aes = aes

    def _need_unlocked(self) -> AESGCM:
        if self._aes is None:
            raise KeyStoreError("the key store is locked: unlock it with the password first")
        return self._aes

    # -- keys ------------------------------------------------------------------------------------

    def credentials(self, connector: str) -> Credentials:
        """The keys of ``connector`` (the store must be unlocked)."""
        aes = self._need_unlocked()
        entry = self._load().get("connections", {}).get(connector)
        if entry is None:
            raise KeyStoreError(
                f"no keys stored for {connector}: run `bybitkit connect {connector}`"
            )
        meta = self._connection(connector, entry).metadata()
        try:
            clear = aes.decrypt(
                _unb64(entry.get("nonce"), f"{connector} nonce"),
                _unb64(entry.get("ciphertext"), f"{connector} keys"),
                _aad(meta),
            )
            keys = json.loads(clear)
            return Credentials(str(keys["api_key"]), str(keys["api_secret"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise KeyStoreError(
                f"key store damaged: the keys of {connector} do not open (the entry was altered)"
            ) from None

    def save(
        self,
        connector: str,
        credentials: Credentials,
        *,
        environment: str,
        rest_url: str | None = None,
        ws_url: str | None = None,
    ) -> Connection:
        """Store (or replace) the keys of ``connector`` and write the file."""
        aes = self._need_unlocked()
        data = self._load()
        conn = Connection(
            connector=connector,
            environment=environment,
            rest_url=rest_url,
            ws_url=ws_url,
            key_type="rsa" if credentials.is_rsa else "hmac",
            added_ms=time.time_ns() // 1_000_000,
        )
        meta = conn.metadata()
        nonce = secrets.token_bytes(12)
        clear = json.dumps(
            {"api_key": credentials.api_key, "api_secret": credentials.api_secret}
        ).encode()
        entry = {k: v for k, v in meta.items() if k != "connector"}
        entry["nonce"] = _b64(nonce)
        entry["ciphertext"] = _b64(aes.encrypt(nonce, clear, _aad(meta)))
        data["connections"][connector] = entry
        self._write(data)
        log.info("keys saved connector=%s key_type=%s", connector, conn.key_type)
        return conn

    def remove(self, connector: str) -> bool:
        """Forget the keys of ``connector`` (no password needed); True if there were some."""
        data = self._load()
        if connector not in data.get("connections", {}):
            return False
        del data["connections"][connector]
        self._write(data)
        log.info("keys removed connector=%s", connector)
        return True

    def _write(self, data: dict[str, Any]) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = folder / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=1, sort_keys=True)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise KeyStoreError(f"cannot write the key store {self.path}: {exc.strerror}") from None
        self._data = data


__all__ = [
    "Connection",
    "KeyStore",
    "KeyStoreError",
    "WrongPassword",
    "bybitkit_home",
]
