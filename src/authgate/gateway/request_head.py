"""A parsed request head, and the exchange interface that a connection drives (RFC 9112 §2-§6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from authgate.gateway.forwarded import ForwardedFor
from authgate.gateway.header_rules import Headers
from authgate.gateway.request_target import RequestTarget

__all__ = ["Exchange", "RequestHead"]


@dataclass(slots=True)
class RequestHead:
    """What the gateway knows about a request once its header section is complete.

    `fields` maps lower-case names to the value of their last occurrence; `repeated` holds the
    lower-case names that occurred more than once (for fields that must be unique, such as `Host`).
    """

    method: bytes
    target: RequestTarget
    version: bytes
    headers: Headers
    fields: dict[bytes, bytes]
    repeated: set[bytes]
    keep_alive: bool
    upgrade: bytes | None  # the upgrade protocol ("websocket") when the request asks for one
    has_body: bool
    chunked: bool
    peer: str
    log: dict[str, object] = field(default_factory=dict)
    # The forwarding values, once the gateway computed them (a DPoP proof's `htu` needs them
    # before the decision, the upstream request after it).
    forwarded: ForwardedFor | None = None

    def all_values(self, lower_name: bytes) -> list[bytes]:
        """Every value of a field, in order (for fields that may be repeated)."""
        return [v for n, v in self.headers if n.lower() == lower_name]


class Exchange(Protocol):
    """One request/response cycle on a client connection.

    The connection feeds the request body to it; it writes the response through the connection and
    calls `ClientConnection.response_finished` once the whole response has been written.
    """

    def feed_body(self, chunk: bytes) -> None:
        """A piece of the request body."""

    def end_body(self) -> None:
        """The request body is complete."""

    def client_write_paused(self, paused: bool) -> None:
        """The client's socket buffer filled (True) or drained (False): pause the producer."""

    def client_lost(self) -> None:
        """The client went away or the request was malformed: release everything."""
