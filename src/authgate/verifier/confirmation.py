"""Sender-constrained tokens (RFC 7800 §3, RFC 9449 §6-§7, RFC 8705 §3): who may present a token
that carries a confirmation claim (`cnf`).

An issuer that puts `cnf` in an access token says that only the holder of a key may use it: a DPoP
key (`cnf.jkt`, RFC 9449 §6) or a TLS client certificate (`cnf.x5t#S256`, RFC 8705 §3). So:

- a token presented as a plain bearer token (`Authorization: Bearer`) must carry no `cnf` at all:
  accepting a bound one would let anyone who stole it use it, which is what the binding exists to
  prevent (RFC 9449 §7.2 describes this downgrade);
- a token presented with the DPoP scheme must carry `cnf.jkt`, equal to the thumbprint of the key
  that signed the request's proof (RFC 9449 §7.1, §4.3 step 12), and no other confirmation
  method, which the gate cannot check (a certificate binding is refused, RFC 8705 §3).

One rule for JWT claims and introspection answers (RFC 9449 §6.2).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from authgate.verifier.errors import Reason, TokenRejected

__all__ = ["check_binding", "refuse_bound_token"]


def refuse_bound_token(claims: Mapping[str, Any]) -> None:
    """Raise `TokenRejected` when the claims bind the token to a key (any `cnf` member)."""
    if "cnf" in claims:
        raise TokenRejected(Reason.BOUND, debug="the token carries cnf (sender-constrained)")


def check_binding(claims: Mapping[str, Any], jkt: str | None) -> None:
    """The rule for one presentation: `jkt` None for a bearer presentation, else the thumbprint of
    the key that signed the DPoP proof. Raises `TokenRejected` when the token may not be used so."""
    if jkt is None:
        refuse_bound_token(claims)
        return
    cnf = claims.get("cnf")
    # `type(...) is dict` first: `isinstance` against an ABC costs a metaclass call.
    if not (type(cnf) is dict or isinstance(cnf, Mapping)) or len(cnf) != 1 or "jkt" not in cnf:
        raise TokenRejected(Reason.NOT_DPOP_BOUND, debug="DPoP presentation, cnf is not {jkt}")
    bound = cnf["jkt"]
    # `compare_digest` takes ASCII strings as they are (a thumbprint is base64url): no encoding.
    if (
        not isinstance(bound, str)
        or not (bound.isascii() and jkt.isascii())
        or not hmac.compare_digest(bound, jkt)
    ):
        raise TokenRejected(Reason.KEY_MISMATCH, debug="cnf.jkt differs from the proof's key")
