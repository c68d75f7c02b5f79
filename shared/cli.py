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
    "kafka": "shared.kafka_cli",
    "keys": "services.ingest.keys_cli",
    "contracts": "shared.events.schema_export",
    "replay": "services.kpi.replay",
    "simulate": "demo.simulate",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every group, or with `only` that one (the others are not imported)."""
    parser = argparse.ArgumentParser(prog="shinchoku", description="Shinchoku command line")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, module_name in COMMAND_GROUPS.items():
        if only is None or name == only:
            module = importlib.import_module(module_name)
            module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in COMMAND_GROUPS else None
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
