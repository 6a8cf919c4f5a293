"""Finding the credential in a request (RFC 6750 §2.1-§2.3 and §3.1; RFC 7235 §2.1).

- `Authorization: Bearer <b64token>`: the scheme is case-insensitive; the token must match the
  RFC 6750 §2.1 `b64token` syntax. With `dpop` set, `Authorization: DPoP <token68>` (RFC 9449
  §7.1) too: a `DPoPCredential` whose proof the gate checks next (`Gate.extract`). Another
  scheme (Basic, Digest…) is not a bearer credential and counts as none (RFC 6750 §3.1: then
  the challenge carries no error code).
- `access_token` in the URI query (§2.3) or in an `application/x-www-form-urlencoded` body (§2.2)
  only when `bearer_methods` enables them. A query `access_token` when the query method is off is
  refused (400), because the token has already leaked into URLs and logs (§5.3).
- An API key in the configured header, when API keys are configured.

Refused with 400 `invalid_request`: a token in more than one place (§2: "MUST NOT use more than
one method"), a repeated parameter or header, a malformed `Bearer` credential, and an API key sent
together with a bearer token. A token over `max_token_bytes` is refused as `invalid_token` before
any parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from authgate.oauth.errors import InvalidRequest
from authgate.verifier.core import ApiKeyCredential, BearerCredential, Credential, DPoPCredential
from authgate.verifier.errors import Reason, TokenRejected

__all__ = ["BEARER_METHODS", "CredentialRules", "extract_credential"]

BEARER_METHODS = frozenset({"header", "query", "body"})
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
_PARAM = "access_token"


@dataclass(frozen=True, slots=True)
class CredentialRules:
    """Where credentials may be sent. `api_key_header` is lower-case, or None without API keys."""

    bearer_methods: frozenset[str] = frozenset({"header"})
    api_key_header: str | None = None
    max_token_bytes: int = 16 * 1024
    dpop: bool = False  # whether the DPoP scheme is a credential (else it counts as none)

    def __post_init__(self) -> None:
        if not self.bearer_methods or not self.bearer_methods <= BEARER_METHODS:
            raise ValueError("bearer_methods must name some of: header, query, body")
        if "header" not in self.bearer_methods:
            raise ValueError("bearer_methods must include 'header' (RFC 6750 §2: MUST support)")


def extract_credential(
    headers: Iterable[tuple[str, str]],
    query_string: str,
    form_body: bytes | None,
    rules: CredentialRules,
) -> Credential | None:
    """The credential in the request, None when there is none; raise on ambiguity or bad syntax.

    `headers` are (name, value) pairs with names in any case; `form_body` is the urlencoded body
    when the shell read it (only for the "body" method), else None.
    """
    authorization: list[str] = []
    api_keys: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "authorization":
            authorization.append(value)
        elif lower == rules.api_key_header:
            api_keys.append(value)
    tokens: list[str] = []
    dpop = False
    if len(authorization) > 1:
        raise InvalidRequest("the request carries more than one Authorization header")
    if authorization:
        token, dpop = _token_from_header(authorization[0], rules.max_token_bytes, rules.dpop)
        if token is not None:
            tokens.append(token)
    if query_string and (_PARAM in query_string or "%" in query_string):
        found = _from_form(query_string, rules.max_token_bytes)
        if found is not None:
            if "query" not in rules.bearer_methods:
                raise InvalidRequest("access tokens are not accepted in the URI query")
            tokens.append(found)
    if form_body is not None and "body" in rules.bearer_methods:
        found = _from_form(form_body.decode("latin-1"), rules.max_token_bytes)
        if found is not None:
            tokens.append(found)
    if len(tokens) > 1:
        raise InvalidRequest("the access token must be sent in exactly one place")
    if len(api_keys) > 1:
        raise InvalidRequest("the request carries more than one API key")
    if api_keys:
        if tokens:
            raise InvalidRequest("send either an API key or an access token, not both")
        return ApiKeyCredential(api_keys[0].strip())
    if not tokens:
        return None
    return DPoPCredential(tokens[0]) if dpop else BearerCredential(tokens[0])


def _token_from_header(value: str, max_bytes: int, dpop: bool) -> tuple[str | None, bool]:
    """The token of a Bearer (or, when accepted, DPoP) credential, and whether it is DPoP."""
    scheme, _, rest = value.strip().partition(" ")
    lower = scheme.lower()
    is_dpop = dpop and lower == "dpop"
    if lower != "bearer" and not is_dpop:
        return None, False
    token = rest.strip(" ")
    if len(token) > max_bytes:
        raise TokenRejected(Reason.TOO_LARGE)
    if not _B64TOKEN.fullmatch(token):  # RFC 9449 §7.1: token68, the same characters
        raise InvalidRequest("the Authorization header is not a valid Bearer or DPoP credential")
    return token, is_dpop


def _from_form(encoded: str, max_bytes: int) -> str | None:
    try:
        values = [v for k, v in parse_qsl(encoded, keep_blank_values=True) if k == _PARAM]
    except ValueError:
        raise InvalidRequest("the request parameters are malformed") from None
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("the access_token parameter is repeated")
    token = values[0]
    if len(token) > max_bytes:
        raise TokenRejected(Reason.TOO_LARGE)
    if not _B64TOKEN.fullmatch(token):
        raise InvalidRequest("the access_token parameter is not a valid token")
    return token
