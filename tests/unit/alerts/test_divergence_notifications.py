"""A divergence episode opening notifies like a slip: the subscriptions asking for the kind,
the measure and its ministries; the webhook carries the measure and the self-assessment."""

from __future__ import annotations

from datetime import date

from services.alerts.domain.notifications import (
    NotificationKind,
    SubscriptionFilter,
    divergence_key,
    select_divergence,
)
from services.alerts.domain.payloads import NotifiedChange, webhook_payload
from shared.events.contracts import (
    DivergenceLevel,
    MeasureDivergenceChanged,
    MeasureRating,
    Status,
)
from tests.unit.alerts.factories import T0


def divergence(
    level: DivergenceLevel = DivergenceLevel.MAJOR,
    previous: DivergenceLevel | None = DivergenceLevel.NONE,
    computed: Status = Status.OFF_TRACK,
) -> MeasureDivergenceChanged:
    return MeasureDivergenceChanged(
        measure_id="m.test",
        ministries=["mic"],
        self_assessment=MeasureRating.ON_TRACK,
        assessed_as_of=date(2026, 3, 31),
        computed_status=computed,
        previous_divergence=previous,
        divergence=level,
        episode_id="m.test:divergence:1",
        evaluated_on=date(2026, 4, 1),
    )


def test_the_opening_of_an_episode_notifies_the_matching_subscriptions() -> None:
    subs = [
        ("all", SubscriptionFilter()),
        ("measure", SubscriptionFilter(measures=["m.test"])),
        ("other-measure", SubscriptionFilter(measures=["m.other"])),
        ("other-ministry", SubscriptionFilter(ministries=["mhlw"])),
        ("kpis-only", SubscriptionFilter(kpis=["kpi.test"])),
        ("slips-only", SubscriptionFilter(kinds=[NotificationKind.SLIPPED])),
        ("severe-only", SubscriptionFilter(min_severity=Status.OVERDUE)),
    ]
    selected = select_divergence(subs, divergence())
    assert selected == [
        ("all", NotificationKind.DIVERGENCE),
        ("measure", NotificationKind.DIVERGENCE),
    ]
    assert divergence_key("all", divergence()) == "all:m.test:m.test:divergence:1:divergence"


def test_a_level_change_or_a_close_notifies_nobody() -> None:
    subs = [("all", SubscriptionFilter())]
    assert not select_divergence(subs, divergence(previous=DivergenceLevel.MINOR))
    assert not select_divergence(
        subs, divergence(level=DivergenceLevel.NONE, previous=DivergenceLevel.MAJOR)
    )


def test_the_webhook_carries_the_measure_and_the_self_assessment() -> None:
    item = NotifiedChange(
        notification_id="n1",
        kind=NotificationKind.DIVERGENCE,
        change=divergence(),
        changed_at=T0,
        status_event_id="divergence:m.test:1",
    )
    payload = webhook_payload([item], api_url="http://kpi", subscription_id="sub")
    data = payload["data"]
    assert payload["type"] == "measure.divergence"
    assert (data["kind"], data["kpi_id"], data["measure_id"]) == ("measure", None, "m.test")
    assert data["status"] == "off_track"
    assert data["explanation"]["self_assessment"] == "on_track"
    assert data["explanation"]["divergence"] == "major"
    assert data["link"] == "http://kpi/v1/measures/m.test/status"
