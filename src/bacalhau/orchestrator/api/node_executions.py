"""Ours, for the web UI's node page: what a node ran and runs.

    GET /api/v1/orchestrator/nodes/{node_id}/executions?limit=50
        {"Items": [Execution without its Job ...], "NextToken": ""}    newest first, at most MAX_LIMIT

It needs `read:node` (the nodes prefix), so the answer leaves out each execution's embedded job spec
(its task, Env and all): a caller who may read nodes but not jobs learns which job IDs ran there and how
they went, not what they are. An unknown node is a 404, as for GET /nodes/{node_id}.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bacalhau.orchestrator.api.context import orchestrator
from bacalhau.orchestrator.api.openapi import errors, inputs, integer, query
from bacalhau.orchestrator.api.params import query_int
from bacalhau.orchestrator.service import Orchestrator

router = APIRouter(prefix="/api/v1/orchestrator", tags=["nodes"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@router.get(
    "/nodes/{node_id}/executions",
    responses=errors(400, 404),
    openapi_extra=inputs(query("limit", f"at most this many (default {DEFAULT_LIMIT}, up to {MAX_LIMIT})",
                               integer("limit", MAX_LIMIT))),
)
async def node_executions(node_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """The node's newest executions, without their job specs (ours)."""
    node = orch.nodes.get(node_id)  # NotFoundError for an unknown node
    limit = query_int(request, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    found = await orch.store.recent_executions_on_node(node.info.node_id, limit)
    items = []
    for execution in found:
        wire = execution.to_wire()
        wire["Job"] = None
        items.append(wire)
    return JSONResponse({"Items": items, "NextToken": ""})
