"""Where the orchestrator keeps its node records (Info, Membership, ConnectionState, Cordon) across restarts.

Membership decisions (APPROVED / PENDING / REJECTED), operators' cordons (`node drain`) and the list of
known nodes must survive an orchestrator restart; live details (capacity, the exact last heartbeat) need
not, because every node re-handshakes. So handshakes, approvals, rejections, cordons, deletions and
disconnections are written at once, and heartbeat times lazily, in batches (`put_heartbeats`). A record
is the NodeState as the API serves it, so a field added to NodeState (Cordon) needs no migration: older
records load with its default.

The calls are synchronous: each is one small SQLite statement in WAL mode (well under a millisecond),
which costs less inline on the event loop than a hop to a thread, as in the job store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Protocol

from bacalhau import sqlite
from bacalhau.models.errors import DatastoreError
from bacalhau.models.node import NodeState

COMPONENT: Final = "NodeStore"
_HINT: Final = "check that the directory is writable and has free space; move a damaged nodes.db aside to start empty"

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE nodes (
            node_id        TEXT PRIMARY KEY,
            data           TEXT NOT NULL,            -- the NodeState, as served by the API
            last_heartbeat TEXT NOT NULL DEFAULT ''  -- written lazily; when set, newer than data's
        ) WITHOUT ROWID
        """,
    ),
)


class NodeStore(Protocol):
    """Durable node records. Every method raises DatastoreError on storage failure."""

    def load(self) -> list[NodeState]:
        """Every stored node, as last written (a lazily written heartbeat time included)."""
        ...

    def put(self, state: NodeState) -> None:
        """Insert or replace one node's record. Idempotent."""
        ...

    def put_many(self, states: Iterable[NodeState]) -> None:
        """Insert or replace several records in one transaction. Idempotent."""
        ...

    def put_heartbeats(self, last_heartbeats: Mapping[str, str]) -> None:
        """Record the LastHeartbeat (RFC3339) of known nodes in one transaction; unknown IDs are skipped."""
        ...

    def delete(self, node_id: str) -> None:
        """Forget a node. Idempotent."""
        ...

    def close(self) -> None:
        """Release the file. Idempotent."""
        ...


class SQLiteNodeStore:
    """NodeStore on its own SQLite file (`<DataDir>/orchestrator/nodes.db`).

    A file of its own rather than a table in the job store: node writes (a reconnect storm is
    thousands of handshakes) then never wait behind job transactions, and the JobStore protocol stays
    about jobs. Nothing needs node records and job records in one transaction.
    """

    def __init__(self, *, path: Path) -> None:
        """Open (creating if needed) the store at `path`. DatastoreError if it cannot be used."""
        self.path = path
        try:
            self._conn: sqlite3.Connection | None = sqlite.connect(path, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise DatastoreError(f"cannot open the node store {path}: {exc}", component=COMPONENT, hint=_HINT) from exc
        try:
            with self._translated():
                self._migrate(self._conn)
        except DatastoreError:
            self._conn.close()
            raise

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if found > len(_MIGRATIONS):
                raise sqlite3.DatabaseError(
                    f"node store schema version {found} is newer than this bacalhau-py supports ({len(_MIGRATIONS)})"
                )
            for statements in _MIGRATIONS[found:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def load(self) -> list[NodeState]:
        """Every stored node, ordered by ID."""
        with self._translated() as conn:
            rows = conn.execute("SELECT data, last_heartbeat FROM nodes ORDER BY node_id").fetchall()
        states = []
        for data, last_heartbeat in rows:
            state = NodeState.model_validate_json(data)
            if last_heartbeat:
                state.connection_state.last_heartbeat = last_heartbeat
            states.append(state)
        return states

    def put(self, state: NodeState) -> None:
        """Insert or replace one record."""
        self.put_many([state])

    def put_many(self, states: Iterable[NodeState]) -> None:
        """Insert or replace records in one transaction."""
        rows = [(s.info.node_id, s.model_dump_json(by_alias=True)) for s in states]
        with self._translated() as conn, self._transaction(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO nodes (node_id, data, last_heartbeat) VALUES (?, ?, '')", rows
            )

    def put_heartbeats(self, last_heartbeats: Mapping[str, str]) -> None:
        """Record heartbeat times without rewriting the records."""
        with self._translated() as conn, self._transaction(conn):
            conn.executemany(
                "UPDATE nodes SET last_heartbeat = ? WHERE node_id = ?",
                [(beat, node_id) for node_id, beat in last_heartbeats.items()],
            )

    def delete(self, node_id: str) -> None:
        """Forget a node."""
        with self._translated() as conn:
            conn.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _translated(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            raise DatastoreError(
                f"node store {self.path} is closed", component=COMPONENT, hint="the store was used after close(); this is a bug"
            )
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise DatastoreError(
                f"node store {self.path}: {exc}",
                component=COMPONENT,
                hint=_HINT,
                retryable=isinstance(exc, sqlite3.OperationalError),
            ) from exc
