"""Parsing and validating an authorization request (RFC 6749 §3.1, §4.1.1, §4.1.2.1; RFC 7636 §4.3;
RFC 8707 §2; OpenID Connect Core §3.1.2.1-§3.1.2.2, §3.1.2.6, §6; OAuth 2.0 Form Post Response Mode;
RFC 9700 §2.1, §4.1, §4.7, §4.11).

Errors fall in two kinds (RFC 6749 §4.1.2.1). Until the client and its redirect URI are
established, an error is shown to the user (`PageError`) and never redirected: redirecting to an
unvalidated URI would make the server an open redirector (RFC 9700 §4.11.2). After that, errors
travel to the validated redirect URI (`RedirectError`, carrying where and how to send them).

The parser is a pure function of the request's parameters and the client record, so the endpoint
can call it again after login with the same parameters and the original `requested_at`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from authgate.oauth.errors import (
    InvalidRequest,
    InvalidTarget,
    OAuthError,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from authgate.server.flows import pkce
from authgate.server.flows.redirect_uris import match_redirect_uri
from authgate.server.targets.resources import check_resource_uri
from authgate.server.targets.scopes import parse_scope

__all__ = [
    "MAX_PARAMETERS",
    "MAX_VALUE_LENGTH",
    "READ_PARAMETERS",
    "AuthorizationError",
    "AuthorizationRequest",
    "ClientPolicy",
    "PageError",
    "RedirectError",
    "RedirectTarget",
    "ResponseMode",
    "parse_authorization_request",
    "read_client_id",
]

ResponseMode = Literal["query", "form_post"]
MAX_PARAMETERS = 100
MAX_VALUE_LENGTH = 4096
MAX_RESOURCES = 10
MAX_AGE_LIMIT = 10 * 365 * 86400
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
# Parameters that may appear once only (RFC 6749 §3.1); `resource` may repeat (RFC 8707 §2).
_SINGLE = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "state",
    "scope",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "request",
    "request_uri",
    "dpop_jkt",
)
# Every parameter the parser reads; a pending request need keep no other.
READ_PARAMETERS = frozenset((*_SINGLE, "resource"))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_VSCHAR = re.compile(r"[\x20-\x7e]+")  # RFC 6749 Appendix A.5 (state), A.1 (client_id)


class ClientPolicy(Protocol):
    """What the authorization endpoint needs to know about a client (`models.Client` fits)."""

    @property
    def client_id(self) -> str: ...
    @property
    def redirect_uris(self) -> Sequence[str]: ...
    @property
    def grant_types(self) -> Sequence[str]: ...
    @property
    def is_public(self) -> bool: ...
    @property
    def pkce_required(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """Where and how an authorization response goes: validated URI, mode and the exact `state`."""

    redirect_uri: str
    response_mode: ResponseMode
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request.

    `scopes` keeps the request's order without duplicates (`targets.scopes.parse_scope`);
    `resources` are the RFC 8707 values as sent (`targets.resources.resolve_target` turns them and
    the API scopes into an API). `redirect_uri_in_request`
    records whether the client sent `redirect_uri`: then the token request must repeat it
    (RFC 6749 §4.1.3). `requested_at` anchors `prompt=login`/`prompt=consent` (see `interaction`).
    """

    client_id: str
    target: RedirectTarget
    redirect_uri_in_request: bool
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    nonce: str | None
    prompt: frozenset[str]
    max_age: int | None
    code_challenge: str | None
    login_hint: str | None
    requested_at: int
    # RFC 9449 §10: the thumbprint of the DPoP key the code will be bound to.
    dpop_jkt: str | None = None

    @property
    def redirect_uri(self) -> str:
        """The validated redirect URI (for loopback URIs, with the port the client used)."""
        return self.target.redirect_uri

    @property
    def openid(self) -> bool:
        """True for an OpenID Connect authentication request (scope `openid`)."""
        return "openid" in self.scopes


class AuthorizationError(Exception):
    """An authorization request failed; `error` is the OAuth error to report."""

    def __init__(self, error: OAuthError) -> None:
        super().__init__(error.error)
        self.error = error


class PageError(AuthorizationError):
    """Show `error` on the server's error page (400); never redirect (RFC 6749 §4.1.2.1)."""


class RedirectError(AuthorizationError):
    """Send `error` to the validated `target` (RFC 6749 §4.1.2.1), with `iss` (RFC 9207)."""

    def __init__(self, error: OAuthError, target: RedirectTarget) -> None:
        super().__init__(error)
        self.target = target


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(pairs):
        if count >= MAX_PARAMETERS:
            raise PageError(InvalidRequest("too many parameters"))
        if value:  # RFC 6749 §3.1: a parameter sent without a value is treated as omitted
            params.setdefault(name, []).append(value)
    return params


def _single_for_page(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise PageError(InvalidRequest(f"{name} must not be repeated"))
    if len(values[0]) > MAX_VALUE_LENGTH or _VSCHAR.fullmatch(values[0]) is None:
        raise PageError(InvalidRequest(f"{name} is malformed"))
    return values[0]


def read_client_id(pairs: Iterable[tuple[str, str]]) -> str:
    """The request's `client_id`, to look the client up; `PageError` when missing or repeated."""
    client_id = _single_for_page(_collect(pairs), "client_id")
    if client_id is None:
        raise PageError(InvalidRequest("client_id is missing"))
    return client_id


def parse_authorization_request(
    pairs: Iterable[tuple[str, str]], client: ClientPolicy | None, *, requested_at: int
) -> AuthorizationRequest:
    """Validate an authorization request for `client` (None when `client_id` is unknown).

    `pairs` are the query (or form) parameters in order, duplicates included. Raises `PageError`
    or `RedirectError`; see the module docstring.
    """
    params = _collect(pairs)
    client_id = _single_for_page(params, "client_id")
    if client_id is None:
        raise PageError(InvalidRequest("client_id is missing"))
    if client is None or client.client_id != client_id:
        raise PageError(InvalidRequest("unknown client"))
    requested_uri = _single_for_page(params, "redirect_uri")
    target = _redirect_target(params, client, requested_uri)
    try:
        return _validate(params, client, target, requested_uri is not None, requested_at)
    except OAuthError as exc:
        raise RedirectError(exc, target) from None


def _redirect_target(
    params: dict[str, list[str]], client: ClientPolicy, requested_uri: str | None
) -> RedirectTarget:
    if requested_uri is None:
        # RFC 6749 §3.1.2.3: may be omitted only when exactly one URI is registered.
        if len(client.redirect_uris) != 1:
            raise PageError(InvalidRequest("redirect_uri is missing"))
        redirect_uri = client.redirect_uris[0]
    else:
        matched = match_redirect_uri(requested_uri, client.redirect_uris)
        if matched is None:
            raise PageError(InvalidRequest("redirect_uri is not registered for this client"))
        redirect_uri = matched
    # `state` and `response_mode` are read leniently here so that an error about them can still be
    # delivered; a repeated or malformed value is reported by `_validate` without being echoed.
    states = params.get("state", [])
    state = states[0] if len(states) == 1 and _valid_state(states[0]) else None
    modes = params.get("response_mode", [])
    mode: ResponseMode = "form_post" if modes == ["form_post"] else "query"
    return RedirectTarget(redirect_uri, mode, state)


def _valid_state(state: str) -> bool:
    return len(state) <= MAX_VALUE_LENGTH and _VSCHAR.fullmatch(state) is not None


def _validate(
    params: dict[str, list[str]],
    client: ClientPolicy,
    target: RedirectTarget,
    redirect_uri_in_request: bool,
    requested_at: int,
) -> AuthorizationRequest:
    for name in _SINGLE:
        if len(params.get(name, ())) > 1:
            raise InvalidRequest(f"{name} must not be repeated")  # RFC 6749 §3.1
    for name, values in params.items():
        for value in values:
            if len(value) > MAX_VALUE_LENGTH or _CONTROL.search(value):
                raise InvalidRequest(f"{name} is malformed")
    if "request" in params:
        raise RequestNotSupported("request objects are not supported")  # OIDC Core §6.1
    if "request_uri" in params:
        raise RequestUriNotSupported("request_uri is not supported")  # OIDC Core §6.2
    response_type = _one(params, "response_type")
    if response_type is None:
        raise InvalidRequest("response_type is missing")
    if response_type != "code":
        # Implicit and hybrid flows are not offered (RFC 9700 §2.1.2).
        raise UnsupportedResponseType("only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code grant")
    mode = _one(params, "response_mode")
    if mode is not None and mode not in ("query", "form_post"):
        raise InvalidRequest("response_mode must be query or form_post")
    state = _one(params, "state")
    if state is not None and not _valid_state(state):
        raise InvalidRequest("state must be visible ASCII characters")
    challenge = pkce.parse_challenge(
        _one(params, "code_challenge"),
        _one(params, "code_challenge_method"),
        required=client.pkce_required,  # public clients always (RFC 9700 §2.1.1), others by choice
    )
    scopes = parse_scope(_one(params, "scope"))
    openid = "openid" in scopes
    if openid and not redirect_uri_in_request:
        raise InvalidRequest("redirect_uri is required for OpenID Connect")  # OIDC Core §3.1.2.1
    nonce = _one(params, "nonce")
    if nonce is not None and _VSCHAR.fullmatch(nonce) is None:
        raise InvalidRequest("nonce must be visible ASCII characters")
    if state is None and challenge is None and not (openid and nonce is not None):
        # RFC 9700 §2.1: without state, PKCE or an OIDC nonce nothing protects the client from CSRF.
        raise InvalidRequest("send state, or use PKCE")
    return AuthorizationRequest(
        client_id=client.client_id,
        target=target,
        redirect_uri_in_request=redirect_uri_in_request,
        scopes=scopes,
        resources=_resources(params.get("resource", [])),
        nonce=nonce,
        prompt=_prompt(_one(params, "prompt")),
        max_age=_max_age(_one(params, "max_age")),
        code_challenge=challenge,
        login_hint=_one(params, "login_hint"),
        requested_at=requested_at,
        dpop_jkt=_dpop_jkt(_one(params, "dpop_jkt")),
    )


def _dpop_jkt(value: str | None) -> str | None:
    """RFC 9449 §10: a JWK SHA-256 thumbprint, base64url (43 characters)."""
    if value is not None and _JKT.fullmatch(value) is None:
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
    return value


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _resources(values: list[str]) -> tuple[str, ...]:
    if len(values) > MAX_RESOURCES:
        raise InvalidTarget("too many resource values")
    for value in values:
        problem = check_resource_uri(value)  # RFC 8707 §2
        if problem:
            raise InvalidTarget(problem)
    return tuple(dict.fromkeys(values))


def _prompt(prompt: str | None) -> frozenset[str]:
    if prompt is None:
        return frozenset()
    values = frozenset(value for value in prompt.split(" ") if value)
    unknown = values - PROMPT_VALUES
    if unknown:
        raise InvalidRequest("prompt must be none, login, consent or select_account")
    if "none" in values and len(values) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")  # OIDC §3.1.2.1
    return values


def _max_age(max_age: str | None) -> int | None:
    if max_age is None:
        return None
    if len(max_age) > 10 or not (max_age.isascii() and max_age.isdigit()):
        raise InvalidRequest("max_age must be a non-negative number of seconds")
    if int(max_age) > MAX_AGE_LIMIT:
        raise InvalidRequest("max_age is too large")
    return int(max_age)
