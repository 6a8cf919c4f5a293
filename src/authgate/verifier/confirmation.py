"""Sender-constrained tokens presented as bearer tokens (RFC 7800 §3, RFC 9449 §6-§7, RFC 8705 §3).

An issuer that puts a confirmation claim (`cnf`) in an access token says that only the holder of a
key may use it: a DPoP proof (`cnf.jkt`, RFC 9449) or the TLS client certificate (`cnf.x5t#S256`,
RFC 8705). The gate checks neither proof, so such a token is refused rather than accepted as a
plain bearer token: accepting it would let anyone who stole it use it, which is what the binding
exists to prevent (RFC 9449 §7.2 describes this downgrade; RFC 8705 §3 says the resource MUST
check the certificate). One rule for JWT claims and introspection answers (RFC 9449 §6.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authgate.verifier.errors import Reason, TokenRejected

__all__ = ["refuse_bound_token"]


def refuse_bound_token(claims: Mapping[str, Any]) -> None:
    """Raise `TokenRejected` when the claims bind the token to a key (any `cnf` member)."""
    if "cnf" in claims:
        raise TokenRejected(Reason.BOUND, debug="the token carries cnf (sender-constrained)")
