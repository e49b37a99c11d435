"""The API's guards end to end, on a real `bacalhau serve` with users from a config file, driven by the real
CLI in subprocesses and by plain HTTP:

    secrets     a job's Env values read as ******** by a read:* user (job describe, table and JSON)
    audit log   who did what (`bacalhau audit list`: --refused, --user, --limit/--next-token, JSON), who may
                read it (read:audit), and <DataDir>/orchestrator/audit.db kept across a restart
    bodies      a PUT in text/plain (what a web page can send without asking) is 415 and creates nothing

The users:
    alice       Basic, ["*"]
    reader      API key, ["read:*"]       (reads everything, audit included; no reveal:env)
    jobreader   API key, ["read:job"]     (no read:audit)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from scenario_jobs import wasm_job

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

JOBS = "/api/v1/orchestrator/jobs"
SECRET = "s3cret-Value-42"
MASK = "********"
ALICE_PASSWORD = "alice-password-1"
READER_KEY = "guards-reader-key-0123456789"
JOBREADER_KEY = "guards-jobreader-key-0123456789"
ALICE_ENV = {"BACALHAU_API_USERNAME": "alice", "BACALHAU_API_PASSWORD": ALICE_PASSWORD}
READER_ENV = {"BACALHAU_API_KEY": READER_KEY}
JOBREADER_ENV = {"BACALHAU_API_KEY": JOBREADER_KEY}
ALICE_HEADERS = {"Authorization": "Basic " + base64.b64encode(f"alice:{ALICE_PASSWORD}".encode()).decode()}
READER_HEADERS = {"Authorization": f"Bearer {READER_KEY}"}
READER_REFUSAL = "user 'reader' does not have the required capability 'write:job'"


@dataclass
class Guarded:
    node: BacalhauNode
    job_id: str  # submitted by alice with -e TOKEN=<SECRET> -e HOME2=env:HOME

    def audit(self, *args: str, env: dict[str, str] = READER_ENV) -> list[dict[str, Any]]:
        """`bacalhau audit list --output json ...` as `env`'s user: the entries."""
        result = self.node.ok("audit", "list", "--output", "json", *args, env=env)
        entries: list[dict[str, Any]] = json.loads(result.stdout)
        return entries

    def jobs(self) -> list[str]:
        with httpx.Client(base_url=self.node.url, timeout=10.0, headers=READER_HEADERS) as http:
            resp = http.get(JOBS, params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return [job["ID"] for job in resp.json()["Items"]]


@pytest.fixture(scope="module")
def guarded(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, wasm_modules: dict[str, Path]) -> Iterator[Guarded]:
    base = tmp_path_factory.mktemp("guards-config")
    config = base / "users.yaml"
    config.write_text(yaml.safe_dump({"API": {"Auth": {"Users": [
        {"Username": "alice", "Password": ALICE_PASSWORD, "Capabilities": [{"Actions": ["*"]}]},
        {"Alias": "reader", "APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:*"]}]},
        {"Alias": "jobreader", "APIKey": JOBREADER_KEY, "Capabilities": [{"Actions": ["read:job"]}]},
    ]}}}, sort_keys=False))
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(extra_config=[str(config)])
        submitted = node.ok("wasm", "run", "--wait=false", "--id-only", "-e", f"TOKEN={SECRET}", "-e", "HOME2=env:HOME",
                            str(wasm_modules["hello"]), env=ALICE_ENV)
        job_id = submitted.stdout.strip()
        assert job_id.startswith("j-"), node.describe_result(submitted)
        # A write the reader may not make (403) and one by nobody (401): both refused and audited.
        refused = node.cli("wasm", "run", "--wait=false", str(wasm_modules["hello"]), env=READER_ENV)
        assert refused.returncode == 1 and READER_REFUSAL in refused.stderr, node.describe_result(refused)
        anonymous = node.cli("job", "stop", job_id)
        assert anonymous.returncode == 1 and "Missing Authorization header" in anonymous.stderr, node.describe_result(anonymous)
        yield Guarded(node, job_id)
    finally:
        pool.close()


def by_request(entries: list[dict[str, Any]], method: str, path: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["Method"] == method and e["Path"] == path]


# -- secrets ---------------------------------------------------------------------------------------------------
def test_a_readers_job_describe_never_shows_the_secret(guarded: Guarded) -> None:
    node = guarded.node
    table = node.ok("job", "describe", guarded.job_id, env=READER_ENV)
    assert guarded.job_id in table.stdout and SECRET not in table.stdout + table.stderr, node.describe_result(table)
    as_json = node.ok("job", "describe", guarded.job_id, "--output", "json", env=READER_ENV)
    assert SECRET not in as_json.stdout, as_json.stdout
    env = json.loads(as_json.stdout)["Job"]["Tasks"][0]["Env"]
    assert env == {"TOKEN": MASK, "HOME2": "env:HOME"}, env
    listed = node.ok("job", "list", "--output", "json", env=READER_ENV)
    assert guarded.job_id in listed.stdout and SECRET not in listed.stdout


def test_the_full_user_sees_the_value(guarded: Guarded) -> None:
    as_json = guarded.node.ok("job", "describe", guarded.job_id, "--output", "json", env=ALICE_ENV)
    env = json.loads(as_json.stdout)["Job"]["Tasks"][0]["Env"]
    assert env == {"TOKEN": SECRET, "HOME2": "env:HOME"}, env


# -- the audit log -----------------------------------------------------------------------------------------------
def test_audit_list_shows_the_submission_and_the_refusals(guarded: Guarded) -> None:
    entries = guarded.audit()
    puts = [e for e in by_request(entries, "PUT", JOBS) if e["Principal"] == "alice"]
    assert len(puts) == 1, entries
    put = puts[0]
    assert (put["Target"], put["Status"], put["Outcome"], put["Capability"], put["Client"]) == (
        guarded.job_id, 200, "ok", "write:job", "127.0.0.1"), put
    refused_put = [e for e in by_request(entries, "PUT", JOBS) if e["Principal"] == "reader"]
    assert [(e["Status"], e["Outcome"], e["Reason"]) for e in refused_put] == [(403, "refused", READER_REFUSAL)], entries
    anonymous = by_request(entries, "DELETE", f"{JOBS}/{guarded.job_id}")
    assert [(e["Principal"], e["Status"], e["Outcome"], e["Target"], e["Reason"]) for e in anonymous] == [
        ("anonymous", 401, "refused", guarded.job_id, "Missing Authorization header")], entries
    # Newest first
    seqs = [e["Seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    # No read is recorded (the describes and lists above, nor these audit lists themselves)
    assert not [e for e in entries if e["Method"] == "GET" and e["Outcome"] != "refused"], entries


def test_audit_list_as_a_table(guarded: Guarded) -> None:
    result = guarded.node.ok("audit", "list", "--wide", env=READER_ENV)
    header = result.stdout.splitlines()[0]
    for column in ("TIME", "USER", "FROM", "REQUEST", "TARGET", "OUTCOME", "REASON"):
        assert column in header, result.stdout
    line = next((row for row in result.stdout.splitlines() if f"PUT {JOBS} " in row and "alice" in row), "")
    assert guarded.job_id in line and "ok (200)" in line, result.stdout
    assert READER_REFUSAL in result.stdout and "refused (401)" in result.stdout, result.stdout


def test_audit_list_refused_only(guarded: Guarded) -> None:
    refused = guarded.audit("--refused")
    assert refused and all(e["Outcome"] == "refused" and e["Status"] in (401, 403) for e in refused), refused
    assert {(e["Principal"], e["Status"]) for e in refused} >= {("reader", 403), ("anonymous", 401)}, refused
    everything = guarded.audit()
    assert len(refused) < len(everything)
    assert [e["Seq"] for e in refused] == [e["Seq"] for e in everything if e["Outcome"] == "refused"]


def test_audit_list_of_one_user(guarded: Guarded) -> None:
    alice = guarded.audit("--user", "alice")
    assert alice and {e["Principal"] for e in alice} == {"alice"}, alice
    assert guarded.job_id in [e["Target"] for e in alice]
    anonymous = guarded.audit("--user", "anonymous")
    assert anonymous and {e["Principal"] for e in anonymous} == {"anonymous"}, anonymous
    assert guarded.audit("--user", "nobody-by-that-name") == []


def test_audit_list_pages(guarded: Guarded) -> None:
    everything = guarded.audit("--since", "1h")
    assert len(everything) >= 3, everything
    first = guarded.node.ok("audit", "list", "--limit", "2", env=READER_ENV)
    assert "To fetch more records use:" in first.stdout, first.stdout
    token = first.stdout.rsplit("--next-token", 1)[1].split()[0]
    assert token == str(everything[1]["Seq"]), (token, everything[:2])
    rest = guarded.audit("--next-token", token, "--limit", "1000")
    assert [e["Seq"] for e in rest] == [e["Seq"] for e in everything[2:]]


def test_audit_list_needs_read_audit(guarded: Guarded) -> None:
    node = guarded.node
    forbidden = node.cli("audit", "list", env=JOBREADER_ENV)
    assert forbidden.returncode == 1, node.describe_result(forbidden)
    assert "Request Forbidden" in forbidden.stderr, forbidden.stderr
    assert "user 'jobreader' does not have the required capability 'read:audit'" in forbidden.stderr, forbidden.stderr
    nobody = node.cli("audit", "list")
    assert nobody.returncode == 1 and "Missing Authorization header" in nobody.stderr, node.describe_result(nobody)
    # Both refusals are in the log they asked for.
    refused = guarded.audit("--refused", "--limit", "2")
    assert [(e["Principal"], e["Path"], e["Status"]) for e in refused] == [
        ("anonymous", "/api/v1/orchestrator/audit", 401), ("jobreader", "/api/v1/orchestrator/audit", 403)], refused


# -- request bodies ---------------------------------------------------------------------------------------------------
def test_a_text_plain_put_is_415_and_creates_nothing(guarded: Guarded, wasm_modules: dict[str, Path]) -> None:
    before = guarded.jobs()
    payload = json.dumps({"Job": wasm_job(wasm_modules["hello"], name="from-a-web-page")})
    with httpx.Client(base_url=guarded.node.url, timeout=10.0) as http:
        resp = http.put(JOBS, content=payload, headers={**ALICE_HEADERS, "Content-Type": "text/plain"})
    assert resp.status_code == 415, resp.text
    body = resp.json()
    assert "unsupported request body type 'text/plain'" in body["Message"], body
    assert body["Hint"] == "send the body with Content-Type: application/json", body
    assert guarded.jobs() == before
    last = guarded.audit("--user", "alice", "--limit", "1")[0]
    assert (last["Method"], last["Status"], last["Outcome"], last["Target"]) == ("PUT", 415, "failed", ""), last


# -- durability (last: restarts the module's node) ----------------------------------------------------------------------
def test_the_audit_log_survives_a_restart(guarded: Guarded) -> None:
    before = guarded.audit("--limit", "1000")
    started = time.monotonic()
    guarded.node.restart()
    assert time.monotonic() - started < 60
    assert (guarded.node.data_dir / "orchestrator" / "audit.db").is_file()
    after = guarded.audit("--limit", "1000")
    assert after == before, (before[:3], after[:3])
    # And it keeps recording, after the old rows
    refused = guarded.node.cli("job", "stop", guarded.job_id, env=READER_ENV)
    assert refused.returncode == 1
    newest = guarded.audit("--limit", "1")[0]
    assert newest["Seq"] > before[0]["Seq"] and newest["Principal"] == "reader" and newest["Status"] == 403, newest
