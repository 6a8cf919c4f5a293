"""The log scan of the end-to-end suite: every test's server-side log records, and every
`authgate serve` process's log (run with `--log-format json`), must hold no access token, refresh
token, code, client secret, password, user code, device code or cookie value.

Secrets a test knows are checked by value (`assert_no_secrets`); for the rest, every line is
searched for what a credential looks like here: a JWT, or a run of 40+ base64url characters (the
server's opaque tokens, codes, device codes, client secrets and cookie values are 32 random bytes
or more, written in base64url)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from authgate.server.observability.logs import JsonLogFormatter, RequestIdFilter

__all__ = ["assert_no_secrets", "captured_server_logs", "credential_like", "scan_serve_log"]

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_LONG_RANDOM = re.compile(r"[A-Za-z0-9_-]{40,}")
_SERVER_SIDE = ("authgate", "uvicorn", "sqlalchemy", "starlette")
# Public values of that shape that the server does log: signing key ids (RFC 7638 thumbprints),
# in key-schedule lines and in the audit lines of key events.
_PUBLIC = re.compile(r"(signing key |key\.[a-z_]+ subject=)[A-Za-z0-9_-]{40,}")


def credential_like(text: str) -> list[str]:
    """The substrings of `text` shaped like a JWT or a long random credential."""
    text = _PUBLIC.sub(r"\1KID", text)
    return _JWT.findall(text) + _LONG_RANDOM.findall(text)


def assert_no_secrets(lines: Iterable[str], secrets: Iterable[str] = ()) -> None:
    """No line holds one of `secrets` or anything credential-shaped."""
    known = [s for s in secrets if s]
    for line in lines:
        leaked = [s for s in known if s in line] + credential_like(line)
        assert not leaked, f"credential in log line: {line!r}"


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLogFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_SERVER_SIDE):
            # The raw message too: the JSON lines mask JWTs, which must not be there at all.
            self.lines += [record.getMessage(), self.format(record)]


@pytest.fixture(autouse=True)
def captured_server_logs(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Every test of the suite: its server-side log records at DEBUG, as JSON lines, scanned.

    A test that sends long harmless input on purpose (a 5000-character username) is marked
    `log_scan_known_values`: its lines are then checked for the known secrets it passes to
    `assert_no_secrets` itself, not for credential-shaped runs."""
    handler = _Keep()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    if request.node.get_closest_marker("log_scan_known_values") is None:
        assert_no_secrets(handler.lines)


def scan_serve_log(log: Path, secrets: Iterable[str] = ()) -> None:
    """An `authgate serve --log-format json` log: one JSON object per line, no credential."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    access = 0
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        if record["logger"] == "authgate.access":
            access += 1
            assert record["request_id"] != "-", line  # each request's line names its id
    assert access, "no access line: the scan would prove nothing"
    assert_no_secrets(lines, secrets)
