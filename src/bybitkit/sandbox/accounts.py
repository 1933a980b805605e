"""Sandbox accounts: unified-account wallets, API keys, fee rates and the house accounts.

Every coin a trade moves is booked on an account, including the background liquidity's (the
house accounts) and the fees (the fee collector), so the sandbox conserves every coin: the sum of
all wallets only changes by top-ups.

The wallet is a unified trading account (UTA). Per coin we keep the wallet balance and the spot
order holds (``locked``); derivative fields (order and position margin, unrealised and realised
PnL) are added by the derivatives part of the sandbox on the same object.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bybitkit.v5.auth import load_rsa_public_key, verify_hmac, verify_rsa

ZERO = Decimal(0)

#: Balances of a new account when none are given (the issue's defaults).
DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal("100000"),
    "USDC": Decimal("100000"),
    "BTC": Decimal("1"),
    "ETH": Decimal("10"),
}

#: Bybit's base-tier fee rates (maker, taker) by category.
DEFAULT_FEES: dict[str, tuple[Decimal, Decimal]] = {
    "spot": (Decimal("0.001"), Decimal("0.001")),
    "linear": (Decimal("0.0002"), Decimal("0.00055")),
}

#: Coins whose USD value is taken as 1 (the sandbox's stablecoins).
STABLE = frozenset({"USDT", "USDC"})


@dataclass(slots=True)
class ApiKey:
    """One API key of an account. HMAC keys hold the secret, RSA keys the public key (PEM)."""

    key: str
    kind: str  # "hmac" or "rsa"
    secret: str | None = field(default=None, repr=False)
    public_pem: str | None = None
    read_only: bool = False
    ips: tuple[str, ...] = ("*",)
    expires_at_ms: int | None = None  # None: never
    can_trade: bool = True
    can_withdraw: bool = False  # the Wallet group's "Withdraw" (query-api shows it)
    note: str = ""
    created_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    _public: Any = field(default=None, repr=False)

    def verify(self, message: bytes, signature: str) -> bool:
        if self.kind == "rsa":
            if self._public is None:
                assert self.public_pem is not None
                self._public = load_rsa_public_key(self.public_pem)
            return verify_rsa(self._public, message, signature)
        assert self.secret is not None
        return verify_hmac(self.secret, message, signature)


@dataclass(slots=True)
class Coin:
    """One coin of a unified wallet (REFERENCE §10.1)."""

    wallet: Decimal = ZERO
    locked: Decimal = ZERO  # held by spot open orders
    order_im: Decimal = ZERO  # derivatives: initial margin of open orders
    position_im: Decimal = ZERO
    position_mm: Decimal = ZERO
    unrealised_pnl: Decimal = ZERO
    cum_realised_pnl: Decimal = ZERO

    @property
    def free(self) -> Decimal:
        """What spot orders and withdrawals can use now."""
        return self.wallet - self.locked - self.order_im - self.position_im


class Account:
    """A sandbox account (UID) with its unified wallet, keys and fee rates."""

    def __init__(self, uid: int, *, house: bool = False, name: str = "") -> None:
        self.uid = uid
        self.house = house
        self.name = name or f"uid-{uid}"
        self.coins: dict[str, Coin] = {}
        self.keys: dict[str, ApiKey] = {}
        self.fees: dict[str, tuple[Decimal, Decimal]] = dict(DEFAULT_FEES)
        # Price-band behaviour (REFERENCE §7.9): spot rejects, futures clamp by default.
        self.lpa_spot = False  # True: spot prices beyond the band are moved to it
        self.lpa_perp = False  # True: futures prices beyond the band are rejected
        self.margin_mode = "REGULAR_MARGIN"
        # DCP (REFERENCE §8.12, bybitkit.sandbox.dcp): the products Bybit staff enabled (here
        # Sandbox.enable_dcp) and the windows (s) set by /v5/order/disconnected-cancel-all.
        self.dcp_enabled: set[str] = set()
        self.dcp_windows: dict[str, int] = {}
        self.created_ms = time.time_ns() // 1_000_000
        self.updated_ms = self.created_ms

    def coin(self, name: str) -> Coin:
        c = self.coins.get(name)
        if c is None:
            c = self.coins[name] = Coin()
        return c

    def credit(self, coin: str, amount: Decimal) -> None:
        self.coin(coin).wallet += amount

    def fee_rates(self, category: str) -> tuple[Decimal, Decimal]:
        """(maker, taker)."""
        return self.fees.get(category, DEFAULT_FEES["spot"])

    def add_hmac_key(
        self, key: str | None = None, secret: str | None = None, **opts: Any
    ) -> ApiKey:
        api_key = ApiKey(
            key=key or secrets.token_hex(9).upper(),
            kind="hmac",
            secret=secret or secrets.token_urlsafe(27),
            **opts,
        )
        self.keys[api_key.key] = api_key
        return api_key

    def add_rsa_key(self, public_pem: str, key: str | None = None, **opts: Any) -> ApiKey:
        api_key = ApiKey(
            key=key or secrets.token_hex(9).upper(), kind="rsa", public_pem=public_pem, **opts
        )
        self.keys[api_key.key] = api_key
        return api_key
