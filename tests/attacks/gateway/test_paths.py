"""Path confusion between the gate's judgement and the application (RFC 3986 §3.3, §5.2.4).

Routes ignore matrix parameters (`/admin;x=1` is `/admin`), as servlet containers do; those
containers also read `/public/..;/admin` as `/admin` and `/;x/admin` as `/admin`. Such paths used
to be judged by the public route and served by the protected one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.gate import Decision, Gate, GateRequest, Outcome, parse_gate_config
from authgate.policy.paths import InvalidPathError, canonical_decoded_path, canonical_path
from tests.support.gateway import Gateway, Issuer, Upstream, gateway_toml

CONFIG = """
[[issuers]]
issuer = "https://issuer.test"
jwks_uri = "https://issuer.test/jwks"
audiences = ["https://api.test"]
[[routes]]
path = "/"
public = true
[[routes]]
path = "/public"
public = true
[[routes]]
path = "/admin"
roles = ["admin"]
"""

CONFUSING = [
    "/public/..;/admin",
    "/public/..;x=1/admin",
    "/public/%2e%2e;/admin",
    "/public/%2E%2E;jsessionid=1/admin",
    "/;x/admin",
    "/;/admin",
    "/public/..;",
]


@pytest.mark.parametrize("path", CONFUSING)
def test_parameters_on_dot_or_empty_segments_are_refused(path: str) -> None:
    with pytest.raises(InvalidPathError):
        canonical_path(path)
    with pytest.raises(InvalidPathError):
        canonical_decoded_path(path.replace("%2e", ".").replace("%2E", "."))


@pytest.mark.parametrize("path", CONFUSING)
def test_the_gate_answers_400_instead_of_the_public_route(path: str) -> None:
    gate = Gate(parse_gate_config(CONFIG))
    decision = gate.prepare(GateRequest("GET", path))
    assert isinstance(decision, Decision)
    assert decision.outcome is Outcome.BAD_REQUEST
    assert decision.answer is not None
    assert decision.answer.status == 400


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/admin;x=1", "/admin;x=1"),
        ("/a/b;v=2/c", "/a/b;v=2/c"),
        ("/a;b/..", "/"),
        # resolved by the gate before judging, and forwarded resolved
        ("/public/.;/../admin", "/public/admin"),
    ],
)
def test_ordinary_matrix_parameters_and_dot_segments_still_pass(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


# -- case: routes are case-sensitive, many upstreams are not ---------------------------------------

CASE_CONFIG = "case_insensitive = true\n" + CONFIG


def test_other_case_spellings_go_to_the_catch_all_by_default() -> None:
    # Documented: an upstream that ignores case (Express's default) serves /ADMIN/x as /admin/x.
    decision = Gate(parse_gate_config(CONFIG)).prepare(GateRequest("GET", "/ADMIN/x"))
    assert isinstance(decision, Decision)
    assert decision.outcome is Outcome.PUBLIC


@pytest.mark.parametrize("path", ["/ADMIN/x", "/Admin", "/aDmIn;x=1/y", "/%41DMIN/x"])
def test_case_insensitive_routes_judge_every_spelling_alike(path: str) -> None:
    decision = Gate(parse_gate_config(CASE_CONFIG)).prepare(GateRequest("GET", path))
    assert isinstance(decision, Decision)
    assert decision.outcome is Outcome.UNAUTHENTICATED
    assert decision.route is not None
    assert decision.route.route.path.source == "/admin"


def test_case_insensitive_routes_match_a_mixed_case_route_path() -> None:
    config = CASE_CONFIG + '[[routes]]\npattern = "/Reports/*/Daily"\nscopes = ["r"]\n'
    gate = Gate(parse_gate_config(config))
    for path in ("/reports/7/daily", "/REPORTS/7/DAILY", "/Reports/7/Daily"):
        decision = gate.prepare(GateRequest("GET", path))
        assert isinstance(decision, Decision)
        assert decision.route is not None
        assert decision.route.route.path.source == "/Reports/*/Daily"


def _case_warnings(caplog: pytest.LogCaptureFixture, config: str) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="authgate.gate"):
        parse_gate_config(config)
    return [r.getMessage() for r in caplog.records if "case_insensitive" in r.getMessage()]


def test_a_protected_route_open_in_another_case_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (warning,) = _case_warnings(caplog, CONFIG)
    assert "routes[2] (/admin)" in warning
    assert "routes[0] (/, public)" in warning
    # Two routes whose paths differ only by case, with different requirements.
    both = CONFIG.replace('path = "/public"\npublic = true', 'path = "/ADMIN"\nscopes = ["x"]')
    assert len(_case_warnings(caplog, both)) == 2


@pytest.mark.parametrize(
    "config",
    [
        CASE_CONFIG,  # every spelling is judged by the same route
        CONFIG.replace('path = "/"\npublic = true', 'path = "/x"\npublic = true'),  # no catch-all
        CONFIG.replace('path = "/"\npublic = true', 'path = "/"\nroles = ["admin"]'),  # same demand
        "case_insensitive = false\n" + CONFIG,  # the operator says the application minds case
    ],
    ids=["case-insensitive", "default-deny", "same-requirement", "explicitly-case-sensitive"],
)
def test_no_case_warning_without_a_risk(caplog: pytest.LogCaptureFixture, config: str) -> None:
    assert _case_warnings(caplog, config) == []


# -- the same through the gateway: what the upstream is sent --------------------------------------


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Issuer, Upstream]]:
    issuer, upstream = Issuer(), Upstream()
    yield issuer, upstream
    issuer.close()
    upstream.close()


def _gateway(servers: tuple[Issuer, Upstream], directory: Path, extra: str = "") -> Gateway:
    issuer, upstream = servers
    routes = f"""
[[routes]]
path = "/"
public = true
upstream = "{upstream.url}"

[[routes]]
path = "/strip"
public = true
upstream = "{upstream.url}"
strip_prefix = true
"""
    return Gateway(gateway_toml(issuer, upstream, extra, routes), directory)


@pytest.fixture(scope="module")
def sensitive(
    servers: tuple[Issuer, Upstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gateway = _gateway(servers, tmp_path_factory.mktemp("gw"))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def insensitive(
    servers: tuple[Issuer, Upstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gateway = _gateway(servers, tmp_path_factory.mktemp("gw"), "case_insensitive = true")
    yield gateway
    gateway.stop()


def _upstream_path(gateway: Gateway, path: str) -> str:
    status, _, body = gateway.request("GET", path)
    assert status == 200, body
    return str(json.loads(body)["path"])


@pytest.mark.parametrize(
    ("path", "sent"),
    [("/strip/a", "/a"), ("/strip;x/a", "/a"), ("/strip;x", "/"), ("/stripX/a", "/stripX/a")],
)
def test_strip_prefix_removes_what_the_route_matched(
    sensitive: Gateway, path: str, sent: str
) -> None:
    # /strip;x/a is judged by the /strip route; it used to be forwarded unstripped.
    assert _upstream_path(sensitive, path) == sent


def test_the_gateway_warns_of_a_protected_route_open_in_another_case(sensitive: Gateway) -> None:
    # One line per protected route of the standard configuration; /admin is one of them.
    (warning,) = [line for line in sensitive.logs if "(/admin) is case-sensitive" in line]
    assert "/ADMIN is judged by" in warning
    assert "(/, public)" in warning
    assert not [line for line in sensitive.logs if "(/public) is case-sensitive" in line]
    assert _upstream_path(sensitive, "/ADMIN/x") == "/ADMIN/x"  # the documented default


def test_case_insensitive_gateway_protects_every_spelling(insensitive: Gateway) -> None:
    assert not [line for line in insensitive.logs if "is case-sensitive" in line]
    for path in ("/ADMIN/x", "/Admin", "/aDmIn;x=1/y"):
        status, headers, _ = insensitive.request("GET", path)
        assert status == 401
        assert headers["www-authenticate"] == 'Bearer realm="authgate", scope="orders:admin"'
    assert _upstream_path(insensitive, "/STRIP;x/a") == "/a"
    assert _upstream_path(insensitive, "/Public/b") == "/Public/b"  # the path is not rewritten
