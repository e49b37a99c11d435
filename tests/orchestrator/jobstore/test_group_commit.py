"""Group commit in the SQLite job store's connection: transactions queued behind one another share a
COMMIT, yet each is atomic on its own and none returns before its writes are committed. Real SQLite
files; a second plain connection looks at the file as another process (or the node after kill -9) would.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from bacalhau.models.errors import ConflictError, DatastoreError
from bacalhau.models.job import Job
from bacalhau.orchestrator.jobstore.base import JobQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.jobstore.sqlite_connection import BUSY_WINDOW_S, MAX_GROUP, SQLiteConnection
from factories import make_event, make_job


@pytest.fixture
def db_path(store: SQLiteJobStore) -> Path:
    """The file of tests/orchestrator/conftest.py's `store`."""
    return store.path


def commits_of(store: SQLiteJobStore) -> list[str]:
    """Every COMMIT the store's connection runs from now on, recorded by SQLite's trace hook."""
    seen: list[str] = []
    conn = store._db._connection()
    conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def committed_job_ids(path: Path) -> set[str]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM jobs")}


async def test_a_burst_of_submissions_shares_commits_and_every_one_is_stored(store: SQLiteJobStore, db_path: Path) -> None:
    commits = commits_of(store)
    jobs = [make_job() for _ in range(50)]
    await asyncio.gather(*(store.create_job(job, [make_event(job)]) for job in jobs))
    assert committed_job_ids(db_path) == {job.id for job in jobs}  # each returned only once on disk
    assert 1 <= len(commits) < len(jobs) // 2, f"{len(commits)} COMMITs for {len(jobs)} queued transactions"
    for job in jobs:
        assert [event.seq_num for event in await store.list_history(job.id)] == [1]


async def test_requests_handled_together_share_commits_even_when_each_takes_longer_than_the_busy_window(
    store: SQLiteJobStore, db_path: Path
) -> None:
    # Under load, each request does a millisecond or two of work (parse, validate) before its
    # transaction, so the last COMMIT is always "long" ago; the burst shows in the loop's ready queue.
    commits = commits_of(store)
    jobs = [make_job() for _ in range(40)]

    async def submit(job: Job) -> None:
        busy_until = time.perf_counter() + BUSY_WINDOW_S * 1.5
        while time.perf_counter() < busy_until:  # the request's own work, holding the loop
            pass
        await store.create_job(job, [make_event(job)])

    await asyncio.gather(*(submit(job) for job in jobs))

    assert committed_job_ids(db_path) == {job.id for job in jobs}
    assert len(commits) < len(jobs) // 4, f"{len(commits)} COMMITs for {len(jobs)} requests handled together"


async def test_one_alone_commits_at_once(store: SQLiteJobStore, db_path: Path) -> None:
    commits = commits_of(store)
    job = make_job()
    await store.create_job(job, [make_event(job)])
    assert len(commits) == 1 and committed_job_ids(db_path) == {job.id}


async def test_a_failing_transaction_in_a_group_undoes_only_its_own_writes(store: SQLiteJobStore, db_path: Path) -> None:
    first, second, third = make_job(), make_job(), make_job()

    async def failing() -> None:
        async with store.transaction():
            await store.create_job(second, [make_event(second)])
            raise RuntimeError("this one fails after writing")

    results = await asyncio.gather(
        store.create_job(first, [make_event(first)]),
        failing(),
        store.create_job(third, [make_event(third)]),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], RuntimeError) and results[2] is None
    assert committed_job_ids(db_path) == {first.id, third.id}


async def test_a_conflict_in_a_group_does_not_cost_the_others(store: SQLiteJobStore, db_path: Path) -> None:
    existing = make_job()
    await store.create_job(existing, [])
    fresh = [make_job() for _ in range(5)]
    results = await asyncio.gather(
        *(store.create_job(job, []) for job in fresh[:2]),
        store.create_job(existing, []),  # same ID: ConflictError
        *(store.create_job(job, []) for job in fresh[2:]),
        return_exceptions=True,
    )
    assert isinstance(results[2], ConflictError)
    assert committed_job_ids(db_path) == {existing.id} | {job.id for job in fresh}


async def test_a_failed_commit_fails_every_member(tmp_path: Path) -> None:
    conn = SQLiteConnection(path=tmp_path / "jobs.db")
    try:
        raw = conn._connection()
        raw.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        raw.execute("CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
        raw.execute("PRAGMA foreign_keys=ON")

        async def member(value: int) -> None:
            async with conn.writing() as db:
                db.execute("INSERT INTO child (p) VALUES (?)", (value,))  # no such parent: COMMIT fails

        results = await asyncio.gather(*(member(i) for i in range(4)), return_exceptions=True)
        assert all(isinstance(result, DatastoreError) for result in results), results
        async with conn.reading() as db:
            assert db.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
    finally:
        await conn.close()


async def test_readers_see_only_committed_writes(store: SQLiteJobStore, db_path: Path) -> None:
    jobs = [make_job() for _ in range(10)]
    seen: list[set[str]] = []

    async def reader() -> None:
        listed, _ = await store.list_jobs(JobQuery(limit=0))
        visible = {job.id for job in listed}
        seen.append(visible)
        assert visible <= committed_job_ids(db_path)  # nothing a failed COMMIT could take back

    await asyncio.gather(*(store.create_job(job, []) for job in jobs[:5]), reader(),
                         *(store.create_job(job, []) for job in jobs[5:]), reader())
    assert seen and committed_job_ids(db_path) == {job.id for job in jobs}


async def test_listeners_run_after_the_shared_commit(store: SQLiteJobStore, db_path: Path) -> None:
    woken: list[tuple[str, bool]] = []
    store.add_history_listener(lambda job_id, _ended: woken.append((job_id, job_id in committed_job_ids(db_path))))
    jobs = [make_job() for _ in range(6)]
    await asyncio.gather(*(store.create_job(job, [make_event(job)]) for job in jobs))
    assert sorted(woken) == sorted((job.id, True) for job in jobs)


async def test_a_group_is_bounded(store: SQLiteJobStore) -> None:
    commits = commits_of(store)
    jobs = [make_job() for _ in range(MAX_GROUP + 10)]
    await asyncio.gather(*(store.create_job(job, []) for job in jobs))
    assert len(commits) >= 2  # at most MAX_GROUP transactions wait for one COMMIT


async def test_a_cancelled_waiter_cannot_strand_a_group(store: SQLiteJobStore, db_path: Path) -> None:
    first, second = make_job(), make_job()
    blocker_started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with store.transaction():
            await store.create_job(first, [])
            blocker_started.set()
            await release.wait()

    slow_task = asyncio.create_task(slow())
    await blocker_started.wait()
    doomed = asyncio.create_task(store.create_job(second, []))  # queued behind `slow`
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)
    doomed.cancel()  # gone before it ever ran: `slow` saw a waiter and left its group to a flush
    await asyncio.wait_for(slow_task, 5)
    assert first.id in committed_job_ids(db_path)


async def test_a_lone_write_on_an_idle_store_commits_without_waiting_for_the_loop(store: SQLiteJobStore) -> None:
    """A job's steps are milliseconds apart: each commits at once instead of waiting a turn of the loop."""
    commits = commits_of(store)
    for _ in range(3):
        await asyncio.sleep(2 * BUSY_WINDOW_S)
        job = make_job()
        task = asyncio.ensure_future(store.create_job(job, []))
        await asyncio.sleep(0)  # one turn: the transaction runs and, idle, commits inside it
        assert task.done(), "a lone transaction on an idle store waited for a flush"
        await task
    assert len(commits) == 3
