"""OAuth 2.0 errors with their wire form (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 8707 §2;
RFC 8628 §3.5; RFC 7009 §2.2.1).

Each class carries the `error` code it maps to and its HTTP status. `description` is sent to the
client and must never contain secrets or debug detail; put those in logs (`debug`), which are never
rendered.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OAuthError(Exception):
    """Root of every OAuth protocol error. Renders as RFC 6749 §5.2 JSON."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str | None = None, *, debug: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.debug = debug  # for logs only; never rendered

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body (RFC 6749 §5.2)."""
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


# RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization endpoint)
class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed. 401; `WWW-Authenticate` when Basic was attempted (§5.2)."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown or not allowed."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


# RFC 8628 §3.5 (device authorization polling)
class AuthorizationPending(OAuthError):
    error = "authorization_pending"


class SlowDown(OAuthError):
    error = "slow_down"


class ExpiredDeviceCode(OAuthError):
    """The device code has expired (RFC 8628 §3.5 names the error `expired_token`)."""

    error = "expired_token"


# OpenID Connect Core §3.1.2.6
class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class RequestNotSupported(OAuthError):
    """The `request` parameter (a request object) is not supported."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """The `request_uri` parameter is not supported."""

    error = "request_uri_not_supported"


class InvalidRequestUri(OAuthError):
    """The `request_uri` is unknown, expired, used, or another client's (RFC 9126 §4)."""

    error = "invalid_request_uri"


# RFC 7591 §3.2.2 (client registration)
class InvalidRedirectUri(OAuthError):
    """A redirect URI that must not be registered."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """Client metadata that cannot be registered (RFC 7591 §3.2.2)."""

    error = "invalid_client_metadata"


# RFC 6750 §3.1 (resource servers and the gate)
class InvalidToken(OAuthError):
    """Missing, malformed, expired, revoked or unverifiable access token: 401."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    """The token is valid but policy refuses it: 403 with the scope needed."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(
        self, description: str | None = None, *, scope: str | None = None, debug: str | None = None
    ) -> None:
        super().__init__(description, debug=debug)
        self.scope = scope


# RFC 9449 §5, §7.1 (DPoP: the token endpoint answers 400, a resource server 401)
class InvalidDPoPProof(OAuthError):
    """The DPoP proof is missing, malformed, or does not fit the request."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(OAuthError):
    """The proof must carry the server's nonce, sent in the `DPoP-Nonce` field (RFC 9449 §8, §9)."""

    error = "use_dpop_nonce"

    def __init__(
        self, description: str | None = None, *, nonce: str, debug: str | None = None
    ) -> None:
        super().__init__(description, debug=debug)
        self.nonce = nonce
