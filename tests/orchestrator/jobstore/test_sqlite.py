"""SQLite-specific behaviour of SQLiteJobStore; the JobStore contract is in tests/conformance."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from bacalhau.models.errors import BadRequestError, DatastoreError
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.jobstore import schema
from bacalhau.orchestrator.jobstore.base import JobQuery
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from factories import FakeClock, make_event, make_job


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "orchestrator" / "jobs.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteJobStore]:
    opened = SQLiteJobStore(path=db_path, clock=FakeClock())
    try:
        yield opened
    finally:
        await opened.close()


def raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain second connection, to look at the file the way another process would."""
    return closing(sqlite3.connect(path, isolation_level=None))


async def test_creates_parent_directories_and_uses_wal(store: SQLiteJobStore, db_path: Path) -> None:
    assert db_path.is_file() and store.path == db_path  # noqa: ASYNC240 (a test: blocking is fine)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.SCHEMA_VERSION,)]


async def test_the_file_survives_reopening(store: SQLiteJobStore, db_path: Path) -> None:
    job = make_job()
    await store.create_job(job, [make_event(job)])
    await store.close()
    await store.close()  # idempotent
    again = SQLiteJobStore(path=db_path)
    try:
        assert (await again.get_job(job.id)).id == job.id
        assert len(await again.list_history(job.id)) == 1
    finally:
        await again.close()


async def test_two_instances_share_the_file(store: SQLiteJobStore, db_path: Path) -> None:
    other = SQLiteJobStore(path=db_path)
    try:
        job = make_job()
        await store.create_job(job, [])
        assert (await other.get_job(job.id)).id == job.id
        # Writers on two connections take turns; each sees the other's committed writes. (Not
        # concurrently in one event loop: a group commit holds SQLite's write lock across turns of the
        # loop, and the other connection's busy wait would block the loop. One node, one connection;
        # another process is test_a_writer_waits_for_another_process_holding_the_lock.)
        for i in range(10):
            for s in (store, other):
                await s.add_history([make_event(job, message=str(i))])
        await other.update_job_state(
            job.id, JobStateType.Running, "", expected=frozenset({JobStateType.Pending}), events=[]
        )
        assert (await store.get_job(job.id)).state.state_type is JobStateType.Running
        assert [e.seq_num for e in await store.list_history(job.id)] == list(range(1, 21))
    finally:
        await other.close()


async def test_a_writer_waits_for_another_process_holding_the_lock(store: SQLiteJobStore, db_path: Path) -> None:
    job = make_job()
    await store.create_job(job, [])
    locked = threading.Event()

    def other_process() -> None:
        with raw(db_path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO evaluations (id, job_id, status, create_time, data) VALUES ('x', '', '', 0, '{}')"
            )
            locked.set()
            time.sleep(0.2)  # how long the lock is held, well under the busy timeout
            conn.execute("COMMIT")

    holder = threading.Thread(target=other_process)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        await store.add_history([make_event(job)])  # waits in SQLite's busy handler, then succeeds
    finally:
        holder.join()
    assert len(await store.list_history(job.id)) == 1


async def test_history_rows_cannot_be_rewritten(store: SQLiteJobStore, db_path: Path) -> None:
    job = make_job()
    await store.create_job(job, [make_event(job)])
    with raw(db_path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE history SET data = '{}'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM history")


def test_a_corrupt_file_gives_a_clear_datastore_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatastoreError) as info:
        SQLiteJobStore(path=db_path)
    assert str(db_path) in info.value.message and "not a database" in info.value.message
    assert "move a damaged file aside" in info.value.hint
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_an_unusable_directory_gives_a_clear_datastore_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(DatastoreError, match="cannot create the job store directory"):
        SQLiteJobStore(path=blocker / "jobs.db")


def test_a_file_from_a_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with raw(db_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (999)")
    with pytest.raises(DatastoreError, match="schema version 999 is newer") as info:
        SQLiteJobStore(path=db_path)
    assert "upgrade" in info.value.hint


async def test_sqlite_errors_are_translated(store: SQLiteJobStore, db_path: Path) -> None:
    with raw(db_path) as conn:
        conn.execute("DROP TABLE evaluations")
    with pytest.raises(DatastoreError, match="no such table") as info:
        await store.list_evaluations(statuses=frozenset())
    assert isinstance(info.value.__cause__, sqlite3.OperationalError) and info.value.retryable


async def test_text_that_cannot_be_encoded_is_a_bad_request(store: SQLiteJobStore) -> None:
    with pytest.raises(BadRequestError, match="not valid Unicode"):
        await store.create_job(make_job(name="bad \ud800 name"), [])
    items, _ = await store.list_jobs(JobQuery())
    assert items == []


async def test_using_a_closed_store_is_a_datastore_error(store: SQLiteJobStore) -> None:
    await store.close()
    with pytest.raises(DatastoreError, match="closed"):
        await store.get_job("j-any")


def test_the_active_execution_condition_matches_the_terminal_states() -> None:
    terminal = ", ".join(str(int(s)) for s in sorted(ExecutionStateType) if s.is_terminal)
    assert f"compute_state NOT IN ({terminal})" == schema.ACTIVE_EXECUTION


async def test_the_node_loss_sweep_reads_only_the_partial_index(store: SQLiteJobStore, db_path: Path) -> None:
    with raw(db_path) as conn:
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT DISTINCT node_id, job_id FROM executions WHERE {schema.ACTIVE_EXECUTION}"
        ).fetchall()
    assert any("INDEX executions_active_by_node" in row[-1] for row in plan), plan


async def test_a_version_1_file_is_migrated_and_keeps_its_data(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with raw(db_path) as conn:
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        for statement in schema.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO executions VALUES ('e-1', 'j-1', 'n-1', 6, 1, 0, 0, '{}')")
        conn.execute("COMMIT")
    await SQLiteJobStore(path=db_path).close()  # migrates on open
    with raw(db_path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.SCHEMA_VERSION,)]
        rows = conn.execute(f"SELECT node_id, job_id FROM executions WHERE {schema.ACTIVE_EXECUTION}").fetchall()
        assert rows == [("n-1", "j-1")]


def test_the_active_job_condition_matches_the_terminal_states() -> None:
    terminal = ", ".join(str(int(s)) for s in sorted(JobStateType) if s.is_terminal)
    assert f"state NOT IN ({terminal})" == schema.ACTIVE_JOB


async def test_the_daemon_jobs_of_a_joining_node_are_read_from_the_partial_index(
    store: SQLiteJobStore, db_path: Path
) -> None:
    with raw(db_path) as conn:
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE {schema.JOB_TYPE} = 'daemon' AND {schema.ACTIVE_JOB}"
        ).fetchall()
    assert any("INDEX jobs_active_by_type" in row[-1] for row in plan), plan


async def test_history_after_a_seq_num_holds_only_the_newer_events(store: SQLiteJobStore) -> None:
    from bacalhau.orchestrator.jobstore.base import HistoryQuery

    job = make_job()
    await store.create_job(job, [make_event(job, message="first")])
    await store.add_history([make_event(job, message="second"), make_event(job, message="third")])
    newer = await store.list_history(job.id, HistoryQuery(after_seq=1))
    assert [(e.seq_num, e.event.message) for e in newer] == [(2, "second"), (3, "third")]
    assert await store.list_history(job.id, HistoryQuery(after_seq=3)) == []
    assert len(await store.list_history(job.id, HistoryQuery())) == 3
