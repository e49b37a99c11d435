"""`bacalhau wasm run` end to end: a local .wasm file is uploaded inline, run on the node, and waited for."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from scenario_jobs import EXEC_CANCELLED, EXEC_COMPLETED, EXEC_FAILED, JobWatch, job_ids_in, one_job_id, parse_output

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def test_wasm_run_prints_the_job_output_and_exits_zero(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = node.ok("wasm", "run", str(wasm_modules["hello"]), "--", "world", "--not-a-flag")
    out = result.stdout + result.stderr
    assert "hello from wasm" in out, node.describe_result(result)
    assert "arg1=world" in out and "arg2=--not-a-flag" in out, node.describe_result(result)
    job_id = one_job_id(out)
    assert watch.state(job_id) == "Completed"


def test_wasm_run_with_wait_false_and_id_only_prints_just_the_id(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = node.ok("wasm", "run", "--wait=false", "--id-only", str(wasm_modules["hello"]))
    job_id = result.stdout.strip()
    assert job_ids_in(job_id) == [job_id], node.describe_result(result)
    watch.wait_state(job_id, "Completed")


def test_wasm_run_with_wait_false_returns_before_the_job_ends(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = node.ok("wasm", "run", "--wait=false", str(wasm_modules["loop"]))
    job_id = one_job_id(result.stdout)
    assert watch.state(job_id) not in ("Completed", "Failed", "Stopped")
    node.ok("job", "stop", job_id)
    watch.wait_state(job_id, "Stopped")


def test_wasm_run_dry_run_prints_the_job_and_submits_nothing(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = node.ok("wasm", "run", "--dry-run", str(wasm_modules["hello"]), "--", "x")
    job = parse_output(result.stdout)
    assert isinstance(job, dict), node.describe_result(result)
    assert job["Type"] == "batch"
    task = job["Tasks"][0]
    assert task["Engine"]["Type"] == "wasm"
    assert task["Engine"]["Params"]["Parameters"] == ["x"]
    assert task["InputSources"][0]["Source"]["Type"] == "inline"
    assert watch.jobs() == []


def test_a_trapping_module_fails_the_job_and_the_cli_exits_non_zero_with_the_reason(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = node.fails("wasm", "run", str(wasm_modules["trap"]))
    out = result.stdout + result.stderr
    assert re.search(r"(?i)trap|unreachable", out), node.describe_result(result)
    job_id = one_job_id(out)
    job = watch.wait_state(job_id, "Failed")
    assert job["State"].get("Message"), job
    execution = watch.wait_execution(job_id, EXEC_FAILED)
    assert re.search(r"(?i)trap|unreachable", execution["ComputeState"].get("Message", "")), execution


def test_a_non_zero_exit_code_completes_the_job_with_the_exit_code_recorded(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    # Bacalhau semantics: only executor errors fail an execution; an exit code is a result.
    result = node.ok("wasm", "run", str(wasm_modules["exitcode"]), "--", "3")
    job_id = one_job_id(result.stdout + result.stderr)
    watch.wait_state(job_id, "Completed")
    execution = watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] == 3, execution


def test_a_timeout_kills_an_infinite_loop(node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]) -> None:
    started = time.monotonic()
    result = node.fails("wasm", "run", "--timeout", "2", str(wasm_modules["loop"]), timeout=90)
    elapsed = time.monotonic() - started
    out = result.stdout + result.stderr
    assert re.search(r"(?i)time(d)? ?out", out), node.describe_result(result)
    assert elapsed < 60, f"the 2 s timeout took {elapsed:.1f}s to end the job"
    job_id = one_job_id(out)
    job = watch.wait_state(job_id, "Failed")
    assert re.search(r"(?i)time(d)? ?out", job["State"].get("Message", "")), job
    # The loop itself is ended: its execution reaches a terminal state (failed by the compute node's
    # execution timeout, or cancelled when the orchestrator's job timeout fires first).
    watch.wait_execution(job_id, EXEC_FAILED, EXEC_CANCELLED, timeout_s=30)


def test_job_stop_ends_a_running_loop(node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path]) -> None:
    job_id = node.ok("wasm", "run", "--wait=false", "--id-only", str(wasm_modules["loop"])).stdout.strip()
    watch.wait_state(job_id, "Running")
    result = node.ok("job", "stop", job_id)
    assert "stop" in (result.stdout + result.stderr).lower(), node.describe_result(result)
    job = watch.wait_state(job_id, "Stopped", timeout_s=30)
    assert job["State"]["StateType"] == "Stopped"
    watch.wait_execution(job_id, EXEC_CANCELLED, timeout_s=30)
    # Stopping a stopped job again is a no-op success (Bacalhau semantics).
    node.ok("job", "stop", job_id)
