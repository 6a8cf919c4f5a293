"""The administration of the user-facing flows from the command line: clients for the code,
refresh and device grants, `authgate consent list|revoke`, and the users' profile claims."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from authgate.cli import main
from authgate.server.flows.refresh_tokens import new_family
from authgate.server.models import AuthorizationCode, ConsentGrant, OpaqueAccessToken, Session
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.tables import (
    authorization_codes,
    consents,
    opaque_access_tokens,
    refresh_families,
    refresh_tokens,
)
from tests.support.storage import T0, keyed_hash

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_SECRET_KEY": "s" * 43,
        "AUTHGATE_ISSUER": "https://auth.example.test",
        "AUTHGATE_CONFIG": "",
        "AUTHGATE_SECRET_KEY_FILE": str(tmp_path / "unused"),
    }


EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def _json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    code, out = _cli(env, *args, "--json", stdin=stdin)
    assert code == 0, out
    return json.loads(out)


def _api(env: dict[str, str]) -> None:
    _json(env, "api", "create", "--identifier", "https://api.example.test", "--scope", "read")


def test_clients_of_the_user_facing_flows(env: dict[str, str]) -> None:
    _api(env)
    native = _json(
        env,
        "client",
        "create",
        "--name",
        "native app",
        "--auth-method",
        "none",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--redirect-uri",
        "com.example.app:/oauth2redirect",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--post-logout-redirect-uri",
        "https://app.example.test/bye",
        "--scope",
        "read",
    )
    assert "client_secret" not in native  # public: nothing to keep secret
    assert native["token_endpoint_auth_method"] == "none"
    assert native["redirect_uris"] == [
        "http://127.0.0.1/callback",
        "com.example.app:/oauth2redirect",
    ]
    assert native["post_logout_redirect_uris"] == ["https://app.example.test/bye"]
    assert native["pkce_required"] is True  # always, for a public client
    assert native["always_issue_refresh_token"] is False

    web = _json(
        env,
        "client",
        "create",
        "--name",
        "web app",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        "https://app.example.test/callback",
        "--require-pkce",
        "--always-issue-refresh-token",
        "--scope",
        "read",
    )
    assert web["client_secret"]
    assert (web["pkce_required"], web["always_issue_refresh_token"]) == (True, True)
    shown = _json(env, "client", "show", web["client_id"])
    assert shown["grant_types"] == ["authorization_code", "refresh_token"]
    assert "client_secret" not in shown
    _, out = _cli(env, "client", "show", web["client_id"])
    assert "pkce:          required" in out
    assert "refresh token: always" in out

    tv = _json(
        env,
        "client",
        "create",
        "--name",
        "tv",
        "--auth-method",
        "none",
        "--grant",
        DEVICE,
        "--grant",
        "refresh_token",
        "--scope",
        "read",
    )
    assert tv["grant_types"] == [DEVICE, "refresh_token"]


def test_par_and_token_exchange_flags(env: dict[str, str]) -> None:
    _api(env)
    strict = _json(
        env,
        "client",
        "create",
        "--name",
        "strict",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://app.example.test/callback",
        "--require-par",
    )
    assert strict["require_pushed_authorization_requests"] is True
    assert strict["exchange_impersonation"] is False
    _, out = _cli(env, "client", "show", strict["client_id"])
    assert "par:           required" in out
    service = _json(
        env,
        "client",
        "create",
        "--name",
        "service",
        "--grant",
        EXCHANGE,
        "--scope",
        "read",
        "--exchange-impersonation",
        "--exchange-external",
    )
    shown = _json(env, "client", "show", service["client_id"])
    assert (shown["exchange_impersonation"], shown["exchange_external"]) == (True, True)
    assert shown["require_pushed_authorization_requests"] is False
    _, out = _cli(env, "client", "show", service["client_id"])
    assert "exchange:      impersonation external" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grant", "authorization_code"], "at least one --redirect-uri"),
        (
            ["--grant", "authorization_code", "--redirect-uri", "http://localhost/cb"],
            "loopback IP literals",
        ),
        (
            ["--grant", "authorization_code", "--redirect-uri", "https://app.test/cb#x"],
            "fragment",
        ),
        (["--grant", "authorization_code", "--redirect-uri", "https://*.app.test/"], "wildcard"),
        (
            ["--grant", "authorization_code", "--redirect-uri", "https://u@app.test/cb"],
            "userinfo",
        ),
        (["--grant", "authorization_code", "--redirect-uri", "myapp:/cb"], "private-use scheme"),
        (
            [
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://app.test/cb",
                "--post-logout-redirect-uri",
                "http://app.test/bye",
            ],
            "post-logout redirect URI",
        ),
        (["--grant", "refresh_token"], "refresh_token needs authorization_code"),
        (
            ["--grant", "client_credentials", "--redirect-uri", "https://a.test/cb"],
            "--redirect-uri",
        ),
        (["--grant", "client_credentials", "--require-pkce"], "--require-pkce"),
        (["--grant", "client_credentials", "--require-par"], "--require-par"),
        (["--grant", "client_credentials", "--exchange-impersonation"], "--exchange-"),
        (["--grant", "client_credentials", "--exchange-external"], "--exchange-"),
        (["--grant", EXCHANGE, "--auth-method", "none"], "confidential client"),
        (
            ["--grant", "client_credentials", "--post-logout-redirect-uri", "https://a.test/"],
            "--post-logout-redirect-uri",
        ),
        (
            [
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://a.test/cb",
                "--always-issue-refresh-token",
            ],
            "needs --grant refresh_token",
        ),
        (
            [
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://a.test/cb",
                "--scope",
                "openid",
            ],
            "OpenID Connect scope",
        ),
        (["--grant", "password"], "unsupported grant"),
        (["--grant", "implicit"], "unsupported grant"),
    ],
)
def test_client_rules(env: dict[str, str], args: list[str], message: str) -> None:
    _api(env)
    code, out = _cli(env, "client", "create", "--name", "x", *args)
    assert code != 0
    assert message in out
    assert _json(env, "client", "list") == []  # nothing stored


async def _seed_grants(url: str) -> tuple[str, str, str]:
    """alice's consents to two clients, a refresh family and an access token for one of them,
    and a session. Returns (alice's user_id, web client_id, other client_id)."""
    storage = SqlStorage(Database(url))
    try:
        alice = await storage.get_user_by_username("alice")
        assert alice is not None
        clients = {c.name: c.client_id for c in await storage.list_clients()}
        web, other = clients["web"], clients["other"]
        for client_id in (web, other):
            await storage.save_consent(
                ConsentGrant(
                    alice.user_id,
                    client_id,
                    frozenset({"openid", "read"}),
                    frozenset({"https://api.example.test"}),
                    T0,
                )
            )
            _, family = new_family(
                hash_token=keyed_hash,
                grant_id="grant-" + client_id[:8],
                client_id=client_id,
                user_id=alice.user_id,
                scopes=("openid", "offline_access", "read"),
                audiences=("https://api.example.test",),
                auth_time=T0,
                amr=("pwd",),
                now=T0,
            )
            await storage.create_family(family)
            await storage.record_grant_token(family.grant_id, "jwt-" + client_id, 2**40)
        await storage.save_session(Session("session-1", alice.user_id, T0, ("pwd",), T0, T0))
        return alice.user_id, web, other
    finally:
        await storage.close()


async def _state(url: str, user_id: str, web: str, other: str) -> dict[str, Any]:
    storage = SqlStorage(Database(url))
    try:
        return {
            "consents": [g.client_id for g in await storage.list_consents(user_id)],
            "web_jwt_revoked": await storage.is_jti_revoked("jwt-" + web),
            "other_jwt_revoked": await storage.is_jti_revoked("jwt-" + other),
            "session": await storage.get_session("session-1") is not None,
        }
    finally:
        await storage.close()


def _setup_people(env: dict[str, str]) -> tuple[str, str, str]:
    _api(env)
    _json(env, "user", "create", "alice", "--password-stdin", stdin="correct horse battery\n")
    _json(env, "user", "create", "bob", "--password-stdin", stdin="correct horse battery\n")
    for name in ("web", "other"):
        _json(
            env,
            "client",
            "create",
            "--name",
            name,
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            f"https://{name}.example.test/cb",
            "--scope",
            "read",
        )
    return asyncio.run(_seed_grants(env["AUTHGATE_DATABASE_URL"]))


def test_consent_list_and_revoke(env: dict[str, str]) -> None:
    user_id, web, other = _setup_people(env)
    url = env["AUTHGATE_DATABASE_URL"]
    listed = _json(env, "consent", "list")
    assert sorted(c["client_name"] for c in listed) == ["other", "web"]
    assert {c["client_origin"] for c in listed} == {"cli"}
    assert {c["username"] for c in listed} == {"alice"}
    assert listed[0]["scopes"] == ["openid", "read"]
    assert listed[0]["apis"] == ["https://api.example.test"]
    assert [c["client_id"] for c in _json(env, "consent", "list", "--client", web)] == [web]
    code, out = _cli(env, "consent", "list", "--client", web)
    assert out.splitlines()[0].split("\t")[:3] == ["USERNAME", "CLIENT_ID", "CLIENT"]
    assert out.splitlines()[1].split("\t")[:2] == ["alice", web]
    assert _json(env, "consent", "list", "--user", "bob") == []
    code, out = _cli(env, "consent", "list", "--user", "bob")
    assert "no remembered consent" in out
    code, out = _cli(env, "consent", "list", "--user", "nobody")
    assert code != 0
    assert "no user named 'nobody'" in out

    # Forget the consent only: the client keeps its tokens.
    done = _json(env, "consent", "revoke", "--user", "alice", "--client", other, "--keep-tokens")
    assert done == {
        "username": "alice",
        "client_id": other,
        "consent_removed": True,
        "grants_revoked": 0,
    }
    state = asyncio.run(_state(url, user_id, web, other))
    assert state["consents"] == [web]
    assert not state["other_jwt_revoked"]

    # Revoke: the consent goes and so do the client's tokens for alice; nothing else changes.
    done = _json(env, "consent", "revoke", "--user", "alice", "--client", web)
    assert done["consent_removed"] is True
    assert done["grants_revoked"] == 1
    state = asyncio.run(_state(url, user_id, web, other))
    assert state == {
        "consents": [],
        "web_jwt_revoked": True,
        "other_jwt_revoked": False,
        "session": True,
    }
    code, out = _cli(env, "consent", "revoke", "--user", "alice", "--client", web)
    assert code != 0
    assert "no consent or tokens" in out
    code, out = _cli(env, "consent", "revoke", "--user", "alice", "--client", "missing")
    assert code != 0
    assert "no client with id" in out


def test_user_profile_password_and_deletion(env: dict[str, str]) -> None:
    user_id, web, other = _setup_people(env)
    url = env["AUTHGATE_DATABASE_URL"]
    created = _json(
        env,
        "user",
        "create",
        "carol",
        "--email",
        "carol@example.test",
        "--email-verified",
        "--name",
        "Carol",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert (created["email"], created["email_verified"], created["name"]) == (
        "carol@example.test",
        True,
        "Carol",
    )
    changed = _json(env, "user", "update", "carol", "--email", "c@example.test")
    assert (changed["email"], changed["email_verified"]) == (
        "c@example.test",
        False,
    )  # a new address is unverified
    changed = _json(env, "user", "update", "carol", "--email-verified", "--no-name")
    assert (changed["email_verified"], changed["name"]) == (True, None)
    assert _json(env, "user", "show", "carol") == changed
    code, out = _cli(env, "user", "update", "carol", "--no-email", "--email-verified")
    assert code != 0
    assert "needs an email address" in out
    code, out = _cli(env, "user", "update", "carol", "--email", "not-an-address")
    assert code != 0
    code, out = _cli(env, "user", "show", "carol")
    assert "c@example.test (verified)" in out
    assert _cli(env, "user", "show", "nobody")[0] != 0

    # A new password ends every browser session.
    result = _json(
        env, "user", "set-password", "alice", "--password-stdin", stdin="a new long passphrase\n"
    )
    assert result["sessions_ended"] == 1
    assert asyncio.run(_state(url, user_id, web, other))["session"] is False

    # Deleting a user revokes the access tokens of their grants too.
    deleted = _json(env, "user", "delete", "alice")
    assert deleted == {"deleted": "alice", "grants_revoked": 2}
    state = asyncio.run(_state(url, user_id, web, other))
    assert state["web_jwt_revoked"]
    assert state["other_jwt_revoked"]
    assert state["consents"] == []
    assert _cli(env, "user", "delete", "alice")[0] != 0


def test_client_ids_never_look_like_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """`authgate client show ID` and `consent revoke --client ID` must take every id."""
    from authgate.server import secret_key  # noqa: PLC0415
    from authgate.server.clients import client_secrets  # noqa: PLC0415

    drawn = iter(["-starts-with-a-dash", "_fine"])
    # Client ids are drawn by `secret_key.random_token`, like every token.
    monkeypatch.setattr(secret_key.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert client_secrets.generate_client_id() == "_fine"


def test_id_token_alg_is_stored_and_must_be_one_the_server_signs_with(env: dict[str, str]) -> None:
    _api(env)
    web = ["--grant", "authorization_code", "--redirect-uri", "https://app.example.test/cb"]
    plain = _json(env, "client", "create", "--name", "plain", *web)
    assert plain["id_token_signed_response_alg"] == "RS256"
    es = _json(env, "client", "create", "--name", "es", *web, "--id-token-alg", "ES256")
    assert _json(env, "client", "show", es["client_id"])["id_token_signed_response_alg"] == "ES256"
    _, out = _cli(env, "client", "show", es["client_id"])
    assert "id token alg:  ES256" in out
    narrow = {**env, "AUTHGATE_KEYS_ALGORITHMS": "RS256,ES256"}
    code, out = _cli(narrow, "client", "create", "--name", "ps", *web, "--id-token-alg", "PS256")
    assert code != 0
    assert "--id-token-alg PS256: the server signs with no PS256 key" in out
    assert "[keys] algorithms (now: RS256, ES256)" in out
    code, out = _cli(env, "client", "create", "--name", "hs", *web, "--id-token-alg", "HS256")
    assert code != 0
    assert "HS256" in out
    assert sorted(c["name"] for c in _json(env, "client", "list")) == ["es", "plain"]


def test_profile_fapi2_refuses_secrets_per_client_and_server_wide(env: dict[str, str]) -> None:
    _api(env)
    web = ["--grant", "authorization_code", "--redirect-uri", "https://app.example.test/cb"]
    code, out = _cli(env, "client", "create", "--name", "f", *web, "--profile", "fapi2")
    assert code != 0
    assert "a FAPI 2.0 client must use private_key_jwt (FAPI 2.0 §5.3.2.1)" in out
    server_wide = {**env, "AUTHGATE_SECURITY_PROFILE": "fapi2"}
    code, out = _cli(server_wide, "client", "create", "--name", "g", *web)
    assert code != 0
    assert "must use private_key_jwt" in out
    assert _json(env, "client", "list") == []


DOCUMENT_CLIENT = "https://notes.example.test/oauth/client.json"


async def _seed_document_client(url: str, now: int) -> None:
    """What a client named by its metadata document URL leaves in the store (nothing registers
    it): alice's consent, a live refresh-token family with a JWT of its grant, an opaque access
    token outside any grant, and leftovers of another unregistered id that is not a URL."""
    storage = SqlStorage(Database(url))
    try:
        alice = await storage.get_user_by_username("alice")
        assert alice is not None
        await storage.save_consent(
            ConsentGrant(
                alice.user_id,
                DOCUMENT_CLIENT,
                frozenset({"read"}),
                frozenset({"https://api.example.test"}),
                now,
            )
        )
        _, family = new_family(
            hash_token=keyed_hash,
            grant_id="grant-document",
            client_id=DOCUMENT_CLIENT,
            user_id=alice.user_id,
            scopes=("offline_access", "read"),
            audiences=("https://api.example.test",),
            auth_time=now,
            amr=("pwd",),
            now=now,
        )
        await storage.create_family(family)
        await storage.record_grant_token(family.grant_id, "jwt-document", now + 300)
        for client_id, name in ((DOCUMENT_CLIENT, "opaque-document"), ("leftover", "opaque-x")):
            await storage.save_opaque_token(
                OpaqueAccessToken(
                    token_hash=keyed_hash(name),
                    jti=name,
                    client_id=client_id,
                    subject=alice.user_id,
                    audience="https://api.example.test",
                    scope="read",
                    roles=(),
                    issued_at=now,
                    expires_at=now + 300,
                )
            )
    finally:
        await storage.close()


async def _document_state(url: str) -> tuple[bool, bool]:
    """Whether the document client's grant JWT is revoked, and its opaque token."""
    storage = SqlStorage(Database(url))
    try:
        opaque = await storage.get_opaque_token(keyed_hash("opaque-document"))
        assert opaque is not None
        return await storage.is_jti_revoked("jwt-document"), opaque.revoked
    finally:
        await storage.close()


def test_a_metadata_document_client_is_listed_shown_and_revoked(env: dict[str, str]) -> None:
    """A URL client id is in memory only; `client list`, `show`, `revoke-tokens` and `consent`
    know it through the records the store holds under its URL."""
    _api(env)
    _json(env, "user", "create", "alice", "--password-stdin", stdin="correct horse battery\n")
    registered = _json(
        env, "client", "create", "--name", "billing", "--grant", "client_credentials"
    )
    url = env["AUTHGATE_DATABASE_URL"]
    asyncio.run(_seed_document_client(url, int(time.time())))
    records = {
        "consents": 1,
        "refresh_families": 1,
        "opaque_access_tokens": 1,
        "authorization_codes": 0,
    }
    listed = _json(env, "client", "list")
    assert [(c["client_id"], c["origin"]) for c in listed] == [
        (registered["client_id"], "cli"),
        (DOCUMENT_CLIENT, "metadata_document"),  # not "leftover": no URL, no client
    ]
    assert listed[1] == {
        "client_id": DOCUMENT_CLIENT,
        "name": None,
        "origin": "metadata_document",
        "metadata_document": DOCUMENT_CLIENT,
        "records": records,
    }
    code, out = _cli(env, "client", "list")
    assert code == 0, out
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["CLIENT_ID", "AUTH_METHOD", "GRANTS", "ORIGIN", "NAME"]
    assert rows[2] == [DOCUMENT_CLIENT, "-", "-", "metadata_document", "-"]

    assert _json(env, "client", "show", DOCUMENT_CLIENT) == listed[1]
    code, out = _cli(env, "client", "show", DOCUMENT_CLIENT)
    assert code == 0, out
    assert "origin:        metadata_document" in out
    assert "the document at its client_id URL" in out
    assert "refresh:       1 live refresh-token family(ies)" in out
    for unknown in ("https://other.example.test/client.json", "leftover"):
        code, out = _cli(env, "client", "show", unknown)
        assert code == 1, out
        assert "no client with id" in out

    done = _json(env, "client", "revoke-tokens", DOCUMENT_CLIENT)
    assert done == {"client_id": DOCUMENT_CLIENT, "grants": 1, "opaque_tokens": 1}
    assert asyncio.run(_document_state(url)) == (True, True)
    # Its consent remains, so it is still known; nothing live is left to revoke.
    shown = _json(env, "client", "show", DOCUMENT_CLIENT)
    assert shown["records"] == {**records, "refresh_families": 0, "opaque_access_tokens": 0}
    again = _json(env, "client", "revoke-tokens", DOCUMENT_CLIENT)
    assert (again["grants"], again["opaque_tokens"]) == (0, 0)
    listed = _json(env, "consent", "list", "--client", DOCUMENT_CLIENT)
    assert [c["client_id"] for c in listed] == [DOCUMENT_CLIENT]

    # Once its consent is revoked too, nothing names the client: it is unknown again.
    done = _json(env, "consent", "revoke", "--user", "alice", "--client", DOCUMENT_CLIENT)
    assert done["consent_removed"] is True
    assert [c["client_id"] for c in _json(env, "client", "list")] == [registered["client_id"]]
    for args in (("client", "show"), ("client", "revoke-tokens")):
        code, out = _cli(env, *args, DOCUMENT_CLIENT)
        assert code == 1, out
        assert "no client with id" in out


async def _seed_consent_and_code(url: str, client_id: str, now: int) -> None:
    """alice's consent to `client_id` and an unused code for it, as its sign-in leaves them."""
    storage = SqlStorage(Database(url))
    try:
        alice = await storage.get_user_by_username("alice")
        assert alice is not None
        await storage.save_consent(
            ConsentGrant(alice.user_id, client_id, frozenset({"read"}), frozenset(), now)
        )
        await storage.save_code(
            AuthorizationCode(
                code_hash=keyed_hash(f"code {client_id}"),
                grant_id=f"grant-code-{len(client_id)}",
                client_id=client_id,
                redirect_uri="https://notes.example.test/callback",
                redirect_uri_in_request=True,
                code_challenge="x" * 43,
                scopes=("read",),
                audiences=("https://api.example.test",),
                nonce=None,
                user_id=alice.user_id,
                auth_time=now,
                amr=("pwd",),
                issued_at=now,
                expires_at=now + 60,
            )
        )
    finally:
        await storage.close()


async def _rows_under(url: str, client_id: str) -> dict[str, int]:
    """How many rows each client table holds under `client_id` (refresh tokens by family)."""
    storage = SqlStorage(Database(url))
    try:
        async with storage.database.begin() as conn:
            counts = {
                table.name: (
                    await conn.execute(
                        sa.select(sa.func.count()).where(table.c.client_id == client_id)
                    )
                ).scalar_one()
                for table in (consents, authorization_codes, refresh_families, opaque_access_tokens)
            }
            families = sa.select(refresh_families.c.family_id).where(
                refresh_families.c.client_id == client_id
            )
            counts["refresh_tokens"] = (
                await conn.execute(
                    sa.select(sa.func.count()).where(refresh_tokens.c.family_id.in_(families))
                )
            ).scalar_one()
        return counts
    finally:
        await storage.close()


def test_consent_list_names_a_metadata_document_client_by_its_host(env: dict[str, str]) -> None:
    _api(env)
    _json(env, "user", "create", "alice", "--password-stdin", stdin="correct horse battery\n")
    asyncio.run(_seed_document_client(env["AUTHGATE_DATABASE_URL"], int(time.time())))
    listed = _json(env, "consent", "list")
    assert [(c["client_id"], c["client_name"], c["client_origin"]) for c in listed] == [
        (DOCUMENT_CLIENT, "notes.example.test (metadata document)", "metadata_document")
    ]
    code, out = _cli(env, "consent", "list", "--client", DOCUMENT_CLIENT)
    assert code == 0, out
    assert out.splitlines()[1].split("\t")[:3] == [
        "alice",
        DOCUMENT_CLIENT,
        "notes.example.test (metadata document)",
    ]


def test_deleting_a_metadata_document_client_removes_what_its_url_holds(
    env: dict[str, str],
) -> None:
    """`client delete URL` deletes the records stored under the URL as `delete_client` deletes a
    registered client's, after revoking its grants; the client can come back by its document
    unless the [client_metadata] policy keeps its host out, and the command says which."""
    _api(env)
    _json(env, "user", "create", "alice", "--password-stdin", stdin="correct horse battery\n")
    url = env["AUTHGATE_DATABASE_URL"]
    at = int(time.time())
    asyncio.run(_seed_document_client(url, at))
    asyncio.run(_seed_consent_and_code(url, DOCUMENT_CLIENT, at))  # the consent is replaced
    assert asyncio.run(_rows_under(url, DOCUMENT_CLIENT)) == {
        "consents": 1,
        "authorization_codes": 1,
        "refresh_families": 1,
        "opaque_access_tokens": 1,
        "refresh_tokens": 1,
    }
    allowlist = {
        **env,
        "AUTHGATE_CLIENT_METADATA_POLICY": "allowlist",
        "AUTHGATE_CLIENT_METADATA_ALLOWED_HOSTS": "notes.example.test",
    }
    done = _json(allowlist, "client", "delete", DOCUMENT_CLIENT)
    assert done == {
        "deleted": DOCUMENT_CLIENT,
        "grants_revoked": 1,
        "opaque_tokens_revoked": 1,
        "origin": "metadata_document",
        "may_return": True,
    }
    assert set(asyncio.run(_rows_under(url, DOCUMENT_CLIENT)).values()) == {0}
    storage_state = asyncio.run(_jwt_revoked_and_leftover(url))
    # The JWT of its grant is on the revocation list; the other id's records are untouched.
    assert storage_state == (True, True)
    assert [e["details"] for e in _json(env, "audit", "list") if e["kind"] == "client.deleted"] == [
        {"origin": "metadata_document", "grants_revoked": 1, "opaque_tokens_revoked": 1}
    ]
    for args in (("client", "show"), ("client", "delete")):
        for unknown in (DOCUMENT_CLIENT, "leftover"):  # nothing under it; no URL, no client
            code, out = _cli(env, *args, unknown)
            assert code == 1, out
            assert "no client with id" in out
    assert asyncio.run(_jwt_revoked_and_leftover(url)) == (True, True)
    assert _json(env, "consent", "list") == []

    # The text says whether the policy lets the client back in, and which setting decides.
    other = "https://other.example.test/client.json"
    cases = (
        (allowlist, "can come back", "remove notes.example.test from allowed_hosts"),
        (
            {**env, "AUTHGATE_CLIENT_METADATA_POLICY": "any"},
            "can come back",
            'set policy = "allowlist" without this host',
        ),
        (allowlist, "cannot come back", "other.example.test is not in allowed_hosts"),
        (env, "cannot come back", 'outside the [client_metadata] policy (policy = "off")'),
    )
    for config, verdict, setting in cases:
        client_id = other if "other" in setting else DOCUMENT_CLIENT
        asyncio.run(_seed_consent_and_code(url, client_id, at))
        code, out = _cli(config, "client", "delete", client_id)
        assert code == 0, out
        assert out.startswith(f"deleted what the server held for client {client_id}"), out
        assert "revoked 0 grant(s) and 0 other opaque access token(s)" in out
        assert f"the client {verdict}" in out
        assert setting in out
        assert set(asyncio.run(_rows_under(url, client_id)).values()) == {0}


def test_deleting_a_registered_client_says_what_it_revoked(env: dict[str, str]) -> None:
    _api(env)
    client = _json(env, "client", "create", "--name", "billing", "--grant", "client_credentials")
    done = _json(env, "client", "delete", client["client_id"])
    assert done == {"deleted": client["client_id"], "grants_revoked": 0, "opaque_tokens_revoked": 0}
    code, out = _cli(env, "client", "delete", client["client_id"])
    assert code == 1, out
    assert "no client with id" in out


async def _jwt_revoked_and_leftover(url: str) -> tuple[bool, bool]:
    """Whether the document client's grant JWT is revoked, and the leftover opaque token kept."""
    storage = SqlStorage(Database(url))
    try:
        leftover = await storage.get_opaque_token(keyed_hash("opaque-x"))
        return await storage.is_jti_revoked("jwt-document"), leftover is not None
    finally:
        await storage.close()
