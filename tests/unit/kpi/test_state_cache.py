"""The in-memory cache of latest states: what goes in comes out, summaries without decoding."""

from __future__ import annotations

from datetime import UTC, datetime

from services.kpi.adapters.state_cache import StateCache


def state(subject: str, version: int, status: str) -> dict[str, object]:
    return {
        "_id": f"{subject}@{version:010d}",
        "subject_id": subject,
        "version": version,
        "kind": "kpi",
        "ministries": ["digital", "mic"],
        "status": status,
        "aggregate": {"window": [{"value": 1.5, "as_of": "2025-03-31"}], "first": None},
        "evaluation": {"rule": "K3", "inputs": {"planned": 40, "actual": 38.5}},
        "updated_at": datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
        "outbox": [],
    }


def test_a_state_comes_back_equal_with_an_aware_datetime() -> None:
    """Encoding keeps every field, nested values and the UTC-aware timestamp."""
    cache = StateCache([state("kpi.a", 1, "on_track")])
    assert cache.get("kpi.a") == state("kpi.a", 1, "on_track")
    assert cache.get("kpi.missing") is None


def test_put_replaces_the_subjects_state_and_summary() -> None:
    """A newer version replaces the older one; the summary names its version and status."""
    cache = StateCache([state("kpi.a", 1, "on_track"), state("kpi.b", 3, "stale")])
    cache.put(state("kpi.a", 2, "off_track"))
    summary = cache.summary("kpi.a")
    assert summary is not None
    assert (summary.version_id, summary.status) == ("kpi.a@0000000002", "off_track")
    assert summary.ministries == ("digital", "mic")
    assert len(cache) == 2
    assert sorted(s.status for s in cache.summaries()) == ["off_track", "stale"]


def test_loading_versions_in_any_order_keeps_the_latest_of_each_subject() -> None:
    """put_if_newer ignores an older version arriving after a newer one."""
    cache = StateCache()
    for doc in (
        state("kpi.a", 2, "at_risk"),
        state("kpi.a", 1, "on_track"),
        state("kpi.a", 3, "off_track"),
    ):
        cache.put_if_newer(doc)
    summary = cache.summary("kpi.a")
    assert summary is not None
    assert (summary.version, summary.status) == (3, "off_track")
