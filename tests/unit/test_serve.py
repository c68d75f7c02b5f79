"""The services serve on uvicorn[standard]: uvloop's event loop and the httptools parser, not
plain asyncio with h11."""

from __future__ import annotations

import asyncio

import uvloop
from fastapi import FastAPI

from shared.http.serve import server_config


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
