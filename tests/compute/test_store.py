"""The compute node's execution store: SQLite records with conditional state changes, kept across restarts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from bacalhau.compute.store import ExecutionStore
from bacalhau.models.errors import DatastoreError
from bacalhau.models.execution import RunCommandResult
from bacalhau.models.job import SpecConfig
from bacalhau.models.state import ExecutionStateType as State
from factories import make_execution, make_job

HELLO_CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_create_is_idempotent_per_execution_id(store: ExecutionStore) -> None:
    execution = make_execution(make_job())

    assert store.create(execution, State.BidAccepted) is True
    assert store.create(execution, State.Running) is False

    record = store.get(execution.id)
    assert record is not None
    assert record.state is State.BidAccepted
    assert record.job_id == execution.job_id
    assert record.execution == execution
    assert store.get("e-unknown") is None


def test_state_changes_only_from_the_expected_states(store: ExecutionStore) -> None:
    execution = make_execution(make_job())
    store.create(execution, State.BidAccepted)

    assert store.update_state(execution.id, State.Running, expected=[State.BidAccepted])
    assert not store.update_state(execution.id, State.Running, expected=[State.BidAccepted])
    assert store.update_state(execution.id, State.Cancelled, expected=[State.Running], message="stop")
    assert not store.update_state(execution.id, State.Completed, expected=[State.Running, State.Publishing])

    record = store.get(execution.id)
    assert record is not None
    assert (record.state, record.message) == (State.Cancelled, "stop")


def test_count_is_the_number_of_executions_in_a_state_now(store: ExecutionStore) -> None:
    first, second, third = (make_execution(make_job()) for _ in range(3))
    for execution in (first, second, third):
        store.create(execution, State.Running)
    store.update_state(first.id, State.Completed, expected=[State.Running])
    store.update_state(second.id, State.Completed, expected=[State.Running])

    assert (store.count(State.Completed), store.count(State.Running), store.count(State.Failed)) == (2, 1, 0)


def test_update_writes_the_run_output_and_published_result_into_the_stored_execution(store: ExecutionStore) -> None:
    execution = make_execution(make_job())
    store.create(execution, State.Running)

    store.update_state(execution.id, State.Completed, expected=[State.Running],
                       run_output=RunCommandResult(Stdout="hi", ExitCode=0),
                       published_result=SpecConfig(Type="local", Params={"URL": "http://n/r.tgz"}))

    record = store.get(execution.id)
    assert record is not None and record.execution.run_output is not None
    assert record.execution.run_output.stdout == "hi" and record.execution.run_output.exit_code == 0
    assert record.execution.published_result == SpecConfig(Type="local", Params={"URL": "http://n/r.tgz"})
    # The rest of the stored execution (its job) is as it was.
    assert record.execution.model_copy(update={"run_output": None, "published_result": None}) == execution


def test_a_refused_update_writes_nothing(store: ExecutionStore) -> None:
    execution = make_execution(make_job())
    store.create(execution, State.Completed)

    assert not store.update_state(execution.id, State.Failed, expected=[State.Running],
                                  run_output=RunCommandResult(Stdout="late", ExitCode=1))

    record = store.get(execution.id)
    assert record is not None and record.state is State.Completed and record.execution.run_output is None


def test_records_survive_reopening_and_active_ones_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    first = ExecutionStore(path=path)
    assert first.open() is False
    running, done = make_execution(make_job()), make_execution(make_job())
    first.create(running, State.Running)
    first.create(done, State.Completed)
    first.close()

    second = ExecutionStore(path=path)
    assert second.open() is True
    assert [r.execution_id for r in second.list_active()] == [running.id]
    second.close()


def test_database_uses_write_ahead_logging(store: ExecutionStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_closed_store_raises_a_datastore_error(tmp_path: Path) -> None:
    with pytest.raises(DatastoreError, match="not open"):
        ExecutionStore(path=tmp_path / "x.db").get("e-1")


# -- what results retention uses: ended records, their deletion, published CIDs --------------------------


def ended_execution(
    store: ExecutionStore, state: State = State.Completed, *, cid: str | None = None
) -> tuple[str, int]:
    """An execution that went through Running to `state` (publishing `cid` to IPFS, if given); (ID, end ns)."""
    execution = make_execution(make_job())
    store.create(execution, State.Running)
    published = SpecConfig(Type="ipfs", Params={"CID": cid}) if cid else None
    assert store.update_state(execution.id, state, expected=[State.Running], published_result=published)
    record = store.get(execution.id)
    assert record is not None
    return execution.id, record.update_time_ns


def test_ended_before_pages_through_ended_executions_in_the_order_they_ended(store: ExecutionStore) -> None:
    ended = [ended_execution(store, state) for state in (State.Completed, State.Failed, State.Cancelled)]
    store.create(make_execution(make_job()), State.Running)  # active: never listed
    store.create(make_execution(make_job()), State.BidRejected)  # terminal, but ended after the cutoff
    cutoff_ns = ended[-1][1]

    first = store.ended_before(cutoff_ns, limit=2)
    rest = store.ended_before(cutoff_ns, after=(first[-1].end_time_ns, first[-1].execution_id), limit=2)

    assert [r.execution_id for r in first + rest] == [execution_id for execution_id, _ in ended]
    assert [r.state for r in first + rest] == [State.Completed, State.Failed, State.Cancelled]
    assert store.ended_before(ended[0][1] - 1) == []


def test_ended_records_carry_their_published_result(store: ExecutionStore) -> None:
    published, end_ns = ended_execution(store, cid=HELLO_CID)
    unpublished, _ = ended_execution(store, State.Failed)

    records = {r.execution_id: r for r in store.ended_before(time.time_ns())}

    assert records[published].published_result == SpecConfig(Type="ipfs", Params={"CID": HELLO_CID})
    assert records[published].end_time_ns == end_ns
    assert records[unpublished].published_result is None


def test_delete_ended_deletes_only_records_that_ended_before_the_cutoff(store: ExecutionStore) -> None:
    old, old_end_ns = ended_execution(store)
    recent, _ = ended_execution(store, State.Failed)
    active = make_execution(make_job())
    store.create(active, State.Running)

    assert store.delete_ended([old, recent, active.id, "e-unknown"], cutoff_ns=old_end_ns) == 1

    assert store.get(old) is None
    assert store.get(recent) is not None and store.get(active.id) is not None
    assert store.delete_ended([active.id], cutoff_ns=time.time_ns()) == 0  # active: never, whatever the cutoff
    assert store.record_count() == 2


def test_pruned_records_still_count_in_their_terminal_state(store: ExecutionStore) -> None:
    ids = [ended_execution(store)[0] for _ in range(3)]
    failed, _ = ended_execution(store, State.Failed)

    assert store.delete_ended([*ids[:2], failed], cutoff_ns=time.time_ns()) == 3

    assert store.count(State.Completed) == 3  # jobsCompleted does not go down as records expire
    assert store.count(State.Failed) == 1
    assert store.pruned_count() == 3
    assert store.record_count() == 1


def test_a_cid_is_in_use_while_an_execution_not_excluded_names_it(store: ExecutionStore) -> None:
    shared = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    expired_a, _ = ended_execution(store, cid=shared)
    expired_b, _ = ended_execution(store, cid=shared)
    expired_alone, _ = ended_execution(store, cid=HELLO_CID)

    excluded = [expired_a, expired_b, expired_alone]
    assert store.published_cids_in_use({shared, HELLO_CID}, excluding=excluded) == set()
    kept, _ = ended_execution(store, cid=shared)  # identical content published again: same CID
    assert store.published_cids_in_use({shared, HELLO_CID}, excluding=excluded) == {shared}
    assert store.published_cids_in_use({shared}, excluding=[*excluded, kept]) == set()
    assert store.published_cid_count() == 2


def test_a_store_from_an_earlier_version_gains_the_retention_schema(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE executions (id TEXT PRIMARY KEY, job_id TEXT NOT NULL, state INTEGER NOT NULL,
            message TEXT NOT NULL DEFAULT '', execution TEXT NOT NULL, create_time INTEGER NOT NULL,
            update_time INTEGER NOT NULL);
        CREATE INDEX executions_state ON executions (state);
        """
    )
    execution = make_execution(make_job()).model_copy(
        update={"published_result": SpecConfig(Type="ipfs", Params={"CID": HELLO_CID})}
    )
    old.execute(
        "INSERT INTO executions VALUES (?, ?, ?, '', ?, 1, 1)",
        (execution.id, execution.job_id, int(State.Completed), execution.model_dump_json(by_alias=True)),
    )
    old.commit()
    old.close()

    upgraded = ExecutionStore(path=path)
    upgraded.open()
    try:
        assert upgraded.published_cid_count() == 1
        assert upgraded.delete_ended([execution.id], cutoff_ns=2) == 1
        assert upgraded.count(State.Completed) == 1
    finally:
        upgraded.close()
    db = sqlite3.connect(path)
    try:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = " ".join(
            str(row[3])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM executions"
                " WHERE json_extract(execution, '$.PublishedResult.Params.CID') = ?",
                (HELLO_CID,),
            )
        )
    finally:
        db.close()
    assert {"executions_update_time", "executions_published_cid"} <= indexes
    assert "executions_published_cid" in plan  # the CID look-ups of retention use the index


def test_the_job_type_of_an_execution_is_read_without_loading_it(store: ExecutionStore) -> None:
    daemon = make_execution(make_job(type="daemon", count=0))
    batch = make_execution(make_job())
    store.create(daemon, State.BidAccepted)
    store.create(batch, State.BidAccepted)
    assert store.job_type(daemon.id) == "daemon"
    assert store.job_type(batch.id) == "batch"
    assert store.job_type("e-unknown") is None
    jobless = make_execution(make_job()).model_copy(update={"job": None})
    store.create(jobless, State.BidAccepted)
    assert store.job_type(jobless.id) == ""
