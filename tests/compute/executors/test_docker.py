"""DockerExecutor against the real Docker engine and the busybox test image (no mocks).

Each test has an executor with a node ID of its own; its teardown fails the test if any container of
that node outlived the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import docker.errors as docker_errors
import pytest
from tests.compute.executors.docker_fixtures import (
    DockerTasks,
    MiB,
    assert_no_containers,
    docker_executor,
    docker_tasks,
    node_id,
    read,
    wait_until,
)

from bacalhau.compute.executors.base import MountedInput, MountedOutput
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.models.errors import ErrorCode, ExecutionError
from docker_env import LocalRegistry, managed_containers

if TYPE_CHECKING:
    from collections.abc import Callable

    import docker

__all__ = ["docker_executor", "docker_tasks", "node_id"]  # fixtures, imported to be found by pytest

# "Promptly": a kill, not Docker's 10 s stop grace, and far from the 300 s the task would take.
PROMPT_S = 8.0


# -- output, params, env, exit codes ---------------------------------------------------------------------
async def test_hello_world_writes_stdout_and_records_the_image(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("echo", "hello from docker")
    outcome = await docker_executor.run(request)
    assert outcome.exit_code == 0
    assert read(request.stdout_path) == "hello from docker\n"
    assert read(request.stderr_path) == ""
    assert outcome.details["Image"] == docker_tasks.image
    # A local-only (imported) image has no registry digest: its content-addressed ID pins it.
    assert outcome.details["ImageDigest"].startswith("sha256:")


async def test_stdout_and_stderr_are_kept_apart(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    request = docker_tasks.request("sh", "-c", "echo out; echo err >&2; echo out2")
    await docker_executor.run(request)
    assert read(request.stdout_path) == "out\nout2\n"
    assert read(request.stderr_path) == "err\n"


async def test_output_is_streamed_to_the_files_while_the_container_runs(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "echo first; sleep 300")
    run = asyncio.create_task(docker_executor.run(request))
    await wait_until(lambda: read(request.stdout_path) == "first\n", what="live stdout")
    assert not run.done()
    await docker_executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match="execution cancelled"):
        await run


async def test_nonzero_exit_code_is_an_outcome_not_an_error(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "echo bye; exit 7")
    outcome = await docker_executor.run(request)
    assert outcome.exit_code == 7
    assert read(request.stdout_path) == "bye\n"


async def test_env_vars_merge_params_and_task_env_with_the_task_env_winning(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request(
        "sh",
        "-c",
        'echo "A=$A B=$B ID=$BACALHAU_EXECUTION_ID"',
        env_params=["A=from-params", "B=from-params"],
        env={"B": "from-task", "BACALHAU_EXECUTION_ID": "e-1"},
    )
    await docker_executor.run(request)
    assert read(request.stdout_path) == "A=from-params B=from-task ID=e-1\n"


async def test_working_directory_is_honoured(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    request = docker_tasks.request("pwd", workdir="/tmp")
    await docker_executor.run(request)
    assert read(request.stdout_path) == "/tmp\n"


async def test_entrypoint_override_takes_parameters_as_its_arguments(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("from-entrypoint", "and-params", entrypoint=["/bin/echo"])
    await docker_executor.run(request)
    assert read(request.stdout_path) == "from-entrypoint and-params\n"


async def test_an_image_without_parameters_runs_its_default_command(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    # The test image's CMD is /bin/sh: with no stdin it exits 0 at once.
    outcome = await docker_executor.run(docker_tasks.request())
    assert outcome.exit_code == 0


async def test_an_entrypoint_missing_from_the_image_fails_with_the_engines_reason(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(docker_tasks.request(entrypoint=["/no/such/binary"]))
    assert "could not be started" in caught.value.message
    assert "/no/such/binary" in caught.value.message
    assert caught.value.details["Image"] == docker_tasks.image


# -- inputs and outputs ------------------------------------------------------------------------------
async def test_inputs_are_readable_and_read_only(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    data = docker_tasks.dir("in")
    (data / "in.txt").write_text("bom dia\n")
    request = docker_tasks.request(
        "sh", "-c", "cat /inputs/in.txt && touch /inputs/new.txt", inputs=[MountedInput(data, "/inputs")]
    )
    outcome = await docker_executor.run(request)
    assert read(request.stdout_path) == "bom dia\n"
    assert outcome.exit_code != 0
    assert "Read-only file system" in read(request.stderr_path)
    assert not (data / "new.txt").exists()


async def test_a_single_file_input_is_mounted_at_its_target(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    source = docker_tasks.dir("file") / "greeting"
    source.write_text("ola")
    request = docker_tasks.request("cat", "/data/greeting.txt", inputs=[MountedInput(source, "/data/greeting.txt")])
    await docker_executor.run(request)
    assert read(request.stdout_path) == "ola"


async def test_a_read_write_input_may_be_written(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    data = docker_tasks.dir("rw")
    request = docker_tasks.request(
        "sh", "-c", "echo written > /rw/new.txt", inputs=[MountedInput(data, "/rw", read_only=False)]
    )
    assert (await docker_executor.run(request)).exit_code == 0
    assert (data / "new.txt").read_text() == "written\n"


async def test_outputs_are_written_to_the_host_folders(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    out = docker_tasks.dir("outputs")
    request = docker_tasks.request(
        "sh",
        "-c",
        "echo result > /outputs/result.txt && mkdir /outputs/sub && echo nested > /outputs/sub/n.txt",
        outputs=[MountedOutput("outputs", out, "/outputs")],
    )
    assert (await docker_executor.run(request)).exit_code == 0
    assert (out / "result.txt").read_text() == "result\n"
    assert (out / "sub" / "n.txt").read_text() == "nested\n"


async def test_no_undeclared_host_path_is_reachable(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    secret = docker_tasks.dir("secret")
    (secret / "s.txt").write_text("x")
    request = docker_tasks.request("sh", "-c", f"ls /var/run/docker.sock; ls /run/docker.sock; ls {secret}; echo done")
    await docker_executor.run(request)
    assert read(request.stdout_path) == "done\n"
    assert read(request.stderr_path).count("No such file or directory") == 3


# -- security defaults ---------------------------------------------------------------------------------
async def test_all_capabilities_are_dropped_and_no_new_privileges_is_set(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "grep -E '^(Cap(Eff|Prm|Bnd)|NoNewPrivs):' /proc/self/status")
    await docker_executor.run(request)
    status = dict(line.split(":\t") for line in read(request.stdout_path).splitlines())
    assert status == {
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
    }


async def test_default_network_is_none(docker_executor: DockerExecutor, docker_tasks: DockerTasks) -> None:
    request = docker_tasks.request("sh", "-c", "cat /proc/net/dev; echo ROUTES; cat /proc/net/route")
    await docker_executor.run(request)
    devices, _, routes = read(request.stdout_path).partition("ROUTES\n")
    interfaces = {line.split(":")[0].strip() for line in devices.splitlines() if ":" in line}
    assert interfaces == {"lo"}
    assert routes.splitlines()[1:] == []  # the header only: no route anywhere


async def test_full_network_on_a_node_that_accepts_it_gets_a_bridge(
    docker_engine: docker.DockerClient, docker_tasks: DockerTasks, node_id: str
) -> None:
    executor = DockerExecutor(node_id=node_id, accept_networked_jobs=True)
    try:
        request = docker_tasks.request("sh", "-c", "cat /proc/net/dev", network="Full")
        await executor.run(request)
    finally:
        await executor.stop()
    interfaces = {line.split(":")[0].strip() for line in read(request.stdout_path).splitlines() if ":" in line}
    assert "eth0" in interfaces
    assert_no_containers(docker_engine, node_id)


async def test_pids_limit_stops_a_fork_bomb(
    docker_engine: docker.DockerClient, docker_tasks: DockerTasks, node_id: str
) -> None:
    executor = DockerExecutor(node_id=node_id, pids_limit=8)
    try:
        request = docker_tasks.request(
            "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo spawned"
        )
        await executor.run(request)
    finally:
        await executor.stop()
    assert "can't fork" in read(request.stderr_path)
    assert_no_containers(docker_engine, node_id)


# -- limits --------------------------------------------------------------------------------------------
MEMORY_LIMIT_SH = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
CPU_LIMIT_SH = (
    "cat /sys/fs/cgroup/cpu.max 2>/dev/null || "
    'echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"'
)


async def test_memory_and_cpu_limits_come_from_the_job(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", f"{MEMORY_LIMIT_SH}; {CPU_LIMIT_SH}", memory=96 * MiB, cpu=0.5)
    await docker_executor.run(request)
    memory, cpu = read(request.stdout_path).splitlines()
    assert int(memory) == 96 * MiB
    quota, period = (int(n) for n in cpu.split())
    assert quota / period == pytest.approx(0.5)


async def test_node_defaults_apply_when_the_job_sets_no_limits(
    docker_engine: docker.DockerClient, docker_tasks: DockerTasks, node_id: str
) -> None:
    executor = DockerExecutor(node_id=node_id, default_memory_bytes=80 * MiB, default_cpu=0.25)
    try:
        request = docker_tasks.request("sh", "-c", f"{MEMORY_LIMIT_SH}; {CPU_LIMIT_SH}")
        await executor.run(request)
    finally:
        await executor.stop()
    memory, cpu = read(request.stdout_path).splitlines()
    assert int(memory) == 80 * MiB
    quota, period = (int(n) for n in cpu.split())
    assert quota / period == pytest.approx(0.25)
    assert_no_containers(docker_engine, node_id)


async def test_an_allocation_over_the_memory_limit_is_oom_killed_and_reported(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "head -c 200m /dev/zero | tail", memory=64 * MiB)
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(request)
    assert caught.value.message == "the container ran out of memory (limit 64 MiB)"
    assert "Resources.Memory" in caught.value.hint
    assert caught.value.code == ErrorCode.ResourceExhausted


async def test_an_allocation_within_the_limit_completes(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "head -c 8m /dev/zero | wc -c", memory=64 * MiB)
    assert (await docker_executor.run(request)).exit_code == 0
    assert read(request.stdout_path).strip() == str(8 * MiB)


# -- ending early ----------------------------------------------------------------------------------------
async def test_timeout_kills_the_container_promptly(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, node_id: str
) -> None:
    request = docker_tasks.request("sleep", "300", timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(request)
    assert time.monotonic() - started < 1 + PROMPT_S
    assert caught.value.message == "execution timed out after 1s"
    assert caught.value.code == ErrorCode.TimeOut
    assert_no_containers(docker_engine, node_id)


async def test_cancel_kills_the_running_container_promptly(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, node_id: str
) -> None:
    request = docker_tasks.request("sh", "-c", "echo started; sleep 300")
    run = asyncio.create_task(docker_executor.run(request))
    await wait_until(lambda: "started" in read(request.stdout_path), what="the container to start")
    assert [c.name for c in managed_containers(docker_engine, execution_id=request.execution_id)] == [
        f"bacalhau-{request.execution_id}"
    ]
    started = time.monotonic()
    await docker_executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match=r"^execution cancelled$"):
        await run
    assert time.monotonic() - started < PROMPT_S
    assert_no_containers(docker_engine, node_id)


async def test_cancel_before_the_run_means_it_never_starts(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    request = docker_tasks.request("sh", "-c", "echo should-not-run")
    await docker_executor.cancel(request.execution_id)
    with pytest.raises(ExecutionError, match="execution cancelled"):
        await docker_executor.run(request)
    assert read(request.stdout_path) == ""


async def test_cancelling_the_awaiting_task_kills_and_removes_the_container(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, node_id: str
) -> None:
    request = docker_tasks.request("sh", "-c", "echo started; sleep 300")
    run = asyncio.create_task(docker_executor.run(request))
    await wait_until(lambda: "started" in read(request.stdout_path), what="the container to start")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert_no_containers(docker_engine, node_id)


async def test_cancel_of_an_unknown_execution_is_harmless(docker_executor: DockerExecutor) -> None:
    await docker_executor.cancel("e-never-ran")
    await docker_executor.cancel("e-never-ran")


# -- images --------------------------------------------------------------------------------------------
async def test_missing_image_error_names_the_image_and_the_registry(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, local_registry: LocalRegistry
) -> None:
    host = local_registry.host
    image = f"{host}/bacalhau-test/no-such-image:1"
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(docker_tasks.request("true", image=image))
    message = caught.value.message
    assert message.startswith(f"image {image} could not be pulled from {host}: ")
    assert "unknown" in message or "not found" in message
    assert caught.value.hint
    assert not caught.value.retryable, "a missing image is the job's fault: another node would fail the same way"


async def test_unreachable_registry_error_names_the_registry(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, free_port: Callable[[], int]
) -> None:
    host = f"127.0.0.1:{free_port()}"
    image = f"{host}/bacalhau-test/busybox:1"
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(docker_tasks.request("true", image=image))
    assert caught.value.message.startswith(f"image {image} could not be pulled from {host}: ")
    assert "connection refused" in caught.value.message
    assert caught.value.retryable, "an unreachable registry may be this node's network: another node may pull it"


async def test_pull_from_a_local_registry_records_the_digest(
    docker_engine: docker.DockerClient,
    docker_executor: DockerExecutor,
    docker_tasks: DockerTasks,
    local_registry: LocalRegistry,
    busybox_image: str,
) -> None:
    pushed = local_registry.push(docker_engine, busybox_image, "bacalhau-test/executor-pull", tag="1")
    assert not docker_engine.images.list(name=pushed.repository)  # so the executor has to pull it
    request = docker_tasks.request("echo", "pulled", image=pushed.ref)
    try:
        outcome = await docker_executor.run(request)
        assert read(request.stdout_path) == "pulled\n"
        assert outcome.details == {"Image": pushed.ref, "ImageDigest": pushed.digest}
        # Pinned by digest, the same image runs again (now from the local copy).
        pinned = docker_tasks.request("echo", "pinned", image=f"{pushed.repository}@{pushed.digest}")
        outcome = await docker_executor.run(pinned)
        assert read(pinned.stdout_path) == "pinned\n"
        assert outcome.details["ImageDigest"] == pushed.digest
    finally:
        # Untag only (the layers belong to the busybox image), so the next run has to pull again.
        for ref in (pushed.ref, f"{pushed.repository}@{pushed.digest}"):
            with contextlib.suppress(docker_errors.ImageNotFound):
                docker_engine.images.remove(ref)


async def test_the_engines_own_copy_of_the_output_is_capped(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    # json-file is uncapped by default: the engine would keep every byte a task prints, again.
    request = docker_tasks.request("sh", "-c", "echo started; sleep 30")
    run = asyncio.create_task(docker_executor.run(request))
    try:
        deadline = time.monotonic() + 30
        containers = []
        while not containers and time.monotonic() < deadline:
            containers = managed_containers(docker_engine, execution_id=request.execution_id)
            await asyncio.sleep(0.1)
        assert containers, "the container never appeared"
        log_config = containers[0].attrs["HostConfig"]["LogConfig"]
        assert log_config["Type"] == "json-file", log_config
        assert log_config["Config"] == {"max-size": str(512 * 1024 * 1024), "max-file": "2"}, log_config
    finally:
        await docker_executor.cancel(request.execution_id)
        with contextlib.suppress(ExecutionError):
            await run


# -- the disk limit's measure ------------------------------------------------------------------------------
async def test_scratch_bytes_is_what_the_container_wrote_outside_its_mounts(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    """The runner's disk limit counts a container's writable layer: the engine's SizeRw of this
    execution's container only, 0 before it exists and after it is gone."""
    request = docker_tasks.request("sh", "-c", "head -c 3145728 /dev/zero > /tmp/scratch; echo wrote; sleep 300")
    assert await docker_executor.scratch_bytes(request.execution_id) == 0
    run = asyncio.create_task(docker_executor.run(request))
    try:
        await wait_until(lambda: "wrote" in read(request.stdout_path), what="the container to write")
        written = await docker_executor.scratch_bytes(request.execution_id)
        assert 3 * MiB <= written < 4 * MiB
        assert await docker_executor.scratch_bytes("some-other-execution") == 0
    finally:
        await docker_executor.cancel(request.execution_id)
        with contextlib.suppress(ExecutionError):
            await run
    assert await docker_executor.scratch_bytes(request.execution_id) == 0
