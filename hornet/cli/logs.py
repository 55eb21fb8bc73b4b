"""The command line's logging: ``--log-level`` and ``--log-format text|json`` on stderr.

Only the ``hornet`` logger tree is configured, so a program that embeds hornet keeps its
own logging. In JSON, each line is one object: ``time`` (ISO 8601, UTC), ``level``,
``logger`` and ``message`` (and ``error`` when an exception is attached). hornet's log
messages never hold key material (errors.py, rule 4).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Final

LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        body = {
            "time": stamp.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            body["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return json.dumps(body)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces it."""


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send the ``hornet`` loggers' records at ``level`` and above to stderr."""
    if level not in LEVELS or fmt not in FORMATS:
        raise ValueError(f"level must be one of {LEVELS}, format one of {FORMATS}")
    root = logging.getLogger("hornet")
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())


__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "configure_logging"]
