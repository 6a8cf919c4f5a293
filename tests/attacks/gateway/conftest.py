"""The gateway's session fixtures (issuer, upstream, gateway): `support.gateway_fixtures`."""

from tests.support.gateway_fixtures import gateway, issuer, upstream

__all__ = ["gateway", "issuer", "upstream"]
