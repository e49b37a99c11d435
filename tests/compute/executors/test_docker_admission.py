"""What a docker job may ask for, and the node's side of it: params validation, the image allow-list,
networked jobs, engine reachability, registry wiring and the removal of leftover containers.

Validation needs no engine; the rest runs against the real engine (no mocks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest
from tests.compute.executors.docker_fixtures import (
    DockerTasks,
    assert_no_containers,
    docker_executor,
    docker_tasks,
    node_id,
    read,
)

from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.docker_params import ImageRef
from bacalhau.compute.registry import build_registry
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.errors import ExecutionError, ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig
from docker_env import managed_containers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["docker_executor", "docker_tasks", "node_id"]  # fixtures, imported to be found by pytest


def engine(**params: Any) -> SpecConfig:
    return SpecConfig(type="docker", params=params)


def problems(exc: ValidationFailed) -> dict[str, str]:
    return {error.path: error.message for error in exc.errors}


# -- params ----------------------------------------------------------------------------------------------
def test_valid_params_pass_and_are_read_case_insensitively() -> None:
    executor = DockerExecutor(node_id="n-1")
    executor.validate(
        engine(
            image="busybox:1.36",
            ENTRYPOINT=["/bin/sh"],
            parameters=["-c", "true"],
            environmentvariables=["A=1"],
            WorkingDirectory="/work",
        )
    )


def test_every_params_problem_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(ValidationFailed) as caught:
        DockerExecutor(node_id="n-1").validate(
            engine(
                Image="",
                Entrypoint="/bin/sh",
                Parameters=[1],
                EnvironmentVariables=["NOVALUE", "BACALHAU_JOB_ID=x"],
                WorkingDirectory="relative",
            )
        )
    found = problems(caught.value)
    assert found["Engine.Params.Image"] == "'Image' cannot be empty"
    assert found["Engine.Params.Entrypoint"] == "must be a list of strings"
    assert found["Engine.Params.Parameters"] == "must be a list of strings"
    assert found["Engine.Params.WorkingDirectory"] == "'relative' must be an absolute path"
    env_problems = [e.message for e in caught.value.errors if e.path == "Engine.Params.EnvironmentVariables"]
    assert env_problems == [
        "'NOVALUE' is not NAME=VALUE",
        "BACALHAU_JOB_ID is reserved: names starting with BACALHAU_ are set by the system",
    ]


@pytest.mark.parametrize(
    ("reference", "repository", "tag", "digest", "registry"),
    [
        ("busybox", "busybox", "", "", "docker.io"),
        ("bacalhau-test/busybox:latest", "bacalhau-test/busybox", "latest", "", "docker.io"),
        ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app", "1", "", "127.0.0.1:5000"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", "", "", "127.0.0.1:5000"),
        ("localhost/app@sha256:abc", "localhost/app", "", "sha256:abc", "localhost"),
        ("ghcr.io/o/app:2@sha256:abc", "ghcr.io/o/app", "2", "sha256:abc", "ghcr.io"),
    ],
)
def test_image_references_are_split_as_the_engine_splits_them(
    reference: str, repository: str, tag: str, digest: str, registry: str
) -> None:
    ref = ImageRef.parse(reference)
    assert (ref.repository, ref.tag, ref.digest, ref.registry) == (repository, tag, digest, registry)


# -- the node's allow-list and network admission ----------------------------------------------------------
@pytest.mark.parametrize(
    "image",
    ["bacalhau-test/busybox", "bacalhau-test/busybox:latest", "127.0.0.1:5000/team/app:1", "127.0.0.1:6000/x@sha256:1"],
)
def test_allowed_images_match_glob_patterns(image: str) -> None:
    executor = DockerExecutor(node_id="n-1", allowed_images=["bacalhau-test/*", "127.0.0.1:*/*"])
    executor.validate(engine(Image=image))


def test_a_pattern_naming_the_bare_repository_allows_its_implicit_latest_tag() -> None:
    executor = DockerExecutor(node_id="n-1", allowed_images=["bacalhau-test/busybox:latest"])
    executor.validate(engine(Image="bacalhau-test/busybox"))


def test_an_image_outside_the_allow_list_is_refused_with_the_reason() -> None:
    executor = DockerExecutor(node_id="n-1", allowed_images=["bacalhau-test/*", "127.0.0.1:*/*"])
    with pytest.raises(ValidationFailed) as caught:
        executor.validate(engine(Image="evil.example.com/miner:latest"))
    assert problems(caught.value) == {
        "Engine.Params.Image": "image evil.example.com/miner:latest is not allowed on this node "
        "(Engines.Types.Docker.AllowedImages: bacalhau-test/*, 127.0.0.1:*/*)"
    }


@pytest.mark.parametrize(
    "image",
    ["busybox", "library/busybox:1.36", "docker.io/library/busybox", "index.docker.io/library/busybox",
     "GHCR.io/team/app:1", "registry.example.com/x", "localhost:5000/x"],
)
def test_allowed_registries_match_the_registry_host(image: str) -> None:
    executor = DockerExecutor(
        node_id="n-1", allowed_registries=["docker.io", "ghcr.io", "*.example.com", "localhost:5000"]
    )
    executor.validate(engine(Image=image))


@pytest.mark.parametrize("image", ["127.0.0.1:8080/x", "localhost:6000/x", "169.254.169.254/latest", "quay.io/a/b"])
def test_an_image_from_a_registry_outside_allowed_registries_is_refused_naming_registry_and_key(image: str) -> None:
    executor = DockerExecutor(node_id="n-1", allowed_registries=["docker.io", "localhost:5000"])
    with pytest.raises(ValidationFailed) as caught:
        executor.validate(engine(Image=image))
    registry = image.split("/")[0]
    assert problems(caught.value) == {
        "Engine.Params.Image": f"image {image} comes from registry {registry}, which this node does not pull "
        "from (Engines.Types.Docker.AllowedRegistries: docker.io, localhost:5000)"
    }


def test_allowed_registries_and_allowed_images_both_apply() -> None:
    executor = DockerExecutor(node_id="n-1", allowed_registries=["docker.io"], allowed_images=["busybox*"])
    executor.validate(engine(Image="busybox:1.36"))
    with pytest.raises(ValidationFailed, match="AllowedImages"):
        executor.validate(engine(Image="alpine"))


def test_an_image_reference_with_a_control_character_is_invalid() -> None:
    with pytest.raises(ValidationFailed, match="is not an image reference"):
        DockerExecutor(node_id="n-1").validate(engine(Image="busybox\x1b]0;x\x07"))


@pytest.mark.parametrize("network", ["Host", "Full", "HTTP", "Bridge", "full"])
def test_a_networked_job_is_refused_by_a_node_that_does_not_accept_them(network: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        DockerExecutor(node_id="n-1").validate(engine(Image="busybox"), network=NetworkConfig(type=network))
    message = problems(caught.value)["Network.Type"]
    assert message.startswith("this node does not accept networked jobs")
    assert "JobAdmissionControl.AcceptNetworkedJobs" in message


@pytest.mark.parametrize("network", ["Default", "None", ""])
def test_a_job_without_network_is_always_admitted(network: str) -> None:
    DockerExecutor(node_id="n-1").validate(engine(Image="busybox"), network=NetworkConfig(type=network))


def test_a_node_that_accepts_networked_jobs_admits_them() -> None:
    executor = DockerExecutor(node_id="n-1", accept_networked_jobs=True)
    for network in ("Host", "Full", "HTTP", "Bridge"):
        domains = ["example.com"] if network == "HTTP" else []  # HTTP without domains: test_docker_networks
        executor.validate(engine(Image="busybox"), network=NetworkConfig(type=network, domains=domains))


async def test_run_refuses_what_validate_refuses_without_creating_a_container(
    docker_engine: docker.DockerClient, docker_tasks: DockerTasks, node_id: str
) -> None:
    executor = DockerExecutor(node_id=node_id, allowed_images=["bacalhau-test/*"])
    try:
        with pytest.raises(ExecutionError) as networked:
            await executor.run(docker_tasks.request("echo", "no", network="Host"))
        with pytest.raises(ExecutionError) as not_allowed:
            await executor.run(docker_tasks.request("echo", "no", image="other/image:1"))
    finally:
        await executor.stop()
    assert "this node does not accept networked jobs" in networked.value.message
    assert "image other/image:1 is not allowed on this node" in not_allowed.value.message
    assert all(read(request.stdout_path) == "" for request in docker_tasks.made)
    assert_no_containers(docker_engine, node_id)


# -- engine reachability ---------------------------------------------------------------------------------
def test_is_installed_when_the_engine_answers(docker_engine: docker.DockerClient) -> None:
    assert DockerExecutor(node_id="n-1").is_installed()


def no_engine(port: int) -> Callable[[], docker.DockerClient]:
    """A client factory for an engine that is not there (TCP: urllib3 closes the failed socket itself)."""
    return lambda: docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}")


def test_not_installed_when_no_engine_answers(free_port: Callable[[], int]) -> None:
    executor = DockerExecutor(node_id="n-1", client_factory=no_engine(free_port()))
    assert not executor.is_installed()


async def test_run_without_an_engine_fails_with_a_hint(free_port: Callable[[], int], docker_tasks: DockerTasks) -> None:
    executor = DockerExecutor(node_id="n-1", client_factory=no_engine(free_port()))
    with pytest.raises(ExecutionError) as caught:
        await executor.run(docker_tasks.request("true"))
    assert caught.value.message.startswith("the Docker engine is not reachable")
    assert "dockerd" in caught.value.hint
    assert caught.value.retryable


# -- leftovers -------------------------------------------------------------------------------------------
@pytest.fixture
def leftovers(docker_engine: docker.DockerClient, busybox_image: str) -> Iterator[Any]:
    """`leftovers(node_id, execution_id, running=True)` creates a container as a crashed node left it."""
    made: list[Any] = []

    def make(node: str, execution_id: str, *, running: bool = True) -> Any:
        container = docker_engine.containers.create(
            busybox_image,
            ["sleep", "300"],
            name=f"bacalhau-{execution_id}",
            labels={
                "bacalhau.org/managed": "true",
                "bacalhau.org/node-id": node,
                "bacalhau.org/execution-id": execution_id,
                "bacalhau.org/job-id": "j-left",
            },
            network_mode="none",
        )
        made.append(container)
        if running:
            container.start()
        return container

    try:
        yield make
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


async def test_remove_leftovers_removes_this_nodes_containers_only(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, node_id: str, leftovers: Any
) -> None:
    leftovers(node_id, f"e-left-running-{node_id}")
    leftovers(node_id, f"e-left-created-{node_id}", running=False)
    other = leftovers(f"{node_id}-other", f"e-other-{node_id}")

    assert await docker_executor.remove_leftovers() == 2

    assert managed_containers(docker_engine, node_id=node_id) == []
    assert [c.id for c in managed_containers(docker_engine, node_id=f"{node_id}-other")] == [other.id]
    assert await docker_executor.remove_leftovers() == 0


async def test_a_leftover_with_the_same_execution_id_does_not_block_a_rerun(
    docker_executor: DockerExecutor, docker_tasks: DockerTasks, leftovers: Any
) -> None:
    request = docker_tasks.request("echo", "second attempt")
    leftovers(docker_tasks.node_id, request.execution_id)
    outcome = await docker_executor.run(request)
    assert outcome.exit_code == 0
    assert read(request.stdout_path) == "second attempt\n"


async def test_registry_removes_leftovers_but_the_kept_ones_and_wires_the_config(
    docker_engine: docker.DockerClient, tmp_path: Path, node_id: str, leftovers: Any
) -> None:
    leftovers(node_id, f"e-left-{node_id}")
    kept = leftovers(node_id, f"e-kept-{node_id}")
    config = BacalhauConfig.model_validate(
        {
            "DataDir": str(tmp_path / "data"),
            "Publishers": {"Types": {"Local": {"Address": "127.0.0.1", "Port": 0}}},
            "Engines": {"Types": {"Docker": {"AllowedImages": ["bacalhau-test/*"]}}},
            "JobAdmissionControl": {"AcceptNetworkedJobs": True},
        }
    )
    registry = build_registry(config=config, node_id=node_id)
    assert "docker" in registry.executor_names()
    executor = registry.executor("Docker")
    assert isinstance(executor, DockerExecutor)
    await registry.start()
    try:
        assert registry.reattachable("docker") is executor
        assert registry.reattachable("wasm") is None
        assert await registry.remove_leftovers(keep=[f"e-kept-{node_id}"]) == 1
        assert [c.id for c in managed_containers(docker_engine, node_id=node_id)] == [kept.id]
        kept.remove(force=True)
        assert_no_containers(docker_engine, node_id)
        executor.validate(engine(Image="bacalhau-test/busybox"), network=NetworkConfig(type="Full"))
        with pytest.raises(ValidationFailed, match="not allowed on this node"):
            executor.validate(engine(Image="busybox"))
    finally:
        await registry.stop()


def test_config_defaults_lock_docker_down() -> None:
    config = BacalhauConfig()
    assert config.job_admission_control.accept_networked_jobs is False
    assert config.job_admission_control.locality == "anywhere"
    assert config.engines.types.docker.allowed_images == []
    assert config.engines.types.docker.pids_limit == 1024
    wire = config.to_wire()
    admission = wire["JobAdmissionControl"]
    assert (admission["Locality"], admission["AcceptNetworkedJobs"]) == ("anywhere", False)
    assert wire["Engines"]["Types"]["Docker"] == {"AllowedImages": [], "AllowedRegistries": [], "PidsLimit": 1024}


async def test_a_container_of_another_node_with_the_same_name_is_left_alone(
    docker_engine: docker.DockerClient, docker_executor: DockerExecutor, docker_tasks: DockerTasks, leftovers: Any
) -> None:
    request = docker_tasks.request("echo", "never")
    theirs = leftovers(f"{docker_tasks.node_id}-other", request.execution_id)
    with pytest.raises(ExecutionError) as caught:
        await docker_executor.run(request)
    assert "could not be created" in caught.value.message
    assert docker_engine.containers.get(theirs.id).status == "running"


async def test_start_without_an_engine_does_not_fail_the_node(free_port: Callable[[], int]) -> None:
    executor = DockerExecutor(node_id="n-1", client_factory=no_engine(free_port()))
    await executor.start()
    await executor.stop()
