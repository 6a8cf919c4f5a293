"""Why a credential was refused, as OAuth errors that render as RFC 6750 §3.1 answers.

`TokenRejected` is an `InvalidToken` (401, `invalid_token`) with a machine `reason` for logs and
metrics; `VerifierUnavailable` is a `TemporarilyUnavailable` (503) raised when the keys or the
introspection answer needed to decide cannot be obtained. Descriptions are fixed strings: they
never echo the token, and every signature-related failure (unknown algorithm, unknown `kid`, bad
key, bad signature) has the same one, so that answers are no oracle (RFC 8725 §3.3 spirit).
"""

from __future__ import annotations

from enum import StrEnum

from authgate.jose.errors import (
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidSignature,
    JoseError,
    KeyNotFound,
    MalformedToken,
    NotYetValid,
)
from authgate.oauth.errors import InvalidToken, TemporarilyUnavailable

__all__ = ["Reason", "TokenRejected", "VerifierUnavailable", "rejection_for"]


class Reason(StrEnum):
    """Machine-readable causes; used as metric labels, never sent to the client."""

    MISSING = "missing"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNKNOWN_ISSUER = "unknown_issuer"
    SIGNATURE = "signature"
    UNKNOWN_KID = "unknown_kid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    AUDIENCE = "audience"
    ISSUER = "issuer"
    TYPE = "type"
    CLAIM = "claim"
    INACTIVE = "inactive"
    BOUND = "bound"
    NOT_DPOP_BOUND = "not_dpop_bound"
    KEY_MISMATCH = "dpop_key_mismatch"
    DPOP_REQUIRED = "dpop_required"
    API_KEY = "api_key"


# One description per client-visible class of failure.
_UNVERIFIABLE = "the access token could not be verified"
DESCRIPTIONS: dict[Reason, str] = {
    Reason.MISSING: "an access token is required",
    Reason.MALFORMED: "the access token is malformed",
    Reason.TOO_LARGE: "the access token is too large",
    Reason.UNKNOWN_ISSUER: "the access token's issuer is not accepted",
    Reason.SIGNATURE: _UNVERIFIABLE,
    Reason.UNKNOWN_KID: _UNVERIFIABLE,
    Reason.EXPIRED: "the access token has expired",
    Reason.NOT_YET_VALID: "the access token is not yet valid",
    Reason.AUDIENCE: "the access token is not intended for this resource",
    Reason.ISSUER: "the access token's issuer is not accepted",
    Reason.TYPE: "the access token is not of the required type",
    Reason.CLAIM: "the access token's claims are not acceptable",
    Reason.INACTIVE: "the access token is not active",
    Reason.BOUND: "the access token is bound to a key and cannot be used as a bearer token",
    Reason.NOT_DPOP_BOUND: "the access token is not bound to a DPoP key",
    Reason.KEY_MISMATCH: "the access token is bound to another key than the DPoP proof's",
    Reason.DPOP_REQUIRED: "this resource requires a DPoP-bound access token and its proof",
    Reason.API_KEY: "the API key is not valid",
}


class TokenRejected(InvalidToken):
    """A 401 `invalid_token` answer with the internal `reason`."""

    def __init__(self, reason: Reason, *, debug: str | None = None) -> None:
        super().__init__(DESCRIPTIONS[reason], debug=debug)
        self.reason = reason


class VerifierUnavailable(TemporarilyUnavailable):
    """A 503: the keys (or the introspection answer) needed to decide cannot be obtained now.

    `source` names the issuer or endpoint; `retry_after` is a hint in whole seconds.
    """

    def __init__(self, source: str, *, retry_after: int = 5, debug: str | None = None) -> None:
        super().__init__("the token cannot be verified at the moment; retry later", debug=debug)
        self.source = source
        self.retry_after = max(1, retry_after)


def rejection_for(error: JoseError) -> TokenRejected:
    """Map an `authgate.jose` failure to the client-visible rejection."""
    reason: Reason
    if isinstance(error, ExpiredToken):
        reason = Reason.EXPIRED
    elif isinstance(error, NotYetValid):
        reason = Reason.NOT_YET_VALID
    elif isinstance(error, InvalidClaim):
        reason = {"aud": Reason.AUDIENCE, "iss": Reason.ISSUER, "typ": Reason.TYPE}.get(
            error.claim, Reason.CLAIM
        )
    elif isinstance(error, KeyNotFound):
        reason = Reason.UNKNOWN_KID
    elif isinstance(error, AlgorithmNotAllowed | InvalidKey | InvalidSignature):
        reason = Reason.SIGNATURE
    elif isinstance(error, MalformedToken):
        reason = Reason.MALFORMED
    else:
        reason = Reason.SIGNATURE
    return TokenRejected(reason, debug=f"{error.code}: {error}")
