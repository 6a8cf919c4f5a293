"""The forward-auth endpoint for proxies people already run: nginx `auth_request`, Traefik
ForwardAuth, Envoy HTTP `ext_authz` (RFC 6750 §3 answers).

The original request is read from `X-Original-Method`/`X-Original-URI` (nginx) or
`X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik). Envoy sends the original method and path as the
check request's own, after the endpoint's path: `/_authgate/check/orders/7` judges `/orders/7`.
A request that uses two of these ways at once (a path after the endpoint's and any of the fields,
or fields of both conventions) is refused with 400: one of them may be the client's own.
The same routes and policy apply; the credentials are the check request's (the proxy passes the
client's headers). The answer is 200 with the identity fields (`X-Auth-*`, and `X-Auth-Token` when
configured) for the proxy to copy upstream, all of them present and empty when unknown, or
401/403 with `WWW-Authenticate`, or 503; on a rate-limited route 429 with `Retry-After` and the
RateLimit fields (which the 200 carries too), as the proxy itself answers (docs/gateway.md shows
the nginx lines that turn its 500 for an unexpected status back into the 429).
"""

from __future__ import annotations

from collections.abc import Awaitable

from authgate.gate import Decision
from authgate.gateway.exchange import LocalAnswer, Verdict
from authgate.gateway.generation import FORWARD_AUTH, Generation, finish_when_decided
from authgate.gateway.identity import IDENTITY_FIELDS
from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import (
    BadRequestTargetError,
    RequestTarget,
    parse_request_target,
)

__all__ = ["check", "original_request"]


# (URI field, method field) of each convention: nginx, then Traefik.
_CONVENTIONS = (
    (b"x-original-uri", b"x-original-method"),
    (b"x-forwarded-uri", b"x-forwarded-method"),
)
_ALL_FIELDS = frozenset(name for pair in _CONVENTIONS for name in pair)


def original_request(head: RequestHead, endpoint_path: str) -> tuple[str, RequestTarget]:
    """The method and target of the request being judged; `BadRequestTargetError` when unusable.

    The method and URI come from one convention's pair of fields. Proxies pass the client's other
    headers on (Traefik passes them all), so a field of the other convention, or a repeated one,
    may be the client's own forgery (`X-Original-URI: /public` on a request for `/admin`): such a
    request is refused rather than judged by a path that is not the one being served.
    """
    fields = head.fields
    if any(name in head.repeated for name in _ALL_FIELDS):
        raise BadRequestTargetError("a forward-auth field is repeated")
    present = [pair for pair in _CONVENTIONS if pair[0] in fields or pair[1] in fields]
    if len(present) > 1:
        raise BadRequestTargetError(
            "both X-Original-* and X-Forwarded-Uri/-Method are present: the origin is ambiguous"
        )
    rest = head.target.path[len(endpoint_path) :]
    if rest and present:
        # Envoy's path is the request being served, and Envoy copies the client's fields that
        # its `allowed_headers` admit (a `prefix: "x-"` matcher admits these): one of them may
        # be the client's forgery of a harmless request. Ambiguous, so refused like the above.
        raise BadRequestTargetError(
            "the original request is given both after the endpoint's path and in "
            "X-Original-*/X-Forwarded-Uri/-Method fields: the origin is ambiguous"
        )
    if present:
        uri_field, method_field = present[0]
        uri, method = fields.get(uri_field), fields.get(method_field)
        if uri is None or method is None:
            raise BadRequestTargetError(
                "the original request needs both its URI and its method "
                "(X-Original-URI and X-Original-Method, or X-Forwarded-Uri and X-Forwarded-Method)"
            )
    else:
        if not rest.startswith("/"):
            raise BadRequestTargetError(
                "the original URI is missing (X-Original-URI or X-Forwarded-Uri)"
            )
        uri = rest.encode("ascii") + (b"?" + head.target.query if head.target.query else b"")
        method = head.method
    method_text = method.strip().decode("latin-1").upper()
    if not method_text.isalpha() or not method_text.isascii():
        raise BadRequestTargetError("the original method is not a valid method name")
    return method_text, parse_request_target(uri.strip())


def check(gen: Generation, head: RequestHead, endpoint_path: str) -> Verdict | Awaitable[Verdict]:
    """Judge the original request and answer as the calling proxy expects."""
    try:
        method, target = original_request(head, endpoint_path)
    except BadRequestTargetError as exc:
        return gen.answer_error(FORWARD_AUTH, head, 400, str(exc))
    head.log["original_path"] = target.path
    decided = gen.judge(method, target, head)
    if isinstance(decided, Decision):
        return _answer(gen, head, decided)
    return finish_when_decided(decided, lambda d: _answer(gen, head, d))


def _answer(gen: Generation, head: RequestHead, decision: Decision) -> Verdict:
    if not decision.allowed:
        return gen.answer_refusal(FORWARD_AUTH, head, decision)
    principal = decision.principal
    upstream = gen.upstream_of(decision)
    given = gen.identity_for(principal, upstream) if principal is not None else []
    # Every identity field is present, empty when unknown: a proxy that copies the answer's
    # fields (Traefik's authResponseHeaders, nginx's auth_request_set) then overwrites whatever
    # the client sent under those names instead of letting it through.
    names = {name.lower() for name, _ in given}
    headers = given + [
        (name, b"") for name in _all_identity_names(gen) if name.lower() not in names
    ]
    if principal is not None:
        head.log["subject"] = principal.subject
    if decision.rate_limit is not None:
        headers += gen.rate_limit_fields(decision)
    answer = LocalAnswer(200, b"", headers)
    return gen.record_answer(FORWARD_AUTH, head, decision.outcome.value, answer)


def _all_identity_names(gen: Generation) -> tuple[bytes, ...]:
    names = IDENTITY_FIELDS
    return (*names, gen.minter.header_name) if gen.minter is not None else names
