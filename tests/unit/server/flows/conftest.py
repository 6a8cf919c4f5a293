"""Fixtures for the user-facing flow modules (`authgate.server.flows`)."""

from __future__ import annotations

import pytest

from tests.support.flows import FakeClient


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def public_client() -> FakeClient:
    return FakeClient(
        client_id="native-app",
        redirect_uris=("http://127.0.0.1/callback", "com.example.app:/oauth2redirect"),
        is_public=True,
    )
