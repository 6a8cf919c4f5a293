"""The gateway in front of a real upstream: identity, header rules, forwarding, framing, errors."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.support.gateway import Gateway, Issuer, parse_responses, raw_exchange, read_response


def _record(body: bytes) -> dict[str, Any]:
    return json.loads(body)


def _seen(body: bytes) -> dict[str, list[str]]:
    """The headers the upstream received, by lower-case name."""
    out: dict[str, list[str]] = {}
    for name, value in _record(body)["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def _bearer(issuer: Issuer, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(**claims)}"}


def test_valid_token_reaches_upstream_with_identity(gateway: Gateway, issuer: Issuer) -> None:
    status, headers, body = gateway.request("GET", "/orders/7?x=1", _bearer(issuer))
    assert status == 200
    assert _record(body)["path"] == "/orders/7?x=1"
    seen = _seen(body)
    assert seen["x-auth-subject"] == ["alice"]
    assert seen["x-auth-client-id"] == ["orders-app"]
    assert seen["x-auth-scopes"] == ["orders:read orders:write"]
    assert seen["x-auth-roles"] == ["Order Clerks,admin"]
    assert seen["x-auth-issuer"] == [issuer.url]
    assert "authorization" not in seen  # credentials stay at the gateway by default
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{gateway.port}"]
    assert seen["host"] == [f"127.0.0.1:{gateway.port}"]
    assert seen["via"] == ["1.1 authgate"]
    assert headers["via"] == "1.1 authgate"


def test_authorization_is_forwarded_only_where_the_route_says(
    gateway: Gateway, issuer: Issuer
) -> None:
    headers = _bearer(issuer)
    status, _, body = gateway.request("GET", "/with-auth/x", headers)
    assert status == 200
    assert _seen(body)["authorization"] == [headers["Authorization"]]


SPOOFED = [
    "X-Auth-Subject",
    "x-auth-subject",
    "X-AUTH-SUBJECT",
    "X_AUTH_SUBJECT",
    "x_auth_subject",
    "x-auth_subject",
    "X_Auth-Roles",
    "X-Auth-Token",
    "x-auth-anything-else",
]


@pytest.mark.parametrize("path", ["/public/p", "/orders/1", "/hop"])
def test_spoofed_identity_headers_never_reach_the_upstream(
    gateway: Gateway, issuer: Issuer, path: str
) -> None:
    headers = [(name, "mallory") for name in SPOOFED]
    if path.startswith("/orders"):
        headers.append(("Authorization", f"Bearer {issuer.token()}"))
    status, _, body = gateway.request("GET", path, headers)
    assert status == 200
    seen = _seen(body)
    for name, values in seen.items():
        if name.replace("_", "-").startswith("x-auth-"):
            assert "mallory" not in values, name
    if path.startswith("/orders"):
        assert seen["x-auth-subject"] == ["alice"]
    else:
        assert not any(n.replace("_", "-").startswith("x-auth-") for n in seen)


def test_hop_by_hop_headers_are_removed_both_ways(gateway: Gateway) -> None:
    request = [
        ("Connection", "keep-alive, X-Named-Hop"),
        ("X-Named-Hop", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("Proxy-Connection", "keep-alive"),
        ("X-End-To-End", "kept"),
    ]
    status, headers, body = gateway.request("GET", "/hop", request)
    assert status == 200
    seen = _seen(body)
    for name in ("x-named-hop", "keep-alive", "te", "proxy-authorization", "proxy-connection"):
        assert name not in seen, name
    assert seen["x-end-to-end"] == ["kept"]
    assert "connection" not in seen or seen["connection"] in (["keep-alive"], ["close"])
    # The upstream's own hop-by-hop fields (and those its Connection names) stop at the gateway.
    for name in ("x-secret-hop", "keep-alive", "proxy-authenticate"):
        assert name not in headers, name
    assert headers["x-kept"] == "yes"


def test_untrusted_forwarding_headers_are_replaced(gateway: Gateway) -> None:
    spoofed = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=203.0.113.9",
        "X-Real-IP": "203.0.113.9",
    }
    status, _, body = gateway.request("GET", "/public/f", spoofed)
    assert status == 200
    seen = _seen(body)
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{gateway.port}"]
    assert "forwarded" not in seen
    assert "x-real-ip" not in seen


def test_head_204_and_304_have_no_body_and_keep_the_connection(
    gateway: Gateway, issuer: Issuer
) -> None:
    auth = {"Authorization": f"Bearer {issuer.token()}"}
    status, headers, body = gateway.request("HEAD", "/status/200", auth)
    assert (status, headers["content-length"], body) == (200, "5", b"")
    line = f"Authorization: {auth['Authorization']}\r\n".encode()
    requests = b"".join(
        b"GET /status/%d HTTP/1.1\r\nHost: t\r\n%s\r\n" % (code, line) for code in (204, 304, 200)
    )
    last = b"GET /status/201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % line
    responses = parse_responses(raw_exchange(gateway.port, requests + last))
    assert [r[0] for r in responses] == [204, 304, 200, 201]
    assert responses[0][2] == b""
    assert responses[1][2] == b""
    assert responses[2][2] == b"hello"
    assert [r[1]["x-code"] for r in responses] == ["204", "304", "200", "201"]


def test_pipelined_requests_are_answered_in_order(gateway: Gateway) -> None:
    requests = (
        b"".join(b"GET /public/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(5))
        + b"GET /public/last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    responses = parse_responses(raw_exchange(gateway.port, requests))
    paths = [_record(body)["path"] for _, _, body in responses]
    assert paths == [
        "/public/0",
        "/public/1",
        "/public/2",
        "/public/3",
        "/public/4",
        "/public/last",
    ]


def test_a_pipelined_request_whose_body_is_still_arriving_is_read(
    gateway: Gateway, issuer: Issuer
) -> None:
    # The second request's head and half its body wait behind the first; once it is started the
    # rest of its body must be read (reading stayed paused, and the upstream timed out: 504).
    first = b"GET /slow/0.2 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n" % (
        issuer.token().encode()
    )
    second = b"POST /public/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(first + second)
        assert read_response(sock)[0] == 200
        sock.sendall(b"67890")
        status, _, body = read_response(sock)
    assert status == 200
    assert (_record(body)["path"], _record(body)["body_len"]) == ("/public/upload", 10)


def test_path_is_canonical_before_routing_and_upstream_gets_the_same(gateway: Gateway) -> None:
    # /public/../orders would be a bypass if routing and the upstream disagreed.
    status, headers, _ = gateway.request("GET", "/public/../orders/1")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    status, _, body = gateway.request("GET", "/%70ublic//x/./y")
    assert status == 200
    assert _record(body)["path"] == "/public/x/y"
    status, _, _ = gateway.request("GET", "/public/a%2fb")
    assert status == 400


def test_close_delimited_upstream_body_is_relayed_chunked(gateway: Gateway) -> None:
    responses = parse_responses(
        raw_exchange(
            gateway.port, b"GET /close-delimited HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
    )
    assert len(responses) == 1
    status, headers, body = responses[0]
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"all of this until EOF"


def test_expect_100_continue_is_relayed(gateway: Gateway, issuer: Issuer) -> None:
    body = b"z" * 1000
    head = (
        b"POST /orders/new HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ) % (issuer.token().encode(), len(body))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head)
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    responses = parse_responses(data)
    assert responses[-1][0] == 200
    assert _record(responses[-1][2])["body_len"] == 1000


def test_http10_keep_alive_is_announced(gateway: Gateway) -> None:
    data = raw_exchange(
        gateway.port,
        b"GET /public/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /public/b HTTP/1.0\r\n\r\n",
    )
    responses = parse_responses(data)
    assert [_record(body)["path"] for _, _, body in responses] == ["/public/a", "/public/b"]
    assert responses[0][1]["connection"] == "keep-alive"
    assert responses[1][1]["connection"] == "close"


def test_upstream_connections_are_kept_alive_and_reused(gateway: Gateway) -> None:
    ports = {_record(gateway.request("GET", f"/public/k{i}")[2])["peer_port"] for i in range(5)}
    assert len(ports) == 1  # five client connections, one upstream connection
