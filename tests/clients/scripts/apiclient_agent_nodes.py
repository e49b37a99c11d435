"""bacalhau_apiclient: the generated Api classes against the node (agent, nodes, logs).

Usage: apiclient_agent_nodes.py [<job id whose logs to ask for>]

The client is configured the way bacalhau_sdk does it (bacalhau_sdk.config.init_config reads
BACALHAU_API_HOST / BACALHAU_API_PORT / BACALHAU_HTTPS).
"""

import sys

from bacalhau_apiclient.api.ops_api import OpsApi
from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
from bacalhau_apiclient.api_client import ApiClient
from bacalhau_apiclient.rest import ApiException
from bacalhau_sdk.config import init_config
from client_common import fact


def main():
    client = ApiClient(init_config())
    ops = OpsApi(client)
    orchestrator = OrchestratorApi(client)

    fact("alive", ops.agentalive())
    version = ops.agentversion()
    fact("version_type", type(version).__name__)
    fact("version_git_version", version.git_version)
    fact("version_major", version.major)
    fact("version_goos", version.goos)

    info = ops.agentnode()
    fact("node_type_name", type(info).__name__)
    fact("node_id", info.node_id)
    fact("node_type", info.node_type)
    fact("node_labels_is_dict", isinstance(info.labels, dict))
    fact("node_version", info.bacalhau_version.git_version if info.bacalhau_version else None)
    compute = info.compute_node_info
    fact("node_engines", sorted(compute.execution_engines or []) if compute else None)
    fact("node_publishers", sorted(compute.publishers or []) if compute else None)
    fact("node_max_cpu", compute.max_capacity.cpu if compute and compute.max_capacity else None)
    fact("node_max_memory_is_int", isinstance(compute.max_capacity.memory, int) if compute and compute.max_capacity else None)

    nodes = orchestrator.orchestratorlist_nodes()
    fact("nodes_type", type(nodes).__name__)
    fact("nodes", len(nodes.nodes or []))
    fact("nodes_ids", [n.info.node_id for n in nodes.nodes or []])
    first = (nodes.nodes or [None])[0]
    if first is not None:
        fact("nodes_membership", first.membership)
        fact("nodes_connection", first.connection)

    node = orchestrator.orchestratorget_node(info.node_id)
    fact("get_node_type", type(node).__name__)
    fact("get_node_id", node.node.info.node_id if node.node else None)
    fact("get_node_engines", sorted(node.node.info.compute_node_info.execution_engines) if node.node else None)

    if len(sys.argv) > 1:
        job_id = sys.argv[1]
        # The generated client calls the websocket route as a plain HTTP GET (response_type 'str').
        fact("logs_call", f"OrchestratorApi.orchestratorlogs({job_id!r}, tail=True, follow=False)")
        try:
            body = orchestrator.orchestratorlogs(job_id, tail=True, follow=False)
            fact("logs_outcome", "returned")
            fact("logs_body", body)
        except ApiException as exc:
            fact("logs_outcome", "ApiException")
            fact("logs_status", exc.status)
            fact("logs_reason", exc.reason)
            fact("logs_error_body", exc.body.decode() if isinstance(exc.body, bytes) else exc.body)


main()
