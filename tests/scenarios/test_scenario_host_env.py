"""Task env values `env:HOST_VAR` come from the compute node's environment, only for names matching
`Compute.Env.AllowList`; anything else fails the execution with a message naming the variable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import EXEC_FAILED, JobWatch, one_job_id, wasm_job, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

SECRET = "s3cr3t-from-the-host"


def env_job(env_module: Path, value: str) -> dict[str, Any]:
    """A job whose task env maps MY_VAR to `value` and prints MY_VAR."""
    job = wasm_job(env_module, args=["MY_VAR"], publisher="")
    job["Tasks"][0]["Env"] = {"MY_VAR": value}
    return job


@pytest.fixture
def host_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """HOST_SECRET (and no HOST_NOT_DEFINED) in the environment nodes started by this test inherit."""
    monkeypatch.setenv("HOST_SECRET", SECRET)
    monkeypatch.delenv("HOST_NOT_DEFINED", raising=False)
    return SECRET


def test_an_allow_listed_host_variable_reaches_the_module(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path], tmp_path: Path, host_secret: str
) -> None:
    node = serve(extra_config=["Compute.Env.AllowList=HOST_*"])
    watch = JobWatch(node.url, node.log_excerpt)
    path = write_job_file(tmp_path, env_job(wasm_modules["env"], "env:HOST_SECRET"))
    job_id = one_job_id(node.ok("job", "run", str(path)).stdout)
    watch.wait_state(job_id, "Completed")
    logs = node.ok("job", "logs", job_id)
    assert f"MY_VAR={host_secret}" in logs.stdout, node.describe_result(logs)

    # A name outside the allow-list is refused even on this node, naming the variable.
    other = write_job_file(tmp_path, env_job(wasm_modules["env"], "env:PATH"), stem="other")
    refused = node.fails("job", "run", str(other))
    assert re.search(r"\bPATH\b", refused.stdout + refused.stderr), node.describe_result(refused)
    execution = watch.wait_execution(one_job_id(refused.stdout + refused.stderr), EXEC_FAILED)
    assert re.search(r"\bPATH\b", execution["ComputeState"]["Message"]), execution

    # An allow-listed name the host does not define fails too, naming it.
    unset = write_job_file(tmp_path, env_job(wasm_modules["env"], "env:HOST_NOT_DEFINED"), stem="unset")
    missing = node.fails("job", "run", str(unset))
    assert "HOST_NOT_DEFINED" in missing.stdout + missing.stderr, node.describe_result(missing)


def test_without_an_allow_list_the_execution_fails_naming_the_variable(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path], tmp_path: Path, host_secret: str
) -> None:
    node = serve()  # HOST_SECRET is in its environment, but nothing is allow-listed
    watch = JobWatch(node.url, node.log_excerpt)
    path = write_job_file(tmp_path, env_job(wasm_modules["env"], "env:HOST_SECRET"))
    result = node.fails("job", "run", str(path))
    out = result.stdout + result.stderr
    assert "HOST_SECRET" in out, node.describe_result(result)
    assert host_secret not in out, "the refused value leaked into the CLI output"
    job_id = one_job_id(out)
    failed = watch.wait_state(job_id, "Failed")
    assert "HOST_SECRET" in failed["State"]["Message"], failed["State"]
    execution = watch.wait_execution(job_id, EXEC_FAILED)
    assert "HOST_SECRET" in execution["ComputeState"]["Message"], execution
    run_output = execution.get("RunOutput") or {}
    assert host_secret not in (run_output.get("Stdout") or ""), run_output


def test_a_literal_env_value_needs_no_allow_list(
    shared_node: BacalhauNode, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, env_job(wasm_modules["env"], "plain value"))
    job_id = one_job_id(shared_node.ok("job", "run", str(path)).stdout)
    assert "MY_VAR=plain value" in shared_node.ok("job", "logs", job_id).stdout
