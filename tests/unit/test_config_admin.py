"""`[admin]`, shared by the server and the gateway: the address, and which probes stay public."""

from __future__ import annotations

import pytest

from authgate.config import ConfigError
from authgate.config.admin import AdminSettings, Probe, parse_address


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:9100", ("127.0.0.1", 9100)), ("[::1]:1", ("::1", 1)), ("h:65535", ("h", 65535))],
)
def test_an_address_is_host_and_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text, "admin.listen") == address


@pytest.mark.parametrize(
    "text", ["9100", ":9100", "127.0.0.1", "127.0.0.1:0", "h:65536", "h:-1", "h:9x", "[]:1", ""]
)
def test_anything_else_is_refused_naming_the_key(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        AdminSettings(listen=text)
    assert (info.value.key, info.value.reason) == (
        "admin.listen",
        "must be HOST:PORT, such as 127.0.0.1:9100",
    )


def test_with_a_listener_only_liveness_stays_public() -> None:
    assert all(AdminSettings().on_public_port(probe) for probe in Probe)
    apart = AdminSettings(listen="127.0.0.1:9100")
    assert [p for p in Probe if apart.on_public_port(p)] == [Probe.HEALTH]
