"""The request id: taken from `X-Request-Id` only when the TCP peer is a trusted proxy
(`http.trusted_proxies`) and the value is short and made of safe characters, else generated. It
lives in a context variable for the request's duration, so every log line of the request (the
access line, a refusal, a traceback) carries it, and it is echoed in the response.

A generated id is 64 bits from `os.urandom` (as `secrets.token_hex(8)` gives), but the bytes are
drawn for `_BATCH` ids at a time: `os.urandom` is a system call that releases the GIL, and in a
server whose other threads sign tokens each release can cost the event loop a GIL hand-over, i.e.
far more than the call itself. A forked process drops the ids it inherited, so that no two worker
processes hand out the same ones."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextvars import ContextVar

from authgate.http_forwarding import TrustedProxies

__all__ = ["HEADER", "REQUEST_ID", "accept_request_id", "new_request_id"]

HEADER = b"x-request-id"
MAX_LENGTH = 128
# No space, quote, backslash or control character: the id goes verbatim into log lines and headers.
_SAFE = re.compile(rb"[A-Za-z0-9._~:/+=@-]{1,%d}" % MAX_LENGTH)

REQUEST_ID: ContextVar[str] = ContextVar("authgate_request_id", default="-")


_BATCH = 256  # ids drawn with one os.urandom call


class _Drawn:
    """The drawn ids not handed out yet."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: Iterator[str] = iter(())

    def draw(self) -> None:
        digits = os.urandom(8 * _BATCH).hex()
        self.ids = iter([digits[i : i + 16] for i in range(0, len(digits), 16)])

    def forget(self) -> None:
        self.ids = iter(())


_drawn = _Drawn()
os.register_at_fork(after_in_child=_drawn.forget)


def new_request_id() -> str:
    """A fresh id: 16 random hex digits, each id handed out once (`next` on a list iterator is
    atomic under the GIL, so threads cannot get the same one)."""
    while (request_id := next(_drawn.ids, None)) is None:
        _drawn.draw()
    return request_id


def accept_request_id(sent: bytes | None, peer: str | None, proxies: TrustedProxies) -> str:
    """`sent` when a trusted proxy sent it and it is safe to log, else a fresh id. A client that
    is not a trusted proxy cannot choose its id (it could otherwise forge or hide log lines)."""
    if sent is None or peer is None or not proxies or not proxies.trusts(peer):
        return new_request_id()
    if _SAFE.fullmatch(sent) is None:
        return new_request_id()
    return sent.decode("ascii")
