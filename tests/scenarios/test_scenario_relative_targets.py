"""Relative input targets end to end, through the real CLI against a real `bacalhau serve`.

Bacalhau only asks that an input's Target is not blank, and its own jobs write `EntryModule: main.wasm`
with the module's input at `Target: main.wasm`. Such a job runs here as it does there (a relative target
starts at the task's `/`), keeps its Targets as written, and a target climbing out of the task with `..`
is refused before submission, naming the field. Docker jobs fail on a relative Target as Bacalhau's do
(the engine only mounts at absolute paths), saying which field to change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import data_url, one_job_id, parse_output, write_job_file

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

WORDS = "one two three\n"


def cat_job(module: Path, *, data_target: str = "data/words.txt") -> dict[str, Any]:
    """Bacalhau's usual form: EntryModule `main.wasm`, the module at Target `main.wasm`, data beside it."""
    return {
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "wasm", "Params": {"EntryModule": "main.wasm", "Parameters": ["data/words.txt"]}},
                "InputSources": [
                    {"Target": "main.wasm", "Source": {"Type": "inline", "Params": {"URL": data_url(module.read_bytes())}}},
                    {
                        "Target": data_target,
                        "Source": {"Type": "inline", "Params": {"URL": data_url(WORDS.encode(), "text/plain")}},
                    },
                ],
                "Publisher": {"Type": "local"},
            }
        ],
    }


def test_entry_module_main_wasm_with_relative_targets_completes_and_keeps_them_as_written(
    shared_node: BacalhauNode, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = write_job_file(tmp_path, cat_job(wasm_modules["cat"]))
    shared_node.ok("job", "validate", str(path))
    result = shared_node.ok("job", "run", "--wait", str(path), timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    logs = shared_node.ok("job", "logs", job_id)
    assert logs.stdout == WORDS, shared_node.describe_result(logs)

    described = parse_output(shared_node.ok("job", "describe", "--output", "json", job_id).stdout)
    job = described["Job"]
    assert job["State"]["StateType"] == "Completed", job["State"]
    task = job["Tasks"][0]
    assert task["Engine"]["Params"]["EntryModule"] == "main.wasm", task["Engine"]
    assert [i["Target"] for i in task["InputSources"]] == ["main.wasm", "data/words.txt"], task["InputSources"]

    results = tmp_path / "results"
    shared_node.ok("job", "get", "--output-dir", str(results), job_id)
    assert (results / "stdout").read_text() == WORDS


@pytest.mark.parametrize("target", ["../x", "/inputs/../../etc/passwd"])
def test_a_target_escaping_the_task_is_refused_with_the_field_path(
    shared_node: BacalhauNode, wasm_modules: dict[str, Path], tmp_path: Path, target: str
) -> None:
    job = cat_job(wasm_modules["cat"], data_target=target)
    path = write_job_file(tmp_path, job)
    expected = f"Tasks[0].InputSources[1].Target: {target!r} climbs out of the task's filesystem ('..' above /)"
    with shared_node.http() as http:
        before = http.get("/api/v1/orchestrator/jobs").json()["Items"] or []
        for command in ("validate", "run"):
            result = shared_node.fails("job", command, str(path))
            assert expected in result.stdout + result.stderr, shared_node.describe_result(result)
        # the server refuses it too, for clients that skip the CLI's checks
        response = http.put("/api/v1/orchestrator/jobs", json={"Job": job})
        assert response.status_code == 400, response.text
        assert "Tasks[0].InputSources[1].Target" in response.text and "climbs out" in response.text, response.text
        after = http.get("/api/v1/orchestrator/jobs").json()["Items"] or []
    assert len(after) == len(before), "a refused job must not be stored"


def test_wasm_run_keeps_a_relative_target_as_bacalhau_does(
    shared_node: BacalhauNode, wasm_modules: dict[str, Path]
) -> None:
    module = f"{wasm_modules['hello']}:main.wasm"
    dry = parse_output(shared_node.ok("wasm", "run", "--dry-run", module, "--", "Porto").stdout)
    task = dry["Tasks"][0]
    assert task["Engine"]["Params"]["EntryModule"] == "main.wasm", task["Engine"]
    assert [i["Target"] for i in task["InputSources"]] == ["main.wasm"], task["InputSources"]
    result = shared_node.ok("wasm", "run", module, "--", "Porto", timeout=120)
    assert "arg1=Porto" in result.stdout, shared_node.describe_result(result)


def test_a_docker_job_with_a_relative_target_fails_naming_the_field(
    shared_node: BacalhauNode, busybox_image: str, tmp_path: Path
) -> None:
    job = {
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": busybox_image, "Parameters": ["cat", "/data/w.txt"]}},
                "InputSources": [
                    {"Target": "data", "Source": {"Type": "inline", "Params": {"URL": data_url(b"x", "text/plain")}}}
                ],
            }
        ],
    }
    path = write_job_file(tmp_path, job)
    shared_node.ok("job", "validate", str(path))  # Bacalhau accepts the job; its execution fails
    result = shared_node.fails("job", "run", "--wait", str(path), timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    described = parse_output(shared_node.ok("job", "describe", "--output", "json", job_id).stdout)
    assert described["Job"]["State"]["StateType"] == "Failed", described["Job"]["State"]
    message = described["Job"]["State"]["Message"] + result.stdout + result.stderr
    assert re.search(r"InputSources\[0\]\.Target 'data' is a relative path", message), message
    assert "absolute" in message, message
