"""Reading a job file for `job run` / `job validate`, the way Bacalhau's CLI does (CONTRACT.md section 1.0).

    bytes (file or stdin, at most 10 MB)
      -> Go-style template rendering ({{.NAME}}), unless --no-template
      -> YAML or JSON document (errors carry line and column)
      -> top-level key check (case-insensitive): server-owned keys refused, unknown keys refused
      -> Job model (type errors name the field)      -> client-side validation (every problem at once)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from bacalhau.cli import template
from bacalhau.models.constants import MAX_REQUEST_BYTES
from bacalhau.models.errors import BadRequestError, FieldError, ValidationFailed
from bacalhau.models.job import Job
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.normalize import normalize_job
from bacalhau.models.validation import validate_job

ALLOWED_KEYS = ("name", "namespace", "type", "priority", "count", "constraints", "meta", "labels", "tasks")
SERVER_OWNED_KEYS = ("id", "state", "version", "revision", "createtime", "modifytime")
MAX_FILE_BYTES = MAX_REQUEST_BYTES


def check_size(data: bytes, source: str) -> str:
    """Decode the file, refusing anything over 10 MB as Bacalhau does."""
    if len(data) > MAX_FILE_BYTES:
        raise BadRequestError(
            f"{source} is {len(data)} bytes; job files are limited to {MAX_FILE_BYTES} bytes (10 MB)",
            hint="move large data into an input source instead of the job spec",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"{source} is not UTF-8 text: {exc}") from exc


def parse_document(text: str, source: str) -> Any:
    """Parse YAML or JSON; errors give the line and column of the problem."""
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


def load_job(
    data: bytes,
    source: str,
    *,
    use_template: bool = True,
    template_vars: Mapping[str, str] | None = None,
) -> Job:
    """The whole pipeline from file bytes to a Job (not yet validated)."""
    text = check_size(data, source)
    if use_template:
        text = template.render(text, template_vars or {})
    return to_job(check_top_level(parse_document(text, source), source))


def problems(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> list[FieldError]:
    """Client-side validation: the job as the server will normalise it, checked field by field and
    against `limits` (the server's own check, so both give the same answer for the same limits)."""
    return validate_job(normalize_job(job).job, limits)


def ensure_submittable(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> None:
    """Raise ValidationFailed listing every problem, or return quietly."""
    errs = problems(job, limits)
    if errs:
        raise ValidationFailed(errs, hint="fix the fields listed above; 'bacalhau job validate FILE' checks a file")


def submittable_yaml(job: Job) -> str:
    """The normalised spec as YAML without server-owned keys, so `--dry-run` output can be resubmitted."""
    from bacalhau.cli.output import to_yaml

    wire = normalize_job(job).job.to_wire()
    owned = {key.lower() for key in SERVER_OWNED_KEYS}
    return to_yaml({key: value for key, value in wire.items() if key.lower() not in owned})


def _loader() -> Any:
    import yaml

    class _SafeLoader(yaml.SafeLoader):
        """sigs.k8s.io/yaml leaves dates as strings; PyYAML would make them datetime objects."""

    _SafeLoader.yaml_implicit_resolvers = {
        key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return _SafeLoader
