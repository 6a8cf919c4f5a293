"""Responses the gateway writes itself: errors, health, metrics, JWKS (RFC 9110 §15, RFC 6750 §3).

Error bodies are small JSON objects with an OAuth-style `error` code; they never echo request data.
"""

from __future__ import annotations

import json
from http import HTTPStatus

__all__ = ["GATEWAY_ERRORS", "error_body", "reason", "render"]

# The error code sent in the body for statuses that the gateway produces on its own.
GATEWAY_ERRORS: dict[int, str] = {
    400: "invalid_request",
    401: "invalid_token",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    414: "uri_too_long",
    431: "request_header_fields_too_large",
    500: "server_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "temporarily_unavailable",
    504: "gateway_timeout",
    505: "http_version_not_supported",
}

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def reason(status: int) -> bytes:
    """The standard reason phrase for `status` (empty for an unknown code)."""
    return _REASONS.get(status, b"")


def error_body(status: int, description: str | None = None) -> bytes:
    """`{"error": …, "error_description": …}` for a gateway-made error."""
    body: dict[str, str] = {"error": GATEWAY_ERRORS.get(status, "error")}
    if description:
        body["error_description"] = description
    return json.dumps(body, separators=(",", ":")).encode()


def render(
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    cache_control: bytes = b"no-store",
    headers: list[tuple[bytes, bytes]] | None = None,
    keep_alive: bool = True,
    head_only: bool = False,
    version: bytes = b"1.1",
) -> bytes:
    """A complete HTTP/1.x response with `Content-Length` framing."""
    lines = [
        b"HTTP/" + version + b" %d " % status + reason(status),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Cache-Control: " + cache_control,
    ]
    lines.extend(name + b": " + value for name, value in headers or ())
    if not keep_alive:
        lines.append(b"Connection: close")
    elif version == b"1.0":
        lines.append(b"Connection: keep-alive")
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head if head_only else head + body
