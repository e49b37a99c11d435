"""Bacalhau's job types on a real cluster (one orchestrator, compute nodes node-0/1/2, separate
processes), through the real CLI: what a user notices of each type's lifecycle.

    ops      `wasm run --target all`: once on every node, then Completed
    batch    a failure that is the node's fault (a URL input answering 503) is retried on ANOTHER node,
             and the retry's history says why; one that is the job's own (HTTP 404) fails the job at
             once, with one execution and a hint that it was not retried
    (none)   a job no node can take fails at once and `job describe` says why, node by node
    service  `Count` replicas on distinct nodes; one that exits is replaced (the job stays Running),
             one whose node is killed is replaced elsewhere; `job stop` ends it
    daemon   one execution on every node, Running, never Completed; `job stop` ends it; a node that
             joins later gets one too (the node-join evaluation)

Work is WebAssembly (tests/wasm/src: `hello`, `cat`, `sleep`), whose executions start in well under a
second. The compute nodes download URL inputs without retrying (InputSources.MaxRetryCount=0), so the
first 503 fails its execution at once. The tests share one cluster and run in file order: the kill -9
test restarts its node before it ends, and the node-join test, which adds a fourth node, comes last.
Every wait polls against a generous deadline; nothing asserts how long something took.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import (
    EXEC_CANCELLED,
    EXEC_COMPLETED,
    EXEC_FAILED,
    EXEC_RUNNING,
    JobWatch,
    job_executions,
    one_job_id,
    parse_output,
    submit_file,
    wasm_job,
)

from cluster_env import Cluster
from http_env import http_server

pytestmark = pytest.mark.scenario

ZONES = {"node-0": "eu", "node-1": "us", "node-2": "eu"}
PAYLOAD = b"station,temp\nsagres,19\n"
WAIT_S = 60.0
# Long enough to outlive its test: `job stop` (or the test's own cleanup) ends it.
FOREVER_MS = "600000"
# ExecutionStateType / ExecutionDesiredStateType on the wire (integers) that scenario_jobs does not name
EXEC_ASK_FOR_BID_REJECTED, EXEC_BID_REJECTED, DESIRED_STOPPED = 4, 8, 2
TERMINAL_EXEC = (EXEC_COMPLETED, EXEC_FAILED, EXEC_CANCELLED, EXEC_ASK_FOR_BID_REJECTED, EXEC_BID_REJECTED)


# -- a URL input server ---------------------------------------------------------------------------------------
class _Inputs(BaseHTTPRequestHandler):
    """/flaky/<name>: 503 to the first request of each path, 200 with PAYLOAD afterwards. /gone/...: 404."""

    hits: Counter[str] = Counter()
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.hits[self.path] += 1
            seen = self.hits[self.path]
        if self.path.startswith("/flaky/"):
            status, body = (503, b"try later") if seen == 1 else (200, PAYLOAD)
        else:
            status, body = 404, b"no such file"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def inputs() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (see _Inputs); yields its base URL."""
    with http_server(_Inputs) as base:
        yield base


# -- the cluster ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Orchestrator + node-0/1/2 labelled zone=eu/us/eu, downloading URL inputs without retries."""
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        for name, zone in ZONES.items():
            made.add_compute(name, labels={"zone": zone}, extra_config=["InputSources.MaxRetryCount=0"])
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def watch(cluster: Cluster) -> JobWatch:
    """Reads the orchestrator's jobs over HTTP; a failure carries every node's log."""
    return JobWatch(cluster.orchestrator.url, cluster.describe)


# -- helpers --------------------------------------------------------------------------------------------------
def described(cluster: Cluster, job_id: str) -> dict[str, Any]:
    """`bacalhau job describe JOB --output json` (a GetJobResponse, plus NotScheduled when any)."""
    document: dict[str, Any] = parse_output(cluster.ok("job", "describe", job_id, "--output", "json").stdout)
    return document


def job_of(cluster: Cluster, job_id: str) -> dict[str, Any]:
    """The Job as `job describe --output json` shows it."""
    document = described(cluster, job_id)
    job: dict[str, Any] = document.get("Job", document)
    return job


def history_messages(cluster: Cluster, job_id: str, execution_id: str) -> list[str]:
    """`bacalhau job history JOB --execution-id E --output json`: the event messages, in order."""
    parsed = parse_output(
        cluster.ok("job", "history", job_id, "--execution-id", execution_id, "--output", "json").stdout
    )
    items = parsed.get("Items", parsed) if isinstance(parsed, dict) else parsed
    return [str((item.get("Event") or {}).get("Message", "")) for item in items or []]


def state(execution: dict[str, Any]) -> int:
    """The execution's ComputeState as its wire integer."""
    return int(execution["ComputeState"]["StateType"])


def running(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The executions that run now (observed Running and still wanted)."""
    return [e for e in items if state(e) == EXEC_RUNNING and int(e["DesiredState"]["StateType"]) != DESIRED_STOPPED]


def summary(items: list[dict[str, Any]]) -> str:
    """One line per execution, for assertion messages."""
    return "\n".join(
        f"  {e['ID']} node={e['NodeID']} partition={e.get('PartitionIndex')} compute={e['ComputeState']} "
        f"desired={e['DesiredState']}"
        for e in items
    ) or "  (no executions)"


def long_running(wasm_modules: dict[str, Path], job_type: str, *, sleep_ms: str, count: int | None = None) -> dict[str, Any]:
    """A service or daemon job whose task sleeps `sleep_ms` milliseconds, then exits 0."""
    job = wasm_job(wasm_modules["sleep"], args=[sleep_ms], count=count, publisher="noop")
    job["Type"] = job_type
    return job


def wait_executions(
    cluster: Cluster,
    watch: JobWatch,
    job_id: str,
    what: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = WAIT_S,
) -> list[dict[str, Any]]:
    """Poll the job's executions (CLI) until `done(executions)`; return them."""

    def probe() -> list[dict[str, Any]] | None:
        items = job_executions(cluster, job_id)
        return items if done(items) else None

    found: list[dict[str, Any]] = watch.wait_for(
        f"{what} (job {job_id})",
        probe,
        timeout_s=timeout_s,
        interval_s=0.25,
        explain=lambda: f"job state: {job_of(cluster, job_id)['State']}\n{summary(job_executions(cluster, job_id))}",
    )
    return found


def stop_and_wait_idle(cluster: Cluster, watch: JobWatch, job_id: str) -> list[dict[str, Any]]:
    """`bacalhau job stop JOB`; wait until the job is Stopped and none of its executions is active."""
    cluster.ok("job", "stop", job_id)
    watch.wait_state(job_id, "Stopped", timeout_s=WAIT_S)
    return wait_executions(
        cluster, watch, job_id, "every execution to end after `job stop`",
        lambda items: all(state(e) in TERMINAL_EXEC for e in items),
    )


def stop_quietly(cluster: Cluster, job_id: str) -> None:
    """Cleanup: stop the job if it still runs (a failed test must not leave work on the shared nodes)."""
    if job_of(cluster, job_id)["State"]["StateType"] not in ("Completed", "Failed", "Stopped"):
        cluster.cli("job", "stop", job_id, "--quiet")


# -- ops ------------------------------------------------------------------------------------------------------
def test_an_ops_job_runs_once_on_every_node_and_completes(cluster: Cluster, wasm_modules: dict[str, Path]) -> None:
    result = cluster.ok("wasm", "run", "--target", "all", str(wasm_modules["hello"]), "--", "everywhere")
    job_id = one_job_id(result.stdout)
    job = job_of(cluster, job_id)
    assert job["Type"] == "ops" and job["State"]["StateType"] == "Completed", job["State"]
    items = job_executions(cluster, job_id)
    assert sorted(e["NodeID"] for e in items) == sorted(ZONES), f"not once per node:\n{summary(items)}"
    assert all(state(e) == EXEC_COMPLETED for e in items), summary(items)
    assert "arg1=everywhere" in cluster.ok("job", "logs", job_id).stdout


# -- why not scheduled ----------------------------------------------------------------------------------------
def test_a_job_no_node_matches_fails_and_describe_says_why_for_every_node(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = cluster.orchestrator.fails("wasm", "run", "--constraints", "zone=mars", str(wasm_modules["hello"]))
    job_id = one_job_id(result.stdout + result.stderr)
    failed = watch.wait_state(job_id, "Failed", timeout_s=WAIT_S)
    message = failed["State"]["Message"]
    assert "not enough nodes to run job. requested: 1, available: 0" in message, message
    assert "3 nodes lack label zone=mars" in message, message
    assert job_executions(cluster, job_id) == [], "a job no node matches must not have executions"

    text = cluster.ok("job", "describe", job_id).stdout
    assert "Why Not Scheduled" in text, text
    section = text.split("Why Not Scheduled", 1)[1]
    row = next((line for line in section.splitlines() if "lacks label zone=mars" in line), "")
    assert row.split()[:1] == ["3"], f"expected a row '3  lacks label zone=mars ...' in:\n{section}"

    not_scheduled = described(cluster, job_id).get("NotScheduled")
    assert isinstance(not_scheduled, list) and len(not_scheduled) == 1, not_scheduled
    group = not_scheduled[0]
    assert group["Kind"] == "ConstraintNotMatched" and group["Count"] == 3, group
    assert "zone=mars" in group["Reason"] and sorted(group["Nodes"]) == sorted(ZONES), group


# -- batch: whose fault -------------------------------------------------------------------------------------
def test_a_node_side_input_failure_is_retried_on_another_node_and_the_retry_says_why(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], inputs: str
) -> None:
    url = f"{inputs}/flaky/stations.csv"
    result = cluster.ok("wasm", "run", "-i", f"src={url},dst=/inputs", str(wasm_modules["cat"]), "--", "/inputs/stations.csv")
    job_id = one_job_id(result.stdout)
    assert "sagres,19" in result.stdout, cluster.orchestrator.describe_result(result)
    assert job_of(cluster, job_id)["State"]["StateType"] == "Completed"

    items = job_executions(cluster, job_id)
    assert [state(e) for e in items] == [EXEC_FAILED, EXEC_COMPLETED], summary(items)
    first, retry = items
    assert first["NodeID"] != retry["NodeID"], f"the retry must run on another node:\n{summary(items)}"
    assert "503" in first["ComputeState"]["Message"], first["ComputeState"]
    assert first["ComputeState"]["Details"].get("Retryable") == "true", first["ComputeState"]
    assert retry["PartitionIndex"] == 0 == first["PartitionIndex"], summary(items)

    messages = history_messages(cluster, job_id, retry["ID"])
    assert messages, f"no history for the retry {retry['ID']}"
    expected = (
        f"Requested execution on {retry['NodeID']} (retry 2 of 3 of partition 0 after "
        f"{first['ID'][:10]} failed on {first['NodeID']}: "
    )
    assert messages[0].startswith(expected) and "503" in messages[0], (
        f"the retry's first event should say why it exists, starting {expected!r}; got {messages}"
    )


def test_a_job_side_input_failure_fails_the_job_at_once_without_a_retry(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], inputs: str
) -> None:
    url = f"{inputs}/gone/stations.csv"
    result = cluster.orchestrator.fails("wasm", "run", "-i", f"src={url},dst=/inputs", str(wasm_modules["cat"]), "--", "/inputs/stations.csv")
    job_id = one_job_id(result.stdout + result.stderr)
    assert "not retried" in result.stdout + result.stderr, cluster.orchestrator.describe_result(result)

    job = watch.wait_state(job_id, "Failed", timeout_s=WAIT_S)
    assert "HTTP 404" in job["State"]["Message"], job["State"]
    assert "not retried" in job["State"]["Details"].get("Hint", ""), job["State"]
    items = job_executions(cluster, job_id)
    assert len(items) == 1 and state(items[0]) == EXEC_FAILED, f"expected ONE failed execution:\n{summary(items)}"
    assert items[0]["ComputeState"]["Details"].get("Retryable") != "true", items[0]["ComputeState"]


# -- service --------------------------------------------------------------------------------------------------
def test_a_service_replaces_replicas_that_exit_and_stays_running_until_stopped(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job_id = submit_file(cluster, tmp_path, long_running(wasm_modules, "service", sleep_ms="1000", count=2), "service")
    try:
        # Each replica exits after ~1 s and is replaced after its backoff (1 s, then 2 s, ...): by the
        # time both partitions have been replaced, the job has 4 executions or more.
        def replaced_both(items: list[dict[str, Any]]) -> bool:
            per_partition = Counter(e["PartitionIndex"] for e in items)
            return per_partition[0] >= 2 and per_partition[1] >= 2

        items = wait_executions(cluster, watch, job_id, "both replicas to be replaced", replaced_both)
        job = job_of(cluster, job_id)
        assert job["Type"] == "service" and job["State"]["StateType"] == "Running", job["State"]
        assert len(items) > 2 and {e["PartitionIndex"] for e in items} == {0, 1}, summary(items)
        first_two = [next(e for e in items if e["PartitionIndex"] == p) for p in (0, 1)]
        assert first_two[0]["NodeID"] != first_two[1]["NodeID"], f"replicas share a node:\n{summary(items)}"
        assert any(state(e) == EXEC_COMPLETED for e in items), f"no replica exited:\n{summary(items)}"

        replacement = next(e for e in items[2:] if e.get("PreviousExecution"))
        messages = history_messages(cluster, job_id, replacement["ID"])
        assert any("replacing replica" in m for m in messages), messages
    finally:
        stop_quietly(cluster, job_id)

    ended = stop_and_wait_idle(cluster, watch, job_id)
    assert job_of(cluster, job_id)["State"]["StateType"] == "Stopped"
    assert not running(ended), summary(ended)


def test_a_service_replica_on_a_killed_node_is_replaced_on_another_node(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job_id = submit_file(cluster, tmp_path, long_running(wasm_modules, "service", sleep_ms=FOREVER_MS, count=2), "svc")
    victim_name = ""
    try:
        before = running(
            wait_executions(cluster, watch, job_id, "two running replicas", lambda items: len(running(items)) == 2)
        )
        victim = before[0]
        victim_name = victim["NodeID"]
        survivor = before[1]["NodeID"]
        spare = next(name for name in ZONES if name not in (victim_name, survivor))

        cluster.computes[victim_name].kill9()
        cluster.wait_node(victim_name, "DISCONNECTED")
        after = wait_executions(
            cluster, watch, job_id, f"a replica running on {spare} next to the one on {survivor}",
            lambda items: sorted(e["NodeID"] for e in running(items)) == sorted([survivor, spare]),
        )
        assert job_of(cluster, job_id)["State"]["StateType"] == "Running"
        lost = next(e for e in after if e["ID"] == victim["ID"])
        assert state(lost) == EXEC_FAILED and "node has disappeared" in lost["ComputeState"]["Message"], summary(after)
        replacement = next(e for e in running(after) if e["NodeID"] == spare)
        assert replacement["PartitionIndex"] == victim["PartitionIndex"], summary(after)
        messages = history_messages(cluster, job_id, replacement["ID"])
        assert any("replacing replica" in m and victim["ID"][:10] in m for m in messages), messages

        ended = stop_and_wait_idle(cluster, watch, job_id)
        assert not running(ended), summary(ended)
    finally:
        stop_quietly(cluster, job_id)
        if victim_name and not cluster.computes[victim_name].running:
            cluster.computes[victim_name].restart()
            cluster.wait_node(victim_name, "CONNECTED")


# -- daemon ---------------------------------------------------------------------------------------------------
def test_a_daemon_runs_on_every_node_until_stopped(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job_id = submit_file(cluster, tmp_path, long_running(wasm_modules, "daemon", sleep_ms=FOREVER_MS), "daemon")
    try:
        items = wait_executions(
            cluster, watch, job_id, "the daemon running on every node",
            lambda found: sorted(e["NodeID"] for e in running(found)) == sorted(ZONES),
        )
        assert len(items) == 3, f"one execution per node, no more:\n{summary(items)}"
        job = job_of(cluster, job_id)
        assert job["Type"] == "daemon" and job["State"]["StateType"] == "Running", job["State"]
        listed = cluster.ok("job", "list").stdout
        assert any(job_id[:10] in line and "Running" in line for line in listed.splitlines()), listed

        ended = stop_and_wait_idle(cluster, watch, job_id)
        assert len(ended) == 3 and all(state(e) == EXEC_CANCELLED for e in ended), summary(ended)
    finally:
        stop_quietly(cluster, job_id)


def test_a_daemon_reaches_a_node_that_joins_later(
    cluster: Cluster, watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    """Last in the file: it adds a fourth node to the shared cluster."""
    job_id = submit_file(cluster, tmp_path, long_running(wasm_modules, "daemon", sleep_ms=FOREVER_MS), "late-daemon")
    try:
        wait_executions(
            cluster, watch, job_id, "the daemon running on the three first nodes",
            lambda found: sorted(e["NodeID"] for e in running(found)) == sorted(ZONES),
        )
        cluster.add_compute("node-3", labels={"zone": "us"}, extra_config=["InputSources.MaxRetryCount=0"])
        items = wait_executions(
            cluster, watch, job_id, "the daemon running on node-3, which joined after it started",
            lambda found: sorted(e["NodeID"] for e in running(found)) == sorted([*ZONES, "node-3"]),
        )
        assert len(items) == 4, f"one execution per node, no more:\n{summary(items)}"
        assert job_of(cluster, job_id)["State"]["StateType"] == "Running"

        ended = stop_and_wait_idle(cluster, watch, job_id)
        assert not running(ended), summary(ended)
    finally:
        stop_quietly(cluster, job_id)
