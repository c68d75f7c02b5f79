"""The ingest OpenAPI document: examples for every endpoint, answer and problem type."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.bootstrap import create_app
from services.ingest.entrypoints.problems import EXAMPLES, VIOLATION_PROBLEMS
from services.ingest.settings import IngestSettings
from shared.http.problems import PROBLEM_BASE


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(IngestSettings()).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()
    ]


def test_every_answer_of_every_endpoint_has_an_example(document: dict[str, Any]) -> None:
    """Each response media type and each request body carries an example."""
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                assert "example" in content or "examples" in content, (path, method, status, media)
        request = operation.get("requestBody", {}).get("content", {})
        for media, content in request.items():
            if media == "application/json" and path.startswith("/v1/admin"):
                continue  # FastAPI's own model body: the schema carries `examples`
            assert "example" in content or "examples" in content, (path, method, media)


def test_every_problem_type_is_documented_with_an_example(document: dict[str, Any]) -> None:
    """Every ingest problem type appears as an example, under its status, in the document."""
    documented: set[str] = set()
    for _, _, operation in operations(document):
        for status, response in operation["responses"].items():
            examples = response.get("content", {}).get("application/problem+json", {})
            for example in examples.get("examples", {}).values():
                assert str(example["value"]["status"]) == status
                documented.add(example["value"]["type"].removeprefix(PROBLEM_BASE))
    assert set(EXAMPLES) <= documented
    assert {p.slug for p in VIOLATION_PROBLEMS.values()} <= documented


def test_retryable_answers_document_retry_after(document: dict[str, Any]) -> None:
    """409, 429 and 503 answers of the event endpoints declare the Retry-After header."""
    for path in ("/v1/events", "/v1/events:batch"):
        responses = document["paths"][path]["post"]["responses"]
        for status in ("429", "503"):
            assert "Retry-After" in responses[status]["headers"]
    assert "Retry-After" in document["paths"]["/v1/events"]["post"]["responses"]["409"]["headers"]


def test_request_bodies_document_the_three_modes(document: dict[str, Any]) -> None:
    """Structured and binary mode on /v1/events, batch mode on /v1/events:batch, with limits."""
    single = document["paths"]["/v1/events"]["post"]
    assert set(single["requestBody"]["content"]) == {
        "application/cloudevents+json",
        "application/json",
    }
    assert {p["name"] for p in single["parameters"]} >= {"ce-id", "ce-source", "ce-type"}
    batch = document["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]
    assert batch["application/cloudevents-batch+json"]["schema"]["maxItems"] == 500
    schemas = document["components"]["schemas"]
    assert {"KpiObservedEvent", "MilestoneReportedEvent", "MeasureAssessedEvent"} <= set(schemas)
