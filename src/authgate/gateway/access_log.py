"""JSON logs: one object per line, never a token.

`AccessLog` writes one line per request without going through `logging` (whose per-record cost
shows at the gateway's request rates): lines are buffered and flushed by the server's
periodic sweep, or when the buffer fills. A line holds the method, the path (never the query, which
may carry credentials), the status, the route, the decision, the client address and the subject.
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
from typing import IO, Any

__all__ = ["AccessLog", "JsonFormatter", "configure_logging", "redact"]

_encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


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
    """Buffered one-line-per-request JSON access log."""

    def __init__(self, stream: IO[str] | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._lines: list[str] = []

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
        """Queue one line. `method` (parsed), `outcome` and `client` (an IP address) are plain
        tokens; `path` and the `extra` values are escaped. Callers never pass credentials."""
        if not self.enabled:
            return
        # Built by hand with the C string encoder: json.dumps with options builds a new encoder
        # on every call, which costs more than the rest of this line.
        line = (
            f'{{"ts":{time.time():.3f},"logger":"authgate.access","method":"{method}",'
            f'"path":{_encode_string(path)},"status":{status},"outcome":"{outcome}",'
            f'"client":"{client}"'
        )
        for key, value in extra.items():
            if isinstance(value, str):
                line += f',"{key}":{_encode_string(value)}'
            elif value is None or isinstance(value, bool | int | float):
                line += f',"{key}":{json.dumps(value)}'
        self._lines.append(line + "}")
        if len(self._lines) >= 256:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines."""
        if self._lines:
            lines, self._lines = self._lines, []
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken log stream must not take the gateway down
