"""The compute node's execution store: SQLite records with conditional state changes, kept across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bacalhau.compute.store import ExecutionStore
from bacalhau.models.errors import DatastoreError
from bacalhau.models.execution import RunCommandResult
from bacalhau.models.state import ExecutionStateType as State
from factories import make_execution, make_job


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


def test_update_can_replace_the_execution_document(store: ExecutionStore) -> None:
    execution = make_execution(make_job())
    store.create(execution, State.Running)
    done = execution.model_copy(update={"run_output": RunCommandResult(Stdout="hi", ExitCode=0)})

    store.update_state(execution.id, State.Completed, expected=[State.Running], execution=done)

    record = store.get(execution.id)
    assert record is not None and record.execution.run_output is not None
    assert record.execution.run_output.stdout == "hi"


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
