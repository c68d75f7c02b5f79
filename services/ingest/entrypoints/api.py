"""Routes of the ingest service: one event (structured or binary mode) or a batch.

Order of checks: API key (401) → body size (413) → content mode (415) → parse (400/422) →
rate limit per key, one token per event (429) → per event: source vs key (403), catalogue
(422/403), dedup (200/409) → publish (202 only after Kafka's acknowledgement, else 503).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.ingest.domain.rate_limit import retry_after_header
from services.ingest.entrypoints import openapi, parsing
from services.ingest.entrypoints.deps import Caller, Handler, Limiter, Metrics, Settings
from services.ingest.entrypoints.problems import (
    EventInFlight,
    IngestProblemDetails,
    KafkaUnavailable,
    for_violations,
    rate_limited,
    too_large,
    unsupported,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.service.authentication import Principal
from services.ingest.service.rate_limiting import RateLimiter
from services.ingest.service.submission import Outcome, Result, Unavailable
from services.ingest.settings import IngestSettings, Limits
from shared.events.cloudevents import CloudEvent
from shared.http.problems import FieldError, Problem, StorageUnavailable

ACCEPTED_EXAMPLE = {
    "id": "mic-2024-06-30-5g-coverage",
    "source": "/ministries/digital",
    "status": "accepted",
    "duplicate": False,
}


class Acknowledgement(BaseModel):
    id: str
    source: str
    status: Literal["accepted", "duplicate"]
    duplicate: bool = Field(description="True when the same source + id was accepted before.")


class EventResult(BaseModel):
    index: int = Field(description="Position of the event in the batch.")
    id: str | None
    source: str | None
    status: int = Field(description="The status this event would have had alone (202, 200, 4xx).")
    outcome: Literal["accepted", "duplicate", "rejected", "in_flight", "unavailable"]
    duplicate: bool
    problem: IngestProblemDetails | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    in_flight: int
    unavailable: int
    results: list[EventResult]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


def admit(limiter: RateLimiter, metrics: IngestMetrics, caller: Principal, cost: int) -> None:
    wait = limiter.admit(caller.key_id, cost)
    if wait > 0:
        metrics.rate_limited.labels(ministry=caller.ministry).inc()
        raise rate_limited(
            f"the rate limit of this API key ({limiter.events_per_s:g} events/s, burst "
            f"{limiter.burst}) is exhausted; retry in {retry_after_header(wait)} s",
            retry_after_header(wait),
        )


def problem_for(result: Result, settings: IngestSettings) -> Problem:
    retry = {"Retry-After": str(settings.unavailable_retry_after_s)}
    if result.outcome is Outcome.UNAVAILABLE:
        if result.unavailable is Unavailable.STORAGE:
            return StorageUnavailable(
                "the receipt store is unavailable; the event was not accepted, retry later",
                errors=[FieldError(field="(event)", reason="receipt store unavailable")],
                headers=retry,
                extensions={"code": "storage"},
            )
        return KafkaUnavailable(
            "the event could not be written to Kafka; it was not accepted, retry later",
            errors=[FieldError(field="(event)", reason="no acknowledgement from Kafka")],
            headers=retry,
            extensions={"code": "kafka"},
        )
    if result.outcome is Outcome.IN_FLIGHT:
        return EventInFlight(
            "an identical event (same source and id) is being accepted right now; retry shortly",
            errors=[FieldError(field="id", reason="the same source + id is in flight")],
            headers={"Retry-After": "1"},
            extensions={"code": "in_flight"},
        )
    return for_violations(result.violations)


def acknowledgement(event: CloudEvent, outcome: Outcome) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "status": outcome.value,
        "duplicate": outcome is Outcome.DUPLICATE,
    }


def create_router(limits: Limits) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["events"])

    @router.post(
        "/events",
        status_code=202,
        summary="Submit one CloudEvent (structured or binary mode)",
        description="Answers **202** only after Kafka acknowledged the record (idempotent "
        "producer, acks=all); **200** with `duplicate: true` when the same source + id was "
        "accepted before (it is not published again). Errors are RFC 9457 problem details "
        "naming the field and the reason.",
        response_model=Acknowledgement,
        responses={
            202: {
                "description": "Accepted: Kafka acknowledged the record",
                "content": {"application/json": {"example": ACCEPTED_EXAMPLE}},
            },
            200: {
                "model": Acknowledgement,
                "description": "Duplicate: the same source + id was accepted before",
                "content": {
                    "application/json": {
                        "example": {**ACCEPTED_EXAMPLE, "status": "duplicate", "duplicate": True}
                    }
                },
            },
            **openapi.problem_responses(
                "malformed-request",
                "unauthenticated",
                "source-not-allowed",
                "wrong-ministry",
                "event-in-flight",
                "payload-too-large",
                "event-too-large",
                "unsupported-media-type",
                "invalid-event",
                "unknown-event-type",
                "not-in-catalogue",
                "wrong-kind",
                "inconsistent-event",
                "impossible-value",
                "as-of-in-future",
                "as-of-too-early",
                "time-in-future",
                "too-many-requests",
                "kafka-unavailable",
                "storage-unavailable",
            ),
        },
        openapi_extra=openapi.single_event_request(limits),
    )
    async def submit_event(
        request: Request,
        caller: Caller,
        handler: Handler,
        limiter: Limiter,
        metrics: Metrics,
        settings: Settings,
    ) -> JSONResponse:
        body = await read_body(request, settings.limits.max_event_bytes)
        content_type = request.headers.get("content-type")
        try:
            if parsing.is_structured(content_type):
                event = parsing.structured_event(body)
            elif "ce-specversion" in request.headers:
                event = parsing.binary_event(request.headers, body)
            else:
                raise unsupported(
                    "send application/cloudevents+json (structured mode) or ce-* headers "
                    "(binary mode) with application/json data"
                )
        except Problem as problem:
            metrics.count_event("invalid", caller.ministry, "rejected", _code(problem))
            raise
        admit(limiter, metrics, caller, 1)
        (result,) = await handler.submit([event], caller)
        metrics.request_events.observe(1)
        if result.outcome in {Outcome.ACCEPTED, Outcome.DUPLICATE}:
            status = 202 if result.outcome is Outcome.ACCEPTED else 200
            return JSONResponse(acknowledgement(event, result.outcome), status_code=status)
        raise problem_for(result, settings)

    @router.post(
        "/events:batch",
        summary="Submit a batch of CloudEvents (application/cloudevents-batch+json)",
        description=f"At most {limits.max_batch_events} events and {limits.max_batch_bytes} "
        "bytes. Answers **200** with one result per event, in order: its status, outcome and "
        "problem, as it would have been answered alone. Answers **503** (with the results) "
        "when Kafka or the receipt store failed and no event was accepted.",
        response_model=BatchResult,
        responses={
            200: {
                "description": "One result per event",
                "content": {
                    "application/json": {
                        "example": {
                            "accepted": 1,
                            "duplicates": 0,
                            "rejected": 1,
                            "in_flight": 0,
                            "unavailable": 0,
                            "results": [
                                {
                                    "index": 0,
                                    "id": "mic-2024-06-30-5g-coverage",
                                    "source": "/ministries/digital",
                                    "status": 202,
                                    "outcome": "accepted",
                                    "duplicate": False,
                                    "problem": None,
                                },
                                {
                                    "index": 1,
                                    "id": "mic-2024-06-30-x",
                                    "source": "/ministries/digital",
                                    "status": 422,
                                    "outcome": "rejected",
                                    "duplicate": False,
                                    "problem": {
                                        "type": "/problems/impossible-value",
                                        "title": "The value is impossible for the KPI's unit",
                                        "status": 422,
                                        "detail": "130.0 is impossible for a percentage",
                                        "errors": [
                                            {
                                                "field": "data.value",
                                                "reason": "130.0 is impossible for a percentage",
                                            }
                                        ],
                                        "code": "impossible_value",
                                    },
                                },
                            ],
                        }
                    }
                },
            },
            **openapi.problem_responses(
                "malformed-request",
                "unauthenticated",
                "payload-too-large",
                "batch-too-large",
                "unsupported-media-type",
                "too-many-requests",
                "kafka-unavailable",
                "storage-unavailable",
            ),
        },
        openapi_extra=openapi.batch_request(limits),
    )
    async def submit_batch(
        request: Request,
        caller: Caller,
        handler: Handler,
        limiter: Limiter,
        metrics: Metrics,
        settings: Settings,
    ) -> JSONResponse:
        if not parsing.is_batch(request.headers.get("content-type")):
            raise unsupported("a batch must be application/cloudevents-batch+json")
        body = await read_body(request, settings.limits.max_batch_bytes)
        parsed = parsing.batch_events(body, settings.limits.max_batch_events)
        events = [item for item in parsed if isinstance(item, CloudEvent)]
        admit(limiter, metrics, caller, max(1, len(events)))
        results = iter(await handler.submit(events, caller))
        metrics.request_events.observe(len(parsed))
        # Plain dicts, not models: a batch has up to max_batch_events of them (the OpenAPI
        # `BatchResult` schema documents the shape; the property test holds them to it).
        answers: list[dict[str, Any]] = []
        tally: Counter[str] = Counter()
        unavailable: Problem | None = None
        for index, item in enumerate(parsed):
            if isinstance(item, parsing.Unparsed):
                metrics.count_event(
                    item.type or "invalid", caller.ministry, "rejected", _code(item.problem)
                )
                answer = _refused(index, item.id, item.source, item.problem, "rejected")
            else:
                result = next(results)
                if result.outcome is Outcome.ACCEPTED or result.outcome is Outcome.DUPLICATE:
                    duplicate = result.outcome is Outcome.DUPLICATE
                    answer = {
                        "index": index,
                        "id": item.id,
                        "source": item.source,
                        "status": 200 if duplicate else 202,
                        "outcome": result.outcome.value,
                        "duplicate": duplicate,
                        "problem": None,
                    }
                else:
                    problem = problem_for(result, settings)
                    if result.outcome is Outcome.UNAVAILABLE:
                        unavailable = unavailable or problem
                    answer = _refused(index, item.id, item.source, problem, result.outcome.value)
            tally[answer["outcome"]] += 1
            answers.append(answer)
        summary = {
            "accepted": tally["accepted"],
            "duplicates": tally["duplicate"],
            "rejected": tally["rejected"],
            "in_flight": tally["in_flight"],
            "unavailable": tally["unavailable"],
            "results": answers,
        }
        if unavailable is not None and not tally["accepted"] and not tally["duplicate"]:
            # Nothing was accepted and the cause is ours: the whole batch is worth a retry.
            unavailable.extensions["results"] = answers
            raise unavailable
        return JSONResponse(summary, status_code=200)

    return router


def _code(problem: Problem) -> str:
    code = problem.extensions.get("code")
    return code if isinstance(code, str) else problem.slug


def _refused(
    index: int, id_: str | None, source: str | None, problem: Problem, outcome: str
) -> dict[str, Any]:
    return {
        "index": index,
        "id": id_,
        "source": source,
        "status": problem.status,
        "outcome": outcome,
        "duplicate": False,
        "problem": problem.to_body(),
    }
