"""The alerts API: subscriptions, silences, delivery log and redelivery. Every route needs the
admin bearer token (SHINCHOKU_ADMIN_TOKEN); nothing here is readable without it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.alerts.domain.notifications import NotificationKind, SubscriptionFilter
from services.alerts.domain.silences import QuietHours, SilenceScope
from services.alerts.entrypoints.deps import Silences, Subscriptions
from services.alerts.ports import Document, SilenceRecord, Subscription, SubscriptionEdit
from shared.events.contracts import Status
from shared.http.auth import AdminRoute, require_admin
from shared.http.pagination import MAX_OFFSET, decode_cursor, encode_cursor
from shared.http.problems import (
    Conflict,
    NotFound,
    Unauthenticated,
    ValidationProblem,
    problem_responses,
)

SubscriptionState = Literal["active", "paused", "disabled"]
DeliveryState = Literal["pending", "delivered", "failed", "held", "cancelled"]
NotificationState = Literal["waiting", "muted", "claimed", "batched", "dropped"]


def _storable(value: Any) -> Any:
    """Every string in a request body must be storable text: no NUL character (PostgreSQL-backed
    FerretDB refuses it, a 503 that no retry cures) and no lone surrogate (not UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain the NUL character (U+0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from error
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list):
        for item in value:
            _storable(item)
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        return _storable(data)


# Subscriptions ---------------------------------------------------------------------------------


class SubscriptionIn(_In):
    url: AnyHttpUrl = Field(examples=["https://pmo.example.go.jp/hooks/shinchoku"])
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    description: str | None = Field(default=None, max_length=500)


class SubscriptionPatch(_In):
    """Only the fields present change."""

    url: AnyHttpUrl | None = None
    filter: SubscriptionFilter | None = None
    description: str | None = Field(default=None, max_length=500)


class SecretInfo(BaseModel):
    created_at: datetime
    expires_at: datetime | None = Field(description="Set while an older secret still co-signs.")


class SubscriptionOut(BaseModel):
    id: str
    url: str
    filter: SubscriptionFilter
    description: str | None
    state: SubscriptionState
    state_reason: str | None = None
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime | None = None
    secrets: list[SecretInfo] = Field(description="Signing secrets (metadata only, never values).")


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret (`whsec_…`). Shown only in this answer.")


class OffsetPage(BaseModel):
    """A page of a collection (shared/http/pagination.py): `total` counts every match."""

    total: int = Field(description="Items matching the filters, over all pages")
    limit: int
    offset: int


class StreamPage(BaseModel):
    """A page of an append-only stream, newest first (shared/http/pagination.py)."""

    next_after: str | None = Field(
        description="Pass as `after` for the next (older) page; null at the end"
    )


class SubscriptionList(OffsetPage):
    items: list[SubscriptionOut]


class RotateIn(_In):
    overlap_s: float | None = Field(
        default=None,
        ge=0,
        le=7 * 86_400,
        description="How long the current secret keeps co-signing (default: the setting, 24 h).",
    )


class SecretRotated(SubscriptionOut):
    secret: str = Field(description="The new signing secret. Shown only in this answer.")


def subscription_out(subscription: Subscription) -> dict[str, Any]:
    """The record as answered: secrets as metadata only (SecretInfo has no value field), the
    disabling time only while disabled."""
    if subscription.state != "disabled":
        subscription = replace(subscription, disabled_at=None)
    out = SubscriptionOut.model_validate(subscription, from_attributes=True)
    return out.model_dump(mode="json")


# Delivery log ----------------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    id: str = Field(description="The message's `webhook-id`, the same on every attempt.")
    type: str
    state: DeliveryState
    attempts: int
    notification_ids: list[str]
    kpi_ids: list[str]
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveryList(OffsetPage):
    items: list[DeliveryOut]


class AttemptOut(BaseModel):
    message_id: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    result: str = Field(description="success, http_error, timeout, network_error or refused")
    error: str | None
    manual: bool = Field(description="Part of a manual redelivery.")


class AttemptList(StreamPage):
    items: list[AttemptOut]


class NotificationOut(BaseModel):
    id: str
    kind: NotificationKind
    kpi_id: str
    measure_id: str
    episode_id: str | None
    status: Status
    reminder: int
    state: NotificationState
    changed_at: datetime
    created_at: datetime
    muted_until: datetime | None = None
    muted_by: list[str] = Field(default_factory=list)
    delivery_id: str | None = None
    dropped_reason: str | None = None


class NotificationList(OffsetPage):
    items: list[NotificationOut]


class RedeliverRange(_In):
    since: AwareDatetime
    until: AwareDatetime


class RedeliverResult(BaseModel):
    queued: int = Field(description="Failed messages queued again.")


def delivery_out(doc: Document) -> dict[str, Any]:
    return DeliveryOut(
        id=doc["_id"],
        type=doc["type"],
        state=doc["state"],
        attempts=doc["attempts"],
        notification_ids=doc["notification_ids"],
        kpi_ids=doc.get("kpi_ids", []),
        created_at=doc["created_at"],
        next_attempt_at=doc.get("next_attempt_at") if doc["state"] == "pending" else None,
        delivered_at=doc.get("delivered_at"),
        last_status_code=doc.get("last_status_code"),
        last_error=doc.get("last_error"),
    ).model_dump(mode="json")


def notification_out(doc: Document) -> dict[str, Any]:
    return NotificationOut(
        id=doc["_id"],
        kind=doc["kind"],
        kpi_id=doc["kpi_id"],
        measure_id=doc["measure_id"],
        episode_id=doc.get("episode_id"),
        status=doc["change"]["status"],
        reminder=doc.get("reminder", 0),
        state=doc["state"],
        changed_at=doc["changed_at"],
        created_at=doc["created_at"],
        muted_until=doc.get("muted_until") if doc["state"] == "muted" else None,
        muted_by=doc.get("muted_by") or [],
        delivery_id=doc.get("delivery_id"),
        dropped_reason=doc.get("dropped_reason"),
    ).model_dump(mode="json")


# Silences --------------------------------------------------------------------------------------


class SilenceIn(_In):
    scope: SilenceScope = Field(default_factory=SilenceScope)
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime | None = Field(
        default=None, description="Required unless quiet_hours is given."
    )
    quiet_hours: QuietHours | None = Field(
        default=None, description="Recurring daily quiet period, local times in Asia/Tokyo."
    )
    reason: str | None = Field(default=None, max_length=500)


class SilenceOut(BaseModel):
    id: str
    scope: SilenceScope
    starts_at: datetime | None
    ends_at: datetime | None
    quiet_hours: QuietHours | None
    reason: str | None
    created_at: datetime
    ended_early_at: datetime | None = None


class SilenceList(OffsetPage):
    items: list[SilenceOut]


def silence_out(record: SilenceRecord) -> dict[str, Any]:
    silence = record.silence
    return SilenceOut(
        id=silence.id,
        scope=silence.scope,
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        quiet_hours=silence.quiet_hours,
        reason=record.reason,
        created_at=record.created_at,
        ended_early_at=record.ended_early_at,
    ).model_dump(mode="json")


class OperatorEventOut(BaseModel):
    id: str
    at: datetime
    kind: str = Field(examples=["endpoint_disabled"])
    subscription_id: str | None
    url: str | None = None
    reason: str
    last_status_code: int | None = None
    last_error: str | None = None


class OperatorEventList(StreamPage):
    items: list[OperatorEventOut]


# Routes ----------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)], route_class=AdminRoute)
PROBLEMS = problem_responses(Unauthenticated, NotFound, ValidationProblem)
PROBLEMS_WITH_CONFLICT = problem_responses(Unauthenticated, NotFound, ValidationProblem, Conflict)
SUBSCRIPTIONS: list[str | Enum] = ["subscriptions"]
DELIVERY: list[str | Enum] = ["delivery log"]
SILENCES: list[str | Enum] = ["silences"]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
After = Annotated[
    str | None, Query(description="`next_after` of the previous page (an opaque cursor)")
]


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    return None if cursor is None else decode_cursor(cursor)


def _next_after(keys: list[tuple[datetime, str]], limit: int) -> str | None:
    """The cursor after the last item (its time and id) of a full page; None when the stream
    is exhausted."""
    if len(keys) < limit:
        return None
    return encode_cursor(*keys[-1])


def _offset_page(docs: list[Document], limit: int, offset: int) -> tuple[list[Document], int]:
    """A page of every match (the delivery log's scans read them all anyway), and the total."""
    return docs[offset : offset + limit], len(docs)


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="Create a webhook subscription; the answer shows its signing secret once",
)
async def create_subscription(body: SubscriptionIn, subscriptions: Subscriptions) -> dict[str, Any]:
    doc, secret = await subscriptions.create_subscription(
        url=str(body.url), filter_=body.filter, description=body.description
    )
    return {**subscription_out(doc), "secret": secret}


@router.get(
    "/subscriptions",
    response_model=SubscriptionList,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="List subscriptions",
)
async def list_subscriptions(
    subscriptions: Subscriptions,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
    state: SubscriptionState | None = None,
) -> dict[str, Any]:
    docs = await subscriptions.list_subscriptions(limit=limit, offset=offset, state=state)
    total = await subscriptions.count_subscriptions(state=state)
    items = [subscription_out(doc) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="Get one subscription",
)
async def get_subscription(subscription_id: str, subscriptions: Subscriptions) -> dict[str, Any]:
    return subscription_out(await subscriptions.subscription(subscription_id))


@router.patch(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="Change a subscription's URL, filter or description",
)
async def update_subscription(
    subscription_id: str, body: SubscriptionPatch, subscriptions: Subscriptions
) -> dict[str, Any]:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    for required in ("url", "filter"):
        if required in changes and changes[required] is None:
            raise ValidationProblem(f"{required} cannot be removed")
    edit = SubscriptionEdit(
        changed=frozenset(changes),
        url=None if body.url is None else str(body.url),
        filter=body.filter,
        description=body.description,
    )
    return subscription_out(await subscriptions.update_subscription(subscription_id, edit))


@router.post(
    "/subscriptions/{subscription_id}/pause",
    response_model=SubscriptionOut,
    responses=PROBLEMS_WITH_CONFLICT,
    tags=SUBSCRIPTIONS,
    summary="Pause: no new notifications; queued messages wait for the resume",
)
async def pause_subscription(subscription_id: str, subscriptions: Subscriptions) -> dict[str, Any]:
    return subscription_out(await subscriptions.pause(subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionOut,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="Resume a paused or disabled subscription; held messages go out now",
)
async def resume_subscription(subscription_id: str, subscriptions: Subscriptions) -> dict[str, Any]:
    return subscription_out(await subscriptions.resume(subscription_id))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    responses=PROBLEMS,
    tags=SUBSCRIPTIONS,
    summary="Delete a subscription (its queued messages are cancelled)",
)
async def delete_subscription(subscription_id: str, subscriptions: Subscriptions) -> Response:
    await subscriptions.delete_subscription(subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    response_model=SecretRotated,
    responses=PROBLEMS_WITH_CONFLICT,
    tags=SUBSCRIPTIONS,
    summary="Rotate the signing secret; old and new both sign during the overlap",
)
async def rotate_secret(
    subscription_id: str, subscriptions: Subscriptions, body: RotateIn | None = None
) -> dict[str, Any]:
    overlap = None if body is None or body.overlap_s is None else timedelta(seconds=body.overlap_s)
    doc, secret = await subscriptions.rotate_secret(subscription_id, overlap)
    return {**subscription_out(doc), "secret": secret}


@router.get(
    "/subscriptions/{subscription_id}/attempts",
    response_model=AttemptList,
    responses=PROBLEMS,
    tags=DELIVERY,
    summary="Delivery log: every attempt (time, status code, latency, error), newest first",
)
async def delivery_attempts(
    subscription_id: str,
    subscriptions: Subscriptions,
    limit: Limit = 100,
    since: AwareDatetime | None = None,
    message_id: str | None = None,
    after: After = None,
) -> dict[str, Any]:
    docs = await subscriptions.attempts(
        subscription_id, limit=limit, since=since, message_id=message_id, after=_after(after)
    )
    return {
        "items": [AttemptOut.model_validate(d).model_dump(mode="json") for d in docs],
        "next_after": _next_after([(d["at"], d["_id"]) for d in docs], limit),
    }


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    response_model=DeliveryList,
    responses=PROBLEMS,
    tags=DELIVERY,
    summary="Messages sent or queued for a subscription, newest first",
)
async def deliveries(
    subscription_id: str,
    subscriptions: Subscriptions,
    state: DeliveryState | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    every = await subscriptions.deliveries(
        subscription_id, state=state, since=since, until=until, limit=None
    )
    docs, total = _offset_page(every, limit, offset)
    items = [delivery_out(doc) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{message_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    responses=PROBLEMS_WITH_CONFLICT,
    tags=DELIVERY,
    summary="Send one message again now (same webhook-id)",
)
async def redeliver(
    subscription_id: str, message_id: str, subscriptions: Subscriptions
) -> dict[str, Any]:
    return delivery_out(await subscriptions.redeliver(subscription_id, message_id))


@router.post(
    "/subscriptions/{subscription_id}/redeliver-failed",
    response_model=RedeliverResult,
    status_code=202,
    responses=PROBLEMS_WITH_CONFLICT,
    tags=DELIVERY,
    summary="Send again every failed message created in [since, until)",
)
async def redeliver_failed(
    subscription_id: str, body: RedeliverRange, subscriptions: Subscriptions
) -> dict[str, Any]:
    count = await subscriptions.redeliver_failed(
        subscription_id, since=body.since, until=body.until
    )
    return {"queued": count}


@router.get(
    "/subscriptions/{subscription_id}/notifications",
    response_model=NotificationList,
    responses=PROBLEMS,
    tags=DELIVERY,
    summary="Notifications recorded for a subscription (including muted and dropped ones)",
)
async def notifications(
    subscription_id: str,
    subscriptions: Subscriptions,
    state: NotificationState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    every = await subscriptions.notifications(subscription_id, state=state, limit=None)
    docs, total = _offset_page(every, limit, offset)
    items = [notification_out(doc) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/silences",
    status_code=201,
    response_model=SilenceOut,
    responses=PROBLEMS,
    tags=SILENCES,
    summary="Mute notifications by subscription, ministry, measure or KPI, for a time or nightly",
)
async def create_silence(body: SilenceIn, silences: Silences) -> dict[str, Any]:
    doc = await silences.create_silence(
        scope=body.scope,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        quiet_hours=body.quiet_hours,
        reason=body.reason,
    )
    return silence_out(doc)


@router.get(
    "/silences",
    response_model=SilenceList,
    responses=PROBLEMS,
    tags=SILENCES,
    summary="Silences in force (or all, with include_ended)",
)
async def list_silences(
    silences: Silences, include_ended: bool = False, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    docs, total = await silences.list_silences(
        include_ended=include_ended, limit=limit, offset=offset
    )
    items = [silence_out(doc) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    responses=PROBLEMS,
    tags=SILENCES,
    summary="Get one silence",
)
async def get_silence(silence_id: str, silences: Silences) -> dict[str, Any]:
    return silence_out(await silences.silence(silence_id))


@router.delete(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    responses=PROBLEMS,
    tags=SILENCES,
    summary="End a silence now; what it held back goes out if still relevant",
)
async def end_silence(silence_id: str, silences: Silences) -> dict[str, Any]:
    return silence_out(await silences.end_silence(silence_id))


@router.get(
    "/operator-events",
    response_model=OperatorEventList,
    responses=PROBLEMS,
    tags=["operations"],
    summary="Events an operator must see (endpoints disabled), newest first",
)
async def operator_events(
    subscriptions: Subscriptions,
    limit: Limit = 100,
    subscription_id: str | None = None,
    after: After = None,
) -> dict[str, Any]:
    events = await subscriptions.operator_events(
        limit=limit, subscription_id=subscription_id, after=_after(after)
    )
    return {
        "items": [
            OperatorEventOut.model_validate(e, from_attributes=True).model_dump(mode="json")
            for e in events
        ],
        "next_after": _next_after([(e.at, e.id) for e in events], limit),
    }


# The webhook itself, documented in the OpenAPI document's `webhooks` section -------------------


class WebhookChange(BaseModel):
    type: str = Field(examples=["kpi.slipped"])
    notification_id: str
    reminder: int = Field(description="0 for the first notification, n for the n-th reminder.")
    kpi_id: str | None = Field(description="Null for a measure's divergence.")
    kind: Literal["kpi", "milestone", "measure"]
    measure_id: str
    ministries: list[str]
    previous_status: Status | None
    status: Status
    episode_id: str | None
    evaluated_on: date
    changed_at: datetime
    explanation: dict[str, Any] = Field(description="rule_id, message, inputs, evidence")
    status_event_id: str
    link: str = Field(
        description="The KPI (or, for a divergence, the measure's status) in the kpi service's API."
    )


class WebhookData(WebhookChange):
    subscription_id: str
    count: int = Field(description="How many changes this delivery carries (grouping).")
    changes: list[WebhookChange] = Field(
        description="Every change in the delivery; the headline (the fields above) first."
    )


class WebhookPayload(BaseModel):
    type: Literal[
        "kpi.slipped", "kpi.recovered", "kpi.overdue", "kpi.stale", "measure.divergence"
    ] = Field(description="The most severe change's type.")
    timestamp: datetime = Field(description="When the headline status change happened.")
    data: WebhookData


WEBHOOK_DESCRIPTION = """\
Sent as a **Standard Webhooks** POST to the subscription's URL with the headers `webhook-id`
(stable across retries: use it as the idempotency key), `webhook-timestamp` (Unix seconds of the
attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, keyed with
the `whsec_` secret; space-separated when a rotated secret still co-signs). Verify it with any
Standard Webhooks library, e.g. Python's `standardwebhooks.Webhook(secret).verify(body, headers)`.

Changes for one subscription within the grouping window (default 30 s) arrive in one delivery:
`type` and the fields at the top of `data` are the most severe change's, `data.changes` lists all
of them (one entry when there is one change). Answer 2xx to acknowledge; anything else (or no
answer in 15 s) is retried on a schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
with jitter; `Retry-After` honoured); `410 Gone` disables the subscription.
`measure.divergence`: a ministry's self-assessment of a measure began to diverge from the status
its KPIs and milestones give it (`kind` measure, `kpi_id` null, the self-assessment and the
divergence level in `explanation`)."""


def document_webhooks(app: FastAPI) -> None:
    @app.webhooks.post(
        "kpi-status",
        tags=["webhooks"],
        summary="A KPI's status slipped or recovered",
        description=WEBHOOK_DESCRIPTION,
    )
    def kpi_status(body: WebhookPayload) -> None:
        """Documentation only: what a subscriber receives."""
