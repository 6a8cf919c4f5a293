"""DPoP at the token endpoint (RFC 9449 §5, §8, §10): the proof a token request carries, and the
key every token the request issues is bound to.

`TokenEndpointDPoP.proven_key` checks the request's `DPoP` field with the one proof check
(`authgate.verifier.dpop.check_proof`: `htm` POST, `htu` this server's token endpoint as its
metadata names it, no `ath`), claims its `jti` once (in Redis when `[limits] redis_url` is set,
else in the database, so every process of the server shares it), and asks for the server's nonce
when `[dpop] require_nonce` is on. A client registered with `require_dpop` must send a proof.
`pushed_key` checks a proof sent to /par the same way (`htu` the PAR endpoint, §10.1).

The token endpoint runs the grant inside `binding(jkt)`; `bound_key()` is then what the issuer
binds access tokens to (`cnf.jkt`, `token_type: DPoP`), what a new refresh-token family of a
public client is bound to, and what a code's `dpop_jkt` and a bound family are checked against.
One context variable instead of a parameter through every grant: a grant added later binds its
tokens without knowing about DPoP.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Protocol

from authgate.oauth.errors import InvalidDPoPProof
from authgate.server.clients.fapi2 import FAPI2
from authgate.server.config import FAPI2_ALGORITHMS, FAPI2_FUTURE_IAT, DPoPSettings
from authgate.server.models import Client
from authgate.verifier.dpop import ClaimStore, NonceSource, check_proof, claim_proof, single_proof

__all__ = ["DatabaseClaims", "TokenEndpointDPoP", "binding", "bound_key", "check_bound"]

_BOUND: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "authgate_dpop_bound_key", default=None
)


def bound_key() -> str | None:
    """The thumbprint of the DPoP key the current token request proved (None: no proof)."""
    return _BOUND.get()


class binding:  # noqa: N801 - used as a function: `with binding(jkt):`
    """Run a grant with `jkt` as the key its tokens are bound to. A class rather than a
    `@contextmanager` generator: it is entered once per token request, and the generator's
    machinery cost several times the context variable's set and reset."""

    __slots__ = ("_jkt", "_token")

    def __init__(self, jkt: str | None) -> None:
        self._jkt = jkt

    def __enter__(self) -> None:
        self._token = _BOUND.set(self._jkt)

    def __exit__(self, *exc: object) -> None:
        _BOUND.reset(self._token)


def check_bound(expected: str | None, what: str) -> None:
    """Refuse the request unless it proved the key `expected` (None: nothing to check), as
    RFC 9449 §5 (refresh tokens of public clients) and §10 (`dpop_jkt`) ask."""
    if expected is None:
        return
    proven = bound_key()
    if proven is None or not hmac.compare_digest(proven.encode(), expected.encode()):
        raise InvalidDPoPProof(f"{what} is bound to another DPoP key")


class _OnceStore(Protocol):
    async def consume_once(self, namespace: str, value: str, expires_at: int, now: int) -> bool: ...


class DatabaseClaims:
    """`claim_once` on the database's single-use values (shared by every server process)."""

    def __init__(self, store: _OnceStore, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def claim_once(self, key: str, ttl: float) -> bool:
        now = int(self._clock())
        return await self._store.consume_once("dpop_jti", key, now + int(ttl) + 1, now)


class TokenEndpointDPoP:
    """The token endpoint's proof check (see the module docstring)."""

    def __init__(
        self,
        settings: DPoPSettings,
        *,
        token_endpoint: str,
        par_endpoint: str,
        replay: ClaimStore,
        secret_key: bytes,
        clock: Callable[[], float],
        namespace: str = "authgate",
    ) -> None:
        self.rules = settings.rules()
        self.algorithms = settings.algorithms
        # FAPI 2.0 §5.4.1: a `fapi2` client's proofs are PS256, ES256 or EdDSA (Ed25519) only;
        # §5.3.2.1: their `iat` may lie 10 s ahead whatever `leeway` says, never over 60 s.
        fapi2 = tuple(a for a in settings.algorithms if a in (*FAPI2_ALGORITHMS, "Ed25519"))
        floor, ceiling = FAPI2_FUTURE_IAT
        leeway = min(max(self.rules.leeway, floor), ceiling)
        self._fapi2_rules = (
            dataclasses.replace(self.rules, algorithms=fapi2, leeway=leeway) if fapi2 else None
        )
        self._token_endpoint = token_endpoint
        self._par_endpoint = par_endpoint
        self._replay = replay
        self._clock = clock
        self._namespace = namespace
        nonce_key = hmac.new(secret_key, b"authgate dpop nonce v1", hashlib.sha256).digest()
        self.nonces = (
            NonceSource(nonce_key, lifetime=settings.nonce_lifetime)
            if settings.require_nonce
            else None
        )

    async def proven_key(self, proofs: Sequence[str], client: Client) -> str | None:
        """The thumbprint of the key the request's proof was signed with, None without a proof;
        `InvalidDPoPProof`, `UseDPoPNonce` or a 503 when the proof cannot be accepted."""
        proof = single_proof(proofs)
        if proof is None:
            if client.dpop_required:
                raise InvalidDPoPProof("this client must send a DPoP proof")
            return None
        return await self._checked_key(proof, client, self._token_endpoint)

    async def pushed_key(self, proofs: Sequence[str], client: Client) -> str | None:
        """The key of the proof a pushed authorization request carries (RFC 9449 §10.1: `htu` is
        the PAR endpoint), None without one: the code is then bound as by `dpop_jkt`. No proof is
        required there, even of a client that requires DPoP: its token request must prove a key."""
        proof = single_proof(proofs)
        if proof is None:
            return None
        return await self._checked_key(proof, client, self._par_endpoint)

    async def _checked_key(self, proof: str, client: Client, uri: str) -> str:
        rules = self.rules
        if client.profile == FAPI2:
            if self._fapi2_rules is None:
                raise InvalidDPoPProof("[dpop] algorithms has none a FAPI 2.0 client may use")
            rules = self._fapi2_rules
        checked = check_proof(
            proof, method="POST", uri=uri, rules=rules, nonces=self.nonces, now=self._clock()
        )
        await claim_proof(checked, self._replay, rules, namespace=self._namespace)
        return checked.jkt

    async def resource_key(
        self, proofs: Sequence[str], *, method: str, uri: str, access_token: str
    ) -> str:
        """The key of a proof sent with `access_token` to one of this server's own protected
        resources (userinfo, RFC 9449 §7): `ath` is checked, and the `jti` claimed once."""
        checked = check_proof(
            single_proof(proofs),
            method=method,
            uri=uri,
            rules=self.rules,
            access_token=access_token,
            now=self._clock(),
        )
        await claim_proof(checked, self._replay, self.rules, namespace=self._namespace)
        return checked.jkt

    def nonce_header(self) -> dict[str, str]:
        """`DPoP-Nonce` with the current nonce when the server requires nonces (§8.2)."""
        if self.nonces is None:
            return {}
        return {"DPoP-Nonce": self.nonces.current(self._clock())}
