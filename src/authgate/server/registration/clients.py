"""Registering, reading, updating and deleting clients at the registration endpoint (RFC 7591
§3, RFC 7592 §2).

Every rule of what may be registered is the CLI's (`admin.registry.checked_client`, named with
the metadata's names); on top of them, a registered client may ask only for the API scopes that
`[registration] allowed_scopes` lists, gets no roles and no introspection, and carries a
registration access token (stored as its keyed hash) with which it manages its registration.
Its secret, like the CLI's, is stored as a keyed hash and returned once.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from authgate.oauth.errors import InvalidClientMetadata, InvalidRedirectUri
from authgate.server import audit
from authgate.server.admin.registry import (
    METADATA_NAMES,
    AdminError,
    InvalidRedirectUriError,
    checked_client,
    create_client,
    resolve_scope_specs,
    uses_secret,
)
from authgate.server.clients.client_secrets import generate_client_secret, verify_client_secret
from authgate.server.clients.jwks import check_remote_jwks_uri
from authgate.server.config import RegistrationSettings
from authgate.server.grants import DEVICE_CODE_GRANT
from authgate.server.models import Client
from authgate.server.registration.metadata import ClientMetadata, requested_identity_scopes
from authgate.server.secret_key import ServerSecret, generate_token
from authgate.server.storage.protocols import Storage

__all__ = [
    "Registered",
    "delete_registration",
    "find_registered_client",
    "register_client",
    "update_registration",
]


@dataclass(frozen=True, slots=True)
class Registered:
    """A client as just registered or updated, with the credentials issued now (shown once)."""

    client: Client
    client_secret: str | None = None
    registration_access_token: str | None = None


async def register_client(
    storage: Storage,
    secret: ServerSecret,
    settings: RegistrationSettings,
    metadata: ClientMetadata,
    *,
    admit: Callable[[], Awaitable[None]] | None = None,
    signing_algorithms: Sequence[str] = ("RS256",),
    now: int,
) -> Registered:
    """Register the client `metadata` describes (RFC 7591 §3.2.1); `InvalidClientMetadata` or
    `InvalidRedirectUri` (RFC 7591 §3.2.2) when a rule refuses it. `admit` (counting a use of
    the initial access token, raising to refuse) runs once every rule has passed, so a refused
    request costs the token no use. `signing_algorithms`: the server's (`[keys] algorithms`), one
    of which the client's `id_token_signed_response_alg` must be."""
    _check_remote_keys(metadata)
    scopes = await _api_scopes(storage, settings, metadata)
    token = generate_token()
    if admit is not None:
        with _as_oauth_errors():
            await checked_client(
                storage,
                client_id="-",
                created_at=now,
                **_settings(metadata, scopes, signing_algorithms),
            )
        await admit()
    with _as_oauth_errors():
        client, client_secret = await create_client(
            storage,
            secret,
            origin="registration",
            registration_token_hash=secret.hash_registration_token(token),
            now=now,
            **_settings(metadata, scopes, signing_algorithms),
        )
    return Registered(client, client_secret, token)


def _settings(
    metadata: ClientMetadata, scopes: Sequence[str], signing_algorithms: Sequence[str]
) -> dict[str, Any]:
    """`checked_client`'s keyword arguments for `metadata`."""
    return {
        "id_token_alg": metadata.id_token_signed_response_alg,
        "signing_algorithms": signing_algorithms,
        "name": metadata.client_name,
        "grant_types": metadata.grant_types,
        "scopes": scopes,
        "auth_method": metadata.token_endpoint_auth_method,
        "jwks": metadata.jwks,
        "jwks_uri": metadata.jwks_uri,
        "redirect_uris": metadata.redirect_uris,
        "post_logout_redirect_uris": metadata.post_logout_redirect_uris,
        "application_type": metadata.application_type,
        "names": METADATA_NAMES,
    }


async def find_registered_client(
    storage: Storage, secret: ServerSecret, client_id: str, token: str
) -> Client | None:
    """The client whose registration access token is `token` (RFC 7592 §3), read from the
    store (not a cache); None for an unknown client, a client without one, or another token."""
    client = await storage.get_client(client_id) if 0 < len(client_id) <= 128 else None
    expected = client.registration_token_hash if client is not None else None
    presented = secret.hash_registration_token(token)
    matches = hmac.compare_digest(presented, expected or "0" * 64)
    return client if matches and expected is not None else None


async def update_registration(
    storage: Storage,
    secret: ServerSecret,
    settings: RegistrationSettings,
    client: Client,
    metadata: ClientMetadata,
    *,
    signing_algorithms: Sequence[str] = ("RS256",),
    now: int,
) -> Registered:
    """Replace the client's metadata with `metadata` (RFC 7592 §2.2: a full replacement, held to
    the rules of a registration). The secret stays while the client keeps a secret-based method
    (the client never chooses it; one it sends must be the current one); a client that moves to
    a secret-based method gets a new one, shown once; one that moves away loses it."""
    if metadata.client_id != client.client_id:
        raise InvalidClientMetadata("client_id does not match the client being updated")
    if metadata.client_secret is not None and not verify_client_secret(
        secret, metadata.client_secret, client.secret_hash
    ):
        raise InvalidClientMetadata("client_secret does not match the client's current secret")
    _check_remote_keys(metadata)
    scopes = await _api_scopes(storage, settings, metadata)
    with _as_oauth_errors():
        checked = await checked_client(
            storage,
            client_id=client.client_id,
            created_at=client.created_at,
            **_settings(metadata, scopes, signing_algorithms),
        )
    new_secret = None
    secret_hash = previous_hash = previous_until = None
    if uses_secret(checked.auth_method):
        if client.secret_hash is not None and uses_secret(client.auth_method):
            secret_hash = client.secret_hash
            previous_hash = client.previous_secret_hash
            previous_until = client.previous_secret_expires_at
        else:
            new_secret = generate_client_secret()
            secret_hash = secret.hash_client_secret(new_secret)
    updated = dataclasses.replace(
        checked,
        secret_hash=secret_hash,
        previous_secret_hash=previous_hash,
        previous_secret_expires_at=previous_until,
        origin=client.origin,
        registration_token_hash=client.registration_token_hash,
        first_used_at=client.first_used_at,
    )
    with _as_oauth_errors():
        replaced = await storage.replace_client(updated)
    if not replaced:  # deleted meanwhile
        raise InvalidClientMetadata("the client no longer exists")
    await audit.record(
        storage,
        "client.registration_updated",
        client.client_id,
        now=now,
        actor="registration",
        auth_method=updated.auth_method,
        grant_types=updated.grant_types,
        secret_issued=new_secret is not None,
    )
    return Registered(updated, new_secret)


async def delete_registration(storage: Storage, client: Client, *, now: int) -> bool:
    """Delete the client (RFC 7592 §2.3) with its tokens, codes, grants and consents."""
    deleted = await storage.delete_client(client.client_id)
    if deleted:
        await audit.record(
            storage, "client.registration_deleted", client.client_id, now=now, actor="registration"
        )
    return deleted


def _check_remote_keys(metadata: ClientMetadata) -> None:
    """A registered jwks_uri must point at a public host (the CLI's operator may name an
    internal one; anyone who registers may not)."""
    if metadata.jwks_uri is not None:
        problem = check_remote_jwks_uri(metadata.jwks_uri)
        if problem:
            raise InvalidClientMetadata(problem)


async def _api_scopes(
    storage: Storage, settings: RegistrationSettings, metadata: ClientMetadata
) -> list[str]:
    """The requested API scopes as `API#SCOPE`, each one `allowed_scopes` allows; the identity
    scopes are dropped for user-flow clients (they may always request them) and refused for
    others (they mean nothing to client_credentials)."""
    identity = requested_identity_scopes(metadata.scopes)
    user_flows = {"authorization_code", DEVICE_CODE_GRANT} & set(metadata.grant_types)
    if identity and not user_flows:
        raise InvalidClientMetadata(
            f"scope {identity[0]!r} is for clients of authorization_code or the device grant"
        )
    wanted = [s for s in metadata.scopes if s not in identity]
    if not wanted:
        return []
    allowed = await _resolved(storage, settings.allowed_scopes)
    apis = await storage.list_apis()
    specs = []
    for scope in wanted:
        if "#" in scope:
            found = await _resolved(storage, (scope,))
            pairs = [(api, s) for api, names in found.items() for s in names]
            if any(s not in allowed.get(api, ()) for api, s in pairs):
                pairs = []
        else:
            # A bare scope several APIs define (MCP servers all challenging for `mcp:tools`) is
            # granted on those that allow it: the client registers with the scope one server's
            # challenge named, before it knows the others (RFC 7591 §3.2.1: the server may grant
            # less than asked).
            pairs = [(a.identifier, scope) for a in apis if scope in allowed.get(a.identifier, ())]
        # One answer for a scope that does not exist and one that is not allowed, so that
        # registering reveals nothing about the APIs' scopes.
        if not pairs:
            raise InvalidClientMetadata(
                f"scope {scope[:64]!r} may not be requested by dynamically registered clients"
            )
        specs += [f"{api}#{s}" for api, s in pairs]
    return specs


async def _resolved(storage: Storage, specs: Sequence[str]) -> dict[str, list[str]]:
    """`resolve_scope_specs` spec by spec, leaving out those that name nothing (an API deleted
    since the configuration was written, an ambiguous scope)."""
    resolved: dict[str, list[str]] = {}
    for spec in specs:
        try:
            found = await resolve_scope_specs(storage, (spec,), ())
        except AdminError:
            continue
        for api, scopes in found.items():
            resolved.setdefault(api, []).extend(scopes)
    return resolved


class _as_oauth_errors:  # noqa: N801 - used like a function: `with _as_oauth_errors():`
    """The admin rules' errors as RFC 7591 §3.2.2 errors (a vanished API is one too)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, InvalidRedirectUriError):
            raise InvalidRedirectUri(str(exc)) from None
        if isinstance(exc, AdminError | LookupError):
            raise InvalidClientMetadata(str(exc).strip("'\"")) from None
