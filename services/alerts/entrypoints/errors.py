"""The alerts service errors as RFC 9457 problems, mapped once for the whole API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.alerts.service.errors import AlertsError, Conflict, InvalidInput, NotFound
from shared.http import problems


def as_problem(error: AlertsError) -> problems.Problem:
    """The problem a service error answers as (same detail; a validation problem keeps its
    fields and its code)."""
    if isinstance(error, NotFound):
        return problems.NotFound(error.detail)
    if isinstance(error, Conflict):
        return problems.Conflict(error.detail)
    if isinstance(error, InvalidInput):
        return problems.ValidationProblem(
            error.detail,
            errors=[problems.FieldError(field=e.field, reason=e.reason) for e in error.errors],
            extensions=None if error.code is None else {"code": error.code},
        )
    return problems.Problem(error.detail)


def add_error_handlers(app: FastAPI) -> None:
    async def on_alerts_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AlertsError)
        return problems.problem_response(as_problem(exc), request)

    app.add_exception_handler(AlertsError, on_alerts_error)
