"""Strict parsing of `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.2, App. B).

Refused with `invalid_request`: another content type or charset, a body over the size limit (413),
bytes that are not UTF-8 after percent-decoding, broken percent escapes, NUL characters, and any
parameter given more than once (RFC 6749 §3.2) unless the endpoint lists it as repeatable (RFC 8707
`resource`). A parameter sent without a value counts as omitted (§3.2).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import unquote_plus

from starlette.requests import Request

from authgate.oauth.errors import InvalidRequest

__all__ = ["Form", "RequestTooLarge", "read_form"]

_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_MAX_PARAMETERS = 64


class RequestTooLarge(InvalidRequest):
    """The request body is over the limit (RFC 9110 §15.5.14)."""

    status_code = 413


class Form:
    """Parsed parameters; values that were empty are absent."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    def get(self, name: str) -> str | None:
        """The parameter's value, or None when absent or empty."""
        values = self._values.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of a repeatable parameter, in order."""
        return list(self._values.get(name, ()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every (name, value), each name's values in the order sent."""
        return [(name, value) for name, values in self._values.items() for value in values]

    def __contains__(self, name: object) -> bool:
        return name in self._values


def _content_type_ok(header: str | None) -> bool:
    if header is None:
        return False
    media, _, params = header.partition(";")
    if media.strip().lower() != "application/x-www-form-urlencoded":
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


async def read_body(request: Request, max_size: int) -> bytes:
    """The request body, refused once it passes `max_size` bytes (also when chunked)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidRequest("malformed Content-Length")
        if int(length) > max_size:
            raise RequestTooLarge("request body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_size:
            raise RequestTooLarge("request body too large")
    return bytes(body)


async def read_form(request: Request, max_size: int, repeatable: Collection[str] = ()) -> Form:
    """Read and parse the body of a POST to an OAuth endpoint."""
    if not _content_type_ok(request.headers.get("content-type")):
        raise InvalidRequest("content type must be application/x-www-form-urlencoded")
    return parse_form(await read_body(request, max_size), repeatable)


def parse_form(body: bytes, repeatable: Collection[str] = ()) -> Form:
    """Parse an urlencoded body strictly (see the module docstring)."""
    if _ESCAPE.search(body):
        raise InvalidRequest("malformed percent-encoding in request body")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("request body must be percent-encoded ASCII") from None
    values: dict[str, list[str]] = {}
    pairs = [pair for pair in text.split("&") if pair]
    if len(pairs) > _MAX_PARAMETERS:
        raise InvalidRequest("too many parameters")
    for pair in pairs:
        raw_name, _, raw_value = pair.partition("=")
        try:
            name = _decoded(raw_name)
            value = _decoded(raw_value)
        except UnicodeDecodeError:
            raise InvalidRequest("request body is not UTF-8") from None
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("NUL character in request body")
        if name in values and name not in repeatable:
            raise InvalidRequest(f"parameter {_printable(name)} is repeated")
        entries = values.setdefault(name, [])
        if value:
            entries.append(value)
    return Form(values)


def _decoded(raw: str) -> str:
    """`unquote_plus` (strict UTF-8), skipped for the common text with no `%` or `+` in it,
    which decodes to itself."""
    if "%" not in raw and "+" not in raw:
        return raw
    return unquote_plus(raw, errors="strict")


def _printable(name: str) -> str:
    """A parameter name fit for an error description (bounded, printable)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in name[:40])
    return repr(cleaned)
