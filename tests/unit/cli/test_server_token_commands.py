"""Incident response from the command line against tokens a running server issued:
`authgate token revoke` (access tokens of both formats, refresh tokens; from stdin or argument),
`client revoke-tokens` and `user revoke-sessions`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.server import admin
from authgate.server.flows.refresh_tokens import new_family
from authgate.server.models import OpaqueAccessToken, Session
from tests.support.server_harness import ISSUER, SECRET_KEY, Harness

JWT_API = "https://api.example.test"
OPAQUE_API = "https://opaque.example.test"


def _env(h: Harness) -> dict[str, str]:
    return {
        "AUTHGATE_DATABASE_URL": h.config.database_url,
        "AUTHGATE_SECRET_KEY": SECRET_KEY.decode(),
        "AUTHGATE_ISSUER": ISSUER,
        "AUTHGATE_CONFIG": "",
    }


async def _cli(h: Harness, *args: str, stdin: str | None = None) -> tuple[int, str]:
    # On a thread: the command runs its own event loop, as from a shell.
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), env=_env(h), input=stdin)
    return result.exit_code, result.output


async def _active(h: Harness, rs: tuple[str, str], token: str) -> bool:
    response = await h.http.post("/introspect", data={"token": token}, auth=rs)
    assert response.status_code == 200
    active: bool = response.json()["active"]
    return active


async def _setup(h: Harness) -> tuple[tuple[str, str], tuple[str, str], dict[str, str]]:
    await h.create_api(JWT_API)
    await h.create_api(OPAQUE_API, token_format="opaque")
    client, secret = await h.create_client(scopes=(f"{JWT_API}#read", f"{OPAQUE_API}#read"))
    rs, rs_secret = await h.create_client(
        name="rs", grant_types=(), introspect=(JWT_API, OPAQUE_API)
    )
    tokens = {
        api: (await h.token(client, secret, resource=api)).json()["access_token"]
        for api in (JWT_API, OPAQUE_API)
    }
    return (client.client_id, secret or ""), (rs.client_id, rs_secret or ""), tokens


async def _user_grant(h: Harness, client_id: str, username: str = "alice") -> tuple[str, str]:
    """A user, a refresh-token family of theirs with `client_id`, and a browser session."""
    user = await admin.create_user(
        h.server.storage, username=username, password="correct horse battery", now=int(h.clock())
    )
    token, family = new_family(
        hash_token=h.server.secret.hash_token,
        grant_id="grant-" + username,
        client_id=client_id,
        user_id=user.user_id,
        scopes=("offline_access", "read"),
        audiences=(JWT_API,),
        auth_time=int(h.clock()),
        amr=("pwd",),
        now=int(h.clock()),
    )
    await h.server.storage.create_family(family)
    await h.server.storage.record_grant_token(family.grant_id, "jti-" + username, 2**40)
    now = int(h.clock())
    await h.server.storage.save_session(
        Session("session-" + username, user.user_id, now, ("pwd",), now, now)
    )
    return user.user_id, token


async def test_token_revoke_each_kind_never_echoed(harness: Harness) -> None:
    h = harness
    owner, rs, tokens = await _setup(h)
    for api, token in tokens.items():
        assert await _active(h, rs, token), api
        code, out = await _cli(h, "token", "revoke", stdin=token + "\n")
        assert code == 0, out
        assert "access_token of client" in out
        assert ": revoked" in out
        assert token not in out
        assert not await _active(h, rs, token), api
        code, out = await _cli(h, "token", "revoke", "-", stdin=token)  # again: idempotent
        assert code == 0, out
        assert "already inactive" in out
    _, refresh = await _user_grant(h, owner[0])
    assert await _active(h, rs, refresh)
    # "--": a random token starts with "-" one time in 64
    code, out = await _cli(h, "token", "revoke", "--json", "--", refresh)
    assert code == 0, out
    assert refresh not in out
    assert '"kind": "refresh_token"' in out
    assert not await _active(h, rs, refresh)
    assert await h.server.storage.is_jti_revoked("jti-alice")  # the grant's access tokens too


@pytest.mark.parametrize(
    ("stdin", "argument", "message", "status"),
    [
        ("", "-", "no token given", 3),
        ("a b", "-", "spaces or control characters", 3),
        ("abc\x1b[2J", "-", "spaces or control characters", 3),
        ("x" * 70_000, "-", "too long", 3),
        (None, "not-a-token", "not a token of this server", 1),
        (None, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "not a token of this server", 1),
        (None, "A" * 20_000, "not a token of this server", 1),
        (None, "-6leading-dash", "not a token of this server", 1),
    ],
)
async def test_token_revoke_hostile_input(
    harness: Harness, stdin: str | None, argument: str, message: str, status: int
) -> None:
    code, out = await _cli(harness, "token", "revoke", "--", argument, stdin=stdin)
    assert code == status, out
    assert message in out
    assert len(out) < 400
    if stdin:
        assert stdin[:20] not in out


async def test_client_revoke_tokens(harness: Harness) -> None:
    h = harness
    owner, rs, tokens = await _setup(h)
    _, refresh = await _user_grant(h, owner[0])
    other, other_secret = await h.create_client(name="other", scopes=(f"{OPAQUE_API}#read",))
    kept = (await h.token(other, other_secret, resource=OPAQUE_API)).json()["access_token"]
    code, out = await _cli(h, "client", "revoke-tokens", owner[0], "--json")
    assert code == 0, out
    assert '"grants": 1' in out
    assert '"opaque_tokens": 1' in out
    assert not await _active(h, rs, tokens[OPAQUE_API])
    assert not await _active(h, rs, refresh)
    assert await h.server.storage.is_jti_revoked("jti-alice")
    assert await _active(h, rs, kept)  # another client's token is untouched
    # Untracked: a client_credentials JWT runs out on its own (documented).
    assert await _active(h, rs, tokens[JWT_API])
    for hostile in ("no-such-client", "c" * 5000, "--"):
        code, out = await _cli(h, "client", "revoke-tokens", "--", hostile)
        assert code == 1, out
        assert "no client with id" in out
        assert len(out) < 400


async def test_user_revoke_sessions(harness: Harness) -> None:
    h = harness
    owner, rs, _ = await _setup(h)
    alice, refresh = await _user_grant(h, owner[0])
    bob, bob_refresh = await _user_grant(h, owner[0], "bob")
    # An opaque access token of alice's under a grant without a refresh family (a code grant
    # without offline_access), and one of bob's.
    now = int(h.clock())
    for name, user in (("alice", alice), ("bob", bob)):
        await h.server.storage.save_opaque_token(
            OpaqueAccessToken(
                "hash-" + name,
                "jti-opaque-" + name,
                owner[0],
                user,
                OPAQUE_API,
                "read",
                (),
                now,
                now + 300,
                grant_id="code-grant-" + name,
            )
        )
    code, out = await _cli(h, "user", "revoke-sessions", "alice")
    assert code == 0, out
    assert "ended 1 session(s), revoked 2 grant(s)" in out
    opaque = await h.server.storage.get_opaque_token("hash-alice")
    assert opaque is not None
    assert opaque.revoked
    untouched = await h.server.storage.get_opaque_token("hash-bob")
    assert untouched is not None
    assert not untouched.revoked
    assert await h.server.storage.get_session("session-alice") is None
    assert not await _active(h, rs, refresh)
    assert await h.server.storage.is_jti_revoked("jti-alice")
    assert await h.server.storage.get_user(alice) is not None  # the account stays
    # bob is untouched.
    assert await h.server.storage.get_session("session-bob") is not None
    assert await _active(h, rs, bob_refresh)
    for hostile in ("nobody", "u" * 5000, "al\x1bice"):
        code, out = await _cli(h, "user", "revoke-sessions", hostile)
        assert code == 1, out
        assert "no user named" in out
        assert "\x1b" not in out


async def test_incident_commands_are_audited_without_the_token(harness: Harness) -> None:
    h = harness
    owner, _, tokens = await _setup(h)
    await _user_grant(h, owner[0])
    assert (await _cli(h, "token", "revoke", "-", stdin=tokens[OPAQUE_API]))[0] == 0
    assert (await _cli(h, "client", "revoke-tokens", owner[0]))[0] == 0
    assert (await _cli(h, "user", "revoke-sessions", "alice"))[0] == 0
    events = await h.server.storage.list_audit_events(0, 100)
    kinds = [e.kind for e in events]
    for kind in ("token.revoked", "client.tokens_revoked", "user.sessions_revoked"):
        assert kind in kinds, kinds
    assert not [e for e in events if tokens[OPAQUE_API] in repr(e)]
