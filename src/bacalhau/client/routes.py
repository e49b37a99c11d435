"""The /api/v1 routes as data: each builder returns the request to send and the model that decodes it.

Building requests without I/O lets the sync and async clients share everything but the sending,
and keeps every route name and query parameter (CONTRACT.md section 3) in one place.

The response models are named, not imported: the CLI's fast paths (`job list`, `wasm run`) read the
JSON themselves and must not pay for pydantic (~150 ms with our models), so the models are imported
by `decode`, and request bodies are built from models inside the builders that need them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

if TYPE_CHECKING:
    from bacalhau.models.job import Job

ORCHESTRATOR = "/api/v1/orchestrator"
AGENT = "/api/v1/agent"
Params = Sequence[tuple[str, str]]
# (module, class) of a response model: imported when a response is decoded, never before.
ModelRef = tuple[str, str]
_API = "bacalhau.models.api"
_NODE = "bacalhau.models.node"


def _api(name: str) -> ModelRef:
    return (_API, name)


# NamedTuples rather than dataclasses for the request records: as immutable, and ~10x cheaper to create
# at import, which every CLI command pays.
class Call(NamedTuple):
    """One HTTP request and the model its 2xx body decodes into (None means a raw JSON value)."""

    method: str
    path: str
    model: ModelRef | None
    params: Params = ()
    body: dict[str, Any] | None = None


def query(**values: Any) -> list[tuple[str, str]]:
    """Query parameters, leaving out empty values; iterables repeat the key (labels=a&labels=b)."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        key = name.replace("__", "-")
        if value is None or value == "" or value is False or (isinstance(value, int) and value == 0):
            continue
        if isinstance(value, bool):
            out.append((key, "true"))
        elif isinstance(value, str | int):
            out.append((key, str(value)))
        elif isinstance(value, Iterable):
            out.extend((key, str(item)) for item in value if str(item))
    return out


def job_path(job_id: str, suffix: str = "") -> str:
    """Path of one job; the ID (or name) is quoted so names with spaces or slashes stay one segment."""
    return f"{ORCHESTRATOR}/jobs/{quote(job_id, safe='')}{suffix}"


def put_job(job: Job | Mapping[str, Any], *, force: bool, namespace: str = "") -> Call:
    """A job model, or a plain dict in Bacalhau's wire shape (keys matched case-insensitively)."""
    from bacalhau.models import api
    from bacalhau.models.job import Job

    model = job if isinstance(job, Job) else Job.from_user(dict(job))
    body = api.PutJobRequest(Job=model, Force=force).to_wire()
    return Call("PUT", f"{ORCHESTRATOR}/jobs", _api("PutJobResponse"), query(namespace=namespace), body)


def put_job_spec(spec: Mapping[str, Any], *, force: bool, namespace: str = "") -> Call:
    """A job already in Bacalhau's wire shape (canonical key names), sent as it is: the server parses
    and validates it exactly as it would the model's dump, and no model is imported to build it."""
    body = {"Job": dict(spec), "Force": force}
    return Call("PUT", f"{ORCHESTRATOR}/jobs", _api("PutJobResponse"), query(namespace=namespace), body)


def diff_job(job: Job | Mapping[str, Any]) -> Call:
    """Compare a spec with the stored job of the same Name (its Namespace says where); stores nothing."""
    from bacalhau.models import api
    from bacalhau.models.job import Job

    model = job if isinstance(job, Job) else Job.from_user(dict(job))
    body = api.DiffJobRequest(Job=model).to_wire()
    return Call("PUT", f"{ORCHESTRATOR}/jobs/diff", _api("DiffJobResponse"), body=body)


def get_job(
    job_id: str, *, include: Iterable[str], namespace: str, job_version: int, limit: int, wait_ms: int = 0,
    after_seq: int = 0, gather_ms: int = 0,
) -> Call:
    """`wait_ms`/`after_seq` (ours): hold the answer until the job has a history event with a SeqNum above
    `after_seq`, or `wait_ms` pass; `gather_ms` (ours): then hold it up to that long for the events that
    follow (a job that ends is answered at once). A server that does not know them (Go's) answers at once."""
    params = query(
        namespace=namespace, job_version=job_version, include=",".join(include), limit=limit, wait_ms=wait_ms,
        after_seq=after_seq, gather_ms=gather_ms if wait_ms else 0,
    )
    return Call("GET", job_path(job_id), _api("GetJobResponse"), params)


def list_jobs(
    *, limit: int, next_token: str, order_by: str, reverse: bool, labels: Iterable[str], namespace: str,
    states: Iterable[str] = (), job_type: str = "",
) -> Call:
    """A page of jobs; `labels` are selectors such as `env=prod`, `states` and `job_type` are our own filters."""
    params = query(
        namespace=namespace, limit=limit, next_token=next_token, order_by=order_by, reverse=reverse, labels=labels,
        state=",".join(states), type=job_type,
    )
    return Call("GET", f"{ORCHESTRATOR}/jobs", _api("ListJobsResponse"), params)


def node_executions(node_id: str, *, limit: int) -> Call:
    """Ours: a node's newest executions, without their job specs (a raw JSON object)."""
    return Call("GET", f"{ORCHESTRATOR}/nodes/{quote(node_id, safe='')}/executions", None, query(limit=limit))


def jobs_progress(job_ids: list[str]) -> Call:
    """Ours: the current executions of a page of jobs, counted by state (a raw JSON object)."""
    return Call("GET", f"{ORCHESTRATOR}/jobs-progress", None, query(ids=",".join(job_ids)))


def jobs_summary(*, minutes: int) -> Call:
    """Ours: jobs by state and completions per minute (a raw JSON object)."""
    return Call("GET", f"{ORCHESTRATOR}/jobs-summary", None, query(minutes=minutes))


def stop_job(job_id: str, *, reason: str, namespace: str) -> Call:
    """Stop a job, saying why in `reason`."""
    from bacalhau.models import api

    body = api.StopJobRequest(reason=reason).to_wire()
    return Call("DELETE", job_path(job_id), _api("StopJobResponse"), query(namespace=namespace), body)


def rerun_job(job_id: str, *, version: int, reason: str, namespace: str) -> Call:
    """Run a job (its latest version, or `version`) again as a new version."""
    from bacalhau.models import api

    body = api.RerunJobRequest(JobVersion=version, Reason=reason).to_wire()
    return Call("PUT", job_path(job_id, "/rerun"), _api("RerunJobResponse"), query(namespace=namespace), body)


class HistoryFilter(NamedTuple):
    """Query of `GET /jobs/:id/history`; `since` is Unix seconds, `event_type` all|job|execution."""

    namespace: str = ""
    limit: int = 0
    next_token: str = ""
    order_by: str = ""
    reverse: bool = False
    job_version: int = 0
    all_job_versions: bool = False
    since: int = 0
    event_type: str = ""
    execution_id: str = ""


class ExecutionsFilter(NamedTuple):
    """Query of `GET /jobs/:id/executions`; `order_by` is created_at or modified_at."""

    namespace: str = ""
    limit: int = 0
    next_token: str = ""
    order_by: str = ""
    reverse: bool = False
    job_version: int = 0
    all_job_versions: bool = False


def job_history(job_id: str, filters: HistoryFilter) -> Call:
    """A page of a job's history events."""
    return Call("GET", job_path(job_id, "/history"), _api("ListHistoryResponse"), query(**filters._asdict()))


def job_executions(job_id: str, filters: ExecutionsFilter) -> Call:
    """A page of a job's executions."""
    return Call("GET", job_path(job_id, "/executions"), _api("ListExecutionsResponse"), query(**filters._asdict()))


def job_results(job_id: str, *, namespace: str) -> Call:
    """The published results of a job."""
    return Call("GET", job_path(job_id, "/results"), _api("ListResultsResponse"), query(namespace=namespace))


def job_versions(job_id: str, *, namespace: str) -> Call:
    """The stored versions of a job."""
    return Call("GET", job_path(job_id, "/versions"), _api("ListJobsResponse"), query(namespace=namespace))


def list_nodes(
    *,
    limit: int,
    next_token: str,
    order_by: str,
    reverse: bool,
    labels: Iterable[str],
    filter_approval: str,
    filter_status: str,
) -> Call:
    """A page of known nodes, filtered by labels, approval and connection status."""
    params = query(
        limit=limit,
        next_token=next_token,
        order_by=order_by,
        reverse=reverse,
        labels=labels,
        filter__approval=filter_approval,
        filter__status=filter_status,
    )
    return Call("GET", f"{ORCHESTRATOR}/nodes", _api("ListNodesResponse"), params)


def get_node(node_id: str) -> Call:
    """One node by ID (or unique prefix)."""
    return Call("GET", f"{ORCHESTRATOR}/nodes/{quote(node_id, safe='')}", _api("GetNodeResponse"))


def update_node(node_id: str, *, action: str, message: str, deadline: str = "") -> Call:
    """Approve, reject, delete, drain or uncordon a node; `deadline` is for drain only."""
    from bacalhau.models import api

    body = api.PutNodeRequest(Action=action, Message=message, NodeID=node_id, Deadline=deadline).to_wire()
    if not deadline:
        del body["Deadline"]  # ours: the other actions send exactly Bacalhau's body
    return Call("PUT", f"{ORCHESTRATOR}/nodes/{quote(node_id, safe='')}", _api("PutNodeResponse"), body=body)


def alive() -> Call:
    """`{Status: OK}` when the node answers."""
    return Call("GET", f"{AGENT}/alive", _api("AliveResponse"))


def version() -> Call:
    """The server's build version."""
    return Call("GET", f"{AGENT}/version", (_NODE, "BuildVersionInfo"))


def node_info() -> Call:
    """The answering node's NodeInfo."""
    return Call("GET", f"{AGENT}/node", (_NODE, "NodeInfo"))


def agent_config() -> Call:
    """The node's effective (redacted) configuration (a raw JSON object)."""
    return Call("GET", f"{AGENT}/config", None)


def audit_log(*, limit: int = 100, next_token: str = "", since_s: int = 0, principal: str = "",
              refused_only: bool = False) -> Call:
    """A page of the audit log, newest first (a raw JSON object); `refused_only`: 401/403 only."""
    params: list[tuple[str, str]] = [("limit", str(limit))]
    if next_token:
        params.append(("next_token", next_token))
    if since_s:
        params.append(("since", str(since_s)))
    if principal:
        params.append(("principal", principal))
    if refused_only:
        params.append(("outcome", "refused"))
    return Call("GET", f"{ORCHESTRATOR}/audit", None, params=params)


def auth_config() -> Call:
    """`{Version, Config}`: how the node's SSO is set up (a raw JSON object)."""
    return Call("GET", f"{AGENT}/authconfig", None)


def decode(call: Call, payload: Any) -> Any:
    """Decode a 2xx JSON payload into the call's model (or return it raw when there is none)."""
    if call.model is None:
        return payload
    module, name = call.model
    model = getattr(importlib.import_module(module), name)
    return model.model_validate(payload if payload is not None else {})
