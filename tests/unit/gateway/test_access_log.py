"""The gateway's access log: every line is one JSON object that `json.loads` reads back to exactly
the values recorded, whatever text they hold; lines are queued and written whole, in order, when
flushed; the time is the millisecond of the record."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from authgate.gateway import access_log
from authgate.gateway.access_log import AccessLog
from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import parse_request_target

# Every control character, DEL, quotes and backslashes, Latin-1, the BMP, an astral character
# (a surrogate pair in JSON), and lone surrogates, which only JSON escapes can carry.
AWKWARD = [
    "".join(chr(c) for c in range(0x20)),
    '"quoted" \\back\\slashed\\ "\\"',
    "\x7f del, é, ß, ÿ",
    "日本語 ✓ 😀",
    "\ud800 lone high, lone low \udfff, reversed \udc00\ud800",
    "</script><!-- \u2028 \u2029 \ufeff",
    "",
]


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _record(log: AccessLog, path: str = "/api/orders", **extra: Any) -> None:
    log.record("GET", path, 200, "allowed", client="192.0.2.7", extra=extra)


@pytest.mark.parametrize("value", AWKWARD)
def test_any_text_round_trips_through_json(value: str) -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    _record(log, "/p/" + value, subject=value, route=value)
    log.flush()
    text = stream.getvalue()
    assert text.isascii()  # non-ASCII, controls and surrogates all as escapes
    assert text.count("\n") == 1  # an escaped newline never splits the line
    (line,) = _lines(stream)
    assert line["path"] == "/p/" + value
    assert line["subject"] == value
    assert line["route"] == value


def test_a_line_holds_exactly_the_recorded_values_in_order() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    extra = {"route": "/api", "subject": "alice", "n": 3, "f": 1.5, "yes": True, "no": False}
    log.record(
        "POST", "/api/x", 503, "unavailable", client="2001:db8::1", extra={**extra, "z": None}
    )
    log.flush()
    (line,) = _lines(stream)
    ts = line.pop("ts")
    assert isinstance(ts, float)
    assert list(line.items()) == [
        ("logger", "authgate.access"),
        ("method", "POST"),
        ("path", "/api/x"),
        ("status", 503),
        ("outcome", "unavailable"),
        ("client", "2001:db8::1"),
        *extra.items(),
        ("z", None),
    ]


def test_values_of_other_types_are_left_out() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    _record(log, subject="bob", obj=object(), raw=b"bytes", items=["a"])
    log.flush()
    (line,) = _lines(stream)
    assert line["subject"] == "bob"
    assert not {"obj", "raw", "items"} & line.keys()


def test_very_long_values_round_trip() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    long_path = "/" + 'a\\"é\x01' * 50_000
    _record(log, long_path, subject="s" * 100_000)
    log.flush()
    (line,) = _lines(stream)
    assert line["path"] == long_path
    assert line["subject"] == "s" * 100_000


def test_field_names_methods_and_outcomes_are_escaped_too() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record('G"T', "/", 200, 'a"b\n', client='x"y', extra={'we"ird\\': "v"})
    log.flush()
    (line,) = _lines(stream)
    assert (line["method"], line["outcome"], line["client"]) == ('G"T', 'a"b\n', 'x"y')
    assert line['we"ird\\'] == "v"


def test_the_line_keeps_the_fields_known_when_it_was_recorded() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    fields: dict[str, Any] = {"route": "/api"}
    log.record("GET", "/api", 200, "allowed", client="192.0.2.7", extra=fields)
    fields["subject"] = "later"
    fields["route"] = "changed"
    log.flush()
    (line,) = _lines(stream)
    assert line["route"] == "/api"
    assert "subject" not in line


def test_a_gateway_request_is_logged_from_its_head() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    head = RequestHead(
        method=b"DELETE",
        target=parse_request_target(b"/orders/7?access_token=secret-value"),
        version=b"1.1",
        headers=[(b"Authorization", b"Bearer secret-token")],
        fields={b"authorization": b"Bearer secret-token"},
        repeated=set(),
        keep_alive=True,
        upgrade=None,
        has_body=False,
        chunked=False,
        peer="198.51.100.4",
        log={"route": "/orders", "subject": "carol"},
    )
    log.record_request(head, 403, "forbidden")
    log.flush()
    text = stream.getvalue()
    assert "secret" not in text  # neither the query nor a header field is ever written
    (line,) = _lines(stream)
    line.pop("ts")
    assert line == {
        "logger": "authgate.access",
        "method": "DELETE",
        "path": "/orders/7",
        "status": 403,
        "outcome": "forbidden",
        "client": "198.51.100.4",
        "route": "/orders",
        "subject": "carol",
    }


def test_lines_wait_for_flush_or_a_full_queue_and_come_out_whole_in_order() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    for n in range(255):
        _record(log, f"/n/{n}")
    assert stream.getvalue() == ""
    _record(log, "/n/255")  # the 256th line writes the queue
    assert [line["path"] for line in _lines(stream)] == [f"/n/{n}" for n in range(256)]
    _record(log, "/n/256")
    log.flush()
    log.flush()  # nothing queued: nothing written
    assert [line["path"] for line in _lines(stream)][-1] == "/n/256"
    assert len(_lines(stream)) == 257


def test_a_disabled_log_writes_nothing() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, enabled=False)
    for _ in range(300):
        _record(log)
    log.flush()
    assert stream.getvalue() == ""


class _Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError("disk full")


def test_a_broken_or_closed_stream_does_not_raise() -> None:
    broken = AccessLog(_Broken())
    _record(broken)
    broken.flush()
    closed_stream = io.StringIO()
    closed = AccessLog(closed_stream)
    closed_stream.close()
    _record(closed)
    closed.flush()


def test_the_time_is_the_millisecond_of_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # Out of order too: a clock stepped back must not keep the later millisecond's text.
    clock = iter([1796650000.0004, 1796650000.0009, 1796650000.0011, 1796649999.5, 1796650003.25])
    monkeypatch.setattr(access_log, "_time", lambda: next(clock))
    stream = io.StringIO()
    log = AccessLog(stream)
    for _ in range(5):
        _record(log)
    log.flush()
    stamps = re.findall(r'^\{"ts":([0-9.]+),', stream.getvalue(), re.MULTILINE)
    assert stamps == [
        "1796650000.000",
        "1796650000.000",
        "1796650000.001",
        "1796649999.500",
        "1796650003.250",
    ]


def test_the_time_is_the_current_one() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    before = access_log.time.time()
    _record(log)
    after = access_log.time.time()
    log.flush()
    (line,) = _lines(stream)
    assert int(before * 1000) / 1000 <= line["ts"] <= after


def test_a_value_of_the_wrong_type_drops_its_own_line_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    _record(log, "/before")
    log.record(None, "/bad", 200, "allowed", client="192.0.2.7", extra={})  # type: ignore[arg-type]
    _record(log, "/after")
    logger = logging.getLogger("authgate.gateway")
    logger.addHandler(caplog.handler)  # whether or not "authgate" propagates in this session
    try:
        with caplog.at_level("ERROR", logger="authgate.gateway"):
            log.flush()
    finally:
        logger.removeHandler(caplog.handler)
    assert [line["path"] for line in _lines(stream)] == ["/before", "/after"]
    assert {r.__dict__.get("dropped") for r in caplog.records} == {1}  # seen once or twice
