"""The URI a DPoP proof must name (RFC 9449 §4.3 `htu`), as the gateway derives it from the
request: the trusted proxies' forwarded scheme and host, else its own scheme and the `Host`; and
the forwarding values, computed once per request, are the ones sent upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.gateway.access_log import AccessLog
from authgate.gateway.config_loader import load_gateway_config
from authgate.gateway.generation import Generation
from authgate.gateway.metrics import GatewayStats
from authgate.gateway.request_head import RequestHead
from authgate.verifier import Verifier
from tests.support.request_heads import request_head


@pytest.fixture
def generation(tmp_path: Path) -> Generation:
    path = tmp_path / "gateway.toml"
    path.write_text("""
trusted_proxies = ["10.0.0.1"]
[dpop]
[[issuers]]
issuer = "https://idp.example"
audiences = ["a"]
[[routes]]
path = "/api"
upstream = "http://127.0.0.1:9001"
""")
    config = load_gateway_config(path)
    return Generation(
        config,
        Verifier(config.gate.verifier),
        stats=GatewayStats(),
        access_log=AccessLog(enabled=False),
        admin=lambda generation, head: None,
    )


def _head(peer: str, fields: dict[bytes, bytes]) -> RequestHead:
    return request_head(b"/api/./orders?page=2", fields, peer=peer)


FORWARDED = {
    b"host": b"gateway.internal:8080",
    b"x-forwarded-proto": b"HTTPS",
    b"x-forwarded-host": b"api.example.com",
    b"x-forwarded-for": b"203.0.113.9",
}


def test_behind_a_trusted_proxy_the_uri_is_the_forwarded_one(generation: Generation) -> None:
    head = _head("10.0.0.1", dict(FORWARDED))
    assert head.forwarded is None
    url = generation.request_url(head, head.target)
    assert url == "https://api.example.com/api/orders"  # the canonical path, no query
    forwarded = head.forwarded
    assert forwarded is not None
    assert forwarded.client == "203.0.113.9"
    # Computed once: the upstream request and the client address use the same values.
    assert generation.forwarding(head) is forwarded
    assert generation.client_address(head) == "203.0.113.9"


def test_from_an_untrusted_peer_the_forwarded_fields_are_ignored(generation: Generation) -> None:
    head = _head("192.0.2.7", dict(FORWARDED))
    assert generation.request_url(head, head.target) == "http://gateway.internal:8080/api/orders"
    assert generation.client_address(head) == "192.0.2.7"
    forwarded = generation.forwarding(head)
    assert forwarded.xff == b"192.0.2.7"
    assert forwarded.proto == b"http"
