"""Property-based fuzz of the whole HTTP API: schemathesis over the node's own /api/v1/openapi.json.

A real `bacalhau serve` node (orchestrator + compute; only the noop engine, no network inputs or
publishers, so a generated job never runs anything for long) is fuzzed operation by operation with the
document's full request schemas: examples, then the coverage phase (boundary values, wrong types,
undeclared methods), then random positive and negative cases. Every answer must

  * never be a 5xx (`not_a_server_error`);
  * carry a documented status code, content type and headers, and a body matching the documented schema;
  * answer an undeclared method with 405 and an `Allow` header (`unsupported_method`);
  * reject what the document says is invalid with a 4xx (`negative_data_rejection`);
  * accept what the document says is valid (`positive_data_acceptance`).

The last two are not asked where the document cannot say exactly what valid is (see `_checks_for`): a job
spec (its semantic validation: known engine, tasks, names...), a stop (depends on the job's state), the
opaque `next_token` and label selector strings, and values under unknown body keys. Those cases are
still sent, against every other check.

Half of the generated job and node ids are swapped for ones that exist (a job submitted before the fuzz,
this node's id), so the routes behind the 404 are fuzzed too. Afterwards the node must still answer
`/api/v1/agent/alive` and its log must hold no traceback. The websocket-only logs route is not in the
document (it cannot be fuzzed over plain HTTP; test_scenario_logs_*.py cover it).

Bounded: MAX_EXAMPLES random cases per operation (plus the coverage phase's), one deadline per request.
The regressions for what the fuzz found are plain tests at the end of this file.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

# Random cases per operation, on top of the explicit and coverage-phase ones. 20 operations x 40 cases
# take about 30 s on two cores (200 cases: 90 s); CI runs it on every push, so coverage accumulates.
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))  # more for a deeper run by hand
REQUEST_TIMEOUT_S = 20.0

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    negative_data_rejection,
    positive_data_acceptance,
]

# Operations whose body is a job spec: valid JSON-schema-wise is not valid Bacalhau-wise (the document
# cannot express the job validation rules), so positive_data_acceptance is not asked of them.
JOB_SPEC_BODIES = {
    ("PUT", "/api/v1/orchestrator/jobs"),
    ("POST", "/api/v1/orchestrator/jobs"),
    ("PUT", "/api/v1/orchestrator/jobs/diff"),
}
# Operations whose answer to a valid request depends on the job's state (a Completed job cannot be
# stopped: 400, as in Bacalhau), which the document cannot know either.
STATE_DEPENDENT = {("DELETE", "/api/v1/orchestrator/jobs/{job_id}")}
# Query parameters whose grammar the document cannot express (an opaque paging token; k8s selectors).
OPAQUE_QUERY = ("next_token", "labels")

NOOP_JOB = {"Type": "batch", "Count": 1, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}


# Only noop jobs run: no docker, no wasm, no downloads, no remote publishers.
NOOP_ONLY = [
    "Engines.Disabled=docker,wasm",
    "InputSources.Disabled=urlDownload,s3,s3PreSigned,ipfs,local,localDirectory",
    "Publishers.Disabled=s3,ipfs,local",
]


@pytest.fixture(scope="module")
def noop_nodes(bacalhau_bin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodePool]:
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def fuzzed_node(noop_nodes: NodePool) -> BacalhauNode:
    """The node the fuzz runs against (it may approve, reject and delete itself, stop and rerun jobs)."""
    return noop_nodes(extra_config=NOOP_ONLY)


def _seed(node: BacalhauNode) -> dict[str, list[str]]:
    """Ids that exist on `node`: one submitted noop job (by id, name and short id) and the node itself."""
    with node.http(timeout_s=REQUEST_TIMEOUT_S) as http:
        resp = http.put("/api/v1/orchestrator/jobs", json={"Job": {**NOOP_JOB, "Name": "fuzz-seed"}})
        assert resp.status_code == 200, resp.text
        job_id = resp.json()["JobID"]
        node_id = http.get("/api/v1/agent/node").json()["NodeID"]
    return {"job_id": [job_id, "fuzz-seed", job_id[:10]], "node_id": [node_id]}


@pytest.fixture(scope="module")
def known_ids(fuzzed_node: BacalhauNode) -> dict[str, list[str]]:
    return _seed(fuzzed_node)


@pytest.fixture(scope="module")
def api_schema(fuzzed_node: BacalhauNode, known_ids: dict[str, list[str]]) -> Any:
    """The node's own OpenAPI document, loaded by schemathesis with the node as base URL."""
    schema = schemathesis.openapi.from_url(f"{fuzzed_node.url}/api/v1/openapi.json")
    schema.config.update(base_url=fuzzed_node.url)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 relabels each operation's subtest through the private `Node._nodeid`, which
    # pytest 9.2 no longer has (it keeps `_id`); give it the attribute it reads and writes.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _swap_in_known_ids(case: schemathesis.Case, known: dict[str, list[str]]) -> None:
    """Replace about half of the generated ids with existing ones, chosen from the generated value itself
    (so a failing case replays identically)."""
    params = case.path_parameters or {}
    for name, choices in known.items():
        value = params.get(name)
        if isinstance(value, str):
            digest = zlib.crc32(value.encode("utf-8", "surrogatepass"))
            if digest % 2 == 0:
                params[name] = choices[(digest // 2) % len(choices)]


def _declared_keys(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The property names `schema` (a `$ref`, `allOf` or object schema of `doc`) declares."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    keys = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        keys |= _declared_keys(doc, part)
    return keys


@pytest.fixture(scope="module")
def body_keys(fuzzed_node: BacalhauNode) -> dict[tuple[str, str], set[str]]:
    """{(METHOD, path): keys its documented request body declares}."""
    with fuzzed_node.http(timeout_s=REQUEST_TIMEOUT_S) as http:
        doc: dict[str, Any] = http.get("/api/v1/openapi.json").json()
    return {
        (method.upper(), path): _declared_keys(doc, op["requestBody"]["content"]["application/json"]["schema"])
        for path, operations in doc["paths"].items()
        for method, op in operations.items()
        if "requestBody" in op
    }


def _checks_for(case: schemathesis.Case, body_keys: dict[tuple[str, str], set[str]]) -> list[CheckFunction]:
    checks = list(CHECKS)
    operation = (case.method.upper(), case.path)
    opaque = any(case.query and case.query.get(name) not in (None, "", []) for name in OPAQUE_QUERY)
    if opaque or operation in JOB_SPEC_BODIES | STATE_DEPENDENT:
        checks.remove(positive_data_acceptance)
    if opaque:
        # On the wire every query value is a string: a "wrong type" there (labels=false) is a valid one.
        checks.remove(negative_data_rejection)
    if negative_data_rejection in checks and isinstance(case.body, dict) and set(case.body) - body_keys.get(operation, set()):
        # Values under unknown keys are documented as AnyJson, whose numbers are bounded to the 64-bit
        # integer range: JSON Schema cannot tell 1e30 (a float: accepted) from the integer literal
        # 1000000000000000000000000000000 (refused by body.py). A "violation" there may be accepted.
        checks.remove(negative_data_rejection)
    return checks


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=REQUEST_TIMEOUT_S),
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, known_ids: dict[str, list[str]], body_keys: dict[tuple[str, str], set[str]]
) -> None:
    _swap_in_known_ids(case, known_ids)
    case.call_and_validate(checks=_checks_for(case, body_keys), timeout=REQUEST_TIMEOUT_S)


def test_the_node_survives_the_fuzz(fuzzed_node: BacalhauNode) -> None:
    with fuzzed_node.http(timeout_s=REQUEST_TIMEOUT_S) as http:
        assert http.get("/api/v1/agent/alive").json() == {"Status": "OK"}
    log = fuzzed_node.log_text()
    for marker in ("Traceback", "Internal server error", "unhandled error"):
        assert marker not in log, fuzzed_node.log_excerpt()


# -- regressions: what the fuzz found (on a node of their own, which the fuzz did not touch) ------------
@pytest.fixture(scope="module")
def regression_node(noop_nodes: NodePool) -> BacalhauNode:
    return noop_nodes(extra_config=NOOP_ONLY)


@pytest.fixture(scope="module")
def seeded(regression_node: BacalhauNode) -> dict[str, list[str]]:
    return _seed(regression_node)


@pytest.fixture(scope="module")
def http(regression_node: BacalhauNode, seeded: dict[str, list[str]]) -> Iterator[httpx.Client]:
    with regression_node.http(timeout_s=REQUEST_TIMEOUT_S) as client:
        yield client


def job_path(_: httpx.Client, suffix: str = "") -> str:
    """Path of the job the fuzz was seeded with (submitted by `known_ids`)."""
    return f"/api/v1/orchestrator/jobs/fuzz-seed{suffix}"


def assert_error(resp: httpx.Response, status: int, *in_message: str) -> dict[str, Any]:
    """`status` with Bacalhau's error body whose Message contains every `in_message`."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:2000]}"
    body: dict[str, Any] = resp.json()
    assert body["Status"] == status and body["RequestID"], body
    for text in in_message:
        assert text in body["Message"], body
    return body


def test_an_undeclared_method_is_405_with_allow_naming_every_method_of_the_path(
    http: httpx.Client, seeded: dict[str, list[str]]
) -> None:
    # Found by the fuzz: 405 came without the Allow header RFC 9110 requires (TRACE /api/v1/agent/alive).
    resp = http.request("TRACE", "/api/v1/agent/alive")
    assert_error(resp, 405, "TRACE")
    assert resp.headers["allow"] == "GET", resp.headers
    # GET and DELETE /jobs/{id} are two routes; Starlette's own 405 named only the first one's methods.
    resp = http.request("PATCH", job_path(http))
    assert_error(resp, 405)
    assert resp.headers["allow"] == "DELETE, GET", resp.headers
    resp = http.request("PATCH", "/api/v1/orchestrator/jobs")
    assert resp.headers["allow"] == "GET, POST, PUT", resp.headers


def test_post_jobs_is_in_the_document(http: httpx.Client) -> None:
    # Found by the fuzz: POST /jobs (the older clients' form) was served but hidden from the document, so
    # an "undeclared" POST answered 400 instead of 405.
    doc = http.get("/api/v1/openapi.json").json()
    assert doc["paths"]["/api/v1/orchestrator/jobs"]["post"]["requestBody"]["required"] is True


@pytest.mark.parametrize("version", [18446744073709551615, 2**63, -1])
def test_rerun_of_a_version_beyond_64_bit_signed_is_a_400(
    http: httpx.Client, seeded: dict[str, list[str]], version: int
) -> None:
    # Found by the fuzz: {"JobVersion": 18446744073709551615} on an existing job reached SQLite and
    # overflowed there (OverflowError: Python int too large to convert to SQLite INTEGER, a 500).
    resp = http.put(job_path(http, "/rerun"), json={"JobVersion": version})
    assert_error(resp, 400, "JobVersion", str(version))


def test_rerun_of_the_largest_version_is_a_plain_404(http: httpx.Client, seeded: dict[str, list[str]]) -> None:
    resp = http.put(job_path(http, "/rerun"), json={"JobVersion": 2**63 - 1})
    assert_error(resp, 404, str(2**63 - 1))


def test_executions_refuse_an_unknown_order_by(http: httpx.Client, seeded: dict[str, list[str]]) -> None:
    # Found by the fuzz: GET /jobs/{id}/executions took any order_by and sorted by creation time.
    assert_error(http.get(job_path(http, "/executions"), params={"order_by": "bogus"}), 400, "order_by")
    for order in ("", "created_at", "modified_at"):
        resp = http.get(job_path(http, "/executions"), params={"order_by": order})
        assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("raw", ["1_0", "\u0663", "\uff11", "1.0", "0x10", "\x0c", " 3"])
def test_query_integers_are_ascii_decimal_only(http: httpx.Client, raw: str) -> None:
    # Found by the fuzz: Python's int() also reads "1_0", non-ASCII digits ("٣") and blanks ("\f" was an empty
    # limit); Go's ParseInt does not.
    assert_error(http.get("/api/v1/orchestrator/jobs", params={"limit": raw}), 400, "limit")


@pytest.mark.parametrize("raw", ["", "3", "+3", "007"])
def test_query_integers_take_what_go_takes(http: httpx.Client, raw: str) -> None:
    resp = http.get("/api/v1/orchestrator/jobs", params={"limit": raw})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/v1/orchestrator/jobs"), ("PUT", "/api/v1/orchestrator/jobs/diff"), ("POST", "/api/v1/orchestrator/nodes")],
)
def test_a_body_the_document_requires_is_required(http: httpx.Client, method: str, path: str) -> None:
    # The document said these bodies were optional; without one the answer is (and was) a 400.
    doc = http.get("/api/v1/openapi.json").json()
    assert doc["paths"][path][method.lower()]["requestBody"]["required"] is True
    assert_error(http.request(method, path), 400, "missing")


def test_a_node_action_that_conflicts_is_a_documented_409(http: httpx.Client, seeded: dict[str, list[str]]) -> None:
    # Found by the fuzz: rejecting a node twice answers 409 (ConflictNodeState), which the document omitted.
    node_id = seeded["node_id"][0]
    path = f"/api/v1/orchestrator/nodes/{node_id}"
    try:
        assert http.put(path, json={"Action": "reject"}).status_code in (200, 409)
        assert_error(http.put(path, json={"Action": "reject"}), 409, "already rejected")
    finally:
        http.put(path, json={"Action": "approve"})
    doc = http.get("/api/v1/openapi.json").json()
    for method, route in (("put", "/api/v1/orchestrator/nodes/{node_id}"), ("post", "/api/v1/orchestrator/nodes")):
        assert "409" in doc["paths"][route][method]["responses"], route
