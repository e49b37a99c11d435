"""The web UI in a real browser (headless Chromium through Playwright) against a real node running real
docker jobs: what a user sees change without reloading, the logs while a job still writes them, Stop,
the submit form with a good and a bad job file, approving a pending node, and every page at desktop
and phone width (screenshots in .artifacts/webui/).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cluster_env import Cluster
from serve_node import BacalhauNode, NodePool, find_free_port
from webui_env import PHONE, BrowserPage, chromium, ui, wait_for_ui

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario
__all__ = ["chromium", "ui"]  # fixtures, imported to be found by pytest
JOBS = "/api/v1/orchestrator/jobs"


def ui_config(port: int) -> list[str]:
    """The settings of a node serving the web UI on 127.0.0.1:port."""
    return ["WebUI.Enabled=true", f"WebUI.Listen=127.0.0.1:{port}", "Engines.Types.Docker.AllowedImages=bacalhau-test/*"]


@pytest.fixture(scope="module")
def node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient,
         busybox_image: str) -> Iterator[BacalhauNode]:
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    port = find_free_port()
    try:
        started = pool(extra_config=ui_config(port))
        wait_for_ui(port)
        started.ui_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        yield started
    finally:
        pool.close()


def url(node: BacalhauNode, path: str) -> str:
    return f"{node.ui_url}{path}"  # type: ignore[attr-defined]


def submit(node: BacalhauNode, image: str, script: str, name: str) -> str:
    """A docker job running `sh -c script`, through the API; its ID."""
    spec = {"Name": name, "Type": "batch", "Count": 1, "Tasks": [{"Name": "main", "Engine": {
        "Type": "docker", "Params": {"Image": image, "Entrypoint": ["sh", "-c", script]}}}]}
    resp = httpx.put(f"{node.url}{JOBS}", json={"Job": spec}, timeout=30)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["JobID"])


def api_state(node: BacalhauNode, job_id: str) -> str:
    return str(httpx.get(f"{node.url}{JOBS}/{job_id}", timeout=30).json()["Job"]["State"]["StateType"])


def wait_api_state(node: BacalhauNode, job_id: str, *states: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while (state := api_state(node, job_id)) not in states:
        assert time.monotonic() < deadline, f"job {job_id} still {state}, not {states}"
        time.sleep(0.2)
    return state


def test_the_jobs_table_lists_a_new_job_and_follows_its_state(node: BacalhauNode, ui: BrowserPage,
                                                              busybox_image: str) -> None:
    page = ui.page
    page.goto(url(node, "/jobs"))
    job_id = submit(node, busybox_image, "sleep 3; echo done", "table-follows")
    row = page.locator(f"tr[data-job-id='{job_id}']")
    row.wait_for()  # appeared without a reload: the table polls
    assert "table-follows" in row.inner_text()
    page.wait_for_function(
        "id => document.querySelector(`tr[data-job-id='${id}'] .state`)?.textContent === 'Completed'", arg=job_id,
        timeout=60_000,
    )
    assert "1/1" in row.inner_text()
    ui.screenshot("jobs")


def test_the_logs_tab_shows_lines_while_the_job_writes_them(node: BacalhauNode, ui: BrowserPage,
                                                            busybox_image: str) -> None:
    job_id = submit(node, busybox_image, "i=1; while [ $i -le 12 ]; do echo line $i; echo oops $i >&2; i=$((i+1)); "
                                         "sleep 0.5; done", "logs-live")
    wait_api_state(node, job_id, "Running")
    page = ui.page
    page.goto(url(node, f"/jobs/{job_id}"))
    page.get_by_role("tab", name="Logs").click()
    page.locator("#log .log.stdout", has_text="line 2").wait_for()
    assert api_state(node, job_id) == "Running", "the first lines must show while the job still runs"
    assert page.locator("#log .log.stderr", has_text="oops 1").count() == 1  # stderr told apart
    page.locator("#log .log.stdout", has_text="line 12").wait_for(timeout=30_000)
    page.locator("#log .log.end").wait_for(timeout=30_000)
    ui.screenshot("job-logs")


def test_stop_stops_a_running_job(node: BacalhauNode, ui: BrowserPage, busybox_image: str) -> None:
    job_id = submit(node, busybox_image, "sleep 300", "to-stop")
    wait_api_state(node, job_id, "Running")
    page = ui.page
    page.goto(url(node, f"/jobs/{job_id}"))
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Stop").click()
    page.locator("#job-state", has_text="Stopped").wait_for(timeout=30_000)
    assert asked and "Stop job to-stop?" in asked[0], asked
    assert api_state(node, job_id) == "Stopped"
    assert page.get_by_role("button", name="Stop").count() == 0


def test_a_pasted_job_file_runs_and_a_wrong_one_shows_its_field_error(node: BacalhauNode, ui: BrowserPage,
                                                                       busybox_image: str) -> None:
    page = ui.page
    page.goto(url(node, "/submit"))
    page.get_by_label("Spec").fill("Type: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n"
                                   "      Params: {}\n")
    page.get_by_role("button", name="Submit").click()
    problem = page.locator("#submit-errors .problems li").first
    problem.wait_for()
    assert "Tasks[0].Engine.Params.Image" in problem.inner_text() or "Image" in problem.inner_text(), problem.inner_text()
    assert page.url.endswith("/submit")
    ui.screenshot("submit-error")

    page.get_by_label("Spec").fill(f"Name: from-the-form\nType: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n"
                                   f"      Type: docker\n      Params:\n        Image: {busybox_image}\n"
                                   "        Parameters: [echo, submitted from the browser]\n")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/jobs/j-"))
    job_id = page.url.rsplit("/", 1)[1]
    page.locator("#job-state", has_text="Completed").wait_for(timeout=60_000)
    assert api_state(node, job_id) == "Completed"


def test_every_page_renders_at_desktop_and_phone_width(node: BacalhauNode, chromium: Any, busybox_image: str) -> None:
    job_id = submit(node, busybox_image, "echo hello", "screenshot-job")
    wait_api_state(node, job_id, "Completed")
    node_id = httpx.get(f"{node.url}/api/v1/orchestrator/nodes", timeout=30).json()["Nodes"][0]["Info"]["NodeID"]
    pages = {"jobs": "/jobs", "job": f"/jobs/{job_id}", "nodes": "/nodes", "node": f"/nodes/{node_id}",
             "submit": "/submit", "overview": "/overview"}
    for width_name, viewport in (("desktop", None), ("phone", PHONE)):
        view = BrowserPage(chromium, viewport) if viewport else BrowserPage(chromium)
        try:
            for name, path in pages.items():
                view.page.goto(url(node, path))
                view.page.locator("main h1").first.wait_for()
                view.screenshot(f"{name}-{width_name}")
                width = view.page.evaluate("document.documentElement.scrollWidth")
                assert width <= view.page.viewport_size["width"] + 1, f"{name} scrolls sideways at {width_name}: {width}"
            for tab in ("History", "Executions", "Inspect"):
                view.page.goto(url(node, f"/jobs/{job_id}"))
                view.page.get_by_role("tab", name=tab).click()
                view.page.locator("[role=tab][aria-selected=true]", has_text=tab).wait_for()
            assert not [e for e in view.errors if "Failed to load resource" not in e], view.errors
        finally:
            view.close()


def test_approve_a_pending_node(bacalhau_bin: Path, tmp_path: Path, ui: BrowserPage) -> None:
    port = find_free_port()
    cluster = Cluster(bacalhau_bin, tmp_path, orchestrator_config=[
        "Orchestrator.NodeManager.ManualApproval=true", "WebUI.Enabled=true", f"WebUI.Listen=127.0.0.1:{port}"])
    try:
        cluster.start()
        wait_for_ui(port)
        cluster.add_compute("worker")
        state = cluster.wait_node("worker", "CONNECTED", membership="PENDING")
        node_id = state["Info"]["NodeID"]
        page = ui.page
        page.goto(f"http://127.0.0.1:{port}/nodes")
        page.locator(f"tr[data-node-id='{node_id}'] .member-pending").wait_for()
        page.goto(f"http://127.0.0.1:{port}/nodes/{node_id}")
        page.get_by_role("button", name="Approve").click()
        page.locator("#node-membership", has_text="APPROVED").wait_for()
        cluster.wait_node("worker", "CONNECTED", membership="APPROVED")
    finally:
        cluster.close()


def test_a_guarded_node_asks_for_a_key_then_shows_its_jobs(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory,
                                                          ui: BrowserPage) -> None:
    key = "browser-key-0123456789-ABCDEFG"
    config = tmp_path_factory.mktemp("guarded") / "config.yaml"
    config.write_text(f"API:\n  Auth:\n    Users:\n      - Alias: ops\n        APIKey: {key}\n"
                      "        Capabilities: [{Actions: ['*']}]\n")
    port = find_free_port()
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        pool(extra_config=[*ui_config(port), str(config)])  # -c takes a config file too
        wait_for_ui(port)
        page = ui.page
        page.goto(f"http://127.0.0.1:{port}/nodes")
        page.wait_for_url(re.compile(r"/login\?next=/nodes"))
        page.get_by_label("API key").fill("not-the-key-000000000000")
        page.get_by_role("button", name="Log in").click()
        page.locator("#login-error .alert").wait_for()
        assert "invalid API key" in page.locator("#login-error").inner_text()
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/nodes$"))
        page.locator("#nodes-table tbody tr").first.wait_for()
        assert "Log out" in page.locator("header").inner_text()
        ui.screenshot("login-then-nodes")
    finally:
        pool.close()
