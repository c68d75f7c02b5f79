"""Process entry point shared by the three services: ``python -m services.<name>``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI


def serve(
    app_factory: Callable[[], FastAPI], *, default_port: int, argv: Sequence[str] | None
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args(argv)
    # log_config=None: structlog (configured by the app factory) owns the log format.
    uvicorn.run(
        app_factory(),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
