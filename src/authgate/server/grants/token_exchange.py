"""The token exchange grant (RFC 8693)."""

from __future__ import annotations

__all__ = ["TOKEN_EXCHANGE_GRANT"]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
