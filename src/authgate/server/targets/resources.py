"""Choosing the API (and so the audience) and the scopes of an access token.

RFC 8707 §2: `resource` is an absolute URI without a fragment; it names the API whose identifier is
the token's `aud`. This server issues one audience per token: several distinct `resource` values
are refused with `invalid_target` (RFC 8707 §2 lets the server refuse what it cannot honour); with
none, the client's only API is used, and a client allowed several APIs must say which. Scopes
(RFC 6749 §3.3): all requested scopes must be defined by the API and granted to the client, else
`invalid_scope`; with none requested, every scope the client holds on that API is granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from authgate.oauth.errors import InvalidScope, InvalidTarget
from authgate.server.models import Api, Client
from authgate.server.storage.protocols import ApiLookup

__all__ = ["Target", "check_resource_uri", "one_resource", "resolve_target"]

_MAX_RESOURCE_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Target:
    """The API a token is for and the scopes it carries."""

    api: Api
    scopes: tuple[str, ...]


def check_resource_uri(value: str) -> str | None:
    """Why `value` is not a valid resource indicator (RFC 8707 §2), or None when it is."""
    if len(value) > _MAX_RESOURCE_LENGTH:
        return "resource is too long"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "resource is not a URI"
    if not parts.scheme or "#" in value:
        return "resource must be an absolute URI without a fragment"
    # Printable ASCII is U+0020-U+007E: without the space, the U+0021-U+007E a URI is made of.
    if not (value.isascii() and value.isprintable()) or " " in value:
        return "resource must be an absolute URI without spaces or control characters"
    return None


def one_resource(values: Sequence[str]) -> str | None:
    """The one API a request's `resource` values name (RFC 8707 §2), or None when they name none:
    each must be a valid resource URI, and this server issues one audience per token."""
    for value in values:
        problem = check_resource_uri(value)
        if problem:
            raise InvalidTarget(problem)
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise InvalidTarget("request one resource per token")
    return distinct[0] if distinct else None


async def resolve_target(
    client: Client, resources: list[str], requested: tuple[str, ...], apis: ApiLookup
) -> Target:
    """The API and scopes for a token request, or `InvalidTarget` / `InvalidScope`."""
    named = one_resource(resources)
    if named is not None:
        identifier = named
    else:
        allowed = [entry.api for entry in client.access if entry.may_request]
        if len(allowed) != 1:
            raise InvalidTarget(
                "the resource parameter is required for this client"
                if allowed
                else "this client may not request tokens for any resource"
            )
        identifier = allowed[0]
    api = await apis.get_api(identifier)
    access = client.access_to(identifier)
    if api is None or access is None or not access.may_request:
        raise InvalidTarget("unknown resource, or not allowed for this client")
    grantable = [scope for scope in api.scopes if scope in access.scopes]
    if not requested:
        return Target(api, tuple(grantable))
    refused = [scope for scope in requested if scope not in grantable]
    if refused:
        raise InvalidScope(f"scope not allowed for this resource: {' '.join(refused)}")
    return Target(api, requested)
