"""The API's audit log (orchestrator/audit.py) on a real SQLite file, and what writes it and reads it:
the authorization middleware (orchestrator/api/authz.py: refusals and every request that is not a read)
and GET /api/v1/orchestrator/audit (orchestrator/api/audit.py), in an in-process app on a real
orchestrator reached through httpx's ASGI transport.

    record(...)  -> one row (principal '' -> anonymous; path/target/reason truncated); never raises
    query(...)   -> newest first; before_seq (paging), since_ns, principal, refused_only (401/403)
    pruning      -> every _PRUNE_EVERY records, only the newest MAX_ROWS rows are kept
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bacalhau.auth.authorizer import build_authorizer
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.clock import parse_rfc3339_ns
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator import audit as audit_module
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.audit import AuditEntry, AuditLog, outcome
from bacalhau.orchestrator.service import Orchestrator
from factories import make_node_info

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
AUDIT = "/api/v1/orchestrator/audit"
MISSING_JOB = "j-00000000-0000-0000-0000-000000000000"
SECOND_NS = 1_000_000_000
BASE_NS = 1_700_000_000 * SECOND_NS


def add(log: AuditLog, n: int = 1, **fields: Any) -> None:
    """Record `n` entries; fields default to a successful PUT /jobs by alice at BASE_NS + index s."""
    for i in range(n):
        row: dict[str, Any] = {
            "time_ns": BASE_NS + i * SECOND_NS, "principal": "alice", "client": "10.0.0.1", "capability": "write:job",
            "method": "PUT", "path": JOBS, "target": f"j-{i}", "status": 200,
        }
        row.update(fields)
        log.record(**row)


def seqs(entries: list[AuditEntry]) -> list[int]:
    return [e.seq for e in entries]


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator" / "audit.db"


@pytest.fixture
def log(db: Path) -> Iterator[AuditLog]:
    opened = AuditLog(db)
    opened.open()
    try:
        yield opened
    finally:
        opened.close()


# -- record and query ------------------------------------------------------------------------------------------
def test_open_creates_the_directory_and_a_wal_database(db: Path, log: AuditLog) -> None:
    assert db.is_file()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_an_entry_is_stored_field_for_field(log: AuditLog) -> None:
    log.record(time_ns=BASE_NS + 7, principal="alice", client="10.1.2.3", capability="write:job", method="DELETE",
               path=f"{JOBS}/j-1", target="j-1", status=403, reason="user 'alice' does not have ...")
    (entry,) = log.query()
    assert entry == AuditEntry(seq=1, time_ns=BASE_NS + 7, principal="alice", client="10.1.2.3", capability="write:job",
                               method="DELETE", path=f"{JOBS}/j-1", target="j-1", status=403,
                               reason="user 'alice' does not have ...")
    wire = entry.to_wire()
    assert wire["Outcome"] == "refused" and wire["Status"] == 403 and wire["Seq"] == 1
    assert parse_rfc3339_ns(wire["Time"]) == BASE_NS + 7
    assert set(wire) == {"Seq", "Time", "Principal", "Client", "Capability", "Method", "Path", "Target", "Status",
                         "Outcome", "Reason"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "ok"), (201, "ok"), (301, "ok"), (400, "failed"), (401, "refused"), (403, "refused"), (404, "failed"),
     (415, "failed"), (500, "failed")],
)
def test_outcome_of_a_status(status: int, expected: str) -> None:
    assert outcome(status) == expected


def test_query_returns_the_newest_first(log: AuditLog) -> None:
    add(log, 5)
    entries = log.query()
    assert seqs(entries) == [5, 4, 3, 2, 1]
    assert [e.target for e in entries] == ["j-4", "j-3", "j-2", "j-1", "j-0"]
    assert seqs(log.query(limit=2)) == [5, 4]


def test_a_limit_below_one_still_returns_one_entry(log: AuditLog) -> None:
    add(log, 3)
    assert seqs(log.query(limit=0)) == [3]
    assert seqs(log.query(limit=-5)) == [3]


def test_paging_with_before_seq_walks_every_entry_once(log: AuditLog) -> None:
    add(log, 7)
    pages: list[list[int]] = []
    before = 0
    while True:
        page = log.query(limit=3, before_seq=before)
        if not page:
            break
        pages.append(seqs(page))
        before = page[-1].seq
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]


def test_since_ns_keeps_entries_at_or_after_it(log: AuditLog) -> None:
    add(log, 5)  # at BASE_NS + 0..4 s
    assert seqs(log.query(since_ns=BASE_NS + 2 * SECOND_NS)) == [5, 4, 3]
    assert seqs(log.query(since_ns=BASE_NS + 2 * SECOND_NS + 1)) == [5, 4]
    assert log.query(since_ns=BASE_NS + 10 * SECOND_NS) == []
    # Combined with paging
    assert seqs(log.query(since_ns=BASE_NS + SECOND_NS, before_seq=4)) == [3, 2]


def test_principal_filter_and_anonymous(log: AuditLog) -> None:
    add(log, 2, principal="alice")
    add(log, 1, principal="", status=401, reason="Missing Authorization header")
    add(log, 2, principal="bob")
    assert seqs(log.query(principal="alice")) == [2, 1]
    assert seqs(log.query(principal="bob")) == [5, 4]
    anonymous = log.query(principal="anonymous")
    assert seqs(anonymous) == [3] and anonymous[0].principal == "anonymous"
    assert log.query(principal="") == log.query()  # '' means everyone
    assert log.query(principal="ALICE") == []  # exact, as recorded


def test_refused_only_is_401_and_403_only(log: AuditLog) -> None:
    for status in (200, 400, 401, 403, 404, 415, 500):
        add(log, 1, status=status)
    refused = log.query(refused_only=True)
    assert [e.status for e in refused] == [403, 401]
    assert [e.status for e in log.query(refused_only=True, principal="alice", limit=1)] == [403]
    assert [e.status for e in log.query(refused_only=True, before_seq=4)] == [401]


def test_long_path_target_and_reason_are_truncated(log: AuditLog) -> None:
    add(log, 1, path="/p" + "x" * 5000, target="t" * 999, reason="r" * 9999, principal="a" * 300)
    (entry,) = log.query()
    assert entry.path == ("/p" + "x" * 5000)[:1000]
    assert len(entry.target) == 200 and entry.target == "t" * 200
    assert len(entry.reason) == 500
    assert entry.principal == "a" * 300  # the user name is not cut (it is bounded by the user config)


# -- pruning ------------------------------------------------------------------------------------------------------
async def test_requests_that_end_in_one_turn_of_the_loop_share_one_commit(db: Path, log: AuditLog) -> None:
    """Under load requests end by the dozen per turn of the event loop: their rows are committed
    together when the turn is over (not one commit each), before the loop does anything else."""
    for n in range(3):
        log.record(time_ns=BASE_NS + n, principal="alice", client="c", capability="write:job", method="PUT",
                   path=JOBS, target="", status=200)
    assert count_rows(db) == 0  # pending: this turn of the loop is not over
    await asyncio.sleep(0)
    assert count_rows(db) == 3
    assert seqs(log.query()) == [3, 2, 1]


async def test_a_query_sees_rows_still_pending(log: AuditLog) -> None:
    log.record(time_ns=BASE_NS, principal="alice", client="c", capability="write:job", method="PUT",
               path=JOBS, target="", status=200)
    assert [e.principal for e in log.query()] == ["alice"]


def test_pruning_keeps_the_newest_max_rows(monkeypatch: pytest.MonkeyPatch, db: Path, log: AuditLog) -> None:
    monkeypatch.setattr(audit_module, "MAX_ROWS", 5)
    monkeypatch.setattr(audit_module, "_PRUNE_EVERY", 3)
    add(log, 2)
    assert count_rows(db) == 2
    add(log, 4)  # 6 records: pruned at the 3rd (nothing to drop) and the 6th
    assert seqs(log.query(limit=100)) == [6, 5, 4, 3, 2]
    add(log, 3)  # 9: pruned again
    assert seqs(log.query(limit=100)) == [9, 8, 7, 6, 5]
    add(log, 1)  # between prunes the table may hold more than MAX_ROWS, never more than MAX_ROWS + _PRUNE_EVERY - 1
    assert count_rows(db) == 6


def test_pruning_under_load_never_exceeds_the_bound(monkeypatch: pytest.MonkeyPatch, db: Path, log: AuditLog) -> None:
    monkeypatch.setattr(audit_module, "MAX_ROWS", 20)
    monkeypatch.setattr(audit_module, "_PRUNE_EVERY", 7)
    for _ in range(20):
        add(log, 9)
        assert count_rows(db) <= 20 + 7 - 1
    newest = log.query(limit=1)[0].seq
    assert newest == 180
    assert min(seqs(log.query(limit=1000))) >= newest - 20 - 7 + 1


def test_pruning_holds_across_restarts(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    monkeypatch.setattr(audit_module, "MAX_ROWS", 5)
    monkeypatch.setattr(audit_module, "_PRUNE_EVERY", 3)
    for _ in range(10):  # ten node restarts, two writes in each run
        run = AuditLog(db)
        run.open()
        add(run, 2)
        run.close()
    assert count_rows(db) <= 5 + 3 - 1


# -- never raises -------------------------------------------------------------------------------------------------
def test_record_and_query_on_a_closed_log_do_nothing(db: Path, log: AuditLog) -> None:
    add(log, 1)
    log.close()
    add(log, 3)  # no exception
    assert log.query() == []
    log.close()  # twice is fine
    assert count_rows(db) == 1


def test_record_before_open_does_nothing(tmp_path: Path) -> None:
    never = AuditLog(tmp_path / "never" / "audit.db")
    add(never, 1)
    assert never.query() == []
    assert not (tmp_path / "never").exists()


def test_a_failing_write_is_logged_not_raised(db: Path, log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    add(log, 1)
    # Another connection makes every insert fail, as a full disk or a broken file would.
    other = sqlite3.connect(db)
    try:
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk is full'); END")
        other.commit()
    finally:
        other.close()
    with caplog.at_level(logging.ERROR, logger="bacalhau.orchestrator.audit"):
        log.record(time_ns=BASE_NS, principal="bob", client="c", capability="write:node", method="DELETE",
                   path=f"{NODES}/n-1", target="n-1", status=200)
    assert seqs(log.query()) == [1]  # the log still reads
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "could not record DELETE /api/v1/orchestrator/nodes/n-1 by bob" in text and "disk is full" in text, text
    assert str(db) in text


def test_a_dropped_table_is_logged_not_raised(db: Path, log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    other = sqlite3.connect(db)
    try:
        other.execute("DROP TABLE audit")
        other.commit()
    finally:
        other.close()
    with caplog.at_level(logging.ERROR, logger="bacalhau.orchestrator.audit"):
        add(log, 2)
    assert sum("could not record" in r.getMessage() for r in caplog.records) == 2


def test_an_unwritable_location_fails_at_open_and_the_log_stays_harmless(tmp_path: Path) -> None:
    # A regular file where the directory should be: unwritable whoever runs the tests (root included,
    # for whom a chmod 555 directory is still writable).
    blocker = tmp_path / "orchestrator"
    blocker.write_text("not a directory")
    unwritable = AuditLog(blocker / "audit.db")
    with pytest.raises((OSError, sqlite3.Error)):
        unwritable.open()  # loud at startup: the node does not run without its audit log
    add(unwritable, 2)  # and afterwards, nothing raises
    assert unwritable.query() == []
    unwritable.close()


# -- durability ---------------------------------------------------------------------------------------------------
def test_rows_survive_reopening(db: Path) -> None:
    first = AuditLog(db)
    first.open()
    add(first, 3, principal="alice")
    first.close()
    second = AuditLog(db)
    second.open()
    try:
        assert seqs(second.query()) == [3, 2, 1]
        add(second, 1, principal="bob")
        assert [e.principal for e in second.query()] == ["bob", "alice", "alice", "alice"]
        assert second.query()[0].seq == 4  # sequence continues, never reused
    finally:
        second.close()


def test_a_row_is_committed_as_soon_as_it_is_recorded(db: Path, log: AuditLog) -> None:
    add(log, 2)
    # Another connection (another process after a kill) sees both rows while the writer is still open.
    reader = AuditLog(db)
    reader.open()
    try:
        assert seqs(reader.query()) == [2, 1]
    finally:
        reader.close()


# -- the middleware and the route -------------------------------------------------------------------------------
ADMIN_KEY = "audit-admin-key-0123456789"
READER_KEY = "audit-reader-key-0123456789"
JOBREADER_KEY = "audit-jobreader-key-0123456789"
USERS = [
    {"Alias": "admin", "APIKey": ADMIN_KEY, "Capabilities": [{"Actions": ["*"]}]},
    {"Alias": "reader", "APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
    {"Alias": "jobreader", "APIKey": JOBREADER_KEY, "Capabilities": [{"Actions": ["read:job"]}]},
    {"Alias": "carol", "Username": "carol", "Password": "carol-password-1", "Capabilities": [{"Actions": ["*"]}]},
]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
READER = {"Authorization": f"Bearer {READER_KEY}"}
JOBREADER = {"Authorization": f"Bearer {JOBREADER_KEY}"}


def job_spec(name: str = "audited") -> dict[str, Any]:
    return {"Name": name, "Type": "batch", "Tasks": [
        {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]}


def app_with(orchestrator: Orchestrator, log: AuditLog, users: list[dict[str, Any]]) -> FastAPI:
    cfg = BacalhauConfig.from_user({"API": {"Auth": {"Users": users}}})
    return create_app(ApiContext(
        version=BuildVersionInfo(GitVersion="v1.9.0"), node_info=NodeInfo, config=cfg.redacted,
        orchestrator=orchestrator, authorizer=build_authorizer(cfg.api.auth), audit=log,
    ))



@pytest.fixture
async def http(orchestrator: Orchestrator, log: AuditLog) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with(orchestrator, log, USERS), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_new_jobs_id_is_read_from_the_answer(http: httpx.AsyncClient, log: AuditLog) -> None:
    resp = await http.put(JOBS, headers=ADMIN, json={"Job": job_spec()})
    assert resp.status_code == 200, resp.text
    (entry,) = log.query()
    assert (entry.principal, entry.method, entry.path, entry.target, entry.status, entry.capability) == (
        "admin", "PUT", JOBS, resp.json()["JobID"], 200, "write:job")
    assert entry.client == "127.0.0.1" and entry.reason == ""


async def test_reads_are_not_recorded_but_writes_and_their_failures_are(http: httpx.AsyncClient, log: AuditLog) -> None:
    assert (await http.get(JOBS, headers=READER)).status_code == 200
    assert (await http.get(AUDIT, headers=READER)).status_code == 200
    assert (await http.head(JOBS, headers=ADMIN)).status_code != 401
    assert log.query() == []
    stopped = await http.delete(f"{JOBS}/{MISSING_JOB}", headers=ADMIN)
    assert stopped.status_code == 404, stopped.text
    (entry,) = log.query()
    assert (entry.method, entry.target, entry.status, entry.to_wire()["Outcome"]) == ("DELETE", MISSING_JOB, 404, "failed")


async def test_refusals_are_recorded_with_their_reason(http: httpx.AsyncClient, log: AuditLog) -> None:
    assert (await http.get(f"{JOBS}/{MISSING_JOB}")).status_code == 401
    assert (await http.put(f"{JOBS}/{MISSING_JOB}/rerun", headers=READER, json={})).status_code == 403
    assert (await http.get(AUDIT, headers=JOBREADER)).status_code == 403
    assert (await http.get(JOBS, headers={"Authorization": "Bearer wrong-key-000000000000"})).status_code == 401
    wrong, audit_refused, rerun, anonymous = log.query()
    assert (anonymous.principal, anonymous.method, anonymous.target, anonymous.status, anonymous.reason) == (
        "anonymous", "GET", MISSING_JOB, 401, "Missing Authorization header")
    assert (rerun.principal, rerun.capability, rerun.target, rerun.status) == ("reader", "write:job", MISSING_JOB, 403)
    assert rerun.reason == "user 'reader' does not have the required capability 'write:job'"
    assert (audit_refused.principal, audit_refused.capability, audit_refused.path) == ("jobreader", "read:audit", AUDIT)
    assert (wrong.principal, wrong.reason) == ("anonymous", "invalid API key")
    # The refusals only
    assert [e.seq for e in log.query(refused_only=True)] == [4, 3, 2, 1]


async def test_a_refused_websocket_handshake_is_recorded(orchestrator: Orchestrator, log: AuditLog) -> None:
    # Raw ASGI messages in this event loop (starlette's TestClient runs the app in another thread, where
    # the log's SQLite connection may not be used; uvicorn runs it on the loop that opened the log).
    app = app_with(orchestrator, log, USERS)
    path = f"{JOBS}/{MISSING_JOB}/logs"
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "http_version": "1.1", "path": path,
        "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [(b"host", b"test")],
        "client": ("10.9.8.7", 50000), "server": ("test", 80), "subprotocols": [], "extensions": {}, "state": {},
    }
    inbox = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    assert sent and sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 1008, sent
    (entry,) = log.query()
    assert (entry.method, entry.path, entry.status, entry.principal, entry.client, entry.target) == (
        "GET", path, 401, "anonymous", "10.9.8.7", MISSING_JOB)


async def test_a_node_action_names_the_node(orchestrator: Orchestrator, http: httpx.AsyncClient, log: AuditLog) -> None:
    info = make_node_info()
    assert orchestrator.nodes.handshake(info).accepted
    resp = await http.put(f"{NODES}/{info.node_id}", headers=ADMIN, json={"Action": "drain", "Message": "m"})
    assert resp.status_code == 200, resp.text
    (entry,) = log.query()
    assert (entry.capability, entry.target, entry.status) == ("write:node", info.node_id, 200)


async def test_a_node_action_by_body_names_the_node(orchestrator: Orchestrator, http: httpx.AsyncClient, log: AuditLog) -> None:
    info = make_node_info()
    assert orchestrator.nodes.handshake(info).accepted
    resp = await http.post(NODES, headers=ADMIN, json={"Action": "drain", "NodeID": info.node_id, "Message": "m"})
    assert resp.status_code == 200, resp.text
    (entry,) = log.query()
    assert entry.target == info.node_id


async def test_a_diff_is_not_audited_as_a_job_named_diff(http: httpx.AsyncClient, log: AuditLog) -> None:
    put = await http.put(JOBS, headers=ADMIN, json={"Job": job_spec("diffed")})
    assert put.status_code == 200, put.text
    changed = job_spec("diffed")
    changed["Tasks"][0]["Engine"]["Params"]["Image"] = "alpine"
    diff = await http.put(f"{JOBS}/diff", headers=ADMIN, json={"Job": changed})
    assert diff.status_code == 200, diff.text
    entry = log.query()[0]
    assert entry.path == f"{JOBS}/diff"
    assert entry.target in ("", put.json()["JobID"]), entry


async def test_a_handler_crash_is_recorded_as_500(http: httpx.AsyncClient, log: AuditLog,
                                                  monkeypatch: pytest.MonkeyPatch, orchestrator: Orchestrator) -> None:
    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store exploded")

    monkeypatch.setattr(orchestrator.endpoint, "submit", boom)
    resp = await http.put(JOBS, headers=ADMIN, json={"Job": job_spec()})
    assert resp.status_code == 500
    (entry,) = log.query()
    assert (entry.status, entry.to_wire()["Outcome"]) == (500, "failed")


async def test_without_users_writes_are_recorded_as_anonymous(orchestrator: Orchestrator, log: AuditLog) -> None:
    transport = httpx.ASGITransport(app=app_with(orchestrator, log, []))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as open_http:
        resp = await open_http.put(JOBS, json={"Job": job_spec()})
        assert resp.status_code == 200, resp.text
        listed = await open_http.get(AUDIT, params={"principal": "anonymous"})
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["Items"]
    assert (item["Principal"], item["Target"], item["Outcome"]) == ("anonymous", resp.json()["JobID"], "ok")


async def test_the_route_pages_and_filters(http: httpx.AsyncClient, log: AuditLog) -> None:
    add(log, 5, principal="alice")
    add(log, 2, principal="", status=401, time_ns=BASE_NS + 100 * SECOND_NS)
    first = await http.get(AUDIT, headers=READER, params={"limit": 3})
    assert first.status_code == 200, first.text
    assert [i["Seq"] for i in first.json()["Items"]] == [7, 6, 5]
    token = first.json()["NextToken"]
    assert token == "5"
    second = (await http.get(AUDIT, headers=READER, params={"limit": 3, "next_token": token})).json()
    assert [i["Seq"] for i in second["Items"]] == [4, 3, 2]
    third = (await http.get(AUDIT, headers=READER, params={"limit": 3, "next_token": second["NextToken"]})).json()
    assert [i["Seq"] for i in third["Items"]] == [1] and third["NextToken"] == ""
    # An exact fit: no NextToken
    exact = (await http.get(AUDIT, headers=READER, params={"limit": 7})).json()
    assert len(exact["Items"]) == 7 and exact["NextToken"] == ""

    refused = (await http.get(AUDIT, headers=READER, params={"outcome": "Refused"})).json()
    assert [(i["Seq"], i["Principal"], i["Outcome"]) for i in refused["Items"]] == [
        (7, "anonymous", "refused"), (6, "anonymous", "refused")]
    alice = (await http.get(AUDIT, headers=READER, params={"principal": "alice", "limit": 2})).json()
    assert [i["Seq"] for i in alice["Items"]] == [5, 4] and alice["NextToken"] == "4"
    since = (await http.get(AUDIT, headers=READER, params={"since": BASE_NS // SECOND_NS + 3})).json()
    assert [i["Seq"] for i in since["Items"]] == [7, 6, 5, 4]
    # Reading the log is not itself recorded
    assert log.query(limit=1)[0].seq == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [({"limit": "1001"}, "limit must be 1..1000"), ({"next_token": "abc"}, "invalid next_token"),
     ({"outcome": "ok"}, "invalid outcome"), ({"limit": "x"}, "invalid integer"), ({"since": "-1"}, "negative")],
)
async def test_the_route_refuses_bad_parameters(http: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
    resp = await http.get(AUDIT, headers=READER, params=params)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["Message"], resp.json()


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"next_token": "\u00b2"}, id="next_token-superscript-two"),
        pytest.param({"next_token": "9" * 20}, id="next_token-over-int64"),
        pytest.param({"since": str(2**63 - 1)}, id="since-over-int64-nanoseconds"),
    ],
)
async def test_the_route_answers_400_not_500_to_out_of_range_parameters(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    resp = await http.get(AUDIT, headers=READER, params=params)
    assert resp.status_code == 400, resp.text


async def test_the_route_needs_read_audit(http: httpx.AsyncClient) -> None:
    assert (await http.get(AUDIT)).status_code == 401
    refused = await http.get(AUDIT, headers=JOBREADER)
    assert refused.status_code == 403
    assert refused.json()["Details"]["reason"] == "user 'jobreader' does not have the required capability 'read:audit'"
    carol = {"Authorization": "Basic " + base64.b64encode(b"carol:carol-password-1").decode()}
    assert (await http.get(AUDIT, headers=carol)).status_code == 200


def test_a_flood_of_anonymous_refusals_cannot_push_out_what_users_did(
    monkeypatch: pytest.MonkeyPatch, log: AuditLog
) -> None:
    monkeypatch.setattr(audit_module, "MAX_ROWS", 10)
    monkeypatch.setattr(audit_module, "MAX_UNAUTHENTICATED_ROWS", 3)
    monkeypatch.setattr(audit_module, "_PRUNE_EVERY", 4)
    add(log, 5, principal="alice")  # what users did: 5 rows
    for _ in range(50):  # anyone who reaches the port, without credentials
        add(log, 4, principal="", status=401, reason="Missing Authorization header", capability="write:job")
    entries = log.query(limit=1000)
    assert [e.principal for e in entries].count("alice") == 5, entries
    refused = [e for e in entries if e.status == 401]
    assert 0 < len(refused) <= 3 + 4, len(refused)
    assert refused[0].seq == max(e.seq for e in entries)  # the newest refusals are the ones kept
    # A signed-in user's refusal (403) is a user action: kept with the rest.
    add(log, 2, principal="bob", status=403)
    assert [e.principal for e in log.query(limit=1000)].count("bob") == 2
