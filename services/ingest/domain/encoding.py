"""The Kafka record of an accepted event (CloudEvents Kafka binding, structured mode). Pure: the
service layer encodes before it claims, to refuse an event too large for the topic."""

from __future__ import annotations

import json

from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE, EncodedRecord

_HEADERS = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def encode_event(event: CloudEvent, key: str) -> EncodedRecord:
    """The structured-mode record of `event` with ``partitionkey`` = `key` (the record key).

    The same record as ``shared.events.kafka_binding.encode_structured`` (a unit test holds them
    equal): absent optional attributes omitted, ``data`` kept whole (nulls inside are data). It
    is serialised by pydantic in one pass rather than copied and dumped twice: ingest encodes
    every event it accepts. Callers have checked that a given ``partitionkey`` equals `key`.
    """
    optional = ("dataschema", "partitionkey", "subject", "time")
    absent = {name for name in optional if getattr(event, name) is None}
    if event.model_extra:
        absent |= {name for name, value in event.model_extra.items() if value is None}
    body = event.model_dump_json(exclude=absent)
    if event.partitionkey is None:
        body = '{"partitionkey":' + json.dumps(key, ensure_ascii=False) + "," + body[1:]
    return EncodedRecord(key=key.encode(), value=body.encode(), headers=list(_HEADERS))
