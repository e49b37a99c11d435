"""The JobStore conformance suite: every implementation must pass every test here.

To add a backend, write a class with `async def open(self) -> JobStore` (each call opens a new store on
the same underlying data, so reopening can be tested) and append a `pytest.param` to BACKENDS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bacalhau.models.errors import BadRequestError, ConflictError, NotFoundError
from bacalhau.models.execution import DesiredState, ExecutionState, RunCommandResult
from bacalhau.models.history import JobHistory
from bacalhau.models.job import Job, JobState
from bacalhau.models.state import (
    EvaluationStatus,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobHistoryType,
    JobStateType,
)
from bacalhau.orchestrator.jobstore.base import (
    ExecutionBrief,
    ExecutionQuery,
    ExecutionUpdate,
    HistoryQuery,
    JobBrief,
    JobQuery,
    JobStore,
)
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from factories import (
    FakeClock,
    make_evaluation,
    make_event,
    make_execution,
    make_execution_event,
    make_job,
)

S = JobStateType
E = ExecutionStateType


class Backend(Protocol):
    async def open(self) -> JobStore: ...


@dataclass
class SQLiteBackend:
    path: Path
    clock: FakeClock

    async def open(self) -> JobStore:
        return SQLiteJobStore(path=self.path, clock=self.clock)


BackendFactory = Callable[[Path, FakeClock], Backend]
BACKENDS = [
    pytest.param(lambda tmp, clock: SQLiteBackend(tmp / "orchestrator" / "jobs.db", clock), id="sqlite"),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Backend:
    factory: BackendFactory = request.param
    return factory(tmp_path, clock)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[JobStore]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()


async def stored_job(store: JobStore, **overrides: object) -> Job:
    job = make_job(**overrides)
    await store.create_job(job, [make_event(job)])
    return await store.get_job(job.id)


# ---- jobs -------------------------------------------------------------------------------------------


async def test_create_then_get_returns_the_job_with_times_filled(store: JobStore, clock: FakeClock) -> None:
    job = make_job(labels={"team": "a"})
    before = clock.now_ns
    await store.create_job(job, [])
    got = await store.get_job(job.id)
    assert got.model_copy(update={"create_time": 0, "modify_time": 0}) == job
    assert got.create_time >= before and got.modify_time == got.create_time


async def test_create_keeps_given_times_and_fills_defaults(store: JobStore) -> None:
    job = make_job(namespace="", version=0, revision=0, create_time=5, modify_time=6)
    await store.create_job(job, [])
    got = await store.get_job(job.id)
    assert (got.namespace, got.version, got.revision, got.create_time, got.modify_time) == ("default", 1, 1, 5, 6)
    assert job.namespace == "" and job.version == 0  # the caller's object is not mutated


async def test_create_with_an_existing_id_conflicts(store: JobStore) -> None:
    job = await stored_job(store)
    with pytest.raises(ConflictError, match="already exists"):
        await store.create_job(make_job(id=job.id), [])


async def test_a_name_is_unique_within_a_namespace_only(store: JobStore) -> None:
    await stored_job(store, name="etl")
    await stored_job(store, name="etl", namespace="other")
    with pytest.raises(ConflictError, match="etl"):
        await store.create_job(make_job(name="etl"), [])


async def test_get_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(NotFoundError, match="job not found: j-nope"):
        await store.get_job("j-nope")


async def test_the_history_and_executions_of_an_unknown_job_are_not_found(store: JobStore) -> None:
    for query in (HistoryQuery(), HistoryQuery(job_version=2), HistoryQuery(all_versions=True)):
        with pytest.raises(NotFoundError, match="job not found: j-nope"):
            await store.list_history("j-nope", query)
    for execution_query in (ExecutionQuery(), ExecutionQuery(job_version=2), ExecutionQuery(all_versions=True)):
        with pytest.raises(NotFoundError, match="job not found: j-nope"):
            await store.list_executions("j-nope", execution_query)
    job = await stored_job(store)  # a known job with nothing (yet) is empty, not missing
    assert await store.list_executions(job.id) == []
    assert await store.list_history(job.id, HistoryQuery(after_seq=10_000)) == []


async def test_resolve_by_id_prefix_and_name(store: JobStore) -> None:
    job = await stored_job(store, id="j-1234abcd-0000-4000-8000-000000000000", name="nightly")
    await stored_job(store, id="j-99999999-0000-4000-8000-000000000000", name="nightly", namespace="ns2")
    assert (await store.resolve_job(job.id)).id == job.id
    assert (await store.resolve_job("j-1234abcd")).id == job.id
    assert (await store.resolve_job("1234abcd")).id == job.id
    assert (await store.resolve_job("nightly")).id == job.id
    assert (await store.resolve_job("nightly", "default")).id == job.id
    assert (await store.resolve_job("nightly", "ns2")).namespace == "ns2"
    with pytest.raises(NotFoundError, match="job not found: nope"):
        await store.resolve_job("nope")
    with pytest.raises(NotFoundError):
        await store.resolve_job("nightly", "ns3")


async def test_resolve_ambiguous_prefix_lists_the_candidates(store: JobStore) -> None:
    a = await stored_job(store, id="j-abcd1111-0000-4000-8000-000000000000")
    b = await stored_job(store, id="j-abcd2222-0000-4000-8000-000000000000")
    with pytest.raises(BadRequestError) as info:
        await store.resolve_job("abcd")
    assert a.id in info.value.message and b.id in info.value.message
    assert (await store.resolve_job("abcd2")).id == b.id


async def test_resolve_prefers_an_exact_name_over_an_ambiguous_prefix(store: JobStore) -> None:
    await stored_job(store, id="j-abcd1111-0000-4000-8000-000000000000")
    await stored_job(store, id="j-abcd2222-0000-4000-8000-000000000000")
    named = await stored_job(store, name="abcd")
    assert (await store.resolve_job("abcd")).id == named.id


async def test_get_job_by_name(store: JobStore) -> None:
    job = await stored_job(store, name="by-name")
    assert (await store.get_job_by_name("by-name", "")) == job
    assert await store.get_job_by_name("by-name", "elsewhere") is None


async def test_list_filters_by_namespace(store: JobStore) -> None:
    a = await stored_job(store, namespace="default")
    b = await stored_job(store, namespace="other")
    for everywhere in ("", "*"):
        items, more = await store.list_jobs(JobQuery(namespace=everywhere))
        assert {j.id for j in items} == {a.id, b.id} and not more
    items, _ = await store.list_jobs(JobQuery(namespace="other"))
    assert [j.id for j in items] == [b.id]


async def test_list_orders_newest_first_unless_reversed(store: JobStore) -> None:
    ids = [(await stored_job(store)).id for _ in range(3)]
    newest_first, _ = await store.list_jobs(JobQuery())
    assert [j.id for j in newest_first] == ids[::-1]
    oldest_first, _ = await store.list_jobs(JobQuery(reverse=True))
    assert [j.id for j in oldest_first] == ids


async def test_list_orders_by_modify_time(store: JobStore) -> None:
    first, second = await stored_job(store), await stored_job(store)
    await store.update_job_state(first.id, S.Running, "", expected=frozenset({S.Pending}), events=[])
    by_created, _ = await store.list_jobs(JobQuery(order_by="created_at"))
    by_modified, _ = await store.list_jobs(JobQuery(order_by="modified_at"))
    assert [j.id for j in by_created] == [second.id, first.id]
    assert [j.id for j in by_modified] == [first.id, second.id]
    with pytest.raises(BadRequestError, match="order_by"):
        await store.list_jobs(JobQuery(order_by="name"))


async def test_list_pages_with_limit_and_offset(store: JobStore) -> None:
    ids = [(await stored_job(store)).id for _ in range(5)][::-1]
    page1, more1 = await store.list_jobs(JobQuery(limit=2))
    page2, more2 = await store.list_jobs(JobQuery(limit=2, offset=2))
    page3, more3 = await store.list_jobs(JobQuery(limit=2, offset=4))
    assert [j.id for j in page1 + page2 + page3] == ids
    assert (more1, more2, more3) == (True, True, False)
    exact, more = await store.list_jobs(JobQuery(limit=5))
    assert len(exact) == 5 and not more


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        (("env", "=", ("prod",)), {"prod"}),
        (("env", "==", ("prod",)), {"prod"}),
        (("env", "!=", ("prod",)), {"dev", "none"}),
        (("env", "in", ("prod", "dev")), {"prod", "dev"}),
        (("env", "notin", ("prod",)), {"dev", "none"}),
        (("env", "exists", ()), {"prod", "dev"}),
        (("env", "!", ()), {"none"}),
    ],
)
async def test_list_filters_by_label_selector(
    store: JobStore, requirement: tuple[str, str, tuple[str, ...]], expected: set[str]
) -> None:
    await stored_job(store, name="prod", labels={"env": "prod"})
    await stored_job(store, name="dev", labels={"env": "dev"})
    await stored_job(store, name="none", labels={"other": "x"})
    items, _ = await store.list_jobs(JobQuery(labels=(requirement,)))
    assert {j.name for j in items} == expected


async def test_label_filter_applies_before_paging(store: JobStore) -> None:
    wanted = [(await stored_job(store, labels={"keep": "yes"})).id for _ in range(3)]
    for _ in range(3):
        await stored_job(store, labels={"keep": "no"})
    query = JobQuery(labels=(("keep", "=", ("yes",)),), reverse=True, limit=2)
    page1, more1 = await store.list_jobs(query)
    page2, more2 = await store.list_jobs(JobQuery(labels=query.labels, reverse=True, limit=2, offset=2))
    assert [j.id for j in page1 + page2] == wanted and (more1, more2) == (True, False)
    with pytest.raises(BadRequestError, match="operator"):
        await store.list_jobs(JobQuery(labels=(("keep", "~", ("yes",)),)))


async def test_spec_update_makes_a_new_current_version_and_keeps_the_old(store: JobStore) -> None:
    v1 = await stored_job(store, labels={"v": "1"})
    v2 = v1.model_copy(update={"version": 2, "labels": {"v": "2"}})
    await store.update_job_spec(v2, [make_event(v2, message="Job updated")])
    current = await store.get_job(v1.id)
    assert (current.version, current.labels, current.create_time) == (2, {"v": "2"}, v1.create_time)
    assert current.revision > v1.revision and current.modify_time > v1.modify_time
    assert (await store.get_job(v1.id, 1)).labels == {"v": "1"}
    assert (await store.get_job(v1.id, 2)) == current
    assert [j.version for j in await store.list_job_versions(v1.id)] == [1, 2]
    with pytest.raises(NotFoundError, match="version 3"):
        await store.get_job(v1.id, 3)
    with pytest.raises(ConflictError, match="version"):
        await store.update_job_spec(v2, [])
    with pytest.raises(NotFoundError):
        await store.update_job_spec(make_job(version=2), [])


async def test_job_state_update_checks_the_expected_state(store: JobStore, clock: FakeClock) -> None:
    job = await stored_job(store)
    event = make_event(job, previous=S.Pending, new=S.Running)
    await store.update_job_state(
        job.id, S.Running, "started", expected=frozenset({S.Pending}), events=[event], details={"k": "v"}
    )
    updated = await store.get_job(job.id)
    assert updated.state == JobState(StateType=S.Running, Message="started", Details={"k": "v"})
    assert updated.revision == job.revision + 1 and updated.modify_time > job.modify_time
    # Everything else is as it was: the state change is a patch of the stored job, not a rewrite.
    assert updated.model_copy(update={"state": job.state, "revision": job.revision,
                                      "modify_time": job.modify_time}) == job
    history = await store.list_history(job.id)
    assert history[-1].job_state is not None and history[-1].job_state.new is S.Running


async def test_job_progress_is_the_state_and_the_newest_event_by_exact_id(store: JobStore) -> None:
    """What a waiting client polls: cheap, exact IDs only (a prefix or a name is resolved elsewhere)."""
    job = await stored_job(store)
    state, newest = await store.job_progress(job.id) or (None, -1)
    assert state is job.state.state_type and newest == max(e.seq_num for e in await store.list_history(job.id))
    await store.update_job_state(job.id, S.Running, "started", expected=frozenset({job.state.state_type}),
                                 events=[make_event(job, previous=job.state.state_type, new=S.Running)])
    assert await store.job_progress(job.id) == (S.Running, newest + 1)
    assert await store.job_progress(job.id[:6]) is None
    assert await store.job_progress("j-unknown") is None


async def test_a_finished_job_cannot_be_resurrected(store: JobStore) -> None:
    job = await stored_job(store)
    await store.update_job_state(job.id, S.Completed, "", expected=frozenset({S.Pending}), events=[])
    events_before = await store.list_history(job.id)
    with pytest.raises(ConflictError) as info:
        await store.update_job_state(
            job.id, S.Running, "", expected=frozenset({S.Running, S.Queued}), events=[make_event(job)]
        )
    assert f"job {job.id} is Completed, expected one of Queued, Running" in info.value.message
    assert (await store.get_job(job.id)).state.state_type is S.Completed
    assert await store.list_history(job.id) == events_before
    with pytest.raises(NotFoundError):
        await store.update_job_state("j-nope", S.Running, "", expected=frozenset({S.Pending}), events=[])


# ---- executions -------------------------------------------------------------------------------------


async def test_create_and_get_execution(store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job, create_time=0)
    await store.create_execution(execution, [make_execution_event(execution)])
    got = await store.get_execution(execution.id)
    assert got.model_copy(update={"create_time": 0, "modify_time": 0}) == execution
    assert got.create_time > 0
    with pytest.raises(ConflictError):
        await store.create_execution(execution, [])
    with pytest.raises(NotFoundError, match="job not found"):
        await store.create_execution(make_execution(make_job()), [])
    with pytest.raises(NotFoundError, match="execution not found: e-nope"):
        await store.get_execution("e-nope")


async def test_execution_update_replaces_only_given_fields(store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job)
    await store.create_execution(execution, [])
    before = await store.get_execution(execution.id)
    output = RunCommandResult(Stdout="hi", ExitCode=0)
    await store.update_execution(
        ExecutionUpdate(
            execution_id=execution.id,
            expected_states=frozenset({E.New}),
            compute_state=ExecutionState(StateType=E.Completed, Message="done"),
            run_output=output,
            events=[make_execution_event(execution, previous=E.New, new=E.Completed)],
        )
    )
    updated = await store.get_execution(execution.id)
    assert updated.compute_state.state_type is E.Completed and updated.run_output == output
    assert updated.desired_state == execution.desired_state and updated.published_result is None
    assert updated.revision == execution.revision + 1 and updated.modify_time >= execution.modify_time
    stored = await store.list_executions(job.id)
    assert stored == [updated]  # the state column (listing, counts) agrees with the stored execution
    assert updated.model_copy(update={
        "compute_state": before.compute_state, "run_output": None, "revision": before.revision,
        "modify_time": before.modify_time}) == before  # nothing else changed, the job copy included
    [event] = await store.list_history(job.id, HistoryQuery(event_type="execution"))
    assert event.execution_id == execution.id


async def test_updates_keep_any_text_exactly(store: JobStore) -> None:
    """Messages and outputs are patched into the stored JSON: quotes, backslashes, control characters
    and non-ASCII text must read back exactly as written."""
    text = 'naïve "quoted" \\ back\tslash ✓ 🚀 \n line \u0000 nul'
    job = await stored_job(store)
    await store.update_job_state(job.id, S.Running, text, expected=frozenset({job.state.state_type}), events=[],
                                 details={"k": text})
    got = await store.get_job(job.id)
    assert got.state.message == text and got.state.details == {"k": text}
    execution = make_execution(job)
    await store.create_execution(execution, [])
    await store.update_execution(ExecutionUpdate(
        execution_id=execution.id, compute_state=ExecutionState(StateType=E.Failed, Message=text, Details={text: text}),
        run_output=RunCommandResult(Stdout=text, ExitCode=3)))
    stored = await store.get_execution(execution.id)
    assert stored.compute_state.message == text and stored.compute_state.details == {text: text}
    assert stored.run_output is not None and stored.run_output.stdout == text


async def test_execution_update_conflicts_on_an_unexpected_state(store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job, compute_state=ExecutionState(StateType=E.Failed))
    await store.create_execution(execution, [])
    with pytest.raises(ConflictError, match=f"execution {execution.id} is Failed, expected one of New, Running"):
        await store.update_execution(
            ExecutionUpdate(
                execution_id=execution.id,
                expected_states=frozenset({E.Running, E.New}),
                compute_state=ExecutionState(StateType=E.Completed),
            )
        )
    # An empty expectation is no check at all.
    stopped = DesiredState(StateType=ExecutionDesiredStateType.Stopped)
    await store.update_execution(ExecutionUpdate(execution_id=execution.id, desired_state=stopped))
    updated = await store.get_execution(execution.id)
    assert updated.desired_state == stopped and updated.compute_state.state_type is E.Failed
    with pytest.raises(NotFoundError):
        await store.update_execution(ExecutionUpdate(execution_id="e-nope"))


async def test_a_job_brief_is_what_an_evaluation_needs_as_stored(store: JobStore) -> None:
    job = await stored_job(store, namespace="team-a", type="service", priority=7)
    assert await store.job_brief("j-nope") is None

    brief = await store.job_brief(job.id)

    assert brief == JobBrief(id=job.id, namespace="team-a", type="service", priority=7, state=job.state.state_type,
                             version=job.version)
    await store.update_job_state(job.id, S.Running, "", expected=frozenset({job.state.state_type}), events=[])
    after = await store.job_brief(job.id)
    assert after is not None and after.state is S.Running


async def test_an_execution_brief_is_its_ids_and_states_as_stored(store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job)
    await store.create_execution(execution, [])
    assert await store.execution_brief("e-nope") is None

    brief = await store.execution_brief(execution.id)

    stored = await store.get_execution(execution.id)
    assert brief == ExecutionBrief(
        id=execution.id, job_id=job.id, job_version=execution.job_version, node_id=execution.node_id,
        compute_state=execution.compute_state.state_type, desired_state=execution.desired_state.state_type,
        modify_time_ns=stored.modify_time,
    )
    stopped = DesiredState(StateType=ExecutionDesiredStateType.Stopped)
    await store.update_execution(
        ExecutionUpdate(execution_id=execution.id, desired_state=stopped, compute_state=ExecutionState(StateType=E.Failed))
    )
    after = await store.execution_brief(execution.id)
    assert after is not None and (after.compute_state, after.desired_state) == (E.Failed, ExecutionDesiredStateType.Stopped)


async def test_executions_listed_without_their_job_are_otherwise_as_stored(store: JobStore) -> None:
    job = await stored_job(store)
    for _ in range(2):
        await store.create_execution(make_execution(job), [])
    whole = await store.list_executions(job.id)
    light = await store.list_executions(job.id, ExecutionQuery(with_job=False))
    assert all(e.job is not None for e in whole) and all(e.job is None for e in light)
    assert light == [e.model_copy(update={"job": None}) for e in whole]


async def test_list_executions_by_time_and_version(store: JobStore) -> None:
    job = await stored_job(store)
    old = [make_execution(job) for _ in range(2)]
    for execution in old:
        await store.create_execution(execution, [])
    v2 = job.model_copy(update={"version": 2})
    await store.update_job_spec(v2, [])
    new = make_execution(v2)
    await store.create_execution(new, [])
    everything = [e.id for e in await store.list_executions(job.id)]
    assert everything == [old[0].id, old[1].id, new.id]
    reversed_ = await store.list_executions(job.id, ExecutionQuery(reverse=True))
    assert [e.id for e in reversed_] == everything[::-1]
    paged = await store.list_executions(job.id, ExecutionQuery(limit=1, offset=1))
    assert [e.id for e in paged] == [old[1].id]
    current = await store.list_executions(job.id, ExecutionQuery(all_versions=False))
    assert [e.id for e in current] == [new.id]
    first = await store.list_executions(job.id, ExecutionQuery(all_versions=False, job_version=1))
    assert [e.id for e in first] == [old[0].id, old[1].id]


async def test_list_executions_on_node(store: JobStore) -> None:
    job = await stored_job(store)
    running = make_execution(job, node_id="n-1", compute_state=ExecutionState(StateType=E.Running))
    done = make_execution(job, node_id="n-1", compute_state=ExecutionState(StateType=E.Completed))
    elsewhere = make_execution(job, node_id="n-2")
    for execution in (running, done, elsewhere):
        await store.create_execution(execution, [])
    assert [e.id for e in await store.list_executions_on_node("n-1")] == [running.id]
    assert [e.id for e in await store.list_executions_on_node("n-1", active_only=False)] == [running.id, done.id]
    assert await store.list_executions_on_node("n-3") == []


async def test_active_jobs_by_node_lists_jobs_with_unfinished_executions_per_node(store: JobStore) -> None:
    a, b = await stored_job(store), await stored_job(store)
    placed = [
        make_execution(a, node_id="n-1", compute_state=ExecutionState(StateType=E.Running)),
        make_execution(a, node_id="n-1", compute_state=ExecutionState(StateType=E.AskForBid)),
        make_execution(b, node_id="n-1", compute_state=ExecutionState(StateType=E.BidAccepted)),
        make_execution(b, node_id="n-2", compute_state=ExecutionState(StateType=E.Publishing)),
        make_execution(a, node_id="n-3", compute_state=ExecutionState(StateType=E.Completed)),
        make_execution(b, node_id="n-3", compute_state=ExecutionState(StateType=E.Failed)),
    ]
    for execution in placed:
        await store.create_execution(execution, [])
    assert await store.active_jobs_by_node() == {"n-1": {a.id, b.id}, "n-2": {b.id}}
    await store.update_execution(
        ExecutionUpdate(execution_id=placed[3].id, compute_state=ExecutionState(StateType=E.Cancelled))
    )
    assert await store.active_jobs_by_node() == {"n-1": {a.id, b.id}}


async def test_update_execution_checks_the_expected_desired_state(store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job, compute_state=ExecutionState(StateType=E.Running))
    await store.create_execution(execution, [])
    stopped = DesiredState(StateType=ExecutionDesiredStateType.Stopped)
    await store.update_execution(ExecutionUpdate(execution_id=execution.id, desired_state=stopped))
    wanted = frozenset({ExecutionDesiredStateType.Pending, ExecutionDesiredStateType.Running})
    with pytest.raises(ConflictError, match="desired Stopped, expected one of Pending, Running"):
        await store.update_execution(
            ExecutionUpdate(
                execution_id=execution.id,
                expected_desired_states=wanted,
                compute_state=ExecutionState(StateType=E.Completed),
            )
        )
    got = await store.get_execution(execution.id)
    assert got.compute_state.state_type is E.Running  # nothing changed
    await store.update_execution(
        ExecutionUpdate(
            execution_id=execution.id,
            expected_desired_states=frozenset({ExecutionDesiredStateType.Stopped}),
            compute_state=ExecutionState(StateType=E.Cancelled),
        )
    )
    assert (await store.get_execution(execution.id)).compute_state.state_type is E.Cancelled


# ---- history ----------------------------------------------------------------------------------------


async def test_history_seq_num_increases_per_job(store: JobStore) -> None:
    a, b = await stored_job(store), await stored_job(store)
    await store.add_history([make_event(a, message="x"), make_event(b, message="y")])
    await store.add_history([make_event(a, message="z", seq_num=99)])
    assert [(e.seq_num, e.event.message) for e in await store.list_history(a.id)] == [
        (1, "Job submitted"),
        (2, "x"),
        (3, "z"),
    ]
    assert [e.seq_num for e in await store.list_history(b.id)] == [1, 2]


async def test_history_times_are_filled_from_the_clock(store: JobStore, clock: FakeClock) -> None:
    job = await stored_job(store)
    clock.now_ns, clock.tick_ns = 1_800_000_000_123_456_789, 0
    given = make_event(job, time="2026-01-02T03:04:05.5Z")
    await store.add_history([make_event(job), given])
    filled, kept = (await store.list_history(job.id))[-2:]
    assert (filled.time, filled.event.timestamp) == ("2027-01-15T08:00:00.123456789Z", "2027-01-15T08:00:00Z")
    assert kept.time == "2026-01-02T03:04:05.5Z"


async def test_history_filters(store: JobStore, clock: FakeClock) -> None:
    job = await stored_job(store)  # seq 1: job-level "Job submitted"
    e1, e2 = make_execution(job, node_id="n-1"), make_execution(job, node_id="n-2")
    await store.create_execution(e1, [make_execution_event(e1)])  # seq 2
    clock.advance(10)
    since = clock.now_ns // 1_000_000_000
    await store.create_execution(e2, [make_execution_event(e2)])  # seq 3
    await store.add_history([make_event(job, message="later")])  # seq 4

    async def seqs(**query: object) -> list[int]:
        return [e.seq_num for e in await store.list_history(job.id, HistoryQuery(**query))]  # type: ignore[arg-type]

    assert await seqs() == [1, 2, 3, 4]
    assert await seqs(event_type="job") == [1, 4]
    assert await seqs(event_type="execution") == [2, 3]
    assert await seqs(execution_id=e2.id) == [3]
    assert await seqs(node_id="n-1") == [2]
    assert await seqs(since_unix_s=since) == [3, 4]
    assert await seqs(limit=2, offset=1) == [2, 3]
    with pytest.raises(BadRequestError, match="event type"):
        await seqs(event_type="node")
    with pytest.raises(NotFoundError):
        await store.list_history("j-nope")


async def test_history_is_per_job_version(store: JobStore) -> None:
    job = await stored_job(store)
    v2 = job.model_copy(update={"version": 2})
    await store.update_job_spec(v2, [make_event(v2, message="Job updated")])
    await store.add_history([make_event(job, job_version=0, message="unversioned")])

    async def messages(query: HistoryQuery) -> list[str]:
        return [e.event.message for e in await store.list_history(job.id, query)]

    assert await messages(HistoryQuery()) == ["Job updated", "unversioned"]
    assert await messages(HistoryQuery(job_version=1)) == ["Job submitted"]
    assert await messages(HistoryQuery(all_versions=True)) == ["Job submitted", "Job updated", "unversioned"]


async def test_history_for_an_unknown_or_missing_job_is_refused(store: JobStore) -> None:
    with pytest.raises(NotFoundError):
        await store.add_history([make_event(make_job())])
    with pytest.raises(BadRequestError, match="JobID"):
        await store.add_history([JobHistory(Type=JobHistoryType.JobLevel)])


# ---- evaluations ------------------------------------------------------------------------------------


async def test_evaluations(store: JobStore) -> None:
    job = await stored_job(store)
    first, second, done = (make_evaluation(job) for _ in range(3))
    for evaluation in (first, second, done):
        await store.create_evaluation(evaluation)
    await store.update_evaluation_status(done.id, EvaluationStatus.Complete, "scheduled")
    got = await store.get_evaluation(done.id)
    assert (got.status, got.comment) == (EvaluationStatus.Complete, "scheduled")
    pending = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending}))
    assert [e.id for e in pending] == [first.id, second.id]
    both = await store.list_evaluations(statuses=frozenset({EvaluationStatus.Pending, EvaluationStatus.Complete}))
    assert [e.id for e in both] == [first.id, second.id, done.id]
    with pytest.raises(ConflictError):
        await store.create_evaluation(first)
    with pytest.raises(NotFoundError, match="evaluation not found: nope"):
        await store.get_evaluation("nope")
    with pytest.raises(NotFoundError):
        await store.update_evaluation_status("nope", EvaluationStatus.Failed)


# ---- transactions -----------------------------------------------------------------------------------


async def test_an_exception_inside_a_transaction_leaves_nothing_behind(store: JobStore) -> None:
    existing = await stored_job(store)
    job = make_job()
    evaluation = make_evaluation(job)
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction():
            await store.create_job(job, [make_event(job)])
            await store.create_evaluation(evaluation)
            await store.add_history([make_event(existing, message="inside")])
            await store.update_job_state(existing.id, S.Running, "", expected=frozenset({S.Pending}), events=[])
            raise RuntimeError("boom")
    with pytest.raises(NotFoundError):
        await store.get_job(job.id)
    with pytest.raises(NotFoundError):
        await store.get_evaluation(evaluation.id)
    assert [e.event.message for e in await store.list_history(existing.id)] == ["Job submitted"]
    assert (await store.get_job(existing.id)) == existing


async def test_a_conflict_inside_a_transaction_rolls_back_the_earlier_writes(store: JobStore) -> None:
    job = await stored_job(store)
    evaluation = make_evaluation(job)
    with pytest.raises(ConflictError):
        async with store.transaction():
            await store.create_evaluation(evaluation)
            await store.update_job_state(job.id, S.Running, "", expected=frozenset({S.Queued}), events=[])
    with pytest.raises(NotFoundError):
        await store.get_evaluation(evaluation.id)


async def test_nested_transactions_join_the_outer_one(store: JobStore) -> None:
    outer, inner = make_job(), make_job()
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_job(outer, [])
            async with store.transaction():
                await store.create_job(inner, [])
            assert (await store.get_job(inner.id)).id == inner.id  # visible inside, not yet committed
            raise RuntimeError("outer fails after the inner block ended")
    for job in (outer, inner):
        with pytest.raises(NotFoundError):
            await store.get_job(job.id)


async def test_a_failed_call_caught_inside_a_transaction_leaves_no_partial_write(store: JobStore) -> None:
    job = await stored_job(store)
    async with store.transaction():
        with pytest.raises(NotFoundError):
            # The state write succeeds, then the event for an unknown job fails the call.
            await store.update_job_state(
                job.id, S.Running, "", expected=frozenset({S.Pending}), events=[make_event(make_job())]
            )
        await store.add_history([make_event(job, message="after")])
    assert (await store.get_job(job.id)).state.state_type is S.Pending
    assert [e.event.message for e in await store.list_history(job.id)] == ["Job submitted", "after"]


async def test_concurrent_transactions_do_not_interleave(store: JobStore) -> None:
    log: list[str] = []

    async def writer(name: str) -> None:
        async with store.transaction():
            log.append(f"{name} begin")
            for _ in range(3):
                await asyncio.sleep(0)
                await stored_job(store)
            log.append(f"{name} end")

    await asyncio.gather(*(writer(str(i)) for i in range(4)))
    assert all(log[i].split()[0] == log[i + 1].split()[0] for i in range(0, len(log), 2))
    items, _ = await store.list_jobs(JobQuery())
    assert len(items) == 12


async def test_readers_do_not_see_another_tasks_uncommitted_writes(store: JobStore) -> None:
    job = make_job()
    written, release = asyncio.Event(), asyncio.Event()

    async def doomed_writer() -> None:
        async with store.transaction():
            await store.create_job(job, [])
            written.set()
            await release.wait()
            raise RuntimeError("rolled back")

    writer = asyncio.create_task(doomed_writer())
    await written.wait()
    reader = asyncio.create_task(store.get_job(job.id))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(RuntimeError):
        await writer
    with pytest.raises(NotFoundError):
        await reader


async def test_concurrent_history_appends_get_distinct_seq_nums(store: JobStore) -> None:
    job = await stored_job(store)
    await asyncio.gather(*(store.add_history([make_event(job, message=str(i))]) for i in range(20)))
    assert [e.seq_num for e in await store.list_history(job.id)] == list(range(1, 22))


async def test_data_survives_close_and_reopen(backend: Backend, store: JobStore) -> None:
    job = await stored_job(store)
    execution = make_execution(job)
    await store.create_execution(execution, [make_execution_event(execution)])
    evaluation = make_evaluation(job)
    await store.create_evaluation(evaluation)
    history = await store.list_history(job.id)
    await store.close()
    reopened = await backend.open()
    try:
        assert await reopened.get_job(job.id) == job
        stored_execution = await reopened.get_execution(execution.id)
        assert stored_execution.id == execution.id
        assert await reopened.list_executions(job.id) == [stored_execution]
        assert (await reopened.get_evaluation(evaluation.id)).id == evaluation.id
        assert await reopened.list_history(job.id) == history
        await reopened.add_history([make_event(job, message="after reopen")])
        assert [e.seq_num for e in await reopened.list_history(job.id)] == [1, 2, 3]
    finally:
        await reopened.close()


# ---- properties -------------------------------------------------------------------------------------

_transitions = st.lists(
    st.tuples(st.sampled_from(list(S)), st.frozensets(st.sampled_from(list(S)), max_size=3)), max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_transitions)
async def test_conditional_updates_never_leave_a_terminal_state_unexpectedly(
    store: JobStore, steps: list[tuple[JobStateType, frozenset[JobStateType]]]
) -> None:
    job = await stored_job(store)
    state, revision, history = S.Pending, job.revision, 1
    for new_state, expected in steps:
        before = state
        if state in expected:
            await store.update_job_state(
                job.id, new_state, "", expected=expected, events=[make_event(job, new=new_state)]
            )
            state, revision, history = new_state, revision + 1, history + 1
        else:
            with pytest.raises(ConflictError):
                await store.update_job_state(
                    job.id, new_state, "", expected=expected, events=[make_event(job, new=new_state)]
                )
        current = await store.get_job(job.id)
        assert current.state.state_type is state and current.revision == revision
        if before.is_terminal and before not in expected:
            # A terminal state changes only when the caller expected exactly that terminal state.
            assert current.state.state_type is before
    assert len(await store.list_history(job.id)) == history


async def test_active_job_ids_lists_the_unfinished_jobs_of_one_type(store: JobStore) -> None:
    running = await stored_job(store, type="daemon")
    await store.update_job_state(running.id, S.Running, "", expected=frozenset({S.Pending}), events=[])
    pending = await stored_job(store, type="daemon")
    done = await stored_job(store, type="daemon")
    await store.update_job_state(done.id, S.Stopped, "stopped", expected=frozenset({S.Pending}), events=[])
    await stored_job(store, type="batch")
    assert await store.active_job_ids("daemon") == sorted([running.id, pending.id])
    assert await store.active_job_ids("service") == []
