"""DockerExecutor.reattach against the real Docker engine: a restarted node takes back the container an
earlier process of it started (here: created and started the way `run` does, then left alone, as a
kill -9 of the node leaves it) instead of running the task again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import docker.errors as docker_errors
import pytest
from tests.compute.executors.docker_fixtures import (
    DockerTasks,
    docker_executor,
    docker_tasks,
    node_id,
    read,
    wait_until,
)

from bacalhau.compute.executors.base import MountedOutput, Reattachable, RunRequest
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.docker_container import Limits, container_spec
from bacalhau.compute.executors.docker_params import DockerParams
from bacalhau.compute.executors.docker_reattach import engine_time_s
from bacalhau.models.errors import ErrorCode, ExecutionError
from docker_env import managed_containers

if TYPE_CHECKING:
    import docker

__all__ = ["docker_executor", "docker_tasks", "node_id"]  # fixtures, imported to be found by pytest

PROMPT_S = 8.0


@pytest.fixture
def earlier_process(docker_engine: docker.DockerClient, node_id: str) -> Iterator[Any]:
    """`earlier_process(request)` starts the request's container as `run` would have, and forgets it
    (`started=False`: it only created it, as a crash between create and start leaves it)."""
    made: list[Any] = []

    def start(request: RunRequest, *, started: bool = True) -> Any:
        image = docker_engine.images.get(str(request.engine.params["Image"]))
        spec = container_spec(
            request,
            DockerParams.parse(request.engine),
            image_id=str(image.id),
            node_id=node_id,
            network_mode="none",
            limits=Limits(),
        )
        container = docker_engine.containers.create(**spec)
        made.append(container)
        if started:
            container.start()
        return container

    try:
        yield start
    finally:
        for container in made:
            with contextlib.suppress(docker_errors.NotFound):
                container.remove(force=True, v=True)


def status(container: Any) -> str:
    with contextlib.suppress(docker_errors.NotFound):
        container.reload()
        return str(container.status)
    return "gone"


def test_the_docker_executor_can_reattach(docker_executor: DockerExecutor) -> None:
    assert isinstance(docker_executor, Reattachable)


async def test_reattach_waits_for_a_running_container_and_collects_its_whole_output(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    out = docker_tasks.dir("out")
    request = docker_tasks.request(
        "sh", "-c", "echo early; sleep 2; echo late; echo err >&2; echo result > /outputs/r; exit 3",
        outputs=[MountedOutput(name="outputs", host_path=out, target="/outputs")],
    )
    container = earlier_process(request)
    request.stdout_path.write_text("ear")  # what the killed process had saved: a prefix, rewritten in full
    await wait_until(lambda: b"early" in container.logs(), what="the task's first line")

    outcome = await asyncio.wait_for(docker_executor.reattach(request), 30)

    assert outcome is not None and outcome.exit_code == 3
    assert read(request.stdout_path) == "early\nlate\n"
    assert read(request.stderr_path) == "err\n"
    assert (out / "r").read_text() == "result\n"
    assert outcome.details["Image"] == docker_tasks.image
    assert outcome.details["ImageDigest"].startswith("sha256:")
    assert status(container) == "gone"


async def test_reattach_collects_a_container_that_exited_while_nobody_watched(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("sh", "-c", "echo done; echo warn >&2")
    container = earlier_process(request)
    await wait_until(lambda: status(container) == "exited", what="the container to exit")

    outcome = await asyncio.wait_for(docker_executor.reattach(request), 30)

    assert outcome is not None and outcome.exit_code == 0
    assert (read(request.stdout_path), read(request.stderr_path)) == ("done\n", "warn\n")
    assert status(container) == "gone"


async def test_reattach_finds_nothing_when_the_container_is_gone(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("echo", "never ran here")
    assert await docker_executor.reattach(request) is None


async def test_a_container_created_but_never_started_is_removed_and_nothing_is_collected(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("echo", "never started")
    created = earlier_process(request, started=False)
    assert await docker_executor.reattach(request) is None
    assert status(created) == "gone"


async def test_another_nodes_container_is_never_taken(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("sleep", "300")
    other = DockerExecutor(node_id=f"{docker_tasks.node_id}-other")
    assert await other.reattach(request) is None
    container = earlier_process(request)
    assert await other.reattach(request) is None
    assert status(container) == "running"
    await other.stop()
    container.remove(force=True)


async def test_the_timeout_counts_from_when_the_container_started(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("sleep", "300", timeout_s=2)
    container = earlier_process(request)
    await wait_until(lambda: status(container) == "running", what="the container to run")
    await asyncio.sleep(1)  # a second of the two is spent while the node is down
    began = time.monotonic()
    with pytest.raises(ExecutionError) as caught:
        await asyncio.wait_for(docker_executor.reattach(request), 30)
    assert caught.value.code == ErrorCode.TimeOut
    assert caught.value.message == "execution timed out after 2s"
    assert time.monotonic() - began < 1.9, "the timer started again from zero"
    assert status(container) == "gone"


async def test_a_container_that_ran_past_its_timeout_while_nobody_watched_timed_out(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("sleep", "2", timeout_s=1)
    container = earlier_process(request)
    await wait_until(lambda: status(container) == "exited", what="the container to exit")
    with pytest.raises(ExecutionError, match="timed out after 1s"):
        await docker_executor.reattach(request)
    assert status(container) == "gone"


async def test_cancel_stops_a_reattached_container_promptly(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    request = docker_tasks.request("sleep", "300")
    container = earlier_process(request)
    waiting = asyncio.create_task(docker_executor.reattach(request))
    await wait_until(lambda: request.execution_id in docker_executor._runs.ids(), what="the re-attach to wait")
    began = time.monotonic()
    await docker_executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await asyncio.wait_for(waiting, 30)
    assert time.monotonic() - began < PROMPT_S
    assert status(container) == "gone"


async def test_remove_leftovers_spares_the_kept_executions(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, earlier_process: Any
) -> None:
    kept, dropped = docker_tasks.request("sleep", "300"), docker_tasks.request("sleep", "300")
    earlier_process(kept)
    earlier_process(dropped)
    assert await docker_executor.remove_leftovers(keep=[kept.execution_id]) == 1
    names = [c.name for c in managed_containers(docker_engine, node_id=docker_tasks.node_id)]
    assert names == [f"bacalhau-{kept.execution_id}"]
    assert await docker_executor.remove_leftovers() == 1


def test_engine_times_are_read_to_the_nanosecond_and_the_zero_time_is_none() -> None:
    assert engine_time_s("2024-05-01T10:00:00.5Z") == pytest.approx(1714557600.5)
    assert engine_time_s("2024-05-01T12:00:00.123456789+02:00") == pytest.approx(1714557600.123456789)
    assert engine_time_s("0001-01-01T00:00:00Z") is None
    assert engine_time_s("") is None
