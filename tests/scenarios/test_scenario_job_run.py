"""`bacalhau job run` / `job validate` end to end: job files, stdin, dry runs and bad inputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import JobWatch, one_job_id, wasm_job, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_job_run_of_a_yaml_file_completes(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], args=["from-yaml"]))
    result = shared_node.ok("job", "run", str(path))
    job_id = one_job_id(result.stdout + result.stderr)
    shared_watch.wait_state(job_id, "Completed")
    logs = shared_node.ok("job", "logs", job_id)
    assert "hello from wasm" in logs.stdout and "arg1=from-yaml" in logs.stdout, shared_node.describe_result(logs)


def test_job_run_reads_json_from_stdin(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    spec = json.dumps(wasm_job(wasm_modules["hello"], args=["from-stdin"]))
    result = shared_node.ok("job", "run", "-", input=spec)
    job_id = one_job_id(result.stdout + result.stderr)
    shared_watch.wait_state(job_id, "Completed")


def test_job_run_with_wait_false_and_id_only(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"]))
    result = shared_node.ok("job", "run", "--wait=false", "--id-only", str(path))
    job_id = result.stdout.strip()
    assert one_job_id(job_id) == job_id, shared_node.describe_result(result)
    shared_watch.wait_state(job_id, "Completed")


def test_job_run_dry_run_submits_nothing(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    name = "dry-run-only"
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], name=name))
    shared_node.ok("job", "run", "--dry-run", str(path))
    assert all(job["Name"] != name for job in shared_watch.jobs())


def test_job_validate_accepts_a_good_file_and_rejects_a_bad_one(
    shared_node: BacalhauNode, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    good = write_job_file(tmp_path, wasm_job(wasm_modules["hello"]), stem="good")
    shared_node.ok("job", "validate", str(good))
    bad_spec = wasm_job(wasm_modules["hello"])
    del bad_spec["Tasks"][0]["Engine"]["Params"]["EntryModule"]
    bad = write_job_file(tmp_path, bad_spec, stem="bad")
    result = shared_node.fails("job", "validate", str(bad))
    assert "EntryModule" in result.stdout + result.stderr, shared_node.describe_result(result)


def _set_engine_type(job: dict[str, Any]) -> None:
    job["Tasks"][0]["Engine"]["Type"] = "kubernetes"


def _drop_entry_module(job: dict[str, Any]) -> None:
    del job["Tasks"][0]["Engine"]["Params"]["EntryModule"]


def _traversing_target(job: dict[str, Any]) -> None:
    job["Tasks"][0]["InputSources"].append(
        {"Target": "/inputs/../../etc/passwd", "Source": {"Type": "inline", "Params": {"URL": "data:,hi"}}}
    )


def _negative_cpu(job: dict[str, Any]) -> None:
    job["Tasks"][0]["Resources"] = {"CPU": "-1"}


def _count_zero(job: dict[str, Any]) -> None:
    job["Count"] = 0


# (id, how to break a good job, what the error must say)
BAD_JOBS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("unknown-engine", _set_engine_type, [r"kubernetes", r"wasm", r"docker"]),
    ("missing-entry-module", _drop_entry_module, [r"EntryModule"]),
    ("path-traversal-target", _traversing_target, [r"(?i)target", r"\.\."]),
    ("negative-cpu", _negative_cpu, [r"(?i)cpu"]),
    ("count-zero", _count_zero, [r"(?i)count"]),
]


@pytest.mark.parametrize(("breaker", "expected"), [pytest.param(b, e, id=i) for i, b, e in BAD_JOBS])
def test_a_bad_job_is_refused_with_a_specific_message_and_the_next_good_job_completes(
    shared_node: BacalhauNode,
    shared_watch: JobWatch,
    wasm_modules: dict[str, Path],
    tmp_path: Path,
    breaker: Callable[[dict[str, Any]], None],
    expected: list[str],
) -> None:
    job = wasm_job(wasm_modules["hello"])
    breaker(job)
    result = shared_node.fails("job", "run", str(write_job_file(tmp_path, job, stem="bad")))
    out = result.stdout + result.stderr
    for pattern in expected:
        assert re.search(pattern, out), f"expected /{pattern}/ in the error\n{shared_node.describe_result(result)}"
    _good_job_still_completes(shared_node, shared_watch, wasm_modules, tmp_path)


def test_malformed_yaml_is_refused_and_the_next_good_job_completes(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: wasm\n")
    result = shared_node.fails("job", "run", str(path))
    assert re.search(r"(?i)yaml|pars|decod|malformed", result.stdout + result.stderr), shared_node.describe_result(
        result
    )
    _good_job_still_completes(shared_node, shared_watch, wasm_modules, tmp_path)


def test_invalid_module_bytes_fail_the_job_with_the_reason(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(b"this is not a wasm module"), stem="garbage")
    result = shared_node.fails("job", "run", str(path))
    out = result.stdout + result.stderr
    assert re.search(r"(?i)magic|invalid|compil|not a (valid )?(web ?assembly|wasm)", out), shared_node.describe_result(
        result
    )
    _good_job_still_completes(shared_node, shared_watch, wasm_modules, tmp_path)


def _good_job_still_completes(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"]), stem="good-after-bad")
    result = node.ok("job", "run", "--id-only", str(path))
    watch.wait_state(one_job_id(result.stdout), "Completed")


def test_count_two_on_a_single_node_fails_with_not_enough_nodes(
    node: BacalhauNode, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], count=2, timeouts={"QueueTimeout": 0}))
    result = node.fails("job", "run", str(path))
    out = result.stdout + result.stderr
    job_id = one_job_id(out)
    job = watch.wait_state(job_id, "Failed")
    reason = f"{out}\n{job['State'].get('Message', '')}"
    assert re.search(r"(?i)not enough nodes|enough (matching )?nodes", reason), node.describe_result(result)


def test_count_two_with_a_queue_timeout_waits_queued_then_fails(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    node = serve(extra_config=["Orchestrator.Scheduler.QueueBackoff=1s"])
    watch = JobWatch(node.url, node.log_excerpt)
    path = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], count=2, timeouts={"QueueTimeout": 4}))
    job_id = node.ok("job", "run", "--wait=false", "--id-only", str(path)).stdout.strip()
    queued = watch.wait_state(job_id, "Queued", timeout_s=10)
    assert re.search(r"(?i)queued", queued["State"].get("Message", "")), queued
    failed = watch.wait_state(job_id, "Failed", timeout_s=60)
    assert re.search(r"(?i)enough (matching )?nodes|queue", failed["State"].get("Message", "")), failed


def test_the_readme_example_job_file_is_current_and_runs(shared_node: BacalhauNode, shared_watch: JobWatch) -> None:
    check = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_inline_job.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    result = shared_node.ok("job", "run", "--id-only", str(EXAMPLES / "hello-wat.yaml"))
    job_id = one_job_id(result.stdout)
    shared_watch.wait_state(job_id, "Completed")
    logs = shared_node.ok("job", "logs", job_id)
    assert "Hello from a Bacalhau WASM job!" in logs.stdout, shared_node.describe_result(logs)
