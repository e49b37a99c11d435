"""The official `bacalhau-sdk` (1.4.2), unchanged, submitting a wasm job built as Bacalhau's own jobs are:
`EntryModule: main.wasm` with the module at the relative `Target: main.wasm` and a data file at
`Target: data/words.txt`. It runs, keeps its targets as written, and a target climbing out of the task
(`../x`) is refused with the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from official_clients import ClientRunner

pytestmark = pytest.mark.scenario

WORDS = "one two three\n"


def test_sdk_job_with_relative_targets_runs_and_an_escaping_one_is_refused(
    run_client: ClientRunner, wasm_modules: dict[str, Path]
) -> None:
    run = run_client("sdk_relative_targets.py", str(wasm_modules["cat"]), WORDS)
    facts = run.facts
    assert facts["state"] == "Completed", run.describe()
    assert facts["entry_module"] == "main.wasm", run.describe()
    assert json.loads(facts["targets"]) == ["main.wasm", "data/words.txt"], run.describe()
    assert facts["exit_code"] == "0", run.describe()
    assert facts["stdout"] == WORDS.replace("\n", "\\n"), run.describe()

    assert facts["escape_outcome"] == "ApiException", run.describe()
    assert facts["escape_status"] == "400", run.describe()
    body = json.loads(facts["escape_body"])
    assert "Tasks[0].InputSources[1].Target: '../x' climbs out of the task's filesystem" in body["Message"], body
