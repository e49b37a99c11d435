"""Validation of a job spec: every problem reported at once, each with its field path.

Pure functions over models. The same checks run in `bacalhau job validate` (no server), in `job run`
before sending, and on submit; the numeric bounds (`limit_problems`, see models/limits.py) also run when
the orchestrator evaluates or recovers a stored job, so a spec stored before the bounds is failed, not run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from bacalhau.models import constants as c

# Defined with the other type names (pydantic-free, for the CLI); re-exported where they always were.
from bacalhau.models.constants import NETWORK_TYPES as NETWORK_TYPES
from bacalhau.models.constants import canonical_type as canonical_type
from bacalhau.models.errors import FieldError, ValidationFailed
from bacalhau.models.job import InputSource, Job, NetworkConfig, SpecConfig, Task
from bacalhau.models.limits import CONFIG_PREFIX, DEFAULT_LIMITS, LIMIT_KEYS, MAX_PORT, JobLimits, show_number
from bacalhau.models.resources import parse_bytes, parse_cpu, parse_gpu
from bacalhau.models.retry import DEFAULT_RETRY
from bacalhau.models.retry import META_KEYS as RETRY_META_KEYS
from bacalhau.models.task_path import resolve_task_path

KNOWN_ENGINES = (c.ENGINE_DOCKER, c.ENGINE_WASM, c.ENGINE_NOOP)
KNOWN_PUBLISHERS = (c.PUBLISHER_NOOP, c.PUBLISHER_LOCAL, c.PUBLISHER_S3, c.PUBLISHER_IPFS, c.PUBLISHER_S3_MANAGED)
KNOWN_STORAGES = (
    c.STORAGE_INLINE,
    c.STORAGE_LOCAL,
    c.STORAGE_LOCAL_DIRECTORY,
    c.STORAGE_URL,
    c.STORAGE_S3,
    c.STORAGE_S3_PRESIGNED,
    c.STORAGE_IPFS,
)
CONSTRAINT_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")

_ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_DOMAIN_RE = re.compile(r"^\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")

_REQUIRED_SOURCE_PARAMS = {
    c.STORAGE_INLINE: "URL",
    c.STORAGE_LOCAL: "SourcePath",
    c.STORAGE_LOCAL_DIRECTORY: "SourcePath",
    c.STORAGE_URL: "URL",
    c.STORAGE_S3: "Bucket",
    c.STORAGE_S3_PRESIGNED: "PreSignedURL",
    c.STORAGE_IPFS: "CID",
}


def unsafe_path_reason(path: str) -> str | None:
    """Why a result path is unusable (relative, as Bacalhau's `pkg/models/path.go` refuses too, or with
    `..`), or None when it is fine. Input targets follow `task_path` instead: relative ones are fine."""
    if not path.startswith("/"):
        return "must be an absolute path"
    if "\x00" in path:
        return "must not contain NUL characters"
    if any(part == ".." for part in path.split("/")):
        return "must not contain '..' components"
    return None


def validate_job(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> list[FieldError]:
    """Return every problem with a (normalised) job, bounds included; an empty list means it is valid."""
    errs: list[FieldError] = []

    def add(path: str, msg: str) -> None:
        errs.append(FieldError(path, msg))

    if not job.type:
        add("Type", "missing job type; must be one of batch, ops, service, daemon")
    elif job.type not in c.JOB_TYPES:
        add("Type", f"invalid job type {job.type!r}; must be one of batch, ops, service, daemon")
    if "\x00" in job.name:
        add("Name", "must not contain NUL characters")
    if job.priority < 0:
        add("Priority", "must not be negative")
    count = job.effective_count
    if count < 0:
        add("Count", "must not be negative")
    elif job.type in (c.JOB_TYPE_BATCH, c.JOB_TYPE_SERVICE) and count == 0:
        add("Count", "must be at least 1 (a job with Count 0 would run nothing)")
    elif job.type in (c.JOB_TYPE_OPS, c.JOB_TYPE_DAEMON) and count > 1:
        add("Count", f"{job.type} jobs cannot specify count > 1 (they run once on every matching node)")

    for i, req in enumerate(job.constraints):
        path = f"Constraints[{i}]"
        if not req.key.strip():
            add(f"{path}.Key", "required")
        op = req.operator.strip().lower()
        if op not in CONSTRAINT_OPERATORS:
            add(f"{path}.Operator", f"unknown operator {req.operator!r}; valid: {', '.join(CONSTRAINT_OPERATORS)}")
        elif op in ("in", "notin") and not req.values:
            add(f"{path}.Values", f"operator {op!r} needs at least one value")
        elif op in ("exists", "!") and req.values:
            add(f"{path}.Values", f"operator {op!r} takes no values")
        elif op not in ("in", "notin", "exists", "!") and len(req.values) != 1:
            add(f"{path}.Values", f"operator {op!r} needs exactly one value")

    for key in (k for k in RETRY_META_KEYS if k in job.meta):  # the job's retry policy (models/retry.py)
        try:
            DEFAULT_RETRY.for_job({key: job.meta[key]})
        except ValueError as exc:
            add(f"Meta[{key}]", str(exc).split(": ", 1)[-1])

    reuse = job.meta.get(c.META_RESULTS_REUSE)
    if reuse is not None and reuse.strip().lower() not in c.META_BOOLEAN_TRUE + c.META_BOOLEAN_FALSE:
        add(f"Meta[{c.META_RESULTS_REUSE}]", f"must be true or false, got {reuse!r}")

    if not job.tasks:
        add("Tasks", "missing job tasks; a job needs exactly one task")
    if size_problems(job, limits):
        # Too big to look at entry by entry: checking (and reporting on) each of 10,000 inputs is the
        # very work the bound is there to refuse. The bounds alone say what to fix first.
        return sorted(errs + limit_problems(job, limits), key=lambda e: _field_order(e.path))
    for i, task in enumerate(job.tasks[:1]):
        errs.extend(_validate_task(task, f"Tasks[{i}]"))
    errs.extend(limit_problems(job, limits))
    return sorted(errs, key=lambda e: _field_order(e.path))


def ensure_valid(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> None:
    """Raise ValidationFailed listing every problem, or return quietly."""
    errs = validate_job(job, limits)
    if errs:
        raise ValidationFailed(errs, hint="fix the fields listed above and submit again")


def limit_problems(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> list[FieldError]:
    """Every number of `job` above its bound (models/limits.py), each naming the value, the limit and the
    config key that sets it. Never raises, whatever the job holds: it also guards jobs read back from a
    store, which no validation may have seen. Values that do not parse are `validate_job`'s to report."""
    errs: list[FieldError] = []

    def over(path: str, value: float, limit: float, field: str, unit: str = "") -> None:
        if value > limit:
            errs.append(
                FieldError(
                    path,
                    f"{show_number(value)}{unit} exceeds the limit of {show_number(limit)}{unit}"
                    f" ({CONFIG_PREFIX}{LIMIT_KEYS[field]})",
                )
            )

    errs.extend(size_problems(job, limits))
    over("Priority", job.priority, limits.max_priority, "max_priority")
    if job.type not in (c.JOB_TYPE_OPS, c.JOB_TYPE_DAEMON):  # those run once per node: Count is not work
        over("Count", job.effective_count, limits.max_count, "max_count")
    for i, task in enumerate(job.tasks[:1]):
        path = f"Tasks[{i}]"
        t = task.timeouts
        over(f"{path}.Timeouts.ExecutionTimeout", t.execution_timeout, limits.max_execution_timeout_s,
             "max_execution_timeout_s", "s")
        over(f"{path}.Timeouts.QueueTimeout", t.queue_timeout, limits.max_queue_timeout_s, "max_queue_timeout_s", "s")
        over(f"{path}.Timeouts.TotalTimeout", t.total_timeout, limits.max_total_timeout_s, "max_total_timeout_s", "s")
        resources: tuple[tuple[str, Callable[[str], float], float, str, str], ...] = (
            ("CPU", parse_cpu, limits.max_cpu_cores, "max_cpu_cores", " cores"),
            ("Memory", parse_bytes, limits.max_memory_bytes, "max_memory_bytes", " bytes"),
            ("Disk", parse_bytes, limits.max_disk_bytes, "max_disk_bytes", " bytes"),
            ("GPU", parse_gpu, limits.max_gpus, "max_gpus", " GPUs"),
        )
        for name, parser, limit, field, unit in resources:
            try:
                amount = parser(getattr(task.resources, name.lower()))
            except ValueError:
                continue
            over(f"{path}.Resources.{name}", amount, limit, field, unit)
        for j, port in enumerate(task.network.ports):
            for attr, value in (("Static", port.static), ("Target", port.target)):
                if not 0 <= value <= MAX_PORT:
                    errs.append(FieldError(f"{path}.Network.Ports[{j}].{attr}",
                                           f"{show_number(value)} is not a port number (0 to {MAX_PORT})"))
    return errs


def size_problems(job: Job, limits: JobLimits = DEFAULT_LIMITS) -> list[FieldError]:
    """Every list or map of `job` holding more entries than its bound, and inline inputs carrying more
    bytes than theirs (models/limits.py), each naming the count, the limit and the config key. Cheap:
    it counts, it never looks inside an entry (but the inline URLs' lengths)."""
    errs: list[FieldError] = []

    def too_many(path: str, count: int, limit: int, field: str, what: str = "entries") -> None:
        if count > limit:
            errs.append(
                FieldError(path, f"{count} {what} exceed the limit of {limit} ({CONFIG_PREFIX}{LIMIT_KEYS[field]})")
            )

    too_many("Constraints", len(job.constraints), limits.max_constraints, "max_constraints")
    # Meta keys under bacalhau.org/ are the system's own (submit removes a user's, then adds its own).
    too_many("Meta", _user_meta_count(job.meta), limits.max_meta_entries, "max_meta_entries")
    too_many("Labels", len(job.labels), limits.max_labels, "max_labels")
    for i, task in enumerate(job.tasks[:1]):
        path = f"Tasks[{i}]"
        too_many(f"{path}.InputSources", len(task.input_sources), limits.max_input_sources, "max_input_sources")
        too_many(f"{path}.ResultPaths", len(task.result_paths), limits.max_result_paths, "max_result_paths")
        too_many(f"{path}.Env", len(task.env), limits.max_env_entries, "max_env_entries")
        docker_env = task.engine.param("EnvironmentVariables") if task.engine.is_type(c.ENGINE_DOCKER) else None
        if isinstance(docker_env, list):
            too_many(f"{path}.Engine.Params.EnvironmentVariables", len(docker_env), limits.max_env_entries,
                     "max_env_entries")
        too_many(f"{path}.Meta", _user_meta_count(task.meta), limits.max_meta_entries, "max_meta_entries")
        inline = inline_bytes(task.input_sources)
        if inline > limits.max_inline_bytes:
            errs.append(
                FieldError(
                    f"{path}.InputSources",
                    f"inline data of {inline} bytes exceeds the limit of {limits.max_inline_bytes} bytes"
                    f" ({CONFIG_PREFIX}{LIMIT_KEYS['max_inline_bytes']})",
                )
            )
    return errs


def inline_bytes(sources: Iterable[InputSource]) -> int:
    """The bytes the `inline` inputs' `data:` URLs (Source.Params.URL) take in the spec, summed."""
    total = 0
    for src in sources:
        if src.source.is_type(c.STORAGE_INLINE):
            url = src.source.param("URL")
            if isinstance(url, str):
                # The URL's length in UTF-8 without encoding it: data URLs are ASCII but for a mistake.
                total += len(url) if url.isascii() else len(url.encode("utf-8", "surrogatepass"))
    return total


def _user_meta_count(meta: dict[str, str]) -> int:
    return sum(1 for key in meta if not key.startswith(c.META_PREFIX))


def over_limits_message(problems: list[FieldError]) -> str:
    """Why a stored job beyond JobAdmissionControl.Limits is failed instead of run."""
    return "Job failed because it exceeds this orchestrator's job limits: " + "; ".join(str(p) for p in problems)


# Problems are listed in the order of the spec's fields, so bounds sit beside the other checks of a field.
_TOP_ORDER = ("Type", "Name", "Priority", "Count", "Constraints", "Tasks")


def _field_order(path: str) -> int:
    head = path.split(".", 1)[0].split("[", 1)[0]
    return _TOP_ORDER.index(head) if head in _TOP_ORDER else len(_TOP_ORDER)


def _validate_task(task: Task, path: str) -> list[FieldError]:
    errs: list[FieldError] = []

    def add(sub: str, msg: str) -> None:
        errs.append(FieldError(f"{path}.{sub}", msg))

    if not task.name.strip():
        add("Name", "required")
    elif "\x00" in task.name:
        add("Name", "must not contain NUL characters")

    errs.extend(_validate_engine(task.engine, f"{path}.Engine"))

    if task.publisher.type and canonical_type(task.publisher.type, KNOWN_PUBLISHERS) is None:
        add("Publisher.Type", f"unknown publisher type {task.publisher.type!r}; supported: {', '.join(KNOWN_PUBLISHERS)}")
    if task.result_paths and not task.publisher.type:
        add("Publisher", "publisher must be set if result paths are set")

    for name, value in task.env.items():
        if not _ENV_NAME_RE.match(name):
            add(f"Env.{name}", "names must be UPPERCASE letters, digits and _, starting with a letter")
        elif name.startswith("BACALHAU_"):
            add(f"Env.{name}", "names must not start with BACALHAU_ (reserved for the system)")
        if value == "":
            add(f"Env.{name}", "value must not be empty")

    targets: dict[str, tuple[int, str]] = {}  # place in the task -> (first input there, its Target)
    aliases: dict[str, int] = {}
    for i, src in enumerate(task.input_sources):
        errs.extend(_validate_input(src, f"{path}.InputSources[{i}]"))
        target = src.target.strip()
        place = _task_place(target)
        if place:
            # `main.wasm` and `/main.wasm` are one place: two inputs there would hide each other.
            if place in targets:
                first, written = targets[place]
                where = f"also InputSources[{first}]" + ("" if written == target else f"; both at {place}")
                add(f"InputSources[{i}].Target", f"duplicate target {target!r} ({where})")
            targets.setdefault(place, (i, target))
        alias = src.alias.strip()
        if alias:
            if alias in aliases:
                add(f"InputSources[{i}].Alias", f"duplicate alias {alias!r} (also InputSources[{aliases[alias]}])")
            aliases.setdefault(alias, i)

    names: set[str] = set()
    paths: set[str] = set()
    for i, rp in enumerate(task.result_paths):
        sub = f"ResultPaths[{i}]"
        if not rp.name.strip():
            add(f"{sub}.Name", "required")
        elif rp.name in names:
            add(f"{sub}.Name", f"duplicate result name {rp.name!r}")
        elif "/" in rp.name or rp.name in (".", ".."):
            add(f"{sub}.Name", "must be a plain name without '/'")
        names.add(rp.name)
        if not rp.path.strip():
            add(f"{sub}.Path", "required")
        else:
            reason = unsafe_path_reason(rp.path)
            if reason:
                add(f"{sub}.Path", reason)
            elif rp.path in paths:
                add(f"{sub}.Path", f"duplicate result path {rp.path!r}")
        paths.add(rp.path)

    res = task.resources
    parsers: tuple[tuple[str, Callable[[str], float]], ...] = (
        ("CPU", parse_cpu),
        ("Memory", parse_bytes),
        ("Disk", parse_bytes),
        ("GPU", parse_gpu),
    )
    for field, parser in parsers:  # bounds: limit_problems
        try:
            parser(getattr(res, field.lower()))
        except ValueError as exc:
            add(f"Resources.{field}", str(exc))

    errs.extend(_validate_network(task.network, f"{path}.Network"))

    t = task.timeouts
    for field in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"):
        if getattr(t, _snake(field)) < 0:
            add(f"Timeouts.{field}", "must not be negative")
    if t.total_timeout > 0 and t.execution_timeout + t.queue_timeout > t.total_timeout:
        add("Timeouts", "ExecutionTimeout + QueueTimeout must not exceed TotalTimeout")
    return errs


def _validate_engine(engine: SpecConfig, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not engine.type:
        return [FieldError(f"{path}.Type", f"missing spec type; supported engines: {', '.join(KNOWN_ENGINES)}")]
    kind = canonical_type(engine.type, KNOWN_ENGINES)
    if kind is None:
        return [FieldError(f"{path}.Type", f"unknown engine type {engine.type!r}; supported: {', '.join(KNOWN_ENGINES)}")]
    if kind == c.ENGINE_WASM:
        entry = engine.param("EntryModule")
        if not isinstance(entry, str) or not entry.strip():
            errs.append(FieldError(f"{path}.Params.EntryModule", "required"))
        entrypoint = engine.param("Entrypoint")
        if entrypoint is not None and not isinstance(entrypoint, str):
            errs.append(FieldError(f"{path}.Params.Entrypoint", "must be a string"))
        for key in ("Parameters", "ImportModules"):
            errs.extend(_string_list(engine.param(key), f"{path}.Params.{key}"))
    elif kind == c.ENGINE_DOCKER:
        image = engine.param("Image")
        if not isinstance(image, str) or not image.strip():
            errs.append(FieldError(f"{path}.Params.Image", "'Image' cannot be empty"))
        for key in ("Entrypoint", "Parameters", "EnvironmentVariables"):
            errs.extend(_string_list(engine.param(key), f"{path}.Params.{key}"))
        workdir = engine.param("WorkingDirectory")
        if workdir and (not isinstance(workdir, str) or not workdir.startswith("/")):
            errs.append(FieldError(f"{path}.Params.WorkingDirectory", "must be an absolute path"))
        for i, item in enumerate(engine.param("EnvironmentVariables") or []):
            if isinstance(item, str) and item.split("=", 1)[0].startswith("BACALHAU_"):
                errs.append(FieldError(f"{path}.Params.EnvironmentVariables[{i}]", "names must not start with BACALHAU_"))
    return errs


def _string_list(value: object, path: str) -> list[FieldError]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [FieldError(path, "must be a list of strings")]
    return []


def _validate_input(src: InputSource, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not src.source.type:
        errs.append(FieldError(f"{path}.Source.Type", f"missing source type; supported: {', '.join(KNOWN_STORAGES)}"))
    else:
        kind = canonical_type(src.source.type, KNOWN_STORAGES)
        if kind is None:
            errs.append(
                FieldError(
                    f"{path}.Source.Type",
                    f"unknown storage type {src.source.type!r}; supported: {', '.join(KNOWN_STORAGES)}",
                )
            )
        else:
            required = _REQUIRED_SOURCE_PARAMS.get(kind)
            value = src.source.param(required) if required else None
            if required and (not isinstance(value, str) or not value.strip()):
                errs.append(FieldError(f"{path}.Source.Params.{required}", "required"))
    target = src.target.strip()
    if not target:
        errs.append(FieldError(f"{path}.Target", "input source is missing a target"))
    else:
        # Relative targets are Bacalhau's usual form (`Target: main.wasm`): they start at the task's root.
        try:
            place = resolve_task_path(target)
        except ValueError as exc:
            errs.append(FieldError(f"{path}.Target", str(exc)))
        else:
            if place == "/":
                errs.append(FieldError(f"{path}.Target", f"{target!r} is the root folder; mount the input below it"))
    return errs


def _validate_network(net: NetworkConfig, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    kind = canonical_type(net.type or "Default", NETWORK_TYPES)
    if kind is None:
        return [FieldError(f"{path}.Type", f"unknown network type {net.type!r}; valid: {', '.join(NETWORK_TYPES)}")]
    if net.domains and kind != "HTTP":
        errs.append(FieldError(f"{path}.Domains", "domains can only be set with network type HTTP"))
    for i, domain in enumerate(net.domains):
        if not _DOMAIN_RE.match(domain):
            errs.append(FieldError(f"{path}.Domains[{i}]", f"{domain!r} is not a valid domain name"))
    if net.ports and kind not in ("Host", "Bridge", "Full"):
        errs.append(FieldError(f"{path}.Ports", "ports can only be set with network type Host, Bridge or Full"))
    return errs


def _task_place(target: str) -> str:
    """Where a (non-blank, non-escaping) target lands in the task, or "" (reported elsewhere)."""
    if not target:
        return ""
    try:
        return resolve_task_path(target)
    except ValueError:
        return ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
