"""Grant handlers, one module per grant type, registered by `grant_type`."""

from authgate.server.grants.authorization_code import AuthorizationCodeGrant
from authgate.server.grants.base import GrantHandler, TokenAnswer, TokenResponse
from authgate.server.grants.client_credentials import ClientCredentialsGrant
from authgate.server.grants.device_code import DEVICE_CODE_GRANT, DeviceCodeGrant
from authgate.server.grants.refresh_token import RefreshTokenGrant
from authgate.server.grants.token_exchange import TOKEN_EXCHANGE_GRANT, TokenExchangeGrant
from authgate.server.grants.user_tokens import UserTokens

__all__ = [
    "DEVICE_CODE_GRANT",
    "GRANT_TYPES",
    "TOKEN_EXCHANGE_GRANT",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "DeviceCodeGrant",
    "GrantHandler",
    "RefreshTokenGrant",
    "TokenAnswer",
    "TokenExchangeGrant",
    "TokenResponse",
    "UserTokens",
]

# The grant types this server implements (what `client create --grant` accepts). The implicit
# and password grants are not offered (RFC 9700 §2.1.2, §2.4).
GRANT_TYPES = (
    ClientCredentialsGrant.grant_type,
    AuthorizationCodeGrant.grant_type,
    RefreshTokenGrant.grant_type,
    DeviceCodeGrant.grant_type,
    TokenExchangeGrant.grant_type,
)
