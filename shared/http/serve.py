"""Process entry point shared by the three services: ``python -m services.<name>``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI

# uvicorn[standard]'s event loop and HTTP parser, named rather than "auto": a missing one fails
# at start instead of silently serving on plain asyncio with h11 (several times slower per POST).
LOOP = "uvloop"
HTTP = "httptools"
# For comparisons only (make bench measures ingest on plain asyncio + h11 beside the default).
LOOP_OVERRIDE = "SHINCHOKU_UVICORN_LOOP"
HTTP_OVERRIDE = "SHINCHOKU_UVICORN_HTTP"


def server_config(app: FastAPI, *, host: str, port: int) -> uvicorn.Config:
    # log_config=None: structlog (configured by the app factory) owns the log format.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=os.environ.get(LOOP_OVERRIDE, LOOP),
        http=os.environ.get(HTTP_OVERRIDE, HTTP),
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def serve(
    app_factory: Callable[[], FastAPI], *, default_port: int, argv: Sequence[str] | None
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args(argv)
    uvicorn.Server(server_config(app_factory(), host=args.host, port=args.port)).run()
