"""Strict JSON for JOSE headers, claims and keys.

Duplicate member names are rejected (RFC 7515 §5.2 allows it; RFC 8725 §3.10 and the "JSON parser
differential" attacks say to), as are NaN/Infinity, non-object top levels, deep nesting and huge numbers.
"""

from __future__ import annotations

import json
from typing import Any

from authgate.jose.errors import MalformedToken


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("duplicate member name in JSON object")
    return obj


def _no_constant(name: str) -> Any:
    raise MalformedToken(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def loads_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse `data` as a UTF-8 JSON object, or raise `MalformedToken`."""
    try:
        text = data.decode("utf-8")
        value = _DECODER.decode(text)
    except MalformedToken:
        raise
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad JSON and integers beyond Python's digit limit.
        raise MalformedToken(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} must be a JSON object")
    return value


def dumps(value: Any) -> bytes:
    """Compact, UTF-8 serialization used for headers and claims we produce."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
