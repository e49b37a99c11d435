"""The audit log: who did what through the API, and what came of it (ours; Bacalhau's #4186, never built).

One SQLite row per request that changes something (any method but GET/HEAD/OPTIONS) and per request the
API refused (401/403), whatever its method: when, who (the API user, `anonymous` without users), from
where, the capability it needed, the method and path, the job or node it named, the HTTP status. Reads
are not logged (they are most requests, and change nothing). Kept in `<DataDir>/orchestrator/audit.db`,
apart from the job store, the newest MAX_ROWS rows (older ones pruned in batches). Requests without
valid credentials (401) are kept apart: the newest MAX_UNAUTHENTICATED_ROWS of them at most, so that
anyone who reaches the port can never flood out the record of what users did.

Writes are small INSERTs in WAL mode (bacalhau/sqlite.py), committed when the event loop's turn in
which the request ended is over, together with those of the other requests that ended in the same
turn: under load, requests end by the dozen per turn, and a commit each was 3 % of the API's time. A
row is committed before the loop does anything else, so it survives the process being killed as before
(the request itself was answered before it was recorded, then as now). Called with no event loop
running (tools, tests), a row is committed at once. A failing audit file is logged, never the
request's failure.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau import sqlite
from bacalhau.models.clock import rfc3339_nano

log = logging.getLogger(__name__)

MAX_ROWS = 1_000_000
MAX_UNAUTHENTICATED_ROWS = 100_000
_PRUNE_EVERY = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns    INTEGER NOT NULL,
    principal  TEXT NOT NULL,
    client     TEXT NOT NULL,
    capability TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    target     TEXT NOT NULL,
    status     INTEGER NOT NULL,
    reason     TEXT NOT NULL
)
"""
_COLUMNS = "seq, time_ns, principal, client, capability, method, path, target, status, reason"


@dataclass(frozen=True)
class AuditEntry:
    """One recorded request (see the module docstring for what is recorded)."""

    seq: int
    time_ns: int
    principal: str
    client: str
    capability: str
    method: str
    path: str
    target: str
    status: int
    reason: str

    def to_wire(self) -> dict[str, Any]:
        """As GET /api/v1/orchestrator/audit answers it."""
        return {
            "Seq": self.seq, "Time": rfc3339_nano(self.time_ns), "Principal": self.principal, "Client": self.client,
            "Capability": self.capability, "Method": self.method, "Path": self.path, "Target": self.target,
            "Status": self.status, "Outcome": outcome(self.status), "Reason": self.reason,
        }


def outcome(status: int) -> str:
    """`refused` (401/403), `failed` (another 4xx/5xx) or `ok`."""
    if status in (401, 403):
        return "refused"
    return "ok" if status < 400 else "failed"


class AuditLog:
    """The audit table in its own SQLite file; opened by the orchestrator's node, written by the API's gate."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._since_prune = 0
        self._pending: list[tuple[object, ...]] = []  # rows of this turn of the event loop, not yet written

    def open(self) -> None:
        """Open (creating) the file and prune what is beyond MAX_ROWS. Raises sqlite3.Error / OSError."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite.connect(self._path)
        sqlite.checkpoint_in_background(self._conn, self._path)
        self._conn.execute(_SCHEMA)
        self._conn.execute("CREATE INDEX IF NOT EXISTS audit_principal ON audit (principal, seq)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS audit_status ON audit (status, seq)")
        self._prune()  # at every open too: a node restarted often would otherwise never reach _PRUNE_EVERY

    def close(self) -> None:
        """Write what is pending, then close the file. Idempotent."""
        self.flush()
        if self._conn is not None:
            sqlite.close(self._conn)
            self._conn = None

    def record(
        self, *, time_ns: int, principal: str, client: str, capability: str, method: str, path: str, target: str,
        status: int, reason: str = "",
    ) -> None:
        """Append one entry, committed at the end of this turn of the event loop (at once without a
        running loop). Never raises: a failing audit file is logged."""
        if self._conn is None:
            return
        row = (time_ns, principal or "anonymous", client, capability, method, path[:1000], target[:200], status,
               reason[:500])
        self._pending.append(row)
        if len(self._pending) > 1:
            return  # a flush is scheduled already
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop: nothing would run a later flush
            self.flush()

    def flush(self) -> None:
        """Commit the pending entries in one transaction. Never raises: a failing audit file is logged."""
        rows, self._pending = self._pending, []
        if not rows or self._conn is None:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f"INSERT INTO audit ({_COLUMNS.removeprefix('seq, ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                self._since_prune += len(rows)
                if self._since_prune >= _PRUNE_EVERY:
                    self._prune()
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            first = rows[0]
            more = f" and {len(rows) - 1} more request(s)" if len(rows) > 1 else ""
            log.error("audit log %s: could not record %s %s by %s%s: %s",
                      self._path, first[4], first[5], first[1], more, exc)

    def _prune(self) -> None:
        assert self._conn is not None
        self._since_prune = 0
        # Anonymous refusals first, within their own cap (the newest of them kept), then everything.
        self._conn.execute(
            "DELETE FROM audit WHERE status = 401 AND seq <= "
            "(SELECT seq FROM audit WHERE status = 401 ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (MAX_UNAUTHENTICATED_ROWS,),
        )
        # By count, not by seq range: the rows of pruned refusals must not take user actions along with them.
        self._conn.execute(
            "DELETE FROM audit WHERE seq <= (SELECT seq FROM audit ORDER BY seq DESC LIMIT 1 OFFSET ?)", (MAX_ROWS,)
        )

    def query(
        self, *, limit: int = 100, before_seq: int = 0, since_ns: int = 0, principal: str = "", refused_only: bool = False
    ) -> list[AuditEntry]:
        """The newest entries first, `limit` at most, older than `before_seq` (paging) and not older than
        `since_ns`, of one principal if given, refusals only if asked."""
        if self._conn is None:
            return []
        self.flush()
        clauses: list[str] = ["time_ns >= ?"]
        params: list[int | str] = [since_ns]
        if before_seq:
            clauses.append("seq < ?")
            params.append(before_seq)
        if principal:
            clauses.append("principal = ?")
            params.append(principal)
        if refused_only:
            clauses.append("status IN (401, 403)")
        sql = f"SELECT {_COLUMNS} FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?"
        rows = self._conn.execute(sql, (*params, max(1, limit))).fetchall()
        return [AuditEntry(*row) for row in rows]
