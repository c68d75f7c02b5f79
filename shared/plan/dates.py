"""Turn the Japanese deadline phrases of the Digital Society Priority Plan into dates.

The plan states its deadlines in prose ("令和５年度（2023年度）末までに", "令和４年（2022年）夏を
目途に", "2025年度末", "早期に"). This module is pure: no I/O, stdlib only.

Every dated result carries the *end* of the period meant (`deadline`), its start
(`period_start`), how coarse that period is (`precision`) and what kind of promise the phrase makes
about it (`bound`). Phrases that name no date are returned as `UndatedPhrase` with a typed reason;
the parser never guesses a date for them.

Readings chosen where the words are vaguer than a calendar (each has plan phrases in the tests):

- 今夏 / 来夏 / 昨夏 (and 春, 秋): a season of the calendar year the reference fiscal year starts
  in (plus or minus one), like 今年/来年; undated RELATIVE without a reference fiscal year.
  夏 is June-August (deadline 08-31), precision SEASON; 冬 is unsupported (it straddles two
  years).
- 令和４年度早期 ("early in FY2022"): the first half of that fiscal year, 1 April - 30 September,
  precision FISCAL_HALF. With a start marker (早期～, 早期から) the bound is START; with no
  marker it is AROUND, because 早期 is a hedge, not a cut-off. 早期 of a calendar year is
  unsupported (the parser has no calendar half).
- 令和４年度以降早期～ / 以降の早期 ("as early as possible from FY2022 on"): bound EARLIEST with
  that fiscal year's dates. 以降 makes the year a lower bound on the start and 早期 promises no
  year of its own, so it is not START (which would claim the start is due by the end of FY2022)
  and not undated (the year is stated). Compare 早ければ令和５年度から, also EARLIEST.
- 年度末 / 年末 as a start point (末から, 末以降, 末～): the closing month of that year, precision
  MONTH (令和４年度末から: 1-31 March 2023). As a deadline (末までに, 末を目途に, bare 末) the
  period stays the whole year, precision FISCAL_YEAR / CALENDAR_YEAR: the date is the year's end
  either way, and the deliverable may be finished at any time in that year.
- 令和５年の通常国会 / 令和６年常会: the ordinary Diet session is convened in January and sits 150
  days (Diet Act arts. 2 and 10), so it closes in (about) June: the phrase is dated to June of that
  year, precision MONTH, bound BY unless the words around it say otherwise. Of a fiscal year
  (令和５年度の通常国会) it is unsupported: which January is meant is unclear.
- 令和４年（2022年）分 / 令和４年度分 ("the 2022 share"): the date says which tax or accounting
  period a document or amount is *for* (the income of calendar 2022), not when anything is due.
  Such a date is never a deadline; when nothing else in the text gives one, the phrase is undated
  with reason NOT_A_DEADLINE.
- Kanji numerals (令和五年度末, 二〇二五年, 令和十二年, 三月三十一日) are read like Arabic
  ones where they count a year, month or day: directly before 年/月/日, or after an era name.
  Positional digits (二〇二五) and tens (二十五, 三十一) are both accepted; a lone 十 (十月) is
  not, because the normalised text keeps one character per character (spans index the
  original) and 10 needs two.
- Bare 年度内 / 年度中 / 年度末 (年度末を目途に, "by the end of the fiscal year") mean the reference
  fiscal year, like 今年度; preceded by 各, 毎, 当該, 単, 複数, 新 they mean another year and are
  left alone.
- Durations counted from another event (今後３年間, プラン策定の３年後を目途に) are undated
  RELATIVE: the event's date is not in the phrase.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "Bound",
    "DatedPhrase",
    "NoDateReason",
    "ParsedPhrase",
    "Precision",
    "UndatedPhrase",
    "find_date_expressions",
    "fiscal_year_end",
    "fiscal_year_of",
    "fiscal_year_start",
    "normalise_digits",
    "parse_deadline",
]


class Precision(StrEnum):
    DAY = "day"
    MONTH = "month"
    FISCAL_QUARTER = "fiscal_quarter"
    FISCAL_HALF = "fiscal_half"
    FISCAL_YEAR = "fiscal_year"
    CALENDAR_YEAR = "calendar_year"
    # Not in the original list: the plan promises ~20 deliverables "令和４年（2022年）夏を目途に",
    # and no other member describes a three-month calendar season honestly.
    SEASON = "season"


class Bound(StrEnum):
    BY = "by"
    START = "start"
    EARLIEST = "earliest"
    LATEST = "latest"
    AROUND = "around"


class NoDateReason(StrEnum):
    ASAP = "asap"
    PROGRESSIVE = "progressive"
    PROMPTLY = "promptly"
    FUTURE = "future"
    ONGOING = "ongoing"
    RELATIVE = "relative"
    # A date is named, but as what something is *for* (令和４年分: the 2022 tax year), not as a
    # due date.
    NOT_A_DEADLINE = "not_a_deadline"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True, slots=True)
class DatedPhrase:
    text: str  # the matched expression, including its bound markers (末までに, を目途に, から...)
    deadline: date  # end of the period meant
    period_start: date  # start of the period meant (e.g. the fiscal year's 1 April)
    precision: Precision
    bound: Bound
    range_start: date | None = None  # start of the first period of a range ("AからBまで")


@dataclass(frozen=True, slots=True)
class UndatedPhrase:
    text: str
    reason: NoDateReason
    detail: str  # human-readable English reason


ParsedPhrase = DatedPhrase | UndatedPhrase


# --- calendar arithmetic -------------------------------------------------------------------------


def fiscal_year_start(fy: int) -> date:
    """Japanese government fiscal year N starts on 1 April of N."""
    return date(fy, 4, 1)


def fiscal_year_end(fy: int) -> date:
    """...and ends on 31 March of N+1."""
    return date(fy + 1, 3, 31)


def fiscal_year_of(d: date) -> int:
    return d.year if d.month >= 4 else d.year - 1


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


# --- normalisation -------------------------------------------------------------------------------

# One character in, one character out, so spans found in the normalised text index the original.
_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９"
    "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ％",
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz%",
)


_KANJI_DIGITS = {
    "〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
# A run of kanji numerals that counts a year, month, day or quarter: right before 年/月/日
# (二〇二五年, 三月, 三十一日), right after an era name (令和五年度), or 第一四半期.
# Elsewhere 一, 四... are words (一体化, 四半期, 統一) and are left alone.
_KANJI_NUMBER = re.compile(
    r"(?<=令和|平成|昭和)[〇零一二三四五六七八九十]+|[〇零一二三四五六七八九十]+(?=年|月|日)"
    r"|(?<=第)[一二三四](?=四半期)"
)


def _kanji_value(run: str) -> int | None:
    """二〇二五 → 2025 (positional), 二十五 → 25, 十二 → 12; None when not a number."""
    if "十" not in run:
        return int("".join(str(_KANJI_DIGITS[c]) for c in run))
    tens, _, units = run.partition("十")
    if len(tens) > 1 or len(units) > 1 or "十" in units:
        return None
    return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[units] if units else 0)


def _kanji_to_digits(match: re.Match[str]) -> str:
    run = match.group(0)
    value = _kanji_value(run)
    if value is None or len(str(value)) > len(run):
        return run  # a lone 十 would need two characters for one: left as it is
    return str(value).zfill(len(run))


def normalise_digits(text: str) -> str:
    """Map full-width digits, Latin letters and ％ to ASCII, and kanji numerals counting a year,
    month or day to ASCII digits (zero-padded to their own length: 二十五年 → 025年); every other
    character is kept, so the result has the length of `text`."""
    return _KANJI_NUMBER.sub(_kanji_to_digits, text.translate(_FULLWIDTH))


# --- grammar -------------------------------------------------------------------------------------

_ERA_BASE = {"令和": 2018, "平成": 1988, "昭和": 1925}

# 末/中/内 closing a year or month, but not the first character of 内閣, 中央, 中小企業...
_END = r"(?:末|中(?![央核心国長小間継])|内(?![閣容訳部外]))"

# What may follow a year: a part of it (quarter, half, month, season) or 末/中/内.
_SUFFIX = (
    r"(?:"
    r"(?:の)?第(?P<quarter>[1-4])四半期"
    r"|(?:の)?(?P<half>上半期|下半期|上期|下期|前半|後半)"
    r"|(?P<month>0?[0-9]{1,2})月(?:(?P<day>0?[0-9]{1,2})日|(?P<jun>上旬|中旬|下旬)|" + _END + ")?"
    r"|(?:の)?(?P<season>春|夏|秋|冬)"
    r"|(?:の)?(?P<early>早期)"
    r"|(?:の)?(?P<diet>通常国会|常会)"
    r"|(?P<yend>の年末|" + _END + ")"
    r")?"
)

# The Western year in parentheses after an era year, possibly itself a range ("（2014～2018年度）").
_PAREN_WEST = (
    r"(?:\s?[（(](?:(?P<wstart>[0-9]{4})(?:年度|年)?[～〜~])?"
    r"(?P<wyear>[0-9]{4})(?P<wunit>年度|年)?[）)])?"
)


def _era_year(with_era: bool) -> str:
    # The unit is optional only so that a bare range start ("平成26～平成30年度") can be matched;
    # a unit-less point that does not open a range is discarded.
    era = r"(?P<era>令和|平成|昭和)" if with_era else ""
    # 0? admits a zero-padded kanji year (二十五年 → 025年).
    return era + r"(?P<eyear>0?[0-9]{1,2}|元)(?:(?P<eunit>年度|年)" + _PAREN_WEST + ")?"


_WESTERN = r"(?<![0-9.,])(?P<west>[0-9]{4})(?![0-9])(?P<westunit>年度|年(?!代))?"

_POINT = re.compile(r"(?:" + _era_year(True) + "|" + _WESTERN + ")" + _SUFFIX)
# Second half of "令和４～６年度": a year with no era, which inherits the era of the range start.
_ERALESS_POINT = re.compile(_era_year(False) + _SUFFIX)
_RELATIVE = re.compile(
    r"(?P<rel>今年度|本年度|(?<!将)来年度|翌年度|次年度|前年度|昨年度|同年度|今年|(?<!将)来年|翌年|昨年|前年|同年"
    r"|(?<![0-9年度])年内|(?<![0-9年度])年末(?!調整)"
    r"|(?<![0-9元今本来翌次前昨同各毎該単数新）)])年度(?=内|中(?![央核心国長小間継])|末))" + _SUFFIX
)
_BARE_MONTH = re.compile(
    r"(?<![0-9年度）)])(?P<month>0?[0-9]{1,2})月(?![0-9])"
    r"(?:(?P<day>0?[0-9]{1,2})日|(?P<jun>上旬|中旬|下旬)|" + _END + ")?"
)

_RANGE_SEP = re.compile(r"\s?(?:から|より|[～〜~])\s?")
# A year directly followed by these is a statute number or similar identifier, not a date.
_IDENTIFIER_AFTER = re.compile(r"(?:法律|政令|省令|条例|規則)第?[0-9]|法第")

# 今夏, 来春...: a season of a year relative to the reference year (offset by the first character).
_RELATIVE_SEASON = re.compile(r"(?P<rel>今|来|昨)(?P<season>春|夏|秋|冬)")
_SEASON_OFFSETS = {"今": 0, "来": 1, "昨": -1}

# 分 right after a date ("令和４年分の控除証明書"): the period something is for. Not the first
# character of a word (分析, 分野, 分散...).
_FOR_PERIOD_AFTER = re.compile(
    r"分(?![析野散類科担割離布解権化配岐別業量母子娩界室館校署院家冊光])"
)

_PREFIX = re.compile(r"(?P<p>早ければ|遅くとも)[、,\s]?$")
_TRAIL_AROUND = re.compile(r"頃|前後")
_TRAIL_START = re.compile(r"(?:以降)?(?:の)?(?:当初)?(?:から|より|以降|以後|[～〜~])")
# "令和４年度以降早期～", "令和７年度以降の早期導入": as early as possible from that year on.
_TRAIL_EARLIEST = re.compile(r"(?:以降|以後)(?:の)?早期(?:に|から|より|[～〜~])?")
_TRAIL_TARGET = re.compile(
    r"(?:まで(?:に|を)?)?(?:を)?(?:目途|めど|目処)(?:に|と(?:して)?)?|まで(?:に(?:は)?|の)?"
    r"|にかけて|以前|を目標に|を目指(?:す|して)"
)

# A duration counted from an unstated "now" ("今後３年間", "５年以内"): relative, not future.
_DURATION = re.compile(
    r"(?:今後|向こう)[0-9]+(?:年|か月|ヶ月|カ月)|[0-9]+(?:年|か月|ヶ月|カ月)(?:間)?(?:後|以内)"
)

# Relative year words: (offset from the reference year, is it a fiscal year?)
_RELATIVE_YEARS: dict[str, tuple[int, bool]] = {
    "今年度": (0, True),
    "本年度": (0, True),
    "来年度": (1, True),
    "翌年度": (1, True),
    "次年度": (1, True),
    "前年度": (-1, True),
    "昨年度": (-1, True),
    "年度": (0, True),  # bare 年度内 / 年度末: the reference fiscal year
    "今年": (0, False),
    "年内": (0, False),
    "年末": (0, False),
    "来年": (1, False),
    "翌年": (1, False),
    "昨年": (-1, False),
    "前年": (-1, False),
}

# Checked in this order, so the most specific urgency wins ("今後、速やかに" is PROMPTLY).
_UNDATED_KEYWORDS: tuple[tuple[re.Pattern[str], NoDateReason, str], ...] = (
    (
        re.compile(r"早期|可能な限り早|できる限り早|早急|直ちに"),
        NoDateReason.ASAP,
        "as early as possible; no date is given",
    ),
    (re.compile(r"速やか"), NoDateReason.PROMPTLY, "promptly; no date is given"),
    (
        re.compile(r"順次|段階的"),
        NoDateReason.PROGRESSIVE,
        "rolled out progressively; no completion date is given",
    ),
    (
        re.compile(r"引き続き|継続的|継続して|随時|不断"),
        NoDateReason.ONGOING,
        "continuing activity with no end date",
    ),
    (
        re.compile(r"今後|中長期的|将来的|将来"),
        NoDateReason.FUTURE,
        "at some unspecified time in the future",
    ),
)


@dataclass(frozen=True, slots=True)
class _Period:
    start: date
    end: date
    precision: Precision


@dataclass(frozen=True, slots=True)
class _Point:
    begin: int
    end: int  # end of the date itself, before any trailing marker
    period: _Period | None  # None: unit-less range start, resolved once the range end is known
    year: int
    fiscal: bool | None  # None when the unit is missing (bare range start)
    era: str | None
    inner_range_start: date | None  # from a Western range in parentheses


class _UnsupportedPeriodError(Exception):
    """A recognisable date whose sub-period has no honest representation (e.g. 冬, 上旬)."""


def _year_period(year: int, fiscal: bool) -> _Period:
    if fiscal:
        return _Period(fiscal_year_start(year), fiscal_year_end(year), Precision.FISCAL_YEAR)
    return _Period(date(year, 1, 1), date(year, 12, 31), Precision.CALENDAR_YEAR)


def _sub_period(m: re.Match[str], year: int, fiscal: bool) -> _Period:
    """The period named by a year plus its suffix (quarter, half, month, season, 末/中/内)."""
    g = m.groupdict()  # `_BARE_MONTH` has only the month groups, hence .get below
    quarter, half, month_s, day_s = g.get("quarter"), g.get("half"), g.get("month"), g.get("day")
    season, yend = g.get("season"), g.get("yend")
    early, diet = g.get("early"), g.get("diet")
    if quarter is not None:
        if not fiscal:
            raise _UnsupportedPeriodError("quarter of a calendar year")
        q = int(quarter)
        # Fiscal quarters: Q1 Apr-Jun, Q2 Jul-Sep, Q3 Oct-Dec, Q4 Jan-Mar of the next year.
        first_month = (4, 7, 10, 1)[q - 1]
        cal_year = year + 1 if q == 4 else year
        first = date(cal_year, first_month, 1)
        return _Period(first, _month_end(cal_year, first_month + 2), Precision.FISCAL_QUARTER)
    if half is not None:
        if not fiscal:
            raise _UnsupportedPeriodError("half of a calendar year")
        if half in ("上半期", "上期", "前半"):
            return _Period(date(year, 4, 1), date(year, 9, 30), Precision.FISCAL_HALF)
        return _Period(date(year, 10, 1), date(year + 1, 3, 31), Precision.FISCAL_HALF)
    if month_s is not None:
        month = int(month_s)
        if not 1 <= month <= 12:
            raise _UnsupportedPeriodError(f"month {month}")
        if g.get("jun") is not None:
            raise _UnsupportedPeriodError("ten-day period (旬) of a month")
        # In a fiscal year, January-March belong to the following calendar year.
        cal_year = year + 1 if fiscal and month < 4 else year
        if day_s is not None:
            try:
                day = date(cal_year, month, int(day_s))
            except ValueError as exc:
                raise _UnsupportedPeriodError(f"day {day_s} of month {month}") from exc
            return _Period(day, day, Precision.DAY)
        return _Period(date(cal_year, month, 1), _month_end(cal_year, month), Precision.MONTH)
    if season is not None:
        # Spring straddles two fiscal years and winter two calendar years: no single reading.
        if season == "冬" or (fiscal and season == "春"):
            raise _UnsupportedPeriodError(f"season {season}")
        first_month = {"春": 3, "夏": 6, "秋": 9}[season]
        return _Period(
            date(year, first_month, 1), _month_end(year, first_month + 2), Precision.SEASON
        )
    if early is not None:
        # 早期 ("early in the year"): the first half of the fiscal year.
        if not fiscal:
            raise _UnsupportedPeriodError("early part (早期) of a calendar year")
        return _Period(date(year, 4, 1), date(year, 9, 30), Precision.FISCAL_HALF)
    if diet is not None:
        # The ordinary session opens in January and sits 150 days: it closes in about June.
        if fiscal:
            raise _UnsupportedPeriodError("ordinary Diet session of a fiscal year")
        return _Period(date(year, 6, 1), date(year, 6, 30), Precision.MONTH)
    if fiscal and yend == "の年末":
        raise _UnsupportedPeriodError("calendar year-end of a fiscal year")
    # 末/中/内 or nothing: the whole year either way.
    return _year_period(year, fiscal)


def _closing_month(period: _Period) -> _Period:
    """The last month of a year-long period: where 年度末/年末 as a start point falls."""
    last = period.end
    return _Period(last.replace(day=1), last, Precision.MONTH)


def _year_end_as_point(norm: str, date_end: int, period: _Period) -> bool:
    """Is the date a whole year closed by 末 (令和４年度末, 2022年末, 年末)?"""
    return norm[date_end - 1] == "末" and period.precision in (
        Precision.FISCAL_YEAR,
        Precision.CALENDAR_YEAR,
    )


def _point_from_match(m: re.Match[str], text: str, era: str | None) -> _Point | None:
    """Build a point from a `_POINT`/`_ERALESS_POINT` match; None if it is not a date."""
    g = m.groupdict()
    wyear = g.get("wyear")
    unit: str | None
    if g.get("west") is not None:
        year, unit = int(g["west"]), g["westunit"]
    else:
        era = g.get("era") or era
        if era is None:
            return None
        n = 1 if g["eyear"] == "元" else int(g["eyear"])
        if n == 0:
            return None
        # When both are given the Western year is authoritative.
        year = int(wyear) if wyear is not None else _ERA_BASE[era] + n
        unit = g["eunit"]
    if unit is not None and _IDENTIFIER_AFTER.match(text, m.end()):
        return None
    if unit is None:
        if any(
            g[k] is not None
            for k in ("quarter", "half", "month", "season", "early", "diet", "yend")
        ):
            return None
        return _Point(m.start(), m.end(), None, year, None, era, None)
    fiscal = unit == "年度"
    period = _sub_period(m, year, fiscal)
    inner = None
    if g.get("wstart") is not None:
        inner = _year_period(int(g["wstart"]), fiscal).start
    return _Point(m.start(), m.end(), period, year, fiscal, era, inner)


@dataclass(frozen=True, slots=True)
class _Found:
    begin: int
    end: int
    phrase: DatedPhrase
    rank: int  # 0: explicit deadline marker, 1: start marker, 2: none (used to pick a governor)


@dataclass(frozen=True, slots=True)
class _Scan:
    dated: list[_Found]
    relative: list[tuple[str, str]]  # (matched text, why it cannot be dated)
    unsupported: list[tuple[str, str]]  # (matched text, what is unsupported)
    for_period: list[str]  # dates followed by 分 ("令和４年分"): what something is for


def _with_bound(
    text: str, norm: str, begin: int, date_end: int, period: _Period, range_start: date | None
) -> _Found:
    """Attach the bound from the words around the date and widen the span to include them."""
    bound = Bound.BY
    rank = 2
    end = date_end
    starts = False  # followed by a start marker (から, 以降, ～...)
    m_around = _TRAIL_AROUND.match(norm, end)
    if m_around:
        bound, rank, end = Bound.AROUND, 0, m_around.end()
    if (m_earliest := _TRAIL_EARLIEST.match(norm, end)) is not None:
        bound, rank, end, starts = Bound.EARLIEST, 1, m_earliest.end(), True
    elif (m_start := _TRAIL_START.match(norm, end)) is not None:
        bound, rank, end, starts = Bound.START, 1, m_start.end(), True
    elif (m_target := _TRAIL_TARGET.match(norm, end)) is not None:
        target = m_target.group(0)
        if any(w in target for w in ("目途", "めど", "目処")):
            bound = Bound.AROUND
        rank, end = 0, m_target.end()
    m_pre = _PREFIX.search(norm, max(0, begin - 6), begin)
    if m_pre:
        bound = Bound.EARLIEST if m_pre.group("p") == "早ければ" else Bound.LATEST
        rank, begin = 0, m_pre.start()
    if rank == 2 and norm[date_end - 1] in "末中内":
        rank = 0  # "令和４年度中に" is as much a deadline as "令和４年度までに"
    if rank == 2 and norm[date_end - 2 : date_end] == "早期":
        bound, rank = Bound.AROUND, 0  # "令和４年度早期に": early in the year, no cut-off
    if starts and _year_end_as_point(norm, date_end, period):
        period = _closing_month(period)  # "令和４年度末から": from March 2023
    phrase = DatedPhrase(
        text=text[begin:end],
        deadline=period.end,
        period_start=period.start,
        precision=period.precision,
        bound=bound,
        range_start=range_start,
    )
    return _Found(begin, end, phrase, rank)


def _scan(text: str, reference_fiscal_year: int | None) -> _Scan:
    norm = normalise_digits(text)
    dated: list[_Found] = []
    relative: list[tuple[str, str]] = []
    unsupported: list[tuple[str, str]] = []
    for_period: list[str] = []
    taken: list[tuple[int, int]] = []

    def is_for_period(begin: int, end: int) -> bool:
        """Record a date followed by 分 (令和４年分): a period something is for, not a date."""
        m_for = _FOR_PERIOD_AFTER.match(norm, end)
        if m_for is None:
            return False
        for_period.append(text[begin : m_for.end()])
        taken.append((begin, m_for.end()))
        return True

    points: list[_Point] = []
    pos = 0
    while (m := _POINT.search(norm, pos)) is not None:
        pos = max(m.end(), m.start() + 1)
        try:
            point = _point_from_match(m, norm, None)
        except _UnsupportedPeriodError as exc:
            unsupported.append((text[m.start() : m.end()], str(exc)))
            taken.append((m.start(), m.end()))
            continue
        if point is not None:
            if point.period is not None and is_for_period(point.begin, point.end):
                continue
            points.append(point)

    i = 0
    while i < len(points):
        a = points[i]
        sep = _RANGE_SEP.match(norm, a.end)
        b: _Point | None = None
        consumed_next = False
        if sep is not None:
            if i + 1 < len(points) and points[i + 1].begin == sep.end():
                b, consumed_next = points[i + 1], True
            elif a.era is not None:
                m_b = _ERALESS_POINT.match(norm, sep.end())
                if m_b is not None and m_b.group("eunit") is not None:
                    try:
                        b = _point_from_match(m_b, norm, a.era)
                    except _UnsupportedPeriodError:
                        b = None
        i += 2 if consumed_next else 1
        if b is not None and b.period is not None:
            assert b.fiscal is not None
            # A unit-less start inherits the unit of the end ("平成26～平成30年度").
            fiscal = a.fiscal if a.fiscal is not None else b.fiscal
            a_period = a.period or _year_period(a.year, fiscal)
            if _year_end_as_point(norm, a.end, a_period):
                a_period = _closing_month(a_period)  # "令和４年度末から令和６年度末まで"
            if a_period.start <= b.period.end:
                found = _with_bound(text, norm, a.begin, b.end, b.period, a_period.start)
                dated.append(found)
                taken.append((found.begin, found.end))
                continue
        if b is not None and consumed_next:
            i -= 1  # not a range after all: the next point stands on its own
        if a.period is None:
            continue  # a bare "平成26" that opened no range is not a date
        found = _with_bound(text, norm, a.begin, a.end, a.period, a.inner_range_start)
        dated.append(found)
        taken.append((found.begin, found.end))

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for m in _RELATIVE.finditer(norm):
        if not free(m.start(), m.end()) or is_for_period(m.start(), m.end()):
            continue
        rel = m.group("rel")
        matched = text[m.start() : m.end()]
        if rel in ("同年", "同年度"):
            relative.append((matched, f"'{rel}' refers to a year named elsewhere in the text"))
            continue
        offset, fiscal = _RELATIVE_YEARS[rel]
        if reference_fiscal_year is None:
            relative.append(
                (matched, f"'{rel}' is relative and no reference fiscal year was given")
            )
            continue
        # Calendar-relative words resolve against the calendar year the reference FY starts in.
        year = reference_fiscal_year + offset
        try:
            period = _sub_period(m, year, fiscal)
        except _UnsupportedPeriodError as exc:
            unsupported.append((matched, str(exc)))
            continue
        found = _with_bound(text, norm, m.start(), m.end(), period, None)
        dated.append(found)
        taken.append((found.begin, found.end))

    for m in _RELATIVE_SEASON.finditer(norm):
        if not free(m.start(), m.end()):
            continue
        matched = text[m.start() : m.end()]
        if reference_fiscal_year is None:
            relative.append(
                (matched, f"'{matched}' is relative and no reference fiscal year was given")
            )
            continue
        # Like 今年/来年: the calendar year the reference fiscal year starts in, plus the offset.
        year = reference_fiscal_year + _SEASON_OFFSETS[m.group("rel")]
        try:
            period = _sub_period(m, year, False)
        except _UnsupportedPeriodError as exc:
            unsupported.append((matched, str(exc)))
            continue
        found = _with_bound(text, norm, m.start(), m.end(), period, None)
        dated.append(found)
        taken.append((found.begin, found.end))

    for m in _BARE_MONTH.finditer(norm):
        if not free(m.start(), m.end()) or is_for_period(m.start(), m.end()):
            continue
        matched = text[m.start() : m.end()]
        if reference_fiscal_year is None:
            relative.append((matched, "a month without a year, and no reference fiscal year"))
            continue
        try:
            period = _sub_period(m, reference_fiscal_year, True)
        except _UnsupportedPeriodError as exc:
            unsupported.append((matched, str(exc)))
            continue
        found = _with_bound(text, norm, m.start(), m.end(), period, None)
        dated.append(found)
        taken.append((found.begin, found.end))

    dated.sort(key=lambda f: f.begin)
    return _Scan(dated, relative, unsupported, for_period)


# --- public entry points -------------------------------------------------------------------------


def find_date_expressions(text: str) -> list[tuple[int, int, DatedPhrase]]:
    """Every absolute date expression in `text`, as (start, end, phrase), in order of position.

    Spans index the original (un-normalised) text and include the bound markers around the date,
    so `parse_deadline(text[start:end])` reproduces the phrase. Relative expressions (今年度, 同年)
    are left out because they cannot be dated without context.
    """
    return [(f.begin, f.end, f.phrase) for f in _scan(text, None).dated]


def parse_deadline(text: str, *, reference_fiscal_year: int | None = None) -> ParsedPhrase:
    """Parse a deadline phrase, possibly with surrounding words, into its governing date.

    The governing date is the first one carrying an explicit deadline marker (までに, 末, 中, 目途),
    else the first start marker (から, 以降), else the first date. Relative years and seasons
    (今年度, 年内, 今夏) are dated only when `reference_fiscal_year` is given. A date followed by 分
    (令和４年分) is never a deadline; alone it gives NOT_A_DEADLINE.
    """
    scan = _scan(text, reference_fiscal_year)
    if scan.dated:
        return min(scan.dated, key=lambda f: (f.rank, f.begin)).phrase
    stripped = text.strip()
    if scan.relative:
        matched, why = scan.relative[0]
        return UndatedPhrase(stripped, NoDateReason.RELATIVE, f"{matched}: {why}")
    if scan.unsupported:
        matched, what = scan.unsupported[0]
        return UndatedPhrase(
            stripped, NoDateReason.UNRECOGNISED, f"{matched}: unsupported period ({what})"
        )
    if scan.for_period:
        return UndatedPhrase(
            stripped,
            NoDateReason.NOT_A_DEADLINE,
            f"{scan.for_period[0]}: the period something is for (e.g. a tax year's income),"
            " not a due date",
        )
    norm = normalise_digits(text)
    if (m := _DURATION.search(norm)) is not None:
        return UndatedPhrase(
            stripped,
            NoDateReason.RELATIVE,
            f"{text[m.start() : m.end()]}: a duration counted from an unstated date",
        )
    for pattern, reason, detail in _UNDATED_KEYWORDS:
        if pattern.search(norm):
            return UndatedPhrase(stripped, reason, detail)
    return UndatedPhrase(stripped, NoDateReason.UNRECOGNISED, "no date expression found")
