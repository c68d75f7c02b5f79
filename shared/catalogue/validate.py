"""Load and validate the catalogue, reporting *every* problem with its entry id and field.

Validation runs entry by entry (so one bad milestone does not hide the next), then checks
cross-references (measure ids, ministry codes, depends_on, duplicates), the order of staged
targets, and that every stored deadline is what `shared.plan.dates.parse_deadline` gives for
its verbatim `deadline_text`. When the plan text is available it also checks that every
quote appears verbatim on its cited line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.catalogue.model import (
    Catalogue,
    DeadlineContext,
    Defaults,
    Kpi,
    Measure,
    Milestone,
    MinistryTable,
    Owner,
    OwnerBasis,
    PlanMeta,
    SourceRef,
)
from shared.plan.dates import DatedPhrase, parse_deadline

CATALOGUE_DIR = Path(__file__).resolve().parent
DEFAULT_CATALOGUE = CATALOGUE_DIR / "plan-2022.yaml"
DEFAULT_MINISTRIES = CATALOGUE_DIR / "ministries.yaml"
PLAN_FILE_NAME = "digital-society-priority-plan-2022.ja.txt"
VENDORED_PLAN_TEXT = Path(__file__).resolve().parents[1] / "plan" / PLAN_FILE_NAME

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, order=True)
class Problem:
    entry_id: str  # e.g. "ms.gov-cloud-operation-start", "measures[3]", "catalogue"
    field: str  # dotted path inside the entry, e.g. "targets.1.deadline"
    message: str

    def __str__(self) -> str:
        return f"{self.entry_id}: {self.field or '-'}: {self.message}"


class CatalogueError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} catalogue problem(s):\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


def find_plan_text() -> Path | None:
    """The plan text vendored in this repository (shared/plan/, see SOURCE.md there); a
    catalogue checked against another copy names it (`--plan-text`). Nothing outside the
    repository is looked for."""
    return VENDORED_PLAN_TEXT if VENDORED_PLAN_TEXT.is_file() else None


def read_plan_lines(path: Path) -> list[str]:
    """Lines of the plan, index 0 = line 1 (as `sed -n 1p` counts)."""
    return path.read_text(encoding="utf-8").split("\n")


def _read_yaml(path: Path, problems: list[Problem], entry: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem(entry, "", f"cannot read {path}: {exc}"))
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(entry, "", f"{path} is not a mapping"))
        return {}
    return data


def _loc(loc: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _validate_one(
    model: type[_M], raw: object, entry_id: str, problems: list[Problem], prefix: str = ""
) -> _M | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            field = _loc((*([prefix] if prefix else []), *err["loc"]))
            problems.append(Problem(entry_id, field, err["msg"]))
        return None


def _entry_id(raw: object, kind: str, index: int) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"]:
        return str(raw["id"])
    return f"{kind}[{index}]"


def _as_list(data: Mapping[str, Any], key: str, entry: str, problems: list[Problem]) -> list[Any]:
    value = data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(entry, key, "must be a list"))
        return []
    return value


def validate_data(
    data: Mapping[str, Any],
    ministries_data: Mapping[str, Any],
    *,
    plan_lines: Sequence[str] | None = None,
) -> tuple[Catalogue | None, list[Problem]]:
    """Validate raw catalogue + ministry-table mappings. Returns the catalogue (None if any
    problem was found) and every problem found."""
    problems: list[Problem] = []

    table = _validate_one(MinistryTable, dict(ministries_data), "ministries.yaml", problems)
    plan = _validate_one(PlanMeta, data.get("plan"), "catalogue", problems, "plan")
    defaults = _validate_one(
        Defaults, data.get("defaults") or {}, "catalogue", problems, "defaults"
    )
    version = data.get("version")
    if not isinstance(version, str) or not version:
        problems.append(Problem("catalogue", "version", "a non-empty version string is required"))
    known_top = {"version", "plan", "defaults", "measures", "kpis", "milestones"}
    for key in data:
        if key not in known_top:
            problems.append(Problem("catalogue", str(key), "unknown top-level key"))

    measures: list[Measure] = []
    for i, raw in enumerate(_as_list(data, "measures", "catalogue", problems)):
        m = _validate_one(Measure, raw, _entry_id(raw, "measures", i), problems)
        if m is not None:
            measures.append(m)
    kpis: list[Kpi] = []
    for i, raw in enumerate(_as_list(data, "kpis", "catalogue", problems)):
        k = _validate_one(Kpi, raw, _entry_id(raw, "kpis", i), problems)
        if k is not None:
            kpis.append(k)
    milestones: list[Milestone] = []
    for i, raw in enumerate(_as_list(data, "milestones", "catalogue", problems)):
        ms = _validate_one(Milestone, raw, _entry_id(raw, "milestones", i), problems)
        if ms is not None:
            milestones.append(ms)

    reference_fy = plan.reference_fiscal_year if plan else None
    problems.extend(_cross_checks(table, measures, kpis, milestones, reference_fy))
    if plan_lines is not None:
        problems.extend(_source_checks(plan_lines, measures, kpis, milestones))
        problems.extend(_named_owner_checks(plan_lines, table, measures, kpis, milestones))
        if plan is not None and plan.text_lines != len(plan_lines):
            problems.append(
                Problem(
                    "catalogue",
                    "plan.text_lines",
                    f"plan text has {len(plan_lines)} lines, catalogue says {plan.text_lines}",
                )
            )

    if problems or table is None or plan is None or defaults is None:
        return None, sorted(set(problems), key=lambda p: (p.entry_id, p.field, p.message))
    catalogue = Catalogue(
        version=str(version),
        plan=plan,
        defaults=defaults,
        default_owner=table.default_owner,
        ministries=table.ministries,
        measures=measures,
        kpis=kpis,
        milestones=milestones,
    )
    return catalogue, []


# Words that date a phrase only through its context (the year named before, the plan's own
# decision...): a deadline starting with one is read through its `deadline_context`.
RELATIVE_LEADS = ("同年度", "同年", "翌年度", "翌年", "前年度", "前年", "同月")
START_MARKER = re.compile(r"(?:以降|以後|から|より|[～〜~])")


def _check_deadline(
    entry_id: str,
    field: str,
    deadline_text: str,
    stored: tuple[object, object, object],
    reference_fy: int | None,
    context: DeadlineContext | None = None,
) -> list[Problem]:
    if context is not None:
        # A phrase opening with a relative year (同年12月末を目途に) must read as the same phrase
        # with that year resolved; other relative phrases (プラン策定の３年後) rely on the note.
        lead = next((w for w in RELATIVE_LEADS if deadline_text.startswith(w)), None)
        rest = deadline_text[len(lead) :] if lead else None
        if rest is not None and (not rest or not context.reads_as.endswith(rest)):
            return [
                Problem(
                    entry_id,
                    f"{field}deadline_context.reads_as",
                    f"{context.reads_as!r} is not {deadline_text!r} with its relative word "
                    f"({' / '.join(RELATIVE_LEADS)}) resolved",
                )
            ]
        deadline_text = context.reads_as
    parsed = parse_deadline(deadline_text, reference_fiscal_year=reference_fy)
    if not isinstance(parsed, DatedPhrase):
        return [
            Problem(
                entry_id,
                f"{field}deadline_text",
                f"parser gives no date for {deadline_text!r} ({parsed.reason.value})",
            )
        ]
    out: list[Problem] = []
    deadline, precision, bound = stored
    if deadline != parsed.deadline:
        out.append(
            Problem(
                entry_id,
                f"{field}deadline",
                f"{deadline} but the parser gives {parsed.deadline} for {deadline_text!r}",
            )
        )
    if precision != parsed.precision:
        out.append(
            Problem(
                entry_id,
                f"{field}precision",
                f"{precision} but the parser gives {parsed.precision.value}",
            )
        )
    if bound != parsed.bound:
        out.append(
            Problem(entry_id, f"{field}bound", f"{bound} but the parser gives {parsed.bound.value}")
        )
    return out


def _cross_checks(
    table: MinistryTable | None,
    measures: Sequence[Measure],
    kpis: Sequence[Kpi],
    milestones: Sequence[Milestone],
    reference_fy: int | None,
) -> list[Problem]:
    problems: list[Problem] = []
    codes = {m.code for m in table.ministries} if table else None

    def check_codes(entry_id: str, field: str, values: Iterable[str]) -> None:
        if codes is None:
            return
        for i, code in enumerate(values):
            if code not in codes:
                problems.append(
                    Problem(entry_id, f"{field}.{i}", f"unknown ministry code {code!r}")
                )

    if table is not None:
        seen_codes: set[str] = set()
        for m in table.ministries:
            if m.code in seen_codes:
                problems.append(
                    Problem("ministries.yaml", f"ministries.{m.code}", "duplicate ministry code")
                )
            seen_codes.add(m.code)
        check_codes("ministries.yaml", "default_owner", [table.default_owner])

    all_ids: dict[str, str] = {}
    for kind, entries in (("measure", measures), ("kpi", kpis), ("milestone", milestones)):
        for e in entries:
            if e.id in all_ids:
                problems.append(Problem(e.id, "id", f"duplicate id (also a {all_ids[e.id]})"))
            all_ids.setdefault(e.id, kind)

    def check_owners(entry_id: str, owners: Sequence[Owner] | None) -> None:
        if owners is None:
            return
        check_codes(entry_id, "owners", [o.code for o in owners])
        seen: set[str] = set()
        for i, owner in enumerate(owners):
            if owner.code in seen:
                problems.append(
                    Problem(entry_id, f"owners.{i}.code", f"{owner.code!r} is listed twice")
                )
            seen.add(owner.code)

    measure_ids = {m.id for m in measures}
    for measure in measures:
        check_owners(measure.id, measure.owners)

    for k in kpis:
        if k.measure_id not in measure_ids:
            problems.append(Problem(k.id, "measure_id", f"unknown measure {k.measure_id!r}"))
        check_owners(k.id, k.owners)
        previous = None
        for i, t in enumerate(k.targets):
            if previous is not None and t.deadline < previous:
                problems.append(
                    Problem(
                        k.id,
                        f"targets.{i}.deadline",
                        f"targets not in deadline order ({t.deadline} after {previous})",
                    )
                )
            previous = t.deadline
            problems.extend(
                _check_deadline(
                    k.id,
                    f"targets.{i}.",
                    t.deadline_text,
                    (t.deadline, t.precision, t.bound),
                    reference_fy,
                    t.deadline_context,
                )
            )
            if (
                t.relative is not None
                and k.direction.value == "decrease"
                and (t.relative.change_ratio > 0)
            ):
                problems.append(
                    Problem(
                        k.id,
                        f"targets.{i}.relative.change_ratio",
                        "a decrease KPI needs a negative change ratio",
                    )
                )

    by_id = {ms.id: ms for ms in milestones}
    for ms in milestones:
        if ms.measure_id not in measure_ids:
            problems.append(Problem(ms.id, "measure_id", f"unknown measure {ms.measure_id!r}"))
        check_owners(ms.id, ms.owners)
        problems.extend(
            _check_deadline(
                ms.id,
                "",
                ms.deadline_text,
                (ms.deadline, ms.precision, ms.bound),
                reference_fy,
                ms.deadline_context,
            )
        )
        for i, dep in enumerate(ms.depends_on):
            if dep == ms.id:
                problems.append(Problem(ms.id, f"depends_on.{i}", "depends on itself"))
            elif dep not in by_id:
                problems.append(Problem(ms.id, f"depends_on.{i}", f"unknown milestone {dep!r}"))
            elif by_id[dep].deadline > ms.deadline:
                problems.append(
                    Problem(
                        ms.id,
                        f"depends_on.{i}",
                        f"{dep} is due {by_id[dep].deadline}, after this milestone ({ms.deadline})",
                    )
                )
    problems.extend(_cycles(by_id))
    return problems


def _cycles(by_id: Mapping[str, Milestone]) -> list[Problem]:
    problems: list[Problem] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in by_id[node].depends_on:
            if dep not in by_id:
                continue
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep] if dep in stack else [node, dep]
                problems.append(Problem(node, "depends_on", "cycle: " + " -> ".join(cycle)))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in by_id:
        if node not in state:
            visit(node, [node])
    return problems


def _source_checks(
    plan_lines: Sequence[str],
    measures: Sequence[Measure],
    kpis: Sequence[Kpi],
    milestones: Sequence[Milestone],
) -> list[Problem]:
    problems: list[Problem] = []

    def check(entry_id: str, field: str, src: SourceRef, deadline_text: str | None = None) -> None:
        if src.line > len(plan_lines):
            problems.append(
                Problem(
                    entry_id, f"{field}line", f"line {src.line} beyond the plan's {len(plan_lines)}"
                )
            )
            return
        text = plan_lines[src.line - 1]
        if src.quote not in text:
            problems.append(
                Problem(entry_id, f"{field}quote", f"quote not found verbatim on line {src.line}")
            )
        if deadline_text is not None and deadline_text not in text:
            problems.append(
                Problem(
                    entry_id,
                    f"{field}line",
                    f"deadline text {deadline_text!r} not on line {src.line}",
                )
            )
        elif deadline_text is not None and all(
            START_MARKER.match(text, m.end()) for m in re.finditer(re.escape(deadline_text), text)
        ):
            problems.append(
                Problem(
                    entry_id,
                    f"{field}deadline_text",
                    f"{deadline_text!r} is followed on line {src.line} by a start marker "
                    "(から, 以降, ～) it leaves out: the bound would be wrong",
                )
            )

    for m in measures:
        for i, s in enumerate(m.sources):
            check(m.id, f"sources.{i}.", s)
    for k in kpis:
        for i, s in enumerate(k.sources):
            check(k.id, f"sources.{i}.", s)
        if k.baseline is not None and k.baseline.source is not None:
            check(k.id, "baseline.source.", k.baseline.source)
        for i, t in enumerate(k.targets):
            check(k.id, f"targets.{i}.source.", t.source, t.deadline_text)
            if t.deadline_context is not None:
                check(k.id, f"targets.{i}.deadline_context.source.", t.deadline_context.source)
    for ms in milestones:
        check(ms.id, "source.", ms.source, ms.deadline_text)
        if ms.deadline_context is not None:
            check(ms.id, "deadline_context.source.", ms.deadline_context.source)
        for i, s in enumerate(ms.other_sources):
            check(ms.id, f"other_sources.{i}.", s)
    return problems


def _named_owner_checks(
    plan_lines: Sequence[str],
    table: MinistryTable | None,
    measures: Sequence[Measure],
    kpis: Sequence[Kpi],
    milestones: Sequence[Milestone],
) -> list[Problem]:
    """A named owner's quote is verbatim on its line and names that ministry (its Japanese
    name or an alias): the plan must really say so."""
    if table is None:
        return []
    names = {m.code: (m.name_ja, *m.aliases) for m in table.ministries}
    problems: list[Problem] = []
    entries: list[tuple[str, Sequence[Owner] | None]] = [(m.id, m.owners) for m in measures]
    entries += [(k.id, k.owners) for k in kpis]
    entries += [(ms.id, ms.owners) for ms in milestones]
    for entry_id, owners in entries:
        for i, owner in enumerate(owners or ()):
            if owner.basis is not OwnerBasis.NAMED or owner.line is None or owner.quote is None:
                continue
            field = f"owners.{i}."
            if owner.line > len(plan_lines):
                problems.append(
                    Problem(entry_id, f"{field}line", f"line {owner.line} beyond the plan")
                )
                continue
            if owner.quote not in plan_lines[owner.line - 1]:
                problems.append(
                    Problem(
                        entry_id, f"{field}quote", f"quote not found verbatim on line {owner.line}"
                    )
                )
            if not any(name in owner.quote for name in names.get(owner.code, ())):
                problems.append(
                    Problem(
                        entry_id,
                        f"{field}quote",
                        f"the quote does not name {owner.code!r} "
                        f"({' / '.join(names.get(owner.code, ()))})",
                    )
                )
    return problems


def validate_files(
    catalogue_path: Path | None = None,
    ministries_path: Path | None = None,
    *,
    plan_text: Path | None = None,
    check_sources: bool = True,
) -> tuple[Catalogue | None, list[Problem]]:
    problems: list[Problem] = []
    catalogue_path = catalogue_path or DEFAULT_CATALOGUE
    ministries_path = ministries_path or DEFAULT_MINISTRIES
    data = _read_yaml(catalogue_path, problems, "catalogue")
    ministries_data = _read_yaml(ministries_path, problems, "ministries.yaml")
    if problems:
        return None, problems
    lines: list[str] | None = None
    if check_sources:
        plan_path = plan_text or find_plan_text()
        if plan_path is not None:
            lines = read_plan_lines(plan_path)
    return validate_data(data, ministries_data, plan_lines=lines)


def load_catalogue(
    catalogue_path: Path | None = None,
    ministries_path: Path | None = None,
    *,
    check_sources: bool = False,
) -> Catalogue:
    """The validated catalogue; raises CatalogueError listing every problem."""
    catalogue, problems = validate_files(
        catalogue_path, ministries_path, check_sources=check_sources
    )
    if catalogue is None:
        raise CatalogueError(problems)
    return catalogue
