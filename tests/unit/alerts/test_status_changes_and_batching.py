"""StatusChangeHandler and Batcher on the in-memory stores: a change becomes notifications,
grouped or sent at once, muted by silences, reminded while the episode stays open."""

from __future__ import annotations

from datetime import timedelta

from standardwebhooks.webhooks import Webhook

from services.alerts.domain.silences import SilenceScope
from shared.events.contracts import Status
from tests.unit.alerts.service_harness import alerts


async def test_a_slip_is_sent_once_signed_and_a_replay_is_a_duplicate() -> None:
    """No grouping window: the handler creates the delivery itself; the worker sends it once,
    verifiably signed; the same event handed over again notifies nobody."""
    async with alerts() as a:
        _, secret = await a.subscribe(kpis=["kpi.a"])
        event = await a.change("kpi.a", Status.ON_TRACK, Status.AT_RISK)
        assert await a.graph.worker.drain() == 1
        (sent,) = a.sender.sent
        body = Webhook(secret).verify(sent.body, sent.headers)
        assert (body["type"], body["data"]["status_event_id"]) == ("kpi.slipped", event.id)
        await a.graph.status_changes([event])
        assert await a.deliver() == 0
        labels = {"kind": "slipped"}
        assert a.metric("shinchoku_alerts_notifications_total", **labels, outcome="duplicate") == 1
        assert a.metric("shinchoku_alerts_notifications_total", **labels, outcome="delivered") == 1


async def test_a_change_no_filter_matches_notifies_nobody() -> None:
    """A subscription for another KPI gets nothing."""
    async with alerts() as a:
        await a.subscribe(kpis=["kpi.other"])
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        assert await a.deliver() == 0
        assert a.sender.sent == []


async def test_changes_within_the_window_go_out_as_one_delivery() -> None:
    """A grouping window: nothing before it closes, then one delivery carrying both changes."""
    async with alerts(grouping_window_s=30) as a:
        await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        a.clock.advance(seconds=10)
        await a.change("kpi.b", Status.ON_TRACK, Status.AT_RISK)
        assert await a.deliver() == 0
        a.clock.advance(seconds=25)
        assert await a.deliver() == 1
        (sent,) = a.sender.sent
        changes = sent.payload()["data"]["changes"]
        assert sorted(c["kpi_id"] for c in changes) == ["kpi.a", "kpi.b"]


async def test_a_silence_holds_back_until_it_ends() -> None:
    """A muted notification is recorded as muted, not sent; ending the silence releases it
    (still relevant: the KPI is still off track) and it goes out."""
    async with alerts(grouping_window_s=5) as a:
        sub, _ = await a.subscribe()
        silence = await a.graph.silences.create_silence(
            scope=SilenceScope(kpis=["kpi.a"]),
            starts_at=None,
            ends_at=a.clock() + timedelta(hours=1),
            quiet_hours=None,
            reason="maintenance",
        )
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        a.clock.advance(seconds=10)
        assert await a.deliver() == 0
        (muted,) = await a.graph.subscriptions.notifications(sub, state="muted", limit=None)
        assert muted["muted_by"] == [silence.silence.id]
        await a.graph.silences.end_silence(silence.silence.id)
        assert a.graph.mutes_ended.is_set()
        await a.graph.batcher.tick()  # releases it into a new window
        a.clock.advance(seconds=10)
        assert await a.deliver() == 1
        assert a.types_sent() == ["kpi.slipped"]


async def test_a_muted_notification_no_longer_relevant_is_dropped() -> None:
    """The KPI recovered while its slip was muted: the slip is dropped when the mute ends."""
    async with alerts(grouping_window_s=5) as a:
        sub, _ = await a.subscribe(kinds=["slipped", "recovered"])
        until = a.clock() + timedelta(minutes=5)
        await a.graph.silences.create_silence(
            scope=SilenceScope(), starts_at=None, ends_at=until, quiet_hours=None, reason=None
        )
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        a.clock.advance(seconds=10)
        assert await a.deliver() == 0  # the slip's window closed under the silence: muted
        a.clock.advance(minutes=6)
        await a.change("kpi.a", Status.OFF_TRACK, Status.ON_TRACK)
        await a.deliver()  # the mute is over: the slip is no longer relevant
        a.clock.advance(seconds=10)
        await a.deliver()
        states = {
            n["kind"]: n["state"]
            for n in await a.graph.subscriptions.notifications(sub, state=None, limit=None)
        }
        assert states == {"slipped": "dropped", "recovered": "batched"}
        assert a.types_sent() == ["kpi.recovered"]


async def test_an_open_episode_is_reminded_after_the_interval() -> None:
    """Still off track a reminder interval later: a reminder goes out; after recovery, none."""
    async with alerts(reminder_interval_s=3600) as a:
        await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.deliver()
        a.clock.advance(minutes=30)
        assert await a.graph.batcher.send_reminders() == 0
        a.clock.advance(minutes=31)
        assert await a.graph.batcher.send_reminders() == 1
        await a.deliver()
        reminded = a.sender.sent[-1].payload()["data"]
        assert reminded["reminder"] == 1
        await a.change("kpi.a", Status.OFF_TRACK, Status.ON_TRACK)
        await a.deliver()
        a.clock.advance(hours=2)
        assert await a.graph.batcher.send_reminders() == 0
