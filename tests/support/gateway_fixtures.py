"""Fixtures for the gateway tests: one issuer, one upstream and one standard gateway per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway, Issuer, Upstream, gateway_toml


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="session")
def gateway(
    issuer: Issuer, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The standard gateway: short timeouts, an identity token, no trusted proxies."""
    extra = """
access_log = true
max_token_bytes = 4096
[upstream]
read = 1.0
connect = 1.0
[limits]
max_header_bytes = 8192
max_headers = 50
max_request_line = 2048
header_timeout = 1.0
[identity_token]
issuer = "https://gateway.test"
"""
    gw = Gateway(gateway_toml(issuer, upstream, extra), tmp_path_factory.mktemp("gw"))
    yield gw
    gw.stop()
