"""`shinchoku dates ...`: try the deadline-phrase parser from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from shared.plan.dates import DatedPhrase, parse_deadline


def _parse(args: argparse.Namespace) -> int:
    result = parse_deadline(args.text, reference_fiscal_year=args.reference_fy)
    if isinstance(result, DatedPhrase):
        print(f"{result.deadline.isoformat()}\t{result.precision}\t{result.bound}")
        return 0
    # Undated is a legitimate answer, but scripts need to tell it apart from a date.
    print(f"{result.reason}\t{result.detail}")
    return 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    group = subparsers.add_parser("dates", help="parse plan deadline phrases")
    commands = group.add_subparsers(dest="dates_command", required=True, metavar="COMMAND")
    parse = commands.add_parser(
        "parse",
        help="print the deadline of a Japanese phrase",
        description=(
            "Print DEADLINE<TAB>PRECISION<TAB>BOUND and exit 0, "
            "or REASON<TAB>DETAIL and exit 1 when the phrase names no date."
        ),
    )
    parse.add_argument("text", metavar="TEXT", help="e.g. 令和５年度（2023年度）末までに")
    parse.add_argument(
        "--reference-fy",
        type=int,
        default=None,
        metavar="YEAR",
        help="fiscal year that relative words (今年度, 来年度, 年内, 今夏) refer to",
    )
    parse.set_defaults(handler=_parse)
