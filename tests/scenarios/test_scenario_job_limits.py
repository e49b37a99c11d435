"""Job spec bounds through the real CLI and the real HTTP API: the same answer on both sides."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

HUGE = 10**30
COUNT_LIMIT = f"Count: {HUGE} exceeds the limit of 1000 (JobAdmissionControl.Limits.MaxCount)"


def noop_job(**fields: Any) -> dict[str, Any]:
    return {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}], **fields}


def run_validate(bacalhau_bin: Path, path: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BACALHAU_DIR": str(data_dir)}
    return subprocess.run([str(bacalhau_bin), *args, "job", "validate", str(path)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_job_validate_refuses_a_count_beyond_the_limit_naming_it(bacalhau_bin: Path, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(f"Type: batch\nCount: {HUGE}\nTasks:\n  - Name: main\n    Engine:\n      Type: noop\n")
    result = run_validate(bacalhau_bin, path, tmp_path / "home")
    assert result.returncode != 0, result.stdout
    assert COUNT_LIMIT in result.stderr, result.stderr


def test_job_validate_follows_the_configured_limit(bacalhau_bin: Path, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("Type: batch\nCount: 3\nTasks:\n  - Name: main\n    Engine:\n      Type: noop\n")
    home = tmp_path / "home"
    assert run_validate(bacalhau_bin, path, home).returncode == 0
    result = run_validate(bacalhau_bin, path, home, "-c", "JobAdmissionControl.Limits.MaxCount=2")
    assert result.returncode != 0
    assert "Count: 3 exceeds the limit of 2 (JobAdmissionControl.Limits.MaxCount)" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (noop_job(Count=10**12), "Count: 1000000000000 exceeds the limit of 1000 (JobAdmissionControl.Limits.MaxCount)"),
        (noop_job(Tasks=[{"Name": "main", "Engine": {"Type": "noop"}, "Timeouts": {"ExecutionTimeout": 1e20}}]),
         "Tasks[0].Timeouts.ExecutionTimeout: 100000000000000000000s exceeds the limit of 315360000s"
         " (JobAdmissionControl.Limits.MaxExecutionTimeout)"),
    ],
)
def test_put_job_beyond_a_limit_is_a_400_naming_field_value_and_limit(
    shared_node: BacalhauNode, job: dict[str, Any], expected: str
) -> None:
    with shared_node.http() as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": job})
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert body["Status"] == 400 and body["Code"] == "ValidationError", body
        assert expected in body["Message"], body
        # Nothing was stored and the node answers as before.
        assert http.get("/api/v1/agent/alive").status_code == 200
        listed = http.get("/api/v1/orchestrator/jobs").json()
        assert not any(j.get("Count") == HUGE for j in listed.get("Items") or []), listed


def test_the_server_applies_its_configured_limits(serve: Any) -> None:
    node: BacalhauNode = serve(extra_config=["JobAdmissionControl.Limits.MaxCount=2"])
    with httpx.Client(base_url=node.url, timeout=10) as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": noop_job(Count=3)})
    assert resp.status_code == 400, resp.text
    assert "Count: 3 exceeds the limit of 2 (JobAdmissionControl.Limits.MaxCount)" in resp.json()["Message"]


@pytest.mark.parametrize("field", ["Count", "Priority"])
def test_put_job_with_a_number_beyond_int64_is_a_400(shared_node: BacalhauNode, field: str) -> None:
    # Refused by the API's body parser already (as Go's decoder refuses it), before validation.
    with shared_node.http() as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": noop_job(**{field: HUGE})})
        assert resp.status_code == 400, resp.text
        assert str(HUGE) in resp.json()["Message"]
        assert http.get("/api/v1/agent/alive").status_code == 200
