"""DPoP in every middleware shell (RFC 9449 §7): the ASGI middleware, FastAPI dependencies (with
the middleware and with `use_gate`), the WSGI middleware and Flask decorators accept a DPoP-bound
token with its proof for the URI the application was sent, refuse a replayed proof, and give one
answer, byte for byte, for a bad proof."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from authgate.gate import Gate, parse_gate_config
from tests.integration.gate.test_in_apps import (
    ROUTES,
    asgi_client,
    fastapi_app,
    flask_app,
    gate_text,
)
from tests.support.dpop import DPoPClient
from tests.support.gate import FakeIssuer

DPOP = '\n[dpop]\nalgorithms = ["ES256"]\n'


@pytest.fixture
async def make_gate(test_issuer: FakeIssuer) -> AsyncIterator[Callable[..., Gate]]:
    made: list[Gate] = []

    def make(**kwargs: Any) -> Gate:
        text = gate_text(test_issuer, **kwargs).replace("[[issuers]]", DPOP + "[[issuers]]", 1)
        gate = Gate(parse_gate_config(text))
        made.append(gate)
        return gate

    yield make
    for gate in made:
        await gate.aclose()


def _headers(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


async def test_asgi_shells_accept_a_bound_token_with_its_proof_once(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    client = DPoPClient()
    token = test_issuer.token(cnf={"jkt": client.jkt})
    shells = {
        "asgi middleware": (fastapi_app(make_gate(routes=ROUTES)), "/orders/7"),
        "fastapi dependency": (fastapi_app(make_gate(routes=ROUTES)), "/open/orders"),
        "dependencies mode": (fastapi_app(make_gate(mode="dependencies")), "/me"),
        "use_gate": (fastapi_app(make_gate(routes=ROUTES), middleware=False), "/orders/7"),
    }
    for name, (app, path) in shells.items():
        proof = client.proof("GET", f"http://testserver{path}", access_token=token)
        async with await asgi_client(app) as http:
            first = await http.get(path + "?x=1", headers=_headers(token, proof))
            again = await http.get(path, headers=_headers(token, proof))
            bearer = await http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert first.status_code == 200, (name, first.text)
        assert first.json().get("subject", "user-1") == "user-1"
        assert again.status_code == 401, name
        assert again.json()["error"] == "invalid_dpop_proof"
        assert bearer.status_code == 401, name
        assert bearer.json()["error"] == "invalid_token"


async def test_wsgi_shells_accept_a_bound_token_with_its_proof_once(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    client = DPoPClient()
    token = test_issuer.token(cnf={"jkt": client.jkt})
    flask, extension = flask_app(make_gate(routes=ROUTES))
    http = flask.test_client()
    try:
        for path in ("/orders/7", "/open/orders"):  # the middleware, then the decorator
            proof = client.proof("GET", f"http://localhost{path}", access_token=token)
            first = http.get(path, headers=_headers(token, proof))
            assert first.status_code == 200, (path, first.get_data())
            again = http.get(path, headers=_headers(token, proof))
            assert again.status_code == 401
            assert again.get_json()["error"] == "invalid_dpop_proof"
            assert (
                'DPoP realm="shop", error="invalid_dpop_proof"' in again.headers["WWW-Authenticate"]
            )
    finally:
        assert extension.sync is not None
        extension.sync.close()


async def test_a_bad_proof_is_the_same_answer_in_every_shell(
    make_gate: Callable[..., Gate], test_issuer: FakeIssuer
) -> None:
    client = DPoPClient()
    token = test_issuer.token(cnf={"jkt": client.jkt})
    answers = {}
    for name, (app, path) in {
        "asgi middleware": (fastapi_app(make_gate(routes=ROUTES)), "/orders/7"),
        "fastapi dependency": (fastapi_app(make_gate(routes=ROUTES)), "/open/orders"),
    }.items():
        proof = client.proof("POST", f"http://testserver{path}", access_token=token)
        async with await asgi_client(app) as http:
            r = await http.get(path, headers=_headers(token, proof))
        answers[name] = (r.status_code, r.headers["www-authenticate"], r.content)
    flask, extension = flask_app(make_gate(routes=ROUTES))
    try:
        for name, path in (("wsgi middleware", "/orders/7"), ("flask decorator", "/open/orders")):
            proof = client.proof("POST", f"http://localhost{path}", access_token=token)
            f = flask.test_client().get(path, headers=_headers(token, proof))
            answers[name] = (f.status_code, f.headers["WWW-Authenticate"], f.get_data())
    finally:
        assert extension.sync is not None
        extension.sync.close()
    reference = answers["asgi middleware"]
    assert reference[0] == 401
    assert reference[1].startswith('Bearer realm="shop"')
    assert 'DPoP realm="shop", error="invalid_dpop_proof"' in reference[1]
    assert reference[1].endswith('algs="ES256"')
    for name, answer in answers.items():
        assert answer == reference, name
