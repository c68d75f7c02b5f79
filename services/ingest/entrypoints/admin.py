"""Admin routes (admin token: SHINCHOKU_ADMIN_TOKEN): ministry API keys, and who may report
a catalogue item.

Keys: the same operations as ``shinchoku keys create|list|revoke``. A created key is shown once,
in the answer to its creation; only its SHA-256 is stored.

Ownership: the same operations as ``shinchoku catalogue set-owners|reset-owners|ownership``
(shared.catalogue.overrides): an item's owners changed at run time, with a reason and who did
it, recorded in its history, kept across restarts and catalogue reloads until reset.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.ingest.adapters.ministries import known_ministries
from services.ingest.domain.keys import KeyRecord
from services.ingest.entrypoints.deps import Keys, Ownership, Settings
from services.ingest.entrypoints.problems import (
    PROBLEM_JSON,
    KafkaUnavailable,
)
from services.ingest.service.ownership_propagation import OwnershipNotPropagated
from services.ingest.settings import IngestSettings
from shared.catalogue.ownership_changes import OwnershipChange, UnknownItemError
from shared.http.auth import AdminAuth, AdminRoute
from shared.http.problems import NotFound, StorageUnavailable, Unauthenticated, ValidationProblem

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/IngestProblemDetails"}
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"


def _problem(problem: type[Any], detail: str, description: str) -> dict[str, Any]:
    example = {
        "type": problem.type_uri(),
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
        "code": problem.default_code(),
    }
    return {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": PROBLEM_SCHEMA,
                "examples": {problem.slug: {"summary": description, "value": example}},
            }
        },
    }


UNAUTHENTICATED = _problem(
    Unauthenticated, "the admin token is not valid", "No or a wrong admin token"
)
INVALID = _problem(
    ValidationProblem, "1 invalid field(s)", "The body is not valid (e.g. an unknown ministry)"
)
NOT_FOUND = _problem(NotFound, "no API key 'a1b2c3d4e5f6'", "No such key")
STORE_DOWN = _problem(
    StorageUnavailable,
    "the store is unavailable; nothing was accepted, retry later",
    "MongoDB did not answer",
)
STORE_DOWN["headers"] = {
    "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}
}


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ministry: str = Field(examples=["mic"], description="Ministry code (catalogue ministries).")
    label: str | None = Field(default=None, max_length=200, examples=["MIC statistics bureau"])

    @field_validator("ministry")
    @classmethod
    def _known(cls, code: str) -> str:
        if code not in known_ministries():
            raise ValueError(f"unknown ministry code {code!r}")
        return code


class ApiKeyOut(BaseModel):
    key_id: str
    ministry: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: KeyRecord) -> ApiKeyOut:
        return cls(
            key_id=record.key_id,
            ministry=record.ministry,
            label=record.label,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The API key. Shown only in this answer; store it securely.")


KEY_EXAMPLE: dict[str, Any] = {
    "key_id": "a1b2c3d4e5f6",
    "ministry": "mic",
    "label": "MIC statistics bureau",
    "created_at": "2024-04-01T09:00:00Z",
    "revoked_at": None,
}


def _json_example(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


# AdminRoute: the token is checked before the body is read (issue 12 item 9).
router = APIRouter(prefix="/v1/admin/keys", tags=["admin"], route_class=AdminRoute)


@router.post(
    "",
    status_code=201,
    summary="Create an API key for a ministry",
    response_model=ApiKeyCreated,
    responses={
        201: _json_example(
            {**KEY_EXAMPLE, "key": "shk_a1b2c3d4e5f6_" + "x" * 43},
            "Created; `key` is shown only here",
        ),
        401: UNAUTHENTICATED,
        422: INVALID,
        503: STORE_DOWN,
    },
)
async def create_key(body: ApiKeyIn, keys: Keys, _: AdminAuth) -> ApiKeyCreated:
    full, record = await keys.create(body.ministry, body.label)
    return ApiKeyCreated(**ApiKeyOut.of(record).model_dump(), key=full)


@router.get(
    "",
    summary="List API keys (never their secrets)",
    response_model=list[ApiKeyOut],
    responses={
        200: _json_example([KEY_EXAMPLE], "The keys, without secrets"),
        401: UNAUTHENTICATED,
        422: INVALID,
        503: STORE_DOWN,
    },
)
async def list_keys(
    keys: Keys,
    _: AdminAuth,
    ministry: Annotated[str | None, Query(max_length=64, description="Only this ministry")] = None,
) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(r) for r in await keys.list(ministry)]


@router.delete(
    "/{key_id}",
    summary="Revoke an API key (idempotent)",
    description="Takes effect at once on this instance and within `key_cache_ttl_s` "
    "(default 5 s) on every other instance.",
    response_model=ApiKeyOut,
    responses={
        200: _json_example(
            {**KEY_EXAMPLE, "revoked_at": "2024-05-01T12:00:00Z"}, "Revoked (or already was)"
        ),
        401: UNAUTHENTICATED,
        404: NOT_FOUND,
        422: INVALID,
        503: STORE_DOWN,
    },
)
async def revoke_key(
    keys: Keys,
    _: AdminAuth,
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN, description="The key id")],
) -> ApiKeyOut:
    record = await keys.revoke(key_id)
    if record is None:
        raise NotFound(f"no API key {key_id!r}")
    return ApiKeyOut.of(record)


# --- who may report an item ----------------------------------------------------------------

ITEM_ID_PATTERN = r"^(kpi|ms)\.[a-z0-9]+(-[a-z0-9]+)*$"
ItemId = Annotated[
    str, Path(pattern=ITEM_ID_PATTERN, max_length=120, description="A KPI or milestone id")
]
NO_ITEM = _problem(NotFound, "no catalogue item 'kpi.no-such-kpi'", "No such KPI or milestone")
NOT_PROPAGATED_DETAIL = (
    "the change is recorded and in force at ingest, but the kpi service could not be told yet "
    "(Kafka did not acknowledge); it is published again within {interval} s, or with the next "
    "change: retrying is safe"
)
NOT_PROPAGATED = _problem(
    KafkaUnavailable,
    NOT_PROPAGATED_DETAIL.format(interval=5),
    "Recorded, not yet published to the kpi service (Kafka did not answer)",
)
NOT_PROPAGATED["headers"] = {
    "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 1}}
}
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED,
    404: NO_ITEM,
    422: INVALID,
    503: {
        "description": "MongoDB did not answer (nothing recorded), or Kafka did not "
        "(recorded, not yet published to the kpi service)",
        "headers": STORE_DOWN["headers"],
        "content": {
            PROBLEM_JSON: {
                "schema": PROBLEM_SCHEMA,
                "examples": {
                    **STORE_DOWN["content"][PROBLEM_JSON]["examples"],
                    **NOT_PROPAGATED["content"][PROBLEM_JSON]["examples"],
                },
            }
        },
    },
}


def _not_propagated(error: OwnershipNotPropagated, retry_after_s: int) -> KafkaUnavailable:
    return KafkaUnavailable(
        NOT_PROPAGATED_DETAIL.format(interval=retry_after_s),
        headers={"Retry-After": str(retry_after_s)},
        extensions={"code": "ownership_not_propagated", "change_id": error.change_id},
    )


def _known_codes(codes: list[str]) -> list[str]:
    unknown = [c for c in codes if c not in known_ministries()]
    if unknown:
        raise ValueError(f"unknown ministry code(s): {', '.join(unknown)}")
    return list(dict.fromkeys(codes))


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=3, max_length=500, examples=["MIC took over the 5G coverage reports"]
    )
    changed_by: str = Field(
        min_length=1,
        max_length=200,
        examples=["ops: Sato (Digital Agency)"],
        description="Who makes the change (the admin token is shared, so the body names them).",
    )


class OwnersIn(ChangeIn):
    owners: list[str] = Field(
        min_length=1,
        max_length=30,
        examples=[["mic", "digital"]],
        description="Ministry codes that may report the item from now on (replacing the current).",
    )

    @field_validator("owners")
    @classmethod
    def _known(cls, codes: list[str]) -> list[str]:
        return _known_codes(codes)


class OwnershipChangeOut(BaseModel):
    item_id: str
    action: str = Field(description="set (an override) or reset (back to the catalogue's)")
    owners: list[str] = Field(description="Who may report the item after the change")
    previous: list[str] = Field(description="Who could before")
    catalogue_owners: list[str] = Field(description="What the catalogue release says")
    reason: str
    changed_by: str
    changed_at: datetime

    @classmethod
    def of(cls, change: OwnershipChange) -> OwnershipChangeOut:
        return cls(
            item_id=change.item_id,
            action=change.action,
            owners=change.owners,
            previous=change.previous,
            catalogue_owners=change.catalogue_owners,
            reason=change.reason,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
        )


class ItemOwnershipOut(BaseModel):
    item_id: str
    owners: list[str] = Field(description="Who may report the item now")
    catalogue_owners: list[str] = Field(description="What the catalogue release says")
    basis: list[dict[str, Any]] = Field(
        description="The release's owners with their basis (named, inferred, default)"
    )
    override: dict[str, Any] | None = Field(description="The run-time override in force, if any")
    history: list[OwnershipChangeOut] = Field(description="Every run-time change, oldest first")


CHANGE_EXAMPLE: dict[str, Any] = {
    "item_id": "kpi.5g-population-coverage",
    "action": "set",
    "owners": ["mic", "digital"],
    "previous": ["mic"],
    "catalogue_owners": ["mic"],
    "reason": "the Digital Agency co-reports during the transition",
    "changed_by": "ops: Sato (Digital Agency)",
    "changed_at": "2026-12-04T09:00:00.000Z",
}

ownership_router = APIRouter(prefix="/v1/admin/items", tags=["admin"], route_class=AdminRoute)


@ownership_router.put(
    "/{item_id}/owners",
    summary="Change who may report a KPI or milestone",
    description="Replaces the item's owners until reset, without a catalogue release; the "
    "reason and who made the change are recorded in the item's history. Takes effect at once "
    "on this instance and within `catalogue_cache_ttl_s` (default 5 s) on every other; kept "
    "across restarts and catalogue reloads (the loader keeps it and reports the divergence). "
    "Published to the kpi service (event `shinchoku.item.owners_changed.v1`, keyed by the item) "
    "before this answer; a 503 with code `ownership_not_propagated` means recorded and in force "
    "here, published later (within `ownership_publish_interval_s`, or with the next change).",
    response_model=OwnershipChangeOut,
    responses={200: _json_example(CHANGE_EXAMPLE, "Changed"), **CHANGE_ERRORS},
)
async def set_owners(
    body: OwnersIn, ownership: Ownership, settings: Settings, _: AdminAuth, item_id: ItemId
) -> OwnershipChangeOut:
    try:
        change = await ownership.set(item_id, body.owners, body.reason, body.changed_by)
    except UnknownItemError:
        raise NotFound(f"no catalogue item {item_id!r}") from None
    except OwnershipNotPropagated as error:
        raise _not_propagated(error, _retry_after(settings)) from None
    return OwnershipChangeOut.of(change)


def _retry_after(settings: IngestSettings) -> int:
    return max(1, math.ceil(settings.ownership_publish_interval_s))


@ownership_router.post(
    "/{item_id}/owners:reset",
    summary="Return a KPI or milestone to the catalogue's owners",
    response_model=OwnershipChangeOut,
    responses={
        200: _json_example(
            {
                **CHANGE_EXAMPLE,
                "action": "reset",
                "owners": ["mic"],
                "previous": ["mic", "digital"],
            },
            "Reset (recorded even when there was no override)",
        ),
        **CHANGE_ERRORS,
    },
)
async def reset_owners(
    body: ChangeIn, ownership: Ownership, settings: Settings, _: AdminAuth, item_id: ItemId
) -> OwnershipChangeOut:
    try:
        change = await ownership.reset(item_id, body.reason, body.changed_by)
    except UnknownItemError:
        raise NotFound(f"no catalogue item {item_id!r}") from None
    except OwnershipNotPropagated as error:
        raise _not_propagated(error, _retry_after(settings)) from None
    return OwnershipChangeOut.of(change)


@ownership_router.get(
    "/{item_id}/ownership",
    summary="Who may report a KPI or milestone, why, and every run-time change",
    response_model=ItemOwnershipOut,
    responses={
        200: _json_example(
            {
                "item_id": "kpi.5g-population-coverage",
                "owners": ["mic", "digital"],
                "catalogue_owners": ["mic"],
                "basis": [{"code": "mic", "basis": "inferred", "reason": "電波/5G … Radio Act"}],
                "override": {
                    "owners": ["mic", "digital"],
                    "reason": CHANGE_EXAMPLE["reason"],
                    "changed_by": CHANGE_EXAMPLE["changed_by"],
                    "changed_at": CHANGE_EXAMPLE["changed_at"],
                },
                "history": [CHANGE_EXAMPLE],
            },
            "The item's ownership",
        ),
        401: UNAUTHENTICATED,
        404: NO_ITEM,
        422: INVALID,
        503: STORE_DOWN,
    },
)
async def item_ownership(ownership: Ownership, _: AdminAuth, item_id: ItemId) -> ItemOwnershipOut:
    try:
        item, history = await ownership.view(item_id)
    except UnknownItemError:
        raise NotFound(f"no catalogue item {item_id!r}") from None
    return ItemOwnershipOut(
        item_id=item_id,
        owners=item.owners,
        catalogue_owners=item.catalogue_owners,
        basis=item.basis,
        override=item.override,
        history=[OwnershipChangeOut.of(c) for c in history],
    )
