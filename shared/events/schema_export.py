"""Published contracts, generated from the event models: JSON Schemas and an AsyncAPI document.

``shinchoku contracts export docs/contracts`` writes

- ``schemas/<event type>.json``: the JSON Schema (2020-12) of each CloudEvent type, envelope and
  ``data`` together, as pydantic validates it;
- ``asyncapi.yaml``: an AsyncAPI 3.0 document of the topics, their messages and the CloudEvents
  Kafka binding in use (structured mode; record key = the KPI, milestone or measure id).

``shinchoku contracts export --check DIR`` exits 1 when the files in DIR differ from what the models
generate; a unit test does the same, so the committed files cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.events.cloudevents import CLOUDEVENTS_JSON, CloudEvent
from shared.events.contracts import (
    ALL_EVENT_TYPES,
    ItemOwnersChangedEvent,
    KpiObservedEvent,
    KpiStatusChangedEvent,
    MeasureAssessedEvent,
    MeasureDivergenceChangedEvent,
    MilestoneReportedEvent,
)
from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE
from shared.settings import TopicSettings

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://shinchoku.example/contracts/schemas/"
KAFKA_BINDING_VERSION = "0.5.0"

# (message name, model, summary, where its id comes from for the record key)
MESSAGES: tuple[tuple[str, type[CloudEvent], str, str], ...] = (
    (
        "KpiObserved",
        KpiObservedEvent,
        "A ministry observed a KPI value as of a date.",
        "data.kpi_id",
    ),
    (
        "MilestoneReported",
        MilestoneReportedEvent,
        "A ministry reported progress on a dated milestone.",
        "data.milestone_id",
    ),
    (
        "MeasureAssessed",
        MeasureAssessedEvent,
        "A ministry rated one of its measures (on track, at risk, off track).",
        "data.measure_id",
    ),
    (
        "ItemOwnersChanged",
        ItemOwnersChangedEvent,
        "Who may report a KPI or milestone changed at run time (published by ingest, which "
        "records the change; applied by kpi to its copy of the catalogue).",
        "data.item_id",
    ),
    (
        "KpiStatusChanged",
        KpiStatusChangedEvent,
        "The kpi service's computed status of a KPI or milestone changed.",
        "data.kpi_id",
    ),
    (
        "MeasureDivergenceChanged",
        MeasureDivergenceChangedEvent,
        "A ministry's self-assessment of a measure and the measure's computed status began "
        "to diverge (an episode opens), diverge by another level, or agree again (it closes).",
        "data.measure_id",
    ),
)

EXAMPLES: dict[str, dict[str, Any]] = {
    "KpiObserved": {
        "specversion": "1.0",
        "id": "mic-2024-06-30-5g-coverage",
        "source": "/ministries/digital",
        "type": "shinchoku.kpi.observed.v1",
        "subject": "kpi.5g-population-coverage",
        "time": "2024-07-05T09:30:00+09:00",
        "datacontenttype": "application/json",
        "partitionkey": "kpi.5g-population-coverage",
        "data": {
            "kpi_id": "kpi.5g-population-coverage",
            "value": 96.6,
            "as_of": "2024-03-31",
            "note": "FY2023 year-end figure",
        },
    },
    "MilestoneReported": {
        "specversion": "1.0",
        "id": "digital-2023-05-dfft",
        "source": "/ministries/digital",
        "type": "shinchoku.milestone.reported.v1",
        "subject": "ms.dfft-g7-2023-outcomes",
        "time": "2023-05-20T18:00:00+09:00",
        "datacontenttype": "application/json",
        "partitionkey": "ms.dfft-g7-2023-outcomes",
        "data": {
            "milestone_id": "ms.dfft-g7-2023-outcomes",
            "state": "in_progress",
            "percent_complete": 60.0,
            "expected_completion": "2023-06-30",
            "as_of": "2023-05-20",
            "note": None,
        },
    },
    "MeasureAssessed": {
        "specversion": "1.0",
        "id": "digital-2024q1-inclusion",
        "source": "/ministries/digital",
        "type": "shinchoku.measure.assessed.v1",
        "subject": "m.4-1-3.digital-inclusion-support",
        "time": "2024-04-10T12:00:00+09:00",
        "datacontenttype": "application/json",
        "partitionkey": "m.4-1-3.digital-inclusion-support",
        "data": {
            "measure_id": "m.4-1-3.digital-inclusion-support",
            "rating": "at_risk",
            "as_of": "2024-03-31",
            "narrative": "Support-desk staffing behind plan in two prefectures.",
        },
    },
    "ItemOwnersChanged": {
        "specversion": "1.0",
        "id": "owners:6750a1c2e4b0a1b2c3d4e5f6",
        "source": "/services/ingest",
        "type": "shinchoku.item.owners_changed.v1",
        "subject": "kpi.5g-population-coverage",
        "time": "2026-12-04T09:00:00.120000+00:00",
        "datacontenttype": "application/json",
        "partitionkey": "kpi.5g-population-coverage",
        "data": {
            "item_id": "kpi.5g-population-coverage",
            "action": "set",
            "owners": ["mic", "digital"],
            "change_id": "6750a1c2e4b0a1b2c3d4e5f6",
            "reason": "the Digital Agency co-reports during the transition",
            "changed_by": "ops: Sato (Digital Agency)",
            "changed_at": "2026-12-04T09:00:00.000000+00:00",
        },
    },
    "KpiStatusChanged": {
        "specversion": "1.0",
        "id": "0f8e2a8c4b7d4a38a5b1c2d3e4f50617",
        "source": "/services/kpi",
        "type": "shinchoku.kpi.status_changed.v1",
        "subject": "kpi.5g-population-coverage",
        "time": "2024-07-05T09:30:02+00:00",
        "datacontenttype": "application/json",
        "partitionkey": "kpi.5g-population-coverage",
        "data": {
            "kpi_id": "kpi.5g-population-coverage",
            "kind": "kpi",
            "measure_id": "m.6-5-3-1-s1.5g-infrastructure",
            "ministries": ["digital"],
            "previous_status": "on_track",
            "status": "at_risk",
            "episode_id": "kpi.5g-population-coverage:2024-07-05",
            "evaluated_on": "2024-07-05",
            "explanation": {"rule": "trajectory", "expected": 97.8, "observed": 96.6},
        },
    },
    "MeasureDivergenceChanged": {
        "specversion": "1.0",
        "id": "divergence:m.4-1-3.digital-inclusion-support:1",
        "source": "/services/kpi",
        "type": "shinchoku.measure.divergence_changed.v1",
        "subject": "m.4-1-3.digital-inclusion-support",
        "time": "2024-07-05T09:30:02+00:00",
        "datacontenttype": "application/json",
        "partitionkey": "m.4-1-3.digital-inclusion-support",
        "data": {
            "measure_id": "m.4-1-3.digital-inclusion-support",
            "ministries": ["digital"],
            "self_assessment": "on_track",
            "assessed_as_of": "2024-03-31",
            "computed_status": "off_track",
            "previous_divergence": "none",
            "divergence": "major",
            "episode_id": "m.4-1-3.digital-inclusion-support:divergence:1",
            "evaluated_on": "2024-07-05",
        },
    },
}


def event_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The standalone JSON Schema of one event type (definitions inlined under ``$defs``)."""
    schema = model.model_json_schema(mode="validation")
    type_name = getattr(model, "TYPE", model.__name__)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_BASE}{type_name}.json",
        "description": f"The CloudEvent {type_name} (CloudEvents 1.0, JSON format).",
        **{k: v for k, v in schema.items() if k != "description"},
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per event type."""
    return {f"{name}.json": event_json_schema(model) for name, model in ALL_EVENT_TYPES.items()}


def _message(name: str, model: type[CloudEvent], summary: str, key_from: str) -> dict[str, Any]:
    return {
        "name": model.TYPE,
        "title": name,
        "summary": summary,
        "contentType": CLOUDEVENTS_JSON,
        "headers": {
            "type": "object",
            "description": "Kafka record headers (CloudEvents Kafka binding, structured mode).",
            "properties": {"content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE}},
            "required": ["content-type"],
        },
        "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        "correlationId": {
            "description": "Together with `source`, the event's identity (deduplication key).",
            "location": "$message.payload#/id",
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The `partitionkey` attribute, equal to `{key_from}` (and "
                    "to `subject` when present): one entry's events stay ordered on one "
                    "partition.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [{"name": name, "payload": EXAMPLES[name]}],
    }


def asyncapi_document(topics: TopicSettings | None = None) -> dict[str, Any]:
    topics = topics or TopicSettings()
    models = [model for _, model, _, _ in MESSAGES]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    ministry = ["KpiObserved", "MilestoneReported", "MeasureAssessed"]
    status = ["KpiStatusChanged", "MeasureDivergenceChanged"]
    on_events_topic = [*ministry, "ItemOwnersChanged"]

    def refs(names: list[str]) -> dict[str, Any]:
        return {n: {"$ref": f"#/components/messages/{n}"} for n in names}

    def kafka_channel() -> dict[str, Any]:
        return {
            "kafka": {
                "partitions": topics.partitions,
                "replicas": topics.replication_factor,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Shinchoku events",
            "version": "1.0.0",
            "description": (
                "Events of Shinchoku, the progress reporting of Japan's Priority Policy Program "
                "for Realizing a Digital Society. Every record is a CloudEvents 1.0 event in the "
                "**structured mode of the CloudEvents Kafka protocol binding**: the record value "
                "is the whole event as JSON, header `content-type: "
                f"{STRUCTURED_CONTENT_TYPE}`, and the record key is the `partitionkey` "
                "extension attribute, which is the KPI, milestone or measure id (equal to "
                "`subject` when present), so one entry's events stay ordered on one partition. "
                "Consumers also accept binary mode (`ce_*` headers, data as the value) from "
                "producers that write to Kafka directly. `subject` and `time` are OPTIONAL "
                "(CloudEvents 1.0): the entry is named in `data`, and where a time is needed "
                "the time the event was received stands in (ingest writes it as the record's "
                "`time` when the sender gave none); `time`, when present, is RFC 3339 "
                "and at most a few minutes ahead of the receive time. `datacontenttype` is "
                "`application/json`, media-type parameters allowed (`application/json; "
                "charset=utf-8`), in structured and binary mode alike. A ministry's `source` is "
                "exactly `/ministries/{code}`. Every consumer re-checks each ministry event "
                "(schema, the source's ministry owning the entry, value and date rules) and "
                "dead-letters one that fails with its reason (docs/trust-model.md). An event's "
                "identity is `source` + `id`; consumers are idempotent on it. Generated by "
                "`shinchoku contracts export` from shared/events/contracts.py."
            ),
        },
        "defaultContentType": CLOUDEVENTS_JSON,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local stack's broker (make run).",
            }
        },
        "channels": {
            "ministryEvents": {
                "address": topics.events,
                "title": "Ministry events",
                "description": "What ministries report, published by the ingest service after "
                "validation against the catalogue (acks=all, idempotent producer); and the "
                "run-time ownership changes ingest records, keyed by the item like its reports "
                "so each is ordered among them.",
                "messages": refs(on_events_topic),
                "bindings": kafka_channel(),
            },
            "statusChanges": {
                "address": topics.status,
                "title": "Status changes",
                "description": "Computed status changes and self-assessment divergences, "
                "published by the kpi service.",
                "messages": refs(status),
                "bindings": kafka_channel(),
            },
            "deadLetters": {
                "address": topics.dead_letter,
                "title": "Dead letters",
                "description": "Records a consumer could not process, unchanged (value, key, "
                "headers), with `dlq_reason`, `dlq_detail`, `dlq_service`, "
                "`dlq_source_topic`, `dlq_source_partition`, `dlq_source_offset` and `dlq_time` "
                "headers added.",
                "messages": refs(on_events_topic),
                "bindings": kafka_channel(),
            },
        },
        "operations": {
            "publishMinistryEvents": _operation(
                "send",
                "ministryEvents",
                "The ingest service publishes accepted ministry events.",
                ministry,
            ),
            "consumeMinistryEvents": _operation(
                "receive",
                "ministryEvents",
                "The kpi service folds ministry events into KPI and milestone state.",
                ministry,
            ),
            "publishOwnershipChanges": _operation(
                "send",
                "ministryEvents",
                "The ingest service publishes each run-time ownership change it "
                "records (admin API or CLI), after recording it; source /services/ingest.",
                ["ItemOwnersChanged"],
            ),
            "consumeOwnershipChanges": _operation(
                "receive",
                "ministryEvents",
                "The kpi service applies ownership changes from /services/ingest to "
                "its copy of the catalogue, in the item's partition order, once per change.",
                ["ItemOwnersChanged"],
            ),
            "publishStatusChanges": _operation(
                "send",
                "statusChanges",
                "The kpi service publishes computed status changes and divergences.",
                status,
            ),
            "consumeStatusChanges": _operation(
                "receive",
                "statusChanges",
                "The alerts service turns status changes and divergences into webhook deliveries.",
                status,
            ),
        },
        "components": {
            "messages": {
                name: _message(name, model, summary, key_from)
                for name, model, summary, key_from in MESSAGES
            },
            "schemas": schemas,
        },
    }


def _operation(action: str, channel: str, summary: str, messages: list[str]) -> dict[str, Any]:
    """An AsyncAPI operation: `action` (send or receive) on `channel`, carrying `messages` (the
    names of that channel's messages)."""
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
    }


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def rendered_files() -> dict[str, str]:
    """Relative path -> file content, for everything `export` writes."""
    files = {f"schemas/{name}": render_json(schema) for name, schema in json_schemas().items()}
    files["asyncapi.yaml"] = render_yaml(asyncapi_document())
    return files


def export(directory: Path) -> list[Path]:
    written = []
    for relative, content in rendered_files().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Relative paths whose committed content differs from the generated one."""
    differing = []
    for relative, content in rendered_files().items():
        path = directory / relative
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            differing.append(relative)
    return differing


def register(groups: Any) -> None:
    parser = groups.add_parser("contracts", help="event JSON Schemas and the AsyncAPI document")
    commands = parser.add_subparsers(dest="contracts_command", required=True, metavar="COMMAND")
    export_cmd = commands.add_parser("export", help="write schemas/*.json and asyncapi.yaml")
    export_cmd.add_argument("directory", type=Path, nargs="?", default=Path("docs/contracts"))
    export_cmd.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ"
    )
    export_cmd.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    if args.check:
        differing = drift(args.directory)
        for relative in differing:
            print(f"out of date: {args.directory / relative}", file=sys.stderr)
        if differing:
            print("run: shinchoku contracts export", file=sys.stderr)
        return 1 if differing else 0
    for path in export(args.directory):
        print(path)
    return 0
