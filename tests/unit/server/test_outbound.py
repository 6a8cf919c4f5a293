"""The outbound fetcher's URL and address rules (`authgate.server.outbound`); the fetches
themselves are attacked in tests/attacks/server/test_outbound_fetch.py."""

from __future__ import annotations

import pytest

from authgate.server.outbound import address_problem, url_problem


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://client.example/doc.json", None),
        ("https://client.example:8443/doc.json", None),
        ("http://client.example/doc.json", "must use https"),
        ("http://127.0.0.1/doc.json", "must use https"),  # only with the development switch
        ("ftp://client.example/doc.json", "must use https"),
        ("https://user:pw@client.example/doc.json", "must not contain a user name or password"),
        ("https://client.example/doc.json#x", "must not contain a fragment"),
        ("https:///doc.json", "must be an absolute URL in ASCII"),
        ("https://clïent.example/", "must be an absolute URL in ASCII"),
        ("https://client.example:99999/", "is not a valid URL"),
    ],
)
def test_url_rules(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem


def test_the_development_switch_allows_http_to_loopback_only() -> None:
    assert url_problem("http://127.0.0.1:8080/doc", allow_loopback=True) is None
    assert url_problem("http://localhost/doc", allow_loopback=True) is None
    assert url_problem("http://client.example/doc", allow_loopback=True) == "must use https"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private or reserved address"),
        ("172.16.0.1", "a private or reserved address"),
        ("192.168.0.1", "a private or reserved address"),
        ("100.64.0.1", "a private or reserved address"),
        ("fd12::1", "a private or reserved address"),
        ("240.0.0.1", "a private or reserved address"),
        ("169.254.0.1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - the address under test
        ("::", "an unspecified address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("2002:a9fe:a9fe::1", "a cloud metadata address"),  # 6to4 of 169.254.169.254
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
    ],
)
def test_address_rules(address: str, problem: str | None) -> None:
    assert address_problem(address) == problem


def test_the_development_switch_allows_loopback_and_nothing_else() -> None:
    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("::1", allow_loopback=True) is None
    assert address_problem("10.0.0.1", allow_loopback=True) == "a private or reserved address"
    assert address_problem("169.254.169.254", allow_loopback=True) == "a cloud metadata address"
