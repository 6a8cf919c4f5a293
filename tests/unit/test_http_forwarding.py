"""The client address behind trusted proxies (`authgate.http_forwarding`), shared by the server's
throttles and the gateway's logs."""

from __future__ import annotations

import pytest

from authgate.http_forwarding import TrustedProxies, client_address

PROXIES = ["10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("proxies", "peer", "xff", "expected"),
    [
        # No trusted proxies configured: the header is ignored whoever sends it.
        ([], "10.0.0.2", "198.51.100.1", "10.0.0.2"),
        # A peer that is not a trusted proxy cannot pick its own address.
        (PROXIES, "192.0.2.1", "10.0.0.1", "192.0.2.1"),
        (PROXIES, "10.0.0.2", None, "10.0.0.2"),
        (PROXIES, "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # The client's own (forged) entries are left of the one our proxy appended.
        (PROXIES, "10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (PROXIES, "10.0.0.2", "6.6.6.6, 198.51.100.1 ,10.0.0.9", "198.51.100.1"),
        (PROXIES, "2001:db8::5", "2001:db8::9, 203.0.113.4", "203.0.113.4"),
        (PROXIES, "::ffff:10.0.0.2", "203.0.113.4", "203.0.113.4"),
        # Every entry trusted: the left-most one.
        (PROXIES, "10.0.0.2", "10.1.1.1, 10.0.0.9", "10.1.1.1"),
    ],
)
def test_right_most_untrusted_entry(
    proxies: list[str], peer: str, xff: str | None, expected: str
) -> None:
    assert client_address(peer, xff, TrustedProxies(proxies)) == expected
