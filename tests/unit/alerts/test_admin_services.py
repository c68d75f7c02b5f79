"""SubscriptionAdmin and SilenceAdmin on the in-memory stores: what they refuse (service
errors, mapped to problems by the entrypoints) and what they change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.alerts.domain.silences import SilenceScope
from services.alerts.entrypoints.errors import as_problem
from services.alerts.service.errors import Conflict, InvalidInput, InvalidTarget, NotFound
from shared.events.contracts import Status
from tests.unit.alerts.service_harness import alerts


async def test_an_internal_target_is_refused_as_ssrf() -> None:
    """A URL resolving to a private address is refused (code ssrf_refused, field url)."""
    async with alerts() as a:
        with pytest.raises(InvalidTarget) as refused:
            await a.subscribe("https://hooks.internal/x")
        body = as_problem(refused.value).to_body()
        assert (body["status"], body["code"]) == (422, "ssrf_refused")
        assert body["detail"] == "the target URL is refused: 10.0.0.7 is a private address"
        assert body["errors"] == [{"field": "url", "reason": "10.0.0.7 is a private address"}]
        assert await a.graph.subscriptions.count_subscriptions(state=None) == 0


async def test_unknown_subscriptions_and_silences_are_not_found() -> None:
    """Reading, changing or deleting what does not exist: NotFound, naming it."""
    async with alerts() as a:
        with pytest.raises(NotFound, match="no subscription 'sub_x'"):
            await a.graph.subscriptions.pause("sub_x")
        with pytest.raises(NotFound):
            await a.graph.subscriptions.delete_subscription("sub_x")
        with pytest.raises(NotFound, match="no silence 'sil_x'"):
            await a.graph.silences.end_silence("sil_x")
        with pytest.raises(NotFound):
            await a.graph.silences.create_silence(
                scope=SilenceScope(subscription_id="sub_x"),
                starts_at=None,
                ends_at=a.clock() + timedelta(hours=1),
                quiet_hours=None,
                reason=None,
            )
        assert as_problem(NotFound("no silence 'sil_x'")).to_body()["status"] == 404


async def test_a_paused_subscription_cannot_be_redelivered_to() -> None:
    """Redelivery needs an active subscription; a disabled one cannot be paused."""
    async with alerts() as a:
        sub, _ = await a.subscribe()
        await a.graph.subscriptions.pause(sub)
        with pytest.raises(Conflict, match="the subscription is paused; resume it first"):
            await a.graph.subscriptions.redeliver(sub, "msg_x")
        assert as_problem(Conflict("x")).to_body()["status"] == 409


async def test_a_message_is_redelivered_under_its_webhook_id() -> None:
    """Redelivering a delivered message sends it again, same webhook-id, marked manual."""
    async with alerts() as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.worker.drain()
        message_id = a.sender.sent[0].headers["webhook-id"]
        with pytest.raises(NotFound):
            await a.graph.subscriptions.redeliver(sub, "msg_unknown")
        await a.graph.subscriptions.redeliver(sub, message_id)
        await a.graph.worker.drain()
        assert [s.headers["webhook-id"] for s in a.sender.sent] == [message_id, message_id]
        (second, _) = await a.graph.subscriptions.attempts(
            sub, limit=10, since=None, message_id=message_id
        )
        assert second["manual"] is True


async def test_rotation_signs_with_both_secrets_during_the_overlap() -> None:
    """After a rotation both secrets sign; an overlap over 7 days is refused."""
    async with alerts() as a:
        sub, _ = await a.subscribe()
        with pytest.raises(InvalidInput, match="between 0 and 7 days"):
            await a.graph.subscriptions.rotate_secret(sub, timedelta(days=8))
        doc, _ = await a.graph.subscriptions.rotate_secret(sub, timedelta(hours=1))
        assert [s.expires_at is None for s in doc.secrets] == [False, True]
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.worker.drain()
        assert len(a.sender.sent[0].headers["webhook-signature"].split()) == 2


async def test_a_silence_already_over_is_refused() -> None:
    """A silence ending before now would mute nothing: refused on its ends_at field."""
    async with alerts() as a:
        with pytest.raises(InvalidInput) as refused:
            await a.graph.silences.create_silence(
                scope=SilenceScope(),
                starts_at=a.clock() - timedelta(hours=2),
                ends_at=a.clock() - timedelta(hours=1),
                quiet_hours=None,
                reason=None,
            )
        assert [(e.field, e.reason) for e in refused.value.errors] == [("ends_at", "in the past")]
        docs, total = await a.graph.silences.list_silences(include_ended=True, limit=10)
        assert (docs, total) == ([], 0)


async def test_deleting_a_subscription_cancels_its_queued_messages() -> None:
    """Deleted: its queued message is cancelled and never sent."""
    async with alerts() as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.subscriptions.delete_subscription(sub)
        assert await a.graph.worker.drain() == 0
        assert a.sender.sent == []
        assert await a.graph.stores.deliveries.count_by_state() == {}
