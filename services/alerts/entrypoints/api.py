"""Subscriptions API of the alerts service (admin-authenticated)."""

from __future__ import annotations

import asyncio
import secrets as secrets_module
import socket
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from services.alerts.adapters.store import DeliveryQueue, SubscriptionStore
from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.domain.signing import new_secret
from services.alerts.domain.ssrf import refusal_reason
from shared.http.auth import AdminAuth
from shared.http.problems import (
    FieldError,
    NotFound,
    Unauthenticated,
    ValidationProblem,
    problem_responses,
)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(examples=["https://pmo.example.go.jp/hooks/shinchoku"])
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    description: str | None = Field(default=None, max_length=500)


class SubscriptionOut(BaseModel):
    id: str
    url: str
    filter: SubscriptionFilter
    description: str | None
    state: str
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret (whsec_…). Shown only in this answer.")


class DeliveryAttempt(BaseModel):
    delivery_id: str
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


def subscription_store(request: Request) -> SubscriptionStore:
    store: SubscriptionStore = request.app.state.subscription_store
    return store


def delivery_queue(request: Request) -> DeliveryQueue:
    queue: DeliveryQueue = request.app.state.delivery_queue
    return queue


Subscriptions = Annotated[SubscriptionStore, Depends(subscription_store)]
Queue = Annotated[DeliveryQueue, Depends(delivery_queue)]
router = APIRouter(prefix="/v1", tags=["subscriptions"])
ADMIN_PROBLEMS = problem_responses(Unauthenticated, NotFound, ValidationProblem)


async def check_target(url: str, allowed: list[str]) -> None:
    """The SSRF guard: refuse targets resolving to internal addresses unless allowed."""
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ValidationProblem(
            f"the target host {host!r} does not resolve",
            errors=[FieldError(field="url", reason=str(error))],
        ) from error
    reason = refusal_reason({str(info[4][0]) for info in infos}, allowed=allowed)
    if reason:
        raise ValidationProblem(
            f"the target URL is refused: {reason}",
            errors=[FieldError(field="url", reason=reason)],
            extensions={"code": "ssrf_refused"},
        )


def to_out(doc: dict[str, Any]) -> dict[str, Any]:
    return SubscriptionOut(
        id=doc["_id"],
        url=doc["url"],
        filter=SubscriptionFilter.model_validate(doc["filter"]),
        description=doc.get("description"),
        state=doc["state"],
        created_at=doc["created_at"],
    ).model_dump(mode="json")


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    responses=ADMIN_PROBLEMS,
    summary="Create a webhook subscription",
)
async def create_subscription(
    body: SubscriptionIn, request: Request, _: AdminAuth, store: Subscriptions
) -> dict[str, Any]:
    await check_target(str(body.url), request.app.state.allowed_target_networks)
    secret = new_secret()
    now = request.app.state.clock()
    doc = {
        "_id": "sub_" + secrets_module.token_hex(12),
        "url": str(body.url),
        "filter": body.filter.model_dump(mode="json"),
        "description": body.description,
        "state": "active",
        "secrets": [{"secret": secret, "created_at": now, "expires_at": None}],
        "created_at": now,
    }
    await store.insert(doc)
    return {**to_out(doc), "secret": secret}


@router.get("/subscriptions", responses=ADMIN_PROBLEMS, summary="List subscriptions")
async def list_subscriptions(
    _: AdminAuth,
    store: Subscriptions,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    docs = await store.list(limit, offset)
    return {"items": [to_out(doc) for doc in docs], "limit": limit, "offset": offset}


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=ADMIN_PROBLEMS,
    summary="Get one subscription",
)
async def get_subscription(
    subscription_id: str, _: AdminAuth, store: Subscriptions
) -> dict[str, Any]:
    doc = await store.get(subscription_id)
    if doc is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return to_out(doc)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    responses=ADMIN_PROBLEMS,
    summary="Delete a subscription",
)
async def delete_subscription(subscription_id: str, _: AdminAuth, store: Subscriptions) -> Response:
    if not await store.delete(subscription_id):
        raise NotFound(f"no subscription {subscription_id!r}")
    return Response(status_code=204)


@router.get(
    "/subscriptions/{subscription_id}/attempts",
    response_model=list[DeliveryAttempt],
    responses=ADMIN_PROBLEMS,
    summary="Delivery log of a subscription, newest first",
)
async def delivery_log(
    subscription_id: str,
    _: AdminAuth,
    store: Subscriptions,
    queue: Queue,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if await store.get(subscription_id) is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return [
        DeliveryAttempt.model_validate(doc).model_dump(mode="json")
        for doc in await queue.attempts(subscription_id, limit)
    ]
