"""DPoP at the gate (RFC 9449 §7): its settings, and the URI a proof must name.

A request with `Authorization: DPoP <token>` and one `DPoP` field is judged by
`authgate.verifier.dpop.check_proof` against the request's method and its URI as the client sent
it (the shells give it in `GateRequest.url`: the gateway from the forwarded scheme and host when
the peer is a trusted proxy, the middleware from the ASGI scope or WSGI environ), with `ath` for
the token; the verifier then holds the token's `cnf.jkt` to the proof's key, and the proof's `jti`
is claimed once in the store of `[limits]` (memory, or Redis shared by every gate).

```toml
[dpop]                               # the table turns DPoP on (as does a route's require_dpop)
enabled = true                       # default true when the table is present
algorithms = ["ES256", "PS256", "RS256", "EdDSA"]
max_age = "60s"                      # how long after its iat a proof is accepted
leeway = "5s"                        # how far in the future its iat may be (clock skew)

[[routes]]
path = "/payments"
require_dpop = true                  # Bearer tokens are refused here
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from authgate.config import Table
from authgate.verifier.dpop import DEFAULT_ALGORITHMS, DPoPRules

__all__ = ["DPoPSettings", "encoded_path", "read_dpop", "request_url"]


@dataclass(frozen=True, slots=True)
class DPoPSettings:
    """`[dpop]`: whether the DPoP scheme is accepted (off unless configured: a gate without it
    answers exactly as before, refusing every key-bound token), and how proofs are judged."""

    enabled: bool = False
    rules: DPoPRules = field(default_factory=DPoPRules)

    @property
    def algs(self) -> str:
        """The `algs` parameter of a DPoP challenge (RFC 9449 §7.1)."""
        return " ".join(self.rules.algorithms)


def read_dpop(table: Table | None, *, required: bool) -> DPoPSettings:
    """The `[dpop]` table; absent, DPoP is on with the default rules when a route requires it
    (`required`), else off."""
    if table is None:
        return DPoPSettings(enabled=required)
    enabled = table.boolean("enabled", True)
    algorithms = tuple(table.strings("algorithms", DEFAULT_ALGORITHMS))
    max_age = table.duration("max_age", 60, whole=True)
    leeway = table.duration("leeway", 5, zero=True, whole=True)
    table.finish()
    with table.checking():
        rules = DPoPRules(algorithms=algorithms, max_age=int(max_age), leeway=int(leeway))
    return DPoPSettings(enabled, rules)


def request_url(scheme: str, host: str, path: str) -> str:
    """The URI a request was sent to (no query), from its scheme, `Host` and encoded path."""
    return f"{scheme.lower()}://{host.strip()}{path if path.startswith('/') else '/' + path}"


def encoded_path(decoded: str, encoding: str) -> str:
    """A decoded path (WSGI `PATH_INFO`, latin-1; ASGI `path`, UTF-8) percent-encoded again."""
    return quote(decoded.encode(encoding, "replace"), safe="/:@!$&'()*+,;=-._~")
