"""docs/contracts/asyncapi.yaml is a valid AsyncAPI 3.0 document: checked against the
specification's own JSON Schema (vendored from @asyncapi/specs, tests/support/schemas/)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "support" / "schemas" / "asyncapi-3.0.0.json"


def test_the_asyncapi_document_validates_against_the_asyncapi_3_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    document = yaml.safe_load((ROOT / "docs" / "contracts" / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:20]
    )


def test_the_schema_catches_a_broken_document() -> None:
    """The check has teeth: an operation pointing at no channel is refused."""
    schema = json.loads(SCHEMA.read_text())
    document = yaml.safe_load((ROOT / "docs" / "contracts" / "asyncapi.yaml").read_text())
    document["operations"] = {"broken": {"action": "teleport"}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(document))
