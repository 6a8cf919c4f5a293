"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3; RFC 9700 §4.11 on open
redirects).

The end-session endpoint always asks the user to confirm with a CSRF-protected form, because any
site can send a browser to it. After logout the browser goes to `post_logout_redirect_uri` only when
that URI is registered for the client the request names (by `client_id` or by the audience of a
verified `id_token_hint`; both must agree when both are given), matched like a redirect URI;
`state` is echoed. Otherwise no redirect happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from authgate.oauth.errors import InvalidRequest
from authgate.server.flows.redirect_uris import add_query, match_redirect_uri

__all__ = ["LogoutRequest", "parse_logout_request", "post_logout_redirect"]

_FIELDS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint")
_MAX_LENGTH = 8192  # an ID token hint can be long
_VSCHAR = re.compile(r"[\x20-\x7e]+")


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """The parameters of an end-session request (RP-Initiated Logout 1.0 §2)."""

    id_token_hint: str | None
    client_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None


def parse_logout_request(pairs: Iterable[tuple[str, str]]) -> LogoutRequest:
    """Read the request's parameters; `InvalidRequest` (for the error page) when one is repeated
    or malformed. Empty values count as absent; unknown parameters are ignored."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _FIELDS or not value:
            continue
        if name in values:
            raise InvalidRequest(f"{name} must not be repeated")
        if len(value) > _MAX_LENGTH or _VSCHAR.fullmatch(value) is None:
            raise InvalidRequest(f"{name} is malformed")
        values[name] = value
    return LogoutRequest(
        id_token_hint=values.get("id_token_hint"),
        client_id=values.get("client_id"),
        post_logout_redirect_uri=values.get("post_logout_redirect_uri"),
        state=values.get("state"),
    )


def post_logout_redirect(
    request: LogoutRequest,
    *,
    hint_client_id: str | None,
    registered: Sequence[str],
) -> str | None:
    """Where to send the browser after logout, or None to show the signed-out page.

    `hint_client_id`: the `aud` (or `azp`) of the `id_token_hint` after the caller verified its
    signature and issuer (expiry may be ignored, §2). `registered`: the post-logout redirect URIs
    of the client so identified. Raises `InvalidRequest` when `client_id` and the hint disagree,
    or a `post_logout_redirect_uri` is given for no identified client or is not registered.
    """
    if request.client_id and hint_client_id and request.client_id != hint_client_id:
        raise InvalidRequest("client_id does not match the id_token_hint")
    uri = request.post_logout_redirect_uri
    if uri is None:
        return None
    if not (request.client_id or hint_client_id):
        raise InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint")
    matched = match_redirect_uri(uri, registered)
    if matched is None:
        raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
    return add_query(matched, {"state": request.state} if request.state else {})
