"""Request paths in canonical form, and the route patterns matched against them (RFC 3986 §3.3,
§5.2.4, §6.2.2).

The path a rule judges must be the path the application serves, or `/public/../admin`, `/%61dmin`
or `//admin` would be judged by one route and served by another. `canonical_path` therefore
decodes percent-encoded unreserved characters (and upper-cases other escapes), removes dot
segments, merges repeated slashes, and refuses what an application might read differently from
us: encoded `/`, `\\` or NUL, raw backslashes, control characters and malformed escapes. Shells
(middleware, gateway) should hand the application exactly the canonical path they judged.

Patterns: `path = "/orders"` is a prefix on segment boundaries (it matches `/orders`,
`/orders/` and `/orders/7`, never `/ordersX`); `pattern = "/orders/*/items"` matches segment by
segment, where `*` (or a `{name}` placeholder) is exactly one non-empty segment and a final `**`
is any number of segments. Matrix parameters (`;…` inside a segment) are ignored when matching,
so `/admin;x=1` is judged as `/admin`, as servlet containers would route it; parameters on an
empty or dot segment (`/..;/admin`, `/;x/admin`) are refused. Matching is case-sensitive unless
a policy folds ASCII case (`PathPattern.folded`, `fold_case`) for upstreams that ignore it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "InvalidPathError",
    "PathPattern",
    "canonical_decoded_path",
    "canonical_path",
    "fold_case",
    "request_segments",
    "strip_leading_segments",
]

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_CHARS = frozenset(range(0x21, 0x7F)) - frozenset(b"\\#?")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_FORBIDDEN_ESCAPES = frozenset({0x2F, 0x5C, 0x00})
# What a decoded path may contain and still be re-encoded faithfully for judging.
_DECODED_SAFE = "/!$&'()*+,;=:@-._~"
_PLACEHOLDER = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z]+)?\}$")


class InvalidPathError(ValueError):
    """The request path is malformed or ambiguous: the client gets a 400."""


def canonical_path(raw: bytes | str) -> str:
    """The canonical form of a percent-encoded absolute path (no query)."""
    if isinstance(raw, str):
        if not raw.isascii():
            raise InvalidPathError("the path contains a character that is not allowed")
        data = raw.encode("ascii")
    else:
        data = raw
    if not data.startswith(b"/"):
        raise InvalidPathError("the path must start with '/'")
    if not _PATH_CHARS.issuperset(data):
        raise InvalidPathError("the path contains a character that is not allowed")
    if b"%" in data:
        data = _decode_unreserved(data)
    if b"/." in data or b"//" in data:
        data = _remove_dot_segments(data)
    if b";" in data:
        _check_parameters(data)
    return data.decode("ascii")


def _check_parameters(path: bytes) -> None:
    # Matching ignores `;…` in a segment, and so do servlet containers, which then also read
    # `/public/..;/admin` as `/admin` and `/;x/admin` as `/admin`. Such a segment would be judged
    # as one thing and served as another, so it is refused.
    for segment in path.split(b"/")[1:]:
        if b";" in segment and segment.partition(b";")[0] in (b"", b".", b".."):
            raise InvalidPathError("path parameters on an empty or dot segment")


def canonical_decoded_path(path: str, encoding: str = "utf-8") -> str:
    """The canonical form of an already percent-decoded path.

    `encoding` is how the path's bytes were turned into text: "utf-8" for ASGI `path`,
    "latin-1" for WSGI `PATH_INFO` (PEP 3333). The bytes are re-encoded with it and
    percent-encoded again, so an application that sees `path` and a rule that sees the result
    agree on every segment.
    """
    try:
        data = path.encode(encoding, "surrogateescape")
    except (UnicodeEncodeError, LookupError):
        raise InvalidPathError("the path cannot be encoded") from None
    if b"\\" in data or any(c < 0x20 or c == 0x7F for c in data):
        raise InvalidPathError("the path contains a character that is not allowed")
    return canonical_path(quote(data, safe=_DECODED_SAFE))


def _decode_unreserved(path: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c != 0x25:  # "%"
            out.append(c)
            i += 1
            continue
        hex_digits = path[i + 1 : i + 3]
        if len(hex_digits) != 2 or not _HEX.issuperset(hex_digits):
            raise InvalidPathError("malformed percent-encoding in the path")
        value = int(hex_digits, 16)
        if value in _FORBIDDEN_ESCAPES:
            raise InvalidPathError("encoded '/', '\\' or NUL in the path")
        if value in _UNRESERVED:
            out.append(value)
        else:
            out += b"%" + hex_digits.upper()
        i += 3
    return bytes(out)


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 on an absolute path, with empty segments merged; `..` stops at the root."""
    segments = path.split(b"/")
    output: list[bytes] = []
    for segment in segments[1:-1]:
        if segment == b"..":
            if output:
                output.pop()
        elif segment not in (b".", b""):
            output.append(segment)
    last = segments[-1]
    trailing = last in (b".", b"", b"..")
    if last == b"..":
        if output:
            output.pop()
    elif not trailing:
        output.append(last)
    result = b"/" + b"/".join(output)
    return result + b"/" if trailing and output else result


def _segments(canonical: str) -> list[str]:
    # Trailing slash is insignificant for matching; matrix parameters are ignored.
    return (
        [s.partition(";")[0] for s in canonical.strip("/").split("/")] if canonical != "/" else []
    )


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A compiled `path` (prefix) or `pattern`; `specificity` orders overlapping routes."""

    source: str
    segments: tuple[str | None, ...]  # None: any one segment
    open_ended: bool  # ends with `**` (every prefix route does)
    # More literal segments, then more segments, then exact before open-ended, wins. Computed
    # once: `Policy.match` compares it for every candidate route of every request.
    specificity: tuple[int, int, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        literals = sum(1 for s in self.segments if s is not None)
        specificity = (literals, len(self.segments), 0 if self.open_ended else 1)
        object.__setattr__(self, "specificity", specificity)

    @classmethod
    def prefix(cls, path: str) -> PathPattern:
        return cls._compile(path, open_ended=True, wildcards=False)

    @classmethod
    def pattern(cls, pattern: str) -> PathPattern:
        return cls._compile(pattern, open_ended=False, wildcards=True)

    @classmethod
    def _compile(cls, text: str, *, open_ended: bool, wildcards: bool) -> PathPattern:
        if not isinstance(text, str) or not text.startswith("/"):
            raise ValueError(f"route path {text!r} must start with '/'")
        parts = text.strip("/").split("/") if text.strip("/") else []
        compiled: list[str | None] = []
        for index, part in enumerate(parts):
            if wildcards and part == "**":
                if index != len(parts) - 1:
                    raise ValueError(f"route pattern {text!r}: '**' may only end a pattern")
                open_ended = True
            elif wildcards and (part == "*" or _PLACEHOLDER.match(part)):
                compiled.append(None)
            elif not part or part in (".", "..") or "*" in part or "{" in part or "}" in part:
                raise ValueError(f"route path {text!r}: segment {part!r} is not allowed")
            else:
                literal = canonical_decoded_path("/" + part)
                compiled.append(_segments(literal)[0])
        return cls(text, tuple(compiled), open_ended)

    def folded(self) -> PathPattern:
        """The same pattern with its literal segments in ASCII lower case (see `fold_case`)."""
        segments = tuple(None if s is None else fold_case(s) for s in self.segments)
        return PathPattern(self.source, segments, self.open_ended)

    def matches(self, canonical: str) -> bool:
        """Whether the canonical request path falls under this pattern."""
        return self.matches_segments(_segments(canonical))

    def matches_segments(self, segments: list[str]) -> bool:
        own = self.segments
        if len(segments) < len(own) or (len(segments) > len(own) and not self.open_ended):
            return False
        for want, got in zip(own, segments, strict=False):
            if want is None:
                if not got:
                    return False
            elif want != got:
                return False
        return True


def request_segments(canonical: str) -> list[str]:
    """Split a canonical path once for matching against many patterns."""
    return _segments(canonical)


def fold_case(segment: str) -> str:
    """ASCII lower case. Canonical paths are ASCII, and `%XX` escapes fold on both sides alike,
    so `%C3%89` and `%C3%A9` (É and é) stay different, as in Express's case-insensitive routing."""
    return segment.lower()


def strip_leading_segments(
    canonical: str, prefix: tuple[str, ...], *, case_insensitive: bool = False
) -> str | None:
    """`canonical` without its leading segments when they match `prefix` as a route matches
    them (matrix parameters ignored; ASCII case ignored when `case_insensitive`, with `prefix`
    already folded), or None when they do not. What a route matched is what is removed:
    `/api;v=1/x` and, case-insensitively, `/API/x` lose `/api` like `/api/x` does."""
    parts = canonical.split("/")  # "" first; a canonical path has no other empty segment
    count = len(prefix)
    if len(parts) - 1 < count:
        return None
    for want, got in zip(prefix, parts[1 : count + 1], strict=True):
        name = got.partition(";")[0]
        if (fold_case(name) if case_insensitive else name) != want:
            return None
    return "/" + "/".join(parts[count + 1 :])
