"""The delivery worker: leases due deliveries and sends them as signed webhooks.

`DeliveryWorker` sends concurrently (bounded overall and per subscription, so one failing
endpoint cannot delay the others), signs, logs every attempt, schedules retries, and disables
endpoints that answer 410 or keep failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.alerts.domain.endpoint_health import EndpointVerdict, after_attempt
from services.alerts.domain.retry import next_attempt_at
from services.alerts.domain.signing import webhook_headers
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import (
    Document,
    OperatorEvent,
    SendResult,
    Stores,
    Subscription,
    WebhookSender,
)
from shared.clock import Clock
from shared.logs import url_origin

log = structlog.stdlib.get_logger("alerts")


@dataclass
class DeliveryWorker:
    stores: Stores
    sender: WebhookSender
    metrics: AlertsMetrics
    clock: Clock
    schedule_s: Sequence[float]
    lease: timedelta
    disable_after: timedelta
    jitter: float = 0.1
    max_concurrent: int = 32
    max_per_subscription: int = 4
    # Kept free at the end of a lease for the bookkeeping around the send: the send is cut so
    # that it ends at least half of this before the lease does.
    lease_margin: timedelta = timedelta(seconds=15)
    _in_flight: dict[asyncio.Task[None], Document] = field(default_factory=dict, init=False)
    _per_subscription: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        shortest = timedelta(seconds=self.sender.deadline_s) + self.lease_margin
        if self.lease < shortest:
            # Two attempts of one delivery must never overlap: a lease that could end while its
            # attempt is still open would let another worker start the next one.
            raise ValueError(
                f"the lease ({self.lease.total_seconds():g} s) must be at least the attempt "
                f"deadline plus the margin ({shortest.total_seconds():g} s)"
            )

    # The loop ----------------------------------------------------------------------------

    async def run(self, wake: asyncio.Event, *, poll_s: float) -> None:
        """Lease and send due deliveries until cancelled; woken early by `wake`."""
        try:
            while True:
                wake.clear()
                try:
                    await self.fill(wake)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # MongoDB away: keep the loop, try again soon
                    log.warning("delivery_lease_failed", error=repr(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=poll_s)
        finally:
            await self._stop_in_flight()

    async def fill(self, wake: asyncio.Event | None = None) -> int:
        """Start attempts for due deliveries up to the concurrency limits; returns how many."""
        started = 0
        while (room := self.max_concurrent - len(self._in_flight)) > 0:
            busy = [s for s, n in self._per_subscription.items() if n >= self.max_per_subscription]
            leased = await self.stores.leases.lease_batch(
                self.clock(),
                self.lease,
                limit=min(room, self.max_per_subscription),
                exclude_subscriptions=busy,
                # Never a second attempt of a delivery this worker is still sending.
                exclude_ids=[d["_id"] for d in self._in_flight.values()],
            )
            if not leased:
                break
            for delivery in leased:
                subscription_id = delivery["subscription_id"]
                if self._per_subscription.get(subscription_id, 0) >= self.max_per_subscription:
                    await self.stores.leases.release_lease(delivery, self.clock())
                    continue
                self._per_subscription[subscription_id] = (
                    self._per_subscription.get(subscription_id, 0) + 1
                )
                task = asyncio.create_task(
                    self.attempt(delivery), name=f"deliver {delivery['_id']}"
                )
                self._in_flight[task] = delivery
                task.add_done_callback(lambda t: self._finished(t, wake))
                started += 1
            if all(
                self._per_subscription.get(d["subscription_id"], 0) >= self.max_per_subscription
                for d in leased
            ):
                break
        return started

    def _finished(self, task: asyncio.Task[None], wake: asyncio.Event | None) -> None:
        delivery = self._in_flight.pop(task)
        subscription_id = delivery["subscription_id"]
        remaining = self._per_subscription.get(subscription_id, 1) - 1
        if remaining > 0:
            self._per_subscription[subscription_id] = remaining
        else:
            self._per_subscription.pop(subscription_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "delivery_attempt_crashed",
                message_id=delivery["_id"],
                error=repr(task.exception()),
            )
        if wake is not None:
            wake.set()

    async def _stop_in_flight(self) -> None:
        tasks = dict(self._in_flight)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Give the leases back so a restarted instance retries at once, not after the lease.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for delivery in tasks.values():
                    await self.stores.leases.release_lease(delivery, self.clock())

    async def drain(self) -> int:
        """Send everything due now and wait for the attempts (tests and tools); returns count."""
        total = 0
        while True:
            started = await self.fill()
            if not started and not self._in_flight:
                return total
            total += started
            if self._in_flight:
                await asyncio.wait(list(self._in_flight))

    # One attempt ---------------------------------------------------------------------------

    async def attempt(self, delivery: Document) -> None:
        """One attempt at one leased delivery: fence, sign, send, log, schedule."""
        now = self.clock()
        # The fence's lease runs from `now`; the send must be over well before it ends.
        send_by = time.monotonic() + (self.lease - self.lease_margin / 2).total_seconds()
        subscription = await self.stores.cache.subscription(delivery["subscription_id"])
        if subscription is None:
            await self.stores.deliveries.update_delivery(delivery, {"state": "cancelled"}, at=now)
            return
        if subscription.state != "active":
            reason = f"subscription {subscription.state}"
            await self.stores.deliveries.hold(delivery, reason, now)
            return
        started, message = await asyncio.gather(
            self.stores.leases.start_attempt(delivery, now, self.lease),
            self.stores.deliveries.get(delivery["_id"]),
        )
        if started is None:
            return  # another worker makes (or made) this attempt
        entry, delivery = started
        if message is None:  # not archived (cannot happen: archived before queued)
            await self.stores.leases.interrupt(entry, now, "the message is not archived")
            return
        delivery = {**message, **delivery}
        try:
            await self._send(delivery, subscription, entry, now, send_by)
        except asyncio.CancelledError:
            # Only the worker's own shutdown cancels an attempt (the deadline ends the send
            # with a timeout result): say so, and let the next instance retry at once.
            reason = "the worker stopped mid-attempt (service shutdown)"
            log.warning(
                "webhook_attempt_interrupted",
                message_id=delivery["_id"],
                attempt=entry["attempt"],
                reason=reason,
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.stores.leases.interrupt(entry, self.clock(), reason)
                    await self.stores.leases.release_lease(delivery, self.clock())
            raise

    async def _send(
        self,
        delivery: Document,
        subscription: Subscription,
        entry: Document,
        now: datetime,
        send_by: float,
    ) -> None:
        message_id = delivery["_id"]
        attempt_no = int(entry["attempt"])
        body = delivery["body"].encode()
        headers = webhook_headers(
            subscription.signing_secrets(now), message_id, int(now.timestamp()), body
        )
        result = await self.sender.send(
            subscription.url, body, headers, deadline_s=send_by - time.monotonic()
        )
        done = self.clock()
        retry_index = int(delivery.get("retry_index", 0)) + 1
        self.metrics.attempts.labels(result=result.result).inc()
        self.metrics.attempt_seconds.observe(result.latency_s)
        logged = self.stores.log.finish_attempt(
            entry,
            {
                "status_code": result.status_code,
                "latency_ms": round(result.latency_s * 1000, 1),
                "result": result.result,
                "error": result.error,
                "response_bytes": result.response_bytes,
                "response_truncated": result.response_truncated,
            },
        )
        verdict = after_attempt(
            failing_since=subscription.failing_since,
            succeeded=result.succeeded,
            status_code=result.status_code,
            at=done,
            disable_after=self.disable_after,
        )
        update: Document = {
            "attempts": attempt_no,
            "retry_index": retry_index,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "last_attempt_at": done,
        }
        if result.succeeded:
            update.update(state="delivered", delivered_at=done)
            if subscription.failing_since is not None:
                await self.stores.subscriptions.mark_healthy(subscription.id)
                self.stores.cache.invalidate()
        else:
            if subscription.failing_since is None and verdict.failing_since is not None:
                await self.stores.subscriptions.mark_failing(subscription.id, verdict.failing_since)
                self.stores.cache.invalidate()
            if verdict.disable:
                await self._disable(subscription, verdict, result, done)
                update.update(state="held", held_reason="endpoint disabled")
            else:
                retry_at = next_attempt_at(
                    attempt=retry_index,
                    now=done,
                    schedule_s=self.schedule_s,
                    retry_after_s=result.retry_after_s,
                    jitter=self.jitter,
                )
                if retry_at is None:
                    update.update(state="failed", failed_at=done)
                else:
                    update.update(next_attempt_at=retry_at)
        _, applied = await asyncio.gather(
            logged,
            self.stores.deliveries.update_delivery(delivery, update, at=done, attempt=attempt_no),
        )
        if not applied:
            log.warning("delivery_outcome_superseded", message_id=message_id, attempt=attempt_no)
        self._count_outcome(delivery, update, done)
        log.info(
            "webhook_attempt",
            message_id=message_id,
            kpi_ids=delivery.get("kpi_ids", []),
            subscription_id=subscription.id,
            status_code=result.status_code,
            result=result.result,
            attempt=attempt_no,
            state=update.get("state", "pending"),
            latency_ms=round(result.latency_s * 1000, 1),
            error=result.error,
            response_truncated=result.response_truncated,
            next_attempt_at=(
                update["next_attempt_at"].isoformat() if "next_attempt_at" in update else None
            ),
        )

    def _count_outcome(self, delivery: Document, update: Document, done: datetime) -> None:
        state = update.get("state")
        if state not in ("delivered", "failed"):
            return
        outcome = state
        for kind in delivery.get("kinds", []):
            self.metrics.notifications.labels(kind=kind, outcome=outcome).inc()
        if state == "delivered" and not delivery.get("manual"):
            for changed_at in delivery.get("changed_at", []):
                self.metrics.delivery_seconds.observe(max((done - changed_at).total_seconds(), 0))

    async def _disable(
        self, subscription: Subscription, verdict: EndpointVerdict, result: SendResult, at: datetime
    ) -> None:
        reason = verdict.reason or "failing"
        await self.stores.subscriptions.set_state(
            subscription.id,
            "disabled",
            reason=reason,
            now=at,
            only_from=["active"],
            disabled_at=at,
        )
        self.stores.cache.invalidate()
        since = verdict.failing_since or at
        # One event per failing period, even if several attempts (or instances) get here.
        recorded = await self.stores.operator_events.record(
            OperatorEvent(
                id=f"endpoint_disabled:{subscription.id}:{since.isoformat()}",
                at=at,
                kind="endpoint_disabled",
                subscription_id=subscription.id,
                url=subscription.url,
                reason=reason,
                last_status_code=result.status_code,
                last_error=result.error,
            )
        )
        if not recorded:
            return
        gone = result.status_code == 410
        self.metrics.endpoints_disabled.labels(reason="gone" if gone else "failing").inc()
        log.error(
            "endpoint_disabled",
            subscription_id=subscription.id,
            target=url_origin(subscription.url),
            reason=reason,
        )
