"""What the alerts use cases refuse, free of HTTP: entrypoints/errors.py maps each to its
RFC 9457 problem (the detail text passes through unchanged)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One offending input field and why."""

    field: str
    reason: str


class AlertsError(Exception):
    """A use case refused the request; `detail` says why, in words for the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AlertsError):  # noqa: N818 - reads as the condition
    """The subscription, silence or message named does not exist."""


class Conflict(AlertsError):  # noqa: N818 - reads as the condition
    """The request does not fit the current state (a paused subscription, a concurrent change)."""


class InvalidInput(AlertsError):  # noqa: N818 - reads as the condition
    """The input is well-formed but not acceptable; `code` names the reason when it is not the
    generic validation failure."""

    def __init__(
        self, detail: str, *, errors: Sequence[FieldIssue] = (), code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.errors = list(errors)
        self.code = code


class InvalidTarget(InvalidInput):
    """The webhook target URL is refused by the SSRF guard."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the target URL is refused: {reason}",
            errors=[FieldIssue(field="url", reason=reason)],
            code="ssrf_refused",
        )
