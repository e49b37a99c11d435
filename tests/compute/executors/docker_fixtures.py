"""Fixtures for the DockerExecutor tests: an executor per test with a node ID of its own, and a factory
of docker RunRequests over the busybox test image.

The engine, the image and the local registry come from tests/conftest.py (`docker_engine`,
`busybox_image`, `local_registry`; see tests/docker_env.py): skipped locally, FAILED under CI=true,
when no Docker engine answers. Each executor's teardown checks that no container of its node is left.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bacalhau.compute.executors.base import MountedInput, MountedOutput, RunRequest
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import Resources
from docker_env import describe_containers, managed_containers

if TYPE_CHECKING:
    import docker

_ids = itertools.count(1)
MiB = 1024 * 1024


@dataclass
class DockerTasks:
    """Builds docker RunRequests writing their stdout/stderr under `root`."""

    root: Path
    image: str
    node_id: str
    made: list[RunRequest] = field(default_factory=list)

    def request(
        self,
        *command: str,
        image: str | None = None,
        entrypoint: list[str] | None = None,
        env: dict[str, str] | None = None,
        env_params: list[str] | None = None,
        workdir: str | None = None,
        inputs: list[MountedInput] | None = None,
        outputs: list[MountedOutput] | None = None,
        timeout_s: float | None = None,
        memory: int = 0,
        cpu: float = 0.0,
        network: str = "Default",
        domains: list[str] | None = None,
        engine_params: dict[str, Any] | None = None,
    ) -> RunRequest:
        """A docker RunRequest; `command` becomes Parameters (so `sh -c ...` runs with the image's default)."""
        execution_id = f"e-{uuid.uuid4()}"
        run_dir = self.root / f"run-{next(_ids)}"
        run_dir.mkdir(parents=True)
        params: dict[str, Any] = {"Image": image or self.image}
        if command:
            params["Parameters"] = list(command)
        if entrypoint is not None:
            params["Entrypoint"] = entrypoint
        if env_params is not None:
            params["EnvironmentVariables"] = env_params
        if workdir is not None:
            params["WorkingDirectory"] = workdir
        params.update(engine_params or {})
        stdout, stderr = run_dir / "stdout", run_dir / "stderr"
        stdout.touch()
        stderr.touch()
        request = RunRequest(
            execution_id=execution_id,
            job_id=f"j-{uuid.uuid4()}",
            job_type="batch",
            engine=SpecConfig(type="docker", params=params),
            env=env or {},
            inputs=list(inputs or []),
            outputs=list(outputs or []),
            resources=Resources(memory=memory, cpu=cpu),
            network=NetworkConfig(type=network, domains=domains or []),
            stdout_path=stdout,
            stderr_path=stderr,
            timeout_s=timeout_s,
        )
        self.made.append(request)
        return request

    def dir(self, name: str) -> Path:
        """A fresh host directory under this test's tmp dir."""
        path = self.root / "dirs" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def node_id() -> str:
    """A node ID of this test's own, so its containers never mix with another test's (or engineer's)."""
    return f"n-test-{uuid.uuid4()}"


@pytest.fixture
def docker_tasks(tmp_path: Path, busybox_image: str, node_id: str) -> DockerTasks:
    """Request factory over the busybox test image."""
    return DockerTasks(root=tmp_path, image=busybox_image, node_id=node_id)


def make_executor(node_id: str, **kwargs: Any) -> DockerExecutor:
    """A DockerExecutor with test-friendly defaults (no default limits, all images allowed)."""
    return DockerExecutor(node_id=node_id, **kwargs)


@pytest.fixture
async def docker_executor(docker_engine: docker.DockerClient, node_id: str) -> AsyncIterator[DockerExecutor]:
    """An executor for this test's node; at teardown no container of that node may remain."""
    executor = make_executor(node_id)
    try:
        yield executor
    finally:
        await executor.stop()
        assert_no_containers(docker_engine, node_id)


def assert_no_containers(engine: docker.DockerClient, node_id: str) -> None:
    """Every container of `node_id` is gone (removal is synchronous: no waiting needed)."""
    left = managed_containers(engine, node_id=node_id)
    assert not left, f"containers of {node_id} outlived their execution:\n{describe_containers(left)}"


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` (cheap, non-blocking) until true; fail after a generous bound."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s}s")
        await asyncio.sleep(0.02)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
