"""The official `bacalhau-sdk` (1.4.2), unchanged, against a real `bacalhau serve`: a wasm job and a docker
job built from the client's own model classes, read back with every `Jobs()` call, and a job stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from official_clients import ClientRunner

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

EXEC_COMPLETED, EXEC_CANCELLED, DESIRED_STOPPED = 9, 11, 2


def check_lifecycle(facts: dict[str, str], node: BacalhauNode, engine: str, stdout: str) -> None:
    assert facts["host"] == f"http://127.0.0.1:{node.api_port}", facts
    assert facts["put_type"] == "ApiPutJobResponse" and facts["job_id"].startswith("j-"), facts
    assert facts["evaluation_id"], facts
    assert facts["get_type"] == "ApiGetJobResponse", facts
    assert facts["state"] == "Completed", facts
    assert facts["job_type"] == "batch" and facts["job_namespace"] == "default", facts
    assert facts["engine"] == engine, facts
    assert facts["create_time_is_int"] == "true", facts
    assert json.loads(facts["labels"]) == {"client": "bacalhau-sdk"}, facts
    assert int(facts["get_include_executions"]) == 1 and int(facts["get_include_history"]) >= 1, facts
    assert facts["list_type"] == "ApiListJobsResponse" and facts["list_has_job"] == "true", facts
    assert facts["executions_type"] == "ApiListJobExecutionsResponse" and facts["executions"] == "1", facts
    assert facts["execution_id"].startswith("e-") and facts["execution_node"], facts
    assert facts["execution_compute_state"] == str(EXEC_COMPLETED), facts
    assert facts["exit_code"] == "0", facts
    assert facts["stdout"] == stdout, facts
    assert json.loads(facts["allocated_tasks"]) == ["main"], facts
    assert facts["history_type"] == "ApiListJobHistoryResponse", facts
    assert int(facts["history_execution_events"]) >= 1, facts
    assert json.loads(facts["history_levels"]) == ["ExecutionLevel"], facts
    assert int(facts["history_all_events"]) > int(facts["history_execution_events"]), facts
    assert "Submission" in json.loads(facts["history_topics"]), facts
    assert facts["results_type"] == "ApiListJobResultsResponse" and facts["results"] == "1", facts
    assert facts["result_publisher"], facts


def test_sdk_runs_a_wasm_job_from_its_own_models(run_client: ClientRunner, node: BacalhauNode, wasm_modules: dict[str, Path]) -> None:
    run = run_client("sdk_job_lifecycle.py", "wasm", str(wasm_modules["hello"]), "Lisbon")
    check_lifecycle(run.facts, node, "wasm", "hello from wasm\\narg1=Lisbon\\n")


def test_sdk_runs_a_docker_job_from_its_own_models(
    run_client: ClientRunner, node: BacalhauNode, busybox_image: str
) -> None:
    run = run_client("sdk_job_lifecycle.py", "docker", busybox_image, "echo hi from the sdk")
    check_lifecycle(run.facts, node, "docker", "hi from the sdk\\n")


def test_sdk_stops_a_running_job(run_client: ClientRunner, wasm_modules: dict[str, Path]) -> None:
    run = run_client("sdk_stop_job.py", str(wasm_modules["loop"]))
    facts = run.facts
    assert facts["running_before_stop"] == "true", run.describe()
    assert facts["stop_type"] == "ApiStopJobResponse" and facts["stop_evaluation_id"], run.describe()
    assert facts["state"] == "Stopped", run.describe()
    assert json.loads(facts["execution_desired_states"]) == [DESIRED_STOPPED], run.describe()
    assert EXEC_CANCELLED in json.loads(facts["execution_compute_states"]), run.describe()
    # the SDK's default `reason=None` (sent literally) on an already stopped job: a no-op success
    assert facts["stop_again_type"] == "ApiStopJobResponse", run.describe()
    assert facts["stop_again_evaluation_id"] == "", run.describe()
    assert any("stop" in message.lower() for message in json.loads(facts["history_messages"])), run.describe()
