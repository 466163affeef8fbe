"""Muster's process logs on stderr: one JSON object per line (or text), with the request id.

These are the operator's logs (errors, start-up, shutdown); each SCIM request's outcome goes to
the tenant's provisioning log in the database instead (services/provisioning_log.py). Every line
passes through redact(): a secret in a message or a traceback is never written out.
"""

from __future__ import annotations

import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from muster.redaction import redact

# The id of the request being served, set once per request by the web layer; each request runs
# in its own task, so a line logged anywhere below it carries the id without it being passed.
request_id_var: ContextVar[str | None] = ContextVar("muster_request_id", default=None)

# LogRecord's own attributes; anything else on a record came from `extra=` and is logged too.
# (uvicorn adds color_message, the message again with terminal colours.)
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info:
            trace = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            line["exception"] = redact(trace)
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT lines, with every secret Muster issues redacted (as in JSON lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RequestIdFilter(logging.Filter):
    """Give every record a `request_id` attribute ("-" outside a request) for the text format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for the root logger and uvicorn's; each worker applies it."""
    is_json = log_format == "json"
    # By dotted name: uvicorn hands this to worker processes it spawns.
    formatter = (
        {"()": f"{__name__}.JsonFormatter"}
        if is_json
        else {"()": f"{__name__}.TextFormatter", "fmt": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"muster": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "muster",
                "filters": [] if is_json else ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        # uvicorn's loggers write through the root handler, so its lines are JSON too.
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
