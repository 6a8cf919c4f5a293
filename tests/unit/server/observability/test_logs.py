"""The JSON log line (`observability.logs.JsonLogFormatter`): written without building a dict,
it must be exactly what `json.dumps` makes of the line's object, for any text."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from authgate.server.observability.logs import JsonLogFormatter
from authgate.server.observability.request_ids import REQUEST_ID

HOSTILE = [
    "plain",
    "",
    'quote " backslash \\ slash /',
    "new\nline\r\ttab \x00 \x1f \x7f",
    "non-ASCII é ü 漢字 🙂",
    "lone surrogate \ud800 end",
    "\u2028\u2029",
    '} {"level":"error"}',
]


def _reference(record: logging.LogRecord, request_id: Any, msg: str, exc: str | None) -> str:
    out: dict[str, Any] = {
        "ts": round(record.created, 3),
        "level": record.levelname.lower(),
        "logger": record.name,
        "request_id": request_id,
        "msg": msg,
    }
    if exc is not None:
        out["exc"] = exc
    return json.dumps(out, default=str, separators=(",", ":"))


@pytest.mark.parametrize("text", HOSTILE)
def test_line_is_json_dumps_of_its_object(text: str) -> None:
    record = logging.LogRecord(text or "x", logging.WARNING, "", 0, "%s|%s", (text, 7), None)
    record.request_id = text
    line = JsonLogFormatter().format(record)
    assert line == _reference(record, text, f"{text}|7", None)
    assert json.loads(line)["msg"] == f"{text}|7"
    assert "\n" not in line


def test_traceback_is_escaped_and_tokens_are_masked() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

    def fail() -> None:
        raise ValueError(f'bad "{token}"\n\x00')

    try:
        fail()
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("authgate.x", logging.ERROR, "", 0, "got %s", (token,), exc_info)
    formatter = JsonLogFormatter()
    line = formatter.format(record)
    parsed = json.loads(line)
    assert token not in line
    assert parsed["msg"] == "got [redacted]"
    assert "ValueError" in parsed["exc"]
    assert "[redacted]" in parsed["exc"]
    assert parsed["request_id"] == "-"  # no request, no filter: the context's default
    assert line == _reference(record, "-", "got [redacted]", parsed["exc"])


def test_request_id_from_the_context_when_no_filter_ran() -> None:
    record = logging.LogRecord("authgate.x", logging.INFO, "", 0, "m", (), None)
    token = REQUEST_ID.set("abc123")
    try:
        assert json.loads(JsonLogFormatter().format(record))["request_id"] == "abc123"
    finally:
        REQUEST_ID.reset(token)


@pytest.mark.parametrize("request_id", [None, 42, 1.5, ["x"]])
def test_odd_request_id_values_still_make_the_json_dumps_line(request_id: Any) -> None:
    record = logging.LogRecord("authgate.x", logging.INFO, "", 0, "m", (), None)
    record.request_id = request_id
    line = JsonLogFormatter().format(record)
    assert line == _reference(record, request_id, "m", None)
