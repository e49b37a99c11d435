"""A compute node killed with `kill -9` leaves its running container behind; when it starts again it
finds that container by its labels, removes it, and fails (or retries) the interrupted execution with a
reason that names the restart."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from scenario_jobs import EXEC_FAILED, EXEC_RUNNING, JobWatch

from docker_env import describe_containers, managed_containers, wait_containers_gone
from serve_node import BacalhauNode

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario


def test_containers_left_by_a_killed_node_are_removed_when_it_restarts(
    serve: Callable[..., BacalhauNode], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node = serve(extra_config=["Orchestrator.Scheduler.QueueBackoff=1s"])
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = node.ok("docker", "run", "--wait=false", "--id-only", busybox_image, "--", "sleep", "600").stdout.strip()
    execution = watch.wait_execution(job_id, EXEC_RUNNING)
    running = watch.wait_for(
        f"the container of {job_id} to run",
        lambda: [c for c in managed_containers(docker_engine, job_id=job_id) if c.status == "running"],
        timeout_s=60,
    )
    container = running[0]
    assert container.name == f"bacalhau-{execution['ID']}", container.name
    assert container.labels.get("bacalhau.org/node-id") == execution["NodeID"], container.labels
    assert container.labels.get("bacalhau.org/execution-id") == execution["ID"], container.labels

    node.kill9()
    container.reload()
    assert container.status == "running", f"the container did not survive the node's kill -9: {container.status}"

    node.restart()
    wait_containers_gone(docker_engine, timeout_s=30, execution_id=execution["ID"])
    interrupted = watch.wait_execution(job_id, EXEC_FAILED, timeout_s=30)
    assert interrupted["ID"] == execution["ID"], interrupted
    assert re.search(r"(?i)restart", interrupted["ComputeState"].get("Message", "")), interrupted["ComputeState"]
    # The job does not hang on the dead execution: it ends, or a new execution replaces it.
    watch.wait_for(
        "the interrupted job to leave the dead execution",
        lambda: watch.state(job_id) in ("Failed", "Completed", "Stopped")
        or any(e["ID"] != execution["ID"] for e in watch.executions(job_id)),
        timeout_s=30,
    )
    # A retry may be running now; stop the job and every container of this node goes.
    if watch.state(job_id) not in ("Failed", "Completed", "Stopped"):
        node.ok("job", "stop", job_id)
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    left = managed_containers(docker_engine, node_id=execution["NodeID"])
    assert not left, f"containers of the node remain:\n{describe_containers(left)}"
