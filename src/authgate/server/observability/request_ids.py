"""The request id: taken from `X-Request-Id` only when the TCP peer is a trusted proxy
(`http.trusted_proxies`) and the value is short and made of safe characters, else generated. It
lives in a context variable for the request's duration, so every log line of the request (the
access line, a refusal, a traceback) carries it, and it is echoed in the response."""

from __future__ import annotations

import re
from contextvars import ContextVar

from authgate.http_forwarding import TrustedProxies
from authgate.server.random_pool import RandomPool

__all__ = ["HEADER", "REQUEST_ID", "accept_request_id", "new_request_id"]

HEADER = b"x-request-id"
MAX_LENGTH = 128
# No space, quote, backslash or control character: the id goes verbatim into log lines and headers.
_SAFE = re.compile(rb"[A-Za-z0-9._~:/+=@-]{1,%d}" % MAX_LENGTH)

REQUEST_ID: ContextVar[str] = ContextVar("authgate_request_id", default="-")


_IDS = RandomPool(8)


def new_request_id() -> str:
    """A fresh id: 16 random hex digits."""
    return _IDS.take().hex()


def accept_request_id(sent: bytes | None, peer: str | None, proxies: TrustedProxies) -> str:
    """`sent` when a trusted proxy sent it and it is safe to log, else a fresh id. A client that
    is not a trusted proxy cannot choose its id (it could otherwise forge or hide log lines)."""
    if sent is None or peer is None or not proxies or not proxies.trusts(peer):
        return new_request_id()
    if _SAFE.fullmatch(sent) is None:
        return new_request_id()
    return sent.decode("ascii")
