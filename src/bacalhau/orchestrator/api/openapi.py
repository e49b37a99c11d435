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

_ERROR_MEANINGS = {
    400: "Bad request: malformed or invalid body or query parameter (Message says which)",
    404: "No such job or node",
    409: "Conflicts with the current state (e.g. a concurrent update)",
    413: "Request body over 10 MB",
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


def _integer(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def order_by(*values: str) -> dict[str, Any]:
    """The `order_by` parameter, accepting `values` (the first is the default)."""
    return query("order_by", f"sort key (default {values[0]})", {"type": "string", "enum": list(values)})


NAMESPACE = query("namespace", "namespace of the job (`*`, or empty when listing, for every namespace)")
LIMIT = query("limit", "page size; 0 or absent for everything", _integer("page size"))
NEXT_TOKEN = query("next_token", "the NextToken of the previous page; overrides order_by, reverse and limit")
REVERSE = query("reverse", "reverse the sort order", {"type": "boolean"})
LABELS = query(
    "labels",
    "label selector (k8s syntax, e.g. `env in (prod),tier!=db`); repeatable, ANDed",
    {"type": "array", "items": {"type": "string"}},
)
JOB_VERSION = query("job_version", "a job version other than the latest", _integer("job version"))
ALL_JOB_VERSIONS = query("all_job_versions", "include every job version", {"type": "boolean"})


def inputs(*parameters: dict[str, Any], body: type[WireModel] | None = None) -> dict[str, Any]:
    """A route's `openapi_extra`: its query `parameters` and, if any, its JSON `body` (one of REQUEST_BODIES)."""
    extra: dict[str, Any] = {}
    if parameters:
        extra["parameters"] = [dict(p) for p in parameters]
    if body is not None:
        if body not in REQUEST_BODIES:
            raise ValueError(f"{body.__name__} is not in REQUEST_BODIES; add it there so its schema is published")
        extra["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
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
