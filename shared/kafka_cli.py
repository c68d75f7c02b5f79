"""`shinchoku kafka acls|grant-ministry`: the broker's ACLs, as the admin principal.

Reads InfraSettings (``SHINCHOKU_KAFKA__*`` with the admin's credentials, ``SHINCHOKU_TOPICS__*``).
Both commands are idempotent. The SCRAM users themselves are created with the broker's tools
(deploy/README.md, "Who may write to Kafka").
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from shared.kafka_acls import (
    ServicePrincipals,
    create_acls,
    ministry_bindings,
    ministry_user,
    service_bindings,
)
from shared.settings import InfraSettings


def _acls(args: argparse.Namespace) -> int:
    settings = InfraSettings()
    principals = ServicePrincipals(
        ingest=args.ingest_user,
        kpi=args.kpi_user,
        alerts=args.alerts_user,
        kpi_group=args.kpi_group,
        alerts_group=args.alerts_group,
    )
    bindings = service_bindings(principals, settings.topics)
    asyncio.run(create_acls(settings.kafka, bindings))
    for binding in bindings:
        print(f"acl: {binding}")
    return 0


def _grant_ministry(args: argparse.Namespace) -> int:
    try:
        ministry_user(args.code)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    settings = InfraSettings()
    bindings = ministry_bindings(args.code, settings.topics)
    asyncio.run(create_acls(settings.kafka, bindings))
    for binding in bindings:
        print(f"acl: {binding}")
    return 0


def register(groups: Any) -> None:
    parser = groups.add_parser("kafka", help="the broker's ACLs (run as the admin principal)")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = ServicePrincipals()
    acls = commands.add_parser(
        "acls", help="each service's ACLs on the topics and its consumer group (idempotent)"
    )
    acls.add_argument("--ingest-user", default=defaults.ingest)
    acls.add_argument("--kpi-user", default=defaults.kpi)
    acls.add_argument("--alerts-user", default=defaults.alerts)
    acls.add_argument("--kpi-group", default=defaults.kpi_group)
    acls.add_argument("--alerts-group", default=defaults.alerts_group)
    acls.set_defaults(handler=_acls)
    grant = commands.add_parser(
        "grant-ministry",
        help="let the SCRAM user ministry-<code> write the events topic (nothing else)",
    )
    grant.add_argument("code", help="the ministry's code, e.g. mic")
    grant.set_defaults(handler=_grant_ministry)
