"""Japanese fiscal years (年度): FY N runs from 1 April N to 31 March N+1."""

from __future__ import annotations

from datetime import date


def fiscal_year_of(day: date) -> int:
    """The fiscal year containing `day` (January-March belong to the previous year's FY)."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_start(fiscal_year: int) -> date:
    return date(fiscal_year, 4, 1)


def fiscal_year_end(fiscal_year: int) -> date:
    return date(fiscal_year + 1, 3, 31)
