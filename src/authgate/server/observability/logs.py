"""Log lines for `authgate serve`: text (the default) or JSON, one object per line, as the
gateway writes them. Both carry the request id of the request being served (`-` outside one).
The server's messages name no token, secret, password or code; as a last guard the JSON lines
mask anything that looks like a JWT."""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

from authgate.server.observability.request_ids import REQUEST_ID

__all__ = ["JsonLogFormatter", "LogFormat", "RequestIdFilter", "logging_config"]

LogFormat = Literal["text", "json"]
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def _redact(text: str) -> str:
    return _JWT_LIKE.sub("[redacted]", text) if "eyJ" in text else text


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonLogFormatter(logging.Formatter):
    """`{"ts":…,"level":…,"logger":…,"request_id":…,"msg":…}` (and `"exc"` with a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "msg": _redact(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = _redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, separators=(",", ":"))


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
