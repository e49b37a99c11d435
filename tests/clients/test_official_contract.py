"""Contract: the JSON of our routes, from a real node that ran a completed, a failed, an unschedulable and a
stopped job, checked against bacalhau_apiclient's response models (swagger_types / attribute_map, walked
recursively) and deserialised with the client's own `ApiClient().deserialize`, inside `.venv-clients`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from official_clients import run_client_script
from scenario_jobs import EXEC_BID_ACCEPTED, EXEC_RUNNING, JobWatch, wasm_job

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

JOBS = "/api/v1/orchestrator/jobs"

# Keys the client's models know that are absent from our JSON, each for a reason. Anything else missing fails.
INTENTIONALLY_OMITTED = {
    "JobHistory.NewRevision": "not a JobHistory field in Bacalhau v1.9's Go server (an older API shape); the "
    "order of events is SeqNum, which we send",
    "JobHistory.Comment": "not a JobHistory field in Bacalhau v1.9 (an older API shape); the text is Event.Message",
}

# Fields whose JSON type differs from the client's model, on purpose: Bacalhau's Go server sends them this way
# (MarshalText enums), the generated client was made from a swagger.json that is wrong about them. The client
# does not crash on them (a string where an object is expected deserialises to an empty model), but cannot
# read their values: NodeState.membership.membership and .connection.connection are None.
KNOWN_MISMATCHES = {
    "NodeState.Membership expected object NodeMembershipState, got str": "Bacalhau sends \"APPROVED\" etc.",
    "NodeState.Connection expected object NodeConnectionState, got str": "Bacalhau sends \"CONNECTED\" etc.",
}


def body(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    resp = http.request(method, path, **kwargs)
    assert 200 <= resp.status_code < 300, f"{method} {path} -> {resp.status_code}: {resp.text}"
    return resp.json()


def test_every_client_response_model_accepts_our_json(
    clients_python: Path, node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    entries: list[dict[str, Any]] = []

    def add(route: str, model: str, payload: Any) -> None:
        entries.append({"route": route, "model": model, "body": payload})

    with node.http(timeout_s=15.0) as http:
        def submit(job: dict[str, Any], label: str) -> str:
            put = body(http, "PUT", JOBS, json={"Job": job})
            add(f"PUT {JOBS} ({label})", "ApiPutJobResponse", put)
            job_id: str = put["JobID"]
            return job_id

        rich = wasm_job(wasm_modules["hello"], args=["contract"], name="contract-rich", timeouts={"ExecutionTimeout": 60})
        rich["Labels"] = {"suite": "contract"}
        rich["Meta"] = {"owner": "tests"}
        task = rich["Tasks"][0]
        task["Env"] = {"GREETING": "hi"}
        task["Meta"] = {"kind": "rich"}
        task["Resources"] = {"CPU": "250m", "Memory": "64Mb"}
        task["ResultPaths"] = [{"Name": "outputs", "Path": "/outputs"}]
        task["InputSources"][0]["Alias"] = "module"
        completed = submit(rich, "completed")
        failed = submit(wasm_job(wasm_modules["trap"], name="contract-trap"), "failed")
        unschedulable = wasm_job(wasm_modules["hello"], name="contract-unschedulable")
        unschedulable["Constraints"] = [{"Key": "no-such-label", "Operator": "exists"}]
        unschedulable_id = submit(unschedulable, "unschedulable")
        stopped = submit(wasm_job(wasm_modules["loop"], name="contract-stopped"), "stopped")

        watch.wait_state(completed, "Completed")
        watch.wait_state(failed, "Failed")
        watch.wait_state(unschedulable_id, "Failed")
        watch.wait_execution(stopped, EXEC_BID_ACCEPTED, EXEC_RUNNING)
        add(f"DELETE {JOBS}/<id>", "ApiStopJobResponse", body(http, "DELETE", f"{JOBS}/{stopped}", params={"reason": "None"}))
        watch.wait_state(stopped, "Stopped")

        add(f"GET {JOBS}", "ApiListJobsResponse",
            body(http, "GET", JOBS, params={"limit": 5, "next_token": "", "reverse": "False", "order_by": "created_at"}))
        for label, job_id in [("completed", completed), ("failed", failed), ("unschedulable", unschedulable_id), ("stopped", stopped)]:
            add(f"GET {JOBS}/<{label}>", "ApiGetJobResponse",
                body(http, "GET", f"{JOBS}/{job_id}", params={"include": "executions,history", "limit": 10}))
            add(f"GET {JOBS}/<{label}>/executions", "ApiListJobExecutionsResponse",
                body(http, "GET", f"{JOBS}/{job_id}/executions",
                     params={"namespace": "", "limit": 5, "next_token": "", "reverse": "False", "order_by": ""}))
            add(f"GET {JOBS}/<{label}>/history", "ApiListJobHistoryResponse",
                body(http, "GET", f"{JOBS}/{job_id}/history", params={"event_type": "all", "execution_id": "", "node_id": ""}))
            add(f"GET {JOBS}/<{label}>/results", "ApiListJobResultsResponse", body(http, "GET", f"{JOBS}/{job_id}/results"))
        nodes = body(http, "GET", "/api/v1/orchestrator/nodes")
        add("GET /api/v1/orchestrator/nodes", "ApiListNodesResponse", nodes)
        node_id = (nodes.get("nodes") or nodes.get("Nodes"))[0]["Info"]["NodeID"]
        add("GET /api/v1/orchestrator/nodes/<id>", "ApiGetNodeResponse", body(http, "GET", f"/api/v1/orchestrator/nodes/{node_id}"))
        add("GET /api/v1/agent/version", "ApiGetVersionResponse", body(http, "GET", "/api/v1/agent/version"))
        add("GET /api/v1/agent/node", "NodeInfo", body(http, "GET", "/api/v1/agent/node"))

    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(entries, indent=1))
    client_dir = tmp_path / "client-dir"
    client_dir.mkdir()
    run = run_client_script(clients_python, "contract_check.py", str(bodies), api_port=node.api_port, bacalhau_dir=client_dir)
    checked = run.all("checked")
    assert len(checked) == len(entries) and len(run.all("deserialize_ok")) == len(entries), run.describe()
    crashes = [line for line in run.stdout.splitlines() if line.startswith("deserialize_error=")]
    assert not crashes, "\n".join(crashes) + f"\n(bodies in {bodies})"
    mismatches = sorted(set(run.all("mismatch")) - set(KNOWN_MISMATCHES))
    type_errors = [line for line in run.stdout.splitlines() if line.startswith("type_error=")]
    assert not mismatches, "\n".join(mismatches + type_errors) + f"\n(bodies in {bodies})"
    unexpected = sorted(set(run.all("missing")) - set(INTENTIONALLY_OMITTED))
    assert not unexpected, f"keys the client knows but our JSON lacks: {unexpected}\n(bodies in {bodies})\n{run.describe()}"
    # enums reach the caller raw (the client's enum models have no fields): job states as names, execution
    # states as integers, as Bacalhau sends them
    passthrough = set(run.all("passthrough"))
    for seen in ("AllOfStateJobStateTypeStateType str", "AllOfStateExecutionStateTypeStateType int",
                 "AllOfStateExecutionDesiredStateTypeStateType int", "JobHistoryType str", "NodeType str"):
        assert seen in passthrough, f"{seen!r} not among {sorted(passthrough)}"
