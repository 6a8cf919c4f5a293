"""RP-initiated logout: parsing and the validated post-logout redirect (no open redirect)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from authgate.oauth.errors import InvalidRequest
from authgate.server.flows.logout import LogoutRequest, parse_logout_request, post_logout_redirect

REGISTERED = ("https://app.example.com/logged-out", "http://127.0.0.1/bye")


def test_parse() -> None:
    request = parse_logout_request(
        [
            ("id_token_hint", "eyJ.a.b"),
            ("client_id", "web-app"),
            ("post_logout_redirect_uri", REGISTERED[0]),
            ("state", "s 1"),
            ("ui_locales", "fr"),
            ("logout_hint", ""),
        ]
    )
    assert request == LogoutRequest("eyJ.a.b", "web-app", REGISTERED[0], "s 1")


@pytest.mark.parametrize(
    "pairs",
    [
        [("state", "a"), ("state", "b")],
        [("client_id", "a"), ("client_id", "a")],
        [("post_logout_redirect_uri", "https://x/\n")],
        [("state", "x" * 9000)],
        [("client_id", "caf\u00e9")],
    ],
)
def test_parse_refuses_repeats_and_junk(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest):
        parse_logout_request(pairs)


def request(**changes: str | None) -> LogoutRequest:
    base: dict[str, str | None] = {
        "id_token_hint": None,
        "client_id": "web-app",
        "post_logout_redirect_uri": REGISTERED[0],
        "state": "st&te",
    }
    base.update(changes)
    return LogoutRequest(**base)  # type: ignore[arg-type]


def test_registered_uri_with_state() -> None:
    target = post_logout_redirect(request(), hint_client_id=None, registered=REGISTERED)
    assert target is not None
    parts = urlsplit(target)
    assert parts._replace(query="").geturl() == REGISTERED[0]
    assert parse_qsl(parts.query) == [("state", "st&te")]


def test_client_identified_by_id_token_hint() -> None:
    req = request(client_id=None, state=None)
    assert (
        post_logout_redirect(req, hint_client_id="web-app", registered=REGISTERED)
        == (REGISTERED[0])
    )


def test_loopback_port_rule_applies() -> None:
    req = request(post_logout_redirect_uri="http://127.0.0.1:5123/bye", state=None)
    assert post_logout_redirect(req, hint_client_id=None, registered=REGISTERED) == (
        "http://127.0.0.1:5123/bye"
    )


def test_no_uri_means_no_redirect() -> None:
    req = request(post_logout_redirect_uri=None)
    assert post_logout_redirect(req, hint_client_id=None, registered=REGISTERED) is None


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/",
        "https://app.example.com/logged-out/",
        "https://app.example.com/logged-out?next=https://evil.example",
        "https://app.example.com/logged-out#x",
        "https://app.example.com@evil.example/logged-out",
        "HTTPS://app.example.com/logged-out",
    ],
)
def test_unregistered_uri_is_an_error_not_a_redirect(uri: str) -> None:
    with pytest.raises(InvalidRequest, match="not registered"):
        post_logout_redirect(
            request(post_logout_redirect_uri=uri), hint_client_id=None, registered=REGISTERED
        )


def test_uri_without_any_client_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="client_id or id_token_hint"):
        post_logout_redirect(request(client_id=None), hint_client_id=None, registered=REGISTERED)


def test_client_id_and_hint_must_agree() -> None:
    with pytest.raises(InvalidRequest, match="does not match"):
        post_logout_redirect(request(), hint_client_id="other-app", registered=REGISTERED)
