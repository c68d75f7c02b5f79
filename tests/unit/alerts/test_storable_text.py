"""Text the alerts API stores must be storable: a NUL character or a lone surrogate anywhere in
a request body is a 422 validation problem, not a database error (PostgreSQL-backed FerretDB
refuses NUL; a lone surrogate is not UTF-8)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.alerts.entrypoints.api import SilenceIn, SubscriptionIn


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "a\x00b"},
        {"scope": {"kpis": ["kpi.x", "\ud89e"]}},
        {"scope": {"measures": ["m\x00"]}},
    ],
)
def test_unstorable_text_in_a_silence_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SilenceIn.model_validate(body)


def test_unstorable_text_in_a_subscription_is_refused() -> None:
    with pytest.raises(ValidationError):
        SubscriptionIn.model_validate(
            {"url": "https://example.org/hook", "description": "x\x00", "filter": {}}
        )


def test_ordinary_text_passes() -> None:
    assert SilenceIn.model_validate({"reason": "保守作業 (maintenance)"}).reason
