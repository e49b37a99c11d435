"""A stand-in for a node's /api/v1 serving canned JSON, for CLI tests that need a server but no orchestrator.

It answers the calls `job list` and the run verbs make: list jobs, submit (recording the body), describe
with history (walking through `script`, one answer per request), executions. Every request is recorded,
so tests can count them and read what the CLI sent.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.client.recording_server import Recording, Seen, recording_handler
from tests.http_env import http_server

JOBS = "/api/v1/orchestrator/jobs"


@dataclass
class Request:
    """One request the fake received, decoded."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeApi:
    """Canned answers; `script` is the sequence of GET /jobs/{id} answers (the last one repeats)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    script: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    put_status: int = 200
    put_answer: dict[str, Any] = field(default_factory=lambda: {"JobID": "j-fake", "EvaluationID": "e-1", "Warnings": []})
    recording: Recording = field(default_factory=Recording)

    @property
    def requests(self) -> list[Request]:
        """Every request so far, decoded."""
        with self.recording.lock:
            seen = list(self.recording.requests)
        return [_decoded(s) for s in seen]

    def respond(self, seen: Seen) -> tuple[int, bytes]:
        """The status and JSON body for one request (called by the server, after recording it)."""
        status, body = self._answer(_decoded(seen))
        return status, json.dumps(body).encode()

    def _answer(self, request: Request) -> tuple[int, Any]:
        method, path = request.method, request.path
        if method == "PUT" and path == JOBS:
            return self.put_status, self.put_answer
        if method == "GET" and path == JOBS:
            return 200, {"Items": self.jobs, "NextToken": ""}
        if method == "GET" and path.endswith("/executions"):
            return 200, {"Items": self.executions, "NextToken": ""}
        if method == "GET" and path.startswith(JOBS + "/"):
            gets = self.count("GET", path)
            return 200, self.script[min(gets, len(self.script)) - 1]
        return 404, {"Message": f"no such route {path}", "Code": "NotFound"}

    def count(self, method: str, path_prefix: str) -> int:
        """How many requests of `method` went to a path starting with `path_prefix`."""
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(path_prefix))


def _decoded(seen: Seen) -> Request:
    parts = urlsplit(seen.target)
    return Request(seen.method, parts.path, parse_qs(parts.query), json.loads(seen.body) if seen.body else None)


@contextlib.contextmanager
def serving(api: FakeApi) -> Iterator[str]:
    """Serve `api` on a free port of 127.0.0.1; yields the base URL."""
    with http_server(recording_handler(api.recording, api.respond)) as url:
        yield url
