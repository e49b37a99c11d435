"""The SQLite job store's schema: DDL, connection settings and forward-only migrations.

Every object is stored whole as JSON (its wire form) in a `data` column, next to the few columns the
queries filter or sort on. Adding a queryable field therefore means a new migration that adds a column
(back-filled from `data` with `json_extract`), never a change to an existing migration.

The `schema_version` table holds one row: the number of the last migration applied. Opening a file
written by a newer bacalhau-py (a higher version than we know) is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from bacalhau import sqlite

_V1: Final = (
    """
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        namespace   TEXT NOT NULL,
        name        TEXT NOT NULL,
        state       INTEGER NOT NULL,
        version     INTEGER NOT NULL,
        create_time INTEGER NOT NULL,
        modify_time INTEGER NOT NULL,
        labels      TEXT NOT NULL,  -- JSON object, read by the label selector without decoding data
        data        TEXT NOT NULL
    )
    """,
    # Same Name + Namespace is an update of the existing job, never a second job (CONTRACT 1.1).
    "CREATE UNIQUE INDEX jobs_namespace_name ON jobs (namespace, name) WHERE name != ''",
    "CREATE INDEX jobs_create_time ON jobs (create_time)",
    "CREATE INDEX jobs_modify_time ON jobs (modify_time)",
    # Superseded versions only: the current version lives in `jobs`, so a state update is one write.
    """
    CREATE TABLE job_versions (
        job_id  TEXT NOT NULL REFERENCES jobs (id),
        version INTEGER NOT NULL,
        data    TEXT NOT NULL,
        PRIMARY KEY (job_id, version)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE executions (
        id            TEXT PRIMARY KEY,
        job_id        TEXT NOT NULL REFERENCES jobs (id),
        node_id       TEXT NOT NULL,
        compute_state INTEGER NOT NULL,
        job_version   INTEGER NOT NULL,
        create_time   INTEGER NOT NULL,
        modify_time   INTEGER NOT NULL,
        data          TEXT NOT NULL
    )
    """,
    "CREATE INDEX executions_job ON executions (job_id, create_time)",
    "CREATE INDEX executions_node ON executions (node_id, compute_state)",
    """
    CREATE TABLE evaluations (
        id          TEXT PRIMARY KEY,
        job_id      TEXT NOT NULL,
        status      TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        data        TEXT NOT NULL
    )
    """,
    "CREATE INDEX evaluations_status ON evaluations (status, create_time)",
    """
    CREATE TABLE history (
        job_id       TEXT NOT NULL REFERENCES jobs (id),
        seq_num      INTEGER NOT NULL,
        type         INTEGER NOT NULL,
        job_version  INTEGER NOT NULL,
        execution_id TEXT NOT NULL,
        node_id      TEXT NOT NULL,
        time_ns      INTEGER NOT NULL,
        data         TEXT NOT NULL,
        PRIMARY KEY (job_id, seq_num)
    ) WITHOUT ROWID
    """,
    # The history is the permanent audit log: the database itself refuses to rewrite it.
    """
    CREATE TRIGGER history_no_update BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'job history is append-only'); END
    """,
    """
    CREATE TRIGGER history_no_delete BEFORE DELETE ON history
    BEGIN SELECT RAISE(ABORT, 'job history is append-only'); END
    """,
)

# Executions not in a terminal compute state (AskForBidRejected 4, BidRejected 8, Completed 9, Failed 10,
# Cancelled 11). Written out as literals because SQLite only uses a partial index for a query whose WHERE
# contains the index's own condition, and an index condition cannot take parameters.
ACTIVE_EXECUTION: Final = "compute_state NOT IN (4, 8, 9, 10, 11)"

_V2: Final = (
    # Only the active executions: the node-loss sweep reads (node, job) pairs from it in time proportional
    # to the work in flight, however long the execution history grows.
    f"CREATE INDEX executions_active_by_node ON executions (node_id, job_id) WHERE {ACTIVE_EXECUTION}",
)

# Jobs not in a terminal state (Completed 4, Failed 5, Stopped 6), as literals for the same reason.
ACTIVE_JOB: Final = "state NOT IN (4, 5, 6)"
JOB_TYPE: Final = "json_extract(data, '$.Type')"

_V3: Final = (
    # The active jobs by type: a node that joins finds the daemon jobs it should run without reading
    # every job ever submitted.
    f"CREATE INDEX jobs_active_by_type ON jobs ({JOB_TYPE}) WHERE {ACTIVE_JOB}",
)

_V4: Final = (
    # The result cache (orchestrator/result_reuse.py): a job fingerprint -> the completed execution whose
    # result an identical job may reuse. The newest completion of a fingerprint wins.
    """
    CREATE TABLE result_cache (
        fingerprint  TEXT PRIMARY KEY,
        job_id       TEXT NOT NULL REFERENCES jobs (id),
        execution_id TEXT NOT NULL REFERENCES executions (id),
        time_ns      INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
)

_V5: Final = (
    # The web UI's state filter and its counts by state: a page of Running jobs, or how many are Queued,
    # without reading every job ever submitted.
    "CREATE INDEX jobs_state_create_time ON jobs (state, create_time)",
)

_V6: Final = (
    # Jobs by state, kept by the database itself as jobs are written: the overview's counts read seven
    # rows instead of scanning an index of every job ever stored (805 ms at a million jobs before).
    "CREATE TABLE job_state_counts (state INTEGER PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    # Completions per minute: the jobs of one state modified within a window, counted in the index.
    "CREATE INDEX jobs_state_modify_time ON jobs (state, modify_time)",
    "INSERT INTO job_state_counts (state, n) SELECT state, COUNT(*) FROM jobs GROUP BY state",
    """
    CREATE TRIGGER job_state_counts_insert AFTER INSERT ON jobs
    BEGIN
        INSERT INTO job_state_counts (state, n) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER job_state_counts_update AFTER UPDATE OF state ON jobs WHEN OLD.state != NEW.state
    BEGIN
        UPDATE job_state_counts SET n = n - 1 WHERE state = OLD.state;
        INSERT INTO job_state_counts (state, n) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER job_state_counts_delete AFTER DELETE ON jobs
    BEGIN
        UPDATE job_state_counts SET n = n - 1 WHERE state = OLD.state;
    END
    """,
)

# Migration N (1-based) brings the schema from version N-1 to N. Append; never edit a released one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaTooNewError(Exception):
    """The file was written by a newer schema than this code knows."""

    def __init__(self, found: int) -> None:
        super().__init__(f"job store schema version {found} is newer than this bacalhau-py supports ({SCHEMA_VERSION})")
        self.found = found


def configure(conn: sqlite3.Connection) -> None:
    """Apply the connection settings (bacalhau.sqlite's, with foreign keys: the schema declares them);
    raises sqlite3.Error on a file that is not a database."""
    sqlite.configure(conn, foreign_keys=True)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION in one transaction and return the version found before.

    The connection must be in autocommit mode (isolation_level=None). Raises SchemaTooNewError if the
    file is ahead of us, sqlite3.Error on storage failure.
    """
    # IMMEDIATE: two processes opening a fresh file at once must not both run migration 1.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        found = 0 if row is None else int(row[0])
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(found)
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif found != SCHEMA_VERSION:
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found
