"""A parsed gateway request head for unit tests: a bodiless keep-alive HTTP/1.1 request."""

from __future__ import annotations

from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import parse_request_target


def request_head(
    target: bytes, fields: dict[bytes, bytes] | None = None, *, peer: str = "127.0.0.1"
) -> RequestHead:
    """`GET target` from `peer` with `fields` (lower-case names) as its only header fields."""
    fields = fields if fields is not None else {}
    return RequestHead(
        method=b"GET",
        target=parse_request_target(target),
        version=b"1.1",
        headers=list(fields.items()),
        fields=fields,
        repeated=set(),
        keep_alive=True,
        upgrade=None,
        has_body=False,
        chunked=False,
        peer=peer,
    )
