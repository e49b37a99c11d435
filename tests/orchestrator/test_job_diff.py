"""The dry-run diff: what counts as a change (as Bacalhau's Job.CompareWith) and how it reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.models import constants as c
from bacalhau.models.errors import BacalhauError, ErrorCode, NotFoundError
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.job import Job, JobState, ResourcesConfig, SpecConfig
from bacalhau.models.normalize import JobDefaults
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.endpoint import Endpoint
from bacalhau.orchestrator.job_diff import diff_jobs, spec_key
from bacalhau.orchestrator.jobstore.base import JobQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.transport.base import ComputeService
from factories import FakeClock, make_job, make_task


def _resubmitted(job: Job) -> Job:
    """The same spec as a user would send it again: no ID, state, versions or times."""
    again = job.model_copy(deep=True)
    again.id = ""
    again.version = again.revision = again.create_time = again.modify_time = 0
    again.state = JobState()
    return again


# -- the comparison itself ----------------------------------------------------------------------------


def test_the_same_spec_has_no_diff() -> None:
    job = make_job()
    assert diff_jobs(job, _resubmitted(job)) == ""


def test_server_managed_fields_and_reserved_meta_are_not_a_change() -> None:
    stored = make_job(version=4, revision=7, create_time=1, modify_time=2, meta={c.META_REQUESTER_ID: "n-1", "team": "x"})
    stored.state = JobState(StateType=JobStateType.Completed, Message="done")
    proposed = _resubmitted(stored)
    proposed.meta = {"team": "x"}
    assert diff_jobs(stored, proposed) == ""


def test_resource_quantities_compare_ignoring_case() -> None:
    stored = make_job(tasks=[make_task(resources=ResourcesConfig(CPU="500m", Memory="1GB"))])
    proposed = _resubmitted(stored)
    proposed.tasks[0].resources = ResourcesConfig(CPU="500M", Memory="1gb")
    assert diff_jobs(stored, proposed) == ""
    assert spec_key(stored) == spec_key(proposed)


def test_label_order_is_not_a_change() -> None:
    stored = make_job(labels={"a": "1", "b": "2"})
    proposed = _resubmitted(stored)
    proposed.labels = {"b": "2", "a": "1"}
    assert diff_jobs(stored, proposed) == ""


def test_a_changed_field_shows_as_a_removed_and_an_added_line() -> None:
    stored = make_job(count=1)
    proposed = _resubmitted(stored)
    proposed.count = 3
    diff = diff_jobs(stored, proposed).splitlines()
    assert diff[0] == f"--- stored job {stored.id} (version 1)"
    assert diff[1] == "+++ submitted spec"
    assert "-Count: 1" in diff and "+Count: 3" in diff
    changed = [line for line in diff[2:] if line[:1] in "+-"]
    assert changed == ["-Count: 1", "+Count: 3"], diff


def test_a_case_only_resource_change_gets_no_line_when_something_else_changed() -> None:
    stored = make_job(tasks=[make_task(resources=ResourcesConfig(CPU="1", Memory="1GB"))])
    proposed = _resubmitted(stored)
    proposed.tasks[0].resources = ResourcesConfig(CPU="2", Memory="1gb")
    changed = [line[0] + line[1:].strip() for line in diff_jobs(stored, proposed).splitlines()[2:] if line[:1] in "+-"]
    assert changed == ["-CPU: '1'", "+CPU: '2'"]


def test_a_long_inline_module_is_shortened_to_its_start_and_a_digest() -> None:
    url_a = "data:application/wasm;base64," + "A" * 5000
    url_b = "data:application/wasm;base64," + "A" * 4999 + "B"
    stored = make_job(tasks=[make_task(input_sources=[{"Target": "/m.wasm", "Source": {"Type": "inline", "Params": {"URL": url_a}}}])])
    proposed = _resubmitted(stored)
    proposed.tasks[0].input_sources[0].source.params["URL"] = url_b
    diff = diff_jobs(stored, proposed)
    changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
    assert len(changed) == 2 and all("(5029 chars, sha256 " in line for line in changed), diff
    assert changed[0].split("sha256 ")[1] != changed[1].split("sha256 ")[1]
    assert max(len(line) for line in diff.splitlines()) < 200


# -- the use case: Endpoint.diff against a real store ----------------------------------------------


class _NoComputeNodes:
    def compute(self, node_id: str) -> ComputeService | None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    opened = SQLiteJobStore(path=tmp_path / "jobs.db", clock=FakeClock())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def enqueued() -> list[Evaluation]:
    return []


@pytest.fixture
def endpoint(store: SQLiteJobStore, enqueued: list[Evaluation]) -> Endpoint:
    return Endpoint(
        store=store,
        directory=_NoComputeNodes(),
        enqueue=enqueued.append,
        defaults=lambda job_type: JobDefaults(),
        orchestrator_id="n-orchestrator",
        clock_ns=FakeClock(),
    )


def _spec(name: str = "nightly", count: int = 1) -> Job:
    return Job(Name=name, Type="batch", Count=count, Tasks=[{"Name": "main", "Engine": SpecConfig(Type="noop")}])


async def test_diff_of_an_unchanged_spec_is_empty_and_stores_nothing(
    endpoint: Endpoint, store: SQLiteJobStore, enqueued: list[Evaluation]
) -> None:
    submitted = await endpoint.submit(_spec())
    response = await endpoint.diff(_spec())
    assert response.diff == ""
    jobs, _ = await store.list_jobs(JobQuery())
    assert [(j.id, j.version) for j in jobs] == [(submitted.job_id, 1)]
    assert len(enqueued) == 1  # only the submission's evaluation


async def test_diff_of_a_changed_spec_names_the_change(endpoint: Endpoint) -> None:
    submitted = await endpoint.submit(_spec(count=1))
    diff = (await endpoint.diff(_spec(count=2))).diff
    assert f"--- stored job {submitted.job_id} (version 1)" in diff
    assert "-Count: 1" in diff.splitlines() and "+Count: 2" in diff.splitlines()


async def test_diff_looks_the_name_up_in_the_jobs_namespace(endpoint: Endpoint) -> None:
    await endpoint.submit(_spec())
    elsewhere = _spec()
    elsewhere.namespace = "other"
    with pytest.raises(NotFoundError, match="job name index not found: nightly:other"):
        await endpoint.diff(elsewhere)


async def test_diff_of_an_unknown_name_is_not_found_like_bacalhau(endpoint: Endpoint) -> None:
    with pytest.raises(NotFoundError) as caught:
        await endpoint.diff(_spec("never-submitted"))
    assert caught.value.message == "job name index not found: never-submitted:default"
    assert caught.value.http_status == 404


async def test_diff_of_an_unnamed_job_is_a_validation_error_with_bacalhau_hint(endpoint: Endpoint) -> None:
    with pytest.raises(BacalhauError) as caught:
        await endpoint.diff(_spec(name="  "))
    assert caught.value.code is ErrorCode.ValidationError and caught.value.http_status == 400
    assert caught.value.message == "invalid job spec: name is missing"
    assert caught.value.hint == "Job name must be provided in the job spec for diff operations"


async def test_resubmitting_with_only_a_resource_case_change_is_refused_as_unchanged(endpoint: Endpoint) -> None:
    first = _spec()
    first.tasks[0].resources = ResourcesConfig(Memory="1GB")
    await endpoint.submit(first)
    again = _spec()
    again.tasks[0].resources = ResourcesConfig(Memory="1gb")
    with pytest.raises(BacalhauError, match="no changes detected for new job spec"):
        await endpoint.submit(again)
