"""OpenAPI documentation of the ingest routes: request bodies in the three CloudEvents modes,
every answer with an example, and the event models (from shared/events/contracts.py) as schemas.

The routes read their bodies themselves (the binding decides how to parse), so FastAPI cannot
infer the request schemas; they are declared here and added to the generated document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.ingest.entrypoints.problems import PROBLEM_JSON, IngestProblemDetails, examples_for
from services.ingest.settings import Limits
from shared.events.cloudevents import CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON
from shared.events.contracts import (
    KpiObserved,
    KpiObservedEvent,
    MeasureAssessed,
    MeasureAssessedEvent,
    MilestoneReported,
    MilestoneReportedEvent,
)

REF = "#/components/schemas/{model}"
EVENT_MODELS: tuple[type[BaseModel], ...] = (
    KpiObservedEvent,
    MilestoneReportedEvent,
    MeasureAssessedEvent,
)
DATA_MODELS: tuple[type[BaseModel], ...] = (KpiObserved, MilestoneReported, MeasureAssessed)
EVENT_ONE_OF = {
    "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in EVENT_MODELS],
    "discriminator": {
        "propertyName": "type",
        "mapping": {
            "shinchoku.kpi.observed.v1": REF.format(model="KpiObservedEvent"),
            "shinchoku.milestone.reported.v1": REF.format(model="MilestoneReportedEvent"),
            "shinchoku.measure.assessed.v1": REF.format(model="MeasureAssessedEvent"),
        },
    },
}
DATA_ONE_OF = {"oneOf": [{"$ref": REF.format(model=m.__name__)} for m in DATA_MODELS]}

KPI_EVENT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "mic-2024-06-30-5g-coverage",
    "source": "/ministries/digital",
    "type": "shinchoku.kpi.observed.v1",
    "subject": "kpi.5g-population-coverage",
    "time": "2024-07-05T09:30:00+09:00",
    "datacontenttype": "application/json",
    "data": {
        "kpi_id": "kpi.5g-population-coverage",
        "value": 96.6,
        "as_of": "2024-03-31",
        "note": "FY2023 year-end figure",
    },
}
MILESTONE_EVENT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "digital-2023-05-dfft",
    "source": "/ministries/digital",
    "type": "shinchoku.milestone.reported.v1",
    "subject": "ms.dfft-g7-2023-outcomes",
    "time": "2023-05-20T18:00:00+09:00",
    "datacontenttype": "application/json",
    "data": {
        "milestone_id": "ms.dfft-g7-2023-outcomes",
        "state": "in_progress",
        "percent_complete": 60,
        "expected_completion": "2023-06-30",
        "as_of": "2023-05-20",
        "note": None,
    },
}
MEASURE_EVENT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "digital-2024q1-inclusion",
    "source": "/ministries/digital",
    "type": "shinchoku.measure.assessed.v1",
    "subject": "m.4-1-3.digital-inclusion-support",
    "time": "2024-04-10T12:00:00+09:00",
    "datacontenttype": "application/json",
    "data": {
        "measure_id": "m.4-1-3.digital-inclusion-support",
        "rating": "at_risk",
        "as_of": "2024-03-31",
        "narrative": "Support-desk staffing behind plan in two prefectures.",
    },
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
PROBLEM_SCHEMA = {"$ref": REF.format(model="IngestProblemDetails")}
_RETRYABLE = {409, 429, 503}
_DESCRIPTIONS = {
    400: "The body is not JSON (or a batch is not an array)",
    401: "No API key, or a malformed, unknown or revoked one",
    403: "Not allowed for this API key: another ministry's source, or an entry the ministry is "
    "not responsible for",
    409: "The same event (source + id) is being published by another request right now",
    413: "Too large: the body, the number of events in a batch, or one encoded event",
    415: "Not a CloudEvents content mode this endpoint accepts",
    422: "The event is not acceptable: its type, schema or content (see the examples)",
    429: "The API key's rate limit is exhausted",
    503: "Kafka (or the receipt store) did not answer in time: nothing was accepted",
}


def problem_responses(*slugs: str) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {}
    for status, examples in sorted(examples_for(*slugs).items()):
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS.get(status, "A problem"),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA, "examples": examples}},
        }
        if status in _RETRYABLE:
            entry["headers"] = RETRY_AFTER
        responses[status] = entry
    return responses


def ce_header_parameters() -> list[dict[str, Any]]:
    """Binary mode's ``ce-*`` headers (ignored in structured mode)."""
    described = {
        "ce-specversion": ("CloudEvents version: 1.0", "1.0"),
        "ce-id": ("Event id, unique per source", "mic-2024-06-30-5g-coverage"),
        "ce-source": ("Exactly /ministries/{code}", "/ministries/digital"),
        "ce-type": ("One of the three ministry event types", "shinchoku.kpi.observed.v1"),
        "ce-subject": (
            "Optional; if given, the KPI, milestone or measure id of the data",
            "kpi.5g-population-coverage",
        ),
        "ce-time": (
            "Optional; RFC 3339 time with offset, at most 5 minutes ahead of the receive time",
            "2024-07-05T09:30:00+09:00",
        ),
        "ce-partitionkey": ("Optional; if given, must equal the id in the data", None),
    }
    parameters = []
    for name, (description, example) in described.items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "header",
            "required": False,
            "description": f"Binary mode only. {description}. Percent-encoded as the "
            "CloudEvents HTTP binding requires.",
            "schema": {"type": "string"},
        }
        if example is not None:
            parameter["example"] = example
        parameters.append(parameter)
    return parameters


def single_event_request(limits: Limits) -> dict[str, Any]:
    return {
        "parameters": ce_header_parameters(),
        "requestBody": {
            "required": True,
            "description": f"One CloudEvent, at most {limits.max_event_bytes} bytes. Structured "
            f"mode: `{CLOUDEVENTS_JSON}` with the whole event as the body. Binary mode: "
            "`application/json` with the data as the body and the attributes in `ce-*` headers.",
            "content": {
                CLOUDEVENTS_JSON: {
                    "schema": EVENT_ONE_OF,
                    "examples": {
                        "kpi": {"summary": "A KPI observation", "value": KPI_EVENT_EXAMPLE},
                        "milestone": {
                            "summary": "A milestone report",
                            "value": MILESTONE_EVENT_EXAMPLE,
                        },
                        "measure": {
                            "summary": "A measure assessment",
                            "value": MEASURE_EVENT_EXAMPLE,
                        },
                    },
                },
                "application/json": {
                    "schema": DATA_ONE_OF,
                    "examples": {
                        "kpi-binary": {
                            "summary": "Binary mode: the data of a KPI observation",
                            "value": KPI_EVENT_EXAMPLE["data"],
                        }
                    },
                },
            },
        },
    }


def batch_request(limits: Limits) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": f"A JSON array of at most {limits.max_batch_events} structured-mode "
            f"CloudEvents, at most {limits.max_batch_bytes} bytes in all.",
            "content": {
                CLOUDEVENTS_BATCH_JSON: {
                    "schema": {
                        "type": "array",
                        "items": EVENT_ONE_OF,
                        "maxItems": limits.max_batch_events,
                    },
                    "examples": {
                        "three": {
                            "summary": "One event of each type",
                            "value": [
                                KPI_EVENT_EXAMPLE,
                                MILESTONE_EVENT_EXAMPLE,
                                MEASURE_EVENT_EXAMPLE,
                            ],
                        }
                    },
                }
            },
        }
    }


def component_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [*EVENT_MODELS, *DATA_MODELS, IngestProblemDetails]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


# Examples for the shared operational routes (their answers are the same in every service).
PROBE_EXAMPLES: dict[tuple[str, str], Any] = {
    ("/healthz", "200"): {"status": "ok"},
    ("/readyz", "200"): {
        "status": "ready",
        "checks": {"kafka": True, "mongo": True, "receipts": True},
    },
    ("/readyz", "503"): {"status": "unready", "checks": {"kafka": False, "mongo": True}},
    ("/metrics", "200"): "# TYPE shinchoku_ingest_events_total counter\n"
    'shinchoku_ingest_events_total{event_type="shinchoku.kpi.observed.v1",ministry="mic",'
    'outcome="accepted",reason=""} 42.0\n',
}


def _add_probe_examples(document: dict[str, Any]) -> None:
    for (path, status), example in PROBE_EXAMPLES.items():
        operation = document.get("paths", {}).get(path, {}).get("get")
        if operation is None:
            continue
        response = operation.get("responses", {}).get(status)
        if response is None:
            continue
        content = response.setdefault("content", {})
        media = "text/plain" if isinstance(example, str) else "application/json"
        if path == "/readyz" and status == "503":
            content.setdefault(media, {"schema": {"type": "object"}})
        entry = content.setdefault(media, {})
        entry["example"] = example


def install(app: FastAPI) -> None:
    """Add the event and problem schemas to the app's generated OpenAPI document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in component_schemas().items():
            components.setdefault(name, schema)
        _add_probe_examples(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
