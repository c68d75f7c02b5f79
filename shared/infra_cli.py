"""`shinchoku infra init|wait`: create topics and indexes; wait until Kafka and MongoDB answer.

Used by `make run`/`make test` (deploy/local/stack.py) and by docker-compose's one-shot init.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from typing import Any

from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from shared.kafka import ensure_topics
from shared.mongo import create_mongo_client, mongo_reachable
from shared.settings import InfraSettings

# Every service's index definitions, applied by `infra init` to that service's own database
# (each service also applies its own at start-up, so a fresh test database needs no separate step).
INDEX_MODULES = {
    "ingest": "services.ingest.adapters.indexes",
    "kpi": "services.kpi.adapters.indexes",
    "alerts": "services.alerts.adapters.indexes",
}


async def wait_and_init(settings: InfraSettings, timeout_s: float, create: bool) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            created = await ensure_topics(settings.kafka, settings.topics) if create else []
            ensured = []
            for service, mongo_settings in settings.service_databases().items():
                mongo = create_mongo_client(mongo_settings, app_name="shinchoku-infra")
                try:
                    if not await mongo_reachable(mongo, 3.0):
                        raise ConnectionError(
                            f"MongoDB at {mongo_settings.url} ({service}) did not answer a ping"
                        )
                    if create:
                        module: Any = importlib.import_module(INDEX_MODULES[service])
                        await module.ensure_indexes(mongo[mongo_settings.database])
                        ensured.append(f"{service}: '{mongo_settings.database}'")
                finally:
                    await mongo.close()
            action = f"created topics {created}" if created else "topics present"
            print(f"infra ready: {action}; indexes ensured in {', '.join(ensured) or '-'}")
            return
        except (KafkaError, PyMongoError, OSError) as error:
            # bounded retry: the broker may still be electing itself; anything else is a bug
            # and fails at once
            last_error = error
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
    raise SystemExit(f"infra not ready after {timeout_s:.0f}s: {last_error!r}")


def _init(args: argparse.Namespace) -> int:
    asyncio.run(wait_and_init(InfraSettings(), args.timeout, create=True))
    return 0


def _wait(args: argparse.Namespace) -> int:
    asyncio.run(wait_and_init(InfraSettings(), args.timeout, create=False))
    return 0


def register(groups: Any) -> None:
    parser = groups.add_parser("infra", help="topics, indexes and readiness of Kafka and MongoDB")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create the topics and indexes (idempotent)")
    init.add_argument("--timeout", type=float, default=90.0)
    init.set_defaults(handler=_init)
    wait = commands.add_parser("wait", help="wait until Kafka and MongoDB answer")
    wait.add_argument("--timeout", type=float, default=90.0)
    wait.set_defaults(handler=_wait)
