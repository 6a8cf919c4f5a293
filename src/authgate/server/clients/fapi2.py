"""The `fapi2` security profile: the FAPI 2.0 Security Profile (Final) rules for authorization
servers, held per client (`client create --profile fapi2`) or by every client (`[security] profile
= "fapi2"`). Section numbers are the Security Profile's; docs/fapi.md lists every rule.

Where each rule is enforced (one place each):
- PAR, PKCE and DPoP: `Client.pushed_requests_required`, `.pkce_required`, `.dpop_required`.
- `private_key_jwt` only: `client_problem` at creation, `method_problem` at every authentication;
  the assertion's `aud` is the issuer as a string: `clients.assertions`.
- signing algorithms: `client_problem` (the ID token alg and the APIs' algs) at creation; client
  assertions in `clients.assertions`, DPoP proofs in `tokens.dpop`.
- the server-wide profile: `Client.held_to`, applied where clients are looked up.
- the server-wide rules (refresh-token retries, keys): `config.Config` under `[security]`; the
  60 s code lifetime holds for every client (`flows.codes.MAX_CODE_LIFETIME`).
"""

from __future__ import annotations

from collections.abc import Iterable

from authgate.server.config import FAPI2_ALGORITHMS
from authgate.server.models import Client

__all__ = ["FAPI2", "FAPI2_ALGORITHMS", "client_problem", "method_problem"]

FAPI2 = "fapi2"
# §5.3.2.1: only confidential clients, authenticated by mTLS or private_key_jwt (no mTLS here).
FAPI2_AUTH_METHOD = "private_key_jwt"


def method_problem(client: Client, method: str) -> str | None:
    """Why a `fapi2` client may not authenticate with `method`, or None."""
    if client.profile == FAPI2 and method != FAPI2_AUTH_METHOD:
        return f"a FAPI 2.0 client authenticates with {FAPI2_AUTH_METHOD} only (FAPI 2.0 §5.3.2.1)"
    return None


def client_problem(
    *, auth_method: str, id_token_alg: str, api_algorithms: Iterable[tuple[str, str]]
) -> str | None:
    """Why a client with these settings cannot be held to `fapi2`, or None. `api_algorithms`:
    (API identifier, signing alg) of the JWT-format APIs it may request tokens for."""
    if auth_method != FAPI2_AUTH_METHOD:
        # §5.3.2.1: confidential clients only; client secrets are not allowed.
        return (
            f"a FAPI 2.0 client must use {FAPI2_AUTH_METHOD} (FAPI 2.0 §5.3.2.1), not {auth_method}"
        )
    if id_token_alg not in FAPI2_ALGORITHMS:
        return (
            f"a FAPI 2.0 client's ID tokens must be signed with {', '.join(FAPI2_ALGORITHMS)} "
            f"(FAPI 2.0 §5.4.1), not {id_token_alg}"
        )
    for api, alg in api_algorithms:
        if alg not in FAPI2_ALGORITHMS:
            return (
                f"API {api!r} signs its access tokens with {alg}; a FAPI 2.0 client may only use "
                f"APIs signing with {', '.join(FAPI2_ALGORITHMS)} (FAPI 2.0 §5.4.1)"
            )
    return None
