"""The gate's decision for whole requests: credential placement (RFC 6750 §2), the answers and
their WWW-Authenticate challenges (RFC 6750 §3, RFC 9728 §5.1), policy, and the sync fast path."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authgate.gate import (
    Decision,
    Gate,
    GateConfig,
    GateRequest,
    Outcome,
    Pending,
    RatePending,
    parse_gate_config,
)
from authgate.gate.challenge import www_authenticate
from authgate.policy import Route
from authgate.verifier import (
    IssuerConfig,
    Reason,
    TokenRejected,
    VerifierConfig,
    hash_api_key,
)
from tests.support.gate import AUDIENCE, FakeIssuer, ManualClock

API_KEY = "k" * 43


def gate_config(issuer: FakeIssuer, *, methods: str = '["header"]') -> str:
    return f"""
realm = "orders"
resource = "{issuer.server.url}/api"
bearer_methods = {methods}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
[api_keys]
[[api_keys.keys]]
hash = "{hash_api_key(API_KEY)}"
subject = "reports"
scopes = ["orders:read"]
[[routes]]
path = "/health"
public = true
[[routes]]
path = "/orders"
methods = ["GET", "POST"]
scopes = ["orders:read"]
[[routes]]
path = "/admin"
roles = ["admin"]
"""


@pytest.fixture
async def gate(test_issuer: FakeIssuer, clock: ManualClock) -> AsyncIterator[Gate]:
    gate = Gate(parse_gate_config(gate_config(test_issuer)), clock=clock)
    await gate.start(background=False)
    yield gate
    await gate.aclose()


def request(
    path: str = "/orders",
    method: str = "GET",
    token: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    **kwargs: Any,
) -> GateRequest:
    all_headers = list(headers)
    if token is not None:
        all_headers.append(("Authorization", f"Bearer {token}"))
    return GateRequest(method, path, all_headers, **kwargs)


def challenge(decision: Decision) -> dict[str, str]:
    assert decision.answer is not None
    headers = dict(decision.answer.headers)
    value = headers["www-authenticate"]
    assert value.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', value))


async def test_allowed_request_carries_the_principal(gate: Gate, test_issuer: FakeIssuer) -> None:
    decision = await gate.check(request(token=test_issuer.token()))
    assert decision.allowed
    assert decision.outcome is Outcome.ALLOWED
    assert decision.principal is not None
    assert decision.principal.subject == "user-1"
    assert decision.path == "/orders"
    assert decision.route is not None
    assert decision.route.route.label == "/orders"


async def test_public_routes_ignore_credentials(gate: Gate) -> None:
    decision = await gate.check(request("/health", token="garbage", query_string="access_token=x"))
    assert decision.allowed
    assert decision.outcome is Outcome.PUBLIC
    assert decision.principal is None


async def test_no_route_is_refused_without_a_challenge(gate: Gate, test_issuer: FakeIssuer) -> None:
    for path, method in (("/elsewhere", "GET"), ("/orders", "DELETE")):
        decision = await gate.check(request(path, method, token=test_issuer.token()))
        assert decision.outcome is Outcome.NO_ROUTE
        assert decision.answer is not None
        assert decision.answer.status == 403
        assert "www-authenticate" not in dict(decision.answer.headers)
        assert json.loads(decision.answer.body)["error"] == "access_denied"


async def test_missing_token_gets_a_challenge_without_error(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    for headers in (
        (),
        (("Authorization", "Basic dXNlcjpwYXNz"),),
        (("Authorization", "Digest x"),),
    ):
        decision = await gate.check(request(headers=headers))
        assert decision.answer is not None
        assert decision.answer.status == 401
        params = challenge(decision)
        metadata = f"{test_issuer.server.url}/.well-known/oauth-protected-resource/api"
        # RFC 6750 §3 `scope` on the 401 too: the client asks for the route's scopes at once.
        assert params == {"realm": "orders", "scope": "orders:read", "resource_metadata": metadata}


async def test_a_401_names_the_routes_scopes_and_a_400_does_not(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    metadata = f"{test_issuer.server.url}/.well-known/oauth-protected-resource/api"
    invalid = challenge(await gate.check(request(token="not.a.jwt")))
    assert invalid["error"] == "invalid_token"
    assert invalid["scope"] == "orders:read"
    assert invalid["resource_metadata"] == metadata
    no_scopes = challenge(await gate.check(request("/admin")))  # roles only: no scope to name
    assert "scope" not in no_scopes
    assert no_scopes["resource_metadata"] == metadata
    malformed = challenge(await gate.check(request(headers=(("Authorization", "Bearer a b"),))))
    assert malformed["error"] == "invalid_request"
    assert "scope" not in malformed
    reader = test_issuer.token(scope="profile")
    step_up = await gate.check(request(token=reader))
    assert step_up.answer is not None
    assert step_up.answer.status == 403
    assert challenge(step_up) == {
        "realm": "orders",
        "error": "insufficient_scope",
        "error_description": challenge(step_up)["error_description"],
        "scope": "orders:read",
        "resource_metadata": metadata,
    }


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer", "invalid_request"),
        ("Bearer ", "invalid_request"),
        ("Bearer a b", "invalid_request"),
        ("Bearer a,b", "invalid_request"),
        ("Bearer \u00e4bc", "invalid_request"),
        ("Bearer abc=def", "invalid_request"),
        ("Bearer not-a-jwt", "invalid_token"),
        ("bEaReR not.a.jwt", "invalid_token"),
    ],
)
async def test_malformed_authorization_headers(gate: Gate, header: str, reason: str) -> None:
    decision = await gate.check(request(headers=(("Authorization", header),)))
    assert decision.answer is not None
    assert decision.answer.status == (400 if reason == "invalid_request" else 401)
    assert challenge(decision)["error"] == reason
    assert json.loads(decision.answer.body)["error"] == reason


async def test_tokens_in_two_places_are_refused(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    config = parse_gate_config(gate_config(test_issuer, methods='["header", "query", "body"]'))
    gate = Gate(config, clock=clock)
    await gate.start(background=False)
    token = test_issuer.token()
    form = f"access_token={token}".encode()
    try:
        ok_query = await gate.check(request(query_string=f"a=1&access_token={token}"))
        assert ok_query.allowed
        assert gate.wants_body("POST", "application/x-www-form-urlencoded; charset=utf-8")
        assert not gate.wants_body("GET", "application/x-www-form-urlencoded")
        ok_body = await gate.check(request(method="POST", form_body=form))
        assert ok_body.allowed
        refused = [
            request(token=token, query_string=f"access_token={token}"),
            request(method="POST", token=token, form_body=form),
            request(method="POST", query_string=f"access_token={token}", form_body=form),
            request(query_string=f"access_token={token}&access_token={token}"),
            request(headers=(("Authorization", f"Bearer {token}"),) * 2),
            request(token=token, headers=(("X-API-Key", API_KEY),)),
            request(headers=(("X-API-Key", API_KEY), ("x-api-key", API_KEY))),
        ]
        for item in refused:
            decision = await gate.check(item)
            assert decision.outcome is Outcome.BAD_REQUEST, item
            assert decision.answer is not None
            assert decision.answer.status == 400
            assert challenge(decision)["error"] == "invalid_request"
    finally:
        await gate.aclose()


async def test_query_tokens_are_refused_when_not_enabled(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    for query in (f"access_token={test_issuer.token()}", "access%5Ftoken=abc"):
        decision = await gate.check(request(query_string=query))
        assert decision.answer is not None
        assert decision.answer.status == 400
    assert (await gate.check(request(token=test_issuer.token(), query_string="q=access"))).allowed


async def test_invalid_tokens_get_invalid_token_with_a_description(
    gate: Gate, test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    decision = await gate.check(request(token=test_issuer.token(exp=int(clock.now) - 3600)))
    assert decision.answer is not None
    assert decision.answer.status == 401
    params = challenge(decision)
    assert params["error"] == "invalid_token"
    assert params["error_description"] == "the access token has expired"
    assert decision.answer.headers[:2] == (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    )
    huge = await gate.check(request(token="a" * 70_000))
    assert huge.answer is not None
    assert huge.answer.status == 401


async def test_insufficient_scope_names_the_scope(gate: Gate, test_issuer: FakeIssuer) -> None:
    decision = await gate.check(request(token=test_issuer.token(scope="profile")))
    assert decision.outcome is Outcome.FORBIDDEN
    assert decision.answer is not None
    assert decision.answer.status == 403
    params = challenge(decision)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "orders:read"
    assert json.loads(decision.answer.body)["scope"] == "orders:read"
    roles = await gate.check(request("/admin", token=test_issuer.token(roles=["user"])))
    assert roles.answer is not None
    assert roles.answer.status == 403
    assert "scope" not in challenge(roles)
    admin = await gate.check(request("/admin", token=test_issuer.token(roles=["admin"])))
    assert admin.allowed


@pytest.mark.parametrize("separator", ["\u00a0", "\u3000", "\t", "\n"])
async def test_scope_split_on_other_whitespace_grants_nothing(
    gate: Gate, test_issuer: FakeIssuer, separator: str
) -> None:
    # RFC 6749 §3.3 separates scopes with U+0020 only: "profile<sep>orders:read" is no grant of
    # orders:read (an issuer reading it as one scope would be out-voted by the gate otherwise).
    token = test_issuer.token(scope=f"profile{separator}orders:read")
    decision = await gate.check(request(token=token))
    assert decision.outcome is Outcome.FORBIDDEN
    assert decision.answer is not None
    assert challenge(decision)["error"] == "insufficient_scope"


async def test_scope_as_an_array_grants_nothing(gate: Gate, test_issuer: FakeIssuer) -> None:
    array = await gate.check(request(token=test_issuer.token(scope=["orders:read"])))
    assert array.outcome is Outcome.FORBIDDEN
    spaced = await gate.check(request(token=test_issuer.token(scope="  profile  orders:read ")))
    assert spaced.allowed


async def test_unavailable_keys_give_503_with_retry_after(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.server.set_json("/jwks", {}, status=500)
    gate = Gate(parse_gate_config(gate_config(test_issuer)), clock=clock)
    await gate.start(background=False)
    try:
        assert not gate.ready
        decision = await gate.check(request(token=test_issuer.token()))
        assert decision.outcome is Outcome.UNAVAILABLE
        assert decision.answer is not None
        assert decision.answer.status == 503
        headers = dict(decision.answer.headers)
        assert int(headers["retry-after"]) >= 1
        assert "www-authenticate" not in headers
    finally:
        await gate.aclose()


async def test_api_keys(gate: Gate) -> None:
    ok = await gate.check(request(headers=(("x-api-key", API_KEY),)))
    assert ok.allowed
    assert ok.principal is not None
    assert ok.principal.subject == "reports"
    bad = await gate.check(request(headers=(("X-API-Key", "nope"),)))
    assert bad.answer is not None
    assert bad.answer.status == 401
    assert challenge(bad)["error"] == "invalid_token"


async def test_ambiguous_paths_are_400(gate: Gate, test_issuer: FakeIssuer) -> None:
    for path in ("/orders%2F..%2Fadmin", "/orders\\x", "/%zz"):
        decision = await gate.check(request(path, token=test_issuer.token()))
        assert decision.outcome is Outcome.BAD_REQUEST
    dotted = await gate.check(request("/health/../orders", token=test_issuer.token(scope="x")))
    assert dotted.outcome is Outcome.FORBIDDEN  # judged as /orders, not as public /health
    decoded = await gate.check(request("/or\xc3\xa9/../orders", decoded_as="latin-1"))
    assert decoded.answer is not None
    assert decoded.answer.status == 401


async def test_check_nowait_decides_without_io_after_the_first_verification(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    token = test_issuer.token()
    step = gate.check_nowait(request(token=token))
    assert isinstance(step, Pending)
    first = await gate.verify_pending(step)
    assert first.allowed
    second = gate.check_nowait(request(token=token))
    assert isinstance(second, Decision)
    assert second.allowed
    api = gate.check_nowait(request(headers=(("X-API-Key", API_KEY),)))
    assert isinstance(api, Decision)
    assert api.allowed
    assert gate.decisions["allowed"] == 3


def test_resource_metadata_document(gate: Gate, test_issuer: FakeIssuer) -> None:
    assert gate.resource_metadata_answer("GET", "/.well-known/oauth-protected-resource") is None
    answer = gate.resource_metadata_answer("GET", "/.well-known/oauth-protected-resource/api")
    assert answer is not None
    assert answer.status == 200
    doc = json.loads(answer.body)
    assert doc["resource"] == f"{test_issuer.server.url}/api"
    assert doc["authorization_servers"] == [test_issuer.issuer]
    assert doc["scopes_supported"] == ["orders:read"]
    post = gate.resource_metadata_answer("POST", "/.well-known/oauth-protected-resource/api")
    assert post is not None
    assert post.status == 405


def test_challenge_values_are_quoted_safely() -> None:
    error = TokenRejected(Reason.EXPIRED)
    error.description = 'evil" , error="none\\'
    value = www_authenticate(error, realm='a"b\\c')
    assert value.startswith('Bearer realm="a\\"b\\\\c", error="invalid_token"')
    assert 'error_description="evil? , error=?none?"' in value


async def test_configuration_in_code_and_from_a_file(
    test_issuer: FakeIssuer, clock: ManualClock, tmp_path: Any
) -> None:
    issuer = IssuerConfig(
        issuer=test_issuer.issuer, audiences=(AUDIENCE,), jwks_uri=test_issuer.server.url + "/jwks"
    )
    config = GateConfig.simple(
        VerifierConfig(issuers=(issuer,)),
        routes=(Route.build(path="/orders", scopes=["orders:read"]),),
        realm="in-code",
    )
    gate = Gate(config, clock=clock)
    try:
        assert (await gate.check(request(token=test_issuer.token()))).allowed
        refused = await gate.check(request())
        assert refused.answer is not None
        assert dict(refused.answer.headers)["www-authenticate"] == (
            'Bearer realm="in-code", scope="orders:read"'
        )
    finally:
        await gate.aclose()
    file = tmp_path / "gate.toml"
    file.write_text(gate_config(test_issuer))
    from_file = Gate.from_file(str(file), clock=clock)
    try:
        assert from_file.config.source == str(file)
        assert (await from_file.check(request(token=test_issuer.token()))).allowed
    finally:
        await from_file.aclose()


async def test_a_path_marked_canonical_is_judged_as_given(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    # The gateway canonicalises the target while parsing it and says so: no second pass.
    token = test_issuer.token()
    again = await gate.check(request("/orders/%7e", token=token))
    assert again.path == "/orders/~"
    as_given = await gate.check(request("/orders/%7e", token=token, canonical=True))
    assert as_given.path == "/orders/%7e"
    assert as_given.allowed
    # Only text is taken as given: raw bytes are canonicalised (and refused when ambiguous).
    raw = await gate.check(request(b"/orders/..%2Fadmin", token=token, canonical=True))  # type: ignore[arg-type]
    assert raw.outcome is Outcome.BAD_REQUEST


@pytest.mark.parametrize("cls", [GateRequest, Decision, Pending, RatePending])
def test_hand_written_inits_take_the_dataclass_fields(cls: type) -> None:
    """A field added to one of these classes must be added to its `__init__` too: the parameters
    are the fields, in order, with the same defaults, and each one is set."""
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        missing = field.default is dataclasses.MISSING
        expected = inspect.Parameter.empty if missing else field.default
        assert parameter.default == expected, field.name
    marker = object()
    made = cls(*(marker for _ in fields))
    assert all(getattr(made, f.name) is marker for f in fields)


def test_per_request_objects_stay_frozen_dataclasses() -> None:
    """`GateRequest`, `Decision`, `Pending` and `RatePending` set their slots in a hand-written
    `__init__`: they are still immutable, compared, hashed, shown and replaced as dataclasses."""
    request = GateRequest("GET", "/a", [("x", "y")], client="192.0.2.1")
    assert request == GateRequest("GET", "/a", [("x", "y")], "", None, None, "192.0.2.1")
    assert (request.headers, request.url, request.canonical) == ([("x", "y")], None, False)
    assert repr(request).startswith("GateRequest(method='GET', path='/a', headers=[('x', 'y')]")
    assert dataclasses.replace(request, path="/b").path == "/b"
    decision = Decision(Outcome.PUBLIC, "/a")
    assert decision == Decision(Outcome.PUBLIC, path="/a", route=None)
    assert hash(decision) == hash(Decision(Outcome.PUBLIC, "/a"))
    assert decision.allowed
    assert (decision.rate_limit, decision.rate_key) == (None, None)
    pending = Pending("/a", None, None)
    rate = RatePending("/a", None, None, client="192.0.2.1")
    assert (rate.principal, rate.client, rate.limit, rate.key) == (None, "192.0.2.1", None, None)
    assert rate != pending
    assert rate == RatePending("/a", None, None, None, "192.0.2.1")
    assert [f.name for f in dataclasses.fields(rate)][:3] == ["path", "route", "credential"]
    for obj, name in ((request, "path"), (decision, "outcome"), (pending, "path"), (rate, "key")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(obj, name)
