"""The ingest service's problem types (RFC 9457), each with its OpenAPI example.

Every problem names the offending field(s) and the reason in ``errors`` and carries a ``code``
(the machine-readable reason: ``unknown_id``, ``impossible_value``...). The ``type`` URI tells
the kind of problem; several codes may share one type (``unknown_id`` and ``retired_id`` are both
``not-in-catalogue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.ingest.service import errors
from shared.events.validation import Violation
from shared.http.problems import (
    FieldError,
    MalformedRequest,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    StorageUnavailable,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationProblem,
    problem_response,
    storage_unavailable,
)
from shared.http.problems import Forbidden as _Forbidden
from shared.logs import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class IngestProblemDetails(BaseModel):
    """RFC 9457 problem details as the ingest service answers them."""

    type: str = Field(description="URI of the problem type (see the examples).")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="Every offending field and why."
    )
    code: str | None = Field(default=None, description="Machine-readable reason code.")


def _with_errors(problem: Problem, field: str, code: str) -> Problem:
    problem.errors = [FieldError(field=field, reason=problem.detail)]
    problem.extensions.setdefault("code", code)
    return problem


# --- 400 / 401 / 413 / 415 / 429 / 503: request-level problems ------------------------------


def malformed(detail: str) -> Problem:
    return _with_errors(MalformedRequest(detail), "(body)", "malformed_json")


def unauthenticated(detail: str, code: str) -> Problem:
    return _with_errors(Unauthenticated(detail), "Authorization", code)


def too_large(detail: str) -> Problem:
    return _with_errors(PayloadTooLarge(detail), "(body)", "body_too_large")


class BatchTooLarge(Problem):
    """The batch holds more events than the limit; split it and resend."""

    status, slug, title = 413, "batch-too-large", "Too many events in one batch"


class EventTooLarge(Problem):
    """One event encodes to more bytes than a Kafka record may hold; nothing of it was
    accepted."""

    status, slug, title = 413, "event-too-large", "The event is too large"


def unsupported(detail: str) -> Problem:
    return _with_errors(UnsupportedMediaType(detail), "Content-Type", "unsupported_media_type")


def rate_limited(detail: str, retry_after: str) -> Problem:
    problem = TooManyRequests(detail, headers={"Retry-After": retry_after})
    return _with_errors(problem, "Authorization", "rate_limited")


class KafkaUnavailable(ServiceUnavailable):
    """Kafka did not acknowledge the event within the delivery timeout: it was not accepted.
    Retry after the seconds in `Retry-After`; a resend of the same source + id is safe."""

    slug, title = "kafka-unavailable", "Kafka did not acknowledge the event"


class EventInFlight(Problem):
    """An identical event (same source and id) is being accepted by another request right now;
    retry shortly and the answer will say whether it was a duplicate."""

    status, slug, title = 409, "event-in-flight", "The same event is being accepted right now"


# --- 403 / 422: problems of one event --------------------------------------------------------


class InvalidEvent(ValidationProblem):
    """The event does not match the schema of its type; `errors` names each field."""

    slug, title = "invalid-event", "The event does not match its schema"


class UnknownEventType(ValidationProblem):
    """The CloudEvents `type` is not one of the ministry event types (see docs/contracts/)."""

    slug, title = "unknown-event-type", "Unknown event type"


class NotInCatalogue(ValidationProblem):
    """The KPI, milestone or measure id is not in the catalogue (code `unknown_id`), or has
    been retired (code `retired_id`)."""

    slug, title = "not-in-catalogue", "The KPI, milestone or measure is not in the catalogue"


class WrongKind(ValidationProblem):
    """The id names another kind of catalogue entry (a milestone reported as a KPI
    observation...)."""

    slug, title = "wrong-kind", "The id names another kind of catalogue entry"


class InconsistentEvent(ValidationProblem):
    """The event's attributes (`subject`, `partitionkey`) contradict the id in its data."""

    slug, title = "inconsistent-event", "The event's attributes contradict its data"


class ImpossibleValue(ValidationProblem):
    """The value is impossible for the KPI's unit (a percentage above 100, a negative
    count)."""

    slug, title = "impossible-value", "The value is impossible for the KPI's unit"


class AsOfInFuture(ValidationProblem):
    """The `as_of` date of the report is after today."""

    slug, title = "as-of-in-future", "The as_of date is in the future"


class AsOfTooEarly(ValidationProblem):
    slug, title = "as-of-too-early", "The as_of date is before the entry's plausible era"


class TimeInFuture(ValidationProblem):
    slug, title = "time-in-future", "The event's time is ahead of the receive time"


class WrongMinistry(_Forbidden):
    """The catalogue does not list the event's ministry as responsible for the entry."""

    slug, title = "wrong-ministry", "The ministry is not responsible for this entry"


class SourceNotAllowed(_Forbidden):
    """The API key belongs to another ministry than the event's `source`."""

    slug, title = "source-not-allowed", "The API key may not speak for this source"


VIOLATION_PROBLEMS: dict[str, type[Problem]] = {
    "source_not_key_ministry": SourceNotAllowed,
    "wrong_ministry": WrongMinistry,
    "unknown_id": NotInCatalogue,
    "retired_id": NotInCatalogue,
    "wrong_kind": WrongKind,
    "subject_mismatch": InconsistentEvent,
    "partitionkey_mismatch": InconsistentEvent,
    "impossible_value": ImpossibleValue,
    "as_of_in_future": AsOfInFuture,
    "as_of_too_early": AsOfTooEarly,
    "time_in_future": TimeInFuture,
    "event_too_large": EventTooLarge,
}


def for_violations(violations: Sequence[Violation]) -> Problem:
    """The problem of an event; the first violation (by priority) gives its type."""
    first = violations[0]
    problem_class = VIOLATION_PROBLEMS.get(first.code, ValidationProblem)
    return problem_class(
        first.reason,
        errors=[FieldError(field=v.field, reason=v.reason) for v in violations],
        extensions={"code": first.code},
    )


# --- OpenAPI: one example per problem type ---------------------------------------------------


def _example(
    problem: type[Problem], detail: str, field: str, code: str, instance: str = "/v1/events"
) -> dict[str, Any]:
    return {
        "type": problem.type_uri(),
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
        "instance": instance,
        "errors": [{"field": field, "reason": detail}],
        "code": code,
    }


KPI = "kpi.5g-population-coverage"
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "malformed-request": (
        "The body is not JSON",
        _example(
            MalformedRequest,
            "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
            "(body)",
            "malformed_json",
        ),
    ),
    "unauthenticated": (
        "No API key, a malformed, unknown or revoked one",
        _example(
            Unauthenticated,
            "an 'Authorization: Bearer <API key>' header is required",
            "Authorization",
            "missing",
        ),
    ),
    "source-not-allowed": (
        "The source is another ministry than the API key's",
        _example(
            SourceNotAllowed,
            "this API key belongs to ministry 'mic'; the source must be '/ministries/mic', "
            "not '/ministries/mhlw'",
            "source",
            "source_not_key_ministry",
        ),
    ),
    "wrong-ministry": (
        "The catalogue does not list the ministry as responsible",
        _example(
            WrongMinistry,
            f"ministry 'mhlw' is not responsible for '{KPI}'; it may be reported by: mic",
            "source",
            "wrong_ministry",
        ),
    ),
    "event-in-flight": (
        "The same source + id is being published by another request",
        _example(
            EventInFlight,
            "an identical event (same source and id) is being accepted right now; retry shortly",
            "id",
            "in_flight",
        ),
    ),
    "payload-too-large": (
        "The body exceeds the size limit",
        _example(
            PayloadTooLarge,
            "the body exceeds the limit of 65536 bytes",
            "(body)",
            "body_too_large",
        ),
    ),
    "batch-too-large": (
        "The batch holds more events than allowed",
        _example(
            BatchTooLarge,
            "a batch holds at most 500 events; this one has 501",
            "(body)",
            "too_many_events",
            "/v1/events:batch",
        ),
    ),
    "event-too-large": (
        "One event encodes to more bytes than a record may hold",
        _example(
            EventTooLarge,
            "the event encodes to 70312 bytes; the limit is 65536",
            "(event)",
            "event_too_large",
        ),
    ),
    "unsupported-media-type": (
        "Neither structured nor binary mode",
        _example(
            UnsupportedMediaType,
            "send application/cloudevents+json (structured mode) or ce-* headers (binary mode)",
            "Content-Type",
            "unsupported_media_type",
        ),
    ),
    "invalid-event": (
        "The event does not match its schema",
        _example(
            InvalidEvent,
            "the shinchoku.kpi.observed.v1 event is not valid",
            "data.value",
            "schema",
        ),
    ),
    "unknown-event-type": (
        "The type is not one of the three ministry event types",
        _example(
            UnknownEventType,
            "unknown event type 'shinchoku.kpi.guessed.v1'",
            "type",
            "unknown_type",
        ),
    ),
    "not-in-catalogue": (
        "The KPI is not in the catalogue",
        _example(
            NotInCatalogue, "'kpi.no-such-kpi' is not in the catalogue", "data.kpi_id", "unknown_id"
        ),
    ),
    "wrong-kind": (
        "A milestone id reported as a KPI observation",
        _example(
            WrongKind,
            "'ms.dfft-g7-2023-outcomes' is a milestone, not a kpi",
            "data.kpi_id",
            "wrong_kind",
        ),
    ),
    "inconsistent-event": (
        "The subject is not the id in the data",
        _example(
            InconsistentEvent,
            f"subject 'kpi.other' differs from data.kpi_id '{KPI}'",
            "subject",
            "subject_mismatch",
        ),
    ),
    "impossible-value": (
        "A percentage of 130",
        _example(
            ImpossibleValue,
            "130.0 is impossible for a percentage",
            "data.value",
            "impossible_value",
        ),
    ),
    "as-of-in-future": (
        "as_of after today",
        _example(AsOfInFuture, "2031-04-01 is in the future", "data.as_of", "as_of_in_future"),
    ),
    "as-of-too-early": (
        "as_of before the entry's era (10 years before its baseline, 2010 at the latest)",
        _example(
            AsOfTooEarly,
            "0001-01-01 is before 2010-01-01, the earliest plausible date for "
            "'kpi.5g-population-coverage' (10 years before its baseline era)",
            "data.as_of",
            "as_of_too_early",
        ),
    ),
    "time-in-future": (
        "time more than max_time_ahead_s (default 300 s) ahead of the receive time",
        _example(
            TimeInFuture,
            "time 9999-12-31T23:59:59+00:00 is more than 300 s ahead of the receive time "
            "2024-07-05T00:30:00+00:00",
            "time",
            "time_in_future",
        ),
    ),
    "too-many-requests": (
        "The API key's rate limit is exhausted",
        _example(
            TooManyRequests,
            "the rate limit of this API key (500 events/s, burst 2000) is exhausted; retry in 1 s",
            "Authorization",
            "rate_limited",
        ),
    ),
    "kafka-unavailable": (
        "Kafka did not acknowledge within the delivery timeout: nothing was accepted",
        _example(
            KafkaUnavailable,
            "the event could not be written to Kafka; it was not accepted, retry later",
            "(event)",
            "kafka",
        ),
    ),
    "storage-unavailable": (
        "The receipt store (MongoDB) did not answer: nothing was accepted",
        _example(
            StorageUnavailable,
            "the receipt store is unavailable; the event was not accepted, retry later",
            "(event)",
            "storage",
        ),
    ),
}


def examples_for(*slugs: str) -> dict[int, dict[str, dict[str, Any]]]:
    """Examples grouped by status code, for the OpenAPI `responses` of a route."""
    grouped: dict[int, dict[str, dict[str, Any]]] = {}
    for slug in slugs:
        summary, value = EXAMPLES[slug]
        grouped.setdefault(value["status"], {})[slug] = {"summary": summary, "value": value}
    return grouped


def add_service_error_handlers(app: FastAPI) -> None:
    """Map the service layer's errors (services/ingest/service/errors.py) to problem details:
    the same answer the shared handler gives a database error."""

    async def on_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A database outage is the client's cue to retry, never a 500.
        log.warning("storage_unavailable", error=repr(exc), path=request.url.path)
        return problem_response(storage_unavailable(), request)

    app.add_exception_handler(errors.StorageUnavailable, on_storage_unavailable)
