"""structlog configured once per process: JSON lines, stdlib loggers bridged, context vars bound.

Every line is one JSON object with ``service`` (added by a processor, so threads and tasks that
never saw the bound context have it too), ``level``, ``logger`` and ``timestamp``. Lines about
events name them with the same fields in all three services, so one event can be followed from
ingest through kpi to alerts with a single search for its id:

- ``event_id`` / ``kpi_id``: the one event (or status change) and KPI/milestone a line is about
  (``measure_id`` for self-assessments);
- ``event_ids`` / ``kpi_ids``: every event of a batch (an ingest request, a consumer fetch);
- ``caused_by``: the ministry events a status change was decided on (its explanation's evidence).

Bound context (``batch_event_type``, ``topic``: the consumer batch a line was written for) travels
with the task via contextvars.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog

# Substrings of keys whose values must never be logged.
_SECRET_KEYS = ("authorization", "api_key", "token", "secret", "password")


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


def _add_service(service: str) -> structlog.types.Processor:
    def add(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_service(service),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Noisy libraries stay at WARNING unless debugging.
    for noisy in ("aiokafka", "pymongo", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


# ---------------------------------------------------------------------------------------------
# The correlation fields (see the module docstring), from events without importing their models.


def subject_fields(data: object) -> dict[str, str]:
    """``kpi_id`` (a KPI or milestone, as status changes name both) or ``measure_id``."""
    for attribute in ("kpi_id", "milestone_id"):
        value = getattr(data, attribute, None)
        if isinstance(value, str):
            return {"kpi_id": value}
    measure = getattr(data, "measure_id", None)
    return {"measure_id": measure} if isinstance(measure, str) else {}


def event_fields(event: Any) -> dict[str, str]:
    """``event_id``, ``event_type`` and the subject of one CloudEvent."""
    return {"event_id": event.id, "event_type": event.type, **subject_fields(event.data)}


def batch_fields(events: Iterable[Any]) -> dict[str, list[str]]:
    """``event_ids`` (in order) and ``kpi_ids`` (distinct, sorted; measures included) of a batch."""
    events = list(events)
    subjects = {value for event in events for value in subject_fields(event.data).values()}
    return {"event_ids": [event.id for event in events], "kpi_ids": sorted(subjects)}


def caused_by(explanation: Mapping[str, Any] | None) -> list[str]:
    """The ids of the events a status was decided on (its explanation's evidence)."""
    evidence = (explanation or {}).get("evidence") or []
    return [str(event_id) for event_id in evidence]


def url_origin(url: str) -> str:
    """What a log line may say of a URL: scheme, host and port only (the path, query or user
    info of a webhook URL may carry a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
