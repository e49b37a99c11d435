"""Bounds on a job spec's size: entries per list or map, inline bytes, and the parse-time ceilings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bacalhau.models.job import Job
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.normalize import normalize_job
from bacalhau.models.validation import limit_problems, validate_job

URL = "data:text/plain;base64,aGVsbG8="


def spec(task: dict[str, object] | None = None, **fields: object) -> Job:
    main = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu"}}, **(task or {})}
    return normalize_job(Job.from_user({"Type": "batch", "Tasks": [main], **fields})).job


def inputs(n: int, url: str = URL) -> list[dict[str, object]]:
    return [{"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": f"/in/{i}"} for i in range(n)]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (spec({"InputSources": inputs(257)}),
         "Tasks[0].InputSources: 257 entries exceed the limit of 256 (JobAdmissionControl.Limits.MaxInputSources)"),
        (spec({"ResultPaths": [{"Name": f"r{i}", "Path": f"/r/{i}"} for i in range(257)], "Publisher": {"Type": "local"}}),
         "Tasks[0].ResultPaths: 257 entries exceed the limit of 256 (JobAdmissionControl.Limits.MaxResultPaths)"),
        (spec({"Env": {f"E{i}": "v" for i in range(1001)}}),
         "Tasks[0].Env: 1001 entries exceed the limit of 1000 (JobAdmissionControl.Limits.MaxEnvEntries)"),
        (spec({"Engine": {"Type": "docker", "Params": {"Image": "u", "EnvironmentVariables": ["A=1"] * 1001}}}),
         "Tasks[0].Engine.Params.EnvironmentVariables: 1001 entries exceed the limit of 1000"),
        (spec({"Meta": {f"m{i}": "v" for i in range(1001)}}),
         "Tasks[0].Meta: 1001 entries exceed the limit of 1000 (JobAdmissionControl.Limits.MaxMetaEntries)"),
        (spec(Meta={f"m{i}": "v" for i in range(1001)}),
         "Meta: 1001 entries exceed the limit of 1000 (JobAdmissionControl.Limits.MaxMetaEntries)"),
        (spec(Labels={f"l{i}": "v" for i in range(1001)}),
         "Labels: 1001 entries exceed the limit of 1000 (JobAdmissionControl.Limits.MaxLabels)"),
        (spec(Constraints=[{"Key": "k", "Operator": "exists"}] * 257),
         "Constraints: 257 entries exceed the limit of 256 (JobAdmissionControl.Limits.MaxConstraints)"),
        (spec({"InputSources": inputs(2, "data:," + "a" * (4 * 1024 * 1024))}),
         "Tasks[0].InputSources: inline data of 8388620 bytes exceeds the limit of 8388608 bytes"
         " (JobAdmissionControl.Limits.MaxInlineBytes)"),
    ],
)
def test_a_spec_over_a_size_bound_names_field_count_limit_and_key(job: Job, expected: str) -> None:
    problems = [str(e) for e in validate_job(job)]
    assert any(expected in p for p in problems), problems
    assert any(expected in str(p) for p in limit_problems(job))  # the scheduler's check for stored jobs


def test_at_the_bounds_a_spec_is_valid() -> None:
    job = spec({"InputSources": inputs(256), "Env": {f"E{i}": "v" for i in range(1000)}},
               Labels={f"l{i}": "v" for i in range(1000)})
    assert validate_job(job) == []


def test_an_oversized_spec_is_refused_for_its_size_alone() -> None:
    # 300 inputs without a target: the bound, not 300 "missing a target" messages.
    job = spec({"InputSources": [{"Source": {"Type": "inline", "Params": {"URL": URL}}}] * 300})
    assert [e.path for e in validate_job(job)] == ["Tasks[0].InputSources"]


def test_system_meta_keys_do_not_count() -> None:
    job = spec(Meta={f"m{i}": "v" for i in range(1000)})
    job.meta.update({f"bacalhau.org/k{i}": "v" for i in range(10)})
    assert limit_problems(job) == []


def test_configured_bounds_apply() -> None:
    limits = JobLimits(max_input_sources=1, max_inline_bytes=10)
    problems = [str(e) for e in validate_job(spec({"InputSources": inputs(2)}), limits)]
    assert any("2 entries exceed the limit of 1" in p for p in problems), problems
    assert any("inline data of 62 bytes exceeds the limit of 10 bytes" in p for p in problems), problems


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"Type": "batch", "Tasks": [{}] * 101}, ("Tasks",)),
        ({"type": "batch", "constraints": [{}] * 10_001}, ("Constraints",)),
        ({"Type": "batch", "Tasks": [{"inputSources": [{}] * 10_001}]}, ("Tasks", 0, "InputSources")),
        ({"Type": "batch", "Tasks": [{"Network": {"Ports": [{}] * 10_001}}]}, ("Tasks", 0, "Network", "Ports")),
    ],
)
def test_user_input_over_a_parse_ceiling_is_refused_before_its_entries_are_read(
    data: dict[str, object], loc: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        Job.from_user(data)
    (error,) = caught.value.errors()
    assert error["loc"] == loc
    assert "entries exceed the most any node accepts" in error["msg"]


def test_records_from_our_own_store_are_not_refused_by_the_parse_ceilings() -> None:
    job = Job.model_validate({"Type": "batch", "Tasks": [{"InputSources": [{}] * 10_001}]})
    assert len(job.tasks[0].input_sources) == 10_001
    assert any("MaxInputSources" in str(p) for p in limit_problems(job))  # failed with a reason, not unreadable


def test_default_limits_fit_in_a_request() -> None:
    assert DEFAULT_LIMITS.max_inline_bytes < 10 * 1024 * 1024
    assert JobLimits(max_input_sources=10_001).problems() == [
        "JobAdmissionControl.Limits.MaxInputSources must be at most 10000, got 10001"
    ]
