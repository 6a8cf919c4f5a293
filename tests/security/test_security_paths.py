"""Path confusion between the gate's judgement and the application (RFC 3986 §3.3, §5.2.4).

Routes ignore matrix parameters (`/admin;x=1` is `/admin`), as servlet containers do; those
containers also read `/public/..;/admin` as `/admin` and `/;x/admin` as `/admin`. Such paths used
to be judged by the public route and served by the protected one.
"""

from __future__ import annotations

import pytest

from authgate.gate import Decision, Gate, GateRequest, Outcome, parse_gate_config
from authgate.policy.paths import InvalidPathError, canonical_decoded_path, canonical_path

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
