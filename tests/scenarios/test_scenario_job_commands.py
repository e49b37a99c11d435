"""`bacalhau job list/describe/history/executions/logs/get/stop/rerun` with every output format."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, items_of, one_job_id, parse_output, wasm_job, write_job_file

from bacalhau.models.clock import parse_rfc3339_ns
from bacalhau.models.state import ExecutionStateType as State
from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

JOB_NAME = "hello-named"


@dataclass(frozen=True)
class FinishedJobs:
    completed: str  # hello.wasm, local publisher, named JOB_NAME
    failed: str  # trap.wasm


@pytest.fixture(scope="module")
def finished(
    shared_node: BacalhauNode,
    shared_watch: JobWatch,
    wasm_modules: dict[str, Path],
) -> FinishedJobs:
    """One completed and one failed job on the module's node."""
    completed = shared_watch.submit(wasm_job(wasm_modules["hello"], args=["listed"], name=JOB_NAME))
    failed = shared_watch.submit(wasm_job(wasm_modules["trap"]))
    shared_watch.wait_state(completed, "Completed")
    shared_watch.wait_state(failed, "Failed")
    return FinishedJobs(completed=completed, failed=failed)


def test_job_list_json_yaml_and_table(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    as_json = items_of(parse_output(shared_node.ok("job", "list", "--output", "json").stdout))
    states = {job["ID"]: job["State"]["StateType"] for job in as_json}
    assert states.get(finished.completed) == "Completed", as_json
    assert states.get(finished.failed) == "Failed", as_json
    as_yaml = items_of(parse_output(shared_node.ok("job", "list", "--output", "yaml").stdout))
    assert {job["ID"] for job in as_yaml} == set(states)
    table = shared_node.ok("job", "list").stdout
    for column in ("CREATED", "ID", "JOB", "TYPE", "STATE"):
        assert column in table.upper(), table
    assert finished.completed[:10] in table and "Completed" in table, table


def test_job_describe_default_json_yaml_and_by_short_id_and_name(
    shared_node: BacalhauNode, finished: FinishedJobs
) -> None:
    human = shared_node.ok("job", "describe", finished.completed).stdout
    assert finished.completed in human and "Completed" in human, human
    as_json = parse_output(shared_node.ok("job", "describe", finished.completed, "--output", "json").stdout)
    assert as_json["Job"]["ID"] == finished.completed
    assert as_json["Job"]["State"]["StateType"] == "Completed"
    assert isinstance(as_json["Job"]["CreateTime"], int)
    executions = items_of(as_json["Executions"])
    assert executions and executions[0]["ComputeState"]["StateType"] == 9, executions
    assert items_of(as_json["History"]), as_json
    as_yaml = parse_output(shared_node.ok("job", "describe", finished.completed, "--output", "yaml").stdout)
    assert as_yaml["Job"]["ID"] == finished.completed
    by_short = parse_output(shared_node.ok("job", "describe", finished.completed[:10], "--output", "json").stdout)
    assert by_short["Job"]["ID"] == finished.completed
    by_name = parse_output(shared_node.ok("job", "describe", JOB_NAME, "--output", "json").stdout)
    assert by_name["Job"]["ID"] == finished.completed


def test_job_describe_of_an_unknown_job_fails_with_not_found(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    result = shared_node.fails("job", "describe", "j-00000000-0000-4000-8000-000000000000")
    assert re.search(r"(?i)not found", result.stdout + result.stderr), shared_node.describe_result(result)


def test_job_history_json_and_table(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    items = items_of(parse_output(shared_node.ok("job", "history", finished.completed, "--output", "json").stdout))
    assert {item["Type"] for item in items} <= {"JobLevel", "ExecutionLevel"}, items
    assert any(item["Type"] == "JobLevel" for item in items), items
    assert any(item["Type"] == "ExecutionLevel" for item in items), items
    job_states = [item["JobState"]["New"] for item in items if item.get("JobState")]
    assert "Completed" in job_states, items
    exec_states = [item["ExecutionState"]["New"] for item in items if item.get("ExecutionState")]
    assert exec_states and all(isinstance(s, int) for s in exec_states), items
    table = shared_node.ok("job", "history", finished.completed).stdout
    for column in ("TIME", "LEVEL", "TOPIC", "EVENT"):
        assert column in table.upper(), table
    only_job = items_of(
        parse_output(
            shared_node.ok("job", "history", finished.completed, "--event-type", "job", "--output", "json").stdout
        )
    )
    assert only_job and all(item["Type"] == "JobLevel" for item in only_job), only_job


def test_job_executions_json_yaml_and_table(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    items = items_of(parse_output(shared_node.ok("job", "executions", finished.completed, "--output", "json").stdout))
    assert len(items) == 1, items
    execution = items[0]
    assert execution["ID"].startswith("e-") and execution["JobID"] == finished.completed
    assert execution["ComputeState"]["StateType"] == 9 and isinstance(execution["DesiredState"]["StateType"], int)
    assert "stderr" in execution["RunOutput"] and "Stdout" in execution["RunOutput"], execution
    as_yaml = items_of(parse_output(shared_node.ok("job", "executions", finished.completed, "--output", "yaml").stdout))
    assert as_yaml[0]["ID"] == execution["ID"]
    table = shared_node.ok("job", "executions", finished.failed).stdout
    assert "STATE" in table.upper() and "Failed" in table, table


def test_job_logs_print_the_output(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    result = shared_node.ok("job", "logs", finished.completed)
    assert "hello from wasm" in result.stdout and "arg1=listed" in result.stdout, shared_node.describe_result(result)


def test_job_get_downloads_stdout_and_exit_code(
    shared_node: BacalhauNode, finished: FinishedJobs, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    result = shared_node.ok("job", "get", finished.completed, "--output-dir", str(out))
    assert str(out) in result.stdout + result.stderr, shared_node.describe_result(result)
    assert "hello from wasm" in (out / "stdout").read_text()
    assert (out / "exitCode").read_text().strip() == "0"
    assert (out / "stderr").exists()


def test_job_get_defaults_to_a_job_folder_in_the_working_directory(
    shared_node: BacalhauNode, finished: FinishedJobs, tmp_path: Path
) -> None:
    shared_node.ok("job", "get", finished.completed, cwd=tmp_path)
    folders = [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("job-")]
    assert len(folders) == 1, list(tmp_path.iterdir())
    assert "hello from wasm" in (folders[0] / "stdout").read_text()


def test_job_stop_of_a_completed_job_is_refused(shared_node: BacalhauNode, finished: FinishedJobs) -> None:
    result = shared_node.fails("job", "stop", finished.completed)
    assert re.search(r"(?i)completed", result.stdout + result.stderr), shared_node.describe_result(result)


def test_job_rerun_runs_a_new_version(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], args=["again"]))
    job_id = one_job_id(shared_node.ok("job", "run", "--id-only", str(path)).stdout)
    shared_watch.wait_state(job_id, "Completed")
    shared_node.ok("job", "rerun", job_id)
    job = shared_watch.wait_for(
        "the rerun to complete",
        lambda: (j := shared_watch.job(job_id))["Version"] == 2 and j["State"]["StateType"] == "Completed" and j,
    )
    assert job["Version"] == 2
    history = shared_watch.history(job_id)
    assert any("rerun" in item["Event"]["Message"].lower() for item in history), history


def test_job_history_shows_each_step_of_a_short_execution_in_order(
    shared_node: BacalhauNode, finished: FinishedJobs
) -> None:
    """A short execution's steps reach the orchestrator in its one final report; the history still has
    an event per step, each taking up where the last left off, in time order."""
    out = shared_node.ok("job", "history", finished.completed, "--event-type", "execution", "--output", "json").stdout
    changes = [item for item in items_of(parse_output(out)) if item.get("ExecutionState")]
    states = [(item["ExecutionState"]["Previous"], item["ExecutionState"]["New"]) for item in changes]
    steps = [State.BidAccepted, State.Running, State.Publishing, State.Completed]  # it names a publisher
    assert [new for _, new in states][-4:] == [int(s) for s in steps], states
    assert all(prev == earlier_new for (prev, _), (_, earlier_new) in zip(states[1:], states, strict=False)), states
    times = [parse_rfc3339_ns(item["Time"]) for item in changes]
    assert times == sorted(times), changes
