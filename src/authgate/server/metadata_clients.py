"""Clients identified by the URL of their metadata document
(draft-ietf-oauth-client-id-metadata-document-02, "the draft"): a `client_id` that is an https URL
names a JSON document; the server fetches it (`authgate.server.outbound`), checks it with the same
rules as a registered client (`admin.registry.check_client_rules`) and keeps the client in this
process's memory only, as long as the response's Cache-Control says within
`[client_metadata] cache_min`..`cache_max`. Nothing is stored in the database.

What such a client may be: public (`none`, PKCE required) or `private_key_jwt` with `jwks` or
`jwks_uri` (§4: no shared secret), with the authorization code grant and refresh tokens. Its API
access comes from its `scope`: each scope that exactly one API defines (or written `API#scope`).
Scopes no API defines are ignored, since one document serves many authorization servers.

Which URLs are looked up is `[client_metadata] policy`: `off` (the default: the server fetches
nothing for a stranger and knows only the clients its operator registered), `allowlist` (only
the hosts of `allowed_hosts`) or `any` (any public host).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authgate.oauth.errors import InvalidClient
from authgate.server.admin.registry import AdminError, check_client_rules, resolve_scope_specs
from authgate.server.config import ClientMetadataSettings
from authgate.server.models import ApiAccess, Client
from authgate.server.outbound import FetchError, OutboundFetcher, url_problem
from authgate.server.storage.protocols import Storage
from authgate.server.targets.identity_scopes import IDENTITY_SCOPES

__all__ = [
    "MAX_CLIENT_ID_URL",
    "ClientMetadataDocuments",
    "ClientMetadataError",
    "MetadataClient",
    "cache_lifetime",
    "client_id_url_problem",
    "is_client_id_url",
]

_log = logging.getLogger("authgate.server.client_metadata")
# Client ids are stored with codes, consents and refresh tokens in columns of 128 characters.
MAX_CLIENT_ID_URL = 128
_MAX_ENTRIES = 10_000
# §4: the methods of a client without a shared secret.
_AUTH_METHODS = ("none", "private_key_jwt")
# The grants such a client may use: the user-facing ones of this server that need no device row.
_GRANTS = ("authorization_code", "refresh_token")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:[,=]|$)", re.IGNORECASE)


class ClientMetadataError(InvalidClient):
    """The client id names a document that cannot be used; the description says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"client metadata document: {problem}")


@dataclass(frozen=True, slots=True)
class MetadataClient(Client):
    """A client described by its own metadata document: everything in it is self-asserted."""

    logo_uri: str | None = None

    @property
    def self_asserted(self) -> bool:
        return True


def is_client_id_url(client_id: str) -> bool:
    """Whether `client_id` has the form of a metadata document URL (an https URL)."""
    return client_id.startswith("https://")


def client_id_url_problem(client_id: str, *, allow_loopback: bool = False) -> str | None:
    """Why `client_id` cannot name a metadata document (the draft §3), or None."""
    if len(client_id) > MAX_CLIENT_ID_URL:
        return f"the client_id URL is longer than {MAX_CLIENT_ID_URL} characters"
    problem = url_problem(client_id, allow_loopback=allow_loopback)
    if problem:
        return f"the client_id URL {problem}"
    parts = urlsplit(client_id)
    if parts.scheme != "https":
        return "the client_id URL must use https"
    segments = parts.path.split("/")
    if not parts.path or parts.path == "/":
        return "the client_id URL must have a path"
    if "." in segments or ".." in segments:
        return "the client_id URL must not have . or .. path segments"
    if parts.query or "?" in client_id:
        return "the client_id URL must not have a query"
    return None


@dataclass(slots=True)
class _Entry:
    client: MetadataClient
    expires_at: float


class ClientMetadataDocuments:
    """Resolves URL client ids to clients, fetching and caching their documents."""

    def __init__(
        self,
        settings: ClientMetadataSettings,
        fetcher: OutboundFetcher,
        storage: Storage,
        clock: Callable[[], float],
        *,
        allow_loopback: bool = False,
    ) -> None:
        self._settings = settings
        self._fetcher = fetcher
        self._storage = storage
        self._clock = clock
        self._allow_loopback = allow_loopback
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[_Entry]] = {}

    def handles(self, client_id: str) -> bool:
        """Whether `client_id` is looked up here (the feature is on and it is an https URL)."""
        return self._settings.enabled and is_client_id_url(client_id)

    async def client_for(self, client_id: str) -> MetadataClient:
        """The client `client_id` names; `ClientMetadataError` says why there is none."""
        problem = client_id_url_problem(client_id, allow_loopback=self._allow_loopback)
        if problem:
            raise ClientMetadataError(problem)
        host = (urlsplit(client_id).hostname or "").lower()
        if not self._settings.allows_host(host):
            raise ClientMetadataError("this server does not accept client ids on this host")
        entry = self._cache.get(client_id)
        if entry is not None and entry.expires_at > self._clock():
            return entry.client
        pending = self._inflight.get(client_id)
        if pending is None:
            # One fetch per URL at a time; requests arriving meanwhile wait for its answer.
            pending = asyncio.ensure_future(self._load(client_id))
            self._inflight[client_id] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(client_id, None))
        entry = await asyncio.shield(pending)
        return entry.client

    async def get_client(self, client_id: str) -> Client | None:
        """`client_for`, or None when the document cannot be used (`ClientLookup`)."""
        try:
            return await self.client_for(client_id)
        except ClientMetadataError as exc:
            _log.info("client id %r not usable: %s", client_id, exc.description)
            return None

    async def _load(self, client_id: str) -> _Entry:
        settings = self._settings
        try:
            fetched = await self._fetcher.get(
                client_id, max_bytes=settings.max_bytes, time_limit=settings.timeout
            )
        except FetchError as exc:
            _log.warning("client metadata document %r: %s", client_id, exc)
            raise ClientMetadataError(exc.public) from None
        try:
            document = json.loads(fetched.body)
        except ValueError:
            raise ClientMetadataError("the document is not JSON") from None
        if not isinstance(document, dict):
            raise ClientMetadataError("the document is not a JSON object")
        client = await self._client(client_id, document)
        lifetime = cache_lifetime(fetched.headers.get("cache-control"), settings)
        entry = _Entry(client, self._clock() + lifetime)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[client_id] = entry
        return entry

    async def _client(self, client_id: str, doc: Mapping[str, Any]) -> MetadataClient:
        # §4: the document's client_id is the URL it was fetched from, compared as strings
        # (RFC 3986 §6.2.1): no case folding, no trailing-slash or percent-encoding repair.
        if doc.get("client_id") != client_id:
            raise ClientMetadataError("its client_id is not exactly the URL it was fetched from")
        if "client_secret" in doc or "client_secret_expires_at" in doc:
            raise ClientMetadataError("it must not contain a client_secret")  # §4
        auth_method = _text(doc, "token_endpoint_auth_method") or "none"
        if auth_method not in _AUTH_METHODS:
            raise ClientMetadataError(
                f"token_endpoint_auth_method must be {' or '.join(_AUTH_METHODS)}"
            )
        grant_types = _strings(doc, "grant_types") or ("authorization_code",)
        refused = [g for g in grant_types if g not in _GRANTS]
        if refused:
            raise ClientMetadataError(f"grant type {refused[0]!r} is not available to it")
        response_types = _strings(doc, "response_types")
        if response_types is not None and set(response_types) != {"code"}:
            raise ClientMetadataError('response_types must be ["code"]')
        redirect_uris = tuple(dict.fromkeys(_strings(doc, "redirect_uris") or ()))
        logout_uris = tuple(dict.fromkeys(_strings(doc, "post_logout_redirect_uris") or ()))
        name = _text(doc, "client_name") or urlsplit(client_id).hostname or client_id
        logo_uri = _text(doc, "logo_uri")
        if logo_uri is not None and url_problem(logo_uri):
            raise ClientMetadataError("logo_uri must be an https URL")
        jwks = doc.get("jwks")
        if jwks is not None and not isinstance(jwks, dict):
            raise ClientMetadataError("jwks must be a JSON object")
        jwks_uri = _text(doc, "jwks_uri")
        try:
            check_client_rules(
                name=name,
                auth_method=auth_method,
                grant_types=grant_types,
                jwks=jwks,
                jwks_uri=jwks_uri,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=logout_uris,
            )
        except AdminError as exc:
            raise ClientMetadataError(str(exc)) from None
        return MetadataClient(
            client_id=client_id,
            name=name.strip(),
            auth_method=auth_method,
            grant_types=tuple(dict.fromkeys(grant_types)),
            access=await self._access(_text(doc, "scope") or ""),
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=logout_uris,
            require_pkce=True,  # RFC 9700 §2.1.1; nobody vouches for this client
            jwks=jwks,
            jwks_uri=jwks_uri,
            created_at=int(self._clock()),
            logo_uri=logo_uri,
        )

    async def _access(self, scope: str) -> tuple[ApiAccess, ...]:
        grants: dict[str, list[str]] = {}
        for value in dict.fromkeys(scope.split()):
            if value in IDENTITY_SCOPES:
                continue  # every client of the user-facing flows may ask for these
            try:
                found = await resolve_scope_specs(self._storage, [value], ())
            except AdminError:
                continue  # no API (or several) defines it here
            for api, scopes in found.items():
                entries = grants.setdefault(api, [])
                entries.extend(s for s in scopes if s not in entries)
        return tuple(ApiAccess(api, tuple(scopes)) for api, scopes in sorted(grants.items()))


def cache_lifetime(cache_control: str | None, settings: ClientMetadataSettings) -> int:
    """Seconds to reuse a document: its `max-age` (§5.2 of the draft: respect HTTP caching),
    `cache_min` for `no-store`/`no-cache` or no header, never outside `cache_min`..`cache_max`
    (a client cannot make the server refetch on every request, nor keep a stale copy forever)."""
    wanted = settings.cache_min
    if cache_control and not _NO_CACHE.search(cache_control):
        match = _MAX_AGE.search(cache_control)
        if match:
            wanted = int(match.group(1))
    return max(settings.cache_min, min(wanted, settings.cache_max))


def _text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.isprintable():
        raise ClientMetadataError(f"{name} must be a string")
    return value


def _strings(doc: Mapping[str, Any], name: str) -> Sequence[str] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ClientMetadataError(f"{name} must be an array of strings")
    if len(value) > 50:
        raise ClientMetadataError(f"{name} has too many entries")
    return tuple(value)
