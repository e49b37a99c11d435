"""Which capability a request needs (Bacalhau v1.9 pkg/authz/capabilities.go), and which actions grant it.

The route table is Bacalhau's: the longest plain string prefix of the path names the resource, only
GET reads, a path no prefix matches needs write:node, and open paths need nothing.
"""

from __future__ import annotations

import pytest

from bacalhau.auth.capabilities import OPEN, grants, required_capability

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
AGENT = "/api/v1/agent"
JOB_ID = "j-7e0b4b4c-5f0b-4c59-9bd4-0d5d1f1a8e11"


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        # jobs: every GET (list, get, history, executions, results, versions, the logs websocket) reads
        ("GET", JOBS, "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}", "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}/history", "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}/executions", "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}/results", "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}/versions", "read:job"),
        ("GET", f"{JOBS}/{JOB_ID}/logs", "read:job"),
        # ... and everything else writes, HEAD included (Go compares the method with GET only)
        ("PUT", JOBS, "write:job"),
        ("POST", JOBS, "write:job"),
        ("PUT", f"{JOBS}/diff", "write:job"),
        ("DELETE", f"{JOBS}/{JOB_ID}", "write:job"),
        ("PUT", f"{JOBS}/{JOB_ID}/rerun", "write:job"),
        ("HEAD", JOBS, "write:job"),
        ("OPTIONS", JOBS, "write:job"),
        ("PATCH", f"{JOBS}/{JOB_ID}", "write:job"),
        # nodes
        ("GET", NODES, "read:node"),
        ("GET", f"{NODES}/n-1", "read:node"),
        ("PUT", f"{NODES}/n-1", "write:node"),
        ("POST", NODES, "write:node"),
        ("HEAD", f"{NODES}/n-1", "write:node"),
        ("DELETE", f"{NODES}/n-1", "write:node"),
        # agent
        ("GET", f"{AGENT}/node", "read:agent"),
        ("GET", f"{AGENT}/config", "read:agent"),
        ("GET", f"{AGENT}/debug", "read:agent"),
        ("GET", AGENT, "read:agent"),
        ("PUT", f"{AGENT}/config", "write:agent"),
        ("HEAD", f"{AGENT}/node", "write:agent"),
    ],
)
def test_route_families_need_read_on_get_and_write_otherwise(method: str, path: str, needed: str) -> None:
    assert required_capability(method, path) == needed


def test_the_method_is_compared_case_insensitively_get_only() -> None:
    # Go compares with http.MethodGet; an ASGI scope always carries the method upper-case, and a
    # lower-case "get" must not turn a read into a write-or-worse (nor the reverse).
    assert required_capability("get", JOBS) == "read:job"
    assert required_capability("put", JOBS) == "write:job"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth",
        "/api/v1/auth/ClientKey",
        "/api/v1/version",
        "/api/v1/agent/alive",
        "/api/v1/agent/version",
        "/api/v1/agent/authconfig",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
def test_open_paths_need_nothing_whatever_the_method(method: str, path: str) -> None:
    assert required_capability(method, path) == OPEN


@pytest.mark.parametrize(
    "path",
    ["/", "/version", "/livez", "/nope", "/api/v2/orchestrator/jobs", "/api/v1/orchestrator", "/API/v1/agent/alive", ""],
)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_path_no_prefix_matches_needs_write_node(method: str, path: str) -> None:
    # Go: no resource type -> GetRequiredCapability's default, "write:node", for reads too.
    assert required_capability(method, path) == "write:node"


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        # A raw string prefix with no segment boundary, as Go's MapEndpointToResourceType.
        ("GET", "/api/v1/orchestrator/jobsXYZ", "read:job"),
        ("PUT", "/api/v1/orchestrator/jobsXYZ", "write:job"),
        ("GET", "/api/v1/orchestrator/nodesX/n-1", "read:node"),
        ("GET", "/api/v1/agentfoo", "read:agent"),
        ("GET", "/api/v1/authentication", OPEN),
        ("GET", "/api/v1/versionX", OPEN),
        ("GET", "/api/v1/agent/aliveXYZ", OPEN),
        ("GET", "/api/v1/agent/authconfigure", OPEN),
        # The longest prefix wins: /api/v1/agent/alive* is open although /api/v1/agent is "agent"...
        ("PUT", "/api/v1/agent/alive", OPEN),
        # ... and /api/v1/agent/al is not /api/v1/agent/alive.
        ("GET", "/api/v1/agent/al", "read:agent"),
    ],
)
def test_prefixes_match_without_a_segment_boundary_as_go_does(method: str, path: str, needed: str) -> None:
    assert required_capability(method, path) == needed


@pytest.mark.parametrize(
    ("actions", "required", "granted"),
    [
        (["*"], "read:job", True),
        (["*"], "write:node", True),
        (["*"], "write:agent", True),
        (["read:*"], "read:job", True),
        (["read:*"], "read:node", True),
        (["read:*"], "read:agent", True),
        (["read:*"], "write:job", False),
        (["read:*"], "write:node", False),
        (["write:*"], "write:job", True),
        (["write:*"], "write:node", True),
        (["write:*"], "write:agent", True),
        # write:* does not grant reads
        (["write:*"], "read:job", False),
        (["write:*"], "read:node", False),
        # write:job does not imply read:job (Bacalhau's rule)
        (["write:job"], "read:job", False),
        (["write:job"], "write:job", True),
        (["write:job"], "write:node", False),
        (["read:job"], "read:job", True),
        (["read:job"], "write:job", False),
        (["read:job"], "read:node", False),
        (["read:job", "write:node"], "write:node", True),
        (["read:job", "write:node"], "read:node", False),
        # Wildcards are exact actions, not patterns
        (["read:j*"], "read:job", False),
        (["job:*"], "read:job", False),
        (["READ:JOB"], "read:job", False),
        ([" read:job"], "read:job", False),
        ([], "read:job", False),
    ],
)
def test_grants(actions: list[str], required: str, granted: bool) -> None:
    assert grants(actions, required) is granted


def test_grants_reads_any_iterable_of_actions_once() -> None:
    # The authorizer passes a tuple; a generator (one pass) must work too.
    assert grants((a for a in ["read:node", "write:job"]), "write:job") is True
    assert grants(iter(()), "read:job") is False
