"""The gateway's sans-I/O rules, one by one: request targets, header rules, forwarding trust,
identity field values, path rewriting and the configuration keys; and a client connection driven
by hand, for event orderings that a live test cannot force."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.gateway.client_protocol import ClientConnection
from authgate.gateway.config import ClientLimits, RouteUpstream
from authgate.gateway.config_loader import load_gateway_config
from authgate.gateway.forwarded import TrustedProxies, forwarded_for
from authgate.gateway.header_rules import (
    connection_tokens,
    is_identity_header,
    request_headers_for_upstream,
    response_headers_for_client,
)
from authgate.gateway.identity import field_value, identity_headers
from authgate.gateway.request_head import Exchange, RequestHead
from authgate.gateway.request_target import BadRequestTargetError, parse_request_target
from authgate.gateway.upstream_pool import Origin
from authgate.gateway.upstream_request import upstream_path
from authgate.verifier import ConfigError, Principal


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        (b"/a/b?x=1&y", "/a/b", b"x=1&y"),
        (b"/public/../admin", "/admin", b""),
        (b"/%61dmin?q=%2F", "/admin", b"q=%2F"),
        (b"//admin//x/", "/admin/x/", b""),
        (b"http://example.com:8080/x/./y?z", "/x/y", b"z"),
        (b"/filter?a[b]=c|d", "/filter", b"a[b]=c|d"),
    ],
)
def test_request_targets_become_canonical(raw: bytes, path: str, query: bytes) -> None:
    target = parse_request_target(raw)
    assert (target.path, target.query) == (path, query)


def test_absolute_form_keeps_its_authority() -> None:
    assert parse_request_target(b"http://example.com:8080/x").authority == b"example.com:8080"


@pytest.mark.parametrize(
    "raw", [b"*", b"example.com:443", b"/a%2Fb", b"/a%5cb", b"/a\\b", b"/a%00", b"/a%g1", b"/a#f"]
)
def test_ambiguous_targets_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequestTargetError):
        parse_request_target(raw)


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


def test_identity_values_cannot_inject_fields() -> None:
    assert field_value("alice") == b"alice"
    assert field_value("eve\r\nX-Auth-Roles: admin") == b"eve%0D%0AX-Auth-Roles: admin"
    assert field_value("zoë") == b"zo%C3%AB"
    assert field_value("100%") == b"100%25"
    assert field_value("a,b", in_list=True) == b"a%2Cb"


def test_identity_headers_from_a_principal() -> None:
    principal = Principal(
        subject="u1",
        client_id=None,
        scopes=frozenset({"b", "a"}),
        roles=frozenset({"x,y", "z"}),
        issuer="https://idp",
    )
    assert identity_headers(principal) == [
        (b"X-Auth-Subject", b"u1"),
        (b"X-Auth-Scopes", b"a b"),
        (b"X-Auth-Roles", b"x%2Cy,z"),
        (b"X-Auth-Issuer", b"https://idp"),
    ]


def _head(path: str, query: bytes = b"") -> RequestHead:
    target = parse_request_target(path.encode() + (b"?" + query if query else b""))
    return RequestHead(
        method=b"GET",
        target=target,
        version=b"1.1",
        headers=[],
        fields={},
        repeated=set(),
        keep_alive=True,
        upgrade=None,
        has_body=False,
        chunked=False,
        peer="127.0.0.1",
    )


@pytest.mark.parametrize(
    ("path", "prefix", "strip", "expected"),
    [
        ("/orders/7", "", None, b"/orders/7?q=1"),
        ("/orders/7", "/v2", None, b"/v2/orders/7?q=1"),
        ("/orders/7", "", "/orders", b"/7?q=1"),
        ("/orders", "", "/orders", b"/?q=1"),
        ("/ordersX", "", "/orders", b"/ordersX?q=1"),
        ("/orders/7", "/api", "/orders", b"/api/7?q=1"),
    ],
)
def test_upstream_path_rewriting(
    path: str, prefix: str, strip: str | None, expected: bytes
) -> None:
    route = RouteUpstream(Origin("http", "h", 80), "aud", prefix=prefix, strip_prefix=strip)
    assert upstream_path(_head(path, b"q=1"), route) == expected


@pytest.mark.parametrize(
    ("path", "strip", "case_insensitive", "expected"),
    [
        ("/strip;x/a", "/strip", False, b"/a"),  # matched as /strip/a: stripped alike
        ("/strip;x", "/strip", False, b"/"),
        ("/api/v1;k=v/a;p", "/api/v1", False, b"/a;p"),
        ("/STRIP/a", "/strip", False, b"/STRIP/a"),  # not matched case-sensitively
        ("/STRIP/a", "/strip", True, b"/a"),
        ("/Strip;x/a/", "/strip", True, b"/a/"),
        ("/stripX/a", "/strip", True, b"/stripX/a"),
    ],
)
def test_strip_prefix_removes_what_the_route_matched(
    path: str, strip: str, case_insensitive: bool, expected: bytes
) -> None:
    route = RouteUpstream(
        Origin("http", "h", 80), "aud", strip_prefix=strip, case_insensitive=case_insensitive
    )
    assert upstream_path(_head(path), route) == expected


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text + '\n[[issuers]]\nissuer = "https://idp.example"\naudiences = ["a"]\n')
    return path


def test_config_keys_are_parsed(tmp_path: Path) -> None:
    config = load_gateway_config(
        _config(
            tmp_path,
            """
listen = "127.0.0.2:9000"
trusted_proxies = ["10.0.0.0/8"]
forward_auth_path = "/auth/check/"
metrics_path = false
[limits]
max_headers = 20
[upstream]
read = 2.5
[identity_token]
issuer = "https://gw"
ttl = 30
[[routes]]
path = "/orders"
upstream = "http://127.0.0.1:9001/base/"
strip_prefix = true
forward_authorization = true
[[routes]]
pattern = "/items/*"
public = true
""",
        )
    )
    settings = config.settings
    assert (settings.host, settings.port) == ("127.0.0.2", 9000)
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.forward_auth_path == "/auth/check"
    assert settings.metrics_path is None
    assert settings.client.max_headers == 20
    assert settings.upstream.read == 2.5
    assert settings.identity_token is not None
    assert settings.identity_token.ttl == 30
    upstream = config.routes[0][1]
    assert upstream is not None
    assert (upstream.origin.port, upstream.prefix, upstream.strip_prefix) == (
        9001,
        "/base",
        "/orders",
    )
    assert upstream.forward_authorization is True
    assert upstream.audience == "http://127.0.0.1:9001/base"
    assert config.routes[1][1] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_header = 1\n", "limits.max_header"),
        ("[limits]\nmax_headers = 0\n", "greater than zero"),
        ('trusted_proxies = ["nope"]\n', "trusted_proxies"),
        ('[[routes]]\npath = "/x"\nupstream = "ftp://x"\n', "upstream"),
        (
            '[[routes]]\npattern = "/x/*"\nupstream = "http://x"\nstrip_prefix = true\n',
            "strip_prefix",
        ),
        ('[identity_token]\nissuer = "i"\nalg = "HS256"\n', "asymmetric"),
        ('[identity_token]\nissuer = "i"\nheader = "X-User"\n', "X-Auth-"),
        ('health_path = "healthz"\n', "health_path"),
        ('mode = "dependencies"\n', "mode: the gateway decides by routes only"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(_config(tmp_path, text))


def test_durations_may_be_written_with_units(tmp_path: Path) -> None:
    """Every duration of gateway.toml takes the one syntax: numbers of seconds as before, and
    strings such as "30s" (docs/configuration.md)."""
    config = load_gateway_config(
        _config(
            tmp_path,
            """
[limits]
header_timeout = "5s"
body_timeout = "1m"
keepalive_timeout = 75
[upstream]
connect = "500ms"
read = "2m30s"
idle = 4.5
[identity_token]
issuer = "https://gw"
ttl = "30s"
""",
        )
    )
    client, upstream = config.settings.client, config.settings.upstream
    assert (client.header_timeout, client.body_timeout, client.keepalive_timeout) == (5, 60, 75)
    assert (upstream.connect, upstream.read, upstream.idle) == (0.5, 150, 4.5)
    assert config.settings.identity_token is not None
    assert config.settings.identity_token.ttl == 30
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[issuers]]\nissuer = "https://idp.example"\naudiences = ["a"]\nleeway = "1m"\n'
        '[issuers.jwks]\nmin_ttl = "30s"\nstale_grace = "0s"\ntimeout = "2s"\n'
    )
    config = load_gateway_config(path)
    first = config.gate.verifier.issuers[0]
    assert (first.leeway, first.jwks.min_ttl, first.jwks.stale_grace) == (60, 30, 0)
    assert first.jwks.fetch.timeout == 2


def test_a_config_error_names_the_file_the_key_and_the_reason(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[routes]]\npath = "/x"\nscopes = "orders:read"\n')
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert (info.value.file, info.value.key) == (str(path), "routes[0].scopes")
    assert info.value.reason == "must be an array of strings"
    assert str(info.value) == f"{path}: routes[0].scopes: must be an array of strings"
    with pytest.raises(ConfigError) as info:
        load_gateway_config(_config(tmp_path, '[upstream]\nread = "soon"\n'))
    assert (info.value.file, info.value.key) == (str(path), "upstream.read")
    assert "is not a duration" in info.value.reason


# -- a client connection driven by hand: ordering that a live test cannot force --------------------


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else None


class _Exchange:
    def feed_body(self, chunk: bytes) -> None:
        pass

    def end_body(self) -> None:
        pass

    def client_write_paused(self, paused: bool) -> None:
        pass

    def client_lost(self) -> None:
        pass


class _Host:
    limits = ClientLimits()
    draining = False

    def __init__(self) -> None:
        self.heads: list[RequestHead] = []

    def dispatch(self, conn: ClientConnection, head: RequestHead) -> Exchange:
        self.heads.append(head)
        return _Exchange()

    def opened(self, conn: ClientConnection) -> None:
        pass

    def closed(self, conn: ClientConnection) -> None:
        pass


async def test_a_half_close_does_not_drop_the_answer_to_a_malformed_pipelined_request() -> None:
    # The client sends a good request and a malformed one, then half-closes (as soon as its
    # data is read, where the event loop delivers both at once). The good request is answered,
    # then the malformed one gets its 400; the half-close used to drop that 400.
    host, transport = _Host(), _Transport()
    conn = ClientConnection(host)
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /%5c HTTP/1.1\r\nHost: t\r\n\r\n")
    conn.eof_received()
    assert ([h.target.path for h in host.heads], transport.written) == (["/a"], b"")
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # the first exchange's response
    conn.response_started = True
    conn.response_finished(keep_alive=True)
    first, _, second = transport.written.partition(b"\r\n\r\n")
    assert first == b"HTTP/1.1 204 No Content"
    assert second.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in second
    assert transport.closed
