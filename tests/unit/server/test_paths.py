"""Where an issuer's endpoints and metadata are served (RFC 8414 §3.1, OpenID Connect Discovery
1.0 §4, the MCP authorization specification's discovery order)."""

from __future__ import annotations

from authgate.server.observability.metrics import endpoint_names
from authgate.server.paths import check_issuer_path, issuer_path, metadata_paths


def test_metadata_paths_in_the_order_mcp_clients_try_them() -> None:
    assert metadata_paths("https://auth.example.com") == (
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    )
    assert metadata_paths("https://auth.example.com/tenant1") == (
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    )
    assert metadata_paths("https://auth.example.com/a/b")[0] == (
        "/.well-known/oauth-authorization-server/a/b"
    )


def test_issuer_path() -> None:
    assert issuer_path("https://auth.example.com") == ""
    assert issuer_path("https://auth.example.com:8443/t1/eu") == "/t1/eu"
    assert check_issuer_path("https://auth.example.com/t-1/eu_2.x~") is None
    for bad in ("/a%20b", "/{x}", "/a//b", "/..", "/a/./b"):
        assert check_issuer_path("https://auth.example.com" + bad) is not None, bad


def test_metric_labels_follow_the_issuer_path() -> None:
    names = endpoint_names("https://auth.example.com/tenant1")
    assert names["/tenant1/token"] == "token"
    assert names["/.well-known/oauth-authorization-server/tenant1"] == "metadata"
    assert names["/tenant1/.well-known/openid-configuration"] == "metadata"
    assert names["/healthz"] == "healthz"  # probes are the process's, not the issuer's
    assert "/token" not in names
