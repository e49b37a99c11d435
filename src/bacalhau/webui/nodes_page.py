"""The nodes: a table that keeps itself current (type, connection, membership, labels, engines,
resources free of total as bars, running executions, last heartbeat), one node's details, and the
operator's actions on it.

    GET  /nodes                   the page;  GET /nodes/table  the table alone (polled every 3 s)
    GET  /nodes/{id}              one node, with its newest executions (GET /nodes/{id}/executions, ours)
    POST /nodes/{id}/{action}     approve | reject | delete | drain | uncordon, then the node's row
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bacalhau.models.errors import BadRequestError
from bacalhau.webui.backend import api
from bacalhau.webui.render import page

ACTIONS = ("approve", "reject", "delete", "drain", "uncordon")
_MAX_NODES = 1000
NODE_EXECUTIONS = 50


async def _nodes(request: Request) -> list[dict[str, Any]]:
    async with api(request) as client:
        listed = await client.list_nodes(limit=_MAX_NODES)
    return [node.to_wire() for node in listed.nodes]


async def nodes(request: Request) -> HTMLResponse:
    """The nodes page."""
    return page(request, "nodes.html", nodes=await _nodes(request))


async def nodes_table(request: Request) -> HTMLResponse:
    """The nodes table fragment (polled)."""
    return page(request, "nodes_table.html", nodes=await _nodes(request))


async def node(request: Request) -> HTMLResponse:
    """One node's page."""
    async with api(request) as client:
        found = await client.get_node(request.path_params["node_id"])
        executions = await client.node_executions(found.node.info.node_id, limit=NODE_EXECUTIONS)
    return page(request, "node.html", node=found.node.to_wire(), actions=ACTIONS, executions=executions)


async def act(request: Request) -> Response:
    """Approve, reject, delete, drain or uncordon a node; answer with the refreshed node section."""
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise BadRequestError(f"unknown node action {action!r}", hint=f"one of {', '.join(ACTIONS)}")
    node_id = request.path_params["node_id"]
    async with api(request) as client:
        await client.update_node(node_id, action, message=f"{action} from the web UI")
        if action == "delete":
            return HTMLResponse("", headers={"HX-Redirect": "/nodes"})
        found = await client.get_node(node_id)
    return page(request, "node_detail.html", node=found.node.to_wire(), actions=ACTIONS)


routes = [
    Route("/nodes", nodes),
    Route("/nodes/table", nodes_table),
    Route("/nodes/{node_id}", node),
    Route("/nodes/{node_id}/{action}", act, methods=["POST"]),
]
