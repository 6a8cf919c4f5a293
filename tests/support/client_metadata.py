"""Client ID metadata documents in tests: the in-process server set up for the user flows
(`e2e.Flow`) that trusts a test CA, and an https origin on 127.0.0.1 serving the documents.

```python
async with metadata_setup(database_url, clock, ca) as setup:
    setup.serve(setup.document())             # a public client at setup.url()
    await setup.flow.agent().code_for(client_id=setup.url(), ...)
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from authgate.server.config import ClientMetadataSettings, FetchSettings
from tests.support.e2e import Flow, set_up_flow
from tests.support.server_harness import FakeClock, make_config, running
from tests.support.tls import HttpsOrigin, TestCA, json_route

__all__ = ["CALLBACK", "MetadataSetup", "metadata_setup"]

CALLBACK = "http://127.0.0.1/callback"


@dataclass
class MetadataSetup:
    """The server (`flow`) and the origin of the documents."""

    flow: Flow
    origin: HttpsOrigin

    def url(self, path: str = "/client.json") -> str:
        """The https URL of `path` on the origin: a client id."""
        return f"https://127.0.0.1:{self.origin.port}{path}"

    def document(self, path: str = "/client.json", **fields: Any) -> dict[str, Any]:
        """A public client's document for `path` (loopback redirect, code and refresh grants,
        scope read); `fields` replace or add members (None removes one)."""
        document: dict[str, Any] = {
            "client_id": self.url(path),
            "client_name": "Notes <CLI>",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "read",
        }
        document.update(fields)
        return {k: v for k, v in document.items() if v is not None}

    def serve(
        self, document: dict[str, Any], path: str = "/client.json", *, max_age: int | None = None
    ) -> str:
        """Serve `document` at `path` (with `Cache-Control: max-age`); its URL."""
        headers = {"Cache-Control": f"max-age={max_age}"} if max_age is not None else None
        self.origin.routes[path] = json_route(document, headers=headers)
        return self.url(path)


@asynccontextmanager
async def metadata_setup(
    database_url: str,
    clock: FakeClock,
    ca: TestCA,
    *,
    client_metadata: ClientMetadataSettings | None = None,
    allow_loopback: bool = True,
    host_rate: str = "60/minute",
) -> AsyncIterator[MetadataSetup]:
    """The server accepting URL client ids (`policy = "any"` unless told), fetching over TLS
    that chains to `ca`; `allow_loopback` is the development switch that lets it reach the
    origin on 127.0.0.1; `host_rate` is the per-host fetch budget."""
    settings = client_metadata or ClientMetadataSettings(policy="any")
    config = make_config(
        database_url,
        fetch=FetchSettings(allow_loopback=allow_loopback, ca_file=ca.ca_file, host_rate=host_rate),
        client_metadata=settings,
    )
    with HttpsOrigin(ca, ["127.0.0.1"]) as origin:
        async with running(replace(config), clock) as harness:
            flow = await set_up_flow(harness)
            try:
                yield MetadataSetup(flow, origin)
            finally:
                for agent in flow.agents:
                    await agent.aclose()
