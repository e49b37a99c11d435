"""`bacalhau docker run` end to end on a real Docker engine: output, env, working dir, entrypoint, exit
codes, read-only inputs, published outputs, and the locked-down defaults (no capabilities, no network).

Every job runs `bacalhau-test/busybox:latest` (imported from Debian's busybox-static, see docker_env.py)
on one hybrid node per module; after each job, no container of it is left on the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from scenario_jobs import EXEC_COMPLETED, JobWatch, one_job_id

from docker_env import describe_containers, managed_containers, wait_containers_gone
from serve_node import BacalhauNode, NodePool

if TYPE_CHECKING:
    import subprocess

    import docker

pytestmark = pytest.mark.scenario


@dataclass(frozen=True)
class DockerNode:
    node: BacalhauNode
    watch: JobWatch
    engine: docker.DockerClient
    image: str
    allowed: Path  # allow-listed for local inputs

    def run(self, *args: str, ok: bool = True, timeout: float = 90.0) -> tuple[str, subprocess.CompletedProcess[str]]:
        """`bacalhau docker run ARGS`; return (job ID, result), asserting the exit code and that the job's
        containers are gone afterwards."""
        result = self.node.ok("docker", "run", *args, timeout=timeout) if ok else self.node.fails(
            "docker", "run", *args, timeout=timeout
        )
        job_id = one_job_id(result.stdout + result.stderr)
        self.watch.wait_for(
            f"job {job_id} to end", lambda: self.watch.state(job_id) in ("Completed", "Failed", "Stopped"), 60
        )
        wait_containers_gone(self.engine, job_id=job_id)
        return job_id, result

    def lines(self, result: subprocess.CompletedProcess[str]) -> list[str]:
        """The CLI's stdout, one stripped line each."""
        return [line.strip() for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def docker_node(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> Iterator[DockerNode]:
    """A hybrid node that runs docker jobs of bacalhau-test/* images and allows one host folder as input."""
    allowed = tmp_path_factory.mktemp("docker-inputs")
    (allowed / "in.txt").write_text("bom dia from the host\n")
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        # The allow-list also keeps the engine from ever reaching for Docker Hub from this module.
        node = pool(
            extra_config=[
                f"Compute.AllowListedLocalPaths={allowed}",
                "Engines.Types.Docker.AllowedImages=bacalhau-test/*",
            ]
        )
        yield DockerNode(node, JobWatch(node.url, node.log_excerpt), docker_engine, busybox_image, allowed)
    finally:
        pool.close()


def test_hello_world_prints_the_containers_output(docker_node: DockerNode) -> None:
    job_id, result = docker_node.run(docker_node.image, "--", "echo", "hi")
    assert "hi" in docker_node.lines(result), docker_node.node.describe_result(result)
    job = docker_node.watch.wait_state(job_id, "Completed")
    assert job["Tasks"][0]["Engine"]["Type"] == "docker", job["Tasks"][0]
    execution = docker_node.watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] == 0, execution
    assert execution["RunOutput"]["Stdout"] == "hi\n", execution["RunOutput"]


def test_env_vars_reach_the_container(docker_node: DockerNode) -> None:
    _, result = docker_node.run(
        "-e", "GREETING=ola", "-e", "PLACE=Porto", docker_node.image, "--", "sh", "-c", 'echo "$GREETING from $PLACE"'
    )
    assert "ola from Porto" in docker_node.lines(result), docker_node.node.describe_result(result)


def test_working_directory_is_set(docker_node: DockerNode) -> None:
    _, result = docker_node.run("-w", "/tmp", docker_node.image, "--", "pwd")
    assert "/tmp" in docker_node.lines(result), docker_node.node.describe_result(result)


def test_entrypoint_is_overridden(docker_node: DockerNode) -> None:
    # The image's CMD is /bin/sh; the entrypoint words come first, the parameters after them.
    _, result = docker_node.run(
        "--entrypoint", "/bin/echo", "--entrypoint", "from-entrypoint", docker_node.image, "--", "and-params"
    )
    assert "from-entrypoint and-params" in docker_node.lines(result), docker_node.node.describe_result(result)


def test_a_non_zero_exit_completes_the_job_with_the_exit_code_recorded(docker_node: DockerNode) -> None:
    # Bacalhau semantics: only executor errors fail an execution; an exit code is a result.
    job_id, result = docker_node.run(docker_node.image, "--", "sh", "-c", "echo bye; echo oops >&2; exit 3")
    assert "bye" in docker_node.lines(result), docker_node.node.describe_result(result)
    docker_node.watch.wait_state(job_id, "Completed")
    execution = docker_node.watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] == 3, execution
    assert "oops" in execution["RunOutput"]["stderr"], execution["RunOutput"]


def test_inputs_are_mounted_read_only(docker_node: DockerNode) -> None:
    source = f"src=file://{docker_node.allowed},dst=/inputs"
    job_id, result = docker_node.run(
        "-i", source, docker_node.image, "--", "sh", "-c", "cat /inputs/in.txt && touch /inputs/new.txt"
    )
    assert "bom dia from the host" in result.stdout, docker_node.node.describe_result(result)
    execution = docker_node.watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] != 0, execution["RunOutput"]
    assert "Read-only file system" in execution["RunOutput"]["stderr"], execution["RunOutput"]
    assert not (docker_node.allowed / "new.txt").exists(), "the container wrote into a read-only input"


def test_outputs_are_published_and_downloaded_by_job_get(docker_node: DockerNode, tmp_path: Path) -> None:
    job_id, _ = docker_node.run(
        "-o", "outputs:/outputs", "-p", "local", docker_node.image, "--",
        "sh", "-c", "echo result-of-the-job > /outputs/result.txt; mkdir /outputs/sub; echo nested > /outputs/sub/n.txt",
    )
    docker_node.watch.wait_state(job_id, "Completed")
    out_dir = tmp_path / "results"
    got = docker_node.node.ok("job", "get", job_id, "--output-dir", str(out_dir))
    result_file = out_dir / "outputs" / "result.txt"
    assert result_file.is_file(), docker_node.node.describe_result(got) + f"\nfiles: {sorted(out_dir.rglob('*'))}"
    assert result_file.read_text() == "result-of-the-job\n"
    assert (out_dir / "outputs" / "sub" / "n.txt").read_text() == "nested\n"
    assert (out_dir / "exitCode").read_text().strip() == "0"


def test_every_capability_is_dropped(docker_node: DockerNode) -> None:
    _, result = docker_node.run(docker_node.image, "--", "grep", "Cap", "/proc/self/status")
    caps = dict(line.split(":", 1) for line in docker_node.lines(result) if line.startswith("Cap"))
    assert caps.get("CapEff", "").strip() == "0000000000000000", docker_node.node.describe_result(result)
    assert caps.get("CapPrm", "").strip() == "0000000000000000", caps
    assert caps.get("CapBnd", "").strip() == "0000000000000000", caps


def test_no_new_privileges_is_set(docker_node: DockerNode) -> None:
    _, result = docker_node.run(docker_node.image, "--", "grep", "NoNewPrivs", "/proc/self/status")
    assert any(line.replace("\t", " ").split() == ["NoNewPrivs:", "1"] for line in docker_node.lines(result)), (
        docker_node.node.describe_result(result)
    )


@pytest.mark.parametrize("network_flags", [(), ("--network", "none")], ids=["default", "none"])
def test_network_none_has_no_interface_but_loopback_and_no_route(
    docker_node: DockerNode, network_flags: tuple[str, ...]
) -> None:
    # Reads the container's own network namespace; nothing is sent anywhere.
    job_id, result = docker_node.run(
        *network_flags, docker_node.image, "--", "sh", "-c",
        "echo ==DEV==; cat /proc/net/dev; echo ==ROUTE==; cat /proc/net/route",
    )
    text = docker_node.watch.wait_execution(job_id, EXEC_COMPLETED)["RunOutput"]["Stdout"]
    assert "==DEV==" in text and "==ROUTE==" in text, docker_node.node.describe_result(result)
    dev_part, route_part = text.split("==DEV==", 1)[1].split("==ROUTE==", 1)
    interfaces = {line.split(":", 1)[0].strip() for line in dev_part.splitlines() if ":" in line}
    assert interfaces == {"lo"}, f"interfaces in the container: {interfaces}\n{text}"
    routes = [line for line in route_part.splitlines() if line.strip() and not line.startswith("Iface")]
    assert routes == [], f"routes in the container: {routes}\n{text}"


def test_the_container_cannot_see_the_docker_socket_or_host_paths(docker_node: DockerNode) -> None:
    _, result = docker_node.run(
        docker_node.image, "--", "sh", "-c",
        f"ls /var/run/docker.sock; ls {docker_node.allowed}; ls {docker_node.node.data_dir}; echo done",
    )
    assert "done" in docker_node.lines(result), docker_node.node.describe_result(result)
    assert "in.txt" not in result.stdout, "a host folder that was not declared is visible in the container"
    execution = docker_node.watch.executions(one_job_id(result.stdout + result.stderr))[0]
    assert execution["RunOutput"]["stderr"].count("No such file or directory") == 3, execution["RunOutput"]


def test_no_container_of_this_node_remains_after_its_jobs(docker_node: DockerNode) -> None:
    docker_node.run(docker_node.image, "--", "true")
    executions = [e for job in docker_node.watch.jobs() for e in docker_node.watch.executions(job["ID"])]
    node_ids = {e["NodeID"] for e in executions if e.get("NodeID")}
    assert node_ids, "no execution recorded a node ID"
    for node_id in node_ids:
        left = managed_containers(docker_node.engine, node_id=node_id)
        assert not left, f"containers of node {node_id} left after every job ended:\n{describe_containers(left)}"
