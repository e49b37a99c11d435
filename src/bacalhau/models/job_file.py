"""A job file's text -> a Job, as Bacalhau's CLI reads it (CONTRACT.md section 1.0); shared by the CLI
(`job run`, `job validate`: cli/jobfile.py adds templates) and the web UI's submit form.

    bytes (at most 10 MB, UTF-8)
      -> YAML or JSON document (errors carry line and column; dates stay strings, as sigs.k8s.io/yaml
         leaves them)
      -> bounded: at most MAX_DOCUMENT_NODES values once YAML aliases are expanded, nesting within
         Python's limits (an alias bomb of 500 bytes is 10^9 values expanded; a cycle never ends)
      -> top-level key check (case-insensitive): server-owned keys refused, unknown keys refused
      -> Job model (type errors name the field and its enclosing struct)

Every refusal is a BadRequestError with the reason, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bacalhau.models.constants import MAX_REQUEST_BYTES
from bacalhau.models.errors import BadRequestError
from bacalhau.models.job import Job

ALLOWED_KEYS = ("name", "namespace", "type", "priority", "count", "constraints", "meta", "labels", "tasks")
SERVER_OWNED_KEYS = ("id", "state", "version", "revision", "createtime", "modifytime")
MAX_FILE_BYTES = MAX_REQUEST_BYTES
# Values in a document once expanded: a 10 MB file of short scalars holds about this many.
MAX_DOCUMENT_NODES = 2_000_000


def check_size(data: bytes, source: str, *, limit: int = MAX_FILE_BYTES) -> str:
    """Decode the file, refusing anything over `limit` bytes (10 MB, as Bacalhau)."""
    if len(data) > limit:
        raise BadRequestError(
            f"{source} is {len(data)} bytes; job files are limited to {limit} bytes ({_size(limit)})",
            hint="move large data into an input source instead of the job spec",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"{source} is not UTF-8 text: {exc}") from exc


def _size(limit: int) -> str:
    # Bacalhau says "10 MB" for its 10 MiB; the UI's smaller limit reads in KiB.
    mib = 1024 * 1024
    return f"{limit // mib} MB" if limit % mib == 0 else f"{limit // 1024} KiB"


def parse_document(text: str, source: str, *, max_nodes: int = MAX_DOCUMENT_NODES) -> Any:
    """Parse YAML or JSON, then check its expanded size; errors give the line and column of the problem."""
    try:
        document = _parse(text, source)
    except RecursionError as exc:
        raise BadRequestError(f"{source} is nested too deeply", hint="a job file is a few levels deep") from exc
    check_expanded_size(document, source, max_nodes=max_nodes)
    return document


def _parse(text: str, source: str) -> Any:
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequestError(
                f"failed to parse {source} as JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                hint="fix the JSON syntax at that position",
            ) from exc
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise BadRequestError(
            f"failed to parse {source} as YAML: {where}{problem}", hint="fix the YAML syntax at that position"
        ) from exc
    except yaml.YAMLError as exc:
        raise BadRequestError(f"failed to parse {source} as YAML: {exc}") from exc


def check_expanded_size(document: Any, source: str, *, max_nodes: int = MAX_DOCUMENT_NODES) -> None:
    """Refuse a document holding more than `max_nodes` values when YAML aliases are expanded (what
    serialising it would produce), or a cycle. Walks at most `max_nodes` steps, with no recursion."""
    stack = [document]
    seen = 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > max_nodes:
            raise BadRequestError(
                f"{source} expands to more than {max_nodes} values (YAML aliases repeat what they point to)",
                hint="write the job out without anchors and aliases, or make it smaller",
            )
        if isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)


def check_top_level(data: Any, source: str) -> Mapping[str, Any]:
    """Refuse server-owned and unknown top-level keys (case-insensitively), listing every offender."""
    if data is None:
        raise BadRequestError(f"{source} is empty", hint="a job file needs at least Type and Tasks")
    if not isinstance(data, Mapping):
        raise BadRequestError(f"{source} must hold a mapping of job fields, not a {type(data).__name__}")
    problems = []
    for key in data:
        lowered = str(key).lower()
        if lowered in SERVER_OWNED_KEYS:
            problems.append(f"field: '{key}' in 'Job' is not allowed")
        elif lowered not in ALLOWED_KEYS:
            problems.append(f"unknown field: '{key}' in 'Job'")
    if problems:
        raise BadRequestError(
            "\n".join(problems),
            hint=f"a job file may only set: {', '.join(k.capitalize() for k in ALLOWED_KEYS)}",
        )
    return data


def to_job(data: Mapping[str, Any]) -> Job:
    """Decode into a Job; type mismatches name the field and its enclosing struct."""
    try:
        return Job.from_user(dict(data))
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            field = str(loc[-1]) if loc else "?"
            parent = "Job" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[:-1])
            messages.append(f"field '{field}' in '{parent}' is invalid type: {err['msg']}")
        raise BadRequestError("\n".join(messages), hint="check the field types against the job spec") from exc


def read_job(data: bytes, source: str, *, limit: int = MAX_FILE_BYTES, max_nodes: int = MAX_DOCUMENT_NODES) -> Job:
    """The whole pipeline from file bytes (no template) to a Job, not yet validated."""
    text = check_size(data, source, limit=limit)
    return to_job(check_top_level(parse_document(text, source, max_nodes=max_nodes), source))


def _loader() -> Any:
    import yaml

    class _SafeLoader(yaml.SafeLoader):
        """sigs.k8s.io/yaml leaves dates as strings; PyYAML would make them datetime objects."""

    _SafeLoader.yaml_implicit_resolvers = {
        key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return _SafeLoader
