"""`shinchoku catalogue ...`: show, validate and load the plan catalogue."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.catalogue.model import Catalogue, Ownership
from shared.catalogue.validate import CatalogueError, load_catalogue, validate_files


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    group = subparsers.add_parser(
        "catalogue", help="the plan catalogue (measures, KPIs, milestones)"
    )
    commands = group.add_subparsers(dest="catalogue_command", required=True, metavar="COMMAND")

    show = commands.add_parser("show", help="print the validated catalogue")
    show.add_argument("--json", action="store_true", help="the full catalogue as JSON on stdout")
    show.add_argument("--file", type=Path, default=None, help="catalogue YAML (default: built-in)")
    show.add_argument("--ministries", type=Path, default=None, help="ministry table YAML")
    show.set_defaults(handler=_show)

    validate = commands.add_parser("validate", help="report every problem in a catalogue file")
    validate.add_argument("file", nargs="?", type=Path, default=None, help="catalogue YAML")
    validate.add_argument("--ministries", type=Path, default=None, help="ministry table YAML")
    validate.add_argument(
        "--plan-text",
        type=Path,
        default=None,
        help="plan text to check quotes against (default: found beside repo)",
    )
    validate.add_argument(
        "--no-sources", action="store_true", help="skip checking quotes against the plan text"
    )
    validate.set_defaults(handler=_validate)

    load = commands.add_parser(
        "load",
        help="validate, then upsert into MongoDB (idempotent; retires, never deletes)",
        description=(
            "Validate the catalogue (refusing to load it when there is any problem, each printed "
            "with its entry id and field), then upsert a copy of it into the database of each "
            "service that reads it, ingest and kpi (SHINCHOKU_INGEST_MONGO__URL and "
            "SHINCHOKU_INGEST_MONGO__DATABASE, SHINCHOKU_KPI_MONGO__*: the variables those "
            "services read). Entries absent from the file are marked retired, never deleted."
        ),
    )
    load.add_argument("file", nargs="?", type=Path, default=None, help="catalogue YAML")
    load.add_argument("--ministries", type=Path, default=None, help="ministry table YAML")
    load.add_argument(
        "--plan-text",
        type=Path,
        default=None,
        help="plan text to check quotes against (default: found beside repo)",
    )
    load.add_argument(
        "--no-sources", action="store_true", help="skip checking quotes against the plan text"
    )
    load.set_defaults(handler=_load)


def summary(catalogue: Catalogue) -> str:
    defaulted = sum(1 for m in catalogue.measures if m.ownership is Ownership.DEFAULTED)
    targets = sum(len(k.targets) for k in catalogue.kpis)
    starts = sum(1 for ms in catalogue.milestones if ms.kind.value == "start")
    return "\n".join(
        [
            f"{catalogue.plan.title_en} ({catalogue.plan.title_ja}), catalogue {catalogue.version}",
            f"measures:   {len(catalogue.measures)} ({defaulted} with defaulted ownership)",
            f"kpis:       {len(catalogue.kpis)} numeric ({targets} staged targets)",
            f"milestones: {len(catalogue.milestones)} ({starts} start-type)",
            f"ministries: {len(catalogue.ministries)}",
            f"reporting:  {catalogue.defaults.reporting_cadence}, "
            f"at-risk tolerance {catalogue.defaults.at_risk_tolerance:g}",
        ]
    )


def _show(args: argparse.Namespace) -> int:
    try:
        catalogue = load_catalogue(args.file, args.ministries)
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if args.json:
        json.dump(catalogue.show_json(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(summary(catalogue))
    return 0


def _validate(args: argparse.Namespace) -> int:
    catalogue, problems = validate_files(
        args.file, args.ministries, plan_text=args.plan_text, check_sources=not args.no_sources
    )
    for problem in problems:
        print(problem)
    if problems or catalogue is None:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(summary(catalogue))
    return 0


def _load(args: argparse.Namespace) -> int:
    # Imported here so `catalogue show`/`validate` do not pay for the MongoDB client.
    from shared.catalogue.loader import load_into, validated_catalogue
    from shared.mongo import create_mongo_client, mongo_reachable
    from shared.settings import InfraSettings

    try:
        catalogue = validated_catalogue(
            args.file,
            args.ministries,
            check_sources=not args.no_sources,
            plan_text=args.plan_text,
        )
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing loaded", file=sys.stderr)
        return 1
    settings = InfraSettings()

    async def run() -> int:
        now = datetime.now(UTC)
        # One copy per service that reads the catalogue (each owns its database).
        for database in settings.catalogue_databases().values():
            mongo = create_mongo_client(database, app_name="shinchoku-catalogue")
            try:
                if not await mongo_reachable(mongo, database.server_selection_timeout_ms / 1000):
                    print(f"MongoDB at {database.url} did not answer", file=sys.stderr)
                    return 1
                report = await load_into(mongo[database.database], catalogue, now=now)
            finally:
                await mongo.close()
            print(report.summary())
        return 0

    return asyncio.run(run())
