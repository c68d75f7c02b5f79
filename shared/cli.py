"""The `shinchoku` console script: one entry point, one sub-command group per concern.

Each group lives next to the code it drives and exposes `register(subparsers)`; groups are
imported lazily so `shinchoku dates parse` does not pay for Kafka or Mongo imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# group name -> module exposing `register(subparsers: argparse._SubParsersAction) -> None`
COMMAND_GROUPS: dict[str, str] = {
    "dates": "shared.plan.dates_cli",
    "catalogue": "shared.catalogue.cli",
    "infra": "shared.infra_cli",
    "replay": "services.kpi.replay",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shinchoku", description="Shinchoku command line")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for module_name in COMMAND_GROUPS.values():
        module = importlib.import_module(module_name)
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
