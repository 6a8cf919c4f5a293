"""Pushed authorization requests (RFC 9126): what a pushed request keeps, its `request_uri`, and how
the authorization endpoint turns a `request_uri` back into the pushed parameters.

The pushed parameters are validated at /par by the very parser of /authorize
(`authorization_request.parse_authorization_request`) and validated again when used, so there is
one set of rules. A `request_uri` is `urn:ietf:params:oauth:request_uri:` and 256 random bits; only
its keyed hash is stored. It is used once (§4: "one-time use"; a reload of the authorization page
does not get a second chance), only by the client that pushed it, before `expires_in` ends.

At the authorization endpoint the pushed parameters are the only ones that count: RFC 9126 §4
builds the request as RFC 9101 does, whose §5 and §6.3 say the server "MUST only use" the
referenced parameters while a client MAY repeat them in the query (OpenID Connect clients repeat
`response_type` and `scope`). So every other front-channel parameter is ignored - a `redirect_uri`,
`scope`, `state` or `prompt` smuggled into the browser's URL never takes effect - except what RFC
9101 §5 forbids outright: `request` beside `request_uri`, and `request_uri` repeated. `client_id`
must name the client that pushed the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from authgate.oauth.errors import InvalidRequest, InvalidRequestUri, RequestNotSupported
from authgate.server.flows.authorization_request import READ_PARAMETERS, PageError
from authgate.server.models import PushedRequest
from authgate.server.secret_key import generate_token
from authgate.server.storage.protocols import PushedRequestStore

__all__ = [
    "MAX_LIFETIME",
    "REQUEST_URI_PREFIX",
    "new_pushed_request",
    "pushed_parameters",
    "use_request_uri",
]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"  # RFC 9126 §2.2
MAX_LIFETIME = 599  # "short lived", under ten minutes (RFC 9126 §2.2: 5 to 600 s)
_MAX_REFERENCE = 64  # ours are 43 characters


def pushed_parameters(pairs: Iterable[tuple[str, str]], client_id: str) -> list[tuple[str, str]]:
    """The authorization parameters of a request to /par, for `client_id` (the authenticated
    client). Raises `InvalidRequest` or `RequestNotSupported`.

    Client-authentication parameters and unrecognised ones are left out (RFC 6749 §3.1); a
    `client_id` other than the authenticated client's has already been refused by client
    authentication, and is added when the client authenticated without one (RFC 9126 §2.1)."""
    kept = [(name, value) for name, value in pairs if name in READ_PARAMETERS]
    names = {name for name, _ in kept}
    if "request_uri" in names:
        raise InvalidRequest("request_uri must not be pushed (RFC 9126 §2.1)")
    if "request" in names:
        # A pushed request object (RFC 9126 §3) needs JAR, which this server does not implement.
        raise RequestNotSupported("request objects are not supported; push the parameters")
    if any(name == "client_id" and value != client_id for name, value in kept):
        raise InvalidRequest("client_id does not match the authenticated client")
    if "client_id" not in names:
        kept.insert(0, ("client_id", client_id))
    return kept


def new_pushed_request(
    params: Sequence[tuple[str, str]],
    *,
    client_id: str,
    hash_token: Callable[[str], str],
    now: int,
    lifetime: int,
) -> tuple[str, PushedRequest]:
    """A new `request_uri` and the record to store under the hash of its random part."""
    reference = generate_token()
    record = PushedRequest(
        uri_hash=hash_token(reference),
        client_id=client_id,
        params=tuple(params),
        created_at=now,
        expires_at=now + lifetime,
    )
    return REQUEST_URI_PREFIX + reference, record


async def use_request_uri(
    front_channel: Sequence[tuple[str, str]],
    client_id: str,
    store: PushedRequestStore,
    *,
    hash_token: Callable[[str], str],
    now: int,
) -> list[tuple[str, str]]:
    """The pushed parameters named by the front channel's `request_uri`, used up; every other
    front-channel parameter is ignored (see the module docstring). `PageError` when `request` or a
    second `request_uri` is sent (RFC 9101 §5), or the `request_uri` is not a live request of
    `client_id` (unknown, used, expired, or pushed by another client). The error is shown to the
    user, never redirected: the redirect URI is among the parameters not found."""
    if any(name == "request" for name, _ in front_channel):
        raise PageError(InvalidRequest("request must not be sent with request_uri (RFC 9101 §5)"))
    uris = [value for name, value in front_channel if name == "request_uri"]
    if len(uris) != 1:
        raise PageError(InvalidRequest("request_uri must not be repeated"))
    reference = uris[0].removeprefix(REQUEST_URI_PREFIX)
    record = None
    if reference != uris[0] and 0 < len(reference) <= _MAX_REFERENCE:
        record = await store.use_pushed_request(hash_token(reference), client_id, now)
    if record is None:
        raise PageError(
            InvalidRequestUri("request_uri is unknown, expired, already used, or another client's")
        )
    return list(record.params)
