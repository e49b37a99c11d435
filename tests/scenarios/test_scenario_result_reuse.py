"""The result cache on a real hybrid node, through the CLI: a job with Meta `results.reuse: "true"` that is
identical to a completed one gets that one's result without running, and the history says so.

    job A (opted in)            runs; its result is remembered under its fingerprint
    job B = A, other name       Completed at once: an execution copied from A's, "result reused from
                                execution <A's> of job <A>"; the node ran nothing (jobsCompleted unchanged);
                                `job get` downloads A's published result
    job C = A, other argument   runs (another fingerprint)
    job D = A, not opted in     runs (reuse is opt-in)
    job E: a URL input without Checksum, opted in   runs; its history says why it was not reused
    Meta results.reuse=maybe    refused at submit, naming the key
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from scenario_jobs import JobWatch, submit_file, wasm_job, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

WAIT_S = 60.0


def hello(wasm_modules: dict[str, Path], *, arg: str = "one", reuse: str | None = "true", name: str = "") -> dict[str, Any]:
    job = wasm_job(wasm_modules["hello"], args=[arg], publisher="local")
    if reuse is not None:
        job["Meta"] = {"results.reuse": reuse}
    if name:
        job["Name"] = name
    return job


def completed(node: BacalhauNode) -> int:
    """The compute side's count of executions it ran to completion (agent debug)."""
    debug = httpx.get(f"{node.url}/api/v1/agent/debug", timeout=10).json()
    return int(debug["jobsCompleted"])


def run(node: BacalhauNode, watch: JobWatch, tmp_path: Path, job: dict[str, Any], stem: str) -> tuple[str, dict[str, Any]]:
    job_id = submit_file(node, tmp_path, job, stem)
    watch.wait_state(job_id, "Completed", timeout_s=WAIT_S)
    [execution] = watch.executions(job_id)
    return job_id, execution


def messages(watch: JobWatch, job_id: str) -> list[str]:
    return [str(e["Event"]["Message"]) for e in watch.history(job_id)]


def test_an_identical_opted_in_job_reuses_the_result_without_running(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    a_id, a_exec = run(shared_node, shared_watch, tmp_path, hello(wasm_modules, name="first"), "a")
    assert a_exec["RunOutput"]["Stdout"] == "hello from wasm\narg1=one\n"
    ran = completed(shared_node)

    b_id, b_exec = run(shared_node, shared_watch, tmp_path, hello(wasm_modules, name="second"), "b")
    assert b_exec["ID"] != a_exec["ID"] and b_exec["JobID"] == b_id
    assert b_exec["ComputeState"]["Details"]["ReusedFrom"] == a_exec["ID"]
    assert b_exec["RunOutput"] == a_exec["RunOutput"]
    assert b_exec["PublishedResult"] == a_exec["PublishedResult"]
    assert completed(shared_node) == ran, "the node ran the reused job"
    reason = f"result reused from execution {a_exec['ID']} of job {a_id} (Meta results.reuse)"
    assert any(reason in m for m in messages(shared_watch, b_id)), messages(shared_watch, b_id)
    assert reason in shared_node.ok("job", "describe", b_id).stdout

    # Its logs are those of the execution that produced the result.
    assert shared_node.ok("job", "logs", b_id).stdout == "hello from wasm\narg1=one\n"
    # The reused job's results download as the original's do.
    out = tmp_path / "b-results"
    shared_node.ok("job", "get", b_id, "--output-dir", str(out))
    assert (out / "stdout").read_text() == "hello from wasm\narg1=one\n"

    # Another argument is another job; the same job without opting in runs too.
    for stem, job in (("c", hello(wasm_modules, arg="two")), ("d", hello(wasm_modules, reuse=None))):
        _, execution = run(shared_node, shared_watch, tmp_path, job, stem)
        assert "ReusedFrom" not in (execution["ComputeState"].get("Details") or {}), execution
    assert completed(shared_node) == ran + 2


def test_a_job_whose_input_may_change_runs_and_says_why_it_was_not_reused(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job = hello(wasm_modules)
    job["Tasks"][0]["InputSources"].append(
        {"Target": "/data", "Alias": "table", "Source": {"Type": "urlDownload", "Params": {"URL": f"{shared_node.url}/api/v1/agent/version"}}}
    )
    for stem in ("e1", "e2"):
        job_id, execution = run(shared_node, shared_watch, tmp_path, job, stem)
        assert "ReusedFrom" not in (execution["ComputeState"].get("Details") or {})
        why = "result not reused: input 'table' (urlDownload) has no Checksum, so the download may change"
        assert any(why in m for m in messages(shared_watch, job_id)), messages(shared_watch, job_id)


def test_a_malformed_reuse_flag_is_refused_at_submit(shared_node: BacalhauNode, wasm_modules: dict[str, Path], tmp_path: Path) -> None:
    path = write_job_file(tmp_path, hello(wasm_modules, reuse="maybe"), stem="bad")
    result = shared_node.cli("job", "run", str(path), "--wait=false")
    assert result.returncode != 0
    assert "Meta[results.reuse]" in result.stderr + result.stdout and "must be true or false" in result.stderr + result.stdout
