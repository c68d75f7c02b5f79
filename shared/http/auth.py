"""Bearer-token authentication for admin endpoints (token from SHINCHOKU_ADMIN_TOKEN)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
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
