"""Header rules: identity header spellings, hop-by-hop and Connection tokens, the request and
response filters."""

from __future__ import annotations

import pytest

from authgate.gateway.header_rules import (
    connection_tokens,
    is_identity_header,
    request_headers_for_upstream,
    response_framing,
    response_headers_for_client,
)


@pytest.mark.parametrize(
    "name",
    [
        b"x-auth-subject",
        b"x_auth_subject",
        b"x-auth_roles",
        b"x_auth-token",
        b"x-auth-",
        b"x-auth-z",
    ],
)
def test_identity_header_spellings(name: bytes) -> None:
    assert is_identity_header(name)


@pytest.mark.parametrize("name", [b"x-authorization", b"x-auth", b"authorization", b"x-autho-x"])
def test_other_headers_are_not_identity(name: bytes) -> None:
    assert not is_identity_header(name)


def test_connection_tokens_from_every_connection_header() -> None:
    headers = [(b"Connection", b"close, X-A"), (b"connection", b" x-b ,"), (b"X-A", b"1")]
    assert connection_tokens(headers) == {b"close", b"x-a", b"x-b"}


def test_request_header_filter() -> None:
    headers = [
        (b"Host", b"h"),
        (b"Connection", b"X-Hop"),
        (b"X-Hop", b"1"),
        (b"Upgrade", b"h2c"),
        (b"TE", b"trailers"),
        (b"X_AUTH_SUBJECT", b"mallory"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"Authorization", b"Bearer t"),
        (b"X-Api-Key", b"k"),
        (b"Accept", b"*/*"),
        (b"Content-Length", b"3"),
    ]
    kept = request_headers_for_upstream(
        headers, credentials=frozenset({b"authorization", b"x-api-key"})
    )
    assert kept == [(b"Accept", b"*/*"), (b"Content-Length", b"3")]
    forwarded = request_headers_for_upstream(headers, credentials=frozenset())
    assert (b"Authorization", b"Bearer t") in forwarded


def test_response_header_filter() -> None:
    headers = [
        (b"Connection", b"X-Secret"),
        (b"X-Secret", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Set-Cookie", b"a=b"),
    ]
    assert response_headers_for_client(headers) == [(b"Set-Cookie", b"a=b")]


def test_response_framing() -> None:
    headers = [
        (b"Connection", b"keep-alive, X-Secret"),
        (b"Content-Length", b"2"),
        (b"X-Secret", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Set-Cookie", b"a=b"),
    ]
    out, length, chunked = response_framing(headers)
    assert out == [(b"Content-Length", b"2"), (b"Set-Cookie", b"a=b")]
    assert (length, chunked) == (True, False)
    assert out == response_headers_for_client(headers)
    # `Connection` never removes the framing; Transfer-Encoding is seen, and dropped.
    framed = [
        (b"Connection", b"content-length"),
        (b"content-length", b"2"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    assert response_framing(framed) == ([(b"content-length", b"2")], True, True)
    assert response_framing([(b"Connection", b"keep-alive")]) == ([], False, False)
