"""JSON logs: one object per line, never a token.

`AccessLog` writes one line per request without going through `logging` (whose per-record cost
shows at the gateway's request rates). A line holds the time (to the millisecond), the method, the
path (never the query, which may carry credentials), the status, the decision, the client address
and the request's log fields (the route, the subject, a refusal's reason). The request only queues
what its line needs; the queue is formatted and written in one go by the server's periodic sweep,
when it holds 256 lines, and at stop.
`JsonFormatter` renders the other log records the same way; as a last guard it masks anything in a
message that looks like a JWT.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authgate.gateway.request_head import RequestHead

__all__ = ["AccessLog", "JsonFormatter", "configure_logging", "redact"]

_encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_time = time.time
_log = logging.getLogger("authgate.gateway")
_BATCH = 256  # lines queued before the queue is written without waiting for the sweep

# What the request queues for its line: the time, the method (as parsed, bytes, or text), the
# path, the status, the outcome, the client address and a copy of the request's log fields.
_Entry = tuple[float, bytes | str, str, int, str, str, dict[str, Any]]


def redact(text: str) -> str:
    """Mask JWT-shaped substrings."""
    return _JWT_LIKE.sub("[redacted]", text) if "eyJ" in text else text


class JsonFormatter(logging.Formatter):
    """`{"ts":…,"level":…,"logger":…,"msg":…, extra fields…}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(level: str, stream: IO[str] | None = None) -> None:
    """Send every `authgate` log record to `stream` (stderr) as JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("authgate")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class AccessLog:
    """Buffered one-line-per-request JSON access log.

    Why the lines are formatted when the queue is written rather than in their requests: in a
    running gateway the formatting code and its data are out of the CPU's caches by the time the
    next request logs, so a line formatted in its request costs several times what it costs in a
    loop over the queue. Each request pays for a tuple and a copy of its log fields; the copy keeps
    each line what was known when it was recorded.

    Every value is written through the C JSON string encoder (`ensure_ascii`: quotes, backslashes,
    control characters, non-ASCII and lone surrogates come out as JSON escapes), so any text makes a
    valid line. The method, the outcome and the field names come from small sets; their encoded
    form is kept. The time is formatted once per millisecond.
    """

    def __init__(self, stream: IO[str] | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._entries: list[_Entry] = []
        self._encoded: dict[bytes | str, str] = {}  # method, outcome, field name -> JSON string
        self._prefix = ""  # the line up to the method, for the millisecond in [_from, _until)
        self._from = self._until = 0.0

    def record(
        self,
        method: str,
        path: str,
        status: int,
        outcome: str,
        *,
        client: str,
        extra: dict[str, Any],
    ) -> None:
        """Queue one line. Callers never pass credentials: `path` without the query; `extra`
        holds strings, numbers, booleans and None (values of other types are left out)."""
        if not self.enabled:
            return
        entries = self._entries
        entries.append((_time(), method, path, status, outcome, client, extra.copy()))
        if len(entries) >= _BATCH:
            self.flush()

    def record_request(self, head: RequestHead, status: int, outcome: str) -> None:
        """`record` for a gateway request: its method, path, peer address and log fields."""
        if not self.enabled:
            return
        entries = self._entries
        entries.append(
            (_time(), head.method, head.target.path, status, outcome, head.peer, head.log.copy())
        )
        if len(entries) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Format and write the queued lines (one write, whole lines)."""
        if not self._entries:
            return
        entries, self._entries = self._entries, []
        text = self._format(entries)
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken log stream must not take the gateway down

    def _format(self, entries: list[_Entry]) -> str:
        encode, encoded = _encode_string, self._encoded
        begin, until, prefix = self._from, self._until, self._prefix
        lines: list[str] = []
        dropped = 0
        for now, method, path, status, outcome, client, extra in entries:
            # A value of a type no caller should pass drops its own line, not the queue: this runs
            # in the server's sweep, which must keep enforcing timeouts.
            try:
                if not begin <= now < until:
                    begin, until, prefix = _millisecond(now)
                line = (
                    f'{prefix}{encoded.get(method) or self._token(method)},"path":{encode(path)},'
                    f'"status":{status},"outcome":{encoded.get(outcome) or self._token(outcome)},'
                    f'"client":{encode(client)}'
                )
                for key, value in extra.items():
                    name = encoded.get(key) or self._token(key)
                    if isinstance(value, str):
                        line += f",{name}:{encode(value)}"
                    elif value is None or isinstance(value, bool | int | float):
                        line += f",{name}:{json.dumps(value)}"
            except Exception:  # noqa: BLE001 - counted and reported below
                dropped += 1
                continue
            lines.append(line)
        self._from, self._until, self._prefix = begin, until, prefix
        if dropped:
            _log.error("access log lines that could not be written", extra={"dropped": dropped})
        lines.append("")  # the last line's newline
        return "}\n".join(lines)

    def _token(self, value: bytes | str) -> str:
        """`value` as a JSON string, kept for the next lines (methods, outcomes, field names)."""
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if len(self._encoded) >= 1024:  # only ever reached if callers pass arbitrary values
            self._encoded.clear()
        self._encoded[value] = out = _encode_string(text)
        return out


def _millisecond(now: float) -> tuple[float, float, str]:
    """The millisecond `now` falls in (its start and end) and the start of its lines."""
    ms = int(now * 1000)
    prefix = f'{{"ts":{ms // 1000}.{ms % 1000:03d},"logger":"authgate.access","method":'
    return ms / 1000, (ms + 1) / 1000, prefix
