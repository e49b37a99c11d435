"""A client that goes away mid-request (wrk stopping, a killed CLI) is not an error of the server's: no
traceback in the log, nothing stored. The real app, driven through ASGI as uvicorn drives it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tests.orchestrator.in_process_api import api_app, orch

from bacalhau.orchestrator.jobstore.base import JobQuery
from bacalhau.orchestrator.service import Orchestrator

__all__ = ["orch"]


async def test_a_put_whose_client_disconnects_logs_no_error(orch: Orchestrator, caplog: pytest.LogCaptureFixture) -> None:
    app = api_app(orch)
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.disconnect"}, {"type": "http.request", "body": b'{"Job": {"Ty', "more_body": True}]

    async def receive() -> dict[str, Any]:
        return messages.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT", "scheme": "http",
        "path": "/api/v1/orchestrator/jobs", "raw_path": b"/api/v1/orchestrator/jobs", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"t"), (b"content-type", b"application/json"), (b"content-length", b"500")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {},
    }
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)  # returns: nothing raised out to the server (which would log it)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert sent and sent[0]["status"] == 400
    jobs, _ = await orch.store.list_jobs(JobQuery(namespace="*"))
    assert jobs == []
