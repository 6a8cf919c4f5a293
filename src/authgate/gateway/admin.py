"""The gateway's own endpoints, answered before any route: `/healthz` (the process serves),
`/readyz` (every issuer holds usable keys), `/metrics` (Prometheus), the JWKS of the
identity-token key (RFC 7517 §5), the RFC 9728 protected-resource metadata, and the forward-auth
endpoint. Paths are configurable; these paths are never proxied. The first four answer GET and
HEAD only (405 otherwise, RFC 9110 §15.5.6).

With `[admin] listen` (the rule of `authgate.config.admin`, shared with the server), the admin
listener answers the three probes and nothing else (404), and the public port keeps only the
health path: the ready and metrics paths are then ordinary paths there, given to the routes like
any other (a route that covers them forwards them; none: the usual refusal).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST

from authgate.config.admin import AdminSettings, Probe
from authgate.gateway import forward_auth, responses
from authgate.gateway.exchange import LocalAnswer, Verdict
from authgate.gateway.generation import Generation
from authgate.gateway.request_head import RequestHead

__all__ = ["AdminEndpoints"]

_READ = (b"GET", b"HEAD")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class AdminEndpoints:
    """Answers the gateway's own paths; `None` for every other request.

    `admin` is the `[admin]` table the process started with (its listener is not rebound on
    reload, so neither does the split between the ports change then)."""

    def __init__(self, metrics: Callable[[], bytes], admin: AdminSettings | None = None) -> None:
        self._metrics = metrics
        admin = admin or AdminSettings()
        self._public = frozenset(p for p in Probe if admin.on_public_port(p))

    def __call__(self, gen: Generation, head: RequestHead) -> Verdict | Awaitable[Verdict] | None:
        """The public port's answer for the gateway's own paths."""
        path = head.target.path
        settings = gen.settings
        check_path = settings.forward_auth_path
        if check_path is not None and (path == check_path or path.startswith(check_path + "/")):
            return forward_auth.check(gen, head, check_path)
        probe = self._probe(gen, head, self._public)
        if probe is not None:
            return probe
        resource = gen.config.gate.resource
        if resource is not None and path == resource.path:
            method = "GET" if head.method == b"HEAD" else head.method.decode("ascii")
            answer = resource.answer(method)  # HEAD: the GET answer, whose body render() drops
            return LocalAnswer.from_gate(answer, cache_control=b"max-age=3600")
        minter = gen.minter
        if minter is not None and path == minter.settings.jwks_path:
            return _read_only(head) or LocalAnswer(
                200,
                _json(minter.jwks()),
                content_type=b"application/jwk-set+json",
                cache_control=b"public, max-age=300",
            )
        return None

    def admin_port(self, gen: Generation, head: RequestHead) -> Verdict:
        """The admin listener's answer: a probe, or 404 for any other path."""
        probe = self._probe(gen, head, frozenset(Probe))
        return probe or LocalAnswer(404, responses.error_body(404, "the admin port serves probes"))

    def _probe(
        self, gen: Generation, head: RequestHead, served: frozenset[Probe]
    ) -> LocalAnswer | None:
        """The answer of the probe at `head`'s path, if it is one of `served`."""
        path = head.target.path
        settings = gen.settings
        if path == settings.health_path and Probe.HEALTH in served:
            return _read_only(head) or LocalAnswer(200, b'{"status":"ok"}')
        if path == settings.ready_path and Probe.READY in served:
            return _read_only(head) or _readiness(gen)
        if path == settings.metrics_path and Probe.METRICS in served:
            return _read_only(head) or LocalAnswer(
                200, self._metrics(), content_type=CONTENT_TYPE_LATEST.encode()
            )
        return None


def _read_only(head: RequestHead) -> LocalAnswer | None:
    if head.method in _READ:
        return None
    body = _json({"error": "method_not_allowed"})
    return LocalAnswer(405, body, [(b"Allow", b"GET, HEAD")])


def _readiness(gen: Generation) -> LocalAnswer:
    issuers = [
        {
            "issuer": s.issuer,
            "ready": s.ready,
            "status": str(s.status),
            "keys": s.keys,
            "key_age": None if s.key_age is None else round(s.key_age, 1),
            "last_error": s.last_error,
        }
        for s in gen.verifier.issuer_status()
    ]
    ready = gen.verifier.ready
    return LocalAnswer(200 if ready else 503, _json({"ready": ready, "issuers": issuers}))
