"""Node labels changed at runtime (a config edit and SIGHUP, no restart) are re-evaluated: a queued job
that now fits is placed, and a daemon follows the labels, on a real cluster of separate processes.

    compute node-0 reads its Labels from a config file (zone=eu)
    job A: batch, constraint zone=us, QueueTimeout 120 ──> Queued ("1 node lacks label zone=us")
    daemon D: constraint zone=eu ──> runs on node-0
    edit the file to zone=us, SIGHUP node-0 ──> A runs on node-0 and completes; D's execution there stops
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scenario_jobs import EXEC_RUNNING, JobWatch, job_executions, submit_file, wasm_job

from cluster_env import Cluster

pytestmark = pytest.mark.scenario

WAIT_S = 60.0


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relabel") / "node-0.yaml"
    path.write_text(yaml.safe_dump({"Labels": {"zone": "eu"}}))
    return path


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, labels_file: Path) -> Iterator[Cluster]:
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        made.start()
        made.add_compute("node-0", extra_config=[str(labels_file)])
        yield made
    finally:
        made.close()


def test_labels_reloaded_on_sighup_place_a_queued_job_and_move_a_daemon(
    cluster: Cluster, labels_file: Path, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    queued = wasm_job(wasm_modules["hello"], args=["relabelled"], publisher="noop", timeouts={"QueueTimeout": 120})
    queued["Constraints"] = [{"Key": "zone", "Operator": "=", "Values": ["us"]}]
    queued_id = submit_file(cluster, tmp_path, queued, "queued")
    job = watch.wait_state(queued_id, "Queued", timeout_s=WAIT_S)
    assert "1 node lacks label zone=us" in job["State"]["Message"], job["State"]

    daemon = wasm_job(wasm_modules["sleep"], args=["600000"], publisher="noop")
    daemon["Type"] = "daemon"
    daemon["Constraints"] = [{"Key": "zone", "Operator": "=", "Values": ["eu"]}]
    daemon_id = submit_file(cluster, tmp_path, daemon, "daemon")
    watch.wait_for(
        "the daemon to run on node-0",
        lambda: any(int(e["ComputeState"]["StateType"]) == EXEC_RUNNING for e in job_executions(cluster, daemon_id)) or None,
        timeout_s=WAIT_S,
    )

    labels_file.write_text(yaml.safe_dump({"Labels": {"zone": "us"}}))
    node = cluster.computes["node-0"]
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)

    done = watch.wait_state(queued_id, "Completed", timeout_s=WAIT_S)
    assert done["State"]["StateType"] == "Completed"
    assert "relabelled" in cluster.ok("job", "logs", queued_id).stdout
    watch.wait_for(
        "the daemon's execution on node-0 to stop (it no longer matches)",
        lambda: all(int(e["ComputeState"]["StateType"]) != EXEC_RUNNING for e in job_executions(cluster, daemon_id)) or None,
        timeout_s=WAIT_S,
    )
    stopped = job_executions(cluster, daemon_id)
    assert any("no longer matches the job" in (e["ComputeState"].get("Message") or "") for e in stopped), stopped
    assert watch.job(daemon_id)["State"]["StateType"] == "Running"  # a daemon waits for matching nodes
    described = cluster.ok("node", "describe", "node-0", "--output", "json").stdout
    assert '"zone": "us"' in described or '"zone":"us"' in described, described
    cluster.ok("job", "stop", daemon_id)
