"""The answers a gate gives when it refuses a request (RFC 6750 §3 and §3.1, RFC 9728 §5.1,
RFC 9110 §10.2.3 `Retry-After`).

- 401: `WWW-Authenticate: Bearer realm="…"` with `error="invalid_token"` and a description, or
  with no error at all when the request carried no credential (RFC 6750 §3.1); with the `scope`
  the route needs, when it needs scopes, so that a client asks for them at once (RFC 6750 §3);
- 403 `insufficient_scope` with the `scope` the route needs (when it needs scopes);
- 400 `invalid_request` (a token in two places, a malformed `Authorization` header…);
- 503 `temporarily_unavailable` with `Retry-After`, when keys cannot be obtained;
- 403 `access_denied`, without a challenge, when no route allows the request.

With DPoP accepted (RFC 9449 §7.1), a 401 carries a `DPoP` challenge with `algs` as well, after
the `Bearer` one (or alone on a route that requires DPoP); the error goes on the challenge of the
scheme the request used, and a refused proof is a 401 `invalid_dpop_proof`.

Every challenge carries `resource_metadata` (RFC 9728 §5.1) when a resource is configured. Bodies
are RFC 6749 §5.2-style JSON; responses are never cached. Parameter values are quoted safely:
descriptions and scopes are restricted to the RFC 6750 §3 character sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from authgate.oauth.errors import (
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    TemporarilyUnavailable,
)
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable

__all__ = ["FORM_TOO_LARGE", "Answer", "Schemes", "error_answer", "www_authenticate"]

# RFC 6750 §3: error_description and scope values use %x20-21 / %x23-5B / %x5D-7E.
_ALLOWED = frozenset(chr(c) for c in (0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


# A form body read for an access token (RFC 6750 §2.2) beyond the shell's limit: 413 (RFC 9110
# §15.5.14), the same answer from every shell.
FORM_TOO_LARGE = Answer(
    413,
    (("content-type", "application/json"), ("cache-control", "no-store")),
    json.dumps(
        {"error": "invalid_request", "error_description": "the form body is too large"}
    ).encode(),
)


def _quote(value: str) -> str:
    return '"' + "".join(c if c in _ALLOWED else "?" for c in value) + '"'


def _quote_realm(value: str) -> str:
    # realm is a quoted-string (RFC 9110 §5.6.4): escape the two specials.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Schemes:
    """Which challenges a refusal carries: `bearer` (False on a route that requires DPoP),
    `dpop_algs` (the DPoP `algs`, None when DPoP is not accepted), and whether the refused request
    used the DPoP scheme (`dpop_used`: its challenge then carries the error)."""

    bearer: bool = True
    dpop_algs: str | None = None
    dpop_used: bool = False


BEARER_ONLY = Schemes()


def www_authenticate(
    error: OAuthError | None,
    *,
    realm: str,
    resource_metadata: str | None = None,
    scope: str | None = None,
    schemes: Schemes = BEARER_ONLY,
) -> str:
    """The challenges for `error` (None: no credential was presented): `Bearer`, and `DPoP` when
    accepted (RFC 9449 §7.1), the error on the one the request used. `scope`: the scopes the
    resource needs, announced on a 401 too (RFC 6750 §3; the MCP authorization specification's
    scope selection reads it); an `insufficient_scope` error names its own."""
    if isinstance(error, InsufficientScope):
        scope = error.scope
    elif error is not None and error.status_code != 401 and not isinstance(error, InvalidDPoPProof):
        scope = None  # a 400 is about the request's form, not its rights
    dpop_error = schemes.dpop_used or isinstance(error, InvalidDPoPProof)
    out = []
    if schemes.bearer:
        given = None if dpop_error else error
        out.append(_challenge("Bearer", given, realm, resource_metadata, scope))
    if schemes.dpop_algs is not None:
        given = error if dpop_error or not schemes.bearer else None
        dpop = _challenge("DPoP", given, realm, resource_metadata, scope)
        out.append(f"{dpop}, algs={_quote(schemes.dpop_algs)}")
    return ", ".join(out)


def _challenge(
    scheme: str,
    error: OAuthError | None,
    realm: str,
    resource_metadata: str | None,
    scope: str | None,
) -> str:
    params = [f"realm={_quote_realm(realm)}"]
    missing = isinstance(error, TokenRejected) and error.reason is Reason.MISSING
    if error is not None and not missing:
        params.append(f"error={_quote(error.error)}")
        if error.description:
            params.append(f"error_description={_quote(error.description)}")
    if scope:
        params.append(f"scope={_quote(scope)}")
    if resource_metadata is not None:
        params.append(f"resource_metadata={_quote(resource_metadata)}")
    return f"{scheme} " + ", ".join(params)


def error_answer(
    error: OAuthError,
    *,
    realm: str,
    resource_metadata: str | None = None,
    scope: str | None = None,
    schemes: Schemes = BEARER_ONLY,
) -> Answer:
    """The full answer for a refusal (`scope`: see `www_authenticate`)."""
    headers: list[tuple[str, str]] = [
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ]
    challenged = isinstance(error, InvalidToken | InsufficientScope | InvalidRequest)
    if challenged or isinstance(error, InvalidDPoPProof):
        challenge = www_authenticate(
            error, realm=realm, resource_metadata=resource_metadata, scope=scope, schemes=schemes
        )
        headers.append(("www-authenticate", challenge))
    if isinstance(error, VerifierUnavailable):
        headers.append(("retry-after", str(error.retry_after)))
    elif isinstance(error, TemporarilyUnavailable):
        headers.append(("retry-after", "5"))
    body = error.to_dict()
    if isinstance(error, InsufficientScope) and error.scope:
        body["scope"] = error.scope
    # RFC 9449 §7.1: a resource server answers a bad proof with 401 (the token endpoint, 400).
    status = 401 if isinstance(error, InvalidDPoPProof) else error.status_code
    return Answer(status, tuple(headers), json.dumps(body).encode())
