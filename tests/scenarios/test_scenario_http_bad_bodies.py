"""Malformed request bodies over raw HTTP against `bacalhau serve`: 400 in Bacalhau's error body, never 500.

Every route that reads a body goes through one decoder (orchestrator/api/body.py); each bad kind is sent to
each of them, and the node must still answer afterwards with no traceback in its log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

NO_JOB = "j-00000000-0000-4000-8000-000000000000"
NO_NODE = "n-00000000-0000-4000-8000-000000000000"

# (method, path) of every route that reads a JSON body.
BODY_ROUTES = [
    ("PUT", "/api/v1/orchestrator/jobs"),
    ("POST", "/api/v1/orchestrator/jobs"),
    ("PUT", "/api/v1/orchestrator/jobs/diff"),
    ("DELETE", f"/api/v1/orchestrator/jobs/{NO_JOB}"),
    ("PUT", f"/api/v1/orchestrator/jobs/{NO_JOB}/rerun"),
    ("POST", "/api/v1/orchestrator/nodes"),
    ("PUT", f"/api/v1/orchestrator/nodes/{NO_NODE}"),
]

DEEP = 1_000

# (id, body, text the Message must contain)
BAD_BODIES = [
    ("invalid-utf8", b'{"Job": {"Name": "caf\xe9"}}', "request body is not valid UTF-8 at byte 21"),
    ("invalid-utf8-first-byte", b"\xff\xfe{}", "request body is not valid UTF-8 at byte 0"),
    ("deep-arrays", b"[" * DEEP + b"]" * DEEP, "request body nests deeper than 64 levels"),
    (
        "deep-objects",
        b'{"Job": ' + b'{"a": ' * DEEP + b"1" + b"}" * (DEEP + 1),
        "request body nests deeper than 64 levels",
    ),
    ("deep-unterminated", b"[" * 100_000, "request body nests deeper than 64 levels"),
    ("array", b"[]", "request body must be a JSON object, not an array"),
    ("string", b'"x"', "request body must be a JSON object, not a string"),
    ("number", b"1", "request body must be a JSON object, not a number"),
    ("null", b"null", "request body must be a JSON object, not null"),
    ("top-level-1e999", b"1e999", "request body has a number out of range: 1e999"),
    ("nan", b"NaN", "request body is not valid JSON: NaN is not a JSON number"),
    ("infinity-in-object", b'{"Job": {"Count": Infinity}}', "Infinity is not a JSON number"),
    ("minus-infinity", b'{"Job": {"Count": -Infinity}}', "-Infinity is not a JSON number"),
    ("huge-float", b'{"Job": {"Count": 1e400}}', "request body has a number out of range: 1e400"),
    ("huge-int", b'{"Job": {"Count": 1' + b"0" * 5_000 + b"}}", "request body has an integer out of range in Count: 1000"),
    ("int-over-64-bits", b'{"Job": {"Count": 18446744073709551616}}', "integer out of range in Count: 18446744073709551616"),
    # The example: the field is named, so the user knows which one to fix.
    ("count-10-to-30", b'{"Job": {"Count": ' + str(10**30).encode() + b"}}", "integer out of range in Count: 1" + "0" * 30),
    ("duplicate-key", b'{"Job": {"Name": "a", "Name": "b"}}', 'request body has duplicate key "Name"'),
    ("malformed", b'{"Job": {"Type": "batch",', "malformed JSON body"),
]


@pytest.fixture(scope="module")
def http(shared_node: BacalhauNode) -> Iterator[httpx.Client]:
    with shared_node.http(timeout_s=30) as client:
        yield client


def send(http: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    return http.request(method, path, content=body, headers={"Content-Type": "application/json"})


def assert_bad_request(resp: httpx.Response, expected: str) -> dict[str, Any]:
    """400 with Bacalhau's error body {Status, Message, RequestID, Code, Component, Hint?} naming the problem."""
    assert resp.status_code == 400, f"{resp.status_code}: {resp.text[:2000]}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["Status"] == 400, body
    assert body["Code"] == "BadRequest" and body["Component"] == "APIServer", body
    assert body["RequestID"], body
    assert expected in body["Message"], body
    return body


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
@pytest.mark.parametrize(("body", "expected"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
def test_a_bad_body_is_400_naming_the_problem(
    http: httpx.Client, method: str, path: str, body: bytes, expected: str
) -> None:
    assert_bad_request(send(http, method, path, body), expected)


def test_deep_nesting_inside_strings_is_just_text(http: httpx.Client) -> None:
    # Brackets inside a string literal (escaped quotes included) nest nothing: this body is one level deep.
    text = '\\"' + "[{" * DEEP
    resp = send(http, "PUT", "/api/v1/orchestrator/jobs/diff", b'{"Job": {"Meta": {"x": "' + text.encode() + b'"}}}')
    body = resp.json()
    assert "nests deeper" not in body.get("Message", ""), body
    assert resp.status_code in (400, 404), f"{resp.status_code}: {resp.text[:2000]}"  # no Name / no such job


def test_half_a_surrogate_pair_is_read_as_go_reads_it_and_the_job_stays_readable(http: httpx.Client) -> None:
    # Go's encoding/json decodes an escaped lone surrogate as U+FFFD; json.loads made it a str that the
    # store wrote but could never read back (every later read of the job failed).
    spec = {"Type": "batch", "Labels": {"note": "bad \\ud800 half", "pair": "ok \\ud83d\\ude00"},
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    body = json.dumps({"Job": spec}).replace("\\\\ud", "\\ud").encode()
    assert b"\\ud800" in body
    put = send(http, "PUT", "/api/v1/orchestrator/jobs", body)
    assert put.status_code == 200, put.text
    got = http.get(f"/api/v1/orchestrator/jobs/{put.json()['JobID']}")
    assert got.status_code == 200, got.text
    assert got.json()["Job"]["Labels"] == {"note": "bad \ufffd half", "pair": "ok \U0001f600"}


def test_the_node_stays_up_with_no_traceback_in_its_log(http: httpx.Client, shared_node: BacalhauNode) -> None:
    for _, body, expected in BAD_BODIES:
        for method, path in BODY_ROUTES[:2]:
            assert_bad_request(send(http, method, path, body), expected)
    assert http.get("/api/v1/agent/alive").json() == {"Status": "OK"}
    log = shared_node.log_text()
    for marker in ("Traceback", "RecursionError", "UnicodeDecodeError", "Internal server error", "unhandled error"):
        assert marker not in log, shared_node.log_excerpt()


# -- the OpenAPI document describes those inputs -----------------------------------------------------
@pytest.fixture(scope="module")
def openapi(http: httpx.Client) -> dict[str, Any]:
    resp = http.get("/api/v1/openapi.json")
    assert resp.status_code == 200, resp.text[:2000]
    doc: dict[str, Any] = resp.json()
    return doc


@pytest.mark.parametrize(
    ("method", "path", "schema"),
    [
        ("put", "/api/v1/orchestrator/jobs", "PutJobRequest"),
        ("put", "/api/v1/orchestrator/jobs/diff", "DiffJobRequest"),
        ("delete", "/api/v1/orchestrator/jobs/{job_id}", "StopJobRequest"),
        ("put", "/api/v1/orchestrator/jobs/{job_id}/rerun", "RerunJobRequest"),
        ("post", "/api/v1/orchestrator/nodes", "PostNodeRequest"),  # PutNodeRequest + NodeID required
        ("put", "/api/v1/orchestrator/nodes/{node_id}", "PutNodeRequest"),
    ],
)
def test_openapi_declares_each_request_body_and_its_errors(
    openapi: dict[str, Any], method: str, path: str, schema: str
) -> None:
    operation = openapi["paths"][path][method]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{schema}", operation
    assert "properties" in openapi["components"]["schemas"][schema], openapi["components"]["schemas"][schema]
    for status in ("400", "413"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}, operation["responses"]


def test_openapi_declares_query_parameters(openapi: dict[str, Any]) -> None:
    def names(method: str, path: str) -> set[str]:
        return {p["name"] for p in openapi["paths"][path][method].get("parameters", []) if p["in"] == "query"}

    assert {"namespace", "limit", "next_token", "order_by", "reverse", "labels"} <= names(
        "get", "/api/v1/orchestrator/jobs"
    )
    assert {"namespace", "include", "job_version"} <= names("get", "/api/v1/orchestrator/jobs/{job_id}")
    assert {"since", "event_type", "execution_id"} <= names("get", "/api/v1/orchestrator/jobs/{job_id}/history")
    assert {"filter-approval", "filter-status", "order_by"} <= names("get", "/api/v1/orchestrator/nodes")


def test_openapi_has_bacalhaus_errors_and_no_dangling_refs(openapi: dict[str, Any]) -> None:
    error = openapi["components"]["schemas"]["ErrorResponse"]["properties"]
    assert {"Status", "Message", "RequestID", "Code", "Component", "Hint", "Details"} <= set(error), error
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)  # a bad request is a 400 here
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(openapi)))
    assert refs <= set(openapi["components"]["schemas"]), refs - set(openapi["components"]["schemas"])
