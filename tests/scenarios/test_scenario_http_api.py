"""Raw HTTP against `bacalhau serve`: Bacalhau's wire formats, error bodies and the websocket log stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from scenario_jobs import EXEC_COMPLETED, JOB_ID_RE, JobWatch, wasm_job
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

JOB_STATE_NAMES = {"Undefined", "Pending", "Queued", "Running", "Completed", "Failed", "Stopped"}
ONE_SECOND_NS = 1_000_000_000
YEAR_2020_NS = 1_577_836_800 * ONE_SECOND_NS


@dataclass(frozen=True)
class Submitted:
    job_id: str
    evaluation_id: str


@pytest.fixture(scope="module")
def http(shared_node: BacalhauNode) -> Iterator[httpx.Client]:
    with shared_node.http() as client:
        yield client


@pytest.fixture(scope="module")
def completed(http: httpx.Client, shared_watch: JobWatch, wasm_modules: dict[str, Path]) -> Submitted:
    """A hello job submitted over raw HTTP and completed."""
    resp = http.put("/api/v1/orchestrator/jobs", json={"Job": wasm_job(wasm_modules["hello"], args=["raw"])})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    shared_watch.wait_state(body["JobID"], "Completed")
    return Submitted(job_id=body["JobID"], evaluation_id=body["EvaluationID"])


def assert_error_body(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Bacalhau's error body: {Status, Message, RequestID, Code, Component, Hint?, Details?}."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:2000]}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body: dict[str, Any] = resp.json()
    for key in ("Status", "Message", "Code", "Component"):
        assert key in body, body
    assert body["Status"] == status, body
    assert body["Message"], body
    if code is not None:
        assert body["Code"] == code, body
    return body


def test_put_job_answers_job_and_evaluation_ids(completed: Submitted) -> None:
    assert JOB_ID_RE.fullmatch(completed.job_id), completed
    assert completed.evaluation_id, completed


def test_post_jobs_is_accepted_too(http: httpx.Client, shared_watch: JobWatch, wasm_modules: dict[str, Path]) -> None:
    resp = http.post("/api/v1/orchestrator/jobs", json={"Job": wasm_job(wasm_modules["hello"])})
    assert resp.status_code == 200, resp.text
    shared_watch.wait_state(resp.json()["JobID"], "Completed")


def test_job_state_is_a_name_and_times_are_integer_nanoseconds(http: httpx.Client, completed: Submitted) -> None:
    resp = http.get(f"/api/v1/orchestrator/jobs/{completed.job_id}")
    assert resp.status_code == 200, resp.text
    job = resp.json()["Job"]
    assert job["State"]["StateType"] == "Completed"
    assert job["ID"] == completed.job_id and job["Name"] == completed.job_id and job["Namespace"] == "default"
    assert job["Count"] == 1 and job["Version"] == 1
    for key in ("CreateTime", "ModifyTime"):
        assert isinstance(job[key], int) and job[key] > YEAR_2020_NS, (key, job[key])
    resources = job["Tasks"][0]["Resources"]
    assert resources["CPU"] == "500m" and resources["Memory"].lower() == "512mb", resources
    listed = http.get("/api/v1/orchestrator/jobs").json()
    assert {"Items", "NextToken"} <= set(listed), listed
    assert all(item["State"]["StateType"] in JOB_STATE_NAMES for item in listed["Items"]), listed


def test_get_job_includes_executions_and_history_on_request(http: httpx.Client, completed: Submitted) -> None:
    resp = http.get(f"/api/v1/orchestrator/jobs/{completed.job_id}", params={"include": "executions,history"})
    body = resp.json()
    assert body["Executions"]["Items"] and body["History"]["Items"], body


def test_execution_states_are_integers(http: httpx.Client, completed: Submitted) -> None:
    body = http.get(f"/api/v1/orchestrator/jobs/{completed.job_id}/executions").json()
    assert {"Items", "NextToken"} <= set(body), body
    execution = body["Items"][0]
    assert execution["ComputeState"]["StateType"] == EXEC_COMPLETED, execution
    assert isinstance(execution["DesiredState"]["StateType"], int), execution
    assert isinstance(execution["CreateTime"], int) and execution["CreateTime"] > YEAR_2020_NS
    run = execution["RunOutput"]
    assert "hello from wasm" in run["Stdout"] and "stderr" in run and run["ExitCode"] == 0, run


def test_history_levels_are_names_and_execution_states_integers(http: httpx.Client, completed: Submitted) -> None:
    items = http.get(f"/api/v1/orchestrator/jobs/{completed.job_id}/history").json()["Items"]
    assert items, items
    for item in items:
        assert item["Type"] in ("JobLevel", "ExecutionLevel"), item
        if item.get("JobState"):
            assert item["JobState"]["New"] in JOB_STATE_NAMES, item
        if item.get("ExecutionState"):
            assert isinstance(item["ExecutionState"]["New"], int), item
        assert item["Event"]["Message"] is not None and item["Event"]["Topic"], item


def test_unknown_job_is_404_with_bacalhaus_error_body(http: httpx.Client) -> None:
    job_id = "j-00000000-0000-4000-8000-000000000000"
    body = assert_error_body(http.get(f"/api/v1/orchestrator/jobs/{job_id}"), 404, "NotFound")
    assert "not found" in body["Message"].lower() and job_id in body["Message"], body


def test_unknown_route_is_404_with_error_body(http: httpx.Client) -> None:
    assert_error_body(http.get("/api/v1/no/such/route"), 404, "NotFound")


def test_malformed_json_is_400(http: httpx.Client) -> None:
    resp = http.put(
        "/api/v1/orchestrator/jobs", content=b'{"Job": {"Type": "batch",', headers={"Content-Type": "application/json"}
    )
    assert_error_body(resp, 400)


def test_an_invalid_job_is_400_listing_the_problem(http: httpx.Client) -> None:
    job = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm", "Params": {}}}]}
    body = assert_error_body(http.put("/api/v1/orchestrator/jobs", json={"Job": job}), 400)
    assert "EntryModule" in body["Message"], body


def test_an_oversized_body_is_refused(http: httpx.Client) -> None:
    blob = "x" * (11 * 1024 * 1024)
    payload = json.dumps({"Job": {"Type": "batch", "Name": "big", "Meta": {"blob": blob}}}).encode()
    resp = http.put("/api/v1/orchestrator/jobs", content=payload, headers={"Content-Type": "application/json"})
    assert resp.status_code in (400, 413), f"{resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert body["Status"] == resp.status_code and body["Message"], body


def test_nodes_response_carries_both_spellings(http: httpx.Client) -> None:
    body = http.get("/api/v1/orchestrator/nodes").json()
    assert "Nodes" in body and "nodes" in body and "NextToken" in body, body
    assert body["Nodes"] == body["nodes"] and len(body["Nodes"]) == 1, body
    node = body["Nodes"][0]
    assert node["Membership"] == "APPROVED" and node["ConnectionState"]["Status"] == "CONNECTED", node
    one = http.get(f"/api/v1/orchestrator/nodes/{node['Info']['NodeID']}").json()
    assert one["Node"]["Info"]["NodeID"] == node["Info"]["NodeID"] and one["node"] == one["Node"], one


def test_agent_routes(http: httpx.Client, shared_node: BacalhauNode) -> None:
    assert http.get("/api/v1/agent/alive").json() == {"Status": "OK"}
    assert http.get("/api/v1/agent/version").json().get("GitVersion")
    assert http.get("/api/v1/agent/node").json().get("NodeID")
    config = http.get("/api/v1/agent/config").json()
    assert config["config"]["API"]["Port"] == shared_node.api_port, config


def test_job_results_list_the_local_publisher_url(http: httpx.Client, completed: Submitted) -> None:
    body = http.get(f"/api/v1/orchestrator/jobs/{completed.job_id}/results").json()
    assert len(body["Items"]) == 1, body
    assert body["Items"][0]["Type"], body


def test_websocket_log_stream_carries_stdout_frames(shared_node: BacalhauNode, completed: Submitted) -> None:
    url = f"ws://127.0.0.1:{shared_node.api_port}/api/v1/orchestrator/jobs/{completed.job_id}/logs"
    frames: list[dict[str, Any]] = []
    with connect(url, open_timeout=10, close_timeout=5) as ws:
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=30)))
        except ConnectionClosed:
            pass
    assert frames, "no frame on the log stream"
    assert all("value" in frame or "error" in frame for frame in frames), frames
    lines = [f["value"] for f in frames if f.get("value")]
    assert any(v["Type"] == 1 and "hello from wasm" in v["Line"] for v in lines), frames
