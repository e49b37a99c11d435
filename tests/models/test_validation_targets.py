"""Input targets in job validation: Bacalhau asks only for a non-blank Target (pkg/models/input_source.go),
so relative targets pass; `..` climbing out of the task is refused with the field path."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.models.job import Job
from bacalhau.models.normalize import normalize_job
from bacalhau.models.validation import validate_job


def wasm_job(*targets: str, entry: str = "main.wasm") -> Job:
    inputs: list[dict[str, Any]] = [
        {"Target": t, "Source": {"Type": "inline", "Params": {"URL": "data:,x"}}} for t in targets
    ]
    spec = {
        "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "wasm", "Params": {"EntryModule": entry}}, "InputSources": inputs}],
    }
    return normalize_job(Job.from_user(spec)).job


def problems(job: Job) -> dict[str, str]:
    return {error.path: error.message for error in validate_job(job)}


@pytest.mark.parametrize("target", ["main.wasm", "./main.wasm", "modules/main.wasm", "/app/../main.wasm"])
def test_relative_and_dotted_targets_are_valid(target: str) -> None:
    assert problems(wasm_job(target)) == {}


def test_the_entry_module_may_name_a_relative_target() -> None:
    assert problems(wasm_job("main.wasm", "data/words.txt", entry="main.wasm")) == {}


@pytest.mark.parametrize("target", ["../x", "/inputs/../../etc/passwd", "data/../../x"])
def test_a_target_climbing_out_of_the_task_is_refused_with_its_field_path(target: str) -> None:
    found = problems(wasm_job("main.wasm", target))
    assert found == {"Tasks[0].InputSources[1].Target": f"{target!r} climbs out of the task's filesystem ('..' above /)"}


@pytest.mark.parametrize("target", ["/", ".", "a/.."])
def test_a_target_at_the_root_is_refused(target: str) -> None:
    found = problems(wasm_job("main.wasm", target))
    assert found == {"Tasks[0].InputSources[1].Target": f"{target!r} is the root folder; mount the input below it"}


def test_a_blank_target_is_still_missing() -> None:
    found = problems(wasm_job("main.wasm", "  "))
    assert found == {"Tasks[0].InputSources[1].Target": "input source is missing a target"}


def test_a_relative_and_an_absolute_target_at_one_place_are_duplicates() -> None:
    found = problems(wasm_job("main.wasm", "/main.wasm"))
    assert found == {
        "Tasks[0].InputSources[1].Target": "duplicate target '/main.wasm' (also InputSources[0]; both at /main.wasm)"
    }

