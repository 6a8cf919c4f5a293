"""Hostile input: malformed HTTP, oversized heads, forged and misdirected tokens. Every answer is a
precise 4xx with the RFC 6750 challenge where one applies; never a 500, never a crash."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time

import pytest

from authgate.jose import JWK
from tests.support.gateway import (
    Gateway,
    Issuer,
    parse_responses,
    raw_exchange,
    read_response,
    read_until_closed,
)
from tests.support.tokens import b64url


def _challenge(headers: dict[str, str]) -> str:
    return headers.get("www-authenticate", "")


def _one(gateway: Gateway, request: bytes) -> tuple[int, dict[str, str], bytes]:
    responses = parse_responses(raw_exchange(gateway.port, request))
    assert len(responses) == 1, responses
    return responses[0]


MALFORMED = [
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (
        b"GET /public/x HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(60))
        + b"\r\n",
        431,
    ),
    (b"GET /public/" + b"a" * 3000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\n folded: x\r\n\r\n", 400),
    (
        b"POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        b"POST /public/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        400,
    ),
    (b"GET /public/x HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /public/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /public/a%2Fb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /public/a%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (
        b"GET /public/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (b"GET /public/x HTTP/9.9\r\nHost: t\r\n\r\n", 400),
]


@pytest.mark.parametrize(("request_bytes", "status"), MALFORMED)
def test_malformed_requests_get_a_4xx_and_a_closed_connection(
    gateway: Gateway, request_bytes: bytes, status: int
) -> None:
    got, _, body = _one(gateway, request_bytes)
    assert got == status
    assert "error" in json.loads(body)


GOOD = b"GET /public/first HTTP/1.1\r\nHost: t\r\n\r\n"
SECOND_REQUESTS = [
    (b"GET /public/%5c/x HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /public/a%2Fb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\n folded: x\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /public/" + b"a" * 3000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /public/x HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"POST /public/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
]
SECOND_IDS = ["encoded-backslash", "encoded-slash", "bad-header", "folded", "garbage",
              "long-target", "big-header", "bad-chunk"]  # fmt: skip


@pytest.mark.parametrize(("second", "status"), SECOND_REQUESTS, ids=SECOND_IDS)
def test_a_malformed_second_request_on_a_keep_alive_connection_is_answered(
    gateway: Gateway, second: bytes, status: int
) -> None:
    # It used to be closed without an answer: the first response's state was still set.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(GOOD)
        assert read_response(sock)[0] == 200
        sock.sendall(second)
        answers = parse_responses(read_until_closed(sock))
    assert [(got, headers["connection"]) for got, headers, _ in answers] == [(status, "close")]
    assert "error" in json.loads(answers[0][2])


@pytest.mark.parametrize(("second", "status"), SECOND_REQUESTS, ids=SECOND_IDS)
def test_a_malformed_pipelined_request_is_answered_after_the_one_before(
    gateway: Gateway, second: bytes, status: int
) -> None:
    # The good request keeps its whole response, then the malformed one gets its own, in order.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(GOOD + second)
        answers = parse_responses(read_until_closed(sock))
    assert [got for got, _, _ in answers] == [200, status]
    assert json.loads(answers[0][2])["path"] == "/public/first"
    assert answers[1][1]["connection"] == "close"


def test_a_slow_second_header_section_times_out_with_408(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(GOOD)
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /public/x HTTP/1.1\r\nHost: t\r\n")
        answers = parse_responses(read_until_closed(sock))
    assert [got for got, _, _ in answers] == [408]


def test_slow_header_section_times_out_with_408(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(b"GET /public/x HTTP/1.1\r\nHost: t\r\n")
        sock.settimeout(20)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    ((status, _, _),) = parse_responses(data)
    assert status == 408


def test_missing_token_gets_a_challenge_without_error(gateway: Gateway) -> None:
    status, headers, _ = gateway.request("GET", "/orders/1")
    assert status == 401
    assert _challenge(headers) == 'Bearer realm="authgate", scope="orders:read"'


def _assert_invalid_token(gateway: Gateway, token: str, description: str | None = None) -> None:
    status, headers, body = gateway.request(
        "GET", "/orders/1", {"Authorization": f"Bearer {token}"}
    )
    assert status == 401, body
    challenge = _challenge(headers)
    assert challenge.startswith('Bearer realm="authgate", error="invalid_token"')
    assert json.loads(body)["error"] == "invalid_token"
    if description is not None:
        assert description in challenge
    assert token not in challenge
    assert token.encode() not in body


def test_alg_none_is_refused(gateway: Gateway, issuer: Issuer) -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    now = int(time.time())
    payload = b64url(
        json.dumps(
            {"iss": issuer.url, "aud": "https://api.example.com", "sub": "x", "exp": now + 60,
             "scope": "orders:read"}
        ).encode()
    )  # fmt: skip
    _assert_invalid_token(gateway, f"{header}.{payload}.")


def test_hmac_signed_with_the_public_key_is_refused(gateway: Gateway, issuer: Issuer) -> None:
    public_pem = issuer.key.public().to_pem()
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode())
    now = int(time.time())
    payload = b64url(
        json.dumps(
            {"iss": issuer.url, "aud": "https://api.example.com", "sub": "x", "exp": now + 60,
             "scope": "orders:read"}
        ).encode()
    )  # fmt: skip
    signing_input = f"{header}.{payload}".encode()
    signature = b64url(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    _assert_invalid_token(gateway, f"{header}.{payload}.{signature}", "could not be verified")


def test_expired_token(gateway: Gateway, issuer: Issuer) -> None:
    now = int(time.time())
    _assert_invalid_token(gateway, issuer.token(iat=now - 600, exp=now - 5), "expired")


def test_wrong_audience(gateway: Gateway, issuer: Issuer) -> None:
    _assert_invalid_token(gateway, issuer.token(aud="https://other.example.com"), "not intended")


def test_wrong_issuer(gateway: Gateway, issuer: Issuer) -> None:
    _assert_invalid_token(gateway, issuer.token(iss="https://evil.example.com"))


def test_token_signed_by_another_key(gateway: Gateway, issuer: Issuer) -> None:
    other = JWK.generate("RSA", alg="RS256", kid="key-1")
    _assert_invalid_token(gateway, issuer.token(key=other), "could not be verified")


def test_garbage_token(gateway: Gateway) -> None:
    _assert_invalid_token(gateway, "not-a-jwt")


def test_token_in_two_places_is_invalid_request(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token()
    status, headers, body = gateway.request(
        "GET", f"/orders/1?access_token={token}", {"Authorization": f"Bearer {token}"}
    )
    assert status == 400
    assert json.loads(body)["error"] == "invalid_request"
    assert 'error="invalid_request"' in _challenge(headers)


def test_two_authorization_headers_are_invalid_request(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token()
    status, _, body = gateway.request(
        "GET",
        "/orders/1",
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert status == 400
    assert json.loads(body)["error"] == "invalid_request"


def test_insufficient_scope_is_403_with_the_scope(gateway: Gateway, issuer: Issuer) -> None:
    status, headers, body = gateway.request(
        "GET", "/admin/x", {"Authorization": f"Bearer {issuer.token()}"}
    )
    assert status == 403
    assert 'error="insufficient_scope"' in _challenge(headers)
    assert 'scope="orders:admin"' in _challenge(headers)
    assert json.loads(body)["error"] == "insufficient_scope"


def test_no_route_is_refused(gateway: Gateway, issuer: Issuer) -> None:
    status, _, body = gateway.request(
        "GET", "/nowhere", {"Authorization": f"Bearer {issuer.token()}"}
    )
    assert status == 403
    assert json.loads(body)["error"] == "access_denied"


def test_oversized_token_is_refused(gateway: Gateway) -> None:
    # Over this gateway's max_token_bytes (4096) but within its header section limit (8192).
    _assert_invalid_token(gateway, "a" * 7000, "the access token is too large")


def test_token_beyond_the_header_section_limit_is_431(gateway: Gateway) -> None:
    status, _, body = gateway.request("GET", "/orders/1", {"Authorization": "Bearer " + "a" * 9000})
    assert status == 431
    assert json.loads(body)["error"] == "request_header_fields_too_large"


def _hostile_tokens(issuer: Issuer) -> list[str]:
    now = int(time.time())
    unsigned = b64url(json.dumps({"alg": "none"}).encode()) + "." + b64url(b"{}") + "."
    return [
        "not-a-jwt",
        "a" * 7000,
        unsigned,
        issuer.token(iat=now - 600, exp=now - 5),
        issuer.token(aud="https://other.example.com"),
        issuer.token(key=JWK.generate("RSA", alg="RS256", kid="key-1")),
        "e30.e30.e30",
    ]


def test_the_gateway_never_answered_500_and_is_alive(gateway: Gateway, issuer: Issuer) -> None:
    # Self-contained: it sends its own hostile requests, and each must get its precise answer.
    expected: list[int] = []
    statuses: list[int] = []
    for request_bytes, status in MALFORMED:
        expected.append(status)
        statuses += [
            got for got, _, _ in parse_responses(raw_exchange(gateway.port, request_bytes))
        ]
    for second, status in SECOND_REQUESTS:
        expected += [200, status]
        data = raw_exchange(gateway.port, GOOD + second)
        statuses += [got for got, _, _ in parse_responses(data)]
    tokens = _hostile_tokens(issuer)
    for token in tokens:
        expected.append(401)
        auth = {"Authorization": f"Bearer {token}"}
        statuses.append(gateway.request("GET", "/orders/never-500", auth)[0])
    assert statuses == expected
    assert gateway.request("GET", "/healthz")[0] == 200

    def access() -> list[dict[str, object]]:
        return [r for r in gateway.log_records() if r.get("logger") == "authgate.access"]

    # The access log is written in batches: wait until the last of these requests is in it.
    deadline = time.monotonic() + 10
    while sum(r.get("path") == "/orders/never-500" for r in access()) < len(tokens):
        assert time.monotonic() < deadline, "these requests never reached the access log"
        time.sleep(0.05)
    assert 500 not in [r.get("status") for r in access()]
    assert not [r for r in gateway.log_records() if r.get("level") == "error"]
