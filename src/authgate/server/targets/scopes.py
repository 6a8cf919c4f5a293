"""Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive tokens of NQCHAR.

`scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable ASCII except space, `"` and `\\`. A
request's value with empty tokens (two spaces, a leading or trailing space) or any other separator
(a tab, U+00A0) is malformed and refused. The grammar lives in `authgate.oauth.scope`, shared with
the gate, which drops what a request here would be refused for (`split_scope`).
"""

from __future__ import annotations

from authgate.oauth.errors import InvalidScope
from authgate.oauth.scope import is_scope_token

__all__ = ["format_scope", "is_scope_token", "parse_scope"]

_MAX_SCOPES = 100


def parse_scope(value: str | None) -> tuple[str, ...]:
    """The scope tokens of a request's `scope` parameter, in order, duplicates dropped.

    None (parameter absent or empty, RFC 6749 §3.2) gives an empty tuple.
    """
    if value is None:
        return ()
    tokens = value.split(" ")
    if len(tokens) > _MAX_SCOPES:
        raise InvalidScope("too many scope values")
    if not all(is_scope_token(token) for token in tokens):
        raise InvalidScope("malformed scope value")
    return tuple(dict.fromkeys(tokens))


def format_scope(scopes: tuple[str, ...]) -> str:
    """The space-delimited form of `scopes`."""
    return " ".join(scopes)
