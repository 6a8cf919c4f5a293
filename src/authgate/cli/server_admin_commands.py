"""`authgate api|client …`: register resource servers (APIs) and clients.

A client's secret is printed once, at creation or rotation, and never stored in clear.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from authgate.cli.durations import duration_option
from authgate.cli.exit_codes import CliError
from authgate.cli.server_shell import (
    config_option,
    emit,
    iso,
    json_option,
    load,
    now,
    run,
    table,
    with_storage,
)

if TYPE_CHECKING:
    from authgate.server.config import ClientMetadataSettings
    from authgate.server.models import Api, Client
    from authgate.server.storage import SqlStorage
    from authgate.server.storage.protocols import ClientRecords

__all__ = ["api_group", "client_group"]


# -- APIs -----------------------------------------------------------------------------------------


def _api_dict(api: Api) -> dict[str, Any]:
    data = asdict(api)
    data["scopes"] = list(api.scopes)
    return data


def _api_lines(api: Api) -> list[str]:
    return [
        f"identifier:       {api.identifier}",
        f"name:             {api.name}",
        f"scopes:           {' '.join(api.scopes) or '-'}",
        f"token format:     {api.token_format}",
        f"access token ttl: {api.access_token_ttl}s",
        f"signing alg:      {api.signing_alg}",
        f"created:          {iso(api.created_at)}",
    ]


@click.group("api")
def api_group() -> None:
    """Register resource servers (APIs): the audiences of access tokens."""


@api_group.command("create")
@click.option("--identifier", required=True, help="the API's URI: the resource (RFC 8707) and aud")
@click.option("--scope", "scopes", multiple=True, help="a scope the API defines (repeatable)")
@click.option("--name", help="display name (default: the identifier)")
@click.option(
    "--token-format", type=click.Choice(["jwt", "opaque"]), default="jwt", show_default=True
)
@click.option(
    "--access-token-ttl",
    callback=duration_option(whole=True),
    metavar="DURATION",
    help="access token lifetime, e.g. 5m (default: configured)",
)
@click.option(
    "--alg",
    default="RS256",
    show_default=True,
    help="JWT signing algorithm: RS256, ES256, PS256 or EdDSA",
)
@config_option
@json_option
def api_create(
    *,
    identifier: str,
    scopes: tuple[str, ...],
    name: str | None,
    token_format: str,
    access_token_ttl: int | None,
    alg: str,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Register an API.

    \b
    Example:
      authgate api create --identifier https://api.example.com --scope read --scope write
    """
    from authgate.server.admin import create_api

    config = load(config_path)
    api = run(
        with_storage(
            config,
            lambda s: create_api(
                s,
                config,
                identifier=identifier,
                scopes=scopes,
                name=name,
                token_format=token_format,  # type: ignore[arg-type]
                access_token_ttl=access_token_ttl,
                signing_alg=alg,
                now=now(),
            ),
        )
    )
    emit(as_json, _api_dict(api), _api_lines(api))


@api_group.command("list")
@config_option
@json_option
def api_list(*, config_path: str | None, as_json: bool) -> None:
    """List the APIs."""
    apis = run(with_storage(load(config_path), lambda s: s.list_apis()))
    emit(
        as_json,
        [_api_dict(a) for a in apis],
        table(
            ("IDENTIFIER", "FORMAT", "ALG", "SCOPES"),
            ((a.identifier, a.token_format, a.signing_alg, " ".join(a.scopes)) for a in apis),
        ),
    )


@api_group.command("show")
@click.argument("identifier")
@config_option
@json_option
def api_show(*, identifier: str, config_path: str | None, as_json: bool) -> None:
    """Show one API."""
    api = run(with_storage(load(config_path), lambda s: s.get_api(identifier)))
    if api is None:
        raise CliError(f"no API with identifier {identifier!r}")
    emit(as_json, _api_dict(api), _api_lines(api))


@api_group.command("delete")
@click.argument("identifier")
@config_option
@json_option
def api_delete(*, identifier: str, config_path: str | None, as_json: bool) -> None:
    """Delete an API and every client's access to it."""
    from authgate.server.admin import delete_api

    deleting = with_storage(load(config_path), lambda s: delete_api(s, identifier, now=now()))
    if not run(deleting):
        raise CliError(f"no API with identifier {identifier!r}")
    emit(as_json, {"deleted": identifier}, [f"deleted API {identifier}"])


# -- clients --------------------------------------------------------------------------------------


def _client_dict(client: Client, secret: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": list(client.grant_types),
        "access": [
            {
                "api": a.api,
                "scopes": list(a.scopes),
                "may_request": a.may_request,
                "may_introspect": a.may_introspect,
            }
            for a in client.access
        ],
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "pkce_required": client.pkce_required,
        "always_issue_refresh_token": client.always_issue_refresh_token,
        "require_pushed_authorization_requests": client.require_pushed_requests,
        "exchange_impersonation": client.exchange_impersonation,
        "exchange_external": client.exchange_external,
        "require_dpop": client.require_dpop,
        "id_token_signed_response_alg": client.id_token_alg,
        "profile": client.profile,
        "roles": list(client.roles),
        "jwks_uri": client.jwks_uri,
        "jwks": client.jwks,
        "created_at": client.created_at,
        "origin": client.origin,
        "application_type": client.application_type,
        "first_used_at": client.first_used_at,
    }
    if secret is not None:
        data["client_secret"] = secret
    return data


def _client_lines(client: Client, secret: str | None = None) -> list[str]:
    lines = [
        f"client_id:     {client.client_id}",
        f"name:          {client.name}",
        f"auth method:   {client.auth_method}",
        f"grants:        {' '.join(client.grant_types) or '-'}",
        f"origin:        {client.origin}",
    ]
    for entry in client.access:
        rights = [
            r
            for r, ok in (("request", entry.may_request), ("introspect", entry.may_introspect))
            if ok
        ]
        lines.append(
            f"api:           {entry.api} [{', '.join(rights)}] {' '.join(entry.scopes)}".rstrip()
        )
    if client.roles:
        lines.append(f"roles:         {' '.join(client.roles)}")
    if client.require_dpop:
        lines.append("dpop:          required")
    if client.id_token_alg != "RS256":
        lines.append(f"id token alg:  {client.id_token_alg}")
    if client.profile is not None:
        lines.append(f"profile:       {client.profile}")
    if client.redirect_uris:
        lines.append(f"redirect uris: {' '.join(client.redirect_uris)}")
    if client.post_logout_redirect_uris:
        lines.append(f"logout uris:   {' '.join(client.post_logout_redirect_uris)}")
    if client.pkce_required:
        lines.append("pkce:          required")
    if client.always_issue_refresh_token:
        lines.append("refresh token: always")
    if client.require_pushed_requests:
        lines.append("par:           required")
    exchange = [
        word
        for word, on in (
            ("impersonation", client.exchange_impersonation),
            ("external", client.exchange_external),
        )
        if on
    ]
    if exchange:
        lines.append(f"exchange:      {' '.join(exchange)}")
    if client.jwks_uri:
        lines.append(f"jwks_uri:      {client.jwks_uri}")
    if secret is not None:
        lines.append(f"client_secret: {secret}")
        lines.append("(the secret is shown only now; store it safely)")
    return lines


# `Client.origin` of a client named by the URL of its metadata document: it is registered nowhere,
# so only the records that name it (`ClientStore.list_unregistered_clients`) make it known here.
METADATA_DOCUMENT = "metadata_document"


def _document_client_dict(records: ClientRecords) -> dict[str, Any]:
    return {
        "client_id": records.client_id,
        "name": None,
        "origin": METADATA_DOCUMENT,
        "metadata_document": records.client_id,
        "records": {
            "consents": records.consents,
            "refresh_families": records.refresh_families,
            "opaque_access_tokens": records.opaque_access_tokens,
            "authorization_codes": records.authorization_codes,
        },
    }


def _document_client_lines(records: ClientRecords) -> list[str]:
    return [
        f"client_id:     {records.client_id}",
        f"origin:        {METADATA_DOCUMENT}",
        "described by:  the document at its client_id URL (fetched by the server when used,",
        "               never stored: name, grants and redirect URIs are the document's)",
        f"consents:      {records.consents}",
        f"refresh:       {records.refresh_families} live refresh-token family(ies)",
        f"opaque tokens: {records.opaque_access_tokens} live",
        f"codes:         {records.authorization_codes} unused",
    ]


async def _document_clients(
    storage: SqlStorage, at: int, client_id: str | None = None
) -> list[ClientRecords]:
    """The metadata-document clients that live records name (those of an https URL client id:
    records of another unregistered id are leftovers of a deleted client, not a client)."""
    from authgate.server.metadata_clients import is_client_id_url

    found = await storage.list_unregistered_clients(at, client_id)
    return [records for records in found if is_client_id_url(records.client_id)]


@click.group("client")
def client_group() -> None:
    """Register OAuth clients and manage their secrets."""


@client_group.command("create")
@click.option("--name", required=True, help="display name")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    help="grant type (repeatable): client_credentials, authorization_code, refresh_token, "
    "urn:ietf:params:oauth:grant-type:device_code",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="an API scope the client may request: SCOPE, or API#SCOPE when ambiguous",
)
@click.option("--api", "apis", multiple=True, help="an API the client may request tokens for")
@click.option(
    "--introspect",
    multiple=True,
    help="an API whose tokens this client may introspect (a resource server)",
)
@click.option(
    "--auth-method",
    default="client_secret_basic",
    show_default=True,
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]),
)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False),
    help="file with the client's public JWK set (private_key_jwt)",
)
@click.option("--jwks-uri", help="URL of the client's public JWK set (private_key_jwt)")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="redirect URI of an authorization_code client (repeatable; matched exactly)",
)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    help="where RP-initiated logout may send the browser back to (repeatable)",
)
@click.option(
    "--require-pkce", is_flag=True, help="PKCE for this confidential client too (public: always)"
)
@click.option(
    "--always-issue-refresh-token",
    is_flag=True,
    help="a refresh token with every grant, not only when offline_access is asked for",
)
@click.option(
    "--require-par",
    "require_pushed_requests",
    is_flag=True,
    help="authorization requests must be pushed to /par first (RFC 9126)",
)
@click.option(
    "--exchange-impersonation",
    is_flag=True,
    help="token exchange may issue tokens without `act` (impersonation, RFC 8693)",
)
@click.option(
    "--exchange-external",
    is_flag=True,
    help="token exchange accepts JWTs of the [token_exchange] issuer",
)
@click.option("--role", "roles", multiple=True, help="role carried in the client's tokens")
@click.option(
    "--application-type",
    type=click.Choice(["web", "native"]),
    help="web: https redirect URIs only; native: loopback and private-use schemes too (RFC 8252)",
)
@click.option(
    "--require-dpop",
    is_flag=True,
    help="every token request must carry a DPoP proof: all its tokens are DPoP-bound (RFC 9449)",
)
@click.option(
    "--id-token-alg",
    "id_token_alg",
    default="RS256",
    show_default=True,
    type=click.Choice(["RS256", "PS256", "ES256", "EdDSA"]),
    help="how its ID tokens are signed; the server must sign with it ([keys] algorithms)",
)
@click.option(
    "--profile",
    type=click.Choice(["fapi2"]),
    help="hold the client to a security profile (fapi2: FAPI 2.0 Security Profile, docs/fapi.md)",
)
@config_option
@json_option
def client_create(
    *,
    name: str,
    grants: tuple[str, ...],
    scopes: tuple[str, ...],
    apis: tuple[str, ...],
    introspect: tuple[str, ...],
    auth_method: str,
    jwks_file: str | None,
    jwks_uri: str | None,
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    require_pkce: bool,
    always_issue_refresh_token: bool,
    require_pushed_requests: bool,
    exchange_impersonation: bool,
    exchange_external: bool,
    roles: tuple[str, ...],
    application_type: str | None,
    require_dpop: bool,
    id_token_alg: str,
    profile: str | None,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Register a client; print its client_id and, once, its secret.

    \b
    Examples:
      authgate client create --name billing --grant client_credentials --scope read
      authgate client create --name web --grant authorization_code --grant refresh_token \\
          --redirect-uri https://app.example.com/callback --scope read
      authgate client create --name cli --auth-method none --grant authorization_code \\
          --redirect-uri http://127.0.0.1/callback --scope read
    """
    from authgate.server.admin import create_client
    from authgate.server.secret_key import ServerSecret

    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.loads(Path(jwks_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CliError(f"--jwks: cannot read a JSON JWK set: {exc}") from None
    config = load(config_path)
    secret = ServerSecret(config.secret_key)
    client, client_secret = run(
        with_storage(
            config,
            lambda s: create_client(
                s,
                secret,
                name=name,
                grant_types=grants,
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
                roles=roles,
                application_type=application_type,
                require_dpop=require_dpop,
                id_token_alg=id_token_alg,
                profile=profile or config.security.profile,  # created under the server's
                signing_algorithms=config.keys.algorithms,
                now=now(),
            ),
        )
    )
    emit(as_json, _client_dict(client, client_secret), _client_lines(client, client_secret))


@client_group.command("list")
@config_option
@json_option
def client_list(*, config_path: str | None, as_json: bool) -> None:
    """List the clients: the registered ones, then those named by the URL of their metadata
    document that consents, codes or live tokens name (origin metadata_document)."""
    at = now()

    async def both(storage: SqlStorage) -> tuple[list[Client], list[ClientRecords]]:
        return await storage.list_clients(), await _document_clients(storage, at)

    clients, documents = run(with_storage(load(config_path), both))
    emit(
        as_json,
        [_client_dict(c) for c in clients] + [_document_client_dict(d) for d in documents],
        table(
            ("CLIENT_ID", "AUTH_METHOD", "GRANTS", "ORIGIN", "NAME"),
            [
                *(
                    (c.client_id, c.auth_method, " ".join(c.grant_types), c.origin, c.name)
                    for c in clients
                ),
                *((d.client_id, "-", "-", METADATA_DOCUMENT, "-") for d in documents),
            ],
        ),
    )


@client_group.command("show")
@click.argument("client_id")
@config_option
@json_option
def client_show(*, client_id: str, config_path: str | None, as_json: bool) -> None:
    """Show one client (never its secret); for a client named by the URL of its metadata
    document, what the store holds under that URL."""
    at = now()

    async def find(storage: SqlStorage) -> tuple[Client | None, list[ClientRecords]]:
        client = await storage.get_client(client_id)
        if client is not None:
            return client, []
        return None, await _document_clients(storage, at, client_id)

    client, documents = run(with_storage(load(config_path), find))
    if client is not None:
        emit(as_json, _client_dict(client), _client_lines(client))
    elif documents:
        emit(as_json, _document_client_dict(documents[0]), _document_client_lines(documents[0]))
    else:
        raise CliError(f"no client with id {client_id!r}")


@client_group.command("delete")
@click.argument("client_id")
@config_option
@json_option
def client_delete(*, client_id: str, config_path: str | None, as_json: bool) -> None:
    """Delete a client with its consents, codes and tokens (the access tokens of its grants are
    revoked). For a client named by the URL of its metadata document, what the store holds under
    that URL: the client comes back at its next sign-in unless [client_metadata] refuses its host.
    """
    from authgate.server.admin import ClientDeletion, delete_client
    from authgate.server.metadata_clients import is_client_id_url

    async def delete(storage: SqlStorage) -> ClientDeletion | None:
        # Records under an unregistered id that is no URL are leftovers, not a client (as for
        # `client show`).
        if not is_client_id_url(client_id) and await storage.get_client(client_id) is None:
            return None
        return await delete_client(storage, client_id, now=now())

    config = load(config_path)
    done = run(with_storage(config, delete))
    if done is None:
        raise CliError(f"no client with id {client_id!r}")
    data: dict[str, Any] = {
        "deleted": client_id,
        "grants_revoked": done.revoked.grants,
        "opaque_tokens_revoked": done.revoked.opaque_tokens,
    }
    revoked = (
        f"revoked {done.revoked.grants} grant(s) and {done.revoked.opaque_tokens} other opaque "
        "access token(s)"
    )
    if done.registered:
        emit(as_json, data, [f"deleted client {client_id}; {revoked}"])
        return
    admitted, why = _document_admission(config.client_metadata, client_id)
    data.update(origin=METADATA_DOCUMENT, may_return=admitted)
    emit(
        as_json,
        data,
        [
            f"deleted what the server held for client {client_id} (its consents, codes and "
            f"tokens); {revoked}",
            why,
        ],
    )


def _document_admission(settings: ClientMetadataSettings, client_id: str) -> tuple[bool, str]:
    """Whether this configuration's `[client_metadata]` policy lets the client of the document
    at `client_id` in again (deleting it removes only what was stored: its document still names
    it), and a sentence saying so and which setting decides."""
    from urllib.parse import urlsplit

    host = (urlsplit(client_id).hostname or "").lower()
    if settings.allows_host(host):
        keep_out = (
            'set policy = "allowlist" without this host'
            if settings.policy == "any"
            else f"remove {host} from allowed_hosts"
        )
        return True, (
            f"the client can come back: its document still describes it and [client_metadata] "
            f'policy = "{settings.policy}" admits {host} (to keep it out, {keep_out}; '
            "docs/clients.md)"
        )
    reason = 'policy = "off"' if not settings.enabled else f"{host} is not in allowed_hosts"
    return False, (
        f"the client cannot come back while its URL is outside the [client_metadata] policy "
        f"({reason})"
    )


@client_group.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--overlap",
    "--grace",  # the name before 0.x; kept so existing scripts work
    "overlap",
    default="0s",
    show_default=True,
    callback=duration_option(zero=True, whole=True),
    metavar="DURATION",
    help="how long the old secret keeps working, e.g. 24h (0: it stops at once, for a leak)",
)
@config_option
@json_option
def client_rotate_secret(
    *, client_id: str, overlap: int, config_path: str | None, as_json: bool
) -> None:
    """Give a client a new secret and print it once.

    \b
    Examples:
      authgate client rotate-secret CLIENT_ID --overlap 24h   # planned: both work for a day
      authgate client rotate-secret CLIENT_ID                 # leaked: the old one stops now
    """
    from authgate.server.admin import rotate_client_secret
    from authgate.server.secret_key import ServerSecret

    config = load(config_path)
    secret = ServerSecret(config.secret_key)
    at = now()
    new = run(
        with_storage(
            config,
            lambda s: rotate_client_secret(s, secret, client_id, grace=overlap, now=at),
        )
    )
    old_until = at + overlap if overlap else None
    old = f"accepted until {iso(old_until)}" if old_until else "no longer accepted"
    emit(
        as_json,
        {"client_id": client_id, "client_secret": new, "previous_secret_expires_at": old_until},
        [
            f"client_id:     {client_id}",
            f"client_secret: {new}",
            f"old secret:    {old}",
            "(the secret is shown only now; store it safely)",
        ],
    )


@client_group.command("revoke-tokens")
@click.argument("client_id")
@config_option
@json_option
def client_revoke_tokens(*, client_id: str, config_path: str | None, as_json: bool) -> None:
    """Revoke every refresh token and tracked access token of a client (opaque tokens, and JWTs
    issued under an authorization grant); the client itself stays registered.

    JWT access tokens from client_credentials are tracked nowhere and run out within their
    lifetime; rotate the secret too if it leaked."""
    from authgate.server.admin import revoke_client_tokens

    done = run(
        with_storage(load(config_path), lambda s: revoke_client_tokens(s, client_id, now=now()))
    )
    emit(
        as_json,
        {"client_id": client_id, "grants": done.grants, "opaque_tokens": done.opaque_tokens},
        [
            f"client {client_id}: revoked {done.grants} grant(s) (refresh tokens and their "
            f"access tokens) and {done.opaque_tokens} other opaque access token(s)"
        ],
    )
