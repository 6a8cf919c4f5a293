"""Tokens shaped like those of hosted issuers we cannot run here (Entra ID v1 and v2, Okta, Auth0,
Google, Keycloak): their headers, issuer strings, audiences and claims as those services document
them, signed with local keys served from a loopback JWKS, and verified by one gate configured with
the TOML that docs/gate.md ("Tested issuers") recommends for each. What is tested: the gate accepts
each shape under that configuration, the principal has the subject, client id, scopes and roles the
application expects, and route rules can use them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from authgate.gate import Decision, Gate, GateRequest, load_gate_config
from authgate.jose import JWK, jws
from tests.support.interop import JsonSite
from tests.support.tokens import b64url

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
NOW = int(time.time())
VALID = {"iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600}


@dataclass(frozen=True)
class Issuer:
    """A hosted issuer: its `iss`, and the [[issuers]] lines docs/gate.md gives for it."""

    name: str
    issuer: str
    config: str  # TOML lines besides issuer and jwks_uri
    jwks_style: str  # how the service publishes its keys (see `published_jwks`)
    key: JWK = field(default_factory=lambda: JWK.generate("RSA", use="sig"))


def _certificate(key: JWK) -> bytes:
    """A self-signed certificate for `key` (DER), as the x5c members of these JWKS hold."""
    private = serialization.load_pem_private_key(key.to_pem(private=True), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer signing key")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    return builder.sign(private, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def published_jwks(issuer: Issuer) -> dict[str, Any]:
    """The issuer's JWKS with the members its service publishes beside the key itself.

    entra: no `alg`, `x5t` and `x5c`, and the non-standard `issuer` and `cloud_instance_name`;
    keycloak: `alg`, `x5c`, `x5t`, `x5t#S256`, and an encryption key (`use: enc`, RSA-OAEP) in the
    same set; auth0: `alg`, `x5c`, `x5t`; plain: `alg` and `use` only (Okta, Google).
    """
    public = issuer.key.public().to_dict()
    der = _certificate(issuer.key)
    x5c = {"x5c": [base64.b64encode(der).decode()], "x5t": b64url(hashlib.sha1(der).digest())}  # noqa: S324 - x5t is SHA-1 by definition (RFC 7517 §4.8)
    if issuer.jwks_style == "entra":
        member = {
            **public,
            **x5c,
            "issuer": issuer.issuer,
            "cloud_instance_name": "microsoftonline.com",
        }
        return {"keys": [member]}
    if issuer.jwks_style == "keycloak":
        encryption = JWK.generate("RSA").public().to_dict()
        sha256 = {"x5t#S256": b64url(hashlib.sha256(der).digest())}
        return {
            "keys": [
                {**encryption, "kid": f"enc-{issuer.key.kid}", "use": "enc", "alg": "RSA-OAEP"},
                {**public, **x5c, **sha256, "alg": "RS256"},
            ]
        }
    if issuer.jwks_style == "auth0":
        return {"keys": [{**public, **x5c, "alg": "RS256"}]}
    return {"keys": [{**public, "alg": "RS256"}]}


ISSUERS = {
    i.name: i
    for i in (
        Issuer("entra-v2", f"https://login.microsoftonline.com/{TENANT}/v2.0",
               'audiences = ["api://orders-api"]', "entra"),
        Issuer("entra-v1", f"https://sts.windows.net/{TENANT}/",
               'audiences = ["api://orders-api"]', "entra"),
        Issuer("okta", "https://dev-133337.okta.com/oauth2/default",
               'audiences = ["api://default"]\nrole_claims = ["groups"]', "plain"),
        Issuer("auth0", "https://shop.eu.auth0.com/",
               'audiences = ["https://api.shop.example"]\n'
               'scope_claims = ["scope", "permissions"]\n'
               'role_claims = ["https://shop.example/roles"]', "auth0"),
        Issuer("google", "https://accounts.google.com",
               'audiences = ["https://orders-abc123-ew.a.run.app"]', "plain"),
        Issuer("google-bare", "accounts.google.com",
               'audiences = ["https://orders-abc123-ew.a.run.app"]', "plain"),
        Issuer("keycloak", "https://sso.shop.example/realms/shop",
               'audiences = ["orders-api"]\n'
               'role_claims = [["realm_access", "roles"], '
               '["resource_access", "orders-api", "roles"]]', "keycloak"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """One kind of token from an issuer, the route requirement that uses it, and the result."""

    name: str
    issuer: Issuer
    header: dict[str, Any]  # beyond alg and kid
    claims: dict[str, Any]
    route: str  # TOML lines of the route's requirement
    expected: dict[str, Any]
    alg: str = "RS256"


SHAPES = [
    Shape(
        "entra-v2-app",  # client credentials: app roles, no scp
        ISSUERS["entra-v2"],
        {"typ": "JWT", "x5t": "nOo3ZDrODXEK1jKWhXslHR_KXEg"},
        {
            "aud": "api://orders-api", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "azpacr": "1", "oid": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11",
            "sub": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11", "tid": TENANT,
            "roles": ["Orders.Read.All"], "ver": "2.0", "uti": "AbC", "rh": "0.AX",
        },
        'roles = ["Orders.Read.All"]',
        {"subject": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11", "scopes": [],
         "client_id": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "roles": ["Orders.Read.All"]},
    ),
    Shape(
        "entra-v2-user",  # delegated: scp is a space-separated string
        ISSUERS["entra-v2"],
        {"typ": "JWT"},
        {
            "aud": "api://orders-api", "azp": "a0f1c9d2-0000-4000-8000-000000000001",
            "scp": "Orders.Read User.Read", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": TENANT, "ver": "2.0",
            "name": "Megan Bowen", "preferred_username": "meganb@contoso.com",
        },
        'scopes = ["Orders.Read"]',
        {"subject": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "roles": [],
         "client_id": "a0f1c9d2-0000-4000-8000-000000000001",
         "scopes": ["Orders.Read", "User.Read"]},
    ),
    Shape(
        "entra-v1",  # v1 endpoint: sts.windows.net issuer, appid
        ISSUERS["entra-v1"],
        {"typ": "JWT", "x5t": "nOo3ZDrODXEK1jKWhXslHR_KXEg"},
        {
            "aud": "api://orders-api", "appid": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
            "appidacr": "1", "idp": f"https://sts.windows.net/{TENANT}/",
            "oid": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11",
            "sub": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11", "roles": ["Orders.Read.All"],
            "tid": TENANT, "ver": "1.0",
        },
        'roles = ["Orders.Read.All"]',
        {"subject": "d3a7e2b0-6f51-4a4e-9d0e-0b8c2a1f5e11", "scopes": [],
         "client_id": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "roles": ["Orders.Read.All"]},
    ),
    Shape(
        "okta",  # custom authorization server; no typ header; scp is an array; cid
        ISSUERS["okta"],
        {},
        {
            "ver": 1, "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
            "aud": "api://default", "cid": "0oa1h6n2vfwCsyD5S5d7", "uid": "00u1h6n2d0eEiZ0x5d7",
            "scp": ["orders:read", "openid"], "sub": "user@example.com",
            "groups": ["Everyone", "Order Admins"],
        },
        'scopes = ["orders:read"]\nroles = ["Order Admins"]',
        {"subject": "user@example.com", "client_id": "0oa1h6n2vfwCsyD5S5d7",
         "scopes": ["openid", "orders:read"], "roles": ["Everyone", "Order Admins"]},
    ),
    Shape(
        "auth0",  # issuer ends with '/'; RBAC permissions; namespaced roles; aud array
        ISSUERS["auth0"],
        {"typ": "JWT"},
        {
            "sub": "auth0|64b7f0c2e1d3a4b5c6d7e8f9",
            "aud": ["https://api.shop.example", "https://shop.eu.auth0.com/userinfo"],
            "azp": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG", "scope": "openid profile read:orders",
            "permissions": ["read:orders", "write:orders"],
            "https://shop.example/roles": ["support"],
        },
        'scopes = ["write:orders"]\nroles = ["support"]',
        {"subject": "auth0|64b7f0c2e1d3a4b5c6d7e8f9",
         "client_id": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG",
         "scopes": ["openid", "profile", "read:orders", "write:orders"], "roles": ["support"]},
    ),
    Shape(
        "auth0-m2m",  # client credentials: sub is "<client>@clients", gty
        ISSUERS["auth0"],
        {"typ": "JWT"},
        {
            "sub": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG@clients",
            "aud": "https://api.shop.example", "azp": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG",
            "scope": "read:orders", "gty": "client-credentials",
            "permissions": ["read:orders"],
        },
        'scopes = ["read:orders"]',
        {"subject": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG@clients", "roles": [],
         "client_id": "kT8rW1hJm3Yc0QfV7sXn2LpB9dZa4EuG", "scopes": ["read:orders"]},
    ),
    Shape(
        "google",  # a Google-signed ID token as service-to-service bearer (Cloud Run, IAP)
        ISSUERS["google"],
        {"typ": "JWT"},
        {
            "aud": "https://orders-abc123-ew.a.run.app", "azp": "112233445566778899000",
            "email": "reports@shop-prod.iam.gserviceaccount.com", "email_verified": True,
            "sub": "112233445566778899000",
        },
        'claims = [{ claim = "email", equals = "reports@shop-prod.iam.gserviceaccount.com" },\n'
        '          { claim = "email_verified", equals = true }]',
        {"subject": "112233445566778899000", "client_id": "112233445566778899000",
         "scopes": [], "roles": []},
    ),
    Shape(
        "google-bare",  # Google also issues `iss` without the scheme
        ISSUERS["google-bare"],
        {"typ": "JWT"},
        {
            "aud": "https://orders-abc123-ew.a.run.app", "azp": "112233445566778899000",
            "email": "reports@shop-prod.iam.gserviceaccount.com", "email_verified": True,
            "sub": "112233445566778899000",
        },
        'claims = [{ claim = "email", equals = "reports@shop-prod.iam.gserviceaccount.com" }]',
        {"subject": "112233445566778899000", "client_id": "112233445566778899000",
         "scopes": [], "roles": []},
    ),
    Shape(
        "keycloak",  # realm and client roles; aud array with "account"; typ claim "Bearer"
        ISSUERS["keycloak"],
        {"typ": "JWT"},
        {
            "jti": "5f7f0e52-1c8a-4f3b-9d0e-2a9b3c4d5e6f", "aud": ["orders-api", "account"],
            "sub": "0b8e6f1c-3d2a-4e5f-8a9b-1c2d3e4f5a6b", "typ": "Bearer",
            "azp": "reports-job", "acr": "1", "scope": "profile email orders:read",
            "realm_access": {"roles": ["default-roles-shop", "offline_access"]},
            "resource_access": {"orders-api": {"roles": ["orders-admin"]},
                                "account": {"roles": ["manage-account"]}},
            "clientHost": "10.1.2.3", "preferred_username": "service-account-reports-job",
            "client_id": "reports-job",
        },
        'scopes = ["orders:read"]\nroles = ["orders-admin"]',
        {"subject": "0b8e6f1c-3d2a-4e5f-8a9b-1c2d3e4f5a6b", "client_id": "reports-job",
         "scopes": ["email", "orders:read", "profile"],
         "roles": ["default-roles-shop", "offline_access", "orders-admin"]},
    ),
]  # fmt: skip


def sign(shape: Shape, **changes: Any) -> str:
    """The token as the issuer would send it (the header exactly as given: no added `typ`)."""
    issuer = shape.issuer
    claims = {"iss": issuer.issuer, **VALID, **shape.claims, **changes}
    header = {"alg": shape.alg, "kid": issuer.key.kid, **shape.header}
    return jws.sign(json.dumps(claims).encode(), issuer.key, shape.alg, header)


@pytest.fixture(scope="module")
def gate_toml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One gate configuration trusting every issuer, keys on a loopback site."""
    site = JsonSite()
    toml = 'realm = "shapes"\n'
    for issuer in ISSUERS.values():
        site.documents[f"/{issuer.name}/keys"] = published_jwks(issuer)
        toml += f"""
[[issuers]]
issuer = "{issuer.issuer}"
jwks_uri = "{site.url}/{issuer.name}/keys"
{issuer.config}
"""
    for shape in SHAPES:
        toml += f'\n[[routes]]\npath = "/{shape.name}"\n{shape.route}\n'
    path = tmp_path_factory.mktemp("shapes") / "gate.toml"
    path.write_text(toml)
    yield path
    site.close()


@pytest.fixture
async def gate(gate_toml: Path) -> AsyncIterator[Gate]:
    gate = Gate(load_gate_config(str(gate_toml)))
    await gate.start(background=False)
    assert gate.ready
    yield gate
    await gate.aclose()


async def check(gate: Gate, path: str, token: str) -> Decision:
    return await gate.check(GateRequest("GET", path, [("authorization", f"Bearer {token}")]))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_issuer_shape_gives_the_expected_principal(gate: Gate, shape: Shape) -> None:
    decision = await check(gate, f"/{shape.name}", sign(shape))
    assert decision.allowed, decision.error and decision.error.debug
    principal = decision.principal
    assert principal is not None
    assert principal.issuer == shape.issuer.issuer
    found = {
        "subject": principal.subject,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "roles": sorted(principal.roles),
    }
    assert found == shape.expected


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_issuer_shape_is_refused_for_another_audience_or_key(
    gate: Gate, shape: Shape
) -> None:
    issuer = shape.issuer
    forger = JWK.generate("RSA", kid=issuer.key.kid)  # the right kid, the wrong key
    other_key = jws.sign(
        json.dumps({"iss": issuer.issuer, **VALID, **shape.claims}).encode(),
        forger,
        "RS256",
        {"alg": "RS256", "kid": issuer.key.kid, **shape.header},
    )
    for token in (sign(shape, aud="https://someone-else.example"), other_key):
        decision = await check(gate, f"/{shape.name}", token)
        assert decision.answer is not None
        assert decision.answer.status == 401


async def test_route_requirements_read_the_mapped_claims(gate: Gate) -> None:
    by_name = {s.name: s for s in SHAPES}
    refused = [
        await check(gate, "/okta", sign(by_name["okta"], groups=["Everyone"])),
        await check(gate, "/auth0", sign(by_name["auth0"], permissions=["read:orders"])),
        await check(gate, "/google", sign(by_name["google"], email="intruder@evil.example")),
        await check(gate, "/google", sign(by_name["google"], email_verified=False)),
        await check(gate, "/keycloak", sign(by_name["keycloak"], resource_access={"account": {}})),
        await check(gate, "/entra-v2-app", sign(by_name["entra-v2-app"], roles=["Other"])),
    ]
    assert [d.answer.status if d.answer else 200 for d in refused] == [403] * 6
