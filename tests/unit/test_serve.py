"""The services serve on uvicorn[standard]: uvloop's event loop and the httptools parser, not
plain asyncio with h11."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from fastapi import FastAPI

from shared.http.serve import HTTP_OVERRIDE, LOOP_OVERRIDE, server_config


def test_the_server_runs_on_uvloop_with_httptools() -> None:
    config = server_config(FastAPI(), host="127.0.0.1", port=0)
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
        assert not isinstance(loop, asyncio.SelectorEventLoop)
    finally:
        loop.close()


def test_a_comparison_run_may_serve_on_plain_asyncio_with_h11(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """make bench measures ingest on asyncio + h11 beside the default, through two variables."""
    monkeypatch.setenv(LOOP_OVERRIDE, "asyncio")
    monkeypatch.setenv(HTTP_OVERRIDE, "h11")
    config = server_config(FastAPI(), host="127.0.0.1", port=0)
    config.load()
    assert config.http_protocol_class.__name__ == "H11Protocol"
    assert config.loop == "asyncio"
