"""The store floor: how fast raw SQLite inserts rows the size of a job, in the directory nodes keep their data.

    .venv/bin/python bench/store_floor.py [--seconds 2]

The database is created in a fresh directory under the same parent as a bench node's BACALHAU_DIR
(bench/hybrid_node.py: tempfile's default), so the same filesystem, in the journal settings of the node's
stores (WAL, synchronous=NORMAL). One table shaped like the job store's `jobs` (text key, two indexed
timestamps, a ~2 KB JSON document). Two rates, each for about `--seconds`:

    one row per transaction    what a submission that commits once per job cannot beat
    batched (100 per commit)   what group commit would allow

A job submission writes more than one row (job, evaluation, history), so the first rate is an upper bound
on submissions per second for a store that commits each submission on its own. No assertion.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROW_BYTES = 2048
BATCH = 100


def _document(row_bytes: int) -> str:
    """A JSON document of about `row_bytes` bytes (a job's wire form is of that order)."""
    doc = {"Type": "batch", "Namespace": "default", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}]}
    doc["Padding"] = "x" * max(row_bytes - len(json.dumps(doc)) - 16, 0)
    return json.dumps(doc)


@contextmanager
def floor_database() -> Iterator[sqlite3.Connection]:
    """A fresh database in WAL mode with synchronous=NORMAL, deleted (with its directory) afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="bacalhau-bench-store-floor-"))
    conn = sqlite3.connect(directory / "floor.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, create_time INTEGER NOT NULL, "
                     "modify_time INTEGER NOT NULL, data TEXT NOT NULL)")
        conn.execute("CREATE INDEX jobs_create_time ON jobs (create_time)")
        conn.execute("CREATE INDEX jobs_modify_time ON jobs (modify_time)")
        yield conn
    finally:
        conn.close()
        shutil.rmtree(directory, ignore_errors=True)


def insert_rate(*, per_transaction: int, seconds: float = 2.0, row_bytes: int = ROW_BYTES) -> float:
    """Rows per second inserted for about `seconds`, committing every `per_transaction` rows."""
    document = _document(row_bytes)
    with floor_database() as conn:
        rows = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            now = time.time_ns()
            batch = [(f"j-{uuid.uuid4()}", now, now, document) for _ in range(per_transaction)]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO jobs (id, create_time, modify_time, data) VALUES (?, ?, ?, ?)", batch)
            conn.execute("COMMIT")
            rows += per_transaction
        return rows / (time.perf_counter() - started)


def measure(seconds: float = 2.0) -> dict[str, float]:
    """Both rates, rows per second, keyed by a label."""
    return {
        "one ~2 KB row per transaction": insert_rate(per_transaction=1, seconds=seconds),
        f"batched, {BATCH} rows per transaction": insert_rate(per_transaction=BATCH, seconds=seconds),
    }


def main(argv: list[str]) -> int:
    """Print both rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per rate (default 2)")
    args = parser.parse_args(argv)
    print(f"\nSQLite insert floor (WAL, synchronous=NORMAL, in {tempfile.gettempdir()})")
    for label, rate in measure(args.seconds).items():
        print(f"  {label:<36} {rate:>10.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
