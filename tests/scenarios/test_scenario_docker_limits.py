"""Ending docker jobs early: a timeout and `job stop` kill the container at once; a memory limit is
enforced by the engine and an allocation over it is OOM-killed and reported as such."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scenario_jobs import EXEC_CANCELLED, EXEC_FAILED, EXEC_RUNNING, JobWatch, one_job_id

from docker_env import managed_containers, wait_containers_gone
from serve_node import BacalhauNode, NodePool

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario

# How long a kill may take, from the job's end to the container's removal. Docker's own stop grace is
# 10 s by default; "at once" means the executor does not wait for it.
KILL_DEADLINE_S = 10.0
OOM_WORDS = re.compile(r"(?i)\boom|out of memory|memory limit")


@pytest.fixture(scope="module")
def limits_node(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> Iterator[tuple[BacalhauNode, JobWatch]]:
    """One hybrid node for the module's docker jobs."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool()
        yield node, JobWatch(node.url, node.log_excerpt)
    finally:
        pool.close()


def wait_container_running(engine: docker.DockerClient, watch: JobWatch, job_id: str) -> Any:
    """The job's container once the engine reports it running."""

    def probe() -> Any:
        running = [c for c in managed_containers(engine, job_id=job_id) if c.status == "running"]
        return running[0] if running else None

    return watch.wait_for(f"a running container for {job_id}", probe, timeout_s=60)


def test_a_timeout_kills_the_container(
    limits_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node, watch = limits_node
    started = time.monotonic()
    result = node.fails("docker", "run", "--timeout", "2", busybox_image, "--", "sleep", "300", timeout=90)
    out = result.stdout + result.stderr
    assert re.search(r"(?i)time(d)? ?out", out), node.describe_result(result)
    job_id = one_job_id(out)
    job = watch.wait_state(job_id, "Failed")
    assert re.search(r"(?i)time(d)? ?out", job["State"].get("Message", "")), job
    watch.wait_execution(job_id, EXEC_FAILED, EXEC_CANCELLED, timeout_s=30)
    gone_after = wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 30, f"the 2 s timeout took {elapsed:.1f}s to end the job and remove its container"
    assert gone_after < KILL_DEADLINE_S, f"the container outlived the failed job by {gone_after:.1f}s"


def test_job_stop_kills_the_running_container(
    limits_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node, watch = limits_node
    job_id = node.ok("docker", "run", "--wait=false", "--id-only", busybox_image, "--", "sleep", "300").stdout.strip()
    watch.wait_execution(job_id, EXEC_RUNNING)
    container = wait_container_running(docker_engine, watch, job_id)
    stopped_at = time.monotonic()
    node.ok("job", "stop", job_id)
    watch.wait_state(job_id, "Stopped", timeout_s=30)
    watch.wait_execution(job_id, EXEC_CANCELLED, timeout_s=30)
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    took = time.monotonic() - stopped_at
    assert took < KILL_DEADLINE_S, f"`job stop` took {took:.1f}s to remove container {container.name}"


def test_memory_limit_is_enforced_and_reported_as_oom(
    limits_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    node, watch = limits_node
    # `tail` keeps the last lines of its input; /dev/zero has no newline, so it buffers without end.
    result = node.cli("docker", "run", "--memory", "64mb", busybox_image, "--", "tail", "/dev/zero", timeout=120)
    out = result.stdout + result.stderr
    job_id = one_job_id(out)
    watch.wait_for(f"job {job_id} to end", lambda: watch.state(job_id) in ("Completed", "Failed"), timeout_s=60)
    job = watch.job(job_id)
    executions = watch.executions(job_id)
    assert executions, f"no execution for {job_id}"
    execution = executions[0]
    run_output = execution.get("RunOutput") or {}
    # Wherever the executor says it, the user must be told that memory ran out.
    said = " ".join(
        [out, job["State"].get("Message", ""), execution["ComputeState"].get("Message", ""),
         run_output.get("ErrorMsg", ""), run_output.get("stderr", "")]
    )
    assert OOM_WORDS.search(said), (
        f"the OOM kill is not reported\njob: {job['State']}\nexecution: {json.dumps(execution, indent=1)[:3000]}\n"
        + node.describe_result(result)
    )
    if job["State"]["StateType"] == "Completed":  # reported as a result: then it must not look like success
        assert run_output.get("ExitCode") == 137, run_output
    else:
        assert result.returncode != 0, node.describe_result(result)
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    # The same command under no limit it can hit would run forever: the limit is what ended it. And a job
    # within the limit completes normally.
    fits = node.ok("docker", "run", "--memory", "64mb", busybox_image, "--", "sh", "-c", "head -c 8m /dev/zero | wc -c")
    assert str(8 * 1024 * 1024) in fits.stdout, node.describe_result(fits)


def test_disk_limit_stops_a_task_that_writes_too_much_to_its_outputs(
    limits_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    # Found: 2 GiB written to /outputs under --disk 100mb ended Completed. The sleep keeps the task alive
    # after the write: only the disk limit can end it early.
    node, watch = limits_node
    script = "dd if=/dev/zero of=/outputs/big bs=1M count=40 2>/dev/null; sleep 60"
    started = time.monotonic()
    result = node.cli("docker", "run", "--disk", "10mb", "-p", "local", "-o", "outputs:/outputs", busybox_image, "--", "sh", "-c",
                      script, timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    watch.wait_state(job_id, "Failed", timeout_s=60)
    assert time.monotonic() - started < 45, "the task ran on past its disk limit"
    execution = watch.executions(job_id)[0]
    message = execution["ComputeState"].get("Message", "")
    assert "over its disk limit of 10.0 MB (Resources.Disk)" in message or "disk limit" in message, execution
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
    # Within the limit: completes, and its output is kept.
    fits = node.ok("docker", "run", "--disk", "10mb", "-p", "local", "-o", "outputs:/outputs", busybox_image, "--",
                   "sh", "-c", "dd if=/dev/zero of=/outputs/small bs=1M count=2 2>/dev/null; echo wrote")
    fits_id = one_job_id(fits.stdout)
    watch.wait_state(fits_id, "Completed", timeout_s=60)
    assert "wrote" in node.ok("job", "logs", fits_id).stdout


def test_disk_limit_counts_what_a_task_writes_inside_its_container(
    limits_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    # The writable layer of the container is disk too: 40 MB written to /tmp (no result paths at all)
    # under --disk 10mb is stopped, whatever the storage driver (the engine's SizeRw is measured).
    node, watch = limits_node
    script = "dd if=/dev/zero of=/tmp/big bs=1M count=40 2>/dev/null; sleep 60"
    started = time.monotonic()
    result = node.cli("docker", "run", "--disk", "10mb", busybox_image, "--", "sh", "-c", script, timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    watch.wait_state(job_id, "Failed", timeout_s=60)
    assert time.monotonic() - started < 45, "the task ran on past its disk limit"
    message = watch.executions(job_id)[0]["ComputeState"].get("Message", "")
    assert "inside its container" in message and "over its disk limit of 10.0 MB" in message, message
    wait_containers_gone(docker_engine, timeout_s=30, job_id=job_id)
