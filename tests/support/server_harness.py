"""Helpers shared by the server tests: a movable clock, the test configuration, and a running
in-process server (`running`) with shortcuts to register APIs and clients (`Harness`)."""

from __future__ import annotations

import base64
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.server import admin
from authgate.server.app import create_app
from authgate.server.auth_server import AuthServer
from authgate.server.config import Config, HttpSettings, KeyPolicy, TokenPolicy
from authgate.server.models import Api, Client

ISSUER = "https://auth.example.test"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32))


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(start if start is not None else time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_config(database_url: str, **changes: Any) -> Config:
    """A test configuration: two key algorithms (fast key generation), no registry cache."""
    base = Config(
        issuer=ISSUER,
        database_url=database_url,
        secret_key=SECRET_KEY,
        keys=KeyPolicy(algorithms=("RS256", "ES256")),
        tokens=TokenPolicy(),
        http=HttpSettings(cache_ttl=0),
    )
    return replace(base, **changes)


@dataclass
class Harness:
    """A running in-process server and helpers to set it up."""

    config: Config
    server: AuthServer
    http: httpx.AsyncClient
    clock: FakeClock
    secrets: dict[str, str] = field(default_factory=dict)

    async def create_api(self, identifier: str = "https://api.example.test", **kw: Any) -> Api:
        kw.setdefault("scopes", ("read", "write"))
        return await admin.create_api(
            self.server.storage, self.config, identifier=identifier, now=int(self.clock()), **kw
        )

    async def create_client(self, **kw: Any) -> tuple[Client, str | None]:
        kw.setdefault("name", "test client")
        kw.setdefault("grant_types", ("client_credentials",))
        client, secret = await admin.create_client(
            self.server.storage, self.server.secret, now=int(self.clock()), **kw
        )
        return client, secret

    async def token(self, client: Client, secret: str | None, **form: str) -> httpx.Response:
        """POST /token with client_secret_basic."""
        form.setdefault("grant_type", "client_credentials")
        auth = (client.client_id, secret) if secret is not None else None
        return await self.http.post("/token", data=form, auth=auth)


class running:  # noqa: N801 - used like a function: `async with running(config, clock)`
    """Start the app (lifespan included) and hand out a `Harness`."""

    def __init__(self, config: Config, clock: FakeClock) -> None:
        self.config = config
        self.clock = clock
        self.app = create_app(config, clock=clock, background=False)
        self._lifespan: Any = None
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Harness:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=ISSUER)
        return Harness(self.config, self.app.state.authgate, self._http, self.clock)

    async def __aexit__(self, *exc: object) -> None:
        assert self._http is not None
        await self._http.aclose()
        await self._lifespan.__aexit__(None, None, None)


def project_root() -> Path:
    """The checkout's root."""
    return Path(__file__).resolve().parents[2]


def expect_error(response: httpx.Response, status: int, error: str) -> None:
    """Assert an OAuth error response (RFC 6749 §5.2) with this status and code."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"server at {url} did not start: {log.read_text()}")
