"""Administration: creating and changing APIs, clients and users, with every rule checked.

The CLI is a thin shell over these functions; tests call them directly. Client secrets are
generated here (256 bits) and returned once; only their keyed hash is stored.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authgate.jose import JoseError, JWKSet
from authgate.oauth.errors import InvalidRedirectUri
from authgate.server import audit
from authgate.server.clients import fapi2
from authgate.server.clients.assertions import allowed_algorithms
from authgate.server.clients.client_secrets import generate_client_id, generate_client_secret
from authgate.server.clients.jwks import check_jwks_uri
from authgate.server.config import SIGNING_ALGORITHMS, Config
from authgate.server.flows.passwords import hash_password
from authgate.server.flows.redirect_uris import check_redirect_uri_for
from authgate.server.grants import DEVICE_CODE_GRANT, GRANT_TYPES, TOKEN_EXCHANGE_GRANT
from authgate.server.models import (
    AUTH_METHODS,
    PROFILES,
    Api,
    ApiAccess,
    Client,
    TokenFormat,
    User,
)
from authgate.server.secret_key import ServerSecret
from authgate.server.storage.protocols import Storage, TokensRevoked
from authgate.server.targets.identity_scopes import IDENTITY_SCOPES
from authgate.server.targets.resources import check_resource_uri
from authgate.server.targets.scopes import is_scope_token

__all__ = [
    "APPLICATION_TYPES",
    "CLI_NAMES",
    "METADATA_NAMES",
    "UNCHANGED",
    "AdminError",
    "ClientDeletion",
    "InvalidRedirectUriError",
    "OptionNames",
    "Unchanged",
    "check_client_rules",
    "checked_client",
    "create_api",
    "create_client",
    "create_user",
    "delete_api",
    "delete_client",
    "delete_user",
    "known_client",
    "rotate_client_secret",
    "set_user_password",
    "update_user_profile",
    "uses_secret",
]


class AdminError(ValueError):
    """An administrative request breaks a rule; the message says which."""


async def create_api(
    storage: Storage,
    config: Config,
    *,
    identifier: str,
    scopes: Sequence[str],
    name: str | None = None,
    token_format: TokenFormat = "jwt",
    access_token_ttl: int | None = None,
    signing_alg: str = "RS256",
    now: int,
) -> Api:
    """Register a resource server; its identifier becomes the `aud` of its tokens."""
    problem = check_resource_uri(identifier)
    if problem:
        raise AdminError(f"identifier: {problem.replace('resource', 'the identifier')}")
    for scope in scopes:
        if not is_scope_token(scope):
            raise AdminError(f"scope {scope!r}: use printable ASCII without spaces, quotes or \\")
    if token_format not in ("jwt", "opaque"):
        raise AdminError("token format must be jwt or opaque")
    if signing_alg not in config.keys.algorithms:
        raise AdminError(f"alg must be one of {', '.join(config.keys.algorithms)}")
    ttl = access_token_ttl or config.tokens.default_access_token_ttl
    if not 0 < ttl <= config.tokens.max_access_token_ttl:
        raise AdminError(
            f"access token lifetime must be between 1s and {config.tokens.max_access_token_ttl}s"
        )
    api = Api(
        identifier=identifier,
        name=name or identifier,
        scopes=tuple(dict.fromkeys(scopes)),
        token_format=token_format,
        access_token_ttl=ttl,
        signing_alg=signing_alg,
        created_at=now,
    )
    await storage.create_api(api)
    await audit.record(
        storage, "api.created", identifier, now=now, scopes=api.scopes, token_format=token_format
    )
    return api


async def resolve_scope_specs(
    storage: Storage, specs: Sequence[str], apis: Sequence[str]
) -> dict[str, list[str]]:
    """Map `--scope` values (`SCOPE` or `API#SCOPE`) and `--api` values to {api: [scopes]}."""
    known = {api.identifier: api for api in await storage.list_apis()}
    grants: dict[str, list[str]] = {}
    for identifier in apis:
        if identifier not in known:
            raise AdminError(f"no API with identifier {identifier!r}")
        grants.setdefault(identifier, [])
    for spec in specs:
        if "#" in spec:
            identifier, _, scope = spec.partition("#")
            if identifier not in known:
                raise AdminError(f"no API with identifier {identifier!r}")
            if scope not in known[identifier].scopes:
                raise AdminError(f"API {identifier!r} defines no scope {scope!r}")
        else:
            scope = spec
            owners = [a.identifier for a in known.values() if scope in a.scopes]
            if not owners:
                raise AdminError(f"no API defines the scope {scope!r}")
            if len(owners) > 1:
                raise AdminError(
                    f"several APIs define {scope!r}; write it as API#{scope}, e.g. "
                    f"{owners[0]}#{scope}"
                )
            identifier = owners[0]
        entries = grants.setdefault(identifier, [])
        if scope not in entries:
            entries.append(scope)
    return grants


@dataclass(frozen=True, slots=True)
class OptionNames:
    """How a caller spells each client setting in error messages: the CLI's options by default,
    RFC 7591 metadata names for the registration endpoint (`METADATA_NAMES`)."""

    redirect_uri: str = "--redirect-uri"
    post_logout_redirect_uri: str = "--post-logout-redirect-uri"
    require_pkce: str = "--require-pkce"
    always_issue_refresh_token: str = "--always-issue-refresh-token"
    grant: str = "--grant"
    scope: str = "--scope"
    jwks: str = "--jwks FILE"
    jwks_uri: str = "--jwks-uri URL"
    auth_method: str = "auth method"
    application_type: str = "--application-type"
    id_token_alg: str = "--id-token-alg"
    profile: str = "--profile"


CLI_NAMES = OptionNames()
METADATA_NAMES = OptionNames(
    redirect_uri="redirect_uris",
    post_logout_redirect_uri="post_logout_redirect_uris",
    require_pkce="require_pkce",
    always_issue_refresh_token="always_issue_refresh_token",
    grant="grant_types",
    scope="scope",
    jwks="jwks",
    jwks_uri="jwks_uri",
    auth_method="token_endpoint_auth_method",
    application_type="application_type",
    id_token_alg="id_token_signed_response_alg",
    profile="profile",
)
# OpenID Connect Registration §2 (RFC 8252 for native apps).
APPLICATION_TYPES = ("web", "native")


class InvalidRedirectUriError(AdminError):
    """A client's redirect URIs break a rule (RFC 7591 §3.2.2 `invalid_redirect_uri`)."""


async def create_client(
    storage: Storage,
    secret: ServerSecret,
    *,
    name: str,
    grant_types: Sequence[str],
    scopes: Sequence[str] = (),
    apis: Sequence[str] = (),
    introspect: Sequence[str] = (),
    auth_method: str = "client_secret_basic",
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    require_pkce: bool = False,
    always_issue_refresh_token: bool = False,
    require_pushed_requests: bool = False,
    exchange_impersonation: bool = False,
    exchange_external: bool = False,
    roles: Sequence[str] = (),
    application_type: str | None = None,
    origin: str = "cli",
    registration_token_hash: str | None = None,
    names: OptionNames = CLI_NAMES,
    require_dpop: bool = False,
    id_token_alg: str = "RS256",
    profile: str | None = None,
    signing_algorithms: Sequence[str] = ("RS256",),
    now: int,
) -> tuple[Client, str | None]:
    """Register a client; return it and its new secret (None for key-based or public clients).

    The rules are `checked_client`'s. `origin`, `registration_token_hash` and `names` are for the
    registration endpoint (RFC 7591).
    """
    client = await checked_client(
        storage,
        client_id=generate_client_id(),
        name=name,
        grant_types=grant_types,
        scopes=scopes,
        apis=apis,
        introspect=introspect,
        auth_method=auth_method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        require_pkce=require_pkce,
        always_issue_refresh_token=always_issue_refresh_token,
        require_pushed_requests=require_pushed_requests,
        exchange_impersonation=exchange_impersonation,
        exchange_external=exchange_external,
        require_dpop=require_dpop,
        id_token_alg=id_token_alg,
        profile=profile,
        signing_algorithms=signing_algorithms,
        roles=roles,
        application_type=application_type,
        names=names,
        created_at=now,
    )
    client_secret = generate_client_secret() if uses_secret(auth_method) else None
    client = dataclasses.replace(
        client,
        secret_hash=secret.hash_client_secret(client_secret) if client_secret else None,
        origin=origin,
        registration_token_hash=registration_token_hash,
    )
    await storage.create_client(client)
    await audit.record(
        storage,
        "client.registered" if origin == "registration" else "client.created",
        client.client_id,
        now=now,
        actor="registration" if origin == "registration" else "admin",
        name=client.name,
        auth_method=auth_method,
        grant_types=client.grant_types,
    )
    return client, client_secret


def uses_secret(auth_method: str) -> bool:
    """Whether clients of this `token_endpoint_auth_method` authenticate with a client secret."""
    return auth_method in ("client_secret_basic", "client_secret_post")


async def checked_client(
    storage: Storage,
    *,
    client_id: str,
    name: str,
    grant_types: Sequence[str],
    scopes: Sequence[str] = (),
    apis: Sequence[str] = (),
    introspect: Sequence[str] = (),
    auth_method: str = "client_secret_basic",
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    require_pkce: bool = False,
    always_issue_refresh_token: bool = False,
    require_pushed_requests: bool = False,
    exchange_impersonation: bool = False,
    exchange_external: bool = False,
    require_dpop: bool = False,
    id_token_alg: str = "RS256",
    profile: str | None = None,
    signing_algorithms: Sequence[str] = ("RS256",),
    roles: Sequence[str] = (),
    application_type: str | None = None,
    names: OptionNames = CLI_NAMES,
    created_at: int,
) -> Client:
    """The client these settings describe (no secret yet), every rule checked; `AdminError`
    (`InvalidRedirectUriError` for redirect URIs) naming the setting as `names` spells it.

    Clients of the user-facing flows: `authorization_code` needs at least one redirect URI
    (checked as `flows.redirect_uris.check_redirect_uri` says, and for an `application_type`
    as `check_redirect_uri_for` says), `refresh_token` comes with `authorization_code` or the
    device grant. The identity scopes (`openid`, `profile`, `email`, `offline_access`) are not
    granted per client: every such client may ask for them.
    """
    redirect_uris = _unique(redirect_uris)
    post_logout_redirect_uris = _unique(post_logout_redirect_uris)
    check_client_rules(
        name=name,
        auth_method=auth_method,
        grant_types=grant_types,
        jwks=jwks,
        jwks_uri=jwks_uri,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        require_pkce=require_pkce,
        always_issue_refresh_token=always_issue_refresh_token,
        application_type=application_type,
        names=names,
    )
    _check_id_token_alg(id_token_alg, signing_algorithms, names)
    if require_pushed_requests and "authorization_code" not in grant_types:
        raise AdminError("--require-par is for authorization_code clients")
    if (exchange_impersonation or exchange_external) and TOKEN_EXCHANGE_GRANT not in grant_types:
        raise AdminError(f"--exchange-* options need --grant {TOKEN_EXCHANGE_GRANT}")
    identity = [s for s in scopes if s in IDENTITY_SCOPES]
    if identity:
        raise AdminError(
            f"{identity[0]!r} is an OpenID Connect scope that every authorization_code or device "
            f"client may request; list only API scopes with {names.scope}"
        )
    for role in roles:
        if not is_scope_token(role):
            raise AdminError(f"role {role!r}: use printable ASCII without spaces")
    requestable = await resolve_scope_specs(storage, scopes, apis)
    introspectable = await resolve_scope_specs(storage, (), introspect)
    await _check_security_profile(
        storage,
        profile,
        auth_method=auth_method,
        id_token_alg=id_token_alg,
        requestable=requestable,
        names=names,
    )
    access = [
        ApiAccess(
            api=api,
            scopes=tuple(requestable.get(api, ())),
            may_request=api in requestable,
            may_introspect=api in introspectable,
        )
        for api in sorted(set(requestable) | set(introspectable))
    ]
    return Client(
        client_id=client_id,
        name=name.strip(),
        auth_method=auth_method,
        grant_types=tuple(dict.fromkeys(grant_types)),
        access=tuple(access),
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        require_pkce=require_pkce,
        always_issue_refresh_token=always_issue_refresh_token,
        require_pushed_requests=require_pushed_requests,
        exchange_impersonation=exchange_impersonation,
        exchange_external=exchange_external,
        require_dpop=require_dpop,
        id_token_alg=id_token_alg,
        profile=profile,
        roles=tuple(dict.fromkeys(roles)),
        jwks=dict(jwks) if jwks else None,
        jwks_uri=jwks_uri,
        created_at=created_at,
        application_type=application_type,
    )


def check_client_rules(
    *,
    name: str,
    auth_method: str,
    grant_types: Sequence[str],
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    require_pkce: bool = False,
    always_issue_refresh_token: bool = False,
    application_type: str | None = None,
    names: OptionNames = CLI_NAMES,
) -> None:
    """The rules every client's metadata obeys, however the client comes to be (the CLI, the
    registration endpoint, a client ID metadata document); `AdminError` (`InvalidRedirectUriError`
    for redirect URIs) names the first one broken, the setting spelled as `names` says."""
    if not name.strip() or len(name) > 200 or not name.isprintable():
        raise AdminError("name must be 1 to 200 printable characters")
    if auth_method not in AUTH_METHODS:
        raise AdminError(f"{names.auth_method} must be one of {', '.join(AUTH_METHODS)}")
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise AdminError(f"unsupported grant {unknown[0]!r}; supported: {', '.join(GRANT_TYPES)}")
    if auth_method == "none" and "client_credentials" in grant_types:
        raise AdminError("client_credentials needs a confidential client (RFC 6749 §4.4)")
    if auth_method == "none" and TOKEN_EXCHANGE_GRANT in grant_types:
        raise AdminError("token exchange needs a confidential client")
    if application_type is not None and application_type not in APPLICATION_TYPES:
        raise AdminError(f"{names.application_type} must be web or native")
    _check_keys(auth_method, jwks, jwks_uri, names)
    _check_user_flows(
        grant_types,
        redirect_uris,
        post_logout_redirect_uris,
        require_pkce=require_pkce,
        always_issue_refresh_token=always_issue_refresh_token,
        application_type=application_type,
        names=names,
    )


def _check_id_token_alg(alg: str, server_algorithms: Sequence[str], names: OptionNames) -> None:
    """The ID token alg is one the server knows and holds an active key chain of (`[keys]
    algorithms`): a client must never be promised ID tokens the server cannot sign."""
    if alg not in SIGNING_ALGORITHMS:
        raise AdminError(f"{names.id_token_alg} must be one of {', '.join(SIGNING_ALGORITHMS)}")
    if alg not in server_algorithms:
        raise AdminError(
            f"{names.id_token_alg} {alg}: the server signs with no {alg} key; add {alg} to "
            f"[keys] algorithms (now: {', '.join(server_algorithms)})"
        )


async def _check_security_profile(
    storage: Storage,
    profile: str | None,
    *,
    auth_method: str,
    id_token_alg: str,
    requestable: Mapping[str, Sequence[str]],
    names: OptionNames,
) -> None:
    """A client held to a security profile obeys its rules (`clients.fapi2.client_problem`)."""
    if profile is None:
        return
    if profile not in PROFILES:
        raise AdminError(f"{names.profile} must be one of {', '.join(PROFILES)}")
    jwt_apis = []
    for identifier in requestable:
        api = await storage.get_api(identifier)
        if api is not None and api.token_format == "jwt":
            jwt_apis.append((api.identifier, api.signing_alg))
    problem = fapi2.client_problem(
        auth_method=auth_method, id_token_alg=id_token_alg, api_algorithms=jwt_apis
    )
    if problem:
        raise AdminError(problem)


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _check_user_flows(
    grant_types: Sequence[str],
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    *,
    require_pkce: bool,
    always_issue_refresh_token: bool,
    application_type: str | None,
    names: OptionNames,
) -> None:
    code = "authorization_code" in grant_types
    if code and not redirect_uris:
        raise InvalidRedirectUriError(f"authorization_code needs at least one {names.redirect_uri}")
    if not code:
        for given, option in (
            (redirect_uris, names.redirect_uri),
            (post_logout_redirect_uris, names.post_logout_redirect_uri),
            (require_pkce, names.require_pkce),
        ):
            if given:
                raise AdminError(f"{option} is for authorization_code clients")
    if "refresh_token" in grant_types and not (code or DEVICE_CODE_GRANT in grant_types):
        raise AdminError(
            "refresh_token needs authorization_code or the device grant: refresh tokens are "
            "issued only with them"
        )
    if always_issue_refresh_token and "refresh_token" not in grant_types:
        raise AdminError(f"{names.always_issue_refresh_token} needs {names.grant} refresh_token")
    for label, uris in (
        ("redirect URI", redirect_uris),
        ("post-logout redirect URI", post_logout_redirect_uris),
    ):
        for uri in uris:
            try:
                check_redirect_uri_for(uri, application_type)
            except InvalidRedirectUri as exc:
                raise InvalidRedirectUriError(f"{label} {uri!r}: {exc.description}") from None


def _check_keys(
    auth_method: str,
    jwks: Mapping[str, Any] | None,
    jwks_uri: str | None,
    names: OptionNames = CLI_NAMES,
) -> None:
    if auth_method != "private_key_jwt":
        if jwks is not None or jwks_uri is not None:
            raise AdminError(f"{names.jwks} and {names.jwks_uri} are for private_key_jwt clients")
        return
    if (jwks is None) == (jwks_uri is None):
        # RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
        raise AdminError(f"private_key_jwt needs exactly one of {names.jwks} or {names.jwks_uri}")
    if jwks is None:
        problem = check_jwks_uri(jwks_uri or "")
        if problem:
            raise AdminError(problem)
        return
    try:
        keys = JWKSet.from_dict(jwks, strict=True)
    except JoseError as exc:
        raise AdminError(f"jwks: {exc}") from None
    if any(key.is_private for key in keys):
        raise AdminError("jwks must hold public keys only (never register a private key)")
    if not allowed_algorithms(keys):
        raise AdminError("jwks holds no key usable for signing client assertions")


async def rotate_client_secret(
    storage: Storage, secret: ServerSecret, client_id: str, *, grace: int = 0, now: int
) -> str:
    """Give a client a new secret; the old one keeps working for `grace` seconds."""
    client = await storage.get_client(client_id)
    if client is None:
        raise AdminError(f"no client with id {client_id!r}")
    if not uses_secret(client.auth_method):
        raise AdminError("this client authenticates without a secret")
    new_secret = generate_client_secret()
    previous = client.secret_hash if grace > 0 else None
    await storage.set_client_secret(
        client_id,
        secret.hash_client_secret(new_secret),
        previous,
        now + grace if previous else None,
    )
    await audit.record(storage, "client.secret_rotated", client_id, now=now, grace=grace)
    return new_secret


async def create_user(
    storage: Storage,
    *,
    username: str,
    password: str,
    email: str | None = None,
    email_verified: bool = False,
    name: str | None = None,
    roles: Sequence[str] = (),
    now: int,
) -> User:
    """Create a user with an argon2id password hash."""
    if (
        not username
        or len(username) > 255
        or not username.isprintable()
        or username != username.strip()
    ):
        raise AdminError("username must be 1 to 255 printable characters, no outer spaces")
    _check_password(password)
    _check_profile(email, email_verified, name)
    user = User(
        user_id=secrets.token_urlsafe(16),
        username=username,
        password_hash=hash_password(password),
        email=email,
        email_verified=email_verified,
        name=name,
        roles=tuple(dict.fromkeys(roles)),
        created_at=now,
    )
    await storage.create_user(user)
    await audit.record(storage, "user.created", username, now=now, roles=user.roles)
    return user


async def set_user_password(
    storage: Storage, username: str, password: str, *, now: int | None = None
) -> int:
    """Replace a user's password and sign them out everywhere (OWASP: a password change ends
    every session); return the number of sessions ended."""
    _check_password(password)
    user = await _user(storage, username)
    await storage.set_password_hash(username, hash_password(password))
    ended = await storage.delete_user_sessions(user.user_id)
    at = int(time.time()) if now is None else now
    await audit.record(storage, "user.password_changed", username, now=at, sessions_ended=ended)
    return ended


class Unchanged:
    """The value of an option that was not given (distinct from None, which clears it)."""


UNCHANGED = Unchanged()


async def update_user_profile(
    storage: Storage,
    username: str,
    *,
    email: str | Unchanged | None = UNCHANGED,
    email_verified: bool | None = None,
    name: str | Unchanged | None = UNCHANGED,
    now: int | None = None,
) -> User:
    """Change the claims userinfo and ID tokens release (OpenID Connect Core §5.1). A new email
    address is unverified unless `email_verified` says otherwise."""
    user = await _user(storage, username)
    new_email = user.email if isinstance(email, Unchanged) else email
    if email_verified is None:
        email_verified = user.email_verified and new_email == user.email
    new_name = user.name if isinstance(name, Unchanged) else name
    _check_profile(new_email, email_verified, new_name)
    await storage.set_user_profile(
        username, email=new_email, email_verified=email_verified, name=new_name
    )
    changed = [
        field
        for field, old, new in (
            ("email", user.email, new_email),
            ("email_verified", user.email_verified, email_verified),
            ("name", user.name, new_name),
        )
        if old != new
    ]
    at = int(time.time()) if now is None else now
    await audit.record(storage, "user.profile_changed", username, now=at, changed=changed)
    return dataclasses.replace(user, email=new_email, email_verified=email_verified, name=new_name)


async def delete_user(storage: Storage, username: str, *, now: int) -> int:
    """Delete a user: revoke the grants of their refresh tokens (their access tokens with them),
    then the user, their sessions, consents and codes. Returns the number of grants revoked."""
    user = await _user(storage, username)
    revoked = await storage.revoke_user_grants(user.user_id, None, now)
    await storage.delete_user(username)
    await audit.record(storage, "user.deleted", username, now=now, grants_revoked=revoked)
    return revoked


async def delete_api(storage: Storage, identifier: str, *, now: int) -> bool:
    """Delete an API (its clients lose access to it); False when there was none."""
    deleted = await storage.delete_api(identifier)
    if deleted:
        await audit.record(storage, "api.deleted", identifier, now=now)
    return deleted


@dataclass(frozen=True, slots=True)
class ClientDeletion:
    """What `delete_client` did."""

    client_id: str
    # False for a client named by the URL of its metadata document: only its records were stored.
    registered: bool
    revoked: TokensRevoked


async def delete_client(storage: Storage, client_id: str, *, now: int) -> ClientDeletion | None:
    """Delete a client with its consents, codes, refresh-token families and opaque tokens: a
    registered one, or one named by the URL of its metadata document while live records name it
    (`known_client`; what is stored under its URL is all there is of it). None when there is none.

    Its grants are revoked first: the JWT access tokens issued under them go on the revocation
    list, which deleting the rows alone would not do (a URL client still exists for introspection
    while its document can be fetched)."""
    if not await known_client(storage, client_id, now=now):
        return None
    revoked = await storage.revoke_tokens_of(client_id=client_id, now=now)
    registered = await storage.delete_client(client_id)
    if not registered and not await storage.delete_unregistered_client(client_id):
        return None  # deleted meanwhile by another administrator
    await audit.record(
        storage,
        "client.deleted",
        client_id,
        now=now,
        origin=None if registered else "metadata_document",
        grants_revoked=revoked.grants,
        opaque_tokens_revoked=revoked.opaque_tokens,
    )
    return ClientDeletion(client_id, registered, revoked)


async def known_client(storage: Storage, client_id: str, *, now: int) -> bool:
    """Whether the administration can act on `client_id`: a registered client, or one that live
    records name without a registration (a client of a metadata document lives in the servers'
    memory only, its consents and grants in the store under its URL)."""
    if not 0 < len(client_id) <= 128:
        return False
    if await storage.get_client(client_id) is not None:
        return True
    return bool(await storage.list_unregistered_clients(now, client_id))


async def _user(storage: Storage, username: str) -> User:
    user = await storage.get_user_by_username(username)
    if user is None:
        raise AdminError(f"no user named {username!r}")
    return user


def _check_profile(email: str | None, email_verified: bool, name: str | None) -> None:
    if email is not None and (
        "@" not in email or len(email) > 320 or not email.isprintable() or " " in email
    ):
        raise AdminError("email does not look like an address")
    if email is None and email_verified:
        raise AdminError("--email-verified needs an email address")
    if name is not None and (not name.strip() or len(name) > 200 or not name.isprintable()):
        raise AdminError("name must be 1 to 200 printable characters")


def _check_password(password: str) -> None:
    # NIST SP 800-63B §5.1.1.2: at least 8 characters; long passphrases allowed.
    if len(password) < 8 or len(password) > 1024:
        raise AdminError("password must be 8 to 1024 characters")
