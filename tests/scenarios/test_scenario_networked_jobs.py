"""Networked docker jobs through the real CLI on a real node: `--network http --domain D` reaches D and
nothing else, and no networked job reaches the node's own API, even when the API listens on 0.0.0.0.

One hybrid node per module with JobAdmissionControl.AcceptNetworkedJobs=true and its API on 0.0.0.0
(what an operator who shares the node does). The web server jobs fetch from runs in a network namespace
(tests/egress_env.py). Needs root and a Docker engine: failed under CI=true without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from scenario_jobs import JobWatch, one_job_id

from docker_env import wait_containers_gone
from egress_env import UPSTREAM_TEXT, Upstream, host_addresses
from serve_node import BacalhauNode, NodePool

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A web server in a network namespace of its own."""
    server = Upstream(tmp_path_factory.mktemp("upstream"), index=1).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def node(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> Iterator[BacalhauNode]:
    """A hybrid node that takes networked jobs and serves its API beyond loopback."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool(
            extra_config=[
                "API.Host=0.0.0.0",
                "JobAdmissionControl.AcceptNetworkedJobs=true",
                "Engines.Types.Docker.AllowedImages=bacalhau-test/*",
            ]
        )
    finally:
        pool.close()


def run_job(node: BacalhauNode, engine: docker.DockerClient, *args: str) -> tuple[str, str]:
    """`bacalhau docker run ARGS` (waits for the job); return (job ID, its stdout as the CLI printed it)."""
    result = node.ok("docker", "run", *args, timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    wait_containers_gone(engine, job_id=job_id)
    return job_id, result.stdout


def test_http_job_fetches_from_its_domain(
    node: BacalhauNode, docker_engine: docker.DockerClient, busybox_image: str, upstream: Upstream
) -> None:
    _, out = run_job(
        node, docker_engine, "--network", "http", "--domain", upstream.address, busybox_image,
        "--", "wget", "-O-", upstream.url,
    )
    assert UPSTREAM_TEXT in out, out


def test_http_job_is_told_why_another_host_is_refused(
    node: BacalhauNode, docker_engine: docker.DockerClient, busybox_image: str, upstream: Upstream
) -> None:
    job_id, _ = run_job(
        node, docker_engine, "--network", "http", "--domain", "data.example.org", busybox_image, "--",
        "sh", "-c", f"printf 'GET {upstream.url} HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${{http_proxy#http://}}",
    )
    stdout = JobWatch(node.url, node.log_excerpt).executions(job_id)[0]["RunOutput"]["Stdout"]
    assert "403 Forbidden" in stdout, stdout
    assert f"{upstream.address} is not in the job's Network.Domains (data.example.org)" in stdout, stdout
    assert UPSTREAM_TEXT not in stdout


@pytest.mark.parametrize("network", [("--network", "http", "--domain", "example.com"), ("--network", "bridge")],
                         ids=["http", "bridge"])
def test_a_networked_job_cannot_reach_its_nodes_api(
    node: BacalhauNode, docker_engine: docker.DockerClient, busybox_image: str, network: tuple[str, ...]
) -> None:
    addresses = host_addresses()
    for address in addresses:  # the API does answer there: a refusal below is the guard's, not an absence
        assert httpx.get(f"http://{address}:{node.api_port}/api/v1/agent/alive", timeout=10).status_code == 200
    probes = "; ".join(
        f"if printf 'GET /api/v1/agent/alive HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} {node.api_port} "
        f"| grep -q 200; then echo {address}=reached; else echo {address}=refused; fi"
        for address in addresses
    )
    job_id, _ = run_job(node, docker_engine, *network, busybox_image, "--", "sh", "-c", probes)
    stdout = JobWatch(node.url, node.log_excerpt).executions(job_id)[0]["RunOutput"]["Stdout"]
    assert "=reached" not in stdout and stdout.count("=refused") == len(addresses), stdout
