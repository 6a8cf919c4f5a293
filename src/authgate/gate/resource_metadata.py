"""OAuth 2.0 Protected Resource Metadata (RFC 9728 §2, §3, §5.1).

The gate publishes, for its configured `resource` identifier, a JSON document naming the
authorization servers that issue tokens for it, the scopes it understands and how bearer tokens
may be sent, so that clients (MCP clients among them) can discover where to get a token. The
document is served at the well-known URL formed by inserting `/.well-known/oauth-protected-resource`
between the host and the path of the resource identifier (§3.1), and that URL is announced in
every `WWW-Authenticate` challenge as `resource_metadata` (§5.1). The `resource` member is exactly
the configured identifier (§3.3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authgate.gate.challenge import Answer
from authgate.verifier.http_fetch import is_loopback_host

__all__ = ["WELL_KNOWN_PATH", "ResourceMetadata"]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True, slots=True)
class ResourceMetadata:
    """The RFC 9728 document for one protected resource.

    `resource`: the resource identifier, an https URL (http only to loopback, for development)
    with no fragment. `extra` holds any other RFC 9728 §2 member (`resource_policy_uri`,
    `dpop_bound_access_tokens_required`…), published as given.
    """

    resource: str
    authorization_servers: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    bearer_methods_supported: tuple[str, ...] = ("header",)
    resource_name: str | None = None
    resource_documentation: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        parts = urlsplit(self.resource)
        secure = parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback_host(parts.hostname or "")
        )
        if not secure or not parts.hostname or parts.fragment or "#" in self.resource:
            raise ValueError(
                "resource must be an https URL without a fragment (RFC 9728 §2); "
                "http is allowed only to loopback"
            )
        reserved = {
            "resource",
            "authorization_servers",
            "scopes_supported",
            "bearer_methods_supported",
            "resource_name",
            "resource_documentation",
        }
        if reserved & set(self.extra):
            raise ValueError("resource metadata extra members repeat a named member")

    @property
    def path(self) -> str:
        """The path where the document is served (RFC 9728 §3.1)."""
        resource_path = urlsplit(self.resource).path.rstrip("/")
        return WELL_KNOWN_PATH + resource_path

    @property
    def url(self) -> str:
        """The document's absolute URL, for `resource_metadata` in challenges."""
        parts = urlsplit(self.resource)
        return urlunsplit((parts.scheme, parts.netloc, self.path, parts.query, ""))

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"resource": self.resource}
        if self.authorization_servers:
            doc["authorization_servers"] = list(self.authorization_servers)
        if self.scopes_supported:
            doc["scopes_supported"] = list(self.scopes_supported)
        doc["bearer_methods_supported"] = list(self.bearer_methods_supported)
        if self.resource_name is not None:
            doc["resource_name"] = self.resource_name
        if self.resource_documentation is not None:
            doc["resource_documentation"] = self.resource_documentation
        doc.update(self.extra)
        return doc

    def answer(self, method: str) -> Answer:
        """The HTTP answer for a request to `path`: 200 for GET/HEAD, 405 otherwise."""
        if method not in ("GET", "HEAD"):
            return Answer(
                405,
                (("allow", "GET, HEAD"), ("content-type", "application/json")),
                b'{"error":"method_not_allowed"}',
            )
        body = json.dumps(self.document()).encode()
        headers = (("content-type", "application/json"), ("cache-control", "max-age=3600"))
        return Answer(200, headers, b"" if method == "HEAD" else body)
