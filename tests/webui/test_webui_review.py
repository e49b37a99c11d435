"""Adversarial review of the web UI: injection into HTML, attributes, URLs and SSE frames; the request
guard; login redirects and sessions; hostile query strings, paths and job files; basic accessibility.

Each test asserts the correct behaviour; the defects this review found (an alias bomb, 500s on bad job
files and logins, open redirects, DNS rebinding, unquoted node IDs, unbounded bodies, forged SSE events)
are fixed and stay covered here. The UI runs against a real orchestrator's API, in
process over ASGI, or (for the websocket log stream) over a loopback socket.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.factories import make_event, make_execution, make_job, make_node_info
from tests.orchestrator.in_process_api import api_app, orch
from tests.orchestrator.node_harness import RecordingCompute

from bacalhau.asgi_server import bound_port, serve
from bacalhau.models.execution import ExecutionLog, ExecutionState
from bacalhau.models.history import TOPIC_SCHEDULING, Event
from bacalhau.models.job import JobState, SpecConfig
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.transport.messages import LogStreamRequest
from bacalhau.transport.ncl.subjects import validate_node_id
from bacalhau.webui.app import create_app
from bacalhau.webui.backend import Backend
from bacalhau.webui.session import COOKIE
from bacalhau.webui.submit_page import MAX_SPEC_BYTES

HTMX = {"HX-Request": "true", "Origin": "http://ui.test"}
FORM = {**HTMX, "Content-Type": "application/x-www-form-urlencoded"}
API_KEY = "review-key-0123456789-ABCDEF"
__all__ = ["orch"]  # the fixture, imported to be found by pytest
P = '"><img src=x onerror=alert(1)>'  # what must never reach a page as markup
GOOD = "Name: ok\nType: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params:\n        Image: busybox\n"
EVIL_LINES = ["plain\n", "a\n\nevent: end\ndata: <b>forged</b>", "b\revent: end\rdata: forged", "c\r\n\r\ndata: forged",
              "<script>alert(1)</script>"]


def _api(orch: Orchestrator, users: list[dict[str, Any]] | None = None) -> ASGIApp:
    return api_app(orch, users)


def _ui(api: ASGIApp) -> httpx.AsyncClient:
    # Answering to its own name only, as `bacalhau serve` configures it (webui/server.py allowed_hosts).
    app = create_app(Backend(base_url="http://api", transport=httpx.ASGITransport(app=api)), allowed_hosts=("ui.test",))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://ui.test", timeout=60)


@pytest.fixture
async def ui(orch: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    async with _ui(_api(orch)) as client:
        yield client


@pytest.fixture
async def ui_on_socket(orch: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    """The UI against the API on a loopback port: the log stream needs a real websocket."""
    async with contextlib.AsyncExitStack() as stack:
        server = await serve(stack, uvicorn.Config(_api(orch), host="127.0.0.1", port=0, log_level="warning",
                                                   log_config=None, lifespan="off"), what="API", hint="")
        app = create_app(Backend(base_url=f"http://127.0.0.1:{bound_port(server, default=0)}"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui.test") as client:
            yield client


async def _submit(ui: httpx.AsyncClient, spec: str) -> httpx.Response:
    return await ui.post("/submit", content=urlencode({"spec": spec}).encode(), headers=FORM)


def _sse(stream: str) -> list[tuple[str, str]]:
    """Events as an EventSource sees them (lines end at CRLF, CR or LF; a blank line dispatches)."""
    events: list[tuple[str, str]] = []
    name, data = "message", list[str]()
    for line in re.split(r"\r\n|\r|\n", stream):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


def _browser_stays(target: str) -> bool:
    """Where a browser's `location.href = target` goes (WHATWG: tabs/newlines dropped, `\\` is `/`)."""
    cleaned = re.sub(r"[\t\n\r]", "", target).replace("\\", "/")
    return urlsplit(urljoin("http://ui.test/jobs", cleaned)).netloc == "ui.test"


# 1. Injection: HTML, attributes, URLs, SSE
async def test_user_controlled_text_is_escaped_on_every_page(orch: Orchestrator, ui: httpx.AsyncClient) -> None:
    node = make_node_info(node_id="n-labelled", labels={P: P})
    assert orch.nodes.handshake(node).accepted
    job = make_job(name=P, labels={"k": P}, meta={P: P}, state=JobState(StateType=JobStateType.Failed, Message=P))
    why = make_event(job, event=Event(Message=P, Topic=TOPIC_SCHEDULING, Details={"Hint": P, "Error": P}))
    await orch.store.create_job(job, [why])
    for result in (SpecConfig(Type="s3", Params={"URL": "https://r.example/" + P, "Bucket": P}),
                   SpecConfig(Type="s3", Params={"URL": "javascript:alert(1)", "Key": P})):
        failed = ExecutionState(StateType=ExecutionStateType.Failed, Message=P)
        await orch.store.create_execution(make_execution(job, node_id=node.node_id, compute_state=failed,
                                                         published_result=result), [])
    paths = ["/jobs", "/jobs/table", f"/jobs/{job.id}", f"/jobs/{job.id}/header", "/nodes", "/nodes/table",
             f"/nodes/{node.node_id}", "/overview", *(f"/jobs/{job.id}/tab/{t}" for t in
                                                     ("overview", "history", "executions", "logs", "inspect"))]
    for path in paths:
        resp = await ui.get(path)
        assert resp.status_code == 200, (path, resp.text[-500:])
        assert "<img" not in resp.text and 'href="javascript:' not in resp.text, path
    assert "&lt;img" in (await ui.get(f"/jobs/{job.id}/tab/history")).text  # shown, as text
    refused = await _submit(ui, f"Type: '{P}'\nTasks: []\n")
    assert "not submitted" in refused.text and "<img" not in refused.text


async def test_filter_values_stay_inside_the_polling_url(ui: httpx.AsyncClient) -> None:
    resp = await ui.get("/jobs", params={"namespace": P, "labels": "env=prod"})
    assert resp.status_code == 200 and "<img" not in resp.text
    polled = re.search(r'id="jobs-table"[^>]*hx-get="([^"]*)"', resp.text)
    assert polled is not None
    query = parse_qs(urlsplit(html.unescape(polled.group(1))).query)
    assert query == {"namespace": [P], "labels": ["env=prod"]}


async def test_log_lines_cannot_forge_sse_events_or_markup(orch: Orchestrator, ui_on_socket: httpx.AsyncClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async def talk(self: RecordingCompute, request: LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        for i, line in enumerate(EVIL_LINES):
            yield ExecutionLog(Type=1 + i % 2, Line=line)

    monkeypatch.setattr(RecordingCompute, "stream_logs", talk)  # what the compute node running the job prints
    job = make_job()
    await orch.store.create_job(job, [])
    await orch.store.create_execution(make_execution(job, node_id="n-talker"), [])
    events = _sse((await ui_on_socket.get(f"/jobs/{job.id}/logs/stream")).text)
    assert [name for name, _ in events] == ["line"] * len(EVIL_LINES) + ["end"], events
    assert all(data.startswith('<div class="log') and data.count("<") == 2 for _, data in events), events


async def test_an_error_message_cannot_forge_sse_events(ui_on_socket: httpx.AsyncClient) -> None:
    stream = await ui_on_socket.get("/jobs/" + quote("x\n\nevent: end\ndata: forged", safe="") + "/logs/stream")
    events = _sse(stream.text)
    assert [name for name, _ in events] == ["line", "end"], events


# 2. The request guard
@pytest.mark.parametrize("headers", [
    {}, {"Origin": "http://ui.test"}, {"HX-Request": "true", "Origin": "https://evil.example"},
    {"HX-Request": "true", "Origin": "null"}, {"HX-Request": "true", "Origin": "http://ui.test:8080"},
    {"hX-rEqUeSt": "true", "oRiGiN": "http://evil.example"}, {"HX-Request": "true", "Origin": "http://ui.test.evil.example"},
])
async def test_cross_site_changes_are_refused(ui: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for method, path in (("POST", "/submit"), ("POST", "/nodes/n-x/delete"), ("PUT", "/submit"), ("DELETE", "/jobs/x")):
        resp = await ui.request(method, path, content=urlencode({"spec": GOOD}).encode(), headers=headers)
        assert resp.status_code == 403 and "refused" in resp.text, (method, path, resp.text)
        assert resp.headers["x-frame-options"] == "DENY"
    assert "No jobs" in (await ui.get("/jobs/table")).text


async def test_no_get_changes_anything(ui: httpx.AsyncClient) -> None:
    job_id = (await _submit(ui, GOOD)).headers["HX-Redirect"].rsplit("/", 1)[1]
    for path in (f"/jobs/{job_id}/stop", f"/jobs/{job_id}/rerun", "/logout", "/nodes/n-x/delete"):
        assert (await ui.get(path)).status_code in (404, 405), path
    assert "Stopped" not in (await ui.get(f"/jobs/{job_id}/header")).text


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "rebound.example:8438", "Origin": "http://rebound.example:8438"}, 400),  # DNS rebinding
    ({"Origin": "https://ui.test"}, 403)])  # another scheme is another origin
async def test_a_foreign_host_or_scheme_is_refused(ui: httpx.AsyncClient, headers: dict[str, str], status: int) -> None:
    resp = await ui.post("/submit", content=urlencode({"spec": GOOD}).encode(), headers={**FORM, **headers})
    assert resp.status_code == status, resp.headers
    if status == 400:
        assert "unexpected Host header" in resp.text
        assert (await ui.get("/jobs", headers={"Host": "rebound.example:8438"})).status_code == 400  # reads too


# 3. Login: redirects and sessions
async def _login(ui: httpx.AsyncClient, next_path: str, key: str = "any-key-for-an-open-api") -> httpx.Response:
    return await ui.post("/login", content=urlencode({"api_key": key, "next": next_path}).encode(), headers=FORM)


@pytest.mark.parametrize("next_path", [
    "//evil.example/x", "https:evil.example", "https://evil.example", "/%2F%2Fevil.example", "/jobs?state=Running",
    "/\\evil.example",
    "/\t/evil.example",
    "/jobs/日本",
])
async def test_login_never_sends_the_browser_elsewhere(ui: httpx.AsyncClient, next_path: str) -> None:
    resp = await _login(ui, next_path)
    assert resp.status_code == 200 and _browser_stays(resp.headers["HX-Redirect"]), resp.headers


async def test_a_non_ascii_api_key_is_a_login_error(ui: httpx.AsyncClient) -> None:
    resp = await _login(ui, "/jobs", key="ключ")
    assert resp.status_code == 200 and "alert" in resp.text


async def test_sessions_are_not_fixed_by_the_client_and_end_at_logout(orch: Orchestrator) -> None:
    users = [{"Alias": "ops", "APIKey": API_KEY, "Capabilities": [{"Actions": ["*"]}]}]
    async with _ui(_api(orch, users)) as ui:

        async def nodes_page_with(session_id: str) -> int:
            ui.cookies.clear()
            ui.cookies.set(COOKIE, session_id)
            return (await ui.get("/nodes", follow_redirects=False)).status_code

        ui.cookies.set(COOKIE, "chosen-by-an-attacker")
        good = await _login(ui, "/nodes", key=API_KEY)
        cookie, issued = good.headers["set-cookie"], good.cookies[COOKIE]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and API_KEY not in cookie
        assert issued != "chosen-by-an-attacker" and len(issued) >= 40
        assert await nodes_page_with("chosen-by-an-attacker") == 303 and await nodes_page_with(issued) == 200
        await ui.post("/logout", headers=HTMX)
        assert await nodes_page_with(issued) == 303  # a copy kept by someone after logout is worthless


# 4. Robustness: queries, paths, job files, bodies
@pytest.mark.parametrize("url", [
    *(f"/jobs/table?{q}" for q in ("state=<script>", "type=<script>x</script>", "labels=(((", "labels=a in (",
                                   "namespace=*", "next_token=" + "A" * 30000, "next_token=%00%ff", "state=a&state=b")),
    "/jobs/%C3%BC", "/jobs/x%0Ay/header", "/jobs/%3Cscript%3E/tab/inspect", "/jobs/x/tab/%3Cscript%3E",
    "/nodes/%3Cscript%3E", "/nodes/a%2Fb", "/static/..%2Fapp.py"])
async def test_hostile_queries_and_paths_get_a_message(ui: httpx.AsyncClient, url: str) -> None:
    page = await ui.get(url.replace("/jobs/table?", "/jobs?"))
    assert page.status_code in (200, 400, 404, 405) and "<script>" not in page.text, (url, page.text[-300:])
    if url.startswith("/jobs/table?"):  # what a polling table gets: a message, the rows left as they were
        fragment = await ui.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and "<script>" not in fragment.text




@pytest.mark.parametrize("spec", [
    pytest.param(b"spec=\xff\xfe\x00", id="non-utf8"), pytest.param(b"", id="empty"), pytest.param("- a\n- b\n", id="list"),
    pytest.param("Type: batch\nCount: many\n", id="count-not-a-number"),
    pytest.param("Type: batch\nTasks: &t [*t]\n", id="recursive-alias"),
    pytest.param('{"a":' * 50000 + "1" + "}" * 50000, id="deep-json"),
    pytest.param("[" * 50000 + "]" * 50000, id="deep-yaml"),
])
async def test_a_bad_job_file_gets_a_clear_message(ui: httpx.AsyncClient, spec: str | bytes) -> None:
    body = spec if isinstance(spec, bytes) else urlencode({"spec": spec}).encode()
    resp = await ui.post("/submit", content=body, headers=FORM)
    assert resp.status_code == 200 and "The job was not submitted" in resp.text, resp.text[:300]


def _bomb(levels: int) -> str:
    refs = ["        x0: &x0 lolololol"] + [f"        x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]"
                                          for i in range(1, levels + 1)]
    return GOOD + "        Junk:\n" + "\n".join(refs) + "\n"


async def test_an_alias_bomb_is_refused_before_it_reaches_the_api(orch: Orchestrator) -> None:
    received: list[int] = []
    api = _api(orch)

    async def counting_api(scope: Scope, receive: Receive, send: Send) -> None:
        received.extend(int(v) for k, v in scope.get("headers", []) if k == b"content-length")
        await api(scope, receive, send)

    async with _ui(counting_api) as ui:
        resp = await _submit(ui, _bomb(6))  # under 600 bytes
    assert "HX-Redirect" not in resp.headers and "expands to more than" in resp.text, resp.text[:300]
    assert received == [], "the bomb was refused before anything reached the API"


@pytest.mark.parametrize("path", ["/submit", "/login"])
async def test_an_oversized_body_is_not_read_to_its_end(ui: httpx.AsyncClient, path: str) -> None:
    read = [0]

    async def eight_mib() -> AsyncIterator[bytes]:
        for _ in range(128):
            read[0] += 65536
            yield b"x" * 65536

    resp = await ui.post(path, content=eight_mib(), headers=FORM)
    assert resp.status_code != 500 and read[0] <= 3 * MAX_SPEC_BYTES + 2 * 65536, read[0]  # the encoded form's bound


async def test_a_date_like_name_stays_a_string_as_in_bacalhau(ui: httpx.AsyncClient) -> None:
    resp = await _submit(ui, "Name: 2001-12-14\n" + GOOD.split("\n", 1)[1])
    assert resp.headers.get("HX-Redirect", "").startswith("/jobs/j-"), resp.text[:300]


async def test_an_oversized_job_file_message_reaches_the_editor(ui: httpx.AsyncClient) -> None:
    resp = await _submit(ui, GOOD + "#" * MAX_SPEC_BYTES)
    assert 200 <= resp.status_code < 300 and "over 1024 KiB" in resp.text


async def test_node_ids_are_quoted_in_urls(orch: Orchestrator, ui: httpx.AsyncClient) -> None:
    traversing, questioning = "n-x/%2e%2e/%2e%2e/jobs/j-victim/stop?", "n-evil?x"
    for node_id in (traversing, questioning):
        validate_node_id(node_id)  # the transport admits it
        assert orch.nodes.handshake(make_node_info(node_id=node_id)).accepted
    assert f'href="/nodes/{quote(traversing, safe="")}"' in (await ui.get("/nodes/table")).text
    page = await ui.get("/nodes/" + quote(questioning, safe=""))
    assert page.status_code == 200 and f'hx-post="/nodes/{quote(questioning, safe="")}/delete"' in page.text


# 5. Accessibility basics
_NO_TEXT_ALTERNATIVE = re.compile(r'<th\b(?![^>]*scope=)[^>]*>|<(?=[^>]*role="tab")(?![^>]*aria-selected=)[^>]*>'
                                  r'|<svg\b(?![^>]*role="img")[^>]*>|<svg\b(?![^>]*aria-label=)[^>]*>'
                                  r'|<img\b(?![^>]*alt=)[^>]*>')


async def test_pages_meet_accessibility_basics(ui: httpx.AsyncClient) -> None:
    job_id = (await _submit(ui, GOOD)).headers["HX-Redirect"].rsplit("/", 1)[1]
    for path in ("/jobs", "/nodes", "/submit", "/login", "/overview", f"/jobs/{job_id}",
                 *(f"/jobs/{job_id}/tab/{t}" for t in ("history", "executions", "logs", "inspect"))):
        text = (await ui.get(path)).text
        labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', text))
        outside_labels = re.sub(r"<label[^>]*>.*?</label>", "", text, flags=re.S)  # wrapped controls are labelled
        controls = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*>', outside_labels)
        unlabelled = [c for c in controls if (m := re.search(r'id="([^"]+)"', c)) is None or m[1] not in labelled]
        missing = _NO_TEXT_ALTERNATIVE.findall(text)
        assert not unlabelled and not missing, (path, unlabelled, missing)
        assert '<html lang="en">' in text or "/tab/" in path, path
