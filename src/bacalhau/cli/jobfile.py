"""Reading a job file for `job run` / `job validate`, the way Bacalhau's CLI does (CONTRACT.md section 1.0).

    bytes (file or stdin, at most 10 MB)
      -> Go-style template rendering ({{.NAME}}), unless --no-template
      -> models/job_file.py: YAML or JSON, bounded, top-level keys, Job model (shared with the web UI)
      -> client-side validation (every problem at once)
"""

from __future__ import annotations

from collections.abc import Mapping

from bacalhau.cli import template
from bacalhau.models.errors import FieldError, ValidationFailed
from bacalhau.models.job import Job
from bacalhau.models.job_file import (
    MAX_FILE_BYTES,
    check_size,
    check_top_level,
    parse_document,
    to_job,
)
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.normalize import normalize_job
from bacalhau.models.validation import validate_job

SERVER_OWNED_KEYS = ("id", "state", "version", "revision", "createtime", "modifytime")
__all__ = ["MAX_FILE_BYTES", "ensure_submittable", "load_job", "problems", "submittable_yaml"]


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
