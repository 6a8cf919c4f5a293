"""Forwarding trust: X-Forwarded-* and Forwarded from untrusted peers start afresh, trusted proxies
extend the chain."""

from __future__ import annotations

from authgate.gateway.forwarded import TrustedProxies, forwarded_for


def test_forwarding_from_an_untrusted_peer_starts_afresh() -> None:
    result = forwarded_for(
        "192.0.2.1",
        scheme=b"http",
        host=b"api.example",
        incoming_xff=b"10.0.0.1",
        incoming_proto=b"https",
        incoming_host=b"evil",
        trusted=TrustedProxies(["10.0.0.0/8"]),
    )
    assert (result.xff, result.proto, result.host, result.client) == (
        b"192.0.2.1",
        b"http",
        b"api.example",
        "192.0.2.1",
    )


def test_forwarding_from_a_trusted_proxy_extends_the_chain() -> None:
    result = forwarded_for(
        "10.0.0.2",
        scheme=b"http",
        host=b"internal",
        incoming_xff=b"198.51.100.1, 203.0.113.5, 10.0.0.9",
        incoming_proto=b"HTTPS",
        incoming_host=b"shop.example",
        trusted=TrustedProxies(["10.0.0.0/8", "::1"]),
    )
    assert result.xff == b"198.51.100.1, 203.0.113.5, 10.0.0.9, 10.0.0.2"
    assert result.proto == b"https"
    assert result.host == b"shop.example"
    assert result.client == "203.0.113.5"  # right-most untrusted: the first one nobody forged


def test_forwarded_proto_must_be_http_or_https() -> None:
    result = forwarded_for(
        "127.0.0.1",
        scheme=b"http",
        host=b"h",
        incoming_xff=None,
        incoming_proto=b"javascript",
        incoming_host=None,
        trusted=TrustedProxies(["127.0.0.1"]),
    )
    assert result.proto == b"http"


def test_v4_mapped_peers_match_v4_networks() -> None:
    assert TrustedProxies(["127.0.0.0/8"]).trusts("::ffff:127.0.0.1")
    assert not TrustedProxies(["127.0.0.0/8"]).trusts("not an address")
