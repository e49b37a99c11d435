"""Ours, for the web UI's node page: GET /nodes/{id}/executions, newest first, without job specs.
An in-process app on a real orchestrator (SQLite store), through httpx's ASGI transport.
"""

from __future__ import annotations

import httpx
from tests.orchestrator.in_process_api import http, orch

from bacalhau.orchestrator.service import Orchestrator
from factories import make_execution, make_job, make_node_info

NODES = "/api/v1/orchestrator/nodes"
__all__ = ["http", "orch"]  # fixtures, imported to be found by pytest


async def test_a_nodes_executions_newest_first_without_job_specs(orch: Orchestrator, http: httpx.AsyncClient) -> None:
    info = make_node_info()
    assert orch.nodes.handshake(info).accepted
    other = make_node_info()
    assert orch.nodes.handshake(other).accepted
    made = []
    for i in range(3):
        job = make_job(name=f"job-{i}")
        job.tasks[0].env = {"TOKEN": "s3cret"}
        await orch.store.create_job(job, [])
        execution = make_execution(job, node_id=info.node_id)
        execution.create_time = 1_000 + i
        await orch.store.create_execution(execution, [])
        made.append(execution.id)
    elsewhere = make_execution(job, node_id=other.node_id)
    await orch.store.create_execution(elsewhere, [])

    resp = await http.get(f"{NODES}/{info.node_id}/executions")
    assert resp.status_code == 200, resp.text
    items = resp.json()["Items"]
    assert [e["ID"] for e in items] == made[::-1]
    assert all(e["Job"] is None and e["NodeID"] == info.node_id for e in items)
    assert "s3cret" not in resp.text
    limited = (await http.get(f"{NODES}/{info.node_id}/executions", params={"limit": "1"})).json()["Items"]
    assert [e["ID"] for e in limited] == [made[-1]]


async def test_an_unknown_node_is_a_404(http: httpx.AsyncClient) -> None:
    resp = await http.get(f"{NODES}/n-nobody/executions")
    assert resp.status_code == 404, resp.text
