"""Admin routes for ministry API keys (admin token: SHINCHOKU_ADMIN_TOKEN).

The same operations as ``shinchoku keys create|list|revoke``. A created key is shown once, in the
answer to its creation; only its SHA-256 is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.ingest.adapters.ministries import known_ministries
from services.ingest.domain.keys import KeyRecord
from services.ingest.entrypoints.deps import Keys
from services.ingest.entrypoints.problems import PROBLEM_JSON, StorageUnavailable
from shared.http.auth import AdminAuth, AdminRoute
from shared.http.problems import NotFound, Unauthenticated, ValidationProblem

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/IngestProblemDetails"}
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"


def _problem(problem: type[Any], detail: str, description: str) -> dict[str, Any]:
    example = {
        "type": problem.type_uri(),
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
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
