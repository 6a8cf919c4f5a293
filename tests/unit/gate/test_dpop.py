"""DPoP at the gate, without a network: the `[dpop]` table and `require_dpop`, the URI a proof
must name, the challenges (RFC 9449 §7.1), and the pipeline's decisions for DPoP presentations
(proof checked against the request, `cnf.jkt` held to the key, `jti` claimed once)."""

from __future__ import annotations

import pytest

from authgate.gate import Gate, GateRequest, parse_gate_config
from authgate.gate.challenge import Schemes, www_authenticate
from authgate.gate.dpop import DPoPSettings, encoded_path, request_url
from authgate.oauth.errors import InvalidDPoPProof
from authgate.verifier import ConfigError, TokenRejected
from authgate.verifier.errors import Reason
from tests.support.dpop import DPoPClient
from tests.support.gate import AUDIENCE, FakeIssuer

URL = "https://api.example.test/orders/7"


def _gate_text(issuer: FakeIssuer, dpop: str = "[dpop]\n", routes: str = "") -> str:
    return f"""
{dpop}
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{issuer.server.url}/jwks"
audiences = ["{AUDIENCE}"]
[[routes]]
path = "/orders"
[[routes]]
path = "/pay"
require_dpop = true
[[routes]]
path = "/open"
public = true
{routes}"""


def test_settings_from_toml(test_issuer: FakeIssuer) -> None:
    config = parse_gate_config(_gate_text(test_issuer, dpop=""))
    assert config.dpop.enabled  # a route requires DPoP: on with the defaults
    assert config.uses_store
    plain = parse_gate_config(_gate_text(test_issuer, dpop="").replace("require_dpop = true", ""))
    assert plain.dpop == DPoPSettings(enabled=False)
    assert not plain.uses_store
    tuned = parse_gate_config(
        _gate_text(test_issuer, '[dpop]\nalgorithms = ["ES256"]\nmax_age = "2m"\nleeway = 0\n')
    )
    assert tuned.dpop.rules.algorithms == ("ES256",)
    assert (tuned.dpop.rules.max_age, tuned.dpop.rules.leeway) == (120, 0)
    assert tuned.dpop.algs == "ES256"


@pytest.mark.parametrize(
    ("dpop", "message"),
    [
        ('[dpop]\nalgorithms = ["HS256"]\n', r"dpop: DPoP algorithms must be asymmetric"),
        ('[dpop]\nalgorithms = ["none"]\n', r"asymmetric"),
        ("[dpop]\nmax_age = 0\n", r"dpop\.max_age"),
        ("[dpop]\nenabled = false\n", r"require_dpop = true but \[dpop\] enabled = false"),
        ("[dpop]\nnonce = true\n", r"dpop\.nonce: unknown"),
    ],
)
def test_bad_settings_name_their_key(test_issuer: FakeIssuer, dpop: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_gate_config(_gate_text(test_issuer, dpop))


def test_require_dpop_on_a_public_route_is_refused(test_issuer: FakeIssuer) -> None:
    text = _gate_text(test_issuer).replace("public = true", "public = true\nrequire_dpop = true")
    with pytest.raises(ConfigError, match="require_dpop"):
        parse_gate_config(text)


def test_request_urls() -> None:
    assert request_url("HTTPS", " api.example.test ", "/a") == "https://api.example.test/a"
    assert request_url("http", "h:8080", "a") == "http://h:8080/a"
    assert encoded_path("/é b/%", "utf-8") == "/%C3%A9%20b/%25"
    assert encoded_path("/\xe9", "latin-1") == "/%E9"


def test_challenges() -> None:
    error = InvalidDPoPProof("the DPoP proof is malformed")
    both = Schemes(bearer=True, dpop_algs="ES256 PS256")
    assert www_authenticate(None, realm="r", schemes=both) == (
        'Bearer realm="r", DPoP realm="r", algs="ES256 PS256"'
    )
    assert www_authenticate(error, realm="r", schemes=both) == (
        'Bearer realm="r", DPoP realm="r", error="invalid_dpop_proof", '
        'error_description="the DPoP proof is malformed", algs="ES256 PS256"'
    )
    bearer_error = TokenRejected(Reason.BOUND)
    assert www_authenticate(bearer_error, realm="r", schemes=both).startswith(
        'Bearer realm="r", error="invalid_token"'
    )
    used = Schemes(bearer=True, dpop_algs="ES256", dpop_used=True)
    assert www_authenticate(TokenRejected(Reason.EXPIRED), realm="r", schemes=used) == (
        'Bearer realm="r", DPoP realm="r", error="invalid_token", '
        'error_description="the access token has expired", algs="ES256"'
    )
    only = Schemes(bearer=False, dpop_algs="ES256")
    assert www_authenticate(TokenRejected(Reason.DPOP_REQUIRED), realm="r", schemes=only) == (
        'DPoP realm="r", error="invalid_token", error_description="this resource requires a '
        'DPoP-bound access token and its proof", algs="ES256"'
    )
    assert www_authenticate(None, realm="r") == 'Bearer realm="r"'  # DPoP off: as before


def _request(token: str, proof: str | None, path: str = "/orders/7", **kw: str) -> GateRequest:
    headers = [("authorization", f"DPoP {token}")]
    if proof is not None:
        headers.append(("dpop", proof))
    return GateRequest(kw.get("method", "GET"), path, headers, url=kw.get("url", URL))


async def test_the_pipeline_decides_dpop_presentations(test_issuer: FakeIssuer) -> None:
    gate = Gate(parse_gate_config(_gate_text(test_issuer)))
    await gate.start(background=False)
    try:
        key = DPoPClient()
        token = test_issuer.token(cnf={"jkt": key.jkt})
        proof = key.proof("GET", URL, access_token=token)
        first = await gate.check(_request(token, proof))
        assert first.allowed, first.error
        assert first.principal is not None
        assert first.principal.claims["cnf"] == {"jkt": key.jkt}
        # From the cache, decided without waiting: the jti is still claimed.
        replay = gate.check_nowait(_request(token, proof))
        assert not replay.allowed  # type: ignore[union-attr]
        assert isinstance(replay.error, InvalidDPoPProof)  # type: ignore[union-attr]
        fresh = gate.check_nowait(_request(token, key.proof("GET", URL, access_token=token)))
        assert fresh.allowed  # type: ignore[union-attr]
        refusals = {
            "no proof": _request(token, None),
            "other path": _request(token, key.proof("GET", URL + "/x", access_token=token)),
            "no url": GateRequest("GET", "/orders/7", [("authorization", f"DPoP {token}"),
                                  ("dpop", key.proof("GET", URL, access_token=token))]),
        }  # fmt: skip
        for name, request in refusals.items():
            decision = await gate.check(request)
            assert decision.answer is not None, name
            assert decision.answer.status == 401, name
            assert isinstance(decision.error, InvalidDPoPProof), name
        bearer = await gate.check(
            GateRequest("GET", "/pay/1", [("authorization", f"Bearer {test_issuer.token()}")])
        )
        assert isinstance(bearer.error, TokenRejected)
        assert bearer.error.reason is Reason.DPOP_REQUIRED
        assert bearer.answer is not None
        headers = dict(bearer.answer.headers)
        assert headers["www-authenticate"].startswith('DPoP realm="authgate", error=')
        paid = await gate.check(
            _request(token, key.proof("GET", "https://api.example.test/pay/1", access_token=token),
                     path="/pay/1", url="https://api.example.test/pay/1")
        )  # fmt: skip
        assert paid.allowed, paid.error
    finally:
        await gate.aclose()


async def test_dpop_off_treats_the_scheme_as_no_credential(test_issuer: FakeIssuer) -> None:
    text = _gate_text(test_issuer, dpop="").replace("require_dpop = true", "")
    gate = Gate(parse_gate_config(text))
    try:
        key = DPoPClient()
        token = test_issuer.token(cnf={"jkt": key.jkt})
        decision = await gate.check(_request(token, key.proof("GET", URL, access_token=token)))
        assert decision.answer is not None
        assert dict(decision.answer.headers)["www-authenticate"] == 'Bearer realm="authgate"'
    finally:
        await gate.aclose()


def test_resource_metadata_names_the_dpop_algorithms(test_issuer: FakeIssuer) -> None:
    text = 'resource = "https://api.example.test"\n' + _gate_text(
        test_issuer, '[dpop]\nalgorithms = ["ES256", "PS256"]\n'
    )
    document = parse_gate_config(text).resource.document()  # type: ignore[union-attr]
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "PS256"]
    assert "dpop_bound_access_tokens_required" not in document  # /orders takes Bearer too
    only = text.replace('path = "/orders"', 'path = "/orders"\nrequire_dpop = true')
    document = parse_gate_config(only).resource.document()  # type: ignore[union-attr]
    assert document["dpop_bound_access_tokens_required"] is True
    told = text + '\n[resource_metadata]\ndpop_signing_alg_values_supported = ["ES256"]\n'
    document = parse_gate_config(told).resource.document()  # type: ignore[union-attr]
    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    off = 'resource = "https://api.example.test"\n' + _gate_text(test_issuer, dpop="").replace(
        "require_dpop = true", ""
    )
    assert "dpop_signing_alg_values_supported" not in parse_gate_config(off).resource.document()  # type: ignore[union-attr]
