"""Structural comparison of a JSON answer with a documented example.

Same field names (recursively, for objects and for the first element of lists), same JSON types
(string, number, bool, object, array, null) and, for rows (arrays of arrays: klines, book levels),
the same row width. Values are not compared.

Differences are ``(kind, path, detail)``; kind is ``missing`` (documented, absent), ``extra``
(present, not in the example), ``type``, ``width`` or ``empty`` (the answer's list is empty where
the example has items, so they cannot be compared). A path looks like ``result.list[].symbol``
(``[]`` is a list's first item).

An allowance is ``(kind, path) -> reason`` for a justified difference; :func:`problems` reports
every difference not allowed, and every allowance that matched nothing (so the lists stay true).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

Allowance = Mapping[tuple[str, str], str]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not JSON: {value!r}")


def structure_diff(
    doc: Any, got: Any, path: str = "", maps: Collection[str] = ()
) -> list[tuple[str, str, str]]:
    """Every structural difference of ``got`` from ``doc``. ``maps``: paths of objects whose keys
    are data (e.g. coin names of ``cumFeeDetail``): only their values' types are compared."""
    td, tg = json_type(doc), json_type(got)
    if td != tg:
        return [("type", path, f"documented {td} {doc!r:.60}, got {tg} {got!r:.60}")]
    out: list[tuple[str, str, str]] = []
    dot = f"{path}." if path else ""
    if td == "object":
        if path in maps:
            if doc and got:
                first_doc, first_got = next(iter(doc.values())), next(iter(got.values()))
                out += structure_diff(first_doc, first_got, path, maps)
            return out
        out += [("missing", dot + k, "") for k in doc if k not in got]
        out += [("extra", dot + k, f"= {got[k]!r:.60}") for k in got if k not in doc]
        for k in doc:
            if k in got:
                out += structure_diff(doc[k], got[k], dot + k, maps)
    elif td == "array" and doc:
        if not got:
            return [("empty", path, "the list is empty; its items were not compared")]
        rows = json_type(doc[0]) == "array" and json_type(got[0]) == "array"
        if rows and len(doc[0]) != len(got[0]):
            out.append(("width", path, f"rows of {len(doc[0])} documented, got {len(got[0])}"))
        out += structure_diff(doc[0], got[0], f"{path}[]", maps)
    return out


def problems(
    doc: Any, got: Any, allowed: Allowance | None = None, maps: Collection[str] = ()
) -> list[str]:
    """The differences not allowed, and the allowances that matched nothing, as text lines."""
    allowed = allowed or {}
    found = structure_diff(doc, got, maps=maps)
    out = [f"{k} {p} {d}".rstrip() for k, p, d in found if (k, p) not in allowed]
    stale = sorted(set(allowed) - {(k, p) for k, p, _ in found})
    out += [f"allowance no longer needed: {k} {p}" for k, p in stale]
    return out
