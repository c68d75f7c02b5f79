"""`shinchoku keys create|list|revoke`: ministry API keys for the ingest service.

Uses the ingest service's database (``SHINCHOKU_INGEST_MONGO__URL``, ``..._DATABASE``). A
created key is printed once and stored only as its SHA-256. A revoked key stops working at once
on new ingest instances and within ``SHINCHOKU_INGEST_KEY_CACHE_TTL_S`` (default 5 s) on running
ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.adapters.ministries import known_ministries
from services.ingest.domain.keys import KeyRecord
from shared.clock import utc_now
from shared.mongo import create_mongo_client
from shared.settings import InfraSettings


def register(groups: Any) -> None:
    parser = groups.add_parser("keys", help="ministry API keys for the ingest service")
    commands = parser.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="create a key for a ministry (printed once)")
    create.add_argument("--ministry", required=True, help="ministry code, e.g. mic")
    create.add_argument("--label", default=None, help="what the key is for")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    create.set_defaults(handler=_create)
    listing = commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--ministry", default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    revoke = commands.add_parser("revoke", help="revoke a key by its key id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke)


def _store_call(action: Any) -> Any:
    async def run() -> Any:
        settings = InfraSettings()
        client = create_mongo_client(settings.ingest_mongo, app_name="shinchoku-keys")
        try:
            return await action(ApiKeyStore(client, settings.ingest_mongo.database))
        finally:
            await client.close()

    return asyncio.run(run())


def _describe(record: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "ministry": record.ministry,
        "label": record.label,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def _create(args: argparse.Namespace) -> int:
    if args.ministry not in known_ministries():
        codes = ", ".join(sorted(known_ministries()))
        print(f"unknown ministry code {args.ministry!r}; known: {codes}", file=sys.stderr)
        return 2
    full, record = _store_call(lambda store: store.create(args.ministry, utc_now(), args.label))
    if args.json:
        print(json.dumps({**_describe(record), "key": full}))
    else:
        print(f"key id:   {record.key_id}")
        print(f"ministry: {record.ministry}")
        print(f"key:      {full}")
        print("The key is shown only now; store it securely (only its hash is kept).")
    return 0


def _list(args: argparse.Namespace) -> int:
    records: list[KeyRecord] = _store_call(lambda store: store.list(args.ministry))
    if args.json:
        print(json.dumps([_describe(r) for r in records]))
        return 0
    for r in records:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        print(f"{r.key_id}  {r.ministry:<20} {state:<24} {r.label or ''}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record: KeyRecord | None = _store_call(lambda store: store.revoke(args.key_id, utc_now()))
    if record is None:
        print(f"no API key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {record.key_id} ({record.ministry}) at {record.revoked_at}")
    return 0
