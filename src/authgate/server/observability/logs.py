"""Log lines for `authgate serve`: text (the default) or JSON, one object per line, as the
gateway writes them. Both carry the request id of the request being served (`-` outside one).
The server's messages name no token, secret, password or code; as a last guard the JSON lines
mask anything that looks like a JWT."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any, Literal

from authgate.server.observability.request_ids import REQUEST_ID

__all__ = ["JsonLogFormatter", "LogFormat", "RequestIdFilter", "logging_config"]

LogFormat = Literal["text", "json"]
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# The C string encoder json.dumps uses (ensure_ascii): quotes, backslashes, control characters,
# non-ASCII and lone surrogates come out as JSON escapes.
_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
_encode: Callable[[Any], str] = json.JSONEncoder(default=str, separators=(",", ":")).encode
_UNSET = object()


def _redact(text: str) -> str:
    return _JWT_LIKE.sub("[redacted]", text) if "eyJ" in text else text


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonLogFormatter(logging.Formatter):
    """`{"ts":…,"level":…,"logger":…,"request_id":…,"msg":…}` (and `"exc"` with a traceback).

    The line is what `json.dumps(…, separators=(",", ":"))` makes of that object, written without
    building the object: each string goes through the C encoder `json.dumps` uses."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", _UNSET)
        if request_id is _UNSET:
            request_id = REQUEST_ID.get()
        ts = round(record.created, 3)
        exc = _redact(self.formatException(record.exc_info)) if record.exc_info else None
        level, name = record.levelname, record.name
        if not (
            type(ts) is float
            and math.isfinite(ts)
            and isinstance(request_id, str)
            and isinstance(level, str)
            and isinstance(name, str)
        ):  # never from this package's loggers and filter: the general encoder
            out: dict[str, Any] = {
                "ts": ts,
                "level": level.lower(),
                "logger": name,
                "request_id": request_id,
                "msg": _redact(record.getMessage()),
            }
            if exc is not None:
                out["exc"] = exc
            return _encode(out)
        line = (
            f'{{"ts":{ts!r},"level":{_string(level.lower())},"logger":{_string(name)},'
            f'"request_id":{_string(request_id)},"msg":{_string(_redact(record.getMessage()))}'
        )
        return f'{line},"exc":{_string(exc)}}}' if exc is not None else line + "}"


def logging_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """The `logging.config.dictConfig` of `authgate serve` (given to every uvicorn worker).
    uvicorn's own access log stays off (it would print query strings); `authgate.access` logs
    method, path, status, time and client_id only."""
    formatter: dict[str, Any] = (
        {"()": JsonLogFormatter} if log_format == "json" else {"format": _TEXT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"line": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "authgate": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }
