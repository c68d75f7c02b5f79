"""Bearer-token authentication for admin endpoints (token from SHINCHOKU_ADMIN_TOKEN)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.http.problems import Unauthenticated
from shared.logs import get_logger

log = get_logger(__name__)

_bearer = HTTPBearer(auto_error=False, description="Admin token (SHINCHOKU_ADMIN_TOKEN)")


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("an 'Authorization: Bearer <token>' header is required")
    return credentials.credentials


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    try:
        token = bearer_token(credentials)
    except Unauthenticated:
        log.info("auth_failed", scope="admin", reason="missing", path=request.url.path)
        raise
    expected: str | None = request.app.state.admin_token
    # Constant-time comparison; with no configured token every admin call is refused.
    if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
        # Audit trail of the attempt; what was presented is never logged.
        log.info("auth_failed", scope="admin", reason="invalid", path=request.url.path)
        raise Unauthenticated("the admin token is not valid")


AdminAuth = Annotated[None, Depends(require_admin)]


class AdminRoute(APIRoute):
    """An admin route that checks the admin token before anything reads the body.

    FastAPI reads and parses a route's body before it solves the dependencies, so `AdminAuth`
    alone would let an unauthenticated caller make the service read and parse a large body
    (up to what the server admits) before the 401. The dependency stays, for the OpenAPI
    security declaration; the check here comes first.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            credentials = await _bearer(request)
            await require_admin(request, credentials)
            return await handler(request)

        return authenticated_first
