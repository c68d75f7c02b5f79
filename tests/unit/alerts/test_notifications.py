"""Which status changes notify whom: classification, filters, dedup keys, relevance."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.notifications import (
    DEFAULT_KINDS,
    NotificationKind,
    SubscriptionFilter,
    classify,
    closes_episode,
    matches,
    notification_key,
    reminder_key,
    select,
    still_relevant,
)
from shared.events.contracts import BAD_STATUSES, GOOD_STATUSES, Status, status_severity
from tests.unit.alerts.factories import change

STATUSES = list(Status)
K = NotificationKind


@pytest.mark.parametrize(
    ("previous", "new", "kind"),
    [
        (None, Status.OFF_TRACK, K.SLIPPED),
        (None, Status.AT_RISK, K.SLIPPED),
        (Status.ON_TRACK, Status.AT_RISK, K.SLIPPED),
        (Status.AT_RISK, Status.OFF_TRACK, K.SLIPPED),
        (Status.OFF_TRACK, Status.OVERDUE, K.OVERDUE),
        (Status.NO_DATA, Status.STALE, K.STALE),
        (Status.OFF_TRACK, Status.AT_RISK, None),
        (Status.OVERDUE, Status.OFF_TRACK, None),
        (Status.OFF_TRACK, Status.ON_TRACK, K.RECOVERED),
        (Status.STALE, Status.ACHIEVED, K.RECOVERED),
        (Status.ON_TRACK, Status.ACHIEVED, None),
        (Status.OFF_TRACK, Status.NO_DATA, None),
        (None, Status.ON_TRACK, None),
        (Status.ACHIEVED, Status.TARGET_PENDING, None),
    ],
)
def test_classify_examples(previous: Status | None, new: Status, kind: K | None) -> None:
    """Each transition is classified as the issue defines slips and recoveries."""
    assert classify(change(previous=previous, status=new)) == kind


def test_classify_over_every_transition() -> None:
    """Over all status pairs: a notification is a worse bad status or a return to good."""
    for previous, new in itertools.product([None, *STATUSES], STATUSES):
        kind = classify(change(previous=previous, status=new))
        worse_bad = new in BAD_STATUSES and (
            previous is None or status_severity(new) > status_severity(previous)
        )
        recovery = new in GOOD_STATUSES and previous in BAD_STATUSES
        assert (kind is not None) == (worse_bad or recovery), (previous, new)
        if kind is K.RECOVERED:
            assert recovery
        elif kind is not None:
            assert worse_bad
            assert (kind is K.OVERDUE) == (new is Status.OVERDUE)
            assert (kind is K.STALE) == (new is Status.STALE)


def test_default_filter_matches_slips_but_not_recoveries() -> None:
    """Recoveries are sent only to subscriptions that ask for them."""
    default = SubscriptionFilter()
    slip = change()
    recovery = change(previous=Status.OFF_TRACK, status=Status.ON_TRACK)
    assert K.RECOVERED not in DEFAULT_KINDS
    assert matches(default, slip, K.SLIPPED)
    assert not matches(default, recovery, K.RECOVERED)
    assert matches(SubscriptionFilter(kinds=[K.RECOVERED]), recovery, K.RECOVERED)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SubscriptionFilter(ministries=["mic"]), True),
        (SubscriptionFilter(ministries=["mhlw", "mic"]), True),
        (SubscriptionFilter(ministries=["mhlw"]), False),
        (SubscriptionFilter(measures=["m.test"]), True),
        (SubscriptionFilter(measures=["m.other"]), False),
        (SubscriptionFilter(kpis=["kpi.test"]), True),
        (SubscriptionFilter(kpis=["kpi.other"]), False),
        (SubscriptionFilter(ministries=["mic"], kpis=["kpi.other"]), False),
        (SubscriptionFilter(min_severity=Status.OFF_TRACK), True),
        (SubscriptionFilter(min_severity=Status.OVERDUE), False),
        (SubscriptionFilter(kinds=[K.OVERDUE]), False),
    ],
)
def test_filter_dimensions(flt: SubscriptionFilter, expected: bool) -> None:
    """Filters combine ministries, measures, KPIs, minimum severity and kinds with AND."""
    assert matches(flt, change(status=Status.OFF_TRACK), K.SLIPPED) is expected


def test_recovery_ignores_min_severity() -> None:
    """A recovery's good status is never 'severe enough', yet it is sent when asked for."""
    flt = SubscriptionFilter(kinds=[K.RECOVERED], min_severity=Status.OVERDUE)
    assert matches(flt, change(previous=Status.OVERDUE, status=Status.ON_TRACK), K.RECOVERED)


def test_filter_rejects_empty_kinds_and_dedups() -> None:
    """A filter must name at least one kind; repeated kinds collapse."""
    with pytest.raises(ValueError, match="kinds"):
        SubscriptionFilter(kinds=[])
    assert SubscriptionFilter(kinds=[K.STALE, K.STALE]).kinds == [K.STALE]


def test_select_pairs_each_matching_subscription_with_the_kind() -> None:
    """select returns (subscription, kind) for every matching subscription, none otherwise."""
    subs = [
        ("a", SubscriptionFilter()),
        ("b", SubscriptionFilter(ministries=["mhlw"])),
        ("c", SubscriptionFilter(kpis=["kpi.test"])),
    ]
    assert select(subs, change()) == [("a", K.SLIPPED), ("c", K.SLIPPED)]
    assert select(subs, change(previous=Status.ON_TRACK, status=Status.ACHIEVED)) == []


def test_notification_key_is_per_subscription_episode_and_kind() -> None:
    """The dedup key is equal exactly when subscription, KPI, episode and kind are."""
    slip = change(episode_id="e1")
    again = change(previous=Status.AT_RISK, episode_id="e1")
    assert notification_key("s", slip, K.SLIPPED) == notification_key("s", again, K.SLIPPED)
    assert notification_key("s", slip, K.SLIPPED) != notification_key("s", slip, K.OVERDUE)
    assert notification_key("s", slip, K.SLIPPED) != notification_key("t", slip, K.SLIPPED)
    other_episode = change(episode_id="e2")
    assert notification_key("s", slip, K.SLIPPED) != notification_key("s", other_episode, K.SLIPPED)
    assert reminder_key("k", 2) == "k#r2"


@given(
    episode=st.text(min_size=1, max_size=20),
    kind=st.sampled_from(list(K)),
    subscription=st.text(alphabet="abcdef0123456789", min_size=1, max_size=12),
)
def test_notification_key_is_deterministic(episode: str, kind: K, subscription: str) -> None:
    """The same inputs always give the same key (a replay cannot notify twice)."""
    c = change(episode_id=episode)
    assert notification_key(subscription, c, kind) == notification_key(subscription, c, kind)


def test_closes_episode() -> None:
    """Leaving the bad statuses closes the episode the change carries."""
    assert closes_episode(change(previous=Status.OFF_TRACK, status=Status.ON_TRACK))
    assert closes_episode(change(previous=Status.OFF_TRACK, status=Status.NO_DATA))
    assert not closes_episode(change(previous=Status.AT_RISK, status=Status.OFF_TRACK))
    assert not closes_episode(change(previous=None, status=Status.ON_TRACK, episode_id=None))


@pytest.mark.parametrize(
    ("kind", "current", "relevant"),
    [
        (K.SLIPPED, change(status=Status.OFF_TRACK, episode_id="e1"), True),
        (K.SLIPPED, change(status=Status.OVERDUE, episode_id="e1"), True),
        (K.SLIPPED, change(status=Status.ON_TRACK, episode_id="e1"), False),
        (K.SLIPPED, change(status=Status.OFF_TRACK, episode_id="e2"), False),
        (K.OVERDUE, change(status=Status.OVERDUE, episode_id="e1"), True),
        (K.OVERDUE, change(status=Status.OFF_TRACK, episode_id="e1"), False),
        (K.STALE, change(status=Status.STALE, episode_id="e1"), True),
        (K.STALE, change(status=Status.AT_RISK, episode_id="e1"), False),
        (K.RECOVERED, change(status=Status.ON_TRACK, episode_id="e1"), True),
        (K.RECOVERED, change(status=Status.ACHIEVED, episode_id=None), True),
        (K.RECOVERED, change(status=Status.OFF_TRACK, episode_id="e2"), False),
        (K.SLIPPED, None, False),
        (K.DIVERGENCE, None, True),
    ],
)
def test_still_relevant(kind: K, current: object, relevant: bool) -> None:
    """A held-back notification goes out only if the KPI is still in the reported situation."""
    assert still_relevant(kind, "e1", current) is relevant  # type: ignore[arg-type]
