"""Fixtures for the gate's interoperability tests (helpers live in `tests.support.interop`).

Issuer processes are started once per module (`oidc_provider`, `authgate_server`); tests that must
disturb an issuer (key rotation) start their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.interop import SHELLS, AuthgateServer, OffsetClock, OidcProviderIssuer


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProviderIssuer]:
    issuer = OidcProviderIssuer(tmp_path_factory.mktemp("oidc-provider"))
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def authgate_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("authgate-serve")


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture(params=sorted(SHELLS))
def shell(request: pytest.FixtureRequest) -> str:
    """Each test runs once behind the ASGI middleware (FastAPI) and once behind WSGI (Flask)."""
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def authgate_server(authgate_directory: Path) -> Iterator[AuthgateServer]:
    server = AuthgateServer(authgate_directory)
    yield server
    server.close()
