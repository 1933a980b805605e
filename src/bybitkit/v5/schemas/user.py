"""User endpoints: the calling API key's own information (REFERENCE §10.7)."""

from __future__ import annotations

import msgspec

from bybitkit.v5.codec import Wire


class ApiPermissions(Wire, kw_only=True):
    """``permissions`` of GET /v5/user/query-api: each group lists what is granted (empty = none).
    ``FiatGlobalPay`` appears only in the doc example; ``FaitPayOrder`` is Bybit's spelling."""

    ContractTrade: list[str] = msgspec.field(default_factory=list)
    Spot: list[str] = msgspec.field(default_factory=list)
    Wallet: list[str] = msgspec.field(default_factory=list)
    Options: list[str] = msgspec.field(default_factory=list)
    Derivatives: list[str] = msgspec.field(default_factory=list)
    Exchange: list[str] = msgspec.field(default_factory=list)
    Earn: list[str] = msgspec.field(default_factory=list)
    CopyTrading: list[str] = msgspec.field(default_factory=list)
    BlockTrade: list[str] = msgspec.field(default_factory=list)
    NFT: list[str] = msgspec.field(default_factory=list)
    Affiliate: list[str] = msgspec.field(default_factory=list)
    FiatP2P: list[str] = msgspec.field(default_factory=list)
    FiatBitPay: list[str] = msgspec.field(default_factory=list)
    FiatConvertBroker: list[str] = msgspec.field(default_factory=list)
    FiatGlobalPay: list[str] = msgspec.field(default_factory=list)
    BitCard: list[str] = msgspec.field(default_factory=list)
    ByXPost: list[str] = msgspec.field(default_factory=list)


class ApiKeyInfo(Wire, kw_only=True):
    """GET /v5/user/query-api: ``readOnly`` 0 read-write / 1 read-only; ``expiredAt`` and
    ``createdAt`` are ISO-8601 text; ``secret`` is always empty (None)."""

    id: str | None = None
    note: str | None = None
    apiKey: str | None = None
    readOnly: int | None = None
    secret: str | None = None
    permissions: ApiPermissions | None = None
    ips: list[str] = msgspec.field(default_factory=list)
    type: int | None = None
    deadlineDay: int | None = None
    expiredAt: str | None = None
    createdAt: str | None = None
    unified: int | None = None
    uta: int | None = None
    userID: int | None = None
    inviterID: int | None = None
    vipLevel: str | None = None
    mktMakerLevel: str | None = None
    affiliateID: int | None = None
    rsaPublicKey: str | None = None
    isMaster: bool | None = None
    parentUid: str | None = None
    kycLevel: str | None = None
    kycRegion: str | None = None
    userIDInt64: str | None = None
    inviterIDInt64: str | None = None
    affiliateIDInt64: str | None = None
