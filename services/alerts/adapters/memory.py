"""In-memory implementations of the alerts ports, for the unit tier.

Small and honest: they keep the same documents as the MongoDB adapters (the shapes of
delivery_documents.py), hand out copies (a caller changing what it read changes nothing
stored), and pass the same contract tests (tests/support/contracts/alerts.py). One process,
one event loop: no method awaits between reading and writing, so each is atomic, as the
insert-decided fences and claims are on MongoDB.
"""

from __future__ import annotations

import builtins
import copy
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from operator import itemgetter

from services.alerts.adapters.delivery_documents import (
    FINAL_STATES,
    LEASE_ENDED_UNRECORDED,
    delivery_document,
    fence_document,
    is_due,
    log_entry,
    outcome_document,
    queue_entry,
    requeued,
)
from services.alerts.adapters.read_cache import StoreReadCache
from services.alerts.adapters.silence_documents import ending
from services.alerts.ports import (
    Document,
    NewDelivery,
    OperatorEvent,
    SigningSecret,
    SilenceRecord,
    Stores,
    Subscription,
    SubscriptionEdit,
    SubscriptionState,
)

Table = dict[str, Document]


class DuplicateKey(Exception):  # noqa: N818 - reads as the condition
    """An insert of an id already stored (MongoDB's duplicate key error)."""


def _copy(doc: Document | None) -> Document | None:
    return None if doc is None else copy.deepcopy(doc)


def _copies(docs: Iterable[Document]) -> list[Document]:
    return [copy.deepcopy(doc) for doc in docs]


def _insert_new(table: Table, documents: Sequence[Document]) -> list[Document]:
    """Insert, skipping documents whose `_id` is stored; returns those inserted."""
    inserted = []
    for doc in documents:
        if doc["_id"] not in table:
            table[doc["_id"]] = copy.deepcopy(doc)
            inserted.append(doc)
    return inserted


def _set(doc: Document, fields: Document) -> bool:
    """`$set`: True when something changed (MongoDB's modified count)."""
    changed = any(key not in doc or doc[key] != value for key, value in fields.items())
    doc.update(copy.deepcopy(fields))
    return changed


def _by_state(docs: Iterable[Document]) -> dict[str, int]:
    return dict(Counter(doc["state"] for doc in docs))


def _newest_first(docs: Iterable[Document], after: tuple[datetime, str] | None) -> list[Document]:
    """Sorted by time then id, descending; `after`: only those after that (time, id)."""
    ordered = sorted(docs, key=lambda d: (d["at"], d["_id"]), reverse=True)
    if after is None:
        return ordered
    return [d for d in ordered if (d["at"], d["_id"]) < after]


def _sorted(docs: Iterable[Document], *keys: tuple[str, int]) -> list[Document]:
    """Sorted by several keys, each ascending (1) or descending (-1), like a MongoDB sort."""
    result = list(docs)
    for key, direction in reversed(keys):  # stable sorts, least significant key first
        result.sort(key=itemgetter(key), reverse=direction < 0)
    return result


class MemorySubscriptions:
    """Keeps the records themselves (frozen: nothing a caller holds can change them)."""

    def __init__(self) -> None:
        self._c: dict[str, Subscription] = {}

    async def insert(self, subscription: Subscription) -> None:
        if subscription.id in self._c:
            raise DuplicateKey(subscription.id)
        self._c[subscription.id] = subscription

    async def get(self, subscription_id: str) -> Subscription | None:
        return self._c.get(subscription_id)

    def _in_state(self, state: str | None) -> builtins.list[Subscription]:
        return [s for s in self._c.values() if state is None or s.state == state]

    async def list(
        self, *, limit: int, offset: int, state: str | None = None
    ) -> builtins.list[Subscription]:
        ordered = sorted(self._in_state(state), key=lambda s: (s.created_at, s.id))
        return ordered[offset : offset + limit]

    async def count(self, *, state: str | None = None) -> int:
        return len(self._in_state(state))

    async def active(self) -> builtins.list[Subscription]:
        return self._in_state("active")

    async def update(
        self, subscription_id: str, edit: SubscriptionEdit, now: datetime
    ) -> Subscription | None:
        stored = self._c.get(subscription_id)
        if stored is None:
            return None
        updated = replace(stored, updated_at=now)
        if "url" in edit.changed and edit.url is not None:
            updated = replace(updated, url=edit.url)
        if "filter" in edit.changed and edit.filter is not None:
            updated = replace(updated, filter=edit.filter)
        if "description" in edit.changed:
            updated = replace(updated, description=edit.description)
        self._c[subscription_id] = updated
        return updated

    async def replace_secrets(
        self,
        subscription_id: str,
        version: int,
        secrets_: Sequence[SigningSecret],
        now: datetime,
    ) -> Subscription | None:
        stored = self._c.get(subscription_id)
        if stored is None or stored.secrets_version != version:
            return None
        updated = replace(
            stored, secrets=tuple(secrets_), secrets_version=version + 1, updated_at=now
        )
        self._c[subscription_id] = updated
        return updated

    async def set_state(
        self,
        subscription_id: str,
        state: SubscriptionState,
        *,
        reason: str | None,
        now: datetime,
        only_from: Sequence[SubscriptionState] | None = None,
        healthy: bool = False,
        disabled_at: datetime | None = None,
    ) -> bool:
        stored = self._c.get(subscription_id)
        if stored is None or (only_from is not None and stored.state not in only_from):
            return False
        updated = replace(stored, state=state, state_reason=reason, updated_at=now)
        if healthy:
            updated = replace(updated, failing_since=None)
        if disabled_at is not None:
            updated = replace(updated, disabled_at=disabled_at)
        self._c[subscription_id] = updated
        return updated != stored

    async def mark_failing(self, subscription_id: str, since: datetime) -> None:
        stored = self._c.get(subscription_id)
        if stored is not None and stored.failing_since is None:
            self._c[subscription_id] = replace(stored, failing_since=since)

    async def mark_healthy(self, subscription_id: str) -> None:
        stored = self._c.get(subscription_id)
        if stored is not None and stored.failing_since is not None:
            self._c[subscription_id] = replace(stored, failing_since=None)

    async def delete(self, subscription_id: str) -> bool:
        return self._c.pop(subscription_id, None) is not None

    async def count_by_state(self) -> dict[str, int]:
        return dict(Counter(s.state for s in self._c.values()))


class MemoryNotifications:
    """The archive (dedup by key), the live set and the fates, as in MongoNotifications."""

    def __init__(self) -> None:
        self._archive: Table = {}
        self._pending: Table = {}
        self._fates: Table = {}

    async def insert_new(self, documents: Sequence[Document]) -> list[Document]:
        new = _insert_new(self._archive, documents)
        new_ids = {doc["_id"] for doc in new}
        live = [
            self._archive[doc["_id"]]
            for doc in documents
            if doc["_id"] not in new_ids
            and self._archive[doc["_id"]].get("state") in ("waiting", "muted")
            and doc["_id"] not in self._fates
        ]
        fresh = [d for d in new if d.get("state") in ("waiting", "muted")]
        _insert_new(self._pending, [*fresh, *live])
        return new

    async def get(self, notification_id: str) -> Document | None:
        return _copy(self._archive.get(notification_id))

    async def waiting(self, subscription_ids: Iterable[str] | None = None) -> list[Document]:
        wanted = None if subscription_ids is None else set(subscription_ids)
        return _copies(
            d
            for d in self._pending.values()
            if d["state"] == "waiting" and (wanted is None or d["subscription_id"] in wanted)
        )

    async def mute(
        self, notification_id: str, *, until: datetime, by: list[str], now: datetime
    ) -> bool:
        doc = self._pending.get(notification_id)
        if doc is None or doc["state"] not in ("waiting", "muted"):
            return False
        fields = {
            "state": "muted",
            "muted_until": until,
            "muted_by": by,
            "muted_at": now,
            "updated_at": now,
        }
        return _set(doc, fields)

    async def muted_due(self, now: datetime) -> list[Document]:
        return _copies(
            d for d in self._pending.values() if d["state"] == "muted" and d["muted_until"] <= now
        )

    async def end_mutes_by(self, silence_id: str, now: datetime) -> int:
        muted = [
            d
            for d in self._pending.values()
            if d["state"] == "muted" and silence_id in (d.get("muted_by") or [])
        ]
        return sum(_set(d, {"muted_until": now}) for d in muted)

    async def release(self, notification_id: str, now: datetime) -> bool:
        doc = self._pending.get(notification_id)
        if doc is None or doc["state"] != "muted":
            return False
        fields = {
            "state": "waiting",
            "immediate": True,
            "arrived_at": now,
            "released_at": now,
            "updated_at": now,
        }
        return _set(doc, fields)

    async def drop(self, notification_id: str, reason: str, now: datetime) -> bool:
        fate = {"_id": notification_id, "delivery_id": None, "dropped": reason, "at": now}
        if not _insert_new(self._fates, [fate]):
            return False
        self._pending.pop(notification_id, None)
        return True

    async def claim(
        self, documents: Sequence[Document], delivery_id: str, now: datetime
    ) -> list[Document]:
        fates = [{"_id": d["_id"], "delivery_id": delivery_id, "at": now} for d in documents]
        won_ids = {f["_id"] for f in _insert_new(self._fates, fates)}
        for notification_id in won_ids:
            if notification_id in self._pending:
                _set(
                    self._pending[notification_id],
                    {"state": "claimed", "delivery_id": delivery_id, "claimed_at": now},
                )
        return [d for d in documents if d["_id"] in won_ids]

    async def adopt_orphans(self, ids: Sequence[str], before: datetime) -> int:
        adopted = 0
        for notification_id in dict.fromkeys(ids):
            fate = self._fates.get(notification_id)
            if fate is None or fate["at"] > before:
                continue
            if fate.get("delivery_id") is None:
                adopted += self._pending.pop(notification_id, None) is not None
                continue
            doc = self._pending.get(notification_id)
            if doc is not None and doc["state"] == "waiting":
                fields = {
                    "state": "claimed",
                    "delivery_id": fate["delivery_id"],
                    "claimed_at": fate["at"],
                }
                adopted += _set(doc, fields)
        return adopted

    async def in_delivery(self, delivery_id: str) -> list[Document]:
        return _copies(d for d in self._pending.values() if d.get("delivery_id") == delivery_id)

    async def stale_claims(self, before: datetime) -> list[Document]:
        return _copies(
            d
            for d in self._pending.values()
            if d["state"] == "claimed" and d["claimed_at"] <= before
        )

    async def mark_batched(self, ids: Sequence[str]) -> None:
        for notification_id in ids:
            self._pending.pop(notification_id, None)

    async def for_subscription(
        self, subscription_id: str, *, state: str | None, limit: int | None
    ) -> list[Document]:
        archived = _sorted(
            (d for d in self._archive.values() if d["subscription_id"] == subscription_id),
            ("created_at", -1),
            ("_id", 1),
        )
        result = []
        for doc in archived:
            live = self._pending.get(doc["_id"])
            current = copy.deepcopy({**doc, **(live or {})})
            fate = self._fates.get(doc["_id"])
            if live is None and fate is not None:
                if fate.get("delivery_id") is None:
                    current.update(state="dropped", dropped_reason=fate.get("dropped"))
                else:
                    current.update(state="batched", delivery_id=fate["delivery_id"])
            if state is None or current["state"] == state:
                result.append(current)
            if limit is not None and len(result) >= limit:
                break
        return result

    async def count_by_state(self) -> dict[str, int]:
        return _by_state(self._pending.values())


class DeliveryTables:
    """What the three delivery adapters share (one database's collections, in memory)."""

    def __init__(self) -> None:
        self.queue: Table = {}
        self.archive: Table = {}
        self.outcomes: Table = {}
        self.fences: Table = {}
        self.attempts: Table = {}


class MemoryDeliveryQueue:
    def __init__(self, tables: DeliveryTables) -> None:
        self._t = tables

    async def create(self, delivery: NewDelivery) -> bool:
        return bool(await self.create_many([delivery]))

    async def create_many(self, deliveries: Sequence[NewDelivery]) -> list[NewDelivery]:
        documents = [delivery_document(d) for d in deliveries]
        archived = {doc["_id"] for doc in _insert_new(self._t.archive, documents)}
        _insert_new(self._t.queue, [queue_entry(d) for d in documents])
        return [d for d in deliveries if d.message_id in archived]

    async def ensure_created(self, deliveries: Sequence[NewDelivery]) -> int:
        created = 0
        for delivery in deliveries:
            archived = self._t.archive.get(delivery.message_id)
            if archived is None:
                created += len(await self.create_many([delivery]))
            elif await self.state_of(delivery.message_id) is None:
                created += len(_insert_new(self._t.queue, [queue_entry(archived)]))
        return created

    async def get(self, delivery_id: str) -> Document | None:
        return _copy(self._t.archive.get(delivery_id))

    async def queued(self, delivery_id: str) -> Document | None:
        return _copy(self._t.queue.get(delivery_id))

    async def state_of(self, delivery_id: str) -> str | None:
        queued = self._t.queue.get(delivery_id)
        if queued is not None:
            return str(queued["state"])
        outcome = self._latest_outcomes(lambda o: o["message_id"] == delivery_id).get(delivery_id)
        return None if outcome is None else str(outcome["state"])

    def _latest_outcomes(self, wanted: Callable[[Document], bool]) -> dict[str, Document]:
        latest: dict[str, Document] = {}
        for outcome in self._t.outcomes.values():
            if not wanted(outcome):
                continue
            kept = latest.get(outcome["message_id"])
            if kept is None or (outcome["at"], outcome["attempts"]) >= (
                kept["at"],
                kept["attempts"],
            ):
                latest[outcome["message_id"]] = outcome
        return latest

    async def update_delivery(
        self, delivery: Document, update: Document, *, at: datetime, attempt: int | None = None
    ) -> bool:
        update = {**update, "lease_until": at}
        entry = self._t.queue.get(delivery["_id"])
        if entry is None:
            return False
        if attempt is None and entry["state"] != "pending":
            return False
        if attempt is not None and not entry["attempts"] < attempt:
            return False
        if update.get("state") not in FINAL_STATES:
            return _set(entry, {**update, "lease_token": None})
        del self._t.queue[delivery["_id"]]
        _insert_new(self._t.outcomes, [outcome_document(delivery, update)])
        return True

    async def hold(self, delivery: Document, reason: str, now: datetime) -> None:
        await self.update_delivery(delivery, {"state": "held", "held_reason": reason}, at=now)

    async def for_subscription(
        self,
        subscription_id: str,
        *,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> list[Document]:
        archived = _sorted(
            (
                d
                for d in self._t.archive.values()
                if d["subscription_id"] == subscription_id
                and (since is None or d["created_at"] >= since)
                and (until is None or d["created_at"] < until)
            ),
            ("created_at", -1),
            ("_id", 1),
        )
        queued = {
            d["_id"]: d for d in self._t.queue.values() if d["subscription_id"] == subscription_id
        }
        outcomes = self._latest_outcomes(lambda o: o["subscription_id"] == subscription_id)
        result = []
        for doc in archived:
            live = queued.get(doc["_id"]) or outcomes.get(doc["_id"]) or {}
            current = copy.deepcopy({**doc, **{k: v for k, v in live.items() if k != "_id"}})
            if doc["_id"] in queued:
                current.setdefault("state", "pending")
            if state is None or current.get("state") == state:
                result.append(current)
            if limit is not None and len(result) >= limit:
                break
        return result

    def _requeue(self, doc: Document, now: datetime, manual: bool) -> Document:
        again = requeued(doc, now, manual=manual)
        self._t.queue[doc["_id"]] = copy.deepcopy(queue_entry(again))
        return again

    async def release_held(self, subscription_id: str, now: datetime) -> int:
        held = [
            d
            for d in self._t.queue.values()
            if d["subscription_id"] == subscription_id and d["state"] == "held"
        ]
        for entry in held:
            self._requeue(copy.deepcopy(entry), now, manual=False)
        return len(held)

    async def cancel_for(self, subscription_id: str, now: datetime) -> int:
        queued = _copies(
            d for d in self._t.queue.values() if d["subscription_id"] == subscription_id
        )
        for doc in queued:
            await self.update_delivery(
                {**doc, "state": "pending"},
                {"state": "cancelled", "last_attempt_at": now, "attempts": doc["attempts"]},
                at=now,
                attempt=int(doc["attempts"]) + 1,
            )
        return len(queued)

    async def redeliver(self, delivery_id: str, now: datetime) -> Document | None:
        doc = await self.get(delivery_id)
        if doc is None or await self.state_of(delivery_id) == "cancelled":
            return None
        queued = self._t.queue.get(delivery_id)
        if queued is not None:
            attempts = int(queued["attempts"])
        else:
            latest = self._latest_outcomes(lambda o: o["message_id"] == delivery_id)
            outcome = latest.get(delivery_id)
            attempts = 0 if outcome is None else int(outcome["attempts"])
        return self._requeue({**doc, "attempts": attempts}, now, manual=True)

    async def redeliver_failed(
        self, subscription_id: str, since: datetime, until: datetime, now: datetime
    ) -> int:
        failed = await self.for_subscription(
            subscription_id, state="failed", since=since, until=until, limit=100_000
        )
        for doc in failed:
            self._requeue(doc, now, manual=True)
        return len(failed)

    async def count_by_state(self) -> dict[str, int]:
        return _by_state(self._t.queue.values())

    async def count_retrying(self) -> int:
        return sum(
            1 for d in self._t.queue.values() if d["state"] == "pending" and d["retry_index"] > 0
        )


class MemoryDeliveryLog:
    def __init__(self, tables: DeliveryTables) -> None:
        self._t = tables

    async def finish_attempt(self, fence: Document, outcome: Document) -> None:
        _insert_new(self._t.attempts, [log_entry(fence, outcome)])

    async def attempts(
        self,
        subscription_id: str,
        *,
        limit: int,
        since: datetime | None = None,
        message_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Document]:
        docs = (
            d
            for d in self._t.attempts.values()
            if d["subscription_id"] == subscription_id
            and (since is None or d["at"] >= since)
            and (message_id is None or d["message_id"] == message_id)
        )
        return _copies(_newest_first(docs, after)[:limit])


class MemoryDeliveryLeases:
    def __init__(self, tables: DeliveryTables, log: MemoryDeliveryLog) -> None:
        self._t = tables
        self._log = log

    async def lease_batch(
        self,
        now: datetime,
        lease: timedelta,
        *,
        limit: int,
        exclude_subscriptions: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
    ) -> list[Document]:
        excluded, excluded_ids = set(exclude_subscriptions), set(exclude_ids)
        candidates = _sorted(
            (
                d
                for d in self._t.queue.values()
                if d["state"] == "pending"
                and d["next_attempt_at"] <= now
                and d["lease_until"] <= now
                and d["subscription_id"] not in excluded
                and d["_id"] not in excluded_ids
            ),
            ("next_attempt_at", 1),
        )[:limit]
        for entry in candidates:
            entry.update(lease_until=now + lease, lease_token=secrets.token_hex(8))
        return _copies(candidates)

    async def release_lease(self, delivery: Document, now: datetime) -> None:
        entry = self._t.queue.get(delivery["_id"])
        if entry is not None and entry["state"] == "pending":
            entry.update(lease_until=now, lease_token=None)

    async def start_attempt(
        self, delivery: Document, now: datetime, lease: timedelta, *, tries: int = 3
    ) -> tuple[Document, Document] | None:
        number = int(delivery["attempts"]) + 1
        for _ in range(tries):
            fence = fence_document(delivery, number, now, lease)
            existing = self._t.fences.get(fence["_id"])
            if existing is not None:
                if existing["lease_until"] > now:
                    return None
                interrupted = {"result": "interrupted", "error": LEASE_ENDED_UNRECORDED}
                await self._log.finish_attempt(existing, interrupted)
                fresh = self._t.queue.get(delivery["_id"])
                if fresh is None or not is_due(fresh, now):
                    return None
                number = max(number, int(fresh["attempts"])) + 1
                continue
            fresh = self._t.queue.get(delivery["_id"])
            if fresh is None or not is_due(fresh, now) or int(fresh["attempts"]) >= number:
                return None
            self._t.fences[fence["_id"]] = copy.deepcopy(fence)
            return fence, copy.deepcopy(fresh)
        return None

    async def interrupt(self, fence: Document, now: datetime, reason: str) -> None:
        await self._log.finish_attempt(fence, {"result": "interrupted", "error": reason})
        stored = self._t.fences.get(fence["_id"])
        if stored is not None:
            stored["lease_until"] = now


class MemorySilences:
    def __init__(self) -> None:
        self._c: dict[str, SilenceRecord] = {}

    async def insert(self, record: SilenceRecord) -> None:
        if record.silence.id in self._c:
            raise DuplicateKey(record.silence.id)
        self._c[record.silence.id] = record

    async def get(self, silence_id: str) -> SilenceRecord | None:
        return self._c.get(silence_id)

    def _in_force(self, at: datetime | None) -> builtins.list[SilenceRecord]:
        return [
            r
            for r in self._c.values()
            if at is None or r.silence.ends_at is None or r.silence.ends_at > at
        ]

    async def list(
        self, *, in_force_at: datetime | None, limit: int, offset: int = 0
    ) -> builtins.list[SilenceRecord]:
        by_id = sorted(self._in_force(in_force_at), key=lambda r: r.silence.id)
        newest_first = sorted(by_id, key=lambda r: r.created_at, reverse=True)
        return newest_first[offset : offset + limit]

    async def count(self, *, in_force_at: datetime | None) -> int:
        return len(self._in_force(in_force_at))

    async def end(self, silence_id: str, now: datetime) -> SilenceRecord | None:
        record = self._c.get(silence_id)
        if record is None:
            return None
        fields = ending(record.silence, now)
        if fields is not None:
            ended_early_at = fields.pop("ended_early_at")
            silence = record.silence.model_copy(update=fields)
            record = replace(record, silence=silence, ended_early_at=ended_early_at)
            self._c[silence_id] = record
        return record


class MemoryKpiStates:
    def __init__(self) -> None:
        self._c: Table = {}

    async def record(self, documents: Sequence[Document]) -> None:
        newest: dict[str, Document] = {}
        for doc in documents:
            kept = newest.get(doc["_id"])
            if kept is None or doc["changed_at"] >= kept["changed_at"]:
                newest[doc["_id"]] = doc
        for doc in newest.values():
            fields = {k: v for k, v in doc.items() if k not in ("reminders", "close_reminders")}
            entries = {} if doc.get("close_reminders") else dict(doc.get("reminders") or {})
            stored = self._c.get(doc["_id"])
            if stored is None:
                self._c[doc["_id"]] = copy.deepcopy({**fields, "subs": entries})
                continue
            if stored["changed_at"] > doc["changed_at"]:
                continue  # a newer change is stored already
            stored.update(copy.deepcopy(fields))
            if doc.get("close_reminders"):
                stored["subs"] = {}
            stored.setdefault("subs", {}).update(copy.deepcopy(entries))

    async def get(self, kpi_id: str) -> Document | None:
        return _copy(self._c.get(kpi_id))

    async def get_many(self, kpi_ids: Iterable[str]) -> dict[str, Document]:
        return {i: copy.deepcopy(self._c[i]) for i in dict.fromkeys(kpi_ids) if i in self._c}

    async def with_reminders(self) -> list[Document]:
        return _copies(d for d in self._c.values() if d.get("subs"))

    async def stop_reminder(self, kpi_id: str, subscription_id: str) -> None:
        doc = self._c.get(kpi_id)
        if doc is not None:
            doc.get("subs", {}).pop(subscription_id, None)

    async def advance_reminder(
        self, kpi_id: str, subscription_id: str, *, number: int, due_at: datetime
    ) -> None:
        doc = self._c.get(kpi_id)
        if doc is not None:
            entry = doc.setdefault("subs", {}).setdefault(subscription_id, {})
            entry.update(due_at=due_at, reminders=number)


class MemoryOperatorEvents:
    def __init__(self) -> None:
        self._c: dict[str, OperatorEvent] = {}

    async def record(self, event: OperatorEvent) -> bool:
        if event.id in self._c:
            return False
        self._c[event.id] = event
        return True

    async def list(
        self,
        *,
        limit: int,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[OperatorEvent]:
        events = sorted(
            (
                e
                for e in self._c.values()
                if subscription_id is None or e.subscription_id == subscription_id
            ),
            key=lambda e: (e.at, e.id),
            reverse=True,
        )
        if after is not None:
            events = [e for e in events if (e.at, e.id) < after]
        return events[:limit]


def memory_stores(*, cache_ttl_s: float = 1.0) -> Stores:
    """Every alerts store, in memory (one empty "database")."""
    subscriptions, silences = MemorySubscriptions(), MemorySilences()
    tables = DeliveryTables()
    log = MemoryDeliveryLog(tables)
    return Stores(
        subscriptions=subscriptions,
        notifications=MemoryNotifications(),
        deliveries=MemoryDeliveryQueue(tables),
        leases=MemoryDeliveryLeases(tables, log),
        log=log,
        silences=silences,
        kpi_states=MemoryKpiStates(),
        operator_events=MemoryOperatorEvents(),
        cache=StoreReadCache(subscriptions, silences, ttl_s=cache_ttl_s),
    )
