"""A stop on purpose (SIGTERM) loses no work and uses up no job's retries (issue 13, finding 2).

What was found: SIGTERM of a node running work failed every job ("retried too many times"): the
interrupted executions were retried at once on the node that was stopping. What must hold, tested here
with real `bacalhau serve` processes and the real CLI:

- hybrid node: running executions finish within Compute.ShutdownGracePeriod, what has not started is
  handed back, and after the restart every job completes, each with exactly one Completed execution;
- repeated restarts that interrupt the same job never fail it (handed-back work is not an attempt);
- compute-only node: its work moves to another node, and nothing new is placed on it while it drains;
  when it was the only node, the job waits for it to come back instead of failing.

Work that takes a known time: the `sleep` test module (tests/wasm/src/sleep.c), `sleep MS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import EXEC_COMPLETED, EXEC_FAILED, EXEC_RUNNING, JobWatch, wasm_job

from cluster_env import Cluster
from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

HANDED_BACK = "execution handed back: the compute node is shutting down"
JOB_TIMEOUT_S = 60.0


def sleep_job(modules: dict[str, Path], ms: int, **kwargs: Any) -> dict[str, Any]:
    return wasm_job(modules["sleep"], args=[str(ms)], resources={"CPU": "1", "Memory": "64mb"}, **kwargs)


def states(executions: list[dict[str, Any]]) -> list[int]:
    return [int(e["ComputeState"]["StateType"]) for e in executions]


def handed_back(executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in executions if e["ComputeState"].get("Message") == HANDED_BACK]


def test_sigterm_lets_running_work_finish_hands_back_the_queue_and_every_job_completes_after_restart(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    # 3 CPUs, 1 per job: 3 run, the other 6 wait in the compute node's own queue.
    node = serve(extra_config=["Compute.AllocatedCapacity.CPU=3", "Compute.ShutdownGracePeriod=30s"])
    watch = JobWatch(node.url, node.log_excerpt)
    jobs = [watch.submit(sleep_job(wasm_modules, 1500)) for _ in range(9)]
    watch.wait_for(
        "3 executions running",
        lambda: sum(EXEC_RUNNING in states(watch.executions(j)) for j in jobs) == 3,
        timeout_s=JOB_TIMEOUT_S,
    )

    assert node.stop() == 0, node.log_excerpt()
    assert "draining: up to 30s for 3 running execution(s)" in node.log_text(), node.log_excerpt()
    node.start()

    for job_id in jobs:
        watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    per_job = {job_id: watch.executions(job_id) for job_id in jobs}
    for job_id, executions in per_job.items():
        assert states(executions).count(EXEC_COMPLETED) == 1, (job_id, executions)
    # The 3 that ran finished within the grace (no second execution); the 6 queued were handed back once.
    assert sorted(len(e) for e in per_job.values()) == [1, 1, 1, 2, 2, 2, 2, 2, 2], per_job
    assert sum(len(handed_back(e)) for e in per_job.values()) == 6, per_job
    assert all(e["ComputeState"]["Details"].get("HandedBack") == "true" for x in per_job.values() for e in handed_back(x))


def test_restarts_that_interrupt_the_same_job_never_use_up_its_retries(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path]
) -> None:
    # The grace is shorter than the job: each stop hands it back. Three attempts would fail a job.
    node = serve(extra_config=["Compute.ShutdownGracePeriod=0.2s", "Orchestrator.Scheduler.QueueBackoff=1s"])
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(sleep_job(wasm_modules, 5000))
    for cycle in range(4):
        watch.wait_for(
            f"a running execution (cycle {cycle})",
            lambda: EXEC_RUNNING in states(watch.executions(job_id)),
            timeout_s=JOB_TIMEOUT_S,
        )
        assert node.stop() == 0, node.log_excerpt()
        node.start()
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = watch.executions(job_id)
    assert states(executions).count(EXEC_COMPLETED) == 1, executions
    assert len(handed_back(executions)) == 4, executions
    assert "retried too many times" not in str(watch.job(job_id)), watch.job(job_id)


# -- a compute-only node leaving a cluster ----------------------------------------------------------------
@pytest.fixture
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("drain"))
    try:
        made.start()
        yield made
    finally:
        made.close()


def test_a_draining_compute_node_hands_its_work_to_another_and_gets_nothing_new(
    cluster: Cluster, wasm_modules: dict[str, Path]
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    leaving = cluster.add_compute("node-0", extra_config=["Compute.ShutdownGracePeriod=1s"])
    job_id = watch.submit(sleep_job(wasm_modules, 20_000))
    first = watch.wait_execution(job_id, EXEC_RUNNING, timeout_s=JOB_TIMEOUT_S)
    assert first["NodeID"] == "node-0"
    cluster.add_compute("node-1")

    assert leaving.stop() == 0, leaving.log_excerpt()
    # Handed back, not lost: replaced on node-1 at once (not after a heartbeat timeout).
    second = watch.wait_for(
        "the job to run again on node-1",
        lambda: next((e for e in watch.executions(job_id) if e["NodeID"] == "node-1"), None),
        timeout_s=15,
    )
    executions = watch.executions(job_id)
    interrupted = next(e for e in executions if e["ID"] == first["ID"])
    assert int(interrupted["ComputeState"]["StateType"]) == EXEC_FAILED, executions
    assert interrupted["ComputeState"]["Message"] == HANDED_BACK, interrupted
    assert [e["NodeID"] for e in executions].count("node-0") == 1, executions  # nothing new went to node-0
    assert second["ID"] != first["ID"]
    assert "node node-0 is draining" in cluster.orchestrator.log_text(), cluster.describe()
    state = cluster.wait_node("node-0", "DISCONNECTED", timeout_s=5)
    assert state["ConnectionState"]["LastError"] == "graceful shutdown", state


def test_when_the_only_compute_node_restarts_its_handed_back_job_waits_for_it(
    cluster: Cluster, wasm_modules: dict[str, Path]
) -> None:
    watch = JobWatch(cluster.orchestrator.url, cluster.describe)
    only = cluster.add_compute("node-0", extra_config=["Compute.ShutdownGracePeriod=0.5s"])
    job_id = watch.submit(sleep_job(wasm_modules, 3000))  # no QueueTimeout: without the wait it would fail
    watch.wait_execution(job_id, EXEC_RUNNING, timeout_s=JOB_TIMEOUT_S)

    assert only.stop() == 0, only.log_excerpt()
    queued = watch.wait_state(job_id, "Queued", timeout_s=15)
    assert "waiting for node(s) node-0 to reconnect" in queued["State"].get("Message", ""), queued
    only.start()
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = watch.executions(job_id)
    assert states(executions).count(EXEC_COMPLETED) == 1 and len(handed_back(executions)) == 1, executions
