"""Properties over arbitrary input: path canonicalisation and credential extraction either succeed
or refuse with their own error (never another exception, which a shell would turn into a 500)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate.gate.credentials import CredentialRules, extract_credential
from authgate.oauth.errors import OAuthError
from authgate.oauth.scope import is_scope_token, split_scope
from authgate.policy import (
    ClaimCondition,
    InvalidPathError,
    Policy,
    Route,
    canonical_decoded_path,
    canonical_path,
)
from authgate.verifier import ClaimMapping
from authgate.verifier.principal import principal_from_claims

PATH_BYTES = st.binary(max_size=64).map(lambda b: b"/" + b) | st.sampled_from(
    [b"/a/../b", b"/%2e%2e/x", b"//x", b"/a/%zz", b"/a;b/../c", b"/%C3%A9"]
)
RULES = CredentialRules(frozenset({"header", "query", "body"}), "x-api-key", 4096)
POLICY = Policy.of(
    [Route.build(path="/"), Route.build(path="/admin", roles=["admin"]),
     Route.build(pattern="/a/*/b/**")]
)  # fmt: skip


@given(PATH_BYTES)
@settings(max_examples=400)
def test_canonical_paths_are_stable_and_matchable(raw: bytes) -> None:
    try:
        path = canonical_path(raw)
    except InvalidPathError:
        return
    assert path.startswith("/")
    assert "//" not in path
    assert "/./" not in path + "/"
    assert "/../" not in path + "/"
    assert canonical_path(path) == path
    assert POLICY.match("GET", path) is not None


@given(st.text(max_size=40))
def test_decoded_paths_never_fail_unexpectedly(text: str) -> None:
    for encoding in ("utf-8", "latin-1"):
        with contextlib.suppress(InvalidPathError):
            assert canonical_decoded_path("/" + text, encoding).startswith("/")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["authorization", "Authorization", "x-api-key", "other"]),
            st.text(max_size=80),
        ),
        max_size=4,
    ),
    st.text(max_size=80),
    st.none() | st.binary(max_size=80),
)
def test_credential_extraction_refuses_only_with_oauth_errors(
    headers: list[tuple[str, str]], query: str, body: bytes | None
) -> None:
    status = 200
    try:
        extract_credential(headers, query, body, RULES)
    except OAuthError as exc:
        status = exc.status_code
    assert status in (200, 400, 401)


SEGMENT = st.sampled_from(["a", "b", "orders", "x;m=1"])
ROUTE_PATHS = st.lists(st.sampled_from(["a", "b", "orders", "*", "**"]), max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)


def _route(spec: tuple[str, bool, str | None]) -> Route:
    text, is_pattern, method = spec
    methods = [method] if method is not None else None
    if is_pattern:
        if "**" in text.rstrip("*").split("/"):
            text = text.replace("**", "*")  # '**' only at the end
        return Route.build(pattern=text, methods=methods, name=text)
    return Route.build(path=text.replace("*", "a"), methods=methods, name=text)


def _linear_match(policy: Policy[Route], method: str, path: str) -> Route | None:
    """The route-table rule read literally: every route, most specific first, no index."""
    owner = None
    for route, _ in policy.routes:
        if owner is not None and route.path.specificity != owner:
            break
        if route.path.matches(path):
            owner = route.path.specificity
            if route.allows_method(method):
                return route
    return None


@given(
    st.lists(
        st.tuples(ROUTE_PATHS, st.booleans(), st.sampled_from([None, "GET", "POST"])),
        min_size=1,
        max_size=8,
    ),
    st.lists(SEGMENT, max_size=4).map(lambda s: "/" + "/".join(s)),
    st.sampled_from(["GET", "POST", "DELETE"]),
)
@settings(max_examples=400)
def test_the_route_index_picks_what_a_linear_scan_picks(
    specs: list[tuple[str, bool, str | None]], path: str, method: str
) -> None:
    policy = Policy.of([_route(spec) for spec in specs])
    found = policy.match(method, path)
    assert (found[0] if found is not None else None) is _linear_match(policy, method, path)


SCOPE_TEXT = st.text(
    st.sampled_from(
        ["a", "b", ":", " ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "\x1f", "é", '"']
    ),
    max_size=12,
)


@given(st.one_of(SCOPE_TEXT, st.lists(SCOPE_TEXT, max_size=4)), SCOPE_TEXT)
@settings(max_examples=400)
def test_granted_scopes_are_scope_tokens_read_alike_by_any_splitter(
    scp: str | list[str], scope: str
) -> None:
    # RFC 6749 §3.3: a principal holds only well-formed scope tokens, each one of the issuer's
    # U+0020-separated items, so writing them out again (X-Auth-Token's `scope`) and splitting on
    # any whitespace gives back the same set.
    principal = principal_from_claims(
        {"scp": scp, "scope": scope}, ClaimMapping(), issuer="i", method="jwt"
    )
    items = set(scope.split(" ")) | set(scp.split(" ") if isinstance(scp, str) else scp)
    assert all(is_scope_token(s) for s in principal.scopes)
    assert principal.scopes <= items
    assert set(" ".join(principal.scopes).split()) == principal.scopes


@given(SCOPE_TEXT, st.sampled_from(["a", "b", "a:b", "ab"]))
def test_contains_on_a_string_is_a_scope_token_test(value: str, word: str) -> None:
    holds = ClaimCondition(("amr",), contains=word).holds({"amr": value})
    assert holds == (word in value.split(" "))
    assert holds == (word in split_scope(value))
