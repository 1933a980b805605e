"""The encrypted key store: round trip, wrong password, file mode, tampering, no clear secret."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bybitkit.errors import ConfigError
from bybitkit.keys import KeyStore, KeyStoreError, WrongPassword, bybitkit_home
from bybitkit.v5.auth import Credentials, generate_rsa_key_pair

SECRET = "s3cr3t-HMAC-value-0123456789abcdef"
KEY = "APIKEY-ROUND-TRIP-1"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_file_mode_and_nothing_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys.json"
    store = KeyStore(path)
    assert not store.exists and store.connections() == []
    store.unlock("pw one")
    store.save("bybit_testnet", Credentials(KEY, SECRET), environment="testnet")
    private_pem, _ = generate_rsa_key_pair()
    store.save(
        "sandbox",
        Credentials("RSAKEY", private_pem),
        environment="sandbox",
        rest_url="http://127.0.0.1:9",
        ws_url="ws://127.0.0.1:9",
    )
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    raw = path.read_text()
    assert SECRET not in raw and KEY not in raw and "PRIVATE KEY" not in raw
    assert "RSAKEY" not in raw and "pw one" not in raw

    again = KeyStore(path)  # a new process: listing needs no password
    listed = {c.connector: c for c in again.connections()}
    assert set(listed) == {"bybit_testnet", "sandbox"}
    assert listed["sandbox"].rest_url == "http://127.0.0.1:9"
    assert listed["sandbox"].key_type == "rsa" and listed["bybit_testnet"].key_type == "hmac"
    with pytest.raises(KeyStoreError, match="locked"):
        again.credentials("bybit_testnet")
    again.unlock("pw one")
    assert again.credentials("bybit_testnet") == Credentials(KEY, SECRET)
    rsa = again.credentials("sandbox")
    assert rsa.api_secret == private_pem and rsa.is_rsa
    assert SECRET not in repr(again) and SECRET not in str(again.credentials("bybit_testnet"))


def test_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    store.unlock("right")
    store.save("bybit", Credentials(KEY, SECRET), environment="mainnet")
    other = KeyStore(path)
    with pytest.raises(WrongPassword, match="wrong password") as err:
        other.unlock("Tr0ub4dor&3")
    assert SECRET not in str(err.value) and "Tr0ub4dor" not in str(err.value)
    assert not other.unlocked
    other.unlock("right")
    assert other.credentials("bybit").api_secret == SECRET
    with pytest.raises(ConfigError, match="password"):
        KeyStore(tmp_path / "new.json").unlock("")


def test_replace_and_remove(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.unlock("pw")
    store.save("bybit", Credentials("K1", "S1"), environment="mainnet")
    store.save("bybit", Credentials("K2", "S2"), environment="mainnet")
    assert [c.connector for c in store.connections()] == ["bybit"]
    assert store.credentials("bybit") == Credentials("K2", "S2")
    fresh = KeyStore(tmp_path / "keys.json")  # removing needs no password
    assert fresh.remove("bybit") and not fresh.remove("bybit")
    assert fresh.connections() == []
    with pytest.raises(KeyStoreError, match="no keys stored for bybit"):
        fresh.unlock("pw")
        fresh.credentials("bybit")


def test_tampered_entry_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    store.unlock("pw")
    store.save(
        "sandbox", Credentials(KEY, SECRET), environment="sandbox",
        rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1",
    )  # fmt: skip
    data = json.loads(path.read_text())
    data["connections"]["sandbox"]["rest_url"] = "http://evil.example:80"
    path.write_text(json.dumps(data))
    tampered = KeyStore(path)
    tampered.unlock("pw")  # the password is right ...
    with pytest.raises(KeyStoreError, match="do not open"):  # ... the entry was altered
        tampered.credentials("sandbox")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "something else"}', "not a bybitkit key store"),
        ('{"format": "bybitkit-keys", "version": 99, "connections": {}}', "version"),
    ],
)
def test_damaged_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyStoreError, match=message):
        KeyStore(path).connections()


def test_a_readable_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    store.unlock("pw")
    store.save("bybit", Credentials(KEY, SECRET), environment="mainnet")
    path.chmod(0o644)
    assert [c.connector for c in KeyStore(path).connections()] == ["bybit"]
    assert mode(path) == 0o600


def test_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BYBITKIT_HOME", str(tmp_path / "h"))
    assert bybitkit_home() == tmp_path / "h"
    assert KeyStore.default().path == tmp_path / "h" / "keys.json"
    monkeypatch.delenv("BYBITKIT_HOME")
    assert bybitkit_home() == Path.home() / ".bybitkit"
