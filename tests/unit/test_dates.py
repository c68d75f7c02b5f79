"""Tests for the deadline-phrase parser in `shared.plan.dates`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.cli import main as cli_main
from shared.plan.dates import (
    Bound,
    DatedPhrase,
    NoDateReason,
    Precision,
    UndatedPhrase,
    find_date_expressions,
    fiscal_year_end,
    fiscal_year_of,
    fiscal_year_start,
    normalise_digits,
    parse_deadline,
)

P = Precision
B = Bound
d = date

# Phrases copied verbatim from digital-society-priority-plan-2022.ja.txt, with the deadline,
# precision, bound and range start a careful human reader would assign.
PLAN_PHRASES: list[tuple[str, date, Precision, Bound, date | None]] = [
    (
        "令和４年（2022年）９月末を目途に、見直し工程表の素案を",
        d(2022, 9, 30),
        P.MONTH,
        B.AROUND,
        None,
    ),
    ("令和７年（2025年）までにオンライン化する方針", d(2025, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    ("令和４年(2022年)の年末までに見直しを行う", d(2022, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    ("令和５年（2023年）中の見直しを目指す", d(2023, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    (
        "令和４年（2022年）末を目途に主な経済界要望等",
        d(2022, 12, 31),
        P.CALENDAR_YEAR,
        B.AROUND,
        None,
    ),
    ("令和４年（2022年）８月末を目途に策定予定", d(2022, 8, 31), P.MONTH, B.AROUND, None),
    ("令和４年（2022年）12月末までに調査会が作成・公表し", d(2022, 12, 31), P.MONTH, B.BY, None),
    ("令和４年度（2022年度）内に詳細設計を行う", d(2023, 3, 31), P.FISCAL_YEAR, B.BY, None),
    (
        "令和６年度（2024年度）末までに年間45万人を育成する",
        d(2025, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    (
        "令和８年度（2026年度）までに230万人の育成を目指す",
        d(2027, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    (
        "令和５年度（2023年度）末までに政府統一基準を改定する",
        d(2024, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    ("令和４年（2022年）中に政府方針を定める", d(2022, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    (
        "令和５年度（2023年度）以降は、「②デジタル庁・各府省共",
        d(2024, 3, 31),
        P.FISCAL_YEAR,
        B.START,
        None,
    ),
    ("令和７年（2025年）６月までを目途にインプットを行う", d(2025, 6, 30), P.MONTH, B.AROUND, None),
    ("令和４年度（2022年度）末までに行う", d(2023, 3, 31), P.FISCAL_YEAR, B.BY, None),
    ("令和４年度（2022年度）中にe-Govに統合し", d(2023, 3, 31), P.FISCAL_YEAR, B.BY, None),
    (
        "令和12年（2030年）のデータ駆動社会実現を目指す",
        d(2030, 12, 31),
        P.CALENDAR_YEAR,
        B.BY,
        None,
    ),
    ("令和４年（2022年）６月までに６件の給付を特定公的給付と", d(2022, 6, 30), P.MONTH, B.BY, None),
    (
        "令和６年度（2024年度）中を目途に保険者による保険証発行",
        d(2025, 3, 31),
        P.FISCAL_YEAR,
        B.AROUND,
        None,
    ),
    (
        "令和７年度（2025年度）から一体化したカードの交付開始を",
        d(2026, 3, 31),
        P.FISCAL_YEAR,
        B.START,
        None,
    ),
    ("令和５年（2023年）１月以降の実現を目指す", d(2023, 1, 31), P.MONTH, B.START, None),
    (
        "令和５年（2023年）４月から導入を原則として義務付ける",
        d(2023, 4, 30),
        P.MONTH,
        B.START,
        None,
    ),
    ("令和５年（2023年）末を目標に策定する", d(2023, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    # 早期: the first half of the fiscal year; ～ makes it a start.
    ("令和４年度（2022年度）早期～", d(2022, 9, 30), P.FISCAL_HALF, B.START, None),
    # 以降早期: as early as possible from FY2022 on: FY2022 is the earliest start, not a due date.
    ("令和４年度（2022年度）以降早期～", d(2023, 3, 31), P.FISCAL_YEAR, B.EARLIEST, None),
    (
        "令和７年度（2025年度）以降の早期導入・展開を目指す",
        d(2026, 3, 31),
        P.FISCAL_YEAR,
        B.EARLIEST,
        None,
    ),
    # The ordinary Diet session opens in January and sits 150 days: it closes in June.
    (
        "令和５年（2023年）の通常国会に関連する法案を提出した上で",
        d(2023, 6, 30),
        P.MONTH,
        B.BY,
        None,
    ),
    ("令和６年常会提出法律案のうちから確認を試行的に行う", d(2024, 6, 30), P.MONTH, B.BY, None),
    ("令和５年（2023年）１月頃～", d(2023, 1, 31), P.MONTH, B.START, None),
    ("令和４年（2022年）夏を目途に標準仕様書を作成する", d(2022, 8, 31), P.SEASON, B.AROUND, None),
    (
        "令和４年（2022年）の夏を目途に、標準化基準の作成と併せ",
        d(2022, 8, 31),
        P.SEASON,
        B.AROUND,
        None,
    ),
    ("平成26～平成30年度（2014～2018年度）", d(2019, 3, 31), P.FISCAL_YEAR, B.BY, d(2014, 4, 1)),
    ("平成30～令和４年度（2018～2022年度）", d(2023, 3, 31), P.FISCAL_YEAR, B.BY, d(2018, 4, 1)),
    (
        "平成30年度（2018年度）から令和９年度（2027年度）まで",
        d(2028, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        d(2018, 4, 1),
    ),
    (
        "令和４年（2022年）７月から令和７年（2025年）６月までの",
        d(2025, 6, 30),
        P.MONTH,
        B.BY,
        d(2022, 7, 1),
    ),
    (
        "早ければ令和５年度（2023年度）から非対面での口頭弁論期日の運用",
        d(2024, 3, 31),
        P.FISCAL_YEAR,
        B.EARLIEST,
        None,
    ),
    (
        "遅くとも令和５年度（2023年度）にデジタル庁において",
        d(2024, 3, 31),
        P.FISCAL_YEAR,
        B.LATEST,
        None,
    ),
    (
        "令和６年度（2024年度）末までには全都道府県警察において",
        d(2025, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    # 年度末 as a start point is its closing month (March 2023), not the whole fiscal year.
    (
        "令和４年度（2022年度）末から警察共通基盤上で運用を開始",
        d(2023, 3, 31),
        P.MONTH,
        B.START,
        None,
    ),
    ("令和４年度（2022年度）８月末を目途に、各府省庁は", d(2022, 8, 31), P.MONTH, B.AROUND, None),
    (
        "令和７年度（2025年度）までの可能な限り早期に新規システ",
        d(2026, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    (
        "令和４年度（2022年度）から順次、運用を開始する",
        d(2023, 3, 31),
        P.FISCAL_YEAR,
        B.START,
        None,
    ),
    ("令和４年度（2022年度）よりSPring-8", d(2023, 3, 31), P.FISCAL_YEAR, B.START, None),
    ("令和３年（2021年）９月１日、デジタル庁が発足した", d(2021, 9, 1), P.DAY, B.BY, None),
    ("令和９年（2027年）１月までに特許事務システム", d(2027, 1, 31), P.MONTH, B.BY, None),
    (
        "令和３年度（2021年度）及び令和４年度（2022年度）にかけて実施する",
        d(2023, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    ("令和６年度（2024年度）を目途に実現を図る", d(2025, 3, 31), P.FISCAL_YEAR, B.AROUND, None),
    (
        "令和５年（2023年）を目途に中小企業における電子受発注シ",
        d(2023, 12, 31),
        P.CALENDAR_YEAR,
        B.AROUND,
        None,
    ),
    (
        "令和７年（2025年）以降順次、社会実装を目指す",
        d(2025, 12, 31),
        P.CALENDAR_YEAR,
        B.START,
        None,
    ),
    (
        "令和元年度（2019年度）まで端末機器及び周辺サーバの更改",
        d(2020, 3, 31),
        P.FISCAL_YEAR,
        B.BY,
        None,
    ),
    (
        "令和４年末を目途に主な経済界要望等については見直し方針を決",
        d(2022, 12, 31),
        P.CALENDAR_YEAR,
        B.AROUND,
        None,
    ),
    ("2025年度末】全国97%", d(2026, 3, 31), P.FISCAL_YEAR, B.BY, None),
    ("2021年末に設定した当面の目標", d(2021, 12, 31), P.CALENDAR_YEAR, B.BY, None),
    ("令和３年11月９日内閣総理大臣決裁", d(2021, 11, 9), P.DAY, B.BY, None),
    ("令和２年９月内閣官房情報通信技術（ＩＴ）総合戦略室", d(2020, 9, 30), P.MONTH, B.BY, None),
    ("令和３年１月26日中央教育審議会答申", d(2021, 1, 26), P.DAY, B.BY, None),
    ("令和４年度（2022年度）中に速やかに変更する", d(2023, 3, 31), P.FISCAL_YEAR, B.BY, None),
    (
        "令和５年度（2023年度）以降順次ガバメントクラウドへの移",
        d(2024, 3, 31),
        P.FISCAL_YEAR,
        B.START,
        None,
    ),
]

# Phrases that name no date, verbatim from the plan where possible, with the reason expected.
UNDATED_PHRASES: list[tuple[str, NoDateReason]] = [
    ("国民が体感できる形で早期にその実現を図る", NoDateReason.ASAP),
    ("通知・通達等については、早期に見直しが可能なものは", NoDateReason.ASAP),
    ("可能な限り早く", NoDateReason.ASAP),
    ("可能な限り速やかに国会提出を目指す", NoDateReason.PROMPTLY),
    ("技術カタログの試行版を速やかに示す", NoDateReason.PROMPTLY),
    ("行政手続等に順次展開する", NoDateReason.PROGRESSIVE),
    ("対象手続を順次拡大する", NoDateReason.PROGRESSIVE),
    ("引き続き総合的に検討していく", NoDateReason.ONGOING),
    ("フィードバックを随時受け入れながら", NoDateReason.ONGOING),
    ("継続的に確認する", NoDateReason.ONGOING),
    ("今後、デジタル庁の更なる体制強化を", NoDateReason.FUTURE),
    ("中長期的な方向性について達成すべき目標", NoDateReason.FUTURE),
    ("同年12月末を目途に", NoDateReason.RELATIVE),
    ("年内を目途に国においてま", NoDateReason.RELATIVE),
    ("来年以降、見直しに向", NoDateReason.RELATIVE),
    ("今年度中に検討し目指すべき", NoDateReason.RELATIVE),
    ("来年度から", NoDateReason.RELATIVE),
    ("９月末までに", NoDateReason.RELATIVE),
    ("デジタル分野への就労支援を今後３年間集中的に推進する", NoDateReason.RELATIVE),
    # Relative to another plan's date (line 1763): left out of the catalogue, never dated.
    ("プラン策定の３年後を目途に効果を検証し", NoDateReason.RELATIVE),
    # 今夏 needs a reference fiscal year (see test_relative_with_reference_fiscal_year).
    ("今夏までに地方公共団体を対象とする「夏のDigi田甲子園」を開催し", NoDateReason.RELATIVE),
    # 分: the tax year the certificates are for (the income of 2022), not a due date (line 1273).
    ("令和４年（2022年）分の社会保険料控除証明書", NoDateReason.NOT_A_DEADLINE),
    (
        "具体的には、令和４年（2022年）分の社会保険料控除証明書（国民年金保険料負担額）及び"
        "公的年金等の源泉徴収票をマイナポータルから連携できるようにする。",
        NoDateReason.NOT_A_DEADLINE,
    ),
    ("令和３年法律第35号", NoDateReason.UNRECOGNISED),
    ("2020年代を通じて実現すべき", NoDateReason.UNRECOGNISED),
    ("2022年冬", NoDateReason.UNRECOGNISED),
    ("デジタル社会の実現", NoDateReason.UNRECOGNISED),
]

REIWA, HEISEI = 2018, 1988
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


@pytest.mark.parametrize(("text", "deadline", "precision", "bound", "range_start"), PLAN_PHRASES)
def test_plan_phrase_table(
    text: str, deadline: date, precision: Precision, bound: Bound, range_start: date | None
) -> None:
    """Each real deadline phrase from the plan parses to the date a human reader assigns."""
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase), result
    assert (result.deadline, result.precision, result.bound, result.range_start) == (
        deadline,
        precision,
        bound,
        range_start,
    )
    assert result.period_start <= result.deadline


def test_plan_table_is_large_enough() -> None:
    """The table of real plan phrases has at least 40 rows."""
    assert len(PLAN_PHRASES) >= 40


@pytest.mark.parametrize(("text", "reason"), UNDATED_PHRASES)
def test_undated_phrases(text: str, reason: NoDateReason) -> None:
    """Phrases without an absolute date come back undated with the right reason, never a guess."""
    result = parse_deadline(text)
    assert isinstance(result, UndatedPhrase), result
    assert result.reason is reason
    assert result.detail
    assert result.text == text


def test_undated_phrases_yield_no_expressions() -> None:
    """find_date_expressions finds nothing in phrases that name no absolute date."""
    for text, _ in UNDATED_PHRASES:
        assert find_date_expressions(text) == [], text


@pytest.mark.parametrize(
    ("text", "deadline", "precision"),
    [
        ("今年度中に", d(2023, 3, 31), P.FISCAL_YEAR),
        ("来年度末までに", d(2024, 3, 31), P.FISCAL_YEAR),
        ("年内を目途に", d(2022, 12, 31), P.CALENDAR_YEAR),
        ("２月末までに", d(2023, 2, 28), P.MONTH),
        ("今年度上半期", d(2022, 9, 30), P.FISCAL_HALF),
    ],
)
def test_relative_with_reference_fiscal_year(
    text: str, deadline: date, precision: Precision
) -> None:
    """Relative words are dated against the reference fiscal year when one is passed in."""
    result = parse_deadline(text, reference_fiscal_year=2022)
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.precision) == (deadline, precision)


# Verbatim plan phrases that need the plan's reference fiscal year (2022) to be dated.
REFERENCE_PLAN_PHRASES: list[tuple[str, date, date, Precision, Bound]] = [
    (
        "今夏までに地方公共団体を対象とする「夏のDigi田甲子園」を開催し",
        d(2022, 8, 31),
        d(2022, 6, 1),
        P.SEASON,
        B.BY,
    ),
    ("今夏までに", d(2022, 8, 31), d(2022, 6, 1), P.SEASON, B.BY),
    (
        "年内を目途に国においてまち・ひと・しごと",
        d(2022, 12, 31),
        d(2022, 1, 1),
        P.CALENDAR_YEAR,
        B.AROUND,
    ),
]


@pytest.mark.parametrize(
    ("text", "deadline", "period_start", "precision", "bound"), REFERENCE_PLAN_PHRASES
)
def test_reference_plan_phrases(
    text: str, deadline: date, period_start: date, precision: Precision, bound: Bound
) -> None:
    """Relative plan phrases (今夏, 年内) are dated in the reference year, bound as worded."""
    result = parse_deadline(text, reference_fiscal_year=2022)
    assert isinstance(result, DatedPhrase), result
    assert (result.deadline, result.period_start, result.precision, result.bound) == (
        deadline,
        period_start,
        precision,
        bound,
    )


@pytest.mark.parametrize(
    ("text", "deadline", "bound"),
    [
        ("今夏を目途に", d(2022, 8, 31), B.AROUND),
        ("今秋から", d(2022, 11, 30), B.START),
        ("来夏までに", d(2023, 8, 31), B.BY),
        ("来春", d(2023, 5, 31), B.BY),
        ("昨夏", d(2021, 8, 31), B.BY),
    ],
)
def test_relative_seasons(text: str, deadline: date, bound: Bound) -> None:
    """今/来/昨 + season is that season of the reference calendar year, plus or minus one."""
    result = parse_deadline(text, reference_fiscal_year=2022)
    assert isinstance(result, DatedPhrase), result
    assert (result.deadline, result.precision, result.bound) == (deadline, P.SEASON, bound)


def test_relative_winter_is_unsupported() -> None:
    """今冬 straddles two calendar years, so even with a reference year it stays undated."""
    result = parse_deadline("今冬までに", reference_fiscal_year=2022)
    assert isinstance(result, UndatedPhrase)
    assert result.reason is NoDateReason.UNRECOGNISED


def test_same_year_stays_relative_even_with_reference() -> None:
    """同年 points at a year named elsewhere, so a reference fiscal year does not date it."""
    result = parse_deadline("同年12月末を目途に", reference_fiscal_year=2022)
    assert isinstance(result, UndatedPhrase)
    assert result.reason is NoDateReason.RELATIVE


@pytest.mark.parametrize(
    ("text", "deadline", "precision", "range_start"),
    [
        ("令和４年度から令和６年度まで", d(2025, 3, 31), P.FISCAL_YEAR, d(2022, 4, 1)),
        ("2022～2025年度", d(2026, 3, 31), P.FISCAL_YEAR, d(2022, 4, 1)),
        ("令和４～６年度", d(2025, 3, 31), P.FISCAL_YEAR, d(2022, 4, 1)),
        ("令和４年度～６年度にかけて", d(2025, 3, 31), P.FISCAL_YEAR, d(2022, 4, 1)),
        ("2022年から2025年まで", d(2025, 12, 31), P.CALENDAR_YEAR, d(2022, 1, 1)),
    ],
)
def test_ranges_return_end_and_record_start(
    text: str, deadline: date, precision: Precision, range_start: date
) -> None:
    """A range yields the end of its last period, with the start of its first recorded."""
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.precision, result.bound) == (deadline, precision, B.BY)
    assert result.range_start == range_start


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("令和５年度末までに", B.BY),
        ("令和７年度中", B.BY),
        ("令和５年度内", B.BY),
        ("令和５年度から運用", B.START),
        ("2023年度以降", B.START),
        ("早ければ令和５年度中", B.EARLIEST),
        ("遅くとも令和７年度末", B.LATEST),
        ("令和５年度めどに", B.AROUND),
        ("令和５年度目処に", B.AROUND),
        ("令和５年度を目途に", B.AROUND),
    ],
)
def test_bounds(text: str, bound: Bound) -> None:
    """The words around a date decide its bound."""
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert result.bound is bound


@pytest.mark.parametrize(
    ("text", "deadline", "period_start", "precision"),
    [
        ("令和５年度末", d(2024, 3, 31), d(2023, 4, 1), P.FISCAL_YEAR),
        ("令和６年度上半期", d(2024, 9, 30), d(2024, 4, 1), P.FISCAL_HALF),
        ("令和６年度下半期", d(2025, 3, 31), d(2024, 10, 1), P.FISCAL_HALF),
        ("令和５年度第１四半期", d(2023, 6, 30), d(2023, 4, 1), P.FISCAL_QUARTER),
        ("令和５年度第４四半期", d(2024, 3, 31), d(2024, 1, 1), P.FISCAL_QUARTER),
        ("令和５年度２月末", d(2024, 2, 29), d(2024, 2, 1), P.MONTH),
        ("2022年９月", d(2022, 9, 30), d(2022, 9, 1), P.MONTH),
        ("2022年９月１日", d(2022, 9, 1), d(2022, 9, 1), P.DAY),
        ("2022年内", d(2022, 12, 31), d(2022, 1, 1), P.CALENDAR_YEAR),
        ("2022年中", d(2022, 12, 31), d(2022, 1, 1), P.CALENDAR_YEAR),
        ("2030年", d(2030, 12, 31), d(2030, 1, 1), P.CALENDAR_YEAR),
        ("令和元年度", d(2020, 3, 31), d(2019, 4, 1), P.FISCAL_YEAR),
        ("平成元年", d(1989, 12, 31), d(1989, 1, 1), P.CALENDAR_YEAR),
    ],
)
def test_periods(text: str, deadline: date, period_start: date, precision: Precision) -> None:
    """Fiscal and calendar periods have the right start, end and precision."""
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.period_start, result.precision) == (
        deadline,
        period_start,
        precision,
    )


@pytest.mark.parametrize(
    ("text", "deadline", "period_start", "precision", "bound"),
    [
        # 早期: first fiscal half; a hedge (AROUND) unless a start or deadline marker follows.
        ("令和４年度早期に", d(2022, 9, 30), d(2022, 4, 1), P.FISCAL_HALF, B.AROUND),
        ("令和４年度の早期から", d(2022, 9, 30), d(2022, 4, 1), P.FISCAL_HALF, B.START),
        ("令和５年度早期までに", d(2023, 9, 30), d(2023, 4, 1), P.FISCAL_HALF, B.BY),
        ("今年度早期に", d(2022, 9, 30), d(2022, 4, 1), P.FISCAL_HALF, B.AROUND),
        # 以降(の)早期: the year is the earliest start.
        ("令和５年度以後早期に", d(2024, 3, 31), d(2023, 4, 1), P.FISCAL_YEAR, B.EARLIEST),
        # 末 as a start point: the closing month; as a deadline: the whole year.
        ("令和４年度末から", d(2023, 3, 31), d(2023, 3, 1), P.MONTH, B.START),
        ("2025年度末以降", d(2026, 3, 31), d(2026, 3, 1), P.MONTH, B.START),
        ("令和４年末から", d(2022, 12, 31), d(2022, 12, 1), P.MONTH, B.START),
        ("令和４年の年末から", d(2022, 12, 31), d(2022, 12, 1), P.MONTH, B.START),
        ("今年度末から", d(2023, 3, 31), d(2023, 3, 1), P.MONTH, B.START),
        ("早ければ令和５年度末から", d(2024, 3, 31), d(2024, 3, 1), P.MONTH, B.EARLIEST),
        ("令和４年度末までに", d(2023, 3, 31), d(2022, 4, 1), P.FISCAL_YEAR, B.BY),
        ("令和４年度末を目途に", d(2023, 3, 31), d(2022, 4, 1), P.FISCAL_YEAR, B.AROUND),
        ("令和４年度末", d(2023, 3, 31), d(2022, 4, 1), P.FISCAL_YEAR, B.BY),
        ("令和４年度中から", d(2023, 3, 31), d(2022, 4, 1), P.FISCAL_YEAR, B.START),
        # The ordinary Diet session closes in June.
        ("2023年通常国会", d(2023, 6, 30), d(2023, 6, 1), P.MONTH, B.BY),
        ("令和６年の常会までに", d(2024, 6, 30), d(2024, 6, 1), P.MONTH, B.BY),
        ("来年の通常国会", d(2023, 6, 30), d(2023, 6, 1), P.MONTH, B.BY),
    ],
)
def test_vague_periods(
    text: str, deadline: date, period_start: date, precision: Precision, bound: Bound
) -> None:
    """早期, 以降早期, 年度末から and 通常国会 get the documented honest readings."""
    result = parse_deadline(text, reference_fiscal_year=2022)
    assert isinstance(result, DatedPhrase), result
    assert (result.deadline, result.period_start, result.precision, result.bound) == (
        deadline,
        period_start,
        precision,
        bound,
    )


@pytest.mark.parametrize(
    "text",
    ["令和５年早期に", "2023年の早期", "令和５年度の通常国会に提出", "令和５年度常会"],
)
def test_vague_periods_without_honest_reading(text: str) -> None:
    """早期 of a calendar year and the Diet session of a fiscal year are undated, not guessed."""
    result = parse_deadline(text)
    assert isinstance(result, UndatedPhrase), result
    assert result.reason is NoDateReason.UNRECOGNISED
    assert "unsupported" in result.detail


def test_year_end_start_range_starts_in_closing_month() -> None:
    """A range opened by 年度末から starts in the fiscal year's last month."""
    result = parse_deadline("令和４年度末から令和６年度末まで")
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.precision, result.range_start) == (
        d(2025, 3, 31),
        P.FISCAL_YEAR,
        d(2023, 3, 1),
    )


@pytest.mark.parametrize(
    ("text", "deadline", "bound"),
    [
        # 分 names what the certificate is for; the other date still governs.
        (
            "令和４年（2022年）分の控除証明書を令和５年（2023年）１月から連携",
            d(2023, 1, 31),
            B.START,
        ),
        ("令和４年分の源泉徴収票について、令和４年度中に", d(2023, 3, 31), B.BY),
        # 分 opening a word (分野, 分析) is not the 分 of a period.
        ("令和４年度分野別の計画", d(2023, 3, 31), B.BY),
        ("2022年分析結果を公表", d(2022, 12, 31), B.BY),
    ],
)
def test_for_period_never_governs(text: str, deadline: date, bound: Bound) -> None:
    """A date followed by 分 (the period something is for) is never taken as the deadline."""
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase), result
    assert (result.deadline, result.bound) == (deadline, bound)


def test_for_period_is_not_a_date_expression() -> None:
    """find_date_expressions skips 令和４年分 and 9月分 but finds the real date beside them."""
    text = "令和４年（2022年）分及び令和５年９月分の証明書を、令和５年度（2023年度）中に連携する"
    found = find_date_expressions(text)
    assert [text[s:e] for s, e, _ in found] == ["令和５年度（2023年度）中"]
    result = parse_deadline("９月分", reference_fiscal_year=2022)
    assert isinstance(result, UndatedPhrase)
    assert result.reason is NoDateReason.NOT_A_DEADLINE


def test_western_year_wins_over_disagreeing_era() -> None:
    """When the era year and the Western year in parentheses disagree, the Western year is used."""
    result = parse_deadline("令和５年度（2024年度）末までに")
    assert isinstance(result, DatedPhrase)
    assert result.deadline == d(2025, 3, 31)


def test_full_and_half_width_digits_agree() -> None:
    """Full-width and half-width digits give identical dates."""
    full = parse_deadline("令和５年（２０２３年）１０月末までに")
    half = parse_deadline("令和5年(2023年)10月末までに")
    assert isinstance(full, DatedPhrase)
    assert isinstance(half, DatedPhrase)
    assert (full.deadline, full.precision, full.bound) == (d(2023, 10, 31), P.MONTH, B.BY)
    assert (half.deadline, half.precision, half.bound) == (
        full.deadline,
        full.precision,
        full.bound,
    )


def test_normalise_digits() -> None:
    """normalise_digits maps full-width digits, letters and percent to ASCII and keeps the rest."""
    assert normalise_digits("令和５年度ＩＴ９９．９％ａ") == "令和5年度IT99．9%a"
    assert len(normalise_digits("０１２ＡＢ％")) == len("０１２ＡＢ％")


def test_governing_expression_prefers_deadline_markers() -> None:
    """With several dates, the one carrying a deadline marker governs over a bare mention."""
    text = "令和５年度（2023年度）からの本格移行に向け、令和４年度（2022年度）中に準備する"
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.bound) == (d(2023, 3, 31), B.BY)


def test_find_date_expressions_on_plan_sentence() -> None:
    """All dates of a real plan sentence are found in order, statute numbers excluded."""
    text = (
        "令和４年度（2022年度）中に、オンライン診療を含めた遠隔医療の推進に向けた基本方針を策定し、"
        "平成12年法律第144号に基づき、令和５年度（2023年度）以降は順次拡大する。"
    )
    found = find_date_expressions(text)
    assert [(p.deadline, p.bound) for _, _, p in found] == [
        (d(2023, 3, 31), B.BY),
        (d(2024, 3, 31), B.START),
    ]
    assert [text[s:e] for s, e, _ in found] == [
        "令和４年度（2022年度）中",
        "令和５年度（2023年度）以降",
    ]


def test_fiscal_year_arithmetic_examples() -> None:
    """Fiscal year N runs from N-04-01 to (N+1)-03-31."""
    assert fiscal_year_start(2023) == d(2023, 4, 1)
    assert fiscal_year_end(2023) == d(2024, 3, 31)
    assert fiscal_year_of(d(2024, 3, 31)) == 2023
    assert fiscal_year_of(d(2024, 4, 1)) == 2024


def test_cli_dated(capsys: pytest.CaptureFixture[str]) -> None:
    """`shinchoku dates parse` prints date, precision and bound and exits 0."""
    assert cli_main(["dates", "parse", "令和５年度末"]) == 0
    assert capsys.readouterr().out == "2024-03-31\tfiscal_year\tby\n"


def test_cli_relative_season_with_reference(capsys: pytest.CaptureFixture[str]) -> None:
    """`shinchoku dates parse --reference-fy 2022 今夏までに` prints the summer of 2022."""
    assert cli_main(["dates", "parse", "--reference-fy", "2022", "今夏までに"]) == 0
    assert capsys.readouterr().out == "2022-08-31\tseason\tby\n"


def test_cli_not_a_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    """A tax-year phrase is reported as not a deadline, exit 1."""
    assert cli_main(["dates", "parse", "令和４年（2022年）分"]) == 1
    assert capsys.readouterr().out.startswith("not_a_deadline\t")


def test_cli_undated(capsys: pytest.CaptureFixture[str]) -> None:
    """`shinchoku dates parse` prints the reason for an undated phrase and exits 1."""
    assert cli_main(["dates", "parse", "速やかに"]) == 1
    assert capsys.readouterr().out.startswith("promptly\t")


# --- properties ----------------------------------------------------------------------------------

eras = st.sampled_from([("令和", REIWA, 30), ("平成", HEISEI, 31)])
widths = st.booleans()


def _num(n: int, full: bool) -> str:
    return str(n).translate(FULLWIDTH) if full else str(n)


def _era_year(era: str, n: int, full: bool) -> str:
    return f"{era}{'元' if n == 1 else _num(n, full)}"


@st.composite
def era_dates(draw: st.DrawFn) -> tuple[str, int, date, bool]:
    era, base, last = draw(eras)
    day = draw(st.dates(date(base + 1, 1, 1), date(base + last, 12, 31)))
    return era, base, day, draw(widths)


@given(era_dates())
def test_roundtrip_day(sample: tuple[str, int, date, bool]) -> None:
    """An era date written out as 年月日 parses back to the same day."""
    era, base, day, full = sample
    text = (
        f"{_era_year(era, day.year - base, full)}年{_num(day.month, full)}月{_num(day.day, full)}日"
    )
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert (result.deadline, result.period_start, result.precision) == (day, day, P.DAY)


@given(era_dates(), st.sampled_from(["末までに", "末を目途に", "中", ""]))
def test_roundtrip_month(sample: tuple[str, int, date, bool], marker: str) -> None:
    """An era year and month parse back to that month, with or without the Western year."""
    era, base, day, full = sample
    year = _era_year(era, day.year - base, full)
    expected_bound = B.AROUND if "目途" in marker else B.BY
    for prefix in (f"{year}年", f"{year}年（{_num(day.year, full)}年）"):
        result = parse_deadline(f"{prefix}{_num(day.month, full)}月{marker}")
        assert isinstance(result, DatedPhrase)
        assert result.period_start == day.replace(day=1)
        assert result.deadline == _month_end(day.year, day.month)
        assert (result.precision, result.bound) == (P.MONTH, expected_bound)


@given(era_dates())
def test_roundtrip_fiscal_month(sample: tuple[str, int, date, bool]) -> None:
    """A month named inside an era fiscal year lands in the right calendar year."""
    era, base, day, full = sample
    fy = fiscal_year_of(day)
    # January-March of an era's first year belong to a fiscal year of the previous era.
    assume(fy - base >= 1)
    text = f"{_era_year(era, fy - base, full)}年度{_num(day.month, full)}月末"
    result = parse_deadline(text)
    assert isinstance(result, DatedPhrase)
    assert result.deadline == _month_end(day.year, day.month)


@given(era_dates(), st.sampled_from(["末までに", "中", "内", "までに", ""]))
def test_roundtrip_fiscal_year(sample: tuple[str, int, date, bool], marker: str) -> None:
    """An era fiscal year parses to the fiscal year containing the generated date."""
    era, base, day, full = sample
    fy = fiscal_year_of(day)
    assume(fy - base >= 1)  # see test_roundtrip_fiscal_month
    result = parse_deadline(f"{_era_year(era, fy - base, full)}年度{marker}")
    assert isinstance(result, DatedPhrase)
    assert result.period_start <= day <= result.deadline
    assert result.deadline == date(fy + 1, 3, 31)
    assert result.precision is P.FISCAL_YEAR


@given(era_dates(), st.sampled_from(["から", "以降", "～", "より"]))
def test_fiscal_year_end_as_start_is_march(
    sample: tuple[str, int, date, bool], marker: str
) -> None:
    """年度末 followed by a start marker is March of the next calendar year, to the month."""
    era, base, day, full = sample
    fy = fiscal_year_of(day)
    assume(fy - base >= 1)  # see test_roundtrip_fiscal_month
    result = parse_deadline(f"{_era_year(era, fy - base, full)}年度末{marker}")
    assert isinstance(result, DatedPhrase)
    assert (result.period_start, result.deadline) == (date(fy + 1, 3, 1), date(fy + 1, 3, 31))
    assert (result.precision, result.bound) == (P.MONTH, B.START)


@given(era_dates(), st.sampled_from(["の通常国会", "通常国会", "常会", "の常会"]))
def test_ordinary_diet_session_closes_in_june(
    sample: tuple[str, int, date, bool], session: str
) -> None:
    """The ordinary Diet session of calendar year N is dated to June of N, with or without 西暦."""
    era, base, day, full = sample
    year = _era_year(era, day.year - base, full)
    for prefix in (
        f"{year}年",
        f"{year}年（{_num(day.year, full)}年）",
        f"{_num(day.year, full)}年",
    ):
        result = parse_deadline(f"{prefix}{session}に法案を提出")
        assert isinstance(result, DatedPhrase)
        assert (result.period_start, result.deadline) == (
            date(day.year, 6, 1),
            date(day.year, 6, 30),
        )
        assert (result.precision, result.bound) == (P.MONTH, B.BY)


@given(st.integers(min_value=1900, max_value=2200))
def test_fiscal_year_end_is_march_31_next_year(fy: int) -> None:
    """Fiscal year N always ends on 31 March of N+1 and starts on 1 April of N."""
    assert fiscal_year_end(fy) == date(fy + 1, 3, 31)
    assert fiscal_year_start(fy) == date(fy, 4, 1)
    assert fiscal_year_of(fiscal_year_end(fy)) == fy
    assert fiscal_year_of(fiscal_year_start(fy)) == fy
    assert fiscal_year_end(fy) + timedelta(days=1) == fiscal_year_start(fy + 1)


@given(st.dates())
def test_fiscal_year_of_contains_date(day: date) -> None:
    """Every date lies within the fiscal year fiscal_year_of assigns to it."""
    fy = fiscal_year_of(day)
    assume(1 <= fy < 9999)  # date cannot represent the ends of its own range
    assert fiscal_year_start(fy) <= day <= fiscal_year_end(fy)


@st.composite
def dated_phrase(draw: st.DrawFn) -> tuple[str, date]:
    """A random absolute date phrase and the deadline it means."""
    era, base, day, full = draw(era_dates())
    fy = max(fiscal_year_of(day), base + 1)
    kind = draw(st.sampled_from(["day", "month", "fy", "west_fy", "cal"]))
    year = _era_year(era, day.year - base, full)
    if kind == "day":
        return f"{year}年{_num(day.month, full)}月{_num(day.day, full)}日", day
    if kind == "month":
        return f"{year}年（{_num(day.year, full)}年）{_num(day.month, full)}月末までに", _month_end(
            day.year, day.month
        )
    if kind == "fy":
        return f"{_era_year(era, fy - base, full)}年度中", date(fy + 1, 3, 31)
    if kind == "west_fy":
        return f"{_num(fy, full)}年度から", date(fy + 1, 3, 31)
    return f"{year}年を目途に", date(day.year, 12, 31)


fillers = st.sampled_from(
    ["、システムを整備する。", "。", "、関係府省庁と連携し、", "、「令和の日本型」を"]
)


@given(st.lists(st.tuples(dated_phrase(), fillers), min_size=1, max_size=5))
def test_find_date_expressions_spans_round_trip(parts: list[tuple[tuple[str, date], str]]) -> None:
    """Each span slices back to text parsing to the same phrase; one span per inserted date."""
    text = "".join(phrase + filler for (phrase, _), filler in parts)
    found = find_date_expressions(text)
    assert [p.deadline for _, _, p in found] == [deadline for (_, deadline), _ in parts]
    for start, end, phrase in found:
        assert text[start:end] == phrase.text
        assert parse_deadline(text[start:end]) == phrase


@pytest.mark.parametrize("row", PLAN_PHRASES, ids=lambda r: r[0][:12])
def test_find_date_expressions_spans_on_plan_phrases(
    row: tuple[str, date, Precision, Bound, date | None],
) -> None:
    """On real plan phrases, every span re-parses to the phrase it was found as."""
    text = row[0]
    found = find_date_expressions(text)
    assert found
    for start, end, phrase in found:
        assert parse_deadline(text[start:end]) == phrase


@given(st.lists(st.tuples(dated_phrase(), fillers), min_size=1, max_size=4), st.integers(0, 3))
def test_for_period_dates_are_skipped(
    parts: list[tuple[tuple[str, date], str]], where: int
) -> None:
    """Inserting "<year>分の" anywhere adds no date expression and changes none of the others."""
    texts = [phrase + filler for (phrase, _), filler in parts]
    texts.insert(min(where, len(texts)), "令和４年（2022年）分の証明書について")
    found = find_date_expressions("".join(texts))
    assert [p.deadline for _, _, p in found] == [deadline for (_, deadline), _ in parts]


# --- kanji numerals and bare 年度内 / 年度末 (issue 14) -----------------------------------------
# The 2022 plan writes its dates in Arabic numerals; these are its own phrases (lines 358, 1590,
# 325, 1229, 1411) written the way other government texts spell them, in kanji.

KANJI_PHRASES: list[tuple[str, str]] = [
    # (kanji spelling, the plan's own spelling)
    ("令和五年度（二〇二三年度）末までに95％にする", "令和５年度（2023年度）末までに95％にする"),
    ("令和四年度（二〇二二年度）内に詳細設計を行う", "令和４年度（2022年度）内に詳細設計を行う"),
    ("令和四年（二〇二二年）九月末を目途に", "令和４年（2022年）９月末を目途に"),
    ("令和四年度（二〇二二年度）八月末を目途に", "令和４年度（2022年度）８月末を目途に"),
    ("令和五年（二〇二三年）一月に警察共通基盤上で", "令和５年（2023年）１月に警察共通基盤上で"),
    ("令和四年十二月末までに調査会が作成・公表し", "令和４年12月末までに調査会が作成・公表し"),
    ("二〇二五年度末", "2025年度末"),
    ("令和五年度末", "令和５年度末"),
]


@pytest.mark.parametrize(("kanji", "arabic"), KANJI_PHRASES)
def test_kanji_numerals_read_like_arabic_ones(kanji: str, arabic: str) -> None:
    """A phrase spelled in kanji numerals gives the date its Arabic spelling gives, and the
    matched text is the kanji phrase itself (spans index the original)."""
    got, want = parse_deadline(kanji), parse_deadline(arabic)
    assert isinstance(got, DatedPhrase), got
    assert isinstance(want, DatedPhrase), want
    assert (got.deadline, got.period_start, got.precision, got.bound) == (
        want.deadline,
        want.period_start,
        want.precision,
        want.bound,
    )
    assert got.text in kanji
    ((start, end, phrase),) = find_date_expressions(kanji)
    assert kanji[start:end] == phrase.text


@pytest.mark.parametrize(
    ("text", "deadline", "precision"),
    [
        ("令和二十五年", d(2043, 12, 31), P.CALENDAR_YEAR),  # tens: 二十五
        ("令和十二年度末までに", d(2031, 3, 31), P.FISCAL_YEAR),  # 十二
        ("令和七年三月三十一日までに", d(2025, 3, 31), P.DAY),  # 三十一日
        ("令和五年度第一四半期", d(2023, 6, 30), P.FISCAL_QUARTER),
    ],
)
def test_kanji_tens_days_and_quarters(text: str, deadline: date, precision: Precision) -> None:
    parsed = parse_deadline(text)
    assert isinstance(parsed, DatedPhrase), parsed
    assert (parsed.deadline, parsed.precision) == (deadline, precision)


def test_kanji_numerals_that_are_words_are_left_alone() -> None:
    """一, 四... are words too (一体化, 統一, 四半期): only a count of a year, month or day (or
    of a quarter after 第) is a numeral; the normalised text keeps its length."""
    text = "マイナンバーカードとの一体化を統一的に進め、四半期ごとに第一四半期の"
    normalised = normalise_digits(text)
    assert len(normalised) == len(text)
    assert "一体化" in normalised
    assert "統一" in normalised
    assert "四半期ごと" in normalised
    assert "第1四半期" in normalised
    assert normalise_digits("令和五年度（二〇二三年度）") == "令和5年度（2023年度）"
    assert normalise_digits("二十五年") == "025年"  # padded to its own length
    # A lone 十 would need two digits for one character: not read (no date, not a wrong one).
    assert isinstance(parse_deadline("十月末までに"), UndatedPhrase)


@pytest.mark.parametrize(
    ("text", "deadline", "bound"),
    [
        # bare 年度内 / 年度中 / 年度末: the reference fiscal year (2022 for the 2022 plan),
        # in the plan's wording (lines 358, 605, 1229) with the year left implicit
        ("年度内に詳細設計を行う", d(2023, 3, 31), B.BY),
        ("年度中にe-Govに統合し、検索性の向上を目指す", d(2023, 3, 31), B.BY),
        ("年度末を目途に、各府省庁は", d(2023, 3, 31), B.AROUND),
        ("年度末までに更改する", d(2023, 3, 31), B.BY),
    ],
)
def test_bare_fiscal_year_words_are_the_reference_year(
    text: str, deadline: date, bound: Bound
) -> None:
    parsed = parse_deadline(text, reference_fiscal_year=2022)
    assert isinstance(parsed, DatedPhrase), parsed
    assert (parsed.deadline, parsed.precision, parsed.bound) == (deadline, P.FISCAL_YEAR, bound)
    without = parse_deadline(text)
    assert isinstance(without, UndatedPhrase)
    assert without.reason is NoDateReason.RELATIVE


@pytest.mark.parametrize("text", ["各年度末に公表する", "毎年度末に", "当該年度内に", "単年度中に"])
def test_fiscal_year_words_meaning_another_year_stay_undated(text: str) -> None:
    """各年度末 (every year-end), 当該年度内 (within the year concerned): not the reference year."""
    assert isinstance(parse_deadline(text, reference_fiscal_year=2022), UndatedPhrase)


def test_a_fiscal_year_word_after_a_year_is_that_year() -> None:
    """令和５年度末 and 今年度末 are read as before: the bare reading never takes them over."""
    stated = parse_deadline("令和５年度末までに", reference_fiscal_year=2022)
    this_year = parse_deadline("今年度末までに", reference_fiscal_year=2030)
    assert isinstance(stated, DatedPhrase)
    assert isinstance(this_year, DatedPhrase)
    assert stated.deadline == d(2024, 3, 31)
    assert this_year.deadline == d(2031, 3, 31)
