"""One exception tree for every service, mapped once to RFC 9457 problem details.

Domain and handler code raise `Problem` subclasses (no FastAPI imports needed to do so); the
application maps them — and FastAPI's own validation errors — to ``application/problem+json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shinchoku.example/problems/"


class FieldError(BaseModel):
    field: str = Field(description="JSON pointer-like path of the offending field, e.g. data.value")
    reason: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with Shinchoku's `errors` extension listing every bad field."""

    type: str = Field(examples=[f"{PROBLEM_BASE}validation-error"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):  # noqa: N818 - the RFC's own word
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    @classmethod
    def type_uri(cls) -> str:
        return PROBLEM_BASE + cls.slug

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        body = ProblemDetails(
            # The instance's slug: on_http sets it per answer (404 not-found, 405 ...).
            type=PROBLEM_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        body.update(self.extensions)
        return body


class ValidationProblem(Problem):
    status, slug, title = 422, "validation-error", "The request is not valid"


class MalformedRequest(Problem):
    status, slug, title = 400, "malformed-request", "The request could not be parsed"


class Unauthenticated(Problem):
    status, slug, title = 401, "unauthenticated", "Missing or invalid credentials"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="shinchoku"'})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed for these credentials"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "No such resource"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "A dependency is unavailable"


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.to_body(instance=request.url.path),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def _field_path(location: Sequence[int | str]) -> str:
    parts = [str(piece) for piece in location]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "(body)"


def add_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError(field=_field_path(item.get("loc", ())), reason=str(item.get("msg", "")))
            for item in exc.errors()
        ]
        problem = ValidationProblem(f"{len(errors)} invalid field(s)", errors=errors)
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = Problem(str(exc.detail), headers=exc.headers)
        problem.status = exc.status_code
        problem.slug = {404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        problem.title = str(exc.detail)
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    install_problem_documentation(app)


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given problem types, with an example each."""
    responses: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        example = {
            "type": problem.type_uri(),
            "title": problem.title,
            "status": problem.status,
            "detail": "…",
        }
        entry = responses.setdefault(
            problem.status,
            {
                "model": ProblemDetails,
                "description": problem.title,
                "content": {PROBLEM_JSON: {"examples": {}}},
            },
        )
        entry["content"][PROBLEM_JSON]["examples"][problem.slug] = {"value": example}
    return responses


_PROBLEM_REF = "#/components/schemas/ProblemDetails"
# What FastAPI documents for 422 (and the route's JSON media type for other errors), where
# every service answers problem details instead.
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _is_error_schema(schema: Any) -> bool:
    ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
    return ref == _PROBLEM_REF or ref.rsplit("/", 1)[-1] in _FASTAPI_ERROR_SCHEMAS


def _referenced(document: dict[str, Any], name: str) -> bool:
    schemas = document.get("components", {}).get("schemas", {})
    rest = {
        "paths": document.get("paths"),
        "schemas": {k: v for k, v in schemas.items() if k != name},
    }
    return f'"#/components/schemas/{name}"' in json.dumps(rest)


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what `add_problem_handlers` answers: every 4xx/5xx that
    FastAPI documents as `application/json` (`HTTPValidationError` for 422, or `ProblemDetails`
    under the route's JSON media type) becomes `application/problem+json` with the
    `ProblemDetails` schema. Error responses with a body of their own (/readyz's 503) are left
    alone. Idempotent; mutates and returns `document`."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                plain = content.get("application/json")
                if str(status)[:1] not in {"4", "5"} or (
                    plain is None and PROBLEM_JSON not in content
                ):
                    continue
                if plain is not None and not _is_error_schema(plain.get("schema")):
                    continue
                content.pop("application/json", None)
                content.setdefault(PROBLEM_JSON, {}).setdefault("schema", {"$ref": _PROBLEM_REF})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if _referenced(document, "ProblemDetails"):
        generated = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in generated.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas.setdefault("ProblemDetails", generated)
    for name in _FASTAPI_ERROR_SCHEMAS:  # HTTPValidationError first: it references the other
        if name in schemas and not _referenced(document, name):
            del schemas[name]
    return document


def install_problem_documentation(app: FastAPI) -> None:
    """Post-process the app's generated OpenAPI document with `document_problems`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(generate())

    app.openapi = openapi  # type: ignore[method-assign]
