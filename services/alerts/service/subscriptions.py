"""Subscription administration: targets (the SSRF guard), signing secrets, pause and resume,
the delivery log, redelivery, and the operator events of disabled endpoints.

Route handlers parse the request, call one method here, and map the returned documents; a
refusal is a service error (errors.py), which the entrypoints map to its problem.
"""

from __future__ import annotations

import secrets as secrets_module
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.domain.signing import new_secret
from services.alerts.domain.ssrf import Resolver, TargetRefused, check_target
from services.alerts.ports import (
    Document,
    OperatorEvent,
    SigningSecret,
    Stores,
    Subscription,
    SubscriptionEdit,
)
from services.alerts.service.errors import (
    Conflict,
    FieldIssue,
    InvalidInput,
    InvalidTarget,
    NotFound,
)
from services.alerts.service.policy import no_wakeup
from shared.clock import Clock
from shared.logs import get_logger, url_origin

log = get_logger(__name__)

MAX_SECRET_OVERLAP = timedelta(days=7)
# Secrets that stopped signing longer ago than this are forgotten at the next rotation.
FORGET_EXPIRED_AFTER = timedelta(days=30)


@dataclass
class SubscriptionAdmin:
    stores: Stores
    clock: Clock
    allowed_networks: list[str]
    secret_overlap: timedelta
    resolver: Resolver
    wake_worker: Callable[[], None] = field(default=no_wakeup)

    # Subscriptions -------------------------------------------------------------------------

    async def check_url(self, url: str) -> None:
        """The SSRF guard at creation/update: refuse targets resolving to internal addresses."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await check_target(host, port, self.allowed_networks, self.resolver)
        except TargetRefused as refused:
            raise InvalidTarget(str(refused)) from refused

    async def subscription(self, subscription_id: str) -> Subscription:
        found = await self.stores.subscriptions.get(subscription_id)
        if found is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        return found

    async def create_subscription(
        self, *, url: str, filter_: SubscriptionFilter, description: str | None
    ) -> tuple[Subscription, str]:
        await self.check_url(url)
        secret = new_secret()
        now = self.clock()
        created = Subscription(
            id="sub_" + secrets_module.token_hex(12),
            url=url,
            filter=filter_,
            description=description,
            state="active",
            state_reason=None,
            secrets=(SigningSecret(secret, now),),
            secrets_version=0,
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        await self.stores.subscriptions.insert(created)
        self.stores.cache.invalidate()
        # Audit trail; the signing secret is never logged.
        log.info("subscription_created", subscription_id=created.id, target=url_origin(url))
        return created, secret

    async def list_subscriptions(
        self, *, limit: int, offset: int, state: str | None
    ) -> list[Subscription]:
        return await self.stores.subscriptions.list(limit=limit, offset=offset, state=state)

    async def count_subscriptions(self, *, state: str | None) -> int:
        return await self.stores.subscriptions.count(state=state)

    async def update_subscription(
        self, subscription_id: str, edit: SubscriptionEdit
    ) -> Subscription:
        await self.subscription(subscription_id)
        if "url" in edit.changed and edit.url is not None:
            await self.check_url(edit.url)
        updated = await self.stores.subscriptions.update(subscription_id, edit, self.clock())
        self.stores.cache.invalidate()
        if updated is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        log.info(
            "subscription_updated",
            subscription_id=subscription_id,
            fields=sorted(edit.changed),
            target=url_origin(updated.url),
        )
        return updated

    async def pause(self, subscription_id: str) -> Subscription:
        current = await self.subscription(subscription_id)
        if current.state == "disabled":
            raise Conflict("a disabled subscription cannot be paused; resume it first")
        await self.stores.subscriptions.set_state(
            subscription_id,
            "paused",
            reason="paused through the API",
            now=self.clock(),
            only_from=["active"],
        )
        self.stores.cache.invalidate()
        return await self.subscription(subscription_id)

    async def resume(self, subscription_id: str) -> Subscription:
        """Resume a paused or disabled subscription; its held messages go out now."""
        await self.subscription(subscription_id)
        now = self.clock()
        await self.stores.subscriptions.set_state(
            subscription_id,
            "active",
            reason=None,
            now=now,
            only_from=["paused", "disabled"],
            healthy=True,
        )
        self.stores.cache.invalidate()
        if await self.stores.deliveries.release_held(subscription_id, now):
            self.wake_worker()
        return await self.subscription(subscription_id)

    async def delete_subscription(self, subscription_id: str) -> None:
        if not await self.stores.subscriptions.delete(subscription_id):
            raise NotFound(f"no subscription {subscription_id!r}")
        self.stores.cache.invalidate()
        await self.stores.deliveries.cancel_for(subscription_id, self.clock())
        log.info("subscription_deleted", subscription_id=subscription_id)

    async def rotate_secret(
        self, subscription_id: str, overlap: timedelta | None
    ) -> tuple[Subscription, str]:
        """A new signing secret; the current ones keep signing for `overlap` (then expire)."""
        overlap = self.secret_overlap if overlap is None else overlap
        if overlap < timedelta(0) or overlap > MAX_SECRET_OVERLAP:
            raise InvalidInput(
                "the overlap must be between 0 and 7 days",
                errors=[FieldIssue(field="overlap_s", reason="out of range")],
            )
        current = await self.subscription(subscription_id)
        now = self.clock()
        expires = now + overlap
        kept = []
        for item in current.secrets:
            ends = item.expires_at
            if ends is not None and ends <= now - FORGET_EXPIRED_AFTER:
                continue
            if ends is None or ends > expires:
                item = replace(item, expires_at=expires)
            kept.append(item)
        secret = new_secret()
        kept.append(SigningSecret(secret, now))
        updated = await self.stores.subscriptions.replace_secrets(
            subscription_id, current.secrets_version, kept, now
        )
        if updated is None:
            raise Conflict("the secrets changed concurrently; rotate again")
        self.stores.cache.invalidate()
        log.info(
            "signing_secret_rotated",
            subscription_id=subscription_id,
            signing=len(kept),
            previous_expire_at=expires.isoformat(),
        )
        return updated, secret

    # Delivery log and redelivery -----------------------------------------------------------

    async def deliveries(
        self,
        subscription_id: str,
        *,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> list[Document]:
        """Newest first; `limit=None`: every match (the API pages them with a total)."""
        await self.subscription(subscription_id)
        return await self.stores.deliveries.for_subscription(
            subscription_id, state=state, since=since, until=until, limit=limit
        )

    async def attempts(
        self,
        subscription_id: str,
        *,
        limit: int,
        since: datetime | None,
        message_id: str | None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Document]:
        await self.subscription(subscription_id)
        return await self.stores.log.attempts(
            subscription_id, limit=limit, since=since, message_id=message_id, after=after
        )

    async def notifications(
        self, subscription_id: str, *, state: str | None, limit: int | None
    ) -> list[Document]:
        """Newest first; `limit=None`: every match (the API pages them with a total)."""
        await self.subscription(subscription_id)
        return await self.stores.notifications.for_subscription(
            subscription_id, state=state, limit=limit
        )

    async def redeliver(self, subscription_id: str, message_id: str) -> Document:
        """Send one message again now (same webhook-id, fresh retry schedule)."""
        subscription = await self.subscription(subscription_id)
        if subscription.state != "active":
            raise Conflict(f"the subscription is {subscription.state}; resume it first")
        current = await self.stores.deliveries.get(message_id)
        if current is None or current["subscription_id"] != subscription_id:
            raise NotFound(f"no message {message_id!r} for subscription {subscription_id!r}")
        doc = await self.stores.deliveries.redeliver(message_id, self.clock())
        if doc is None:
            raise Conflict(f"message {message_id!r} was cancelled and cannot be resent")
        self.wake_worker()
        return doc

    async def redeliver_failed(
        self, subscription_id: str, *, since: datetime, until: datetime
    ) -> int:
        """Send again every message of the subscription that failed, created in [since, until)."""
        subscription = await self.subscription(subscription_id)
        if subscription.state != "active":
            raise Conflict(f"the subscription is {subscription.state}; resume it first")
        if until <= since:
            raise InvalidInput(
                "until must be after since",
                errors=[FieldIssue(field="until", reason="not after since")],
            )
        count = await self.stores.deliveries.redeliver_failed(
            subscription_id, since, until, self.clock()
        )
        if count:
            self.wake_worker()
        return count

    # Operator events ----------------------------------------------------------------------

    async def operator_events(
        self,
        *,
        limit: int,
        subscription_id: str | None,
        after: tuple[datetime, str] | None = None,
    ) -> list[OperatorEvent]:
        return await self.stores.operator_events.list(
            limit=limit, subscription_id=subscription_id, after=after
        )
