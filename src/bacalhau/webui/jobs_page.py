"""The jobs table: filters (state, type, labels, namespace), paging by the API's tokens, and a table
fragment that reloads itself every 2 s, so states change without a reload of the page.

    GET /jobs          the page (filters + the first table, rendered at once)
    GET /jobs/table    the table alone (what the page polls), same query parameters

"done/total" comes from one more request for the whole page (GET /jobs-progress, ours: executions
counted by state in one query), whatever the number of jobs in the store (bench/webui_jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bacalhau.models import constants as c
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.webui.backend import api
from bacalhau.webui.render import page

PAGE_SIZE = 25
STATES = [s.name for s in JobStateType if s is not JobStateType.Undefined]
DISCARDED = {s.name for s in (ExecutionStateType.AskForBidRejected, ExecutionStateType.BidRejected,
                              ExecutionStateType.Cancelled)}
TERMINAL = {s.name for s in ExecutionStateType if s.is_terminal}


@dataclass(frozen=True)
class JobFilters:
    """What the table shows: the query string of /jobs and /jobs/table."""

    state: str = ""
    job_type: str = ""
    labels: str = ""
    namespace: str = ""
    token: str = ""

    @classmethod
    def of(cls, request: Request) -> JobFilters:
        """The filters in the request's query string (unknown values are left to the API to refuse)."""
        q = request.query_params
        return cls(q.get("state", ""), q.get("type", ""), q.get("labels", "").strip(), q.get("namespace", "").strip(),
                   q.get("next_token", ""))

    def query(self, **changes: str) -> str:
        """The query string of these filters, with `changes`."""
        values = {"state": self.state, "type": self.job_type, "labels": self.labels, "namespace": self.namespace,
                  "next_token": self.token, **changes}
        return urlencode({k: v for k, v in values.items() if v})


def _progress(job: dict[str, Any], by_state: dict[str, int]) -> tuple[int, int]:
    """(done, total) for the table: completed executions, of the job's Count (batch, service) or of its
    executions that were not discarded (ops, daemon: one per node)."""
    live = {name: n for name, n in by_state.items() if name not in DISCARDED}
    done = live.get(ExecutionStateType.Completed.name, 0)
    finished = sum(n for name, n in live.items() if name in TERMINAL)
    total = int(job.get("Count") or 0) if job.get("Type") in (c.JOB_TYPE_BATCH, c.JOB_TYPE_SERVICE) else sum(live.values())
    return done, max(total, finished)


async def _table_context(request: Request) -> dict[str, Any]:
    filters = JobFilters.of(request)
    async with api(request) as client:
        listed = await client.list_jobs(
            limit=PAGE_SIZE, next_token=filters.token, labels=[filters.labels] if filters.labels else [],
            namespace=filters.namespace, states=[filters.state] if filters.state else [], job_type=filters.job_type,
        )
        jobs = [job.to_wire() for job in listed.items]
        counts = await client.jobs_progress([job["ID"] for job in jobs]) if jobs else {}
    progress = [_progress(job, counts.get(job["ID"], {})) for job in jobs]
    return {"jobs": list(zip(jobs, progress, strict=True)), "filters": filters, "next_token": listed.next_token,
            "states": STATES, "types": c.JOB_TYPES}


async def jobs(request: Request) -> HTMLResponse:
    """The jobs page; a filter the API refuses is told above the form, which stays to be corrected."""
    try:
        context = await _table_context(request)
    except BacalhauError as exc:
        if exc.code not in (ErrorCode.BadRequest, ErrorCode.ValidationError):
            raise
        context = {"jobs": [], "filters": JobFilters.of(request), "next_token": "", "states": STATES,
                   "types": c.JOB_TYPES, "error": exc.message, "hint": exc.hint}
        return page(request, "jobs.html", status_code=400, **context)
    return page(request, "jobs.html", **context)


async def jobs_table(request: Request) -> HTMLResponse:
    """The jobs table fragment (polled)."""
    return page(request, "jobs_table.html", **await _table_context(request))


routes = [Route("/jobs", jobs), Route("/jobs/table", jobs_table)]
