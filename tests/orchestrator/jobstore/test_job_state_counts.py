"""Jobs by state, kept by the store's own triggers (schema v6): they agree with a count of the jobs
after inserts, state changes and updates of other fields, and a file from before v6 is back-filled."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.jobstore import schema
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from factories import make_job


def counted(path: Path) -> dict[int, int]:
    with closing(sqlite3.connect(path)) as conn:
        return {int(s): int(n) for s, n in conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}


async def test_counts_follow_every_write(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteJobStore(path=path)
    try:
        jobs = [make_job(name=f"j{i}") for i in range(5)]
        for job in jobs:
            await store.create_job(job, [])
        await store.update_job_state(jobs[0].id, JobStateType.Running, "go", expected=frozenset(JobStateType), events=[])
        await store.update_job_state(jobs[0].id, JobStateType.Completed, "done", expected=frozenset(JobStateType),
                                     events=[])
        await store.update_job_state(jobs[1].id, JobStateType.Failed, "no", expected=frozenset(JobStateType), events=[])
        await store.update_job_state(jobs[2].id, JobStateType.Pending, "again", expected=frozenset(JobStateType),
                                     events=[])  # a write that keeps the state
        assert (await store.get_job(jobs[2].id)).state.state_type is JobStateType.Pending
        counts, _ = await store.job_counts(0, 60_000_000_000)
    finally:
        await store.close()
    assert counts == counted(path) == {int(JobStateType.Pending): 3, int(JobStateType.Completed): 1,
                                       int(JobStateType.Failed): 1}


async def test_a_file_from_before_v6_is_back_filled(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteJobStore(path=path)
    for i in range(3):
        await store.create_job(make_job(name=f"old{i}"), [])
    await store.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:  # as v5 left it
        for trigger in ("insert", "update", "delete"):
            conn.execute(f"DROP TRIGGER job_state_counts_{trigger}")
        conn.execute("DROP TABLE job_state_counts")
        conn.execute("DROP INDEX jobs_state_modify_time")
        conn.execute("UPDATE schema_version SET version = 5")
    reopened = SQLiteJobStore(path=path)
    try:
        counts, _ = await reopened.job_counts(0, 60_000_000_000)
        assert counts == counted(path) == {int(JobStateType.Pending): 3}
        await reopened.create_job(make_job(name="new"), [])
        assert (await reopened.job_counts(0, 60_000_000_000))[0] == {int(JobStateType.Pending): 4}
    finally:
        await reopened.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (schema.SCHEMA_VERSION,)
