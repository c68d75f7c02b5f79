"""`shinchoku catalogue ...`: show, validate and load the plan catalogue."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.catalogue.model import Catalogue, OwnerBasis
from shared.catalogue.overrides import OwnershipChange, OwnershipStore, UnknownItemError
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
    _add_checked_file_arguments(validate)
    validate.set_defaults(handler=_validate)

    owners = commands.add_parser(
        "owners",
        help="who owns what: items by ministry and basis (named, inferred, default)",
        description=(
            "Print the owner x basis distribution of the catalogue's KPIs and milestones: for "
            "each ministry, how many items it owns because the plan names it, because the "
            "subject falls in its remit (inferred), or by default; then the measures likewise."
        ),
    )
    owners.add_argument("--file", type=Path, default=None, help="catalogue YAML")
    owners.add_argument("--ministries", type=Path, default=None, help="ministry table YAML")
    owners.add_argument("--json", action="store_true", help="the distribution as JSON")
    owners.set_defaults(handler=_owners)

    coverage = commands.add_parser(
        "coverage",
        help="every dated or numeric sentence of the plan: catalogued, or excluded with a reason",
        description=(
            "List every sentence of the plan that carries a date or a number, each catalogued "
            "(the KPIs and milestones citing it) or excluded with its written reason "
            "(shared/catalogue/coverage-exclusions.yaml), then the counts. Exits 1 when a "
            "sentence is unexplained or an exclusion matches no sentence."
        ),
    )
    coverage.add_argument("--file", type=Path, default=None, help="catalogue YAML")
    coverage.add_argument("--exclusions", type=Path, default=None, help="exclusions YAML")
    coverage.add_argument(
        "--unexplained", action="store_true", help="list only the unexplained sentences"
    )
    coverage.add_argument("--json", action="store_true", help="the verdicts as JSON")
    coverage.set_defaults(handler=_coverage)

    set_owners = commands.add_parser(
        "set-owners",
        help="change who may report a KPI or milestone, at run time (reason required)",
        description=(
            "Replace an item's owners in ingest's copy of the catalogue "
            "(SHINCHOKU_INGEST_MONGO__URL, SHINCHOKU_INGEST_MONGO__DATABASE), which holds the "
            "ownership record, until reset: recorded in the item's history with the reason, who "
            "and when; seen by ingest within its catalogue cache TTL (5 s) and published by a "
            "running ingest to the kpi service within its ownership_publish_interval_s (5 s); "
            "kept by later `catalogue load`s, which report it. The same as PUT "
            "/v1/admin/items/{item_id}/owners on ingest."
        ),
    )
    set_owners.add_argument("item_id", help="a KPI or milestone id")
    set_owners.add_argument(
        "--owner", dest="owners", action="append", required=True, help="ministry code (repeat)"
    )
    set_owners.add_argument("--reason", required=True, help="why (recorded)")
    set_owners.add_argument("--by", dest="changed_by", required=True, help="who (recorded)")
    set_owners.set_defaults(handler=_set_owners)

    reset_owners = commands.add_parser(
        "reset-owners", help="return a KPI or milestone to the catalogue's owners (recorded)"
    )
    reset_owners.add_argument("item_id", help="a KPI or milestone id")
    reset_owners.add_argument("--reason", required=True, help="why (recorded)")
    reset_owners.add_argument("--by", dest="changed_by", required=True, help="who (recorded)")
    reset_owners.set_defaults(handler=_reset_owners)

    ownership = commands.add_parser(
        "ownership", help="who may report a KPI or milestone, why, and its run-time changes"
    )
    ownership.add_argument("item_id", help="a KPI or milestone id")
    ownership.set_defaults(handler=_ownership)

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
    _add_checked_file_arguments(load)
    load.set_defaults(handler=_load)


def _add_checked_file_arguments(parser: argparse.ArgumentParser) -> None:
    """The catalogue file and what its quotes are checked against (`validate`, `load`)."""
    parser.add_argument("file", nargs="?", type=Path, default=None, help="catalogue YAML")
    parser.add_argument("--ministries", type=Path, default=None, help="ministry table YAML")
    parser.add_argument(
        "--plan-text",
        type=Path,
        default=None,
        help="plan text to check quotes against (default: the one vendored in shared/plan/)",
    )
    parser.add_argument(
        "--no-sources", action="store_true", help="skip checking quotes against the plan text"
    )


def owner_distribution(catalogue: Catalogue) -> dict[str, dict[str, dict[str, int]]]:
    """{"items"|"measures": {ministry code: {basis: count}}}, every ministry listed (zeros
    included), in the order of ministries.yaml. An item counts once per owner."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    entries = catalogue.entries
    kinds = {
        "items": [catalogue.owners_of(e) for e in entries],
        "measures": [list(m.owners) for m in catalogue.measures],
    }
    for kind, owner_lists in kinds.items():
        table = {m.code: {b.value: 0 for b in OwnerBasis} for m in catalogue.ministries}
        for owners in owner_lists:
            for owner in owners:
                table[owner.code][owner.basis.value] += 1
        out[kind] = table
    return out


def format_owner_table(catalogue: Catalogue) -> str:
    dist = owner_distribution(catalogue)
    bases = [b.value for b in OwnerBasis]
    entries = len(catalogue.kpis) + len(catalogue.milestones)
    lines = [
        f"KPIs and milestones ({entries}) and measures ({len(catalogue.measures)}) by owner "
        "and basis (an entry with two owners counts for each)",
        f"{'ministry':22s} {'items':>6s} "
        + " ".join(f"{b:>8s}" for b in bases)
        + f" {'measures':>9s} "
        + " ".join(f"{b:>8s}" for b in bases),
    ]
    totals = {kind: dict.fromkeys(bases, 0) for kind in dist}
    for m in catalogue.ministries:
        items, measures = dist["items"][m.code], dist["measures"][m.code]
        for kind, row in (("items", items), ("measures", measures)):
            for b in bases:
                totals[kind][b] += row[b]
        lines.append(
            f"{m.code:22s} {sum(items.values()):6d} "
            + " ".join(f"{items[b]:8d}" for b in bases)
            + f" {sum(measures.values()):9d} "
            + " ".join(f"{measures[b]:8d}" for b in bases)
        )
    lines.append(
        f"{'total':22s} {sum(totals['items'].values()):6d} "
        + " ".join(f"{totals['items'][b]:8d}" for b in bases)
        + f" {sum(totals['measures'].values()):9d} "
        + " ".join(f"{totals['measures'][b]:8d}" for b in bases)
    )
    idle = [m.code for m in catalogue.ministries if not sum(dist["items"][m.code].values())]
    lines.append(f"ministries owning no item: {len(idle)} ({', '.join(idle) or 'none'})")
    return "\n".join(lines)


def _catalogue_or_report(file: Path | None, ministries: Path | None = None) -> Catalogue | None:
    """The validated catalogue, or None after printing each of its problems to stderr."""
    try:
        return load_catalogue(file, ministries)
    except CatalogueError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _owners(args: argparse.Namespace) -> int:
    catalogue = _catalogue_or_report(args.file, args.ministries)
    if catalogue is None:
        return 1
    if args.json:
        json.dump(owner_distribution(catalogue), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_owner_table(catalogue))
    return 0


def summary(catalogue: Catalogue) -> str:
    named = sum(1 for m in catalogue.measures if any(o.basis is OwnerBasis.NAMED for o in m.owners))
    targets = sum(len(k.targets) for k in catalogue.kpis)
    starts = sum(1 for ms in catalogue.milestones if ms.kind.value == "start")
    return "\n".join(
        [
            f"{catalogue.plan.title_en} ({catalogue.plan.title_ja}), catalogue {catalogue.version}",
            f"measures:   {len(catalogue.measures)} ({named} with an owner the plan names)",
            f"kpis:       {len(catalogue.kpis)} numeric ({targets} staged targets)",
            f"milestones: {len(catalogue.milestones)} ({starts} start-type)",
            f"ministries: {len(catalogue.ministries)}",
            f"reporting:  {catalogue.defaults.reporting_cadence}, "
            f"at-risk tolerance {catalogue.defaults.at_risk_tolerance:g}",
        ]
    )


def _show(args: argparse.Namespace) -> int:
    catalogue = _catalogue_or_report(args.file, args.ministries)
    if catalogue is None:
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
    from shared.catalogue.overrides import read_overrides
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
        # The run-time owners are ingest's record (it owns the ownership history and publishes
        # each change to kpi): every copy is written with them, so a reload cannot undo in
        # kpi's copy a change kpi has applied, nor miss one it has not received yet.
        owner = settings.ingest_mongo
        mongo = create_mongo_client(owner, app_name="shinchoku-catalogue")
        try:
            if not await mongo_reachable(mongo, owner.server_selection_timeout_ms / 1000):
                print(f"MongoDB at {owner.url} did not answer", file=sys.stderr)
                return 1
            overrides = await read_overrides(mongo[owner.database])
        finally:
            await mongo.close()
        # One copy per service that reads the catalogue (each owns its database).
        for database in settings.catalogue_databases().values():
            mongo = create_mongo_client(database, app_name="shinchoku-catalogue")
            try:
                if not await mongo_reachable(mongo, database.server_selection_timeout_ms / 1000):
                    print(f"MongoDB at {database.url} did not answer", file=sys.stderr)
                    return 1
                report = await load_into(
                    mongo[database.database], catalogue, now=now, overrides=overrides
                )
            finally:
                await mongo.close()
            print(report.summary())
        return 0

    return asyncio.run(run())


def _run_on_store(action: Callable[[OwnershipStore], Awaitable[int]]) -> int:
    """Run `action` against the loaded catalogue's database (infrastructure settings)."""
    from shared.mongo import create_mongo_client, mongo_reachable
    from shared.settings import InfraSettings

    settings = InfraSettings()

    # Ingest's database holds the ownership record (its history, and what it publishes to kpi).
    database = settings.ingest_mongo

    async def run() -> int:
        mongo = create_mongo_client(database, app_name="shinchoku-catalogue")
        try:
            if not await mongo_reachable(mongo, database.server_selection_timeout_ms / 1000):
                print(f"MongoDB at {database.url} did not answer", file=sys.stderr)
                return 1
            try:
                return await action(OwnershipStore(mongo[database.database]))
            except UnknownItemError as exc:
                print(
                    f"no catalogue item {exc.args[0]!r} (is the catalogue loaded?)", file=sys.stderr
                )
                return 1
        finally:
            await mongo.close()

    return asyncio.run(run())


def _print_change(change: OwnershipChange) -> None:
    print(
        f"{change.item_id}: {change.action} owners {','.join(change.owners)} "
        f"(were {','.join(change.previous)}; catalogue {','.join(change.catalogue_owners)}) "
        f"by {change.changed_by} at {change.as_json()['changed_at']}: {change.reason}"
    )


def _record_change(change: Callable[[OwnershipStore], Awaitable[OwnershipChange]]) -> int:
    """Make an ownership change in the store and say what was recorded."""

    async def action(store: OwnershipStore) -> int:
        recorded = await change(store)
        _print_change(recorded)
        print(
            "recorded; a running ingest publishes it to the kpi service "
            "(shinchoku.item.owners_changed.v1) within its ownership_publish_interval_s"
        )
        return 0

    return _run_on_store(action)


def _set_owners(args: argparse.Namespace) -> int:
    known = {m.code for m in load_catalogue().ministries}
    unknown = [code for code in args.owners if code not in known]
    if unknown:
        print(f"unknown ministry code(s): {', '.join(unknown)}", file=sys.stderr)
        return 1
    return _record_change(
        lambda store: store.set_owners(
            args.item_id,
            args.owners,
            reason=args.reason,
            changed_by=args.changed_by,
            now=datetime.now(UTC),
        )
    )


def _reset_owners(args: argparse.Namespace) -> int:
    return _record_change(
        lambda store: store.reset_owners(
            args.item_id, reason=args.reason, changed_by=args.changed_by, now=datetime.now(UTC)
        )
    )


def _ownership(args: argparse.Namespace) -> int:
    async def action(store: OwnershipStore) -> int:
        item = await store.item(args.item_id)
        owners = list(item.get("ministries") or [])
        print(f"{args.item_id}: may be reported by {','.join(owners)}")
        for owner in item.get("owners") or []:
            why = owner.get("reason") or f"line {owner.get('line')}: {owner.get('quote')}"
            print(f"  catalogue: {owner['code']} ({owner['basis']}) {why}")
        override = item.get("ownership_override")
        if override:
            print(
                f"  override in force: {','.join(override['owners'])} "
                f"(catalogue {','.join(item.get('catalogue_ministries') or [])})"
            )
        for change in await store.history(args.item_id):
            print("  history: ", end="")
            _print_change(change)
        return 0

    return _run_on_store(action)


def _coverage(args: argparse.Namespace) -> int:
    from shared.catalogue.coverage import (
        Status,
        assess,
        load_exclusions,
        summary_line,
        unused_exclusions,
    )
    from shared.catalogue.validate import VENDORED_PLAN_TEXT, read_plan_lines

    catalogue = _catalogue_or_report(args.file)
    if catalogue is None:
        return 1
    lines = read_plan_lines(VENDORED_PLAN_TEXT)
    exclusions = load_exclusions(args.exclusions)
    verdicts = assess(lines, catalogue, exclusions)
    shown = [v for v in verdicts if not args.unexplained or v.status is Status.UNEXPLAINED]
    if args.json:
        json.dump(
            [
                {
                    "line": v.sentence.line,
                    "footnote": v.sentence.footnote,
                    "text": v.sentence.clean,
                    "status": v.status.value,
                    "by": list(v.by),
                }
                for v in shown
            ],
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for v in shown:
            text = v.sentence.clean
            text = text if len(text) <= 70 else text[:69] + "…"
            print(f"{v.sentence.line:5d}  {v.status.value:11s}  {text}")
            if v.by:
                print(f"{'':18s} {'; '.join(v.by)}")
    unused = unused_exclusions(lines, exclusions, verdicts)
    for e in unused:
        print(f"exclusion matches no dated or numeric sentence: line {e.line}: {e.quote!r}")
    print(summary_line(verdicts))
    unexplained = any(v.status is Status.UNEXPLAINED for v in verdicts)
    return 1 if unexplained or unused else 0
