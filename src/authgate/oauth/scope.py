"""Scope strings as RFC 6749 §3.3 defines them, shared by the gate and the server.

    scope       = scope-token *( SP scope-token )
    scope-token = 1*( %x21 / %x23-5B / %x5D-7E )

The separator is SP (U+0020) only: a tab, a newline, U+00A0 or U+3000 is not a separator (RFC 9068
§2.2.3 and RFC 7662 §2.2 use the same syntax). Splitting on any whitespace, as `str.split()` does,
would read "read\\twrite" as two scopes where the issuer meant at most one.
"""

from __future__ import annotations

import re

__all__ = ["is_scope_token", "split_scope"]

_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_scope_token(value: str) -> bool:
    """True when `value` is one well-formed scope token."""
    return _TOKEN.fullmatch(value) is not None


def split_scope(value: str) -> tuple[str, ...]:
    """The scope tokens of a received scope string, in order, duplicates dropped.

    Split on U+0020 only; empty items (repeated, leading or trailing spaces) are dropped. An item
    that is not a scope-token (it holds a tab, a newline, a non-ASCII character, `"` or `\\`) is
    dropped as well: it is no scope under §3.3, and dropping it can only remove rights, whereas
    keeping it would let it be written out again (an `X-Auth-Token` `scope`, a log) and split
    differently by the next reader.
    """
    return tuple(dict.fromkeys(t for t in value.split(" ") if t and is_scope_token(t)))
