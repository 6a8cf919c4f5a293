"""Authorization request validation (RFC 6749 §4.1.1, §4.1.2.1; OIDC Core §3.1.2; RFC 9700)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from authgate.oauth import errors
from authgate.server.flows import authorization_request as ar
from authgate.server.flows.authorization_request import (
    PageError,
    RedirectError,
    parse_authorization_request,
    read_client_id,
)
from authgate.server.flows.pkce import s256_challenge
from authgate.server.models import Client
from tests.support.flows import NOW, FakeClient

CHALLENGE = s256_challenge("v" * 43)
REDIRECT = "https://app.example.com/callback"


def params(**overrides: str | None) -> list[tuple[str, str]]:
    base: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "web-app",
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "scope": "openid orders:read",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return [(k, v) for k, v in base.items() if v is not None]


def parse(
    pairs: Sequence[tuple[str, str]], client: FakeClient | None = None
) -> ar.AuthorizationRequest:
    return parse_authorization_request(pairs, client or FakeClient(), requested_at=NOW)


def redirect_error(
    pairs: Sequence[tuple[str, str]], client: FakeClient | None = None
) -> RedirectError:
    with pytest.raises(RedirectError) as info:
        parse(pairs, client)
    return info.value


def page_error(pairs: Sequence[tuple[str, str]], client: FakeClient | None = None) -> PageError:
    with pytest.raises(PageError) as info:
        parse(pairs, client)
    return info.value


def test_valid_request() -> None:
    request = parse(params(nonce="n-1", prompt="consent", max_age="300", login_hint="alice"))
    assert request.client_id == "web-app"
    assert request.redirect_uri == REDIRECT
    assert request.redirect_uri_in_request
    assert request.target == ar.RedirectTarget(REDIRECT, "query", "xyz")
    assert request.scopes == ("openid", "orders:read")
    assert request.openid
    assert request.nonce == "n-1"
    assert request.prompt == frozenset({"consent"})
    assert request.max_age == 300
    assert request.code_challenge == CHALLENGE
    assert request.login_hint == "alice"
    assert request.requested_at == NOW
    assert request.resources == ()


def test_real_client_model_fits_the_policy() -> None:
    client = Client(
        client_id="web-app",
        name="Web",
        auth_method="none",
        grant_types=("authorization_code",),
        redirect_uris=(REDIRECT,),
    )
    assert parse_authorization_request(params(), client, requested_at=NOW).client_id == "web-app"


def test_state_is_kept_exactly() -> None:
    state = "a b!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    assert parse(params(state=state)).target.state == state


def test_scope_order_kept_and_duplicates_dropped() -> None:
    assert parse(params(scope="b a b openid")).scopes == ("b", "a", "openid")


@pytest.mark.parametrize("scope", ["a  b", " a", "a ", 'a "b"', "a\\b"])
def test_malformed_scope_is_invalid_scope(scope: str) -> None:
    # The core's scope parser (`targets.scopes.parse_scope`) is the one rule for every endpoint.
    error = redirect_error(params(scope=scope))
    assert isinstance(error.error, errors.InvalidScope)
    assert error.target.state == "xyz"


@pytest.mark.parametrize("separator", ["\u00a0", "\u3000", "\t", "\n", "\r", "\x0b", "\x1f"])
def test_scope_separated_by_other_whitespace_is_refused(separator: str) -> None:
    # RFC 6749 §3.3: only U+0020 separates scope tokens (the gate drops such a token instead).
    # Control characters are refused earlier, as a malformed parameter.
    error = redirect_error(params(scope=f"openid{separator}read"))
    assert isinstance(error.error, errors.InvalidScope | errors.InvalidRequest)
    assert error.target.state == "xyz"


def test_several_resources() -> None:
    pairs = [*params(), ("resource", "https://api.example.com/"), ("resource", "urn:x:y")]
    assert parse(pairs).resources == ("https://api.example.com/", "urn:x:y")


def test_form_post_mode() -> None:
    assert parse(params(response_mode="form_post")).target.response_mode == "form_post"


def test_empty_values_count_as_absent() -> None:
    # RFC 6749 §3.1
    request = parse(params(nonce="", prompt="", login_hint=""))
    assert (request.nonce, request.prompt, request.login_hint) == (None, frozenset(), None)


# -- errors shown on the page, never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2) -------------


def test_unknown_client_shows_page() -> None:
    error = page_error(params(client_id="someone-else"))
    assert isinstance(error.error, errors.InvalidRequest)
    with pytest.raises(PageError):
        parse_authorization_request(params(), None, requested_at=NOW)


@pytest.mark.parametrize(
    "pairs",
    [
        params(client_id=None),
        [*params(), ("client_id", "web-app")],
        params(redirect_uri="https://evil.example/callback"),
        params(redirect_uri="https://app.example.com/callback/../../evil"),
        params(redirect_uri="https://app.example.com/callback#x"),
        params(redirect_uri="https://app.example.com@evil.example/callback"),
        [*params(), ("redirect_uri", REDIRECT)],
        [*params(), ("redirect_uri", "https://evil.example/")],
        params(redirect_uri="https://app.example.com/callback\n"),
    ],
)
def test_bad_client_or_redirect_uri_never_redirects(pairs: list[tuple[str, str]]) -> None:
    # Even when other parameters are also wrong: no redirect to an unvalidated URI.
    page_error([*pairs, ("response_type", "token")])


def test_missing_redirect_uri_with_several_registered_shows_page() -> None:
    client = FakeClient(redirect_uris=(REDIRECT, "https://app.example.com/other"))
    page_error(params(redirect_uri=None), client)


def test_client_without_redirect_uris_shows_page() -> None:
    page_error(params(), FakeClient(redirect_uris=()))


def test_too_many_parameters_shows_page() -> None:
    page_error(params() + [("x", "1")] * ar.MAX_PARAMETERS)


def test_read_client_id() -> None:
    assert read_client_id(params()) == "web-app"
    for bad in (params(client_id=None), [*params(), ("client_id", "x")], params(client_id="a\x00")):
        with pytest.raises(PageError):
            read_client_id(bad)


# -- errors redirected to the validated URI --------------------------------------------------------


def test_missing_redirect_uri_uses_the_single_registered_one() -> None:
    request = parse(params(redirect_uri=None, scope="orders:read"))
    assert request.redirect_uri == REDIRECT
    assert not request.redirect_uri_in_request


def test_openid_requires_redirect_uri() -> None:
    error = redirect_error(params(redirect_uri=None))
    assert isinstance(error.error, errors.InvalidRequest)
    assert error.target.redirect_uri == REDIRECT


@pytest.mark.parametrize(
    ("pairs", "error_class"),
    [
        (params(response_type=None), errors.InvalidRequest),
        (params(response_type="token"), errors.UnsupportedResponseType),
        (params(response_type="code id_token"), errors.UnsupportedResponseType),
        (params(response_type="id_token"), errors.UnsupportedResponseType),
        (params(response_mode="fragment"), errors.InvalidRequest),
        (params(response_mode="jwt"), errors.InvalidRequest),
        (params(code_challenge_method="plain"), errors.InvalidRequest),
        (params(code_challenge_method=None), errors.InvalidRequest),
        (params(code_challenge="short"), errors.InvalidRequest),
        (params(prompt="none login"), errors.InvalidRequest),
        (params(prompt="none consent"), errors.InvalidRequest),
        (params(prompt="create"), errors.InvalidRequest),
        (params(max_age="-1"), errors.InvalidRequest),
        (params(max_age="1.5"), errors.InvalidRequest),
        (params(max_age="\uff11\uff12"), errors.InvalidRequest),
        (params(max_age="9" * 11), errors.InvalidRequest),
        (params(max_age=str(ar.MAX_AGE_LIMIT + 1)), errors.InvalidRequest),
        (params(nonce="caf\u00e9"), errors.InvalidRequest),
        (params(request="eyJ.x.y"), errors.RequestNotSupported),
        (params(request_uri="urn:x"), errors.RequestUriNotSupported),
        (params(login_hint="a\x00b"), errors.InvalidRequest),
        (params(nonce="x" * (ar.MAX_VALUE_LENGTH + 1)), errors.InvalidRequest),
        ([*params(), ("resource", "not a uri")], errors.InvalidTarget),
        ([*params(), ("resource", "https://api.example.com/#frag")], errors.InvalidTarget),
        ([*params(), ("resource", "/relative")], errors.InvalidTarget),
        (params() + [("resource", f"urn:r:{i}") for i in range(11)], errors.InvalidTarget),
        ([*params(), ("scope", "more")], errors.InvalidRequest),
        ([*params(), ("response_type", "code")], errors.InvalidRequest),
        ([*params(), ("nonce", "a"), ("nonce", "b")], errors.InvalidRequest),
        ([*params(), ("code_challenge", CHALLENGE)], errors.InvalidRequest),
    ],
)
def test_redirected_errors(
    pairs: list[tuple[str, str]], error_class: type[errors.OAuthError]
) -> None:
    error = redirect_error(pairs)
    assert type(error.error) is error_class
    assert error.target.redirect_uri == REDIRECT
    assert error.target.state == "xyz"


def test_client_without_code_grant_is_unauthorized() -> None:
    error = redirect_error(params(), FakeClient(grant_types=("client_credentials",)))
    assert isinstance(error.error, errors.UnauthorizedClient)


def test_public_client_must_use_pkce() -> None:
    client = FakeClient(is_public=True)
    error = redirect_error(params(code_challenge=None, code_challenge_method=None), client)
    assert isinstance(error.error, errors.InvalidRequest)
    assert "PKCE" in (error.error.description or "")


def test_confidential_client_may_skip_pkce_with_state() -> None:
    request = parse(params(code_challenge=None, code_challenge_method=None))
    assert request.code_challenge is None


def test_repeated_state_is_an_error_and_not_echoed() -> None:
    error = redirect_error([*params(), ("state", "other")])
    assert isinstance(error.error, errors.InvalidRequest)
    assert error.target.state is None


def test_malformed_state_is_an_error_and_not_echoed() -> None:
    error = redirect_error(params(state="line\nbreak"))
    assert error.target.state is None
    error = redirect_error(params(state="x" * (ar.MAX_VALUE_LENGTH + 1)))
    assert error.target.state is None


def test_error_uses_form_post_when_asked() -> None:
    error = redirect_error(params(response_mode="form_post", response_type="token"))
    assert error.target.response_mode == "form_post"


def test_unknown_or_repeated_response_mode_falls_back_to_query_for_the_error() -> None:
    assert redirect_error(params(response_mode="fragment")).target.response_mode == "query"
    repeated = [*params(response_mode="form_post"), ("response_mode", "form_post")]
    assert redirect_error(repeated).target.response_mode == "query"


# -- missing state (RFC 9700 §2.1) ---------------------------------------------------------------


def test_missing_state_is_fine_with_pkce() -> None:
    request = parse(params(state=None))
    assert request.target.state is None


def test_missing_state_is_fine_with_openid_nonce() -> None:
    pairs = params(state=None, code_challenge=None, code_challenge_method=None, nonce="n")
    assert parse(pairs).nonce == "n"


def test_missing_state_without_any_csrf_protection_is_refused() -> None:
    error = redirect_error(
        params(state=None, code_challenge=None, code_challenge_method=None, scope="orders:read")
    )
    assert isinstance(error.error, errors.InvalidRequest)
    assert error.target.state is None


def test_nonce_without_openid_does_not_replace_state() -> None:
    pairs = params(
        state=None, code_challenge=None, code_challenge_method=None, scope="x", nonce="n"
    )
    redirect_error(pairs)


# -- loopback redirect of a native app -----------------------------------------------------------


def test_native_app_loopback_port_is_kept(public_client: FakeClient) -> None:
    pairs = params(client_id="native-app", redirect_uri="http://127.0.0.1:49152/callback")
    request = parse(pairs, public_client)
    assert request.redirect_uri == "http://127.0.0.1:49152/callback"


def test_prompt_values() -> None:
    assert parse(params(prompt="login consent")).prompt == frozenset({"login", "consent"})
    assert parse(params(prompt="none")).prompt == frozenset({"none"})
    assert parse(params(prompt="select_account")).prompt == frozenset({"select_account"})


def test_max_age_zero() -> None:
    assert parse(params(max_age="0")).max_age == 0


def test_unknown_parameters_are_ignored() -> None:
    assert parse(params(ui_locales="fr", display="page", foo="bar")).client_id == "web-app"
