"""`bacalhau node list/describe`, `agent alive/version/node/config` and `version` against a hybrid node."""

from __future__ import annotations

import pytest
from scenario_jobs import items_of, parse_output

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def test_node_list_shows_the_hybrid_node_approved_and_connected(shared_node: BacalhauNode) -> None:
    nodes = items_of(parse_output(shared_node.ok("node", "list", "--output", "json").stdout))
    assert len(nodes) == 1, nodes
    state = nodes[0]
    assert state["Info"]["NodeID"], state
    assert state["Membership"] == "APPROVED", state
    assert state["ConnectionState"]["Status"] == "CONNECTED", state
    engines = state["Info"]["ComputeNodeInfo"]["ExecutionEngines"]
    assert "wasm" in engines, state
    table = shared_node.ok("node", "list").stdout
    for column in ("ID", "TYPE", "APPROVAL", "STATUS"):
        assert column in table.upper(), table
    assert "APPROVED" in table and "CONNECTED" in table, table
    as_yaml = items_of(parse_output(shared_node.ok("node", "list", "--output", "yaml").stdout))
    assert as_yaml[0]["Info"]["NodeID"] == state["Info"]["NodeID"]


def test_node_describe_prints_the_node_state(shared_node: BacalhauNode) -> None:
    node_id = items_of(parse_output(shared_node.ok("node", "list", "--output", "json").stdout))[0]["Info"]["NodeID"]
    default = parse_output(shared_node.ok("node", "describe", node_id).stdout)
    assert default["Info"]["NodeID"] == node_id, default
    as_json = parse_output(shared_node.ok("node", "describe", node_id, "--output", "json").stdout)
    assert as_json["Info"]["NodeID"] == node_id
    assert as_json["Membership"] == "APPROVED"


def test_node_describe_of_an_unknown_node_fails(shared_node: BacalhauNode) -> None:
    result = shared_node.fails("node", "describe", "n-does-not-exist")
    assert "not found" in (result.stdout + result.stderr).lower(), shared_node.describe_result(result)


def test_agent_alive(shared_node: BacalhauNode) -> None:
    assert "OK" in shared_node.ok("agent", "alive").stdout
    assert parse_output(shared_node.ok("agent", "alive", "--output", "json").stdout) == {"Status": "OK"}


def test_agent_version_node_and_config(shared_node: BacalhauNode) -> None:
    version = parse_output(shared_node.ok("agent", "version", "--output", "json").stdout)
    assert version.get("GitVersion"), version
    info = parse_output(shared_node.ok("agent", "node", "--output", "json").stdout)
    assert info["NodeID"] and info["NodeType"] in ("Requester", "Compute"), info
    config = parse_output(shared_node.ok("agent", "config", "--output", "json").stdout)
    config = config.get("config", config)
    assert config["API"]["Port"] == shared_node.api_port, config
    assert config["Orchestrator"]["Enabled"] is True and config["Compute"]["Enabled"] is True, config
    as_yaml = parse_output(shared_node.ok("agent", "config", "--output", "yaml").stdout)
    assert as_yaml.get("config", as_yaml)["API"]["Port"] == shared_node.api_port


def test_version_shows_client_and_server(shared_node: BacalhauNode) -> None:
    table = shared_node.ok("version").stdout
    assert "CLIENT" in table.upper() and "SERVER" in table.upper(), table
    client_only = shared_node.ok("version", "--client", "--output", "json").stdout
    assert parse_output(client_only), client_only


def test_version_client_only_needs_no_server(shared_node: BacalhauNode) -> None:
    result = shared_node.ok("version", "--client", env={"BACALHAU_API_PORT": "1"})
    assert result.stdout.strip(), shared_node.describe_result(result)


def test_an_unreachable_server_gives_a_clear_error(shared_node: BacalhauNode) -> None:
    result = shared_node.fails("job", "list", env={"BACALHAU_API_PORT": "1"}, timeout=60)
    assert "Error" in result.stderr, shared_node.describe_result(result)
    assert "Traceback" not in result.stderr, shared_node.describe_result(result)
