"""`[limits]` in the server's configuration: where the throttles count, and what they do while
Redis does not answer; errors name the key or variable and never show a Redis password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authgate.config import ConfigError
from authgate.limits import FailMode, refusal
from authgate.server.config import LimitSettings, LimitsSettings, LockoutSettings
from authgate.server.config_loader import load_config
from authgate.server.limits import ServerLimits

ENV = {"AUTHGATE_SECRET_KEY": "k" * 40}


def _load(tmp_path: Path, text: str, **env: str) -> object:
    file = tmp_path / "authgate.toml"
    file.write_text(text)
    return load_config(file, {**ENV, **env}).limits


def test_defaults_keep_the_throttles_in_the_database(tmp_path: Path) -> None:
    limits = load_config(None, ENV).limits
    assert limits.redis_url is None
    assert limits.throttle.on_store_failure is FailMode.CLOSED
    assert (limits.timeout, limits.retry_interval, limits.namespace) == (0.1, 1.0, "authgate")


def test_file_and_environment(tmp_path: Path) -> None:
    text = """
[limits]
redis_url = "redis://127.0.0.1:6379/1"
timeout = "250ms"
retry_interval = "2s"
namespace = "prod-a"

[limits.throttle]
on_store_failure = "open"
"""
    limits = _load(tmp_path, text)
    assert limits.redis_url == "redis://127.0.0.1:6379/1"  # type: ignore[attr-defined]
    assert limits.timeout == 0.25  # type: ignore[attr-defined]
    assert limits.namespace == "prod-a"  # type: ignore[attr-defined]
    assert limits.throttle.on_store_failure is FailMode.OPEN  # type: ignore[attr-defined]
    assert limits.token.rate == "6000/minute"  # type: ignore[attr-defined]
    token = _load(tmp_path, '[limits.token]\nrate = "5/second"\non_store_failure = "closed"')
    assert token.token.limit("token").rate.count == 5  # type: ignore[attr-defined]
    assert token.token.on_store_failure is FailMode.CLOSED  # type: ignore[attr-defined]
    assert token.token.burst == 600  # type: ignore[attr-defined] - a partial table keeps the rest
    secret_url = "redis://:s3cret-pw@10.0.0.5:6380/0"
    overridden = _load(tmp_path, text, AUTHGATE_LIMITS_REDIS_URL=secret_url)
    assert overridden.redis_url == secret_url  # type: ignore[attr-defined]
    assert "s3cret" not in repr(overridden)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[limits]\nredis_url = "http://:pw-123@h/"', "limits.redis_url"),
        ('[limits]\ntimeout = "0s"', "limits.timeout"),
        ('[limits]\ntimeout = "1h"', "limits.timeout"),
        ('[limits]\nnamespace = "Has Spaces"', "limits.namespace"),
        ('[limits]\nnamespace = "ü"', "limits.namespace"),
        ('[limits]\nredis_urll = "redis://h"', "redis_urll"),
        ('[limits.throttle]\non_store_failure = "maybe"', "limits.throttle.on_store_failure"),
        ("[limits.throttle]\non_store_failure = 1", "limits.throttle.on_store_failure"),
        ('[limits.throttle]\nrate = "1/s"', "rate"),
        ('[limits.token]\nrate = "10/fortnight"', "limits.token.*fortnight"),
        ('[limits.token]\nrate = "\u0661\u0660/minute"', "limits.token"),
        ("[limits.token]\nburst = 0", "limits.token.burst"),
        ('[limits.token]\nenabled = "yes"', "limits.token.enabled"),
        ('[limits.token]\non_store_failure = "sometimes"', "limits.token.on_store_failure"),
        ('[limits.token]\nrate = "1/day"\nburst = 400', "limits.token"),  # a bucket over a year
        ('[limits.tokens]\nrate = "1/second"', "limits.tokens"),
        ('[limits]\nheaders = "some"', "limits.headers"),
        ('[limits.authorize]\nrate = "many"', "limits.authorize"),
        ('[limits.introspection]\non_store_failure = "x"', "limits.introspection"),
        ("[limits.client_auth]\nfailures = 0", "limits.client_auth.failures"),
        ('[limits.client_auth]\nlockout = "2h"\nmax_lockout = "1h"', "limits.client_auth"),
        ('[limits.client_auth_address]\nmax_lockout = "2d"', "limits.client_auth_address"),
        ('[limits.client_auth_address]\nrate = "1/second"', "rate"),
    ],
)
def test_invalid_limits(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _load(tmp_path, text)
    assert "pw-123" not in str(caught.value)


def test_a_bad_url_from_the_environment_names_the_variable_not_the_password(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_LIMITS_REDIS_URL") as caught:
        _load(tmp_path, "", AUTHGATE_LIMITS_REDIS_URL="mysql://root:hunter2@db/")
    assert "hunter2" not in str(caught.value)


def test_registration_limit_from_file_and_environment(tmp_path: Path) -> None:
    defaults = load_config(None, ENV).limits.registration
    assert (defaults.rate, defaults.burst, defaults.on_store_failure) == (
        "20/hour",
        5,
        FailMode.CLOSED,
    )
    text = '[limits.registration]\nrate = "3/minute"\nburst = 2\non_store_failure = "open"\n'
    limits = load_config(_write(tmp_path, text), ENV).limits
    assert (limits.registration.rate, limits.registration.burst) == ("3/minute", 2)
    assert limits.registration.on_store_failure is FailMode.OPEN
    assert limits.token == load_config(None, ENV).limits.token  # the other limit untouched
    env = {**ENV, "AUTHGATE_LIMITS_REGISTRATION_ENABLED": "false"}
    assert not load_config(None, env).limits.registration.enabled
    with pytest.raises(ConfigError, match=r"limits\.registration"):
        load_config(_write(tmp_path, '[limits.registration]\nrate = "often"\n'), ENV)


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "authgate.toml"
    file.write_text(text)
    return file


async def test_open_registration_is_counted_per_caller_address() -> None:
    settings = LimitsSettings(registration=LimitSettings("2/hour", burst=2))
    limits = ServerLimits.for_config(settings)
    try:
        first = [await limits.address_request("registration", "192.0.2.1") for _ in range(3)]
        assert [bool(refusal(d)) for d in first] == [False, False, True]
        assert not refusal(await limits.address_request("registration", "192.0.2.2"))
        # One IPv6 subscriber (a /64) is one caller.
        await limits.address_request("registration", "2001:db8::1")
        await limits.address_request("registration", "2001:db8::2")
        assert refusal(await limits.address_request("registration", "2001:db8::3"))
    finally:
        await limits.aclose()
    off = ServerLimits.for_config(
        LimitsSettings(registration=LimitSettings("1/hour", enabled=False))
    )
    try:
        assert await off.address_request("registration", "192.0.2.1") == []
    finally:
        await off.aclose()


def test_every_limit_and_lockout_is_configured_in_its_table(tmp_path: Path) -> None:
    text = """
[limits]
headers = "all"

[limits.authorize]
rate = "50/minute"
on_store_failure = "closed"

[limits.revocation]
enabled = false

[limits.client_auth]
failures = 5
window = "15m"
lockout = "30s"
max_lockout = "1h"
on_store_failure = "closed"

[limits.client_auth_address]
enabled = false
"""
    limits: Any = _load(tmp_path, text)
    assert limits.headers == "all"
    assert limits.authorize.limit("authorize").rate.count == 50
    assert limits.authorize.on_store_failure is FailMode.CLOSED
    assert limits.revocation.limit("revocation") is None
    assert limits.consent == LimitsSettings().consent  # untouched tables keep their defaults
    assert limits.client_auth == LockoutSettings(5, 900, 30, 3600, FailMode.CLOSED)
    assert not limits.client_auth_address.enabled
    env = _load(tmp_path, "", AUTHGATE_LIMITS_CLIENT_AUTH_FAILURES="4")
    assert env.client_auth.failures == 4  # type: ignore[attr-defined]
