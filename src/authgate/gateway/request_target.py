"""The request target, parsed and put in canonical form before any route is matched (RFC 9112 §3.2).

The path that the policy sees must be the path that the upstream serves, or a request such as
`/public/../admin` or `/%61dmin` would be judged by one route and served by another. So the gateway
puts the path in the policy's canonical form (`authgate.policy.paths.canonical_path`: RFC 3986
§5.2.4 and §6.2.2, encoded `/`, `\\` and NUL refused) and forwards the path it judged (rewritten
only by the route's configured prefixes, see `upstream_request.upstream_path`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authgate.policy.paths import InvalidPathError, canonical_path

__all__ = ["BadRequestTargetError", "RequestTarget", "parse_request_target"]

# Visible ASCII without "#" (a fragment never belongs in a request target). The query is passed on
# as received: it takes no part in routing.
_QUERY_CHARS = frozenset(range(0x21, 0x7F)) - frozenset(b"#")
_ABSOLUTE_FORM = re.compile(rb"^(?i:https?)://([^/?#]*)([^?#]*)(?:\?([^#]*))?$")


class BadRequestTargetError(ValueError):
    """The request target cannot be served: the client gets a 400."""


@dataclass(frozen=True, slots=True)
class RequestTarget:
    """A request target in canonical origin form.

    `path` is what routes are matched against and, after the route's prefix rewriting, what the
    upstream receives; `query` is passed on as received (without its `?`; `access_token`
    parameters are dropped unless the route forwards credentials); `authority` is set for an
    absolute-form target (RFC 9112 §3.2.2).
    """

    path: str
    query: bytes
    authority: bytes | None = None


def parse_request_target(raw: bytes) -> RequestTarget:
    """Parse an origin-form or absolute-form target; `BadRequestTargetError` for anything else."""
    authority = None
    if raw[:1] != b"/":
        match = _ABSOLUTE_FORM.match(raw)
        if match is None:
            # asterisk-form (OPTIONS *) and authority-form (CONNECT) are not proxied.
            raise BadRequestTargetError("request target must be in origin or absolute form")
        authority, raw_path, raw_query = match.group(1), match.group(2) or b"/", match.group(3)
        raw = raw_path + (b"?" + raw_query if raw_query is not None else b"")
    raw_path, sep, query = raw.partition(b"?")
    if not _QUERY_CHARS.issuperset(query):
        raise BadRequestTargetError("query contains a character that is not allowed")
    try:
        path = canonical_path(raw_path)
    except InvalidPathError as exc:
        raise BadRequestTargetError(str(exc)) from None
    return RequestTarget(path, query if sep else b"", authority)
