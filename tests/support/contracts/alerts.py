"""What every implementation of the alerts store ports must guarantee, as test base classes.

Each class uses a fixture `stores` (the `Stores` bundle of ports, empty at the start). The unit
tier subclasses them with the in-memory adapters (tests/unit/alerts/test_memory_adapters.py),
the integration tier with the MongoDB adapters on FerretDB
(tests/integration/test_alerts_adapters_contract.py). Only `Test*` classes are collected, so
these run only through their subclasses.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.domain.silences import QuietHours, Silence, SilenceScope
from services.alerts.ports import (
    NewDelivery,
    OperatorEvent,
    SigningSecret,
    SilenceRecord,
    Stores,
    Subscription,
    SubscriptionEdit,
)
from shared.http.pagination import decode_cursor, encode_cursor


def now() -> datetime:
    # Whole seconds: MongoDB keeps milliseconds, so times compare equal after a round trip.
    return datetime.now(UTC).replace(microsecond=0)


def delivery(i: int, at: datetime, subscription: str = "sub_a") -> NewDelivery:
    return NewDelivery(
        message_id=f"msg_{i:04d}",
        subscription_id=subscription,
        type="kpi.slipped",
        body="{}",
        notification_ids=(f"n{i}",),
        kinds=("slipped",),
        kpi_ids=("kpi.a",),
        changed_at=(at,),
        created_at=at,
    )


def subscription(subscription_id: str, at: datetime) -> Subscription:
    return Subscription(
        id=subscription_id,
        url="https://example.test/hook",
        filter=SubscriptionFilter(kpis=["kpi.a"]),
        description=None,
        state="active",
        state_reason=None,
        secrets=(SigningSecret("whsec_a", at),),
        secrets_version=0,
        failing_since=None,
        created_at=at,
        updated_at=at,
    )


class SubscriptionsContract:
    async def test_a_state_moves_only_from_the_states_named(self, stores: Stores) -> None:
        """set_state with `only_from` moves only a subscription in one of those states."""
        t = now()
        await stores.subscriptions.insert(subscription("sub_a", t))
        assert not await stores.subscriptions.set_state(
            "sub_a", "active", reason=None, now=t, only_from=["paused"]
        )
        assert await stores.subscriptions.set_state(
            "sub_a", "paused", reason="by hand", now=t, only_from=["active"]
        )
        stored = await stores.subscriptions.get("sub_a")
        assert stored is not None
        assert (stored.state, stored.state_reason) == ("paused", "by hand")
        assert stored.filter == SubscriptionFilter(kpis=["kpi.a"])
        assert await stores.subscriptions.count(state="paused") == 1
        assert await stores.subscriptions.active() == []
        assert await stores.subscriptions.count_by_state() == {"paused": 1}

    async def test_secrets_are_replaced_only_from_the_version_read(self, stores: Stores) -> None:
        """A rotation based on an old secrets version is refused (None)."""
        t = now()
        await stores.subscriptions.insert(subscription("sub_a", t))
        new = [SigningSecret("whsec_a", t, t + timedelta(hours=1)), SigningSecret("whsec_b", t)]
        updated = await stores.subscriptions.replace_secrets("sub_a", 0, new, t)
        assert updated is not None
        assert (updated.secrets_version, updated.secrets) == (1, tuple(new))
        assert await stores.subscriptions.replace_secrets("sub_a", 0, new, t) is None

    async def test_failing_since_is_set_once_and_cleared(self, stores: Stores) -> None:
        """mark_failing keeps the first failure time; mark_healthy clears it."""
        t = now()
        await stores.subscriptions.insert(subscription("sub_a", t))
        await stores.subscriptions.mark_failing("sub_a", t)
        await stores.subscriptions.mark_failing("sub_a", t + timedelta(hours=1))
        stored = await stores.subscriptions.get("sub_a")
        assert stored is not None
        assert stored.failing_since == t
        await stores.subscriptions.mark_healthy("sub_a")
        stored = await stores.subscriptions.get("sub_a")
        assert stored is not None
        assert stored.failing_since is None

    async def test_listing_pages_in_creation_order_and_delete_reports(self, stores: Stores) -> None:
        """list pages oldest first; delete says whether there was something to delete."""
        t = now()
        for i in range(3):
            await stores.subscriptions.insert(subscription(f"sub_{i}", t + timedelta(seconds=i)))
        page = await stores.subscriptions.list(limit=2, offset=1)
        assert [s.id for s in page] == ["sub_1", "sub_2"]
        assert await stores.subscriptions.delete("sub_1")
        assert not await stores.subscriptions.delete("sub_1")
        assert await stores.subscriptions.count() == 2

    async def test_an_edit_changes_only_what_it_names(self, stores: Stores) -> None:
        """update sets the named fields (a description may be cleared) and the update time."""
        t = now()
        await stores.subscriptions.insert(replace(subscription("sub_a", t), description="before"))
        later = t + timedelta(minutes=1)
        edit = SubscriptionEdit(changed=frozenset({"url", "description"}), url="https://b.test/")
        updated = await stores.subscriptions.update("sub_a", edit, later)
        assert updated is not None
        assert (updated.url, updated.description, updated.updated_at) == (
            "https://b.test/",
            None,
            later,
        )
        assert updated.filter == SubscriptionFilter(kpis=["kpi.a"])
        assert await stores.subscriptions.update("sub_x", edit, later) is None

    async def test_disabling_records_when_and_resuming_forgets_the_failures(
        self, stores: Stores
    ) -> None:
        """A disabled subscription keeps when it was disabled; resumed healthy, it has no
        failing period."""
        t = now()
        await stores.subscriptions.insert(subscription("sub_a", t))
        await stores.subscriptions.mark_failing("sub_a", t)
        assert await stores.subscriptions.set_state(
            "sub_a", "disabled", reason="410", now=t, only_from=["active"], disabled_at=t
        )
        disabled = await stores.subscriptions.get("sub_a")
        assert disabled is not None
        assert (disabled.state, disabled.disabled_at, disabled.failing_since) == ("disabled", t, t)
        assert await stores.subscriptions.set_state(
            "sub_a", "active", reason=None, now=t, only_from=["disabled"], healthy=True
        )
        resumed = await stores.subscriptions.get("sub_a")
        assert resumed is not None
        assert (resumed.state, resumed.failing_since) == ("active", None)
        assert [s.id for s in await stores.subscriptions.active()] == ["sub_a"]


class NotificationsContract:
    async def test_notifications_are_recorded_once_per_key(self, stores: Stores) -> None:
        """insert_new stores new keys and reports repeats (same key) as not inserted."""
        store = stores.notifications
        first = await store.insert_new([{"_id": "k1"}, {"_id": "k2"}])
        again = await store.insert_new([{"_id": "k2"}, {"_id": "k3"}, {"_id": "k1"}])
        assert [d["_id"] for d in first] == ["k1", "k2"]
        assert [d["_id"] for d in again] == ["k3"]

    async def test_claims_give_each_notification_to_one_delivery(self, stores: Stores) -> None:
        """Two concurrent claims over overlapping notifications split them without overlap;
        once batched they leave the live set."""
        store = stores.notifications
        t = now()
        docs = [{"_id": f"n{i}", "state": "waiting", "subscription_id": "s"} for i in range(10)]
        await store.insert_new(docs)
        a, b = await asyncio.gather(
            store.claim(docs[:7], "msg_a", t), store.claim(docs[3:], "msg_b", t)
        )
        ids_a = {d["_id"] for d in a}
        ids_b = {d["_id"] for d in b}
        assert not ids_a & ids_b
        assert ids_a | ids_b == {f"n{i}" for i in range(10)}
        assert {d["_id"] for d in await store.in_delivery("msg_a")} == ids_a
        assert await store.waiting() == []
        assert await store.count_by_state() == {"claimed": 10}
        assert {d["_id"] for d in await store.stale_claims(t)} == ids_a | ids_b
        await store.mark_batched(sorted(ids_a))
        assert await store.in_delivery("msg_a") == []

    async def test_ending_a_silence_reaches_what_it_muted(self, stores: Stores) -> None:
        """Notifications muted by a silence (among others) are due for release when it ends;
        released, they wait again; a dropped one leaves the live set for good."""
        store = stores.notifications
        t = now()
        far = t + timedelta(days=1)
        await store.insert_new(
            [
                {"_id": "m1", "state": "muted", "muted_until": far, "muted_by": ["s1", "s2"]},
                {"_id": "m2", "state": "muted", "muted_until": far, "muted_by": ["s2"]},
            ]
        )
        assert await store.end_mutes_by("s1", t) == 1
        assert [d["_id"] for d in await store.muted_due(t)] == ["m1"]
        assert await store.release("m1", t)
        assert not await store.release("m1", t)
        assert [d["_id"] for d in await store.waiting()] == ["m1"]
        assert await store.drop("m2", "no longer relevant", t)
        assert not await store.drop("m2", "no longer relevant", t)
        assert await store.count_by_state() == {"waiting": 1}

    async def test_a_dropped_notification_cannot_be_claimed(self, stores: Stores) -> None:
        """A notification's fate is decided once: dropped, no delivery takes it."""
        store = stores.notifications
        t = now()
        doc = {"_id": "n1", "state": "waiting", "subscription_id": "s"}
        await store.insert_new([doc])
        assert await store.drop("n1", "gone", t)
        assert await store.claim([doc], "msg_a", t) == []

    async def test_the_subscription_view_shows_each_notifications_fate(
        self, stores: Stores
    ) -> None:
        """for_subscription lists newest first with the live state, or batched / dropped."""
        store = stores.notifications
        t = now()
        docs = [
            {"_id": f"n{i}", "state": "waiting", "subscription_id": "s", "created_at": t}
            for i in range(3)
        ]
        await store.insert_new(docs)
        await store.claim(docs[:1], "msg_a", t)
        await store.mark_batched(["n0"])
        await store.drop("n1", "gone", t)
        listed = {d["_id"]: d for d in await store.for_subscription("s", state=None, limit=None)}
        assert (listed["n0"]["state"], listed["n0"]["delivery_id"]) == ("batched", "msg_a")
        assert (listed["n1"]["state"], listed["n1"]["dropped_reason"]) == ("dropped", "gone")
        assert listed["n2"]["state"] == "waiting"
        waiting = await store.for_subscription("s", state="waiting", limit=None)
        assert [d["_id"] for d in waiting] == ["n2"]


class DeliveriesContract:
    async def test_concurrent_workers_never_start_the_same_attempt(self, stores: Stores) -> None:
        """Eight concurrent workers leasing and fencing twenty due deliveries: every delivery's
        first attempt is started exactly once."""
        t = now()
        for i in range(20):
            assert await stores.deliveries.create(delivery(i, t))

        async def worker() -> list[str]:
            started = []
            while batch := await stores.leases.lease_batch(t, timedelta(seconds=60), limit=3):
                for leased in batch:
                    fenced = await stores.leases.start_attempt(leased, t, timedelta(seconds=60))
                    if fenced is not None:
                        started.append(fenced[0]["_id"])
            return started

        results = await asyncio.gather(*(worker() for _ in range(8)))
        started = [attempt for result in results for attempt in result]
        assert sorted(started) == [f"msg_{i:04d}#1" for i in range(20)]

    async def test_an_attempt_left_by_a_dead_worker_is_taken_over_after_its_lease(
        self, stores: Stores
    ) -> None:
        """While the first worker's attempt is within its lease nobody else starts it; after
        the lease it is logged as interrupted and the next attempt number is used."""
        t = now()
        await stores.deliveries.create(delivery(1, t))
        (leased,) = await stores.leases.lease_batch(t, timedelta(seconds=10), limit=5)
        first = await stores.leases.start_attempt(leased, t, timedelta(seconds=10))
        assert first is not None
        soon = t + timedelta(seconds=5)
        assert await stores.leases.start_attempt(leased, soon, timedelta(seconds=10)) is None
        later = t + timedelta(seconds=11)
        (again,) = await stores.leases.lease_batch(later, timedelta(seconds=10), limit=5)
        second = await stores.leases.start_attempt(again, later, timedelta(seconds=10))
        assert second is not None
        assert second[0]["_id"] == "msg_0001#2"
        await stores.log.finish_attempt(second[0], {"result": "success", "status_code": 204})
        logged = {d["_id"]: d["result"] for d in await stores.log.attempts("sub_a", limit=10)}
        assert logged == {"msg_0001#1": "interrupted", "msg_0001#2": "success"}

    async def test_an_interrupted_attempt_is_retried_at_once(self, stores: Stores) -> None:
        """A worker stopping mid-attempt logs it and gives the lease back: the next attempt
        can start immediately."""
        t = now()
        await stores.deliveries.create(delivery(1, t))
        (leased,) = await stores.leases.lease_batch(t, timedelta(seconds=60), limit=5)
        started = await stores.leases.start_attempt(leased, t, timedelta(seconds=60))
        assert started is not None
        await stores.leases.interrupt(started[0], t, "stopping")
        await stores.leases.release_lease(leased, t)
        (again,) = await stores.leases.lease_batch(t, timedelta(seconds=60), limit=5)
        second = await stores.leases.start_attempt(again, t, timedelta(seconds=60))
        assert second is not None
        assert second[0]["attempt"] == 2
        (entry,) = await stores.log.attempts("sub_a", limit=10)
        assert (entry["result"], entry["error"]) == ("interrupted", "stopping")

    async def test_lease_skips_excluded_subscriptions_and_future_attempts(
        self, stores: Stores
    ) -> None:
        """A busy subscription's deliveries, excluded ids and not-yet-due ones are left alone;
        a leased one is not leased again until its lease ends."""
        t = now()
        await stores.deliveries.create(delivery(1, t, "busy"))
        await stores.deliveries.create(delivery(2, t + timedelta(minutes=5), "free"))
        await stores.deliveries.create(delivery(3, t, "free"))
        await stores.deliveries.create(delivery(4, t, "free"))
        leased = await stores.leases.lease_batch(
            t,
            timedelta(seconds=30),
            limit=10,
            exclude_subscriptions=["busy"],
            exclude_ids=["msg_0004"],
        )
        assert [d["_id"] for d in leased] == ["msg_0003"]
        again = await stores.leases.lease_batch(
            t, timedelta(seconds=30), limit=10, exclude_subscriptions=["busy"]
        )
        assert [d["_id"] for d in again] == ["msg_0004"]

    async def test_creating_twice_creates_once(self, stores: Stores) -> None:
        """create / create_many report only messages that did not exist; ensure_created
        leaves a complete message alone."""
        t = now()
        assert await stores.deliveries.create(delivery(1, t))
        assert not await stores.deliveries.create(delivery(1, t))
        created = await stores.deliveries.create_many([delivery(1, t), delivery(2, t)])
        assert [d.message_id for d in created] == ["msg_0002"]
        assert await stores.deliveries.ensure_created([delivery(1, t)]) == 0
        stored = await stores.deliveries.get("msg_0001")
        assert stored is not None
        assert (stored["subscription_id"], stored["body"]) == ("sub_a", "{}")
        assert await stores.deliveries.state_of("msg_0001") == "pending"
        assert await stores.deliveries.state_of("msg_none") is None

    async def test_an_outcome_never_overwrites_a_later_attempts(self, stores: Stores) -> None:
        """The outcome of attempt 1 arriving after attempt 2's is ignored; a final outcome
        takes the message off the queue; a redelivery queues it again."""
        queue = stores.deliveries
        t = now()
        await queue.create(delivery(1, t))
        stored = await queue.queued("msg_0001")
        assert stored is not None
        assert await queue.update_delivery(
            stored, {"attempts": 2, "next_attempt_at": t}, at=t, attempt=2
        )
        assert not await queue.update_delivery(
            stored, {"attempts": 1, "state": "failed"}, at=t, attempt=1
        )
        assert await queue.update_delivery(
            stored, {"attempts": 3, "state": "delivered", "last_attempt_at": t}, at=t, attempt=3
        )
        assert await queue.queued("msg_0001") is None
        assert await queue.state_of("msg_0001") == "delivered"
        (listed,) = await queue.for_subscription(
            "sub_a", state="delivered", since=None, until=None, limit=10
        )
        assert listed["attempts"] == 3
        again = await queue.redeliver("msg_0001", t)
        assert again is not None
        queued = await queue.queued("msg_0001")
        assert queued is not None
        assert (queued["state"], queued["retry_index"], queued["manual"]) == (
            "pending",
            0,
            True,
        )
        assert queued["attempts"] == 3

    async def test_retrying_counts_pending_messages_after_a_failed_attempt(
        self, stores: Stores
    ) -> None:
        """count_retrying counts pending messages with a failed attempt, not fresh ones,
        delivered ones or manual redeliveries."""
        queue = stores.deliveries
        t = now()
        for i in (1, 2, 3):
            await queue.create(delivery(i, t))
        assert await queue.count_retrying() == 0
        first, second = await queue.queued("msg_0001"), await queue.queued("msg_0002")
        assert first is not None
        assert second is not None
        failed = {"attempts": 1, "retry_index": 1, "next_attempt_at": t}
        assert await queue.update_delivery(first, failed, at=t, attempt=1)
        assert await queue.update_delivery(second, failed, at=t, attempt=1)
        assert await queue.count_retrying() == 2
        second = await queue.queued("msg_0002")
        assert second is not None
        done = {"attempts": 2, "retry_index": 2, "state": "delivered", "last_attempt_at": t}
        assert await queue.update_delivery(second, done, at=t, attempt=2)
        assert await queue.redeliver("msg_0002", t) is not None
        assert await queue.count_retrying() == 1
        assert await queue.count_by_state() == {"pending": 3}

    async def test_held_messages_wait_for_the_resume_and_deletion_cancels(
        self, stores: Stores
    ) -> None:
        """A held message is not leased; release_held queues it again; cancel_for ends every
        queued message of the subscription, and a cancelled one is never redelivered."""
        queue = stores.deliveries
        t = now()
        await queue.create(delivery(1, t))
        await queue.create(delivery(2, t))
        first = await queue.queued("msg_0001")
        assert first is not None
        await queue.hold(first, "subscription paused", t)
        assert await queue.state_of("msg_0001") == "held"
        leased = await stores.leases.lease_batch(t, timedelta(seconds=30), limit=10)
        assert [d["_id"] for d in leased] == ["msg_0002"]
        assert await queue.release_held("sub_a", t) == 1
        assert await queue.state_of("msg_0001") == "pending"
        assert await queue.cancel_for("sub_a", t) == 2
        assert await queue.state_of("msg_0002") == "cancelled"
        assert await queue.redeliver("msg_0002", t) is None

    async def test_failed_messages_in_a_range_are_redelivered(self, stores: Stores) -> None:
        """redeliver_failed queues again the failed messages created in [since, until)."""
        queue = stores.deliveries
        t = now()
        for i in (1, 2):
            await queue.create(delivery(i, t + timedelta(minutes=i)))
            entry = await queue.queued(f"msg_{i:04d}")
            assert entry is not None
            failed = {"attempts": 1, "state": "failed", "last_attempt_at": t}
            assert await queue.update_delivery(entry, failed, at=t, attempt=1)
        count = await queue.redeliver_failed(
            "sub_a", t, t + timedelta(minutes=1, seconds=30), t + timedelta(hours=1)
        )
        assert count == 1
        assert await queue.state_of("msg_0001") == "pending"
        assert await queue.state_of("msg_0002") == "failed"

    async def test_the_attempt_log_pages_newest_first(self, stores: Stores) -> None:
        """attempts: newest first, filtered by message, paged by (time, id)."""
        t = now()
        for i in range(3):
            fence = {
                "_id": f"msg_0001#{i + 1}",
                "message_id": "msg_0001",
                "subscription_id": "sub_a",
                "attempt": i + 1,
                "at": t + timedelta(seconds=i),
            }
            await stores.log.finish_attempt(fence, {"result": "http_error"})
        page = await stores.log.attempts("sub_a", limit=2)
        assert [d["attempt"] for d in page] == [3, 2]
        rest = await stores.log.attempts("sub_a", limit=2, after=(page[-1]["at"], page[-1]["_id"]))
        assert [d["attempt"] for d in rest] == [1]
        assert await stores.log.attempts("sub_a", limit=5, message_id="msg_other") == []


def silence(silence_id: str, at: datetime, **rule: Any) -> SilenceRecord:
    rule = {"starts_at": at, "ends_at": at + timedelta(hours=1), **rule}
    return SilenceRecord(silence=Silence(id=silence_id, **rule), reason="r", created_at=at)


class SilencesContract:
    async def test_silences_in_force_and_ended_early(self, stores: Stores) -> None:
        """An ended silence stays as history but is no longer in force; listing is newest
        first."""
        t = now()
        for i in range(2):
            await stores.silences.insert(silence(f"sil_{i}", t + timedelta(seconds=i)))
        ended = await stores.silences.end("sil_0", t + timedelta(minutes=1))
        assert ended is not None
        assert (ended.silence.ends_at, ended.ended_early_at) == (t + timedelta(minutes=1),) * 2
        later = t + timedelta(minutes=2)
        in_force = await stores.silences.list(in_force_at=later, limit=10)
        assert [r.silence.id for r in in_force] == ["sil_1"]
        every = await stores.silences.list(in_force_at=None, limit=10)
        assert [r.silence.id for r in every] == ["sil_1", "sil_0"]
        assert await stores.silences.count(in_force_at=None) == 2
        assert await stores.silences.end("sil_none", t) is None

    async def test_a_silence_is_kept_as_written(self, stores: Stores) -> None:
        """Scope, quiet hours and reason come back as they went in."""
        t = now()
        record = silence(
            "sil_q",
            t,
            scope=SilenceScope(ministries=["mic"], kpis=["kpi.a"]),
            ends_at=None,
            quiet_hours=QuietHours.model_validate({"start": "22:00", "end": "07:00"}),
        )
        await stores.silences.insert(record)
        assert await stores.silences.get("sil_q") == record

    async def test_ending_a_silence_not_yet_started_starts_it_first(self, stores: Stores) -> None:
        """Ended before it began: it is kept as having started just before it ended."""
        t = now()
        await stores.silences.insert(
            silence("sil_f", t, starts_at=t + timedelta(hours=1), ends_at=t + timedelta(hours=2))
        )
        ended = await stores.silences.end("sil_f", t)
        assert ended is not None
        started_just_before = t - timedelta(milliseconds=1)
        assert (ended.silence.starts_at, ended.silence.ends_at) == (started_just_before, t)
        again = await stores.silences.end("sil_f", t + timedelta(minutes=1))
        assert again == ended


class KpiStatesContract:
    async def test_kpi_state_keeps_the_newest_change(self, stores: Stores) -> None:
        """An older change arriving late never overwrites a newer one."""
        states = stores.kpi_states
        t = now()
        await states.record([{"_id": "kpi.a", "changed_at": t, "status": "off_track"}])
        await states.record(
            [{"_id": "kpi.a", "changed_at": t - timedelta(minutes=1), "status": "x"}]
        )
        await states.record(
            [
                {"_id": "kpi.a", "changed_at": t + timedelta(minutes=2), "status": "overdue"},
                {"_id": "kpi.a", "changed_at": t + timedelta(minutes=1), "status": "at_risk"},
                {"_id": "kpi.b", "changed_at": t, "status": "stale"},
            ]
        )
        got = await states.get_many(["kpi.a", "kpi.b", "kpi.c"])
        assert {k: v["status"] for k, v in got.items()} == {"kpi.a": "overdue", "kpi.b": "stale"}

    async def test_reminders_start_advance_stop_and_close(self, stores: Stores) -> None:
        """A change starts reminders; they advance and stop per subscription; a closing change
        ends them all."""
        states = stores.kpi_states
        t = now()
        entry = {"notification_id": "n", "kind": "slipped", "episode_id": "e", "reminders": 0}
        await states.record(
            [
                {
                    "_id": "kpi.a",
                    "changed_at": t,
                    "reminders": {"s1": {**entry, "due_at": t}, "s2": {**entry, "due_at": t}},
                }
            ]
        )
        await states.advance_reminder("kpi.a", "s1", number=1, due_at=t + timedelta(days=7))
        await states.stop_reminder("kpi.a", "s2")
        (state,) = await states.with_reminders()
        assert set(state["subs"]) == {"s1"}
        assert (state["subs"]["s1"]["reminders"], state["subs"]["s1"]["due_at"]) == (
            1,
            t + timedelta(days=7),
        )
        later = t + timedelta(minutes=1)
        await states.record([{"_id": "kpi.a", "changed_at": later, "close_reminders": True}])
        assert await states.with_reminders() == []
        stored = await states.get("kpi.a")
        assert stored is not None
        assert stored["changed_at"] == later


class OperatorEventsContract:
    async def test_operator_events_page_by_an_opaque_cursor_newest_first(
        self, stores: Stores
    ) -> None:
        """Five events, some at the same instant, read two at a time by `after`: every event
        once, newest first, and a cursor page does not shift when a newer event arrives; an
        event recorded twice is recorded once."""
        store = stores.operator_events
        base = now()
        ats = [base, base, base + timedelta(seconds=1), base + timedelta(seconds=2), base]
        for i, at in enumerate(ats):
            assert await store.record(OperatorEvent(id=f"op_{i}", at=at, kind="k", reason="r"))
        assert not await store.record(OperatorEvent(id="op_0", at=base, kind="k", reason="r"))
        seen: list[str] = []
        after = None
        for _ in range(4):
            page = await store.list(limit=2, after=after)
            seen += [event.id for event in page]
            if len(page) < 2:
                break
            after = decode_cursor(encode_cursor(page[-1].at, page[-1].id))
            if len(seen) == 2:  # a newer event arriving mid-read is not on the older pages
                newer = OperatorEvent(
                    id="op_new", at=base + timedelta(seconds=9), kind="k", reason="r"
                )
                await store.record(newer)
        assert seen == ["op_3", "op_2", "op_4", "op_1", "op_0"]

    async def test_events_are_kept_as_written_and_filtered_by_subscription(
        self, stores: Stores
    ) -> None:
        """Every field comes back; a subscription's events only, when asked."""
        t = now()
        event = OperatorEvent(
            id="endpoint_disabled:sub_a:x",
            at=t,
            kind="endpoint_disabled",
            reason="gone",
            subscription_id="sub_a",
            url="https://example.test/hook",
            last_status_code=410,
            last_error="HTTP 410",
        )
        await stores.operator_events.record(event)
        await stores.operator_events.record(OperatorEvent(id="other", at=t, kind="k", reason="r"))
        assert await stores.operator_events.list(limit=10, subscription_id="sub_a") == [event]
