"""The gate's fixtures (loopback issuer, test issuer, manual clock): `support.gate_fixtures`."""

from tests.support.gate_fixtures import clock, issuer_server, test_issuer

__all__ = ["clock", "issuer_server", "test_issuer"]
