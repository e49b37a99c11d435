"""The API's gate (orchestrator/api/authz.py) in front of the real app: an in-process app on a real
orchestrator (SQLite stores) with a UsersAuthorizer built from API.Auth.Users, reached through httpx's
ASGI transport, starlette's TestClient (websockets) and raw ASGI messages.

Bacalhau's refusal (pkg/publicapi/middleware/authz.go): 401 `Request Unauthorized` when the caller is
not identified, 403 `Request Forbidden` when they lack the capability, `Details.reason` saying which,
`RequestID` echoing the request's X-Request-Id; HEAD gets the status without a body; the gate runs for
unknown paths too (401/403, not 404); websocket handshakes are refused with the same answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from bacalhau.auth.authorizer import build_authorizer
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.service import Orchestrator

with warnings.catch_warnings():
    # starlette's TestClient prefers the `httpx2` package and warns when it finds httpx (what we have).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
MISSING_JOB = "j-00000000-0000-0000-0000-000000000000"
ADMIN_PASSWORD = "admin-password-1"
READER_KEY = "reader-key-0123456789-ZYXWV"
WRITER_KEY = "writer-key-0123456789-QRSTU"
NATS_TOKEN = "nats-shared-token-xyz"
UNAUTHORIZED_HINT = "Unauthorized principal. Event has been recorded."
FORBIDDEN_HINT = "Check if user have access to this resource. Event has been recorded."
BODY_KEYS = {"Status", "Message", "RequestID", "Code", "Component", "Hint", "Details"}
WS_TIMEOUT_S = 10.0

USERS = [
    {"Alias": "admin", "Username": "alice", "Password": ADMIN_PASSWORD, "Capabilities": [{"Actions": ["*"]}]},
    {"Alias": "reader", "APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
    {"Alias": "writer", "APIKey": WRITER_KEY, "Capabilities": [{"Actions": ["write:job"]}]},
]


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


ADMIN = basic("alice", ADMIN_PASSWORD)
READER = {"Authorization": f"Bearer {READER_KEY}"}
WRITER = {"Authorization": f"Bearer {WRITER_KEY}"}


def node_config(users: list[dict[str, Any]]) -> BacalhauConfig:
    return BacalhauConfig.from_user({"API": {"Auth": {"Users": users}}, "Orchestrator": {"Auth": {"Token": NATS_TOKEN}}})


def app_for(orchestrator: Orchestrator | None, users: list[dict[str, Any]] = USERS) -> FastAPI:
    cfg = node_config(users)
    ctx = ApiContext(
        version=BuildVersionInfo(GitVersion="v1.9.0"),
        node_info=NodeInfo,
        config=cfg.redacted,
        orchestrator=orchestrator,
        authorizer=build_authorizer(cfg.api.auth),
    )
    return create_app(ctx)



@pytest.fixture
def app(orchestrator: Orchestrator) -> FastAPI:
    return app_for(orchestrator)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def assert_refusal(resp: httpx.Response, status: int, reason: str, request_id: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert set(body) == BODY_KEYS, body
    assert body["Status"] == status
    assert body["RequestID"] == request_id
    assert body["Component"] == "Authorizer"
    assert body["Details"] == {"reason": reason}
    if status == 401:
        assert (body["Message"], body["Code"]) == ("Request Unauthorized", "Unauthorized"), body
        assert body["Hint"].startswith(UNAUTHORIZED_HINT), body
    else:
        assert (body["Message"], body["Code"]) == ("Request Forbidden", "Forbidden"), body
        assert body["Hint"] == FORBIDDEN_HINT, body
    return body


# -- the refusal bodies ----------------------------------------------------------------------------------
async def test_401_without_credentials_has_bacalhaus_body(http: httpx.AsyncClient) -> None:
    resp = await http.get(JOBS)
    body = assert_refusal(resp, 401, "Missing Authorization header")
    assert int(resp.headers["content-length"]) == len(resp.content)
    # No X-Bacalhau-* server headers on a refusal (Bacalhau's ServerHeader middleware runs after Authorize).
    assert not [h for h in resp.headers if h.lower().startswith("x-bacalhau")], resp.headers
    assert body["Hint"].startswith(UNAUTHORIZED_HINT)


async def test_the_request_id_echoes_the_request_header(http: httpx.AsyncClient) -> None:
    resp = await http.get(JOBS, headers={"X-Request-Id": "req-42"})
    assert_refusal(resp, 401, "Missing Authorization header", request_id="req-42")
    resp = await http.put(JOBS, headers={**READER, "x-request-id": "lower-case-name"}, json={})
    assert_refusal(resp, 403, "user 'reader' does not have the required capability 'write:job'", "lower-case-name")


async def test_403_names_the_user_and_the_capability(http: httpx.AsyncClient) -> None:
    assert_refusal(await http.get(JOBS, headers=WRITER), 403, "user 'writer' does not have the required capability 'read:job'")
    assert_refusal(
        await http.put(f"{NODES}/n-1", headers=WRITER, json={"Action": "cordon"}),
        403, "user 'writer' does not have the required capability 'write:node'",
    )
    assert_refusal(
        await http.delete(f"{JOBS}/{MISSING_JOB}", headers=READER),
        403, "user 'reader' does not have the required capability 'write:job'",
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Authorization": "Bearer wrong-key-000000000000"}, "invalid API key"),
        ({"Authorization": "Bearer "}, "empty API key provided"),
        (basic("alice", "wrong-password"), "invalid basic auth credentials"),
        ({"Authorization": "Basic %%%"}, "failed to decode basic auth credentials"),
        ({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, "invalid basic auth credentials format"),
        ({"Authorization": f"bearer {READER_KEY}"}, "unsupported authentication method"),
        ({"Authorization": f"Token {READER_KEY}"}, "unsupported authentication method"),
    ],
)
async def test_401_reasons(http: httpx.AsyncClient, headers: dict[str, str], reason: str) -> None:
    assert_refusal(await http.get(JOBS, headers=headers), 401, reason)


async def test_head_gets_the_status_without_a_body(http: httpx.AsyncClient) -> None:
    resp = await http.head(JOBS)
    assert resp.status_code == 401 and resp.content == b"", resp.content
    # HEAD needs write (only GET reads): a reader is forbidden, still without a body.
    resp = await http.head(JOBS, headers=READER)
    assert resp.status_code == 403 and resp.content == b"", resp.content


async def test_only_the_first_authorization_header_counts(http: httpx.AsyncClient) -> None:
    two = [("Authorization", "Bearer wrong-key-000000000000"), ("Authorization", f"Bearer {READER_KEY}")]
    assert_refusal(await http.get(JOBS, headers=two), 401, "invalid API key")
    two.reverse()
    assert (await http.get(JOBS, headers=two)).status_code == 200


# -- what gets through ---------------------------------------------------------------------------------------
async def test_open_routes_need_no_credentials(http: httpx.AsyncClient) -> None:
    alive = await http.get("/api/v1/agent/alive")
    assert alive.status_code == 200 and alive.json() == {"Status": "OK"}
    version = await http.get("/api/v1/agent/version")
    assert version.status_code == 200 and version.json()["GitVersion"] == "v1.9.0"
    assert (await http.get("/api/v1/openapi.json")).status_code == 200
    # An open path with bad credentials is still open: the header is not even looked at.
    assert (await http.get("/api/v1/agent/alive", headers={"Authorization": "Bearer wrong"})).status_code == 200


async def test_auth_routes_shapes(http: httpx.AsyncClient) -> None:
    methods = await http.get("/api/v1/auth")
    assert methods.status_code == 200 and methods.json() == {"NextToken": "", "Methods": {}}
    authconfig = await http.get("/api/v1/agent/authconfig")
    assert authconfig.status_code == 200 and authconfig.json() == {"Version": "1.0.0", "Config": {}}
    # Under /api/v1/auth (open): not refused, but no such method either.
    for resp in (await http.get("/api/v1/auth/ClientKey"), await http.post("/api/v1/auth/ClientKey", json={})):
        assert resp.status_code == 404, resp.text
        assert "ClientKey" in resp.json()["Message"]


async def test_allowed_callers_reach_the_routes(http: httpx.AsyncClient) -> None:
    listed = await http.get(JOBS, headers=READER)
    assert listed.status_code == 200 and "Items" in listed.json(), listed.text
    # Authorised but no such job: the route's 404, not the gate's.
    missing = await http.get(f"{JOBS}/{MISSING_JOB}", headers=READER)
    assert missing.status_code == 404 and missing.json()["Component"] != "Authorizer", missing.text
    # A writer passes the gate with a bad body: the route's 400.
    bad = await http.put(JOBS, headers=WRITER, json={"Job": {"Type": "nonsense"}})
    assert bad.status_code == 400 and bad.json()["Component"] != "Authorizer", bad.text
    nodes = await http.get(NODES, headers=basic("ALICE", ADMIN_PASSWORD))
    assert nodes.status_code == 200, nodes.text


async def test_unknown_paths_are_refused_not_404_without_credentials(http: httpx.AsyncClient) -> None:
    for path in ("/nope", "/api/v2/anything", f"{JOBS}XYZ", "/"):
        assert_refusal(await http.get(path), 401, "Missing Authorization header")
    # An unknown path needs write:node: a reader is forbidden, an admin gets the 404.
    assert_refusal(await http.get("/nope", headers=READER), 403, "user 'reader' does not have the required capability 'write:node'")
    assert (await http.get("/nope", headers=ADMIN)).status_code == 404
    # /api/v1/orchestrator/jobsXYZ is "jobs" by prefix (Go's rule): a reader passes the gate, and gets a 404.
    assert (await http.get(f"{JOBS}XYZ", headers=READER)).status_code == 404


async def test_legacy_redirects_need_write_node(http: httpx.AsyncClient) -> None:
    assert_refusal(await http.get("/livez"), 401, "Missing Authorization header")
    assert_refusal(await http.get("/version", headers=READER), 403, "user 'reader' does not have the required capability 'write:node'")
    resp = await http.get("/livez", headers=ADMIN, follow_redirects=False)
    assert resp.status_code == 301 and resp.headers["location"] == "/api/v1/agent/alive"


async def test_agent_config_masks_passwords_and_api_keys_but_not_names(http: httpx.AsyncClient) -> None:
    assert_refusal(await http.get("/api/v1/agent/config"), 401, "Missing Authorization header")
    assert_refusal(
        await http.get("/api/v1/agent/config", headers=WRITER), 403,
        "user 'writer' does not have the required capability 'read:agent'",
    )
    resp = await http.get("/api/v1/agent/config", headers=READER)
    assert resp.status_code == 200, resp.text
    for secret in (ADMIN_PASSWORD, READER_KEY, WRITER_KEY, NATS_TOKEN):
        assert secret not in resp.text, secret
    config = resp.json()["config"]
    users = config["API"]["Auth"]["Users"]
    assert [u["Alias"] for u in users] == ["admin", "reader", "writer"]
    assert users[0]["Username"] == "alice" and users[0]["Password"] == "********" and users[0]["APIKey"] == ""
    assert users[1]["APIKey"] == "********" and users[1]["Password"] == "" and users[1]["Username"] == ""
    assert users[2]["Capabilities"] == [{"Actions": ["write:job"]}]
    assert config["Orchestrator"]["Auth"]["Token"] == "********"


async def test_refusals_are_logged_without_the_credentials(http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bacalhau.orchestrator.api.authz"):
        await http.get(JOBS, headers={"Authorization": "Bearer not-a-key-secret-0000"})
        await http.put(JOBS, headers=READER, json={})
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "bacalhau.orchestrator.api.authz")
    assert f"GET {JOBS}" in text and "invalid API key" in text, text
    assert f"PUT {JOBS}" in text and "user 'reader' does not have the required capability 'write:job'" in text, text
    assert "not-a-key-secret-0000" not in text and READER_KEY not in text


async def test_without_users_nothing_is_checked(orchestrator: Orchestrator) -> None:
    app = app_for(orchestrator, users=[])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as open_http:
        assert (await open_http.get(JOBS)).status_code == 200
        assert (await open_http.get(JOBS, headers={"Authorization": "Bearer whatever"})).status_code == 200
        assert (await open_http.get("/nope")).status_code == 404  # routing's answer, no gate
        assert (await open_http.head(JOBS)).status_code != 401


# -- websockets ------------------------------------------------------------------------------------------------
def test_a_websocket_handshake_without_credentials_is_refused_with_the_401_body(app: FastAPI) -> None:
    client = TestClient(app)
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect(f"{JOBS}/{MISSING_JOB}/logs"):
        pytest.fail("the handshake was accepted")
    denial = info.value
    assert denial.status_code == 401
    body = denial.json()
    assert set(body) == BODY_KEYS and body["Details"] == {"reason": "Missing Authorization header"}, body
    assert body["Component"] == "Authorizer" and body["Message"] == "Request Unauthorized"


def test_a_websocket_handshake_of_a_caller_without_read_job_is_forbidden(app: FastAPI) -> None:
    client = TestClient(app)
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(f"{JOBS}/{MISSING_JOB}/logs", headers={**WRITER, "X-Request-Id": "ws-1"}),
    ):
        pytest.fail("the handshake was accepted")
    assert info.value.status_code == 403
    body = info.value.json()
    assert body["RequestID"] == "ws-1"
    assert body["Details"] == {"reason": "user 'writer' does not have the required capability 'read:job'"}


class _WebSocketDriver:
    """Drives one websocket connection through the ASGI app with raw messages (in this event loop)."""

    def __init__(self, app: FastAPI, path: str, headers: dict[str, str], extensions: dict[str, Any]) -> None:
        self.scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "http_version": "1.1",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000), "server": ("test", 80), "subprotocols": [],
            "extensions": extensions, "state": {},
        }
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def _receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self.sent.put(message)

    async def run(self, until: int) -> list[dict[str, Any]]:
        """Connect, collect `until` messages from the app, disconnect; bounded by WS_TIMEOUT_S."""
        await self.inbox.put({"type": "websocket.connect"})
        task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        got = []
        try:
            for _ in range(until):
                got.append(await asyncio.wait_for(self.sent.get(), WS_TIMEOUT_S))
        finally:
            await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
            await asyncio.wait_for(task, WS_TIMEOUT_S)
        return got


async def test_a_refused_handshake_without_the_http_response_extension_is_closed_1008(app: FastAPI) -> None:
    driver = _WebSocketDriver(app, f"{JOBS}/{MISSING_JOB}/logs", {}, extensions={})
    (message,) = await driver.run(until=1)
    assert message["type"] == "websocket.close" and message["code"] == 1008, message
    assert message.get("reason") == "Request Unauthorized"


async def test_a_refused_handshake_with_the_extension_gets_the_http_answer(app: FastAPI) -> None:
    driver = _WebSocketDriver(app, f"{JOBS}/{MISSING_JOB}/logs", READER | {"Authorization": "Bearer nope-000000000000"},
                              extensions={"websocket.http.response": {}})
    start, body = await driver.run(until=2)
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401, start
    assert body["type"] == "websocket.http.response.body"
    assert json.loads(body["body"])["Details"] == {"reason": "invalid API key"}


async def test_an_allowed_handshake_reaches_the_logs_route(app: FastAPI) -> None:
    driver = _WebSocketDriver(app, f"{JOBS}/{MISSING_JOB}/logs", READER, extensions={"websocket.http.response": {}})
    accept, frame = await driver.run(until=2)
    assert accept["type"] == "websocket.accept", accept
    # The route's own answer for a job that does not exist: an error frame, not the gate's refusal.
    assert frame["type"] == "websocket.send", frame
    assert "not found" in frame["text"].lower() and "Authorizer" not in frame["text"], frame


@pytest.fixture
def no_orchestrator_app() -> Iterator[FastAPI]:
    yield app_for(None)


async def test_a_compute_only_api_is_gated_too(no_orchestrator_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=no_orchestrator_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert_refusal(await http.get("/api/v1/agent/node"), 401, "Missing Authorization header")
        assert (await http.get("/api/v1/agent/node", headers=READER)).status_code == 200
        # No orchestrator routes here: an allowed caller gets the 404, an anonymous one the 401.
        assert_refusal(await http.get(JOBS), 401, "Missing Authorization header")
        assert (await http.get(JOBS, headers=READER)).status_code == 404
        assert (await http.get("/api/v1/agent/alive")).status_code == 200
