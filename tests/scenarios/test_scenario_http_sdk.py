"""Raw HTTP the way scripts and the official Python SDK use it: the OpenAPI document, the SDK's literal
query parameters (`reason=None`, `reverse=False`), paging with NextToken, and 404s on sub-routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scenario_jobs import JobWatch, wasm_job

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

JOBS = "/api/v1/orchestrator/jobs"
UNKNOWN_JOB = "j-00000000-0000-4000-8000-000000000000"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def http(shared_node: BacalhauNode) -> Iterator[httpx.Client]:
    with shared_node.http() as client:
        yield client


@pytest.fixture(scope="module")
def three_jobs(shared_watch: JobWatch, wasm_modules: dict[str, Path]) -> list[str]:
    """Three completed jobs, oldest first."""
    ids = []
    for n in range(3):
        job_id = shared_watch.submit(wasm_job(wasm_modules["hello"], args=[f"page{n}"]))
        shared_watch.wait_state(job_id, "Completed")
        ids.append(job_id)
    return ids


def test_openapi_document_lists_the_orchestrator_job_routes(http: httpx.Client) -> None:
    resp = http.get("/api/v1/openapi.json")
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    doc = resp.json()
    assert str(doc.get("openapi", "")).startswith("3."), {k: doc[k] for k in doc if k != "paths"}
    assert doc["info"]["title"] and doc["info"]["version"], doc["info"]
    paths: dict[str, dict[str, Any]] = doc["paths"]
    for route, method in [
        (JOBS, "get"),
        (JOBS, "put"),
        (f"{JOBS}/{{job_id}}", "get"),
        (f"{JOBS}/{{job_id}}", "delete"),
        (f"{JOBS}/{{job_id}}/executions", "get"),
        (f"{JOBS}/{{job_id}}/history", "get"),
        (f"{JOBS}/{{job_id}}/results", "get"),
        (f"{JOBS}/{{job_id}}/versions", "get"),
        (f"{JOBS}/{{job_id}}/rerun", "put"),
    ]:
        assert method in paths.get(route, {}), f"{method.upper()} {route} missing; paths: {sorted(paths)}"
    for route, operations in paths.items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                assert operation.get("responses"), f"{method.upper()} {route} has no responses"


def test_the_sdks_literal_query_parameters_are_accepted(http: httpx.Client, three_jobs: list[str]) -> None:
    job_id = three_jobs[0]
    listed = {}
    for reverse in ("False", "True"):
        resp = http.get(JOBS, params={"limit": 5, "next_token": "", "reverse": reverse, "order_by": "created_at"})
        assert resp.status_code == 200, resp.text
        listed[reverse] = [job["ID"] for job in resp.json()["Items"]]
    assert set(three_jobs) <= set(listed["False"]) | set(listed["True"]), listed
    full = http.get(JOBS, params={"limit": 100, "reverse": "False"}).json()["Items"]
    full_reversed = http.get(JOBS, params={"limit": 100, "reverse": "True"}).json()["Items"]
    assert [j["ID"] for j in full] == [j["ID"] for j in reversed(full_reversed)], (full, full_reversed)

    got = http.get(f"{JOBS}/{job_id}", params={"include": "", "limit": 10})
    assert got.status_code == 200 and got.json()["Job"]["ID"] == job_id, got.text
    executions = http.get(
        f"{JOBS}/{job_id}/executions",
        params={"namespace": "", "limit": 5, "next_token": "", "reverse": "False", "order_by": ""},
    )
    assert executions.status_code == 200 and len(executions.json()["Items"]) == 1, executions.text
    history = http.get(f"{JOBS}/{job_id}/history", params={"event_type": "execution", "execution_id": "", "node_id": ""})
    assert history.status_code == 200, history.text
    items = history.json()["Items"]
    assert items and all(item["Type"] == "ExecutionLevel" for item in items), items


def test_delete_with_reason_none_and_an_empty_body_stops_a_running_job(
    shared_node: BacalhauNode, shared_watch: JobWatch, http: httpx.Client, wasm_modules: dict[str, Path]
) -> None:
    job_id = shared_watch.submit(wasm_job(wasm_modules["loop"]))
    shared_watch.wait_state(job_id, "Running")
    resp = http.request(
        "DELETE", f"{JOBS}/{job_id}", params={"reason": "None"}, content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json().get("EvaluationID"), resp.json()
    shared_watch.wait_state(job_id, "Stopped", timeout_s=30)
    status = shared_node.ok("job", "describe", job_id, "--output", "json").stdout
    assert '"Stopped"' in status, status


def test_list_jobs_pages_with_next_token(http: httpx.Client, three_jobs: list[str]) -> None:
    first = http.get(JOBS, params={"limit": 1})
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["Items"]) == 1 and body["NextToken"], body
    seen = [body["Items"][0]["ID"]]
    token = body["NextToken"]
    for _ in range(100):  # bounded: there are far fewer jobs than that on this node
        if not token:
            break
        page = http.get(JOBS, params={"next_token": token})
        assert page.status_code == 200, page.text
        page_body = page.json()
        assert len(page_body["Items"]) <= 1, page_body  # the token carries limit=1
        seen += [job["ID"] for job in page_body["Items"]]
        token = page_body["NextToken"]
    assert not token, "paging never ended"
    assert len(seen) == len(set(seen)), f"a job came back twice: {seen}"
    everything = [job["ID"] for job in http.get(JOBS).json()["Items"]]
    assert sorted(seen) == sorted(everything), (seen, everything)
    assert set(three_jobs) <= set(seen)


def test_executions_of_an_unknown_job_is_404_with_bacalhaus_error_body(http: httpx.Client) -> None:
    for route in (f"{JOBS}/{UNKNOWN_JOB}/executions", f"{JOBS}/{UNKNOWN_JOB}/history"):
        resp = http.get(route)
        assert resp.status_code == 404, f"GET {route} -> {resp.status_code}: {resp.text}"
        assert resp.headers["content-type"].startswith("application/json"), resp.headers
        body = resp.json()
        assert body["Status"] == 404 and body["Code"] == "NotFound", body
        assert UNKNOWN_JOB in body["Message"] and body["Component"], body
