"""Administration of APIs, clients, users, remembered consent and token revocation; the CLI is a
thin shell."""

from authgate.server.admin.consents import (
    ConsentRecord,
    ConsentRevocation,
    list_consents,
    revoke_consent,
)
from authgate.server.admin.registry import (
    UNCHANGED,
    AdminError,
    ClientDeletion,
    Unchanged,
    create_api,
    create_client,
    create_user,
    delete_api,
    delete_client,
    delete_user,
    resolve_scope_specs,
    rotate_client_secret,
    set_user_password,
    update_user_profile,
)
from authgate.server.admin.revocation import (
    SessionsRevoked,
    TokenRevocation,
    revoke_client_tokens,
    revoke_token,
    revoke_user_sessions,
)

__all__ = [
    "UNCHANGED",
    "AdminError",
    "ClientDeletion",
    "ConsentRecord",
    "ConsentRevocation",
    "SessionsRevoked",
    "TokenRevocation",
    "Unchanged",
    "create_api",
    "create_client",
    "create_user",
    "delete_api",
    "delete_client",
    "delete_user",
    "list_consents",
    "resolve_scope_specs",
    "revoke_client_tokens",
    "revoke_consent",
    "revoke_token",
    "revoke_user_sessions",
    "rotate_client_secret",
    "set_user_password",
    "update_user_profile",
]
