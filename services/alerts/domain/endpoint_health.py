"""When a webhook endpoint is disabled. Pure.

Following the Standard Webhooks guidance: ``410 Gone`` disables the endpoint at once; an endpoint
that has failed every attempt for ``disable_after`` (a setting) is disabled too. Any success
ends a failing period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class EndpointVerdict:
    failing_since: datetime | None
    disable: bool
    reason: str | None = None


def after_attempt(
    *,
    failing_since: datetime | None,
    succeeded: bool,
    status_code: int | None,
    at: datetime,
    disable_after: timedelta,
) -> EndpointVerdict:
    """The endpoint's failing period after one attempt, and whether to disable it now."""
    if succeeded:
        return EndpointVerdict(failing_since=None, disable=False)
    since = failing_since if failing_since is not None and failing_since <= at else at
    if status_code == 410:
        return EndpointVerdict(since, disable=True, reason="the receiver answered 410 Gone")
    if at - since >= disable_after:
        hours = (at - since).total_seconds() / 3600
        return EndpointVerdict(
            since,
            disable=True,
            reason=f"every attempt failed for {hours:.1f} h (limit {disable_after})",
        )
    return EndpointVerdict(since, disable=False)
