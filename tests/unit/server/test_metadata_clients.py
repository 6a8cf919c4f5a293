"""The rules of `metadata_clients` that need no network: which URLs can be client ids
(the draft §3), how long a document is reused (§5.2 within the operator's bounds), the policy."""

from __future__ import annotations

import pytest

from authgate.config import ConfigError
from authgate.server.config import ClientMetadataSettings
from authgate.server.metadata_clients import (
    cache_lifetime,
    client_id_url_problem,
    is_client_id_url,
)

SETTINGS = ClientMetadataSettings(policy="any", cache_min=60, cache_max=3600)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://app.example/client.json", None),
        ("https://app.example:8443/oauth/client", None),
        ("https://app.example", "the client_id URL must have a path"),
        ("https://app.example/", "the client_id URL must have a path"),
        ("https://app.example/a/./b", "the client_id URL must not have . or .. path segments"),
        ("https://app.example/a/../b", "the client_id URL must not have . or .. path segments"),
        ("https://app.example/c?x=1", "the client_id URL must not have a query"),
        ("https://app.example/c#f", "the client_id URL must not contain a fragment"),
        ("https://u@app.example/c", "the client_id URL must not contain a user name or password"),
        ("http://app.example/c", "the client_id URL must use https"),
        ("https://app.example/" + "a" * 110, "the client_id URL is longer than 128 characters"),
    ],
)
def test_client_id_urls(url: str, problem: str | None) -> None:
    assert client_id_url_problem(url) == problem


def test_http_is_never_a_client_id_even_in_development() -> None:
    assert client_id_url_problem("http://127.0.0.1/c", allow_loopback=True) == (
        "the client_id URL must use https"
    )
    assert not is_client_id_url("http://127.0.0.1/c")
    assert is_client_id_url("https://app.example/c")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 60),  # no header: the floor
        ("max-age=600", 600),
        ("public, max-age=600", 600),
        ('max-age="600", must-revalidate', 600),
        ("max-age=5", 60),  # below the floor
        ("max-age=999999", 3600),  # above the ceiling
        ("no-store", 60),
        ("no-cache, max-age=600", 60),
        ("s-maxage=600", 60),  # shared caches only
        ("max-age=abc", 60),
    ],
)
def test_cache_lifetime(header: str | None, seconds: int) -> None:
    assert cache_lifetime(header, SETTINGS) == seconds


def test_policy_settings() -> None:
    assert not ClientMetadataSettings().enabled  # off by default
    allow = ClientMetadataSettings(policy="allowlist", allowed_hosts=("apps.example",))
    assert allow.allows_host("apps.example")
    assert allow.allows_host("APPS.example")
    assert not allow.allows_host("evil.example")
    assert ClientMetadataSettings(policy="any").allows_host("anything.example")
    with pytest.raises(ConfigError, match="allowed_hosts"):
        ClientMetadataSettings(policy="allowlist")
    with pytest.raises(ConfigError, match="policy"):
        ClientMetadataSettings(policy="open")
    with pytest.raises(ConfigError, match="cache_min"):
        ClientMetadataSettings(cache_min=600, cache_max=60)
