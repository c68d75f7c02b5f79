"""Hostile input: the authorization matrix of the three services, on the real apps (lifespans on
the real Kafka and FerretDB, this module's own topics and database).

Every route each app serves is enumerated from the app itself, not from a list kept here: a
route is either listed below as deliberately public, listed as taking a ministry API key, or
else it must demand the admin token. A new route added without authentication therefore fails
`test_every_protected_route_refuses_every_bad_credential` until someone lists it as public
on purpose. Each protected route is then called with no credentials, malformed ones, a wrong
secret, a revoked key, another ministry's key and the wrong kind of credential, and must answer
the exact 401 problem (or, for a ministry speaking for another, the exact 403 problem).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.alerts.bootstrap import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.ingest.bootstrap import create_app as create_ingest
from services.kpi.bootstrap import create_app as create_kpi
from services.kpi.settings import KpiSettings
from shared.http.problems import PROBLEM_BASE, PROBLEM_JSON
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.ingest import (
    BATCH,
    MEASURE,
    OWNER,
    PERCENT_KPI,
    STRUCTURED,
    ingest_settings,
    kpi_event,
    load_real_catalogue,
)
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.integration

ADMIN_TOKEN = secrets.token_urlsafe(24)
OTHER_MINISTRY = "mhlw"  # a real ministry that is not responsible for PERCENT_KPI
SERVICES = ("ingest", "kpi", "alerts")

# Routes that answer anyone, on purpose: probes, metrics, the API documents, and the kpi
# service's read API (the plan's progress is public information: catalogue, statuses, the
# open-data export). Adding a route here is a deliberate decision to publish it.
DOCUMENTS = {
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/docs"),
    ("HEAD", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("HEAD", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("HEAD", "/redoc"),
}
# Probes, and the pages describing each problem type (the `type` URIs of problem details).
PROBES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/problems/{slug}"),
}
PUBLIC: dict[str, set[tuple[str, str]]] = {
    "ingest": DOCUMENTS | PROBES,
    "kpi": DOCUMENTS
    | PROBES
    | {
        ("GET", "/v1/kpis"),
        ("GET", "/v1/kpis/{kpi_id}"),
        ("GET", "/v1/measures"),
        ("GET", "/v1/measures/{measure_id}"),
        ("GET", "/v1/measures/{measure_id}/status"),
        ("GET", "/v1/ministries"),
        ("GET", "/v1/ministries/{code}/scorecard"),
        ("GET", "/v1/exports/transitions"),
    },
    "alerts": DOCUMENTS | PROBES,
}
# Routes a ministry API key opens (scoped to that ministry's own events).
MINISTRY: dict[str, set[tuple[str, str]]] = {
    "ingest": {("POST", "/v1/events"), ("POST", "/v1/events:batch")},
    "kpi": set(),
    "alerts": set(),
}
# Every other route needs the admin token.

PATH_VALUES = {
    "key_id": "a1b2c3d4e5f6",
    "subscription_id": "sub_000000000000000000000000",
    "silence_id": "sil_000000000000000000000000",
    "message_id": "msg_000000000000000000000000",
    "kpi_id": PERCENT_KPI,
    "measure_id": MEASURE,
    "code": OWNER,
    "slug": "not-found",
}


def concrete(template: str) -> str:
    """The template with every `{name}` filled (a plausible value; `x` for a new name)."""
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), template)


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, documented or not."""
    found: set[tuple[str, str]] = set()

    def add(path: str, methods: set[str] | None) -> None:
        assert methods, f"route {path} has no methods: cannot classify it"
        found.update((method, path) for method in methods)

    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                add(context.path, context.methods)
        else:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            assert isinstance(path, str), f"unknown kind of route {route!r}: classify it"
            add(path, methods)
    return found


def admin_routes(service: str, app: FastAPI) -> set[tuple[str, str]]:
    return served_routes(app) - PUBLIC[service] - MINISTRY[service]


# --- the apps -----------------------------------------------------------------------------------


@dataclass
class Stack:
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    # Full API keys, by role.
    key: str  # a ministry key of OWNER
    other_key: str  # a ministry key of OTHER_MINISTRY
    revoked_key: str  # an OWNER key, revoked through the admin API
    wrong_secret: str  # OWNER's key id with another (well-formed) secret

    def secrets_presented(self) -> list[str]:
        keys = (self.key, self.other_key, self.revoked_key, self.wrong_secret)
        return [ADMIN_TOKEN, *(secret_of(key) for key in keys)]


def secret_of(key: str) -> str:
    """The secret part of `shk_<12 hex key id>_<secret>` (the secret may contain `_`)."""
    assert key.startswith("shk_"), key
    assert key[16] == "_", key
    return key[17:]


async def wait_ready(client: httpx.AsyncClient, timeout_s: float = 60) -> None:
    """Bounded wait for /readyz (consumers joined)."""
    async with asyncio.timeout(timeout_s):
        while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)


def admin(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN_TOKEN}", **(extra or {})}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
async def stack(
    kafka: KafkaSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[Stack]:
    database = f"{mongo_config.database}_hostauth_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, database)
    topics: TopicSettings = isolated_topics(f"hostile-auth-{random_suffix()}", partitions=1)
    async with asyncio.timeout(60):
        await ensure_topics(kafka, topics)
    settings: dict[str, Any] = {
        "kafka": kafka,
        "topics": topics,
        "mongo": mongo_config.model_copy(update={"database": database}),
        "admin_token": ADMIN_TOKEN,
        "log_json": True,
    }
    apps = {
        "ingest": create_ingest(
            ingest_settings(kafka, topics, settings["mongo"], SHINCHOKU_ADMIN_TOKEN=ADMIN_TOKEN)
        ),
        "kpi": create_kpi(KpiSettings(**settings, consumer_group=f"kpi-{database}")),
        "alerts": create_alerts(
            AlertsSettings(
                **settings,
                consumer_group=f"alerts-{database}",
                allowed_target_networks=["127.0.0.1/32"],
            )
        ),
    }
    async with AsyncExitStack() as exits:
        clients = {}
        for name, app in apps.items():
            await exits.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await exits.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=30
                )
            )
        for client in clients.values():
            await wait_ready(client)
        ingest = clients["ingest"]
        created = {}
        for role, ministry in (("key", OWNER), ("other", OTHER_MINISTRY), ("revoked", OWNER)):
            answer = await ingest.post(
                "/v1/admin/keys", headers=admin(), json={"ministry": ministry, "label": role}
            )
            assert answer.status_code == 201, answer.text
            created[role] = answer.json()
        revoked = await ingest.delete(
            f"/v1/admin/keys/{created['revoked']['key_id']}", headers=admin()
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None
        key_id = created["key"]["key_id"]
        yield Stack(
            clients=clients,
            apps=apps,
            key=created["key"]["key"],
            other_key=created["other"]["key"],
            revoked_key=created["revoked"]["key"],
            wrong_secret=f"shk_{key_id}_{secrets.token_urlsafe(32)}",
        )
    await mongo.drop_database(database)


# --- what a refusal must look like --------------------------------------------------------------


def assert_problem(answer: httpx.Response, status: int, slug: str, path: str) -> dict[str, Any]:
    """The exact RFC 9457 problem: status, content type, type URI, title, status, instance."""
    where = f"{answer.request.method} {path} ({answer.request.headers.get('authorization')!r})"
    assert answer.status_code == status, f"{where}: {answer.status_code} {answer.text}"
    assert answer.headers["content-type"] == PROBLEM_JSON, where
    body: dict[str, Any] = answer.json()
    assert body["type"] == PROBLEM_BASE + slug, (where, body)
    assert body["status"] == status, (where, body)
    assert body["title"], (where, body)
    assert body["instance"] == path.split("?")[0], (where, body)
    if status == 401:
        assert answer.headers["www-authenticate"] == 'Bearer realm="shinchoku"', where
        assert body["title"] == "Missing or invalid credentials", (where, body)
    return body


@dataclass(frozen=True)
class BadCredential:
    name: str
    headers: dict[str, str]
    # The `code` ingest's ministry routes answer with (admin routes carry none).
    ingest_code: str


def bad_credentials(stack: Stack) -> Iterator[BadCredential]:
    """Every kind of credential that must not open a protected route (beside the wrong kind,
    checked per route class)."""
    basic = base64.b64encode(f"digital:{ADMIN_TOKEN}".encode()).decode()
    yield BadCredential("none", {}, "missing")
    yield BadCredential("empty bearer", {"authorization": "Bearer "}, "missing")
    yield BadCredential("basic scheme", {"authorization": f"Basic {basic}"}, "missing")
    yield BadCredential("no scheme", {"authorization": stack.key}, "missing")
    yield BadCredential("token scheme", {"authorization": f"Token {stack.key}"}, "missing")
    yield BadCredential("garbage", bearer("not-a-key"), "invalid_key")
    yield BadCredential("truncated key", bearer(stack.key[:-12]), "invalid_key")
    yield BadCredential("huge", bearer("A" * 16_384), "invalid_key")
    yield BadCredential("key id only", bearer(stack.key[:17]), "invalid_key")
    yield BadCredential("wrong secret", bearer(stack.wrong_secret), "invalid_key")
    yield BadCredential(
        "unknown key id",
        bearer(f"shk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"),
        "invalid_key",
    )
    yield BadCredential("revoked key", bearer(stack.revoked_key), "invalid_key")
    yield BadCredential(
        "revoked key, wrong secret",
        bearer(stack.revoked_key[:17] + secrets.token_urlsafe(32)),
        "invalid_key",
    )
    yield BadCredential("admin token with a suffix", bearer(ADMIN_TOKEN + "x"), "invalid_key")
    yield BadCredential("admin token truncated", bearer(ADMIN_TOKEN[:-1]), "invalid_key")


def request_body(service: str, method: str, path: str) -> dict[str, Any]:
    """What a legitimate caller would send (so a refusal is due to the credentials alone)."""
    if method not in {"POST", "PATCH", "PUT"}:
        return {}
    if (method, path) == ("POST", "/v1/events"):
        return {"content": json.dumps(kpi_event(90.0)), "headers": STRUCTURED}
    if (method, path) == ("POST", "/v1/events:batch"):
        return {"content": json.dumps([kpi_event(90.0)]), "headers": BATCH}
    return {"json": {}}


async def call(
    stack: Stack, service: str, method: str, template: str, headers: dict[str, str]
) -> httpx.Response:
    path = concrete(template)
    body = request_body(service, method, template)
    merged = {**body.pop("headers", {}), **headers}
    return await stack.clients[service].request(method, path, headers=merged, **body)


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_is_classified_and_documented_as_such(service: str, stack: Stack) -> None:
    """The public and ministry lists name only routes that exist; every operation the OpenAPI
    document lists is served; protected operations declare a security scheme, public ones none."""
    app = stack.apps[service]
    served = served_routes(app)
    assert PUBLIC[service] <= served, PUBLIC[service] - served
    assert MINISTRY[service] <= served, MINISTRY[service] - served
    document = (await stack.clients[service].get("/openapi.json")).json()
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented <= served, documented - served
    for method, path in documented:
        security = document["paths"][path][method.lower()].get("security")
        if (method, path) in PUBLIC[service]:
            assert not security, f"{method} {path} is public but documents {security}"
        else:
            assert security, f"{method} {path} is protected but documents no security"
    if service in {"ingest", "alerts"}:
        assert admin_routes(service, app), "expected admin routes"


@pytest.mark.parametrize("service", SERVICES)
async def test_every_protected_route_refuses_every_bad_credential(
    service: str, stack: Stack
) -> None:
    """No key, a malformed one, a wrong secret, an unknown or revoked key, a near-miss admin
    token: every protected route answers the exact 401 problem, before looking at the body,
    and never echoes what was presented."""
    app = stack.apps[service]
    protected = sorted(served_routes(app) - PUBLIC[service])
    assert protected or service == "kpi"
    presented = stack.secrets_presented()
    for method, template in protected:
        path = concrete(template)
        for credential in bad_credentials(stack):
            answer = await call(stack, service, method, template, credential.headers)
            body = assert_problem(answer, 401, "unauthenticated", path)
            if (method, template) in MINISTRY[service]:
                assert body["code"] == credential.ingest_code, (credential.name, body)
                assert body["errors"] == [{"field": "Authorization", "reason": body["detail"]}]
            else:  # the admin token: one code whatever was wrong with it
                assert body["code"] == "unauthenticated", (credential.name, body)
            for secret in presented:
                assert secret not in answer.text, (credential.name, method, path)


@pytest.mark.parametrize("service", SERVICES)
async def test_the_wrong_kind_of_credential_is_refused(service: str, stack: Stack) -> None:
    """A ministry key (of any ministry) does not open an admin route; the admin token does not
    open a ministry route: both are the exact 401 problem."""
    app = stack.apps[service]
    for method, template in sorted(admin_routes(service, app)):
        for key in (stack.key, stack.other_key):
            answer = await call(stack, service, method, template, bearer(key))
            body = assert_problem(answer, 401, "unauthenticated", concrete(template))
            assert body["detail"] == "the admin token is not valid"
    for method, template in sorted(MINISTRY[service]):
        answer = await call(stack, service, method, template, admin())
        body = assert_problem(answer, 401, "unauthenticated", concrete(template))
        assert body["code"] == "invalid_key"


@pytest.mark.parametrize("service", SERVICES)
async def test_the_right_credential_opens_each_protected_route(service: str, stack: Stack) -> None:
    """With the admin token (admin routes) or the ministry's own key (ministry routes), no
    protected route answers 401 or 403, nor a 5xx: the refusals above are about credentials."""
    app = stack.apps[service]
    for method, template in sorted(admin_routes(service, app)):
        answer = await call(stack, service, method, template, admin())
        assert answer.status_code not in {401, 403}, (method, template, answer.text)
        assert answer.status_code < 500, (method, template, answer.text)
    for method, template in sorted(MINISTRY[service]):
        answer = await call(stack, service, method, template, bearer(stack.key))
        assert answer.status_code in {200, 202}, (method, template, answer.text)


@pytest.mark.parametrize("service", SERVICES)
async def test_public_routes_answer_anyone_and_ignore_credentials(
    service: str, stack: Stack
) -> None:
    """Each deliberately public route answers 2xx with no credentials, and the same with
    garbage or a revoked key (credentials are neither needed nor checked there)."""
    for method, template in sorted(PUBLIC[service]):
        for headers in ({}, bearer("not-a-key"), bearer(stack.revoked_key)):
            answer = await call(stack, service, method, template, headers)
            assert 200 <= answer.status_code < 300, (method, template, headers, answer.text)


@pytest.mark.parametrize("service", SERVICES)
async def test_unknown_routes_are_not_found_problems_whatever_the_credentials(
    service: str, stack: Stack
) -> None:
    """A path no route serves is a 404 problem, with or without credentials; a wrong method
    on a served path a 405 problem: neither tells a prober more."""
    client = stack.clients[service]
    for headers in ({}, admin(), bearer(stack.key)):
        answer = await client.get("/v1/no-such-route", headers=headers)
        assert_problem(answer, 404, "not-found", "/v1/no-such-route")
        answer = await client.put("/healthz", headers=headers)
        assert_problem(answer, 405, "method-not-allowed", "/healthz")


# --- ministry scope (ingest) --------------------------------------------------------------------


async def test_a_ministry_key_cannot_speak_for_another_ministry(stack: Stack) -> None:
    """A valid key of one ministry posting an event with another ministry's source is the exact
    403 source-not-allowed problem, in structured mode, binary mode and within a batch; with its
    own source but an entry it is not responsible for, 403 wrong-ministry."""
    ingest = stack.clients["ingest"]
    foreign = kpi_event(90.0, ministry=OWNER)  # OWNER's source, sent with OTHER_MINISTRY's key
    answer = await ingest.post(
        "/v1/events",
        content=json.dumps(foreign),
        headers={**STRUCTURED, **bearer(stack.other_key)},
    )
    body = assert_problem(answer, 403, "source-not-allowed", "/v1/events")
    assert body["code"] == "source_not_key_ministry"
    assert body["errors"][0]["field"] == "source"

    data = foreign["data"]
    binary = await ingest.post(
        "/v1/events",
        content=json.dumps(data),
        headers={
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": secrets.token_hex(8),
            "ce-source": f"/ministries/{OWNER}",
            "ce-type": "shinchoku.kpi.observed.v1",
            "ce-subject": PERCENT_KPI,
            "ce-time": foreign["time"],
            **bearer(stack.other_key),
        },
    )
    assert_problem(binary, 403, "source-not-allowed", "/v1/events")

    batch = await ingest.post(
        "/v1/events:batch",
        content=json.dumps([foreign, kpi_event(91.0, ministry=OTHER_MINISTRY)]),
        headers={**BATCH, **bearer(stack.other_key)},
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [403, 403]
    assert results[0]["problem"]["type"] == PROBLEM_BASE + "source-not-allowed"
    assert results[1]["problem"]["type"] == PROBLEM_BASE + "wrong-ministry"
    assert batch.json()["accepted"] == 0

    own_source = await ingest.post(
        "/v1/events",
        content=json.dumps(kpi_event(90.0, ministry=OTHER_MINISTRY)),
        headers={**STRUCTURED, **bearer(stack.other_key)},
    )
    body = assert_problem(own_source, 403, "wrong-ministry", "/v1/events")
    assert body["code"] == "wrong_ministry"

    # The key's own ministry is accepted: the refusals are about the ministry, not the event.
    accepted = await ingest.post(
        "/v1/events", content=json.dumps(foreign), headers={**STRUCTURED, **bearer(stack.key)}
    )
    assert accepted.status_code == 202, accepted.text


async def test_a_revoked_key_stops_working_at_once(stack: Stack) -> None:
    """A key that worked is refused (401, the generic invalid_key) by the next request after its
    revocation through the admin API; listing keys never shows a secret."""
    ingest = stack.clients["ingest"]
    created = await ingest.post("/v1/admin/keys", headers=admin(), json={"ministry": OWNER})
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["key_id"]
    content, headers = json.dumps(kpi_event(90.0)), {**STRUCTURED, **bearer(key)}
    assert (await ingest.post("/v1/events", content=content, headers=headers)).status_code == 202
    assert (await ingest.delete(f"/v1/admin/keys/{key_id}", headers=admin())).status_code == 200
    refused = await ingest.post("/v1/events", content=content, headers=headers)
    body = assert_problem(refused, 401, "unauthenticated", "/v1/events")
    assert body["code"] == "invalid_key"
    listed = await ingest.get("/v1/admin/keys", headers=admin())
    assert listed.status_code == 200
    assert secret_of(key) not in listed.text
    assert key_id in listed.text
