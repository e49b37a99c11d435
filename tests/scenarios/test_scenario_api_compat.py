"""Bacalhau's behaviour where it is easy to get subtly wrong: `job run --dry-run` diffs, node approval
conflicts and rejection, and the legacy redirects. Each test runs the real CLI against a real node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenario_jobs import JobWatch, items_of, one_job_id, parse_output, wasm_job, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def _named_job(wasm_modules: dict[str, Path], name: str, *args: str) -> dict[str, Any]:
    job = wasm_job(wasm_modules["hello"], args=list(args), name=name)
    assert job["Name"] == name
    return job


def _versions(watch: JobWatch, name: str) -> list[int]:
    return [job["Version"] for job in watch.jobs() if job["Name"] == name]


# -- job run --dry-run ---------------------------------------------------------------------------------


def test_dry_run_of_a_new_name_says_there_is_no_such_job_and_prints_the_spec(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, _named_job(wasm_modules, "dry-new"))
    result = shared_node.ok("job", "run", "--dry-run", str(path))
    assert "Error: failed to fetch Job spec: job name index not found: dry-new:default" in result.stderr, (
        shared_node.describe_result(result)
    )
    assert "Warning: falling back to offline mode..." in result.stderr
    spec = yaml.safe_load(result.stdout)
    assert spec["Name"] == "dry-new" and spec["Tasks"][0]["Engine"]["Type"] == "wasm", result.stdout
    assert _versions(shared_watch, "dry-new") == []


def test_dry_run_of_an_unchanged_job_reports_no_diff_and_submits_nothing(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, _named_job(wasm_modules, "dry-same", "a"))
    job_id = one_job_id(shared_node.ok("job", "run", "--wait=false", "--id-only", str(path)).stdout)
    shared_watch.wait_state(job_id, "Completed")
    result = shared_node.ok("job", "run", "--dry-run", str(path))
    assert "Warning: No diff detected." in result.stderr, shared_node.describe_result(result)
    assert result.stdout == "", shared_node.describe_result(result)
    assert _versions(shared_watch, "dry-same") == [1]
    assert shared_watch.state(job_id) == "Completed"


def test_dry_run_of_a_changed_job_shows_the_change_and_submits_nothing(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    first = write_job_file(tmp_path, _named_job(wasm_modules, "dry-changed", "old-arg"), stem="v1")
    job_id = one_job_id(shared_node.ok("job", "run", "--wait=false", "--id-only", str(first)).stdout)
    shared_watch.wait_state(job_id, "Completed")
    changed = _named_job(wasm_modules, "dry-changed", "new-arg")
    changed["Labels"] = {"stage": "two"}
    second = write_job_file(tmp_path, changed, stem="v2")

    result = shared_node.ok("job", "run", "--dry-run", str(second))
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"--- stored job {job_id} (version 1)", "+++ submitted spec"], shared_node.describe_result(result)
    removed = [line for line in lines[2:] if line.startswith("-")]
    added = [line for line in lines[2:] if line.startswith("+")]
    assert any("old-arg" in line for line in removed) and any("new-arg" in line for line in added), result.stdout
    assert "+  stage: two" in added, result.stdout
    assert "No diff detected" not in result.stderr
    assert _versions(shared_watch, "dry-changed") == [1]
    assert shared_watch.job(job_id)["Version"] == 1


def test_dry_run_of_an_unnamed_job_explains_that_a_name_is_needed(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    before = len(shared_watch.jobs())
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"]))
    result = shared_node.ok("job", "run", "--dry-run", str(path))
    assert "Error: failed to fetch Job spec: invalid job spec: name is missing" in result.stderr, (
        shared_node.describe_result(result)
    )
    assert yaml.safe_load(result.stdout)["Type"] == "batch"
    assert len(shared_watch.jobs()) == before


# -- node approve / reject -----------------------------------------------------------------------------


def _the_node(node: BacalhauNode) -> dict[str, Any]:
    nodes = items_of(parse_output(node.ok("node", "list", "--output", "json").stdout))
    assert len(nodes) == 1, nodes
    state: dict[str, Any] = nodes[0]
    return state


def test_approving_twice_fails_the_second_time_and_reject_disconnects(
    serve: Callable[..., BacalhauNode],
) -> None:
    node = serve(extra_config=["Orchestrator.NodeManager.ManualApproval=true"])
    node_id = _the_node(node)["Info"]["NodeID"]
    assert _the_node(node)["Membership"] == "PENDING"

    assert node.ok("node", "approve", node_id).stdout.strip() == "Ok"
    assert _the_node(node)["Membership"] == "APPROVED"

    again = node.cli("node", "approve", node_id)
    assert again.returncode == 1, node.describe_result(again)
    assert f"Error: node {node_id} already approved" in again.stderr, node.describe_result(again)

    assert node.ok("node", "reject", node_id, "-m", "retired").stdout.strip() == "Ok"
    state = _the_node(node)
    assert state["Membership"] == "REJECTED", state
    assert state["ConnectionState"]["Status"] == "DISCONNECTED", state
    assert state["ConnectionState"]["LastError"] == "node rejected", state
    table = node.ok("node", "list").stdout
    assert "REJECTED" in table and "DISCONNECTED" in table, table

    twice = node.cli("node", "reject", node_id)
    assert twice.returncode == 1 and f"Error: node {node_id} already rejected" in twice.stderr, (
        node.describe_result(twice)
    )


def test_approving_an_unknown_node_fails_naming_it(shared_node: BacalhauNode) -> None:
    result = shared_node.cli("node", "approve", "n-not-a-node")
    assert result.returncode == 1 and "Error: node not found: n-not-a-node" in result.stderr, (
        shared_node.describe_result(result)
    )


# -- legacy redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [("/", "/api/v1/agent/version"), ("/version", "/api/v1/agent/version"), ("/livez", "/api/v1/agent/alive")],
)
def test_legacy_paths_redirect_permanently(shared_node: BacalhauNode, path: str, target: str) -> None:
    with shared_node.http() as http:
        response = http.get(path, follow_redirects=False)
        assert response.status_code == 301, response.text
        assert response.headers["location"] == target
        assert http.get(path, follow_redirects=True).status_code == 200
