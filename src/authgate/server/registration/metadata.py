"""Client metadata of dynamic registration: read from a request's JSON (RFC 7591 §2, §3.1;
RFC 7592 §2.2) and written back in the client information response (RFC 7591 §3.2.1).

Only the shape is checked here (types, sizes, `response_types`, the members an update must not
carry); the rules of what may be registered are the CLI's (`admin.registry.checked_client`), so a
client is held to the same rules however it is registered. Metadata this server does not use
(`client_uri`, `logo_uri`, `contacts`, `software_statement`, ...) is ignored, as RFC 7591 §2 says
of unknown metadata, and is not echoed back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authgate.oauth.errors import InvalidClientMetadata
from authgate.server.admin.registry import uses_secret
from authgate.server.grants import DEVICE_CODE_GRANT
from authgate.server.models import Client
from authgate.server.targets.identity_scopes import IDENTITY_SCOPES

__all__ = [
    "MAX_LIST",
    "ClientMetadata",
    "client_information",
    "parse_json_object",
    "read_metadata",
    "response_scope",
]

MAX_LIST = 20  # redirect URIs, grant types, response types, scopes
_MAX_TEXT = 2048
# RFC 7592 §2.2: the server's own fields, never sent back by the client in an update.
_SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
_DEFAULT_NAME = "unnamed client"


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """The metadata of one registration or update request, with RFC 7591 §2's defaults."""

    client_name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    token_endpoint_auth_method: str
    application_type: str
    scopes: tuple[str, ...]
    jwks: Mapping[str, Any] | None
    jwks_uri: str | None
    # OpenID Connect Registration §2: how its ID tokens are signed (RS256 unless it says).
    id_token_signed_response_alg: str = "RS256"
    # RFC 7592 §2.2 (update): the client's own id, and its current secret if it sends it.
    client_id: str | None = None
    client_secret: str | None = None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; `InvalidClientMetadata` for anything else (invalid UTF-8 or
    JSON, another JSON type, a member named twice, nesting too deep)."""
    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_members)
    except UnicodeDecodeError:
        raise InvalidClientMetadata("the body must be UTF-8 JSON") from None
    except _DuplicateMember as exc:
        raise InvalidClientMetadata(f"member {exc.name!r} appears twice") from None
    except (ValueError, RecursionError):
        raise InvalidClientMetadata("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidClientMetadata("the body must be a JSON object of client metadata")
    if not _storable(document):
        # Lone surrogates (valid escapes, not UTF-8) and NUL cannot be stored or answered.
        raise InvalidClientMetadata("strings must be UTF-8 text without NUL characters")
    return document


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


class _DuplicateMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name[:64]


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 §4: names SHOULD be unique; parsers disagree on which duplicate wins, so a
    # document with one is refused rather than read one way here and another way elsewhere.
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise _DuplicateMember(name)
        document[name] = value
    return document


def read_metadata(document: Mapping[str, Any], *, update: bool = False) -> ClientMetadata:
    """The metadata in `document`; `InvalidClientMetadata` naming the member that is wrong.
    `update`: an RFC 7592 §2.2 update, which must carry `client_id` and none of the server's
    own fields."""
    if update:
        for field in _SERVER_FIELDS:
            if field in document:
                raise InvalidClientMetadata(
                    f"{field} must not be sent in an update (RFC 7592 §2.2)"
                )
        if not isinstance(document.get("client_id"), str):
            raise InvalidClientMetadata("an update must carry the client's client_id")
    grant_types = _strings(document, "grant_types", ("authorization_code",))
    code = "authorization_code" in grant_types
    # RFC 7591 §2.1: "code" goes with authorization_code; this server issues no other type.
    response_types = _strings(document, "response_types", ("code",) if code else ())
    unsupported = [t for t in response_types if t != "code"]
    if unsupported:
        raise InvalidClientMetadata(
            f"response_types: {unsupported[0][:64]!r} is not supported; only code"
        )
    if code != ("code" in response_types):
        raise InvalidClientMetadata(
            "grant_types and response_types disagree: authorization_code goes with the code "
            "response type, and code with authorization_code (RFC 7591 §2.1)"
        )
    client_name = _text(document, "client_name")
    application_type = _text(document, "application_type") or "web"  # OIDC Registration §2
    jwks = document.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise InvalidClientMetadata("jwks must be a JSON object (a JWK Set)")
    scope = _text(document, "scope")
    scopes = tuple(dict.fromkeys(scope.split(" "))) if scope else ()
    if "" in scopes or len(scopes) > MAX_LIST:
        raise InvalidClientMetadata(
            f"scope must be at most {MAX_LIST} scope tokens separated by single spaces"
        )
    return ClientMetadata(
        client_name=client_name or _DEFAULT_NAME,
        redirect_uris=_strings(document, "redirect_uris", ()),
        post_logout_redirect_uris=_strings(document, "post_logout_redirect_uris", ()),
        grant_types=grant_types,
        token_endpoint_auth_method=_text(document, "token_endpoint_auth_method")
        or "client_secret_basic",
        application_type=application_type,
        scopes=scopes,
        jwks=jwks,
        jwks_uri=_text(document, "jwks_uri"),
        id_token_signed_response_alg=_text(document, "id_token_signed_response_alg") or "RS256",
        client_id=_text(document, "client_id") if update else None,
        client_secret=_text(document, "client_secret") if update else None,
    )


def _text(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise InvalidClientMetadata(f"{name} must be a non-empty string of at most {_MAX_TEXT}")
    return value


def _strings(document: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST
        or not all(isinstance(v, str) and 0 < len(v) <= _MAX_TEXT for v in value)
    ):
        raise InvalidClientMetadata(
            f"{name} must be an array of at most {MAX_LIST} non-empty strings"
        )
    return tuple(dict.fromkeys(value))


def response_scope(client: Client) -> str:
    """The `scope` of the client information: the API scopes it may request, and the identity
    scopes when it uses a user-facing flow (every such client may request them)."""
    scopes = [scope for entry in client.access for scope in entry.scopes]
    if "authorization_code" in client.grant_types or DEVICE_CODE_GRANT in client.grant_types:
        scopes += sorted(IDENTITY_SCOPES)
    return " ".join(dict.fromkeys(scopes))


def client_information(
    client: Client,
    *,
    registration_client_uri: str,
    client_secret: str | None = None,
    registration_access_token: str | None = None,
) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the registered
    metadata, with the secret and the registration access token when just issued."""
    info: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "application_type": client.application_type or "web",
        "redirect_uris": list(client.redirect_uris),
        "registration_client_uri": registration_client_uri,
    }
    if client.post_logout_redirect_uris:
        info["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    scope = response_scope(client)
    if scope:
        info["scope"] = scope
    if client.id_token_alg != "RS256":  # absent: RS256 (OpenID Connect Registration §2)
        info["id_token_signed_response_alg"] = client.id_token_alg
    if client.jwks is not None:
        info["jwks"] = dict(client.jwks)
    if client.jwks_uri is not None:
        info["jwks_uri"] = client.jwks_uri
    if uses_secret(client.auth_method):
        info["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: 0, the secret does not expire
    if client_secret is not None:
        info["client_secret"] = client_secret
    if registration_access_token is not None:
        info["registration_access_token"] = registration_access_token
    return info


def requested_identity_scopes(scopes: Sequence[str]) -> list[str]:
    """The identity scopes among `scopes` (granted to user-flow clients without registration)."""
    return [s for s in scopes if s in IDENTITY_SCOPES]
