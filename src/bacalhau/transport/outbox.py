"""A persistent, ordered outbox of messages to peers, and the checkpoints of what was received from them.

Every message a node sends over the data plane is first appended here, under the stream of its
destination (one stream per peer), with the next sequence number of that stream: 1, 2, 3, ... The
sender publishes from the outbox and deletes entries only once the peer has acknowledged them, so a
message survives a lost link, a restart and a `kill -9` of the sender, and is replayed after the
last sequence number the peer reports having processed::

    append(stream, type, body) ──> seq N stored ──> published ──ack──> acknowledge(stream, N): rows <= N deleted
                                                      └── no ack / reconnect ──> after(stream, last_acked) replays

Receivers keep `checkpoint(stream)`: the last sequence number processed from a peer. A message at or
below it is a duplicate (a replay after a reconnect) and is acknowledged without being handled again.

SQLite in WAL mode with `synchronous=NORMAL`: a commit survives the process being killed (not a power
cut, which may lose the last few commits but never corrupts). Calls are synchronous sub-millisecond
writes on the event loop's thread, like the compute execution store, so the one connection is never
shared across threads.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bacalhau import sqlite
from bacalhau.models.errors import DatastoreError

# What a frame builder returns: the NATS headers and the body of one message.
Frame = tuple[Mapping[str, str], bytes]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    stream       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    type         TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '{}',   -- JSON map: the frame's metadata, sent as NATS headers
    body         BLOB NOT NULL,
    created_ns   INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    stream       TEXT PRIMARY KEY,
    last_seq     INTEGER NOT NULL DEFAULT 0,   -- highest sequence number appended, as of the last acknowledgement
    acked_seq    INTEGER NOT NULL DEFAULT 0    -- highest sequence number the peer acknowledged
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    stream       TEXT PRIMARY KEY,
    processed    INTEGER NOT NULL               -- highest sequence number received and handled
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One stored message: its stream, sequence number, NCL type name, NATS headers and encoded body."""

    stream: str
    seq: int
    type: str
    headers: dict[str, str]
    body: bytes
    created_ns: int


class Outbox:
    """The outbox and checkpoints of one node, in one SQLite file. Open before use."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._checkpoints: dict[str, int] = {}
        self._last: dict[str, int] = {}  # stream -> last sequence number appended (loaded on first use)
        self._generations: dict[str, int] = {}  # stream -> how many times it was dropped (this process)

    def open(self) -> None:
        """Open (creating if needed) the database. Idempotent."""
        if self._db is not None:
            return
        try:
            db = sqlite.connect(self.path)
            db.executescript(_SCHEMA)
            sqlite.checkpoint_in_background(db, self.path)
        except sqlite3.Error as exc:
            raise DatastoreError(f"cannot open the message outbox {self.path}: {exc}", component="Outbox") from exc
        self._db = db

    def close(self) -> None:
        """Close the database. Idempotent."""
        if self._db is not None:
            sqlite.close(self._db)
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise DatastoreError("the message outbox is not open", component="Outbox")
        return self._db

    def append(self, stream: str, msg_type: str, body: bytes | Callable[[int], Frame]) -> int:
        """Store a message at the end of `stream`; return its sequence number (1 for the first).

        `body` may be a function of the sequence number returning `(headers, body)`, for frames that
        carry their own number (NCL's `Bacalhau-SeqNum`): it is called before the one INSERT, so number
        and frame agree. The numbering is kept in memory (this connection is the only writer): an
        append is one statement and one commit, the cost of every message a node sends.
        """
        db = self._conn
        seq = self.last_seq(stream) + 1
        headers, frame = body(seq) if callable(body) else ({}, body)
        try:
            db.execute(
                "INSERT INTO outbox (stream, seq, type, headers, body, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
                (stream, seq, msg_type, json.dumps(dict(headers), separators=(",", ":")), frame, time.time_ns()),
            )
        except sqlite3.Error as exc:
            raise DatastoreError(f"cannot store a message for {stream}: {exc}", component="Outbox") from exc
        self._last[stream] = seq
        return seq

    def replace(self, stream: str, seq: int, msg_type: str, body: Callable[[int], Frame]) -> None:
        """Store another form of message `seq` of `stream` (same place in the order), e.g. a report kept
        in one link's format for another link to send."""
        headers, frame = body(seq)
        try:
            self._conn.execute(
                "UPDATE outbox SET type = ?, headers = ?, body = ? WHERE stream = ? AND seq = ?",
                (msg_type, json.dumps(dict(headers), separators=(",", ":")), frame, stream, seq),
            )
        except sqlite3.Error as exc:
            raise DatastoreError(f"cannot store a message for {stream}: {exc}", component="Outbox") from exc

    def after(self, stream: str, seq: int, *, limit: int = 100) -> list[OutboxEntry]:
        """Unacknowledged messages of `stream` with a sequence number above `seq`, oldest first."""
        rows = self._conn.execute(
            "SELECT stream, seq, type, headers, body, created_ns FROM outbox WHERE stream = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (stream, seq, limit),
        ).fetchall()
        return [OutboxEntry(r[0], int(r[1]), r[2], json.loads(r[3]), bytes(r[4]), int(r[5])) for r in rows]

    def acknowledge(self, stream: str, seq: int) -> None:
        """The peer processed everything of `stream` up to `seq`: forget those messages.

        Never moves backwards: a stale acknowledgement (a replayed ack, an old handshake) is ignored.
        The stream's numbering is written here too, so that it survives its messages being deleted.
        """
        db = self._conn
        last = self.last_seq(stream)
        seq = min(seq, last)
        with _transaction(db):
            db.execute(
                "INSERT INTO streams (stream, last_seq, acked_seq) VALUES (?, ?, ?) ON CONFLICT (stream) DO UPDATE "
                "SET last_seq = MAX(last_seq, excluded.last_seq), acked_seq = MAX(acked_seq, excluded.acked_seq)",
                (stream, last, seq),
            )
            db.execute("DELETE FROM outbox WHERE stream = ? AND seq <= ?", (stream, seq))

    def last_seq(self, stream: str) -> int:
        """The sequence number of the last message appended to `stream` (0 if none)."""
        cached = self._last.get(stream)
        if cached is None:
            # What was numbered: the highest stored message, or what the stream row kept of deleted ones.
            row = self._conn.execute(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM outbox WHERE stream = ?1), 0), "
                "COALESCE((SELECT last_seq FROM streams WHERE stream = ?1), 0))",
                (stream,),
            ).fetchone()
            cached = self._last[stream] = int(row[0])
        return cached

    def acked_seq(self, stream: str) -> int:
        """The highest sequence number of `stream` the peer acknowledged (0 if none)."""
        row = self._conn.execute("SELECT acked_seq FROM streams WHERE stream = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0

    def pending_count(self, stream: str) -> int:
        """How many messages of `stream` wait for an acknowledgement."""
        row = self._conn.execute("SELECT COUNT(*) FROM outbox WHERE stream = ?", (stream,)).fetchone()
        return int(row[0])

    def drop_stream(self, stream: str) -> None:
        """Forget a stream entirely (its peer was deleted): messages, numbering and checkpoint."""
        db = self._conn
        with _transaction(db):
            db.execute("DELETE FROM outbox WHERE stream = ?", (stream,))
            db.execute("DELETE FROM streams WHERE stream = ?", (stream,))
            db.execute("DELETE FROM checkpoints WHERE stream = ?", (stream,))
        self._checkpoints.pop(stream, None)
        self._last.pop(stream, None)
        self._generations[stream] = self.generation(stream) + 1

    def generation(self, stream: str) -> int:
        """Changes each time `stream` is dropped: an acknowledgement held from before a drop (a sender
        that forgets acked messages lazily) must not be written into the stream's next numbering."""
        return self._generations.get(stream, 0)

    def checkpoint(self, stream: str) -> int:
        """The last sequence number received from the peer of `stream` and handled (0 if none)."""
        # Read on every heartbeat of every node (8 % of the orchestrator's time at 10,000 nodes when it
        # was a query): kept in memory, written through, this connection being the only writer.
        cached = self._checkpoints.get(stream)
        if cached is None:
            row = self._conn.execute("SELECT processed FROM checkpoints WHERE stream = ?", (stream,)).fetchone()
            cached = self._checkpoints[stream] = int(row[0]) if row else 0
        return cached

    def set_checkpoint(self, stream: str, seq: int) -> None:
        """Record that everything from the peer of `stream` up to `seq` was handled (forward only)."""
        if seq <= self.checkpoint(stream):
            return
        self._conn.execute(
            "INSERT INTO checkpoints (stream, processed) VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET processed = excluded.processed WHERE excluded.processed > processed",
            (stream, seq),
        )
        self._checkpoints[stream] = seq

    def reset_checkpoint(self, stream: str, seq: int) -> None:
        """Set the checkpoint of `stream` to `seq`, even backwards (a peer that lost its history)."""
        self._conn.execute(
            "INSERT INTO checkpoints (stream, processed) VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET processed = excluded.processed",
            (stream, seq),
        )
        self._checkpoints[stream] = seq


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
