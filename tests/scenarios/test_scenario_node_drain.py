"""`bacalhau node drain` on a real cluster (an orchestrator and two compute nodes, separate processes):
what a drained node keeps, what it gives up, and when.

    daemon on A and B; node drain A ──> its execution on A stops at once; a job only A could take
                                        waits, Queued, saying A is cordoned
    node uncordon A ──> the daemon runs on A again and the queued job runs there
    service replica on A; node drain A --deadline 2s ──> at the deadline it moves to B, handed back
                                                        (no retry used up), the job still Running
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import EXEC_RUNNING, JobWatch, job_executions, submit_file, wasm_job

from cluster_env import Cluster

pytestmark = pytest.mark.scenario

WAIT_S = 60.0
DESIRED_STOPPED = 2


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        made.add_compute("node-a", labels={"disk": "ssd"})
        made.add_compute("node-b", labels={"disk": "hdd"})
        yield made
    finally:
        made.close()


def running_on(cluster: Cluster, job_id: str) -> list[str]:
    """The nodes where the job runs now (observed Running and still wanted)."""
    return sorted(
        e["NodeID"] for e in job_executions(cluster, job_id)
        if int(e["ComputeState"]["StateType"]) == EXEC_RUNNING and int(e["DesiredState"]["StateType"]) != DESIRED_STOPPED
    )


def sleeper(wasm_modules: dict[str, Path], job_type: str) -> dict[str, Any]:
    job = wasm_job(wasm_modules["sleep"], args=["600000"], publisher="noop")
    job["Type"] = job_type
    return job


def test_a_drained_node_stops_its_daemons_and_takes_nothing_new_until_uncordoned(
    cluster: Cluster, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    daemon_id = submit_file(cluster, tmp_path, sleeper(wasm_modules, "daemon"), "daemon")
    watch.wait_for("the daemon on both nodes", lambda: running_on(cluster, daemon_id) == ["node-a", "node-b"] or None,
                   WAIT_S)

    cluster.ok("node", "drain", "node-a")
    listed = cluster.ok("node", "list").stdout
    assert "cordoned" in listed, listed
    watch.wait_for("the daemon's execution on node-a to stop", lambda: running_on(cluster, daemon_id) == ["node-b"] or None,
                   WAIT_S)
    stopped = [e for e in job_executions(cluster, daemon_id) if e["NodeID"] == "node-a"]
    assert all("drained" in e["ComputeState"]["Message"] for e in stopped), stopped

    queued = wasm_job(wasm_modules["hello"], args=["after-uncordon"], publisher="noop", timeouts={"QueueTimeout": 120})
    queued["Constraints"] = [{"Key": "disk", "Operator": "=", "Values": ["ssd"]}]  # only node-a has it
    queued_id = submit_file(cluster, tmp_path, queued, "queued")
    job = watch.wait_state(queued_id, "Queued", timeout_s=WAIT_S)
    assert "cordoned" in job["State"]["Message"], job["State"]

    cluster.ok("node", "uncordon", "node-a")
    assert watch.wait_state(queued_id, "Completed", timeout_s=WAIT_S)["State"]["StateType"] == "Completed"
    assert "after-uncordon" in cluster.ok("job", "logs", queued_id).stdout
    watch.wait_for("the daemon back on node-a", lambda: running_on(cluster, daemon_id) == ["node-a", "node-b"] or None,
                   WAIT_S)
    cluster.ok("job", "stop", daemon_id)


def test_batch_and_service_work_moves_to_another_node_at_the_drain_deadline(
    cluster: Cluster, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    service_id = submit_file(cluster, tmp_path, sleeper(wasm_modules, "service"), "free-service")
    first = watch.wait_for("the replica to run", lambda: running_on(cluster, service_id) or None, WAIT_S)
    [source] = first
    target = "node-b" if source == "node-a" else "node-a"
    cluster.ok("node", "drain", source, "--deadline", "2s")
    try:
        watch.wait_for(f"the replica to move to {target}", lambda: running_on(cluster, service_id) == [target] or None,
                       WAIT_S)
        history = job_executions(cluster, service_id)
        assert len(history) == 2, history
        assert history[0]["ComputeState"]["Details"].get("HandedBack") == "true", history[0]["ComputeState"]
        assert watch.job(service_id)["State"]["StateType"] == "Running"
    finally:
        cluster.ok("node", "uncordon", source)
        cluster.ok("job", "stop", service_id)
