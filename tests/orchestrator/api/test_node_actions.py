"""The node actions over HTTP: drain (with a Deadline) and uncordon, beside approve/reject/delete.

An in-process app on a real orchestrator (SQLite stores), reached through httpx's ASGI transport.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.orchestrator.node_harness import FakeMonotonic, make_orchestrator, stop

from bacalhau.models.clock import parse_rfc3339_ns, rfc3339
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.service import Orchestrator
from factories import make_node_info

NODES = "/api/v1/orchestrator/nodes"
MINUTE_NS = 60 * 1_000_000_000


def api(orchestrator: Orchestrator) -> httpx.AsyncClient:
    """An HTTP client of the API of a node running `orchestrator`."""
    ctx = ApiContext(
        version=BuildVersionInfo(GitVersion="v1.9.0"), node_info=NodeInfo, config=dict, orchestrator=orchestrator
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx)), base_url="http://test")



@pytest.fixture
async def http(orchestrator: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    async with api(orchestrator) as client:
        yield client


@pytest.fixture
def node_id(orchestrator: Orchestrator) -> str:
    info = make_node_info()
    assert orchestrator.nodes.handshake(info).accepted
    return info.node_id


async def act(http: httpx.AsyncClient, node_id: str, body: dict[str, Any]) -> httpx.Response:
    return await http.put(f"{NODES}/{node_id}", json=body)


async def cordon_of(http: httpx.AsyncClient, node_id: str) -> Any:
    resp = await http.get(f"{NODES}/{node_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["Node"]["Cordon"]


def assert_error(resp: httpx.Response, status: int, code: str, message: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["Status"] == status and body["Code"] == code, body
    assert re.search(message, body["Message"]), body


async def test_drain_with_a_deadline_cordons_the_node_and_shows_it(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    before_ns = orchestrator.nodes.now_ns()
    resp = await act(http, node_id, {"Action": "drain", "Deadline": "10m", "Message": "kernel upgrade"})
    assert resp.status_code == 200 and resp.json() == {"Success": True, "success": True}
    cordon = await cordon_of(http, node_id)
    assert cordon["Message"] == "kernel upgrade"
    assert parse_rfc3339_ns(cordon["Since"]) <= orchestrator.nodes.now_ns()
    deadline_ns = parse_rfc3339_ns(cordon["Deadline"])
    assert before_ns + 10 * MINUTE_NS <= deadline_ns <= orchestrator.nodes.now_ns() + 10 * MINUTE_NS
    assert orchestrator.nodes.cordoned() == {node_id: deadline_ns}
    listed = (await http.get(NODES)).json()
    assert listed["Nodes"][0]["Cordon"] == cordon and listed["nodes"][0]["Cordon"] == cordon


async def test_drain_without_a_deadline_never_moves_the_work(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    assert (await act(http, node_id, {"Action": "DRAIN"})).status_code == 200  # actions in any case
    cordon = await cordon_of(http, node_id)
    assert cordon["Deadline"] is None and cordon["Message"] == "node drain requested"
    assert orchestrator.nodes.cordoned() == {node_id: None}


@pytest.mark.parametrize(
    ("deadline", "after_ns"),
    # A trailing newline too: the document's pattern (`$`, as readers test it with re.search) allows it.
    [("0", 0), ("90s", 90 * 10**9), ("1h30m", 90 * MINUTE_NS), ("1.5h", 90 * MINUTE_NS), ("10m\n", 10 * MINUTE_NS)],
)
async def test_drain_deadlines_count_from_now(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str, deadline: str, after_ns: int
) -> None:
    before_ns = orchestrator.nodes.now_ns()
    assert (await act(http, node_id, {"Action": "drain", "Deadline": deadline})).status_code == 200
    deadline_ns = orchestrator.nodes.cordoned()[node_id]
    assert deadline_ns is not None and before_ns + after_ns <= deadline_ns <= orchestrator.nodes.now_ns() + after_ns


async def test_a_deadline_beyond_what_the_clock_holds_is_clamped(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    resp = await act(http, node_id, {"Action": "drain", "Deadline": "999999999h999999999h"})
    assert resp.status_code == 200, resp.text
    assert orchestrator.nodes.cordoned() == {node_id: 2**63 - 1}
    assert (await cordon_of(http, node_id))["Deadline"].startswith("2262-")


async def test_the_clients_post_form_drains_by_prefix(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    # The official Python client's spelling: POST /nodes, lower-camel keys, the node in the body.
    resp = await http.post(NODES, json={"action": "drain", "nodeID": node_id[:10], "deadline": "5m"})
    assert resp.status_code == 200, resp.text
    assert list(orchestrator.nodes.cordoned()) == [node_id]


async def test_uncordon_clears_the_cordon_and_a_second_one_is_a_409(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    await act(http, node_id, {"Action": "drain"})
    assert (await act(http, node_id[:10], {"Action": "uncordon"})).status_code == 200
    assert await cordon_of(http, node_id) is None and orchestrator.nodes.cordoned() == {}
    assert_error(await act(http, node_id, {"Action": "uncordon"}), 409, "ConflictNodeState", "is not cordoned")


async def test_draining_again_sets_the_new_deadline(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    await act(http, node_id, {"Action": "drain", "Deadline": "1h"})
    first = await cordon_of(http, node_id)
    assert (await act(http, node_id, {"Action": "drain", "Deadline": "1m"})).status_code == 200
    second = await cordon_of(http, node_id)
    assert second["Since"] == first["Since"]
    assert parse_rfc3339_ns(second["Deadline"]) < parse_rfc3339_ns(first["Deadline"])


async def test_a_rejected_node_can_be_drained(http: httpx.AsyncClient, node_id: str) -> None:
    # Cordon is its own dimension: a node drained while rejected stays cordoned once approved again.
    assert (await act(http, node_id, {"Action": "reject"})).status_code == 200
    assert (await act(http, node_id, {"Action": "drain"})).status_code == 200
    assert (await act(http, node_id, {"Action": "approve"})).status_code == 200
    assert (await cordon_of(http, node_id)) is not None


@pytest.mark.parametrize("action", ["drain", "uncordon"])
async def test_an_unknown_node_is_a_404(http: httpx.AsyncClient, action: str) -> None:
    assert_error(await act(http, "n-nothere", {"Action": action}), 404, "NotFound", "node not found: n-nothere")


async def test_an_ambiguous_prefix_is_a_400(http: httpx.AsyncClient, orchestrator: Orchestrator) -> None:
    for node_id in ("n-abc1", "n-abc2"):
        orchestrator.nodes.handshake(make_node_info(node_id=node_id))
    assert_error(await act(http, "n-abc", {"Action": "drain"}), 400, "BadRequest", "ambiguous")


@pytest.mark.parametrize("deadline", ["soon", "-5m", "10", "1d", " 10m", "10m 5s", "1.5.5h", 600, None, ["10m"]])
async def test_a_bad_deadline_is_a_400_and_changes_nothing(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str, deadline: object
) -> None:
    resp = await act(http, node_id, {"Action": "drain", "Deadline": deadline})
    assert resp.status_code == 400 and resp.json()["Code"] == "BadRequest", resp.text
    assert orchestrator.nodes.cordoned() == {}


async def test_a_deadline_is_checked_whatever_the_action_and_used_only_by_drain(
    http: httpx.AsyncClient, orchestrator: Orchestrator, node_id: str
) -> None:
    assert (await act(http, node_id, {"Action": "reject", "Deadline": "later"})).status_code == 400
    assert (await act(http, node_id, {"Action": "reject", "Deadline": "10m"})).status_code == 200
    assert orchestrator.nodes.cordoned() == {}


async def test_an_unknown_action_lists_the_valid_ones(http: httpx.AsyncClient, node_id: str) -> None:
    assert_error(
        await act(http, node_id, {"Action": "cordon"}),
        400,
        "BadRequest",
        "^invalid node action 'cordon'; valid: approve, reject, delete, drain, uncordon$",
    )


async def test_the_document_describes_drain_uncordon_and_the_deadline(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    request = schemas["PutNodeRequest"]["properties"]
    assert {"drain", "uncordon"} <= set(request["Action"]["enum"])
    assert "Deadline" in request and request["Deadline"]["pattern"].startswith("^")
    assert "Cordon" in schemas["NodeState"]["properties"]
    assert set(schemas["NodeCordon"]["properties"]) == {"Since", "Deadline", "Message"}


async def test_the_cordon_survives_an_orchestrator_restart(tmp_path: Path, mono: FakeMonotonic) -> None:
    first = make_orchestrator(tmp_path, monotonic=mono)
    try:
        info = make_node_info()
        first.nodes.handshake(info)
        first.nodes.cordon(info.node_id, deadline_ns=first.nodes.now_ns() + MINUTE_NS, message="move")
        cordon = first.nodes.get(info.node_id).cordon
    finally:
        await stop(first)
    second = make_orchestrator(tmp_path, monotonic=mono)
    try:
        async with api(second) as http:
            shown = await cordon_of(http, info.node_id)
        assert cordon is not None and shown == cordon.to_wire()
        assert shown["Since"] <= rfc3339(second.nodes.now_ns())
    finally:
        await stop(second)
