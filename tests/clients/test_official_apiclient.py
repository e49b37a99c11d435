"""The official `bacalhau-apiclient` (1.4.1), unchanged: its generated Api classes (OpsApi,
OrchestratorApi) against a real `bacalhau serve`: agent alive/version/node, nodes list/get, logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from official_clients import ClientRunner
from scenario_jobs import JobWatch, wasm_job

pytestmark = pytest.mark.scenario


def test_apiclient_agent_and_nodes(run_client: ClientRunner) -> None:
    run = run_client("apiclient_agent_nodes.py")
    facts = run.facts
    # OpsApi.agentalive is typed `str`: the client hands back our JSON body turned into a str
    assert "OK" in facts["alive"], run.describe()
    assert facts["version_type"] == "ApiGetVersionResponse" and facts["version_git_version"].startswith("v"), run.describe()
    assert facts["version_goos"], run.describe()
    assert facts["node_type_name"] == "NodeInfo" and facts["node_id"].startswith("n-"), run.describe()
    assert facts["node_labels_is_dict"] == "true", run.describe()
    assert "wasm" in json.loads(facts["node_engines"]), run.describe()  # docker: only with an engine
    assert "local" in json.loads(facts["node_publishers"]), run.describe()
    assert float(facts["node_max_cpu"]) > 0 and facts["node_max_memory_is_int"] == "true", run.describe()
    assert facts["nodes_type"] == "ApiListNodesResponse" and facts["nodes"] == "1", run.describe()
    assert json.loads(facts["nodes_ids"]) == [facts["node_id"]], run.describe()
    assert facts["get_node_type"] == "ApiGetNodeResponse" and facts["get_node_id"] == facts["node_id"], run.describe()
    assert json.loads(facts["get_node_engines"]) == json.loads(facts["node_engines"]), run.describe()
    # Bacalhau sends Membership/Connection as strings ("APPROVED", "CONNECTED"), and so do we; the client's
    # NodeMembershipState/NodeConnectionState models expect an object {membership: int}/{connection: int}, so
    # it deserialises them (without error) into empty models: the values cannot be read through this client.
    assert facts["nodes_membership"] == json.dumps("{'membership': None}"), run.describe()
    assert facts["nodes_connection"] == json.dumps("{'connection': None}"), run.describe()


def test_apiclient_logs_is_a_websocket_route_the_generated_client_cannot_read(
    run_client: ClientRunner, watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    """`OrchestratorApi.orchestratorlogs` issues a plain HTTP GET (response_type `str`), but the logs route is
    a websocket in Bacalhau and here. Bacalhau's Go server answers such a GET 400 (the websocket upgrader
    refuses it); so do we, with a message saying why. The honest outcome: an ApiException 400, no logs."""
    job_id = watch.submit(wasm_job(wasm_modules["hello"], args=["logs"]))
    watch.wait_state(job_id, "Completed")
    run = run_client("apiclient_agent_nodes.py", job_id)
    facts = run.facts
    assert facts["logs_outcome"] == "ApiException", run.describe()
    assert facts["logs_status"] == "400", run.describe()
    body = json.loads(facts["logs_error_body"])
    assert body["Status"] == 400 and "websocket" in body["Message"], run.describe()
