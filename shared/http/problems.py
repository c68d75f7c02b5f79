"""One exception tree for every service, mapped once to RFC 9457 problem details.

Domain and handler code raise `Problem` subclasses (no FastAPI imports needed to do so); the
application maps them, FastAPI's own validation and routing errors, a database error (503 with
``Retry-After``) and any unexpected exception (500, no internals) to ``application/problem+json``.
Every problem carries a machine-readable ``code``; its ``type`` is a relative URI
(``/problems/<slug>``, resolved against the request URI as RFC 9457 §3.1.1 says) that each
service answers with a short page on the problem type.
"""

from __future__ import annotations

import html
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
# Relative, so a problem's type resolves to the answering service's own page about it.
PROBLEM_BASE = "/problems/"
# Seconds a client should wait before retrying when the database did not answer.
DATABASE_RETRY_AFTER_S = 5

log = structlog.get_logger("shared.http.problems")


class FieldError(BaseModel):
    field: str = Field(description="JSON pointer-like path of the offending field, e.g. data.value")
    reason: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with Shinchoku's `errors` extension listing every bad field and
    its `code` extension naming the machine-readable reason."""

    type: str = Field(
        description="URI reference of the problem type; GET it for a page describing the type.",
        examples=[f"{PROBLEM_BASE}validation-error"],
    )
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    code: str = Field(
        description="Machine-readable reason; several codes may share one type.",
        examples=["validation_error"],
    )


class Problem(Exception):  # noqa: N818 - the RFC's own word
    """An unexpected error in the service. The answer carries no internals (no exception text,
    no stack trace); the service logs them. Retrying may help; report it if it persists."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"
    # The machine-readable reason when the raiser names none; None: the slug in snake case.
    code: str | None = None

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

    @classmethod
    def default_code(cls) -> str:
        """The code when the raiser names none (not-found → not_found)."""
        return cls.code or cls.slug.replace("-", "_")

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        body = ProblemDetails(
            type=self.type_uri(),
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
            code=self.default_code(),
        ).model_dump(exclude_none=True)
        body.update(self.extensions)
        return body


class ValidationProblem(Problem):
    """The request (body, query or path parameters) does not match what the endpoint accepts.
    `errors` lists every offending field and why; correct them and send the request again."""

    status, slug, title = 422, "validation-error", "The request is not valid"


class MalformedRequest(Problem):
    """The body could not be parsed at all (not JSON, or not the expected encoding). Nothing
    was accepted."""

    status, slug, title = 400, "malformed-request", "The request could not be parsed"


class BadRequest(Problem):
    """The request is not one the endpoint can answer (routing level), for a reason named in
    `detail`."""

    status, slug, title = 400, "bad-request", "Bad request"


class Unauthenticated(Problem):
    """No credentials, or credentials that are malformed, unknown or revoked. Send
    `Authorization: Bearer <token>` with a valid key or token."""

    status, slug, title = 401, "unauthenticated", "Missing or invalid credentials"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="shinchoku"', **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(Problem):
    """The credentials are valid but do not allow this request (another ministry's entry,
    another source)."""

    status, slug, title = 403, "forbidden", "Not allowed for these credentials"


class NotFound(Problem):
    """No resource at this path, or none with this id. Check the id against the catalogue or
    the list endpoint."""

    status, slug, title = 404, "not-found", "No such resource"


class MethodNotAllowed(Problem):
    """The path exists but does not answer this HTTP method; the `Allow` header lists the
    methods it does answer."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(Problem):
    """The request conflicts with the current state of the resource (a duplicate, or an
    operation the resource's state does not allow)."""

    status, slug, title = 409, "conflict", "Conflicts with the current state"


class PayloadTooLarge(Problem):
    """The body exceeds the service's size limit. Send less (smaller batches) and retry."""

    status, slug, title = 413, "payload-too-large", "The request body is too large"


class UnsupportedMediaType(Problem):
    """The Content-Type is not one the endpoint accepts."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported content type"


class TooManyRequests(Problem):
    """A rate limit is exhausted. Wait the seconds in `Retry-After`, then retry."""

    status, slug, title = 429, "too-many-requests", "Too many requests"


class HttpError(Problem):
    """An HTTP-level error without a more specific problem type; `status` and `detail` say
    which."""

    status, slug, title = 400, "http-error", "HTTP error"


class ServiceUnavailable(Problem):
    """A dependency the service needs for this request did not answer. Nothing was changed;
    retry after the seconds in `Retry-After`."""

    status, slug, title = 503, "service-unavailable", "A dependency is unavailable"


class StorageUnavailable(ServiceUnavailable):
    """The service's database (MongoDB / FerretDB) did not answer. Nothing was accepted or
    changed; retry after the seconds in `Retry-After`."""

    slug, title = "storage-unavailable", "The database is unavailable"
    code = "storage"


def problem_types() -> dict[str, type[Problem]]:
    """Every problem type defined in the running process, by slug (the shared ones and those
    of the services imported)."""

    def walk(cls: type[Problem]) -> Iterator[type[Problem]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    return {cls.slug: cls for cls in walk(Problem)}


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


_HTTP_PROBLEMS: dict[int, type[Problem]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
}


def storage_unavailable() -> StorageUnavailable:
    return StorageUnavailable(
        "the database is unavailable; nothing was accepted or changed, retry later",
        errors=[FieldError(field="(request)", reason="MongoDB did not answer")],
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def add_problem_handlers(app: FastAPI) -> None:
    """Map the exception tree to problem details, once, and serve the problem type pages."""

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
        problem_class = _HTTP_PROBLEMS.get(exc.status_code, HttpError)
        problem = problem_class(str(exc.detail), headers=exc.headers)
        if problem_class is HttpError:
            problem.status = exc.status_code
        return problem_response(problem, request)

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        # A database outage is the client's cue to retry, never a 500.
        log.warning("storage_unavailable", error=repr(exc), path=request.url.path)
        return problem_response(storage_unavailable(), request)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware calls this and re-raises, so uvicorn still logs the
        # traceback; the client sees no internals.
        log.error("unhandled_exception", error_type=type(exc).__name__, path=request.url.path)
        problem = Problem("an unexpected error occurred; it has been logged")
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(PyMongoError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
    app.include_router(problem_pages_router())
    install_problem_documentation(app)


def _page(problem: type[Problem]) -> str:
    doc = inspect.getdoc(problem) or problem.title
    paragraphs = "".join(f"<p>{html.escape(part)}</p>" for part in doc.split("\n\n"))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(problem.title)}</title></head><body>"
        f"<h1>{html.escape(problem.title)}</h1>"
        f"<p>HTTP status <code>{problem.status}</code>; type <code>"
        f"{html.escape(problem.type_uri())}</code>; default code <code>"
        f"{html.escape(problem.default_code())}</code>.</p>{paragraphs}"
        "<p>Problem details follow RFC 9457 (<code>application/problem+json</code>); "
        "<code>errors</code> lists the offending fields, <code>code</code> the reason.</p>"
        "</body></html>"
    )


def problem_pages_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        PROBLEM_BASE + "{slug}",
        summary="A short page describing a problem type (the `type` URI of problem details)",
        response_class=HTMLResponse,
        # Pages for people following a `type` link, not part of the API contract.
        include_in_schema=False,
    )
    async def problem_page(slug: str) -> HTMLResponse:
        problem = problem_types().get(slug)
        if problem is None:
            raise NotFound(f"no problem type '{slug}'", extensions={"code": "unknown_problem_type"})
        return HTMLResponse(_page(problem))

    return router


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given problem types, with an example each."""
    responses: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        example = {
            "type": problem.type_uri(),
            "title": problem.title,
            "status": problem.status,
            "detail": "…",
            "code": problem.default_code(),
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
