"""Shared helpers of the flow tests (a uniquely named module: test folders have no packages)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

NOW = 1_700_000_000
ISSUER = "https://auth.example.com"
_KEY = b"k" * 32


def keyed_hash(value: str) -> str:
    """Stands in for `ServerSecret.hash_token` (HMAC-SHA256, hex)."""
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class FakeClient:
    """The fields of a client that the flows read (`ClientPolicy`)."""

    client_id: str = "web-app"
    redirect_uris: tuple[str, ...] = ("https://app.example.com/callback",)
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    is_public: bool = False
    require_pkce: bool = False

    @property
    def pkce_required(self) -> bool:
        return self.is_public or self.require_pkce
