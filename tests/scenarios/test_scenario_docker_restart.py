"""A compute node killed with `kill -9` leaves its containers running; when it starts again it takes them
back (found by name and labels) instead of killing and re-running them: a task still running is waited
for, one that finished while the node was down is collected, and only a task whose container is gone
runs again, with a history that says its result was lost.

Runs are counted with the engine's own record of container starts (docker events), so a second run of a
task cannot hide behind a single successful execution.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from scenario_jobs import EXEC_COMPLETED, EXEC_FAILED, EXEC_RUNNING, JobWatch

from docker_env import describe_containers, managed_containers, wait_containers_gone
from serve_node import BacalhauNode

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario

_CONFIG = ["Orchestrator.Scheduler.QueueBackoff=1s"]


def container_starts(engine: docker.DockerClient, job_id: str, since: float) -> int:
    """How many times the engine started a container of `job_id` since `since` (Unix seconds)."""
    events = engine.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "start", "label": [f"bacalhau.org/job-id={job_id}"]},
    )
    return sum(1 for _ in events)


def running_container(watch: JobWatch, engine: docker.DockerClient, job_id: str) -> Any:
    running = watch.wait_for(
        f"the container of {job_id} to run",
        lambda: [c for c in managed_containers(engine, job_id=job_id) if c.status == "running"],
        timeout_s=60,
    )
    return running[0]


def submit_docker(node: BacalhauNode, image: str, script: str) -> str:
    return node.ok("docker", "run", "--wait=false", "--id-only", image, "--", "sh", "-c", script).stdout.strip()


def test_a_container_still_running_after_kill_9_is_taken_back_and_still_obeys_stop(
    serve: Callable[..., BacalhauNode], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node = serve(extra_config=_CONFIG)
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = submit_docker(node, busybox_image, "echo started; sleep 600")
    execution = watch.wait_execution(job_id, EXEC_RUNNING)
    container = running_container(watch, docker_engine, job_id)
    assert container.name == f"bacalhau-{execution['ID']}", container.name
    assert container.labels.get("bacalhau.org/node-id") == execution["NodeID"], container.labels

    node.kill9()
    node.restart()

    # The same container, still running, under the same execution: nothing was killed or re-run.
    watch.wait_for("the node to be back", lambda: watch.state(job_id) == "Running", timeout_s=30)
    time.sleep(2)  # a window in which a wrong restart path would kill or replace the container
    container.reload()
    assert container.status == "running", f"the container did not survive the restart: {container.status}"
    assert [c.id for c in managed_containers(docker_engine, job_id=job_id)] == [container.id]
    assert [e["ID"] for e in watch.executions(job_id)] == [execution["ID"]], watch.executions(job_id)
    assert watch.executions(job_id)[0]["ComputeState"]["StateType"] == EXEC_RUNNING
    # Taken back, it is controlled as before: stopping the job kills and removes its container.
    node.ok("job", "stop", job_id)
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    watch.wait_state(job_id, "Stopped", timeout_s=30)
    left = managed_containers(docker_engine, node_id=execution["NodeID"])
    assert not left, f"containers of the node remain:\n{describe_containers(left)}"


def test_a_task_running_across_kill_9_completes_once_with_its_whole_output(
    serve: Callable[..., BacalhauNode], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node = serve(extra_config=_CONFIG)
    watch = JobWatch(node.url, node.log_excerpt)
    since = time.time()
    job_id = submit_docker(node, busybox_image, "echo before; sleep 6; echo done")
    watch.wait_execution(job_id, EXEC_RUNNING)
    container = running_container(watch, docker_engine, job_id)
    watch.wait_for("the task's first line", lambda: b"before" in container.logs(), timeout_s=30)

    node.kill9()
    container.reload()
    assert container.status == "running", "the task ended before the restart: the test shows nothing"
    node.restart()

    watch.wait_state(job_id, "Completed", timeout_s=60)
    executions = watch.executions(job_id)
    assert len(executions) == 1 and executions[0]["ComputeState"]["StateType"] == EXEC_COMPLETED, executions
    logs = node.ok("job", "logs", job_id)
    assert logs.stdout.split() == ["before", "done"], node.describe_result(logs)
    assert container_starts(docker_engine, job_id, since) == 1, "the task ran more than once"
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)


def test_a_task_that_finished_while_the_node_was_down_is_collected_not_run_again(
    serve: Callable[..., BacalhauNode], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node = serve(extra_config=_CONFIG)
    watch = JobWatch(node.url, node.log_excerpt)
    since = time.time()
    job_id = submit_docker(node, busybox_image, "echo begin; sleep 2; echo finished while nobody watched")
    watch.wait_execution(job_id, EXEC_RUNNING)
    container = running_container(watch, docker_engine, job_id)

    node.kill9()
    watch.wait_for(
        "the container to exit while the node is down",
        lambda: container.reload() or container.status == "exited",
        timeout_s=30,
    )
    node.restart()

    job = watch.wait_state(job_id, "Completed", timeout_s=60)
    executions = watch.executions(job_id)
    assert len(executions) == 1, executions
    assert executions[0]["RunOutput"]["ExitCode"] == 0, executions[0]
    logs = node.ok("job", "logs", job_id)
    assert "finished while nobody watched" in logs.stdout, node.describe_result(logs)
    assert container_starts(docker_engine, job_id, since) == 1, "the task ran more than once"
    assert not re.search(r"(?i)lost|interrupted", job["State"].get("Message") or ""), job["State"]
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)


def test_a_task_whose_container_vanished_while_the_node_was_down_runs_again_and_the_history_says_why(
    serve: Callable[..., BacalhauNode], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node = serve(extra_config=_CONFIG)
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = submit_docker(node, busybox_image, "sleep 4; echo second try")
    first = watch.wait_execution(job_id, EXEC_RUNNING)
    container = running_container(watch, docker_engine, job_id)

    node.kill9()
    container.remove(force=True)
    node.restart()

    lost = watch.wait_execution(job_id, EXEC_FAILED, timeout_s=30)
    assert lost["ID"] == first["ID"], lost
    message = lost["ComputeState"].get("Message", "")
    assert re.search(r"(?i)lost", message) and re.search(r"(?i)restart", message), lost["ComputeState"]
    watch.wait_state(job_id, "Completed", timeout_s=90)
    executions = watch.executions(job_id)
    assert len(executions) == 2 and any(e["ID"] != first["ID"] for e in executions), executions
    history = [item["Event"]["Message"] for item in watch.history(job_id)]
    assert any(re.search(r"(?i)lost", m) for m in history), f"nothing in the history says why: {history}"
    logs = node.ok("job", "logs", job_id)
    assert "second try" in logs.stdout, node.describe_result(logs)
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
