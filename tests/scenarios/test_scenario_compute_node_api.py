"""A compute-only node's own API, as in Bacalhau v1.9: the agent endpoints answer for that node, the
orchestrator's endpoints are not there.

Real processes: an orchestrator-only `bacalhau serve` and two compute-only ones on one machine, each
serving its API on a free port of its own (cluster_env.py); the real CLI talks to a compute node with
`--api-port`, its environment still aimed at the orchestrator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scenario_jobs import JobWatch, one_job_id, parse_output, wasm_job, write_job_file

from cluster_env import Cluster, ClusterNode

pytestmark = pytest.mark.scenario

LABELS = {"edge-1": "north", "edge-2": "south"}


@pytest.fixture(scope="module")
def cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Orchestrator + compute-only edge-1 (zone=north) and edge-2 (zone=south), both CONNECTED."""
    made = Cluster(bacalhau_bin, tmp_path_factory.mktemp("compute-api"))
    try:
        made.start()
        for name, zone in LABELS.items():
            made.add_compute(name, labels={"zone": zone})
        yield made
    finally:
        made.close()


def agent(cluster: Cluster, node: ClusterNode, *args: str) -> Any:
    """`bacalhau agent ARGS --output json --api-port <node's port>` (env aimed at the orchestrator), parsed."""
    return parse_output(cluster.ok("agent", *args, "--output", "json", "--api-port", str(node.api_port)).stdout)


def test_agent_alive_and_version_answer_on_a_compute_only_nodes_port(cluster: Cluster) -> None:
    edge = cluster.computes["edge-1"]
    assert edge.api_port != cluster.orchestrator.api_port
    assert "OK" in cluster.ok("agent", "alive", "--api-port", str(edge.api_port)).stdout
    assert agent(cluster, edge, "alive") == {"Status": "OK"}
    version = agent(cluster, edge, "version")
    assert version["GitVersion"] and version == agent(cluster, cluster.orchestrator, "version"), version
    assert f"started: API on http://127.0.0.1:{edge.api_port}; joining " in edge.log_text(), edge.log_excerpt()


def test_agent_node_is_the_compute_nodes_own_node_info(cluster: Cluster) -> None:
    for name, zone in LABELS.items():
        node = cluster.computes[name]
        info = agent(cluster, node, "node")
        assert info["NodeID"] == name and info["NodeType"] == "Compute", info
        assert info["Labels"]["zone"] == zone, info
        compute_info = info["ComputeNodeInfo"]
        assert "wasm" in compute_info["ExecutionEngines"], info
        assert compute_info["MaxCapacity"]["CPU"] > 0 and compute_info["MaxCapacity"]["Memory"] > 0, info
        assert "ncl/v1" in info["SupportedProtocols"], info
        # The orchestrator lists the same node with the same labels.
        listed = cluster.nodes()[name]["Info"]
        assert (listed["NodeType"], listed["Labels"]) == (info["NodeType"], info["Labels"]), listed
    orchestrator = agent(cluster, cluster.orchestrator, "node")
    assert (orchestrator["NodeID"], orchestrator["NodeType"]) == ("orchestrator", "Requester"), orchestrator


def test_agent_config_is_the_compute_nodes_config(cluster: Cluster) -> None:
    edge = cluster.computes["edge-2"]
    config = agent(cluster, edge, "config")
    config = config.get("config", config)
    assert config["API"]["Port"] == edge.api_port, config
    assert config["Compute"]["Enabled"] is True and config["Orchestrator"]["Enabled"] is False, config
    assert config["Compute"]["Orchestrators"] == [cluster.orchestrator.nats_url], config
    assert config["Labels"] == {"zone": "south"}, config


def debug_of(node: ClusterNode) -> dict[str, Any]:
    """GET /api/v1/agent/debug on the node's own API."""
    with node.http() as http:
        resp = http.get("/api/v1/agent/debug")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_agent_debug_on_a_compute_only_node_counts_the_executions_it_completed(
    cluster: Cluster, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    north, south = cluster.computes["edge-1"], cluster.computes["edge-2"]
    before = {node.name: debug_of(node) for node in (north, south)}
    assert all(set(d) == {"ActiveJobs", "jobsCompleted", "Results", "InputCache"} for d in before.values()), before
    # What Compute.Results.Retention keeps on disk (ours).
    assert all(set(d["Results"]) >= {"ResultsCount", "ResultsBytes"} for d in before.values()), before

    job = wasm_job(wasm_modules["hello"], name="debug-counted")
    job["Constraints"] = [{"Key": "zone", "Operator": "=", "Values": ["north"]}]
    job_id = one_job_id(cluster.ok("job", "run", str(write_job_file(tmp_path, job)), "--wait=false", "--id-only").stdout)
    JobWatch(cluster.orchestrator.url, cluster.describe).wait_state(job_id, "Completed", timeout_s=60)

    after = {node.name: debug_of(node) for node in (north, south)}
    assert after["edge-1"]["jobsCompleted"] == before["edge-1"]["jobsCompleted"] + 1, (before, after)
    assert after["edge-2"]["jobsCompleted"] == before["edge-2"]["jobsCompleted"], (before, after)
    assert after["edge-1"]["ActiveJobs"] == [], after


def test_orchestrator_routes_on_a_compute_only_node_are_bacalhaus_404(cluster: Cluster) -> None:
    edge = cluster.computes["edge-1"]
    for path in ("/api/v1/orchestrator/jobs", "/api/v1/orchestrator/nodes"):
        resp = httpx.get(f"{edge.url}{path}", timeout=10.0)
        assert resp.status_code == 404, (path, resp.text)
        body = resp.json()
        assert body["Status"] == 404 and body["Code"] == "NotFound" and body["Component"] == "APIServer", body
        assert body["Message"] == "The requested resource/URL was not found." and body["RequestID"], body
    # The CLI aimed at it fails cleanly; the same command against the orchestrator works.
    result = cluster.cli("job", "list", "--api-port", str(edge.api_port))
    assert result.returncode != 0, cluster.orchestrator.describe_result(result)
    assert "Error: The requested resource/URL was not found." in result.stderr, cluster.orchestrator.describe_result(result)
    assert "Traceback" not in result.stderr, cluster.orchestrator.describe_result(result)
    assert edge.running, edge.log_excerpt()
    cluster.ok("job", "list")
