"""Bounds on every number of a job spec: one check (models/validation.py) for client and server."""

from __future__ import annotations

import pytest

from bacalhau.config.types import BacalhauConfig
from bacalhau.models.job import Job
from bacalhau.models.limits import DEFAULT_LIMITS, TIMER_CEILING_S, JobLimits, show_number
from bacalhau.models.normalize import normalize_job
from bacalhau.models.validation import limit_problems, validate_job


def spec(**fields: object) -> Job:
    task = {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu"}}, **fields.pop("task", {})}  # type: ignore[dict-item]
    return normalize_job(Job.from_user({"Type": "batch", "Tasks": [task], **fields})).job


def messages(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> list[str]:
    return [str(e) for e in validate_job(job, limits)]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (spec(Count=10**30), f"Count: {10**30} exceeds the limit of 1000 (JobAdmissionControl.Limits.MaxCount)"),
        (spec(Priority=2**63), f"Priority: {2**63} exceeds the limit of {2**63 - 1} (JobAdmissionControl.Limits.MaxPriority)"),
        (spec(task={"Timeouts": {"ExecutionTimeout": 1e20}}),
         "Tasks[0].Timeouts.ExecutionTimeout: 100000000000000000000s exceeds the limit of 315360000s"
         " (JobAdmissionControl.Limits.MaxExecutionTimeout)"),
        (spec(task={"Timeouts": {"QueueTimeout": 315360001}}),
         "Tasks[0].Timeouts.QueueTimeout: 315360001s exceeds the limit of 315360000s (JobAdmissionControl.Limits.MaxQueueTimeout)"),
        (spec(task={"Timeouts": {"TotalTimeout": 10**12}}), "Tasks[0].Timeouts.TotalTimeout: 1000000000000s exceeds"),
        (spec(task={"Resources": {"CPU": "10001"}}),
         "Tasks[0].Resources.CPU: 10001 cores exceeds the limit of 10000 cores (JobAdmissionControl.Limits.MaxCPU)"),
        (spec(task={"Resources": {"Memory": "2PiB"}}), "Tasks[0].Resources.Memory: 2251799813685248 bytes exceeds"),
        (spec(task={"Resources": {"Disk": "2PiB"}}), "(JobAdmissionControl.Limits.MaxDisk)"),
        (spec(task={"Resources": {"GPU": "1025"}}), "Tasks[0].Resources.GPU: 1025 GPUs exceeds the limit of 1024 GPUs"),
        (spec(task={"Network": {"Type": "Host", "Ports": [{"Static": 70000}]}}),
         "Tasks[0].Network.Ports[0].Static: 70000 is not a port number (0 to 65535)"),
        (spec(task={"Network": {"Type": "Host", "Ports": [{"Target": -1}]}}),
         "Tasks[0].Network.Ports[0].Target: -1 is not a port number (0 to 65535)"),
    ],
)
def test_every_number_of_a_spec_has_a_bound_named_in_the_message(job: Job, expected: str) -> None:
    assert any(expected in m for m in messages(job)), messages(job)


def test_values_at_the_limits_are_valid() -> None:
    job = spec(Count=1000, Priority=2**63 - 1, task={
        "Timeouts": {"ExecutionTimeout": 315360000, "QueueTimeout": 0, "TotalTimeout": 0},
        "Resources": {"CPU": "10000", "Memory": "1PiB", "Disk": "1PiB", "GPU": "1024"},
    })
    assert messages(job) == []


def test_limits_are_configurable_and_the_same_check_serves_everyone() -> None:
    config = BacalhauConfig.model_validate({"JobAdmissionControl": {"Limits": {"MaxCount": 5, "MaxTotalTimeout": "1h"}}})
    limits = config.job_admission_control.limits.to_limits()
    assert limits.max_count == 5 and limits.max_total_timeout_s == 3600
    job = spec(Count=6, task={"Timeouts": {"TotalTimeout": 3601}})
    assert [e.path for e in limit_problems(job, limits)] == ["Count", "Tasks[0].Timeouts.TotalTimeout"]
    assert messages(job) == []  # within the defaults


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"MaxTotalTimeout": "1000000h"}, "JobAdmissionControl.Limits.MaxTotalTimeout must be at most 3153600000"),
        ({"MaxCount": -1}, "JobAdmissionControl.Limits.MaxCount must not be negative"),
        ({"MaxMemory": "lots"}, "JobAdmissionControl.Limits.MaxMemory: invalid size 'lots'"),
    ],
)
def test_unusable_limits_are_refused_when_the_config_loads(limits: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError, match="Limits") as refused:
        BacalhauConfig.model_validate({"JobAdmissionControl": {"Limits": limits}})
    assert expected in str(refused.value)


def test_the_timer_ceiling_fits_every_timer() -> None:
    import threading

    assert TIMER_CEILING_S < threading.TIMEOUT_MAX
    assert DEFAULT_LIMITS.max_total_timeout_s <= TIMER_CEILING_S


def test_absurd_numbers_are_shown_short() -> None:
    assert show_number(10**5000) == "a number of about 5001 digits"
    assert show_number(1000) == "1000"
    job = Job.model_validate({"Type": "batch", "Count": 10**5000, "Tasks": [{"Name": "t"}]})
    [problem] = limit_problems(job)
    assert str(problem).startswith("Count: a number of about 5001 digits exceeds the limit of 1000")
