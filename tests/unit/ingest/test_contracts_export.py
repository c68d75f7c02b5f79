"""The published contracts (docs/contracts) are exactly what the event models generate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml

from shared.events.cloudevents import CloudEvent
from shared.events.contracts import ALL_EVENT_TYPES
from shared.events.schema_export import EXAMPLES, MESSAGES, asyncapi_document, drift

CONTRACTS = Path(__file__).resolve().parents[3] / "docs" / "contracts"


def test_committed_contracts_do_not_drift_from_the_models() -> None:
    """docs/contracts equals `shinchoku contracts export` output (regenerate when this fails)."""
    assert drift(CONTRACTS) == []


@pytest.mark.parametrize("event_type", sorted(ALL_EVENT_TYPES))
def test_each_schema_accepts_its_example_and_refuses_a_broken_one(event_type: str) -> None:
    """Every event type's JSON Schema validates the documented example and rejects one
    without data."""
    schema = json.loads((CONTRACTS / "schemas" / f"{event_type}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    (name,) = [n for n, model, _, _ in MESSAGES if event_type == model.TYPE]
    example = EXAMPLES[name]
    jsonschema.validate(example, schema, cls=jsonschema.Draft202012Validator)
    broken = {k: v for k, v in example.items() if k != "data"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(("name", "model"), [(n, m) for n, m, _, _ in MESSAGES])
def test_examples_are_valid_events_of_their_model(name: str, model: type[CloudEvent]) -> None:
    """The AsyncAPI examples validate against the pydantic models themselves."""
    parsed = model.model_validate(EXAMPLES[name])
    assert parsed.partitionkey == parsed.subject


def test_asyncapi_states_the_binding_mode_and_the_record_key() -> None:
    """The AsyncAPI document names structured mode and keys every message by its entry id."""
    document = yaml.safe_load((CONTRACTS / "asyncapi.yaml").read_text())
    assert document == json.loads(json.dumps(asyncapi_document()))
    assert document["asyncapi"].startswith("3.")
    assert "structured mode" in document["info"]["description"]
    for message in document["components"]["messages"].values():
        assert message["contentType"] == "application/cloudevents+json"
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert (
            message["payload"]["$ref"].removeprefix("#/components/schemas/")
            in (document["components"]["schemas"])
        )
