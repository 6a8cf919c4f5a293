"""A FAPI 2.0 client (`profile = fapi2`) on the in-process server: private_key_jwt with an ES256
key, a DPoP key, an ES256 API, and the requests it makes (PAR, /token) - each of which a test can
break one rule of."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt

from authgate.jose import JWK
from authgate.server.models import Client
from tests.support.dpop import DPoPClient
from tests.support.e2e import WEB_REDIRECT, Flow, pkce_pair
from tests.support.server_harness import ISSUER

__all__ = ["FAPI_API", "FapiClient", "assertion_form", "create_fapi_client"]

FAPI_API = "https://accounts.example.test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class FapiClient:
    flow: Flow
    client: Client
    key: JWK
    dpop: DPoPClient

    def form(self, aud: Any = ISSUER, **params: str) -> dict[str, str]:
        """`params` with a fresh private_key_jwt assertion (`aud`: the issuer, §5.3.2.1)."""
        return assertion_form(self.client, self.key, self.flow.harness.clock(), params, aud=aud)

    def request(self, **params: str) -> dict[str, str]:
        """An authorization request with PKCE S256 (the verifier under `_verifier`)."""
        verifier, challenge = pkce_pair()
        return {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": WEB_REDIRECT,
            "scope": "openid accounts",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "_verifier": verifier,
            **params,
        }

    async def push(self, request: dict[str, str]) -> httpx.Response:
        sent = {k: v for k, v in request.items() if not k.startswith("_")}
        return await self.flow.http.post("/par", data=self.form(**sent))

    async def token(self, *, proof: bool = True, **form: str) -> httpx.Response:
        headers = {"DPoP": self.dpop.proof("POST", ISSUER + "/token")} if proof else {}
        return await self.flow.http.post("/token", data=self.form(**form), headers=headers)

    async def code(self, request: dict[str, str]) -> dict[str, str]:
        """PAR, then the browser with only client_id and request_uri: the redirect's params."""
        pushed = await self.push(request)
        assert pushed.status_code == 201, pushed.text
        uri = pushed.json()["request_uri"]
        return await self.flow.agent().code_for(client_id=self.client.client_id, request_uri=uri)


def assertion_form(
    client: Client,
    key: JWK,
    now: float,
    params: dict[str, str],
    *,
    aud: Any = ISSUER,
    alg: str | None = None,
) -> dict[str, str]:
    """`params` with a private_key_jwt assertion of `client` signed with `key`."""
    claims: dict[str, Any] = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": aud,
        "exp": int(now) + 60,
        "iat": int(now),
        "jti": str(uuid.uuid4()),
    }
    signer = pyjwt.PyJWK(key.to_dict(private=True))
    token = pyjwt.encode(claims, signer.key, algorithm=alg or key.alg, headers={"kid": key.kid})
    return {**params, "client_assertion_type": ASSERTION_TYPE, "client_assertion": token}


async def create_fapi_client(flow: Flow, **changes: Any) -> FapiClient:
    """A `fapi2` client of an ES256 API (scope `accounts`); `changes` override its settings."""
    harness = flow.harness
    if await harness.server.storage.get_api(FAPI_API) is None:
        await harness.create_api(FAPI_API, scopes=("accounts",), signing_alg="ES256")
    key = JWK.generate("EC", alg="ES256")
    settings: dict[str, Any] = {
        "name": "FAPI app",
        "grant_types": ("authorization_code", "refresh_token"),
        "scopes": ("accounts",),
        "auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public().to_dict()]},
        "redirect_uris": (WEB_REDIRECT,),
        "id_token_alg": "ES256",
        "profile": "fapi2",
        "signing_algorithms": harness.config.keys.algorithms,
        **changes,
    }
    client, _ = await harness.create_client(**settings)
    return FapiClient(flow, client, key, DPoPClient(clock=harness.clock))
