"""Fixtures for the gate tests (helpers live in `support.gate`), imported by the conftest.py of each
folder that needs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gate import FakeIssuer, IssuerServer, ManualClock


@pytest.fixture
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer()
    yield server
    server.close()


@pytest.fixture
def test_issuer(issuer_server: IssuerServer) -> FakeIssuer:
    issuer = FakeIssuer(issuer_server, issuer_server.url)
    issuer.new_key()
    issuer.publish()
    issuer.publish_metadata()
    return issuer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
