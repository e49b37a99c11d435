"""How the SQLite job store's connection reads and nests: a read sees every write whose caller may
have heard of it, and store calls inside a transaction take no savepoint yet never commit half of
themselves. Real SQLite files; SQLite's trace hook counts the statements the connection runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.models.errors import ConflictError, DatastoreError, NotFoundError
from bacalhau.orchestrator.jobstore import sqlite_connection
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.jobstore.sqlite_connection import SQLiteConnection
from factories import make_evaluation, make_event, make_job


def statements_of(store: SQLiteJobStore) -> list[str]:
    """Every statement the store's connection runs from now on, upper-cased."""
    seen: list[str] = []
    store._db._connection().set_trace_callback(lambda sql: seen.append(" ".join(sql.split()).upper()))
    return seen


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[SQLiteConnection]:
    """A bare connection with one table of its own, for writes the store's methods would not make."""
    opened = SQLiteConnection(path=tmp_path / "jobs.db")
    opened._connection().execute("CREATE TABLE t (v INTEGER NOT NULL)")
    try:
        yield opened
    finally:
        await opened.close()


async def rows(conn: SQLiteConnection) -> list[int]:
    async with conn.reading() as db:
        return [int(r[0]) for r in db.execute("SELECT v FROM t ORDER BY v")]


# ---- reads ----------------------------------------------------------------------------------------


async def test_a_read_sees_a_write_that_waits_for_its_groups_commit(
    store: SQLiteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst: the first submission of a Name waits for its group's COMMIT when a second one with the
    # same Name looks it up. The lookup must find it (the second is an update), not miss it and get a
    # 409 from the name check: a read commits the waiting group first.
    monkeypatch.setattr(sqlite_connection, "BUSY_WINDOW_S", 60.0)
    warm = make_job()
    await store.create_job(warm, [])  # a COMMIT "just now": the store is busy from here on
    named = make_job(name="nightly")
    creating = asyncio.create_task(store.create_job(named, [make_event(named)]))
    await asyncio.sleep(0)
    assert not creating.done()  # its writes are done; it waits for the group's COMMIT
    found = await store.get_job_by_name("nightly", named.namespace)
    assert found is not None and found.id == named.id
    await creating


async def test_a_read_inside_a_transaction_sees_its_own_writes(store: SQLiteJobStore) -> None:
    job = make_job()
    async with store.transaction():
        await store.create_job(job, [make_event(job)])
        assert (await store.get_job(job.id)).id == job.id
        assert [e.seq_num for e in await store.list_history(job.id)] == [1]


async def test_reading_after_close_is_a_clear_error(tmp_path: Path) -> None:
    closed = SQLiteConnection(path=tmp_path / "jobs.db")
    await closed.close()
    with pytest.raises(DatastoreError, match="closed"):
        async with closed.reading():
            pass


# ---- savepoints -----------------------------------------------------------------------------------


async def test_a_lone_store_call_and_a_lone_transaction_run_no_savepoint(store: SQLiteJobStore) -> None:
    seen = statements_of(store)
    job = make_job()
    await store.create_job(job, [make_event(job)])
    async with store.transaction():
        evaluation = make_evaluation(job)
        await store.create_evaluation(evaluation)
        await store.update_evaluation_status(evaluation.id, evaluation.status, "planned")
    assert not [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE"))], seen
    assert seen.count("COMMIT") == 2


async def test_a_failure_before_any_write_can_be_caught_and_the_transaction_goes_on(store: SQLiteJobStore) -> None:
    existing, fresh = make_job(), make_job()
    await store.create_job(existing, [])
    async with store.transaction():
        with pytest.raises(ConflictError):
            await store.create_job(existing, [make_event(existing)])  # refused by its check, before writing
        await store.create_job(fresh, [make_event(fresh)])
    assert (await store.get_job(fresh.id)).id == fresh.id
    assert [e.seq_num for e in await store.list_history(fresh.id)] == [1]
    assert await store.list_history(existing.id) == []


async def test_a_call_that_fails_after_writing_is_never_half_committed(conn: SQLiteConnection) -> None:
    with pytest.raises(DatastoreError, match="failed after writing part of its change"):
        async with conn.transaction():
            async with conn.writing() as db:
                db.execute("INSERT INTO t (v) VALUES (1)")
            try:
                async with conn.writing() as db:
                    db.execute("INSERT INTO t (v) VALUES (2)")
                    raise RuntimeError("fails after its first write")
            except RuntimeError:
                pass  # caught, as if the call were optional: its half must still not be committed
    assert await rows(conn) == []
    async with conn.writing() as db:  # the connection is usable afterwards
        db.execute("INSERT INTO t (v) VALUES (3)")
    assert await rows(conn) == [3]


async def test_a_call_in_its_own_nested_transaction_fails_alone(conn: SQLiteConnection) -> None:
    async with conn.transaction():
        async with conn.writing() as db:
            db.execute("INSERT INTO t (v) VALUES (1)")
        try:
            async with conn.transaction(), conn.writing() as db:
                db.execute("INSERT INTO t (v) VALUES (2)")
                raise RuntimeError("fails after writing")
        except RuntimeError:
            pass
        async with conn.writing() as db:
            db.execute("INSERT INTO t (v) VALUES (4)")
    assert await rows(conn) == [1, 4]


async def test_a_failing_member_after_the_first_of_a_group_undoes_only_its_own_writes(
    conn: SQLiteConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A busy store (a COMMIT "just" happened): the three join one group. The first runs without a
    # savepoint; the two after it each run in one, so the failing one undoes only its own write.
    monkeypatch.setattr(sqlite_connection, "BUSY_WINDOW_S", 60.0)
    async with conn.writing() as db:
        db.execute("INSERT INTO t (v) VALUES (0)")
    statements: list[str] = []
    conn._connection().set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))

    async def member(value: int, *, fail: bool = False) -> None:
        async with conn.writing() as db:
            db.execute("INSERT INTO t (v) VALUES (?)", (value,))
            if fail:
                raise RuntimeError("this member fails after writing")

    results = await asyncio.gather(member(1), member(2, fail=True), member(3), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], RuntimeError) and results[2] is None
    assert await rows(conn) == [0, 1, 3]
    assert statements.count("COMMIT") == 1 and statements.count("SAVEPOINT") == 2, statements


async def test_an_event_refused_for_an_unknown_job_leaves_nothing_of_its_call(store: SQLiteJobStore) -> None:
    # Each store call checks and numbers its events before its first write: a refused event is a
    # failure before writing, which the transaction survives (no savepoint needed).
    stored, fresh, unknown = make_job(), make_job(), make_job()
    await store.create_job(stored, [make_event(stored)])
    async with store.transaction():
        with pytest.raises(NotFoundError):
            await store.create_job(fresh, [make_event(fresh), make_event(unknown)])
        with pytest.raises(NotFoundError):
            await store.add_history([make_event(stored, message="first"), make_event(unknown)])
        await store.add_history([make_event(stored, message="after")])
    with pytest.raises(NotFoundError):
        await store.get_job(fresh.id)
    assert [e.seq_num for e in await store.list_history(stored.id)] == [1, 2]
    assert (await store.list_history(stored.id))[-1].event.message == "after"


async def test_a_new_version_refused_for_its_name_leaves_nothing_and_the_transaction_goes_on(
    store: SQLiteJobStore,
) -> None:
    first, second = make_job(name="first"), make_job(name="second")
    for job in (first, second):
        await store.create_job(job, [])
    renamed = (await store.get_job(second.id)).model_copy(update={"name": "first", "version": 2})
    async with store.transaction():
        with pytest.raises(ConflictError, match="already used"):
            await store.update_job_spec(renamed, [])  # refused by the Name check, before the archive
        await store.add_history([make_event(second, message="after")])
    assert [job.version for job in await store.list_job_versions(second.id)] == [1]
    assert (await store.get_job(second.id)).name == "second"
    assert [e.event.message for e in await store.list_history(second.id)] == ["after"]
