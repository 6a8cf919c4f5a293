"""Grant handlers, one module per grant type, registered by `grant_type`."""

from authgate.server.grants.base import GrantHandler, TokenResponse
from authgate.server.grants.client_credentials import ClientCredentialsGrant

__all__ = ["ClientCredentialsGrant", "GrantHandler", "TokenResponse"]

# The grant types this server implements (what `client create --grant` accepts).
GRANT_TYPES = (ClientCredentialsGrant.grant_type,)
