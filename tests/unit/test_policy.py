"""Policy unit tests: path canonicalisation, route matching (default deny, specificity, method
ownership), and requirements (scopes all/any, roles, claim conditions)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from authgate.policy import (
    ClaimCondition,
    InvalidPathError,
    Policy,
    Requirement,
    Route,
    canonical_decoded_path,
    canonical_path,
)
from authgate.verifier import Principal


def principal(scopes: str = "", roles: tuple[str, ...] = (), **claims: Any) -> Principal:
    return Principal(
        subject="u",
        client_id="c",
        scopes=frozenset(scopes.split()),
        roles=frozenset(roles),
        issuer="i",
        claims=MappingProxyType(claims),
    )


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/", "/"),
        ("/orders", "/orders"),
        ("/orders/", "/orders/"),
        ("/%61dmin", "/admin"),
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("//admin", "/admin"),
        ("/a/./b//c/", "/a/b/c/"),
        ("/../../etc", "/etc"),
        ("/a/..", "/"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/a%20b", "/a%20b"),
        ("/admin;jsessionid=1", "/admin;jsessionid=1"),
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical
    assert canonical_path(raw.encode()) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a%00",
        "/a\\b",
        "/%zz",
        "/%4",
        "a/b",
        "",
        "/é",
        "/a b",
        "/a\x00",
        "/a#b",
    ],
)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPathError):
        canonical_path(raw)


def test_decoded_paths_are_reencoded_with_their_charset() -> None:
    assert canonical_decoded_path("/café") == "/caf%C3%A9"  # ASGI: UTF-8
    assert canonical_decoded_path("/caf\xc3\xa9", "latin-1") == "/caf%C3%A9"  # WSGI
    assert canonical_decoded_path("/a/../admin", "latin-1") == "/admin"
    assert canonical_decoded_path("/100%", "latin-1") == "/100%25"
    with pytest.raises(InvalidPathError):
        canonical_decoded_path("/a\\b")
    with pytest.raises(InvalidPathError):
        canonical_decoded_path("/a\nb")


def table(*routes: Route) -> Policy[Route]:
    return Policy.of(routes)


def label(policy: Policy[Route], method: str, path: str) -> str | None:
    found = policy.match(method, canonical_path(path))
    return found[0].label if found else None


def test_prefix_routes_match_on_segment_boundaries() -> None:
    policy = table(Route.build(path="/orders", name="orders"))
    assert label(policy, "GET", "/orders") == "orders"
    assert label(policy, "GET", "/orders/") == "orders"
    assert label(policy, "GET", "/orders/7/items") == "orders"
    assert label(policy, "GET", "/ordersX") is None
    assert label(policy, "GET", "/") is None  # default deny
    assert label(policy, "GET", "/orders;x=1/7") == "orders"


def test_patterns() -> None:
    policy = table(
        Route.build(pattern="/orders/*/items", name="items"),
        Route.build(pattern="/users/{user_id}", name="user"),
        Route.build(pattern="/files/**", name="files"),
    )
    assert label(policy, "GET", "/orders/7/items") == "items"
    assert label(policy, "GET", "/orders/7/items/3") is None
    assert label(policy, "GET", "/orders//items") is None  # merged: /orders/items
    assert label(policy, "GET", "/users/42") == "user"
    assert label(policy, "GET", "/users/42/x") is None
    assert label(policy, "GET", "/files") == "files"
    assert label(policy, "GET", "/files/a/b/c") == "files"


def test_the_most_specific_path_wins_whatever_the_order() -> None:
    policy = table(
        Route.build(path="/", public=True, name="catch-all"),
        Route.build(path="/admin", roles=["admin"], name="admin"),
        Route.build(pattern="/admin/*/public", public=True, name="admin-public"),
    )
    assert label(policy, "GET", "/admin/settings") == "admin"
    assert label(policy, "GET", "/public/../admin") == "admin"
    assert label(policy, "GET", "/%61dmin") == "admin"
    assert label(policy, "GET", "/admin/x/public") == "admin-public"
    assert label(policy, "GET", "/home") == "catch-all"


def test_methods_and_no_fall_through_to_a_broader_path() -> None:
    policy = table(
        Route.build(path="/", public=True, name="catch-all"),
        Route.build(path="/orders", methods=["GET"], scopes=["orders:read"], name="read"),
        Route.build(path="/orders", methods=["post", "PUT"], scopes=["orders:write"], name="write"),
    )
    assert label(policy, "GET", "/orders") == "read"
    assert label(policy, "HEAD", "/orders") == "read"  # GET implies HEAD
    assert label(policy, "POST", "/orders/1") == "write"
    assert label(policy, "DELETE", "/orders/1") is None  # not the public catch-all
    assert label(policy, "DELETE", "/other") == "catch-all"


def test_ties_keep_configuration_order() -> None:
    policy = table(
        Route.build(pattern="/a/*", name="first"),
        Route.build(pattern="/*/b", name="second"),
    )
    assert label(policy, "GET", "/a/b") == "first"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"path": "/a", "pattern": "/a"},
        {"path": "a"},
        {"pattern": "/a/**/b"},
        {"pattern": "/a/x*"},
        {"path": "/a/../b"},
        {"path": "/a", "public": True, "scopes": ["x"]},
        {"path": "/a", "scopes": ["bad scope"]},
        {"path": "/a", "scopes": "orders:read"},
        {"path": "/a", "methods": []},
        {"path": "/a", "methods": ["GE T"]},
        {"path": "/a", "scopes_match": "some"},
    ],
)
def test_invalid_routes_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Route.build(**kwargs)


def test_scopes_all_and_any() -> None:
    all_of = Requirement(scopes=("orders:read", "orders:write"))
    assert all_of.check(principal("orders:read orders:write")) is None
    denied = all_of.check(principal("orders:read"))
    assert denied is not None
    assert denied.status_code == 403
    assert denied.error == "insufficient_scope"
    assert denied.scope == "orders:read orders:write"
    any_of = Requirement(scopes=("a", "b"), scopes_match="any")  # type: ignore[arg-type]
    assert any_of.check(principal("b")) is None
    assert any_of.check(principal("c")) is not None


def test_roles_all_and_any() -> None:
    assert Requirement(roles=("admin",)).check(principal(roles=("admin", "x"))) is None
    denied = Requirement(roles=("admin", "ops")).check(principal(roles=("admin",)))
    assert denied is not None
    assert denied.scope is None
    any_of = Requirement(roles=("admin", "ops"), roles_match="any")  # type: ignore[arg-type]
    assert any_of.check(principal(roles=("ops",))) is None


def test_claim_conditions() -> None:
    tenant = ClaimCondition(("tenant",), equals="acme")
    verified = ClaimCondition(("email_verified",), equals=True)
    level = ClaimCondition(("level",), equals=1)
    groups = ClaimCondition(("groups",), contains="ops")
    amr = ClaimCondition(("amr",), contains="mfa")
    nested = ClaimCondition(("realm_access", "roles"), contains="admin")
    claims = {
        "tenant": "acme",
        "email_verified": True,
        "level": 1,
        "groups": ["ops", "dev"],
        "amr": "pwd mfa",
        "realm_access": {"roles": ["admin"]},
    }
    for condition in (tenant, verified, level, groups, amr, nested):
        assert condition.holds(claims), condition
    assert not verified.holds({"email_verified": 1})
    assert not level.holds({"level": True})
    assert not level.holds({"level": "1"})
    assert not tenant.holds({})
    assert not groups.holds({"groups": "operators"})
    assert not amr.holds({"amr": "pwdmfa"})
    assert not nested.holds({"realm_access": ["admin"]})
    requirement = Requirement(claims=(tenant, groups))
    assert requirement.check(principal(**claims)) is None
    assert requirement.check(principal(tenant="other", groups=["ops"])) is not None
    with pytest.raises(ValueError, match="exactly one"):
        ClaimCondition(("x",))
    with pytest.raises(ValueError, match="exactly one"):
        ClaimCondition(("x",), equals=1, contains=1)


@pytest.mark.parametrize(
    "separator", ["\u00a0", "\u3000", "\t", "\n", "\r", "\x0b", "\x1f", "\u2003"]
)
def test_contains_splits_a_string_on_spaces_only(separator: str) -> None:
    # RFC 6749 §3.3: only U+0020 separates; "pwd<sep>mfa" is not a word list holding "mfa".
    amr = ClaimCondition(("amr",), contains="mfa")
    assert not amr.holds({"amr": f"pwd{separator}mfa"})
    assert not amr.holds({"amr": f"mfa{separator}"})
    assert Requirement(claims=(amr,)).check(principal(amr=f"pwd{separator}mfa")) is not None
    assert amr.holds({"amr": "pwd  mfa "})  # repeated spaces are not a word
