"""The jobs table: filters (state, type, labels, namespace), paging by the API's tokens, and a table
fragment that reloads itself every 2 s, so states change without a reload of the page.

    GET /jobs          the page (filters + the first table, rendered at once)
    GET /jobs/table    the table alone (what the page polls), same query parameters

"done/total" asks the API for each listed job's executions, a few at a time: PAGE_SIZE jobs make at
most PAGE_SIZE small requests, however many jobs the store holds (bench/webui_jobs.py measures it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bacalhau.client import AsyncClient
from bacalhau.models import constants as c
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.webui.backend import api
from bacalhau.webui.render import TERMINAL_EXECUTION, page

PAGE_SIZE = 25
_CONCURRENT_LOOKUPS = 8
STATES = [s.name for s in JobStateType if s is not JobStateType.Undefined]
DISCARDED = {int(s) for s in (ExecutionStateType.AskForBidRejected, ExecutionStateType.BidRejected,
                              ExecutionStateType.Cancelled)}


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


async def _progress(client: AsyncClient, job: dict[str, Any], gate: asyncio.Semaphore) -> tuple[int, int]:
    async with gate:
        executions = (await client.job_executions(job["ID"], namespace=job.get("Namespace", ""))).items
    live = [e for e in executions if int(e.compute_state.state_type) not in DISCARDED]
    done = sum(1 for e in live if int(e.compute_state.state_type) == int(ExecutionStateType.Completed))
    total = int(job.get("Count") or 0) if job.get("Type") in (c.JOB_TYPE_BATCH, c.JOB_TYPE_SERVICE) else len(live)
    finished = sum(1 for e in live if int(e.compute_state.state_type) in TERMINAL_EXECUTION)
    return done, max(total, finished)


async def _table_context(request: Request) -> dict[str, Any]:
    filters = JobFilters.of(request)
    async with api(request) as client:
        listed = await client.list_jobs(
            limit=PAGE_SIZE, next_token=filters.token, labels=[filters.labels] if filters.labels else [],
            namespace=filters.namespace, states=[filters.state] if filters.state else [], job_type=filters.job_type,
        )
        jobs = [job.to_wire() for job in listed.items]
        gate = asyncio.Semaphore(_CONCURRENT_LOOKUPS)
        progress = await asyncio.gather(*(_progress(client, job, gate) for job in jobs))
    return {"jobs": list(zip(jobs, progress, strict=True)), "filters": filters, "next_token": listed.next_token,
            "states": STATES, "types": c.JOB_TYPES}


async def jobs(request: Request) -> HTMLResponse:
    """The jobs page."""
    return page(request, "jobs.html", **await _table_context(request))


async def jobs_table(request: Request) -> HTMLResponse:
    """The jobs table fragment (polled)."""
    return page(request, "jobs_table.html", **await _table_context(request))


routes = [Route("/jobs", jobs), Route("/jobs/table", jobs_table)]
