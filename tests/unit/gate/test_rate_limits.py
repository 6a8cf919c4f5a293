"""Rate limits at the gate: the `[limits]` table and each route's keys (every refusal names its
key), and decisions on a controlled clock with the memory store: 429 with `Retry-After` and the
RateLimit fields, keys (subject, client id, API key, claim, address, the address fallback),
tiers, what is not counted, fail-open and fail-closed on a store that refuses connections, the
`Pending` path of a store in Redis, and hostile key values."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from authgate.config import ConfigError
from authgate.gate import (
    Decision,
    Gate,
    GateConfig,
    GateRequest,
    Outcome,
    Pending,
    RatePending,
    RouteConfig,
)
from authgate.gate import parse_gate_config as parse
from authgate.gate.rate_limits import (
    KeyKind,
    LimitsSettings,
    RateTier,
    RouteRateLimit,
    allowed_fields,
    allowed_fields_bytes,
)
from authgate.limits import Decision as LimitDecision
from authgate.limits import FailMode, Limit, Limiter, parse_rate, rate_limit_headers
from authgate.limits.memory import MemoryStore
from authgate.policy import Route
from authgate.verifier import VerifierConfig, hash_api_key
from tests.support.gate import AUDIENCE, FakeIssuer

API_KEY_A = "a" * 43
API_KEY_B = "b" * 43
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MicroClock:
    """Microseconds that move only when told (the memory store's clock)."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


def issuer_part(issuer: FakeIssuer) -> str:
    return f"""
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
[api_keys]
[[api_keys.keys]]
hash = "{hash_api_key(API_KEY_A)}"
subject = "reports"
[[api_keys.keys]]
hash = "{hash_api_key(API_KEY_B)}"
subject = "reports"
"""


MINIMAL = """
[api_keys]
[[api_keys.keys]]
hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
subject = "x"
"""


def with_routes(routes: str, top: str = "") -> str:
    return top + MINIMAL + routes


# -- configuration ----------------------------------------------------------------------------


def test_the_documented_shape() -> None:
    config = parse(
        with_routes(
            """
[[routes]]
path = "/orders"
name = "orders"
rate_limit = "600/minute"
burst = 60
rate_limit_key = "client_id"
on_store_failure = "closed"
limits = [
  { role = "free", rate = "60/minute" },
  { scope = "bulk", rate = "6000/minute", burst = 1 },
]
[[routes]]
path = "/status"
public = true
rate_limit = "10/second"
[[routes]]
path = "/by-tenant"
rate_limit = "5/minute"
rate_limit_key = "claim:tenant"
[[routes]]
path = "/free"
""",
            top='[limits]\nredis_url = "memory://?max_keys=1000"\ntimeout = "50ms"\n'
            'retry_interval = "2s"\nnamespace = "shop"\nheaders = "all"\n'
            'on_store_failure = "fail_open"\n',
        )
    )
    assert config.limits == LimitsSettings("memory://?max_keys=1000", 0.05, 2.0, "shop", "all")
    orders = config.routes[0].rate_limit
    assert orders is not None
    assert orders.key is KeyKind.CLIENT_ID
    assert [(t.limit.name, t.role, t.scope) for t in orders.tiers] == [
        ("orders-free", "free", None),
        ("orders-bulk", None, "bulk"),
        ("orders", None, None),
    ]
    assert orders.tiers[1].limit.rate == parse_rate("6000/minute", burst=1)
    assert orders.tiers[2].limit.rate == parse_rate("600/minute", burst=60)
    assert {t.limit.on_store_failure for t in orders.tiers} == {FailMode.CLOSED}
    status = config.routes[1].rate_limit
    assert status is not None
    assert status.key is KeyKind.ADDRESS  # the default on a public route
    assert status.tiers[0].limit == Limit("routes-1", parse_rate("10/second"), FailMode.OPEN)
    tenant = config.routes[2].rate_limit
    assert tenant is not None
    assert (tenant.key, tenant.claim, tenant.tiers[0].limit.name) == (
        KeyKind.CLAIM,
        "tenant",
        "routes-2",
    )
    assert config.routes[3].rate_limit is None
    assert config.rate_limited


def test_defaults_and_no_limits() -> None:
    config = parse(with_routes('[[routes]]\npath = "/a"\nrate_limit = "1/second"\n'))
    assert config.limits == LimitsSettings()
    limit = config.routes[0].rate_limit
    assert limit is not None
    assert limit.key is KeyKind.SUBJECT
    assert limit.tiers[0].limit.on_store_failure is FailMode.OPEN
    plain = parse(with_routes('[[routes]]\npath = "/a"\n'))
    assert not plain.rate_limited
    assert Gate(plain).limiter is None  # nothing to count: no limiter, no store


@pytest.mark.parametrize(
    ("top", "route", "key", "reason"),
    [
        ("", 'rate_limit = "10/fortnight"', "routes[0].rate_limit", "expected COUNT/PERIOD"),
        ("", 'rate_limit = "0/minute"', "routes[0].rate_limit", "count must be"),
        ("", "rate_limit = 10", "routes[0].rate_limit", "must be a string"),
        ("", "burst = 5", "routes[0].burst", "rate_limit"),
        ("", 'rate_limit = "1/second"\nburst = 0', "routes[0].rate_limit", "burst must be"),
        ("", 'rate_limit_key = "subject"', "routes[0].rate_limit_key", "rate_limit"),
        ("", 'on_store_failure = "open"', "routes[0].on_store_failure", "rate_limit"),
        (
            "",
            'rate_limit = "1/second"\nrate_limit_key = "ip"',
            "routes[0].rate_limit_key",
            "one of",
        ),
        (
            "",
            'rate_limit = "1/second"\nrate_limit_key = "claim:"',
            "routes[0].rate_limit_key",
            "one of",
        ),
        (
            "",
            'rate_limit = "1/second"\nrate_limit_key = "subject:x"',
            "routes[0].rate_limit_key",
            "one of",
        ),
        (
            "",
            'rate_limit = "1/second"\non_store_failure = "maybe"',
            "routes[0].on_store_failure",
            "one of",
        ),
        (
            "",
            'limits = [{ role = "free", rate = "1/second" }]',
            "routes[0].limits",
            "needs a default",
        ),
        (
            "",
            'limits = [{ rate = "1/second" }, { role = "x", rate = "2/second" }]',
            "routes[0].limits",
            "last tier",
        ),
        (
            "",
            'rate_limit = "1/second"\nlimits = [{ rate = "2/second" }]',
            "routes[0].limits",
            "both defaults",
        ),
        (
            "",
            'limits = [{ role = "a", scope = "b", rate = "1/second" }, { rate = "1/second" }]',
            "routes[0].limits[0]",
            "not both",
        ),
        (
            "",
            'limits = [{ role = "a", rate = "1/second", colour = "red" }, { rate = "1/second" }]',
            "routes[0].limits[0].colour",
            "unknown",
        ),
        (
            "",
            'limits = [{ role = "a" }, { rate = "1/second" }]',
            "routes[0].limits[0].rate",
            "required",
        ),
        (
            "",
            'limits = [{ role = "a", rate = "1/minute", name = "A!" }, { rate = "2/minute" }]',
            "routes[0].limits[0]",
            "limit name",
        ),
        (
            "",
            'public = true\nrate_limit = "1/second"\nrate_limit_key = "subject"',
            "routes[0].rate_limit_key",
            "public",
        ),
        (
            "",
            'public = true\nlimits = [{ role = "a", rate = "1/second" }, { rate = "1/second" }]',
            "routes[0].limits",
            "public",
        ),
        ("[limits]\ncolour = 1\n", 'rate_limit = "1/second"', "limits.colour", "unknown"),
        ("[limits]\nmax_headers = 5\n", 'rate_limit = "1/second"', "limits.max_headers", "unknown"),
        (
            '[limits]\nredis_url = "http://cache:6379"\n',
            'rate_limit = "1/second"',
            "limits",
            "expected memory://, redis://",
        ),
        (
            '[limits]\nredis_url = "redis://h:notaport/0"\n',
            'rate_limit = "1/second"',
            "limits",
            "not a valid Redis URL",
        ),
        (
            '[limits]\nredis_url = "memory://?max_keys=0"\n',
            'rate_limit = "1/second"',
            "limits",
            "max_keys",
        ),
        ('[limits]\ntimeout = "10s"\n', 'rate_limit = "1/second"', "limits", "at most 5s"),
        ("[limits]\ntimeout = 0\n", 'rate_limit = "1/second"', "limits.timeout", "positive"),
        ('[limits]\nnamespace = "Shop!"\n', 'rate_limit = "1/second"', "limits", "namespace"),
        ('[limits]\nheaders = "some"\n', 'rate_limit = "1/second"', "limits.headers", "one of"),
        (
            '[limits]\nredis_url = "redis://h"\nredis_url_env = "X"\n',
            'rate_limit = "1/second"',
            "limits",
            "not two",
        ),
        (
            '[limits]\nredis_url_env = "UNSET_VARIABLE_FOR_TEST"\n',
            'rate_limit = "1/second"',
            "limits.redis_url_env",
            "not set",
        ),
    ],
)
def test_refusals_name_the_key(top: str, route: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(with_routes(f'[[routes]]\npath = "/a"\n{route}\n', top=top), environ={})
    assert caught.value.key == key, str(caught.value)
    assert reason in caught.value.reason, str(caught.value)


def test_limit_names_are_unique() -> None:
    twice = '[[routes]]\npath = "/a"\nname = "api"\nrate_limit = "1/second"\n'
    with pytest.raises(ConfigError) as caught:
        parse(with_routes(twice + twice.replace("/a", "/b")))
    assert caught.value.key == "routes[1]"
    assert "'api' is also used by routes[0]" in caught.value.reason
    # Names that are not valid limit names fall back to the route's index.
    config = parse(with_routes(twice.replace('"api"', '"Orders API"')))
    assert config.routes[0].rate_limit is not None
    assert config.routes[0].rate_limit.tiers[0].limit.name == "routes-0"
    # In code, two routes may share one limit (one count), never two rates under one name.
    limit = Limit("api", parse_rate("1/second"))
    other = Limit("api", parse_rate("2/second"))
    routes = [
        RouteConfig(Route.build(path=p), rate_limit=RouteRateLimit.single(limit))
        for p in ("/a", "/b")
    ]
    GateConfig(VerifierConfig(), routes)
    with pytest.raises(ValueError, match="two different rate limits are named 'api'"):
        GateConfig(
            VerifierConfig(),
            [*routes, RouteConfig(Route.build(path="/c"), rate_limit=RouteRateLimit.single(other))],
        )


def test_the_redis_url_password_is_never_shown(tmp_path: Path) -> None:
    secret = "s3cret-Pa55word"
    for top, environ in [
        (f'[limits]\nredis_url = "ftp://user:{secret}@cache:6379/0"\n', {}),
        ('[limits]\nredis_url_env = "URL"\n', {"URL": f"rediss://:{secret}@cache:notaport/0"}),
        ("", {"AUTHGATE_LIMITS_REDIS_URL": f"foo://:{secret}@cache/0"}),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse(
                with_routes('[[routes]]\npath = "/a"\nrate_limit = "1/second"\n', top),
                environ=environ,
            )
        assert secret not in str(caught.value)
        assert "cache" in str(caught.value)  # the URL is named, without its credentials
    url = f"redis://:{secret}@cache.internal:6380/2"
    config = parse(
        with_routes(
            '[[routes]]\npath = "/a"\nrate_limit = "1/second"\n', '[limits]\nredis_url_env = "U"\n'
        ),
        environ={"U": url},
    )
    assert config.limits.redis_url == url
    assert secret not in repr(config)
    assert secret not in repr(config.limits)
    assert config.limits.store == "redis://cache.internal:6380/2"


def test_the_url_from_a_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "redis.url").write_text("redis://:pw@from-file:6379/1\n")
    (tmp_path / "redis.url").chmod(0o600)
    routes = '[[routes]]\npath = "/a"\nrate_limit = "1/second"\n'
    top = '[limits]\nredis_url_file = "redis.url"\n'
    assert parse(with_routes(routes, top), base_dir=tmp_path, environ={}).limits.store == (
        "redis://from-file:6379/1"
    )
    # AUTHGATE_LIMITS_REDIS_URL wins over the file and over a written URL.
    override = {"AUTHGATE_LIMITS_REDIS_URL": "redis://from-env:6379/3"}
    assert parse(with_routes(routes, top), base_dir=tmp_path, environ=override).limits.store == (
        "redis://from-env:6379/3"
    )
    assert parse(with_routes(routes), environ=override).limits.store == "redis://from-env:6379/3"


def test_code_built_limits_check_themselves() -> None:
    limit = Limit("a", parse_rate("1/second"))
    with pytest.raises(ValueError, match="last tier"):
        RouteRateLimit((RateTier(limit, role="x"),))
    with pytest.raises(ValueError, match="claim name"):
        RouteRateLimit((RateTier(limit),), KeyKind.CLAIM)
    with pytest.raises(ValueError, match="public route"):
        RouteConfig(Route.build(path="/", public=True), rate_limit=RouteRateLimit.single(limit))
    with pytest.raises(ValueError, match="at most 5s"):
        LimitsSettings(timeout=30)


# -- decisions --------------------------------------------------------------------------------


ROUTES = """
[[routes]]
path = "/orders"
name = "orders"
rate_limit = "3/minute"
burst = 3
[[routes]]
path = "/clients"
rate_limit = "2/minute"
burst = 2
rate_limit_key = "client_id"
[[routes]]
path = "/keys"
rate_limit = "2/minute"
burst = 2
rate_limit_key = "api_key"
[[routes]]
path = "/tenants"
rate_limit = "2/minute"
burst = 2
rate_limit_key = "claim:tenant"
[[routes]]
path = "/tiers"
name = "tiers"
limits = [
  { role = "pro", rate = "5/minute", burst = 5 },
  { scope = "bulk", rate = "4/minute", burst = 4 },
  { rate = "1/minute" },
]
[[routes]]
path = "/public"
public = true
rate_limit = "2/minute"
burst = 2
[[routes]]
path = "/strict"
rate_limit = "1/minute"
on_store_failure = "closed"
[[routes]]
path = "/scoped"
scopes = ["orders:admin"]
rate_limit = "1/minute"
"""


@pytest.fixture
def clock() -> MicroClock:
    return MicroClock()


@pytest.fixture
async def gate(test_issuer: FakeIssuer, clock: MicroClock) -> AsyncIterator[Gate]:
    config = parse('[limits]\nheaders = "all"\n' + issuer_part(test_issuer) + ROUTES)
    gate = Gate(config, limiter=Limiter(MemoryStore(clock=clock)))
    await gate.start(background=False)
    yield gate
    await gate.aclose()


def req(
    path: str, token: str | None = None, *, client: str = "192.0.2.1", key: str | None = None
) -> GateRequest:
    headers = []
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    if key is not None:
        headers.append(("x-api-key", key))
    return GateRequest("GET", path, headers, client=client)


async def statuses(gate: Gate, request: GateRequest, n: int) -> list[int]:
    return [_status(await gate.check(request)) for _ in range(n)]


def _status(decision: Decision) -> int:
    return 200 if decision.answer is None else decision.answer.status


async def test_a_route_limit_refuses_with_429_then_admits_again(
    gate: Gate, test_issuer: FakeIssuer, clock: MicroClock
) -> None:
    token = test_issuer.token()
    first = await gate.check(req("/orders", token))
    assert first.outcome is Outcome.ALLOWED
    assert first.rate_key is KeyKind.SUBJECT
    assert gate.rate_limit_headers(first) == [
        ("RateLimit-Policy", '"orders";q=3;w=60'),
        ("RateLimit", '"orders";r=2;t=20'),
    ]
    assert await statuses(gate, req("/orders", token), 3) == [200, 200, 429]
    refused = await gate.check(req("/orders", token))
    assert refused.outcome is Outcome.LIMITED
    assert refused.principal is not None
    assert refused.principal.subject == "user-1"
    assert refused.answer is not None
    assert refused.answer.status == 429
    assert dict(refused.answer.headers) == {
        "content-type": "application/json",
        "cache-control": "no-store",
        "ratelimit-policy": '"orders";q=3;w=60',
        "ratelimit": '"orders";r=0;t=20',
        "retry-after": "20",
    }
    assert json.loads(refused.answer.body) == {
        "error": "temporarily_unavailable",
        "error_description": "too many requests; retry later",
    }
    assert gate.rate_limit_headers(refused) == []  # a refusal's fields are in its answer
    assert gate.rate_limited == {("orders", "subject"): 2}  # the route's label
    assert gate.decisions["limited"] == 2
    clock.advance(20)  # Retry-After: one more is admitted then, not before
    assert await statuses(gate, req("/orders", token), 2) == [200, 429]


async def test_each_key_kind_counts_its_own_callers(gate: Gate, test_issuer: FakeIssuer) -> None:
    alice, bob = test_issuer.token(sub="alice"), test_issuer.token(sub="bob")
    assert await statuses(gate, req("/orders", alice), 4) == [200, 200, 200, 429]
    assert await statuses(gate, req("/orders", bob), 1) == [200]
    # client_id: two subjects of one client share its count.
    one = test_issuer.token(sub="carol", client_id="shared")
    two = test_issuer.token(sub="dave", client_id="shared")
    assert [
        *await statuses(gate, req("/clients", one), 2),
        *await statuses(gate, req("/clients", two), 1),
    ] == [200, 200, 429]
    # api_key: two keys of one subject count apart.
    assert await statuses(gate, req("/keys", key=API_KEY_A), 3) == [200, 200, 429]
    decision = await gate.check(req("/keys", key=API_KEY_B))
    assert decision.allowed
    assert decision.rate_key is KeyKind.API_KEY
    # A claim: its value is the key.
    red, blue = test_issuer.token(tenant="red"), test_issuer.token(tenant="blue", sub="zed")
    assert await statuses(gate, req("/tenants", red), 3) == [200, 200, 429]
    assert await statuses(gate, req("/tenants", blue), 1) == [200]


async def test_a_missing_key_value_is_counted_by_address(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    # A bearer token on an api_key route, a token without the claim or without `sub`: the
    # address counts them, so none escapes the route's limit.
    token = test_issuer.token(sub=None)
    decision = await gate.check(req("/orders", token, client="203.0.113.9"))
    assert decision.allowed
    assert decision.rate_key is KeyKind.ADDRESS
    assert await statuses(gate, req("/orders", token, client="203.0.113.9"), 3) == [200, 200, 429]
    assert (
        await gate.check(req("/keys", test_issuer.token(), client="203.0.113.7"))
    ).rate_key is KeyKind.ADDRESS
    no_tenant = test_issuer.token()
    assert await statuses(gate, req("/tenants", no_tenant, client="198.51.100.1"), 3) == [
        200,
        200,
        429,
    ]
    assert await statuses(gate, req("/tenants", no_tenant, client="198.51.100.2"), 1) == [200]


async def test_public_routes_count_addresses_and_ipv6_by_64(gate: Gate) -> None:
    assert await statuses(gate, req("/public", client="192.0.2.10"), 3) == [200, 200, 429]
    public = await gate.check(req("/public", client="192.0.2.11"))
    assert public.outcome is Outcome.PUBLIC
    assert public.rate_key is KeyKind.ADDRESS
    assert gate.rate_limit_headers(public)[0] == ("RateLimit-Policy", '"routes-5";q=2;w=60')
    # One subscriber's /64 is one client: a fresh address in it gets no fresh bucket.
    assert await statuses(gate, req("/public", client="2001:db8:1:2::1"), 2) == [200, 200]
    assert await statuses(gate, req("/public", client="2001:db8:1:2:ffff::9"), 1) == [429]
    assert await statuses(gate, req("/public", client="2001:db8:1:3::1"), 1) == [200]
    # A shell that cannot tell the address: one shared bucket, still limited.
    assert await statuses(gate, GateRequest("GET", "/public"), 3) == [200, 200, 429]


async def test_tiers_first_match_wins(gate: Gate, test_issuer: FakeIssuer) -> None:
    pro = test_issuer.token(sub="p", roles=["pro"], scope="bulk")
    bulk = test_issuer.token(sub="b", scope="bulk")
    free = test_issuer.token(sub="f")
    assert await statuses(gate, req("/tiers", pro), 6) == [200] * 5 + [429]
    assert await statuses(gate, req("/tiers", bulk), 5) == [200] * 4 + [429]
    assert await statuses(gate, req("/tiers", free), 2) == [200, 429]
    decision = await gate.check(req("/tiers", test_issuer.token(sub="p2", roles=["pro"])))
    assert gate.rate_limit_headers(decision)[0] == ("RateLimit-Policy", '"tiers-pro";q=5;w=60')


async def test_refused_requests_are_not_counted(gate: Gate, test_issuer: FakeIssuer) -> None:
    for _ in range(5):  # 401 and 403 come first and spend nothing
        assert _status(await gate.check(req("/orders", "not-a-token"))) == 401
        assert _status(await gate.check(req("/orders"))) == 401
        assert _status(await gate.check(req("/scoped", test_issuer.token()))) == 403
    assert _status(await gate.check(req("/orders", test_issuer.token()))) == 200
    admin = test_issuer.token(scope="orders:admin")
    assert await statuses(gate, req("/scoped", admin), 2) == [200, 429]


async def test_allowed_answers_carry_the_fields_only_when_asked(
    test_issuer: FakeIssuer, clock: MicroClock
) -> None:
    config = parse(issuer_part(test_issuer) + ROUTES)  # headers = "refusals", the default
    gate = Gate(config, limiter=Limiter(MemoryStore(clock=clock)))
    try:
        allowed = await gate.check(req("/public"))
        assert allowed.allowed
        assert gate.rate_limit_headers(allowed) == []
        assert gate.rate_limit_fields(allowed) == []
        await gate.check(req("/public"))
        refused = await gate.check(req("/public"))
        assert refused.answer is not None
        assert "ratelimit" in dict(refused.answer.headers)
    finally:
        await gate.aclose()


async def test_check_nowait_decides_memory_limits_at_once(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    token = test_issuer.token(sub="nowait")
    step = gate.check_nowait(req("/orders", token))
    assert isinstance(step, Pending)  # the token's first sight: verification must be awaited
    assert (await gate.verify_pending(step)).allowed
    for expected in (200, 200, 429):
        decided = gate.check_nowait(req("/orders", token))
        assert isinstance(decided, Decision)
        assert _status(decided) == expected
    public = gate.check_nowait(req("/public", client="192.0.2.77"))
    assert isinstance(public, Decision)
    assert public.allowed


async def test_check_nowait_on_a_limited_route_refuses_and_defers_as_check_does(
    gate: Gate, test_issuer: FakeIssuer
) -> None:
    """`check_nowait` decides a limited route's verified request without a `RatePending`: an
    unverified token still gets one (principal unset, client kept), a refusal by the route's
    requirement counts nothing, and a bad token is refused before any count."""
    reader = test_issuer.token(sub="reader")  # no "orders:admin"
    step = gate.check_nowait(req("/scoped", reader, client="192.0.2.9"))
    assert isinstance(step, RatePending)
    assert (step.path, step.principal, step.client, step.limit) == (
        "/scoped",
        None,
        "192.0.2.9",
        None,
    )
    assert _status(await gate.verify_pending(step)) == 403
    for _ in range(3):  # refused by the requirement: never counted, never 429
        decided = gate.check_nowait(req("/scoped", reader))
        assert isinstance(decided, Decision)
        assert decided.outcome is Outcome.FORBIDDEN
        assert decided.rate_limit is None
    admin = test_issuer.token(sub="reader", scope="orders:admin")
    assert (await gate.check(req("/scoped", admin))).allowed  # the subject's one request
    refused = gate.check_nowait(req("/scoped", admin))
    assert isinstance(refused, Decision)
    assert refused.outcome is Outcome.LIMITED
    assert refused.rate_key is KeyKind.SUBJECT
    bad = gate.check_nowait(req("/scoped", reader[:-4] + "AAAA"))
    assert isinstance(bad, Decision | RatePending)
    if isinstance(bad, RatePending):
        bad = await gate.verify_pending(bad)
    assert bad.outcome is Outcome.UNAUTHENTICATED


# -- the store: Redis, and a store that cannot be reached ---------------------------------------


async def test_redis_limits_wait_in_pending_then_decide(test_issuer: FakeIssuer) -> None:
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    config = parse(
        f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
        'headers = "all"\n' + issuer_part(test_issuer) + ROUTES
    )
    gate = Gate(config)
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
    try:
        await gate.start(background=False)
        token = test_issuer.token(sub="redis-user")
        assert (await gate.check(req("/orders", token))).allowed  # verified and cached
        results = []
        for _ in range(3):
            step = gate.check_nowait(req("/orders", token))
            assert isinstance(step, Pending)  # verified at once; the count needs Redis
            assert step.principal is not None
            assert step.limit is not None
            results.append(_status(await gate.verify_pending(step)))
        assert results == [200, 200, 429]
        public = gate.check_nowait(req("/public"))
        assert isinstance(public, Pending)
        assert public.credential is None
        assert (await gate.verify_pending(public)).outcome is Outcome.PUBLIC
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        assert len(keys) == 2
        assert all(0 < client.pttl(k) <= 60_000 for k in keys)  # every key expires by itself
    finally:
        await gate.aclose()
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


async def test_an_unreachable_store_fails_open_or_closed(
    test_issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-not-logged"
    url = f"redis://:{secret}@127.0.0.1:{closed_port()}/0"
    config = parse(
        '[limits]\nredis_url_env = "U"\nheaders = "all"\n' + issuer_part(test_issuer) + ROUTES,
        environ={"U": url},
    )
    gate = Gate(config)
    try:
        await gate.start(background=False)
        token = test_issuer.token()
        open_route = await gate.check(req("/orders", token))
        assert open_route.allowed  # fail-open: allowed, uncounted
        assert open_route.rate_limit is not None
        assert open_route.rate_limit.store_failed
        assert gate.rate_limit_headers(open_route) == [("RateLimit-Policy", '"orders";q=3;w=60')]
        closed_route = await gate.check(req("/strict", token))
        assert closed_route.outcome is Outcome.UNAVAILABLE
        assert closed_route.answer is not None
        assert closed_route.answer.status == 503
        headers = dict(closed_route.answer.headers)
        assert int(headers["retry-after"]) >= 1
        assert "ratelimit" not in headers  # nothing is known of the quota
        assert json.loads(closed_route.answer.body)["error"] == "temporarily_unavailable"
        assert gate.limiter is not None
        assert gate.limiter.metrics.outages == 1
        assert not gate.limiter.store_available
        assert gate.rate_limited == {}  # 503s are not rate-limited refusals
    finally:
        await gate.aclose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rate-limit store unavailable" in logged
    assert secret not in logged


# -- hostile key values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"sub": "a:b"}, {"sub": "a"}),
        ({"tenant": "1"}, {"tenant": 1}),
        ({"tenant": ["a", "b"]}, {"tenant": "a,b"}),
        ({"tenant": {"x": 1, "y": 2}}, {"tenant": {"y": 2, "x": 1}, "sub": "other"}),
    ],
)
async def test_values_that_look_alike_keep_their_own_counts_or_share_one_exactly(
    gate: Gate, test_issuer: FakeIssuer, first: dict[str, Any], second: dict[str, Any]
) -> None:
    route = "/tenants" if "tenant" in first else "/orders"
    a, b = test_issuer.token(**first), test_issuer.token(**second)
    burst = 2 if route == "/tenants" else 3
    assert await statuses(gate, req(route, a), burst + 1) == [200] * burst + [429]
    same = first.get("tenant") == second.get("tenant") and route == "/tenants"  # dict order
    assert _status(await gate.check(req(route, b))) == (429 if same else 200)


async def test_huge_and_odd_values_get_short_keys(gate: Gate, test_issuer: FakeIssuer) -> None:
    assert gate.limiter is not None
    store = gate.limiter.store
    assert isinstance(store, MemoryStore)
    for value in ("x" * 3000, "\u202e\ud7ff\U0001f600", "\x00\n\r", "a" * 100 + "\u0000"):
        decision = await gate.check(req("/orders", test_issuer.token(sub=value)))
        assert decision.allowed
    lengths = {len(k) for k in store._tats}
    assert len(lengths) == 1
    assert lengths.pop() < 64


@pytest.mark.parametrize(
    ("rate", "remaining", "window", "failed"),
    [
        ("3/minute", 2, 20.0, False),
        ("600/minute", 0, 0.1, False),
        ("10/second", 7, 0.0000001, False),
        ("100/minute", 99, 59.5, False),
        ("100/minute", 0, 0.0, True),
    ],
)
def test_allowed_fields_match_the_limits_package(
    rate: str, remaining: int, window: float, failed: bool
) -> None:
    limit = Limit("fields", parse_rate(rate))
    decided = LimitDecision(limit, True, remaining, 0.0, window, window, store_failed=failed)
    expected = rate_limit_headers([decided])
    for _ in range(2):  # built, then from the cached policy
        assert allowed_fields(decided) == expected
        assert allowed_fields_bytes(decided) == [(n.encode(), v.encode()) for n, v in expected]
