"""Redirect URI registration and exact matching (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from authgate.oauth.errors import InvalidRedirectUri
from authgate.server.flows.redirect_uris import add_query, check_redirect_uri, match_redirect_uri

REGISTERED = ("https://app.example.com/callback",)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com/callback?tenant=a",
        "https://app.example.com",
        "https://app.example.com:8443/cb",
        "https://xn--bcher-kva.example/cb",
        "https://192.0.2.10/cb",
        "https://[2001:db8::1]:8443/cb",
        "https://localhost/cb",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:8080/callback",
        "http://[::1]/callback",
        "http://127.0.0.1",
        "com.example.app:/oauth2redirect",
        "com.example.app://callback/path",
    ],
)
def test_allowed_registrations(uri: str) -> None:
    check_redirect_uri(uri)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("https://app.example.com/cb#frag", "fragment"),
        ("https://app.example.com/cb#", "fragment"),
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("https://user:pass@app.example.com/cb", "userinfo"),
        ("https://app.example.com@evil.example/cb", "userinfo"),
        ("com.example.app://user@host/cb", "userinfo"),
        ("http://app.example.com/cb", "plain http"),
        ("http://localhost/cb", "plain http"),
        ("http://localhost:8080/cb", "plain http"),
        ("http://127.0.0.2/cb", "plain http"),
        ("http://10.0.0.1/cb", "plain http"),
        ("http://127.0.0.1:0/cb", "plain http"),
        ("http://127.0.0.1:65536/cb", "plain http"),
        ("http://127.0.0.1:80@evil.example/cb", "plain http"),
        ("javascript:alert(1)", "private-use"),
        ("data:text/html,hi", "private-use"),
        ("file:///etc/passwd", "private-use"),
        ("myapp:/cb", "private-use"),
        ("/relative/cb", "absolute"),
        ("//app.example.com/cb", "absolute"),
        ("HTTPS://app.example.com/cb", "absolute"),
        ("https://App.Example.com/cb", "lower-case"),
        ("https://app_example.com/cb", "lower-case"),
        ("https://app.example.com./cb", "lower-case"),
        ("https://app.example.com\\@evil.example/cb", "userinfo"),
        ("https://app.example.com\\evil.example/cb", "lower-case"),
        ("https://app.example.com:99999/cb", "port"),
        ("https://app.example.com:/cb", "port"),
        ("https://app.example.com:08/cb", "port"),
        ("https://[zz::1]/cb", "IPv6"),
        ("https://[::1/cb", "IPv6"),
        ("https://[1::2::3]/cb", "IPv6"),
        ("https:///cb", "host"),
        ("https://app.example.com/c b", "printable"),
        ("https://bücher.example/cb", "printable"),
        ("https://app.example.com/\x00", "printable"),
        ("https://app.example.com/" + "a" * 2000, "printable"),
        ("", "printable"),
    ],
)
def test_refused_registrations(uri: str, why: str) -> None:
    with pytest.raises(InvalidRedirectUri, match=why):
        check_redirect_uri(uri)


def test_exact_match() -> None:
    assert match_redirect_uri("https://app.example.com/callback", REGISTERED) == REGISTERED[0]


@pytest.mark.parametrize(
    "variant",
    [
        "https://app.example.com/callback/",  # path variants
        "https://app.example.com/callback/../evil",
        "https://app.example.com/callbackx",
        "https://app.example.com/Callback",
        "https://app.example.com/callback%2F",
        "https://app.example.com/callback?x=1",  # query variants
        "https://app.example.com/callback?",
        "https://APP.example.com/callback",  # case variants
        "HTTPS://app.example.com/callback",
        "https://app.example.com/callback#x",  # fragments
        "https://app.example.com/callback#",
        "https://user@app.example.com/callback",  # userinfo
        "https://app.example.com@evil.example/callback",
        "https://app.example.com:443/callback",  # explicit default port
        "https://app.example.com.evil.example/callback",
        "http://app.example.com/callback",
        "https://app.example.com/callback ",
        " https://app.example.com/callback",
    ],
)
def test_variants_do_not_match(variant: str) -> None:
    assert match_redirect_uri(variant, REGISTERED) is None


def test_registered_query_must_be_repeated_exactly() -> None:
    registered = ("https://app.example.com/cb?tenant=a&x=1",)
    assert match_redirect_uri(registered[0], registered) == registered[0]
    assert match_redirect_uri("https://app.example.com/cb?x=1&tenant=a", registered) is None
    assert match_redirect_uri("https://app.example.com/cb?tenant=a", registered) is None


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:65535/callback",
        "http://127.0.0.1/callback",
    ],
)
def test_loopback_any_port(requested: str) -> None:
    # RFC 8252 §7.3: the port is chosen by the operating system at run time.
    assert match_redirect_uri(requested, ("http://127.0.0.1/callback",)) == requested


def test_loopback_registered_with_port_matches_other_ports() -> None:
    registered = ("http://[::1]:8080/cb",)
    assert match_redirect_uri("http://[::1]:9999/cb", registered) == "http://[::1]:9999/cb"


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/callback/",
        "http://127.0.0.1:51004/other",
        "http://127.0.0.1:51004/callback?x=1",
        "http://127.0.0.1:51004/callback#f",
        "http://[::1]:51004/callback",  # the other loopback literal is another host
        "http://localhost:51004/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:051004/callback",
        "http://127.0.0.1:51004@evil.example/callback",
        "http://127.0.0.1.evil.example/callback",
        "https://127.0.0.1:51004/callback",
    ],
)
def test_loopback_variants_do_not_match(requested: str) -> None:
    assert match_redirect_uri(requested, ("http://127.0.0.1/callback",)) is None


def test_port_freedom_is_only_for_loopback() -> None:
    registered = ("https://app.example.com:8443/cb",)
    assert match_redirect_uri("https://app.example.com:9443/cb", registered) is None
    assert match_redirect_uri("https://app.example.com/cb", registered) is None


def test_private_use_scheme_matches_exactly() -> None:
    registered = ("com.example.app:/oauth2redirect",)
    assert match_redirect_uri("com.example.app:/oauth2redirect", registered) == registered[0]
    assert match_redirect_uri("com.example.app:/oauth2redirect/x", registered) is None
    assert match_redirect_uri("com.evil.app:/oauth2redirect", registered) is None


def test_nothing_matches_an_empty_registration() -> None:
    assert match_redirect_uri("https://app.example.com/callback", ()) is None


def test_add_query_keeps_existing_query_and_round_trips() -> None:
    state = "a b&c=d?é/#%+"
    uri = add_query("https://app.example.com/cb?tenant=x", {"code": "abc", "state": state})
    parts = urlsplit(uri)
    assert parts.fragment == ""
    assert parse_qsl(parts.query) == [("tenant", "x"), ("code", "abc"), ("state", state)]


def test_add_query_on_bare_and_private_use_uris() -> None:
    assert add_query("https://app.example.com/cb", {"a": "1"}) == "https://app.example.com/cb?a=1"
    assert add_query("https://app.example.com/cb?", {"a": "1"}) == "https://app.example.com/cb?a=1"
    assert add_query("com.example.app:/cb", {"a": "1"}) == "com.example.app:/cb?a=1"
    assert add_query("https://app.example.com/cb", {}) == "https://app.example.com/cb"
