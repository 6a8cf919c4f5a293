"""The set-up of the token exchange tests (RFC 8693): on top of the user flows (`e2e.Flow`: the
Orders API and the web client), a second API and a service that is the Orders API's resource
server and may exchange tokens into the second API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from authgate.server.models import Client
from tests.support.e2e import API, Flow

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ID = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
REFRESH = "urn:ietf:params:oauth:token-type:refresh_token"
BILLING = "https://billing.example.test"
OPAQUE = "https://opaque.example.test"


@dataclass
class Exchange:
    flow: Flow
    service: Client  # resource server of the Orders API; may exchange into Billing
    service_secret: str

    async def new_service(self, name: str, **kw: Any) -> tuple[Client, str]:
        kw.setdefault("grant_types", (GRANT, "client_credentials"))
        kw.setdefault("scopes", (f"{BILLING}#read", f"{BILLING}#write"))
        kw.setdefault("introspect", (API,))
        client, secret = await self.flow.harness.create_client(name=name, **kw)
        assert secret is not None
        return client, secret

    async def exchange(
        self, client: Client | None = None, secret: str | None = None, **form: str
    ) -> httpx.Response:
        form.setdefault("grant_type", GRANT)
        client = client or self.service
        return await self.flow.harness.http.post(
            "/token", data=form, auth=(client.client_id, secret or self.service_secret)
        )

    async def actor_token(self, client: Client | None = None, secret: str | None = None) -> str:
        """A client credentials token of `client` (the service by default), its actor token."""
        client = client or self.service
        response = await self.flow.harness.token(
            client, secret or self.service_secret, resource=BILLING
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def user_token(self, scope: str = "openid read") -> dict[str, Any]:
        """The web client's tokens for Alice (Orders API)."""
        return await self.flow.web_tokens(scope=scope)


async def set_up_exchange(flow: Flow, **service: Any) -> Exchange:
    harness = flow.harness
    await harness.create_api(BILLING, scopes=("read", "write"), name="Billing")
    await harness.create_api(OPAQUE, scopes=("read",), token_format="opaque")
    exchange = Exchange(flow, flow.web, "")
    exchange.service, exchange.service_secret = await exchange.new_service(
        "orders service",
        scopes=(f"{BILLING}#read", f"{BILLING}#write", f"{OPAQUE}#read"),
        **service,
    )
    return exchange
