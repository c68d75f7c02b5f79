"""Routes of the ingest service: one event (structured or binary mode) or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.ingest.entrypoints import parsing
from services.ingest.handlers import IngestHandler, Outcome, Result
from shared.events.cloudevents import CloudEvent
from shared.http.problems import (
    FieldError,
    Forbidden,
    MalformedRequest,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationProblem,
    problem_responses,
)

RETRY_AFTER_S = "5"


class Acknowledgement(BaseModel):
    id: str
    source: str
    status: str
    duplicate: bool = False


def get_handler(request: Request) -> IngestHandler:
    handler: IngestHandler = request.app.state.ingest_handler
    return handler


Handler = Annotated[IngestHandler, Depends(get_handler)]
router = APIRouter(prefix="/v1", tags=["events"])


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


def problem_for(result: Result) -> Problem:
    if result.outcome is Outcome.UNAVAILABLE:
        return ServiceUnavailable(
            "the event could not be written to Kafka; it was not accepted, retry later",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    if result.outcome is Outcome.IN_FLIGHT:
        problem = Problem(
            "an identical event (same source and id) is being accepted right now",
            headers={"Retry-After": "1"},
        )
        problem.status, problem.slug, problem.title = 409, "in-flight", "Event in flight"
        return problem
    errors = [FieldError(field=v.field, reason=v.reason) for v in result.violations]
    codes = {v.code for v in result.violations}
    if "wrong_ministry" in codes:
        return Forbidden(errors[0].reason, errors=errors, extensions={"code": "wrong_ministry"})
    first = result.violations[0]
    return ValidationProblem(first.reason, errors=errors, extensions={"code": first.code})


def acknowledgement(event: CloudEvent, outcome: Outcome) -> dict[str, Any]:
    return Acknowledgement(
        id=event.id,
        source=event.source,
        status=outcome.value,
        duplicate=outcome is Outcome.DUPLICATE,
    ).model_dump()


@router.post(
    "/events",
    status_code=202,
    summary="Submit one CloudEvent (structured or binary mode)",
    response_model=Acknowledgement,
    responses={
        200: {"model": Acknowledgement, "description": "Duplicate: already accepted earlier"},
        **problem_responses(
            MalformedRequest,
            Forbidden,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationProblem,
            ServiceUnavailable,
        ),
    },
)
async def submit_event(request: Request, handler: Handler) -> JSONResponse:
    body = await read_body(request, parsing.MAX_EVENT_BYTES)
    content_type = request.headers.get("content-type")
    if parsing.is_structured(content_type):
        event = parsing.structured_event(body)
    elif "ce-specversion" in request.headers:
        event = parsing.binary_event(request.headers, body)
    else:
        raise UnsupportedMediaType(
            "send application/cloudevents+json (structured mode) or ce-* headers (binary mode)"
        )
    (result,) = await handler.submit([event])
    if result.outcome in {Outcome.ACCEPTED, Outcome.DUPLICATE}:
        status = 202 if result.outcome is Outcome.ACCEPTED else 200
        return JSONResponse(acknowledgement(event, result.outcome), status_code=status)
    raise problem_for(result)


@router.post(
    "/events:batch",
    summary="Submit a batch of CloudEvents (application/cloudevents-batch+json)",
    description=f"At most {parsing.MAX_BATCH_EVENTS} events and {parsing.MAX_BATCH_BYTES} bytes. "
    "The answer is 200 with one result per event, in order: an acknowledgement or a problem.",
    responses=problem_responses(
        MalformedRequest, PayloadTooLarge, UnsupportedMediaType, ValidationProblem
    ),
)
async def submit_batch(request: Request, handler: Handler) -> JSONResponse:
    if not parsing.is_batch(request.headers.get("content-type")):
        raise UnsupportedMediaType("a batch must be application/cloudevents-batch+json")
    body = await read_body(request, parsing.MAX_BATCH_BYTES)
    parsed = parsing.batch_events(body)
    events = [item for item in parsed if isinstance(item, CloudEvent)]
    results = iter(await handler.submit(events))
    answers: list[dict[str, Any]] = []
    for item in parsed:
        if isinstance(item, Problem):
            answers.append(item.to_body())
            continue
        result = next(results)
        if result.outcome in {Outcome.ACCEPTED, Outcome.DUPLICATE}:
            answers.append(acknowledgement(item, result.outcome))
        else:
            answers.append(problem_for(result).to_body())
    return JSONResponse({"results": answers}, status_code=200)
