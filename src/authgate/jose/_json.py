"""Strict JSON for JOSE headers, claims and keys (RFC 8259, RFC 7515 §5.2, RFC 8725 §3.10).

Duplicate member names are rejected: RFC 7515 §5.2 lets a parser keep either value, and parsers
that disagree are an attack ("JSON parser differential"). NaN and Infinity literals, top levels
other than an object, nesting beyond the interpreter's recursion limit, integers with more digits
than Python converts and strings holding lone surrogates (RFC 7493 §2.1) are rejected too.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from json.scanner import make_scanner
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
# The C scanner behind `_DECODER`: parsing an object that starts at offset 0 and fills the whole
# text needs neither of `JSONDecoder.decode`'s two whitespace regex matches.
_SCAN = make_scanner(_DECODER)  # type: ignore[arg-type]  # typeshed: the class, not its call


def loads_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse `data` as a UTF-8 JSON object, or raise `MalformedToken`."""
    try:
        text = data.decode("utf-8")
        if text[:1] == "{":
            value, end = _SCAN(text, 0)
            if end != len(text):  # trailing whitespace (allowed) or garbage (refused)
                value = _DECODER.decode(text)
        else:
            value = _DECODER.decode(text)
    except MalformedToken:
        raise
    except (ValueError, RecursionError, StopIteration):
        # ValueError covers bad UTF-8, bad JSON and integers beyond Python's digit limit.
        raise MalformedToken(f"{what} is not valid JSON") from None
    if type(value) is not dict:
        raise MalformedToken(f"{what} must be a JSON object")
    # A `\\uD800`-style escape outside a surrogate pair decodes to a lone surrogate, which no
    # UTF-8 encoder accepts (RFC 7493 §2.1): refuse it here rather than crash whoever re-encodes
    # the value. Only texts with a `\\u` escape need the check.
    if "\\u" in text:
        try:
            dumps(value)
        except UnicodeEncodeError:
            raise MalformedToken(f"{what} holds a lone surrogate") from None
    return value


# `json.dumps` with these options builds an encoder on every call; one built once encodes the same.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# And `JSONEncoder.encode` still builds its C encoder on every call: this one is built once, with
# the same options. Without the circular-reference bookkeeping (a `markers` dict, which an
# exception could leave dirty in a shared encoder): what is encoded here is our own headers and
# claims, and a cycle would still fail, with `RecursionError` instead of `ValueError`.
_C_ENCODER = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, False
    )
)


def dumps(value: Any) -> bytes:
    """Compact, UTF-8 serialization used for headers and claims we produce."""
    if _C_ENCODER is not None and type(value) is dict:
        return "".join(_C_ENCODER(value, 0)).encode()
    return _ENCODER.encode(value).encode()
