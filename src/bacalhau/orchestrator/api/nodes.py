"""/api/v1/orchestrator/nodes routes (responses carry both `Nodes` and the client's `nodes`).

Node actions: Bacalhau's approve, reject and delete, and ours, drain (cordon, with an optional `Deadline`
duration) and uncordon; see NodeManager for what each does and openapi.py for what the document says.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bacalhau.config.duration import parse_duration_s
from bacalhau.models.api import GetNodeResponse, ListNodesResponse, PutNodeRequest, PutNodeResponse
from bacalhau.models.errors import BadRequestError
from bacalhau.models.node import ConnectionStatus, Membership, NodeState
from bacalhau.models.selector import matches_requirement, parse_selector
from bacalhau.orchestrator.api.body import json_body, parse_model
from bacalhau.orchestrator.api.context import orchestrator
from bacalhau.orchestrator.api.openapi import (
    DRAIN_DEADLINE_PATTERN,
    LABELS,
    LIMIT,
    MAX_INT64,
    NEXT_TOKEN,
    NODE_ACTION_BY_BODY,
    NODE_ACTIONS,
    REVERSE,
    errors,
    inputs,
    one_of,
    order_by,
    query,
)
from bacalhau.orchestrator.api.params import next_token, page, query_str
from bacalhau.orchestrator.service import Orchestrator

router = APIRouter(prefix="/api/v1/orchestrator", tags=["nodes"])
_DRAIN_DEADLINE = re.compile(DRAIN_DEADLINE_PATTERN)

_ORDERS = {
    "id": (lambda n: n.info.node_id, False),
    "type": (lambda n: n.info.node_type, False),
    "approval": (lambda n: n.membership.value, False),
    "status": (lambda n: n.connection_state.status.value, False),
    "available_cpu": (lambda n: n.info.compute_node_info.available_capacity.cpu if n.info.compute_node_info else 0, True),
    "available_memory": (
        lambda n: n.info.compute_node_info.available_capacity.memory if n.info.compute_node_info else 0,
        True,
    ),
    "available_disk": (lambda n: n.info.compute_node_info.available_capacity.disk if n.info.compute_node_info else 0, True),
    "available_gpu": (lambda n: n.info.compute_node_info.available_capacity.gpu if n.info.compute_node_info else 0, True),
}


@router.get(
    "/nodes",
    responses={200: {"model": ListNodesResponse}, **errors(400)},
    openapi_extra=inputs(
        LIMIT,
        NEXT_TOKEN,
        order_by(*_ORDERS),
        REVERSE,
        LABELS,
        query("filter-approval", "only nodes in this membership (case-insensitive)", one_of(*(m.value for m in Membership))),
        query(
            "filter-status",
            "only nodes in this connection state (case-insensitive)",
            one_of(*(s.value for s in ConnectionStatus)),
        ),
    ),
)
async def list_nodes(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    p = page(request, default_order="id")
    if p.order_by not in _ORDERS:
        raise BadRequestError(f"invalid order_by {p.order_by!r}; valid: {', '.join(_ORDERS)}")
    nodes: list[NodeState] = orch.nodes.list()
    approval = query_str(request, "filter-approval").upper()
    if approval:
        if approval not in Membership.__members__:
            raise BadRequestError(f"invalid filter-approval {approval!r}; valid: PENDING, APPROVED, REJECTED")
        nodes = [n for n in nodes if n.membership.value == approval]
    status = query_str(request, "filter-status").upper()
    if status:
        if status not in ConnectionStatus.__members__:
            raise BadRequestError(f"invalid filter-status {status!r}; valid: CONNECTED, DISCONNECTED")
        nodes = [n for n in nodes if n.connection_state.status.value == status]
    for raw in request.query_params.getlist("labels"):
        try:
            reqs = parse_selector(raw)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
        nodes = [n for n in nodes if all(matches_requirement(n.info.labels, r) for r in reqs)]
    key, descending = _ORDERS[p.order_by]
    nodes = sorted(nodes, key=key, reverse=descending != p.reverse)
    window = nodes[p.offset : p.offset + p.limit] if p.limit else nodes[p.offset :]
    more = bool(p.limit) and p.offset + p.limit < len(nodes)
    return JSONResponse(ListNodesResponse(Nodes=window, NextToken=next_token(p, more)).to_wire())


@router.get("/nodes/{node_id}", responses={200: {"model": GetNodeResponse}, **errors(404)})
async def get_node(node_id: str, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    return JSONResponse(GetNodeResponse(Node=orch.nodes.get(node_id)).to_wire())


@router.post(
    "/nodes",
    responses={200: {"model": PutNodeResponse}, **errors(400, 404, 409, 413, 415)},
    openapi_extra=inputs(body=NODE_ACTION_BY_BODY, body_required=True),
)
async def update_node_by_body(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """The official Python client's form: POST /nodes with {action, nodeID, message}."""
    body = _node_action(await json_body(request))
    if not body.node_id:
        raise BadRequestError("missing NodeID in request body")
    return _apply_node_action(orch, body.node_id, body)


@router.put(
    "/nodes/{node_id}",
    responses={200: {"model": PutNodeResponse}, **errors(400, 404, 409, 413, 415)},
    openapi_extra=inputs(body=PutNodeRequest, body_required=True),
)
async def update_node(node_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    return _apply_node_action(orch, node_id, _node_action(await json_body(request)))


def _node_action(body: dict[str, object]) -> PutNodeRequest:
    # Keys in any case (the official client sends `action`, `nodeID`); values of the wrong type are a 400.
    request = parse_model(PutNodeRequest, body, "node action")
    # Checked whatever the action: the document says what a Deadline is, not when it is read.
    if _DRAIN_DEADLINE.search(request.deadline) is None:
        raise BadRequestError(
            f"invalid drain deadline {request.deadline!r}",
            hint="give a duration from now such as 10m or 1h30m, 0 for at once, or none to never move its work",
        )
    return request


def _drain_deadline_ns(deadline: str, now_ns: int) -> int | None:
    """The Unix ns at which a drain moves work off the node, None for never (an empty Deadline)."""
    if not deadline.strip():
        return None
    # Beyond what the clock can hold is as good as never, but kept a deadline: clamped, not refused.
    return min(now_ns + round(parse_duration_s(deadline) * 1e9), MAX_INT64)


def _apply_node_action(orch: Orchestrator, node_id: str, request: PutNodeRequest) -> JSONResponse:
    action = request.action.lower()
    nodes = orch.nodes
    if action == "approve":
        nodes.approve(node_id)
    elif action == "reject":
        nodes.reject(node_id)
    elif action == "delete":
        nodes.delete(node_id)
    elif action == "drain":
        nodes.cordon(node_id, deadline_ns=_drain_deadline_ns(request.deadline, nodes.now_ns()), message=request.message)
    elif action == "uncordon":
        nodes.uncordon(node_id)
    else:
        raise BadRequestError(f"invalid node action {action!r}; valid: {', '.join(NODE_ACTIONS)}")
    return JSONResponse({"Success": True, "success": True})
