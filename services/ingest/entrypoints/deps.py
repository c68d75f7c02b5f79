"""Dependencies of the ingest routes, declared once as `Annotated` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop
per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.ingest.composition import IngestService
from services.ingest.entrypoints.problems import unauthenticated
from services.ingest.metrics import IngestMetrics
from services.ingest.service.authentication import AuthFailure, Principal
from services.ingest.service.key_administration import KeyAdmin
from services.ingest.service.ownership_administration import OwnershipAdmin
from services.ingest.service.rate_limiting import RateLimiter
from services.ingest.service.submission import IngestHandler
from services.ingest.settings import IngestSettings

_api_key = HTTPBearer(
    auto_error=False,
    scheme_name="MinistryApiKey",
    description="A ministry API key (`shk_<key id>_<secret>`), created with "
    "`shinchoku keys create --ministry CODE` or POST /v1/admin/keys.",
)

# One generic answer for every key that is presented and refused (malformed, unknown, wrong
# secret, revoked): the answer must not tell a caller whether a key id exists. The reason is
# kept for the logs and the auth-failure metric.
INVALID_KEY = ("the API key is not valid", "invalid_key")
_AUTH_ANSWER = {
    AuthFailure.MISSING: ("an 'Authorization: Bearer <API key>' header is required", "missing"),
    AuthFailure.MALFORMED: INVALID_KEY,
    AuthFailure.UNKNOWN: INVALID_KEY,
    AuthFailure.REVOKED: INVALID_KEY,
}


def _state(request: Request, name: str) -> object:
    return getattr(request.app.state, name)


def _service(request: Request) -> IngestService:
    service = _state(request, "ingest")
    assert isinstance(service, IngestService)
    return service


async def get_handler(request: Request) -> IngestHandler:
    return _service(request).submission


async def get_key_admin(request: Request) -> KeyAdmin:
    return _service(request).key_admin


async def get_ownership_admin(request: Request) -> OwnershipAdmin:
    return _service(request).ownership_admin


async def get_limiter(request: Request) -> RateLimiter:
    return _service(request).rate_limiter


async def get_metrics(request: Request) -> IngestMetrics:
    metrics = _state(request, "ingest_metrics")
    assert isinstance(metrics, IngestMetrics)
    return metrics


async def get_settings(request: Request) -> IngestSettings:
    settings = _state(request, "ingest_settings")
    assert isinstance(settings, IngestSettings)
    return settings


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)],
) -> Principal:
    """The calling ministry, from its API key (401 otherwise). The key is never logged."""
    authenticator = _service(request).authenticator
    raw = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        raw = credentials.credentials
    outcome = await authenticator.authenticate(raw)
    if isinstance(outcome, AuthFailure):
        (await get_metrics(request)).auth_failures.labels(reason=outcome.value).inc()
        raise unauthenticated(*_AUTH_ANSWER[outcome])
    return outcome


Handler = Annotated[IngestHandler, Depends(get_handler)]
Keys = Annotated[KeyAdmin, Depends(get_key_admin)]
Ownership = Annotated[OwnershipAdmin, Depends(get_ownership_admin)]
Limiter = Annotated[RateLimiter, Depends(get_limiter)]
Metrics = Annotated[IngestMetrics, Depends(get_metrics)]
Settings = Annotated[IngestSettings, Depends(get_settings)]
Caller = Annotated[Principal, Depends(authenticated)]
