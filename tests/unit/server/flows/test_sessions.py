"""Session cookie attributes, server-side session expiry, CSRF tokens."""

from __future__ import annotations

import dataclasses
from http.cookies import SimpleCookie

import pytest

from authgate.server.flows.sessions import (
    CsrfTokens,
    SessionPolicy,
    is_active,
    session_cookie,
    start_session,
    touch,
)
from tests.support.flows import NOW, keyed_hash

POLICY = SessionPolicy(idle_timeout=1800, absolute_lifetime=86400, touch_interval=60)


def test_https_issuer_gets_host_prefix_and_secure() -> None:
    cookie = session_cookie("https://auth.example.com")
    header = cookie.set_header("abc")
    assert header.startswith("__Host-authgate_session=abc;")
    attributes = {part.strip() for part in header.split(";")[1:]}
    assert attributes == {"Path=/", "HttpOnly", "SameSite=Lax", "Secure"}
    assert "Domain" not in header  # __Host- forbids it (RFC 6265bis §4.1.3.2)


def test_http_loopback_issuer_has_no_secure_flag() -> None:
    header = session_cookie("http://127.0.0.1:8000").set_header("abc", max_age=60)
    attributes = {part.strip() for part in header.split(";")}
    assert attributes == {
        "authgate_session=abc",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=60",
    }


def test_cookie_header_parses_with_the_standard_library() -> None:
    parsed = SimpleCookie()
    parsed.load(session_cookie("https://a.example").set_header("v4lue-_x", max_age=3600))
    morsel = parsed["__Host-authgate_session"]
    assert morsel.value == "v4lue-_x"
    assert morsel["httponly"] is True
    assert morsel["secure"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"


def test_clear_header_expires_the_cookie() -> None:
    header = session_cookie("https://a.example").clear_header()
    assert header.startswith("__Host-authgate_session=;")
    assert "Max-Age=0" in header


def test_start_session_makes_a_fresh_random_id_stored_hashed() -> None:
    sid, session = start_session(hash_token=keyed_hash, user_id="alice", amr=["pwd"], now=NOW)
    assert len(sid) == 43
    assert session.session_hash == keyed_hash(sid)
    assert sid not in repr(session)
    assert (session.user_id, session.auth_time, session.amr) == ("alice", NOW, ("pwd",))
    other, _ = start_session(hash_token=keyed_hash, user_id="alice", amr=["pwd"], now=NOW)
    assert other != sid


def test_idle_and_absolute_expiry() -> None:
    _, session = start_session(hash_token=keyed_hash, user_id="a", amr=[], now=NOW)
    assert is_active(session, NOW + 1799, POLICY)
    assert not is_active(session, NOW + 1800, POLICY)
    kept_alive = dataclasses.replace(session, last_seen=NOW + 86000)
    assert is_active(kept_alive, NOW + 86399, POLICY)
    assert not is_active(kept_alive, NOW + 86400, POLICY)


def test_touch_writes_rarely() -> None:
    _, session = start_session(hash_token=keyed_hash, user_id="a", amr=[], now=NOW)
    assert touch(session, NOW + 59, POLICY) is None
    touched = touch(session, NOW + 60, POLICY)
    assert touched is not None
    assert touched.last_seen == NOW + 60
    assert touched.created_at == NOW


@pytest.mark.parametrize(("idle", "absolute", "touch_every"), [(0, 1, 0), (10, 5, 0), (10, 20, 10)])
def test_policy_validation(idle: int, absolute: int, touch_every: int) -> None:
    with pytest.raises(ValueError, match="sessions"):
        SessionPolicy(idle, absolute, touch_every)


def test_csrf_token_is_bound_to_the_session() -> None:
    csrf = CsrfTokens(b"c" * 32)
    token = csrf.token("session-a")
    assert csrf.verify("session-a", token)
    assert not csrf.verify("session-b", token)
    assert csrf.token("session-a") == token  # stable for the session: forms in several tabs work
    assert csrf.token("session-b") != token


@pytest.mark.parametrize("presented", [None, "", "x", "é" * 43])
def test_csrf_mismatch(presented: str | None) -> None:
    csrf = CsrfTokens(b"c" * 32)
    assert not csrf.verify("session-a", presented)


def test_csrf_needs_a_session_and_a_strong_key() -> None:
    csrf = CsrfTokens(b"c" * 32)
    assert not csrf.verify(None, csrf.token(""))
    assert not csrf.verify("", csrf.token(""))
    with pytest.raises(ValueError, match="256 bits"):
        CsrfTokens(b"short")


def test_csrf_token_depends_on_the_key() -> None:
    assert CsrfTokens(b"a" * 32).token("s") != CsrfTokens(b"b" * 32).token("s")
    assert not CsrfTokens(b"a" * 32).verify("s", CsrfTokens(b"b" * 32).token("s"))
