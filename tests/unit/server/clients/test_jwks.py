"""Which jwks_uri may be registered: `check_jwks_uri` for every client, and
`check_remote_jwks_uri` for one a client registered itself (no fetches to internal hosts)."""

from __future__ import annotations

import pytest

from authgate.server.clients.jwks import check_jwks_uri, check_remote_jwks_uri


@pytest.mark.parametrize(
    "uri",
    ["https://keys.example.test/jwks.json", "https://93.184.216.34/jwks", "https://[2001:db8::1]/"],
)
def test_public_https_uris_pass_both(uri: str) -> None:
    assert check_jwks_uri(uri) is None
    # 2001:db8::/32 is documentation space: not global.
    expected_global = "2001:db8" not in uri
    assert (check_remote_jwks_uri(uri) is None) == expected_global


@pytest.mark.parametrize(
    "uri", ["https://user:pw@keys.example.test/jwks", "https://user@keys.example.test/"]
)
def test_userinfo_is_refused_for_every_client(uri: str) -> None:
    assert check_jwks_uri(uri) == "jwks_uri must not contain a user name or password"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8080/jwks",  # the CLI's operator may name a loopback service
        "https://127.0.0.1/jwks",
        "https://localhost/jwks",
        "https://app.localhost/jwks",
        "https://10.1.2.3/jwks",
        "https://192.168.0.1/jwks",
        "https://169.254.169.254/latest",
        "https://[::1]/jwks",
        "https://[fe80::1]/jwks",
        "https://0.0.0.0/jwks",
    ],
)
def test_registered_clients_may_not_name_internal_hosts(uri: str) -> None:
    assert check_remote_jwks_uri(uri) is not None
