"""Reading job files: template rendering, YAML/JSON errors, the top-level key check, type errors."""

from __future__ import annotations

import pytest

from bacalhau.cli.jobfile import MAX_FILE_BYTES, ensure_submittable, load_job, submittable_yaml
from bacalhau.models.errors import BadRequestError, ValidationFailed

GOOD = b"""
type: batch
tasks:
  - name: main
    engine:
      type: wasm
      params: {EntryModule: /app/m.wasm}
    inputSources:
      - target: /app/m.wasm
        source: {type: inline, params: {URL: "data:,x"}}
"""


def test_keys_match_case_insensitively_at_every_level() -> None:
    job = load_job(GOOD, "job.yaml")
    assert job.type == "batch"
    assert job.task.engine.type == "wasm"
    assert job.task.input_sources[0].target == "/app/m.wasm"
    ensure_submittable(job)


def test_json_job_files_are_accepted() -> None:
    job = load_job(b'{"Type": "ops", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}', "job.json")
    assert job.type == "ops" and job.task.name == "t"


@pytest.mark.parametrize("key", ["ID", "id", "State", "Version", "revision", "CreateTime", "modifytime"])
def test_server_owned_top_level_keys_are_not_allowed(key: str) -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(GOOD + f"{key}: x\n".encode(), "job.yaml")
    assert info.value.message == f"field: '{key}' in 'Job' is not allowed"


def test_unknown_top_level_keys_are_refused_all_at_once() -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(GOOD + b"foo: 1\nbar: 2\n", "job.yaml")
    assert info.value.message == "unknown field: 'foo' in 'Job'\nunknown field: 'bar' in 'Job'"


def test_nested_unknown_keys_are_ignored_as_in_go() -> None:
    job = load_job(GOOD.replace(b"    engine:", b"    whatever: 1\n    engine:"), "job.yaml")
    assert job.task.engine.type == "wasm"


def test_yaml_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(b"type: batch\n tasks: [\n", "job.yaml")
    assert "job.yaml" in info.value.message and "line 2, column 7" in info.value.message


def test_json_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(b'{"Type": "batch",\n "Tasks": [}', "job.json")
    assert "line 2, column 12" in info.value.message


def test_type_errors_name_the_field_and_struct() -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(b"type: batch\ncount: many\n", "job.yaml")
    assert "field 'Count' in 'Job' is invalid type" in info.value.message


def test_templates_are_filled_from_values() -> None:
    job = load_job(b"type: {{.KIND}}\nname: {{ .NAME }}\n", "job.yaml", template_vars={"KIND": "batch", "NAME": "n"})
    assert job.type == "batch" and job.name == "n"


def test_a_missing_template_value_is_an_error_with_a_hint() -> None:
    with pytest.raises(BadRequestError) as info:
        load_job(b"type: batch\nname: {{.WHO}}\n", "job.yaml")
    assert 'map has no entry for key "WHO"' in info.value.message
    assert "job:2:7" in info.value.message
    assert "--no-template" in info.value.hint


def test_no_template_leaves_braces_alone() -> None:
    job = load_job(b"type: batch\nname: '{{.WHO}}'\n", "job.yaml", use_template=False)
    assert job.name == "{{.WHO}}"


def test_dates_stay_strings() -> None:
    job = load_job(b"type: batch\nlabels: {day: 2024-01-01}\n", "job.yaml")
    assert job.labels == {"day": "2024-01-01"}


def test_files_over_10_mb_are_refused() -> None:
    with pytest.raises(BadRequestError, match="10 MB"):
        load_job(b"#" * (MAX_FILE_BYTES + 1), "big.yaml")


def test_empty_and_non_mapping_files_are_refused() -> None:
    with pytest.raises(BadRequestError, match="empty"):
        load_job(b"", "job.yaml")
    with pytest.raises(BadRequestError, match="mapping"):
        load_job(b"- a\n- b\n", "job.yaml")


def test_validation_reports_every_problem_at_once() -> None:
    job = load_job(b"type: nope\ntasks:\n  - name: ''\n    engine: {type: wasm}\n", "job.yaml")
    with pytest.raises(ValidationFailed) as info:
        ensure_submittable(job)
    paths = {e.path for e in info.value.errors}
    assert {"Type", "Tasks[0].Name", "Tasks[0].Engine.Params.EntryModule"} <= paths


def test_dry_run_yaml_can_be_submitted_again() -> None:
    text = submittable_yaml(load_job(GOOD, "job.yaml"))
    assert "ID:" not in text and "State:" not in text
    again = load_job(text.encode(), "dry-run.yaml")
    assert again.task.engine.param("EntryModule") == "/app/m.wasm"
