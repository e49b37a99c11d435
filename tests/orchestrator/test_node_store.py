"""SQLiteNodeStore: node records that survive reopening, heartbeat times written without the record."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bacalhau.models.errors import DatastoreError
from bacalhau.models.node import ConnectionStatus, Membership, NodeCordon, NodeState
from bacalhau.orchestrator.node_store import SQLiteNodeStore
from factories import make_node


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "orchestrator" / "nodes.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteNodeStore]:
    opened = SQLiteNodeStore(path=path)
    try:
        yield opened
    finally:
        opened.close()


def test_records_survive_reopening(store: SQLiteNodeStore, path: Path) -> None:
    rejected = make_node(membership=Membership.REJECTED)
    rejected.connection_state.status = ConnectionStatus.DISCONNECTED
    rejected.connection_state.last_error = "node rejected"
    pending = make_node(membership=Membership.PENDING)
    store.put(rejected)
    store.put_many([pending])
    store.close()
    store.close()  # idempotent
    again = SQLiteNodeStore(path=path)
    try:
        loaded = {s.info.node_id: s for s in again.load()}
    finally:
        again.close()
    assert loaded == {rejected.info.node_id: rejected, pending.info.node_id: pending}


def test_a_cordon_is_kept_and_a_record_written_before_cordons_existed_loads_uncordoned(
    store: SQLiteNodeStore, path: Path
) -> None:
    cordoned = make_node()
    cordoned.cordon = NodeCordon(Since="2030-01-01T00:00:00Z", Deadline="2030-01-01T00:10:00.000000001Z", Message="m")
    older = make_node()
    store.put_many([cordoned, older])
    record = older.to_wire()
    del record["Cordon"]
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE nodes SET data = ? WHERE node_id = ?", (json.dumps(record), older.info.node_id))
    loaded = {s.info.node_id: s for s in store.load()}
    assert loaded[cordoned.info.node_id].cordon == cordoned.cordon
    assert loaded[older.info.node_id].cordon is None and loaded[older.info.node_id] == older


def test_put_replaces_and_delete_forgets(store: SQLiteNodeStore) -> None:
    node = make_node()
    store.put(node)
    changed = node.model_copy(update={"membership": Membership.REJECTED})
    store.put(changed)
    assert store.load() == [changed]
    store.delete(node.info.node_id)
    store.delete(node.info.node_id)  # idempotent
    assert store.load() == []


def test_heartbeat_times_are_kept_apart_from_the_record(store: SQLiteNodeStore) -> None:
    node = make_node()
    node.connection_state.last_heartbeat = "2027-01-01T00:00:00Z"
    store.put(node)
    store.put_heartbeats({node.info.node_id: "2027-01-01T00:05:00Z", "n-unknown": "2027-01-01T00:05:00Z"})
    [loaded] = store.load()
    assert loaded.connection_state.last_heartbeat == "2027-01-01T00:05:00Z"
    # Writing the record again makes its own LastHeartbeat current.
    node.connection_state.last_heartbeat = "2027-01-01T00:06:00Z"
    store.put(node)
    assert store.load()[0].connection_state.last_heartbeat == "2027-01-01T00:06:00Z"


def test_a_file_from_a_newer_schema_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(DatastoreError, match="node store schema version 99 is newer") as info:
        SQLiteNodeStore(path=path)
    assert info.value.component == "NodeStore"


def test_a_file_that_is_not_a_database_is_a_datastore_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(DatastoreError, match=r"nodes\.db"):
        SQLiteNodeStore(path=path)


def test_using_a_closed_store_is_a_datastore_error(store: SQLiteNodeStore) -> None:
    store.close()
    with pytest.raises(DatastoreError, match="closed"):
        store.put(NodeState())
