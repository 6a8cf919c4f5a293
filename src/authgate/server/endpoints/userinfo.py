"""The userinfo endpoint (OpenID Connect Core §5.3; RFC 6750 §2-§3).

A protected resource of this server: the access token comes in the `Authorization: Bearer` header
(or, on POST, as `access_token` in an urlencoded body; never in the query), or a DPoP-bound one in
`Authorization: DPoP` with its proof (RFC 9449 §7; a bound token sent as Bearer is refused). It
must be one of our active access tokens, issued to a client that still exists, for a user, with
the `openid` scope. The answer holds `sub` and the claims the token's scopes release
(`tokens.id_tokens`). Refusals are RFC 6750 answers: 401 with a `Bearer` challenge (and a `DPoP`
one naming the algorithms), 403 `insufficient_scope`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.gate import CredentialRules, error_answer, extract_credential
from authgate.gate.challenge import Schemes
from authgate.oauth.errors import InsufficientScope, OAuthError
from authgate.oauth.scope import split_scope
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.responses import json_response
from authgate.server.http.forms import read_body
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.targets.identity_scopes import OPENID
from authgate.server.tokens.id_tokens import userinfo_claims
from authgate.verifier.confirmation import check_binding
from authgate.verifier.core import BearerCredential, DPoPCredential
from authgate.verifier.errors import Reason, TokenRejected

__all__ = ["userinfo_endpoint"]

_RULES = CredentialRules(bearer_methods=frozenset({"header", "body"}), dpop=True)
_FORM = "application/x-www-form-urlencoded"


async def userinfo_endpoint(request: Request) -> Response:
    """GET or POST /userinfo."""
    server: AuthServer = request.app.state.authgate
    try:
        claims = await _claims(server, request)
    except OAuthError as exc:
        dpop = server.dpop
        algs = " ".join(dpop.algorithms) if dpop is not None else None
        used = request.headers.get("authorization", "").lower().startswith("dpop ")
        schemes = Schemes(bearer=True, dpop_algs=algs, dpop_used=used)
        answer = error_answer(exc, realm=server.config.issuer, schemes=schemes)
        return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))
    return json_response(claims)


async def _claims(server: AuthServer, request: Request) -> dict[str, object]:
    body = None
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        body = await read_body(request, server.config.http.max_body_size)
    credential = extract_credential(request.headers.items(), request.url.query, body, _RULES)
    if not isinstance(credential, BearerCredential):
        raise TokenRejected(Reason.MISSING)
    jkt = None
    if isinstance(credential, DPoPCredential) and server.dpop is not None:
        jkt = await server.dpop.resource_key(
            request.headers.getlist("dpop"),
            method=request.method,
            uri=server.config.endpoint(ENDPOINT_PATHS["userinfo"]),
            access_token=credential.token,
        )
    info = await server.inspector.find(credential.token)
    if info is None or not info.active or info.kind != "access_token":
        raise TokenRejected(Reason.INACTIVE)
    # RFC 9449 §7.1-§7.2: a bound token only with a proof by its key; an unbound one as Bearer.
    check_binding({"cnf": {"jkt": info.jkt}} if info.jkt is not None else {}, jkt)
    request.state.client_id = info.client_id
    scopes = split_scope(info.scope)  # RFC 6749 §3.3: U+0020 separates, nothing else
    if OPENID not in scopes:
        raise InsufficientScope("the token was not issued for OpenID Connect", scope=OPENID)
    user = await server.registry.get_user(info.subject)
    if user is None or await server.registry.get_client(info.client_id) is None:
        raise TokenRejected(Reason.INACTIVE)
    return userinfo_claims(user, scopes)
