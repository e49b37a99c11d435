"""The web UI's server side without a browser: the app against a real orchestrator's API (in process,
through ASGI on both sides), its guards, sessions and formatting rules.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from tests.orchestrator.in_process_api import api_app, orch

from bacalhau.auth.binding import LOOPBACK, web_ui_binding
from bacalhau.models.errors import ConfigurationError
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.webui import render
from bacalhau.webui.app import create_app
from bacalhau.webui.backend import Backend
from bacalhau.webui.server import split_listen
from bacalhau.webui.session import COOKIE, Sessions

API_KEY = "ui-test-key-0123456789-ABCDE"
HTMX = {"HX-Request": "true"}
__all__ = ["orch"]  # the fixture, imported to be found by pytest


def ui_client(orch: Orchestrator, users: list[dict[str, Any]] | None = None) -> httpx.AsyncClient:
    """The UI app, talking to an in-process API (ASGI) of `orch`: no sockets on either side."""
    ui = create_app(Backend(base_url="http://api", transport=httpx.ASGITransport(app=api_app(orch, users))))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ui), base_url="http://ui.test")


async def submit(ui: httpx.AsyncClient, spec: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await ui.post("/submit", content=f"spec={httpx.QueryParams({'s': spec})['s']}".encode(),
                         headers={**HTMX, "Origin": "http://ui.test", "Content-Type": "application/x-www-form-urlencoded",
                                  **(headers or {})})


GOOD = "Name: ui-made\nType: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n" \
       "      Params:\n        Image: busybox\n"


async def test_pages_render_and_carry_the_security_headers(orch: Orchestrator) -> None:
    async with ui_client(orch) as ui:
        for path in ("/jobs", "/jobs/table", "/nodes", "/nodes/table", "/submit", "/overview", "/login"):
            resp = await ui.get(path)
            assert resp.status_code == 200, (path, resp.text[:500])
            assert "script-src 'self'" in resp.headers["content-security-policy"]
            assert resp.headers["x-frame-options"] == "DENY"
        assert (await ui.get("/", follow_redirects=False)).headers["location"] == "/jobs"


async def test_a_job_submitted_from_the_form_is_listed(orch: Orchestrator) -> None:
    async with ui_client(orch) as ui:
        done = await submit(ui, GOOD)
        assert done.status_code == 200 and done.headers["HX-Redirect"].startswith("/jobs/j-"), done.text
        job_id = done.headers["HX-Redirect"].rsplit("/", 1)[1]
        table = (await ui.get("/jobs/table")).text
        assert f'data-job-id="{job_id}"' in table and "ui-made" in table
        assert f'data-job-id="{job_id}"' not in (await ui.get("/jobs/table?state=Completed")).text
        page = await ui.get(f"/jobs/{job_id}")
        assert page.status_code == 200 and "busybox" in page.text
        for tab in ("overview", "history", "executions", "logs", "inspect"):
            assert (await ui.get(f"/jobs/{job_id}/tab/{tab}")).status_code == 200, tab


async def test_a_refused_spec_lists_its_field_errors_and_stores_nothing(orch: Orchestrator) -> None:
    async with ui_client(orch) as ui:
        bad = await submit(ui, "Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n      Params: {}\n")
        assert bad.status_code == 200 and "HX-Redirect" not in bad.headers
        assert "The job was not submitted" in bad.text and "Image" in bad.text, bad.text
        garbage = await submit(ui, "Type: [unclosed")
        assert "failed to parse the job file as YAML" in garbage.text
        listed = await submit(ui, "- just\n- a list\n")
        assert "must hold a mapping of job fields" in listed.text
        assert "No jobs" in (await ui.get("/jobs/table")).text


@pytest.mark.parametrize(("headers", "why"), [({}, "no HX-Request"),
                                             ({**HTMX, "Origin": "https://evil.example"}, "cross-origin"),
                                             ({**HTMX, "Origin": "null"}, "opaque origin")])
async def test_changes_only_from_the_uis_own_pages(orch: Orchestrator, headers: dict[str, str],
                                                    why: str) -> None:
    async with ui_client(orch) as ui:
        resp = await ui.post("/submit", content=b"spec=x", headers=headers)
        assert resp.status_code == 403 and why in resp.text, resp.text
        assert "No jobs" in (await ui.get("/jobs/table")).text


async def test_an_api_error_reaches_the_user_not_a_500(orch: Orchestrator) -> None:
    async with ui_client(orch) as ui:
        page = await ui.get("/jobs/j-nope")
        assert page.status_code == 404 and "job not found" in page.text
        fragment = await ui.get("/jobs/j-nope/header", headers=HTMX)
        assert fragment.status_code == 200 and fragment.headers["HX-Retarget"] == "#messages"
        assert "job not found" in fragment.text
        assert (await ui.get("/jobs?state=Sleeping")).status_code == 400


async def test_a_guarded_api_sends_the_browser_to_log_in_and_back(orch: Orchestrator) -> None:
    users = [{"Alias": "ops", "APIKey": API_KEY, "Capabilities": [{"Actions": ["*"]}]}]
    async with ui_client(orch, users) as ui:
        first = await ui.get("/nodes", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/nodes"
        polled = await ui.get("/jobs/table", headers={**HTMX, "HX-Current-URL": "http://ui.test/jobs?state=Running"})
        assert polled.headers["HX-Redirect"] == "/login?next=/jobs"
        form = {"Content-Type": "application/x-www-form-urlencoded", **HTMX}
        wrong = await ui.post("/login", content=b"api_key=not-the-key-00000000000&next=/nodes", headers=form)
        assert "invalid API key" in wrong.text and COOKIE not in wrong.cookies
        good = await ui.post("/login", content=f"api_key={API_KEY}&next=/nodes".encode(), headers=form)
        assert good.headers["HX-Redirect"] == "/nodes"
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and API_KEY not in cookie
        assert (await ui.get("/nodes")).status_code == 200  # the session cookie carries on
        assert (await ui.post("/logout", headers=HTMX)).headers["HX-Redirect"] == "/login"
        assert (await ui.get("/nodes", follow_redirects=False)).status_code == 303
        elsewhere = await ui.post("/login", content=f"api_key={API_KEY}&next=//evil.example/x".encode(), headers=form)
        assert elsewhere.headers["HX-Redirect"] == "/jobs"  # never an open redirect


def test_sessions_end_after_idle_time_and_at_logout() -> None:
    now = [0.0]
    table = Sessions(idle_s=10, clock=lambda: now[0])
    sid = table.create("Bearer k")
    now[0] = 9
    assert table.authorization(sid) == "Bearer k"
    now[0] = 18  # used at 9: still fresh
    assert table.authorization(sid) == "Bearer k"
    now[0] = 29
    assert table.authorization(sid) == ""
    other = table.create("Basic " + base64.b64encode(b"a:b").decode())
    table.end(other)
    assert table.authorization(other) == "" and table.authorization(None) == ""


def test_formatting_rules() -> None:
    second = 1_000_000_000
    assert render.short_id("j-a6509aba-4264-4bda-b4cd-509ef26e7167") == "j-a6509aba"
    assert render.short_id("my-node") == "my-node"
    assert render.ago(100 * second, now_ns=175 * second) == "1m ago"
    assert render.ago(0) == ""
    assert render.duration(10 * second, 75 * second) == "1m 5s" and render.duration(5, 5) == "0s"
    assert render.execution_state(9) == "Completed" and render.execution_state("x") == "x"
    assert render.percent(1, 4) == 25 and render.percent(1, 0) == 0 and render.percent(9, 4) == 100


@pytest.mark.parametrize(("listen", "expected"), [("0.0.0.0:8438", ("0.0.0.0", 8438)), ("[::1]:9000", ("::1", 9000)),
                                                  (":8438", ("0.0.0.0", 8438))])
def test_listen_addresses(listen: str, expected: tuple[str, int]) -> None:
    assert split_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8438", "host:port", "h:70000", ""])
def test_bad_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ConfigurationError, match=r"invalid WebUI\.Listen"):
        split_listen(listen)


def test_the_ui_binds_like_the_api() -> None:
    assert web_ui_binding("0.0.0.0", host_is_set=False, enforced=False).host == LOOPBACK
    exposed = web_ui_binding("0.0.0.0", host_is_set=True, enforced=False)
    assert exposed.host == "0.0.0.0" and exposed.warning and "without authentication" in exposed.message
    assert web_ui_binding("0.0.0.0", host_is_set=False, enforced=True).host == "0.0.0.0"


async def test_a_nodes_page_lists_its_executions_and_acts_on_it(orch: Orchestrator) -> None:
    from factories import make_execution, make_job, make_node_info

    info = make_node_info()
    assert orch.nodes.handshake(info).accepted
    job = make_job(name="ran-here")
    await orch.store.create_job(job, [])
    await orch.store.create_execution(make_execution(job, node_id=info.node_id), [])
    async with ui_client(orch) as ui:
        page = await ui.get(f"/nodes/{info.node_id}")
        assert page.status_code == 200 and f'href="/jobs/{job.id}"' in page.text, page.text[-2000:]
        drained = await ui.post(f"/nodes/{info.node_id}/drain", headers={**HTMX, "Origin": "http://ui.test"})
        assert drained.status_code == 200 and "Stop draining" in drained.text, drained.text
        unknown = await ui.post(f"/nodes/{info.node_id}/explode", headers={**HTMX, "Origin": "http://ui.test"})
        assert "unknown node action" in unknown.text and unknown.headers["HX-Retarget"] == "#messages"
