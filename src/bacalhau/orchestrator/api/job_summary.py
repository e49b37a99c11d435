"""Ours, for the web UI and dashboards: jobs filtered by state and type, and the fleet's jobs at a glance.

    GET /api/v1/orchestrator/jobs?state=Running,Queued&type=batch    (added to Bacalhau's list route)
    GET /api/v1/orchestrator/jobs-progress?ids=j-1,j-2         (at most MAX_PROGRESS_IDS)
        {"Items": {"j-1": {"Completed": 2, "Running": 1}, ...}}   current version's executions by state
    GET /api/v1/orchestrator/jobs-summary?minutes=60
        {"Total": 1234, "ByState": {"Running": 3, "Completed": 1200, ...},
         "CompletedPerMinute": [{"Minute": "2026-12-07T01:00:00Z", "Count": 4}, ...]}   oldest first

States are Bacalhau's names, case-insensitive; an unknown one is a 400 naming the valid ones. The
summary needs `read:job` like the job list (its path starts with the jobs prefix) and counts from an
index, so it costs the same with a million jobs as with ten.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bacalhau.models import constants as c
from bacalhau.models.clock import rfc3339_nano
from bacalhau.models.errors import BadRequestError
from bacalhau.models.state import ExecutionStateType, JobStateType
from bacalhau.orchestrator.api.context import orchestrator
from bacalhau.orchestrator.api.openapi import errors, inputs, integer, one_of, query
from bacalhau.orchestrator.api.params import query_int, query_str
from bacalhau.orchestrator.service import Orchestrator

router = APIRouter(prefix="/api/v1/orchestrator", tags=["orchestrator"])

MAX_MINUTES = 24 * 60
MAX_PROGRESS_IDS = 100
_MINUTE_NS = 60 * 1_000_000_000


_STATE_NAMES = "|".join(s.name for s in JobStateType if s is not JobStateType.Undefined)
# What the OpenAPI document promises (any case is accepted; the document lists the canonical spelling).
STATE_FILTER = query("state", "ours: only jobs in these states (comma-separated names, e.g. Running,Queued)",
                     {"type": "string", "pattern": f"^$|^({_STATE_NAMES})(,({_STATE_NAMES}))*$"})
TYPE_FILTER = query("type", "ours: only jobs of this type", one_of(*c.JOB_TYPES))
_IDS = query("ids", "comma-separated full job IDs, at most 100",
             {"type": "string", "pattern": "^[^,]*(,[^,]*){0,99}$"})


def state_filter(request: Request) -> tuple[int, ...]:
    """The `state` query parameter (comma-separated names) as JobStateType values."""
    wanted: list[int] = []
    for raw in query_str(request, "state").split(","):
        name = raw.strip()
        if not name:
            continue
        found = next((s for s in JobStateType if s.name.lower() == name.lower() and s is not JobStateType.Undefined), None)
        if found is None:
            valid = ", ".join(s.name for s in JobStateType if s is not JobStateType.Undefined)
            raise BadRequestError(f"invalid job state {name!r}", hint=f"use one or more of {valid}")
        wanted.append(int(found))
    return tuple(wanted)


def type_filter(request: Request) -> str:
    """The `type` query parameter: one of Bacalhau's job types, or ""."""
    kind = query_str(request, "type").strip().lower()
    if kind and kind not in c.JOB_TYPES:
        raise BadRequestError(f"invalid job type {kind!r}", hint=f"use one of {', '.join(c.JOB_TYPES)}")
    return kind


@router.get(
    "/jobs-progress",
    responses=errors(400),
    openapi_extra=inputs(_IDS),
)
async def jobs_progress(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """For a page of jobs, their current executions counted by state (ours): one query, not one per job."""
    ids = [part.strip() for part in query_str(request, "ids").split(",") if part.strip()]
    if len(ids) > MAX_PROGRESS_IDS:
        raise BadRequestError(f"too many job IDs ({len(ids)}); at most {MAX_PROGRESS_IDS}", hint="ask page by page")
    counts = await orch.store.execution_counts(ids)
    return JSONResponse({"Items": {
        job_id: {ExecutionStateType(state).name: n for state, n in sorted(by_state.items())}
        for job_id, by_state in counts.items()
    }})


@router.get(
    "/jobs-summary",
    responses=errors(400),
    openapi_extra=inputs(
        query("minutes", f"how far back CompletedPerMinute goes (1 to {MAX_MINUTES}; default 60)",
              integer("minutes", MAX_MINUTES))
    ),
)
async def jobs_summary(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """Jobs by state, and jobs completed per minute over the last `minutes` (ours)."""
    minutes = query_int(request, "minutes", 60, maximum=MAX_MINUTES) or 60
    now_ns = time.time_ns()
    first_minute = (now_ns // _MINUTE_NS - minutes + 1) * _MINUTE_NS
    counts, by_minute = await orch.store.job_counts(first_minute, _MINUTE_NS)
    buckets = [by_minute.get(index, 0) for index in range(minutes)]
    return JSONResponse({
        "Total": sum(counts.values()),
        "ByState": {s.name: counts.get(int(s), 0) for s in JobStateType if s is not JobStateType.Undefined},
        "CompletedPerMinute": [
            {"Minute": rfc3339_nano(first_minute + i * _MINUTE_NS), "Count": n} for i, n in enumerate(buckets)
        ],
    })
