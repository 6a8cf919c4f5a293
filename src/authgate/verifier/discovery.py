"""Authorization server metadata discovery (RFC 8414 §3, OpenID Connect Discovery 1.0 §4).

The metadata URL is derived from the configured issuer, never from a token: RFC 8414 §3.1 inserts
`/.well-known/oauth-authorization-server` between the host and the issuer's path; OpenID Connect
appends `/.well-known/openid-configuration` to the issuer. The document's `issuer` must equal the
configured issuer exactly (RFC 8414 §3.3, OIDC Discovery §4.3), or an attacker-controlled metadata
host could substitute its own keys. Discovered endpoints obey the same https-only rule as configured
ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from authgate.verifier.http_fetch import FetchError, FetchLimits, HttpFetcher, check_fetch_url

__all__ = ["ServerMetadata", "discover", "metadata_urls", "parse_metadata"]

_OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
_OPENID_WELL_KNOWN = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The parts of the metadata the verifier uses, and the whole document."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None
    document: dict[str, Any]


def metadata_urls(
    issuer: str, kind: Literal["auto", "oauth", "openid"] = "auto"
) -> tuple[str, ...]:
    """The URLs to try, in order, for `issuer`."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    oauth = urlunsplit((parts.scheme, parts.netloc, _OAUTH_WELL_KNOWN + path, "", ""))
    openid = urlunsplit((parts.scheme, parts.netloc, path + _OPENID_WELL_KNOWN, "", ""))
    if kind == "oauth":
        return (oauth,)
    if kind == "openid":
        return (openid,)
    return (oauth, openid)


def parse_metadata(document: dict[str, Any], issuer: str) -> ServerMetadata:
    """Validate a metadata document for `issuer`; raise `FetchError` if it cannot be used."""
    if document.get("issuer") != issuer:
        # RFC 8414 §3.3: MUST be identical; no normalisation of slashes or case.
        raise FetchError("metadata 'issuer' does not equal the configured issuer")
    endpoints: dict[str, str | None] = {}
    for name in ("jwks_uri", "introspection_endpoint"):
        value = document.get(name)
        if value is None:
            endpoints[name] = None
            continue
        if not isinstance(value, str):
            raise FetchError(f"metadata {name!r} must be a string")
        try:
            endpoints[name] = check_fetch_url(value)
        except ValueError as exc:
            raise FetchError(f"metadata {name!r}: {exc}") from None
    return ServerMetadata(
        issuer, endpoints["jwks_uri"], endpoints["introspection_endpoint"], document
    )


async def discover(
    fetcher: HttpFetcher,
    issuer: str,
    limits: FetchLimits,
    kind: Literal["auto", "oauth", "openid"] = "auto",
) -> ServerMetadata:
    """Fetch and validate the issuer's metadata, trying each well-known URL in turn.

    A document for another issuer does not end the search: on a host that serves several
    issuers, the RFC 8414 URL of a path issuer (`/.well-known/oauth-authorization-server/t1`)
    may be answered with the host's root issuer, while OpenID discovery (`/t1/.well-known/...`)
    finds the right one. Whatever is accepted must name the configured issuer exactly.
    """
    errors: list[str] = []
    for url in metadata_urls(issuer, kind):
        try:
            response = await fetcher.get_json(url, limits)
            return parse_metadata(response.body, issuer)
        except FetchError as exc:
            message = str(exc)
            errors.append(message if url in message else f"{url}: {message}")
    raise FetchError("discovery failed: " + "; ".join(errors))
