"""Schema v4 (the result cache): a version 3 file is upgraded on open, its data kept and usable."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bacalhau.models.execution import DesiredState, ExecutionState
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator.jobstore import schema
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from factories import FakeClock, make_event, make_execution, make_job

FP = "c" * 64


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "orchestrator" / "jobs.db"


def raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain second connection, to look at the file the way another process would."""
    return closing(sqlite3.connect(path, isolation_level=None))


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_the_result_cache_is_the_fourth_migration() -> None:
    assert schema.SCHEMA_VERSION >= 4
    assert any("CREATE TABLE result_cache" in statement for statement in schema.MIGRATIONS[3])


async def test_a_new_file_has_the_result_cache(db_path: Path) -> None:
    await SQLiteJobStore(path=db_path).close()
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.SCHEMA_VERSION,)]
        assert columns(conn, "result_cache") == ["fingerprint", "job_id", "execution_id", "time_ns"]


async def test_a_version_3_file_built_by_the_first_three_migrations_gets_the_result_cache(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with raw(db_path) as conn:
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (3)")
        for migration in schema.MIGRATIONS[:3]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("COMMIT")
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'result_cache'").fetchall() == []
    await SQLiteJobStore(path=db_path).close()  # migrates on open
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.SCHEMA_VERSION,)]
        assert columns(conn, "result_cache") == ["fingerprint", "job_id", "execution_id", "time_ns"]
        assert conn.execute("SELECT COUNT(*) FROM result_cache").fetchone() == (0,)


async def test_a_version_3_file_keeps_its_executions_and_they_can_be_remembered(db_path: Path) -> None:
    # A file as a v3 bacalhau-py left it: written by the store, then without v4's table and version.
    clock = FakeClock()
    store = SQLiteJobStore(path=db_path, clock=clock)
    job = make_job()
    await store.create_job(job, [make_event(job)])
    done = make_execution(
        job,
        compute_state=ExecutionState(StateType=ExecutionStateType.Completed),
        desired_state=DesiredState(StateType=ExecutionDesiredStateType.Stopped),
    )
    await store.create_execution(done, [])
    await store.close()
    with raw(db_path) as conn:
        conn.execute("DROP TABLE result_cache")
        conn.execute("DROP INDEX jobs_state_create_time")  # v5's and v6's, made when the store opened this file
        for trigger in ("insert", "update", "delete"):
            conn.execute(f"DROP TRIGGER job_state_counts_{trigger}")
        conn.execute("DROP TABLE job_state_counts")
        conn.execute("DROP INDEX jobs_state_modify_time")
        conn.execute("UPDATE schema_version SET version = 3")

    upgraded = SQLiteJobStore(path=db_path, clock=clock)
    try:
        assert (await upgraded.get_job(job.id)).id == job.id
        assert (await upgraded.get_execution(done.id)).compute_state.state_type is ExecutionStateType.Completed
        assert await upgraded.find_result(FP) is None
        await upgraded.remember_result(FP, job.id, done.id)
        found = await upgraded.find_result(FP)
        assert found is not None and found.id == done.id
    finally:
        await upgraded.close()
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.SCHEMA_VERSION,)]
        assert conn.execute("SELECT fingerprint, job_id, execution_id FROM result_cache").fetchall() == [
            (FP, job.id, done.id)
        ]
