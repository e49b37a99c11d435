"""Networked docker jobs on a real engine, with the real host firewall and egress proxy.

An HTTP job reaches its Network.Domains through the node's egress proxy and nothing else: not other
hosts, not the upstream directly, not the host's loopback (even through a domain that resolves to it),
not the node's own services. A Bridge/Full job reaches the network but not the host it runs on. The
upstream web server lives in a network namespace of its own (tests/egress_env.py), so it is a real
remote address for the proxy. Needs root (iptables, ip netns): failed under CI=true without it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from tests.compute.executors.docker_fixtures import (
    DockerTasks,
    assert_no_containers,
    docker_tasks,
    make_executor,
    node_id,
)

from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.docker_container import Limits, container_spec
from bacalhau.compute.executors.docker_params import DockerParams
from bacalhau.egress.domains import MISSING_DOMAINS
from bacalhau.egress.firewall import HostFirewall
from bacalhau.egress.networking import JobNetworking
from bacalhau.egress.networks import network_name
from bacalhau.models.errors import ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig
from egress_env import UPSTREAM_PORT, UPSTREAM_TEXT, HostListener, Upstream, host_addresses

if TYPE_CHECKING:
    import docker

__all__ = ["docker_tasks", "node_id"]  # fixtures, imported to be found by pytest


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """A web server in a network namespace, reachable from the host at a non-local address."""
    server = Upstream(tmp_path_factory.mktemp("upstream")).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def networked(docker_engine: docker.DockerClient, node_id: str) -> AsyncIterator[DockerExecutor]:
    """An executor that accepts networked jobs; at teardown no container, network or chain of it remains."""
    executor = make_executor(node_id, accept_networked_jobs=True)
    await executor.start()
    try:
        yield executor
    finally:
        await executor.stop()
        assert_no_containers(docker_engine, node_id)
        for kind in ("bridge", "http"):
            assert not docker_engine.networks.list(names=[network_name(node_id, kind)]), f"{kind} network left"
        rules = iptables_rules()
        assert network_name(node_id, "http")[-10:] not in rules, f"firewall rules of {node_id} left:\n{rules}"


def iptables_rules(*chain: str) -> str:
    """`iptables -S [chain]` (a quick local command, fine to block on in a test)."""
    return subprocess.run(["iptables", "-S", *chain], capture_output=True, text=True, timeout=30, check=True).stdout


async def run(executor: DockerExecutor, request: RunRequest) -> tuple[RunOutcome, str, str]:
    """Run the request; return its outcome, stdout and stderr."""
    outcome = await asyncio.wait_for(executor.run(request), 120)
    return outcome, request.stdout_path.read_text(), request.stderr_path.read_text()


def tcp_probe(address: str, port: int | str, label: str) -> str:
    """A shell line printing `<label>=open` when a TCP connection to address:port succeeds, else `<label>=shut`."""
    return f"if nc -w 3 {address} {port} </dev/null >/dev/null 2>&1; then echo {label}=open; else echo {label}=shut; fi"


async def test_http_job_fetches_from_its_domain_through_the_proxy(
    networked: DockerExecutor, docker_tasks: DockerTasks, upstream: Upstream
) -> None:
    request = docker_tasks.request(
        "sh", "-c", f'echo "proxy=$http_proxy"; wget -O- {upstream.url}',
        network="HTTP", domains=[upstream.address], timeout_s=60,
    )
    outcome, out, err = await run(networked, request)
    assert outcome.exit_code == 0, (out, err)
    assert UPSTREAM_TEXT in out
    assert out.startswith("proxy=http://") and out.split("\n")[0].endswith(":3128"), out


async def test_http_job_is_refused_hosts_outside_its_domains_and_cannot_go_around_the_proxy(
    networked: DockerExecutor, docker_tasks: DockerTasks, upstream: Upstream
) -> None:
    request = docker_tasks.request(
        "sh", "-c",
        f"wget -O- {upstream.url}; echo wget=$?; "  # through the proxy: not in Domains
        + tcp_probe(upstream.address, UPSTREAM_PORT, "direct")  # around it: no route
        + "; printf 'GET http://10.1.2.3/ HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${http_proxy#http://} ",
        network="HTTP", domains=["example.com"], timeout_s=60,
    )
    outcome, out, err = await run(networked, request)
    assert outcome.exit_code == 0, (out, err)
    assert "wget=1" in out and "403 Forbidden" in err, (out, err)
    assert "direct=shut" in out, out
    # The proxy's answer names the refused host and the job's Domains.
    assert "10.1.2.3 is not in the job's Network.Domains (example.com)" in out, out


async def test_a_domain_that_resolves_to_loopback_is_refused(
    networked: DockerExecutor, docker_tasks: DockerTasks
) -> None:
    host_service = HostListener()
    try:
        request = docker_tasks.request(
            "sh", "-c",
            f"printf 'GET http://localhost:{host_service.port}/ HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${{http_proxy#http://}}",
            network="HTTP", domains=["localhost"], timeout_s=60,
        )
        outcome, out, err = await run(networked, request)
    finally:
        host_service.close()
    assert outcome.exit_code == 0, (out, err)
    assert "403 Forbidden" in out and "localhost resolves to 127.0.0.1 (loopback)" in out, out
    assert "host service" not in out and host_service.accepted == 0


@pytest.mark.parametrize("network", ["HTTP", "Bridge", "Full"])
async def test_networked_jobs_cannot_reach_the_hosts_own_services(
    networked: DockerExecutor, docker_tasks: DockerTasks, network: str
) -> None:
    host_service = HostListener()  # like the node's API when it listens beyond loopback
    try:
        # Docker's gateway is the subnet's first address (an internal network has no default route).
        gateway = "$(ip route | awk '/src/ {split($1,a,\"/\"); split(a[1],o,\".\"); print o[1]\".\"o[2]\".\"o[3]\".\"o[4]+1; exit}')"
        probes = [tcp_probe(gateway, host_service.port, "gateway")]
        addresses = host_addresses()
        probes += [tcp_probe(address, host_service.port, f"host{i}") for i, address in enumerate(addresses)]
        request = docker_tasks.request(
            "sh", "-c", "; ".join(probes),
            network=network, domains=["example.com"] if network == "HTTP" else None, timeout_s=90,
        )
        outcome, out, err = await run(networked, request)
    finally:
        host_service.close()
    assert outcome.exit_code == 0, (out, err)
    assert "=open" not in out and out.count("=shut") == 1 + len(addresses), out
    assert host_service.accepted == 0


@pytest.mark.parametrize("network", ["Bridge", "Full"])
async def test_bridge_jobs_reach_the_network(
    networked: DockerExecutor, docker_tasks: DockerTasks, upstream: Upstream, network: str
) -> None:
    request = docker_tasks.request(
        "sh", "-c", f"printf 'GET /file.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {upstream.address} {UPSTREAM_PORT}",
        network=network, timeout_s=60,
    )
    outcome, out, err = await run(networked, request)
    assert outcome.exit_code == 0 and UPSTREAM_TEXT in out, (out, err)


async def test_https_style_tunnel_through_connect(
    networked: DockerExecutor, docker_tasks: DockerTasks, upstream: Upstream
) -> None:
    # CONNECT, then a request inside the tunnel: what an https client does (TLS would ride the same bytes).
    script = (
        f"(printf 'CONNECT {upstream.address}:{UPSTREAM_PORT} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; sleep 1; "
        "printf 'GET /file.txt HTTP/1.0\\r\\n\\r\\n'; sleep 2) | nc -w 5 ${http_proxy#http://}"
    )
    request = docker_tasks.request("sh", "-c", script, network="HTTP", domains=[upstream.address], timeout_s=60)
    outcome, out, err = await run(networked, request)
    assert outcome.exit_code == 0, (out, err)
    assert "200 Connection established" in out and UPSTREAM_TEXT in out, out


async def test_each_job_gets_its_own_domains_at_the_same_time(
    networked: DockerExecutor, docker_tasks: DockerTasks, upstream: Upstream
) -> None:
    fetch = f"sleep 1; wget -O- {upstream.url}; echo wget=$?"
    allowed = docker_tasks.request("sh", "-c", fetch, network="HTTP", domains=[upstream.address], timeout_s=60)
    other = docker_tasks.request("sh", "-c", fetch, network="HTTP", domains=["example.org"], timeout_s=60)
    (_, out_a, _), (_, out_b, err_b) = await asyncio.gather(run(networked, allowed), run(networked, other))
    assert UPSTREAM_TEXT in out_a and "wget=0" in out_a, out_a
    assert UPSTREAM_TEXT not in out_b and "wget=1" in out_b and "403" in err_b, (out_b, err_b)


async def test_http_without_domains_is_refused_at_admission(networked: DockerExecutor, busybox_image: str) -> None:
    engine = SpecConfig(type="docker", params={"Image": busybox_image})
    with pytest.raises(ValidationFailed) as refused:
        networked.validate(engine, network=NetworkConfig(type="HTTP"))
    assert MISSING_DOMAINS in str(refused.value.errors), refused.value.errors


async def test_a_node_that_cannot_guard_the_host_declines_networked_jobs(node_id: str, busybox_image: str) -> None:
    networking = JobNetworking(node_id=node_id, firewall=HostFirewall(iptables="no-such-iptables", ip6tables=None))
    executor = DockerExecutor(node_id=node_id, accept_networked_jobs=True, networking=networking)
    engine = SpecConfig(type="docker", params={"Image": busybox_image})
    for kind, domains in (("Bridge", []), ("Full", []), ("HTTP", ["example.com"])):
        with pytest.raises(ValidationFailed) as refused:
            executor.validate(engine, network=NetworkConfig(type=kind, domains=domains))
        text = str(refused.value.errors)
        assert f"cannot keep {kind} jobs off its own services" in text and "no-such-iptables" in text, text
    executor.validate(engine, network=NetworkConfig(type="None"))  # the locked-down default still runs
    executor.validate(engine, network=NetworkConfig(type="Host"))  # the operator's explicit choice


async def test_networks_and_guards_are_made_once_and_shared(
    networked: DockerExecutor, docker_tasks: DockerTasks, docker_engine: docker.DockerClient, node_id: str
) -> None:
    for _ in range(2):
        outcome, out, err = await run(networked, docker_tasks.request("true", network="Bridge", timeout_s=60))
        assert outcome.exit_code == 0, (out, err)
    found = docker_engine.networks.list(names=[network_name(node_id, "bridge")])
    assert len(found) == 1, found
    rules = iptables_rules("INPUT")
    interface = found[0].attrs["Options"]["com.docker.network.bridge.name"]
    assert rules.count(f"-i {interface} ") == 1, rules


async def test_a_container_taken_back_after_a_restart_keeps_its_way_out(
    networked: DockerExecutor,
    docker_tasks: DockerTasks,
    docker_engine: docker.DockerClient,
    node_id: str,
    upstream: Upstream,
) -> None:
    request = docker_tasks.request(
        "sh", "-c", f"sleep 4; wget -O- {upstream.url}", network="HTTP", domains=[upstream.address], timeout_s=60
    )
    # The earlier process of the node: it set the network up and started the container, then died
    # (its proxy went with it; the network and the firewall guard stay, as after a kill -9).
    earlier = JobNetworking(node_id=node_id)
    attachment = await asyncio.to_thread(
        earlier.attach, docker_engine, network_type="HTTP", domains=[upstream.address],
        execution_id=request.execution_id, job_id=request.job_id, docker_mode="bridge",
    )
    spec = container_spec(
        request, DockerParams.parse(request.engine), image_id=str(docker_engine.images.get(docker_tasks.image).id),
        node_id=node_id, network_mode=attachment.network_mode, limits=Limits(), network_env=attachment.env,
    )
    await asyncio.to_thread(lambda: docker_engine.containers.create(**spec).start())
    await asyncio.to_thread(earlier.close, None)

    outcome = await asyncio.wait_for(networked.reattach(request), 60)
    assert outcome is not None and outcome.exit_code == 0, request.stderr_path.read_text()
    assert UPSTREAM_TEXT in request.stdout_path.read_text()
