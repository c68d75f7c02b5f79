"""Candidate finder for the plan catalogue (shared/catalogue/plan-2022.yaml).

Walks the plan text, tracks the heading structure (第N / N． / （N） / ① / ア and the boxed
"…に関する具体的な施策" lists), and prints every sentence that contains a dated expression
from FY2022 onwards or a numeric target, with its 1-based line number, section path and the
ministries it names. Reviewers can re-run it to check that nothing was missed:

    uv run python tools/extract_catalogue.py candidates            # dated sentences
    uv run python tools/extract_catalogue.py candidates --numeric  # numeric-target sentences
    uv run python tools/extract_catalogue.py sections              # the heading tree
    uv run python tools/extract_catalogue.py coverage              # candidates not cited

The catalogue itself was written from this output by review (English titles by hand). The
authoritative completeness check is `shinchoku catalogue coverage` (shared/catalogue/coverage.py):
every dated or numeric sentence catalogued or excluded with a reason; owners with their basis are
reviewed by hand in plan-2022.yaml (`shinchoku catalogue owners`), the ministries this tool names
per sentence are only a hint.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CATALOGUE_DIR = REPO / "shared" / "catalogue"
PLAN_NAME = "digital-society-priority-plan-2022.ja.txt"

_FW = str.maketrans("０１２３４５６７８９", "0123456789")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
KATAKANA_ITEMS = "アイウエオカキクケコ"

_BOOKMARK = re.compile(r"\[bookmark: [^\]]*\]")
_FOOTREF = re.compile(r"\[footnoteRef:\d+\]")
_CHAPTER = re.compile(r"^第([０-９0-9]+)　(.+)$")
_SECTION = re.compile(r"^([０-９0-9]+)．(.+)$")
_SUBSECTION = re.compile(r"^（([０-９0-9]+)）(.+)$")
_ITEM = re.compile(r"^([①-⑳])[　\t](.+)$")
_SUBITEM = re.compile(r"^([アイウエオカキクケコ])[　．](.+)$")

# Boxed lists of concrete measures ("…に関する具体的な施策") restart the ①② numbering; they
# belong to an item of the enclosing subsection, which the text does not repeat.
BOX_PARENT: dict[int, str | None] = {
    557: None,  # 包括的データ戦略に関する具体的な施策 (第５ 5.)
    831: "②",  # ワンストップサービスの推進等 (第６ 1.(5)②)
    1261: "④",  # マイナポータルの継続的改善 (第６ 5.(1)④)
    1289: "⑨",  # 国の情報システムを整備する際に留意すべき事項 (⑨ 整備・管理)
    1337: "⑩",  # デジタル庁・各府省共同プロジェクト
    1394: "⑪",  # 国や地方公共団体の手続等の更なるデジタル化
    1443: "⑬",  # 独立行政法人の情報システム
    1495: "②",  # 標準化基準における共通事項の策定等 (第６ 5.(2)②)
    1524: "③",  # 制度所管府省庁による標準化基準の策定 (第６ 5.(2)③)
    1587: "①",  # 光ファイバ、5Gインフラの整備等 (第６ 5.(3)①)
    1630: None,  # 研究開発・実証の推進 (第６ 5.(4))
}
# Headings lost in the text conversion (they were text boxes in the original document).
MISSING_HEADINGS: dict[int, tuple[str, str, str]] = {
    544: ("section", "５", "包括的データ戦略"),
    1557: ("subsection", "３", "デジタル社会を支えるインフラの整備"),
}

DATE_RE = re.compile(
    r"(早ければ|遅くとも)?(令和([元０-９0-9]+)年(度)?|(20[0-9]{2})年(度)?)(（20[0-9]{2}年度?）)?"
    r"([０-９0-9]+月)?(末|中|内|当初|前半|後半|夏|秋|冬|春|頃|早期)?"
    r"(を目途に|を目途|までに|まで|から|以降|中に|内に|を目指)?"
)
NUMERIC_RE = re.compile(
    r"(％|%|[０-９0-9]割|万人|万件|万世帯|万局|億円|地域で|[0-9０-９]+地域|ほぼ全)"
)
GOAL_RE = re.compile(r"(目指|目標|KPI|にする|とする|までに|以上)")


def plan_path() -> Path:
    """The plan text vendored in the repository (shared/plan/, see SOURCE.md there)."""
    candidate = REPO / "shared" / "plan" / PLAN_NAME
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(candidate)


def plan_lines() -> list[str]:
    """Lines of the plan, index 0 = line 1 (as `sed -n 1p` shows)."""
    return plan_path().read_text(encoding="utf-8").split("\n")


def clean(line: str) -> str:
    return _BOOKMARK.sub("", line).replace("[image: ]", "").strip()


def numeral(ch: str) -> str:
    if ch in CIRCLED:
        return str(CIRCLED.index(ch) + 1)
    if ch in KATAKANA_ITEMS:
        return "abcdefghij"[KATAKANA_ITEMS.index(ch)]
    return ch.translate(_FW)


@dataclass
class Position:
    chapter: str = ""
    section: str = ""
    subsection: str = ""
    item: str = ""
    subitem: str = ""
    box_parent: str | None = None
    box_item: str = ""
    in_box: bool = False
    titles: dict[str, tuple[int, str]] = field(default_factory=dict)

    def path(self) -> str:
        parts = [f"第{self.chapter}"] if self.chapter else []
        head = ""
        if self.section:
            head = f"{self.section.translate(_FW)}."
        if self.subsection:
            head += f"({self.subsection.translate(_FW)})"
        if head:
            parts.append(head)
        if self.in_box:
            if self.box_parent:
                parts.append(self.box_parent)
            if self.box_item:
                parts.append(f"具体的施策{self.box_item}")
        else:
            if self.item:
                parts.append(self.item)
            if self.subitem:
                parts.append(self.subitem)
        return " ".join(parts)

    def key(self) -> str:
        """Numeric key used in measure ids: 第６ 5.(1) ④ 具体的施策⑤ -> 6-5-1-4-s5."""
        bits = [self.chapter.translate(_FW)]
        if self.section:
            bits.append(self.section.translate(_FW))
        if self.subsection:
            bits.append(self.subsection.translate(_FW))
        if self.in_box:
            if self.box_parent:
                bits.append(numeral(self.box_parent))
            if self.box_item:
                bits.append("s" + numeral(self.box_item))
        else:
            if self.item:
                bits.append(numeral(self.item))
            if self.subitem:
                bits.append(numeral(self.subitem))
        return "-".join(bits)

    def title(self) -> tuple[int, str]:
        """Line and text of the deepest heading in force."""
        for level in ("box_item", "subitem", "item", "box", "subsection", "section", "chapter"):
            if level in self.titles:
                return self.titles[level]
        return (1, "")


def walk(lines: list[str]) -> Iterator[tuple[int, str, Position]]:
    """Yield (line number, cleaned text, position *after* reading that line)."""
    pos = Position()
    for number, raw in enumerate(lines, 1):
        text = clean(raw)
        if number in MISSING_HEADINGS:
            level, num, title = MISSING_HEADINGS[number]
            if level == "section":
                pos = Position(chapter=pos.chapter, section=num, titles=_keep(pos, "chapter"))
                pos.titles["section"] = (number, title)
            else:
                pos = Position(
                    chapter=pos.chapter,
                    section=pos.section,
                    subsection=num,
                    titles=_keep(pos, "chapter", "section"),
                )
                pos.titles["subsection"] = (number, title)
        elif number in BOX_PARENT:
            pos.in_box = True
            pos.box_parent = BOX_PARENT[number]
            pos.box_item = ""
            pos.titles.pop("box_item", None)
            pos.titles.pop("subitem", None)
            pos.titles.pop("item", None)
            pos.titles["box"] = (number, text)
        elif m := _CHAPTER.match(text):
            pos = Position(chapter=m.group(1))
            pos.titles["chapter"] = (number, text)
        elif (m := _SECTION.match(text)) and len(text) < 80:
            pos = Position(chapter=pos.chapter, section=m.group(1), titles=_keep(pos, "chapter"))
            pos.titles["section"] = (number, text)
        elif (m := _SUBSECTION.match(text)) and len(text) < 80:
            pos = Position(
                chapter=pos.chapter,
                section=pos.section,
                subsection=m.group(1),
                titles=_keep(pos, "chapter", "section"),
            )
            pos.titles["subsection"] = (number, text)
        elif (m := _ITEM.match(text)) and len(text) < 80 and not raw.startswith("\t"):
            if pos.in_box:
                pos.box_item = m.group(1)
                pos.titles["box_item"] = (number, m.group(2).strip())
            else:
                pos.item = m.group(1)
                pos.subitem = ""
                pos.titles.pop("subitem", None)
                pos.titles["item"] = (number, m.group(2).strip())
        elif (m := _SUBITEM.match(text)) and len(text) < 80 and not pos.in_box:
            pos.subitem = m.group(1)
            pos.titles["subitem"] = (number, m.group(2).strip())
        yield number, text, pos


def _keep(pos: Position, *levels: str) -> dict[str, tuple[int, str]]:
    return {k: v for k, v in pos.titles.items() if k in levels}


def sentences(line: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs of a plan line, split after 。."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in re.finditer(r"。", line):
        out.append((start, line[start : m.end()]))
        start = m.end()
    if start < len(line):
        out.append((start, line[start:]))
    return out


def future_dates(sentence: str) -> list[str]:
    """Date expressions in FY2022 or later (the plan was decided in June 2022)."""
    hits = []
    for m in DATE_RE.finditer(_FOOTREF.sub("", sentence)):
        if m.group(3):
            era = m.group(3).translate(_FW)
            year = 2018 + (1 if era == "元" else int(era))
        else:
            year = int(m.group(5))
        if year >= 2022:
            hits.append(m.group(0))
    return hits


def load_ministry_aliases() -> list[tuple[str, str]]:
    table = yaml.safe_load((CATALOGUE_DIR / "ministries.yaml").read_text(encoding="utf-8"))
    pairs: list[tuple[str, str]] = []
    for m in table["ministries"]:
        pairs.append((m["name_ja"], m["code"]))
        pairs.extend((alias, m["code"]) for alias in m.get("aliases", []))
    # longest first, so 内閣サイバーセキュリティセンター wins over shorter names
    return sorted(pairs, key=lambda p: -len(p[0]))


COLLECTIVE = ("各府省庁", "関係府省庁", "制度所管府省庁", "関係省庁", "各主務大臣", "各府省")


def ministries_named(text: str, aliases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name as written, code) for each ministry named in `text`, in order of appearance."""
    found: dict[str, tuple[int, str]] = {}
    masked = text
    for name, code in aliases:
        for m in re.finditer(re.escape(name), masked):
            if code not in found or m.start() < found[code][0]:
                found[code] = (m.start(), name)
        masked = masked.replace(name, "＿" * len(name))
    return [(name, code) for code, (_, name) in sorted(found.items(), key=lambda kv: kv[1][0])]


def collective_phrase(text: str) -> str | None:
    for phrase in COLLECTIVE:
        if phrase in text:
            return phrase
    return None


def cited_lines() -> set[int]:
    path = CATALOGUE_DIR / "plan-2022.yaml"
    if not path.is_file():
        return set()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cited: set[int] = set()
    for ms in data.get("milestones", []):
        cited.add(ms["source"]["line"])
        cited.update(s["line"] for s in ms.get("other_sources", []))
    for k in data.get("kpis", []):
        cited.update(s["line"] for s in k["sources"])
        cited.update(t["source"]["line"] for t in k["targets"])
    return cited


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    cand = sub.add_parser("candidates", help="sentences with a future date or a numeric target")
    cand.add_argument("--numeric", action="store_true", help="numeric-target sentences only")
    sub.add_parser("sections", help="the heading tree with section paths")
    sub.add_parser("coverage", help="candidate lines that no catalogue entry cites")
    args = parser.parse_args(argv)

    lines = plan_lines()
    aliases = load_ministry_aliases()
    cited = cited_lines() if args.cmd == "coverage" else set()
    seen_heading: set[tuple[int, str]] = set()
    count = 0
    for number, text, pos in walk(lines):
        if args.cmd == "sections":
            heading = pos.title()
            if heading[0] == number and heading not in seen_heading:
                seen_heading.add(heading)
                print(f"{number:5d}  {pos.path():32s} {heading[1][:60]}")
            continue
        for _, sentence in sentences(_FOOTREF.sub("", text)):
            dates = future_dates(sentence)
            numeric = bool(NUMERIC_RE.search(sentence) and GOAL_RE.search(sentence))
            wanted = numeric if getattr(args, "numeric", False) else bool(dates)
            if not wanted or (args.cmd == "coverage" and number in cited):
                continue
            count += 1
            owners = ",".join(code for _, code in ministries_named(sentence, aliases))
            owners = owners or collective_phrase(sentence) or "-"
            print(f"{number}\t{pos.path()}\t{'|'.join(dates)}\t{owners}\t{sentence.strip()[:160]}")
    if args.cmd != "sections":
        print(f"{count} candidate sentences", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
