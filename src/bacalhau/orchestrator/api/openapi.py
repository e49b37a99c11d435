"""What the OpenAPI document (/api/v1/openapi.json) says about the inputs routes read by hand.

The routes parse their query parameters (params.py, with Go's leniency) and bodies (body.py, with bounds
and clear messages) themselves, so FastAPI sees neither. Each route declares them with `inputs(...)` as its
`openapi_extra`, and its error answers with `errors(...)`; `install` completes the document with the request
body schemas and drops FastAPI's 422, which this API never answers (a bad request is a 400 in Bacalhau's
error body, see errors.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from bacalhau.models.api import (
    DiffJobRequest,
    ErrorResponse,
    PutJobRequest,
    PutNodeRequest,
    RerunJobRequest,
    StopJobRequest,
)
from bacalhau.models.wire import WireModel

# Every model a route reads from its body: their schemas join the document's components.
REQUEST_BODIES: tuple[type[WireModel], ...] = (
    PutJobRequest,
    DiffJobRequest,
    StopJobRequest,
    RerunJobRequest,
    PutNodeRequest,
)

# What params.py accepts: Go parses these as int64; a page is at most MAX_LIMIT items.
MAX_INT64 = 2**63 - 1
MAX_LIMIT = 1_000_000
# What body.py accepts for any integer in a body: Go's int64 and uint64 fields, nothing wider.
BODY_INT_MIN = -(2**63)
BODY_INT_MAX = 2**64 - 1

_ERROR_MEANINGS = {
    400: "Bad request: malformed or invalid body or query parameter (Message says which)",
    404: "No such job or node",
    409: "Conflicts with the current state (e.g. a concurrent update, a node already approved)",
    413: "Request body over 10 MB",
    415: "Request body not sent as application/json",
}
# What the routes require of a body beyond its model's schema (the models stay lenient, as Go's decoder
# is: `Job` may be absent from the model, but PUT /jobs answers 400 without it). Merged into the published
# component of the same name.
NODE_ACTIONS = ("approve", "reject", "delete", "drain", "uncordon")
# A node drain's `Deadline`: a Go duration with units (up to 8 parts of up to 9+9 digits, so that no value
# the pattern allows overflows), `0` for at once, or empty for never. The route accepts exactly what this
# pattern matches with Python's re.search, as the document's readers test it (a trailing newline included).
DRAIN_DEADLINE_PATTERN = r"^(0|([0-9]{1,9}(\.[0-9]{1,9})?(ns|us|ms|s|m|h)){1,8})?$"
_REQUEST_OVERLAYS: dict[str, dict[str, Any]] = {
    "PutJobRequest": {"required": ["Job"], "properties": {"Job": {"$ref": "#/components/schemas/Job"}}},
    "DiffJobRequest": {"required": ["Job"], "properties": {"Job": {"$ref": "#/components/schemas/Job"}}},
    "RerunJobRequest": {
        "required": [],
        "properties": {
            "JobVersion": {"type": "integer", "minimum": 0, "maximum": MAX_INT64, "description": "0: the current version"},
        },
    },
    "PutNodeRequest": {
        "required": ["Action"],
        "properties": {
            "Action": {
                "type": "string",
                "enum": list(NODE_ACTIONS),
                "description": "case-insensitive. Ours, beyond Bacalhau: `drain` cordons the node (no new work; its "
                "daemon executions stop; the rest is moved off it at the Deadline, or finishes there without one; "
                "drain again to change the deadline) and `uncordon` lets it take work again (409 if not cordoned). "
                "The node's `Cordon` shows it (null when it takes work)",
            },
            "Message": {"type": "string", "description": "why; kept as the node's Cordon.Message by drain"},
            "Deadline": {
                "type": "string",
                "pattern": DRAIN_DEADLINE_PATTERN,
                "description": "drain only (ignored by the other actions): a Go duration from now, e.g. `10m` or "
                "`1h30m`, after which work still on the node is moved off it; `0`: at once; empty or absent: never",
            },
        },
    },
}
# POST /nodes (the official Python client's form) names the node in the body instead of the path.
NODE_ACTION_BY_BODY = "PostNodeRequest"
_DERIVED_BODIES: dict[str, dict[str, Any]] = {
    NODE_ACTION_BY_BODY: {
        "allOf": [{"$ref": "#/components/schemas/PutNodeRequest"}],
        "required": ["Action", "NodeID"],
        "properties": {"NodeID": {"type": "string", "minLength": 1}},
    },
}
# Any JSON value body.py decodes: integers within 64 bits, finite numbers (JSON has no others).
ANY_JSON = "AnyJson"
_ANY_JSON_SCHEMA: dict[str, Any] = {
    # JSON Schema cannot tell 2e19 (a float, accepted) from 20000000000000000000 (an integer literal beyond
    # 64 bits, refused), so numbers are documented within the integer range: less than is accepted.
    "description": "any JSON value; integers within 64 bits (-2^63 to 2^64-1), nesting at most 64 levels deep",
    "anyOf": [
        {"type": "number", "minimum": BODY_INT_MIN, "maximum": BODY_INT_MAX},
        {"type": "string"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{ANY_JSON}"}},
        {"type": "object", "additionalProperties": {"$ref": f"#/components/schemas/{ANY_JSON}"}},
    ],
}
# FastAPI's own validation schemas, only referenced by the 422 answers `install` removes.
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """One optional query parameter (a string unless `schema` says otherwise)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }




# An empty query value means "not given" (the official Python SDK sends `limit=`, `order_by=`).
_EMPTY = {"type": "string", "maxLength": 0}


def integer(description: str, maximum: int = MAX_INT64) -> dict[str, Any]:
    """A non-negative integer query value, at most `maximum`, or empty."""
    return {
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": maximum}, _EMPTY],
        "description": description,
    }


# params.query_bool's spellings, any case, blanks around: Go's strconv.ParseBool's and yes/no (the SDK
# sends `True`/`False`); empty means the default.
BOOLEAN = {
    "type": "string",
    "pattern": r"^\s*(1|0|[Tt]([Rr][Uu][Ee])?|[Ff]([Aa][Ll][Ss][Ee])?|[Yy][Ee][Ss]|[Nn][Oo])?\s*$",
    "description": "true: 1, t, true, yes; false: 0, f, false, no (any case); empty: the default",
}


def one_of(*values: str) -> dict[str, Any]:
    """A string among `values`, or empty (an empty query value means "not given")."""
    return {"type": "string", "enum": ["", *values]}


def order_by(*values: str) -> dict[str, Any]:
    """The `order_by` parameter, accepting `values` (the first is the default; empty means the default)."""
    return query("order_by", f"sort key (default {values[0]})", one_of(*values))


NAMESPACE = query("namespace", "namespace of the job (`*`, or empty when listing, for every namespace)")
LIMIT = query("limit", "page size; 0 or absent for everything", integer("page size", MAX_LIMIT))
NEXT_TOKEN = query("next_token", "the NextToken of the previous page; overrides order_by, reverse and limit")
REVERSE = query("reverse", "reverse the sort order", BOOLEAN)
LABELS = query(
    "labels",
    "label selector (k8s syntax, e.g. `env in (prod),tier!=db`); repeatable, ANDed",
    {"type": "array", "items": {"type": "string"}},
)
JOB_VERSION = query("job_version", "a job version other than the latest", integer("job version"))
ALL_JOB_VERSIONS = query("all_job_versions", "include every job version", BOOLEAN)


def inputs(
    *parameters: dict[str, Any], body: type[WireModel] | str | None = None, body_required: bool = False
) -> dict[str, Any]:
    """A route's `openapi_extra`: its query `parameters` and, if any, its JSON `body` (one of REQUEST_BODIES,
    or the name of one of the bodies derived from them), `body_required` when an empty body is a 400."""
    extra: dict[str, Any] = {}
    if parameters:
        extra["parameters"] = [dict(p) for p in parameters]
    if body is not None:
        name = body if isinstance(body, str) else body.__name__
        if name not in _DERIVED_BODIES and body not in REQUEST_BODIES:
            raise ValueError(f"{name} is not in REQUEST_BODIES; add it there so its schema is published")
        extra["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    return extra


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for the error `statuses` a route answers, each with Bacalhau's error body."""
    return {status: {"model": ErrorResponse, "description": _ERROR_MEANINGS[status]} for status in statuses}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /api/v1/openapi.json) describe request bodies and Bacalhau's errors."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    published: list[tuple[type[WireModel], Any]] = [(model, "validation") for model in REQUEST_BODIES]
    published.append((ErrorResponse, "serialization"))
    _, defs = models_json_schema(published, ref_template="#/components/schemas/{model}")
    for name, schema in defs.get("$defs", {}).items():
        # The response side may have published a model already (Job); the two agree on every key.
        schemas.setdefault(name, schema)
    for name, overlay in _REQUEST_OVERLAYS.items():
        schemas[name] = {
            **schemas[name],
            "required": sorted({*schemas[name].get("required", []), *overlay["required"]}),
            "properties": {**schemas[name].get("properties", {}), **overlay["properties"]},
        }
    schemas.update(_DERIVED_BODIES)
    schemas[ANY_JSON] = _ANY_JSON_SCHEMA
    for model in REQUEST_BODIES:
        # Unknown keys are ignored, as by Go's decoder, but their values still go through body.py.
        schemas[model.__name__].setdefault("additionalProperties", {"$ref": f"#/components/schemas/{ANY_JSON}"})
    for schema in schemas.values():
        _bound_integers(schema)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if operation.get("responses", {}).pop("422", None) is not None and "400" not in operation["responses"]:
                operation["responses"]["400"] = {
                    "description": _ERROR_MEANINGS[400],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                }
    for name in _FASTAPI_422_SCHEMAS:
        schemas.pop(name, None)
    return doc


def _bound_integers(schema: Any) -> None:
    """Give every unbounded integer of `schema` the range body.py accepts (Go's int64/uint64)."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            schema.setdefault("minimum", BODY_INT_MIN)
            schema.setdefault("maximum", BODY_INT_MAX)
        for value in schema.values():
            _bound_integers(value)
    elif isinstance(schema, list):
        for item in schema:
            _bound_integers(item)
