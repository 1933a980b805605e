"""Decoding Bybit JSON into typed structs, once, exactly.

Conventions every schema in :mod:`bybitkit.v5.schemas` follows:

* Structs mirror the wire: field names are Bybit's own (``orderLinkId``, ``cumExecQty``), so a
  schema reads like the docs and a renamed field cannot slip through.
* Money (prices, sizes, fees, rates, balances) is ``Decimal``, decoded by msgspec from the JSON
  string exactly; never float. Counts and ids that Bybit sends as JSON numbers are ``int``; ms
  timestamps that Bybit sends as strings are ``int`` too (the decoder is lax about str -> int).
* Bybit writes ``""`` for an absent value, in number fields as much as in text fields.
  :func:`normalize` turns every empty-string *value* (``:""``) into ``null`` before decoding, so
  absent numbers decode to ``None`` rather than failing, and absent text is ``None`` as well.
  The rewrite is safe on valid JSON: inside a string a quote is always escaped, so the bytes
  ``:""`` can only be a key followed by an empty string.
* Optional fields default to ``None``; unknown fields are ignored (Bybit adds fields over time).
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

import msgspec

from bybitkit.errors import DecodeError

T = TypeVar("T")

_EMPTY_COMPACT = b':""'
_NULL_COMPACT = b":null"
_EMPTY_SPACED = b': ""'
_join_null = ":null".join
_join_null_b = _NULL_COMPACT.join
_NULL_SPACED = b": null"


class Wire(msgspec.Struct, gc=False, kw_only=True):
    """Base of every wire struct. Decoded trees have no cycles, so GC tracking is off (faster
    allocation). Subclasses pass ``kw_only=True`` themselves (msgspec does not inherit it)."""


def is_spaced(raw: bytes | str) -> bool:
    """Whether JSON text is written with ``": "`` separators (judged from its first key)."""
    if isinstance(raw, str):
        i = raw.find('":', 0, 80)
        return i >= 0 and raw[i + 2 : i + 3] == " "
    i = raw.find(b'":', 0, 80)
    return i >= 0 and raw[i + 2 : i + 3] == b" "


@overload
def normalize(raw: bytes) -> bytes: ...
@overload
def normalize(raw: str) -> str: ...
def normalize(raw: bytes | str) -> bytes | str:
    """Turn Bybit's empty-string values into ``null``: ``:""`` (compact JSON, as Bybit sends
    it) always, and ``: ""`` when the text is spaced JSON (as Python's json.dumps writes it).
    Text stays text (WebSocket frames arrive as ``str``; msgspec decodes either)."""
    # split/join is measurably faster than replace() here (no counting pass), and hands back
    # the very same object when there is nothing to replace.
    if isinstance(raw, str):
        raw = _join_null(raw.split(':""'))
        if is_spaced(raw):
            raw = raw.replace(': ""', ": null")
        return raw
    raw = _join_null_b(raw.split(_EMPTY_COMPACT))
    if is_spaced(raw):
        raw = raw.replace(_EMPTY_SPACED, _NULL_SPACED)
    return raw


def decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    """A lax decoder for ``type_`` (numeric strings may fill int fields)."""
    return msgspec.json.Decoder(type_, strict=False)


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(type_: type[T], raw: bytes | str, what: str = "") -> T:
    """Normalize and decode ``raw`` into ``type_``; a malformed message raises
    :class:`DecodeError`."""
    dec: msgspec.json.Decoder[T] | None = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = decoder(type_)
    return decode_normalized(dec, normalize(raw), what or getattr(type_, "__name__", str(type_)))


def decode_normalized(dec: msgspec.json.Decoder[T], raw: bytes | str | msgspec.Raw, what: str) -> T:
    """Decode already-normalized JSON with a prepared decoder (hot paths); anything malformed,
    mistyped, too deeply nested or not valid text raises :class:`DecodeError`."""
    try:
        return dec.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError) as exc:
        text = bytes(raw) if isinstance(raw, msgspec.Raw) else raw
        raise DecodeError(what, str(exc), text) from None


_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    """Compact JSON, as Bybit itself sends it."""
    return _encoder.encode(obj)
