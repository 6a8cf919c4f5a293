"""The one client-authentication step of the token, introspection and revocation endpoints.

Methods (RFC 7591 §2 names): `client_secret_basic` (RFC 6749 §2.3.1: the id and secret are
form-urlencoded *before* Basic encoding, so they are decoded after it), `client_secret_post`,
`private_key_jwt` (RFC 7523) and `none` (a public client naming itself). A client authenticates only
with the method it registered; using more than one method in a request is `invalid_request` (RFC
6749 §2.3). An unknown client and a wrong secret get the same answer and cost the same work: the
presented secret is checked against a dummy hash when there is no client, and `RegistryCache`
remembers unknown client ids as it does known clients, so timing does not reveal which ids exist.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from authgate.oauth.errors import InvalidClient, InvalidRequest
from authgate.server.clients.assertions import (
    ASSERTION_TYPE,
    ClientAssertionVerifier,
    unverified_subject,
)
from authgate.server.clients.client_secrets import hashed_secret_matches
from authgate.server.clients.fapi2 import method_problem
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.secret_key import ServerSecret
from authgate.server.storage.protocols import ClientLookup
from authgate.server.storage.registry_cache import UrlClients

__all__ = ["AuthenticatedClient", "ClientAuthenticator", "secret_client_id"]

_FAILED = "client authentication failed"
_MAX_CREDENTIAL = 1024


@dataclass(frozen=True, slots=True)
class AuthenticatedClient:
    """The client a request comes from, and how it proved it."""

    client: Client
    method: str


class ClientAuthenticator:
    """Authenticates the client of a request."""

    def __init__(
        self,
        clients: ClientLookup,
        secret: ServerSecret,
        assertions: ClientAssertionVerifier,
        clock: Callable[[], float],
        url_clients: UrlClients | None = None,
        *,
        profile: str | None = None,
    ) -> None:
        self._clients = clients
        self._profile = profile  # `[security] profile`
        self._url_clients = url_clients
        self._secret = secret
        self._assertions = assertions
        self._clock = clock

    async def authenticate(
        self, authorization: str | None, form: Form, endpoint_url: str, *, allow_public: bool = True
    ) -> AuthenticatedClient:
        """Authenticate from the Authorization header and the form; raise `InvalidClient` (401)
        or `InvalidRequest`. `allow_public=False` refuses clients that use `none`."""
        basic = _parse_basic(authorization) if authorization is not None else None
        form_id = form.get("client_id")
        form_secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        assertion_type = form.get("client_assertion_type")
        if assertion is not None or assertion_type is not None:
            if basic is not None or form_secret is not None:
                raise InvalidRequest("use exactly one client authentication method")
            if assertion_type != ASSERTION_TYPE or assertion is None:
                raise InvalidClient(_FAILED, debug="bad client_assertion_type")
            client = await self._lookup(form_id or unverified_subject(assertion) or "")
            found = self._require_method(client, "private_key_jwt")
            await self._assertions.verify(found, assertion, endpoint_url)
            return AuthenticatedClient(found, "private_key_jwt")
        if basic is not None:
            if form_secret is not None:
                raise InvalidRequest("use exactly one client authentication method")
            client_id, secret = basic
            if form_id is not None and form_id != client_id:
                raise InvalidRequest("client_id does not match the Authorization header")
            return await self._with_secret(client_id, secret, "client_secret_basic")
        if form_id is None:
            raise InvalidClient(_FAILED, debug="no client credentials")
        if form_secret is not None:
            return await self._with_secret(form_id, form_secret, "client_secret_post")
        client = await self._lookup(form_id)
        if not allow_public:
            raise InvalidClient(_FAILED, debug="client authentication required")
        return AuthenticatedClient(self._require_method(client, "none"), "none")

    async def _lookup(self, client_id: str) -> Client | None:
        if self._url_clients is not None and self._url_clients.handles(client_id):
            # A metadata document URL: `ClientMetadataError` (invalid_client) says what is wrong.
            return (await self._url_clients.client_for(client_id)).held_to(self._profile)
        client = await self._clients.get_client(client_id) if 0 < len(client_id) <= 128 else None
        return None if client is None else client.held_to(self._profile)

    async def _with_secret(self, client_id: str, secret: str, method: str) -> AuthenticatedClient:
        client = await self._lookup(client_id)
        self._check_secret(client, secret)
        return AuthenticatedClient(self._require_method(client, method), method)

    @staticmethod
    def _require_method(client: Client | None, method: str) -> Client:
        # A client authenticates only the way it registered (RFC 7591 §2
        # token_endpoint_auth_method). The answer names the registered method, so a developer
        # sees the fix; an unknown client id gets the same answer as a wrong secret. For the
        # secret methods this runs only after the secret matched; for the others it names the
        # method of a known id, which reveals nothing guessable (ids are 128-bit random).
        if client is None:
            raise InvalidClient(_FAILED, debug=f"unknown client ({method})")
        if client.auth_method != method:
            raise InvalidClient(
                f"client is registered for {client.auth_method}; it sent {method}",
                debug="authentication method mismatch",
            )
        problem = method_problem(client, method)  # a client registered before `[security]`
        if problem:
            raise InvalidClient(problem, debug="profile forbids the method")
        return client

    def _check_secret(self, client: Client | None, secret: str) -> None:
        # Both hashes are always compared (a missing one as a dummy of the same form), so timing
        # tells neither which one matched nor whether the client exists (client id enumeration).
        stored = client.secret_hash if client else None
        previous = None
        expires = client.previous_secret_expires_at if client else None
        if client and expires is not None and self._clock() < expires:
            previous = client.previous_secret_hash
        presented = self._secret.hash_client_secret(secret)  # once: both compare the same hash
        current_ok = hashed_secret_matches(presented, stored)
        previous_ok = hashed_secret_matches(presented, previous)
        if not (current_ok or previous_ok):
            raise InvalidClient(_FAILED, debug="wrong client secret")


def secret_client_id(authorization: str | None, form: Form) -> str | None:
    """The client id a request authenticating with a client secret names (Basic, or the form's
    `client_secret` with its `client_id`); None for other methods or an unreadable header. For
    counting failures only: the id is not authenticated."""
    if authorization is not None:
        try:
            return _parse_basic(authorization)[0]
        except InvalidClient:
            return None
    if form.get("client_secret") is not None:
        return form.get("client_id")
    return None


def _parse_basic(header: str) -> tuple[str, str]:
    """(client_id, client_secret) from `Basic base64(urlenc(id):urlenc(secret))`."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic" or not credentials or len(credentials) > _MAX_CREDENTIAL:
        raise InvalidClient(_FAILED, debug="unsupported or malformed Authorization header")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient(_FAILED, debug="malformed Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient(_FAILED, debug="malformed Basic credentials")
    try:
        client_id = _form_decoded(raw_id)
        secret = _form_decoded(raw_secret)
    except UnicodeDecodeError:
        raise InvalidClient(_FAILED, debug="malformed Basic credentials") from None
    if not client_id or not secret:
        raise InvalidClient(_FAILED, debug="empty Basic credentials")
    return client_id, secret


def _form_decoded(raw: str) -> str:
    """`unquote_plus` (strict UTF-8), skipped for text with no `%` or `+`, which decodes to itself
    (generated ids and secrets are base64url)."""
    if "%" not in raw and "+" not in raw:
        return raw
    return unquote_plus(raw, errors="strict")
